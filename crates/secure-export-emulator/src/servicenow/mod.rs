//! The ServiceNow emulator: Table API, OAuth token endpoint, CMDB tables.
//!
//! See the crate documentation for the behaviour it reproduces.

mod api;
mod index;
mod oauth;
mod query;
mod rules;
mod schema;
mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::call::{CallLog, RecordedCall};
use crate::fault::Faults;
use crate::server::Server;
use store::Store;

/// Options for [`ServiceNowEmulator::start`]. Builder-style setters.
#[derive(Clone)]
pub struct ServiceNowOptions {
    pub(crate) listen: SocketAddr,
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) oauth_client_id: String,
    pub(crate) oauth_client_secret: String,
    pub(crate) token_lifetime: Duration,
    pub(crate) refresh_token_lifetime: Duration,
    pub(crate) password_grant: bool,
    pub(crate) client_credentials_grant: bool,
    pub(crate) seed_cmdb: bool,
    pub(crate) invalid_query_returns_no_rows: bool,
}

impl std::fmt::Debug for ServiceNowOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceNowOptions")
            .field("listen", &self.listen)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("oauth_client_id", &self.oauth_client_id)
            .field("oauth_client_secret", &"<redacted>")
            .field("token_lifetime", &self.token_lifetime)
            .field("refresh_token_lifetime", &self.refresh_token_lifetime)
            .field("password_grant", &self.password_grant)
            .field("client_credentials_grant", &self.client_credentials_grant)
            .field("seed_cmdb", &self.seed_cmdb)
            .field(
                "invalid_query_returns_no_rows",
                &self.invalid_query_returns_no_rows,
            )
            .finish()
    }
}

impl Default for ServiceNowOptions {
    /// Loopback port 0, user `admin` with a random password, a random OAuth
    /// client, 1800 s access tokens, 100-day refresh tokens, both grants
    /// enabled, CMDB fixture seeded.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            username: "admin".to_owned(),
            password: format!("emu-{}", uuid::Uuid::new_v4().simple()),
            oauth_client_id: uuid::Uuid::new_v4().simple().to_string(),
            oauth_client_secret: format!("emu-secret-{}", uuid::Uuid::new_v4().simple()),
            token_lifetime: Duration::from_secs(1800),
            refresh_token_lifetime: Duration::from_secs(8_640_000),
            password_grant: true,
            client_credentials_grant: true,
            seed_cmdb: true,
            invalid_query_returns_no_rows: false,
        }
    }
}

impl ServiceNowOptions {
    /// Address to listen on (default `127.0.0.1:0`).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Basic-auth (and password-grant) credentials.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = username.into();
        self.password = password.into();
        self
    }

    /// The OAuth client registered in the application registry.
    pub fn oauth_client(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.oauth_client_id = client_id.into();
        self.oauth_client_secret = client_secret.into();
        self
    }

    /// Access-token lifetime (default 1800 s).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Refresh-token lifetime (default 100 days).
    pub fn refresh_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_token_lifetime = lifetime;
        self
    }

    /// Enable the password (ROPC) grant (default on).
    pub fn password_grant(mut self, enabled: bool) -> Self {
        self.password_grant = enabled;
        self
    }

    /// Enable the client_credentials grant (default on; off by default on a real instance).
    pub fn client_credentials_grant(mut self, enabled: bool) -> Self {
        self.client_credentials_grant = enabled;
        self
    }

    /// Emulate `glide.invalid_query.returns_no_rows=true`: a query with an
    /// invalid part (e.g. an unknown field) returns no rows instead of
    /// ignoring that part (default off, like a real instance).
    pub fn invalid_query_returns_no_rows(mut self, strict: bool) -> Self {
        self.invalid_query_returns_no_rows = strict;
        self
    }

    /// Seed the CMDB tables from the crate's fixture (default on).
    pub fn seed_cmdb(mut self, seed: bool) -> Self {
        self.seed_cmdb = seed;
        self
    }
}

/// One journal entry (`work_notes` or `comments`), as kept in `sys_journal_field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// The entry's own sys_id.
    pub sys_id: String,
    /// The table of the record written (`name` column), e.g. `incident`.
    pub table: String,
    /// The sys_id of the record written (`element_id` column).
    pub element_id: String,
    /// `work_notes` or `comments`.
    pub element: String,
    /// The text written.
    pub value: String,
    /// `YYYY-MM-DD HH:MM:SS` UTC.
    pub created_on: String,
    /// The user name that wrote it.
    pub created_by: String,
}

/// A running ServiceNow emulator on loopback.
pub struct ServiceNowEmulator {
    server: Server,
    store: Arc<Mutex<Store>>,
    opts: ServiceNowOptions,
    faults: Faults,
    calls: CallLog,
}

