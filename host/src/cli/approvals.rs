//! `warden approvals list | allow ID | deny ID`: the operator's side of the approval channel
//! (`GET /approvals`, `POST /approvals/{id}` on a running `warden serve --http`).
//!
//! One HTTP/1.1 exchange per command with hyper over a tokio `TcpStream` (rustls for
//! `https://`, checked against the `webpki-roots` trust anchors, as JWKS fetches). The API key
//! comes from `--key-file` or `WARDEN_API_KEY`, never from the command line (`ps` shows it),
//! and never crosses the network in clear: plain `http://` is accepted to a loopback host only.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

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

/// A checked base URL.
#[derive(Debug)]
struct Base {
    authority: String,
    host: String,
    port: u16,
    tls: bool,
    /// The path prefix (no trailing `/`), for a server behind a proxy under a path.
    prefix: String,
}

impl Base {
    fn parse(url: &str) -> Result<Base> {
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("--url {url:?} is not a URL such as http://127.0.0.1:8080"))?;
        let authority = uri
            .authority()
            .with_context(|| format!("--url {url:?} has no host: write http://HOST:PORT"))?;
        if authority.as_str().contains('@') {
            bail!("--url {url:?}: user info in the URL is not supported");
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if is_loopback_name(&host) => false,
            Some("http") => bail!(
                "--url {url:?}: plain http would send the API key in clear; use https:// (the \
                 server's [http] tls), or a loopback address"
            ),
            _ => bail!("--url {url:?}: the scheme must be http:// or https://"),
        };
        if uri.query().is_some() {
            bail!("--url {url:?}: give the server's base URL, without a query");
        }
        Ok(Base {
            authority: authority.as_str().to_owned(),
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            host,
            tls,
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    fn shown(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority, self.prefix)
    }
}

/// `localhost`, or an IP address literal that is loopback.
fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Any stream TLS or plain TCP gives.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// One request to the server; the JSON answer of a 200, else an error that says what the
/// status means.
async fn exchange(
    base: &Base,
    key: &str,
    method: http::Method,
    path: &str,
    body: Option<String>,
) -> Result<Value> {
    let target = format!("{}{path}", base.prefix);
    let (status, text) = tokio::time::timeout(TIMEOUT, send(base, key, method, &target, body))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "{} did not answer within {}s",
                base.shown(),
                TIMEOUT.as_secs()
            )
        })??;
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

async fn send(
    base: &Base,
    key: &str,
    method: http::Method,
    target: &str,
    body: Option<String>,
) -> Result<(http::StatusCode, Bytes)> {
    let stream = TcpStream::connect((base.host.as_str(), base.port))
        .await
        .with_context(|| {
            format!(
                "cannot connect to {}: is `warden serve --http` running there?",
                base.shown()
            )
        })?;
    let io: Box<dyn Io> = if base.tls {
        let server_name = match base.host.parse::<IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
            Err(_) => rustls::pki_types::ServerName::try_from(base.host.clone())
                .with_context(|| format!("{:?} is not a TLS server name", base.host))?,
        };
        let config = warden::tls::client_config().map_err(anyhow::Error::msg)?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(server_name, stream)
            .await
            .with_context(|| format!("TLS with {} failed", base.shown()))?;
        Box::new(tls)
    } else {
        Box::new(stream)
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .context("HTTP handshake failed")?;
    let driver = tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(method)
        .uri(target)
        .header(http::header::HOST, &base.authority)
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::AUTHORIZATION, format!("Bearer {key}"))
        .header(
            http::header::USER_AGENT,
            concat!("warden/", env!("CARGO_PKG_VERSION")),
        );
    if body.is_some() {
        request = request.header(http::header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .context("invalid request")?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .with_context(|| format!("the request to {} failed", base.shown()))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the answer failed: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
    .await;
    driver.abort();
    result
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
        assert_eq!(base.port, 443);
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
