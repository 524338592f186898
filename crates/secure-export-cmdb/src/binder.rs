//! [`Binder`] and its builder.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{CacheConfig, Failure, LookupCache, Query};
use crate::clock::{Clock, SystemClock};
use crate::static_map::{Pattern, StaticMap};
use crate::targets::{Candidates, Target};
use crate::{
    Binding, CacheStats, CiRecord, CiSource, CmdbLookup, LookupPacer, Omitted, Strategy, Unmatched,
};

/// Default time a found CI stays cached.
pub const DEFAULT_POSITIVE_TTL: Duration = Duration::from_secs(10 * 60);
/// Default time a "no such CI" answer stays cached.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(60);
/// Default time a failed lookup stays cached (so a CMDB outage is not hammered per alert).
pub const DEFAULT_FAILURE_TTL: Duration = Duration::from_secs(10);
/// Default bound on cached entries.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
/// Default time one `bind` call may wait for lookups.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);
/// Default time a background lookup may run before it counts as failed.
pub const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default most candidate targets of one alert that are looked up.
pub const DEFAULT_MAX_TARGETS: usize = 50;
/// Default most CMDB requests of one binder (all its binds together) in flight at a time.
pub const DEFAULT_MAX_CONCURRENT_LOOKUPS: usize = 4;

/// A [`Binder`] configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BinderError {
    /// A strategy is listed twice.
    #[error("cmdb strategy {0} is listed more than once")]
    DuplicateStrategy(Strategy),
    /// `fallback` is not the last strategy (it applies only once every target failed).
    #[error("cmdb strategy fallback must be the last strategy")]
    FallbackNotLast,
    /// A fallback CI or a static map is configured but its strategy is not listed (it would
    /// never be used).
    #[error("cmdb: {0} is configured but the {0} strategy is not listed in the strategies")]
    NotListed(Strategy),
    /// A static-map pattern is empty or only wildcards.
    #[error("static_map entry {index}: pattern {pattern:?} is empty or matches everything")]
    InvalidPattern {
        /// Position of the entry in the map.
        index: usize,
        /// The pattern as given.
        pattern: String,
    },
    /// A CI given in configuration has an empty id.
    #[error("{0}: the CI id is empty")]
    EmptyCiId(String),
    /// A duration, size or limit setting is zero (`deadline`, `lookup_timeout`,
    /// `max_entries`, `max_targets`, `max_concurrent_lookups`).
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

/// Builds a [`Binder`].
#[derive(Debug)]
#[must_use]
pub struct BinderBuilder {
    lookup: Arc<dyn CmdbLookup>,
    strategies: Option<Vec<Strategy>>,
    static_map: Vec<(String, CiRecord)>,
    fallback: Option<CiRecord>,
    class_hints: Vec<(String, String)>,
    cache: CacheConfig,
    deadline: Duration,
    clock: Arc<dyn Clock>,
    max_targets: usize,
    max_concurrent_lookups: usize,
    pacer: Option<Arc<dyn LookupPacer>>,
}

impl BinderBuilder {
    /// A builder resolving through `lookup`, with the default settings.
    ///
    /// Without [`strategies`](Self::strategies), the strategies are `resource_id`, `name`, then
    /// `static_map` if a map is configured and `fallback` if a fallback CI is.
    pub fn new(lookup: Arc<dyn CmdbLookup>) -> Self {
        Self {
            lookup,
            strategies: None,
            static_map: Vec::new(),
            fallback: None,
            class_hints: Vec::new(),
            cache: CacheConfig {
                positive_ttl: DEFAULT_POSITIVE_TTL,
                negative_ttl: DEFAULT_NEGATIVE_TTL,
                failure_ttl: DEFAULT_FAILURE_TTL,
                max_entries: DEFAULT_MAX_ENTRIES,
                lookup_timeout: DEFAULT_LOOKUP_TIMEOUT,
            },
            deadline: DEFAULT_DEADLINE,
            clock: Arc::new(SystemClock),
            max_targets: DEFAULT_MAX_TARGETS,
            max_concurrent_lookups: DEFAULT_MAX_CONCURRENT_LOOKUPS,
            pacer: None,
        }
    }

    /// The strategies to try, in order; an empty list disables binding (every alert gets an
    /// empty [`Binding`] and no lookup is made).
    pub fn strategies(mut self, strategies: Vec<Strategy>) -> Self {
        self.strategies = Some(strategies);
        self
    }

    /// Static map entries: resource-id pattern (case-insensitive, `*` matches any run of
    /// characters) to CI. The first matching entry wins.
    pub fn static_map(mut self, entries: Vec<(String, CiRecord)>) -> Self {
        self.static_map = entries;
        self
    }

    /// The connection's fallback CI, used when no target of an alert binds.
    pub fn fallback(mut self, ci: Option<CiRecord>) -> Self {
        self.fallback = ci;
        self
    }

    /// Restricts name lookups of targets of ARM resource type `resource_type` (such as
    /// `microsoft.compute/virtualmachines`, case-insensitive) to CI class `class` (such as
    /// `cmdb_ci_vm_instance` or `BMC_ComputerSystem`). Resolves name collisions across classes.
    pub fn class_hint(
        mut self,
        resource_type: impl Into<String>,
        class: impl Into<String>,
    ) -> Self {
        self.class_hints
            .push((resource_type.into().to_ascii_lowercase(), class.into()));
        self
    }

    /// How long a found CI stays cached (default 10 min).
    pub fn positive_ttl(mut self, ttl: Duration) -> Self {
        self.cache.positive_ttl = ttl;
        self
    }

