//! Tools for plugin authors: `warden new` and `warden embed-docs`.
//!
//! - [`new_plugin`] writes a Rust plugin that builds with `cargo build --release --target
//!   wasm32-wasip2` and runs under warden as is: `Cargo.toml` (depending on `warden-sdk` by
//!   path), `src/lib.rs`, `wit/world.wit` with a documented function, `wit/deps/warden-mcp`,
//!   a manifest and a README. The files are in `templates/rust/` at the root of the repository.
//! - [`embed_docs`] puts a plugin's WIT doc comments into its component, replacing any earlier
//!   copy, so that tools get their descriptions (see [`crate::schema::embed_wit_docs`] for why
//!   a component does not carry them). Every toolchain needs it: `wasm-component-ld`,
//!   componentize-py and componentize-js all drop WIT docs.
//!
//! Nothing here runs a plugin; both only read and write files.

mod embed;
mod template;

use std::path::PathBuf;

pub use embed::{embed_docs, remove_custom_sections};
pub use template::{NewPlugin, check_new_plugin_name, new_plugin};

/// The WIT source of `warden:mcp@0.1.0` that this binary was built with.
///
/// [`embed_docs`] loads it when a plugin's WIT has no `deps/` folder, and [`new_plugin`]
/// writes it to `wit/deps/warden-mcp/mcp.wit`.
pub const MCP_WIT: &str = include_str!("../../../wit/mcp.wit");

/// What went wrong while writing a plugin or embedding its docs.
#[derive(Debug, thiserror::Error)]
pub enum AuthoringError {
    /// The WIT files could not be read or resolved.
    #[error("cannot load the WIT in {path}")]
    Wit {
        /// The WIT directory given.
        path: PathBuf,
        /// The parser's error, with file, line and column.
        #[source]
        source: anyhow::Error,
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
    /// The `warden-sdk` crate the new plugin should depend on is not there.
    #[error(
        "no warden SDK at {}: pass --sdk PATH (the `sdk` folder of a warden checkout)",
        path.display()
    )]
    Sdk {
        /// Where it was looked for.
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
}
