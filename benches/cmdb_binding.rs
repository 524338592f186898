//! CMDB binding with a warm cache vs a cold cache, against the ServiceNow and BMC emulators
//! (real HTTP on loopback).
//!
//! `cold`: a fresh binder per iteration, so every bind makes its CMDB lookup(s).
//! `warm`: one binder whose cache already holds the answer.
//! `fanout`: a cold bind of an alert naming 1 and 6,000 `alertTargetIDs` (with as many
//! `configurationItems`) against an in-memory CMDB that finds nothing, so the figure is the
//! binder's own work (candidate extraction, de-duplication, lookup fan-out); compare the two
//! cases of one run. `collect-only` binds with no strategy: candidate extraction alone, the
//! CPU work a bind does on the async worker before any lookup; `parse` is
//! `Alert::from_slice` of the same body, for scale.
//!
//! Run: `cargo bench -p secure-export-cmdb --bench cmdb_binding -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use secure_export_bmc::{BmcCmdb, BmcConfig};
use secure_export_cmdb::{Binder, CiRecord, CmdbLookup, LookupError};
use secure_export_emulator::bmc::{BmcEmulator, BmcOptions};
use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};
use secure_export_schema::Alert;
use secure_export_servicenow::{Auth, ServiceNowCmdb, ServiceNowConfig};

fn alert(name: &str) -> Alert {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    Alert::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A CMDB that answers at once and finds nothing.
#[derive(Debug)]
struct EmptyCmdb;

#[async_trait]
impl CmdbLookup for EmptyCmdb {
    async fn by_resource_id(&self, _: &str) -> Result<Vec<CiRecord>, LookupError> {
        Ok(Vec::new())
    }
    async fn by_name(&self, _: &str, _: Option<&str>) -> Result<Vec<CiRecord>, LookupError> {
        Ok(Vec::new())
    }
}

/// The body of a metric alert naming `n` VMs in `alertTargetIDs` and their names in
/// `configurationItems`.
fn fanout_body(n: usize) -> Vec<u8> {
    let ids: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "/subscriptions/s1/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/vm{i:05}"
            )
        })
        .collect();
    let names: Vec<String> = (0..n).map(|i| format!("VM{i:05}")).collect();
    let body = serde_json::json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "monitorCondition": "Fired",
                "monitoringService": "Platform",
                "alertTargetIDs": ids,
                "configurationItems": names,
                "firedDateTime": "2024-05-01T10:00:00Z"
            },
            "alertContext": {}
        }
    });
    serde_json::to_vec(&body).unwrap()
}

fn bench_fanout(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let mut group = c.benchmark_group("cmdb_binding/fanout");
    let lookup: Arc<dyn CmdbLookup> = Arc::new(EmptyCmdb);
    for n in [1, 6_000] {
        let body = fanout_body(n);
        let alert = Alert::from_slice(&body).unwrap();
        group.bench_function(format!("parse/{n}-targets"), |b| {
            b.iter(|| Alert::from_slice(&body).unwrap());
        });
        group.bench_function(format!("cold/{n}-targets"), |b| {
            b.to_async(rt).iter_batched(
                || Binder::builder(Arc::clone(&lookup)).build().unwrap(),
                |binder| {
                    let alert = &alert;
                    async move { binder.bind(alert).await }
                },
                BatchSize::SmallInput,
            );
        });
        let collect_only = Binder::builder(Arc::clone(&lookup))
            .strategies(Vec::new())
            .build()
            .unwrap();
        group.bench_function(format!("collect-only/{n}-targets"), |b| {
            b.to_async(rt).iter(|| collect_only.bind(&alert));
        });
    }
    group.finish();
}

fn bench_backend(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    backend: &str,
    lookup: Arc<dyn CmdbLookup>,
) {
    let mut group = c.benchmark_group(format!("cmdb_binding/{backend}"));
    // A VM by (lower-cased) resource id, and a log alert's computer by name.
    for fixture in [
        "test-action-resource-health-fired.json",
        "test-action-log-alert-v2-fired.json",
    ] {
        let alert = alert(fixture);
        let label = fixture
            .trim_start_matches("test-action-")
            .trim_end_matches("-fired.json");
        // Sanity: both bind in this setup.
        let check = rt.block_on(
            Binder::builder(Arc::clone(&lookup))
                .build()
                .unwrap()
                .bind(&alert),
        );
        assert!(check.primary.is_some(), "{backend} {fixture}: {check:?}");

        group.bench_function(format!("cold/{label}"), |b| {
            b.to_async(rt).iter_batched(
                || Binder::builder(Arc::clone(&lookup)).build().unwrap(),
                |binder| {
                    let alert = &alert;
                    async move { binder.bind(alert).await }
                },
                BatchSize::SmallInput,
            );
        });

        let warm = Binder::builder(Arc::clone(&lookup)).build().unwrap();
        rt.block_on(warm.bind(&alert));
        group.bench_function(format!("warm/{label}"), |b| {
            b.to_async(rt).iter(|| warm.bind(&alert));
        });
    }
    group.finish();
}

fn binding(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    bench_fanout(c, &rt);
    let client = reqwest::Client::new();

    let servicenow = rt
        .block_on(ServiceNowEmulator::start(ServiceNowOptions::default()))
        .unwrap();
    let config = ServiceNowConfig::new(
        servicenow.base_url(),
        Auth::basic(servicenow.username(), servicenow.password()),
    );
    let lookup: Arc<dyn CmdbLookup> =
        Arc::new(ServiceNowCmdb::new(&config, client.clone()).unwrap());
    bench_backend(c, &rt, "servicenow", lookup);

    let bmc = rt
        .block_on(BmcEmulator::start(BmcOptions::default()))
        .unwrap();
    let config = BmcConfig::new(bmc.base_url(), bmc.username(), bmc.password());
    let lookup: Arc<dyn CmdbLookup> = Arc::new(BmcCmdb::new(config, client).unwrap());
    bench_backend(c, &rt, "bmc", lookup);

    rt.block_on(async {
        servicenow.shutdown().await;
        bmc.shutdown().await;
    });
}

criterion_group!(benches, binding);
criterion_main!(benches);
