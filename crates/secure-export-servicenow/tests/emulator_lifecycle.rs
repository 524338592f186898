//! The connector against the ServiceNow emulator over real HTTP on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};
use secure_export_itsm::{
    CiRef, ItsmConnector, ItsmError, NewWorkItem, Resolution, RetryClass, Severity, WorkItemState,
    WorkItemUpdate,
};
use secure_export_servicenow::{Auth, Clock, ServiceNowConfig, ServiceNowConnector, WorkItemKind};

const VM: &str = "a0e1f1c7000000000000000000000001";
const DB: &str = "a0e1f1c7000000000000000000000008";

async fn emulator() -> ServiceNowEmulator {
    ServiceNowEmulator::start(ServiceNowOptions::default())
        .await
        .unwrap()
}

fn basic(emu: &ServiceNowEmulator) -> ServiceNowConfig {
    ServiceNowConfig::new(emu.base_url(), Auth::basic(emu.username(), emu.password()))
}

fn connect(config: ServiceNowConfig) -> ServiceNowConnector {
    ServiceNowConnector::new(config, reqwest::Client::new()).unwrap()
}

fn item(correlation_id: &str) -> NewWorkItem {
    NewWorkItem::new(
        correlation_id,
        "[Sev1] Percentage CPU > 90 - test-VM",
        Severity::Sev1,
    )
    .with_description("Azure Monitor alert fired")
    .with_ci(CiRef::new(VM, "test-VM"))
    .with_ci(CiRef::new(DB, "test-sqldb"))
}

