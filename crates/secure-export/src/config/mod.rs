//! Receiver configuration: a TOML file plus environment variables for secrets.
//!
//! [`Config::load`] reads and validates a file; every error names the offending key, for example
//! `connection[0].servicenow.instance_url: relative URL without a base`. The keys are documented
//! in `docs/configuration.md`; `examples/secure-export.example.toml` is a complete example.
//!
//! ```
//! use secure_export::config::Config;
//!
//! let config = Config::from_toml_str(r#"
//!     [server]
//!     listen = "127.0.0.1:8080"
//!     data_dir = "/var/lib/secure-export"
//!
//!     [[connection]]
//!     name = "prod"
//!     tenant_ids = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
//!     audiences = ["api://secure-export"]
//!     backend = "mock"
//! "#).unwrap();
//! assert_eq!(config.connections[0].name, "prod");
//! ```

mod build;
mod duration;

pub use build::Runtime;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secure_export_itsm::Secret;
use serde::{Deserialize, Deserializer};

use crate::store::{PostgresOptions, PostgresStore, SqliteStore, Store};

/// Environment variable naming the configuration file when `--config` is not given.
pub const CONFIG_ENV: &str = "SECURE_EXPORT_CONFIG";

/// Default maximum request body (1 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// A configuration problem; [`Display`](std::fmt::Display) names the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("configuration is not valid TOML: {0}")]
    Syntax(String),
    /// A key has a wrong, missing or inconsistent value.
    #[error("{key}: {message}")]
    Invalid {
        /// The key, as a path like `connection[0].servicenow.instance_url`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The key a [`ConfigError::Invalid`] is about.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            Self::Read { .. } | Self::Syntax(_) => None,
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// `[server]`: listener and data directory.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[engine]`: outbox workers and retry budget.
    #[serde(default)]
    pub engine: EngineConfig,
    /// `[[connection]]`: one per Entra tenant/backend pairing.
    #[serde(default, rename = "connection")]
    pub connections: Vec<ConnectionConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Listen address (`server.listen`), default `127.0.0.1:8080`.
    #[serde(default = "default_listen", deserialize_with = "de_socket_addr")]
    pub listen: SocketAddr,
    /// Data directory for the SQLite store (`server.data_dir`), default `./data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Maximum request body in bytes (`server.body_limit`), default 1 MiB.
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// Deadline for answering a request (`server.request_timeout`), default `5s`.
    #[serde(
        default = "default_request_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub request_timeout: Duration,
    /// `Retry-After` sent with 503 answers (`server.retry_after`), default `10s`.
    #[serde(
        default = "default_retry_after",
        deserialize_with = "duration::deserialize"
    )]
    pub retry_after: Duration,
    /// PostgreSQL URL (`server.database_url`). When it (or `database_url_env`) is set, the
    /// store is PostgreSQL instead of SQLite in `data_dir`, so several receivers can share it.
    /// It holds the password, so prefer `database_url_env`.
    #[serde(default, deserialize_with = "de_secret")]
    pub database_url: Option<Secret>,
    /// Environment variable holding the PostgreSQL URL (`server.database_url_env`).
    pub database_url_env: Option<String>,
    /// PostgreSQL schema for the tables (`server.database_schema`), created if missing.
    pub database_schema: Option<String>,
    /// PostgreSQL pool size per process (`server.database_max_connections`), default 10.
    pub database_max_connections: Option<u32>,
    /// Admin listener (`server.admin_listen`): metrics, detailed readiness, admin API. Default
    /// `127.0.0.1:9090`; `"off"` (`None`) disables it.
    #[serde(default = "default_admin_listen", deserialize_with = "de_admin_listen")]
    pub admin_listen: Option<SocketAddr>,
    /// Environment variable holding the admin bearer token (`server.admin_token_env`);
    /// required when `admin_listen` is not a loopback address.
    pub admin_token_env: Option<String>,
    /// The admin bearer token, read from `admin_token_env` (never from the file).
    #[serde(skip)]
    pub admin_token: Option<Secret>,
    /// Deadline for a request head and a TLS handshake (`server.header_read_timeout`), `10s`.
    #[serde(
        default = "default_header_read_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub header_read_timeout: Duration,
    /// Idle keep-alive connections are closed after this (`server.keep_alive_timeout`), `5s`;
    /// `0s` disables keep-alive.
    #[serde(
        default = "default_keep_alive_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub keep_alive_timeout: Duration,
    /// Most connections served at once per listener (`server.max_connections`), 4096.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// PEM certificate chain for native TLS on the public listener (`server.tls_cert`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for native TLS (`server.tls_key`).
    pub tls_key: Option<PathBuf>,
    /// Most quarantined bodies kept (`server.quarantine_max_rows`), 10,000.
    #[serde(default = "default_quarantine_max_rows")]
    pub quarantine_max_rows: u64,
    /// Most bytes of quarantined bodies kept (`server.quarantine_max_bytes`), 256 MiB.
    #[serde(default = "default_quarantine_max_bytes")]
    pub quarantine_max_bytes: u64,
    /// How long deliveries, audit entries, dead letters and quarantined bodies are kept
    /// (`server.retention`), `30d`.
    #[serde(
        default = "default_retention",
        deserialize_with = "duration::deserialize"
    )]
    pub retention: Duration,
    /// How often the store and the backends are probed for readiness and health
    /// (`server.health_interval`), `15s`.
    #[serde(
        default = "default_health_interval",
        deserialize_with = "duration::deserialize"
    )]
    pub health_interval: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            data_dir: default_data_dir(),
            body_limit: default_body_limit(),
            request_timeout: default_request_timeout(),
            retry_after: default_retry_after(),
            database_url: None,
            database_url_env: None,
            database_schema: None,
            database_max_connections: None,
            admin_listen: default_admin_listen(),
            admin_token_env: None,
            admin_token: None,
            header_read_timeout: default_header_read_timeout(),
            keep_alive_timeout: default_keep_alive_timeout(),
            max_connections: default_max_connections(),
            tls_cert: None,
            tls_key: None,
            quarantine_max_rows: default_quarantine_max_rows(),
            quarantine_max_bytes: default_quarantine_max_bytes(),
            retention: default_retention(),
            health_interval: default_health_interval(),
        }
    }
}

