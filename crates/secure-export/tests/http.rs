//! The HTTP contract with Azure Monitor, over real HTTP on loopback with the mock backend.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::{AUDIENCE, Builder, Receiver, SUBSCRIPTION, TENANT, eventually, fired};
use secure_export::store::{
    AcceptOutcome, AuditEntry, CorrelationRecord, DeadLetter, Job, NewAudit, NewDelivery,
    Quarantined, SqliteStore, Store, StoreError,
};
use secure_export_aad::test_util::TestIssuer;
use secure_export_itsm::ItsmError;
use secure_export_itsm::mock::{MockConnector, MockOp};
use serde_json::json;

async fn mock_receiver() -> (Receiver, Arc<MockConnector>) {
    let mock = Arc::new(MockConnector::new());
    let rx = Builder::new()
        .connection("main", mock.clone())
        .start()
        .await;
    (rx, mock)
}

async fn assert_nothing_stored(rx: &Receiver, mock: &MockConnector) {
    assert_eq!(rx.engine.queue_depth().await.unwrap(), 0);
    assert!(rx.engine.quarantined().await.unwrap().is_empty());
    assert!(mock.tickets().is_empty());
}

#[tokio::test]
async fn every_bad_token_is_refused_and_nothing_is_stored() {
    let (rx, mock) = mock_receiver().await;
    let body = serde_json::to_vec(&fired("bad-token", "2025-04-15T18:17:12Z")).unwrap();
    let issuer = &rx.issuer;
    let now = issuer.now();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = issuer.claims(AUDIENCE);
        edit(&mut claims);
        format!("Bearer {}", issuer.mint(claims))
    };
    let other_issuer = TestIssuer::start(TENANT).await.unwrap();
    let forged = format!("Bearer {}", other_issuer.token(AUDIENCE));
    let alg_none = {
        use base64::Engine as _;
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "Bearer {}.{}.",
            b64(json!({"alg": "none", "typ": "JWT"})),
            b64(issuer.claims(AUDIENCE))
        )
    };
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("no header", None, 401),
        ("basic scheme", Some("Basic dXNlcjpwdw==".to_owned()), 401),
        ("garbage", Some("Bearer not.a.jwt".to_owned()), 401),
        ("alg none", Some(alg_none), 401),
        ("signed by another key", Some(forged), 401),
        (
            "expired",
            Some(with(&|c| {
                c["iat"] = json!(now - 7200);
                c["nbf"] = json!(now - 7200);
                c["exp"] = json!(now - 3600);
            })),
            401,
        ),
        (
            "wrong audience",
            Some(with(&|c| c["aud"] = json!("api://someone-else"))),
            401,
        ),
        (
            "wrong caller app",
            Some(with(&|c| {
                c["azp"] = json!("00000000-0000-0000-0000-000000000001")
            })),
            403,
        ),
        ("missing role", Some(with(&|c| c["roles"] = json!([]))), 403),
        (
            "user token",
            Some(with(&|c| c["scp"] = json!("user_impersonation"))),
            403,
        ),
    ];
    for (name, auth, want) in cases {
        let a = rx.post("/api/alerts", auth.as_deref(), body.clone()).await;
        assert_eq!(a.status, want, "{name}: {:?}", a.body);
        assert!(a.body["error"].is_string(), "{name}: {:?}", a.body);
        if want == 401 {
            assert_eq!(
                a.headers.get("www-authenticate").unwrap(),
                "Bearer error=\"invalid_token\"",
                "{name}"
            );
        }
        // Same answer on the named route.
        let a = rx
            .post("/api/alerts/main", auth.as_deref(), body.clone())
            .await;
        assert_eq!(a.status, want, "{name} (named route)");
    }
    assert_nothing_stored(&rx, &mock).await;
    let (_, metrics) = rx.admin_get("/metrics").await;
    assert!(
        metrics.contains("secure_export_token_failures_total"),
        "{metrics}"
    );
    assert!(metrics.contains("code=\"missing_token\""), "{metrics}");
    assert!(metrics.contains("code=\"missing_role\""), "{metrics}");
}

#[tokio::test]
async fn token_is_checked_before_the_body_is_read() {
    let (rx, mock) = mock_receiver().await;
    // A bad token with an oversized, non-JSON body: 401, not 413 or 400.
    let a = rx
        .post("/api/alerts", None, vec![b'x'; 2 * 1024 * 1024])
        .await;
    assert_eq!(a.status, 401);
    assert_nothing_stored(&rx, &mock).await;
}

