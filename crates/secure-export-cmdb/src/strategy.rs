//! The binding strategies and their configuration-file spelling.

use std::fmt;
use std::str::FromStr;

/// One way to resolve an alert target to a configuration item. A [`Binder`](crate::Binder)
/// tries its strategies in the configured order and stops at the first that finds a CI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// Look the target's ARM resource id up in the CMDB (ServiceNow `object_id`, BMC `CloudID`).
    ResourceId,
    /// Look the target's resource name up in the CMDB; a name that matches several CIs is
    /// ambiguous and does not bind.
    Name,
    /// Match the target's resource id against the configured static map (pattern -> CI).
    StaticMap,
    /// When no target of the alert bound, bind the alert to the connection's fallback CI.
    /// Must be the last strategy.
    Fallback,
}

impl Strategy {
    /// The configuration spelling: `resource_id`, `name`, `static_map` or `fallback`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResourceId => "resource_id",
            Self::Name => "name",
            Self::StaticMap => "static_map",
            Self::Fallback => "fallback",
        }
    }

    /// Parses a comma-separated strategy list such as `"resource_id, name, fallback"`.
    /// `"none"` (or an empty string) is the empty list, which disables binding.
    ///
    /// ```
    /// use secure_export_cmdb::Strategy;
    ///
    /// let list = Strategy::parse_list("resource_id, name").unwrap();
    /// assert_eq!(list, vec![Strategy::ResourceId, Strategy::Name]);
    /// assert!(Strategy::parse_list("none").unwrap().is_empty());
    /// assert!(Strategy::parse_list("resource_id,by_magic").is_err());
    /// ```
    pub fn parse_list(list: &str) -> Result<Vec<Self>, ParseStrategyError> {
        let trimmed = list.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("none") {
            return Ok(Vec::new());
        }
        trimmed.split(',').map(str::parse).collect()
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = ParseStrategyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        [
            Self::ResourceId,
            Self::Name,
            Self::StaticMap,
            Self::Fallback,
        ]
        .into_iter()
        .find(|strategy| strategy.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| ParseStrategyError {
            input: s.to_owned(),
        })
    }
}

/// A strategy name that is not one of `resource_id`, `name`, `static_map`, `fallback`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown cmdb binding strategy {input:?}: expected one of resource_id, name, static_map, fallback (or none)"
)]
pub struct ParseStrategyError {
    input: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling_case_insensitively() {
        for strategy in [
            Strategy::ResourceId,
            Strategy::Name,
            Strategy::StaticMap,
            Strategy::Fallback,
        ] {
            assert_eq!(strategy.as_str().parse::<Strategy>(), Ok(strategy));
            assert_eq!(
                strategy.as_str().to_uppercase().parse::<Strategy>(),
                Ok(strategy)
            );
        }
    }

    #[test]
    fn unknown_name_is_reported() {
        let err = Strategy::parse_list("name, arm").unwrap_err();
        assert!(err.to_string().contains("\"arm\""), "{err}");
    }
}