impl ServerConfig {
    /// Opens the configured store: PostgreSQL when `database_url` is set, else SQLite in
    /// `data_dir` (created if missing). Errors name the key that led to the failure.
    pub async fn open_store(&self) -> Result<Arc<dyn Store>, ConfigError> {
        if let Some(url) = &self.database_url {
            let options = PostgresOptions {
                schema: self.database_schema.clone(),
                max_connections: self.database_max_connections.unwrap_or(10),
                ..PostgresOptions::default()
            };
            let store = PostgresStore::connect(url.expose_secret(), options)
                .await
                .map_err(|e| {
                    ConfigError::invalid(
                        "server.database_url",
                        format!("cannot open the PostgreSQL store: {e}"),
                    )
                })?;
            return Ok(Arc::new(store));
        }
        let dir = &self.data_dir;
        std::fs::create_dir_all(dir).map_err(|e| {
            ConfigError::invalid(
                "server.data_dir",
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
        let store = SqliteStore::open(dir).await.map_err(|e| {
            ConfigError::invalid(
                "server.data_dir",
                format!("cannot open the store in {}: {e}", dir.display()),
            )
        })?;
        Ok(Arc::new(store))
    }

    /// The public listener's server options (`header_read_timeout`, `keep_alive_timeout`,
    /// `max_connections`, TLS files).
    pub fn public_serve_options(&self) -> crate::server::ServeOptions {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(crate::server::TlsFiles::new(cert, key)),
            _ => None,
        };
        crate::server::ServeOptions::new("public")
            .header_read_timeout(self.header_read_timeout)
            .keep_alive_timeout(self.keep_alive_timeout)
            .max_connections(self.max_connections)
            .tls(tls)
    }

    /// The admin listener's server options: the same timeouts, at most 64 connections, no TLS
    /// (it listens on loopback or behind the operator's own network controls).
    pub fn admin_serve_options(&self) -> crate::server::ServeOptions {
        crate::server::ServeOptions::new("admin")
            .header_read_timeout(self.header_read_timeout)
            .keep_alive_timeout(self.keep_alive_timeout)
            .max_connections(64)
    }

    /// Who may use the admin API: the bearer token when one is configured, else nobody but
    /// the host (validation refuses a non-loopback `admin_listen` without a token).
    pub fn admin_access(&self) -> crate::router::AdminAccess {
        match &self.admin_token {
            Some(token) => crate::router::AdminAccess::Bearer(token.clone()),
            None => crate::router::AdminAccess::Unauthenticated,
        }
    }

    fn validate_listeners(
        &mut self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        for (key, value) in [
            ("server.header_read_timeout", self.header_read_timeout),
            ("server.health_interval", self.health_interval),
            ("server.retention", self.retention),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(key, "must be greater than 0"));
            }
        }
        if self.keep_alive_timeout > self.header_read_timeout {
            return Err(ConfigError::invalid(
                "server.keep_alive_timeout",
                "must not be longer than header_read_timeout (the header timer also runs \
                 while a keep-alive connection waits for its next request)",
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::invalid(
                "server.max_connections",
                "must be at least 1",
            ));
        }
        if self.quarantine_max_rows == 0 || self.quarantine_max_bytes == 0 {
            let key = if self.quarantine_max_rows == 0 {
                "server.quarantine_max_rows"
            } else {
                "server.quarantine_max_bytes"
            };
            return Err(ConfigError::invalid(key, "must be at least 1"));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    "server.tls_key",
                    "required when tls_cert is set",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "server.tls_cert",
                    "required when tls_key is set",
                ));
            }
            _ => {}
        }
        if let Some(var) = &self.admin_token_env {
            match env(var) {
                Some(v) if v.trim().len() >= 16 => self.admin_token = Some(Secret::new(v.trim())),
                Some(_) => {
                    return Err(ConfigError::invalid(
                        "server.admin_token_env",
                        format!(
                            "environment variable {var:?} must hold a token of at least 16 characters"
                        ),
                    ));
                }
                None => {
                    return Err(ConfigError::invalid(
                        "server.admin_token_env",
                        format!("environment variable {var:?} is not set or empty"),
                    ));
                }
            }
        }
        if let Some(admin) = self.admin_listen {
            if admin == self.listen {
                return Err(ConfigError::invalid(
                    "server.admin_listen",
                    "must differ from server.listen (the admin API must not share the public port)",
                ));
            }
            if !admin.ip().is_loopback() && self.admin_token.is_none() {
                return Err(ConfigError::invalid(
                    "server.admin_token_env",
                    format!(
                        "required because admin_listen ({admin}) is not a loopback address: \
                         name an environment variable holding the admin bearer token"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_database(
        &mut self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if self.database_url.is_some() || self.database_url_env.is_some() {
            resolve_secret(
                &mut self.database_url,
                self.database_url_env.as_deref(),
                "server",
                "database_url",
                env,
            )?;
        }
        match &self.database_url {
            Some(url) => {
                let url = url.expose_secret();
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return Err(ConfigError::invalid(
                        "server.database_url",
                        "must be a postgres:// or postgresql:// URL",
                    ));
                }
            }
            None if self.database_schema.is_some() => {
                return Err(ConfigError::invalid(
                    "server.database_schema",
                    "requires database_url or database_url_env",
                ));
            }
            None => {}
        }
        if self.database_max_connections == Some(0) {
            return Err(ConfigError::invalid(
                "server.database_max_connections",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// `[engine]`: every key optional; absent keys keep the engine's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Concurrent ITSM calls per backend.
    pub workers_per_backend: Option<usize>,
    /// Attempts before a job is dead-lettered.
    pub max_attempts: Option<u32>,
    /// Age after which a failing job is dead-lettered.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub max_age: Option<Duration>,
    /// First retry delay.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub base_delay: Option<Duration>,
    /// Longest retry delay.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub max_delay: Option<Duration>,
    /// Queued jobs above which new alerts get 503 + `Retry-After`.
    pub high_water_mark: Option<u64>,
    /// How long a claimed job is leased; a crashed process's jobs are claimable after it.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub lease: Option<Duration>,
    /// How often idle workers look for due jobs.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub poll_interval: Option<Duration>,
    /// Timeout of each ITSM call.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub call_timeout: Option<Duration>,
    /// How long shutdown waits for in-flight jobs before releasing them.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub shutdown_grace: Option<Duration>,
}

/// Which ITSM a connection delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BackendKind {
    /// The in-memory mock backend (demos and tests).
    Mock,
    /// ServiceNow Table API (`[connection.servicenow]`).
    Servicenow,
    /// BMC Helix ITSM (`[connection.bmc]`).
    Bmc,
}

impl BackendKind {
    /// The name used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mock => "mock",
            Self::Servicenow => "servicenow",
            Self::Bmc => "bmc",
        }
    }
}

/// `[[connection]]`: who may call, what is accepted, and where it goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// Unique name; also the optional path segment `POST /api/alerts/{name}`.
    pub name: String,
    /// Entra tenant ids whose tokens are accepted.
    pub tenant_ids: Vec<String>,
    /// Accepted token audiences (application client id and/or Application ID URI).
    pub audiences: Vec<String>,
    /// Accepted caller app ids; default: Azure Monitor's `AzNS AAD Webhook` ids.
    pub caller_app_ids: Option<Vec<String>>,
    /// Required app role (e.g. `ActionGroupsSecureWebhook`); default: the verifier's default.
    /// An empty value is refused: use `insecure_no_role_check` to accept tokens without a role.
    pub required_role: Option<String>,
    /// Accept tokens that carry no app role (`insecure_no_role_check = true`); off by default.
    #[serde(default)]
    pub insecure_no_role_check: bool,
    /// Discovery base URL override (default `https://login.microsoftonline.com`).
    pub authority: Option<String>,
    /// Subscriptions whose alerts are accepted (every target must be in one); default: any.
    pub allowed_subscriptions: Option<Vec<String>>,
    /// Alert rule names or rule ids accepted; default: any.
    pub allowed_rules: Option<Vec<String>>,
    /// `mock`, `servicenow` or `bmc`.
    pub backend: BackendKind,
    /// Correlation mode: `alert` (default), `rule+target` or `ci`.
    #[serde(default = "default_correlation")]
    pub correlation: String,
    /// How long after a resolve a new Fired reopens the item instead of creating one (`24h`).
    #[serde(
        default = "default_reopen_window",
        deserialize_with = "duration::deserialize"
    )]
    pub reopen_window: Duration,
    /// When a person closed the item: `new_item` (default) or `note_only`.
    #[serde(default = "default_closed_by_person")]
    pub closed_by_person: String,
    /// Auto-close alerts that never resolve (activity log, service/resource health) after this.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub auto_close_after: Option<Duration>,
    /// Most ITSM calls per second to this connection's backend (none: learned from its 429s).
    pub max_calls_per_second: Option<f64>,
    /// Most targets of one alert bound to CIs, and most items one alert opens in `ci` mode
    /// (default 50); the rest are listed in the work item's notes.
    #[serde(default = "default_max_targets")]
    pub max_targets: usize,
    /// Most jobs this connection may have queued before its alerts get 503 (default: none,
    /// only the engine's high-water mark).
    pub max_queued: Option<u64>,
    /// An event dated further than this in the future is treated as received now (`5m`).
    #[serde(
        default = "default_max_clock_skew",
        deserialize_with = "duration::deserialize"
    )]
    pub max_clock_skew: Duration,
    /// When to ask the backend for an open item before creating one: `when_retrying`
    /// (default) or `always`.
    #[serde(default = "default_find_open")]
    pub find_open_before_create: String,
    /// Work item title template (minijinja); default: `[Sev1] <rule> - <resource>`.
    pub title_template: Option<String>,
    /// Extra work-item field templates, field name -> minijinja template.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// `[connection.servicenow]`, required when `backend = "servicenow"`.
    pub servicenow: Option<ServiceNowSection>,
    /// `[connection.bmc]`, required when `backend = "bmc"`.
    pub bmc: Option<BmcSection>,
    /// `[connection.cmdb]`: CI binding; absent = no CMDB binding.
    pub cmdb: Option<CmdbSection>,
}

