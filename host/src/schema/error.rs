//! Errors of the JSON <-> value conversions.

/// A tool's JSON arguments do not match its parameter types.
///
/// Meant to be shown to the agent as is: `path` says where (`entries[3].size`), `message` says
/// what (`300 is out of range for u8`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", with_path(path, message))]
pub struct InputError {
    /// Where the bad value is: the argument's JSON name, then `.field`, `[index]`, `.ok`/`.err`,
    /// `.value` (variant payload), `.some` (inner option); empty for the arguments object itself.
    pub path: String,
    /// What is wrong, e.g. `expected integer, got string`.
    pub message: String,
}

impl InputError {
    pub(crate) fn new(path: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// A value a component returned does not match its declared type: a bug in the plugin (or in
/// the host's bindings), never the agent's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", with_path(path, message))]
pub struct OutputError {
    /// Where the bad value is, in the same notation as [`InputError::path`]; empty for the whole
    /// value.
    pub path: String,
    /// What is wrong, e.g. `expected u8, got string`.
    pub message: String,
}

impl OutputError {
    pub(crate) fn new(path: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// `{path}: {message}`, or just the message at the top level.
fn with_path(path: &str, message: &str) -> String {
    if path.is_empty() {
        message.to_owned()
    } else {
        format!("{path}: {message}")
    }
}

/// The path of a member of the value at `path`.
pub(crate) fn field_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// The path of an element of the array at `path`.
pub(crate) fn index_path(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}
