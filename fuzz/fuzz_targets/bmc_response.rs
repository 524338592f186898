//! Fuzzes how the BMC Helix backend reads AR System REST answers: the AR-JWT login answer
//! (token text, its `exp`/`iat`/`nbf` read for the lifetime), entry lists
//! (`{"entries":[{"values":{...}}]}`), single entries, AR error arrays
//! (`[{"messageType","messageNumber","messageText","messageAppendedText"}]`) and the other error
//! shapes, error 623 re-login, `Location` and `Retry-After` headers, the response size cap, and
//! CMDB instance lists. The answers come from the fuzz input through a scripted loopback HTTP
//! server (see `src/lib.rs` for the format; the first answer is the login's), so the
//! connector's real code runs through its public API, unchanged.
//!
//! Operation line words: one of `create find_open state update resolve reopen health logout
//! cmdb_id cmdb_name` (default `create`); `nonum` makes the work item carry no incident number
//! (so work notes read it first).
//!
//! Invariants: no panic; every operation ends within 10 s and sends a bounded number of
//! requests; what comes back is usable (a work item's id is an AR entry id and its number is not
//! empty, a CI has an id) and errors display and classify.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use secure_export_bmc::{BmcConfig, BmcConnector};
use secure_export_cmdb::CmdbLookup;
use secure_export_fuzz::{Harness, Script};
use secure_export_itsm::{
    CiRef, ItsmConnector, ItsmError, NewWorkItem, Resolution, Severity, WorkItemRef, WorkItemUpdate,
};

static HARNESS: LazyLock<Harness> = LazyLock::new(Harness::start);

/// Most requests one operation may send (reopen: login, PUT, re-login and retry, read the
/// number, work log with its own re-login and retry).
const MAX_REQUESTS: usize = 10;

fn is_entry_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fuzz_target!(|data: &[u8]| {
    let h = &*HARNESS;
    let script = Script::parse(data);
    let mut config = BmcConfig::new(h.base_url.clone(), "azure-int", "password");
    config.timeout = Duration::from_secs(5);
    config.max_response_bytes = 4096;
    let connector = BmcConnector::new(config, h.client.clone()).expect("valid config");
    let item = WorkItemRef {
        id: "000000000000123".to_owned(),
        number: (!script.has("nonum")).then(|| "INC000000000123".to_owned()),
        url: None,
    };
    let op = script
        .words
        .first()
        .map_or("create", String::as_str)
        .to_owned();
    let (outcome, seen) = h.run(&script.responses, Duration::from_secs(10), async {
        match op.as_str() {
            "find_open" => connector
                .find_open("alert-fuzz-1")
                .await
                .map(|found| found.into_iter().for_each(|r| check_ref(&r))),
            "state" => connector.state(&item).await.map(drop),
            "update" => {
                let update = WorkItemUpdate::note("fired again").with_field("Status", "Resolved");
                connector.update(&item, &update).await
            }
            "resolve" => {
                let resolution =
                    Resolution::new("cleared").with_code("Automated Resolution Reported");
                connector.resolve(&item, &resolution).await
            }
            "reopen" => connector.reopen(&item, "fired again").await,
            "health" => connector.health().await,
            "logout" => {
                let health = connector.health().await;
                connector.logout().await;
                health
            }
            "cmdb_id" | "cmdb_name" => {
                let cmdb = connector.cmdb();
                let found = if op == "cmdb_id" {
                    cmdb.by_resource_id(
                        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg\
                         /providers/Microsoft.Compute/virtualMachines/vm1",
                    )
                    .await
                } else {
                    cmdb.by_name("vm1", Some("BMC_ComputerSystem")).await
                };
                match found {
                    Ok(records) => {
                        for r in records {
                            assert!(!r.id.is_empty(), "a CI without id: {r:?}");
                        }
                    }
                    Err(e) => assert!(!e.to_string().is_empty()),
                }
                Ok(())
            }
            _ => {
                let new =
                    NewWorkItem::new("alert-fuzz-1", "[Sev1] CPU high on vm1", Severity::Sev1)
                        .with_ci(CiRef::new("OI-1", "vm1"))
                        .with_ci(CiRef::new("OI-2", "vm2"));
                connector.create(&new).await.map(|r| {
                    check_ref(&r);
                    assert!(r.number.as_deref().is_some_and(|n| !n.is_empty()), "{r:?}");
                })
            }
        }
    });
    if let Err(err) = outcome {
        check_error(&err);
    }
    assert!(
        seen.len() <= MAX_REQUESTS,
        "{op} sent {} requests: {seen:?}",
        seen.len()
    );
});

fn check_ref(r: &WorkItemRef) {
    assert!(
        is_entry_id(&r.id),
        "a work item id that is no entry id: {r:?}"
    );
}

fn check_error(err: &ItsmError) {
    assert!(
        !err.to_string().is_empty(),
        "an error with no text: {err:?}"
    );
    let _ = err.retry_class();
    let _ = err.status();
}
