//! Every documented sample parses, with the fields that matter asserted per alert type.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use chrono::{TimeZone, Utc};
use secure_export_schema::{
    Alert, AlertContext, MonitorCondition, MonitoringService, Severity, SignalType, SourceSchema,
    StringOrNumber,
};
use support::{FRAGMENTS, complete_payload, fixture, fixtures};

fn parse(path: &str) -> Alert {
    Alert::from_slice(&fixture(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_complete_fixture_parses_without_warnings() {
    for (name, bytes) in fixtures("") {
        let alert = Alert::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            alert.source_schema(),
            SourceSchema::CommonAlertSchema,
            "{name}"
        );
        assert_ne!(
            alert.context_kind(),
            "unknown",
            "{name}: {:?}",
            alert.warnings()
        );
        assert!(
            alert.warnings().is_empty(),
            "{name}: {:?}",
            alert.warnings()
        );
        assert!(alert.event_time().is_some(), "{name}");
    }
}

#[test]
fn every_context_fragment_parses_inside_a_complete_payload() {
    assert_eq!(
        FRAGMENTS.len(),
        fixtures("alert-context").len(),
        "every fragment is listed"
    );
    for (file, service, signal, kind) in FRAGMENTS {
        let alert = Alert::from_slice(&complete_payload(file, service, signal))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            alert.context_kind(),
            *kind,
            "{file}: {:?}",
            alert.warnings()
        );
        assert!(
            alert.warnings().is_empty(),
            "{file}: {:?}",
            alert.warnings()
        );
        assert_eq!(alert.essentials.severity, Some(Severity::Sev2));
        assert_eq!(alert.configuration_items(), ["vm1"]);
        assert_eq!(alert.target_resource_ids()[0].name(), Some("vm1"));
    }
}

#[test]
fn every_legacy_fixture_converts() {
    for (name, bytes) in fixtures("legacy") {
        let alert = Alert::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_ne!(
            alert.source_schema(),
            SourceSchema::CommonAlertSchema,
            "{name}"
        );
        assert!(alert.essentials.monitoring_service.is_some(), "{name}");
    }
}

#[test]
fn metric_static_resolved() {
    let alert = parse("metric-static-resolved.json");
    let e = &alert.essentials;
    assert_eq!(e.severity, Some(Severity::Sev3));
    assert_eq!(e.monitor_condition, MonitorCondition::Resolved);
    assert_eq!(e.monitoring_service, Some(MonitoringService::Platform));
    assert_eq!(e.signal_type, Some(SignalType::Metric));
    assert_eq!(
        e.alert_rule_id.as_deref(),
        Some(
            "/subscriptions/<subscription ID>/resourceGroups/<resource-group>/providers/microsoft.insights/metricAlerts/WCUS-R2-Gen2"
        )
    );
    assert_eq!(alert.configuration_items(), ["wcus-r2-gen2"]);
    let targets = alert.target_resource_ids();
    assert_eq!(targets.len(), 1);
    assert_eq!(
        targets[0].resource_type().as_deref(),
        Some("microsoft.compute/virtualmachines")
    );
    assert_eq!(targets[0].resource_group(), Some("pipelinealertrg"));
    let fired = Utc.with_ymd_and_hms(2019, 3, 22, 13, 58, 24).unwrap()
        + chrono::Duration::nanoseconds(371_321_300);
    assert_eq!(e.fired_date_time, Some(fired));
    let resolved = Utc.with_ymd_and_hms(2019, 3, 22, 14, 3, 16).unwrap()
        + chrono::Duration::nanoseconds(224_631_300);
    assert_eq!(e.resolved_date_time, Some(resolved));
    assert_eq!(alert.event_time(), Some(resolved));
    let custom = alert.custom_properties.as_ref().unwrap();
    assert_eq!(custom.get("Key1").and_then(|v| v.as_str()), Some("Value1"));
    let AlertContext::MetricStatic(ctx) = &alert.alert_context else {
        panic!(
            "expected a static metric context, got {}",
            alert.context_kind()
        );
    };
    let criterion = &ctx.condition.as_ref().unwrap().all_of.as_ref().unwrap()[0];
    assert_eq!(criterion.metric_name.as_deref(), Some("Percentage CPU"));
    assert_eq!(
        criterion
            .threshold
            .as_ref()
            .and_then(StringOrNumber::as_f64),
        Some(25.0)
    );
    assert_eq!(criterion.metric_value, Some(7.727));
    let dims = alert.resource_dimensions();
    assert_eq!(dims.len(), 1);
    assert_eq!(dims[0].name, "ResourceId");
}

#[test]
fn metric_2020_sample_without_configuration_items() {
    let alert = parse("metric-static-resolved-2020-no-configurationitems.json");
    assert!(alert.essentials.configuration_items.is_none());
    assert!(alert.configuration_items().is_empty());
    assert!(alert.custom_properties.is_none());
    assert_eq!(
        alert.essentials.monitor_condition,
        MonitorCondition::Resolved
    );
}

#[test]
fn metric_dynamic_and_availability() {
    let alert = parse("test-action-metric-dynamic-fired.json");
    let AlertContext::MetricDynamic(ctx) = &alert.alert_context else {
        panic!("{}", alert.context_kind());
    };
    let c = &ctx.condition.as_ref().unwrap().all_of.as_ref().unwrap()[0];
    assert!(c.alert_sensitivity.is_some());
    assert!(c.failing_periods.is_some());
    assert_eq!(alert.essentials.severity, Some(Severity::Sev4));
    assert_eq!(alert.configuration_items(), ["test-storageAccount"]);

    let alert = parse("test-action-webtest-availability-fired.json");
    let AlertContext::MetricAvailability(ctx) = &alert.alert_context else {
        panic!("{}", alert.context_kind());
    };
    let c = &ctx.condition.as_ref().unwrap().all_of.as_ref().unwrap()[0];
    assert!(c.web_test_name.is_some());
    assert_eq!(c.metric_namespace, None);
}

#[test]
fn log_alerts_v2_with_resource_id_dimension() {
    let alert = parse("log-alert-v2-fired.json");
    assert_eq!(
        alert.essentials.monitoring_service,
        Some(MonitoringService::LogAlertsV2)
    );
    assert_eq!(alert.essentials.signal_type, Some(SignalType::Log));
    assert_eq!(alert.context_kind(), "log_alerts_v2");
    let dims = alert.resource_dimensions();
    assert!(!dims.is_empty());
    assert_eq!(dims[0].name, "ResourceId");
    assert!(
        dims[0]
            .value
            .to_ascii_lowercase()
            .contains("/providers/microsoft.compute/virtualmachines/")
    );
    let fired = alert.essentials.fired_date_time.unwrap();
    assert_eq!(fired.timestamp_subsec_nanos(), 996_450_000);
}

#[test]
fn log_analytics_v1_test_action() {
    let alert = parse("test-action-log-alert-v1-metric-measurement-fired.json");
    assert_eq!(
        alert.essentials.alert_context_version.as_deref(),
        Some("1.1")
    );
    assert_eq!(
        alert.essentials.configuration_items.as_deref(),
        Some(&[][..])
    );
    let AlertContext::LogAnalyticsV1(ctx) = &alert.alert_context else {
        panic!("{}", alert.context_kind());
    };
    assert!(ctx.search_query.is_some());
    assert!(ctx.workspace_id.is_some());
    let alert = parse("test-action-log-alert-v1-number-of-results-fired.json");
    assert_eq!(alert.configuration_items(), ["test-computer"]);
}

#[test]
fn activity_log_administrative_test_action() {
    let alert = parse("test-action-activity-log-administrative-fired.json");
    assert_eq!(alert.essentials.signal_type, Some(SignalType::ActivityLog));
    let AlertContext::ActivityLogAdministrative(ctx) = &alert.alert_context else {
        panic!("{}", alert.context_kind());
    };
    assert!(ctx.operation_name.is_some());
    assert!(ctx.event_timestamp.is_some());
    assert!(ctx.activity_log_event_description.is_some());
    assert_eq!(alert.configuration_items(), ["test-VM"]);
    // The alert id is a rule id here; it must still be kept verbatim.
    assert!(
        alert
            .essentials
            .alert_id
            .as_deref()
            .unwrap()
            .contains("activityLogAlerts")
    );
}

#[test]
fn service_health_test_action_has_numeric_enums_and_array_services() {
    let alert = parse("test-action-service-health-fired.json");
    assert_eq!(alert.essentials.signal_type, Some(SignalType::ActivityLog));
    assert!(alert.essentials.configuration_items.is_none());
    let targets = alert.target_resource_ids();
    assert!(targets[0].is_subscription_only());
    let AlertContext::ServiceHealth(ctx) = &alert.alert_context else {
        panic!("{}", alert.context_kind());
    };
    assert_eq!(
        ctx.level.as_ref().and_then(StringOrNumber::as_f64),
        Some(3.0)
    );
    assert_eq!(
        ctx.event_source.as_ref().and_then(StringOrNumber::as_f64),
        Some(2.0)
    );
    let props = ctx.properties.as_ref().unwrap();
    let services = props.impacted_services.as_ref().unwrap();
    assert!(services.encoded.is_none());
    assert_eq!(
        services.services[0].service_name.as_deref(),
        Some("AzureServiceName")
    );
    assert_eq!(props.stage.as_deref(), Some("Resolved"));
    // Stage says Resolved but the alert itself fired: activity log alerts are stateless.
    assert_eq!(alert.essentials.monitor_condition, MonitorCondition::Fired);
}

#[test]
fn service_health_fragment_has_string_encoded_services() {
    for file in ["servicehealth.json", "servicehealth-numeric-enums.json"] {
        let alert =
            Alert::from_slice(&complete_payload(file, "ServiceHealth", "Activity Log")).unwrap();
        let AlertContext::ServiceHealth(ctx) = &alert.alert_context else {
            panic!("{file}: {}", alert.context_kind());
        };
        let props = ctx.properties.as_ref().unwrap();
        let services = props.impacted_services.as_ref().unwrap();
        assert!(services.encoded.is_some(), "{file}");
        assert_eq!(
            services.services[0].service_name.as_deref(),
            Some("Azure Synapse Analytics")
        );
        let region = &services.services[0].impacted_regions.as_ref().unwrap()[0];
        assert_eq!(region.region_name.as_deref(), Some("East US"));
        assert_eq!(props.incident_type.as_deref(), Some("Maintenance"));
    }
}

#[test]
fn resource_health_smart_detector_and_budgets() {
    let alert = parse("test-action-resource-health-fired.json");
    assert_eq!(
        alert.essentials.monitoring_service,
        Some(MonitoringService::ResourceHealth)
    );
    let AlertContext::ResourceHealth(ctx) = &alert.alert_context else {
        panic!("{}", alert.context_kind());
    };
    assert!(
        ctx.properties
            .as_ref()
            .unwrap()
            .current_health_status
            .is_some()
    );

    let alert = parse("test-action-smart-detector-fired.json");
    let AlertContext::SmartDetector(ctx) = &alert.alert_context else {
        panic!("{}", alert.context_kind());
    };
    assert!(ctx.smart_detector_name.is_some());

    for file in [
        "test-action-budget-alert.json",
        "test-action-cost-budget-actual.json",
        "test-action-forecasted-budget.json",
    ] {
        let alert = parse(file);
        let e = &alert.essentials;
        assert_eq!(
            e.monitoring_service,
            Some(MonitoringService::CostAlerts),
            "{file}"
        );
        assert_eq!(e.severity, None, "{file}");
        assert_eq!(e.signal_type, None, "{file}");
        assert_eq!(e.alert_rule, None, "{file}");
        assert!(alert.target_resource_ids().is_empty(), "{file}");
        assert_eq!(alert.configuration_items(), ["budgets"], "{file}");
        let AlertContext::CostAlerts(ctx) = &alert.alert_context else {
            panic!("{file}: {}", alert.context_kind());
        };
        assert!(
            ctx.alert_data.as_ref().unwrap().budget_name.is_some(),
            "{file}"
        );
    }
}

#[test]
fn fragment_specific_fields() {
    let alert =
        Alert::from_slice(&complete_payload("prometheus.json", "Prometheus", "Metric")).unwrap();
    let AlertContext::Prometheus(ctx) = &alert.alert_context else {
        panic!()
    };
    assert_eq!(ctx.expression.as_deref(), Some("sql_up > 0"));
    assert_eq!(ctx.for_duration.as_deref(), Some("PT2M"));

    let alert = Alert::from_slice(&complete_payload(
        "simple-log-alert.json",
        "Simple Log Alert",
        "Log",
    ))
    .unwrap();
    let AlertContext::SimpleLogAlert(ctx) = &alert.alert_context else {
        panic!()
    };
    let crit = &ctx.condition.as_ref().unwrap().all_of.as_ref().unwrap()[0];
    assert_eq!(crit.event.as_ref().unwrap()[0].len(), 5);
    assert!(crit.dimensions.is_none());

    let alert = Alert::from_slice(&complete_payload(
        "log-analytics-v1.json",
        "Log Analytics",
        "Log",
    ))
    .unwrap();
    let dims = alert.resource_dimensions();
    assert_eq!(dims.len(), 1);
    assert_eq!(
        (dims[0].name.as_str(), dims[0].value.as_str()),
        ("Computer", "INC-Gen2Alert")
    );

    let alert = Alert::from_slice(&complete_payload(
        "activity-log-autoscale.json",
        "Activity Log - Autoscale",
        "Activity Log",
    ))
    .unwrap();
    let AlertContext::ActivityLogAutoscale(ctx) = &alert.alert_context else {
        panic!()
    };
    assert!(
        ctx.properties
            .as_ref()
            .unwrap()
            .contains_key("newInstancesCount")
    );
}

#[test]
fn legacy_conversions_keep_the_important_fields() {
    let alert = parse("legacy/metric-alert-static-activated.json");
    assert_eq!(alert.source_schema(), SourceSchema::MetricAlertV2);
    assert_eq!(alert.essentials.severity, Some(Severity::Sev3));
    assert_eq!(alert.context_kind(), "metric_static");
    assert_eq!(alert.configuration_items(), ["test-storageAccount"]);
    assert_eq!(alert.custom_properties.as_ref().unwrap().len(), 2);
    assert!(alert.essentials.fired_date_time.is_some());

    let alert = parse("legacy/metric-alert-dynamic-activated.json");
    assert_eq!(alert.context_kind(), "metric_dynamic");

    let alert = parse("legacy/log-alert-v1-log-analytics-webhook-2018.json");
    assert_eq!(alert.source_schema(), SourceSchema::LogAlertV1);
    assert_eq!(alert.essentials.severity, Some(Severity::Sev2)); // "Warning"
    assert_eq!(alert.context_kind(), "log_analytics_v1");

    let alert = parse("legacy/log-alert-v1-application-insights-webhook-2018.json");
    assert_eq!(
        alert.source_schema(),
        SourceSchema::LogAlertV1ApplicationInsights
    );
    assert_eq!(alert.context_kind(), "application_insights_v1");

    let alert = parse("legacy/log-alert-v1-number-of-results.json");
    assert_eq!(alert.essentials.severity, Some(Severity::Sev3));
    assert_eq!(alert.target_resource_ids().len(), 1);

    let alert = parse("legacy/activity-log-servicehealth.json");
    assert_eq!(alert.source_schema(), SourceSchema::ActivityLog);
    assert_eq!(alert.context_kind(), "service_health");
    assert!(alert.target_resource_ids()[0].is_subscription_only());

    let alert = parse("legacy/activity-log-administrative.json");
    assert_eq!(alert.context_kind(), "activity_log_administrative");
    assert_eq!(alert.configuration_items(), ["test-VM"]);
    assert_eq!(alert.essentials.monitor_condition, MonitorCondition::Fired);

    let alert = parse("legacy/activity-log-administrative-2017-redacted.json");
    assert_eq!(alert.context_kind(), "activity_log_administrative");

    // Recommendation events have no common-schema shape: kept, with a warning.
    let alert = parse("legacy/activity-log-recommendation-2017.json");
    assert_eq!(alert.context_kind(), "unknown");
    assert_eq!(alert.warnings().len(), 1);

    let alert = parse("legacy/budget-notification.json");
    assert_eq!(alert.source_schema(), SourceSchema::BudgetNotification);
    assert_eq!(alert.context_kind(), "cost_alerts");

    let alert = parse("legacy/classic-metric-alert-activated.json");
    assert_eq!(alert.source_schema(), SourceSchema::ClassicMetricAlert);
    assert_eq!(alert.context_kind(), "metric_static");
    assert_eq!(alert.essentials.alert_rule.as_deref(), Some("ruleName1"));
}

#[test]
fn from_value_matches_from_slice() {
    for (name, bytes) in fixtures("").into_iter().chain(fixtures("legacy")) {
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            Alert::from_value(value).unwrap(),
            Alert::from_slice(&bytes).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn event_time_follows_the_condition() {
    let body = |condition: &str, resolved: Option<&str>| {
        let mut essentials = serde_json::json!({
            "monitorCondition": condition,
            "monitoringService": "Platform",
            "firedDateTime": "2024-01-01T00:00:00Z",
        });
        if let Some(r) = resolved {
            essentials["resolvedDateTime"] = serde_json::json!(r);
        }
        serde_json::to_vec(&serde_json::json!({
            "schemaId": "azureMonitorCommonAlertSchema",
            "data": {"essentials": essentials, "alertContext": {"conditionType": "DynamicThresholdCriteria"}}
        }))
        .unwrap()
    };
    let fired = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let resolved = Utc.with_ymd_and_hms(2024, 1, 1, 0, 5, 0).unwrap();
    let a = Alert::from_slice(&body("Fired", Some("2024-01-01T00:05:00Z"))).unwrap();
    assert_eq!(a.event_time(), Some(fired));
    let a = Alert::from_slice(&body("Resolved", Some("2024-01-01T00:05:00.0000000Z"))).unwrap();
    assert_eq!(a.event_time(), Some(resolved));
    // Azure documents resolvedDateTime as metric-only: fall back to the fired time.
    let a = Alert::from_slice(&body("Resolved", None)).unwrap();
    assert_eq!(a.event_time(), Some(fired));
    let a = Alert::from_slice(&body("Acknowledged", None)).unwrap();
    assert_eq!(
        a.essentials.monitor_condition,
        MonitorCondition::Unknown("Acknowledged".to_owned())
    );
}

#[test]
fn resource_dimensions_follow_azure_priority() {
    let body = serde_json::to_vec(&serde_json::json!({
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {"monitorCondition": "Fired", "monitoringService": "Log Alerts V2"},
            "alertContext": {
                "conditionType": "LogQueryCriteria",
                "condition": {"allOf": [
                    {"dimensions": [
                        {"name": "Computer", "value": "vm1"},
                        {"name": "Region", "value": "westeurope"},
                        {"name": "Resource", "value": "vm1"},
                        {"name": "_ResourceId", "value": "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm1"}
                    ]},
                    {"dimensions": [
                        {"name": "Computer", "value": "vm1"},
                        {"name": "Computer", "value": ""},
                        {"name": "ResourceId", "value": 42}
                    ]}
                ]}
            }
        }
    }))
    .unwrap();
    let alert = Alert::from_slice(&body).unwrap();
    let dims: Vec<(String, String)> = alert
        .resource_dimensions()
        .into_iter()
        .map(|d| (d.name, d.value))
        .collect();
    assert_eq!(
        dims,
        vec![
            (
                "_ResourceId".to_owned(),
                "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm1".to_owned()
            ),
            ("ResourceId".to_owned(), "42".to_owned()),
            ("Resource".to_owned(), "vm1".to_owned()),
            ("Computer".to_owned(), "vm1".to_owned()),
        ]
    );
}
