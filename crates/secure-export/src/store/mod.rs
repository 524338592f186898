//! Durable state: deliveries, the job outbox, correlations, dead letters, quarantine and the
//! audit trail, behind the [`Store`] trait.
//!
//! [`SqliteStore`] is the embedded implementation (one process, WAL); [`PostgresStore`] serves
//! many processes sharing one database (`FOR UPDATE SKIP LOCKED` claims, see
//! `docs/adr/0006-postgres-store.md`). Both pass the same conformance suite
//! (`store::conformance`, feature `store-conformance`; the unit tests run it against SQLite,
//! `tests/store_postgres.rs` against PostgreSQL when `SECURE_EXPORT_TEST_PG_URL` is set).
//!
//! Semantics every implementation must keep:
//! * [`Store::accept_batch`] records each delivery and its job in one transaction, and a
//!   delivery whose `(connection, idempotency_key)` exists is reported as a duplicate without a
//!   new job. It returns only after the commit is durable.
//! * [`Store::claim`] hands out, per connection, only the *oldest* job of each order key, and
//!   only when no job of that key is leased: never two jobs of one key in flight, and in order.
//! * Every write about a claimed job checks its lease token and fails with
//!   [`StoreError::LeaseLost`] when another worker took the job over.

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secure_export_itsm::WorkItemRef;

use crate::lifecycle::{Tracked, TrackedState};

#[cfg(any(test, feature = "store-conformance"))]
pub mod conformance;
mod postgres;
mod sqlite;

pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::{DB_FILE, SqliteOptions, SqliteStore, Synchronous};

/// A store operation that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached or answered an error.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The job's lease expired and another worker claimed it.
    #[error("lease of job {0} lost")]
    LeaseLost(i64),
    /// A row could not be decoded (corrupt or written by an incompatible version).
    #[error("store data invalid: {0}")]
    Corrupt(String),
    /// Opening or migrating the database failed.
    #[error("store setup failed: {0}")]
    Setup(String),
}

/// The kind of an outbox job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// An accepted alert event.
    Event,
    /// A synthetic Resolved for an alert kind that never resolves (auto-close TTL).
    AutoClose,
}

impl JobKind {
    /// Stored spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::AutoClose => "auto_close",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "event" => Ok(Self::Event),
            "auto_close" => Ok(Self::AutoClose),
            other => Err(StoreError::Corrupt(format!("unknown job kind {other:?}"))),
        }
    }
}

/// A delivery to record.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Connection name.
    pub connection: String,
    /// See [`crate::keys::idempotency_key`].
    pub idempotency_key: String,
    /// The alert id.
    pub alert_id: String,
    /// `"Fired"` or `"Resolved"`.
    pub condition: String,
    /// Event time.
    pub event_at: DateTime<Utc>,
    /// The job's order key (see [`crate::keys`]).
    pub order_key: String,
    /// [`AlertFacts`](crate::keys::AlertFacts) as JSON.
    pub facts: String,
    /// The body as received.
    pub raw_body: Vec<u8>,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

/// The result of recording one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// Recorded with a new job.
    New {
        /// Delivery row id.
        delivery_id: i64,
        /// Job id.
        job_id: i64,
    },
    /// The same delivery was recorded before.
    Duplicate {
        /// The earlier delivery's row id.
        delivery_id: i64,
    },
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Job id.
    pub id: i64,
    /// Connection name.
    pub connection: String,
    /// Kind.
    pub kind: JobKind,
    /// The delivery it came from (none for auto-close jobs).
    pub delivery_id: Option<i64>,
    /// The alert id.
    pub alert_id: String,
    /// The order key.
    pub order_key: String,
    /// The single correlation key an auto-close job addresses.
    pub target_key: Option<String>,
    /// [`AlertFacts`](crate::keys::AlertFacts) as JSON.
    pub facts: String,
    /// Failed attempts so far (throttled waits not counted).
    pub attempts: u32,
    /// When the job was created.
    pub created_at: DateTime<Utc>,
    /// The lease this claim holds.
    pub lease_token: String,
    /// The last error, when retried.
    pub last_error: Option<String>,
    /// An earlier attempt got as far as calling the backend's create
    /// ([`Store::mark_create_started`]): the item may exist, so ask the backend first.
    pub create_started: bool,
}

