//! `alertContext`: typed per `essentials.monitoringService` (and `conditionType` for metric
//! alerts), with an [`AlertContext::Unknown`] fallback that never fails the alert.

mod activity;
mod log;
mod metric;
mod other;

pub use activity::{
    ActivityLogContext, Authorization, ImpactedRegion, ImpactedService, ImpactedServices,
    ResourceHealthContext, ResourceHealthProperties, ServiceHealthContext, ServiceHealthProperties,
};
pub use log::{LogAlertV1Context, LogQueryCondition, LogQueryContext, LogQueryCriterion};
pub use metric::{Dimension, FailingPeriods, MetricAlertContext, MetricCondition, MetricCriterion};
pub use other::{BudgetAlertData, CostAlertContext, PrometheusContext, SmartDetectorContext};

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::enums::MonitoringService;
use crate::error::SchemaError;

/// The alert context, decoded according to the monitoring service.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AlertContext {
    /// Metric alert, static threshold (`SingleResourceMultipleMetricCriteria` or
    /// `MultipleResourceMultipleMetricCriteria`).
    MetricStatic(Box<MetricAlertContext>),
    /// Metric alert, dynamic threshold (`DynamicThresholdCriteria`).
    MetricDynamic(Box<MetricAlertContext>),
    /// Availability test alert (`WebtestLocationAvailabilityCriteria`).
    MetricAvailability(Box<MetricAlertContext>),
    /// Log search alert v1 on a Log Analytics workspace.
    LogAnalyticsV1(Box<LogAlertV1Context>),
    /// Log search alert v1 on Application Insights.
    ApplicationInsightsV1(Box<LogAlertV1Context>),
    /// Log search alert v2 (scheduled query rules).
    LogAlertsV2(Box<LogQueryContext>),
    /// Simple log alert.
    SimpleLogAlert(Box<LogQueryContext>),
    /// Activity log, administrative.
    ActivityLogAdministrative(Box<ActivityLogContext>),
    /// Activity log, policy.
    ActivityLogPolicy(Box<ActivityLogContext>),
    /// Activity log, autoscale.
    ActivityLogAutoscale(Box<ActivityLogContext>),
    /// Activity log, security.
    ActivityLogSecurity(Box<ActivityLogContext>),
    /// Service health.
    ServiceHealth(Box<ServiceHealthContext>),
    /// Resource health.
    ResourceHealth(Box<ResourceHealthContext>),
    /// Smart detection.
    SmartDetector(Box<SmartDetectorContext>),
    /// Prometheus rule.
    Prometheus(Box<PrometheusContext>),
    /// Cost management budget.
    CostAlerts(Box<CostAlertContext>),
    /// A context this crate does not model, or one that did not match its expected shape
    /// (see [`Alert::warnings`](crate::Alert::warnings)), kept as received.
    Unknown(Value),
}

