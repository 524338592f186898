//! Group commit vs one transaction per accept: durable accepts/s of the engine on an on-disk
//! SQLite store (WAL, `synchronous = FULL`), 500 concurrent accepts per iteration.
//!
//! `cargo bench -p secure-export --bench engine_accept -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secure_export::engine::{ConnectionRuntime, Engine, EngineOptions};
use secure_export::metrics::Metrics;
use secure_export::store::{SqliteOptions, SqliteStore, Store};
use secure_export_itsm::mock::MockConnector;
use secure_export_schema::Alert;

const CONCURRENT: u64 = 500;

fn alert(n: u64) -> (Alert, Vec<u8>) {
    let body = format!(
        r#"{{"schemaId":"azureMonitorCommonAlertSchema","data":{{"essentials":{{
        "alertId":"/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/{n}","alertRule":"cpu",
        "severity":"Sev2","signalType":"Metric","monitorCondition":"Fired","monitoringService":"Platform",
        "alertTargetIDs":["/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm{n}"],
        "firedDateTime":"2024-05-01T10:00:00Z"}},"alertContext":{{}}}}}}"#
    )
    .into_bytes();
    (Alert::from_slice(&body).unwrap(), body)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("engine_accept");
    group.throughput(Throughput::Elements(CONCURRENT));
    group.sample_size(10);
    let counter = Arc::new(AtomicU64::new(0));
    for (name, max_write_batch) in [("one_tx_per_accept", 1), ("group_commit", 4096)] {
        let dir = tempfile::tempdir().unwrap();
        let engine = rt.block_on(async {
            let sqlite = SqliteOptions {
                max_write_batch,
                ..SqliteOptions::default()
            };
            let store = Arc::new(SqliteStore::open_with(dir.path(), sqlite).await.unwrap());
            let conn = ConnectionRuntime::new("default", Arc::new(MockConnector::new()));
            let options = EngineOptions {
                high_water_mark: u64::MAX,
                ..EngineOptions::default()
            };
            Engine::new(store as Arc<dyn Store>, vec![conn], options, Metrics::new())
                .await
                .unwrap()
        });
        let counter = counter.clone();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let alerts: Vec<_> = (0..CONCURRENT)
                        .map(|_| alert(counter.fetch_add(1, Ordering::Relaxed)))
                        .collect();
                    let engine = engine.clone();
                    total += rt.block_on(async move {
                        let started = Instant::now();
                        let tasks: Vec<_> = alerts
                            .into_iter()
                            .map(|(a, body)| {
                                let e = engine.clone();
                                tokio::spawn(async move {
                                    e.accept("default", &a, &body).await.unwrap()
                                })
                            })
                            .collect();
                        for t in tasks {
                            t.await.unwrap();
                        }
                        started.elapsed()
                    });
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
