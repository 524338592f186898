//! Security review: a caller sends a token with an unknown `kid` and hangs up at once. The key
//! fetch it triggered must not be cancelled with its request (which used to leave the unknown-kid
//! throttle started and the new key unfetched, so genuine tokens signed with a freshly published
//! key got 401 for 5 minutes). Fetches run detached, are shared by concurrent callers, and the
//! throttle window starts when a fetch completes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::*;
use secure_export_aad::test_util::TestKey;
use secure_export_aad::{TokenVerifier, TokenVersions};
use serde_json::json;

const SLOW_JWKS: Duration = Duration::from_millis(300);

/// Waits (real time, bounded) until the issuer has received more than `seen` JWKS requests.
async fn jwks_request_arrives(env: &Env, seen: u64) {
    let arrived = async {
        while env.issuer.jwks_fetches() <= seen {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), arrived)
        .await
        .expect("no JWKS request arrived");
}

/// A token for `kid`, signed by some other key (the kid is what matters here).
fn forged(env: &Env, kid: &str) -> String {
    env.issuer.mint_with_header(
        json!({"alg": "RS256", "kid": kid}),
        env.issuer.claims(CLIENT_ID),
    )
}

#[tokio::test]
async fn hung_up_unknown_kid_request_does_not_block_key_rollover() {
    let env = env().await;
    env.verifier.warm_up().await.unwrap();
    let jwks_before = env.issuer.jwks_fetches();

    // The tenant publishes a new key; its JWKS endpoint answers slowly.
    let new_kid = env.issuer.rotate_key().unwrap();
    env.issuer.set_jwks_delay(SLOW_JWKS);

    // The attacker: an unknown kid, then hangs up while the key fetch is in flight.
    let attack = forged(&env, "attacker-kid");
    let verifier = env.verifier.clone();
    let call = tokio::spawn(async move { verifier.verify(&attack).await });
    jwks_request_arrives(&env, jwks_before).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());

    // Within the throttle window (the clock has not moved), Azure Monitor's genuine token signed
    // with the new key is accepted: it joins the fetch the attacker started.
    let genuine = env.issuer.token(CLIENT_ID);
    assert_eq!(env.issuer.kid(), new_kid);
    let caller = env.verifier.verify(&genuine).await.unwrap();
    assert_eq!(caller.tenant_id, TENANT);
    assert_eq!(
        env.issuer.jwks_fetches(),
        jwks_before + 1,
        "one fetch, shared by the attacker and the genuine caller"
    );

    // The completed fetch started the throttle window: another unknown kid fetches nothing.
    let err = env
        .verifier
        .verify(&forged(&env, "attacker-kid-2"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown_kid");
    assert_eq!(env.issuer.jwks_fetches(), jwks_before + 1);
}

#[tokio::test]
async fn request_deadline_cuts_the_wait_not_the_fetch() {
    let env = env().await;
    env.verifier.warm_up().await.unwrap();
    let jwks_before = env.issuer.jwks_fetches();
    env.issuer.rotate_key().unwrap();
    env.issuer.set_jwks_delay(SLOW_JWKS);
    let genuine = env.issuer.token(CLIENT_ID);

    // The caller's own deadline expires while the fetch is in flight.
    let cut = tokio::time::timeout(Duration::from_millis(10), env.verifier.verify(&genuine)).await;
    assert!(cut.is_err(), "the fetch takes longer than the deadline");

    // The fetch went on: the same token is accepted without a second fetch.
    env.verifier.verify(&genuine).await.unwrap();
    assert_eq!(env.issuer.jwks_fetches(), jwks_before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unknown_kids_share_one_in_flight_fetch() {
    const N: usize = 50;
    let env = env().await;
    env.verifier.warm_up().await.unwrap();
    let before = (env.issuer.discovery_fetches(), env.issuer.jwks_fetches());
    env.issuer.rotate_key().unwrap();
    env.issuer.set_jwks_delay(SLOW_JWKS);
    let genuine = env.issuer.token(CLIENT_ID);

    let first = {
        let v = env.verifier.clone();
        let t = forged(&env, "forged-0");
        tokio::spawn(async move { v.verify(&t).await })
    };
    jwks_request_arrives(&env, before.1).await;
    // Everyone else arrives while that fetch is in flight.
    let mut calls = vec![(false, first)];
    for i in 1..N {
        let v = env.verifier.clone();
        let (is_genuine, t) = if i % 2 == 0 {
            (true, genuine.clone())
        } else {
            (false, forged(&env, &format!("forged-{i}")))
        };
        calls.push((is_genuine, tokio::spawn(async move { v.verify(&t).await })));
    }
    for (is_genuine, call) in calls {
        let result = call.await.unwrap();
        if is_genuine {
            result.unwrap();
        } else {
            assert_eq!(result.unwrap_err().code(), "unknown_kid");
        }
    }
    assert_eq!(
        (env.issuer.discovery_fetches(), env.issuer.jwks_fetches()),
        (before.0 + 1, before.1 + 1),
        "{N} concurrent callers, exactly one discovery and one JWKS request"
    );
}

#[tokio::test]
async fn unknown_kid_throttle_counts_from_the_completed_fetch() {
    let env = env().await;
    env.verifier.warm_up().await.unwrap();
    let jwks_before = env.issuer.jwks_fetches();
    env.issuer.set_jwks_delay(Duration::from_millis(100));

    // Started at T; by the verifier's clock it completes at T + 200 s.
    let first = {
        let v = env.verifier.clone();
        let t = forged(&env, "unknown-1");
        tokio::spawn(async move { v.verify(&t).await })
    };
    jwks_request_arrives(&env, jwks_before).await;
    env.clock.advance(Duration::from_secs(200));
    assert_eq!(first.await.unwrap().unwrap_err().code(), "unknown_kid");
    assert_eq!(env.issuer.jwks_fetches(), jwks_before + 1);

    // Right after the completed fetch: no second fetch.
    env.issuer.set_jwks_delay(Duration::ZERO);
    let second = forged(&env, "unknown-2");
    assert_eq!(
        env.verifier.verify(&second).await.unwrap_err().code(),
        "unknown_kid"
    );
    assert_eq!(env.issuer.jwks_fetches(), jwks_before + 1);

    // T + 350 s: past 5 min from the start, but only 150 s from the completion.
    env.clock.advance(Duration::from_secs(150));
    assert_eq!(
        env.verifier.verify(&second).await.unwrap_err().code(),
        "unknown_kid"
    );
    assert_eq!(env.issuer.jwks_fetches(), jwks_before + 1);

    // T + 500 s: 5 min after the completion, the next unknown kid fetches again.
    env.clock.advance(Duration::from_secs(150));
    assert_eq!(
        env.verifier.verify(&second).await.unwrap_err().code(),
        "unknown_kid"
    );
    assert_eq!(env.issuer.jwks_fetches(), jwks_before + 2);
}

#[tokio::test]
async fn dropped_warm_up_still_loads_the_keys() {
    let (issuer, clock) = issuer_with_clock(TENANT).await;
    let verifier = builder(&issuer)
        .versions(TokenVersions::V2Only)
        .build()
        .unwrap();
    let env = Env {
        issuer,
        clock,
        verifier,
    };
    env.issuer.set_jwks_delay(SLOW_JWKS);
    let warm = {
        let v = env.verifier.clone();
        tokio::spawn(async move { v.warm_up().await })
    };
    jwks_request_arrives(&env, 0).await;
    warm.abort();
    assert!(warm.await.unwrap_err().is_cancelled());

    // The first request joins the load the dropped warm-up started.
    env.verifier
        .verify(&env.issuer.token(CLIENT_ID))
        .await
        .unwrap();
    assert!(env.verifier.keys_loaded());
    assert_eq!(
        (env.issuer.discovery_fetches(), env.issuer.jwks_fetches()),
        (1, 1)
    );
}

#[tokio::test]
async fn dropped_proactive_refresh_still_completes() {
    let env = env().await;
    env.verifier.warm_up().await.unwrap();
    let jwks_before = env.issuer.jwks_fetches();
    let old_key = env.issuer.current_key().unwrap();
    env.issuer.rotate_key().unwrap();
    env.issuer.set_jwks_delay(SLOW_JWKS);
    // Past the proactive refresh time (12 to 24 h).
    env.clock.advance(Duration::from_secs(25 * 3600));

    // A request with a known kid triggers the refresh and is dropped while it is in flight.
    let header = json!({"alg": "RS256", "kid": old_key.kid()}).to_string();
    let old_token = old_key.sign_raw(&header, &env.issuer.claims(CLIENT_ID).to_string());
    let call = {
        let v = env.verifier.clone();
        tokio::spawn(async move { v.verify(&old_token).await })
    };
    jwks_request_arrives(&env, jwks_before).await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());

    // The new key's token joins that refresh: accepted, no second fetch.
    env.verifier
        .verify(&env.issuer.token(CLIENT_ID))
        .await
        .unwrap();
    assert_eq!(env.issuer.jwks_fetches(), jwks_before + 1);
}

#[test]
fn fetch_dropped_with_its_runtime_does_not_wedge_the_source() {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    // The issuer serves from its own runtime for the whole test.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let env = server.block_on(env());
    server.block_on(env.verifier.warm_up()).unwrap();
    env.issuer.rotate_key().unwrap();
    env.issuer.set_jwks_delay(SLOW_JWKS);
    let genuine = env.issuer.token(CLIENT_ID);

    // The fetch is spawned on a runtime that shuts down while it is in flight.
    let doomed = runtime();
    let cut = doomed.block_on(async {
        tokio::time::timeout(Duration::from_millis(50), env.verifier.verify(&genuine)).await
    });
    assert!(cut.is_err());
    drop(doomed);

    // The abandoned fetch counts as failed: 503 during the cooldown, never a wait without end.
    let rt = runtime();
    let err = rt
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(5), env.verifier.verify(&genuine)).await
        })
        .expect("no wait on a fetch that will never complete")
        .unwrap_err();
    assert_eq!(err.code(), "keys_unavailable");
    // After the cooldown, a new fetch picks up the new key.
    env.clock.advance(Duration::from_secs(31));
    rt.block_on(env.verifier.verify(&genuine)).unwrap();
}

