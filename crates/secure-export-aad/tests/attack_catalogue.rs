//! Every row of the attack catalogue (security.md section 3) with the expected outcome.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_lc_rs::hmac;
use common::*;
use secure_export_aad::test_util::{TestIssuer, TestKey};
use secure_export_aad::{ErrorClass, TokenVersion, VerifyError};
use serde_json::{Value, json};

/// Expected outcome: `Ok` or the error code.
const OK: &str = "ok";

struct Case {
    row: &'static str,
    what: String,
    token: String,
    expect: &'static str,
}

fn case(row: &'static str, what: impl Into<String>, token: String, expect: &'static str) -> Case {
    Case {
        row,
        what: what.into(),
        token,
        expect,
    }
}

fn bit_flip(sig: &str) -> String {
    let mut chars: Vec<char> = sig.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// Changes the unused low bits of the last base64 character (a non-canonical encoding).
fn dirty_last_char(sig: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = sig.as_bytes().to_vec();
    let last = bytes.last_mut().unwrap();
    let idx = ALPHABET.iter().position(|c| c == last).unwrap();
    *last = ALPHABET[idx | 1];
    String::from_utf8(bytes).unwrap()
}

fn split3(t: &str) -> (String, String, String) {
    let mut p = t.split('.');
    (
        p.next().unwrap().to_owned(),
        p.next().unwrap().to_owned(),
        p.next().unwrap().to_owned(),
    )
}

fn public_key_pem(issuer: &TestIssuer) -> String {
    // The attacker knows our public key; "PEM bytes" stand-in: the JWK's modulus text.
    let jwk = issuer.current_key().unwrap().jwk();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        jwk["n"].as_str().unwrap()
    )
}

fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

