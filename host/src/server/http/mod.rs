//! MCP over Streamable HTTP: rmcp's [`StreamableHttpService`] at `/mcp`, behind warden's own
//! checks, served by hyper on one listener (plain TCP or TLS).
//!
//! Each connection first takes a slot under the connection caps and runs under its own timers
//! (TLS handshake, request header, idle: [`conn`]). Each request to `/mcp` then passes, in
//! order: the `Host` and `Origin` checks (DNS rebinding, one `Host`, an absolute-form target
//! that agrees with it: [`checks`]), authentication ([`crate::auth`]: a refusal is answered 401 or 403 and
//! recorded in the audit log; no plugin runs), the body size limit (413), the session's owner
//! (a 2025-11-25 session serves only the principal that opened it: [`sessions`]), the
//! `initialize` checks (the size of the client's info, the session caps), and then
//! rmcp, which serves both protocol eras: 2025-11-25 with `Mcp-Session-Id` sessions and the
//! stateless 2026-07-28 (`server/discover`). A stateless `tools/call` that is plainly one is
//! answered by warden itself, as rmcp would answer it, without rmcp's per-request service
//! ([`direct`]). The authenticated [`Principal`] rides in the request's
//! extensions to the handler, which hands it to the gate.
//!
//! Other routes: `GET /healthz` (always 200, no checks), `GET /readyz` (200 while serving,
//! 503 while draining), `GET /audit/key` (the audit checkpoints' public key, PEM) and `GET /audit/checkpoint` (the
//! last checkpoint, for a witness), the operator approval channel `GET /approvals` and
//! `POST /approvals/{id}` while `[approval] operators` names roles ([`approvals`]), and with OAuth the RFC 9728 metadata at
//! `/.well-known/oauth-protected-resource` and `/.well-known/oauth-protected-resource/mcp`.
//! Everything else is 404.
//!
//! SIGTERM or SIGINT starts a graceful shutdown: the listener closes, new MCP requests get
//! 503, requests in flight finish (up to `[http] shutdown_grace`), then sessions and
//! connections are closed. Audit records are written before each response leaves, so none is
//! pending at exit.

mod approvals;
mod checks;
mod conn;
mod direct;
mod drain;
mod guard;
mod resume;
mod sessions;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::{StatusCode, header};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{ServerInfo, WardenServer};
use crate::auth::{ANONYMOUS, AuthError, LiveAuth};
use crate::gate::{LiveGate, Principal, Transport};
use crate::manifest::Http;
use crate::runtime::PluginState;

pub use approvals::APPROVALS_PATH;
pub use checks::{HeaderRefusal, check_headers};
use conn::{Activity, Connections, Expiry, Refusal, Throttle, Watched};
pub use conn::{caps as connection_caps, descriptor_limit};
pub use drain::Drain;
use sessions::Sessions;
pub use tls::{TlsError, server_config};

/// The MCP endpoint's path.
pub const MCP_PATH: &str = "/mcp";

/// The RFC 9728 metadata path; also served with the endpoint's path appended.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// What `serve_http` needs besides the gate.
pub struct HttpOptions {
    /// What the server tells clients about itself.
    pub info: ServerInfo,
    /// Where to listen (port 0: any free port).
    pub listen: SocketAddr,
    /// `[http]`.
    pub http: Http,
    /// The checker of credentials in force (none: requests are not authenticated); a reload
    /// may replace it.
    pub auth: Arc<LiveAuth>,
    /// Who requests run as when there is no authentication (`[server] principal` and roles).
    pub local: Principal,
    /// Serve without authentication on a non-loopback address (`--insecure-no-auth`).
    pub insecure_no_auth: bool,
    /// Set to the address bound (with the port chosen, for port 0) once listening.
    pub bound: Arc<std::sync::OnceLock<SocketAddr>>,
    /// The metrics: open sessions are counted into them, and with `serve` they are also
    /// served at `/metrics` ([`METRICS_PATH`]), behind the authenticator (`[metrics] on_http`).
    pub metrics: Option<HttpMetrics>,
}

/// The metrics of an HTTP server.
#[derive(Clone)]
pub struct HttpMetrics {
    /// Where they are.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Whether `/metrics` serves them on this listener.
    pub serve: bool,
}

