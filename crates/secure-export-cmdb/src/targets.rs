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

use crate::Unmatched;

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

/// The parts of an alert binding reads.
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

/// The priority of a resource-naming dimension (lower is preferred); `None` for other names.
pub(crate) fn dimension_priority(name: &str) -> Option<u8> {
    ["_ResourceId", "ResourceId", "Resource", "Computer"]
        .iter()
        .position(|known| known.eq_ignore_ascii_case(name))
        .and_then(|p| u8::try_from(p).ok())
}

impl Dimension {
    fn dimension_name(&self) -> &str {
        match self {
            Self::ResourceId { dimension, .. } | Self::Name { dimension, .. } => dimension,
        }
    }
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

    fn same_id(&self, id: &ArmId) -> bool {
        self.id
            .as_ref()
            .is_some_and(|mine| mine.normalized == id.normalized)
    }

    fn same_name(&self, name: &str) -> bool {
        self.name
            .as_deref()
            .is_some_and(|mine| mine.to_lowercase() == name.to_lowercase())
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
}

/// The scope of a log query: a Log Analytics workspace or an Application Insights component.
fn is_log_query_scope(id: &ArmId) -> bool {
    is_workspace(id) || id.resource_type.as_deref() == Some("microsoft.insights/components")
}

fn is_workspace(id: &ArmId) -> bool {
    id.resource_type.as_deref() == Some("microsoft.operationalinsights/workspaces")
}

fn push_unique(list: &mut Vec<Target>, id: ArmId) {
    if !list.iter().any(|t| t.same_id(&id)) {
        list.push(Target::from_id(id));
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

impl Candidates {
    fn push_id(&mut self, scopes: &mut Vec<Target>, id: ArmId) {
        match id.scope {
            Scope::Subscription | Scope::ResourceGroup => push_unique(scopes, id),
            Scope::Resource => push_unique(&mut self.targets, id),
        }
    }

    fn push_name(&mut self, name: &str) {
        let name = name.trim();
        if !name.is_empty() && !self.targets.iter().any(|t| t.same_name(name)) {
            self.targets.push(Target::from_name(name));
        }
    }

    /// Collects the candidates of an alert.
    pub(crate) fn collect(facts: AlertFacts) -> Self {
        let mut out = Self::default();
        let mut scopes = Vec::new();

        for target in facts.target_ids {
            match target {
                Err((raw, err)) => out.notes.push(note(
                    &raw,
                    format!("alertTargetIDs entry is not an ARM resource id: {err}"),
                    false,
                )),
                Ok(id) if facts.kind == AlertKind::Log && is_log_query_scope(&id) => out.notes.push(note(
                    &id.as_received,
                    "log alert scope (Log Analytics workspace or Application Insights component) is \
                     not the CI; the alert names no resource that sent the data (no _ResourceId, \
                     ResourceId, Resource or Computer dimension, no configurationItems)"
                        .to_owned(),
                    true,
                )),
                Ok(id) if is_workspace(&id) => push_unique(&mut scopes, id),
                Ok(id) => out.push_id(&mut scopes, id),
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
                Dimension::ResourceId { value: Ok(id), .. } => out.push_id(&mut scopes, id.clone()),
                // Metric dimensions named ResourceId may hold other ids (a VM's unique id):
                // only a log alert's resource dimension is meant to name the CI.
                Dimension::ResourceId {
                    dimension,
                    value: Err((raw, err)),
                } if facts.kind == AlertKind::Log => {
                    out.notes.push(note(
                        raw,
                        format!("dimension {dimension} is not an ARM resource id: {err}"),
                        false,
                    ));
                }
                Dimension::ResourceId { value: Err(_), .. } => {}
                Dimension::Name { value, .. } => out.push_name(value),
            }
        }

        for item in &facts.configuration_items {
            if facts.kind == AlertKind::Cost {
                out.notes.push(note(
                    item,
                    "cost alert: configurationItems holds the alert category, not a resource"
                        .to_owned(),
                    true,
                ));
                continue;
            }
            out.push_name(item);
        }

        if out.targets.is_empty() {
            out.targets = scopes;
        }
        if out.targets.is_empty() && out.notes.is_empty() {
            out.notes.push(note(
                "(none)",
                "the alert names no target (no alertTargetIDs, resource dimensions or configurationItems)".to_owned(),
                true,
            ));
        }
        out
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
}
