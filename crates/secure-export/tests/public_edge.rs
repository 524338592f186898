//! The public edge, attacked over real HTTP on loopback: readiness without ITSM calls, the
//! admin listener and its token, future-dated events, the quarantine quota and allow-lists,
//! per-connection fairness, generic 503 bodies, and one alert naming thousands of targets.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Builder, SUBSCRIPTION, eventually, fired, resolved};
use secure_export::engine::ConnectionRuntime;
use secure_export::router::{AdminAccess, AppState, admin_router};
use secure_export::server::{ServeOptions, serve};
use secure_export_itsm::ItsmError;
use secure_export_itsm::mock::{MockConnector, MockOp};
use serde_json::{Value, json};

fn backend_down() -> ItsmError {
    ItsmError::Connect {
        backend: "mock",
        message: "connection refused by 10.1.2.3:443 (internal detail)".to_owned(),
    }
}

#[tokio::test]
async fn public_readyz_makes_no_itsm_call_and_ignores_a_backend_outage() {
    let mock = Arc::new(MockConnector::new());
    let mut options = common::fast_options();
    options.health_interval = Duration::from_secs(3600);
    let rx = Builder::new()
        .connection("main", mock.clone())
        .options(options)
        .start()
        .await;
    // The start-up probe runs once in the background.
    eventually(Duration::from_secs(5), || async {
        (mock.call_count(MockOp::Health) == 1).then_some(())
    })
    .await;
    for _ in 0..100 {
        let (status, body) = rx.get("/readyz").await;
        assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));
    }
    assert_eq!(
        mock.call_count(MockOp::Health),
        1,
        "100 public /readyz probes made no backend call"
    );

    // The backend goes down: the admin side says so; the public readiness stays ready.
    mock.fail_times(Some(MockOp::Health), 100, &backend_down());
    rx.engine.probe_health().await;
    let (status, body) = rx.get("/readyz").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));
    let (status, body) = rx.admin_get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["backends"]["main"]["ok"], false, "{body}");
    assert!(
        v["backends"]["main"]["error"]
            .as_str()
            .unwrap()
            .contains("refused")
    );
    let (_, metrics) = rx.admin_get("/metrics").await;
    assert!(
        metrics.contains(r#"secure_export_backend_up{connection="main"} 0"#),
        "{metrics}"
    );
    rx.stop().await;
}

