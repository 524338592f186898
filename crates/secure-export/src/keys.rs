//! Idempotency and correlation keys, and [`AlertFacts`]: the part of an alert the engine keeps.
//!
//! * The **idempotency key** of a delivery is `(connection, alertId, monitorCondition,
//!   fired/resolved time)`: Azure redelivers on 408/429/503/504 and timeouts, and every
//!   redelivery of the same event maps to the same key, so it is recorded once.
//! * The **correlation key** names the work item an event belongs to, per
//!   [`CorrelationMode`]: `alert` (the alert id), `rule+target` (alert rule id, or name, plus the
//!   sorted normalized target resource ids) or `ci` (one per bound configuration item).
//! * The **order key** of a job is the key the outbox serializes on: the correlation key in
//!   `alert` and `rule+target` mode; in `ci` mode (whose keys are known only after binding) the
//!   `rule+target` key, since the same targets bind to the same CIs.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use secure_export_schema::{Alert, MonitorCondition};

use crate::lifecycle::CorrelationMode;

/// Fired or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Condition {
    /// `monitorCondition: "Fired"`.
    Fired,
    /// `monitorCondition: "Resolved"`.
    Resolved,
}

impl Condition {
    /// `"Fired"` or `"Resolved"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fired => "Fired",
            Self::Resolved => "Resolved",
        }
    }
}

/// What the engine keeps of an accepted alert: everything the lifecycle, the mapping and the
/// templates need, serialized into the job so a worker never depends on re-parsing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AlertFacts {
    /// `essentials.alertId` (or `originAlertId`, or a digest of the body when both are absent).
    pub alert_id: String,
    /// `essentials.alertRule`.
    pub rule: Option<String>,
    /// `essentials.alertRuleID`.
    pub rule_id: Option<String>,
    /// Severity 0 (most severe) to 4; `None` when absent or unknown.
    pub severity: Option<u8>,
    /// Fired or resolved.
    pub condition: Condition,
    /// `essentials.monitoringService` as received (`Platform`, `ServiceHealth`, ...).
    pub monitoring_service: Option<String>,
    /// `essentials.signalType` as received.
    pub signal_type: Option<String>,
    /// `essentials.firedDateTime`.
    pub fired_at: Option<DateTime<Utc>>,
    /// `essentials.resolvedDateTime`.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The event time: resolved time when resolved, else fired time (receive time as fallback).
    pub event_at: DateTime<Utc>,
    /// Target resource ids as received.
    pub targets: Vec<String>,
    /// Target resource ids normalized (lowercase), sorted, deduplicated.
    pub targets_normalized: Vec<String>,
    /// Target resource names (last ARM id segment), in target order.
    pub target_names: Vec<String>,
    /// `essentials.configurationItems`.
    pub configuration_items: Vec<String>,
    /// `essentials.description`.
    pub description: Option<String>,
    /// `essentials.investigationLink`.
    pub investigation_link: Option<String>,
    /// `essentials.targetResourceGroup`.
    pub resource_group: Option<String>,
    /// `essentials.targetResourceType`.
    pub resource_type: Option<String>,
    /// The alert context kind (`metric_static`, `log_alerts_v2`, `service_health`, ...).
    pub context_kind: String,
    /// A short human summary of the alert context.
    pub context_summary: String,
    /// `customProperties` of the action group.
    pub custom_properties: BTreeMap<String, serde_json::Value>,
    /// Parser warnings (why a context fell back to unknown, skipped target ids, ...).
    pub warnings: Vec<String>,
    /// The alert context as JSON (for templates).
    #[serde(default)]
    pub context: serde_json::Value,
}

impl AlertFacts {
    /// A minimal fact set (used by tests and by callers that build alerts by hand).
    pub fn new(alert_id: impl Into<String>, condition: Condition, event_at: DateTime<Utc>) -> Self {
        Self {
            alert_id: alert_id.into(),
            rule: None,
            rule_id: None,
            severity: None,
            condition,
            monitoring_service: None,
            signal_type: None,
            fired_at: (condition == Condition::Fired).then_some(event_at),
            resolved_at: (condition == Condition::Resolved).then_some(event_at),
            event_at,
            targets: Vec::new(),
            targets_normalized: Vec::new(),
            target_names: Vec::new(),
            configuration_items: Vec::new(),
            description: None,
            investigation_link: None,
            resource_group: None,
            resource_type: None,
            context_kind: "unknown".to_owned(),
            context_summary: String::new(),
            custom_properties: BTreeMap::new(),
            warnings: Vec::new(),
            context: serde_json::Value::Null,
        }
    }

