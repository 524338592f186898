//! The [`Engine`]: accepts alerts durably (group commit), and runs the outbox workers that turn
//! them into ITSM work items.
//!
//! ```
//! use std::sync::Arc;
//! use secure_export::engine::{ConnectionRuntime, Engine, EngineOptions};
//! use secure_export::metrics::Metrics;
//! use secure_export::store::SqliteStore;
//! use secure_export_itsm::mock::MockConnector;
//! use secure_export_schema::Alert;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = Arc::new(SqliteStore::open_in_memory().await?);
//! let itsm = MockConnector::new();
//! let conn = ConnectionRuntime::new("default", Arc::new(itsm.clone()));
//! let engine = Engine::new(store, vec![conn], EngineOptions::default(), Metrics::new()).await?;
//! let workers = engine.start_workers();
//! let body = br#"{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{
//!   "alertId":"/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/1","alertRule":"cpu",
//!   "severity":"Sev1","monitorCondition":"Fired","firedDateTime":"2024-05-01T10:00:00Z"},
//!   "alertContext":{}}}"#;
//! let alert = Alert::from_slice(body)?;
//! engine.accept("default", &alert, body).await?;
//! while engine.queue_depth().await? > 0 {
//!     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//! }
//! workers.shutdown().await;
//! assert_eq!(itsm.tickets().len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod clock;
mod health;
pub(crate) mod limiter;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use secure_export_itsm::ItsmConnector;
use secure_export_schema::Alert;
use tokio::sync::{Notify, mpsc, oneshot};

pub use clock::{ManualClock, SystemClock, WallClock};
pub use health::{Check, HealthReport, NotReady};

use crate::admission::AllowList;
use crate::keys::{self, AlertFacts};
use crate::lifecycle::LifecyclePolicy;
use crate::mapping::Mapping;
use crate::metrics::Metrics;
pub use crate::outbox::Workers;
use crate::store::{
    AcceptOutcome, AuditEntry, DeadLetter, NewDelivery, Quarantined, Store, StoreError,
};

/// One connection as the engine runs it: backend, CMDB binder, lifecycle policy, mapping.
/// Build it with [`ConnectionRuntime::new`] and set the fields you need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionRuntime {
    /// Connection name (routing, metrics labels, store rows).
    pub name: String,
    /// The ITSM backend.
    pub connector: Arc<dyn ItsmConnector>,
    /// CMDB binding; `None` creates items without CIs.
    pub binder: Option<secure_export_cmdb::Binder>,
    /// Lifecycle policy.
    pub policy: LifecyclePolicy,
    /// Alert -> work item mapping.
    pub mapping: Mapping,
    /// Most ITSM calls per second to this backend (`None`: no ceiling; the pace is learned
    /// from its refusals).
    pub max_calls_per_second: Option<f64>,
    /// Most targets of one alert bound to CIs, and most items one alert opens in `ci` mode
    /// (default 50; the rest are listed in the work item's notes).
    pub max_targets: usize,
    /// The payload allow-lists, applied again when a quarantined body is replayed (the router's
    /// [`ConnectionGate`](crate::router::ConnectionGate) applies them on arrival).
    pub allow_list: AllowList,
    /// Most jobs this connection may have queued; past it its new alerts get 503 (the other
    /// connections are not affected). `None`: only the engine's high-water mark applies.
    pub max_queued: Option<u64>,
    /// An event dated further than this in the future is treated as received now, so a wrong
    /// (or hostile) timestamp cannot make later events stale.
    pub max_clock_skew: Duration,
    /// The backend's call limiter, shared with the CMDB binder ([`Self::cmdb_pacer`]).
    limiter: Arc<limiter::Limiter>,
}

impl ConnectionRuntime {
    /// A connection with the default policy and mapping and no binder.
    pub fn new(name: impl Into<String>, connector: Arc<dyn ItsmConnector>) -> Self {
        Self {
            name: name.into(),
            connector,
            binder: None,
            policy: LifecyclePolicy::default(),
            mapping: Mapping::default(),
            max_calls_per_second: None,
            max_targets: DEFAULT_MAX_TARGETS,
            allow_list: AllowList::any(),
            max_queued: None,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
            limiter: Arc::new(limiter::Limiter::default()),
        }
    }

