//! The lookup cache: positive and negative TTLs, a size bound and single flight.
//!
//! Every CMDB lookup goes through [`LookupCache::get`]. A fresh entry answers at once (a hit).
//! Otherwise (a miss) the caller either joins the lookup already running for the same key or
//! starts one on a background task; it then waits at most until its deadline. A lookup that
//! outlives the deadline keeps running (up to the lookup timeout) and fills the cache for the
//! next alert.
//!
//! The background task is the only place a request is sent from: it first takes a permit of
//! the binder's semaphore (at most `max_concurrent_lookups` requests at a time, across every
//! bind of the binder, including those still running after their bind gave up), then waits
//! for the [`LookupPacer`] if one is configured. The lookup timeout covers the waits too.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use secure_export_itsm::RetryClass;
use tokio::sync::{Semaphore, watch};

use crate::clock::Clock;
use crate::{CiRecord, CmdbLookup, LookupError, LookupPacer};

/// What a lookup answered: the CIs found (possibly none) or why it failed.
pub(crate) type Outcome = Result<Arc<[CiRecord]>, LookupError>;

/// Counters of the binder's lookup cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Requests answered by a fresh cache entry (found, not found, or a recent failure).
    pub hits: u64,
    /// Requests that found no fresh entry (each either started a lookup or joined one).
    pub misses: u64,
    /// Lookups actually sent to the CMDB (counted when sent: after the concurrency permit and
    /// the pacer).
    pub lookups: u64,
    /// Misses that joined a lookup already in flight for the same key (single flight).
    pub coalesced: u64,
    /// Lookups that failed or hit the lookup timeout.
    pub failures: u64,
    /// Requests whose caller stopped waiting at its deadline.
    pub deadline_exceeded: u64,
    /// Entries dropped to keep the cache within its size bound.
    pub evictions: u64,
    /// Entries currently held (completed and in flight).
    pub entries: u64,
}

/// Cache settings.
#[derive(Debug, Clone)]
pub(crate) struct CacheConfig {
    pub(crate) positive_ttl: Duration,
    pub(crate) negative_ttl: Duration,
    pub(crate) failure_ttl: Duration,
    pub(crate) max_entries: usize,
    pub(crate) lookup_timeout: Duration,
}

/// What to ask the CMDB.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Query {
    /// By normalized (lower-case) ARM resource id.
    ResourceId(String),
    /// By name (as received), optionally within one class.
    Name {
        name: String,
        class_hint: Option<String>,
    },
}

impl Query {
    /// The cache key: resource ids are already lower-case; names compare case-insensitively
    /// (Azure resource names are case-insensitive).
    fn key(&self) -> Key {
        match self {
            Self::ResourceId(id) => Key::ResourceId(id.to_ascii_lowercase()),
            Self::Name { name, class_hint } => Key::Name {
                name: name.to_lowercase(),
                class_hint: class_hint.as_ref().map(|c| c.to_ascii_lowercase()),
            },
        }
    }

    async fn run(&self, lookup: &dyn CmdbLookup) -> Result<Vec<CiRecord>, LookupError> {
        match self {
            Self::ResourceId(id) => lookup.by_resource_id(id).await,
            Self::Name { name, class_hint } => lookup.by_name(name, class_hint.as_deref()).await,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    ResourceId(String),
    Name {
        name: String,
        class_hint: Option<String>,
    },
}

/// Why a cached lookup gave no answer.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The lookup failed (now, or recently and the failure is still cached).
    Lookup(LookupError),
    /// The caller's deadline passed first; the lookup goes on in the background.
    Deadline(Duration),
    /// No Tokio runtime to run the lookup on.
    NoRuntime,
    /// The lookup task ended without an answer (the backend panicked).
    Abandoned,
}

impl Failure {
    /// The lookup was refused by the [`CmdbLookup`] itself (never sent): not a CMDB failure.
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(self, Self::Lookup(LookupError::Refused(_)))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lookup(err) => write!(f, "{err}"),
            Self::Deadline(after) => write!(
                f,
                "cmdb lookup did not answer within the {after:?} binding deadline (it continues in the background)"
            ),
            Self::NoRuntime => f.write_str("cmdb lookups need a Tokio runtime and none is running"),
            Self::Abandoned => f.write_str("cmdb lookup ended without an answer"),
        }
    }
}

