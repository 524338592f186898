//! [`ItsmError`].

use std::time::Duration;

use crate::RetryClass;

/// An ITSM call that failed.
///
/// Display is short; [`retry_class`](Self::retry_class) tells the outbox what to do. No variant
/// ever carries a credential.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ItsmError {
    /// The backend answered with an error status.
    #[error("{backend} answered HTTP {status}: {message}")]
    Http {
        /// Backend name (`servicenow`, `bmc`, `mock`).
        backend: &'static str,
        /// HTTP status code.
        status: u16,
        /// The backend's error message (ServiceNow `error.message`, BMC `messageText`).
        message: String,
        /// Further detail (ServiceNow `error.detail`, BMC `messageAppendedText`).
        detail: Option<String>,
        /// The backend's own error number, when it has one (BMC `messageNumber`).
        code: Option<String>,
        /// The parsed `Retry-After` header, when present.
        retry_after: Option<Duration>,
    },
    /// The connection could not be made (DNS, refused, TLS).
    #[error("could not connect to {backend}: {message}")]
    Connect {
        /// Backend name.
        backend: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The request or response did not complete in time, or the connection dropped mid-way.
    #[error("{backend} request timed out or was interrupted: {message}")]
    Timeout {
        /// Backend name.
        backend: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The backend answered 2xx with a body we cannot use (for example the HTML page of a
    /// hibernating ServiceNow developer instance).
    #[error("{backend} answered with an unexpected body: {message}")]
    InvalidResponse {
        /// Backend name.
        backend: &'static str,
        /// What was wrong with the body.
        message: String,
    },
    /// Logging in or obtaining a token failed.
    #[error("{backend} authentication failed: {message}")]
    Auth {
        /// Backend name.
        backend: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The work item does not exist (any more).
    #[error("{backend} work item {id} not found")]
    NotFound {
        /// Backend name.
        backend: &'static str,
        /// The id that was not found.
        id: String,
    },
    /// The connector is configured wrongly (bad URL, missing field); retrying will not help.
    #[error("{backend} connector misconfigured: {message}")]
    Config {
        /// Backend name.
        backend: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl ItsmError {
    /// What the caller should do about this error.
    ///
    /// 429 and 503 are [`RetryClass::Throttled`] when they carry `Retry-After` (else
    /// retryable); 500, 502, 504 and 408, connection failures, timeouts and unusable bodies are
    /// [`RetryClass::Retryable`]; other 4xx, authentication failures, missing items and
    /// configuration errors are [`RetryClass::Permanent`]. Why plain 500 is retried is recorded in
    /// `docs/adr/0002-retry-http-500.md`.
    #[must_use]
    pub fn retry_class(&self) -> RetryClass {
        match self {
            Self::Http {
                status,
                retry_after,
                ..
            } => match (*status, retry_after) {
                (429 | 503, Some(wait)) => RetryClass::Throttled(*wait),
                (408 | 429 | 500 | 502 | 503 | 504, _) => RetryClass::Retryable,
                _ => RetryClass::Permanent,
            },
            Self::Connect { .. } | Self::Timeout { .. } | Self::InvalidResponse { .. } => {
                RetryClass::Retryable
            }
            Self::Auth { .. } | Self::NotFound { .. } | Self::Config { .. } => {
                RetryClass::Permanent
            }
        }
    }

    /// The HTTP status, for `Http` errors.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A short stable label for metrics (`http_429`, `connect`, `timeout`, ...).
    #[must_use]
    pub fn metric_label(&self) -> String {
        match self {
            Self::Http { status, .. } => format!("http_{status}"),
            Self::Connect { .. } => "connect".to_owned(),
            Self::Timeout { .. } => "timeout".to_owned(),
            Self::InvalidResponse { .. } => "invalid_response".to_owned(),
            Self::Auth { .. } => "auth".to_owned(),
            Self::NotFound { .. } => "not_found".to_owned(),
            Self::Config { .. } => "config".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, retry_after: Option<u64>) -> ItsmError {
        ItsmError::Http {
            backend: "test",
            status,
            message: "m".to_owned(),
            detail: None,
            code: None,
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn classification_table() {
        let five = Duration::from_secs(5);
        let cases: &[(ItsmError, RetryClass)] = &[
            (http(429, Some(5)), RetryClass::Throttled(five)),
            (http(503, Some(5)), RetryClass::Throttled(five)),
            (http(429, None), RetryClass::Retryable),
            (http(503, None), RetryClass::Retryable),
            (http(500, None), RetryClass::Retryable),
            (http(502, None), RetryClass::Retryable),
            (http(504, None), RetryClass::Retryable),
            (http(408, None), RetryClass::Retryable),
            (http(400, None), RetryClass::Permanent),
            (http(401, None), RetryClass::Permanent),
            (http(403, None), RetryClass::Permanent),
            (http(404, None), RetryClass::Permanent),
            (http(422, Some(5)), RetryClass::Permanent),
            (http(501, None), RetryClass::Permanent),
            (
                ItsmError::Connect {
                    backend: "t",
                    message: "refused".to_owned(),
                },
                RetryClass::Retryable,
            ),
            (
                ItsmError::Timeout {
                    backend: "t",
                    message: "30s".to_owned(),
                },
                RetryClass::Retryable,
            ),
            (
                ItsmError::InvalidResponse {
                    backend: "t",
                    message: "html".to_owned(),
                },
                RetryClass::Retryable,
            ),
            (
                ItsmError::Auth {
                    backend: "t",
                    message: "bad".to_owned(),
                },
                RetryClass::Permanent,
            ),
            (
                ItsmError::NotFound {
                    backend: "t",
                    id: "x".to_owned(),
                },
                RetryClass::Permanent,
            ),
            (
                ItsmError::Config {
                    backend: "t",
                    message: "x".to_owned(),
                },
                RetryClass::Permanent,
            ),
        ];
        for (err, class) in cases {
            assert_eq!(err.retry_class(), *class, "{err}");
        }
    }

    #[test]
    fn labels_and_status() {
        assert_eq!(http(429, None).metric_label(), "http_429");
        assert_eq!(http(429, None).status(), Some(429));
        let others = [
            (
                ItsmError::Connect {
                    backend: "t",
                    message: String::new(),
                },
                "connect",
            ),
            (
                ItsmError::Timeout {
                    backend: "t",
                    message: String::new(),
                },
                "timeout",
            ),
            (
                ItsmError::InvalidResponse {
                    backend: "t",
                    message: String::new(),
                },
                "invalid_response",
            ),
            (
                ItsmError::Auth {
                    backend: "t",
                    message: String::new(),
                },
                "auth",
            ),
            (
                ItsmError::NotFound {
                    backend: "t",
                    id: String::new(),
                },
                "not_found",
            ),
            (
                ItsmError::Config {
                    backend: "t",
                    message: String::new(),
                },
                "config",
            ),
        ];
        for (err, label) in others {
            assert_eq!(err.metric_label(), label);
            assert_eq!(err.status(), None);
        }
        assert_eq!(http(404, None).to_string(), "test answered HTTP 404: m");
    }
}
