//! [`esc`]: log fields that may carry alert- or peer-controlled text, with control characters
//! escaped, so that a crafted alert cannot forge log lines (a raw newline in a `%` field would
//! start what looks like a new log record).

use std::fmt::{self, Display, Write as _};

/// Wraps a value whose [`Display`] may contain text from the network.
pub(crate) fn esc<T: Display + ?Sized>(value: &T) -> Escaped<'_, T> {
    Escaped(value)
}

/// See [`esc`].
pub(crate) struct Escaped<'a, T: ?Sized>(&'a T);

impl<T: Display + ?Sized> Display for Escaped<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Escaper(f);
        write!(out, "{}", self.0)
    }
}

struct Escaper<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for Escaper<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c if c.is_control() => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn control_characters_are_escaped() {
        let forged = "vm1\n2026-01-01T00:00:00Z  INFO auth.token_verified\r\u{1b}[31m";
        let shown = esc(forged).to_string();
        assert!(!shown.contains('\n') && !shown.contains('\r') && !shown.contains('\u{1b}'));
        assert_eq!(
            shown,
            "vm1\\n2026-01-01T00:00:00Z  INFO auth.token_verified\\r\\u{1b}[31m"
        );
        assert_eq!(esc("plain é text").to_string(), "plain é text");
    }
}