    /// A pacer for this connection's CMDB binder ([`BinderBuilder::pacer`]): CMDB lookups then
    /// wait their turn in the same rate limiter as the ITSM calls (and a throttled lookup
    /// pauses both). Clones of this runtime share it.
    ///
    /// [`BinderBuilder::pacer`]: secure_export_cmdb::BinderBuilder::pacer
    pub fn cmdb_pacer(&self) -> Arc<dyn secure_export_cmdb::LookupPacer> {
        self.limiter.clone()
    }
}

/// Default [`ConnectionRuntime::max_targets`].
pub const DEFAULT_MAX_TARGETS: usize = 50;

/// Default [`ConnectionRuntime::max_clock_skew`]: 5 minutes.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Engine tuning.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Concurrent ITSM jobs per connection (backend).
    pub workers_per_backend: usize,
    /// Failed attempts before a job is dead-lettered (throttled waits do not count).
    pub max_attempts: u32,
    /// Age after which a failing job is dead-lettered.
    pub max_age: Duration,
    /// First retry delay cap (full jitter: the delay is uniform in `0..=cap`).
    pub base_delay: Duration,
    /// Largest retry delay cap.
    pub max_delay: Duration,
    /// Jobs in the outbox above which `accept` answers [`AcceptError::Overloaded`].
    pub high_water_mark: u64,
    /// How long a claimed job is leased (a crashed worker's job is claimable after it).
    pub lease: Duration,
    /// How often idle workers look for due jobs (new accepts wake them at once).
    pub poll_interval: Duration,
    /// Timeout of each ITSM call.
    pub call_timeout: Duration,
    /// Most deliveries in one batch of the accept batching stage (stores that do not group
    /// commits themselves).
    pub max_batch: usize,
    /// How often the auto-close sweep and gauge refresh run.
    pub housekeeping_interval: Duration,
    /// How long shutdown waits for in-flight jobs before releasing them.
    pub shutdown_grace: Duration,
    /// How long deliveries, audit entries and finished correlations are kept (`None` keeps
    /// everything). Redeliveries are recognised as duplicates only within this period.
    pub retention: Option<Duration>,
    /// How often expired rows are purged.
    pub purge_interval: Duration,
    /// Most quarantined bodies kept (not replayed); past it unmodelable bodies get 503.
    pub quarantine_max_rows: u64,
    /// Most bytes of quarantined bodies kept; past it unmodelable bodies get 503.
    pub quarantine_max_bytes: u64,
    /// How often the store and the backends are probed for [`Engine::health`].
    pub health_interval: Duration,
    /// Wall clock (tests inject a [`ManualClock`]).
    pub clock: Arc<dyn WallClock>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            workers_per_backend: 8,
            max_attempts: 12,
            max_age: Duration::from_secs(24 * 3600),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
            high_water_mark: 100_000,
            lease: Duration::from_secs(300),
            poll_interval: Duration::from_millis(500),
            call_timeout: Duration::from_secs(30),
            max_batch: 1024,
            housekeeping_interval: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            retention: Some(Duration::from_secs(30 * 24 * 3600)),
            purge_interval: Duration::from_secs(3600),
            quarantine_max_rows: 10_000,
            quarantine_max_bytes: 256 * 1024 * 1024,
            health_interval: Duration::from_secs(15),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The answer to an accepted delivery (always HTTP 202).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Accepted {
    /// Recorded with a new job.
    New {
        /// Delivery row id.
        delivery_id: i64,
        /// Job id.
        job_id: i64,
    },
    /// A redelivery of an event recorded before.
    Duplicate {
        /// The earlier delivery.
        delivery_id: i64,
    },
    /// A well-formed alert whose monitor condition is neither Fired nor Resolved: quarantined.
    Quarantined {
        /// Quarantine row id.
        id: i64,
    },
}

