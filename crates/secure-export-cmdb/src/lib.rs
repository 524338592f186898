//! Binding Azure alert targets to CMDB configuration items.
//!
//! A [`CmdbLookup`] finds configuration items in one CMDB (ServiceNow, BMC Helix, or your own).
//! The `Binder` (see the crate docs' later sections) collects candidate targets from an alert and
//! resolves them through an ordered list of strategies, with a cache in front of the lookups.

mod lookup;

pub use lookup::{CiRecord, CiSource, CmdbLookup, LookupError};
