//! The top of the manifest: its sections, `[server]`, `[cache]`, and path resolution.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::DeTable;

use super::Manifest;
use super::model::{CacheKey, LockMode, Server};
use super::network::SecretValue;
use super::plugin::plugin;
use super::policy;
use super::reader::{Context, Table, Value};

/// Builds the manifest from a syntactically valid document, recording every problem in `cx`.
///
/// The result is meaningful only when `cx` has no errors afterwards; parts that failed hold
/// defaults or are left out.
pub(super) fn manifest(
    cx: &Context<'_>,
    doc: &Spanned<DeTable<'_>>,
    path: &Path,
    dir: PathBuf,
) -> Manifest {
    let root = Table::root(cx, doc);
    let server = root
        .get("server")
        .and_then(|v| v.table())
        .map(|table| server(&table))
        .unwrap_or_default();
    let (cache_dir, cache_key, cache_baseline) = match root.get("cache").and_then(|v| v.table()) {
        Some(table) => cache(cx, &table, &dir),
        None => {
            let cache_dir = default_cache_dir(cx, &dir);
            let key = CacheKey::File(default_key_file(&cache_dir));
            (cache_dir, key, true)
        }
    };
    let plugins = match root.get("plugins").and_then(|v| v.table()) {
        Some(table) => plugins(&table, &dir),
        None => Vec::new(),
    };
    let (limits, limit_store) = root
        .get("limits")
        .and_then(|v| v.table())
        .map(|table| policy::limits(&table))
        .unwrap_or_default();
    let filters = root
        .get("filters")
        .and_then(|v| v.table())
        .map(|table| policy::filters(&table))
        .unwrap_or_default();
    policy::check_redact(cx, &plugins, &filters);
    let audit = root
        .get("audit")
        .and_then(|v| v.table())
        .and_then(|table| policy::audit(&table, &dir));
    let http = root
        .get("http")
        .and_then(|v| v.table())
        .map(|table| super::http::http(&table, &dir))
        .unwrap_or_default();
    let auth = root
        .get("auth")
        .and_then(|v| v.table())
        .map(|table| super::http::auth(cx, &table, &dir, http.public_url.as_deref()))
        .unwrap_or_default();
    let kv = root
        .get("kv")
        .and_then(|v| v.table())
        .map(|table| super::kv::settings(&table, &dir))
        .unwrap_or_else(|| super::kv::KvSettings::default_for(&dir));
    let approval = root
        .get("approval")
        .and_then(|v| Some((v.table()?, v.location())))
        .map(|(table, location)| super::approval::settings(&table, location))
        .unwrap_or_default();
    let tasks = root
        .get("tasks")
        .and_then(|v| v.table())
        .map(|table| super::tasks::settings(&table))
        .unwrap_or_default();
    let metrics = root
        .get("metrics")
        .and_then(|v| v.table())
        .and_then(|table| super::metrics::settings(&table));
    let tracing = root
        .get("tracing")
        .and_then(|v| v.table())
        .map(|table| super::tracing::settings(&table));
    root.finish();
    let manifest = Manifest {
        path: path.to_path_buf(),
        dir,
        server,
        cache_dir,
        cache_key,
        cache_baseline,
        plugins,
        limits,
        limit_store,
        filters,
        audit,
        http,
        auth,
        kv,
        approval,
        tasks,
        metrics,
        tracing,
    };
    require_signatures(cx, &manifest.server, &manifest.plugins);
    super::protect::check_grants(cx, &manifest);
    manifest
}

/// `[server]`.
fn server(table: &Table<'_, '_>) -> Server {
    let defaults = Server::default();
    let name = table
        .get("name")
        .and_then(|v| label(&v))
        .unwrap_or(defaults.name);
    let principal = table
        .get("principal")
        .and_then(|v| label(&v))
        .unwrap_or(defaults.principal);
    let roles = policy::server_roles(table);
    let instructions = table
        .get("instructions")
        .and_then(|v| instructions(&v))
        .unwrap_or(defaults.instructions);
    let lock = table.get("lock").and_then(|v| lock_mode(&v));
    let review = table
        .get("review")
        .and_then(|v| review_mode(&v))
        .unwrap_or_default();
    let signatures_required = table
        .get("signatures")
        .and_then(|v| signatures(&v))
        .unwrap_or_default();
    let page_size = table
        .get("page_size")
        .and_then(|v| policy::int_in(&v, "page_size", Server::PAGE_SIZE_RANGE))
        .unwrap_or(defaults.page_size);
    table.finish();
    Server {
        name,
        principal,
        roles,
        instructions,
        lock,
        review,
        signatures_required,
        page_size,
    }
}

