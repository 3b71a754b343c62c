//! `wasi:http/outgoing-handler`: warden sends every request a plugin makes, after checking it.
//!
//! For each request, in order:
//!
//! 1. the URL's scheme, host and port must match an `allow_hosts` pattern
//!    ([`NetPolicy::admit`]), and the call must be under `max_requests`;
//! 2. the host is resolved once (an IP literal is not resolved), and every address it resolved
//!    to is checked against the address rules ([`NetPolicy::permitted_addresses`]): restricted
//!    addresses (loopback, private, metadata...) are dropped unless a pattern grants them
//!    explicitly;
//! 3. warden connects to a checked address itself, never by name, so a second DNS answer
//!    cannot swap the address after the check (DNS rebinding);
//! 4. TLS for `https` (rustls, the Mozilla roots of `webpki-roots`, the server name checked
//!    against the URL's host), then HTTP/1.1;
//! 5. the response must start within `request_timeout` and its body end within it too, and a
//!    body longer than `max_response` is cut there with an error.
//!
//! A refusal or failure reaches the plugin as `error-code.internal-error` with a message that
//! names the URL and the reason (`warden refused http://10.0.0.1/: ...`), so whatever the
//! plugin shows the agent says what happened. URLs in messages and logs show scheme, authority
//! and path, never the query, and the plugin's secret values are scrubbed from them.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tracing::Instrument;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::Host;
use super::{NetPolicy, Refusal, Scheme, Target, Usage};
use crate::manifest::{ByteSize, format_duration};

/// The future a plugin's request resolves to, and the connection it leaves running while the
/// body is read.
type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;

/// The `wasi:http` hooks of one call.
pub(super) struct OutboundHttp {
    policy: Arc<NetPolicy>,
    usage: Arc<Usage>,
}

impl OutboundHttp {
    pub(super) fn new(policy: Arc<NetPolicy>, usage: Arc<Usage>) -> OutboundHttp {
        OutboundHttp { policy, usage }
    }

    /// Step 1: the URL against the patterns, and the request count.
    fn admit(&self, uri: &http::Uri) -> Result<Target, Refusal> {
        let authority = uri.authority().map_or("", |a| a.as_str());
        if authority.contains('@') {
            return Err(Refusal(
                "user info in URLs is not supported: send credentials in a header".into(),
            ));
        }
        let target = self.policy.admit(
            uri.scheme_str().unwrap_or("https"),
            uri.host().unwrap_or(""),
            uri.port_u16(),
        )?;
        self.usage.count(&self.policy.limits)?;
        Ok(target)
    }
}

impl WasiHttpHooks for OutboundHttp {
    /// Every scheme reaches [`WasiHttpHooks::send_request`], which refuses the unsupported ones
    /// with a message (wasmtime's own refusal carries none).
    fn is_supported_scheme(&mut self, _scheme: &http::uri::Scheme) -> bool {
        true
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let url = shown_url(&self.policy, request.uri());
        let admitted = self.admit(request.uri());
        let policy = self.policy.clone();
        // wasmtime-wasi-http runs this on a task of its own: keep the call's span on it.
        let send = async move {
            match admitted {
                Ok(target) => send(policy, target, url, request, options).await,
                Err(refusal) => Err(refuse(&policy, &url, refusal)),
            }
        };
        Box::new(send.instrument(tracing::Span::current()))
    }
}

/// The URL as shown in messages and logs: scheme, authority and path, the query elided, the
/// plugin's secrets scrubbed.
fn shown_url(policy: &NetPolicy, uri: &http::Uri) -> Arc<str> {
    let scheme = uri.scheme_str().unwrap_or("https");
    let authority = uri.authority().map_or("", |a| a.as_str());
    let query = if uri.query().is_some() { "?…" } else { "" };
    let url = format!("{scheme}://{authority}{}{query}", uri.path());
    Arc::from(policy.scrub(&url).as_ref())
}

