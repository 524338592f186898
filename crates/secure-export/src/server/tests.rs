//! The listener limits, over real TCP on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::{ServeOptions, TlsFiles, serve};
use crate::metrics::Metrics;

fn app() -> Router {
    Router::new().route("/healthz", get(|| async { "ok" }))
}

/// Starts `serve` on a loopback port; the returned sender stops it.
async fn start(options: ServeOptions) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        serve(listener, app(), options, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (addr, stop)
}

const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

/// Reads until the peer closes (`Ok(bytes)`), or gives up after `wait` (`Err`).
async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Ok(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return Err(()),
        }
    }
}

#[tokio::test]
async fn slow_headers_are_cut_off_at_the_header_read_timeout() {
    let metrics = Metrics::new();
    let (addr, _stop) = start(
        ServeOptions::new("public")
            .header_read_timeout(Duration::from_millis(300))
            .keep_alive_timeout(Duration::from_millis(300))
            .metrics(metrics.clone()),
    )
    .await;
    // 50 clients send half a header and then trickle a byte every 50 ms.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /api/alerts HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    let started = Instant::now();
    let trickle = async {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            for s in &mut slow {
                let _ = s.write_all(b"a").await;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(3), trickle)
        .await
        .ok();
    let mut closed = 0;
    for s in &mut slow {
        if read_until_closed(s, Duration::from_millis(500))
            .await
            .is_ok()
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 50, "every slow connection is closed");
    assert!(started.elapsed() < Duration::from_secs(4));
    // A well-behaved client is still served.
    let mut ok = TcpStream::connect(addr).await.unwrap();
    ok.write_all(GET).await.unwrap();
    let answer = read_until_closed(&mut ok, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let (addr, _stop) = start(
        ServeOptions::new("public")
            .header_read_timeout(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_millis(200)),
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(GET).await.unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut s, Duration::from_secs(3))
        .await
        .unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    // Closed by the idle timer, well before the 5 s header timeout.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn past_max_connections_new_connections_wait_and_are_then_served() {
    let (addr, _stop) = start(
        ServeOptions::new("public")
            .header_read_timeout(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .max_connections(2),
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The kernel completes the handshake (backlog), but the server does not take it yet.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(GET).await.unwrap();
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf))
            .await
            .is_err(),
        "served beyond max_connections"
    );
    drop(held.remove(0));
    let n = tokio::time::timeout(Duration::from_secs(3), third.read(&mut buf))
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let (addr, stop) = start(ServeOptions::new("public")).await;
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(TcpStream::connect(addr).await.is_err());
}

fn tls_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

/// A TLS client trusting only `cert`: the subject CN the server presented, and its answer.
async fn tls_get(addr: SocketAddr, cert: &std::path::Path) -> Result<(String, Vec<u8>), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let presented = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| String::from_utf8_lossy(c.as_ref()).into_owned())
        .unwrap_or_default();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    Ok((presented, answer))
}

#[tokio::test]
async fn serves_tls_and_reloads_the_certificate_when_the_files_change() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::copy(tls_fixture("cert-a.pem"), &cert).unwrap();
    std::fs::copy(tls_fixture("key-a.pem"), &key).unwrap();
    let files = TlsFiles::new(&cert, &key).reload_interval(Duration::from_millis(50));
    files.check().unwrap();
    let (addr, _stop) = start(ServeOptions::new("public").tls(Some(files))).await;

    let (presented, answer) = tls_get(addr, &tls_fixture("cert-a.pem")).await.unwrap();
    assert!(presented.contains("localhost-a"));
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    // Plain HTTP on the TLS port gets nothing useful.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain.write_all(GET).await.unwrap();
    let got = read_until_closed(&mut plain, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(!got.starts_with(b"HTTP/1.1 200"));

    // Renewal: new files; a broken intermediate state is ignored (old cert kept).
    std::fs::write(&cert, "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (presented, _) = tls_get(addr, &tls_fixture("cert-a.pem")).await.unwrap();
    assert!(
        presented.contains("localhost-a"),
        "kept the old certificate"
    );
    std::fs::copy(tls_fixture("key-b.pem"), &key).unwrap();
    std::fs::copy(tls_fixture("cert-b.pem"), &cert).unwrap();
    let mut reloaded = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Ok((presented, answer)) = tls_get(addr, &tls_fixture("cert-b.pem")).await {
            assert!(presented.contains("localhost-b"));
            assert!(answer.starts_with(b"HTTP/1.1 200"));
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "the new certificate is served without a restart");
}

#[tokio::test]
async fn bad_tls_files_fail_at_start_with_the_path() {
    let missing = TlsFiles::new("/nonexistent/cert.pem", tls_fixture("key-a.pem"));
    let e = missing.check().unwrap_err().to_string();
    assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    let mismatched = TlsFiles::new(tls_fixture("cert-a.pem"), tls_fixture("key-b.pem"));
    assert!(mismatched.check().is_err());
}