enum Slot {
    Ready {
        outcome: Outcome,
        expires_at: Instant,
        last_used: u64,
    },
    Pending {
        rx: watch::Receiver<Option<Outcome>>,
        generation: u64,
    },
}

#[derive(Default)]
struct State {
    map: HashMap<Key, Slot>,
    tick: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    lookups: AtomicU64,
    coalesced: AtomicU64,
    failures: AtomicU64,
    deadline_exceeded: AtomicU64,
    evictions: AtomicU64,
}

struct Shared {
    config: CacheConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    counters: Counters,
    /// One permit per request in flight (never closed).
    permits: Semaphore,
    /// The configured number of permits.
    max_concurrent: usize,
    pacer: Option<Arc<dyn LookupPacer>>,
}

/// A clonable handle to one cache.
#[derive(Clone)]
pub(crate) struct LookupCache {
    shared: Arc<Shared>,
}

impl fmt::Debug for LookupCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LookupCache")
            .field("config", &self.shared.config)
            .field("clock", &self.shared.clock)
            .field("max_concurrent", &self.shared.max_concurrent)
            .field("pacer", &self.shared.pacer)
            .field("stats", &self.stats())
            .finish()
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ttl_for(&self, outcome: &Outcome) -> Duration {
        match outcome {
            Ok(found) if found.is_empty() => self.config.negative_ttl,
            Ok(_) => self.config.positive_ttl,
            Err(LookupError::Refused(_)) => self.config.negative_ttl,
            Err(_) => self.config.failure_ttl,
        }
    }

    /// Replaces the pending slot of `generation` with the outcome.
    fn complete(&self, key: &Key, generation: u64, outcome: Outcome) {
        let expires_at = self.clock.now().checked_add(self.ttl_for(&outcome));
        let mut state = self.lock();
        let is_ours = matches!(state.map.get(key), Some(Slot::Pending { generation: g, .. }) if *g == generation);
        if !is_ours {
            return;
        }
        match expires_at {
            Some(expires_at) => {
                state.tick += 1;
                let last_used = state.tick;
                state.map.insert(
                    key.clone(),
                    Slot::Ready {
                        outcome,
                        expires_at,
                        last_used,
                    },
                );
            }
            None => {
                state.map.remove(key);
            }
        }
    }

    /// Removes the pending slot of `generation` (its task ended without completing).
    fn abandon(&self, key: &Key, generation: u64) {
        let mut state = self.lock();
        if matches!(state.map.get(key), Some(Slot::Pending { generation: g, .. }) if *g == generation)
        {
            state.map.remove(key);
        }
    }

    /// Sends one request: holding a permit for its whole run, after the pacer's go; not at
    /// all if `deadline` passed while waiting for them.
    async fn request(
        &self,
        query: &Query,
        lookup: &dyn CmdbLookup,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<CiRecord>, LookupError> {
        // `acquire` fails only on a closed semaphore, and this one is never closed.
        let _permit = self.permits.acquire().await.ok();
        if let Some(pacer) = &self.pacer {
            pacer.acquire().await;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(LookupError::Timeout(self.config.lookup_timeout));
        }
        bump(&self.counters.lookups);
        let started = tokio::time::Instant::now();
        let result = query.run(lookup).await;
        if let Some(pacer) = &self.pacer {
            match &result {
                Ok(_) => pacer.succeeded(started),
                Err(LookupError::Backend(err)) => {
                    if let RetryClass::Throttled(wait) = err.retry_class() {
                        pacer.throttled(wait);
                    }
                }
                Err(_) => {}
            }
        }
        result
    }

    /// Makes room for one more entry: drops expired entries, then least recently used ones.
    fn make_room(&self, state: &mut State, now: Instant) {
        if state.map.len() < self.config.max_entries {
            return;
        }
        let before = state.map.len();
        state.map.retain(|_, slot| match slot {
            Slot::Ready { expires_at, .. } => *expires_at > now,
            Slot::Pending { .. } => true,
        });
        while state.map.len() >= self.config.max_entries {
            let oldest = state
                .map
                .iter()
                .filter_map(|(key, slot)| match slot {
                    Slot::Ready { last_used, .. } => Some((*last_used, key)),
                    Slot::Pending { .. } => None,
                })
                .min_by_key(|(last_used, _)| *last_used)
                .map(|(_, key)| key.clone());
            // Only in-flight lookups left: they are bounded by concurrency, keep them.
            let Some(oldest) = oldest else { break };
            state.map.remove(&oldest);
        }
        let dropped = before.saturating_sub(state.map.len());
        self.counters
            .evictions
            .fetch_add(dropped as u64, Ordering::Relaxed);
    }
}

