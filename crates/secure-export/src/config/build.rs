//! Turning a validated [`Config`] into runtime objects: token verifiers and connection gates for
//! the router, connectors, binders and [`ConnectionRuntime`]s for the engine.

use std::sync::Arc;

use secure_export_aad::TokenVerifier;
use secure_export_cmdb::{BinderBuilder, CiRecord, CiSource, CmdbLookup, Strategy};
use secure_export_itsm::ItsmConnector;
use secure_export_itsm::mock::MockConnector;

use super::{BackendKind, CiSpec, CmdbSection, Config, ConfigError, ConnectionConfig};
use crate::admission::AllowList;
use crate::engine::{ConnectionRuntime, EngineOptions};
use crate::lifecycle::{ClosedPolicy, CorrelationMode, FindOpenPolicy, LifecyclePolicy};
use crate::mapping::Mapping;
use crate::router::ConnectionGate;

/// Everything a receiver needs from a [`Config`], ready to hand to the engine and the router.
#[derive(Debug)]
#[non_exhaustive]
pub struct Runtime {
    /// One per `[[connection]]`, for [`Engine::new`](crate::engine::Engine::new).
    pub connections: Vec<ConnectionRuntime>,
    /// One per `[[connection]]`, for [`AppState::new`](crate::router::AppState::new).
    pub gates: Vec<ConnectionGate>,
    /// `[engine]` applied over [`EngineOptions::default`].
    pub engine_options: EngineOptions,
}

impl Config {
    /// Builds verifiers, connectors, binders and lifecycle policies. Errors name the
    /// configuration key at fault.
    ///
    /// `http` is shared by the ITSM and CMDB clients; build it with
    /// `.redirect(reqwest::redirect::Policy::none())` so credentials never follow a redirect.
    /// Token verifiers always use their own client, which follows no redirect (a redirected
    /// `jwks_uri` would otherwise let another host supply the signing keys).
    pub fn build_runtime(&self, http: &reqwest::Client) -> Result<Runtime, ConfigError> {
        let mut connections = Vec::with_capacity(self.connections.len());
        let mut gates = Vec::with_capacity(self.connections.len());
        for (i, conn) in self.connections.iter().enumerate() {
            let at = format!("connection[{i}]");
            gates.push(gate(conn, &at)?);
            connections.push(connection_runtime(conn, &at, http)?);
        }
        Ok(Runtime {
            connections,
            gates,
            engine_options: self.engine_options(),
        })
    }

    /// `[engine]` applied over [`EngineOptions::default`].
    pub fn engine_options(&self) -> EngineOptions {
        let mut options = EngineOptions::default();
        let e = &self.engine;
        if let Some(v) = e.workers_per_backend {
            options.workers_per_backend = v;
        }
        if let Some(v) = e.max_attempts {
            options.max_attempts = v;
        }
        if let Some(v) = e.max_age {
            options.max_age = v;
        }
        if let Some(v) = e.base_delay {
            options.base_delay = v;
        }
        if let Some(v) = e.max_delay {
            options.max_delay = v;
        }
        if let Some(v) = e.high_water_mark {
            options.high_water_mark = v;
        }
        if let Some(v) = e.lease {
            options.lease = v;
        }
        if let Some(v) = e.poll_interval {
            options.poll_interval = v;
        }
        if let Some(v) = e.call_timeout {
            options.call_timeout = v;
        }
        if let Some(v) = e.shutdown_grace {
            options.shutdown_grace = v;
        }
        options.retention = Some(self.server.retention);
        options.quarantine_max_rows = self.server.quarantine_max_rows;
        options.quarantine_max_bytes = self.server.quarantine_max_bytes;
        options.health_interval = self.server.health_interval;
        options
    }
}

/// The connection's verifier policy. The verifier keeps its own HTTP client (no redirects,
/// fetch timeout), never the shared one: see [`Config::build_runtime`].
fn verifier_builder(conn: &ConnectionConfig) -> secure_export_aad::TokenVerifierBuilder {
    let mut builder = TokenVerifier::builder(conn.tenant_ids.iter(), conn.audiences.iter());
    if let Some(ids) = &conn.caller_app_ids {
        builder = builder.caller_app_ids(ids.iter());
    }
    if conn.insecure_no_role_check {
        builder = builder.required_role(None);
    } else if let Some(role) = &conn.required_role {
        builder = builder.required_role(Some(role.clone()));
    }
    if let Some(authority) = &conn.authority {
        builder = builder.authority(authority.clone());
    }
    builder
}

