//! The validated manifest: what the rest of warden reads.
//!
//! Values here have passed every check of the loader: names have their documented shape, paths
//! are absolute and existed at load time, limits are within their ranges. They are plain data
//! with public fields, so tests elsewhere can build them directly.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use super::error::Location;

/// The `[server]` table: how warden presents itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// The server name reported to MCP clients (`serverInfo.name`). Default `"warden"`.
    pub name: String,
    /// The principal that stdio sessions run as. Default `"local"`.
    pub principal: String,
}

impl Server {
    /// The default server name.
    pub const DEFAULT_NAME: &str = "warden";
    /// The default stdio principal.
    pub const DEFAULT_PRINCIPAL: &str = "local";
}

impl Default for Server {
    fn default() -> Server {
        Server {
            name: Server::DEFAULT_NAME.to_owned(),
            principal: Server::DEFAULT_PRINCIPAL.to_owned(),
        }
    }
}

/// One `[plugins.NAME]` table: a component and everything it is granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plugin {
    /// The plugin's name, the key of its table: `[a-z][a-z0-9_-]{0,31}`.
    pub name: String,
    /// The component file: absolute and canonical (symlinks resolved). It was a regular file
    /// when the manifest was loaded.
    pub component: PathBuf,
    /// The pinned SHA-256 digest of the component file, if any: loading anything else must fail.
    pub sha256: Option<[u8; 32]>,
    /// Resource limits for each call.
    pub limits: Limits,
    /// Tool name prefix: tools are named `{prefix}__{function}`, or `{function}` when empty.
    /// Defaults to the plugin name. `[A-Za-z0-9_-]{0,61}`.
    pub prefix: String,
    /// Directories the plugin may see, in file order. Guest paths are unique.
    pub dirs: Vec<DirGrant>,
    /// Environment variables the plugin sees, in file order, after `${VAR}` expansion. Names are
    /// `[A-Za-z_][A-Za-z0-9_]*` and unique.
    pub env: Vec<(String, String)>,
    /// Per-function settings, in file order, one per function.
    pub tools: Vec<ToolOverride>,
    /// The `[plugins.NAME]` header, or the first key that defines the plugin.
    pub location: Location,
    /// The location of each key present in the plugin's table (`"component"`, `"sha256"`,
    /// `"memory"`, ...), for problems found after loading. See [`Plugin::location_of`].
    pub key_locations: BTreeMap<String, Location>,
}

impl Plugin {
    /// Where `key` of this plugin's table is set, or the plugin's own location when it is not
    /// set (its default applies).
    ///
    /// For example, a component that fails to compile is reported at `location_of("component")`,
    /// a digest mismatch at `location_of("sha256")`.
    pub fn location_of(&self, key: &str) -> &Location {
        self.key_locations.get(key).unwrap_or(&self.location)
    }

    /// The settings for WIT function `function`, if the manifest has any.
    pub fn tool_override(&self, function: &str) -> Option<&ToolOverride> {
        self.tools.iter().find(|tool| tool.function == function)
    }
}

/// Resource limits for one call of a plugin's tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Fuel (wasmtime's instruction budget) per call; greater than 0.
    pub fuel: u64,
    /// Linear memory ceiling per call, in bytes; within [`Limits::MEMORY_RANGE`].
    pub memory: u64,
    /// Wall-clock deadline per call; greater than zero and at most [`Limits::MAX_TIMEOUT`].
    pub timeout: Duration,
    /// Largest tool output, in bytes, before the gate refuses it; within
    /// [`Limits::MAX_OUTPUT_RANGE`].
    pub max_output: u64,
}

impl Limits {
    /// Default fuel per call.
    pub const DEFAULT_FUEL: u64 = 1_000_000_000;
    /// Default memory ceiling: 64MiB.
    pub const DEFAULT_MEMORY: u64 = 64 << 20;
    /// Default timeout: 10s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default output cap: 1MiB.
    pub const DEFAULT_MAX_OUTPUT: u64 = 1 << 20;
    /// Accepted memory ceilings: 1MiB to 4GiB (the wasm32 address space).
    pub const MEMORY_RANGE: RangeInclusive<u64> = (1 << 20)..=(4 << 30);
    /// Longest accepted timeout: 1h.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
    /// Accepted output caps: 1KiB to 64MiB.
    pub const MAX_OUTPUT_RANGE: RangeInclusive<u64> = (1 << 10)..=(64 << 20);
}

impl Default for Limits {
    /// `fuel = 1_000_000_000`, `memory = "64MiB"`, `timeout = "10s"`, `max_output = "1MiB"`.
    fn default() -> Limits {
        Limits {
            fuel: Limits::DEFAULT_FUEL,
            memory: Limits::DEFAULT_MEMORY,
            timeout: Limits::DEFAULT_TIMEOUT,
            max_output: Limits::DEFAULT_MAX_OUTPUT,
        }
    }
}

/// A host directory made visible to a plugin (a WASI preopen).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    /// The host directory: absolute and canonical. It was a directory when the manifest was
    /// loaded.
    pub host: PathBuf,
    /// Where the plugin sees it: an absolute guest path, normalized (no `.` or `..` segments,
    /// no repeated or trailing `/`).
    pub guest: String,
    /// Whether the plugin may write.
    pub mode: DirMode,
    /// The grant's entry in the `dirs` array.
    pub location: Location,
}

/// Access a plugin has to a granted directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DirMode {
    /// `"ro"`: read files and list directories (the default).
    #[default]
    ReadOnly,
    /// `"rw"`: also create, write, rename and remove.
    ReadWrite,
}

impl DirMode {
    /// Whether the plugin may modify the directory.
    pub fn is_writable(self) -> bool {
        self == DirMode::ReadWrite
    }

    /// The manifest spelling: `"ro"` or `"rw"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DirMode::ReadOnly => "ro",
            DirMode::ReadWrite => "rw",
        }
    }
}

impl fmt::Display for DirMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `[plugins.NAME.tools.FUNCTION]` table: settings for one WIT function.
///
/// Whether `function` exists in the component is checked when the component is loaded, not
/// here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolOverride {
    /// The WIT function name, in kebab-case (`read-text`).
    pub function: String,
    /// The exact tool name, replacing `{prefix}__{function}`: `[A-Za-z0-9_-]{1,64}`, unique
    /// among overrides of the whole manifest.
    pub name: Option<String>,
    /// A description replacing the WIT doc comment.
    pub description: Option<String>,
    /// The table's `[header]` or key.
    pub location: Location,
}
