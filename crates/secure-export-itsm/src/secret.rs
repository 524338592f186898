//! The [`Secret`] newtype.

use std::fmt;

/// A secret string (password, client secret, token) that never prints itself.
///
/// `Debug` prints `Secret([redacted])`; there is no `Display` and no `Serialize`. Read the value
/// only where it is sent, through [`expose_secret`](Self::expose_secret). The bytes are
/// overwritten with zeros when the value is dropped (best effort: copies made by the allocator
/// when a string grows, or by code that read the secret, are not reached).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret value.
    ///
    /// # Security
    /// Do not log or format the returned string; pass it straight to the request that needs it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.iter_mut().for_each(|b| *b = 0);
        // Keep the zeroing from being optimised away as a dead store.
        std::hint::black_box(&bytes);
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
        assert_eq!(s.expose_secret(), "hunter2");
        assert!(!s.is_empty() && Secret::new("").is_empty());
        assert_eq!(Secret::from("a"), Secret::from("a".to_owned()));
    }
}
