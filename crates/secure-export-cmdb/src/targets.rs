//! Candidate targets: what in an alert can name a configuration item.
//!
//! The rules (see the crate docs for the reasoning):
//! * `alertTargetIDs` entries that are resources come first, in the order received.
//! * Then the resource-naming dimensions, only those of the highest-priority name present
//!   (`_ResourceId` > `ResourceId` > `Resource` > `Computer`), as Azure itself derives
//!   `configurationItems` from them.
//! * Then `configurationItems` names not already covered (case-insensitively) by a target.
//! * Subscription and resource-group targets (service health, scope-level rules), and for
//!   non-log alerts Log Analytics workspace targets (metric alerts on log data carry the
//!   machine in their dimensions), are used only when the alert names no other resource.
//! * For log alerts, a Log Analytics workspace or Application Insights component target is the
//!   query scope, not the CI: the CIs are the resources that sent the data. It is never looked
//!   up; when nothing else binds it is reported as unmatched with that reason.
//! * For cost alerts, `configurationItems` holds the alert category (`budgets`), not a
//!   resource, and is not looked up.
//!
//! Bounds: a [`Collector`] keeps at most `max` targets (and `max` notes); further distinct
//! targets are only counted and named in [`Omitted`] (the first few). De-duplication is by
//! hash set on the normalized id and the lower-cased name, so collecting is linear in the
//! alert's size, and an entry past the limit costs a hash-set insert, not a [`Target`].

use std::collections::HashSet;
use std::fmt;

use crate::{Omitted, Unmatched};

/// What kind of monitoring service raised the alert, as far as binding cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AlertKind {
    /// Log search alerts (Log Analytics, Application Insights, Log Alerts V2, Simple Log Alert).
    Log,
    /// Cost / budget alerts.
    Cost,
    /// Everything else (metric, activity log, health, smart detector, ...).
    Other,
}

/// How much of Azure's hierarchy an ARM id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Subscription,
    ResourceGroup,
    Resource,
}

/// An ARM id as binding needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArmId {
    pub(crate) as_received: String,
    /// Lower-case form; equality of ids is equality of this.
    pub(crate) normalized: String,
    /// The last segment (resource name) for resources.
    pub(crate) name: Option<String>,
    /// Lower-case resource type such as `microsoft.compute/virtualmachines`.
    pub(crate) resource_type: Option<String>,
    pub(crate) scope: Scope,
}

impl ArmId {
    /// A borrowed view of this id.
    #[cfg(test)]
    pub(crate) fn view(&self) -> IdView<'_> {
        IdView {
            as_received: &self.as_received,
            normalized: &self.normalized,
            name: self.name.as_deref(),
            resource_type: self.resource_type.as_deref(),
            scope: self.scope,
        }
    }
}

/// An ARM id as the [`Collector`] first sees it: borrowed, so an id that is a duplicate or
/// beyond the limit costs no copy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdView<'a> {
    pub(crate) as_received: &'a str,
    pub(crate) normalized: &'a str,
    pub(crate) name: Option<&'a str>,
    pub(crate) resource_type: Option<&'a str>,
    pub(crate) scope: Scope,
}

impl IdView<'_> {
    fn to_arm_id(self) -> ArmId {
        ArmId {
            as_received: self.as_received.to_owned(),
            normalized: self.normalized.to_owned(),
            name: self.name.map(str::to_owned),
            resource_type: self.resource_type.map(str::to_owned),
            scope: self.scope,
        }
    }

    /// The scope of a log query: a Log Analytics workspace or an Application Insights
    /// component.
    fn is_log_query_scope(self) -> bool {
        self.is_workspace() || self.resource_type == Some("microsoft.insights/components")
    }

    fn is_workspace(self) -> bool {
        self.resource_type == Some("microsoft.operationalinsights/workspaces")
    }
}

/// An id that did not parse: the raw text and why.
pub(crate) type BadId<'a> = (&'a str, &'a dyn fmt::Display);

