//! `[[audit.ship]]`: where audit records are shipped besides the local file, several at once.
//!
//! ```toml
//! [[audit.ship]]
//! name = "console"              # the cursor file's name: [a-z][a-z0-9-]{0,31}, unique
//! kind = "stdout"               # JSON lines on standard output (HTTP transport only)
//!
//! [[audit.ship]]
//! name = "siem"
//! kind = "syslog"
//! url = "tcp://siem.example.com:514"   # or udp://, or tls:// (RFC 5425, port 6514)
//! ca = "siem-ca.pem"                   # tls:// only: trust these CAs instead of the built-in roots
//! format = "cef"                       # "json" (default), "cef" or "ocsf"
//!
//! [[audit.ship]]
//! name = "collector"
//! kind = "otlp"
//! url = "https://otel.example.com:4318/v1/logs"
//! headers = { authorization = "Bearer ${OTLP_TOKEN}" }   # sent with each request; secret
//! encoding = "protobuf"                # or "json" (OTLP/HTTP JSON)
//! batch = 500                          # records per send (1..=10000)
//! retry_max = "30s"                    # the longest wait between two attempts
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::DeValue;

use super::error::Location;
use super::reader::{Table, Value};

/// One `[[audit.ship]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ship {
    /// `name`: names the cursor file (`{path}.ship/{name}.cursor`) and the sink in logs and
    /// `warden status`.
    pub name: String,
    /// `kind` and its keys.
    pub sink: ShipSink,
    /// `batch`: the most records one send carries. Default [`Ship::DEFAULT_BATCH`].
    pub batch: u32,
    /// `retry_max`: the longest wait between two attempts (the wait doubles from 100ms up to
    /// it). Default [`Ship::DEFAULT_RETRY_MAX`].
    pub retry_max: Duration,
    /// The entry's `kind`, for errors found once the transport is known.
    pub kind_location: Location,
}

impl Ship {
    /// Default `batch`.
    pub const DEFAULT_BATCH: u32 = 500;
    /// Default `retry_max`: 30 seconds.
    pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(30);
}

/// Where a shipper sends records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShipSink {
    /// `kind = "stdout"`: each record's line, as the file holds it.
    Stdout,
    /// `kind = "otlp"`: OTLP/HTTP logs (protobuf), one log record per audit record.
    Otlp {
        /// `url`: the receiver's logs endpoint, `https://`, or `http://` to a loopback host.
        url: String,
        /// `headers`: sent with each request (an API key, a tenant); the values are secrets.
        headers: Vec<(String, super::network::SecretValue)>,
        /// `encoding = "json"`: OTLP/HTTP JSON instead of protobuf (the default).
        json: bool,
    },
    /// `kind = "syslog"`: RFC 5424 messages.
    Syslog {
        /// From `url`: `tcp://` (octet-counting framing, RFC 6587), `tls://` (the same over
        /// TLS, RFC 5425) or `udp://` (RFC 5426).
        transport: SyslogTransport,
        /// The host, as written (a name or an IP address).
        host: String,
        /// The port: from the URL, or 514 (6514 for `tls://`).
        port: u16,
        /// `format`.
        format: SyslogFormat,
        /// `ca`: a PEM file of the CA certificates a `tls://` server's certificate must chain
        /// to, in place of the built-in (Mozilla) roots.
        ca: Option<PathBuf>,
    },
}

impl ShipSink {
    /// The manifest's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            ShipSink::Stdout => "stdout",
            ShipSink::Otlp { .. } => "otlp",
            ShipSink::Syslog { .. } => "syslog",
        }
    }
}

/// How syslog messages travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogTransport {
    Tcp,
    Tls,
    Udp,
}

/// What a syslog message's MSG holds (`format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogFormat {
    /// `"json"`: the record's line as the file holds it.
    Json,
    /// `"cef"`: an ArcSight Common Event Format line.
    Cef,
    /// `"ocsf"`: an OCSF API Activity (class 6003) event, as JSON.
    Ocsf,
}

/// `ship` of `[audit]`: an array of tables.
pub(super) fn ships(v: &Value<'_, '_>, dir: &Path) -> Vec<Ship> {
    let Some(items) = v.array() else {
        return Vec::new();
    };
    let mut ships: Vec<Ship> = Vec::new();
    for item in &items {
        let Some(table) = item.table() else { continue };
        if let Some(ship) = ship(&table, &ships, dir) {
            ships.push(ship);
        }
    }
    ships
}

