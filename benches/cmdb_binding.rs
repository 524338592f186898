//! CMDB binding with a warm cache vs a cold cache, against the ServiceNow and BMC emulators
//! (real HTTP on loopback).
//!
//! `cold`: a fresh binder per iteration, so every bind makes its CMDB lookup(s).
//! `warm`: one binder whose cache already holds the answer.
//!
//! Run: `cargo bench -p secure-export-cmdb --bench cmdb_binding -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use secure_export_bmc::{BmcCmdb, BmcConfig};
use secure_export_cmdb::{Binder, CmdbLookup};
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
