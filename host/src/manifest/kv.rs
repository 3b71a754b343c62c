//! The key-value capability's settings: a plugin's `kv = { ... }` grant and the global `[kv]`
//! section (where the stores live).
//!
//! ```toml
//! [kv]
//! path = "state/kv.redb"                  # an embedded file (the default: .warden-state/kv.redb)
//! # url = "redis://127.0.0.1:6379/0"      # or Redis, shared by every warden process using it
//!
//! [plugins.notes]
//! kv = { quota = "10MiB", max_keys = 10_000, max_value = "1MiB" }
//! ```

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::DeValue;

use super::error::Location;
use super::names::check_plugin_name;
use super::network::SecretValue;
use super::plugin::size;
use super::reader::{Table, Value};
use super::validate::resolve;

/// A plugin's `kv` grant: one key-value store it may open through `wasi:keyvalue`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvGrant {
    /// The shared store it names (`store = "NAME"`, a plugin name's shape), or `None` for its
    /// private store, named after the plugin. Every plugin that names the same store sees the
    /// same keys; no plugin can reach another's private store.
    pub store: Option<String>,
    /// Bytes the store may hold, keys and values together (`quota`). Default
    /// [`KvGrant::DEFAULT_QUOTA`]; within [`KvGrant::QUOTA_RANGE`].
    pub quota: u64,
    /// Keys the store may hold (`max_keys`). Default [`KvGrant::DEFAULT_MAX_KEYS`]; within
    /// [`KvGrant::MAX_KEYS_RANGE`].
    pub max_keys: u64,
    /// Largest value, in bytes (`max_value`). Default [`KvGrant::DEFAULT_MAX_VALUE`]; within
    /// [`KvGrant::MAX_VALUE_RANGE`].
    pub max_value: u64,
    /// The `kv` key.
    pub location: Location,
}

impl KvGrant {
    /// Default `quota`: 10MiB.
    pub const DEFAULT_QUOTA: u64 = 10 << 20;
    /// Default `max_keys`.
    pub const DEFAULT_MAX_KEYS: u64 = 10_000;
    /// Default `max_value`: 1MiB.
    pub const DEFAULT_MAX_VALUE: u64 = 1 << 20;
    /// Accepted `quota` values: 1KiB to 1TiB.
    pub const QUOTA_RANGE: RangeInclusive<u64> = (1 << 10)..=(1 << 40);
    /// Accepted `max_keys` values.
    pub const MAX_KEYS_RANGE: RangeInclusive<u64> = 1..=100_000_000;
    /// Accepted `max_value` values: 1B to 64MiB.
    pub const MAX_VALUE_RANGE: RangeInclusive<u64> = 1..=(64 << 20);

    /// The store's name as plugins and operators see it: the shared store's, or the plugin's.
    pub fn store_name<'a>(&'a self, plugin: &'a str) -> &'a str {
        self.store.as_deref().unwrap_or(plugin)
    }
}

/// `[kv]`: where every plugin's key-value store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvSettings {
    /// The backend.
    pub backend: KvBackend,
    /// When the embedded file's writes reach the disk (`sync`): `None` (`"always"`, the
    /// default), each write before its call returns; `Some(interval)`, at most `interval`
    /// after it (a crash may lose the writes of that last interval; a clean exit loses
    /// nothing). Redis keeps to its own persistence settings.
    pub sync: Option<Duration>,
    /// The `[kv]` table, when the manifest has one.
    pub location: Option<Location>,
}

/// Where the stores are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvBackend {
    /// `path`: an embedded database file (redb), absolute; its directory is created when a
    /// plugin first needs it. One warden process at a time may open it.
    File(PathBuf),
    /// `url`: a Redis server (`redis://`; TLS is not supported yet), which several warden
    /// processes may share. The URL may hold a password: its `Debug` is redacted.
    Redis {
        /// The server's URL.
        url: SecretValue,
        /// Prepended to every Redis key warden writes (`prefix`). Default
        /// [`KvSettings::DEFAULT_PREFIX`].
        prefix: String,
    },
}

impl KvSettings {
    /// The default file, relative to the manifest's directory.
    pub const DEFAULT_PATH: &str = ".warden-state/kv.redb";
    /// The default Redis key prefix.
    pub const DEFAULT_PREFIX: &str = "warden:kv:";
    /// The longest `sync` interval.
    pub const MAX_SYNC: Duration = Duration::from_secs(60);

    /// The defaults for a manifest in `dir`: the file [`KvSettings::DEFAULT_PATH`] under it.
    pub fn default_for(dir: &Path) -> KvSettings {
        KvSettings {
            backend: KvBackend::File(dir.join(KvSettings::DEFAULT_PATH)),
            sync: None,
            location: None,
        }
    }
}