/// Why a delivery was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// No connection of that name (HTTP 404 or 403, the router decides).
    #[error("unknown connection {0:?}")]
    UnknownConnection(String),
    /// The store could not record it (HTTP 503 + Retry-After).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The outbox is over its high-water mark (HTTP 503 + Retry-After).
    #[error("outbox over its high-water mark")]
    Overloaded,
    /// This connection has `max_queued` jobs queued (HTTP 503 + Retry-After, this connection
    /// only).
    #[error("connection {connection:?} has {queued} jobs queued (max_queued {max})")]
    ConnectionBusy {
        /// The connection.
        connection: String,
        /// Its queued jobs.
        queued: u64,
        /// Its `max_queued`.
        max: u64,
    },
    /// The quarantine is full (`quarantine_max_rows` / `quarantine_max_bytes`): HTTP 503 +
    /// Retry-After, so the body is retried rather than dropped.
    #[error("quarantine full ({rows} bodies, {bytes} bytes)")]
    QuarantineFull {
        /// Bodies held.
        rows: u64,
        /// Their bytes.
        bytes: u64,
    },
}

impl AcceptError {
    /// A stable code for the JSON error body and metrics.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownConnection(_) => "unknown_connection",
            Self::Unavailable(_) => "store_unavailable",
            Self::Overloaded => "overloaded",
            Self::ConnectionBusy { .. } => "connection_overloaded",
            Self::QuarantineFull { .. } => "quarantine_full",
        }
    }
}

/// An engine operation (admin, setup) that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration is unusable.
    #[error("invalid engine configuration: {0}")]
    Config(String),
    /// No such dead letter or quarantined body (or it was replayed already).
    #[error("{0} not found")]
    NotFound(String),
    /// A quarantined body still cannot be parsed.
    #[error("quarantined body {id} still cannot be parsed: {message}")]
    StillUnparseable {
        /// Quarantine row id.
        id: i64,
        /// The parser's error.
        message: String,
    },
    /// Accepting a replayed body failed.
    #[error(transparent)]
    Accept(#[from] AcceptError),
    /// A replayed body is refused by the connection's allow-lists.
    #[error("refused by the allow-lists of connection {connection:?}: {reason}")]
    Forbidden {
        /// The connection.
        connection: String,
        /// Why.
        reason: String,
    },
}

pub(crate) struct WriteRequest {
    pub(crate) delivery: NewDelivery,
    pub(crate) reply: oneshot::Sender<Result<AcceptOutcome, StoreError>>,
}

pub(crate) struct Conn {
    pub(crate) rt: ConnectionRuntime,
    pub(crate) notify: Notify,
    /// Shared pause after a throttled answer and call pacing for this backend.
    pub(crate) limiter: Arc<limiter::Limiter>,
    /// Approximate jobs queued for this connection (resynchronized by housekeeping).
    pub(crate) depth: AtomicI64,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) connections: BTreeMap<String, Arc<Conn>>,
    pub(crate) options: EngineOptions,
    pub(crate) metrics: Metrics,
    /// The batching stage in front of the store; `None` when the store groups commits itself.
    writer: Option<mpsc::Sender<WriteRequest>>,
    /// Approximate outbox depth (resynchronized from the store by housekeeping).
    pub(crate) depth: AtomicI64,
    /// Per-correlation-key locks (keys of `ci` mode can be shared by jobs of different order keys).
    pub(crate) key_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// What the background checks last saw.
    health: RwLock<HealthReport>,
}

