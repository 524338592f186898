//! Fuzzes the legacy (non-common-schema) payload conversion: metric alert v2, log alert v1
//! (Log Analytics and Application Insights), activity log, budget notification and classic
//! metric alerts. The converters are internal to `secure-export-schema`; they are reached the
//! way the receiver reaches them, through `Alert::from_slice` (the bytes as they come) and
//! `Alert::from_value`, and the JSON input is also put under the `data` member of each
//! `schemaId`-dispatched legacy envelope, so every converter sees every seed's data.
//!
//! Invariants: no panic; a converted alert records the legacy schema it came from (the one the
//! envelope names), serializes as a common-schema document that parses again (as common
//! schema, same essentials), and from then on serialization is a fixpoint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secure_export_schema::{Alert, COMMON_SCHEMA_ID, SourceSchema};
use serde_json::{Value, json};

const ENVELOPES: [(&str, SourceSchema); 4] = [
    ("AzureMonitorMetricAlert", SourceSchema::MetricAlertV2),
    ("Microsoft.Insights/activityLogs", SourceSchema::ActivityLog),
    (
        "Microsoft.Insights/LogAlert",
        SourceSchema::LogAlertV1ApplicationInsights,
    ),
    ("AIP Budget Notification", SourceSchema::BudgetNotification),
];

fuzz_target!(|data: &[u8]| {
    if let Ok(alert) = Alert::from_slice(data) {
        check(&alert, None);
    }
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let inner = value.get("data").cloned().unwrap_or_else(|| value.clone());
    if let Ok(alert) = Alert::from_value(value) {
        check(&alert, None);
    }
    for (schema_id, source) in ENVELOPES {
        let wrapped = json!({ "schemaId": schema_id, "data": inner.clone() });
        if let Ok(alert) = Alert::from_value(wrapped) {
            check(&alert, Some(source));
        }
    }
});

fn check(alert: &Alert, expected: Option<SourceSchema>) {
    let source = alert.source_schema();
    if source == SourceSchema::CommonAlertSchema {
        return; // Not a conversion (an envelope whose data had essentials).
    }
    if let Some(expected) = expected {
        assert_eq!(source, expected, "converted as the wrong legacy schema");
    }
    let _ = alert.target_resource_ids();
    let _ = alert.resource_dimensions();
    let _ = alert.event_time();
    let _ = alert.context_kind();
    let _ = alert.subscription_ids();
    let out = serde_json::to_value(alert).expect("a converted alert serializes");
    assert_eq!(
        out["schemaId"], COMMON_SCHEMA_ID,
        "serialized in another schema"
    );
    let bytes = serde_json::to_vec(&out).expect("serializes to bytes");
    let second = Alert::from_slice(&bytes).expect("a converted alert parses again");
    assert_eq!(second.source_schema(), SourceSchema::CommonAlertSchema);
    assert_eq!(
        second.essentials, alert.essentials,
        "essentials changed in the round trip"
    );
    let out2 = serde_json::to_vec(&second).expect("serializes again");
    let third = Alert::from_slice(&out2).expect("parses a third time");
    assert_eq!(third, second);
    assert_eq!(
        out2,
        serde_json::to_vec(&third).expect("serializes a third time")
    );
}
