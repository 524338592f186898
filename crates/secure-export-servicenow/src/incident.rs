//! Incidents through the Table API.

use reqwest::Method;
use secure_export_itsm::{
    ItsmError, NewWorkItem, Resolution, WorkItemRef, WorkItemState, WorkItemUpdate,
};
use serde_json::{Map, Value, json};

use crate::config::ServiceNowConfig;
use crate::errors::BACKEND;
use crate::fields::{
    CORRELATION_MAX, LONG_TEXT_MAX, SHORT_DESCRIPTION_MAX, correlation_key, field, result, rows,
    truncate,
};
use crate::transport::{Reply, Transport};

const TABLE: &str = "incident";
const REF_FIELDS: &str = "sys_id,number";

/// The JSON body of a new incident.
pub(crate) fn create_body(config: &ServiceNowConfig, item: &NewWorkItem) -> Value {
    let mut body = Map::new();
    for (name, value) in config.extra_fields.iter().chain(&item.fields) {
        body.insert(name.clone(), value.clone());
    }
    let (impact, urgency) = config.severity_map.impact_urgency(item.severity);
    let optional = [
        ("caller_id", &config.caller_id),
        ("assignment_group", &config.assignment_group),
        ("category", &config.category),
        ("subcategory", &config.subcategory),
        ("contact_type", &config.contact_type),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            body.insert(name.to_owned(), Value::String(value.clone()));
        }
    }
    if let Some(ci) = item.primary_ci() {
        body.insert("cmdb_ci".to_owned(), Value::String(ci.id.clone()));
    }
    // The fields the lifecycle depends on are written last so no extra field can replace them.
    let core = [
        (
            "short_description",
            truncate(&item.title, SHORT_DESCRIPTION_MAX),
        ),
        ("description", truncate(&item.description, LONG_TEXT_MAX)),
        ("impact", impact.to_string()),
        ("urgency", urgency.to_string()),
        (
            "correlation_id",
            correlation_key(&item.correlation_id, CORRELATION_MAX),
        ),
        (
            "correlation_display",
            truncate(&item.correlation_display, CORRELATION_MAX),
        ),
    ];
    for (name, value) in core {
        body.insert(name.to_owned(), Value::String(value));
    }
    Value::Object(body)
}

fn reference(transport: &Transport, record: &Value) -> Option<WorkItemRef> {
    let id = field(record, "sys_id").filter(|s| !s.is_empty())?;
    let url = format!("{}{TABLE}.do?sys_id={id}", transport.base());
    Some(WorkItemRef {
        number: field(record, "number").filter(|s| !s.is_empty()),
        url: Some(url),
        id,
    })
}

/// Maps a 404 on a record to [`ItsmError::NotFound`].
fn on_record(id: &str, result: Result<Reply, ItsmError>) -> Result<Reply, ItsmError> {
    result.map_err(|err| match err.status() {
        Some(404) => ItsmError::NotFound {
            backend: BACKEND,
            id: id.to_owned(),
        },
        _ => err,
    })
}

pub(crate) async fn create(
    transport: &Transport,
    config: &ServiceNowConfig,
    item: &NewWorkItem,
) -> Result<WorkItemRef, ItsmError> {
    let body = create_body(config, item);
    let reply = transport
        .json(
            Method::POST,
            transport.table_url(TABLE, None),
            &[
                ("sysparm_exclude_reference_link", "true"),
                ("sysparm_fields", REF_FIELDS),
            ],
            Some(&body),
        )
        .await?;
    let record = result(&reply.body).cloned().unwrap_or(Value::Null);
    let created = reference(transport, &record).or_else(|| {
        // `sysparm_fields` may have hidden sys_id on an unusual instance: fall back to Location.
        let id = reply.location_id()?;
        reference(transport, &json!({ "sys_id": id }))
    });
    let Some(created) = created else {
        return Err(ItsmError::InvalidResponse {
            backend: BACKEND,
            message: format!(
                "create answered HTTP {} without result.sys_id or Location",
                reply.status.as_u16()
            ),
        });
    };
    for ci in item.cis.iter().skip(1) {
        let row = json!({ "task": created.id, "ci_item": ci.id });
        let url = transport.table_url("task_ci", None);
        let linked = transport
            .json(
                Method::POST,
                url,
                &[("sysparm_fields", "sys_id")],
                Some(&row),
            )
            .await;
        if let Err(err) = linked {
            // The incident exists: failing the create now would only make the caller find it
            // and carry on without the link, so report the gap instead.
            tracing::warn!(
                target: "servicenow",
                incident = %created.display(),
                ci = %ci.id,
                error = %err,
                "could not link affected CI"
            );
        }
    }
    Ok(created)
}

