//! Crash test: the receiver example binary is killed with SIGKILL while alerts stream in, then
//! restarted on the same data directory. Every alert answered 202 must reach its final state in
//! the ServiceNow emulator, with exactly one incident per alert.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{AUDIENCE, TENANT, eventually, fired, resolved};
use secure_export_aad::test_util::TestIssuer;
use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};
use serde_json::Value;
use tokio::sync::Semaphore;

const KEYS: usize = 100;
const TIMES: [&str; 5] = [
    "2025-04-15T18:00:00Z",
    "2025-04-15T18:05:00Z",
    "2025-04-15T18:10:00Z",
    "2025-04-15T18:15:00Z",
    "2025-04-15T18:20:00Z",
];

fn receiver_binary() -> PathBuf {
    // target/debug/deps/crash-<hash> -> target/debug/examples/receiver
    let exe = std::env::current_exe().unwrap();
    let debug_dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = debug_dir.join("examples").join("receiver");
    assert!(
        bin.exists(),
        "{} not found: `cargo test -p secure-export` builds it (examples are built for tests)",
        bin.display()
    );
    bin
}

struct Running {
    child: Child,
    url: String,
}

/// The events of key `k`, in order, and the incident state they must end in.
fn script(k: usize) -> (Vec<Value>, &'static str) {
    let id = format!("crash-{k:03}");
    let with_rule = |mut v: Value| {
        v["data"]["essentials"]["alertRule"] = Value::String(format!("crash-rule-{k:03}"));
        v
    };
    let mut events = vec![
        with_rule(fired(&id, TIMES[0])),
        with_rule(fired(&id, TIMES[1])),
        with_rule(resolved(&id, TIMES[1], TIMES[2])),
        with_rule(fired(&id, TIMES[3])),
    ];
    if k.is_multiple_of(2) {
        events.push(with_rule(resolved(&id, TIMES[3], TIMES[4])));
        (events, "6")
    } else {
        // Azure redelivers the same Fired: a duplicate, still 202.
        events.push(with_rule(fired(&id, TIMES[3])));
        (events, "2")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_nothing_and_duplicates_nothing() {
    let issuer = TestIssuer::start(TENANT).await.unwrap();
    let sn = ServiceNowEmulator::start(ServiceNowOptions::default().seed_cmdb(false))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("receiver.toml");
    let log = dir.path().join("receiver.log");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
data_dir = "{data}"

[engine]
lease = "1s"
poll_interval = "50ms"
base_delay = "10ms"
max_delay = "200ms"
shutdown_grace = "1s"

[[connection]]
name = "crash"
tenant_ids = ["{tenant}"]
audiences = ["{audience}"]
authority = "{authority}"
backend = "servicenow"

[connection.servicenow]
instance_url = "{sn_url}"
username = "{user}"
password_env = "CRASH_TEST_SN_PASSWORD"
timeout = "5s"
"#,
            data = dir.path().join("data").display(),
            tenant = TENANT,
            audience = AUDIENCE,
            authority = issuer.authority(),
            sn_url = sn.base_url(),
            user = sn.username(),
        ),
    )
    .unwrap();
    let password = sn.password().to_owned();
    let start = |config: PathBuf, log: PathBuf, password: String| async move {
        tokio::task::spawn_blocking(move || start_receiver(&config, &log, &password))
            .await
            .unwrap()
    };

    let mut running = start(config.clone(), log.clone(), password.clone()).await;
    let token = format!("Bearer {}", issuer.token(AUDIENCE));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    let scripts: Vec<(Vec<Value>, &str)> = (0..KEYS).map(script).collect();
    let total: usize = scripts.iter().map(|(e, _)| e.len()).sum();
    assert_eq!(total, 500);
    // Progress per key: index of the next event to send.
    let progress: Arc<Vec<AtomicUsize>> =
        Arc::new((0..KEYS).map(|_| AtomicUsize::new(0)).collect());
    let answered = Arc::new(AtomicUsize::new(0));

    // Phase 1: stream with 16 concurrent keys; kill -9 after about 200 accepted alerts.
    let killed_at = {
        let url = format!("{}/api/alerts", running.url);
        let gate = Arc::new(Semaphore::new(16));
        let mut tasks = Vec::new();
        for (k, (events, _)) in scripts.iter().enumerate() {
            let (client, url, token, gate) =
                (client.clone(), url.clone(), token.clone(), gate.clone());
            let (progress, answered, events) = (progress.clone(), answered.clone(), events.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                for (i, event) in events.iter().enumerate() {
                    let sent = client
                        .post(&url)
                        .header("authorization", &token)
                        .json(event)
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().as_u16() == 202 => {
                            progress[k].store(i + 1, Ordering::SeqCst);
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        // Not accepted (process killed, 503): Azure would retry; so do we, later.
                        _ => return,
                    }
                }
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while answered.load(Ordering::SeqCst) < 200 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        running.child.kill().unwrap(); // SIGKILL
        running.child.wait().unwrap();
        let at = answered.load(Ordering::SeqCst);
        for t in tasks {
            t.await.unwrap();
        }
        at
    };
    assert!(
        killed_at >= 200 && killed_at < total,
        "killed after {killed_at} of {total}"
    );

    // Phase 2: restart on the same data directory and send what was not accepted, in order.
    let mut running = start(config, log.clone(), password).await;
    let url = format!("{}/api/alerts", running.url);
    for (k, (events, _)) in scripts.iter().enumerate() {
        for (i, event) in events
            .iter()
            .enumerate()
            .skip(progress[k].load(Ordering::SeqCst))
        {
            let r = client
                .post(&url)
                .header("authorization", &token)
                .json(event)
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status().as_u16(),
                202,
                "key {k} event {i}: {}",
                r.text().await.unwrap()
            );
            answered.fetch_add(1, Ordering::SeqCst);
        }
    }
    assert!(answered.load(Ordering::SeqCst) >= total);

    // Every key reaches its final state, with exactly one incident.
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        eventually(Duration::from_secs(60), || async {
            let by_rule = incidents_by_rule(&sn);
            let done = scripts.iter().enumerate().all(|(k, (_, state))| {
                by_rule
                    .get(&format!("crash-rule-{k:03}"))
                    .is_some_and(|list| list.len() == 1 && list[0] == *state)
            });
            done.then_some(by_rule)
        }),
    )
    .await;
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let by_rule = outcome.unwrap_or_else(|_| {
        panic!(
            "not all keys reached their final state: {:#?}\nreceiver log:\n{log_text}",
            incidents_by_rule(&sn)
        )
    });
    for (rule, states) in &by_rule {
        assert_eq!(
            states.len(),
            1,
            "duplicate incidents for {rule}: {states:?}"
        );
    }
    assert_eq!(by_rule.len(), KEYS);
    eprintln!(
        "crash test: killed after {killed_at} accepted alerts of {total}; {} incidents, {} ServiceNow calls",
        by_rule.len(),
        sn.calls().len()
    );
    running.child.kill().unwrap();
    running.child.wait().unwrap();
}

fn start_receiver(config: &Path, log: &Path, password: &str) -> Running {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = Command::new(receiver_binary())
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .env("CRASH_TEST_SN_PASSWORD", password)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| {
            panic!(
                "receiver did not start:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
    Running { child, url }
}

/// Incident states grouped by the rule name in their title (`[Sev4] crash-rule-007 - ...`).
fn incidents_by_rule(sn: &ServiceNowEmulator) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for inc in sn.records("incident") {
        let title = inc["short_description"].as_str().unwrap_or_default();
        if let Some(rule) = title
            .split_whitespace()
            .find(|w| w.starts_with("crash-rule-"))
        {
            let state = match &inc["state"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            map.entry(rule.to_owned()).or_default().push(state);
        }
    }
    map
}
