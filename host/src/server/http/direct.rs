//! Stateless `tools/call` answered by warden itself. rmcp serves a stateless 2026-07-28
//! POST with a whole service of its own (a serve loop, a request task, their channels): a
//! fifth of the CPU of an HTTP call. A POST that is plainly a stateless `tools/call`, whose
//! headers and `_meta` rmcp would accept as they are, is answered here instead, in JSON, as
//! rmcp would answer it. Anything else, or anything in doubt, goes on to rmcp, which
//! serves it or refuses it with its own error:
//!
//! - the body is one request that [`tool_call::read`] takes;
//! - `Content-Type` is `application/json`, and `Accept` names `application/json` and
//!   `text/event-stream` with no parameters (no weights to interpret);
//! - exactly one `MCP-Protocol-Version`, `2026-07-28`, the version `_meta` declares, with every
//!   key that version requires in `_meta`;
//! - exactly one `Mcp-Method: tools/call`, and exactly one `Mcp-Name` equal to the tool's
//!   name, not Base64-encoded; no `Mcp-Param-*` header (warden's schemas annotate no
//!   parameter as a header, so rmcp would check none);
//! - no progress token and no log level in `_meta`: the reply is the only message, so JSON
//!   is what rmcp would send;
//! - the tool does not run as a task here, and no `logging/setLevel` asks for its logs
//!   ([`WardenServer::answers_directly`]).

use http::{HeaderMap, HeaderValue, StatusCode, header};
use rmcp::model::{
    CallToolRequest, ErrorCode, JsonRpcMessage, RequestId, RequestMetaObject, ServerJsonRpcMessage,
    ServerResult,
};

use super::super::{WardenServer, tool_call};
use crate::gate::Principal;
use axum::body::Body;
use axum::response::Response;

/// The one protocol version answered here.
const VERSION: &str = "2026-07-28";

/// A stateless `tools/call` this module answers.
pub(super) struct Direct {
    id: RequestId,
    call: CallToolRequest,
    /// Its `_meta` (rmcp keeps it in the request's extensions).
    meta: RequestMetaObject,
}

/// `body` with `headers`, when it is a request this module answers.
pub(super) fn take(headers: &HeaderMap, body: &[u8]) -> Option<Direct> {
    if !json_content(headers) || !accepts_both(headers) {
        return None;
    }
    if sole(headers, "mcp-protocol-version")? != VERSION
        || sole(headers, "mcp-method")? != "tools/call"
        || headers
            .keys()
            .any(|name| name.as_str().starts_with("mcp-param-"))
    {
        return None;
    }
    let (id, mut call) = tool_call::read(body)?;
    let name = sole(headers, "mcp-name")?;
    if name != call.params.name || name.starts_with("=?") {
        return None;
    }
    let meta = call.extensions.remove::<RequestMetaObject>()?;
    tool_call::plainly_stateless(&meta).then_some(Direct { id, call, meta })
}

/// Answer `direct` with `server`; `None` when rmcp must serve it after all
/// ([`WardenServer::answers_directly`]).
pub(super) async fn answer(
    server: &WardenServer,
    direct: &Direct,
    parts: &http::request::Parts,
) -> Option<Response> {
    let Direct { id, call, meta } = direct;
    let principal = parts
        .extensions
        .get::<Principal>()
        .unwrap_or(server.session_principal());
    if !server.answers_directly(&call.params.name, principal) {
        return None;
    }
    let outcome = server
        .call_direct(&call.params, meta, id, principal, Some(parts))
        .await;
    tracing::debug!(request = %id, "stateless tools/call answered without rmcp's service");
    let (message, status): (ServerJsonRpcMessage, _) = match outcome {
        Ok(response) => (
            JsonRpcMessage::response(ServerResult::from(response), id.clone()),
            StatusCode::OK,
        ),
        Err(error) => {
            // What rmcp's stateless path answers with a 400; the others ride on a 200.
            let status = match error.code {
                ErrorCode::UNSUPPORTED_PROTOCOL_VERSION
                | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
                | ErrorCode::HEADER_MISMATCH => StatusCode::BAD_REQUEST,
                _ => StatusCode::OK,
            };
            (JsonRpcMessage::error(error, Some(id.clone())), status)
        }
    };
    let body = match serde_json::to_vec(&message) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "a tool's reply could not be serialized");
            return Some(super::Reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the reply could not be serialized",
            ));
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Some(response)
}

