//! The [`Alert`] envelope: parsing, serialization and helpers.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::context::{AlertContext, ContextSource};
use crate::enums::MonitorCondition;
use crate::error::SchemaError;
use crate::essentials::Essentials;
use crate::key::Key;
use crate::legacy;
use crate::resource_id::ResourceId;

/// The `schemaId` of the common alert schema.
pub const COMMON_SCHEMA_ID: &str = "azureMonitorCommonAlertSchema";

/// Largest body [`Alert::from_slice`] accepts: 4 MiB. Azure caps a common-schema alert at
/// 256 KB; the headroom covers legacy payloads with embedded search results.
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;

/// Deepest JSON nesting accepted (the same as serde_json's own recursion limit).
pub const MAX_DEPTH: usize = 128;

/// The payload format an [`Alert`] was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourceSchema {
    /// The common alert schema (`azureMonitorCommonAlertSchema`).
    CommonAlertSchema,
    /// Legacy metric alert (`AzureMonitorMetricAlert`, data.version 2.0).
    MetricAlertV2,
    /// Legacy log search alert v1: a flat PascalCase object (Log Analytics).
    LogAlertV1,
    /// Legacy Application Insights log alert (`Microsoft.Insights/LogAlert`).
    LogAlertV1ApplicationInsights,
    /// Legacy activity log alert (`Microsoft.Insights/activityLogs`).
    ActivityLog,
    /// Legacy budget notification (`AIP Budget Notification`).
    BudgetNotification,
    /// Classic (retired) metric alert.
    ClassicMetricAlert,
}

impl SourceSchema {
    /// A stable snake_case name: `"common_alert_schema"`, `"metric_alert_v2"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CommonAlertSchema => "common_alert_schema",
            Self::MetricAlertV2 => "metric_alert_v2",
            Self::LogAlertV1 => "log_alert_v1",
            Self::LogAlertV1ApplicationInsights => "log_alert_v1_application_insights",
            Self::ActivityLog => "activity_log",
            Self::BudgetNotification => "budget_notification",
            Self::ClassicMetricAlert => "classic_metric_alert",
        }
    }
}

impl fmt::Display for SourceSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A dimension that names a resource (`_ResourceId`, `ResourceId`, `Resource`, `Computer`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceDimension {
    /// Dimension name as received.
    pub name: String,
    /// Dimension value.
    pub value: String,
}

/// Dimension names that identify a resource, in Azure's priority order.
const RESOURCE_DIMENSIONS: [&str; 4] = ["_ResourceId", "ResourceId", "Resource", "Computer"];

/// An Azure Monitor alert in the common alert schema.
///
/// Serializing an `Alert` writes the common alert schema with every member that came in,
/// including members this crate does not model (legacy payloads are written in their
/// common-schema form). Values are canonicalised on the way (`"ActivityLog"` is written
/// `"Activity Log"`, timestamps in RFC 3339 UTC), and when a key appears twice the last
/// occurrence wins, so after one round trip serialization is a fixpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// `schemaId` (`azureMonitorCommonAlertSchema`).
    pub schema_id: String,
    /// `data.essentials`.
    pub essentials: Essentials,
    /// `data.alertContext`, typed per monitoring service.
    pub alert_context: AlertContext,
    /// `data.customProperties` (`None` when null or absent).
    pub custom_properties: Option<BTreeMap<String, Value>>,
    source_schema: SourceSchema,
    warnings: Vec<String>,
    extra: BTreeMap<String, Value>,
    data_extra: BTreeMap<String, Value>,
}

impl Alert {
    /// A common-schema alert from its parts.
    pub fn new(essentials: Essentials, alert_context: AlertContext) -> Self {
        Self {
            schema_id: COMMON_SCHEMA_ID.to_owned(),
            essentials,
            alert_context,
            custom_properties: None,
            source_schema: SourceSchema::CommonAlertSchema,
            warnings: Vec::new(),
            extra: BTreeMap::new(),
            data_extra: BTreeMap::new(),
        }
    }

