//! `warden new`: a Rust plugin that builds and runs as is.

use std::path::{Path, PathBuf};

use super::{AuthoringError, MCP_WIT};
use crate::manifest::prefixed_tool_name;
use crate::schema::json_name;

/// The longest name `warden new` accepts: a plugin name is at most 32 characters.
const MAX_NAME_LEN: usize = 32;

/// The template's files: where each goes in the new plugin, and its text with `{{name}}`,
/// `{{crate}}`, `{{sdk}}` and `{{tool}}` placeholders.
const FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../templates/rust/Cargo.toml.tmpl"),
    ),
    (
        "rust-toolchain.toml",
        include_str!("../../../templates/rust/rust-toolchain.toml.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../../templates/rust/gitignore.tmpl"),
    ),
    (
        "README.md",
        include_str!("../../../templates/rust/README.md.tmpl"),
    ),
    (
        "warden.toml",
        include_str!("../../../templates/rust/warden.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../templates/rust/src/lib.rs.tmpl"),
    ),
    (
        "wit/world.wit",
        include_str!("../../../templates/rust/wit/world.wit.tmpl"),
    ),
    ("wit/deps/warden-mcp/mcp.wit", MCP_WIT),
];

/// What `warden new` writes.
#[derive(Debug, Clone)]
pub struct NewPlugin {
    /// The plugin's name: crate, WIT package (`local:NAME`) and manifest entry. Checked by
    /// [`check_new_plugin_name`].
    pub name: String,
    /// The directory to create; it must not exist, or be empty.
    pub dir: PathBuf,
    /// The `sdk` folder of a warden checkout, which the plugin depends on by path.
    pub sdk: PathBuf,
}

/// Checks that `name` can name a plugin, a Rust crate and a WIT package at once: lowercase
/// words of letters and digits, each starting with a letter, joined by `-` (`word-count`),
/// at most 32 characters.
pub fn check_new_plugin_name(name: &str) -> Result<(), AuthoringError> {
    let reason = if name.is_empty() {
        Some("it is empty".to_owned())
    } else if name.len() > MAX_NAME_LEN {
        Some(format!("it is longer than {MAX_NAME_LEN} characters"))
    } else if !name.split('-').all(|word| {
        word.starts_with(|c: char| c.is_ascii_lowercase())
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    }) {
        Some(
            "expected lowercase words of letters and digits, each starting with a letter, \
             joined by `-` (such as `word-count`)"
                .to_owned(),
        )
    } else {
        None
    };
    match reason {
        Some(reason) => Err(AuthoringError::Name {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Write a new Rust plugin to `plan.dir`; returns the files written, in order.
///
/// The plugin has one documented tool (`hello`), depends on `warden-sdk` at `plan.sdk` (made
/// absolute), carries `warden:mcp` in `wit/deps/`, and comes with a `warden.toml` that serves
/// it and a README that says how to build, test and call it. Nothing is overwritten: a
/// non-empty `plan.dir` is an error.
pub fn new_plugin(plan: &NewPlugin) -> Result<Vec<PathBuf>, AuthoringError> {
    check_new_plugin_name(&plan.name)?;
    let sdk = std::path::absolute(&plan.sdk)
        .ok()
        .filter(|sdk| sdk.join("Cargo.toml").is_file() && sdk.join("src/lib.rs").is_file())
        .ok_or_else(|| AuthoringError::Sdk {
            path: plan.sdk.clone(),
        })?;
    let sdk = std::fs::canonicalize(&sdk).unwrap_or(sdk);
    if std::fs::read_dir(&plan.dir).is_ok_and(|mut entries| entries.next().is_some())
        || plan.dir.is_file()
    {
        return Err(AuthoringError::Exists {
            path: plan.dir.clone(),
        });
    }
    let crate_name = plan.name.replace('-', "_");
    let tool = prefixed_tool_name(&plan.name, &json_name("hello"));
    let sdk_toml = toml::Value::String(sdk.display().to_string()).to_string();
    let mut written = Vec::new();
    for (relative, template) in FILES {
        let text = template
            .replace("{{name}}", &plan.name)
            .replace("{{crate}}", &crate_name)
            .replace("{{tool}}", &tool)
            .replace("{{sdk}}", &sdk_toml);
        let path = plan.dir.join(relative);
        write(&path, &text)?;
        written.push(path);
    }
    Ok(written)
}

fn write(path: &Path, text: &str) -> Result<(), AuthoringError> {
    let io = |source| AuthoringError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_a_crate_a_wit_package_and_a_plugin() {
        for good in ["hello", "word-count", "csv2json", "a"] {
            assert!(check_new_plugin_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Hello",
            "word_count",
            "2fast",
            "word--count",
            "word-",
            "-word",
            "word-2x",
            "naïve",
            &"x".repeat(33),
        ] {
            assert!(check_new_plugin_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn writes_every_file_and_never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        let plan = NewPlugin {
            name: "word-count".to_owned(),
            dir: dir.path().join("word-count"),
            sdk,
        };
        let written = new_plugin(&plan).expect("new");
        assert_eq!(written.len(), FILES.len());
        let read = |relative: &str| {
            std::fs::read_to_string(plan.dir.join(relative)).expect("written file")
        };
        let lib = read("src/lib.rs");
        assert!(lib.contains("use exports::local::word_count::tools::Guest;"));
        assert!(lib.contains("world: \"local:word-count/plugin\""));
        let cargo: toml::Table = read("Cargo.toml").parse().expect("Cargo.toml is TOML");
        let sdk_path = cargo["dependencies"]["warden-sdk"]["path"]
            .as_str()
            .expect("sdk path");
        assert!(
            Path::new(sdk_path).join("Cargo.toml").is_file(),
            "{sdk_path}"
        );
        assert!(read("warden.toml").contains("release/word_count.wasm"));
        assert!(read("README.md").contains("word-count__hello"));
        assert_eq!(read("wit/deps/warden-mcp/mcp.wit"), MCP_WIT);
        assert!(!read("wit/world.wit").contains("{{"));

        let again = new_plugin(&plan).expect_err("the directory is not empty");
        assert!(matches!(again, AuthoringError::Exists { .. }), "{again}");

        let missing = NewPlugin {
            dir: dir.path().join("other"),
            sdk: dir.path().join("no-sdk"),
            ..plan
        };
        let error = new_plugin(&missing).expect_err("no sdk");
        assert!(matches!(error, AuthoringError::Sdk { .. }), "{error}");
        assert!(!missing.dir.exists());
    }
}
