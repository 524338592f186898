//! Whatever the input, verification returns an error and never panics or accepts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use proptest::prelude::*;

use std::sync::OnceLock;

/// One runtime (which keeps the test issuer's server running) and one warm verifier for all cases.
fn shared() -> &'static (tokio::runtime::Runtime, Env) {
    static SHARED: OnceLock<(tokio::runtime::Runtime, Env)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let env = rt.block_on(env());
        rt.block_on(env.verifier.warm_up()).unwrap();
        (rt, env)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_strings_are_rejected(input in ".{0,400}") {
        let (rt, env) = shared();
        prop_assert!(rt.block_on(env.verifier.verify(&input)).is_err());
        prop_assert!(rt.block_on(env.verifier.verify_header(Some(&input))).is_err());
        let _ = secure_export_aad::peek_tenant_id(&input);
    }

    #[test]
    fn mutated_tokens_are_rejected(pos in 0usize..2000, byte in 0u8..128, cut in 0usize..2000) {
        let (rt, env) = shared();
        let token = env.issuer.token(CLIENT_ID);
        let mut bytes = token.clone().into_bytes();
        let i = pos % bytes.len();
        if bytes[i] == byte {
            return Ok(());
        }
        bytes[i] = byte;
        let mutated = String::from_utf8(bytes).unwrap();
        prop_assert!(rt.block_on(env.verifier.verify(&mutated)).is_err(), "accepted a mutated token");
        let truncated = &token[..cut % token.len()];
        prop_assert!(rt.block_on(env.verifier.verify(truncated)).is_err());
    }
}
