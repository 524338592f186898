//! The secure-export receiver: verifies Azure Monitor Secure Webhook calls, records alerts
//! durably and delivers them to the configured ITSM.
//!
//! ```text
//! cargo run --example receiver                         # demo mode (no configuration)
//! cargo run --example receiver -- --demo-backend servicenow   # demo mode, ServiceNow emulator
//! cargo run --example receiver -- --config FILE        # or SECURE_EXPORT_CONFIG=FILE
//! ```
//!
//! Two listeners: the public one (`[server] listen`: alerts, `/healthz`, a bare `/readyz`) and
//! the admin one (`[server] admin_listen`, default `127.0.0.1:9090`: `/metrics`, detailed
//! readiness, the admin API). Demo mode listens on loopback only, keeps its SQLite store under `./data`, delivers to the
//! in-memory mock backend (or, with `--demo-backend servicenow`, to an in-process ServiceNow
//! emulator with a seeded CMDB, whose incidents it shows how to list) and trusts an in-process
//! demo token issuer. It writes the demo URL and
//! a token to `./data/demo.json` (refreshed every 30 minutes) and prints the command that sends a
//! sample alert. Logs go to stderr; set `RUST_LOG` (default `info`) and `LOG_FORMAT=json` for
//! JSON lines. SIGINT/SIGTERM stop accepting, then finish or release in-flight jobs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use secure_export::config::{Config, ServerConfig, config_path_from_args};
use secure_export::engine::{ConnectionRuntime, Engine, EngineOptions};
use secure_export::metrics::Metrics;
use secure_export::router::{AdminAccess, AppState, ConnectionGate, admin_router, public_router};
use secure_export::server::{ServeOptions, serve as serve_http};
use secure_export_aad::test_util::TestIssuer;
use secure_export_cmdb::{BinderBuilder, Strategy};
use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};
use secure_export_itsm::mock::MockConnector;
use secure_export_servicenow::{Auth, ServiceNowConfig, ServiceNowConnector};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Tenant of the demo issuer (a fixed GUID so demo tokens look like Entra ones).
const DEMO_TENANT: &str = "00000000-0000-4000-8000-00000000de70";
/// Audience of demo tokens (the "Application ID URI" of the demo app).
const DEMO_AUDIENCE: &str = "api://secure-export-demo";
/// Preferred demo port; a free port is used when it is taken.
const DEMO_PORT: u16 = 8080;
/// Preferred demo admin port; a free port is used when it is taken.
const DEMO_ADMIN_PORT: u16 = 9090;

