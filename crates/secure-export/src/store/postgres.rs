//! The PostgreSQL [`Store`], for scale-out: many receiver processes behind a load balancer share
//! one database, with no leader.
//!
//! See [`PostgresStore`] for how it stays correct across processes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secure_export_itsm::WorkItemRef;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

use super::{
    AcceptOutcome, AuditEntry, CorrelationRecord, DeadLetter, Job, JobKind, NewAudit, NewDelivery,
    QuarantineUsage, Quarantined, Store, StoreError,
};
use crate::lifecycle::TrackedState;

/// The first key of the two-key advisory locks this store takes on order keys ("SEXP"); the
/// second is a 32-bit hash of `(connection, order_key)`. A hash collision only makes two keys
/// share a lock for the length of an insert transaction.
const LOCK_NAMESPACE: i32 = 0x5345_5850;

/// Options of [`PostgresStore::connect`].
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Schema holding the tables (created if missing); `None` uses the server's default
    /// `search_path` (usually `public`). Letters, digits and `_`, not starting with a digit, at
    /// most 63 characters.
    pub schema: Option<String>,
    /// Pool size per process.
    pub max_connections: u32,
    /// How long an operation waits for a pooled connection.
    pub acquire_timeout: Duration,
    /// Server-side `statement_timeout` of every statement (keeps answers within Azure's 10 s);
    /// `None` keeps the server's setting.
    pub statement_timeout: Option<Duration>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            schema: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(5)),
        }
    }
}

/// The PostgreSQL store, for many receiver processes sharing one database with no leader.
///
/// How it stays correct across processes (the full argument is in
/// `docs/adr/0006-postgres-store.md`):
/// * **Claims** lease jobs with one `UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)`
///   statement: two processes never lease the same job, and neither waits for the other.
/// * **Per-key order**: only the job with the lowest id of its `(connection, order_key)` (the
///   head) can be leased, and the head stays in the table until it is finished or
///   dead-lettered, so a key never has two jobs in flight. For "lowest id" to be a stable
///   head, every transaction that inserts jobs first takes a transaction-scoped advisory lock
///   on each of their order keys (in sorted order, so batches cannot deadlock): per key, ids
///   are then allocated and committed in the same order, and no job can appear later *before*
///   one already claimed.
/// * **Leases**: a claim writes a random lease token and an expiry. Every write about a job
///   checks the token under a row lock (`SELECT ... FOR UPDATE`), so a worker whose lease
///   expired and was taken over gets [`StoreError::LeaseLost`] instead of overwriting the new
///   holder's work. A crashed process's jobs are claimable again once their lease expires
///   (unlike SQLite, opening the store does not release leases: other processes hold them).
///   Lease times come from the callers' clocks, so the processes' clocks must agree to well
///   within the lease (NTP).
/// * **Idempotency**: a unique constraint on `(connection, idempotency_key)` and
///   `INSERT ... ON CONFLICT DO NOTHING`; a concurrent insert of the same key in another process
///   waits for that transaction and then reports a duplicate.
///
/// TLS follows the URL's `sslmode` (`prefer` by default; `require`, `verify-ca`, `verify-full`,
/// with `sslrootcert` for a private CA), through rustls with webpki root certificates.
///
/// ```no_run
/// # async fn run() -> Result<(), secure_export::store::StoreError> {
/// use secure_export::store::{PostgresOptions, PostgresStore, Store};
///
/// let store = PostgresStore::connect(
///     "postgres://secure_export@db.internal/secure_export",
///     PostgresOptions::default(),
/// )
/// .await?;
/// store.ping().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    schema: Option<String>,
}

impl fmt::Debug for PostgresStore {
    // The connect options hold the password: show only what is safe.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool.size())
            .finish_non_exhaustive()
    }
}

fn err(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// Checks a schema name (it is spliced into `CREATE SCHEMA` and `search_path`).
fn check_schema(name: &str) -> Result<(), StoreError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if first_ok && rest_ok && name.len() <= 63 {
        Ok(())
    } else {
        Err(StoreError::Setup(format!(
            "schema {name:?} is not a plain identifier (letters, digits and _, not starting \
             with a digit, at most 63 characters)"
        )))
    }
}

