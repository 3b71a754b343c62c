//! `[http]` (the Streamable HTTP transport) and `[auth]` (API keys and OAuth), with their
//! types in `model.rs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use toml::de::DeValue;

use super::model::{ApiKey, Auth, Http, JwksSource, OAuth, Tls};
use super::network::duration;
use super::plugin::size;
use super::policy::{int_in, roles};
use super::reader::{Context, Table, Value};
use super::units::parse_duration;
use super::validate::{PathKind, check_path, resolve};

/// `[http]`.
pub(super) fn http(table: &Table<'_, '_>, dir: &Path) -> Http {
    let defaults = Http::default();
    let listen = table.get("listen").and_then(|v| listen(&v));
    let allowed_hosts = table
        .get("allowed_hosts")
        .and_then(|v| list(&v, "host", allowed_host))
        .unwrap_or(defaults.allowed_hosts);
    let allowed_origins = table
        .get("allowed_origins")
        .and_then(|v| list(&v, "origin", allowed_origin))
        .unwrap_or_default();
    let max_body = table
        .get("max_body")
        .and_then(|v| size(&v, "max_body", Http::MAX_BODY_RANGE))
        .unwrap_or(defaults.max_body);
    let public_url = table.get("public_url").and_then(|v| {
        let raw = v.string()?;
        public_url(&raw).map_err(|e| v.error(e)).ok()
    });
    let tls = table.get("tls").and_then(|v| tls(&v, dir));
    let shutdown_grace = table
        .get("shutdown_grace")
        .and_then(|v| duration(&v, "shutdown_grace", Http::MAX_SHUTDOWN_GRACE))
        .unwrap_or(defaults.shutdown_grace);
    let timeout = |key: &'static str, default: Duration| {
        table
            .get(key)
            .and_then(|v| duration(&v, key, Http::MAX_TIMEOUT))
            .unwrap_or(default)
    };
    let header_timeout = timeout("header_timeout", defaults.header_timeout);
    let idle_timeout = timeout("idle_timeout", defaults.idle_timeout);
    let tls_handshake_timeout = timeout("tls_handshake_timeout", defaults.tls_handshake_timeout);
    let count = |key: &'static str, range: std::ops::RangeInclusive<u32>| {
        table.get(key).and_then(|v| int_in(&v, key, range))
    };
    let max_connections = count("max_connections", Http::CONNECTIONS_RANGE);
    let max_connections_per_client = match table.get("max_connections_per_client") {
        Some(v) => int_in(&v, "max_connections_per_client", Http::CONNECTIONS_RANGE).filter(|n| {
            let over = max_connections.is_some_and(|max| *n > max);
            if over {
                v.error("max_connections_per_client must be at most max_connections");
            }
            !over
        }),
        None => None,
    };
    let max_sessions = count("max_sessions", Http::SESSIONS_RANGE).unwrap_or(defaults.max_sessions);
    let max_sessions_per_principal = match table.get("max_sessions_per_principal") {
        Some(v) => int_in(&v, "max_sessions_per_principal", Http::SESSIONS_RANGE).filter(|n| {
            let over = *n > max_sessions;
            if over {
                v.error("max_sessions_per_principal must be at most max_sessions");
            }
            !over
        }),
        None => Some(defaults.max_sessions_per_principal.min(max_sessions)),
    }
    .unwrap_or(defaults.max_sessions_per_principal);
    let max_client_info = table
        .get("max_client_info")
        .and_then(|v| size(&v, "max_client_info", Http::CLIENT_INFO_RANGE))
        .unwrap_or(defaults.max_client_info);
    let sse_close_after = table
        .get("sse_close_after")
        .and_then(|v| duration(&v, "sse_close_after", Http::MAX_TIMEOUT));
    table.finish();
    Http {
        listen,
        allowed_hosts,
        allowed_origins,
        max_body,
        public_url,
        tls,
        shutdown_grace,
        header_timeout,
        idle_timeout,
        tls_handshake_timeout,
        max_connections,
        max_connections_per_client,
        max_sessions,
        max_sessions_per_principal,
        max_client_info,
        sse_close_after,
    }
}

/// `listen = "127.0.0.1:8080"`: an IP address and a port.
pub(super) fn listen(v: &Value<'_, '_>) -> Option<SocketAddr> {
    let raw = v.string()?;
    match raw.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            v.error(format!(
                "invalid address {raw:?}: expected IP:PORT such as \"127.0.0.1:8080\" or \
                 \"[::1]:8080\" (an IP address, not a host name)"
            ));
            None
        }
    }
}

