//! The call log: every request an emulator answered (or dropped), for wire-format assertions.

use std::sync::{Arc, Mutex, PoisonError};

/// One HTTP request seen by an emulator, with the status it was answered with.
///
/// `status` is `0` when the connection was dropped without an answer (see
/// [`Faults::drop_next`](crate::fault::Faults::drop_next)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCall {
    /// The HTTP method, e.g. `"POST"`.
    pub method: String,
    /// The path exactly as received (still percent-encoded), e.g. `/api/now/table/incident`.
    pub path: String,
    /// The raw query string as received (percent-encoded, without the leading `?`); empty when absent.
    pub query: String,
    /// Request headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The request body as text (lossy UTF-8).
    pub body: String,
    /// The status code answered, or `0` for a dropped connection.
    pub status: u16,
}

impl RecordedCall {
    /// The first value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The decoded query parameters (`+` and `%XX` decoded), in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    /// The first decoded value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// The body parsed as JSON, or `None` when it is not JSON.
    pub fn json_body(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// Shared, append-only call log.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallLog {
    inner: Arc<Mutex<Vec<RecordedCall>>>,
}

impl CallLog {
    pub(crate) fn push(&self, call: RecordedCall) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(call);
    }

    pub(crate) fn snapshot(&self) -> Vec<RecordedCall> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn clear(&self) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
