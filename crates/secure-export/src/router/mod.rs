//! The embeddable axum routers: [`public_router`] for the internet-facing listener and
//! [`admin_router`] for operators.
//!
//! **Public** (`[server] listen`): `POST /api/alerts[/{connection}]`, `GET /healthz` and a bare
//! `GET /readyz` (`{"status":"ready"}` or 503 `{"status":"not_ready"}`: no names, no errors, and
//! no outbound call; it reads state kept by background checks). Nothing else is served there.
//!
//! **Admin** (`[server] admin_listen`, loopback by default): `GET /metrics`, a detailed
//! `GET /readyz`, and the JSON admin API under `/api/admin/` (backend health, dead letters,
//! quarantine, replay, history). Protected by a bearer token when one is configured
//! ([`AdminAccess`]).
//!
//! Every answer of `POST /api/alerts` follows the HTTP contract with Azure Monitor (see
//! `ARCHITECTURE.md`): the token is verified from the `Authorization` header *before* the body
//! is read; a body over the limit gets 413; a body that is not JSON gets 400; an authenticated
//! JSON body that is not an alert we can model is quarantined and answered 202 (503 while the
//! quarantine is full); an alert is answered 202 only after the engine has committed it; a
//! store fault or a full queue gets 503 with `Retry-After` so Azure retries. The router never
//! answers 500 for a transient fault, every request is answered within the configured request
//! timeout, and 503 bodies carry a code and a generic message (details go to the log).
//!
//! ```no_run
//! # async fn demo(state: secure_export::router::AppState) -> std::io::Result<()> {
//! use secure_export::router::{AdminAccess, admin_router, public_router};
//! use secure_export::server::{ServeOptions, serve};
//! let public = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! let admin = tokio::net::TcpListener::bind("127.0.0.1:9090").await?;
//! let admin_app = admin_router(state.clone(), AdminAccess::Unauthenticated);
//! tokio::spawn(serve(admin, admin_app, ServeOptions::new("admin"), std::future::pending()));
//! serve(public, public_router(state), ServeOptions::new("public"), std::future::pending()).await
//! # }
//! ```

mod admin;
mod alerts;
mod gate;
mod response;
mod state;

pub use admin::{AdminAccess, admin_router};
pub use gate::ConnectionGate;
pub use state::AppState;

use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

/// Builds the public router over `state`: `POST /api/alerts` (connection chosen by the
/// verified tenant), `POST /api/alerts/{connection}`, `GET /healthz`, `GET /readyz`.
pub fn public_router(state: AppState) -> Router {
    Router::new()
        .route("/api/alerts", post(alerts::post_default))
        .route("/api/alerts/{connection}", post(alerts::post_named))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({ "status": "ok" }))).into_response()
}

/// Whether the receiver can accept alerts: store writable (last background check), signing
/// keys loaded for every connection, outbox below its high-water mark. No I/O.
pub(crate) fn accepting(state: &AppState) -> bool {
    state.engine().ready_to_accept().is_ok()
        && state.gates().iter().all(|g| g.verifier().keys_loaded())
}

async fn readyz(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let ready = accepting(&state);
    state.observe("/readyz", started);
    if ready {
        (StatusCode::OK, axum::Json(json!({ "status": "ready" }))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "not_ready" })),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests;
