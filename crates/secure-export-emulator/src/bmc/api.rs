//! HTTP side of the BMC emulator: JWT login/logout, the entry API, the CMDB instances API.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::Method;
use serde_json::{Map, Value, json};

use super::BmcOptions;
use super::qualification::Qual;
use super::store::{ArError, CREATE_FORM, Entry, HELP_DESK, INTERFACE_FORM, Store, WORK_LOG};
use super::vocabulary::{HELP_DESK_FIELDS, WORK_LOG_FIELDS};
use crate::server::{Api, ApiRequest, ApiResponse};

/// The BMC API served over HTTP.
#[derive(Debug)]
pub(crate) struct BmcApi {
    pub(crate) store: Arc<Mutex<Store>>,
    pub(crate) opts: BmcOptions,
    pub(crate) base_url: String,
}

/// The AR error array body.
pub(crate) fn ar_error(err: &ArError) -> ApiResponse {
    ApiResponse::json(
        err.status,
        &json!([{
            "messageType": "ERROR",
            "messageText": err.text,
            "messageAppendedText": err.appended,
            "messageNumber": err.number,
        }]),
    )
}

fn auth_failed(appended: &str) -> ApiResponse {
    ar_error(&ArError::new(401, 623, "Authentication failed", appended))
}

/// Percent-encode a path segment (keeps unreserved characters and `:`).
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parse `values(A,B)` into field names.
fn parse_fields(fields: Option<&str>) -> Result<Option<Vec<String>>, ArError> {
    let Some(spec) = fields else {
        return Ok(None);
    };
    let inner = spec
        .trim()
        .strip_prefix("values(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| {
            ArError::new(
                400,
                8790,
                "Invalid fields parameter; expected values(Field 1,Field 2)",
                spec,
            )
        })?;
    Ok(Some(
        inner
            .split(',')
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .collect(),
    ))
}

fn select(entry: &Entry, fields: Option<&[String]>) -> Value {
    match fields {
        None => Value::Object(entry.clone()),
        Some(fields) => Value::Object(
            fields
                .iter()
                .filter_map(|f| entry.get(f).map(|v| (f.clone(), v.clone())))
                .collect::<Map<String, Value>>(),
        ),
    }
}

fn is_form(form: &str) -> bool {
    [HELP_DESK, CREATE_FORM, INTERFACE_FORM, WORK_LOG].contains(&form)
}

impl BmcApi {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn entry_href(&self, form: &str, id: &str) -> String {
        format!(
            "{}/api/arsys/v1/entry/{}/{}",
            self.base_url,
            encode_segment(form),
            encode_segment(id)
        )
    }

    fn token_user(&self, req: &ApiRequest) -> Option<String> {
        let header = req.header("authorization")?;
        let token = header.strip_prefix("AR-JWT ")?.trim();
        self.store().tokens.user_for(token).map(str::to_owned)
    }

    fn login(&self, req: &ApiRequest) -> ApiResponse {
        let is_form = req.header("content-type").is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
        if !is_form {
            return auth_failed(
                "login needs an application/x-www-form-urlencoded body with username and password",
            );
        }
        let form: BTreeMap<String, String> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        let user = form.get("username").map(String::as_str).unwrap_or_default();
        let pass = form.get("password").map(String::as_str).unwrap_or_default();
        if user != self.opts.username || pass != self.opts.password {
            return auth_failed(user);
        }
        let token = self.store().tokens.issue(user, self.opts.token_lifetime);
        ApiResponse::text(200, "text/plain;charset=UTF-8", token)
    }

