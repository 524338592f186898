//! The field values the connector sends (pure functions of the config and the work item).

use secure_export_itsm::{CiRef, NewWorkItem, Resolution, WorkItemState};
use serde_json::{Map, Value, json};

use crate::BmcConfig;

/// `Status` values that need a `Status_Reason`.
pub(crate) const STATUSES_NEEDING_REASON: [&str; 2] = ["Pending", "Resolved"];

/// Truncates to at most `max` characters, marking a cut with `…`.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A single line: control characters (newlines, tabs) become spaces, runs collapse.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// BMC `ClassId` of a CI class (`BMC_ComputerSystem` -> `BMC_COMPUTERSYSTEM`).
fn class_id(class: &str) -> String {
    class.to_ascii_uppercase()
}

/// The asset form of a CI class (`BMC_ComputerSystem` -> `AST:ComputerSystem`), unless
/// configured.
fn asset_form(config: &BmcConfig, class: &str) -> String {
    config
        .ci_form_names
        .get(class)
        .cloned()
        .unwrap_or_else(|| format!("AST:{}", class.strip_prefix("BMC_").unwrap_or(class)))
}

/// The `values` of `POST HPD:IncidentInterface_Create`.
pub(crate) fn create_values(config: &BmcConfig, item: &NewWorkItem) -> Map<String, Value> {
    let mut v = Map::new();
    let mut put = |k: &str, val: &str| {
        v.insert(k.to_owned(), Value::String(val.to_owned()));
    };
    if !config.first_name.trim().is_empty() && !config.last_name.trim().is_empty() {
        put("First_Name", &config.first_name);
        put("Last_Name", &config.last_name);
    }
    if let Some(login) = config.login_id.as_deref().filter(|l| !l.trim().is_empty()) {
        put("Login_ID", login);
    }
    let (impact, urgency) = config.severity_map.get(item.severity);
    put(
        "Description",
        &truncate_chars(&one_line(&item.title), config.description_max_chars),
    );
    put(
        "Detailed_Decription",
        &truncate_chars(&detail_text(item), config.detail_max_chars),
    );
    put("Impact", impact.as_str());
    put("Urgency", urgency.as_str());
    put("Status", &config.create_status);
    put("Reported Source", &config.reported_source);
    put("Service_Type", &config.service_type);
    put("z1D_Action", "CREATE");
    for (field, value) in [
        ("Company", &config.company),
        ("Assigned Support Company", &config.assigned_support_company),
        (
            "Assigned Support Organization",
            &config.assigned_support_organization,
        ),
        ("Assigned Group", &config.assigned_group),
    ] {
        if let Some(value) = value.as_deref().filter(|s| !s.is_empty()) {
            put(field, value);
        }
    }
    for (i, tier) in config.operational_categorization.iter().enumerate().take(3) {
        put(&format!("Categorization_Tier_{}", i + 1), tier);
    }
    for (i, tier) in config.product_categorization.iter().enumerate().take(3) {
        put(&format!("Product_Categorization_Tier_{}", i + 1), tier);
    }
    if let Some(ci) = item.primary_ci() {
        let class = ci
            .class
            .as_deref()
            .filter(|c| !c.is_empty())
            .unwrap_or(&config.default_ci_class);
        put("HPD_CI", &ci.name);
        put("HPD_CI_ReconID", &ci.id);
        put("HPD_CI_FormName", &class_id(class));
        put("z1D_CI_FormName", &asset_form(config, class));
    }
    for (k, val) in config.extra_fields.iter().chain(&item.fields) {
        v.insert(k.clone(), val.clone());
    }
    // Last, so no extra field can break find_open.
    v.insert(
        config.correlation_field.clone(),
        Value::String(item.correlation_id.clone()),
    );
    v
}

/// `Detailed_Decription`: the description (or title), plus the CIs that could not be linked
/// through `HPD_CI` (only one CI fits there).
fn detail_text(item: &NewWorkItem) -> String {
    let mut text = if item.description.trim().is_empty() {
        item.title.clone()
    } else {
        item.description.clone()
    };
    let others: Vec<&CiRef> = item.cis.iter().skip(1).collect();
    if !others.is_empty() {
        text.push_str("\n\nOther affected configuration items:");
        for ci in others {
            text.push_str(&format!("\n- {} ({})", ci.name, ci.id));
        }
    }
    text
}

/// `values` that resolve an incident; the `Status_Reason` is never empty.
pub(crate) fn resolve_values(config: &BmcConfig, resolution: &Resolution) -> Map<String, Value> {
    let reason = resolution
        .code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or(&config.resolve_status_reason);
    let notes = if resolution.notes.trim().is_empty() {
        "Resolved automatically: the Azure Monitor alert was resolved."
    } else {
        &resolution.notes
    };
    let mut v = Map::new();
    v.insert("Status".to_owned(), json!("Resolved"));
    v.insert("Status_Reason".to_owned(), json!(reason));
    v.insert(
        "Resolution".to_owned(),
        json!(truncate_chars(notes, config.detail_max_chars)),
    );
    v
}

