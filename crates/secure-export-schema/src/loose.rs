//! Values Azure sends as a number in one payload and as a string in another.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// A scalar that arrives as a JSON string or a JSON number (for example the service-health
/// `channels`, `eventSource` and `level`, or a metric `threshold`). Serializes back in the
/// form it arrived in.
#[derive(Debug, Clone, PartialEq)]
pub enum StringOrNumber {
    /// A JSON string.
    String(String),
    /// A JSON number.
    Number(serde_json::Number),
}

impl StringOrNumber {
    /// The string value, if it arrived as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            Self::Number(_) => None,
        }
    }

    /// The numeric value: the number itself, or a string that parses as a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::String(s) => s.trim().parse().ok(),
            Self::Number(n) => n.as_f64(),
        }
    }
}

impl fmt::Display for StringOrNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for StringOrNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::String(s) => serializer.serialize_str(s),
            Self::Number(n) => n.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for StringOrNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LooseVisitor;

        impl Visitor<'_> for LooseVisitor {
            type Value = StringOrNumber;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber::String(v.to_owned()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber::String(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber::Number(v.into()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StringOrNumber, E> {
                Ok(StringOrNumber::Number(v.into()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<StringOrNumber, E> {
                serde_json::Number::from_f64(v)
                    .map(StringOrNumber::Number)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }

        deserializer.deserialize_any(LooseVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_form_it_arrived_in() {
        for input in ["1", "\"Informational\"", "2.5", "-3"] {
            let v: StringOrNumber = serde_json::from_str(input).unwrap();
            assert_eq!(serde_json::to_string(&v).unwrap(), input);
        }
        let v: StringOrNumber = serde_json::from_str("\"25\"").unwrap();
        assert_eq!(v.as_f64(), Some(25.0));
        assert!(serde_json::from_str::<StringOrNumber>("[1]").is_err());
    }
}
