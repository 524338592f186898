#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The BMC Helix emulator over real HTTP.

use std::time::Duration;

use reqwest::StatusCode;
use secure_export_emulator::bmc::{BmcEmulator, BmcOptions};
use serde_json::{Value, json};

async fn start(opts: BmcOptions) -> (BmcEmulator, reqwest::Client, String) {
    let emu = BmcEmulator::start(opts).await.unwrap();
    let client = reqwest::Client::new();
    let token = login(&emu, &client).await;
    (emu, client, token)
}

async fn login(emu: &BmcEmulator, client: &reqwest::Client) -> String {
    let resp = client
        .post(format!("{}/api/jwt/login", emu.base_url()))
        .form(&[("username", emu.username()), ("password", emu.password())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    resp.text().await.unwrap()
}

fn entry_url(emu: &BmcEmulator, form: &str) -> String {
    format!(
        "{}/api/arsys/v1/entry/{}",
        emu.base_url(),
        form.replace(' ', "%20")
    )
}

fn incident_values(ticket: &str) -> Value {
    json!({"values": {
        "First_Name": "Azure", "Last_Name": "Monitor", "Description": "CPU high on test-VM",
        "Detailed_Decription": "Metric alert fired", "Impact": "2-Significant/Large", "Urgency": "2-High",
        "Status": "New", "Reported Source": "Systems Management", "Service_Type": "Infrastructure Event",
        "Vendor Ticket Number": ticket, "z1D_Action": "CREATE"
    }})
}

#[tokio::test]
async fn incident_lifecycle_through_the_entry_api() {
    let (emu, client, token) = start(BmcOptions::default()).await;
    let auth = format!("AR-JWT {token}");

    // Create with fields=values(...)
    let resp = client
        .post(entry_url(&emu, "HPD:IncidentInterface_Create"))
        .header("Authorization", &auth)
        .query(&[("fields", "values(Incident Number,Request ID)")])
        .json(&incident_values("AZ-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    let number = body["values"]["Incident Number"]
        .as_str()
        .unwrap()
        .to_owned();
    let create_id = body["values"]["Request ID"].as_str().unwrap().to_owned();
    assert!(number.starts_with("INC") && number.len() == 15);
    assert_eq!(create_id.len(), 15);
    assert!(location.ends_with(&format!(
        "/api/arsys/v1/entry/HPD:IncidentInterface_Create/{create_id}"
    )));

    // Create without fields: 201, Location, no body.
    let resp = client
        .post(entry_url(&emu, "HPD:IncidentInterface_Create"))
        .header("Authorization", &auth)
        .json(&incident_values("AZ-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location2 = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(resp.bytes().await.unwrap().is_empty());
    let created: Value = client
        .get(&location2)
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        created["values"]["Incident Number"]
            .as_str()
            .unwrap()
            .starts_with("INC")
    );

    // Find the open incident by qualification.
    let q = r#"'Vendor Ticket Number'="AZ-1" AND 'Status' < "Resolved""#;
    let resp = client
        .get(entry_url(&emu, "HPD:Help Desk"))
        .header("Authorization", &auth)
        .query(&[
            ("q", q),
            ("fields", "values(Entry ID,Incident Number,Status)"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let list: Value = resp.json().await.unwrap();
    let entries = list["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let values = &entries[0]["values"];
    assert_eq!(values["Incident Number"], number.as_str());
    assert_eq!(values["Status"], "New");
    assert_eq!(values.as_object().unwrap().len(), 3);
    let entry_id = values["Entry ID"].as_str().unwrap().to_owned();
    assert_ne!(entry_id, number);

    // Work log
    let resp = client
        .post(entry_url(&emu, "HPD:WorkLog"))
        .header("Authorization", &auth)
        .query(&[("fields", "values(Work Log ID)")])
        .json(&json!({"values": {"Incident Number": number, "Work Log Type": "General Information", "Detailed Description": "fired again", "Description": "update", "View Access": "Internal", "Secure Work Log": "No"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let list: Value = client
        .get(entry_url(&emu, "HPD:WorkLog"))
        .header("Authorization", &auth)
        .query(&[("q", format!("'Incident Number'=\"{number}\""))])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["entries"].as_array().unwrap().len(), 1);
    assert_eq!(emu.work_log(&number).len(), 1);

    // Resolve without Status_Reason: refused with the AR error array.
    let join = format!(
        "{}/{entry_id}%7C{entry_id}",
        entry_url(&emu, "HPD:IncidentInterface")
    );
    let resp = client
        .put(&join)
        .header("Authorization", &auth)
        .json(&json!({"values": {"Status": "Resolved", "Resolution": "gone"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let errors: Value = resp.json().await.unwrap();
    assert_eq!(errors[0]["messageType"], "ERROR");
    assert_eq!(errors[0]["messageNumber"], 51310);

    let resp = client
        .put(&join)
        .header("Authorization", &auth)
        .json(&json!({"values": {"Status": "Resolved", "Status_Reason": "Automated Resolution Reported", "Resolution": "gone"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(emu.incident(&number).unwrap()["Status"], "Resolved");

    // GET through the join form.
    let got: Value = client
        .get(&join)
        .header("Authorization", &auth)
        .query(&[("fields", "values(Status,Status_Reason)")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        got["values"],
        json!({"Status": "Resolved", "Status_Reason": "Automated Resolution Reported"})
    );

    // No longer open.
    let list: Value = client
        .get(entry_url(&emu, "HPD:Help Desk"))
        .header("Authorization", &auth)
        .query(&[("q", q)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["entries"], json!([]));

    // Reopen.
    let resp = client
        .put(&join)
        .header("Authorization", &auth)
        .json(&json!({"values": {"Status": "Assigned"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(emu.incident(&number).unwrap()["Status"], "Assigned");
    emu.shutdown().await;
}

#[tokio::test]
async fn auth_tokens_expire_and_logout_revokes() {
    let (emu, client, token) =
        start(BmcOptions::default().token_lifetime(Duration::from_secs(3600))).await;
    let url = entry_url(&emu, "HPD:Help Desk");
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let errors: Value = resp.json().await.unwrap();
    assert_eq!(errors[0]["messageNumber"], 623);
    let resp = client
        .get(&url)
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "only AR-JWT is accepted"
    );
    let resp = client
        .get(&url)
        .header("Authorization", format!("AR-JWT {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    emu.expire_tokens();
    let resp = client
        .get(&url)
        .header("Authorization", format!("AR-JWT {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let token = login(&emu, &client).await;
    let resp = client
        .post(format!("{}/api/jwt/logout", emu.base_url()))
        .header("Authorization", format!("AR-JWT {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = client
        .get(&url)
        .header("Authorization", format!("AR-JWT {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let resp = client
        .post(format!("{}/api/jwt/login", emu.base_url()))
        .form(&[("username", emu.username()), ("password", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = client
        .post(format!("{}/api/jwt/login", emu.base_url()))
        .json(&json!({"username": emu.username(), "password": emu.password()}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "login takes a form body only"
    );
}

#[tokio::test]
async fn short_token_lifetime_expires_by_itself() {
    let (emu, client, token) =
        start(BmcOptions::default().token_lifetime(Duration::from_millis(50))).await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    let resp = client
        .get(entry_url(&emu, "HPD:Help Desk"))
        .header("Authorization", format!("AR-JWT {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn validation_errors_qualifications_and_wire_format() {
    let (emu, client, token) = start(BmcOptions::default().seed_cmdb(false)).await;
    let auth = format!("AR-JWT {token}");
    let post = |form: &str, body: Value| {
        client
            .post(entry_url(&emu, form))
            .header("Authorization", &auth)
            .json(&body)
            .send()
    };

    // Missing required field, bad enum, unknown form, join-form create.
    let mut body = incident_values("AZ-9");
    body["values"]
        .as_object_mut()
        .unwrap()
        .remove("Description");
    let resp = post("HPD:IncidentInterface_Create", body).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let errors: Value = resp.json().await.unwrap();
    assert_eq!(errors[0]["messageNumber"], 326);
    assert_eq!(
        errors[0]["messageAppendedText"],
        "HPD:IncidentInterface_Create : Description"
    );
    let mut body = incident_values("AZ-9");
    body["values"]["Urgency"] = json!("High");
    let errors: Value = post("HPD:IncidentInterface_Create", body)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(errors[0]["messageNumber"], 306);
    let resp = post("HPD:HelpDesk", incident_values("AZ-9")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = post(
        "HPD:IncidentInterface_Create",
        json!({"Description": "no values wrapper"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Resolved on create needs a valid Status_Reason too.
    let mut body = incident_values("AZ-9");
    body["values"]["Status"] = json!("Resolved");
    body["values"]["Status_Reason"] = json!("Client Hold");
    let errors: Value = post("HPD:IncidentInterface_Create", body)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(errors[0]["messageNumber"], 51310);
    assert!(emu.entries("HPD:Help Desk").is_empty());

    for ticket in ["AZ-1", "AZ-2", "AZ \"3\""] {
        assert_eq!(
            post("HPD:IncidentInterface_Create", incident_values(ticket))
                .await
                .unwrap()
                .status(),
            StatusCode::CREATED
        );
    }
    let query = |q: &str| {
        client
            .get(entry_url(&emu, "HPD:Help Desk"))
            .header("Authorization", &auth)
            .query(&[
                ("q", q),
                ("fields", "values(Vendor Ticket Number)"),
                ("sort", "Vendor Ticket Number.desc"),
            ])
            .send()
    };
    let tickets = |v: &Value| -> Vec<String> {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["values"]["Vendor Ticket Number"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let v: Value = query(r#"('Vendor Ticket Number'="AZ-1" OR 'Vendor Ticket Number'="AZ ""3""") AND 'Status' = "New""#).await.unwrap().json().await.unwrap();
    assert_eq!(tickets(&v), vec!["AZ-1", "AZ \"3\""]);
    let v: Value =
        query(r#"'Vendor Ticket Number' LIKE "az-%" AND NOT 'Vendor Ticket Number' = "AZ-1""#)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(tickets(&v), vec!["AZ-2"]);
    let resp = query(r#"'Vendor_Ticket_Number'="AZ-1""#).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let errors: Value = resp.json().await.unwrap();
    assert_eq!(errors[0]["messageNumber"], 314);
    let resp = query(r#"'Vendor Ticket Number'=AZ-1"#).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let errors: Value = resp.json().await.unwrap();
    assert_eq!(errors[0]["messageNumber"], 1587);
    assert!(
        errors[0]["messageAppendedText"]
            .as_str()
            .unwrap()
            .contains("double quotes")
    );

    // A bare Entry ID on the join form is not an entry.
    let entry_id = emu.entries("HPD:Help Desk")[0]["Entry ID"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = client
        .get(format!(
            "{}/{entry_id}",
            entry_url(&emu, "HPD:IncidentInterface")
        ))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.json::<Value>().await.unwrap()[0]["messageNumber"], 302);
    assert!(
        emu.entry("HPD:IncidentInterface", &format!("{entry_id}|{entry_id}"))
            .is_some()
    );

    // Work log for an unknown incident is refused.
    let resp = post(
        "HPD:WorkLog",
        json!({"values": {"Incident Number": "INC000000999999", "Detailed Description": "x"}}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // The call log keeps the raw, percent-encoded query for wire assertions.
    let call = emu
        .calls()
        .into_iter()
        .find(|c| c.method == "GET" && c.query_param("q").is_some_and(|q| q.contains("LIKE")))
        .unwrap();
    assert_eq!(call.path, "/api/arsys/v1/entry/HPD:Help%20Desk");
    assert!(
        call.query.contains("q=%27Vendor+Ticket+Number%27+LIKE"),
        "{}",
        call.query
    );
    assert_eq!(call.header("authorization"), Some(auth.as_str()));
}

#[tokio::test]
async fn debug_hides_the_password_and_tokens() {
    let (emu, _client, token) = start(BmcOptions::default()).await;
    let debug = format!("{emu:?}");
    assert!(!debug.contains(emu.password()), "{debug}");
    assert!(!debug.contains(&token), "{debug}");
}