async fn bind_loopback(port: u16) -> Result<TcpListener, String> {
    match TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await {
        Ok(l) => Ok(l),
        Err(_) => TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| format!("cannot bind a loopback port: {e}")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match config_path_from_args(args.clone()) {
        Some(path) => run_configured(&path).await,
        None => match demo_backend(&args) {
            Ok(backend) => run_demo(backend).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run_configured(path: &Path) -> Result<(), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let http = http_client()?;
    let runtime = config.build_runtime(&http).map_err(|e| e.to_string())?;
    for gate in &runtime.gates {
        if let Err(e) = gate.verifier().warm_up().await {
            tracing::warn!(
                event = "auth.warm_up_failed",
                connection = gate.name(),
                error = %e,
                "signing keys not loaded yet; retried on first use"
            );
        }
    }
    let store = config
        .server
        .open_store()
        .await
        .map_err(|e| e.to_string())?;
    let engine = Engine::new(
        store,
        runtime.connections,
        runtime.engine_options,
        Metrics::new(),
    )
    .await
    .map_err(|e| format!("engine: {e}"))?;
    let state = AppState::new(engine.clone(), runtime.gates)
        .with_body_limit(config.server.body_limit)
        .with_request_timeout(config.server.request_timeout)
        .with_retry_after(config.server.retry_after);
    let public = config.server.public_serve_options();
    if let Some(tls) = &public.tls {
        tls.check()
            .map_err(|e| format!("server.tls_cert/tls_key: {e}"))?;
    }
    let listener = TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| format!("server.listen: cannot bind {}: {e}", config.server.listen))?;
    let admin = match config.server.admin_listen {
        Some(addr) => Some((
            TcpListener::bind(addr)
                .await
                .map_err(|e| format!("server.admin_listen: cannot bind {addr}: {e}"))?,
            config.server.admin_serve_options(),
            config.server.admin_access(),
        )),
        None => None,
    };
    serve(
        Listeners {
            public: (listener, public),
            admin,
        },
        engine,
        state,
        None,
    )
    .await
}

/// The bound listeners and their options.
struct Listeners {
    public: (TcpListener, ServeOptions),
    admin: Option<(TcpListener, ServeOptions, AdminAccess)>,
}

/// `--demo-backend mock|servicenow` (default `mock`).
fn demo_backend(args: &[String]) -> Result<DemoBackend, String> {
    let usage = || {
        format!(
            "unexpected arguments {args:?}; \
             usage: receiver [--config FILE | --demo-backend mock|servicenow]"
        )
    };
    let value = match args {
        [] => return Ok(DemoBackend::Mock),
        [flag, value] if flag == "--demo-backend" => value.as_str(),
        [flag] => flag.strip_prefix("--demo-backend=").ok_or_else(usage)?,
        _ => return Err(usage()),
    };
    match value {
        "mock" => Ok(DemoBackend::Mock),
        "servicenow" => Ok(DemoBackend::ServiceNow),
        other => Err(format!(
            "--demo-backend: expected mock or servicenow, got {other:?}"
        )),
    }
}

#[derive(Debug, Clone, Copy)]
enum DemoBackend {
    Mock,
    ServiceNow,
}

/// The demo connection's backend; the emulator (if any) must stay alive while it is used.
async fn demo_connection(
    backend: DemoBackend,
) -> Result<(ConnectionRuntime, Option<ServiceNowEmulator>), String> {
    match backend {
        DemoBackend::Mock => Ok((
            ConnectionRuntime::new("demo", Arc::new(MockConnector::new())),
            None,
        )),
        DemoBackend::ServiceNow => {
            let sn = ServiceNowEmulator::start(ServiceNowOptions::default())
                .await
                .map_err(|e| format!("cannot start the ServiceNow emulator: {e}"))?;
            let config =
                ServiceNowConfig::new(sn.base_url(), Auth::basic(sn.username(), sn.password()));
            let connector = ServiceNowConnector::new(config, http_client()?)
                .map_err(|e| format!("ServiceNow connector: {e}"))?;
            let binder = BinderBuilder::new(Arc::new(connector.cmdb()))
                .strategies(vec![Strategy::ResourceId, Strategy::Name])
                .build()
                .map_err(|e| format!("CMDB binder: {e}"))?;
            let mut demo = ConnectionRuntime::new("demo", Arc::new(connector));
            demo.binder = Some(binder);
            Ok((demo, Some(sn)))
        }
    }
}

async fn run_demo(backend: DemoBackend) -> Result<(), String> {
    let data_dir = PathBuf::from("./data");
    let issuer = TestIssuer::start(DEMO_TENANT)
        .await
        .map_err(|e| format!("cannot start the demo token issuer: {e}"))?;
    let verifier = issuer
        .verifier_builder([DEMO_AUDIENCE])
        .build()
        .map_err(|e| format!("demo verifier: {e}"))?;
    verifier
        .warm_up()
        .await
        .map_err(|e| format!("demo verifier: {e}"))?;
    let gate = ConnectionGate::new("demo", verifier, [DEMO_TENANT]);
    let (connection, emulator) = demo_connection(backend).await?;
    let store_dir = match backend {
        DemoBackend::Mock => data_dir.clone(),
        DemoBackend::ServiceNow => {
            // The emulator keeps its incidents in memory: a store left from an earlier run would
            // point at incidents that no longer exist (and treat the samples as redeliveries).
            let dir = data_dir.join("servicenow-demo");
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| format!("cannot reset {}: {e}", dir.display()))?;
            }
            dir
        }
    };
    let engine = open_engine(&store_dir, vec![connection], EngineOptions::default()).await?;
    let state = AppState::new(engine.clone(), vec![gate]);

    let listener = bind_loopback(DEMO_PORT).await?;
    let admin_listener = bind_loopback(DEMO_ADMIN_PORT).await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let admin_addr = admin_listener.local_addr().map_err(|e| e.to_string())?;
    let url = format!("http://{addr}/api/alerts");
    let demo_file = data_dir.join("demo.json");
    write_demo_file(&demo_file, &url, &issuer)?;
    let refresher = {
        let (url, demo_file) = (url.clone(), demo_file.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30 * 60));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = write_demo_file(&demo_file, &url, &issuer) {
                    tracing::warn!(event = "demo.file_failed", error = %e);
                }
            }
        })
    };

    println!();
    println!("secure-export receiver (demo mode): {url}");
    match &emulator {
        None => println!(
            "  store: {}, backend: in-memory mock, tokens: demo issuer",
            data_dir.display()
        ),
        Some(sn) => {
            println!(
                "  store: {} (fresh each run), backend: ServiceNow emulator at {}, tokens: demo issuer",
                store_dir.display(),
                sn.base_url()
            );
            println!(
                "  list its incidents: curl -su '{}:{}' '{}/api/now/table/incident?sysparm_fields=number,state,short_description,cmdb_ci'",
                sn.username(),
                sn.password(),
                sn.base_url()
            );
        }
    }
    println!("  demo token and URL written to {}", demo_file.display());
    println!("  admin (metrics, readiness, admin API): http://{admin_addr}/metrics");
    println!();
    println!("Send a sample alert with:");
    println!("  cargo run --example send-alert -- examples/payloads/metric-fired.json");
    println!("then resolve it with:");
    println!("  cargo run --example send-alert -- examples/payloads/metric-resolved.json");
    println!("and see what happened with:");
    let data_dir_arg = match backend {
        DemoBackend::Mock => String::new(),
        DemoBackend::ServiceNow => format!("--data-dir {} ", store_dir.display()),
    };
    println!(
        "  cargo run --example admin -- {data_dir_arg}history /subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/providers/Microsoft.AlertsManagement/alerts/eeeeeeee-4444-5555-6666-ffffffffffff"
    );
    println!();

    let listeners = Listeners {
        public: (listener, ServeOptions::new("public")),
        admin: Some((
            admin_listener,
            ServeOptions::new("admin").max_connections(64),
            AdminAccess::Unauthenticated,
        )),
    };
    let result = serve(listeners, engine, state, Some(addr)).await;
    refresher.abort();
    drop(emulator);
    result
}