/// Fills a missing `Status_Reason` when an update moves to `Resolved`; refuses `Pending`
/// without one (there is no sensible default reason for it).
pub(crate) fn complete_status_reason(
    config: &BmcConfig,
    fields: &mut Map<String, Value>,
) -> Result<(), String> {
    let Some(status) = fields.get("Status").and_then(Value::as_str) else {
        return Ok(());
    };
    if !STATUSES_NEEDING_REASON.contains(&status) {
        return Ok(());
    }
    let has_reason = fields
        .get("Status_Reason")
        .and_then(Value::as_str)
        .is_some_and(|r| !r.trim().is_empty());
    if has_reason {
        return Ok(());
    }
    if status == "Resolved" {
        fields.insert(
            "Status_Reason".to_owned(),
            json!(config.resolve_status_reason),
        );
        Ok(())
    } else {
        Err(format!(
            "an update to Status {status:?} needs a non-empty Status_Reason field"
        ))
    }
}

/// `values` of a `HPD:WorkLog` entry.
pub(crate) fn work_log_values(
    config: &BmcConfig,
    incident_number: &str,
    note: &str,
) -> Map<String, Value> {
    let summary = truncate_chars(&one_line(note), 100);
    let mut v = Map::new();
    v.insert("Incident Number".to_owned(), json!(incident_number));
    v.insert("Work Log Type".to_owned(), json!(config.work_log_type));
    v.insert("Description".to_owned(), json!(summary));
    v.insert(
        "Detailed Description".to_owned(),
        json!(truncate_chars(note, config.detail_max_chars)),
    );
    v.insert("View Access".to_owned(), json!(config.work_log_view_access));
    v.insert(
        "Secure Work Log".to_owned(),
        json!(if config.work_log_secure { "Yes" } else { "No" }),
    );
    v
}

/// The lifecycle state of a BMC `Status` value.
pub(crate) fn state_of(status: &str) -> Option<WorkItemState> {
    match status {
        "New" | "Assigned" | "In Progress" | "Pending" => Some(WorkItemState::Open),
        "Resolved" => Some(WorkItemState::Resolved),
        "Closed" | "Cancelled" => Some(WorkItemState::Closed),
        _ => None,
    }
}

/// The people link, from `item_url_template`.
pub(crate) fn item_url(config: &BmcConfig, id: &str, number: &str) -> Option<String> {
    config
        .item_url_template
        .as_ref()
        .map(|t| t.replace("{id}", id).replace("{number}", number))
}

#[cfg(test)]
mod tests {
    use secure_export_itsm::Severity;

    use super::*;

    fn config() -> BmcConfig {
        BmcConfig::new("https://x.example", "u", "p")
    }

