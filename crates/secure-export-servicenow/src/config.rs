//! [`ServiceNowConfig`], [`Auth`], [`WorkItemKind`] and [`SeverityMap`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secure_export_itsm::{Secret, Severity};

/// How the connector authenticates to the instance. Every credential is a [`Secret`].
#[derive(Clone)]
#[non_exhaustive]
pub enum Auth {
    /// HTTP basic authentication on every request.
    Basic {
        /// The ServiceNow user name.
        username: String,
        /// The user's password.
        password: Secret,
    },
    /// OAuth 2.0 resource-owner password grant on `/oauth_token.do`; the refresh token it
    /// returns is used to renew the access token.
    OAuthPassword {
        /// The Application Registry client id.
        client_id: String,
        /// The Application Registry client secret.
        client_secret: Secret,
        /// The ServiceNow user name.
        username: String,
        /// The user's password.
        password: Secret,
    },
    /// OAuth 2.0 client-credentials grant on `/oauth_token.do` (the instance must enable it with
    /// `glide.oauth.inbound.client.credential.grant_type.enabled=true`).
    OAuthClientCredentials {
        /// The Application Registry client id.
        client_id: String,
        /// The Application Registry client secret.
        client_secret: Secret,
        /// An optional OAuth scope.
        scope: Option<String>,
    },
}

impl Auth {
    /// Basic authentication.
    pub fn basic(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Self::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// OAuth password grant.
    pub fn oauth_password(
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Self {
        Self::OAuthPassword {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            username: username.into(),
            password: password.into(),
        }
    }

    /// OAuth client-credentials grant without a scope.
    pub fn oauth_client_credentials(
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
    ) -> Self {
        Self::OAuthClientCredentials {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: None,
        }
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        let (who, what) = match self {
            Self::Basic { username, .. } => (username, "auth.username"),
            Self::OAuthPassword {
                client_id,
                username,
                ..
            } => {
                if client_id.is_empty() {
                    return Err("auth.client_id is empty".to_owned());
                }
                (username, "auth.username")
            }
            Self::OAuthClientCredentials { client_id, .. } => (client_id, "auth.client_id"),
        };
        if who.is_empty() {
            Err(format!("{what} is empty"))
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"[redacted]")
                .finish(),
            Self::OAuthPassword {
                client_id,
                username,
                ..
            } => f
                .debug_struct("OAuthPassword")
                .field("client_id", client_id)
                .field("client_secret", &"[redacted]")
                .field("username", username)
                .field("password", &"[redacted]")
                .finish(),
            Self::OAuthClientCredentials {
                client_id, scope, ..
            } => f
                .debug_struct("OAuthClientCredentials")
                .field("client_id", client_id)
                .field("client_secret", &"[redacted]")
                .field("scope", scope)
                .finish(),
        }
    }
}

/// Which kind of record an alert becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum WorkItemKind {
    /// An `incident` (the default).
    #[default]
    Incident,
    /// An Event Management event (`em_event`) whose `message_key` is the correlation id;
    /// ServiceNow rolls events with the same key into one alert, and a `0` (Clear) event closes it.
    Event,
}

impl WorkItemKind {
    /// The Table API table the kind writes to.
    #[must_use]
    pub fn table(self) -> &'static str {
        match self {
            Self::Incident => "incident",
            Self::Event => "em_event",
        }
    }
}

/// Incident impact/urgency (each `1` High .. `3` Low) and event severity per Azure severity.
///
/// Defaults: incidents per the workspace design table (Sev0 1/1, Sev1 2/1, Sev2 2/2, Sev3 3/2,
/// Sev4 3/3, giving priorities 1..5); events per ServiceNow's own Azure connector (Sev0 1
/// Critical, Sev1 2 Major, Sev2 and Sev3 4 Warning, Sev4 5 OK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeverityMap {
    incident: [(u8, u8); 5],
    event: [u8; 5],
}

impl Default for SeverityMap {
    fn default() -> Self {
        Self {
            incident: [(1, 1), (2, 1), (2, 2), (3, 2), (3, 3)],
            event: [1, 2, 4, 4, 5],
        }
    }
}

impl SeverityMap {
    /// Sets the incident impact and urgency for one severity.
    #[must_use]
    pub fn with_incident(mut self, severity: Severity, impact: u8, urgency: u8) -> Self {
        if let Some(slot) = self.incident.get_mut(usize::from(severity.as_u8())) {
            *slot = (impact, urgency);
        }
        self
    }

    /// Sets the event severity (`1` Critical .. `5` OK) for one Azure severity.
    #[must_use]
    pub fn with_event(mut self, severity: Severity, event_severity: u8) -> Self {
        if let Some(slot) = self.event.get_mut(usize::from(severity.as_u8())) {
            *slot = event_severity;
        }
        self
    }

    /// The incident `(impact, urgency)` for a severity.
    #[must_use]
    pub fn impact_urgency(&self, severity: Severity) -> (u8, u8) {
        self.incident
            .get(usize::from(severity.as_u8()))
            .copied()
            .unwrap_or((3, 3))
    }

