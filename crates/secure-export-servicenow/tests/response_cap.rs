//! Response bodies are read up to `max_response_bytes`: a larger answer is an error with a
//! sensible retry class, never a panic and never unbounded memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use secure_export_cmdb::{CmdbLookup, LookupError};
use secure_export_itsm::{ItsmConnector, ItsmError, RetryClass};
use secure_export_servicenow::{
    Auth, DEFAULT_MAX_RESPONSE_BYTES, ServiceNowConfig, ServiceNowConnector,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CAP: usize = 4096;

fn connector(uri: &str, auth: Auth) -> ServiceNowConnector {
    let config = ServiceNowConfig::new(uri, auth)
        .with_timeout(Duration::from_secs(10))
        .with_max_response_bytes(CAP);
    ServiceNowConnector::new(config, reqwest::Client::new()).unwrap()
}

/// A valid Table API list answer of about `size` bytes.
fn big_list(size: usize) -> serde_json::Value {
    let row = json!({"sys_id": "a".repeat(32), "number": "INC0010001", "state": "1"});
    let rows = size / row.to_string().len() + 1;
    json!({ "result": vec![row; rows] })
}

#[test]
fn the_default_cap_is_four_mib() {
    let config = ServiceNowConfig::new("https://x.service-now.com", Auth::basic("u", "p"));
    assert_eq!(config.max_response_bytes, 4 << 20);
    assert_eq!(DEFAULT_MAX_RESPONSE_BYTES, 4 << 20);
}

#[tokio::test]
async fn a_body_at_the_cap_is_read_and_one_over_is_refused() {
    let server = MockServer::start().await;
    let small = big_list(CAP / 2);
    assert!(small.to_string().len() <= CAP);
    Mock::given(method("GET"))
        .and(path("/api/now/table/incident"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&small))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let big = big_list(CAP + 1);
    Mock::given(method("GET"))
        .and(path("/api/now/table/incident"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&big))
        .mount(&server)
        .await;
    let sn = connector(&server.uri(), Auth::basic("u", "p"));
    assert!(sn.find_open("c1").await.unwrap().is_some());
    let err = sn.find_open("c1").await.unwrap_err();
    assert!(matches!(err, ItsmError::InvalidResponse { .. }), "{err:?}");
    assert_eq!(err.retry_class(), RetryClass::Retryable);
    assert!(err.to_string().contains("larger than 4096 bytes"), "{err}");
}

#[tokio::test]
async fn an_oversized_error_answer_keeps_its_status() {
    let server = MockServer::start().await;
    let page = "<html>".repeat(CAP);
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("retry-after", "11")
                .set_body_string(page.clone()),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_string(page))
        .mount(&server)
        .await;
    let sn = connector(&server.uri(), Auth::basic("u", "p"));
    let err = sn.health().await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(
        err.retry_class(),
        RetryClass::Throttled(Duration::from_secs(11))
    );
    let err = sn.cmdb().by_name("vm1", None).await.unwrap_err();
    let LookupError::Backend(inner) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(inner.status(), Some(403));
    assert_eq!(inner.retry_class(), RetryClass::Permanent);
    assert!(
        matches!(inner, ItsmError::Http { detail: Some(d), .. } if d.contains("larger than 4096")),
        "{inner:?}"
    );
}

#[tokio::test]
async fn an_oversized_token_answer_is_an_error() {
    let server = MockServer::start().await;
    let token = json!({"access_token": "t".repeat(CAP * 2), "expires_in": 1800});
    Mock::given(method("POST"))
        .and(path("/oauth_token.do"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/now/table/incident"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"result": {"sys_id": "x"}})))
        .expect(0)
        .mount(&server)
        .await;
    let sn = connector(
        &server.uri(),
        Auth::oauth_client_credentials("cid", "secret"),
    );
    let item = secure_export_itsm::NewWorkItem::new("c1", "t", secure_export_itsm::Severity::Sev2);
    let err = sn.create(&item).await.unwrap_err();
    assert!(matches!(err, ItsmError::InvalidResponse { .. }), "{err:?}");
}

/// A server that answers every request with a chunked body that never ends (no
/// `Content-Length`), counting what it managed to send before the client hung up.
async fn endless_server(sent: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let sent = Arc::clone(&sent);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                            transfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, "[".repeat(16 * 1024));
                // Give up after 256 MiB: a client that reads that far has no cap.
                while sent.load(Ordering::Relaxed) < 256 << 20 {
                    if socket.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    sent.fetch_add(16 * 1024, Ordering::Relaxed);
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn an_endless_body_is_cut_at_the_cap() {
    let sent = Arc::new(AtomicUsize::new(0));
    let uri = endless_server(Arc::clone(&sent)).await;
    let sn = connector(&uri, Auth::basic("u", "p"));
    let err = tokio::time::timeout(Duration::from_secs(30), sn.find_open("c1"))
        .await
        .expect("the read stops at the cap instead of waiting for the end")
        .unwrap_err();
    assert!(matches!(err, ItsmError::InvalidResponse { .. }), "{err:?}");
    assert_eq!(err.retry_class(), RetryClass::Retryable);
    let err = sn.cmdb().by_name("vm1", None).await.unwrap_err();
    assert!(
        matches!(err, LookupError::Backend(ItsmError::InvalidResponse { .. })),
        "{err:?}"
    );
    assert!(
        sent.load(Ordering::Relaxed) < 64 << 20,
        "the client hung up long before the server's limit ({} bytes sent)",
        sent.load(Ordering::Relaxed)
    );
}
