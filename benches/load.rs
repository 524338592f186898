//! Load and storm harness for the receiver (run by hand, not in CI):
//!
//! ```text
//! cargo bench -p secure-export --bench load                    # both runs, defaults
//! cargo bench -p secure-export --bench load -- load            # only the load run
//! cargo bench -p secure-export --bench load -- storm           # only the storm run
//! LOAD_CLIENTS=64 LOAD_SECS=5 STORM_ALERTS=10000 STORM_RATE=1000 cargo bench ... -- storm
//! LOAD_SYNC=normal cargo bench -p secure-export --bench load -- load   # SQLite synchronous=NORMAL
//! STORM_CEILING=2000 ... -- storm     # the connection's max_calls_per_second
//! ```
//!
//! **Load**: N concurrent clients post the metric sample (a fresh alert id per request, so every
//! request is a new durable delivery) with a valid token to the receiver (mock backend, SQLite in
//! a temp dir); the same server has a `/baseline` route that only answers 202, driven the same way
//! in the same run. Prints accepted alerts/s and p50/p99 latency of both, and their ratio.
//!
//! **Storm**: alerts are accepted while the ServiceNow emulator answers with 50 ms latency and a
//! rate limit; prints ITSM calls made against the minimum needed (the state changes: one create
//! per new incident), refused calls, time to drain against the rate-limit bound (minimum calls
//! / rate), and the process's peak RSS.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::post;
use secure_export::engine::{ConnectionRuntime, Engine, EngineOptions};
use secure_export::metrics::Metrics;
use secure_export::router::{AppState, ConnectionGate, public_router};
use secure_export::server::{ServeOptions, serve};
use secure_export::store::{SqliteOptions, SqliteStore, Synchronous};
use secure_export_aad::test_util::TestIssuer;
use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};
use secure_export_itsm::ItsmConnector;
use secure_export_itsm::mock::MockConnector;
use secure_export_servicenow::{Auth, ServiceNowConfig, ServiceNowConnector};
use serde_json::Value;

const TENANT: &str = "11111111-2222-4333-8444-555555555555";
const AUDIENCE: &str = "api://secure-export-bench";
const SAMPLE: &str = include_str!("../examples/payloads/metric-fired.json");

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The sample with placeholders for the alert id and rule, so a request body is built by
/// concatenation (the clients share the 2 cores with the server: keep them lean).
struct BodyTemplate {
    parts: [String; 3],
}

impl BodyTemplate {
    fn new() -> Self {
        let mut v: Value = serde_json::from_str(SAMPLE).unwrap();
        let e = &mut v["data"]["essentials"];
        e["alertId"] = Value::String("\u{1}".to_owned());
        e["alertRule"] = Value::String("\u{2}".to_owned());
        let text = serde_json::to_string(&v).unwrap();
        let (head, rest) = text.split_once("\\u0001").unwrap();
        let (mid, tail) = rest.split_once("\\u0002").unwrap();
        Self {
            parts: [head.to_owned(), mid.to_owned(), tail.to_owned()],
        }
    }

    fn body(&self, n: u64, rule: &str) -> Vec<u8> {
        let [head, mid, tail] = &self.parts;
        format!(
            "{head}/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/providers/Microsoft.AlertsManagement/alerts/bench-{n}{mid}{rule}{tail}"
        )
        .into_bytes()
    }
}

fn alert_body(n: u64, rule: &str) -> Vec<u8> {
    static TEMPLATE: std::sync::OnceLock<BodyTemplate> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(BodyTemplate::new).body(n, rule)
}

struct Server {
    url: String,
    token: String,
    engine: Engine,
    _issuer: TestIssuer,
    _dir: tempfile::TempDir,
}

