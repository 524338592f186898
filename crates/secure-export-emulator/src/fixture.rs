//! The CMDB fixture both emulators are seeded with (`fixtures/cmdb.json`).
//!
//! Each entry is one Azure (or on-premises) resource with the configuration
//! item it becomes in ServiceNow and in BMC Helix CMDB. Tests can load the
//! fixture to assert which CI an alert binds to; see the crate docs for the
//! table of entries and the corpus alerts that target them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The fixture file, embedded.
pub const CMDB_FIXTURE_JSON: &str = include_str!("../fixtures/cmdb.json");

/// One resource of the CMDB fixture.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CmdbFixtureEntry {
    /// Stable key, e.g. `vm-test-vm`.
    pub key: String,
    /// What it is: `vm`, `server`, `database`, `app_service`, `storage_account`, ...
    pub kind: String,
    /// The CI name (also the Azure resource name when it has one).
    pub name: String,
    /// The ARM resource id as Azure discovery stores it (canonical casing), if any.
    pub resource_id: Option<String>,
    /// Why the entry exists.
    pub note: String,
    /// The ServiceNow CI, if the resource is in the ServiceNow CMDB.
    pub servicenow: Option<ServiceNowCi>,
    /// The BMC CI, if the resource is in the BMC CMDB.
    pub bmc: Option<BmcCi>,
}

/// A ServiceNow configuration item of the fixture.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServiceNowCi {
    /// The CMDB class (table), e.g. `cmdb_ci_vm_instance`.
    pub class: String,
    /// The CI's sys_id.
    pub sys_id: String,
    /// Further columns.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// A BMC CMDB instance of the fixture (dataset `BMC.ASSET`, namespace `BMC.CORE`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BmcCi {
    /// The class, e.g. `BMC_ComputerSystem`.
    pub class: String,
    /// `InstanceId`.
    pub instance_id: String,
    /// `ReconciliationIdentity`.
    pub reconciliation_id: String,
    /// Further attributes (`CloudID` holds the ARM id for Azure resources).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct FixtureFile {
    entries: Vec<CmdbFixtureEntry>,
}

/// The fixture's entries (parsed from [`CMDB_FIXTURE_JSON`]).
pub fn cmdb_fixture() -> Vec<CmdbFixtureEntry> {
    match serde_json::from_str::<FixtureFile>(CMDB_FIXTURE_JSON) {
        Ok(file) => file.entries,
        Err(err) => {
            tracing::error!(error = %err, "the embedded CMDB fixture does not parse");
            Vec::new()
        }
    }
}

impl CmdbFixtureEntry {
    /// The `cmdb_ci` columns the ServiceNow emulator stores for this entry
    /// (empty when the entry has no ServiceNow CI).
    pub(crate) fn servicenow_fields(&self) -> Map<String, Value> {
        let mut map = Map::new();
        let Some(ci) = &self.servicenow else {
            return map;
        };
        let mut put = |k: &str, v: &str| {
            map.insert(k.to_owned(), Value::String(v.to_owned()));
        };
        put("sys_id", &ci.sys_id);
        put("sys_class_name", &ci.class);
        put("name", &self.name);
        put("object_id", self.resource_id.as_deref().unwrap_or_default());
        put("operational_status", "1");
        put("install_status", "1");
        put(
            "discovery_source",
            if self.resource_id.is_some() {
                "ServiceNow"
            } else {
                "Manual Entry"
            },
        );
        for (k, v) in &ci.attributes {
            put(k, v);
        }
        map
    }

    /// The BMC attributes the BMC emulator stores for this entry.
    pub(crate) fn bmc_attributes(&self) -> Option<(String, BTreeMap<String, String>)> {
        let ci = self.bmc.as_ref()?;
        let mut attrs = ci.attributes.clone();
        attrs.insert("Name".to_owned(), self.name.clone());
        attrs.insert("InstanceId".to_owned(), ci.instance_id.clone());
        attrs.insert(
            "ReconciliationIdentity".to_owned(),
            ci.reconciliation_id.clone(),
        );
        attrs.insert("ClassId".to_owned(), ci.class.to_uppercase());
        attrs.insert("DatasetId".to_owned(), "BMC.ASSET".to_owned());
        attrs.entry("CloudID".to_owned()).or_default();
        Some((ci.class.clone(), attrs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_parses_and_has_a_name_collision_across_classes() {
        let entries = cmdb_fixture();
        assert!(entries.len() >= 9);
        let test_vm: Vec<_> = entries.iter().filter(|e| e.name == "test-VM").collect();
        assert_eq!(test_vm.len(), 2);
        let sn_classes: Vec<_> = test_vm
            .iter()
            .filter_map(|e| e.servicenow.as_ref().map(|c| c.class.as_str()))
            .collect();
        assert_eq!(sn_classes.len(), 2);
        assert_ne!(sn_classes.first(), sn_classes.get(1));
        for e in &entries {
            if let Some(ci) = &e.servicenow {
                assert_eq!(ci.sys_id.len(), 32, "{}", e.key);
                assert!(ci.sys_id.bytes().all(|b| b.is_ascii_hexdigit()));
            }
        }
    }
}
