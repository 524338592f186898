//! Every corpus alert bound through `ServiceNowCmdb` and `BmcCmdb` against the seeded
//! emulators (real HTTP on loopback), plus fault injection and cache counts measured in the
//! emulators' call logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Backend, FIXTURES, expected, load_alert, render_table, summary};
use secure_export_bmc::{BmcCmdb, BmcConfig};
use secure_export_cmdb::{Binder, BinderBuilder, CiSource, CmdbLookup, ManualClock};
use secure_export_emulator::RecordedCall;
use secure_export_emulator::bmc::{BmcEmulator, BmcOptions};
use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};
use secure_export_schema::Alert;
use secure_export_servicenow::{Auth, ServiceNowCmdb, ServiceNowConfig};

async fn servicenow() -> (ServiceNowEmulator, Arc<dyn CmdbLookup>) {
    let emu = ServiceNowEmulator::start(ServiceNowOptions::default())
        .await
        .unwrap();
    let config = ServiceNowConfig::new(emu.base_url(), Auth::basic(emu.username(), emu.password()))
        .with_timeout(Duration::from_secs(5));
    let cmdb = ServiceNowCmdb::new(&config, reqwest::Client::new()).unwrap();
    (emu, Arc::new(cmdb))
}

async fn bmc() -> (BmcEmulator, Arc<dyn CmdbLookup>) {
    let emu = BmcEmulator::start(BmcOptions::default()).await.unwrap();
    let mut config = BmcConfig::new(emu.base_url(), emu.username(), emu.password());
    config.timeout = Duration::from_secs(5);
    let cmdb = BmcCmdb::new(config, reqwest::Client::new()).unwrap();
    (emu, Arc::new(cmdb))
}

fn servicenow_cmdb_calls(calls: &[RecordedCall]) -> usize {
    calls
        .iter()
        .filter(|c| c.path.starts_with("/api/now/table/cmdb"))
        .count()
}

fn bmc_cmdb_calls(calls: &[RecordedCall]) -> usize {
    calls
        .iter()
        .filter(|c| c.path.starts_with("/api/cmdb/"))
        .count()
}

async fn bind_corpus(binder: &Binder, backend: Backend) -> String {
    let mut rows = Vec::new();
    for fixture in FIXTURES {
        let binding = binder.bind(&load_alert(fixture)).await;
        let (want_id, want_source) = expected(fixture, backend);
        let (id, source, _) = summary(&binding);
        assert_eq!(
            (id.as_str(), source),
            (want_id, want_source),
            "{backend:?} {fixture}: {binding:?}"
        );
        if binding.primary.is_none() {
            assert!(
                !binding.unmatched.is_empty(),
                "{fixture}: an unbound alert says why"
            );
        }
        rows.push((fixture.to_string(), binding));
    }
    render_table(&rows)
}

