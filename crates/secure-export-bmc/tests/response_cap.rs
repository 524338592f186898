//! Response bodies are read up to `max_response_bytes`: a larger answer is an error with a
//! sensible retry class, never a panic and never unbounded memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use secure_export_bmc::{BmcConfig, BmcConnector};
use secure_export_cmdb::{CmdbLookup, LookupError};
use secure_export_itsm::{ItsmConnector, ItsmError, RetryClass};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CAP: usize = 4096;

fn connector(base: &str) -> BmcConnector {
    let mut config = support::config(base);
    config.max_response_bytes = CAP;
    BmcConnector::new(config, support::client()).unwrap()
}

#[test]
fn the_default_cap_is_four_mib() {
    assert_eq!(
        BmcConfig::new("https://x.example", "u", "p").max_response_bytes,
        4 << 20
    );
}

#[tokio::test]
async fn an_oversized_list_is_a_retryable_invalid_response() {
    let server = MockServer::start().await;
    support::mount_login(&server, Duration::ZERO).await;
    let entry = json!({"values": {"Entry ID": "000000000000001", "Status": "New"}});
    let big = json!({"entries": vec![entry; CAP / 20]});
    assert!(big.to_string().len() > CAP);
    Mock::given(method("GET"))
        .and(path("/api/arsys/v1/entry/HPD:Help%20Desk"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&big))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/api/cmdb/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "instances": vec![json!({"attributes": {"Name": "x".repeat(100)}}); CAP / 50]
        })))
        .mount(&server)
        .await;
    let bmc = connector(&server.uri());
    let err = bmc.find_open("corr").await.unwrap_err();
    assert!(matches!(err, ItsmError::InvalidResponse { .. }), "{err:?}");
    assert_eq!(err.retry_class(), RetryClass::Retryable);
    assert!(err.to_string().contains("larger than 4096 bytes"), "{err}");
    let err = bmc.cmdb().by_name("vm1", None).await.unwrap_err();
    assert!(
        matches!(err, LookupError::Backend(ItsmError::InvalidResponse { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_oversized_error_answer_keeps_its_status() {
    let server = MockServer::start().await;
    support::mount_login(&server, Duration::ZERO).await;
    let page = "<html>".repeat(CAP);
    Mock::given(method("GET"))
        .and(path("/api/arsys/v1/entry/HPD:Help%20Desk"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("retry-after", "13")
                .set_body_string(page.clone()),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/arsys/v1/entry/HPD:Help%20Desk"))
        .respond_with(ResponseTemplate::new(400).set_body_string(page))
        .mount(&server)
        .await;
    let bmc = connector(&server.uri());
    let err = bmc.find_open("corr").await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(
        err.retry_class(),
        RetryClass::Throttled(Duration::from_secs(13))
    );
    assert!(err.to_string().contains("larger than 4096 bytes"), "{err}");
    let err = bmc.find_open("corr").await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.retry_class(), RetryClass::Permanent);
}

#[tokio::test]
async fn an_oversized_login_answer_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/jwt/login"))
        .respond_with(ResponseTemplate::new(200).set_body_string("t".repeat(CAP + 1)))
        .mount(&server)
        .await;
    let err = connector(&server.uri()).health().await.unwrap_err();
    assert!(matches!(err, ItsmError::InvalidResponse { .. }), "{err:?}");
    assert!(err.to_string().contains("login"), "{err}");
}

/// A server that answers logins with a token and everything else with a chunked body that
/// never ends (no `Content-Length`), counting what it sent before the client hung up.
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
                loop {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    if request.starts_with(b"POST /api/jwt/login") {
                        // The form body is small; read what arrived with the head and answer.
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\
                                      content-length: 5\r\n\r\ntok-1";
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                        continue;
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
                    return;
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
    let bmc = connector(&uri);
    let err = tokio::time::timeout(Duration::from_secs(30), bmc.find_open("corr"))
        .await
        .expect("the read stops at the cap instead of waiting for the end")
        .unwrap_err();
    assert!(matches!(err, ItsmError::InvalidResponse { .. }), "{err:?}");
    assert_eq!(err.retry_class(), RetryClass::Retryable);
    assert!(
        sent.load(Ordering::Relaxed) < 64 << 20,
        "the client hung up long before the server's limit ({} bytes sent)",
        sent.load(Ordering::Relaxed)
    );
}