/// What the store remembers about one correlation key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationRecord {
    /// Connection name.
    pub connection: String,
    /// Correlation key.
    pub key: String,
    /// Order key of the jobs that touch it.
    pub order_key: String,
    /// The alert id of the latest event.
    pub alert_id: String,
    /// State.
    pub state: TrackedState,
    /// The work item, once created.
    pub work_item: Option<WorkItemRef>,
    /// When the current work item was opened (or reopened).
    pub opened_at: Option<DateTime<Utc>>,
    /// Latest Fired event time.
    pub last_fired_at: Option<DateTime<Utc>>,
    /// Latest Resolved event time.
    pub last_resolved_at: Option<DateTime<Utc>>,
    /// Latest event time of any kind.
    pub last_event_at: Option<DateTime<Utc>>,
    /// How many Fired events the current work item has seen.
    pub fired_count: u32,
    /// When the auto-close TTL resolves it.
    pub auto_close_at: Option<DateTime<Utc>>,
    /// The last job applied to this key (makes retries of multi-key jobs skip done keys).
    pub last_job_id: Option<i64>,
    /// Last write time.
    pub updated_at: DateTime<Utc>,
}

impl CorrelationRecord {
    /// A fresh record (state `Tombstone`, no item) for a key.
    pub fn new(
        connection: impl Into<String>,
        key: impl Into<String>,
        order_key: impl Into<String>,
        alert_id: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            connection: connection.into(),
            key: key.into(),
            order_key: order_key.into(),
            alert_id: alert_id.into(),
            state: TrackedState::Tombstone,
            work_item: None,
            opened_at: None,
            last_fired_at: None,
            last_resolved_at: None,
            last_event_at: None,
            fired_count: 0,
            auto_close_at: None,
            last_job_id: None,
            updated_at: now,
        }
    }

    /// The part the lifecycle decision needs.
    #[must_use]
    pub fn tracked(&self) -> Tracked {
        Tracked {
            state: self.state,
            last_fired_at: self.last_fired_at,
            last_resolved_at: self.last_resolved_at,
        }
    }
}

/// An audit entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    /// When.
    pub at: DateTime<Utc>,
    /// Connection name.
    pub connection: String,
    /// The alert id.
    pub alert_id: String,
    /// The correlation key, when known.
    pub correlation_key: Option<String>,
    /// What happened (`accepted`, `create`, `update`, `resolve`, `dead_letter`, ...).
    pub action: String,
    /// The work item (number or id), when there is one.
    pub work_item: Option<String>,
    /// Details for people.
    pub detail: String,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Row id (the delivery id for `accepted` entries, which come from the deliveries).
    pub id: i64,
    /// The entry.
    pub entry: NewAudit,
}

/// A job that exhausted its retry budget or failed permanently.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Row id (for replay).
    pub id: i64,
    /// Connection name.
    pub connection: String,
    /// The job kind.
    pub kind: JobKind,
    /// The delivery it came from.
    pub delivery_id: Option<i64>,
    /// The alert id.
    pub alert_id: String,
    /// The order key.
    pub order_key: String,
    /// Why it was dead-lettered (the last error).
    pub reason: String,
    /// Attempts made.
    pub attempts: u32,
    /// The raw alert body, when the job came from a delivery.
    pub raw_body: Option<Vec<u8>>,
    /// When the job was created.
    pub created_at: DateTime<Utc>,
    /// When it was dead-lettered.
    pub dead_at: DateTime<Utc>,
}

/// An authenticated body that could not be modelled as an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Row id (for replay).
    pub id: i64,
    /// Connection name.
    pub connection: String,
    /// Why it could not be modelled.
    pub reason: String,
    /// The body as received.
    pub raw_body: Vec<u8>,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

/// What the quarantine holds ([`Store::quarantine_usage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuarantineUsage {
    /// Bodies not replayed yet.
    pub rows: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// Durable state of the engine (see the [module docs](self) for the rules).
#[async_trait]
pub trait Store: Send + Sync + Debug {
    /// Checks that the store answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Whether the store commits concurrent writes together by itself (group commit). The
    /// engine then hands each accept straight to [`accept_batch`](Self::accept_batch) instead
    /// of batching accepts first. Default: `false`.
    fn groups_commits(&self) -> bool {
        false
    }

