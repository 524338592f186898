//! HTTP side of the ServiceNow emulator: routing, authentication, the Table API.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::Engine as _;
use http::Method;
use serde_json::{Map, Value, json};

use super::ServiceNowOptions;
use super::oauth::OAuthConfig;
use super::query::{Condition, EncodedQuery, Op};
use super::schema;
use super::store::{Rec, Store};
use crate::server::{Api, ApiRequest, ApiResponse};

/// Default `sysparm_limit`.
const DEFAULT_LIMIT: usize = 10_000;

/// The ServiceNow API served over HTTP.
#[derive(Debug)]
pub(crate) struct SnApi {
    pub(crate) store: Arc<Mutex<Store>>,
    pub(crate) opts: ServiceNowOptions,
    pub(crate) base_url: String,
}

/// The `{"error":{"message","detail"},"status":"failure"}` envelope.
pub(crate) fn sn_error(status: u16, message: &str, detail: Option<&str>) -> ApiResponse {
    ApiResponse::json(
        status,
        &json!({"error": {"message": message, "detail": detail}, "status": "failure"}),
    )
}

fn not_found() -> ApiResponse {
    sn_error(
        404,
        "No Record found",
        Some("Record doesn't exist or ACL restricts the record retrieval"),
    )
}

fn unauthenticated() -> ApiResponse {
    sn_error(
        401,
        "User is not authenticated",
        Some("Required to provide Auth information"),
    )
    .with_header("WWW-Authenticate", "BASIC realm=\"Service-now\"")
}

