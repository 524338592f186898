//! [`BmcConfig`] and [`CmdbConfig`]: everything a BMC Helix connection needs.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use secure_export_itsm::{ItsmError, Secret};

use crate::SeverityMap;

pub(crate) const BACKEND: &str = "bmc";

/// Configuration of one BMC Helix ITSM connection (AR System REST API).
///
/// Build it with [`BmcConfig::new`] and adjust the public fields; the connector checks it in
/// [`BmcConnector::new`](crate::BmcConnector::new). `Debug` never prints the password.
///
/// ```
/// use secure_export_bmc::BmcConfig;
/// let mut config = BmcConfig::new("https://acme-restapi.onbmc.com", "azure-int", "s3cret");
/// config.assigned_group = Some("Cloud Operations".to_owned());
/// config.correlation_field = "mc_ueid".to_owned();
/// assert!(!format!("{config:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct BmcConfig {
    /// Base URL of the AR REST API, e.g. `https://acme-restapi.onbmc.com`. HTTPS is required
    /// except for loopback hosts (`127.0.0.1`, `::1`, `localhost`).
    pub base_url: String,
    /// The AR user name used for `POST /api/jwt/login`.
    pub username: String,
    /// The AR user's password.
    pub password: Secret,
    /// Optional `authString` sent with the login form (authentication domain).
    pub auth_string: Option<String>,
    /// Customer `First_Name` on new incidents (sent when non-empty). Default `Azure`.
    pub first_name: String,
    /// Customer `Last_Name` on new incidents (sent when non-empty). Default `Monitor`.
    pub last_name: String,
    /// Customer `Login_ID` on new incidents, instead of or besides the names. Default none.
    pub login_id: Option<String>,
    /// `Status` of new incidents: `New`, `Assigned` or `In Progress`. Default `New`.
    pub create_status: String,
    /// `Reported Source` of new incidents. Default `Systems Management`.
    pub reported_source: String,
    /// `Service_Type` of new incidents. Default `Infrastructure Event`.
    pub service_type: String,
    /// `Company` of new incidents.
    pub company: Option<String>,
    /// `Assigned Support Company` of new incidents.
    pub assigned_support_company: Option<String>,
    /// `Assigned Support Organization` of new incidents.
    pub assigned_support_organization: Option<String>,
    /// `Assigned Group` of new incidents.
    pub assigned_group: Option<String>,
    /// Operational categorization tiers 1..3 (`Categorization_Tier_1..3`), at most three.
    pub operational_categorization: Vec<String>,
    /// Product categorization tiers 1..3 (`Product_Categorization_Tier_1..3`), at most three.
    pub product_categorization: Vec<String>,
    /// The field that stores the correlation id, queried by `find_open`. Default
    /// `Vendor Ticket Number`.
    pub correlation_field: String,
    /// Azure severity to `Impact` / `Urgency`.
    pub severity_map: SeverityMap,
    /// Maximum characters of `Description` (the summary line). Default 100.
    pub description_max_chars: usize,
    /// Maximum characters of `Detailed_Decription`, `Resolution` and work-log text.
    /// Default 30 000.
    pub detail_max_chars: usize,
    /// `Status_Reason` used when resolving without an explicit code. Default
    /// `Automated Resolution Reported`.
    pub resolve_status_reason: String,
    /// `Status` a reopened incident gets: `New`, `Assigned` or `In Progress`. Default `Assigned`.
    pub reopen_status: String,
    /// `Work Log Type` of work-log entries. Default `General Information`.
    pub work_log_type: String,
    /// `View Access` of work-log entries (`Internal` or `Public`). Default `Internal`.
    pub work_log_view_access: String,
    /// `Secure Work Log` of work-log entries. Default `false` (`No`).
    pub work_log_secure: bool,
    /// The CI class assumed for a configuration item without one. Default `BMC_ComputerSystem`.
    pub default_ci_class: String,
    /// `z1D_CI_FormName` per CI class; classes not listed use `AST:<class without BMC_>`
    /// (`BMC_ComputerSystem` -> `AST:ComputerSystem`).
    pub ci_form_names: BTreeMap<String, String>,
    /// Extra fields set on every new incident (the work item's own fields win).
    pub extra_fields: BTreeMap<String, serde_json::Value>,
    /// A link for people, with `{id}` (entry id) and `{number}` (incident number) placeholders,
    /// e.g. a Smart IT or Helix Digital Workplace URL. Default none.
    pub item_url_template: Option<String>,
    /// Assumed AR-JWT lifetime when the token does not state its own. Default 1 hour.
    pub token_lifetime: Duration,
    /// Log in again this long before the token expires (at most half its lifetime).
    /// Default 5 minutes.
    pub token_refresh_margin: Duration,
    /// Timeout of every HTTP request. Default 30 s.
    pub timeout: Duration,
    /// Largest response body read, in bytes (at least 1024). Default 4 MiB. A larger answer
    /// (by `Content-Length`, or counted while streaming) is not read further: a 2xx becomes a
    /// retryable [`ItsmError::InvalidResponse`], any other status an [`ItsmError::Http`] with
    /// that status.
    pub max_response_bytes: usize,
    /// CMDB lookup settings (used by [`BmcCmdb`](crate::BmcCmdb)).
    pub cmdb: CmdbConfig,
}

