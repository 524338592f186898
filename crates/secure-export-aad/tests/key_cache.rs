//! Discovery and JWKS caching: rotation, unknown-kid floods, outages, and fetch limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::routing::get;
use common::*;
use secure_export_aad::test_util::TestKey;
use secure_export_aad::{ErrorClass, ManualClock, TokenVerifier};
use serde_json::json;

const FIVE_MIN: Duration = Duration::from_secs(300);

fn fetches(env: &Env) -> (u64, u64) {
    (env.issuer.discovery_fetches(), env.issuer.jwks_fetches())
}

#[tokio::test]
async fn first_use_loads_keys_once() {
    let env = env().await;
    assert!(!env.verifier.keys_loaded());
    let t = env.issuer.token(CLIENT_ID);
    env.verifier.verify(&t).await.unwrap();
    env.verifier.verify(&t).await.unwrap();
    assert_eq!(
        fetches(&env),
        (1, 1),
        "v2 only: one discovery and one JWKS fetch"
    );
    env.verifier.warm_up().await.unwrap();
    assert_eq!(fetches(&env), (2, 2), "warm_up loads the v1 source too");
    assert!(env.verifier.keys_loaded());
}

#[tokio::test]
async fn rotation_new_kid_costs_one_refresh() {
    let env = env().await;
    env.verifier.warm_up().await.unwrap();
    let old = env.issuer.token(CLIENT_ID);
    let before = fetches(&env);

    let new_kid = env.issuer.rotate_key().unwrap();
    let new = env.issuer.token(CLIENT_ID);
    assert_eq!(env.issuer.kid(), new_kid);
    let caller = env.verifier.verify(&new).await.unwrap();
    assert_eq!(caller.tenant_id, TENANT);
    assert_eq!(
        fetches(&env),
        (before.0 + 1, before.1 + 1),
        "exactly one refresh for the new kid"
    );

    // Old and new keys both work now, with no further fetches.
    env.verifier.verify(&old).await.unwrap();
    env.verifier.verify(&new).await.unwrap();
    assert_eq!(fetches(&env), (before.0 + 1, before.1 + 1));

    // A second rotation within the throttle window is not picked up until the window passes.
    env.issuer.rotate_key().unwrap();
    let newer = env.issuer.token(CLIENT_ID);
    assert_eq!(
        env.verifier.verify(&newer).await.unwrap_err().code(),
        "unknown_kid"
    );
    assert_eq!(fetches(&env), (before.0 + 1, before.1 + 1));
    env.clock.advance(FIVE_MIN);
    let newer = env.issuer.token(CLIENT_ID);
    env.verifier.verify(&newer).await.unwrap();
    assert_eq!(fetches(&env), (before.0 + 2, before.1 + 2));

    // A retired key disappears at the next (proactive, 12-24 h) refresh.
    let retired = env.issuer.current_key().unwrap();
    env.issuer.retire_key(retired.kid());
    env.clock.advance(Duration::from_secs(25 * 3600));
    let header = json!({"alg": "RS256", "kid": retired.kid()}).to_string();
    let token_of_retired = retired.sign_raw(&header, &env.issuer.claims(CLIENT_ID).to_string());
    let err = env.verifier.verify(&token_of_retired).await.unwrap_err();
    assert_eq!(err.code(), "unknown_kid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_flood_fetches_at_most_once_per_window() {
    let env = env().await;
    env.verifier.warm_up().await.unwrap();
    let before = fetches(&env);
    let claims = env.issuer.claims(CLIENT_ID).to_string();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let v = env.verifier.clone();
        let token = assemble(
            &json!({"alg": "RS256", "kid": format!("forged-{i}")}).to_string(),
            &claims,
            "c2ln",
        );
        tasks.push(tokio::spawn(async move { v.verify(&token).await }));
    }
    let mut unknown = 0;
    for t in tasks {
        let e = t.await.unwrap().unwrap_err();
        assert_eq!(e.code(), "unknown_kid");
        unknown += 1;
    }
    let after = fetches(&env);
    println!(
        "flood: {unknown} forged kids -> {} discovery + {} JWKS fetches",
        after.0 - before.0,
        after.1 - before.1
    );
    assert_eq!(unknown, 1000);
    assert!(
        after.1 - before.1 <= 1,
        "at most one JWKS fetch in the window, got {}",
        after.1 - before.1
    );

    // Still inside the window: no more fetches.
    env.clock.advance(Duration::from_secs(299));
    let token = assemble(
        &json!({"alg": "RS256", "kid": "forged-late"}).to_string(),
        &claims,
        "c2ln",
    );
    assert_eq!(
        env.verifier.verify(&token).await.unwrap_err().code(),
        "unknown_kid"
    );
    assert_eq!(fetches(&env), after);
    // Next window: one more.
    env.clock.advance(Duration::from_secs(1));
    assert_eq!(
        env.verifier.verify(&token).await.unwrap_err().code(),
        "unknown_kid"
    );
    assert_eq!(fetches(&env).1, after.1 + 1);
}