async fn cases(env: &Env, other: &TestIssuer) -> Vec<Case> {
    let iss = &env.issuer;
    let now = iss.now();
    let good = iss.claims(CLIENT_ID);
    let kid = iss.kid();
    let hdr = iss.header();
    let valid = iss.token(CLIENT_ID);
    let (vh, vp, vs) = split3(&valid);
    let attacker = TestKey::generate("attacker-key").unwrap();
    let mut c = Vec::new();

    c.push(case("0", "valid v2 token (control)", valid.clone(), OK));
    c.push(case(
        "0",
        "valid v1 token (control)",
        iss.token_v1(APP_ID_URI),
        OK,
    ));

    // 1-2: alg none and its spellings.
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = json!({"alg": alg, "kid": kid}).to_string();
        c.push(case(
            "1-2",
            format!("alg {alg}, empty signature"),
            assemble(&h, &good.to_string(), ""),
            "bad_alg",
        ));
    }
    // 3-4: HS256 with the public key as the HMAC secret.
    let hs_header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    c.push(case(
        "3",
        "HS256 signed with the public key PEM",
        hs256(public_key_pem(iss).as_bytes(), &hs_header, &good),
        "bad_alg",
    ));
    c.push(case(
        "4",
        "HS256 with kid of a published oct (HMAC) JWK",
        hs256(b"secret", &json!({"alg": "HS256", "kid": "oct-key"}), &good),
        "bad_alg",
    ));
    c.push(case(
        "4",
        "RS256 header, kid of the published oct JWK (dropped at load)",
        iss.mint_with_header(json!({"alg": "RS256", "kid": "oct-key"}), good.clone()),
        "unknown_kid",
    ));
    // 5: hostile kids.
    for (what, k) in [
        ("path traversal", "../../dev/null".to_owned()),
        ("SQL", "' OR 1=1--".to_owned()),
        ("URL", "https://evil.example/keys".to_owned()),
        ("NUL bytes", "a\u{0}b".to_owned()),
        (
            "newline (log injection, row 57)",
            "kid\nlevel=error msg=forged".to_owned(),
        ),
    ] {
        c.push(case(
            "5",
            format!("kid: {what}"),
            iss.mint_with_header(json!({"alg": "RS256", "kid": k}), good.clone()),
            "unknown_kid",
        ));
    }
    c.push(case(
        "5",
        "kid of 10 KB",
        iss.mint_with_header(
            json!({"alg": "RS256", "kid": "k".repeat(10_000)}),
            good.clone(),
        ),
        "malformed",
    ));
    // 6: jku / x5u are ignored (and never fetched: see the dedicated test).
    c.push(case(
        "6",
        "jku and x5u to an attacker URL on a genuine token",
        iss.mint_with_header(json!({"alg": "RS256", "kid": kid, "jku": "https://evil.example/jwks", "x5u": "https://evil.example/cert"}), good.clone()),
        OK,
    ));
    // 7: embedded jwk / x5c are never trusted.
    let ajwk = attacker.jwk();
    c.push(case(
        "7",
        "embedded jwk of the attacker's key, attacker kid",
        attacker.sign_raw(
            &json!({"alg": "RS256", "kid": attacker.kid(), "jwk": ajwk}).to_string(),
            &good.to_string(),
        ),
        "unknown_kid",
    ));
    c.push(case(
        "7",
        "embedded jwk + x5c, our kid, signed by the attacker",
        attacker.sign_raw(
            &json!({"alg": "RS256", "kid": kid, "jwk": ajwk, "x5c": ["MIIB"]}).to_string(),
            &good.to_string(),
        ),
        "bad_signature",
    ));
    // 8-15: time claims.
    let timed = |iat: i64, nbf: i64, exp: i64| {
        iss.mint(with(
            with(with(good.clone(), "iat", json!(iat)), "nbf", json!(nbf)),
            "exp",
            json!(exp),
        ))
    };
    c.push(case(
        "8",
        "exp 301 s ago (beyond leeway)",
        timed(now - 3600, now - 3600, now - 301),
        "expired",
    ));
    c.push(case(
        "9",
        "exp 299 s ago (within leeway)",
        timed(now - 3600, now - 3600, now - 299),
        OK,
    ));
    c.push(case(
        "10",
        "nbf 301 s in the future",
        timed(now, now + 301, now + 3600),
        "not_yet_valid",
    ));
    c.push(case(
        "10",
        "nbf 299 s in the future (within leeway)",
        timed(now, now + 299, now + 3600),
        OK,
    ));
    c.push(case(
        "11",
        "nbf > exp",
        timed(now, now + 10, now + 5),
        "invalid_lifetime",
    ));
    c.push(case(
        "12",
        "missing exp",
        iss.mint(without(good.clone(), "exp")),
        "missing_claim",
    ));
    c.push(case(
        "12",
        "missing nbf",
        iss.mint(without(good.clone(), "nbf")),
        "missing_claim",
    ));
    for (what, v) in [
        ("string", json!((now + 3600).to_string())),
        ("null", Value::Null),
        ("negative", json!(-1)),
        ("1e300", json!(1e300)),
        ("bool", json!(true)),
        ("float", json!(now as f64 + 0.5)),
    ] {
        c.push(case(
            "13",
            format!("exp as {what}"),
            iss.mint(with(good.clone(), "exp", v.clone())),
            "invalid_claim",
        ));
        c.push(case(
            "13",
            format!("nbf as {what}"),
            iss.mint(with(good.clone(), "nbf", v)),
            "invalid_claim",
        ));
    }
    c.push(case(
        "14",
        "exp = 2^64-1",
        iss.mint(with(good.clone(), "exp", json!(u64::MAX))),
        "invalid_claim",
    ));
    c.push(case(
        "14",
        "exp 10 years ahead",
        timed(now, now, now + 10 * 365 * 86_400),
        "lifetime_too_long",
    ));
    c.push(case(
        "14",
        "exp 25 h after iat",
        timed(now, now, now + 25 * 3600),
        "lifetime_too_long",
    ));
    c.push(case(
        "15",
        "iat 301 s in the future",
        timed(now + 301, now, now + 3600),
        "not_yet_valid",
    ));
    c.push(case(
        "15",
        "missing iat",
        iss.mint(without(good.clone(), "iat")),
        "missing_claim",
    ));
    // 16-19, 24: audience.
    let aud = |v: Value| iss.mint(with(good.clone(), "aud", v));
    c.push(case(
        "16",
        "wrong aud",
        aud(json!("6f2d1a1e-0000-4a53-9d43-5d4b6c7e8f90")),
        "bad_audience",
    ));
    c.push(case(
        "16",
        "aud in other case",
        aud(json!(APP_ID_URI.to_uppercase())),
        "bad_audience",
    ));
    c.push(case("16", "aud as number", aud(json!(42)), "invalid_claim"));
    c.push(case(
        "16",
        "aud as object",
        aud(json!({"aud": CLIENT_ID})),
        "invalid_claim",
    ));
    c.push(case(
        "17",
        "App ID URI + one trailing slash (policy: accepted)",
        aud(json!(format!("{APP_ID_URI}/"))),
        OK,
    ));
    c.push(case(
        "17",
        "App ID URI + two trailing slashes",
        aud(json!(format!("{APP_ID_URI}//"))),
        "bad_audience",
    ));
    c.push(case(
        "18",
        "aud array with ours and others (any-of)",
        aud(json!(["https://graph.microsoft.com", CLIENT_ID])),
        OK,
    ));
    c.push(case(
        "18",
        "aud array without ours",
        aud(json!(["https://graph.microsoft.com"])),
        "bad_audience",
    ));
    c.push(case(
        "19",
        "missing aud",
        iss.mint(without(good.clone(), "aud")),
        "missing_claim",
    ));
    c.push(case(
        "19",
        "missing iss",
        iss.mint(without(good.clone(), "iss")),
        "missing_claim",
    ));
    c.push(case(
        "24",
        "aud = Microsoft Graph",
        aud(json!("00000003-0000-0000-c000-000000000000")),
        "bad_audience",
    ));
    // 20-23: issuer and tenant.
    let with_iss = |v: String| iss.mint(with(good.clone(), "iss", json!(v)));
    let auth = iss.authority();
    c.push(case(
        "20",
        "iss host suffixed (.evil)",
        with_iss(format!("{auth}.evil/{TENANT}/v2.0")),
        "bad_issuer",
    ));
    c.push(case(
        "20",
        "iss https://login.microsoftonline.com (not this authority)",
        with_iss(format!("https://login.microsoftonline.com/{TENANT}/v2.0")),
        "bad_issuer",
    ));
    c.push(case(
        "20",
        "v1 iss STS.windows.net (case)",
        iss.mint(with(
            iss.claims_v1(APP_ID_URI),
            "iss",
            json!(format!("https://STS.windows.net/{TENANT}/")),
        )),
        "bad_issuer",
    ));
    c.push(case(
        "21",
        "iss names another tenant, tid ours",
        with_iss(format!("{auth}/{OTHER_TENANT}/v2.0")),
        "bad_issuer",
    ));
    c.push(case(
        "21",
        "tid another tenant, iss ours",
        iss.mint(with(good.clone(), "tid", json!(OTHER_TENANT))),
        "bad_tenant",
    ));
    c.push(case(
        "22",
        "genuine token from another tenant's issuer",
        other.token(CLIENT_ID),
        "bad_tenant",
    ));
    c.push(case(
        "22",
        "another tenant's token claiming our tid (their key)",
        other.mint(with(
            good.clone(),
            "iss",
            json!(iss.issuer(TokenVersion::V2)),
        )),
        "bad_signature",
    ));
    c.push(case(
        "23",
        "v1 issuer with ver 2.0",
        with_iss(iss.issuer(TokenVersion::V1)),
        "bad_issuer",
    ));
    c.push(case(
        "23",
        "v2 issuer with ver 1.0",
        iss.mint(with(
            iss.claims_v1(APP_ID_URI),
            "iss",
            json!(iss.issuer(TokenVersion::V2)),
        )),
        "bad_issuer",
    ));
    // 25-28: caller.
    c.push(case(
        "25",
        "azp = another daemon app",
        iss.mint(with(
            good.clone(),
            "azp",
            json!("11111111-2222-3333-4444-555555555555"),
        )),
        "caller_not_allowed",
    ));
    c.push(case(
        "25",
        "v1 appid = another daemon app",
        iss.mint(with(
            iss.claims_v1(APP_ID_URI),
            "appid",
            json!("11111111-2222-3333-4444-555555555555"),
        )),
        "caller_not_allowed",
    ));
    c.push(case(
        "25",
        "v2 token carrying only appid (azp missing)",
        iss.mint(with(
            without(good.clone(), "azp"),
            "appid",
            json!(secure_export_aad::AZURE_MONITOR_APP_ID),
        )),
        "missing_claim",
    ));
    c.push(case(
        "26",
        "no roles",
        iss.mint(without(good.clone(), "roles")),
        "missing_role",
    ));
    c.push(case(
        "26",
        "wrong role",
        iss.mint(with(good.clone(), "roles", json!(["Reader"]))),
        "missing_role",
    ));
    c.push(case(
        "27",
        "roles as a string",
        iss.mint(with(
            good.clone(),
            "roles",
            json!("ActionGroupsSecureWebhook"),
        )),
        "invalid_claim",
    ));
    c.push(case(
        "27",
        "role with a suffix",
        iss.mint(with(
            good.clone(),
            "roles",
            json!(["ActionGroupsSecureWebhookX"]),
        )),
        "missing_role",
    ));
    c.push(case(
        "28",
        "user token (scp, no roles)",
        iss.mint(with(
            without(good.clone(), "roles"),
            "scp",
            json!("user_impersonation"),
        )),
        "user_token",
    ));
    c.push(case(
        "28",
        "idtyp user",
        iss.mint(with(good.clone(), "idtyp", json!("user"))),
        "user_token",
    ));
    // 29-35: encoding and structure.
    c.push(case(
        "29",
        "signature removed",
        format!("{vh}.{vp}."),
        "bad_signature",
    ));
    let mut short =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &vs).unwrap();
    short.pop();
    c.push(case(
        "30",
        "signature truncated by one byte",
        format!("{vh}.{vp}.{}", b64(&short)),
        "bad_signature",
    ));
    c.push(case(
        "30",
        "one bit flipped in the signature",
        format!("{vh}.{vp}.{}", bit_flip(&vs)),
        "bad_signature",
    ));
    c.push(case(
        "30",
        "payload changed after signing",
        format!(
            "{vh}.{}.{vs}",
            b64(with(
                good.clone(),
                "roles",
                json!(["ActionGroupsSecureWebhook", "Admin"])
            )
            .to_string())
        ),
        "bad_signature",
    ));
    c.push(case(
        "31",
        "signature with = padding",
        format!("{valid}=="),
        "malformed",
    ));
    c.push(case(
        "32",
        "non-zero unused bits in the last signature character",
        format!("{vh}.{vp}.{}", dirty_last_char(&vs)),
        "malformed",
    ));
    c.push(case(
        "33",
        "space inside the payload",
        format!("{vh}.{} {}.{vs}", &vp[..10], &vp[10..]),
        "malformed",
    ));
    c.push(case(
        "33",
        "newline inside the header",
        format!("{}\n{}.{vp}.{vs}", &vh[..5], &vh[5..]),
        "malformed",
    ));
    c.push(case(
        "33",
        "'+' in the signature",
        format!("{vh}.{vp}.+{}", &vs[1..]),
        "malformed",
    ));
    c.push(case(
        "33",
        "'/' in the payload",
        format!("{vh}./{}.{vs}", &vp[1..]),
        "malformed",
    ));
    c.push(case("34", "2 segments", format!("{vh}.{vp}"), "malformed"));
    c.push(case(
        "34",
        "4 segments",
        format!("{valid}.{vs}"),
        "malformed",
    ));
    c.push(case(
        "34",
        "5-segment JWE",
        format!(
            "{}.{}.{}.{}.{}",
            b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#),
            "a",
            "b",
            "c",
            "d"
        ),
        "malformed",
    ));
    c.push(case(
        "35",
        "JSON serialization",
        json!({"payload": vp, "signatures": [{"protected": vh, "signature": vs}]}).to_string(),
        "malformed",
    ));
    c.push(case(
        "35",
        "compact/JSON polyglot",
        format!("{{\"a\":\"{vh}.{vp}.{vs}\"}}"),
        "malformed",
    ));
    // 36-38: duplicate members.
    let raw_good = good.to_string();
    let raw_hdr = hdr.to_string();
    let raw_v1 = iss.claims_v1(APP_ID_URI).to_string();
    for claim in [
        "exp", "aud", "iss", "sub", "nbf", "appid", "azp", "roles", "tid",
    ] {
        // `appid` only exists in v1 tokens.
        let base = if claim == "appid" { &raw_v1 } else { &raw_good };
        let dup = format!("{},\"{claim}\":\"dup\"}}", &base[..base.len() - 1]);
        c.push(case(
            if matches!(claim, "appid" | "azp" | "roles" | "tid") {
                "38"
            } else {
                "36"
            },
            format!("duplicate {claim}"),
            iss.mint_raw(&raw_hdr, &dup),
            "malformed",
        ));
    }
    let tid_case = format!(
        "{},\"TID\":\"{OTHER_TENANT}\"}}",
        &raw_good[..raw_good.len() - 1]
    );
    c.push(case(
        "38",
        "case-variant duplicate TID",
        iss.mint_raw(&raw_hdr, &tid_case),
        "malformed",
    ));
    let dup_alg = format!("{},\"alg\":\"HS256\"}}", &raw_hdr[..raw_hdr.len() - 1]);
    c.push(case(
        "37",
        "duplicate alg in the header",
        iss.mint_raw(&dup_alg, &raw_good),
        "malformed",
    ));
    // 39-42: header parameters.
    let hdr_with =
        |name: &str, v: Value| iss.mint_with_header(with(hdr.clone(), name, v), good.clone());
    c.push(case(
        "39",
        "crit [foo]",
        hdr_with("crit", json!(["foo"])),
        "unsupported_header",
    ));
    c.push(case(
        "39",
        "crit [exp]",
        hdr_with("crit", json!(["exp"])),
        "unsupported_header",
    ));
    c.push(case(
        "40",
        "b64: false",
        hdr_with("b64", json!(false)),
        "unsupported_header",
    ));
    c.push(case(
        "40",
        "foo: 1 (non-string extra)",
        hdr_with("foo", json!(1)),
        "malformed",
    ));
    c.push(case(
        "41",
        "typ at+jwt",
        hdr_with("typ", json!("at+jwt")),
        "unsupported_header",
    ));
    c.push(case(
        "41",
        "typ JWE",
        hdr_with("typ", json!("JWE")),
        "unsupported_header",
    ));
    c.push(case(
        "41",
        "typ absent",
        iss.mint_with_header(json!({"alg": "RS256", "kid": kid}), good.clone()),
        OK,
    ));
    c.push(case(
        "42",
        "cty JWT (nested)",
        hdr_with("cty", json!("JWT")),
        "unsupported_header",
    ));
    c.push(case(
        "42",
        "enc / zip present",
        hdr_with("zip", json!("DEF")),
        "unsupported_header",
    ));
    // 43-46: size and parser DoS.
    c.push(case(
        "43",
        "4 MiB token",
        iss.mint(with(good.clone(), "pad", json!("x".repeat(4 << 20)))),
        "too_large",
    ));
    c.push(case(
        "43",
        "just over 16 KiB",
        iss.mint(with(good.clone(), "pad", json!("x".repeat(16 << 10)))),
        "too_large",
    ));
    c.push(case(
        "43",
        "about 12 KiB (under the cap)",
        iss.mint(with(good.clone(), "pad", json!("x".repeat(9 << 10)))),
        OK,
    ));
    c.push(case("44", "10,000 dots", ".".repeat(10_000), "malformed"));
    c.push(case("44", "20,000 dots", ".".repeat(20_000), "too_large"));
    c.push(case(
        "45",
        "claim nested 200 deep",
        iss.mint_raw(
            &raw_hdr,
            &format!(
                "{},\"deep\":{}}}",
                &raw_good[..raw_good.len() - 1],
                nested(200)
            ),
        ),
        "malformed",
    ));
    c.push(case(
        "46",
        "payload is a JSON array",
        iss.mint_raw(&raw_hdr, "[1,2]"),
        "malformed",
    ));
    c.push(case(
        "46",
        "payload is a JSON string",
        iss.mint_raw(&raw_hdr, "\"tid\""),
        "malformed",
    ));
    c.push(case(
        "46",
        "payload not UTF-8",
        format!("{vh}.{}.{vs}", b64([0xff, 0xfe, 0x7b])),
        "malformed",
    ));
    // 47-48: unusable JWKS entries are dropped at load.
    for k in ["weak-1024", "enc-key", "ec-key", "oct-key"] {
        c.push(case(
            "47-48",
            format!("kid of dropped JWKS entry {k}"),
            iss.mint_with_header(json!({"alg": "RS256", "kid": k}), good.clone()),
            "unknown_kid",
        ));
    }
    // 51-52: other algorithms.
    c.push(case(
        "51",
        "ES256",
        iss.mint_with_header(with(hdr.clone(), "alg", json!("ES256")), good.clone()),
        "bad_alg",
    ));
    c.push(case(
        "52",
        "PS256 with our RSA key",
        iss.mint_with_header(with(hdr.clone(), "alg", json!("PS256")), good.clone()),
        "bad_alg",
    ));
    c.push(case(
        "51",
        "alg as a number",
        iss.mint_with_header(with(hdr.clone(), "alg", json!(256)), good.clone()),
        "bad_alg",
    ));
    // 54: proof of possession.
    c.push(case(
        "54",
        "cnf (PoP)",
        iss.mint(with(good.clone(), "cnf", json!({"kid": "pop"}))),
        "pop_token",
    ));
    c
}

