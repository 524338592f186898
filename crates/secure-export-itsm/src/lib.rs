//! The ITSM side of secure-export: the [`ItsmConnector`] trait every backend implements, the
//! backend-neutral work-item model, the error type with its retry classification, and an
//! in-memory [`mock`] backend.
//!
//! Backends (ServiceNow, BMC Helix, the mock) live behind one object-safe async trait and are held
//! as `Arc<dyn ItsmConnector>`. The outbox in the `secure-export` crate drives them; it relies on
//! [`ItsmError::retry_class`] to decide whether to retry, wait, or dead-letter a job.
//!
//! ```
//! use secure_export_itsm::{ItsmConnector, NewWorkItem, Severity, mock::MockConnector};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let itsm = MockConnector::new();
//! let item = NewWorkItem::new("corr-1", "[Sev1] cpu high - vm1", Severity::Sev1);
//! let created = itsm.create(&item).await?;
//! let found = itsm.find_open("corr-1").await?;
//! assert_eq!(found.map(|f| f.id), Some(created.id));
//! # Ok::<(), secure_export_itsm::ItsmError>(())
//! # }).unwrap();
//! ```

mod connector;
mod error;
pub mod mock;
mod model;
mod retry;
mod secret;

pub use connector::ItsmConnector;
pub use error::ItsmError;
pub use model::{
    CiRef, NewWorkItem, Resolution, Severity, WorkItemRef, WorkItemState, WorkItemUpdate,
};
pub use retry::{MAX_RETRY_AFTER, RetryClass, parse_retry_after};
pub use secret::Secret;