/// `[connection.servicenow]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServiceNowSection {
    /// Instance base URL, e.g. `https://example.service-now.com`.
    pub instance_url: String,
    /// `basic` (default), `oauth_password` or `oauth_client_credentials`.
    #[serde(default = "default_sn_auth")]
    pub auth: String,
    /// Integration user.
    pub username: Option<String>,
    /// Password (prefer `password_env`).
    #[serde(default, deserialize_with = "de_secret")]
    pub password: Option<Secret>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// OAuth client id (OAuth modes).
    pub client_id: Option<String>,
    /// OAuth client secret (prefer `client_secret_env`).
    #[serde(default, deserialize_with = "de_secret")]
    pub client_secret: Option<Secret>,
    /// Environment variable holding the OAuth client secret.
    pub client_secret_env: Option<String>,
    /// `incident` (default) or `event` (`em_event`).
    #[serde(default = "default_sn_kind")]
    pub kind: String,
    /// Assignment group (sys_id or name).
    pub assignment_group: Option<String>,
    /// Caller (sys_id or user name).
    pub caller_id: Option<String>,
    /// Incident category.
    pub category: Option<String>,
    /// Incident subcategory.
    pub subcategory: Option<String>,
    /// Contact type (e.g. `monitoring`).
    pub contact_type: Option<String>,
    /// Close code used when Azure resolves the alert.
    pub close_code: Option<String>,
    /// State set when reopening.
    pub reopen_state: Option<String>,
    /// Per-call timeout (default: the connector's).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub timeout: Option<Duration>,
    /// Largest ITSM response body read (default 4 MiB); a larger one is an error, never
    /// buffered.
    pub max_response_bytes: Option<usize>,
}

