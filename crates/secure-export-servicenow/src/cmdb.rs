//! [`ServiceNowCmdb`]: CMDB lookups on `cmdb_ci` (or configured classes).

use std::fmt;

use async_trait::async_trait;
use reqwest::Method;
use secure_export_cmdb::{CiRecord, CiSource, CmdbLookup, LookupError};
use secure_export_itsm::ItsmError;
use serde_json::Value;

use crate::config::{ServiceNowConfig, is_identifier};
use crate::fields::{field, rows};
use crate::query::{self, Refusal};
use crate::transport::Transport;

const FIELDS: &str = "sys_id,name,sys_class_name,object_id";
/// At most this many CIs are returned per lookup.
const LIMIT: &str = "20";

/// Finds configuration items by Azure resource id (`object_id`) or by name.
///
/// # Case of resource ids
/// ARM ids vary in case and the Table API's `=` is documented as case-sensitive, while the
/// binder hands us lowercase ids. A lookup first asks for `object_id=<id>` (exact; this is
/// enough when discovery stored the id in lowercase or the instance compares case-insensitively,
/// as MySQL/MariaDB-backed instances do). When that finds nothing it asks for
/// `object_idENDSWITH/<resource name>` (the `LIKE` family compares case-insensitively on those
/// instances), a narrow query on the last id segment, and keeps only rows whose `object_id`
/// equals the id ignoring ASCII case. Two requests at most per class, and never a false match.
/// A subscription-only id also matches the bare subscription id stored on
/// `cmdb_ci_cloud_service_account`.
///
/// # Values that are never sent
/// Alert text is chosen by whoever raises the alert, and encoded-query values are not escaped.
/// A resource id or name that begins with `javascript:` (in any case, after whitespace or
/// invisible characters) would be evaluated as a script by the instance; one containing `^`
/// would add conditions to the query; control characters have no business there either. Such
/// a value never enters a query: the lookup answers "nothing found" without a request, and logs
/// the reason (target `servicenow`, level warn). Every query asks for at most 20 rows.
#[derive(Clone)]
pub struct ServiceNowCmdb {
    transport: Transport,
    classes: Vec<String>,
}

impl ServiceNowCmdb {
    /// A lookup with its own connection settings (only `instance_url`, `auth`, `timeout`,
    /// `cmdb_classes` and `clock` are used).
    ///
    /// # Errors
    /// [`ItsmError::Config`] naming the bad setting.
    pub fn new(config: &ServiceNowConfig, client: reqwest::Client) -> Result<Self, ItsmError> {
        let transport = Transport::new(config, client)?;
        Ok(Self::from_transport(transport, config.cmdb_classes.clone()))
    }

    pub(crate) fn from_transport(transport: Transport, classes: Vec<String>) -> Self {
        Self { transport, classes }
    }

    async fn query(&self, table: &str, query: &str) -> Result<Vec<Value>, ItsmError> {
        let reply = self
            .transport
            .json(
                Method::GET,
                self.transport.table_url(table, None),
                &[
                    ("sysparm_query", query),
                    ("sysparm_fields", FIELDS),
                    ("sysparm_exclude_reference_link", "true"),
                    ("sysparm_limit", LIMIT),
                ],
                None,
            )
            .await?;
        Ok(rows(&reply.body)?.to_vec())
    }
}

fn record(row: &Value, table: &str, source: CiSource) -> Option<CiRecord> {
    let id = field(row, "sys_id").filter(|s| !s.is_empty())?;
    Some(CiRecord {
        id,
        name: field(row, "name").unwrap_or_default(),
        class: field(row, "sys_class_name")
            .filter(|c| !c.is_empty())
            .or_else(|| Some(table.to_owned())),
        source,
    })
}

