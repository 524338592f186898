//! Verifies the Entra ID (Azure AD) bearer token that Azure Monitor's Secure Webhook action sends.
//!
//! Azure Monitor calls as the first-party app "AzNS AAD Webhook" with an app-only token for your
//! own Entra application. [`TokenVerifier`] checks it the strict way (see `security.md` in the
//! design notes): RS256 only, keys from the tenant's OIDC metadata (cached, refreshed with a
//! throttle, stale keys served through outages), `exp`/`nbf`/`iat` with leeway and a lifetime
//! bound, exact issuer per tenant and version, tenant allow-list, audience, caller app id, the
//! `ActionGroupsSecureWebhook` role, and no user (`scp`) or proof-of-possession (`cnf`) tokens.
//!
//! Azure Monitor reuses one token for about an hour, so successful verifications are cached by a
//! SHA-256 digest of the token (never the token itself): a hit skips the RS256 check and claim
//! parsing but still re-checks `exp`/`nbf`/`iat` with the clock and that the signing key is still
//! in the very key set that verified it; failures are never cached. The cache is bounded (10,000
//! tokens, 5 minutes each by default) and can be tuned or switched off with
//! [`TokenVerifierBuilder::token_cache_capacity`] and [`TokenVerifierBuilder::token_cache_max_age`].
//!
//! Key fetches run as spawned Tokio tasks, detached from the request that needed them (a caller
//! that hangs up cannot cancel one), and are shared by concurrent callers; use the verifier
//! inside a Tokio runtime (outside one, a needed fetch fails with `keys_unavailable`).
//!
//! Every failure is a [`VerifyError`] with a stable [`code`](VerifyError::code) and an
//! [`ErrorClass`] that maps to 401, 403 or 503. The token never appears in errors, logs or `Debug`.
//!
//! ```no_run
//! use secure_export_aad::{ErrorClass, TokenVerifier};
//! # async fn handle(authorization: Option<&str>) -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = TokenVerifier::builder(
//!     ["72f988bf-86f1-41af-91ab-2d7cd011db47"],          // your tenant
//!     ["6f2d1a1e-0c5b-4a53-9d43-5d4b6c7e8f90", "api://itsm-receiver"], // client id, App ID URI
//! )
//! .build()?;
//! verifier.warm_up().await.ok(); // load keys now; retried on first use if this fails
//! match verifier.verify_header(authorization).await {
//!     Ok(caller) => println!("alert from app {} in tenant {}", caller.app_id, caller.tenant_id),
//!     // 503 tells Azure Monitor to retry later: no signing keys could be loaded yet.
//!     Err(e) if e.class() == ErrorClass::Unavailable => eprintln!("keys unavailable: {e}"),
//!     // 401 or 403 with a generic body; the detail (never the token) goes to the log.
//!     Err(e) => eprintln!("rejected ({}, {}): {e}", e.code(), e.class().http_status()),
//! }
//! # Ok(()) }
//! ```
//!
//! With the `test-util` feature, [`test_util::TestIssuer`] serves discovery and JWKS on loopback
//! and mints tokens, for tests and demos.

mod claims;
mod clock;
mod error;
mod jose;
mod jwks;
mod key_source;
mod peek;
mod policy;
mod token_cache;
mod verifier;

#[cfg(feature = "test-util")]
pub mod test_util;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BuildError, ErrorClass, VerifyError};
pub use jose::MAX_TOKEN_LEN;
pub use peek::peek_tenant_id;
pub use policy::{
    AZURE_MONITOR_APP_ID, AZURE_MONITOR_APP_ID_US_GOV, Cloud, DEFAULT_ROLE, TokenVersion,
    TokenVersions,
};
pub use verifier::{MAX_LEEWAY, TokenVerifier, TokenVerifierBuilder, VerifiedCaller};
