//! The HTTP layer shared by the connector and the CMDB lookup: base URL, credentials, timeouts,
//! and error mapping.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};
use secure_export_itsm::{ItsmError, Secret};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use url::Url;

use crate::config::{Auth, Clock, ServiceNowConfig};
use crate::errors::{BACKEND, http_error, not_json, too_large, transport_error};

/// A successful JSON answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl Reply {
    /// The last path segment of the `Location` header (the new record's sys_id), if any.
    pub(crate) fn location_id(&self) -> Option<String> {
        let location = self.headers.get(LOCATION).and_then(|v| v.to_str().ok())?;
        let path = location.split(['?', '#']).next().unwrap_or_default();
        path.trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }
}

/// Shared HTTP state; cloned cheaply between the connector and the CMDB lookup.
#[derive(Clone)]
pub(crate) struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    base: Url,
    client: reqwest::Client,
    timeout: Duration,
    /// Largest response body read.
    max_body: usize,
    auth: Auth,
    token: Mutex<Option<Token>>,
    margin: Duration,
    clock: Clock,
}

struct Token {
    access: Secret,
    refresh: Option<Secret>,
    /// When to renew: expiry minus the refresh margin.
    renew_at: SystemTime,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("base", &self.inner.base.as_str())
            .field("timeout", &self.inner.timeout)
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

/// Parses and checks the instance URL: https, or http on a loopback host; no credentials, query
/// or fragment. The result ends with `/` so that relative paths join below it.
pub(crate) fn base_url(raw: &str) -> Result<Url, String> {
    let mut url = Url::parse(raw.trim()).map_err(|e| format!("instance_url {raw:?}: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(format!("instance_url {raw:?} has no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "instance_url {raw:?} must use https (http is allowed only for loopback hosts)"
            ));
        }
        other => {
            return Err(format!(
                "instance_url {raw:?}: unsupported scheme {other:?}"
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("instance_url must not carry credentials; use auth".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "instance_url {raw:?} must not have a query or fragment"
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

impl Transport {
    pub(crate) fn new(
        config: &ServiceNowConfig,
        client: reqwest::Client,
    ) -> Result<Self, ItsmError> {
        let config_error = |message| ItsmError::Config {
            backend: BACKEND,
            message,
        };
        let base = base_url(&config.instance_url).map_err(config_error)?;
        config.check().map_err(config_error)?;
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                client,
                timeout: config.timeout,
                max_body: config.max_response_bytes,
                auth: config.auth.clone(),
                token: Mutex::new(None),
                margin: config.token_refresh_margin,
                clock: config.clock.clone(),
            }),
        })
    }

    /// The base URL (ends with `/`).
    pub(crate) fn base(&self) -> &Url {
        &self.inner.base
    }

    /// `<base>/api/now/table/<table>[/<sys_id>]`, with the id percent-encoded as one segment.
    pub(crate) fn table_url(&self, table: &str, sys_id: Option<&str>) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend(["api", "now", "table", table]);
            if let Some(id) = sys_id {
                segments.push(id);
            }
        }
        url
    }

    /// Sends a Table API request and returns its JSON answer. A 401 under OAuth renews the token
    /// and retries once.
    pub(crate) async fn json(
        &self,
        method: Method,
        url: Url,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, ItsmError> {
        let oauth = !matches!(self.inner.auth, Auth::Basic { .. });
        let (first, used) = self
            .send(method.clone(), url.clone(), query, body, None)
            .await?;
        let (status, headers, body) = match used {
            Some(rejected) if oauth && first.0 == StatusCode::UNAUTHORIZED => {
                tracing::debug!(target: "servicenow", "401 with a bearer token; renewing it once");
                self.send(method, url, query, body, Some(&rejected))
                    .await?
                    .0
            }
            _ => first,
        };
        let now = self.inner.clock.now();
        let Some(bytes) = body else {
            return Err(too_large(status, &headers, self.inner.max_body, now));
        };
        if !status.is_success() {
            return Err(http_error(status, &headers, &bytes, now));
        }
        let body = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| not_json(&headers, "object"))?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        query: &[(&str, &str)],
        body: Option<&Value>,
        rejected: Option<&Secret>,
    ) -> Result<((StatusCode, HeaderMap, Option<Vec<u8>>), Option<Secret>), ItsmError> {
        let mut request = self
            .inner
            .client
            .request(method, url)
            .timeout(self.inner.timeout)
            .header(ACCEPT, "application/json");
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").json(body);
        }
        let mut used = None;
        request = match &self.inner.auth {
            Auth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose_secret()))
            }
            _ => {
                let token = self.bearer(rejected).await?;
                let request = request.bearer_auth(token.expose_secret());
                used = Some(token);
                request
            }
        };
        let response = request.send().await.map_err(|e| transport_error(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_capped(response, self.inner.max_body).await?;
        Ok(((status, headers, body), used))
    }

    /// A valid access token, fetched or renewed when it is about to expire or when it is the one
    /// the instance just `rejected` (single flight: the lock is held while a token request is in
    /// progress, so concurrent 401s on the same token renew it once).
    async fn bearer(&self, rejected: Option<&Secret>) -> Result<Secret, ItsmError> {
        let mut slot = self.inner.token.lock().await;
        let now = self.inner.clock.now();
        if let Some(token) = slot.as_ref()
            && now < token.renew_at
            && rejected.is_none_or(|r| *r != token.access)
        {
            return Ok(token.access.clone());
        }
        let refresh = slot.as_ref().and_then(|t| t.refresh.clone());
        let token = match refresh {
            Some(refresh) => match self.token_request(Some(&refresh)).await {
                Ok(token) => token,
                Err(err @ ItsmError::Auth { .. }) => {
                    tracing::debug!(target: "servicenow", error = %err, "refresh grant failed; requesting a new token");
                    self.token_request(None).await?
                }
                Err(err) => return Err(err),
            },
            None => self.token_request(None).await?,
        };
        let access = token.access.clone();
        *slot = Some(token);
        Ok(access)
    }

    /// Calls `/oauth_token.do` with the configured grant, or the refresh grant.
    async fn token_request(&self, refresh: Option<&Secret>) -> Result<Token, ItsmError> {
        let mut form: Vec<(&str, &str)> = Vec::with_capacity(6);
        match (&self.inner.auth, refresh) {
            (
                Auth::OAuthPassword {
                    client_id,
                    client_secret,
                    ..
                },
                Some(refresh),
            )
            | (
                Auth::OAuthClientCredentials {
                    client_id,
                    client_secret,
                    ..
                },
                Some(refresh),
            ) => {
                form.extend([
                    ("grant_type", "refresh_token"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.expose_secret()),
                    ("refresh_token", refresh.expose_secret()),
                ]);
            }
            (
                Auth::OAuthPassword {
                    client_id,
                    client_secret,
                    username,
                    password,
                },
                None,
            ) => {
                form.extend([
                    ("grant_type", "password"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.expose_secret()),
                    ("username", username.as_str()),
                    ("password", password.expose_secret()),
                ]);
            }
            (
                Auth::OAuthClientCredentials {
                    client_id,
                    client_secret,
                    scope,
                },
                None,
            ) => {
                form.extend([
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.expose_secret()),
                ]);
                if let Some(scope) = scope {
                    form.push(("scope", scope.as_str()));
                }
            }
            (Auth::Basic { .. }, _) => {
                return Err(ItsmError::Config {
                    backend: BACKEND,
                    message: "basic authentication has no token endpoint".to_owned(),
                });
            }
        }
        let grant = form.first().map_or("", |(_, g)| *g).to_owned();
        let mut url = self.inner.base.clone();
        url.set_path(&format!("{}oauth_token.do", self.inner.base.path()));
        let response = self
            .inner
            .client
            .post(url)
            .timeout(self.inner.timeout)
            .header(ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_capped(response, self.inner.max_body).await?;
        let now = self.inner.clock.now();
        let rejected = status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED;
        let Some(bytes) = body else {
            if rejected {
                return Err(ItsmError::Auth {
                    backend: BACKEND,
                    message: format!(
                        "token request (grant_type={grant}) rejected with HTTP {} (body larger \
                         than {} bytes, not read)",
                        status.as_u16(),
                        self.inner.max_body
                    ),
                });
            }
            return Err(too_large(status, &headers, self.inner.max_body, now));
        };
        if rejected {
            let detail = match http_error(status, &headers, &bytes, now) {
                ItsmError::Http {
                    message, detail, ..
                } => match detail {
                    Some(d) => format!("{message} ({d})"),
                    None => message,
                },
                other => other.to_string(),
            };
            return Err(ItsmError::Auth {
                backend: BACKEND,
                message: format!(
                    "token request (grant_type={grant}) rejected with HTTP {}: {detail}",
                    status.as_u16()
                ),
            });
        }
        if !status.is_success() {
            return Err(http_error(status, &headers, &bytes, now));
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&bytes).map_err(|_| not_json(&headers, "token response"))?;
        if answer.access_token.is_empty() {
            return Err(ItsmError::Auth {
                backend: BACKEND,
                message: "token response has an empty access_token".to_owned(),
            });
        }
        // The server's word, bounded: an absurd `expires_in` must neither overflow the clock
        // nor pin a token forever.
        let lifetime = Duration::from_secs(answer.expires_in.seconds().unwrap_or(1800))
            .min(MAX_TOKEN_LIFETIME);
        let margin = self.inner.margin.min(lifetime / 2);
        Ok(Token {
            access: Secret::new(answer.access_token),
            // The refresh grant answers without a refresh token: keep the one we had.
            refresh: answer
                .refresh_token
                .filter(|r| !r.is_empty())
                .map(Secret::new)
                .or_else(|| refresh.cloned()),
            renew_at: now
                .checked_add(lifetime.saturating_sub(margin))
                .unwrap_or(now),
        })
    }
}