    /// Parses a request body: the common alert schema or any supported legacy format.
    ///
    /// Bodies over [`MAX_PAYLOAD_BYTES`] and nesting deeper than [`MAX_DEPTH`] are
    /// rejected. Never panics.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, SchemaError> {
        Self::from_slice_with_limit(bytes, MAX_PAYLOAD_BYTES)
    }

    /// [`Alert::from_slice`] with a custom body size limit in bytes.
    pub fn from_slice_with_limit(bytes: &[u8], limit: usize) -> Result<Self, SchemaError> {
        if bytes.len() > limit {
            return Err(SchemaError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        // Fast path: no path tracking, the context borrowed as raw text and decoded once
        // its monitoring service is known.
        match serde_json::from_slice::<Envelope<&RawValue>>(bytes) {
            Ok(envelope) => Self::from_envelope(envelope.map_context(ContextSource::Raw)),
            Err(fast) => Err(Self::locate_error(bytes, &fast)),
        }
    }

    /// Cold path: decodes again with path tracking to name where the body is wrong.
    fn locate_error(bytes: &[u8], fast: &serde_json::Error) -> SchemaError {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        match serde_path_to_error::deserialize::<_, Envelope<Value>>(&mut de) {
            Err(err) => SchemaError::from_tracked(err),
            Ok(_) => match de.end() {
                Err(e) => SchemaError::from_json(".".to_owned(), &e),
                Ok(()) => SchemaError::from_json(".".to_owned(), fast),
            },
        }
    }

    /// Converts an already parsed JSON value (common schema or legacy).
    pub fn from_value(value: Value) -> Result<Self, SchemaError> {
        if let Some(path) = too_deep(&value) {
            return Err(SchemaError::InvalidValue {
                path,
                message: format!("nesting exceeds the limit of {MAX_DEPTH} levels"),
            });
        }
        let envelope: Envelope<Value> =
            serde_path_to_error::deserialize(value).map_err(SchemaError::from_tracked)?;
        Self::from_envelope(envelope.map_context(ContextSource::Value))
    }

    fn from_envelope(envelope: Envelope<ContextSource<'_>>) -> Result<Self, SchemaError> {
        let Envelope {
            schema_id,
            data,
            extra,
        } = envelope;
        let mut data = match data {
            Some(data) if data.essentials.is_some() => data,
            data => {
                let whole = reassemble(schema_id, data, extra)?;
                return match legacy::convert(&whole) {
                    Some((source, common)) => {
                        let mut alert = Self::from_value(common)?;
                        alert.source_schema = source;
                        Ok(alert)
                    }
                    None => Err(SchemaError::missing(if whole.get("data").is_some() {
                        "data.essentials"
                    } else {
                        "data"
                    })),
                };
            }
        };
        let mut warnings = Vec::new();
        let schema_id = match schema_id {
            Some(Value::String(s)) => {
                if s != COMMON_SCHEMA_ID {
                    warnings.push(format!(
                        "schemaId is `{s}`, expected `{COMMON_SCHEMA_ID}`; decoded as the common alert schema"
                    ));
                }
                s
            }
            other => {
                warnings.push(format!(
                    "schemaId is {}; decoded as the common alert schema",
                    other.map_or_else(|| "absent".to_owned(), |v| format!("not a string ({v})"))
                ));
                COMMON_SCHEMA_ID.to_owned()
            }
        };
        let essentials = data
            .essentials
            .take()
            .ok_or_else(|| SchemaError::missing("data.essentials"))?;
        let alert_context = match data.alert_context.take() {
            Some(value) => {
                AlertContext::decode(essentials.monitoring_service.as_ref(), value, &mut warnings)?
            }
            None => {
                warnings.push("data.alertContext is absent".to_owned());
                AlertContext::Unknown(Value::Null)
            }
        };
        let custom_properties = match data.custom_properties.take() {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map.into_iter().collect()),
            Some(other) => {
                warnings
                    .push("data.customProperties is not an object; kept as received".to_owned());
                data.extra.insert("customProperties".to_owned(), other);
                None
            }
        };
        for (i, id) in essentials.alert_target_ids.iter().flatten().enumerate() {
            if let Err(err) = ResourceId::parse(id) {
                warnings.push(format!(
                    "data.essentials.alertTargetIDs[{i}] is not an ARM resource id: {err}"
                ));
            }
        }
        Ok(Self {
            schema_id,
            essentials,
            alert_context,
            custom_properties,
            source_schema: SourceSchema::CommonAlertSchema,
            warnings,
            extra,
            data_extra: data.extra,
        })
    }

    /// The format the payload arrived in.
    pub fn source_schema(&self) -> SourceSchema {
        self.source_schema
    }

    /// Non-fatal findings, for example why the context fell back to
    /// [`AlertContext::Unknown`] or which target id is malformed. Callers should log them.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The parsed `alertTargetIDs`; ids that are not ARM ids are skipped (each has a
    /// warning).
    pub fn target_resource_ids(&self) -> Vec<ResourceId> {
        self.essentials
            .alert_target_ids
            .iter()
            .flatten()
            .filter_map(|id| ResourceId::parse(id).ok())
            .collect()
    }

    /// Every subscription the alert names, lowercase, for a subscription allow-list: the
    /// subscription of each `alertTargetIDs` entry, of `alertRuleId`, and of `alertId` when it is
    /// an ARM id (budget and cost alerts name their subscription only there).
    ///
    /// Fails closed: `Err` names the first target or rule id that is not an ARM id, since an
    /// allow-list cannot vouch for what it cannot read. An empty set means the alert names no
    /// subscription at all.
    pub fn subscription_ids(&self) -> Result<std::collections::BTreeSet<String>, String> {
        let mut out = std::collections::BTreeSet::new();
        let required = self
            .essentials
            .alert_target_ids
            .iter()
            .flatten()
            .map(|id| ("alertTargetIDs", id.as_str()))
            .chain(
                self.essentials
                    .alert_rule_id
                    .as_deref()
                    .map(|id| ("alertRuleId", id)),
            );
        for (field, id) in required {
            let parsed = ResourceId::parse(id).map_err(|e| {
                let shown: String = id.chars().take(200).collect();
                format!("{field} entry {shown:?} is not an ARM resource id ({e})")
            })?;
            out.insert(parsed.subscription_id().to_ascii_lowercase());
        }
        if let Some(Ok(id)) = self.essentials.alert_id.as_deref().map(ResourceId::parse) {
            out.insert(id.subscription_id().to_ascii_lowercase());
        }
        Ok(out)
    }

    /// The `configurationItems` (resource names); empty when absent.
    pub fn configuration_items(&self) -> &[String] {
        self.essentials
            .configuration_items
            .as_deref()
            .unwrap_or(&[])
    }

    /// Dimensions that name resources, ordered `_ResourceId`, `ResourceId`, `Resource`,
    /// `Computer` (names matched ignoring ASCII case), duplicates and empty values removed.
    pub fn resource_dimensions(&self) -> Vec<ResourceDimension> {
        let dims = self.alert_context.dimensions();
        let mut out: Vec<ResourceDimension> = Vec::new();
        for wanted in RESOURCE_DIMENSIONS {
            for dim in &dims {
                let (Some(name), Some(value)) = (&dim.name, &dim.value) else {
                    continue;
                };
                if !name.eq_ignore_ascii_case(wanted) {
                    continue;
                }
                let value = value.to_string();
                if value.trim().is_empty() {
                    continue;
                }
                let candidate = ResourceDimension {
                    name: name.clone(),
                    value,
                };
                if !out.contains(&candidate) {
                    out.push(candidate);
                }
            }
        }
        out
    }

    /// The context variant's name (see [`AlertContext::kind`]).
    pub fn context_kind(&self) -> &'static str {
        self.alert_context.kind()
    }

    /// `resolvedDateTime` when the alert is Resolved (falling back to `firedDateTime` if
    /// Azure omitted it), otherwise `firedDateTime`.
    pub fn event_time(&self) -> Option<DateTime<Utc>> {
        match self.essentials.monitor_condition {
            MonitorCondition::Resolved => self
                .essentials
                .resolved_date_time
                .or(self.essentials.fired_date_time),
            _ => self.essentials.fired_date_time,
        }
    }

    /// Top-level members other than `schemaId` and `data`, as received.
    pub fn extra(&self) -> &BTreeMap<String, Value> {
        &self.extra
    }

    /// Members of `data` other than `essentials`, `alertContext` and `customProperties`.
    pub fn data_extra(&self) -> &BTreeMap<String, Value> {
        &self.data_extra
    }
}

