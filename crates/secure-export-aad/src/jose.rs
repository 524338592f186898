//! Compact JWS parsing: size cap, segments, strict base64url, duplicate-checked JSON objects and
//! the header rules. Nothing here trusts the token; it only takes it apart.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::error::{VerifyError, quote};

/// Largest token accepted, in bytes (16 KiB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Largest `kid` accepted, in characters.
pub(crate) const MAX_KID_LEN: usize = 256;

/// A JSON object whose top-level members are kept in order, with duplicates rejected while parsing.
#[derive(Debug)]
pub(crate) struct StrictObject(pub(crate) Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjVisitor;
        impl<'de> Visitor<'de> for ObjVisitor {
            type Value = StrictObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictObject, A::Error> {
                let mut members: Vec<(String, Value)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(key) = map.next_key::<String>()? {
                    // Exact duplicates and case-variant duplicates (`tid` and `TID`) are both refused.
                    if members.iter().any(|(k, _)| k.eq_ignore_ascii_case(&key)) {
                        return Err(serde::de::Error::custom(format_args!(
                            "duplicate member {}",
                            quote(&key)
                        )));
                    }
                    let value: Value = map.next_value()?;
                    members.push((key, value));
                }
                Ok(StrictObject(members))
            }
        }
        deserializer.deserialize_map(ObjVisitor)
    }
}

impl StrictObject {
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// The parts of a compact JWS after structural checks.
#[derive(Debug)]
pub(crate) struct Parsed<'t> {
    /// `header.payload`, the signed bytes.
    pub(crate) signing_input: &'t str,
    /// The signature segment, still base64url.
    pub(crate) signature_b64: &'t str,
    /// Header `kid`.
    pub(crate) kid: String,
    /// The payload object.
    pub(crate) claims: StrictObject,
}

