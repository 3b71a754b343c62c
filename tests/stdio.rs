//! MCP over stdio with rmcp's client and the real binary: tools/list, tools/call, argument
//! validation, notifications, both protocol eras, and a protocol stream plugins cannot corrupt.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::{Fixture, err_text, ok_text};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

const ALL: &str = r#"
[plugins.files]
component = "{files}"
dirs = [{ host = "{dir}", guest = "/data", mode = "ro" }]

[plugins.codec]
component = "{codec}"

[plugins.testbed]
component = "{testbed}"
dirs = [{ host = "{dir}/scratch", guest = "/scratch", mode = "rw" }]

[plugins.testbed.tools.env]
name = "read_env"
description = "Overridden description."
"#;

/// The fixture of [`ALL`], with its scratch directory.
fn all() -> Fixture {
    let fixture = Fixture::new(ALL);
    std::fs::create_dir(fixture.path("scratch")).expect("scratch directory");
    fixture
}

#[tokio::test]
async fn tools_list_shows_names_descriptions_schemas_and_annotations() {
    let fixture = all();
    let client = fixture.client().await;
    let tools = client.service.list_all_tools().await.expect("tools/list");
    let find = |name: &str| {
        tools.iter().find(|t| t.name == name).unwrap_or_else(|| {
            panic!(
                "{name} not listed among {:?}",
                tools.iter().map(|t| &t.name).collect::<Vec<_>>()
            )
        })
    };

    let read = find("files__read_text");
    let description = read.description.as_deref().unwrap_or_default();
    assert!(
        !description.is_empty() && !description.contains("from plugin"),
        "WIT docs: {description}"
    );
    assert!(
        description.ends_with("Granted directories: /data (read-only)."),
        "{description}"
    );
    let schema = Value::Object((*read.input_schema).clone());
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["properties"]["path"]["type"], "string");
    let max_bytes = &schema["properties"]["max_bytes"]["anyOf"];
    assert_eq!(max_bytes[0]["type"], "integer");
    assert_eq!(max_bytes[0]["maximum"], json!(u32::MAX));
    assert_eq!(max_bytes[1]["type"], "null");
    assert_eq!(schema["required"], json!(["path"]));
    let hints = read.annotations.as_ref().expect("annotations");
    assert_eq!(hints.read_only_hint, Some(true));
    assert_eq!(hints.open_world_hint, Some(false));

    assert!(tools.iter().any(|t| t.name.starts_with("codec__")));
    let writable = find("testbed__write_file");
    assert_eq!(
        writable.annotations.as_ref().and_then(|a| a.read_only_hint),
        Some(false)
    );

    let renamed = find("read_env");
    assert_eq!(
        renamed.description.as_deref(),
        Some("Overridden description.\n\nGranted directories: /scratch (read-write).")
    );
    assert!(!tools.iter().any(|t| t.name == "testbed__env"));
    for tool in &tools {
        assert!(common::is_valid_name(&tool.name), "{}", tool.name);
    }
    client.close().await;
}

#[tokio::test]
async fn both_protocol_eras_list_and_call() {
    let fixture = all();
    std::fs::write(fixture.path("note.txt"), "era test").expect("write");
    for client in [fixture.client().await, fixture.client_2026().await] {
        let tools = client.service.list_all_tools().await.expect("tools/list");
        assert!(tools.iter().any(|t| t.name == "files__read_text"));
        let result = client
            .call("files__read_text", json!({"path": "/data/note.txt"}))
            .await;
        assert_eq!(ok_text(&result), "era test");
        client.close().await;
    }
}

#[tokio::test]
async fn unknown_tool_is_a_protocol_error_and_the_server_survives() {
    let fixture = all();
    let client = fixture.client().await;
    let error = client
        .service
        .call_tool(CallToolRequestParams::new("nope__nothing"))
        .await
        .expect_err("unknown tool");
    assert!(error.to_string().contains("unknown tool"), "{error}");
    let tools = client
        .service
        .list_all_tools()
        .await
        .expect("still serving");
    assert!(!tools.is_empty());
    client.close().await;
}