/// Log a refusal and turn it into the error the plugin sees.
fn refuse(policy: &NetPolicy, url: &str, refusal: Refusal) -> Error {
    // A reason may quote the host, which a plugin may have built from a secret.
    let reason = policy.scrub(&refusal.0);
    tracing::info!(plugin = policy.plugin(), url, %reason, "outbound request refused");
    Error::InternalError(Some(format!("warden refused {url}: {reason}")))
}

/// A failure after the request was admitted, as the plugin sees it.
fn failed(policy: &NetPolicy, url: &str, what: impl std::fmt::Display) -> Error {
    let what = policy.scrub(&what.to_string()).into_owned();
    tracing::debug!(plugin = policy.plugin(), url, error = %what, "outbound request failed");
    Error::InternalError(Some(format!("{url}: {what}")))
}

/// A stream hyper can speak HTTP over: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Steps 2 to 5, for an admitted request.
async fn send(
    policy: Arc<NetPolicy>,
    target: Target,
    url: Arc<str>,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let limits = *policy.limits();
    let started = Instant::now();
    let deadline = started + limits.request_timeout;
    let connect_timeout = shorter(
        limits.connect_timeout,
        options.and_then(|o| o.connect_timeout),
    );
    let connect_deadline = (started + connect_timeout).min(deadline);
    let connect_limit = format!("connect_timeout = {}", format_duration(connect_timeout));

    // 2. Resolve once; check every address.
    let resolved: Vec<IpAddr> = match &target.host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(name) => {
            let lookup = tokio::net::lookup_host((name.as_str(), target.port));
            match tokio::time::timeout_at(connect_deadline, lookup).await {
                Err(_) => {
                    return Err(failed(
                        &policy,
                        &url,
                        format!("looking up {name} timed out ({connect_limit})"),
                    ));
                }
                Ok(Err(e)) => {
                    return Err(failed(&policy, &url, format!("cannot resolve {name}: {e}")));
                }
                Ok(Ok(addresses)) => addresses.map(|a| a.ip()).collect(),
            }
        }
    };
    let permitted = policy
        .permitted_addresses(&target, &resolved)
        .map_err(|refusal| refuse(&policy, &url, refusal))?;

    // 3. Connect to a checked address.
    let mut stream = None;
    let mut last_error = String::from("no address to connect to");
    for ip in permitted {
        let addr = SocketAddr::new(ip, target.port);
        match tokio::time::timeout_at(connect_deadline, TcpStream::connect(addr)).await {
            Ok(Ok(connected)) => {
                stream = Some((connected, addr));
                break;
            }
            Ok(Err(e)) => last_error = format!("cannot connect to {addr}: {e}"),
            Err(_) => {
                last_error = format!("connecting to {addr} timed out ({connect_limit})");
                break;
            }
        }
    }
    let Some((stream, addr)) = stream else {
        return Err(failed(&policy, &url, last_error));
    };
    tracing::debug!(plugin = policy.plugin(), url = &*url, %addr, "outbound request");

    // 4. TLS, then HTTP/1.1.
    let io: Box<dyn Io> = match target.scheme {
        Scheme::Https => {
            let config = crate::tls::client_config().map_err(|e| failed(&policy, &url, e))?;
            let server_name = match &target.host {
                Host::Ip(ip) => rustls::pki_types::ServerName::IpAddress((*ip).into()),
                Host::Name(name) => rustls::pki_types::ServerName::try_from(name.clone())
                    .map_err(|e| failed(&policy, &url, format!("invalid TLS server name: {e}")))?,
            };
            let connector = tokio_rustls::TlsConnector::from(config);
            match tokio::time::timeout_at(connect_deadline, connector.connect(server_name, stream))
                .await
            {
                Ok(Ok(tls)) => Box::new(tls),
                Ok(Err(e)) => {
                    return Err(failed(&policy, &url, format!("TLS handshake failed: {e}")));
                }
                Err(_) => {
                    return Err(failed(
                        &policy,
                        &url,
                        format!("TLS handshake timed out ({connect_limit})"),
                    ));
                }
            }
        }
        Scheme::Http | Scheme::Tcp | Scheme::Udp => Box::new(stream),
    };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, WasiBody>(TokioIo::new(io))
            .await
            .map_err(|e| failed(&policy, &url, format!("HTTP handshake failed: {e}")))?;

    // The request line takes the origin form (`/path?query`); the Host header names the host.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|e| failed(&policy, &url, format!("invalid request target: {e}")))?;

    // 5. Wait for the response head while driving the connection.
    let head_deadline = match options.and_then(|o| o.first_byte_timeout) {
        Some(first_byte) => (Instant::now() + first_byte).min(deadline),
        None => deadline,
    };
    let mut connection = Some(connection);
    let mut response = std::pin::pin!(sender.send_request(request));
    let head = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = response.as_mut().poll(cx) {
            return Poll::Ready(
                result.map_err(|e| failed(&policy, &url, format!("request failed: {e}"))),
            );
        }
        if let Some(conn) = connection.as_mut()
            && let Poll::Ready(result) = Pin::new(conn).poll(cx)
        {
            connection = None;
            if let Err(e) = result {
                return Poll::Ready(Err(failed(
                    &policy,
                    &url,
                    format!("connection failed: {e}"),
                )));
            }
            return response
                .as_mut()
                .poll(cx)
                .map_err(|e| failed(&policy, &url, format!("request failed: {e}")));
        }
        Poll::Pending
    });
    let response = match tokio::time::timeout_at(head_deadline, head).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(failed(
                &policy,
                &url,
                format!(
                    "no response within {} (request_timeout)",
                    format_duration(head_deadline - started)
                ),
            ));
        }
    };
    let io: IoFuture = Box::new(async move {
        match connection {
            Some(connection) => connection.await.map_err(Error::from),
            None => Ok(()),
        }
    });
    let response = response.map(|incoming| {
        LimitedBody {
            inner: incoming,
            remaining: limits.max_response,
            limit: limits.max_response,
            over: false,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            timeout: limits.request_timeout,
            url: url.clone(),
            policy: policy.clone(),
        }
        .boxed_unsync()
    });
    Ok((response, io))
}

