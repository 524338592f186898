//! Full token verification with warm keys (verified-token cache off) and a verified-token cache
//! hit vs. a bare RS256 signature check of the same token with the same crypto backend
//! (jsonwebtoken + aws-lc-rs), in the same run.
//!
//! `cargo bench -p secure-export-aad --bench token_verify -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey};
use secure_export_aad::test_util::TestIssuer;
use serde_json::json;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AUDIENCE: &str = "6f2d1a1e-0c5b-4a53-9d43-5d4b6c7e8f90";

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let issuer = rt.block_on(TestIssuer::start(TENANT)).unwrap();
    let verifier = issuer
        .verifier_builder([AUDIENCE])
        .token_cache_capacity(0)
        .build()
        .unwrap();
    rt.block_on(verifier.warm_up()).unwrap();
    let token = issuer.token(AUDIENCE);
    rt.block_on(verifier.verify(&token)).unwrap();
    let cached = issuer.verifier_builder([AUDIENCE]).build().unwrap();
    rt.block_on(cached.verify(&token)).unwrap();
    assert_eq!(cached.cached_tokens(), 1);

    let jwk = issuer.current_key().unwrap().jwk();
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    assert!(
        jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), &key, Algorithm::RS256)
            .unwrap()
    );

    let forged = issuer.mint_with_header(
        json!({"alg": "RS256", "kid": "forged"}),
        issuer.claims(AUDIENCE),
    );

    let mut g = c.benchmark_group("token_verify");
    g.bench_function("baseline_rs256_signature_only", |b| {
        b.iter(|| {
            jsonwebtoken::crypto::verify(
                std::hint::black_box(signature),
                std::hint::black_box(signing_input.as_bytes()),
                &key,
                Algorithm::RS256,
            )
            .unwrap()
        });
    });
    g.bench_function("full_verify_warm_keys", |b| {
        b.to_async(&rt)
            .iter(|| async { verifier.verify(std::hint::black_box(&token)).await.unwrap() });
    });
    g.bench_function("cached_verify_hit", |b| {
        b.to_async(&rt)
            .iter(|| async { cached.verify(std::hint::black_box(&token)).await.unwrap() });
    });
    g.bench_function("reject_unknown_kid", |b| {
        b.to_async(&rt).iter(|| async {
            verifier
                .verify(std::hint::black_box(&forged))
                .await
                .unwrap_err()
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
