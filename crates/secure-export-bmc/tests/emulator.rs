//! The connector and the CMDB lookup against the BMC Helix emulator, over real HTTP on
//! loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use secure_export_bmc::{BmcConfig, BmcConnector};
use secure_export_cmdb::{CiSource, CmdbLookup};
use secure_export_emulator::bmc::{BmcEmulator, BmcOptions};
use secure_export_itsm::{
    CiRef, ItsmConnector, ItsmError, NewWorkItem, Resolution, RetryClass, Severity, WorkItemState,
    WorkItemUpdate,
};
use serde_json::{Value, json};

async fn emulator(opts: BmcOptions) -> (BmcEmulator, BmcConnector) {
    let emu = BmcEmulator::start(opts).await.unwrap();
    let mut config = BmcConfig::new(emu.base_url(), emu.username(), emu.password());
    config.timeout = Duration::from_secs(5);
    let bmc = BmcConnector::new(config, support::client()).unwrap();
    (emu, bmc)
}

fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or("<missing>")
}

fn logins(emu: &BmcEmulator) -> usize {
    emu.calls()
        .iter()
        .filter(|c| c.path == "/api/jwt/login")
        .count()
}

#[tokio::test]
async fn create_find_work_log_resolve_reopen() {
    let (emu, bmc) = emulator(BmcOptions::default()).await;
    let item = NewWorkItem::new("az-alert-1", "[Sev1] CPU high on test-VM", Severity::Sev1)
        .with_description("Percentage CPU > 90 for 5 minutes")
        .with_ci(CiRef {
            id: "RE00AZFIX00000000000000000000001".to_owned(),
            name: "test-VM".to_owned(),
            class: Some("BMC_ComputerSystem".to_owned()),
        });
    assert_eq!(bmc.find_open("az-alert-1").await.unwrap(), None);
    let created = bmc.create(&item).await.unwrap();
    let number = created.number.clone().unwrap();
    assert!(number.starts_with("INC") && number.len() == 15, "{number}");
    assert_eq!(created.id.len(), 15);
    assert_ne!(
        created.id, number,
        "entry id and incident number are different things"
    );

    let incident = emu.incident(&number).unwrap();
    assert_eq!(field(&incident, "Entry ID"), created.id);
    assert_eq!(field(&incident, "Vendor Ticket Number"), "az-alert-1");
    assert_eq!(
        field(&incident, "Description"),
        "[Sev1] CPU high on test-VM"
    );
    assert_eq!(
        field(&incident, "Detailed Decription"),
        "Percentage CPU > 90 for 5 minutes"
    );
    assert_eq!(field(&incident, "Impact"), "2-Significant/Large");
    assert_eq!(field(&incident, "Urgency"), "2-High");
    assert_eq!(field(&incident, "Status"), "New");
    assert_eq!(
        field(&incident, "HPD_CI_ReconID"),
        "RE00AZFIX00000000000000000000001"
    );
    assert_eq!(field(&incident, "HPD_CI_FormName"), "BMC_COMPUTERSYSTEM");

    assert_eq!(
        bmc.find_open("az-alert-1").await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(bmc.find_open("az-alert-2").await.unwrap(), None);
    assert_eq!(bmc.state(&created).await.unwrap(), WorkItemState::Open);

    bmc.update(
        &created,
        &WorkItemUpdate::note("Fired again (2nd time)").with_field("Assigned Group", "Cloud Ops"),
    )
    .await
    .unwrap();
    let log = emu.work_log(&number);
    assert_eq!(log.len(), 1);
    assert_eq!(
        field(&log[0], "Detailed Description"),
        "Fired again (2nd time)"
    );
    assert_eq!(field(&log[0], "Work Log Type"), "General Information");
    assert_eq!(
        field(&emu.incident(&number).unwrap(), "Assigned Group"),
        "Cloud Ops"
    );

    bmc.resolve(
        &created,
        &Resolution::new("Alert resolved by Azure Monitor"),
    )
    .await
    .unwrap();
    let incident = emu.incident(&number).unwrap();
    assert_eq!(field(&incident, "Status"), "Resolved");
    assert_eq!(
        field(&incident, "Status_Reason"),
        "Automated Resolution Reported"
    );
    assert_eq!(
        field(&incident, "Resolution"),
        "Alert resolved by Azure Monitor"
    );
    assert_eq!(bmc.state(&created).await.unwrap(), WorkItemState::Resolved);
    assert_eq!(
        bmc.find_open("az-alert-1").await.unwrap(),
        None,
        "resolved is not open"
    );

    bmc.reopen(&created, "Fired again after resolution")
        .await
        .unwrap();
    assert_eq!(field(&emu.incident(&number).unwrap(), "Status"), "Assigned");
    assert_eq!(bmc.state(&created).await.unwrap(), WorkItemState::Open);
    assert_eq!(
        bmc.find_open("az-alert-1").await.unwrap().map(|r| r.id),
        Some(created.id.clone())
    );
    assert_eq!(emu.work_log(&number).len(), 2);

    // One login for the whole run, every call answered 2xx, then a logout.
    assert_eq!(logins(&emu), 1);
    bmc.logout().await;
    let calls = emu.calls();
    assert!(
        calls.iter().all(|c| (200..300).contains(&c.status)),
        "{calls:#?}"
    );
    let last = calls.last().unwrap();
    assert_eq!(
        (last.method.as_str(), last.path.as_str(), last.status),
        ("POST", "/api/jwt/logout", 204)
    );
    bmc.state(&created).await.unwrap();
    assert_eq!(logins(&emu), 2, "after logout the next call logs in again");
    emu.shutdown().await;
}

#[tokio::test]
async fn expired_token_mid_run_is_replaced_once() {
    let (emu, bmc) = emulator(BmcOptions::default()).await;
    let created = bmc
        .create(&NewWorkItem::new("exp-1", "t", Severity::Sev2))
        .await
        .unwrap();
    emu.expire_tokens();
    assert_eq!(bmc.state(&created).await.unwrap(), WorkItemState::Open);
    assert_eq!(logins(&emu), 2);
    let rejected: Vec<_> = emu
        .calls()
        .into_iter()
        .filter(|c| c.status == 401)
        .collect();
    assert_eq!(
        rejected.len(),
        1,
        "one rejected call, then the retry with the new token"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn short_token_lifetime_on_the_server_is_survived() {
    let (emu, bmc) = emulator(BmcOptions::default().token_lifetime(Duration::from_secs(1))).await;
    let created = bmc
        .create(&NewWorkItem::new("short-1", "t", Severity::Sev2))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    bmc.update(&created, &WorkItemUpdate::note("after expiry"))
        .await
        .unwrap();
    assert_eq!(emu.work_log(created.number.as_deref().unwrap()).len(), 1);
    assert_eq!(logins(&emu), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn concurrent_creates_share_one_login_and_stay_distinct() {
    let (emu, bmc) = emulator(BmcOptions::default()).await;
    let bmc = Arc::new(bmc);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let bmc = Arc::clone(&bmc);
            tokio::spawn(async move {
                let id = format!("storm-{i}");
                let created = bmc
                    .create(&NewWorkItem::new(&id, "t", Severity::Sev3))
                    .await
                    .unwrap();
                (id, created)
            })
        })
        .collect();
    for task in futures::future::join_all(tasks).await {
        let (id, created) = task.unwrap();
        assert_eq!(bmc.find_open(&id).await.unwrap(), Some(created));
    }
    assert_eq!(logins(&emu), 1);
    assert_eq!(emu.entries("HPD:Help Desk").len(), 8);
    emu.shutdown().await;
}

#[tokio::test]
async fn throttling_server_errors_and_broken_answers_are_classified() {
    let (emu, bmc) = emulator(BmcOptions::default()).await;
    bmc.health().await.unwrap(); // log in first

    emu.faults().fail_next(1, 503);
    let err = bmc.find_open("x").await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(err.retry_class().is_retryable());

    emu.faults().fail_next(1, 500);
    let err = bmc.find_open("x").await.unwrap_err();
    let ItsmError::Http { status, code, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (*status, code.as_deref()),
        (500, Some("8760")),
        "AR message number kept"
    );
    assert_eq!(err.retry_class(), RetryClass::Retryable);

    emu.faults().set_rate_limit(1, Duration::from_secs(30));
    bmc.find_open("x").await.unwrap();
    let err = bmc.find_open("x").await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    let RetryClass::Throttled(wait) = err.retry_class() else {
        panic!("{err:?}")
    };
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(30),
        "{wait:?}"
    );
    emu.faults().clear_rate_limit();

    emu.faults().html_next(1);
    let err = bmc.find_open("x").await.unwrap_err();
    assert!(matches!(err, ItsmError::InvalidResponse { .. }), "{err:?}");

    emu.faults().drop_next(1);
    let err = bmc.find_open("x").await.unwrap_err();
    assert!(err.retry_class().is_retryable(), "{err:?}");

    emu.faults().clear();
    assert_eq!(bmc.find_open("x").await.unwrap(), None);
    emu.shutdown().await;
}

#[tokio::test]
async fn html_answer_to_an_update_is_not_taken_for_success() {
    let (emu, bmc) = emulator(BmcOptions::default()).await;
    let created = bmc
        .create(&NewWorkItem::new("html-1", "t", Severity::Sev2))
        .await
        .unwrap();
    emu.faults().html_next(1);
    let err = bmc
        .resolve(&created, &Resolution::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ItsmError::InvalidResponse { .. }), "{err:?}");
    assert_eq!(bmc.state(&created).await.unwrap(), WorkItemState::Open);
    emu.shutdown().await;
}

#[tokio::test]
async fn missing_status_reason_is_refused_by_the_emulator_and_never_sent() {
    let (emu, bmc) = emulator(BmcOptions::default()).await;
    let created = bmc
        .create(&NewWorkItem::new("sr-1", "t", Severity::Sev2))
        .await
        .unwrap();

    // The emulator refuses Resolved without a Status_Reason (AR error 51310) ...
    let client = support::client();
    let token = client
        .post(format!("{}/api/jwt/login", emu.base_url()))
        .form(&[("username", emu.username()), ("password", emu.password())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let raw = client
        .put(format!(
            "{}/api/arsys/v1/entry/HPD:IncidentInterface/{id}%7C{id}",
            emu.base_url(),
            id = created.id
        ))
        .header("Authorization", format!("AR-JWT {}", token.trim()))
        .json(&json!({"values": {"Status": "Resolved", "Resolution": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body[0]["messageNumber"], 51310);

    // ... the connector never sends it that way: a bare Status update gets the default reason,
    // Pending without a reason is refused before sending, and a reason the server rejects
    // comes back as a permanent error with the AR number.
    emu.clear_calls();
    bmc.update(
        &created,
        &WorkItemUpdate::default().with_field("Status", "Resolved"),
    )
    .await
    .unwrap();
    assert_eq!(
        field(
            &emu.entry("HPD:Help Desk", &created.id).unwrap(),
            "Status_Reason"
        ),
        "Automated Resolution Reported"
    );
    bmc.reopen(&created, "").await.unwrap();
    let err = bmc
        .update(
            &created,
            &WorkItemUpdate::default().with_field("Status", "Pending"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ItsmError::Config { .. }), "{err:?}");
    let err = bmc
        .resolve(&created, &Resolution::new("x").with_code("Bogus Reason"))
        .await
        .unwrap_err();
    let ItsmError::Http { status, code, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((*status, code.as_deref()), (400, Some("51310")));
    assert_eq!(err.retry_class(), RetryClass::Permanent);
    bmc.resolve(&created, &Resolution::new("done"))
        .await
        .unwrap();

    for call in emu.calls().iter().filter(|c| c.method == "PUT") {
        let values = &call.json_body().unwrap()["values"];
        if values["Status"] == "Resolved" || values["Status"] == "Pending" {
            let reason = values["Status_Reason"].as_str().unwrap_or_default();
            assert!(
                !reason.trim().is_empty(),
                "sent without Status_Reason: {}",
                call.body
            );
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn wrong_password_is_a_permanent_auth_error() {
    let emu = BmcEmulator::start(BmcOptions::default()).await.unwrap();
    let config = BmcConfig::new(emu.base_url(), emu.username(), "not-the-password");
    let bmc = BmcConnector::new(config, support::client()).unwrap();
    let err = bmc.health().await.unwrap_err();
    assert!(matches!(err, ItsmError::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("Authentication failed"), "{err}");
    assert!(!err.to_string().contains("not-the-password"));
    emu.shutdown().await;
}

#[tokio::test]
async fn hostile_correlation_ids_round_trip_through_the_emulator() {
    let (emu, bmc) = emulator(BmcOptions::default()).await;
    let hostile = [
        r#"x" OR 'Status' != "y"#,
        r#"a""b"#,
        "100% & more",
        "ünï 'q'",
    ];
    let mut created = Vec::new();
    for id in hostile {
        created.push(
            bmc.create(&NewWorkItem::new(id, "t", Severity::Sev4))
                .await
                .unwrap(),
        );
    }
    for (id, item) in hostile.iter().zip(&created) {
        assert_eq!(
            bmc.find_open(id).await.unwrap().as_ref(),
            Some(item),
            "{id}"
        );
    }
    // An injection attempt must not match the other incidents.
    assert_eq!(
        bmc.find_open(r#"nothing" OR 'Status' = "New"#)
            .await
            .unwrap(),
        None
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn cmdb_lookups_against_the_seeded_fixture() {
    let (emu, bmc) = emulator(BmcOptions::default()).await;
    let cmdb = bmc.cmdb();

    // Alerts carry ARM ids lower-cased; the fixture stores them as Azure spells them.
    let vm = "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-rg/providers/microsoft.compute/virtualmachines/test-vm";
    let found = cmdb.by_resource_id(vm).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?} {:#?}", emu.calls());
    assert_eq!(found[0].id, "RE00AZFIX00000000000000000000001");
    assert_eq!(found[0].name, "test-VM");
    assert_eq!(found[0].class.as_deref(), Some("BMC_ComputerSystem"));
    assert_eq!(found[0].source, CiSource::ResourceId);

    let db = "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-rg/providers/microsoft.sql/servers/test-sqlserver/databases/test-sqldb";
    let found = cmdb.by_resource_id(db).await.unwrap();
    assert_eq!(
        found.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["RE00AZFIX00000000000000000000008"]
    );
    assert_eq!(found[0].class.as_deref(), Some("BMC_DataBase"));

    let app = "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-rg/providers/microsoft.web/sites/test-webapp";
    assert_eq!(
        cmdb.by_resource_id(app).await.unwrap()[0].class.as_deref(),
        Some("BMC_ApplicationSystem")
    );

    assert!(
        cmdb.by_resource_id("/subscriptions/0000/resourcegroups/x/providers/a.b/c/none")
            .await
            .unwrap()
            .is_empty()
    );

    // Name lookups: the name collision (a VM and its OS share "test-VM") shows up when the
    // OS class is searched too, and a class hint narrows it.
    let by_name = cmdb.by_name("test-computer", None).await.unwrap();
    assert_eq!(by_name.len(), 1);
    assert_eq!(by_name[0].id, "RE00AZFIX00000000000000000000007");
    assert_eq!(by_name[0].source, CiSource::Name);
    let hinted = cmdb
        .by_name("test-VM", Some("BMC_OperatingSystem"))
        .await
        .unwrap();
    assert_eq!(
        hinted.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["RE00AZFIX00000000000000000000002"]
    );

    let mut config = BmcConfig::new(emu.base_url(), emu.username(), emu.password());
    config.cmdb.classes = vec![
        "BMC_ComputerSystem".to_owned(),
        "BMC_OperatingSystem".to_owned(),
    ];
    let both = BmcConnector::new(config, support::client()).unwrap().cmdb();
    let collision = both.by_name("test-VM", None).await.unwrap();
    let ids: Vec<&str> = collision.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "RE00AZFIX00000000000000000000001",
            "RE00AZFIX00000000000000000000002"
        ]
    );
    assert!(cmdb.by_name("no-such-ci", None).await.unwrap().is_empty());

    // The lookup shares the connector's token.
    assert_eq!(
        logins(&emu),
        2,
        "one for `bmc` (and its cmdb), one for the separate `both`"
    );
    let cmdb_call = emu
        .calls()
        .into_iter()
        .find(|c| c.path.starts_with("/api/cmdb/"))
        .unwrap();
    assert_eq!(
        cmdb_call.path,
        "/api/cmdb/v1.0/instances/BMC.ASSET/BMC.CORE/BMC_ComputerSystem"
    );
    assert_eq!(
        cmdb_call.query_param("qualification").unwrap(),
        format!("'CloudID' LIKE \"{vm}\"")
    );
    assert_eq!(
        cmdb_call.query_param("attributes").unwrap(),
        "Name,ReconciliationIdentity,CloudID"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn cmdb_failures_are_lookup_errors() {
    let (emu, bmc) = emulator(BmcOptions::default()).await;
    let cmdb = bmc.cmdb();
    emu.faults().fail_next(1, 503);
    let err = cmdb.by_name("test-VM", None).await.unwrap_err();
    let secure_export_cmdb::LookupError::Backend(inner) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(inner.status(), Some(503));
    emu.shutdown().await;
}
