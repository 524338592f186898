//! The result of binding one alert: [`Binding`], [`Unmatched`] and [`Omitted`].

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
    /// Targets beyond the binder's per-alert limit
    /// ([`BinderBuilder::max_targets`](crate::BinderBuilder::max_targets)): not looked up.
    #[serde(default, skip_serializing_if = "Omitted::is_empty")]
    pub omitted: Omitted,
}

/// How many lines [`Binding::unmatched_note`] and [`Binding::omitted_note`] list before
/// summing up the rest as "... and N more"; also the most targets [`Omitted`] names.
pub const NOTE_LIST_LIMIT: usize = 20;

/// The alert entries left out of binding because the alert names more than the binder's
/// per-alert limit: their count, and the first [`NOTE_LIST_LIMIT`] of them by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Omitted {
    /// How many distinct targets (and notes on malformed entries) were left out.
    pub count: usize,
    /// The first of them, as received (at most [`NOTE_LIST_LIMIT`]), in candidate order.
    pub targets: Vec<String>,
}

impl Omitted {
    /// Whether nothing was left out.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Records one more left-out entry (named only while fewer than [`NOTE_LIST_LIMIT`] are).
    pub(crate) fn push(&mut self, target: &str) {
        self.count = self.count.saturating_add(1);
        if self.targets.len() < NOTE_LIST_LIMIT {
            self.targets.push(target.to_owned());
        }
    }

    /// Adds `other`'s entries after this one's.
    pub(crate) fn append(&mut self, other: Self) {
        self.count = self.count.saturating_add(other.count);
        let room = NOTE_LIST_LIMIT.saturating_sub(self.targets.len());
        self.targets.extend(other.targets.into_iter().take(room));
    }
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

    /// A short multi-line note listing the unmatched targets, then the omitted ones (see
    /// [`omitted_note`](Self::omitted_note)), for a work note; `None` when every target bound
    /// and none was omitted. At most [`NOTE_LIST_LIMIT`] unmatched targets are listed, the
    /// rest are counted ("... and N more").
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
        let omitted = self.omitted_note();
        if self.unmatched.is_empty() {
            return omitted;
        }
        let count = self.unmatched.len();
        let plural = if count == 1 { "" } else { "s" };
        let mut note = format!("CMDB binding: {count} target{plural} not bound");
        for unmatched in self.unmatched.iter().take(NOTE_LIST_LIMIT) {
            note.push_str("\n- ");
            note.push_str(&unmatched.target);
            note.push_str(": ");
            note.push_str(&unmatched.reason);
        }
        if count > NOTE_LIST_LIMIT {
            note.push_str(&format!("\n- ... and {} more", count - NOTE_LIST_LIMIT));
        }
        if let Some(omitted) = omitted {
            note.push('\n');
            note.push_str(&omitted);
        }
        Some(note)
    }

    /// A note on the targets left out because the alert names more than the binder's
    /// per-alert limit, naming at most [`NOTE_LIST_LIMIT`] of them; `None` when none was.
    ///
    /// ```
    /// use secure_export_cmdb::{Binding, Omitted};
    ///
    /// let binding = Binding {
    ///     omitted: Omitted { count: 3, targets: vec!["vm1".into(), "vm2".into(), "vm3".into()] },
    ///     ..Binding::default()
    /// };
    /// let note = binding.omitted_note().unwrap();
    /// assert_eq!(
    ///     note.lines().collect::<Vec<_>>(),
    ///     [
    ///         "CMDB binding: 3 more targets not looked up (over the per-alert limit)",
    ///         "- vm1",
    ///         "- vm2",
    ///         "- vm3",
    ///     ]
    /// );
    /// ```
    #[must_use]
    pub fn omitted_note(&self) -> Option<String> {
        let omitted = &self.omitted;
        if omitted.is_empty() {
            return None;
        }
        let count = omitted.count;
        let plural = if count == 1 { "" } else { "s" };
        let mut note = format!(
            "CMDB binding: {count} more target{plural} not looked up (over the per-alert limit)"
        );
        let listed = omitted.targets.iter().take(NOTE_LIST_LIMIT);
        let shown = listed.len();
        for target in listed {
            note.push_str("\n- ");
            note.push_str(target);
        }
        if count > shown {
            note.push_str(&format!("\n- ... and {} more", count - shown));
        }
        Some(note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unmatched(n: usize) -> Vec<Unmatched> {
        (0..n)
            .map(|i| Unmatched {
                target: format!("t{i}"),
                reason: "nothing".to_owned(),
                lookup_failed: false,
            })
            .collect()
    }

    #[test]
    fn notes_list_at_most_the_limit_then_count_the_rest() {
        let mut omitted = Omitted::default();
        for i in 0..5_950 {
            omitted.push(&format!("vm{i}"));
        }
        assert_eq!(omitted.count, 5_950);
        assert_eq!(omitted.targets.len(), NOTE_LIST_LIMIT);
        let binding = Binding {
            unmatched: unmatched(50),
            omitted,
            ..Binding::default()
        };
        let note = binding.unmatched_note().unwrap();
        let lines: Vec<&str> = note.lines().collect();
        // Header, 20 listed, "... and 30 more", omitted header, 20 listed, "... and 5930 more".
        assert_eq!(
            lines.len(),
            1 + NOTE_LIST_LIMIT + 1 + 1 + NOTE_LIST_LIMIT + 1
        );
        assert_eq!(lines[0], "CMDB binding: 50 targets not bound");
        assert_eq!(lines[NOTE_LIST_LIMIT + 1], "- ... and 30 more");
        assert_eq!(
            lines[NOTE_LIST_LIMIT + 2],
            "CMDB binding: 5950 more targets not looked up (over the per-alert limit)"
        );
        assert_eq!(lines[NOTE_LIST_LIMIT + 3], "- vm0");
        assert_eq!(lines.last().copied(), Some("- ... and 5930 more"));
    }

    #[test]
    fn omitted_alone_is_a_note_and_nothing_is_none() {
        let mut omitted = Omitted::default();
        omitted.push("vm1");
        let binding = Binding {
            omitted,
            ..Binding::default()
        };
        assert_eq!(
            binding.unmatched_note().as_deref(),
            Some("CMDB binding: 1 more target not looked up (over the per-alert limit)\n- vm1")
        );
        assert_eq!(binding.unmatched_note(), binding.omitted_note());
        assert_eq!(Binding::default().unmatched_note(), None);
        assert_eq!(Binding::default().omitted_note(), None);
    }

    #[test]
    fn append_keeps_the_first_names_and_sums_the_counts() {
        let mut a = Omitted::default();
        let mut b = Omitted::default();
        for i in 0..15 {
            a.push(&format!("a{i}"));
            b.push(&format!("b{i}"));
        }
        a.append(b);
        assert_eq!(a.count, 30);
        assert_eq!(a.targets.len(), NOTE_LIST_LIMIT);
        assert_eq!(a.targets[15], "b0");
    }

    #[test]
    fn an_empty_omitted_is_not_serialized_and_defaults_when_absent() {
        let json = serde_json::to_value(Binding::default()).unwrap();
        assert!(json.get("omitted").is_none(), "{json}");
        let old: Binding =
            serde_json::from_str(r#"{"primary":null,"affected":[],"unmatched":[]}"#).unwrap();
        assert!(old.omitted.is_empty());
    }
}
