//! Reading an [`Alert`] into binding candidates, and the public `bind` entry points.

use std::collections::HashSet;

use secure_export_schema::{Alert, AlertContext, MonitoringService, ResourceId};
use serde_json::Value;

use crate::targets::{AlertKind, Candidates, Collector, IdView, Scope, dimension_priority};
use crate::{Binder, Binding};

/// Parses an ARM id and hands a view of it to `f` (the collector copies only what it keeps).
fn with_id<R>(
    raw: &str,
    f: impl FnOnce(Result<IdView<'_>, (&str, &dyn std::fmt::Display)>) -> R,
) -> R {
    match ResourceId::parse(raw.trim()) {
        Ok(id) => {
            let scope = if id.is_subscription_only() {
                Scope::Subscription
            } else if id.is_resource_group() {
                Scope::ResourceGroup
            } else {
                Scope::Resource
            };
            let resource_type = id.resource_type();
            f(Ok(IdView {
                as_received: id.as_str(),
                normalized: id.normalized(),
                name: id.name(),
                resource_type: resource_type.as_deref(),
                scope,
            }))
        }
        Err(err) => f(Err((raw, &err))),
    }
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
            let mut seen: HashSet<String> = values.iter().cloned().collect();
            for row in rows {
                if values.len() >= MAX_RESULT_VALUES {
                    break;
                }
                let Some(value) = row.get(index).and_then(Value::as_str) else {
                    continue;
                };
                let value = value.trim();
                if !value.is_empty() && !seen.contains(value) {
                    seen.insert(value.to_owned());
                    values.push(value.to_owned());
                }
            }
            best = Some((priority, name.to_owned(), values));
        }
    }
    best.map(|(_, name, values)| values.into_iter().map(|v| (name.clone(), v)).collect())
        .unwrap_or_default()
}

/// The resource-naming dimensions binding uses, `(name, value)`: those of the highest
/// priority present (`_ResourceId` > `ResourceId` > `Resource` > `Computer`, names matched
/// ignoring ASCII case), in the order received, without empty values and exact duplicates.
/// Log alerts v1 without such dimensions use the same columns of their search results.
///
/// This is [`Alert::resource_dimensions`] restricted to the best priority, de-duplicated
/// with a hash set (linear in the number of dimensions).
fn best_dimensions(alert: &Alert) -> Vec<(String, String)> {
    let dims: Vec<(&str, String)> = alert
        .alert_context
        .dimensions()
        .into_iter()
        .filter_map(|dim| match (&dim.name, &dim.value) {
            (Some(name), Some(value)) if dimension_priority(name).is_some() => {
                let value = value.to_string();
                (!value.trim().is_empty()).then_some((name.as_str(), value))
            }
            _ => None,
        })
        .collect();
    let Some(best) = dims.iter().filter_map(|(n, _)| dimension_priority(n)).min() else {
        return search_result_columns(alert);
    };
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let mut out = Vec::new();
    for (name, value) in &dims {
        if dimension_priority(name) == Some(best) && seen.insert((name, value.as_str())) {
            out.push(((*name).to_owned(), value.clone()));
        }
    }
    out
}

/// Entries examined between two yields to the scheduler while collecting candidates (about
/// a millisecond of work at most).
const YIELD_EVERY: usize = 1_000;

/// Counts examined entries and yields to the scheduler every [`YIELD_EVERY`], so collecting
/// a huge alert's candidates does not hold an async worker for the whole time.
struct Pace(usize);

impl Pace {
    async fn tick(&mut self) {
        self.0 += 1;
        if self.0.is_multiple_of(YIELD_EVERY) {
            tokio::task::yield_now().await;
        }
    }
}

/// Collects an alert's candidates, keeping at most `max` targets: ids beyond the limit are
/// parsed (to classify and de-duplicate them) but not copied. Linear in the alert's size;
/// yields every [`YIELD_EVERY`] entries.
pub(crate) async fn candidates(alert: &Alert, max: usize) -> Candidates {
    let mut pace = Pace(0);
    let mut out = Collector::new(alert_kind(alert), max);
    for raw in alert.essentials.alert_target_ids.iter().flatten() {
        if !raw.trim().is_empty() {
            with_id(raw, |id| out.target_id(id));
        }
        pace.tick().await;
    }
    for (name, value) in best_dimensions(alert) {
        match dimension_priority(&name) {
            Some(0 | 1) => with_id(&value, |id| out.dimension_id(&name, id)),
            _ => out.dimension_name(&value),
        }
        pace.tick().await;
    }
    for item in alert.configuration_items() {
        out.configuration_item(item);
        pace.tick().await;
    }
    out.finish()
}

