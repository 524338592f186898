//! A receiver built only from a TOML configuration (verifier authority, backend credentials from
//! the environment lookup, CMDB strategies) delivers to the ServiceNow and BMC Helix emulators.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{AUDIENCE, TENANT, eventually, fired, resolved};
use secure_export::config::Config;
use secure_export::engine::{Engine, Workers};
use secure_export::metrics::Metrics;
use secure_export::router::{AppState, public_router};
use secure_export::store::SqliteStore;
use secure_export_aad::test_util::TestIssuer;
use secure_export_emulator::bmc::{BmcEmulator, BmcOptions};
use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

/// Serves `toml` (with `{authority}` filled in) and returns the alerts URL and a valid token.
async fn serve(
    toml: &str,
    issuer: &TestIssuer,
    password: &str,
) -> (String, String, Engine, Workers, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let text = toml
        .replace("{authority}", &issuer.authority())
        .replace("{data_dir}", &dir.path().display().to_string());
    let config = Config::from_toml_str_with_env(&text, |k| {
        (k == "ITSM_PASSWORD").then(|| password.to_owned())
    })
    .unwrap();
    let runtime = config.build_runtime(&reqwest::Client::new()).unwrap();
    let store = SqliteStore::open(&config.server.data_dir).await.unwrap();
    let engine = Engine::new(
        Arc::new(store),
        runtime.connections,
        common::fast_options(),
        Metrics::new(),
    )
    .await
    .unwrap();
    let workers = engine.start_workers();
    let state = AppState::new(engine.clone(), runtime.gates);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/alerts", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, public_router(state)).await.unwrap() });
    (
        url,
        format!("Bearer {}", issuer.token(AUDIENCE)),
        engine,
        workers,
        dir,
    )
}

async fn post(url: &str, token: &str, alert: &Value) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("authorization", token)
        .json(alert)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn header(backend_section: &str) -> String {
    format!(
        r#"
[server]
data_dir = "{{data_dir}}"

[[connection]]
name = "cfg"
tenant_ids = ["{TENANT}"]
audiences = ["{AUDIENCE}"]
authority = "{{authority}}"
allowed_subscriptions = ["aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e"]
{backend_section}
"#
    )
}

#[tokio::test]
async fn servicenow_from_configuration() {
    let issuer = TestIssuer::start(TENANT).await.unwrap();
    let sn = ServiceNowEmulator::start(ServiceNowOptions::default())
        .await
        .unwrap();
    let toml = header(&format!(
        r#"backend = "servicenow"
[connection.servicenow]
instance_url = "{}"
username = "{}"
password_env = "ITSM_PASSWORD"
close_code = "Closed/Resolved by Caller"
[connection.cmdb]
strategies = ["resource_id", "name"]
"#,
        sn.base_url(),
        sn.username()
    ));
    let (url, token, _engine, _workers, _dir) = serve(&toml, &issuer, sn.password()).await;
    assert_eq!(
        post(&url, &token, &fired("cfg-sn", "2025-04-15T18:00:00Z")).await,
        202
    );
    assert_eq!(
        post(
            &url,
            &token,
            &resolved("cfg-sn", "2025-04-15T18:00:00Z", "2025-04-15T18:10:00Z")
        )
        .await,
        202
    );
    let inc = eventually(WAIT, || async {
        sn.records("incident")
            .into_iter()
            .find(|i| i["state"] == "6")
    })
    .await;
    assert_eq!(inc["close_code"], "Closed/Resolved by Caller", "{inc:#}");
    assert_eq!(sn.records("incident").len(), 1);
}

#[tokio::test]
async fn bmc_from_configuration() {
    let issuer = TestIssuer::start(TENANT).await.unwrap();
    let bmc = BmcEmulator::start(BmcOptions::default()).await.unwrap();
    let toml = header(&format!(
        r#"backend = "bmc"
[connection.bmc]
base_url = "{}"
username = "{}"
password_env = "ITSM_PASSWORD"
first_name = "Azure"
last_name = "Monitor"
[connection.cmdb]
strategies = ["resource_id", "fallback"]
fallback_ci = "OI-FALLBACK"
"#,
        bmc.base_url(),
        bmc.username()
    ));
    let (url, token, engine, _workers, _dir) = serve(&toml, &issuer, bmc.password()).await;
    assert_eq!(
        post(&url, &token, &fired("cfg-bmc", "2025-04-15T18:00:00Z")).await,
        202
    );
    let incident = eventually(WAIT, || async {
        bmc.entries("HPD:Help Desk").into_iter().next()
    })
    .await;
    assert_eq!(incident["First_Name"], "Azure", "{incident:#}");
    eventually(WAIT, || async {
        (engine.queue_depth().await.unwrap() == 0).then_some(())
    })
    .await;
    assert_eq!(bmc.entries("HPD:Help Desk").len(), 1);
    assert!(engine.dead_letters().await.unwrap().is_empty());
    // The CMDB lookup and the connector share one AR-JWT session: a single login.
    let cmdb_calls = bmc
        .calls()
        .iter()
        .filter(|c| c.path.starts_with("/api/cmdb/"))
        .count();
    assert!(cmdb_calls > 0, "the binder should have queried the CMDB");
    let logins = bmc
        .calls()
        .iter()
        .filter(|c| c.path == "/api/jwt/login")
        .count();
    assert_eq!(logins, 1);
}
