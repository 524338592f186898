//! Exact wire format of every request, asserted with wiremock so that the emulator cannot drift
//! into agreeing with a wrong client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use secure_export_itsm::{
    CiRef, ItsmConnector, NewWorkItem, Resolution, Severity, WorkItemRef, WorkItemState,
    WorkItemUpdate,
};
use secure_export_servicenow::{Auth, ServiceNowConfig, ServiceNowConnector, WorkItemKind};
use serde_json::json;
use wiremock::matchers::{body_json, body_string, header, method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// Matches the raw (still percent-encoded) query string exactly.
struct RawQuery(&'static str);

impl Match for RawQuery {
    fn matches(&self, request: &Request) -> bool {
        request.url.query().unwrap_or("") == self.0
    }
}

/// Matches requests without a body.
struct NoBody;

impl Match for NoBody {
    fn matches(&self, request: &Request) -> bool {
        request.body.is_empty()
    }
}

const SYS_ID: &str = "46d44f2c2f1231002da3c8a64ba7a49b";
const BASIC: &str = "Basic c3ZjOnB3";

fn connector(
    server: &MockServer,
    config: impl FnOnce(ServiceNowConfig) -> ServiceNowConfig,
) -> ServiceNowConnector {
    let config = config(ServiceNowConfig::new(
        server.uri(),
        Auth::basic("svc", "pw"),
    ));
    ServiceNowConnector::new(config, reqwest::Client::new()).unwrap()
}

fn json_headers(m: wiremock::MockBuilder) -> wiremock::MockBuilder {
    m.and(header("authorization", BASIC))
        .and(header("accept", "application/json"))
        .and(header("content-type", "application/json"))
}

#[tokio::test]
async fn incident_lifecycle_requests_are_exact() {
    let server = MockServer::start().await;
    let base = server.uri();
    let sn = connector(&server, |c| {
        let mut c = c
            .with_assignment_group("grp-1")
            .with_caller_id("user-1")
            .with_extra_field("u_source", "azure");
        c.category = Some("software".to_owned());
        c.subcategory = Some("monitoring".to_owned());
        c.contact_type = Some("monitoring".to_owned());
        c
    });

    json_headers(Mock::given(method("POST")))
        .and(path("/api/now/table/incident"))
        .and(RawQuery(
            "sysparm_exclude_reference_link=true&sysparm_fields=sys_id%2Cnumber",
        ))
        .and(body_json(json!({
            "short_description": "[Sev1] cpu high - vm1",
            "description": "CPU above 90%",
            "impact": "2",
            "urgency": "1",
            "correlation_id": "corr-1",
            "correlation_display": "Azure Monitor",
            "caller_id": "user-1",
            "assignment_group": "grp-1",
            "category": "software",
            "subcategory": "monitoring",
            "contact_type": "monitoring",
            "cmdb_ci": "ci-1",
            "u_source": "azure",
            "u_alert_rule": "cpu",
        })))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header(
                    "location",
                    format!("{base}/api/now/table/incident/{SYS_ID}").as_str(),
                )
                .set_body_json(json!({"result": {"sys_id": SYS_ID, "number": "INC0010001"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    for ci in ["ci-2", "ci-3"] {
        json_headers(Mock::given(method("POST")))
            .and(path("/api/now/table/task_ci"))
            .and(RawQuery("sysparm_fields=sys_id"))
            .and(body_json(json!({"task": SYS_ID, "ci_item": ci})))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(json!({"result": {"sys_id": "x"}})),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/api/now/table/incident"))
        .and(header("authorization", BASIC))
        .and(header("accept", "application/json"))
        .and(NoBody)
        .and(RawQuery(
            "sysparm_query=correlation_id%3Dcorr-1%5Eactive%3Dtrue%5EstateNOT+IN6%2C7%2C8%5EORDERBYsys_created_on\
             &sysparm_fields=sys_id%2Cnumber%2Cstate&sysparm_exclude_reference_link=true&sysparm_limit=1",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"result": [{"sys_id": SYS_ID, "number": "INC0010001", "state": "1"}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let record = format!("/api/now/table/incident/{SYS_ID}");
    let patches = [
        json!({"work_notes": "fired again", "u_count": "2"}),
        json!({"state": "6", "close_code": "Solution provided", "close_notes": "Alert resolved"}),
        json!({"state": "2", "work_notes": "fired after resolve"}),
    ];
    for body in patches {
        json_headers(Mock::given(method("PATCH")))
            .and(path(record.as_str()))
            .and(RawQuery("sysparm_fields=sys_id"))
            .and(body_json(body))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"result": {"sys_id": SYS_ID}})),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(record.as_str()))
        .and(header("authorization", BASIC))
        .and(RawQuery(
            "sysparm_fields=state%2Cactive&sysparm_exclude_reference_link=true",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"result": {"state": "6", "active": "false"}})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let item = NewWorkItem::new("corr-1", "[Sev1] cpu high - vm1", Severity::Sev1)
        .with_description("CPU above 90%")
        .with_ci(CiRef::new("ci-1", "vm1"))
        .with_ci(CiRef::new("ci-2", "vm2"))
        .with_ci(CiRef::new("ci-3", "vm3"))
        .with_field("u_alert_rule", "cpu");
    let created = sn.create(&item).await.unwrap();
    assert_eq!(
        created,
        WorkItemRef {
            id: SYS_ID.to_owned(),
            number: Some("INC0010001".to_owned()),
            url: Some(format!("{base}/incident.do?sys_id={SYS_ID}")),
        }
    );
    assert_eq!(
        sn.find_open("corr-1").await.unwrap().map(|r| r.id),
        Some(SYS_ID.to_owned())
    );
    sn.update(
        &created,
        &WorkItemUpdate::note("fired again").with_field("u_count", "2"),
    )
    .await
    .unwrap();
    sn.resolve(&created, &Resolution::new("Alert resolved"))
        .await
        .unwrap();
    assert_eq!(sn.state(&created).await.unwrap(), WorkItemState::Resolved);
    sn.reopen(&created, "fired after resolve").await.unwrap();
    // An empty update sends nothing (the mocks' expect(1) would fail on an extra PATCH).
    sn.update(&created, &WorkItemUpdate::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn first_event_request_is_exact() {
    let server = MockServer::start().await;
    let sn = connector(&server, |c| c.with_kind(WorkItemKind::Event));
    Mock::given(method("POST"))
        .and(path("/api/now/table/em_event"))
        .and(header("authorization", BASIC))
        .and(header("content-type", "application/json"))
        .and(RawQuery(
            "sysparm_exclude_reference_link=true&sysparm_fields=sys_id%2Cnumber",
        ))
        .and(|r: &Request| {
            let b: serde_json::Value = r.body_json().unwrap();
            b["message_key"] == "corr-ev"
                && b["severity"] == "1"
                && b["source"] == "Azure Monitor"
                && b["node"] == "vm1"
                && b["resolution_state"] == "New"
                && b["additional_info"]
                    .as_str()
                    .is_some_and(|s| s.contains(r#""cmdb_ci":"ci-1""#))
        })
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"result": {"sys_id": "ev1"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let item =
        NewWorkItem::new("corr-ev", "disk full", Severity::Sev0).with_ci(CiRef::new("ci-1", "vm1"));
    assert_eq!(sn.create(&item).await.unwrap().id, "ev1");
}

#[tokio::test]
async fn oauth_password_grant_form_is_exact_and_401_renews_once() {
    let server = MockServer::start().await;
    let config = ServiceNowConfig::new(
        server.uri(),
        Auth::oauth_password("cid", "c-secret", "svc", "p&w=1"),
    );
    let sn = ServiceNowConnector::new(config, reqwest::Client::new()).unwrap();
    Mock::given(method("POST"))
        .and(path("/oauth_token.do"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(
            "grant_type=password&client_id=cid&client_secret=c-secret&username=svc&password=p%26w%3D1",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "tok-1", "refresh_token": "ref-1", "scope": "useraccount",
            "token_type": "Bearer", "expires_in": 1799
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth_token.do"))
        .and(body_string("grant_type=refresh_token&client_id=cid&client_secret=c-secret&refresh_token=ref-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "tok-2", "scope": "useraccount", "token_type": "Bearer", "expires_in": "1799"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/now/table/incident"))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": "User is not authenticated", "detail": "Required to provide Auth information"},
            "status": "failure"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/now/table/incident"))
        .and(header("authorization", "Bearer tok-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"result": []})))
        .expect(2)
        .mount(&server)
        .await;
    assert_eq!(sn.find_open("nothing").await.unwrap(), None);
    // The renewed token is kept: no further token request.
    sn.health().await.unwrap();
}

#[tokio::test]
async fn oauth_client_credentials_form_is_exact_and_a_second_401_is_returned() {
    let server = MockServer::start().await;
    let mut auth = Auth::oauth_client_credentials("cid", "c-secret");
    if let Auth::OAuthClientCredentials { scope, .. } = &mut auth {
        *scope = Some("useraccount".to_owned());
    }
    let sn = ServiceNowConnector::new(
        ServiceNowConfig::new(server.uri(), auth),
        reqwest::Client::new(),
    )
    .unwrap();
    Mock::given(method("POST"))
        .and(path("/oauth_token.do"))
        .and(body_string(
            "grant_type=client_credentials&client_id=cid&client_secret=c-secret&scope=useraccount",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "cc-tok", "token_type": "Bearer", "expires_in": 1799
        })))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer cc-tok"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": "User is not authenticated", "detail": "Required to provide Auth information"},
            "status": "failure"
        })))
        .expect(2)
        .mount(&server)
        .await;
    let err = sn.health().await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(
        err.to_string().contains("User is not authenticated"),
        "{err}"
    );
    assert!(!err.retry_class().is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_401s_on_one_token_renew_it_once() {
    let server = MockServer::start().await;
    let auth = Auth::oauth_password("cid", "c-secret", "svc", "pw");
    let sn = ServiceNowConnector::new(
        ServiceNowConfig::new(server.uri(), auth),
        reqwest::Client::new(),
    )
    .unwrap();
    Mock::given(method("POST"))
        .and(path("/oauth_token.do"))
        .and(body_string(
            "grant_type=password&client_id=cid&client_secret=c-secret&username=svc&password=pw",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "old", "refresh_token": "r", "expires_in": 1799}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth_token.do"))
        .and(body_string(
            "grant_type=refresh_token&client_id=cid&client_secret=c-secret&refresh_token=r",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "new", "expires_in": 1799})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer old"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer new"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"result": []})))
        .expect(8)
        .mount(&server)
        .await;
    // Eight concurrent requests all see a 401 on the first token.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let sn = sn.clone();
            tokio::spawn(async move { sn.find_open(&format!("c{i}")).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), None);
    }
}
