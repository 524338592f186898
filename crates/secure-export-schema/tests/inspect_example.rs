//! Runs the `inspect` example's logic over every fixture and over bad input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub
)]

#[path = "../../../examples/inspect.rs"]
mod inspect;

mod support;

use serde_json::Value;

fn run(files: &[String], stdin: &[u8]) -> (bool, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let ok = inspect::run(files, &mut &stdin[..], &mut out, &mut err).unwrap();
    (
        ok,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

const KEYS: [&str; 14] = [
    "file",
    "alert_id",
    "alert_rule",
    "severity",
    "monitor_condition",
    "monitoring_service",
    "signal_type",
    "context_kind",
    "target_ids",
    "configuration_items",
    "fired_at",
    "resolved_at",
    "source_schema",
    "warnings",
];

#[test]
fn every_fixture_gives_one_line_with_every_key() {
    let dir = support::fixtures_dir();
    let mut files = Vec::new();
    for sub in ["", "legacy"] {
        for (name, _) in support::fixtures(sub) {
            files.push(dir.join(sub).join(name).to_string_lossy().into_owned());
        }
    }
    let (ok, out, err) = run(&files, b"");
    assert!(ok, "{err}");
    assert!(err.is_empty(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), files.len());
    for (line, file) in lines.iter().zip(&files) {
        let v: Value = serde_json::from_str(line).unwrap();
        let obj = v.as_object().unwrap();
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        let mut expected = KEYS.to_vec();
        expected.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, expected, "{file}");
        assert_eq!(obj["file"], file.as_str());
        for id in obj["target_ids"].as_array().unwrap() {
            let id = id.as_str().unwrap();
            assert_eq!(id, id.to_lowercase(), "{file}");
        }
        if let Some(t) = obj["fired_at"].as_str() {
            assert!(t.ends_with('Z'), "{file}: {t}");
            assert!(
                chrono::DateTime::parse_from_rfc3339(t).is_ok(),
                "{file}: {t}"
            );
        }
    }
    // Key order is the documented one.
    assert!(lines[0].starts_with("{\"file\":"));
    let pos: Vec<usize> = KEYS
        .iter()
        .map(|k| lines[0].find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{}", lines[0]);
}

#[test]
fn known_values_for_one_fixture_and_stdin() {
    let body = std::fs::read(support::fixtures_dir().join("metric-static-resolved.json")).unwrap();
    let (ok, out, _) = run(&["-".to_owned()], &body);
    assert!(ok);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["file"], "-");
    assert_eq!(v["severity"], "Sev3");
    assert_eq!(v["monitor_condition"], "Resolved");
    assert_eq!(v["monitoring_service"], "Platform");
    assert_eq!(v["signal_type"], "Metric");
    assert_eq!(v["context_kind"], "metric_static");
    assert_eq!(v["configuration_items"][0], "wcus-r2-gen2");
    assert_eq!(
        v["target_ids"][0],
        "/subscriptions/<subscription id>/resourcegroups/pipelinealertrg/providers/microsoft.compute/virtualmachines/wcus-r2-gen2"
    );
    assert_eq!(v["fired_at"], "2019-03-22T13:58:24.371321300Z");
    assert_eq!(v["resolved_at"], "2019-03-22T14:03:16.224631300Z");
    assert_eq!(v["source_schema"], "common_alert_schema");
    assert_eq!(v["alert_rule"], "WCUS-R2-Gen2");
    assert!(v["warnings"].as_array().unwrap().is_empty());
}

#[test]
fn failures_name_the_file_and_path_and_fail_the_run() {
    let good = support::fixtures_dir()
        .join("metric-static-resolved.json")
        .to_string_lossy()
        .into_owned();
    let files = vec![good, "-".to_owned(), "/nonexistent/file.json".to_owned()];
    let (ok, out, err) = run(
        &files,
        br#"{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{"monitorCondition":1}}}"#,
    );
    assert!(!ok);
    assert_eq!(out.lines().count(), 1);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("-: data.essentials.monitorCondition"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("/nonexistent/file.json: cannot read"),
        "{}",
        lines[1]
    );
}
