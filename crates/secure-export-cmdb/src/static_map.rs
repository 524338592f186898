//! The static map from resource-id patterns to configuration items.

use crate::{CiRecord, CiSource};

/// A resource-id pattern: lower-cased, `*` matches any run of characters (including `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    lowered: String,
}

impl Pattern {
    /// Parses a pattern; `None` when it is empty or contains nothing but wildcards and spaces.
    pub(crate) fn new(pattern: &str) -> Option<Self> {
        let lowered = pattern.trim().to_ascii_lowercase();
        if lowered.chars().all(|c| c == '*') {
            return None;
        }
        Some(Self { lowered })
    }

    /// Whether `text` (compared lower-cased) matches the whole pattern.
    pub(crate) fn matches(&self, text: &str) -> bool {
        wildcard_match(
            self.lowered.as_bytes(),
            text.to_ascii_lowercase().as_bytes(),
        )
    }
}

/// Glob match with `*` only, linear-time backtracking on the last star.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if text.get(t) == Some(&c) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// Ordered pattern -> CI entries; the first matching entry wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct StaticMap {
    entries: Vec<(Pattern, CiRecord)>,
}

impl StaticMap {
    pub(crate) fn push(&mut self, pattern: Pattern, mut ci: CiRecord) {
        ci.source = CiSource::StaticMap;
        self.entries.push((pattern, ci));
    }

    /// The CI of the first entry whose pattern matches `resource_id`.
    pub(crate) fn find(&self, resource_id: &str) -> Option<&CiRecord> {
        self.entries
            .iter()
            .find(|(pattern, _)| pattern.matches(resource_id))
            .map(|(_, ci)| ci)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        Pattern::new(pattern).unwrap().matches(text)
    }

    #[test]
    fn exact_and_case_insensitive() {
        assert!(matches(
            "/subscriptions/S/resourceGroups/RG",
            "/subscriptions/s/resourcegroups/rg"
        ));
        assert!(!matches(
            "/subscriptions/s/resourcegroups/rg",
            "/subscriptions/s/resourcegroups/rg2"
        ));
    }

    #[test]
    fn wildcards() {
        let vm = "/subscriptions/s/resourcegroups/prod-rg/providers/microsoft.compute/virtualmachines/web01";
        assert!(matches("/subscriptions/s/resourcegroups/prod-*", vm));
        assert!(matches("*/virtualmachines/web*", vm));
        assert!(matches("*web01", vm));
        assert!(matches(
            "*/resourcegroups/*/providers/microsoft.compute/*",
            vm
        ));
        assert!(!matches("*/microsoft.sql/*", vm));
        assert!(!matches("/subscriptions/t/*", vm));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
    }

    #[test]
    fn empty_or_all_wildcard_patterns_are_rejected() {
        assert!(Pattern::new("").is_none());
        assert!(Pattern::new(" ** ").is_none());
    }
}
