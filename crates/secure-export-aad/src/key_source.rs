//! OIDC discovery and the JWKS cache for one (tenant, token version).
//!
//! Policy: the first use (or [`warm_up`](crate::TokenVerifier::warm_up)) loads discovery and keys;
//! a proactive refresh runs when a request arrives after the refresh time (12 to 24 h, jittered);
//! an unknown `kid` triggers at most one refresh per throttle window (5 min), shared by all
//! concurrent callers; a failed fetch starts a cooldown; the last good keys are kept whenever a
//! refresh fails. While the last fetch has failed, an unknown `kid` is `keys_unavailable` (503,
//! retried by Azure Monitor) rather than `unknown_kid` (401), and a new fetch is tried after each
//! cooldown.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use url::Url;

use crate::error::{VerifyError, quote};
use crate::jwks::{KeySet, SigningKey};
use crate::policy::TokenVersion;

/// Timing and size limits for metadata fetches.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    pub(crate) refresh_interval: Duration,
    pub(crate) kid_refresh_interval: Duration,
    pub(crate) failure_cooldown: Duration,
    pub(crate) fetch_timeout: Duration,
    pub(crate) max_response_bytes: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(12 * 3600),
            kid_refresh_interval: Duration::from_secs(300),
            failure_cooldown: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(10),
            max_response_bytes: 256 * 1024,
        }
    }
}

/// Fetches metadata over HTTP with a timeout, a size cap and no redirects.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    pub(crate) http: reqwest::Client,
    pub(crate) timing: Timing,
}

