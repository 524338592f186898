//! The embedded SQLite [`Store`].
//!
//! Durability: the database runs in WAL mode with `synchronous = FULL` by default, so a commit
//! is on disk (fsync of the WAL) before [`Store::accept_batch`] returns: an accepted alert
//! survives `kill -9` and power loss. `synchronous = NORMAL` ([`Synchronous::Normal`]) still
//! survives `kill -9` of the process (the WAL is written before commit returns, only its fsync
//! is deferred to checkpoints) but may lose the last transactions on power loss. Group commit
//! makes FULL affordable; see `docs/adr/0003-outbox-and-group-commit.md`.
//!
//! All writes go through one connection owned by the group-commit writer, a thread of its own
//! (SQLite has one writer anyway): whatever is queued runs in one transaction with one fsync,
//! and each operation is answered only after that commit. Reads use a small pool of read-only
//! connections on tokio's blocking threads. Both call SQLite synchronously through `rusqlite`
//! (`docs/adr/0007-sqlite-on-rusqlite.md`). The store is meant for one process: opening it
//! releases every job lease left by a previous (crashed) process.

mod checkpoint;
mod migrate;
mod rows;
#[cfg(test)]
mod tests;
mod writer;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use self::rows::{JOB_COLUMNS, micros};
use self::writer::{MAX_WRITE_BATCH, Msg};
use super::{
    AcceptOutcome, AuditEntry, CorrelationRecord, DeadLetter, Job, NewAudit, NewDelivery,
    QuarantineUsage, Quarantined, Store, StoreError,
};
use crate::metrics::Metrics;

/// The database file name inside the data directory.
pub const DB_FILE: &str = "secure-export.db";

/// SQLite `synchronous` setting (see [`SqliteStore`] for what each one survives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// fsync on every commit: survives power loss (default).
    #[default]
    Full,
    /// fsync at checkpoints only: survives a process crash, may lose recent commits on power loss.
    Normal,
}

/// Options of [`SqliteStore::open_with`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Durability setting.
    pub synchronous: Synchronous,
    /// How long a statement waits for a lock.
    pub busy_timeout: Duration,
    /// Read connections.
    pub read_connections: u32,
    /// Most write operations committed in one transaction (group commit); `1` commits every
    /// operation on its own (for comparison benchmarks).
    pub max_write_batch: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
            max_write_batch: MAX_WRITE_BATCH,
        }
    }
}

/// The embedded SQLite store.
///
/// Durability: WAL mode with `synchronous = FULL` by default, so a commit is on disk (fsync of
/// the WAL) before [`Store::accept_batch`] returns: an accepted alert survives `kill -9` and
/// power loss. [`Synchronous::Normal`] still survives `kill -9` of the process (the WAL is
/// written before commit returns; only its fsync waits for checkpoints) but may lose the last
/// commits on power loss. Group commit makes FULL affordable (see
/// `docs/adr/0003-outbox-and-group-commit.md`).
///
/// All writes go through one connection (SQLite has one writer anyway; this avoids busy
/// retries), reads through a small pool. The store serves one process: opening it releases
/// every job lease a previous (crashed) process left.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: mpsc::Sender<Msg>,
    /// The engine's metrics, once attached; the writer records its commits there.
    metrics: Arc<OnceLock<Metrics>>,
    /// `None` for an in-memory database: its one connection is the writer's.
    readers: Option<Arc<Readers>>,
}

/// Read-only connections, used from tokio's blocking threads.
struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
    closed: AtomicBool,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("connections", &self.conns.len())
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl Readers {
    /// Runs `f` on a free connection (or waits for the next one in turn).
    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.closed.load(Ordering::Acquire) || self.conns.is_empty() {
            return Err(closed());
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.conns.len();
        for i in 0..n {
            if let Ok(conn) = self.conns[(start + i) % n].try_lock() {
                return f(&conn);
            }
        }
        let conn = self.conns[start % n]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&conn)
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("store closed".to_owned())
}

fn stopped() -> StoreError {
    StoreError::Unavailable("store writer stopped".to_owned())
}

