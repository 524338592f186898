//! Malformed, hostile and oversized bodies: each is a clear error naming the JSON path (or
//! a warning when the alert itself is usable), never a panic or a stack overflow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use secure_export_schema::{Alert, AlertContext, MAX_PAYLOAD_BYTES, SchemaError};
use serde_json::{Value, json};
use support::fixture;

fn err(bytes: &[u8]) -> SchemaError {
    match Alert::from_slice(bytes) {
        Ok(alert) => panic!("expected an error, got {alert:?}"),
        Err(e) => e,
    }
}

fn with_essentials(essentials: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {"essentials": essentials, "alertContext": {}}
    }))
    .unwrap()
}

#[test]
fn truncated_json_is_a_syntax_error() {
    let full = fixture("metric-static-resolved.json");
    let full = full.trim_ascii_end();
    for cut in [0, 1, 10, full.len() / 2, full.len() - 1] {
        let e = err(&full[..cut]);
        assert!(matches!(e, SchemaError::Syntax { .. }), "cut {cut}: {e:?}");
        assert!(e.to_string().contains("malformed JSON"), "{e}");
    }
    let e = err(&full[..full.len() / 2]);
    assert!(e.path().starts_with("data"), "{}", e.path());
}

#[test]
fn trailing_garbage_and_non_objects_are_rejected() {
    let mut bytes = fixture("metric-static-resolved.json");
    bytes.extend_from_slice(b" {}");
    assert!(matches!(err(&bytes), SchemaError::Syntax { .. }));
    for body in [&b"[]"[..], b"null", b"42", b"\"alert\"", b"true"] {
        let e = err(body);
        assert_eq!(e.path(), ".", "{e}");
    }
    assert!(matches!(err(b"\xff\xfe{}"), SchemaError::Syntax { .. }));
}

