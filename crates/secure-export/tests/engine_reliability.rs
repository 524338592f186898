//! Duplicates, retries, throttling, dead letters, replay, crashes and store failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine_support::{
    AlertSpec, fast_options, harness, harness_on, harness_with, http, wait_until,
};
use secure_export::engine::{AcceptError, Accepted, EngineError, EngineOptions};
use secure_export::keys;
use secure_export::store::{SqliteStore, Store};
use secure_export_itsm::mock::MockOp;
use secure_export_itsm::{ItsmConnector, NewWorkItem, Severity, WorkItemState};

#[tokio::test]
async fn the_same_alert_accepted_20_times_concurrently_makes_one_job_and_one_item() {
    let h = harness().await;
    let spec = AlertSpec::fired("dup", "2024-05-01T10:00:00Z");
    let (alert, body) = spec.alert();
    let results =
        futures::future::join_all((0..20).map(|_| h.engine.accept("default", &alert, &body))).await;
    let new = results
        .iter()
        .filter(|r| matches!(r, Ok(Accepted::New { .. })))
        .count();
    let dup = results
        .iter()
        .filter(|r| matches!(r, Ok(Accepted::Duplicate { .. })))
        .count();
    assert_eq!((new, dup), (1, 19));
    assert_eq!(h.engine.queue_depth().await.unwrap(), 1);
    let workers = h.engine.start_workers();
    h.drain().await;
    assert_eq!(h.mock.tickets().len(), 1);
    assert_eq!(h.mock.call_count(MockOp::Create), 1);
    workers.shutdown().await;
}

#[tokio::test]
async fn backend_down_is_retried_and_delivered_after_recovery() {
    let h = harness().await;
    h.mock.fail_times(None, 5, &http(503, None));
    let workers = h.engine.start_workers();
    h.send(&AlertSpec::fired("down", "2024-05-01T10:00:00Z"))
        .await;
    h.drain().await;
    assert_eq!(h.mock.tickets().len(), 1);
    let m = h.engine.metrics();
    assert_eq!(
        m.counter(
            "secure_export_jobs_total",
            &[("connection", "default"), ("outcome", "retry")]
        ),
        5
    );
    assert_eq!(
        m.counter_sum("secure_export_itsm_calls_total", &[("status", "http_503")]),
        5
    );
    assert!(h.engine.dead_letters().await.unwrap().is_empty());
    workers.shutdown().await;
}

