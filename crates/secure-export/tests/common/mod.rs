//! Shared harness: a receiver on 127.0.0.1:0 with a test token issuer and a chosen backend.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secure_export::engine::{ConnectionRuntime, Engine, EngineOptions};
use secure_export::metrics::Metrics;
use secure_export::router::{AdminAccess, AppState, ConnectionGate, admin_router, public_router};
use secure_export::server::{ServeOptions, serve};
use secure_export::store::{SqliteStore, Store};
use secure_export_aad::test_util::TestIssuer;
use secure_export_itsm::ItsmConnector;
use serde_json::Value;

pub const TENANT: &str = "11111111-2222-4333-8444-555555555555";
pub const AUDIENCE: &str = "api://secure-export-tests";

/// Fast retries so recovery tests take milliseconds.
pub fn fast_options() -> EngineOptions {
    EngineOptions {
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(100),
        poll_interval: Duration::from_millis(20),
        health_interval: Duration::from_secs(1),
        ..EngineOptions::default()
    }
}

pub struct Receiver {
    /// The public listener.
    pub url: String,
    /// The admin listener (metrics, detailed readiness, admin API).
    pub admin_url: String,
    pub issuer: TestIssuer,
    pub engine: Engine,
    pub client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
    admin_server: tokio::task::JoinHandle<()>,
    workers: Option<secure_export::engine::Workers>,
    _dir: tempfile::TempDir,
}

pub struct Builder {
    connections: Vec<(ConnectionRuntime, Option<Vec<String>>)>,
    options: EngineOptions,
    store: Option<Arc<dyn Store>>,
    start_workers: bool,
    request_timeout: Duration,
}

impl Builder {
    pub fn new() -> Self {
        Self {
            connections: Vec::new(),
            options: fast_options(),
            store: None,
            start_workers: true,
            request_timeout: Duration::from_secs(3),
        }
    }

    pub fn connection(mut self, name: &str, connector: Arc<dyn ItsmConnector>) -> Self {
        self.connections.push((runtime(name, connector), None));
        self
    }

    pub fn runtime(mut self, rt: ConnectionRuntime) -> Self {
        self.connections.push((rt, None));
        self
    }

    /// Restricts the last connection to these subscriptions.
    pub fn allowed_subscriptions(mut self, subs: &[&str]) -> Self {
        if let Some(last) = self.connections.last_mut() {
            last.1 = Some(subs.iter().map(|s| (*s).to_owned()).collect());
        }
        self
    }

    pub fn options(mut self, options: EngineOptions) -> Self {
        self.options = options;
        self
    }

    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn without_workers(mut self) -> Self {
        self.start_workers = false;
        self
    }

    pub async fn start(self) -> Receiver {
        let issuer = TestIssuer::start(TENANT).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = match self.store {
            Some(s) => s,
            None => Arc::new(SqliteStore::open(dir.path()).await.unwrap()),
        };
        let mut gates = Vec::new();
        let mut runtimes = Vec::new();
        for (mut rt, subs) in self.connections {
            let verifier = issuer.verifier_builder([AUDIENCE]).build().unwrap();
            verifier.warm_up().await.unwrap();
            let probe = issuer
                .verifier_builder([AUDIENCE])
                .insecure_any_tenant()
                .build()
                .unwrap();
            let mut gate =
                ConnectionGate::new(&rt.name, verifier, [TENANT]).with_tenant_probe(probe);
            if let Some(subs) = subs {
                gate = gate.with_allowed_subscriptions(subs.clone());
                rt.allow_list = secure_export::admission::AllowList::any().with_subscriptions(subs);
            }
            gates.push(gate);
            runtimes.push(rt);
        }
        let engine = Engine::new(store, runtimes, self.options, Metrics::new())
            .await
            .unwrap();
        let workers = self.start_workers.then(|| engine.start_workers());
        let state = AppState::new(engine.clone(), gates).with_request_timeout(self.request_timeout);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_addr = admin_listener.local_addr().unwrap();
        let admin_app = admin_router(state.clone(), AdminAccess::Unauthenticated);
        let server = tokio::spawn(async move {
            serve(
                listener,
                public_router(state),
                ServeOptions::new("public"),
                std::future::pending(),
            )
            .await
            .unwrap();
        });
        let admin_server = tokio::spawn(async move {
            serve(
                admin_listener,
                admin_app,
                ServeOptions::new("admin"),
                std::future::pending(),
            )
            .await
            .unwrap();
        });
        Receiver {
            url: format!("http://{addr}"),
            admin_url: format!("http://{admin_addr}"),
            admin_server,
            issuer,
            engine,
            client: reqwest::Client::new(),
            server,
            workers,
            _dir: dir,
        }
    }
}

pub fn runtime(name: &str, connector: Arc<dyn ItsmConnector>) -> ConnectionRuntime {
    ConnectionRuntime::new(name, connector)
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Receiver {
    pub fn token(&self) -> String {
        self.issuer.token(AUDIENCE)
    }

    pub async fn post(
        &self,
        path: &str,
        authorization: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut req = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Posts `alert` with a valid token to `/api/alerts`.
    pub async fn send(&self, alert: &Value) -> Answer {
        let auth = format!("Bearer {}", self.token());
        self.post(
            "/api/alerts",
            Some(&auth),
            serde_json::to_vec(alert).unwrap(),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let res = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// GET on the admin listener.
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let res = self
            .client
            .get(format!("{}{path}", self.admin_url))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// POST (empty body) on the admin listener.
    pub async fn admin_post(&self, path: &str) -> (u16, String) {
        let res = self
            .client
            .post(format!("{}{path}", self.admin_url))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    pub async fn stop(mut self) {
        if let Some(w) = self.workers.take() {
            w.shutdown().await;
        }
        self.server.abort();
        self.admin_server.abort();
    }
}

/// Waits (polling every 10 ms, at most `limit`) until `check` returns `Some`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The metric-static Fired sample, with a chosen alert id suffix and fired time.
pub fn fired(id: &str, fired_at: &str) -> Value {
    let mut v: Value = serde_json::from_str(include_str!(
        "../../../../examples/payloads/metric-fired.json"
    ))
    .unwrap();
    let e = &mut v["data"]["essentials"];
    e["alertId"] = Value::String(format!(
        "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/providers/Microsoft.AlertsManagement/alerts/{id}"
    ));
    e["firedDateTime"] = Value::String(fired_at.to_owned());
    v
}

/// The matching Resolved event.
pub fn resolved(id: &str, fired_at: &str, resolved_at: &str) -> Value {
    let mut v = fired(id, fired_at);
    let e = &mut v["data"]["essentials"];
    e["monitorCondition"] = Value::String("Resolved".to_owned());
    e["resolvedDateTime"] = Value::String(resolved_at.to_owned());
    v
}

pub const SUBSCRIPTION: &str = "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e";
pub const TARGET: &str = "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-RG/providers/microsoft.storage/storageaccounts/test-storageAccount";
