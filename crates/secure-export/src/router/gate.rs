//! [`ConnectionGate`]: who may post to a connection and which alerts it accepts.

use std::collections::BTreeSet;

use secure_export_aad::TokenVerifier;
use secure_export_schema::Alert;

/// The admission rules of one connection: its token verifier (tenants, audiences, caller apps,
/// role) and the optional payload allow-lists (subscriptions, alert rules).
#[derive(Debug, Clone)]
pub struct ConnectionGate {
    name: String,
    verifier: TokenVerifier,
    tenant_probe: Option<TokenVerifier>,
    tenant_ids: Vec<String>,
    allowed_subscriptions: Option<BTreeSet<String>>,
    allowed_rules: Option<Vec<String>>,
}

impl ConnectionGate {
    /// A gate for connection `name` whose tokens are checked by `verifier`; `tenant_ids` are the
    /// tenants the verifier accepts (used to route `POST /api/alerts` by the token's tenant).
    pub fn new(
        name: impl Into<String>,
        verifier: TokenVerifier,
        tenant_ids: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            verifier,
            tenant_probe: None,
            tenant_ids: tenant_ids
                .into_iter()
                .map(|t| t.into().to_ascii_lowercase())
                .collect(),
            allowed_subscriptions: None,
            allowed_rules: None,
        }
    }

    /// Adds a verifier with the same policy but any tenant (`insecure_any_tenant`). When the
    /// main verifier rejects a token only for its tenant, the probe tells a genuine token from
    /// another tenant (answered 403 `tenant_not_allowed`) from an invalid one (401). The probe
    /// never admits a request.
    #[must_use]
    pub fn with_tenant_probe(mut self, probe: TokenVerifier) -> Self {
        self.tenant_probe = Some(probe);
        self
    }

    pub(crate) fn tenant_probe(&self) -> Option<&TokenVerifier> {
        self.tenant_probe.as_ref()
    }

    /// Accept only alerts whose targets (and rule) all live in these subscriptions.
    #[must_use]
    pub fn with_allowed_subscriptions(
        mut self,
        subscriptions: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.allowed_subscriptions = Some(
            subscriptions
                .into_iter()
                .map(|s| s.into().trim().to_ascii_lowercase())
                .collect(),
        );
        self
    }

    /// Accept only alerts whose rule name or rule id is one of these (case-insensitive).
    #[must_use]
    pub fn with_allowed_rules(
        mut self,
        rules: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.allowed_rules = Some(rules.into_iter().map(Into::into).collect());
        self
    }

    /// The connection name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The token verifier.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// Whether `tenant_id` is one of this connection's tenants.
    pub fn serves_tenant(&self, tenant_id: &str) -> bool {
        self.tenant_ids
            .iter()
            .any(|t| t.eq_ignore_ascii_case(tenant_id))
    }

    /// Checks the payload allow-lists; `Err` explains why the alert is not allowed (403).
    pub fn authorize(&self, alert: &Alert) -> Result<(), String> {
        if let Some(allowed) = &self.allowed_subscriptions {
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
        if let Some(rules) = &self.allowed_rules {
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
}