#[tokio::test]
async fn throttled_answers_are_honoured_and_not_counted_as_attempts() {
    // One attempt allowed: only the uncounted throttled waits can precede success.
    let options = EngineOptions {
        max_attempts: 1,
        ..fast_options()
    };
    let h = harness_with(|c| c, options).await;
    let wait = Duration::from_millis(150);
    h.mock
        .fail_times(Some(MockOp::Create), 2, &http(429, Some(wait)));
    let workers = h.engine.start_workers();
    let started = Instant::now();
    h.send(&AlertSpec::fired("slow", "2024-05-01T10:00:00Z"))
        .await;
    h.drain().await;
    assert!(
        started.elapsed() >= wait * 2,
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(h.mock.tickets().len(), 1);
    assert!(h.engine.dead_letters().await.unwrap().is_empty());
    workers.shutdown().await;
}

#[tokio::test]
async fn permanent_error_dead_letters_and_replay_delivers() {
    let h = harness().await;
    h.mock.fail_next(Some(MockOp::Create), http(400, None));
    let workers = h.engine.start_workers();
    let spec = AlertSpec::fired("perm", "2024-05-01T10:00:00Z");
    h.send(&spec).await;
    wait_until("dead letter", || async {
        h.engine.dead_letters().await.unwrap().len() == 1
    })
    .await;
    let dl = h.engine.dead_letters().await.unwrap().remove(0);
    assert!(dl.reason.contains("HTTP 400"), "{}", dl.reason);
    assert_eq!(dl.raw_body.as_deref(), Some(spec.body().as_slice()));
    assert_eq!(
        h.engine.metrics().gauge("secure_export_dead_letters", &[]),
        Some(1.0)
    );
    assert!(h.mock.tickets().is_empty());
    h.engine.replay_dead_letter(dl.id).await.unwrap();
    h.drain().await;
    assert_eq!(h.mock.tickets().len(), 1);
    assert!(matches!(
        h.engine.replay_dead_letter(dl.id).await,
        Err(EngineError::NotFound(_))
    ));
    let actions: Vec<_> = h
        .engine
        .history(&spec.alert_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.entry.action)
        .collect();
    assert_eq!(actions, ["accepted", "dead_letter", "replay", "create"]);
    workers.shutdown().await;
}

#[tokio::test]
async fn retry_budget_exhausted_dead_letters_then_replay_all() {
    let options = EngineOptions {
        max_attempts: 3,
        ..fast_options()
    };
    let h = harness_with(|c| c, options).await;
    h.mock.fail_times(None, 6, &http(502, None));
    let workers = h.engine.start_workers();
    h.send(&AlertSpec::fired("budget1", "2024-05-01T10:00:00Z"))
        .await;
    h.send(&AlertSpec::fired("budget2", "2024-05-01T10:00:00Z"))
        .await;
    wait_until("two dead letters", || async {
        h.engine.dead_letters().await.unwrap().len() == 2
    })
    .await;
    let dl = h.engine.dead_letters().await.unwrap();
    assert!(
        dl.iter()
            .all(|d| d.reason.contains("retry budget exhausted after 3 attempts")),
        "{dl:?}"
    );
    assert_eq!(h.engine.replay_all_dead_letters().await.unwrap(), 2);
    h.drain().await;
    assert_eq!(h.mock.tickets().len(), 2);
    workers.shutdown().await;
}

#[tokio::test]
async fn store_failure_is_unavailable_and_overload_is_overloaded() {
    let h = harness().await;
    h.store.close().await;
    let (alert, body) = AlertSpec::fired("nostore", "2024-05-01T10:00:00Z").alert();
    let err = h.engine.accept("default", &alert, &body).await.unwrap_err();
    assert!(matches!(err, AcceptError::Unavailable(_)), "{err}");
    assert_eq!(err.code(), "store_unavailable");
    assert!(matches!(
        h.engine.quarantine("default", b"x", "r").await,
        Err(AcceptError::Unavailable(_))
    ));
    assert!(h.engine.ready_to_accept().is_ok(), "not probed yet");
    let report = h.engine.probe_health().await;
    assert!(!report.store.ok());
    assert!(report.backends["default"].ok());
    assert_eq!(h.engine.health(), report);
    assert!(matches!(
        h.engine.ready_to_accept(),
        Err(secure_export::engine::NotReady::Store(_))
    ));
    assert!(matches!(
        h.engine.accept("nope", &alert, &body).await,
        Err(AcceptError::UnknownConnection(_))
    ));

    let options = EngineOptions {
        high_water_mark: 2,
        ..fast_options()
    };
    let h = harness_with(|c| c, options).await;
    h.send(&AlertSpec::fired("o1", "2024-05-01T10:00:00Z"))
        .await;
    h.send(&AlertSpec::fired("o2", "2024-05-01T10:00:00Z"))
        .await;
    let (alert, body) = AlertSpec::fired("o3", "2024-05-01T10:00:00Z").alert();
    let err = h.engine.accept("default", &alert, &body).await.unwrap_err();
    assert!(matches!(err, AcceptError::Overloaded));
    let m = h.engine.metrics();
    assert_eq!(
        m.counter(
            "secure_export_deliveries_total",
            &[
                ("connection", "default"),
                ("outcome", "rejected"),
                ("reason", "overloaded")
            ]
        ),
        1
    );
    let workers = h.engine.start_workers();
    h.drain().await;
    wait_until("depth gauge refreshed", || async {
        h.engine.accept("default", &alert, &body).await.is_ok()
    })
    .await;
    workers.shutdown().await;
}

#[tokio::test]
async fn quarantine_and_replay() {
    let h = harness().await;
    // An alert whose monitorCondition is unknown is quarantined by accept itself.
    let mut odd = AlertSpec::fired("odd", "2024-05-01T10:00:00Z");
    odd.condition = "Flapping";
    let (alert, body) = odd.alert();
    let Accepted::Quarantined { id } = h.engine.accept("default", &alert, &body).await.unwrap()
    else {
        panic!()
    };
    assert!(matches!(
        h.engine.replay_quarantined(id).await,
        Err(EngineError::StillUnparseable { .. })
    ));
    // A body the router could not model, replayed once the parser understands it.
    let good = AlertSpec::fired("late", "2024-05-01T10:00:00Z").body();
    let qid = h
        .engine
        .quarantine("default", &good, "unknown schemaId")
        .await
        .unwrap();
    let q = h.engine.quarantined().await.unwrap();
    assert_eq!(q.iter().map(|q| q.id).collect::<Vec<_>>(), [id, qid]);
    let workers = h.engine.start_workers();
    h.engine.replay_quarantined(qid).await.unwrap();
    h.drain().await;
    assert_eq!(h.mock.tickets().len(), 1);
    assert!(matches!(
        h.engine.replay_quarantined(qid).await,
        Err(EngineError::NotFound(_))
    ));
    assert_eq!(h.engine.quarantined().await.unwrap().len(), 1);
    workers.shutdown().await;
}

fn corr_id(spec: &AlertSpec) -> String {
    keys::itsm_correlation_id(
        "default",
        &format!("alert:{}", spec.alert_id.to_lowercase()),
    )
}

#[tokio::test]
async fn crash_between_itsm_call_and_commit_makes_no_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let h = harness_on(store.clone(), |c| c, fast_options()).await;
    let specs: Vec<_> = (0..10)
        .map(|i| AlertSpec::fired(&format!("crash{i}"), "2024-05-01T10:00:00Z"))
        .collect();
    for s in &specs {
        h.send(s).await;
    }
    // A worker claims the first job, records that it calls create (as the outbox does),
    // creates the item and dies before committing.
    let now = chrono::Utc::now();
    let job = store
        .claim("default", 1, now, now + chrono::Duration::hours(1))
        .await
        .unwrap()
        .remove(0);
    store.mark_create_started(&job, now).await.unwrap();
    let created = h
        .mock
        .create(&NewWorkItem::new(
            corr_id(&specs[0]),
            "created before the crash",
            Severity::Sev1,
        ))
        .await
        .unwrap();
    assert_eq!(job.alert_id, specs[0].alert_id);
    let mock = h.mock.clone();
    drop(h);
    store.close().await;

    // Restart on the same directory with the same backend.
    let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let engine = secure_export::engine::Engine::new(
        store.clone() as Arc<dyn Store>,
        vec![secure_export::engine::ConnectionRuntime::new(
            "default",
            Arc::new(mock.clone()),
        )],
        fast_options(),
        secure_export::metrics::Metrics::new(),
    )
    .await
    .unwrap();
    assert_eq!(engine.queue_depth().await.unwrap(), 10);
    let workers = engine.start_workers();
    wait_until("drained after restart", || async {
        engine.queue_depth().await.unwrap() == 0
    })
    .await;
    workers.shutdown().await;
    for s in &specs {
        assert_eq!(mock.tickets_for(&corr_id(s)).len(), 1, "{}", s.alert_id);
    }
    assert_eq!(mock.tickets_for(&corr_id(&specs[0]))[0].reference, created);
}

