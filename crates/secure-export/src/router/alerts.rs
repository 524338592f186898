//! `POST /api/alerts` and `POST /api/alerts/{connection}`.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use secure_export_aad::{ErrorClass, VerifyError, peek_tenant_id};
use secure_export_schema::{Alert, SchemaError};
use serde_json::json;

use super::ConnectionGate;
use super::response::{accepted, error, unauthorized, unavailable};
use super::state::AppState;
use crate::engine::{AcceptError, Accepted};

const ROUTE: &str = "/api/alerts";

/// `POST /api/alerts`: the connection is chosen by the verified token's tenant.
pub(super) async fn post_default(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(state, None, headers, body).await
}

/// `POST /api/alerts/{connection}`.
pub(super) async fn post_named(
    State(state): State<AppState>,
    Path(connection): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(state, Some(connection), headers, body).await
}

async fn answer(
    state: AppState,
    connection: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let deadline = state.request_timeout();
    let response =
        match tokio::time::timeout(deadline, handle(&state, connection, &headers, body)).await {
            Ok(response) => response,
            Err(_) => {
                tracing::warn!(
                    event = "http.timeout",
                    timeout_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
                    "request not answered within the deadline; asking the caller to retry"
                );
                unavailable(
                    "timeout",
                    "the request could not be completed in time; retry later",
                    state.retry_after(),
                )
            }
        };
    state.observe(ROUTE, started);
    state.engine().metrics().inc_counter(
        "secure_export_http_responses_total",
        &[("route", ROUTE), ("status", response.status().as_str())],
    );
    response
}

async fn handle(
    state: &AppState,
    connection: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    // 1. The token, from the header only: nothing of the body is read before this succeeds.
    let gate = match authenticate(state, connection.as_deref(), headers).await {
        Ok(gate) => gate,
        Err(response) => return response,
    };

    // 2. The body, with the size limit.
    let raw = match read_body(headers, body, state.body_limit()).await {
        Ok(raw) => raw,
        Err(response) => return response,
    };

    // 3. JSON and the alert model, in one pass: malformed JSON is refused (400); well-formed
    // JSON we cannot model is quarantined (202), so nothing authenticated is lost.
    let alert = match parse(raw.clone()).await {
        None => {
            tracing::error!(event = "http.parser_failed", connection = gate.name());
            return unavailable(
                "parser_failed",
                "the alert could not be processed now; retry later",
                state.retry_after(),
            );
        }
        Some(Ok(alert)) => alert,
        Some(Err(e)) if matches!(e, SchemaError::Syntax { .. }) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("request body is not valid JSON: {e}"),
            );
        }
        Some(Err(e)) => return quarantine(state, gate, raw, &e.to_string(), e.path()).await,
    };

    // 4. The connection's payload allow-lists.
    if let Err(reason) = gate.authorize(&alert) {
        tracing::warn!(event = "http.forbidden", connection = gate.name(), reason = %crate::logsafe::esc(&reason));
        return error(StatusCode::FORBIDDEN, "forbidden", reason);
    }

    // 5. Durable record; 202 only after the commit.
    match state.engine().accept(gate.name(), &alert, &raw).await {
        Ok(Accepted::New { delivery_id, .. }) => {
            tracing::debug!(
                event = "http.accepted",
                connection = gate.name(),
                delivery_id
            );
            accepted(json!({ "status": "accepted", "connection": gate.name() }))
        }
        Ok(Accepted::Duplicate { delivery_id }) => {
            tracing::debug!(
                event = "http.duplicate",
                connection = gate.name(),
                delivery_id
            );
            accepted(json!({ "status": "duplicate", "connection": gate.name() }))
        }
        Ok(Accepted::Quarantined { id }) => {
            tracing::warn!(
                event = "http.quarantined",
                connection = gate.name(),
                quarantine_id = id
            );
            accepted(
                json!({ "status": "quarantined", "connection": gate.name(), "quarantine_id": id }),
            )
        }
        Err(e) => accept_error(state, gate, &e),
    }
}