    /// The event severity for an Azure severity.
    #[must_use]
    pub fn event_severity(&self, severity: Severity) -> u8 {
        self.event
            .get(usize::from(severity.as_u8()))
            .copied()
            .unwrap_or(5)
    }

    fn check(&self) -> Result<(), String> {
        for (i, (impact, urgency)) in self.incident.iter().enumerate() {
            if !(1..=3).contains(impact) || !(1..=3).contains(urgency) {
                return Err(format!("severity_map: Sev{i} impact/urgency must be 1..=3"));
            }
        }
        for (i, sev) in self.event.iter().enumerate() {
            if !(1..=5).contains(sev) {
                return Err(format!("severity_map: Sev{i} event severity must be 1..=5"));
            }
        }
        Ok(())
    }
}

/// The time source used for token expiry (injectable so tests need not sleep).
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl Clock {
    /// A clock backed by a function.
    pub fn new(now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    /// The current time.
    #[must_use]
    pub fn now(&self) -> SystemTime {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new(SystemTime::now)
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// Configuration of a [`ServiceNowConnector`](crate::ServiceNowConnector) or
/// [`ServiceNowCmdb`](crate::ServiceNowCmdb).
///
/// Start from [`ServiceNowConfig::new`] (safe defaults) and change fields or use the `with_*`
/// setters; the connector checks everything once, in `new`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServiceNowConfig {
    /// The instance base URL, e.g. `https://acme.service-now.com`. `http` is accepted only for
    /// loopback hosts (local emulators).
    pub instance_url: String,
    /// Credentials.
    pub auth: Auth,
    /// Incident (default) or event.
    pub kind: WorkItemKind,
    /// `caller_id` set on new incidents (a `sys_user` sys_id).
    pub caller_id: Option<String>,
    /// `assignment_group` set on new incidents (a `sys_user_group` sys_id).
    pub assignment_group: Option<String>,
    /// `category` set on new incidents.
    pub category: Option<String>,
    /// `subcategory` set on new incidents.
    pub subcategory: Option<String>,
    /// `contact_type` set on new incidents.
    pub contact_type: Option<String>,
    /// Further fields set on every new incident (typically `u_*` columns).
    pub extra_fields: BTreeMap<String, serde_json::Value>,
    /// The incident state written on resolve (default `"6"` Resolved).
    pub resolve_state: String,
    /// The `close_code` written on resolve when the resolution has none (default
    /// `"Solution provided"`).
    pub close_code: String,
    /// The incident state written on reopen (default `"2"` In Progress).
    pub reopen_state: String,
    /// Azure severity to impact/urgency and event severity.
    pub severity_map: SeverityMap,
    /// `source` of events (default `"Azure Monitor"`).
    pub event_source: String,
    /// `event_class` of events, if set.
    pub event_class: Option<String>,
    /// Timeout of every request, including the token request (default 30 s).
    pub timeout: Duration,
    /// How long before its expiry an OAuth access token is renewed (default 60 s, at most half
    /// of the token's lifetime).
    pub token_refresh_margin: Duration,
    /// CMDB tables searched by [`ServiceNowCmdb`](crate::ServiceNowCmdb) (default `cmdb_ci`,
    /// which holds every class).
    pub cmdb_classes: Vec<String>,
    /// Largest response body read, in bytes (default [`DEFAULT_MAX_RESPONSE_BYTES`], 4 MiB; at
    /// least 1024). A larger answer (by `Content-Length`, or counted while streaming) is not
    /// read further: a 2xx becomes a retryable
    /// [`ItsmError::InvalidResponse`](secure_export_itsm::ItsmError::InvalidResponse), any other
    /// status an [`ItsmError::Http`](secure_export_itsm::ItsmError::Http) with that status.
    pub max_response_bytes: usize,
    /// The clock used for token expiry.
    pub clock: Clock,
}

/// The default [`ServiceNowConfig::max_response_bytes`]: 4 MiB, far above any answer the
/// connector asks for (at most 50 rows of a few fields).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 << 20;

impl ServiceNowConfig {
    /// A configuration with defaults for everything but the instance and the credentials.
    pub fn new(instance_url: impl Into<String>, auth: Auth) -> Self {
        Self {
            instance_url: instance_url.into(),
            auth,
            kind: WorkItemKind::Incident,
            caller_id: None,
            assignment_group: None,
            category: None,
            subcategory: None,
            contact_type: None,
            extra_fields: BTreeMap::new(),
            resolve_state: "6".to_owned(),
            close_code: "Solution provided".to_owned(),
            reopen_state: "2".to_owned(),
            severity_map: SeverityMap::default(),
            event_source: "Azure Monitor".to_owned(),
            event_class: None,
            timeout: Duration::from_secs(30),
            token_refresh_margin: Duration::from_secs(60),
            cmdb_classes: vec!["cmdb_ci".to_owned()],
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            clock: Clock::default(),
        }
    }

    /// Sets the work item kind.
    #[must_use]
    pub fn with_kind(mut self, kind: WorkItemKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets the assignment group.
    #[must_use]
    pub fn with_assignment_group(mut self, sys_id: impl Into<String>) -> Self {
        self.assignment_group = Some(sys_id.into());
        self
    }

    /// Sets the caller.
    #[must_use]
    pub fn with_caller_id(mut self, sys_id: impl Into<String>) -> Self {
        self.caller_id = Some(sys_id.into());
        self
    }

    /// Sets an extra field written on every new incident.
    #[must_use]
    pub fn with_extra_field(
        mut self,
        name: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.extra_fields.insert(name.into(), value.into());
        self
    }

    /// Sets the request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the largest response body read, in bytes.
    #[must_use]
    pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Sets the clock used for token expiry.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Checks everything but the URL; returns what is wrong.
    pub(crate) fn check(&self) -> Result<(), String> {
        self.auth.check()?;
        self.severity_map.check()?;
        if self.timeout.is_zero() {
            return Err("timeout must be greater than zero".to_owned());
        }
        if self.max_response_bytes < 1024 {
            return Err("max_response_bytes must be at least 1024".to_owned());
        }
        for (what, value) in [
            ("resolve_state", &self.resolve_state),
            ("close_code", &self.close_code),
            ("reopen_state", &self.reopen_state),
        ] {
            if value.trim().is_empty() {
                return Err(format!("{what} is empty"));
            }
        }
        for name in self.extra_fields.keys() {
            if !is_identifier(name) {
                return Err(format!("extra_fields: {name:?} is not a field name"));
            }
        }
        if self.cmdb_classes.is_empty() {
            return Err("cmdb_classes is empty".to_owned());
        }
        for class in &self.cmdb_classes {
            if !is_identifier(class) {
                return Err(format!("cmdb_classes: {class:?} is not a table name"));
            }
        }
        Ok(())
    }
}

/// Whether `s` is a plausible ServiceNow table or field name (`[A-Za-z0-9_]+`).
pub(crate) fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_secrets() {
        let auths = [
            Auth::basic("svc", "pw-basic-123"),
            Auth::oauth_password("cid", "cs-456", "svc", "pw-oauth-789"),
            Auth::oauth_client_credentials("cid", "cs-cc-000"),
        ];
        for auth in auths {
            let config = ServiceNowConfig::new("https://x.service-now.com", auth);
            let printed = format!("{config:?} {config:#?}");
            for secret in ["pw-basic-123", "cs-456", "pw-oauth-789", "cs-cc-000"] {
                assert!(!printed.contains(secret), "{printed}");
            }
            assert!(printed.contains("[redacted]"));
        }
    }

    #[test]
    fn default_severity_map_matches_design_table() {
        let m = SeverityMap::default();
        let expect = [(1, 1, 1), (2, 1, 2), (2, 2, 4), (3, 2, 4), (3, 3, 5)];
        let sevs = [
            Severity::Sev0,
            Severity::Sev1,
            Severity::Sev2,
            Severity::Sev3,
            Severity::Sev4,
        ];
        for (sev, (impact, urgency, event)) in sevs.into_iter().zip(expect) {
            assert_eq!(m.impact_urgency(sev), (impact, urgency), "{sev:?}");
            assert_eq!(m.event_severity(sev), event, "{sev:?}");
        }
        let custom = m
            .with_incident(Severity::Sev4, 3, 2)
            .with_event(Severity::Sev2, 3);
        assert_eq!(custom.impact_urgency(Severity::Sev4), (3, 2));
        assert_eq!(custom.event_severity(Severity::Sev2), 3);
    }

    #[test]
    fn check_names_the_bad_setting() {
        let base = ServiceNowConfig::new("https://x", Auth::basic("u", "p"));
        let cases: Vec<(ServiceNowConfig, &str)> = vec![
            (
                ServiceNowConfig::new("https://x", Auth::basic("", "p")),
                "auth.username",
            ),
            (base.clone().with_timeout(Duration::ZERO), "timeout"),
            (
                base.clone().with_max_response_bytes(1023),
                "max_response_bytes",
            ),
            (base.clone().with_extra_field("u bad", "v"), "extra_fields"),
            (
                ServiceNowConfig {
                    reopen_state: " ".to_owned(),
                    ..base.clone()
                },
                "reopen_state",
            ),
            (
                ServiceNowConfig {
                    severity_map: SeverityMap::default().with_incident(Severity::Sev0, 0, 1),
                    ..base.clone()
                },
                "severity_map",
            ),
            (
                ServiceNowConfig {
                    cmdb_classes: vec!["a/b".to_owned()],
                    ..base.clone()
                },
                "cmdb",
            ),
        ];
        for (config, needle) in cases {
            let err = config.check().unwrap_err();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
        assert!(base.check().is_ok());
    }
}