/// The priority of a resource-naming dimension (lower is preferred); `None` for other names.
pub(crate) fn dimension_priority(name: &str) -> Option<u8> {
    ["_ResourceId", "ResourceId", "Resource", "Computer"]
        .iter()
        .position(|known| known.eq_ignore_ascii_case(name))
        .and_then(|p| u8::try_from(p).ok())
}

/// One thing to resolve: an ARM id, a name, or both (a resource id and its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Shown in [`Unmatched::target`].
    pub(crate) label: String,
    pub(crate) id: Option<ArmId>,
    pub(crate) name: Option<String>,
}

impl Target {
    fn from_id(id: ArmId) -> Self {
        Self {
            label: id.as_received.clone(),
            name: id.name.clone(),
            id: Some(id),
        }
    }

    fn from_name(name: &str) -> Self {
        Self {
            label: name.to_owned(),
            id: None,
            name: Some(name.to_owned()),
        }
    }
}

/// A note about the alert's targets, reported as [`Unmatched`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    pub(crate) unmatched: Unmatched,
    /// Report it only when the alert ends up with no CI at all.
    pub(crate) only_if_unbound: bool,
}

/// The ordered, de-duplicated targets of an alert, plus notes on what was left out.
#[derive(Debug, Clone, Default)]
pub(crate) struct Candidates {
    pub(crate) targets: Vec<Target>,
    pub(crate) notes: Vec<Note>,
    /// Targets (and notes that are always reported) beyond the limit: not looked up.
    pub(crate) omitted: Omitted,
    /// Notes beyond the limit that would be reported only if nothing binds.
    pub(crate) omitted_if_unbound: Omitted,
}

const LOG_SCOPE_REASON: &str = "log alert scope (Log Analytics workspace or Application Insights \
     component) is not the CI; the alert names no resource that sent the data (no _ResourceId, \
     ResourceId, Resource or Computer dimension, no configurationItems)";

const COST_REASON: &str = "cost alert: configurationItems holds the alert category, not a resource";

/// Builds [`Candidates`] from an alert's entries, fed in candidate order: target ids, then
/// the highest-priority resource dimensions, then `configurationItems`.
#[derive(Debug)]
pub(crate) struct Collector {
    kind: AlertKind,
    max: usize,
    targets: Vec<Target>,
    /// Normalized ids of the resource targets, kept and omitted.
    ids: HashSet<String>,
    /// Lower-cased names of the targets, kept and omitted.
    names: HashSet<String>,
    omitted: Omitted,
    /// Subscription, resource-group and workspace targets: used only if no other target.
    scopes: Vec<Target>,
    scope_ids: HashSet<String>,
    scopes_omitted: Omitted,
    notes: Vec<Note>,
    notes_omitted: Omitted,
    notes_omitted_if_unbound: Omitted,
}

impl Collector {
    /// A collector keeping at most `max` targets and `max` notes (`max` of zero keeps one).
    pub(crate) fn new(kind: AlertKind, max: usize) -> Self {
        Self {
            kind,
            max: max.max(1),
            targets: Vec::new(),
            ids: HashSet::new(),
            names: HashSet::new(),
            omitted: Omitted::default(),
            scopes: Vec::new(),
            scope_ids: HashSet::new(),
            scopes_omitted: Omitted::default(),
            notes: Vec::new(),
            notes_omitted: Omitted::default(),
            notes_omitted_if_unbound: Omitted::default(),
        }
    }

    fn note(&mut self, target: &str, only_if_unbound: bool, reason: impl FnOnce() -> String) {
        if self.notes.len() < self.max {
            self.notes.push(Note {
                unmatched: Unmatched {
                    target: target.to_owned(),
                    reason: reason(),
                    lookup_failed: false,
                },
                only_if_unbound,
            });
        } else if only_if_unbound {
            self.notes_omitted_if_unbound.push(target);
        } else {
            self.notes_omitted.push(target);
        }
    }