    #[test]
    fn create_values_have_the_required_fields_and_defaults() {
        let item = NewWorkItem::new("corr-1", "[Sev1] cpu high\non vm1", Severity::Sev1)
            .with_description("CPU above 90% for 5 minutes");
        let v = create_values(&config(), &item);
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or("<missing>")
                .to_owned()
        };
        assert_eq!(s("First_Name"), "Azure");
        assert_eq!(s("Last_Name"), "Monitor");
        assert_eq!(s("Description"), "[Sev1] cpu high on vm1");
        assert_eq!(s("Detailed_Decription"), "CPU above 90% for 5 minutes");
        assert_eq!(s("Impact"), "2-Significant/Large");
        assert_eq!(s("Urgency"), "2-High");
        assert_eq!(s("Status"), "New");
        assert_eq!(s("Reported Source"), "Systems Management");
        assert_eq!(s("Service_Type"), "Infrastructure Event");
        assert_eq!(s("Vendor Ticket Number"), "corr-1");
        assert!(!v.contains_key("HPD_CI"));
        assert!(!v.contains_key("Company"));
        assert!(!v.contains_key("Login_ID"));
    }

    #[test]
    fn create_values_carry_ci_optional_fields_and_protect_the_correlation_field() {
        let mut c = config();
        c.company = Some("Acme".to_owned());
        c.assigned_group = Some("Cloud Ops".to_owned());
        c.operational_categorization = vec!["Failure".to_owned(), "Cloud".to_owned()];
        c.product_categorization = vec!["Hardware".to_owned()];
        c.login_id = Some("azmon".to_owned());
        c.correlation_field = "mc_ueid".to_owned();
        c.extra_fields
            .insert("TemplateID".to_owned(), json!("AGGAA5V0"));
        let item = NewWorkItem::new("corr-2", "t", Severity::Sev0)
            .with_ci(CiRef {
                id: "OI-1".into(),
                name: "vm1".into(),
                class: Some("BMC_ComputerSystem".into()),
            })
            .with_ci(CiRef::new("OI-2", "db1"))
            .with_field("mc_ueid", "attacker")
            .with_field("TemplateID", "OTHER");
        let v = create_values(&c, &item);
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or("<missing>")
                .to_owned()
        };
        assert_eq!(s("HPD_CI"), "vm1");
        assert_eq!(s("HPD_CI_ReconID"), "OI-1");
        assert_eq!(s("HPD_CI_FormName"), "BMC_COMPUTERSYSTEM");
        assert_eq!(s("z1D_CI_FormName"), "AST:ComputerSystem");
        assert_eq!(s("Company"), "Acme");
        assert_eq!(s("Assigned Group"), "Cloud Ops");
        assert_eq!(s("Categorization_Tier_1"), "Failure");
        assert_eq!(s("Categorization_Tier_2"), "Cloud");
        assert_eq!(s("Product_Categorization_Tier_1"), "Hardware");
        assert_eq!(s("Login_ID"), "azmon");
        assert_eq!(s("TemplateID"), "OTHER");
        assert_eq!(s("mc_ueid"), "corr-2");
        assert_eq!(s("Impact"), "1-Extensive/Widespread");
        assert!(
            s("Detailed_Decription").ends_with("Other affected configuration items:\n- db1 (OI-2)")
        );
    }

    #[test]
    fn ci_without_class_uses_the_default_and_form_overrides_apply() {
        let mut c = config();
        c.ci_form_names
            .insert("BMC_Database".to_owned(), "AST:Database".to_owned());
        let item = NewWorkItem::new("c", "t", Severity::Sev2).with_ci(CiRef::new("RE1", "n"));
        let v = create_values(&c, &item);
        assert_eq!(v["HPD_CI_FormName"], "BMC_COMPUTERSYSTEM");
        let item = NewWorkItem::new("c", "t", Severity::Sev2).with_ci(CiRef {
            id: "RE2".into(),
            name: "db".into(),
            class: Some("BMC_Database".into()),
        });
        assert_eq!(create_values(&c, &item)["z1D_CI_FormName"], "AST:Database");
    }

    #[test]
    fn description_is_capped_by_characters() {
        let title = "é".repeat(150);
        let item = NewWorkItem::new("c", title, Severity::Sev3);
        let d = create_values(&config(), &item)["Description"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(d.chars().count(), 100);
        assert!(d.ends_with('…'));
        assert_eq!(truncate_chars("short", 100), "short");
        assert_eq!(truncate_chars("abc", 1), "…");
    }

    #[test]
    fn resolve_values_always_have_a_reason() {
        let c = config();
        let v = resolve_values(&c, &Resolution::new("fixed"));
        assert_eq!(v["Status"], "Resolved");
        assert_eq!(v["Status_Reason"], "Automated Resolution Reported");
        assert_eq!(v["Resolution"], "fixed");
        let v = resolve_values(&c, &Resolution::new("").with_code("  "));
        assert_eq!(v["Status_Reason"], "Automated Resolution Reported");
        assert!(v["Resolution"].as_str().unwrap().contains("Azure Monitor"));
        let v = resolve_values(
            &c,
            &Resolution::new("x").with_code("No Further Action Required"),
        );
        assert_eq!(v["Status_Reason"], "No Further Action Required");
    }

    #[test]
    fn status_reason_is_completed_or_refused() {
        let c = config();
        let mut f = Map::new();
        f.insert("Status".into(), json!("Resolved"));
        complete_status_reason(&c, &mut f).unwrap();
        assert_eq!(f["Status_Reason"], "Automated Resolution Reported");
        let mut f = Map::new();
        f.insert("Status".into(), json!("Pending"));
        f.insert("Status_Reason".into(), json!(""));
        assert!(
            complete_status_reason(&c, &mut f)
                .unwrap_err()
                .contains("Status_Reason")
        );
        let mut f = Map::new();
        f.insert("Status".into(), json!("In Progress"));
        complete_status_reason(&c, &mut f).unwrap();
        assert!(!f.contains_key("Status_Reason"));
    }

    #[test]
    fn work_log_and_states() {
        let v = work_log_values(&config(), "INC000000000001", "fired again\nvalue 97");
        assert_eq!(v["Incident Number"], "INC000000000001");
        assert_eq!(v["Work Log Type"], "General Information");
        assert_eq!(v["Description"], "fired again value 97");
        assert_eq!(v["Detailed Description"], "fired again\nvalue 97");
        assert_eq!(v["View Access"], "Internal");
        assert_eq!(v["Secure Work Log"], "No");
        assert_eq!(state_of("Pending"), Some(WorkItemState::Open));
        assert_eq!(state_of("Resolved"), Some(WorkItemState::Resolved));
        assert_eq!(state_of("Cancelled"), Some(WorkItemState::Closed));
        assert_eq!(state_of("Weird"), None);
    }
}
