//! Human-friendly durations in the configuration file: `"500ms"`, `"30s"`, `"15m"`, `"24h"`,
//! `"7d"`, or a bare integer number of seconds.

use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// Longest duration accepted (10 years): larger values are surely mistakes, and adding them to
/// an `Instant` or `SystemTime` would overflow and panic at run time.
pub(crate) const MAX: Duration = Duration::from_secs(10 * 365 * 86_400);

fn bounded(d: Duration, text: &dyn std::fmt::Display) -> Result<Duration, String> {
    if d > MAX {
        Err(format!(
            "invalid duration {text}: longer than the 10 year maximum"
        ))
    } else {
        Ok(d)
    }
}

/// Parses `"500ms"`, `"30s"`, `"15m"`, `"24h"`, `"7d"` (one number, one unit).
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "invalid duration {text:?}: expected a number followed by ms, s, m, h or d (e.g. \"30s\")"
        ));
    }
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
    let per_unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(format!(
                "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m, h or d)"
            ));
        }
    };
    let d = n
        .checked_mul(per_unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("invalid duration {text:?}: too large"))?;
    bounded(d, &format_args!("{text:?}"))
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a duration such as \"30s\", \"15m\", \"24h\" or a number of seconds")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        bounded(Duration::from_secs(v), &v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        let secs = u64::try_from(v).map_err(|_| E::custom("a duration cannot be negative"))?;
        self.visit_u64(secs)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }
}

/// `deserialize_with` for a required [`Duration`].
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// `deserialize_with` for an optional [`Duration`].
pub(crate) fn deserialize_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationVisitor).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse("7"), Ok(Duration::from_secs(7)));
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        assert!(parse("h").unwrap_err().contains("expected a number"));
        assert!(parse("3 weeks").unwrap_err().contains("unknown unit"));
        assert!(
            parse("99999999999999999999s")
                .unwrap_err()
                .contains("too large")
        );
        assert!(parse("3651d").unwrap_err().contains("10 year maximum"));
        assert_eq!(parse("3650d"), Ok(MAX));
    }
}
