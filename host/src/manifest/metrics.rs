//! `[metrics]`: Prometheus metrics, off unless the section is present.
//!
//! ```toml
//! [metrics]
//! listen = "127.0.0.1:9464"   # a listener of its own that serves GET /metrics (stdio too)
//! on_http = true              # also /metrics on the [http] listener, behind [auth]
//! principals = false          # label calls with principal names (off: names never appear)
//! ```

use std::net::SocketAddr;

use super::error::Location;
use super::reader::Table;

/// `[metrics]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsSettings {
    /// `listen`: the address of the metrics listener, which serves `GET /metrics` only.
    pub listen: Option<SocketAddr>,
    /// `on_http`: serve `/metrics` on the Streamable HTTP listener too, behind the same
    /// authenticator as MCP when `[auth]` is configured. Default `false`.
    pub on_http: bool,
    /// `principals`: count calls per principal name (`warden_principal_calls_total`).
    /// Default `false`: no principal's name appears in the metrics.
    pub principals: bool,
    /// The `[metrics]` table.
    pub location: Location,
}

/// `[metrics]`: at least one of `listen` and `on_http` must say where metrics are served.
pub(super) fn settings(table: &Table<'_, '_>) -> Option<MetricsSettings> {
    let listen_key = table.get("listen");
    let listen = listen_key.as_ref().and_then(super::http::listen);
    let on_http_key = table.get("on_http");
    let on_http_value = on_http_key.as_ref().and_then(super::plugin::boolean);
    // A value that is not a boolean was reported already.
    let on_http_invalid = on_http_key.is_some() && on_http_value.is_none();
    let on_http = on_http_value.unwrap_or(false);
    let principals = table
        .get("principals")
        .and_then(|v| super::plugin::boolean(&v))
        .unwrap_or(false);
    table.finish();
    let location = table.location();
    if on_http_invalid {
        return None;
    }
    if listen_key.is_none() && !on_http {
        table.error(
            "[metrics] serves nothing: set `listen = \"127.0.0.1:9464\"` (a listener of its own) \
             and/or `on_http = true` (/metrics on the [http] listener)",
        );
        return None;
    }
    if listen_key.is_some() && listen.is_none() {
        return None;
    }
    Some(MetricsSettings {
        listen,
        on_http,
        principals,
        location,
    })
}
