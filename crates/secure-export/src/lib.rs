//! `secure-export`: receive Azure Monitor Secure Webhook alerts and turn them into ITSM work
//! items, durably and exactly once in effect.
//!
//! The pieces, in the order a request meets them:
//!
//! - [`router`]: the embeddable axum [`Router`](axum::Router) (`POST /api/alerts[/{connection}]`,
//!   `/healthz`, `/readyz`, `/metrics`). It verifies the Entra ID token from the header before
//!   reading the body, picks the connection, parses the alert, checks the connection's
//!   subscription/rule allow-lists and answers 202 only after the engine committed the alert.
//!   Its answers follow Azure Monitor's retry rules: 401/403/400/413 are final, transient faults
//!   are 503 + `Retry-After`, never 500.
//! - [`engine`]: durable accept (group commit into the [`store`]), outbox workers with backoff
//!   and dead letters ([`outbox`]), the [`lifecycle`] decisions (create, update, resolve, reopen,
//!   ignore), [`mapping`] to work items, [`metrics`].
//! - [`config`]: the TOML configuration (`docs/configuration.md`), validated with errors that
//!   name the key, and [`Config::build_runtime`](config::Config::build_runtime) which builds the
//!   verifiers, connectors and binders.
//!
//! A complete receiver from a configuration file (the `receiver` example does this plus demo
//! mode, logging and signals):
//!
//! ```no_run
//! use std::sync::Arc;
//! use secure_export::{config::Config, engine::Engine, metrics::Metrics, router, store::SqliteStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::load("secure-export.toml".as_ref())?;
//! // No redirects: ITSM credentials must never follow one to another host.
//! let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
//! let runtime = config.build_runtime(&http)?;
//! let store = SqliteStore::open(&config.server.data_dir).await?;
//! let engine =
//!     Engine::new(Arc::new(store), runtime.connections, runtime.engine_options, Metrics::new())
//!         .await?;
//! let workers = engine.start_workers();
//! let state = router::AppState::new(engine, runtime.gates)
//!     .with_body_limit(config.server.body_limit)
//!     .with_request_timeout(config.server.request_timeout);
//! let listener = tokio::net::TcpListener::bind(config.server.listen).await?;
//! axum::serve(listener, router::router(state)).await?;
//! workers.shutdown().await;
//! # Ok(()) }
//! ```

pub mod config;
pub mod engine;
pub mod keys;
pub mod lifecycle;
pub mod mapping;
pub mod metrics;
pub mod outbox;
pub mod router;
pub mod store;
