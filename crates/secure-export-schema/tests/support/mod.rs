//! Shared helpers for the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

pub(crate) fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `(file name, bytes)` of every `.json` file directly in `sub` (`""` = top level).
pub(crate) fn fixtures(sub: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fixtures_dir().join(sub);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {}", dir.display());
    out
}

pub(crate) fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(path)).unwrap()
}

/// Monitoring service, signal type and expected context kind of each `alert-context/`
/// fragment.
pub(crate) const FRAGMENTS: &[(&str, &str, &str, &str)] = &[
    (
        "activity-log-administrative.json",
        "Activity Log - Administrative",
        "Activity Log",
        "activity_log_administrative",
    ),
    (
        "activity-log-autoscale.json",
        "Activity Log - Autoscale",
        "Activity Log",
        "activity_log_autoscale",
    ),
    (
        "activity-log-policy.json",
        "Activity Log - Policy",
        "Activity Log",
        "activity_log_policy",
    ),
    (
        "activity-log-security.json",
        "Activity Log - Security",
        "Activity Log",
        "activity_log_security",
    ),
    (
        "application-insights-v1.json",
        "Application Insights",
        "Log",
        "application_insights_v1",
    ),
    (
        "log-alerts-v2.json",
        "Log Alerts V2",
        "Log",
        "log_alerts_v2",
    ),
    (
        "log-analytics-v1.json",
        "Log Analytics",
        "Log",
        "log_analytics_v1",
    ),
    (
        "metric-dynamic.json",
        "Platform",
        "Metric",
        "metric_dynamic",
    ),
    ("metric-static.json", "Platform", "Metric", "metric_static"),
    (
        "metric-webtest.json",
        "Platform",
        "Metric",
        "metric_availability",
    ),
    ("prometheus.json", "Prometheus", "Metric", "prometheus"),
    (
        "resourcehealth.json",
        "Resource Health",
        "Activity Log",
        "resource_health",
    ),
    (
        "servicehealth-numeric-enums.json",
        "ServiceHealth",
        "Activity Log",
        "service_health",
    ),
    (
        "servicehealth.json",
        "ServiceHealth",
        "Activity Log",
        "service_health",
    ),
    (
        "simple-log-alert.json",
        "Simple Log Alert",
        "Log",
        "simple_log_alert",
    ),
];

/// Wraps an `alert-context/` fragment into a complete common-schema payload.
pub(crate) fn complete_payload(fragment: &str, service: &str, signal: &str) -> Vec<u8> {
    let doc: Value =
        serde_json::from_slice(&fixture(&format!("alert-context/{fragment}"))).unwrap();
    let context = doc.get("alertContext").cloned().unwrap();
    let payload = json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": "/subscriptions/11111111-2222-3333-4444-555555555555/providers/Microsoft.AlertsManagement/alerts/aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb",
                "alertRule": format!("rule-for-{fragment}"),
                "severity": "Sev2",
                "signalType": signal,
                "monitorCondition": "Fired",
                "monitoringService": service,
                "alertTargetIDs": ["/subscriptions/11111111-2222-3333-4444-555555555555/resourcegroups/rg1/providers/microsoft.compute/virtualmachines/vm1"],
                "configurationItems": ["vm1"],
                "originAlertId": "origin-1",
                "firedDateTime": "2024-05-01T10:00:00.1234567Z",
                "description": "synthetic essentials around a documented alertContext",
                "essentialsVersion": "1.0",
                "alertContextVersion": "1.0"
            },
            "alertContext": context,
            "customProperties": {"team": "sre"}
        }
    });
    serde_json::to_vec(&payload).unwrap()
}

/// Asserts that everything in `input` survives in `output`: every non-null member is
/// present with an equal value. Timestamps compare as instants, numbers as `f64`; the two
/// documented alternative key spellings and `signalType` spellings are canonicalised.
pub(crate) fn assert_preserved(input: &Value, output: &Value, path: &str) {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                if v.is_null() {
                    continue;
                }
                let key = match k.as_str() {
                    "alertRuleID" => "alertRuleId",
                    "alertTargetIds" => "alertTargetIDs",
                    other => other,
                };
                let Some(w) = b.get(key) else {
                    panic!("{path}.{k} lost on serialization");
                };
                if key == "signalType" {
                    let norm = |v: &Value| v.as_str().unwrap_or_default().replace(' ', "");
                    assert_eq!(norm(v), norm(w), "{path}.{k}");
                    continue;
                }
                assert_preserved(v, w, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: array length");
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                assert_preserved(v, w, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            assert_eq!(a.as_f64(), b.as_f64(), "{path}");
        }
        (Value::String(a), Value::String(b)) if a != b => {
            let ta = secure_export_schema::parse_timestamp(a);
            assert!(
                ta.is_some() && ta == secure_export_schema::parse_timestamp(b),
                "{path}: {a:?} != {b:?}"
            );
        }
        (a, b) => assert_eq!(a, b, "{path}"),
    }
}
