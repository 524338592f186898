//! Security review: a hostile or broken OAuth token endpoint cannot crash the connector with an
//! absurd `expires_in` (the renewal time used to overflow `SystemTime` and panic).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use secure_export_itsm::ItsmConnector;
use secure_export_servicenow::{Auth, ServiceNowConfig, ServiceNowConnector};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn huge_expires_in_does_not_panic() {
    for expires_in in [
        json!(u64::MAX),
        json!(u64::MAX.to_string()),
        json!(i64::MAX),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth_token.do"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "tok", "expires_in": expires_in
            })))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "result": [] })))
            .mount(&server)
            .await;
        let auth = Auth::oauth_client_credentials("client-id", "CLIENT-SECRET");
        let sn = ServiceNowConnector::new(
            ServiceNowConfig::new(server.uri(), auth),
            reqwest::Client::new(),
        )
        .unwrap();
        // Spawned so that a panic shows up as a JoinError instead of aborting the test early.
        let outcome = tokio::spawn(async move {
            let first = sn.find_open("x").await.map(|_| ());
            let second = sn.find_open("y").await.map(|_| ());
            (first, second)
        })
        .await;
        let (first, second) = outcome.expect("the connector panicked on a huge expires_in");
        first.unwrap();
        second.unwrap();
        let token_calls = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path() == "/oauth_token.do")
            .count();
        assert_eq!(token_calls, 1, "the token is reused while it is fresh");
    }
}
