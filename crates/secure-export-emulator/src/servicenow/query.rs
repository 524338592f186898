//! A subset of ServiceNow's encoded-query language.
//!
//! Supported: conditions chained with `^` (AND), `^OR` (OR, binding tighter than
//! `^`) and `^NQ` (a new query OR-ed with the previous ones); operators `=`,
//! `!=`, `<`, `<=`, `>`, `>=`, `LIKE`, `NOT LIKE`, `STARTSWITH`, `ENDSWITH`,
//! `IN`, `NOT IN`, `ISEMPTY`, `ISNOTEMPTY`, `ANYTHING`; `ORDERBY<field>` and
//! `ORDERBYDESC<field>`; dot-walked fields through reference columns.
//!
//! Like a real instance with default settings, a condition naming an unknown
//! field (or that cannot be parsed) is silently dropped and the rest of the
//! query still filters; a query whose conditions are all dropped matches every
//! record. `=`/`!=`/`IN` compare exactly (case-sensitive, as documented); the
//! `LIKE`/`STARTSWITH`/`ENDSWITH` family compares case-insensitively (an
//! emulator choice matching MySQL-backed instances).

use std::cmp::Ordering;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    NotLike,
    StartsWith,
    EndsWith,
    In,
    NotIn,
    IsEmpty,
    IsNotEmpty,
    Anything,
}

/// Operators in the order they must be tried after a field name.
const OPS: &[(&str, Op)] = &[
    ("!=", Op::Ne),
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("=", Op::Eq),
    ("<", Op::Lt),
    (">", Op::Gt),
    ("NOT LIKE", Op::NotLike),
    ("LIKE", Op::Like),
    ("STARTSWITH", Op::StartsWith),
    ("ENDSWITH", Op::EndsWith),
    ("NOT IN", Op::NotIn),
    ("IN", Op::In),
    ("ISNOTEMPTY", Op::IsNotEmpty),
    ("ISEMPTY", Op::IsEmpty),
    ("ANYTHING", Op::Anything),
];

/// One `<field><op><value>` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Condition {
    pub(crate) field: String,
    pub(crate) op: Op,
    pub(crate) value: String,
}

/// A parsed encoded query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EncodedQuery {
    /// OR of queries; each query is an AND of OR-chains of conditions.
    queries: Vec<Vec<Vec<Condition>>>,
    /// `(field, descending)` sort keys in order.
    pub(crate) order: Vec<(String, bool)>,
    /// Whether some part was dropped as invalid (unparseable or unknown field).
    pub(crate) had_invalid_part: bool,
}

impl EncodedQuery {
    /// Parse `text`. Never fails: unparseable parts are dropped like the real one does.
    pub(crate) fn parse(text: &str) -> Self {
        let mut out = Self::default();
        for sub in text.split("^NQ") {
            let mut and_chains: Vec<Vec<Condition>> = Vec::new();
            for token in sub.split('^') {
                let token = token.trim_start();
                if token.is_empty() || token == "EQ" {
                    continue;
                }
                if let Some(field) = token.strip_prefix("ORDERBYDESC") {
                    out.order.push((field.to_owned(), true));
                } else if let Some(field) = token.strip_prefix("ORDERBY") {
                    out.order.push((field.to_owned(), false));
                } else if let Some(rest) = token.strip_prefix("OR") {
                    if let Some(cond) = parse_condition(rest) {
                        match and_chains.last_mut() {
                            Some(chain) => chain.push(cond),
                            None => and_chains.push(vec![cond]),
                        }
                    } else {
                        out.had_invalid_part = true;
                    }
                } else if let Some(cond) = parse_condition(token) {
                    and_chains.push(vec![cond]);
                } else {
                    out.had_invalid_part = true;
                }
            }
            out.queries.push(and_chains);
        }
        out
    }

    /// Add an AND condition to every sub-query (used for `field=value` shortcut parameters).
    pub(crate) fn and(&mut self, cond: Condition) {
        if self.queries.is_empty() {
            self.queries.push(Vec::new());
        }
        for q in &mut self.queries {
            q.push(vec![cond.clone()]);
        }
    }

    /// Drop every condition whose field `valid` rejects, and unknown sort keys.
    pub(crate) fn retain_fields(&mut self, valid: impl Fn(&str) -> bool) {
        let mut dropped = false;
        for q in &mut self.queries {
            for chain in q.iter_mut() {
                let before = chain.len();
                chain.retain(|c| valid(&c.field));
                dropped |= chain.len() != before;
            }
            q.retain(|chain| !chain.is_empty());
        }
        let before = self.order.len();
        self.order.retain(|(f, _)| valid(f));
        dropped |= self.order.len() != before;
        self.had_invalid_part |= dropped;
    }

    /// `=` conditions every matching record must satisfy: the single-condition
    /// AND terms of a query without `^NQ` (an `^OR` chain or a second query
    /// can match records that fail them). Empty when none is required.
    pub(crate) fn required_equalities(&self) -> impl Iterator<Item = &Condition> {
        let single = match self.queries.as_slice() {
            [only] => only.as_slice(),
            _ => &[],
        };
        single.iter().filter_map(|chain| match chain.as_slice() {
            [cond] if cond.op == Op::Eq => Some(cond),
            _ => None,
        })
    }

