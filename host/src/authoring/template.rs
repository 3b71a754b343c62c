//! `warden new`: a plugin in Rust, Python or JavaScript that builds and runs as is.

use std::path::{Component, Path, PathBuf};

use super::{AuthoringError, Lang, MCP_WIT};
use crate::manifest::prefixed_tool_name;
use crate::schema::json_name;

/// The longest name `warden new` accepts: a plugin name is at most 32 characters.
const MAX_NAME_LEN: usize = 32;

/// The version of `warden-sdk` a new Rust plugin depends on: the one released with this
/// warden (the workspace shares one version).
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// One file of a template: where it goes in the new plugin, and its text with `{{name}}`,
/// `{{crate}}`, `{{tool}}`, `{{sdk_version}}` and `{{sdk_patch}}` placeholders.
type File = (&'static str, &'static str);

/// The files every template shares.
const COMMON: &[File] = &[("wit/deps/warden-mcp/mcp.wit", MCP_WIT)];

/// `templates/rust/`.
const RUST: &[File] = &[
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
];

/// `templates/python/`.
const PYTHON: &[File] = &[
    (
        "app.py",
        include_str!("../../../templates/python/app.py.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../../templates/python/gitignore.tmpl"),
    ),
    (
        "README.md",
        include_str!("../../../templates/python/README.md.tmpl"),
    ),
    (
        "warden.toml",
        include_str!("../../../templates/python/warden.toml.tmpl"),
    ),
    (
        "wit/world.wit",
        include_str!("../../../templates/python/wit/world.wit.tmpl"),
    ),
];

/// `templates/js/`.
const JS: &[File] = &[
    ("app.js", include_str!("../../../templates/js/app.js.tmpl")),
    (
        ".gitignore",
        include_str!("../../../templates/js/gitignore.tmpl"),
    ),
    (
        "README.md",
        include_str!("../../../templates/js/README.md.tmpl"),
    ),
    (
        "warden.toml",
        include_str!("../../../templates/js/warden.toml.tmpl"),
    ),
    (
        "wit/world.wit",
        include_str!("../../../templates/js/wit/world.wit.tmpl"),
    ),
];

