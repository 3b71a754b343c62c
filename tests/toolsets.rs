//! Hidden tools a plugin reveals (dynamic toolsets), end to end: the real `warden serve
//! --http`, rmcp's client in 2025-11-25 sessions, raw `subscriptions/listen` streams
//! (2026-07-28), the testbed component revealing and hiding its `hidden = true` tools, and the
//! audit log. Hostile: a plugin revealing another plugin's tool, a tool the operator did not
//! mark, or one the principal may not use; one principal's reveal seen by another; a reveal
//! from a call that failed.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Fixture, HttpServer, Recorder, api_key, ok_text};
use rmcp::RoleClient;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{ClientLifecycleMode, RunningService};
use serde_json::{Value, json};

/// Keys of the test's manifest (test-only values).
const ALICE_KEY: &str = "wdn_test-alice-key-0123456789abcdefghijklmnopqr";
const BOB_KEY: &str = "wdn_test-bob-key-0123456789abcdefghijklmnopqrstu";

/// Two principals with the same role; the testbed with `env` hidden and `env-all` hidden and
/// only for `admin`; a second testbed (`other`) with its own `env` hidden.
fn fixture() -> Fixture {
    Fixture::new(&format!(
        r#"
[audit]
path = "{{dir}}/audit.jsonl"

[plugins.testbed]
component = "{{testbed}}"
roles = ["user", "admin"]

[plugins.testbed.tools.env]
hidden = true

[plugins.testbed.tools.env-all]
hidden = true
roles = ["admin"]

[plugins.other]
component = "{{testbed}}"

[plugins.other.tools.env]
hidden = true

{}
{}"#,
        api_key("alice", &["user"], ALICE_KEY),
        api_key("bob", &["user"], BOB_KEY)
    ))
}

type Session = RunningService<RoleClient, Recorder>;

/// A 2025-11-25 session of the principal whose key is `key`.
async fn session(server: &HttpServer, key: &str) -> (Session, Recorder) {
    let recorder = Recorder::default();
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
        server.client_config(Some(key)),
    );
    let service = rmcp::service::ClientServiceExt::serve_with_lifecycle(
        recorder.clone(),
        transport,
        ClientLifecycleMode::Initialize,
    )
    .await
    .expect("session");
    (service, recorder)
}

async fn names(session: &Session) -> Vec<String> {
    let tools = session.list_all_tools().await.expect("tools/list");
    tools.into_iter().map(|t| t.name.to_string()).collect()
}

async fn call(session: &Session, tool: &str, arguments: Value) -> Result<String, String> {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object");
    };
    match session
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
    {
        Ok(result) if result.is_error != Some(true) => Ok(ok_text(&result)),
        Ok(result) => Err(format!("tool error: {}", common::text(&result))),
        Err(error) => Err(error.to_string()),
    }
}

/// The protocol error of a call, its request id taken out (it differs for each call).
fn without_request_id(error: &str) -> String {
    error.split(" (request ").next().unwrap_or(error).to_owned()
}