#[tokio::test]
async fn incident_create_find_note_resolve_reopen() {
    let emu = emulator().await;
    let sn = connect(basic(&emu).with_extra_field("u_origin", "azure"));

    assert_eq!(sn.find_open("alert-1").await.unwrap(), None);
    let created = sn.create(&item("alert-1")).await.unwrap();
    assert!(
        created.number.as_deref().unwrap().starts_with("INC"),
        "{created:?}"
    );
    assert_eq!(
        sn.find_open("alert-1").await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(sn.state(&created).await.unwrap(), WorkItemState::Open);

    let record = emu.record("incident", &created.id).unwrap();
    assert_eq!(record["correlation_id"], "alert-1");
    assert_eq!(record["correlation_display"], "Azure Monitor");
    assert_eq!(
        (record["impact"].as_str(), record["urgency"].as_str()),
        (Some("2"), Some("1"))
    );
    assert_eq!(
        record["priority"], "2",
        "priority is computed from impact x urgency"
    );
    assert_eq!(record["u_origin"], "azure");
    let cmdb_ci = &record["cmdb_ci"];
    assert!(cmdb_ci == VM || cmdb_ci["value"] == VM, "{cmdb_ci}");
    let links = emu.records("task_ci");
    assert_eq!(links.len(), 1, "{links:?}");
    let ci_item = &links[0]["ci_item"];
    assert!(ci_item == DB || ci_item["value"] == DB, "{ci_item}");

    sn.update(&created, &WorkItemUpdate::note("fired again (2)"))
        .await
        .unwrap();
    sn.resolve(
        &created,
        &Resolution::new("Alert resolved by Azure Monitor"),
    )
    .await
    .unwrap();
    assert_eq!(sn.state(&created).await.unwrap(), WorkItemState::Resolved);
    assert_eq!(sn.find_open("alert-1").await.unwrap(), None);
    let record = emu.record("incident", &created.id).unwrap();
    assert_eq!(record["close_code"], "Solution provided");
    assert_eq!(record["close_notes"], "Alert resolved by Azure Monitor");

    sn.reopen(&created, "fired after resolve").await.unwrap();
    assert_eq!(sn.state(&created).await.unwrap(), WorkItemState::Open);
    assert_eq!(emu.record("incident", &created.id).unwrap()["state"], "2");
    assert_eq!(
        sn.find_open("alert-1").await.unwrap().map(|r| r.id),
        Some(created.id.clone())
    );
    let notes: Vec<String> = emu
        .journal(&created.id)
        .into_iter()
        .map(|j| j.value)
        .collect();
    assert!(notes.contains(&"fired again (2)".to_owned()), "{notes:?}");
    assert!(
        notes.contains(&"fired after resolve".to_owned()),
        "{notes:?}"
    );

    let missing = secure_export_itsm::WorkItemRef::new("0123456789abcdef0123456789abcdef");
    assert!(matches!(
        sn.state(&missing).await,
        Err(ItsmError::NotFound { .. })
    ));
    sn.health().await.unwrap();
}

#[tokio::test]
async fn kind_event_rolls_events_under_one_message_key() {
    let emu = emulator().await;
    let sn = connect(basic(&emu).with_kind(WorkItemKind::Event));

    let created = sn.create(&item("alert-ev")).await.unwrap();
    assert!(sn.find_open("alert-ev").await.unwrap().is_some());
    assert_eq!(sn.state(&created).await.unwrap(), WorkItemState::Open);
    sn.update(&created, &WorkItemUpdate::note("fired again"))
        .await
        .unwrap();
    sn.resolve(&created, &Resolution::new("resolved"))
        .await
        .unwrap();
    assert_eq!(sn.state(&created).await.unwrap(), WorkItemState::Resolved);
    assert_eq!(sn.find_open("alert-ev").await.unwrap(), None);
    sn.reopen(&created, "back").await.unwrap();
    assert_eq!(sn.state(&created).await.unwrap(), WorkItemState::Open);

    let events = emu.records("em_event");
    let severities: Vec<&str> = events
        .iter()
        .map(|e| e["severity"].as_str().unwrap())
        .collect();
    assert_eq!(
        severities,
        ["2", "2", "0", "2"],
        "Sev1 -> 2 Major, resolve -> 0 Clear"
    );
    assert!(
        events
            .iter()
            .all(|e| e["message_key"] == "alert-ev" && e["node"] == "test-VM")
    );
    assert_eq!(events[2]["resolution_state"], "Closing");
}

fn oauth(emu: &ServiceNowEmulator) -> Auth {
    Auth::oauth_password(
        emu.oauth_client_id(),
        emu.oauth_client_secret(),
        emu.username(),
        emu.password(),
    )
}

fn token_grants(emu: &ServiceNowEmulator) -> Vec<String> {
    emu.calls()
        .into_iter()
        .filter(|c| c.path == "/oauth_token.do")
        .map(|c| {
            let form: Vec<(String, String)> = url::form_urlencoded::parse(c.body.as_bytes())
                .into_owned()
                .collect();
            form.into_iter()
                .find(|(k, _)| k == "grant_type")
                .map(|(_, v)| v)
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn oauth_token_is_renewed_before_expiry_and_after_a_401() {
    let emu = emulator().await;
    let offset = Arc::new(AtomicU64::new(0));
    let clock = {
        let offset = Arc::clone(&offset);
        Clock::new(move || SystemTime::now() + Duration::from_secs(offset.load(Ordering::SeqCst)))
    };
    let sn = connect(ServiceNowConfig::new(emu.base_url(), oauth(&emu)).with_clock(clock));

    let created = sn.create(&item("alert-oauth")).await.unwrap();
    sn.update(&created, &WorkItemUpdate::note("n1"))
        .await
        .unwrap();
    assert_eq!(token_grants(&emu), ["password"], "one token for both calls");

    // 1,750 s later the 1,800 s token is inside the 60 s margin: renewed with the refresh token
    // before it is used.
    offset.store(1750, Ordering::SeqCst);
    sn.update(&created, &WorkItemUpdate::note("n2"))
        .await
        .unwrap();
    assert_eq!(token_grants(&emu), ["password", "refresh_token"]);

    // The instance revokes/expires tokens early: one 401, one renewal, then success.
    emu.expire_tokens();
    sn.resolve(&created, &Resolution::new("done"))
        .await
        .unwrap();
    assert_eq!(
        token_grants(&emu),
        ["password", "refresh_token", "refresh_token"]
    );
    let unauthorized = emu.calls().iter().filter(|c| c.status == 401).count();
    assert_eq!(unauthorized, 1);
    assert_eq!(sn.state(&created).await.unwrap(), WorkItemState::Resolved);
    for call in emu.calls().iter().filter(|c| c.path.starts_with("/api/")) {
        assert!(
            call.header("authorization").unwrap().starts_with("Bearer "),
            "{call:?}"
        );
    }
}

#[tokio::test]
async fn oauth_client_credentials_and_rejected_credentials() {
    let emu = emulator().await;
    let auth = Auth::oauth_client_credentials(emu.oauth_client_id(), emu.oauth_client_secret());
    let sn = connect(ServiceNowConfig::new(emu.base_url(), auth));
    sn.create(&item("alert-cc")).await.unwrap();
    assert_eq!(token_grants(&emu), ["client_credentials"]);

    let bad = Auth::oauth_password(
        emu.oauth_client_id(),
        "wrong-secret",
        emu.username(),
        emu.password(),
    );
    let err = connect(ServiceNowConfig::new(emu.base_url(), bad))
        .health()
        .await
        .unwrap_err();
    assert!(matches!(err, ItsmError::Auth { .. }), "{err:?}");
    assert_eq!(err.retry_class(), RetryClass::Permanent);
    assert!(!format!("{err} {err:?}").contains("wrong-secret"));

    let wrong_password = connect(ServiceNowConfig::new(
        emu.base_url(),
        Auth::basic(emu.username(), "nope"),
    ));
    let err = wrong_password.health().await.unwrap_err();
    assert_eq!(err.status(), Some(401));
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_then_success() {
    let emu = emulator().await;
    let sn = connect(basic(&emu));
    emu.faults().set_rate_limit(1, Duration::from_secs(30));
    sn.health().await.unwrap();
    let err = sn.create(&item("alert-429")).await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    match err.retry_class() {
        RetryClass::Throttled(wait) => assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(30),
            "{wait:?}"
        ),
        other => panic!("expected Throttled, got {other:?} for {err}"),
    }
    assert_eq!(
        emu.records("incident").len(),
        0,
        "the refused create wrote nothing"
    );
    emu.faults().clear_rate_limit();
    sn.create(&item("alert-429")).await.unwrap();
    assert_eq!(emu.records("incident").len(), 1);
}

#[tokio::test]
async fn hibernating_html_answer_is_a_retryable_invalid_response() {
    let emu = emulator().await;
    let sn = connect(basic(&emu));
    emu.faults().html_next(1);
    let err = sn.create(&item("alert-html")).await.unwrap_err();
    assert!(matches!(err, ItsmError::InvalidResponse { .. }), "{err:?}");
    assert!(err.to_string().contains("text/html"), "{err}");
    assert_eq!(err.retry_class(), RetryClass::Retryable);
    sn.create(&item("alert-html")).await.unwrap();
}

#[tokio::test]
async fn timeouts_dropped_connections_and_5xx_are_retryable() {
    let emu = emulator().await;
    let sn = connect(basic(&emu).with_timeout(Duration::from_millis(150)));

    emu.faults().set_latency(Duration::from_millis(600));
    let err = sn.find_open("alert-slow").await.unwrap_err();
    assert!(matches!(err, ItsmError::Timeout { .. }), "{err:?}");
    assert_eq!(err.retry_class(), RetryClass::Retryable);
    emu.faults().set_latency(Duration::ZERO);

    emu.faults().drop_next(1);
    let err = sn.find_open("alert-drop").await.unwrap_err();
    assert_eq!(err.retry_class(), RetryClass::Retryable, "{err:?}");

    for status in [500, 502, 503, 504] {
        emu.faults().fail_next(1, status);
        let err = sn.find_open("alert-5xx").await.unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert_eq!(err.retry_class(), RetryClass::Retryable, "{err}");
    }
    assert_eq!(sn.find_open("alert-5xx").await.unwrap(), None);
}

#[tokio::test]
async fn acl_refusal_is_permanent_with_the_instance_message() {
    let emu = emulator().await;
    let sn = connect(basic(&emu));
    emu.deny_writes("incident");
    let err = sn.create(&item("alert-acl")).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.retry_class(), RetryClass::Permanent);
    let ItsmError::Http { message, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(!message.is_empty());
}
