//! The BMC Helix ITSM emulator: AR-JWT login, the entry API for incidents and
//! work info, and the CMDB instances API.
//!
//! See the crate documentation for the behaviour it reproduces.

mod api;
mod cmdb;
mod qualification;
mod store;
mod token;
mod vocabulary;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;

use crate::call::{CallLog, RecordedCall};
use crate::fault::Faults;
use crate::server::Server;
use store::Store;

pub use store::{CREATE_FORM, HELP_DESK, INTERFACE_FORM, WORK_LOG};

/// CMDB classes the instances endpoint knows even when the fixture has none of them.
pub(crate) const CMDB_CLASSES: &[&str] = &[
    "BMC_ComputerSystem",
    "BMC_OperatingSystem",
    "BMC_ApplicationSystem",
    "BMC_DataBase",
    "BMC_CloudInstance",
    "BMC_VirtualSystemEnabler",
];

/// CMDB attributes a qualification may name.
pub(crate) const CMDB_ATTRIBUTES: &[&str] = &[
    "Name",
    "InstanceId",
    "ReconciliationIdentity",
    "ClassId",
    "DatasetId",
    "CloudID",
    "isCloud",
    "isVirtual",
    "HostName",
    "Category",
    "ShortDescription",
];

/// Options for [`BmcEmulator::start`]. Builder-style setters.
#[derive(Clone)]
pub struct BmcOptions {
    pub(crate) listen: SocketAddr,
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) token_lifetime: Duration,
    pub(crate) seed_cmdb: bool,
}

impl std::fmt::Debug for BmcOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BmcOptions")
            .field("listen", &self.listen)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("token_lifetime", &self.token_lifetime)
            .field("seed_cmdb", &self.seed_cmdb)
            .finish()
    }
}

impl Default for BmcOptions {
    /// Loopback port 0, user `Demo` with a random password, 3600 s tokens, CMDB fixture seeded.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            username: "Demo".to_owned(),
            password: format!("emu-{}", uuid::Uuid::new_v4().simple()),
            token_lifetime: Duration::from_secs(3600),
            seed_cmdb: true,
        }
    }
}

impl BmcOptions {
    /// Address to listen on (default `127.0.0.1:0`).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Login credentials.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = username.into();
        self.password = password.into();
        self
    }

    /// AR-JWT token lifetime (default 3600 s).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Seed the CMDB from the crate's fixture (default on).
    pub fn seed_cmdb(mut self, seed: bool) -> Self {
        self.seed_cmdb = seed;
        self
    }
}

/// A running BMC Helix emulator on loopback.
pub struct BmcEmulator {
    server: Server,
    store: Arc<Mutex<Store>>,
    opts: BmcOptions,
    faults: Faults,
    calls: CallLog,
}

impl std::fmt::Debug for BmcEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BmcEmulator")
            .field("base_url", &self.base_url())
            .field("opts", &self.opts)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl BmcEmulator {
    /// Bind (default `127.0.0.1:0`) and start serving.
    pub async fn start(opts: BmcOptions) -> std::io::Result<Self> {
        let mut store = Store::default();
        if opts.seed_cmdb {
            for entry in crate::fixture::cmdb_fixture() {
                if let Some((class, attrs)) = entry.bmc_attributes() {
                    store.cmdb.entry(class).or_default().push(attrs);
                }
            }
        }
        let store = Arc::new(Mutex::new(store));
        let faults = Faults::default();
        let calls = CallLog::default();
        let api_store = Arc::clone(&store);
        let api_opts = opts.clone();
        let server = Server::start(
            opts.listen,
            move |addr| {
                Arc::new(api::BmcApi {
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

    /// Login user name.
    pub fn username(&self) -> &str {
        &self.opts.username
    }

    /// Login password.
    pub fn password(&self) -> &str {
        &self.opts.password
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

    /// All entries of `form` (`HPD:Help Desk` holds the incidents;
    /// `HPD:IncidentInterface` is answered from it), as `values` objects.
    pub fn entries(&self, form: &str) -> Vec<Value> {
        let stored = if form == INTERFACE_FORM {
            HELP_DESK
        } else {
            form
        };
        self.store()
            .entries(stored)
            .iter()
            .map(|e| Value::Object(e.clone()))
            .collect()
    }

    /// One entry of `form` by entry id (`id|id` for `HPD:IncidentInterface`).
    pub fn entry(&self, form: &str, id: &str) -> Option<Value> {
        self.store()
            .entry(form, id)
            .map(|e| Value::Object(e.clone()))
    }

    /// The `HPD:Help Desk` entry with this incident number.
    pub fn incident(&self, incident_number: &str) -> Option<Value> {
        self.store()
            .entries(HELP_DESK)
            .iter()
            .find(|e| e.get("Incident Number").and_then(Value::as_str) == Some(incident_number))
            .map(|e| Value::Object(e.clone()))
    }

    /// Work-info entries (`HPD:WorkLog`) of an incident, oldest first.
    pub fn work_log(&self, incident_number: &str) -> Vec<Value> {
        self.store()
            .entries(WORK_LOG)
            .iter()
            .filter(|e| e.get("Incident Number").and_then(Value::as_str) == Some(incident_number))
            .map(|e| Value::Object(e.clone()))
            .collect()
    }

    /// CMDB instances of `class` (attributes as text).
    pub fn cmdb_instances(&self, class: &str) -> Vec<BTreeMap<String, String>> {
        self.store().cmdb.get(class).cloned().unwrap_or_default()
    }

    /// Make every issued AR-JWT token expire now.
    pub fn expire_tokens(&self) {
        self.store().tokens.expire_all();
    }

    /// Stop serving and wait for the server task to end.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
