use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str_with_env(text, no_env)
}

const MINIMAL: &str = r#"
[[connection]]
name = "prod"
tenant_ids = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
audiences = ["api://x"]
backend = "mock"
"#;

#[test]
fn minimal_config_gets_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.server.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
    assert_eq!(c.server.body_limit, DEFAULT_BODY_LIMIT);
    let conn = &c.connections[0];
    assert_eq!(conn.correlation, "alert");
    assert_eq!(conn.reopen_window, Duration::from_secs(86_400));
    assert_eq!(conn.backend, BackendKind::Mock);
}

#[test]
fn servicenow_password_from_env() {
    let text = r#"
[server]
listen = "0.0.0.0:9000"
data_dir = "/tmp/x"
[[connection]]
name = "prod"
tenant_ids = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
audiences = ["api://x"]
allowed_subscriptions = [" AAAA0A0A-BB1B-CC2C-DD3D-EEEEEE4E4E4E "]
backend = "servicenow"
correlation = "rule+target"
reopen_window = "2h"
[connection.servicenow]
instance_url = "https://example.service-now.com"
username = "svc"
password_env = "SN_PASSWORD"
kind = "event"
assignment_group = "ops"
caller_id = "azure"
[connection.cmdb]
strategies = ["resource_id", "name", "fallback"]
fallback_ci = "abc123"
"#;
    let c = Config::from_toml_str_with_env(text, |k| (k == "SN_PASSWORD").then(|| "pw".to_owned()))
        .unwrap();
    let conn = &c.connections[0];
    let sn = conn.servicenow.as_ref().unwrap();
    assert_eq!(sn.password.as_ref().unwrap().expose_secret(), "pw");
    assert_eq!(conn.reopen_window, Duration::from_secs(7200));
    assert_eq!(
        conn.allowed_subscriptions.as_deref(),
        Some(&["aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e".to_owned()][..])
    );
    assert_eq!(
        conn.cmdb
            .as_ref()
            .unwrap()
            .fallback_ci
            .as_ref()
            .unwrap()
            .id(),
        "abc123"
    );
    assert!(!format!("{c:?}").contains("\"pw\""));
}

#[test]
fn missing_env_secret_names_the_key() {
    let text = r#"
[[connection]]
name = "p"
tenant_ids = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
audiences = ["a"]
backend = "bmc"
[connection.bmc]
base_url = "https://x.onbmc.com"
username = "u"
password_env = "NOPE"
first_name = "A"
last_name = "B"
"#;
    let err = parse(text).unwrap_err();
    assert_eq!(err.key(), Some("connection[0].bmc.password_env"));
    assert!(err.to_string().contains("NOPE"), "{err}");
}

#[test]
fn bad_url_names_the_key() {
    let text = r#"
[[connection]]
name = "p"
tenant_ids = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
audiences = ["a"]
backend = "servicenow"
[connection.servicenow]
instance_url = "not a url"
username = "u"
password = "p"
"#;
    let err = parse(text).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("connection[0].servicenow.instance_url: "),
        "{err}"
    );
}

#[test]
fn plain_http_only_for_loopback() {
    let text = MINIMAL.replace(
        "backend = \"mock\"",
        "backend = \"mock\"\nauthority = \"http://login.example.com\"",
    );
    let err = parse(&text).unwrap_err();
    assert_eq!(err.key(), Some("connection[0].authority"));
    let text = MINIMAL.replace(
        "backend = \"mock\"",
        "backend = \"mock\"\nauthority = \"http://127.0.0.1:9\"",
    );
    parse(&text).unwrap();
}

#[test]
fn unknown_key_and_wrong_type_are_named() {
    let err = parse(&MINIMAL.replace("backend", "colour = 1\nbackend")).unwrap_err();
    assert_eq!(err.key(), Some("connection[0].colour"), "{err}");
    assert!(err.to_string().contains("colour"), "{err}");
    let err = parse(&MINIMAL.replace("\"mock\"", "\"jira\"")).unwrap_err();
    assert_eq!(err.key(), Some("connection[0].backend"), "{err}");
    let err = parse(&format!("{MINIMAL}reopen_window = \"soon\"")).unwrap_err();
    assert_eq!(err.key(), Some("connection[0].reopen_window"), "{err}");
}

