//! [`ServiceNowConnector`].

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use secure_export_itsm::{
    ItsmConnector, ItsmError, NewWorkItem, Resolution, WorkItemRef, WorkItemState, WorkItemUpdate,
};

use crate::cmdb::ServiceNowCmdb;
use crate::config::{ServiceNowConfig, WorkItemKind};
use crate::transport::Transport;
use crate::{event, incident};

/// The ServiceNow backend: incidents (default) or Event Management events over the Table API.
///
/// Cloning is cheap and shares the HTTP client and the OAuth token.
#[derive(Clone)]
pub struct ServiceNowConnector {
    transport: Transport,
    config: Arc<ServiceNowConfig>,
}

impl ServiceNowConnector {
    /// Checks `config` and builds a connector that sends every request through `client`.
    ///
    /// Give it a client without automatic redirects
    /// (`reqwest::Client::builder().redirect(reqwest::redirect::Policy::none())`), so that
    /// credentials never follow a redirect elsewhere.
    ///
    /// # Errors
    /// [`ItsmError::Config`] naming the bad setting (URL scheme, empty user, bad field name, ...).
    pub fn new(config: ServiceNowConfig, client: reqwest::Client) -> Result<Self, ItsmError> {
        let transport = Transport::new(&config, client)?;
        Ok(Self {
            transport,
            config: Arc::new(config),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ServiceNowConfig {
        &self.config
    }

    /// A CMDB lookup on the same instance, sharing this connector's client and token.
    #[must_use]
    pub fn cmdb(&self) -> ServiceNowCmdb {
        ServiceNowCmdb::from_transport(self.transport.clone(), self.config.cmdb_classes.clone())
    }
}

impl fmt::Debug for ServiceNowConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceNowConnector")
            .field("instance", &self.transport.base().as_str())
            .field("kind", &self.config.kind)
            .field("auth", &self.config.auth)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ItsmConnector for ServiceNowConnector {
    fn backend(&self) -> &'static str {
        "servicenow"
    }

    async fn create(&self, item: &NewWorkItem) -> Result<WorkItemRef, ItsmError> {
        match self.config.kind {
            WorkItemKind::Incident => incident::create(&self.transport, &self.config, item).await,
            WorkItemKind::Event => event::create(&self.transport, &self.config, item).await,
        }
    }

    async fn find_open(&self, correlation_id: &str) -> Result<Option<WorkItemRef>, ItsmError> {
        match self.config.kind {
            WorkItemKind::Incident => {
                incident::find_open(&self.transport, &self.config, correlation_id).await
            }
            WorkItemKind::Event => event::find_open(&self.transport, correlation_id).await,
        }
    }

    async fn state(&self, item: &WorkItemRef) -> Result<WorkItemState, ItsmError> {
        match self.config.kind {
            WorkItemKind::Incident => incident::state(&self.transport, &self.config, item).await,
            WorkItemKind::Event => event::state(&self.transport, item).await,
        }
    }

    async fn update(&self, item: &WorkItemRef, update: &WorkItemUpdate) -> Result<(), ItsmError> {
        match self.config.kind {
            WorkItemKind::Incident => incident::update(&self.transport, item, update).await,
            WorkItemKind::Event => event::update(&self.transport, item, update).await,
        }
    }

    async fn resolve(&self, item: &WorkItemRef, resolution: &Resolution) -> Result<(), ItsmError> {
        match self.config.kind {
            WorkItemKind::Incident => {
                incident::resolve(&self.transport, &self.config, item, resolution).await
            }
            WorkItemKind::Event => event::resolve(&self.transport, item, resolution).await,
        }
    }

    async fn reopen(&self, item: &WorkItemRef, note: &str) -> Result<(), ItsmError> {
        match self.config.kind {
            WorkItemKind::Incident => {
                incident::reopen(&self.transport, &self.config, item, note).await
            }
            WorkItemKind::Event => event::reopen(&self.transport, item, note).await,
        }
    }

    /// Reads one row of the work item table: checks reachability and credentials.
    async fn health(&self) -> Result<(), ItsmError> {
        let url = self.transport.table_url(self.config.kind.table(), None);
        let query = [("sysparm_limit", "1"), ("sysparm_fields", "sys_id")];
        self.transport
            .json(Method::GET, url, &query, None)
            .await
            .map(drop)
    }
}
