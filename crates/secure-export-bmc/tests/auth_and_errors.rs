//! Token handling, error mapping and input checks, against wiremock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use secure_export_bmc::BmcConnector;
use secure_export_itsm::{
    ItsmConnector, ItsmError, NewWorkItem, RetryClass, Severity, WorkItemRef, WorkItemState,
    WorkItemUpdate,
};
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const HD_ID: &str = "000000000000301";
const STATE_PATH: &str = "/api/arsys/v1/entry/HPD:Help%20Desk/000000000000301";

fn item() -> WorkItemRef {
    WorkItemRef::new(HD_ID)
}

/// Mounts the state endpoint answering `Assigned`, except `reject` answers for tokens listed.
async fn mount_state(
    server: &MockServer,
    rejected: &'static [&'static str],
    reject: ResponseTemplate,
) {
    Mock::given(method("GET"))
        .and(path(STATE_PATH))
        .respond_with(move |req: &Request| {
            let token = support::auth(req);
            if rejected.iter().any(|t| token == format!("AR-JWT {t}")) {
                reject.clone()
            } else {
                ResponseTemplate::new(200).set_body_json(json!({"values": {"Status": "Assigned"}}))
            }
        })
        .mount(server)
        .await;
}

#[tokio::test]
async fn rejected_token_triggers_one_login_and_one_retry() {
    let server = MockServer::start().await;
    let logins = support::mount_login(&server, Duration::ZERO).await;
    mount_state(&server, &["tok-1"], ResponseTemplate::new(401)).await;
    let bmc = support::connector(&server.uri());
    assert_eq!(bmc.state(&item()).await.unwrap(), WorkItemState::Open);
    assert_eq!(logins.load(Ordering::SeqCst), 2);
    let calls = support::requests_to(&server, STATE_PATH).await;
    let tokens: Vec<String> = calls.iter().map(support::auth).collect();
    assert_eq!(tokens, ["AR-JWT tok-1", "AR-JWT tok-2"]);
    // The new token is reused.
    bmc.state(&item()).await.unwrap();
    assert_eq!(logins.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn ar_error_623_in_any_status_also_triggers_a_new_login() {
    let server = MockServer::start().await;
    let logins = support::mount_login(&server, Duration::ZERO).await;
    let body = support::ar_error(623, "Authentication failed", "azure-int");
    mount_state(
        &server,
        &["tok-1"],
        ResponseTemplate::new(500).set_body_json(body),
    )
    .await;
    let bmc = support::connector(&server.uri());
    assert_eq!(bmc.state(&item()).await.unwrap(), WorkItemState::Open);
    assert_eq!(logins.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_second_rejection_is_an_auth_error_not_a_login_loop() {
    let server = MockServer::start().await;
    let logins = support::mount_login(&server, Duration::ZERO).await;
    mount_state(
        &server,
        &["tok-1", "tok-2", "tok-3", "tok-4"],
        ResponseTemplate::new(401),
    )
    .await;
    let bmc = support::connector(&server.uri());
    let err = bmc.state(&item()).await.unwrap_err();
    assert!(matches!(err, ItsmError::Auth { .. }), "{err:?}");
    assert_eq!(err.retry_class(), RetryClass::Permanent);
    assert_eq!(logins.load(Ordering::SeqCst), 2);
    // The rejected token is forgotten: the next call logs in afresh (tok-3), is rejected
    // and tries one more new login (tok-4).
    bmc.state(&item()).await.unwrap_err();
    assert_eq!(logins.load(Ordering::SeqCst), 4);
    let tokens: Vec<String> = support::requests_to(&server, STATE_PATH)
        .await
        .iter()
        .map(support::auth)
        .collect();
    assert_eq!(
        tokens,
        [
            "AR-JWT tok-1",
            "AR-JWT tok-2",
            "AR-JWT tok-3",
            "AR-JWT tok-4"
        ]
    );
}

#[tokio::test]
async fn concurrent_callers_share_one_login() {
    let server = MockServer::start().await;
    let logins = support::mount_login(&server, Duration::from_millis(150)).await;
    mount_state(&server, &[], ResponseTemplate::new(401)).await;
    let bmc = Arc::new(support::connector(&server.uri()));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let bmc = Arc::clone(&bmc);
            tokio::spawn(async move { bmc.state(&item()).await })
        })
        .collect();
    for task in futures::future::join_all(tasks).await {
        assert_eq!(task.unwrap().unwrap(), WorkItemState::Open);
    }
    assert_eq!(logins.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn concurrent_rejections_share_one_new_login() {
    let server = MockServer::start().await;
    let logins = support::mount_login(&server, Duration::from_millis(50)).await;
    mount_state(&server, &["tok-1"], ResponseTemplate::new(401)).await;
    let bmc = Arc::new(support::connector(&server.uri()));
    bmc.health().await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let bmc = Arc::clone(&bmc);
            tokio::spawn(async move { bmc.state(&item()).await })
        })
        .collect();
    for task in futures::future::join_all(tasks).await {
        task.unwrap().unwrap();
    }
    assert_eq!(
        logins.load(Ordering::SeqCst),
        2,
        "tok-1 once, then one shared new login"
    );
}

#[tokio::test]
async fn token_is_replaced_before_its_assumed_expiry_without_a_401() {
    let server = MockServer::start().await;
    let logins = support::mount_login(&server, Duration::ZERO).await;
    mount_state(&server, &[], ResponseTemplate::new(401)).await;
    let mut config = support::config(&server.uri());
    config.token_lifetime = Duration::from_millis(1000);
    let bmc = BmcConnector::new(config, support::client()).unwrap();
    bmc.state(&item()).await.unwrap();
    bmc.state(&item()).await.unwrap();
    assert_eq!(logins.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(600)).await; // past lifetime - margin (500 ms)
    bmc.state(&item()).await.unwrap();
    assert_eq!(logins.load(Ordering::SeqCst), 2);
    let tokens: Vec<String> = support::requests_to(&server, STATE_PATH)
        .await
        .iter()
        .map(support::auth)
        .collect();
    assert_eq!(tokens, ["AR-JWT tok-1", "AR-JWT tok-1", "AR-JWT tok-2"]);
}

#[tokio::test]
async fn a_token_stating_a_short_lifetime_is_replaced_early() {
    use base64::Engine as _;
    let server = MockServer::start().await;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    // AR-JWT style claims: nbf and exp, no iat; a 1 s lifetime (the config assumes 1 h).
    let token = format!(
        "{}.{}.sig",
        b64(r#"{"alg":"HS256"}"#),
        b64(r#"{"nbf":100,"exp":101}"#)
    );
    Mock::given(method("POST"))
        .and(path("/api/jwt/login"))
        .respond_with(ResponseTemplate::new(200).set_body_string(token))
        .expect(2)
        .mount(&server)
        .await;
    mount_state(&server, &[], ResponseTemplate::new(401)).await;
    let bmc = support::connector(&server.uri());
    bmc.state(&item()).await.unwrap();
    bmc.state(&item()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await; // refreshed at half the lifetime
    bmc.state(&item()).await.unwrap();
    let rejected = support::requests_to(&server, STATE_PATH).await.len();
    assert_eq!(rejected, 3, "no call was refused and retried");
}

#[tokio::test]
async fn refused_login_is_a_permanent_auth_error_without_the_password() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/jwt/login"))
        .respond_with(ResponseTemplate::new(401).set_body_json(support::ar_error(
            623,
            "Authentication failed",
            "azure-int",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let bmc = support::connector(&server.uri());
    let err = bmc.find_open("corr").await.unwrap_err();
    assert!(matches!(err, ItsmError::Auth { .. }), "{err:?}");
    assert_eq!(err.retry_class(), RetryClass::Permanent);
    let text = format!("{err} {err:?}");
    assert!(text.contains("Authentication failed"), "{text}");
    assert!(!text.contains(support::PASSWORD), "{text}");
}

#[tokio::test]
async fn unavailable_login_is_retryable_and_empty_token_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/jwt/login"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "3"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/jwt/login"))
        .respond_with(ResponseTemplate::new(200).set_body_string("  \n"))
        .mount(&server)
        .await;
    let bmc = support::connector(&server.uri());
    let err = bmc.health().await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(
        err.retry_class(),
        RetryClass::Throttled(Duration::from_secs(3))
    );
    let err = bmc.health().await.unwrap_err();
    assert!(err.to_string().contains("empty token"), "{err}");
}

#[tokio::test]
async fn logout_posts_the_token_and_forgets_it() {
    let server = MockServer::start().await;
    let logins = support::mount_login(&server, Duration::ZERO).await;
    mount_state(&server, &[], ResponseTemplate::new(401)).await;
    Mock::given(method("POST"))
        .and(path("/api/jwt/logout"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let bmc = support::connector(&server.uri());
    bmc.logout().await; // nothing to log out yet: no request
    bmc.state(&item()).await.unwrap();
    bmc.logout().await;
    let outs = support::requests_to(&server, "/api/jwt/logout").await;
    assert_eq!(outs.len(), 1);
    assert_eq!(support::auth(&outs[0]), "AR-JWT tok-1");
    bmc.state(&item()).await.unwrap();
    assert_eq!(logins.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn http_errors_keep_status_message_number_and_retry_class() {
    let server = MockServer::start().await;
    support::mount_login(&server, Duration::ZERO).await;
    let responses = [
        ResponseTemplate::new(429).insert_header("Retry-After", "7"),
        ResponseTemplate::new(503),
        ResponseTemplate::new(500).set_body_json(support::ar_error(9999, "Workflow failed", "x")),
        ResponseTemplate::new(400).set_body_json(support::ar_error(
            314,
            "Field does not exist on current form",
            "HPD:Help Desk : Foo",
        )),
        ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"),
    ];
    for (i, response) in responses.into_iter().enumerate() {
        Mock::given(method("GET"))
            .and(path(STATE_PATH))
            .respond_with(response)
            .up_to_n_times(1)
            .with_priority(u8::try_from(i + 1).unwrap())
            .mount(&server)
            .await;
    }
    let bmc = support::connector(&server.uri());
    let mut seen = Vec::new();
    for _ in 0..5 {
        match bmc.state(&item()).await.unwrap_err() {
            err @ ItsmError::Http { .. } => seen.push(err),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen[0].retry_class(),
        RetryClass::Throttled(Duration::from_secs(7))
    );
    assert_eq!(seen[1].retry_class(), RetryClass::Retryable);
    let ItsmError::Http {
        status,
        message,
        code,
        ..
    } = &seen[2]
    else {
        unreachable!()
    };
    assert_eq!(
        (*status, message.as_str(), code.as_deref()),
        (500, "Workflow failed", Some("9999"))
    );
    assert_eq!(seen[2].retry_class(), RetryClass::Retryable);
    let ItsmError::Http {
        status,
        detail,
        code,
        ..
    } = &seen[3]
    else {
        unreachable!()
    };
    assert_eq!(
        (*status, detail.as_deref(), code.as_deref()),
        (400, Some("HPD:Help Desk : Foo"), Some("314"))
    );
    assert_eq!(seen[3].retry_class(), RetryClass::Permanent);
    assert!(seen[4].to_string().contains("Bad Gateway"), "{}", seen[4]);
    assert_eq!(seen[4].retry_class(), RetryClass::Retryable);
}

#[tokio::test]
async fn missing_entry_is_not_found_and_html_success_is_invalid_response() {
    let server = MockServer::start().await;
    support::mount_login(&server, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path(STATE_PATH))
        .respond_with(ResponseTemplate::new(404).set_body_json(support::ar_error(
            302,
            "Entry does not exist in database",
            HD_ID,
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/arsys/v1/entry/HPD:Help%20Desk"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>Hibernating</html>"))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex("^/api/arsys/v1/entry/HPD:IncidentInterface/"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let bmc = support::connector(&server.uri());
    let err = bmc.state(&item()).await.unwrap_err();
    assert!(
        matches!(&err, ItsmError::NotFound { id, .. } if id == HD_ID),
        "{err:?}"
    );
    let err = bmc.reopen(&item(), "x").await.unwrap_err();
    assert!(matches!(err, ItsmError::NotFound { .. }), "{err:?}");
    let err = bmc.find_open("corr").await.unwrap_err();
    assert!(matches!(err, ItsmError::InvalidResponse { .. }), "{err:?}");
    assert!(err.to_string().contains("Hibernating"), "{err}");
    assert_eq!(err.retry_class(), RetryClass::Retryable);
}

#[tokio::test]
async fn unknown_status_is_an_invalid_response() {
    let server = MockServer::start().await;
    support::mount_login(&server, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path(STATE_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"values": {"Status": "Parked"}})),
        )
        .mount(&server)
        .await;
    let err = support::connector(&server.uri())
        .state(&item())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"Parked\""), "{err}");
}

#[tokio::test]
async fn slow_server_times_out_and_oversized_bodies_are_refused() {
    let server = MockServer::start().await;
    support::mount_login(&server, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path(STATE_PATH))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/arsys/v1/entry/HPD:Help%20Desk"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(5000)))
        .mount(&server)
        .await;
    let mut config = support::config(&server.uri());
    config.timeout = Duration::from_millis(200);
    config.max_response_bytes = 1024;
    let bmc = BmcConnector::new(config, support::client()).unwrap();
    let err = bmc.state(&item()).await.unwrap_err();
    assert!(matches!(err, ItsmError::Timeout { .. }), "{err:?}");
    assert_eq!(err.retry_class(), RetryClass::Retryable);
    let err = bmc.find_open("corr").await.unwrap_err();
    assert!(err.to_string().contains("larger than 1024 bytes"), "{err}");
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let bmc = support::connector(&format!("http://{addr}"));
    let err = bmc.health().await.unwrap_err();
    assert!(matches!(err, ItsmError::Connect { .. }), "{err:?}");
    assert_eq!(err.retry_class(), RetryClass::Retryable);
}

#[tokio::test]
async fn location_fallback_reads_only_the_entry_id() {
    let server = MockServer::start().await;
    support::mount_login(&server, Duration::ZERO).await;
    // Remedy 25.2+ style: 201, empty body, Location (here pointing at another host).
    Mock::given(method("POST"))
        .and(path("/api/arsys/v1/entry/HPD:IncidentInterface_Create"))
        .respond_with(ResponseTemplate::new(201).insert_header(
            "Location",
            "https://elsewhere.invalid/api/arsys/v1/entry/HPD:IncidentInterface_Create/000000000000777",
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/api/arsys/v1/entry/HPD:IncidentInterface_Create/000000000000777",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "values": {"Incident Number": "INC000000000042", "Request ID": "000000000000777"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/arsys/v1/entry/HPD:Help%20Desk"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "entries": [{"values": {"Entry ID": "000000000000042", "Incident Number": "INC000000000042"}}]
        })))
        .mount(&server)
        .await;
    let mut config = support::config(&server.uri());
    config.item_url_template = Some("https://smartit.example/incident/{number}?e={id}".to_owned());
    let bmc = BmcConnector::new(config, support::client()).unwrap();
    let created = bmc
        .create(&NewWorkItem::new("corr", "t", Severity::Sev3))
        .await
        .unwrap();
    assert_eq!(created.id, "000000000000042");
    assert_eq!(created.number.as_deref(), Some("INC000000000042"));
    assert_eq!(
        created.url.as_deref(),
        Some("https://smartit.example/incident/INC000000000042?e=000000000000042")
    );
    let read =
        support::requests_to(&server, "/api/arsys/v1/entry/HPD:IncidentInterface_Create/").await;
    assert_eq!(
        read[0].url.query(),
        Some("fields=values%28Incident%20Number%2CRequest%20ID%29")
    );
}

#[tokio::test]
async fn create_without_number_or_location_is_an_invalid_response() {
    let server = MockServer::start().await;
    support::mount_login(&server, Duration::ZERO).await;
    Mock::given(method("POST"))
        .and(path("/api/arsys/v1/entry/HPD:IncidentInterface_Create"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    let err = support::connector(&server.uri())
        .create(&NewWorkItem::new("corr", "t", Severity::Sev3))
        .await
        .unwrap_err();
    assert!(matches!(err, ItsmError::InvalidResponse { .. }), "{err:?}");
    assert!(err.to_string().contains("without Location"), "{err}");
}

#[tokio::test]
async fn hostile_correlation_ids_stay_inside_one_string_literal() {
    let server = MockServer::start().await;
    support::mount_login(&server, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path("/api/arsys/v1/entry/HPD:Help%20Desk"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"entries": []})))
        .mount(&server)
        .await;
    let bmc = support::connector(&server.uri());
    let cases = [
        (r#"x" OR 'Status' != "y"#, r#""x"" OR 'Status' != ""y""#),
        (r#"""#, r#""""""#),
        ("a&q=b#frag", r#""a&q=b#frag""#),
        ("100%_LIKE$NULL$", r#""100%_LIKE$NULL$""#),
        ("ünïcødé 'quoted'", r#""ünïcødé 'quoted'""#),
    ];
    for (id, literal) in cases {
        assert_eq!(bmc.find_open(id).await.unwrap(), None);
        let last = support::requests_to(&server, "/api/arsys/v1/entry/")
            .await
            .pop()
            .unwrap();
        let q = support::query_param(&last, "q").unwrap();
        assert_eq!(
            q,
            format!("'Vendor Ticket Number'={literal} AND 'Status' < \"Resolved\"")
        );
        assert!(!last.url.query().unwrap().contains('#'));
        let names: Vec<String> = last
            .url
            .query_pairs()
            .map(|(k, _)| k.into_owned())
            .collect();
        assert_eq!(
            names,
            ["q", "fields", "sort", "limit"],
            "{:?}",
            last.url.query()
        );
        assert_eq!(support::query_param(&last, "limit").as_deref(), Some("50"));
    }
    let before = server.received_requests().await.unwrap().len();
    for bad in ["", "  ", "line\nbreak", "nul\0"] {
        let err = bmc.find_open(bad).await.unwrap_err();
        assert!(matches!(err, ItsmError::Config { .. }), "{bad:?}: {err:?}");
        let err = bmc
            .create(&NewWorkItem::new(bad, "t", Severity::Sev1))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("correlation id"), "{err}");
    }
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        before,
        "nothing sent"
    );
}

#[tokio::test]
async fn resolved_without_status_reason_is_never_sent() {
    let server = MockServer::start().await;
    support::mount_login(&server, Duration::ZERO).await;
    Mock::given(method("PUT"))
        .and(path_regex("^/api/arsys/v1/entry/HPD:IncidentInterface/"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let mut config = support::config(&server.uri());
    config.resolve_status_reason = "No Further Action Required".to_owned();
    let bmc = BmcConnector::new(config, support::client()).unwrap();
    bmc.update(
        &item(),
        &WorkItemUpdate::default().with_field("Status", "Resolved"),
    )
    .await
    .unwrap();
    let err = bmc
        .update(
            &item(),
            &WorkItemUpdate::default().with_field("Status", "Pending"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Status_Reason"), "{err}");
    bmc.resolve(
        &item(),
        &secure_export_itsm::Resolution::new("ok").with_code(""),
    )
    .await
    .unwrap();
    let puts = support::requests_to(&server, "/api/arsys/v1/entry/HPD:IncidentInterface/").await;
    assert_eq!(
        puts.len(),
        2,
        "the Pending update was refused before sending"
    );
    for put in &puts {
        let body: serde_json::Value = put.body_json().unwrap();
        assert_eq!(body["values"]["Status"], "Resolved");
        assert_eq!(
            body["values"]["Status_Reason"],
            "No Further Action Required"
        );
    }
}

#[tokio::test]
async fn malformed_work_item_ids_are_refused_before_any_request() {
    let server = MockServer::start().await;
    let bmc = support::connector(&server.uri());
    for bad in ["", "../x", "a|b", "a/b", "x?y", &"9".repeat(65)] {
        let err = bmc.state(&WorkItemRef::new(bad)).await.unwrap_err();
        assert!(matches!(err, ItsmError::Config { .. }), "{bad:?}: {err:?}");
        assert!(err.to_string().contains("not a BMC entry id"), "{err}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn find_open_rechecks_status_and_picks_the_newest() {
    let server = MockServer::start().await;
    support::mount_login(&server, Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path("/api/arsys/v1/entry/HPD:Help%20Desk"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"entries": [
            {"values": {"Entry ID": "000000000000009", "Incident Number": "INC9", "Status": "Closed"}},
            {"values": {"Entry ID": "000000000000005", "Incident Number": "INC5", "Status": "Assigned"}},
            {"values": {"Entry ID": "000000000000007", "Incident Number": "INC7", "Status": "In Progress"}},
            {"values": {"Entry ID": "../bad", "Status": "New"}}
        ]})))
        .mount(&server)
        .await;
    let found = support::connector(&server.uri())
        .find_open("corr")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, "000000000000007");
    assert_eq!(found.number.as_deref(), Some("INC7"));
}

#[tokio::test]
async fn debug_output_never_shows_password_or_token() {
    let server = MockServer::start().await;
    support::mount_login(&server, Duration::ZERO).await;
    let bmc = support::connector(&server.uri());
    bmc.health().await.unwrap();
    let text = format!("{bmc:?} {:?} {:?}", bmc.config(), bmc.cmdb());
    assert!(!text.contains(support::PASSWORD), "{text}");
    assert!(!text.contains("tok-1"), "{text}");
    assert!(text.contains("azure-int"), "{text}");
}

#[test]
fn plain_http_is_refused_except_on_loopback() {
    let err = BmcConnector::new(support::config("http://bmc.example.com"), support::client())
        .unwrap_err();
    assert!(matches!(err, ItsmError::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("must use https"), "{err}");
    BmcConnector::new(
        support::config("https://bmc.example.com/"),
        support::client(),
    )
    .unwrap();
    BmcConnector::new(support::config("http://127.0.0.1:8082"), support::client()).unwrap();
}
