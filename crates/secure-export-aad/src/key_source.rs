//! OIDC discovery and the JWKS cache for one (tenant, token version).
//!
//! Policy: the first use (or [`warm_up`](crate::TokenVerifier::warm_up)) loads discovery and keys;
//! a proactive refresh runs when a request arrives after the refresh time (12 to 24 h, jittered);
//! an unknown `kid` triggers at most one refresh per throttle window (5 min); a failed fetch
//! starts a cooldown; the last good keys are kept whenever a refresh fails. While the last fetch
//! has failed, an unknown `kid` is `keys_unavailable` (503, retried by Azure Monitor) rather than
//! `unknown_kid` (401), and a new fetch is tried after each cooldown.
//!
//! Every fetch runs as a spawned Tokio task, detached from the request that started it: a caller
//! that hangs up (its future dropped) never cancels a fetch. At most one fetch per source is in
//! flight; callers that need it join it and wait for it (a wait bounded by the per-request fetch
//! timeout). The throttle window and the cooldown start when a fetch completes, so a fetch only
//! counts once it is done, and an in-flight fetch is joined, never throttled.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use url::Url;

use crate::clock::Clock;
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

/// Fetches metadata over HTTP with a timeout, a size cap and no redirects; the clock stamps when
/// a fetch completes.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    pub(crate) http: reqwest::Client,
    pub(crate) timing: Timing,
    pub(crate) clock: Arc<dyn Clock>,
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
    /// When the last fetch completed (successfully or not).
    last_attempt: Option<DateTime<Utc>>,
    last_failed: bool,
    /// Why the last failed fetch failed.
    last_error: Option<String>,
    /// When the last fetch that served an unknown `kid` completed.
    last_kid_refresh: Option<DateTime<Utc>>,
    in_flight: Option<InFlight>,
}

/// The fetch under way.
#[derive(Debug)]
struct InFlight {
    /// Turns `true` once the fetch has completed and its outcome is in the state.
    done: watch::Receiver<bool>,
    /// An unknown `kid` started or joined it: its completion starts the unknown-kid throttle.
    for_kid: bool,
}

impl State {
    fn in_cooldown(&self, now: DateTime<Utc>, timing: &Timing) -> bool {
        self.last_failed && !elapsed_since(now, self.last_attempt, timing.failure_cooldown)
    }

    /// The proactive refresh is due and may start now.
    fn refresh_wanted(&self, now: DateTime<Utc>, timing: &Timing) -> bool {
        self.next_refresh.is_some_and(|t| now >= t)
            && self.in_flight.is_none()
            && !self.in_cooldown(now, timing)
    }

    fn kid_refresh_allowed(&self, now: DateTime<Utc>, timing: &Timing) -> bool {
        // After a failed fetch, the cooldown is the only throttle.
        (self.last_failed || elapsed_since(now, self.last_kid_refresh, timing.kid_refresh_interval))
            && !self.in_cooldown(now, timing)
    }

    fn failure(&self) -> VerifyError {
        VerifyError::KeysUnavailable(
            self.last_error
                .clone()
                .unwrap_or_else(|| "no keys loaded".to_owned()),
        )
    }
}

/// Keys and issuer for one (tenant, version).
#[derive(Debug)]
pub(crate) struct KeySource {
    tenant: String,
    /// `None` in offline mode: the preloaded keys are all there is.
    discovery_url: Option<Url>,
    authority: Url,
    state: RwLock<State>,
}

/// What a caller does after looking at the state.
enum Step {
    /// Answer from these keys, no fetch.
    Ready(Arc<Loaded>),
    /// Answer from the current keys after an unknown `kid`, no fetch.
    Lookup,
    /// Wait for the fetch in flight (joined).
    Wait(watch::Receiver<bool>),
    /// Spawn this fetch (once the state's lock is released), then wait for it.
    Start(Started),
    /// Not loaded and the last fetch failed within the cooldown.
    Cooldown,
    /// A fetch is needed but there is no Tokio runtime to run it on.
    NoRuntime,
}

/// Owns a started fetch; records its outcome exactly once, even if the task is dropped unfinished
/// (runtime shutting down) or the fetch panics.
struct FetchTask {
    source: Arc<KeySource>,
    fetcher: Fetcher,
    done: watch::Sender<bool>,
    finished: bool,
}

impl FetchTask {
    async fn run(mut self) {
        let result = self.source.fetch(&self.fetcher).await;
        self.finish(result);
    }