/// What `warden new` writes.
#[derive(Debug, Clone)]
pub struct NewPlugin {
    /// The plugin's name: crate, WIT package (`local:NAME`) and manifest entry. Checked by
    /// [`check_new_plugin_name`].
    pub name: String,
    /// The directory to create; it must not exist, or be empty.
    pub dir: PathBuf,
    /// The language of the plugin.
    pub lang: Lang,
    /// Rust only: a local `warden-sdk` (the `sdk` folder of a warden checkout) to build against
    /// instead of the published crate, written as a `[patch.crates-io]` entry with a relative
    /// path. `None`: the plugin depends on `warden-sdk` from crates.io, by version only.
    pub sdk: Option<PathBuf>,
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

/// Write a new plugin to `plan.dir`; returns the files written, in order.
///
/// The plugin has one documented tool (`hello`), carries `warden:mcp` in `wit/deps/`, and comes
/// with a `warden.toml` that serves what `warden build` writes (`target/NAME.wasm`) and a README
/// that says how to build, test and call it. A Rust plugin depends on `warden-sdk`
/// [`SDK_VERSION`] by version; with `plan.sdk`, a `[patch.crates-io]` entry points it at that
/// folder by a relative path (absolute only when no relative path exists). Nothing is
/// overwritten: a non-empty `plan.dir` is an error, checked before anything is written.
pub fn new_plugin(plan: &NewPlugin) -> Result<Vec<PathBuf>, AuthoringError> {
    check_new_plugin_name(&plan.name)?;
    let sdk = match (&plan.sdk, plan.lang) {
        (Some(sdk), Lang::Rust) => Some(
            std::fs::canonicalize(sdk)
                .ok()
                .filter(|sdk| sdk.join("Cargo.toml").is_file() && sdk.join("src/lib.rs").is_file())
                .ok_or_else(|| AuthoringError::Sdk { path: sdk.clone() })?,
        ),
        (Some(_), lang) => return Err(AuthoringError::SdkLang { lang }),
        (None, _) => None,
    };
    if std::fs::read_dir(&plan.dir).is_ok_and(|mut entries| entries.next().is_some())
        || plan.dir.is_file()
    {
        return Err(AuthoringError::Exists {
            path: plan.dir.clone(),
        });
    }
    std::fs::create_dir_all(&plan.dir).map_err(|source| AuthoringError::Io {
        path: plan.dir.clone(),
        source,
    })?;
    let sdk_patch = match sdk {
        Some(sdk) => {
            let dir = std::fs::canonicalize(&plan.dir).map_err(|source| AuthoringError::Io {
                path: plan.dir.clone(),
                source,
            })?;
            let path = relative_path(&dir, &sdk).unwrap_or(sdk);
            let path = toml::Value::String(path.display().to_string());
            format!(
                "\n# Development: build against a local warden-sdk instead of the published \
                 crate.\n# Remove this table to use crates.io.\n[patch.crates-io]\n\
                 warden-sdk = {{ path = {path} }}\n"
            )
        }
        None => String::new(),
    };
    let crate_name = plan.name.replace('-', "_");
    let tool = prefixed_tool_name(&plan.name, &json_name("hello"));
    let files = match plan.lang {
        Lang::Rust => RUST,
        Lang::Python => PYTHON,
        Lang::Js => JS,
    };
    let mut written = Vec::new();
    for (relative, template) in files.iter().chain(COMMON) {
        let text = template
            .replace("{{name}}", &plan.name)
            .replace("{{crate}}", &crate_name)
            .replace("{{tool}}", &tool)
            .replace("{{sdk_version}}", SDK_VERSION)
            .replace("{{sdk_patch}}", &sdk_patch);
        let path = plan.dir.join(relative);
        write(&path, &text)?;
        written.push(path);
    }
    Ok(written)
}

/// The path of `to` relative to the directory `from`, both absolute and free of `.` and `..`;
/// `None` when they share no root (another drive on Windows).
fn relative_path(from: &Path, to: &Path) -> Option<PathBuf> {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    if from.first() != to.first() {
        return None;
    }
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path: PathBuf = from[common..]
        .iter()
        .map(|_| Component::ParentDir)
        .collect();
    path.extend(&to[common..]);
    if path.as_os_str().is_empty() {
        path.push(".");
    }
    Some(path)
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
    fn relative_paths_climb_then_descend() {
        let rel = |from: &str, to: &str| relative_path(Path::new(from), Path::new(to));
        assert_eq!(
            rel("/tmp/x/plugin", "/work/warden/sdk"),
            Some(PathBuf::from("../../../work/warden/sdk"))
        );
        assert_eq!(
            rel("/work/warden/plugins/a", "/work/warden/sdk"),
            Some(PathBuf::from("../../sdk"))
        );
        assert_eq!(rel("/work/sdk", "/work/sdk"), Some(PathBuf::from(".")));
    }

    #[test]
    fn a_rust_plugin_depends_on_the_sdk_by_version_and_patches_it_by_a_relative_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plan = NewPlugin {
            name: "word-count".to_owned(),
            dir: dir.path().join("word-count"),
            lang: Lang::Rust,
            sdk: None,
        };
        let written = new_plugin(&plan).expect("new");
        assert_eq!(written.len(), RUST.len() + COMMON.len());
        let read = |plan: &NewPlugin, relative: &str| {
            std::fs::read_to_string(plan.dir.join(relative)).expect("written file")
        };
        let lib = read(&plan, "src/lib.rs");
        assert!(lib.contains("use exports::local::word_count::tools::Guest;"));
        assert!(lib.contains("world: \"local:word-count/plugin\""));
        let cargo: toml::Table = read(&plan, "Cargo.toml")
            .parse()
            .expect("Cargo.toml is TOML");
        assert_eq!(
            cargo["dependencies"]["warden-sdk"].as_str(),
            Some(SDK_VERSION)
        );
        assert!(!cargo.contains_key("patch"), "{cargo:?}");
        assert!(read(&plan, "warden.toml").contains("component = \"target/word-count.wasm\""));
        assert!(read(&plan, "README.md").contains("word-count__hello"));
        assert_eq!(read(&plan, "wit/deps/warden-mcp/mcp.wit"), MCP_WIT);
        assert!(!read(&plan, "wit/world.wit").contains("{{"));

        let again = new_plugin(&plan).expect_err("the directory is not empty");
        assert!(matches!(again, AuthoringError::Exists { .. }), "{again}");

        // With --sdk: a relative path in [patch.crates-io], never an absolute one.
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        let patched = NewPlugin {
            dir: dir.path().join("patched"),
            sdk: Some(sdk.clone()),
            ..plan.clone()
        };
        new_plugin(&patched).expect("new with --sdk");
        let cargo: toml::Table = read(&patched, "Cargo.toml")
            .parse()
            .expect("Cargo.toml is TOML");
        let path = cargo["patch"]["crates-io"]["warden-sdk"]["path"]
            .as_str()
            .expect("sdk path");
        assert!(Path::new(path).is_relative(), "{path}");
        assert!(
            patched.dir.join(path).join("Cargo.toml").is_file(),
            "{path}"
        );
        assert_eq!(
            cargo["dependencies"]["warden-sdk"].as_str(),
            Some(SDK_VERSION)
        );

        let missing = NewPlugin {
            dir: dir.path().join("other"),
            sdk: Some(dir.path().join("no-sdk")),
            ..plan.clone()
        };
        let error = new_plugin(&missing).expect_err("no sdk");
        assert!(matches!(error, AuthoringError::Sdk { .. }), "{error}");
        assert!(!missing.dir.exists());
    }

    #[test]
    fn python_and_js_plugins_get_their_own_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (lang, entry, files) in [(Lang::Python, "app.py", PYTHON), (Lang::Js, "app.js", JS)] {
            let plan = NewPlugin {
                name: "text-tool".to_owned(),
                dir: dir.path().join(lang.to_string()),
                lang,
                sdk: None,
            };
            let written = new_plugin(&plan).expect("new");
            assert_eq!(written.len(), files.len() + COMMON.len());
            let app = std::fs::read_to_string(plan.dir.join(entry)).expect(entry);
            assert!(app.contains("text-tool"), "{app}");
            assert!(!app.contains("{{"), "{app}");
            assert!(plan.dir.join("wit/world.wit").is_file());
            assert!(!plan.dir.join("Cargo.toml").exists());
            let error = new_plugin(&NewPlugin {
                dir: dir.path().join(format!("{lang}-sdk")),
                sdk: Some(dir.path().to_path_buf()),
                ..plan
            })
            .expect_err("--sdk is for Rust");
            assert!(matches!(error, AuthoringError::SdkLang { .. }), "{error}");
        }
    }
}
