//! `/oauth_token.do`: password, refresh_token and client_credentials grants
//! with expiring opaque tokens.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::server::{ApiRequest, ApiResponse};

/// Issued tokens (their values never appear in `Debug`).
#[derive(Default)]
pub(crate) struct TokenStore {
    access: HashMap<String, Issued>,
    refresh: HashMap<String, Issued>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("access_tokens", &self.access.len())
            .field("refresh_tokens", &self.refresh.len())
            .finish()
    }
}

#[derive(Debug, Clone)]
struct Issued {
    user: String,
    client_id: String,
    expires_at: Instant,
}

/// What the token endpoint needs to know about the instance.
#[derive(Debug)]
pub(crate) struct OAuthConfig<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) client_secret: &'a str,
    pub(crate) username: &'a str,
    pub(crate) password: &'a str,
    pub(crate) access_lifetime: Duration,
    pub(crate) refresh_lifetime: Duration,
    pub(crate) password_grant: bool,
    pub(crate) client_credentials_grant: bool,
}

fn oauth_error(status: u16, error: &str, description: &str) -> ApiResponse {
    ApiResponse::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl TokenStore {
    /// The user an unexpired access token acts as.
    pub(crate) fn user_for(&self, token: &str) -> Option<&str> {
        self.access
            .get(token)
            .filter(|t| Instant::now() < t.expires_at)
            .map(|t| t.user.as_str())
    }

    /// Make every access token expire now (refresh tokens stay valid).
    pub(crate) fn expire_access_tokens(&mut self) {
        let now = Instant::now();
        for t in self.access.values_mut() {
            t.expires_at = now;
        }
    }

    /// An unexpired access token for `(client, user)`, or a new one.
    fn access_for(&mut self, client_id: &str, user: &str, lifetime: Duration) -> (String, u64) {
        let now = Instant::now();
        self.access.retain(|_, t| {
            now < t.expires_at || now.duration_since(t.expires_at) < Duration::from_secs(3600)
        });
        if let Some((token, t)) = self
            .access
            .iter()
            .find(|(_, t)| t.client_id == client_id && t.user == user && now < t.expires_at)
        {
            return (token.clone(), t.expires_at.duration_since(now).as_secs());
        }
        let token = new_token();
        self.access.insert(
            token.clone(),
            Issued {
                user: user.to_owned(),
                client_id: client_id.to_owned(),
                expires_at: now + lifetime,
            },
        );
        (token, lifetime.as_secs())
    }

    fn refresh_for(&mut self, client_id: &str, user: &str, lifetime: Duration) -> String {
        let now = Instant::now();
        if let Some((token, _)) = self
            .refresh
            .iter()
            .find(|(_, t)| t.client_id == client_id && t.user == user && now < t.expires_at)
        {
            return token.clone();
        }
        let token = new_token();
        self.refresh.insert(
            token.clone(),
            Issued {
                user: user.to_owned(),
                client_id: client_id.to_owned(),
                expires_at: now + lifetime,
            },
        );
        token
    }

    /// Handle `POST /oauth_token.do`.
    pub(crate) fn token_endpoint(
        &mut self,
        req: &ApiRequest,
        cfg: &OAuthConfig<'_>,
    ) -> ApiResponse {
        let is_form = req.header("content-type").is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
        if !is_form {
            return oauth_error(
                400,
                "invalid_request",
                "the token request body must be application/x-www-form-urlencoded",
            );
        }
        let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
        if field("client_id") != cfg.client_id || field("client_secret") != cfg.client_secret {
            return oauth_error(401, "server_error", "access_denied");
        }
        match field("grant_type") {
            "password" if cfg.password_grant => {
                if field("username") != cfg.username || field("password") != cfg.password {
                    return oauth_error(401, "server_error", "access_denied");
                }
                let (access, expires_in) =
                    self.access_for(cfg.client_id, cfg.username, cfg.access_lifetime);
                let refresh = self.refresh_for(cfg.client_id, cfg.username, cfg.refresh_lifetime);
                ApiResponse::json(
                    200,
                    &json!({"access_token": access, "refresh_token": refresh, "scope": "useraccount", "token_type": "Bearer", "expires_in": expires_in}),
                )
            }
            "refresh_token" => {
                let now = Instant::now();
                let Some(issued) = self
                    .refresh
                    .get(field("refresh_token"))
                    .filter(|t| now < t.expires_at && t.client_id == cfg.client_id)
                    .cloned()
                else {
                    return oauth_error(401, "server_error", "access_denied");
                };
                let (access, expires_in) =
                    self.access_for(cfg.client_id, &issued.user, cfg.access_lifetime);
                ApiResponse::json(
                    200,
                    &json!({"access_token": access, "scope": "useraccount", "token_type": "Bearer", "expires_in": expires_in}),
                )
            }
            "client_credentials" if cfg.client_credentials_grant => {
                let (access, expires_in) =
                    self.access_for(cfg.client_id, cfg.username, cfg.access_lifetime);
                ApiResponse::json(
                    200,
                    &json!({"access_token": access, "scope": "useraccount", "token_type": "Bearer", "expires_in": expires_in}),
                )
            }
            "password" | "client_credentials" => oauth_error(401, "server_error", "access_denied"),
            other => oauth_error(
                400,
                "unsupported_grant_type",
                &format!("grant_type '{other}' is not supported"),
            ),
        }
    }
}
