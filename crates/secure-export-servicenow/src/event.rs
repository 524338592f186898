//! Event Management events (`em_event`) through the Table API.
//!
//! Events are immutable messages: ServiceNow rolls events with the same `message_key` into one
//! alert. So the lifecycle is a series of events under one key: create sends the first, an update
//! or a reopen sends another with the original severity, and resolve sends severity `0` (Clear)
//! with `resolution_state` `Closing`, which closes the alert. The state of a work item is the state
//! of the newest event under its key.

use reqwest::Method;
use secure_export_itsm::{
    ItsmError, NewWorkItem, Resolution, WorkItemRef, WorkItemState, WorkItemUpdate,
};
use serde_json::{Map, Value, json};

use crate::config::ServiceNowConfig;
use crate::errors::BACKEND;
use crate::fields::{EVENT_NAME_MAX, LONG_TEXT_MAX, field, result, rows, truncate};
use crate::transport::{Reply, Transport};

const TABLE: &str = "em_event";
/// `message_key` length.
const MESSAGE_KEY_MAX: usize = 1024;
/// Where the first event's severity is kept (for reopening after a Clear).
const SEVERITY_INFO: &str = "event_severity";
/// Fields copied from the first event onto follow-up events.
const COPIED: [&str; 7] = [
    "source",
    "event_class",
    "node",
    "type",
    "resource",
    "metric_name",
    "message_key",
];
/// At most this many of the newest events of one key are read to find the newest one.
const SAME_SECOND_LIMIT: &str = "50";

fn now_text() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `additional_info`: a stringified JSON object whose values are all strings.
fn additional_info(pairs: impl IntoIterator<Item = (String, Value)>) -> String {
    let object: Map<String, Value> = pairs
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, Value::String(text))
        })
        .collect();
    Value::Object(object).to_string()
}