fn ship(table: &Table<'_, '_>, seen: &[Ship], dir: &Path) -> Option<Ship> {
    let name = table.require("name").and_then(|v| {
        let name = v.string()?;
        let shaped = name.len() <= 32
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !shaped {
            v.error(format!(
                "invalid sink name {name:?}: a lowercase letter, then up to 31 lowercase \
                 letters, digits or `-` (it names the sink's cursor file)"
            ));
            return None;
        }
        if seen.iter().any(|s| s.name == name) {
            v.error(format!(
                "sink name {name:?} is used twice; each sink keeps its own cursor"
            ));
            return None;
        }
        Some(name)
    });
    let kind_value = table.require("kind");
    let kind_location = kind_value
        .as_ref()
        .map_or_else(|| table.location(), Value::location);
    let kind = kind_value.and_then(|v| {
        let kind = v.string()?;
        if matches!(kind.as_str(), "stdout" | "otlp" | "syslog") {
            Some(kind)
        } else {
            v.error(format!(
                "unknown sink kind {kind:?}; expected \"stdout\", \"otlp\" or \"syslog\""
            ));
            None
        }
    });
    let url = match kind.as_deref() {
        Some("otlp" | "syslog") => table.require("url"),
        _ => table.get("url").inspect(|v| {
            v.key_error("`url` applies only to `kind = \"otlp\"` or `\"syslog\"`");
        }),
    };
    let format = table.get("format").and_then(|v| {
        if kind.as_deref().is_some_and(|k| k != "syslog") {
            v.key_error("`format` applies only to `kind = \"syslog\"`");
            return None;
        }
        let format = v.string()?;
        match format.as_str() {
            "json" => Some(SyslogFormat::Json),
            "cef" => Some(SyslogFormat::Cef),
            "ocsf" => Some(SyslogFormat::Ocsf),
            _ => {
                v.error(format!(
                    "unknown format {format:?}; expected \"json\", \"cef\" or \"ocsf\""
                ));
                None
            }
        }
    });
    let ca = table.get("ca").and_then(|v| {
        let scheme = url.as_ref().and_then(|u| match u.raw() {
            DeValue::String(s) => s.split_once("://").map(|(scheme, _)| scheme.to_owned()),
            _ => None,
        });
        if kind.as_deref() != Some("syslog") || scheme.as_deref() != Some("tls") {
            v.key_error("`ca` applies only to `kind = \"syslog\"` with a `tls://` url");
            return None;
        }
        let raw = v.string()?;
        let path = super::validate::resolve(&v, &raw, dir)?;
        if let Err(message) = check_ca(&path) {
            v.error(message);
            return None;
        }
        Some(path)
    });
    let headers = table.get("headers").and_then(|v| {
        if kind.as_deref().is_some_and(|k| k != "otlp") {
            v.key_error("`headers` applies only to `kind = \"otlp\"`");
            return None;
        }
        otlp_headers(&v)
    });
    let json = table.get("encoding").and_then(|v| {
        if kind.as_deref().is_some_and(|k| k != "otlp") {
            v.key_error("`encoding` applies only to `kind = \"otlp\"`");
            return None;
        }
        let encoding = v.string()?;
        match encoding.as_str() {
            "protobuf" => Some(false),
            "json" => Some(true),
            _ => {
                v.error(format!(
                    "unknown encoding {encoding:?}; expected \"protobuf\" or \"json\""
                ));
                None
            }
        }
    });
    let batch = table
        .get("batch")
        .and_then(|v| super::policy::int_in(&v, "batch", 1..=10_000))
        .unwrap_or(Ship::DEFAULT_BATCH);
    let retry_max = table
        .get("retry_max")
        .and_then(|v| {
            super::network::duration(&v, "retry_max", Duration::from_secs(3600)).and_then(|d| {
                if d < Duration::from_secs(1) {
                    v.error("retry_max must be at least 1s");
                    return None;
                }
                Some(d)
            })
        })
        .unwrap_or(Ship::DEFAULT_RETRY_MAX);
    table.finish();
    let sink = match kind?.as_str() {
        "stdout" => ShipSink::Stdout,
        "otlp" => {
            let v = url?;
            let url = v.string()?;
            if let Err(message) = check_http_url(&url) {
                v.error(message);
                return None;
            }
            ShipSink::Otlp {
                url,
                headers: headers.unwrap_or_default(),
                json: json.unwrap_or(false),
            }
        }
        _ => {
            let v = url?;
            let url = v.string()?;
            match syslog_url(&url) {
                Ok((transport, host, port)) => ShipSink::Syslog {
                    transport,
                    host,
                    port,
                    format: format.unwrap_or(SyslogFormat::Json),
                    ca,
                },
                Err(message) => {
                    v.error(message);
                    return None;
                }
            }
        }
    };
    Some(Ship {
        name: name?,
        sink,
        batch,
        retry_max,
        kind_location,
    })
}