fn write_demo_file(path: &Path, url: &str, issuer: &TestIssuer) -> Result<(), String> {
    let body = serde_json::json!({
        "url": url,
        "token": issuer.token(DEMO_AUDIENCE),
        "authority": issuer.authority(),
        "tenant_id": issuer.tenant_id(),
        "audience": DEMO_AUDIENCE,
    });
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, format!("{body:#}\n"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn http_client() -> Result<reqwest::Client, String> {
    // No redirects: ITSM credentials must never follow one to another host.
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

async fn open_engine(
    data_dir: &Path,
    connections: Vec<ConnectionRuntime>,
    options: EngineOptions,
) -> Result<Engine, String> {
    let mut server = ServerConfig::default();
    server.data_dir = data_dir.to_path_buf();
    let store = server.open_store().await.map_err(|e| e.to_string())?;
    Engine::new(store, connections, options, Metrics::new())
        .await
        .map_err(|e| format!("engine: {e}"))
}

async fn serve(
    listeners: Listeners,
    engine: Engine,
    state: AppState,
    demo_addr: Option<SocketAddr>,
) -> Result<(), String> {
    let (listener, mut options) = listeners.public;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let workers = engine.start_workers();
    let metrics = engine.metrics().clone();
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    if demo_addr.is_none() {
        // Machine-readable lines for supervisors and tests.
        println!("listening on {scheme}://{addr}");
    }
    tracing::info!(event = "server.listening", listener = "public", %addr, %scheme);
    // One shutdown signal for both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let admin_task = match listeners.admin {
        Some((admin, mut admin_options, access)) => {
            let admin_addr = admin.local_addr().map_err(|e| e.to_string())?;
            if demo_addr.is_none() {
                println!("admin listening on http://{admin_addr}");
            }
            tracing::info!(event = "server.listening", listener = "admin", addr = %admin_addr);
            admin_options.metrics = Some(metrics.clone());
            let app = admin_router(state.clone(), access);
            Some(tokio::spawn(serve_http(
                admin,
                app,
                admin_options,
                stopped(),
            )))
        }
        None => None,
    };
    options.metrics = Some(metrics);
    let signal = async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    };
    let served = serve_http(listener, public_router(state), options, signal).await;
    tracing::info!(
        event = "server.shutting_down",
        "stopped accepting; finishing in-flight jobs"
    );
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    workers.shutdown().await;
    tracing::info!(event = "server.stopped");
    served.map_err(|e| format!("server: {e}"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