/// The engine (see the [module docs](self)). Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.inner.store)
            .field(
                "connections",
                &self.inner.connections.keys().collect::<Vec<_>>(),
            )
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds the engine and, for a store that does not group commits itself (see
    /// [`Store::groups_commits`]), starts the stage that batches accepts. Workers start with
    /// [`start_workers`](Self::start_workers).
    pub async fn new(
        store: Arc<dyn Store>,
        connections: Vec<ConnectionRuntime>,
        options: EngineOptions,
        metrics: Metrics,
    ) -> Result<Engine, EngineError> {
        let mut map = BTreeMap::new();
        for mut rt in connections {
            rt.mapping = rt.mapping.with_backend_defaults(rt.connector.backend());
            if rt.name.trim().is_empty() {
                return Err(EngineError::Config(
                    "a connection has an empty name".to_owned(),
                ));
            }
            let name = rt.name.clone();
            let limiter = rt.limiter.clone();
            limiter.set_ceiling(rt.max_calls_per_second);
            let conn = Conn {
                rt,
                notify: Notify::new(),
                limiter,
                depth: AtomicI64::new(0),
            };
            if map.insert(name.clone(), Arc::new(conn)).is_some() {
                return Err(EngineError::Config(format!(
                    "connection {name:?} is defined twice"
                )));
            }
        }
        if options.workers_per_backend == 0 || options.max_batch == 0 {
            return Err(EngineError::Config(
                "workers_per_backend and max_batch must be at least 1".to_owned(),
            ));
        }
        store.attach_metrics(&metrics);
        let depth = store.queue_depth().await?;
        for (name, n) in store.queue_depths().await? {
            if let Some(conn) = map.get(&name) {
                conn.depth
                    .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
            }
        }
        // The store just answered: it starts healthy; backends are unknown until probed.
        let health = HealthReport {
            store: Check::passed(options.clock.now()),
            backends: map.keys().map(|n| (n.clone(), Check::pending())).collect(),
        };
        let dead = store.dead_letter_count().await?;
        let writer = if store.groups_commits() {
            None
        } else {
            let (writer, rx) = mpsc::channel(options.max_batch.saturating_mul(4));
            tokio::spawn(group_commit(
                store.clone(),
                rx,
                options.max_batch,
                metrics.clone(),
            ));
            Some(writer)
        };
        metrics.set_gauge("secure_export_queue_depth", &[], depth as f64);
        metrics.set_gauge("secure_export_dead_letters", &[], dead as f64);
        let inner = Inner {
            store,
            connections: map,
            options,
            metrics,
            writer,
            depth: AtomicI64::new(i64::try_from(depth).unwrap_or(i64::MAX)),
            key_locks: Mutex::new(HashMap::new()),
            health: RwLock::new(health),
        };
        Ok(Engine {
            inner: Arc::new(inner),
        })
    }

    /// Durably records a delivery and its job, returning only after the commit.
    ///
    /// Concurrent calls are committed together (group commit). A redelivery of the same event
    /// is [`Accepted::Duplicate`]; an alert whose monitor condition is neither Fired nor
    /// Resolved is quarantined ([`Accepted::Quarantined`]).
    pub async fn accept(
        &self,
        connection: &str,
        alert: &Alert,
        raw_body: &[u8],
    ) -> Result<Accepted, AcceptError> {
        let inner = &self.inner;
        let Some(conn) = inner.connections.get(connection) else {
            return Err(AcceptError::UnknownConnection(connection.to_owned()));
        };
        let now = inner.options.clock.now();
        let Some(mut facts) = AlertFacts::from_alert(alert, raw_body, now) else {
            let reason = format!(
                "monitorCondition {:?} is neither Fired nor Resolved",
                alert.essentials.monitor_condition.as_str()
            );
            let id = self.quarantine(connection, raw_body, &reason).await?;
            return Ok(Accepted::Quarantined { id });
        };
        let reason = if facts.condition == keys::Condition::Fired {
            "fired"
        } else {
            "resolved"
        };
        let depth = u64::try_from(inner.depth.load(Ordering::Relaxed)).unwrap_or(0);
        if depth >= inner.options.high_water_mark {
            self.count_delivery(connection, "rejected", "overloaded");
            return Err(AcceptError::Overloaded);
        }
        if let Some(max) = conn.rt.max_queued {
            let queued = u64::try_from(conn.depth.load(Ordering::Relaxed)).unwrap_or(0);
            if queued >= max {
                self.count_delivery(connection, "rejected", "connection_overloaded");
                return Err(AcceptError::ConnectionBusy {
                    connection: connection.to_owned(),
                    queued,
                    max,
                });
            }
        }
        // The idempotency key keeps the time as sent, so a redelivery of a future-dated event
        // is still recognised; ordering and staleness use the corrected time.
        let idempotency_key = keys::idempotency_key(connection, &facts);
        if facts.clamp_future(now, conn.rt.max_clock_skew) {
            inner.metrics.inc_counter(
                "secure_export_future_events_total",
                &[("connection", connection)],
            );
            tracing::warn!(
                event = "accept.future_event",
                connection,
                alert_id = ?facts.alert_id,
                "event dated more than max_clock_skew in the future; treated as received now"
            );
        }
        let mode = conn.rt.policy.correlation;
        let delivery = NewDelivery {
            connection: connection.to_owned(),
            idempotency_key,
            alert_id: facts.alert_id.clone(),
            condition: facts.condition.as_str().to_owned(),
            event_at: facts.event_at,
            order_key: keys::order_key(mode, &facts),
            facts: serde_json::to_string(&facts)
                .map_err(|e| AcceptError::Unavailable(format!("cannot encode alert facts: {e}")))?,
            raw_body: raw_body.to_vec(),
            received_at: now,
        };
        let outcome = match &inner.writer {
            Some(writer) => {
                let (reply, wait) = oneshot::channel();
                if writer.send(WriteRequest { delivery, reply }).await.is_err() {
                    Err(None)
                } else {
                    match wait.await {
                        Ok(result) => result.map_err(Some),
                        Err(_) => Err(None),
                    }
                }
            }
            // The store groups concurrent commits itself: no batching stage in between.
            None => inner
                .store
                .accept_batch(std::slice::from_ref(&delivery))
                .await
                .and_then(|mut outcomes| match (outcomes.pop(), outcomes.is_empty()) {
                    (Some(outcome), true) => Ok(outcome),
                    _ => Err(StoreError::Corrupt(
                        "store answered a wrong number of outcomes for one delivery".to_owned(),
                    )),
                })
                .map_err(Some),
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(Some(e)) => {
                self.count_delivery(connection, "rejected", "unavailable");
                tracing::warn!(event = "accept.store_failed", connection, error = %crate::logsafe::esc(&e));
                return Err(AcceptError::Unavailable(e.to_string()));
            }
            Err(None) => {
                self.count_delivery(connection, "rejected", "unavailable");
                return Err(AcceptError::Unavailable("store writer stopped".to_owned()));
            }
        };
        match outcome {
            AcceptOutcome::New {
                delivery_id,
                job_id,
            } => {
                self.count_delivery(connection, "accepted", reason);
                self.add_depth(Some(conn), 1);
                conn.notify.notify_one();
                Ok(Accepted::New {
                    delivery_id,
                    job_id,
                })
            }
            AcceptOutcome::Duplicate { delivery_id } => {
                self.count_delivery(connection, "duplicate", reason);
                Ok(Accepted::Duplicate { delivery_id })
            }
        }
    }

    /// Stores an authenticated body that could not be modelled (replayable later).
    pub async fn quarantine(
        &self,
        connection: &str,
        raw_body: &[u8],
        reason: &str,
    ) -> Result<i64, AcceptError> {
        if !self.inner.connections.contains_key(connection) {
            return Err(AcceptError::UnknownConnection(connection.to_owned()));
        }
        let usage = match self.inner.store.quarantine_usage().await {
            Ok(usage) => usage,
            Err(e) => {
                self.count_delivery(connection, "rejected", "unavailable");
                return Err(AcceptError::Unavailable(e.to_string()));
            }
        };
        let opts = &self.inner.options;
        let size = u64::try_from(raw_body.len()).unwrap_or(u64::MAX);
        if usage.rows >= opts.quarantine_max_rows
            || usage.bytes.saturating_add(size) > opts.quarantine_max_bytes
        {
            self.count_delivery(connection, "rejected", "quarantine_full");
            tracing::warn!(
                event = "accept.quarantine_full",
                connection,
                rows = usage.rows,
                bytes = usage.bytes,
                max_rows = opts.quarantine_max_rows,
                max_bytes = opts.quarantine_max_bytes,
                "quarantine full: the body is refused with 503 so that the sender retries; \
                 replay or purge quarantined bodies"
            );
            return Err(AcceptError::QuarantineFull {
                rows: usage.rows,
                bytes: usage.bytes,
            });
        }
        let now = self.inner.options.clock.now();
        match self
            .inner
            .store
            .quarantine(connection, raw_body, reason, now)
            .await
        {
            Ok(id) => {
                self.count_delivery(connection, "quarantined", "unmodelable");
                // The reason can quote the body: it is stored with it, logged at debug only.
                tracing::info!(event = "accept.quarantined", connection, id);
                tracing::debug!(event = "accept.quarantined", connection, id, reason = ?reason);
                Ok(id)
            }
            Err(e) => {
                self.count_delivery(connection, "rejected", "unavailable");
                Err(AcceptError::Unavailable(e.to_string()))
            }
        }
    }

    /// Starts the outbox workers (one dispatcher per connection plus housekeeping).
    #[must_use]
    pub fn start_workers(&self) -> Workers {
        crate::outbox::start(self.clone())
    }

    /// Probes the store and every backend now and records the results for
    /// [`health`](Self::health) (the workers' housekeeping runs this every
    /// [`health_interval`](EngineOptions::health_interval); nothing calls it per request).
    /// Each probe is bounded by the call timeout (at most 5 s).
    pub async fn probe_health(&self) -> HealthReport {
        let inner = &self.inner;
        let timeout = inner.options.call_timeout.min(Duration::from_secs(5));
        let store = match tokio::time::timeout(timeout, inner.store.ping()).await {
            Ok(Ok(())) => Check::passed(inner.options.clock.now()),
            Ok(Err(e)) => Check::failed(inner.options.clock.now(), e.to_string()),
            Err(_) => Check::failed(
                inner.options.clock.now(),
                format!("store check timed out after {timeout:?}"),
            ),
        };
        let previous = self.health().backends;
        let probes = inner.connections.iter().map(|(name, conn)| {
            let previous = previous.get(name).cloned();
            async move {
                // A backend that just asked us to slow down is not probed (the probe would count
                // against its limit): its last check stands until the pause is over.
                if conn
                    .limiter
                    .paused_until()
                    .is_some_and(|until| until > tokio::time::Instant::now())
                    && let Some(previous) = previous
                {
                    return (name.clone(), previous);
                }
                let result = tokio::time::timeout(timeout, conn.rt.connector.health()).await;
                let at = inner.options.clock.now();
                let check = match result {
                    Ok(Ok(())) => Check::passed(at),
                    Ok(Err(e)) => Check::failed(at, e.to_string()),
                    Err(_) => {
                        Check::failed(at, format!("health check timed out after {timeout:?}"))
                    }
                };
                (name.clone(), check)
            }
        });
        let backends: BTreeMap<String, Check> = futures::future::join_all(probes)
            .await
            .into_iter()
            .collect();
        inner.metrics.set_gauge(
            "secure_export_store_up",
            &[],
            if store.ok() { 1.0 } else { 0.0 },
        );
        for (name, check) in &backends {
            inner.metrics.set_gauge(
                "secure_export_backend_up",
                &[("connection", name)],
                if check.ok() { 1.0 } else { 0.0 },
            );
            if let Some(e) = &check.error {
                tracing::warn!(event = "health.backend_down", connection = %name, error = %crate::logsafe::esc(&e));
            }
        }
        if let Some(e) = &store.error {
            tracing::warn!(event = "health.store_down", error = %crate::logsafe::esc(&e));
        }
        let report = HealthReport { store, backends };
        *inner.health.write().unwrap_or_else(PoisonError::into_inner) = report.clone();
        report
    }

    /// What the background checks last saw (no I/O).
    #[must_use]
    pub fn health(&self) -> HealthReport {
        self.inner
            .health
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the engine can accept alerts now: the last store check passed and the outbox is
    /// below its high-water mark. Backend health is not part of it (no I/O).
    pub fn ready_to_accept(&self) -> Result<(), NotReady> {
        if let Some(e) = &self
            .inner
            .health
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .store
            .error
        {
            return Err(NotReady::Store(e.clone()));
        }
        let depth = u64::try_from(self.inner.depth.load(Ordering::Relaxed)).unwrap_or(0);
        let mark = self.inner.options.high_water_mark;
        if depth >= mark {
            return Err(NotReady::QueueFull { depth, mark });
        }
        Ok(())
    }

    /// Jobs queued per connection (approximate, as used for `max_queued`; no I/O).
    #[must_use]
    pub fn queued_by_connection(&self) -> BTreeMap<String, u64> {
        self.inner
            .connections
            .iter()
            .map(|(name, c)| {
                (
                    name.clone(),
                    u64::try_from(c.depth.load(Ordering::Relaxed)).unwrap_or(0),
                )
            })
            .collect()
    }

    /// The engine's options.
    #[must_use]
    pub fn options(&self) -> &EngineOptions {
        &self.inner.options
    }

    /// The metrics registry.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The names of the configured connections.
    #[must_use]
    pub fn connection_names(&self) -> Vec<String> {
        self.inner.connections.keys().cloned().collect()
    }

    /// Dead letters not replayed yet.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, EngineError> {
        Ok(self.inner.store.dead_letters().await?)
    }

    /// Puts a dead letter back in the outbox.
    pub async fn replay_dead_letter(&self, id: i64) -> Result<(), EngineError> {
        let now = self.inner.options.clock.now();
        if !self.inner.store.replay_dead_letter(id, now).await? {
            return Err(EngineError::NotFound(format!("dead letter {id}")));
        }
        self.add_depth(None, 1);
        self.refresh_dead_letter_gauge().await;
        self.notify_all();
        Ok(())
    }

    /// Replays every dead letter; returns how many.
    pub async fn replay_all_dead_letters(&self) -> Result<usize, EngineError> {
        let mut n = 0;
        for d in self.dead_letters().await? {
            match self.replay_dead_letter(d.id).await {
                Ok(()) => n += 1,
                Err(EngineError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Quarantined bodies not replayed yet.
    pub async fn quarantined(&self) -> Result<Vec<Quarantined>, EngineError> {
        Ok(self.inner.store.quarantined().await?)
    }

    /// Re-parses a quarantined body with the current schema crate and accepts it.
    pub async fn replay_quarantined(&self, id: i64) -> Result<(), EngineError> {
        let q = self
            .quarantined()
            .await?
            .into_iter()
            .find(|q| q.id == id)
            .ok_or_else(|| EngineError::NotFound(format!("quarantined body {id}")))?;
        let alert = Alert::from_slice(&q.raw_body).map_err(|e| EngineError::StillUnparseable {
            id,
            message: e.to_string(),
        })?;
        let conn = self
            .inner
            .connections
            .get(&q.connection)
            .ok_or_else(|| AcceptError::UnknownConnection(q.connection.clone()))?;
        conn.rt
            .allow_list
            .check(&alert)
            .map_err(|reason| EngineError::Forbidden {
                connection: q.connection.clone(),
                reason,
            })?;
        if AlertFacts::from_alert(&alert, &q.raw_body, self.inner.options.clock.now()).is_none() {
            return Err(EngineError::StillUnparseable {
                id,
                message: "monitorCondition is neither Fired nor Resolved".to_owned(),
            });
        }
        self.accept(&q.connection, &alert, &q.raw_body).await?;
        self.inner
            .store
            .mark_quarantine_replayed(id, self.inner.options.clock.now())
            .await?;
        Ok(())
    }

    /// What happened to an alert id (accepted, created, updated, dead-lettered, ...).
    pub async fn history(&self, alert_id: &str) -> Result<Vec<AuditEntry>, EngineError> {
        Ok(self.inner.store.history(alert_id).await?)
    }

    /// Jobs in the outbox.
    pub async fn queue_depth(&self) -> Result<u64, EngineError> {
        Ok(self.inner.store.queue_depth().await?)
    }

    /// Enqueues auto-close jobs for correlations whose TTL expired (housekeeping runs this
    /// periodically); returns how many.
    pub async fn auto_close_due(&self) -> Result<usize, EngineError> {
        let now = self.inner.options.clock.now();
        let n = self.inner.store.schedule_auto_close(now).await?;
        if n > 0 {
            self.add_depth(None, i64::try_from(n).unwrap_or(i64::MAX));
            self.notify_all();
        }
        Ok(n)
    }

    /// Deletes rows older than the retention period (housekeeping runs this every
    /// `purge_interval`); returns how many.
    pub async fn purge_expired(&self) -> Result<u64, EngineError> {
        let Some(retention) = self.inner.options.retention else {
            return Ok(0);
        };
        let keep = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let now = self.inner.options.clock.now();
        let before = now
            .checked_sub_signed(keep)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        Ok(self.inner.store.purge(before).await?)
    }

    fn count_delivery(&self, connection: &str, outcome: &str, reason: &str) {
        self.inner.metrics.inc_counter(
            "secure_export_deliveries_total",
            &[
                ("connection", connection),
                ("outcome", outcome),
                ("reason", reason),
            ],
        );
    }

    pub(crate) fn add_depth(&self, conn: Option<&Conn>, n: i64) {
        if let Some(conn) = conn {
            conn.depth.fetch_add(n, Ordering::Relaxed);
        }
        let v = self
            .inner
            .depth
            .fetch_add(n, Ordering::Relaxed)
            .saturating_add(n);
        self.inner
            .metrics
            .set_gauge("secure_export_queue_depth", &[], v.max(0) as f64);
    }

    pub(crate) fn notify_all(&self) {
        for conn in self.inner.connections.values() {
            conn.notify.notify_one();
        }
    }

    pub(crate) async fn refresh_dead_letter_gauge(&self) {
        if let Ok(n) = self.inner.store.dead_letter_count().await {
            self.inner
                .metrics
                .set_gauge("secure_export_dead_letters", &[], n as f64);
        }
    }

    pub(crate) async fn refresh_depth(&self) {
        if let Ok(depths) = self.inner.store.queue_depths().await {
            for (name, conn) in &self.inner.connections {
                let n = depths.get(name).copied().unwrap_or(0);
                conn.depth
                    .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
                self.inner.metrics.set_gauge(
                    "secure_export_connection_queue_depth",
                    &[("connection", name)],
                    n as f64,
                );
            }
        }
        if let Ok(n) = self.inner.store.queue_depth().await {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            self.inner.depth.store(n, Ordering::Relaxed);
            self.inner
                .metrics
                .set_gauge("secure_export_queue_depth", &[], n as f64);
        }
    }

    pub(crate) fn key_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .inner
            .key_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if locks.len() > 10_000 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(key.to_owned()).or_default().clone()
    }
}

/// Accept batches handed to the store at the same time: while one batch commits, the next one
/// is already queued in the store (whose own writer may merge them into one transaction).
const BATCHES_IN_FLIGHT: usize = 4;

/// The batching stage for stores that do not group commits themselves (PostgreSQL): batches
/// concurrent accepts into one transaction and answers each
/// caller after the commit. Up to [`BATCHES_IN_FLIGHT`] batches are handed to the store at once,
/// so accepts arriving during a commit do not wait for it to finish before being queued.
async fn group_commit(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<WriteRequest>,
    max_batch: usize,
    metrics: Metrics,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut deliveries: Vec<NewDelivery> = Vec::with_capacity(max_batch.min(64));
        let mut replies = Vec::with_capacity(max_batch.min(64));
        deliveries.push(first.delivery);
        replies.push(first.reply);
        while deliveries.len() < max_batch {
            match rx.try_recv() {
                Ok(req) => {
                    deliveries.push(req.delivery);
                    replies.push(req.reply);
                }
                Err(_) => break,
            }
        }
        metrics.inc_counter("secure_export_accept_batches_total", &[]);
        metrics.add_counter(
            "secure_export_accept_batched_deliveries_total",
            &[],
            deliveries.len() as u64,
        );
        let store = store.clone();
        tokio::spawn(async move {
            commit_batch(store.as_ref(), &deliveries, replies).await;
            drop(slot);
        });
    }
}

/// Commits one batch of accepts and answers each caller.
async fn commit_batch(
    store: &dyn Store,
    deliveries: &[NewDelivery],
    replies: Vec<oneshot::Sender<Result<AcceptOutcome, StoreError>>>,
) {
    let result = store.accept_batch(deliveries).await;
    let result = match result {
        Ok(outcomes) if outcomes.len() == replies.len() => Ok(outcomes),
        Ok(outcomes) => Err(StoreError::Corrupt(format!(
            "store answered {} outcomes for {} deliveries",
            outcomes.len(),
            replies.len()
        ))),
        Err(e) => Err(e),
    };
    match result {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) if replies.len() > 1 => {
            // One bad delivery must not fail the others: commit them one by one.
            tracing::warn!(event = "accept.batch_failed", size = replies.len(), error = %crate::logsafe::esc(&e));
            for (delivery, reply) in deliveries.iter().zip(replies) {
                let one = store.accept_batch(std::slice::from_ref(delivery)).await;
                let one = one.and_then(|mut o| {
                    o.pop()
                        .ok_or_else(|| StoreError::Corrupt("no outcome".to_owned()))
                });
                let _ = reply.send(one);
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
