//! [`BmcConnector`]: the [`ItsmConnector`] for BMC Helix ITSM.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use secure_export_itsm::{
    ItsmConnector, ItsmError, NewWorkItem, Resolution, WorkItemRef, WorkItemState, WorkItemUpdate,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::{BACKEND, config_error};
use crate::incident::{
    complete_status_reason, create_values, item_url, resolve_values, state_of, work_log_values,
};
use crate::session::{Call, Reply, Session};
use crate::wire::{
    encode_query, encode_segment, entry_id_from_location, equals, is_entry_id, quote_field,
    quote_value, values_param,
};
use crate::{BmcCmdb, BmcConfig};

const CREATE_FORM: &str = "HPD:IncidentInterface_Create";
const INTERFACE_FORM: &str = "HPD:IncidentInterface";
const HELP_DESK_FORM: &str = "HPD:Help Desk";
const WORK_LOG_FORM: &str = "HPD:WorkLog";
const INCIDENT_NUMBER: &str = "Incident Number";
const ENTRY_ID: &str = "Entry ID";
/// Rows asked for when finding the open incident of a correlation id (newest first): more than
/// one is already a duplicate.
const FIND_OPEN_LIMIT: &str = "50";
/// Rows asked for when reading an incident by its (unique) number.
const BY_NUMBER_LIMIT: &str = "10";

/// The BMC Helix ITSM backend (AR System REST API, incidents).
///
/// * Auth: `POST /api/jwt/login` once, `Authorization: AR-JWT <token>` until shortly before
///   expiry; a 401 or AR error 623 triggers one new login and one retry. Concurrent callers
///   share a single login. Call [`logout`](Self::logout) on shutdown.
/// * Create: `HPD:IncidentInterface_Create`, then the `HPD:Help Desk` entry id is looked up by
///   incident number; [`WorkItemRef::id`] is that entry id, [`WorkItemRef::number`] the
///   incident number. If that lookup fails the error is retryable and the incident already
///   carries the correlation id, so the caller's `find_open` before a retried create finds it.
/// * Health: ready when a token is held or a login succeeds.
/// * Find: `HPD:Help Desk` by the configured correlation field and `'Status' < "Resolved"`,
///   newest entry first, at most 50 rows.
/// * Every query quotes its values as AR strings (inner `"` doubled) and sends a row `limit`.
/// * Update / resolve / reopen: `PUT HPD:IncidentInterface/{id}|{id}`; work notes are
///   `HPD:WorkLog` entries.
///
/// Cloning is cheap and clones share the token.
#[derive(Clone)]
pub struct BmcConnector {
    session: Arc<Session>,
    config: Arc<BmcConfig>,
}