fn truthy(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

impl SnApi {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The user name the request authenticates as, if any.
    fn authenticate(&self, req: &ApiRequest) -> Option<String> {
        let header = req.header("authorization")?;
        let (scheme, rest) = header.split_once(' ')?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (user, pass) = decoded.split_once(':')?;
            (user == self.opts.username && pass == self.opts.password).then(|| user.to_owned())
        } else if scheme.eq_ignore_ascii_case("bearer") {
            self.store().tokens.user_for(rest).map(str::to_owned)
        } else {
            None
        }
    }

    fn oauth(&self, req: &ApiRequest) -> ApiResponse {
        if req.method != Method::POST {
            return sn_error(405, "Method not allowed", None);
        }
        let cfg = OAuthConfig {
            client_id: &self.opts.oauth_client_id,
            client_secret: &self.opts.oauth_client_secret,
            username: &self.opts.username,
            password: &self.opts.password,
            access_lifetime: self.opts.token_lifetime,
            refresh_lifetime: self.opts.refresh_token_lifetime,
            password_grant: self.opts.password_grant,
            client_credentials_grant: self.opts.client_credentials_grant,
        };
        self.store().tokens.token_endpoint(req, &cfg)
    }

    fn link(&self, table: &str, sys_id: &str) -> String {
        format!("{}/api/now/table/{table}/{sys_id}", self.base_url)
    }

    /// Render a record as the Table API returns it.
    fn render(&self, store: &Store, table: &str, rec: &Rec, req: &ApiRequest) -> Value {
        let exclude_links = truthy(req.param("sysparm_exclude_reference_link"));
        let wanted: Option<Vec<&str>> = req.param("sysparm_fields").map(|f| {
            f.split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .collect()
        });
        let display = req.param("sysparm_display_value").unwrap_or("false");
        let rendered = |field: &str, value: &str| {
            let reference = schema::reference_target(table, field);
            let shown = || match reference {
                Some(target) if !value.is_empty() => store.display_of(target, value),
                Some(_) => String::new(),
                None => schema::choice_label(table, field, value)
                    .map_or_else(|| value.to_owned(), str::to_owned),
            };
            let link = match reference {
                Some(target) if !value.is_empty() && !exclude_links => {
                    Some(self.link(target, value))
                }
                _ => None,
            };
            match (display.to_ascii_lowercase().as_str(), link) {
                ("true", Some(link)) => json!({"display_value": shown(), "link": link}),
                ("true", None) => Value::String(shown()),
                ("all", Some(link)) => {
                    json!({"display_value": shown(), "value": value, "link": link})
                }
                ("all", None) => json!({"display_value": shown(), "value": value}),
                (_, Some(link)) => json!({"link": link, "value": value}),
                (_, None) => Value::String(value.to_owned()),
            }
        };
        let mut out = Map::new();
        match wanted {
            Some(fields) => {
                for field in fields {
                    if field.contains('.') {
                        if Store::valid_path(table, field) {
                            let value = store.value_of(table, rec, field);
                            out.insert(field.to_owned(), Value::String(value));
                        }
                    } else if schema::has_column(table, field)
                        && let Some(value) = rec.get(field)
                    {
                        out.insert(field.to_owned(), rendered(field, value));
                    }
                }
            }
            None => {
                for (field, value) in rec {
                    if schema::has_column(table, field) {
                        out.insert(field.clone(), rendered(field, value));
                    }
                }
            }
        }
        Value::Object(out)
    }

    fn body_object(req: &ApiRequest) -> Result<Map<String, Value>, ApiResponse> {
        let is_json = req
            .header("content-type")
            .map(|ct| ct.to_ascii_lowercase())
            .map(|ct| ct.starts_with("application/json") || ct.contains("+json"));
        match is_json {
            None => {
                return Err(sn_error(
                    400,
                    "Content-Type header is missing",
                    Some("POST, PUT and PATCH requests need Content-Type: application/json"),
                ));
            }
            Some(false) => {
                return Err(sn_error(
                    415,
                    "Unsupported Media Type",
                    Some("The Content-Type of the request is not supported; use application/json"),
                ));
            }
            Some(true) => {}
        }
        let parsed: Value = serde_json::from_slice(&req.body).map_err(|e| {
            sn_error(
                400,
                "Exception while reading request",
                Some(&format!("The payload is not valid JSON: {e}")),
            )
        })?;
        match parsed {
            Value::Object(map) => Ok(map),
            Value::Array(items) => match items.into_iter().next() {
                Some(Value::Object(map)) => Ok(map),
                _ => Err(sn_error(
                    400,
                    "Exception while reading request",
                    Some("The payload is not a JSON object"),
                )),
            },
            _ => Err(sn_error(
                400,
                "Exception while reading request",
                Some("The payload is not a JSON object"),
            )),
        }
    }

    fn result(
        &self,
        store: &Store,
        status: u16,
        table: &str,
        rec: &Rec,
        req: &ApiRequest,
    ) -> ApiResponse {
        if truthy(req.header("x-no-response-body")) {
            return ApiResponse::empty(if status == 200 { 204 } else { status });
        }
        ApiResponse::json(
            status,
            &json!({"result": self.render(store, table, rec, req)}),
        )
    }

    fn table(
        &self,
        req: &ApiRequest,
        table: &str,
        sys_id: Option<&str>,
        user: &str,
    ) -> ApiResponse {
        if !schema::is_table(table) {
            return sn_error(400, &format!("Invalid table {table}"), None);
        }
        let writes = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
        if writes.contains(&req.method) && self.store().denied_writes.contains(table) {
            let verb = match req.method {
                Method::POST => "Insert",
                Method::DELETE => "Delete",
                _ => "Update",
            };
            return sn_error(
                403,
                "Operation Failed",
                Some(&format!(
                    "ACL Exception {verb} Failed due to security constraints"
                )),
            );
        }
        match (req.method.clone(), sys_id) {
            (Method::GET, None) => self.list(req, table),
            (Method::GET, Some(id)) => {
                let store = self.store();
                match store.record(table, id) {
                    Some(rec) => self.result(&store, 200, table, rec, req),
                    None => not_found(),
                }
            }
            (Method::POST, None) => {
                let input = match Self::body_object(req) {
                    Ok(input) => input,
                    Err(resp) => return resp,
                };
                let mut store = self.store();
                match store.insert(table, &input, user) {
                    Ok(id) => match store.record(table, &id) {
                        Some(rec) => self
                            .result(&store, 201, table, rec, req)
                            .with_header("Location", self.link(table, &id)),
                        None => not_found(),
                    },
                    Err(refused) => {
                        sn_error(refused.status, &refused.message, Some(&refused.detail))
                    }
                }
            }
            (Method::PUT | Method::PATCH, Some(id)) => {
                let input = match Self::body_object(req) {
                    Ok(input) => input,
                    Err(resp) => return resp,
                };
                let mut store = self.store();
                match store.update(table, id, &input, user) {
                    Ok(Some(())) => match store.record(table, id) {
                        Some(rec) => self.result(&store, 200, table, rec, req),
                        None => not_found(),
                    },
                    Ok(None) => not_found(),
                    Err(refused) => {
                        sn_error(refused.status, &refused.message, Some(&refused.detail))
                    }
                }
            }
            (Method::DELETE, Some(id)) => {
                if self.store().delete(table, id) {
                    ApiResponse::empty(204)
                } else {
                    not_found()
                }
            }
            _ => sn_error(
                405,
                "Method not Supported",
                Some("The requested method is not supported for this resource"),
            ),
        }
    }

    fn list(&self, req: &ApiRequest, table: &str) -> ApiResponse {
        let mut query = EncodedQuery::parse(req.param("sysparm_query").unwrap_or_default());
        if req.param("sysparm_query").is_none() {
            for (name, value) in &req.query {
                if !name.starts_with("sysparm_") && schema::has_column(table, name) {
                    query.and(Condition {
                        field: name.clone(),
                        op: Op::Eq,
                        value: value.clone(),
                    });
                }
            }
        }
        let limit = req
            .param("sysparm_limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(DEFAULT_LIMIT);
        let offset = match req.param("sysparm_offset").map(str::parse::<i64>) {
            None => 0,
            Some(Ok(o)) if o >= 0 => usize::try_from(o).unwrap_or(usize::MAX),
            Some(_) => {
                return sn_error(
                    400,
                    "Invalid sysparm_offset",
                    Some("sysparm_offset must be a non-negative integer"),
                );
            }
        };
        let store = self.store();
        let rows = store.query(table, query, self.opts.invalid_query_returns_no_rows);
        let total = rows.len();
        let page: Vec<Value> = rows
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|r| self.render(&store, table, r, req))
            .collect();
        let mut resp = ApiResponse::json(200, &json!({"result": page}));
        if !truthy(req.param("sysparm_no_count")) {
            resp = resp.with_header("X-Total-Count", total.to_string());
        }
        if !truthy(req.param("sysparm_suppress_pagination_header")) && limit > 0 {
            let base = format!("{}/api/now/table/{table}", self.base_url);
            let link = |off: usize, rel: &str| {
                format!("<{base}?sysparm_offset={off}&sysparm_limit={limit}>;rel=\"{rel}\"")
            };
            let mut links = vec![link(0, "first")];
            if offset > 0 {
                links.push(link(offset.saturating_sub(limit), "prev"));
            }
            if offset + limit < total {
                links.push(link(offset + limit, "next"));
            }
            let last = if total == 0 {
                0
            } else {
                (total - 1) / limit * limit
            };
            links.push(link(last, "last"));
            resp = resp.with_header("Link", links.join(","));
        }
        resp
    }
}

