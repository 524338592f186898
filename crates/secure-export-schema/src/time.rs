//! Tolerant timestamp parsing: RFC 3339 with 0 to 9 fractional digits, `Z` or an offset.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// Parses an Azure timestamp into UTC.
///
/// Accepts `2019-03-22T13:58:24Z`, any number of fractional digits up to 9
/// (`.04`, `.3713213`), `Z`/`z` or a numeric offset (`+00:00`), and a timestamp
/// without offset, which is taken as UTC. Returns `None` for anything else.
///
/// ```
/// use secure_export_schema::parse_timestamp;
/// let t = parse_timestamp("2019-03-22T13:58:24.3713213Z").unwrap();
/// assert_eq!(t.timestamp_subsec_nanos(), 371_321_300);
/// assert_eq!(parse_timestamp("2019-06-24T15:42:54.074+00:00").unwrap().timestamp(), 1_561_390_974);
/// assert!(parse_timestamp("3/22/2019 1:36:33 PM").is_none());
/// ```
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

/// Deserialization wrapper: `null` gives `None`, a parseable string gives `Some`, anything
/// else is an error naming the expected format.
#[derive(Debug)]
pub(crate) struct OptTime(Option<DateTime<Utc>>);

impl From<OptTime> for Option<DateTime<Utc>> {
    fn from(value: OptTime) -> Self {
        value.0
    }
}

impl<'de> Deserialize<'de> for OptTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimeVisitor;

        impl<'de> Visitor<'de> for TimeVisitor {
            type Value = OptTime;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ISO 8601 timestamp such as \"2019-03-22T13:58:24.3713213Z\"")
            }

            fn visit_unit<E: de::Error>(self) -> Result<OptTime, E> {
                Ok(OptTime(None))
            }

            fn visit_none<E: de::Error>(self) -> Result<OptTime, E> {
                Ok(OptTime(None))
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<OptTime, D::Error> {
                d.deserialize_any(self)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<OptTime, E> {
                match parse_timestamp(v) {
                    Some(t) => Ok(OptTime(Some(t))),
                    None => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }

        deserializer.deserialize_option(TimeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_zero_to_seven_fraction_digits() {
        let expected_secs = 1_553_263_104; // 2019-03-22T13:58:24Z
        for (s, nanos) in [
            ("2019-03-22T13:58:24Z", 0),
            ("2019-03-22T13:58:24.3Z", 300_000_000),
            ("2019-03-22T13:58:24.04Z", 40_000_000),
            ("2019-03-22T13:58:24.371Z", 371_000_000),
            ("2019-03-22T13:58:24.99645Z", 996_450_000),
            ("2019-03-22T13:58:24.3713213Z", 371_321_300),
            ("2019-03-22T13:58:24.3713213+00:00", 371_321_300),
            ("2019-03-22T13:58:24", 0),
        ] {
            let t = parse_timestamp(s).unwrap();
            assert_eq!(t.timestamp(), expected_secs, "{s}");
            assert_eq!(t.timestamp_subsec_nanos(), nanos, "{s}");
        }
    }

    #[test]
    fn converts_offsets_to_utc() {
        let t = parse_timestamp("2019-03-22T15:58:24+02:00").unwrap();
        assert_eq!(t.timestamp(), 1_553_263_104);
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "yesterday",
            "2019-13-22T13:58:24Z",
            "3/22/2019 1:36:33 PM",
            "2019-03-22",
        ] {
            assert!(parse_timestamp(s).is_none(), "{s}");
        }
    }
}
