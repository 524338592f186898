//! Alert- and ticket-derived values never change an encoded query: `javascript:` values are
//! never sent, `^` never adds a condition (against the emulator, asserting on its call log).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use secure_export_cmdb::CmdbLookup;
use secure_export_emulator::RecordedCall;
use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};
use secure_export_itsm::{ItsmConnector, NewWorkItem, Severity, WorkItemRef, WorkItemState};
use secure_export_servicenow::{Auth, ServiceNowConfig, ServiceNowConnector, WorkItemKind};
use serde_json::json;

async fn setup(kind: WorkItemKind) -> (ServiceNowEmulator, ServiceNowConnector) {
    let emu = ServiceNowEmulator::start(ServiceNowOptions::default())
        .await
        .unwrap();
    let config = ServiceNowConfig::new(emu.base_url(), Auth::basic(emu.username(), emu.password()))
        .with_kind(kind)
        .with_timeout(Duration::from_secs(5));
    let sn = ServiceNowConnector::new(config, reqwest::Client::new()).unwrap();
    (emu, sn)
}

fn queries(calls: &[RecordedCall]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| c.query_param("sysparm_query"))
        .collect()
}

/// The values of the conditions of an encoded query (after the operator), as ServiceNow splits
/// it: on `^`, with `OR`/`NQ` prefixes.
fn condition_values(query: &str) -> Vec<String> {
    query
        .split('^')
        .map(|cond| {
            let cond = cond
                .strip_prefix("OR")
                .or_else(|| cond.strip_prefix("NQ"))
                .unwrap_or(cond);
            let at = cond
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c == '.'))
                .unwrap_or(cond.len());
            let rest = &cond[at..];
            for op in ["!=", "=", "ENDSWITH", "STARTSWITH", "LIKE", "NOT IN"] {
                if let Some(value) = rest.strip_prefix(op) {
                    return value.to_owned();
                }
            }
            rest.to_owned()
        })
        .collect()
}

#[tokio::test]
async fn javascript_ci_name_is_never_sent() {
    let (emu, sn) = setup(WorkItemKind::Incident).await;
    // Such a CI even exists: a query would find it. The lookup must still not ask.
    emu.insert(
        "cmdb_ci_win_server",
        json!({"name": "javascript:gs.sleep(3000)"}),
    )
    .unwrap();
    let cmdb = sn.cmdb();
    emu.clear_calls();
    for name in [
        "javascript:gs.sleep(3000)",
        "JavaScript:gs.sleep(3000)",
        "  javascript:gs.sleep(3000)",
        "\u{FEFF}javascript:gs.sleep(3000)",
        "\u{200B}JAVASCRIPT:gs.sleep(3000)",
        "javaſcript:gs.sleep(3000)",
    ] {
        // Refused with the reason (the binder reports the target unbound with it, without
        // treating the CMDB as down).
        for result in [
            cmdb.by_name(name, None).await,
            cmdb.by_name(name, Some("cmdb_ci_win_server")).await,
            cmdb.by_resource_id(name).await,
        ] {
            match result {
                Err(secure_export_cmdb::LookupError::Refused(reason)) => {
                    assert!(reason.contains("never sent to ServiceNow"), "{reason}");
                }
                other => panic!("{name:?}: {other:?}"),
            }
        }
    }
    assert_eq!(emu.calls(), Vec::new(), "no request was made at all");

    // A safe lookup on the same CMDB still works (the refusal is per value).
    assert_eq!(cmdb.by_name("test-webapp", None).await.unwrap().len(), 1);
    assert_eq!(emu.calls().len(), 1);
}

#[tokio::test]
async fn javascript_subscription_segment_is_not_a_query_value() {
    let (emu, sn) = setup(WorkItemKind::Incident).await;
    let cmdb = sn.cmdb();
    emu.clear_calls();
    let found = cmdb
        .by_resource_id("/subscriptions/javascript:gs.sleep(3000)")
        .await
        .unwrap();
    assert!(found.is_empty());
    // The full id (which begins with `/`) is looked up; the bare subscription spelling and the
    // ENDSWITH tail, which would begin with `javascript:`, are not.
    assert_eq!(
        queries(&emu.calls()),
        ["object_id=/subscriptions/javascript:gs.sleep(3000)"]
    );
    for query in queries(&emu.calls()) {
        for value in condition_values(&query) {
            assert!(
                !value.to_ascii_lowercase().starts_with("javascript:"),
                "{query}"
            );
        }
    }
}

