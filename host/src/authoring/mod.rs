//! Tools for plugin authors: `warden new`, `warden build` and `warden embed-docs`.
//!
//! - [`new_plugin`] writes a plugin in Rust, Python or JavaScript ([`Lang`]) that builds with
//!   `warden build` and runs under warden as is: the code, `wit/world.wit` with a documented
//!   function, `wit/deps/warden-mcp`, a manifest and a README. The files are in
//!   `templates/LANG/` at the root of the repository, compiled into the binary.
//! - [`build_plugin`] builds a plugin folder of any of the three languages into a component
//!   (cargo for Rust, componentize-py for Python, componentize-js for JavaScript; the last two
//!   are installed on first use under a cache directory, see [`toolchain`]), embeds its WIT
//!   docs, checks that warden can serve it, and only then replaces the previous component.
//! - [`embed_docs`] puts a plugin's WIT doc comments into its component, replacing any earlier
//!   copy, so that tools get their descriptions (see [`crate::schema::embed_wit_docs`] for why
//!   a component does not carry them). Every toolchain needs it: `wasm-component-ld`,
//!   componentize-py and componentize-js all drop WIT docs.
//!
//! Nothing here runs a plugin; `build_plugin` runs the plugin's toolchain.

mod build;
mod embed;
mod template;
pub mod toolchain;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use build::{BuildPlan, Built, build_plugin, detect_lang};
pub use embed::{embed_docs, remove_custom_sections};
pub use template::{NewPlugin, SDK_VERSION, check_new_plugin_name, new_plugin};

/// The WIT source of `warden:mcp@0.1.0` that this binary was built with.
///
/// [`embed_docs`] loads it when a plugin's WIT has no `deps/` folder, and [`new_plugin`]
/// writes it to `wit/deps/warden-mcp/mcp.wit`.
pub const MCP_WIT: &str = include_str!("../../../wit/mcp.wit");

/// The language of a plugin folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// A `cdylib` crate (`Cargo.toml`) built for `wasm32-wasip2` with cargo.
    Rust,
    /// An `app.py` built with componentize-py.
    Python,
    /// An `app.js` (ES module) built with componentize-js.
    Js,
}

impl Lang {
    /// Every language, in the order [`detect_lang`] looks for them.
    pub const ALL: [Lang; 3] = [Lang::Rust, Lang::Python, Lang::Js];

    /// The file whose presence makes a folder a plugin of this language.
    pub fn marker(self) -> &'static str {
        match self {
            Lang::Rust => "Cargo.toml",
            Lang::Python => "app.py",
            Lang::Js => "app.js",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        })
    }
}

impl FromStr for Lang {
    type Err = String;

    /// `rust`, `python` (or `py`), `js` (or `javascript`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rust" | "rs" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            other => Err(format!(
                "unknown language `{other}`: expected rust, python or js"
            )),
        }
    }
}

/// What went wrong while writing, building or documenting a plugin.
#[derive(Debug, thiserror::Error)]
pub enum AuthoringError {
    /// The WIT files could not be read or resolved.
    #[error("cannot load the WIT in {}", path.display())]
    Wit {
        /// The WIT directory given.
        path: PathBuf,
        /// The parser's error, with file, line and column.
        #[source]
        source: anyhow::Error,
    },
    /// The plugin's WIT package has no world to build.
    #[error(
        "no world to build in {}: name the plugin's world `plugin` (it includes \
         warden:mcp/tool@0.1.0 and exports the tools)",
        path.display()
    )]
    NoWorld {
        /// The WIT directory.
        path: PathBuf,
    },
    /// The bytes are not a component, or its docs could not be encoded.
    #[error(transparent)]
    Component(#[from] crate::schema::DescribeError),
    /// The component's sections could not be read.
    #[error("malformed WebAssembly binary")]
    Malformed(#[from] wasmparser::BinaryReaderError),
    /// The name given to `warden new` cannot name a plugin, a crate and a WIT package.
    #[error("invalid plugin name {name:?}: {reason}")]
    Name {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `warden new` never overwrites anything.
    #[error("{} already exists; choose another name or directory", path.display())]
    Exists {
        /// The file or directory that is in the way.
        path: PathBuf,
    },
    /// The `warden-sdk` crate given with `--sdk` is not there.
    #[error(
        "no warden SDK at {}: pass the `sdk` folder of a warden checkout (with Cargo.toml and \
         src/lib.rs), or leave --sdk out to use warden-sdk from crates.io",
        path.display()
    )]
    Sdk {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// `--sdk` was given for a plugin that is not written in Rust.
    #[error("--sdk is for Rust plugins; a {lang} plugin does not use warden-sdk")]
    SdkLang {
        /// The language asked for.
        lang: Lang,
    },
    /// `warden build` found no plugin in the folder.
    #[error(
        "{} is not a plugin folder: expected Cargo.toml (Rust), app.py (Python) or app.js \
         (JavaScript), and a wit/ folder (`warden new NAME --lang LANG` writes one)",
        path.display()
    )]
    NotAPlugin {
        /// The folder.
        path: PathBuf,
    },
    /// A program the build needs could not be started.
    #[error("cannot run `{program}`: {source}; {hint}")]
    Program {
        /// The program.
        program: String,
        /// Why it did not start (usually: not found).
        #[source]
        source: std::io::Error,
        /// What to install.
        hint: &'static str,
    },
    /// A step of the build or of a toolchain's installation failed; its output was shown.
    #[error("{step} failed ({status}){after}")]
    Step {
        /// What was run.
        step: String,
        /// How it ended.
        status: std::process::ExitStatus,
        /// What that means for the previous component, if anything.
        after: &'static str,
    },
    /// cargo built nothing that looks like the plugin's component.
    #[error(
        "cargo built no .wasm library in {}: the crate needs `[lib] crate-type = [\"cdylib\"]`",
        path.display()
    )]
    NoArtifact {
        /// The plugin folder.
        path: PathBuf,
    },
    /// A file could not be read or written.
    #[error("cannot write {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_carries_the_same_contract() {
        // warden-sdk is published on its own, so it holds a copy of wit/mcp.wit.
        assert_eq!(include_str!("../../../sdk/wit/mcp.wit"), MCP_WIT);
        // And of wit/sql/sql.wit, for plugins that import warden:sql.
        assert_eq!(
            include_str!("../../../sdk/wit/sql/sql.wit"),
            include_str!("../../../wit/sql/sql.wit")
        );
    }

    #[test]
    fn languages_parse_and_print() {
        for lang in Lang::ALL {
            assert_eq!(lang.to_string().parse::<Lang>(), Ok(lang));
        }
        assert!("go".parse::<Lang>().is_err());
    }
}
