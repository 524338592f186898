//! Create + resolve through `ServiceNowConnector` against the emulator, versus the same two
//! requests sent with raw `reqwest`, in the same run. Target: connector / raw <= 1.1.
//!
//! Two measurements: criterion, one variant after the other (each on a fresh emulator), and an
//! interleaved run (raw and connector round trips alternate on one emulator, so load from other
//! processes and the emulator's growing tables hit both equally) that prints the ratio.
//!
//! Run: `cargo bench -p secure-export-servicenow --bench servicenow_roundtrip -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use criterion::Criterion;
use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};
use secure_export_itsm::{ItsmConnector, NewWorkItem, Resolution, Severity};
use secure_export_servicenow::{Auth, ServiceNowConfig, ServiceNowConnector};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

const TITLE: &str = "[Sev2] Percentage CPU > 80 - test-VM";

/// The two requests the connector sends, written by hand with reqwest.
struct Raw {
    client: reqwest::Client,
    base: String,
    user: String,
    password: String,
    create_body: Value,
    resolve_body: Value,
}

impl Raw {
    fn new(emu: &ServiceNowEmulator) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: emu.base_url(),
            user: emu.username().to_owned(),
            password: emu.password().to_owned(),
            create_body: json!({
                "short_description": TITLE,
                "description": "Azure Monitor alert fired",
                "impact": "2",
                "urgency": "2",
                "correlation_id": "bench-alert",
                "correlation_display": "Azure Monitor",
            }),
            resolve_body: json!({"state": "6", "close_code": "Solution provided", "close_notes": "resolved"}),
        }
    }

    async fn roundtrip(&self) {
        let created: Value = self
            .client
            .post(format!("{}/api/now/table/incident", self.base))
            .query(&[
                ("sysparm_exclude_reference_link", "true"),
                ("sysparm_fields", "sys_id,number"),
            ])
            .basic_auth(&self.user, Some(&self.password))
            .header("accept", "application/json")
            .json(&self.create_body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["result"]["sys_id"].as_str().unwrap();
        let resolved = self
            .client
            .patch(format!("{}/api/now/table/incident/{id}", self.base))
            .query(&[("sysparm_fields", "sys_id")])
            .basic_auth(&self.user, Some(&self.password))
            .header("accept", "application/json")
            .json(&self.resolve_body)
            .send()
            .await
            .unwrap();
        assert!(resolved.status().is_success());
        resolved.bytes().await.unwrap();
    }
}

struct Connector {
    sn: ServiceNowConnector,
    item: NewWorkItem,
    resolution: Resolution,
}

impl Connector {
    fn new(emu: &ServiceNowEmulator) -> Self {
        let config =
            ServiceNowConfig::new(emu.base_url(), Auth::basic(emu.username(), emu.password()));
        Self {
            sn: ServiceNowConnector::new(config, reqwest::Client::new()).unwrap(),
            item: NewWorkItem::new("bench-alert", TITLE, Severity::Sev2)
                .with_description("Azure Monitor alert fired"),
            resolution: Resolution::new("resolved"),
        }
    }

    async fn roundtrip(&self) {
        let created = self.sn.create(&self.item).await.unwrap();
        self.sn.resolve(&created, &self.resolution).await.unwrap();
    }
}

fn start(rt: &Runtime) -> ServiceNowEmulator {
    rt.block_on(ServiceNowEmulator::start(ServiceNowOptions::default()))
        .unwrap()
}

fn criterion_runs(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("servicenow_create_resolve");
    let emu = start(rt);
    let raw = Raw::new(&emu);
    group.bench_function("raw_reqwest", |b| b.to_async(rt).iter(|| raw.roundtrip()));
    rt.block_on(emu.shutdown());

    let emu = start(rt);
    let connector = Connector::new(&emu);
    group.bench_function("connector", |b| {
        b.to_async(rt).iter(|| connector.roundtrip())
    });
    rt.block_on(emu.shutdown());
    group.finish();
}

fn interleaved(rt: &Runtime, pairs: u32) {
    let emu = start(rt);
    let (raw, connector) = (Raw::new(&emu), Connector::new(&emu));
    let (mut raw_total, mut connector_total) = (Duration::ZERO, Duration::ZERO);
    rt.block_on(async {
        for _ in 0..50 {
            raw.roundtrip().await;
            connector.roundtrip().await;
        }
        for i in 0..pairs {
            // Alternate which goes first so neither always runs on a warmer emulator.
            for raw_turn in [i % 2 == 0, i % 2 != 0] {
                let start = Instant::now();
                if raw_turn {
                    raw.roundtrip().await;
                    raw_total += start.elapsed();
                } else {
                    connector.roundtrip().await;
                    connector_total += start.elapsed();
                }
            }
        }
    });
    rt.block_on(emu.shutdown());
    let (raw_mean, connector_mean) = (raw_total / pairs, connector_total / pairs);
    println!(
        "interleaved {pairs} pairs: raw_reqwest mean {raw_mean:?}, connector mean {connector_mean:?}, ratio connector/raw {:.3}",
        connector_total.as_secs_f64() / raw_total.as_secs_f64()
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default().configure_from_args();
    criterion_runs(&mut c, &rt);
    c.final_summary();
    interleaved(&rt, 1000);
}