#[test]
fn tenant_ids_must_be_guids() {
    let err =
        parse(&MINIMAL.replace("72f988bf-86f1-41af-91ab-2d7cd011db47", "contoso.com")).unwrap_err();
    assert_eq!(err.key(), Some("connection[0].tenant_ids[0]"), "{err}");
    assert!(err.to_string().contains("contoso.com"), "{err}");
}

#[test]
fn enumerated_values_are_checked() {
    let err = parse(&format!("{MINIMAL}correlation = \"rule\"")).unwrap_err();
    assert_eq!(err.key(), Some("connection[0].correlation"));
    assert!(err.to_string().contains("\"rule+target\""), "{err}");
}

#[test]
fn duplicate_names_and_missing_sections() {
    let err = parse(&format!("{MINIMAL}{MINIMAL}")).unwrap_err();
    assert_eq!(err.key(), Some("connection[1].name"));
    let err = parse(&MINIMAL.replace("\"mock\"", "\"servicenow\"")).unwrap_err();
    assert_eq!(err.key(), Some("connection[0].servicenow"));
    let err = parse("[server]\nlisten = \"127.0.0.1:1\"").unwrap_err();
    assert_eq!(err.key(), Some("connection"));
    let err = parse(&MINIMAL.replace("\"prod\"", "\"a/b\"")).unwrap_err();
    assert_eq!(err.key(), Some("connection[0].name"));
}

#[test]
fn fallback_strategy_needs_a_ci() {
    let err = parse(&format!(
        "{MINIMAL}[connection.cmdb]\nstrategies = [\"fallback\"]"
    ))
    .unwrap_err();
    assert_eq!(err.key(), Some("connection[0].cmdb.fallback_ci"));
    let c = parse(&format!(
        "{MINIMAL}[connection.cmdb]\nstrategies = [\"fallback\"]\nfallback_ci = {{ id = \"x\", name = \"Azure\" }}"
    ))
    .unwrap();
    assert_eq!(
        c.connections[0]
            .cmdb
            .as_ref()
            .unwrap()
            .fallback_ci
            .as_ref()
            .unwrap()
            .name(),
        "Azure"
    );
}

#[test]
fn syntax_errors_are_reported() {
    assert!(matches!(parse("[server"), Err(ConfigError::Syntax(_))));
}

#[test]
fn config_path_from_flag() {
    let args = ["receiver", "--config", "a.toml"].map(str::to_owned);
    assert_eq!(config_path_from_args(args), Some(PathBuf::from("a.toml")));
    let args = ["receiver", "--config=b.toml"].map(str::to_owned);
    assert_eq!(config_path_from_args(args), Some(PathBuf::from("b.toml")));
}

#[test]
fn the_example_file_is_valid() {
    let text = include_str!("../../../../examples/secure-export.example.toml");
    let c = Config::from_toml_str_with_env(text, |k| {
        matches!(k, "SERVICENOW_PASSWORD" | "BMC_PASSWORD").then(|| "from-env".to_owned())
    })
    .unwrap();
    assert_eq!(c.connections.len(), 2);
    assert_eq!(c.connections[1].backend, BackendKind::Bmc);
    assert_eq!(c.engine.max_age, Some(Duration::from_secs(6 * 3600)));
}

#[test]
fn the_example_file_builds_every_backend() {
    let text = include_str!("../../../../examples/secure-export.example.toml");
    let c = Config::from_toml_str_with_env(text, |_| Some("from-env".to_owned())).unwrap();
    let runtime = c.build_runtime(&reqwest::Client::new()).unwrap();
    let names: Vec<&str> = runtime
        .connections
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["contoso-servicenow", "fabrikam-bmc"]);
    assert_eq!(runtime.gates.len(), 2);
    assert!(runtime.connections.iter().all(|c| c.binder.is_some()));
    assert_eq!(runtime.engine_options.max_attempts, 12);
    assert_eq!(runtime.engine_options.lease, Duration::from_secs(300));
}

