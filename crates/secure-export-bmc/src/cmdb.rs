//! [`BmcCmdb`]: configuration-item lookup in the BMC CMDB.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use secure_export_cmdb::{CiRecord, CiSource, CmdbLookup, LookupError};
use secure_export_itsm::ItsmError;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::BmcConfig;
use crate::session::{Call, Session};
use crate::wire::{encode_query, encode_segment, like};

const RECON_ID: &str = "ReconciliationIdentity";
/// Rows asked for per CMDB query (`limit`): a resource id matches one CI, a name a few; more
/// only makes a name ambiguous.
pub(crate) const CMDB_LIMIT: usize = 20;

/// Finds CIs through the CMDB instances endpoint
/// (`GET /api/cmdb/v1.0/instances/{dataset}/{namespace}/{class}?qualification=..&attributes=..`).
///
/// By resource id it matches the configured attribute (default `CloudID`), by name the `Name`
/// attribute, in each configured class ([`CmdbConfig::classes`](crate::CmdbConfig::classes)). [`CiRecord::id`] is the
/// CI's `ReconciliationIdentity` and [`CiRecord::class`] its class name; instances without a
/// reconciliation id are skipped (the incident could not reference them).
///
/// Matching ignores case (Azure lower-cases ids in some alerts, Discovery keeps Azure's
/// spelling): the qualification is `'CloudID' LIKE "<id>"` (AR's `=` is case-sensitive on
/// some databases; `LIKE` follows the database collation), and every returned instance is
/// re-checked here for exact equality ignoring ASCII case. On a case-sensitive database
/// collation only exact-case matches are found.
///
/// Alert text is chosen by whoever raises the alert, so it cannot shape the query: the value is
/// a double-quoted AR string (inner `"` doubled), its `LIKE` wildcards `%`, `[`, `]` (and `\`)
/// are each replaced by the one-character wildcard `_` (AR has no escape that works on every
/// database), so a value can match at most strings of its own length, and every query asks
/// for at most 20 rows (`limit=20`).
#[derive(Clone)]
pub struct BmcCmdb {
    session: Arc<Session>,
    config: Arc<BmcConfig>,
}

impl std::fmt::Debug for BmcCmdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BmcCmdb")
            .field("base_url", &self.session.base())
            .field("classes", &self.config.cmdb.classes)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct Instances {
    #[serde(default)]
    instances: Vec<Instance>,
}

#[derive(Debug, Deserialize)]
struct Instance {
    #[serde(default)]
    class_name_key: Option<ClassKey>,
    #[serde(default)]
    attributes: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct ClassKey {
    name: Option<String>,
}

impl BmcCmdb {
    /// A lookup with its own session (its own login). To share the connector's token use
    /// [`BmcConnector::cmdb`](crate::BmcConnector::cmdb).
    pub fn new(config: BmcConfig, client: reqwest::Client) -> Result<Self, ItsmError> {
        let base = config.validate()?;
        Ok(Self::from_parts(
            Arc::new(Session::new(&config, base, client)),
            Arc::new(config),
        ))
    }

    pub(crate) fn from_parts(session: Arc<Session>, config: Arc<BmcConfig>) -> Self {
        Self { session, config }
    }

    /// Queries one class for instances whose `attribute` equals `value`, ignoring case.
    async fn search(
        &self,
        class: &str,
        attribute: &str,
        value: &str,
        source: CiSource,
    ) -> Result<Vec<CiRecord>, ItsmError> {
        let cmdb = &self.config.cmdb;
        if value.trim().is_empty() || value.chars().any(char::is_control) {
            return Ok(Vec::new());
        }
        let mut attributes = vec![cmdb.name_attribute.as_str(), RECON_ID];
        if !attributes.contains(&attribute) {
            attributes.push(attribute);
        }
        let qualification = like(attribute, value);
        let path = format!(
            "/api/cmdb/v1.0/instances/{}/{}/{}?{}",
            encode_segment(&cmdb.dataset),
            encode_segment(&cmdb.namespace),
            encode_segment(class),
            encode_query(&[
                ("qualification", &qualification),
                ("attributes", &attributes.join(",")),
                ("limit", &CMDB_LIMIT.to_string()),
            ])
        );
        let reply = self
            .session
            .call(&Call {
                op: "cmdb_lookup",
                method: Method::GET,
                path,
                body: None,
            })
            .await?;
        let found: Instances = reply.json("cmdb_lookup")?;
        let text = |a: &Map<String, Value>, k: &str| {
            a.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Ok(found
            .instances
            .into_iter()
            .filter(|i| {
                text(&i.attributes, attribute).is_some_and(|v| v.eq_ignore_ascii_case(value))
            })
            .filter_map(|i| {
                let Some(id) = text(&i.attributes, RECON_ID) else {
                    tracing::debug!(event = "bmc.cmdb.no_recon_id", class);
                    return None;
                };
                let name = text(&i.attributes, &cmdb.name_attribute).unwrap_or_else(|| id.clone());
                let class = i
                    .class_name_key
                    .and_then(|k| k.name)
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| class.to_owned());
                Some(CiRecord {
                    id,
                    name,
                    class: Some(class),
                    source,
                })
            })
            .collect())
    }

    /// Searches `classes` in order, concatenating results without duplicates; with
    /// `first_hit`, stops at the first class that has a match.
    async fn search_all(
        &self,
        classes: &[String],
        attribute: &str,
        value: &str,
        source: CiSource,
        first_hit: bool,
    ) -> Result<Vec<CiRecord>, LookupError> {
        let mut all: Vec<CiRecord> = Vec::new();
        for class in classes {
            for record in self.search(class, attribute, value, source).await? {
                if !all.iter().any(|r| r.id == record.id) {
                    all.push(record);
                }
            }
            if first_hit && !all.is_empty() {
                break;
            }
        }
        Ok(all)
    }
}

#[async_trait]
impl CmdbLookup for BmcCmdb {
    /// Resource ids are unique: the search stops at the first class with a match.
    async fn by_resource_id(&self, resource_id: &str) -> Result<Vec<CiRecord>, LookupError> {
        let cmdb = &self.config.cmdb;
        self.search_all(
            &cmdb.classes,
            &cmdb.resource_id_attribute,
            resource_id,
            CiSource::ResourceId,
            true,
        )
        .await
    }

    /// A `class_hint` naming a BMC class (`BMC_...`) restricts the search to that class; other
    /// hints (such as Azure resource types) are ignored.
    async fn by_name(
        &self,
        name: &str,
        class_hint: Option<&str>,
    ) -> Result<Vec<CiRecord>, LookupError> {
        let cmdb = &self.config.cmdb;
        let hinted: Vec<String> = class_hint
            .filter(|h| {
                h.starts_with("BMC_") && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .map(|h| vec![h.to_owned()])
            .unwrap_or_default();
        let classes = if hinted.is_empty() {
            &cmdb.classes
        } else {
            &hinted
        };
        self.search_all(classes, &cmdb.name_attribute, name, CiSource::Name, false)
            .await
    }
}
