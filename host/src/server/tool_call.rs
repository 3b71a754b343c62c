//! Reading a plain `tools/call` request without rmcp's generic message parser: the fast path
//! of both transports (a stdio line, a stateless HTTP body).

use std::borrow::Cow;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, JsonRpcVersion2_0, ProtocolVersion, RequestId,
    RequestMetaObject,
};

/// Whether a request with `meta` is a stateless 2026-07-28 request that rmcp would accept as
/// it is and that asks for nothing but its reply: `_meta` declares 2026-07-28 with every key
/// that version requires, and no progress token or log level. A transport may then answer it
/// itself ([`WardenServer::call_direct`](super::WardenServer::call_direct)).
pub(super) fn plainly_stateless(meta: &RequestMetaObject) -> bool {
    let version = ProtocolVersion::V_2026_07_28;
    meta.protocol_version().as_ref() == Some(&version)
        && meta.missing_required_keys(&version).is_empty()
        && meta.get_progress_token().is_none()
        && meta.log_level().is_none()
}

/// `line` (a stdio line, an HTTP body) read as a `tools/call` request and its id, when it
/// plainly is one; `None` sends it down rmcp's generic path, which reads (or refuses) every
/// message.
///
/// rmcp reads a message as an untagged union of its shapes, and a request as an untagged
/// union of 22 kinds, each tried in turn from a buffered copy: a `tools/call` (the 14th) costs
/// several microseconds before the gate sees it, a sixth of a whole call. Here the line is
/// read once, its `params` straight into rmcp's `CallToolRequestParams`; `_meta` then moves
/// into the request's extensions, as rmcp's reading puts it. A message rmcp would refuse
/// (another `jsonrpc`, a `result` or `error` beside `method`, a duplicate key) is never taken
/// here, nor one whose `params` do not read as a call's (another method's, say).
pub(super) fn read(line: &[u8]) -> Option<(RequestId, CallToolRequest)> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[allow(dead_code)]
        jsonrpc: JsonRpcVersion2_0,
        id: RequestId,
        #[serde(borrow)]
        method: Cow<'a, str>,
        params: CallToolRequestParams,
        #[serde(default, deserialize_with = "present")]
        result: bool,
        #[serde(default, deserialize_with = "present")]
        error: bool,
    }
    fn present<'de, D: serde::Deserializer<'de>>(value: D) -> Result<bool, D::Error> {
        serde::de::IgnoredAny::deserialize(value).map(|_| true)
    }
    use serde::Deserialize as _;

    let envelope: Envelope = serde_json::from_slice(line).ok()?;
    if envelope.method != "tools/call" || envelope.result || envelope.error {
        return None;
    }
    let mut params = envelope.params;
    let meta = params.meta.take();
    let mut request = CallToolRequest::new(params);
    if let Some(meta) = meta {
        request.extensions.insert(meta);
    }
    Some((envelope.id, request))
}

#[cfg(test)]
mod tests {
    use rmcp::RoleServer;
    use rmcp::model::{ClientRequest, JsonRpcMessage, JsonRpcRequest};
    use rmcp::service::RxJsonRpcMessage;

    use super::*;

    /// rmcp's own reading of `line`.
    fn generic(line: &str) -> Option<serde_json::Value> {
        serde_json::from_str::<RxJsonRpcMessage<RoleServer>>(line)
            .ok()
            .map(|message| serde_json::to_value(message).expect("serializes"))
    }

    #[test]
    fn a_tool_call_reads_as_rmcp_reads_it() {
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"codec__encode","arguments":{"text":"hi"}}}"#,
            r#"{"jsonrpc":"2.0","id":"a-7","method":"tools/call","params":{"name":"t"}}"#,
            r#"{"method":"tools/call","params":{"_meta":{"progressToken":3,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","x":[1]},"name":"t","arguments":{"a":{"b":null}}},"id":9,"jsonrpc":"2.0"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t","requestState":"s","inputResponses":{"k":{"action":"decline"}}},"extra":true}"#,
            r#"{"params":{"name":"t","_meta":null,"arguments":null,"other":1},"id":3,"jsonrpc":"2.0","method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":4,"params":{"arguments":{},"_meta":{},"name":"t"},"method":"tools/call"}"#,
        ] {
            let (id, call) = read(line.as_bytes()).expect("taken by the fast path");
            let fast = JsonRpcMessage::<ClientRequest, (), ()>::Request(JsonRpcRequest::new(
                id,
                ClientRequest::CallToolRequest(call),
            ));
            let fast = serde_json::to_value(fast).expect("serializes");
            assert_eq!(Some(fast), generic(line), "{line}");
        }
    }

    #[test]
    fn what_is_not_plainly_a_tool_call_goes_to_rmcp() {
        for line in [
            // Other methods, notifications, answers.
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            // Shapes rmcp refuses: the fast path must not accept them either.
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"},"result":null}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"},"error":{}}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":[1],"method":"tools/call","params":{"name":"t"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","name":"u"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":{},"_meta":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":3}}"#,
        ] {
            assert!(read(line.as_bytes()).is_none(), "{line}");
        }
        // What rmcp refuses stays refused.
        assert!(generic(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"},"result":null}"#).is_none());
    }
}
