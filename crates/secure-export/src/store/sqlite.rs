//! The embedded SQLite [`Store`].
//!
//! Durability: the database runs in WAL mode with `synchronous = FULL` by default, so a commit
//! is on disk (fsync of the WAL) before [`Store::accept_batch`] returns: an accepted alert
//! survives `kill -9` and power loss. `synchronous = NORMAL` ([`Synchronous::Normal`]) still
//! survives `kill -9` of the process (the WAL is written before commit returns, only its fsync
//! is deferred to checkpoints) but may lose the last transactions on power loss. Group commit
//! makes FULL affordable; see `docs/adr/0003-outbox-and-group-commit.md`.
//!
//! All writes go through one connection (SQLite has one writer anyway; this avoids busy
//! retries), reads through a small pool. The hot writes (accepts, claims, job outcomes) are
//! operations of one group-commit writer on a thread of its own: whatever is queued runs in one
//! transaction with one fsync, and each operation is answered only after that commit. The
//! store is meant for one process: opening it releases every job lease left by a previous
//! (crashed) process.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secure_export_itsm::WorkItemRef;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::{
    AcceptOutcome, AuditEntry, CorrelationRecord, DeadLetter, Job, JobKind, NewAudit, NewDelivery,
    Quarantined, Store, StoreError,
};
use crate::lifecycle::TrackedState;

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
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
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
    write: SqlitePool,
    read: SqlitePool,
    writer: mpsc::Sender<WriteOp>,
}

type BoxFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;
/// Called once the batch an operation ran in has committed (`None`) or failed (`Some`).
type Reply = Box<dyn FnOnce(Option<StoreError>) + Send>;
/// A write operation for the group-commit writer: runs inside the batch transaction and says
/// how it ended (see [`WriteOp`]). `None` means the batch broke before the operation could
/// run: it only builds its reply.
type WriteFn =
    Box<dyn for<'c> FnOnce(Option<&'c mut SqliteConnection>) -> BoxFuture<'c, (Ran, Reply)> + Send>;

/// How an operation of the group-commit writer ended.
#[derive(Debug)]
enum Ran {
    /// It succeeded.
    Ok,
    /// It refused without writing (a lost lease).
    Refused,
    /// SQLite reported an error.
    Failed(StoreError),
}

/// One queued write operation.
///
/// Every operation either refuses before it writes anything ([`StoreError::LeaseLost`]: the
/// others of its batch go on) or runs to the end; an SQLite error fails the whole batch (rolled
/// back, every caller gets the error), because an I/O error may already have rolled back the
/// transaction. An operation that may fail half-way for a reason of its own (one bad delivery
/// of an accept batch) asks for a savepoint instead: it is rolled back alone.
struct WriteOp {
    savepoint: bool,
    run: WriteFn,
}

/// Most write operations committed in one transaction.
const MAX_WRITE_BATCH: usize = 4096;