#[tokio::test]
async fn progress_and_log_notifications_reach_the_client() {
    let fixture = all();
    let client = fixture.client().await;
    let mut params = CallToolRequestParams::new("testbed__progress")
        .with_arguments(common::object(json!({"steps": 3})));
    params.meta = Some(rmcp::model::RequestMetaObject::with_progress_token(
        rmcp::model::ProgressToken(rmcp::model::NumberOrString::Number(7)),
    ));
    let result = client.service.call_tool(params).await.expect("tools/call");
    ok_text(&result);
    // Notifications are sent before the response; give the client's reader a moment to
    // dispatch them to the handler.
    for _ in 0..50 {
        if client.recorder.progress.lock().expect("lock").len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let progress = client.recorder.progress.lock().expect("lock").clone();
    assert_eq!(progress.len(), 3, "{progress:?}");
    assert_eq!(progress[2].progress, 3.0);
    assert_eq!(progress[2].total, Some(3.0));
    let logs = client.recorder.logs.lock().expect("lock").clone();
    assert!(!logs.is_empty(), "plugin log messages reach the client");
    client.close().await;
}

/// Speak raw JSON-RPC to `warden serve` and check that every line on its stdout is one of
/// our responses, even while a plugin prints to its stdout and stderr.
#[test]
fn plugin_output_never_reaches_the_protocol_stream() {
    let fixture = all();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--manifest"])
        .arg(&fixture.manifest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let requests = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "testbed__shout", "arguments": {"lines": 50}}}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
    ];
    for request in &requests {
        writeln!(stdin, "{request}").expect("write request");
    }
    stdin.flush().expect("flush");
    let mut ids = Vec::new();
    for line in stdout.lines() {
        let line = line.expect("read stdout");
        let message: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("non-JSON line on the protocol stream ({e}): {line}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
        if let Some(id) = message.get("id").and_then(Value::as_u64) {
            assert!(
                message.get("result").is_some() || message.get("error").is_some(),
                "{line}"
            );
            if id == 2 {
                assert_ne!(
                    message["result"]["isError"],
                    json!(true),
                    "shout failed: {line}"
                );
            }
            ids.push(id);
            if ids.len() == 3 {
                break;
            }
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3], "exactly one response per request");
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn each_kind_of_invalid_argument_is_refused_naming_the_argument() {
    let fixture = all();
    let client = fixture.client().await;
    let point = json!({"tiny": 1, "label": "a", "on": true});
    let cases = [
        (
            "testbed__echo_record",
            json!({"value": {"tiny": 300, "label": "a", "on": true}}),
            "value.tiny: 300 is out of range for u8",
        ),
        (
            "testbed__echo_record",
            json!({"value": {"tiny": -1, "label": "a", "on": true}}),
            "value.tiny",
        ),
        (
            "testbed__echo_record",
            json!({"value": {"tiny": 1.5, "label": "a", "on": true}}),
            "value.tiny",
        ),
        (
            "testbed__echo_record",
            json!({"value": {"tiny": "1", "label": "a", "on": true}}),
            "value.tiny: expected integer, got string",
        ),
        (
            "testbed__echo_record",
            json!({"value": {"label": "a", "on": true}}),
            "value.tiny: missing required field",
        ),
        (
            "testbed__echo_record",
            json!({"value": {"tiny": 1, "label": "a", "on": true, "colour": 1}}),
            "colour",
        ),
        (
            "testbed__echo_record",
            json!({}),
            "value: missing required field",
        ),
        (
            "testbed__echo_record",
            json!({"value": point, "extra": 1}),
            "extra",
        ),
        (
            "testbed__echo_nested",
            json!({"value": {"id": 1, "points": [point, {"tiny": 256, "label": "b", "on": false}], "tags": []}}),
            "value.points[1].tiny",
        ),
        (
            "testbed__echo_char",
            json!({"value": "ab"}),
            "value: expected a single character",
        ),
        ("testbed__echo_enum", json!({"value": "purple"}), "value"),
        (
            "testbed__echo_variant",
            json!({"value": {"tag": "triangle"}}),
            "value",
        ),
        (
            "testbed__echo_flags",
            json!({"value": ["read", "fly"]}),
            "value",
        ),
        ("testbed__echo_tuple", json!({"value": ["a", 1]}), "value"),
        (
            "testbed__echo_bytes",
            json!({"value": "not base64!"}),
            "value",
        ),
        (
            "testbed__echo_scalars",
            json!({"signed": 1, "unsigned": -5, "float": 1.0}),
            "unsigned",
        ),
        (
            "testbed__echo_result",
            json!({"value": {"ok": 1, "err": "x"}}),
            "value",
        ),
        (
            "files__read_text",
            json!({"path": 42}),
            "path: expected string, got integer",
        ),
    ];
    for (tool, args, needle) in cases {
        let result = client.call(tool, args.clone()).await;
        let message = err_text(&result);
        assert!(
            message.contains("invalid arguments"),
            "{tool} {args}: {message}"
        );
        assert!(
            message.contains(needle),
            "{tool} {args}: expected `{needle}` in `{message}`"
        );
    }
    client.close().await;
}

#[tokio::test]
async fn values_of_every_wit_type_survive_the_round_trip() {
    let fixture = all();
    let client = fixture.client().await;
    let point = json!({"tiny": 255, "label": "ü", "on": true});
    let cases = [
        ("testbed__echo_record", point.clone()),
        (
            "testbed__echo_nested",
            json!({"id": 7, "name": "n", "origin": point, "points": [point], "tags": ["a", "b"]}),
        ),
        ("testbed__echo_enum", json!("green")),
        (
            "testbed__echo_variant",
            json!({"tag": "rectangle", "value": point}),
        ),
        ("testbed__echo_variant", json!({"tag": "none"})),
        ("testbed__echo_flags", json!(["read", "exec"])),
        ("testbed__echo_tuple", json!(["x", 4_000_000_000u32, false])),
        ("testbed__echo_char", json!("🦀")),
        ("testbed__echo_bytes", json!("AAEC/w==")),
        ("testbed__echo_list", json!(["a", "", "c"])),
        (
            "testbed__echo_numbers",
            json!({"a_u8": 255, "a_s8": -128, "a_u16": 65535, "a_s16": -32768,
            "a_u32": 4294967295u32, "a_s32": -2147483648i32, "a_u64": u64::MAX, "a_s64": i64::MIN,
            "a_f32": 1.5, "a_f64": -0.25}),
        ),
    ];
    for (tool, value) in cases {
        let result = client.call(tool, json!({ "value": value })).await;
        ok_text(&result);
        let structured = result
            .structured_content
            .clone()
            .expect("structured content");
        let echoed = structured.get("result").cloned().unwrap_or(structured);
        assert_eq!(echoed, value, "{tool}");
    }
    let option = client.call("testbed__echo_option", json!({})).await;
    assert_eq!(option.structured_content, Some(json!({"result": null})));
    let ok = client
        .call("testbed__echo_result", json!({"value": {"ok": 3}}))
        .await;
    assert_eq!(ok.structured_content, Some(json!({"result": 3})));
    let err = client
        .call("testbed__echo_result", json!({"value": {"err": "bad"}}))
        .await;
    assert_eq!(err_text(&err), "bad");
    client.close().await;
}

#[tokio::test]
async fn rich_results_and_errors_map_to_mcp_content() {
    let fixture = all();
    let client = fixture.client().await;
    let rich = client.call("testbed__rich", json!({})).await;
    ok_text(&rich);
    assert!(
        rich.content.iter().any(
            |c| matches!(c, rmcp::model::ContentBlock::Image(i) if i.mime_type == "image/png")
        ),
        "{rich:?}"
    );
    assert!(rich.structured_content.is_some());
    let fail = client
        .call("testbed__fail", json!({"message": "it went wrong"}))
        .await;
    assert_eq!(err_text(&fail), "it went wrong");
    client.close().await;
}

/// `warden serve` on `fixture`, spoken to in raw JSON-RPC lines; replies arrive on a channel.
struct RawServer {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    replies: std::sync::mpsc::Receiver<Value>,
    /// Messages read while waiting for another id's answer.
    pending: Vec<Value>,
}

impl RawServer {
    fn start(fixture: &Fixture) -> Self {
        Self::start_with(fixture, json!({}), None)
    }

    /// A session whose client declares `capabilities`; with `log`, the server logs at that
    /// filter to the fixture's `stderr.log`.
    fn start_with(fixture: &Fixture, capabilities: Value, log: Option<&str>) -> Self {
        let mut server = Self::spawn(fixture, log);
        server.line(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": capabilities,
            "clientInfo": {"name": "raw", "version": "0"}}})
            .to_string(),
        );
        assert_eq!(server.reply()["id"], 0);
        server.line(r#"{"jsonrpc": "2.0", "method": "notifications/initialized"}"#);
        server
    }

    /// The server, with no session opened (the stateless 2026-07-28 era); `log` as above.
    fn spawn(fixture: &Fixture, log: Option<&str>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
        command
            .args(["serve", "--manifest"])
            .arg(&fixture.manifest)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(filter) = log {
            let file = std::fs::File::create(fixture.path("stderr.log")).expect("log file");
            command.env("WARDEN_LOG", filter).stderr(file);
        }
        let mut child = command.spawn().expect("spawn");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (send, replies) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let message = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("non-JSON line on stdout ({e}): {line}"));
                if send.send(message).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            replies,
            pending: Vec::new(),
        }
    }

    fn line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write");
        stdin.flush().expect("flush");
    }

    /// The next message from the server, within 10 seconds.
    fn reply(&mut self) -> Value {
        if !self.pending.is_empty() {
            return self.pending.remove(0);
        }
        self.replies
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("an answer within 10 s")
    }

    /// The answer to request `id`; other messages wait in `pending`.
    fn reply_to(&mut self, id: u64) -> Value {
        if let Some(at) = self.pending.iter().position(|m| m["id"] == id) {
            return self.pending.remove(at);
        }
        loop {
            let message = self
                .replies
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("an answer within 10 s");
            if message["id"] == id {
                return message;
            }
            self.pending.push(message);
        }
    }

    /// Close stdin: every message the server writes until it exits, and how it exited.
    fn close(&mut self) -> (Vec<Value>, std::process::ExitStatus) {
        drop(self.stdin.take());
        let messages = self.replies.iter().collect();
        (messages, self.child.wait().expect("warden exits"))
    }

    /// Whether an answer to request `id` has arrived (and was set aside).
    fn answered(&mut self, id: u64) -> bool {
        while let Ok(message) = self.replies.try_recv() {
            self.pending.push(message);
        }
        self.pending.iter().any(|m| m["id"] == id)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn malformed_json_rpc_is_answered_and_the_server_keeps_serving() {
    let fixture = Fixture::new("[plugins.codec]\ncomponent = \"{codec}\"\n");
    let mut server = RawServer::start(&fixture);

    server.line("this is not JSON {");
    let reply = server.reply();
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    assert!(reply.get("result").is_none(), "{reply}");

    server.line(r#"{"jsonrpc": "2.0", "id": 7, "method": 42}"#);
    let reply = server.reply();
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert_eq!(
        reply["id"], 7,
        "the id is echoed when it can be read: {reply}"
    );

    // A notification that cannot be read gets no answer; the next request is served.
    server.line(r#"{"jsonrpc": "2.0", "method": "notifications/initialized", "params": 5}"#);
    server.line(r#"{"jsonrpc": "2.0", "id": 8, "method": "tools/list"}"#);
    let reply = server.reply();
    assert_eq!(reply["id"], 8, "{reply}");
    assert!(
        reply["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{reply}"
    );
}

/// The answer of `testbed__ask` whose question the client accepted with `{"answer": "yes"}`.
fn accepted_with_yes(answer: &Value) {
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.starts_with("accept") && text.contains("yes"),
        "{answer}"
    );
}

/// How many `tools/call`s the direct path answered, by its log line in the server's
/// `stderr.log` (written with `warden::server=debug`).
fn answered_directly(fixture: &Fixture) -> usize {
    let log = std::fs::read_to_string(fixture.path("stderr.log")).expect("log");
    log.matches("tools/call answered without rmcp's serve loop")
        .count()
}

/// Send a result, a tool error, bad arguments and an unknown tool twice each, as
/// `line(id, tool, arguments, through_rmcp)` writes them: on the direct path and through rmcp's
/// loop. Both answers must be equal (but for their ids); returns the direct path's answers.
fn answered_alike_both_ways(
    server: &mut RawServer,
    line: impl Fn(u64, &str, Value, bool) -> String,
) -> Vec<Value> {
    let cases = [
        (
            "codec__hash",
            json!({"algorithm": "sha256", "data": "hello"}),
        ),
        ("testbed__fail", json!({"message": "it went wrong"})),
        ("codec__hash", json!({"algorithm": "sha256"})),
        ("nobody__nothing", json!({})),
    ];
    let mut answers = Vec::new();
    for (id, (tool, arguments)) in (10..).step_by(2).zip(cases) {
        server.line(&line(id, tool, arguments.clone(), false));
        let mut direct = server.reply_to(id);
        server.line(&line(id + 1, tool, arguments.clone(), true));
        let mut rmcp = server.reply_to(id + 1);
        assert_eq!(direct["id"], id);
        direct["id"] = json!(0);
        rmcp["id"] = json!(0);
        answers.push(direct.clone());
        let (direct, rmcp) = (common::normalized(direct), common::normalized(rmcp));
        assert_eq!(direct, rmcp, "{tool} {arguments}");
    }
    answers
}

/// A session's plain `tools/call` is served by warden's stdio transport without rmcp's serve
/// loop. The same request with `_meta` naming the protocol version goes through rmcp's loop:
/// both get the same answer, for a result, a tool error, bad arguments and an unknown tool.
/// On the direct path the session's peer still carries progress and a question to the
/// client, and the calls in flight when stdin closes are all answered.
#[test]
fn a_session_tools_call_served_without_rmcps_loop_is_answered_as_rmcp_answers_it() {
    let fixture = all();
    let filter = "error,warden::server=debug";
    let mut server = RawServer::start_with(&fixture, json!({"elicitation": {}}), Some(filter));
    let call = |id: u64, tool: &str, arguments: Value, meta: Option<Value>| {
        let mut params = json!({"name": tool, "arguments": arguments});
        if let Some(meta) = meta {
            params["_meta"] = meta;
        }
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}).to_string()
    };
    let through_rmcp = json!({"io.modelcontextprotocol/protocolVersion": "2025-11-25"});
    let direct = answered_alike_both_ways(&mut server, |id, tool, arguments, rmcp| {
        call(id, tool, arguments, rmcp.then(|| through_rmcp.clone()))
    });
    assert!(
        direct
            .iter()
            .all(|answer| answer["result"].get("resultType").is_none()),
        "the legacy shape: {direct:?}"
    );

    // Progress, with a token, and a question: both reach the client through the session.
    server.line(&call(
        50,
        "testbed__progress",
        json!({"steps": 3}),
        Some(json!({"progressToken": "p"})),
    ));
    let answer = server.reply_to(50);
    assert_eq!(answer["result"]["isError"], json!(false), "{answer}");
    let progress: Vec<&Value> = server
        .pending
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{:?}", server.pending);
    assert!(progress.iter().all(|m| m["params"]["progressToken"] == "p"));
    server.pending.clear();
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}}});
    server.line(&call(
        51,
        "testbed__ask",
        json!({"message": "Proceed?", "schema": schema.to_string()}),
        None,
    ));
    let question = server.reply();
    assert_eq!(question["method"], "elicitation/create", "{question}");
    assert_eq!(question["params"]["message"], "Proceed?", "{question}");
    server.line(
        &json!({"jsonrpc": "2.0", "id": question["id"], "result": {
            "action": "accept", "content": {"answer": "yes"}}})
        .to_string(),
    );
    accepted_with_yes(&server.reply_to(51));

    // Calls still running when the client closes stdin are answered before warden exits.
    for id in 100..120 {
        server.line(&call(
            id,
            "testbed__pause",
            json!({"steps": 1, "millis": 200}),
            None,
        ));
    }
    let (messages, status) = server.close();
    let mut answered: Vec<u64> = messages
        .iter()
        .filter_map(|m| m["id"].as_u64().filter(|_| m.get("result").is_some()))
        .collect();
    answered.sort_unstable();
    assert_eq!(answered, (100..120).collect::<Vec<_>>());
    assert!(status.success(), "{status}");

    assert_eq!(answered_directly(&fixture), direct.len() + 2 + 20);
}

