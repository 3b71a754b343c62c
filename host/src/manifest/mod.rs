//! The operator's manifest (`warden.toml`): types, loading, and validation with precise errors.
//!
//! [`Manifest::load`] reads, parses and validates a manifest in one step. A manifest that loads
//! is ready to use: names have their documented shapes, limits are in range, `${VAR}` references
//! are expanded, and every path is resolved against the manifest's directory and existed at load
//! time. A manifest that does not load yields a [`ManifestError`] listing every problem found,
//! each with file, line, column and dotted key:
//!
//! ```text
//! warden.toml:12:10: plugins.files.memory: invalid size "lots": expected a number of bytes such as 65536 or "64MiB"
//! ```
//!
//! Unknown keys are errors, so typos are caught instead of silently ignored. The reference for
//! operators is `docs/MANIFEST.md`.
//!
//! Module layout: `model` holds the validated types, `reader` walks the spanned TOML tree,
//! `validate` and `plugin` read the sections, `units` sizes and durations, `expand` `${VAR}`,
//! `names` the shapes of names, `error` locations and diagnostics, `network` a plugin's
//! `allow_hosts`, `[plugins.NAME.net]` and `secrets` (with their types), `http` the `[http]`
//! transport settings and `[auth]` credentials.

mod approval;
mod error;
mod expand;
mod http;
mod icons;
mod kv;
mod metrics;
mod model;
mod names;
mod network;
mod oci;
mod plugin;
mod policy;
mod protect;
mod reader;
mod shared;
mod ship;
mod sql;
mod tasks;
mod tracing;
mod units;
mod validate;
mod verify;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use toml::de::DeTable;

pub use approval::{Approval, ApprovalSettings, DataLabel, FlowRule};
pub use error::{Diagnostic, Location, ManifestError};
pub use icons::{Icon, MAX_DATA as MAX_ICON_DATA, MAX_ICONS};
pub use kv::{KvBackend, KvGrant, KvSettings};
pub use metrics::MetricsSettings;
pub use model::{
    Acknowledgement, ApiKey, Audit, AuditKey, Auth, BUILTIN_DETECTORS, CacheKey, CustomDetector,
    DETECTOR_GROUPS, DirGrant, DirMode, Filters, GlobalLimits, Http, JwksSource, Limits, LockMode,
    OAuth, OutputOverflow, Plugin, PluginPolicy, REVIEW_RULES, Rate, ReviewMode, SECRETS_DETECTOR,
    Server, TextReview, Tls, ToolHints, ToolOverride, WARNING_CODES, WriteQuota, glob_matches,
    is_glob,
};
pub use model::{MIN_SECRET_LEN, review_rule};
pub use names::{
    MAX_TOOL_NAME_LEN, TOOL_NAME_SEPARATOR, check_principal, check_roles, is_secret_key,
    is_valid_tool_name, prefixed_tool_name,
};
pub use network::{NetLimits, Secret, SecretSource, SecretValue};
pub use oci::OciRef;
pub use shared::{LimitStore, StoreFailure};
pub use ship::{Ship, ShipSink, SyslogFormat, SyslogTransport};
pub use sql::{SqlDatabase, SqlGrant, SqlMode};
pub use tasks::{TaskMode, TaskSettings, TaskStoreKind, ToolTask};
pub use tracing::TracingSettings;
pub use units::{ByteSize, DurationError, SizeError, format_duration, parse_duration, parse_size};
pub use verify::{BUNDLE_SUFFIX, SignerPolicy, Verify};

pub use reader::edit_distance;
use reader::{Context, key_at};

