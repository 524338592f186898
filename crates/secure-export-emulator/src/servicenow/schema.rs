//! The slice of the ServiceNow data dictionary the emulator knows: tables,
//! their class hierarchy, columns, reference columns and journal columns.

/// System columns every table has.
const SYS_COLUMNS: &[&str] = &[
    "sys_id",
    "sys_class_name",
    "sys_created_on",
    "sys_created_by",
    "sys_updated_on",
    "sys_updated_by",
    "sys_mod_count",
];

/// `(table, parent table, own columns)`. A table without a parent is a root
/// (its records are stored together with those of all its descendants).
const TABLES: &[(&str, Option<&str>, &[&str])] = &[
    (
        "task",
        None,
        &[
            "number",
            "short_description",
            "description",
            "state",
            "active",
            "impact",
            "urgency",
            "priority",
            "assignment_group",
            "assigned_to",
            "cmdb_ci",
            "business_service",
            "service_offering",
            "correlation_id",
            "correlation_display",
            "contact_type",
            "work_notes",
            "comments",
            "opened_at",
            "opened_by",
            "closed_at",
            "closed_by",
            "close_notes",
            "company",
            "location",
            "parent",
            "due_date",
            "escalation",
            "reassignment_count",
            "watch_list",
            "work_notes_list",
        ],
    ),
    (
        "incident",
        Some("task"),
        &[
            "caller_id",
            "category",
            "subcategory",
            "close_code",
            "hold_reason",
            "incident_state",
            "severity",
            "resolved_at",
            "resolved_by",
            "problem_id",
            "rfc",
            "reopen_count",
            "reopened_time",
            "notify",
            "origin_id",
            "origin_table",
        ],
    ),
    (
        "task_ci",
        None,
        &["task", "ci_item", "applied", "manual_proposed"],
    ),
    (
        "em_event",
        None,
        &[
            "source",
            "event_class",
            "node",
            "type",
            "resource",
            "metric_name",
            "message_key",
            "severity",
            "resolution_state",
            "time_of_event",
            "description",
            "additional_info",
            "ci_type",
            "ci_identifier",
            "state",
            "alert",
            "processing_notes",
        ],
    ),
    (
        "em_alert",
        None,
        &[
            "number",
            "message_key",
            "source",
            "node",
            "type",
            "resource",
            "metric_name",
            "severity",
            "state",
            "description",
            "additional_info",
            "initial_remote_time",
            "last_remote_time",
            "cmdb_ci",
            "incident",
            "acknowledged",
        ],
    ),
    (
        "sys_journal_field",
        None,
        &["element", "element_id", "name", "value"],
    ),
    (
        "sys_user",
        None,
        &[
            "user_name",
            "name",
            "first_name",
            "last_name",
            "email",
            "active",
        ],
    ),
    ("sys_user_group", None, &["name", "description", "active"]),
    (
        "cmdb_ci",
        None,
        &[
            "name",
            "object_id",
            "short_description",
            "operational_status",
            "install_status",
            "discovery_source",
            "ip_address",
            "fqdn",
            "location",
            "company",
            "category",
            "subcategory",
            "correlation_id",
        ],
    ),
    (
        "cmdb_ci_hardware",
        Some("cmdb_ci"),
        &["manufacturer", "serial_number"],
    ),
    (
        "cmdb_ci_computer",
        Some("cmdb_ci_hardware"),
        &["os", "os_version", "cpu_count", "ram"],
    ),
    ("cmdb_ci_server", Some("cmdb_ci_computer"), &["host_name"]),
    ("cmdb_ci_win_server", Some("cmdb_ci_server"), &[]),
    ("cmdb_ci_linux_server", Some("cmdb_ci_server"), &[]),
    ("cmdb_ci_vm", Some("cmdb_ci"), &[]),
    (
        "cmdb_ci_vm_instance",
        Some("cmdb_ci_vm"),
        &["vm_inst_id", "state", "cpus", "memory", "guest_os"],
    ),
    ("cmdb_ci_appl", Some("cmdb_ci"), &["version"]),
    ("cmdb_ci_db_instance", Some("cmdb_ci_appl"), &["type"]),
    (
        "cmdb_ci_cloud_database",
        Some("cmdb_ci"),
        &["type", "state"],
    ),
    ("cmdb_ci_cloud_appserver", Some("cmdb_ci"), &["state"]),
    ("cmdb_ci_cloud_function", Some("cmdb_ci"), &["state"]),
    ("cmdb_ci_cloud_storage_account", Some("cmdb_ci"), &["state"]),
    ("cmdb_ci_cmp_resource", Some("cmdb_ci"), &["resource_type"]),
    ("cmdb_ci_service", Some("cmdb_ci"), &[]),
    (
        "cmdb_ci_cloud_service_account",
        Some("cmdb_ci"),
        &["account_id"],
    ),
    ("cmdb_ci_resource_group", Some("cmdb_ci"), &[]),
];