    /// Extracts the facts of a parsed alert. `raw_body` gives the alert id of last resort (a
    /// digest) when the alert has neither `alertId` nor `originAlertId`; `received_at` stands
    /// in for a missing event time. Returns `None` when the monitor condition is neither
    /// Fired nor Resolved (such a body cannot drive the lifecycle and is quarantined).
    #[must_use]
    pub fn from_alert(alert: &Alert, raw_body: &[u8], received_at: DateTime<Utc>) -> Option<Self> {
        let e = &alert.essentials;
        let condition = match e.monitor_condition {
            MonitorCondition::Fired => Condition::Fired,
            MonitorCondition::Resolved => Condition::Resolved,
            MonitorCondition::Unknown(_) => return None,
        };
        let alert_id = e
            .alert_id
            .clone()
            .or_else(|| e.origin_alert_id.clone())
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| format!("body:{}", body_digest(raw_body)));
        let event_at = match condition {
            Condition::Fired => e.fired_date_time,
            Condition::Resolved => e.resolved_date_time.or(e.fired_date_time),
        }
        .unwrap_or(received_at);
        let context = serde_json::to_value(&alert.alert_context).unwrap_or_default();
        let mut facts = Self {
            alert_id,
            rule: e.alert_rule.clone(),
            rule_id: e.alert_rule_id.clone(),
            severity: e.severity.as_ref().and_then(|s| s.as_u8()),
            condition,
            monitoring_service: e.monitoring_service.as_ref().map(|m| m.as_str().to_owned()),
            signal_type: e.signal_type.as_ref().map(|s| s.as_str().to_owned()),
            fired_at: e.fired_date_time,
            resolved_at: e.resolved_date_time,
            event_at,
            targets: Vec::new(),
            targets_normalized: Vec::new(),
            target_names: Vec::new(),
            configuration_items: alert.configuration_items().to_vec(),
            description: e.description.clone(),
            investigation_link: e.investigation_link.clone(),
            resource_group: e.target_resource_group.clone(),
            resource_type: e.target_resource_type.clone(),
            context_kind: alert.context_kind().to_owned(),
            context_summary: context_summary(alert.context_kind(), &context),
            custom_properties: alert.custom_properties.clone().unwrap_or_default(),
            warnings: alert.warnings().to_vec(),
            context,
        };
        let ids = alert.target_resource_ids();
        facts.targets = ids.iter().map(ToString::to_string).collect();
        facts.target_names = ids
            .iter()
            .filter_map(|r| r.name().map(str::to_owned))
            .collect();
        let mut norm: Vec<String> = ids.iter().map(|r| r.normalized().to_owned()).collect();
        norm.sort();
        norm.dedup();
        facts.targets_normalized = norm;
        if facts.target_names.is_empty() {
            facts.target_names = alert.configuration_items().to_vec();
        }
        Some(facts)
    }

    /// Treats an event dated more than `max_skew` after `now` as received at `now`: its event
    /// time becomes `now` and a warning (which the work item's notes carry) says so. Returns
    /// whether it did. Without this a `Resolved` dated in the year 2999 would make every later
    /// `Fired` of the alert stale, for good.
    pub fn clamp_future(&mut self, now: DateTime<Utc>, max_skew: std::time::Duration) -> bool {
        let skew = chrono::Duration::from_std(max_skew).unwrap_or(chrono::Duration::MAX);
        let limit = now
            .checked_add_signed(skew)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if self.event_at <= limit {
            return false;
        }
        self.warnings.push(format!(
            "event time {} is more than {}s in the future; treated as received now ({})",
            self.event_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            max_skew.as_secs(),
            now.to_rfc3339_opts(SecondsFormat::Secs, true),
        ));
        self.event_at = now;
        if self.fired_at.is_some_and(|t| t > limit) {
            self.fired_at = Some(now);
        }
        if self.resolved_at.is_some_and(|t| t > limit) {
            self.resolved_at = Some(now);
        }
        true
    }

    /// Sets the target resource ids (normalized copies and names are derived).
    #[must_use]
    pub fn with_targets(mut self, targets: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.targets = targets.into_iter().map(Into::into).collect();
        self.target_names = self
            .targets
            .iter()
            .filter_map(|t| {
                t.trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .map(str::to_owned)
            })
            .filter(|n| !n.is_empty())
            .collect();
        let mut norm: Vec<String> = self.targets.iter().map(|t| t.to_lowercase()).collect();
        norm.sort();
        norm.dedup();
        self.targets_normalized = norm;
        self
    }

    /// Whether this kind of alert never sends `Resolved` (activity log, service health,
    /// resource health), so the auto-close TTL applies to it.
    #[must_use]
    pub fn never_resolves(&self) -> bool {
        let service = self
            .monitoring_service
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        let signal = self
            .signal_type
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        service.starts_with("activity log")
            || service == "servicehealth"
            || service == "resource health"
            || service == "resourcehealth"
            || service == "service health"
            || signal == "activity log"
    }

    /// The first target's name, or the resource group, or `"unknown resource"`.
    #[must_use]
    pub fn resource_name(&self) -> &str {
        self.target_names
            .first()
            .map(String::as_str)
            .or(self.resource_group.as_deref())
            .unwrap_or("unknown resource")
    }
}

