//! Limits shared by replicas: `[limits] store`, `prefix` and `on_store_error`.
//!
//! ```toml
//! [limits]
//! store = "${WARDEN_LIMITS_REDIS}"   # redis://[user:password@]host[:port][/db]
//! prefix = "warden:limits:"          # prepended to every key (default)
//! on_store_error = "closed"          # or "local": the in-process limits while Redis is down
//! ```

use super::network::SecretValue;
use super::reader::{Table, Value};

/// What a call meets while the shared store cannot be reached (`on_store_error`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreFailure {
    /// `"closed"` (the default): calls to limited tools are refused.
    #[default]
    Closed,
    /// `"local"`: each replica counts alone, in process, until the store answers again.
    Local,
}

impl StoreFailure {
    /// The manifest's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreFailure::Closed => "closed",
            StoreFailure::Local => "local",
        }
    }
}

/// `[limits] store`: the Redis server where every replica counts rates and concurrency. The
/// URL may hold a password: its `Debug` is redacted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitStore {
    /// `store`.
    pub url: SecretValue,
    /// `prefix`: prepended to every Redis key. Default [`LimitStore::DEFAULT_PREFIX`].
    pub prefix: String,
    /// `on_store_error`.
    pub on_error: StoreFailure,
}

impl LimitStore {
    /// The default Redis key prefix.
    pub const DEFAULT_PREFIX: &str = "warden:limits:";
}

/// The `store`, `prefix` and `on_store_error` keys of `[limits]`.
pub(super) fn store(table: &Table<'_, '_>) -> Option<LimitStore> {
    let url = table.get("store").and_then(|v| redis_url(&v));
    let prefix = table.get("prefix").and_then(|v| {
        let prefix = v.string()?;
        if table.get("store").is_none() {
            v.key_error("`prefix` applies only with a shared store (`store = \"redis://...\"`)");
            return None;
        }
        if prefix.len() > 64 || prefix.chars().any(|c| c.is_control() || c.is_whitespace()) {
            v.error("a prefix is at most 64 characters, without spaces or control characters");
            return None;
        }
        Some(prefix)
    });
    let on_error = table.get("on_store_error").and_then(|v| {
        let s = v.string()?;
        if table.get("store").is_none() {
            v.key_error(
                "`on_store_error` applies only with a shared store (`store = \"redis://...\"`)",
            );
            return None;
        }
        match s.as_str() {
            "closed" => Some(StoreFailure::Closed),
            "local" => Some(StoreFailure::Local),
            _ => {
                v.error(format!(
                    "invalid on_store_error {s:?}: expected \"closed\" (refuse limited calls \
                     while the store is unreachable) or \"local\" (count in process meanwhile)"
                ));
                None
            }
        }
    });
    url.map(|url| LimitStore {
        url,
        prefix: prefix.unwrap_or_else(|| LimitStore::DEFAULT_PREFIX.to_owned()),
        on_error: on_error.unwrap_or_default(),
    })
}

fn redis_url(v: &Value<'_, '_>) -> Option<SecretValue> {
    let s = v.string()?;
    if s.split_once("://").map(|(scheme, _)| scheme) != Some("redis")
        || redis::Client::open(s.as_str()).is_err()
    {
        // Never echo the value: it may be a URL with a password.
        v.error(
            "expected a Redis URL such as \"redis://127.0.0.1:6379/0\" (TLS, rediss://, is not \
             supported yet)",
        );
        return None;
    }
    Some(SecretValue::new(s))
}
