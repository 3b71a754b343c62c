//! Where a manifest value lives, and what is wrong with it.
//!
//! Every problem found while loading a manifest is a [`Diagnostic`]; loading fails with a
//! [`ManifestError`] that holds all of them, in file order, so an operator fixes a manifest in
//! one pass instead of one error at a time.

use std::fmt;
use std::path::PathBuf;

/// A position in the manifest file, and the dotted key found there.
///
/// Lines and columns are 1-based; columns count Unicode scalar values, as editors do.
/// Displays as `file:line:column: key` (or `file:line:column` when `key` is empty), the
/// format that editors and terminals turn into links.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// The manifest file, as it was named to [`Manifest::load`](super::Manifest::load) or
    /// [`Manifest::parse`](super::Manifest::parse).
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number, in characters.
    pub column: usize,
    /// The dotted key at this position, such as `plugins.files.memory` or
    /// `plugins.files.dirs[0].host`. Segments that are not bare TOML keys are quoted. Empty when
    /// no key applies (a TOML syntax error before any key).
    pub key: String,
}

impl Location {
    /// A diagnostic that points at this location.
    ///
    /// For problems found after loading, such as two plugins whose tools end up with the same
    /// name: `plugin.location.diagnostic("tool name `x` is also used by ...")`.
    pub fn diagnostic(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(self.clone(), message)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        Ok(())
    }
}

/// One problem in a manifest.
///
/// Displays as `location: message`, or just `message` when there is no location (the file could
/// not be read, for instance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is, when it is somewhere in the file.
    pub location: Option<Location>,
    /// What is wrong, in one line, without the location.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic with an optional location.
    pub fn new(location: Option<Location>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            location,
            message: message.into(),
        }
    }

    /// A diagnostic at `location`.
    pub fn at(location: Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Some(location), message)
    }

    /// A diagnostic about the manifest as a whole, with no position.
    pub fn global(message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(None, message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Diagnostic {}

/// A manifest that cannot be used, with every problem that was found in it.
///
/// `errors` is never empty when returned by this module, and is sorted by position (problems
/// without a position first). Displays as one line per diagnostic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    /// The problems, in file order.
    pub errors: Vec<Diagnostic>,
}

impl ManifestError {
    /// An error made of `errors`, sorted by position (stable for equal positions).
    pub fn new(mut errors: Vec<Diagnostic>) -> ManifestError {
        errors.sort_by_key(|d| d.location.as_ref().map(|l| (l.line, l.column)));
        ManifestError { errors }
    }
}

impl From<Diagnostic> for ManifestError {
    fn from(diagnostic: Diagnostic) -> ManifestError {
        ManifestError {
            errors: vec![diagnostic],
        }
    }
}

impl From<Vec<Diagnostic>> for ManifestError {
    fn from(errors: Vec<Diagnostic>) -> ManifestError {
        ManifestError::new(errors)
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize, key: &str) -> Location {
        Location {
            file: "warden.toml".into(),
            line,
            column,
            key: key.into(),
        }
    }

    #[test]
    fn location_display_names_file_line_column_and_key() {
        assert_eq!(
            at(12, 10, "plugins.files.memory").to_string(),
            "warden.toml:12:10: plugins.files.memory"
        );
        assert_eq!(at(1, 1, "").to_string(), "warden.toml:1:1");
    }

    #[test]
    fn error_display_is_one_line_per_diagnostic_in_file_order() {
        let error = ManifestError::new(vec![
            at(12, 10, "plugins.files.memory").diagnostic("invalid size \"lots\""),
            Diagnostic::global("cannot read"),
            at(3, 1, "server.nam").diagnostic("unknown key"),
        ]);
        assert_eq!(
            error.to_string(),
            "cannot read\n\
             warden.toml:3:1: server.nam: unknown key\n\
             warden.toml:12:10: plugins.files.memory: invalid size \"lots\""
        );
    }
}