    /// A subscription, resource-group or workspace id (used only if nothing else is named).
    fn scope(&mut self, id: IdView<'_>) {
        // Once a resource is named, the scopes will be dropped: not worth keeping.
        if !self.targets.is_empty() || !self.scope_ids.insert(id.normalized.to_owned()) {
            return;
        }
        if self.scopes.len() < self.max {
            self.scopes.push(Target::from_id(id.to_arm_id()));
        } else {
            self.scopes_omitted.push(id.as_received);
        }
    }

    fn id(&mut self, id: IdView<'_>) {
        match id.scope {
            Scope::Subscription | Scope::ResourceGroup => self.scope(id),
            Scope::Resource => {
                // One hash per id: insert, and stop if it was there.
                if !self.ids.insert(id.normalized.to_owned()) {
                    return;
                }
                // A target id and its resource name are one target.
                if let Some(name) = id.name {
                    self.names.insert(name.to_lowercase());
                }
                if self.targets.len() < self.max {
                    self.targets.push(Target::from_id(id.to_arm_id()));
                } else {
                    self.omitted.push(id.as_received);
                }
            }
        }
    }

    fn name(&mut self, name: &str) {
        let name = name.trim();
        if name.is_empty() {
            return;
        }
        if !self.names.insert(name.to_lowercase()) {
            return;
        }
        if self.targets.len() < self.max {
            self.targets.push(Target::from_name(name));
        } else {
            self.omitted.push(name);
        }
    }

    /// One `alertTargetIDs` entry.
    pub(crate) fn target_id(&mut self, id: Result<IdView<'_>, BadId<'_>>) {
        match id {
            Err((raw, err)) => self.note(raw, false, || {
                format!("alertTargetIDs entry is not an ARM resource id: {err}")
            }),
            Ok(id) if self.kind == AlertKind::Log && id.is_log_query_scope() => {
                self.note(id.as_received, true, || LOG_SCOPE_REASON.to_owned());
            }
            Ok(id) if id.is_workspace() => self.scope(id),
            Ok(id) => self.id(id),
        }
    }

    /// The value of a `_ResourceId` or `ResourceId` dimension (of the highest priority
    /// present).
    pub(crate) fn dimension_id(&mut self, dimension: &str, value: Result<IdView<'_>, BadId<'_>>) {
        match value {
            Ok(id) => self.id(id),
            // Metric dimensions named ResourceId may hold other ids (a VM's unique id): only
            // a log alert's resource dimension is meant to name the CI.
            Err((raw, err)) if self.kind == AlertKind::Log => self.note(raw, false, || {
                format!("dimension {dimension} is not an ARM resource id: {err}")
            }),
            Err(_) => {}
        }
    }

    /// The value of a `Resource` or `Computer` dimension (of the highest priority present).
    pub(crate) fn dimension_name(&mut self, value: &str) {
        self.name(value);
    }

    /// One `configurationItems` entry.
    pub(crate) fn configuration_item(&mut self, item: &str) {
        if self.kind == AlertKind::Cost {
            self.note(item, true, || COST_REASON.to_owned());
        } else {
            self.name(item);
        }
    }

    /// The candidates, in order.
    pub(crate) fn finish(self) -> Candidates {
        let (targets, mut omitted) = if self.targets.is_empty() {
            (self.scopes, self.scopes_omitted)
        } else {
            (self.targets, self.omitted)
        };
        omitted.append(self.notes_omitted);
        let mut out = Candidates {
            targets,
            notes: self.notes,
            omitted,
            omitted_if_unbound: self.notes_omitted_if_unbound,
        };
        if out.targets.is_empty() && out.notes.is_empty() {
            out.notes.push(Note {
                unmatched: Unmatched {
                    target: "(none)".to_owned(),
                    reason: "the alert names no target (no alertTargetIDs, resource dimensions or configurationItems)".to_owned(),
                    lookup_failed: false,
                },
                only_if_unbound: true,
            });
        }
        out
    }
}

