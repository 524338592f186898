//! [`TokenVerifier`] and its builder.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::Algorithm;
use url::Url;

use crate::claims::Claims;
use crate::clock::{Clock, SystemClock};
use crate::error::{BuildError, VerifyError, quote};
use crate::jose;
use crate::jwks::KeySet;
use crate::key_source::{Fetcher, KeySource, Loaded, Timing, names_tenant};
use crate::policy::{
    AZURE_MONITOR_APP_ID, AZURE_MONITOR_APP_ID_US_GOV, Cloud, DEFAULT_ROLE, TokenVersion,
    TokenVersions, audience_matches, is_guid,
};
use crate::token_cache::{TokenCache, digest};

/// Largest leeway allowed.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Most tenants whose metadata is cached in `insecure_any_tenant` mode.
const MAX_ANY_TENANTS: usize = 1000;
/// Most tenants first seen per minute in `insecure_any_tenant` mode (each costs a metadata fetch).
const MAX_NEW_TENANTS_PER_MINUTE: u32 = 30;
/// Default number of verified tokens remembered.
const DEFAULT_TOKEN_CACHE_CAPACITY: usize = 10_000;
/// Default longest time a verified token is remembered.
const DEFAULT_TOKEN_CACHE_MAX_AGE: Duration = Duration::from_secs(300);

/// The verified identity of the caller.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifiedCaller {
    /// The tenant (`tid`), lowercase GUID.
    pub tenant_id: String,
    /// The calling application (`appid` for v1, `azp` for v2).
    pub app_id: String,
    /// The caller's service principal object id (`oid`), if present.
    pub object_id: Option<String>,
    /// The app roles granted (`roles`).
    pub roles: Vec<String>,
    /// The token version.
    pub token_version: TokenVersion,
    /// When the token expires (`exp`).
    pub expires_at: DateTime<Utc>,
}

/// Verifies Entra ID bearer tokens sent by Azure Monitor's Secure Webhook.
///
/// Cheap to clone (an `Arc`); clones share the key cache and the verified-token cache. Build one
/// with [`TokenVerifier::builder`].
///
/// Azure Monitor reuses one token for about an hour, so successful verifications are remembered
/// (by a SHA-256 digest of the token, never the token itself; at most 10,000 tokens, each at most
/// 5 minutes by default, see [`TokenVerifierBuilder::token_cache_capacity`]). A cached token is
/// still re-checked on every use: `exp`/`nbf`/`iat` against the clock, and its signing key must
/// still be in the very key set that verified it (any key refresh sends it through the full check
/// again). Failures are never cached.
///
/// Needs a Tokio runtime (time and IO drivers enabled, as `reqwest` requires): discovery and
/// JWKS fetches run as tasks spawned on the current runtime, detached from the call that needed
/// them, so a caller that hangs up (its `verify` future dropped) never cancels a key fetch;
/// concurrent callers share the fetch in flight and wait for it, at most about twice
/// [`fetch_timeout`](TokenVerifierBuilder::fetch_timeout). Polled outside a Tokio runtime, a call
/// that needs a fetch fails with `keys_unavailable` instead of panicking; an
/// [`offline_jwks`](TokenVerifierBuilder::offline_jwks) verifier needs no runtime.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    tenants: Vec<String>,
    any_tenant: bool,
    audiences: Vec<String>,
    versions: TokenVersions,
    caller_app_ids: Vec<String>,
    required_role: Option<String>,
    leeway_secs: i64,
    max_lifetime_secs: i64,
    authority: Url,
    clock: Arc<dyn Clock>,
    fetcher: Fetcher,
    offline: Option<OfflineKeys>,
    sources: RwLock<HashMap<(String, TokenVersion), Arc<KeySource>>>,
    /// `insecure_any_tenant` mode: (minute, tenants first seen in it).
    new_tenants: std::sync::Mutex<(i64, u32)>,
    /// Verified tokens by digest; `None` when disabled.
    cache: Option<TokenCache<CachedToken>>,
}