#[tokio::test]
async fn tenant_not_served_is_refused() {
    let (rx, mock) = mock_receiver().await;
    let stranger = TestIssuer::start("99999999-8888-4777-8666-555555555555")
        .await
        .unwrap();
    let auth = format!("Bearer {}", stranger.token(AUDIENCE));
    let body = serde_json::to_vec(&fired("stranger", "2025-04-15T18:17:12Z")).unwrap();
    let a = rx.post("/api/alerts", Some(&auth), body).await;
    // The any-tenant probe cannot load that tenant's keys from our authority: the token stays
    // rejected for its tenant (401), never 503 (Azure would retry a call we never accept).
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert_nothing_stored(&rx, &mock).await;
}

#[tokio::test]
async fn tenant_not_allowed_is_403() {
    let (rx, mock) = mock_receiver().await;
    // A genuine tenant on the same authority that no connection serves: the any-tenant probe
    // verifies its token fully, so the answer is 403, not 401.
    const OTHER_TENANT: &str = "99999999-8888-4777-8666-555555555555";
    rx.issuer.add_tenant(OTHER_TENANT);
    let auth = format!(
        "Bearer {}",
        rx.issuer.token_for_tenant(OTHER_TENANT, AUDIENCE)
    );
    let body = serde_json::to_vec(&fired("other-tenant", "2025-04-15T18:17:12Z")).unwrap();
    for path in ["/api/alerts", "/api/alerts/main"] {
        let a = rx.post(path, Some(&auth), body.clone()).await;
        assert_eq!(a.status, 403, "{path}: {:?}", a.body);
        assert_eq!(
            a.body["error"], "tenant_not_allowed",
            "{path}: {:?}",
            a.body
        );
        assert!(
            a.body["message"].as_str().unwrap().contains(OTHER_TENANT),
            "{path}: {:?}",
            a.body
        );
        assert!(a.headers.get("www-authenticate").is_none(), "{path}");
    }
    assert_nothing_stored(&rx, &mock).await;
    let (_, metrics) = rx.admin_get("/metrics").await;
    assert!(
        metrics.lines().any(|l| l
            .starts_with("secure_export_token_failures_total{code=\"tenant_not_allowed\"}")
            && l.ends_with(" 2")),
        "{metrics}"
    );
    // The same receiver still accepts its own tenant.
    assert_eq!(
        rx.send(&fired("own-tenant", "2025-04-15T18:17:12Z"))
            .await
            .status,
        202
    );
}

#[tokio::test]
async fn subscription_not_allowed_is_403() {
    let mock = Arc::new(MockConnector::new());
    let rx = Builder::new()
        .connection("main", mock.clone())
        .allowed_subscriptions(&["00000000-1111-2222-3333-444444444444"])
        .start()
        .await;
    let a = rx.send(&fired("sub", "2025-04-15T18:17:12Z")).await;
    assert_eq!(a.status, 403, "{:?}", a.body);
    assert_eq!(a.body["error"], "forbidden");
    assert!(
        a.body["message"].as_str().unwrap().contains(SUBSCRIPTION),
        "{:?}",
        a.body
    );
    assert_nothing_stored(&rx, &mock).await;

    // The same receiver accepts its own subscription.
    let mock = Arc::new(MockConnector::new());
    let rx = Builder::new()
        .connection("main", mock.clone())
        .allowed_subscriptions(&[&SUBSCRIPTION.to_uppercase()])
        .start()
        .await;
    assert_eq!(
        rx.send(&fired("sub", "2025-04-15T18:17:12Z")).await.status,
        202
    );
}

#[tokio::test]
async fn body_that_is_not_json_is_400_naming_the_problem() {
    let (rx, mock) = mock_receiver().await;
    let auth = format!("Bearer {}", rx.token());
    let a = rx.post("/api/alerts", Some(&auth), "{\"schemaId\": ").await;
    assert_eq!(a.status, 400);
    assert_eq!(a.body["error"], "invalid_json");
    assert!(
        a.body["message"].as_str().unwrap().contains("EOF"),
        "{:?}",
        a.body
    );
    assert_nothing_stored(&rx, &mock).await;
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let (rx, mock) = mock_receiver().await;
    let auth = format!("Bearer {}", rx.token());
    let mut alert = fired("big", "2025-04-15T18:17:12Z");
    alert["data"]["essentials"]["description"] = json!("x".repeat(1024 * 1024 + 1));
    let a = rx
        .post(
            "/api/alerts",
            Some(&auth),
            serde_json::to_vec(&alert).unwrap(),
        )
        .await;
    assert_eq!(a.status, 413, "{:?}", a.body);
    assert_eq!(a.body["error"], "payload_too_large");
    assert_nothing_stored(&rx, &mock).await;
}

#[tokio::test]
async fn unmodelable_authenticated_body_is_202_and_quarantined() {
    let (rx, _mock) = mock_receiver().await;
    let auth = format!("Bearer {}", rx.token());
    let a = rx
        .post("/api/alerts", Some(&auth), r#"{"hello": ["world"]}"#)
        .await;
    assert_eq!(a.status, 202, "{:?}", a.body);
    assert_eq!(a.body["status"], "quarantined");
    let q = rx.engine.quarantined().await.unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].raw_body, br#"{"hello": ["world"]}"#);
    assert_eq!(q[0].connection, "main");
}