/// Drops the pending slot if the lookup task ends (panics, is cancelled) before completing.
struct PendingGuard {
    shared: Arc<Shared>,
    key: Key,
    generation: u64,
    armed: bool,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if self.armed {
            self.shared.abandon(&self.key, self.generation);
        }
    }
}

impl LookupCache {
    /// A cache with the default concurrency bound and no pacer.
    #[cfg(test)]
    pub(crate) fn new(config: CacheConfig, clock: Arc<dyn Clock>) -> Self {
        Self::with_limits(config, clock, crate::DEFAULT_MAX_CONCURRENT_LOOKUPS, None)
    }

    /// A cache sending at most `max_concurrent` requests at a time (at least one), each after
    /// `pacer`'s go.
    pub(crate) fn with_limits(
        config: CacheConfig,
        clock: Arc<dyn Clock>,
        max_concurrent: usize,
        pacer: Option<Arc<dyn LookupPacer>>,
    ) -> Self {
        let max_concurrent = max_concurrent.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            shared: Arc::new(Shared {
                config,
                clock,
                state: Mutex::new(State::default()),
                counters: Counters::default(),
                permits: Semaphore::new(max_concurrent),
                max_concurrent,
                pacer,
            }),
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let c = &self.shared.counters;
        let entries = self.shared.lock().map.len();
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            lookups: c.lookups.load(Ordering::Relaxed),
            coalesced: c.coalesced.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            deadline_exceeded: c.deadline_exceeded.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            entries: entries as u64,
        }
    }

    /// Answers `query` from the cache, or from a (shared) lookup, waiting until `deadline`.
    pub(crate) async fn get(
        &self,
        query: &Query,
        lookup: &Arc<dyn CmdbLookup>,
        deadline: tokio::time::Instant,
        budget: Duration,
    ) -> Result<Arc<[CiRecord]>, Failure> {
        let shared = &self.shared;
        let key = query.key();
        let now = shared.clock.now();
        let mut rx = {
            let mut state = shared.lock();
            state.tick += 1;
            let tick = state.tick;
            match state.map.get_mut(&key) {
                Some(Slot::Ready {
                    outcome,
                    expires_at,
                    last_used,
                }) if *expires_at > now => {
                    bump(&shared.counters.hits);
                    *last_used = tick;
                    return outcome.clone().map_err(Failure::Lookup);
                }
                // Waiting (on a deadline) and spawning both need a Tokio runtime.
                _ if tokio::runtime::Handle::try_current().is_err() => {
                    bump(&shared.counters.misses);
                    return Err(Failure::NoRuntime);
                }
                Some(Slot::Pending { rx, .. }) => {
                    bump(&shared.counters.misses);
                    bump(&shared.counters.coalesced);
                    rx.clone()
                }
                _ => {
                    bump(&shared.counters.misses);
                    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                        return Err(Failure::NoRuntime);
                    };
                    state.map.remove(&key);
                    shared.make_room(&mut state, now);
                    let (tx, rx) = watch::channel(None);
                    state.map.insert(
                        key.clone(),
                        Slot::Pending {
                            rx: rx.clone(),
                            generation: tick,
                        },
                    );
                    let guard = PendingGuard {
                        shared: Arc::clone(shared),
                        key,
                        generation: tick,
                        armed: true,
                    };
                    runtime.spawn(run_lookup(guard, tx, query.clone(), Arc::clone(lookup)));
                    rx
                }
            }
        };
        match tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await {
            Ok(Ok(answer)) => match answer.as_ref() {
                Some(outcome) => outcome.clone().map_err(Failure::Lookup),
                None => Err(Failure::Abandoned),
            },
            Ok(Err(_closed)) => Err(Failure::Abandoned),
            Err(_elapsed) => {
                bump(&shared.counters.deadline_exceeded);
                Err(Failure::Deadline(budget))
            }
        }
    }
}

