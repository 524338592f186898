//! The in-memory tables and the business rules the emulator applies on write.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};

use super::JournalEntry;
use super::index::RootIndex;
use super::oauth::TokenStore;
use super::query::{EncodedQuery, compare};
use super::rules::{apply_event_rules, apply_task_rules, write_fields};
use super::schema;

/// A stored record: every value is a string, like on a real instance.
pub(crate) type Rec = BTreeMap<String, String>;

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WriteRefused {
    pub(crate) status: u16,
    pub(crate) message: String,
    pub(crate) detail: String,
}

/// The whole instance state behind one lock.
#[derive(Debug, Default)]
pub(crate) struct Store {
    roots: HashMap<&'static str, Vec<Rec>>,
    /// Equality indexes per root table, kept in step with `roots`.
    indexes: HashMap<&'static str, RootIndex>,
    counters: HashMap<&'static str, u64>,
    pub(crate) tokens: TokenStore,
    pub(crate) denied_writes: HashSet<String>,
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, the Table API's stored date format.
pub(crate) fn now_string() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A new 32-hex sys_id.
pub(crate) fn new_sys_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Store {
    /// Append `rec` to the root table `root`, indexing it.
    fn push(&mut self, root: &'static str, rec: Rec) {
        let records = self.roots.entry(root).or_default();
        self.indexes
            .entry(root)
            .or_default()
            .add(records.len(), &rec);
        records.push(rec);
    }

    /// Replace the record at `pos` of root table `root`, re-indexing it.
    fn replace(&mut self, root: &'static str, pos: usize, rec: Rec) {
        let Some(slot) = self.roots.get_mut(root).and_then(|recs| recs.get_mut(pos)) else {
            return;
        };
        self.indexes
            .entry(root)
            .or_default()
            .replace(pos, slot, &rec);
        *slot = rec;
    }

    /// Records of `table` (descendant classes included) whose indexed
    /// `field` is `value`, in insertion order; `None` when `field` is not
    /// indexed. A superset: the caller still checks the field's value.
    fn indexed(&self, table: &str, field: &str, value: &str) -> Option<Vec<(usize, &Rec)>> {
        let Some(root) = schema::root_of(table) else {
            return Some(Vec::new());
        };
        let (Some(records), Some(index)) = (self.roots.get(root), self.indexes.get(root)) else {
            return Some(Vec::new());
        };
        let positions = index.lookup(field, value)?;
        Some(
            positions
                .iter()
                .filter_map(|pos| records.get(*pos).map(|rec| (*pos, rec)))
                .filter(|(_, r)| {
                    r.get("sys_class_name")
                        .is_some_and(|class| schema::extends(class, table))
                })
                .collect(),
        )
    }

    /// Root table and position of the first record of `table` with `sys_id`.
    fn position(&self, table: &str, sys_id: &str) -> Option<(&'static str, usize)> {
        let root = schema::root_of(table)?;
        self.indexed(table, "sys_id", sys_id)?
            .into_iter()
            .find(|(_, r)| r.get("sys_id").is_some_and(|id| id == sys_id))
            .map(|(pos, _)| (root, pos))
    }

    /// Records of `table` (descendant classes included), in insertion order.
    pub(crate) fn records(&self, table: &str) -> Vec<&Rec> {
        let Some(root) = schema::root_of(table) else {
            return Vec::new();
        };
        self.roots
            .get(root)
            .map(|recs| {
                recs.iter()
                    .filter(|r| {
                        r.get("sys_class_name")
                            .is_some_and(|class| schema::extends(class, table))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One record of `table` by sys_id.
    pub(crate) fn record(&self, table: &str, sys_id: &str) -> Option<&Rec> {
        let (root, pos) = self.position(table, sys_id)?;
        self.roots.get(root)?.get(pos)
    }

    /// The value of a (possibly dot-walked) field of a record of `table`.
    pub(crate) fn value_of(&self, table: &str, rec: &Rec, path: &str) -> String {
        match path.split_once('.') {
            None => rec.get(path).cloned().unwrap_or_default(),
            Some((head, rest)) => {
                let Some(target) = schema::reference_target(table, head) else {
                    return String::new();
                };
                let Some(id) = rec.get(head) else {
                    return String::new();
                };
                match self.record(target, id) {
                    Some(next) => {
                        let class = next
                            .get("sys_class_name")
                            .map(String::as_str)
                            .unwrap_or(target);
                        self.value_of(class, next, rest)
                    }
                    None => String::new(),
                }
            }
        }
    }

    /// The display value of the record `sys_id` of `table` (empty when missing).
    pub(crate) fn display_of(&self, table: &str, sys_id: &str) -> String {
        self.record(table, sys_id)
            .and_then(|r| {
                let class = r.get("sys_class_name").map(String::as_str).unwrap_or(table);
                r.get(schema::display_column(class)).cloned()
            })
            .unwrap_or_default()
    }

    /// Whether a (possibly dot-walked) field path is valid on `table`.
    pub(crate) fn valid_path(table: &str, path: &str) -> bool {
        match path.split_once('.') {
            None => schema::has_column(table, path),
            Some((head, rest)) => schema::reference_target(table, head)
                .is_some_and(|target| Self::valid_path(target, rest)),
        }
    }

    /// Filter, sort and count records of `table` with an encoded query.
    ///
    /// Invalid parts (unknown fields, unparseable conditions) are dropped and
    /// the rest filters, unless `strict` (the instance property
    /// `glide.invalid_query.returns_no_rows=true`), which returns no rows.
    pub(crate) fn query(&self, table: &str, query: EncodedQuery, strict: bool) -> Vec<&Rec> {
        self.query_with(table, query, strict, true)
    }

    /// [`Store::query`], reading candidates from an index when the query
    /// requires `field=value` on an indexed field and `use_index`, else
    /// scanning every record of `table`. Both give the same rows.
    fn query_with(
        &self,
        table: &str,
        mut query: EncodedQuery,
        strict: bool,
        use_index: bool,
    ) -> Vec<&Rec> {
        query.retain_fields(|f| Self::valid_path(table, f));
        if strict && query.had_invalid_part {
            return Vec::new();
        }
        let candidates = use_index
            .then(|| {
                query
                    .required_equalities()
                    .find_map(|cond| self.indexed(table, &cond.field, &cond.value))
            })
            .flatten()
            .map(|found| found.into_iter().map(|(_, rec)| rec).collect::<Vec<_>>())
            .unwrap_or_else(|| self.records(table));
        let mut rows: Vec<&Rec> = candidates
            .into_iter()
            .filter(|r| query.matches(|f| self.value_of(table, r, f)))
            .collect();
        if !query.order.is_empty() {
            rows.sort_by(|a, b| {
                for (field, desc) in &query.order {
                    let ord = compare(
                        &self.value_of(table, a, field),
                        &self.value_of(table, b, field),
                    );
                    let ord = if *desc { ord.reverse() } else { ord };
                    if ord.is_ne() {
                        return ord;
                    }
                }
                std::cmp::Ordering::Equal
            });
        }
        rows
    }

    fn next_number(&mut self, prefix: &'static str) -> String {
        let counter = self.counters.entry(prefix).or_insert(10_000);
        *counter += 1;
        format!("{prefix}{counter:07}")
    }

    /// Insert a record into `table` as `user` (a sys_user sys_id or name).
    pub(crate) fn insert(
        &mut self,
        table: &str,
        input: &Map<String, Value>,
        user: &str,
    ) -> Result<String, WriteRefused> {
        let now = now_string();
        let mut rec: Rec = schema::columns(table)
            .into_iter()
            .map(|c| (c.to_owned(), String::new()))
            .collect();
        let sys_id = input
            .get("sys_id")
            .and_then(Value::as_str)
            .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned)
            .unwrap_or_else(new_sys_id);
        let class = input
            .get("sys_class_name")
            .and_then(Value::as_str)
            .filter(|c| schema::extends(c, table))
            .unwrap_or(table)
            .to_owned();
        let mut rec_class = schema::columns(&class)
            .into_iter()
            .map(|c| (c.to_owned(), String::new()))
            .collect::<Rec>();
        rec.append(&mut rec_class);
        for (k, v) in [
            ("sys_id", sys_id.clone()),
            ("sys_class_name", class.clone()),
            ("sys_created_on", now.clone()),
            ("sys_created_by", user.to_owned()),
            ("sys_updated_on", now.clone()),
            ("sys_updated_by", user.to_owned()),
            ("sys_mod_count", "0".to_owned()),
        ] {
            rec.insert(k.to_owned(), v);
        }
        let journal = write_fields(&class, &mut rec, input);
        if schema::extends(&class, "task") {
            if class == "incident" {
                let number = self.next_number("INC");
                rec.insert("number".to_owned(), number);
                for (field, default) in [("reopen_count", "0"), ("severity", "3"), ("notify", "1")]
                {
                    if rec.get(field).is_none_or(String::is_empty) {
                        rec.insert(field.to_owned(), default.to_owned());
                    }
                }
            }
            for (field, default) in [
                ("state", "1"),
                ("impact", "3"),
                ("urgency", "3"),
                ("escalation", "0"),
                ("reassignment_count", "0"),
            ] {
                if rec.get(field).is_none_or(String::is_empty) {
                    rec.insert(field.to_owned(), default.to_owned());
                }
            }
            rec.insert("opened_at".to_owned(), now.clone());
            rec.insert("opened_by".to_owned(), self.user_sys_id(user));
        }
        if class == "em_event" {
            apply_event_rules(&mut rec);
            self.process_event(&mut rec, user);
        }
        apply_task_rules(&class, &mut rec, &now, &self.user_sys_id(user))?;
        let Some(root) = schema::root_of(&class) else {
            return Err(WriteRefused {
                status: 400,
                message: format!("Invalid table {table}"),
                detail: String::new(),
            });
        };
        self.push(root, rec);
        for (element, value) in journal {
            self.add_journal(&class, &sys_id, &element, &value, user);
        }
        Ok(sys_id)
    }

    /// Roll a ready event into its `em_alert` (by `message_key`): create an
    /// Open alert, update it, close it on severity 0 / resolution_state
    /// Closing, or reopen a closed one. Severity 0 with no alert creates none.
    fn process_event(&mut self, event: &mut Rec, user: &str) {
        if event.get("state").map(String::as_str) != Some("Ready") {
            return;
        }
        let get = |k: &str| event.get(k).cloned().unwrap_or_default();
        let key = get("message_key");
        let severity = get("severity");
        let closing = severity == "0" || get("resolution_state") == "Closing";
        let now = now_string();
        let existing = self
            .indexed("em_alert", "message_key", &key)
            .unwrap_or_default()
            .into_iter()
            .rev()
            .find(|(_, a)| a.get("message_key") == Some(&key))
            .map(|(pos, alert)| (pos, alert.clone()));
        let alert_id = match existing {
            Some((pos, mut alert)) => {
                let state = alert.get("state").cloned().unwrap_or_default();
                let new_state = match (closing, state.as_str()) {
                    (true, _) => "Closed",
                    (false, "Closed") => "Reopen",
                    (false, _) => "Open",
                };
                alert.insert("state".to_owned(), new_state.to_owned());
                if !closing {
                    alert.insert("severity".to_owned(), severity);
                }
                alert.insert("last_remote_time".to_owned(), get("time_of_event"));
                alert.insert("sys_updated_on".to_owned(), now);
                let id = alert.get("sys_id").cloned();
                self.replace("em_alert", pos, alert);
                id
            }
            None if closing => None,
            None => {
                let mut fields = Map::new();
                for k in [
                    "message_key",
                    "source",
                    "node",
                    "type",
                    "resource",
                    "metric_name",
                    "severity",
                    "description",
                    "additional_info",
                ] {
                    fields.insert(k.to_owned(), Value::String(get(k)));
                }
                fields.insert("state".to_owned(), Value::String("Open".to_owned()));
                fields.insert(
                    "initial_remote_time".to_owned(),
                    Value::String(get("time_of_event")),
                );
                fields.insert(
                    "last_remote_time".to_owned(),
                    Value::String(get("time_of_event")),
                );
                let number = self.next_number("Alert");
                fields.insert("number".to_owned(), Value::String(number));
                self.insert("em_alert", &fields, user).ok()
            }
        };
        event.insert("state".to_owned(), "Processed".to_owned());
        match alert_id {
            Some(id) => {
                event.insert("alert".to_owned(), id);
            }
            None => {
                event.insert(
                    "processing_notes".to_owned(),
                    "Clear event without an open alert: no alert created".to_owned(),
                );
            }
        }
    }

    /// Update a record (PATCH and PUT behave the same on the Table API).
    pub(crate) fn update(
        &mut self,
        table: &str,
        sys_id: &str,
        input: &Map<String, Value>,
        user: &str,
    ) -> Result<Option<()>, WriteRefused> {
        let user_id = self.user_sys_id(user);
        let Some((root, pos)) = self.position(table, sys_id) else {
            return Ok(None);
        };
        let Some(current) = self.roots.get(root).and_then(|recs| recs.get(pos)) else {
            return Ok(None);
        };
        let class = current
            .get("sys_class_name")
            .cloned()
            .unwrap_or_else(|| table.to_owned());
        let mut updated = current.clone();
        let journal = write_fields(&class, &mut updated, input);
        let now = now_string();
        apply_task_rules(&class, &mut updated, &now, &user_id)?;
        if class == "incident" && current.get("state") != updated.get("state") {
            let was_closed = current
                .get("state")
                .is_some_and(|s| ["6", "7", "8"].contains(&s.as_str()));
            let now_open = updated
                .get("state")
                .is_some_and(|s| ["1", "2", "3"].contains(&s.as_str()));
            if was_closed && now_open {
                let count = updated
                    .get("reopen_count")
                    .and_then(|c| c.parse::<u64>().ok())
                    .unwrap_or(0);
                updated.insert("reopen_count".to_owned(), (count + 1).to_string());
                updated.insert("reopened_time".to_owned(), now.clone());
                for f in ["resolved_at", "resolved_by", "closed_at", "closed_by"] {
                    updated.insert(f.to_owned(), String::new());
                }
            }
        }
        let mods = updated
            .get("sys_mod_count")
            .and_then(|c| c.parse::<u64>().ok())
            .unwrap_or(0);
        updated.insert("sys_mod_count".to_owned(), (mods + 1).to_string());
        updated.insert("sys_updated_on".to_owned(), now);
        updated.insert("sys_updated_by".to_owned(), user.to_owned());
        self.replace(root, pos, updated);
        for (element, value) in journal {
            self.add_journal(&class, sys_id, &element, &value, user);
        }
        Ok(Some(()))
    }

    /// Delete a record; `false` when it does not exist.
    pub(crate) fn delete(&mut self, table: &str, sys_id: &str) -> bool {
        let Some(root) = schema::root_of(table) else {
            return false;
        };
        let Some(records) = self.roots.get_mut(root) else {
            return false;
        };
        let before = records.len();
        records.retain(|r| {
            !(r.get("sys_id").is_some_and(|id| id == sys_id)
                && r.get("sys_class_name")
                    .is_some_and(|class| schema::extends(class, table)))
        });
        if records.len() == before {
            return false;
        }
        // Positions after the deleted ones shifted: rebuild (deletes are rare).
        self.indexes.insert(root, RootIndex::build(records));
        true
    }

    fn add_journal(
        &mut self,
        table: &str,
        element_id: &str,
        element: &str,
        value: &str,
        user: &str,
    ) {
        let now = now_string();
        let rec: Rec = [
            ("sys_id", new_sys_id()),
            ("sys_class_name", "sys_journal_field".to_owned()),
            ("sys_created_on", now.clone()),
            ("sys_created_by", user.to_owned()),
            ("sys_updated_on", now),
            ("sys_updated_by", user.to_owned()),
            ("sys_mod_count", "0".to_owned()),
            ("element", element.to_owned()),
            ("element_id", element_id.to_owned()),
            ("name", table.to_owned()),
            ("value", value.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        self.push("sys_journal_field", rec);
    }

    /// Journal entries written on record `element_id`, oldest first.
    pub(crate) fn journal(&self, element_id: &str) -> Vec<JournalEntry> {
        self.indexed("sys_journal_field", "element_id", element_id)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.get("element_id").is_some_and(|id| id == element_id))
            .map(|r| {
                let get = |k: &str| r.get(k).cloned().unwrap_or_default();
                JournalEntry {
                    sys_id: get("sys_id"),
                    table: get("name"),
                    element_id: get("element_id"),
                    element: get("element"),
                    value: get("value"),
                    created_on: get("sys_created_on"),
                    created_by: get("sys_created_by"),
                }
            })
            .collect()
    }

    /// The sys_id of the sys_user named `user_name`, or the name itself.
    fn user_sys_id(&self, user_name: &str) -> String {
        self.records("sys_user")
            .into_iter()
            .find(|r| r.get("user_name").is_some_and(|n| n == user_name))
            .and_then(|r| r.get("sys_id").cloned())
            .unwrap_or_else(|| user_name.to_owned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn priority_matrix() {
        use super::super::rules::priority;
        assert_eq!(priority("1", "1"), "1");
        assert_eq!(priority("1", "2"), "2");
        assert_eq!(priority("2", "2"), "3");
        assert_eq!(priority("3", "2"), "4");
        assert_eq!(priority("3", "3"), "5");
        assert_eq!(priority("x", "1"), "3");
    }

    #[test]
    fn insert_update_resolve_reopen() {
        let mut s = Store::default();
        let id = s
            .insert("incident", &obj(json!({"short_description": "x", "impact": 1, "urgency": "2", "work_notes": "hello", "bogus": "dropped", "u_custom": "kept", "priority": "5"})), "admin")
            .unwrap();
        let r = s.record("incident", &id).unwrap().clone();
        assert_eq!(r["number"], "INC0010001");
        assert_eq!(r["priority"], "2");
        assert_eq!(r["impact"], "1");
        assert_eq!(r["work_notes"], "");
        assert_eq!(r["u_custom"], "kept");
        assert!(!r.contains_key("bogus"));
        assert_eq!(r["active"], "true");
        assert_eq!(s.journal(&id).len(), 1);

        let refused = s
            .update("incident", &id, &obj(json!({"state": "6"})), "admin")
            .unwrap_err();
        assert_eq!(refused.status, 403);
        assert!(refused.detail.contains("Resolution code"));
        assert_eq!(s.record("incident", &id).unwrap()["state"], "1");

        s.update(
            "incident",
            &id,
            &obj(json!({"state": "6", "close_code": "Solution provided", "close_notes": "done"})),
            "admin",
        )
        .unwrap()
        .unwrap();
        let r = s.record("incident", &id).unwrap();
        assert_eq!(r["active"], "false");
        assert!(!r["resolved_at"].is_empty());
        assert_eq!(r["sys_mod_count"], "1");

        s.update("incident", &id, &obj(json!({"state": "2"})), "admin")
            .unwrap()
            .unwrap();
        let r = s.record("incident", &id).unwrap();
        assert_eq!(r["active"], "true");
        assert_eq!(r["reopen_count"], "1");
        assert_eq!(r["resolved_at"], "");
        assert!(
            s.update("incident", &new_sys_id(), &Map::new(), "admin")
                .unwrap()
                .is_none()
        );
    }

    fn ids(rows: &[&Rec]) -> Vec<String> {
        rows.iter().map(|r| r["sys_id"].clone()).collect()
    }

    #[test]
    fn indexed_queries_match_the_scan() {
        let mut s = Store::default();
        let mut incidents = Vec::new();
        for i in 0..40 {
            let mut fields = json!({
                "short_description": format!("alert {i}"),
                "correlation_id": format!("corr-{}", i % 7),
                "impact": (i % 3) + 1,
                "urgency": (i % 2) + 2,
            });
            if i % 5 == 0 {
                fields["correlation_id"] = json!("");
            }
            let id = s.insert("incident", &obj(fields), "admin").unwrap();
            incidents.push(id);
        }
        s.insert(
            "task",
            &obj(json!({"short_description": "p", "correlation_id": "corr-1"})),
            "admin",
        )
        .unwrap();
        // Updates that move records between index keys, resolve some, and a delete.
        for (n, id) in incidents.iter().enumerate().step_by(3) {
            s.update(
                "incident",
                id,
                &obj(json!({"correlation_id": format!("moved-{}", n % 4)})),
                "admin",
            )
            .unwrap()
            .unwrap();
        }
        for id in incidents.iter().step_by(4) {
            s.update(
                "incident",
                id,
                &obj(json!({"state": "6", "close_code": "Solution provided", "close_notes": "ok"})),
                "admin",
            )
            .unwrap()
            .unwrap();
        }
        s.update(
            "incident",
            &incidents[2],
            &obj(json!({"number": "INC0010001"})),
            "admin",
        )
        .unwrap()
        .unwrap();
        assert!(s.delete("incident", &incidents[10]));
        for key in ["k1", "k2", "k1", "k3"] {
            s.insert(
                "em_event",
                &obj(json!({"message_key": key, "source": "azure", "severity": "2", "node": "vm"})),
                "admin",
            )
            .unwrap();
        }
        s.insert(
            "em_event",
            &obj(json!({"message_key": "k1", "source": "azure", "severity": "0", "node": "vm"})),
            "admin",
        )
        .unwrap();

        let queries = [
            ("incident", "correlation_id=corr-1^active=true"),
            (
                "incident",
                "correlation_id=corr-1^active=true^ORDERBYDESCnumber",
            ),
            ("incident", "correlation_id=moved-0^ORcorrelation_id=corr-2"),
            (
                "incident",
                "correlation_id=moved-1^active=true^ORactive=false^ORDERBYimpact",
            ),
            ("incident", "correlation_id!=corr-3^active=true"),
            ("incident", "correlation_id=corr-4^state!=6"),
            ("incident", "correlation_id=^active=true"),
            ("incident", "correlation_id=corr-2^NQcorrelation_id=moved-2"),
            (
                "incident",
                "active=true^correlation_id=corr-5^ORDERBYDESCsys_created_on^ORDERBYnumber",
            ),
            ("incident", "number=INC0010001"),
            ("incident", "number=INC0010003^ORnumber=INC0010004"),
            ("incident", "correlation_id=nothing"),
            ("incident", "correlation_idd=corr-1^active=true"),
            ("incident", "correlation_id=corr-6^bogus=1"),
            (
                "incident",
                "short_descriptionLIKEalert 1^correlation_id=corr-1",
            ),
            ("task", "correlation_id=corr-1"),
            ("incident", "correlation_id=corr-1^ORDERBYsys_class_name"),
            ("incident", &format!("sys_id={}", incidents[5])),
            ("incident", &format!("sys_id={}", incidents[10])),
            ("em_alert", "message_key=k1"),
            ("em_alert", "message_key=k2^state=Open"),
            ("em_event", "message_key=k1^ORDERBYDESCseverity"),
            ("sys_journal_field", "element_id=nothing"),
        ];
        let mut non_empty = 0;
        for (table, q) in queries {
            for strict in [false, true] {
                let indexed = s.query_with(table, EncodedQuery::parse(q), strict, true);
                let scanned = s.query_with(table, EncodedQuery::parse(q), strict, false);
                assert_eq!(
                    ids(&indexed),
                    ids(&scanned),
                    "{table}: {q} (strict {strict})"
                );
                non_empty += usize::from(!indexed.is_empty());
            }
        }
        assert!(
            non_empty > 20,
            "queries must exercise non-empty results: {non_empty}"
        );
        for id in &incidents {
            let scanned = s
                .records("task")
                .into_iter()
                .find(|r| r.get("sys_id") == Some(id));
            assert_eq!(s.record("task", id), scanned);
        }
        let alerts = s.query("em_alert", EncodedQuery::parse("message_key=k1"), false);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0]["state"], "Closed");
    }

    #[test]
    fn class_hierarchy_and_dot_walk() {
        let mut s = Store::default();
        let ci = s
            .insert("cmdb_ci", &obj(json!({"sys_class_name": "cmdb_ci_vm_instance", "name": "vm1", "vm_inst_id": "abc"})), "admin")
            .unwrap();
        assert_eq!(s.records("cmdb_ci").len(), 1);
        assert_eq!(s.records("cmdb_ci_vm_instance").len(), 1);
        assert_eq!(s.records("cmdb_ci_cloud_database").len(), 0);
        let inc = s
            .insert("incident", &obj(json!({"short_description": "x"})), "admin")
            .unwrap();
        s.insert(
            "task_ci",
            &obj(json!({"task": inc, "ci_item": ci})),
            "admin",
        )
        .unwrap();
        let rows = s.query(
            "task_ci",
            EncodedQuery::parse("task.number=INC0010001"),
            false,
        );
        assert_eq!(rows.len(), 1);
        let rows = s.query("task_ci", EncodedQuery::parse("ci_item.name=vm2"), false);
        assert!(rows.is_empty());
    }
}