    /// How long a "no such CI" answer stays cached (default 1 min).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.cache.negative_ttl = ttl;
        self
    }

    /// How long a failed lookup stays cached (default 10 s); zero retries at the next alert.
    pub fn failure_ttl(mut self, ttl: Duration) -> Self {
        self.cache.failure_ttl = ttl;
        self
    }

    /// The most completed lookups kept (default 10,000); least recently used go first.
    pub fn max_entries(mut self, max: usize) -> Self {
        self.cache.max_entries = max;
        self
    }

    /// How long one `bind` waits for lookups in total (default 2 s). Targets still unresolved
    /// then are unmatched with a timeout reason; their lookups finish in the background.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// How long a background lookup may run before it counts as failed (default 10 s).
    pub fn lookup_timeout(mut self, timeout: Duration) -> Self {
        self.cache.lookup_timeout = timeout;
        self
    }

    /// The clock the cache TTLs are measured with (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The most candidate targets of one alert that are looked up (default 50), taken in
    /// candidate order. The others are not looked up: [`Binding::omitted`] counts them and
    /// names the first few. Also bounds the notes on malformed entries kept per alert, and so
    /// the bindings [`Binder::bind_each`] returns. Zero is refused by [`build`](Self::build).
    pub fn max_targets(mut self, max: usize) -> Self {
        self.max_targets = max;
        self
    }

    /// The most CMDB requests in flight at a time (default 4), across all binds of the binder
    /// and its clones, including lookups that go on after their bind's deadline. Zero is
    /// refused by [`build`](Self::build).
    pub fn max_concurrent_lookups(mut self, max: usize) -> Self {
        self.max_concurrent_lookups = max;
        self
    }

    /// Paces the CMDB requests (not cache hits) by the connection's rate limiter: each waits
    /// for [`LookupPacer::acquire`] first (default: no pacing).
    pub fn pacer(mut self, pacer: Arc<dyn LookupPacer>) -> Self {
        self.pacer = Some(pacer);
        self
    }

    /// Checks the configuration and builds the binder.
    pub fn build(self) -> Result<Binder, BinderError> {
        let strategies = match self.strategies {
            Some(list) => list,
            None => {
                let mut list = vec![Strategy::ResourceId, Strategy::Name];
                if !self.static_map.is_empty() {
                    list.push(Strategy::StaticMap);
                }
                if self.fallback.is_some() {
                    list.push(Strategy::Fallback);
                }
                list
            }
        };
        for (i, strategy) in strategies.iter().enumerate() {
            if strategies.iter().skip(i + 1).any(|s| s == strategy) {
                return Err(BinderError::DuplicateStrategy(*strategy));
            }
            if *strategy == Strategy::Fallback && i + 1 != strategies.len() {
                return Err(BinderError::FallbackNotLast);
            }
        }
        // Listing `fallback` or `static_map` without configuring it is a harmless no-op (a
        // default strategy list may name both); configuring one without listing it would be
        // silently ignored, so it is an error.
        if self.fallback.is_some() && !strategies.contains(&Strategy::Fallback) {
            return Err(BinderError::NotListed(Strategy::Fallback));
        }
        if !self.static_map.is_empty() && !strategies.contains(&Strategy::StaticMap) {
            return Err(BinderError::NotListed(Strategy::StaticMap));
        }
        let mut static_map = StaticMap::default();
        for (index, (pattern, ci)) in self.static_map.into_iter().enumerate() {
            let Some(parsed) = Pattern::new(&pattern) else {
                return Err(BinderError::InvalidPattern { index, pattern });
            };
            if ci.id.trim().is_empty() {
                return Err(BinderError::EmptyCiId(format!(
                    "static_map entry {index} ({pattern})"
                )));
            }
            static_map.push(parsed, ci);
        }
        let fallback = match self.fallback {
            Some(ci) if ci.id.trim().is_empty() => {
                return Err(BinderError::EmptyCiId("fallback CI".to_owned()));
            }
            Some(ci) => Some(CiRecord {
                source: CiSource::Fallback,
                ..ci
            }),
            None => None,
        };
        for (value, what) in [
            (self.deadline, "deadline"),
            (self.cache.lookup_timeout, "lookup_timeout"),
        ] {
            if value.is_zero() {
                return Err(BinderError::Zero(what));
            }
        }
        for (value, what) in [
            (self.cache.max_entries, "max_entries"),
            (self.max_targets, "max_targets"),
            (self.max_concurrent_lookups, "max_concurrent_lookups"),
        ] {
            if value == 0 {
                return Err(BinderError::Zero(what));
            }
        }
        Ok(Binder {
            inner: Arc::new(Inner {
                lookup: self.lookup,
                strategies,
                static_map,
                fallback,
                class_hints: self.class_hints,
                deadline: self.deadline,
                max_targets: self.max_targets,
                cache: LookupCache::with_limits(
                    self.cache,
                    self.clock,
                    self.max_concurrent_lookups,
                    self.pacer,
                ),
            }),
        })
    }
}

/// Binds alerts to configuration items. Cheap to clone; clones share the cache.
#[derive(Debug, Clone)]
pub struct Binder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    lookup: Arc<dyn CmdbLookup>,
    strategies: Vec<Strategy>,
    static_map: StaticMap,
    fallback: Option<CiRecord>,
    class_hints: Vec<(String, String)>,
    deadline: Duration,
    max_targets: usize,
    cache: LookupCache,
}

/// What resolving an alert's candidates gave.
struct Resolution {
    /// Bound CIs, in candidate order, distinct ids.
    bound: Vec<CiRecord>,
    unmatched: Vec<Unmatched>,
    omitted: Omitted,
}

/// How one target resolved.
enum Resolved {
    Bound(CiRecord),
    Unbound(Unmatched),
}

impl Binder {
    /// A builder; see [`BinderBuilder::new`].
    pub fn builder(lookup: Arc<dyn CmdbLookup>) -> BinderBuilder {
        BinderBuilder::new(lookup)
    }