/// The advisory lock id of an order key.
fn key_lock(connection: &str, order_key: &str) -> i32 {
    let digest = Sha256::new()
        .chain_update(connection.as_bytes())
        .chain_update([0x1f])
        .chain_update(order_key.as_bytes())
        .finalize();
    let mut four = [0_u8; 4];
    for (dst, src) in four.iter_mut().zip(digest.iter()) {
        *dst = *src;
    }
    i32::from_be_bytes(four)
}

/// Takes the advisory locks of the given order keys for the rest of the transaction, in sorted
/// order (two transactions locking overlapping sets cannot deadlock).
async fn lock_keys<'a>(
    tx: &mut Transaction<'_, Postgres>,
    keys: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), StoreError> {
    let mut ids: Vec<i32> = keys.into_iter().map(|(c, k)| key_lock(c, k)).collect();
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort_unstable();
    ids.dedup();
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock($1, k)) \
         FROM (SELECT k FROM unnest($2::int4[]) AS t(k) ORDER BY k) AS s",
    )
    .bind(LOCK_NAMESPACE)
    .bind(ids)
    .execute(&mut **tx)
    .await
    .map_err(err)?;
    Ok(())
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db?...`), creates
    /// the schema if [`PostgresOptions::schema`] names one, and runs the embedded migrations
    /// (serialized across processes by sqlx's migration lock). Leases held by other (or
    /// crashed) processes are left alone: they expire.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        // sqlx's parse errors name the problem, never the password.
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Setup(format!("invalid PostgreSQL URL: {e}")))?;
        Self::connect_with(connect, options).await
    }

    /// Like [`connect`](Self::connect) with parsed connect options.
    pub async fn connect_with(
        connect: PgConnectOptions,
        options: PostgresOptions,
    ) -> Result<Self, StoreError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(schema) = &options.schema {
            check_schema(schema)?;
            params.push(("search_path", schema.clone()));
        }
        if let Some(t) = options.statement_timeout {
            params.push(("statement_timeout", t.as_millis().max(1).to_string()));
        }
        let connect = if params.is_empty() {
            connect
        } else {
            connect.options(params)
        };
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Setup(format!("cannot connect to PostgreSQL: {e}")))?;
        let store = Self {
            pool,
            schema: options.schema,
        };
        store.create_schema().await?;
        store.migrate().await?;
        Ok(store)
    }

    async fn create_schema(&self) -> Result<(), StoreError> {
        let Some(schema) = &self.schema else {
            return Ok(());
        };
        // The name was checked by `check_schema`: a plain identifier, safe to splice.
        let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
        match sqlx::query(&sql).execute(&self.pool).await {
            Ok(_) => Ok(()),
            // Another process created it at the same moment (IF NOT EXISTS races).
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("42P06" | "23505")) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError::Setup(format!(
                "cannot create schema {schema:?}: {e}"
            ))),
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Setup(format!("migration failed: {e}")))
    }

    /// Closes the pool; every later operation fails with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(err)
    }
}

/// Checks that `job`'s lease is still held, and row-locks the job until the transaction ends (a
/// claim that would take the job over waits, or skips it, until then).
async fn check_lease(tx: &mut Transaction<'_, Postgres>, job: &Job) -> Result<(), StoreError> {
    let held: Option<i64> =
        sqlx::query_scalar("SELECT id FROM jobs WHERE id = $1 AND lease_token = $2 FOR UPDATE")
            .bind(job.id)
            .bind(&job.lease_token)
            .fetch_optional(&mut **tx)
            .await
            .map_err(err)?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::LeaseLost(job.id)),
    }
}

async fn insert_audit(tx: &mut Transaction<'_, Postgres>, a: &NewAudit) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (at, connection, alert_id, correlation_key, action, work_item, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(a.at)
    .bind(&a.connection)
    .bind(&a.alert_id)
    .bind(&a.correlation_key)
    .bind(&a.action)
    .bind(&a.work_item)
    .bind(&a.detail)
    .execute(&mut **tx)
    .await
    .map_err(err)?;
    Ok(())
}

/// Inserts the deliveries of a batch in one statement; returns the ids of the rows it created
/// (not those whose `(connection, idempotency_key)` existed, nor repeats inside the batch).
async fn insert_deliveries(
    tx: &mut Transaction<'_, Postgres>,
    deliveries: &[NewDelivery],
) -> Result<HashSet<i64>, StoreError> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO deliveries (connection, idempotency_key, alert_id, condition, event_at, \
           received_at, raw_body) \
         SELECT c, k, a, cond, ev, rc, body \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], \
                     $6::timestamptz[], $7::bytea[]) WITH ORDINALITY \
              AS t(c, k, a, cond, ev, rc, body, ord) \
         ORDER BY ord \
         ON CONFLICT (connection, idempotency_key) DO NOTHING RETURNING id",
    )
    .bind(
        deliveries
            .iter()
            .map(|d| d.connection.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        deliveries
            .iter()
            .map(|d| d.idempotency_key.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        deliveries
            .iter()
            .map(|d| d.alert_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        deliveries
            .iter()
            .map(|d| d.condition.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(deliveries.iter().map(|d| d.event_at).collect::<Vec<_>>())
    .bind(deliveries.iter().map(|d| d.received_at).collect::<Vec<_>>())
    .bind(
        deliveries
            .iter()
            .map(|d| d.raw_body.as_slice())
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut **tx)
    .await
    .map_err(err)?;
    Ok(ids.into_iter().collect())
}

/// The delivery id of each delivery of a batch, by position (read after the insert, so each
/// exists: ours, or one another session committed before ours could conflict with it).
async fn delivery_ids(
    tx: &mut Transaction<'_, Postgres>,
    deliveries: &[NewDelivery],
) -> Result<Vec<Option<i64>>, StoreError> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT t.ord, d.id \
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(c, k, ord) \
         JOIN deliveries d ON d.connection = t.c AND d.idempotency_key = t.k",
    )
    .bind(
        deliveries
            .iter()
            .map(|d| d.connection.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        deliveries
            .iter()
            .map(|d| d.idempotency_key.as_str())
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut **tx)
    .await
    .map_err(err)?;
    let mut ids = vec![None; deliveries.len()];
    for (ord, id) in rows {
        // `ord` counts from 1.
        let slot = usize::try_from(ord - 1)
            .ok()
            .and_then(|i| ids.get_mut(i))
            .ok_or_else(|| StoreError::Corrupt(format!("ordinality {ord} out of range")))?;
        *slot = Some(id);
    }
    Ok(ids)
}

/// Inserts the jobs of the new deliveries (`(index in batch, delivery id)`, in batch order) in
/// one statement; returns delivery id -> job id.
async fn insert_jobs(
    tx: &mut Transaction<'_, Postgres>,
    deliveries: &[NewDelivery],
    new: &[(usize, i64)],
) -> Result<HashMap<i64, i64>, StoreError> {
    if new.is_empty() {
        return Ok(HashMap::new());
    }
    let picked: Vec<(&NewDelivery, i64)> = new
        .iter()
        .filter_map(|(i, id)| deliveries.get(*i).map(|d| (d, *id)))
        .collect();
    let rows = sqlx::query(
        "INSERT INTO jobs (connection, kind, delivery_id, alert_id, order_key, facts, \
           created_at, available_at) \
         SELECT c, 'event', did, a, ok, f, at, at \
         FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], \
                     $6::timestamptz[]) WITH ORDINALITY AS t(c, did, a, ok, f, at, ord) \
         ORDER BY ord \
         RETURNING id, delivery_id",
    )
    .bind(
        picked
            .iter()
            .map(|(d, _)| d.connection.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(picked.iter().map(|(_, id)| *id).collect::<Vec<_>>())
    .bind(
        picked
            .iter()
            .map(|(d, _)| d.alert_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        picked
            .iter()
            .map(|(d, _)| d.order_key.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        picked
            .iter()
            .map(|(d, _)| d.facts.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        picked
            .iter()
            .map(|(d, _)| d.received_at)
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut **tx)
    .await
    .map_err(err)?;
    let mut jobs = HashMap::with_capacity(rows.len());
    for row in &rows {
        let delivery: Option<i64> = row.try_get("delivery_id").map_err(err)?;
        let job: i64 = row.try_get("id").map_err(err)?;
        if let Some(delivery) = delivery {
            jobs.insert(delivery, job);
        }
    }
    Ok(jobs)
}

fn job_from_row(row: &PgRow) -> Result<Job, StoreError> {
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
        created_at: row.try_get("created_at").map_err(err)?,
        lease_token: row
            .try_get::<Option<String>, _>("lease_token")
            .map_err(err)?
            .unwrap_or_default(),
        last_error: row.try_get("last_error").map_err(err)?,
        create_started: row
            .try_get::<Option<DateTime<Utc>>, _>("create_started_at")
            .map_err(err)?
            .is_some(),
    })
}

fn correlation_from_row(row: &PgRow) -> Result<CorrelationRecord, StoreError> {
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
        opened_at: row.try_get("opened_at").map_err(err)?,
        last_fired_at: row.try_get("last_fired_at").map_err(err)?,
        last_resolved_at: row.try_get("last_resolved_at").map_err(err)?,
        last_event_at: row.try_get("last_event_at").map_err(err)?,
        fired_count: to_u32(row.try_get("fired_count").map_err(err)?),
        auto_close_at: row.try_get("auto_close_at").map_err(err)?,
        last_job_id: row.try_get("last_job_id").map_err(err)?,
        updated_at: row.try_get("updated_at").map_err(err)?,
    })
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn accept_batch(
        &self,
        deliveries: &[NewDelivery],
    ) -> Result<Vec<AcceptOutcome>, StoreError> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        lock_keys(
            &mut tx,
            deliveries
                .iter()
                .map(|d| (d.connection.as_str(), d.order_key.as_str())),
        )
        .await?;
        let mut fresh = insert_deliveries(&mut tx, deliveries).await?;
        let ids = delivery_ids(&mut tx, deliveries).await?;
        // The first occurrence of a key the insert created is new; any other occurrence (an
        // earlier delivery, or a repeat inside the batch) is a duplicate.
        let mut out = Vec::with_capacity(deliveries.len());
        let mut jobs_for = Vec::new();
        for (i, (d, id)) in deliveries.iter().zip(ids).enumerate() {
            let delivery_id = id.ok_or_else(|| {
                StoreError::Unavailable(format!(
                    "delivery {:?} of connection {:?} vanished during accept",
                    d.idempotency_key, d.connection
                ))
            })?;
            if fresh.remove(&delivery_id) {
                jobs_for.push((i, delivery_id));
                out.push(AcceptOutcome::New {
                    delivery_id,
                    job_id: 0,
                });
            } else {
                out.push(AcceptOutcome::Duplicate { delivery_id });
            }
        }
        let job_ids = insert_jobs(&mut tx, deliveries, &jobs_for).await?;
        for (i, delivery_id) in &jobs_for {
            let job = job_ids.get(delivery_id).copied().ok_or_else(|| {
                StoreError::Unavailable(format!("no job recorded for delivery {delivery_id}"))
            })?;
            if let Some(AcceptOutcome::New { job_id, .. }) = out.get_mut(*i) {
                *job_id = job;
            }
        }
        tx.commit().await.map_err(err)?;
        Ok(out)
    }

    async fn quarantine(
        &self,
        connection: &str,
        raw_body: &[u8],
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO quarantine (connection, reason, raw_body, received_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(connection)
        .bind(reason)
        .bind(raw_body)
        .bind(at)
        .fetch_one(&self.pool)
        .await
        .map_err(err)
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
        // One statement, so one atomic step. SKIP LOCKED: a job another process is leasing (or
        // saving) right now is passed over, not waited for; a job whose row changed after our
        // snapshot is re-checked against its newest version (READ COMMITTED re-evaluation), so
        // a lease committed meanwhile excludes it. The NOT EXISTS keeps claims to the head of
        // each key: a key whose head is leased, waiting or being finished yields nothing.
        let rows = sqlx::query(
            "WITH picked AS ( \
               SELECT j.id FROM jobs j \
               WHERE j.connection = $1 AND j.available_at <= $2 \
                 AND (j.lease_until IS NULL OR j.lease_until < $2) \
                 AND NOT EXISTS (SELECT 1 FROM jobs e WHERE e.connection = j.connection \
                                 AND e.order_key = j.order_key AND e.id < j.id) \
               ORDER BY j.id LIMIT $3 \
               FOR UPDATE OF j SKIP LOCKED) \
             UPDATE jobs SET lease_token = $4, lease_until = $5 \
             FROM picked WHERE jobs.id = picked.id \
             RETURNING jobs.id, jobs.connection, jobs.kind, jobs.delivery_id, jobs.alert_id, \
               jobs.order_key, jobs.target_key, jobs.facts, jobs.attempts, jobs.created_at, \
               jobs.lease_token, jobs.last_error, jobs.create_started_at",
        )
        .bind(connection)
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(&token)
        .bind(lease_until)
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        let mut jobs = rows
            .iter()
            .map(job_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        jobs.sort_by_key(|j| j.id);
        Ok(jobs)
    }

    async fn delivery_body(&self, delivery_id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT raw_body FROM deliveries WHERE id = $1")
            .bind(delivery_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)
    }

    async fn correlation(
        &self,
        connection: &str,
        key: &str,
    ) -> Result<Option<CorrelationRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM correlations WHERE connection = $1 AND key = $2")
            .bind(connection)
            .bind(key)
            .fetch_optional(&self.pool)
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
        let mut tx = self.begin().await?;
        check_lease(&mut tx, job).await?;
        // Upserts in key order: two jobs (of different order keys) that touch overlapping
        // correlations take the row locks in the same order and cannot deadlock.
        let mut sorted: Vec<&CorrelationRecord> = correlations.iter().collect();
        sorted.sort_by(|a, b| (&a.connection, &a.key).cmp(&(&b.connection, &b.key)));
        for c in sorted {
            let item = c.work_item.as_ref();
            sqlx::query(
                "INSERT INTO correlations (connection, key, order_key, alert_id, state, work_item_id, \
                   work_item_number, work_item_url, opened_at, last_fired_at, last_resolved_at, \
                   last_event_at, fired_count, auto_close_at, last_job_id, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                 ON CONFLICT (connection, key) DO UPDATE SET order_key = EXCLUDED.order_key, \
                   alert_id = EXCLUDED.alert_id, state = EXCLUDED.state, \
                   work_item_id = EXCLUDED.work_item_id, \
                   work_item_number = EXCLUDED.work_item_number, \
                   work_item_url = EXCLUDED.work_item_url, opened_at = EXCLUDED.opened_at, \
                   last_fired_at = EXCLUDED.last_fired_at, \
                   last_resolved_at = EXCLUDED.last_resolved_at, \
                   last_event_at = EXCLUDED.last_event_at, fired_count = EXCLUDED.fired_count, \
                   auto_close_at = EXCLUDED.auto_close_at, last_job_id = EXCLUDED.last_job_id, \
                   updated_at = EXCLUDED.updated_at",
            )
            .bind(&c.connection)
            .bind(&c.key)
            .bind(&c.order_key)
            .bind(&c.alert_id)
            .bind(c.state.as_str())
            .bind(item.map(|i| i.id.as_str()))
            .bind(item.and_then(|i| i.number.as_deref()))
            .bind(item.and_then(|i| i.url.as_deref()))
            .bind(c.opened_at)
            .bind(c.last_fired_at)
            .bind(c.last_resolved_at)
            .bind(c.last_event_at)
            .bind(i64::from(c.fired_count))
            .bind(c.auto_close_at)
            .bind(c.last_job_id)
            .bind(c.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        for a in audit {
            insert_audit(&mut tx, a).await?;
        }
        if finish {
            sqlx::query("DELETE FROM jobs WHERE id = $1")
                .bind(job.id)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    async fn retry(
        &self,
        job: &Job,
        available_at: DateTime<Utc>,
        error: &str,
        count: bool,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_token = NULL, lease_until = NULL, available_at = $1, \
             last_error = $2, attempts = attempts + $3 WHERE id = $4 AND lease_token = $5",
        )
        .bind(available_at)
        .bind(error)
        .bind(i64::from(count))
        .bind(job.id)
        .bind(&job.lease_token)
        .execute(&self.pool)
        .await
        .map_err(err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(job.id));
        }
        Ok(())
    }

    async fn mark_create_started(&self, job: &Job, at: DateTime<Utc>) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET create_started_at = COALESCE(create_started_at, $1) \
             WHERE id = $2 AND lease_token = $3",
        )
        .bind(at)
        .bind(job.id)
        .bind(&job.lease_token)
        .execute(&self.pool)
        .await
        .map_err(err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(job.id));
        }
        Ok(())
    }

    async fn release(&self, job: &Job) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_token = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_token = $2",
        )
        .bind(job.id)
        .bind(&job.lease_token)
        .execute(&self.pool)
        .await
        .map_err(err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(job.id));
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
        job: &Job,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin().await?;
        check_lease(&mut tx, job).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO dead_letters (connection, kind, delivery_id, alert_id, order_key, \
               target_key, facts, attempts, reason, raw_body, created_at, dead_at) \
             SELECT j.connection, j.kind, j.delivery_id, j.alert_id, j.order_key, j.target_key, \
               j.facts, j.attempts, $1, d.raw_body, j.created_at, $2 \
             FROM jobs j LEFT JOIN deliveries d ON d.id = j.delivery_id WHERE j.id = $3 \
             RETURNING id",
        )
        .bind(reason)
        .bind(at)
        .bind(job.id)
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
        sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(job.id)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        insert_audit(
            &mut tx,
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
        tx.commit().await.map_err(err)?;
        Ok(id)
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, connection, kind, delivery_id, alert_id, order_key, reason, attempts, \
             raw_body, created_at, dead_at FROM dead_letters WHERE replayed_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
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
                    created_at: row.try_get("created_at").map_err(err)?,
                    dead_at: row.try_get("dead_at").map_err(err)?,
                })
            })
            .collect()
    }

    async fn replay_dead_letter(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        // The row lock makes concurrent replays of one dead letter (from two processes) replay
        // it once: the second re-reads `replayed_at` after the first commits.
        let row = sqlx::query(
            "SELECT connection, order_key, alert_id FROM dead_letters \
             WHERE id = $1 AND replayed_at IS NULL FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(err)?;
        let Some(row) = row else {
            return Ok(false);
        };
        let connection: String = row.try_get("connection").map_err(err)?;
        let order_key: String = row.try_get("order_key").map_err(err)?;
        let alert_id: String = row.try_get("alert_id").map_err(err)?;
        lock_keys(&mut tx, [(connection.as_str(), order_key.as_str())]).await?;
        let job: i64 = sqlx::query_scalar(
            // The replayed job counts as create-started: the dead one may have reached create.
            "INSERT INTO jobs (connection, kind, delivery_id, alert_id, order_key, target_key, \
               facts, created_at, available_at, create_started_at) \
             SELECT connection, kind, delivery_id, alert_id, order_key, target_key, facts, \
               $1, $1, $1 \
             FROM dead_letters WHERE id = $2 RETURNING id",
        )
        .bind(now)
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
        sqlx::query("UPDATE dead_letters SET replayed_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
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
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        rows.iter()
            .map(|row| {
                Ok(Quarantined {
                    id: row.try_get("id").map_err(err)?,
                    connection: row.try_get("connection").map_err(err)?,
                    reason: row.try_get("reason").map_err(err)?,
                    raw_body: row.try_get("raw_body").map_err(err)?,
                    received_at: row.try_get("received_at").map_err(err)?,
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
            "UPDATE quarantine SET replayed_at = $1 WHERE id = $2 AND replayed_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn schedule_auto_close(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut tx = self.begin().await?;
        // Every process runs this (no leader): the row locks hand each due correlation to one
        // of them; the others skip it now and find `auto_close_at` cleared afterwards.
        let rows = sqlx::query(
            "SELECT connection, key, order_key, alert_id FROM correlations \
             WHERE auto_close_at IS NOT NULL AND auto_close_at <= $1 AND state = 'open' \
             ORDER BY connection, key FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(err)?;
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            let connection: String = row.try_get("connection").map_err(err)?;
            let key: String = row.try_get("key").map_err(err)?;
            let order_key: String = row.try_get("order_key").map_err(err)?;
            let alert_id: String = row.try_get("alert_id").map_err(err)?;
            due.push((connection, key, order_key, alert_id));
        }
        lock_keys(
            &mut tx,
            due.iter()
                .map(|(connection, _, order_key, _)| (connection.as_str(), order_key.as_str())),
        )
        .await?;
        for (connection, key, order_key, alert_id) in &due {
            let facts = serde_json::to_string(&crate::keys::AlertFacts::new(
                alert_id.clone(),
                crate::keys::Condition::Resolved,
                now,
            ))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO jobs (connection, kind, alert_id, order_key, target_key, facts, \
                 created_at, available_at) VALUES ($1, 'auto_close', $2, $3, $4, $5, $6, $6)",
            )
            .bind(connection)
            .bind(alert_id)
            .bind(order_key)
            .bind(key)
            .bind(&facts)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            sqlx::query(
                "UPDATE correlations SET auto_close_at = NULL WHERE connection = $1 AND key = $2",
            )
            .bind(connection)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok(due.len())
    }

    async fn history(&self, alert_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        // Deliveries are the "accepted" entries (no separate audit row on the hot path).
        let rows = sqlx::query(
            "SELECT id, at, connection, alert_id, correlation_key, action, work_item, detail, src \
             FROM ( \
               SELECT id, received_at AS at, connection, alert_id, NULL::text AS correlation_key, \
                 'accepted'::text AS action, NULL::text AS work_item, \
                 condition || ' event, delivery ' || id AS detail, 0 AS src \
               FROM deliveries WHERE alert_id = $1 \
               UNION ALL \
               SELECT id, at, connection, alert_id, correlation_key, action, work_item, detail, \
                 1 AS src \
               FROM audit WHERE alert_id = $1) AS h \
             ORDER BY at, src, id",
        )
        .bind(alert_id)
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get("id").map_err(err)?,
                    entry: NewAudit {
                        at: row.try_get("at").map_err(err)?,
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
        let mut tx = self.begin().await?;
        let mut n = 0;
        for sql in [
            "DELETE FROM deliveries d WHERE d.received_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.delivery_id = d.id)",
            "DELETE FROM audit WHERE at < $1",
            "DELETE FROM dead_letters WHERE dead_at < $1 \
             OR (replayed_at IS NOT NULL AND replayed_at < $1)",
            "DELETE FROM quarantine WHERE received_at < $1 \
             OR (replayed_at IS NOT NULL AND replayed_at < $1)",
            "DELETE FROM correlations WHERE state <> 'open' AND updated_at < $1",
        ] {
            n += sqlx::query(sql)
                .bind(before)
                .execute(&mut *tx)
                .await
                .map_err(err)?
                .rows_affected();
        }
        tx.commit().await.map_err(err)?;
        Ok(n)
    }

    async fn queue_depth(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(&self.pool)
            .await
            .map_err(err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn queue_depths(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT connection, count(*) FROM jobs GROUP BY connection")
                .fetch_all(&self.pool)
                .await
                .map_err(err)?;
        Ok(rows
            .into_iter()
            .map(|(c, n)| (c, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    async fn quarantine_usage(&self) -> Result<QuarantineUsage, StoreError> {
        let (rows, bytes): (i64, i64) = sqlx::query_as(
            "SELECT count(*), COALESCE(SUM(octet_length(raw_body)), 0)::bigint FROM quarantine \
             WHERE replayed_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(err)?;
        Ok(QuarantineUsage {
            rows: u64::try_from(rows).unwrap_or(0),
            bytes: u64::try_from(bytes).unwrap_or(0),
        })
    }

    async fn dead_letter_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL")
                .fetch_one(&self.pool)
                .await
                .map_err(err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["se", "_se", "secure_export_1", &"a".repeat(63)] {
            assert!(check_schema(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1se",
            "se-x",
            "se x",
            "se\"; DROP",
            "Ä",
            &"a".repeat(64),
        ] {
            let e = check_schema(bad).unwrap_err();
            assert!(
                matches!(&e, StoreError::Setup(m) if m.contains("schema")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn key_locks_separate_connection_and_key() {
        assert_eq!(key_lock("c", "k"), key_lock("c", "k"));
        assert_ne!(key_lock("c", "k"), key_lock("ck", ""));
        assert_ne!(key_lock("c1", "k"), key_lock("c2", "k"));
    }

    #[tokio::test]
    async fn connect_reports_bad_url_and_unreachable_server_without_password() {
        let e = PostgresStore::connect("mysql://x", PostgresOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Setup(_)), "{e}");
        // Port 1 on loopback: nothing listens; the error must not echo the password.
        let options = PostgresOptions {
            acquire_timeout: Duration::from_millis(300),
            ..PostgresOptions::default()
        };
        let e = PostgresStore::connect("postgres://u:hunter2@127.0.0.1:1/db", options)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Setup(_)), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = PostgresStore::connect(
            "postgres://u@127.0.0.1:1/db",
            PostgresOptions {
                schema: Some("bad-name".to_owned()),
                ..PostgresOptions::default()
            },
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("bad-name"), "{e}");
    }
}