/// `[connection.bmc]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BmcSection {
    /// AR REST base URL, e.g. `https://example-restapi.onbmc.com`.
    pub base_url: String,
    /// Integration user.
    pub username: String,
    /// Password (prefer `password_env`).
    #[serde(default, deserialize_with = "de_secret")]
    pub password: Option<Secret>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// Customer first name on created incidents.
    pub first_name: String,
    /// Customer last name on created incidents.
    pub last_name: String,
    /// `Assigned Group` of new incidents.
    pub assigned_group: Option<String>,
    /// `Company` of new incidents.
    pub company: Option<String>,
    /// Per-call timeout (default: the connector's).
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub timeout: Option<Duration>,
    /// Largest ITSM response body read (default 4 MiB); a larger one is an error, never
    /// buffered.
    pub max_response_bytes: Option<usize>,
}

/// `[connection.cmdb]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CmdbSection {
    /// Ordered strategies: `resource_id`, `name`, `static_map`, `fallback`.
    #[serde(default = "default_strategies")]
    pub strategies: Vec<String>,
    /// CI used when nothing matched (with the `fallback` strategy).
    pub fallback_ci: Option<CiSpec>,
    /// `[[connection.cmdb.static_map]]`: resource-id pattern (`*` wildcard) -> CI.
    #[serde(default)]
    pub static_map: Vec<StaticMapEntry>,
    /// How long a found CI is cached.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub positive_ttl: Option<Duration>,
    /// How long "not found" is cached.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub negative_ttl: Option<Duration>,
    /// How long a failed lookup (error, timeout) is cached.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub failure_ttl: Option<Duration>,
    /// Deadline for one binding.
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub deadline: Option<Duration>,
}