/// `(column, referenced table)` for reference columns.
const REFERENCES: &[(&str, &str)] = &[
    ("assignment_group", "sys_user_group"),
    ("assigned_to", "sys_user"),
    ("caller_id", "sys_user"),
    ("opened_by", "sys_user"),
    ("closed_by", "sys_user"),
    ("resolved_by", "sys_user"),
    ("cmdb_ci", "cmdb_ci"),
    ("business_service", "cmdb_ci_service"),
    ("service_offering", "service_offering"),
    ("company", "core_company"),
    ("location", "cmn_location"),
    ("parent", "task"),
    ("problem_id", "problem"),
    ("rfc", "change_request"),
    ("task", "task"),
    ("ci_item", "cmdb_ci"),
    ("alert", "em_alert"),
    ("incident", "incident"),
];

/// Journal columns: write-only on the record, kept in `sys_journal_field`.
pub(crate) const JOURNAL_COLUMNS: &[&str] = &["work_notes", "comments"];

fn entry(
    table: &str,
) -> Option<&'static (&'static str, Option<&'static str>, &'static [&'static str])> {
    TABLES.iter().find(|(name, _, _)| *name == table)
}

/// Whether the emulator knows `table`.
pub(crate) fn is_table(table: &str) -> bool {
    entry(table).is_some()
}

/// The root table whose store holds `table`'s records.
pub(crate) fn root_of(table: &str) -> Option<&'static str> {
    let mut current = entry(table)?;
    while let Some(parent) = current.1 {
        current = entry(parent)?;
    }
    Some(current.0)
}

/// Whether class `class` is `table` or one of its descendants.
pub(crate) fn extends(class: &str, table: &str) -> bool {
    let mut current = entry(class);
    while let Some((name, parent, _)) = current {
        if *name == table {
            return true;
        }
        current = parent.and_then(entry);
    }
    false
}

/// Every column of `table`, inherited ones included (system columns first).
pub(crate) fn columns(table: &str) -> Vec<&'static str> {
    let mut chain = Vec::new();
    let mut current = entry(table);
    while let Some(e) = current {
        chain.push(e);
        current = e.1.and_then(entry);
    }
    let mut cols: Vec<&'static str> = SYS_COLUMNS.to_vec();
    for (_, _, own) in chain.iter().rev() {
        cols.extend_from_slice(own);
    }
    cols
}

/// Whether `column` exists on `table` (custom `u_` columns always do).
pub(crate) fn has_column(table: &str, column: &str) -> bool {
    column.starts_with("u_") || columns(table).contains(&column)
}

/// The table a reference column points at, if `column` is a reference on `table`.
pub(crate) fn reference_target(table: &str, column: &str) -> Option<&'static str> {
    if !columns(table).contains(&column) {
        return None;
    }
    REFERENCES
        .iter()
        .find(|(c, _)| *c == column)
        .map(|(_, target)| *target)
}

/// The column shown as a record's display value.
pub(crate) fn display_column(table: &str) -> &'static str {
    if extends(table, "task") || table == "em_alert" {
        "number"
    } else if table == "sys_journal_field" {
        "value"
    } else {
        "name"
    }
}

/// The label of a choice value, for `sysparm_display_value`.
pub(crate) fn choice_label(table: &str, field: &str, value: &str) -> Option<&'static str> {
    let choices: &[(&str, &str)] = match field {
        "state" | "incident_state" if extends(table, "incident") => &[
            ("1", "New"),
            ("2", "In Progress"),
            ("3", "On Hold"),
            ("6", "Resolved"),
            ("7", "Closed"),
            ("8", "Canceled"),
        ],
        "impact" | "urgency" if extends(table, "task") => {
            &[("1", "1 - High"), ("2", "2 - Medium"), ("3", "3 - Low")]
        }
        "priority" if extends(table, "task") => &[
            ("1", "1 - Critical"),
            ("2", "2 - High"),
            ("3", "3 - Moderate"),
            ("4", "4 - Low"),
            ("5", "5 - Planning"),
        ],
        "hold_reason" if extends(table, "incident") => &[
            ("1", "Awaiting Caller"),
            ("3", "Awaiting Problem"),
            ("4", "Awaiting Vendor"),
            ("5", "Awaiting Change"),
        ],
        "severity" if table == "em_event" || table == "em_alert" => &[
            ("0", "Clear"),
            ("1", "Critical"),
            ("2", "Major"),
            ("3", "Minor"),
            ("4", "Warning"),
            ("5", "OK"),
        ],
        _ => &[],
    };
    choices.iter().find(|(v, _)| *v == value).map(|(_, l)| *l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_and_columns() {
        assert_eq!(root_of("incident"), Some("task"));
        assert_eq!(root_of("cmdb_ci_vm_instance"), Some("cmdb_ci"));
        assert!(extends("cmdb_ci_vm_instance", "cmdb_ci"));
        assert!(!extends("cmdb_ci", "cmdb_ci_vm_instance"));
        assert!(has_column("incident", "correlation_id"));
        assert!(has_column("incident", "u_anything"));
        assert!(!has_column("incident", "correlation_idd"));
        assert!(!has_column("cmdb_ci", "vm_inst_id"));
        assert_eq!(reference_target("incident", "cmdb_ci"), Some("cmdb_ci"));
        assert_eq!(reference_target("cmdb_ci", "cmdb_ci"), None);
        assert!(!is_table("nonexistent"));
    }
}
