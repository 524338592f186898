//! The group-commit writer: one thread that owns the write connection.
//!
//! Every write of the store is an operation sent to this thread. It takes whatever is queued,
//! runs it in one transaction, commits once (one fsync with `synchronous = FULL`) and only then
//! answers each caller. The calls into SQLite are plain synchronous calls on this thread: no
//! per-statement hop to another thread (see `docs/adr/0007-sqlite-on-rusqlite.md`).

use std::sync::OnceLock;
use std::time::Instant;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::err;
use crate::metrics::Metrics;
use crate::store::StoreError;

/// Most write operations committed in one transaction, by default.
pub(super) const MAX_WRITE_BATCH: usize = 4096;

/// Called once the batch an operation ran in has committed (`None`) or failed (`Some`).
pub(super) type Reply = Box<dyn FnOnce(Option<StoreError>) + Send>;

/// A write operation: runs inside the batch transaction and says how it ended. `None` means
/// the batch broke before the operation could run: it only builds its reply.
pub(super) type WriteFn = Box<dyn FnOnce(Option<&Connection>) -> (Ran, Reply) + Send>;

/// A read run on the writer's connection, outside any transaction (in-memory databases, whose
/// one connection is the writer's, and the writer's own health check).
pub(super) type ReadFn = Box<dyn FnOnce(&Connection) + Send>;

/// How an operation ended.
#[derive(Debug)]
pub(super) enum Ran {
    /// It succeeded.
    Ok,
    /// It refused without writing (a lost lease).
    Refused,
    /// SQLite reported an error.
    Failed(StoreError),
}

/// A message to the writer thread.
pub(super) enum Msg {
    /// A write operation (see [`WriteOp`]).
    Write(WriteOp),
    /// A read, run after the current batch has committed.
    Read(ReadFn),
    /// Finish the current batch, then close the connection and stop.
    Close(oneshot::Sender<()>),
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Write(_) => "Write",
            Msg::Read(_) => "Read",
            Msg::Close(_) => "Close",
        })
    }
}

/// One queued write operation.
///
/// Every operation either refuses before it writes anything ([`StoreError::LeaseLost`]: the
/// others of its batch go on) or runs to the end; an SQLite error fails the whole batch (rolled
/// back, every caller gets the error), because an I/O error may already have rolled back the
/// transaction. An operation that may fail half-way for a reason of its own (one bad delivery
/// of an accept batch, a maintenance job) asks for a savepoint instead: it is rolled back alone.
pub(super) struct WriteOp {
    pub(super) savepoint: bool,
    pub(super) run: WriteFn,
}

/// Wraps `f` as a [`WriteOp`] whose result goes to `done` once its batch has committed.
pub(super) fn write_op<T, F>(
    savepoint: bool,
    f: F,
    done: oneshot::Sender<Result<T, StoreError>>,
) -> WriteOp
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    let run: WriteFn = Box::new(move |conn| {
        let result = match conn {
            Some(conn) => f(conn),
            None => Err(StoreError::Unavailable("not run".to_owned())),
        };
        let ran = match &result {
            Ok(_) => Ran::Ok,
            Err(StoreError::LeaseLost(_)) => Ran::Refused,
            Err(e) => Ran::Failed(e.clone()),
        };
        let reply: Reply = Box::new(move |failed| {
            let _ = done.send(match failed {
                Some(e) => Err(e),
                None => result,
            });
        });
        (ran, reply)
    });
    WriteOp { savepoint, run }
}

/// The writer thread's loop: runs until every sender is gone or [`Msg::Close`] arrives. At
/// most `max_batch` operations share a transaction.
pub(super) fn run(
    conn: Connection,
    mut rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    metrics: &OnceLock<Metrics>,
) {
    let max_batch = max_batch.max(1);
    let mut ops: Vec<WriteOp> = Vec::new();
    let mut reads: Vec<ReadFn> = Vec::new();
    let mut close: Option<oneshot::Sender<()>> = None;
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Write(op) => ops.push(op),
                Msg::Read(read) => reads.push(read),
                Msg::Close(done) => {
                    close = Some(done);
                    break;
                }
            }
            if ops.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if !ops.is_empty() {
            run_batch(&conn, &mut ops, metrics.get());
        }
        for read in reads.drain(..) {
            read(&conn);
        }
        if close.is_some() {
            break;
        }
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!(event = "store.close_failed", error = %crate::logsafe::esc(&e));
    }
    // Queued operations are dropped with the receiver: their callers see "writer stopped".
    drop(rx);
    if let Some(done) = close {
        let _ = done.send(());
    }
}

/// Records one batch in `metrics` (before its callers are answered).
fn record(metrics: Option<&Metrics>, committed: bool, size: usize, started: Instant) {
    let Some(m) = metrics else { return };
    let outcome = if committed { "ok" } else { "failed" };
    m.inc_counter("secure_export_store_commits_total", &[("outcome", outcome)]);
    m.observe(
        "secure_export_store_commit_seconds",
        &[],
        started.elapsed().as_secs_f64(),
    );
    if committed {
        m.add_counter(
            "secure_export_store_write_operations_total",
            &[],
            u64::try_from(size).unwrap_or(u64::MAX),
        );
    }
}

/// Runs `ops` in one transaction and answers each after the commit (or with the batch error).
fn run_batch(conn: &Connection, ops: &mut Vec<WriteOp>, metrics: Option<&Metrics>) {
    let started = Instant::now();
    let size = ops.len();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let e = err(e);
        tracing::warn!(event = "store.batch_failed", size, error = %crate::logsafe::esc(&e));
        record(metrics, false, size, started);
        for op in ops.drain(..) {
            let (_, reply) = (op.run)(None);
            reply(Some(e.clone()));
        }
        return;
    }
    let mut replies: Vec<Reply> = Vec::with_capacity(ops.len());
    let mut broken: Option<StoreError> = None;
    for op in ops.drain(..) {
        if broken.is_some() {
            // Answered with the batch error below.
            replies.push((op.run)(None).1);
            continue;
        }
        if op.savepoint
            && let Err(e) = conn.execute_batch("SAVEPOINT op")
        {
            broken = Some(err(e));
            replies.push((op.run)(None).1);
            continue;
        }
        let (ran, reply) = (op.run)(Some(conn));
        replies.push(reply);
        let end = if !op.savepoint {
            if let Ran::Failed(e) = ran {
                broken = Some(e);
            }
            Ok(())
        } else if matches!(ran, Ran::Ok) {
            conn.execute_batch("RELEASE op")
        } else {
            conn.execute_batch("ROLLBACK TO op; RELEASE op")
        };
        if let Err(e) = end {
            broken = Some(err(e));
        }
    }
    let outcome = match broken {
        // Nothing of this batch may be reported durable.
        Some(e) => {
            rollback(conn);
            Some(e)
        }
        None => match conn.execute_batch("COMMIT") {
            Ok(()) => None,
            Err(e) => {
                rollback(conn);
                Some(err(e))
            }
        },
    };
    if let Some(e) = &outcome {
        tracing::warn!(event = "store.batch_failed", size = replies.len(), error = %crate::logsafe::esc(&e));
    }
    record(metrics, outcome.is_none(), size, started);
    for reply in replies {
        reply(outcome.clone());
    }
}

/// Rolls back the open transaction, if SQLite has not already done so.
fn rollback(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::warn!(event = "store.rollback_failed", error = %crate::logsafe::esc(&e));
    }
}
