//! Reading an [`Alert`] into binding candidates, and the public `bind` entry points.

use secure_export_schema::{Alert, AlertContext, MonitoringService, ResourceId};
use serde_json::Value;

use crate::targets::{
    AlertFacts, AlertKind, ArmId, Candidates, Dimension, Scope, dimension_priority,
};
use crate::{Binder, Binding};

impl ArmId {
    fn from_resource_id(id: &ResourceId) -> Self {
        let scope = if id.is_subscription_only() {
            Scope::Subscription
        } else if id.is_resource_group() {
            Scope::ResourceGroup
        } else {
            Scope::Resource
        };
        Self {
            as_received: id.as_str().to_owned(),
            normalized: id.normalized().to_owned(),
            name: id.name().map(str::to_owned),
            resource_type: id.resource_type(),
            scope,
        }
    }
}

fn parse_id(raw: &str) -> Result<ArmId, (String, String)> {
    ResourceId::parse(raw.trim())
        .map(|id| ArmId::from_resource_id(&id))
        .map_err(|err| (raw.to_owned(), err.to_string()))
}

fn alert_kind(alert: &Alert) -> AlertKind {
    match &alert.essentials.monitoring_service {
        Some(
            MonitoringService::LogAnalytics
            | MonitoringService::ApplicationInsights
            | MonitoringService::LogAlertsV2
            | MonitoringService::SimpleLogAlert,
        ) => AlertKind::Log,
        Some(MonitoringService::CostAlerts) => AlertKind::Cost,
        _ => AlertKind::Other,
    }
}

/// At most this many distinct values are taken from one search-result column.
const MAX_RESULT_VALUES: usize = 50;

/// `(column, value)` pairs of the highest-priority resource-naming column in a log alert v1's
/// embedded search results: before scheduledQueryRules API 2021-08-01, Azure derived the CIs
/// from result columns (`_ResourceId`, `ResourceId`, `Resource`, `Computer`), not dimensions.
fn search_result_columns(alert: &Alert) -> Vec<(String, String)> {
    let (AlertContext::LogAnalyticsV1(context) | AlertContext::ApplicationInsightsV1(context)) =
        &alert.alert_context
    else {
        return Vec::new();
    };
    let Some(results) = &context.search_results else {
        return Vec::new();
    };
    let tables = results
        .get("tables")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut best: Option<(u8, String, Vec<String>)> = None;
    for table in tables {
        let columns = table
            .get("columns")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (index, column) in columns.iter().enumerate() {
            let Some(name) = column.get("name").and_then(Value::as_str) else {
                continue;
            };
            let Some(priority) = dimension_priority(name) else {
                continue;
            };
            if best.as_ref().is_some_and(|(p, _, _)| *p < priority) {
                continue;
            }
            let rows = table
                .get("rows")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut values: Vec<String> = match best.take() {
                Some((p, _, values)) if p == priority => values,
                _ => Vec::new(),
            };
            for row in rows {
                let Some(value) = row.get(index).and_then(Value::as_str) else {
                    continue;
                };
                let value = value.trim();
                if !value.is_empty()
                    && values.len() < MAX_RESULT_VALUES
                    && !values.iter().any(|v| v == value)
                {
                    values.push(value.to_owned());
                }
            }
            best = Some((priority, name.to_owned(), values));
        }
    }
    best.map(|(_, name, values)| values.into_iter().map(|v| (name.clone(), v)).collect())
        .unwrap_or_default()
}

fn facts(alert: &Alert) -> AlertFacts {
    let target_ids = alert
        .essentials
        .alert_target_ids
        .iter()
        .flatten()
        .filter(|raw| !raw.trim().is_empty())
        .map(|raw| parse_id(raw))
        .collect();
    let mut named: Vec<(String, String)> = alert
        .resource_dimensions()
        .into_iter()
        .map(|d| (d.name, d.value))
        .collect();
    if named.is_empty() {
        named = search_result_columns(alert);
    }
    let dimensions = named
        .into_iter()
        .map(|(name, value)| match dimension_priority(&name) {
            Some(0 | 1) => Dimension::ResourceId {
                value: parse_id(&value),
                dimension: name,
            },
            _ => Dimension::Name {
                dimension: name,
                value,
            },
        })
        .collect();
    AlertFacts {
        kind: alert_kind(alert),
        target_ids,
        dimensions,
        configuration_items: alert.configuration_items().to_vec(),
    }
}

impl Binder {
    /// Binds an alert's targets to CIs: one [`Binding`] whose `primary` is the first target
    /// that bound (or the fallback CI) and whose `affected` are the other bound CIs.
    ///
    /// Never fails: lookup failures, timeouts and unknown targets end up in
    /// [`Binding::unmatched`] with a reason. Waits at most the configured deadline. Needs a
    /// Tokio runtime for lookups (without one, lookups are reported as unmatched).
    pub async fn bind(&self, alert: &Alert) -> Binding {
        self.bind_candidates(Candidates::collect(facts(alert)))
            .await
    }

    /// Fan-out mode (one work item per configuration item): one [`Binding`] per distinct bound
    /// CI, each with that CI as `primary` and no `affected`. The unmatched targets are reported
    /// on the first binding only. When nothing bound, a single binding as [`bind`](Self::bind)
    /// gives it (fallback CI or none), so the result is never empty.
    pub async fn bind_each(&self, alert: &Alert) -> Vec<Binding> {
        self.bind_each_candidates(Candidates::collect(facts(alert)))
            .await
    }
}