impl AlertContext {
    /// A stable snake_case name of the variant: `"metric_static"`, `"log_alerts_v2"`,
    /// `"service_health"`, `"unknown"`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MetricStatic(_) => "metric_static",
            Self::MetricDynamic(_) => "metric_dynamic",
            Self::MetricAvailability(_) => "metric_availability",
            Self::LogAnalyticsV1(_) => "log_analytics_v1",
            Self::ApplicationInsightsV1(_) => "application_insights_v1",
            Self::LogAlertsV2(_) => "log_alerts_v2",
            Self::SimpleLogAlert(_) => "simple_log_alert",
            Self::ActivityLogAdministrative(_) => "activity_log_administrative",
            Self::ActivityLogPolicy(_) => "activity_log_policy",
            Self::ActivityLogAutoscale(_) => "activity_log_autoscale",
            Self::ActivityLogSecurity(_) => "activity_log_security",
            Self::ServiceHealth(_) => "service_health",
            Self::ResourceHealth(_) => "resource_health",
            Self::SmartDetector(_) => "smart_detector",
            Self::Prometheus(_) => "prometheus",
            Self::CostAlerts(_) => "cost_alerts",
            Self::Unknown(_) => "unknown",
        }
    }

    /// Dimensions of the context in wire order: metric and log query criteria dimensions,
    /// or the `Dimensions` of a log alert v1.
    pub fn dimensions(&self) -> Vec<&Dimension> {
        match self {
            Self::MetricStatic(c) | Self::MetricDynamic(c) | Self::MetricAvailability(c) => c
                .condition
                .iter()
                .flat_map(|cond| cond.all_of.iter().flatten())
                .flat_map(|crit| crit.dimensions.iter().flatten())
                .collect(),
            Self::LogAlertsV2(c) | Self::SimpleLogAlert(c) => c
                .condition
                .iter()
                .flat_map(|cond| cond.all_of.iter().flatten())
                .flat_map(|crit| crit.dimensions.iter().flatten())
                .collect(),
            Self::LogAnalyticsV1(c) | Self::ApplicationInsightsV1(c) => {
                c.dimensions.iter().flatten().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Decodes the context for `service`. A mismatch gives `Unknown` plus a warning pushed
    /// onto `warnings`; only JSON that cannot be read at all (nesting too deep) is an error.
    pub(crate) fn decode(
        service: Option<&MonitoringService>,
        source: ContextSource<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<Self, SchemaError> {
        use MonitoringService as S;
        let Some(service) = service else {
            warnings.push(
                "alertContext kept as unknown: essentials.monitoringService is absent".to_owned(),
            );
            return source.into_value().map(Self::Unknown);
        };
        if !source.is_object() {
            let value = source.into_value()?;
            warnings.push(format!(
                "alertContext kept as unknown: expected an object for monitoringService `{service}`, found {}",
                json_type(&value)
            ));
            return Ok(Self::Unknown(value));
        }
        let result = match service {
            S::Platform => typed::<MetricAlertContext>(&source).and_then(|c| {
                match c.condition_type.as_deref().unwrap_or("") {
                    "SingleResourceMultipleMetricCriteria"
                    | "MultipleResourceMultipleMetricCriteria" => Ok(Self::MetricStatic(c)),
                    "DynamicThresholdCriteria" => Ok(Self::MetricDynamic(c)),
                    "WebtestLocationAvailabilityCriteria" => Ok(Self::MetricAvailability(c)),
                    other => Err(format!("unrecognised metric conditionType `{other}`")),
                }
            }),
            S::LogAnalytics => typed(&source).map(Self::LogAnalyticsV1),
            S::ApplicationInsights => typed(&source).map(Self::ApplicationInsightsV1),
            S::LogAlertsV2 => typed(&source).map(Self::LogAlertsV2),
            S::SimpleLogAlert => typed(&source).map(Self::SimpleLogAlert),
            S::ActivityLogAdministrative => typed(&source).map(Self::ActivityLogAdministrative),
            S::ActivityLogPolicy => typed(&source).map(Self::ActivityLogPolicy),
            S::ActivityLogAutoscale => typed(&source).map(Self::ActivityLogAutoscale),
            S::ActivityLogSecurity => typed(&source).map(Self::ActivityLogSecurity),
            S::ServiceHealth => typed(&source).map(Self::ServiceHealth),
            S::ResourceHealth => typed(&source).map(Self::ResourceHealth),
            S::SmartDetector => typed(&source).map(Self::SmartDetector),
            S::Prometheus => typed(&source).map(Self::Prometheus),
            S::CostAlerts => typed(&source).map(Self::CostAlerts),
            S::Unknown(name) => Err(format!("unrecognised monitoringService `{name}`")),
        };
        match result {
            Ok(context) => Ok(context),
            Err(reason) => {
                warnings.push(format!("alertContext kept as unknown: {reason}"));
                source.into_value().map(Self::Unknown)
            }
        }
    }
}

/// Where the context's JSON comes from: the request bytes (fast path) or a parsed value.
#[derive(Debug)]
pub(crate) enum ContextSource<'a> {
    /// The context's text, borrowed from the body.
    Raw(&'a RawValue),
    /// An already parsed value.
    Value(Value),
}

impl ContextSource<'_> {
    fn is_object(&self) -> bool {
        match self {
            Self::Raw(raw) => raw.get().trim_start().starts_with('{'),
            Self::Value(v) => v.is_object(),
        }
    }

    /// The context as a value; fails only for unreadable JSON (such as nesting deeper than
    /// serde_json's recursion limit), naming the path inside `data.alertContext`.
    pub(crate) fn into_value(self) -> Result<Value, SchemaError> {
        match self {
            Self::Value(v) => Ok(v),
            Self::Raw(raw) => {
                let mut de = serde_json::Deserializer::from_str(raw.get());
                serde_path_to_error::deserialize(&mut de).map_err(|err| {
                    let path = prefixed(&err.path().to_string());
                    SchemaError::from_json(path, err.inner())
                })
            }
        }
    }
}

fn prefixed(path: &str) -> String {
    if path == "." {
        "data.alertContext".to_owned()
    } else {
        format!("data.alertContext.{path}")
    }
}

/// Decodes a typed context, naming the failing member on error.
fn typed<T: DeserializeOwned>(source: &ContextSource<'_>) -> Result<Box<T>, String> {
    let describe = |err: serde_path_to_error::Error<serde_json::Error>| {
        let path = prefixed(&err.path().to_string());
        let inner = err.into_inner();
        let full = inner.to_string();
        let message = match full.rfind(" at line ") {
            Some(idx) if inner.line() > 0 => full.get(..idx).unwrap_or(&full).to_owned(),
            _ => full,
        };
        format!("{path} does not match the expected shape: {message}")
    };
    match source {
        ContextSource::Raw(raw) => {
            serde_json::from_str::<T>(raw.get())
                .map(Box::new)
                .map_err(|_| {
                    // Cold path: decode again with path tracking to say where it failed.
                    let mut de = serde_json::Deserializer::from_str(raw.get());
                    match serde_path_to_error::deserialize::<_, T>(&mut de) {
                        Err(err) => describe(err),
                        Ok(_) => "data.alertContext does not match the expected shape".to_owned(),
                    }
                })
        }
        ContextSource::Value(v) => serde_path_to_error::deserialize::<_, T>(v)
            .map(Box::new)
            .map_err(describe),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Serialize for AlertContext {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::MetricStatic(c) | Self::MetricDynamic(c) | Self::MetricAvailability(c) => {
                c.serialize(serializer)
            }
            Self::LogAnalyticsV1(c) | Self::ApplicationInsightsV1(c) => c.serialize(serializer),
            Self::LogAlertsV2(c) | Self::SimpleLogAlert(c) => c.serialize(serializer),
            Self::ActivityLogAdministrative(c)
            | Self::ActivityLogPolicy(c)
            | Self::ActivityLogAutoscale(c)
            | Self::ActivityLogSecurity(c) => c.serialize(serializer),
            Self::ServiceHealth(c) => c.serialize(serializer),
            Self::ResourceHealth(c) => c.serialize(serializer),
            Self::SmartDetector(c) => c.serialize(serializer),
            Self::Prometheus(c) => c.serialize(serializer),
            Self::CostAlerts(c) => c.serialize(serializer),
            Self::Unknown(v) => v.serialize(serializer),
        }
    }
}