impl std::fmt::Debug for BmcConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BmcConnector")
            .field("base_url", &self.session.base())
            .field("username", &self.config.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct EntryValues {
    #[serde(default)]
    values: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct EntryList {
    #[serde(default)]
    entries: Vec<EntryValues>,
}

fn text<'a>(values: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    values
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn invalid(message: String) -> ItsmError {
    ItsmError::InvalidResponse {
        backend: BACKEND,
        message,
    }
}

/// Maps a 404 on an entry to `NotFound`.
fn not_found_as(id: &str) -> impl FnOnce(ItsmError) -> ItsmError + '_ {
    move |err| match err {
        ItsmError::Http { status: 404, .. } => ItsmError::NotFound {
            backend: BACKEND,
            id: id.to_owned(),
        },
        other => other,
    }
}

impl BmcConnector {
    /// A connector for `config`, sending through `client` (configure proxies, TLS roots and
    /// redirects there; redirects should be off). Fails if the configuration is unusable.
    pub fn new(config: BmcConfig, client: reqwest::Client) -> Result<Self, ItsmError> {
        let base = config.validate()?;
        Ok(Self {
            session: Arc::new(Session::new(&config, base, client)),
            config: Arc::new(config),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &BmcConfig {
        &self.config
    }

    /// A CMDB lookup sharing this connector's client and token.
    #[must_use]
    pub fn cmdb(&self) -> BmcCmdb {
        BmcCmdb::from_parts(Arc::clone(&self.session), Arc::clone(&self.config))
    }

    /// Logs out (`POST /api/jwt/logout`) and forgets the token; call it on shutdown. A later
    /// call logs in again. Failures are logged, not returned: the token expires anyway.
    pub async fn logout(&self) {
        if let Err(err) = self.session.logout().await {
            tracing::warn!(event = "bmc.logout.failed", error = %err);
        }
    }

    fn entry_path(form: &str, id: Option<&str>, query: &[(&str, &str)]) -> String {
        let mut path = format!("/api/arsys/v1/entry/{}", encode_segment(form));
        if let Some(id) = id {
            path.push('/');
            path.push_str(&encode_segment(id));
        }
        if !query.is_empty() {
            path.push('?');
            path.push_str(&encode_query(query));
        }
        path
    }

    async fn get(&self, op: &'static str, path: String) -> Result<Reply, ItsmError> {
        self.session
            .call(&Call {
                op,
                method: Method::GET,
                path,
                body: None,
            })
            .await
    }

    fn checked_id(item: &WorkItemRef) -> Result<&str, ItsmError> {
        if is_entry_id(&item.id) {
            Ok(&item.id)
        } else {
            Err(config_error(&format!(
                "work item id {:?} is not a BMC entry id (letters, digits, '-', '_', at most 64)",
                item.id
            )))
        }
    }

    fn checked_correlation_id(id: &str) -> Result<&str, ItsmError> {
        if id.trim().is_empty() || id.chars().any(char::is_control) || id.len() > 254 {
            return Err(config_error(&format!(
                "correlation id {id:?} is unusable (empty, over 254 bytes, or control characters)"
            )));
        }
        Ok(id)
    }

    /// Reads the incident number from an `HPD:IncidentInterface_Create` answer: the body, or
    /// else the entry named by the `Location` header.
    async fn created_number(&self, reply: &Reply) -> Result<String, ItsmError> {
        if !reply.is_empty() {
            let entry: EntryValues = reply.json("create")?;
            if let Some(number) = text(&entry.values, INCIDENT_NUMBER) {
                return Ok(number.to_owned());
            }
        }
        let location = reply.location.as_deref().ok_or_else(|| {
            invalid("create answered without an incident number and without Location".to_owned())
        })?;
        let id = entry_id_from_location(location, CREATE_FORM).ok_or_else(|| {
            invalid(format!(
                "create answered with an unusable Location header {location:?}"
            ))
        })?;
        let fields = values_param(&[INCIDENT_NUMBER, "Request ID"]);
        let path = Self::entry_path(CREATE_FORM, Some(&id), &[("fields", &fields)]);
        let entry: EntryValues = self.get("create", path).await?.json("create")?;
        text(&entry.values, INCIDENT_NUMBER)
            .map(str::to_owned)
            .ok_or_else(|| invalid(format!("created entry {id} has no {INCIDENT_NUMBER}")))
    }

    /// Finds the `HPD:Help Desk` entry id of an incident number.
    async fn entry_id_of(&self, number: &str) -> Result<String, ItsmError> {
        let q = equals(INCIDENT_NUMBER, number);
        let fields = values_param(&[ENTRY_ID, INCIDENT_NUMBER]);
        let path = Self::entry_path(
            HELP_DESK_FORM,
            None,
            &[("q", &q), ("fields", &fields), ("limit", BY_NUMBER_LIMIT)],
        );
        let list: EntryList = self.get("create", path).await?.json("create")?;
        list.entries
            .iter()
            .find_map(|e| text(&e.values, ENTRY_ID).filter(|id| is_entry_id(id)))
            .map(str::to_owned)
            .ok_or_else(|| {
                invalid(format!(
                    "incident {number} was created but is not in {HELP_DESK_FORM}"
                ))
            })
    }

    /// The incident number of a work item: from the ref, else read from `HPD:Help Desk`.
    async fn number_of(&self, item: &WorkItemRef) -> Result<String, ItsmError> {
        if let Some(number) = item.number.as_deref().filter(|n| !n.is_empty()) {
            return Ok(number.to_owned());
        }
        let id = Self::checked_id(item)?;
        let fields = values_param(&[INCIDENT_NUMBER]);
        let path = Self::entry_path(HELP_DESK_FORM, Some(id), &[("fields", &fields)]);
        let entry: EntryValues = self
            .get("read", path)
            .await
            .map_err(not_found_as(id))?
            .json("read")?;
        text(&entry.values, INCIDENT_NUMBER)
            .map(str::to_owned)
            .ok_or_else(|| invalid(format!("entry {id} has no {INCIDENT_NUMBER}")))
    }

    /// `PUT HPD:IncidentInterface/{id}|{id}` with `values`.
    async fn put_values(
        &self,
        op: &'static str,
        item: &WorkItemRef,
        values: Map<String, Value>,
    ) -> Result<(), ItsmError> {
        let id = Self::checked_id(item)?;
        let join_id = format!("{id}|{id}");
        let body = json!({ "values": values });
        let path = Self::entry_path(INTERFACE_FORM, Some(&join_id), &[]);
        self.session
            .call(&Call {
                op,
                method: Method::PUT,
                path,
                body: Some(&body),
            })
            .await
            .map_err(not_found_as(id))?;
        Ok(())
    }

    /// Adds an `HPD:WorkLog` entry.
    async fn add_work_log(&self, item: &WorkItemRef, note: &str) -> Result<(), ItsmError> {
        let number = self.number_of(item).await?;
        let body = json!({ "values": work_log_values(&self.config, &number, note) });
        let path = Self::entry_path(WORK_LOG_FORM, None, &[]);
        self.session
            .call(&Call {
                op: "work_log",
                method: Method::POST,
                path,
                body: Some(&body),
            })
            .await?;
        Ok(())
    }
}

#[async_trait]
impl ItsmConnector for BmcConnector {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn create(&self, item: &NewWorkItem) -> Result<WorkItemRef, ItsmError> {
        Self::checked_correlation_id(&item.correlation_id)?;
        let body = json!({ "values": create_values(&self.config, item) });
        let fields = values_param(&[INCIDENT_NUMBER, "Request ID"]);
        let path = Self::entry_path(CREATE_FORM, None, &[("fields", &fields)]);
        let reply = self
            .session
            .call(&Call {
                op: "create",
                method: Method::POST,
                path,
                body: Some(&body),
            })
            .await?;
        let number = self.created_number(&reply).await?;
        let id = self.entry_id_of(&number).await?;
        tracing::info!(event = "bmc.create", incident = %number, entry_id = %id);
        let url = item_url(&self.config, &id, &number);
        Ok(WorkItemRef {
            id,
            number: Some(number),
            url,
        })
    }

    async fn find_open(&self, correlation_id: &str) -> Result<Option<WorkItemRef>, ItsmError> {
        Self::checked_correlation_id(correlation_id)?;
        let q = format!(
            "{} AND {} < {}",
            equals(&self.config.correlation_field, correlation_id),
            quote_field("Status"),
            quote_value("Resolved")
        );
        let fields = values_param(&[ENTRY_ID, INCIDENT_NUMBER, "Status"]);
        let sort = format!("{ENTRY_ID}.desc");
        let path = Self::entry_path(
            HELP_DESK_FORM,
            None,
            &[
                ("q", &q),
                ("fields", &fields),
                ("sort", &sort),
                ("limit", FIND_OPEN_LIMIT),
            ],
        );
        let list: EntryList = self.get("find_open", path).await?.json("find_open")?;
        // Re-check the status: some servers order enum comparisons differently.
        let mut open: Vec<(&str, Option<&str>)> = list
            .entries
            .iter()
            .filter(|e| text(&e.values, "Status").and_then(state_of) == Some(WorkItemState::Open))
            .filter_map(|e| {
                let id = text(&e.values, ENTRY_ID).filter(|id| is_entry_id(id))?;
                Some((id, text(&e.values, INCIDENT_NUMBER)))
            })
            .collect();
        open.sort_unstable();
        if open.len() > 1 {
            tracing::warn!(event = "bmc.find_open.several", count = open.len());
        }
        // The newest (highest) entry id wins.
        Ok(open.last().map(|(id, number)| WorkItemRef {
            id: (*id).to_owned(),
            number: number.map(str::to_owned),
            url: item_url(&self.config, id, number.unwrap_or_default()),
        }))
    }

    async fn state(&self, item: &WorkItemRef) -> Result<WorkItemState, ItsmError> {
        let id = Self::checked_id(item)?;
        let fields = values_param(&["Status"]);
        let path = Self::entry_path(HELP_DESK_FORM, Some(id), &[("fields", &fields)]);
        let entry: EntryValues = self
            .get("state", path)
            .await
            .map_err(not_found_as(id))?
            .json("state")?;
        let status = text(&entry.values, "Status")
            .ok_or_else(|| invalid(format!("entry {id} has no Status")))?;
        state_of(status).ok_or_else(|| invalid(format!("entry {id} has unknown Status {status:?}")))
    }

    async fn update(&self, item: &WorkItemRef, update: &WorkItemUpdate) -> Result<(), ItsmError> {
        if !update.fields.is_empty() {
            let mut values: Map<String, Value> = update
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            complete_status_reason(&self.config, &mut values).map_err(|m| config_error(&m))?;
            self.put_values("update", item, values).await?;
        }
        if let Some(note) = update.work_note.as_deref().filter(|n| !n.trim().is_empty()) {
            self.add_work_log(item, note).await?;
        }
        Ok(())
    }

    async fn resolve(&self, item: &WorkItemRef, resolution: &Resolution) -> Result<(), ItsmError> {
        self.put_values("resolve", item, resolve_values(&self.config, resolution))
            .await
    }

    async fn reopen(&self, item: &WorkItemRef, note: &str) -> Result<(), ItsmError> {
        let mut values = Map::new();
        values.insert("Status".to_owned(), json!(self.config.reopen_status));
        self.put_values("reopen", item, values).await?;
        if !note.trim().is_empty() {
            self.add_work_log(item, note).await?;
        }
        Ok(())
    }

    async fn health(&self) -> Result<(), ItsmError> {
        self.session.token().await.map(drop)
    }
}
