//! Log search alert contexts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::metric::{Dimension, FailingPeriods};
use crate::loose::StringOrNumber;
use crate::time::OptTime;

json_object! {
    /// Context of a log search alert v1 (`Log Analytics` or `Application Insights`):
    /// a flat PascalCase object.
    pub struct LogAlertV1Context {
        /// The query.
        "SearchQuery" => search_query: String,
        /// Start of the search interval (format varies: `3/22/2019 1:36:31 PM` or ISO 8601).
        "SearchIntervalStartTimeUtc" => search_interval_start_time_utc: String,
        /// End of the search interval.
        "SearchIntervalEndtimeUtc" => search_interval_end_time_utc: String,
        /// Number of results.
        "ResultCount" => result_count: StringOrNumber,
        /// Portal link to the results.
        "LinkToSearchResults" => link_to_search_results: String,
        /// Portal link to the filtered results.
        "LinkToFilteredSearchResultsUI" => link_to_filtered_search_results_ui: String,
        /// API link to the results.
        "LinkToSearchResultsAPI" => link_to_search_results_api: String,
        /// API link to the filtered results.
        "LinkToFilteredSearchResultsAPI" => link_to_filtered_search_results_api: String,
        /// Severity name (`Warning`).
        "SeverityDescription" => severity_description: String,
        /// Log Analytics workspace id.
        "WorkspaceId" => workspace_id: String,
        /// Application Insights application id.
        "ApplicationId" => application_id: String,
        /// Search interval in minutes.
        "SearchIntervalDurationMin" => search_interval_duration_min: StringOrNumber,
        /// Search interval in minutes.
        "SearchIntervalInMinutes" => search_interval_in_minutes: StringOrNumber,
        /// Configuration items found in the results.
        "AffectedConfigurationItems" => affected_configuration_items: Vec<String>,
        /// Threshold.
        "Threshold" => threshold: StringOrNumber,
        /// Operator (`Greater Than`).
        "Operator" => operator: String,
        /// Dimensions.
        "Dimensions" => dimensions: Vec<Dimension>,
        /// Embedded search results (may be dropped to fit 256 KB).
        "SearchResults" => search_results: Value,
        /// `"True"` when the search results are included.
        "IncludedSearchResults" => included_search_results: StringOrNumber,
        /// `Metric measurement` or `Number of results`.
        "AlertType" => alert_type: String,
    }
}

json_object! {
    /// Context of a `Log Alerts V2` or `Simple Log Alert` alert (`LogQueryCriteria`).
    pub struct LogQueryContext {
        /// Customer-defined properties.
        "properties" => properties: BTreeMap<String, Value>,
        /// `LogQueryCriteria`.
        "conditionType" => condition_type: String,
        /// The evaluated condition.
        "condition" => condition: LogQueryCondition,
    }
}

json_object! {
    /// The `condition` of a log query alert.
    pub struct LogQueryCondition {
        /// Evaluation window (`PT10M`).
        "windowSize" => window_size: String,
        /// Criteria that all held.
        "allOf" => all_of: Vec<LogQueryCriterion>,
        /// Window start.
        "windowStartTime" => window_start_time: DateTime<Utc> as OptTime,
        /// Window end.
        "windowEndTime" => window_end_time: DateTime<Utc> as OptTime,
    }
}

json_object! {
    /// One log query criterion.
    pub struct LogQueryCriterion {
        /// The query.
        "searchQuery" => search_query: String,
        /// Measured column (`metricMeasure` in 2020 docs).
        "metricMeasureColumn" | "metricMeasure" => metric_measure_column: String,
        /// Target resource types, as a string such as `"['Microsoft.Compute/virtualMachines']"`.
        "targetResourceTypes" => target_resource_types: StringOrNumber,
        /// Operator (`GreaterThan`).
        "operator" => operator: String,
        /// Threshold.
        "threshold" => threshold: StringOrNumber,
        /// Aggregation.
        "timeAggregation" => time_aggregation: String,
        /// Dimensions of the breaching series (CI candidates: `_ResourceId`, `Computer`, ...).
        "dimensions" => dimensions: Vec<Dimension>,
        /// Value at breach.
        "metricValue" => metric_value: f64,
        /// Failing periods settings.
        "failingPeriods" => failing_periods: FailingPeriods,
        /// Portal link to the results.
        "linkToSearchResultsUI" => link_to_search_results_ui: String,
        /// Portal link to the filtered results.
        "linkToFilteredSearchResultsUI" => link_to_filtered_search_results_ui: String,
        /// API link to the results.
        "linkToSearchResultsAPI" => link_to_search_results_api: String,
        /// API link to the filtered results.
        "linkToFilteredSearchResultsAPI" => link_to_filtered_search_results_api: String,
        /// Simple log alerts: result rows, each a list of `{name, value}` cells.
        "event" => event: Vec<Vec<Dimension>>,
    }
}
