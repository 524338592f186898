//! The embeddable axum [`Router`]: `POST /api/alerts[/{connection}]`, `/healthz`, `/readyz`,
//! `/metrics`.
//!
//! Every answer follows the HTTP contract with Azure Monitor (see `ARCHITECTURE.md`): the token
//! is verified from the `Authorization` header *before* the body is read; a body over the limit
//! gets 413; a body that is not JSON gets 400; an authenticated JSON body that is not an alert we
//! can model is quarantined and answered 202; an alert is answered 202 only after the engine has
//! committed it; a store fault or a full queue gets 503 with `Retry-After` so Azure retries. The
//! router never answers 500 for a transient fault, and every request is answered within the
//! configured request timeout.
//!
//! ```no_run
//! # async fn demo(state: secure_export::router::AppState) -> std::io::Result<()> {
//! let app = secure_export::router::router(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

mod alerts;
mod gate;
mod response;
mod state;

pub use gate::ConnectionGate;
pub use state::AppState;

use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

/// Builds the receiver's router over `state`.
///
/// Routes: `POST /api/alerts` (connection chosen by the verified tenant), `POST
/// /api/alerts/{connection}`, `GET /healthz`, `GET /readyz`, `GET /metrics`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/alerts", post(alerts::post_default))
        .route("/api/alerts/{connection}", post(alerts::post_named))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({ "status": "ok" }))).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    for (name, result) in state.engine().readiness().await {
        ready &= result.is_ok();
        checks.insert(name, check_json(result));
    }
    for gate in state.gates() {
        let result = if gate.verifier().keys_loaded() {
            Ok(())
        } else {
            Err("signing keys not loaded yet".to_owned())
        };
        ready &= result.is_ok();
        checks.insert(format!("keys:{}", gate.name()), check_json(result));
    }
    state.observe("readyz", started);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "status": if ready { "ready" } else { "not_ready" }, "checks": checks });
    (status, axum::Json(body)).into_response()
}

fn check_json(result: Result<(), String>) -> serde_json::Value {
    match result {
        Ok(()) => json!({ "ok": true }),
        Err(e) => json!({ "ok": false, "error": e }),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.engine().metrics().render();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
