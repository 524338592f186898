//! Wire details of the AR REST API: URL encoding, qualification quoting, the AR error body,
//! and the `Location` header.

use std::time::SystemTime;

use secure_export_itsm::{ItsmError, parse_retry_after};
use serde::Deserialize;

use crate::config::BACKEND;

/// Percent-encodes everything except RFC 3986 unreserved characters (and `extra_safe`).
fn encode(s: &str, extra_safe: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || extra_safe.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encodes one path segment (`HPD:Help Desk` -> `HPD:Help%20Desk`, `a|b` -> `a%7Cb`).
pub(crate) fn encode_segment(s: &str) -> String {
    encode(s, b":")
}

/// Encodes a query string from pairs; spaces become `%20` (never `+`).
pub(crate) fn encode_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k, &[]), encode(v, &[])))
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes `%XX` escapes (for the entry id in a `Location` header). `None` if the result is
/// not UTF-8 or an escape is malformed.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An AR qualification string literal: double quotes, inner `"` doubled.
pub(crate) fn quote_value(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// An AR qualification field reference: single quotes, inner `'` doubled.
pub(crate) fn quote_field(name: &str) -> String {
    format!("'{}'", name.replace('\'', "''"))
}

/// `'field'="value"`.
pub(crate) fn equals(field: &str, value: &str) -> String {
    format!("{}={}", quote_field(field), quote_value(value))
}

/// `'field' LIKE "<pattern>"` with [`like_pattern`]`(value)`: used by the CMDB lookup for
/// case-insensitive matching where the server's `=` is case-sensitive. Callers re-check the
/// results for exact equality and send a row limit.
pub(crate) fn like(field: &str, value: &str) -> String {
    format!(
        "{} LIKE {}",
        quote_field(field),
        quote_value(&like_pattern(value))
    )
}

/// A `LIKE` pattern for `value` in which no character of `value` can act as a multi-character
/// wildcard or a character set.
///
/// AR System's `LIKE` wildcards are `%` (any run), `_` (one character) and `[...]` / `[^...]`
/// (a set or range, SQL Server); the only documented way to match them literally, enclosing
/// them in brackets (`[%]`), works on SQL Server and Sybase only: Oracle has none, and
/// PostgreSQL reads `[` literally and `\` as its escape character. No escape is portable, so
/// each `%`, `[`, `]` and `\` becomes `_` and `_` stays `_`: one arbitrary character in place
/// of one character. The pattern then matches `value` (ignoring case, as intended) and
/// otherwise only strings of exactly the same length that agree on every other character, never
/// "everything"; the exact re-check drops those. Values without these characters are unchanged.
pub(crate) fn like_pattern(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if matches!(c, '%' | '[' | ']' | '\\') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The `fields` parameter: `values(A,B)`.
pub(crate) fn values_param(fields: &[&str]) -> String {
    format!("values({})", fields.join(","))
}

/// Extracts the entry id from a create `Location` header, checking that it points at `form`.
///
/// Only the id is used: the connector never follows the header to another host with its token.
pub(crate) fn entry_id_from_location(location: &str, form: &str) -> Option<String> {
    let path = match url::Url::parse(location) {
        Ok(url) => url.path().to_owned(),
        Err(_) => location.split(['?', '#']).next()?.to_owned(),
    };
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let id = percent_decode(segments.next()?)?;
    let form_seg = percent_decode(segments.next()?)?;
    let entry = segments.next()?;
    (entry == "entry" && form_seg == form && is_entry_id(&id)).then_some(id)
}

/// Whether `id` looks like an AR entry id (letters, digits, `-`, `_`; at most 64 characters).
pub(crate) fn is_entry_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// One element of the AR error array.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArMessage {
    message_type: Option<String>,
    message_text: Option<String>,
    message_appended_text: Option<String>,
    message_number: Option<serde_json::Value>,
}

/// The other error shape (HTTPS-only refusal): `{"message":..,"code":..}`.
#[derive(Debug, Deserialize)]
struct PlainError {
    message: String,
}

/// A parsed error body.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ErrorBody {
    pub(crate) message: Option<String>,
    pub(crate) detail: Option<String>,
    pub(crate) code: Option<String>,
}

impl ErrorBody {
    /// AR error 623 ("Authentication failed"): the token is not (or no longer) accepted.
    pub(crate) fn is_auth_failure(&self) -> bool {
        self.code.as_deref() == Some("623")
    }
}

