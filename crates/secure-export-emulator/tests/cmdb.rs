#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The seeded CMDB fixtures of both emulators, looked up the way the backends do.

use reqwest::StatusCode;
use secure_export_emulator::bmc::{BmcEmulator, BmcOptions};
use secure_export_emulator::fixture::cmdb_fixture;
use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};
use serde_json::Value;

/// `alertTargetIDs` copied from the Azure Monitor sample payloads (as Azure sends them).
const CORPUS_TARGETS: &[(&str, &str)] = &[
    (
        "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-RG/providers/microsoft.compute/virtualmachines/test-VM",
        "vm-test-vm",
    ),
    (
        "/subscriptions/12345a-1234b-123c-123d-12345678e/resourcegroups/ai-engineering/providers/microsoft.compute/virtualmachines/testvm",
        "vm-testvm",
    ),
    (
        "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-RG/providers/microsoft.storage/storageaccounts/test-storageAccount",
        "storage-test-storageaccount",
    ),
    (
        "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-RG/providers/Microsoft.Storage/storageAccounts/test-storageAccount",
        "storage-test-storageaccount",
    ),
    (
        "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-RG/providers/microsoft.insights/components/test-applicationInsights",
        "appinsights-test-applicationinsights",
    ),
    (
        "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-RG/providers/microsoft.operationalinsights/workspaces/test-logAnalyticsWorkspace",
        "workspace-test-loganalyticsworkspace",
    ),
];

#[test]
fn every_corpus_target_has_exactly_one_fixture_entry_case_insensitively() {
    let fixture = cmdb_fixture();
    for (target, key) in CORPUS_TARGETS {
        let hits: Vec<_> = fixture
            .iter()
            .filter(|e| {
                e.resource_id
                    .as_deref()
                    .is_some_and(|id| id.eq_ignore_ascii_case(target))
            })
            .collect();
        assert_eq!(hits.len(), 1, "{target}");
        assert_eq!(hits[0].key, *key);
    }
}

