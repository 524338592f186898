//! Drives one alert lifecycle (find or create, note, resolve, reopen) through
//! `ServiceNowConnector`, then looks its CI up in the CMDB.
//!
//! Start an instance stand-in first, then pass its URL and credentials:
//!
//! ```text
//! cargo run -p secure-export-emulator -- servicenow --listen 127.0.0.1:8081
//! SN_URL=http://127.0.0.1:8081 SN_USER=admin SN_PASSWORD=... \
//!     cargo run -p secure-export-servicenow --example servicenow_incident
//! ```

use std::process::ExitCode;

use secure_export_cmdb::CmdbLookup;
use secure_export_itsm::{
    CiRef, ItsmConnector, ItsmError, NewWorkItem, Resolution, Secret, Severity, WorkItemUpdate,
};
use secure_export_servicenow::{Auth, ServiceNowConfig, ServiceNowConnector};

const VM: &str = "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-rg/providers/microsoft.compute/virtualmachines/test-vm";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    let settings = (var("SN_URL"), var("SN_USER"), var("SN_PASSWORD"));
    let (Ok(url), Ok(user), Ok(password)) = settings else {
        eprintln!("usage: SN_URL=... SN_USER=... SN_PASSWORD=... (see the file's docs)");
        return ExitCode::FAILURE;
    };
    match run(url, user, Secret::new(password)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err} (retry class {:?})", err.retry_class());
            ExitCode::FAILURE
        }
    }
}

async fn run(url: String, user: String, password: Secret) -> Result<(), ItsmError> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ItsmError::Config {
            backend: "servicenow",
            message: e.to_string(),
        })?;
    let sn = ServiceNowConnector::new(
        ServiceNowConfig::new(url, Auth::basic(user, password)),
        client,
    )?;
    println!("{sn:?}");

    let cis = sn
        .cmdb()
        .by_resource_id(VM)
        .await
        .map_err(|e| ItsmError::InvalidResponse {
            backend: "servicenow",
            message: e.to_string(),
        })?;
    println!("cmdb: {VM} -> {cis:?}");

    let mut item = NewWorkItem::new(
        "example-alert-1",
        "[Sev1] Percentage CPU > 90 - test-VM",
        Severity::Sev1,
    )
    .with_description("Azure Monitor alert fired (example)");
    for ci in cis {
        item = item.with_ci(CiRef::from(ci));
    }
    let incident = match sn.find_open(&item.correlation_id).await? {
        Some(open) => {
            println!("found open {}", open.display());
            open
        }
        None => {
            let created = sn.create(&item).await?;
            println!(
                "created {} ({})",
                created.display(),
                created.url.as_deref().unwrap_or("")
            );
            created
        }
    };
    sn.update(
        &incident,
        &WorkItemUpdate::note("Azure Monitor: fired again"),
    )
    .await?;
    println!("noted; state {:?}", sn.state(&incident).await?);
    sn.resolve(&incident, &Resolution::new("Azure Monitor: alert resolved"))
        .await?;
    println!("resolved; state {:?}", sn.state(&incident).await?);
    sn.reopen(&incident, "Azure Monitor: fired after resolve")
        .await?;
    println!("reopened; state {:?}", sn.state(&incident).await?);
    Ok(())
}