#[tokio::test]
async fn metadata_down_at_start_is_unavailable_then_recovers() {
    let env = env().await;
    env.issuer.set_available(false);
    let err = env.verifier.warm_up().await.unwrap_err();
    assert_eq!(err.code(), "keys_unavailable");
    assert_eq!(err.class(), ErrorClass::Unavailable);
    assert_eq!(err.class().http_status(), 503);
    assert!(!env.verifier.keys_loaded());

    let t = env.issuer.token(CLIENT_ID);
    let err = env.verifier.verify(&t).await.unwrap_err();
    assert_eq!(err.code(), "keys_unavailable");
    // Within the failure cooldown: no new fetch for each request.
    let during = fetches(&env);
    for _ in 0..20 {
        assert_eq!(
            env.verifier.verify(&t).await.unwrap_err().code(),
            "keys_unavailable"
        );
    }
    assert_eq!(fetches(&env), during);

    env.issuer.set_available(true);
    env.clock.advance(Duration::from_secs(31));
    let t = env.issuer.token(CLIENT_ID);
    env.verifier.verify(&t).await.unwrap();
    env.verifier.warm_up().await.unwrap();
    assert!(env.verifier.keys_loaded());
}

#[tokio::test]
async fn metadata_down_later_serves_old_keys() {
    let env = env().await;
    env.verifier.warm_up().await.unwrap();
    env.issuer.set_available(false);
    // Past the proactive refresh time (at most 24 h): the refresh fails, old keys keep working.
    env.clock.advance(Duration::from_secs(25 * 3600));
    let before = fetches(&env);
    let t = env.issuer.token(CLIENT_ID);
    env.verifier.verify(&t).await.unwrap();
    assert_eq!(fetches(&env).0, before.0 + 1, "a refresh was attempted");
    // An unknown kid during the outage is keys_unavailable (503), not 401: it may be a freshly
    // rolled key that the failed refresh could not fetch, and Azure retries only a 503.
    let forged = env.issuer.mint_with_header(
        json!({"alg": "RS256", "kid": "nope"}),
        env.issuer.claims(CLIENT_ID),
    );
    assert_eq!(
        env.verifier.verify(&forged).await.unwrap_err().code(),
        "keys_unavailable"
    );
    for _ in 0..10 {
        env.verifier.verify(&t).await.unwrap();
    }
    assert!(env.verifier.keys_loaded());
    // Back up: the next due refresh succeeds and picks up a rotated key.
    env.issuer.set_available(true);
    env.issuer.rotate_key().unwrap();
    env.clock.advance(FIVE_MIN);
    env.verifier
        .verify(&env.issuer.token(CLIENT_ID))
        .await
        .unwrap();
}

/// A hostile or broken metadata server: off-host jwks_uri, redirects, oversized and slow answers.
struct BadServer {
    authority: String,
    hits: Arc<AtomicU64>,
    _task: tokio::task::JoinHandle<()>,
}

async fn bad_server() -> BadServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicU64::new(0));
    let key = TestKey::generate("k").unwrap();
    let jwks = json!({"keys": [key.jwk()]}).to_string();
    let a = authority.clone();
    let h = hits.clone();
    let disc = move |jwks_uri: String| {
        let h = h.clone();
        move || {
            let body = json!({"issuer": "https://x.example/{tenantid}/v2.0", "jwks_uri": jwks_uri})
                .to_string();
            h.fetch_add(1, Ordering::SeqCst);
            async move { body }
        }
    };
    let app = axum::Router::new()
        // Tenant 1: jwks_uri on another host.
        .route(
            &format!("/{TENANT}/v2.0/.well-known/openid-configuration"),
            get(disc("http://127.0.0.2:9/keys".to_owned())),
        )
        // Tenant 2: redirect.
        .route(
            &format!("/{OTHER_TENANT}/v2.0/.well-known/openid-configuration"),
            get(|| async { axum::response::Redirect::temporary("https://evil.example/") }),
        )
        // Tenant 3: huge JWKS.
        .route(
            "/11111111-1111-1111-1111-111111111111/v2.0/.well-known/openid-configuration",
            get(disc(format!("{a}/huge"))),
        )
        .route("/huge", get(|| async { "x".repeat(1 << 20) }))
        // Tenant 4: slow JWKS.
        .route(
            "/22222222-2222-2222-2222-222222222222/v2.0/.well-known/openid-configuration",
            get(disc(format!("{a}/slow"))),
        )
        .route(
            "/slow",
            get(move || {
                let jwks = jwks.clone();
                async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    jwks
                }
            }),
        );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    BadServer {
        authority,
        hits,
        _task: task,
    }
}

#[tokio::test]
async fn hostile_metadata_is_refused() {
    let server = bad_server().await;
    let clock = Arc::new(ManualClock::starting_now());
    for (tenant, why) in [
        (TENANT, "is not on the authority"),
        (OTHER_TENANT, "HTTP 307"),
        ("11111111-1111-1111-1111-111111111111", "larger than"),
        ("22222222-2222-2222-2222-222222222222", "timed out"),
    ] {
        let v = TokenVerifier::builder([tenant], [CLIENT_ID])
            .authority(server.authority.clone())
            .versions(secure_export_aad::TokenVersions::V2Only)
            .fetch_timeout(Duration::from_millis(300))
            .clock(clock.clone())
            .build()
            .unwrap();
        let err = v.warm_up().await.unwrap_err();
        assert_eq!(err.code(), "keys_unavailable");
        assert!(err.to_string().contains(why), "{tenant}: {err}");
        assert!(!v.keys_loaded());
    }
    assert!(server.hits.load(Ordering::SeqCst) >= 3);
}
