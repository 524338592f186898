//! The [`CmdbLookup`] trait and its record type.

use async_trait::async_trait;
use secure_export_itsm::CiRef;
use serde::{Deserialize, Serialize};

/// How a configuration item was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CiSource {
    /// Matched by ARM resource id (ServiceNow `object_id`, BMC `CloudID`).
    ResourceId,
    /// Matched by name.
    Name,
    /// Matched by a static map from resource-id pattern to CI.
    StaticMap,
    /// The connection's fallback CI.
    Fallback,
}

/// A configuration item found in a CMDB.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CiRecord {
    /// What the ITSM needs to reference the CI (ServiceNow `sys_id`, BMC reconciliation id).
    pub id: String,
    /// The CI's name.
    pub name: String,
    /// The CI class (ServiceNow `sys_class_name`, BMC class name such as `BMC_ComputerSystem`).
    pub class: Option<String>,
    /// How it was found.
    pub source: CiSource,
}

impl From<CiRecord> for CiRef {
    fn from(r: CiRecord) -> Self {
        Self {
            id: r.id,
            name: r.name,
            class: r.class,
        }
    }
}

/// A lookup that failed (as opposed to one that found nothing, which is `Ok(vec![])`).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// The CMDB could not be reached or answered an error.
    #[error("cmdb lookup failed: {0}")]
    Backend(#[from] secure_export_itsm::ItsmError),
    /// The lookup did not finish before its deadline.
    #[error("cmdb lookup timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The lookup was not sent because the value may not enter a CMDB query (for example a
    /// ServiceNow value beginning with `javascript:`). Not a CMDB failure: the target is
    /// reported unbound with this reason, the item is not held back, and the answer is cached
    /// like "not found".
    #[error("{0}")]
    Refused(String),
}

/// Finds configuration items in one CMDB.
#[async_trait]
pub trait CmdbLookup: Send + Sync + std::fmt::Debug {
    /// Finds CIs whose Azure resource id equals `resource_id` (given normalized: lowercase ARM
    /// id). Comparison must be case-insensitive.
    ///
    /// Subscription targets (service-health alerts) arrive as `/subscriptions/<id>`; a CMDB
    /// that stores subscriptions by bare id (ServiceNow discovery's
    /// `cmdb_ci_cloud_service_account.object_id`) should match that too.
    async fn by_resource_id(&self, resource_id: &str) -> Result<Vec<CiRecord>, LookupError>;

    /// Finds CIs by name, optionally restricted to a CI class (`class_hint`).
    async fn by_name(
        &self,
        name: &str,
        class_hint: Option<&str>,
    ) -> Result<Vec<CiRecord>, LookupError>;
}

/// Paces the CMDB requests of a [`Binder`](crate::Binder) by the connection's rate limiter.
///
/// Every request the binder sends to its [`CmdbLookup`] first awaits [`acquire`](Self::acquire)
/// (cache hits and lookups joining one already in flight do not). A lookup that fails because
/// the CMDB throttled it (HTTP 429 or 503 with `Retry-After`) is reported to
/// [`throttled`](Self::throttled), a successful one to [`succeeded`](Self::succeeded).
/// Configure it with [`BinderBuilder::pacer`](crate::BinderBuilder::pacer).
#[async_trait]
pub trait LookupPacer: Send + Sync + std::fmt::Debug {
    /// Waits until the next CMDB request may start.
    async fn acquire(&self);

    /// The CMDB asked to wait `wait` before the next request.
    fn throttled(&self, wait: std::time::Duration) {
        let _ = wait;
    }

    /// A request that started (after [`acquire`](Self::acquire)) at `started` succeeded.
    fn succeeded(&self, started: tokio::time::Instant) {
        let _ = started;
    }
}