    /// Hands the store the engine's metrics registry, for metrics of its own (the SQLite
    /// writer's commits). Called once by [`Engine::new`](crate::engine::Engine::new). Default:
    /// nothing.
    fn attach_metrics(&self, metrics: &crate::metrics::Metrics) {
        let _ = metrics;
    }

    /// Records deliveries and their jobs in one durable transaction; one outcome per input, in
    /// order. Duplicates inside the batch are reported like earlier ones.
    async fn accept_batch(
        &self,
        deliveries: &[NewDelivery],
    ) -> Result<Vec<AcceptOutcome>, StoreError>;

    /// Stores an authenticated body that could not be modelled; returns its id.
    async fn quarantine(
        &self,
        connection: &str,
        raw_body: &[u8],
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    /// Leases up to `limit` due jobs of `connection` (the head job of each order key that has
    /// no leased job), oldest first, until `lease_until`.
    async fn claim(
        &self,
        connection: &str,
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Job>, StoreError>;

    /// The raw body of a delivery (for re-parsing the alert, e.g. for CMDB binding).
    async fn delivery_body(&self, delivery_id: i64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Reads the record of a correlation key.
    async fn correlation(
        &self,
        connection: &str,
        key: &str,
    ) -> Result<Option<CorrelationRecord>, StoreError>;

    /// Writes correlation records and audit entries for a leased job, in one transaction; with
    /// `finish` the job is deleted in the same transaction.
    async fn save(
        &self,
        job: &Job,
        correlations: &[CorrelationRecord],
        audit: &[NewAudit],
        finish: bool,
    ) -> Result<(), StoreError>;

    /// Releases a leased job to run again at `available_at`, recording `error`; `count` adds one
    /// to its attempts.
    async fn retry(
        &self,
        job: &Job,
        available_at: DateTime<Utc>,
        error: &str,
        count: bool,
    ) -> Result<(), StoreError>;

    /// Releases a leased job untouched (graceful shutdown).
    async fn release(&self, job: &Job) -> Result<(), StoreError>;

    /// Records durably, before the job calls the backend's create, that it did: every later
    /// claim of the job reports [`Job::create_started`]. Fails with
    /// [`StoreError::LeaseLost`] when the lease is gone.
    async fn mark_create_started(&self, job: &Job, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Moves a leased job to the dead letters with `reason` (and an audit entry).
    async fn dead_letter(
        &self,
        job: &Job,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    /// Dead letters not replayed yet, oldest first.
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError>;

    /// Puts a dead letter back in the outbox as a new job (at the end of its key's order);
    /// `false` when there is no such unreplayed dead letter.
    async fn replay_dead_letter(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Quarantined bodies not replayed yet, oldest first.
    async fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError>;

    /// Marks a quarantined body replayed; `false` when there is no such unreplayed row.
    async fn mark_quarantine_replayed(
        &self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Enqueues an auto-close job for every correlation whose `auto_close_at` is due and clears
    /// its `auto_close_at`, in one transaction; returns how many were enqueued.
    async fn schedule_auto_close(&self, now: DateTime<Utc>) -> Result<usize, StoreError>;

    /// What happened to an alert id, oldest first: one `accepted` entry per recorded delivery,
    /// then the audit entries (`create`, `update`, `resolve`, `dead_letter`, `replay`, ...).
    async fn history(&self, alert_id: &str) -> Result<Vec<AuditEntry>, StoreError>;

    /// Deletes what is older than `before` (the retention period): deliveries no job refers to
    /// (after this a redelivery of such an old event would be accepted again), audit entries,
    /// dead letters and quarantined bodies (replayed or not: they were listed for an operator
    /// for the whole period), and correlations that are not open. Returns how many rows were
    /// deleted.
    async fn purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Jobs in the outbox (leased or not).
    async fn queue_depth(&self) -> Result<u64, StoreError>;

    /// Jobs in the outbox per connection (connections without jobs are absent).
    async fn queue_depths(&self) -> Result<BTreeMap<String, u64>, StoreError>;

    /// Quarantined bodies not replayed yet: how many, and their bytes.
    async fn quarantine_usage(&self) -> Result<QuarantineUsage, StoreError>;

    /// Dead letters not replayed yet.
    async fn dead_letter_count(&self) -> Result<u64, StoreError>;
}
