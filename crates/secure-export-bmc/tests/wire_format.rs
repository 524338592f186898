//! Exact wire format of every BMC call (paths, query strings, headers, bodies), checked with
//! wiremock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use secure_export_bmc::BmcConnector;
use secure_export_cmdb::{CiRecord, CiSource, CmdbLookup};
use secure_export_itsm::{
    CiRef, ItsmConnector, NewWorkItem, Resolution, Severity, WorkItemRef, WorkItemState,
    WorkItemUpdate,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const HD_ID: &str = "000000000000301";
const NUMBER: &str = "INC000000000101";

/// One request reduced to what goes over the wire.
#[derive(Debug, PartialEq)]
struct Wire {
    method: String,
    path: String,
    query: Option<String>,
    authorization: String,
    content_type: String,
    body: Value,
}

fn wire(req: &Request) -> Wire {
    let content_type = req
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = if req.body.is_empty() {
        Value::Null
    } else if content_type == "application/json" {
        serde_json::from_slice(&req.body).unwrap()
    } else {
        Value::String(String::from_utf8(req.body.clone()).unwrap())
    };
    Wire {
        method: req.method.to_string(),
        path: req.url.path().to_owned(),
        query: req.url.query().map(str::to_owned),
        authorization: support::auth(req),
        content_type,
        body,
    }
}

fn expect(
    method: &str,
    path: &str,
    query: Option<&str>,
    authorization: &str,
    content_type: &str,
    body: Value,
) -> Wire {
    Wire {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.map(str::to_owned),
        authorization: authorization.to_owned(),
        content_type: content_type.to_owned(),
        body,
    }
}

async fn mount_incident_api(server: &MockServer) {
    let uri = server.uri();
    Mock::given(method("POST"))
        .and(path("/api/jwt/login"))
        .respond_with(ResponseTemplate::new(200).set_body_string("tok-1\n"))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/jwt/logout"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/arsys/v1/entry/HPD:IncidentInterface_Create"))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header(
                    "Location",
                    format!(
                        "{uri}/api/arsys/v1/entry/HPD:IncidentInterface_Create/000000000000201"
                    ),
                )
                .set_body_json(json!({
                    "values": {"Incident Number": NUMBER, "Request ID": "000000000000201"},
                    "_links": {}
                })),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/arsys/v1/entry/HPD:Help%20Desk"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "entries": [{"values": {"Entry ID": HD_ID, "Incident Number": NUMBER, "Status": "Assigned"}}],
            "_links": {}
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/arsys/v1/entry/HPD:Help%20Desk/{HD_ID}")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"values": {"Status": "Resolved"}})),
        )
        .mount(server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!(
            "/api/arsys/v1/entry/HPD:IncidentInterface/{HD_ID}%7C{HD_ID}"
        )))
        .respond_with(ResponseTemplate::new(204))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/arsys/v1/entry/HPD:WorkLog"))
        .respond_with(ResponseTemplate::new(201).insert_header(
            "Location",
            format!("{uri}/api/arsys/v1/entry/HPD:WorkLog/WLG000000000001"),
        ))
        .mount(server)
        .await;
}

