//! v1 and v2 tokens, each cloud's issuers, offline JWKS mode, and policy switches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use secure_export_aad::test_util::TestIssuer;
use secure_export_aad::{
    AZURE_MONITOR_APP_ID, AZURE_MONITOR_APP_ID_US_GOV, Cloud, ManualClock, TokenVerifier,
    TokenVersion, TokenVersions, peek_tenant_id,
};
use serde_json::json;

#[tokio::test]
async fn v1_and_v2_tokens() {
    let env = env().await;
    let v2 = env
        .verifier
        .verify(&env.issuer.token(CLIENT_ID))
        .await
        .unwrap();
    assert_eq!(v2.token_version, TokenVersion::V2);
    assert_eq!(v2.app_id, AZURE_MONITOR_APP_ID);
    assert_eq!(v2.tenant_id, TENANT);
    assert_eq!(v2.roles, vec!["ActionGroupsSecureWebhook"]);
    assert_eq!(
        v2.object_id.as_deref(),
        Some(secure_export_aad::test_util::TEST_CALLER_OBJECT_ID)
    );
    assert_eq!(v2.expires_at.timestamp(), env.issuer.now() + 3600);

    let v1 = env
        .verifier
        .verify(&env.issuer.token_v1(APP_ID_URI))
        .await
        .unwrap();
    assert_eq!(v1.token_version, TokenVersion::V1);
    assert_eq!(v1.app_id, AZURE_MONITOR_APP_ID);
    // v1 with the client id as audience is also valid (Entra allows either).
    env.verifier
        .verify(&env.issuer.token_v1(CLIENT_ID))
        .await
        .unwrap();
    // v1 reads appid, not azp.
    let azp_only = env.issuer.mint(with(
        without(env.issuer.claims_v1(APP_ID_URI), "appid"),
        "azp",
        json!(AZURE_MONITOR_APP_ID),
    ));
    assert_eq!(
        env.verifier.verify(&azp_only).await.unwrap_err().code(),
        "missing_claim"
    );
}

#[tokio::test]
async fn version_policy() {
    let (issuer, _clock) = issuer_with_clock(TENANT).await;
    let v2_only = builder(&issuer)
        .versions(TokenVersions::V2Only)
        .build()
        .unwrap();
    assert_eq!(
        v2_only
            .verify(&issuer.token_v1(APP_ID_URI))
            .await
            .unwrap_err()
            .code(),
        "bad_version"
    );
    v2_only.verify(&issuer.token(CLIENT_ID)).await.unwrap();
    let v1_only = builder(&issuer)
        .versions(TokenVersions::V1Only)
        .build()
        .unwrap();
    assert_eq!(
        v1_only
            .verify(&issuer.token(CLIENT_ID))
            .await
            .unwrap_err()
            .code(),
        "bad_version"
    );
    v1_only.verify(&issuer.token_v1(APP_ID_URI)).await.unwrap();
}

fn cloud_issuers(cloud: Cloud) -> (String, String) {
    let v1 = format!("{}{{tenantid}}/", cloud.v1_issuer_prefix());
    let v2 = format!("{}/{{tenantid}}/v2.0", cloud.authority());
    (v1, v2)
}

