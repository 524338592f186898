//! Outbox workers: claim jobs, bind CIs, decide, call the ITSM, commit the outcome.
//!
//! * One dispatcher per connection runs at most `workers_per_backend` jobs at a time (bounded
//!   concurrency per backend) and claims ahead in batches (up to as many again waiting), so a
//!   finishing worker starts the next job at once. The store hands out only the head job of
//!   each order key, so jobs of one key run one at a time and in order.
//! * Every ITSM call goes through the backend's shared limiter (see `engine::limiter`): a
//!   throttled answer pauses all calls to the backend and sets a pacing rate, and the refused
//!   call is retried by its worker after the pause when the wait is short.
//! * Failures are classified by [`ItsmError::retry_class`]: `Retryable` waits an exponential
//!   backoff with full jitter (uniform in `0..=min(max_delay, base_delay * 2^attempts)`);
//!   `Throttled(wait)` (longer waits, or too many in a row) releases the job until `wait` has
//!   passed, without counting an attempt; `Permanent` dead-letters at once. A job that
//!   reaches `max_attempts` failed attempts or `max_age` is dead-lettered.
//! * Claims are leases: a job whose worker crashed is claimed again when the lease expires
//!   (the SQLite store releases all leases when it is opened again).
//! * [`Workers::shutdown`] stops claiming, waits up to `shutdown_grace` for in-flight jobs and
//!   releases those still running. Dropping [`Workers`] aborts everything at once (like a
//!   crash; the leases make it safe).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use secure_export_itsm::{
    ItsmError, Resolution, RetryClass, WorkItemRef, WorkItemState, WorkItemUpdate,
};
use secure_export_schema::Alert;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::engine::{Conn, Engine};
use crate::keys::{self, AlertFacts};
use crate::lifecycle::{self, CorrelationMode, Decision, Event, FindOpenPolicy, TrackedState};
use crate::mapping::{BindingSummary, Mapping, Unbound};
use crate::store::{CorrelationRecord, Job, JobKind, NewAudit, StoreError};