#[tokio::test]
async fn incident_lifecycle_wire_format_is_exact() {
    let server = MockServer::start().await;
    mount_incident_api(&server).await;
    let mut config = support::config(&server.uri());
    config.assigned_group = Some("Cloud Ops".to_owned());
    let bmc = BmcConnector::new(config, support::client()).unwrap();

    let item = NewWorkItem::new("corr-1", "[Sev2] cpu high - vm1", Severity::Sev2)
        .with_description("CPU above 90%")
        .with_ci(CiRef {
            id: "RE00AZFIX00000000000000000000001".to_owned(),
            name: "vm1".to_owned(),
            class: Some("BMC_ComputerSystem".to_owned()),
        });
    let created = bmc.create(&item).await.unwrap();
    assert_eq!(
        created,
        WorkItemRef {
            id: HD_ID.to_owned(),
            number: Some(NUMBER.to_owned()),
            url: None
        }
    );
    let found = bmc.find_open("corr-1").await.unwrap().unwrap();
    assert_eq!(found.id, HD_ID);
    assert_eq!(found.number.as_deref(), Some(NUMBER));
    bmc.update(
        &created,
        &WorkItemUpdate::note("fired again").with_field("Assigned Group", "SRE"),
    )
    .await
    .unwrap();
    bmc.resolve(&created, &Resolution::new("cleared"))
        .await
        .unwrap();
    assert_eq!(bmc.state(&created).await.unwrap(), WorkItemState::Resolved);
    bmc.reopen(&created, "fired after resolve").await.unwrap();
    bmc.logout().await;

    let json = "application/json";
    let tok = "AR-JWT tok-1";
    let entry = "/api/arsys/v1/entry";
    let put_path = format!("{entry}/HPD:IncidentInterface/{HD_ID}%7C{HD_ID}");
    let work_log = |text: &str| {
        json!({"values": {
            "Incident Number": NUMBER,
            "Work Log Type": "General Information",
            "Description": text,
            "Detailed Description": text,
            "View Access": "Internal",
            "Secure Work Log": "No"
        }})
    };
    let expected = vec![
        expect(
            "POST",
            "/api/jwt/login",
            None,
            "",
            "application/x-www-form-urlencoded",
            json!("username=azure-int&password=p%40ss+w%C3%B6rd%26x%3D1"),
        ),
        expect(
            "POST",
            &format!("{entry}/HPD:IncidentInterface_Create"),
            Some("fields=values%28Incident%20Number%2CRequest%20ID%29"),
            tok,
            json,
            json!({"values": {
                "First_Name": "Azure",
                "Last_Name": "Monitor",
                "Description": "[Sev2] cpu high - vm1",
                "Detailed_Decription": "CPU above 90%",
                "Impact": "3-Moderate/Limited",
                "Urgency": "3-Medium",
                "Status": "New",
                "Reported Source": "Systems Management",
                "Service_Type": "Infrastructure Event",
                "z1D_Action": "CREATE",
                "Assigned Group": "Cloud Ops",
                "HPD_CI": "vm1",
                "HPD_CI_ReconID": "RE00AZFIX00000000000000000000001",
                "HPD_CI_FormName": "BMC_COMPUTERSYSTEM",
                "z1D_CI_FormName": "AST:ComputerSystem",
                "Vendor Ticket Number": "corr-1"
            }}),
        ),
        expect(
            "GET",
            &format!("{entry}/HPD:Help%20Desk"),
            Some(
                "q=%27Incident%20Number%27%3D%22INC000000000101%22\
                 &fields=values%28Entry%20ID%2CIncident%20Number%29&limit=10",
            ),
            tok,
            "",
            Value::Null,
        ),
        expect(
            "GET",
            &format!("{entry}/HPD:Help%20Desk"),
            Some(
                "q=%27Vendor%20Ticket%20Number%27%3D%22corr-1%22%20AND%20%27Status%27%20%3C%20%22Resolved%22\
                 &fields=values%28Entry%20ID%2CIncident%20Number%2CStatus%29\
                 &sort=Entry%20ID.desc&limit=50",
            ),
            tok,
            "",
            Value::Null,
        ),
        expect(
            "PUT",
            &put_path,
            None,
            tok,
            json,
            json!({"values": {"Assigned Group": "SRE"}}),
        ),
        expect(
            "POST",
            &format!("{entry}/HPD:WorkLog"),
            None,
            tok,
            json,
            work_log("fired again"),
        ),
        expect(
            "PUT",
            &put_path,
            None,
            tok,
            json,
            json!({"values": {
                "Status": "Resolved",
                "Status_Reason": "Automated Resolution Reported",
                "Resolution": "cleared"
            }}),
        ),
        expect(
            "GET",
            &format!("{entry}/HPD:Help%20Desk/{HD_ID}"),
            Some("fields=values%28Status%29"),
            tok,
            "",
            Value::Null,
        ),
        expect(
            "PUT",
            &put_path,
            None,
            tok,
            json,
            json!({"values": {"Status": "Assigned"}}),
        ),
        expect(
            "POST",
            &format!("{entry}/HPD:WorkLog"),
            None,
            tok,
            json,
            work_log("fired after resolve"),
        ),
        expect("POST", "/api/jwt/logout", None, tok, "", Value::Null),
    ];
    let received: Vec<Wire> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(wire)
        .collect();
    assert_eq!(received.len(), expected.len(), "{received:#?}");
    for (got, want) in received.iter().zip(&expected) {
        assert_eq!(got, want);
    }
    // Every API call asks for JSON.
    for req in server.received_requests().await.unwrap().iter().skip(1) {
        if req.url.path().starts_with("/api/arsys") {
            assert_eq!(req.headers.get("accept").unwrap(), "application/json");
        }
    }
}