/// An OTLP URL: `https://HOST[:PORT]/PATH`, or `http://` to a loopback host (what warden's own
/// HTTP client accepts: nothing leaves the machine in clear).
fn check_http_url(url: &str) -> Result<(), String> {
    let example = "such as \"https://otel.example.com:4318/v1/logs\"";
    let uri: http::Uri = url.parse().map_err(|_| {
        format!("not a URL: {url:?}; expected an OTLP/HTTP logs endpoint {example}")
    })?;
    let Some(authority) = uri.authority() else {
        return Err(format!("the URL has no host; expected a URL {example}"));
    };
    if authority.as_str().contains('@') {
        return Err("user info in the URL is not supported".to_owned());
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(authority.host()) => Ok(()),
        Some("http") => Err(format!(
            "plain http is only allowed to a loopback host; use https, or a collector on \
             localhost, {example}"
        )),
        _ => Err(format!(
            "the scheme must be https; expected a URL {example}"
        )),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `tcp://HOST[:PORT]` or `udp://HOST[:PORT]` (port 514 by default; `[v6]` for IPv6).
fn syslog_url(url: &str) -> Result<(SyslogTransport, String, u16), String> {
    let example = "expected \"tcp://HOST:PORT\", \"tls://HOST:PORT\" or \"udp://HOST:PORT\"";
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("not a syslog URL: {url:?}; {example}"))?;
    let transport = match scheme {
        "tcp" => SyslogTransport::Tcp,
        "tls" => SyslogTransport::Tls,
        "udp" => SyslogTransport::Udp,
        _ => return Err(format!("unsupported syslog scheme {scheme:?}; {example}")),
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("not a syslog URL: {url:?}; {example}"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let valid_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
    if !valid_host {
        return Err(format!("not a syslog URL: {url:?}; {example}"));
    }
    let port = match port {
        None if transport == SyslogTransport::Tls => 6514,
        None => 514,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("invalid port in {url:?}; {example}"))?,
    };
    Ok((transport, host.to_owned(), port))
}

/// `headers = { name = "value", ... }`: valid HTTP header names and values, at most 32. A
/// value is never echoed in an error (it is a secret, often `${VAR}`).
fn otlp_headers(v: &Value<'_, '_>) -> Option<Vec<(String, super::network::SecretValue)>> {
    let table = v.table()?;
    let entries = table.entries();
    if entries.len() > 32 {
        v.error("at most 32 headers");
        return None;
    }
    let mut headers = Vec::new();
    for entry in entries {
        let name = entry.name().to_ascii_lowercase();
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            entry.key_error(format!("{name:?} is not a valid HTTP header name"));
            continue;
        }
        if matches!(
            name.as_str(),
            "host" | "content-type" | "content-length" | "transfer-encoding" | "connection"
        ) {
            entry.key_error(format!("warden sets the {name:?} header itself"));
            continue;
        }
        let Some(value) = entry.string() else {
            continue;
        };
        if http::HeaderValue::from_str(&value).is_err() {
            entry.error("not a valid HTTP header value (control characters or non-ASCII)");
            continue;
        }
        headers.push((name, super::network::SecretValue::new(value)));
    }
    Some(headers)
}

/// `path` holds at least one PEM certificate.
fn check_ca(path: &Path) -> Result<(), String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_urls() {
        assert_eq!(
            syslog_url("tcp://127.0.0.1:6514"),
            Ok((SyslogTransport::Tcp, "127.0.0.1".to_owned(), 6514))
        );
        assert_eq!(
            syslog_url("udp://[::1]"),
            Ok((SyslogTransport::Udp, "::1".to_owned(), 514))
        );
        assert_eq!(
            syslog_url("tls://siem.example.com"),
            Ok((SyslogTransport::Tls, "siem.example.com".to_owned(), 6514))
        );
        for bad in [
            "ssl://h:1",
            "tcp://",
            "tcp://h:0",
            "tcp://h:x",
            "h:514",
            "tcp://a b",
        ] {
            assert!(syslog_url(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn otlp_urls() {
        assert!(check_http_url("https://otel.example.com:4318/v1/logs").is_ok());
        assert!(check_http_url("http://127.0.0.1:4318/v1/logs").is_ok());
        assert!(check_http_url("http://[::1]:4318/v1/logs").is_ok());
        for bad in [
            "http://otel.example.com/v1/logs",
            "ftp://x/y",
            "https://u:p@x/y",
            "/v1/logs",
        ] {
            assert!(check_http_url(bad).is_err(), "{bad} accepted");
        }
    }
}