/// The JSON body of the first event of a work item.
pub(crate) fn create_body(config: &ServiceNowConfig, item: &NewWorkItem) -> Value {
    let severity = config
        .severity_map
        .event_severity(item.severity)
        .to_string();
    let mut info: Vec<(String, Value)> = item.fields.clone().into_iter().collect();
    info.extend([
        ("title".to_owned(), Value::String(item.title.clone())),
        (
            "correlation_display".to_owned(),
            Value::String(item.correlation_display.clone()),
        ),
        (
            "azure_severity".to_owned(),
            Value::String(format!("Sev{}", item.severity.as_u8())),
        ),
        (SEVERITY_INFO.to_owned(), Value::String(severity.clone())),
    ]);
    if let Some(ci) = item.primary_ci() {
        info.push(("cmdb_ci".to_owned(), Value::String(ci.id.clone())));
    }
    if item.cis.len() > 1 {
        let ids: Vec<&str> = item.cis.iter().map(|c| c.id.as_str()).collect();
        info.push(("affected_cis".to_owned(), Value::String(ids.join(","))));
    }
    let description = if item.description.is_empty() {
        item.title.clone()
    } else {
        format!("{}\n\n{}", item.title, item.description)
    };
    let mut body = json!({
        "source": truncate(&config.event_source, EVENT_NAME_MAX),
        "node": truncate(item.primary_ci().map_or("", |c| c.name.as_str()), EVENT_NAME_MAX),
        "message_key": crate::fields::correlation_key(&item.correlation_id, MESSAGE_KEY_MAX),
        "severity": severity,
        "resolution_state": "New",
        "time_of_event": now_text(),
        "description": truncate(&description, LONG_TEXT_MAX),
        "additional_info": additional_info(info),
    });
    if let (Some(class), Some(obj)) = (&config.event_class, body.as_object_mut()) {
        obj.insert(
            "event_class".to_owned(),
            Value::String(truncate(class, EVENT_NAME_MAX)),
        );
    }
    body
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

fn is_clear(record: &Value) -> bool {
    field(record, "severity").as_deref() == Some("0")
        || field(record, "resolution_state").as_deref() == Some("Closing")
}

async fn post(transport: &Transport, body: &Value) -> Result<Reply, ItsmError> {
    transport
        .json(
            Method::POST,
            transport.table_url(TABLE, None),
            &[
                ("sysparm_exclude_reference_link", "true"),
                ("sysparm_fields", "sys_id,number"),
            ],
            Some(body),
        )
        .await
}

pub(crate) async fn create(
    transport: &Transport,
    config: &ServiceNowConfig,
    item: &NewWorkItem,
) -> Result<WorkItemRef, ItsmError> {
    let reply = post(transport, &create_body(config, item)).await?;
    let record = result(&reply.body).cloned().unwrap_or(Value::Null);
    let from_location = || {
        let id = reply.location_id()?;
        reference(transport, &json!({ "sys_id": id }))
    };
    reference(transport, &record)
        .or_else(from_location)
        .ok_or_else(|| ItsmError::InvalidResponse {
            backend: BACKEND,
            message: "event create answered without result.sys_id or Location".to_owned(),
        })
}

/// The newest event under `key`. Events created in the same second are told apart by the
/// server's order (insertion order on the emulator): the last of the newest timestamp wins.
///
/// `key` must have passed [`crate::query::check`] (or come from
/// [`crate::fields::correlation_key`]).
async fn newest(transport: &Transport, key: &str) -> Result<Option<Value>, ItsmError> {
    let query = format!("message_key={key}^ORDERBYDESCsys_created_on");
    let reply = transport
        .json(
            Method::GET,
            transport.table_url(TABLE, None),
            &[
                ("sysparm_query", query.as_str()),
                (
                    "sysparm_fields",
                    "sys_id,number,severity,resolution_state,sys_created_on",
                ),
                ("sysparm_exclude_reference_link", "true"),
                ("sysparm_limit", SAME_SECOND_LIMIT),
            ],
            None,
        )
        .await?;
    let rows = rows(&reply.body)?;
    let newest_time = rows.first().and_then(|r| field(r, "sys_created_on"));
    Ok(rows
        .iter()
        .take_while(|r| field(r, "sys_created_on") == newest_time)
        .last()
        .cloned())
}

pub(crate) async fn find_open(
    transport: &Transport,
    correlation_id: &str,
) -> Result<Option<WorkItemRef>, ItsmError> {
    let key = crate::fields::correlation_key(correlation_id, MESSAGE_KEY_MAX);
    let newest = newest(transport, &key).await?;
    Ok(newest
        .filter(|r| !is_clear(r))
        .and_then(|r| reference(transport, &r)))
}

/// The full record of the event behind `item`.
async fn read(transport: &Transport, item: &WorkItemRef) -> Result<Value, ItsmError> {
    let mut fields = COPIED.join(",");
    fields.push_str(",severity,additional_info");
    let reply = transport
        .json(
            Method::GET,
            transport.table_url(TABLE, Some(&item.id)),
            &[
                ("sysparm_fields", fields.as_str()),
                ("sysparm_exclude_reference_link", "true"),
            ],
            None,
        )
        .await
        .map_err(|err| match err.status() {
            Some(404) => ItsmError::NotFound {
                backend: BACKEND,
                id: item.id.clone(),
            },
            _ => err,
        })?;
    result(&reply.body)
        .cloned()
        .ok_or_else(|| ItsmError::InvalidResponse {
            backend: BACKEND,
            message: "record answer without result".to_owned(),
        })
}

pub(crate) async fn state(
    transport: &Transport,
    item: &WorkItemRef,
) -> Result<WorkItemState, ItsmError> {
    let record = read(transport, item).await?;
    let key = field(&record, "message_key").unwrap_or_default();
    // The key is read back from the instance (anyone who can edit the event can change it), so
    // it is checked like any other query value; without a usable key the event stands alone.
    let newest = match crate::query::check(&key) {
        Ok(key) => newest(transport, key).await?.unwrap_or(record),
        Err(refusal) => {
            tracing::warn!(
                target: "servicenow",
                event = %item.id,
                %refusal,
                "message_key not queried; the state is that of this event"
            );
            record
        }
    };
    Ok(if is_clear(&newest) {
        WorkItemState::Resolved
    } else {
        WorkItemState::Open
    })
}

/// Sends a follow-up event under the same key as `item`.
async fn follow_up(
    transport: &Transport,
    item: &WorkItemRef,
    severity: Option<&str>,
    resolution_state: &str,
    description: &str,
    extra: &[(String, Value)],
) -> Result<(), ItsmError> {
    let first = read(transport, item).await?;
    let mut body = Map::new();
    for name in COPIED {
        if let Some(value) = field(&first, name).filter(|v| !v.is_empty()) {
            body.insert(name.to_owned(), Value::String(value));
        }
    }
    let info_text = field(&first, "additional_info").unwrap_or_default();
    let mut info: Map<String, Value> = serde_json::from_str(&info_text).unwrap_or_default();
    for (k, v) in extra {
        info.insert(k.clone(), v.clone());
    }
    let original = info
        .get(SEVERITY_INFO)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| field(&first, "severity").filter(|s| s != "0"))
        .unwrap_or_else(|| "2".to_owned());
    let severity = severity.map_or(original, str::to_owned);
    body.insert("severity".to_owned(), Value::String(severity));
    body.insert(
        "resolution_state".to_owned(),
        Value::String(resolution_state.to_owned()),
    );
    body.insert("time_of_event".to_owned(), Value::String(now_text()));
    body.insert(
        "description".to_owned(),
        Value::String(truncate(description, LONG_TEXT_MAX)),
    );
    body.insert(
        "additional_info".to_owned(),
        Value::String(additional_info(info)),
    );
    post(transport, &Value::Object(body)).await.map(drop)
}