#[test]
fn invalid_template_names_its_key() {
    let text = format!("{MINIMAL}title_template = \"{{{{ unclosed\"");
    let c = parse(&text).unwrap();
    let err = c.build_runtime(&reqwest::Client::new()).unwrap_err();
    assert_eq!(err.key(), Some("connection[0].title_template"), "{err}");
}

#[test]
fn mock_backend_with_static_map_builds() {
    let text = format!(
        "{MINIMAL}[connection.cmdb]\nstrategies = [\"static_map\", \"fallback\"]\nfallback_ci = \"x\"\n\
         [[connection.cmdb.static_map]]\npattern = \"/subscriptions/*\"\nci = {{ id = \"ci-1\", name = \"All\" }}\n"
    );
    let runtime = parse(&text)
        .unwrap()
        .build_runtime(&reqwest::Client::new())
        .unwrap();
    assert!(runtime.connections[0].binder.is_some());
}

#[test]
fn postgres_url_from_env_and_validation() {
    let with = |server: &str| format!("[server]\n{server}\n{MINIMAL}");
    let c = Config::from_toml_str_with_env(&with("database_url_env = \"PG\""), |k| {
        (k == "PG").then(|| "postgres://u:pw@127.0.0.1/db".to_owned())
    })
    .unwrap();
    let url = c.server.database_url.as_ref().unwrap();
    assert_eq!(url.expose_secret(), "postgres://u:pw@127.0.0.1/db");
    assert!(
        !format!("{c:?}").contains("pw@"),
        "the URL's password leaked into Debug"
    );

    let err = parse(&with("database_url = \"mysql://x\"")).unwrap_err();
    assert_eq!(err.key(), Some("server.database_url"));
    let err = parse(&with("database_url_env = \"UNSET\"")).unwrap_err();
    assert_eq!(err.key(), Some("server.database_url_env"));
    let err = parse(&with("database_schema = \"s\"")).unwrap_err();
    assert_eq!(err.key(), Some("server.database_schema"));
    let err = parse(&with(
        "database_url = \"postgres://h/db\"\ndatabase_max_connections = 0",
    ))
    .unwrap_err();
    assert_eq!(err.key(), Some("server.database_max_connections"));
    assert!(parse(MINIMAL).unwrap().server.database_url.is_none());
}

#[tokio::test]
async fn open_store_defaults_to_sqlite_in_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("data");
    let text = format!(
        "[server]\ndata_dir = {:?}\n{MINIMAL}",
        data.display().to_string()
    );
    let c = parse(&text).unwrap();
    let store = c.server.open_store().await.unwrap();
    store.ping().await.unwrap();
    assert!(data.join(crate::store::DB_FILE).exists());
}

// Security review: config values that used to be accepted and then failed silently or panicked.

