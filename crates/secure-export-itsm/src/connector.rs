//! The [`ItsmConnector`] trait.

use async_trait::async_trait;

use crate::{ItsmError, NewWorkItem, Resolution, WorkItemRef, WorkItemState, WorkItemUpdate};

/// One ITSM backend (ServiceNow, BMC Helix, the mock, or your own).
///
/// Every operation addresses work items by [`WorkItemRef::id`] (ServiceNow `sys_id`, BMC entry
/// id) except [`find_open`](Self::find_open), which looks an item up by the correlation id the
/// item was created with. Implementations must be cheap to share: the outbox holds them as
/// `Arc<dyn ItsmConnector>` and calls them from many tasks at once.
///
/// Errors carry their own retry class ([`ItsmError::retry_class`]); implementations should not
/// retry internally except to refresh expired credentials once.
#[async_trait]
pub trait ItsmConnector: Send + Sync + std::fmt::Debug {
    /// A short stable name of the backend kind (`"servicenow"`, `"bmc"`, `"mock"`), used in
    /// metrics labels and logs.
    fn backend(&self) -> &'static str;

    /// Creates a work item. The item carries [`NewWorkItem::correlation_id`] so that
    /// [`find_open`](Self::find_open) can find it again after a crash.
    async fn create(&self, item: &NewWorkItem) -> Result<WorkItemRef, ItsmError>;

    /// Finds an open (not resolved, not closed) work item created with this correlation id.
    async fn find_open(&self, correlation_id: &str) -> Result<Option<WorkItemRef>, ItsmError>;

    /// Reads the current state of a work item.
    async fn state(&self, item: &WorkItemRef) -> Result<WorkItemState, ItsmError>;

    /// Adds a work note and/or updates fields of a work item.
    async fn update(&self, item: &WorkItemRef, update: &WorkItemUpdate) -> Result<(), ItsmError>;

    /// Resolves a work item with a resolution code and notes.
    async fn resolve(&self, item: &WorkItemRef, resolution: &Resolution) -> Result<(), ItsmError>;

    /// Reopens a resolved work item, adding `note` as a work note.
    async fn reopen(&self, item: &WorkItemRef, note: &str) -> Result<(), ItsmError>;

    /// Checks that the backend is reachable and the credentials work (used by `/readyz`).
    /// The default implementation reports ready.
    async fn health(&self) -> Result<(), ItsmError> {
        Ok(())
    }
}
