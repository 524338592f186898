//! Operator commands against a receiver's data directory: dead letters, quarantine, replay, and
//! what happened to an alert.
//!
//! ```text
//! cargo run --example admin -- [--config FILE | --data-dir DIR] COMMAND
//!   dead-letters                 list jobs that exhausted their retry budget
//!   quarantine                   list authenticated bodies that could not be modelled
//!   replay-dead-letter ID|all    queue dead letters again
//!   replay-quarantined ID        re-parse a quarantined body and accept it
//!   history ALERT_ID             the audit trail of one alert id
//! ```
//!
//! Without `--config` (or `SECURE_EXPORT_CONFIG`) it works on the demo data directory `./data`.
//! It can run next to a live receiver (SQLite WAL): replayed jobs are picked up by the
//! receiver's workers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use secure_export::config::{Config, ServerConfig, config_path_from_args};
use secure_export::engine::{ConnectionRuntime, Engine, EngineOptions};
use secure_export::metrics::Metrics;
use secure_export_itsm::mock::MockConnector;

const USAGE: &str = "usage: admin [--config FILE | --data-dir DIR] \
    (dead-letters | quarantine | replay-dead-letter ID|all | replay-quarantined ID | history ALERT_ID)";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let config_path = config_path_from_args(args.clone());
    let mut data_dir = None;
    let mut rest = Vec::new();
    let mut it = args.drain(..);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" => {
                it.next();
            }
            "--data-dir" => data_dir = it.next().map(PathBuf::from),
            a if a.starts_with("--config=") => {}
            _ => rest.push(arg),
        }
    }
    let engine = open(config_path, data_dir).await?;
    let mut rest = rest.into_iter();
    let command = rest.next().ok_or(USAGE)?;
    let arg = rest.next();
    match (command.as_str(), arg.as_deref()) {
        ("dead-letters", None) => {
            let list = engine.dead_letters().await.map_err(|e| e.to_string())?;
            println!("{} dead letter(s)", list.len());
            for d in list {
                println!(
                    "#{} {} {} alert={} attempts={} dead_at={} reason={}",
                    d.id,
                    d.connection,
                    d.kind.as_str(),
                    d.alert_id,
                    d.attempts,
                    d.dead_at.to_rfc3339(),
                    d.reason
                );
            }
        }
        ("quarantine", None) => {
            let list = engine.quarantined().await.map_err(|e| e.to_string())?;
            println!("{} quarantined bod(ies)", list.len());
            for q in list {
                println!(
                    "#{} {} received_at={} bytes={} reason={}",
                    q.id,
                    q.connection,
                    q.received_at.to_rfc3339(),
                    q.raw_body.len(),
                    q.reason
                );
            }
        }
        ("replay-dead-letter", Some("all")) => {
            let n = engine
                .replay_all_dead_letters()
                .await
                .map_err(|e| e.to_string())?;
            println!("queued {n} dead letter(s) again");
        }
        ("replay-dead-letter", Some(id)) => {
            let id = parse_id(id)?;
            engine
                .replay_dead_letter(id)
                .await
                .map_err(|e| e.to_string())?;
            println!("queued dead letter #{id} again");
        }
        ("replay-quarantined", Some(id)) => {
            let id = parse_id(id)?;
            engine
                .replay_quarantined(id)
                .await
                .map_err(|e| e.to_string())?;
            println!("quarantined body #{id} parsed and accepted");
        }
        ("history", Some(alert_id)) => {
            let entries = engine.history(alert_id).await.map_err(|e| e.to_string())?;
            if entries.is_empty() {
                println!("no record of alert {alert_id}");
            }
            for a in entries {
                let e = a.entry;
                println!(
                    "{} {} {} item={} key={} {}",
                    e.at.to_rfc3339(),
                    e.connection,
                    e.action,
                    e.work_item.as_deref().unwrap_or("-"),
                    e.correlation_key.as_deref().unwrap_or("-"),
                    e.detail
                );
            }
        }
        _ => return Err(USAGE.to_owned()),
    }
    Ok(())
}

fn parse_id(text: &str) -> Result<i64, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a numeric id\n{USAGE}"))
}

async fn open(config_path: Option<PathBuf>, data_dir: Option<PathBuf>) -> Result<Engine, String> {
    let (mut server, connections, options) = match config_path {
        Some(path) => {
            let config = Config::load(&path).map_err(|e| e.to_string())?;
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| format!("HTTP client: {e}"))?;
            let runtime = config.build_runtime(&http).map_err(|e| e.to_string())?;
            (config.server, runtime.connections, runtime.engine_options)
        }
        None => {
            let demo = ConnectionRuntime::new("demo", Arc::new(MockConnector::new()));
            (
                ServerConfig::default(),
                vec![demo],
                EngineOptions::default(),
            )
        }
    };
    if let Some(dir) = data_dir {
        server.data_dir = dir;
    }
    // The configured store: PostgreSQL when the config names one, else SQLite in the data
    // directory, which must already exist (an admin command never creates an empty store).
    if server.database_url.is_none() && !server.data_dir.exists() {
        return Err(format!(
            "data directory {} does not exist",
            server.data_dir.display()
        ));
    }
    let store = server.open_store().await.map_err(|e| e.to_string())?;
    Engine::new(store, connections, options, Metrics::new())
        .await
        .map_err(|e| format!("engine: {e}"))
}