#[tokio::test]
async fn dropping_the_engine_mid_flight_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let h = harness_on(store.clone(), |c| c, fast_options()).await;
    let mut specs = Vec::new();
    for i in 0..40 {
        specs.push(AlertSpec::fired(&format!("mid{i}"), "2024-05-01T10:00:00Z"));
        specs.push(AlertSpec::resolved(
            &format!("mid{i}"),
            "2024-05-01T10:00:00Z",
            "2024-05-01T10:30:00Z",
        ));
    }
    // Slow the backend down a little so work is in flight when we "crash".
    h.mock.fail_times(None, 30, &http(503, None));
    let workers = h.engine.start_workers();
    for s in &specs {
        h.send(s).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mock = h.mock.clone();
    drop(workers); // aborts every task at once, like kill -9
    drop(h);
    store.close().await;

    let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let engine = secure_export::engine::Engine::new(
        store.clone() as Arc<dyn Store>,
        vec![secure_export::engine::ConnectionRuntime::new(
            "default",
            Arc::new(mock.clone()),
        )],
        fast_options(),
        secure_export::metrics::Metrics::new(),
    )
    .await
    .unwrap();
    let workers = engine.start_workers();
    wait_until("drained after restart", || async {
        engine.queue_depth().await.unwrap() == 0
    })
    .await;
    workers.shutdown().await;
    for s in specs.iter().step_by(2) {
        let tickets = mock.tickets_for(&corr_id(s));
        assert_eq!(tickets.len(), 1, "{}", s.alert_id);
        assert_eq!(tickets[0].state, WorkItemState::Resolved, "{}", s.alert_id);
    }
    assert!(engine.dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn graceful_shutdown_finishes_or_releases_in_flight_jobs() {
    let h = harness().await;
    h.mock.fail_times(None, 3, &http(503, None));
    let workers = h.engine.start_workers();
    for i in 0..5 {
        h.send(&AlertSpec::fired(&format!("g{i}"), "2024-05-01T10:00:00Z"))
            .await;
    }
    workers.shutdown().await;
    // Nothing is left leased: a new set of workers finishes everything.
    let workers = h.engine.start_workers();
    h.drain().await;
    assert_eq!(h.mock.tickets().len(), 5);
    workers.shutdown().await;
}

#[tokio::test]
async fn retention_purges_old_rows_but_never_an_open_item() {
    let clock = Arc::new(secure_export::engine::ManualClock::new());
    let options = EngineOptions {
        clock: clock.clone(),
        ..fast_options()
    };
    let h = harness_with(|c| c, options).await;
    let workers = h.engine.start_workers();
    let open = AlertSpec::fired("keep", "2024-05-01T10:00:00Z");
    let done = AlertSpec::fired("gone", "2024-05-01T10:00:00Z");
    h.send(&open).await;
    h.send(&done).await;
    h.send(&AlertSpec::resolved(
        "gone",
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:05:00Z",
    ))
    .await;
    h.drain().await;
    assert_eq!(
        h.engine.purge_expired().await.unwrap(),
        0,
        "nothing is old yet"
    );
    clock.advance(Duration::from_secs(31 * 24 * 3600));
    assert!(h.engine.purge_expired().await.unwrap() > 0);
    assert!(h.engine.history(&done.alert_id).await.unwrap().is_empty());
    // The open item is still tracked: its Resolved resolves it.
    h.send(&AlertSpec::resolved(
        "keep",
        "2024-05-01T10:00:00Z",
        "2024-05-01T11:00:00Z",
    ))
    .await;
    h.drain().await;
    assert!(
        h.mock
            .tickets()
            .iter()
            .all(|t| t.state == WorkItemState::Resolved)
    );
    assert_eq!(h.mock.tickets().len(), 2);
    workers.shutdown().await;
}

/// A store that refuses any batch holding a "poison" delivery.
#[derive(Debug)]
struct Poisoned(SqliteStore);

use chrono::{DateTime, Utc};
use secure_export::store::{
    AcceptOutcome, AuditEntry, CorrelationRecord, DeadLetter, Job, NewAudit, NewDelivery,
    Quarantined, StoreError,
};

#[async_trait::async_trait]
impl Store for Poisoned {
    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
    async fn accept_batch(&self, d: &[NewDelivery]) -> Result<Vec<AcceptOutcome>, StoreError> {
        if d.iter().any(|d| d.alert_id.ends_with("poison")) {
            return Err(StoreError::Unavailable("poisoned batch".to_owned()));
        }
        self.0.accept_batch(d).await
    }
    async fn quarantine(
        &self,
        c: &str,
        b: &[u8],
        r: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.0.quarantine(c, b, r, at).await
    }
    async fn claim(
        &self,
        c: &str,
        l: usize,
        n: DateTime<Utc>,
        u: DateTime<Utc>,
    ) -> Result<Vec<Job>, StoreError> {
        self.0.claim(c, l, n, u).await
    }
    async fn delivery_body(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.delivery_body(id).await
    }
    async fn correlation(&self, c: &str, k: &str) -> Result<Option<CorrelationRecord>, StoreError> {
        self.0.correlation(c, k).await
    }
    async fn save(
        &self,
        j: &Job,
        c: &[CorrelationRecord],
        a: &[NewAudit],
        f: bool,
    ) -> Result<(), StoreError> {
        self.0.save(j, c, a, f).await
    }
    async fn retry(&self, j: &Job, at: DateTime<Utc>, e: &str, c: bool) -> Result<(), StoreError> {
        self.0.retry(j, at, e, c).await
    }
    async fn release(&self, j: &Job) -> Result<(), StoreError> {
        self.0.release(j).await
    }
    async fn mark_create_started(&self, job: &Job, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.0.mark_create_started(job, at).await
    }
    async fn dead_letter(&self, j: &Job, r: &str, at: DateTime<Utc>) -> Result<i64, StoreError> {
        self.0.dead_letter(j, r, at).await
    }
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.0.dead_letters().await
    }
    async fn replay_dead_letter(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.0.replay_dead_letter(id, now).await
    }
    async fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        self.0.quarantined().await
    }
    async fn mark_quarantine_replayed(
        &self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.0.mark_quarantine_replayed(id, at).await
    }
    async fn schedule_auto_close(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.0.schedule_auto_close(now).await
    }
    async fn history(&self, a: &str) -> Result<Vec<AuditEntry>, StoreError> {
        self.0.history(a).await
    }
    async fn purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.0.purge(before).await
    }
    async fn queue_depth(&self) -> Result<u64, StoreError> {
        self.0.queue_depth().await
    }
    async fn dead_letter_count(&self) -> Result<u64, StoreError> {
        self.0.dead_letter_count().await
    }
    async fn queue_depths(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        self.0.queue_depths().await
    }
    async fn quarantine_usage(&self) -> Result<secure_export::store::QuarantineUsage, StoreError> {
        self.0.quarantine_usage().await
    }
}

