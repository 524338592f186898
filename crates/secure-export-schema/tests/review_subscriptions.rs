//! Security review: every alert type names the subscription it comes from, so a connection's
//! subscription allow-list can judge it (budget alerts and old log-alert webhooks used to name
//! none and were refused with 403, which Azure Monitor never retries), and an allow-list never
//! skips a target it cannot read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use secure_export_schema::Alert;
use serde_json::json;

fn fixtures() -> Vec<(String, Alert)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for sub in ["", "legacy"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let alert = Alert::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                out.push((path.display().to_string(), alert));
            }
        }
    }
    assert!(out.len() >= 30, "fixtures missing: {}", out.len());
    out
}

#[test]
fn every_fixture_names_a_subscription() {
    for (name, alert) in fixtures() {
        let subs = alert
            .subscription_ids()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!subs.is_empty(), "{name} names no subscription");
        for s in &subs {
            assert_eq!(s, &s.to_ascii_lowercase(), "{name}");
        }
    }
}

#[test]
fn budget_and_old_log_webhooks_name_their_subscription() {
    for (name, want) in [
        (
            "test-action-budget-alert.json",
            "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e",
        ),
        (
            "legacy/budget-notification.json",
            "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e",
        ),
        (
            "legacy/log-alert-v1-log-analytics-webhook-2018.json",
            "12345a-1234b-123c-123d-12345678e",
        ),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let alert = Alert::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let subs = alert.subscription_ids().unwrap();
        assert_eq!(subs.into_iter().collect::<Vec<_>>(), vec![want], "{name}");
    }
}

#[test]
fn an_unreadable_target_fails_closed() {
    let body = json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/providers/Microsoft.AlertsManagement/alerts/1",
                "alertRule": "r",
                "monitorCondition": "Fired",
                "monitoringService": "Platform",
                "firedDateTime": "2025-01-01T00:00:00Z",
                "alertTargetIDs": [
                    "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
                    "subscriptions/ffffffff-0000-0000-0000-000000000000/resourceGroups/rg"
                ]
            },
            "alertContext": {}
        }
    });
    let alert = Alert::from_value(body).unwrap();
    let err = alert.subscription_ids().unwrap_err();
    assert!(
        err.contains("alertTargetIDs") && err.contains("ffffffff"),
        "{err}"
    );
}
