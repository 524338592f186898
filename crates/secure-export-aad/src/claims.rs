//! Typed, strictly checked claims. Every claim we act on is type-checked here; other claims are
//! ignored. Duplicates were already refused by the parser.

use serde_json::Value;

use crate::error::{VerifyError, quote};
use crate::jose::{StrictObject, json_type};
use crate::policy::{TokenVersion, is_guid};

/// Latest NumericDate accepted (9999-12-31T23:59:59Z); anything later is nonsense.
const MAX_NUMERIC_DATE: u64 = 253_402_300_799;
/// Most `aud` values or `roles` accepted.
const MAX_LIST: usize = 256;

/// The claims the verifier uses.
#[derive(Debug)]
pub(crate) struct Claims {
    pub(crate) tid: String,
    pub(crate) ver: TokenVersion,
    pub(crate) iss: String,
    pub(crate) aud: Vec<String>,
    pub(crate) exp: i64,
    pub(crate) nbf: i64,
    pub(crate) iat: i64,
    /// `appid` (v1) or `azp` (v2), per `ver`.
    pub(crate) caller: Option<String>,
    pub(crate) roles: Vec<String>,
    pub(crate) oid: Option<String>,
    pub(crate) idtyp: Option<String>,
    pub(crate) has_scp: bool,
    pub(crate) has_cnf: bool,
}

fn invalid(claim: &'static str, reason: impl Into<String>) -> VerifyError {
    VerifyError::InvalidClaim {
        claim,
        reason: reason.into(),
    }
}

fn string(obj: &StrictObject, claim: &'static str) -> Result<Option<String>, VerifyError> {
    match obj.get(claim) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(
            claim,
            format!("expected a string, found {}", json_type(other)),
        )),
    }
}

fn required_string(obj: &StrictObject, claim: &'static str) -> Result<String, VerifyError> {
    string(obj, claim)?.ok_or(VerifyError::MissingClaim(claim))
}

fn numeric_date(obj: &StrictObject, claim: &'static str) -> Result<i64, VerifyError> {
    let v = obj.get(claim).ok_or(VerifyError::MissingClaim(claim))?;
    let n = v
        .as_u64()
        .filter(|n| *n <= MAX_NUMERIC_DATE)
        .ok_or_else(|| {
            invalid(
                claim,
                format!("expected an integer NumericDate, found {}", describe(v)),
            )
        })?;
    i64::try_from(n).map_err(|_| invalid(claim, "out of range"))
}

fn describe(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("number {}", quote(&n.to_string())),
        other => json_type(other).to_owned(),
    }
}

fn string_list(
    v: &Value,
    claim: &'static str,
    allow_single: bool,
) -> Result<Vec<String>, VerifyError> {
    match v {
        Value::String(s) if allow_single => Ok(vec![s.clone()]),
        Value::Array(items) if items.len() <= MAX_LIST => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => Err(invalid(
                    claim,
                    format!("array element is {}, not a string", json_type(other)),
                )),
            })
            .collect(),
        Value::Array(_) => Err(invalid(claim, format!("more than {MAX_LIST} values"))),
        other => Err(invalid(
            claim,
            format!(
                "expected {}, found {}",
                if allow_single {
                    "a string or an array of strings"
                } else {
                    "an array of strings"
                },
                json_type(other)
            ),
        )),
    }
}

impl Claims {
    pub(crate) fn extract(obj: &StrictObject) -> Result<Self, VerifyError> {
        let ver = match required_string(obj, "ver")?.as_str() {
            "1.0" => TokenVersion::V1,
            "2.0" => TokenVersion::V2,
            other => return Err(VerifyError::BadVersion(quote(other))),
        };
        let tid = required_string(obj, "tid")?;
        if !is_guid(&tid) {
            return Err(invalid("tid", format!("{} is not a GUID", quote(&tid))));
        }
        let iss = required_string(obj, "iss")?;
        let aud = string_list(
            obj.get("aud").ok_or(VerifyError::MissingClaim("aud"))?,
            "aud",
            true,
        )?;
        let exp = numeric_date(obj, "exp")?;
        let nbf = numeric_date(obj, "nbf")?;
        let iat = numeric_date(obj, "iat")?;
        // Both are type-checked; the version decides which one names the caller.
        let appid = string(obj, "appid")?;
        let azp = string(obj, "azp")?;
        let caller = match ver {
            TokenVersion::V1 => appid,
            TokenVersion::V2 => azp,
        };
        let roles = match obj.get("roles") {
            None => Vec::new(),
            Some(v) => string_list(v, "roles", false)?,
        };
        Ok(Self {
            tid,
            ver,
            iss,
            aud,
            exp,
            nbf,
            iat,
            caller,
            roles,
            oid: string(obj, "oid")?,
            idtyp: string(obj, "idtyp")?,
            has_scp: obj.get("scp").is_some(),
            has_cnf: obj.get("cnf").is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::parse_object;

    fn base() -> serde_json::Map<String, Value> {
        let v = serde_json::json!({
            "ver": "2.0", "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "iss": "i", "aud": "a",
            "exp": 2000, "nbf": 1000, "iat": 1000, "azp": "x", "roles": ["r"]
        });
        v.as_object().cloned().unwrap()
    }

    fn extract(m: serde_json::Map<String, Value>) -> Result<Claims, VerifyError> {
        Claims::extract(&parse_object(Value::Object(m).to_string().as_bytes(), "payload").unwrap())
    }

    #[test]
    fn valid_claims_extract() {
        let c = extract(base()).unwrap();
        assert_eq!(c.caller.as_deref(), Some("x"));
        assert_eq!(c.aud, vec!["a"]);
    }

    #[test]
    fn wrong_types_are_rejected() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("exp", Value::from("2000"), "invalid_claim"),
            ("exp", Value::Null, "invalid_claim"),
            ("exp", Value::from(-1), "invalid_claim"),
            ("exp", Value::from(1e300), "invalid_claim"),
            ("exp", Value::from(true), "invalid_claim"),
            ("exp", Value::from(u64::MAX), "invalid_claim"),
            ("nbf", Value::from("1000"), "invalid_claim"),
            ("aud", Value::from(5), "invalid_claim"),
            ("aud", serde_json::json!({"a": 1}), "invalid_claim"),
            ("roles", Value::from("r"), "invalid_claim"),
            ("tid", Value::from("not-a-guid"), "invalid_claim"),
            ("ver", Value::from("3.0"), "bad_version"),
            ("azp", Value::from(1), "invalid_claim"),
        ];
        for (claim, value, code) in cases {
            let mut m = base();
            m.insert(claim.to_owned(), value.clone());
            assert_eq!(extract(m).unwrap_err().code(), code, "{claim} = {value}");
        }
    }

    #[test]
    fn missing_claims_are_rejected() {
        for claim in ["exp", "nbf", "iat", "iss", "aud", "tid", "ver"] {
            let mut m = base();
            m.remove(claim);
            assert_eq!(extract(m).unwrap_err().code(), "missing_claim", "{claim}");
        }
    }
}
