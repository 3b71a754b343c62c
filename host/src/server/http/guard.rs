//! Everything in front of rmcp, one step per concern. [`guard`] reads as the pipeline: each
//! step either passes the request on or refuses it with the response to send.
//!
//! The steps are functions called in turn by one axum middleware rather than a tower layer
//! each: stacking seven `from_fn` layers boxed seven futures per request and cost 5-9% of
//! HTTP throughput (docs/PERFORMANCE.md); a function per step keeps the concerns apart at no
//! cost.

// A refusal is the response itself: built once, on a path taken rarely.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::value::RawValue;

use super::sessions::{Reservation, SessionRefusal};
use super::{AppState, MCP_PATH, Reply, SESSION_ID, check_headers, direct, drain, metadata_url};
use crate::gate::{Principal, Transport};

/// The guard: the steps in order, then a plain stateless `tools/call` answered here
/// ([`direct`]) or rmcp, then what rmcp's response says about sessions.
pub(super) async fn guard(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let result = async {
        host_and_origin(&state, &request)?;
        if request.uri().path() != MCP_PATH {
            return Ok(next.run(request).await);
        }
        not_draining(&state)?;
        let principal = authenticate(&state, &request, Reply::rpc_error).await?;
        declared_length(&state, &request)?;
        let session = session_id(&request);
        session_owner(&state, &request, session.as_deref(), &principal)?;
        let (mut parts, body) = request.into_parts();
        let (body, reservation) = match session {
            None if parts.method == Method::POST => {
                let bytes = read_body(&state, body).await?;
                // A plain stateless `tools/call` (not an `initialize`) is answered here.
                if let Some(direct) = direct::take(&parts.headers, &bytes) {
                    strip_credentials(&mut parts, principal);
                    let in_flight = state.drain.enter();
                    if let Some(response) = direct::answer(&state.direct, &direct, &parts).await {
                        return Ok(tracked(response, in_flight));
                    }
                    let request = Request::from_parts(parts, Body::from(bytes));
                    return Ok(respond(&state, request, next, session, None).await);
                }
                let reservation = opening(&state, &parts, &bytes, &principal).await?;
                strip_credentials(&mut parts, principal);
                (Body::from(bytes), reservation)
            }
            _ => {
                strip_credentials(&mut parts, principal);
                (body, None)
            }
        };
        let request = Request::from_parts(parts, body);
        Ok(respond(&state, request, next, session, reservation).await)
    };
    result.await.unwrap_or_else(|refused: Response| refused)
}

/// The `Host` and `Origin` checks (DNS rebinding, one `Host`, an absolute-form target that
/// agrees with it), on every route but the probes'.
fn host_and_origin(state: &AppState, request: &Request) -> Result<(), Response> {
    check_headers(
        request.headers(),
        request.uri().authority().map(|a| a.as_str()),
        &state.http.allowed_hosts,
        &state.http.allowed_origins,
    )
    .map_err(|refusal| {
        tracing::warn!(
            host = ?request.headers().get(header::HOST),
            origin = ?request.headers().get(header::ORIGIN),
            "refused: {}",
            refusal.message()
        );
        Reply::error(refusal.status(), refusal.message())
    })
}

/// New MCP requests get 503 once shutdown has begun.
fn not_draining(state: &AppState) -> Result<(), Response> {
    match state.drain.is_draining() {
        true => Err(Reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        )),
        false => Ok(()),
    }
}

