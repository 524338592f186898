//! [`peek_tenant_id`]: an unverified routing hint.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::jose;

/// Reads the `tid` claim WITHOUT verifying anything, from a bare token or a whole
/// `Authorization: Bearer ...` value. Use it only as a routing hint (e.g. to pick the verifier of
/// a tenant); never trust it. Returns `None` for anything that does not parse.
#[must_use]
pub fn peek_tenant_id(token_or_header: &str) -> Option<String> {
    let trimmed = token_or_header.trim();
    let token = match trimmed.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest,
        Some(_) => return None,
        None => trimmed,
    };
    let (_, payload, _) = jose::split(token).ok()?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims = jose::parse_object(&bytes, "payload").ok()?;
    match claims.get("tid") {
        Some(serde_json::Value::String(t)) if crate::policy::is_guid(t) => {
            Some(t.to_ascii_lowercase())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peeks_tid() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"tid":"72F988BF-86f1-41af-91ab-2d7cd011db47"}"#);
        let token = format!("e30.{payload}.c2ln");
        let want = Some("72f988bf-86f1-41af-91ab-2d7cd011db47".to_owned());
        assert_eq!(peek_tenant_id(&token), want);
        assert_eq!(peek_tenant_id(&format!("Bearer {token}")), want);
        assert_eq!(peek_tenant_id("Basic abc"), None);
        assert_eq!(peek_tenant_id("garbage"), None);
        let bad = URL_SAFE_NO_PAD.encode(r#"{"tid":5}"#);
        assert_eq!(peek_tenant_id(&format!("e30.{bad}.c2ln")), None);
    }
}