async fn sn_query(
    emu: &ServiceNowEmulator,
    client: &reqwest::Client,
    table: &str,
    query: &str,
) -> Vec<Value> {
    let resp = client
        .get(format!("{}/api/now/table/{table}", emu.base_url()))
        .basic_auth(emu.username(), Some(emu.password()))
        .query(&[
            ("sysparm_query", query),
            ("sysparm_fields", "sys_id,name,sys_class_name,object_id"),
            ("sysparm_exclude_reference_link", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json::<Value>().await.unwrap()["result"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn servicenow_cmdb_lookups_by_object_id_and_name() {
    let emu = ServiceNowEmulator::start(ServiceNowOptions::default())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let fixture = cmdb_fixture();
    let vm = fixture.iter().find(|e| e.key == "vm-test-vm").unwrap();
    let vm_id = vm.resource_id.as_deref().unwrap();
    let vm_sys_id = vm.servicenow.as_ref().unwrap().sys_id.as_str();

    let rows = sn_query(&emu, &client, "cmdb_ci", &format!("object_id={vm_id}")).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["sys_id"], vm_sys_id);
    assert_eq!(rows[0]["sys_class_name"], "cmdb_ci_vm_instance");

    // The id as the alert carries it (lower-cased segments) misses with `=` ...
    let (alert_id, _) = CORPUS_TARGETS[0];
    assert!(
        sn_query(&emu, &client, "cmdb_ci", &format!("object_id={alert_id}"))
            .await
            .is_empty()
    );
    // ... and matches with LIKE, which ignores case.
    let rows = sn_query(
        &emu,
        &client,
        "cmdb_ci",
        &format!("object_idLIKE{alert_id}"),
    )
    .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["sys_id"], vm_sys_id);

    // Name collision: two classes, one name.
    let rows = sn_query(&emu, &client, "cmdb_ci", "name=test-VM").await;
    let mut classes: Vec<&str> = rows
        .iter()
        .map(|r| r["sys_class_name"].as_str().unwrap())
        .collect();
    classes.sort_unstable();
    assert_eq!(classes, vec!["cmdb_ci_vm_instance", "cmdb_ci_win_server"]);
    // A class table narrows it.
    let rows = sn_query(&emu, &client, "cmdb_ci_vm_instance", "name=test-VM").await;
    assert_eq!(rows.len(), 1);
    // Databases and app services are there too.
    assert_eq!(
        sn_query(&emu, &client, "cmdb_ci_cloud_database", "name=test-sqldb")
            .await
            .len(),
        1
    );
    assert_eq!(
        sn_query(&emu, &client, "cmdb_ci_cloud_appserver", "name=test-webapp")
            .await
            .len(),
        1
    );
    assert!(
        sn_query(&emu, &client, "cmdb_ci", "name=wcus-r2-gen2")
            .await
            .is_empty()
    );

    let emu2 = ServiceNowEmulator::start(ServiceNowOptions::default().seed_cmdb(false))
        .await
        .unwrap();
    assert!(emu2.records("cmdb_ci").is_empty());
}

async fn bmc_instances(
    emu: &BmcEmulator,
    client: &reqwest::Client,
    token: &str,
    class: &str,
    query: &[(&str, &str)],
) -> reqwest::Response {
    client
        .get(format!(
            "{}/api/cmdb/v1.0/instances/BMC.ASSET/BMC.CORE/{class}",
            emu.base_url()
        ))
        .header("Authorization", format!("AR-JWT {token}"))
        .query(query)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn bmc_cmdb_lookups_by_cloud_id_and_name() {
    let emu = BmcEmulator::start(BmcOptions::default()).await.unwrap();
    let client = reqwest::Client::new();
    let token = client
        .post(format!("{}/api/jwt/login", emu.base_url()))
        .form(&[("username", emu.username()), ("password", emu.password())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let fixture = cmdb_fixture();
    let vm = fixture.iter().find(|e| e.key == "vm-test-vm").unwrap();
    let bmc_ci = vm.bmc.as_ref().unwrap();

    let qual = format!("'CloudID'=\"{}\"", vm.resource_id.as_deref().unwrap());
    let resp = bmc_instances(
        &emu,
        &client,
        &token,
        "BMC_ComputerSystem",
        &[
            ("qualification", qual.as_str()),
            (
                "attributes",
                "Name,InstanceId,ReconciliationIdentity,ClassId",
            ),
            ("num_matches", "true"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["num_matches"], 1);
    let inst = &body["instances"][0];
    assert_eq!(inst["instance_id"], bmc_ci.instance_id.as_str());
    assert_eq!(inst["class_name_key"]["name"], "BMC_ComputerSystem");
    assert_eq!(inst["dataset_id"], "BMC.ASSET");
    assert_eq!(
        inst["attributes"]["ReconciliationIdentity"],
        bmc_ci.reconciliation_id.as_str()
    );
    assert_eq!(inst["attributes"]["ClassId"], "BMC_COMPUTERSYSTEM");
    assert_eq!(inst["attributes"].as_object().unwrap().len(), 4);

    // Name collision across classes through BMC_BaseElement.
    let body: Value = bmc_instances(
        &emu,
        &client,
        &token,
        "BMC_BaseElement",
        &[("qualification", "'Name'=\"test-VM\"")],
    )
    .await
    .json()
    .await
    .unwrap();
    let mut classes: Vec<&str> = body["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["class_name_key"]["name"].as_str().unwrap())
        .collect();
    classes.sort_unstable();
    assert_eq!(classes, vec!["BMC_ComputerSystem", "BMC_OperatingSystem"]);

    // Lower-cased id misses with '=', matches with LIKE.
    let (alert_id, _) = CORPUS_TARGETS[0];
    let body: Value = bmc_instances(
        &emu,
        &client,
        &token,
        "BMC_ComputerSystem",
        &[("qualification", &format!("'CloudID'=\"{alert_id}\""))],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["instances"], serde_json::json!([]));
    let body: Value = bmc_instances(
        &emu,
        &client,
        &token,
        "BMC_ComputerSystem",
        &[("qualification", &format!("'CloudID' LIKE \"{alert_id}\""))],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["instances"].as_array().unwrap().len(), 1);

    // Errors.
    let resp = bmc_instances(&emu, &client, &token, "BMC_Nope", &[]).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = bmc_instances(
        &emu,
        &client,
        &token,
        "BMC_ComputerSystem",
        &[("qualification", "CloudID = \"x\"")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let errors: Value = resp.json().await.unwrap();
    assert_eq!(errors[0]["messageNumber"], 1587);
    let resp = bmc_instances(
        &emu,
        &client,
        &token,
        "BMC_ComputerSystem",
        &[("qualification", "'Bogus' = \"x\"")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.json::<Value>().await.unwrap()[0]["messageNumber"], 314);
    assert_eq!(emu.cmdb_instances("BMC_DataBase").len(), 1);
    assert_eq!(emu.cmdb_instances("BMC_ApplicationSystem").len(), 1);
}