/// Each cloud's issuers, served by a local discovery document exactly as that cloud's would be.
#[tokio::test]
async fn each_cloud_issuer_via_discovery() {
    for cloud in [Cloud::Public, Cloud::UsGovernment, Cloud::China] {
        let (v1, v2) = cloud_issuers(cloud);
        let issuer = TestIssuer::builder(TENANT)
            .v1_issuer(&v1)
            .v2_issuer(&v2)
            .start()
            .await
            .unwrap();
        let app_id = if cloud == Cloud::UsGovernment {
            AZURE_MONITOR_APP_ID_US_GOV
        } else {
            AZURE_MONITOR_APP_ID
        };
        let verifier = TokenVerifier::builder([TENANT], [CLIENT_ID, APP_ID_URI])
            .cloud(cloud)
            .authority(issuer.authority())
            .build()
            .unwrap();
        let v2_claims = issuer.claims(CLIENT_ID);
        assert_eq!(v2_claims["iss"], json!(v2.replace("{tenantid}", TENANT)));
        let caller = verifier
            .verify(&issuer.mint(with(v2_claims, "azp", json!(app_id))))
            .await
            .unwrap();
        assert_eq!(caller.app_id, app_id, "{cloud:?}");
        verifier.verify(&issuer.token_v1(APP_ID_URI)).await.unwrap();
        // Another cloud's issuer is refused.
        let other = if cloud == Cloud::China {
            Cloud::Public
        } else {
            Cloud::China
        };
        let (o1, o2) = cloud_issuers(other);
        let wrong_v2 = issuer.mint(with(
            issuer.claims(CLIENT_ID),
            "iss",
            json!(o2.replace("{tenantid}", TENANT)),
        ));
        assert_eq!(
            verifier.verify(&wrong_v2).await.unwrap_err().code(),
            "bad_issuer",
            "{cloud:?}"
        );
        let wrong_v1 = issuer.mint(with(
            issuer.claims_v1(APP_ID_URI),
            "iss",
            json!(o1.replace("{tenantid}", TENANT)),
        ));
        assert_eq!(
            verifier.verify(&wrong_v1).await.unwrap_err().code(),
            "bad_issuer",
            "{cloud:?}"
        );
    }
}

/// Offline mode derives each cloud's issuers itself (no discovery).
#[tokio::test]
async fn each_cloud_issuer_offline() {
    for cloud in [Cloud::Public, Cloud::UsGovernment, Cloud::China] {
        let (v1, v2) = cloud_issuers(cloud);
        let issuer = TestIssuer::builder(TENANT)
            .v1_issuer(&v1)
            .v2_issuer(&v2)
            .start()
            .await
            .unwrap();
        let verifier = TokenVerifier::builder([TENANT], [CLIENT_ID, APP_ID_URI])
            .cloud(cloud)
            .offline_jwks(issuer.jwks_json())
            .build()
            .unwrap();
        assert!(verifier.keys_loaded());
        verifier.verify(&issuer.token(CLIENT_ID)).await.unwrap();
        verifier.verify(&issuer.token_v1(APP_ID_URI)).await.unwrap();
        // Offline: no fetch at all, and unknown kids fail at once.
        let forged = issuer.mint_with_header(
            json!({"alg": "RS256", "kid": "x"}),
            issuer.claims(CLIENT_ID),
        );
        assert_eq!(
            verifier.verify(&forged).await.unwrap_err().code(),
            "unknown_kid"
        );
        assert_eq!(issuer.discovery_fetches() + issuer.jwks_fetches(), 0);
    }
}

#[tokio::test]
async fn offline_jwks_must_hold_a_usable_key() {
    let err = TokenVerifier::builder([TENANT], [CLIENT_ID])
        .offline_jwks(r#"{"keys":[]}"#)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no usable"));
    let err = TokenVerifier::builder([TENANT], [CLIENT_ID])
        .offline_jwks("not json")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("JWKS"));
}

#[tokio::test]
async fn several_tenants_and_any_tenant() {
    let clock = Arc::new(ManualClock::starting_now());
    let a = TestIssuer::builder(TENANT)
        .clock(clock.clone())
        .start()
        .await
        .unwrap();
    // Both tenants are served by one authority in real Entra; here each issuer is its own server,
    // so use two verifiers pointed at each, plus the any-tenant mode.
    let both = TokenVerifier::builder([TENANT, OTHER_TENANT], [CLIENT_ID])
        .authority(a.authority())
        .clock(clock.clone())
        .build()
        .unwrap();
    both.verify(&a.token(CLIENT_ID)).await.unwrap();
    let any = TokenVerifier::builder(Vec::<String>::new(), [CLIENT_ID])
        .insecure_any_tenant()
        .authority(a.authority())
        .clock(clock.clone())
        .build()
        .unwrap();
    assert!(!any.keys_loaded());
    any.verify(&a.token(CLIENT_ID)).await.unwrap();
    assert!(any.keys_loaded());
    // A tenant the authority does not serve: discovery 404 -> keys_unavailable, never accepted.
    let other = a.mint(with(
        with(a.claims(CLIENT_ID), "tid", json!(OTHER_TENANT)),
        "iss",
        json!(format!("{}/{OTHER_TENANT}/v2.0", a.authority())),
    ));
    assert_eq!(
        any.verify(&other).await.unwrap_err().code(),
        "keys_unavailable"
    );
}

