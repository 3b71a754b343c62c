//! OpenTelemetry traces (`[tracing]`): the real `warden` binary exports its request spans over
//! OTLP/HTTP to a receiver started here (decoded with the `opentelemetry-proto` types), with
//! rmcp's HTTP and stdio clients as the callers.

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use common::{Fixture, HttpServer};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use rmcp::model::{CallToolRequestParams, RequestMetaObject};
use rmcp::service::ClientLifecycleMode;
use serde_json::json;

/// A trace id and a parent span id a client sends.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
/// Another, sent in `_meta`.
const META_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const META_PARENT_ID: &str = "b7ad6b7169203331";
/// In the arguments and the result of calls: never in what is exported.
const MARKER: &str = "argument-marker-5c1e";

/// The gate's steps a plain tool call goes through (`gate.slot` under a `concurrency` cap),
/// each a child of the request span.
const STEPS: [&str; 8] = [
    "gate.authorize",
    "gate.rate_limit",
    "gate.validate",
    "gate.slot",
    "gate.run",
    "gate.filter",
    "gate.cap",
    "audit.write",
];

/// Environment for every server here: export quickly (100ms batches), and no `OTEL_*`
/// setting of the machine running the tests.
const ENV: [(&str, &str); 1] = [("OTEL_BSP_SCHEDULE_DELAY", "100")];

/// How the receiver answers an export.
#[derive(Clone, Copy)]
enum Mode {
    /// 200 with an empty `ExportTraceServiceResponse`.
    Answer,
    /// Never: the request hangs.
    Hang,
}

/// What the receiver got: the spans, the raw bodies, the export requests.
#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    services: Arc<Mutex<Vec<String>>>,
    raw: Arc<Mutex<Vec<u8>>>,
    requests: Arc<AtomicUsize>,
    mode: Arc<Mutex<Option<Mode>>>,
}

/// An OTLP/HTTP receiver on 127.0.0.1 (`POST /v1/traces`, protobuf).
struct Receiver {
    /// `http://127.0.0.1:PORT`.
    url: String,
    received: Received,
}

async fn export(State(received): State<Received>, body: Bytes) -> axum::response::Response {
    received.requests.fetch_add(1, Ordering::SeqCst);
    let mode = received.mode.lock().expect("lock").unwrap_or(Mode::Answer);
    if let Mode::Hang = mode {
        std::future::pending::<()>().await;
    }
    received.raw.lock().expect("lock").extend_from_slice(&body);
    let request = ExportTraceServiceRequest::decode(body).expect("a valid OTLP protobuf body");
    for resource in request.resource_spans {
        if let Some(resource) = &resource.resource {
            for kv in &resource.attributes {
                if kv.key == "service.name"
                    && let Some(value) = string_value(kv.value.as_ref())
                {
                    received.services.lock().expect("lock").push(value);
                }
            }
        }
        for scope in resource.scope_spans {
            received.spans.lock().expect("lock").extend(scope.spans);
        }
    }
    axum::response::Response::builder()
        .status(200)
        .header("content-type", "application/x-protobuf")
        .body(axum::body::Body::empty())
        .expect("response")
}

