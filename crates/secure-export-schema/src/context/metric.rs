//! Metric alert contexts (`monitoringService: Platform`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::loose::StringOrNumber;
use crate::time::OptTime;

json_object! {
    /// Context of a metric alert: static threshold, dynamic threshold or availability test.
    pub struct MetricAlertContext {
        /// Customer-defined properties of the rule.
        "properties" => properties: BTreeMap<String, Value>,
        /// `SingleResourceMultipleMetricCriteria`, `MultipleResourceMultipleMetricCriteria`,
        /// `DynamicThresholdCriteria` or `WebtestLocationAvailabilityCriteria`.
        "conditionType" => condition_type: String,
        /// The evaluated condition.
        "condition" => condition: MetricCondition,
    }
}

json_object! {
    /// The `condition` of a metric alert.
    pub struct MetricCondition {
        /// Evaluation window as an ISO 8601 duration (`PT5M`).
        "windowSize" => window_size: String,
        /// Criteria that all held.
        "allOf" => all_of: Vec<MetricCriterion>,
        /// Window start.
        "windowStartTime" => window_start_time: DateTime<Utc> as OptTime,
        /// Window end.
        "windowEndTime" => window_end_time: DateTime<Utc> as OptTime,
    }
}

json_object! {
    /// One metric criterion.
    pub struct MetricCriterion {
        /// Metric name (`Percentage CPU`).
        "metricName" => metric_name: String,
        /// Metric namespace (`Microsoft.Compute/virtualMachines`).
        "metricNamespace" => metric_namespace: String,
        /// Comparison operator (`GreaterThan`).
        "operator" => operator: String,
        /// Threshold (a string on the wire; the computed value for dynamic thresholds).
        "threshold" => threshold: StringOrNumber,
        /// Aggregation (`Average`).
        "timeAggregation" => time_aggregation: String,
        /// Dimension values of the time series that breached.
        "dimensions" => dimensions: Vec<Dimension>,
        /// Metric value at breach.
        "metricValue" => metric_value: f64,
        /// Availability test name (availability alerts).
        "webTestName" => web_test_name: String,
        /// Dynamic thresholds: `High`, `Medium` or `Low`.
        "alertSensitivity" => alert_sensitivity: String,
        /// Dynamic thresholds: failing periods settings.
        "failingPeriods" => failing_periods: FailingPeriods,
        /// Dynamic thresholds: ignore data before this time.
        "ignoreDataBefore" => ignore_data_before: DateTime<Utc> as OptTime,
    }
}

json_object! {
    /// A dimension `{name, value}` pair.
    pub struct Dimension {
        /// Dimension name (`ResourceId`, `Computer`, ...).
        "name" => name: String,
        /// Dimension value.
        "value" => value: StringOrNumber,
    }
}

json_object! {
    /// How many evaluation periods must fail before the alert fires.
    pub struct FailingPeriods {
        /// Evaluation periods looked at.
        "numberOfEvaluationPeriods" => number_of_evaluation_periods: f64,
        /// Failing periods needed.
        "minFailingPeriodsToAlert" => min_failing_periods_to_alert: f64,
    }
}
