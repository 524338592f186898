//! Shared helpers of the engine integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use secure_export::engine::{ConnectionRuntime, Engine, EngineOptions};
use secure_export::metrics::Metrics;
use secure_export::store::{SqliteStore, Store};
use secure_export_itsm::ItsmError;
use secure_export_itsm::mock::MockConnector;
use secure_export_schema::Alert;

/// Fast test settings: millisecond backoff and polling.
pub fn fast_options() -> EngineOptions {
    EngineOptions {
        workers_per_backend: 4,
        max_attempts: 10,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(20),
        poll_interval: Duration::from_millis(5),
        housekeeping_interval: Duration::from_millis(50),
        call_timeout: Duration::from_secs(5),
        shutdown_grace: Duration::from_secs(2),
        ..EngineOptions::default()
    }
}

/// One alert body in the common alert schema.
#[derive(Debug, Clone)]
pub struct AlertSpec {
    pub alert_id: String,
    pub rule: String,
    pub condition: &'static str,
    pub fired: String,
    pub resolved: Option<String>,
    pub targets: Vec<String>,
    pub service: &'static str,
    pub severity: &'static str,
}

pub fn vm(name: &str) -> String {
    format!(
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/{name}"
    )
}

impl AlertSpec {
    pub fn fired(alert_id: &str, fired: &str) -> Self {
        Self {
            alert_id: format!(
                "/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.AlertsManagement/alerts/{alert_id}"
            ),
            rule: "High CPU".to_owned(),
            condition: "Fired",
            fired: fired.to_owned(),
            resolved: None,
            targets: vec![vm("vm1")],
            service: "Platform",
            severity: "Sev1",
        }
    }

    pub fn resolved(alert_id: &str, fired: &str, resolved: &str) -> Self {
        Self {
            condition: "Resolved",
            resolved: Some(resolved.to_owned()),
            ..Self::fired(alert_id, fired)
        }
    }

    pub fn body(&self) -> Vec<u8> {
        let mut essentials = serde_json::json!({
            "alertId": self.alert_id,
            "alertRule": self.rule,
            "alertRuleID": format!("/subscriptions/s/providers/microsoft.insights/metricAlerts/{}", self.rule),
            "severity": self.severity,
            "signalType": "Metric",
            "monitorCondition": self.condition,
            "monitoringService": self.service,
            "alertTargetIDs": self.targets,
            "firedDateTime": self.fired,
            "description": "test alert",
            "essentialsVersion": "1.0",
            "alertContextVersion": "1.0"
        });
        if let Some(r) = &self.resolved {
            essentials["resolvedDateTime"] = serde_json::json!(r);
        }
        serde_json::to_vec(&serde_json::json!({
            "schemaId": "azureMonitorCommonAlertSchema",
            "data": { "essentials": essentials, "alertContext": {}, "customProperties": { "team": "payments" } }
        }))
        .unwrap()
    }

    pub fn alert(&self) -> (Alert, Vec<u8>) {
        let body = self.body();
        (Alert::from_slice(&body).unwrap(), body)
    }
}

pub struct Harness {
    pub engine: Engine,
    pub mock: MockConnector,
    pub store: Arc<SqliteStore>,
}

pub async fn harness_with(
    conn: impl FnOnce(ConnectionRuntime) -> ConnectionRuntime,
    options: EngineOptions,
) -> Harness {
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    harness_on(store, conn, options).await
}

pub async fn harness_on(
    store: Arc<SqliteStore>,
    conn: impl FnOnce(ConnectionRuntime) -> ConnectionRuntime,
    options: EngineOptions,
) -> Harness {
    let mock = MockConnector::new();
    let rt = conn(ConnectionRuntime::new("default", Arc::new(mock.clone())));
    let engine = Engine::new(
        store.clone() as Arc<dyn Store>,
        vec![rt],
        options,
        Metrics::new(),
    )
    .await
    .unwrap();
    Harness {
        engine,
        mock,
        store,
    }
}

pub async fn harness() -> Harness {
    harness_with(|c| c, fast_options()).await
}

impl Harness {
    pub async fn send(&self, spec: &AlertSpec) -> secure_export::engine::Accepted {
        let (alert, body) = spec.alert();
        self.engine.accept("default", &alert, &body).await.unwrap()
    }

    /// Waits until the outbox is empty.
    pub async fn drain(&self) {
        wait_until("outbox drained", || async {
            self.engine.queue_depth().await.unwrap() == 0
        })
        .await;
    }
}

pub async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn http(status: u16, retry_after: Option<Duration>) -> ItsmError {
    ItsmError::Http {
        backend: "mock",
        status,
        message: format!("scripted {status}"),
        detail: None,
        code: None,
        retry_after,
    }
}
