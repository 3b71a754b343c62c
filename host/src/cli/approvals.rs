//! `warden approvals list | allow ID | deny ID`: the operator's side of the approval channel
//! (`GET /approvals`, `POST /approvals/{id}` on a running `warden serve --http`).
//!
//! One HTTP/1.1 exchange per command through [`warden::fetch`] (rustls for `https://`,
//! checked against the `webpki-roots` trust anchors, as JWKS fetches). The API key
//! comes from `--key-file` or `WARDEN_API_KEY`, never from the command line (`ps` shows it),
//! and never crosses the network in clear: plain `http://` is accepted to a loopback host only.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use serde_json::{Value, json};

use warden::fetch::{FetchError, Url, UrlError};
use warden::gate::PendingApproval;
use warden::manifest::Manifest;

use super::write_stdout;

/// The environment variable holding the operator's API key.
pub(super) const KEY_VARIABLE: &str = "WARDEN_API_KEY";
/// Longest an exchange may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read.
const MAX_ANSWER: usize = 16 << 20;
/// The widest an argument preview is shown in the table.
const MAX_SHOWN_ARGUMENTS: usize = 60;

/// Where the server is and how to authenticate to it.
pub(super) struct Remote {
    /// `--url`.
    pub url: Option<String>,
    /// `--key-file`.
    pub key_file: Option<PathBuf>,
    /// `--manifest`.
    pub manifest: Option<PathBuf>,
}

/// What to do.
pub(super) enum Action {
    List { json: bool },
    Answer { id: String, allow: bool },
}