#[tokio::test]
async fn routes_by_path_segment_and_unknown_connection_is_401() {
    let mock = Arc::new(MockConnector::new());
    let other = Arc::new(MockConnector::new());
    let rx = Builder::new()
        .connection("a", mock.clone())
        .connection("b", other.clone())
        .start()
        .await;
    let auth = format!("Bearer {}", rx.token());
    let body = serde_json::to_vec(&fired("route", "2025-04-15T18:17:12Z")).unwrap();
    let a = rx.post("/api/alerts/b", Some(&auth), body.clone()).await;
    assert_eq!(a.status, 202, "{:?}", a.body);
    assert_eq!(a.body["connection"], "b");
    // An unknown connection answers like a rejected token, so names cannot be probed.
    let a = rx.post("/api/alerts/nope", Some(&auth), body.clone()).await;
    assert_eq!(a.status, 401, "{:?}", a.body);
    assert!(a.headers.contains_key("www-authenticate"));
    // Exactly one Authorization header: two (even two valid ones) are refused.
    let res = rx
        .client
        .post(format!("{}/api/alerts/b", rx.url))
        .header("content-type", "application/json")
        .header("authorization", auth.as_str())
        .header("authorization", auth.as_str())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    eventually(Duration::from_secs(5), || async {
        (other.tickets().len() == 1).then_some(())
    })
    .await;
    assert!(mock.tickets().is_empty());
}

#[tokio::test]
async fn same_payload_twenty_times_concurrently_makes_one_work_item() {
    let (rx, mock) = mock_receiver().await;
    let alert = fired("twenty", "2025-04-15T18:17:12Z");
    let answers = futures::future::join_all((0..20).map(|_| rx.send(&alert))).await;
    let mut new = 0;
    for a in &answers {
        assert_eq!(a.status, 202, "{:?}", a.body);
        if a.body["status"] == "accepted" {
            new += 1;
        } else {
            assert_eq!(a.body["status"], "duplicate");
        }
    }
    assert_eq!(new, 1);
    eventually(Duration::from_secs(5), || async {
        (mock.tickets().len() == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(mock.tickets().len(), 1);
    assert_eq!(mock.call_count(MockOp::Create), 1);
}

#[tokio::test]
async fn backend_down_for_a_while_is_retried_and_delivered() {
    let (rx, mock) = mock_receiver().await;
    mock.fail_times(
        None,
        6,
        &ItsmError::Connect {
            backend: "mock",
            message: "connection refused".to_owned(),
        },
    );
    assert_eq!(
        rx.send(&fired("down", "2025-04-15T18:17:12Z")).await.status,
        202
    );
    eventually(Duration::from_secs(10), || async {
        (mock.tickets().len() == 1).then_some(())
    })
    .await;
    assert!(mock.calls().iter().filter(|c| c.failed).count() >= 6);
    assert!(rx.engine.dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let (rx, _mock) = mock_receiver().await;
    let (status, body) = rx.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = rx.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body, r#"{"status":"ready"}"#,
        "the public readiness names nothing"
    );
    let (status, body) = rx.admin_get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("keys:main"), "{body}");
    // Nothing but alerts, health and bare readiness on the public listener.
    for path in [
        "/metrics",
        "/api/admin/dead-letters",
        "/api/admin/quarantine",
    ] {
        assert_eq!(rx.get(path).await.0, 404, "{path} on the public listener");
    }
    let (status, body) = rx.admin_get("/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("secure_export_request_seconds"), "{body}");
}

#[tokio::test]
async fn queue_over_high_water_mark_is_503_with_retry_after() {
    let mock = Arc::new(MockConnector::new());
    let mut options = common::fast_options();
    options.high_water_mark = 2;
    let rx = Builder::new()
        .connection("main", mock)
        .options(options)
        .without_workers()
        .start()
        .await;
    for i in 0..2 {
        let a = rx
            .send(&fired(&format!("hw-{i}"), "2025-04-15T18:17:12Z"))
            .await;
        assert_eq!(a.status, 202, "{:?}", a.body);
    }
    let a = rx.send(&fired("hw-over", "2025-04-15T18:17:12Z")).await;
    assert_eq!(a.status, 503, "{:?}", a.body);
    assert!(a.headers.get("retry-after").is_some());
}

/// A store whose writes fail while `down` is set.
#[derive(Debug)]
struct FlakyStore {
    inner: SqliteStore,
    down: AtomicBool,
    slow: AtomicBool,
}

impl FlakyStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("disk on fire".to_owned()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Store for FlakyStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.ping().await
    }
    async fn accept_batch(&self, d: &[NewDelivery]) -> Result<Vec<AcceptOutcome>, StoreError> {
        self.check()?;
        if self.slow.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        self.inner.accept_batch(d).await
    }
    async fn quarantine(
        &self,
        c: &str,
        raw: &[u8],
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.check()?;
        self.inner.quarantine(c, raw, reason, at).await
    }
    async fn claim(
        &self,
        c: &str,
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Job>, StoreError> {
        self.inner.claim(c, limit, now, lease_until).await
    }
    async fn delivery_body(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.delivery_body(id).await
    }
    async fn correlation(&self, c: &str, k: &str) -> Result<Option<CorrelationRecord>, StoreError> {
        self.inner.correlation(c, k).await
    }
    async fn save(
        &self,
        job: &Job,
        c: &[CorrelationRecord],
        a: &[NewAudit],
        finish: bool,
    ) -> Result<(), StoreError> {
        self.inner.save(job, c, a, finish).await
    }
    async fn retry(
        &self,
        job: &Job,
        at: DateTime<Utc>,
        error: &str,
        count: bool,
    ) -> Result<(), StoreError> {
        self.inner.retry(job, at, error, count).await
    }
    async fn release(&self, job: &Job) -> Result<(), StoreError> {
        self.inner.release(job).await
    }
    async fn mark_create_started(&self, job: &Job, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.inner.mark_create_started(job, at).await
    }
    async fn dead_letter(
        &self,
        job: &Job,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.inner.dead_letter(job, reason, at).await
    }
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.dead_letters().await
    }
    async fn replay_dead_letter(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.inner.replay_dead_letter(id, now).await
    }
    async fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        self.inner.quarantined().await
    }
    async fn mark_quarantine_replayed(
        &self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.mark_quarantine_replayed(id, at).await
    }
    async fn schedule_auto_close(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.inner.schedule_auto_close(now).await
    }
    async fn history(&self, alert_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.history(alert_id).await
    }
    async fn queue_depth(&self) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.queue_depth().await
    }
    async fn dead_letter_count(&self) -> Result<u64, StoreError> {
        self.inner.dead_letter_count().await
    }
    async fn queue_depths(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        self.inner.queue_depths().await
    }
    async fn quarantine_usage(&self) -> Result<secure_export::store::QuarantineUsage, StoreError> {
        self.check()?;
        self.inner.quarantine_usage().await
    }
    async fn purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.purge(before).await
    }
}