async fn start_server(
    connector: Arc<dyn ItsmConnector>,
    options: EngineOptions,
    max_calls_per_second: Option<f64>,
) -> Server {
    let issuer = TestIssuer::start(TENANT).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // LOAD_SYNC=normal measures `synchronous = NORMAL` (no fsync per commit) for comparison.
    let synchronous = match std::env::var("LOAD_SYNC").as_deref() {
        Ok("normal") => Synchronous::Normal,
        _ => Synchronous::Full,
    };
    let sqlite_options = SqliteOptions {
        synchronous,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir.path(), sqlite_options)
        .await
        .unwrap();
    let verifier = issuer.verifier_builder([AUDIENCE]).build().unwrap();
    verifier.warm_up().await.unwrap();
    let gate = ConnectionGate::new("bench", verifier, [TENANT]);
    let mut connection = ConnectionRuntime::new("bench", connector);
    connection.max_calls_per_second = max_calls_per_second;
    let engine = Engine::new(Arc::new(store), vec![connection], options, Metrics::new())
        .await
        .unwrap();
    let app = public_router(AppState::new(engine.clone(), vec![gate]))
        .route("/baseline", post(|| async { StatusCode::ACCEPTED }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // The receiver's own server loop, with its default limits (header timeout, keep-alive
    // idle timeout, connection cap), as `cargo run --example receiver` serves it.
    tokio::spawn(async move {
        serve(
            listener,
            app,
            ServeOptions::new("public"),
            std::future::pending(),
        )
        .await
        .unwrap()
    });
    Server {
        url,
        token: format!("Bearer {}", issuer.token(AUDIENCE)),
        engine,
        _issuer: issuer,
        _dir: dir,
    }
}

struct RunResult {
    requests: u64,
    non_202: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl RunResult {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort_unstable();
        let i = ((l.len() as f64 - 1.0) * p).round() as usize;
        l.get(i).copied().unwrap_or_default()
    }
}

/// `clients` tasks post for `secs` seconds; returns counts and latencies.
async fn drive(
    url: &str,
    token: &str,
    clients: usize,
    secs: u64,
    counter: Arc<AtomicU64>,
) -> RunResult {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let start = Instant::now();
    let stop = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, token, counter) = (
            client.clone(),
            url.to_owned(),
            token.to_owned(),
            counter.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut non_202 = 0u64;
            while Instant::now() < stop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let body = alert_body(n, "bench-load");
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("authorization", &token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let _ = r.bytes().await;
                lat.push(t.elapsed());
                if status != 202 {
                    non_202 += 1;
                }
            }
            (lat, non_202)
        }));
    }
    let mut latencies = Vec::new();
    let mut non_202 = 0;
    for t in tasks {
        let (l, n) = t.await.unwrap();
        latencies.extend(l);
        non_202 += n;
    }
    RunResult {
        requests: latencies.len() as u64,
        non_202,
        elapsed: start.elapsed(),
        latencies,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn load_run() {
    let clients: usize = env_or("LOAD_CLIENTS", 32);
    let secs: u64 = env_or("LOAD_SECS", 5);
    let workers_n: usize = env_or("LOAD_WORKERS", EngineOptions::default().workers_per_backend);
    let options = EngineOptions {
        workers_per_backend: workers_n,
        ..EngineOptions::default()
    };
    let server = start_server(Arc::new(MockConnector::new()), options, None).await;
    let workers = server.engine.start_workers();
    let counter = Arc::new(AtomicU64::new(0));
    // Warm-up (connections, page cache), not measured.
    drive(
        &format!("{}/baseline", server.url),
        &server.token,
        clients,
        1,
        counter.clone(),
    )
    .await;
    let baseline = drive(
        &format!("{}/baseline", server.url),
        &server.token,
        clients,
        secs,
        counter.clone(),
    )
    .await;
    let alerts = drive(
        &format!("{}/api/alerts", server.url),
        &server.token,
        clients,
        secs,
        counter.clone(),
    )
    .await;
    let left = server.engine.queue_depth().await.unwrap();
    workers.shutdown().await;
    println!(
        "\n## load: {clients} clients, {secs} s per route, mock backend ({workers_n} workers), SQLite synchronous={} (tempdir)\n",
        if std::env::var("LOAD_SYNC").as_deref() == Ok("normal") {
            "NORMAL"
        } else {
            "FULL"
        }
    );
    println!("| route | requests | non-202 | req/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    for (name, r) in [
        ("/baseline (202 only)", &baseline),
        ("/api/alerts", &alerts),
    ] {
        println!(
            "| {name} | {} | {} | {:.0} | {:.2} | {:.2} |",
            r.requests,
            r.non_202,
            r.rate(),
            ms(r.pct(0.50)),
            ms(r.pct(0.99))
        );
    }
    println!(
        "\naccepted alerts/s as a share of the baseline route: {:.0}%",
        100.0 * alerts.rate() / baseline.rate()
    );
    println!(
        "jobs delivered to the mock backend during the run: {} of {} ({:.0}/s); {left} still queued",
        alerts.requests.saturating_sub(left),
        alerts.requests,
        alerts.requests.saturating_sub(left) as f64 / alerts.elapsed.as_secs_f64()
    );
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

async fn storm_run() {
    let alerts: u64 = env_or("STORM_ALERTS", 2000);
    let rate: u32 = env_or("STORM_RATE", 500);
    let latency_ms: u64 = env_or("STORM_LATENCY_MS", 50);
    let workers_n: usize = env_or("STORM_WORKERS", 64);
    let sn = ServiceNowEmulator::start(ServiceNowOptions::default().seed_cmdb(false))
        .await
        .unwrap();
    let config = ServiceNowConfig::new(sn.base_url(), Auth::basic(sn.username(), sn.password()))
        .with_timeout(Duration::from_secs(10));
    let connector = ServiceNowConnector::new(config, reqwest::Client::new()).unwrap();
    let options = EngineOptions {
        workers_per_backend: workers_n,
        poll_interval: Duration::from_millis(50),
        ..EngineOptions::default()
    };
    // STORM_CEILING: the connection's `max_calls_per_second` (none: learned from the 429s).
    let ceiling: Option<f64> = std::env::var("STORM_CEILING")
        .ok()
        .and_then(|v| v.parse().ok());
    let server = start_server(Arc::new(connector), options, ceiling).await;

    // Queue every alert first (the storm), then let the workers drain it.
    let client = reqwest::Client::new();
    let url = format!("{}/api/alerts", server.url);
    let accept_start = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for n in 0..alerts {
        let (client, url, token, gate) = (
            client.clone(),
            url.clone(),
            server.token.clone(),
            gate.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _p = gate.acquire().await.unwrap();
            let r = client
                .post(&url)
                .header("authorization", token)
                .header("content-type", "application/json")
                .body(alert_body(n, &format!("storm-{n}")))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 202);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let accept_time = accept_start.elapsed();
    let queued = server.engine.queue_depth().await.unwrap();
    let rss_queued = peak_rss_mb();
    // Printed at once, before the drain (bounded by STORM_DRAIN_SECS) starts.
    println!(
        "\nstorm: {queued} jobs queued; peak RSS so far (whole process, incl. emulator): {:.1} MB",
        rss_queued.unwrap_or(f64::NAN)
    );

    sn.faults().set_latency(Duration::from_millis(latency_ms));
    sn.faults().set_rate_limit(rate, Duration::from_secs(1));
    sn.clear_calls();
    let drain_start = Instant::now();
    let workers = server.engine.start_workers();
    let drain_limit = Duration::from_secs(env_or("STORM_DRAIN_SECS", 600));
    let left = loop {
        let left = server.engine.queue_depth().await.unwrap();
        if left == 0 || drain_start.elapsed() >= drain_limit {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let drain = drain_start.elapsed();
    if left > 0 {
        println!("storm: NOT drained within {drain_limit:?}: {left} jobs left");
    }
    workers.shutdown().await;
    let calls = sn.calls();
    let refused = calls.iter().filter(|c| c.status == 429).count();
    let made = calls.len();
    let incidents = sn.records("incident").len();
    // One state change per alert (a new incident): one create each.
    let minimum = alerts as usize;
    let bound = minimum as f64 / f64::from(rate);
    println!(
        "\n## storm: {alerts} alerts, ServiceNow emulator {latency_ms} ms latency, rate limit {rate}/s, {workers_n} workers, max_calls_per_second {}\n",
        ceiling.map_or("none".to_owned(), |c| c.to_string())
    );
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| alerts accepted (HTTP 202) | {alerts} in {:.2} s ({:.0}/s) |",
        accept_time.as_secs_f64(),
        alerts as f64 / accept_time.as_secs_f64()
    );
    println!("| jobs queued before draining | {queued} |");
    println!("| incidents created | {incidents} |");
    println!("| ITSM calls made (incl. refused) | {made} |");
    println!("| ITSM calls refused (429) | {refused} |");
    println!("| minimum calls needed (state changes: one create per incident) | {minimum} |");
    println!(
        "| calls made / minimum | {:.3} |",
        made as f64 / minimum as f64
    );
    println!(
        "| accepted calls / minimum | {:.3} |",
        (made - refused) as f64 / minimum as f64
    );
    println!("| time to drain | {:.2} s |", drain.as_secs_f64());
    println!("| rate-limit bound (minimum / rate) | {bound:.2} s |");
    println!("| drain / bound | {:.2} |", drain.as_secs_f64() / bound);
    if let Some(rss) = rss_queued {
        println!("| peak RSS with the queue full (whole process, incl. emulator) | {rss:.1} MB |");
    }
    if let Some(rss) = peak_rss_mb() {
        println!("| peak RSS at the end | {rss:.1} MB |");
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; the first other argument picks the run.
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let all = which.is_empty();
    if all || which.iter().any(|w| w == "load") {
        load_run().await;
    }
    if all || which.iter().any(|w| w == "storm") {
        storm_run().await;
    }
}
