//! BMC Helix ITSM backend for secure-export: an [`ItsmConnector`](secure_export_itsm::ItsmConnector)
//! on the AR System REST API ([`BmcConnector`]) and a
//! [`CmdbLookup`](secure_export_cmdb::CmdbLookup) on the BMC CMDB ([`BmcCmdb`]).
//!
//! What it does on the wire:
//!
//! | operation | request |
//! |---|---|
//! | login | `POST /api/jwt/login` (form `username`, `password`) -> token text, then `Authorization: AR-JWT <token>` |
//! | create | `POST /api/arsys/v1/entry/HPD:IncidentInterface_Create?fields=values(Incident Number,Request ID)`, then `GET HPD:Help Desk?q='Incident Number'="…"&limit=10` for the entry id |
//! | find open | `GET /api/arsys/v1/entry/HPD:Help Desk?q='Vendor Ticket Number'="…" AND 'Status' < "Resolved"&sort=Entry ID.desc&limit=50` |
//! | state | `GET /api/arsys/v1/entry/HPD:Help Desk/{id}?fields=values(Status)` |
//! | update, resolve, reopen | `PUT /api/arsys/v1/entry/HPD:IncidentInterface/{id}\|{id}` |
//! | work note | `POST /api/arsys/v1/entry/HPD:WorkLog` |
//! | CMDB | `GET /api/cmdb/v1.0/instances/BMC.ASSET/BMC.CORE/BMC_ComputerSystem?qualification=…&attributes=…&limit=20` |
//! | shutdown | `POST /api/jwt/logout` |
//!
//! Values from alerts never shape a query: qualification values are AR strings with inner `"`
//! doubled, `LIKE` values have their wildcards neutralized (see [`BmcCmdb`]), every query sends
//! a row `limit`, and every response body is read up to
//! [`BmcConfig::max_response_bytes`] (default 4 MiB; `Content-Length` is checked first). A 2xx
//! answer over it is a retryable `InvalidResponse`; any other status keeps its own retry class.
//!
//! What it does not do: retry (the caller's outbox does, guided by
//! [`ItsmError::retry_class`](secure_export_itsm::ItsmError::retry_class)) except one new
//! login when a token is rejected; follow `Location` headers to other hosts (only the entry id
//! is read from them); create `HPD:Associations` rows for CIs beyond the first (the first goes
//! in `HPD_CI*`, the others are listed in `Detailed_Decription`).
//!
//! ```no_run
//! use secure_export_bmc::{BmcConfig, BmcConnector};
//! use secure_export_itsm::{ItsmConnector, NewWorkItem, Resolution, Severity};
//! # async fn run() -> Result<(), secure_export_itsm::ItsmError> {
//! let mut config = BmcConfig::new("https://acme-restapi.onbmc.com", "azure-int", "secret");
//! config.assigned_group = Some("Cloud Operations".to_owned());
//! let bmc = BmcConnector::new(config, reqwest::Client::new())?;
//!
//! let item = NewWorkItem::new("alert-123", "[Sev1] CPU high on vm1", Severity::Sev1);
//! let incident = match bmc.find_open("alert-123").await? {
//!     Some(open) => open,
//!     None => bmc.create(&item).await?,
//! };
//! bmc.resolve(&incident, &Resolution::new("The alert condition cleared.")).await?;
//! bmc.logout().await;
//! # Ok(()) }
//! ```

mod cmdb;
mod config;
mod connector;
mod incident;
mod session;
mod severity;
mod token;
mod wire;

pub use cmdb::BmcCmdb;
pub use config::{BmcConfig, CmdbConfig};
pub use connector::BmcConnector;
pub use severity::{Impact, SeverityMap, UnknownValue, Urgency};