    /// The cache counters.
    #[must_use]
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.stats()
    }

    /// The configured strategies, in order.
    #[must_use]
    pub fn strategies(&self) -> &[Strategy] {
        &self.inner.strategies
    }

    /// The most candidate targets of one alert that are looked up.
    #[must_use]
    pub fn max_targets(&self) -> usize {
        self.inner.max_targets
    }

    /// Resolves at most `max_targets` candidates into bound CIs (in candidate order, distinct
    /// ids) and unmatched targets; notes are added per their `only_if_unbound` flag, targets
    /// beyond the limit are omitted.
    async fn resolve(&self, mut candidates: Candidates) -> Resolution {
        if self.inner.strategies.is_empty() {
            return Resolution {
                bound: Vec::new(),
                unmatched: Vec::new(),
                omitted: Omitted::default(),
            };
        }
        candidates.limit(self.inner.max_targets);
        // A huge configured deadline must not overflow the clock (that panics): cap it.
        let now = tokio::time::Instant::now();
        let deadline = now
            .checked_add(self.inner.deadline)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400));
        let resolved = futures::future::join_all(
            candidates
                .targets
                .iter()
                .map(|t| self.resolve_target(t, deadline)),
        )
        .await;
        let mut bound: Vec<CiRecord> = Vec::new();
        let mut bound_ids: HashSet<String> = HashSet::new();
        let mut unmatched = Vec::new();
        for outcome in resolved {
            match outcome {
                Resolved::Bound(ci) => {
                    if bound_ids.insert(ci.id.clone()) {
                        bound.push(ci);
                    }
                }
                Resolved::Unbound(u) => unmatched.push(u),
            }
        }
        let nothing_bound = bound.is_empty();
        unmatched.extend(
            candidates
                .notes
                .into_iter()
                .filter(|n| nothing_bound || !n.only_if_unbound)
                .map(|n| n.unmatched),
        );
        let mut omitted = candidates.omitted;
        if nothing_bound {
            omitted.append(candidates.omitted_if_unbound);
        }
        Resolution {
            bound,
            unmatched,
            omitted,
        }
    }

    /// Binds resolved candidates into one binding (fallback when nothing bound).
    pub(crate) async fn bind_candidates(&self, candidates: Candidates) -> Binding {
        let Resolution {
            bound,
            unmatched,
            omitted,
        } = self.resolve(candidates).await;
        let mut bound = bound.into_iter();
        let primary = bound.next().or_else(|| self.fallback());
        Binding {
            primary,
            affected: bound.collect(),
            unmatched,
            omitted,
        }
    }

    /// Binds resolved candidates into one binding per CI (at most `max_targets`).
    pub(crate) async fn bind_each_candidates(&self, candidates: Candidates) -> Vec<Binding> {
        let Resolution {
            bound,
            unmatched,
            omitted,
        } = self.resolve(candidates).await;
        if bound.is_empty() {
            return vec![Binding {
                primary: self.fallback(),
                affected: Vec::new(),
                unmatched,
                omitted,
            }];
        }
        let mut first = Some((unmatched, omitted));
        bound
            .into_iter()
            .map(|ci| {
                let (unmatched, omitted) = first.take().unwrap_or_default();
                Binding {
                    primary: Some(ci),
                    affected: Vec::new(),
                    unmatched,
                    omitted,
                }
            })
            .collect()
    }

    fn fallback(&self) -> Option<CiRecord> {
        if self.inner.strategies.contains(&Strategy::Fallback) {
            self.inner.fallback.clone()
        } else {
            None
        }
    }

    fn class_hint(&self, target: &Target) -> Option<String> {
        let resource_type = target.id.as_ref()?.resource_type.as_deref()?;
        self.inner
            .class_hints
            .iter()
            .find(|(ty, _)| ty == resource_type)
            .map(|(_, class)| class.clone())
    }

    async fn lookup(
        &self,
        query: &Query,
        deadline: tokio::time::Instant,
    ) -> Result<Arc<[CiRecord]>, Failure> {
        self.inner
            .cache
            .get(query, &self.inner.lookup, deadline, self.inner.deadline)
            .await
    }

    async fn resolve_target(&self, target: &Target, deadline: tokio::time::Instant) -> Resolved {
        let mut attempts: Vec<String> = Vec::new();
        let mut lookup_failed = false;
        for strategy in &self.inner.strategies {
            match strategy {
                Strategy::ResourceId => {
                    let Some(id) = &target.id else { continue };
                    let query = Query::ResourceId(id.normalized.clone());
                    match self.lookup(&query, deadline).await {
                        Ok(found) => match found.first() {
                            Some(ci) => return bound(ci, CiSource::ResourceId),
                            None => attempts
                                .push("resource id: no CI has this Azure resource id".to_owned()),
                        },
                        Err(failure) => {
                            lookup_failed |= !failure.is_refusal();
                            attempts.push(format!("resource id: {failure}"));
                        }
                    }
                }
                Strategy::Name => {
                    let Some(name) = &target.name else { continue };
                    let class_hint = self.class_hint(target);
                    let in_class = class_hint
                        .as_deref()
                        .map(|c| format!(" of class {c}"))
                        .unwrap_or_default();
                    let query = Query::Name {
                        name: name.clone(),
                        class_hint,
                    };
                    match self.lookup(&query, deadline).await {
                        Ok(found) => {
                            let mut distinct: Vec<&CiRecord> = Vec::new();
                            for ci in found.iter() {
                                if !distinct.iter().any(|d| d.id == ci.id) {
                                    distinct.push(ci);
                                }
                            }
                            match distinct.as_slice() {
                                [ci] => return bound(ci, CiSource::Name),
                                [] => {
                                    attempts.push(format!("name: no CI{in_class} named {name:?}"))
                                }
                                many => {
                                    let ids: Vec<&str> =
                                        many.iter().map(|ci| ci.id.as_str()).collect();
                                    attempts.push(format!(
                                        "name: {} CIs{in_class} are named {name:?} ({}), ambiguous",
                                        many.len(),
                                        ids.join(", ")
                                    ));
                                }
                            }
                        }
                        Err(failure) => {
                            lookup_failed |= !failure.is_refusal();
                            attempts.push(format!("name: {failure}"));
                        }
                    }
                }
                Strategy::StaticMap => {
                    let Some(id) = &target.id else { continue };
                    match self.inner.static_map.find(&id.normalized) {
                        Some(ci) => return Resolved::Bound(ci.clone()),
                        None => attempts.push("static map: no pattern matches".to_owned()),
                    }
                }
                Strategy::Fallback => {}
            }
        }
        let reason = if attempts.is_empty() {
            "no configured strategy applies to this target".to_owned()
        } else {
            attempts.join("; ")
        };
        Resolved::Unbound(Unmatched {
            target: target.label.clone(),
            reason,
            lookup_failed,
        })
    }
}

