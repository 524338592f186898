//! `TestIssuer` serving extra tenants on one authority, as the receiver's any-tenant probe needs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use secure_export_aad::test_util::TestIssuer;
use secure_export_aad::{ErrorClass, TokenVerifier};

const THIRD_TENANT: &str = "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f";

#[tokio::test]
async fn extra_tenant_tokens_are_genuine_but_not_allowed_for_the_main_tenant() {
    let issuer = TestIssuer::builder(TENANT)
        .extra_tenant(OTHER_TENANT.to_uppercase())
        .start()
        .await
        .unwrap();
    assert_eq!(issuer.tenants(), [TENANT, OTHER_TENANT]);
    let token = issuer.token_for_tenant(OTHER_TENANT, CLIENT_ID);

    let main_only = builder(&issuer).build().unwrap();
    let err = main_only.verify(&token).await.unwrap_err();
    assert_eq!(err.code(), "bad_tenant");

    let any = builder(&issuer).insecure_any_tenant().build().unwrap();
    let caller = any.verify(&token).await.unwrap();
    assert_eq!(caller.tenant_id, OTHER_TENANT);

    let other_only = TokenVerifier::builder([OTHER_TENANT], [CLIENT_ID])
        .authority(issuer.authority())
        .build()
        .unwrap();
    other_only.warm_up().await.unwrap();
    assert_eq!(other_only.verify(&token).await.unwrap(), caller);
    // The main tenant's tokens still verify as before.
    main_only.verify(&issuer.token(CLIENT_ID)).await.unwrap();
}

#[tokio::test]
async fn tenants_added_at_run_time_are_served_and_others_are_not() {
    let issuer = TestIssuer::start(TENANT).await.unwrap();
    let any = builder(&issuer).insecure_any_tenant().build().unwrap();
    // Not served (yet): discovery answers 404, so the tenant's keys are unavailable.
    let err = any
        .verify(&issuer.token_for_tenant(THIRD_TENANT, CLIENT_ID))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unavailable, "{err}");

    issuer.add_tenant(OTHER_TENANT);
    issuer.add_tenant(OTHER_TENANT);
    issuer.add_tenant(TENANT);
    assert_eq!(issuer.tenants(), [TENANT, OTHER_TENANT]);
    let caller = any
        .verify(&issuer.token_for_tenant(OTHER_TENANT, CLIENT_ID))
        .await
        .unwrap();
    assert_eq!(caller.tenant_id, OTHER_TENANT);
    assert_eq!(
        issuer.claims_for_tenant(OTHER_TENANT, CLIENT_ID)["iss"],
        issuer.issuer_for_tenant(OTHER_TENANT, secure_export_aad::TokenVersion::V2)
    );
}