/// The `object_id` values that identify `id`, and the tail to search with `ENDSWITH`.
///
/// A subscription-only id (`/subscriptions/<guid>`) is also looked up by the bare subscription id,
/// which is what discovery stores on `cmdb_ci_cloud_service_account`.
fn id_candidates(id: &str) -> (Vec<String>, String) {
    let segments: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [keyword, subscription] if keyword.eq_ignore_ascii_case("subscriptions") => (
            vec![id.to_owned(), (*subscription).to_owned()],
            (*subscription).to_owned(),
        ),
        [_] => (vec![id.to_owned()], id.to_owned()),
        [.., name] => (vec![id.to_owned()], format!("/{name}")),
        [] => (vec![id.to_owned()], String::new()),
    }
}

/// Logs why a lookup value is not sent, and gives the "nothing found" answer.
///
/// The refusal is not a [`LookupError`]: every error makes the binder report the lookup as
/// failed (and the outbox then waits for the CMDB as if it were down), while this answer is
/// final. The binder reports the target as unmatched ("no CI named ...").
fn refused(
    what: &'static str,
    value: &str,
    refusal: Refusal,
) -> Result<Vec<CiRecord>, LookupError> {
    if refusal == Refusal::Empty {
        tracing::debug!(target: "servicenow", lookup = what, "empty cmdb lookup value");
        return Ok(Vec::new());
    }
    tracing::warn!(
        target: "servicenow",
        lookup = what,
        value = %value.escape_debug(),
        reason = %refusal,
        "cmdb lookup not sent"
    );
    let shown: String = value.chars().take(80).collect();
    Err(LookupError::Refused(format!(
        "{shown:?} is never sent to ServiceNow ({refusal})"
    )))
}

#[async_trait]
impl CmdbLookup for ServiceNowCmdb {
    /// Values that cannot go into an encoded query unchanged (see [`ServiceNowCmdb`]) are
    /// never sent: the lookup finds nothing.
    async fn by_resource_id(&self, resource_id: &str) -> Result<Vec<CiRecord>, LookupError> {
        let id = resource_id.trim().trim_end_matches('/');
        let id = match query::check(id) {
            Ok(id) => id,
            Err(refusal) => return refused("resource id", resource_id, refusal),
        };
        let (mut candidates, tail) = id_candidates(id);
        // The bare subscription id is a second spelling, checked on its own.
        candidates.retain(|c| query::check(c).is_ok());
        let exact: Vec<String> = candidates
            .iter()
            .map(|c| format!("object_id={c}"))
            .collect();
        let exact = exact.join("^OR");
        let tail_safe = query::check(&tail).is_ok();
        let mut found = Vec::new();
        for table in &self.classes {
            let mut rows = self.query(table, &exact).await?;
            if rows.is_empty() && tail_safe {
                rows = self
                    .query(table, &format!("object_idENDSWITH{tail}"))
                    .await?;
                rows.retain(|r| {
                    field(r, "object_id")
                        .is_some_and(|o| candidates.iter().any(|c| o.eq_ignore_ascii_case(c)))
                });
            }
            found.extend(
                rows.iter()
                    .filter_map(|r| record(r, table, CiSource::ResourceId)),
            );
            if !found.is_empty() {
                break;
            }
        }
        Ok(found)
    }

    /// Names that cannot go into an encoded query unchanged (see [`ServiceNowCmdb`]) are never
    /// sent: the lookup finds nothing.
    async fn by_name(
        &self,
        name: &str,
        class_hint: Option<&str>,
    ) -> Result<Vec<CiRecord>, LookupError> {
        let name = match query::check(name.trim()) {
            Ok(name) => name,
            Err(refusal) => return refused("name", name, refusal),
        };
        let hinted = class_hint.filter(|c| is_identifier(c));
        let tables: Vec<&str> = match hinted {
            Some(class) => vec![class],
            None => self.classes.iter().map(String::as_str).collect(),
        };
        let mut found = Vec::new();
        for table in tables {
            let rows = self.query(table, &format!("name={name}")).await?;
            found.extend(rows.iter().filter_map(|r| record(r, table, CiSource::Name)));
            if !found.is_empty() {
                break;
            }
        }
        Ok(found)
    }
}

impl fmt::Debug for ServiceNowCmdb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceNowCmdb")
            .field("transport", &self.transport)
            .field("classes", &self.classes)
            .finish()
    }
}