impl Binder {
    /// Binds an alert's targets to CIs: one [`Binding`] whose `primary` is the first target
    /// that bound (or the fallback CI) and whose `affected` are the other bound CIs.
    ///
    /// Never fails: lookup failures, timeouts and unknown targets end up in
    /// [`Binding::unmatched`] with a reason, targets beyond
    /// [`max_targets`](crate::BinderBuilder::max_targets) in [`Binding::omitted`]. Waits at
    /// most the configured deadline. Needs a Tokio runtime for lookups (without one, lookups
    /// are reported as unmatched).
    pub async fn bind(&self, alert: &Alert) -> Binding {
        self.bind_candidates(candidates(alert, self.max_targets()).await)
            .await
    }

    /// Fan-out mode (one work item per configuration item): one [`Binding`] per distinct bound
    /// CI, each with that CI as `primary` and no `affected`. The unmatched and the omitted
    /// targets are reported on the first binding only. At most
    /// [`max_targets`](crate::BinderBuilder::max_targets) targets are looked up, so there are
    /// at most that many bindings. When nothing bound, a single binding as
    /// [`bind`](Self::bind) gives it (fallback CI or none), so the result is never empty.
    pub async fn bind_each(&self, alert: &Alert) -> Vec<Binding> {
        self.bind_each_candidates(candidates(alert, self.max_targets()).await)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn fixtures(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                fixtures(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }

    /// `best_dimensions` is the schema's `resource_dimensions` (quadratic) restricted to the
    /// best priority, for every corpus alert.
    #[test]
    fn best_dimensions_match_the_schema_resource_dimensions() {
        let mut paths = Vec::new();
        fixtures(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
            &mut paths,
        );
        assert!(paths.len() >= 30, "{paths:?}");
        let mut with_dimensions = 0;
        for path in paths {
            let alert = Alert::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let all = alert.resource_dimensions();
            let want: Vec<(String, String)> =
                match all.iter().filter_map(|d| dimension_priority(&d.name)).min() {
                    Some(best) => all
                        .into_iter()
                        .filter(|d| dimension_priority(&d.name) == Some(best))
                        .map(|d| (d.name, d.value))
                        .collect(),
                    None => search_result_columns(&alert),
                };
            if !want.is_empty() {
                with_dimensions += 1;
            }
            assert_eq!(best_dimensions(&alert), want, "{}", path.display());
        }
        assert!(with_dimensions >= 3, "the corpus exercises dimensions");
    }

    /// A metric alert carrying 6,000 `Computer` dimensions (each twice, in two spellings):
    /// de-duplicated linearly, bounded to the limit, the rest counted.
    #[test]
    fn thousands_of_dimensions_are_bounded() {
        let mut dimensions: Vec<serde_json::Value> = Vec::new();
        for i in 0..6_000 {
            dimensions
                .push(serde_json::json!({"name": "Computer", "value": format!("host{i:04}")}));
            dimensions
                .push(serde_json::json!({"name": "computer", "value": format!("HOST{i:04}")}));
        }
        let body = serde_json::json!({
            "schemaId": "azureMonitorCommonAlertSchema",
            "data": {
                "essentials": {
                    "monitorCondition": "Fired",
                    "monitoringService": "Platform",
                    "signalType": "Metric",
                    "alertTargetIDs": [],
                    "firedDateTime": "2024-05-01T10:00:00Z"
                },
                "alertContext": {
                    "conditionType": "SingleResourceMultipleMetricCriteria",
                    "condition": {"allOf": [{"metricName": "Heartbeat", "dimensions": dimensions}]}
                }
            }
        });
        let alert = Alert::from_slice(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(
            best_dimensions(&alert).len(),
            12_000,
            "distinct (name, value) pairs"
        );
        let c = futures::executor::block_on(candidates(&alert, 50));
        let labels: Vec<&str> = c.targets.iter().map(|t| t.label.as_str()).collect();
        let want: Vec<String> = (0..50).map(|i| format!("host{i:04}")).collect();
        assert_eq!(labels, want);
        assert_eq!(c.omitted.count, 5_950, "names compare case-insensitively");
        assert_eq!(c.omitted.targets.len(), crate::NOTE_LIST_LIMIT);
    }
}
