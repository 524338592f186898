//! Shared fixtures for the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secure_export_aad::test_util::TestIssuer;
use secure_export_aad::{ManualClock, TokenVerifier, TokenVerifierBuilder};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const OTHER_TENANT: &str = "0e3b5c1a-9d2f-4c8e-8a7b-6f1d2e3c4b5a";
pub const CLIENT_ID: &str = "6f2d1a1e-0c5b-4a53-9d43-5d4b6c7e8f90";
pub const APP_ID_URI: &str = "api://itsm-receiver";

pub struct Env {
    pub issuer: TestIssuer,
    pub clock: Arc<ManualClock>,
    pub verifier: TokenVerifier,
}

pub async fn issuer_with_clock(tenant: &str) -> (TestIssuer, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_now());
    let issuer = TestIssuer::builder(tenant)
        .clock(clock.clone())
        .start()
        .await
        .unwrap();
    (issuer, clock)
}

pub fn builder(issuer: &TestIssuer) -> TokenVerifierBuilder {
    issuer.verifier_builder([CLIENT_ID, APP_ID_URI])
}

pub async fn env() -> Env {
    let (issuer, clock) = issuer_with_clock(TENANT).await;
    let verifier = builder(&issuer).build().unwrap();
    Env {
        issuer,
        clock,
        verifier,
    }
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `b64(header).b64(payload).sig` from raw strings, with a given signature segment.
pub fn assemble(header: &str, payload: &str, sig: &str) -> String {
    format!("{}.{}.{sig}", b64(header), b64(payload))
}

/// Replaces one claim in a JSON object.
pub fn with(
    mut claims: serde_json::Value,
    name: &str,
    value: serde_json::Value,
) -> serde_json::Value {
    claims[name] = value;
    claims
}

/// Removes one claim from a JSON object.
pub fn without(mut claims: serde_json::Value, name: &str) -> serde_json::Value {
    if let Some(o) = claims.as_object_mut() {
        o.remove(name);
    }
    claims
}
