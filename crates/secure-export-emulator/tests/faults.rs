#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every fault kind, on both emulators, over real HTTP.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secure_export_emulator::bmc::{BmcEmulator, BmcOptions};
use secure_export_emulator::fault::HIBERNATING_HTML;
use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};
use serde_json::Value;

async fn sn() -> (ServiceNowEmulator, reqwest::Client, String) {
    let emu = ServiceNowEmulator::start(ServiceNowOptions::default().seed_cmdb(false))
        .await
        .unwrap();
    let url = format!("{}/api/now/table/incident", emu.base_url());
    (emu, reqwest::Client::new(), url)
}

async fn sn_get(
    emu: &ServiceNowEmulator,
    client: &reqwest::Client,
    url: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .get(url)
        .basic_auth(emu.username(), Some(emu.password()))
        .send()
        .await
}

async fn bmc() -> (BmcEmulator, reqwest::Client, String, String) {
    let emu = BmcEmulator::start(BmcOptions::default().seed_cmdb(false))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let token = client
        .post(format!("{}/api/jwt/login", emu.base_url()))
        .form(&[("username", emu.username()), ("password", emu.password())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let url = format!("{}/api/arsys/v1/entry/HPD:Help%20Desk", emu.base_url());
    (emu, client, format!("AR-JWT {token}"), url)
}

#[tokio::test]
async fn servicenow_rate_limit_answers_429_with_retry_after_and_headers() {
    let (emu, client, url) = sn().await;
    emu.faults().set_rate_limit(2, Duration::from_secs(3600));
    for _ in 0..2 {
        let resp = sn_get(&emu, &client, &url).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-ratelimit-limit"], "2");
        assert!(resp.headers().contains_key("x-ratelimit-reset"));
    }
    let resp = sn_get(&emu, &client, &url).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3590..=3600).contains(&retry), "Retry-After {retry}");
    assert!(resp.headers().contains_key("x-ratelimit-rule"));
    let reset: u64 = resp.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > 1_700_000_000);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Rate limit exceeded");
    assert_eq!(body["status"], "failure");
    emu.faults().clear();
    assert_eq!(
        sn_get(&emu, &client, &url).await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn servicenow_fail_next_drop_next_and_html() {
    let (emu, client, url) = sn().await;
    emu.faults().fail_next(2, 503);
    for _ in 0..2 {
        let resp = sn_get(&emu, &client, &url).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "failure");
    }
    assert_eq!(
        sn_get(&emu, &client, &url).await.unwrap().status(),
        StatusCode::OK
    );

    emu.faults().drop_next(1);
    let err = sn_get(&emu, &client, &url).await.unwrap_err();
    assert!(
        !err.is_status(),
        "a dropped connection is a transport error: {err}"
    );
    assert_eq!(
        sn_get(&emu, &client, &url).await.unwrap().status(),
        StatusCode::OK
    );

    emu.faults().html_next(1);
    let resp = client
        .post(&url)
        .basic_auth(emu.username(), Some(emu.password()))
        .json(&serde_json::json!({"short_description": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the hibernating page answers 200"
    );
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let text = resp.text().await.unwrap();
    assert_eq!(text, HIBERNATING_HTML);
    assert!(text.contains("Want to find out why instances hibernate?"));
    assert!(
        emu.records("incident").is_empty(),
        "faults never touch state"
    );

    let statuses: Vec<u16> = emu.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![503, 503, 200, 0, 200, 200]);
}

#[tokio::test]
async fn servicenow_latency_delays_answers_and_trips_client_timeouts() {
    let (emu, client, url) = sn().await;
    emu.faults().set_latency(Duration::from_millis(60));
    let started = Instant::now();
    assert_eq!(
        sn_get(&emu, &client, &url).await.unwrap().status(),
        StatusCode::OK
    );
    assert!(started.elapsed() >= Duration::from_millis(60));
    let err = client
        .get(&url)
        .basic_auth(emu.username(), Some(emu.password()))
        .timeout(Duration::from_millis(20))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    emu.faults().set_latency(Duration::ZERO);
}

#[tokio::test]
async fn bmc_faults_use_the_ar_error_array() {
    let (emu, client, auth, url) = bmc().await;
    let get = || client.get(&url).header("Authorization", &auth).send();

    emu.faults().set_rate_limit(1, Duration::from_secs(60));
    assert_eq!(get().await.unwrap().status(), StatusCode::OK);
    let resp = get().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(resp.headers()["x-ratelimit-limit"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body[0]["messageType"], "ERROR");
    assert!(body[0]["messageNumber"].is_u64());
    emu.faults().clear();

    emu.faults().fail_next(1, 500);
    let resp = get().await.unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body[0]["messageType"], "ERROR");

    emu.faults().drop_next(1);
    assert!(get().await.is_err());

    emu.faults().html_next(1);
    let resp = get().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("hibernat"));

    emu.faults().set_latency(Duration::from_millis(40));
    let started = Instant::now();
    assert_eq!(get().await.unwrap().status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(40));

    let calls = emu.calls();
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![200, 200, 429, 500, 0, 200, 200]);
    assert_eq!(calls[1].path, "/api/arsys/v1/entry/HPD:Help%20Desk");
}
