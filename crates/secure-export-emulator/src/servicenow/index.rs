//! Equality indexes over one root table's records, so that lookups such as
//! `correlation_id=X` or a GET by sys_id do not scan every record.
//!
//! An index maps, per indexed field, each stored value to the positions (in
//! insertion order) of the records holding it. A missing field is indexed as
//! the empty string, which is what a condition reads for it. Lookups return a
//! superset of candidates in insertion order: callers still apply the full
//! condition, so results are identical to a scan.

use std::collections::HashMap;

use super::store::Rec;

/// Fields indexed on every table: the keys the connectors look records up by.
pub(crate) const INDEXED_FIELDS: &[&str] = &[
    "sys_id",
    "number",
    "correlation_id",
    "object_id",
    "message_key",
    "element_id",
];

/// The equality indexes of one root table.
#[derive(Debug, Default)]
pub(crate) struct RootIndex {
    by_field: HashMap<&'static str, HashMap<String, Vec<usize>>>,
}

fn value_in<'r>(rec: &'r Rec, field: &str) -> &'r str {
    rec.get(field).map_or("", String::as_str)
}

impl RootIndex {
    /// An index over `records`, positions being their indexes in the slice.
    pub(crate) fn build(records: &[Rec]) -> Self {
        let mut index = Self::default();
        for (pos, rec) in records.iter().enumerate() {
            index.add(pos, rec);
        }
        index
    }

    /// Index the record at `pos`.
    pub(crate) fn add(&mut self, pos: usize, rec: &Rec) {
        for field in INDEXED_FIELDS {
            let positions = self
                .by_field
                .entry(field)
                .or_default()
                .entry(value_in(rec, field).to_owned())
                .or_default();
            // Appends are the common case (positions grow with inserts).
            if positions.last().is_none_or(|last| *last < pos) {
                positions.push(pos);
            } else if let Err(at) = positions.binary_search(&pos) {
                positions.insert(at, pos);
            }
        }
    }

    /// Forget the record at `pos`, which held `rec`.
    fn remove(&mut self, pos: usize, rec: &Rec) {
        for field in INDEXED_FIELDS {
            let Some(values) = self.by_field.get_mut(field) else {
                continue;
            };
            let value = value_in(rec, field);
            if let Some(positions) = values.get_mut(value) {
                if let Ok(at) = positions.binary_search(&pos) {
                    positions.remove(at);
                }
                if positions.is_empty() {
                    values.remove(value);
                }
            }
        }
    }

    /// The record at `pos` changes from `old` to `new`.
    pub(crate) fn replace(&mut self, pos: usize, old: &Rec, new: &Rec) {
        let changed = INDEXED_FIELDS
            .iter()
            .any(|f| value_in(old, f) != value_in(new, f));
        if changed {
            self.remove(pos, old);
            self.add(pos, new);
        }
    }

    /// Positions of the records whose `field` is `value`, in insertion order;
    /// `None` when `field` is not indexed (the caller must scan).
    pub(crate) fn lookup(&self, field: &str, value: &str) -> Option<&[usize]> {
        if !INDEXED_FIELDS.contains(&field) {
            return None;
        }
        Some(
            self.by_field
                .get(field)
                .and_then(|values| values.get(value))
                .map_or(&[], Vec::as_slice),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pairs: &[(&str, &str)]) -> Rec {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn lookup_add_replace() {
        let a = rec(&[("sys_id", "a"), ("correlation_id", "X")]);
        let b = rec(&[("sys_id", "b"), ("correlation_id", "X")]);
        let mut index = RootIndex::build(&[a.clone(), b]);
        assert_eq!(index.lookup("correlation_id", "X"), Some(&[0, 1][..]));
        assert_eq!(index.lookup("sys_id", "b"), Some(&[1][..]));
        assert_eq!(index.lookup("number", ""), Some(&[0, 1][..]));
        assert_eq!(index.lookup("sys_id", "zz"), Some(&[][..]));
        assert_eq!(index.lookup("short_description", "x"), None);

        let a2 = rec(&[("sys_id", "a"), ("correlation_id", "Y")]);
        index.replace(0, &a, &a2);
        assert_eq!(index.lookup("correlation_id", "X"), Some(&[1][..]));
        assert_eq!(index.lookup("correlation_id", "Y"), Some(&[0][..]));
        index.replace(0, &a2, &a);
        assert_eq!(index.lookup("correlation_id", "X"), Some(&[0, 1][..]));
        assert_eq!(index.lookup("correlation_id", "Y"), Some(&[][..]));
    }
}
