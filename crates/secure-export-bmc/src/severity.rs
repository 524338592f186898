//! BMC `Impact` / `Urgency` values and the Azure severity mapping.

use std::fmt;
use std::str::FromStr;

use secure_export_itsm::Severity;
use serde::{Deserialize, Serialize};

/// The BMC `Impact` field (exact strings as BMC Helix ITSM spells them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Impact {
    /// `1-Extensive/Widespread`.
    #[serde(rename = "1-Extensive/Widespread")]
    Extensive,
    /// `2-Significant/Large`.
    #[serde(rename = "2-Significant/Large")]
    Significant,
    /// `3-Moderate/Limited`.
    #[serde(rename = "3-Moderate/Limited")]
    Moderate,
    /// `4-Minor/Localized`.
    #[serde(rename = "4-Minor/Localized")]
    Minor,
}

impl Impact {
    /// All values, most severe first.
    pub const ALL: [Self; 4] = [
        Self::Extensive,
        Self::Significant,
        Self::Moderate,
        Self::Minor,
    ];

    /// The exact string BMC expects.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Extensive => "1-Extensive/Widespread",
            Self::Significant => "2-Significant/Large",
            Self::Moderate => "3-Moderate/Limited",
            Self::Minor => "4-Minor/Localized",
        }
    }
}

/// The BMC `Urgency` field (exact strings as BMC Helix ITSM spells them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Urgency {
    /// `1-Critical`.
    #[serde(rename = "1-Critical")]
    Critical,
    /// `2-High`.
    #[serde(rename = "2-High")]
    High,
    /// `3-Medium`.
    #[serde(rename = "3-Medium")]
    Medium,
    /// `4-Low`.
    #[serde(rename = "4-Low")]
    Low,
}

impl Urgency {
    /// All values, most urgent first.
    pub const ALL: [Self; 4] = [Self::Critical, Self::High, Self::Medium, Self::Low];

    /// The exact string BMC expects.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "1-Critical",
            Self::High => "2-High",
            Self::Medium => "3-Medium",
            Self::Low => "4-Low",
        }
    }
}

impl fmt::Display for Impact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Urgency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the BMC enum values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    field: &'static str,
    value: String,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a valid BMC {} value",
            self.value, self.field
        )
    }
}

impl std::error::Error for UnknownValue {}

/// Parses the exact BMC string (`"2-Significant/Large"`) or just its leading digit (`"2"`).
fn parse_enum<T: Copy>(
    field: &'static str,
    s: &str,
    all: &[T],
    as_str: impl Fn(T) -> &'static str,
) -> Result<T, UnknownValue> {
    let s = s.trim();
    all.iter()
        .copied()
        .find(|v| {
            let full = as_str(*v);
            full.eq_ignore_ascii_case(s) || full.split('-').next() == Some(s)
        })
        .ok_or_else(|| UnknownValue {
            field,
            value: s.to_owned(),
        })
}

impl FromStr for Impact {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_enum("Impact", s, &Self::ALL, Self::as_str)
    }
}

impl FromStr for Urgency {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_enum("Urgency", s, &Self::ALL, Self::as_str)
    }
}

/// Maps Azure alert severities to BMC `Impact` and `Urgency` (BMC computes `Priority` itself).
///
/// The default follows the workspace's suggested table:
///
/// | Azure | Impact | Urgency |
/// |---|---|---|
/// | Sev0 | 1-Extensive/Widespread | 1-Critical |
/// | Sev1 | 2-Significant/Large | 2-High |
/// | Sev2 | 3-Moderate/Limited | 3-Medium |
/// | Sev3 | 3-Moderate/Limited | 4-Low |
/// | Sev4 | 4-Minor/Localized | 4-Low |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityMap {
    entries: [(Impact, Urgency); 5],
}

impl Default for SeverityMap {
    fn default() -> Self {
        Self {
            entries: [
                (Impact::Extensive, Urgency::Critical),
                (Impact::Significant, Urgency::High),
                (Impact::Moderate, Urgency::Medium),
                (Impact::Moderate, Urgency::Low),
                (Impact::Minor, Urgency::Low),
            ],
        }
    }
}

impl SeverityMap {
    /// The impact and urgency for a severity.
    #[must_use]
    pub fn get(&self, severity: Severity) -> (Impact, Urgency) {
        match severity {
            Severity::Sev0 => self.entries[0],
            Severity::Sev1 => self.entries[1],
            Severity::Sev2 => self.entries[2],
            Severity::Sev3 => self.entries[3],
            Severity::Sev4 => self.entries[4],
        }
    }

    /// Returns the map with `severity` mapped to `impact` and `urgency`.
    #[must_use]
    pub fn with(mut self, severity: Severity, impact: Impact, urgency: Urgency) -> Self {
        let slot = match severity {
            Severity::Sev0 => &mut self.entries[0],
            Severity::Sev1 => &mut self.entries[1],
            Severity::Sev2 => &mut self.entries[2],
            Severity::Sev3 => &mut self.entries[3],
            Severity::Sev4 => &mut self.entries[4],
        };
        *slot = (impact, urgency);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_matches_the_reference() {
        let map = SeverityMap::default();
        let table = [
            (Severity::Sev0, "1-Extensive/Widespread", "1-Critical"),
            (Severity::Sev1, "2-Significant/Large", "2-High"),
            (Severity::Sev2, "3-Moderate/Limited", "3-Medium"),
            (Severity::Sev3, "3-Moderate/Limited", "4-Low"),
            (Severity::Sev4, "4-Minor/Localized", "4-Low"),
        ];
        for (sev, impact, urgency) in table {
            let (i, u) = map.get(sev);
            assert_eq!((i.as_str(), u.as_str()), (impact, urgency), "{sev:?}");
        }
    }

    #[test]
    fn with_overrides_one_row() {
        let map = SeverityMap::default().with(Severity::Sev4, Impact::Minor, Urgency::Medium);
        assert_eq!(map.get(Severity::Sev4), (Impact::Minor, Urgency::Medium));
        assert_eq!(map.get(Severity::Sev3), (Impact::Moderate, Urgency::Low));
    }

    #[test]
    fn parses_exact_strings_and_digits() {
        assert_eq!(
            "2-Significant/Large".parse::<Impact>(),
            Ok(Impact::Significant)
        );
        assert_eq!(" 4 ".parse::<Impact>(), Ok(Impact::Minor));
        assert_eq!("1-critical".parse::<Urgency>(), Ok(Urgency::Critical));
        assert_eq!("3".parse::<Urgency>(), Ok(Urgency::Medium));
        let err = "5-Huge".parse::<Impact>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"5-Huge\" is not a valid BMC Impact value"
        );
        assert!("".parse::<Urgency>().is_err());
    }

    #[test]
    fn serde_uses_bmc_strings() {
        let json = serde_json::to_string(&(Impact::Moderate, Urgency::High)).unwrap();
        assert_eq!(json, r#"["3-Moderate/Limited","2-High"]"#);
        let back: (Impact, Urgency) = serde_json::from_str(&json).unwrap();
        assert_eq!(back, (Impact::Moderate, Urgency::High));
    }
}