impl std::fmt::Debug for ServiceNowEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceNowEmulator")
            .field("base_url", &self.base_url())
            .field("opts", &self.opts)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl ServiceNowEmulator {
    /// Bind (default `127.0.0.1:0`) and start serving.
    pub async fn start(opts: ServiceNowOptions) -> std::io::Result<Self> {
        let mut store = Store::default();
        seed(&mut store, &opts);
        let store = Arc::new(Mutex::new(store));
        let faults = Faults::default();
        let calls = CallLog::default();
        let api_store = Arc::clone(&store);
        let api_opts = opts.clone();
        let server = Server::start(
            opts.listen,
            move |addr| {
                Arc::new(api::SnApi {
                    store: api_store,
                    opts: api_opts,
                    base_url: format!("http://{addr}"),
                })
            },
            faults.clone(),
            calls.clone(),
        )
        .await?;
        Ok(Self {
            server,
            store,
            opts,
            faults,
            calls,
        })
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Basic-auth user name.
    pub fn username(&self) -> &str {
        &self.opts.username
    }

    /// Basic-auth password.
    pub fn password(&self) -> &str {
        &self.opts.password
    }

    /// OAuth client id.
    pub fn oauth_client_id(&self) -> &str {
        &self.opts.oauth_client_id
    }

    /// OAuth client secret.
    pub fn oauth_client_secret(&self) -> &str {
        &self.opts.oauth_client_secret
    }

    /// Fault injection for this emulator.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Every call answered so far, oldest first.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.calls.snapshot()
    }

    /// Forget the recorded calls.
    pub fn clear_calls(&self) {
        self.calls.clear();
    }

    /// All records of `table` (descendant classes included) as the Table API
    /// renders them with `sysparm_exclude_reference_link=true`.
    pub fn records(&self, table: &str) -> Vec<Value> {
        self.store()
            .records(table)
            .into_iter()
            .map(rec_to_value)
            .collect()
    }

    /// One record of `table` by sys_id.
    pub fn record(&self, table: &str, sys_id: &str) -> Option<Value> {
        self.store().record(table, sys_id).map(rec_to_value)
    }

    /// Records of `table` matching an encoded query (same engine as `sysparm_query`).
    pub fn find(&self, table: &str, encoded_query: &str) -> Vec<Value> {
        let strict = self.opts.invalid_query_returns_no_rows;
        let store = self.store();
        store
            .query(table, query::EncodedQuery::parse(encoded_query), strict)
            .into_iter()
            .map(rec_to_value)
            .collect()
    }

    /// The journal (work notes and comments) of record `sys_id`, oldest first.
    pub fn journal(&self, sys_id: &str) -> Vec<JournalEntry> {
        self.store().journal(sys_id)
    }

    /// Insert a record directly (business rules apply, as for a POST by the
    /// emulator's user). Returns the new sys_id, or the refusal message.
    pub fn insert(&self, table: &str, fields: Value) -> Result<String, String> {
        let Value::Object(map) = fields else {
            return Err("fields must be a JSON object".to_owned());
        };
        if !schema::is_table(table) {
            return Err(format!("Invalid table {table}"));
        }
        self.store()
            .insert(table, &map, &self.opts.username)
            .map_err(|r| format!("{}: {}", r.message, r.detail))
    }

    /// Make every issued OAuth access token expire now (refresh tokens stay valid).
    pub fn expire_tokens(&self) {
        self.store().tokens.expire_access_tokens();
    }

    /// Refuse writes to `table` with a 403 ACL error from now on.
    pub fn deny_writes(&self, table: &str) {
        self.store().denied_writes.insert(table.to_owned());
    }

    /// Stop serving and wait for the server task to end.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

fn rec_to_value(rec: &store::Rec) -> Value {
    Value::Object(
        rec.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<String, Value>>(),
    )
}

/// Seed users and (optionally) the CMDB fixture.
fn seed(store: &mut Store, opts: &ServiceNowOptions) {
    let user = serde_json::json!({
        "sys_id": "6816f79cc0a8016401c5a33be04be441",
        "user_name": opts.username,
        "name": "System Administrator",
        "first_name": "System",
        "last_name": "Administrator",
        "active": "true",
    });
    if let Value::Object(map) = user
        && let Err(err) = store.insert("sys_user", &map, "system")
    {
        tracing::warn!(detail = %err.detail, "seeding the emulator user failed");
    }
    if opts.seed_cmdb {
        for entry in crate::fixture::cmdb_fixture() {
            let map = entry.servicenow_fields();
            if let Err(err) = store.insert("cmdb_ci", &map, "system") {
                tracing::warn!(detail = %err.detail, ci = %entry.name, "seeding a CMDB fixture CI failed");
            }
        }
    }
}
