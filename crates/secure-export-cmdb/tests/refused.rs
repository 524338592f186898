//! A lookup the CMDB client refuses to send (`LookupError::Refused`) leaves the target unbound
//! with the reason, and is not a CMDB failure (the item is not held back).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use secure_export_cmdb::{Binder, CiRecord, CmdbLookup, LookupError, Strategy};
use secure_export_schema::Alert;

#[derive(Debug, Default)]
struct Refusing {
    calls: AtomicUsize,
}

#[async_trait]
impl CmdbLookup for Refusing {
    async fn by_resource_id(&self, _: &str) -> Result<Vec<CiRecord>, LookupError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Vec::new())
    }
    async fn by_name(&self, name: &str, _: Option<&str>) -> Result<Vec<CiRecord>, LookupError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(LookupError::Refused(format!("{name:?} is never sent")))
    }
}

#[tokio::test]
async fn a_refused_lookup_is_a_reason_not_a_failure() {
    let lookup = Arc::new(Refusing::default());
    let binder = Binder::builder(lookup.clone())
        .strategies(vec![Strategy::ResourceId, Strategy::Name])
        .build()
        .unwrap();
    let body = br#"{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{
      "alertId":"/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/1","alertRule":"r",
      "severity":"Sev1","monitorCondition":"Fired","firedDateTime":"2024-05-01T10:00:00Z",
      "alertTargetIDs":["/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/rg/providers/microsoft.compute/virtualmachines/javascript:gs.sleep(1)"]},
      "alertContext":{}}}"#;
    let alert = Alert::from_slice(body).unwrap();
    let binding = binder.bind(&alert).await;
    assert!(!binding.is_bound());
    assert!(!binding.lookup_failed(), "a refusal is not a CMDB outage");
    let note = binding.unmatched_note().unwrap();
    assert!(note.contains("is never sent"), "{note}");
    // Cached like "not found": a second alert makes no new request.
    let before = lookup.calls.load(Ordering::SeqCst);
    let _ = binder.bind(&alert).await;
    assert_eq!(lookup.calls.load(Ordering::SeqCst), before);
}