fn is_b64url(segment: &str) -> bool {
    segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn decode_segment(segment: &str, what: &str) -> Result<Vec<u8>, VerifyError> {
    if !is_b64url(segment) {
        return Err(VerifyError::Malformed(format!(
            "{what} segment contains characters outside base64url (padding, whitespace, '+' or '/')"
        )));
    }
    URL_SAFE_NO_PAD.decode(segment).map_err(|e| {
        VerifyError::Malformed(format!("{what} segment is not canonical base64url: {e}"))
    })
}

pub(crate) fn parse_object(bytes: &[u8], what: &str) -> Result<StrictObject, VerifyError> {
    serde_json::from_slice::<StrictObject>(bytes).map_err(|e| {
        // serde_json's own messages can quote input (e.g. a whole string payload): never pass
        // them on; keep only our duplicate-member message, which quotes a truncated key.
        let text = e.to_string();
        let reason = match e.classify() {
            serde_json::error::Category::Data if text.starts_with("duplicate member") => text
                .split(" at line ")
                .next()
                .unwrap_or("duplicate member")
                .to_owned(),
            serde_json::error::Category::Data => "not a JSON object".to_owned(),
            serde_json::error::Category::Eof => "truncated JSON".to_owned(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
                "invalid JSON (or nested too deeply)".to_owned()
            }
        };
        VerifyError::Malformed(format!(
            "{what}: {reason} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// Splits a compact token into exactly three segments, enforcing the size cap first.
pub(crate) fn split(token: &str) -> Result<(&str, &str, &str), VerifyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(VerifyError::TooLarge {
            len: token.len(),
            max: MAX_TOKEN_LEN,
        });
    }
    let mut parts = token.splitn(4, '.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        let dots = token.bytes().filter(|&b| b == b'.').count();
        return Err(VerifyError::Malformed(format!(
            "expected 3 dot-separated segments (compact JWS), found {}",
            dots + 1
        )));
    };
    if h.is_empty() || p.is_empty() {
        return Err(VerifyError::Malformed(
            "empty header or payload segment".to_owned(),
        ));
    }
    Ok((h, p, s))
}

/// Decodes and checks the header, then decodes the payload.
pub(crate) fn parse(token: &str) -> Result<Parsed<'_>, VerifyError> {
    let (h, p, s) = split(token)?;
    let header = parse_object(&decode_segment(h, "header")?, "header")?;
    let kid = check_header(&header)?;
    let claims = parse_object(&decode_segment(p, "payload")?, "payload")?;
    if s.is_empty() {
        return Err(VerifyError::BadSignature);
    }
    // Checked here so that a badly encoded signature is "malformed", not a crypto failure.
    decode_segment(s, "signature")?;
    let signing_input = token.get(..h.len() + 1 + p.len()).unwrap_or_default();
    Ok(Parsed {
        signing_input,
        signature_b64: s,
        kid,
        claims,
    })
}

/// Applies the header rules; returns the `kid`.
fn check_header(header: &StrictObject) -> Result<String, VerifyError> {
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "RS256" => {}
        Some(Value::String(alg)) => return Err(VerifyError::BadAlg(quote(alg))),
        Some(other) => return Err(VerifyError::BadAlg(format!("a JSON {}", json_type(other)))),
        None => return Err(VerifyError::BadAlg("absent".to_owned())),
    }
    let mut kid = None;
    for (name, value) in &header.0 {
        match name.as_str() {
            "alg" => {}
            "kid" => match value {
                Value::String(k) if !k.is_empty() && k.chars().count() <= MAX_KID_LEN => {
                    kid = Some(k.clone());
                }
                Value::String(_) => {
                    return Err(VerifyError::Malformed(format!(
                        "header `kid` must be 1 to {MAX_KID_LEN} characters"
                    )));
                }
                other => {
                    return Err(VerifyError::Malformed(format!(
                        "header `kid` must be a string, found {}",
                        json_type(other)
                    )));
                }
            },
            "typ" => match value {
                Value::String(t) if t.eq_ignore_ascii_case("JWT") => {}
                Value::String(t) => {
                    return Err(VerifyError::UnsupportedHeader(format!(
                        "`typ` {}",
                        quote(t)
                    )));
                }
                other => {
                    return Err(VerifyError::Malformed(format!(
                        "header `typ` must be a string, found {}",
                        json_type(other)
                    )));
                }
            },
            "crit" | "enc" | "zip" | "cty" | "b64" | "p2c" | "p2s" | "epk" => {
                return Err(VerifyError::UnsupportedHeader(format!("`{name}`")));
            }
            // Key-location hints are never used to pick or fetch a key; only their shape is checked.
            "jwk" => expect_type(name, value, value.is_object(), "an object")?,
            "x5c" => expect_type(
                name,
                value,
                value
                    .as_array()
                    .is_some_and(|a| a.iter().all(Value::is_string)),
                "an array of strings",
            )?,
            _ => expect_type(name, value, value.is_string(), "a string")?,
        }
    }
    kid.ok_or_else(|| VerifyError::Malformed("header `kid` is missing".to_owned()))
}

fn expect_type(name: &str, value: &Value, ok: bool, expected: &str) -> Result<(), VerifyError> {
    if ok {
        Ok(())
    } else {
        Err(VerifyError::Malformed(format!(
            "header parameter {} must be {expected}, found {}",
            quote(name),
            json_type(value)
        )))
    }
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(payload), b64("sig"))
    }

    #[test]
    fn accepts_a_plain_header() {
        let t = token(
            r#"{"alg":"RS256","typ":"JWT","kid":"k1","x5t":"k1"}"#,
            r#"{"a":1}"#,
        );
        let p = parse(&t).unwrap();
        assert_eq!(p.kid, "k1");
        assert_eq!(p.claims.get("a"), Some(&Value::from(1)));
    }

    #[test]
    fn rejects_duplicates_and_case_variants() {
        let t = token(r#"{"alg":"RS256","alg":"RS256","kid":"k"}"#, "{}");
        assert_eq!(parse(&t).unwrap_err().code(), "malformed");
        let t = token(r#"{"alg":"RS256","kid":"k"}"#, r#"{"tid":"a","TID":"b"}"#);
        assert_eq!(parse(&t).unwrap_err().code(), "malformed");
    }

    #[test]
    fn rejects_bad_structure() {
        assert_eq!(split("a.b").unwrap_err().code(), "malformed");
        assert_eq!(split("a.b.c.d").unwrap_err().code(), "malformed");
        assert_eq!(split("a.b.c.d.e").unwrap_err().code(), "malformed");
        let big = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(split(&big).unwrap_err().code(), "too_large");
    }

    #[test]
    fn json_errors_do_not_echo_input() {
        let secret_like = "eyJzZWNyZXQtcGF5bG9hZC1jb250ZW50In0";
        for payload in [
            format!("\"{secret_like}\""),
            format!("[\"{secret_like}\"]"),
            format!("{{\"{secret_like}\""),
        ] {
            let e = parse_object(payload.as_bytes(), "payload").unwrap_err();
            assert!(!e.to_string().contains(secret_like), "{e}");
            assert_eq!(e.code(), "malformed");
        }
        let e = parse_object(br#"{"tid":1,"tid":2}"#, "payload").unwrap_err();
        assert!(e.to_string().contains("duplicate member \"tid\""), "{e}");
    }

    #[test]
    fn header_rules() {
        let cases = [
            (r#"{"alg":"none","kid":"k"}"#, "bad_alg"),
            (r#"{"alg":"HS256","kid":"k"}"#, "bad_alg"),
            (r#"{"kid":"k"}"#, "bad_alg"),
            (r#"{"alg":"RS256"}"#, "malformed"),
            (
                r#"{"alg":"RS256","kid":"k","crit":["exp"]}"#,
                "unsupported_header",
            ),
            (
                r#"{"alg":"RS256","kid":"k","cty":"JWT"}"#,
                "unsupported_header",
            ),
            (
                r#"{"alg":"RS256","kid":"k","typ":"at+jwt"}"#,
                "unsupported_header",
            ),
            (r#"{"alg":"RS256","kid":"k","foo":1}"#, "malformed"),
            (r#"["alg"]"#, "malformed"),
        ];
        for (header, code) in cases {
            assert_eq!(
                parse(&token(header, "{}")).unwrap_err().code(),
                code,
                "{header}"
            );
        }
    }
}