    /// Whether a record matches; `value_of` returns a field's stored value.
    pub(crate) fn matches(&self, value_of: impl Fn(&str) -> String) -> bool {
        if self.queries.is_empty() {
            return true;
        }
        self.queries.iter().any(|q| {
            q.iter()
                .all(|chain| chain.iter().any(|c| eval(c, &value_of(&c.field))))
        })
    }
}

fn parse_condition(token: &str) -> Option<Condition> {
    let field_len = token
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'))
        .unwrap_or(token.len());
    let (field, rest) = token.split_at(field_len);
    if field.is_empty() {
        return None;
    }
    let (sym, op) = OPS.iter().find(|(sym, _)| rest.starts_with(sym))?;
    let value = rest.get(sym.len()..).unwrap_or_default();
    Some(Condition {
        field: field.to_owned(),
        op: *op,
        value: value.to_owned(),
    })
}

fn eval(cond: &Condition, actual: &str) -> bool {
    let lower = || actual.to_lowercase();
    let wanted = || cond.value.to_lowercase();
    match cond.op {
        Op::Eq => actual == cond.value,
        Op::Ne => actual != cond.value,
        Op::Lt => compare(actual, &cond.value) == Ordering::Less,
        Op::Le => compare(actual, &cond.value) != Ordering::Greater,
        Op::Gt => compare(actual, &cond.value) == Ordering::Greater,
        Op::Ge => compare(actual, &cond.value) != Ordering::Less,
        Op::Like => lower().contains(&wanted()),
        Op::NotLike => !lower().contains(&wanted()),
        Op::StartsWith => lower().starts_with(&wanted()),
        Op::EndsWith => lower().ends_with(&wanted()),
        Op::In => cond.value.split(',').any(|v| v == actual),
        Op::NotIn => !cond.value.split(',').any(|v| v == actual),
        Op::IsEmpty => actual.is_empty(),
        Op::IsNotEmpty => !actual.is_empty(),
        Op::Anything => true,
    }
}

/// Compare numerically when both sides are numbers, else as text.
pub(crate) fn compare(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn rec(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn matches(q: &EncodedQuery, r: &HashMap<String, String>) -> bool {
        q.matches(|f| r.get(f).cloned().unwrap_or_default())
    }

    #[test]
    fn and_or_precedence() {
        let q = EncodedQuery::parse("active=true^state=1^ORstate=2");
        assert!(matches(&q, &rec(&[("active", "true"), ("state", "2")])));
        assert!(!matches(&q, &rec(&[("active", "false"), ("state", "2")])));
        assert!(!matches(&q, &rec(&[("active", "true"), ("state", "6")])));
    }

    #[test]
    fn operators() {
        let r = rec(&[
            ("short_description", "CPU high on test-VM"),
            ("priority", "10"),
        ]);
        for (q, want) in [
            ("short_descriptionLIKEcpu", true),
            ("short_descriptionNOT LIKEcpu", false),
            ("short_descriptionSTARTSWITHcpu", true),
            ("short_descriptionENDSWITHvm", true),
            ("priority>9", true),
            ("priority<9", false),
            ("priorityIN1,10", true),
            ("short_descriptionISNOTEMPTY", true),
            ("closed_atISEMPTY", true),
            ("priority!=10", false),
        ] {
            assert_eq!(matches(&EncodedQuery::parse(q), &r), want, "{q}");
        }
    }

    #[test]
    fn ordering_and_new_query() {
        let q = EncodedQuery::parse("state=1^NQstate=2^ORDERBYDESCnumber^ORDERBYpriority");
        assert_eq!(
            q.order,
            vec![("number".to_owned(), true), ("priority".to_owned(), false)]
        );
        assert!(matches(&q, &rec(&[("state", "2")])));
        assert!(!matches(&q, &rec(&[("state", "3")])));
    }

    #[test]
    fn required_equalities_skip_or_chains_and_new_queries() {
        let fields = |q: &str| {
            EncodedQuery::parse(q)
                .required_equalities()
                .map(|c| format!("{}={}", c.field, c.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            fields("correlation_id=X^active=true^state!=6^ORDERBYnumber"),
            ["correlation_id=X", "active=true"]
        );
        assert_eq!(fields("number=A^ORnumber=B^active=true"), ["active=true"]);
        assert!(fields("number=A^NQnumber=B").is_empty());
        assert!(fields("numberLIKEA").is_empty());
        assert!(fields("").is_empty());
    }

    #[test]
    fn unknown_fields_are_dropped_not_rejected() {
        let mut q = EncodedQuery::parse("correlation_idd=X^active=true^ORDERBYbogus");
        q.retain_fields(|f| f != "correlation_idd" && f != "bogus");
        assert!(matches(
            &q,
            &rec(&[("active", "true"), ("correlation_id", "Y")])
        ));
        assert!(q.order.is_empty());
        assert!(q.had_invalid_part);
        let mut fine = EncodedQuery::parse("active=true");
        fine.retain_fields(|_| true);
        assert!(!fine.had_invalid_part);
        let mut all_bad = EncodedQuery::parse("nope=1^Garbage");
        all_bad.retain_fields(|f| f != "nope");
        assert!(matches(&all_bad, &rec(&[])));
    }
}
