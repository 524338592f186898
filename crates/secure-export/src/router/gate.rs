//! [`ConnectionGate`]: who may post to a connection and which alerts it accepts.

use secure_export_aad::TokenVerifier;
use secure_export_schema::Alert;

use crate::admission::AllowList;

/// The admission rules of one connection: its token verifier (tenants, audiences, caller apps,
/// role) and the optional payload allow-lists (subscriptions, alert rules).
#[derive(Debug, Clone)]
pub struct ConnectionGate {
    name: String,
    verifier: TokenVerifier,
    tenant_probe: Option<TokenVerifier>,
    tenant_ids: Vec<String>,
    allow: AllowList,
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
            allow: AllowList::any(),
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
        self.allow = self.allow.with_subscriptions(subscriptions);
        self
    }

    /// Accept only alerts whose rule name or rule id is one of these (case-insensitive).
    #[must_use]
    pub fn with_allowed_rules(
        mut self,
        rules: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.allow = self.allow.with_rules(rules);
        self
    }

    /// Replaces the payload allow-lists.
    #[must_use]
    pub fn with_allow_list(mut self, allow: AllowList) -> Self {
        self.allow = allow;
        self
    }

    /// The payload allow-lists.
    pub fn allow_list(&self) -> &AllowList {
        &self.allow
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
        self.allow.check(alert)
    }
}
