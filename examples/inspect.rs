//! Inspect Azure Monitor alert payloads.
//!
//! ```text
//! cargo run --example inspect -- FILE... # `-` reads standard input
//! ```
//!
//! Prints one JSON line per file with the fields that matter for routing an alert
//! (`target_ids` normalized to lowercase, times in RFC 3339 UTC, absent values as `null`).
//! Exits 0 when every file parsed; otherwise prints one line per failing file to stderr,
//! naming the file and the JSON path of the failure, and exits 1.

use std::io::{Read, Write};
use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, Utc};
use secure_export_schema::Alert;
use serde::Serialize;

/// One output line.
#[derive(Debug, Serialize)]
struct Line<'a> {
    file: &'a str,
    alert_id: Option<&'a str>,
    alert_rule: Option<&'a str>,
    severity: Option<&'a str>,
    monitor_condition: &'a str,
    monitoring_service: Option<&'a str>,
    signal_type: Option<&'a str>,
    context_kind: &'a str,
    target_ids: Vec<String>,
    configuration_items: &'a [String],
    fired_at: Option<String>,
    resolved_at: Option<String>,
    source_schema: &'a str,
    warnings: &'a [String],
}

fn rfc3339(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// Renders the summary line of one parsed alert.
fn summary(file: &str, alert: &Alert) -> String {
    let e = &alert.essentials;
    let line = Line {
        file,
        alert_id: e.alert_id.as_deref(),
        alert_rule: e.alert_rule.as_deref(),
        severity: e.severity.as_ref().map(|s| s.as_str()),
        monitor_condition: e.monitor_condition.as_str(),
        monitoring_service: e.monitoring_service.as_ref().map(|s| s.as_str()),
        signal_type: e.signal_type.as_ref().map(|s| s.as_str()),
        context_kind: alert.context_kind(),
        target_ids: alert
            .target_resource_ids()
            .iter()
            .map(|id| id.normalized().to_owned())
            .collect(),
        configuration_items: alert.configuration_items(),
        fired_at: rfc3339(e.fired_date_time),
        resolved_at: rfc3339(e.resolved_date_time),
        source_schema: alert.source_schema().as_str(),
        warnings: alert.warnings(),
    };
    serde_json::to_string(&line).unwrap_or_else(|e| format!("{{\"file\":null,\"error\":\"{e}\"}}"))
}

/// Inspects every file (`-` = `stdin`), writing summaries to `out` and failures to `err`.
/// Returns whether every file parsed.
pub(crate) fn run(
    files: &[String],
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<bool> {
    let mut all_ok = true;
    for file in files {
        let bytes = if file == "-" {
            let mut buf = Vec::new();
            stdin.read_to_end(&mut buf).map(|_| buf)
        } else {
            std::fs::read(file)
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(e) => {
                writeln!(err, "{file}: cannot read: {e}")?;
                all_ok = false;
                continue;
            }
        };
        match Alert::from_slice(&bytes) {
            Ok(alert) => writeln!(out, "{}", summary(file, &alert))?,
            Err(e) => {
                writeln!(err, "{file}: {}: {e}", e.path())?;
                all_ok = false;
            }
        }
    }
    Ok(all_ok)
}

#[allow(dead_code)] // `main` is unused when the integration tests include this file.
fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: inspect FILE... (`-` reads standard input)");
        return ExitCode::from(2);
    }
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    match run(
        &files,
        &mut std::io::stdin(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    ) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("inspect: output error: {e}");
            ExitCode::from(1)
        }
    }
}
