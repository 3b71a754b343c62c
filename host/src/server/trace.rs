//! The span of one MCP request in a trace (`[tracing]`), and its remote parent.
//!
//! Its attributes name the method, the tool or prompt (never a URI, never arguments or
//! results), and, set by the gate's trail when the request ends, the plugin, the outcome and
//! (only with `[tracing] principal = true`) the principal. The gate's steps are its children.

use rmcp::RoleServer;
use rmcp::model::RequestMetaObject;
use rmcp::service::RequestContext;

use crate::audit::{MAX_RECORDED_NAME, bounded};
use crate::telemetry::{self, Trace};

/// What a request is about, for its span's name and attributes.
pub(super) enum Subject<'a> {
    /// `tools/call` of this tool.
    Tool(&'a str),
    /// `prompts/get` of this prompt.
    Prompt(&'a str),
    /// A method whose subject is not named (`resources/read`: a URI may carry data).
    Unnamed,
}

/// The trace of a `method` request about `subject`, child of the trace context the request
/// carries: its `params._meta.traceparent`/`tracestate`, else its HTTP `traceparent`/
/// `tracestate` headers (a malformed one is ignored; with neither, a new trace). `None` when
/// traces are off.
pub(super) fn request_trace(
    method: &'static str,
    subject: Subject<'_>,
    context: &RequestContext<RoleServer>,
) -> Option<Trace> {
    let parts = context.extensions.get::<http::request::Parts>();
    trace_of(method, subject, &context.meta, parts)
}

/// [`request_trace`] of a request known by its `_meta` and, over HTTP, its request's `parts`.
pub(super) fn trace_of(
    method: &'static str,
    subject: Subject<'_>,
    meta: &RequestMetaObject,
    parts: Option<&http::request::Parts>,
) -> Option<Trace> {
    if !telemetry::enabled() {
        return None;
    }
    let (span_name, subject) = match subject {
        Subject::Tool(name) => named(method, "gen_ai.tool.name", name),
        Subject::Prompt(name) => named(method, "gen_ai.prompt.name", name),
        Subject::Unnamed => (method.to_owned(), None),
    };
    // `_meta` first: it is the MCP client's context for this very request, while the
    // header belongs to the HTTP hop (an instrumented HTTP library or a proxy sets its own).
    let meta = meta
        .get_traceparent()
        .map(|parent| (parent, meta.get_tracestate()));
    let headers = parts.and_then(|parts| {
        let parent = parts.headers.get("traceparent")?.to_str().ok()?;
        let state = parts
            .headers
            .get("tracestate")
            .and_then(|value| value.to_str().ok());
        Some((parent, state))
    });
    telemetry::start_request(span_name, method, subject, meta.into_iter().chain(headers))
}

/// The span name `METHOD NAME` and the attribute `key` naming the subject (bounded).
fn named(method: &str, key: &'static str, name: &str) -> (String, Option<telemetry::Subject>) {
    let name = bounded(name, MAX_RECORDED_NAME);
    let span_name = format!("{method} {name}");
    let name = name.into_owned();
    (span_name, Some(telemetry::Subject { key, name }))
}