impl Serialize for Alert {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct DataSer<'a>(&'a Alert);

        impl Serialize for DataSer<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let alert = self.0;
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("essentials", &alert.essentials)?;
                map.serialize_entry("alertContext", &alert.alert_context)?;
                if alert.custom_properties.is_some()
                    || !alert.data_extra.contains_key("customProperties")
                {
                    map.serialize_entry("customProperties", &alert.custom_properties)?;
                }
                for (k, v) in &alert.data_extra {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }

        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("schemaId", &self.schema_id)?;
        map.serialize_entry("data", &DataSer(self))?;
        for (k, v) in &self.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for Alert {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let envelope = Envelope::<Value>::deserialize(deserializer)?;
        Self::from_envelope(envelope.map_context(ContextSource::Value)).map_err(de::Error::custom)
    }
}

/// Returns the path of the first node nested deeper than [`MAX_DEPTH`], without recursion.
fn too_deep(value: &Value) -> Option<String> {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(o) => Box::new(o.values()),
            _ => continue,
        };
        if depth + 1 > MAX_DEPTH {
            return Some(".".to_owned());
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    None
}

/// Rebuilds the whole document as a value for legacy detection.
fn reassemble(
    schema_id: Option<Value>,
    data: Option<Data<ContextSource<'_>>>,
    extra: BTreeMap<String, Value>,
) -> Result<Value, SchemaError> {
    let mut whole = serde_json::Map::new();
    if let Some(schema_id) = schema_id {
        whole.insert("schemaId".to_owned(), schema_id);
    }
    if let Some(data) = data {
        let mut d: serde_json::Map<String, Value> = data.extra.into_iter().collect();
        if let Some(ctx) = data.alert_context {
            d.insert("alertContext".to_owned(), ctx.into_value()?);
        }
        if let Some(cp) = data.custom_properties {
            d.insert("customProperties".to_owned(), cp);
        }
        whole.insert("data".to_owned(), Value::Object(d));
    }
    whole.extend(extra);
    Ok(Value::Object(whole))
}

