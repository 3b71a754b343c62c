//! A plugin's network and secret grants: `allow_hosts`, `[plugins.NAME.net]` and `secrets`.
//!
//! Host patterns are parsed by [`crate::types::HostPattern`] (a leaf module with no
//! dependencies), so the manifest refuses exactly what the sandbox could not enforce.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::DeValue;

use super::error::Location;
use super::names::is_env_name;
use super::plugin::size;
use super::reader::Value;
use super::units::{format_duration, parse_duration};
use super::validate::{PathKind, check_path, resolve};
use crate::types::HostPattern;

/// `[plugins.NAME.net]`: limits on a plugin's outbound requests and connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetLimits {
    /// Longest wait for a name lookup, a TCP connection and a TLS handshake, together, per
    /// request. Default 5s; more than 0, at most [`NetLimits::MAX_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// Longest a request may take from its start to the last byte of the response. Default
    /// 30s; more than 0, at most [`NetLimits::MAX_REQUEST_TIMEOUT`]. The plugin's `timeout`
    /// bounds the whole call, requests included.
    pub request_timeout: Duration,
    /// Largest response body, in bytes; a longer one is cut there with an error. Default
    /// 4MiB; within [`NetLimits::MAX_RESPONSE_RANGE`].
    pub max_response: u64,
    /// Outbound HTTP requests plus TCP connections one call may make (redirects followed by
    /// the plugin count as requests). Default 16; within [`NetLimits::MAX_REQUESTS_RANGE`].
    pub max_requests: u32,
    /// UDP datagrams one call may send; the next send fails with `access-denied`. Default
    /// 1000; within [`NetLimits::MAX_DATAGRAMS_RANGE`].
    pub max_datagrams: u32,
}

impl NetLimits {
    /// Default `connect_timeout`: 5s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default `request_timeout`: 30s.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default `max_response`: 4MiB.
    pub const DEFAULT_MAX_RESPONSE: u64 = 4 << 20;
    /// Default `max_requests`.
    pub const DEFAULT_MAX_REQUESTS: u32 = 16;
    /// Longest accepted `connect_timeout`: 5m.
    pub const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(300);
    /// Longest accepted `request_timeout`: 1h.
    pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);
    /// Accepted `max_response`: 1KiB to 1GiB.
    pub const MAX_RESPONSE_RANGE: std::ops::RangeInclusive<u64> = (1 << 10)..=(1 << 30);
    /// Accepted `max_requests`.
    pub const MAX_REQUESTS_RANGE: std::ops::RangeInclusive<u32> = 1..=100_000;
    /// Default `max_datagrams`.
    pub const DEFAULT_MAX_DATAGRAMS: u32 = 1_000;
    /// Accepted `max_datagrams`.
    pub const MAX_DATAGRAMS_RANGE: std::ops::RangeInclusive<u32> = 1..=1_000_000;
}

impl Default for NetLimits {
    /// `connect_timeout = "5s"`, `request_timeout = "30s"`, `max_response = "4MiB"`,
    /// `max_requests = 16`, `max_datagrams = 1000`.
    fn default() -> NetLimits {
        NetLimits {
            connect_timeout: NetLimits::DEFAULT_CONNECT_TIMEOUT,
            request_timeout: NetLimits::DEFAULT_REQUEST_TIMEOUT,
            max_response: NetLimits::DEFAULT_MAX_RESPONSE,
            max_requests: NetLimits::DEFAULT_MAX_REQUESTS,
            max_datagrams: NetLimits::DEFAULT_MAX_DATAGRAMS,
        }
    }
}

/// One entry of `secrets`: a value read from warden's environment or from a file when the
/// manifest is loaded, given to the plugin as an environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    /// The variable the plugin sees: `[A-Za-z_][A-Za-z0-9_]*`, distinct from `env` names.
    pub name: String,
    /// Where the value came from.
    pub source: SecretSource,
    /// The value. Never printed: its `Debug` is redacted.
    pub value: SecretValue,
    /// The entry's key in the `secrets` table.
    pub location: Location,
}

/// Where a secret's value is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// `{ env = "HOST_VAR" }`: a variable of warden's own environment.
    Env(String),
    /// `{ file = "path" }`: a file (absolute, canonical); one trailing newline is dropped.
    File(PathBuf),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "env {name}"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// A secret value. It has no `Display`, and its `Debug` prints `SecretValue(<redacted>)`, so
/// it cannot reach a log or an error by accident; [`SecretValue::expose`] is the one way out.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps `value`.
    pub fn new(value: String) -> SecretValue {
        SecretValue(value)
    }

    /// The value itself, for the plugin's environment and for redaction.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// `allow_hosts = ["https://api.example.com", ...]`: each item a valid pattern.
pub(super) fn allow_hosts(v: &Value<'_, '_>) -> Vec<HostPattern> {
    let Some(items) = v.array() else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let text = item.string()?;
            HostPattern::parse(&text)
                .map_err(|e| item.error(format!("invalid host pattern {text:?}: {e}")))
                .ok()
        })
        .collect()
}

