//! Fuzzes the bearer-token path: `peek_tenant_id`, `TokenVerifier::verify_header` and `verify`
//! with a FIXED key set (offline JWKS, no network) and a fixed clock.
//!
//! Two kinds of input:
//!
//! - anything else than `sign:...`: taken (lossily as UTF-8) as an `Authorization` value and as a
//!   bare token. The key set is `token_jwks.json`, whose private key was thrown away when
//!   `gen-token-seeds.sh` signed the tokens in `token_signed.txt`; nothing can sign for it since,
//!   so a token that verifies must be one of those (anything else would be a forged token
//!   accepted).
//! - `sign:<header JSON>\n<claims JSON>`: the harness signs the two (raw bytes, base64url) with
//!   an RSA key generated at start (`kid` `fuzz-runtime`, or `fuzz-runtime-noiss` for the copy
//!   published without an `issuer` member), so the checks after the signature (times, issuer,
//!   audience, caller, role, user and PoP tokens) see arbitrary claims. With a bogus signature
//!   the same token must never verify.
//!
//! Invariants: no panic; a token that verifies carries, by an independent reading of its claims,
//! the expected tenant, issuer, audience, caller app id, role and valid times; the verified
//! caller matches those claims; the verified-token cache gives the same answers as no cache.
#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use secure_export_aad::test_util::TestKey;
use secure_export_aad::{
    AZURE_MONITOR_APP_ID, AZURE_MONITOR_APP_ID_US_GOV, DEFAULT_ROLE, ManualClock, TokenVerifier,
    TokenVersion, VerifiedCaller, VerifyError, peek_tenant_id,
};
use serde_json::Value;

/// The fixed clock (2025-06-15T15:06:40Z); the committed seeds are valid at this time.
const NOW: i64 = 1_750_000_000;
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AUDIENCES: [&str; 2] = [
    "api://secure-export-fuzz",
    "6f2d1a1e-0c5b-4a53-9d43-5d4b6c7e8f90",
];
const LEEWAY: i64 = 300;
const MAX_LIFETIME: i64 = 24 * 3600;
const V2_ISSUER_PREFIX: &str = "https://login.microsoftonline.com/";
const V1_ISSUER_PREFIX: &str = "https://sts.windows.net/";

/// Public key of the committed seeds (see `gen-token-seeds.sh`).
const SEED_JWKS: &str = include_str!("token_jwks.json");
/// Every token signed with that key.
const SIGNED: &str = include_str!("token_signed.txt");

struct Harness {
    runtime: tokio::runtime::Runtime,
    /// No verified-token cache: every call takes the full path.
    verifier: TokenVerifier,
    /// Same policy and keys, default cache.
    cached: TokenVerifier,
    /// `fuzz-runtime` (published with Entra's `issuer` member) and `fuzz-runtime-noiss`.
    keys: Vec<TestKey>,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let with_issuer = TestKey::generate("fuzz-runtime").expect("RSA key generation");
    let without_issuer = TestKey::generate("fuzz-runtime-noiss").expect("RSA key generation");
    let mut jwks: Value = serde_json::from_str(SEED_JWKS).expect("token_jwks.json is JSON");
    let list = jwks["keys"]
        .as_array_mut()
        .expect("token_jwks.json has keys");
    let mut jwk = with_issuer.jwk();
    jwk["issuer"] = Value::from(format!("{V2_ISSUER_PREFIX}{{tenantid}}/v2.0"));
    list.push(jwk);
    list.push(without_issuer.jwk());
    let jwks = jwks.to_string();
    let clock = Arc::new(ManualClock::new(
        DateTime::from_timestamp(NOW, 0).expect("valid time"),
    ));
    let builder = || {
        TokenVerifier::builder([TENANT], AUDIENCES)
            .offline_jwks(jwks.clone())
            .clock(clock.clone())
            .leeway(Duration::from_secs(LEEWAY as u64))
            .max_lifetime(Duration::from_secs(MAX_LIFETIME as u64))
    };
    Harness {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime"),
        verifier: builder()
            .token_cache_capacity(0)
            .build()
            .expect("verifier builds"),
        cached: builder().build().expect("verifier builds"),
        keys: vec![with_issuer, without_issuer],
    }
});

fuzz_target!(|data: &[u8]| {
    let h = &*HARNESS;
    match data.strip_prefix(b"sign:") {
        Some(rest) => signed(h, rest),
        None => raw(h, &String::from_utf8_lossy(data)),
    }
});

/// An arbitrary header value / token against the committed key set.
fn raw(h: &Harness, text: &str) {
    if let Some(tid) = peek_tenant_id(text) {
        assert!(
            tid.len() == 36
                && tid.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())
                && tid == tid.to_ascii_lowercase(),
            "peek_tenant_id gave a non-GUID {tid:?}"
        );
    }
    let from_header = h.runtime.block_on(h.verifier.verify_header(Some(text)));
    if let Ok(caller) = &from_header {
        let value = text.trim_matches([' ', '\t']);
        let token = value.split_once(' ').map_or(value, |(_, t)| t);
        assert_signed_seed(token);
        check_verified(token, caller);
    }
    let bare = h.runtime.block_on(h.verifier.verify(text));
    if let Ok(caller) = &bare {
        assert_signed_seed(text);
        check_verified(text, caller);
    }
    let cached = h.runtime.block_on(h.cached.verify(text));
    assert_same(&bare, &cached);
}

fn assert_signed_seed(token: &str) {
    assert!(
        SIGNED.lines().any(|line| line == token),
        "a token that was not signed with the fixed key verified: {token:?}"
    );
}