/// `[server] signatures = "optional" | "required"`: whether every plugin needs `verify`.
fn signatures(value: &Value<'_, '_>) -> Option<bool> {
    match value.string()?.as_str() {
        "optional" => Some(false),
        "required" => Some(true),
        other => {
            value.error(format!(
                "unknown signatures setting {other:?}: expected \"optional\" or \"required\""
            ));
            None
        }
    }
}

/// Under `[server] signatures = "required"`, a plugin without `verify` is an error at its table.
fn require_signatures(cx: &Context<'_>, server: &Server, plugins: &[super::model::Plugin]) {
    if !server.signatures_required {
        return;
    }
    for plugin in plugins.iter().filter(|p| p.verify.is_none()) {
        cx.push(plugin.location.diagnostic(format!(
            "plugin `{}` has no `verify` policy, and [server] signatures = \"required\": add `verify = {{ key = \"cosign.pub\" }}` (or a keyless identity)",
            plugin.name
        )));
    }
}

/// `[server] lock`: `"enforce"`, `"warn"` or `"off"`.
fn lock_mode(value: &Value<'_, '_>) -> Option<LockMode> {
    let s = value.string()?;
    match s.as_str() {
        "enforce" => Some(LockMode::Enforce),
        "warn" => Some(LockMode::Warn),
        "off" => Some(LockMode::Off),
        _ => {
            value.error(format!(
                "invalid lock {s:?}: expected \"enforce\", \"warn\" or \"off\""
            ));
            None
        }
    }
}

/// `[server] review = "warn" | "refuse"`.
fn review_mode(value: &Value<'_, '_>) -> Option<super::model::ReviewMode> {
    use super::model::ReviewMode;
    match value.string()?.as_str() {
        "warn" => Some(ReviewMode::Warn),
        "refuse" => Some(ReviewMode::Refuse),
        other => {
            value.error(format!(
                "unknown review mode {other:?}: expected \"warn\" or \"refuse\""
            ));
            None
        }
    }
}

/// `[server] instructions`: text for clients and models, lines allowed, no other control
/// characters, at most [`Server::MAX_INSTRUCTIONS`] bytes.
fn instructions(value: &Value<'_, '_>) -> Option<String> {
    let s = value.string()?;
    if s.len() > Server::MAX_INSTRUCTIONS {
        value.error(format!(
            "is {} bytes; at most {} are allowed",
            s.len(),
            Server::MAX_INSTRUCTIONS
        ));
        None
    } else if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        value.error("contains a control character other than a newline or a tab");
        None
    } else {
        Some(s.to_owned())
    }
}

/// A short human-facing name: not empty, no control characters.
fn label(value: &Value<'_, '_>) -> Option<String> {
    let s = value.string()?;
    if s.trim().is_empty() {
        value.error("must not be empty");
        None
    } else if s.chars().any(char::is_control) {
        value.error(format!("{s:?} contains a control character"));
        None
    } else {
        Some(s)
    }
}

/// `[cache]`: the directory, how its entries are authenticated, and whether a cold plugin is
/// first built with the baseline compiler.
fn cache(cx: &Context<'_>, table: &Table<'_, '_>, dir: &Path) -> (PathBuf, CacheKey, bool) {
    let cache_dir = table
        .get("dir")
        .and_then(|v| {
            let raw = v.string()?;
            resolve(&v, &raw, dir)
        })
        .unwrap_or_else(|| default_cache_dir(cx, dir));
    let secret = table.get("key").and_then(|v| {
        let key = v.string()?;
        if key.chars().count() < CacheKey::MIN_SECRET_LEN {
            v.error(format!(
                "the cache key must be at least {} characters (it authenticates native code); \
                 make one with `openssl rand -hex 32` and pass it as ${{VAR}}",
                CacheKey::MIN_SECRET_LEN
            ));
            return None;
        }
        Some(SecretValue::new(key))
    });
    let key_file = table.get("key_file").and_then(|v| {
        let raw = v.string()?;
        let path = resolve(&v, &raw, dir)?;
        if secret.is_some() {
            v.error("give either `key` or `key_file`, not both");
        }
        Some(path)
    });
    let baseline = table
        .get("baseline")
        .and_then(|v| super::plugin::boolean(&v))
        .unwrap_or(true);
    table.finish();
    let key = match (secret, key_file) {
        (Some(secret), _) => CacheKey::Secret(secret),
        (None, Some(path)) => CacheKey::File(path),
        (None, None) => CacheKey::File(default_key_file(&cache_dir)),
    };
    (cache_dir, key, baseline)
}