/// A plugin's `kv = { ... }`.
pub(super) fn grant(v: &Value<'_, '_>) -> Option<KvGrant> {
    let table = match v.raw() {
        DeValue::Table(_) => v.table()?,
        _ => {
            v.type_error("a table such as { quota = \"10MiB\" } (`kv = {}` for the defaults)");
            return None;
        }
    };
    let store = table.get("store").and_then(|v| {
        let name = v.string()?;
        match check_plugin_name(&name) {
            Ok(()) => Some(name),
            Err(message) => {
                v.error(message.replace("plugin name", "store name"));
                None
            }
        }
    });
    let quota = table
        .get("quota")
        .and_then(|v| size(&v, "quota", KvGrant::QUOTA_RANGE))
        .unwrap_or(KvGrant::DEFAULT_QUOTA);
    let max_value = table
        .get("max_value")
        .and_then(|v| size(&v, "max_value", KvGrant::MAX_VALUE_RANGE))
        .unwrap_or(KvGrant::DEFAULT_MAX_VALUE);
    let max_keys = table
        .get("max_keys")
        .and_then(|v| super::policy::int_in(&v, "max_keys", KvGrant::MAX_KEYS_RANGE))
        .unwrap_or(KvGrant::DEFAULT_MAX_KEYS);
    if let Some(v) = table.get("max_value")
        && max_value > quota
    {
        v.error(format!(
            "max_value ({}) is larger than the store's quota ({}): no such value could be stored",
            super::units::ByteSize(max_value),
            super::units::ByteSize(quota)
        ));
    }
    table.finish();
    Some(KvGrant {
        store,
        quota,
        max_keys,
        max_value,
        location: v.location(),
    })
}

/// `[kv]`: `path` or `url` (not both), and `prefix` with `url`.
pub(super) fn settings(table: &Table<'_, '_>, dir: &Path) -> KvSettings {
    let path = table.get("path").and_then(|v| {
        let raw = v.string()?;
        let path = resolve(&v, &raw, dir)?;
        if path.is_dir() {
            v.error(format!(
                "{} is a directory: `path` names the store's file, such as \"state/kv.redb\"",
                path.display()
            ));
            return None;
        }
        Some(path)
    });
    let url = table.get("url").and_then(|v| {
        let url = v.string()?;
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        if scheme != Some("redis") {
            // Never echo the URL: it may hold a password.
            v.error(
                "expected a Redis URL such as \"redis://127.0.0.1:6379/0\" (TLS, rediss://, is not supported yet)",
            );
            return None;
        }
        if redis::Client::open(url.as_str()).is_err() {
            v.error("invalid Redis URL: expected redis://[user:password@]host[:port][/db]");
            return None;
        }
        if path.is_some() {
            v.key_error("give either `path` (an embedded file) or `url` (Redis), not both");
            return None;
        }
        Some(SecretValue::new(url))
    });
    let sync = table.get("sync").and_then(|v| {
        if table.get("url").is_some() {
            v.key_error(
                "`sync` applies to the embedded file (`path`); a Redis server keeps to its own \
                 persistence settings (appendfsync)",
            );
            return None;
        }
        let s = v.string()?;
        if s == "always" {
            return Some(None);
        }
        if super::units::parse_duration(&s).is_err() {
            v.error(format!(
                "invalid sync {s:?}: expected \"always\" or an interval such as \"1s\""
            ));
            return None;
        }
        super::network::duration(&v, "sync", KvSettings::MAX_SYNC).map(Some)
    });
    let prefix = table.get("prefix").and_then(|v| {
        let prefix = v.string()?;
        if url.is_none() && table.get("url").is_none() {
            v.key_error("`prefix` applies only to a Redis store (`url`)");
            return None;
        }
        if prefix.len() > 64 || prefix.chars().any(|c| c.is_control() || c.is_whitespace()) {
            v.error("a prefix is at most 64 characters, without spaces or control characters");
            return None;
        }
        Some(prefix)
    });
    table.finish();
    let backend = match (url, path) {
        (Some(url), _) => KvBackend::Redis {
            url,
            prefix: prefix.unwrap_or_else(|| KvSettings::DEFAULT_PREFIX.to_owned()),
        },
        (None, Some(path)) => KvBackend::File(path),
        (None, None) => KvBackend::File(dir.join(KvSettings::DEFAULT_PATH)),
    };
    KvSettings {
        backend,
        sync: sync.flatten(),
        location: Some(table.location()),
    }
}
