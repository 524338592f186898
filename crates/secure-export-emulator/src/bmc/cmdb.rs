//! The CMDB instances endpoint
//! (`/api/cmdb/v1.0/instances/{dataset}/{namespace}/{class}[/{instance_id}]`).

use std::collections::BTreeMap;

use http::Method;
use serde_json::{Map, Value, json};

use super::api::BmcApi;
use super::qualification::Qual;
use super::store::ArError;
use crate::server::{ApiRequest, ApiResponse};

/// The namespace of the emulated CMDB classes.
pub(crate) const NAMESPACE: &str = "BMC.CORE";
/// The production dataset.
pub(crate) const DATASET: &str = "BMC.ASSET";

impl BmcApi {
    /// Handle a CMDB instances request.
    pub(crate) fn cmdb(
        &self,
        req: &ApiRequest,
        dataset: &str,
        namespace: &str,
        class: &str,
        instance: Option<&str>,
    ) -> Result<ApiResponse, ArError> {
        if req.method != Method::GET {
            return Err(ArError::new(
                405,
                8791,
                "Method not allowed on this resource",
                req.method.as_str(),
            ));
        }
        let store = self.store();
        let known_class = class == "BMC_BaseElement"
            || store.cmdb.contains_key(class)
            || super::CMDB_CLASSES.contains(&class);
        if namespace != NAMESPACE || !known_class {
            return Err(ArError::new(
                404,
                120_004,
                "Class does not exist",
                format!("{namespace}:{class}"),
            ));
        }
        let rows: Vec<(&String, &BTreeMap<String, String>)> = if dataset == DATASET {
            store
                .cmdb
                .iter()
                .filter(|(c, _)| class == "BMC_BaseElement" || c.as_str() == class)
                .flat_map(|(c, list)| list.iter().map(move |i| (c, i)))
                .collect()
        } else {
            Vec::new()
        };
        let render = |(c, attrs): (&String, &BTreeMap<String, String>),
                      wanted: Option<&[String]>| {
            let id = attrs.get("InstanceId").cloned().unwrap_or_default();
            let attributes: Map<String, Value> = attrs
                .iter()
                .filter(|(k, _)| wanted.is_none_or(|w| w.iter().any(|x| x == *k)))
                .map(|(k, v)| {
                    (
                        k.clone(),
                        if v.is_empty() {
                            Value::Null
                        } else {
                            Value::String(v.clone())
                        },
                    )
                })
                .collect();
            json!({
                "instance_id": id,
                "class_name_key": {"name": c, "namespace": NAMESPACE},
                "dataset_id": dataset,
                "attributes": attributes,
                "_links": {"self": [{"href": format!("{}/api/cmdb/v1.0/instances/{dataset}/{NAMESPACE}/{c}/{id}", self.base_url)}]},
            })
        };
        let wanted: Option<Vec<String>> = req.param("attributes").map(|a| {
            a.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        });
        if let Some(id) = instance {
            let found = rows
                .into_iter()
                .find(|(_, a)| a.get("InstanceId").is_some_and(|i| i == id))
                .ok_or_else(|| {
                    ArError::new(
                        404,
                        120_002,
                        "Instance does not exist",
                        format!("{class} : {id}"),
                    )
                })?;
            return Ok(ApiResponse::json(200, &render(found, wanted.as_deref())));
        }
        let qual = match req.param("qualification") {
            Some(q) if !q.trim().is_empty() => {
                let qual = Qual::parse(q).map_err(|e| {
                    ArError::new(400, 1587, "The qualification line is invalid", e.message)
                })?;
                for field in qual.fields() {
                    let known = rows.iter().any(|(_, a)| a.contains_key(&field))
                        || super::CMDB_ATTRIBUTES.contains(&field.as_str());
                    if !known {
                        return Err(ArError::new(
                            400,
                            314,
                            "Field does not exist on current form",
                            format!("{class} : {field}"),
                        ));
                    }
                }
                Some(qual)
            }
            _ => None,
        };
        let matched: Vec<_> = rows
            .into_iter()
            .filter(|(_, a)| {
                qual.as_ref()
                    .is_none_or(|q| q.matches(&|f| a.get(f).map(|v| Value::String(v.clone()))))
            })
            .collect();
        let total = matched.len();
        let offset = req
            .param("offset")
            .and_then(|o| o.parse::<usize>().ok())
            .unwrap_or(0);
        let limit = req
            .param("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(usize::MAX);
        let instances: Vec<Value> = matched
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|r| render(r, wanted.as_deref()))
            .collect();
        let mut body = json!({"instances": instances});
        if req
            .param("num_matches")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            && let Some(obj) = body.as_object_mut()
        {
            obj.insert("num_matches".to_owned(), json!(total));
        }
        Ok(ApiResponse::json(200, &body))
    }
}
