//! Fails if jsonwebtoken's crypto backend selection is broken (none, or both, enabled).
//!
//! jsonwebtoken 10 panics at the first verify when feature unification turns on `rust_crypto`
//! next to `aws_lc_rs`. This test runs a real RS256 verify through jsonwebtoken's process-wide
//! provider WITHOUT building a `TokenVerifier` first (which installs aws-lc-rs explicitly), so a
//! broken feature set fails here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jsonwebtoken::{Algorithm, DecodingKey};
use secure_export_aad::test_util::TestKey;

#[test]
fn exactly_one_backend_aws_lc_rs() {
    // Compiles only with the `aws_lc_rs` feature.
    let _provider: &jsonwebtoken::crypto::CryptoProvider =
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;

    let key = TestKey::generate("k").unwrap();
    let jwk = key.jwk();
    let decoding =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let input = "eyJhbGciOiJSUzI1NiJ9.e30";
    let sig = key.sign(input);
    // Panics here if zero or two backends are compiled in.
    let ok = std::panic::catch_unwind(|| {
        jsonwebtoken::crypto::verify(&sig, input.as_bytes(), &decoding, Algorithm::RS256)
    });
    let ok = ok.expect("jsonwebtoken has no usable default crypto provider: check `cargo tree -e features -i jsonwebtoken`");
    assert!(ok.unwrap(), "valid signature must verify");
    let bad = jsonwebtoken::crypto::verify(
        &sig,
        b"eyJhbGciOiJSUzI1NiJ9.e31",
        &decoding,
        Algorithm::RS256,
    )
    .unwrap();
    assert!(!bad);
}
