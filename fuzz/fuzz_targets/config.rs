//! Fuzzes `Config::from_toml_str_with_env` (the receiver's TOML configuration: syntax, typed
//! decoding with key paths, and validation) on arbitrary text (invalid UTF-8 replaced), with an
//! environment in which every `*_env` variable is unset, and again with one in which each is
//! set (to a value derived from its name), so the secret-reading branches run too.
//!
//! Invariants: no panic; an `Invalid` error names a non-empty key, and every error displays.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secure_export::config::{Config, ConfigError};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check(Config::from_toml_str_with_env(&text, |_| None));
    check(Config::from_toml_str_with_env(&text, |name| {
        // Names the tests use: short, sometimes a URL or a number.
        Some(match name.len() % 3 {
            0 => format!("secret-{name}"),
            1 => "postgres://u:p@127.0.0.1:5432/db".to_owned(),
            _ => String::new(),
        })
    }));
});

fn check(result: Result<Config, ConfigError>) {
    match result {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(err) => {
            let shown = err.to_string();
            assert!(!shown.is_empty(), "an error with no text: {err:?}");
            if let ConfigError::Invalid { key, .. } = &err {
                assert!(
                    !key.is_empty(),
                    "an Invalid error with an empty key: {err:?}"
                );
                assert_eq!(err.key(), Some(key.as_str()));
            }
        }
    }
}