/// A configuration item named in the configuration: either a bare id string or a table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CiSpec {
    /// Just the CI id (sys_id / reconciliation id); its name is the id.
    Id(String),
    /// `{ id = "...", name = "...", class = "..." }`.
    Full {
        /// CI id.
        id: String,
        /// CI name.
        name: Option<String>,
        /// CI class.
        class: Option<String>,
    },
}

impl CiSpec {
    /// The CI id.
    pub fn id(&self) -> &str {
        match self {
            Self::Id(id) | Self::Full { id, .. } => id,
        }
    }

    /// The CI name (the id when none was given).
    pub fn name(&self) -> &str {
        match self {
            Self::Id(id) => id,
            Self::Full { id, name, .. } => name.as_deref().unwrap_or(id),
        }
    }

    /// The CI class, if given.
    pub fn class(&self) -> Option<&str> {
        match self {
            Self::Id(_) => None,
            Self::Full { class, .. } => class.as_deref(),
        }
    }
}

/// One `[[connection.cmdb.static_map]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StaticMapEntry {
    /// ARM resource id pattern; `*` matches any run of characters.
    pub pattern: String,
    /// The CI the pattern maps to.
    pub ci: CiSpec,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_body_limit() -> usize {
    DEFAULT_BODY_LIMIT
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_retry_after() -> Duration {
    Duration::from_secs(10)
}
fn default_admin_listen() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 9090)))
}
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_keep_alive_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_max_connections() -> usize {
    4096
}
fn default_quarantine_max_rows() -> u64 {
    10_000
}
fn default_quarantine_max_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_retention() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}
fn default_health_interval() -> Duration {
    Duration::from_secs(15)
}
fn default_max_targets() -> usize {
    crate::engine::DEFAULT_MAX_TARGETS
}
fn default_max_clock_skew() -> Duration {
    crate::engine::DEFAULT_MAX_CLOCK_SKEW
}
fn default_correlation() -> String {
    "alert".to_owned()
}
fn default_reopen_window() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_closed_by_person() -> String {
    "new_item".to_owned()
}
fn default_find_open() -> String {
    "when_retrying".to_owned()
}
fn default_sn_auth() -> String {
    "basic".to_owned()
}
fn default_sn_kind() -> String {
    "incident".to_owned()
}
fn default_strategies() -> Vec<String> {
    vec![
        "resource_id".to_owned(),
        "name".to_owned(),
        "fallback".to_owned(),
    ]
}

fn de_socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "invalid socket address {text:?}: expected IP:PORT such as \"0.0.0.0:8080\""
        ))
    })
}

fn de_admin_listen<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "invalid socket address {text:?}: expected IP:PORT such as \"127.0.0.1:9090\", or \"off\""
        ))
    })
}

fn de_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Option::<String>::deserialize(d).map(|s| s.map(Secret::new))
}

/// Correlation modes accepted in `connection[].correlation`.
pub const CORRELATION_MODES: &[&str] = &["alert", "rule+target", "ci"];
/// Values accepted in `connection[].closed_by_person`.
pub const CLOSED_POLICIES: &[&str] = &["new_item", "note_only"];
/// Values accepted in `connection[].find_open_before_create`.
pub const FIND_OPEN_POLICIES: &[&str] = &["when_retrying", "always"];
/// Strategies accepted in `connection[].cmdb.strategies`.
pub const CMDB_STRATEGIES: &[&str] = &["resource_id", "name", "static_map", "fallback"];

