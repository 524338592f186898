//! Outbox scheduling: bounded concurrency per backend, per-key ordering, throttling pauses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use engine_support::{AlertSpec, fast_options, harness, http};
use secure_export::engine::{ConnectionRuntime, Engine, EngineOptions};
use secure_export::metrics::Metrics;
use secure_export::store::{SqliteStore, Store};
use secure_export_itsm::mock::{MockConnector, MockOp};
use secure_export_itsm::{
    ItsmConnector, ItsmError, NewWorkItem, Resolution, WorkItemRef, WorkItemState, WorkItemUpdate,
};

/// The mock behind a 20 ms latency that records the highest number of concurrent calls.
#[derive(Debug, Clone, Default)]
struct Slow {
    inner: MockConnector,
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Slow {
    async fn enter<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let out = f.await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        out
    }
}

#[async_trait]
impl ItsmConnector for Slow {
    fn backend(&self) -> &'static str {
        "slow"
    }
    async fn create(&self, item: &NewWorkItem) -> Result<WorkItemRef, ItsmError> {
        self.enter(self.inner.create(item)).await
    }
    async fn find_open(&self, id: &str) -> Result<Option<WorkItemRef>, ItsmError> {
        self.enter(self.inner.find_open(id)).await
    }
    async fn state(&self, item: &WorkItemRef) -> Result<WorkItemState, ItsmError> {
        self.enter(self.inner.state(item)).await
    }
    async fn update(&self, item: &WorkItemRef, u: &WorkItemUpdate) -> Result<(), ItsmError> {
        self.enter(self.inner.update(item, u)).await
    }
    async fn resolve(&self, item: &WorkItemRef, r: &Resolution) -> Result<(), ItsmError> {
        self.enter(self.inner.resolve(item, r)).await
    }
    async fn reopen(&self, item: &WorkItemRef, note: &str) -> Result<(), ItsmError> {
        self.enter(self.inner.reopen(item, note)).await
    }
}

#[tokio::test]
async fn concurrency_per_backend_is_bounded() {
    let slow = Slow::default();
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let conn = ConnectionRuntime::new("default", Arc::new(slow.clone()));
    let options = EngineOptions {
        workers_per_backend: 3,
        ..fast_options()
    };
    let engine = Engine::new(store as Arc<dyn Store>, vec![conn], options, Metrics::new())
        .await
        .unwrap();
    for i in 0..12 {
        let (alert, body) = AlertSpec::fired(&format!("c{i}"), "2024-05-01T10:00:00Z").alert();
        engine.accept("default", &alert, &body).await.unwrap();
    }
    let workers = engine.start_workers();
    engine_support::wait_until("drained", || async {
        engine.queue_depth().await.unwrap() == 0
    })
    .await;
    workers.shutdown().await;
    assert_eq!(slow.inner.tickets().len(), 12);
    let peak = slow.peak.load(Ordering::SeqCst);
    assert!((2..=3).contains(&peak), "peak concurrency {peak}");
    let text = engine.metrics().render();
    assert!(
        text.contains(
            r#"secure_export_itsm_call_seconds_count{backend="slow",operation="create"} 12"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn jobs_of_one_key_keep_their_order_while_the_first_is_retried() {
    let h = harness().await;
    // The Fired's create fails a few times; the Resolved accepted meanwhile must wait for it.
    h.mock.fail_times(Some(MockOp::Create), 3, &http(500, None));
    let workers = h.engine.start_workers();
    h.send(&AlertSpec::fired("ord", "2024-05-01T10:00:00Z"))
        .await;
    h.send(&AlertSpec::resolved(
        "ord",
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:01:00Z",
    ))
    .await;
    h.drain().await;
    let tickets = h.mock.tickets();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].state, WorkItemState::Resolved);
    workers.shutdown().await;
}

#[tokio::test]
async fn a_throttled_answer_pauses_the_whole_backend() {
    let h = harness().await;
    let wait = Duration::from_millis(200);
    h.mock
        .fail_next(Some(MockOp::Create), http(429, Some(wait)));
    let workers = h.engine.start_workers();
    let started = Instant::now();
    h.send(&AlertSpec::fired("th1", "2024-05-01T10:00:00Z"))
        .await;
    engine_support::wait_until("throttled", || async {
        h.mock.call_count(MockOp::Create) >= 1
    })
    .await;
    // A different key arrives during the pause: it is not sent before the pause ends.
    h.send(&AlertSpec::fired("th2", "2024-05-01T10:00:00Z"))
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    if started.elapsed() < wait {
        assert_eq!(
            h.mock.call_count(MockOp::Create),
            1,
            "no call during the pause"
        );
    }
    h.drain().await;
    assert!(started.elapsed() >= wait, "{:?}", started.elapsed());
    assert_eq!(h.mock.tickets().len(), 2);
    let calls: Vec<_> = h
        .mock
        .calls()
        .into_iter()
        .filter(|c| c.op != MockOp::Health)
        .collect();
    assert!(
        calls[0].failed && calls[1..].iter().all(|c| !c.failed),
        "{calls:?}"
    );
    workers.shutdown().await;
}

#[tokio::test]
async fn configuration_errors_and_readiness() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let mock = MockConnector::new();
    let twice = vec![
        ConnectionRuntime::new("a", Arc::new(mock.clone())),
        ConnectionRuntime::new("a", Arc::new(mock.clone())),
    ];
    let err = Engine::new(store.clone(), twice, fast_options(), Metrics::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"a\" is defined twice"), "{err}");
    let empty = vec![ConnectionRuntime::new(" ", Arc::new(mock.clone()))];
    assert!(
        Engine::new(store.clone(), empty, fast_options(), Metrics::new())
            .await
            .is_err()
    );
    let conns = vec![
        ConnectionRuntime::new("a", Arc::new(mock.clone())),
        ConnectionRuntime::new("b", Arc::new(MockConnector::new())),
    ];
    let engine = Engine::new(store, conns, fast_options(), Metrics::new())
        .await
        .unwrap();
    assert_eq!(engine.connection_names(), ["a", "b"]);
    mock.fail_next(Some(MockOp::Health), http(401, None));
    let report = engine.probe_health().await;
    assert!(report.store.ok());
    let names: Vec<_> = report
        .backends
        .iter()
        .map(|(n, c)| (n.as_str(), c.ok()))
        .collect();
    assert_eq!(names, [("a", false), ("b", true)]);
    // A backend outage never makes the engine unready to accept.
    assert!(engine.ready_to_accept().is_ok());
}
