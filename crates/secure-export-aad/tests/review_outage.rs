//! Security review: Entra rolls its signing key while discovery/JWKS is unreachable. The
//! genuine token signed with the new key must get 503 (Azure Monitor retries) rather than 401
//! (Azure Monitor gives up and the alert is lost). Once the metadata is back it is accepted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use secure_export_aad::ErrorClass;

#[tokio::test]
async fn unknown_kid_while_metadata_is_down_is_retryable() {
    let env = env().await;
    env.verifier.warm_up().await.unwrap();
    env.issuer.set_available(false);
    env.issuer.rotate_key().unwrap();
    let genuine = env.issuer.token(CLIENT_ID);

    // The refresh for the unknown kid fails: 503, not 401.
    let err = env.verifier.verify(&genuine).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unavailable, "{err}");
    assert_eq!(err.code(), "keys_unavailable");
    // Still in the failure cooldown (no fetch): still 503.
    let err = env.verifier.verify(&genuine).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unavailable, "{err}");

    // Cooldown over but still down (Azure's retry ~30 s later, inside the 5 min unknown-kid
    // throttle): one more fetch is tried, and the answer is still 503.
    env.clock.advance(Duration::from_secs(31));
    let err = env.verifier.verify(&genuine).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unavailable, "{err}");

    // Metadata back, cooldown over: the same token is accepted.
    env.issuer.set_available(true);
    env.clock.advance(Duration::from_secs(31));
    env.verifier.verify(&genuine).await.unwrap();

    // With the metadata reachable, a kid it does not list stays a plain 401.
    let forged = env.issuer.mint_with_header(
        serde_json::json!({"alg": "RS256", "kid": "not-published"}),
        env.issuer.claims(CLIENT_ID),
    );
    env.clock.advance(Duration::from_secs(301));
    let err = env.verifier.verify(&forged).await.unwrap_err();
    assert_eq!(err.code(), "unknown_kid");
    assert_eq!(err.class(), ErrorClass::Unauthenticated);
}