/// Who sent the request: the authenticator in force, or the local principal when there is
/// none. A refusal is answered 401 or 403 with its challenge (the body made by `reply`: a
/// JSON-RPC error for `/mcp`, `{"error": ...}` elsewhere), and recorded in the audit log.
///
/// What it needs of the request is taken before the future starts: a request's body is not
/// `Sync`, so the future must not hold the request across an await.
pub(super) fn authenticate<'a>(
    state: &'a AppState,
    request: &'a Request,
    reply: fn(StatusCode, &str) -> Response,
) -> impl Future<Output = Result<Principal, Response>> + Send + 'a {
    let headers = request.headers();
    let metadata_url = metadata_url(state, request);
    let what = what(request);
    let address = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    async move {
        let Some(auth) = state.auth.current() else {
            return Ok(state.local.clone());
        };
        let refusal = match auth.authenticate(headers, &metadata_url).await {
            Ok(principal) => return Ok(principal),
            Err(refusal) => refusal,
        };
        let who = Principal::new(refusal.principal.as_str(), Vec::new(), Transport::Http);
        record_refusal(state, &who, address, what, refusal.reason);
        let message = match refusal.status {
            StatusCode::FORBIDDEN => "insufficient scope",
            StatusCode::SERVICE_UNAVAILABLE => "authentication is unavailable",
            _ => "authentication required",
        };
        let mut response = reply(refusal.status, message);
        if let Ok(value) = HeaderValue::from_str(&refusal.challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        Err(response)
    }
}

/// A body declared larger than `[http] max_body` is refused before it is read (rmcp counts
/// the bytes of the others).
fn declared_length(state: &AppState, request: &Request) -> Result<(), Response> {
    let too_large = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|length| length > state.http.max_body);
    match too_large {
        true => Err(too_large_response()),
        false => Ok(()),
    }
}

fn too_large_response() -> Response {
    Reply::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the request body is too large",
    )
}

/// The 2025-11-25 session the request names, if any.
fn session_id(request: &Request) -> Option<String> {
    request
        .headers()
        .get(SESSION_ID)
        .map(|id| id.to_str().unwrap_or_default().to_owned())
}

/// A 2025-11-25 session is its opener's alone: anyone else naming it is told it does not
/// exist, and the attempt is recorded.
fn session_owner(
    state: &AppState,
    request: &Request,
    session: Option<&str>,
    principal: &Principal,
) -> Result<(), Response> {
    match session {
        Some(id) if !state.sessions.admits(id, &principal.name) => {
            let reason = "the request names a session this principal did not open";
            record_refusal(state, principal, None, what(request), reason.to_owned());
            Err(Reply::rpc_error(StatusCode::NOT_FOUND, "session not found"))
        }
        _ => Ok(()),
    }
}

/// The body of a POST outside a session, read (within `[http] max_body`) to find out whether
/// it is an `initialize` ([`opening`]) or a stateless `tools/call` ([`direct`]).
async fn read_body(state: &AppState, body: Body) -> Result<bytes::Bytes, Response> {
    let limit = usize::try_from(state.http.max_body).unwrap_or(usize::MAX);
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large_response()),
        Err(_) => Err(Reply::error(
            StatusCode::BAD_REQUEST,
            "the request body could not be read",
        )),
    }
}

/// A POST outside a session may be an `initialize`, which opens one: its client info must
/// be small, and there must be room for the session.
async fn opening(
    state: &AppState,
    parts: &http::request::Parts,
    bytes: &[u8],
    principal: &Principal,
) -> Result<Option<Reservation>, Response> {
    let mut reservation = None;
    if let Some(initialize) = find_initialize(bytes) {
        let id = initialize.id.map(|id| id.get()).unwrap_or("null");
        let id: serde_json::Value = serde_json::from_str(id).unwrap_or_default();
        let size = initialize.params.map_or(0, |params| params.get().len());
        if size as u64 > state.http.max_client_info {
            let message = format!(
                "the initialize request's parameters (client info and capabilities) are \
                 too large: {size} bytes, at most {} accepted",
                state.http.max_client_info
            );
            return Err(Reply::rpc_error_with(
                StatusCode::BAD_REQUEST,
                id,
                -32602,
                &message,
            ));
        }
        match state.sessions.reserve(&principal.name).await {
            Ok(place) => reservation = Some(place),
            Err(refusal) => {
                let (status, message, reason) = match refusal {
                    SessionRefusal::Principal(max) => (
                        StatusCode::TOO_MANY_REQUESTS,
                        format!(
                            "too many open sessions for this principal (at most {max}): \
                             end one with DELETE, or wait for idle ones to expire"
                        ),
                        "session refused: the principal's session cap is reached",
                    ),
                    SessionRefusal::Server => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the server has too many open sessions; try again later".to_owned(),
                        "session refused: the server's session cap is reached",
                    ),
                };
                let what = format!("{} {}", parts.method, parts.uri.path());
                record_refusal(state, principal, None, what, reason.to_owned());
                tracing::warn!(principal = %principal.name, "{reason}");
                return Err(Reply::rpc_error_with(status, id, -32000, &message));
            }
        }
    }
    Ok(reservation)
}