/// The encoded query of `find_open`: active, and (for instances that keep resolved incidents
/// active) not in a resolved or closed state; the oldest first.
pub(crate) fn find_open_query(config: &ServiceNowConfig, key: &str) -> String {
    let mut done = vec!["6", "7", "8"];
    let resolve_state = config.resolve_state.trim();
    if !done.contains(&resolve_state) {
        done.push(resolve_state);
    }
    format!(
        "correlation_id={key}^active=true^stateNOT IN{}^ORDERBYsys_created_on",
        done.join(",")
    )
}

pub(crate) async fn find_open(
    transport: &Transport,
    config: &ServiceNowConfig,
    correlation_id: &str,
) -> Result<Option<WorkItemRef>, ItsmError> {
    let key = correlation_key(correlation_id, CORRELATION_MAX);
    let query = find_open_query(config, &key);
    let reply = transport
        .json(
            Method::GET,
            transport.table_url(TABLE, None),
            &[
                ("sysparm_query", query.as_str()),
                ("sysparm_fields", "sys_id,number,state"),
                ("sysparm_exclude_reference_link", "true"),
                ("sysparm_limit", "1"),
            ],
            None,
        )
        .await?;
    Ok(rows(&reply.body)?
        .first()
        .and_then(|r| reference(transport, r)))
}

/// Maps an incident `state` (and `active`) to a [`WorkItemState`]; `resolve_state` is the
/// configured resolved state (default 6).
pub(crate) fn map_state(
    state: Option<&str>,
    active: Option<&str>,
    resolve_state: &str,
) -> WorkItemState {
    match state.map(str::trim) {
        Some(s) if s == resolve_state.trim() => WorkItemState::Resolved,
        Some("6") => WorkItemState::Resolved,
        Some("7" | "8") => WorkItemState::Closed,
        Some("1" | "2" | "3") => WorkItemState::Open,
        _ if active == Some("false") => WorkItemState::Closed,
        _ => WorkItemState::Open,
    }
}

pub(crate) async fn state(
    transport: &Transport,
    config: &ServiceNowConfig,
    item: &WorkItemRef,
) -> Result<WorkItemState, ItsmError> {
    let reply = transport
        .json(
            Method::GET,
            transport.table_url(TABLE, Some(&item.id)),
            &[
                ("sysparm_fields", "state,active"),
                ("sysparm_exclude_reference_link", "true"),
            ],
            None,
        )
        .await;
    let reply = on_record(&item.id, reply)?;
    let record = result(&reply.body).ok_or_else(|| ItsmError::InvalidResponse {
        backend: BACKEND,
        message: "record answer without result".to_owned(),
    })?;
    let (state, active) = (field(record, "state"), field(record, "active"));
    Ok(map_state(
        state.as_deref(),
        active.as_deref(),
        &config.resolve_state,
    ))
}

async fn patch(transport: &Transport, item: &WorkItemRef, body: Value) -> Result<(), ItsmError> {
    let reply = transport
        .json(
            Method::PATCH,
            transport.table_url(TABLE, Some(&item.id)),
            &[("sysparm_fields", "sys_id")],
            Some(&body),
        )
        .await;
    on_record(&item.id, reply).map(drop)
}

