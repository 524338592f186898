//! The HTTP session: AR-JWT login (single flight), authenticated calls with one re-login on
//! 401 / AR error 623, body limits and error mapping. Shared by the connector and the CMDB
//! lookup so both use one token.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, LOCATION, RETRY_AFTER};
use secure_export_itsm::{ItsmError, Secret};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::BmcConfig;
use crate::config::BACKEND;
use crate::token::{CachedToken, stated_lifetime};
use crate::wire::{ErrorBody, http_error, parse_error_body, snippet};

/// One authenticated REST call, relative to the base URL.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    /// Operation name for logs (`create`, `find_open`, ...).
    pub(crate) op: &'static str,
    pub(crate) method: Method,
    /// Path and query after the base URL, already encoded (`/api/arsys/v1/entry/...`).
    pub(crate) path: String,
    pub(crate) body: Option<&'a serde_json::Value>,
}

/// A 2xx answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// Decodes the JSON body; a body we cannot use is `InvalidResponse` naming the operation.
    pub(crate) fn json<T: DeserializeOwned>(&self, op: &str) -> Result<T, ItsmError> {
        serde_json::from_slice(&self.body).map_err(|e| ItsmError::InvalidResponse {
            backend: BACKEND,
            message: format!(
                "{op}: HTTP {} body is not the expected JSON ({e}): {}",
                self.status,
                snippet(&self.body)
            ),
        })
    }

    /// Whether the body is empty (or only whitespace).
    pub(crate) fn is_empty(&self) -> bool {
        self.body.iter().all(u8::is_ascii_whitespace)
    }
}

/// Client, endpoint, credentials and the cached token.
pub(crate) struct Session {
    client: reqwest::Client,
    base: String,
    username: String,
    password: Secret,
    auth_string: Option<Secret>,
    token_lifetime: Duration,
    refresh_margin: Duration,
    timeout: Duration,
    max_body: usize,
    /// Held across a login, so concurrent callers wait for one login instead of racing.
    token: Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("base", &self.base)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session for a validated base URL (see [`BmcConfig::validate`]).
    pub(crate) fn new(config: &BmcConfig, base: String, client: reqwest::Client) -> Self {
        Self {
            client,
            base,
            username: config.username.clone(),
            password: config.password.clone(),
            auth_string: config.auth_string.clone().map(Secret::new),
            token_lifetime: config.token_lifetime,
            refresh_margin: config.token_refresh_margin,
            timeout: config.timeout,
            max_body: config.max_response_bytes,
            token: Mutex::new(None),
        }
    }