/// A loaded, validated manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The manifest file, as given to [`Manifest::load`] or [`Manifest::parse`]. Locations in
    /// diagnostics name this path.
    pub path: PathBuf,
    /// The manifest's directory, absolute (canonical when it exists): relative paths in the
    /// manifest are resolved against it.
    pub dir: PathBuf,
    /// `[server]`.
    pub server: Server,
    /// Where compiled components are cached: `[cache] dir` resolved against [`Manifest::dir`], or
    /// by default `$XDG_CACHE_HOME/warden`, `$HOME/.cache/warden`, or `.warden-cache` beside the
    /// manifest (the first whose variables are set). It need not exist yet.
    pub cache_dir: PathBuf,
    /// How cache entries are authenticated: `[cache] key` (a secret shared by replicas) or a
    /// key file, by default `DIR.key` beside the cache directory, created 0600 when missing.
    pub cache_key: CacheKey,
    /// `[cache] baseline` (default `true`): on a cache miss, `warden serve` first builds the
    /// plugin with the baseline compiler (Winch, seconds faster) so its tools run at once, and
    /// swaps in the Cranelift build (the one cached) when it is ready.
    pub cache_baseline: bool,
    /// `[plugins.NAME]` tables, in file order.
    pub plugins: Vec<Plugin>,
    /// `[limits]`: argument caps and the global per-tool rate ceiling.
    pub limits: GlobalLimits,
    /// `[limits] store`: where replicas count rates and concurrency together; `None`: each
    /// process counts alone.
    pub limit_store: Option<LimitStore>,
    /// `[filters]`: what is redacted from tool output.
    pub filters: Filters,
    /// `[audit]`: the audit log, if configured.
    pub audit: Option<Audit>,
    /// `[http]`: the Streamable HTTP transport's settings (defaults when absent).
    pub http: Http,
    /// `[auth]`: credentials accepted over HTTP (none when absent).
    pub auth: Auth,
    /// `[kv]`: where plugins' key-value stores live (defaults when absent).
    pub kv: KvSettings,
    /// `[approval]`: how the gate asks a human (defaults when absent).
    pub approval: ApprovalSettings,
    /// `[tasks]`: where task state lives and how much of it (defaults when absent).
    pub tasks: TaskSettings,
    /// `[metrics]`: Prometheus metrics, when the section is present.
    pub metrics: Option<MetricsSettings>,
    /// `[tracing]`: OpenTelemetry traces (off when absent).
    pub tracing: Option<TracingSettings>,
}

impl Manifest {
    /// Reads, parses and validates the manifest at `path`, expanding `${VAR}` from the process
    /// environment.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        Manifest::load_with_env(path, &process_env)
    }

    /// Like [`Manifest::load`], reading variables with `env` (`None` means unset).
    pub fn load_with_env(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let reason = match e.kind() {
                std::io::ErrorKind::InvalidData => "it is not valid UTF-8".to_owned(),
                _ => e.to_string(),
            };
            Diagnostic::global(format!("cannot read manifest {}: {reason}", path.display()))
        })?;
        Manifest::parse_with_env(&text, path, env)
    }

    /// Parses and validates manifest `text`, expanding `${VAR}` from the process environment.
    ///
    /// `path` names the file in diagnostics, and its directory is the base for relative paths;
    /// the file itself is not read. Paths in the manifest are checked on the file system.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        Manifest::parse_with_env(text, path, &process_env)
    }

    /// Like [`Manifest::parse`], reading variables with `env` (`None` means unset). The
    /// environment also supplies `XDG_CACHE_HOME` and `HOME` for the default cache directory.
    pub fn parse_with_env(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Manifest, ManifestError> {
        let cx = Context::new(path, text, env);
        let (doc, syntax_errors) = DeTable::parse_recoverable(text);
        if !syntax_errors.is_empty() {
            // A partial tree would only add confusing follow-up errors: report syntax alone.
            for error in syntax_errors {
                let span = error.span().unwrap_or(text.len()..text.len());
                let key = key_at(&cx, doc.get_ref(), span.start);
                let mut message = format!("invalid TOML: {}", error.message());
                if error.message() == "duplicate key"
                    && let Some(name) = text.get(span.clone()).filter(|name| !name.is_empty())
                {
                    message = format!("{message} `{name}`");
                }
                cx.error(span.start, &key, message);
            }
            return Err(ManifestError::new(cx.into_diagnostics()));
        }
        let manifest = validate::manifest(&cx, &doc, path, manifest_dir(path));
        if cx.has_errors() {
            Err(ManifestError::new(cx.into_diagnostics()))
        } else {
            Ok(manifest)
        }
    }

    /// The plugin named `name`.
    pub fn plugin(&self, name: &str) -> Option<&Plugin> {
        self.plugins.iter().find(|plugin| plugin.name == name)
    }
}

/// The process environment; values that are not valid Unicode count as unset.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The directory of the manifest at `path`: canonical when it exists, else absolute with `.`
/// segments removed.
fn manifest_dir(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::canonicalize(dir).unwrap_or_else(|_| {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        dir.components().collect()
    })
}