/// An array of strings, each checked (and normalized) by `check`; `what` names one item in
/// messages. Duplicates are errors.
fn list(
    v: &Value<'_, '_>,
    what: &str,
    check: fn(&str) -> Result<String, String>,
) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for item in v.array()? {
        let Some(raw) = item.string() else {
            ok = false;
            continue;
        };
        match check(&raw) {
            Ok(value) if out.contains(&value) => {
                item.error(format!("{what} {raw:?} is listed twice"));
                ok = false;
            }
            Ok(value) => out.push(value),
            Err(message) => {
                item.error(message);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// An `allowed_hosts` entry: a host name or IP address (IPv6 in brackets), without port,
/// lowercased.
fn allowed_host(raw: &str) -> Result<String, String> {
    let host = raw.to_ascii_lowercase();
    if host.is_empty() {
        return Err("a host must not be empty".to_owned());
    }
    if host.contains("://") || host.contains('/') {
        return Err(format!(
            "invalid host {raw:?}: write the host name alone, such as \"mcp.example.com\" \
             (not a URL)"
        ));
    }
    let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '@' | '?' | '#');
    if host.chars().any(bad) {
        return Err(format!("invalid host {raw:?}"));
    }
    let port = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, tail)) if ip.parse::<std::net::Ipv6Addr>().is_ok() => !tail.is_empty(),
            _ => {
                return Err(format!(
                    "invalid host {raw:?}: an IPv6 address is written in brackets, such as \
                     \"[::1]\""
                ));
            }
        },
        None => host.contains(':'),
    };
    if port {
        return Err(format!(
            "invalid host {raw:?}: allowed hosts match any port; write the host without one"
        ));
    }
    Ok(host)
}

/// An `allowed_origins` entry: exactly `scheme://host[:port]`, lowercased.
fn allowed_origin(raw: &str) -> Result<String, String> {
    let origin = raw.to_ascii_lowercase();
    let expected = "expected `scheme://host[:port]` such as \"https://app.example.com\"";
    let Some((scheme, authority)) = origin.split_once("://") else {
        return Err(format!("invalid origin {raw:?}: {expected}"));
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "invalid origin {raw:?}: the scheme must be http or https"
        ));
    }
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "invalid origin {raw:?}: {expected}, with no path (an origin has no trailing `/`)"
        ));
    }
    if authority.parse::<http::uri::Authority>().is_err() {
        return Err(format!("invalid origin {raw:?}: {expected}"));
    }
    Ok(origin)
}

/// `public_url`: an absolute http(s) URL with a host, without query or fragment.
fn public_url(raw: &str) -> Result<String, String> {
    let expected = "expected an absolute URL such as \"https://mcp.example.com/mcp\"";
    let uri: http::Uri = raw
        .parse()
        .map_err(|_| format!("invalid URL {raw:?}: {expected}"))?;
    match uri.scheme_str() {
        Some("https" | "http") => {}
        _ => return Err(format!("invalid URL {raw:?}: {expected}")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("invalid URL {raw:?}: {expected}"));
    }
    if uri.query().is_some() || raw.contains('#') {
        return Err(format!(
            "invalid URL {raw:?}: a resource URL has no query or fragment"
        ));
    }
    Ok(raw.to_owned())
}

/// `tls = { cert = "cert.pem", key = "key.pem" }`: both files must exist.
fn tls(v: &Value<'_, '_>, dir: &Path) -> Option<Tls> {
    let table = v.table()?;
    let file = |key: &'static str, what: &str| {
        table.require(key).and_then(|v| {
            let raw = v.string()?;
            let path = resolve(&v, &raw, dir)?;
            check_path(&v, &raw, path, PathKind::File, what)
        })
    };
    let cert = file("cert", "certificate file");
    let key = file("key", "private key file");
    table.finish();
    Some(Tls {
        cert: cert?,
        key: key?,
    })
}

/// `[auth]`. `public_url` is `[http] public_url`, the default OAuth audience.
pub(super) fn auth(
    cx: &Context<'_>,
    table: &Table<'_, '_>,
    dir: &Path,
    public_url: Option<&str>,
) -> Auth {
    let api_keys = table
        .get("api_keys")
        .map(|v| api_keys(&v))
        .unwrap_or_default();
    let oauth = table
        .get("oauth")
        .and_then(|v| v.table())
        .and_then(|t| oauth(cx, &t, dir, public_url));
    table.finish();
    Auth { api_keys, oauth }
}