async fn catalogue_env() -> (Env, TestIssuer) {
    let (issuer, clock) = issuer_with_clock(TENANT).await;
    let n1024 = b64([0xc1u8; 128]);
    let n2048 = b64([0xc1u8; 256]);
    issuer.publish_raw_jwk(
        json!({"kty": "RSA", "kid": "weak-1024", "use": "sig", "n": n1024, "e": "AQAB"}),
    );
    issuer.publish_raw_jwk(
        json!({"kty": "RSA", "kid": "enc-key", "use": "enc", "n": n2048, "e": "AQAB"}),
    );
    issuer.publish_raw_jwk(
        json!({"kty": "EC", "kid": "ec-key", "crv": "P-256", "x": "AA", "y": "AA"}),
    );
    issuer.publish_raw_jwk(json!({"kty": "oct", "kid": "oct-key", "k": b64("secret")}));
    let verifier = builder(&issuer).build().unwrap();
    verifier.warm_up().await.unwrap();
    let other = TestIssuer::builder(OTHER_TENANT)
        .clock(clock.clone())
        .start()
        .await
        .unwrap();
    (
        Env {
            issuer,
            clock,
            verifier,
        },
        other,
    )
}

fn assert_no_leak(token: &str, err: &VerifyError) {
    let shown = format!("{err} {err:?}");
    for part in token.split('.').filter(|p| p.len() >= 16) {
        assert!(
            !shown.contains(part),
            "error text leaks a token segment: {shown}"
        );
    }
    assert!(
        !shown.contains('\n'),
        "error text contains a raw newline: {shown}"
    );
}

