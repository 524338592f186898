//! Alert -> work item: title, description, severity and extra fields.
//!
//! The built-in title is `[Sev1] <rule> - <resource name>`, cut to the backend's title limit
//! ([`Mapping::with_title_limit`]); the built-in description lists the essentials, the context
//! summary, links, raw ids and the CMDB binding result (bound CIs, and why targets stayed
//! unbound).
//!
//! Templates use [minijinja](https://docs.rs/minijinja) syntax. Variables available to every
//! template:
//!
//! | variable | content |
//! |---|---|
//! | `connection` | connection name |
//! | `alert_id`, `rule`, `rule_id` | `essentials.alertId`, `alertRule`, `alertRuleID` |
//! | `severity` | `"Sev0"`..`"Sev4"` (`"Sev?"` when absent); `severity_number` 0..4 or none |
//! | `condition` | `"Fired"` or `"Resolved"` |
//! | `monitoring_service`, `signal_type` | as received |
//! | `fired_at`, `resolved_at`, `event_at` | RFC 3339 times |
//! | `description`, `investigation_link` | `essentials.description`, `investigationLink` |
//! | `resource_group`, `resource_type`, `resource_name` | target resource group/type, first target name |
//! | `targets`, `target_names` | target resource ids, and their names |
//! | `configuration_items` | `essentials.configurationItems` |
//! | `context_kind`, `context_summary` | `metric_static`, ..., and a one-paragraph summary |
//! | `custom_properties` | the action group's `customProperties` map |
//! | `cis` | bound CIs: list of `{id, name, class}`; the first is the primary CI |
//! | `unbound` | targets not bound: list of `{target, reason}` |
//! | `warnings` | parser warnings |
//!
//! ```
//! use secure_export::mapping::Mapping;
//! let m = Mapping::default()
//!     .with_title_template("{{ severity }} {{ rule }} on {{ resource_name }}")?
//!     .with_field_template("assignment_group", "{{ custom_properties.team | default('ops') }}")?;
//! # Ok::<(), secure_export::mapping::MappingError>(())
//! ```

use std::collections::BTreeMap;

use minijinja::Environment;
use secure_export_itsm::{CiRef, NewWorkItem, Severity};
use serde::Serialize;

use crate::keys::AlertFacts;

/// Default title length limit (ServiceNow `short_description` is 160 characters).
pub const DEFAULT_TITLE_LIMIT: usize = 160;

/// The title length limit of a backend kind (`"bmc"`: 100, others: 160).
#[must_use]
pub fn title_limit_of(backend: &str) -> usize {
    match backend {
        "bmc" => 100,
        _ => DEFAULT_TITLE_LIMIT,
    }
}

/// A template that does not compile or render.
#[derive(Debug, Clone, thiserror::Error)]
#[error("template {name}: {message}")]
pub struct MappingError {
    /// Which template (`title`, `description`, `field:<name>`).
    pub name: String,
    /// What is wrong.
    pub message: String,
}

/// The CMDB binding result the mapping shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BindingSummary {
    /// Bound CIs; the first is the primary CI.
    pub cis: Vec<CiRef>,
    /// Targets that were not bound, with the reason.
    pub unbound: Vec<Unbound>,
    /// Targets not looked up because the alert named more than `max_targets` (a bounded
    /// note listing some of them and counting the rest).
    pub omitted: Option<String>,
}

/// One unbound target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unbound {
    /// The target (resource id or name).
    pub target: String,
    /// Why it was not bound.
    pub reason: String,
}

/// How alerts become work items (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Mapping {
    env: Environment<'static>,
    title: bool,
    description: bool,
    fields: Vec<String>,
    title_limit: Option<usize>,
    severities: [Severity; 5],
    default_severity: Severity,
}

impl Default for Mapping {
    fn default() -> Self {
        Self {
            env: Environment::new(),
            title: false,
            description: false,
            fields: Vec::new(),
            title_limit: None,
            severities: [
                Severity::Sev0,
                Severity::Sev1,
                Severity::Sev2,
                Severity::Sev3,
                Severity::Sev4,
            ],
            default_severity: Severity::Sev3,
        }
    }
}

#[derive(Serialize)]
struct Vars<'a> {
    connection: &'a str,
    alert_id: &'a str,
    rule: Option<&'a str>,
    rule_id: Option<&'a str>,
    severity: String,
    severity_number: Option<u8>,
    condition: &'static str,
    monitoring_service: Option<&'a str>,
    signal_type: Option<&'a str>,
    fired_at: Option<String>,
    resolved_at: Option<String>,
    event_at: String,
    description: Option<&'a str>,
    investigation_link: Option<&'a str>,
    resource_group: Option<&'a str>,
    resource_type: Option<&'a str>,
    resource_name: &'a str,
    targets: &'a [String],
    target_names: &'a [String],
    configuration_items: &'a [String],
    context_kind: &'a str,
    context_summary: &'a str,
    custom_properties: &'a BTreeMap<String, serde_json::Value>,
    cis: &'a [CiRef],
    unbound: &'a [Unbound],
    warnings: &'a [String],
}