    fn finish(&mut self, result: Result<Loaded, String>) {
        self.finished = true;
        self.source.complete(result, &self.fetcher);
        self.done.send_replace(true);
    }
}

impl Drop for FetchTask {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(Err("key fetch abandoned (runtime shutting down)".to_owned()));
        }
    }
}

/// A fetch registered as in flight but not spawned yet.
struct Started {
    runtime: tokio::runtime::Handle,
    task: FetchTask,
    done: watch::Receiver<bool>,
}

impl Started {
    /// Spawns the fetch and returns what to wait on. Must be called without the state's lock
    /// held: a runtime that is shutting down drops the task at once, and its guard then records
    /// the failure in the state.
    fn spawn(self) -> watch::Receiver<bool> {
        drop(self.runtime.spawn(self.task.run()));
        self.done
    }
}

const NO_RUNTIME: &str =
    "signing keys can only be fetched inside a Tokio runtime; none is running on this thread";

fn elapsed_since(now: DateTime<Utc>, then: Option<DateTime<Utc>>, window: Duration) -> bool {
    match then {
        None => true,
        Some(t) => (now - t).to_std().is_ok_and(|d| d >= window),
    }
}

/// Waits until the fetch behind `done` has completed. Dropping this future stops only the wait.
async fn wait(mut done: watch::Receiver<bool>) {
    // `Err` means the sender is gone, which happens only after the outcome was recorded.
    let _ = done.wait_for(|d| *d).await;
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

    /// Loads now unless loaded (joining a fetch in flight); used by `warm_up`. The load goes on
    /// if the caller stops waiting.
    pub(crate) async fn ensure_loaded(
        self: &Arc<Self>,
        fetcher: &Fetcher,
    ) -> Result<(), VerifyError> {
        if self.discovery_url.is_none() {
            return if self.is_loaded() {
                Ok(())
            } else {
                Err(VerifyError::KeysUnavailable("no keys".to_owned()))
            };
        }
        let step = self.write(|s| {
            if let Some(l) = &s.loaded {
                Step::Ready(Arc::clone(l))
            } else if let Some(f) = &s.in_flight {
                Step::Wait(f.done.clone())
            } else {
                self.start(s, false, fetcher)
            }
        });
        match step {
            Step::Ready(_) => return Ok(()),
            Step::NoRuntime => return Err(VerifyError::KeysUnavailable(NO_RUNTIME.to_owned())),
            Step::Wait(done) => wait(done).await,
            Step::Start(started) => wait(started.spawn()).await,
            Step::Lookup | Step::Cooldown => {}
        }
        self.read(|s| {
            if s.loaded.is_some() {
                Ok(())
            } else {
                Err(s.failure())
            }
        })
    }

    /// Returns the loaded set and the key for `kid`, refreshing as the policy allows. A fetch
    /// this call starts or joins goes on if the call is dropped.
    pub(crate) async fn key(
        self: &Arc<Self>,
        kid: &str,
        fetcher: &Fetcher,
        now: DateTime<Utc>,
    ) -> Result<Arc<Loaded>, VerifyError> {
        if self.discovery_url.is_none() {
            return self.lookup(kid);
        }
        let timing = &fetcher.timing;
        // The common cases, under the read lock: the key is known and no refresh is to start, or
        // it is unknown and the throttle (or cooldown) allows no fetch and none is in flight.
        let fast = self.read(|s| match &s.loaded {
            Some(l) if l.keys.keys.contains_key(kid) => {
                (!s.refresh_wanted(now, timing)).then(|| Step::Ready(Arc::clone(l)))
            }
            Some(_) if s.in_flight.is_none() && !s.kid_refresh_allowed(now, timing) => {
                Some(Step::Lookup)
            }
            _ => None,
        });
        let step = match fast {
            Some(step) => step,
            None => self.decide(kid, fetcher, now),
        };
        match step {
            Step::Ready(l) => return Ok(l),
            Step::Cooldown => {
                return Err(VerifyError::KeysUnavailable(
                    "metadata fetch failed recently; in cooldown".to_owned(),
                ));
            }
            Step::NoRuntime => return Err(VerifyError::KeysUnavailable(NO_RUNTIME.to_owned())),
            Step::Wait(done) => wait(done).await,
            Step::Start(started) => wait(started.spawn()).await,
            Step::Lookup => {}
        }
        let (loaded, last_failed) = self.read(|s| (s.loaded.clone(), s.last_failed));
        let Some(loaded) = loaded else {
            return Err(self.read(State::failure));
        };
        match lookup_in(&loaded, kid) {
            // The key set could not be confirmed (the last fetch failed): the kid may be a
            // freshly rolled key, so ask the caller to retry (503) instead of 401, which Azure
            // Monitor never retries.
            Err(VerifyError::UnknownKid(k)) if last_failed => Err(VerifyError::KeysUnavailable(
                format!("unknown signing key id {k} and the key refresh failed; retry later"),
            )),
            other => other,
        }
    }

    /// What [`key`](Self::key) does when the read-locked fast path did not settle it: one
    /// decision under the write lock, so concurrent callers see each other's fetch.
    fn decide(self: &Arc<Self>, kid: &str, fetcher: &Fetcher, now: DateTime<Utc>) -> Step {
        let timing = &fetcher.timing;
        self.write(|s| match s.loaded.clone() {
            Some(l) if l.keys.keys.contains_key(kid) => {
                if s.refresh_wanted(now, timing) {
                    // Proactive refresh: this caller waits for it; the others keep using the
                    // current keys meanwhile.
                    match self.start(s, false, fetcher) {
                        Step::NoRuntime => Step::Ready(l),
                        step => step,
                    }
                } else {
                    Step::Ready(l)
                }
            }
            Some(_) => {
                if let Some(f) = &mut s.in_flight {
                    f.for_kid = true;
                    Step::Wait(f.done.clone())
                } else if s.kid_refresh_allowed(now, timing) {
                    tracing::info!(tenant = %self.tenant, kid = %quote(kid), "unknown kid: refreshing signing keys");
                    self.start(s, true, fetcher)
                } else {
                    Step::Lookup
                }
            }
            None => {
                if let Some(f) = &s.in_flight {
                    Step::Wait(f.done.clone())
                } else if s.in_cooldown(now, timing) {
                    Step::Cooldown
                } else {
                    self.start(s, false, fetcher)
                }
            }
        })
    }

    fn lookup(&self, kid: &str) -> Result<Arc<Loaded>, VerifyError> {
        match self.read(|s| s.loaded.clone()) {
            Some(l) => lookup_in(&l, kid),
            None => Err(VerifyError::KeysUnavailable("no keys loaded".to_owned())),
        }
    }

    /// Registers a fetch as in flight (the caller holds the state's write lock and found none)
    /// and returns the step that spawns it, detached from the caller, and waits for it.
    fn start(self: &Arc<Self>, s: &mut State, for_kid: bool, fetcher: &Fetcher) -> Step {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(tenant = %self.tenant, "{NO_RUNTIME}");
            return Step::NoRuntime;
        };
        let (tx, rx) = watch::channel(false);
        s.in_flight = Some(InFlight {
            done: rx.clone(),
            for_kid,
        });
        let task = FetchTask {
            source: Arc::clone(self),
            fetcher: fetcher.clone(),
            done: tx,
            finished: false,
        };
        Step::Start(Started {
            runtime,
            task,
            done: rx,
        })
    }

    /// Records a completed fetch: on success replaces the key set, on failure keeps the old one.
    /// Either way the cooldown and (if an unknown kid asked for it) the throttle window start now.
    fn complete(&self, result: Result<Loaded, String>, fetcher: &Fetcher) {
        let now = fetcher.clock.now();
        let next = match &result {
            Ok(_) => {
                let jitter = rand::random_range(0..=fetcher.timing.refresh_interval.as_secs());
                chrono::Duration::from_std(
                    fetcher.timing.refresh_interval + Duration::from_secs(jitter),
                )
                .ok()
                .and_then(|d| now.checked_add_signed(d))
            }
            Err(_) => None,
        };
        match &result {
            Ok(loaded) => {
                tracing::debug!(tenant = %self.tenant, keys = loaded.keys.keys.len(), "signing keys loaded");
            }
            Err(reason) => {
                tracing::warn!(tenant = %self.tenant, %reason, "signing key refresh failed; keeping previous keys");
            }
        }
        self.write(|s| {
            if s.in_flight.take().is_some_and(|f| f.for_kid) {
                s.last_kid_refresh = Some(now);
            }
            s.last_attempt = Some(now);
            match result {
                Ok(loaded) => {
                    s.loaded = Some(Arc::new(loaded));
                    s.last_failed = false;
                    s.last_error = None;
                    s.next_refresh = next;
                }
                Err(reason) => {
                    s.last_failed = true;
                    s.last_error = Some(reason);
                }
            }
        });
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