#[tokio::test]
async fn caret_in_a_ci_name_or_id_never_adds_a_condition() {
    let (emu, sn) = setup(WorkItemKind::Incident).await;
    let cmdb = sn.cmdb();
    emu.clear_calls();
    for value in [
        "nothing^NQnameISNOTEMPTY",
        "nothing^ORsys_idISNOTEMPTY",
        "^NQ",
    ] {
        let refused = |r: Result<Vec<_>, secure_export_cmdb::LookupError>| {
            matches!(r, Err(secure_export_cmdb::LookupError::Refused(_)))
        };
        assert!(refused(cmdb.by_name(value, None).await), "{value}");
        let id = format!("/subscriptions/s/resourcegroups/rg/providers/x/y/{value}");
        assert!(refused(cmdb.by_resource_id(&id).await), "{id}");
    }
    assert_eq!(emu.calls(), Vec::new());
}

#[tokio::test]
async fn hostile_correlation_ids_never_change_find_open() {
    let (emu, sn) = setup(WorkItemKind::Incident).await;
    let other = sn
        .create(&NewWorkItem::new("someone-else", "open", Severity::Sev2))
        .await
        .unwrap();
    emu.clear_calls();
    // Without neutralizing, `^NQactive=true` would match every active incident.
    for id in [
        "x^NQactive=true",
        "x^ORcorrelation_id=someone-else",
        "javascript:gs.sleep(3000)",
        " JavaScript:gs.sleep(3000)",
    ] {
        assert_eq!(sn.find_open(id).await.unwrap(), None, "{id}");
    }
    let sent = queries(&emu.calls());
    assert_eq!(sent.len(), 4);
    for query in &sent {
        // correlation_id, active, state, ORDERBY: the three conditions and the order only.
        assert_eq!(query.split('^').count(), 4, "{query}");
        let values = condition_values(query);
        assert!(
            values
                .iter()
                .all(|v| !looks_like_script(v) && v != "someone-else"),
            "{query}"
        );
    }
    assert_eq!(
        sent[2],
        "correlation_id=_javascript:gs.sleep(3000)^active=true^stateNOT IN6,7,8^ORDERBYsys_created_on"
    );

    // Create and find agree on the neutralized key, so the lifecycle still works.
    let created = sn
        .create(&NewWorkItem::new(
            "javascript:gs.sleep(3000)",
            "hostile",
            Severity::Sev2,
        ))
        .await
        .unwrap();
    let stored = emu.record("incident", &created.id).unwrap();
    assert_eq!(stored["correlation_id"], "_javascript:gs.sleep(3000)");
    assert_eq!(
        sn.find_open("javascript:gs.sleep(3000)").await.unwrap(),
        Some(created)
    );
    assert_eq!(sn.find_open("someone-else").await.unwrap(), Some(other));
}

/// Whether a value would be evaluated as a script (the test's own, plain reading).
fn looks_like_script(value: &str) -> bool {
    value
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("javascript:")
}

#[tokio::test]
async fn event_keys_are_neutralized_and_tampered_keys_are_not_queried() {
    let (emu, sn) = setup(WorkItemKind::Event).await;
    let created = sn
        .create(&NewWorkItem::new(
            "javascript:gs.sleep(3000)",
            "hostile",
            Severity::Sev1,
        ))
        .await
        .unwrap();
    let stored = emu.record("em_event", &created.id).unwrap();
    assert_eq!(stored["message_key"], "_javascript:gs.sleep(3000)");
    emu.clear_calls();
    assert_eq!(
        sn.find_open("javascript:gs.sleep(3000)")
            .await
            .unwrap()
            .map(|r| r.id),
        Some(created.id.clone())
    );
    assert_eq!(
        queries(&emu.calls()),
        ["message_key=_javascript:gs.sleep(3000)^ORDERBYDESCsys_created_on"]
    );

    // An event whose key was edited on the instance: its state is read without a query on it.
    for key in ["javascript:gs.sleep(3000)", "k^NQseverity=1"] {
        let id = emu
            .insert(
                "em_event",
                json!({"source": "Azure Monitor", "node": "vm1", "severity": "2", "message_key": key}),
            )
            .unwrap();
        emu.clear_calls();
        let state = sn.state(&WorkItemRef::new(id.clone())).await.unwrap();
        assert_eq!(state, WorkItemState::Open, "{key}");
        let calls = emu.calls();
        assert_eq!(calls.len(), 1, "only the record itself is read: {calls:#?}");
        assert!(calls[0].path.ends_with(&id));
        assert_eq!(queries(&calls), Vec::<String>::new());
    }
}