/// First-pass view of the document; `C` holds the undecoded `alertContext`.
#[derive(Debug)]
struct Envelope<C> {
    schema_id: Option<Value>,
    data: Option<Data<C>>,
    extra: BTreeMap<String, Value>,
}

/// First-pass view of `data`.
#[derive(Debug)]
struct Data<C> {
    essentials: Option<Essentials>,
    alert_context: Option<C>,
    custom_properties: Option<Value>,
    extra: BTreeMap<String, Value>,
}

impl<C> Envelope<C> {
    fn map_context<D>(self, f: impl FnOnce(C) -> D) -> Envelope<D> {
        Envelope {
            schema_id: self.schema_id,
            data: self.data.map(|d| Data {
                essentials: d.essentials,
                alert_context: d.alert_context.map(f),
                custom_properties: d.custom_properties,
                extra: d.extra,
            }),
            extra: self.extra,
        }
    }
}

impl<'de, C: serde::Deserialize<'de>> serde::Deserialize<'de> for Envelope<C> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvelopeVisitor<C>(PhantomData<C>);

        impl<'de, C: serde::Deserialize<'de>> Visitor<'de> for EnvelopeVisitor<C> {
            type Value = Envelope<C>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object with `schemaId` and `data`")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<C>, A::Error> {
                let mut out = Envelope {
                    schema_id: None,
                    data: None,
                    extra: BTreeMap::new(),
                };
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    match key.as_str() {
                        "schemaId" => out.schema_id = Some(map.next_value()?),
                        "data" => out.data = map.next_value_seed(DataSeed(PhantomData))?,
                        _ => {
                            let value = map.next_value::<Value>()?;
                            out.extra.insert(key.into_string(), value);
                        }
                    }
                }
                Ok(out)
            }
        }

        deserializer.deserialize_map(EnvelopeVisitor(PhantomData))
    }
}

/// Decodes `data`; `null` gives `None`.
struct DataSeed<C>(PhantomData<C>);

impl<'de, C: serde::Deserialize<'de>> DeserializeSeed<'de> for DataSeed<C> {
    type Value = Option<Data<C>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, C: serde::Deserialize<'de>> Visitor<'de> for DataSeed<C> {
    type Value = Option<Data<C>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the `data` object")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Data {
            essentials: None,
            alert_context: None,
            custom_properties: None,
            extra: BTreeMap::new(),
        };
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "essentials" => out.essentials = Some(map.next_value()?),
                "alertContext" => out.alert_context = Some(map.next_value()?),
                "customProperties" => out.custom_properties = Some(map.next_value()?),
                _ => {
                    let value = map.next_value::<Value>()?;
                    out.extra.insert(key.into_string(), value);
                }
            }
        }
        Ok(Some(out))
    }
}