/// `warden approvals ...`.
pub(super) async fn approvals(remote: Remote, action: Action) -> Result<ExitCode> {
    let base = Base::parse(&base_url(&remote)?)?;
    let key = api_key(remote.key_file.as_deref())?;
    match action {
        Action::List { json } => {
            let body = exchange(&base, &key, http::Method::GET, "/approvals", None).await?;
            let pending: Vec<PendingApproval> =
                serde_json::from_value(body.get("pending").cloned().unwrap_or(Value::Null))
                    .context("the server's answer is not a list of waiting calls")?;
            if json {
                write_stdout(&format!("{}\n", serde_json::to_string_pretty(&pending)?));
            } else {
                write_stdout(&table(&pending));
            }
        }
        Action::Answer { id, allow } => {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                bail!("{id:?} is not a call id: copy it from `warden approvals list`");
            }
            let decision = if allow { "allow" } else { "deny" };
            let body = json!({ "decision": decision }).to_string();
            let answer = exchange(
                &base,
                &key,
                http::Method::POST,
                &format!("/approvals/{id}"),
                Some(body),
            )
            .await?;
            let text = |key: &str| answer[key].as_str().unwrap_or("?").to_owned();
            let done = if allow { "allowed" } else { "denied" };
            write_stdout(&format!(
                "{done} call {} of {} by {}\n",
                text("id"),
                text("tool"),
                text("principal")
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--url`, else the manifest's `[http] listen` (a wildcard address reached on loopback).
fn base_url(remote: &Remote) -> Result<String> {
    if let Some(url) = &remote.url {
        return Ok(url.clone());
    }
    let path = match &remote.manifest {
        Some(path) => path.clone(),
        None => PathBuf::from("warden.toml"),
    };
    if !path.exists() {
        bail!(
            "no server to ask: pass --url http://HOST:PORT (the address `warden serve --http` \
             listens on), or --manifest FILE with an [http] listen address"
        );
    }
    let manifest = Manifest::load(&path)
        .map_err(|e| anyhow::anyhow!("invalid manifest (or pass --url):\n{e}"))?;
    let Some(mut listen) = manifest.http.listen else {
        bail!(
            "{} has no [http] listen address: pass --url http://HOST:PORT",
            path.display()
        );
    };
    if listen.ip().is_unspecified() {
        listen.set_ip(match listen.ip() {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        });
    }
    let scheme = if manifest.http.tls.is_some() {
        "https"
    } else {
        "http"
    };
    Ok(format!("{scheme}://{listen}"))
}

/// The key from `--key-file` (its first line, trimmed), else `WARDEN_API_KEY`.
fn api_key(file: Option<&Path>) -> Result<String> {
    let key = match file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the key file {}", file.display()))?;
            text.lines().next().unwrap_or_default().trim().to_owned()
        }
        None => std::env::var(KEY_VARIABLE)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    };
    if key.is_empty() {
        bail!(
            "no API key: put the operator's key in a file and pass --key-file PATH, or set \
             {KEY_VARIABLE} (make one with `warden keygen --principal NAME --roles ROLE`, ROLE \
             one of [approval] operators)"
        );
    }
    if key.bytes().any(|b| !b.is_ascii_graphic()) {
        bail!(
            "the API key holds spaces or control characters: check the key file or {KEY_VARIABLE}"
        );
    }
    Ok(key)
}

/// A checked base URL: [`warden::fetch::Url`] (https, or http to a loopback host), without a
/// query.
#[derive(Debug)]
struct Base {
    url: Url,
    /// The path prefix (no trailing `/`), for a server behind a proxy under a path.
    prefix: String,
}

impl Base {
    fn parse(url: &str) -> Result<Base> {
        let parsed = Url::parse(url).map_err(|error| match error {
            UrlError::PlainHttp => anyhow::anyhow!(
                "--url {url:?}: plain http would send the API key in clear; use https:// (the \
                 server's [http] tls), or a loopback address"
            ),
            UrlError::Scheme => {
                anyhow::anyhow!("--url {url:?}: the scheme must be http:// or https://")
            }
            other => anyhow::anyhow!("--url {url:?}: {other} (write http://HOST:PORT)"),
        })?;
        if parsed.has_query() {
            bail!("--url {url:?}: give the server's base URL, without a query");
        }
        Ok(Base {
            prefix: parsed.path().trim_end_matches('/').to_owned(),
            url: parsed,
        })
    }

    fn shown(&self) -> String {
        self.url.shown().trim_end_matches('/').to_owned()
    }
}

/// One request to the server; the JSON answer of a 200, else an error that says what the
/// status means.
async fn exchange(
    base: &Base,
    key: &str,
    method: http::Method,
    path: &str,
    body: Option<String>,
) -> Result<Value> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", base.prefix))
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::AUTHORIZATION, format!("Bearer {key}"));
    if body.is_some() {
        request = request.header(http::header::CONTENT_TYPE, "application/json");
    }
    let body = Bytes::from(body.unwrap_or_default());
    let (status, text) = warden::fetch::send(&base.url, request, body, MAX_ANSWER, TIMEOUT)
        .await
        .map_err(|error| match error {
            FetchError::Connect(_) | FetchError::Resolve { .. } => anyhow::anyhow!(
                "{error}: is `warden serve --http` running at {}?",
                base.shown()
            ),
            other => anyhow::anyhow!("{}: {other}", base.shown()),
        })?;
    let answer: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
    let said = answer["error"].as_str().unwrap_or_default().to_owned();
    let said = if said.is_empty() {
        String::from_utf8_lossy(&text)
            .trim()
            .chars()
            .take(300)
            .collect()
    } else {
        said
    };
    match status {
        http::StatusCode::OK if answer.is_object() => Ok(answer),
        http::StatusCode::OK => bail!("the server's answer is not JSON: {said}"),
        http::StatusCode::UNAUTHORIZED => bail!(
            "the server did not accept the API key (401): check --key-file or {KEY_VARIABLE} \
             against the server's [[auth.api_keys]]"
        ),
        http::StatusCode::FORBIDDEN => bail!("refused (403): {said}"),
        http::StatusCode::NOT_FOUND if said == "not found" => bail!(
            "{} has no approval channel (404): its manifest sets no [approval] operators, or \
             the URL is not a warden server's",
            base.shown()
        ),
        http::StatusCode::NOT_FOUND => bail!(
            "{said} (404): it was answered already, gave up after [approval] timeout, or the \
             id is wrong; see `warden approvals list`"
        ),
        other => bail!("the server answered {other}: {said}"),
    }
}

/// The waiting calls as a table, oldest first.
fn table(pending: &[PendingApproval]) -> String {
    if pending.is_empty() {
        return "no call is waiting for approval\n".to_owned();
    }
    let header = [
        "ID",
        "TOOL",
        "PRINCIPAL",
        "WAITING SINCE",
        "REASON",
        "ARGUMENTS",
    ];
    let rows: Vec<[String; 6]> = pending
        .iter()
        .map(|call| {
            [
                call.id.clone(),
                call.tool.clone(),
                call.principal.clone(),
                call.asked_at.clone(),
                call.reason.clone(),
                shorten(&one_line(&call.arguments), MAX_SHOWN_ARGUMENTS),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let last = cells.len() - 1;
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i == last {
                let _ = writeln!(out, "{cell}");
            } else {
                let _ = write!(out, "{cell:<width$}  ");
            }
        }
    };
    line(&header.map(str::to_owned));
    for row in &rows {
        line(row);
    }
    out
}

/// Control characters (newlines in arguments) as spaces, so a row stays one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `text` cut to `max` characters, with `...` when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(3)).collect();
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_crosses_the_network_in_clear() {
        assert!(Base::parse("http://127.0.0.1:8080").is_ok());
        assert!(Base::parse("http://localhost:8080/").is_ok());
        assert!(Base::parse("https://warden.example.com").is_ok());
        for bad in [
            "http://warden.example.com:8080",
            "http://10.0.0.1:8080",
            "ftp://127.0.0.1",
            "https://user:pw@warden.example.com",
            "127.0.0.1:8080",
        ] {
            assert!(Base::parse(bad).is_err(), "{bad} accepted");
        }
        let base = Base::parse("https://ops.example.com/warden/").expect("url");
        assert_eq!(base.prefix, "/warden");
        assert_eq!(base.shown(), "https://ops.example.com/warden");
    }

    #[test]
    fn a_table_row_is_one_line() {
        let call = PendingApproval {
            id: "abc".into(),
            tool: "files__write_text".into(),
            plugin: "files".into(),
            principal: "bot".into(),
            arguments: "{\"text\":\"a\nb\"}".into(),
            reason: "ask".into(),
            asked_at: "2026-01-01T00:00:00.000Z".into(),
        };
        let table = table(&[call]);
        assert_eq!(table.lines().count(), 2, "{table}");
        assert!(table.starts_with("ID "), "{table}");
    }
}