/// `header` and `claims` signed by the harness.
fn signed(h: &Harness, rest: &[u8]) {
    let (header, claims) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    // A bogus (but well-formed) signature first: it must never verify. Everything checked
    // before the signature does not depend on it, so any other error is final.
    let bogus = format!("{input}.AAAA");
    let first = h.runtime.block_on(h.verifier.verify(&bogus));
    match &first {
        Ok(_) => panic!("a token with a bogus signature verified"),
        Err(VerifyError::BadSignature) => {}
        Err(_) => return,
    }
    // Sign with the key the header names, if the harness has it.
    let kid = serde_json::from_slice::<Value>(header)
        .ok()
        .and_then(|v| v.get("kid").and_then(Value::as_str).map(str::to_owned));
    let Some(key) = h.keys.iter().find(|k| Some(k.kid()) == kid.as_deref()) else {
        return;
    };
    let token = format!("{input}.{}", key.sign(&input));
    let result = h.runtime.block_on(h.verifier.verify(&token));
    if let Ok(caller) = &result {
        check_verified(&token, caller);
        if key.kid() == "fuzz-runtime" {
            // The key's `issuer` names the v2 issuer: a v2 token must carry exactly that one.
            let claims = decode_claims(&token);
            if claims["ver"] == "2.0" {
                assert_eq!(claims["iss"], format!("{V2_ISSUER_PREFIX}{TENANT}/v2.0"));
            }
        }
    }
    // Twice through the cached verifier: a miss then (if it verified) a hit, same answers.
    let miss = h.runtime.block_on(h.cached.verify(&token));
    assert_same(&result, &miss);
    let hit = h.runtime.block_on(h.cached.verify(&token));
    assert_same(&result, &hit);
}

fn assert_same(a: &Result<VerifiedCaller, VerifyError>, b: &Result<VerifiedCaller, VerifyError>) {
    match (a, b) {
        (Ok(x), Ok(y)) => assert_eq!(x, y, "cache changed the verified caller"),
        (Err(x), Err(y)) => assert_eq!(x.code(), y.code(), "cache changed the error"),
        _ => panic!("cache changed the outcome: {a:?} vs {b:?}"),
    }
}

fn decode_claims(token: &str) -> Value {
    let payload = token
        .split('.')
        .nth(1)
        .expect("a verified token has a payload");
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .expect("a verified payload is base64url");
    serde_json::from_slice(&bytes).expect("a verified payload is JSON")
}

/// Re-reads a verified token's header and claims independently and checks the policy.
fn check_verified(token: &str, caller: &VerifiedCaller) {
    let header_b64 = token.split('.').next().unwrap_or_default();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(header_b64)
            .expect("a verified header is base64url"),
    )
    .expect("a verified header is JSON");
    assert_eq!(
        header["alg"], "RS256",
        "verified with alg {:?}",
        header["alg"]
    );
    let c = decode_claims(token);
    let str_claim = |name: &str| c.get(name).and_then(Value::as_str);

    // Tenant.
    let tid = str_claim("tid").expect("tid");
    assert!(tid.eq_ignore_ascii_case(TENANT), "verified tid {tid:?}");
    assert_eq!(caller.tenant_id, TENANT);
    assert_eq!(peek_tenant_id(token).as_deref(), Some(TENANT));

    // Version and issuer.
    let (version, issuer, caller_claim) = match str_claim("ver") {
        Some("1.0") => (
            TokenVersion::V1,
            format!("{V1_ISSUER_PREFIX}{TENANT}/"),
            "appid",
        ),
        Some("2.0") => (
            TokenVersion::V2,
            format!("{V2_ISSUER_PREFIX}{TENANT}/v2.0"),
            "azp",
        ),
        other => panic!("verified with ver {other:?}"),
    };
    assert_eq!(caller.token_version, version);
    assert_eq!(str_claim("iss"), Some(issuer.as_str()), "verified issuer");

    // Audience: one trailing slash ignored on either side, never empty.
    let strip = |s: &str| s.strip_suffix('/').unwrap_or(s).to_owned();
    let presented: Vec<&str> = match &c["aud"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        other => panic!("verified with aud {other}"),
    };
    assert!(
        presented
            .iter()
            .any(|p| !p.is_empty() && AUDIENCES.iter().any(|a| strip(a) == strip(p))),
        "verified with audience {presented:?}"
    );

    // Times, by the fixed clock.
    let num = |name: &str| {
        c[name]
            .as_i64()
            .unwrap_or_else(|| panic!("{name} not an integer"))
    };
    let (exp, nbf, iat) = (num("exp"), num("nbf"), num("iat"));
    assert!(exp + LEEWAY >= NOW, "verified an expired token");
    assert!(
        nbf <= exp && nbf <= NOW + LEEWAY && iat <= NOW + LEEWAY,
        "not yet valid"
    );
    assert!(exp - iat <= MAX_LIFETIME, "lifetime too long");
    assert_eq!(caller.expires_at.timestamp(), exp);

    // Caller, role, no user or PoP token.
    let app = str_claim(caller_claim).expect("caller app id");
    assert!(
        [AZURE_MONITOR_APP_ID, AZURE_MONITOR_APP_ID_US_GOV]
            .iter()
            .any(|id| id.eq_ignore_ascii_case(app)),
        "verified caller {app:?}"
    );
    assert_eq!(caller.app_id, app);
    let roles: Vec<&str> = c["roles"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(roles.contains(&DEFAULT_ROLE), "verified without the role");
    assert_eq!(caller.roles, roles);
    assert!(
        c.get("scp").is_none() && c.get("cnf").is_none(),
        "user or PoP token"
    );
    assert!(
        c.get("idtyp").is_none_or(|t| t == "app"),
        "verified idtyp {:?}",
        c["idtyp"]
    );
    assert_eq!(caller.object_id.as_deref(), str_claim("oid"));
}
