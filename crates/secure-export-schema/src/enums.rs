//! Closed value sets of the essentials block, each with a fallback for values Azure may add.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Implements string (de)serialization for an enum with an `Unknown(String)` fallback.
macro_rules! string_enum {
    ($name:ident, $expecting:literal) => {
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct EnumVisitor;

                impl Visitor<'_> for EnumVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }

                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name::parse(v))
                    }
                }

                deserializer.deserialize_str(EnumVisitor)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self::parse(s))
            }
        }
    };
}

/// Alert severity, `Sev0` (critical) to `Sev4` (verbose).
///
/// Ordered from most to least severe: `Sev0 < Sev1 < ... < Sev4 < Unknown(_)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Critical.
    Sev0,
    /// Error.
    Sev1,
    /// Warning.
    Sev2,
    /// Informational.
    Sev3,
    /// Verbose.
    Sev4,
    /// Any other value, kept as received.
    Unknown(String),
}

impl Severity {
    /// Parses `Sev0`..`Sev4` (ASCII case-insensitive); anything else is `Unknown`.
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "sev0" => Self::Sev0,
            "sev1" => Self::Sev1,
            "sev2" => Self::Sev2,
            "sev3" => Self::Sev3,
            "sev4" => Self::Sev4,
            _ => Self::Unknown(s.to_owned()),
        }
    }

    /// The numeric level (0 = critical), or `None` for `Unknown`.
    pub fn as_u8(&self) -> Option<u8> {
        match self {
            Self::Sev0 => Some(0),
            Self::Sev1 => Some(1),
            Self::Sev2 => Some(2),
            Self::Sev3 => Some(3),
            Self::Sev4 => Some(4),
            Self::Unknown(_) => None,
        }
    }

    /// The severity for a numeric level 0..=4.
    pub fn from_u8(level: u8) -> Option<Self> {
        match level {
            0 => Some(Self::Sev0),
            1 => Some(Self::Sev1),
            2 => Some(Self::Sev2),
            3 => Some(Self::Sev3),
            4 => Some(Self::Sev4),
            _ => None,
        }
    }

    /// The wire form (`"Sev3"`, or the unknown value as received).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sev0 => "Sev0",
            Self::Sev1 => "Sev1",
            Self::Sev2 => "Sev2",
            Self::Sev3 => "Sev3",
            Self::Sev4 => "Sev4",
            Self::Unknown(s) => s,
        }
    }
}

string_enum!(Severity, "a severity string such as \"Sev3\"");

/// Whether the alert fired or resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MonitorCondition {
    /// The condition holds.
    Fired,
    /// The condition no longer holds (stateful rules only).
    Resolved,
    /// Any other value, kept as received.
    Unknown(String),
}

impl MonitorCondition {
    /// Parses `Fired` / `Resolved` (ASCII case-insensitive); anything else is `Unknown`.
    pub fn parse(s: &str) -> Self {
        if s.eq_ignore_ascii_case("fired") {
            Self::Fired
        } else if s.eq_ignore_ascii_case("resolved") {
            Self::Resolved
        } else {
            Self::Unknown(s.to_owned())
        }
    }

    /// The wire form.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Fired => "Fired",
            Self::Resolved => "Resolved",
            Self::Unknown(s) => s,
        }
    }
}

string_enum!(
    MonitorCondition,
    "a monitor condition string such as \"Fired\""
);

/// The kind of signal the rule evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SignalType {
    /// A metric.
    Metric,
    /// A log search.
    Log,
    /// An activity log event (`"Activity Log"` or `"ActivityLog"` on the wire).
    ActivityLog,
    /// Any other value, kept as received.
    Unknown(String),
}

impl SignalType {
    /// Parses a signal type, ignoring ASCII case and spaces; anything else is `Unknown`.
    pub fn parse(s: &str) -> Self {
        let folded: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match folded.as_str() {
            "metric" => Self::Metric,
            "log" => Self::Log,
            "activitylog" => Self::ActivityLog,
            _ => Self::Unknown(s.to_owned()),
        }
    }

    /// The wire form (`"Activity Log"` for [`SignalType::ActivityLog`]).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Metric => "Metric",
            Self::Log => "Log",
            Self::ActivityLog => "Activity Log",
            Self::Unknown(s) => s,
        }
    }
}

string_enum!(SignalType, "a signal type string such as \"Metric\"");

/// The Azure Monitor service that raised the alert; selects the `alertContext` shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MonitoringService {
    /// `Platform`: metric alerts.
    Platform,
    /// `Log Analytics`: log search alerts v1 on a workspace.
    LogAnalytics,
    /// `Application Insights`: log search alerts v1 on a component.
    ApplicationInsights,
    /// `Log Alerts V2`: scheduled query rules (API 2020-05-01 and later).
    LogAlertsV2,
    /// `Simple Log Alert`.
    SimpleLogAlert,
    /// `Activity Log - Administrative`.
    ActivityLogAdministrative,
    /// `Activity Log - Policy`.
    ActivityLogPolicy,
    /// `Activity Log - Autoscale`.
    ActivityLogAutoscale,
    /// `Activity Log - Security`.
    ActivityLogSecurity,
    /// `ServiceHealth`.
    ServiceHealth,
    /// `Resource Health`.
    ResourceHealth,
    /// `SmartDetector`.
    SmartDetector,
    /// `Prometheus`.
    Prometheus,
    /// `CostAlerts`: budgets.
    CostAlerts,
    /// Any other value, kept as received.
    Unknown(String),
}