/// `[[auth.api_keys]]`: entries with errors are left out.
fn api_keys(v: &Value<'_, '_>) -> Vec<ApiKey> {
    let Some(items) = v.array() else {
        return Vec::new();
    };
    let mut keys: Vec<ApiKey> = Vec::new();
    for item in &items {
        let Some(table) = item.table() else {
            continue;
        };
        let principal = table.require("principal").and_then(|v| principal(&v));
        let roles = table.get("roles").and_then(|v| roles(&v));
        let sha256 = table.require("sha256").and_then(|v| {
            let digest = digest(&v)?;
            if keys.iter().any(|key| key.sha256 == digest) {
                v.error("this digest is already listed for another key: each key is listed once");
                return None;
            }
            Some(digest)
        });
        table.finish();
        if let (Some(principal), Some(sha256)) = (principal, sha256) {
            keys.push(ApiKey {
                principal,
                roles: roles.unwrap_or_default(),
                sha256,
                location: item.location(),
            });
        }
    }
    keys
}

/// A principal's name: not empty, no spaces or control characters.
fn principal(v: &Value<'_, '_>) -> Option<String> {
    let s = v.string()?;
    match super::names::check_principal(&s) {
        Ok(()) => Some(s),
        Err(message) => {
            v.error(message);
            None
        }
    }
}

/// `sha256 = "64 hex digits"`: the digest of an API key.
fn digest(v: &Value<'_, '_>) -> Option<[u8; 32]> {
    let s = v.string()?;
    let mut digest = [0u8; 32];
    match hex::decode_to_slice(&s, &mut digest) {
        Ok(()) => Some(digest),
        Err(_) => {
            let hint = if s.starts_with(crate::types::API_KEY_PREFIX) {
                ": this looks like the key itself; never put a key in the manifest, only the \
                 digest that `warden keygen` prints"
            } else {
                ""
            };
            v.error(format!(
                "expected the key's SHA-256 digest as 64 hex digits{hint}"
            ));
            None
        }
    }
}

/// `[auth.oauth]`.
fn oauth(
    cx: &Context<'_>,
    table: &Table<'_, '_>,
    dir: &Path,
    public_url: Option<&str>,
) -> Option<OAuth> {
    let table_error = |message: &str| cx.push(table.location().diagnostic(message));
    let issuer = table.require("issuer").and_then(|v| {
        let raw = v.string()?;
        url(&raw, false).map_err(|e| v.error(e)).ok()
    });
    let audience = match table.get("audience") {
        Some(v) => match v.raw() {
            DeValue::String(_) => v.string().map(|s| vec![s]),
            _ => list(&v, "audience", non_empty),
        }
        .filter(|list| {
            if list.is_empty() {
                v.error("at least one audience is needed");
            }
            !list.is_empty()
        }),
        None => match public_url {
            Some(url) => Some(vec![url.to_owned()]),
            None => {
                table_error(
                    "missing `audience`: set it, or `[http] public_url` (the default audience)",
                );
                None
            }
        },
    };
    let jwks_url = table.get("jwks_url");
    let jwks_file = table.get("jwks_file");
    let jwks = match (jwks_url, jwks_file) {
        (Some(v), None) => v.string().and_then(|raw| {
            url(&raw, true)
                .map(JwksSource::Url)
                .map_err(|e| v.error(e))
                .ok()
        }),
        (None, Some(v)) => v.string().and_then(|raw| {
            let path = resolve(&v, &raw, dir)?;
            check_path(&v, &raw, path, PathKind::File, "JWKS file").map(JwksSource::File)
        }),
        (Some(_), Some(v)) => {
            v.key_error("set `jwks_url` or `jwks_file`, not both");
            None
        }
        (None, None) => {
            table_error("missing `jwks_url` or `jwks_file`: where the signing keys are");
            None
        }
    };
    let algorithms = table
        .get("algorithms")
        .and_then(|v| {
            let list = list(&v, "algorithm", algorithm)?;
            if list.is_empty() {
                v.error("at least one algorithm is needed");
                return None;
            }
            Some(list)
        })
        .unwrap_or_else(|| {
            OAuth::DEFAULT_ALGORITHMS
                .iter()
                .map(|a| (*a).to_owned())
                .collect()
        });
    let leeway = table
        .get("leeway")
        .and_then(|v| leeway(&v))
        .unwrap_or(OAuth::DEFAULT_LEEWAY);
    let principal_claim = table
        .get("principal_claim")
        .and_then(|v| {
            let s = v.string()?;
            non_empty(&s).map_err(|e| v.error(e)).ok()
        })
        .unwrap_or_else(|| OAuth::DEFAULT_PRINCIPAL_CLAIM.to_owned());
    let required_scopes = table
        .get("required_scopes")
        .and_then(|v| list(&v, "scope", scope))
        .unwrap_or_default();
    let scope_roles = table
        .get("scope_roles")
        .and_then(|v| v.table())
        .map(|t| {
            let mut map = BTreeMap::new();
            for entry in t.entries() {
                match scope(entry.name()) {
                    Ok(name) => {
                        if let Some(roles) = roles(&entry) {
                            map.insert(name, roles);
                        }
                    }
                    Err(e) => entry.key_error(e),
                }
            }
            map
        })
        .unwrap_or_default();
    let roles_claim = table.get("roles_claim").and_then(|v| {
        let s = v.string()?;
        non_empty(&s).map_err(|e| v.error(e)).ok()
    });
    let authorization_servers = table
        .get("authorization_servers")
        .and_then(|v| list(&v, "authorization server", |raw| url(raw, false)));
    table.finish();
    let issuer = issuer?;
    Some(OAuth {
        authorization_servers: authorization_servers.unwrap_or_else(|| vec![issuer.clone()]),
        issuer,
        audience: audience?,
        jwks: jwks?,
        algorithms,
        leeway,
        principal_claim,
        required_scopes,
        scope_roles,
        roles_claim,
        location: table.location(),
    })
}

