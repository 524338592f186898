//! `secure-export-emulator`: run the ServiceNow or BMC Helix emulator by hand.
//!
//! ```text
//! cargo run -p secure-export-emulator -- servicenow --listen 127.0.0.1:8081
//! cargo run -p secure-export-emulator -- bmc --listen 127.0.0.1:8082
//! ```
//!
//! Prints the base URL and the credentials, then serves until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use secure_export_emulator::bmc::{BmcEmulator, BmcOptions};
use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};

const USAGE: &str = "\
usage: secure-export-emulator <servicenow|bmc> [options]

options:
  --listen ADDR            address to listen on (default 127.0.0.1:8081 for servicenow, 127.0.0.1:8082 for bmc)
  --allow-remote           allow a non-loopback listen address
  --username NAME          login user (default admin / Demo)
  --password PASS          login password (default: random, printed)
  --client-id ID           ServiceNow OAuth client id (default: random, printed)
  --client-secret SECRET   ServiceNow OAuth client secret (default: random, printed)
  --token-lifetime SECS    OAuth access token / AR-JWT lifetime in seconds (default 1800 / 3600)
  --no-cmdb                do not seed the CMDB fixture
  -h, --help               show this help";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ServiceNow,
    Bmc,
}

#[derive(Debug)]
struct Args {
    kind: Kind,
    listen: SocketAddr,
    allow_remote: bool,
    username: Option<String>,
    password: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    token_lifetime: Option<Duration>,
    seed_cmdb: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let kind = match args.next().as_deref() {
        Some("servicenow") => Kind::ServiceNow,
        Some("bmc") => Kind::Bmc,
        Some("-h" | "--help") | None => return Err(String::new()),
        Some(other) => {
            return Err(format!(
                "unknown emulator '{other}' (expected servicenow or bmc)"
            ));
        }
    };
    let default_port = if kind == Kind::ServiceNow { 8081 } else { 8082 };
    let mut parsed = Args {
        kind,
        listen: SocketAddr::from(([127, 0, 0, 1], default_port)),
        allow_remote: false,
        username: None,
        password: None,
        client_id: None,
        client_secret: None,
        token_lifetime: None,
        seed_cmdb: true,
    };
    while let Some(flag) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--listen" => {
                let v = value("--listen")?;
                parsed.listen = v.parse().map_err(|e| {
                    format!("--listen '{v}' is not a socket address like 127.0.0.1:8081: {e}")
                })?;
            }
            "--allow-remote" => parsed.allow_remote = true,
            "--username" => parsed.username = Some(value("--username")?),
            "--password" => parsed.password = Some(value("--password")?),
            "--client-id" => parsed.client_id = Some(value("--client-id")?),
            "--client-secret" => parsed.client_secret = Some(value("--client-secret")?),
            "--token-lifetime" => {
                let v = value("--token-lifetime")?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("--token-lifetime '{v}' is not a number of seconds"))?;
                parsed.token_lifetime = Some(Duration::from_secs(secs));
            }
            "--no-cmdb" => parsed.seed_cmdb = false,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    if !parsed.listen.ip().is_loopback() && !parsed.allow_remote {
        return Err(format!(
            "refusing to listen on non-loopback address {} without --allow-remote (the emulator has well-known behaviour and no real security)",
            parsed.listen
        ));
    }
    Ok(parsed)
}

async fn run(args: Args) -> std::io::Result<()> {
    match args.kind {
        Kind::ServiceNow => {
            let mut opts = ServiceNowOptions::default()
                .listen(args.listen)
                .seed_cmdb(args.seed_cmdb);
            if args.username.is_some() || args.password.is_some() {
                opts = opts.credentials(
                    args.username.unwrap_or_else(|| "admin".to_owned()),
                    args.password
                        .unwrap_or_else(|| format!("emu-{}", uuid_like())),
                );
            }
            if let (Some(id), Some(secret)) = (args.client_id.clone(), args.client_secret.clone()) {
                opts = opts.oauth_client(id, secret);
            } else if args.client_id.is_some() || args.client_secret.is_some() {
                return Err(std::io::Error::other(
                    "--client-id and --client-secret go together",
                ));
            }
            if let Some(lifetime) = args.token_lifetime {
                opts = opts.token_lifetime(lifetime);
            }
            let emu = ServiceNowEmulator::start(opts).await?;
            println!("ServiceNow emulator listening on {}", emu.base_url());
            println!("  basic auth:    {} / {}", emu.username(), emu.password());
            println!(
                "  oauth client:  {} / {}",
                emu.oauth_client_id(),
                emu.oauth_client_secret()
            );
            println!("  token URL:     {}/oauth_token.do", emu.base_url());
            println!("  table API:     {}/api/now/table/incident", emu.base_url());
            println!("Press Ctrl-C to stop.");
            tokio::signal::ctrl_c().await?;
            emu.shutdown().await;
        }
        Kind::Bmc => {
            let mut opts = BmcOptions::default()
                .listen(args.listen)
                .seed_cmdb(args.seed_cmdb);
            if args.username.is_some() || args.password.is_some() {
                opts = opts.credentials(
                    args.username.unwrap_or_else(|| "Demo".to_owned()),
                    args.password
                        .unwrap_or_else(|| format!("emu-{}", uuid_like())),
                );
            }
            if let Some(lifetime) = args.token_lifetime {
                opts = opts.token_lifetime(lifetime);
            }
            let emu = BmcEmulator::start(opts).await?;
            println!("BMC Helix emulator listening on {}", emu.base_url());
            println!("  login:         {} / {}", emu.username(), emu.password());
            println!("  login URL:     {}/api/jwt/login", emu.base_url());
            println!(
                "  entry API:     {}/api/arsys/v1/entry/HPD:IncidentInterface_Create",
                emu.base_url()
            );
            println!(
                "  CMDB:          {}/api/cmdb/v1.0/instances/BMC.ASSET/BMC.CORE/BMC_ComputerSystem",
                emu.base_url()
            );
            println!("Press Ctrl-C to stop.");
            tokio::signal::ctrl_c().await?;
            emu.shutdown().await;
        }
    }
    println!("stopped");
    Ok(())
}

/// A random suffix for generated passwords.
fn uuid_like() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn defaults_and_flags() {
        let a = parse(&["servicenow"]).unwrap();
        assert_eq!(a.listen.port(), 8081);
        let a = parse(&[
            "bmc",
            "--listen",
            "127.0.0.1:9000",
            "--token-lifetime",
            "60",
            "--no-cmdb",
        ])
        .unwrap();
        assert_eq!(a.kind, Kind::Bmc);
        assert_eq!(a.listen.port(), 9000);
        assert_eq!(a.token_lifetime, Some(Duration::from_secs(60)));
        assert!(!a.seed_cmdb);
    }

    #[test]
    fn refuses_remote_without_flag_and_bad_input() {
        let err = parse(&["servicenow", "--listen", "0.0.0.0:8081"]).unwrap_err();
        assert!(err.contains("--allow-remote"), "{err}");
        assert!(parse(&["servicenow", "--listen", "0.0.0.0:8081", "--allow-remote"]).is_ok());
        assert!(parse(&["jira"]).unwrap_err().contains("jira"));
        assert!(
            parse(&["bmc", "--listen"])
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(
            parse(&["bmc", "--listen", "nope"])
                .unwrap_err()
                .contains("nope")
        );
        assert!(parse(&["bmc", "--bogus"]).unwrap_err().contains("--bogus"));
    }
}
