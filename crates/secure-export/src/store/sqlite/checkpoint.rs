//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the WAL size threshold:
//! that commit, and every accept waiting on it, pays for copying the WAL into the database
//! file and its fsync (measured: the p99 of `POST /api/alerts` went from about 9 ms to
//! 12-15 ms). Here a second connection checkpoints in `PASSIVE` mode, beside the writer and
//! without blocking it. The writer keeps a large automatic threshold as a safety net for a
//! checkpointer that cannot keep up.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is checkpointed.
pub(super) const INTERVAL: Duration = Duration::from_millis(200);

/// The writer's own automatic checkpoint threshold, in pages (64 MiB of 4 KiB pages).
pub(super) const WRITER_THRESHOLD_PAGES: i64 = 16_384;

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
                error = %e,
                "WAL checkpoint failed; the writer's automatic checkpoint takes over"
            ),
        }
    }
}