/// A non-empty string without control characters.
fn non_empty(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        Err("must not be empty".to_owned())
    } else if raw.chars().any(char::is_control) {
        Err(format!("{raw:?} contains a control character"))
    } else {
        Ok(raw.to_owned())
    }
}

/// An OAuth scope: printable ASCII without spaces, quotes or backslashes (RFC 6749 3.3).
fn scope(raw: &str) -> Result<String, String> {
    let valid = |c: char| c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c);
    if !raw.is_empty() && raw.chars().all(valid) {
        Ok(raw.to_owned())
    } else {
        Err(format!(
            "invalid scope {raw:?}: scopes are printable ASCII without spaces, quotes or \
             backslashes"
        ))
    }
}

/// A URL of the authorization server: `https://...`, or with `loopback_http`, also
/// `http://` on a loopback host (for local identity providers and tests).
fn url(raw: &str, loopback_http: bool) -> Result<String, String> {
    let uri: http::Uri = raw
        .parse()
        .map_err(|_| format!("invalid URL {raw:?}: expected an https:// URL"))?;
    let host = uri.host().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        _ if host.is_empty() => Err(format!("invalid URL {raw:?}: expected an https:// URL")),
        Some("https") => Ok(raw.to_owned()),
        Some("http") if loopback_http && loopback => Ok(raw.to_owned()),
        Some("http") if loopback_http => Err(format!(
            "invalid URL {raw:?}: keys are fetched over https:// (http:// only on a loopback host)"
        )),
        // Issuers are identifiers compared exactly: http:// ones exist in local setups.
        Some("http") if loopback => Ok(raw.to_owned()),
        _ => Err(format!("invalid URL {raw:?}: expected an https:// URL")),
    }
}

/// One `algorithms` entry: a public-key signature algorithm.
fn algorithm(raw: &str) -> Result<String, String> {
    if OAuth::SUPPORTED_ALGORITHMS.contains(&raw) {
        return Ok(raw.to_owned());
    }
    let upper = raw.to_ascii_uppercase();
    let why = if upper == "NONE" {
        "unsigned tokens are never accepted".to_owned()
    } else if upper.starts_with("HS") {
        "HMAC algorithms need a shared secret and are not accepted; use a public-key algorithm"
            .to_owned()
    } else {
        format!("expected one of {}", OAuth::SUPPORTED_ALGORITHMS.join(", "))
    };
    Err(format!("algorithm {raw:?} is not accepted: {why}"))
}

/// `leeway = "60s"`: zero or more, at most [`OAuth::MAX_LEEWAY`].
fn leeway(v: &Value<'_, '_>) -> Option<Duration> {
    match v.raw() {
        DeValue::String(s) if parse_duration(s).is_ok_and(|d| d.is_zero()) => Some(Duration::ZERO),
        _ => duration(v, "leeway", OAuth::MAX_LEEWAY),
    }
}
