//! Backend-neutral work-item model.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Alert severity as Azure Monitor states it (`Sev0` is the most severe).
///
/// Backends map it to their own impact/urgency/priority tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// Critical.
    Sev0,
    /// Error.
    Sev1,
    /// Warning.
    Sev2,
    /// Informational.
    Sev3,
    /// Verbose.
    Sev4,
}

impl Severity {
    /// The severity as a number, 0 (most severe) to 4.
    #[must_use]
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Sev0 => 0,
            Self::Sev1 => 1,
            Self::Sev2 => 2,
            Self::Sev3 => 3,
            Self::Sev4 => 4,
        }
    }
}

/// A configuration item bound to a work item (the result of CMDB binding).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CiRef {
    /// What the ITSM needs to reference the CI: ServiceNow `sys_id`, BMC reconciliation id.
    pub id: String,
    /// The CI's display name.
    pub name: String,
    /// The CI class (ServiceNow `sys_class_name`, BMC class such as `BMC_ComputerSystem`).
    pub class: Option<String>,
}

impl CiRef {
    /// A CI reference with an id and a name and no class.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            class: None,
        }
    }
}

/// Everything needed to create a work item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NewWorkItem {
    /// Correlation id stored on the item (ServiceNow `correlation_id`, BMC configured field), so
    /// that [`ItsmConnector::find_open`](crate::ItsmConnector::find_open) can find it again.
    pub correlation_id: String,
    /// Human-readable correlation label (ServiceNow `correlation_display`).
    pub correlation_display: String,
    /// One-line title (backends truncate to their field length).
    pub title: String,
    /// Long description.
    pub description: String,
    /// Alert severity.
    pub severity: Severity,
    /// Bound configuration items; the first is the primary CI.
    pub cis: Vec<CiRef>,
    /// Free-form extra fields set on create (backend field name -> value).
    pub fields: BTreeMap<String, serde_json::Value>,
}

impl NewWorkItem {
    /// A work item with the required parts; description empty, no CIs, no extra fields.
    pub fn new(
        correlation_id: impl Into<String>,
        title: impl Into<String>,
        severity: Severity,
    ) -> Self {
        Self {
            correlation_id: correlation_id.into(),
            correlation_display: "Azure Monitor".to_owned(),
            title: title.into(),
            description: String::new(),
            severity,
            cis: Vec::new(),
            fields: BTreeMap::new(),
        }
    }

    /// Sets the description.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the correlation display label.
    #[must_use]
    pub fn with_correlation_display(mut self, display: impl Into<String>) -> Self {
        self.correlation_display = display.into();
        self
    }

    /// Adds a configuration item (the first one added is the primary CI).
    #[must_use]
    pub fn with_ci(mut self, ci: CiRef) -> Self {
        self.cis.push(ci);
        self
    }

    /// Sets an extra backend field.
    #[must_use]
    pub fn with_field(
        mut self,
        name: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// The primary configuration item, if any.
    #[must_use]
    pub fn primary_ci(&self) -> Option<&CiRef> {
        self.cis.first()
    }
}

/// A work note and/or field changes for an existing work item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkItemUpdate {
    /// A work note to add (ServiceNow `work_notes`, BMC work log entry).
    pub work_note: Option<String>,
    /// Fields to change (backend field name -> value).
    pub fields: BTreeMap<String, serde_json::Value>,
}

impl WorkItemUpdate {
    /// An update that only adds a work note.
    pub fn note(note: impl Into<String>) -> Self {
        Self {
            work_note: Some(note.into()),
            fields: BTreeMap::new(),
        }
    }

    /// Sets a field.
    #[must_use]
    pub fn with_field(
        mut self,
        name: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }
}

/// How a work item is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Resolution {
    /// Resolution (close) code; `None` uses the backend's configured default.
    pub code: Option<String>,
    /// Resolution notes.
    pub notes: String,
}

impl Resolution {
    /// A resolution with the backend's default code and these notes.
    pub fn new(notes: impl Into<String>) -> Self {
        Self {
            code: None,
            notes: notes.into(),
        }
    }

    /// Sets an explicit resolution code.
    #[must_use]
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
}

/// A reference to a work item in a backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkItemRef {
    /// The backend's key (ServiceNow `sys_id`, BMC entry id).
    pub id: String,
    /// The human number (`INC0010001`, `INC000000000101`), when known.
    pub number: Option<String>,
    /// A link to the item for people, when known.
    pub url: Option<String>,
}

impl WorkItemRef {
    /// A reference with only the backend id.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            number: None,
            url: None,
        }
    }

    /// The number if known, else the id (for notes and logs).
    #[must_use]
    pub fn display(&self) -> &str {
        self.number.as_deref().unwrap_or(&self.id)
    }
}

/// The lifecycle state of a work item, reduced to what the alert lifecycle needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WorkItemState {
    /// New, in progress or on hold: the item is being worked.
    Open,
    /// Resolved: can be reopened.
    Resolved,
    /// Closed or cancelled: final, cannot be reopened.
    Closed,
}

impl WorkItemState {
    /// Whether the item is open.
    #[must_use]
    pub fn is_open(self) -> bool {
        matches!(self, Self::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_and_helpers() {
        let item = NewWorkItem::new("c", "title", Severity::Sev2)
            .with_description("d")
            .with_correlation_display("Azure Monitor: rule")
            .with_ci(CiRef::new("1", "vm1"))
            .with_ci(CiRef::new("2", "vm2"))
            .with_field("u_a", "b");
        assert_eq!(item.primary_ci().map(|c| c.name.as_str()), Some("vm1"));
        assert_eq!(item.correlation_display, "Azure Monitor: rule");
        assert_eq!(item.fields["u_a"], "b");
        assert_eq!(
            NewWorkItem::new("c", "t", Severity::Sev0).primary_ci(),
            None
        );
        let sevs = [
            Severity::Sev0,
            Severity::Sev1,
            Severity::Sev2,
            Severity::Sev3,
            Severity::Sev4,
        ];
        assert_eq!(sevs.map(Severity::as_u8), [0, 1, 2, 3, 4]);
        assert!(Severity::Sev0 < Severity::Sev4);
        let mut r = WorkItemRef::new("sys-1");
        assert_eq!(r.display(), "sys-1");
        r.number = Some("INC0010001".to_owned());
        assert_eq!(r.display(), "INC0010001");
        assert!(WorkItemState::Open.is_open() && !WorkItemState::Resolved.is_open());
        let u = WorkItemUpdate::note("n").with_field("state", "2");
        assert_eq!((u.work_note.as_deref(), u.fields.len()), (Some("n"), 1));
    }
}
