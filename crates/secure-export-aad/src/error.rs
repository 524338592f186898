//! Error types: [`VerifyError`] (per request), [`ErrorClass`] and [`BuildError`] (configuration).

use std::fmt;

/// How the receiver should answer a failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The token is missing, malformed, forged, expired or not meant for us: answer 401.
    Unauthenticated,
    /// The token is genuine but the caller is not allowed (wrong app, missing role, user token): answer 403.
    Forbidden,
    /// No signing keys could be loaded (discovery/JWKS down): answer 503 so Azure Monitor retries.
    Unavailable,
}

impl ErrorClass {
    /// The HTTP status code that matches this class (401, 403 or 503).
    #[must_use]
    pub fn http_status(self) -> u16 {
        match self {
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::Unavailable => 503,
        }
    }
}

/// Why a token was rejected.
///
/// Each variant has a stable short [`code`](Self::code) for logs and metrics and a
/// [`class`](Self::class) that tells the receiver which status to answer. The `Display` text names
/// the header or claim at fault; it never contains the token, and values quoted from the token are
/// truncated and escaped. Send only a generic body to the caller; log the detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `Authorization` header.
    #[error("missing Authorization header")]
    MissingToken,
    /// The `Authorization` header is not `Bearer <token>` with exactly one space.
    #[error("Authorization header is not `Bearer <token>`: {0}")]
    BadScheme(&'static str),
    /// The token exceeds the size cap.
    #[error("token is {len} bytes, more than the {max} byte limit")]
    TooLarge {
        /// Length of the token in bytes.
        len: usize,
        /// The configured cap.
        max: usize,
    },
    /// Not a compact JWS: wrong segment count, bad base64url, invalid JSON, duplicate member,
    /// or a wrongly typed header member.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// Header `alg` is not `RS256`.
    #[error("header `alg` is {0}, only RS256 is accepted")]
    BadAlg(String),
    /// A header parameter we refuse to process (`crit`, `enc`, `zip`, `cty`, or a `typ` other than `JWT`).
    #[error("unsupported header parameter: {0}")]
    UnsupportedHeader(String),
    /// The `kid` is not in the key set, even after the (rate-limited) refresh.
    #[error("unknown signing key id {0}")]
    UnknownKid(String),
    /// The RS256 signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// A required claim is absent.
    #[error("missing required claim `{0}`")]
    MissingClaim(&'static str),
    /// A claim has the wrong type or an invalid value.
    #[error("invalid claim `{claim}`: {reason}")]
    InvalidClaim {
        /// The claim name.
        claim: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired at {exp} (now {now}, leeway {leeway_secs} s)")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The verifier's clock.
        now: i64,
        /// The leeway applied.
        leeway_secs: u64,
    },
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("token not valid yet: `{claim}` is {value}, now is {now}")]
    NotYetValid {
        /// `nbf` or `iat`.
        claim: &'static str,
        /// The claim value.
        value: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// `nbf` is after `exp`.
    #[error("`nbf` ({nbf}) is after `exp` ({exp})")]
    InvalidLifetime {
        /// The token's `nbf`.
        nbf: i64,
        /// The token's `exp`.
        exp: i64,
    },
    /// `exp - iat` exceeds the configured maximum lifetime.
    #[error("token lifetime {lifetime_secs} s exceeds the {max_secs} s maximum")]
    LifetimeTooLong {
        /// `exp - iat`.
        lifetime_secs: i64,
        /// The configured maximum.
        max_secs: u64,
    },
    /// `iss` does not match the issuer of the tenant's metadata, or the signing key's issuer.
    #[error("issuer {0} is not the expected issuer")]
    BadIssuer(String),
    /// `tid` is not an allowed tenant, or does not match the issuer.
    #[error("tenant {0} is not allowed")]
    BadTenant(String),
    /// The token version (`ver`) is not accepted.
    #[error("token version {0} is not accepted")]
    BadVersion(String),
    /// No `aud` value matches the configured audiences.
    #[error("audience {0} is not accepted")]
    BadAudience(String),
    /// The token is a user (delegated) token: it carries `scp` or `idtyp` is not `app`.
    #[error("user (delegated) token: {0}")]
    UserToken(&'static str),
    /// The token is a proof-of-possession token (`cnf`), which this verifier cannot check.
    #[error("proof-of-possession token (`cnf` claim) is not accepted as a bearer token")]
    PopToken,
    /// The calling application (`appid`/`azp`) is not allowed.
    #[error("caller application {0} is not allowed")]
    CallerNotAllowed(String),
    /// `roles` does not contain the required role.
    #[error("token lacks the required role {0}")]
    MissingRole(String),
    /// No signing keys are available for this tenant and version (metadata never loaded), or
    /// the `kid` is unknown and the refresh that could have found it failed.
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

impl VerifyError {
    /// A stable short code for logs, metrics and the `verify-token` example.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::BadScheme(_) => "bad_scheme",
            Self::TooLarge { .. } => "too_large",
            Self::Malformed(_) => "malformed",
            Self::BadAlg(_) => "bad_alg",
            Self::UnsupportedHeader(_) => "unsupported_header",
            Self::UnknownKid(_) => "unknown_kid",
            Self::BadSignature => "bad_signature",
            Self::MissingClaim(_) => "missing_claim",
            Self::InvalidClaim { .. } => "invalid_claim",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::InvalidLifetime { .. } => "invalid_lifetime",
            Self::LifetimeTooLong { .. } => "lifetime_too_long",
            Self::BadIssuer(_) => "bad_issuer",
            Self::BadTenant(_) => "bad_tenant",
            Self::BadVersion(_) => "bad_version",
            Self::BadAudience(_) => "bad_audience",
            Self::UserToken(_) => "user_token",
            Self::PopToken => "pop_token",
            Self::CallerNotAllowed(_) => "caller_not_allowed",
            Self::MissingRole(_) => "missing_role",
            Self::KeysUnavailable(_) => "keys_unavailable",
        }
    }

    /// Which HTTP answer fits: 401, 403 or 503.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::CallerNotAllowed(_) | Self::MissingRole(_) | Self::UserToken(_) => {
                ErrorClass::Forbidden
            }
            Self::KeysUnavailable(_) => ErrorClass::Unavailable,
            _ => ErrorClass::Unauthenticated,
        }
    }
}

