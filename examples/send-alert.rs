//! Posts alert payloads to a receiver, like Azure Monitor's Secure Webhook action does.
//!
//! ```text
//! cargo run --example send-alert -- [--url URL] [--token TOKEN] [--demo-file FILE] FILE...
//! ```
//!
//! Without `--token`, the URL and a token come from the demo file the receiver writes in demo
//! mode (`./data/demo.json`). Prints the status and body of each answer; exits non-zero if any
//! answer is not 2xx.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: send-alert [--url URL] [--token TOKEN] [--demo-file FILE] FILE...";

#[derive(Debug, Default)]
struct Args {
    url: Option<String>,
    token: Option<String>,
    demo_file: Option<PathBuf>,
    files: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--url" => args.url = Some(value("--url")?),
            "--token" => args.token = Some(value("--token")?),
            "--demo-file" => args.demo_file = Some(PathBuf::from(value("--demo-file")?)),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other if other.starts_with("--") => {
                return Err(format!("unknown option {other}\n{USAGE}"));
            }
            _ => args.files.push(PathBuf::from(arg)),
        }
    }
    if args.files.is_empty() {
        return Err(format!("no payload file given\n{USAGE}"));
    }
    Ok(args)
}

/// URL and token from the receiver's demo file.
fn demo_settings(path: &PathBuf) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {} ({e}); start `cargo run --example receiver` (demo mode) first, \
             or pass --url and --token",
            path.display()
        )
    })?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let field = |name: &str| {
        v.get(name)
            .and_then(serde_json::Value::as_str)
            .map(ToOwned::to_owned)
            .ok_or_else(|| format!("{}: missing string field {name:?}", path.display()))
    };
    Ok((field("url")?, field("token")?))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let (url, token) = match (args.url, args.token) {
        (Some(url), Some(token)) => (url, token),
        (url, token) => {
            let path = args
                .demo_file
                .unwrap_or_else(|| PathBuf::from("./data/demo.json"));
            match demo_settings(&path) {
                Ok((demo_url, demo_token)) => {
                    (url.unwrap_or(demo_url), token.unwrap_or(demo_token))
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let mut all_ok = true;
    for file in &args.files {
        let body = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: cannot read: {e}", file.display());
                all_ok = false;
                continue;
            }
        };
        let sent = client
            .post(&url)
            .bearer_auth(&token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                println!("{} -> {} {}", file.display(), status.as_u16(), text.trim());
                all_ok &= status.is_success();
            }
            Err(e) => {
                println!("{} -> request failed: {e}", file.display());
                all_ok = false;
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