/// `[plugins.NAME.net]`.
pub(super) fn net_limits(v: &Value<'_, '_>) -> NetLimits {
    let defaults = NetLimits::default();
    let Some(table) = v.table() else {
        return defaults;
    };
    let limits = NetLimits {
        connect_timeout: table
            .get("connect_timeout")
            .and_then(|v| duration(&v, "connect_timeout", NetLimits::MAX_CONNECT_TIMEOUT))
            .unwrap_or(defaults.connect_timeout),
        request_timeout: table
            .get("request_timeout")
            .and_then(|v| duration(&v, "request_timeout", NetLimits::MAX_REQUEST_TIMEOUT))
            .unwrap_or(defaults.request_timeout),
        max_response: table
            .get("max_response")
            .and_then(|v| size(&v, "max_response", NetLimits::MAX_RESPONSE_RANGE))
            .unwrap_or(defaults.max_response),
        max_requests: table
            .get("max_requests")
            .and_then(|v| count(&v, "max_requests", NetLimits::MAX_REQUESTS_RANGE))
            .unwrap_or(defaults.max_requests),
        max_datagrams: table
            .get("max_datagrams")
            .and_then(|v| count(&v, "max_datagrams", NetLimits::MAX_DATAGRAMS_RANGE))
            .unwrap_or(defaults.max_datagrams),
    };
    table.finish();
    limits
}

/// A duration string, more than 0 and at most `max`; `what` names it in errors.
pub(super) fn duration(v: &Value<'_, '_>, what: &str, max: Duration) -> Option<Duration> {
    let duration = match v.raw() {
        DeValue::String(_) => {
            let s = v.string()?;
            match parse_duration(&s) {
                Ok(duration) => duration,
                Err(e) => {
                    v.error(format!("invalid duration {s:?}: {e}"));
                    return None;
                }
            }
        }
        DeValue::Integer(_) => {
            v.error(
                "expected a duration string such as \"5s\" or \"250ms\"; a bare number has no unit",
            );
            return None;
        }
        _ => {
            v.type_error("a duration such as \"5s\"");
            return None;
        }
    };
    if duration.is_zero() {
        v.error(format!("{what} must be greater than 0"));
        None
    } else if duration > max {
        v.error(format!(
            "{what} must be at most {}, got {}",
            format_duration(max),
            format_duration(duration)
        ));
        None
    } else {
        Some(duration)
    }
}

/// A count setting (`max_requests`, `max_datagrams`): an integer within `range`.
fn count(v: &Value<'_, '_>, what: &str, range: std::ops::RangeInclusive<u32>) -> Option<u32> {
    let n = v.integer()?;
    match u32::try_from(n) {
        Ok(n) if range.contains(&n) => Some(n),
        _ => {
            v.error(format!(
                "{what} must be between {} and {}, got {n}",
                range.start(),
                range.end()
            ));
            None
        }
    }
}

/// `secrets = { NAME = { env = "HOST_VAR" } | { file = "path" } }`. `env` holds the plugin's
/// plain variables, whose names a secret may not reuse.
pub(super) fn secrets(v: &Value<'_, '_>, dir: &Path, env: &[(String, String)]) -> Vec<Secret> {
    let Some(table) = v.table() else {
        return Vec::new();
    };
    table
        .entries()
        .iter()
        .filter_map(|entry| secret(entry, dir, env))
        .collect()
}

fn secret(entry: &Value<'_, '_>, dir: &Path, env: &[(String, String)]) -> Option<Secret> {
    let name = entry.name();
    let mut name_ok = is_env_name(name);
    if !name_ok {
        entry.key_error(format!(
            "invalid environment variable name {name:?}: expected letters, digits and `_`, not starting with a digit"
        ));
    } else if env.iter().any(|(n, _)| n == name) {
        entry.key_error(format!(
            "`{name}` is also set in `env`: a variable comes from `env` or from `secrets`, not both"
        ));
        name_ok = false;
    }
    let table = match entry.raw() {
        DeValue::Table(_) => entry.table()?,
        _ => {
            entry.type_error("a table such as { env = \"HOST_VAR\" } or { file = \"path\" }");
            return None;
        }
    };
    let from_env = table.get("env");
    let from_file = table.get("file");
    table.finish();
    let (source, value) = match (from_env, from_file) {
        (Some(_), Some(file)) => {
            file.key_error("give either `env` or `file`, not both");
            return None;
        }
        (None, None) => {
            entry.error(format!(
                "missing `env` or `file`: write {name} = {{ env = \"HOST_VAR\" }} or {name} = {{ file = \"path\" }}"
            ));
            return None;
        }
        (Some(v), None) => {
            let var = v.string()?;
            if !is_env_name(&var) {
                v.error(format!(
                    "invalid environment variable name {var:?}: expected letters, digits and `_`, not starting with a digit"
                ));
                return None;
            }
            let Some(value) = v.env_var(&var) else {
                v.error(format!(
                    "environment variable `{var}` is not set (warden reads secret `{name}` from it)"
                ));
                return None;
            };
            (SecretSource::Env(var), value)
        }
        (None, Some(v)) => {
            let raw = v.string()?;
            let path = resolve(&v, &raw, dir)?;
            let path = check_path(&v, &raw, path, PathKind::File, "secret file")?;
            let value = match std::fs::read(&path) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => text,
                    Err(_) => {
                        v.error(format!("secret file {raw:?} is not valid UTF-8"));
                        return None;
                    }
                },
                Err(e) => {
                    v.error(format!("cannot read secret file {raw:?}: {e}"));
                    return None;
                }
            };
            let value = value
                .strip_suffix("\r\n")
                .or_else(|| value.strip_suffix('\n'))
                .unwrap_or(&value)
                .to_owned();
            (SecretSource::File(path), value)
        }
    };
    if value.is_empty() {
        entry.error(format!("secret `{name}` is empty ({source})"));
        return None;
    }
    name_ok.then(|| Secret {
        name: name.to_owned(),
        source,
        value: SecretValue(value),
        location: entry.location(),
    })
}