/// Quotes a value taken from a token for an error message: at most 64 characters, escaped.
pub(crate) fn quote(value: &str) -> String {
    const MAX: usize = 64;
    let mut out = String::with_capacity(value.len().min(MAX) + 8);
    out.push('"');
    for (i, c) in value.chars().enumerate() {
        if i == MAX {
            out.push_str("...");
            break;
        }
        out.extend(c.escape_default());
    }
    out.push('"');
    out
}

/// Why a [`TokenVerifier`](crate::TokenVerifier) could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No tenant id given (and `insecure_any_tenant` not set).
    #[error("at least one tenant id is required")]
    NoTenant,
    /// A tenant id is not a GUID.
    #[error("tenant id {0} is not a GUID")]
    BadTenantId(String),
    /// No audience given.
    #[error("at least one audience (client id or App ID URI) is required")]
    NoAudience,
    /// An audience is empty or contains whitespace.
    #[error("audience {0} is empty or contains whitespace")]
    BadAudience(String),
    /// No token version accepted.
    #[error("at least one token version must be accepted")]
    NoVersion,
    /// No caller app id allowed.
    #[error("at least one caller app id is required")]
    NoCallerAppId,
    /// The leeway exceeds 300 s.
    #[error("leeway {0} s exceeds the 300 s maximum")]
    LeewayTooLarge(u64),
    /// The maximum lifetime is zero.
    #[error("maximum token lifetime must be positive")]
    BadMaxLifetime,
    /// The authority URL is not usable.
    #[error("authority {url}: {reason}")]
    BadAuthority {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A timing parameter is out of range.
    #[error("{0}")]
    BadTiming(&'static str),
    /// The offline JWKS could not be parsed or holds no usable key.
    #[error("offline JWKS: {0}")]
    BadJwks(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::Unavailable => "unavailable",
        })
    }
}