/// The shorter of the manifest's limit and the plugin's own option, if it set one.
fn shorter(limit: Duration, requested: Option<Duration>) -> Duration {
    requested.map_or(limit, |requested| requested.min(limit))
}

/// A response body that ends with an error past `max_response` bytes or past the request's
/// deadline.
struct LimitedBody {
    inner: hyper::body::Incoming,
    remaining: u64,
    limit: u64,
    /// The limit was reached and more data arrived: the next poll fails.
    over: bool,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    url: Arc<str>,
    policy: Arc<NetPolicy>,
}

impl LimitedBody {
    fn too_large(&self) -> Error {
        failed(
            &self.policy,
            &self.url,
            format!(
                "the response body is larger than {} (max_response); it was cut there",
                ByteSize(self.limit)
            ),
        )
    }

    fn too_slow(&self) -> Error {
        failed(
            &self.policy,
            &self.url,
            format!(
                "the response did not complete within {} (request_timeout)",
                format_duration(self.timeout)
            ),
        )
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if this.over {
            return Poll::Ready(Some(Err(this.too_large())));
        }
        if this.deadline.is_elapsed() {
            return Poll::Ready(Some(Err(this.too_slow())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(mut data) => {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        data.truncate(this.remaining as usize);
                        this.remaining = 0;
                        this.over = true;
                    } else {
                        this.remaining -= len;
                    }
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(trailers) => Poll::Ready(Some(Ok(trailers))),
            },
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(failed(
                &this.policy,
                &this.url,
                format!("reading the response failed: {e}"),
            )))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(this.too_slow()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.over && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // The server's length may exceed what will be passed on; promise nothing.
        SizeHint::default()
    }
}
