//! Security review: a receiver built from the configuration never follows a redirect when it
//! fetches token signing keys, even when the embedder's shared HTTP client does. Otherwise a
//! same-origin `jwks_uri` that redirects elsewhere would make the receiver trust keys from
//! another host, and anyone holding those keys could open incidents.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::extract::Path;
use axum::response::Redirect;
use axum::routing::get;
use secure_export::config::Config;
use secure_export_aad::test_util::TestIssuer;
use serde_json::json;

const TENANT: &str = "11111111-2222-4333-8444-555555555555";
const AUDIENCE: &str = "api://review-redirects";

#[tokio::test]
async fn key_fetch_does_not_follow_a_redirect_to_another_host() {
    // The configured authority: its discovery names a same-origin `jwks_uri` that redirects.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = format!("http://{}", listener.local_addr().unwrap());
    // The attacker's issuer, minting tokens whose `iss` is the authority's issuer.
    let attacker = TestIssuer::builder(TENANT)
        .v2_issuer(format!("{authority}/{{tenantid}}/v2.0"))
        .start()
        .await
        .unwrap();
    let attacker_keys = format!("{}/{TENANT}/discovery/v2.0/keys", attacker.authority());
    let issuer = format!("{authority}/{TENANT}/v2.0");
    let jwks_uri = format!("{authority}/keys");
    let app = axum::Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(move |Path(_t): Path<String>| {
                let body = json!({ "issuer": issuer, "jwks_uri": jwks_uri });
                async move { axum::Json(body) }
            }),
        )
        .route(
            "/keys",
            get(move || {
                let to = attacker_keys.clone();
                async move { Redirect::temporary(&to) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let config = Config::from_toml_str_with_env(
        &format!(
            r#"
[[connection]]
name = "prod"
tenant_ids = ["{TENANT}"]
audiences = ["{AUDIENCE}"]
authority = "{authority}"
backend = "mock"
"#
        ),
        |_| None,
    )
    .unwrap();
    // An embedder's ordinary client: reqwest follows up to 10 redirects by default.
    let runtime = config.build_runtime(&reqwest::Client::new()).unwrap();
    let verifier = runtime.gates[0].verifier();

    let err = verifier.warm_up().await.unwrap_err();
    assert_eq!(err.code(), "keys_unavailable");
    assert!(!verifier.keys_loaded());
    let forged = attacker.token(AUDIENCE);
    assert!(
        verifier.verify(&forged).await.is_err(),
        "a token signed with keys behind a redirect was accepted"
    );
}