#[tokio::test]
async fn every_corpus_alert_binds_through_servicenow() {
    let (emu, lookup) = servicenow().await;
    let binder = Binder::builder(lookup).build().unwrap();
    println!(
        "ServiceNow binding table\n{}",
        bind_corpus(&binder, Backend::ServiceNow).await
    );

    // Warm: the whole corpus again makes no CMDB request.
    let cold_calls = servicenow_cmdb_calls(&emu.calls());
    let cold = binder.cache_stats();
    bind_corpus(&binder, Backend::ServiceNow).await;
    assert_eq!(servicenow_cmdb_calls(&emu.calls()), cold_calls);
    let warm = binder.cache_stats();
    assert_eq!(warm.lookups, cold.lookups);
    assert_eq!(warm.misses, cold.misses, "the warm pass misses nothing");
    assert_eq!(
        warm.hits - cold.hits,
        cold.hits + cold.misses,
        "every request is a hit"
    );
    println!("ServiceNow: cold pass {cold:?}, {cold_calls} CMDB requests; warm pass {warm:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn every_corpus_alert_binds_through_bmc() {
    let (emu, lookup) = bmc().await;
    let binder = Binder::builder(lookup).build().unwrap();
    println!(
        "BMC binding table\n{}",
        bind_corpus(&binder, Backend::Bmc).await
    );

    let cold_calls = bmc_cmdb_calls(&emu.calls());
    let cold = binder.cache_stats();
    bind_corpus(&binder, Backend::Bmc).await;
    assert_eq!(bmc_cmdb_calls(&emu.calls()), cold_calls);
    println!(
        "BMC: cold pass {cold:?}, {cold_calls} CMDB requests; warm pass {:?}",
        binder.cache_stats()
    );
    emu.shutdown().await;
}

/// A metric alert on one VM, the id cased as `cased` and the name as `VM<nn>`.
fn vm_alert(n: usize, upper: bool) -> Alert {
    let id = format!(
        "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/storm-RG/providers/Microsoft.Compute/virtualMachines/storm-vm{n:02}"
    );
    let id = if upper {
        id.to_uppercase()
    } else {
        id.to_lowercase()
    };
    Alert::from_value(serde_json::json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": format!("/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/providers/Microsoft.AlertsManagement/alerts/{n}"),
                "alertRule": "cpu", "severity": "Sev2", "signalType": "Metric",
                "monitorCondition": "Fired", "monitoringService": "Platform",
                "alertTargetIDs": [id],
                "configurationItems": [format!("STORM-VM{n:02}")],
                "firedDateTime": "2025-01-01T00:00:00Z"
            },
            "alertContext": {}
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn storm_of_1000_alerts_over_20_resources_makes_20_servicenow_lookups_per_ttl() {
    let (emu, lookup) = servicenow().await;
    for n in 0..20 {
        emu.insert(
            "cmdb_ci_vm_instance",
            serde_json::json!({
                "name": format!("storm-vm{n:02}"),
                // Stored lower-case, so one exact query answers each lookup.
                "object_id": format!("/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/storm-rg/providers/microsoft.compute/virtualmachines/storm-vm{n:02}"),
            }),
        )
        .unwrap();
    }
    let clock = Arc::new(ManualClock::new());
    let binder = Binder::builder(lookup)
        .clock(clock.clone())
        .build()
        .unwrap();
    let alerts: Vec<Alert> = (0..1000).map(|i| vm_alert(i % 20, i % 3 == 0)).collect();
    emu.clear_calls();

    let storm = || {
        futures::future::join_all(alerts.iter().map(|alert| {
            let binder = binder.clone();
            async move { binder.bind(alert).await }
        }))
    };
    let bindings = storm().await;
    for (i, binding) in bindings.iter().enumerate() {
        let primary = binding.primary.as_ref().unwrap();
        assert_eq!(primary.name, format!("storm-vm{:02}", i % 20));
        assert_eq!(primary.source, CiSource::ResourceId);
    }
    let first = servicenow_cmdb_calls(&emu.calls());
    let stats = binder.cache_stats();
    println!("storm 1 (cold, concurrent): {first} ServiceNow CMDB requests, {stats:?}");
    assert_eq!(
        first, 20,
        "one request per resource for 1,000 concurrent alerts"
    );
    assert_eq!(stats.lookups, 20);
    assert_eq!(stats.hits + stats.misses, 1000);

    clock.advance(Duration::from_secs(9 * 60));
    storm().await;
    assert_eq!(
        servicenow_cmdb_calls(&emu.calls()),
        20,
        "within the 10 min TTL: no request"
    );

    clock.advance(Duration::from_secs(2 * 60));
    storm().await;
    let third = servicenow_cmdb_calls(&emu.calls());
    println!(
        "storm 3 (after the TTL): {} more requests, {:?}",
        third - first,
        binder.cache_stats()
    );
    assert_eq!(third, 40, "one more request per resource after the TTL");
    emu.shutdown().await;
}

#[tokio::test]
async fn storm_against_bmc_costs_one_pass_over_its_distinct_resources() {
    let (emu, lookup) = bmc().await;
    let alerts: Vec<Alert> = FIXTURES.iter().map(|f| load_alert(f)).collect();

    // One pass with its own binder: the requests the distinct resources cost.
    let single = Binder::builder(Arc::clone(&lookup)).build().unwrap();
    for alert in &alerts {
        single.bind(alert).await;
    }
    let one_pass = bmc_cmdb_calls(&emu.calls());
    emu.clear_calls();

    // 1,024 concurrent alerts cycling through the same corpus with a fresh binder.
    let binder = Binder::builder(lookup).build().unwrap();
    let bindings = futures::future::join_all((0..1024).map(|i| {
        let binder = binder.clone();
        let alert = &alerts[i % alerts.len()];
        async move { (i, binder.bind(alert).await) }
    }))
    .await;
    for (i, binding) in &bindings {
        let fixture = FIXTURES[i % FIXTURES.len()];
        assert_eq!(
            summary(binding).0,
            expected(fixture, Backend::Bmc).0,
            "{fixture}"
        );
    }
    let storm = bmc_cmdb_calls(&emu.calls());
    println!(
        "BMC storm: {storm} CMDB requests for 1,024 alerts; one pass: {one_pass}; {:?}",
        binder.cache_stats()
    );
    assert_eq!(storm, one_pass);
    assert_eq!(binder.cache_stats().lookups, single.cache_stats().lookups);
    emu.shutdown().await;
}

fn quick(lookup: Arc<dyn CmdbLookup>, clock: Arc<ManualClock>) -> BinderBuilder {
    Binder::builder(lookup).clock(clock)
}

#[tokio::test]
async fn servicenow_5xx_degrades_to_unbound_then_recovers() {
    let (emu, lookup) = servicenow().await;
    let clock = Arc::new(ManualClock::new());
    let binder = quick(lookup, clock.clone()).build().unwrap();
    let alert = load_alert("test-action-metric-static-fired.json");

    emu.faults().fail_next(10, 503);
    let binding = binder.bind(&alert).await;
    assert_eq!(binding.primary, None);
    let reason = &binding.unmatched[0].reason;
    assert!(reason.contains("503"), "{reason}");
    assert!(
        reason.starts_with("resource id: cmdb lookup failed"),
        "{reason}"
    );
    emu.faults().clear();

    // Within the failure TTL the failure is served from the cache: no request.
    let before = servicenow_cmdb_calls(&emu.calls());
    assert_eq!(binder.bind(&alert).await.primary, None);
    assert_eq!(servicenow_cmdb_calls(&emu.calls()), before);

    clock.advance(Duration::from_secs(11));
    let binding = binder.bind(&alert).await;
    assert_eq!(
        binding.primary.unwrap().id,
        "a0e1f1c7000000000000000000000004"
    );
    assert!(binding.unmatched.is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn bmc_5xx_degrades_to_unbound() {
    let (emu, lookup) = bmc().await;
    let binder = Binder::builder(Arc::clone(&lookup)).build().unwrap();
    // Log in first so the fault hits the CMDB query itself.
    lookup.by_name("warm-up", None).await.unwrap();
    emu.faults().fail_next(10, 500);
    let binding = binder
        .bind(&load_alert("test-action-resource-health-fired.json"))
        .await;
    emu.faults().clear();
    assert_eq!(binding.primary, None);
    assert!(
        binding.unmatched[0].reason.contains("500"),
        "{:?}",
        binding.unmatched
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn slow_cmdb_is_cut_at_the_deadline_and_fills_the_cache_later() {
    let (emu, lookup) = servicenow().await;
    let binder = Binder::builder(lookup)
        .deadline(Duration::from_millis(50))
        .build()
        .unwrap();
    let alert = load_alert("test-action-log-alert-v2-fired.json");

    emu.faults().set_latency(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let binding = binder.bind(&alert).await;
    assert!(
        started.elapsed() < Duration::from_millis(190),
        "bind waited {:?}",
        started.elapsed()
    );
    assert_eq!(binding.primary, None);
    assert!(
        binding.unmatched[0].reason.contains("binding deadline"),
        "{:?}",
        binding.unmatched
    );

    // The lookup finishes in the background and fills the cache: a later alert binds without
    // a second lookup (binds while it is in flight join it).
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some(primary) = binder.bind(&alert).await.primary {
            assert_eq!(primary.name, "test-computer");
            assert_eq!(binder.cache_stats().lookups, 1);
            emu.shutdown().await;
            return;
        }
    }
    panic!(
        "the background lookup never filled the cache: {:?}",
        binder.cache_stats()
    );
}

#[tokio::test]
async fn requests_per_cold_bind_match_the_benchmark_notes() {
    let (sn, sn_lookup) = servicenow().await;
    let (bmc, bmc_lookup) = bmc().await;
    bmc_lookup.by_name("log-in-first", None).await.unwrap();
    for (fixture, sn_requests, bmc_requests) in [
        ("test-action-resource-health-fired.json", 2, 1),
        ("test-action-log-alert-v2-fired.json", 1, 4),
    ] {
        let alert = load_alert(fixture);
        sn.clear_calls();
        bmc.clear_calls();
        let sn_binding = Binder::builder(Arc::clone(&sn_lookup))
            .build()
            .unwrap()
            .bind(&alert)
            .await;
        let bmc_binding = Binder::builder(Arc::clone(&bmc_lookup))
            .build()
            .unwrap()
            .bind(&alert)
            .await;
        assert!(sn_binding.is_bound() && bmc_binding.is_bound(), "{fixture}");
        assert_eq!(
            servicenow_cmdb_calls(&sn.calls()),
            sn_requests,
            "{fixture} ServiceNow"
        );
        assert_eq!(bmc_cmdb_calls(&bmc.calls()), bmc_requests, "{fixture} BMC");
    }
    sn.shutdown().await;
    bmc.shutdown().await;
}