/// A one-line summary of an alert context: the metric criteria of metric alerts, otherwise the
/// first few scalar members.
fn context_summary(kind: &str, context: &serde_json::Value) -> String {
    use serde_json::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let mut parts = Vec::new();
    if let Some(all) = context
        .pointer("/condition/allOf")
        .and_then(Value::as_array)
    {
        for c in all.iter().take(5) {
            let field = |k: &str| c.get(k).and_then(scalar).unwrap_or_default();
            let name = c
                .get("metricName")
                .or_else(|| c.get("searchQuery"))
                .and_then(scalar);
            parts.push(format!(
                "{} {} {} (value {})",
                name.unwrap_or_default(),
                field("operator"),
                field("threshold"),
                field("metricValue")
            ));
        }
    }
    if parts.is_empty()
        && let Some(obj) = context.as_object()
    {
        for (k, v) in obj
            .iter()
            .filter_map(|(k, v)| scalar(v).map(|v| (k, v)))
            .take(6)
        {
            parts.push(format!("{k}={v}"));
        }
    }
    let summary = if parts.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", parts.join("; "))
    };
    crate::mapping::truncate_chars(&summary, 500)
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// The idempotency key of a delivery (a hex SHA-256 of connection, alert id, condition and
/// event time).
#[must_use]
pub fn idempotency_key(connection: &str, facts: &AlertFacts) -> String {
    let at = facts.event_at.to_rfc3339_opts(SecondsFormat::Micros, true);
    digest(&[
        connection,
        &facts.alert_id.to_lowercase(),
        facts.condition.as_str(),
        &at,
    ])
}

/// The `rule+target` correlation key: rule id (or rule name) plus the sorted normalized targets.
#[must_use]
pub fn rule_target_key(facts: &AlertFacts) -> String {
    let rule = facts
        .rule_id
        .as_deref()
        .or(facts.rule.as_deref())
        .unwrap_or(facts.alert_id.as_str())
        .to_lowercase();
    let targets = facts.targets_normalized.join(",");
    if targets.len() <= MAX_KEY_TARGETS_LEN {
        format!("rule:{rule}|{targets}")
    } else {
        // Thousands of targets would make a key of hundreds of kilobytes: a digest of the
        // same text keeps it short and just as deterministic.
        format!("rule:{rule}|sha256:{}", digest(&[&targets]))
    }
}

/// Longest target list kept verbatim in a `rule+target` key.
const MAX_KEY_TARGETS_LEN: usize = 2048;

/// The correlation key of an alert in `alert` or `rule+target` mode; in `ci` mode the
/// per-CI keys come from [`ci_key`] after binding and this returns the order key.
#[must_use]
pub fn correlation_key(mode: CorrelationMode, facts: &AlertFacts) -> String {
    match mode {
        CorrelationMode::Alert => format!("alert:{}", facts.alert_id.to_lowercase()),
        CorrelationMode::RuleAndTarget | CorrelationMode::Ci => rule_target_key(facts),
    }
}

/// The job order key (see the [module docs](self)).
#[must_use]
pub fn order_key(mode: CorrelationMode, facts: &AlertFacts) -> String {
    correlation_key(mode, facts)
}

/// The correlation key of one bound configuration item in `ci` mode.
#[must_use]
pub fn ci_key(ci_id: &str) -> String {
    format!("ci:{}", ci_id.to_lowercase())
}

/// The correlation id stored on the work item (`se-` + 40 hex digits of a digest of the
/// connection and correlation key): short enough for ServiceNow's 100-character
/// `correlation_id`, stable across restarts, and never leaking resource ids into a field
/// other tools may match on.
#[must_use]
pub fn itsm_correlation_id(connection: &str, correlation_key: &str) -> String {
    let d = digest(&[connection, correlation_key]);
    format!("se-{}", d.get(..40).unwrap_or(&d))
}

