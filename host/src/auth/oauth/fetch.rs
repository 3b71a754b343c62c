//! Fetching a JWKS from its URL: one HTTPS GET with hyper and rustls.
//!
//! `https://` is required, except `http://` to a loopback host (`localhost`, `127.0.0.0/8`,
//! `[::1]`), which tests and a local identity provider use; a loopback name must resolve to
//! loopback addresses only. The server's certificate is checked against the Mozilla roots of
//! `webpki-roots`. Redirects are not followed, anything but `200` is a failure, the body is
//! limited to [`MAX_JWKS_BYTES`] and the whole exchange to [`FETCH_TIMEOUT`].

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Largest JWKS document accepted.
pub(super) const MAX_JWKS_BYTES: usize = 1 << 20;
/// Longest a fetch may take, from resolving the name to the end of the body.
pub(super) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A checked `jwks_url`.
#[derive(Clone, Debug)]
pub(super) struct JwksUrl {
    uri: http::Uri,
    host: String,
    port: u16,
    tls: bool,
}

impl JwksUrl {
    /// Reads and checks `url`; the error says what is wrong with it.
    pub(super) fn parse(url: &str) -> Result<JwksUrl, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        let authority = uri.authority().ok_or("the URL has no host")?;
        if authority.as_str().contains('@') {
            return Err("user info in the URL is not supported".into());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if is_loopback_name(&host) => false,
            Some("http") => return Err("plain http is only allowed to a loopback host".into()),
            _ => return Err("the scheme must be https".into()),
        };
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(JwksUrl {
            uri,
            host,
            port,
            tls,
        })
    }

    /// The URL without its query, for logs.
    pub(super) fn shown(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let authority = self.uri.authority().map_or("", |a| a.as_str());
        format!("{scheme}://{authority}{}", self.uri.path())
    }
}

/// `localhost`, or an IP address literal that is loopback.
fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// GETs `url` and returns its body; the error is one line for the log.
pub(super) async fn get(url: &JwksUrl) -> Result<Bytes, String> {
    tokio::time::timeout(FETCH_TIMEOUT, exchange(url))
        .await
        .map_err(|_| format!("no complete answer within {}s", FETCH_TIMEOUT.as_secs()))?
}

/// Any stream TLS or plain TCP gives.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

async fn exchange(url: &JwksUrl) -> Result<Bytes, String> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .collect();
    if !url.tls
        && addresses
            .iter()
            .any(|addr| !addr.ip().to_canonical().is_loopback())
    {
        return Err(format!("{} resolves to a non-loopback address", url.host));
    }
    let mut last_error = format!("{} resolves to no address", url.host);
    let mut stream = None;
    for addr in addresses {
        match TcpStream::connect(addr).await {
            Ok(connected) => {
                stream = Some(connected);
                break;
            }
            Err(e) => last_error = format!("cannot connect to {addr}: {e}"),
        }
    }
    let stream = stream.ok_or(last_error)?;

    let io: Box<dyn Io> = if url.tls {
        let server_name = match url.host.parse::<IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
            Err(_) => rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|e| format!("invalid TLS server name: {e}"))?,
        };
        let connector = tokio_rustls::TlsConnector::from(crate::tls::client_config()?);
        let tls = connector
            .connect(server_name, stream)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        Box::new(tls)
    } else {
        Box::new(stream)
    };

    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let driver = tokio::spawn(connection);
    let authority = url.uri.authority().map_or("", |a| a.as_str());
    let target = url.uri.path_and_query().map_or("/", |p| p.as_str());
    let request = http::Request::get(target)
        .header(http::header::HOST, authority)
        .header(
            http::header::ACCEPT,
            "application/jwk-set+json, application/json",
        )
        .header(
            http::header::USER_AGENT,
            concat!("warden/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("invalid request: {e}"))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if response.status() != http::StatusCode::OK {
            return Err(format!("answered {}", response.status()));
        }
        Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map(|body| body.to_bytes())
            .map_err(|e| format!("reading the body failed: {e}"))
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_unless_loopback() {
        assert!(JwksUrl::parse("https://idp.example.com/jwks").is_ok());
        assert!(JwksUrl::parse("http://127.0.0.1:8080/jwks").is_ok());
        assert!(JwksUrl::parse("http://localhost/jwks").is_ok());
        assert!(JwksUrl::parse("http://[::1]:9/jwks").is_ok());
        for bad in [
            "http://idp.example.com/jwks",
            "http://10.0.0.1/jwks",
            "ftp://idp.example.com/jwks",
            "https://user:pw@idp.example.com/jwks",
            "/jwks",
        ] {
            assert!(JwksUrl::parse(bad).is_err(), "{bad} accepted");
        }
        let url = JwksUrl::parse("https://idp.example.com:8443/keys?x=secret").unwrap();
        assert_eq!(url.shown(), "https://idp.example.com:8443/keys");
    }
}
