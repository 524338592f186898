//! Detection and conversion of legacy (non-common) payloads into the common alert schema.
//!
//! Each converter builds a common-schema document that the normal decoder then reads, so
//! legacy alerts get the same typed context and helpers as common-schema ones.

use serde_json::{Map, Value, json};

use crate::alert::{COMMON_SCHEMA_ID, SourceSchema};

/// Recognises a legacy payload and returns its source schema and common-schema form.
pub(crate) fn convert(whole: &Value) -> Option<(SourceSchema, Value)> {
    let schema_id = whole.get("schemaId").and_then(Value::as_str).unwrap_or("");
    let data = whole.get("data");
    if schema_id.eq_ignore_ascii_case("AzureMonitorMetricAlert") {
        return Some((SourceSchema::MetricAlertV2, metric_alert_v2(data?)?));
    }
    if schema_id.eq_ignore_ascii_case("Microsoft.Insights/activityLogs") {
        return Some((SourceSchema::ActivityLog, activity_log(data?)?));
    }
    if schema_id.eq_ignore_ascii_case("Microsoft.Insights/LogAlert") {
        return Some((
            SourceSchema::LogAlertV1ApplicationInsights,
            log_alert_v1(data?)?,
        ));
    }
    if schema_id.eq_ignore_ascii_case("AIP Budget Notification") {
        return Some((SourceSchema::BudgetNotification, budget(data?)?));
    }
    if whole.get("AlertRuleName").is_some() && whole.get("SearchQuery").is_some() {
        return Some((SourceSchema::LogAlertV1, log_alert_v1(whole)?));
    }
    let context = whole.get("context")?;
    if whole.get("status").is_some() && context.get("conditionType").is_some() {
        return Some((SourceSchema::ClassicMetricAlert, classic_metric(whole)?));
    }
    None
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn string_of(v: &Value, key: &str) -> Value {
    str_of(v, key).map_or(Value::Null, |s| Value::String(s.to_owned()))
}

/// `3`, `"3"`, `"Sev3"` or a level name (`Warning`) as a common-schema severity.
fn severity(v: Option<&Value>) -> Value {
    let text = match v {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Value::Null,
    };
    let level = match text.to_ascii_lowercase().as_str() {
        "0" | "sev0" | "critical" => "Sev0",
        "1" | "sev1" | "error" => "Sev1",
        "2" | "sev2" | "warning" => "Sev2",
        "3" | "sev3" | "informational" => "Sev3",
        "4" | "sev4" | "verbose" => "Sev4",
        _ => return Value::String(text),
    };
    Value::String(level.to_owned())
}

/// Legacy `status` (`Activated`, `Resolved`, `Deactivated`) as a monitor condition.
fn condition(status: Option<&str>) -> &'static str {
    match status.map(str::to_ascii_lowercase).as_deref() {
        Some("resolved" | "deactivated") => "Resolved",
        _ => "Fired",
    }
}