fn gate(conn: &ConnectionConfig, at: &str) -> Result<ConnectionGate, ConfigError> {
    let verifier = verifier_builder(conn)
        .build()
        .map_err(|e| ConfigError::invalid(format!("{at}.tenant_ids"), e.to_string()))?;
    // Same policy for any tenant: only used to tell "genuine token, tenant not allowed" (403)
    // from an invalid token (401).
    let probe = verifier_builder(conn)
        .insecure_any_tenant()
        .build()
        .map_err(|e| ConfigError::invalid(format!("{at}.tenant_ids"), e.to_string()))?;
    Ok(
        ConnectionGate::new(&conn.name, verifier, conn.tenant_ids.iter())
            .with_tenant_probe(probe)
            .with_allow_list(allow_list(conn)),
    )
}

fn allow_list(conn: &ConnectionConfig) -> AllowList {
    let mut allow = AllowList::any();
    if let Some(subs) = &conn.allowed_subscriptions {
        allow = allow.with_subscriptions(subs.iter());
    }
    if let Some(rules) = &conn.allowed_rules {
        allow = allow.with_rules(rules.iter());
    }
    allow
}

fn connection_runtime(
    conn: &ConnectionConfig,
    at: &str,
    http: &reqwest::Client,
) -> Result<ConnectionRuntime, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    let (connector, lookup): (Arc<dyn ItsmConnector>, Option<Arc<dyn CmdbLookup>>) =
        match conn.backend {
            BackendKind::Mock => (Arc::new(MockConnector::new()), None),
            BackendKind::Servicenow => servicenow(conn, at, http)?,
            BackendKind::Bmc => bmc(conn, at, http)?,
        };
    let mut rt = ConnectionRuntime::new(conn.name.clone(), connector);
    let binder = match &conn.cmdb {
        Some(cmdb) => Some(binder(cmdb, lookup, &key("cmdb"), conn.max_targets, &rt)?),
        None => None,
    };
    let policy = LifecyclePolicy {
        correlation: conn
            .correlation
            .parse::<CorrelationMode>()
            .map_err(|e| ConfigError::invalid(key("correlation"), e))?,
        reopen_window: conn.reopen_window,
        closed_by_person: conn
            .closed_by_person
            .parse::<ClosedPolicy>()
            .map_err(|e| ConfigError::invalid(key("closed_by_person"), e))?,
        auto_close_after: conn.auto_close_after,
        find_open_before_create: conn
            .find_open_before_create
            .parse::<FindOpenPolicy>()
            .map_err(|e| ConfigError::invalid(key("find_open_before_create"), e))?,
    };
    let mut mapping = Mapping::default();
    if let Some(template) = &conn.title_template {
        mapping = mapping
            .with_title_template(template)
            .map_err(|e| ConfigError::invalid(key("title_template"), e.to_string()))?;
    }
    for (field, template) in &conn.fields {
        mapping = mapping
            .with_field_template(field, template)
            .map_err(|e| ConfigError::invalid(format!("{at}.fields.{field}"), e.to_string()))?;
    }
    rt.binder = binder;
    rt.policy = policy;
    rt.mapping = mapping;
    rt.max_calls_per_second = conn.max_calls_per_second;
    rt.max_targets = conn.max_targets;
    rt.allow_list = allow_list(conn);
    rt.max_queued = conn.max_queued;
    rt.max_clock_skew = conn.max_clock_skew;
    Ok(rt)
}

fn servicenow(
    conn: &ConnectionConfig,
    at: &str,
    http: &reqwest::Client,
) -> Result<(Arc<dyn ItsmConnector>, Option<Arc<dyn CmdbLookup>>), ConfigError> {
    use secure_export_servicenow::{Auth, ServiceNowConfig, ServiceNowConnector, WorkItemKind};
    let key = format!("{at}.servicenow");
    let Some(sn) = &conn.servicenow else {
        return Err(ConfigError::invalid(key, "missing section"));
    };
    let missing = |k: &str| ConfigError::invalid(format!("{key}.{k}"), "required");
    let username = || sn.username.clone().ok_or_else(|| missing("username"));
    let password = || sn.password.clone().ok_or_else(|| missing("password"));
    let client_id = || sn.client_id.clone().ok_or_else(|| missing("client_id"));
    let client_secret = || {
        sn.client_secret
            .clone()
            .ok_or_else(|| missing("client_secret"))
    };
    let auth = match sn.auth.as_str() {
        "oauth_password" => {
            Auth::oauth_password(client_id()?, client_secret()?, username()?, password()?)
        }
        "oauth_client_credentials" => {
            Auth::oauth_client_credentials(client_id()?, client_secret()?)
        }
        _ => Auth::basic(username()?, password()?),
    };
    let mut config =
        ServiceNowConfig::new(sn.instance_url.clone(), auth).with_kind(if sn.kind == "event" {
            WorkItemKind::Event
        } else {
            WorkItemKind::Incident
        });
    config.assignment_group.clone_from(&sn.assignment_group);
    config.caller_id.clone_from(&sn.caller_id);
    config.category.clone_from(&sn.category);
    config.subcategory.clone_from(&sn.subcategory);
    config.contact_type.clone_from(&sn.contact_type);
    if let Some(code) = &sn.close_code {
        config.close_code.clone_from(code);
    }
    if let Some(state) = &sn.reopen_state {
        config.reopen_state.clone_from(state);
    }
    if let Some(bytes) = sn.max_response_bytes {
        config.max_response_bytes = bytes;
    }
    if let Some(timeout) = sn.timeout {
        config.timeout = timeout;
    }
    let connector = ServiceNowConnector::new(config, http.clone())
        .map_err(|e| ConfigError::invalid(&key, e.to_string()))?;
    let cmdb: Arc<dyn CmdbLookup> = Arc::new(connector.cmdb());
    Ok((Arc::new(connector), Some(cmdb)))
}