#[tokio::test]
async fn attack_catalogue() {
    let (env, other) = catalogue_env().await;
    let mut failures = Vec::new();
    let mut lines = Vec::new();
    let all = cases(&env, &other).await;
    for c in &all {
        let got = match env.verifier.verify(&c.token).await {
            Ok(_) => OK.to_owned(),
            Err(e) => {
                assert_no_leak(&c.token, &e);
                e.code().to_owned()
            }
        };
        let pass = got == c.expect;
        lines.push(format!(
            "| {} | {} | {} | {} |",
            c.row,
            c.what,
            c.expect,
            if pass { "pass" } else { "FAIL" }
        ));
        if !pass {
            failures.push(format!(
                "row {} ({}): expected {}, got {got}",
                c.row, c.what, c.expect
            ));
        }
    }
    println!(
        "| row | case | expected | outcome |\n|---|---|---|---|\n{}",
        lines.join("\n")
    );
    println!("{} cases, {} failures", all.len(), failures.len());
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn error_classes_map_to_statuses() {
    let (env, _other) = catalogue_env().await;
    let iss = &env.issuer;
    let good = iss.claims(CLIENT_ID);
    let forbidden = [
        iss.mint(with(
            good.clone(),
            "azp",
            json!("11111111-2222-3333-4444-555555555555"),
        )),
        iss.mint(without(good.clone(), "roles")),
        iss.mint(with(good.clone(), "scp", json!("x"))),
    ];
    for t in forbidden {
        let e = env.verifier.verify(&t).await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::Forbidden, "{}", e.code());
        assert_eq!(e.class().http_status(), 403);
    }
    let e = env
        .verifier
        .verify(&iss.mint(with(good, "aud", json!("x"))))
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Unauthenticated);
    assert_eq!(e.class().http_status(), 401);
}

