//! The crate's error type.

/// Why a payload could not be turned into an [`Alert`](crate::Alert).
///
/// Every variant names the JSON path of the failure (see [`SchemaError::path`]); the root
/// is `"."`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The bytes are not well-formed JSON (truncated, trailing data, nested too deeply).
    #[error("malformed JSON at `{path}` (line {line}, column {column}): {message}")]
    Syntax {
        /// JSON path reached when the error occurred.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A member has the wrong type or an invalid value.
    #[error("invalid value at `{path}`: {message}")]
    InvalidValue {
        /// JSON path of the member.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A required member is absent.
    #[error("missing required field `{path}`")]
    MissingField {
        /// JSON path of the missing member.
        path: String,
    },
    /// The body exceeds [`MAX_PAYLOAD_BYTES`](crate::MAX_PAYLOAD_BYTES).
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Body size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
}

impl SchemaError {
    /// The JSON path of the failure, such as `data.essentials.monitorCondition`
    /// (`"."` for the whole document).
    pub fn path(&self) -> &str {
        match self {
            Self::Syntax { path, .. }
            | Self::InvalidValue { path, .. }
            | Self::MissingField { path } => path,
            Self::TooLarge { .. } => ".",
        }
    }

    pub(crate) fn missing(path: &str) -> Self {
        Self::MissingField {
            path: path.to_owned(),
        }
    }

    /// Converts a path-tracked serde_json error, trimming serde_json's position suffix from
    /// the message (the position is kept in `line`/`column`).
    pub(crate) fn from_tracked(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = err.path().to_string();
        let inner = err.into_inner();
        Self::from_json(path, &inner)
    }

    pub(crate) fn from_json(path: String, inner: &serde_json::Error) -> Self {
        let full = inner.to_string();
        let message = match full.rfind(" at line ") {
            Some(idx) if inner.line() > 0 => full.get(..idx).unwrap_or(&full).to_owned(),
            _ => full,
        };
        if inner.is_data() {
            // serde reports a missing member as a data error; name it in the path.
            if let Some(field) = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'))
            {
                let path = if path == "." {
                    field.to_owned()
                } else {
                    format!("{path}.{field}")
                };
                return Self::MissingField { path };
            }
            Self::InvalidValue { path, message }
        } else {
            Self::Syntax {
                path,
                line: inner.line(),
                column: inner.column(),
                message,
            }
        }
    }
}
