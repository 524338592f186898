//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use secure_export_bmc::{BmcConfig, BmcConnector};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const PASSWORD: &str = "p@ss wörd&x=1";

/// A config pointing at `base` with a recognisable password and short timeouts.
pub fn config(base: &str) -> BmcConfig {
    let mut config = BmcConfig::new(base, "azure-int", PASSWORD);
    config.timeout = Duration::from_secs(5);
    config
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn connector(base: &str) -> BmcConnector {
    BmcConnector::new(config(base), client()).unwrap()
}

/// Mounts a login endpoint answering `tok-1`, `tok-2`, ...; returns the login counter.
pub async fn mount_login(server: &MockServer, delay: Duration) -> Arc<AtomicUsize> {
    let logins = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&logins);
    Mock::given(method("POST"))
        .and(path("/api/jwt/login"))
        .respond_with(move |_: &Request| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            ResponseTemplate::new(200)
                .set_body_string(format!("tok-{n}\n"))
                .set_delay(delay)
        })
        .mount(server)
        .await;
    logins
}

/// The AR error array body.
pub fn ar_error(number: u32, text: &str, appended: &str) -> serde_json::Value {
    serde_json::json!([{
        "messageType": "ERROR",
        "messageText": text,
        "messageAppendedText": appended,
        "messageNumber": number
    }])
}

/// The `Authorization` header of a recorded request.
pub fn auth(req: &Request) -> String {
    req.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Requests received so far whose path starts with `prefix`.
pub async fn requests_to(server: &MockServer, prefix: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path().starts_with(prefix))
        .collect()
}

/// A decoded query parameter of a recorded request.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
