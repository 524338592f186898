//! JWKS parsing and filtering: only RSA signing keys of 2048 to 8192 bits survive.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

/// Most keys kept from one JWKS document.
const MAX_KEYS: usize = 64;

/// A usable signing key.
#[derive(Clone)]
pub(crate) struct SigningKey {
    pub(crate) key: DecodingKey,
    /// The JWK `issuer` member (Entra extension), `{tenantid}` still a placeholder.
    pub(crate) issuer: Option<String>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// The usable keys of one JWKS document, by `kid`.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeySet {
    pub(crate) keys: HashMap<String, SigningKey>,
    /// Entries dropped by the filter, with the reason (for logs).
    pub(crate) dropped: Vec<String>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
    issuer: Option<String>,
}

impl KeySet {
    /// Parses a JWKS document and keeps only acceptable RSA signing keys.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        let raw: RawSet =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid JWKS JSON: {e}"))?;
        let mut set = KeySet::default();
        let mut ambiguous = std::collections::HashSet::new();
        for (i, value) in raw.keys.into_iter().enumerate() {
            match accept(value) {
                Ok((kid, key)) => {
                    if set.keys.len() >= MAX_KEYS {
                        set.dropped
                            .push(format!("key #{i}: more than {MAX_KEYS} keys"));
                    } else if ambiguous.contains(&kid) || set.keys.contains_key(&kid) {
                        // An ambiguous kid could pick either key: keep neither.
                        set.keys.remove(&kid);
                        ambiguous.insert(kid);
                        set.dropped.push(format!("key #{i}: duplicate kid"));
                    } else {
                        set.keys.insert(kid, key);
                    }
                }
                Err(reason) => set.dropped.push(format!("key #{i}: {reason}")),
            }
        }
        Ok(set)
    }
}

fn accept(value: serde_json::Value) -> Result<(String, SigningKey), String> {
    let jwk: RawJwk = serde_json::from_value(value).map_err(|e| format!("not a JWK: {e}"))?;
    if jwk.kty.as_deref() != Some("RSA") {
        return Err("kty is not RSA".to_owned());
    }
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err("use is not sig".to_owned());
    }
    if jwk.alg.as_deref().is_some_and(|a| a != "RS256") {
        return Err("alg is not RS256".to_owned());
    }
    let kid = jwk
        .kid
        .filter(|k| !k.is_empty() && k.len() <= crate::jose::MAX_KID_LEN);
    let kid = kid.ok_or("kid missing or too long")?;
    let n = decode_uint(jwk.n.as_deref(), "n")?;
    let e = decode_uint(jwk.e.as_deref(), "e")?;
    let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
    if !(2048..=8192).contains(&bits) {
        return Err(format!("modulus is {bits} bits, outside 2048..=8192"));
    }
    if e.len() > 4 || e.last().is_none_or(|b| b & 1 == 0) || e == [1] {
        return Err("unsupported public exponent".to_owned());
    }
    let key = DecodingKey::from_rsa_raw_components(&n, &e);
    Ok((
        kid,
        SigningKey {
            key,
            issuer: jwk.issuer,
        },
    ))
}

/// Decodes a base64url unsigned integer, stripping leading zero bytes.
fn decode_uint(v: Option<&str>, name: &str) -> Result<Vec<u8>, String> {
    let v = v.ok_or_else(|| format!("{name} missing"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(v.trim_end_matches('='))
        .map_err(|_| format!("{name} is not base64url"))?;
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let trimmed = bytes.get(start..).unwrap_or_default().to_vec();
    if trimmed.is_empty() {
        return Err(format!("{name} is zero"));
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n_of(bits: usize) -> String {
        let mut n = vec![0xffu8; bits / 8];
        if let Some(first) = n.first_mut() {
            *first = 0xc1;
        }
        URL_SAFE_NO_PAD.encode(n)
    }

    #[test]
    fn filters_unusable_keys() {
        let doc = serde_json::json!({"keys": [
            {"kty":"RSA","kid":"good","use":"sig","n":n_of(2048),"e":"AQAB","issuer":"https://x/{tenantid}/v2.0"},
            {"kty":"RSA","kid":"small","n":n_of(1024),"e":"AQAB"},
            {"kty":"RSA","kid":"huge","n":n_of(16384),"e":"AQAB"},
            {"kty":"RSA","kid":"enc","use":"enc","n":n_of(2048),"e":"AQAB"},
            {"kty":"RSA","kid":"ps","alg":"PS256","n":n_of(2048),"e":"AQAB"},
            {"kty":"oct","kid":"hmac","k":"c2VjcmV0"},
            {"kty":"EC","kid":"ec","crv":"P-256","x":"AA","y":"AA"},
            {"kty":"RSA","kid":"even-e","n":n_of(2048),"e":"AQAA"},
            {"kty":"RSA","n":n_of(2048),"e":"AQAB"},
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(set.keys.keys().collect::<Vec<_>>(), vec!["good"]);
        assert_eq!(set.dropped.len(), 8);
        assert_eq!(
            set.keys["good"].issuer.as_deref(),
            Some("https://x/{tenantid}/v2.0")
        );
    }

    #[test]
    fn duplicate_kids_are_dropped() {
        let doc = serde_json::json!({"keys": [
            {"kty":"RSA","kid":"a","n":n_of(2048),"e":"AQAB"},
            {"kty":"RSA","kid":"a","n":n_of(3072),"e":"AQAB"},
        ]});
        assert!(
            KeySet::parse(doc.to_string().as_bytes())
                .unwrap()
                .keys
                .is_empty()
        );
    }

    #[test]
    fn rejects_non_jwks() {
        assert!(KeySet::parse(b"[]").is_err());
        assert!(KeySet::parse(b"{\"keys\":1}").is_err());
    }
}
