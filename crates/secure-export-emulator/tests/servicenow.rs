#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The ServiceNow emulator over real HTTP.

use std::time::Duration;

use reqwest::StatusCode;
use secure_export_emulator::servicenow::{ServiceNowEmulator, ServiceNowOptions};
use serde_json::{Value, json};

async fn start() -> (ServiceNowEmulator, reqwest::Client) {
    let emu = ServiceNowEmulator::start(ServiceNowOptions::default())
        .await
        .unwrap();
    (emu, reqwest::Client::new())
}

fn table_url(emu: &ServiceNowEmulator, table: &str) -> String {
    format!("{}/api/now/table/{table}", emu.base_url())
}

async fn create_incident(emu: &ServiceNowEmulator, client: &reqwest::Client, body: Value) -> Value {
    let resp = client
        .post(table_url(emu, "incident"))
        .basic_auth(emu.username(), Some(emu.password()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json::<Value>().await.unwrap()["result"].clone()
}

#[tokio::test]
async fn incident_create_get_query_patch_with_basic_auth() {
    let (emu, client) = start().await;
    let resp = client
        .post(table_url(&emu, "incident"))
        .basic_auth(emu.username(), Some(emu.password()))
        .json(&json!({"short_description": "CPU high", "impact": 1, "urgency": "2", "correlation_id": "AZ-1", "cmdb_ci": "a0e1f1c7000000000000000000000001", "work_notes": "opened by test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = resp.json().await.unwrap();
    let rec = &created["result"];
    let sys_id = rec["sys_id"].as_str().unwrap().to_owned();
    assert_eq!(sys_id.len(), 32);
    assert_eq!(
        location,
        format!("{}/{sys_id}", table_url(&emu, "incident"))
    );
    assert_eq!(rec["number"], "INC0010001");
    assert_eq!(rec["impact"], "1", "every value is a string");
    assert_eq!(rec["priority"], "2", "priority from impact x urgency");
    assert_eq!(rec["work_notes"], "", "journal fields are write-only");
    assert_eq!(
        rec["cmdb_ci"],
        json!({"link": format!("{}/a0e1f1c7000000000000000000000001", table_url(&emu, "cmdb_ci")), "value": "a0e1f1c7000000000000000000000001"})
    );
    assert_eq!(emu.journal(&sys_id).len(), 1);
    assert_eq!(emu.journal(&sys_id)[0].value, "opened by test");

    // GET by sys_id
    let got: Value = client
        .get(&location)
        .basic_auth(emu.username(), Some(emu.password()))
        .query(&[
            ("sysparm_exclude_reference_link", "true"),
            ("sysparm_fields", "number,cmdb_ci,nonexistent"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        got,
        json!({"result": {"number": "INC0010001", "cmdb_ci": "a0e1f1c7000000000000000000000001"}})
    );

    // Query
    let resp = client
        .get(table_url(&emu, "incident"))
        .basic_auth(emu.username(), Some(emu.password()))
        .query(&[
            ("sysparm_query", "correlation_id=AZ-1^active=true"),
            ("sysparm_fields", "sys_id,number,state"),
            ("sysparm_limit", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-total-count"], "1");
    let list: Value = resp.json().await.unwrap();
    assert_eq!(
        list["result"],
        json!([{"sys_id": sys_id, "number": "INC0010001", "state": "1"}])
    );

    // PATCH work note, then resolve.
    let resp = client
        .patch(&location)
        .basic_auth(emu.username(), Some(emu.password()))
        .json(&json!({"work_notes": "fired again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(emu.journal(&sys_id).len(), 2);

    let resp = client
        .patch(&location)
        .basic_auth(emu.username(), Some(emu.password()))
        .json(&json!({"state": "6"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "failure");
    assert_eq!(body["error"]["message"], "Operation Failed");

    let resp = client
        .put(&location)
        .basic_auth(emu.username(), Some(emu.password()))
        .json(&json!({"state": "6", "close_code": "Solution provided", "close_notes": "Azure resolved the alert"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let rec = emu.record("incident", &sys_id).unwrap();
    assert_eq!(rec["state"], "6");
    assert_eq!(rec["active"], "false");

    // No longer found as open; empty list is 200 [].
    let list: Value = client
        .get(table_url(&emu, "incident"))
        .basic_auth(emu.username(), Some(emu.password()))
        .query(&[("sysparm_query", "correlation_id=AZ-1^active=true")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!({"result": []}));
    let calls = emu.calls();
    assert_eq!(calls.len(), 7);
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].path, "/api/now/table/incident");
    assert_eq!(calls[0].status, 201);
    assert_eq!(calls[0].json_body().unwrap()["correlation_id"], "AZ-1");
    assert_eq!(
        calls[2].query_param("sysparm_query").as_deref(),
        Some("correlation_id=AZ-1^active=true")
    );
    assert!(
        calls[2]
            .query
            .contains("sysparm_query=correlation_id%3DAZ-1%5Eactive%3Dtrue"),
        "{}",
        calls[2].query
    );
    assert!(
        calls[0]
            .header("authorization")
            .unwrap()
            .starts_with("Basic ")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn errors_use_the_servicenow_envelope() {
    let (emu, client) = start().await;
    let resp = client
        .get(table_url(&emu, "incident"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"message": "User is not authenticated", "detail": "Required to provide Auth information"}, "status": "failure"})
    );
    let resp = client
        .get(format!(
            "{}/0123456789abcdef0123456789abcdef",
            table_url(&emu, "incident")
        ))
        .basic_auth(emu.username(), Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = client
        .get(format!(
            "{}/0123456789abcdef0123456789abcdef",
            table_url(&emu, "incident")
        ))
        .basic_auth(emu.username(), Some(emu.password()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"message": "No Record found", "detail": "Record doesn't exist or ACL restricts the record retrieval"}, "status": "failure"})
    );
    let created = create_incident(&emu, &client, json!({"short_description": "x"})).await;
    assert_eq!(created["state"], "1");
}

async fn token(
    emu: &ServiceNowEmulator,
    client: &reqwest::Client,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client
        .post(format!("{}/oauth_token.do", emu.base_url()))
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn oauth_password_refresh_and_client_credentials_grants() {
    let emu = ServiceNowEmulator::start(ServiceNowOptions::default().seed_cmdb(false))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let (id, secret) = (
        emu.oauth_client_id().to_owned(),
        emu.oauth_client_secret().to_owned(),
    );
    let password_form = [
        ("grant_type", "password"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
        ("username", emu.username()),
        ("password", emu.password()),
    ];
    let resp = token(&emu, &client, &password_form).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let first: Value = resp.json().await.unwrap();
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["scope"], "useraccount");
    let expires = first["expires_in"].as_u64().unwrap();
    assert!((1799..=1800).contains(&expires));
    let access = first["access_token"].as_str().unwrap().to_owned();
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();

    // Same token until expiry.
    let again: Value = token(&emu, &client, &password_form)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["access_token"], access.as_str());

    let url = format!("{}/api/now/table/incident", emu.base_url());
    let resp = client.get(&url).bearer_auth(&access).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // Expired token: 401; refresh gives a new one.
    emu.expire_tokens();
    let resp = client.get(&url).bearer_auth(&access).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let refreshed: Value = token(
        &emu,
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("refresh_token", &refresh),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let new_access = refreshed["access_token"].as_str().unwrap();
    assert_ne!(new_access, access);
    assert!(refreshed.get("refresh_token").is_none());
    let resp = client
        .get(&url)
        .bearer_auth(new_access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // client_credentials
    let cc: Value = token(
        &emu,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(cc["access_token"].is_string());

    // Failures.
    let resp = token(
        &emu,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": "server_error", "error_description": "access_denied"})
    );
    let resp = client
        .post(format!("{}/oauth_token.do", emu.base_url()))
        .json(
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "JSON bodies are refused"
    );
    let calls = emu.calls();
    assert_eq!(calls[0].path, "/oauth_token.do");
    assert_eq!(
        calls[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn oauth_tokens_expire_after_their_lifetime_and_grants_can_be_disabled() {
    let emu = ServiceNowEmulator::start(
        ServiceNowOptions::default()
            .seed_cmdb(false)
            .token_lifetime(Duration::from_millis(50))
            .client_credentials_grant(false),
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let (id, secret) = (
        emu.oauth_client_id().to_owned(),
        emu.oauth_client_secret().to_owned(),
    );
    let resp = token(
        &emu,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = token(
        &emu,
        &client,
        &[
            ("grant_type", "password"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("username", emu.username()),
            ("password", emu.password()),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let access = body["access_token"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    let resp = client
        .get(format!("{}/api/now/table/incident", emu.base_url()))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

async fn get_json(
    emu: &ServiceNowEmulator,
    client: &reqwest::Client,
    table: &str,
    query: &[(&str, &str)],
) -> (reqwest::header::HeaderMap, Value) {
    let resp = client
        .get(table_url(emu, table))
        .basic_auth(emu.username(), Some(emu.password()))
        .query(query)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    (headers, resp.json().await.unwrap())
}

#[tokio::test]
async fn encoded_queries_pagination_and_unknown_fields() {
    let (emu, client) = start().await;
    for (i, corr) in ["A", "B", "C"].iter().enumerate() {
        create_incident(&emu, &client, json!({"short_description": format!("Disk {i} full"), "correlation_id": corr, "urgency": (i + 1).to_string()})).await;
    }
    let numbers = |v: &Value| -> Vec<String> {
        v["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["number"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, v) = get_json(
        &emu,
        &client,
        "incident",
        &[(
            "sysparm_query",
            "correlation_id=A^ORcorrelation_id=C^ORDERBYDESCnumber",
        )],
    )
    .await;
    assert_eq!(numbers(&v), vec!["INC0010003", "INC0010001"]);
    // Unknown field: silently dropped, the rest still filters.
    let (_, v) = get_json(
        &emu,
        &client,
        "incident",
        &[("sysparm_query", "correlation_idd=A^urgency=2")],
    )
    .await;
    assert_eq!(numbers(&v), vec!["INC0010002"]);
    let (_, v) = get_json(
        &emu,
        &client,
        "incident",
        &[("sysparm_query", "correlation_idd=A")],
    )
    .await;
    assert_eq!(numbers(&v).len(), 3);
    let (_, v) = get_json(
        &emu,
        &client,
        "incident",
        &[(
            "sysparm_query",
            "short_descriptionLIKEdisk 1^ORshort_descriptionSTARTSWITHDisk 2",
        )],
    )
    .await;
    assert_eq!(numbers(&v), vec!["INC0010002", "INC0010003"]);
    // Shortcut filter parameter.
    let (_, v) = get_json(&emu, &client, "incident", &[("correlation_id", "B")]).await;
    assert_eq!(numbers(&v), vec!["INC0010002"]);
    // Pagination.
    let (headers, v) = get_json(
        &emu,
        &client,
        "incident",
        &[
            ("sysparm_limit", "2"),
            ("sysparm_offset", "1"),
            ("sysparm_query", "ORDERBYnumber"),
        ],
    )
    .await;
    assert_eq!(numbers(&v), vec!["INC0010002", "INC0010003"]);
    assert_eq!(headers["x-total-count"], "3");
    let link = headers["link"].to_str().unwrap();
    assert!(
        link.contains("rel=\"prev\"") && link.contains("rel=\"first\""),
        "{link}"
    );
    let resp = client
        .get(table_url(&emu, "incident"))
        .basic_auth(emu.username(), Some(emu.password()))
        .query(&[("sysparm_offset", "-1")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn events_task_ci_journal_table_and_write_errors() {
    let (emu, client) = start().await;
    let inc = create_incident(
        &emu,
        &client,
        json!({"short_description": "x", "comments": "customer visible"}),
    )
    .await;
    let inc_id = inc["sys_id"].as_str().unwrap();
    let post = |table: &str, body: Value| {
        client
            .post(table_url(&emu, table))
            .basic_auth(emu.username(), Some(emu.password()))
            .json(&body)
            .send()
    };
    let resp = post(
        "task_ci",
        json!({"task": inc_id, "ci_item": "a0e1f1c7000000000000000000000004"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (_, v) = get_json(
        &emu,
        &client,
        "task_ci",
        &[
            ("sysparm_query", &format!("task={inc_id}")),
            ("sysparm_exclude_reference_link", "true"),
        ],
    )
    .await;
    assert_eq!(
        v["result"][0]["ci_item"],
        "a0e1f1c7000000000000000000000004"
    );
    let (_, v) = get_json(
        &emu,
        &client,
        "task_ci",
        &[
            ("sysparm_query", "ci_item.name=test-storageAccount"),
            (
                "sysparm_fields",
                "task,task.number,ci_item.object_id,ci_item.bogus",
            ),
        ],
    )
    .await;
    assert_eq!(v["result"][0]["task"]["value"], inc_id);
    assert_eq!(v["result"][0]["task.number"], "INC0010001");
    assert!(
        v["result"][0]["ci_item.object_id"]
            .as_str()
            .unwrap()
            .ends_with("/storageAccounts/test-storageAccount")
    );
    assert!(v["result"][0].get("ci_item.bogus").is_none());

    let resp = post("em_event", json!({"source": "Azure Monitor", "node": "test-VM", "message_key": "AZ-1", "severity": "1", "additional_info": "{\"a\":\"b\"}"})).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let ev: Value = resp.json().await.unwrap();
    assert_eq!(ev["result"]["state"], "Processed");
    let alert_id = ev["result"]["alert"]["value"].as_str().unwrap().to_owned();
    let alert = emu.record("em_alert", &alert_id).unwrap();
    assert_eq!(alert["state"], "Open");
    assert_eq!(alert["number"], "Alert0010001");
    assert_eq!(alert["severity"], "1");
    // Clear closes the alert, a new event with the same key reopens it.
    let ev: Value = post("em_event", json!({"source": "Azure Monitor", "node": "test-VM", "message_key": "AZ-1", "severity": "0"})).await.unwrap().json().await.unwrap();
    assert_eq!(ev["result"]["alert"]["value"], alert_id.as_str());
    assert_eq!(
        emu.record("em_alert", &alert_id).unwrap()["state"],
        "Closed"
    );
    post("em_event", json!({"source": "Azure Monitor", "node": "test-VM", "message_key": "AZ-1", "severity": "2"})).await.unwrap();
    let alert = emu.record("em_alert", &alert_id).unwrap();
    assert_eq!(alert["state"], "Reopen");
    assert_eq!(alert["severity"], "2");
    // A Clear for an unknown key creates no alert.
    let ev: Value = post(
        "em_event",
        json!({"source": "Azure Monitor", "node": "n", "message_key": "AZ-404", "severity": "0"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(ev["result"]["alert"], "");
    assert_eq!(emu.records("em_alert").len(), 1);
    let resp = post(
        "em_event",
        json!({"source": "Azure Monitor", "node": "test-VM"}),
    )
    .await
    .unwrap();
    let ev: Value = resp.json().await.unwrap();
    assert_eq!(
        ev["result"]["state"], "Error",
        "empty severity lands in Error"
    );
    assert_eq!(emu.records("em_event").len(), 5);

    let (_, v) = get_json(
        &emu,
        &client,
        "sys_journal_field",
        &[(
            "sysparm_query",
            &format!("element_id={inc_id}^element=comments"),
        )],
    )
    .await;
    assert_eq!(v["result"][0]["value"], "customer visible");

    // Invalid table, wrong content type, no-response-body, denied writes.
    let resp = post("nonexistent", json!({})).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["message"],
        "Invalid table nonexistent"
    );
    let resp = client
        .post(table_url(&emu, "incident"))
        .basic_auth(emu.username(), Some(emu.password()))
        .header("Content-Type", "text/plain")
        .body("short_description=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let resp = client
        .post(table_url(&emu, "incident"))
        .basic_auth(emu.username(), Some(emu.password()))
        .header("X-no-response-body", "true")
        .json(&json!({"short_description": "quiet"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(resp.headers().contains_key("location"));
    assert!(resp.bytes().await.unwrap().is_empty());
    emu.deny_writes("incident");
    let resp = post("incident", json!({"short_description": "nope"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        resp.json::<Value>().await.unwrap()["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("ACL")
    );
    let resp = client
        .delete(format!("{}/{inc_id}", table_url(&emu, "task_ci")))
        .basic_auth(emu.username(), Some(emu.password()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "a task sys_id is not a task_ci row"
    );
}

#[tokio::test]
async fn strict_invalid_query_setting_returns_no_rows() {
    let emu = ServiceNowEmulator::start(
        ServiceNowOptions::default()
            .seed_cmdb(false)
            .invalid_query_returns_no_rows(true),
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    create_incident(
        &emu,
        &client,
        json!({"short_description": "x", "correlation_id": "A"}),
    )
    .await;
    let (_, v) = get_json(
        &emu,
        &client,
        "incident",
        &[("sysparm_query", "correlation_idd=A^active=true")],
    )
    .await;
    assert_eq!(v, json!({"result": []}));
    let (headers, v) = get_json(
        &emu,
        &client,
        "incident",
        &[("sysparm_query", "correlation_id=A^active=true")],
    )
    .await;
    assert_eq!(v["result"].as_array().unwrap().len(), 1);
    assert_eq!(headers["x-total-count"], "1");
}

#[tokio::test]
async fn display_values_and_in_process_find() {
    let (emu, client) = start().await;
    let inc = create_incident(
        &emu,
        &client,
        json!({"short_description": "x", "impact": "1", "urgency": "1", "cmdb_ci": "a0e1f1c7000000000000000000000001"}),
    )
    .await;
    let id = inc["sys_id"].as_str().unwrap();
    let get = |mode: &'static str, exclude: &'static str| {
        client
            .get(format!("{}/{id}", table_url(&emu, "incident")))
            .basic_auth(emu.username(), Some(emu.password()))
            .query(&[
                ("sysparm_display_value", mode),
                ("sysparm_exclude_reference_link", exclude),
                ("sysparm_fields", "state,priority,cmdb_ci"),
            ])
            .send()
    };
    let v: Value = get("true", "true").await.unwrap().json().await.unwrap();
    assert_eq!(
        v["result"],
        json!({"state": "New", "priority": "1 - Critical", "cmdb_ci": "test-VM"})
    );
    let v: Value = get("all", "false").await.unwrap().json().await.unwrap();
    assert_eq!(
        v["result"]["state"],
        json!({"display_value": "New", "value": "1"})
    );
    assert_eq!(v["result"]["cmdb_ci"]["display_value"], "test-VM");
    assert_eq!(
        v["result"]["cmdb_ci"]["value"],
        "a0e1f1c7000000000000000000000001"
    );
    assert!(
        v["result"]["cmdb_ci"]["link"]
            .as_str()
            .unwrap()
            .ends_with("/cmdb_ci/a0e1f1c7000000000000000000000001")
    );
    let v: Value = get("false", "false").await.unwrap().json().await.unwrap();
    assert_eq!(v["result"]["state"], "1");

    let found = emu.find("incident", "priority=1^active=true");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["sys_id"], id);
    assert_eq!(
        emu.find("cmdb_ci", "name=test-VM^ORDERBYsys_class_name")
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_get_unique_numbers_and_debug_hides_secrets() {
    let (emu, client) = start().await;
    let url = table_url(&emu, "incident");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (client, url) = (client.clone(), url.clone());
        let (user, pass) = (emu.username().to_owned(), emu.password().to_owned());
        tasks.spawn(async move {
            let resp = client
                .post(url)
                .basic_auth(user, Some(pass))
                .json(&json!({"short_description": format!("storm {i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::CREATED);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let mut numbers: Vec<String> = emu
        .records("incident")
        .iter()
        .map(|r| r["number"].as_str().unwrap().to_owned())
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 50);
    assert_eq!(emu.calls().len(), 50);

    let debug = format!("{emu:?}");
    assert!(!debug.contains(emu.password()), "{debug}");
    assert!(!debug.contains(emu.oauth_client_secret()), "{debug}");
}