/// The only value of header `name`, as text; `None` when absent, repeated or not text.
fn sole<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    match values.next() {
        Some(_) => None,
        None => value.to_str().ok(),
    }
}

/// `Content-Type: application/json` (with or without parameters), once.
fn json_content(headers: &HeaderMap) -> bool {
    sole(headers, header::CONTENT_TYPE.as_str()).is_some_and(|value| {
        let essence = value.split_once(';').map_or(value, |(essence, _)| essence);
        essence.trim().eq_ignore_ascii_case("application/json")
    })
}

/// `Accept` names both media types, and nothing carries a parameter.
fn accepts_both(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for range in value.split(',') {
            let range = range.trim();
            if range.contains(';') || range.contains('"') {
                return false;
            }
            json |= range.eq_ignore_ascii_case("application/json");
            sse |= range.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    const PLAIN: &[(&str, &str)] = &[
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "codec__encode"),
    ];

    const BODY: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"name":"codec__encode","arguments":{"text":"x"}}}"#;

    #[test]
    fn a_plain_stateless_call_is_taken() {
        let direct = take(&headers(PLAIN), BODY.as_bytes()).expect("taken");
        assert_eq!(direct.id, RequestId::Number(7));
        assert_eq!(direct.call.params.name, "codec__encode");
    }

    /// Every departure from the plain shape goes to rmcp, which serves or refuses it.
    #[test]
    fn anything_else_goes_to_rmcp() {
        let with = |change: &[(&'static str, Option<&'static str>)]| {
            let mut map = headers(PLAIN);
            for (name, value) in change {
                match value {
                    Some(value) => {
                        map.append(*name, HeaderValue::from_static(value));
                    }
                    None => {
                        map.remove(*name);
                    }
                }
            }
            map
        };
        let refused_headers = [
            with(&[("content-type", None), ("content-type", Some("text/plain"))]),
            with(&[("accept", None), ("accept", Some("application/json"))]),
            with(&[
                ("accept", None),
                ("accept", Some("application/json;q=0, text/event-stream")),
            ]),
            with(&[("mcp-protocol-version", None)]),
            with(&[
                ("mcp-protocol-version", None),
                ("mcp-protocol-version", Some("2025-11-25")),
            ]),
            with(&[("mcp-protocol-version", Some("2026-07-28"))]),
            with(&[("mcp-method", None)]),
            with(&[("mcp-method", None), ("mcp-method", Some("tools/list"))]),
            with(&[("mcp-name", None)]),
            with(&[("mcp-name", None), ("mcp-name", Some("other"))]),
            with(&[("mcp-name", Some("codec__encode"))]),
            with(&[("mcp-param-text", Some("x"))]),
        ];
        for map in refused_headers {
            assert!(take(&map, BODY.as_bytes()).is_none(), "{map:?}");
        }
        let meta = |meta: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"_meta":{meta},"name":"codec__encode"}}}}"#
            )
        };
        let refused_bodies = [
            // No or partial `_meta`, another version, progress, a log level.
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"codec__encode"}}"#
                .to_owned(),
            meta(r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#),
            meta(
                r#"{"io.modelcontextprotocol/protocolVersion":"2025-11-25","io.modelcontextprotocol/clientCapabilities":{}}"#,
            ),
            meta(
                r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"progressToken":1}"#,
            ),
            meta(
                r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/logLevel":"debug"}"#,
            ),
            // Not a plain request: a batch, a notification, another method.
            format!("[{BODY}]"),
            BODY.replace(r#""id":7,"#, ""),
            BODY.replace("tools/call", "tools/list"),
        ];
        for body in refused_bodies {
            assert!(take(&headers(PLAIN), body.as_bytes()).is_none(), "{body}");
        }
    }
}