/// Where `[metrics] on_http` serves the metrics.
pub const METRICS_PATH: &str = "/metrics";

/// The HTTP server could not start, or failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "refusing to serve {addr} without authentication: it is not a loopback address. \
         Configure [auth] (see `warden keygen`), listen on 127.0.0.1, or pass \
         --insecure-no-auth if something in front of warden authenticates"
    )]
    NoAuth { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("[http] tls: {0}")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// Shared by every request.
struct AppState {
    live: Arc<LiveGate>,
    /// Served at `/metrics` when `Some`.
    metrics: Option<Arc<crate::metrics::Metrics>>,
    http: Http,
    auth: Arc<LiveAuth>,
    local: Principal,
    drain: Arc<Drain>,
    sessions: Arc<Sessions>,
    tls: bool,
    /// The handler of the stateless `tools/call` requests answered without rmcp's service
    /// ([`direct`]); it has no session.
    direct: WardenServer,
}

/// How often each kind of connection warning may be logged: a flood of connections cannot
/// flood the log.
const WARNING_PERIOD: Duration = Duration::from_secs(10);

/// How long the accept loop waits after a failed `accept` (out of file descriptors...).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The connection warnings, each throttled.
struct Warnings {
    accept: Throttle,
    full: Throttle,
    client: Throttle,
    handshake: Throttle,
    header: Throttle,
}

impl Warnings {
    fn new() -> Self {
        Self {
            accept: Throttle::new(WARNING_PERIOD),
            full: Throttle::new(WARNING_PERIOD),
            client: Throttle::new(WARNING_PERIOD),
            handshake: Throttle::new(WARNING_PERIOD),
            header: Throttle::new(WARNING_PERIOD),
        }
    }
}

/// What every connection task needs.
#[derive(Clone)]
struct ConnContext {
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    idle: Duration,
    header: Duration,
    handshake: Duration,
    warnings: Arc<Warnings>,
    /// Becomes `true` when the server shuts down.
    stop: watch::Receiver<bool>,
}

/// Serve the gate in force in `live` over Streamable HTTP until SIGTERM or SIGINT, then shut
/// down gracefully.
///
/// Prints `warden: listening on http://ADDR/mcp` (or `https://`) to stderr once the listener
/// is bound, so scripts and tests that asked for port 0 can find the port.
pub async fn serve_http(live: Arc<LiveGate>, options: HttpOptions) -> Result<(), HttpError> {
    serve_http_until(live, options, shutdown_signal()).await
}

/// Like [`serve_http`], shutting down when `shutdown` completes instead of on a signal.
pub async fn serve_http_until(
    live: Arc<LiveGate>,
    options: HttpOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), HttpError> {
    let addr = options.listen;
    if options.auth.current().is_none() && !addr.ip().is_loopback() && !options.insecure_no_auth {
        return Err(HttpError::NoAuth { addr });
    }
    let tls = match &options.http.tls {
        Some(files) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(files)?)),
        None => None,
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;

    let config = StreamableHttpServerConfig::default();
    let sessions = config.cancellation_token.clone();
    let drain = Arc::new(Drain::default());
    let grace = options.http.shutdown_grace;
    let rmcp_sessions = Arc::new(LocalSessionManager::default());
    let owners = Sessions::new(
        rmcp_sessions.clone(),
        count(options.http.max_sessions),
        count(options.http.max_sessions_per_principal),
    );
    let descriptors = conn::descriptor_limit();
    let (max_connections, per_client) = conn::caps(&options.http, descriptors);
    if let (Some(limit), Some(max)) = (descriptors, options.http.max_connections)
        && u64::from(max) + 64 > limit
    {
        tracing::warn!(
            max_connections = max,
            descriptor_limit = limit,
            "[http] max_connections leaves few file descriptors for anything else;              raise the limit (ulimit -n) or lower max_connections"
        );
    }
    let connections = Connections::new(max_connections, per_client);
    let (stop, stopped) = watch::channel(false);
    let context = ConnContext {
        router: Router::new(),
        tls,
        idle: options.http.idle_timeout,
        header: options.http.header_timeout,
        handshake: options.http.tls_handshake_timeout,
        warnings: Arc::new(Warnings::new()),
        stop: stopped,
    };
    if let Some(metrics) = &options.metrics {
        let owners = owners.clone();
        metrics.metrics.sessions("http", move || {
            i64::try_from(owners.open()).unwrap_or(i64::MAX)
        });
    }
    let direct = WardenServer::new(
        live.clone(),
        Arc::new(options.info.clone()),
        Principal::new(ANONYMOUS, Vec::new(), Transport::Http),
    );
    let state = Arc::new(AppState {
        direct,
        live,
        metrics: options
            .metrics
            .filter(|metrics| metrics.serve)
            .map(|metrics| metrics.metrics),
        http: options.http,
        auth: options.auth,
        local: options.local,
        drain: drain.clone(),
        sessions: owners,
        tls: context.tls.is_some(),
    });
    let resumable = Arc::new(resume::Resumable::new(
        rmcp_sessions,
        state.http.sse_close_after,
    ));
    let context = ConnContext {
        router: router(state, options.info, config, resumable),
        ..context
    };

    let scheme = if context.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let _ = options.bound.set(bound);
    // The one line scripts rely on: stdout is not used by this transport, stderr is the log.
    eprintln!("warden: listening on {scheme}://{bound}{MCP_PATH}");
    tracing::info!(
        address = %bound,
        tls = context.tls.is_some(),
        max_connections,
        max_connections_per_client = per_client,
        "serving MCP over HTTP"
    );

    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    if let Some(held_back) = context.warnings.accept.allow() {
                        tracing::warn!(
                            %error,
                            similar_warnings_held_back = held_back,
                            "accept failed; retrying"
                        );
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match connections.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                // Closed before anything is read: the cheapest refusal there is.
                drop(stream);
                let (throttle, why) = match refusal {
                    Refusal::Full => (
                        &context.warnings.full,
                        "connection refused: max_connections connections are open",
                    ),
                    Refusal::Client => (
                        &context.warnings.client,
                        "connection refused: max_connections_per_client connections are open from \
                         this client",
                    ),
                };
                throttle.warn(peer.ip(), why);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let context = context.clone();
        tokio::spawn(async move {
            connection(stream, peer, context).await;
            drop(slot);
        });
    }

    drop(listener);
    tracing::info!(
        in_flight = drain.in_flight(),
        grace_s = grace.as_secs(),
        "shutting down: finishing requests in flight"
    );
    let left = drain.drain(grace).await;
    if left > 0 {
        tracing::warn!(
            left,
            "shutdown grace period over; abandoning requests in flight"
        );
    }
    sessions.cancel();
    // Idle keep-alive connections and event streams close now; do not wait on stragglers.
    stop.send_replace(true);
    if tokio::time::timeout(Duration::from_secs(5), connections.closed())
        .await
        .is_err()
    {
        tracing::debug!("some connections did not close in time");
    }
    tracing::info!("HTTP server stopped");
    Ok(())
}