async fn wait_for_changes(recorder: &Recorder, at_least: usize, server: &HttpServer) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while recorder.tools_changed.load(Ordering::SeqCst) < at_least {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notifications/tools/list_changed; server log:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_plugin_reveals_its_hidden_tools_to_the_calling_principal_only() {
    let fixture = fixture();
    let server = fixture.http_server(&[]).await;
    let (alice, alice_seen) = session(&server, ALICE_KEY).await;
    let (bob, bob_seen) = session(&server, BOB_KEY).await;

    // Hidden tools are not listed, and calling one is refused exactly like an unknown tool.
    for session in [&alice, &bob] {
        let listed = names(session).await;
        assert!(
            listed.contains(&"testbed__toolset".to_owned()),
            "{listed:?}"
        );
        for hidden in ["testbed__env", "testbed__env_all", "other__env"] {
            assert!(
                !listed.contains(&hidden.to_owned()),
                "{hidden} in {listed:?}"
            );
        }
    }
    let hidden = call(&alice, "testbed__env", json!({"name": "HOME"}))
        .await
        .expect_err("a hidden tool is refused");
    let unknown = call(&alice, "testbed__no_such_tool", json!({"name": "HOME"}))
        .await
        .expect_err("an unknown tool is refused");
    assert_eq!(
        without_request_id(&hidden).replace("testbed__env", "X"),
        without_request_id(&unknown).replace("testbed__no_such_tool", "X"),
    );

    // Alice's call reveals `env`; it also names another plugin's tool (by its tool name, and
    // by its function name, which names this plugin's own), a tool the operator did not mark,
    // one only `admin` may use, and one that does not exist: all of these are ignored.
    let before = call(
        &alice,
        "testbed__toolset",
        json!({"names": ["env", "other__env", "ask", "env-all", "nope"], "hide": false}),
    )
    .await
    .expect("toolset");
    assert_eq!(before, "[]", "nothing was revealed before");
    wait_for_changes(&alice_seen, 1, &server).await;
    let listed = names(&alice).await;
    assert!(listed.contains(&"testbed__env".to_owned()), "{listed:?}");
    assert!(!listed.contains(&"other__env".to_owned()), "{listed:?}");
    assert!(
        !listed.contains(&"testbed__env_all".to_owned()),
        "{listed:?}"
    );
    call(&alice, "testbed__env", json!({"name": "HOME"}))
        .await
        .expect("the revealed tool is callable");
    call(&alice, "other__env", json!({"name": "HOME"}))
        .await
        .expect_err("another plugin's hidden tool stays hidden");
    call(&alice, "testbed__env_all", json!({}))
        .await
        .expect_err("revealing never bypasses roles");

    // Bob's tool list did not change, and he still cannot call it.
    assert!(!names(&bob).await.contains(&"testbed__env".to_owned()));
    call(&bob, "testbed__env", json!({"name": "HOME"}))
        .await
        .expect_err("another principal's reveal is not his");
    // A reveal from a call that fails does not happen.
    let failed = call(&bob, "testbed__reveal_then_fail", json!({"names": ["env"]})).await;
    assert!(failed.is_err_and(|e| e.starts_with("tool error")));
    assert!(!names(&bob).await.contains(&"testbed__env".to_owned()));
    assert_eq!(bob_seen.tools_changed.load(Ordering::SeqCst), 0);

    // Alice hides it again: the call saw what was revealed when it started.
    let before = call(
        &alice,
        "testbed__toolset",
        json!({"names": ["env"], "hide": true}),
    )
    .await
    .expect("toolset");
    assert_eq!(before, r#"["env"]"#);
    wait_for_changes(&alice_seen, 2, &server).await;
    assert!(!names(&alice).await.contains(&"testbed__env".to_owned()));

    // The audit log says what each call revealed and hid.
    let records = fixture.audit_log("audit.jsonl");
    let toolset: Vec<&Value> = records
        .iter()
        .filter(|r| r["tool"] == "testbed__toolset")
        .collect();
    assert_eq!(toolset.len(), 2, "{records:#?}");
    assert_eq!(toolset[0]["principal"], "alice");
    assert_eq!(
        toolset[0]["usage"]["tools_revealed"],
        json!(["testbed__env"])
    );
    assert_eq!(toolset[1]["usage"]["tools_hidden"], json!(["testbed__env"]));
    let failed = records
        .iter()
        .find(|r| r["tool"] == "testbed__reveal_then_fail")
        .expect("the failed call's record");
    assert!(failed["usage"].get("tools_revealed").is_none(), "{failed}");
    let refused = records
        .iter()
        .find(|r| r["tool"] == "testbed__env" && r["principal"] == "bob")
        .expect("bob's refused call's record");
    assert_eq!(refused["outcome"], "denied", "{refused}");
    assert!(
        server
            .stderr()
            .contains("a plugin asked to reveal or hide a tool it may not"),
        "{}",
        server.stderr()
    );
    alice.cancel().await.ok();
    bob.cancel().await.ok();
}

/// Open a `subscriptions/listen` stream (2026-07-28) as the principal whose key is `key`,
/// asking for `notifications`.
async fn listen(server: &HttpServer, key: &str, notifications: Value) -> reqwest::Response {
    let response = reqwest::Client::new()
        .post(&server.url)
        .bearer_auth(key)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "subscriptions/listen")
        .json(&json!({
            "jsonrpc": "2.0", "id": 7, "method": "subscriptions/listen",
            "params": {"_meta": meta(), "notifications": notifications},
        }))
        .send()
        .await
        .expect("subscriptions/listen");
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    response
}

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// Read `response`'s stream into `stream` until it holds `what` `times` times.
async fn read_until(
    response: &mut reqwest::Response,
    stream: &mut String,
    what: &str,
    times: usize,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while stream.matches(what).count() < times {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {what} on the stream: {stream}"))
            .expect("read the stream")
            .unwrap_or_else(|| panic!("the stream ended before {what}: {stream}"));
        stream.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// A stateless (2026-07-28) `tools/call` as the principal whose key is `key`.
async fn call_2026(server: &HttpServer, key: &str, tool: &str, arguments: Value) -> Value {
    let response = reqwest::Client::new()
        .post(&server.url)
        .bearer_auth(key)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", tool)
        .json(&json!({
            "jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"_meta": meta(), "name": tool, "arguments": arguments},
        }))
        .send()
        .await
        .expect("tools/call");
    let body = response.text().await.expect("body");
    let data = body
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .next_back()
        .unwrap_or(&body);
    serde_json::from_str(data.trim()).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn listen_streams_hear_of_their_own_principals_reveals() {
    let fixture = fixture();
    let server = fixture.http_server(&[]).await;
    let mut alice = listen(&server, ALICE_KEY, json!({"toolsListChanged": true})).await;
    let mut bob = listen(&server, BOB_KEY, json!({"toolsListChanged": true})).await;
    let (mut alice_stream, mut bob_stream) = (String::new(), String::new());
    let ack = "notifications/subscriptions/acknowledged";
    read_until(&mut alice, &mut alice_stream, ack, 1).await;
    read_until(&mut bob, &mut bob_stream, ack, 1).await;

    let changed = "notifications/tools/list_changed";
    let answer = call_2026(
        &server,
        ALICE_KEY,
        "testbed__toolset",
        json!({"names": ["env"], "hide": false}),
    )
    .await;
    assert!(answer["result"]["isError"] != json!(true), "{answer}");
    read_until(&mut alice, &mut alice_stream, changed, 1).await;
    assert!(
        alice_stream.contains("io.modelcontextprotocol/subscriptionId"),
        "{alice_stream}"
    );
    let listed = call_2026(&server, ALICE_KEY, "testbed__env", json!({"name": "HOME"})).await;
    assert!(listed.get("result").is_some(), "{listed}");

    // Bob's stream hears of his own reveal, and of nothing before it: announcements are in
    // order, so Alice's would have come first.
    call_2026(
        &server,
        BOB_KEY,
        "testbed__toolset",
        json!({"names": ["env"], "hide": false}),
    )
    .await;
    read_until(&mut bob, &mut bob_stream, changed, 1).await;
    assert_eq!(bob_stream.matches(changed).count(), 1, "{bob_stream}");
}

#[tokio::test]
async fn a_reload_hides_every_revealed_tool_again() {
    let fixture = fixture();
    let server = fixture.http_server(&[]).await;
    let (alice, seen) = session(&server, ALICE_KEY).await;
    call(
        &alice,
        "testbed__toolset",
        json!({"names": ["env"], "hide": false}),
    )
    .await
    .expect("toolset");
    wait_for_changes(&seen, 1, &server).await;
    assert!(names(&alice).await.contains(&"testbed__env".to_owned()));

    let pid = server.child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    wait_for_changes(&seen, 2, &server).await;
    assert!(!names(&alice).await.contains(&"testbed__env".to_owned()));
    call(&alice, "testbed__env", json!({"name": "HOME"}))
        .await
        .expect_err("hidden again after the reload");
    alice.cancel().await.ok();
}

#[test]
fn warden_call_says_a_hidden_tool_is_hidden() {
    let fixture = Fixture::new(
        "[plugins.testbed]\ncomponent = \"{testbed}\"\n\n[plugins.testbed.tools.env]\nhidden = true\n",
    );
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let (code, _, stderr) = common::warden(
        &[
            "call",
            "-m",
            manifest,
            "testbed__env",
            r#"{"name": "HOME"}"#,
        ],
        fixture.dir.path(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("tool testbed__env is hidden (`hidden = true`)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_stdio_session_sees_the_tools_its_call_revealed() {
    let fixture = Fixture::new(
        "[plugins.testbed]\ncomponent = \"{testbed}\"\n\n[plugins.testbed.tools.env]\nhidden = true\n",
    );
    let client = fixture.client().await;
    assert!(
        !client
            .tool_names()
            .await
            .contains(&"testbed__env".to_owned())
    );
    let before = client
        .call("testbed__toolset", json!({"names": ["env"], "hide": false}))
        .await;
    assert_eq!(ok_text(&before), "[]");
    client
        .wait_until("notifications/tools/list_changed", |c| {
            c.tools_changed() >= 1
        })
        .await;
    assert!(
        client
            .tool_names()
            .await
            .contains(&"testbed__env".to_owned())
    );
    let env = client.call("testbed__env", json!({"name": "HOME"})).await;
    assert_ne!(env.is_error, Some(true), "{env:?}");
    client.close().await;
}
