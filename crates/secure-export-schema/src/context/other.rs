//! Smart detector, Prometheus and cost (budget) contexts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::loose::StringOrNumber;
use crate::time::OptTime;

json_object! {
    /// Context of a `SmartDetector` alert.
    pub struct SmartDetectorContext {
        /// Summary.
        "DetectionSummary" => detection_summary: String,
        /// When it occurred.
        "FormattedOccurrenceTime" => formatted_occurrence_time: DateTime<Utc> as OptTime,
        /// Detected value.
        "DetectedValue" => detected_value: StringOrNumber,
        /// Normal value.
        "NormalValue" => normal_value: StringOrNumber,
        /// Request for the presentation insight event.
        "PresentationInsightEventRequest" => presentation_insight_event_request: String,
        /// Detector id.
        "SmartDetectorId" => smart_detector_id: String,
        /// Detector name.
        "SmartDetectorName" => smart_detector_name: String,
        /// Analysis time.
        "AnalysisTimestamp" => analysis_timestamp: DateTime<Utc> as OptTime,
    }
}

json_object! {
    /// Context of a Prometheus rule alert.
    pub struct PrometheusContext {
        /// Evaluation interval (`PT1M`).
        "interval" => interval: String,
        /// PromQL expression.
        "expression" => expression: String,
        /// Expression value.
        "expressionValue" => expression_value: StringOrNumber,
        /// Pending duration (`PT2M`).
        "for" => for_duration: String,
        /// Labels.
        "labels" => labels: BTreeMap<String, Value>,
        /// Annotations.
        "annotations" => annotations: BTreeMap<String, Value>,
        /// ARM id of the rule group.
        "ruleGroup" => rule_group: String,
    }
}

json_object! {
    /// Context of a `CostAlerts` (budget) alert.
    pub struct CostAlertContext {
        /// `budgets`.
        "AlertCategory" => alert_category: String,
        /// The budget data.
        "AlertData" => alert_data: BudgetAlertData,
    }
}

json_object! {
    /// Budget data of a cost alert.
    pub struct BudgetAlertData {
        /// Scope (an ARM id, often with a trailing `/`).
        "Scope" => scope: String,
        /// `Actual` or `Forecasted`.
        "ThresholdType" => threshold_type: String,
        /// `Cost`, ...
        "BudgetType" => budget_type: String,
        /// Budget amount (`$50.00`).
        "BudgetThreshold" => budget_threshold: StringOrNumber,
        /// Notification threshold amount.
        "NotificationThresholdAmount" => notification_threshold_amount: StringOrNumber,
        /// Budget name.
        "BudgetName" => budget_name: String,
        /// Budget id.
        "BudgetId" => budget_id: String,
        /// Budget start date.
        "BudgetStartDate" => budget_start_date: String,
        /// Creator.
        "BudgetCreator" => budget_creator: String,
        /// Currency.
        "Unit" => unit: String,
        /// Spent amount.
        "SpentAmount" => spent_amount: StringOrNumber,
        /// Forecast for the period.
        "ForecastedTotalForPeriod" => forecasted_total_for_period: StringOrNumber,
    }
}