/// A stateless 2026-07-28 `tools/call` on stdio, with no session opened, is served by warden's
/// stdio transport without rmcp's serve loop. The same request with a progress token goes
/// through rmcp's loop (the direct path takes only requests that ask for nothing but their
/// reply): both get the same answer, for a result, a tool error, bad arguments and an unknown
/// tool. A question round trip (input required, then answered) works on the direct path, and
/// a cancelled direct call answers nothing.
#[test]
fn a_stateless_tools_call_served_without_rmcps_loop_is_answered_as_rmcp_answers_it() {
    let fixture = all();
    let mut server = RawServer::spawn(&fixture, Some("error,warden::server=debug"));
    let call = |id: u64, tool: &str, arguments: Value, extra: Value| {
        let mut params = json!({"name": tool, "arguments": arguments, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
        }});
        if let Value::Object(extra) = extra {
            for (key, value) in extra {
                match key.as_str() {
                    "progressToken" => params["_meta"][key] = value,
                    _ => params[key] = value,
                }
            }
        }
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}).to_string()
    };
    let direct = answered_alike_both_ways(&mut server, |id, tool, arguments, rmcp| {
        let through_rmcp = json!({"progressToken": "p"});
        call(
            id,
            tool,
            arguments,
            if rmcp { through_rmcp } else { json!({}) },
        )
    });
    for answer in direct
        .iter()
        .filter(|answer| answer.get("result").is_some())
    {
        assert_eq!(
            answer["result"]["resultType"], "complete",
            "the 2026-07-28 shape: {answer}"
        );
    }

    // A question: input required, then answered in a second request.
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}}});
    let ask = json!({"message": "Proceed?", "schema": schema.to_string()});
    server.line(&call(50, "testbed__ask", ask.clone(), json!({})));
    let asked = server.reply_to(50);
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let requests = asked["result"]["inputRequests"]
        .as_object()
        .unwrap_or_else(|| panic!("{asked}"));
    let (key, question) = requests.iter().next().expect("one question");
    assert_eq!(question["method"], "elicitation/create", "{asked}");
    let answers = json!({key: {"action": "accept", "content": {"answer": "yes"}}});
    let state = asked["result"]["requestState"].clone();
    server.line(&call(
        51,
        "testbed__ask",
        ask,
        json!({"inputResponses": answers, "requestState": state}),
    ));
    accepted_with_yes(&server.reply_to(51));

    // A cancelled call answers nothing; the next one is served.
    server.line(&call(
        60,
        "testbed__pause",
        json!({"steps": 1, "millis": 2000}),
        json!({}),
    ));
    std::thread::sleep(std::time::Duration::from_millis(200));
    server.line(r#"{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 60, "reason": "test"}}"#);
    server.line(&call(
        61,
        "codec__hash",
        json!({"algorithm": "sha256", "data": "x"}),
        json!({}),
    ));
    assert_eq!(server.reply_to(61)["result"]["isError"], json!(false));
    let (messages, status) = server.close();
    assert!(!messages.iter().any(|m| m["id"] == 60), "{messages:?}");
    assert!(
        !server.pending.iter().any(|m| m["id"] == 60),
        "{:?}",
        server.pending
    );
    assert!(status.success(), "{status}");

    assert_eq!(answered_directly(&fixture), direct.len() + 2 + 1);
}