#[test]
fn review_allowed_subscriptions_must_be_guids() {
    for bad in [
        "ABC",
        "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e",
        "prod-sub",
    ] {
        let text = MINIMAL.replace(
            "backend = \"mock\"",
            &format!("allowed_subscriptions = [\"aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e\", {bad:?}]\nbackend = \"mock\""),
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(
            err.key(),
            Some("connection[0].allowed_subscriptions[1]"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn review_urls_with_credentials_are_refused_without_echoing_them() {
    let text = r#"
[[connection]]
name = "prod"
tenant_ids = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
audiences = ["api://x"]
backend = "servicenow"
[connection.servicenow]
instance_url = "URL"
username = "svc"
password = "pw"
"#;
    for url in [
        "https://svc:S3CRET-PW@example.service-now.com",
        "http://svc:S3CRET-PW@example.service-now.com/x",
        "https://S3CRET-PW@example.service-now.com",
    ] {
        let err = parse(&text.replace("URL", url)).unwrap_err();
        assert_eq!(
            err.key(),
            Some("connection[0].servicenow.instance_url"),
            "{err}"
        );
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("S3CRET-PW"), "credentials echoed: {shown}");
    }
    let err = parse(&MINIMAL.replace(
        "backend = \"mock\"",
        "authority = \"https://u:S3CRET-PW@login.example\"\nbackend = \"mock\"",
    ))
    .unwrap_err();
    assert_eq!(err.key(), Some("connection[0].authority"));
    assert!(!err.to_string().contains("S3CRET-PW"), "{err}");
}

#[test]
fn review_durations_that_would_overflow_an_instant_are_refused() {
    for (section, key) in [
        ("engine", "shutdown_grace"),
        ("engine", "lease"),
        ("server", "retry_after"),
    ] {
        let text = format!("[{section}]\n{key} = 9223372036854775807\n{MINIMAL}");
        let err = parse(&text).unwrap_err();
        assert_eq!(
            err.key(),
            Some(format!("{section}.{key}").as_str()),
            "{err}"
        );
        assert!(err.to_string().contains("10 year maximum"), "{err}");
    }
    let text = MINIMAL.replace(
        "backend = \"mock\"",
        "backend = \"mock\"\nreopen_window = \"100000000d\"",
    );
    let err = parse(&text).unwrap_err();
    assert_eq!(err.key(), Some("connection[0].reopen_window"), "{err}");
}

#[test]
fn max_calls_per_second_must_be_positive() {
    for bad in ["0", "-1", "nan"] {
        let err = parse(&format!("{MINIMAL}max_calls_per_second = {bad}")).unwrap_err();
        assert_eq!(
            err.key(),
            Some("connection[0].max_calls_per_second"),
            "{bad}: {err}"
        );
    }
    let cfg = parse(&format!("{MINIMAL}max_calls_per_second = 12.5")).unwrap();
    assert_eq!(cfg.connections[0].max_calls_per_second, Some(12.5));
}

fn with_server(server: &str) -> String {
    format!("[server]\n{server}\n{MINIMAL}")
}

#[test]
fn listener_defaults() {
    let c = parse(MINIMAL).unwrap();
    let s = &c.server;
    assert_eq!(
        s.admin_listen,
        Some(SocketAddr::from(([127, 0, 0, 1], 9090)))
    );
    assert_eq!(s.header_read_timeout, Duration::from_secs(10));
    assert_eq!(s.keep_alive_timeout, Duration::from_secs(5));
    assert_eq!(s.max_connections, 4096);
    assert_eq!(s.quarantine_max_rows, 10_000);
    assert_eq!(s.quarantine_max_bytes, 256 * 1024 * 1024);
    assert_eq!(s.retention, Duration::from_secs(30 * 86_400));
    let conn = &c.connections[0];
    assert_eq!(conn.max_targets, 50);
    assert_eq!(conn.max_clock_skew, Duration::from_secs(300));
    assert_eq!(conn.max_queued, None);
    assert!(matches!(
        s.admin_access(),
        crate::router::AdminAccess::Unauthenticated
    ));
    let options = c.engine_options();
    assert_eq!(options.retention, Some(Duration::from_secs(30 * 86_400)));
}

#[test]
fn admin_listen_off_and_its_token() {
    let c = parse(&with_server(r#"admin_listen = "off""#)).unwrap();
    assert_eq!(c.server.admin_listen, None);
    // Not loopback without a token: refused, naming the key.
    let e = parse(&with_server(r#"admin_listen = "0.0.0.0:9090""#)).unwrap_err();
    assert_eq!(e.key(), Some("server.admin_token_env"), "{e}");
    let text = with_server(
        r#"admin_listen = "0.0.0.0:9090"
admin_token_env = "ADMIN_TOKEN""#,
    );
    let e = Config::from_toml_str_with_env(&text, |_| Some("short".to_owned())).unwrap_err();
    assert!(e.to_string().contains("at least 16"), "{e}");
    let c = Config::from_toml_str_with_env(&text, |k| {
        (k == "ADMIN_TOKEN").then(|| "0123456789abcdef0123".to_owned())
    })
    .unwrap();
    let token = c.server.admin_token.as_ref().unwrap();
    assert_eq!(token.expose_secret(), "0123456789abcdef0123");
    assert!(
        !format!("{c:?}").contains("0123456789abcdef0123"),
        "token in Debug"
    );
    let e = parse(&with_server(
        r#"listen = "127.0.0.1:9090"
admin_listen = "127.0.0.1:9090""#,
    ))
    .unwrap_err();
    assert_eq!(e.key(), Some("server.admin_listen"));
    let e = parse(&with_server(r#"admin_listen = "nowhere""#)).unwrap_err();
    assert!(e.to_string().contains("\"off\""), "{e}");
}

#[test]
fn listener_limits_are_checked() {
    for (line, key) in [
        (
            r#"header_read_timeout = "0s""#,
            "server.header_read_timeout",
        ),
        (
            "header_read_timeout = \"2s\"\nkeep_alive_timeout = \"3s\"",
            "server.keep_alive_timeout",
        ),
        ("max_connections = 0", "server.max_connections"),
        ("quarantine_max_rows = 0", "server.quarantine_max_rows"),
        ("quarantine_max_bytes = 0", "server.quarantine_max_bytes"),
        (r#"tls_cert = "/etc/cert.pem""#, "server.tls_key"),
        (r#"tls_key = "/etc/key.pem""#, "server.tls_cert"),
        (r#"retention = "0s""#, "server.retention"),
    ] {
        let e = parse(&with_server(line)).unwrap_err();
        assert_eq!(e.key(), Some(key), "{line}: {e}");
    }
    let c = parse(&with_server(
        "tls_cert = \"/etc/cert.pem\"\ntls_key = \"/etc/key.pem\"\nkeep_alive_timeout = \"0s\"",
    ))
    .unwrap();
    let options = c.server.public_serve_options();
    assert!(options.tls.is_some());
    assert!(options.keep_alive_timeout.is_zero());
}

#[test]
fn an_empty_required_role_is_refused_with_the_explicit_way_out() {
    let text = MINIMAL.replace(
        "backend = \"mock\"",
        "backend = \"mock\"\nrequired_role = \"\"",
    );
    let e = parse(&text).unwrap_err();
    assert_eq!(e.key(), Some("connection[0].required_role"));
    assert!(e.to_string().contains("insecure_no_role_check"), "{e}");
    let text = MINIMAL.replace(
        "backend = \"mock\"",
        "backend = \"mock\"\ninsecure_no_role_check = true",
    );
    assert!(parse(&text).unwrap().connections[0].insecure_no_role_check);
    let text = MINIMAL.replace(
        "backend = \"mock\"",
        "backend = \"mock\"\ninsecure_no_role_check = true\nrequired_role = \"X\"",
    );
    assert_eq!(
        parse(&text).unwrap_err().key(),
        Some("connection[0].insecure_no_role_check")
    );
}

#[test]
fn connection_bounds_are_checked() {
    for (line, key) in [
        ("max_targets = 0", "connection[0].max_targets"),
        ("max_queued = 0", "connection[0].max_queued"),
    ] {
        let text = MINIMAL.replace("backend = \"mock\"", &format!("backend = \"mock\"\n{line}"));
        assert_eq!(parse(&text).unwrap_err().key(), Some(key), "{line}");
    }
    let text = MINIMAL.replace(
        "backend = \"mock\"",
        "backend = \"mock\"\nmax_targets = 10\nmax_queued = 500\nmax_clock_skew = \"1m\"",
    );
    let c = parse(&text).unwrap();
    let conn = &c.connections[0];
    assert_eq!(
        (conn.max_targets, conn.max_queued, conn.max_clock_skew),
        (10, Some(500), Duration::from_secs(60))
    );
}