    fn logout(&self, req: &ApiRequest) -> ApiResponse {
        let token = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("AR-JWT "))
            .map(str::trim)
            .unwrap_or_default();
        let mut store = self.store();
        if store.tokens.user_for(token).is_none() {
            return auth_failed("");
        }
        store.tokens.revoke(token);
        ApiResponse::empty(204)
    }

    fn body_values(req: &ApiRequest) -> Result<Entry, ArError> {
        let parsed: Value = serde_json::from_slice(&req.body).map_err(|e| {
            ArError::new(
                400,
                8789,
                "The request body is not valid JSON",
                e.to_string(),
            )
        })?;
        match parsed.get("values") {
            Some(Value::Object(values)) => Ok(values.clone()),
            _ => Err(ArError::new(
                400,
                8789,
                "The request body must be an object with a \"values\" object",
                "",
            )),
        }
    }

    fn entry_route(
        &self,
        req: &ApiRequest,
        form: &str,
        id: Option<&str>,
        user: &str,
    ) -> Result<ApiResponse, ArError> {
        if !is_form(form) {
            return Err(ArError::new(
                404,
                303,
                "Form does not exist on server",
                form,
            ));
        }
        let fields = parse_fields(req.param("fields"))?;
        match (req.method.clone(), id) {
            (Method::GET, None) => self.list(req, form, fields.as_deref()),
            (Method::GET, Some(id)) => {
                let store = self.store();
                let mut entry = store.entry(form, id).cloned().ok_or_else(|| {
                    ArError::new(
                        404,
                        302,
                        "Entry does not exist in database",
                        format!("{form} : {id}"),
                    )
                })?;
                if form == INTERFACE_FORM {
                    entry.insert("Request ID".to_owned(), Value::String(id.to_owned()));
                }
                Ok(ApiResponse::json(
                    200,
                    &json!({"values": select(&entry, fields.as_deref()), "_links": {"self": [{"href": self.entry_href(form, id)}]}}),
                ))
            }
            (Method::POST, None) => {
                let values = Self::body_values(req)?;
                let mut store = self.store();
                let id = match form {
                    CREATE_FORM => store.create_incident(values, user)?,
                    WORK_LOG => store.create_work_log(values, user)?,
                    _ => {
                        return Err(ArError::new(
                            400,
                            8790,
                            "The emulator creates incidents only through HPD:IncidentInterface_Create",
                            form,
                        ));
                    }
                };
                let href = self.entry_href(form, &id);
                let Some(fields) = fields else {
                    return Ok(ApiResponse::empty(201).with_header("Location", href));
                };
                let entry = store.entry(form, &id).cloned().unwrap_or_default();
                Ok(ApiResponse::json(
                    201,
                    &json!({"values": select(&entry, Some(&fields)), "_links": {"self": [{"href": href}]}}),
                )
                .with_header("Location", href))
            }
            (Method::PUT, Some(id)) => {
                let values = Self::body_values(req)?;
                let mut store = self.store();
                match form {
                    INTERFACE_FORM | HELP_DESK => store.update_incident(form, id, values, user)?,
                    _ => store.update_generic(form, id, values)?,
                }
                Ok(ApiResponse::empty(204))
            }
            (Method::DELETE, Some(id)) => {
                if self.store().delete(form, id) {
                    Ok(ApiResponse::empty(204))
                } else {
                    Err(ArError::new(
                        404,
                        302,
                        "Entry does not exist in database",
                        format!("{form} : {id}"),
                    ))
                }
            }
            _ => Err(ArError::new(
                405,
                8791,
                "Method not allowed on this resource",
                req.method.as_str(),
            )),
        }
    }

    fn list(
        &self,
        req: &ApiRequest,
        form: &str,
        fields: Option<&[String]>,
    ) -> Result<ApiResponse, ArError> {
        let store = self.store();
        let stored_form = if form == INTERFACE_FORM {
            HELP_DESK
        } else {
            form
        };
        let entries = store.entries(stored_form);
        let qual = match req.param("q") {
            Some(q) if !q.trim().is_empty() => {
                let qual = Qual::parse(q).map_err(|e| {
                    ArError::new(400, 1587, "The qualification line is invalid", e.message)
                })?;
                let standard: &[&str] = match stored_form {
                    HELP_DESK => HELP_DESK_FIELDS,
                    WORK_LOG => WORK_LOG_FIELDS,
                    _ => &["Request ID", "Incident Number"],
                };
                for field in qual.fields() {
                    let known = standard.contains(&field.as_str())
                        || entries.iter().any(|e| e.contains_key(&field));
                    if !known {
                        return Err(ArError::new(
                            400,
                            314,
                            "Field does not exist on current form",
                            format!("{form} : {field}"),
                        ));
                    }
                }
                Some(qual)
            }
            _ => None,
        };
        let mut rows: Vec<Entry> = entries
            .iter()
            .filter(|e| {
                qual.as_ref()
                    .is_none_or(|q| q.matches(&|f| e.get(f).cloned()))
            })
            .cloned()
            .collect();
        if let Some(sort) = req.param("sort") {
            let keys: Vec<(String, bool)> = sort
                .split(',')
                .filter_map(|k| {
                    let k = k.trim();
                    if let Some(f) = k.strip_suffix(".desc") {
                        Some((f.to_owned(), true))
                    } else {
                        let f = k.strip_suffix(".asc").unwrap_or(k);
                        (!f.is_empty()).then(|| (f.to_owned(), false))
                    }
                })
                .collect();
            rows.sort_by(|a, b| {
                for (f, desc) in &keys {
                    let text = |e: &Entry| {
                        e.get(f)
                            .map(|v| {
                                v.as_str()
                                    .map(str::to_owned)
                                    .unwrap_or_else(|| v.to_string())
                            })
                            .unwrap_or_default()
                    };
                    let ord = text(a).cmp(&text(b));
                    let ord = if *desc { ord.reverse() } else { ord };
                    if ord.is_ne() {
                        return ord;
                    }
                }
                std::cmp::Ordering::Equal
            });
        }
        let offset = req
            .param("offset")
            .and_then(|o| o.parse::<usize>().ok())
            .unwrap_or(0);
        let limit = req
            .param("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(usize::MAX);
        let id_field = Store::id_field(stored_form);
        let list: Vec<Value> = rows
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|mut e| {
                let raw_id = e.get(id_field).and_then(Value::as_str).unwrap_or_default().to_owned();
                let id = if form == INTERFACE_FORM { format!("{raw_id}|{raw_id}") } else { raw_id };
                if form == INTERFACE_FORM {
                    e.insert("Request ID".to_owned(), Value::String(id.clone()));
                }
                json!({"values": select(&e, fields), "_links": {"self": [{"href": self.entry_href(form, &id)}]}})
            })
            .collect();
        Ok(ApiResponse::json(
            200,
            &json!({"entries": list, "_links": {"self": [{"href": format!("{}/api/arsys/v1/entry/{}", self.base_url, encode_segment(form))}]}}),
        ))
    }
}