/// Row 6: a `jku` is never fetched.
#[tokio::test]
async fn jku_is_never_fetched() {
    let env = env().await;
    env.verifier.warm_up().await.unwrap();
    let before = env.issuer.jwks_fetches();
    let jku = format!("{}/{TENANT}/discovery/v2.0/keys", env.issuer.authority());
    let header = json!({"alg": "RS256", "kid": "attacker", "jku": jku, "x5u": jku});
    let token = env
        .issuer
        .mint_with_header(header, env.issuer.claims(CLIENT_ID));
    // The unknown kid may trigger one (throttled) refresh of OUR jwks_uri, never a fetch of jku as
    // such: the JWKS fetch count rises by at most one and the token is rejected.
    assert_eq!(
        env.verifier.verify(&token).await.unwrap_err().code(),
        "unknown_kid"
    );
    let again = env.issuer.mint_with_header(
        json!({"alg": "RS256", "kid": "attacker2", "jku": jku}),
        env.issuer.claims(CLIENT_ID),
    );
    assert_eq!(
        env.verifier.verify(&again).await.unwrap_err().code(),
        "unknown_kid"
    );
    assert!(env.issuer.jwks_fetches() - before <= 1);
}

/// Row 53: header handling.
#[tokio::test]
async fn authorization_header_forms() {
    let env = env().await;
    let t = env.issuer.token(CLIENT_ID);
    let v = &env.verifier;
    assert!(v.verify_header(Some(&format!("Bearer {t}"))).await.is_ok());
    assert!(v.verify_header(Some(&format!("bearer {t}"))).await.is_ok());
    assert!(
        v.verify_header(Some(&format!(" BEARER {t} ")))
            .await
            .is_ok()
    );
    assert_eq!(
        v.verify_header(None).await.unwrap_err().code(),
        "missing_token"
    );
    assert_eq!(
        v.verify_header(Some(&format!("Bearer  {t}")))
            .await
            .unwrap_err()
            .code(),
        "bad_scheme"
    );
    assert_eq!(
        v.verify_header(Some(&format!("Bearer\t{t}")))
            .await
            .unwrap_err()
            .code(),
        "bad_scheme"
    );
    assert_eq!(
        v.verify_header(Some(&format!("Basic {t}")))
            .await
            .unwrap_err()
            .code(),
        "bad_scheme"
    );
    assert_eq!(
        v.verify_header(Some(&t)).await.unwrap_err().code(),
        "bad_scheme"
    );
    assert_eq!(
        v.verify_header(Some(&format!("Bearer {t}, Bearer {t}")))
            .await
            .unwrap_err()
            .code(),
        "malformed"
    );
}

/// Row 55: a captured token replays within its lifetime (bearer semantics, by design).
#[tokio::test]
async fn replay_within_lifetime_is_accepted() {
    let env = env().await;
    let t = env.issuer.token(CLIENT_ID);
    let first = env.verifier.verify(&t).await.unwrap();
    let second = env.verifier.verify(&t).await.unwrap();
    assert_eq!(first, second);
}

/// Row 56: the token never shows in Debug of the verifier or the caller.
#[tokio::test]
async fn debug_output_holds_no_token() {
    let env = env().await;
    let t = env.issuer.token(CLIENT_ID);
    let caller = env.verifier.verify(&t).await.unwrap();
    let shown = format!("{:?} {caller:?} {:?}", env.verifier, env.issuer);
    for part in t.split('.') {
        assert!(!shown.contains(part));
    }
}