/// Polls a future once, outside any async runtime.
fn poll_once<F: Future>(fut: F) -> Poll<F::Output> {
    pin!(fut).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn outside_a_tokio_runtime_a_fetch_fails_without_panicking() {
    let verifier = TokenVerifier::builder([TENANT], [CLIENT_ID])
        .authority("http://127.0.0.1:9")
        .versions(TokenVersions::V2Only)
        .build()
        .unwrap();
    let key = TestKey::generate("k").unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "aud": CLIENT_ID,
        "iss": format!("http://127.0.0.1:9/{TENANT}/v2.0"),
        "iat": now, "nbf": now, "exp": now + 3600,
        "azp": secure_export_aad::AZURE_MONITOR_APP_ID,
        "idtyp": "app",
        "roles": [secure_export_aad::DEFAULT_ROLE],
        "tid": TENANT,
        "ver": "2.0",
    });
    let token = key.sign_raw(
        &json!({"alg": "RS256", "kid": "k"}).to_string(),
        &claims.to_string(),
    );
    let Poll::Ready(Err(e)) = poll_once(verifier.verify(&token)) else {
        unreachable!("verify must fail at once outside a runtime");
    };
    assert_eq!(e.code(), "keys_unavailable");
    assert!(e.to_string().contains("Tokio runtime"), "{e}");
    let Poll::Ready(Err(e)) = poll_once(verifier.warm_up()) else {
        unreachable!("warm_up must fail at once outside a runtime");
    };
    assert_eq!(e.code(), "keys_unavailable");
    assert!(!verifier.keys_loaded());
}
