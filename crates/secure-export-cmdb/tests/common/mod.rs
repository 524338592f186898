//! Shared helpers of the integration tests: fixture loading, an in-memory CMDB, the table.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use secure_export_cmdb::{Binding, CiRecord, CiSource, CmdbLookup, LookupError};
use secure_export_schema::Alert;

/// Every corpus payload (common schema and legacy), relative to `tests/fixtures`.
pub const FIXTURES: &[&str] = &[
    "log-alert-v2-fired.json",
    "metric-static-resolved-2020-no-configurationitems.json",
    "metric-static-resolved.json",
    "test-action-activity-log-administrative-fired.json",
    "test-action-budget-alert.json",
    "test-action-cost-budget-actual.json",
    "test-action-forecasted-budget.json",
    "test-action-log-alert-v1-metric-measurement-fired.json",
    "test-action-log-alert-v1-number-of-results-fired.json",
    "test-action-log-alert-v2-fired.json",
    "test-action-metric-dynamic-fired.json",
    "test-action-metric-static-fired.json",
    "test-action-resource-health-fired.json",
    "test-action-service-health-fired.json",
    "test-action-smart-detector-fired.json",
    "test-action-webtest-availability-fired.json",
    "legacy/activity-log-administrative-2017-redacted.json",
    "legacy/activity-log-administrative.json",
    "legacy/activity-log-recommendation-2017.json",
    "legacy/activity-log-resourcehealth-2018.json",
    "legacy/activity-log-resourcehealth.json",
    "legacy/activity-log-security-2017.json",
    "legacy/activity-log-servicehealth-2017.json",
    "legacy/activity-log-servicehealth.json",
    "legacy/budget-notification.json",
    "legacy/classic-metric-alert-activated.json",
    "legacy/log-alert-v1-application-insights-webhook-2018.json",
    "legacy/log-alert-v1-log-analytics-webhook-2018.json",
    "legacy/log-alert-v1-metric-measurement.json",
    "legacy/log-alert-v1-number-of-results.json",
    "legacy/metric-alert-dynamic-activated.json",
    "legacy/metric-alert-static-activated.json",
];

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn load_alert(name: &str) -> Alert {
    let bytes = std::fs::read(fixture_path(name)).unwrap();
    Alert::from_slice(&bytes).unwrap_or_else(|err| panic!("{name}: {err}"))
}

/// One CI of the in-memory CMDB.
#[derive(Debug, Clone)]
pub struct Ci {
    pub sys_id: &'static str,
    pub class: &'static str,
    pub name: &'static str,
    pub object_id: &'static str,
}

/// The emulators' CMDB fixture, ServiceNow side.
pub const SEED: &[Ci] = &[
    Ci {
        sys_id: "a0e1f1c7000000000000000000000001",
        class: "cmdb_ci_vm_instance",
        name: "test-VM",
        object_id: "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers/Microsoft.Compute/virtualMachines/test-VM",
    },
    Ci {
        sys_id: "a0e1f1c7000000000000000000000002",
        class: "cmdb_ci_win_server",
        name: "test-VM",
        object_id: "",
    },
    Ci {
        sys_id: "a0e1f1c7000000000000000000000003",
        class: "cmdb_ci_vm_instance",
        name: "testvm",
        object_id: "/subscriptions/12345a-1234b-123c-123d-12345678e/resourceGroups/ai-engineering/providers/Microsoft.Compute/virtualMachines/testvm",
    },
    Ci {
        sys_id: "a0e1f1c7000000000000000000000004",
        class: "cmdb_ci_cloud_storage_account",
        name: "test-storageAccount",
        object_id: "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers/Microsoft.Storage/storageAccounts/test-storageAccount",
    },
    Ci {
        sys_id: "a0e1f1c7000000000000000000000005",
        class: "cmdb_ci_cmp_resource",
        name: "test-applicationInsights",
        object_id: "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers/microsoft.insights/components/test-applicationInsights",
    },
    Ci {
        sys_id: "a0e1f1c7000000000000000000000006",
        class: "cmdb_ci_cmp_resource",
        name: "test-logAnalyticsWorkspace",
        object_id: "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers/Microsoft.OperationalInsights/workspaces/test-logAnalyticsWorkspace",
    },
    Ci {
        sys_id: "a0e1f1c7000000000000000000000007",
        class: "cmdb_ci_linux_server",
        name: "test-computer",
        object_id: "",
    },
    Ci {
        sys_id: "a0e1f1c7000000000000000000000008",
        class: "cmdb_ci_cloud_database",
        name: "test-sqldb",
        object_id: "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers/Microsoft.Sql/servers/test-sqlserver/databases/test-sqldb",
    },
    Ci {
        sys_id: "a0e1f1c7000000000000000000000009",
        class: "cmdb_ci_cloud_appserver",
        name: "test-webapp",
        object_id: "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers/Microsoft.Web/sites/test-webapp",
    },
    Ci {
        sys_id: "a0e1f1c700000000000000000000000a",
        class: "cmdb_ci_cloud_service_account",
        name: "test-subscription",
        object_id: "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e",
    },
];

/// A CMDB in memory with ServiceNow matching rules, counting its calls.
#[derive(Debug, Default)]
pub struct InMemoryCmdb {
    pub cis: Vec<Ci>,
    pub calls: AtomicUsize,
}