fn severity_label(n: Option<u8>) -> String {
    n.map_or_else(|| "Sev?".to_owned(), |n| format!("Sev{n}"))
}

/// Most targets (and Azure configuration items) the built-in description lists; the rest are
/// counted ("... and N more"), so one alert naming thousands of resources stays readable.
pub const LISTED_TARGETS: usize = 50;

/// Cuts `s` to at most `limit` characters, ending with `...` when cut.
#[must_use]
pub fn truncate_chars(s: &str, limit: usize) -> String {
    if s.chars().count() <= limit {
        return s.to_owned();
    }
    let keep = limit.saturating_sub(3);
    let mut out: String = s.chars().take(keep).collect();
    out.push_str(&"...".chars().take(limit.min(3)).collect::<String>());
    out
}

impl Mapping {
    /// Compiles a template and renders it once against a sample alert, so that unknown
    /// filters or functions are reported now rather than on the first real alert.
    fn add(&mut self, name: String, source: &str) -> Result<(), MappingError> {
        self.env
            .add_template_owned(name.clone(), source.to_owned())
            .map_err(|e| MappingError {
                name: name.clone(),
                message: e.to_string(),
            })?;
        let sample = AlertFacts::new("sample", crate::keys::Condition::Fired, chrono::Utc::now());
        let binding = BindingSummary::default();
        self.render(&name, &self.vars("sample", &sample, &binding))
            .map(drop)
    }

    /// Replaces the built-in title with a template.
    pub fn with_title_template(mut self, source: &str) -> Result<Self, MappingError> {
        self.add("title".to_owned(), source)?;
        self.title = true;
        Ok(self)
    }

    /// Replaces the built-in description with a template.
    pub fn with_description_template(mut self, source: &str) -> Result<Self, MappingError> {
        self.add("description".to_owned(), source)?;
        self.description = true;
        Ok(self)
    }

    /// Sets a backend field (for example `assignment_group`, `category`) from a template.
    pub fn with_field_template(mut self, field: &str, source: &str) -> Result<Self, MappingError> {
        self.add(format!("field:{field}"), source)?;
        if !self.fields.iter().any(|f| f == field) {
            self.fields.push(field.to_owned());
        }
        Ok(self)
    }

    /// Sets the title length limit (characters) of the backend.
    #[must_use]
    pub fn with_title_limit(mut self, limit: usize) -> Self {
        self.title_limit = Some(limit.max(4));
        self
    }

    /// Applies the title limit of a backend kind unless one was set explicitly (the engine
    /// calls this with [`ItsmConnector::backend`](secure_export_itsm::ItsmConnector::backend)):
    /// BMC Helix `Description` holds 100 characters, ServiceNow `short_description` 160.
    #[must_use]
    pub fn with_backend_defaults(mut self, backend: &str) -> Self {
        if self.title_limit.is_none() {
            self.title_limit = Some(title_limit_of(backend));
        }
        self
    }

    /// Maps Azure severity `sev` (0..=4) to an ITSM severity (the default is the identity).
    #[must_use]
    pub fn with_severity(mut self, sev: u8, to: Severity) -> Self {
        if let Some(slot) = self.severities.get_mut(usize::from(sev)) {
            *slot = to;
        }
        self
    }

    /// The ITSM severity used when the alert has none (default `Sev3`).
    #[must_use]
    pub fn with_default_severity(mut self, to: Severity) -> Self {
        self.default_severity = to;
        self
    }

    /// The ITSM severity of an alert.
    #[must_use]
    pub fn severity(&self, facts: &AlertFacts) -> Severity {
        facts
            .severity
            .and_then(|s| self.severities.get(usize::from(s)).copied())
            .unwrap_or(self.default_severity)
    }

