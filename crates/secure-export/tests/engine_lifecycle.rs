//! Every lifecycle path end to end through the engine and the mock backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use engine_support::{AlertSpec, Harness, fast_options, harness, harness_with, vm};
use secure_export::engine::{Accepted, EngineOptions, ManualClock};
use secure_export::keys;
use secure_export::lifecycle::{ClosedPolicy, CorrelationMode, FindOpenPolicy, LifecyclePolicy};
use secure_export_cmdb::{Binder, CiRecord, CiSource, CmdbLookup, LookupError};
use secure_export_itsm::mock::{MockConnector, MockOp};
use secure_export_itsm::{ItsmConnector, NewWorkItem, Severity, WorkItemState};

fn corr_id(spec: &AlertSpec) -> String {
    keys::itsm_correlation_id(
        "default",
        &format!("alert:{}", spec.alert_id.to_lowercase()),
    )
}

async fn step(h: &Harness, spec: &AlertSpec) -> Accepted {
    let a = h.send(spec).await;
    h.drain().await;
    a
}

#[tokio::test]
async fn create_update_resolve_reopen_and_new_past_window() {
    let h = harness().await;
    let workers = h.engine.start_workers();
    let fired = AlertSpec::fired("a1", "2024-05-01T10:00:00Z");
    assert!(matches!(step(&h, &fired).await, Accepted::New { .. }));
    let tickets = h.mock.tickets_for(&corr_id(&fired));
    assert_eq!(tickets.len(), 1);
    let t = &tickets[0];
    assert_eq!(t.item.title, "[Sev1] High CPU - vm1");
    assert_eq!(t.item.severity, Severity::Sev1);
    assert!(t.item.description.contains(&fired.alert_id));
    let id = t.reference.id.clone();

    // Fired again (new fired time): work note with the counter, no new item.
    step(&h, &AlertSpec::fired("a1", "2024-05-01T10:05:00Z")).await;
    let t = h.mock.ticket(&id).unwrap();
    assert_eq!(t.notes.len(), 1);
    assert!(t.notes[0].contains("fired 2 times"), "{:?}", t.notes);
    // The same delivery again: duplicate, nothing happens.
    assert!(matches!(
        h.send(&AlertSpec::fired("a1", "2024-05-01T10:05:00Z"))
            .await,
        Accepted::Duplicate { .. }
    ));

    // Resolved: resolved with notes.
    step(
        &h,
        &AlertSpec::resolved("a1", "2024-05-01T10:00:00Z", "2024-05-01T10:30:00Z"),
    )
    .await;
    let t = h.mock.ticket(&id).unwrap();
    assert_eq!(t.state, WorkItemState::Resolved);
    assert!(
        t.resolution
            .unwrap()
            .notes
            .contains("resolved the alert at 2024-05-01T10:30:00")
    );
    // A later Resolved for a resolved item: no-op.
    step(
        &h,
        &AlertSpec::resolved("a1", "2024-05-01T10:00:00Z", "2024-05-01T10:31:00Z"),
    )
    .await;
    // A Fired older than the Resolved: stale, ignored.
    step(&h, &AlertSpec::fired("a1", "2024-05-01T10:10:00Z")).await;
    assert_eq!(h.mock.ticket(&id).unwrap().state, WorkItemState::Resolved);
    assert_eq!(h.mock.call_count(MockOp::Resolve), 1);

    // Fired within the reopen window: reopened.
    step(&h, &AlertSpec::fired("a1", "2024-05-01T11:00:00Z")).await;
    let t = h.mock.ticket(&id).unwrap();
    assert_eq!((t.state, t.reopen_count), (WorkItemState::Open, 1));
    step(
        &h,
        &AlertSpec::resolved("a1", "2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z"),
    )
    .await;

    // Fired past the window (25 h later): a new item.
    step(&h, &AlertSpec::fired("a1", "2024-05-02T13:00:00Z")).await;
    let tickets = h.mock.tickets_for(&corr_id(&fired));
    assert_eq!(tickets.len(), 2);
    assert_eq!(h.mock.ticket(&id).unwrap().state, WorkItemState::Resolved);

    let actions: Vec<String> = h
        .engine
        .history(&fired.alert_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.entry.action != "accepted")
        .map(|e| e.entry.action)
        .collect();
    assert_eq!(
        actions,
        [
            "create",
            "update",
            "resolve",
            "already_resolved",
            "stale_fired",
            "reopen",
            "resolve",
            "create"
        ]
    );
    let text = h.engine.metrics().render();
    assert!(text.contains(r#"secure_export_deliveries_total{connection="default",outcome="duplicate",reason="fired"} 1"#), "{text}");
    assert!(
        text.contains(
            r#"secure_export_itsm_calls_total{backend="mock",operation="create",status="ok"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"secure_export_jobs_total{connection="default",outcome="reopen"} 1"#),
        "{text}"
    );
    workers.shutdown().await;
}

/// The calls that do work (the background health probe is not one).
fn work_calls(mock: &MockConnector) -> Vec<secure_export_itsm::mock::MockCall> {
    mock.calls()
        .into_iter()
        .filter(|c| c.op != MockOp::Health)
        .collect()
}

#[tokio::test]
async fn resolved_with_nothing_open_is_a_tombstone_without_itsm_calls() {
    let h = harness().await;
    let workers = h.engine.start_workers();
    step(
        &h,
        &AlertSpec::resolved("t1", "2024-05-01T10:00:00Z", "2024-05-01T10:30:00Z"),
    )
    .await;
    assert!(work_calls(&h.mock).is_empty(), "{:?}", h.mock.calls());
    // The Fired it resolves arrives late: stale, still no call.
    step(&h, &AlertSpec::fired("t1", "2024-05-01T10:00:00Z")).await;
    assert!(work_calls(&h.mock).is_empty(), "{:?}", h.mock.calls());
    // A newer Fired creates.
    step(&h, &AlertSpec::fired("t1", "2024-05-01T11:00:00Z")).await;
    assert_eq!(h.mock.tickets().len(), 1);
    workers.shutdown().await;
}

#[tokio::test]
async fn closed_by_a_person_new_item_or_note_only() {
    for (policy, tickets, notes) in [
        (ClosedPolicy::NewItem, 2, 0),
        (ClosedPolicy::NoteOnly, 1, 1),
    ] {
        let h = harness_with(
            |mut c| {
                c.policy.closed_by_person = policy;
                c
            },
            fast_options(),
        )
        .await;
        let workers = h.engine.start_workers();
        step(&h, &AlertSpec::fired("p1", "2024-05-01T10:00:00Z")).await;
        let first = h.mock.tickets()[0].reference.id.clone();
        assert!(h.mock.close_by_person(&first));
        step(&h, &AlertSpec::fired("p1", "2024-05-01T10:05:00Z")).await;
        assert_eq!(h.mock.tickets().len(), tickets, "{policy:?}");
        assert_eq!(
            h.mock.ticket(&first).unwrap().notes.len(),
            notes,
            "{policy:?}"
        );
        assert_eq!(h.mock.ticket(&first).unwrap().state, WorkItemState::Closed);
        workers.shutdown().await;
    }
}

#[tokio::test]
async fn a_first_create_makes_one_itsm_call() {
    let h = harness().await;
    let workers = h.engine.start_workers();
    step(&h, &AlertSpec::fired("one-call", "2024-05-01T10:00:00Z")).await;
    assert_eq!(h.mock.tickets().len(), 1);
    assert_eq!(h.mock.call_count(MockOp::Create), 1);
    assert_eq!(
        h.mock.call_count(MockOp::FindOpen),
        0,
        "no earlier attempt reached create: nothing to look for"
    );
    workers.shutdown().await;
}

#[tokio::test]
async fn with_find_open_always_an_unrecorded_open_item_is_adopted_not_duplicated() {
    let h = harness_with(
        |mut c| {
            c.policy.find_open_before_create = FindOpenPolicy::Always;
            c
        },
        fast_options(),
    )
    .await;
    let spec = AlertSpec::fired("adopt", "2024-05-01T10:00:00Z");
    // Created by an earlier installation whose store this one does not have (a restored
    // backup, a move to another store).
    let existing = h
        .mock
        .create(&NewWorkItem::new(corr_id(&spec), "earlier", Severity::Sev1))
        .await
        .unwrap();
    let workers = h.engine.start_workers();
    step(&h, &spec).await;
    assert_eq!(h.mock.tickets().len(), 1);
    assert_eq!(h.mock.call_count(MockOp::Create), 1);
    let history = h.engine.history(&spec.alert_id).await.unwrap();
    assert!(history.iter().any(|e| e.entry.detail.contains("adopted")
        && e.entry.work_item.as_deref() == existing.number.as_deref()));
    // And the adopted item is the one resolved later.
    step(
        &h,
        &AlertSpec::resolved("adopt", "2024-05-01T10:00:00Z", "2024-05-01T10:10:00Z"),
    )
    .await;
    assert_eq!(
        h.mock.ticket(&existing.id).unwrap().state,
        WorkItemState::Resolved
    );
    workers.shutdown().await;
}

#[tokio::test]
async fn rule_and_target_mode_groups_alert_instances() {
    let h = harness_with(
        |mut c| {
            c.policy = LifecyclePolicy {
                correlation: CorrelationMode::RuleAndTarget,
                ..LifecyclePolicy::default()
            };
            c
        },
        fast_options(),
    )
    .await;
    let workers = h.engine.start_workers();
    step(&h, &AlertSpec::fired("r1", "2024-05-01T10:00:00Z")).await;
    step(&h, &AlertSpec::fired("r2", "2024-05-01T10:05:00Z")).await;
    let mut other = AlertSpec::fired("r3", "2024-05-01T10:06:00Z");
    other.targets = vec![vm("vm2")];
    step(&h, &other).await;
    let tickets = h.mock.tickets();
    assert_eq!(tickets.len(), 2);
    assert_eq!(tickets[0].notes.len(), 1);
    workers.shutdown().await;
}

#[tokio::test]
async fn auto_close_resolves_alerts_that_never_resolve() {
    let clock = Arc::new(ManualClock::new());
    let options = EngineOptions {
        clock: clock.clone(),
        ..fast_options()
    };
    let h = harness_with(
        |mut c| {
            c.policy.auto_close_after = Some(Duration::from_secs(3600));
            c
        },
        options,
    )
    .await;
    let workers = h.engine.start_workers();
    let now = clock.now_rfc3339();
    let mut activity = AlertSpec::fired("act1", &now);
    activity.service = "Activity Log - Administrative";
    step(&h, &activity).await;
    let mut metric = AlertSpec::fired("met1", &now);
    metric.targets = vec![vm("vm9")];
    step(&h, &metric).await;
    assert_eq!(h.engine.auto_close_due().await.unwrap(), 0);
    clock.advance(Duration::from_secs(3601));
    assert_eq!(
        h.engine.auto_close_due().await.unwrap(),
        1,
        "only the activity-log alert"
    );
    h.drain().await;
    let t = h.mock.tickets_for(&corr_id(&activity)).remove(0);
    assert_eq!(t.state, WorkItemState::Resolved);
    assert!(t.resolution.unwrap().notes.contains("Auto-closed"));
    assert_eq!(
        h.mock.tickets_for(&corr_id(&metric))[0].state,
        WorkItemState::Open
    );
    assert_eq!(h.engine.auto_close_due().await.unwrap(), 0);
    workers.shutdown().await;
}

/// A CMDB holding vm1 and vm2.
#[derive(Debug)]
struct TwoVms;

#[async_trait]
impl CmdbLookup for TwoVms {
    async fn by_resource_id(&self, id: &str) -> Result<Vec<CiRecord>, LookupError> {
        let name = id.rsplit('/').next().unwrap_or_default();
        Ok(if name == "vm1" || name == "vm2" {
            vec![CiRecord {
                id: format!("ci-{name}"),
                name: name.to_owned(),
                class: None,
                source: CiSource::ResourceId,
            }]
        } else {
            Vec::new()
        })
    }
    async fn by_name(&self, _: &str, _: Option<&str>) -> Result<Vec<CiRecord>, LookupError> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn cmdb_binding_in_alert_mode_and_ci_fan_out() {
    let binder = Binder::builder(Arc::new(TwoVms)).build().unwrap();
    let b = binder.clone();
    let h = harness_with(
        move |mut c| {
            c.binder = Some(b);
            c
        },
        fast_options(),
    )
    .await;
    let workers = h.engine.start_workers();
    let mut spec = AlertSpec::fired("b1", "2024-05-01T10:00:00Z");
    spec.targets = vec![vm("vm1"), vm("vm7")];
    step(&h, &spec).await;
    let t = h.mock.tickets().remove(0);
    assert_eq!(
        t.item.cis.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["ci-vm1"]
    );
    assert!(
        t.item.description.contains("Not bound"),
        "{}",
        t.item.description
    );
    workers.shutdown().await;

    let h = harness_with(
        move |mut c| {
            c.binder = Some(binder);
            c.policy.correlation = CorrelationMode::Ci;
            c
        },
        fast_options(),
    )
    .await;
    let workers = h.engine.start_workers();
    let mut spec = AlertSpec::fired("b2", "2024-05-01T10:00:00Z");
    spec.targets = vec![vm("vm1"), vm("vm2")];
    step(&h, &spec).await;
    let mut cis: Vec<String> = h
        .mock
        .tickets()
        .iter()
        .map(|t| t.item.cis[0].id.clone())
        .collect();
    cis.sort();
    assert_eq!(cis, ["ci-vm1", "ci-vm2"]);
    // Another alert on vm2 only updates the vm2 item.
    let mut again = AlertSpec::fired("b3", "2024-05-01T10:05:00Z");
    again.targets = vec![vm("vm2")];
    step(&h, &again).await;
    assert_eq!(h.mock.tickets().len(), 2);
    let vm2 = h
        .mock
        .tickets()
        .into_iter()
        .find(|t| t.item.cis[0].id == "ci-vm2")
        .unwrap();
    assert_eq!(vm2.notes.len(), 1);
    step(
        &h,
        &AlertSpec {
            targets: vec![vm("vm1"), vm("vm2")],
            ..AlertSpec::resolved("b2", "2024-05-01T10:00:00Z", "2024-05-01T10:10:00Z")
        },
    )
    .await;
    assert!(
        h.mock
            .tickets()
            .iter()
            .all(|t| t.state == WorkItemState::Resolved)
    );
    workers.shutdown().await;
}

trait ClockExt {
    fn now_rfc3339(&self) -> String;
}

impl ClockExt for ManualClock {
    fn now_rfc3339(&self) -> String {
        use secure_export::engine::WallClock;
        self.now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

#[tokio::test]
async fn a_refused_resolve_of_an_item_a_person_closed_finishes_quietly() {
    let h = harness().await;
    let workers = h.engine.start_workers();
    step(&h, &AlertSpec::fired("rc", "2024-05-01T10:00:00Z")).await;
    let id = h.mock.tickets()[0].reference.id.clone();
    assert!(h.mock.close_by_person(&id));
    h.mock
        .fail_next(Some(MockOp::Resolve), engine_support::http(403, None));
    step(
        &h,
        &AlertSpec::resolved("rc", "2024-05-01T10:00:00Z", "2024-05-01T10:10:00Z"),
    )
    .await;
    assert!(h.engine.dead_letters().await.unwrap().is_empty());
    assert_eq!(h.mock.ticket(&id).unwrap().state, WorkItemState::Closed);
    // While a refused resolve of an item still open dead-letters.
    step(&h, &AlertSpec::fired("rc2", "2024-05-01T10:00:00Z")).await;
    h.mock
        .fail_next(Some(MockOp::Resolve), engine_support::http(403, None));
    h.send(&AlertSpec::resolved(
        "rc2",
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:10:00Z",
    ))
    .await;
    engine_support::wait_until("dead letter", || async {
        h.engine.dead_letters().await.unwrap().len() == 1
    })
    .await;
    workers.shutdown().await;
}

/// A CMDB that is down until `up` is set.
#[derive(Debug, Default)]
struct FlakyCmdb {
    up: std::sync::atomic::AtomicBool,
    calls: std::sync::atomic::AtomicUsize,
}

impl FlakyCmdb {
    fn answer(&self) -> Result<Vec<CiRecord>, LookupError> {
        use std::sync::atomic::Ordering;
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.up.load(Ordering::SeqCst) {
            Ok(vec![CiRecord {
                id: "ci-vm1".to_owned(),
                name: "vm1".to_owned(),
                class: None,
                source: CiSource::ResourceId,
            }])
        } else {
            Err(LookupError::Backend(secure_export_itsm::ItsmError::Http {
                backend: "cmdb",
                status: 503,
                message: "down".to_owned(),
                detail: None,
                code: None,
                retry_after: None,
            }))
        }
    }
}

#[async_trait]
impl CmdbLookup for FlakyCmdb {
    async fn by_resource_id(&self, _: &str) -> Result<Vec<CiRecord>, LookupError> {
        self.answer()
    }
    async fn by_name(&self, _: &str, _: Option<&str>) -> Result<Vec<CiRecord>, LookupError> {
        self.answer()
    }
}

async fn flaky_cmdb_harness(cmdb: Arc<FlakyCmdb>, clock: Arc<ManualClock>) -> Harness {
    let binder = Binder::builder(cmdb)
        .failure_ttl(Duration::ZERO)
        .build()
        .unwrap();
    harness_with(
        move |mut c| {
            c.binder = Some(binder);
            c
        },
        EngineOptions {
            clock,
            ..fast_options()
        },
    )
    .await
}

#[tokio::test]
async fn a_new_item_waits_for_a_cmdb_that_is_down_and_binds_when_it_is_back() {
    let cmdb = Arc::new(FlakyCmdb::default());
    let clock = Arc::new(ManualClock::new());
    let h = flaky_cmdb_harness(cmdb.clone(), clock.clone()).await;
    let workers = h.engine.start_workers();
    h.send(&AlertSpec::fired("cmdb-down", "2024-05-01T10:00:00Z"))
        .await;
    let calls = || cmdb.calls.load(std::sync::atomic::Ordering::SeqCst);
    // Two strategies (resource id, name) per attempt; each retry is due a moment later.
    engine_support::wait_until("first attempt", || async { calls() >= 2 }).await;
    clock.advance(Duration::from_secs(1));
    engine_support::wait_until("second attempt", || async { calls() >= 4 }).await;
    assert!(
        h.mock.tickets().is_empty(),
        "no item while the CMDB is down"
    );
    assert_eq!(h.mock.call_count(MockOp::Create), 0);
    cmdb.up.store(true, std::sync::atomic::Ordering::SeqCst);
    clock.advance(Duration::from_secs(1));
    h.drain().await;
    let t = h.mock.tickets().remove(0);
    assert_eq!(
        t.item.cis.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["ci-vm1"]
    );
    workers.shutdown().await;
}

#[tokio::test]
async fn a_cmdb_down_for_long_does_not_hold_the_item_back() {
    let cmdb = Arc::new(FlakyCmdb::default());
    let clock = Arc::new(ManualClock::new());
    let h = flaky_cmdb_harness(cmdb.clone(), clock.clone()).await;
    let workers = h.engine.start_workers();
    h.send(&AlertSpec::fired("cmdb-long", "2024-05-01T10:00:00Z"))
        .await;
    engine_support::wait_until("lookups retried", || async {
        cmdb.calls.load(std::sync::atomic::Ordering::SeqCst) >= 2
    })
    .await;
    // Past the CMDB wait: the item is created unbound, with the reason.
    clock.advance(Duration::from_secs(180));
    h.drain().await;
    let t = h.mock.tickets().remove(0);
    assert!(t.item.cis.is_empty());
    assert!(
        t.item.description.contains("cmdb lookup failed"),
        "{}",
        t.item.description
    );
    assert!(h.engine.dead_letters().await.unwrap().is_empty());
    workers.shutdown().await;
}
