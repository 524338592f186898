//! Binding Azure alert targets to CMDB configuration items.
//!
//! A [`CmdbLookup`] finds configuration items (CIs) in one CMDB: ServiceNow and BMC Helix
//! implement it in their backend crates, and you can implement it for your own CMDB.
//! A [`Binder`] turns an [`Alert`](secure_export_schema::Alert) into a [`Binding`]: the primary
//! CI of the work item, the other affected CIs, the targets it could not bind, each with a
//! reason the work item can carry ([`Binding::unmatched_note`]), and the targets it left out
//! because the alert names too many ([`Binding::omitted`]).
//!
//! # Candidate targets
//!
//! In this order, de-duplicated (ids and names compare case-insensitively):
//!
//! 1. `alertTargetIDs` that name resources (parsed ARM ids, compared lower-cased).
//! 2. Resource-naming dimensions, only those of the highest-priority name present:
//!    `_ResourceId` > `ResourceId` (ARM ids) > `Resource` > `Computer` (names). This is the
//!    order Azure itself derives `configurationItems` from. Log alerts v1 without such
//!    dimensions use the same columns of their embedded search results, as Azure did before
//!    scheduledQueryRules API 2021-08-01.
//! 3. `configurationItems` (resource names) not already covered by a target: a target id and
//!    its resource name are one target, tried by id and then by name.
//!
//! Deliberate special cases:
//!
//! * **Log alerts on a workspace or Application Insights component** (monitoring services
//!   Log Analytics, Application Insights, Log Alerts V2, Simple Log Alert): the target is the
//!   query scope, and the CI is the resource that sent the data, named by the dimensions and
//!   `configurationItems`. The workspace/component is never looked up; if nothing else binds,
//!   it is reported unmatched saying the alert names no source resource. (Metric and smart
//!   detector alerts on an Application Insights component do bind to the component.)
//! * **Subscription and resource-group targets** (service health, scope-level rules) are looked
//!   up by id only when the alert names no resource: a CMDB may hold the subscription as an
//!   account CI (ServiceNow `cmdb_ci_cloud_service_account`), and a static-map pattern such as
//!   `/subscriptions/<id>` or the fallback CI can bind it. The same holds for a workspace
//!   target of a non-log alert (a metric alert on log data names the machine in a dimension).
//! * A metric dimension called `ResourceId` whose value is not an ARM id (the documented
//!   metric sample carries a GUID there) is ignored; for log alerts it is reported unmatched.
//! * **Cost alerts**: `configurationItems` holds the category (`budgets`), not a resource, and
//!   is not looked up; such alerts bind to the fallback CI if one is configured.
//! * `alertTargetIDs` entries that are not ARM ids are always reported unmatched.
//!
//! ## Bounds
//!
//! One alert may name thousands of targets (its body is limited only by the receiver's size
//! limit), so binding is bounded per alert:
//!
//! * At most [`BinderBuilder::max_targets`] candidates (default
//!   [`DEFAULT_MAX_TARGETS`] = 50), the first in the order above, are looked up: each costs at
//!   most one request per lookup strategy (resource id, then name). The others are not looked
//!   up; [`Binding::omitted`] counts them and names the first [`NOTE_LIST_LIMIT`], and
//!   [`Binding::omitted_note`] (also part of [`Binding::unmatched_note`]) says so in the work
//!   item's notes. [`Binder::bind_each`] therefore returns at most `max_targets` bindings.
//!   Notes on malformed entries (a target that is not an ARM id, ...) are bounded the same
//!   way.
//! * Collecting the candidates is linear in the alert's size: de-duplication uses hash sets
//!   (of lower-cased ids and names), and an entry past the limit is parsed, classified and
//!   counted but not kept. For a 6,000-target alert that is a few milliseconds, the same
//!   order as parsing its JSON; collection yields to the scheduler every 1,000 entries, so it
//!   does not hold an async worker for that long.
//!
//! Notes list at most [`NOTE_LIST_LIMIT`] targets, then "... and N more".
//!
//! # Strategies
//!
//! Each target is tried with the configured [`Strategy`] list in order, stopping at the first
//! that binds: [`Strategy::ResourceId`], [`Strategy::Name`] (a name matching several CIs is
//! ambiguous and does not bind; [`BinderBuilder::class_hint`] narrows it), and
//! [`Strategy::StaticMap`]. [`Strategy::Fallback`], last, binds the alert to the connection's
//! fallback CI when no target bound. An empty list disables binding.
//!
//! # Cache
//!
//! Lookups are cached: found CIs for 10 minutes, "not found" for 1 minute, failures for 10
//! seconds (all configurable), bounded to 10,000 entries (least recently used go first).
//! Concurrent lookups of one key make one request (single flight). `bind` never waits more
//! than its deadline (default 2 s): a slower lookup degrades to "unbound" with a reason and
//! goes on in the background to fill the cache. [`Binder::cache_stats`] exposes the counters.
//!
//! Requests to the CMDB (cache misses that do not join a lookup in flight) are bounded and
//! paced per binder, that is per connection, across all its concurrent binds:
//!
//! * At most [`BinderBuilder::max_concurrent_lookups`] (default
//!   [`DEFAULT_MAX_CONCURRENT_LOOKUPS`] = 4) are in flight at a time; the others queue for a
//!   permit. A lookup that goes on in the background after its bind's deadline keeps its
//!   permit until it ends, so abandoned lookups cannot pile up past the bound. The lookup
//!   timeout (default 10 s) counts from the queue: a lookup that cannot even start in that
//!   time fails like one that got no answer.
//! * With a [`LookupPacer`] ([`BinderBuilder::pacer`]; the receiver passes its per-backend
//!   call limiter), each request first awaits [`LookupPacer::acquire`], and a throttled answer
//!   (429 or 503 with `Retry-After`) is reported to [`LookupPacer::throttled`]. Cache hits
//!   and single-flight joiners make no request and are not paced.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use secure_export_cmdb::{Binder, CiRecord, CiSource, CmdbLookup, LookupError};
//! use secure_export_schema::Alert;
//!
//! /// A one-VM CMDB.
//! #[derive(Debug)]
//! struct OneVm;
//!
//! #[async_trait]
//! impl CmdbLookup for OneVm {
//!     async fn by_resource_id(&self, id: &str) -> Result<Vec<CiRecord>, LookupError> {
//!         let vm = "/subscriptions/s1/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm1";
//!         Ok(if id == vm {
//!             vec![CiRecord { id: "sys-1".into(), name: "vm1".into(), class: None, source: CiSource::ResourceId }]
//!         } else {
//!             Vec::new()
//!         })
//!     }
//!     async fn by_name(&self, _: &str, _: Option<&str>) -> Result<Vec<CiRecord>, LookupError> {
//!         Ok(Vec::new())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let binder = Binder::builder(Arc::new(OneVm)).build()?;
//! let alert = Alert::from_slice(br#"{
//!   "schemaId": "azureMonitorCommonAlertSchema",
//!   "data": { "essentials": {
//!       "monitorCondition": "Fired", "monitoringService": "Platform",
//!       "alertTargetIDs": ["/subscriptions/S1/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/VM1"],
//!       "configurationItems": ["VM1"], "firedDateTime": "2024-05-01T10:00:00Z" },
//!     "alertContext": {} } }"#)?;
//! let binding = binder.bind(&alert).await;
//! assert_eq!(binding.primary.map(|ci| ci.id).as_deref(), Some("sys-1"));
//! assert!(binding.unmatched.is_empty());
//! assert_eq!(binder.cache_stats().lookups, 1);
//! # Ok(())
//! # }
//! ```

mod alert;
mod binder;
mod binding;
mod cache;
mod clock;
mod lookup;
mod static_map;
mod strategy;
mod targets;

pub use binder::{
    Binder, BinderBuilder, BinderError, DEFAULT_DEADLINE, DEFAULT_FAILURE_TTL,
    DEFAULT_LOOKUP_TIMEOUT, DEFAULT_MAX_CONCURRENT_LOOKUPS, DEFAULT_MAX_ENTRIES,
    DEFAULT_MAX_TARGETS, DEFAULT_NEGATIVE_TTL, DEFAULT_POSITIVE_TTL,
};
pub use binding::{Binding, NOTE_LIST_LIMIT, Omitted, Unmatched};
pub use cache::CacheStats;
pub use clock::{Clock, ManualClock, SystemClock};
pub use lookup::{CiRecord, CiSource, CmdbLookup, LookupError, LookupPacer};
pub use strategy::{ParseStrategyError, Strategy};
