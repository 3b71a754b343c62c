//! warden's own outbound HTTP requests (JWKS fetches, `warden approvals`): one HTTP/1.1
//! exchange with hyper over a tokio `TcpStream`, rustls for `https://` with the Mozilla roots
//! of `webpki-roots` ([`crate::tls`]). Plugins' requests go through `capabilities/net`, never
//! here.
//!
//! `https://` is required, except `http://` to a loopback host (`localhost`, `127.0.0.0/8`,
//! `[::1]`), which tests and local servers use; a loopback name must resolve to loopback
//! addresses only, so nothing sent in clear leaves the machine. Redirects are not followed,
//! the body is limited, and the whole exchange, from resolving the name to the end of the
//! body, has a deadline.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A checked URL: `https://`, or `http://` to a loopback host; no user info.
#[derive(Clone, Debug)]
pub struct Url {
    uri: http::Uri,
    host: String,
    port: u16,
    tls: bool,
}

/// Why a URL is refused.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("not a URL: {0}")]
    NotAUrl(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("user info in the URL is not supported")]
    UserInfo,
    #[error("plain http is only allowed to a loopback host")]
    PlainHttp,
    #[error("the scheme must be https")]
    Scheme,
}

/// Why an exchange failed: one line, for a log or an operator.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("{0} resolves to a non-loopback address")]
    NotLoopback(String),
    #[error("cannot connect to {0}")]
    Connect(String),
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("{0}")]
    Http(String),
    #[error("no complete answer within {}s", .0.as_secs())]
    Timeout(Duration),
}

impl Url {
    /// Reads and checks `url`.
    pub fn parse(url: &str) -> Result<Url, UrlError> {
        let uri: http::Uri = url.parse().map_err(|e| UrlError::NotAUrl(format!("{e}")))?;
        let authority = uri.authority().ok_or(UrlError::NoHost)?;
        if authority.as_str().contains('@') {
            return Err(UrlError::UserInfo);
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if is_loopback_name(&host) => false,
            Some("http") => return Err(UrlError::PlainHttp),
            _ => return Err(UrlError::Scheme),
        };
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Url {
            uri,
            host,
            port,
            tls,
        })
    }

    /// The URL without its query (which may hold a secret), for logs and messages.
    pub fn shown(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority(), self.uri.path())
    }

    /// `host[:port]` as written.
    pub fn authority(&self) -> &str {
        self.uri.authority().map_or("", |a| a.as_str())
    }

    /// The path and query, the target of a request to the URL itself.
    pub fn target(&self) -> &str {
        self.uri.path_and_query().map_or("/", |p| p.as_str())
    }

    /// The path alone.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// Whether the URL has a query.
    pub fn has_query(&self) -> bool {
        self.uri.query().is_some()
    }
}

/// `localhost`, or an IP address literal that is loopback.
fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Send `request` to `url`'s server (its URI is the request target; `Host` and `User-Agent`
/// are set here) and return the status and the body, at most `max_body` bytes, all within
/// `timeout`.
pub async fn send(
    url: &Url,
    request: http::request::Builder,
    body: Bytes,
    max_body: usize,
    timeout: Duration,
) -> Result<(http::StatusCode, Bytes), FetchError> {
    tokio::time::timeout(timeout, exchange(url, request, body, max_body))
        .await
        .map_err(|_| FetchError::Timeout(timeout))?
}

/// Any stream TLS or plain TCP gives.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

async fn exchange(
    url: &Url,
    request: http::request::Builder,
    body: Bytes,
    max_body: usize,
) -> Result<(http::StatusCode, Bytes), FetchError> {
    let stream = connect(url).await?;
    let io: Box<dyn Io> = if url.tls {
        let tls_error = |reason: String| FetchError::Tls {
            host: url.host.clone(),
            reason,
        };
        let server_name = match url.host.parse::<IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
            Err(_) => rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|e| tls_error(format!("invalid server name: {e}")))?,
        };
        let connector =
            tokio_rustls::TlsConnector::from(crate::tls::client_config().map_err(tls_error)?);
        let tls = connector
            .connect(server_name, stream)
            .await
            .map_err(|e| tls_error(e.to_string()))?;
        Box::new(tls)
    } else {
        Box::new(stream)
    };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(io))
            .await
            .map_err(|e| FetchError::Http(format!("HTTP handshake failed: {e}")))?;
    let driver = tokio::spawn(connection);
    let request = request
        .header(http::header::HOST, url.authority())
        .header(
            http::header::USER_AGENT,
            concat!("warden/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(body))
        .map_err(|e| FetchError::Http(format!("invalid request: {e}")))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| FetchError::Http(format!("request failed: {e}")))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), max_body)
            .collect()
            .await
            .map_err(|e| FetchError::Http(format!("reading the body failed: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
    .await;
    driver.abort();
    result
}

/// A connection to the first of `url`'s addresses that answers; plain `http://` only to
/// loopback addresses.
async fn connect(url: &Url) -> Result<TcpStream, FetchError> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(|e| FetchError::Resolve {
            host: url.host.clone(),
            reason: e.to_string(),
        })?
        .collect();
    if !url.tls
        && addresses
            .iter()
            .any(|addr| !addr.ip().to_canonical().is_loopback())
    {
        return Err(FetchError::NotLoopback(url.host.clone()));
    }
    let mut last_error = FetchError::Resolve {
        host: url.host.clone(),
        reason: "no address".to_owned(),
    };
    for addr in addresses {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = FetchError::Connect(format!("{addr}: {e}")),
        }
    }
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_unless_loopback() {
        assert!(Url::parse("https://idp.example.com/jwks").is_ok());
        assert!(Url::parse("http://127.0.0.1:8080/jwks").is_ok());
        assert!(Url::parse("http://localhost/jwks").is_ok());
        assert!(Url::parse("http://[::1]:9/jwks").is_ok());
        for bad in [
            "http://idp.example.com/jwks",
            "http://10.0.0.1/jwks",
            "ftp://idp.example.com/jwks",
            "https://user:pw@idp.example.com/jwks",
            "/jwks",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad} accepted");
        }
        let url = Url::parse("https://idp.example.com:8443/keys?x=secret").expect("valid");
        assert_eq!(url.shown(), "https://idp.example.com:8443/keys");
        assert_eq!(url.target(), "/keys?x=secret");
    }
}