/// The group-commit writer: the only user of the write connection for the hot writes
/// (accepts, claims, job outcomes). It takes every operation queued, runs them in one
/// transaction, commits once (one fsync with `synchronous = FULL`) and only then answers each
/// caller. How one failing operation affects the others: see [`WriteOp`]; a failed commit
/// fails them all.
async fn group_writer(pool: SqlitePool, mut rx: mpsc::Receiver<WriteOp>) {
    let mut ops: Vec<WriteOp> = Vec::new();
    let mut replies: Vec<Reply> = Vec::new();
    while let Some(first) = rx.recv().await {
        ops.push(first);
        while ops.len() < MAX_WRITE_BATCH {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let mut tx = match pool.begin().await {
            Ok(tx) => tx,
            Err(e) => {
                let e = err(e);
                for op in ops.drain(..) {
                    fail_unrun(op, &e).await;
                }
                continue;
            }
        };
        let mut broken: Option<StoreError> = None;
        for op in ops.drain(..) {
            if broken.is_some() {
                // Answered with the batch error below.
                replies.push((op.run)(None).await.1);
                continue;
            }
            if op.savepoint
                && let Err(e) = sqlx::query("SAVEPOINT op").execute(&mut *tx).await
            {
                broken = Some(err(e));
                replies.push((op.run)(None).await.1);
                continue;
            }
            let (ran, reply) = (op.run)(Some(&mut *tx)).await;
            let end = if !op.savepoint {
                if let Ran::Failed(e) = ran {
                    broken = Some(e);
                }
                Ok(Default::default())
            } else if matches!(ran, Ran::Ok) {
                sqlx::query("RELEASE op").execute(&mut *tx).await
            } else {
                match sqlx::query("ROLLBACK TO op").execute(&mut *tx).await {
                    Ok(_) => sqlx::query("RELEASE op").execute(&mut *tx).await,
                    Err(e) => Err(e),
                }
            };
            replies.push(reply);
            if let Err(e) = end {
                broken = Some(err(e));
            }
        }
        let outcome = match broken {
            // Nothing of this batch may be reported durable.
            Some(e) => {
                let _ = tx.rollback().await;
                Some(e)
            }
            None => tx.commit().await.err().map(err),
        };
        if let Some(e) = &outcome {
            tracing::warn!(event = "store.batch_failed", size = replies.len(), error = %e);
        }
        for reply in replies.drain(..) {
            reply(outcome.clone());
        }
    }
}

/// Answers an operation that never ran with `e`.
async fn fail_unrun(op: WriteOp, e: &StoreError) {
    let (_, reply) = (op.run)(None).await;
    reply(Some(e.clone()));
}

fn err(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::<Utc>::from_timestamp_micros(v)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {v} out of range")))
}

fn opt_from_micros(v: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    v.map(from_micros).transpose()
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir` with default options, runs the
    /// embedded migrations and releases stale leases.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, SqliteOptions::default()).await
    }

    /// Like [`open`](Self::open) with explicit options.
    pub async fn open_with(data_dir: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Setup(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let sync = match options.synchronous {
            Synchronous::Full => SqliteSynchronous::Full,
            Synchronous::Normal => SqliteSynchronous::Normal,
        };
        let connect = SqliteConnectOptions::new()
            .filename(data_dir.join(DB_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true)
            // Savepoints of the group-commit writer journal into memory, not a temp file.
            .pragma("temp_store", "memory")
            // 8 MiB page cache per connection (the default is 2 MiB).
            .pragma("cache_size", "-8192");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect.clone())
            .await
            .map_err(|e| StoreError::Setup(format!("cannot open {}: {e}", data_dir.display())))?;
        let read = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect.read_only(true))
            .await
            .map_err(|e| StoreError::Setup(format!("cannot open {}: {e}", data_dir.display())))?;
        let store = Self::with_pools(write, read)?;
        store.migrate().await?;
        store.release_all_leases().await?;
        Ok(store)
    }

    /// An in-memory database (one connection; for tests).
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|e| StoreError::Setup(e.to_string()))?
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Setup(e.to_string()))?;
        let store = Self::with_pools(pool.clone(), pool)?;
        store.migrate().await?;
        Ok(store)
    }

    /// Starts the group-commit writer on a thread of its own: every statement of a batch is a
    /// round trip to SQLite's worker thread, and on the shared runtime each one would wait
    /// behind all the ready request tasks (measured: batches took 2-3 ms longer under load).
    fn with_pools(write: SqlitePool, read: SqlitePool) -> Result<Self, StoreError> {
        let (writer, rx) = mpsc::channel(MAX_WRITE_BATCH);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Setup(format!("cannot start the store writer: {e}")))?;
        let pool = write.clone();
        std::thread::Builder::new()
            .name("store-writer".to_owned())
            .spawn(move || runtime.block_on(group_writer(pool, rx)))
            .map_err(|e| StoreError::Setup(format!("cannot start the store writer: {e}")))?;
        Ok(Self {
            write,
            read,
            writer,
        })
    }

    /// Runs `f` through the group-commit writer (see [`WriteOp`] for the rules `f` follows);
    /// returns its result once the batch it ran in has committed.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        self.write_op(false, f).await
    }

    /// Like [`write`](Self::write), in a savepoint of its own.
    async fn write_savepoint<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        self.write_op(true, f).await
    }

    async fn write_op<T, F>(&self, savepoint: bool, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let (done, wait) = oneshot::channel::<Result<T, StoreError>>();
        let run: WriteFn = Box::new(move |conn| {
            Box::pin(async move {
                let result = match conn {
                    Some(conn) => f(conn).await,
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
            })
        });
        let stopped = || StoreError::Unavailable("store writer stopped".to_owned());
        self.writer
            .send(WriteOp { savepoint, run })
            .await
            .map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations")
            .run(&self.write)
            .await
            .map_err(|e| StoreError::Setup(format!("migration failed: {e}")))
    }

    /// Releases every lease (the previous process that held them is gone).
    async fn release_all_leases(&self) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET lease_token = NULL, lease_until = NULL WHERE lease_token IS NOT NULL",
        )
        .execute(&self.write)
        .await
        .map_err(err)?;
        Ok(())
    }

    /// Closes the connections; every later operation fails with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.write.begin().await.map_err(err)
    }
}

async fn check_lease(tx: &mut SqliteConnection, job: &Job) -> Result<(), StoreError> {
    let held: Option<i64> =
        sqlx::query_scalar("SELECT id FROM jobs WHERE id = ? AND lease_token = ?")
            .bind(job.id)
            .bind(&job.lease_token)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::LeaseLost(job.id)),
    }
}

async fn insert_audit(tx: &mut SqliteConnection, a: &NewAudit) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (at, connection, alert_id, correlation_key, action, work_item, detail) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(micros(a.at))
    .bind(&a.connection)
    .bind(&a.alert_id)
    .bind(&a.correlation_key)
    .bind(&a.action)
    .bind(&a.work_item)
    .bind(&a.detail)
    .execute(&mut *tx)
    .await
    .map_err(err)?;
    Ok(())
}

/// Deliveries recorded per statement (SQLite allows 32,766 bound values; 7 per row).
const ACCEPT_CHUNK: usize = 512;

/// Records deliveries and their jobs with three statements whatever their number: one
/// multi-row insert of the deliveries (duplicates skipped), one look-up of the duplicates' ids,
/// one multi-row insert of the jobs (ids in acceptance order, which per-key ordering relies on).
async fn accept_chunk(
    tx: &mut SqliteConnection,
    deliveries: &[NewDelivery],
) -> Result<Vec<AcceptOutcome>, StoreError> {
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    let mut insert = sqlx::QueryBuilder::<Sqlite>::new(
        "INSERT INTO deliveries (connection, idempotency_key, alert_id, condition, event_at, \
         received_at, raw_body) ",
    );
    insert.push_values(deliveries, |mut row, d| {
        row.push_bind(&d.connection)
            .push_bind(&d.idempotency_key)
            .push_bind(&d.alert_id)
            .push_bind(&d.condition)
            .push_bind(micros(d.event_at))
            .push_bind(micros(d.received_at))
            .push_bind(&d.raw_body);
    });
    insert.push(
        " ON CONFLICT (connection, idempotency_key) DO NOTHING \
         RETURNING id, connection, idempotency_key",
    );
    let mut inserted: HashMap<(String, String), i64> = HashMap::with_capacity(deliveries.len());
    for row in insert.build().fetch_all(&mut *tx).await.map_err(err)? {
        let key = (
            row.try_get("connection").map_err(err)?,
            row.try_get("idempotency_key").map_err(err)?,
        );
        inserted.insert(key, row.try_get("id").map_err(err)?);
    }
    // Which row of the batch created each inserted delivery: the first one with its key.
    let mut new_at: Vec<Option<i64>> = Vec::with_capacity(deliveries.len());
    let mut missing: Vec<&NewDelivery> = Vec::new();
    for d in deliveries {
        let key = (d.connection.clone(), d.idempotency_key.clone());
        match inserted.remove(&key) {
            Some(id) => new_at.push(Some(id)),
            None => {
                new_at.push(None);
                missing.push(d);
            }
        }
    }
    // Duplicates (of earlier batches or of an earlier row of this one): their existing ids.
    let mut existing: HashMap<(String, String), i64> = HashMap::new();
    if !missing.is_empty() {
        let mut select = sqlx::QueryBuilder::<Sqlite>::new(
            "SELECT id, connection, idempotency_key FROM deliveries WHERE (connection, idempotency_key) IN (",
        );
        let mut list = select.separated(", ");
        for d in &missing {
            list.push("(")
                .push_bind_unseparated(&d.connection)
                .push_unseparated(", ")
                .push_bind_unseparated(&d.idempotency_key)
                .push_unseparated(")");
        }
        select.push(")");
        for row in select.build().fetch_all(&mut *tx).await.map_err(err)? {
            let key = (
                row.try_get("connection").map_err(err)?,
                row.try_get("idempotency_key").map_err(err)?,
            );
            existing.insert(key, row.try_get("id").map_err(err)?);
        }
    }
    let fresh: Vec<(&NewDelivery, i64)> = deliveries
        .iter()
        .zip(&new_at)
        .filter_map(|(d, id)| id.map(|id| (d, id)))
        .collect();
    let mut job_ids: HashMap<i64, i64> = HashMap::with_capacity(fresh.len());
    if !fresh.is_empty() {
        let mut jobs = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO jobs (connection, kind, delivery_id, alert_id, order_key, facts, \
             created_at, available_at) ",
        );
        jobs.push_values(&fresh, |mut row, (d, delivery_id)| {
            let now = micros(d.received_at);
            row.push_bind(&d.connection)
                .push_bind("event")
                .push_bind(*delivery_id)
                .push_bind(&d.alert_id)
                .push_bind(&d.order_key)
                .push_bind(&d.facts)
                .push_bind(now)
                .push_bind(now);
        });
        jobs.push(" RETURNING id, delivery_id");
        for row in jobs.build().fetch_all(&mut *tx).await.map_err(err)? {
            job_ids.insert(
                row.try_get("delivery_id").map_err(err)?,
                row.try_get("id").map_err(err)?,
            );
        }
    }
    deliveries
        .iter()
        .zip(new_at)
        .map(|(d, id)| match id {
            Some(delivery_id) => job_ids
                .get(&delivery_id)
                .map(|&job_id| AcceptOutcome::New {
                    delivery_id,
                    job_id,
                })
                .ok_or_else(|| StoreError::Corrupt(format!("no job for delivery {delivery_id}"))),
            None => existing
                .get(&(d.connection.clone(), d.idempotency_key.clone()))
                .map(|&delivery_id| AcceptOutcome::Duplicate { delivery_id })
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "delivery {} neither inserted nor found",
                        d.idempotency_key
                    ))
                }),
        })
        .collect()
}

const JOB_COLUMNS: &str = "id, connection, kind, delivery_id, alert_id, order_key, target_key, \
                           facts, attempts, created_at, lease_token, last_error";

fn job_from_row(row: &SqliteRow) -> Result<Job, StoreError> {
    let kind: String = row.try_get("kind").map_err(err)?;
    Ok(Job {
        id: row.try_get("id").map_err(err)?,
        connection: row.try_get("connection").map_err(err)?,
        kind: JobKind::parse(&kind)?,
        delivery_id: row.try_get("delivery_id").map_err(err)?,
        alert_id: row.try_get("alert_id").map_err(err)?,
        order_key: row.try_get("order_key").map_err(err)?,
        target_key: row.try_get("target_key").map_err(err)?,
        facts: row.try_get("facts").map_err(err)?,
        attempts: to_u32(row.try_get("attempts").map_err(err)?),
        created_at: from_micros(row.try_get("created_at").map_err(err)?)?,
        lease_token: row
            .try_get::<Option<String>, _>("lease_token")
            .map_err(err)?
            .unwrap_or_default(),
        last_error: row.try_get("last_error").map_err(err)?,
    })
}

fn correlation_from_row(row: &SqliteRow) -> Result<CorrelationRecord, StoreError> {
    let state: String = row.try_get("state").map_err(err)?;
    let state = TrackedState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown correlation state {state:?}")))?;
    let id: Option<String> = row.try_get("work_item_id").map_err(err)?;
    let work_item = match id {
        Some(id) => Some(WorkItemRef {
            id,
            number: row.try_get("work_item_number").map_err(err)?,
            url: row.try_get("work_item_url").map_err(err)?,
        }),
        None => None,
    };
    Ok(CorrelationRecord {
        connection: row.try_get("connection").map_err(err)?,
        key: row.try_get("key").map_err(err)?,
        order_key: row.try_get("order_key").map_err(err)?,
        alert_id: row.try_get("alert_id").map_err(err)?,
        state,
        work_item,
        opened_at: opt_from_micros(row.try_get("opened_at").map_err(err)?)?,
        last_fired_at: opt_from_micros(row.try_get("last_fired_at").map_err(err)?)?,
        last_resolved_at: opt_from_micros(row.try_get("last_resolved_at").map_err(err)?)?,
        last_event_at: opt_from_micros(row.try_get("last_event_at").map_err(err)?)?,
        fired_count: to_u32(row.try_get("fired_count").map_err(err)?),
        auto_close_at: opt_from_micros(row.try_get("auto_close_at").map_err(err)?)?,
        last_job_id: row.try_get("last_job_id").map_err(err)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(err)?)?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn accept_batch(
        &self,
        deliveries: &[NewDelivery],
    ) -> Result<Vec<AcceptOutcome>, StoreError> {
        let deliveries = deliveries.to_vec();
        self.write_savepoint(move |tx| {
            Box::pin(async move {
                let mut out = Vec::with_capacity(deliveries.len());
                for chunk in deliveries.chunks(ACCEPT_CHUNK) {
                    out.extend(accept_chunk(tx, chunk).await?);
                }
                Ok(out)
            })
        })
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
        self.write(move |tx| Box::pin(async move {
        sqlx::query_scalar(
            "INSERT INTO quarantine (connection, reason, raw_body, received_at) VALUES (?, ?, ?, ?) \
             RETURNING id",
        )
        .bind(&connection)
        .bind(&reason)
        .bind(&raw_body)
        .bind(micros(at))
        .fetch_one(&mut *tx)
        .await
        .map_err(err)
        }))
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
        let rows = self
            .write(move |tx| {
                Box::pin(async move {
                    sqlx::query(&sql)
                        .bind(&token)
                        .bind(micros(lease_until))
                        .bind(&connection)
                        .bind(micros(now))
                        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(err)
                })
            })
            .await?;
        let mut jobs = rows
            .iter()
            .map(job_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        jobs.sort_by_key(|j| j.id);
        Ok(jobs)
    }

    async fn delivery_body(&self, delivery_id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT raw_body FROM deliveries WHERE id = ?")
            .bind(delivery_id)
            .fetch_optional(&self.read)
            .await
            .map_err(err)
    }

    async fn correlation(
        &self,
        connection: &str,
        key: &str,
    ) -> Result<Option<CorrelationRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM correlations WHERE connection = ? AND key = ?")
            .bind(connection)
            .bind(key)
            .fetch_optional(&self.read)
            .await
            .map_err(err)?;
        row.as_ref().map(correlation_from_row).transpose()
    }

    async fn save(
        &self,
        job: &Job,
        correlations: &[CorrelationRecord],
        audit: &[NewAudit],
        finish: bool,
    ) -> Result<(), StoreError> {
        let (job, correlations, audit) = (job.clone(), correlations.to_vec(), audit.to_vec());
        self.write(move |tx| Box::pin(async move {
        // The lease check comes first and writes nothing when it fails (see `WriteOp`).
        if finish {
            let done = sqlx::query("DELETE FROM jobs WHERE id = ? AND lease_token = ?")
                .bind(job.id)
                .bind(&job.lease_token)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::LeaseLost(job.id));
            }
        } else {
            check_lease(tx, &job).await?;
        }
        for c in &correlations {
            let item = c.work_item.as_ref();
            sqlx::query(
                "INSERT INTO correlations (connection, key, order_key, alert_id, state, work_item_id, \
                   work_item_number, work_item_url, opened_at, last_fired_at, last_resolved_at, \
                   last_event_at, fired_count, auto_close_at, last_job_id, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (connection, key) DO UPDATE SET order_key = excluded.order_key, \
                   alert_id = excluded.alert_id, state = excluded.state, \
                   work_item_id = excluded.work_item_id, work_item_number = excluded.work_item_number, \
                   work_item_url = excluded.work_item_url, opened_at = excluded.opened_at, \
                   last_fired_at = excluded.last_fired_at, last_resolved_at = excluded.last_resolved_at, \
                   last_event_at = excluded.last_event_at, fired_count = excluded.fired_count, \
                   auto_close_at = excluded.auto_close_at, last_job_id = excluded.last_job_id, \
                   updated_at = excluded.updated_at",
            )
            .bind(&c.connection)
            .bind(&c.key)
            .bind(&c.order_key)
            .bind(&c.alert_id)
            .bind(c.state.as_str())
            .bind(item.map(|i| i.id.as_str()))
            .bind(item.and_then(|i| i.number.as_deref()))
            .bind(item.and_then(|i| i.url.as_deref()))
            .bind(c.opened_at.map(micros))
            .bind(c.last_fired_at.map(micros))
            .bind(c.last_resolved_at.map(micros))
            .bind(c.last_event_at.map(micros))
            .bind(i64::from(c.fired_count))
            .bind(c.auto_close_at.map(micros))
            .bind(c.last_job_id)
            .bind(micros(c.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        for a in &audit {
            insert_audit(tx, a).await?;
        }
        Ok(())
        }))
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
        self.write(move |tx| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE jobs SET lease_token = NULL, lease_until = NULL, available_at = ?, \
             last_error = ?, attempts = attempts + ? WHERE id = ? AND lease_token = ?",
                )
                .bind(micros(available_at))
                .bind(&error)
                .bind(i64::from(count))
                .bind(id)
                .bind(&token)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::LeaseLost(id));
                }
                Ok(())
            })
        })
        .await
    }

    async fn release(&self, job: &Job) -> Result<(), StoreError> {
        let (id, token) = (job.id, job.lease_token.clone());
        self.write(move |tx| Box::pin(async move {
        let done = sqlx::query(
            "UPDATE jobs SET lease_token = NULL, lease_until = NULL WHERE id = ? AND lease_token = ?",
        )
        .bind(id)
        .bind(&token)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(id));
        }
        Ok(())
        }))
        .await
    }

    async fn dead_letter(
        &self,
        job: &Job,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let (job, reason) = (job.clone(), reason.to_owned());
        self.write(move |tx| Box::pin(async move {
        let reason = reason.as_str();
        check_lease(tx, &job).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO dead_letters (connection, kind, delivery_id, alert_id, order_key, target_key, \
               facts, attempts, reason, raw_body, created_at, dead_at) \
             SELECT j.connection, j.kind, j.delivery_id, j.alert_id, j.order_key, j.target_key, \
               j.facts, j.attempts, ?, d.raw_body, j.created_at, ? \
             FROM jobs j LEFT JOIN deliveries d ON d.id = j.delivery_id WHERE j.id = ? \
             RETURNING id",
        )
        .bind(reason)
        .bind(micros(at))
        .bind(job.id)
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
        sqlx::query("DELETE FROM jobs WHERE id = ?")
            .bind(job.id)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        insert_audit(
            tx,
            &NewAudit {
                at,
                connection: job.connection.clone(),
                alert_id: job.alert_id.clone(),
                correlation_key: job.target_key.clone(),
                action: "dead_letter".to_owned(),
                work_item: None,
                detail: format!("job {} dead-lettered as {id}: {reason}", job.id),
            },
        )
        .await?;
        Ok(id)
        }))
        .await
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, connection, kind, delivery_id, alert_id, order_key, reason, attempts, \
             raw_body, created_at, dead_at FROM dead_letters WHERE replayed_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.read)
        .await
        .map_err(err)?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind").map_err(err)?;
                Ok(DeadLetter {
                    id: row.try_get("id").map_err(err)?,
                    connection: row.try_get("connection").map_err(err)?,
                    kind: JobKind::parse(&kind)?,
                    delivery_id: row.try_get("delivery_id").map_err(err)?,
                    alert_id: row.try_get("alert_id").map_err(err)?,
                    order_key: row.try_get("order_key").map_err(err)?,
                    reason: row.try_get("reason").map_err(err)?,
                    attempts: to_u32(row.try_get("attempts").map_err(err)?),
                    raw_body: row.try_get("raw_body").map_err(err)?,
                    created_at: from_micros(row.try_get("created_at").map_err(err)?)?,
                    dead_at: from_micros(row.try_get("dead_at").map_err(err)?)?,
                })
            })
            .collect()
    }

    async fn replay_dead_letter(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let job: Option<i64> = sqlx::query_scalar(
            "INSERT INTO jobs (connection, kind, delivery_id, alert_id, order_key, target_key, facts, \
               created_at, available_at) \
             SELECT connection, kind, delivery_id, alert_id, order_key, target_key, facts, ?1, ?1 \
             FROM dead_letters WHERE id = ?2 AND replayed_at IS NULL RETURNING id",
        )
        .bind(micros(now))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(err)?;
        let Some(job) = job else { return Ok(false) };
        let alert_id: String = sqlx::query_scalar(
            "UPDATE dead_letters SET replayed_at = ? WHERE id = ? RETURNING alert_id",
        )
        .bind(micros(now))
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
        let connection: String = sqlx::query_scalar("SELECT connection FROM jobs WHERE id = ?")
            .bind(job)
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
        insert_audit(
            &mut tx,
            &NewAudit {
                at: now,
                connection,
                alert_id,
                correlation_key: None,
                action: "replay".to_owned(),
                work_item: None,
                detail: format!("dead letter {id} replayed as job {job}"),
            },
        )
        .await?;
        tx.commit().await.map_err(err)?;
        Ok(true)
    }

    async fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, connection, reason, raw_body, received_at FROM quarantine \
             WHERE replayed_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.read)
        .await
        .map_err(err)?;
        rows.iter()
            .map(|row| {
                Ok(Quarantined {
                    id: row.try_get("id").map_err(err)?,
                    connection: row.try_get("connection").map_err(err)?,
                    reason: row.try_get("reason").map_err(err)?,
                    raw_body: row.try_get("raw_body").map_err(err)?,
                    received_at: from_micros(row.try_get("received_at").map_err(err)?)?,
                })
            })
            .collect()
    }

    async fn mark_quarantine_replayed(
        &self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE quarantine SET replayed_at = ? WHERE id = ? AND replayed_at IS NULL",
        )
        .bind(micros(at))
        .bind(id)
        .execute(&self.write)
        .await
        .map_err(err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn schedule_auto_close(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut tx = self.begin().await?;
        let rows = sqlx::query(
            "SELECT connection, key, order_key, alert_id FROM correlations \
             WHERE auto_close_at IS NOT NULL AND auto_close_at <= ? AND state = 'open'",
        )
        .bind(micros(now))
        .fetch_all(&mut *tx)
        .await
        .map_err(err)?;
        for row in &rows {
            let connection: String = row.try_get("connection").map_err(err)?;
            let key: String = row.try_get("key").map_err(err)?;
            let order_key: String = row.try_get("order_key").map_err(err)?;
            let alert_id: String = row.try_get("alert_id").map_err(err)?;
            let facts = serde_json::to_string(&crate::keys::AlertFacts::new(
                alert_id.clone(),
                crate::keys::Condition::Resolved,
                now,
            ))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO jobs (connection, kind, alert_id, order_key, target_key, facts, \
                 created_at, available_at) VALUES (?, 'auto_close', ?, ?, ?, ?, ?, ?)",
            )
            .bind(&connection)
            .bind(&alert_id)
            .bind(&order_key)
            .bind(&key)
            .bind(&facts)
            .bind(micros(now))
            .bind(micros(now))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            sqlx::query(
                "UPDATE correlations SET auto_close_at = NULL WHERE connection = ? AND key = ?",
            )
            .bind(&connection)
            .bind(&key)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok(rows.len())
    }

    async fn history(&self, alert_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        // Deliveries are the "accepted" entries (no separate audit row on the hot path).
        let rows = sqlx::query(
            "SELECT id, at, connection, alert_id, correlation_key, action, work_item, detail, src \
             FROM ( \
               SELECT id, received_at AS at, connection, alert_id, NULL AS correlation_key, \
                 'accepted' AS action, NULL AS work_item, \
                 condition || ' event, delivery ' || id AS detail, 0 AS src \
               FROM deliveries WHERE alert_id = ?1 \
               UNION ALL \
               SELECT id, at, connection, alert_id, correlation_key, action, work_item, detail, \
                 1 AS src \
               FROM audit WHERE alert_id = ?1) \
             ORDER BY at, src, id",
        )
        .bind(alert_id)
        .fetch_all(&self.read)
        .await
        .map_err(err)?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get("id").map_err(err)?,
                    entry: NewAudit {
                        at: from_micros(row.try_get("at").map_err(err)?)?,
                        connection: row.try_get("connection").map_err(err)?,
                        alert_id: row.try_get("alert_id").map_err(err)?,
                        correlation_key: row.try_get("correlation_key").map_err(err)?,
                        action: row.try_get("action").map_err(err)?,
                        work_item: row.try_get("work_item").map_err(err)?,
                        detail: row.try_get("detail").map_err(err)?,
                    },
                })
            })
            .collect()
    }

    async fn purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let at = micros(before);
        let mut tx = self.begin().await?;
        let mut n = 0;
        for sql in [
            "DELETE FROM deliveries WHERE received_at < ?1 \
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.delivery_id = deliveries.id)",
            "DELETE FROM audit WHERE at < ?1",
            "DELETE FROM dead_letters WHERE replayed_at IS NOT NULL AND replayed_at < ?1",
            "DELETE FROM quarantine WHERE replayed_at IS NOT NULL AND replayed_at < ?1",
            "DELETE FROM correlations WHERE state <> 'open' AND updated_at < ?1",
        ] {
            n += sqlx::query(sql)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(err)?
                .rows_affected();
        }
        tx.commit().await.map_err(err)?;
        Ok(n)
    }

    async fn queue_depth(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs")
            .fetch_one(&self.read)
            .await
            .map_err(err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn dead_letter_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters WHERE replayed_at IS NULL")
                .fetch_one(&self.read)
                .await
                .map_err(err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    #[tokio::test]
    async fn conformance_in_memory() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        conformance::run_all(&store).await;
    }

    #[tokio::test]
    async fn conformance_on_disk_and_reopen_releases_leases() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        conformance::run_all(&store).await;
        let now = Utc::now();
        let d = conformance::delivery("c", "reopen-1", "k", now);
        store.accept_batch(&[d]).await.unwrap();
        let claimed = store
            .claim("c", 10, now, now + chrono::Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        store.close().await;
        assert!(matches!(
            store.ping().await,
            Err(StoreError::Unavailable(_))
        ));
        let reopened = SqliteStore::open(dir.path()).await.unwrap();
        let again = reopened
            .claim("c", 10, now, now + chrono::Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(
            again.len(),
            1,
            "a crashed process's lease is released on open"
        );
        assert_eq!(again[0].id, claimed[0].id);
    }

    #[tokio::test]
    async fn accept_batch_reports_duplicates_inside_and_across_batches_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let now = Utc::now();
        let first = store
            .accept_batch(&[conformance::delivery("c", "a", "k1", now)])
            .await
            .unwrap();
        let AcceptOutcome::New { delivery_id: a, .. } = first[0] else {
            panic!("{first:?}")
        };
        let batch = [
            conformance::delivery("c", "b", "k2", now),
            conformance::delivery("c", "a", "k1", now),
            conformance::delivery("c", "b", "k2", now),
            conformance::delivery("c", "c", "k2", now),
        ];
        let out = store.accept_batch(&batch).await.unwrap();
        let (
            AcceptOutcome::New {
                delivery_id: b,
                job_id: jb,
            },
            AcceptOutcome::New { job_id: jc, .. },
        ) = (out[0], out[3])
        else {
            panic!("{out:?}")
        };
        assert_eq!(out[1], AcceptOutcome::Duplicate { delivery_id: a });
        assert_eq!(out[2], AcceptOutcome::Duplicate { delivery_id: b });
        assert!(jb < jc, "job ids follow acceptance order");
        assert_eq!(store.queue_depth().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_lost_lease_in_a_batch_does_not_fail_the_other_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let now = Utc::now();
        let later = now + chrono::Duration::hours(1);
        store
            .accept_batch(&[
                conformance::delivery("c", "x", "kx", now),
                conformance::delivery("c", "y", "ky", now),
            ])
            .await
            .unwrap();
        let jobs = store.claim("c", 10, now, later).await.unwrap();
        assert_eq!(jobs.len(), 2);
        let mut stale = jobs[0].clone();
        stale.lease_token = "not-the-lease".to_owned();
        // Queued together: they run in one transaction of the writer.
        let z = [conformance::delivery("c", "z", "kz", now)];
        let (lost, saved, accepted) = tokio::join!(
            store.save(&stale, &[], &[], true),
            store.save(&jobs[1], &[], &[], true),
            store.accept_batch(&z),
        );
        assert!(matches!(lost, Err(StoreError::LeaseLost(_))), "{lost:?}");
        saved.unwrap();
        accepted.unwrap();
        // Job x (lease kept) and z are left; y is done.
        assert_eq!(store.queue_depth().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn open_reports_unusable_directory() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let e = SqliteStore::open(&file.path().join("sub"))
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Setup(_)), "{e}");
    }
}