/// Parses an AR error body; picks the first ERROR/FATAL message (else the first message).
pub(crate) fn parse_error_body(body: &[u8]) -> ErrorBody {
    if let Ok(messages) = serde_json::from_slice::<Vec<ArMessage>>(body) {
        let chosen = messages
            .iter()
            .find(|m| {
                m.message_type
                    .as_deref()
                    .is_some_and(|t| matches!(t, "ERROR" | "FATAL" | "BAD STATUS"))
            })
            .or_else(|| messages.first());
        if let Some(m) = chosen {
            return ErrorBody {
                message: m.message_text.clone().filter(|s| !s.is_empty()),
                detail: m.message_appended_text.clone().filter(|s| !s.is_empty()),
                code: m.message_number.as_ref().and_then(|n| match n {
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                }),
            };
        }
        return ErrorBody::default();
    }
    if let Ok(plain) = serde_json::from_slice::<PlainError>(body) {
        return ErrorBody {
            message: Some(plain.message),
            ..ErrorBody::default()
        };
    }
    let text = snippet(body);
    ErrorBody {
        message: (!text.is_empty()).then_some(text),
        ..ErrorBody::default()
    }
}

/// The start of a non-JSON body, single-line, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out.trim().to_owned()
}

/// Builds `ItsmError::Http` from a non-2xx answer.
pub(crate) fn http_error(status: u16, retry_after: Option<&str>, parsed: ErrorBody) -> ItsmError {
    ItsmError::Http {
        backend: BACKEND,
        status,
        message: parsed
            .message
            .unwrap_or_else(|| format!("HTTP {status} with an empty body")),
        detail: parsed.detail,
        code: parsed.code,
        retry_after: retry_after.and_then(|v| parse_retry_after(v, SystemTime::now())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn segments_and_queries_are_strictly_encoded() {
        assert_eq!(encode_segment("HPD:Help Desk"), "HPD:Help%20Desk");
        assert_eq!(encode_segment("INC1|INC1"), "INC1%7CINC1");
        assert_eq!(encode_segment("../x"), "..%2Fx");
        assert_eq!(
            encode_query(&[("fields", "values(Incident Number,Request ID)")]),
            "fields=values%28Incident%20Number%2CRequest%20ID%29"
        );
        assert_eq!(encode_query(&[("q", "a&b=c+d")]), "q=a%26b%3Dc%2Bd");
    }

    #[test]
    fn qualification_quoting_neutralizes_hostile_values() {
        assert_eq!(
            equals("Vendor Ticket Number", "abc"),
            "'Vendor Ticket Number'=\"abc\""
        );
        let hostile = "x\" OR 'Status' != \"";
        assert_eq!(quote_value(hostile), "\"x\"\" OR 'Status' != \"\"\"");
        assert_eq!(quote_field("it's"), "'it''s'");
        assert_eq!(quote_value(""), "\"\"");
        assert_eq!(quote_value("$NULL$"), "\"$NULL$\"");
    }

    #[test]
    fn like_values_cannot_widen_the_match() {
        assert_eq!(like_pattern("test-VM"), "test-VM");
        assert_eq!(like_pattern("%"), "_");
        assert_eq!(like_pattern("a%b_c[d-f]g[^h]\\"), "a_b_c_d-f_g_^h__");
        assert_eq!(
            like("Name", "%\" OR 'Name' LIKE \"%"),
            "'Name' LIKE \"_\"\" OR 'Name' LIKE \"\"_\""
        );
        assert_eq!(
            like("CloudID", "/subscriptions/s/resourceGroups/my_rg/x"),
            "'CloudID' LIKE \"/subscriptions/s/resourceGroups/my_rg/x\""
        );
        // Every character of the pattern is either the value's own or a single `_`.
        for value in ["%%%", "[a-z]%", "100%_x", "\\%", "ünï%cødé"] {
            let pattern = like_pattern(value);
            assert_eq!(pattern.chars().count(), value.chars().count(), "{value}");
            assert!(!pattern.contains(['%', '[', ']', '\\']), "{pattern}");
        }
    }

    /// Reads one AR string literal from the start of `q` (`""` is a literal quote); returns
    /// the value and the rest.
    fn read_literal(q: &str) -> Option<(String, &str)> {
        let mut chars = q.strip_prefix('"')?.char_indices().peekable();
        let mut value = String::new();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if chars.peek().map(|(_, c)| *c) == Some('"') {
                    chars.next();
                    value.push('"');
                } else {
                    return Some((value, &q[i + 2..]));
                }
            } else {
                value.push(c);
            }
        }
        None
    }

    #[test]
    fn every_short_hostile_value_reads_back_as_one_literal() {
        let alphabet = ['"', '\'', ' ', 'A', '%', '$', '\\'];
        let mut count = 0;
        for len in 0..=4u32 {
            for n in 0..alphabet.len().pow(len) {
                let mut rest = n;
                let value: String = (0..len)
                    .map(|_| {
                        let c = alphabet[rest % alphabet.len()];
                        rest /= alphabet.len();
                        c
                    })
                    .collect();
                let qual = format!("{} AND 'Status' < \"Resolved\"", quote_value(&value));
                let (read, tail) = read_literal(&qual).unwrap();
                assert_eq!(read, value);
                assert_eq!(tail, " AND 'Status' < \"Resolved\"");
                count += 1;
            }
        }
        assert_eq!(count, 2801);
    }

    #[test]
    fn location_gives_the_id_only_for_the_right_form() {
        let form = "HPD:IncidentInterface_Create";
        let loc = "https://h/api/arsys/v1/entry/HPD:IncidentInterface_Create/000000000000101";
        assert_eq!(
            entry_id_from_location(loc, form).as_deref(),
            Some("000000000000101")
        );
        let enc = "/api/arsys/v1/entry/HPD%3AIncidentInterface_Create/AB12";
        assert_eq!(entry_id_from_location(enc, form).as_deref(), Some("AB12"));
        assert_eq!(
            entry_id_from_location("https://h/api/arsys/v1/entry/Other/AB12", form),
            None
        );
        assert_eq!(
            entry_id_from_location("https://h/entry/x/..%2F", form),
            None
        );
        assert_eq!(entry_id_from_location("", form), None);
        assert_eq!(entry_id_from_location("%zz", form), None);
    }

    #[test]
    fn entry_id_shape() {
        assert!(is_entry_id("INC000000000110"));
        assert!(!is_entry_id(""));
        assert!(!is_entry_id("a|b"));
        assert!(!is_entry_id(".."));
        assert!(!is_entry_id(&"a".repeat(65)));
    }

    #[test]
    fn parses_the_ar_error_array() {
        let body = br#"[{"messageType":"WARNING","messageText":"w","messageNumber":1},
            {"messageType":"ERROR","messageText":"Field does not exist on current form",
             "messageAppendedText":"HPD:Help Desk : Foo","messageNumber":314}]"#;
        let e = parse_error_body(body);
        assert_eq!(
            e.message.as_deref(),
            Some("Field does not exist on current form")
        );
        assert_eq!(e.detail.as_deref(), Some("HPD:Help Desk : Foo"));
        assert_eq!(e.code.as_deref(), Some("314"));
        assert!(!e.is_auth_failure());
        let auth = parse_error_body(
            br#"[{"messageType":"ERROR","messageText":"Authentication failed","messageNumber":623}]"#,
        );
        assert!(auth.is_auth_failure());
    }

    #[test]
    fn parses_other_bodies() {
        let e = parse_error_body(br#"{"message":"Access forbidden","code":403,"transient":false}"#);
        assert_eq!(e.message.as_deref(), Some("Access forbidden"));
        let e = parse_error_body(b"<html>\n<body>Bad gateway</body></html>");
        assert_eq!(
            e.message.as_deref(),
            Some("<html> <body>Bad gateway</body></html>")
        );
        assert_eq!(parse_error_body(b""), ErrorBody::default());
        assert_eq!(parse_error_body(b"[]"), ErrorBody::default());
        let long = "x".repeat(500);
        assert_eq!(snippet(long.as_bytes()).chars().count(), 201);
    }

    #[test]
    fn http_error_keeps_number_and_retry_after() {
        let err = http_error(
            429,
            Some("7"),
            ErrorBody {
                message: Some("slow down".into()),
                detail: None,
                code: Some("9".into()),
            },
        );
        match err {
            ItsmError::Http {
                status,
                code,
                retry_after,
                message,
                ..
            } => {
                assert_eq!(status, 429);
                assert_eq!(code.as_deref(), Some("9"));
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
                assert_eq!(message, "slow down");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            http_error(500, None, ErrorBody::default()).to_string(),
            "bmc answered HTTP 500: HTTP 500 with an empty body"
        );
    }
}
