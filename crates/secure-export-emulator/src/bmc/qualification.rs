//! A subset of AR System qualifications (the `q=` / `qualification=` syntax).
//!
//! Grammar: `expr := and (OR and)*`, `and := unary (AND unary)*`,
//! `unary := NOT unary | '(' expr ')' | operand op operand`; operands are
//! single-quoted field names (`'Incident Number'`), double-quoted strings
//! (a literal `"` is written `""`), numbers and `$NULL$`; operators `=`, `!=`,
//! `<`, `<=`, `>`, `>=`, `LIKE` (`%` and `_` wildcards). Keywords are
//! case-insensitive. Enumerated fields (`Status`, `Impact`, `Urgency`,
//! `Priority`) compare by their enum order, so `'Status' < "Resolved"` means
//! New, Assigned, In Progress or Pending. `=` compares exactly; `LIKE`
//! ignores case (an emulator choice).

use std::cmp::Ordering;

use serde_json::Value;

/// Enumerations in their AR order.
pub(crate) const ENUMS: &[(&str, &[&str])] = &[
    (
        "Status",
        &[
            "New",
            "Assigned",
            "In Progress",
            "Pending",
            "Resolved",
            "Closed",
            "Cancelled",
        ],
    ),
    (
        "Impact",
        &[
            "1-Extensive/Widespread",
            "2-Significant/Large",
            "3-Moderate/Limited",
            "4-Minor/Localized",
        ],
    ),
    ("Urgency", &["1-Critical", "2-High", "3-Medium", "4-Low"]),
    ("Priority", &["Critical", "High", "Medium", "Low"]),
];

/// A parse error with the byte offset where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QualError {
    pub(crate) message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(String),
    Str(String),
    Num(f64),
    Null,
    And,
    Or,
    Not,
    Op(CmpOp),
    LParen,
    RParen,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
}

/// An operand of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Field(String),
    Str(String),
    Num(f64),
    Null,
}

/// A parsed qualification.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Qual {
    And(Vec<Qual>),
    Or(Vec<Qual>),
    Not(Box<Qual>),
    Cmp(Operand, CmpOp, Operand),
}

fn err(message: impl Into<String>) -> QualError {
    QualError {
        message: message.into(),
    }
}