/// Running outbox workers. Shut down with [`shutdown`](Self::shutdown); dropping aborts them.
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl fmt::Debug for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workers")
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl Workers {
    /// Stops claiming jobs, lets in-flight jobs finish (up to the grace period) and releases
    /// the rest for the next start.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

pub(crate) fn start(engine: Engine) -> Workers {
    let (stop, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for conn in engine.inner.connections.values() {
        tasks.spawn(dispatch(engine.clone(), conn.clone(), rx.clone()));
    }
    tasks.spawn(health_checks(engine.clone(), rx.clone()));
    tasks.spawn(housekeeping(engine, rx));
    Workers { stop, tasks }
}

/// Probes the store and the backends at start and then every `health_interval`, so that
/// readiness and backend health are known without a request ever causing a probe.
async fn health_checks(engine: Engine, mut stop: watch::Receiver<bool>) {
    let interval = engine
        .inner
        .options
        .health_interval
        .max(Duration::from_millis(10));
    loop {
        tokio::select! {
            _ = engine.probe_health() => {}
            _ = stop.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn housekeeping(engine: Engine, mut stop: watch::Receiver<bool>) {
    let interval = engine.inner.options.housekeeping_interval;
    let mut last_purge = tokio::time::Instant::now();
    let auto_close = engine
        .inner
        .connections
        .values()
        .any(|c| c.rt.policy.auto_close_after.is_some());
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        if auto_close && let Err(e) = engine.auto_close_due().await {
            tracing::warn!(event = "outbox.auto_close_failed", error = %crate::logsafe::esc(&e));
        }
        if last_purge.elapsed() >= engine.inner.options.purge_interval {
            last_purge = tokio::time::Instant::now();
            match engine.purge_expired().await {
                Ok(n) => tracing::debug!(event = "outbox.purged", rows = n),
                Err(e) => {
                    tracing::warn!(event = "outbox.purge_failed", error = %crate::logsafe::esc(&e))
                }
            }
        }
        engine.refresh_depth().await;
        engine.refresh_dead_letter_gauge().await;
    }
}

async fn dispatch(engine: Engine, conn: Arc<Conn>, mut stop: watch::Receiver<bool>) {
    let opts = engine.inner.options.clone();
    let workers = opts.workers_per_backend;
    let permits = Arc::new(Semaphore::new(workers));
    let mut inflight: JoinSet<()> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, Job> = HashMap::new();
    // Claimed jobs waiting for a free worker: claims are batched (one store round trip leases
    // up to `workers` jobs) and a finishing worker starts the next job without waiting for one.
    let mut ready: VecDeque<Job> = VecDeque::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let paused = conn.limiter.paused_until();
        if paused.is_none() {
            while let Some(job) = ready.front() {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    break;
                };
                let job = job.clone();
                ready.pop_front();
                let (e, c) = (engine.clone(), conn.clone());
                let j = job.clone();
                let handle = inflight.spawn(async move {
                    run_job(&e, &c, j).await;
                    drop(permit);
                });
                running.insert(handle.id(), job);
            }
        }
        let mut claimed_full = false;
        if paused.is_none() && ready.len() < workers {
            let want = 2 * workers - ready.len() - inflight.len().min(workers);
            let now = opts.clock.now();
            match engine
                .inner
                .store
                .claim(&conn.rt.name, want, now, later(now, opts.lease))
                .await
            {
                Ok(jobs) => {
                    claimed_full = jobs.len() == want;
                    ready.extend(jobs);
                }
                Err(e) => {
                    tracing::warn!(event = "outbox.claim_failed", connection = %conn.rt.name, error = %crate::logsafe::esc(&e))
                }
            }
        }
        if !ready.is_empty() && permits.available_permits() > 0 && paused.is_none() {
            continue;
        }
        if claimed_full {
            // More may be due: go on as soon as a worker is free.
            tokio::select! {
                Some(done) = inflight.join_next_with_id() => forget(&mut running, done),
                _ = stop.changed() => {}
                else => {}
            }
            continue;
        }
        let wait = paused
            .map(|p| p.saturating_duration_since(tokio::time::Instant::now()))
            .unwrap_or(opts.poll_interval)
            .min(opts.poll_interval.max(Duration::from_millis(1)));
        tokio::select! {
            () = conn.notify.notified() => {}
            () = tokio::time::sleep(wait) => {}
            Some(done) = inflight.join_next_with_id(), if !inflight.is_empty() => forget(&mut running, done),
            _ = stop.changed() => {}
        }
    }
    // Graceful stop: let in-flight jobs finish, then release what is left.
    let started = tokio::time::Instant::now();
    let deadline = started
        .checked_add(opts.shutdown_grace)
        .unwrap_or(started + Duration::from_secs(86_400));
    while !inflight.is_empty() {
        match tokio::time::timeout_at(deadline, inflight.join_next_with_id()).await {
            Ok(Some(done)) => forget(&mut running, done),
            Ok(None) => break,
            Err(_) => {
                inflight.abort_all();
                while let Some(done) = inflight.join_next_with_id().await {
                    forget(&mut running, done);
                }
            }
        }
    }
    for job in running.values().chain(ready.iter()) {
        if let Err(e) = engine.inner.store.release(job).await {
            tracing::warn!(event = "outbox.release_failed", job = job.id, error = %crate::logsafe::esc(&e));
        }
    }
}

fn forget(
    running: &mut HashMap<tokio::task::Id, Job>,
    done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) {
    match done {
        Ok((id, ())) => {
            running.remove(&id);
        }
        // Aborted or panicked: keep it in `running` only if aborted (to release it).
        Err(e) if e.is_cancelled() => {}
        Err(e) => {
            running.remove(&e.id());
        }
    }
}

/// Why a job did not finish.
#[derive(Debug)]
enum Failure {
    Itsm {
        operation: &'static str,
        error: ItsmError,
    },
    Store(StoreError),
    Invalid(String),
    /// A CMDB lookup failed (not "nothing found") while binding a new item: retried like a
    /// retryable backend error for up to [`CMDB_WAIT`]; after it (or on the job's last
    /// attempt) the item is created unbound.
    CmdbUnavailable(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The full-jitter backoff delay after `attempts` failed attempts.
pub(crate) fn backoff(attempts: u32, base: Duration, max: Duration) -> Duration {
    let cap = base
        .saturating_mul(2u32.saturating_pow(attempts.min(30)))
        .min(max);
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}

async fn run_job(engine: &Engine, conn: &Conn, job: Job) {
    let name = conn.rt.name.as_str();
    let metrics = &engine.inner.metrics;
    match process(engine, conn, &job).await {
        Ok(outcome) => {
            metrics.inc_counter(
                "secure_export_jobs_total",
                &[("connection", name), ("outcome", outcome)],
            );
            engine.add_depth(Some(conn), -1);
        }
        Err(Failure::Store(StoreError::LeaseLost(id))) => {
            tracing::warn!(event = "outbox.lease_lost", connection = name, job = id);
        }
        Err(Failure::Store(e)) => {
            tracing::warn!(event = "outbox.store_failed", connection = name, job = job.id, error = %crate::logsafe::esc(&e));
            metrics.inc_counter(
                "secure_export_jobs_total",
                &[("connection", name), ("outcome", "store_error")],
            );
            // Try again after a backoff without counting an attempt; if the store cannot even
            // record that, the lease expires and the job is claimed again.
            let opts = &engine.inner.options;
            let delay = backoff(job.attempts, opts.base_delay, opts.max_delay).max(opts.base_delay);
            let at = later(opts.clock.now(), delay);
            let _ = engine
                .inner
                .store
                .retry(&job, at, &e.to_string(), false)
                .await;
        }
        Err(Failure::Invalid(reason)) => dead_letter(engine, conn, &job, &reason).await,
        Err(Failure::Itsm { operation, error }) => {
            let reason = format!("{operation}: {error}");
            retry_later(engine, conn, &job, &reason, error.retry_class()).await;
        }
        Err(Failure::CmdbUnavailable(reason)) => {
            retry_later(engine, conn, &job, &reason, RetryClass::Retryable).await;
        }
    }
}

/// How long a new item waits for a CMDB whose lookups fail before it is created unbound.
const CMDB_WAIT: Duration = Duration::from_secs(120);

/// Schedules the next attempt of a failed job (or dead-letters it: permanent error, retry
/// budget spent).
async fn retry_later(engine: &Engine, conn: &Conn, job: &Job, reason: &str, class: RetryClass) {
    let name = conn.rt.name.as_str();
    let metrics = &engine.inner.metrics;
    let opts = &engine.inner.options;
    let now = opts.clock.now();
    let age = (now - job.created_at).to_std().unwrap_or(Duration::ZERO);
    let (delay, counted) = match class {
        RetryClass::Permanent => {
            dead_letter(engine, conn, job, reason).await;
            return;
        }
        RetryClass::Throttled(wait) => {
            // `call` paused the backend already (shared limiter).
            (wait.max(backoff(0, opts.base_delay, opts.max_delay)), false)
        }
        RetryClass::Retryable => (backoff(job.attempts, opts.base_delay, opts.max_delay), true),
    };
    let attempts = job.attempts + u32::from(counted);
    if attempts >= opts.max_attempts || age >= opts.max_age {
        let why = format!("retry budget exhausted after {attempts} attempts ({age:?}): {reason}");
        dead_letter(engine, conn, job, &why).await;
        return;
    }
    let at = later(now, delay);
    tracing::info!(event = "outbox.retry", connection = name, job = job.id, attempts, ?delay, error = %crate::logsafe::esc(&reason));
    metrics.inc_counter(
        "secure_export_jobs_total",
        &[("connection", name), ("outcome", "retry")],
    );
    if let Err(e) = engine.inner.store.retry(job, at, reason, counted).await {
        tracing::warn!(event = "outbox.retry_failed", connection = name, job = job.id, error = %crate::logsafe::esc(&e));
    }
}

async fn dead_letter(engine: &Engine, conn: &Conn, job: &Job, reason: &str) {
    let name = conn.rt.name.as_str();
    let now = engine.inner.options.clock.now();
    match engine.inner.store.dead_letter(job, reason, now).await {
        Ok(id) => {
            tracing::warn!(
                event = "outbox.dead_letter",
                connection = name,
                job = job.id,
                dead_letter = id,
                reason
            );
            engine.inner.metrics.inc_counter(
                "secure_export_jobs_total",
                &[("connection", name), ("outcome", "dead_letter")],
            );
            engine.add_depth(Some(conn), -1);
            engine.refresh_dead_letter_gauge().await;
        }
        Err(e) => {
            tracing::warn!(event = "outbox.dead_letter_failed", connection = name, job = job.id, error = %crate::logsafe::esc(&e))
        }
    }
}

/// Longest throttled wait a worker sits out holding its job; longer ones release the job to
/// the store (retry at the end of the wait).
const IN_PROCESS_WAIT: Duration = Duration::from_secs(30);
/// Throttled answers one call sits out in-process before the job goes back to the store.
const IN_PROCESS_TRIES: u32 = 8;

/// Times and counts one ITSM call, through the backend's shared [`Limiter`]: it starts only
/// outside a pause and in its pacing slot. A throttled answer pauses the whole backend; a 429
/// with a short wait is retried here after the pause (a refused call changed nothing).
///
/// [`Limiter`]: crate::engine::limiter::Limiter
async fn call<T, F, Fut>(
    engine: &Engine,
    conn: &Conn,
    operation: &'static str,
    make: F,
) -> Result<T, Failure>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, ItsmError>>,
{
    let mut tries = 0;
    loop {
        conn.limiter.acquire().await;
        tries += 1;
        let result = call_once(engine, conn, operation, make()).await;
        match &result {
            Ok(_) => {}
            Err(Failure::Itsm { error, .. }) => {
                if let RetryClass::Throttled(wait) = error.retry_class() {
                    conn.limiter.throttled(wait);
                    // Only a 429 is known to have done nothing; a 503 may come from a proxy
                    // after the backend acted, so that job goes back to the store (and a
                    // create asks `find_open` again).
                    let refused = matches!(error, ItsmError::Http { status: 429, .. });
                    if refused && wait <= IN_PROCESS_WAIT && tries < IN_PROCESS_TRIES {
                        tracing::debug!(event = "outbox.throttled", connection = %conn.rt.name, operation, ?wait);
                        continue;
                    }
                }
            }
            Err(_) => {}
        }
        return result;
    }
}

async fn call_once<T>(
    engine: &Engine,
    conn: &Conn,
    operation: &'static str,
    fut: impl Future<Output = Result<T, ItsmError>>,
) -> Result<T, Failure> {
    let backend = conn.rt.connector.backend();
    let started = Instant::now();
    let started_tokio = tokio::time::Instant::now();
    let timeout = engine.inner.options.call_timeout;
    let result = match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(ItsmError::Timeout {
            backend,
            message: format!("no answer within {timeout:?}"),
        }),
    };
    if result.is_ok() {
        conn.limiter.succeeded(started_tokio);
    }
    let status = match &result {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.metric_label(),
    };
    let metrics = &engine.inner.metrics;
    metrics.inc_counter(
        "secure_export_itsm_calls_total",
        &[
            ("backend", backend),
            ("operation", operation),
            ("status", &status),
        ],
    );
    metrics.observe(
        "secure_export_itsm_call_seconds",
        &[("backend", backend), ("operation", operation)],
        started.elapsed().as_secs_f64(),
    );
    result.map_err(|error| Failure::Itsm { operation, error })
}

/// One correlation key of a job and the binding the work item would carry.
struct Target {
    key: String,
    binding: Option<BindingSummary>,
}

fn summary(b: &secure_export_cmdb::Binding) -> BindingSummary {
    BindingSummary {
        cis: b.ci_refs(),
        unbound: b
            .unmatched
            .iter()
            .map(|u| Unbound {
                target: u.target.clone(),
                reason: u.reason.clone(),
            })
            .collect(),
        omitted: b.omitted_note(),
    }
}

/// Bodies up to this size are parsed on the async worker (tens of microseconds).
const PARSE_INLINE_MAX: usize = 64 * 1024;

async fn parse_alert(engine: &Engine, job: &Job) -> Result<Option<Alert>, Failure> {
    let Some(delivery) = job.delivery_id else {
        return Ok(None);
    };
    let Some(body) = engine.inner.store.delivery_body(delivery).await? else {
        return Ok(None);
    };
    // A large body (up to the body limit, 1 MiB by default) is parsed on the blocking pool so
    // that it does not hold an async worker that other connections' requests need.
    let parsed = if body.len() > PARSE_INLINE_MAX {
        tokio::task::spawn_blocking(move || Alert::from_slice(&body))
            .await
            .map_err(|e| Failure::Invalid(format!("alert parser task failed: {e}")))?
    } else {
        Alert::from_slice(&body)
    };
    match parsed {
        Ok(a) => Ok(Some(a)),
        Err(e) => {
            tracing::warn!(event = "outbox.reparse_failed", job = job.id, error = %crate::logsafe::esc(&e));
            Ok(None)
        }
    }
}

/// The correlation keys of a job (several in `ci` mode).
async fn targets(
    engine: &Engine,
    conn: &Conn,
    job: &Job,
    facts: &AlertFacts,
) -> Result<Vec<Target>, Failure> {
    if job.kind == JobKind::AutoClose {
        let key = job
            .target_key
            .clone()
            .ok_or_else(|| Failure::Invalid("auto-close job without a key".to_owned()))?;
        return Ok(vec![Target {
            key,
            binding: Some(BindingSummary::default()),
        }]);
    }
    let mode = conn.rt.policy.correlation;
    if mode != CorrelationMode::Ci {
        return Ok(vec![Target {
            key: keys::correlation_key(mode, facts),
            binding: None,
        }]);
    }
    let bindings = match (&conn.rt.binder, parse_alert(engine, job).await?) {
        (Some(binder), Some(alert)) => binder.bind_each(&alert).await,
        _ => Vec::new(),
    };
    // At most `max_targets` items per alert, whatever it names; de-duplicated in linear time.
    let max = conn.rt.max_targets.max(1);
    let mut out: Vec<Target> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for b in &bindings {
        if out.len() >= max {
            break;
        }
        let key = match &b.primary {
            Some(ci) => keys::ci_key(&ci.id),
            None => keys::rule_target_key(facts),
        };
        if seen.insert(key.clone()) {
            out.push(Target {
                key,
                binding: Some(summary(b)),
            });
        }
    }
    if out.is_empty() {
        // No binder (or nothing bound): one item per Azure configuration item name.
        for ci in &facts.configuration_items {
            if out.len() >= max {
                break;
            }
            let key = format!("ci-name:{}", ci.to_lowercase());
            if seen.insert(key.clone()) {
                out.push(Target { key, binding: None });
            }
        }
    }
    if out.is_empty() {
        out.push(Target {
            key: keys::rule_target_key(facts),
            binding: None,
        });
    }
    Ok(out)
}

async fn process(engine: &Engine, conn: &Conn, job: &Job) -> Result<&'static str, Failure> {
    let facts: AlertFacts = serde_json::from_str(&job.facts)
        .map_err(|e| Failure::Invalid(format!("job {} has unreadable alert facts: {e}", job.id)))?;
    let targets = targets(engine, conn, job, &facts).await?;
    let count = targets.len();
    let mut outcome = "noop";
    for (i, target) in targets.into_iter().enumerate() {
        let lock = engine.key_lock(&format!("{}\u{0}{}", conn.rt.name, target.key));
        let _guard = lock.lock().await;
        let finish = i + 1 == count;
        outcome = apply(engine, conn, job, &facts, target, finish).await?;
    }
    Ok(outcome)
}

fn audit(
    conn: &Conn,
    facts: &AlertFacts,
    key: &str,
    action: &str,
    item: Option<&WorkItemRef>,
    detail: String,
    at: DateTime<Utc>,
) -> NewAudit {
    NewAudit {
        at,
        connection: conn.rt.name.clone(),
        alert_id: facts.alert_id.clone(),
        correlation_key: Some(key.to_owned()),
        action: action.to_owned(),
        work_item: item.map(|i| i.display().to_owned()),
        detail,
    }
}

/// Decides and applies one event to one correlation key, then commits.
async fn apply(
    engine: &Engine,
    conn: &Conn,
    job: &Job,
    facts: &AlertFacts,
    target: Target,
    finish: bool,
) -> Result<&'static str, Failure> {
    let store = &engine.inner.store;
    let name = conn.rt.name.as_str();
    let itsm = conn.rt.connector.as_ref();
    let policy = &conn.rt.policy;
    let now = engine.inner.options.clock.now();
    let key = target.key.as_str();
    let existing = store.correlation(name, key).await?;
    if let Some(rec) = &existing
        && rec.last_job_id == Some(job.id)
    {
        // Applied by an earlier attempt of this job (multi-key jobs).
        if finish {
            store.save(job, &[], &[], true).await?;
        }
        return Ok("noop");
    }
    let event = Event {
        condition: facts.condition,
        at: facts.event_at,
    };
    let tracked = existing.as_ref().map(CorrelationRecord::tracked);
    let mut decision = lifecycle::decide(tracked.as_ref(), &event, None, policy);
    let mut remote = None;
    if decision == Decision::CheckRemote {
        let item = existing.as_ref().and_then(|r| r.work_item.clone());
        let state = match item {
            Some(item) => match call(engine, conn, "state", || itsm.state(&item)).await {
                Ok(s) => s,
                Err(Failure::Itsm {
                    error: ItsmError::NotFound { .. },
                    ..
                }) => WorkItemState::Closed,
                Err(e) => return Err(e),
            },
            None => WorkItemState::Closed,
        };
        remote = Some(state);
        decision = lifecycle::decide(tracked.as_ref(), &event, remote, policy);
    }
    let order_key = job.order_key.clone();
    let mut rec = existing.clone().unwrap_or_else(|| {
        CorrelationRecord::new(name, key, order_key, facts.alert_id.clone(), now)
    });
    rec.alert_id.clone_from(&facts.alert_id);
    rec.last_job_id = Some(job.id);
    rec.updated_at = now;
    rec.last_event_at = Some(rec.last_event_at.map_or(event.at, |t| t.max(event.at)));
    let auto_close = |at: DateTime<Utc>| {
        policy
            .auto_close_after
            .filter(|_| facts.never_resolves())
            .map(|ttl| later(at, ttl))
    };
    let auto = job.kind == JobKind::AutoClose;
    let (action, detail): (&'static str, String) = match decision {
        Decision::Create => {
            let (item, mut detail) =
                create_item(engine, conn, job, facts, key, target.binding).await?;
            if remote.is_some_and(|s| s != WorkItemState::Open) {
                detail.push_str("; the previous item was closed by a person");
            }
            rec.state = TrackedState::Open;
            rec.work_item = Some(item);
            rec.opened_at = Some(event.at);
            rec.last_fired_at = Some(event.at);
            rec.fired_count = 1;
            rec.auto_close_at = auto_close(event.at);
            ("create", detail)
        }
        Decision::Update => {
            let item = rec.work_item.clone().ok_or_else(|| {
                Failure::Invalid(format!("open correlation {key} has no work item"))
            })?;
            let count = rec.fired_count.saturating_add(1);
            let update = WorkItemUpdate::note(Mapping::fired_again_note(facts, count));
            call(engine, conn, "update", || itsm.update(&item, &update)).await?;
            rec.fired_count = count;
            rec.last_fired_at = Some(rec.last_fired_at.map_or(event.at, |t| t.max(event.at)));
            rec.auto_close_at = auto_close(event.at);
            (
                "update",
                format!(
                    "work note on {}: fired again ({count} times)",
                    item.display()
                ),
            )
        }
        Decision::Reopen => {
            let reopen_result = {
                let item = rec.work_item.clone().ok_or_else(|| {
                    Failure::Invalid(format!("resolved correlation {key} has no work item"))
                })?;
                let note = format!(
                    "Alert fired again at {} within the reopen window; reopened. {}",
                    event.at.to_rfc3339(),
                    Mapping::default_title(facts)
                );
                match call(engine, conn, "reopen", || itsm.reopen(&item, &note)).await {
                    Ok(()) => {
                        rec.fired_count = rec.fired_count.saturating_add(1);
                        ("reopen", format!("reopened {}", item.display()))
                    }
                    // Closed for good (for example by a person): a new item instead.
                    Err(Failure::Itsm { error, .. })
                        if error.retry_class() == RetryClass::Permanent =>
                    {
                        let (new, detail) =
                            create_item(engine, conn, job, facts, key, target.binding).await?;
                        rec.work_item = Some(new);
                        rec.fired_count = 1;
                        (
                            "create",
                            format!("{detail}; reopening {} failed: {error}", item.display()),
                        )
                    }
                    Err(e) => return Err(e),
                }
            };
            rec.state = TrackedState::Open;
            rec.opened_at = Some(event.at);
            rec.last_fired_at = Some(event.at);
            rec.auto_close_at = auto_close(event.at);
            reopen_result
        }
        Decision::Resolve => {
            let item = rec.work_item.clone().ok_or_else(|| {
                Failure::Invalid(format!("open correlation {key} has no work item"))
            })?;
            let notes = if auto {
                format!(
                    "Auto-closed at {}: this kind of alert never sends Resolved and it did not fire again within the auto-close period.",
                    event.at.to_rfc3339()
                )
            } else {
                format!(
                    "Azure Monitor resolved the alert at {}. {}",
                    event.at.to_rfc3339(),
                    Mapping::default_title(facts)
                )
            };
            let resolution = Resolution::new(notes);
            let resolved = call(engine, conn, "resolve", || itsm.resolve(&item, &resolution)).await;
            rec.last_resolved_at = Some(event.at);
            rec.auto_close_at = None;
            match resolved {
                Ok(()) => {
                    rec.state = TrackedState::Resolved;
                    (
                        if auto { "auto_close" } else { "resolve" },
                        format!("resolved {}", item.display()),
                    )
                }
                // Refused for good: if a person already closed or resolved the item there is
                // nothing left to do; otherwise the error stands (dead letter).
                Err(Failure::Itsm { error, operation })
                    if error.retry_class() == RetryClass::Permanent =>
                {
                    let state = match call(engine, conn, "state", || itsm.state(&item)).await {
                        Ok(s) => s,
                        Err(Failure::Itsm {
                            error: ItsmError::NotFound { .. },
                            ..
                        }) => WorkItemState::Closed,
                        Err(e) => return Err(e),
                    };
                    if state.is_open() {
                        return Err(Failure::Itsm { operation, error });
                    }
                    rec.state = TrackedState::Closed;
                    (
                        "already_closed",
                        format!("{} was already closed by a person: {error}", item.display()),
                    )
                }
                Err(e) => return Err(e),
            }
        }
        Decision::Tombstone => {
            rec.state = TrackedState::Tombstone;
            rec.last_resolved_at = Some(rec.last_resolved_at.map_or(event.at, |t| t.max(event.at)));
            (
                "tombstone",
                "Resolved with nothing open: remembered, no ITSM call".to_owned(),
            )
        }
        Decision::Ignore(reason) => {
            if existing.is_none() {
                // Nothing to remember (cannot happen for the table's cells, kept total).
                store
                    .save(
                        job,
                        &[],
                        &[audit(
                            conn,
                            facts,
                            key,
                            reason.as_str(),
                            None,
                            format!("ignored: {}", reason.as_str()),
                            now,
                        )],
                        finish,
                    )
                    .await?;
                return Ok(reason.as_str());
            }
            (
                reason.as_str(),
                format!(
                    "ignored {} event at {}: {}",
                    facts.condition.as_str(),
                    event.at.to_rfc3339(),
                    reason.as_str()
                ),
            )
        }
        Decision::CheckRemote => {
            return Err(Failure::Invalid(
                "lifecycle asked for the remote state twice".to_owned(),
            ));
        }
    };
    let entry = audit(
        conn,
        facts,
        key,
        action,
        rec.work_item.as_ref(),
        detail,
        now,
    );
    tracing::info!(event = "outbox.applied", connection = name, job = job.id, key, action, alert_id = %crate::logsafe::esc(&facts.alert_id));
    store.save(job, &[rec], &[entry], finish).await?;
    Ok(action)
}

/// Creates a work item. When an earlier attempt of the job may already have created it (it
/// reached the create call, see [`Job::create_started`]), the backend is asked first for an
/// open item with the correlation id, and that one is adopted: a crash, timeout or ambiguous
/// error between a create and its commit makes no duplicate. `ci` correlation and
/// [`FindOpenPolicy::Always`] ask every time.
async fn create_item(
    engine: &Engine,
    conn: &Conn,
    job: &Job,
    facts: &AlertFacts,
    key: &str,
    binding: Option<BindingSummary>,
) -> Result<(WorkItemRef, String), Failure> {
    let name = conn.rt.name.as_str();
    let itsm = conn.rt.connector.as_ref();
    let policy = &conn.rt.policy;
    let correlation_id = keys::itsm_correlation_id(name, key);
    let ask_first = job.create_started
        || policy.correlation == CorrelationMode::Ci
        || policy.find_open_before_create == FindOpenPolicy::Always;
    if ask_first
        && let Some(item) = call(engine, conn, "find_open", || {
            itsm.find_open(&correlation_id)
        })
        .await?
    {
        let d = format!(
            "adopted open item {} found by correlation id {correlation_id}",
            item.display()
        );
        return Ok((item, d));
    }
    let binding = match binding {
        Some(b) => b,
        None => bind(engine, conn, job).await?,
    };
    let new = conn
        .rt
        .mapping
        .work_item(name, &correlation_id, facts, &binding)
        .map_err(|e| Failure::Invalid(e.to_string()))?;
    if !job.create_started {
        // Durable before the call: whatever happens to this attempt after it, the next one
        // asks the backend first.
        engine
            .inner
            .store
            .mark_create_started(job, engine.inner.options.clock.now())
            .await?;
    }
    let item = call(engine, conn, "create", || itsm.create(&new)).await?;
    let d = format!("created {} ({})", item.display(), new.title);
    Ok((item, d))
}

/// Binds the alert of a job (alert and rule+target modes; only needed on create).
async fn bind(engine: &Engine, conn: &Conn, job: &Job) -> Result<BindingSummary, Failure> {
    let Some(binder) = &conn.rt.binder else {
        return Ok(BindingSummary::default());
    };
    let Some(alert) = parse_alert(engine, job).await? else {
        return Ok(BindingSummary::default());
    };
    let binding = binder.bind(&alert).await;
    // A CMDB that failed to answer (rather than found nothing) is waited for like a backend
    // that is down, so a short outage does not leave items without their CI; after
    // `CMDB_WAIT` (or on the last attempt) the item is created unbound, with the reasons in
    // its notes: a broken CMDB must not hold incidents back.
    let opts = &engine.inner.options;
    let age = (opts.clock.now() - job.created_at)
        .to_std()
        .unwrap_or(Duration::ZERO);
    if binding.lookup_failed()
        && job.attempts.saturating_add(1) < opts.max_attempts
        && age < CMDB_WAIT.min(opts.max_age)
    {
        let reason = binding
            .unmatched_note()
            .unwrap_or_else(|| "CMDB lookup failed".to_owned())
            .replace('\n', " ");
        return Err(Failure::CmdbUnavailable(reason));
    }
    Ok(summary(&binding))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_under_the_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 0..40 {
            let cap = base
                .saturating_mul(2u32.saturating_pow(attempt.min(30)))
                .min(max);
            for _ in 0..20 {
                assert!(backoff(attempt, base, max) <= cap);
            }
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| backoff(5, base, max)).collect();
        assert!(spread.len() > 10, "jittered");
        assert_eq!(backoff(3, Duration::ZERO, max), Duration::ZERO);
    }
}

/// `at + d`, saturating at the latest representable time instead of panicking on a huge `d`
/// (durations come from configuration and from backends' `Retry-After`).
fn later(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod later_tests {
    use super::*;

    #[test]
    fn later_saturates_instead_of_panicking() {
        let now = Utc::now();
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + chrono::Duration::seconds(5)
        );
        assert_eq!(later(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            later(now, Duration::from_secs(u64::MAX / 2)),
            DateTime::<Utc>::MAX_UTC
        );
    }
}