#[tokio::test]
async fn policy_switches() {
    let (issuer, clock) = issuer_with_clock(TENANT).await;
    // Role check off.
    let no_role = builder(&issuer).required_role(None).build().unwrap();
    no_role
        .verify(&issuer.mint(without(issuer.claims(CLIENT_ID), "roles")))
        .await
        .unwrap();
    // Custom role.
    let custom = builder(&issuer)
        .required_role(Some("Alerts.Send".to_owned()))
        .build()
        .unwrap();
    assert_eq!(
        custom
            .verify(&issuer.token(CLIENT_ID))
            .await
            .unwrap_err()
            .code(),
        "missing_role"
    );
    // Custom caller ids.
    let callers = builder(&issuer)
        .caller_app_ids(["11111111-2222-3333-4444-555555555555"])
        .build()
        .unwrap();
    assert_eq!(
        callers
            .verify(&issuer.token(CLIENT_ID))
            .await
            .unwrap_err()
            .code(),
        "caller_not_allowed"
    );
    // Zero leeway.
    let strict = builder(&issuer).leeway(Duration::ZERO).build().unwrap();
    let t = issuer.token(CLIENT_ID);
    strict.verify(&t).await.unwrap();
    clock.advance(Duration::from_secs(3601));
    assert_eq!(strict.verify(&t).await.unwrap_err().code(), "expired");
    // Shorter max lifetime.
    let short = builder(&issuer)
        .max_lifetime(Duration::from_secs(1800))
        .build()
        .unwrap();
    assert_eq!(
        short
            .verify(&issuer.token(CLIENT_ID))
            .await
            .unwrap_err()
            .code(),
        "lifetime_too_long"
    );
}

#[tokio::test]
async fn trailing_slash_rule_both_ways() {
    let (issuer, _clock) = issuer_with_clock(TENANT).await;
    let slash = issuer
        .verifier_builder(["api://itsm-receiver/"])
        .build()
        .unwrap();
    for (aud, ok) in [
        ("api://itsm-receiver", true),
        ("api://itsm-receiver/", true),
        ("api://itsm-receiver//", false),
        ("api://itsm-receiver/x", false),
        ("API://itsm-receiver/", false),
    ] {
        let got = slash
            .verify(&issuer.mint(with(issuer.claims(CLIENT_ID), "aud", json!(aud))))
            .await;
        assert_eq!(got.is_ok(), ok, "{aud}");
    }
}

#[tokio::test]
async fn peek_tenant_of_a_real_token() {
    let (issuer, _clock) = issuer_with_clock(TENANT).await;
    let t = issuer.token(CLIENT_ID);
    assert_eq!(peek_tenant_id(&t).as_deref(), Some(TENANT));
    assert_eq!(
        peek_tenant_id(&format!("Bearer {t}")).as_deref(),
        Some(TENANT)
    );
}

/// `insecure_any_tenant`: forged tenant ids cannot turn into unbounded metadata fetches.
#[tokio::test]
async fn any_tenant_new_tenant_lookups_are_rate_limited() {
    let (issuer, clock) = issuer_with_clock(TENANT).await;
    let any = TokenVerifier::builder(Vec::<String>::new(), [CLIENT_ID])
        .insecure_any_tenant()
        .versions(TokenVersions::V2Only)
        .authority(issuer.authority())
        .clock(clock.clone())
        .build()
        .unwrap();
    let forged = |i: usize| {
        let tid = format!("00000000-0000-4000-8000-{i:012}");
        issuer.mint(with(issuer.claims(CLIENT_ID), "tid", json!(tid)))
    };
    let before = issuer.discovery_fetches();
    let mut limited = 0;
    for i in 0..40 {
        let e = any.verify(&forged(i)).await.unwrap_err();
        if e.code() == "bad_tenant" {
            limited += 1;
        } else {
            assert_eq!(e.code(), "keys_unavailable");
        }
    }
    assert_eq!(issuer.discovery_fetches() - before, 30);
    assert_eq!(limited, 10);
    // The next minute, the real tenant is looked up and accepted.
    clock.advance(Duration::from_secs(60));
    any.verify(&issuer.token(CLIENT_ID)).await.unwrap();
}