impl Config {
    /// Reads and validates a configuration file; secrets named by `*_env` keys come from the
    /// process environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Parses and validates TOML text, reading `*_env` secrets from the process environment.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::from_toml_str_with_env(text, |name| std::env::var(name).ok())
    }

    /// Parses and validates TOML text with an explicit environment lookup (for tests).
    pub fn from_toml_str_with_env(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let value: toml::Value = toml::from_str(text)
            .map_err(|e| ConfigError::Syntax(e.to_string().trim().to_owned()))?;
        let mut config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            let message = e.into_inner().to_string();
            // A top-level key named `""` has an empty path: report it at the root too.
            let key = if key == "." || key.is_empty() {
                "(root)".to_owned()
            } else {
                key
            };
            ConfigError::invalid(key, message)
        })?;
        config.validate(&env)?;
        Ok(config)
    }

    fn validate(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        self.server.validate_database(env)?;
        self.server.validate_listeners(env)?;
        if self.server.body_limit == 0 {
            return Err(ConfigError::invalid(
                "server.body_limit",
                "must be greater than 0",
            ));
        }
        if self.server.request_timeout.is_zero()
            || self.server.request_timeout > Duration::from_secs(9)
        {
            return Err(ConfigError::invalid(
                "server.request_timeout",
                "must be between 1ms and 9s (Azure gives up after about 10 s)",
            ));
        }
        if self.engine.workers_per_backend == Some(0) {
            return Err(ConfigError::invalid(
                "engine.workers_per_backend",
                "must be at least 1",
            ));
        }
        if self.engine.max_attempts == Some(0) {
            return Err(ConfigError::invalid(
                "engine.max_attempts",
                "must be at least 1",
            ));
        }
        for (name, value) in [
            ("engine.lease", self.engine.lease),
            ("engine.poll_interval", self.engine.poll_interval),
            ("engine.call_timeout", self.engine.call_timeout),
        ] {
            if value.is_some_and(|d| d.is_zero()) {
                return Err(ConfigError::invalid(name, "must be greater than 0"));
            }
        }
        if self.connections.is_empty() {
            return Err(ConfigError::invalid(
                "connection",
                "at least one [[connection]] is required",
            ));
        }
        let mut names = HashSet::new();
        for (i, conn) in self.connections.iter_mut().enumerate() {
            let at = format!("connection[{i}]");
            conn.validate(&at, env)?;
            if !names.insert(conn.name.clone()) {
                return Err(ConfigError::invalid(
                    format!("{at}.name"),
                    format!("duplicate connection name {:?}", conn.name),
                ));
            }
        }
        Ok(())
    }
}