/// The last segment of an ARM id (the resource name).
fn last_segment(id: &str) -> Option<String> {
    id.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn envelope(essentials: Value, context: Value, custom: Option<&Value>) -> Value {
    json!({
        "schemaId": COMMON_SCHEMA_ID,
        "data": {
            "essentials": essentials,
            "alertContext": context,
            "customProperties": custom.cloned().unwrap_or(Value::Null),
        }
    })
}

fn times(condition: &str, at: Value) -> (Value, Value) {
    if condition == "Resolved" {
        (Value::Null, at)
    } else {
        (at, Value::Null)
    }
}

fn metric_alert_v2(data: &Value) -> Option<Value> {
    let ctx = data.get("context")?;
    let cond = condition(str_of(data, "status"));
    let (fired, resolved) = times(cond, string_of(ctx, "timestamp"));
    let resource_id = str_of(ctx, "resourceId");
    let essentials = json!({
        "alertRule": string_of(ctx, "name"),
        "alertRuleId": string_of(ctx, "id"),
        "severity": severity(ctx.get("severity")),
        "signalType": "Metric",
        "monitorCondition": cond,
        "monitoringService": "Platform",
        "alertTargetIDs": resource_id.map_or(Value::Null, |id| json!([id])),
        "configurationItems": str_of(ctx, "resourceName").map_or(Value::Null, |n| json!([n])),
        "firedDateTime": fired,
        "resolvedDateTime": resolved,
        "description": string_of(ctx, "description"),
        "targetResourceGroup": string_of(ctx, "resourceGroupName"),
        "targetResourceType": string_of(ctx, "resourceType"),
        "essentialsVersion": "1.0",
        "alertContextVersion": "1.0",
    });
    let context = json!({
        "properties": Value::Null,
        "conditionType": string_of(ctx, "conditionType"),
        "condition": ctx.get("condition").cloned().unwrap_or(Value::Null),
    });
    Some(envelope(
        strip_nulls(essentials),
        context,
        data.get("properties"),
    ))
}

fn activity_log(data: &Value) -> Option<Value> {
    let event = data.get("context")?.get("activityLog")?;
    // Old administrative samples omit `eventSource`; only administrative events carry
    // `authorization`.
    let source = match str_of(event, "eventSource") {
        Some(s) => s,
        None if event.get("authorization").is_some() => "Administrative",
        None => "",
    };
    let service = match source.to_ascii_lowercase().as_str() {
        "administrative" => "Activity Log - Administrative".to_owned(),
        "policy" => "Activity Log - Policy".to_owned(),
        "autoscale" => "Activity Log - Autoscale".to_owned(),
        "security" => "Activity Log - Security".to_owned(),
        "servicehealth" => "ServiceHealth".to_owned(),
        "resourcehealth" => "Resource Health".to_owned(),
        other => format!(
            "Activity Log - {}",
            if other.is_empty() { "Unknown" } else { source }
        ),
    };
    let target = str_of(event, "resourceId")
        .map(str::to_owned)
        .or_else(|| str_of(event, "subscriptionId").map(|s| format!("/subscriptions/{s}")));
    let ci = str_of(event, "resourceId").and_then(last_segment);
    let essentials = json!({
        "alertRule": Value::Null,
        "signalType": "Activity Log",
        "monitorCondition": "Fired",
        "monitoringService": service,
        "alertTargetIDs": target.map_or(Value::Null, |t| json!([t])),
        "configurationItems": ci.map_or(Value::Null, |n| json!([n])),
        "originAlertId": string_of(event, "eventDataId"),
        "firedDateTime": string_of(event, "eventTimestamp"),
        "description": string_of(event, "description"),
        "targetResourceGroup": string_of(event, "resourceGroupName"),
        "targetResourceType": string_of(event, "resourceType"),
        "essentialsVersion": "1.0",
        "alertContextVersion": "1.0",
    });
    Some(envelope(
        strip_nulls(essentials),
        event.clone(),
        data.get("properties"),
    ))
}

fn log_alert_v1(flat: &Value) -> Option<Value> {
    let obj = flat.as_object()?;
    let service = if obj.contains_key("ApplicationId") {
        "Application Insights"
    } else {
        "Log Analytics"
    };
    // Old webhooks carry only `SubscriptionId`: name the subscription, as activity log
    // alerts do, so a subscription allow-list can judge the alert.
    let target = str_of(flat, "ResourceId")
        .map(str::to_owned)
        .or_else(|| str_of(flat, "SubscriptionId").map(|s| format!("/subscriptions/{s}")))
        .map_or(Value::Null, |id| json!([id]));
    let cis = flat
        .get("AffectedConfigurationItems")
        .cloned()
        .unwrap_or(Value::Null);
    let essentials = json!({
        "alertRule": string_of(flat, "AlertRuleName"),
        "severity": severity(flat.get("Severity")),
        "signalType": "Log",
        "monitorCondition": "Fired",
        "monitoringService": service,
        "alertTargetIDs": target,
        "configurationItems": cis,
        "firedDateTime": fired_from_interval(flat),
        "description": string_of(flat, "Description"),
        "essentialsVersion": "1.0",
        "alertContextVersion": "1.0",
    });
    // The v1 context is the flat object with the common-schema names of a few members.
    let mut context = Map::new();
    for (k, v) in obj {
        let name = match k.as_str() {
            "AlertThresholdOperator" => "Operator",
            "AlertThresholdValue" => "Threshold",
            "SearchResult" => "SearchResults",
            "SubscriptionId" | "AlertRuleName" | "Severity" | "Description" | "ResourceId" => {
                continue;
            }
            other => other,
        };
        context.insert(name.to_owned(), v.clone());
    }
    Some(envelope(
        strip_nulls(essentials),
        Value::Object(context),
        None,
    ))
}

/// The end of the search interval when it is an ISO timestamp (the closest thing a v1 log
/// alert has to a fired time).
fn fired_from_interval(flat: &Value) -> Value {
    str_of(flat, "SearchIntervalEndtimeUtc")
        .filter(|s| crate::time::parse_timestamp(s).is_some())
        .map_or(Value::Null, |s| Value::String(s.to_owned()))
}

fn budget(data: &Value) -> Option<Value> {
    let sub = str_of(data, "SubscriptionId");
    let scope = match (sub, str_of(data, "ResourceGroup").filter(|s| !s.is_empty())) {
        (Some(s), Some(rg)) => Value::String(format!("/subscriptions/{s}/resourceGroups/{rg}")),
        (Some(s), None) => Value::String(format!("/subscriptions/{s}")),
        _ => Value::Null,
    };
    let essentials = json!({
        "monitorCondition": "Fired",
        "monitoringService": "CostAlerts",
        // The budget's scope, so a subscription allow-list can judge the alert.
        "alertTargetIDs": if scope.is_null() { Value::Null } else { json!([scope]) },
        "configurationItems": ["budgets"],
        "description": format!(
            "Budget {} reached its notification threshold",
            str_of(data, "BudgetName").unwrap_or("(unnamed)")
        ),
        "essentialsVersion": "1.0",
        "alertContextVersion": "1.0",
    });
    let context = json!({
        "AlertCategory": "budgets",
        "AlertData": strip_nulls(json!({
            "Scope": scope,
            "BudgetType": string_of(data, "BudgetType"),
            "BudgetThreshold": string_of(data, "Budget"),
            "NotificationThresholdAmount": string_of(data, "NotificationThresholdAmount"),
            "BudgetName": string_of(data, "BudgetName"),
            "BudgetStartDate": string_of(data, "BudgetStartDate"),
            "BudgetCreator": string_of(data, "BudgetCreator"),
            "Unit": string_of(data, "Unit"),
            "SpentAmount": string_of(data, "SpendingAmount"),
            "SubscriptionName": string_of(data, "SubscriptionName"),
            "ResourceGroup": string_of(data, "ResourceGroup"),
        })),
    });
    Some(envelope(strip_nulls(essentials), context, None))
}

fn classic_metric(whole: &Value) -> Option<Value> {
    let ctx = whole.get("context")?;
    let cond = condition(str_of(whole, "status"));
    let (fired, resolved) = times(cond, string_of(ctx, "timestamp"));
    let condition_type = str_of(ctx, "conditionType").unwrap_or("");
    let is_metric = condition_type.eq_ignore_ascii_case("Metric");
    let essentials = json!({
        "alertRule": string_of(ctx, "name"),
        "alertRuleId": string_of(ctx, "id"),
        "signalType": if is_metric { "Metric" } else { "Activity Log" },
        "monitorCondition": cond,
        "monitoringService": if is_metric { "Platform" } else { "Classic" },
        "alertTargetIDs": str_of(ctx, "resourceId").map_or(Value::Null, |id| json!([id])),
        "configurationItems": str_of(ctx, "resourceName").map_or(Value::Null, |n| json!([n])),
        "firedDateTime": fired,
        "resolvedDateTime": resolved,
        "description": string_of(ctx, "description"),
        "targetResourceGroup": string_of(ctx, "resourceGroupName"),
        "targetResourceType": string_of(ctx, "resourceType"),
        "essentialsVersion": "1.0",
        "alertContextVersion": "1.0",
    });
    let context = if is_metric {
        let c = ctx.get("condition").cloned().unwrap_or(Value::Null);
        let window = match c.get("windowSize") {
            Some(Value::String(m)) if m.chars().all(|ch| ch.is_ascii_digit()) => {
                json!(format!("PT{m}M"))
            }
            Some(other) => other.clone(),
            None => Value::Null,
        };
        let metric_value = match c.get("metricValue") {
            Some(Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .ok()
                .map_or(Value::Null, |f| json!(f)),
            Some(other) => other.clone(),
            None => Value::Null,
        };
        json!({
            "properties": Value::Null,
            "conditionType": "SingleResourceMultipleMetricCriteria",
            "condition": {
                "windowSize": window,
                "allOf": [strip_nulls(json!({
                    "metricName": string_of(&c, "metricName"),
                    "operator": string_of(&c, "operator"),
                    "threshold": c.get("threshold").cloned().unwrap_or(Value::Null),
                    "timeAggregation": string_of(&c, "timeAggregation"),
                    "metricValue": metric_value,
                    "metricUnit": string_of(&c, "metricUnit"),
                    "dimensions": [],
                }))],
            },
        })
    } else {
        ctx.clone()
    };
    Some(envelope(
        strip_nulls(essentials),
        context,
        whole.get("properties"),
    ))
}

/// Drops `null` members of an object so the converted essentials only carry what the
/// legacy payload had.
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_legacy_severities() {
        assert_eq!(severity(Some(&json!("3"))), json!("Sev3"));
        assert_eq!(severity(Some(&json!(1))), json!("Sev1"));
        assert_eq!(severity(Some(&json!("Warning"))), json!("Sev2"));
        assert_eq!(severity(Some(&json!("odd"))), json!("odd"));
        assert_eq!(severity(None), Value::Null);
    }

    #[test]
    fn unrecognised_documents_are_not_converted() {
        assert!(convert(&json!({"schemaId": "something", "data": {}})).is_none());
        assert!(convert(&json!({"hello": "world"})).is_none());
        assert!(convert(&json!([1, 2])).is_none());
    }
}