pub(super) fn err(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Opens one connection to `path` with the store's settings.
fn connect(
    path: &Path,
    options: &SqliteOptions,
    read_only: bool,
) -> Result<Connection, StoreError> {
    let setup =
        |e: rusqlite::Error| StoreError::Setup(format!("cannot open {}: {e}", path.display()));
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(setup)?;
    conn.busy_timeout(options.busy_timeout).map_err(setup)?;
    // 8 MiB page cache per connection (the default is 2 MiB).
    conn.pragma_update(None, "cache_size", -8192)
        .map_err(setup)?;
    conn.set_prepared_statement_cache_capacity(64);
    if !read_only {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(setup)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Setup(format!(
                "{} cannot use WAL journaling (got {mode:?}); put the data directory on a local \
                 file system",
                path.display()
            )));
        }
        let sync = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(setup)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(setup)?;
        // Checkpoints run on their own thread (see `checkpoint`); this is the safety net.
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            checkpoint::WRITER_THRESHOLD_PAGES,
        )
        .map_err(setup)?;
        // Savepoints of the group-commit writer journal into memory, not a temp file.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(setup)?;
    }
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir` with default options, runs the
    /// embedded migrations and releases stale leases.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, SqliteOptions::default()).await
    }

    /// Like [`open`](Self::open) with explicit options.
    pub async fn open_with(data_dir: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        let data_dir = data_dir.to_owned();
        let max_write_batch = options.max_write_batch;
        let (conn, readers, checkpointer, path) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&data_dir).map_err(|e| {
                StoreError::Setup(format!(
                    "cannot create data directory {}: {e}",
                    data_dir.display()
                ))
            })?;
            let path = data_dir.join(DB_FILE);
            let mut conn = connect(&path, &options, false)?;
            migrate::run(&mut conn)?;
            // The previous process that held them is gone.
            conn.execute(
                "UPDATE jobs SET lease_token = NULL, lease_until = NULL \
                 WHERE lease_token IS NOT NULL",
                [],
            )
            .map_err(|e| StoreError::Setup(format!("cannot release stale leases: {e}")))?;
            let readers = (0..options.read_connections.max(1))
                .map(|_| connect(&path, &options, true).map(Mutex::new))
                .collect::<Result<Vec<_>, _>>()?;
            let checkpointer = connect(&path, &options, false)?;
            Ok::<_, StoreError>((conn, readers, checkpointer, path))
        })
        .await
        .map_err(|e| StoreError::Setup(format!("cannot open the store: {e}")))??;
        let readers = Readers {
            conns: readers,
            next: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        };
        // The checkpointer stops when the writer does (it drops `alive`).
        let (alive, until_writer_stops) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("store-checkpoint".to_owned())
            .spawn(move || checkpoint::run(checkpointer, &path, until_writer_stops))
            .map_err(|e| StoreError::Setup(format!("cannot start the checkpointer: {e}")))?;
        Self::start(conn, Some(Arc::new(readers)), Some(alive), max_write_batch)
    }

    /// An in-memory database (one connection; for tests).
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        let mut conn =
            Connection::open_in_memory().map_err(|e| StoreError::Setup(e.to_string()))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(|e| StoreError::Setup(e.to_string()))?;
        conn.set_prepared_statement_cache_capacity(64);
        migrate::run(&mut conn)?;
        Self::start(conn, None, None, MAX_WRITE_BATCH)
    }

    /// Starts the group-commit writer thread on `conn`; it holds `alive` until it stops.
    fn start(
        conn: Connection,
        readers: Option<Arc<Readers>>,
        alive: Option<std::sync::mpsc::Sender<()>>,
        max_batch: usize,
    ) -> Result<Self, StoreError> {
        let (writer, rx) = mpsc::channel(MAX_WRITE_BATCH);
        let metrics = Arc::new(OnceLock::new());
        let for_writer = metrics.clone();
        std::thread::Builder::new()
            .name("store-writer".to_owned())
            .spawn(move || {
                writer::run(conn, rx, max_batch, &for_writer);
                drop(alive);
            })
            .map_err(|e| StoreError::Setup(format!("cannot start the store writer: {e}")))?;
        Ok(Self {
            writer,
            metrics,
            readers,
        })
    }

    /// Runs `f` through the group-commit writer (see `WriteOp` for the rules `f` follows);
    /// returns its result once the batch it ran in has committed.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_op(false, f).await
    }

    /// Like [`write`](Self::write), in a savepoint of its own: an error rolls back this
    /// operation alone.
    async fn write_savepoint<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_op(true, f).await
    }

    async fn write_op<T, F>(&self, savepoint: bool, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (done, wait) = oneshot::channel();
        self.writer
            .send(Msg::Write(writer::write_op(savepoint, f, done)))
            .await
            .map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }

    /// Runs a read on a read connection (on the writer's, for an in-memory database).
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.readers {
            Some(readers) => {
                let readers = readers.clone();
                tokio::task::spawn_blocking(move || readers.with(f))
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
            }
            None => self.read_on_writer(f).await,
        }
    }

    /// Runs a read on the writer's thread, after its current batch.
    async fn read_on_writer<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (done, wait) = oneshot::channel();
        let read: writer::ReadFn = Box::new(move |conn| {
            let _ = done.send(f(conn));
        });
        self.writer
            .send(Msg::Read(read))
            .await
            .map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }

    /// Closes the connections; every later operation fails with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        if let Some(readers) = &self.readers {
            readers.closed.store(true, Ordering::Release);
        }
        let (done, wait) = oneshot::channel();
        if self.writer.send(Msg::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Fails with [`StoreError::LeaseLost`] unless `job`'s lease is still held (writes nothing).
fn check_lease(conn: &Connection, job: &Job) -> Result<(), StoreError> {
    let held: Option<i64> = conn
        .prepare_cached("SELECT id FROM jobs WHERE id = ? AND lease_token = ?")
        .and_then(|mut s| {
            s.query_row(params![job.id, job.lease_token], |r| r.get(0))
                .optional()
        })
        .map_err(err)?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::LeaseLost(job.id)),
    }
}

fn insert_audit(conn: &Connection, a: &NewAudit) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit (at, connection, alert_id, correlation_key, action, work_item, detail) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .and_then(|mut s| {
        s.execute(params![
            micros(a.at),
            a.connection,
            a.alert_id,
            a.correlation_key,
            a.action,
            a.work_item,
            a.detail
        ])
    })
    .map_err(err)?;
    Ok(())
}

/// Records one delivery and, unless it is a duplicate, its job (ids in acceptance order, which
/// per-key ordering relies on).
fn accept_one(conn: &Connection, d: &NewDelivery) -> Result<AcceptOutcome, StoreError> {
    let inserted: Option<i64> = conn
        .prepare_cached(
            "INSERT INTO deliveries (connection, idempotency_key, alert_id, condition, event_at, \
             received_at, raw_body) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (connection, idempotency_key) DO NOTHING RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    d.connection,
                    d.idempotency_key,
                    d.alert_id,
                    d.condition,
                    micros(d.event_at),
                    micros(d.received_at),
                    d.raw_body
                ],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(err)?;
    let Some(delivery_id) = inserted else {
        let delivery_id: Option<i64> = conn
            .prepare_cached(
                "SELECT id FROM deliveries WHERE connection = ? AND idempotency_key = ?",
            )
            .and_then(|mut s| {
                s.query_row(params![d.connection, d.idempotency_key], |r| r.get(0))
                    .optional()
            })
            .map_err(err)?;
        return delivery_id
            .map(|delivery_id| AcceptOutcome::Duplicate { delivery_id })
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "delivery {} neither inserted nor found",
                    d.idempotency_key
                ))
            });
    };
    let now = micros(d.received_at);
    let job_id: i64 = conn
        .prepare_cached(
            "INSERT INTO jobs (connection, kind, delivery_id, alert_id, order_key, facts, \
             created_at, available_at) VALUES (?, 'event', ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    d.connection,
                    delivery_id,
                    d.alert_id,
                    d.order_key,
                    d.facts,
                    now,
                    now
                ],
                |r| r.get(0),
            )
        })
        .map_err(err)?;
    Ok(AcceptOutcome::New {
        delivery_id,
        job_id,
    })
}

/// Runs a query and maps every row with `map`.
fn collect<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(err)?;
    let mut rows = stmt.query(params).map_err(err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(err)? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// Runs a statement; returns the number of rows it changed.
fn execute(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(err)
}

/// Runs a statement on job `id` that matches only while its lease is held (`... AND
/// lease_token = ?`): [`StoreError::LeaseLost`] when it changed nothing.
fn execute_leased(
    conn: &Connection,
    id: i64,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<(), StoreError> {
    match execute(conn, sql, params)? {
        0 => Err(StoreError::LeaseLost(id)),
        _ => Ok(()),
    }
}

const UPSERT_CORRELATION: &str = "INSERT INTO correlations (connection, key, order_key, \
    alert_id, state, work_item_id, work_item_number, work_item_url, opened_at, last_fired_at, \
    last_resolved_at, last_event_at, fired_count, auto_close_at, last_job_id, updated_at) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
    ON CONFLICT (connection, key) DO UPDATE SET order_key = excluded.order_key, \
      alert_id = excluded.alert_id, state = excluded.state, \
      work_item_id = excluded.work_item_id, work_item_number = excluded.work_item_number, \
      work_item_url = excluded.work_item_url, opened_at = excluded.opened_at, \
      last_fired_at = excluded.last_fired_at, last_resolved_at = excluded.last_resolved_at, \
      last_event_at = excluded.last_event_at, fired_count = excluded.fired_count, \
      auto_close_at = excluded.auto_close_at, last_job_id = excluded.last_job_id, \
      updated_at = excluded.updated_at";

fn upsert_correlation(conn: &Connection, c: &CorrelationRecord) -> Result<(), StoreError> {
    let item = c.work_item.as_ref();
    execute(
        conn,
        UPSERT_CORRELATION,
        params![
            c.connection,
            c.key,
            c.order_key,
            c.alert_id,
            c.state.as_str(),
            item.map(|i| i.id.as_str()),
            item.and_then(|i| i.number.as_deref()),
            item.and_then(|i| i.url.as_deref()),
            c.opened_at.map(micros),
            c.last_fired_at.map(micros),
            c.last_resolved_at.map(micros),
            c.last_event_at.map(micros),
            i64::from(c.fired_count),
            c.auto_close_at.map(micros),
            c.last_job_id,
            micros(c.updated_at)
        ],
    )?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn groups_commits(&self) -> bool {
        true
    }

    fn attach_metrics(&self, metrics: &Metrics) {
        // The first engine's registry wins (one store serves one engine).
        let _ = self.metrics.set(metrics.clone());
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Through the writer: a store whose writer stopped is not ready.
        let select_1 = |conn: &Connection| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(err);
        self.read_on_writer(select_1).await?;
        // And a read connection (for an in-memory database, the writer's again).
        self.read(select_1).await
    }

    async fn accept_batch(
        &self,
        deliveries: &[NewDelivery],
    ) -> Result<Vec<AcceptOutcome>, StoreError> {
        let deliveries = deliveries.to_vec();
        self.write_savepoint(move |conn| deliveries.iter().map(|d| accept_one(conn, d)).collect())
            .await
    }

    async fn quarantine(
        &self,
        connection: &str,
        raw_body: &[u8],
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let (connection, raw_body, reason) =
            (connection.to_owned(), raw_body.to_vec(), reason.to_owned());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO quarantine (connection, reason, raw_body, received_at) \
                 VALUES (?, ?, ?, ?) RETURNING id",
            )
            .and_then(|mut s| {
                s.query_row(params![connection, reason, raw_body, micros(at)], |r| {
                    r.get(0)
                })
            })
            .map_err(err)
        })
        .await
    }

    async fn claim(
        &self,
        connection: &str,
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Job>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let token = uuid::Uuid::new_v4().to_string();
        // `+j.connection` keeps SQLite from answering through `jobs_order` (every job of the
        // connection, then a sort): walking the primary key in id order stops after `limit`
        // claimable jobs, so a claim costs the same with 10 or 100,000 jobs queued.
        let sql = format!(
            "UPDATE jobs SET lease_token = ?1, lease_until = ?2 WHERE id IN ( \
               SELECT j.id FROM jobs j \
               WHERE +j.connection = ?3 AND j.available_at <= ?4 \
                 AND (j.lease_until IS NULL OR j.lease_until < ?4) \
                 AND NOT EXISTS (SELECT 1 FROM jobs e WHERE e.connection = j.connection \
                                 AND e.order_key = j.order_key AND e.id < j.id) \
               ORDER BY j.id LIMIT ?5) \
             RETURNING {JOB_COLUMNS}"
        );
        let connection = connection.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut jobs = self
            .write(move |conn| {
                collect(
                    conn,
                    &sql,
                    params![token, micros(lease_until), connection, micros(now), limit],
                    rows::job,
                )
            })
            .await?;
        jobs.sort_by_key(|j| j.id);
        Ok(jobs)
    }

    async fn delivery_body(&self, delivery_id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT raw_body FROM deliveries WHERE id = ?")
                .and_then(|mut s| s.query_row([delivery_id], |r| r.get(0)).optional())
                .map_err(err)
        })
        .await
    }

    async fn correlation(
        &self,
        connection: &str,
        key: &str,
    ) -> Result<Option<CorrelationRecord>, StoreError> {
        let (connection, key) = (connection.to_owned(), key.to_owned());
        let found = self
            .read(move |conn| {
                collect(
                    conn,
                    "SELECT * FROM correlations WHERE connection = ? AND key = ?",
                    params![connection, key],
                    rows::correlation,
                )
            })
            .await?;
        Ok(found.into_iter().next())
    }

    async fn save(
        &self,
        job: &Job,
        correlations: &[CorrelationRecord],
        audit: &[NewAudit],
        finish: bool,
    ) -> Result<(), StoreError> {
        let (job, correlations, audit) = (job.clone(), correlations.to_vec(), audit.to_vec());
        self.write(move |conn| {
            // The lease check comes first and writes nothing when it fails (see `WriteOp`).
            if finish {
                execute_leased(
                    conn,
                    job.id,
                    "DELETE FROM jobs WHERE id = ? AND lease_token = ?",
                    params![job.id, job.lease_token],
                )?;
            } else {
                check_lease(conn, &job)?;
            }
            for c in &correlations {
                upsert_correlation(conn, c)?;
            }
            for a in &audit {
                insert_audit(conn, a)?;
            }
            Ok(())
        })
        .await
    }

    async fn retry(
        &self,
        job: &Job,
        available_at: DateTime<Utc>,
        error: &str,
        count: bool,
    ) -> Result<(), StoreError> {
        let (id, token, error) = (job.id, job.lease_token.clone(), error.to_owned());
        self.write(move |conn| {
            execute_leased(
                conn,
                id,
                "UPDATE jobs SET lease_token = NULL, lease_until = NULL, available_at = ?, \
                 last_error = ?, attempts = attempts + ? WHERE id = ? AND lease_token = ?",
                params![micros(available_at), error, i64::from(count), id, token],
            )
        })
        .await
    }

    async fn release(&self, job: &Job) -> Result<(), StoreError> {
        let (id, token) = (job.id, job.lease_token.clone());
        self.write(move |conn| {
            execute_leased(
                conn,
                id,
                "UPDATE jobs SET lease_token = NULL, lease_until = NULL \
                 WHERE id = ? AND lease_token = ?",
                params![id, token],
            )
        })
        .await
    }

    async fn mark_create_started(&self, job: &Job, at: DateTime<Utc>) -> Result<(), StoreError> {
        let (id, token) = (job.id, job.lease_token.clone());
        self.write(move |conn| {
            execute_leased(
                conn,
                id,
                "UPDATE jobs SET create_started_at = COALESCE(create_started_at, ?) \
                 WHERE id = ? AND lease_token = ?",
                params![micros(at), id, token],
            )
        })
        .await
    }

    async fn dead_letter(
        &self,
        job: &Job,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let (job, reason) = (job.clone(), reason.to_owned());
        self.write(move |conn| {
            check_lease(conn, &job)?;
            let id: i64 = conn
                .prepare_cached(
                    "INSERT INTO dead_letters (connection, kind, delivery_id, alert_id, order_key, \
                       target_key, facts, attempts, reason, raw_body, created_at, dead_at) \
                     SELECT j.connection, j.kind, j.delivery_id, j.alert_id, j.order_key, \
                       j.target_key, j.facts, j.attempts, ?, d.raw_body, j.created_at, ? \
                     FROM jobs j LEFT JOIN deliveries d ON d.id = j.delivery_id WHERE j.id = ? \
                     RETURNING id",
                )
                .and_then(|mut s| s.query_row(params![reason, micros(at), job.id], |r| r.get(0)))
                .map_err(err)?;
            execute(conn, "DELETE FROM jobs WHERE id = ?", [job.id])?;
            insert_audit(
                conn,
                &NewAudit {
                    at,
                    connection: job.connection.clone(),
                    alert_id: job.alert_id.clone(),
                    correlation_key: job.target_key.clone(),
                    action: "dead_letter".to_owned(),
                    work_item: None,
                    detail: format!("job {} dead-lettered as {id}: {reason}", job.id),
                },
            )?;
            Ok(id)
        })
        .await
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.read(|conn| {
            collect(
                conn,
                "SELECT id, connection, kind, delivery_id, alert_id, order_key, reason, attempts, \
                 raw_body, created_at, dead_at FROM dead_letters WHERE replayed_at IS NULL \
                 ORDER BY id",
                [],
                rows::dead_letter,
            )
        })
        .await
    }

    async fn replay_dead_letter(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        // The replayed job counts as create-started: the dead one may have reached create.
        self.write_savepoint(move |conn| {
            let job: Option<(i64, String, String)> = conn
                .prepare_cached(
                    "INSERT INTO jobs (connection, kind, delivery_id, alert_id, order_key, \
                       target_key, facts, created_at, available_at, create_started_at) \
                     SELECT connection, kind, delivery_id, alert_id, order_key, target_key, \
                       facts, ?1, ?1, ?1 \
                     FROM dead_letters WHERE id = ?2 AND replayed_at IS NULL \
                     RETURNING id, connection, alert_id",
                )
                .and_then(|mut s| {
                    s.query_row(params![micros(now), id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .optional()
                })
                .map_err(err)?;
            let Some((job, connection, alert_id)) = job else {
                return Ok(false);
            };
            execute(
                conn,
                "UPDATE dead_letters SET replayed_at = ? WHERE id = ?",
                params![micros(now), id],
            )?;
            insert_audit(
                conn,
                &NewAudit {
                    at: now,
                    connection,
                    alert_id,
                    correlation_key: None,
                    action: "replay".to_owned(),
                    work_item: None,
                    detail: format!("dead letter {id} replayed as job {job}"),
                },
            )?;
            Ok(true)
        })
        .await
    }

    async fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        self.read(|conn| {
            collect(
                conn,
                "SELECT id, connection, reason, raw_body, received_at FROM quarantine \
                 WHERE replayed_at IS NULL ORDER BY id",
                [],
                rows::quarantined,
            )
        })
        .await
    }

    async fn mark_quarantine_replayed(
        &self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let done = execute(
                conn,
                "UPDATE quarantine SET replayed_at = ? WHERE id = ? AND replayed_at IS NULL",
                params![micros(at), id],
            )?;
            Ok(done > 0)
        })
        .await
    }

    async fn schedule_auto_close(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.write_savepoint(move |conn| {
            let due = collect(
                conn,
                "SELECT connection, key, order_key, alert_id FROM correlations \
                 WHERE auto_close_at IS NOT NULL AND auto_close_at <= ? AND state = 'open'",
                [micros(now)],
                |r| {
                    let get = |i| r.get::<_, String>(i).map_err(err);
                    Ok((get(0)?, get(1)?, get(2)?, get(3)?))
                },
            )?;
            for (connection, key, order_key, alert_id) in &due {
                let facts = serde_json::to_string(&crate::keys::AlertFacts::new(
                    alert_id.clone(),
                    crate::keys::Condition::Resolved,
                    now,
                ))
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                execute(
                    conn,
                    "INSERT INTO jobs (connection, kind, alert_id, order_key, target_key, facts, \
                     created_at, available_at) VALUES (?, 'auto_close', ?, ?, ?, ?, ?, ?)",
                    params![
                        connection,
                        alert_id,
                        order_key,
                        key,
                        facts,
                        micros(now),
                        micros(now)
                    ],
                )?;
                execute(
                    conn,
                    "UPDATE correlations SET auto_close_at = NULL WHERE connection = ? AND key = ?",
                    params![connection, key],
                )?;
            }
            Ok(due.len())
        })
        .await
    }

    async fn history(&self, alert_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let alert_id = alert_id.to_owned();
        // Deliveries are the "accepted" entries (no separate audit row on the hot path).
        self.read(move |conn| {
            collect(
                conn,
                "SELECT id, at, connection, alert_id, correlation_key, action, work_item, detail, \
                   src \
                 FROM ( \
                   SELECT id, received_at AS at, connection, alert_id, NULL AS correlation_key, \
                     'accepted' AS action, NULL AS work_item, \
                     condition || ' event, delivery ' || id AS detail, 0 AS src \
                   FROM deliveries WHERE alert_id = ?1 \
                   UNION ALL \
                   SELECT id, at, connection, alert_id, correlation_key, action, work_item, \
                     detail, 1 AS src \
                   FROM audit WHERE alert_id = ?1) \
                 ORDER BY at, src, id",
                [alert_id],
                rows::audit,
            )
        })
        .await
    }

    async fn purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let at = micros(before);
        self.write_savepoint(move |conn| {
            let mut n = 0;
            for sql in [
                "DELETE FROM deliveries WHERE received_at < ?1 \
                 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.delivery_id = deliveries.id)",
                "DELETE FROM audit WHERE at < ?1",
                "DELETE FROM dead_letters WHERE dead_at < ?1 \
                 OR (replayed_at IS NOT NULL AND replayed_at < ?1)",
                "DELETE FROM quarantine WHERE received_at < ?1 \
                 OR (replayed_at IS NOT NULL AND replayed_at < ?1)",
                "DELETE FROM correlations WHERE state <> 'open' AND updated_at < ?1",
            ] {
                n += execute(conn, sql, [at])?;
            }
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn queue_depth(&self) -> Result<u64, StoreError> {
        self.read(|conn| count(conn, "SELECT COUNT(*) FROM jobs"))
            .await
    }

    async fn queue_depths(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT connection, COUNT(*) FROM jobs GROUP BY connection")
                .map_err(err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(err)?;
            let mut out = BTreeMap::new();
            for row in rows {
                let (connection, n) = row.map_err(err)?;
                out.insert(connection, u64::try_from(n).unwrap_or(0));
            }
            Ok(out)
        })
        .await
    }

    async fn quarantine_usage(&self) -> Result<QuarantineUsage, StoreError> {
        self.read(|conn| {
            let (rows, bytes): (i64, i64) = conn
                .prepare_cached(
                    "SELECT COUNT(*), COALESCE(SUM(length(raw_body)), 0) FROM quarantine \
                     WHERE replayed_at IS NULL",
                )
                .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
                .map_err(err)?;
            Ok(QuarantineUsage {
                rows: u64::try_from(rows).unwrap_or(0),
                bytes: u64::try_from(bytes).unwrap_or(0),
            })
        })
        .await
    }

    async fn dead_letter_count(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            count(
                conn,
                "SELECT COUNT(*) FROM dead_letters WHERE replayed_at IS NULL",
            )
        })
        .await
    }
}

/// A `COUNT(*)` query.
fn count(conn: &Connection, sql: &str) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(err)?;
    Ok(u64::try_from(n).unwrap_or(0))
}
