//! Every corpus alert bound against an in-memory CMDB seeded like the emulators' fixture
//! (`secure-export-emulator/fixtures/cmdb.json`), with ServiceNow matching rules: ids and
//! names compare case-insensitively, a subscription matches `/subscriptions/<id>` and its bare id.
//! This pins the binder's reading of every alert type independently of any backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{FIXTURES, InMemoryCmdb, expected, load_alert, render_table, summary};
use secure_export_cmdb::{Binder, CiRecord, CiSource, Strategy};

#[tokio::test]
async fn every_corpus_alert_binds_to_the_expected_ci() {
    let cmdb = Arc::new(InMemoryCmdb::seeded());
    let binder = Binder::builder(cmdb.clone()).build().unwrap();
    let mut rows = Vec::new();
    for fixture in FIXTURES {
        let binding = binder.bind(&load_alert(fixture)).await;
        rows.push((fixture.to_string(), binding));
    }
    println!("{}", render_table(&rows));
    for (fixture, binding) in &rows {
        let (want_id, want_source) = expected(fixture, common::Backend::ServiceNow);
        let (id, source, _) = summary(binding);
        assert_eq!(
            (id.as_str(), source),
            (want_id, want_source),
            "{fixture}: {binding:?}"
        );
        if binding.primary.is_none() {
            assert!(
                !binding.unmatched.is_empty(),
                "{fixture}: an unbound alert says why"
            );
        }
    }
}

#[tokio::test]
async fn log_alert_binds_the_computer_not_the_workspace() {
    let binder = Binder::builder(Arc::new(InMemoryCmdb::seeded()))
        .build()
        .unwrap();
    for fixture in [
        "test-action-log-alert-v2-fired.json",
        "legacy/log-alert-v1-number-of-results.json",
    ] {
        let binding = binder.bind(&load_alert(fixture)).await;
        let primary = binding.primary.unwrap();
        assert_eq!(primary.name, "test-computer", "{fixture}");
        assert_eq!(primary.class.as_deref(), Some("cmdb_ci_linux_server"));
        assert!(
            binding.affected.is_empty(),
            "{fixture}: the workspace CI is not affected"
        );
        assert!(binding.unmatched.is_empty(), "{fixture}");
    }
    // Without any source resource the workspace is reported, never bound.
    let binding = binder
        .bind(&load_alert(
            "test-action-log-alert-v1-metric-measurement-fired.json",
        ))
        .await;
    assert_eq!(binding.primary, None);
    assert!(
        binding.unmatched[0].reason.starts_with("log alert scope"),
        "{binding:?}"
    );
}

#[tokio::test]
async fn name_collision_is_resolved_by_the_resource_id() {
    // test-VM exists twice by name (the VM and its guest OS server); the alert's lower-cased
    // ARM id picks the VM.
    let binder = Binder::builder(Arc::new(InMemoryCmdb::seeded()))
        .build()
        .unwrap();
    let binding = binder
        .bind(&load_alert("test-action-resource-health-fired.json"))
        .await;
    let primary = binding.primary.unwrap();
    assert_eq!(
        (primary.class.as_deref(), primary.source),
        (Some("cmdb_ci_vm_instance"), CiSource::ResourceId)
    );

    // By name alone the collision is ambiguous and reported.
    let by_name = Binder::builder(Arc::new(InMemoryCmdb::seeded()))
        .strategies(vec![Strategy::Name])
        .build()
        .unwrap();
    let binding = by_name
        .bind(&load_alert("test-action-resource-health-fired.json"))
        .await;
    assert_eq!(binding.primary, None);
    assert!(
        binding.unmatched[0]
            .reason
            .contains("2 CIs are named \"test-VM\""),
        "{binding:?}"
    );

    // A class hint for VMs resolves it.
    let hinted = Binder::builder(Arc::new(InMemoryCmdb::seeded()))
        .strategies(vec![Strategy::Name])
        .class_hint("microsoft.compute/virtualmachines", "cmdb_ci_vm_instance")
        .build()
        .unwrap();
    let binding = hinted
        .bind(&load_alert("test-action-resource-health-fired.json"))
        .await;
    assert_eq!(
        binding.primary.unwrap().id,
        "a0e1f1c7000000000000000000000001"
    );
}

#[tokio::test]
async fn cost_alerts_bind_to_the_fallback_ci() {
    let fallback = CiRecord {
        id: "sys-finops".to_owned(),
        name: "FinOps".to_owned(),
        class: Some("cmdb_ci_service".to_owned()),
        source: CiSource::Fallback,
    };
    let cmdb = Arc::new(InMemoryCmdb::seeded());
    let binder = Binder::builder(cmdb.clone())
        .fallback(Some(fallback.clone()))
        .build()
        .unwrap();
    let binding = binder
        .bind(&load_alert("test-action-budget-alert.json"))
        .await;
    assert_eq!(binding.primary, Some(fallback));
    assert_eq!(cmdb.calls(), 0, "the category 'budgets' is not looked up");
}

#[tokio::test]
async fn static_map_binds_a_whole_resource_group() {
    let service = CiRecord {
        id: "sys-contoso".to_owned(),
        name: "Contoso storefront".to_owned(),
        class: Some("cmdb_ci_service".to_owned()),
        source: CiSource::StaticMap,
    };
    let binder = Binder::builder(Arc::new(InMemoryCmdb::seeded()))
        .static_map(vec![(
            "/subscriptions/*/resourceGroups/contoso/*".to_owned(),
            service.clone(),
        )])
        .build()
        .unwrap();
    let binding = binder
        .bind(&load_alert("legacy/activity-log-recommendation-2017.json"))
        .await;
    assert_eq!(binding.primary, Some(service));
    assert!(binding.unmatched.is_empty());
}

#[tokio::test]
async fn bind_each_gives_one_binding_per_ci() {
    // log-alert-v2-fired.json targets VM testvm and names, in its ResourceId dimension, a
    // second VM (same name, resource group TEST) that the CMDB does not hold.
    let binder = Binder::builder(Arc::new(InMemoryCmdb::seeded()))
        .build()
        .unwrap();
    let alert = load_alert("log-alert-v2-fired.json");
    let each = binder.bind_each(&alert).await;
    assert_eq!(each.len(), 1);
    assert_eq!(each[0].primary.as_ref().unwrap().name, "testvm");
    let one = binder.bind(&alert).await;
    assert_eq!(one.primary, each[0].primary);
}
