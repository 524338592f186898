//! AR-JWT tokens: issued at login, checked on every call, expiring.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Issued AR-JWT tokens (their values never appear in `Debug`).
#[derive(Default)]
pub(crate) struct Tokens {
    issued: HashMap<String, (String, Instant)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("issued", &self.issued.len())
            .finish()
    }
}

impl Tokens {
    pub(crate) fn issue(&mut self, user: &str, lifetime: Duration) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = chrono::Utc::now().timestamp();
        let header = b64.encode(br#"{"alg":"HS256"}"#);
        let claims = serde_json::json!({
            "tclc": 4, "nbf": now - 60, "iss": "emulator",
            "exp": now + i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2),
            "_ardbn": user, "jti": uuid::Uuid::new_v4().simple().to_string(),
        });
        let payload = b64.encode(claims.to_string());
        let sig = b64.encode(uuid::Uuid::new_v4().as_bytes());
        let token = format!("{header}.{payload}.{sig}");
        self.issued
            .insert(token.clone(), (user.to_owned(), Instant::now() + lifetime));
        token
    }

    pub(crate) fn user_for(&self, token: &str) -> Option<&str> {
        self.issued
            .get(token)
            .filter(|(_, exp)| Instant::now() < *exp)
            .map(|(u, _)| u.as_str())
    }

    pub(crate) fn revoke(&mut self, token: &str) -> bool {
        self.issued.remove(token).is_some()
    }

    pub(crate) fn expire_all(&mut self) {
        let now = Instant::now();
        for (_, exp) in self.issued.values_mut() {
            *exp = now;
        }
    }
}
