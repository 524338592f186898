//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the WAL size threshold:
//! that commit, and every accept waiting on it, pays for copying the WAL into the database
//! file and its fsync (measured in the load harness: p99 of `POST /api/alerts` 11-16 ms with
//! the default 1,000-page threshold, 8.5-10.7 ms with this). Here a second connection
//! checkpoints in `PASSIVE` mode, beside the writer and without blocking it, once a second:
//! rarer checkpoints copy a hot page (an index leaf rewritten by many commits) once instead of
//! many times (200 ms and 50 ms intervals measured slower, with worse tails). The writer keeps
//! a large automatic threshold as a safety net for a checkpointer that cannot keep up.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is checkpointed.
pub(super) const INTERVAL: Duration = Duration::from_secs(1);

/// The writer's own automatic checkpoint threshold, in pages (256 MiB of 4 KiB pages).
pub(super) const WRITER_THRESHOLD_PAGES: i64 = 65_536;

/// Runs until `alive` is disconnected (the writer stopped): a `PASSIVE` checkpoint every
/// [`INTERVAL`].
pub(super) fn run(conn: Connection, path: &Path, alive: Receiver<()>) {
    while let Err(RecvTimeoutError::Timeout) = alive.recv_timeout(INTERVAL) {
        let done: rusqlite::Result<(i64, i64, i64)> =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            });
        match done {
            Ok((_, wal_pages, copied)) => {
                tracing::trace!(event = "store.checkpoint", wal_pages, copied);
            }
            Err(e) => tracing::warn!(
                event = "store.checkpoint_failed",
                path = %path.display(),
                error = %crate::logsafe::esc(&e),
                "WAL checkpoint failed; the writer's automatic checkpoint takes over"
            ),
        }
    }
}
