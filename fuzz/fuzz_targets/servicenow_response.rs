//! Fuzzes how the ServiceNow backend reads the instance's answers: Table API record lists and
//! single records (`{"result":...}`), error bodies (`{"error":{"message","detail"}}` and the
//! OAuth form), OAuth token answers (`access_token`, `expires_in` as number or string),
//! `Location` and `Retry-After` headers, the response size cap, and CMDB rows. The answers come
//! from the fuzz input through a scripted loopback HTTP server (see `src/lib.rs` for the
//! format), so the connector's real code runs through its public API, unchanged.
//!
//! Operation line words: one of `create find_open state update resolve reopen health cmdb_id
//! cmdb_name` (default `create`), `event` for `em_event` instead of incidents, `password` or
//! `client` for OAuth (default basic auth).
//!
//! Invariants: no panic; every operation ends within 10 s and sends a bounded number of
//! requests; what comes back is usable (a work item has a non-empty id and an instance URL, a CI
//! a non-empty sys_id) and errors display and classify.
#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use secure_export_cmdb::CmdbLookup;
use secure_export_fuzz::{Harness, Script};
use secure_export_itsm::{
    CiRef, ItsmConnector, ItsmError, NewWorkItem, Resolution, Severity, WorkItemRef, WorkItemUpdate,
};
use secure_export_servicenow::{Auth, Clock, ServiceNowConfig, ServiceNowConnector, WorkItemKind};

static HARNESS: LazyLock<Harness> = LazyLock::new(Harness::start);

/// Most requests one operation may send (create with two CIs: token, create, one `task_ci`;
/// one token renewal and retry).
const MAX_REQUESTS: usize = 8;

fuzz_target!(|data: &[u8]| {
    let h = &*HARNESS;
    let script = Script::parse(data);
    let auth = if script.has("password") {
        Auth::oauth_password("client-id", "client-secret", "azure.monitor", "password")
    } else if script.has("client") {
        Auth::oauth_client_credentials("client-id", "client-secret")
    } else {
        Auth::basic("azure.monitor", "password")
    };
    let kind = if script.has("event") {
        WorkItemKind::Event
    } else {
        WorkItemKind::Incident
    };
    // A fixed clock: `Retry-After` dates and token expiry do not depend on when this runs.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let config = ServiceNowConfig::new(h.base_url.clone(), auth)
        .with_kind(kind)
        .with_timeout(Duration::from_secs(5))
        .with_max_response_bytes(4096)
        .with_clock(Clock::new(move || now));
    let connector = ServiceNowConnector::new(config, h.client.clone()).expect("valid config");
    let base = h.base_url.clone();
    let item = WorkItemRef {
        id: "46d44a5e2f1b3010a9ad2572f699b6e1".to_owned(),
        number: Some("INC0010001".to_owned()),
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
                .map(|found| found.into_iter().for_each(|r| check_ref(&r, &base))),
            "state" => connector.state(&item).await.map(drop),
            "update" => {
                let update = WorkItemUpdate::note("fired again").with_field("urgency", "2");
                connector.update(&item, &update).await
            }
            "resolve" => {
                let resolution = Resolution::new("cleared").with_code("Solved (Permanently)");
                connector.resolve(&item, &resolution).await
            }
            "reopen" => connector.reopen(&item, "fired again").await,
            "health" => connector.health().await,
            "cmdb_id" | "cmdb_name" => {
                let cmdb = connector.cmdb();
                let found = if op == "cmdb_id" {
                    cmdb.by_resource_id(
                        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg\
                         /providers/Microsoft.Compute/virtualMachines/vm1",
                    )
                    .await
                } else {
                    cmdb.by_name("vm1", Some("cmdb_ci_vm_instance")).await
                };
                match found {
                    Ok(records) => {
                        for r in records {
                            assert!(!r.id.is_empty(), "a CI without sys_id: {r:?}");
                        }
                    }
                    Err(e) => assert!(!e.to_string().is_empty()),
                }
                Ok(())
            }
            _ => {
                let new =
                    NewWorkItem::new("alert-fuzz-1", "[Sev1] CPU high on vm1", Severity::Sev1)
                        .with_ci(CiRef::new("ci-1", "vm1"))
                        .with_ci(CiRef::new("ci-2", "vm2"));
                connector.create(&new).await.map(|r| check_ref(&r, &base))
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

fn check_ref(r: &WorkItemRef, base: &str) {
    assert!(!r.id.is_empty(), "a work item without id: {r:?}");
    assert!(
        r.url.as_deref().is_some_and(|u| u.starts_with(base)),
        "a work item URL off the instance: {r:?}"
    );
    assert!(!r.display().is_empty());
}

fn check_error(err: &ItsmError) {
    assert!(
        !err.to_string().is_empty(),
        "an error with no text: {err:?}"
    );
    let _ = err.retry_class();
    let _ = err.status();
}
