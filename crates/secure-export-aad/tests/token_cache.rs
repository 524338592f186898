//! The verified-token cache: hits answer like the full check would now, and nothing else hits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use secure_export_aad::Clock as _;
use serde_json::json;

#[tokio::test]
async fn a_hit_returns_the_same_caller() {
    let env = env().await;
    let token = env.issuer.token(CLIENT_ID);
    let first = env.verifier.verify(&token).await.unwrap();
    assert_eq!(env.verifier.cached_tokens(), 1);
    let second = env.verifier.verify(&token).await.unwrap();
    let via_header = env
        .verifier
        .verify_header(Some(&format!("Bearer {token}")))
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(first, via_header);
    assert_eq!(env.verifier.cached_tokens(), 1);
    // Clones share the cache.
    assert_eq!(env.verifier.clone().cached_tokens(), 1);
}

#[tokio::test]
async fn failures_are_never_cached() {
    let env = env().await;
    let wrong_audience = env.issuer.token("api://someone-else");
    for _ in 0..2 {
        let err = env.verifier.verify(&wrong_audience).await.unwrap_err();
        assert_eq!(err.code(), "bad_audience");
    }
    assert_eq!(env.verifier.cached_tokens(), 0);
}

#[tokio::test]
async fn an_expired_token_is_rejected_on_a_hit() {
    let (issuer, clock) = issuer_with_clock(TENANT).await;
    let verifier = builder(&issuer).leeway(Duration::ZERO).build().unwrap();
    let now = issuer.now();
    let token = issuer.mint(with(issuer.claims(CLIENT_ID), "exp", json!(now + 60)));
    verifier.verify(&token).await.unwrap();
    clock.advance(Duration::from_secs(30));
    verifier.verify(&token).await.unwrap();
    assert_eq!(verifier.cached_tokens(), 1);

    // Still well within the cache's 5 minutes, but past `exp`.
    clock.advance(Duration::from_secs(31));
    let err = verifier.verify(&token).await.unwrap_err();
    assert_eq!(err.code(), "expired", "{err}");
    assert_eq!(verifier.cached_tokens(), 0);
    assert_eq!(verifier.verify(&token).await.unwrap_err().code(), "expired");
}

#[tokio::test]
async fn a_not_yet_valid_token_is_rejected_on_a_hit_when_the_clock_goes_back() {
    let (issuer, clock) = issuer_with_clock(TENANT).await;
    let verifier = builder(&issuer).leeway(Duration::ZERO).build().unwrap();
    let token = issuer.token(CLIENT_ID);
    verifier.verify(&token).await.unwrap();
    clock.set(clock.now() - chrono::Duration::seconds(10));
    let err = verifier.verify(&token).await.unwrap_err();
    assert_eq!(err.code(), "not_yet_valid", "{err}");
}

#[tokio::test]
async fn a_retired_key_rejects_cached_tokens_after_the_refresh() {
    let env = env().await;
    let old = env.issuer.token(CLIENT_ID);
    env.verifier.verify(&old).await.unwrap();
    assert_eq!(env.verifier.cached_tokens(), 1);

    // Rotate and retire the old key; a token under the new kid makes the verifier refresh.
    let old_kid = env.issuer.kid();
    env.issuer.rotate_key().unwrap();
    env.issuer.retire_key(&old_kid);
    env.verifier
        .verify(&env.issuer.token(CLIENT_ID))
        .await
        .unwrap();

    let err = env.verifier.verify(&old).await.unwrap_err();
    assert_eq!(err.code(), "unknown_kid", "{err}");
    assert_eq!(env.verifier.cached_tokens(), 1);
}

#[tokio::test]
async fn a_refreshed_key_set_sends_cached_tokens_through_the_full_check() {
    let env = env().await;
    let old = env.issuer.token(CLIENT_ID);
    let caller = env.verifier.verify(&old).await.unwrap();
    env.issuer.rotate_key().unwrap();
    env.verifier
        .verify(&env.issuer.token(CLIENT_ID))
        .await
        .unwrap();
    let fetches = env.issuer.jwks_fetches();
    // The old key is still published: accepted again, verified against the new key set.
    assert_eq!(env.verifier.verify(&old).await.unwrap(), caller);
    assert_eq!(env.verifier.verify(&old).await.unwrap(), caller);
    assert_eq!(env.verifier.cached_tokens(), 2);
    assert_eq!(env.issuer.jwks_fetches(), fetches);
}

#[tokio::test]
async fn a_token_differing_in_one_signature_byte_is_not_a_hit() {
    let env = env().await;
    let token = env.issuer.token(CLIENT_ID);
    env.verifier.verify(&token).await.unwrap();

    let sig_start = token.rfind('.').unwrap() + 1;
    let mut forged = token.clone().into_bytes();
    let at = sig_start + 10;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_ne!(forged, token);
    let err = env.verifier.verify(&forged).await.unwrap_err();
    assert_eq!(err.code(), "bad_signature", "{err}");
    assert_eq!(env.verifier.cached_tokens(), 1);
    // The genuine token is still accepted.
    env.verifier.verify(&token).await.unwrap();
}

#[tokio::test]
async fn the_cache_holds_at_most_its_capacity() {
    let (issuer, _clock) = issuer_with_clock(TENANT).await;
    let verifier = builder(&issuer).token_cache_capacity(3).build().unwrap();
    let tokens: Vec<String> = (0..5)
        .map(|n| {
            issuer.mint(with(
                issuer.claims(CLIENT_ID),
                "uti",
                json!(format!("u{n}")),
            ))
        })
        .collect();
    for (n, t) in tokens.iter().enumerate() {
        verifier.verify(t).await.unwrap();
        assert_eq!(verifier.cached_tokens(), (n + 1).min(3));
    }
    // Evicted tokens still verify (in full).
    for t in &tokens {
        verifier.verify(t).await.unwrap();
    }
    assert_eq!(verifier.cached_tokens(), 3);
}

#[tokio::test]
async fn the_cache_can_be_disabled() {
    let (issuer, _clock) = issuer_with_clock(TENANT).await;
    let token = issuer.token(CLIENT_ID);
    for verifier in [
        builder(&issuer).token_cache_capacity(0).build().unwrap(),
        builder(&issuer)
            .token_cache_max_age(Duration::ZERO)
            .build()
            .unwrap(),
    ] {
        let a = verifier.verify(&token).await.unwrap();
        assert_eq!(verifier.verify(&token).await.unwrap(), a);
        assert_eq!(verifier.cached_tokens(), 0);
    }
}

#[tokio::test]
async fn entries_older_than_the_maximum_age_are_verified_again() {
    let env = env().await;
    let token = env.issuer.token(CLIENT_ID);
    env.verifier.verify(&token).await.unwrap();
    env.clock.advance(Duration::from_secs(300));
    // Past the cache's 5 minutes: the entry is dropped and the token verified (and cached) again.
    env.verifier.verify(&token).await.unwrap();
    assert_eq!(env.verifier.cached_tokens(), 1);
}
