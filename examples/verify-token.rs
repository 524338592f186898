//! Verify an Azure Monitor Secure Webhook token from the command line.
//!
//! ```text
//! cargo run --example verify-token -- [OPTIONS] TOKEN      # TOKEN may be `-` (read stdin)
//!   --tenant ID        allowed tenant id (repeatable, required)
//!   --audience AUD     accepted audience: client id or App ID URI (repeatable, required)
//!   --app-id ID        allowed caller app id (repeatable; default: Azure Monitor's ids)
//!   --role ROLE        required app role (default ActionGroupsSecureWebhook)
//!   --no-role          do not require a role
//!   --version V        v1 | v2 | both (default both)
//!   --cloud C          public | usgov | china (default public)
//!   --authority URL    discovery base URL (default: the cloud's login host)
//!   --jwks FILE        verify offline against this JWKS file (no network)
//! ```
//!
//! Prints one JSON line, `{"ok":true,...}` (exit 0) or `{"ok":false,"error":CODE,"message":...}`
//! (exit 1). It never panics, whatever the input.

use std::io::Read as _;
use std::process::ExitCode;

use secure_export_aad::{Cloud, DEFAULT_ROLE, TokenVerifier, TokenVersion, TokenVersions};
use serde::Serialize;

/// The success line (field order as documented).
#[derive(Serialize)]
struct Verified<'a> {
    ok: bool,
    tenant_id: &'a str,
    app_id: &'a str,
    object_id: Option<&'a str>,
    roles: &'a [String],
    token_version: TokenVersion,
    expires_at: String,
}

/// The failure line.
#[derive(Serialize)]
struct Failed<'a> {
    ok: bool,
    error: &'a str,
    message: String,
}

fn print_json(value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(line) => println!("{line}"),
        Err(_) => println!(r#"{{"ok":false,"error":"internal","message":"cannot encode output"}}"#),
    }
}

/// Cap on what is read from stdin or a JWKS file.
const MAX_INPUT: u64 = 1 << 20;

const USAGE: &str = "usage: verify-token [--tenant ID]... [--audience AUD]... [--app-id ID]... \
[--role ROLE | --no-role] [--version v1|v2|both] [--cloud public|usgov|china] \
[--authority URL | --jwks FILE] TOKEN|-";

#[derive(Debug, Default)]
struct Args {
    tenants: Vec<String>,
    audiences: Vec<String>,
    app_ids: Vec<String>,
    role: Option<String>,
    no_role: bool,
    versions: Option<TokenVersions>,
    cloud: Option<Cloud>,
    authority: Option<String>,
    jwks: Option<String>,
    token: Option<String>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args::default();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--tenant" => a.tenants.push(value("--tenant")?),
            "--audience" => a.audiences.push(value("--audience")?),
            "--app-id" => a.app_ids.push(value("--app-id")?),
            "--role" => a.role = Some(value("--role")?),
            "--no-role" => a.no_role = true,
            "--version" => {
                a.versions = Some(match value("--version")?.as_str() {
                    "v1" => TokenVersions::V1Only,
                    "v2" => TokenVersions::V2Only,
                    "both" => TokenVersions::Both,
                    other => {
                        return Err(format!("--version must be v1, v2 or both, not {other:?}"));
                    }
                });
            }
            "--cloud" => {
                a.cloud = Some(match value("--cloud")?.as_str() {
                    "public" => Cloud::Public,
                    "usgov" => Cloud::UsGovernment,
                    "china" => Cloud::China,
                    other => {
                        return Err(format!(
                            "--cloud must be public, usgov or china, not {other:?}"
                        ));
                    }
                });
            }
            "--authority" => a.authority = Some(value("--authority")?),
            "--jwks" => a.jwks = Some(value("--jwks")?),
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ if a.token.is_some() => return Err("more than one TOKEN given".to_owned()),
            _ => a.token = Some(arg),
        }
    }
    if a.role.is_some() && a.no_role {
        return Err("--role and --no-role exclude each other".to_owned());
    }
    if a.authority.is_some() && a.jwks.is_some() {
        return Err("--authority and --jwks exclude each other".to_owned());
    }
    if a.tenants.is_empty() {
        return Err("at least one --tenant is required".to_owned());
    }
    if a.audiences.is_empty() {
        return Err("at least one --audience is required".to_owned());
    }
    if a.token.is_none() {
        return Err("TOKEN (or - for stdin) is required".to_owned());
    }
    Ok(Some(a))
}

fn read_capped(reader: impl std::io::Read, what: &str) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    reader
        .take(MAX_INPUT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    if buf.len() as u64 > MAX_INPUT {
        return Err(format!("{what} is larger than {MAX_INPUT} bytes"));
    }
    Ok(buf)
}

fn fail(code: &str, message: impl Into<String>) -> ExitCode {
    print_json(&Failed {
        ok: false,
        error: code,
        message: message.into(),
    });
    ExitCode::from(1)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail("usage", format!("{e}; {USAGE}")),
    };
    let token = match args.token.as_deref() {
        Some("-") => match read_capped(std::io::stdin().lock(), "stdin") {
            Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
            Err(e) => return fail("usage", e),
        },
        Some(t) => t.trim().to_owned(),
        None => return fail("usage", USAGE),
    };

    let mut builder = TokenVerifier::builder(args.tenants, args.audiences)
        .cloud(args.cloud.unwrap_or_default())
        .versions(args.versions.unwrap_or_default());
    if !args.app_ids.is_empty() {
        builder = builder.caller_app_ids(args.app_ids);
    }
    builder = builder.required_role(if args.no_role {
        None
    } else {
        Some(args.role.unwrap_or_else(|| DEFAULT_ROLE.to_owned()))
    });
    if let Some(url) = args.authority {
        builder = builder.authority(url);
    }
    if let Some(path) = args.jwks {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => return fail("config", format!("cannot open {path}: {e}")),
        };
        match read_capped(file, &path) {
            Ok(doc) => builder = builder.offline_jwks(doc),
            Err(e) => return fail("config", e),
        }
    }
    let verifier = match builder.build() {
        Ok(v) => v,
        Err(e) => return fail("config", e.to_string()),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail("internal", format!("cannot start the async runtime: {e}")),
    };
    let is_header = token
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("bearer "));
    let result = runtime.block_on(async {
        if is_header {
            verifier.verify_header(Some(&token)).await
        } else {
            verifier.verify(&token).await
        }
    });
    match result {
        Ok(c) => {
            print_json(&Verified {
                ok: true,
                tenant_id: &c.tenant_id,
                app_id: &c.app_id,
                object_id: c.object_id.as_deref(),
                roles: &c.roles,
                token_version: c.token_version,
                expires_at: c.expires_at.to_rfc3339(),
            });
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.code(), e.to_string()),
    }
}