/// A client of the stateless era that sends only calls the transport serves itself, then
/// closes stdin, gets every answer, and warden exits cleanly: rmcp, which never saw a message,
/// is not an error. So does a client that sends nothing at all.
#[test]
fn a_client_that_only_made_stateless_calls_leaves_and_warden_exits_cleanly() {
    let fixture = Fixture::new("[plugins.codec]\ncomponent = \"{codec}\"\n");
    let mut server = RawServer::spawn(&fixture, None);
    for id in 1..=3 {
        server.line(
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "codec__hash", "arguments": {"algorithm": "sha256", "data": "hello"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
                "io.modelcontextprotocol/clientCapabilities": {},
            }}})
            .to_string(),
        );
    }
    let (messages, status) = server.close();
    let mut answered: Vec<u64> = messages
        .iter()
        .filter(|m| m["result"]["isError"] == json!(false))
        .filter_map(|m| m["id"].as_u64())
        .collect();
    answered.sort_unstable();
    assert_eq!(answered, [1, 2, 3], "{messages:?}");
    assert!(status.success(), "{status}");

    let mut silent = RawServer::spawn(&fixture, None);
    let (messages, status) = silent.close();
    assert!(messages.is_empty(), "{messages:?}");
    assert!(status.success(), "{status}");
}

