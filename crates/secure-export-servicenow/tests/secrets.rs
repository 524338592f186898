//! Secrets never appear in `Debug` output or error messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use secure_export_itsm::ItsmConnector;
use secure_export_servicenow::{Auth, ServiceNowConfig, ServiceNowConnector};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn debug_of_connector_cmdb_and_errors_never_prints_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth_token.do"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ACCESS-TOKEN-SECRET", "refresh_token": "REFRESH-TOKEN-SECRET", "expires_in": 1799
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({
            "error": {"message": "boom", "detail": "server failed"}, "status": "failure"
        })))
        .mount(&server)
        .await;
    let auth = Auth::oauth_password("client-id", "CLIENT-SECRET", "svc", "USER-PASSWORD");
    let sn = ServiceNowConnector::new(
        ServiceNowConfig::new(server.uri(), auth),
        reqwest::Client::new(),
    )
    .unwrap();
    let err = sn.health().await.unwrap_err();
    assert_eq!(err.status(), Some(500));

    let printed = format!(
        "{sn:?} {sn:#?} {:?} {err} {err:?} {:?}",
        sn.cmdb(),
        sn.config()
    );
    for secret in [
        "CLIENT-SECRET",
        "USER-PASSWORD",
        "ACCESS-TOKEN-SECRET",
        "REFRESH-TOKEN-SECRET",
    ] {
        assert!(!printed.contains(secret), "{secret} leaked: {printed}");
    }
    assert!(printed.contains("client-id") && printed.contains("[redacted]"));
}

#[tokio::test]
async fn rejected_token_request_names_the_grant_not_the_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth_token.do"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "access_denied", "error_description": "access_denied"
        })))
        .mount(&server)
        .await;
    let auth = Auth::oauth_client_credentials("client-id", "CLIENT-SECRET");
    let sn = ServiceNowConnector::new(
        ServiceNowConfig::new(server.uri(), auth),
        reqwest::Client::new(),
    )
    .unwrap();
    let err = sn.find_open("x").await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("grant_type=client_credentials") && text.contains("access_denied"),
        "{text}"
    );
    assert!(!text.contains("CLIENT-SECRET"));
}

#[test]
fn configuration_errors_name_the_setting() {
    let cases = [
        (
            "http://acme.service-now.com",
            Auth::basic("u", "p"),
            "https",
        ),
        (
            "https://u:pw@acme.service-now.com",
            Auth::basic("u", "p"),
            "credentials",
        ),
        (
            "https://acme.service-now.com",
            Auth::basic("", "p"),
            "auth.username",
        ),
        (
            "https://acme.service-now.com",
            Auth::oauth_client_credentials("", "s"),
            "auth.client_id",
        ),
    ];
    for (url, auth, needle) in cases {
        let err =
            ServiceNowConnector::new(ServiceNowConfig::new(url, auth), reqwest::Client::new())
                .unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
        assert!(!err.to_string().contains("pw"), "{err}");
    }
}
