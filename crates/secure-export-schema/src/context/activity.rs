//! Activity log contexts: administrative, policy, autoscale, security, service health and
//! resource health events.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::loose::StringOrNumber;
use crate::time::OptTime;

/// Declares an activity-log event struct with the shared members and a given `properties`
/// type.
macro_rules! activity_log_event {
    ($(#[$meta:meta])* $name:ident, $props:ty) => {
        json_object! {
            $(#[$meta])*
            pub struct $name {
                /// `{action, scope}` of the operation.
                "authorization" => authorization: Authorization,
                /// Channels (`Operation`; a number in some service-health payloads).
                "channels" => channels: StringOrNumber,
                /// Caller's token claims, as a JSON string.
                "claims" => claims: String,
                /// Caller (UPN, object id or service).
                "caller" => caller: String,
                /// Correlation id.
                "correlationId" => correlation_id: String,
                /// Event source (`Administrative`, ...; a number in some service-health payloads).
                "eventSource" => event_source: StringOrNumber,
                /// Event time.
                "eventTimestamp" => event_timestamp: DateTime<Utc> as OptTime,
                /// HTTP request details, as sent.
                "httpRequest" => http_request: Value,
                /// Event id.
                "eventDataId" => event_data_id: String,
                /// Level (`Informational`, ...; a number in some service-health payloads).
                "level" => level: StringOrNumber,
                /// Operation name.
                "operationName" => operation_name: String,
                /// Operation id.
                "operationId" => operation_id: String,
                /// Event-specific properties.
                "properties" => properties: $props,
                /// Operation status (`Succeeded`, `Active`, `Resolved`, ...).
                "status" => status: String,
                /// Operation sub-status.
                "subStatus" => sub_status: String,
                /// When the event was submitted.
                "submissionTimestamp" => submission_timestamp: DateTime<Utc> as OptTime,
                /// Resource type (service health).
                "ResourceType" => resource_type: String,
                /// Description of the event (moved here from essentials in 2021).
                "Activity Log Event Description" => activity_log_event_description: String,
            }
        }
    };
}

activity_log_event!(
    /// Context of an `Activity Log - Administrative | Policy | Autoscale | Security` alert.
    ActivityLogContext,
    BTreeMap<String, Value>
);

activity_log_event!(
    /// Context of a `ServiceHealth` alert.
    ServiceHealthContext,
    ServiceHealthProperties
);

activity_log_event!(
    /// Context of a `Resource Health` alert.
    ResourceHealthContext,
    ResourceHealthProperties
);

json_object! {
    /// `{action, scope}` of an activity-log operation.
    pub struct Authorization {
        /// RBAC action.
        "action" => action: String,
        /// Scope (an ARM id).
        "scope" => scope: String,
    }
}

json_object! {
    /// Properties of a service health event.
    pub struct ServiceHealthProperties {
        /// Title.
        "title" => title: String,
        /// Affected service.
        "service" => service: String,
        /// Affected region.
        "region" => region: String,
        /// Communication (HTML).
        "communication" => communication: String,
        /// `Incident`, `Maintenance`, `Informational`, `ActionRequired`, `Security`.
        "incidentType" => incident_type: String,
        /// Tracking id.
        "trackingId" => tracking_id: String,
        /// Impact start.
        "impactStartTime" => impact_start_time: DateTime<Utc> as OptTime,
        /// Impact mitigation.
        "impactMitigationTime" => impact_mitigation_time: DateTime<Utc> as OptTime,
        /// Impacted services (a JSON string or an array on the wire).
        "impactedServices" => impacted_services: ImpactedServices,
        /// Impacted services as HTML table rows.
        "impactedServicesTableRows" => impacted_services_table_rows: String,
        /// Title in the default language.
        "defaultLanguageTitle" => default_language_title: String,
        /// Content in the default language.
        "defaultLanguageContent" => default_language_content: String,
        /// `Active`, `Planned`, `Resolved`, ...
        "stage" => stage: String,
        /// Communication id.
        "communicationId" => communication_id: String,
        /// Maintenance id.
        "maintenanceId" => maintenance_id: String,
        /// High-impact incident flag (`"false"`).
        "isHIR" => is_hir: StringOrNumber,
        /// Version.
        "version" => version: String,
    }
}

/// The impacted services of a service health event.
///
/// Real payloads carry them as a JSON **string** holding an array; test payloads carry
/// the array itself. Both decode to [`ImpactedServices::services`]; serialization writes
/// the form that was received.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ImpactedServices {
    /// The services.
    pub services: Vec<ImpactedService>,
    /// The string form, when the services arrived as a JSON string.
    pub encoded: Option<String>,
}

json_object! {
    /// One impacted service.
    pub struct ImpactedService {
        /// Service name.
        "ServiceName" => service_name: String,
        /// Impacted regions.
        "ImpactedRegions" => impacted_regions: Vec<ImpactedRegion>,
    }
}

json_object! {
    /// One impacted region.
    pub struct ImpactedRegion {
        /// Region name.
        "RegionName" => region_name: String,
    }
}

impl<'de> serde::Deserialize<'de> for ImpactedServices {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{self, Deserialize as _};

        struct ServicesVisitor;

        impl<'de> de::Visitor<'de> for ServicesVisitor {
            type Value = ImpactedServices;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of impacted services, or a JSON string holding one")
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let services = Vec::<ImpactedService>::deserialize(
                    de::value::SeqAccessDeserializer::new(seq),
                )?;
                Ok(ImpactedServices {
                    services,
                    encoded: None,
                })
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let services = if v.trim().is_empty() {
                    Vec::new()
                } else {
                    serde_json::from_str(v).map_err(|e| {
                        E::custom(format_args!(
                            "impactedServices string is not a JSON array of services: {e}"
                        ))
                    })?
                };
                Ok(ImpactedServices {
                    services,
                    encoded: Some(v.to_owned()),
                })
            }
        }

        deserializer.deserialize_any(ServicesVisitor)
    }
}

impl serde::Serialize for ImpactedServices {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.encoded {
            Some(s) => serializer.serialize_str(s),
            None => self.services.serialize(serializer),
        }
    }
}

json_object! {
    /// Properties of a resource health event.
    pub struct ResourceHealthProperties {
        /// Title.
        "title" => title: String,
        /// Details.
        "details" => details: String,
        /// `Available`, `Unavailable`, `Degraded`, `Unknown`.
        "currentHealthStatus" => current_health_status: String,
        /// Previous status.
        "previousHealthStatus" => previous_health_status: String,
        /// `Downtime`, ...
        "type" => event_type: String,
        /// `UserInitiated` or `PlatformInitiated`.
        "cause" => cause: String,
    }
}
