//! Turning HTTP failures into [`ItsmError`]s.

use std::time::SystemTime;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use secure_export_itsm::{ItsmError, parse_retry_after};
use serde::Deserialize;

pub(crate) const BACKEND: &str = "servicenow";

/// The ServiceNow error envelope `{"error":{"message","detail"},"status":"failure"}`; also
/// accepts the OAuth form `{"error":"invalid_grant","error_description":"..."}`.
#[derive(Deserialize)]
struct Envelope {
    error: ErrorField,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorField {
    Object {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        detail: Option<String>,
    },
    Code(String),
}

/// The message and detail of an error body, if it is one of the known shapes.
pub(crate) fn error_message(body: &[u8]) -> Option<(String, Option<String>)> {
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    match envelope.error {
        ErrorField::Object { message, detail } => Some((
            message.unwrap_or_default(),
            detail.filter(|d| !d.is_empty()),
        )),
        ErrorField::Code(code) => Some((code, envelope.error_description)),
    }
}

/// An [`ItsmError::Http`] for a non-2xx answer.
pub(crate) fn http_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> ItsmError {
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now));
    let (message, detail) = error_message(body).unwrap_or_else(|| {
        let reason = status.canonical_reason().unwrap_or("error").to_owned();
        let what = content_type(headers).map(|ct| format!("non-JSON body ({ct})"));
        (reason, what)
    });
    ItsmError::Http {
        backend: BACKEND,
        status: status.as_u16(),
        message,
        detail,
        code: None,
        retry_after,
    }
}

/// The response's content type, if any.
pub(crate) fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

/// An [`ItsmError::InvalidResponse`] for a 2xx answer whose body is not the expected JSON.
pub(crate) fn not_json(headers: &HeaderMap, what: &str) -> ItsmError {
    let ct = content_type(headers).unwrap_or("no content type");
    let hint = if ct.contains("html") {
        " (a hibernating developer instance answers with an HTML page)"
    } else {
        ""
    };
    ItsmError::InvalidResponse {
        backend: BACKEND,
        message: format!("expected a JSON {what}, got {ct}{hint}"),
    }
}

/// The error for an answer whose body is larger than `cap` bytes (and was not read).
///
/// A 2xx is a retryable [`ItsmError::InvalidResponse`], like any other 2xx body we cannot use:
/// the request may have taken effect (a create), so the caller must come back and reconcile
/// (`find_open` before a new create), and a huge page from a proxy or a waking instance is
/// usually transient; the caller's attempt limit bounds the retries. Any other status keeps its
/// own class: an [`ItsmError::Http`] with that status, its `Retry-After`, and the canonical
/// reason as the message.
pub(crate) fn too_large(
    status: StatusCode,
    headers: &HeaderMap,
    cap: usize,
    now: SystemTime,
) -> ItsmError {
    let what = format!("response body larger than {cap} bytes (max_response_bytes), not read");
    if status.is_success() {
        return ItsmError::InvalidResponse {
            backend: BACKEND,
            message: format!("HTTP {}: {what}", status.as_u16()),
        };
    }
    match http_error(status, headers, b"", now) {
        ItsmError::Http {
            backend,
            status,
            message,
            code,
            retry_after,
            ..
        } => ItsmError::Http {
            backend,
            status,
            message,
            detail: Some(what),
            code,
            retry_after,
        },
        other => other,
    }
}

/// Maps a transport failure; never includes the URL's credentials (we never put any there).
pub(crate) fn transport_error(err: &reqwest::Error) -> ItsmError {
    let message = describe(err);
    if err.is_builder() {
        ItsmError::Config {
            backend: BACKEND,
            message,
        }
    } else if err.is_connect() {
        ItsmError::Connect {
            backend: BACKEND,
            message,
        }
    } else {
        // Timeouts, connections dropped mid-request, truncated bodies: the request may or may not
        // have reached the instance, so the caller must be ready to retry.
        ItsmError::Timeout {
            backend: BACKEND,
            message,
        }
    }
}

fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else {
        err.to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::header::HeaderValue;
    use secure_export_itsm::RetryClass;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    /// Table: (status, headers, body) -> (retry class, message).
    #[test]
    fn classification_table() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let sn = |m: &str, d: &str| {
            format!(r#"{{"error":{{"message":"{m}","detail":"{d}"}},"status":"failure"}}"#)
        };
        let rate = sn(
            "Rate limit exceeded",
            "Rate limit of 100 requests per hour exceeded",
        );
        let not_found = sn("No Record found", "Record doesn't exist or ACL restricts");
        let unauth = sn(
            "User is not authenticated",
            "Required to provide Auth information",
        );
        let cases: Vec<(u16, HeaderMap, String, RetryClass, &str)> = vec![
            (
                429,
                headers(&[("retry-after", "7")]),
                rate.clone(),
                RetryClass::Throttled(Duration::from_secs(7)),
                "Rate limit exceeded",
            ),
            (
                429,
                headers(&[]),
                rate,
                RetryClass::Retryable,
                "Rate limit exceeded",
            ),
            (
                503,
                headers(&[("retry-after", "Tue, 14 Nov 2023 22:13:27 GMT")]),
                String::new(),
                RetryClass::Throttled(Duration::from_secs(7)),
                "Service Unavailable",
            ),
            (
                500,
                headers(&[]),
                sn("Internal", ""),
                RetryClass::Retryable,
                "Internal",
            ),
            (
                502,
                headers(&[("content-type", "text/html")]),
                "<html>bad gateway</html>".to_owned(),
                RetryClass::Retryable,
                "Bad Gateway",
            ),
            (
                504,
                headers(&[]),
                String::new(),
                RetryClass::Retryable,
                "Gateway Timeout",
            ),
            (
                400,
                headers(&[]),
                sn("Bad", "x"),
                RetryClass::Permanent,
                "Bad",
            ),
            (
                401,
                headers(&[]),
                unauth,
                RetryClass::Permanent,
                "User is not authenticated",
            ),
            (
                403,
                headers(&[]),
                sn("Data policy", "y"),
                RetryClass::Permanent,
                "Data policy",
            ),
            (
                404,
                headers(&[]),
                not_found,
                RetryClass::Permanent,
                "No Record found",
            ),
            (
                401,
                headers(&[]),
                r#"{"error":"invalid_grant","error_description":"expired"}"#.to_owned(),
                RetryClass::Permanent,
                "invalid_grant",
            ),
        ];
        for (status, h, body, class, message) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            let err = http_error(status, &h, body.as_bytes(), now);
            assert_eq!(err.retry_class(), class, "{status}: {err}");
            assert_eq!(err.status(), Some(status.as_u16()));
            assert!(
                err.to_string().contains(message),
                "{err} should contain {message}"
            );
        }
    }

    #[test]
    fn too_large_keeps_the_status_class() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ok = too_large(StatusCode::OK, &HeaderMap::new(), 1024, now);
        assert!(matches!(ok, ItsmError::InvalidResponse { .. }), "{ok:?}");
        assert_eq!(ok.retry_class(), RetryClass::Retryable);
        assert!(ok.to_string().contains("larger than 1024 bytes"), "{ok}");
        let throttled = too_large(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "9")]),
            1024,
            now,
        );
        assert_eq!(
            throttled.retry_class(),
            RetryClass::Throttled(Duration::from_secs(9))
        );
        let denied = too_large(StatusCode::FORBIDDEN, &HeaderMap::new(), 1024, now);
        assert_eq!(denied.retry_class(), RetryClass::Permanent);
        assert!(
            matches!(&denied, ItsmError::Http { status: 403, detail: Some(d), .. } if d.contains("1024")),
            "{denied:?}"
        );
    }

    #[test]
    fn detail_is_kept_and_html_is_explained() {
        let body = br#"{"error":{"message":"m","detail":"d"},"status":"failure"}"#;
        let err = http_error(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            body,
            SystemTime::now(),
        );
        assert!(matches!(err, ItsmError::Http { detail: Some(ref d), .. } if d == "d"));
        let err = not_json(
            &headers(&[("content-type", "text/html; charset=utf-8")]),
            "record",
        );
        assert_eq!(err.retry_class(), RetryClass::Retryable);
        assert!(err.to_string().contains("hibernating"), "{err}");
    }
}
