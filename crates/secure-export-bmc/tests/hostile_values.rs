//! Alert-derived values never shape an AR qualification: `LIKE` wildcards are neutralized,
//! quotes stay inside one string literal, and every query carries a row limit (against the
//! emulator, asserting on its call log).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use secure_export_bmc::{BmcConfig, BmcConnector};
use secure_export_cmdb::CmdbLookup;
use secure_export_emulator::RecordedCall;
use secure_export_emulator::bmc::{BmcEmulator, BmcOptions};
use secure_export_itsm::{CiRef, ItsmConnector, NewWorkItem, Severity};

async fn emulator() -> (BmcEmulator, BmcConnector) {
    let emu = BmcEmulator::start(BmcOptions::default()).await.unwrap();
    let mut config = BmcConfig::new(emu.base_url(), emu.username(), emu.password());
    config.timeout = Duration::from_secs(5);
    let bmc = BmcConnector::new(config, support::client()).unwrap();
    (emu, bmc)
}

fn cmdb_calls(emu: &BmcEmulator) -> Vec<RecordedCall> {
    emu.calls()
        .into_iter()
        .filter(|c| c.path.starts_with("/api/cmdb/"))
        .collect()
}

#[tokio::test]
async fn like_wildcards_from_alerts_are_neutralized_and_every_cmdb_query_is_limited() {
    let (emu, bmc) = emulator().await;
    let cmdb = bmc.cmdb();
    let cases = [
        // What the alert says, and the qualification value the server must receive.
        ("%", r#""_""#),
        ("%%", r#""__""#),
        ("test-V%", r#""test-V_""#),
        ("[a-z]est-VM", r#""_a-z_est-VM""#),
        ("test\\VM", r#""test_VM""#),
        (r#"x" OR 'Name' LIKE "%"#, r#""x"" OR 'Name' LIKE ""_""#),
        ("it's", r#""it's""#),
    ];
    for (name, literal) in cases {
        emu.clear_calls();
        assert!(
            cmdb.by_name(name, Some("BMC_ComputerSystem"))
                .await
                .unwrap()
                .is_empty(),
            "{name:?} must not bind to anything"
        );
        let calls = cmdb_calls(&emu);
        assert_eq!(calls.len(), 1, "{name:?}");
        let call = &calls[0];
        assert_eq!(call.status, 200, "{name:?}: the server parsed one literal");
        assert_eq!(
            call.query_param("qualification").unwrap(),
            format!("'Name' LIKE {literal}"),
            "{name:?}"
        );
        assert_eq!(call.query_param("limit").as_deref(), Some("20"), "{name:?}");
    }

    // The same for resource ids, in every configured class.
    emu.clear_calls();
    assert!(cmdb.by_resource_id("%").await.unwrap().is_empty());
    let calls = cmdb_calls(&emu);
    assert_eq!(calls.len(), 4, "one query per default class");
    for call in &calls {
        assert_eq!(
            call.query_param("qualification").unwrap(),
            r#"'CloudID' LIKE "_""#
        );
        assert_eq!(call.query_param("limit").as_deref(), Some("20"));
    }

    // Ordinary values are unchanged and still match ignoring case.
    let vm = "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-rg/providers/microsoft.compute/virtualmachines/test-vm";
    let found = cmdb.by_resource_id(vm).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, "RE00AZFIX00000000000000000000001");
}

#[tokio::test]
async fn entry_queries_carry_a_limit_and_quote_hostile_correlation_ids() {
    let (emu, bmc) = emulator().await;
    let item = NewWorkItem::new("az-1", "[Sev2] cpu", Severity::Sev2)
        .with_ci(CiRef::new("RE00AZFIX00000000000000000000001", "test-VM"));
    let created = bmc.create(&item).await.unwrap();
    let hostile = r#"nothing" OR 'Status' < "Resolved"#;
    emu.clear_calls();
    assert_eq!(bmc.find_open(hostile).await.unwrap(), None);
    assert_eq!(bmc.find_open("%").await.unwrap(), None);
    assert_eq!(
        bmc.find_open("az-1").await.unwrap().map(|r| r.id),
        Some(created.id)
    );
    let finds: Vec<RecordedCall> = emu
        .calls()
        .into_iter()
        .filter(|c| c.path == "/api/arsys/v1/entry/HPD:Help%20Desk")
        .collect();
    assert_eq!(finds.len(), 3);
    for call in &finds {
        assert_eq!(call.status, 200);
        assert_eq!(call.query_param("limit").as_deref(), Some("50"));
        assert_eq!(call.query_param("sort").as_deref(), Some("Entry ID.desc"));
    }
    assert_eq!(
        finds[0].query_param("q").unwrap(),
        r#"'Vendor Ticket Number'="nothing"" OR 'Status' < ""Resolved" AND 'Status' < "Resolved""#
    );

    // The entry-id lookup after a create is limited too.
    emu.clear_calls();
    bmc.create(&NewWorkItem::new("az-2", "t", Severity::Sev3))
        .await
        .unwrap();
    let by_number: Vec<RecordedCall> = emu
        .calls()
        .into_iter()
        .filter(|c| c.method == "GET" && c.path == "/api/arsys/v1/entry/HPD:Help%20Desk")
        .collect();
    assert_eq!(by_number.len(), 1);
    assert_eq!(by_number[0].query_param("limit").as_deref(), Some("10"));
}