#[tokio::test]
async fn store_failure_is_503_with_retry_after_never_500() {
    let store = Arc::new(FlakyStore {
        inner: SqliteStore::open_in_memory().await.unwrap(),
        down: AtomicBool::new(false),
        slow: AtomicBool::new(false),
    });
    let mock = Arc::new(MockConnector::new());
    let rx = Builder::new()
        .connection("main", mock.clone())
        .store(store.clone())
        .start()
        .await;
    store.down.store(true, Ordering::SeqCst);
    let alert = fired("store", "2025-04-15T18:17:12Z");
    let a = rx.send(&alert).await;
    assert_eq!(a.status, 503, "{:?}", a.body);
    assert!(a.headers.get("retry-after").is_some());
    assert!(a.body["error"].is_string());
    let auth = format!("Bearer {}", rx.token());
    let q = rx
        .post("/api/alerts", Some(&auth), r#"{"not": "an alert"}"#)
        .await;
    assert_eq!(
        q.status, 503,
        "quarantine must not be answered 202 when it was not stored"
    );
    // Readiness follows the background store check (no store call per probe).
    eventually(Duration::from_secs(5), || async {
        (rx.get("/readyz").await.0 == 503).then_some(())
    })
    .await;

    // Azure's retry after recovery is accepted and delivered.
    store.down.store(false, Ordering::SeqCst);
    assert_eq!(rx.send(&alert).await.status, 202);
    eventually(Duration::from_secs(5), || async {
        (mock.tickets().len() == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_stuck_store_is_answered_503_within_the_request_timeout() {
    let store = Arc::new(FlakyStore {
        inner: SqliteStore::open_in_memory().await.unwrap(),
        down: AtomicBool::new(false),
        slow: AtomicBool::new(true),
    });
    let rx = Builder::new()
        .connection("main", Arc::new(MockConnector::new()))
        .store(store)
        .request_timeout(Duration::from_millis(300))
        .start()
        .await;
    let started = std::time::Instant::now();
    let a = rx.send(&fired("slow", "2025-04-15T18:17:12Z")).await;
    let took = started.elapsed();
    assert_eq!(a.status, 503, "{:?}", a.body);
    assert_eq!(a.body["error"], "timeout");
    assert!(a.headers.get("retry-after").is_some());
    assert!(
        took < Duration::from_millis(1500),
        "answered after {took:?}"
    );
}
