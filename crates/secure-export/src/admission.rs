//! [`AllowList`]: which alerts a connection accepts (subscriptions, alert rules), applied to
//! modelled alerts, to bodies that could not be modelled (quarantine) and again on replay.

use std::collections::BTreeSet;

use secure_export_schema::Alert;

/// Most JSON values looked at when reading subscriptions out of a body that could not be
/// modelled (bounds the work an authenticated caller can cause).
const SCAN_BUDGET: usize = 100_000;
/// Deepest nesting looked at by the same scan.
const SCAN_DEPTH: usize = 64;

/// The payload allow-lists of one connection; the default accepts everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    subscriptions: Option<BTreeSet<String>>,
    rules: Option<Vec<String>>,
}

impl AllowList {
    /// An allow-list that accepts every alert.
    pub fn any() -> Self {
        Self::default()
    }

    /// Accept only alerts whose targets (and rule) all live in these subscriptions.
    #[must_use]
    pub fn with_subscriptions(
        mut self,
        subscriptions: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.subscriptions = Some(
            subscriptions
                .into_iter()
                .map(|s| s.into().trim().to_ascii_lowercase())
                .collect(),
        );
        self
    }

    /// Accept only alerts whose rule name or rule id is one of these (case-insensitive).
    #[must_use]
    pub fn with_rules(mut self, rules: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.rules = Some(rules.into_iter().map(Into::into).collect());
        self
    }

    /// Whether a subscription allow-list is set.
    pub fn restricts_subscriptions(&self) -> bool {
        self.subscriptions.is_some()
    }

    /// Checks a modelled alert; `Err` explains why it is not allowed (HTTP 403).
    pub fn check(&self, alert: &Alert) -> Result<(), String> {
        if let Some(allowed) = &self.subscriptions {
            let subscriptions = alert.subscription_ids()?;
            if subscriptions.is_empty() {
                return Err(
                    "the alert names no subscription (no alertTargetIDs, alertRuleId or \
                     ARM alertId) and this connection only accepts listed subscriptions"
                        .to_owned(),
                );
            }
            if let Some(denied) = subscriptions.iter().find(|s| !allowed.contains(*s)) {
                return Err(format!(
                    "subscription {denied} is not allowed for this connection"
                ));
            }
        }
        if let Some(rules) = &self.rules {
            let names = [
                alert.essentials.alert_rule.as_deref(),
                alert.essentials.alert_rule_id.as_deref(),
            ];
            let allowed = names
                .iter()
                .flatten()
                .any(|n| rules.iter().any(|r| r.eq_ignore_ascii_case(n)));
            if !allowed {
                return Err(format!(
                    "alert rule {:?} is not allowed for this connection",
                    alert.essentials.alert_rule.as_deref().unwrap_or("(none)")
                ));
            }
        }
        Ok(())
    }

    /// Checks a JSON body that could not be modelled, as far as its subscriptions can be read:
    /// every string that is an ARM id (`/subscriptions/<id>...`) and every `subscriptionId`
    /// value. A body naming a subscription outside the list is refused; a body naming none is
    /// allowed (it cannot be judged, and it is kept for an operator rather than lost).
    pub fn check_unmodelled(&self, body: &serde_json::Value) -> Result<(), String> {
        let Some(allowed) = &self.subscriptions else {
            return Ok(());
        };
        let mut found = BTreeSet::new();
        let mut budget = SCAN_BUDGET;
        collect_subscriptions(body, None, 0, &mut budget, &mut found);
        match found.iter().find(|s| !allowed.contains(*s)) {
            Some(denied) => Err(format!(
                "subscription {denied} is not allowed for this connection"
            )),
            None => Ok(()),
        }
    }
}

fn collect_subscriptions(
    value: &serde_json::Value,
    key: Option<&str>,
    depth: usize,
    budget: &mut usize,
    out: &mut BTreeSet<String>,
) {
    if *budget == 0 || depth > SCAN_DEPTH {
        return;
    }
    *budget -= 1;
    match value {
        serde_json::Value::String(s) => {
            if key.is_some_and(|k| k.eq_ignore_ascii_case("subscriptionId")) {
                let id = s.trim().to_ascii_lowercase();
                if !id.is_empty() {
                    out.insert(id);
                }
            } else if let Some(id) = arm_subscription(s) {
                out.insert(id);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect_subscriptions(item, key, depth + 1, budget, out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                collect_subscriptions(v, Some(k), depth + 1, budget, out);
            }
        }
        _ => {}
    }
}

/// The subscription of an ARM id such as `/subscriptions/<id>/resourceGroups/...`.
fn arm_subscription(text: &str) -> Option<String> {
    let rest = text.trim_start();
    let prefix = "/subscriptions/";
    let head = rest.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let id = rest[prefix.len()..].split('/').next()?.trim();
    (!id.is_empty()).then(|| id.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    const OK: &str = "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e";
    const OTHER: &str = "99999999-bb1b-cc2c-dd3d-eeeeee4e4e4e";

    #[test]
    fn unmodelled_bodies_are_judged_by_the_subscriptions_they_name() {
        let list = AllowList::any().with_subscriptions([OK]);
        let good = json!({"data": {"essentials": {"alertTargetIDs": [
            format!("/subscriptions/{OK}/resourceGroups/rg")]}, "x": 1}});
        assert!(list.check_unmodelled(&good).is_ok());
        let bad = json!({"data": {"essentials": {"alertTargetIDs": [
            format!("/subscriptions/{OK}/resourceGroups/rg"),
            format!("/SUBSCRIPTIONS/{}/resourceGroups/rg", OTHER.to_uppercase())]}}});
        let e = list.check_unmodelled(&bad).unwrap_err();
        assert!(e.contains(OTHER), "{e}");
        let legacy = json!({"data": {"context": {"subscriptionId": OTHER}}});
        assert!(list.check_unmodelled(&legacy).is_err());
        // Nothing readable: kept for an operator.
        assert!(list.check_unmodelled(&json!({"weird": [1, 2]})).is_ok());
        // No list: everything passes.
        assert!(AllowList::any().check_unmodelled(&bad).is_ok());
    }

    #[test]
    fn the_scan_is_bounded() {
        let mut deep = json!(format!("/subscriptions/{OTHER}"));
        for _ in 0..200 {
            deep = json!([deep]);
        }
        let list = AllowList::any().with_subscriptions([OK]);
        // Deeper than the scan looks: not read, so not refused.
        assert!(list.check_unmodelled(&deep).is_ok());
    }
}
