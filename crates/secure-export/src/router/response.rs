//! JSON answers: `{"error": code, "message": ...}` for failures, `{"status": ...}` for 202.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer with a stable `code` and a human message.
pub(super) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let message: String = message.into();
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

/// 401 with `WWW-Authenticate: Bearer error="invalid_token"`; the detail is logged, not sent.
pub(super) fn unauthorized() -> Response {
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "the bearer token is missing or invalid",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

/// 503 with `Retry-After` (whole seconds, at least 1) so Azure Monitor retries.
pub(super) fn unavailable(
    code: &str,
    message: impl Into<String>,
    retry_after: Duration,
) -> Response {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, code, message);
    let secs = retry_after.as_secs().max(1);
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// 202 with a small JSON status body.
pub(super) fn accepted(body: serde_json::Value) -> Response {
    (StatusCode::ACCEPTED, Json(body)).into_response()
}
