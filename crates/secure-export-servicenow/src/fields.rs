//! Field values: lengths, correlation keys, and reading string-valued records.

use secure_export_itsm::ItsmError;
use serde_json::Value;

use crate::errors::BACKEND;

/// `task.short_description` length.
pub(crate) const SHORT_DESCRIPTION_MAX: usize = 160;
/// `task.description`, `close_notes`, `em_event.description` length.
pub(crate) const LONG_TEXT_MAX: usize = 4000;
/// `task.correlation_id` and `correlation_display` length.
pub(crate) const CORRELATION_MAX: usize = 100;
/// `em_event.node` and `source` length.
pub(crate) const EVENT_NAME_MAX: usize = 100;

/// Cuts `s` to at most `max` characters, ending with `...` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let keep = max.saturating_sub(3);
    let mut out: String = s.chars().take(keep).collect();
    out.push_str("...");
    out
}

/// The correlation key stored in `correlation_id` / `message_key` and searched by `find_open`.
///
/// Characters that would break an encoded query (`^`, control characters) become `_`, and a
/// key that ServiceNow would evaluate as a script (one beginning with `javascript:`, see
/// [`crate::query`]) gets a leading `_`. A key longer than `max` characters is shortened to its
/// first characters plus `~` and a 64-bit hash of the whole, so create and find always agree and
/// distinct long ids stay distinct.
pub(crate) fn correlation_key(id: &str, max: usize) -> String {
    let mut clean: String = id
        .chars()
        .map(|c| if c == '^' || c.is_control() { '_' } else { c })
        .collect();
    if crate::query::is_script(&clean) {
        clean.insert(0, '_');
    }
    if clean.chars().count() <= max {
        return clean;
    }
    let hash = format!("~{:016x}", fnv1a(id.as_bytes()));
    let keep = max.saturating_sub(hash.len());
    let mut out: String = clean.chars().take(keep).collect();
    out.push_str(&hash);
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A field of a Table API record as a string: plain strings, numbers, booleans, and reference
/// objects (`{"link","value"}`) all give their value.
pub(crate) fn field(record: &Value, name: &str) -> Option<String> {
    match record.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(o) => o.get("value").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// `result` of a Table API answer.
pub(crate) fn result(body: &Value) -> Option<&Value> {
    body.get("result")
}

/// The rows of a Table API list answer; an answer without a `result` array is an error (reading
/// it as "no rows" could make the caller open a duplicate work item).
pub(crate) fn rows(body: &Value) -> Result<&[Value], ItsmError> {
    body.get("result")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| ItsmError::InvalidResponse {
            backend: BACKEND,
            message: "list answer without a result array".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("short", 160), "short");
        let long = "é".repeat(200);
        let cut = truncate(&long, 160);
        assert_eq!(cut.chars().count(), 160);
        assert!(cut.ends_with("..."));
    }

    #[test]
    fn correlation_keys_are_stable_and_bounded() {
        assert_eq!(correlation_key("abc-1", 100), "abc-1");
        assert_eq!(correlation_key("a^b\nc", 100), "a_b_c");
        assert_eq!(
            correlation_key("javascript:gs.sleep(3000)", 100),
            "_javascript:gs.sleep(3000)"
        );
        assert_eq!(correlation_key(" JavaScript:x", 100), "_ JavaScript:x");
        assert_eq!(correlation_key("\u{1}javascript:x", 100), "_javascript:x");
        let long_script = format!("javascript:{}", "x".repeat(200));
        let key = correlation_key(&long_script, 100);
        assert_eq!(key.chars().count(), 100);
        assert!(key.starts_with("_javascript:"), "{key}");
        for key in [key, correlation_key("x^NQactive=true", 100)] {
            assert!(crate::query::check(&key).is_ok(), "{key}");
        }
        let a = correlation_key(&"x".repeat(150), 100);
        let b = correlation_key(&format!("{}y", "x".repeat(149)), 100);
        assert_eq!(a.chars().count(), 100);
        assert_eq!(a, correlation_key(&"x".repeat(150), 100));
        assert_ne!(a, b);
    }

    #[test]
    fn field_reads_every_encoding() {
        let r = json!({"a":"1","b":2,"c":{"link":"https://x","value":"abc"},"d":true,"e":null});
        assert_eq!(field(&r, "a").as_deref(), Some("1"));
        assert_eq!(field(&r, "b").as_deref(), Some("2"));
        assert_eq!(field(&r, "c").as_deref(), Some("abc"));
        assert_eq!(field(&r, "d").as_deref(), Some("true"));
        assert_eq!(field(&r, "e"), None);
        assert_eq!(field(&r, "zz"), None);
    }
}
