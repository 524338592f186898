//! Serde model of Azure Monitor's common alert schema, every alert type, and the legacy
//! (non-common) formats, for receivers of Secure Webhook (Secure Export) calls.
//!
//! - [`Alert::from_slice`] decodes a request body: the common alert schema or a legacy
//!   format (converted; see [`Alert::source_schema`]). It is strict where Azure is
//!   consistent (`monitorCondition` is required, `data` and `essentials` must be objects)
//!   and tolerant where Azure is not: both spellings of `alertRuleId`/`alertRuleID` and
//!   `alertTargetIDs`/`alertTargetIds`, `Activity Log`/`ActivityLog`, 0-9 fractional
//!   second digits, numbers or strings for service-health enums, `impactedServices` as a
//!   JSON string or an array.
//! - [`AlertContext`] is typed per `monitoringService` (and `conditionType` for metric
//!   alerts). A context that does not match its expected shape does **not** fail the
//!   alert: it is kept as [`AlertContext::Unknown`] and [`Alert::warnings`] says why.
//! - Unknown members are preserved everywhere: serializing an [`Alert`] gives back every
//!   member that came in.
//! - [`ResourceId`] parses ARM ids with case-insensitive equality.
//! - Errors ([`SchemaError`]) carry the JSON path of the failure. No input panics; bodies
//!   are limited to [`MAX_PAYLOAD_BYTES`] and nesting to [`MAX_DEPTH`] levels.
//!
//! The crate does not authenticate the caller (see `secure-export-aad`) and does no I/O.
//!
//! ```
//! use secure_export_schema::{Alert, MonitorCondition, Severity};
//!
//! let body = br#"{
//!   "schemaId": "azureMonitorCommonAlertSchema",
//!   "data": {
//!     "essentials": {
//!       "alertId": "/subscriptions/s1/providers/Microsoft.AlertsManagement/alerts/a1",
//!       "alertRule": "High CPU",
//!       "severity": "Sev2",
//!       "signalType": "Metric",
//!       "monitorCondition": "Fired",
//!       "monitoringService": "Platform",
//!       "alertTargetIDs": ["/subscriptions/s1/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm1"],
//!       "configurationItems": ["vm1"],
//!       "firedDateTime": "2024-05-01T10:00:00.1234567Z"
//!     },
//!     "alertContext": {
//!       "conditionType": "SingleResourceMultipleMetricCriteria",
//!       "condition": { "windowSize": "PT5M", "allOf": [] }
//!     },
//!     "customProperties": null
//!   }
//! }"#;
//! let alert = Alert::from_slice(body)?;
//! assert_eq!(alert.essentials.severity, Some(Severity::Sev2));
//! assert_eq!(alert.essentials.monitor_condition, MonitorCondition::Fired);
//! assert_eq!(alert.context_kind(), "metric_static");
//! assert_eq!(alert.target_resource_ids()[0].name(), Some("vm1"));
//! assert_eq!(alert.configuration_items(), ["vm1"]);
//!
//! let err = Alert::from_slice(br#"{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{"monitorCondition":7}}}"#)
//!     .unwrap_err();
//! assert_eq!(err.path(), "data.essentials.monitorCondition");
//! # Ok::<(), secure_export_schema::SchemaError>(())
//! ```

#[macro_use]
mod macros;

mod alert;
mod context;
mod enums;
mod error;
mod essentials;
mod key;
mod legacy;
mod loose;
mod resource_id;
mod time;

pub use alert::{
    Alert, COMMON_SCHEMA_ID, MAX_DEPTH, MAX_PAYLOAD_BYTES, ResourceDimension, SourceSchema,
};
pub use context::{
    ActivityLogContext, AlertContext, Authorization, BudgetAlertData, CostAlertContext, Dimension,
    FailingPeriods, ImpactedRegion, ImpactedService, ImpactedServices, LogAlertV1Context,
    LogQueryCondition, LogQueryContext, LogQueryCriterion, MetricAlertContext, MetricCondition,
    MetricCriterion, PrometheusContext, ResourceHealthContext, ResourceHealthProperties,
    ServiceHealthContext, ServiceHealthProperties, SmartDetectorContext,
};
pub use enums::{MonitorCondition, MonitoringService, Severity, SignalType};
pub use error::SchemaError;
pub use essentials::Essentials;
pub use loose::StringOrNumber;
pub use resource_id::{ResourceId, ResourceIdError};
pub use time::parse_timestamp;