impl BmcConfig {
    /// A configuration with the given endpoint and credentials and defaults for everything else.
    pub fn new(
        base_url: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            username: username.into(),
            password: password.into(),
            auth_string: None,
            first_name: "Azure".to_owned(),
            last_name: "Monitor".to_owned(),
            login_id: None,
            create_status: "New".to_owned(),
            reported_source: "Systems Management".to_owned(),
            service_type: "Infrastructure Event".to_owned(),
            company: None,
            assigned_support_company: None,
            assigned_support_organization: None,
            assigned_group: None,
            operational_categorization: Vec::new(),
            product_categorization: Vec::new(),
            correlation_field: "Vendor Ticket Number".to_owned(),
            severity_map: SeverityMap::default(),
            description_max_chars: 100,
            detail_max_chars: 30_000,
            resolve_status_reason: "Automated Resolution Reported".to_owned(),
            reopen_status: "Assigned".to_owned(),
            work_log_type: "General Information".to_owned(),
            work_log_view_access: "Internal".to_owned(),
            work_log_secure: false,
            default_ci_class: "BMC_ComputerSystem".to_owned(),
            ci_form_names: BTreeMap::new(),
            extra_fields: BTreeMap::new(),
            item_url_template: None,
            token_lifetime: Duration::from_secs(3600),
            token_refresh_margin: Duration::from_secs(300),
            timeout: Duration::from_secs(30),
            max_response_bytes: 4 << 20,
            cmdb: CmdbConfig::default(),
        }
    }

    /// Checks the configuration; returns the normalized base URL (no trailing slash).
    pub(crate) fn validate(&self) -> Result<String, ItsmError> {
        let base = validate_base_url(&self.base_url)?;
        if self.username.trim().is_empty() {
            return Err(config_error("username is empty"));
        }
        let has_names = !self.first_name.trim().is_empty() && !self.last_name.trim().is_empty();
        let has_login = self
            .login_id
            .as_deref()
            .is_some_and(|l| !l.trim().is_empty());
        if !has_names && !has_login {
            return Err(config_error(
                "a customer is required: set first_name and last_name, or login_id",
            ));
        }
        for (name, value) in [
            ("create_status", &self.create_status),
            ("reported_source", &self.reported_source),
            ("service_type", &self.service_type),
            ("resolve_status_reason", &self.resolve_status_reason),
            ("work_log_type", &self.work_log_type),
            ("work_log_view_access", &self.work_log_view_access),
            ("default_ci_class", &self.default_ci_class),
        ] {
            if value.trim().is_empty() {
                return Err(config_error(&format!("{name} is empty")));
            }
        }
        if !["New", "Assigned", "In Progress"].contains(&self.create_status.as_str()) {
            return Err(config_error(&format!(
                "create_status {:?} is not an open status (New, Assigned, In Progress)",
                self.create_status
            )));
        }
        if !["New", "Assigned", "In Progress"].contains(&self.reopen_status.as_str()) {
            return Err(config_error(&format!(
                "reopen_status {:?} is not an open status without a reason \
                 (New, Assigned, In Progress)",
                self.reopen_status
            )));
        }
        validate_field_name("correlation_field", &self.correlation_field)?;
        if self.operational_categorization.len() > 3 {
            return Err(config_error(
                "operational_categorization has more than 3 tiers",
            ));
        }
        if self.product_categorization.len() > 3 {
            return Err(config_error("product_categorization has more than 3 tiers"));
        }
        if self.description_max_chars == 0 || self.detail_max_chars == 0 {
            return Err(config_error(
                "description_max_chars and detail_max_chars must be > 0",
            ));
        }
        if self.timeout.is_zero() {
            return Err(config_error("timeout must be > 0"));
        }
        if self.max_response_bytes < 1024 {
            return Err(config_error("max_response_bytes must be at least 1024"));
        }
        self.cmdb.validate()?;
        Ok(base)
    }
}