/// What a cache hit needs to re-check a token and answer without verifying it again.
#[derive(Debug, Clone)]
struct CachedToken {
    caller: VerifiedCaller,
    kid: String,
    times: Times,
    /// The key set the signature was checked against; a hit requires it to still be current.
    keys: Weak<Loaded>,
}

/// The time claims of a token.
#[derive(Debug, Clone, Copy)]
struct Times {
    exp: i64,
    nbf: i64,
    iat: i64,
}

struct OfflineKeys {
    keys: KeySet,
    v1_issuer_prefix: &'static str,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("TokenVerifier")
            .field("tenants", &i.tenants)
            .field("any_tenant", &i.any_tenant)
            .field("audiences", &i.audiences)
            .field("versions", &i.versions)
            .field("caller_app_ids", &i.caller_app_ids)
            .field("required_role", &i.required_role)
            .field("leeway_secs", &i.leeway_secs)
            .field("max_lifetime_secs", &i.max_lifetime_secs)
            .field("authority", &i.authority.as_str())
            .field("offline", &i.offline.is_some())
            .field("keys_loaded", &self.keys_loaded())
            .field("cached_tokens", &self.cached_tokens())
            .finish_non_exhaustive()
    }
}

/// Builder for [`TokenVerifier`]; see [`TokenVerifier::builder`] for the defaults.
pub struct TokenVerifierBuilder {
    tenants: Vec<String>,
    audiences: Vec<String>,
    any_tenant: bool,
    cloud: Cloud,
    authority: Option<String>,
    versions: TokenVersions,
    caller_app_ids: Option<Vec<String>>,
    required_role: Option<String>,
    leeway: Duration,
    max_lifetime: Duration,
    clock: Arc<dyn Clock>,
    http: Option<reqwest::Client>,
    timing: Timing,
    offline_jwks: Option<Vec<u8>>,
    cache_capacity: usize,
    cache_max_age: Duration,
}

impl fmt::Debug for TokenVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifierBuilder")
            .field("tenants", &self.tenants)
            .field("audiences", &self.audiences)
            .field("cloud", &self.cloud)
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// Starts a policy for the given tenant ids (GUIDs) and audiences (API client id and/or App
    /// ID URIs).
    ///
    /// Defaults: public cloud, v1 and v2 tokens, callers restricted to Azure Monitor's app ids
    /// ([`AZURE_MONITOR_APP_ID`], [`AZURE_MONITOR_APP_ID_US_GOV`]), role
    /// [`DEFAULT_ROLE`] required, 300 s leeway, 24 h maximum lifetime, system clock, keys refreshed
    /// every 12 to 24 h and at most once per 5 minutes on an unknown `kid`, 10 s fetch timeout.
    ///
    /// Audiences match exactly and case-sensitively, except that one trailing `/` is ignored on
    /// either side (`api://x/` matches `api://x`), as Microsoft.IdentityModel does.
    pub fn builder(
        tenant_ids: impl IntoIterator<Item = impl Into<String>>,
        audiences: impl IntoIterator<Item = impl Into<String>>,
    ) -> TokenVerifierBuilder {
        TokenVerifierBuilder {
            tenants: tenant_ids.into_iter().map(Into::into).collect(),
            audiences: audiences.into_iter().map(Into::into).collect(),
            any_tenant: false,
            cloud: Cloud::Public,
            authority: None,
            versions: TokenVersions::Both,
            caller_app_ids: None,
            required_role: Some(DEFAULT_ROLE.to_owned()),
            leeway: MAX_LEEWAY,
            max_lifetime: Duration::from_secs(24 * 3600),
            clock: Arc::new(SystemClock),
            http: None,
            timing: Timing::default(),
            offline_jwks: None,
            cache_capacity: DEFAULT_TOKEN_CACHE_CAPACITY,
            cache_max_age: DEFAULT_TOKEN_CACHE_MAX_AGE,
        }
    }
}