impl InMemoryCmdb {
    pub fn seeded() -> Self {
        Self {
            cis: SEED.to_vec(),
            calls: AtomicUsize::new(0),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn record(ci: &Ci, source: CiSource) -> CiRecord {
        CiRecord {
            id: ci.sys_id.to_owned(),
            name: ci.name.to_owned(),
            class: Some(ci.class.to_owned()),
            source,
        }
    }
}

#[async_trait]
impl CmdbLookup for InMemoryCmdb {
    async fn by_resource_id(&self, resource_id: &str) -> Result<Vec<CiRecord>, LookupError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .cis
            .iter()
            .filter(|ci| {
                // Like ServiceNow discovery: a subscription's object_id is its bare id.
                let bare = resource_id
                    .strip_prefix("/subscriptions/")
                    .filter(|rest| !rest.contains('/'));
                !ci.object_id.is_empty()
                    && (ci.object_id.eq_ignore_ascii_case(resource_id)
                        || bare.is_some_and(|b| ci.object_id.eq_ignore_ascii_case(b)))
            })
            .map(|ci| Self::record(ci, CiSource::ResourceId))
            .collect())
    }

    async fn by_name(
        &self,
        name: &str,
        class_hint: Option<&str>,
    ) -> Result<Vec<CiRecord>, LookupError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .cis
            .iter()
            .filter(|ci| ci.name.eq_ignore_ascii_case(name))
            .filter(|ci| class_hint.is_none_or(|hint| ci.class == hint))
            .map(|ci| Self::record(ci, CiSource::Name))
            .collect())
    }
}

fn source_label(source: CiSource) -> &'static str {
    match source {
        CiSource::ResourceId => "resource_id",
        CiSource::Name => "name",
        CiSource::StaticMap => "static_map",
        CiSource::Fallback => "fallback",
        _ => "other",
    }
}

/// `(primary id or "-", source or "-", primary name or "-")`.
pub fn summary(binding: &Binding) -> (String, &'static str, String) {
    match &binding.primary {
        Some(ci) => (ci.id.clone(), source_label(ci.source), ci.name.clone()),
        None => ("-".to_owned(), "-", "-".to_owned()),
    }
}

/// A markdown table of fixture -> binding.
pub fn render_table(rows: &[(String, Binding)]) -> String {
    let mut out = String::from(
        "| alert fixture | primary CI (name, id) | found by | unmatched |\n|---|---|---|---|\n",
    );
    for (fixture, binding) in rows {
        let (id, source, name) = summary(binding);
        let unmatched: Vec<String> = binding
            .unmatched
            .iter()
            .map(|u| format!("`{}`: {}", u.target, u.reason))
            .collect();
        out.push_str(&format!(
            "| {fixture} | {name} ({id}) | {source} | {} |\n",
            if unmatched.is_empty() {
                "-".to_owned()
            } else {
                unmatched.join("<br>")
            }
        ));
    }
    out
}

/// Which emulator / CMDB flavour a test binds against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    ServiceNow,
    Bmc,
}

/// The CI each corpus alert should bind to: `(primary CI id or "-", found by or "-")`.
///
/// ServiceNow ids are the fixture's sys_ids, BMC ids its reconciliation ids. BMC holds no
/// subscription CI, so service-health alerts stay unbound there.
pub fn expected(fixture: &str, backend: Backend) -> (&'static str, &'static str) {
    let (sn, bmc) = match fixture {
        "log-alert-v2-fired.json" => (
            ("a0e1f1c7000000000000000000000003", "resource_id"),
            "RE00AZFIX00000000000000000000003",
        ),
        "test-action-activity-log-administrative-fired.json"
        | "test-action-resource-health-fired.json"
        | "legacy/activity-log-administrative.json"
        | "legacy/activity-log-resourcehealth.json" => (
            ("a0e1f1c7000000000000000000000001", "resource_id"),
            "RE00AZFIX00000000000000000000001",
        ),
        "test-action-metric-dynamic-fired.json"
        | "test-action-metric-static-fired.json"
        | "legacy/metric-alert-dynamic-activated.json"
        | "legacy/metric-alert-static-activated.json" => (
            ("a0e1f1c7000000000000000000000004", "resource_id"),
            "RE00AZFIX00000000000000000000004",
        ),
        "test-action-smart-detector-fired.json" | "test-action-webtest-availability-fired.json" => {
            (
                ("a0e1f1c7000000000000000000000005", "resource_id"),
                "RE00AZFIX00000000000000000000005",
            )
        }
        "test-action-log-alert-v1-number-of-results-fired.json"
        | "test-action-log-alert-v2-fired.json"
        | "legacy/log-alert-v1-number-of-results.json" => (
            ("a0e1f1c7000000000000000000000007", "name"),
            "RE00AZFIX00000000000000000000007",
        ),
        "test-action-service-health-fired.json" | "legacy/activity-log-servicehealth.json" => {
            return match backend {
                Backend::ServiceNow => ("a0e1f1c700000000000000000000000a", "resource_id"),
                Backend::Bmc => ("-", "-"),
            };
        }
        _ => return ("-", "-"),
    };
    match backend {
        Backend::ServiceNow => sn,
        Backend::Bmc => (bmc, sn.1),
    }
}