impl fmt::Debug for BmcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BmcConfig")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field(
                "auth_string",
                &self.auth_string.as_ref().map(|_| "[redacted]"),
            )
            .field("first_name", &self.first_name)
            .field("last_name", &self.last_name)
            .field("login_id", &self.login_id)
            .field("create_status", &self.create_status)
            .field("reported_source", &self.reported_source)
            .field("service_type", &self.service_type)
            .field("company", &self.company)
            .field("assigned_group", &self.assigned_group)
            .field("correlation_field", &self.correlation_field)
            .field("severity_map", &self.severity_map)
            .field("resolve_status_reason", &self.resolve_status_reason)
            .field("reopen_status", &self.reopen_status)
            .field("token_lifetime", &self.token_lifetime)
            .field("timeout", &self.timeout)
            .field("cmdb", &self.cmdb)
            .finish_non_exhaustive()
    }
}

/// Where [`BmcCmdb`](crate::BmcCmdb) looks configuration items up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CmdbConfig {
    /// Dataset. Default `BMC.ASSET` (production).
    pub dataset: String,
    /// Namespace. Default `BMC.CORE`.
    pub namespace: String,
    /// Classes searched, in order. Default `BMC_ComputerSystem` (VMs and hosts), then
    /// `BMC_CloudInstance`, `BMC_DataBase` and `BMC_ApplicationSystem` (other Azure resources,
    /// depending on the Discovery patterns in use).
    pub classes: Vec<String>,
    /// Attribute holding the Azure resource id. Default `CloudID`.
    pub resource_id_attribute: String,
    /// Attribute holding the CI name. Default `Name`.
    pub name_attribute: String,
}

impl Default for CmdbConfig {
    fn default() -> Self {
        Self {
            dataset: "BMC.ASSET".to_owned(),
            namespace: "BMC.CORE".to_owned(),
            classes: [
                "BMC_ComputerSystem",
                "BMC_CloudInstance",
                "BMC_DataBase",
                "BMC_ApplicationSystem",
            ]
            .map(str::to_owned)
            .to_vec(),
            resource_id_attribute: "CloudID".to_owned(),
            name_attribute: "Name".to_owned(),
        }
    }
}

impl CmdbConfig {
    fn validate(&self) -> Result<(), ItsmError> {
        if self.classes.is_empty() {
            return Err(config_error("cmdb.classes is empty"));
        }
        for (what, value) in [
            ("cmdb.dataset", &self.dataset),
            ("cmdb.namespace", &self.namespace),
        ]
        .into_iter()
        .chain(self.classes.iter().map(|c| ("cmdb.classes", c)))
        {
            if value.is_empty()
                || !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                return Err(config_error(&format!(
                    "{what} {value:?} must be letters, digits, '.', '_' or '-'"
                )));
            }
        }
        validate_field_name("cmdb.resource_id_attribute", &self.resource_id_attribute)?;
        validate_field_name("cmdb.name_attribute", &self.name_attribute)
    }
}