/// The background half of a lookup: runs it (permit, pacer, request) under the lookup timeout,
/// caches and publishes the outcome.
async fn run_lookup(
    mut guard: PendingGuard,
    tx: watch::Sender<Option<Outcome>>,
    query: Query,
    lookup: Arc<dyn CmdbLookup>,
) {
    let limit = guard.shared.config.lookup_timeout;
    // A huge configured timeout must not overflow the clock (that panics): cap it.
    let now = tokio::time::Instant::now();
    let deadline = now
        .checked_add(limit)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400));
    let request = guard.shared.request(&query, lookup.as_ref(), deadline);
    let outcome: Outcome = match tokio::time::timeout_at(deadline, request).await {
        Ok(Ok(found)) => Ok(Arc::from(found)),
        Ok(Err(err)) => Err(err),
        Err(_elapsed) => Err(LookupError::Timeout(limit)),
    };
    if let Err(err) = &outcome {
        bump(&guard.shared.counters.failures);
        tracing::warn!(error = %err, "cmdb lookup failed");
    }
    guard
        .shared
        .complete(&guard.key, guard.generation, outcome.clone());
    guard.armed = false;
    // Nobody listening is fine: the outcome is cached.
    let _ = tx.send(Some(outcome));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use async_trait::async_trait;
    use std::sync::atomic::AtomicUsize;

    #[derive(Debug, Default)]
    struct Counting {
        calls: AtomicUsize,
        fail: bool,
    }

    #[async_trait]
    impl CmdbLookup for Counting {
        async fn by_resource_id(&self, resource_id: &str) -> Result<Vec<CiRecord>, LookupError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            if self.fail {
                return Err(LookupError::Timeout(Duration::from_millis(1)));
            }
            Ok(if resource_id.ends_with("missing") {
                Vec::new()
            } else {
                vec![CiRecord {
                    id: format!("ci:{resource_id}"),
                    name: resource_id.to_owned(),
                    class: None,
                    source: crate::CiSource::ResourceId,
                }]
            })
        }

        async fn by_name(&self, _: &str, _: Option<&str>) -> Result<Vec<CiRecord>, LookupError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(Vec::new())
        }
    }

    fn cache(max_entries: usize, clock: Arc<ManualClock>) -> LookupCache {
        LookupCache::new(
            CacheConfig {
                positive_ttl: Duration::from_secs(600),
                negative_ttl: Duration::from_secs(60),
                failure_ttl: Duration::from_secs(10),
                max_entries,
                lookup_timeout: Duration::from_secs(5),
            },
            clock,
        )
    }

    fn far() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn positive_negative_and_failure_ttls() {
        let clock = Arc::new(ManualClock::new());
        let cache = cache(100, Arc::clone(&clock));
        let counting = Arc::new(Counting::default());
        let lookup: Arc<dyn CmdbLookup> = counting.clone();
        let found = Query::ResourceId("/subscriptions/s/x".to_owned());
        let missing = Query::ResourceId("/subscriptions/s/missing".to_owned());
        let budget = Duration::from_secs(2);

        assert_eq!(
            cache
                .get(&found, &lookup, far(), budget)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            cache
                .get(&missing, &lookup, far(), budget)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(counting.calls.load(Ordering::SeqCst), 2);

        clock.advance(Duration::from_secs(59));
        cache.get(&found, &lookup, far(), budget).await.unwrap();
        cache.get(&missing, &lookup, far(), budget).await.unwrap();
        assert_eq!(counting.calls.load(Ordering::SeqCst), 2, "both still fresh");

        clock.advance(Duration::from_secs(2));
        cache.get(&found, &lookup, far(), budget).await.unwrap();
        cache.get(&missing, &lookup, far(), budget).await.unwrap();
        assert_eq!(
            counting.calls.load(Ordering::SeqCst),
            3,
            "negative entry expired after 60 s"
        );

        clock.advance(Duration::from_secs(600));
        cache.get(&found, &lookup, far(), budget).await.unwrap();
        assert_eq!(
            counting.calls.load(Ordering::SeqCst),
            4,
            "positive entry expired after 600 s"
        );

        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.lookups), (3, 4, 4));
    }

    #[tokio::test]
    async fn failures_are_cached_briefly() {
        let clock = Arc::new(ManualClock::new());
        let cache = cache(100, Arc::clone(&clock));
        let counting = Arc::new(Counting {
            fail: true,
            ..Counting::default()
        });
        let lookup: Arc<dyn CmdbLookup> = counting.clone();
        let query = Query::ResourceId("/subscriptions/s/x".to_owned());
        let budget = Duration::from_secs(2);
        assert!(matches!(
            cache.get(&query, &lookup, far(), budget).await,
            Err(Failure::Lookup(_))
        ));
        assert!(matches!(
            cache.get(&query, &lookup, far(), budget).await,
            Err(Failure::Lookup(_))
        ));
        assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(11));
        assert!(cache.get(&query, &lookup, far(), budget).await.is_err());
        assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
        assert_eq!(cache.stats().failures, 2);
    }

    #[tokio::test]
    async fn size_is_bounded_and_least_recently_used_goes_first() {
        let clock = Arc::new(ManualClock::new());
        let cache = cache(3, Arc::clone(&clock));
        let counting = Arc::new(Counting::default());
        let lookup: Arc<dyn CmdbLookup> = counting.clone();
        let budget = Duration::from_secs(2);
        let q = |n: u32| Query::ResourceId(format!("/subscriptions/s/r{n}"));
        for n in 0..3 {
            cache.get(&q(n), &lookup, far(), budget).await.unwrap();
        }
        cache.get(&q(0), &lookup, far(), budget).await.unwrap(); // r0 becomes most recent
        cache.get(&q(3), &lookup, far(), budget).await.unwrap(); // evicts r1
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.evictions), (3, 1));
        let calls = counting.calls.load(Ordering::SeqCst);
        cache.get(&q(0), &lookup, far(), budget).await.unwrap();
        assert_eq!(counting.calls.load(Ordering::SeqCst), calls, "r0 kept");
        cache.get(&q(1), &lookup, far(), budget).await.unwrap();
        assert_eq!(
            counting.calls.load(Ordering::SeqCst),
            calls + 1,
            "r1 was evicted"
        );
    }

    #[tokio::test]
    async fn names_share_an_entry_across_case() {
        let clock = Arc::new(ManualClock::new());
        let cache = cache(10, clock);
        let counting = Arc::new(Counting::default());
        let lookup: Arc<dyn CmdbLookup> = counting.clone();
        let budget = Duration::from_secs(2);
        for name in ["Web01", "WEB01", "web01"] {
            let query = Query::Name {
                name: name.to_owned(),
                class_hint: None,
            };
            cache.get(&query, &lookup, far(), budget).await.unwrap();
        }
        assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
    }
}