impl Candidates {
    /// Keeps at most `max` targets and `max` notes; the rest are moved to the omitted lists
    /// (a no-op for candidates collected with that limit).
    pub(crate) fn limit(&mut self, max: usize) {
        let max = max.max(1);
        if self.targets.len() > max {
            let mut omitted = Omitted::default();
            for target in self.targets.drain(max..) {
                omitted.push(&target.label);
            }
            omitted.append(std::mem::take(&mut self.omitted));
            self.omitted = omitted;
        }
        if self.notes.len() > max {
            for note in self.notes.drain(max..) {
                if note.only_if_unbound {
                    self.omitted_if_unbound.push(&note.unmatched.target);
                } else {
                    self.omitted.push(&note.unmatched.target);
                }
            }
        }
    }
}

/// The parts of an alert binding reads, parsed (the alert path feeds a [`Collector`]
/// directly instead, parsing lazily).
#[cfg(test)]
#[derive(Debug, Clone)]
pub(crate) struct AlertFacts {
    pub(crate) kind: AlertKind,
    /// `alertTargetIDs` entries: parsed, or the raw text with the parse error.
    pub(crate) target_ids: Vec<Result<ArmId, (String, String)>>,
    /// Resource-naming dimensions `(name, value)`; values of `_ResourceId` / `ResourceId` are
    /// parsed ARM ids or the raw text with the parse error.
    pub(crate) dimensions: Vec<Dimension>,
    pub(crate) configuration_items: Vec<String>,
}

/// One resource-naming dimension.
#[cfg(test)]
#[derive(Debug, Clone)]
pub(crate) enum Dimension {
    /// `_ResourceId` or `ResourceId`.
    ResourceId {
        dimension: String,
        value: Result<ArmId, (String, String)>,
    },
    /// `Resource` or `Computer` (a name).
    Name { dimension: String, value: String },
}

#[cfg(test)]
impl Dimension {
    fn dimension_name(&self) -> &str {
        match self {
            Self::ResourceId { dimension, .. } | Self::Name { dimension, .. } => dimension,
        }
    }
}

#[cfg(test)]
fn bad(err: &(String, String)) -> BadId<'_> {
    (&err.0, &err.1)
}

#[cfg(test)]
impl Candidates {
    /// Collects the candidates of parsed facts, without a limit.
    pub(crate) fn collect(facts: AlertFacts) -> Self {
        Self::collect_bounded(facts, usize::MAX)
    }

