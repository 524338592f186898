//! Drives a BMC Helix server (or the emulator) through one alert's lifecycle.
//!
//! ```text
//! cargo run -p secure-export-emulator -- bmc --listen 127.0.0.1:8082 --password 'S3cret!'
//! BMC_PASSWORD='S3cret!' cargo run -p secure-export-bmc --example bmc_session -- http://127.0.0.1:8082 Demo
//! ```

#![allow(clippy::print_stdout)]

use std::error::Error;

use secure_export_bmc::{BmcConfig, BmcConnector};
use secure_export_cmdb::CmdbLookup;
use secure_export_itsm::{ItsmConnector, NewWorkItem, Resolution, Severity, WorkItemUpdate};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(base_url), Some(username)) = (args.next(), args.next()) else {
        return Err("usage: bmc_session <base-url> <username>   (password in BMC_PASSWORD)".into());
    };
    let password = std::env::var("BMC_PASSWORD").map_err(|_| "set BMC_PASSWORD")?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let bmc = BmcConnector::new(BmcConfig::new(base_url, username, password), client)?;

    let vm = "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-rg/providers/microsoft.compute/virtualmachines/test-vm";
    let cis = bmc.cmdb().by_resource_id(vm).await?;
    println!("cmdb by CloudID -> {cis:?}");

    let correlation = "demo-alert-1";
    let mut item = NewWorkItem::new(correlation, "[Sev1] CPU high on test-VM", Severity::Sev1)
        .with_description("Percentage CPU > 90 for 5 minutes");
    if let Some(ci) = cis.into_iter().next() {
        item = item.with_ci(ci.into());
    }
    let incident = match bmc.find_open(correlation).await? {
        Some(open) => {
            println!("find_open -> already open: {open:?}");
            open
        }
        None => {
            let created = bmc.create(&item).await?;
            println!("create -> {created:?}");
            created
        }
    };
    println!("find_open -> {:?}", bmc.find_open(correlation).await?);
    bmc.update(&incident, &WorkItemUpdate::note("Fired again (2nd time)"))
        .await?;
    println!(
        "update (work log) -> ok; state {:?}",
        bmc.state(&incident).await?
    );
    bmc.resolve(
        &incident,
        &Resolution::new("Alert resolved by Azure Monitor"),
    )
    .await?;
    println!("resolve -> ok; state {:?}", bmc.state(&incident).await?);
    bmc.reopen(&incident, "Fired again after resolution")
        .await?;
    println!("reopen -> ok; state {:?}", bmc.state(&incident).await?);
    bmc.logout().await;
    println!("logout -> ok");
    Ok(())
}