impl MonitoringService {
    /// Parses a monitoring service name, ignoring ASCII case, spaces, `-`, `–` and `.`.
    pub fn parse(s: &str) -> Self {
        let folded: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match folded.as_str() {
            "platform" => Self::Platform,
            "loganalytics" => Self::LogAnalytics,
            "applicationinsights" => Self::ApplicationInsights,
            "logalertsv2" => Self::LogAlertsV2,
            "simplelogalert" => Self::SimpleLogAlert,
            "activitylogadministrative" => Self::ActivityLogAdministrative,
            "activitylogpolicy" => Self::ActivityLogPolicy,
            "activitylogautoscale" => Self::ActivityLogAutoscale,
            "activitylogsecurity" => Self::ActivityLogSecurity,
            "servicehealth" => Self::ServiceHealth,
            "resourcehealth" => Self::ResourceHealth,
            "smartdetector" => Self::SmartDetector,
            "prometheus" => Self::Prometheus,
            "costalerts" => Self::CostAlerts,
            _ => Self::Unknown(s.to_owned()),
        }
    }

    /// The wire form, as Azure spells it in `essentials.monitoringService`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Platform => "Platform",
            Self::LogAnalytics => "Log Analytics",
            Self::ApplicationInsights => "Application Insights",
            Self::LogAlertsV2 => "Log Alerts V2",
            Self::SimpleLogAlert => "Simple Log Alert",
            Self::ActivityLogAdministrative => "Activity Log - Administrative",
            Self::ActivityLogPolicy => "Activity Log - Policy",
            Self::ActivityLogAutoscale => "Activity Log - Autoscale",
            Self::ActivityLogSecurity => "Activity Log - Security",
            Self::ServiceHealth => "ServiceHealth",
            Self::ResourceHealth => "Resource Health",
            Self::SmartDetector => "SmartDetector",
            Self::Prometheus => "Prometheus",
            Self::CostAlerts => "CostAlerts",
            Self::Unknown(s) => s,
        }
    }
}

string_enum!(
    MonitoringService,
    "a monitoring service string such as \"Platform\""
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_critical_first_and_unknown_last() {
        let mut v = vec![
            Severity::Unknown("x".to_owned()),
            Severity::Sev4,
            Severity::Sev0,
            Severity::Sev2,
        ];
        v.sort();
        assert_eq!(
            v,
            vec![
                Severity::Sev0,
                Severity::Sev2,
                Severity::Sev4,
                Severity::Unknown("x".to_owned())
            ]
        );
        assert_eq!(Severity::parse("sev3").as_u8(), Some(3));
        assert_eq!(Severity::Unknown("9".to_owned()).as_u8(), None);
    }

    #[test]
    fn signal_type_accepts_both_activity_log_spellings() {
        assert_eq!(SignalType::parse("Activity Log"), SignalType::ActivityLog);
        assert_eq!(SignalType::parse("ActivityLog"), SignalType::ActivityLog);
        assert_eq!(
            SignalType::parse("Trace"),
            SignalType::Unknown("Trace".to_owned())
        );
    }

    #[test]
    fn monitoring_service_round_trips_wire_names() {
        for s in [
            "Platform",
            "Log Analytics",
            "Application Insights",
            "Log Alerts V2",
            "Simple Log Alert",
            "Activity Log - Administrative",
            "Activity Log - Policy",
            "Activity Log - Autoscale",
            "Activity Log - Security",
            "ServiceHealth",
            "Resource Health",
            "SmartDetector",
            "Prometheus",
            "CostAlerts",
        ] {
            let parsed = MonitoringService::parse(s);
            assert!(!matches!(parsed, MonitoringService::Unknown(_)), "{s}");
            assert_eq!(parsed.as_str(), s);
        }
        assert_eq!(
            MonitoringService::parse("ResourceHealth"),
            MonitoringService::ResourceHealth
        );
        assert_eq!(
            MonitoringService::parse("Activity Log – Policy"),
            MonitoringService::ActivityLogPolicy
        );
        assert_eq!(
            MonitoringService::parse("Brand New"),
            MonitoringService::Unknown("Brand New".to_owned())
        );
    }

    #[test]
    fn monitor_condition_rejects_non_strings() {
        assert!(serde_json::from_str::<MonitorCondition>("3").is_err());
        assert_eq!(
            serde_json::from_str::<MonitorCondition>("\"Resolved\"").unwrap(),
            MonitorCondition::Resolved
        );
    }
}