    /// The base URL (no trailing slash).
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// A usable token: the cached one while fresh, else a new login.
    pub(crate) async fn token(&self) -> Result<Secret, ItsmError> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| t.is_fresh(Instant::now())) {
            return Ok(t.value.clone());
        }
        let fresh = self.login().await?;
        let value = fresh.value.clone();
        *slot = Some(fresh);
        Ok(value)
    }

    /// A token other than `rejected`: if another task already replaced it, that one; else a
    /// new login.
    async fn renew(&self, rejected: &Secret) -> Result<Secret, ItsmError> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot
            .as_ref()
            .filter(|t| t.value != *rejected && t.is_fresh(Instant::now()))
        {
            return Ok(t.value.clone());
        }
        *slot = None;
        let fresh = self.login().await?;
        let value = fresh.value.clone();
        *slot = Some(fresh);
        Ok(value)
    }

    /// Drops `rejected` from the cache (if it is still the cached token).
    async fn forget(&self, rejected: &Secret) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| t.value == *rejected) {
            *slot = None;
        }
    }

    /// `POST /api/jwt/login` with the form credentials.
    async fn login(&self) -> Result<CachedToken, ItsmError> {
        let mut form = vec![
            ("username", self.username.as_str()),
            ("password", self.password.expose_secret()),
        ];
        if let Some(auth) = &self.auth_string {
            form.push(("authString", auth.expose_secret()));
        }
        let response = self
            .client
            .post(format!("{}/api/jwt/login", self.base))
            .timeout(self.timeout)
            .header(ACCEPT, "text/plain, application/json")
            .form(&form)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let retry_after = header_string(response.headers(), RETRY_AFTER);
        let body = self.read_body(response).await?;
        if !(200..300).contains(&status) {
            let parsed = self.error_body(body.as_deref());
            tracing::warn!(event = "bmc.login.failed", status, code = ?parsed.code);
            if matches!(status, 400 | 401 | 403) || parsed.is_auth_failure() {
                return Err(ItsmError::Auth {
                    backend: BACKEND,
                    message: format!(
                        "login as {:?} refused (HTTP {status}): {}",
                        self.username,
                        parsed.message.as_deref().unwrap_or("no message")
                    ),
                });
            }
            return Err(http_error(status, retry_after.as_deref(), parsed));
        }
        let body = body.ok_or_else(|| self.too_large("login", status))?;
        let text =
            String::from_utf8(body).map_err(|_| auth_error("login returned a non-UTF-8 token"))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(auth_error("login returned an empty token"));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(auth_error(
                "login returned a token with spaces or control characters",
            ));
        }
        let lifetime = stated_lifetime(token).map_or(self.token_lifetime, |stated| {
            stated.min(self.token_lifetime)
        });
        tracing::debug!(event = "bmc.login", lifetime_secs = lifetime.as_secs());
        Ok(CachedToken::new(
            Secret::new(token),
            Instant::now(),
            lifetime,
            self.refresh_margin,
        ))
    }

    /// `POST /api/jwt/logout` with the cached token, if any; the cache is emptied either way.
    pub(crate) async fn logout(&self) -> Result<(), ItsmError> {
        let Some(token) = self.token.lock().await.take() else {
            return Ok(());
        };
        let response = self
            .client
            .post(format!("{}/api/jwt/logout", self.base))
            .timeout(self.timeout)
            .header(AUTHORIZATION, auth_header(&token.value)?)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let body = self.read_body(response).await?;
        // 401: the token had already expired, which is what logging out wants anyway.
        if (200..300).contains(&status) || status == 401 {
            return Ok(());
        }
        Err(http_error(status, None, self.error_body(body.as_deref())))
    }

    /// Sends an authenticated call; on 401 or AR error 623 logs in again once and retries.
    /// Non-2xx answers become `ItsmError::Http` (message number kept in `code`).
    pub(crate) async fn call(&self, call: &Call<'_>) -> Result<Reply, ItsmError> {
        let mut token = self.token().await?;
        let mut renewed = false;
        loop {
            let mut request = self
                .client
                .request(call.method.clone(), format!("{}{}", self.base, call.path))
                .timeout(self.timeout)
                .header(AUTHORIZATION, auth_header(&token)?)
                .header(ACCEPT, "application/json");
            if let Some(body) = call.body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(transport_error)?;
            let status = response.status().as_u16();
            let location = header_string(response.headers(), LOCATION);
            let retry_after = header_string(response.headers(), RETRY_AFTER);
            let body = self.read_body(response).await?;
            tracing::debug!(event = "bmc.call", op = call.op, method = %call.method, status);
            if (200..300).contains(&status) {
                let body = body.ok_or_else(|| self.too_large(call.op, status))?;
                let reply = Reply {
                    status,
                    location,
                    body,
                };
                // AR REST answers are JSON or empty; anything else (an HTML page from a proxy
                // or a sleeping instance) means the call did not do what it should.
                if !reply.is_empty() {
                    reply.json::<serde::de::IgnoredAny>(call.op)?;
                }
                return Ok(reply);
            }
            let parsed = self.error_body(body.as_deref());
            if status == 401 || parsed.is_auth_failure() {
                if !renewed {
                    tracing::info!(event = "bmc.token.rejected", op = call.op, status);
                    token = self.renew(&token).await?;
                    renewed = true;
                    continue;
                }
                self.forget(&token).await;
                return Err(auth_error(&format!(
                    "{}: a freshly issued token was rejected too (HTTP {status}{})",
                    call.op,
                    parsed
                        .code
                        .map(|c| format!(", AR error {c}"))
                        .unwrap_or_default()
                )));
            }
            return Err(http_error(status, retry_after.as_deref(), parsed));
        }
    }

    /// Reads the body, at most `max_response_bytes` of it: `None` (the rest left unread) when
    /// the declared `Content-Length` or the bytes received so far exceed the limit, so a huge
    /// or endless answer never takes more memory than that.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
    ) -> Result<Option<Vec<u8>>, ItsmError> {
        let declared = response.content_length();
        if declared.is_some_and(|len| len > self.max_body as u64) {
            return Ok(None);
        }
        let mut body = Vec::with_capacity(declared.map_or(0, |len| len as usize));
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            if body.len().saturating_add(chunk.len()) > self.max_body {
                return Ok(None);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }

    /// The error of a 2xx answer whose body was over the limit: retryable `InvalidResponse`,
    /// like any 2xx body we cannot use (the call may have taken effect, so the caller must come
    /// back and reconcile; a huge page from a proxy is usually transient; the caller's attempt
    /// limit bounds the retries).
    fn too_large(&self, op: &str, status: u16) -> ItsmError {
        ItsmError::InvalidResponse {
            backend: BACKEND,
            message: format!(
                "{op}: HTTP {status} response body larger than {} bytes (max_response_bytes), \
                 not read",
                self.max_body
            ),
        }
    }

    /// The parsed error body of a non-2xx answer; one over the limit keeps only that fact, so
    /// the error still carries the status and its retry class.
    fn error_body(&self, body: Option<&[u8]>) -> ErrorBody {
        match body {
            Some(body) => parse_error_body(body),
            None => ErrorBody {
                message: Some(format!(
                    "response body larger than {} bytes (max_response_bytes), not read",
                    self.max_body
                )),
                ..ErrorBody::default()
            },
        }
    }
}

fn auth_error(message: &str) -> ItsmError {
    ItsmError::Auth {
        backend: BACKEND,
        message: message.to_owned(),
    }
}

/// `AR-JWT <token>`, marked sensitive so it never shows in `Debug` output.
fn auth_header(token: &Secret) -> Result<HeaderValue, ItsmError> {
    let mut value = HeaderValue::from_str(&format!("AR-JWT {}", token.expose_secret()))
        .map_err(|_| auth_error("the token is not a valid header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

fn header_string(
    headers: &reqwest::header::HeaderMap,
    name: reqwest::header::HeaderName,
) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Classifies a transport failure without exposing `reqwest::Error` (or the URL).
pub(crate) fn transport_error(err: reqwest::Error) -> ItsmError {
    let timeout = err.is_timeout();
    let connect = err.is_connect();
    let builder = err.is_builder();
    let message = error_chain(&err.without_url());
    if timeout {
        ItsmError::Timeout {
            backend: BACKEND,
            message,
        }
    } else if connect {
        ItsmError::Connect {
            backend: BACKEND,
            message,
        }
    } else if builder {
        ItsmError::Config {
            backend: BACKEND,
            message,
        }
    } else {
        ItsmError::Timeout {
            backend: BACKEND,
            message: format!("interrupted: {message}"),
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