impl TokenVerifierBuilder {
    /// The Entra cloud (default [`Cloud::Public`]); sets the authority unless overridden.
    #[must_use]
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = cloud;
        self
    }

    /// Overrides the discovery base URL (e.g. a local test issuer). Must be `https`, or `http` on a
    /// loopback host.
    #[must_use]
    pub fn authority(mut self, url: impl Into<String>) -> Self {
        self.authority = Some(url.into());
        self
    }

    /// Which token versions to accept (default both).
    #[must_use]
    pub fn versions(mut self, versions: TokenVersions) -> Self {
        self.versions = versions;
        self
    }

    /// The calling app ids allowed (`appid` in v1, `azp` in v2). Default: Azure Monitor's ids.
    #[must_use]
    pub fn caller_app_ids(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.caller_app_ids = Some(ids.into_iter().map(Into::into).collect());
        self
    }

    /// The app role the token must carry (default `ActionGroupsSecureWebhook`); `None` switches the
    /// role check off, which is only safe if the Entra app requires assignment.
    #[must_use]
    pub fn required_role(mut self, role: Option<String>) -> Self {
        self.required_role = role;
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default and maximum 300 s).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Largest `exp - iat` accepted (default 24 h).
    #[must_use]
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max;
        self
    }

    /// The clock (default the system clock); tests inject a [`ManualClock`](crate::ManualClock).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The HTTP client for discovery and JWKS. The default follows no redirects; a client you
    /// pass should not either (an answer that arrives through a redirect is refused anyway). A
    /// per-request timeout and a size cap apply in any case.
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Accepts tokens from ANY tenant (tenant ids given to the builder are ignored). Dangerous:
    /// every Entra tenant can mint tokens for Azure Monitor's app id; use only with your own
    /// tenant checks downstream. Each new tenant id seen costs one metadata fetch; at most 30 new
    /// tenants per minute are looked up (others get `bad_tenant` until the next minute) and at
    /// most 1000 are cached (tenants whose keys never loaded are evicted first).
    #[must_use]
    pub fn insecure_any_tenant(mut self) -> Self {
        self.any_tenant = true;
        self
    }

    /// Base interval of the proactive key refresh (default 12 h; jitter adds up to the same again).
    #[must_use]
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.timing.refresh_interval = interval;
        self
    }

    /// Smallest gap between two refreshes triggered by an unknown `kid`, counted from the
    /// completion of the previous one (default 5 min, at least 1 s). Unknown kids that arrive
    /// while a fetch is in flight join it instead.
    #[must_use]
    pub fn unknown_kid_refresh_interval(mut self, interval: Duration) -> Self {
        self.timing.kid_refresh_interval = interval;
        self
    }

    /// How long to wait after a failed metadata fetch completes before trying again (default
    /// 30 s, at least 1 s).
    #[must_use]
    pub fn failure_cooldown(mut self, cooldown: Duration) -> Self {
        self.timing.failure_cooldown = cooldown;
        self
    }

    /// Timeout of each metadata request (default 10 s).
    #[must_use]
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.timing.fetch_timeout = timeout;
        self
    }

    /// Verifies offline against this JWKS document (no discovery, no network). The expected
    /// issuers are derived from the cloud (or authority): v2 `{authority}/{tid}/v2.0`, v1
    /// `https://sts.windows.net/{tid}/` (China: `https://sts.chinacloudapi.cn/{tid}/`).
    #[must_use]
    pub fn offline_jwks(mut self, jwks_json: impl Into<Vec<u8>>) -> Self {
        self.offline_jwks = Some(jwks_json.into());
        self
    }

    /// Most verified tokens remembered (default 10,000; the oldest is evicted first). `0`
    /// disables the verified-token cache: every call then checks the signature again.
    #[must_use]
    pub fn token_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Longest time a verified token is remembered (default 5 min, whole seconds; less than 1 s
    /// disables the cache). A cached token is re-checked against `exp`/`nbf`/`iat` and the current
    /// key set on every use regardless.
    #[must_use]
    pub fn token_cache_max_age(mut self, max_age: Duration) -> Self {
        self.cache_max_age = max_age;
        self
    }

    /// Checks the policy and builds the verifier. Does not touch the network; call
    /// [`TokenVerifier::warm_up`] to load keys at start.
    pub fn build(self) -> Result<TokenVerifier, BuildError> {
        let tenants = if self.any_tenant {
            Vec::new()
        } else {
            if self.tenants.is_empty() {
                return Err(BuildError::NoTenant);
            }
            let mut out = Vec::new();
            for t in self.tenants {
                if !is_guid(&t) {
                    return Err(BuildError::BadTenantId(quote(&t)));
                }
                let t = t.to_ascii_lowercase();
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            out
        };
        if self.audiences.is_empty() {
            return Err(BuildError::NoAudience);
        }
        if let Some(a) = self
            .audiences
            .iter()
            .find(|a| a.is_empty() || a.chars().any(char::is_whitespace))
        {
            return Err(BuildError::BadAudience(quote(a)));
        }
        let caller_app_ids = self.caller_app_ids.unwrap_or_else(|| {
            vec![
                AZURE_MONITOR_APP_ID.to_owned(),
                AZURE_MONITOR_APP_ID_US_GOV.to_owned(),
            ]
        });
        if caller_app_ids.is_empty() {
            return Err(BuildError::NoCallerAppId);
        }
        if self.leeway > MAX_LEEWAY {
            return Err(BuildError::LeewayTooLarge(self.leeway.as_secs()));
        }
        if self.max_lifetime.is_zero() {
            return Err(BuildError::BadMaxLifetime);
        }
        if self.timing.kid_refresh_interval < Duration::from_secs(1) {
            return Err(BuildError::BadTiming(
                "unknown-kid refresh interval must be at least 1 s",
            ));
        }
        if self.timing.refresh_interval < Duration::from_secs(60) {
            return Err(BuildError::BadTiming(
                "refresh interval must be at least 60 s",
            ));
        }
        if self.timing.failure_cooldown < Duration::from_secs(1) {
            return Err(BuildError::BadTiming(
                "failure cooldown must be at least 1 s",
            ));
        }
        if self.timing.fetch_timeout.is_zero() {
            return Err(BuildError::BadTiming("fetch timeout must be positive"));
        }
        let authority =
            parse_authority(self.authority.as_deref().unwrap_or(self.cloud.authority()))?;
        let http = match self.http {
            Some(c) => c,
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(self.timing.fetch_timeout)
                .build()
                .map_err(|e| BuildError::Http(e.to_string()))?,
        };
        let offline = match self.offline_jwks {
            None => None,
            Some(doc) => {
                let keys = KeySet::parse(&doc).map_err(BuildError::BadJwks)?;
                if keys.keys.is_empty() {
                    return Err(BuildError::BadJwks("no usable RSA signing key".to_owned()));
                }
                Some(OfflineKeys {
                    keys,
                    v1_issuer_prefix: self.cloud.v1_issuer_prefix(),
                })
            }
        };
        install_crypto_provider();
        let cache_max_age_secs = i64::try_from(self.cache_max_age.as_secs()).unwrap_or(i64::MAX);
        let cache = (self.cache_capacity > 0 && cache_max_age_secs > 0)
            .then(|| TokenCache::new(self.cache_capacity, cache_max_age_secs));
        let verifier = TokenVerifier {
            inner: Arc::new(Inner {
                tenants,
                any_tenant: self.any_tenant,
                audiences: self.audiences,
                versions: self.versions,
                caller_app_ids,
                required_role: self.required_role,
                leeway_secs: i64::try_from(self.leeway.as_secs()).unwrap_or(300),
                max_lifetime_secs: i64::try_from(self.max_lifetime.as_secs()).unwrap_or(i64::MAX),
                authority,
                clock: Arc::clone(&self.clock),
                fetcher: Fetcher {
                    http,
                    timing: self.timing,
                    clock: Arc::clone(&self.clock),
                },
                offline,
                sources: RwLock::new(HashMap::new()),
                new_tenants: std::sync::Mutex::new((0, 0)),
                cache,
            }),
        };
        // Pre-create the sources of the configured tenants so `keys_loaded` can report on them.
        for t in &verifier.inner.tenants {
            for v in verifier.inner.versions.list() {
                verifier.inner.source(t, *v);
            }
        }
        Ok(verifier)
    }
}

/// Selects jsonwebtoken's aws-lc-rs backend explicitly, so feature unification that turns on a
/// second backend elsewhere in the dependency graph cannot make verification panic.
fn install_crypto_provider() {
    // `Err` only means a provider is already installed, which is fine.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

fn is_loopback(host: Option<url::Host<&str>>) -> bool {
    match host {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn parse_authority(raw: &str) -> Result<Url, BuildError> {
    let bad = |reason| BuildError::BadAuthority {
        url: raw.to_owned(),
        reason,
    };
    let url = Url::parse(raw.trim_end_matches('/')).map_err(|_| bad("not a valid URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(url.host()) => {}
        "http" => return Err(bad("http is only allowed for loopback hosts")),
        _ => return Err(bad("scheme must be https")),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("must not carry a query, fragment or credentials"));
    }
    if url.host().is_none() {
        return Err(bad("has no host"));
    }
    Ok(url)
}

impl Inner {
    fn source(&self, tenant: &str, version: TokenVersion) -> Option<Arc<KeySource>> {
        let key = (tenant.to_owned(), version);
        if let Some(s) = self
            .sources
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Some(Arc::clone(s));
        }
        let mut map = self
            .sources
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = map.get(&key) {
            return Some(Arc::clone(s));
        }
        if self.any_tenant && self.offline.is_none() {
            // Attacker-chosen tenant ids must not turn into unbounded outbound fetches or fill
            // the map: rate-limit first sightings, and evict tenants whose keys never loaded.
            let minute = self.clock.now().timestamp().div_euclid(60);
            let mut window = self
                .new_tenants
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if window.0 != minute {
                *window = (minute, 0);
            }
            if window.1 >= MAX_NEW_TENANTS_PER_MINUTE {
                return None;
            }
            if map.len() >= MAX_ANY_TENANTS {
                map.retain(|_, s| s.is_loaded());
                if map.len() >= MAX_ANY_TENANTS {
                    return None;
                }
            }
            window.1 += 1;
        }
        let source = match &self.offline {
            Some(off) => {
                let issuer = match version {
                    TokenVersion::V1 => format!("{}{tenant}/", off.v1_issuer_prefix),
                    TokenVersion::V2 => {
                        format!(
                            "{}/{tenant}/v2.0",
                            self.authority.as_str().trim_end_matches('/')
                        )
                    }
                };
                KeySource::offline(&self.authority, tenant, issuer, off.keys.clone())
            }
            None => KeySource::online(&self.authority, tenant, version),
        };
        let source = Arc::new(source);
        map.insert(key, Arc::clone(&source));
        Some(source)
    }
}

impl TokenVerifier {
    /// Verifies a whole `Authorization` header value (`Bearer <token>`). The scheme matches
    /// case-insensitively, followed by exactly one space; whitespace around the value is trimmed,
    /// never inside the token.
    pub async fn verify_header(
        &self,
        authorization: Option<&str>,
    ) -> Result<VerifiedCaller, VerifyError> {
        let token = bearer_token(authorization)?;
        self.verify(token).await
    }

    /// Verifies a bare compact token.
    pub async fn verify(&self, token: &str) -> Result<VerifiedCaller, VerifyError> {
        let Some(cache) = &self.inner.cache else {
            return self.verify_fully(token).await.map(|c| c.caller);
        };
        let key = digest(token);
        let now = self.inner.clock.now();
        if let Some(hit) = cache.get(&key, now.timestamp()) {
            match self.recheck(&hit, now).await {
                Some(Ok(caller)) => return Ok(caller),
                Some(Err(e)) => {
                    cache.remove(&key);
                    return Err(e);
                }
                // The key set changed since: verify in full (and cache again).
                None => cache.remove(&key),
            }
        }
        let verified = self.verify_fully(token).await?;
        let caller = verified.caller.clone();
        cache.insert(key, verified, now.timestamp());
        Ok(caller)
    }

    /// Re-checks a cached token as the full check would now, short of the signature and claim
    /// parsing: the key must still be served (with the usual refresh rules) from the same key set,
    /// and the times must still be valid. `None` when that key set is no longer current.
    async fn recheck(
        &self,
        hit: &CachedToken,
        now: DateTime<Utc>,
    ) -> Option<Result<VerifiedCaller, VerifyError>> {
        let i = &self.inner;
        let source = i.source(&hit.caller.tenant_id, hit.caller.token_version)?;
        let loaded = match source.key(&hit.kid, &i.fetcher, now).await {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        if Weak::as_ptr(&hit.keys) != Arc::as_ptr(&loaded) {
            return None;
        }
        Some(
            self.check_times(hit.times, now.timestamp())
                .map(|()| hit.caller.clone()),
        )
    }

    /// The full check: signature, times, issuer, audience, caller and role.
    async fn verify_fully(&self, token: &str) -> Result<CachedToken, VerifyError> {
        let i = &self.inner;
        let parsed = jose::parse(token)?;
        let claims = Claims::extract(&parsed.claims)?;
        // Routing by the (still unverified) tid and ver only selects which keys to try; nothing is
        // accepted before the signature and every claim check pass.
        let tid = claims.tid.to_ascii_lowercase();
        if !i.any_tenant && !i.tenants.contains(&tid) {
            return Err(VerifyError::BadTenant(quote(&claims.tid)));
        }
        if !i.versions.accepts(claims.ver) {
            return Err(VerifyError::BadVersion(claims.ver.as_str().to_owned()));
        }
        let source = i.source(&tid, claims.ver).ok_or_else(|| {
            VerifyError::BadTenant(format!(
                "{} (too many new tenants; retry later)",
                quote(&tid)
            ))
        })?;
        let now = i.clock.now();
        let loaded = source.key(&parsed.kid, &i.fetcher, now).await?;
        let key = loaded.key(&parsed.kid)?;

        let ok = jsonwebtoken::crypto::verify(
            parsed.signature_b64,
            parsed.signing_input.as_bytes(),
            &key.key,
            Algorithm::RS256,
        )
        .unwrap_or(false);
        if !ok {
            return Err(VerifyError::BadSignature);
        }

        let times = Times {
            exp: claims.exp,
            nbf: claims.nbf,
            iat: claims.iat,
        };
        self.check_times(times, now.timestamp())?;

        // Issuer: exactly what the tenant's metadata declares, naming the same tenant as `tid`.
        if claims.iss != loaded.issuer || !names_tenant(&claims.iss, &tid) {
            return Err(VerifyError::BadIssuer(quote(&claims.iss)));
        }
        if let Some(key_issuer) = &key.issuer {
            let key_issuer = key_issuer.replace("{tenantid}", &claims.tid);
            let v2_issuer = format!(
                "{}/{}/v2.0",
                i.authority.as_str().trim_end_matches('/'),
                claims.tid
            );
            let matches = key_issuer == claims.iss
                || (claims.ver == TokenVersion::V1 && key_issuer == v2_issuer);
            if !matches {
                return Err(VerifyError::BadIssuer(format!(
                    "{} (signing key belongs to another issuer)",
                    quote(&claims.iss)
                )));
            }
        }

        if !claims.aud.iter().any(|a| {
            i.audiences
                .iter()
                .any(|configured| audience_matches(configured, a))
        }) {
            let shown = claims
                .aud
                .first()
                .map(|a| quote(a))
                .unwrap_or_else(|| "[]".to_owned());
            return Err(VerifyError::BadAudience(shown));
        }

        if claims.has_cnf {
            return Err(VerifyError::PopToken);
        }
        if claims.has_scp {
            return Err(VerifyError::UserToken(
                "token carries `scp` (delegated permissions)",
            ));
        }
        if claims.idtyp.as_deref().is_some_and(|t| t != "app") {
            return Err(VerifyError::UserToken("`idtyp` is not `app`"));
        }

        let app_id = claims
            .caller
            .ok_or(VerifyError::MissingClaim(claims.ver.caller_claim()))?;
        if !i
            .caller_app_ids
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(&app_id))
        {
            return Err(VerifyError::CallerNotAllowed(quote(&app_id)));
        }
        if let Some(role) = &i.required_role
            && !claims.roles.iter().any(|r| r == role)
        {
            return Err(VerifyError::MissingRole(role.clone()));
        }

        let caller = VerifiedCaller {
            tenant_id: tid,
            app_id,
            object_id: claims.oid,
            roles: claims.roles,
            token_version: claims.ver,
            expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
        };
        Ok(CachedToken {
            caller,
            kid: parsed.kid,
            times,
            keys: Arc::downgrade(&loaded),
        })
    }

    fn check_times(&self, c: Times, now: i64) -> Result<(), VerifyError> {
        let leeway = self.inner.leeway_secs;
        if c.exp.saturating_add(leeway) < now {
            return Err(VerifyError::Expired {
                exp: c.exp,
                now,
                leeway_secs: leeway.unsigned_abs(),
            });
        }
        if c.nbf > c.exp {
            return Err(VerifyError::InvalidLifetime {
                nbf: c.nbf,
                exp: c.exp,
            });
        }
        if c.nbf > now.saturating_add(leeway) {
            return Err(VerifyError::NotYetValid {
                claim: "nbf",
                value: c.nbf,
                now,
            });
        }
        if c.iat > now.saturating_add(leeway) {
            return Err(VerifyError::NotYetValid {
                claim: "iat",
                value: c.iat,
                now,
            });
        }
        let lifetime = c.exp.saturating_sub(c.iat);
        if lifetime > self.inner.max_lifetime_secs {
            return Err(VerifyError::LifetimeTooLong {
                lifetime_secs: lifetime,
                max_secs: self.inner.max_lifetime_secs.unsigned_abs(),
            });
        }
        Ok(())
    }

    /// Loads discovery and keys for every configured tenant and version now (joining any fetch
    /// already in flight). Returns `keys_unavailable` if any could not be loaded (they are
    /// retried on first use). Dropping the returned future stops only the wait: a load already
    /// started goes on.
    pub async fn warm_up(&self) -> Result<(), VerifyError> {
        let sources: Vec<Arc<KeySource>> = self
            .inner
            .sources
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut first_err = None;
        for s in sources {
            if let Err(e) = s.ensure_loaded(&self.inner.fetcher).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Number of verified tokens currently remembered (0 when the cache is disabled).
    #[must_use]
    pub fn cached_tokens(&self) -> usize {
        self.inner.cache.as_ref().map_or(0, TokenCache::len)
    }

    /// Whether keys are loaded for every configured tenant and version (for `insecure_any_tenant`:
    /// for at least one tenant, or offline keys are configured). For a readiness probe.
    #[must_use]
    pub fn keys_loaded(&self) -> bool {
        let i = &self.inner;
        if i.offline.is_some() {
            return true;
        }
        let sources = i
            .sources
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if i.any_tenant {
            sources.values().any(|s| s.is_loaded())
        } else {
            !sources.is_empty() && sources.values().all(|s| s.is_loaded())
        }
    }
}

/// Extracts the token from an `Authorization` header value.
pub(crate) fn bearer_token(authorization: Option<&str>) -> Result<&str, VerifyError> {
    let value = authorization
        .ok_or(VerifyError::MissingToken)?
        .trim_matches([' ', '\t']);
    if value.is_empty() {
        return Err(VerifyError::MissingToken);
    }
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(VerifyError::BadScheme("expected `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(VerifyError::BadScheme("scheme is not Bearer"));
    }
    if token.is_empty() || token.starts_with([' ', '\t']) {
        return Err(VerifyError::BadScheme(
            "expected exactly one space after Bearer",
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(Some("Bearer a.b.c")).unwrap(), "a.b.c");
        assert_eq!(bearer_token(Some("bearer a.b.c")).unwrap(), "a.b.c");
        assert_eq!(bearer_token(Some("  BEARER a.b.c \t")).unwrap(), "a.b.c");
        assert_eq!(bearer_token(None).unwrap_err().code(), "missing_token");
        assert_eq!(bearer_token(Some("")).unwrap_err().code(), "missing_token");
        assert_eq!(
            bearer_token(Some("Bearer  a.b.c")).unwrap_err().code(),
            "bad_scheme"
        );
        assert_eq!(
            bearer_token(Some("Basic dXNlcg==")).unwrap_err().code(),
            "bad_scheme"
        );
        assert_eq!(
            bearer_token(Some("Bearer")).unwrap_err().code(),
            "bad_scheme"
        );
        assert_eq!(
            bearer_token(Some("a.b.c")).unwrap_err().code(),
            "bad_scheme"
        );
    }

    #[cfg(feature = "test-util")]
    #[tokio::test]
    async fn a_cached_token_is_answered_by_the_recheck() {
        let issuer = crate::test_util::TestIssuer::start("72f988bf-86f1-41af-91ab-2d7cd011db47")
            .await
            .unwrap();
        let verifier = issuer.verifier_builder(["api://x"]).build().unwrap();
        let token = issuer.token("api://x");
        let caller = verifier.verify(&token).await.unwrap();
        let cache = verifier.inner.cache.as_ref().unwrap();
        let hit = cache.get(&digest(&token), issuer.now()).unwrap();
        assert_eq!(hit.caller, caller);
        assert_eq!(hit.kid, issuer.kid());
        let rechecked = verifier.recheck(&hit, verifier.inner.clock.now()).await;
        assert_eq!(rechecked.unwrap().unwrap(), caller);
    }

    #[test]
    fn builder_validation() {
        let t = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let ok = || TokenVerifier::builder([t], ["api://x"]);
        assert!(ok().build().is_ok());
        assert_eq!(
            TokenVerifier::builder(Vec::<String>::new(), ["a"])
                .build()
                .unwrap_err(),
            BuildError::NoTenant
        );
        assert!(matches!(
            TokenVerifier::builder(["common"], ["a"]).build(),
            Err(BuildError::BadTenantId(_))
        ));
        assert_eq!(
            TokenVerifier::builder([t], Vec::<String>::new())
                .build()
                .unwrap_err(),
            BuildError::NoAudience
        );
        assert!(matches!(
            ok().leeway(Duration::from_secs(301)).build(),
            Err(BuildError::LeewayTooLarge(301))
        ));
        assert!(matches!(
            ok().authority("http://example.com").build(),
            Err(BuildError::BadAuthority { .. })
        ));
        assert!(ok().authority("http://127.0.0.1:8080/").build().is_ok());
        assert!(matches!(
            ok().authority("ftp://x").build(),
            Err(BuildError::BadAuthority { .. })
        ));
        assert!(matches!(
            ok().caller_app_ids(Vec::<String>::new()).build(),
            Err(BuildError::NoCallerAppId)
        ));
        assert!(
            TokenVerifier::builder(Vec::<String>::new(), ["a"])
                .insecure_any_tenant()
                .build()
                .is_ok()
        );
    }
}
