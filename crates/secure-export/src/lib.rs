//! `secure-export`: receive Azure Monitor Secure Webhook alerts and turn them into ITSM work
//! items, durably and exactly once in effect.
//!
//! The pieces, in the order a request meets them:
//!
//! - [`server`]: the HTTP loop for an internet-facing listener: header-read timeout,
//!   keep-alive idle timeout, connection cap, optional native TLS with certificate reload,
//!   graceful shutdown.
//! - [`router`]: the embeddable axum routers. [`public_router`](router::public_router) serves
//!   only `POST /api/alerts[/{connection}]`, `/healthz` and a bare `/readyz`;
//!   [`admin_router`](router::admin_router) serves `/metrics`, the detailed readiness and the
//!   admin API, for a second listener on loopback (or behind a bearer token). The alert route
//!   verifies the Entra ID token from the header before reading the body, picks the
//!   connection, parses the alert, checks the connection's allow-lists ([`admission`]) and
//!   answers 202 only after the engine committed the alert. Its answers follow Azure Monitor's
//!   retry rules: 401/403/400/413 are final, transient faults are 503 + `Retry-After`, never 500.
//! - [`engine`]: durable accept (group commit into the [`store`]), per-connection fairness,
//!   background health checks, outbox workers with backoff and dead letters ([`outbox`]), the
//!   [`lifecycle`] decisions (create, update, resolve, reopen, ignore), [`mapping`] to work
//!   items, [`metrics`].
//! - [`config`]: the TOML configuration (`docs/configuration.md`), validated with errors that
//!   name the key, and [`Config::build_runtime`](config::Config::build_runtime) which builds the
//!   verifiers, connectors and binders.
//!
//! A complete receiver from a configuration file (the `receiver` example does this plus demo
//! mode, logging and signals):
//!
//! ```no_run
//! use secure_export::{config::Config, engine::Engine, metrics::Metrics, router, server};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::load("secure-export.toml".as_ref())?;
//! // No redirects: ITSM credentials must never follow one to another host.
//! let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
//! let runtime = config.build_runtime(&http)?;
//! let store = config.server.open_store().await?;
//! let engine =
//!     Engine::new(store, runtime.connections, runtime.engine_options, Metrics::new()).await?;
//! let workers = engine.start_workers();
//! let state = router::AppState::new(engine, runtime.gates)
//!     .with_body_limit(config.server.body_limit)
//!     .with_request_timeout(config.server.request_timeout);
//! if let Some(addr) = config.server.admin_listen {
//!     let admin = tokio::net::TcpListener::bind(addr).await?;
//!     let app = router::admin_router(state.clone(), config.server.admin_access());
//!     let options = config.server.admin_serve_options();
//!     tokio::spawn(server::serve(admin, app, options, std::future::pending()));
//! }
//! let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
//! let app = router::public_router(state);
//! let stop = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! server::serve(listener, app, config.server.public_serve_options(), stop).await?;
//! workers.shutdown().await;
//! # Ok(()) }
//! ```

pub mod admission;
pub mod config;
pub mod engine;
pub mod keys;
pub mod lifecycle;
pub mod mapping;
pub mod metrics;
pub mod outbox;
pub mod router;
pub mod server;
pub mod store;

mod logsafe;