/// A digest of a raw body, used as an alert id of last resort.
#[must_use]
pub fn body_digest(raw: &[u8]) -> String {
    hex::encode(Sha256::digest(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn future_events_are_clamped_to_now_with_a_note() {
        let now = at("2025-01-01T00:00:00Z");
        let skew = std::time::Duration::from_secs(300);
        let mut near = AlertFacts::new("a", Condition::Resolved, at("2025-01-01T00:04:00Z"));
        assert!(!near.clamp_future(now, skew), "within the skew");
        assert_eq!(near.event_at, at("2025-01-01T00:04:00Z"));
        let mut far = AlertFacts::new("a", Condition::Resolved, at("2999-01-01T00:00:00Z"));
        assert!(far.clamp_future(now, skew));
        assert_eq!(far.event_at, now);
        assert_eq!(far.resolved_at, Some(now));
        assert!(far.warnings[0].contains("2999-01-01"), "{:?}", far.warnings);
        // A skew too large for chrono saturates instead of panicking.
        let mut f = AlertFacts::new("a", Condition::Fired, at("2999-01-01T00:00:00Z"));
        assert!(!f.clamp_future(now, std::time::Duration::MAX));
    }

    #[test]
    fn rule_target_keys_of_huge_target_lists_are_digests() {
        let targets: Vec<String> = (0..6000)
            .map(|i| format!("/subscriptions/s/resourcegroups/rg/providers/p/t/vm{i}"))
            .collect();
        let f = AlertFacts::new("a", Condition::Fired, at("2025-01-01T00:00:00Z"))
            .with_targets(targets);
        let key = rule_target_key(&f);
        assert!(key.len() < 200, "{}", key.len());
        assert!(key.contains("|sha256:"));
        assert_eq!(key, rule_target_key(&f));
        let small = AlertFacts::new("a", Condition::Fired, at("2025-01-01T00:00:00Z"))
            .with_targets(["/subscriptions/s/resourcegroups/rg/providers/p/t/vm1"]);
        assert!(rule_target_key(&small).ends_with("/vm1"));
    }

    #[test]
    fn idempotency_key_separates_condition_time_and_connection() {
        let f = AlertFacts::new(
            "/subs/x/alerts/1",
            Condition::Fired,
            at("2024-01-01T00:00:00Z"),
        );
        let k = idempotency_key("a", &f);
        assert_eq!(k, idempotency_key("a", &f));
        assert_ne!(k, idempotency_key("b", &f));
        let r = AlertFacts::new(
            "/subs/x/alerts/1",
            Condition::Resolved,
            at("2024-01-01T00:00:00Z"),
        );
        assert_ne!(k, idempotency_key("a", &r));
        let later = AlertFacts::new(
            "/subs/x/alerts/1",
            Condition::Fired,
            at("2024-01-01T00:00:01Z"),
        );
        assert_ne!(k, idempotency_key("a", &later));
        let upper = AlertFacts::new(
            "/SUBS/X/alerts/1",
            Condition::Fired,
            at("2024-01-01T00:00:00Z"),
        );
        assert_eq!(k, idempotency_key("a", &upper));
    }

    #[test]
    fn correlation_keys_per_mode() {
        let t = at("2024-01-01T00:00:00Z");
        let a =
            AlertFacts::new("ID1", Condition::Fired, t).with_targets(["/S/RG/VM2", "/s/rg/vm1"]);
        let mut b =
            AlertFacts::new("id2", Condition::Fired, t).with_targets(["/s/rg/vm1", "/s/rg/vm2"]);
        assert_eq!(correlation_key(CorrelationMode::Alert, &a), "alert:id1");
        assert_ne!(
            correlation_key(CorrelationMode::Alert, &a),
            correlation_key(CorrelationMode::Alert, &b)
        );
        let mut a2 = a.clone();
        a2.rule_id = Some("/Rules/CPU".to_owned());
        b.rule_id = Some("/rules/cpu".to_owned());
        assert_eq!(
            correlation_key(CorrelationMode::RuleAndTarget, &a2),
            correlation_key(CorrelationMode::RuleAndTarget, &b)
        );
        assert_eq!(rule_target_key(&b), "rule:/rules/cpu|/s/rg/vm1,/s/rg/vm2");
        assert_eq!(ci_key("ABC"), "ci:abc");
        assert_eq!(a.target_names, vec!["VM2", "vm1"]);
        let id = itsm_correlation_id("c", "alert:id1");
        assert_eq!(id.len(), 43);
        assert!(id.starts_with("se-"));
    }

    #[test]
    fn never_resolving_services() {
        let mut f = AlertFacts::new("x", Condition::Fired, at("2024-01-01T00:00:00Z"));
        assert!(!f.never_resolves());
        for s in [
            "Activity Log - Administrative",
            "ServiceHealth",
            "Resource Health",
        ] {
            f.monitoring_service = Some(s.to_owned());
            assert!(f.never_resolves(), "{s}");
        }
    }
}
