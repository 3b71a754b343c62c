//! The operator approval channel, on the same listener as `/mcp`: `GET /approvals` lists the
//! calls waiting for an operator (clients that cannot ask their user), `POST /approvals/{id}`
//! with `{"decision": "allow" | "deny"}` answers one. `warden approvals` is its client.
//!
//! The routes exist only while `[approval] operators` names roles (else 404, as any unknown
//! path). They pass the same `Host`/`Origin` checks and the same authenticator as `/mcp`, and
//! then some rules of their own, each refusal recorded in the audit log:
//!
//! - no `[auth]` credentials at all: 403 for everyone. An operator must be somebody; the local
//!   principal of an unauthenticated server is whoever can reach the port;
//! - missing or wrong credentials: 401 with the challenge `/mcp` gives;
//! - a principal holding none of the operator roles: 403;
//! - an operator answering a call of their own principal: 403 (the gate's rule,
//!   [`PendingApprovals::decide`](crate::gate::PendingApprovals::decide)).

// A refusal is the response itself, as in `guard`.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use http::{Method, StatusCode, header};
use http_body_util::BodyExt as _;
use serde::Deserialize;
use serde_json::json;

use super::guard::{authenticate, record_refusal, what};
use super::{AppState, Reply};
use crate::gate::{Decision, Gate, Principal, Transport, UnknownApproval};

/// The list's path; a call's is `/approvals/{id}`.
pub const APPROVALS_PATH: &str = "/approvals";

/// The largest answer body read.
const MAX_ANSWER: usize = 4096;

/// What the channel answers when the server has no credentials to tell operators apart.
const NEEDS_AUTH: &str = "the approval channel needs [auth]: configure API keys (`warden keygen \
     --roles ROLE` with a role of [approval] operators) or OAuth, so that warden knows which \
     operator answers";

/// `POST /approvals/{id}`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    decision: Verdict,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    Allow,
    Deny,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        }
    }
}

/// `/approvals`: `GET` lists the waiting calls.
pub(super) async fn list(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let gate = state.live.current();
    if gate.operators().is_empty() {
        return not_found();
    }
    if request.method() != Method::GET {
        return method_not_allowed("GET");
    }
    if let Err(refused) = operator(&state, &request, &gate).await {
        return refused;
    }
    Reply::ok(json!({ "pending": gate.pending_approvals().list() }))
}

/// `/approvals/{id}`: `POST {"decision": "allow" | "deny"}` answers the call `id`.
pub(super) async fn decide(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let gate = state.live.current();
    if gate.operators().is_empty() {
        return not_found();
    }
    if request.method() != Method::POST {
        return method_not_allowed("POST");
    }
    let principal = match operator(&state, &request, &gate).await {
        Ok(principal) => principal,
        Err(refused) => return refused,
    };
    let what = what(&request);
    let verdict = match answer(request).await {
        Ok(verdict) => verdict,
        Err(message) => return Reply::error(StatusCode::BAD_REQUEST, &message),
    };
    let by = principal.name.to_string();
    let decision = match verdict {
        Verdict::Allow => Decision::Allow { by },
        Verdict::Deny => Decision::Deny { by },
    };
    match gate.pending_approvals().decide(&id, decision) {
        Ok(call) => {
            tracing::info!(request = %id, tool = %call.tool, caller = %call.principal,
                operator = %principal.name, decision = verdict.as_str(), "operator answered");
            Reply::ok(json!({
                "id": call.id,
                "decision": verdict.as_str(),
                "tool": call.tool,
                "principal": call.principal,
            }))
        }
        Err(error @ UnknownApproval::NotWaiting(_)) => {
            Reply::error(StatusCode::NOT_FOUND, &error.to_string())
        }
        Err(error @ UnknownApproval::OwnCall) => {
            let reason = format!("approval of {id} refused: {error}");
            record_refusal(&state, &principal, None, what, reason);
            Reply::error(StatusCode::FORBIDDEN, &error.to_string())
        }
    }
}

/// The principal of `request` when it is an operator; else the refusal (recorded).
///
/// As `authenticate`, it takes what it needs of the request before the future starts (a
/// request's body is not `Sync`).
fn operator<'a>(
    state: &'a AppState,
    request: &'a Request,
    gate: &'a Gate,
) -> impl Future<Output = Result<Principal, Response>> + Send + 'a {
    let what = what(request);
    let address = address(request);
    let authenticated = state
        .auth
        .current()
        .is_some()
        .then(|| authenticate(state, request, Reply::error));
    async move {
        let Some(authenticated) = authenticated else {
            let who = Principal::new(
                state.local.name.clone(),
                state.local.roles.to_vec(),
                Transport::Http,
            );
            record_refusal(state, &who, address, what, NEEDS_AUTH.to_owned());
            return Err(Reply::error(StatusCode::FORBIDDEN, NEEDS_AUTH));
        };
        let principal = authenticated.await?;
        let operators = gate.operators();
        if !principal.roles.iter().any(|role| operators.contains(role)) {
            let reason = format!(
                "not an operator: the principal holds none of the roles of [approval] \
                 operators ({})",
                operators.join(", ")
            );
            record_refusal(state, &principal, None, what, reason);
            return Err(Reply::error(
                StatusCode::FORBIDDEN,
                "this principal holds none of the roles of [approval] operators",
            ));
        }
        Ok(principal)
    }
}

/// The decision in `request`'s body.
async fn answer(request: Request) -> Result<Verdict, String> {
    let expected = r#"expected a JSON body {"decision": "allow"} or {"decision": "deny"}"#;
    let body = http_body_util::Limited::new(request.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|_| format!("the body could not be read or is over {MAX_ANSWER} bytes"))?
        .to_bytes();
    serde_json::from_slice::<Answer>(&body)
        .map(|answer| answer.decision)
        .map_err(|error| format!("{expected}: {error}"))
}

fn address(request: &Request) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip())
}

fn not_found() -> Response {
    Reply::error(StatusCode::NOT_FOUND, "not found")
}

fn method_not_allowed(allowed: &'static str) -> Response {
    let mut response = Reply::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, http::HeaderValue::from_static(allowed));
    response
}