#[tokio::test]
async fn admin_api_lists_and_replays_and_requires_its_token() {
    let mock = Arc::new(MockConnector::new());
    let rx = Builder::new()
        .connection("main", mock.clone())
        .start()
        .await;
    // One dead letter (permanent failure) and one quarantined body.
    mock.fail_next(
        Some(MockOp::Create),
        ItsmError::Http {
            backend: "mock",
            status: 400,
            message: "bad field".to_owned(),
            detail: None,
            code: None,
            retry_after: None,
        },
    );
    assert_eq!(
        rx.send(&fired("dl", "2025-04-15T18:17:12Z")).await.status,
        202
    );
    let auth = format!("Bearer {}", rx.token());
    let q = rx
        .post("/api/alerts", Some(&auth), r#"{"not": "an alert"}"#)
        .await;
    assert_eq!(q.status, 202, "{:?}", q.body);
    eventually(Duration::from_secs(5), || async {
        (rx.engine.dead_letters().await.unwrap().len() == 1).then_some(())
    })
    .await;

    // A token-protected admin router on its own listener.
    let state = AppState::new(rx.engine.clone(), Vec::new());
    let token = "admin-token-0123456789abcdef";
    let app = admin_router(state, AdminAccess::Bearer(token.into()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(
        listener,
        app,
        ServeOptions::new("admin"),
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    for wrong in [None, Some("Bearer nope"), Some("Basic YWRtaW46YWRtaW4=")] {
        let mut req = client.get(format!("{url}/api/admin/dead-letters"));
        if let Some(w) = wrong {
            req = req.header("authorization", w);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{wrong:?}");
        assert!(!res.text().await.unwrap().contains("dl"));
    }
    let get = |path: &str| client.get(format!("{url}{path}")).bearer_auth(token).send();
    let dead: Value = get("/api/admin/dead-letters")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dead = dead["dead_letters"].as_array().unwrap().clone();
    assert_eq!(dead.len(), 1);
    assert!(dead[0]["reason"].as_str().unwrap().contains("bad field"));
    let quarantine: Value = get("/api/admin/quarantine")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        quarantine["quarantine"][0]["body"],
        r#"{"not": "an alert"}"#
    );
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("secure_export_deliveries_total"));

    // Replay the dead letter: the mock now accepts it.
    let id = dead[0]["id"].as_i64().unwrap();
    let res = client
        .post(format!("{url}/api/admin/dead-letters/{id}/replay"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    eventually(Duration::from_secs(5), || async {
        (mock.tickets().len() == 1).then_some(())
    })
    .await;
    let res = client
        .post(format!("{url}/api/admin/dead-letters/{id}/replay"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "replayed already");
    let alert_id = dead[0]["alert_id"].as_str().unwrap();
    let history: Value = client
        .get(format!("{url}/api/admin/history"))
        .query(&[("alert_id", alert_id)])
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"dead_letter") && actions.contains(&"replay"),
        "{actions:?}"
    );
    // Still unparseable: 422 with the reason.
    let qid = quarantine["quarantine"][0]["id"].as_i64().unwrap();
    let res = client
        .post(format!("{url}/api/admin/quarantine/{qid}/replay"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    rx.stop().await;
}

#[tokio::test]
async fn a_future_dated_resolved_cannot_silence_later_firings() {
    let mock = Arc::new(MockConnector::new());
    let rx = Builder::new()
        .connection("main", mock.clone())
        .start()
        .await;
    let now = chrono::Utc::now();
    let fired_at = (now - chrono::Duration::minutes(10)).to_rfc3339();
    assert_eq!(rx.send(&fired("future", &fired_at)).await.status, 202);
    eventually(Duration::from_secs(5), || async {
        (mock.tickets().len() == 1).then_some(())
    })
    .await;
    // A Resolved dated in the year 2999 (a broken clock or a hostile sender).
    let bogus = resolved("future", &fired_at, "2999-01-01T00:00:00Z");
    assert_eq!(rx.send(&bogus).await.status, 202);
    // Its redelivery is still recognised as a duplicate.
    assert_eq!(rx.send(&bogus).await.body["status"], "duplicate");
    eventually(Duration::from_secs(5), || async {
        mock.tickets()
            .iter()
            .all(|t| t.resolution.is_some())
            .then_some(())
    })
    .await;
    // A genuine later Fired is not "stale": it reopens or creates.
    let later = (now + chrono::Duration::seconds(30)).to_rfc3339();
    assert_eq!(rx.send(&fired("future", &later)).await.status, 202);
    eventually(Duration::from_secs(5), || async {
        mock.tickets()
            .iter()
            .any(|t| t.resolution.is_none() || t.reopen_count > 0)
            .then_some(())
    })
    .await;
    let (_, metrics) = rx.admin_get("/metrics").await;
    assert!(
        // Counted per delivery: the event and its redelivery.
        metrics.contains(r#"secure_export_future_events_total{connection="main"} 2"#),
        "{metrics}"
    );
    let later_alert = fired("future", &later);
    let alert_id = later_alert["data"]["essentials"]["alertId"]
        .as_str()
        .unwrap();
    let history = rx.engine.history(alert_id).await.unwrap();
    assert!(
        !history.iter().any(|h| h.entry.detail.contains("stale")),
        "{history:?}"
    );
    rx.stop().await;
}

#[tokio::test]
async fn the_quarantine_quota_answers_503_and_never_drops_silently() {
    let mock = Arc::new(MockConnector::new());
    let mut options = common::fast_options();
    options.quarantine_max_rows = 3;
    let rx = Builder::new()
        .connection("main", mock)
        .options(options)
        .start()
        .await;
    let auth = format!("Bearer {}", rx.token());
    for i in 0..3 {
        let body = format!(r#"{{"not": "an alert", "n": {i}}}"#);
        assert_eq!(rx.post("/api/alerts", Some(&auth), body).await.status, 202);
    }
    let full = rx
        .post("/api/alerts", Some(&auth), r#"{"not": "an alert", "n": 3}"#)
        .await;
    assert_eq!(full.status, 503, "{:?}", full.body);
    assert!(full.headers.get("retry-after").is_some());
    assert_eq!(full.body["error"], "quarantine_full");
    assert_eq!(rx.engine.quarantined().await.unwrap().len(), 3);
    let (_, metrics) = rx.admin_get("/metrics").await;
    assert!(metrics.contains(r#"reason="quarantine_full""#), "{metrics}");
    // Real alerts still pass.
    assert_eq!(
        rx.send(&fired("ok", "2025-04-15T18:17:12Z")).await.status,
        202
    );
    rx.stop().await;
}

#[tokio::test]
async fn the_quarantine_byte_quota_counts_bytes() {
    let mut options = common::fast_options();
    options.quarantine_max_bytes = 100;
    let rx = Builder::new()
        .connection("main", Arc::new(MockConnector::new()))
        .options(options)
        .start()
        .await;
    let auth = format!("Bearer {}", rx.token());
    let body = format!(r#"{{"pad": "{}"}}"#, "x".repeat(60));
    assert_eq!(
        rx.post("/api/alerts", Some(&auth), body.clone())
            .await
            .status,
        202
    );
    assert_eq!(rx.post("/api/alerts", Some(&auth), body).await.status, 503);
    rx.stop().await;
}

#[tokio::test]
async fn allow_lists_apply_to_unmodelable_bodies_and_to_replay() {
    let other = "99999999-bb1b-cc2c-dd3d-eeeeee4e4e4e";
    let rx = Builder::new()
        .connection("main", Arc::new(MockConnector::new()))
        .allowed_subscriptions(&[SUBSCRIPTION])
        .start()
        .await;
    let auth = format!("Bearer {}", rx.token());
    // Unmodelable (monitorCondition missing) but the subscription can be read: refused.
    let mut foreign = fired("foreign", "2025-04-15T18:17:12Z");
    foreign["data"]["essentials"]["alertTargetIDs"] =
        json!([format!("/subscriptions/{other}/resourceGroups/rg")]);
    foreign["data"]["essentials"]["alertId"] = json!(format!(
        "/subscriptions/{other}/providers/Microsoft.AlertsManagement/alerts/x"
    ));
    foreign["data"]["essentials"]["monitorCondition"] = json!(["not", "a", "string"]);
    let a = rx
        .post(
            "/api/alerts",
            Some(&auth),
            serde_json::to_vec(&foreign).unwrap(),
        )
        .await;
    assert_eq!(a.status, 403, "{:?}", a.body);
    assert!(rx.engine.quarantined().await.unwrap().is_empty());
    // The same from the allowed subscription is quarantined.
    let mut own = fired("own", "2025-04-15T18:17:12Z");
    own["data"]["essentials"]["monitorCondition"] = json!(["not", "a", "string"]);
    let a = rx
        .post(
            "/api/alerts",
            Some(&auth),
            serde_json::to_vec(&own).unwrap(),
        )
        .await;
    assert_eq!(a.status, 202, "{:?}", a.body);
    rx.stop().await;
}

#[tokio::test]
async fn one_busy_connection_does_not_starve_the_others() {
    let (a, b) = (
        Arc::new(MockConnector::new()),
        Arc::new(MockConnector::new()),
    );
    let mut noisy = ConnectionRuntime::new("noisy", a);
    noisy.max_queued = Some(2);
    let rx = Builder::new()
        .runtime(noisy)
        .connection("quiet", b)
        .without_workers()
        .start()
        .await;
    let auth = format!("Bearer {}", rx.token());
    let body = |id: &str| serde_json::to_vec(&fired(id, "2025-04-15T18:17:12Z")).unwrap();
    assert_eq!(
        rx.post("/api/alerts/noisy", Some(&auth), body("n1"))
            .await
            .status,
        202
    );
    assert_eq!(
        rx.post("/api/alerts/noisy", Some(&auth), body("n2"))
            .await
            .status,
        202
    );
    let busy = rx.post("/api/alerts/noisy", Some(&auth), body("n3")).await;
    assert_eq!(busy.status, 503, "{:?}", busy.body);
    assert_eq!(busy.body["error"], "connection_overloaded");
    assert!(busy.headers.get("retry-after").is_some());
    for i in 0..5 {
        let id = format!("q{i}");
        assert_eq!(
            rx.post("/api/alerts/quiet", Some(&auth), body(&id))
                .await
                .status,
            202
        );
    }
    rx.stop().await;
}

#[tokio::test]
async fn an_alert_naming_thousands_of_targets_is_bounded_and_listed() {
    let mock = Arc::new(MockConnector::new());
    let mut rt = ConnectionRuntime::new("main", mock.clone());
    rt.policy.correlation = secure_export::lifecycle::CorrelationMode::Ci;
    let rx = Builder::new().runtime(rt).start().await;
    let mut alert = fired("wide", "2025-04-15T18:17:12Z");
    let targets: Vec<String> = (0..6000)
        .map(|i| {
            format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm{i}")
        })
        .collect();
    let names: Vec<String> = (0..6000).map(|i| format!("vm{i}")).collect();
    alert["data"]["essentials"]["alertTargetIDs"] = json!(targets);
    alert["data"]["essentials"]["configurationItems"] = json!(names);
    let body = serde_json::to_vec(&alert).unwrap();
    assert!(body.len() < 1024 * 1024, "{} bytes", body.len());
    assert_eq!(rx.send(&alert).await.status, 202);
    // `ci` mode without a binder: one item per Azure configuration item, at most max_targets.
    eventually(Duration::from_secs(10), || async {
        (rx.engine.queue_depth().await.unwrap() == 0).then_some(())
    })
    .await;
    let tickets = mock.tickets();
    assert_eq!(tickets.len(), 50, "max_targets items, not 6,000");
    let description = &tickets[0].item.description;
    assert!(description.contains("... and 5950 more"), "{description}");
    assert!(description.len() < 64 * 1024, "{} bytes", description.len());
    // Meanwhile the public listener answered at once.
    let (status, _) = rx.get("/healthz").await;
    assert_eq!(status, 200);
    rx.stop().await;
}

#[tokio::test]
async fn service_unavailable_bodies_carry_no_internal_detail() {
    let mut options = common::fast_options();
    options.high_water_mark = 1;
    let rx = Builder::new()
        .connection("main", Arc::new(MockConnector::new()))
        .options(options)
        .without_workers()
        .start()
        .await;
    assert_eq!(
        rx.send(&fired("a", "2025-04-15T18:17:12Z")).await.status,
        202
    );
    let a = rx.send(&fired("b", "2025-04-15T18:17:12Z")).await;
    assert_eq!(a.status, 503);
    assert_eq!(
        a.body,
        json!({"error": "overloaded", "message": "the receiver is busy; retry later"})
    );
    rx.stop().await;
}