    fn vars<'a>(
        &self,
        connection: &'a str,
        facts: &'a AlertFacts,
        binding: &'a BindingSummary,
    ) -> Vars<'a> {
        Vars {
            connection,
            alert_id: &facts.alert_id,
            rule: facts.rule.as_deref(),
            rule_id: facts.rule_id.as_deref(),
            severity: severity_label(facts.severity),
            severity_number: facts.severity,
            condition: facts.condition.as_str(),
            monitoring_service: facts.monitoring_service.as_deref(),
            signal_type: facts.signal_type.as_deref(),
            fired_at: facts.fired_at.map(|t| t.to_rfc3339()),
            resolved_at: facts.resolved_at.map(|t| t.to_rfc3339()),
            event_at: facts.event_at.to_rfc3339(),
            description: facts.description.as_deref(),
            investigation_link: facts.investigation_link.as_deref(),
            resource_group: facts.resource_group.as_deref(),
            resource_type: facts.resource_type.as_deref(),
            resource_name: facts.resource_name(),
            targets: &facts.targets,
            target_names: &facts.target_names,
            configuration_items: &facts.configuration_items,
            context_kind: &facts.context_kind,
            context_summary: &facts.context_summary,
            custom_properties: &facts.custom_properties,
            cis: &binding.cis,
            unbound: &binding.unbound,
            warnings: &facts.warnings,
        }
    }

    fn render(&self, name: &str, vars: &Vars<'_>) -> Result<String, MappingError> {
        let err = |e: minijinja::Error| MappingError {
            name: name.to_owned(),
            message: e.to_string(),
        };
        self.env
            .get_template(name)
            .map_err(err)?
            .render(vars)
            .map_err(err)
    }

    /// The built-in title: `[Sev1] <rule> - <resource name>`.
    #[must_use]
    pub fn default_title(facts: &AlertFacts) -> String {
        format!(
            "[{}] {} - {}",
            severity_label(facts.severity),
            facts.rule.as_deref().unwrap_or("Azure Monitor alert"),
            facts.resource_name()
        )
    }

    /// The built-in description.
    #[must_use]
    pub fn default_description(facts: &AlertFacts, binding: &BindingSummary) -> String {
        let mut lines = Vec::new();
        let mut push = |k: &str, v: Option<&str>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                lines.push(format!("{k}: {v}"));
            }
        };
        push("Alert rule", facts.rule.as_deref());
        push("Severity", Some(&severity_label(facts.severity)));
        push("Condition", Some(facts.condition.as_str()));
        push("Monitoring service", facts.monitoring_service.as_deref());
        push("Signal type", facts.signal_type.as_deref());
        push("Fired", facts.fired_at.map(|t| t.to_rfc3339()).as_deref());
        push(
            "Resolved",
            facts.resolved_at.map(|t| t.to_rfc3339()).as_deref(),
        );
        push("Description", facts.description.as_deref());
        push("Resource group", facts.resource_group.as_deref());
        push("Resource type", facts.resource_type.as_deref());
        push("Context", Some(&facts.context_kind));
        push("Summary", Some(&facts.context_summary));
        push("Investigate", facts.investigation_link.as_deref());
        push("Alert id", Some(&facts.alert_id));
        push("Alert rule id", facts.rule_id.as_deref());
        for t in facts.targets.iter().take(LISTED_TARGETS) {
            push("Target", Some(t));
        }
        if let Some(more) = facts
            .targets
            .len()
            .checked_sub(LISTED_TARGETS)
            .filter(|n| *n > 0)
        {
            push("Target", Some(&format!("... and {more} more")));
        }
        for ci in facts.configuration_items.iter().take(LISTED_TARGETS) {
            push("Configuration item (Azure)", Some(ci));
        }
        if let Some(more) = facts
            .configuration_items
            .len()
            .checked_sub(LISTED_TARGETS)
            .filter(|n| *n > 0)
        {
            push(
                "Configuration item (Azure)",
                Some(&format!("... and {more} more")),
            );
        }
        for w in &facts.warnings {
            push("Note", Some(w));
        }
        for ci in &binding.cis {
            push("Bound CI", Some(&format!("{} ({})", ci.name, ci.id)));
        }
        for u in &binding.unbound {
            push("Not bound", Some(&format!("{}: {}", u.target, u.reason)));
        }
        push("Not looked up", binding.omitted.as_deref());
        lines.join("\n")
    }

    /// Builds the work item of an alert.
    pub fn work_item(
        &self,
        connection: &str,
        correlation_id: &str,
        facts: &AlertFacts,
        binding: &BindingSummary,
    ) -> Result<NewWorkItem, MappingError> {
        let vars = self.vars(connection, facts, binding);
        let title = if self.title {
            self.render("title", &vars)?
        } else {
            Self::default_title(facts)
        };
        let description = if self.description {
            self.render("description", &vars)?
        } else {
            Self::default_description(facts, binding)
        };
        let mut item = NewWorkItem::new(
            correlation_id,
            truncate_chars(
                title.trim(),
                self.title_limit.unwrap_or(DEFAULT_TITLE_LIMIT),
            ),
            self.severity(facts),
        )
        .with_description(description)
        .with_correlation_display(truncate_chars(
            &format!(
                "Azure Monitor: {}",
                facts.rule.as_deref().unwrap_or(&facts.alert_id)
            ),
            100,
        ));
        for ci in &binding.cis {
            item = item.with_ci(ci.clone());
        }
        for field in &self.fields {
            let value = self.render(&format!("field:{field}"), &vars)?;
            item = item.with_field(field.clone(), value);
        }
        Ok(item)
    }

    /// The work note added when the alert fires again.
    #[must_use]
    pub fn fired_again_note(facts: &AlertFacts, count: u32) -> String {
        format!(
            "Alert fired again at {} (fired {count} times). {}",
            facts.event_at.to_rfc3339(),
            Self::default_title(facts)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Condition;

    fn facts() -> AlertFacts {
        let mut f = AlertFacts::new("/subscriptions/s/alerts/1", Condition::Fired, Utc::now())
            .with_targets(["/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"]);
        f.rule = Some("High CPU".to_owned());
        f.severity = Some(1);
        f.custom_properties
            .insert("team".to_owned(), serde_json::json!("payments"));
        f
    }

    use chrono::Utc;

    #[test]
    fn default_title_description_and_severity() {
        let binding = BindingSummary {
            omitted: None,
            cis: vec![CiRef::new("ci1", "vm1")],
            unbound: vec![Unbound {
                target: "/x".to_owned(),
                reason: "no CI named x".to_owned(),
            }],
        };
        let item = Mapping::default()
            .work_item("c", "se-1", &facts(), &binding)
            .unwrap();
        assert_eq!(item.title, "[Sev1] High CPU - vm1");
        assert_eq!(item.severity, Severity::Sev1);
        assert_eq!(item.correlation_id, "se-1");
        assert_eq!(item.cis, vec![CiRef::new("ci1", "vm1")]);
        assert!(
            item.description
                .contains("Alert id: /subscriptions/s/alerts/1")
        );
        assert!(item.description.contains("Bound CI: vm1 (ci1)"));
        assert!(item.description.contains("Not bound: /x: no CI named x"));
        let mut none = facts();
        none.severity = None;
        let m = Mapping::default().with_severity(1, Severity::Sev0);
        assert_eq!(m.severity(&none), Severity::Sev3);
        assert_eq!(m.severity(&facts()), Severity::Sev0);
    }

    #[test]
    fn title_limit_counts_characters() {
        let mut f = facts();
        f.rule = Some("é".repeat(300));
        let item = Mapping::default()
            .with_title_limit(100)
            .work_item("c", "x", &f, &BindingSummary::default())
            .unwrap();
        assert_eq!(item.title.chars().count(), 100);
        assert!(item.title.ends_with("..."));
        assert_eq!(truncate_chars("abc", 3), "abc");
        let bmc = Mapping::default()
            .with_backend_defaults("bmc")
            .work_item("c", "x", &f, &BindingSummary::default())
            .unwrap();
        assert_eq!(bmc.title.chars().count(), 100);
        let explicit = Mapping::default()
            .with_title_limit(20)
            .with_backend_defaults("bmc");
        let item = explicit
            .work_item("c", "x", &f, &BindingSummary::default())
            .unwrap();
        assert_eq!(item.title.chars().count(), 20);
    }

    #[test]
    fn templates_see_documented_variables() {
        let m = Mapping::default()
            .with_title_template("{{ severity }}|{{ rule }}|{{ resource_name }}|{{ connection }}")
            .unwrap()
            .with_description_template("{% for c in cis %}{{ c.name }}{% endfor %}")
            .unwrap()
            .with_field_template("assignment_group", "{{ custom_properties.team }}")
            .unwrap()
            .with_field_template(
                "u_missing",
                "{{ custom_properties.nope | default('none') }}",
            )
            .unwrap();
        let b = BindingSummary {
            omitted: None,
            cis: vec![CiRef::new("1", "vm1")],
            unbound: vec![],
        };
        let item = m.work_item("conn", "x", &facts(), &b).unwrap();
        assert_eq!(item.title, "Sev1|High CPU|vm1|conn");
        assert_eq!(item.description, "vm1");
        assert_eq!(
            item.fields["assignment_group"],
            serde_json::json!("payments")
        );
        assert_eq!(item.fields["u_missing"], serde_json::json!("none"));
    }

    #[test]
    fn bad_template_names_itself() {
        let e = Mapping::default()
            .with_field_template("category", "{{ oops")
            .unwrap_err();
        assert_eq!(e.name, "field:category");
        let e = Mapping::default()
            .with_title_template("{{ rule | nosuchfilter }}")
            .unwrap_err();
        assert_eq!(e.name, "title");
    }
}
