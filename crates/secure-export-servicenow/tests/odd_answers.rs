//! Answers a real instance (or a proxy in front of it) can give that are not the happy path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use secure_export_itsm::{
    ItsmConnector, ItsmError, NewWorkItem, RetryClass, Severity, WorkItemRef,
};
use secure_export_servicenow::{Auth, ServiceNowConfig, ServiceNowConnector};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn answering(template: ResponseTemplate) -> (MockServer, ServiceNowConnector) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(template.clone())
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(template.clone())
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(template)
        .mount(&server)
        .await;
    let config = ServiceNowConfig::new(server.uri(), Auth::basic("svc", "pw"))
        .with_timeout(Duration::from_millis(200));
    let sn = ServiceNowConnector::new(config, reqwest::Client::new()).unwrap();
    (server, sn)
}

fn item() -> NewWorkItem {
    NewWorkItem::new("c1", "t", Severity::Sev2)
}

#[tokio::test]
async fn create_takes_the_id_from_location_when_the_body_has_none() {
    let (server, sn) = answering(
        ResponseTemplate::new(201)
            .insert_header(
                "location",
                "https://x/api/now/table/incident/abc123?sysparm_view=",
            )
            .set_body_json(json!({"result": {}})),
    )
    .await;
    let created = sn.create(&item()).await.unwrap();
    assert_eq!(created.id, "abc123");
    assert_eq!(
        created.url,
        Some(format!("{}/incident.do?sys_id=abc123", server.uri()))
    );
}

#[tokio::test]
async fn create_without_any_id_is_an_invalid_response() {
    let (_server, sn) =
        answering(ResponseTemplate::new(201).set_body_json(json!({"result": {}}))).await;
    let err = sn.create(&item()).await.unwrap_err();
    assert!(matches!(err, ItsmError::InvalidResponse { .. }), "{err:?}");
}

#[tokio::test]
async fn a_list_answer_without_result_rows_is_not_read_as_no_match() {
    let (_server, sn) =
        answering(ResponseTemplate::new(200).set_body_json(json!({"records": []}))).await;
    let err = sn.find_open("c1").await.unwrap_err();
    assert!(matches!(err, ItsmError::InvalidResponse { .. }), "{err:?}");
    assert_eq!(err.retry_class(), RetryClass::Retryable);
}

#[tokio::test]
async fn json_that_is_not_an_object_and_empty_bodies_are_invalid() {
    for template in [
        ResponseTemplate::new(200).set_body_json(json!([1, 2])),
        ResponseTemplate::new(200),
        ResponseTemplate::new(200)
            .set_body_raw("Want to find out why instances hibernate?", "text/html"),
    ] {
        let (_server, sn) = answering(template).await;
        let err = sn.find_open("c1").await.unwrap_err();
        assert!(matches!(err, ItsmError::InvalidResponse { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn a_slow_answer_times_out_and_a_closed_port_fails_to_connect() {
    let (_server, sn) = answering(
        ResponseTemplate::new(200)
            .set_delay(Duration::from_secs(2))
            .set_body_json(json!({"result": []})),
    )
    .await;
    let err = sn.find_open("c1").await.unwrap_err();
    assert!(matches!(err, ItsmError::Timeout { .. }), "{err:?}");

    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config =
        ServiceNowConfig::new(format!("http://127.0.0.1:{port}"), Auth::basic("svc", "pw"));
    let sn = ServiceNowConnector::new(config, reqwest::Client::new()).unwrap();
    let err = sn.state(&WorkItemRef::new("abc")).await.unwrap_err();
    assert!(matches!(err, ItsmError::Connect { .. }), "{err:?}");
    assert_eq!(err.retry_class(), RetryClass::Retryable);
}

#[tokio::test]
async fn throttling_with_an_http_date_retry_after_is_capped() {
    let (_server, sn) = answering(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "Fri, 31 Dec 2100 23:59:59 GMT")
            .set_body_json(json!({"error": {"message": "Rate limit exceeded", "detail": "x"}, "status": "failure"})),
    )
    .await;
    let err = sn.create(&item()).await.unwrap_err();
    assert_eq!(
        err.retry_class(),
        RetryClass::Throttled(secure_export_itsm::MAX_RETRY_AFTER)
    );
}