/// The per-install key beside the cache directory (never inside it): `DIR.key`.
fn default_key_file(cache_dir: &Path) -> PathBuf {
    let mut name = cache_dir.file_name().unwrap_or_default().to_owned();
    name.push(".key");
    cache_dir.with_file_name(name)
}

/// `$XDG_CACHE_HOME/warden` if that variable is an absolute path, else `$HOME/.cache/warden`,
/// else `.warden-cache` beside the manifest.
fn default_cache_dir(cx: &Context<'_>, dir: &Path) -> PathBuf {
    let set = |name: &str| {
        cx.env(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    if let Some(xdg) = set("XDG_CACHE_HOME").filter(|path| path.is_absolute()) {
        xdg.join("warden")
    } else if let Some(home) = set("HOME") {
        home.join(".cache").join("warden")
    } else {
        dir.join(".warden-cache")
    }
}

/// `[plugins]`: every `[plugins.NAME]`, in file order. Plugins with errors are left out.
fn plugins(table: &Table<'_, '_>, dir: &Path) -> Vec<super::Plugin> {
    let mut tool_names = BTreeMap::new();
    table
        .entries()
        .iter()
        .filter_map(|entry| plugin(entry, dir, &mut tool_names))
        .collect()
}

/// Resolves `raw`, the string of `value`, against `base` (the manifest's directory), without
/// touching the file system: the result is absolute when `base` is, with `.` segments removed.
/// Records a problem for an empty path or a `~` the operator expected to be expanded.
pub(super) fn resolve(value: &Value<'_, '_>, raw: &str, base: &Path) -> Option<PathBuf> {
    if raw.is_empty() {
        value.error("path is empty");
        None
    } else if raw == "~" || raw.starts_with("~/") {
        value.error(format!(
            "path {raw:?} starts with `~`, which is not expanded: write `${{HOME}}` instead"
        ));
        None
    } else {
        Some(base.join(raw).components().collect())
    }
}

/// What a path must be, for [`check_path`].
#[derive(Clone, Copy)]
pub(super) enum PathKind {
    File,
    Dir,
}

/// Checks that `path` (resolved from `raw`, the string of `value`) exists and is a `kind`, and
/// returns it canonicalized. Records a problem at `value` otherwise; `what` names the path in
/// messages ("component file").
pub(super) fn check_path(
    value: &Value<'_, '_>,
    raw: &str,
    path: PathBuf,
    kind: PathKind,
    what: &str,
) -> Option<PathBuf> {
    let shown = if Path::new(raw) == path {
        format!("{raw:?}")
    } else {
        format!("{raw:?} ({})", path.display())
    };
    match (std::fs::metadata(&path), kind) {
        (Ok(meta), PathKind::File) if meta.is_file() => {}
        (Ok(meta), PathKind::Dir) if meta.is_dir() => {}
        (Ok(meta), PathKind::File) if meta.is_dir() => {
            value.error(format!("{what} {shown} is a directory, not a file"));
            return None;
        }
        (Ok(_), PathKind::File) => {
            value.error(format!("{what} {shown} is not a regular file"));
            return None;
        }
        (Ok(_), PathKind::Dir) => {
            value.error(format!("{what} {shown} is not a directory"));
            return None;
        }
        (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => {
            value.error(format!("{what} {shown} not found"));
            return None;
        }
        (Err(e), _) => {
            value.error(format!("cannot access {what} {shown}: {e}"));
            return None;
        }
    }
    Some(std::fs::canonicalize(&path).unwrap_or(path))
}
