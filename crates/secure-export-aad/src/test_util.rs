//! A local Entra ID stand-in for tests and demos (feature `test-util`).
//!
//! [`TestIssuer`] generates an RSA-2048 key, serves OIDC discovery and JWKS for one tenant (plus
//! any extra tenants added with [`TestIssuerBuilder::extra_tenant`] or [`TestIssuer::add_tenant`],
//! sharing the keys as Microsoft's tenants do) over HTTP on `127.0.0.1` (Microsoft's URL layout,
//! v1 and v2), and mints tokens with any header and claims, including deliberately broken ones.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use secure_export_aad::test_util::TestIssuer;
//! let issuer = TestIssuer::start("72f988bf-86f1-41af-91ab-2d7cd011db47").await?;
//! let verifier = issuer.verifier_builder(["api-client-id"]).build()?;
//! let caller = verifier.verify(&issuer.token("api-client-id")).await?;
//! assert_eq!(caller.app_id, secure_export_aad::AZURE_MONITOR_APP_ID);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::clock::{Clock, SystemClock};
use crate::policy::{AZURE_MONITOR_APP_ID, DEFAULT_ROLE, TokenVersion};
use crate::verifier::{TokenVerifier, TokenVerifierBuilder};

/// Object id used for the Azure Monitor service principal in minted tokens.
pub const TEST_CALLER_OBJECT_ID: &str = "0b6e2a55-6f2c-4d3a-9b1e-3c0f5e8d7a41";

/// One RSA signing key of the test issuer.
#[derive(Clone)]
pub struct TestKey {
    kid: String,
    pair: Arc<RsaKeyPair>,
}

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TestKey {
    /// Generates a fresh RSA-2048 key with the given `kid`.
    pub fn generate(kid: impl Into<String>) -> std::io::Result<Self> {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| std::io::Error::other("RSA key generation failed"))?;
        Ok(Self {
            kid: kid.into(),
            pair: Arc::new(pair),
        })
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (`kty`, `use`, `kid`, `n`, `e`).
    #[must_use]
    pub fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// RS256-signs `signing_input` and returns the base64url signature.
    #[must_use]
    pub fn sign(&self, signing_input: &str) -> String {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        match self.pair.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            signing_input.as_bytes(),
            &mut sig,
        ) {
            Ok(()) => URL_SAFE_NO_PAD.encode(sig),
            // Signing with a valid key and a correctly sized buffer does not fail; if it ever did,
            // the token would simply not verify.
            Err(_) => String::new(),
        }
    }

    /// Builds `b64(header).b64(claims).signature` from raw JSON text (so tests can send duplicate
    /// members or odd formatting).
    #[must_use]
    pub fn sign_raw(&self, header_json: &str, claims_json: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header_json),
            URL_SAFE_NO_PAD.encode(claims_json)
        );
        let sig = self.sign(&input);
        format!("{input}.{sig}")
    }
}

struct Shared {
    tenant_id: String,
    /// Further tenants served on the same authority, lowercase.
    extra_tenants: Mutex<Vec<String>>,
    authority: String,
    v1_issuer: String,
    v2_issuer: String,
    keys: Mutex<Vec<TestKey>>,
    extra_jwks: Mutex<Vec<Value>>,
    available: AtomicBool,
    discovery_fetches: AtomicU64,
    jwks_fetches: AtomicU64,
    /// How long each JWKS request is held before it is answered (real time).
    jwks_delay: Mutex<Duration>,
    next_kid: AtomicU64,
}

impl Shared {
    fn keys(&self) -> Vec<TestKey> {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The served tenant named by a request path segment (case-insensitive), as configured.
    fn served_tenant(&self, tenant: &str) -> Option<String> {
        if tenant.eq_ignore_ascii_case(&self.tenant_id) {
            return Some(self.tenant_id.clone());
        }
        self.extra_tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|t| t.eq_ignore_ascii_case(tenant))
            .cloned()
    }

    fn add_tenant(&self, tenant: &str) {
        let tenant = tenant.to_ascii_lowercase();
        let mut extra = self
            .extra_tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !tenant.eq_ignore_ascii_case(&self.tenant_id) && !extra.contains(&tenant) {
            extra.push(tenant);
        }
    }
}

/// Builder for [`TestIssuer`].
#[derive(Debug)]
pub struct TestIssuerBuilder {
    tenant_id: String,
    extra_tenants: Vec<String>,
    v1_issuer: Option<String>,
    v2_issuer: Option<String>,
    clock: Arc<dyn Clock>,
}

