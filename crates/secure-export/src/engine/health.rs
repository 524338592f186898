//! Health kept by background checks: the store and every backend are probed on a timer
//! ([`EngineOptions::health_interval`](super::EngineOptions::health_interval)), never on a
//! request, so a probe of the public `/readyz` cannot make an ITSM call.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Check {
    /// `None` when the check passed; else what failed (for the admin side and the log only).
    pub error: Option<String>,
    /// When the check ran (`None`: not run yet).
    pub checked_at: Option<DateTime<Utc>>,
}

impl Check {
    /// A check that has not run yet.
    pub fn pending() -> Self {
        Self {
            error: Some("not checked yet".to_owned()),
            checked_at: None,
        }
    }

    /// A check that passed at `at`.
    pub fn passed(at: DateTime<Utc>) -> Self {
        Self {
            error: None,
            checked_at: Some(at),
        }
    }

    /// A check that failed at `at`.
    pub fn failed(at: DateTime<Utc>, error: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            checked_at: Some(at),
        }
    }

    /// Whether the check passed.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// What the background checks last saw ([`Engine::health`](super::Engine::health)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthReport {
    /// The store answers and takes writes.
    pub store: Check,
    /// Each connection's backend, by connection name. Reported, never part of readiness: the
    /// outbox exists to absorb a backend outage.
    pub backends: BTreeMap<String, Check>,
}

/// Why the receiver cannot accept alerts now ([`Engine::ready_to_accept`](super::Engine::ready_to_accept)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotReady {
    /// The last store check failed.
    #[error("store unavailable: {0}")]
    Store(String),
    /// The outbox is at its high-water mark.
    #[error("outbox at its high-water mark ({depth} jobs, mark {mark})")]
    QueueFull {
        /// Jobs queued.
        depth: u64,
        /// The high-water mark.
        mark: u64,
    },
}