fn tokenize(text: &str) -> Result<Vec<Tok>, QualError> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            '\'' => {
                let start = i + 1;
                let mut end = start;
                while at(end).is_some_and(|c| c != '\'') {
                    end += 1;
                }
                if at(end).is_none() {
                    return Err(err(format!(
                        "unterminated field name starting at character {i}"
                    )));
                }
                toks.push(Tok::Field(
                    chars.get(start..end).unwrap_or_default().iter().collect(),
                ));
                i = end + 1;
            }
            '"' => {
                let mut value = String::new();
                let mut j = i + 1;
                loop {
                    match at(j) {
                        None => {
                            return Err(err(format!(
                                "unterminated string starting at character {i}"
                            )));
                        }
                        Some('"') if at(j + 1) == Some('"') => {
                            value.push('"');
                            j += 2;
                        }
                        Some('"') => break,
                        Some(c) => {
                            value.push(c);
                            j += 1;
                        }
                    }
                }
                toks.push(Tok::Str(value));
                i = j + 1;
            }
            '=' => {
                toks.push(Tok::Op(CmpOp::Eq));
                i += 1;
            }
            '!' if at(i + 1) == Some('=') => {
                toks.push(Tok::Op(CmpOp::Ne));
                i += 2;
            }
            '<' | '>' => {
                let eq = at(i + 1) == Some('=');
                toks.push(Tok::Op(match (c, eq) {
                    ('<', true) => CmpOp::Le,
                    ('<', false) => CmpOp::Lt,
                    (_, true) => CmpOp::Ge,
                    (_, false) => CmpOp::Gt,
                }));
                i += if eq { 2 } else { 1 };
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {
                let start = i;
                i += 1;
                while at(i).is_some_and(|c| c.is_ascii_digit() || c == '.') {
                    i += 1;
                }
                let text: String = chars.get(start..i).unwrap_or_default().iter().collect();
                let n = text
                    .parse::<f64>()
                    .map_err(|_| err(format!("invalid number '{text}' at character {start}")))?;
                toks.push(Tok::Num(n));
            }
            c if c.is_ascii_alphabetic() || c == '$' => {
                let start = i;
                while at(i).is_some_and(|c| c.is_ascii_alphanumeric() || c == '$' || c == '_') {
                    i += 1;
                }
                let word: String = chars.get(start..i).unwrap_or_default().iter().collect();
                toks.push(match word.to_ascii_uppercase().as_str() {
                    "AND" => Tok::And,
                    "OR" => Tok::Or,
                    "NOT" => Tok::Not,
                    "LIKE" => Tok::Op(CmpOp::Like),
                    "$NULL$" => Tok::Null,
                    _ => {
                        return Err(err(format!(
                            "unexpected word '{word}' at character {start} (field names need single quotes, values double quotes)"
                        )));
                    }
                });
            }
            other => {
                return Err(err(format!(
                    "unexpected character '{other}' at character {i}"
                )));
            }
        }
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self, depth: usize) -> Result<Qual, QualError> {
        let mut parts = vec![self.and(depth)?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            parts.push(self.and(depth)?);
        }
        Ok(
            if parts.len() == 1
                && let Some(only) = parts.pop()
            {
                only
            } else {
                Qual::Or(parts)
            },
        )
    }

    fn and(&mut self, depth: usize) -> Result<Qual, QualError> {
        let mut parts = vec![self.unary(depth)?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            parts.push(self.unary(depth)?);
        }
        Ok(
            if parts.len() == 1
                && let Some(only) = parts.pop()
            {
                only
            } else {
                Qual::And(parts)
            },
        )
    }

    fn unary(&mut self, depth: usize) -> Result<Qual, QualError> {
        if depth > 64 {
            return Err(err("qualification nested too deeply"));
        }
        match self.peek() {
            Some(Tok::Not) => {
                self.pos += 1;
                Ok(Qual::Not(Box::new(self.unary(depth + 1)?)))
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let inner = self.or(depth + 1)?;
                match self.next() {
                    Some(Tok::RParen) => Ok(inner),
                    _ => Err(err("missing ')'")),
                }
            }
            _ => {
                let left = self.operand()?;
                let op = match self.next() {
                    Some(Tok::Op(op)) => op,
                    other => return Err(err(format!("expected an operator, found {other:?}"))),
                };
                let right = self.operand()?;
                Ok(Qual::Cmp(left, op, right))
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, QualError> {
        match self.next() {
            Some(Tok::Field(f)) => Ok(Operand::Field(f)),
            Some(Tok::Str(s)) => Ok(Operand::Str(s)),
            Some(Tok::Num(n)) => Ok(Operand::Num(n)),
            Some(Tok::Null) => Ok(Operand::Null),
            other => Err(err(format!(
                "expected a field, value or $NULL$, found {other:?}"
            ))),
        }
    }
}

impl Qual {
    /// Parse a qualification.
    pub(crate) fn parse(text: &str) -> Result<Self, QualError> {
        let mut parser = Parser {
            toks: tokenize(text)?,
            pos: 0,
        };
        if parser.toks.is_empty() {
            return Err(err("empty qualification"));
        }
        let q = parser.or(0)?;
        if parser.pos < parser.toks.len() {
            return Err(err(format!(
                "unexpected {:?} after the qualification",
                parser.peek()
            )));
        }
        Ok(q)
    }

    /// Every field name the qualification mentions.
    pub(crate) fn fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields(&self, out: &mut Vec<String>) {
        match self {
            Qual::And(parts) | Qual::Or(parts) => {
                for p in parts {
                    p.collect_fields(out);
                }
            }
            Qual::Not(a) => a.collect_fields(out),
            Qual::Cmp(l, _, r) => {
                for o in [l, r] {
                    if let Operand::Field(f) = o {
                        out.push(f.clone());
                    }
                }
            }
        }
    }

    /// Whether a record matches; `get` returns a field's value (missing = NULL).
    pub(crate) fn matches(&self, get: &dyn Fn(&str) -> Option<Value>) -> bool {
        match self {
            Qual::And(parts) => parts.iter().all(|p| p.matches(get)),
            Qual::Or(parts) => parts.iter().any(|p| p.matches(get)),
            Qual::Not(a) => !a.matches(get),
            Qual::Cmp(l, op, r) => {
                let enum_field = [l, r].into_iter().find_map(|o| match o {
                    Operand::Field(f) => ENUMS.iter().find(|(n, _)| n == f).map(|(_, v)| *v),
                    _ => None,
                });
                let resolve = |o: &Operand| -> Option<Value> {
                    match o {
                        Operand::Field(f) => {
                            get(f).filter(|v| !v.is_null() && v.as_str() != Some(""))
                        }
                        Operand::Str(s) => Some(Value::String(s.clone())),
                        Operand::Num(n) => serde_json::Number::from_f64(*n).map(Value::Number),
                        Operand::Null => None,
                    }
                };
                compare(resolve(l), *op, resolve(r), enum_field)
            }
        }
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn compare(l: Option<Value>, op: CmpOp, r: Option<Value>, enum_values: Option<&[&str]>) -> bool {
    let (l, r) = match (l, r) {
        (None, None) => return matches!(op, CmpOp::Eq | CmpOp::Le | CmpOp::Ge),
        (None, Some(_)) | (Some(_), None) => return op == CmpOp::Ne,
        (Some(l), Some(r)) => (text_of(&l), text_of(&r)),
    };
    if op == CmpOp::Like {
        return like(&l.to_lowercase(), &r.to_lowercase());
    }
    let ord = match enum_values {
        Some(values) => {
            // Enum values compare by position; a number is an enum index (New = 0).
            let index = |v: &str| {
                values
                    .iter()
                    .position(|x| *x == v)
                    .and_then(|i| u32::try_from(i).ok())
                    .map(f64::from)
                    .or_else(|| v.parse::<f64>().ok())
            };
            match (index(&l), index(&r)) {
                (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
                _ => plain_order(&l, &r),
            }
        }
        None => plain_order(&l, &r),
    };
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
        CmpOp::Like => false,
    }
}

fn plain_order(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.cmp(b),
    }
}

/// SQL-style LIKE with `%` (any run) and `_` (one character).
fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // Classic DP over (text position, pattern position).
    let mut prev = vec![false; t.len() + 1];
    if let Some(first) = prev.first_mut() {
        *first = true;
    }
    for pc in &p {
        let mut cur = vec![false; t.len() + 1];
        if *pc == '%' {
            let mut any = false;
            for (i, slot) in cur.iter_mut().enumerate() {
                any = any || prev.get(i).copied().unwrap_or(false);
                *slot = any;
            }
        } else {
            for (i, slot) in cur.iter_mut().enumerate().skip(1) {
                let ok = *pc == '_' || t.get(i - 1) == Some(pc);
                *slot = ok && prev.get(i - 1).copied().unwrap_or(false);
            }
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(q: &str, rec: Value) -> bool {
        let qual = Qual::parse(q).unwrap();
        qual.matches(&|f| rec.get(f).cloned())
    }

    #[test]
    fn status_ordering_and_quoting() {
        let rec = json!({"Vendor Ticket Number": "AZ \"1\"", "Status": "Pending"});
        assert!(check(
            r#"'Vendor Ticket Number'="AZ ""1""" AND 'Status' < "Resolved""#,
            rec.clone()
        ));
        assert!(!check(r#"'Status' >= "Resolved""#, rec.clone()));
        assert!(check(r#"'Status' > "In Progress""#, rec.clone()));
        assert!(check("'Status' = 3", rec.clone()), "enum index");
        assert!(check("'Status' < 4", rec.clone()));
        assert!(check(
            r#"('Status' = "New" OR 'Status' = "Pending") and not 'Status' = "Closed""#,
            rec
        ));
    }

    #[test]
    fn null_like_and_numbers() {
        let rec = json!({"Description": "CPU high on test-VM", "Count": 5});
        assert!(check("'Missing' = $NULL$", rec.clone()));
        assert!(check("'Description' != $NULL$", rec.clone()));
        assert!(check(r#"'Description' LIKE "%test-vm""#, rec.clone()));
        assert!(!check(r#"'Description' LIKE "test%x""#, rec.clone()));
        assert!(check("'Count' > 4 AND 'Count' <= 5", rec));
    }

    #[test]
    fn long_chains_do_not_recurse_deeply() {
        let q = vec![r#"'A' = "x""#; 50_000].join(" AND ");
        assert!(check(&q, json!({"A": "x"})));
        let nested = format!("{}'A' = \"x\"{}", "(".repeat(100), ")".repeat(100));
        assert!(Qual::parse(&nested).unwrap_err().message.contains("deeply"));
    }

    #[test]
    fn parse_errors_name_the_problem() {
        for bad in [
            r#"Status = "New""#,
            r#"'Status' = "New"#,
            r#"'Status' "New""#,
            r#"('Status' = "New""#,
            "",
            r#"'A' = "x" AND"#,
        ] {
            let e = Qual::parse(bad).unwrap_err();
            assert!(!e.message.is_empty(), "{bad}");
        }
        assert_eq!(
            Qual::parse(r#"'A' = "x" OR 'B' = 1"#).unwrap().fields(),
            vec!["A".to_owned(), "B".to_owned()]
        );
    }
}
