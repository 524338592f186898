//! parse -> serialize -> parse gives equal values, and no member is lost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use secure_export_schema::{Alert, AlertContext};
use serde_json::{Value, json};
use support::{FRAGMENTS, assert_preserved, complete_payload, fixtures};

fn round_trip(name: &str, bytes: &[u8]) -> (Alert, Alert, Value) {
    let first = Alert::from_slice(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = serde_json::to_vec(&first).unwrap();
    let second = Alert::from_slice(&out).unwrap_or_else(|e| panic!("{name} (re-parse): {e}"));
    (first, second, serde_json::from_slice(&out).unwrap())
}

#[test]
fn common_fixtures_round_trip_without_loss() {
    for (name, bytes) in fixtures("") {
        let (first, second, out) = round_trip(&name, &bytes);
        assert_eq!(first, second, "{name}");
        let input: Value = serde_json::from_slice(&bytes).unwrap();
        assert_preserved(&input, &out, &name);
    }
}

#[test]
fn complete_fragment_payloads_round_trip_without_loss() {
    for (file, service, signal, _) in FRAGMENTS {
        let bytes = complete_payload(file, service, signal);
        let (first, second, out) = round_trip(file, &bytes);
        assert_eq!(first, second, "{file}");
        let input: Value = serde_json::from_slice(&bytes).unwrap();
        assert_preserved(&input, &out, file);
    }
}

#[test]
fn legacy_fixtures_round_trip_through_the_common_form() {
    for (name, bytes) in fixtures("legacy") {
        let (first, second, out) = round_trip(&name, &bytes);
        assert_eq!(first.essentials, second.essentials, "{name}");
        assert_eq!(first.alert_context, second.alert_context, "{name}");
        assert_eq!(first.custom_properties, second.custom_properties, "{name}");
        assert_eq!(out["schemaId"], "azureMonitorCommonAlertSchema", "{name}");
    }
}

#[test]
fn unknown_members_survive_at_every_level() {
    let input = json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "topLevelExtra": {"a": [1, 2, 3]},
        "data": {
            "dataExtra": true,
            "essentials": {
                "monitorCondition": "Fired",
                "monitoringService": "Platform",
                "alertRuleID": "/subscriptions/s/resourceGroups/rg/providers/microsoft.insights/metricAlerts/r",
                "alertTargetIds": ["/subscriptions/s"],
                "brandNewEssential": {"nested": "x"}
            },
            "alertContext": {
                "conditionType": "SingleResourceMultipleMetricCriteria",
                "futureMember": 42,
                "condition": {
                    "windowSize": "PT1M",
                    "allOf": [{"metricName": "m", "newCriterionField": [null, "y"]}],
                    "newConditionField": "z"
                }
            },
            "customProperties": {"k": "v"}
        }
    });
    let bytes = serde_json::to_vec(&input).unwrap();
    let (first, second, out) = round_trip("inline", &bytes);
    assert_eq!(first, second);
    assert!(first.warnings().is_empty(), "{:?}", first.warnings());
    assert_eq!(
        first
            .essentials
            .alert_rule_id
            .as_deref()
            .map(|s| s.ends_with("/r")),
        Some(true)
    );
    assert_eq!(
        first.essentials.alert_target_ids.as_ref().map(Vec::len),
        Some(1)
    );
    assert!(first.essentials.extra.contains_key("brandNewEssential"));
    assert_eq!(first.extra()["topLevelExtra"], json!({"a": [1, 2, 3]}));
    assert_eq!(first.data_extra()["dataExtra"], json!(true));
    let AlertContext::MetricStatic(ctx) = &first.alert_context else {
        panic!()
    };
    assert_eq!(ctx.extra["futureMember"], json!(42));
    assert_preserved(&input, &out, "inline");
}

#[test]
fn unknown_context_round_trips_verbatim() {
    let input = json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {"monitorCondition": "Resolved", "monitoringService": "Quantum Monitor"},
            "alertContext": {"anything": [1, {"goes": null}]},
            "customProperties": null
        }
    });
    let (first, second, out) = round_trip("unknown", &serde_json::to_vec(&input).unwrap());
    assert_eq!(first, second);
    assert_eq!(first.context_kind(), "unknown");
    assert_eq!(out["data"]["alertContext"], input["data"]["alertContext"]);
    assert_eq!(
        out["data"]["essentials"]["monitoringService"],
        "Quantum Monitor"
    );
}

/// Inputs found by `fuzz/` that once broke an invariant. After one round trip,
/// serialization is a fixpoint (the first round may normalise duplicate keys: the typed
/// decoder sees every occurrence, an `Unknown` context keeps only the last).
#[test]
fn fuzz_regressions_round_trip() {
    let dir = support::fixtures_dir().join("../regressions");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.display().to_string();
        if let Ok(first) = Alert::from_slice(&bytes) {
            let out = serde_json::to_vec(&first).unwrap();
            let second = Alert::from_slice(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(first.essentials, second.essentials, "{name}");
            let out2 = serde_json::to_vec(&second).unwrap();
            let third = Alert::from_slice(&out2).unwrap();
            assert_eq!(second, third, "{name}");
            assert_eq!(out2, serde_json::to_vec(&third).unwrap(), "{name}");
        }
    }
}

#[test]
fn duplicate_keys_in_a_context_are_normalised_once() {
    // The first `DetectedValue` has a type no model accepts for it, the last one is fine.
    let body = br#"{"schemaId":"azureMonitorCommonAlertSchema","data":{
        "essentials":{"monitorCondition":"Fired","monitoringService":"SmartDetector"},
        "alertContext":{"DetectedValue":[1],"DetectedValue":"0.45 sec"}}}"#;
    let first = Alert::from_slice(body).unwrap();
    assert_eq!(first.context_kind(), "unknown");
    assert_eq!(first.warnings().len(), 1);
    let second = Alert::from_slice(&serde_json::to_vec(&first).unwrap()).unwrap();
    assert_eq!(second.context_kind(), "smart_detector");
    let third = Alert::from_slice(&serde_json::to_vec(&second).unwrap()).unwrap();
    assert_eq!(second, third);
}

#[test]
fn floats_round_trip_exactly() {
    for n in [
        "4.4444444444444444e+113",
        "7.727",
        "1e-300",
        "0.30000000000000004",
        "123456789012345678",
    ] {
        let body = format!(
            r#"{{"schemaId":"azureMonitorCommonAlertSchema","data":{{"essentials":{{"monitorCondition":"Fired","n":{n}}}}}}}"#
        );
        let first = Alert::from_slice(body.as_bytes()).unwrap();
        let second = Alert::from_slice(&serde_json::to_vec(&first).unwrap()).unwrap();
        assert_eq!(
            first.essentials.extra["n"], second.essentials.extra["n"],
            "{n}"
        );
    }
}
