//! Fan-out bounds (security review): one alert naming 6,000 `alertTargetIDs` must cost the
//! lookups of at most `max_targets` targets, within `max_concurrent_lookups` requests in
//! flight, each paced by the connection's [`LookupPacer`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use secure_export_cmdb::{
    Binder, CiRecord, CiSource, CmdbLookup, DEFAULT_MAX_CONCURRENT_LOOKUPS, DEFAULT_MAX_TARGETS,
    LookupError, LookupPacer, NOTE_LIST_LIMIT,
};
use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};
use secure_export_schema::Alert;
use secure_export_servicenow::{Auth, ServiceNowCmdb, ServiceNowConfig};

fn vm_id(prefix: &str, i: usize) -> String {
    format!(
        "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/{prefix}-RG/providers/Microsoft.Compute/virtualMachines/{prefix}-vm{i:04}"
    )
}

/// A metric alert naming `n` VMs in `alertTargetIDs` and, as Azure does, their names
/// (upper-cased here) in `configurationItems`.
fn fanout_alert(prefix: &str, n: usize) -> (Alert, Vec<String>) {
    let ids: Vec<String> = (0..n).map(|i| vm_id(prefix, i)).collect();
    let names: Vec<String> = (0..n)
        .map(|i| format!("{prefix}-vm{i:04}").to_uppercase())
        .collect();
    let alert = Alert::from_value(serde_json::json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertRule": "cpu", "severity": "Sev2", "signalType": "Metric",
                "monitorCondition": "Fired", "monitoringService": "Platform",
                "alertTargetIDs": ids,
                "configurationItems": names,
                "firedDateTime": "2025-01-01T00:00:00Z"
            },
            "alertContext": {}
        }
    }))
    .unwrap();
    (alert, ids)
}

