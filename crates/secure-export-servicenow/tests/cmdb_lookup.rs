//! `ServiceNowCmdb` against the emulator's seeded CMDB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use secure_export_cmdb::{CiSource, CmdbLookup, LookupError};
use secure_export_emulator::fixture::cmdb_fixture;
use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};
use secure_export_itsm::RetryClass;
use secure_export_servicenow::{Auth, ServiceNowCmdb, ServiceNowConfig, ServiceNowConnector};

async fn setup() -> (ServiceNowEmulator, ServiceNowCmdb) {
    let emu = ServiceNowEmulator::start(ServiceNowOptions::default())
        .await
        .unwrap();
    let config = ServiceNowConfig::new(emu.base_url(), Auth::basic(emu.username(), emu.password()))
        .with_timeout(Duration::from_millis(300));
    let cmdb = ServiceNowCmdb::new(&config, reqwest::Client::new()).unwrap();
    (emu, cmdb)
}

#[tokio::test]
async fn every_fixture_resource_is_found_by_its_lowercase_arm_id() {
    let (_emu, cmdb) = setup().await;
    let mut checked = 0;
    for entry in cmdb_fixture() {
        let (Some(rid), Some(ci)) = (&entry.resource_id, &entry.servicenow) else {
            continue;
        };
        for given in [rid.to_lowercase(), rid.clone(), rid.to_uppercase()] {
            let found = cmdb.by_resource_id(&given).await.unwrap();
            assert_eq!(found.len(), 1, "{given}: {found:?}");
            assert_eq!(found[0].id, ci.sys_id, "{given}");
            assert_eq!(
                found[0].class.as_deref(),
                Some(ci.class.as_str()),
                "{given}"
            );
            assert_eq!(found[0].name, entry.name);
            assert_eq!(found[0].source, CiSource::ResourceId);
        }
        checked += 1;
    }
    assert!(checked >= 5, "the fixture has Azure resources ({checked})");
}

#[tokio::test]
async fn lowercase_lookup_costs_two_requests_and_exact_one() {
    let (emu, cmdb) = setup().await;
    let rid = "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers/Microsoft.Compute/virtualMachines/test-VM";
    emu.clear_calls();
    assert_eq!(cmdb.by_resource_id(rid).await.unwrap().len(), 1);
    assert_eq!(emu.calls().len(), 1);
    emu.clear_calls();
    assert_eq!(
        cmdb.by_resource_id(&rid.to_lowercase())
            .await
            .unwrap()
            .len(),
        1
    );
    let queries: Vec<String> = emu
        .calls()
        .iter()
        .filter_map(|c| c.query_param("sysparm_query"))
        .collect();
    assert_eq!(
        queries,
        [
            format!("object_id={}", rid.to_lowercase()),
            "object_idENDSWITH/test-vm".to_owned()
        ]
    );
}

#[tokio::test]
async fn subscription_only_target_binds_to_the_service_account() {
    let (_emu, cmdb) = setup().await;
    let found = cmdb
        .by_resource_id("/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e")
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].class.as_deref(),
        Some("cmdb_ci_cloud_service_account")
    );
}

#[tokio::test]
async fn by_name_returns_collisions_and_honours_the_class_hint() {
    let (_emu, cmdb) = setup().await;
    let both = cmdb.by_name("test-VM", None).await.unwrap();
    let mut classes: Vec<_> = both.iter().filter_map(|c| c.class.clone()).collect();
    classes.sort();
    assert_eq!(classes, ["cmdb_ci_vm_instance", "cmdb_ci_win_server"]);
    assert!(both.iter().all(|c| c.source == CiSource::Name));

    let vm = cmdb
        .by_name("test-VM", Some("cmdb_ci_vm_instance"))
        .await
        .unwrap();
    assert_eq!(vm.len(), 1);
    assert_eq!(vm[0].id, "a0e1f1c7000000000000000000000001");
    let db = cmdb.by_name("test-sqldb", None).await.unwrap();
    assert_eq!(db[0].class.as_deref(), Some("cmdb_ci_cloud_database"));
}

#[tokio::test]
async fn missing_and_unsafe_inputs_find_nothing() {
    let (emu, cmdb) = setup().await;
    let missing = "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg/providers/microsoft.compute/virtualmachines/nope";
    assert!(cmdb.by_resource_id(missing).await.unwrap().is_empty());
    assert!(cmdb.by_name("no-such-ci", None).await.unwrap().is_empty());
    emu.clear_calls();
    assert!(matches!(
        cmdb.by_name("x^ORname!=y", None).await,
        Err(LookupError::Refused(_))
    ));
    assert!(cmdb.by_resource_id("").await.unwrap().is_empty());
    assert!(emu.calls().is_empty(), "query-breaking input is never sent");
}

#[tokio::test]
async fn failures_are_lookup_errors_with_a_retry_class() {
    let (emu, cmdb) = setup().await;
    emu.faults().fail_next(1, 500);
    let err = cmdb.by_name("test-VM", None).await.unwrap_err();
    let LookupError::Backend(inner) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(inner.status(), Some(500));
    emu.faults().set_latency(Duration::from_millis(800));
    let err = cmdb.by_name("test-VM", None).await.unwrap_err();
    let LookupError::Backend(inner) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(inner.retry_class(), RetryClass::Retryable);
}

#[tokio::test]
async fn connector_cmdb_shares_the_oauth_token() {
    let emu = ServiceNowEmulator::start(ServiceNowOptions::default())
        .await
        .unwrap();
    let auth = Auth::oauth_client_credentials(emu.oauth_client_id(), emu.oauth_client_secret());
    let sn = ServiceNowConnector::new(
        ServiceNowConfig::new(emu.base_url(), auth),
        reqwest::Client::new(),
    )
    .unwrap();
    secure_export_itsm::ItsmConnector::health(&sn)
        .await
        .unwrap();
    let found = sn.cmdb().by_name("test-webapp", None).await.unwrap();
    assert_eq!(found.len(), 1);
    let token_calls = emu
        .calls()
        .iter()
        .filter(|c| c.path == "/oauth_token.do")
        .count();
    assert_eq!(token_calls, 1);
}
