//! BMC forms held in memory and the AR workflow the emulator applies.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::qualification::ENUMS;
use super::vocabulary::{PENDING_REASONS, REPORTED_SOURCES, RESOLVED_REASONS, SERVICE_TYPES};

/// Incidents live here; the interface forms read and write it.
pub const HELP_DESK: &str = "HPD:Help Desk";
/// The create interface form.
pub const CREATE_FORM: &str = "HPD:IncidentInterface_Create";
/// The join interface form (ids are `id|id`).
pub const INTERFACE_FORM: &str = "HPD:IncidentInterface";
/// Work info entries.
pub const WORK_LOG: &str = "HPD:WorkLog";

/// An entry: field name to JSON value.
pub(crate) type Entry = Map<String, Value>;

/// An AR error: HTTP status plus the message array entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArError {
    pub(crate) status: u16,
    pub(crate) number: u32,
    pub(crate) text: String,
    pub(crate) appended: String,
}

impl ArError {
    pub(crate) fn new(status: u16, number: u32, text: &str, appended: impl Into<String>) -> Self {
        Self {
            status,
            number,
            text: text.to_owned(),
            appended: appended.into(),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.000+0000`, AR's JSON date format.
pub(crate) fn ar_now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S.000+0000")
        .to_string()
}

/// Priority from Impact x Urgency (an approximation of the ITSM priority matrix).
pub(crate) fn priority(impact: &str, urgency: &str) -> &'static str {
    let level = |v: &str| {
        v.get(..1)
            .and_then(|d| d.parse::<u8>().ok())
            .filter(|n| (1..=4).contains(n))
            .unwrap_or(4)
    };
    match level(impact) + level(urgency) {
        ..=2 => "Critical",
        3..=4 => "High",
        5..=6 => "Medium",
        _ => "Low",
    }
}

fn text(entry: &Entry, field: &str) -> String {
    match entry.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// All BMC state behind one lock.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) forms: HashMap<String, Vec<Entry>>,
    counters: HashMap<&'static str, u64>,
    pub(crate) tokens: super::token::Tokens,
    /// CMDB instances per class.
    pub(crate) cmdb: BTreeMap<String, Vec<BTreeMap<String, String>>>,
}

fn check_enum(entry: &Entry, field: &str, allowed: &[&str], form: &str) -> Result<(), ArError> {
    match entry.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(other) => Err(ArError::new(
            400,
            306,
            "Value does not fall within the limits specified for the field",
            format!("{form} : {field} : {}", text_of(other)),
        )),
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn enum_values(field: &str) -> &'static [&'static str] {
    ENUMS
        .iter()
        .find(|(n, _)| *n == field)
        .map(|(_, v)| *v)
        .unwrap_or(&[])
}

/// Validate enum fields and the Status / Status_Reason rule on the merged entry.
fn validate_incident(merged: &Entry, form: &str) -> Result<(), ArError> {
    for field in ["Status", "Impact", "Urgency"] {
        check_enum(merged, field, enum_values(field), form)?;
    }
    check_enum(merged, "Service_Type", SERVICE_TYPES, form)?;
    check_enum(merged, "Reported Source", REPORTED_SOURCES, form)?;
    let status = text(merged, "Status");
    let reason = text(merged, "Status_Reason");
    let allowed: &[&str] = match status.as_str() {
        "Resolved" => RESOLVED_REASONS,
        "Pending" => PENDING_REASONS,
        _ => return Ok(()),
    };
    if !allowed.contains(&reason.as_str()) {
        let shown = if reason.is_empty() {
            "<none>".to_owned()
        } else {
            reason
        };
        return Err(ArError::new(
            400,
            51310,
            "The Status Reason value is required and must be valid for the selected Status value.",
            format!("Status: {status}; Status_Reason: {shown}"),
        ));
    }
    Ok(())
}

impl Store {
    fn next(&mut self, counter: &'static str, start: u64) -> u64 {
        let c = self.counters.entry(counter).or_insert(start);
        *c += 1;
        *c
    }

    pub(crate) fn entries(&self, form: &str) -> &[Entry] {
        self.forms.get(form).map(Vec::as_slice).unwrap_or_default()
    }

    /// The entry of `form` with id `id` (join ids `id|id` for the interface form).
    pub(crate) fn entry(&self, form: &str, id: &str) -> Option<&Entry> {
        let (store_form, key) = Self::resolve(form, id)?;
        self.entries(store_form)
            .iter()
            .find(|e| text(e, Self::id_field(store_form)) == key)
    }

    fn entry_mut(&mut self, form: &str, id: &str) -> Option<&mut Entry> {
        let (store_form, key) = Self::resolve(form, id)?;
        let field = Self::id_field(store_form);
        self.forms
            .get_mut(store_form)?
            .iter_mut()
            .find(|e| text(e, field) == key)
    }

    /// Map a (form, id) to the stored form and its key.
    fn resolve<'a>(form: &'a str, id: &'a str) -> Option<(&'a str, &'a str)> {
        if form == INTERFACE_FORM {
            let (a, b) = id.split_once('|')?;
            return (a == b).then_some((HELP_DESK, a));
        }
        Some((form, id))
    }

    /// The field holding an entry's id on a stored form.
    pub(crate) fn id_field(form: &str) -> &'static str {
        match form {
            HELP_DESK => "Entry ID",
            WORK_LOG => "Work Log ID",
            _ => "Request ID",
        }
    }

    /// Create an incident through `HPD:IncidentInterface_Create`; returns the
    /// create-form entry id.
    pub(crate) fn create_incident(
        &mut self,
        mut values: Entry,
        user: &str,
    ) -> Result<String, ArError> {
        let form = CREATE_FORM;
        let infrastructure = text(&values, "Service_Type") == "Infrastructure Event";
        let mut required = vec![
            "Description",
            "Impact",
            "Urgency",
            "Status",
            "Reported Source",
            "Service_Type",
        ];
        if !infrastructure && text(&values, "Login_ID").is_empty() {
            required.extend(["First_Name", "Last_Name"]);
        }
        for field in required {
            if text(&values, field).trim().is_empty() {
                return Err(ArError::new(
                    400,
                    326,
                    "Required field cannot be blank.",
                    format!("{form} : {field}"),
                ));
            }
        }
        validate_incident(&values, form)?;
        let now = ar_now();
        let entry_no = self.next("helpdesk", 100);
        let inc_no = self.next("incident", 1000);
        let create_no = self.next("create", 300);
        let entry_id = format!("INC{entry_no:012}");
        let incident_number = format!("INC{inc_no:012}");
        let create_id = format!("{create_no:015}");
        values.remove("z1D_Action");
        let mut incident = values.clone();
        if let Some(detail) = values.get("Detailed_Decription") {
            incident.insert("Detailed Decription".to_owned(), detail.clone());
        }
        let impact = text(&values, "Impact");
        let urgency = text(&values, "Urgency");
        for (k, v) in [
            ("Entry ID", entry_id),
            ("Incident Number", incident_number.clone()),
            (
                "InstanceId",
                format!(
                    "AG{}",
                    uuid::Uuid::new_v4().simple().to_string().to_uppercase()
                ),
            ),
            ("Priority", priority(&impact, &urgency).to_owned()),
            ("Submitter", user.to_owned()),
            ("Submit Date", now.clone()),
            ("Reported Date", now.clone()),
            ("Last Modified By", user.to_owned()),
            ("Last Modified Date", now.clone()),
        ] {
            incident.insert(k.to_owned(), Value::String(v));
        }
        if text(&values, "Status") == "Resolved" {
            incident.insert("Last Resolved Date".to_owned(), Value::String(now.clone()));
        }
        self.forms
            .entry(HELP_DESK.to_owned())
            .or_default()
            .push(incident);
        let mut create_entry = values;
        for (k, v) in [
            ("Request ID", create_id.clone()),
            ("Incident Number", incident_number),
            ("Submitter", user.to_owned()),
            ("Submit Date", now),
        ] {
            create_entry.insert(k.to_owned(), Value::String(v));
        }
        self.forms
            .entry(CREATE_FORM.to_owned())
            .or_default()
            .push(create_entry);
        Ok(create_id)
    }

    /// Update an incident through `HPD:IncidentInterface/{id|id}` or `HPD:Help Desk/{id}`.
    pub(crate) fn update_incident(
        &mut self,
        form: &str,
        id: &str,
        values: Entry,
        user: &str,
    ) -> Result<(), ArError> {
        let Some(current) = self.entry(form, id).cloned() else {
            return Err(ArError::new(
                404,
                302,
                "Entry does not exist in database",
                format!("{form} : {id}"),
            ));
        };
        let mut merged = current.clone();
        let work_info = text(&values, "z1D_Details");
        let work_type = text(&values, "z1D_Activity_Type");
        let view_access = text(&values, "z1D_View_Access");
        let secure = text(&values, "z1D_Secure_Log");
        for (k, v) in values {
            if k.starts_with("z1D")
                || k == "Entry ID"
                || k == "Incident Number"
                || k == "Request ID"
            {
                continue;
            }
            merged.insert(k, v);
        }
        let new_status = text(&merged, "Status");
        if new_status != text(&current, "Status")
            && !["Pending", "Resolved"].contains(&new_status.as_str())
            && merged.get("Status_Reason") == current.get("Status_Reason")
        {
            merged.remove("Status_Reason");
        }
        validate_incident(&merged, form)?;
        let now = ar_now();
        if new_status == "Resolved" && text(&current, "Status") != "Resolved" {
            merged.insert("Last Resolved Date".to_owned(), Value::String(now.clone()));
        }
        if new_status == "Closed" && text(&current, "Status") != "Closed" {
            merged.insert("Closed Date".to_owned(), Value::String(now.clone()));
        }
        let p = priority(&text(&merged, "Impact"), &text(&merged, "Urgency"));
        merged.insert("Priority".to_owned(), Value::String(p.to_owned()));
        merged.insert(
            "Last Modified By".to_owned(),
            Value::String(user.to_owned()),
        );
        merged.insert("Last Modified Date".to_owned(), Value::String(now));
        let incident_number = text(&merged, "Incident Number");
        if let Some(slot) = self.entry_mut(form, id) {
            *slot = merged;
        }
        if !work_info.is_empty() {
            let mut wl = Entry::new();
            wl.insert("Incident Number".to_owned(), Value::String(incident_number));
            wl.insert("Detailed Description".to_owned(), Value::String(work_info));
            let kind = if work_type.is_empty() {
                "General Information".to_owned()
            } else {
                work_type
            };
            wl.insert("Work Log Type".to_owned(), Value::String(kind));
            if !view_access.is_empty() {
                wl.insert("View Access".to_owned(), Value::String(view_access));
            }
            if !secure.is_empty() {
                wl.insert("Secure Work Log".to_owned(), Value::String(secure));
            }
            self.create_work_log(wl, user)?;
        }
        Ok(())
    }

    /// Create a work-info entry; returns its Work Log ID.
    pub(crate) fn create_work_log(
        &mut self,
        mut values: Entry,
        user: &str,
    ) -> Result<String, ArError> {
        let incident = text(&values, "Incident Number");
        if incident.is_empty() {
            return Err(ArError::new(
                400,
                326,
                "Required field cannot be blank.",
                format!("{WORK_LOG} : Incident Number"),
            ));
        }
        if !self
            .entries(HELP_DESK)
            .iter()
            .any(|e| text(e, "Incident Number") == incident)
        {
            return Err(ArError::new(
                400,
                302,
                "Entry does not exist in database",
                format!("{HELP_DESK} : Incident Number : {incident}"),
            ));
        }
        if text(&values, "Work Log Type").is_empty() {
            values.insert(
                "Work Log Type".to_owned(),
                Value::String("General Information".to_owned()),
            );
        }
        let n = self.next("worklog", 200);
        let id = format!("WLG{n:012}");
        let now = ar_now();
        for (k, v) in [
            ("Work Log ID", id.clone()),
            ("Request ID", id.clone()),
            ("Submitter", user.to_owned()),
            ("Submit Date", now),
        ] {
            values.insert(k.to_owned(), Value::String(v));
        }
        self.forms
            .entry(WORK_LOG.to_owned())
            .or_default()
            .push(values);
        Ok(id)
    }

    /// Generic update on any other form.
    pub(crate) fn update_generic(
        &mut self,
        form: &str,
        id: &str,
        values: Entry,
    ) -> Result<(), ArError> {
        let Some(entry) = self.entry_mut(form, id) else {
            return Err(ArError::new(
                404,
                302,
                "Entry does not exist in database",
                format!("{form} : {id}"),
            ));
        };
        for (k, v) in values {
            entry.insert(k, v);
        }
        entry.insert("Last Modified Date".to_owned(), Value::String(ar_now()));
        Ok(())
    }

    /// Delete an entry.
    pub(crate) fn delete(&mut self, form: &str, id: &str) -> bool {
        let Some((store_form, key)) = Self::resolve(form, id) else {
            return false;
        };
        let field = Self::id_field(store_form);
        let Some(list) = self.forms.get_mut(store_form) else {
            return false;
        };
        let before = list.len();
        list.retain(|e| text(e, field) != key);
        list.len() != before
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(v: Value) -> Entry {
        v.as_object().cloned().unwrap()
    }

    fn minimal() -> Entry {
        entry(json!({
            "First_Name": "Azure", "Last_Name": "Monitor", "Description": "CPU high",
            "Impact": "2-Significant/Large", "Urgency": "1-Critical", "Status": "New",
            "Reported Source": "Systems Management", "Service_Type": "Infrastructure Event",
            "Detailed_Decription": "details"
        }))
    }

    #[test]
    fn create_update_resolve() {
        let mut s = Store::default();
        let create_id = s.create_incident(minimal(), "Demo").unwrap();
        assert_eq!(create_id.len(), 15);
        let inc = s.entries(HELP_DESK).first().unwrap().clone();
        let entry_id = text(&inc, "Entry ID");
        let number = text(&inc, "Incident Number");
        assert_eq!(entry_id.len(), 15);
        assert!(number.starts_with("INC") && number.len() == 15);
        assert_ne!(entry_id, number);
        assert_eq!(text(&inc, "Priority"), "High");
        assert_eq!(text(&inc, "Detailed Decription"), "details");
        let join = format!("{entry_id}|{entry_id}");
        assert!(
            s.entry(INTERFACE_FORM, &entry_id).is_none(),
            "join form needs id|id"
        );
        let e = s
            .update_incident(
                INTERFACE_FORM,
                &join,
                entry(json!({"Status": "Resolved"})),
                "Demo",
            )
            .unwrap_err();
        assert_eq!(e.number, 51310);
        s.update_incident(INTERFACE_FORM, &join, entry(json!({"Status": "Resolved", "Status_Reason": "Automated Resolution Reported", "Resolution": "ok"})), "Demo").unwrap();
        assert_eq!(
            text(s.entry(HELP_DESK, &entry_id).unwrap(), "Status"),
            "Resolved"
        );
        s.update_incident(INTERFACE_FORM, &join, entry(json!({"Status": "Assigned", "z1D_Details": "reopened", "z1D_Activity_Type": "General Information"})), "Demo").unwrap();
        let inc = s.entry(HELP_DESK, &entry_id).unwrap();
        assert_eq!(text(inc, "Status_Reason"), "");
        assert_eq!(s.entries(WORK_LOG).len(), 1);
    }

    #[test]
    fn create_validation() {
        let mut s = Store::default();
        let mut v = minimal();
        v.remove("Description");
        assert_eq!(s.create_incident(v, "Demo").unwrap_err().number, 326);
        let mut v = minimal();
        v.insert("Impact".to_owned(), json!("High"));
        assert_eq!(s.create_incident(v, "Demo").unwrap_err().number, 306);
        let mut v = minimal();
        v.insert("Service_Type".to_owned(), json!("User Service Restoration"));
        v.remove("First_Name");
        assert_eq!(s.create_incident(v, "Demo").unwrap_err().number, 326);
        assert!(
            s.create_work_log(entry(json!({"Incident Number": "INC000000000000"})), "Demo")
                .is_err()
        );
    }

    #[test]
    fn priority_matrix() {
        assert_eq!(priority("1-Extensive/Widespread", "1-Critical"), "Critical");
        assert_eq!(priority("4-Minor/Localized", "4-Low"), "Low");
        assert_eq!(priority("3-Moderate/Limited", "3-Medium"), "Medium");
    }
}