/// A `u32` setting as a count.
fn count(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Serves one accepted connection: the TLS handshake (within `tls_handshake_timeout`), then
/// HTTP/1.1 until the client closes it, its timers run out, or the server shuts down.
async fn connection(stream: tokio::net::TcpStream, peer: SocketAddr, context: ConnContext) {
    let Some(acceptor) = context.tls.clone() else {
        return serve_connection(stream, peer, context).await;
    };
    match tokio::time::timeout(context.handshake, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => serve_connection(stream, peer, context).await,
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => {
            context.warnings.handshake.warn(
                peer.ip(),
                "connection closed: the TLS handshake did not finish within \
                 tls_handshake_timeout",
            );
        }
    }
}

/// HTTP/1.1 on one connection, with its idle and header timers.
async fn serve_connection<S>(io: S, peer: SocketAddr, mut context: ConnContext)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let inner = TowerToHyperService::new(context.router.clone());
    let tracker = activity.clone();
    // A request is in progress from its complete header until its response has been sent.
    let service = hyper::service::service_fn(move |mut request: http::Request<_>| {
        // The peer's address, for the refusal rate limit of requests refused before
        // authentication.
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let in_progress = tracker.begin();
        let response = hyper::service::Service::call(&inner, request);
        async move {
            let response = response.await?;
            Ok::<_, Infallible>(
                response.map(|body| Body::new(drain::Tracked::new(body, in_progress))),
            )
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header timer is warden's (below): hyper's would also cut idle kept-alive connections.
    builder.header_read_timeout(None);
    let conn = builder.serve_connection(TokioIo::new(Watched::new(io, activity.clone())), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let deadline = activity.deadline(context.idle, context.header);
        let timer = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let stop = context.stop.wait_for(|stop| *stop);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            () = activity.changed() => {}
            () = timer => {
                let now = tokio::time::Instant::now();
                match activity.deadline(context.idle, context.header) {
                    Some((at, Expiry::Header)) if at <= now => {
                        context.warnings.header.warn(
                            peer.ip(),
                            "connection closed: a request header did not arrive within \
                             header_timeout",
                        );
                        return;
                    }
                    Some((at, Expiry::Idle)) if at <= now => {
                        tracing::debug!(%peer, "connection closed: idle");
                        return;
                    }
                    _ => {}
                }
            }
            _ = stop, if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received");
}

/// The routes, with the MCP service built from `state`.
fn router(
    state: Arc<AppState>,
    info: ServerInfo,
    config: StreamableHttpServerConfig,
    sessions: Arc<resume::Resumable>,
) -> Router {
    let config = config
        // Host and Origin are checked by `guard` (with warden's rules), before authentication.
        .disable_allowed_hosts()
        .disable_allowed_origins()
        // Stateless (2026-07-28) answers are plain JSON unless the call sends progress or log
        // notifications first (then rmcp streams them as SSE): less work for every client.
        .with_json_response(true)
        .with_max_request_body_bytes(usize::try_from(state.http.max_body).unwrap_or(usize::MAX));
    let live = state.live.clone();
    let info = Arc::new(info);
    // Requests always carry a principal from `guard`; the session's own is never used.
    let fallback = Principal::new(ANONYMOUS, Vec::new(), Transport::Http);
    let mcp = StreamableHttpService::new(
        move || {
            Ok(WardenServer::new(
                live.clone(),
                info.clone(),
                fallback.clone(),
            ))
        },
        sessions,
        config,
    );
    let mcp = Router::new()
        .route_service(MCP_PATH, mcp)
        .route(METADATA_PATH, get(metadata))
        .route(&format!("{METADATA_PATH}{MCP_PATH}"), get(metadata))
        .route(METRICS_PATH, get(scrape))
        .route(APPROVALS_PATH, any(approvals::list))
        .route(&format!("{APPROVALS_PATH}/{{id}}"), any(approvals::decide))
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard));
    Router::new()
        .route(
            "/healthz",
            get(|| async { Reply::ok(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .route(AUDIT_KEY_PATH, get(audit_key))
        .route(AUDIT_CHECKPOINT_PATH, get(audit_checkpoint))
        .merge(mcp)
        .fallback(|| async { Reply::error(StatusCode::NOT_FOUND, "not found") })
        .with_state(state)
}

/// Where the audit log's checkpoint key is published.
pub const AUDIT_KEY_PATH: &str = "/audit/key";

/// `GET /audit/key`: the public key of the audit log's checkpoint signatures (a PEM
/// `PUBLIC KEY`; its id in `X-Warden-Key-Id`), for `warden audit verify --key`. 404 when
/// checkpoints are not signed. Public, like `/healthz`: it is the key verifiers need.
async fn audit_key(State(state): State<Arc<AppState>>) -> Response {
    match state.live.current().audit_key() {
        Some(key) => (
            [
                (
                    http::header::CONTENT_TYPE,
                    "application/x-pem-file".to_owned(),
                ),
                (
                    http::header::HeaderName::from_static("x-warden-key-id"),
                    key.id(),
                ),
            ],
            key.pem(),
        )
            .into_response(),
        None => Reply::error(
            StatusCode::NOT_FOUND,
            "the audit log is not signed: no [audit] signing_key",
        ),
    }
}

/// Where the audit log's last checkpoint is published.
pub const AUDIT_CHECKPOINT_PATH: &str = "/audit/checkpoint";

/// `GET /audit/checkpoint`: the line of the last checkpoint this process wrote (JSON), for a
/// witness to keep (`warden audit verify --witness`). 404 before the first one and when
/// checkpoints are not signed. Public like `/audit/key`: it holds a hash, a count, the replica
/// and a signature, no record.
async fn audit_checkpoint(State(state): State<Arc<AppState>>) -> Response {
    match state.live.current().audit_checkpoint() {
        Some(line) => (
            [(http::header::CONTENT_TYPE, "application/json")],
            line + "\n",
        )
            .into_response(),
        None => Reply::error(
            StatusCode::NOT_FOUND,
            "no checkpoint: the audit log is not signed, or none was written yet",
        ),
    }
}

/// `GET /metrics` (`[metrics] on_http`): the metrics, for any principal the authenticator
/// accepts (every request without `[auth]`, which only a loopback listener or
/// `--insecure-no-auth` allows); a refused scrape is a 401/403 recorded in the audit log.
/// 404 when metrics are not served here.
async fn scrape(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let Some(metrics) = state.metrics.clone() else {
        return Reply::error(StatusCode::NOT_FOUND, "not found");
    };
    if let Err(refused) = guard::authenticate(&state, &request, Reply::error).await {
        return refused;
    }
    crate::server::metrics::exposition(&metrics, request.headers().get(header::ACCEPT))
}

/// `GET /readyz`: 200 once every plugin is callable (compiled, or on its baseline build while
/// the optimized one compiles), 503 while some are not (the first start on a cold cache; calls
/// to them wait meanwhile) and once shutdown has begun.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let compiling = state
        .live
        .current()
        .catalog()
        .plugins()
        .iter()
        .filter(|plugin| plugin.state() == PluginState::Compiling)
        .count();
    if state.drain.is_draining() {
        Reply::error(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else if compiling > 0 {
        Reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("{compiling} plugin(s) still compiling"),
        )
    } else {
        Reply::ok(json!({ "status": "ready" }))
    }
}

/// The RFC 9728 Protected Resource Metadata, when OAuth is configured.
async fn metadata(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let auth = state.auth.current();
    match auth.as_ref().and_then(|auth| auth.oauth()) {
        Some(oauth) => {
            let resource = resource_url(&state, &request);
            Reply::ok(oauth.metadata(&resource))
        }
        None => Reply::error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The header that names a 2025-11-25 session.
const SESSION_ID: &str = "mcp-session-id";

/// The URL of the MCP endpoint: `[http] public_url`, else built from the request's `Host`.
fn resource_url(state: &AppState, request: &Request) -> String {
    if let Some(url) = &state.http.public_url {
        return url.clone();
    }
    let scheme = if state.tls { "https" } else { "http" };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost");
    format!("{scheme}://{host}{MCP_PATH}")
}

/// The URL of the RFC 9728 metadata for the endpoint: the well-known path inserted between
/// the endpoint's origin and its path.
fn metadata_url(state: &AppState, request: &Request) -> String {
    let resource = resource_url(state, request);
    match resource.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let path = path.trim_end_matches('/');
            format!("{scheme}://{authority}{METADATA_PATH}{path}")
        }
        None => resource,
    }
}

/// Small JSON responses.
struct Reply;

impl Reply {
    fn ok(value: serde_json::Value) -> Response {
        (StatusCode::OK, axum::Json(value)).into_response()
    }

    /// `{"error": MESSAGE}` with `status`.
    fn error(status: StatusCode, message: &str) -> Response {
        (status, axum::Json(json!({ "error": message }))).into_response()
    }

    /// A JSON-RPC error object without id, for refused MCP requests.
    fn rpc_error(status: StatusCode, message: &str) -> Response {
        Reply::rpc_error_with(status, serde_json::Value::Null, -32001, message)
    }

    /// A JSON-RPC error object answering request `id`.
    fn rpc_error_with(
        status: StatusCode,
        id: serde_json::Value,
        code: i64,
        message: &str,
    ) -> Response {
        let body = json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": { "code": code, "message": message },
        });
        (status, axum::Json(body)).into_response()
    }
}