impl Api for SnApi {
    fn handle(&self, req: &ApiRequest) -> ApiResponse {
        let segs = req.segs();
        if segs.as_slice() == ["oauth_token.do"] {
            return self.oauth(req);
        }
        let rest = match segs.as_slice() {
            ["api", "now", "table", rest @ ..] => rest,
            ["api", "now", "v1" | "v2", "table", rest @ ..] => rest,
            _ => {
                return sn_error(400, "Requested URI does not represent any resource", None);
            }
        };
        let Some(user) = self.authenticate(req) else {
            return unauthenticated();
        };
        match rest {
            [table] => self.table(req, table, None, &user),
            [table, sys_id] => self.table(req, table, Some(sys_id), &user),
            _ => sn_error(400, "Requested URI does not represent any resource", None),
        }
    }

    fn fault_error(&self, status: u16) -> ApiResponse {
        let message = match status {
            413 => "Request entity too large",
            500 => "Internal server error",
            502 => "Bad gateway",
            503 => "Service Unavailable",
            504 => "Gateway timeout",
            _ => "Injected failure",
        };
        sn_error(
            status,
            message,
            Some("Injected by the emulator's fault settings"),
        )
    }

    fn rate_limited(&self) -> ApiResponse {
        sn_error(
            429,
            "Rate limit exceeded",
            Some("Rate limit of the emulated rule for Table API exceeded"),
        )
    }
}