#[tokio::test]
async fn work_note_on_a_ref_without_number_reads_the_number_first() {
    let server = MockServer::start().await;
    support::mount_login(&server, std::time::Duration::ZERO).await;
    Mock::given(method("GET"))
        .and(path(format!("/api/arsys/v1/entry/HPD:Help%20Desk/{HD_ID}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"values": {"Incident Number": NUMBER}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/arsys/v1/entry/HPD:WorkLog"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    let bmc = support::connector(&server.uri());
    bmc.update(&WorkItemRef::new(HD_ID), &WorkItemUpdate::note("hello"))
        .await
        .unwrap();
    let reads = support::requests_to(&server, "/api/arsys/v1/entry/HPD:Help%20Desk/").await;
    assert_eq!(
        reads[0].url.query(),
        Some("fields=values%28Incident%20Number%29")
    );
    let logs = support::requests_to(&server, "/api/arsys/v1/entry/HPD:WorkLog").await;
    let body: Value = logs[0].body_json().unwrap();
    assert_eq!(body["values"]["Incident Number"], NUMBER);
}

#[tokio::test]
async fn cmdb_lookups_wire_format_and_mapping() {
    let server = MockServer::start().await;
    support::mount_login(&server, std::time::Duration::ZERO).await;
    let arm = "/subscriptions/s1/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm1";
    Mock::given(method("GET"))
        .and(path("/api/cmdb/v1.0/instances/BMC.ASSET/BMC.CORE/BMC_ComputerSystem"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "instances": [
                {
                    "instance_id": "OI-1",
                    "class_name_key": {"name": "BMC_ComputerSystem", "namespace": "BMC.CORE"},
                    "dataset_id": "BMC.ASSET",
                    "attributes": {
                        "Name": "vm1",
                        "ReconciliationIdentity": "RE1",
                        "CloudID": "/subscriptions/S1/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/VM1"
                    }
                },
                {"instance_id": "OI-2", "attributes": {"Name": "no-recon", "CloudID": arm}}
            ],
            "num_matches": 2
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/cmdb/v1.0/instances/BMC.ASSET/BMC.CORE/BMC_OperatingSystem"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "instances": [{"instance_id": "OI-3", "attributes": {"Name": "vm1", "ReconciliationIdentity": "RE3"}}]
        })))
        .mount(&server)
        .await;

    let mut config = support::config(&server.uri());
    config.cmdb.classes = vec![
        "BMC_ComputerSystem".to_owned(),
        "BMC_OperatingSystem".to_owned(),
    ];
    let cmdb = BmcConnector::new(config, support::client()).unwrap().cmdb();

    let by_id = cmdb.by_resource_id(arm).await.unwrap();
    assert_eq!(
        by_id,
        vec![CiRecord {
            id: "RE1".to_owned(),
            name: "vm1".to_owned(),
            class: Some("BMC_ComputerSystem".to_owned()),
            source: CiSource::ResourceId
        }]
    );
    let calls = support::requests_to(&server, "/api/cmdb/").await;
    assert_eq!(
        calls.len(),
        1,
        "a resource-id match in the first class ends the search"
    );
    assert_eq!(
        calls[0].url.query().unwrap(),
        "qualification=%27CloudID%27%20LIKE%20%22%2Fsubscriptions%2Fs1%2Fresourcegroups%2Frg%2Fproviders%2Fmicrosoft.compute%2Fvirtualmachines%2Fvm1%22\
         &attributes=Name%2CReconciliationIdentity%2CCloudID&limit=20"
    );
    assert_eq!(support::auth(&calls[0]), "AR-JWT tok-1");

    let hinted = cmdb
        .by_name("vm1", Some("BMC_OperatingSystem"))
        .await
        .unwrap();
    assert_eq!(hinted.len(), 1);
    assert_eq!(hinted[0].id, "RE3");
    assert_eq!(hinted[0].class.as_deref(), Some("BMC_OperatingSystem"));
    assert_eq!(hinted[0].source, CiSource::Name);
    let calls = support::requests_to(&server, "/api/cmdb/").await;
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[1].url.query().unwrap(),
        "qualification=%27Name%27%20LIKE%20%22vm1%22&attributes=Name%2CReconciliationIdentity&limit=20"
    );

    // A non-BMC hint (an Azure type) is ignored: every configured class is searched.
    let all = cmdb
        .by_name("vm1", Some("microsoft.compute/virtualmachines"))
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["RE1", "RE3"]);
    assert_eq!(support::requests_to(&server, "/api/cmdb/").await.len(), 4);

    // A resource id nobody has: both classes are asked, and instances whose CloudID differs
    // (or is missing) are not taken even though the server returned them.
    assert!(
        cmdb.by_resource_id("/subscriptions/other")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(support::requests_to(&server, "/api/cmdb/").await.len(), 6);
}