/// Verifies the `Authorization` header and picks the connection.
async fn authenticate<'a>(
    state: &'a AppState,
    connection: Option<&str>,
    headers: &HeaderMap,
) -> Result<&'a ConnectionGate, Response> {
    if headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(token_failure(
            state,
            &VerifyError::BadScheme("more than one Authorization header"),
            None,
        ));
    }
    let authorization = match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            return Err(token_failure(
                state,
                &VerifyError::BadScheme("header value is not visible ASCII"),
                None,
            ));
        }
    };

    let candidates: Vec<&ConnectionGate> = match connection {
        Some(name) => match state.gates().iter().find(|g| g.name() == name) {
            Some(gate) => vec![gate],
            None => {
                // Answered like a rejected token, so that connection names cannot be probed
                // without a valid token; the log says what happened.
                state.engine().metrics().inc_counter(
                    "secure_export_token_failures_total",
                    &[("code", "unknown_connection")],
                );
                tracing::warn!(
                    event = "auth.token_rejected",
                    connection = name,
                    code = "unknown_connection",
                    "no connection with this name"
                );
                return Err(unauthorized());
            }
        },
        None => {
            // The unverified tenant only narrows the candidates; each one still verifies fully.
            let hinted: Vec<&ConnectionGate> = authorization
                .and_then(peek_tenant_id)
                .map(|tid| {
                    state
                        .gates()
                        .iter()
                        .filter(|g| g.serves_tenant(&tid))
                        .collect()
                })
                .unwrap_or_default();
            if hinted.is_empty() {
                state.gates().iter().collect()
            } else {
                hinted
            }
        }
    };

    let mut worst: Option<(VerifyError, &ConnectionGate)> = None;
    for gate in candidates {
        match gate.verifier().verify_header(authorization).await {
            Ok(caller) => {
                tracing::debug!(
                    event = "auth.token_verified",
                    connection = gate.name(),
                    tenant = %crate::logsafe::esc(&caller.tenant_id),
                    app = %crate::logsafe::esc(&caller.app_id)
                );
                return Ok(gate);
            }
            Err(e) => {
                if worst
                    .as_ref()
                    .is_none_or(|(w, _)| rank(e.class()) > rank(w.class()))
                {
                    worst = Some((e, gate));
                }
            }
        }
    }
    Err(match worst {
        Some((e, gate)) if matches!(e, VerifyError::BadTenant(_)) => {
            tenant_not_allowed(state, gate, authorization, &e).await
        }
        Some((e, gate)) => token_failure(state, &e, Some(gate)),
        None => error(
            StatusCode::NOT_FOUND,
            "no_connection",
            "the receiver has no connection configured",
        ),
    })
}

/// Which failure to report when several connections rejected the token: "keys unavailable"
/// beats a genuine-but-forbidden caller, which beats "invalid token". A 503 makes Azure retry,
/// so a connection that could not check the token must not be hidden behind another's 403.
fn rank(class: ErrorClass) -> u8 {
    match class {
        ErrorClass::Unavailable => 3,
        ErrorClass::Forbidden => 2,
        ErrorClass::Unauthenticated => 1,
    }
}

/// The token names a tenant no connection serves: 403 if it is otherwise genuine (checked by the
/// gate's any-tenant probe), else the probe's own verdict (usually 401).
async fn tenant_not_allowed(
    state: &AppState,
    gate: &ConnectionGate,
    authorization: Option<&str>,
    original: &VerifyError,
) -> Response {
    let Some(probe) = gate.tenant_probe() else {
        return token_failure(state, original, Some(gate));
    };
    match probe.verify_header(authorization).await {
        Ok(caller) => {
            state.engine().metrics().inc_counter(
                "secure_export_token_failures_total",
                &[("code", "tenant_not_allowed")],
            );
            tracing::warn!(
                event = "auth.token_rejected",
                connection = gate.name(),
                code = "tenant_not_allowed",
                tenant = %crate::logsafe::esc(&caller.tenant_id),
                "genuine token from a tenant no connection serves"
            );
            error(
                StatusCode::FORBIDDEN,
                "tenant_not_allowed",
                format!("tenant {} is not allowed", caller.tenant_id),
            )
        }
        // The probe could not judge (keys of that tenant unavailable): the token stays rejected
        // for its tenant; never 503, or Azure would retry a call we will never accept.
        Err(e) if e.class() == ErrorClass::Unavailable => {
            token_failure(state, original, Some(gate))
        }
        Err(e) => token_failure(state, &e, Some(gate)),
    }
}

fn token_failure(state: &AppState, e: &VerifyError, gate: Option<&ConnectionGate>) -> Response {
    let code = e.code();
    state
        .engine()
        .metrics()
        .inc_counter("secure_export_token_failures_total", &[("code", code)]);
    let connection = gate.map_or("-", ConnectionGate::name);
    tracing::warn!(event = "auth.token_rejected", connection, code, reason = %crate::logsafe::esc(&e));
    match e.class() {
        ErrorClass::Unauthenticated => unauthorized(),
        ErrorClass::Forbidden => error(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the caller is not allowed ({code})"),
        ),
        ErrorClass::Unavailable => unavailable(
            "keys_unavailable",
            "token signing keys are unavailable; retry later",
            state.retry_after(),
        ),
    }
}

