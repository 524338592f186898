//! Business rules and data policies applied on write: field copying, priority,
//! active flag, resolution timestamps, the resolve data policy, event defaults.

use serde_json::{Map, Value};

use super::schema;
use super::store::{Rec, WriteRefused};

/// Stored form of an input value: every value is a string.
fn to_stored(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Object(map) => match map.get("value") {
            Some(Value::String(s)) => s.clone(),
            _ => value.to_string(),
        },
        Value::Array(_) => value.to_string(),
    }
}

/// Priority from the base impact x urgency lookup (1 Critical .. 5 Planning).
pub(crate) fn priority(impact: &str, urgency: &str) -> String {
    let level = |v: &str| {
        v.parse::<u8>()
            .ok()
            .filter(|n| (1..=3).contains(n))
            .unwrap_or(3)
    };
    (level(impact) + level(urgency) - 1).to_string()
}

/// Copy writable input fields into `rec`; returns journal entries to add.
pub(crate) fn write_fields(
    class: &str,
    rec: &mut Rec,
    input: &Map<String, Value>,
) -> Vec<(String, String)> {
    let mut journal = Vec::new();
    for (field, value) in input {
        if field.starts_with("sys_") || !schema::has_column(class, field) {
            continue;
        }
        let stored = to_stored(value);
        if schema::JOURNAL_COLUMNS.contains(&field.as_str()) {
            if !stored.is_empty() {
                journal.push((field.clone(), stored));
            }
            rec.insert(field.clone(), String::new());
            continue;
        }
        rec.insert(field.clone(), stored);
    }
    journal
}

/// Priority, active flag, resolution timestamps and the resolve data policy.
pub(crate) fn apply_task_rules(
    class: &str,
    rec: &mut Rec,
    now: &str,
    user_id: &str,
) -> Result<(), WriteRefused> {
    if !schema::extends(class, "task") {
        return Ok(());
    }
    let get = |rec: &Rec, k: &str| rec.get(k).cloned().unwrap_or_default();
    let p = priority(&get(rec, "impact"), &get(rec, "urgency"));
    rec.insert("priority".to_owned(), p);
    let state = get(rec, "state");
    if class == "incident" {
        rec.insert("incident_state".to_owned(), state.clone());
        let mut missing = Vec::new();
        if state == "6" || state == "7" {
            if get(rec, "close_code").is_empty() {
                missing.push("Resolution code");
            }
            if get(rec, "close_notes").is_empty() {
                missing.push("Resolution notes");
            }
        }
        if state == "3" && get(rec, "hold_reason").is_empty() {
            missing.push("On hold reason");
        }
        if !missing.is_empty() {
            return Err(WriteRefused {
                status: 403,
                message: "Operation Failed".to_owned(),
                detail: format!(
                    "Data Policy Exception: \n\tThe following fields are mandatory: {}",
                    missing.join(", ")
                ),
            });
        }
        if (state == "6" || state == "7") && get(rec, "resolved_at").is_empty() {
            rec.insert("resolved_at".to_owned(), now.to_owned());
            rec.insert("resolved_by".to_owned(), user_id.to_owned());
        }
    }
    if state == "7" && get(rec, "closed_at").is_empty() {
        rec.insert("closed_at".to_owned(), now.to_owned());
        rec.insert("closed_by".to_owned(), user_id.to_owned());
    }
    let active = !["6", "7", "8"].contains(&state.as_str());
    rec.insert("active".to_owned(), active.to_string());
    Ok(())
}

/// Event processing: empty severity lands in Error; default message_key.
pub(crate) fn apply_event_rules(rec: &mut Rec) {
    let get = |rec: &Rec, k: &str| rec.get(k).cloned().unwrap_or_default();
    if get(rec, "message_key").is_empty() {
        let key: String = ["source", "node", "type", "resource", "metric_name"]
            .iter()
            .map(|k| get(rec, k))
            .collect();
        rec.insert("message_key".to_owned(), key);
    }
    if get(rec, "severity").is_empty() {
        rec.insert("state".to_owned(), "Error".to_owned());
        rec.insert(
            "processing_notes".to_owned(),
            "Severity is empty".to_owned(),
        );
    } else {
        rec.insert("state".to_owned(), "Ready".to_owned());
    }
}
