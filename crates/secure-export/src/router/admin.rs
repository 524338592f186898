//! The admin router: `/metrics`, the detailed `/readyz` and the JSON admin API (the same
//! operations as the `admin` example).
//!
//! | route | what |
//! |---|---|
//! | `GET /metrics` | Prometheus text |
//! | `GET /readyz` | readiness with every check and why it failed; backend health beside it |
//! | `GET /api/admin/health` | store and backend checks, queued jobs per connection |
//! | `GET /api/admin/dead-letters` | dead letters not replayed yet |
//! | `POST /api/admin/dead-letters/{id}/replay` | queue one again |
//! | `POST /api/admin/dead-letters/replay-all` | queue all again |
//! | `GET /api/admin/quarantine` | quarantined bodies not replayed yet |
//! | `POST /api/admin/quarantine/{id}/replay` | re-parse one, re-check the allow-lists, accept it |
//! | `GET /api/admin/history?alert_id=...` | the audit trail of one alert id |

use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use secure_export_itsm::Secret;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::response::error;
use super::state::AppState;
use crate::engine::{Check, EngineError};

/// Who may use the admin router.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AdminAccess {
    /// Requests must carry `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// No authentication: only for a listener that nothing but the host can reach (loopback).
    Unauthenticated,
}

/// Builds the admin router over `state` (see the [module docs](self) for its routes).
pub fn admin_router(state: AppState, access: AdminAccess) -> Router {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .route("/api/admin/health", get(health))
        .route("/api/admin/dead-letters", get(dead_letters))
        .route(
            "/api/admin/dead-letters/replay-all",
            post(replay_all_dead_letters),
        )
        .route(
            "/api/admin/dead-letters/{id}/replay",
            post(replay_dead_letter),
        )
        .route("/api/admin/quarantine", get(quarantine))
        .route(
            "/api/admin/quarantine/{id}/replay",
            post(replay_quarantined),
        )
        .route("/api/admin/history", get(history))
        .with_state(state);
    match access {
        AdminAccess::Unauthenticated => router,
        AdminAccess::Bearer(token) => {
            let expected = digest(token.expose_secret());
            router.layer(middleware::from_fn(move |request: Request, next: Next| {
                let ok = bearer(&request).is_some_and(|t| same(&digest(t), &expected));
                async move {
                    if ok {
                        next.run(request).await
                    } else {
                        let mut response = error(
                            StatusCode::UNAUTHORIZED,
                            "unauthorized",
                            "the admin API needs the admin bearer token",
                        );
                        response
                            .headers_mut()
                            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                        response
                    }
                }
            }))
        }
    }
}

fn bearer(request: &Request) -> Option<&str> {
    let mut values = request.headers().get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Compares two digests in constant time.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.engine().metrics().render();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

fn check_json(check: &Check) -> Value {
    json!({
        "ok": check.ok(),
        "error": check.error,
        "checked_at": check.checked_at.map(|t| t.to_rfc3339()),
    })
}

async fn readyz(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let engine = state.engine();
    let report = engine.health();
    let mut checks = serde_json::Map::new();
    checks.insert("store".to_owned(), check_json(&report.store));
    let queue = match engine.ready_to_accept() {
        Err(crate::engine::NotReady::QueueFull { depth, mark }) => {
            json!({ "ok": false, "depth": depth, "high_water_mark": mark })
        }
        _ => json!({ "ok": true, "high_water_mark": engine.options().high_water_mark }),
    };
    checks.insert("queue".to_owned(), queue);
    for gate in state.gates() {
        let loaded = gate.verifier().keys_loaded();
        checks.insert(
            format!("keys:{}", gate.name()),
            json!({ "ok": loaded, "error": (!loaded).then_some("signing keys not loaded yet") }),
        );
    }
    let ready = super::accepting(&state);
    let backends: serde_json::Map<String, Value> = report
        .backends
        .iter()
        .map(|(name, check)| (name.clone(), check_json(check)))
        .collect();
    state.observe("/admin/readyz", started);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": checks,
        "backends": backends,
    });
    (status, Json(body)).into_response()
}