/// Reads the body, refusing more than `limit` bytes (by `Content-Length` first, then while
/// streaming, so an oversized body is never buffered).
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<bytes::Bytes, Response> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds the {limit} byte limit"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let capacity = declared.map_or(8 * 1024, |n| usize::try_from(n).unwrap_or(limit).min(limit));
    let mut raw = Vec::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "body_read_failed",
                format!("could not read the request body: {e}"),
            )
        })?;
        if raw.len() + chunk.len() > limit {
            return Err(too_large());
        }
        raw.extend_from_slice(&chunk);
    }
    Ok(raw.into())
}

/// Bodies up to this size are parsed on the async worker; larger ones (up to the body limit) on
/// the blocking pool, so that one large alert does not hold a worker other requests need.
const PARSE_INLINE_MAX: usize = 64 * 1024;

/// Runs `f` over `raw` inline when it is small, else on the blocking pool.
async fn off_worker<T: Send + 'static>(
    raw: bytes::Bytes,
    f: impl FnOnce(&[u8]) -> T + Send + 'static,
) -> Option<T> {
    if raw.len() <= PARSE_INLINE_MAX {
        Some(f(&raw))
    } else {
        tokio::task::spawn_blocking(move || f(&raw)).await.ok()
    }
}

/// `None` when the parser task itself failed (a bug, answered 503 so nothing is lost).
async fn parse(raw: bytes::Bytes) -> Option<Result<Alert, SchemaError>> {
    off_worker(raw, |raw| Alert::from_slice_with_limit(raw, raw.len())).await
}

/// Quarantines an authenticated body we could not model, after checking the connection's
/// subscription allow-list as far as the body names subscriptions. The log names only the
/// JSON path of the failure: the full reason can quote the body, which is stored, not logged.
async fn quarantine(
    state: &AppState,
    gate: &ConnectionGate,
    raw: bytes::Bytes,
    reason: &str,
    path: &str,
) -> Response {
    if gate.allow_list().restricts_subscriptions() {
        let allow = gate.allow_list().clone();
        let verdict = off_worker(raw.clone(), move |raw| {
            serde_json::from_slice::<serde_json::Value>(raw)
                .map_or(Ok(()), |value| allow.check_unmodelled(&value))
        })
        .await
        .unwrap_or(Ok(()));
        if let Err(reason) = verdict {
            tracing::warn!(
                event = "http.forbidden",
                connection = gate.name(),
                reason = %crate::logsafe::esc(&reason),
                "unmodelable body from a subscription outside the allow-list"
            );
            return error(StatusCode::FORBIDDEN, "forbidden", reason);
        }
    }
    match state.engine().quarantine(gate.name(), &raw, reason).await {
        Ok(id) => {
            tracing::warn!(
                event = "http.quarantined",
                connection = gate.name(),
                quarantine_id = id,
                path
            );
            accepted(json!({
                "status": "quarantined",
                "connection": gate.name(),
                "quarantine_id": id,
                "reason": reason,
            }))
        }
        Err(e) => accept_error(state, gate, &e),
    }
}

/// Answers an engine refusal. 503 bodies carry the code and a generic message; the details
/// (which can name internal paths or store errors) go to the log only.
fn accept_error(state: &AppState, gate: &ConnectionGate, e: &AcceptError) -> Response {
    tracing::warn!(event = "http.accept_failed", connection = gate.name(), code = e.code(), error = %crate::logsafe::esc(&e));
    match e {
        AcceptError::UnknownConnection(name) => error(
            StatusCode::NOT_FOUND,
            "unknown_connection",
            format!("connection {name:?} is not served by the engine"),
        ),
        // Everything else is transient from Azure's point of view: 503 makes it retry.
        AcceptError::Overloaded | AcceptError::ConnectionBusy { .. } => unavailable(
            e.code(),
            "the receiver is busy; retry later",
            state.retry_after(),
        ),
        AcceptError::QuarantineFull { .. } => unavailable(
            e.code(),
            "the body cannot be modelled and the quarantine is full; retry later",
            state.retry_after(),
        ),
        _ => unavailable(
            e.code(),
            "the alert could not be recorded now; retry later",
            state.retry_after(),
        ),
    }
}
