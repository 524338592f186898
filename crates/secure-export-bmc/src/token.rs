//! The cached AR-JWT and when to replace it.

use std::time::Duration;

use base64::Engine as _;
use secure_export_itsm::Secret;
use serde::Deserialize;
use tokio::time::Instant;

/// A token and the instant after which it is replaced before use.
#[derive(Debug, Clone)]
pub(crate) struct CachedToken {
    pub(crate) value: Secret,
    pub(crate) refresh_at: Instant,
}

impl CachedToken {
    /// A token obtained at `now`, valid for `lifetime`, replaced `margin` early (at most half
    /// the lifetime early).
    pub(crate) fn new(value: Secret, now: Instant, lifetime: Duration, margin: Duration) -> Self {
        let early = margin.min(lifetime / 2);
        Self {
            value,
            refresh_at: now + lifetime.saturating_sub(early),
        }
    }

    /// Whether the token may still be used at `now`.
    pub(crate) fn is_fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }
}

#[derive(Deserialize)]
struct Claims {
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
}

/// The lifetime an AR-JWT states about itself (`exp - iat`, or `exp - nbf` when there is no
/// `iat`, as in AR System's own tokens), when it is a readable JWT.
///
/// The token is not verified (it is the server's own token, used only against that server);
/// the difference of two server timestamps avoids depending on clock skew.
pub(crate) fn stated_lifetime(token: &str) -> Option<Duration> {
    let payload = token.split('.').nth(1)?;
    if payload.len() > 8192 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    let secs = claims.exp?.checked_sub(claims.iat.or(claims.nbf)?)?;
    u64::try_from(secs)
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b64(r#"{"alg":"HS256"}"#), b64(claims))
    }

    #[test]
    fn reads_exp_minus_iat() {
        let t = jwt(r#"{"exp":1700003600,"iat":1700000000,"sub":"u"}"#);
        assert_eq!(stated_lifetime(&t), Some(Duration::from_secs(3600)));
        assert_eq!(stated_lifetime(&jwt(r#"{"exp":10,"iat":20}"#)), None);
        assert_eq!(stated_lifetime(&jwt(r#"{"exp":10}"#)), None);
        let ar = jwt(r#"{"_ardbn":"Demo","exp":1795667909,"nbf":1795664249,"iss":"x"}"#);
        assert_eq!(stated_lifetime(&ar), Some(Duration::from_secs(3660)));
        assert_eq!(stated_lifetime("opaque-token"), None);
        assert_eq!(stated_lifetime("a.!!!.c"), None);
    }

    #[test]
    fn refresh_happens_early_but_never_more_than_half_the_lifetime() {
        let now = Instant::now();
        let hour = Duration::from_secs(3600);
        let t = CachedToken::new(Secret::new("t"), now, hour, Duration::from_secs(300));
        assert_eq!(t.refresh_at, now + Duration::from_secs(3300));
        assert!(t.is_fresh(now + Duration::from_secs(3299)));
        assert!(!t.is_fresh(now + Duration::from_secs(3300)));
        let short = CachedToken::new(Secret::new("t"), now, Duration::from_secs(60), hour);
        assert_eq!(short.refresh_at, now + Duration::from_secs(30));
        let zero = CachedToken::new(Secret::new("t"), now, Duration::ZERO, hour);
        assert!(!zero.is_fresh(now));
    }
}