impl Fetcher {
    async fn get(&self, url: &Url) -> Result<Vec<u8>, String> {
        let mut resp = self
            .http
            .get(url.clone())
            .timeout(self.timing.fetch_timeout)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", without_url(&e)))?;
        // A caller-supplied client may follow redirects: never use an answer from elsewhere.
        if resp.url() != url {
            return Err(format!("GET {url}: redirect refused"));
        }
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}"));
        }
        let cap = self.timing.max_response_bytes;
        if resp.content_length().is_some_and(|len| len > cap as u64) {
            return Err(format!("GET {url}: response larger than {cap} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {}", without_url(&e)))?
        {
            if body.len() + chunk.len() > cap {
                return Err(format!("GET {url}: response larger than {cap} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect refused"
    } else if e.is_body() || e.is_decode() {
        "body error"
    } else {
        "request failed"
    };
    kind.to_owned()
}

/// A loaded key set with the issuer the tenant's metadata declares.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The expected `iss`, `{tenantid}` already substituted.
    pub(crate) issuer: String,
    pub(crate) keys: KeySet,
}

#[derive(Debug, Default)]
struct State {
    loaded: Option<Arc<Loaded>>,
    next_refresh: Option<DateTime<Utc>>,
    last_attempt: Option<DateTime<Utc>>,
    last_failed: bool,
    last_kid_refresh: Option<DateTime<Utc>>,
}

/// Keys and issuer for one (tenant, version).
#[derive(Debug)]
pub(crate) struct KeySource {
    tenant: String,
    /// `None` in offline mode: the preloaded keys are all there is.
    discovery_url: Option<Url>,
    authority: Url,
    state: RwLock<State>,
    refresh: tokio::sync::Mutex<()>,
}

fn elapsed_since(now: DateTime<Utc>, then: Option<DateTime<Utc>>, window: Duration) -> bool {
    match then {
        None => true,
        Some(t) => (now - t).to_std().is_ok_and(|d| d >= window),
    }
}

impl KeySource {
    pub(crate) fn discovery_url(
        authority: &Url,
        tenant: &str,
        version: TokenVersion,
    ) -> Option<Url> {
        let base = authority.as_str().trim_end_matches('/');
        let url = match version {
            TokenVersion::V1 => format!("{base}/{tenant}/.well-known/openid-configuration"),
            TokenVersion::V2 => format!("{base}/{tenant}/v2.0/.well-known/openid-configuration"),
        };
        Url::parse(&url).ok()
    }

    pub(crate) fn online(authority: &Url, tenant: &str, version: TokenVersion) -> Self {
        Self {
            tenant: tenant.to_owned(),
            discovery_url: Self::discovery_url(authority, tenant, version),
            authority: authority.clone(),
            state: RwLock::new(State::default()),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn offline(authority: &Url, tenant: &str, issuer: String, keys: KeySet) -> Self {
        let state = State {
            loaded: Some(Arc::new(Loaded { issuer, keys })),
            ..State::default()
        };
        Self {
            tenant: tenant.to_owned(),
            discovery_url: None,
            authority: authority.clone(),
            state: RwLock::new(state),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn write<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    pub(crate) fn is_loaded(&self) -> bool {
        self.read(|s| s.loaded.is_some())
    }

    fn in_cooldown(&self, s: &State, now: DateTime<Utc>, timing: &Timing) -> bool {
        s.last_failed && !elapsed_since(now, s.last_attempt, timing.failure_cooldown)
    }

    /// Loads now unless loaded and fresh; used by `warm_up`.
    pub(crate) async fn ensure_loaded(
        &self,
        fetcher: &Fetcher,
        now: DateTime<Utc>,
    ) -> Result<(), VerifyError> {
        if self.is_loaded() || self.discovery_url.is_none() {
            return if self.is_loaded() {
                Ok(())
            } else {
                Err(VerifyError::KeysUnavailable("no keys".to_owned()))
            };
        }
        let _guard = self.refresh.lock().await;
        if self.is_loaded() {
            return Ok(());
        }
        self.refresh_now(fetcher, now)
            .await
            .map_err(VerifyError::KeysUnavailable)
    }

    /// Returns the loaded set and the key for `kid`, refreshing as the policy allows.
    pub(crate) async fn key(
        &self,
        kid: &str,
        fetcher: &Fetcher,
        now: DateTime<Utc>,
    ) -> Result<Arc<Loaded>, VerifyError> {
        let timing = &fetcher.timing;
        let (loaded, refresh_due, kid_refresh_allowed, cooldown) = self.read(|s| {
            (
                s.loaded.clone(),
                s.next_refresh.is_some_and(|t| now >= t),
                // After a failed fetch, the cooldown (checked separately) is the only throttle.
                s.last_failed
                    || elapsed_since(now, s.last_kid_refresh, timing.kid_refresh_interval),
                self.in_cooldown(s, now, timing),
            )
        });
        let online = self.discovery_url.is_some();
        match loaded {
            Some(l) if l.keys.keys.contains_key(kid) => {
                if online && refresh_due && !cooldown {
                    // Proactive refresh: one caller does it; the others keep using the current keys.
                    if let Ok(_guard) = self.refresh.try_lock()
                        && self.read(|s| s.next_refresh.is_some_and(|t| now >= t))
                    {
                        // A failure keeps the old keys; it is logged inside.
                        let _ = self.refresh_now(fetcher, now).await;
                    }
                    return self.lookup(kid);
                }
                lookup_in(&l, kid)
            }
            Some(_) => {
                if online && kid_refresh_allowed && !cooldown {
                    let _guard = self.refresh.lock().await;
                    // Re-check: a concurrent caller may have refreshed while we waited.
                    let still_allowed = self.read(|s| {
                        (s.last_failed
                            || elapsed_since(now, s.last_kid_refresh, timing.kid_refresh_interval))
                            && !self.in_cooldown(s, now, timing)
                    });
                    if still_allowed {
                        self.write(|s| s.last_kid_refresh = Some(now));
                        tracing::info!(tenant = %self.tenant, kid = %quote(kid), "unknown kid: refreshing signing keys");
                        let _ = self.refresh_now(fetcher, now).await;
                    }
                }
                match self.lookup(kid) {
                    // The key set could not be confirmed (the last fetch failed): the kid may be
                    // a freshly rolled key, so ask the caller to retry (503) instead of 401,
                    // which Azure Monitor never retries.
                    Err(VerifyError::UnknownKid(k)) if online && self.read(|s| s.last_failed) => {
                        Err(VerifyError::KeysUnavailable(format!(
                            "unknown signing key id {k} and the key refresh failed; retry later"
                        )))
                    }
                    other => other,
                }
            }
            None => {
                if !online {
                    return Err(VerifyError::KeysUnavailable("no keys loaded".to_owned()));
                }
                if cooldown {
                    return Err(VerifyError::KeysUnavailable(
                        "metadata fetch failed recently; in cooldown".to_owned(),
                    ));
                }
                let _guard = self.refresh.lock().await;
                let (loaded_now, cooldown_now) =
                    self.read(|s| (s.loaded.is_some(), self.in_cooldown(s, now, timing)));
                if !loaded_now {
                    if cooldown_now {
                        return Err(VerifyError::KeysUnavailable(
                            "metadata fetch failed recently; in cooldown".to_owned(),
                        ));
                    }
                    self.refresh_now(fetcher, now)
                        .await
                        .map_err(VerifyError::KeysUnavailable)?;
                }
                self.lookup(kid)
            }
        }
    }

    fn lookup(&self, kid: &str) -> Result<Arc<Loaded>, VerifyError> {
        match self.read(|s| s.loaded.clone()) {
            Some(l) => lookup_in(&l, kid),
            None => Err(VerifyError::KeysUnavailable("no keys loaded".to_owned())),
        }
    }

    /// Fetches discovery and JWKS; on success replaces the key set, on failure keeps the old one.
    /// The caller holds the refresh lock.
    async fn refresh_now(&self, fetcher: &Fetcher, now: DateTime<Utc>) -> Result<(), String> {
        self.write(|s| {
            s.last_attempt = Some(now);
        });
        match self.fetch(fetcher).await {
            Ok(loaded) => {
                let jitter = rand::random_range(0..=fetcher.timing.refresh_interval.as_secs());
                let next = chrono::Duration::from_std(
                    fetcher.timing.refresh_interval + Duration::from_secs(jitter),
                )
                .ok()
                .and_then(|d| now.checked_add_signed(d));
                tracing::debug!(tenant = %self.tenant, keys = loaded.keys.keys.len(), "signing keys loaded");
                self.write(|s| {
                    s.loaded = Some(Arc::new(loaded));
                    s.last_failed = false;
                    s.next_refresh = next;
                });
                Ok(())
            }
            Err(reason) => {
                tracing::warn!(tenant = %self.tenant, %reason, "signing key refresh failed; keeping previous keys");
                self.write(|s| s.last_failed = true);
                Err(reason)
            }
        }
    }

    async fn fetch(&self, fetcher: &Fetcher) -> Result<Loaded, String> {
        let discovery_url = self.discovery_url.as_ref().ok_or("offline key source")?;
        let doc = fetcher.get(discovery_url).await?;
        let doc: Discovery = serde_json::from_slice(&doc)
            .map_err(|e| format!("discovery document {discovery_url}: {e}"))?;
        let issuer = doc.issuer.replace("{tenantid}", &self.tenant);
        if !names_tenant(&issuer, &self.tenant) {
            return Err(format!(
                "discovery issuer {} does not name tenant {}",
                quote(&issuer),
                self.tenant
            ));
        }
        let jwks_uri = Url::parse(&doc.jwks_uri).map_err(|e| format!("jwks_uri: {e}"))?;
        check_same_origin(&self.authority, &jwks_uri)?;
        let body = fetcher.get(&jwks_uri).await?;
        let keys = KeySet::parse(&body)?;
        if !keys.dropped.is_empty() {
            tracing::debug!(tenant = %self.tenant, dropped = ?keys.dropped, "JWKS entries ignored");
        }
        if keys.keys.is_empty() {
            return Err(format!("JWKS {jwks_uri} holds no usable RSA signing key"));
        }
        Ok(Loaded { issuer, keys })
    }
}

fn lookup_in(l: &Arc<Loaded>, kid: &str) -> Result<Arc<Loaded>, VerifyError> {
    if l.keys.keys.contains_key(kid) {
        Ok(Arc::clone(l))
    } else {
        Err(VerifyError::UnknownKid(quote(kid)))
    }
}

impl Loaded {
    /// The key for `kid`; the caller got this set from [`KeySource::key`], which checked it.
    pub(crate) fn key(&self, kid: &str) -> Result<&SigningKey, VerifyError> {
        self.keys
            .keys
            .get(kid)
            .ok_or_else(|| VerifyError::UnknownKid(quote(kid)))
    }
}

#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// Whether one path segment of the issuer URL is exactly the tenant id.
pub(crate) fn names_tenant(issuer: &str, tenant: &str) -> bool {
    Url::parse(issuer)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .map(|mut segs| segs.any(|s| s.eq_ignore_ascii_case(tenant)))
        })
        .unwrap_or(false)
}

/// The JWKS must live on the authority's scheme, host and port: never follow a discovery document
/// elsewhere.
fn check_same_origin(authority: &Url, jwks: &Url) -> Result<(), String> {
    if jwks.scheme() != authority.scheme()
        || jwks.host_str() != authority.host_str()
        || jwks.port_or_known_default() != authority.port_or_known_default()
    {
        return Err(format!(
            "jwks_uri {jwks} is not on the authority {authority}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_urls_follow_microsoft_layout() {
        let a = Url::parse("https://login.microsoftonline.com").unwrap();
        assert_eq!(
            KeySource::discovery_url(&a, "t", TokenVersion::V2)
                .unwrap()
                .as_str(),
            "https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration"
        );
        assert_eq!(
            KeySource::discovery_url(&a, "t", TokenVersion::V1)
                .unwrap()
                .as_str(),
            "https://login.microsoftonline.com/t/.well-known/openid-configuration"
        );
    }

    #[test]
    fn origin_and_tenant_checks() {
        let a = Url::parse("https://login.microsoftonline.com").unwrap();
        assert!(
            check_same_origin(
                &a,
                &Url::parse("https://login.microsoftonline.com/t/keys").unwrap()
            )
            .is_ok()
        );
        assert!(
            check_same_origin(&a, &Url::parse("https://evil.example/t/keys").unwrap()).is_err()
        );
        assert!(
            check_same_origin(
                &a,
                &Url::parse("http://login.microsoftonline.com/t/keys").unwrap()
            )
            .is_err()
        );
        assert!(names_tenant("https://sts.windows.net/abc/", "abc"));
        assert!(names_tenant(
            "https://login.microsoftonline.com/abc/v2.0",
            "abc"
        ));
        assert!(!names_tenant(
            "https://login.microsoftonline.com/abcd/v2.0",
            "abc"
        ));
    }
}