pub(crate) async fn update(
    transport: &Transport,
    item: &WorkItemRef,
    update: &WorkItemUpdate,
) -> Result<(), ItsmError> {
    let mut body: Map<String, Value> = update.fields.clone().into_iter().collect();
    if let Some(note) = &update.work_note {
        body.insert("work_notes".to_owned(), Value::String(note.clone()));
    }
    if body.is_empty() {
        return Ok(());
    }
    patch(transport, item, Value::Object(body)).await
}

pub(crate) async fn resolve(
    transport: &Transport,
    config: &ServiceNowConfig,
    item: &WorkItemRef,
    resolution: &Resolution,
) -> Result<(), ItsmError> {
    let code = resolution.code.as_deref().unwrap_or(&config.close_code);
    let notes = if resolution.notes.trim().is_empty() {
        "Resolved"
    } else {
        &resolution.notes
    };
    let body = json!({
        "state": config.resolve_state,
        "close_code": code,
        "close_notes": truncate(notes, LONG_TEXT_MAX),
    });
    patch(transport, item, body).await
}

pub(crate) async fn reopen(
    transport: &Transport,
    config: &ServiceNowConfig,
    item: &WorkItemRef,
    note: &str,
) -> Result<(), ItsmError> {
    let mut body = Map::new();
    body.insert(
        "state".to_owned(),
        Value::String(config.reopen_state.clone()),
    );
    if !note.is_empty() {
        body.insert("work_notes".to_owned(), Value::String(note.to_owned()));
    }
    patch(transport, item, Value::Object(body)).await
}

#[cfg(test)]
mod tests {
    use secure_export_itsm::{CiRef, Severity};

    use super::*;
    use crate::config::Auth;

    #[test]
    fn body_has_core_fields_last_and_truncated() {
        let config = ServiceNowConfig::new("https://x", Auth::basic("u", "p"))
            .with_assignment_group("grp")
            .with_extra_field("u_source", "azure")
            .with_extra_field("correlation_id", "overridden?");
        let item = NewWorkItem::new("corr-1", "t".repeat(300), Severity::Sev1)
            .with_ci(CiRef::new("ci1", "vm1"))
            .with_ci(CiRef::new("ci2", "vm2"))
            .with_field("impact", "3");
        let body = create_body(&config, &item);
        assert_eq!(body["correlation_id"], "corr-1");
        assert_eq!(body["impact"], "2");
        assert_eq!(body["urgency"], "1");
        assert_eq!(body["assignment_group"], "grp");
        assert_eq!(body["u_source"], "azure");
        assert_eq!(body["cmdb_ci"], "ci1");
        assert_eq!(
            body["short_description"].as_str().unwrap().chars().count(),
            160
        );
        assert!(body.get("caller_id").is_none());
    }

    #[test]
    fn find_open_query_excludes_done_states() {
        let mut config = ServiceNowConfig::new("https://x", Auth::basic("u", "p"));
        assert_eq!(
            find_open_query(&config, "k1"),
            "correlation_id=k1^active=true^stateNOT IN6,7,8^ORDERBYsys_created_on"
        );
        config.resolve_state = "106".to_owned();
        assert!(find_open_query(&config, "k1").contains("stateNOT IN6,7,8,106^"));
    }

    #[test]
    fn states_map() {
        let cases = [
            (Some("1"), None, WorkItemState::Open),
            (Some("2"), Some("true"), WorkItemState::Open),
            (Some("3"), None, WorkItemState::Open),
            (Some("6"), Some("false"), WorkItemState::Resolved),
            (Some("7"), Some("false"), WorkItemState::Closed),
            (Some("8"), None, WorkItemState::Closed),
            (Some("99"), Some("false"), WorkItemState::Closed),
            (None, Some("true"), WorkItemState::Open),
        ];
        for (state, active, expected) in cases {
            assert_eq!(
                map_state(state, active, "6"),
                expected,
                "{state:?} {active:?}"
            );
        }
        assert_eq!(
            map_state(Some("106"), Some("true"), "106"),
            WorkItemState::Resolved
        );
    }
}