    /// Collects the candidates of parsed facts, keeping at most `max` targets.
    pub(crate) fn collect_bounded(facts: AlertFacts, max: usize) -> Self {
        let mut out = Collector::new(facts.kind, max);
        for target in &facts.target_ids {
            out.target_id(target.as_ref().map(ArmId::view).map_err(bad));
        }
        let best = facts
            .dimensions
            .iter()
            .filter_map(|d| dimension_priority(d.dimension_name()))
            .min();
        for dimension in &facts.dimensions {
            if best.is_none() || dimension_priority(dimension.dimension_name()) != best {
                continue;
            }
            match dimension {
                Dimension::ResourceId { dimension, value } => {
                    out.dimension_id(dimension, value.as_ref().map(ArmId::view).map_err(bad));
                }
                Dimension::Name { value, .. } => out.dimension_name(value),
            }
        }
        for item in &facts.configuration_items {
            out.configuration_item(item);
        }
        out.finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A hand-built ARM id (the schema crate's parser is exercised by the integration tests).
    pub(crate) fn arm(id: &str) -> ArmId {
        let normalized = id.to_ascii_lowercase();
        let segments: Vec<&str> = normalized.trim_matches('/').split('/').collect();
        let (scope, resource_type, name) = match segments.as_slice() {
            ["subscriptions", _] => (Scope::Subscription, None, None),
            ["subscriptions", _, "resourcegroups", _] => (Scope::ResourceGroup, None, None),
            [_, _, _, _, "providers", ns, ty, ..] => {
                let original_name = id.rsplit('/').next().map(str::to_owned);
                (Scope::Resource, Some(format!("{ns}/{ty}")), original_name)
            }
            _ => (Scope::Resource, None, None),
        };
        ArmId {
            as_received: id.to_owned(),
            normalized,
            name,
            resource_type,
            scope,
        }
    }

    fn facts(kind: AlertKind, ids: &[&str], dims: &[(&str, &str)], cis: &[&str]) -> AlertFacts {
        AlertFacts {
            kind,
            target_ids: ids.iter().map(|id| Ok(arm(id))).collect(),
            dimensions: dims
                .iter()
                .map(|(name, value)| {
                    if dimension_priority(name).is_some_and(|p| p < 2) {
                        Dimension::ResourceId {
                            dimension: (*name).to_owned(),
                            value: Ok(arm(value)),
                        }
                    } else {
                        Dimension::Name {
                            dimension: (*name).to_owned(),
                            value: (*value).to_owned(),
                        }
                    }
                })
                .collect(),
            configuration_items: cis.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn labels(c: &Candidates) -> Vec<&str> {
        c.targets.iter().map(|t| t.label.as_str()).collect()
    }

    const VM: &str =
        "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/Web01";
    const WS: &str =
        "/subscriptions/s/resourcegroups/rg/providers/microsoft.operationalinsights/workspaces/ws";

    #[test]
    fn metric_alert_target_and_its_configuration_item_are_one_target() {
        let c = Candidates::collect(facts(AlertKind::Other, &[VM], &[], &["web01"]));
        assert_eq!(labels(&c), [VM]);
        assert_eq!(c.targets[0].name.as_deref(), Some("Web01"));
    }

    #[test]
    fn log_alert_workspace_is_replaced_by_the_resources_that_sent_data() {
        let c = Candidates::collect(facts(
            AlertKind::Log,
            &[WS],
            &[("Computer", "web01"), ("Computer", "web02")],
            &["web01", "web02"],
        ));
        assert_eq!(labels(&c), ["web01", "web02"]);
        assert!(c.notes.iter().all(|n| n.only_if_unbound));
    }

    #[test]
    fn only_the_highest_priority_dimension_is_used() {
        let c = Candidates::collect(facts(
            AlertKind::Log,
            &[WS],
            &[("Computer", "web01"), ("_ResourceId", VM)],
            &[],
        ));
        assert_eq!(labels(&c), [VM]);
    }

    #[test]
    fn ids_compare_case_insensitively() {
        let c = Candidates::collect(facts(
            AlertKind::Log,
            &[VM],
            &[("ResourceId", &VM.to_lowercase())],
            &[],
        ));
        assert_eq!(labels(&c), [VM]);
    }

    #[test]
    fn subscription_targets_only_when_nothing_else() {
        let sub = "/subscriptions/S";
        let c = Candidates::collect(facts(AlertKind::Other, &[sub], &[], &[]));
        assert_eq!(labels(&c), [sub]);
        let c = Candidates::collect(facts(AlertKind::Other, &[sub, VM], &[], &[]));
        assert_eq!(labels(&c), [VM]);
    }

    #[test]
    fn metric_alert_on_a_workspace_prefers_the_dimension_resource() {
        let c = Candidates::collect(facts(
            AlertKind::Other,
            &[WS],
            &[("Computer", "web01")],
            &[],
        ));
        assert_eq!(labels(&c), ["web01"]);
        let c = Candidates::collect(facts(AlertKind::Other, &[WS], &[], &[]));
        assert_eq!(labels(&c), [WS]);
    }

    #[test]
    fn an_alert_without_targets_says_so() {
        let c = Candidates::collect(facts(AlertKind::Other, &[], &[], &[]));
        assert!(c.targets.is_empty());
        assert_eq!(c.notes[0].unmatched.target, "(none)");
    }

    #[test]
    fn cost_alert_category_is_not_a_target() {
        let c = Candidates::collect(facts(AlertKind::Cost, &[], &[], &["budgets"]));
        assert!(c.targets.is_empty());
        assert_eq!(c.notes.len(), 1);
    }

    #[test]
    fn invalid_target_ids_are_always_reported() {
        let mut f = facts(AlertKind::Other, &[VM], &[], &[]);
        f.target_ids.push(Err((
            "not-an-id".to_owned(),
            "must start with /subscriptions/".to_owned(),
        )));
        let c = Candidates::collect(f);
        assert_eq!(labels(&c), [VM]);
        assert_eq!(c.notes.len(), 1);
        assert!(!c.notes[0].only_if_unbound);
    }

    /// The quadratic collection this module had before the bounds, kept as the reference the
    /// linear one must match exactly (targets, their order, notes).
    fn reference(facts: AlertFacts) -> (Vec<Target>, Vec<Note>) {
        fn same_id(t: &Target, id: &ArmId) -> bool {
            t.id.as_ref().is_some_and(|m| m.normalized == id.normalized)
        }
        fn same_name(t: &Target, name: &str) -> bool {
            t.name
                .as_deref()
                .is_some_and(|m| m.to_lowercase() == name.to_lowercase())
        }
        fn push_unique(list: &mut Vec<Target>, id: ArmId) {
            if !list.iter().any(|t| same_id(t, &id)) {
                list.push(Target::from_id(id));
            }
        }
        fn push_id(targets: &mut Vec<Target>, scopes: &mut Vec<Target>, id: ArmId) {
            match id.scope {
                Scope::Subscription | Scope::ResourceGroup => push_unique(scopes, id),
                Scope::Resource => push_unique(targets, id),
            }
        }
        fn push_name(targets: &mut Vec<Target>, name: &str) {
            let name = name.trim();
            if !name.is_empty() && !targets.iter().any(|t| same_name(t, name)) {
                targets.push(Target::from_name(name));
            }
        }
        fn note(target: &str, reason: String, only_if_unbound: bool) -> Note {
            Note {
                unmatched: Unmatched {
                    target: target.to_owned(),
                    reason,
                    lookup_failed: false,
                },
                only_if_unbound,
            }
        }
        let (mut targets, mut scopes, mut notes) = (Vec::new(), Vec::new(), Vec::new());
        for target in facts.target_ids {
            match target {
                Err((raw, err)) => notes.push(note(
                    &raw,
                    format!("alertTargetIDs entry is not an ARM resource id: {err}"),
                    false,
                )),
                Ok(id) if facts.kind == AlertKind::Log && id.view().is_log_query_scope() => {
                    notes.push(note(&id.as_received, LOG_SCOPE_REASON.to_owned(), true));
                }
                Ok(id) if id.view().is_workspace() => push_unique(&mut scopes, id),
                Ok(id) => push_id(&mut targets, &mut scopes, id),
            }
        }
        let best = facts
            .dimensions
            .iter()
            .filter_map(|d| dimension_priority(d.dimension_name()))
            .min();
        for dimension in &facts.dimensions {
            if best.is_none() || dimension_priority(dimension.dimension_name()) != best {
                continue;
            }
            match dimension {
                Dimension::ResourceId { value: Ok(id), .. } => {
                    push_id(&mut targets, &mut scopes, id.clone());
                }
                Dimension::ResourceId {
                    dimension,
                    value: Err((raw, err)),
                } if facts.kind == AlertKind::Log => notes.push(note(
                    raw,
                    format!("dimension {dimension} is not an ARM resource id: {err}"),
                    false,
                )),
                Dimension::ResourceId { value: Err(_), .. } => {}
                Dimension::Name { value, .. } => push_name(&mut targets, value),
            }
        }
        for item in &facts.configuration_items {
            if facts.kind == AlertKind::Cost {
                notes.push(note(item, COST_REASON.to_owned(), true));
                continue;
            }
            push_name(&mut targets, item);
        }
        if targets.is_empty() {
            targets = scopes;
        }
        if targets.is_empty() && notes.is_empty() {
            notes.push(note(
                "(none)",
                "the alert names no target (no alertTargetIDs, resource dimensions or configurationItems)".to_owned(),
                true,
            ));
        }
        (targets, notes)
    }

    /// A small deterministic generator (no dependency needed for this).
    struct Lcg(u64);

    impl Lcg {
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let at = usize::try_from(self.0 >> 33).unwrap() % items.len();
            &items[at]
        }
    }

    const IDS: &[&str] = &[
        VM,
        "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/web01",
        "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/WEB02",
        "/subscriptions/s/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachines/web02",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/Ärger",
        "/subscriptions/S",
        "/subscriptions/s",
        "/subscriptions/s/resourceGroups/RG",
        WS,
        "/subscriptions/s/resourceGroups/rg/providers/microsoft.insights/components/ai1",
        "/subscriptions/s/odd",
        "(invalid)",
    ];
    const NAMES: &[&str] = &[
        "web01", "WEB01", " Web02 ", "web03", "ärger", "ÄRGER", "", "ws", "ai1", "odd", "budgets",
    ];

    fn id_or_error(raw: &str) -> Result<ArmId, (String, String)> {
        if raw.starts_with('/') {
            Ok(arm(raw))
        } else {
            Err((raw.to_owned(), "must start with /subscriptions/".to_owned()))
        }
    }

    fn random_facts(rng: &mut Lcg) -> AlertFacts {
        let kind = *rng.pick(&[AlertKind::Log, AlertKind::Cost, AlertKind::Other]);
        let sizes = [0, 1, 2, 3, 5, 8];
        let target_ids = (0..*rng.pick(&sizes))
            .map(|_| id_or_error(rng.pick::<&str>(IDS)))
            .collect();
        let dimensions = (0..*rng.pick(&sizes))
            .map(|_| {
                let dimension =
                    (*rng.pick(&["_ResourceId", "resourceid", "Resource", "COMPUTER"])).to_owned();
                if dimension_priority(&dimension).is_some_and(|p| p < 2) {
                    Dimension::ResourceId {
                        dimension,
                        value: id_or_error(rng.pick::<&str>(IDS)),
                    }
                } else {
                    Dimension::Name {
                        dimension,
                        value: (*rng.pick(NAMES)).to_owned(),
                    }
                }
            })
            .collect();
        let configuration_items = (0..*rng.pick(&sizes))
            .map(|_| (*rng.pick(NAMES)).to_owned())
            .collect();
        AlertFacts {
            kind,
            target_ids,
            dimensions,
            configuration_items,
        }
    }

    #[test]
    fn linear_de_duplication_matches_the_quadratic_reference() {
        let mut rng = Lcg(7);
        for case in 0..5_000 {
            let facts = random_facts(&mut rng);
            let (want_targets, want_notes) = reference(facts.clone());
            let got = Candidates::collect(facts.clone());
            assert_eq!(got.targets, want_targets, "case {case}: {facts:?}");
            assert_eq!(got.notes, want_notes, "case {case}: {facts:?}");
            assert!(got.omitted.is_empty() && got.omitted_if_unbound.is_empty());
        }
    }

    #[test]
    fn de_duplication_keeps_the_first_spelling_and_order() {
        let c = Candidates::collect(facts(
            AlertKind::Log,
            &[VM, &VM.to_uppercase(), &VM.to_lowercase()],
            &[
                ("Computer", "db01"),
                ("Computer", "DB01"),
                ("Computer", "web01"),
            ],
            &["WEB01", "Ärger", "ärger", " db01 ", "app01"],
        ));
        assert_eq!(labels(&c), [VM, "db01", "Ärger", "app01"]);
    }

    fn vms(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                format!(
                    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm{i:04}"
                )
            })
            .collect()
    }

    #[test]
    fn only_the_first_max_targets_are_kept_and_the_rest_counted() {
        let ids = vms(6_000);
        let names: Vec<String> = (0..6_000).map(|i| format!("VM{i:04}")).collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let c = Candidates::collect_bounded(facts(AlertKind::Other, &id_refs, &[], &name_refs), 50);
        assert_eq!(labels(&c), id_refs[..50]);
        // Each configurationItem names one of the targets (kept or omitted): not counted again.
        assert_eq!(c.omitted.count, 5_950);
        assert_eq!(c.omitted.targets, id_refs[50..70]);
        assert!(c.notes.is_empty());
        assert!(c.omitted_if_unbound.is_empty());
    }

    #[test]
    fn duplicates_beyond_the_limit_are_not_counted_but_new_names_are() {
        let ids = vms(4);
        let upper: Vec<String> = ids.iter().map(|id| id.to_uppercase()).collect();
        let mut all: Vec<&str> = ids.iter().map(String::as_str).collect();
        all.extend(upper.iter().map(String::as_str));
        let c = Candidates::collect_bounded(
            facts(
                AlertKind::Other,
                &all,
                &[],
                &["VM0003", "vm0000", "other1", "OTHER1", "other2"],
            ),
            2,
        );
        assert_eq!(labels(&c), [ids[0].as_str(), ids[1].as_str()]);
        assert_eq!(c.omitted.count, 4, "vm0002, vm0003, other1, other2");
        assert_eq!(
            c.omitted.targets,
            [ids[2].as_str(), ids[3].as_str(), "other1", "other2"]
        );
    }

    #[test]
    fn notes_beyond_the_limit_are_omitted_by_their_reporting_rule() {
        let mut f = facts(
            AlertKind::Cost,
            &[],
            &[],
            &["budgets", "forecast", "actual"],
        );
        for i in 0..5 {
            f.target_ids
                .push(Err((format!("bad{i}"), "not an id".to_owned())));
        }
        let c = Candidates::collect_bounded(f, 3);
        let noted: Vec<&str> = c
            .notes
            .iter()
            .map(|n| n.unmatched.target.as_str())
            .collect();
        assert_eq!(noted, ["bad0", "bad1", "bad2"]);
        assert_eq!(
            (c.omitted.count, c.omitted.targets.as_slice()),
            (2, ["bad3", "bad4"].map(str::to_owned).as_slice())
        );
        assert_eq!(c.omitted_if_unbound.count, 3, "the cost notes");
    }

    #[test]
    fn scope_targets_are_bounded_when_they_are_used() {
        let subs: Vec<String> = (0..100).map(|i| format!("/subscriptions/s{i}")).collect();
        let refs: Vec<&str> = subs.iter().map(String::as_str).collect();
        let c = Candidates::collect_bounded(facts(AlertKind::Other, &refs, &[], &[]), 10);
        assert_eq!(labels(&c), refs[..10]);
        assert_eq!(c.omitted.count, 90);
        // A resource anywhere makes the scopes (and their overflow) irrelevant.
        let mut with_vm = refs.clone();
        with_vm.push(VM);
        let c = Candidates::collect_bounded(facts(AlertKind::Other, &with_vm, &[], &[]), 10);
        assert_eq!(labels(&c), [VM]);
        assert!(c.omitted.is_empty());
    }

    #[test]
    fn limit_after_collection_equals_collecting_bounded() {
        let mut rng = Lcg(11);
        for case in 0..2_000 {
            let facts = random_facts(&mut rng);
            for max in [1, 2, 3] {
                let mut limited = Candidates::collect(facts.clone());
                limited.limit(max);
                let bounded = Candidates::collect_bounded(facts.clone(), max);
                assert_eq!(limited.targets, bounded.targets, "case {case} max {max}");
                assert_eq!(limited.notes, bounded.notes, "case {case} max {max}");
                assert_eq!(limited.omitted, bounded.omitted, "case {case} max {max}");
                assert_eq!(
                    limited.omitted_if_unbound, bounded.omitted_if_unbound,
                    "case {case} max {max}"
                );
            }
        }
    }
}