#[test]
fn a_cancelled_call_stops_its_plugin_and_is_audited_cancelled() {
    // One call of testbed at a time, none waiting: while `spin` runs, every other call of the
    // plugin is refused as busy. Its fuel and timeout would let it spin for a minute.
    let fixture = Fixture::new(
        "[audit]\npath = \"{dir}/audit.jsonl\"\n\n[plugins.testbed]\ncomponent = \"{testbed}\"\n\
         fuel = 1_000_000_000_000_000\ntimeout = \"60s\"\nconcurrency = 1\nqueue = 0\n",
    );
    let mut server = RawServer::start(&fixture);
    let spin = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "testbed__spin", "arguments": {}}})
    .to_string();
    server.line(&spin);
    let emit = |id: u64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "testbed__emit", "arguments": {"text": "free"}}})
        .to_string()
    };
    // Wait until `spin` holds the plugin's one slot: an `emit` sent after the previous one was
    // answered is refused as busy. (Requests run concurrently, so an `emit` may take the slot
    // first and `spin` be refused; then `spin` is sent again.)
    let mut id = 100;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        if server.answered(1) {
            let refused = server.reply_to(1);
            assert_eq!(refused["result"]["isError"], json!(true), "{refused}");
            server.line(&spin);
            continue;
        }
        id += 1;
        server.line(&emit(id));
        let reply = server.reply_to(id);
        if reply["result"]["isError"] == json!(true) && !server.answered(1) {
            break;
        }
        assert!(id < 200, "spin never started: {reply}");
    }

    server.line(r#"{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "reason": "test"}}"#);
    let started = std::time::Instant::now();
    loop {
        id += 1;
        server.line(&emit(id));
        let reply = server.reply_to(id);
        assert!(
            !server.answered(1),
            "a cancelled request gets no response: {:?}",
            server.pending
        );
        if reply["result"]["content"][0]["text"] == "free" {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the cancelled call still holds the plugin: {reply}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let log = std::fs::read_to_string(fixture.path("audit.jsonl")).expect("audit log");
    let spin: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON record"))
        .filter(|record| record["tool"] == "testbed__spin")
        .collect();
    assert_eq!(spin.len(), 1, "{log}");
    assert_eq!(spin[0]["outcome"], "cancelled", "{log}");
}

/// The testbed under `prefix`, with a 3-second time limit (for a call in flight across a
/// reload).
fn testbed_as(prefix: &str) -> String {
    format!(
        "[plugins.testbed]\ncomponent = \"{}\"\nprefix = \"{prefix}\"\ntimeout = \"3s\"\nfuel = 1_000_000_000_000\n",
        common::plugin("testbed")
    )
}

/// Replace the fixture's manifest (keeping the shared compile cache).
fn rewrite(fixture: &Fixture, body: &str) {
    let text = format!(
        "[cache]\ndir = \"{}\"\n\n{body}",
        common::cache_dir().display()
    );
    std::fs::write(&fixture.manifest, text).expect("rewrite manifest");
}

#[tokio::test]
async fn sighup_reloads_the_manifest_and_tells_the_client() {
    let fixture = Fixture::new(&testbed_as("before"));
    let client = fixture.client().await;
    let names = client.tool_names().await;
    assert!(names.iter().all(|n| n.starts_with("before__")), "{names:?}");

    // A call in flight when the manifest changes finishes on the plugin it started with.
    let in_flight = client
        .service
        .call_tool(CallToolRequestParams::new("before__spin"));
    let (in_flight, ()) = tokio::join!(in_flight, async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        rewrite(&fixture, &testbed_as("after"));
        client.signal("HUP");
        client
            .wait_until("notifications/tools/list_changed", |c| {
                c.tools_changed() == 1
            })
            .await;
    });
    let in_flight = in_flight.expect("the call in flight is answered");
    assert!(
        err_text(&in_flight).contains("time limit of 3s"),
        "{in_flight:?}"
    );

    let names = client.tool_names().await;
    assert!(names.iter().all(|n| n.starts_with("after__")), "{names:?}");
    assert!(ok_text(&client.call("after__emit", json!({"text": "hi"})).await).contains("hi"));
    let stderr = client.stderr();
    assert!(
        stderr.contains("reloading") && stderr.contains("(SIGHUP)"),
        "{stderr}"
    );

    // A broken manifest is refused whole: the server keeps the one in force, says why,
    // and tells the client nothing changed.
    rewrite(
        &fixture,
        &format!(
            "{}\n[plugins.broken]\ncomponent = 5\n",
            testbed_as("broken")
        ),
    );
    client.signal("HUP");
    client
        .wait_until("the failed reload in the log", |c| {
            c.stderr()
                .contains("reload failed; still serving the previous manifest")
        })
        .await;
    let stderr = client.stderr();
    assert!(stderr.contains("plugins.broken.component"), "{stderr}");
    assert_eq!(client.tool_names().await, names);
    assert!(ok_text(&client.call("after__emit", json!({"text": "still"})).await).contains("still"));
    assert_eq!(client.tools_changed(), 1);

    // A component that is not one is refused the same way.
    let bogus = fixture.path("bogus.wasm");
    std::fs::write(&bogus, b"not wasm").expect("write");
    rewrite(
        &fixture,
        &format!(
            "{}\n[plugins.bogus]\ncomponent = \"{}\"\n",
            testbed_as("after"),
            bogus.display()
        ),
    );
    client.signal("HUP");
    client
        .wait_until("the second failed reload in the log", |c| {
            c.stderr()
                .matches("reload failed; still serving the previous manifest")
                .count()
                == 2
        })
        .await;
    assert!(
        client.stderr().contains("bogus.wasm"),
        "{}",
        client.stderr()
    );
    assert_eq!(client.tool_names().await, names);
    client.close().await;
}

#[tokio::test]
async fn watch_reloads_when_the_manifest_changes() {
    let fixture = Fixture::new(&testbed_as("one"));
    let client = fixture.client_args(&["--watch"]).await;
    assert!(
        client
            .tool_names()
            .await
            .iter()
            .all(|n| n.starts_with("one__"))
    );
    rewrite(&fixture, &testbed_as("two"));
    client
        .wait_until("notifications/tools/list_changed", |c| {
            c.tools_changed() == 1
        })
        .await;
    let names = client.tool_names().await;
    assert!(
        !names.is_empty() && names.iter().all(|n| n.starts_with("two__")),
        "{names:?}"
    );
    assert!(client.stderr().contains("a watched file changed"));
    client.close().await;
}

#[tokio::test]
async fn the_server_advertises_list_changed_and_its_configured_instructions() {
    let fixture = Fixture::new(&format!(
        "[server]\ninstructions = \"\"\"\nStart with one__emit.\nNever guess paths.\"\"\"\n\n{}",
        testbed_as("one")
    ));
    let client = fixture.client().await;
    let info = client.service.peer_info().expect("initialize result");
    assert_eq!(
        info.instructions.as_deref(),
        Some("Start with one__emit.\nNever guess paths.")
    );
    let tools = info.capabilities.tools.as_ref().expect("tools capability");
    assert_eq!(tools.list_changed, Some(true));
    client.close().await;
}

#[tokio::test]
async fn an_unknown_tool_is_logged_in_one_clean_line() {
    let fixture = Fixture::new(&testbed_as("one"));
    let client = fixture.client().await;
    let refused = client
        .service
        .call_tool(CallToolRequestParams::new("no_such_tool"))
        .await
        .expect_err("an unknown tool is a protocol error");
    assert!(refused.to_string().contains("unknown tool"), "{refused}");
    // rmcp would log its warning before sending the error; a call answered after it, whose
    // own line is then read, proves every earlier line was read too.
    ok_text(&client.call("one__emit", json!({"text": "after"})).await);
    client
        .wait_until("the refusal and the later call in the log", |c| {
            let stderr = c.stderr();
            stderr.contains("call refused") && stderr.contains("call finished")
        })
        .await;
    let stderr = client.stderr();
    assert!(!stderr.contains("response error"), "{stderr}");
    assert!(!stderr.contains("ErrorData"), "{stderr}");
    client.close().await;
}

/// With the default log filter the per-call span is off (its fields cost microseconds a
/// call to format), yet a call that goes badly is still one line naming its tool, principal
/// and request id; a call that succeeds writes nothing.
#[tokio::test]
async fn at_the_default_log_level_a_failed_call_is_one_line_with_its_context() {
    let fixture = Fixture::new(&testbed_as("one"));
    let client = fixture
        .client_env(&[("WARDEN_LOG", "warn,warden=info")])
        .await;
    ok_text(&client.call("one__emit", json!({"text": "fine"})).await);
    client
        .service
        .call_tool(CallToolRequestParams::new("no_such_tool"))
        .await
        .expect_err("an unknown tool is a protocol error");
    let failed = client.call("one__panic", json!({"message": "boom"})).await;
    assert_eq!(failed.is_error, Some(true));
    client
        .wait_until("both failures in the log", |c| {
            c.stderr().contains("call finished")
        })
        .await;
    let stderr = client.stderr();
    let line = |what: &str| {
        stderr
            .lines()
            .find(|line| line.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} line in:\n{stderr}"))
            .to_owned()
    };
    let refused = line("call refused");
    assert!(refused.contains(r#"call{tool="no_such_tool""#), "{refused}");
    assert!(refused.contains("principal="), "{refused}");
    assert!(refused.contains("request="), "{refused}");
    let finished = line("call finished");
    assert!(finished.contains(r#"call{tool="one__panic""#), "{finished}");
    assert!(finished.contains("outcome=trap"), "{finished}");
    assert!(line("plugin call failed").contains("plugin="), "{stderr}");
    assert!(
        !stderr.contains("one__emit"),
        "a good call writes no line:\n{stderr}"
    );
    client.close().await;
}

/// `warden status --json` (and the text form) with `XDG_RUNTIME_DIR` set to `run`.
fn status(run: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("status")
        .args(args)
        .env("XDG_RUNTIME_DIR", run)
        .output()
        .expect("warden status");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn status_shows_a_running_servers_plugins_grants_and_calls() {
    let fixture = Fixture::new(&format!(
        "{}env = {{ GREETING = \"not-shown-value\" }}\ndirs = [{{ host = \"{{dir}}\", guest = \"/data\", mode = \"ro\" }}]\n",
        testbed_as("tb")
    ));
    let run = fixture.path("run");
    std::fs::create_dir(&run).expect("run dir");
    let run_env = run.display().to_string();
    let client = fixture
        .client_env(&[("XDG_RUNTIME_DIR", run_env.as_str())])
        .await;
    ok_text(&client.call("tb__emit", json!({"text": "a"})).await);
    ok_text(&client.call("tb__emit", json!({"text": "b"})).await);
    err_text(&client.call("tb__fail", json!({"message": "no"})).await);
    let _ = client
        .service
        .call_tool(CallToolRequestParams::new("made_up"))
        .await;

    let (code, stdout, stderr) = status(&run, &["--json"]);
    assert_eq!(code, 0, "{stderr}");
    let servers: Value = serde_json::from_str(&stdout).expect("JSON");
    let server = servers
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|s| s["pid"].as_u64() == client.pid.map(u64::from))
        })
        .unwrap_or_else(|| panic!("the server is not listed: {stdout}"));
    assert_eq!(server["transport"], "stdio");
    let plugin = &server["plugins"][0];
    assert_eq!(plugin["name"], "testbed");
    assert_eq!(plugin["state"], "ready");
    assert_eq!(plugin["grants"]["env"], json!(["GREETING"]));
    assert_eq!(plugin["grants"]["dirs"][0]["guest"], "/data");
    assert!(
        plugin["tools"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("tb__emit")))
    );
    assert_eq!(server["calls"]["tb__emit"]["ok"], 2);
    assert_eq!(server["calls"]["tb__fail"]["tool-error"], 1);
    assert_eq!(server["calls"]["-"]["invalid"], 1);
    assert!(
        !stdout.contains("not-shown-value") && !stdout.contains("made_up"),
        "{stdout}"
    );

    // The text form, and the manifest filter.
    let (code, text, _) = status(&run, &["-m", &fixture.manifest.display().to_string()]);
    assert_eq!(code, 0);
    assert!(text.contains("plugin      testbed (ready"), "{text}");
    assert!(text.contains("    grant env   GREETING"), "{text}");
    assert!(text.contains("tb__emit") && text.contains("ok 2"), "{text}");
    let other = fixture.path("other.toml");
    std::fs::write(&other, "").expect("write");
    let (_, text, _) = status(&run, &["-m", &other.display().to_string()]);
    assert!(
        text.starts_with("no running warden server serving"),
        "{text}"
    );

    // Another user gets nothing, even with the directory and the socket opened up.
    let dir = run.join("warden");
    let socket = dir.join(format!("{}.sock", client.pid.expect("pid")));
    use std::os::unix::fs::PermissionsExt;
    for open in [fixture.dir.path(), &run, &dir] {
        std::fs::set_permissions(open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_warden"))
        .args(["status", "--json"])
        .env("XDG_RUNTIME_DIR", &run)
        .output()
        .expect("setpriv");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stdout.contains("testbed"),
        "another user read the status: {stdout}"
    );
    // It reached the socket and was answered nothing.
    assert!(stderr.contains("not a status"), "{stderr}");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");

    // Once the server is gone, so is its socket.
    client.close().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while socket.exists() {
        assert!(std::time::Instant::now() < deadline, "the socket stayed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (_, text, _) = status(&run, &[]);
    assert!(text.starts_with("no running warden server"), "{text}");
}

#[tokio::test]
async fn calls_across_reloads_all_answer_and_every_one_is_audited() {
    const CALLS: usize = 240;
    const RELOADS: usize = 4;
    let manifest = |timeout: u32| {
        format!(
            "[audit]\npath = \"{{dir}}/audit.jsonl\"\n\n{}",
            testbed_as("tb").replace("timeout = \"3s\"", &format!("timeout = \"{timeout}s\""))
        )
    };
    let fixture = Fixture::new(&manifest(3));
    let client = fixture.client().await;
    let peer = client.service.peer().clone();

    let calls = async {
        let mut running = tokio::task::JoinSet::new();
        for i in 0..CALLS {
            let peer = peer.clone();
            running.spawn(async move {
                let arguments = common::object(json!({ "text": format!("call {i}") }));
                peer.call_tool(CallToolRequestParams::new("tb__emit").with_arguments(arguments))
                    .await
            });
            if i % 8 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let mut answered = 0;
        while let Some(outcome) = running.join_next().await {
            let result = outcome.expect("task").expect("tools/call answered");
            assert!(ok_text(&result).starts_with("call "), "{result:?}");
            answered += 1;
        }
        answered
    };
    let reloads = async {
        for n in 0..RELOADS {
            // Same tools, another limit: a real swap every time.
            let dir = fixture.dir.path().display().to_string();
            rewrite(&fixture, &manifest(4 + n as u32).replace("{dir}", &dir));
            client.signal("HUP");
            client
                .wait_until("the reload", |c| {
                    c.stderr().matches("reloaded ").count() > n
                })
                .await;
        }
    };
    let (answered, ()) = tokio::join!(calls, reloads);
    assert_eq!(answered, CALLS);
    assert_eq!(client.tools_changed(), RELOADS, "{}", client.stderr());
    client.close().await;

    // One chain, every call in it.
    let log = std::fs::read_to_string(fixture.path("audit.jsonl")).expect("audit log");
    let ok = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|record| record["tool"] == "tb__emit" && record["outcome"] == "ok")
        .count();
    assert_eq!(ok, CALLS);
    let verify = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["audit", "verify"])
        .arg(fixture.path("audit.jsonl"))
        .output()
        .expect("audit verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[tokio::test]
async fn sampling_and_roots_need_their_grants_and_a_capable_client() {
    // Two loads of the testbed: one without the grants, one with them. The rmcp test client
    // declares neither sampling nor roots, in either era.
    let fixture = Fixture::new(&format!(
        "{}\n[plugins.granted]\ncomponent = \"{}\"\nprefix = \"granted\"\nsampling = true\nroots = true\n",
        testbed_as("bare"),
        common::plugin("testbed")
    ));
    for (stateless, client) in [
        (false, fixture.client().await),
        (true, fixture.client_2026().await),
    ] {
        let sample = json!({"prompt": "Say hi", "max_tokens": 10});
        let said = |result| ok_text(&result);
        assert_eq!(
            said(client.call("bare__sample", sample.clone()).await),
            "error: not-granted"
        );
        assert_eq!(
            said(client.call("bare__list_roots", json!({})).await),
            "error: not-granted"
        );
        assert_eq!(
            said(client.call("granted__sample", sample).await),
            "error: unsupported"
        );
        assert_eq!(
            said(client.call("granted__list_roots", json!({})).await),
            "error: unsupported"
        );
        // Several at once: optional ones are unsupported; a required one ends the request with
        // the missing-capability error naming what the client lacks.
        let keyed = |required: bool| json!({"questions": ["sample:greeting", "roots:client_roots"], "required": required});
        assert_eq!(
            said(client.call("granted__ask_keyed", keyed(false)).await),
            "error: unsupported\nerror: unsupported"
        );
        let mut arguments = serde_json::Map::new();
        arguments.insert("questions".into(), keyed(true)["questions"].clone());
        arguments.insert("required".into(), json!(true));
        let error = client
            .service
            .call_tool(
                rmcp::model::CallToolRequestParams::new("granted__ask_keyed")
                    .with_arguments(arguments),
            )
            .await
            .expect_err("a required question the client cannot answer");
        let rmcp::ServiceError::McpError(error) = error else {
            panic!("not a JSON-RPC error: {error}");
        };
        assert_eq!(error.code.0, -32021, "{error:?}");
        let required = error
            .data
            .as_ref()
            .map(|d| d["requiredCapabilities"].clone());
        // A session stops at the first question it cannot put; a stateless request names
        // every capability its questions lack.
        let expected = if stateless {
            json!({"sampling": {}, "roots": {}})
        } else {
            json!({"sampling": {}})
        };
        assert_eq!(required, Some(expected), "{error:?}");
        client.close().await;
    }
}
