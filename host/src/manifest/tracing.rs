//! `[tracing]`: OpenTelemetry traces of MCP requests, exported over OTLP/HTTP. Off unless the
//! section is present.
//!
//! ```toml
//! [tracing]
//! otlp = "http://127.0.0.1:4318"   # the collector; /v1/traces is appended to a bare base URL
//! service_name = "warden"          # default: OTEL_SERVICE_NAME, else "warden"
//! sample = 0.25                    # new traces kept; a sampled parent is always followed
//! headers = { authorization = "Bearer ${OTLP_TOKEN}" }
//! principal = false                # the principal's name on request spans (`enduser.id`)
//! queue = 2048                     # spans waiting for export; more are dropped and counted
//! ```

use super::error::Location;
use super::network::SecretValue;
use super::reader::{Table, Value};
use toml::de::DeValue;

/// `[tracing]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TracingSettings {
    /// `otlp`: the collector's URL (`http://` or `https://`). `None`: the `OTEL_EXPORTER_OTLP_*`
    /// variables, else `http://localhost:4318`.
    pub otlp: Option<String>,
    /// `service_name`. `None`: `OTEL_SERVICE_NAME`, else `warden`.
    pub service_name: Option<String>,
    /// `sample`: the ratio of new traces kept, 0.0 to 1.0. `None`: the SDK's default (the
    /// `OTEL_TRACES_SAMPLER` variables, else every trace, following a remote parent's choice).
    pub sample: Option<f64>,
    /// `headers`: sent with every export (an API key for a hosted collector); the values may be
    /// secrets (`${VAR}`), so they are kept as [`SecretValue`]s.
    pub headers: Vec<(String, SecretValue)>,
    /// `principal`: whether request spans carry the principal's name. Default `false`.
    pub principal: bool,
    /// `queue`: the most spans waiting for export; more are dropped (and counted). `None`:
    /// `OTEL_BSP_MAX_QUEUE_SIZE`, else 2048.
    pub queue: Option<usize>,
    /// The `[tracing]` table.
    pub location: Location,
}

// `sample` is never NaN (the reader keeps 0 to 1 only), so equality is total.
impl Eq for TracingSettings {}

/// `[tracing]`.
pub(super) fn settings(table: &Table<'_, '_>) -> TracingSettings {
    let otlp = table.get("otlp").and_then(|v| {
        let url = v.string()?;
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("http" | "https")) || url.parse::<http::Uri>().is_err() {
            v.error(format!(
                "invalid otlp URL {url:?}: expected the collector's OTLP/HTTP address, such as \
                 \"http://127.0.0.1:4318\""
            ));
            return None;
        }
        Some(url)
    });
    let service_name = table.get("service_name").and_then(|v| {
        let name = v.string()?;
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            v.error("a service_name is 1 to 128 characters, without control characters");
            return None;
        }
        Some(name)
    });
    let sample = table.get("sample").and_then(|v| ratio(&v));
    let headers = table
        .get("headers")
        .and_then(|v| v.table())
        .map(|headers| {
            let mut list = Vec::new();
            for entry in headers.entries() {
                let name = entry.name().to_ascii_lowercase();
                let Some(value) = entry.string() else {
                    continue;
                };
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    entry.key_error(format!("invalid header name {name:?}"));
                    continue;
                }
                if http::HeaderValue::from_str(&value).is_err() {
                    // Never echo the value: it is likely a secret.
                    entry.error("invalid header value (control characters or non-ASCII)");
                    continue;
                }
                list.push((name, SecretValue::new(value)));
            }
            list
        })
        .unwrap_or_default();
    let principal = table
        .get("principal")
        .and_then(|v| match v.raw() {
            DeValue::Boolean(value) => Some(*value),
            _ => {
                v.type_error("a boolean");
                None
            }
        })
        .unwrap_or(false);
    let queue = table
        .get("queue")
        .and_then(|v| super::policy::int_in(&v, "queue", 16..=1_000_000));
    table.finish();
    TracingSettings {
        otlp,
        service_name,
        sample,
        headers,
        principal,
        queue,
        location: table.location(),
    }
}

/// A ratio from 0 to 1 (an integer 0 or 1 is accepted too).
fn ratio(v: &Value<'_, '_>) -> Option<f64> {
    let ratio = match v.raw() {
        DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
        DeValue::Integer(_) => v.integer().map(|n| n as f64),
        _ => {
            v.type_error("a number from 0 to 1");
            return None;
        }
    };
    match ratio {
        Some(ratio) if (0.0..=1.0).contains(&ratio) => Some(ratio),
        _ => {
            v.error("sample must be a number from 0 to 1 (the share of new traces kept)");
            None
        }
    }
}