/// Reads the body of `response`, at most `cap` bytes: `None` (and the rest left unread) when the
/// declared `Content-Length` or the bytes received so far exceed it, so a huge or endless answer
/// never takes more than `cap` bytes of memory.
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Option<Vec<u8>>, ItsmError> {
    let declared = response.content_length();
    if declared.is_some_and(|len| len > cap as u64) {
        return Ok(None);
    }
    let mut body = Vec::with_capacity(declared.map_or(0, |len| len as usize));
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&e))? {
        if body.len().saturating_add(chunk.len()) > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Longest access-token lifetime believed from `expires_in` (ServiceNow's default is 30 min).
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: ExpiresIn,
}

/// `expires_in` as a number or a numeric string.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum ExpiresIn {
    Number(u64),
    Text(String),
    #[default]
    Missing,
}

impl ExpiresIn {
    fn seconds(&self) -> Option<u64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(s) => s.trim().parse().ok(),
            Self::Missing => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_rules() {
        assert_eq!(
            base_url("https://acme.service-now.com").unwrap().as_str(),
            "https://acme.service-now.com/"
        );
        assert_eq!(
            base_url("http://127.0.0.1:8081").unwrap().as_str(),
            "http://127.0.0.1:8081/"
        );
        assert_eq!(
            base_url("http://[::1]:1/sn").unwrap().as_str(),
            "http://[::1]:1/sn/"
        );
        assert!(base_url("http://localhost:9").is_ok());
        for (bad, needle) in [
            ("http://acme.service-now.com", "https"),
            ("ftp://x", "scheme"),
            ("https://u:p@x", "credentials"),
            ("https://x/?a=1", "query"),
            ("not a url", "instance_url"),
        ] {
            let err = base_url(bad).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn table_url_encodes_the_id_as_one_segment() {
        let config = ServiceNowConfig::new("https://x/prefix", Auth::basic("u", "p"));
        let t = Transport::new(&config, reqwest::Client::new()).unwrap();
        assert_eq!(
            t.table_url("incident", None).as_str(),
            "https://x/prefix/api/now/table/incident"
        );
        assert_eq!(
            t.table_url("incident", Some("../../x?y")).as_str(),
            "https://x/prefix/api/now/table/incident/..%2F..%2Fx%3Fy"
        );
    }
}