pub(crate) fn config_error(message: &str) -> ItsmError {
    ItsmError::Config {
        backend: BACKEND,
        message: message.to_owned(),
    }
}

/// A field name must fit in `'...'` qualifications and `values(a,b)` lists.
fn validate_field_name(what: &str, name: &str) -> Result<(), ItsmError> {
    if name.trim().is_empty() || name.chars().any(|c| c.is_control() || "',()\"".contains(c)) {
        return Err(config_error(&format!(
            "{what} {name:?} is not a usable field name (empty, or contains quotes, commas, \
             parentheses or control characters)"
        )));
    }
    Ok(())
}

/// HTTPS, or HTTP on a loopback host; no credentials, query or fragment.
fn validate_base_url(raw: &str) -> Result<String, ItsmError> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| config_error(&format!("base_url {raw:?} is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(config_error(&format!(
                "base_url {raw:?} must use https (plain http is allowed for loopback only)"
            )));
        }
        other => {
            return Err(config_error(&format!(
                "base_url scheme {other:?} is not https"
            )));
        }
    }
    if url.host().is_none() {
        return Err(config_error(&format!("base_url {raw:?} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config_error("base_url must not contain credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config_error("base_url must not have a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> BmcConfig {
        BmcConfig::new(url, "user", "hunter2")
    }

    #[test]
    fn debug_never_prints_the_password() {
        let mut c = cfg("https://x.example");
        c.auth_string = Some("domain-secret".to_owned());
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains("domain-secret"), "{dbg}");
        assert!(dbg.contains("[redacted]"));
    }

    #[test]
    fn base_url_rules() {
        assert_eq!(
            cfg("https://x.example/").validate().unwrap(),
            "https://x.example"
        );
        assert_eq!(
            cfg("https://x.example/ar/").validate().unwrap(),
            "https://x.example/ar"
        );
        assert_eq!(
            cfg("http://127.0.0.1:8082").validate().unwrap(),
            "http://127.0.0.1:8082"
        );
        assert!(cfg("http://[::1]:8082").validate().is_ok());
        assert!(cfg("http://localhost:8082").validate().is_ok());
        for bad in [
            "http://x.example",
            "ftp://x.example",
            "not a url",
            "https://u:p@x.example",
            "https://x.example/?a=b",
            "https://x.example/#f",
        ] {
            let err = cfg(bad).validate().unwrap_err();
            assert!(matches!(err, ItsmError::Config { .. }), "{bad}: {err}");
            assert!(!err.to_string().contains(":p@") || bad.contains(":p@"));
        }
        let err = cfg("http://x.example").validate().unwrap_err().to_string();
        assert!(err.contains("must use https"), "{err}");
    }

    #[test]
    fn field_and_status_rules() {
        let mut c = cfg("https://x.example");
        c.correlation_field = "Vendor' OR 'x".to_owned();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("correlation_field")
        );

        let mut c = cfg("https://x.example");
        c.reopen_status = "Pending".to_owned();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("reopen_status")
        );

        let mut c = cfg("https://x.example");
        c.resolve_status_reason = "  ".to_owned();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("resolve_status_reason")
        );

        let mut c = cfg("https://x.example");
        c.first_name = String::new();
        assert!(c.validate().unwrap_err().to_string().contains("customer"));
        c.login_id = Some("jdoe".to_owned());
        assert!(c.validate().is_ok());

        let mut c = cfg("https://x.example");
        c.operational_categorization = vec!["a".into(), "b".into(), "c".into(), "d".into()];
        assert!(c.validate().unwrap_err().to_string().contains("3 tiers"));

        let mut c = cfg("https://x.example");
        c.cmdb.classes = vec!["BMC_ComputerSystem/../x".to_owned()];
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("cmdb.classes")
        );
    }
}
