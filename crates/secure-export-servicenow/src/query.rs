//! Values that go into an encoded query (`sysparm_query`).
//!
//! Values in an encoded query are neither quoted nor escaped, and ServiceNow documents no escape
//! for them:
//!
//! - a value that begins with `javascript:` is evaluated on the instance as a server-side script
//!   (that is how `sys_created_on>=javascript:gs.beginningOfLast7Days()` works), so a
//!   configuration item named `javascript:gs.sleep(3000)` would run code there;
//! - a `^` starts another condition (`^OR`, `^NQ` a whole new query), so `x^NQactive=true`
//!   widens the query to every active record.
//!
//! So such values never enter a query: [`check`] refuses them (and empty values and control
//! characters), and callers either skip the query or, for keys this crate writes itself, store a
//! neutralized key ([`crate::fields::correlation_key`]).

use std::fmt;

/// The prefix ServiceNow evaluates as a script in a query value.
const SCRIPT_PREFIX: &str = "javascript:";

/// Why a value cannot go into an encoded query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Empty, or only whitespace.
    Empty,
    /// Begins (after whitespace and invisible characters, in any case) with `javascript:`.
    Script,
    /// Contains `^`, the encoded-query separator.
    Caret,
    /// Contains control characters (line breaks, NUL, ...).
    Control,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "the value is empty",
            Self::Script => {
                "the value begins with javascript:, which ServiceNow evaluates as a script in a \
                 query, and is never sent to ServiceNow"
            }
            Self::Caret => {
                "the value contains ^, which would add conditions to the encoded query (ServiceNow \
                 has no escape for it), and is never sent to ServiceNow"
            }
            Self::Control => {
                "the value contains control characters and is never sent to ServiceNow"
            }
        })
    }
}

/// `value` if it can stand unchanged as the value of an encoded-query condition.
pub(crate) fn check(value: &str) -> Result<&str, Refusal> {
    if value.trim().is_empty() {
        Err(Refusal::Empty)
    } else if value.chars().any(char::is_control) {
        Err(Refusal::Control)
    } else if value.contains('^') {
        Err(Refusal::Caret)
    } else if is_script(value) {
        Err(Refusal::Script)
    } else {
        Ok(value)
    }
}

/// Whether `value` begins with `javascript:`, judged generously: leading whitespace, control
/// and invisible (format, zero-width) characters are skipped, as are such characters between
/// the letters, and letters compare in any case, including the Unicode letters whose upper or
/// lower case is an ASCII letter of the prefix (`ſ`, `ı`), which Java's case-insensitive
/// comparisons accept.
pub(crate) fn is_script(value: &str) -> bool {
    let mut visible = value.chars().filter(|&c| !is_ignorable(c));
    SCRIPT_PREFIX
        .chars()
        .all(|want| visible.next().is_some_and(|got| same_letter(got, want)))
}

/// `c` equals the ASCII character `want` ignoring case, in the simple Unicode case mappings too.
fn same_letter(c: char, want: char) -> bool {
    c.eq_ignore_ascii_case(&want)
        || c.to_uppercase().eq(want.to_uppercase())
        || c.to_lowercase().eq(want.to_lowercase())
}

/// Whitespace, control characters, and the default-ignorable (invisible) code points.
fn is_ignorable(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_values_are_recognized_however_they_are_dressed() {
        for value in [
            "javascript:gs.sleep(3000)",
            "JavaScript:gs.sleep(3000)",
            "JAVASCRIPT:x",
            "  javascript:x",
            "\tjavascript:x",
            "\n\r javascript:x",
            "\u{0}javascript:x",
            "\u{FEFF}javascript:x",
            "\u{200B}\u{00A0}javascript:x",
            "java\u{200B}script:x",
            "java script:x",
            "javaſcript:x",
            "javascrıpt:x",
            "javascript:",
        ] {
            assert!(is_script(value), "{value:?}");
        }
        for value in [
            "javascript",
            "javascript-vm01",
            "my-javascript:x",
            "_javascript:x",
            "ｊａｖａｓｃｒｉｐｔ:x",
            "javascript;x",
            "",
            "vm1",
        ] {
            assert!(!is_script(value), "{value:?}");
        }
    }

    #[test]
    fn check_refuses_what_would_change_the_query() {
        assert_eq!(check("test-VM"), Ok("test-VM"));
        assert_eq!(
            check("/subscriptions/s/resourceGroups/rg_1/providers/x/y/z"),
            Ok("/subscriptions/s/resourceGroups/rg_1/providers/x/y/z")
        );
        assert_eq!(check(""), Err(Refusal::Empty));
        assert_eq!(check("   "), Err(Refusal::Empty));
        assert_eq!(check("a^NQactive=true"), Err(Refusal::Caret));
        assert_eq!(check("^"), Err(Refusal::Caret));
        assert_eq!(check("a\nb"), Err(Refusal::Control));
        assert_eq!(check("javascript:gs.sleep(3000)"), Err(Refusal::Script));
        assert_eq!(check(" JavaScript:1"), Err(Refusal::Script));
        assert!(Refusal::Script.to_string().contains("javascript:"));
        assert!(Refusal::Script.to_string().contains("never sent"));
        assert!(Refusal::Caret.to_string().contains('^'));
    }
}