impl Api for BmcApi {
    fn handle(&self, req: &ApiRequest) -> ApiResponse {
        let segs = req.segs();
        match segs.as_slice() {
            ["api", "jwt", "login"] if req.method == Method::POST => return self.login(req),
            ["api", "jwt", "logout"] if req.method == Method::POST => return self.logout(req),
            _ => {}
        }
        let Some(user) = self.token_user(req) else {
            return auth_failed("");
        };
        let result = match segs.as_slice() {
            ["api", "arsys", "v1" | "v1.0", "entry", form] => {
                self.entry_route(req, form, None, &user)
            }
            ["api", "arsys", "v1" | "v1.0", "entry", form, id] => {
                self.entry_route(req, form, Some(id), &user)
            }
            ["api", "cmdb", "v1.0", "instances", ds, ns, class] => {
                self.cmdb(req, ds, ns, class, None)
            }
            ["api", "cmdb", "v1.0", "instances", ds, ns, class, id] => {
                self.cmdb(req, ds, ns, class, Some(id))
            }
            _ => Err(ArError::new(
                404,
                8792,
                "The requested resource does not exist",
                segs.join("/"),
            )),
        };
        result.unwrap_or_else(|e| ar_error(&e))
    }

    fn fault_error(&self, status: u16) -> ApiResponse {
        ar_error(&ArError::new(
            status,
            8760,
            "Injected failure",
            format!("HTTP {status} injected by the emulator's fault settings"),
        ))
    }

    fn rate_limited(&self) -> ApiResponse {
        ar_error(&ArError::new(
            429,
            8761,
            "Too many requests",
            "rate limit of the emulated server exceeded",
        ))
    }
}