#[tokio::test]
async fn one_failing_delivery_does_not_fail_its_group_commit_batch() {
    let store = Arc::new(Poisoned(SqliteStore::open_in_memory().await.unwrap()));
    let engine = secure_export::engine::Engine::new(
        store as Arc<dyn Store>,
        vec![secure_export::engine::ConnectionRuntime::new(
            "default",
            Arc::new(secure_export_itsm::mock::MockConnector::new()),
        )],
        fast_options(),
        secure_export::metrics::Metrics::new(),
    )
    .await
    .unwrap();
    let specs: Vec<_> = (0..30)
        .map(|i| {
            let id = if i == 7 {
                "x-poison".to_owned()
            } else {
                format!("ok{i}")
            };
            AlertSpec::fired(&id, "2024-05-01T10:00:00Z").alert()
        })
        .collect();
    let results = futures::future::join_all(
        specs
            .iter()
            .map(|(alert, body)| engine.accept("default", alert, body)),
    )
    .await;
    for (i, r) in results.iter().enumerate() {
        if i == 7 {
            assert!(matches!(r, Err(AcceptError::Unavailable(_))), "{r:?}");
        } else {
            assert!(matches!(r, Ok(Accepted::New { .. })), "{i}: {r:?}");
        }
    }
    assert_eq!(engine.queue_depth().await.unwrap(), 29);
    let batches = engine
        .metrics()
        .counter("secure_export_accept_batches_total", &[]);
    assert!(
        batches < 30,
        "the accepts were committed in {batches} batches"
    );
}