impl TestIssuerBuilder {
    /// Also serves discovery and JWKS for `tenant_id` on the same authority, with the same keys
    /// (e.g. a genuine tenant that the verifier under test does not allow).
    #[must_use]
    pub fn extra_tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.extra_tenants.push(tenant_id.into());
        self
    }

    /// The v1 issuer template (default `https://sts.windows.net/{tenantid}/`).
    #[must_use]
    pub fn v1_issuer(mut self, template: impl Into<String>) -> Self {
        self.v1_issuer = Some(template.into());
        self
    }

    /// The v2 issuer template (default `{authority}/{tenantid}/v2.0`, as Microsoft's login host).
    #[must_use]
    pub fn v2_issuer(mut self, template: impl Into<String>) -> Self {
        self.v2_issuer = Some(template.into());
        self
    }

    /// The clock used for `iat`/`nbf`/`exp` of minted tokens (default the system clock).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Generates the key, binds `127.0.0.1:0` and starts serving.
    pub async fn start(self) -> std::io::Result<TestIssuer> {
        let key = TestKey::generate("test-key-1")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let authority = format!("http://{}", listener.local_addr()?);
        let template = |t: Option<String>, default: String| t.unwrap_or(default);
        let shared = Arc::new(Shared {
            tenant_id: self.tenant_id.clone(),
            extra_tenants: Mutex::new(Vec::new()),
            v1_issuer: template(
                self.v1_issuer,
                "https://sts.windows.net/{tenantid}/".to_owned(),
            ),
            v2_issuer: template(self.v2_issuer, format!("{authority}/{{tenantid}}/v2.0")),
            authority,
            keys: Mutex::new(vec![key]),
            extra_jwks: Mutex::new(Vec::new()),
            available: AtomicBool::new(true),
            discovery_fetches: AtomicU64::new(0),
            jwks_fetches: AtomicU64::new(0),
            jwks_delay: Mutex::new(Duration::ZERO),
            next_kid: AtomicU64::new(2),
        });
        for t in &self.extra_tenants {
            shared.add_tenant(t);
        }
        let app = axum::Router::new()
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(discovery_v2),
            )
            .route(
                "/{tenant}/.well-known/openid-configuration",
                get(discovery_v1),
            )
            .route("/{tenant}/discovery/v2.0/keys", get(jwks_v2))
            .route("/{tenant}/discovery/keys", get(jwks_v1))
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            // Ends when the listener fails or the task is aborted on drop.
            let _ = axum::serve(listener, app).await;
        });
        Ok(TestIssuer {
            shared,
            clock: self.clock,
            server,
        })
    }
}

