//! The result of binding one alert: [`Binding`] and [`Unmatched`].

use secure_export_itsm::CiRef;
use serde::{Deserialize, Serialize};

use crate::CiRecord;

/// The configuration items an alert is bound to, and the targets that could not be bound.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The CI the work item is about: the first target (in candidate order) that bound, or the
    /// fallback CI when none did.
    pub primary: Option<CiRecord>,
    /// Every other CI the alert's targets bound to (distinct ids, `primary` excluded).
    pub affected: Vec<CiRecord>,
    /// Targets that did not bind, each with the reason (for the work item's notes).
    pub unmatched: Vec<Unmatched>,
}

/// A candidate target that no strategy could bind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Unmatched {
    /// The target as received: an ARM resource id, a resource name or a computer name.
    pub target: String,
    /// Why it did not bind (what was tried and what each attempt answered).
    pub reason: String,
    /// At least one lookup for it failed (error or timeout) rather than finding nothing: the
    /// target may bind once the CMDB answers again.
    #[serde(default)]
    pub lookup_failed: bool,
}

impl Binding {
    /// Whether a lookup failed (rather than found nothing) for a target that did not bind.
    #[must_use]
    pub fn lookup_failed(&self) -> bool {
        self.unmatched.iter().any(|u| u.lookup_failed)
    }

    /// Whether at least one CI is bound.
    #[must_use]
    pub fn is_bound(&self) -> bool {
        self.primary.is_some()
    }

    /// All bound CIs as work-item references, primary first (the order
    /// [`NewWorkItem::cis`](secure_export_itsm::NewWorkItem) expects).
    #[must_use]
    pub fn ci_refs(&self) -> Vec<CiRef> {
        self.primary
            .iter()
            .chain(&self.affected)
            .cloned()
            .map(CiRef::from)
            .collect()
    }

    /// A short multi-line note listing the unmatched targets, for a work note; `None` when
    /// every target bound.
    ///
    /// ```
    /// use secure_export_cmdb::{Binding, Unmatched};
    ///
    /// let binding = Binding {
    ///     unmatched: vec![Unmatched {
    ///         target: "web01".into(),
    ///         reason: "name: no CI named 'web01'".into(),
    ///         lookup_failed: false,
    ///     }],
    ///     ..Binding::default()
    /// };
    /// assert_eq!(
    ///     binding.unmatched_note().as_deref(),
    ///     Some("CMDB binding: 1 target not bound\n- web01: name: no CI named 'web01'")
    /// );
    /// ```
    #[must_use]
    pub fn unmatched_note(&self) -> Option<String> {
        if self.unmatched.is_empty() {
            return None;
        }
        let count = self.unmatched.len();
        let plural = if count == 1 { "" } else { "s" };
        let mut note = format!("CMDB binding: {count} target{plural} not bound");
        for unmatched in &self.unmatched {
            note.push_str("\n- ");
            note.push_str(&unmatched.target);
            note.push_str(": ");
            note.push_str(&unmatched.reason);
        }
        Some(note)
    }
}