fn bmc(
    conn: &ConnectionConfig,
    at: &str,
    http: &reqwest::Client,
) -> Result<(Arc<dyn ItsmConnector>, Option<Arc<dyn CmdbLookup>>), ConfigError> {
    use secure_export_bmc::{BmcConfig, BmcConnector};
    let key = format!("{at}.bmc");
    let Some(section) = &conn.bmc else {
        return Err(ConfigError::invalid(key, "missing section"));
    };
    let Some(password) = section.password.clone() else {
        return Err(ConfigError::invalid(format!("{key}.password"), "required"));
    };
    let mut config = BmcConfig::new(section.base_url.clone(), section.username.clone(), password);
    config.first_name.clone_from(&section.first_name);
    config.last_name.clone_from(&section.last_name);
    config.assigned_group.clone_from(&section.assigned_group);
    config.company.clone_from(&section.company);
    if let Some(bytes) = section.max_response_bytes {
        config.max_response_bytes = bytes;
    }
    if let Some(timeout) = section.timeout {
        config.timeout = timeout;
    }
    let connector = BmcConnector::new(config, http.clone())
        .map_err(|e| ConfigError::invalid(&key, e.to_string()))?;
    // The CMDB lookup shares the connector's AR-JWT session: one login, not two.
    let cmdb: Arc<dyn CmdbLookup> = Arc::new(connector.cmdb());
    Ok((Arc::new(connector), Some(cmdb)))
}

/// A lookup for backends without a CMDB (the mock): finds nothing.
#[derive(Debug)]
struct NoCmdb;

#[async_trait::async_trait]
impl CmdbLookup for NoCmdb {
    async fn by_resource_id(
        &self,
        _resource_id: &str,
    ) -> Result<Vec<CiRecord>, secure_export_cmdb::LookupError> {
        Ok(Vec::new())
    }

    async fn by_name(
        &self,
        _name: &str,
        _class_hint: Option<&str>,
    ) -> Result<Vec<CiRecord>, secure_export_cmdb::LookupError> {
        Ok(Vec::new())
    }
}

fn ci_record(spec: &CiSpec, source: CiSource) -> CiRecord {
    CiRecord {
        id: spec.id().to_owned(),
        name: spec.name().to_owned(),
        class: spec.class().map(ToOwned::to_owned),
        source,
    }
}

/// The connection's binder: its strategies and TTLs, at most `max_targets` targets per alert,
/// CMDB lookups paced by the connection's call limiter.
fn binder(
    cmdb: &CmdbSection,
    lookup: Option<Arc<dyn CmdbLookup>>,
    at: &str,
    max_targets: usize,
    rt: &ConnectionRuntime,
) -> Result<secure_export_cmdb::Binder, ConfigError> {
    let mut strategies = Vec::with_capacity(cmdb.strategies.len());
    for (i, s) in cmdb.strategies.iter().enumerate() {
        strategies.push(
            s.parse::<Strategy>().map_err(|e| {
                ConfigError::invalid(format!("{at}.strategies[{i}]"), e.to_string())
            })?,
        );
    }
    let lookup = lookup.unwrap_or_else(|| Arc::new(NoCmdb));
    let mut builder = BinderBuilder::new(lookup)
        .max_targets(max_targets)
        .pacer(rt.cmdb_pacer())
        .strategies(strategies)
        .static_map(
            cmdb.static_map
                .iter()
                .map(|e| (e.pattern.clone(), ci_record(&e.ci, CiSource::StaticMap)))
                .collect(),
        )
        .fallback(
            cmdb.fallback_ci
                .as_ref()
                .map(|c| ci_record(c, CiSource::Fallback)),
        );
    if let Some(ttl) = cmdb.positive_ttl {
        builder = builder.positive_ttl(ttl);
    }
    if let Some(ttl) = cmdb.failure_ttl {
        builder = builder.failure_ttl(ttl);
    }
    if let Some(ttl) = cmdb.negative_ttl {
        builder = builder.negative_ttl(ttl);
    }
    if let Some(deadline) = cmdb.deadline {
        builder = builder.deadline(deadline);
    }
    builder
        .build()
        .map_err(|e| ConfigError::invalid(at, e.to_string()))
}