/// A loopback Entra ID stand-in: discovery + JWKS server and token minter for one main tenant
/// and optional extra tenants on the same authority.
///
/// The server stops when the `TestIssuer` is dropped.
pub struct TestIssuer {
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    server: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestIssuer")
            .field("tenant_id", &self.shared.tenant_id)
            .field("authority", &self.shared.authority)
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestIssuer {
    /// Starts an issuer for `tenant_id` with default settings.
    pub async fn start(tenant_id: &str) -> std::io::Result<TestIssuer> {
        Self::builder(tenant_id).start().await
    }

    /// A builder, to set issuer templates or the clock.
    pub fn builder(tenant_id: &str) -> TestIssuerBuilder {
        TestIssuerBuilder {
            tenant_id: tenant_id.to_owned(),
            extra_tenants: Vec::new(),
            v1_issuer: None,
            v2_issuer: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The base URL to pass to [`TokenVerifierBuilder::authority`].
    #[must_use]
    pub fn authority(&self) -> String {
        self.shared.authority.clone()
    }

    /// The tenant this issuer serves.
    #[must_use]
    pub fn tenant_id(&self) -> &str {
        &self.shared.tenant_id
    }

    /// Starts serving discovery and JWKS for another tenant too (same keys, same authority).
    /// Verifiers that allow only the main tenant still reject its tokens as `bad_tenant`.
    pub fn add_tenant(&self, tenant_id: &str) {
        self.shared.add_tenant(tenant_id);
    }

    /// Every tenant served: the main one first, then the extra ones (lowercase).
    #[must_use]
    pub fn tenants(&self) -> Vec<String> {
        let mut all = vec![self.shared.tenant_id.clone()];
        all.extend(
            self.shared
                .extra_tenants
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .cloned(),
        );
        all
    }

    /// The issuer (`iss`) of the main tenant for a token version.
    #[must_use]
    pub fn issuer(&self, version: TokenVersion) -> String {
        self.issuer_for_tenant(&self.shared.tenant_id, version)
    }

    /// The issuer (`iss`) of `tenant_id` for a token version.
    #[must_use]
    pub fn issuer_for_tenant(&self, tenant_id: &str, version: TokenVersion) -> String {
        let t = match version {
            TokenVersion::V1 => &self.shared.v1_issuer,
            TokenVersion::V2 => &self.shared.v2_issuer,
        };
        t.replace("{tenantid}", tenant_id)
    }

    /// A verifier builder for this tenant and `audiences`, pointed at this issuer, sharing its clock.
    pub fn verifier_builder(
        &self,
        audiences: impl IntoIterator<Item = impl Into<String>>,
    ) -> TokenVerifierBuilder {
        TokenVerifier::builder([self.tenant_id()], audiences)
            .authority(self.authority())
            .clock(Arc::clone(&self.clock))
    }

    /// The current signing key (the last one added).
    #[must_use]
    pub fn current_key(&self) -> Option<TestKey> {
        self.shared.keys().last().cloned()
    }

    /// The `kid` of the current signing key.
    #[must_use]
    pub fn kid(&self) -> String {
        self.current_key().map(|k| k.kid).unwrap_or_default()
    }

    /// Now, by the issuer's clock, as a NumericDate.
    #[must_use]
    pub fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    /// Valid v2 app-only claims from Azure Monitor for `audience`: `azp` = Azure Monitor's app id,
    /// role `ActionGroupsSecureWebhook`, issued now, valid 1 h. Edit and pass to [`mint`](Self::mint).
    #[must_use]
    pub fn claims(&self, audience: &str) -> Value {
        self.claims_for_tenant(&self.shared.tenant_id, audience)
    }

    /// Like [`claims`](Self::claims), for `tenant_id` (`tid` and `iss` name it).
    #[must_use]
    pub fn claims_for_tenant(&self, tenant_id: &str, audience: &str) -> Value {
        let now = self.now();
        json!({
            "aud": audience,
            "iss": self.issuer_for_tenant(tenant_id, TokenVersion::V2),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "aio": "test",
            "azp": AZURE_MONITOR_APP_ID,
            "azpacr": "2",
            "idtyp": "app",
            "oid": TEST_CALLER_OBJECT_ID,
            "rh": "test",
            "roles": [DEFAULT_ROLE],
            "sub": TEST_CALLER_OBJECT_ID,
            "tid": tenant_id,
            "uti": format!("uti-{now}"),
            "ver": "2.0",
        })
    }

    /// Valid v1 app-only claims (`appid`, `sts.windows.net` issuer) for `audience`.
    #[must_use]
    pub fn claims_v1(&self, audience: &str) -> Value {
        let now = self.now();
        json!({
            "aud": audience,
            "iss": self.issuer(TokenVersion::V1),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "appid": AZURE_MONITOR_APP_ID,
            "appidacr": "2",
            "idtyp": "app",
            "oid": TEST_CALLER_OBJECT_ID,
            "roles": [DEFAULT_ROLE],
            "sub": TEST_CALLER_OBJECT_ID,
            "tid": self.tenant_id(),
            "ver": "1.0",
        })
    }

    /// A valid v2 token from Azure Monitor for `audience` (1 h).
    #[must_use]
    pub fn token(&self, audience: &str) -> String {
        self.mint(self.claims(audience))
    }

    /// A valid v2 token from Azure Monitor for `audience` (1 h) issued in `tenant_id`; genuine
    /// (signed with the current key) if the issuer serves that tenant.
    #[must_use]
    pub fn token_for_tenant(&self, tenant_id: &str, audience: &str) -> String {
        self.mint(self.claims_for_tenant(tenant_id, audience))
    }

    /// A valid v1 token from Azure Monitor for `audience` (1 h).
    #[must_use]
    pub fn token_v1(&self, audience: &str) -> String {
        self.mint(self.claims_v1(audience))
    }

    /// The default header: `{"alg":"RS256","typ":"JWT","kid":<current kid>}`.
    #[must_use]
    pub fn header(&self) -> Value {
        json!({"alg": "RS256", "typ": "JWT", "kid": self.kid()})
    }

    /// Signs `claims` with the current key under the default header.
    #[must_use]
    pub fn mint(&self, claims: Value) -> String {
        self.mint_with_header(self.header(), claims)
    }

    /// Signs `claims` with the current key under `header` (taken as is: no `kid` is added).
    #[must_use]
    pub fn mint_with_header(&self, header: Value, claims: Value) -> String {
        self.mint_raw(&header.to_string(), &claims.to_string())
    }

    /// Signs raw JSON text with the current key (for duplicate members and other odd encodings).
    #[must_use]
    pub fn mint_raw(&self, header_json: &str, claims_json: &str) -> String {
        match self.current_key() {
            Some(k) => k.sign_raw(header_json, claims_json),
            // Every key retired: an unsigned token, which no verifier accepts.
            None => format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(header_json),
                URL_SAFE_NO_PAD.encode(claims_json)
            ),
        }
    }

    /// Generates a new key, publishes it next to the old ones and makes it current. Returns its kid.
    pub fn rotate_key(&self) -> std::io::Result<String> {
        let n = self.shared.next_kid.fetch_add(1, Ordering::Relaxed);
        let key = TestKey::generate(format!("test-key-{n}"))?;
        let kid = key.kid.clone();
        self.shared
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(key);
        Ok(kid)
    }

    /// Stops publishing the key `kid` (the current key moves to the newest remaining one).
    pub fn retire_key(&self, kid: &str) {
        self.shared
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|k| k.kid != kid);
    }

    /// Publishes an extra raw JWK entry (e.g. an `oct` key or a 1024-bit RSA key) in both JWKS.
    pub fn publish_raw_jwk(&self, jwk: Value) {
        self.shared
            .extra_jwks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(jwk);
    }

    /// Makes every endpoint answer 503 (`false`) or serve normally again (`true`).
    pub fn set_available(&self, available: bool) {
        self.shared.available.store(available, Ordering::SeqCst);
    }

    /// Holds every JWKS request for `delay` (real time) before answering it, as a slow or
    /// distant metadata endpoint would; `Duration::ZERO` (the default) answers at once. The
    /// request is counted in [`jwks_fetches`](Self::jwks_fetches) when it arrives, and the
    /// answer reflects the keys published when the delay ends.
    pub fn set_jwks_delay(&self, delay: Duration) {
        *self
            .shared
            .jwks_delay
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = delay;
    }

    /// Discovery documents served so far.
    #[must_use]
    pub fn discovery_fetches(&self) -> u64 {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }

    /// JWKS requests received so far (counted on arrival, answered or not).
    #[must_use]
    pub fn jwks_fetches(&self) -> u64 {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// The v2 JWKS document as served (for offline verification with `--jwks`).
    #[must_use]
    pub fn jwks_json(&self) -> String {
        jwks_doc(&self.shared, true).to_string()
    }
}

fn jwks_doc(shared: &Shared, with_issuer: bool) -> Value {
    let mut keys: Vec<Value> = shared
        .keys()
        .iter()
        .map(|k| {
            let mut jwk = k.jwk();
            if with_issuer && let Some(obj) = jwk.as_object_mut() {
                obj.insert("issuer".to_owned(), Value::from(shared.v2_issuer.clone()));
            }
            jwk
        })
        .collect();
    keys.extend(
        shared
            .extra_jwks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned(),
    );
    json!({ "keys": keys })
}

type SharedState = State<Arc<Shared>>;

/// The served tenant named by the path, or the error status (503 when unavailable, else 404).
fn gate(shared: &Shared, tenant: &str) -> Result<String, StatusCode> {
    if !shared.available.load(Ordering::SeqCst) {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    shared.served_tenant(tenant).ok_or(StatusCode::NOT_FOUND)
}

fn discovery(shared: &Shared, tenant: &str, version: TokenVersion) -> Response {
    shared.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    let served = match gate(shared, tenant) {
        Ok(t) => t,
        Err(status) => return status.into_response(),
    };
    let (issuer, jwks) = match version {
        TokenVersion::V1 => (
            &shared.v1_issuer,
            format!("{}/{tenant}/discovery/keys", shared.authority),
        ),
        TokenVersion::V2 => (
            &shared.v2_issuer,
            format!("{}/{tenant}/discovery/v2.0/keys", shared.authority),
        ),
    };
    axum::Json(json!({
        "issuer": issuer.replace("{tenantid}", &served),
        "jwks_uri": jwks,
        "token_endpoint": format!("{}/{tenant}/oauth2/v2.0/token", shared.authority),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .into_response()
}

async fn discovery_v2(State(s): SharedState, Path(tenant): Path<String>) -> Response {
    discovery(&s, &tenant, TokenVersion::V2)
}

async fn discovery_v1(State(s): SharedState, Path(tenant): Path<String>) -> Response {
    discovery(&s, &tenant, TokenVersion::V1)
}

async fn jwks(shared: &Shared, tenant: &str, with_issuer: bool) -> Response {
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let delay = *shared
        .jwks_delay
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Err(status) = gate(shared, tenant) {
        return status.into_response();
    }
    axum::Json(jwks_doc(shared, with_issuer)).into_response()
}

async fn jwks_v2(State(s): SharedState, Path(tenant): Path<String>) -> Response {
    jwks(&s, &tenant, true).await
}

async fn jwks_v1(State(s): SharedState, Path(tenant): Path<String>) -> Response {
    jwks(&s, &tenant, false).await
}
