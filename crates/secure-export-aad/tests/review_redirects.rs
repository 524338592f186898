//! Security review: even with a caller-supplied HTTP client that follows redirects, keys that
//! arrive through a redirect are refused, so a same-origin `jwks_uri` that redirects elsewhere
//! cannot make the verifier trust another host's keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::response::Redirect;
use axum::routing::get;
use secure_export_aad::test_util::TestIssuer;
use secure_export_aad::{TokenVerifier, TokenVersions};
use serde_json::json;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AUDIENCE: &str = "api://review";

#[tokio::test]
async fn keys_behind_a_redirect_are_refused_with_a_following_client() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = format!("http://{}", listener.local_addr().unwrap());
    let attacker = TestIssuer::builder(TENANT)
        .v2_issuer(format!("{authority}/{{tenantid}}/v2.0"))
        .start()
        .await
        .unwrap();
    let attacker_keys = format!("{}/{TENANT}/discovery/v2.0/keys", attacker.authority());
    let discovery = json!({
        "issuer": format!("{authority}/{TENANT}/v2.0"),
        "jwks_uri": format!("{authority}/keys"),
    });
    let app = axum::Router::new()
        .route(
            &format!("/{TENANT}/v2.0/.well-known/openid-configuration"),
            get(move || {
                let body = discovery.clone();
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

    let verifier = TokenVerifier::builder([TENANT], [AUDIENCE])
        .authority(authority)
        .versions(TokenVersions::V2Only)
        .http_client(reqwest::Client::new())
        .build()
        .unwrap();
    let err = verifier.warm_up().await.unwrap_err();
    assert_eq!(err.code(), "keys_unavailable");
    assert!(err.to_string().contains("redirect refused"), "{err}");
    assert!(verifier.verify(&attacker.token(AUDIENCE)).await.is_err());
}