pub(crate) async fn update(
    transport: &Transport,
    item: &WorkItemRef,
    update: &WorkItemUpdate,
) -> Result<(), ItsmError> {
    if update.work_note.is_none() && update.fields.is_empty() {
        return Ok(());
    }
    let extra: Vec<(String, Value)> = update.fields.clone().into_iter().collect();
    let note = update.work_note.as_deref().unwrap_or("Updated");
    follow_up(transport, item, None, "New", note, &extra).await
}

pub(crate) async fn resolve(
    transport: &Transport,
    item: &WorkItemRef,
    resolution: &Resolution,
) -> Result<(), ItsmError> {
    let mut extra = Vec::new();
    if let Some(code) = &resolution.code {
        extra.push(("close_code".to_owned(), Value::String(code.clone())));
    }
    follow_up(
        transport,
        item,
        Some("0"),
        "Closing",
        &resolution.notes,
        &extra,
    )
    .await
}

pub(crate) async fn reopen(
    transport: &Transport,
    item: &WorkItemRef,
    note: &str,
) -> Result<(), ItsmError> {
    follow_up(transport, item, None, "New", note, &[]).await
}

#[cfg(test)]
mod tests {
    use secure_export_itsm::{CiRef, Severity};

    use super::*;
    use crate::config::{Auth, WorkItemKind};

    #[test]
    fn first_event_body() {
        let mut config = ServiceNowConfig::new("https://x", Auth::basic("u", "p"))
            .with_kind(WorkItemKind::Event);
        config.event_class = Some("azure-prod".to_owned());
        let item = NewWorkItem::new("corr-9", "cpu high", Severity::Sev3)
            .with_ci(CiRef::new("ci1", "vm1"))
            .with_ci(CiRef::new("ci2", "vm2"))
            .with_field("count", 3);
        let body = create_body(&config, &item);
        assert_eq!(body["message_key"], "corr-9");
        assert_eq!(body["severity"], "4");
        assert_eq!(body["node"], "vm1");
        assert_eq!(body["source"], "Azure Monitor");
        assert_eq!(body["event_class"], "azure-prod");
        assert_eq!(body["resolution_state"], "New");
        let info: Value = serde_json::from_str(body["additional_info"].as_str().unwrap()).unwrap();
        assert_eq!(info["count"], "3", "values are strings only");
        assert_eq!(info["affected_cis"], "ci1,ci2");
        assert_eq!(info["event_severity"], "4");
        let time = body["time_of_event"].as_str().unwrap();
        assert!(chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S").is_ok());
    }
}