/// An in-memory CMDB counting its requests and the most in flight at once. Every request
/// takes `delay` (tokio time: the tests run with time paused). With `find`, every VM is
/// found by resource id.
#[derive(Debug, Default)]
struct TrackingCmdb {
    delay: Duration,
    find: bool,
    by_id: AtomicUsize,
    by_name: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl TrackingCmdb {
    async fn request(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    fn calls(&self) -> (usize, usize) {
        (
            self.by_id.load(Ordering::SeqCst),
            self.by_name.load(Ordering::SeqCst),
        )
    }
}

#[async_trait]
impl CmdbLookup for TrackingCmdb {
    async fn by_resource_id(&self, resource_id: &str) -> Result<Vec<CiRecord>, LookupError> {
        self.by_id.fetch_add(1, Ordering::SeqCst);
        self.request().await;
        Ok(if self.find {
            let name = resource_id.rsplit('/').next().unwrap_or_default();
            vec![CiRecord {
                id: format!("sys-{name}"),
                name: name.to_owned(),
                class: Some("cmdb_ci_vm_instance".to_owned()),
                source: CiSource::ResourceId,
            }]
        } else {
            Vec::new()
        })
    }

    async fn by_name(&self, _: &str, _: Option<&str>) -> Result<Vec<CiRecord>, LookupError> {
        self.by_name.fetch_add(1, Ordering::SeqCst);
        self.request().await;
        Ok(Vec::new())
    }
}

#[derive(Debug, Default)]
struct CountingPacer {
    acquires: AtomicUsize,
    succeeded: AtomicUsize,
    throttled: Mutex<Vec<Duration>>,
}

#[async_trait]
impl LookupPacer for CountingPacer {
    async fn acquire(&self) {
        self.acquires.fetch_add(1, Ordering::SeqCst);
    }

    fn throttled(&self, wait: Duration) {
        self.throttled.lock().unwrap().push(wait);
    }

    fn succeeded(&self, _started: tokio::time::Instant) {
        self.succeeded.fetch_add(1, Ordering::SeqCst);
    }
}

/// The review's attack: 6,000 targets (and their 6,000 names). With the defaults, the first
/// 50 targets are looked up, each by resource id and then by name (nothing is found), so
/// exactly 100 requests; the names in `configurationItems` are those of the targets, kept or
/// omitted, and add none.
#[tokio::test(start_paused = true)]
async fn a_6000_target_alert_looks_up_only_the_first_50() {
    let cmdb = Arc::new(TrackingCmdb {
        delay: Duration::from_millis(20),
        ..TrackingCmdb::default()
    });
    let pacer = Arc::new(CountingPacer::default());
    let binder = Binder::builder(cmdb.clone())
        .pacer(pacer.clone())
        .build()
        .unwrap();
    let (alert, ids) = fanout_alert("atk", 6_000);

    let binding = binder.bind(&alert).await;

    assert_eq!(DEFAULT_MAX_TARGETS, 50);
    assert_eq!(cmdb.calls(), (50, 50));
    assert_eq!(binder.cache_stats().lookups, 100);
    assert_eq!(pacer.acquires.load(Ordering::SeqCst), 100);
    assert_eq!(pacer.succeeded.load(Ordering::SeqCst), 100);
    assert_eq!(
        cmdb.max_in_flight.load(Ordering::SeqCst),
        DEFAULT_MAX_CONCURRENT_LOOKUPS
    );

    assert_eq!(binding.primary, None);
    let unmatched: Vec<&str> = binding
        .unmatched
        .iter()
        .map(|u| u.target.as_str())
        .collect();
    assert_eq!(unmatched, ids[..50]);
    assert_eq!(binding.omitted.count, 5_950);
    assert_eq!(binding.omitted.targets, ids[50..50 + NOTE_LIST_LIMIT]);

    // The work note stays short: 20 unmatched listed then a count, 20 omitted then a count.
    let note = binding.unmatched_note().unwrap();
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines.len(), 2 * (1 + NOTE_LIST_LIMIT + 1));
    assert_eq!(lines[0], "CMDB binding: 50 targets not bound");
    assert_eq!(lines[NOTE_LIST_LIMIT + 1], "- ... and 30 more");
    assert_eq!(
        lines[NOTE_LIST_LIMIT + 2],
        "CMDB binding: 5950 more targets not looked up (over the per-alert limit)"
    );
    assert_eq!(lines.last().copied(), Some("- ... and 5930 more"));
    assert!(note.len() < 8 * 1024, "{} bytes", note.len());

    // Again: all 100 answers are cached, nothing is sent or paced.
    binder.bind(&alert).await;
    assert_eq!(cmdb.calls(), (50, 50));
    assert_eq!(pacer.acquires.load(Ordering::SeqCst), 100);
}

/// `ci` correlation mode: one binding per bound CI, so at most `max_targets` of them.
#[tokio::test(start_paused = true)]
async fn bind_each_of_a_6000_target_alert_yields_at_most_max_targets_bindings() {
    let cmdb = Arc::new(TrackingCmdb {
        find: true,
        ..TrackingCmdb::default()
    });
    let binder = Binder::builder(cmdb.clone()).build().unwrap();
    let (alert, _) = fanout_alert("each", 6_000);

    let each = binder.bind_each(&alert).await;

    assert_eq!(each.len(), 50);
    assert_eq!(
        cmdb.calls(),
        (50, 0),
        "found by resource id: no name lookup"
    );
    assert_eq!(
        each[0].primary.as_ref().map(|ci| ci.id.as_str()),
        Some("sys-each-vm0000"),
        "the resource id arrives lower-cased"
    );
    assert_eq!(each[0].omitted.count, 5_950);
    assert!(each[1..].iter().all(|b| b.omitted.is_empty()));

    let small = Binder::builder(cmdb.clone())
        .max_targets(3)
        .build()
        .unwrap();
    let (alert, _) = fanout_alert("three", 6_000);
    assert_eq!(small.bind_each(&alert).await.len(), 3);
    assert_eq!(cmdb.calls(), (53, 0));
}

/// Several such alerts at once share the binder's bound: never more than
/// `max_concurrent_lookups` requests in flight.
#[tokio::test(start_paused = true)]
async fn concurrent_alerts_share_the_concurrency_bound() {
    let cmdb = Arc::new(TrackingCmdb {
        delay: Duration::from_millis(20),
        ..TrackingCmdb::default()
    });
    // 400 requests of 20 ms, 3 at a time, take 2.7 s: past the default 2 s bind deadline.
    let binder = Binder::builder(cmdb.clone())
        .max_concurrent_lookups(3)
        .deadline(Duration::from_secs(60))
        .build()
        .unwrap();
    let alerts: Vec<Alert> = ["a", "b", "c", "d"]
        .iter()
        .map(|p| fanout_alert(p, 6_000).0)
        .collect();
    let bindings = futures::future::join_all(alerts.iter().map(|alert| binder.bind(alert))).await;
    assert!(bindings.iter().all(|b| b.omitted.count == 5_950));
    assert_eq!(cmdb.calls(), (200, 200));
    assert_eq!(cmdb.max_in_flight.load(Ordering::SeqCst), 3);
}

fn servicenow_cmdb_calls(emu: &ServiceNowEmulator) -> usize {
    emu.calls()
        .iter()
        .filter(|c| c.path.starts_with("/api/now/table/cmdb"))
        .count()
}

/// Against the ServiceNow emulator (real HTTP): the 6,000-target alert costs exactly the CMDB
/// requests of an alert naming only its first 50 targets.
#[tokio::test]
async fn servicenow_sees_the_requests_of_50_targets_only() {
    let emu = ServiceNowEmulator::start(ServiceNowOptions::default())
        .await
        .unwrap();
    let config = ServiceNowConfig::new(emu.base_url(), Auth::basic(emu.username(), emu.password()))
        .with_timeout(Duration::from_secs(5));
    let lookup: Arc<dyn CmdbLookup> =
        Arc::new(ServiceNowCmdb::new(&config, reqwest::Client::new()).unwrap());
    let fresh = || {
        Binder::builder(Arc::clone(&lookup))
            .deadline(Duration::from_secs(30))
            .build()
            .unwrap()
    };

    let (fifty, _) = fanout_alert("sn", 50);
    emu.clear_calls();
    let small = fresh().bind(&fifty).await;
    let per_50 = servicenow_cmdb_calls(&emu);
    assert!(small.omitted.is_empty());
    assert!(per_50 >= 100, "at least one request per lookup: {per_50}");

    let (huge, _) = fanout_alert("sn", 6_000);
    emu.clear_calls();
    let binding = fresh().bind(&huge).await;
    assert_eq!(servicenow_cmdb_calls(&emu), per_50);
    assert_eq!(binding.unmatched, small.unmatched);
    assert_eq!(binding.omitted.count, 5_950);
    println!("ServiceNow: {per_50} CMDB requests for the 6,000-target alert (review: 36,915)");
    emu.shutdown().await;
}

/// Collecting a huge alert's candidates yields to the scheduler, so other tasks on the same
/// worker (`/healthz`, other tenants' alerts) run meanwhile; a small alert does not yield.
/// With no strategy, `bind` collects the candidates and awaits nothing else.
#[tokio::test(flavor = "current_thread")]
async fn collecting_a_huge_alert_lets_other_tasks_run() {
    let binder = Binder::builder(Arc::new(TrackingCmdb::default()))
        .strategies(Vec::new())
        .build()
        .unwrap();
    for (n, yields) in [(1, false), (6_000, true)] {
        let (alert, _) = fanout_alert("yield", n);
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let other = tokio::spawn({
            let ran = Arc::clone(&ran);
            async move { ran.store(true, Ordering::SeqCst) }
        });
        binder.bind(&alert).await;
        assert_eq!(ran.load(Ordering::SeqCst), yields, "{n} targets");
        other.await.unwrap();
    }
}