impl ConnectionConfig {
    fn validate(
        &mut self,
        at: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{at}.{k}");
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ConfigError::invalid(
                key("name"),
                format!(
                    "{:?} must be non-empty and use only letters, digits, '-', '_' and '.' \
                     (it is a URL path segment)",
                    self.name
                ),
            ));
        }
        non_empty_list(&self.tenant_ids, &key("tenant_ids"))?;
        if let Some(i) = self.tenant_ids.iter().position(|t| !is_guid(t)) {
            return Err(ConfigError::invalid(
                format!("{at}.tenant_ids[{i}]"),
                format!(
                    "{:?} is not a tenant id: use the Directory (tenant) ID GUID, not a domain name",
                    self.tenant_ids.get(i).map_or("", String::as_str)
                ),
            ));
        }
        non_empty_list(&self.audiences, &key("audiences"))?;
        if let Some(ids) = &self.caller_app_ids {
            non_empty_list(ids, &key("caller_app_ids"))?;
        }
        match (&self.required_role, self.insecure_no_role_check) {
            (Some(role), _) if role.trim().is_empty() => {
                return Err(ConfigError::invalid(
                    key("required_role"),
                    "must not be empty; to accept tokens without an app role, remove \
                     required_role and set insecure_no_role_check = true (not recommended: \
                     any app of an allowed tenant could then post alerts)",
                ));
            }
            (Some(_), true) => {
                return Err(ConfigError::invalid(
                    key("insecure_no_role_check"),
                    "set either required_role or insecure_no_role_check, not both",
                ));
            }
            _ => {}
        }
        if self.max_targets == 0 {
            return Err(ConfigError::invalid(
                key("max_targets"),
                "must be at least 1",
            ));
        }
        if self.max_queued == Some(0) {
            return Err(ConfigError::invalid(
                key("max_queued"),
                "must be at least 1",
            ));
        }
        if let Some(authority) = &self.authority {
            check_url(authority, &key("authority"))?;
        }
        if let Some(subs) = &mut self.allowed_subscriptions {
            non_empty_list(subs, &key("allowed_subscriptions"))?;
            for (i, s) in subs.iter_mut().enumerate() {
                *s = s.trim().to_ascii_lowercase();
                // Anything else (a name, `/subscriptions/...`) would match no alert, and every
                // alert would be refused with 403, which Azure does not retry.
                if !is_guid(s) {
                    return Err(ConfigError::invalid(
                        format!("{at}.allowed_subscriptions[{i}]"),
                        format!("{s:?} is not a subscription id: use the subscription GUID"),
                    ));
                }
            }
        }
        if let Some(rules) = &self.allowed_rules {
            non_empty_list(rules, &key("allowed_rules"))?;
        }
        one_of(&self.correlation, CORRELATION_MODES, &key("correlation"))?;
        one_of(
            &self.closed_by_person,
            CLOSED_POLICIES,
            &key("closed_by_person"),
        )?;
        if let Some(rate) = self.max_calls_per_second
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(ConfigError::invalid(
                key("max_calls_per_second"),
                "must be a number greater than 0",
            ));
        }
        one_of(
            &self.find_open_before_create,
            FIND_OPEN_POLICIES,
            &key("find_open_before_create"),
        )?;
        if self.auto_close_after.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::invalid(
                key("auto_close_after"),
                "must be greater than 0",
            ));
        }
        match self.backend {
            BackendKind::Mock => {
                if self.servicenow.is_some() || self.bmc.is_some() {
                    return Err(ConfigError::invalid(
                        key("backend"),
                        "backend is \"mock\" but a [connection.servicenow] or [connection.bmc] \
                         section is present",
                    ));
                }
            }
            BackendKind::Servicenow => {
                if self.bmc.is_some() {
                    return Err(ConfigError::invalid(
                        key("bmc"),
                        "backend is \"servicenow\"; remove the [connection.bmc] section",
                    ));
                }
                let Some(sn) = &mut self.servicenow else {
                    return Err(ConfigError::invalid(
                        key("servicenow"),
                        "backend = \"servicenow\" needs a [connection.servicenow] section",
                    ));
                };
                sn.validate(&key("servicenow"), env)?;
            }
            BackendKind::Bmc => {
                if self.servicenow.is_some() {
                    return Err(ConfigError::invalid(
                        key("servicenow"),
                        "backend is \"bmc\"; remove the [connection.servicenow] section",
                    ));
                }
                let Some(bmc) = &mut self.bmc else {
                    return Err(ConfigError::invalid(
                        key("bmc"),
                        "backend = \"bmc\" needs a [connection.bmc] section",
                    ));
                };
                bmc.validate(&key("bmc"), env)?;
            }
        }
        if let Some(cmdb) = &self.cmdb {
            cmdb.validate(&key("cmdb"), self.backend)?;
        }
        Ok(())
    }
}

impl ServiceNowSection {
    fn validate(
        &mut self,
        at: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{at}.{k}");
        check_url(&self.instance_url, &key("instance_url"))?;
        check_response_cap(self.max_response_bytes, &key("max_response_bytes"))?;
        one_of(&self.kind, &["incident", "event"], &key("kind"))?;
        one_of(
            &self.auth,
            &["basic", "oauth_password", "oauth_client_credentials"],
            &key("auth"),
        )?;
        let needs_user = self.auth != "oauth_client_credentials";
        if needs_user {
            if self.username.as_deref().is_none_or(str::is_empty) {
                return Err(ConfigError::invalid(
                    key("username"),
                    format!("required with auth = {:?}", self.auth),
                ));
            }
            resolve_secret(
                &mut self.password,
                self.password_env.as_deref(),
                at,
                "password",
                env,
            )?;
        }
        if self.auth != "basic" {
            if self.client_id.as_deref().is_none_or(str::is_empty) {
                return Err(ConfigError::invalid(
                    key("client_id"),
                    format!("required with auth = {:?}", self.auth),
                ));
            }
            resolve_secret(
                &mut self.client_secret,
                self.client_secret_env.as_deref(),
                at,
                "client_secret",
                env,
            )?;
        }
        Ok(())
    }
}

impl BmcSection {
    fn validate(
        &mut self,
        at: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{at}.{k}");
        check_url(&self.base_url, &key("base_url"))?;
        check_response_cap(self.max_response_bytes, &key("max_response_bytes"))?;
        for (name, value) in [
            ("username", &self.username),
            ("first_name", &self.first_name),
            ("last_name", &self.last_name),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::invalid(key(name), "must not be empty"));
            }
        }
        resolve_secret(
            &mut self.password,
            self.password_env.as_deref(),
            at,
            "password",
            env,
        )
    }
}