fn bound(ci: &CiRecord, source: CiSource) -> Resolved {
    Resolved::Bound(CiRecord {
        source,
        ..ci.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use crate::targets::tests::arm;
    use crate::targets::{AlertFacts, AlertKind, Dimension};
    use async_trait::async_trait;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::LookupError;

    /// A CMDB in memory that counts its calls; names and ids compare case-insensitively.
    #[derive(Debug, Default)]
    struct CountingCmdb {
        by_id: HashMap<String, CiRecord>,
        by_name: Vec<CiRecord>,
        id_calls: AtomicUsize,
        name_calls: AtomicUsize,
        delay: Option<Duration>,
        hang: bool,
        fail: bool,
        /// Answer 429 with this `Retry-After`.
        throttle: Option<Duration>,
        seen_ids: Mutex<Vec<String>>,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
    }

    /// Counts a request in flight while alive.
    struct InFlight<'a>(&'a AtomicUsize);

    impl Drop for InFlight<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn ci(id: &str, name: &str, class: &str) -> CiRecord {
        CiRecord {
            id: id.to_owned(),
            name: name.to_owned(),
            class: Some(class.to_owned()),
            source: CiSource::Name,
        }
    }

    impl CountingCmdb {
        fn with_vm(mut self, arm_id: &str, sys_id: &str) -> Self {
            let name = arm_id.rsplit('/').next().unwrap_or_default();
            let record = ci(sys_id, name, "cmdb_ci_vm_instance");
            self.by_id
                .insert(arm_id.to_ascii_lowercase(), record.clone());
            self.by_name.push(record);
            self
        }

        fn with_named(mut self, record: CiRecord) -> Self {
            self.by_name.push(record);
            self
        }

        fn calls(&self) -> usize {
            self.id_calls.load(Ordering::SeqCst) + self.name_calls.load(Ordering::SeqCst)
        }

        fn max_in_flight(&self) -> usize {
            self.max_in_flight.load(Ordering::SeqCst)
        }

        async fn behave(&self) -> Result<(), LookupError> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let _in_flight = InFlight(&self.in_flight);
            if self.hang {
                std::future::pending::<()>().await;
            }
            if let Some(delay) = self.delay {
                tokio::time::sleep(delay).await;
            }
            if self.fail {
                return Err(LookupError::Backend(secure_export_itsm::ItsmError::Http {
                    backend: "mock",
                    status: 503,
                    message: "service unavailable".to_owned(),
                    detail: None,
                    code: None,
                    retry_after: None,
                }));
            }
            if let Some(wait) = self.throttle {
                return Err(LookupError::Backend(secure_export_itsm::ItsmError::Http {
                    backend: "mock",
                    status: 429,
                    message: "too many requests".to_owned(),
                    detail: None,
                    code: None,
                    retry_after: Some(wait),
                }));
            }
            Ok(())
        }
    }

    #[async_trait]
    impl CmdbLookup for CountingCmdb {
        async fn by_resource_id(&self, resource_id: &str) -> Result<Vec<CiRecord>, LookupError> {
            self.id_calls.fetch_add(1, Ordering::SeqCst);
            self.seen_ids.lock().unwrap().push(resource_id.to_owned());
            self.behave().await?;
            Ok(self
                .by_id
                .get(&resource_id.to_ascii_lowercase())
                .cloned()
                .into_iter()
                .collect())
        }

        async fn by_name(
            &self,
            name: &str,
            class_hint: Option<&str>,
        ) -> Result<Vec<CiRecord>, LookupError> {
            self.name_calls.fetch_add(1, Ordering::SeqCst);
            self.behave().await?;
            Ok(self
                .by_name
                .iter()
                .filter(|ci| ci.name.eq_ignore_ascii_case(name))
                .filter(|ci| class_hint.is_none_or(|hint| ci.class.as_deref() == Some(hint)))
                .cloned()
                .collect())
        }
    }

    fn vm(n: usize) -> String {
        format!(
            "/subscriptions/s1/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/vm{n:02}"
        )
    }

    fn candidates(ids: &[&str], names: &[&str]) -> Candidates {
        Candidates::collect(AlertFacts {
            kind: AlertKind::Other,
            target_ids: ids.iter().map(|id| Ok(arm(id))).collect(),
            dimensions: Vec::<Dimension>::new(),
            configuration_items: names.iter().map(|n| (*n).to_owned()).collect(),
        })
    }

    fn binder(cmdb: Arc<CountingCmdb>, clock: Arc<ManualClock>) -> BinderBuilder {
        Binder::builder(cmdb).clock(clock)
    }

    #[tokio::test]
    async fn storm_of_1000_alerts_over_20_resources_makes_20_lookups_per_ttl() {
        let mut cmdb = CountingCmdb {
            delay: Some(Duration::from_millis(5)),
            ..CountingCmdb::default()
        };
        for n in 0..20 {
            cmdb = cmdb.with_vm(&vm(n), &format!("sys{n:02}"));
        }
        let cmdb = Arc::new(cmdb);
        let clock = Arc::new(ManualClock::new());
        let binder = binder(Arc::clone(&cmdb), Arc::clone(&clock))
            .build()
            .unwrap();

        let storm = |round: usize| {
            let binder = binder.clone();
            async move {
                let alerts = (0..1000).map(|i| {
                    let binder = binder.clone();
                    async move {
                        // Alternate the casing Azure uses between alert types.
                        let id = if (i + round).is_multiple_of(2) {
                            vm(i % 20)
                        } else {
                            vm(i % 20).to_ascii_lowercase()
                        };
                        let name = format!("VM{:02}", i % 20);
                        let binding = binder.bind_candidates(candidates(&[&id], &[&name])).await;
                        (i, binding)
                    }
                });
                for (i, binding) in futures::future::join_all(alerts).await {
                    let primary = binding.primary.unwrap();
                    assert_eq!(primary.id, format!("sys{:02}", i % 20));
                    assert_eq!(primary.source, CiSource::ResourceId);
                    assert!(binding.unmatched.is_empty());
                }
            }
        };

        storm(0).await;
        assert_eq!(
            cmdb.calls(),
            20,
            "one lookup per resource for 1,000 concurrent alerts"
        );
        let stats = binder.cache_stats();
        assert_eq!(stats.lookups, 20);
        assert_eq!(stats.hits + stats.misses, 1000);

        clock.advance(Duration::from_secs(9 * 60));
        storm(1).await;
        assert_eq!(cmdb.calls(), 20, "still within the positive TTL");

        clock.advance(Duration::from_secs(2 * 60));
        storm(0).await;
        assert_eq!(
            cmdb.calls(),
            40,
            "one more lookup per resource after the TTL"
        );
        assert!(
            cmdb.seen_ids
                .lock()
                .unwrap()
                .iter()
                .all(|id| *id == id.to_ascii_lowercase())
        );
    }

    #[tokio::test]
    async fn case_differences_bind_the_same_ci() {
        let cmdb = Arc::new(CountingCmdb::default().with_vm(&vm(1).to_ascii_uppercase(), "sys01"));
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .build()
            .unwrap();
        for id in [
            vm(1),
            vm(1).to_ascii_lowercase(),
            vm(1).to_ascii_uppercase(),
        ] {
            let binding = binder.bind_candidates(candidates(&[&id], &[])).await;
            assert_eq!(binding.primary.map(|ci| ci.id).as_deref(), Some("sys01"));
        }
        assert_eq!(cmdb.calls(), 1);
    }

    #[tokio::test]
    async fn missing_ci_is_unmatched_with_what_was_tried() {
        let cmdb = Arc::new(CountingCmdb::default());
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .build()
            .unwrap();
        let binding = binder
            .bind_candidates(candidates(&[&vm(7)], &["vm07"]))
            .await;
        assert_eq!(binding.primary, None);
        assert_eq!(binding.unmatched.len(), 1, "{binding:?}");
        let unmatched = &binding.unmatched[0];
        assert_eq!(unmatched.target, vm(7));
        assert_eq!(
            unmatched.reason,
            "resource id: no CI has this Azure resource id; name: no CI named \"vm07\""
        );
        assert!(!unmatched.lookup_failed, "nothing found is not a failure");
        // The negative answers are cached.
        binder.bind_candidates(candidates(&[&vm(7)], &[])).await;
        assert_eq!(cmdb.calls(), 2);
    }

    #[tokio::test]
    async fn name_is_tried_after_resource_id_and_collisions_do_not_bind() {
        let cmdb = Arc::new(
            CountingCmdb::default()
                .with_named(ci("sysA", "app01", "cmdb_ci_vm_instance"))
                .with_named(ci("sysB", "APP01", "cmdb_ci_cloud_database")),
        );
        let id =
            "/subscriptions/s1/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/app01";
        let plain = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .build()
            .unwrap();
        let binding = plain.bind_candidates(candidates(&[id], &[])).await;
        assert_eq!(binding.primary, None);
        assert!(
            binding.unmatched[0]
                .reason
                .contains("2 CIs are named \"app01\" (sysA, sysB), ambiguous")
        );

        let hinted = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .class_hint("Microsoft.Compute/virtualMachines", "cmdb_ci_vm_instance")
            .build()
            .unwrap();
        let binding = hinted.bind_candidates(candidates(&[id], &[])).await;
        let primary = binding.primary.unwrap();
        assert_eq!(
            (primary.id.as_str(), primary.source),
            ("sysA", CiSource::Name)
        );
    }

    /// Security review: `Instant + Duration::MAX` used to panic on every binding.
    #[tokio::test]
    async fn a_huge_deadline_does_not_panic() {
        let cmdb = Arc::new(CountingCmdb::default());
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .deadline(Duration::MAX)
            .fallback(Some(ci("sysF", "azure-fallback", "cmdb_ci_service")))
            .build()
            .unwrap();
        let binding = binder.bind_candidates(candidates(&[&vm(1)], &[])).await;
        assert!(binding.primary.is_some());
    }

    #[tokio::test]
    async fn lookup_timeout_degrades_to_unbound_within_the_deadline() {
        let cmdb = Arc::new(CountingCmdb {
            hang: true,
            ..CountingCmdb::default()
        });
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .deadline(Duration::from_millis(50))
            .fallback(Some(ci("sysF", "azure-fallback", "cmdb_ci_service")))
            .build()
            .unwrap();
        let started = std::time::Instant::now();
        let binding = binder.bind_candidates(candidates(&[&vm(1)], &[])).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "bind waited {:?}",
            started.elapsed()
        );
        let primary = binding.primary.unwrap();
        assert_eq!(
            (primary.id.as_str(), primary.source),
            ("sysF", CiSource::Fallback)
        );
        assert_eq!(binding.unmatched.len(), 1);
        assert!(
            binding.unmatched[0]
                .reason
                .contains("did not answer within the 50ms binding deadline"),
            "{}",
            binding.unmatched[0].reason
        );
        assert_eq!(
            binder.cache_stats().deadline_exceeded,
            2,
            "resource id then name"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_lookup_is_abandoned_after_the_lookup_timeout() {
        let cmdb = Arc::new(CountingCmdb {
            hang: true,
            ..CountingCmdb::default()
        });
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .strategies(vec![Strategy::ResourceId])
            .deadline(Duration::from_millis(50))
            .lookup_timeout(Duration::from_secs(1))
            .failure_ttl(Duration::ZERO)
            .build()
            .unwrap();
        binder.bind_candidates(candidates(&[&vm(1)], &[])).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stats = binder.cache_stats();
        assert_eq!((stats.lookups, stats.failures), (1, 1));
        // The failure is not cached (TTL zero): the next alert asks again.
        let binding = binder.bind_candidates(candidates(&[&vm(1)], &[])).await;
        assert!(binding.unmatched[0].reason.contains("deadline"));
        assert_eq!(cmdb.calls(), 2);
    }

    #[tokio::test]
    async fn lookup_error_degrades_to_unbound_with_the_reason() {
        let cmdb = Arc::new(CountingCmdb {
            fail: true,
            ..CountingCmdb::default()
        });
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .strategies(vec![Strategy::ResourceId])
            .build()
            .unwrap();
        let binding = binder.bind_candidates(candidates(&[&vm(1)], &[])).await;
        assert_eq!(binding.primary, None);
        let reason = &binding.unmatched[0].reason;
        assert!(
            reason.starts_with("resource id: cmdb lookup failed:"),
            "{reason}"
        );
        assert!(reason.contains("503"), "{reason}");
        assert!(binding.lookup_failed(), "an error is not a miss");
        binder.bind_candidates(candidates(&[&vm(1)], &[])).await;
        assert_eq!(cmdb.calls(), 1, "failure cached for the failure TTL");
        assert_eq!(binder.cache_stats().failures, 1);
    }

    #[tokio::test]
    async fn static_map_and_fallback_in_order() {
        let cmdb = Arc::new(CountingCmdb::default().with_vm(&vm(1), "sys01"));
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .strategies(vec![
                Strategy::StaticMap,
                Strategy::ResourceId,
                Strategy::Fallback,
            ])
            .static_map(vec![(
                "*/virtualmachines/vm1*".to_owned(),
                ci("sysMap", "web tier", "cmdb_ci_service"),
            )])
            .fallback(Some(ci("sysF", "azure", "cmdb_ci_service")))
            .build()
            .unwrap();
        let binding = binder
            .bind_candidates(candidates(&[&vm(10), &vm(1)], &[]))
            .await;
        let primary = binding.primary.unwrap();
        assert_eq!(
            (primary.id.as_str(), primary.source),
            ("sysMap", CiSource::StaticMap)
        );
        let affected: Vec<_> = binding
            .affected
            .iter()
            .map(|c| (c.id.as_str(), c.source))
            .collect();
        assert_eq!(affected, [("sys01", CiSource::ResourceId)]);
        assert_eq!(
            cmdb.calls(),
            1,
            "the static map answered vm10 without a lookup"
        );

        let binding = binder.bind_candidates(candidates(&[&vm(2)], &[])).await;
        assert_eq!(binding.primary.unwrap().id, "sysF");
        assert_eq!(
            binding.unmatched[0].reason,
            "static map: no pattern matches; resource id: no CI has this Azure resource id"
        );
    }

    #[tokio::test]
    async fn bind_each_fans_out_one_binding_per_ci() {
        let cmdb = Arc::new(
            CountingCmdb::default()
                .with_vm(&vm(1), "sys01")
                .with_vm(&vm(2), "sys02"),
        );
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .build()
            .unwrap();
        let each = binder
            .bind_each_candidates(candidates(&[&vm(1), &vm(2), &vm(3)], &[]))
            .await;
        let primaries: Vec<_> = each
            .iter()
            .map(|b| b.primary.as_ref().unwrap().id.as_str())
            .collect();
        assert_eq!(primaries, ["sys01", "sys02"]);
        assert!(each.iter().all(|b| b.affected.is_empty()));
        assert_eq!(each[0].unmatched.len(), 1, "unmatched reported once");
        assert!(each[1].unmatched.is_empty());

        let none = binder
            .bind_each_candidates(candidates(&[&vm(3)], &[]))
            .await;
        assert_eq!(none.len(), 1);
        assert_eq!(none[0].primary, None);
    }

    #[test]
    fn without_a_tokio_runtime_lookups_are_unmatched_not_a_panic() {
        let cmdb = Arc::new(CountingCmdb::default().with_vm(&vm(1), "sys01"));
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .strategies(vec![Strategy::ResourceId])
            .build()
            .unwrap();
        let binding =
            futures::executor::block_on(binder.bind_candidates(candidates(&[&vm(1)], &[])));
        assert_eq!(binding.primary, None);
        assert!(
            binding.unmatched[0].reason.contains("need a Tokio runtime"),
            "{binding:?}"
        );
        assert_eq!(cmdb.calls(), 0);
    }

    #[tokio::test]
    async fn no_strategies_disables_binding() {
        let cmdb = Arc::new(CountingCmdb::default().with_vm(&vm(1), "sys01"));
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .strategies(Vec::new())
            .build()
            .unwrap();
        assert_eq!(
            binder.bind_candidates(candidates(&[&vm(1)], &[])).await,
            Binding::default()
        );
        assert_eq!(cmdb.calls(), 0);
    }

    #[test]
    fn invalid_configurations_are_rejected() {
        let cmdb: Arc<dyn CmdbLookup> = Arc::new(CountingCmdb::default());
        let fallback = Some(ci("sysF", "azure", "cmdb_ci_service"));
        let cases = [
            (
                Binder::builder(Arc::clone(&cmdb)).strategies(vec![Strategy::Name, Strategy::Name]),
                "listed more than once",
            ),
            (
                Binder::builder(Arc::clone(&cmdb))
                    .strategies(vec![Strategy::Fallback, Strategy::Name])
                    .fallback(fallback.clone()),
                "must be the last",
            ),
            (
                Binder::builder(Arc::clone(&cmdb))
                    .strategies(vec![Strategy::Name])
                    .fallback(fallback),
                "not listed",
            ),
            (
                Binder::builder(Arc::clone(&cmdb))
                    .strategies(vec![Strategy::Name])
                    .static_map(vec![("*/rg/*".to_owned(), ci("x", "x", "x"))]),
                "static_map is configured but the static_map strategy is not listed",
            ),
            (
                Binder::builder(Arc::clone(&cmdb))
                    .static_map(vec![("*".to_owned(), ci("x", "x", "x"))]),
                "matches everything",
            ),
            (
                Binder::builder(Arc::clone(&cmdb)).deadline(Duration::ZERO),
                "deadline must be greater than zero",
            ),
            (
                Binder::builder(Arc::clone(&cmdb)).max_entries(0),
                "max_entries",
            ),
            (
                Binder::builder(Arc::clone(&cmdb)).fallback(Some(ci(" ", "x", "x"))),
                "fallback CI: the CI id is empty",
            ),
        ];
        for (builder, expected) in cases {
            let err = builder.build().unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
        // Listing fallback / static_map without configuring them is a no-op, not an error.
        let lenient = Binder::builder(cmdb)
            .strategies(vec![
                Strategy::ResourceId,
                Strategy::StaticMap,
                Strategy::Fallback,
            ])
            .build();
        assert!(lenient.is_ok());
    }

    /// A pacer that counts what it is told, optionally making each request wait.
    #[derive(Debug, Default)]
    struct CountingPacer {
        wait: Option<Duration>,
        acquires: AtomicUsize,
        succeeded: AtomicUsize,
        throttled: Mutex<Vec<Duration>>,
    }

    impl CountingPacer {
        fn acquires(&self) -> usize {
            self.acquires.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl LookupPacer for CountingPacer {
        async fn acquire(&self) {
            self.acquires.fetch_add(1, Ordering::SeqCst);
            if let Some(wait) = self.wait {
                tokio::time::sleep(wait).await;
            }
        }

        fn throttled(&self, wait: Duration) {
            self.throttled.lock().unwrap().push(wait);
        }

        fn succeeded(&self, _started: tokio::time::Instant) {
            self.succeeded.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn vm_ids(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(vm).collect()
    }

    fn refs(ids: &[String]) -> Vec<&str> {
        ids.iter().map(String::as_str).collect()
    }

    #[test]
    fn max_targets_and_max_concurrent_lookups_must_not_be_zero() {
        let cmdb: Arc<dyn CmdbLookup> = Arc::new(CountingCmdb::default());
        let err = Binder::builder(Arc::clone(&cmdb))
            .max_targets(0)
            .build()
            .unwrap_err();
        assert_eq!(err, BinderError::Zero("max_targets"));
        assert_eq!(err.to_string(), "max_targets must be greater than zero");
        let err = Binder::builder(Arc::clone(&cmdb))
            .max_concurrent_lookups(0)
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "max_concurrent_lookups must be greater than zero"
        );
        // More permits than a semaphore can hold are capped, not a panic.
        let binder = Binder::builder(cmdb)
            .max_concurrent_lookups(usize::MAX)
            .max_targets(1)
            .build()
            .unwrap();
        assert_eq!(binder.max_targets(), 1);
        assert_eq!(
            Binder::builder(Arc::new(CountingCmdb::default()))
                .build()
                .unwrap()
                .max_targets(),
            DEFAULT_MAX_TARGETS
        );
    }

    #[tokio::test]
    async fn only_max_targets_are_looked_up_and_the_rest_reported() {
        let cmdb = Arc::new(CountingCmdb::default());
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .max_targets(10)
            .build()
            .unwrap();
        let ids = vm_ids(0..200);
        // Collected without a limit: `bind` applies the binder's.
        let binding = binder.bind_candidates(candidates(&refs(&ids), &[])).await;
        assert_eq!(cmdb.calls(), 20, "10 targets, by resource id then by name");
        let unmatched: Vec<&str> = binding
            .unmatched
            .iter()
            .map(|u| u.target.as_str())
            .collect();
        assert_eq!(unmatched, refs(&ids[..10]));
        assert_eq!(binding.omitted.count, 190);
        assert_eq!(binding.omitted.targets, ids[10..30]);
        assert!(
            binding
                .unmatched_note()
                .unwrap()
                .contains("190 more targets")
        );
    }

    #[tokio::test]
    async fn bind_each_yields_at_most_max_targets_bindings() {
        let mut cmdb = CountingCmdb::default();
        for n in 0..100 {
            cmdb = cmdb.with_vm(&vm(n), &format!("sys{n:02}"));
        }
        let cmdb = Arc::new(cmdb);
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .max_targets(5)
            .build()
            .unwrap();
        let ids = vm_ids(0..100);
        let each = binder
            .bind_each_candidates(candidates(&refs(&ids), &[]))
            .await;
        let primaries: Vec<&str> = each
            .iter()
            .map(|b| b.primary.as_ref().unwrap().id.as_str())
            .collect();
        assert_eq!(primaries, ["sys00", "sys01", "sys02", "sys03", "sys04"]);
        assert_eq!(cmdb.calls(), 5);
        assert_eq!(each[0].omitted.count, 95, "reported on the first binding");
        assert!(each[1..].iter().all(|b| b.omitted.is_empty()));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_in_flight_never_exceed_the_bound_across_binds() {
        let cmdb = Arc::new(CountingCmdb {
            delay: Some(Duration::from_millis(100)),
            ..CountingCmdb::default()
        });
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .max_concurrent_lookups(4)
            .deadline(Duration::from_secs(60))
            .lookup_timeout(Duration::from_secs(600))
            .build()
            .unwrap();
        let binds = (0..3).map(|round| {
            let binder = binder.clone();
            async move {
                let ids = vm_ids(round * 20..round * 20 + 20);
                binder.bind_candidates(candidates(&refs(&ids), &[])).await
            }
        });
        let bindings = futures::future::join_all(binds).await;
        assert!(bindings.iter().all(|b| b.unmatched.len() == 20));
        assert_eq!(cmdb.calls(), 120, "60 targets, by resource id then by name");
        assert_eq!(cmdb.max_in_flight(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn lookups_after_the_deadline_keep_their_permits() {
        let cmdb = Arc::new(CountingCmdb {
            delay: Some(Duration::from_secs(1)),
            ..CountingCmdb::default()
        });
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .strategies(vec![Strategy::ResourceId])
            .max_concurrent_lookups(2)
            .deadline(Duration::from_millis(50))
            .lookup_timeout(Duration::from_secs(600))
            .build()
            .unwrap();
        for round in 0..2 {
            let ids = vm_ids(round * 6..round * 6 + 6);
            let binding = binder.bind_candidates(candidates(&refs(&ids), &[])).await;
            assert!(
                binding
                    .unmatched
                    .iter()
                    .all(|u| u.reason.contains("binding deadline")),
                "{binding:?}"
            );
            // The abandoned lookups go on, within the bound.
            assert_eq!(cmdb.in_flight.load(Ordering::SeqCst), 2);
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(cmdb.calls(), 12, "every abandoned lookup ran in the end");
        assert_eq!(cmdb.max_in_flight(), 2);
        assert_eq!(cmdb.in_flight.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lookup_queued_past_the_lookup_timeout_fails_without_being_sent() {
        let cmdb = Arc::new(CountingCmdb {
            hang: true,
            ..CountingCmdb::default()
        });
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .strategies(vec![Strategy::ResourceId])
            .max_concurrent_lookups(1)
            .deadline(Duration::from_millis(50))
            .lookup_timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let ids = vm_ids(0..2);
        binder.bind_candidates(candidates(&refs(&ids), &[])).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stats = binder.cache_stats();
        assert_eq!(cmdb.calls(), 1, "the second never got a permit");
        assert_eq!((stats.lookups, stats.failures), (1, 2));

        // A queue: requests of 300 ms one at a time under a 1 s lookup timeout. Those started
        // at 0, 0.3, 0.6 and 0.9 s are sent (the last one is cut at 1 s); the other 6 are not.
        let slow = Arc::new(CountingCmdb {
            delay: Some(Duration::from_millis(300)),
            ..CountingCmdb::default()
        });
        let queue = Binder::builder(slow.clone())
            .strategies(vec![Strategy::ResourceId])
            .max_concurrent_lookups(1)
            .deadline(Duration::from_millis(50))
            .lookup_timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let ids = vm_ids(0..10);
        queue.bind_candidates(candidates(&refs(&ids), &[])).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stats = queue.cache_stats();
        assert_eq!(slow.calls(), 4);
        assert_eq!((stats.lookups, stats.failures), (4, 7));
    }

    #[tokio::test(start_paused = true)]
    async fn the_pacer_is_awaited_once_per_request_not_on_hits_or_joins() {
        let mut cmdb = CountingCmdb {
            delay: Some(Duration::from_millis(10)),
            ..CountingCmdb::default()
        };
        for n in 0..3 {
            cmdb = cmdb.with_vm(&vm(n), &format!("sys{n:02}"));
        }
        let cmdb = Arc::new(cmdb);
        let pacer = Arc::new(CountingPacer::default());
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .pacer(pacer.clone())
            .build()
            .unwrap();
        let ids = vm_ids(0..3);
        let binds = (0..10).map(|_| binder.bind_candidates(candidates(&refs(&ids), &[])));
        let bindings = futures::future::join_all(binds).await;
        assert!(bindings.iter().all(|b| b.primary.is_some()));
        let stats = binder.cache_stats();
        assert_eq!(cmdb.calls(), 3);
        assert_eq!(stats.lookups, 3);
        assert_eq!(stats.coalesced, 27, "joiners make no request");
        assert_eq!(pacer.acquires(), 3);
        assert_eq!(pacer.succeeded.load(Ordering::SeqCst), 3);

        // Cache hits make no request either.
        binder.bind_candidates(candidates(&refs(&ids), &[])).await;
        assert_eq!(pacer.acquires(), 3);
        assert_eq!(binder.cache_stats().hits, 3);

        // An unknown target: by resource id, then by name.
        binder.bind_candidates(candidates(&[&vm(9)], &[])).await;
        assert_eq!((cmdb.calls(), pacer.acquires()), (5, 5));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_wait_for_the_pacer() {
        let cmdb = Arc::new(CountingCmdb::default().with_vm(&vm(1), "sys01"));
        let pacer = Arc::new(CountingPacer {
            wait: Some(Duration::from_secs(1)),
            ..CountingPacer::default()
        });
        let binder = binder(Arc::clone(&cmdb), Arc::new(ManualClock::new()))
            .strategies(vec![Strategy::ResourceId])
            .deadline(Duration::from_millis(50))
            .pacer(pacer.clone())
            .build()
            .unwrap();
        let binding = binder.bind_candidates(candidates(&[&vm(1)], &[])).await;
        assert!(binding.primary.is_none());
        assert_eq!(
            (pacer.acquires(), cmdb.calls()),
            (1, 0),
            "held by the pacer"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(cmdb.calls(), 1);
        let binding = binder.bind_candidates(candidates(&[&vm(1)], &[])).await;
        assert_eq!(binding.primary.map(|ci| ci.id).as_deref(), Some("sys01"));
        assert_eq!(pacer.acquires(), 1, "answered from the cache");
    }

    #[tokio::test]
    async fn throttled_answers_are_reported_to_the_pacer() {
        let throttled = Arc::new(CountingCmdb {
            throttle: Some(Duration::from_secs(3)),
            ..CountingCmdb::default()
        });
        let pacer = Arc::new(CountingPacer::default());
        let binder = binder(Arc::clone(&throttled), Arc::new(ManualClock::new()))
            .strategies(vec![Strategy::ResourceId])
            .pacer(pacer.clone())
            .build()
            .unwrap();
        let binding = binder.bind_candidates(candidates(&[&vm(1)], &[])).await;
        assert!(binding.lookup_failed());
        assert_eq!(*pacer.throttled.lock().unwrap(), [Duration::from_secs(3)]);
        assert_eq!(pacer.succeeded.load(Ordering::SeqCst), 0);

        // A 503 without Retry-After is a failure, not a throttle.
        let failing = Arc::new(CountingCmdb {
            fail: true,
            ..CountingCmdb::default()
        });
        let pacer = Arc::new(CountingPacer::default());
        let second = Binder::builder(failing)
            .strategies(vec![Strategy::ResourceId])
            .pacer(pacer.clone())
            .build()
            .unwrap();
        second.bind_candidates(candidates(&[&vm(1)], &[])).await;
        assert_eq!(pacer.acquires(), 1);
        assert!(pacer.throttled.lock().unwrap().is_empty());
    }
}