#[test]
fn wrong_types_name_the_member() {
    let cases = [
        (
            json!({"monitorCondition": 7}),
            "data.essentials.monitorCondition",
        ),
        (
            json!({"monitorCondition": null}),
            "data.essentials.monitorCondition",
        ),
        (
            json!({"monitorCondition": "Fired", "severity": 3}),
            "data.essentials.severity",
        ),
        (
            json!({"monitorCondition": "Fired", "alertTargetIDs": "x"}),
            "data.essentials.alertTargetIDs",
        ),
        (
            json!({"monitorCondition": "Fired", "alertTargetIDs": ["a", 1]}),
            "data.essentials.alertTargetIDs[1]",
        ),
        (
            json!({"monitorCondition": "Fired", "firedDateTime": "yesterday"}),
            "data.essentials.firedDateTime",
        ),
        (
            json!({"monitorCondition": "Fired", "firedDateTime": 1_700_000_000}),
            "data.essentials.firedDateTime",
        ),
        (
            json!({"monitorCondition": "Fired", "configurationItems": {"a": 1}}),
            "data.essentials.configurationItems",
        ),
    ];
    for (essentials, path) in cases {
        let e = err(&with_essentials(essentials.clone()));
        assert!(
            matches!(e, SchemaError::InvalidValue { .. }),
            "{essentials}: {e:?}"
        );
        assert_eq!(e.path(), path, "{essentials}: {e}");
        assert!(e.to_string().contains(path), "{e}");
    }
    let e = err(br#"{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":[]}}"#);
    assert_eq!(e.path(), "data.essentials");
    let e = err(br#"{"schemaId":"azureMonitorCommonAlertSchema","data":"x"}"#);
    assert_eq!(e.path(), "data");
}

#[test]
fn missing_data_or_essentials_or_condition() {
    let e = err(br#"{"schemaId":"azureMonitorCommonAlertSchema"}"#);
    assert_eq!(
        e,
        SchemaError::MissingField {
            path: "data".to_owned()
        }
    );
    let e = err(br#"{"schemaId":"azureMonitorCommonAlertSchema","data":null}"#);
    assert_eq!(e.path(), "data");
    let e = err(br#"{"schemaId":"azureMonitorCommonAlertSchema","data":{"alertContext":{}}}"#);
    assert_eq!(
        e,
        SchemaError::MissingField {
            path: "data.essentials".to_owned()
        }
    );
    assert_eq!(e.to_string(), "missing required field `data.essentials`");
    let e = err(&with_essentials(json!({"alertId": "a"})));
    assert_eq!(
        e,
        SchemaError::MissingField {
            path: "data.essentials.monitorCondition".to_owned()
        }
    );
    let e = err(b"{}");
    assert_eq!(e.path(), "data");
}

#[test]
fn mismatched_context_falls_back_to_unknown_with_a_warning() {
    let body = serde_json::to_vec(&json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {"monitorCondition": "Fired", "monitoringService": "Platform"},
            "alertContext": {
                "conditionType": "SingleResourceMultipleMetricCriteria",
                "condition": {"allOf": [{"metricValue": "not a number"}]}
            }
        }
    }))
    .unwrap();
    let alert = Alert::from_slice(&body).unwrap();
    assert!(matches!(alert.alert_context, AlertContext::Unknown(_)));
    assert_eq!(alert.warnings().len(), 1);
    assert!(
        alert.warnings()[0].contains("data.alertContext.condition.allOf[0].metricValue"),
        "{:?}",
        alert.warnings()
    );

    for (context, needle) in [
        (json!("a string"), "found a string"),
        (json!({"conditionType": "FutureCriteria"}), "FutureCriteria"),
    ] {
        let body = serde_json::to_vec(&json!({
            "schemaId": "azureMonitorCommonAlertSchema",
            "data": {
                "essentials": {"monitorCondition": "Fired", "monitoringService": "Platform"},
                "alertContext": context
            }
        }))
        .unwrap();
        let alert = Alert::from_slice(&body).unwrap();
        assert_eq!(alert.context_kind(), "unknown");
        assert!(
            alert.warnings()[0].contains(needle),
            "{:?}",
            alert.warnings()
        );
    }
}

#[test]
fn malformed_target_ids_are_skipped_with_a_warning() {
    let alert = Alert::from_slice(&with_essentials(json!({
        "monitorCondition": "Fired",
        "monitoringService": "Prometheus",
        "alertTargetIDs": ["not-an-id", "/subscriptions/s1/resourceGroups/rg"]
    })))
    .unwrap();
    assert_eq!(alert.target_resource_ids().len(), 1);
    assert!(
        alert
            .warnings()
            .iter()
            .any(|w| w.contains("alertTargetIDs[0]")),
        "{:?}",
        alert.warnings()
    );
}

fn nested(depth: usize) -> String {
    let mut s = String::with_capacity(depth * 2 + 8);
    s.push_str(&"[".repeat(depth));
    s.push_str(&"]".repeat(depth));
    s
}

#[test]
fn ten_thousand_levels_of_nesting_is_an_error_not_a_stack_overflow() {
    let deep = nested(10_000);
    let deep_objects = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    // A top-level array is refused as the wrong type before any nesting is read.
    let e = err(deep.as_bytes());
    assert_eq!(e.path(), ".");
    let bodies = [
        deep_objects.clone(),
        format!(
            r#"{{"schemaId":"azureMonitorCommonAlertSchema","data":{{"essentials":{{"monitorCondition":"Fired","x":{deep}}}}}}}"#
        ),
        format!(
            r#"{{"schemaId":"azureMonitorCommonAlertSchema","data":{{"essentials":{{"monitorCondition":"Fired"}},"alertContext":{deep_objects}}}}}"#
        ),
        format!(
            r#"{{"schemaId":"azureMonitorCommonAlertSchema","data":{{"essentials":{{"monitorCondition":"Fired"}},"customProperties":{{"k":{deep}}}}}}}"#
        ),
        format!(r#"{{"top":{deep}}}"#),
        format!(
            r#"{{"schemaId":"azureMonitorCommonAlertSchema","data":{{"essentials":{{"monitorCondition":"Fired","monitoringService":"Platform"}},"alertContext":{{"condition":{deep_objects}}}}}}}"#
        ),
        format!(
            r#"{{"schemaId":"azureMonitorCommonAlertSchema","data":{{"essentials":{{"monitorCondition":"Fired","monitoringService":"Prometheus"}},"alertContext":{{"labels":{{"x":{deep}}}}}}}}}"#
        ),
    ];
    for body in bodies {
        let e = err(body.as_bytes());
        assert!(e.to_string().contains("recursion limit"), "{e}");
    }
}

#[test]
fn from_value_rejects_deep_values_without_recursing() {
    let mut v = json!(1);
    for _ in 0..200 {
        v = json!([v]);
    }
    let body = json!({"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {"monitorCondition": "Fired", "x": v}}});
    let e = Alert::from_value(body).unwrap_err();
    assert!(e.to_string().contains("nesting exceeds"), "{e}");
}

#[test]
fn fifty_megabyte_body_is_rejected_before_parsing() {
    let mut body = Vec::with_capacity(50 * 1024 * 1024);
    body.extend_from_slice(br#"{"schemaId":"azureMonitorCommonAlertSchema","data":{"pad":""#);
    body.resize(50 * 1024 * 1024 - 3, b'a');
    body.extend_from_slice(br#""}}"#);
    let e = err(&body);
    assert_eq!(
        e,
        SchemaError::TooLarge {
            size: body.len(),
            limit: MAX_PAYLOAD_BYTES
        }
    );
    assert!(e.to_string().contains("exceeds the limit"), "{e}");
    // A caller may raise the limit; the body is then parsed and fails on content instead.
    let e = Alert::from_slice_with_limit(&body, usize::MAX).unwrap_err();
    assert_eq!(e.path(), "data.essentials");
}

#[test]
fn errors_display_cleanly() {
    let e = err(&with_essentials(json!({"monitorCondition": 7})));
    assert_eq!(
        e.to_string(),
        "invalid value at `data.essentials.monitorCondition`: invalid type: integer `7`, expected a monitor condition string such as \"Fired\""
    );
}

#[test]
fn service_health_with_unreadable_impacted_services_keeps_the_alert() {
    let body = serde_json::to_vec(&json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {"monitorCondition": "Fired", "monitoringService": "ServiceHealth"},
            "alertContext": {"level": 3, "properties": {"impactedServices": "[{not json"}}
        }
    }))
    .unwrap();
    let alert = Alert::from_slice(&body).unwrap();
    assert_eq!(alert.context_kind(), "unknown");
    assert!(
        alert.warnings()[0].contains("data.alertContext.properties.impactedServices"),
        "{:?}",
        alert.warnings()
    );
    // The context is kept verbatim for the caller.
    let out = serde_json::to_value(&alert).unwrap();
    assert_eq!(
        out["data"]["alertContext"]["properties"]["impactedServices"],
        "[{not json"
    );
}

#[test]
fn unrecognised_payloads_say_what_is_missing() {
    let e = err(br#"{"schemaId":"Microsoft.Insights/somethingNew","data":{"status":"Activated"}}"#);
    assert_eq!(
        e,
        SchemaError::MissingField {
            path: "data.essentials".to_owned()
        }
    );
    let e = err(br#"{"hello":"world"}"#);
    assert_eq!(
        e,
        SchemaError::MissingField {
            path: "data".to_owned()
        }
    );
}
