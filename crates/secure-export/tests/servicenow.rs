//! The alert lifecycle end to end: real HTTP into the receiver, real HTTP out to the ServiceNow
//! emulator, CMDB binding from the emulator's CMDB.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Builder, Receiver, eventually, fired, resolved, runtime};
use secure_export_cmdb::{BinderBuilder, Strategy};
use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};
use secure_export_servicenow::{Auth, ServiceNowConfig, ServiceNowConnector};
use serde_json::Value;

/// sys_id of `test-storageAccount` (the metric sample's target) in the emulator's CMDB fixture.
const STORAGE_CI: &str = "a0e1f1c7000000000000000000000004";
const WAIT: Duration = Duration::from_secs(10);

async fn setup() -> (Receiver, ServiceNowEmulator) {
    let sn = ServiceNowEmulator::start(ServiceNowOptions::default())
        .await
        .unwrap();
    let config = ServiceNowConfig::new(sn.base_url(), Auth::basic(sn.username(), sn.password()))
        .with_timeout(Duration::from_secs(5));
    let connector = ServiceNowConnector::new(config, reqwest::Client::new()).unwrap();
    // A short failure TTL: the outage test's retries look the CI up again soon.
    let binder = BinderBuilder::new(Arc::new(connector.cmdb()))
        .strategies(vec![Strategy::ResourceId, Strategy::Name])
        .failure_ttl(Duration::from_millis(100))
        .build()
        .unwrap();
    let mut rt = runtime("sn", Arc::new(connector));
    rt.binder = Some(binder);
    let rx = Builder::new().runtime(rt).start().await;
    (rx, sn)
}

/// A field of a Table API record as a string (plain value or `{"value": ...}` reference).
fn field(record: &Value, name: &str) -> String {
    match &record[name] {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        other => other.to_string(),
    }
}

async fn the_incident(sn: &ServiceNowEmulator, want: impl Fn(&Value) -> bool) -> Value {
    eventually(WAIT, || async {
        let incidents = sn.records("incident");
        assert!(incidents.len() <= 1, "duplicate incidents: {incidents:#?}");
        incidents.into_iter().next().filter(|i| want(i))
    })
    .await
}

async fn drained(rx: &Receiver) {
    eventually(WAIT, || async {
        (rx.engine.queue_depth().await.unwrap() == 0).then_some(())
    })
    .await;
}

const T0: &str = "2025-04-15T18:00:00Z";
const T1: &str = "2025-04-15T18:10:00Z";
const T2: &str = "2025-04-15T18:20:00Z";
const T3: &str = "2025-04-15T18:30:00Z";

#[tokio::test]
async fn fired_creates_an_incident_with_the_ci_bound() {
    let (rx, sn) = setup().await;
    assert_eq!(rx.send(&fired("a1", T0)).await.status, 202);
    let inc = the_incident(&sn, |_| true).await;
    assert_eq!(field(&inc, "cmdb_ci"), STORAGE_CI, "{inc:#}");
    assert!(
        field(&inc, "correlation_id").contains("a1") || !field(&inc, "correlation_id").is_empty()
    );
    assert!(
        field(&inc, "short_description").contains("test-metricAlertRule"),
        "{inc:#}"
    );
}

#[tokio::test]
async fn fired_again_adds_a_work_note_and_no_new_incident() {
    let (rx, sn) = setup().await;
    assert_eq!(rx.send(&fired("a2", T0)).await.status, 202);
    let inc = the_incident(&sn, |_| true).await;
    let sys_id = field(&inc, "sys_id");
    let notes_before = sn.journal(&sys_id).len();
    assert_eq!(rx.send(&fired("a2", T1)).await.status, 202);
    eventually(WAIT, || async {
        (sn.journal(&sys_id).len() > notes_before).then_some(())
    })
    .await;
    drained(&rx).await;
    assert_eq!(sn.records("incident").len(), 1);
}

#[tokio::test]
async fn resolved_resolves_with_a_close_code() {
    let (rx, sn) = setup().await;
    assert_eq!(rx.send(&fired("a3", T0)).await.status, 202);
    the_incident(&sn, |_| true).await;
    assert_eq!(rx.send(&resolved("a3", T0, T1)).await.status, 202);
    let inc = the_incident(&sn, |i| field(i, "state") == "6").await;
    assert!(!field(&inc, "close_code").is_empty(), "{inc:#}");
    assert!(!field(&inc, "close_notes").is_empty(), "{inc:#}");
}

#[tokio::test]
async fn fired_within_the_reopen_window_reopens() {
    let (rx, sn) = setup().await;
    assert_eq!(rx.send(&fired("a4", T0)).await.status, 202);
    assert_eq!(rx.send(&resolved("a4", T0, T1)).await.status, 202);
    the_incident(&sn, |i| field(i, "state") == "6").await;
    assert_eq!(rx.send(&fired("a4", T2)).await.status, 202);
    the_incident(&sn, |i| field(i, "state") == "2").await;
    drained(&rx).await;
    assert_eq!(sn.records("incident").len(), 1);
}

#[tokio::test]
async fn stale_fired_is_ignored() {
    let (rx, sn) = setup().await;
    assert_eq!(rx.send(&fired("a5", T0)).await.status, 202);
    assert_eq!(rx.send(&resolved("a5", T0, T2)).await.status, 202);
    the_incident(&sn, |i| field(i, "state") == "6").await;
    let calls_before = sn.calls().len();
    // Fired at T1 arrives after the Resolved at T2: older than the last Resolved.
    assert_eq!(rx.send(&fired("a5", T1)).await.status, 202);
    drained(&rx).await;
    let inc = the_incident(&sn, |_| true).await;
    assert_eq!(field(&inc, "state"), "6");
    let writes = sn.calls()[calls_before..]
        .iter()
        .filter(|c| c.method != "GET")
        .count();
    assert_eq!(writes, 0, "a stale event must not write to the ITSM");
    // A genuinely new Fired after the Resolved still reopens.
    assert_eq!(rx.send(&fired("a5", T3)).await.status, 202);
    the_incident(&sn, |i| field(i, "state") == "2").await;
}

#[tokio::test]
async fn backend_down_for_a_while_is_retried_and_delivered() {
    let (rx, sn) = setup().await;
    sn.faults().drop_next(2);
    sn.faults().fail_next(3, 503);
    assert_eq!(rx.send(&fired("a6", T0)).await.status, 202);
    let inc = the_incident(&sn, |_| true).await;
    assert_eq!(field(&inc, "cmdb_ci"), STORAGE_CI);
    assert!(rx.engine.dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn rate_limit_storm_is_honoured() {
    let (rx, sn) = setup().await;
    sn.faults().set_rate_limit(8, Duration::from_secs(1));
    let n = 6;
    for i in 0..n {
        assert_eq!(rx.send(&fired(&format!("storm-{i}"), T0)).await.status, 202);
    }
    eventually(Duration::from_secs(15), || async {
        (sn.records("incident").len() == n).then_some(())
    })
    .await;
    drained(&rx).await;
    let refused = sn.calls().iter().filter(|c| c.status == 429).count();
    let total = sn.calls().len();
    // Waiting out Retry-After keeps refusals to about one per worker per window; a client that
    // ignored it would retry every few milliseconds and collect hundreds.
    assert!(refused <= 3 * n, "{refused} refused of {total} calls");
    assert!(rx.engine.dead_letters().await.unwrap().is_empty());
}