async fn health(State(state): State<AppState>) -> Response {
    let engine = state.engine();
    let report = engine.health();
    let queued = engine.queued_by_connection();
    let connections: serde_json::Map<String, Value> = report
        .backends
        .iter()
        .map(|(name, check)| {
            (
                name.clone(),
                json!({
                    "backend": check_json(check),
                    "queued": queued.get(name).copied().unwrap_or(0),
                }),
            )
        })
        .collect();
    Json(json!({
        "store": check_json(&report.store),
        "connections": connections,
    }))
    .into_response()
}

fn engine_error(e: &EngineError) -> Response {
    match e {
        EngineError::NotFound(what) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        ),
        EngineError::StillUnparseable { .. } => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "still_unparseable",
            e.to_string(),
        ),
        EngineError::Forbidden { .. } => error(StatusCode::FORBIDDEN, "forbidden", e.to_string()),
        _ => {
            tracing::warn!(event = "admin.failed", error = %crate::logsafe::esc(&e));
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the operation failed; see the receiver's log",
            )
        }
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

/// A body for people: text when it is UTF-8, cut to 64 KiB.
fn body_text(raw: &[u8]) -> String {
    const SHOWN: usize = 64 * 1024;
    let cut = &raw[..raw.len().min(SHOWN)];
    String::from_utf8_lossy(cut).into_owned()
}

async fn dead_letters(State(state): State<AppState>) -> Response {
    match state.engine().dead_letters().await {
        Ok(list) => Json(json!({
            "dead_letters": list.iter().map(|d| json!({
                "id": d.id,
                "connection": d.connection,
                "kind": d.kind.as_str(),
                "alert_id": d.alert_id,
                "order_key": d.order_key,
                "reason": d.reason,
                "attempts": d.attempts,
                "body_bytes": d.raw_body.as_ref().map(Vec::len),
                "created_at": time(d.created_at),
                "dead_at": time(d.dead_at),
            })).collect::<Vec<_>>()
        }))
        .into_response(),
        Err(e) => engine_error(&e),
    }
}

async fn replay_dead_letter(State(state): State<AppState>, Path(id): Path<i64>) -> Response {
    match state.engine().replay_dead_letter(id).await {
        Ok(()) => {
            tracing::info!(event = "admin.replayed_dead_letter", id);
            Json(json!({ "replayed": [id] })).into_response()
        }
        Err(e) => engine_error(&e),
    }
}

async fn replay_all_dead_letters(State(state): State<AppState>) -> Response {
    match state.engine().replay_all_dead_letters().await {
        Ok(n) => {
            tracing::info!(event = "admin.replayed_dead_letters", count = n);
            Json(json!({ "replayed_count": n })).into_response()
        }
        Err(e) => engine_error(&e),
    }
}

async fn quarantine(State(state): State<AppState>) -> Response {
    match state.engine().quarantined().await {
        Ok(list) => Json(json!({
            "quarantine": list.iter().map(|q| json!({
                "id": q.id,
                "connection": q.connection,
                "reason": q.reason,
                "received_at": time(q.received_at),
                "body_bytes": q.raw_body.len(),
                "body": body_text(&q.raw_body),
            })).collect::<Vec<_>>()
        }))
        .into_response(),
        Err(e) => engine_error(&e),
    }
}

async fn replay_quarantined(State(state): State<AppState>, Path(id): Path<i64>) -> Response {
    match state.engine().replay_quarantined(id).await {
        Ok(()) => {
            tracing::info!(event = "admin.replayed_quarantined", id);
            Json(json!({ "replayed": [id] })).into_response()
        }
        Err(e) => engine_error(&e),
    }
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    alert_id: String,
}

async fn history(State(state): State<AppState>, Query(q): Query<HistoryQuery>) -> Response {
    match state.engine().history(&q.alert_id).await {
        Ok(entries) => Json(json!({
            "alert_id": q.alert_id,
            "entries": entries.iter().map(|a| json!({
                "id": a.id,
                "at": time(a.entry.at),
                "connection": a.entry.connection,
                "correlation_key": a.entry.correlation_key,
                "action": a.entry.action,
                "work_item": a.entry.work_item,
                "detail": a.entry.detail,
            })).collect::<Vec<_>>()
        }))
        .into_response(),
        Err(e) => engine_error(&e),
    }
}
