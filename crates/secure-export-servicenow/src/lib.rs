//! The ServiceNow backend of secure-export: incidents or Event Management events through the
//! Table API, and CMDB lookups for binding Azure resources to configuration items.
//!
//! - [`ServiceNowConnector`] implements [`ItsmConnector`](secure_export_itsm::ItsmConnector):
//!   it creates incidents with `correlation_id`/`correlation_display` (plus `cmdb_ci` for the
//!   primary CI and `task_ci` rows for the others), finds the open one by
//!   `correlation_id=<id>^active=true` (excluding resolved/closed states), adds work notes,
//!   resolves with state 6 plus `close_code`/`close_notes`, and reopens (state 2). With
//!   [`WorkItemKind::Event`] it sends `em_event` records keyed by `message_key` instead; see
//!   [`WorkItemKind`].
//! - [`ServiceNowCmdb`] implements [`CmdbLookup`](secure_export_cmdb::CmdbLookup) on `cmdb_ci`
//!   (or configured classes): by `object_id` (ARM id, matched ignoring case) then by `name`.
//! - Field lengths are respected (`short_description` 160, `correlation_id` 100, long texts
//!   4000); an over-long correlation id is shortened deterministically so create and find agree.
//! - Azure severity maps to impact/urgency (incidents) and event severity per [`SeverityMap`].
//! - Authentication is basic or OAuth 2.0 (`/oauth_token.do`, password grant with refresh
//!   token, or client credentials); tokens are renewed before they expire and once after a 401.
//!
//! Errors: the instance's `{"error":{"message","detail"}}` body becomes
//! [`ItsmError::Http`](secure_export_itsm::ItsmError::Http) with status, message, detail and the
//! parsed `Retry-After`; a 2xx answer that is not the expected JSON (the HTML page of a hibernating
//! developer instance) is a retryable `InvalidResponse`; every request has a timeout.
//!
//! What it does not do: retry. Every error carries its
//! [`retry_class`](secure_export_itsm::ItsmError::retry_class) and the caller (the outbox)
//! decides; the only repeat is the single request after renewing a rejected token.
//!
//! ```no_run
//! use secure_export_itsm::{ItsmConnector, NewWorkItem, Resolution, Secret, Severity};
//! use secure_export_servicenow::{Auth, ServiceNowConfig, ServiceNowConnector};
//!
//! # async fn run() -> Result<(), secure_export_itsm::ItsmError> {
//! let config = ServiceNowConfig::new(
//!     "https://acme.service-now.com",
//!     Auth::basic("azure.monitor", Secret::new("from-your-vault")),
//! )
//! .with_assignment_group("d625dccec0a8016700a222a0f7900d06");
//! let client = reqwest::Client::builder()
//!     .redirect(reqwest::redirect::Policy::none())
//!     .build()
//!     .map_err(|e| secure_export_itsm::ItsmError::Config { backend: "servicenow", message: e.to_string() })?;
//! let servicenow = ServiceNowConnector::new(config, client)?;
//!
//! let item = NewWorkItem::new("alert-123", "[Sev1] CPU high on vm1", Severity::Sev1);
//! let incident = match servicenow.find_open(&item.correlation_id).await? {
//!     Some(open) => open,
//!     None => servicenow.create(&item).await?,
//! };
//! servicenow.resolve(&incident, &Resolution::new("Azure Monitor: alert resolved")).await?;
//! # Ok(()) }
//! ```

mod cmdb;
mod config;
mod connector;
mod errors;
mod event;
mod fields;
mod incident;
mod query;
mod transport;

pub use cmdb::ServiceNowCmdb;
pub use config::{
    Auth, Clock, DEFAULT_MAX_RESPONSE_BYTES, ServiceNowConfig, SeverityMap, WorkItemKind,
};
pub use connector::ServiceNowConnector;