impl CmdbSection {
    fn validate(&self, at: &str, backend: BackendKind) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{at}.{k}");
        if self.strategies.is_empty() {
            return Err(ConfigError::invalid(
                key("strategies"),
                "must list at least one strategy",
            ));
        }
        for (i, s) in self.strategies.iter().enumerate() {
            one_of(s, CMDB_STRATEGIES, &format!("{at}.strategies[{i}]"))?;
            if backend == BackendKind::Mock && matches!(s.as_str(), "resource_id" | "name") {
                return Err(ConfigError::invalid(
                    format!("{at}.strategies[{i}]"),
                    "the mock backend has no CMDB; use only \"static_map\" and \"fallback\"",
                ));
            }
        }
        if self.strategies.iter().any(|s| s == "fallback") && self.fallback_ci.is_none() {
            return Err(ConfigError::invalid(
                key("fallback_ci"),
                "required when strategies include \"fallback\"",
            ));
        }
        if self.strategies.iter().any(|s| s == "static_map") && self.static_map.is_empty() {
            return Err(ConfigError::invalid(
                key("static_map"),
                "required when strategies include \"static_map\"",
            ));
        }
        Ok(())
    }
}

fn check_response_cap(value: Option<usize>, key: &str) -> Result<(), ConfigError> {
    match value {
        Some(n) if n < 1024 => Err(ConfigError::invalid(key, "must be at least 1024 bytes")),
        _ => Ok(()),
    }
}

fn non_empty_list(list: &[String], key: &str) -> Result<(), ConfigError> {
    if list.is_empty() {
        return Err(ConfigError::invalid(key, "must list at least one value"));
    }
    if let Some(i) = list.iter().position(|v| v.trim().is_empty()) {
        return Err(ConfigError::invalid(
            format!("{key}[{i}]"),
            "must not be empty",
        ));
    }
    Ok(())
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex digits).
fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn one_of(value: &str, allowed: &[&str], key: &str) -> Result<(), ConfigError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!(
                "unknown value {value:?}; expected one of {}",
                quoted(allowed)
            ),
        ))
    }
}

fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Accepts `https://` anywhere and `http://` only for loopback hosts (emulators, demos); refuses
/// credentials in the URL. Messages never repeat a `user:password@` part.
fn check_url(text: &str, key: &str) -> Result<(), ConfigError> {
    let shown = redact_userinfo(text);
    let text = shown.as_str();
    let url =
        url::Url::parse(text).map_err(|e| ConfigError::invalid(key, format!("{text:?}: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::invalid(
            key,
            format!(
                "{text:?}: must not contain credentials (user:password@); \
                 use the username and password/password_env keys"
            ),
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url.host_str().unwrap_or_default()) => Ok(()),
        "http" => Err(ConfigError::invalid(
            key,
            format!("{text:?}: plain http is only allowed for loopback hosts; use https"),
        )),
        other => Err(ConfigError::invalid(
            key,
            format!("{text:?}: unsupported scheme {other:?}; use https"),
        )),
    }
}

/// `scheme://user:pw@host/...` as `scheme://***@host/...`; other text unchanged.
fn redact_userinfo(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{tail}"),
        None => text.to_owned(),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn resolve_secret(
    value: &mut Option<Secret>,
    env_name: Option<&str>,
    at: &str,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match (value.as_ref(), env_name) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            format!("{at}.{field}_env"),
            format!("set either {field} or {field}_env, not both"),
        )),
        (Some(s), None) if s.is_empty() => Err(ConfigError::invalid(
            format!("{at}.{field}"),
            "must not be empty",
        )),
        (Some(_), None) => Ok(()),
        (None, Some(var)) => match env(var) {
            Some(v) if !v.is_empty() => {
                *value = Some(Secret::new(v));
                Ok(())
            }
            _ => Err(ConfigError::invalid(
                format!("{at}.{field}_env"),
                format!("environment variable {var:?} is not set or empty"),
            )),
        },
        (None, None) => Err(ConfigError::invalid(
            format!("{at}.{field}"),
            format!("required: set {field} or {field}_env"),
        )),
    }
}

/// The configuration file path: `--config FILE` / `--config=FILE` in `args`, else the
/// `SECURE_EXPORT_CONFIG` environment variable, else `None` (demo mode).
pub fn config_path_from_args<I>(args: I) -> Option<PathBuf>
where
    I: IntoIterator<Item = String>,
{
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os(CONFIG_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests;
