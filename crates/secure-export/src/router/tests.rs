use axum::http::StatusCode;
use secure_export_aad::TokenVerifier;
use secure_export_schema::Alert;

use super::ConnectionGate;
use super::response;

const SAMPLE: &str = include_str!("../../../../examples/payloads/metric-fired.json");
const SUB: &str = "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e";

fn gate() -> ConnectionGate {
    let verifier = TokenVerifier::builder(["11111111-2222-4333-8444-555555555555"], ["api://x"])
        .build()
        .unwrap();
    ConnectionGate::new("main", verifier, ["11111111-2222-4333-8444-555555555555"])
}

fn alert() -> Alert {
    Alert::from_slice(SAMPLE.as_bytes()).unwrap()
}

#[test]
fn serves_its_tenants_case_insensitively() {
    let g = gate();
    assert!(g.serves_tenant("11111111-2222-4333-8444-555555555555"));
    assert!(
        g.serves_tenant(
            "11111111-2222-4333-8444-555555555555"
                .to_uppercase()
                .as_str()
        )
    );
    assert!(!g.serves_tenant("99999999-2222-4333-8444-555555555555"));
}

#[test]
fn no_allow_lists_accept_everything() {
    assert_eq!(gate().authorize(&alert()), Ok(()));
}

#[test]
fn subscription_allow_list() {
    assert_eq!(
        gate()
            .with_allowed_subscriptions([SUB.to_uppercase()])
            .authorize(&alert()),
        Ok(())
    );
    let err = gate()
        .with_allowed_subscriptions(["00000000-0000-0000-0000-000000000000"])
        .authorize(&alert())
        .unwrap_err();
    assert!(err.contains(SUB), "{err}");
}

#[test]
fn alert_without_any_subscription_is_refused_when_a_list_is_set() {
    let mut v: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
    v["data"]["essentials"]["alertTargetIDs"] = serde_json::json!([]);
    v["data"]["essentials"]["alertId"] = serde_json::json!("not-an-arm-id");
    let alert = Alert::from_value(v).unwrap();
    let err = gate()
        .with_allowed_subscriptions([SUB])
        .authorize(&alert)
        .unwrap_err();
    assert!(err.contains("names no subscription"), "{err}");
}

#[test]
fn subscription_from_the_alert_id_counts_and_unreadable_targets_are_refused() {
    let mut v: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
    v["data"]["essentials"]["alertTargetIDs"] = serde_json::json!([]);
    let alert = Alert::from_value(v.clone()).unwrap();
    assert_eq!(
        gate().with_allowed_subscriptions([SUB]).authorize(&alert),
        Ok(())
    );
    // One allowed target plus one that cannot be read must not pass.
    v["data"]["essentials"]["alertTargetIDs"] = serde_json::json!([
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
        ),
        "garbage"
    ]);
    let alert = Alert::from_value(v).unwrap();
    let err = gate()
        .with_allowed_subscriptions([SUB])
        .authorize(&alert)
        .unwrap_err();
    assert!(err.contains("garbage"), "{err}");
}

#[test]
fn rule_allow_list_matches_name_case_insensitively() {
    assert_eq!(
        gate()
            .with_allowed_rules(["TEST-METRICALERTRULE"])
            .authorize(&alert()),
        Ok(())
    );
    let err = gate()
        .with_allowed_rules(["other"])
        .authorize(&alert())
        .unwrap_err();
    assert!(err.contains("test-metricAlertRule"), "{err}");
}

#[test]
fn unauthorized_carries_the_bearer_challenge() {
    let r = response::unauthorized();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
}

#[test]
fn unavailable_has_a_whole_second_retry_after() {
    let r = response::unavailable("x", "y", std::time::Duration::from_millis(10));
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
}