/// The credential stops here (rmcp hands the request's parts to the handler); the principal
/// rides on in the request's extensions.
fn strip_credentials(parts: &mut http::request::Parts, principal: Principal) {
    parts.headers.remove(header::AUTHORIZATION);
    parts.headers.remove("x-api-key");
    parts.extensions.insert(principal);
}

/// rmcp's response, and what it says about sessions: an `initialize` that opened one binds
/// its reservation; a DELETE that ended one frees it. A POST counts as in flight until its
/// response body is sent; a GET (a session's event stream, open as long as the session) must
/// not hold a shutdown up.
async fn respond(
    state: &AppState,
    request: Request,
    next: Next,
    session: Option<String>,
    reservation: Option<Reservation>,
) -> Response {
    let ending = request.method() == Method::DELETE;
    let in_flight = (request.method() == Method::POST).then(|| state.drain.enter());
    let owner = request
        .extensions()
        .get::<Principal>()
        .map(|p| p.name.clone());
    let response = next.run(request).await;
    match (&session, response.headers().get(SESSION_ID)) {
        (None, Some(opened)) => match (opened.to_str(), reservation) {
            (Ok(opened), Some(place)) => place.bind(opened),
            // A session opened by a request not recognized as an `initialize` (so neither
            // counted nor checked): close it rather than keep it unaccounted for.
            (opened, _) => {
                if let Ok(opened) = opened {
                    state.sessions.close(opened).await;
                }
                tracing::warn!(principal = ?owner, "closed a session opened without a reservation");
                return Reply::rpc_error(
                    StatusCode::BAD_REQUEST,
                    "the session could not be opened: send `initialize` as plain JSON-RPC",
                );
            }
        },
        (Some(id), _) if ending && response.status().is_success() => {
            state.sessions.end(id);
            // rmcp answers 202 Accepted; the session is gone, and 204 is what clients expect
            // (the Python SDK logs a failure on anything but 200 and 204).
            return StatusCode::NO_CONTENT.into_response();
        }
        _ => {}
    }
    match in_flight {
        Some(in_flight) => tracked(response, in_flight),
        None => response,
    }
}

/// `response`, in flight until its body is sent.
fn tracked(response: Response, in_flight: drain::InFlight) -> Response {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::new(drain::Tracked::new(body, in_flight)))
}

/// What a refused request is recorded as: `METHOD PATH`.
pub(super) fn what(request: &Request) -> String {
    format!("{} {}", request.method(), request.uri().path())
}

/// Record the refusal of `what` from `who` (from `address`, when not authenticated) in the
/// audit log.
pub(super) fn record_refusal(
    state: &AppState,
    who: &Principal,
    address: Option<std::net::IpAddr>,
    what: String,
    reason: String,
) {
    if let Err(error) = state
        .live
        .current()
        .record_refusal(who, address, &what, reason)
    {
        tracing::error!(%error, "audit record of a refused request lost");
    }
}

/// The parts of a JSON-RPC message that the session checks read.
#[derive(serde::Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// The `initialize` request in `body` (one message or a batch), if there is one. Bodies that
/// are not JSON-RPC are left to rmcp to refuse.
fn find_initialize(body: &[u8]) -> Option<Message<'_>> {
    let is_initialize = |m: &Message<'_>| m.method.as_deref() == Some("initialize");
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let batch: Vec<Message<'_>> = serde_json::from_slice(body).ok()?;
        batch.into_iter().find(is_initialize)
    } else {
        serde_json::from_slice(body).ok().filter(is_initialize)
    }
}
