//! [`AppState`]: what the router needs (engine, connection gates, limits).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::DEFAULT_BODY_LIMIT;
use crate::engine::Engine;

use super::ConnectionGate;

/// Shared state of the [`router`](super::router): the engine, one [`ConnectionGate`] per
/// connection, and the HTTP limits. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    engine: Engine,
    gates: Vec<ConnectionGate>,
    body_limit: usize,
    request_timeout: Duration,
    retry_after: Duration,
}

impl AppState {
    /// State with the default limits: 1 MiB body, 5 s request timeout, `Retry-After: 10`.
    pub fn new(engine: Engine, gates: Vec<ConnectionGate>) -> Self {
        Self {
            inner: Arc::new(Inner {
                engine,
                gates,
                body_limit: DEFAULT_BODY_LIMIT,
                request_timeout: Duration::from_secs(5),
                retry_after: Duration::from_secs(10),
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.inner)
    }

    /// Sets the maximum request body in bytes (413 above it).
    #[must_use]
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.inner_mut().body_limit = bytes;
        self
    }

    /// Sets the deadline for answering one request (503 + `Retry-After` past it).
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.inner_mut().request_timeout = timeout;
        self
    }

    /// Sets the `Retry-After` value sent with 503 answers.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.inner_mut().retry_after = retry_after;
        self
    }

    /// The engine behind the router.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The connection gates, in configuration order.
    pub fn gates(&self) -> &[ConnectionGate] {
        &self.inner.gates
    }

    pub(crate) fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    pub(crate) fn retry_after(&self) -> Duration {
        self.inner.retry_after
    }

    /// Records `secure_export_request_seconds{route}`.
    pub(crate) fn observe(&self, route: &str, started: Instant) {
        self.inner.engine.metrics().observe(
            "secure_export_request_seconds",
            &[("route", route)],
            started.elapsed().as_secs_f64(),
        );
    }
}