impl Receiver {
    async fn start(mode: Mode) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let port = listener.local_addr().expect("address").port();
        let received = Received::default();
        *received.mode.lock().expect("lock") = Some(mode);
        let app = axum::Router::new()
            .route("/v1/traces", post(export))
            .with_state(received.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}"),
            received,
        }
    }

    fn spans(&self) -> Vec<Span> {
        self.received.spans.lock().expect("lock").clone()
    }

    /// Wait (up to 60s) until a span satisfies `found`, and return it with every span of its
    /// trace received by then.
    async fn wait_for(&self, what: &str, found: impl Fn(&Span) -> bool) -> (Span, Vec<Span>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let spans = self.spans();
            if let Some(span) = spans.iter().find(|s| found(s)) {
                // The children end before the request span, in the same or an earlier batch.
                let trace: Vec<Span> = spans
                    .iter()
                    .filter(|s| s.trace_id == span.trace_id)
                    .cloned()
                    .collect();
                return (span.clone(), trace);
            }
            assert!(
                Instant::now() < deadline,
                "no {what} exported; got {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn string_value(
    value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>,
) -> Option<String> {
    match value?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| string_value(kv.value.as_ref()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn manifest(tracing: &str) -> Fixture {
    Fixture::new(&format!(
        r#"
[server]
principal = "ann"

[audit]
path = "{{dir}}/audit.jsonl"

[plugins.testbed]
component = "{{testbed}}"
{tracing}
"#
    ))
}

/// `warden serve --http 127.0.0.1:0` on `fixture` with [`ENV`] and `env`.
async fn http_server(fixture: &Fixture, env: &[(&str, &str)]) -> HttpServer {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--manifest"])
        .arg(&fixture.manifest)
        .args(["--http", "127.0.0.1:0"])
        .env("WARDEN_LOG", "info")
        .envs(ENV)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn warden");
    HttpServer::started(child).await
}

/// An rmcp HTTP client of `server` sending `headers` with every request.
async fn http_client(
    server: &HttpServer,
    headers: &[(&'static str, &str)],
) -> rmcp::service::RunningService<rmcp::RoleClient, common::Recorder> {
    let headers: HashMap<http::HeaderName, http::HeaderValue> = headers
        .iter()
        .map(|(name, value)| {
            (
                http::HeaderName::from_static(name),
                http::HeaderValue::from_str(value).expect("header value"),
            )
        })
        .collect();
    server
        .connect(
            server.client_config(None).custom_headers(headers),
            ClientLifecycleMode::Initialize,
        )
        .await
        .expect("connect")
}

/// `testbed__emit` with [`MARKER`] in its argument, and `_meta` trace context if given.
fn emit(meta: Option<(&str, &str)>) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new("testbed__emit")
        .with_arguments(common::object(json!({"text": MARKER})));
    if let Some((traceparent, tracestate)) = meta {
        let mut object = RequestMetaObject::default();
        object.set_traceparent(traceparent);
        object.set_tracestate(tracestate);
        params.meta = Some(object);
    }
    params
}

/// The names of the threads of process `pid`.
fn threads(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

fn has_exporter_thread(pid: u32) -> bool {
    threads(pid)
        .iter()
        .any(|name| name.starts_with("OpenTelemetry"))
}

#[tokio::test]
async fn http_traceparent_is_the_parent_and_the_gate_steps_are_children() {
    let receiver = Receiver::start(Mode::Answer).await;
    let fixture = manifest(&format!(
        "concurrency = 4\n\n[tracing]\notlp = \"{}\"\nservice_name = \"warden-under-test\"\n",
        receiver.url
    ));
    let server = http_server(&fixture, &[]).await;
    let pid = server.child.id().expect("pid");
    assert!(has_exporter_thread(pid), "threads: {:?}", threads(pid));
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let client = http_client(
        &server,
        &[("traceparent", &traceparent), ("tracestate", "vendor=1")],
    )
    .await;
    let result = client.call_tool(emit(None)).await.expect("tools/call");
    assert!(common::ok_text(&result).contains(MARKER), "{result:?}");

    let (request, trace) = receiver
        .wait_for("request span of the HTTP trace", |s| {
            s.name == "tools/call testbed__emit" && hex(&s.trace_id) == TRACE_ID
        })
        .await;
    assert_eq!(hex(&request.parent_span_id), PARENT_ID, "{request:?}");
    assert_eq!(request.trace_state, "vendor=1");
    assert_eq!(request.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(
        attr(&request, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(
        attr(&request, "gen_ai.tool.name").as_deref(),
        Some("testbed__emit")
    );
    assert_eq!(attr(&request, "warden.plugin").as_deref(), Some("testbed"));
    assert_eq!(attr(&request, "warden.outcome").as_deref(), Some("ok"));
    // The principal only when opted in.
    assert_eq!(attr(&request, "enduser.id"), None, "{request:?}");
    for step in STEPS {
        let child = trace.iter().find(|s| s.name == step).unwrap_or_else(|| {
            panic!(
                "no {step} span in {:?}",
                trace.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
        assert_eq!(child.parent_span_id, request.span_id, "{step} is a child");
    }
    // Nothing else of warden's spans or log lines is exported.
    for span in &trace {
        assert!(
            span.name.starts_with("gate.")
                || span.name == "audit.write"
                || span.name == request.name,
            "unexpected span {}",
            span.name
        );
    }
    assert!(
        receiver
            .received
            .services
            .lock()
            .expect("lock")
            .iter()
            .all(|s| s == "warden-under-test")
    );
    // The audit record carries the trace id.
    let records = fixture.audit_log("audit.jsonl");
    let record = records
        .iter()
        .find(|r| r["tool"] == "testbed__emit")
        .expect("the call's record");
    assert_eq!(record["trace_id"], TRACE_ID, "{record}");

    // Arguments and results are never exported: not in attributes, events, anywhere.
    let raw = receiver.received.raw.lock().expect("lock").clone();
    assert!(
        !raw.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
        "the argument reached the collector"
    );

    // A refused request is traced too, with its outcome and an error status.
    let unknown = client
        .call_tool(CallToolRequestParams::new("testbed__no_such_tool"))
        .await;
    assert!(unknown.is_err(), "{unknown:?}");
    let (refused, _) = receiver
        .wait_for("span of the refused call", |s| {
            s.name == "tools/call testbed__no_such_tool"
        })
        .await;
    assert_eq!(attr(&refused, "warden.outcome").as_deref(), Some("invalid"));
    assert_eq!(attr(&refused, "warden.plugin"), None);
    let status = refused.status.as_ref().expect("a status");
    assert_eq!(status.code, 2, "STATUS_CODE_ERROR: {status:?}");
    let _ = client.cancel().await;
}

#[tokio::test]
async fn meta_trace_context_wins_over_the_header_and_a_malformed_one_is_ignored() {
    let receiver = Receiver::start(Mode::Answer).await;
    let fixture = manifest(&format!(
        "[tracing]\notlp = \"{}/v1/traces\"\nprincipal = true\n",
        receiver.url
    ));
    let server = http_server(&fixture, &[]).await;
    let header = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let client = http_client(&server, &[("traceparent", &header)]).await;

    // Both: `_meta` is the parent.
    let meta = format!("00-{META_TRACE_ID}-{META_PARENT_ID}-01");
    let result = client
        .call_tool(emit(Some((&meta, "meta=2"))))
        .await
        .expect("tools/call");
    assert!(common::ok_text(&result).contains(MARKER));
    let (request, _) = receiver
        .wait_for("request span under _meta's trace", |s| {
            s.name.starts_with("tools/call") && hex(&s.trace_id) == META_TRACE_ID
        })
        .await;
    assert_eq!(hex(&request.parent_span_id), META_PARENT_ID);
    assert_eq!(request.trace_state, "meta=2");
    // `principal = true`: the principal is on the span.
    assert_eq!(attr(&request, "enduser.id").as_deref(), Some("ann"));
    let _ = client.cancel().await;

    // Hostile: malformed trace context in the header and in `_meta`. The call works and
    // starts a trace of its own.
    let client = http_client(
        &server,
        &[(
            "traceparent",
            "00-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-00f067aa0ba902b7-01",
        )],
    )
    .await;
    let before = receiver.spans().len();
    let bad_meta = format!("00-{}-{PARENT_ID}-01", "0".repeat(32));
    let result = client
        .call_tool(emit(Some((&bad_meta, "\u{1}not=state"))))
        .await
        .expect("a malformed traceparent is never an error");
    assert!(common::ok_text(&result).contains(MARKER));
    let deadline = Instant::now() + Duration::from_secs(60);
    let fresh = loop {
        let spans = receiver.spans();
        if let Some(span) = spans[before.min(spans.len())..]
            .iter()
            .find(|s| s.name.starts_with("tools/call"))
        {
            break span.clone();
        }
        assert!(Instant::now() < deadline, "no span for the malformed call");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(fresh.parent_span_id.is_empty(), "a new root: {fresh:?}");
    let trace = hex(&fresh.trace_id);
    assert_ne!(trace, "0".repeat(32));
    assert_ne!(trace, TRACE_ID);
    assert_ne!(trace, META_TRACE_ID);
    let records = fixture.audit_log("audit.jsonl");
    assert_eq!(records.last().expect("records")["trace_id"], trace);
    let _ = client.cancel().await;
}

/// The sampler decides once, when the request arrives: with `sample = 0`, a request without a
/// parent and one whose parent is not sampled export nothing (neither their span nor their
/// steps), yet their audit records carry their trace ids; a sampled parent is followed, with
/// every step.
#[tokio::test]
async fn sampling_is_decided_when_the_request_arrives_and_an_unsampled_one_exports_nothing() {
    let receiver = Receiver::start(Mode::Answer).await;
    let fixture = manifest(&format!(
        "concurrency = 4\n\n[tracing]\notlp = \"{}\"\nsample = 0\n",
        receiver.url
    ));
    let server = http_server(&fixture, &[]).await;

    let unsampled = format!("00-{TRACE_ID}-{PARENT_ID}-00");
    let client = http_client(&server, &[("traceparent", &unsampled)]).await;
    let result = client.call_tool(emit(None)).await.expect("tools/call");
    assert!(common::ok_text(&result).contains(MARKER));
    let _ = client.cancel().await;
    let client = http_client(&server, &[]).await;
    let result = client.call_tool(emit(None)).await.expect("tools/call");
    assert!(common::ok_text(&result).contains(MARKER));

    let sampled = format!("00-{META_TRACE_ID}-{META_PARENT_ID}-01");
    let result = client
        .call_tool(emit(Some((&sampled, "meta=2"))))
        .await
        .expect("tools/call");
    assert!(common::ok_text(&result).contains(MARKER));
    let (request, _) = receiver
        .wait_for("the sampled request's span", |s| {
            s.name.starts_with("tools/call") && hex(&s.trace_id) == META_TRACE_ID
        })
        .await;
    // Its steps end before it, so they were exported with it or before.
    let spans = receiver.spans();
    for step in STEPS {
        assert!(
            spans
                .iter()
                .any(|s| s.name == step && s.parent_span_id == request.span_id),
            "no {step} under the sampled request: {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
    }
    assert!(
        spans.iter().all(|s| hex(&s.trace_id) == META_TRACE_ID),
        "an unsampled request was exported: {spans:?}"
    );

    let records = fixture.audit_log("audit.jsonl");
    let calls: Vec<_> = records
        .iter()
        .filter(|r| r["tool"] == "testbed__emit")
        .collect();
    assert_eq!(calls.len(), 3, "{records:?}");
    assert_eq!(calls[0]["trace_id"], TRACE_ID);
    let own = calls[1]["trace_id"]
        .as_str()
        .expect("a trace id of its own");
    assert!(
        own.len() == 32 && own != TRACE_ID && own != META_TRACE_ID,
        "{own}"
    );
    assert_eq!(calls[2]["trace_id"], META_TRACE_ID);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn meta_trace_context_is_honoured_over_stdio() {
    let receiver = Receiver::start(Mode::Answer).await;
    let fixture = manifest(&format!("[tracing]\notlp = \"{}\"\n", receiver.url));
    let client = fixture.client_env(&ENV).await;
    let meta = format!("00-{META_TRACE_ID}-{META_PARENT_ID}-01");
    let result = client
        .service
        .call_tool(emit(Some((&meta, "k=v"))))
        .await
        .expect("tools/call");
    assert!(common::ok_text(&result).contains(MARKER));
    let (request, trace) = receiver
        .wait_for("request span over stdio", |s| {
            s.name.starts_with("tools/call") && hex(&s.trace_id) == META_TRACE_ID
        })
        .await;
    assert_eq!(hex(&request.parent_span_id), META_PARENT_ID);
    assert!(trace.iter().any(|s| s.name == "gate.run"));
    let records = fixture.audit_log("audit.jsonl");
    assert_eq!(records.last().expect("records")["trace_id"], META_TRACE_ID);
    client.close().await;
}

#[tokio::test]
async fn without_tracing_nothing_is_exported_and_no_exporter_thread_starts() {
    let receiver = Receiver::start(Mode::Answer).await;
    let fixture = manifest("");
    // The standard variables alone do not turn traces on.
    let endpoint = receiver.url.clone();
    let server = http_server(&fixture, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]).await;
    let pid = server.child.id().expect("pid");
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let client = http_client(&server, &[("traceparent", &traceparent)]).await;
    for _ in 0..3 {
        let result = client.call_tool(emit(None)).await.expect("tools/call");
        assert!(common::ok_text(&result).contains(MARKER));
    }
    assert!(!has_exporter_thread(pid), "threads: {:?}", threads(pid));
    // Well past the 100ms batch delay a tracing server would use.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received.requests.load(Ordering::SeqCst), 0);
    let records = fixture.audit_log("audit.jsonl");
    assert_eq!(records.len(), 3);
    assert!(
        records.iter().all(|r| r.get("trace_id").is_none()),
        "{records:?}"
    );
    let _ = client.cancel().await;
}

#[tokio::test]
async fn a_hanging_or_absent_collector_never_blocks_or_fails_a_call() {
    // A collector that accepts and never answers, and a queue of 16 spans (a call makes ten).
    let hanging = Receiver::start(Mode::Hang).await;
    let fixture = manifest(&format!(
        "[tracing]\notlp = \"{}\"\nqueue = 16\n",
        hanging.url
    ));
    let mut server = http_server(&fixture, &[("OTEL_EXPORTER_OTLP_TIMEOUT", "500")]).await;
    let client = http_client(&server, &[]).await;
    let started = Instant::now();
    for _ in 0..30 {
        let result = client.call_tool(emit(None)).await.expect("tools/call");
        assert!(common::ok_text(&result).contains(MARKER));
    }
    // A generous bound: 30 calls do not wait for 500ms exports, let alone a hanging one.
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(
        hanging.received.requests.load(Ordering::SeqCst) >= 1,
        "the exporter did try"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(server.stderr().contains("dropped a Span due to queue full")
        && server
            .stderr()
            .contains("an export to the OTLP collector failed"))
    {
        assert!(
            Instant::now() < deadline,
            "drops not logged:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fixture.audit_log("audit.jsonl").len(), 30);
    let _ = client.cancel().await;
    // Stopping does not hang on the collector either; the total is logged.
    let status = server.terminate().await;
    assert!(status.success(), "{status:?}\n{}", server.stderr());
    // The reader of its stderr may still be behind the exit: wait for the last lines.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.stderr().contains("span(s) were dropped in all") {
        assert!(Instant::now() < deadline, "{}", server.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A collector that is not there at all.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let fixture = manifest(&format!("[tracing]\notlp = \"http://127.0.0.1:{port}\"\n"));
    let server = http_server(&fixture, &[]).await;
    let client = http_client(&server, &[]).await;
    for _ in 0..5 {
        let result = client.call_tool(emit(None)).await.expect("tools/call");
        assert!(common::ok_text(&result).contains(MARKER));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server
        .stderr()
        .contains("an export to the OTLP collector failed")
    {
        assert!(Instant::now() < deadline, "{}", server.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fixture.audit_log("audit.jsonl").len(), 5);
    let _ = client.cancel().await;
}

#[tokio::test]
async fn tracing_settings_are_checked_at_their_line() {
    let fixture = manifest(
        "[tracing]\notlp = \"ftp://collector\"\nsample = 2.5\nqueue = 1\ncolour = \"blue\"\n",
    );
    let (code, _, stderr) = common::warden(
        &[
            "check",
            "--manifest",
            &fixture.manifest.display().to_string(),
        ],
        fixture.dir.path(),
    );
    assert_ne!(code, 0, "{stderr}");
    for expected in [
        "invalid otlp URL",
        "sample must be a number from 0 to 1",
        "queue must be between 16 and 1000000",
        "unknown key `colour`",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in:\n{stderr}");
    }
}

#[tokio::test]
async fn prompts_and_resources_are_traced_with_their_steps_and_no_uri() {
    let receiver = Receiver::start(Mode::Answer).await;
    let fixture = Fixture::new(&format!(
        "[server]\nprincipal = \"ann\"\n\n[audit]\npath = \"{{dir}}/audit.jsonl\"\n\n\
         [plugins.conformance]\ncomponent = \"{{conformance}}\"\n\n\
         [tracing]\notlp = \"{}\"\n",
        receiver.url
    ));
    let client = fixture.client_env(&ENV).await;
    client
        .service
        .get_prompt(rmcp::model::GetPromptRequestParams::new(
            "conformance__test_simple_prompt",
        ))
        .await
        .expect("prompts/get");
    let (request, trace) = receiver
        .wait_for("prompts/get span", |s| {
            s.name == "prompts/get conformance__test_simple_prompt"
        })
        .await;
    assert_eq!(
        attr(&request, "gen_ai.prompt.name").as_deref(),
        Some("conformance__test_simple_prompt")
    );
    assert_eq!(
        attr(&request, "warden.plugin").as_deref(),
        Some("conformance")
    );
    assert_eq!(attr(&request, "warden.outcome").as_deref(), Some("ok"));
    for step in [
        "gate.authorize",
        "gate.rate_limit",
        "gate.run",
        "gate.filter",
        "gate.cap",
        "audit.write",
    ] {
        assert!(
            trace
                .iter()
                .any(|s| s.name == step && s.parent_span_id == request.span_id),
            "no {step} under the prompt's span: {:?}",
            trace.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
    }

    client
        .service
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "test://static-text",
        ))
        .await
        .expect("resources/read");
    let (request, trace) = receiver
        .wait_for("resources/read span", |s| s.name == "resources/read")
        .await;
    assert_eq!(
        attr(&request, "warden.plugin").as_deref(),
        Some("conformance")
    );
    assert!(trace.iter().any(|s| s.name == "gate.run"));
    // The URI is named nowhere in what is exported.
    let raw = receiver.received.raw.lock().expect("lock").clone();
    assert!(
        !raw.windows(b"test://".len()).any(|w| w == b"test://"),
        "a URI reached the collector"
    );
    client.close().await;
}
