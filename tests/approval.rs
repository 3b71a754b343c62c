//! Human approval and plugin questions (issue 15), end to end: the real `warden serve` over
//! stdio and Streamable HTTP, driven by the Python `mcp` package's client
//! (`tests/support/elicit_client.py`), whose elicitation callback accepts, declines or cancels
//! as each test plans. Both eras: 2025-11-25 sessions (`elicitation/create`) and the stateless
//! 2026-07-28 era (`input_required` rounds with a sealed `requestState`).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Fixture, run_python};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The Python client: runs a JSON plan of calls and prints one JSON line per call.
const CLIENT: &str = include_str!("support/elicit_client.py");

/// API keys of the tests' manifests (test-only values).
const ALICE_KEY: &str = "wdn_test-alice-key-0123456789abcdefghijklmnopq";
const BOB_KEY: &str = "wdn_test-bob-key-0123456789abcdefghijklmnopqrs";

/// The sentence ending the description of an `approval = "ask"` tool.
const ASKS: &str = "A human confirms each call of this tool before it runs.";
const DECLINED: &str = "approval declined by the user; the tool did not run";
const CANCELLED: &str = "approval cancelled by the user; the tool did not run";
const UNAVAILABLE: &str =
    "this tool needs approval and this client cannot ask for it; the tool did not run";

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A local HTTP server answering `200 hello` to every request, and how many it answered: a
/// call of `net__http_get` that reaches it is a call whose plugin ran.
struct Echo {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Echo {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
                        )
                        .await;
                });
            }
        });
        Self { port, hits }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A manifest with an audit log and `[approval]` set to `approval`: `testbed__*` with a
/// writable `/out` (its `write-file` asks; its `read-file` output is private), `net__*` (the
/// testbed again, allowed to reach `echo`: open world) and two API keys, `alice` and `bob`.
fn fixture(approval: &str, echo: &Echo) -> Fixture {
    fixture_with(approval, "", echo)
}

/// Same as [`fixture`], with `extra` at the end of the manifest.
fn fixture_with(approval: &str, extra: &str, echo: &Echo) -> Fixture {
    let fixture = Fixture::new(&format!(
        r#"
[audit]
path = "{{dir}}/audit/audit.jsonl"

[approval]
{approval}

[plugins.testbed]
component = "{{testbed}}"
dirs = [{{ host = "{{dir}}/out", guest = "/out", mode = "rw" }}]

[plugins.testbed.tools.write-file]
approval = "ask"

[plugins.testbed.tools.read-file]
data = "private"

[plugins.net]
component = "{{testbed}}"
allow_hosts = ["http://127.0.0.1:{port}"]

[[auth.api_keys]]
principal = "alice"
sha256 = "{alice}"

[[auth.api_keys]]
principal = "bob"
sha256 = "{bob}"

{extra}
"#,
        port = echo.port,
        alice = sha256(ALICE_KEY),
        bob = sha256(BOB_KEY),
    ));
    std::fs::create_dir(fixture.path("out")).expect("mkdir out");
    fixture
}

/// The outcomes recorded for calls of `tool` whose `path` argument is `path`, in order.
fn outcomes(records: &[Value], tool: &str, path: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["tool"] == tool && r["args"]["path"] == path)
        .map(|r| r["outcome"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The plan's `server` entry for `warden serve` over stdio on `fixture`.
fn stdio(fixture: &Fixture) -> Value {
    json!({"stdio": [
        env!("CARGO_BIN_EXE_warden"),
        "serve",
        "--manifest",
        fixture.manifest.display().to_string(),
    ]})
}

/// Run the Python client on `plan`; the result line of each named call, by name.
async fn run(fixture: &Fixture, plan: Value, server_log: impl Fn() -> String) -> Lines {
    let output = run_python(fixture, "elicit_client.py", CLIENT, &[plan.to_string()]).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = format!(
        "client stdout:\n{stdout}\nclient stderr:\n{}\nserver:\n{}",
        String::from_utf8_lossy(&output.stderr),
        server_log()
    );
    assert!(output.status.success(), "the client failed\n{report}");
    let mut lines = BTreeMap::new();
    for line in stdout.lines() {
        let line: Value = serde_json::from_str(line).expect("a JSON line");
        assert!(line.get("exception").is_none(), "{line}\n{report}");
        if let Some(name) = line["name"].as_str() {
            lines.insert(name.to_owned(), line);
        }
    }
    Lines { lines, report }
}

/// What the client printed, by call name, and everything to show when an assertion fails.
struct Lines {
    lines: BTreeMap<String, Value>,
    report: String,
}

impl Lines {
    #[track_caller]
    fn get(&self, name: &str) -> &Value {
        self.lines
            .get(name)
            .unwrap_or_else(|| panic!("no line for {name}\n{}", self.report))
    }

    /// The text of call `name`'s successful result.
    #[track_caller]
    fn ok(&self, name: &str) -> String {
        let line = self.get(name);
        assert_eq!(line["is_error"], false, "{name}: {line}\n{}", self.report);
        line["text"].as_str().unwrap_or_default().to_owned()
    }

    /// The text of call `name`'s tool error.
    #[track_caller]
    fn tool_error(&self, name: &str) -> String {
        let line = self.get(name);
        assert_eq!(line["is_error"], true, "{name}: {line}\n{}", self.report);
        line["text"].as_str().unwrap_or_default().to_owned()
    }

    /// The JSON-RPC error of call `name`: (code, message).
    #[track_caller]
    fn rpc_error(&self, name: &str) -> (i64, String) {
        let line = self.get(name);
        let error = &line["error"];
        assert!(error.is_object(), "{name}: {line}\n{}", self.report);
        (
            error["code"].as_i64().unwrap_or_default(),
            error["message"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// The questions the client's callback received during call `name`.
    #[track_caller]
    fn asked(&self, name: &str) -> Vec<Value> {
        self.get(name)["asked"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Assert call `name` ended in a tool error starting with `message` (the host adds the
/// request's id).
#[track_caller]
fn refused(lines: &Lines, name: &str, message: &str) {
    let text = lines.tool_error(name);
    assert!(text.starts_with(message), "{name}: {text}");
}

fn write(path: &str, content: &str) -> Value {
    json!({"path": path, "content": content})
}

const ACCEPT: &str = "accept";

fn answer(action: &str) -> Value {
    if action == ACCEPT {
        json!({"action": "accept", "content": {}})
    } else {
        json!({"action": action})
    }
}

/// The plan of the per-era tests: approval accepted, declined and cancelled; a plugin's
/// questions answered; and a client without the elicitation capability.
fn era_plan(server: Value, mode: &str, key: Option<&str>) -> Value {
    let colour_form = json!({
        "type": "object",
        "properties": {"colour": {"type": "string", "description": "A colour"}},
        "required": ["colour"],
    });
    // Not a flat form: the host refuses to put it to the user.
    let nested_form = json!({"type": "object", "properties": {"inner": {"type": "object"}}});
    json!({
        "server": server,
        "mode": mode,
        "clients": [
            {"key": key, "calls": [
                {"name": "accepted", "tool": "testbed__write_file",
                 "args": write("/out/accepted.txt", "yes"), "answers": [answer(ACCEPT)]},
                {"name": "declined", "tool": "testbed__write_file",
                 "args": write("/out/declined.txt", "no"), "answers": [answer("decline")]},
                {"name": "cancelled", "tool": "testbed__write_file",
                 "args": write("/out/cancelled.txt", "no"), "answers": [answer("cancel")]},
                {"name": "ask", "tool": "testbed__ask",
                 "args": {"message": "Pick a colour", "schema": colour_form.to_string()},
                 "answers": [{"action": "accept", "content": {"colour": "teal"}}]},
                {"name": "ask-declined", "tool": "testbed__ask",
                 "args": {"message": "Pick a colour", "schema": colour_form.to_string()},
                 "answers": [answer("decline")]},
                {"name": "ask-bad-schema", "tool": "testbed__ask",
                 "args": {"message": "Nested?", "schema": nested_form.to_string()}},
                {"name": "twice", "tool": "testbed__ask_twice",
                 "args": {"first": "First question", "second": "Second question"},
                 "answers": [
                     {"action": "accept", "content": {"answer": "one"}},
                     {"action": "accept", "content": {"answer": "two"}},
                 ]},
            ]},
            {"key": key, "elicit": false, "calls": [
                {"name": "unable", "tool": "testbed__write_file",
                 "args": write("/out/unable.txt", "no")},
                {"name": "ask-unable", "tool": "testbed__ask",
                 "args": {"message": "Pick a colour", "schema": colour_form.to_string()}},
            ]},
        ],
    })
}

/// Run [`era_plan`] and check everything it shows: `via` is how the approval was given in
/// this era (`elicitation` or `input-required`).
async fn check_era(
    fixture: &Fixture,
    server: Value,
    mode: &str,
    key: Option<&str>,
    server_log: impl Fn() -> String,
) {
    let stateless = mode == "2026-07-28";
    let via = if stateless {
        "input-required"
    } else {
        "elicitation"
    };
    let lines = run(fixture, era_plan(server, mode, key), server_log).await;

    // Accepted: asked once with an empty form, then the plugin ran once.
    let asked = lines.asked("accepted");
    assert_eq!(asked.len(), 1, "{asked:?}\n{}", lines.report);
    let question = asked[0]["message"].as_str().unwrap_or_default();
    assert!(
        question.contains("testbed__write_file") && question.contains("/out/accepted.txt"),
        "{question}"
    );
    assert_eq!(
        asked[0]["schema"],
        json!({"type": "object", "properties": {}})
    );
    if stateless {
        assert_eq!(asked[0]["key"], "approval");
    }
    lines.ok("accepted");
    assert_eq!(
        std::fs::read_to_string(fixture.path("out/accepted.txt")).expect("the plugin ran"),
        "yes"
    );

    // Declined and cancelled: the plugin never ran.
    refused(&lines, "declined", DECLINED);
    assert_eq!(lines.asked("declined").len(), 1);
    refused(&lines, "cancelled", CANCELLED);
    assert_eq!(lines.asked("cancelled").len(), 1);
    // No elicitation capability: refused before the plugin runs, nobody asked.
    refused(&lines, "unable", UNAVAILABLE);
    for file in ["declined", "cancelled", "unable"] {
        assert!(
            !fixture.path(&format!("out/{file}.txt")).exists(),
            "{file}: the plugin ran"
        );
    }

    // The plugin's own question reaches the callback as written, and the answer the plugin.
    let asked = lines.asked("ask");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0]["message"], "Pick a colour");
    assert_eq!(
        asked[0]["schema"]["properties"]["colour"],
        json!({"type": "string", "description": "A colour"})
    );
    if stateless {
        assert_eq!(asked[0]["key"], "elicit-0");
    }
    assert_eq!(lines.ok("ask"), r#"accept {"colour":"teal"}"#);
    assert_eq!(lines.ok("ask-declined"), "decline");
    let bad = lines.ok("ask-bad-schema");
    assert!(bad.starts_with("error: invalid-schema"), "{bad}");
    assert!(lines.asked("ask-bad-schema").is_empty());
    // Two questions in order: the first answer carries over to the second round.
    let asked = lines.asked("twice");
    let messages: Vec<_> = asked.iter().map(|q| q["message"].clone()).collect();
    assert_eq!(
        messages,
        [json!("First question"), json!("Second question")]
    );
    if stateless {
        let keys: Vec<_> = asked.iter().map(|q| q["key"].clone()).collect();
        assert_eq!(keys, [json!("elicit-0"), json!("elicit-1")]);
    }
    assert_eq!(
        lines.ok("twice"),
        "accept {\"answer\":\"one\"}\naccept {\"answer\":\"two\"}"
    );
    assert_eq!(lines.ok("ask-unable"), "error: unsupported");

    // The audit log: the approval of the call that ran, and the refusals.
    let records = fixture.audit_log("audit/audit.jsonl");
    let tool = "testbed__write_file";
    let first_round: &[&str] = if stateless { &["input-required"] } else { &[] };
    let expect = |last: &'static str| [first_round, &[last]].concat();
    assert_eq!(
        outcomes(&records, tool, "/out/accepted.txt"),
        expect("ok"),
        "{records:#?}"
    );
    assert_eq!(
        outcomes(&records, tool, "/out/declined.txt"),
        expect("approval-declined")
    );
    assert_eq!(
        outcomes(&records, tool, "/out/cancelled.txt"),
        expect("approval-declined")
    );
    assert_eq!(
        outcomes(&records, tool, "/out/unable.txt"),
        ["approval-unavailable"]
    );
    let ran = records
        .iter()
        .find(|r| r["tool"] == tool && r["outcome"] == "ok")
        .expect("the approved call's record");
    let approval = &ran["approval"];
    assert_eq!(approval["via"], via, "{ran}");
    assert_eq!(approval["by"], "user", "{ran}");
    assert!(approval["at"].as_str().is_some_and(|at| !at.is_empty()));
    // serde_json's canonical form: keys sorted, no spaces.
    assert_eq!(
        approval["args_sha256"],
        sha256(r#"{"content":"yes","path":"/out/accepted.txt"}"#),
        "{ran}"
    );
    assert_eq!(
        approval["reason"], "this tool asks a human to confirm each call",
        "{ran}"
    );
}

#[tokio::test]
async fn a_legacy_session_over_stdio_asks_by_elicitation_and_runs_only_when_accepted() {
    let echo = Echo::start().await;
    let fixture = fixture("", &echo);
    check_era(&fixture, stdio(&fixture), "legacy", None, String::new).await;
}

#[tokio::test]
async fn a_stateless_client_over_stdio_is_asked_with_input_required_and_runs_only_when_accepted() {
    let echo = Echo::start().await;
    let fixture = fixture("", &echo);
    check_era(&fixture, stdio(&fixture), "2026-07-28", None, String::new).await;
}

#[tokio::test]
async fn a_legacy_session_over_http_asks_by_elicitation_and_runs_only_when_accepted() {
    let echo = Echo::start().await;
    let fixture = fixture("", &echo);
    let server = fixture.http_server(&[]).await;
    check_era(
        &fixture,
        json!({"http": server.url}),
        "legacy",
        Some(ALICE_KEY),
        || server.stderr(),
    )
    .await;
}

#[tokio::test]
async fn a_stateless_client_over_http_is_asked_with_input_required_and_runs_only_when_accepted() {
    let echo = Echo::start().await;
    let fixture = fixture("", &echo);
    let server = fixture.http_server(&[]).await;
    check_era(
        &fixture,
        json!({"http": server.url}),
        "2026-07-28",
        Some(ALICE_KEY),
        || server.stderr(),
    )
    .await;
}

/// A hand-made round: `tools/call` of `write-file` with `args`, carrying the state call
/// `state_of` received (changed when `tamper`) and an accepted approval.
fn retry(name: &str, args: Value, state_of: &str, tamper: bool) -> Value {
    json!({"name": name, "tool": "testbed__write_file", "args": args, "lowlevel": true,
           "state_of": state_of, "tamper": tamper,
           "responses": {"approval": answer(ACCEPT)}})
}

fn first_round(name: &str, args: Value) -> Value {
    json!({"name": name, "tool": "testbed__write_file", "args": args, "lowlevel": true})
}

/// Assert call `name` was refused as a state that does not belong to it.
#[track_caller]
fn invalid_state(lines: &Lines, name: &str) {
    let (code, message) = lines.rpc_error(name);
    assert_eq!(code, -32602, "{name}: {message}");
    assert!(
        message.starts_with("invalid or expired requestState"),
        "{name}: {message}"
    );
}

#[tokio::test]
async fn a_stateless_approval_is_bound_to_its_state_arguments_and_principal() {
    let echo = Echo::start().await;
    let fixture = fixture("", &echo);
    let server = fixture.http_server(&[]).await;
    let a = write("/out/a.txt", "a");
    let plan = json!({
        "server": {"http": server.url},
        "mode": "2026-07-28",
        "clients": [
            {"key": ALICE_KEY, "calls": [
                // An answer without the state that asked is no approval: asked again.
                {"name": "no-state", "tool": "testbed__write_file", "args": a.clone(),
                 "lowlevel": true, "responses": {"approval": answer(ACCEPT)}},
                first_round("first", a.clone()),
                retry("tampered", a.clone(), "first", true),
                retry("other-args", write("/out/b.txt", "a"), "first", false),
            ]},
            {"key": BOB_KEY, "calls": [retry("other-principal", a.clone(), "first", false)]},
            // The same round made right: the approval goes through, once; the same state
            // again is a replay.
            {"key": ALICE_KEY, "calls": [
                first_round("control-first", write("/out/c.txt", "c")),
                retry("control", write("/out/c.txt", "c"), "control-first", false),
                retry("replayed", write("/out/c.txt", "c"), "control-first", false),
            ]},
        ],
    });
    let lines = run(&fixture, plan, || server.stderr()).await;
    let first = lines.get("first");
    assert!(
        first["state"].as_str().is_some_and(|s| !s.is_empty()),
        "{first}"
    );
    assert!(
        first["requests"]["approval"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("testbed__write_file")),
        "{first}"
    );
    let no_state = lines.get("no-state");
    assert!(no_state["requests"]["approval"].is_object(), "{no_state}");
    for name in ["tampered", "other-args", "other-principal", "replayed"] {
        invalid_state(&lines, name);
    }
    lines.ok("control");
    assert!(fixture.path("out/c.txt").exists(), "the control call ran");
    assert!(!fixture.path("out/a.txt").exists(), "a refused state ran");
    assert!(!fixture.path("out/b.txt").exists(), "a refused state ran");
    let records = fixture.audit_log("audit/audit.jsonl");
    let invalid = records
        .iter()
        .filter(|r| r["outcome"] == "approval-invalid")
        .count();
    assert_eq!(invalid, 4, "{records:#?}");
    let ran = records
        .iter()
        .filter(|r| r["outcome"] == "ok" && r["args"]["path"] == "/out/c.txt")
        .count();
    assert_eq!(ran, 1, "the approved call ran once: {records:#?}");
}

#[tokio::test]
async fn an_expired_stateless_approval_state_is_refused() {
    let echo = Echo::start().await;
    let fixture = fixture("expiry = \"1s\"", &echo);
    let server = fixture.http_server(&[]).await;
    let a = write("/out/a.txt", "a");
    let plan = json!({
        "server": {"http": server.url},
        "mode": "2026-07-28",
        "clients": [
            {"key": ALICE_KEY, "calls": [first_round("first", a.clone())]},
            {"sleep": 2},
            {"key": ALICE_KEY, "calls": [retry("late", a.clone(), "first", false)]},
        ],
    });
    let lines = run(&fixture, plan, || server.stderr()).await;
    assert!(lines.get("first")["state"].is_string());
    invalid_state(&lines, "late");
    assert!(!fixture.path("out/a.txt").exists(), "an expired state ran");
    let records = fixture.audit_log("audit/audit.jsonl");
    assert!(
        records.iter().any(|r| r["outcome"] == "approval-invalid"),
        "{records:#?}"
    );
}

/// `net__http_get` of the echo server, answering any question with `answers`.
fn fetch(name: &str, echo: &Echo, answers: Value) -> Value {
    json!({"name": name, "tool": "net__http_get", "args": {"url": echo.url()}, "answers": answers})
}

fn read_secret(name: &str) -> Value {
    json!({"name": name, "tool": "testbed__read_file", "args": {"path": "/out/secret.txt"}})
}

#[tokio::test]
async fn after_private_output_an_open_world_call_of_the_same_principal_asks_until_the_window_ends()
{
    let echo = Echo::start().await;
    let fixture = fixture("window = \"2s\"", &echo);
    std::fs::write(fixture.path("out/secret.txt"), "s3cret").expect("write the secret");
    let server = fixture.http_server(&[]).await;
    let plan = json!({
        "server": {"http": server.url},
        "mode": "2026-07-28",
        "clients": [
            {"key": ALICE_KEY, "calls": [
                fetch("before", &echo, json!([])),
                read_secret("read"),
                fetch("after-read", &echo, json!([answer("decline")])),
            ]},
            {"key": BOB_KEY, "calls": [fetch("other-principal", &echo, json!([]))]},
            {"sleep": 2.5},
            {"key": ALICE_KEY, "calls": [fetch("after-window", &echo, json!([]))]},
        ],
    });
    let lines = run(&fixture, plan, || server.stderr()).await;
    assert_eq!(lines.ok("before"), "200\nhello");
    assert!(lines.asked("before").is_empty(), "an open-world call asks");
    assert_eq!(lines.ok("read"), "s3cret");
    // Alice now holds private data: her open-world call asks, naming where it came from.
    let asked = lines.asked("after-read");
    assert_eq!(asked.len(), 1, "{asked:?}\n{}", lines.report);
    let question = asked[0]["message"].as_str().unwrap_or_default();
    assert!(
        question.contains("read earlier from testbed__read_file"),
        "{question}"
    );
    refused(&lines, "after-read", DECLINED);
    // Bob holds none; after the window, neither does Alice.
    assert_eq!(lines.ok("other-principal"), "200\nhello");
    assert!(lines.asked("other-principal").is_empty());
    assert_eq!(lines.ok("after-window"), "200\nhello");
    assert!(lines.asked("after-window").is_empty());
    assert_eq!(echo.hits(), 3, "the declined call reached the network");
    let records = fixture.audit_log("audit/audit.jsonl");
    let declined = records
        .iter()
        .find(|r| r["tool"] == "net__http_get" && r["outcome"] == "approval-declined")
        .expect("the declined call's record");
    assert_eq!(declined["principal"], "alice", "{declined}");
}

#[tokio::test]
async fn after_private_deny_refuses_an_open_world_call_without_asking() {
    let echo = Echo::start().await;
    let fixture = fixture("after_private = \"deny\"", &echo);
    std::fs::write(fixture.path("out/secret.txt"), "s3cret").expect("write the secret");
    let plan = json!({
        "server": stdio(&fixture),
        "mode": "legacy",
        "clients": [{"calls": [
            fetch("before", &echo, json!([])),
            read_secret("read"),
            fetch("after-read", &echo, json!([answer(ACCEPT)])),
        ]}],
    });
    let lines = run(&fixture, plan, String::new).await;
    assert_eq!(lines.ok("before"), "200\nhello");
    assert_eq!(lines.ok("read"), "s3cret");
    let refused = lines.tool_error("after-read");
    assert!(
        refused.starts_with(
            "refused: this call can send data read earlier from testbed__read_file to the internet"
        ),
        "{refused}"
    );
    assert!(lines.asked("after-read").is_empty(), "a denied call asks");
    assert_eq!(echo.hits(), 1, "the refused call reached the network");
    let records = fixture.audit_log("audit/audit.jsonl");
    assert!(
        records
            .iter()
            .any(|r| r["tool"] == "net__http_get" && r["outcome"] == "denied"),
        "{records:#?}"
    );
}

#[tokio::test]
async fn tools_list_says_which_tools_a_human_confirms() {
    let echo = Echo::start().await;
    let fixture = fixture("", &echo);
    let client = fixture.client().await;
    let tools = client.service.list_all_tools().await.expect("tools/list");
    let description = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.description.as_deref())
            .unwrap_or_else(|| panic!("no description for {name}"))
            .to_owned()
    };
    assert!(
        description("testbed__write_file").ends_with(ASKS),
        "{}",
        description("testbed__write_file")
    );
    assert!(!description("testbed__read_file").contains(ASKS));
    assert!(!description("net__http_get").contains(ASKS));
    client.close().await;
}

/// An approved call whose plugin then asks its own question: in the stateless era the
/// approval carries over the plugin's rounds (it is not asked again) and the record of the
/// call that ran keeps it.
async fn approved_then_asked(
    server: Value,
    mode: &str,
    fixture: &Fixture,
    log: impl Fn() -> String,
) {
    let form = json!({"type": "object", "properties": {"colour": {"type": "string"}}});
    let plan = json!({
        "server": server,
        "mode": mode,
        "clients": [{"key": ALICE_KEY, "calls": [
            {"name": "ask", "tool": "testbed__ask",
             "args": {"message": "Pick a colour", "schema": form.to_string()},
             "answers": [answer(ACCEPT), {"action": "accept", "content": {"colour": "teal"}}]},
        ]}],
    });
    let lines = run(fixture, plan, log).await;
    let asked = lines.asked("ask");
    assert_eq!(asked.len(), 2, "{asked:?}\n{}", lines.report);
    assert!(
        asked[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("testbed__ask")),
        "{asked:?}"
    );
    assert_eq!(asked[1]["message"], "Pick a colour");
    assert_eq!(lines.ok("ask"), r#"accept {"colour":"teal"}"#);
    let records = fixture.audit_log("audit/audit.jsonl");
    let ran = records
        .iter()
        .find(|r| r["tool"] == "testbed__ask" && r["outcome"] == "ok")
        .unwrap_or_else(|| panic!("no record of the call that ran: {records:#?}"));
    let via = if mode == "legacy" {
        "elicitation"
    } else {
        "input-required"
    };
    assert_eq!(ran["approval"]["via"], via, "{records:#?}");
}

#[tokio::test]
async fn an_approved_call_whose_plugin_asks_keeps_its_approval_in_a_session() {
    let echo = Echo::start().await;
    let fixture = fixture_with(
        "",
        "[plugins.testbed.tools.ask]\napproval = \"ask\"\n",
        &echo,
    );
    approved_then_asked(stdio(&fixture), "legacy", &fixture, String::new).await;
}

#[tokio::test]
async fn an_approved_call_whose_plugin_asks_keeps_its_approval_over_stateless_rounds() {
    let echo = Echo::start().await;
    let fixture = fixture_with(
        "",
        "[plugins.testbed.tools.ask]\napproval = \"ask\"\n",
        &echo,
    );
    let server = fixture.http_server(&[]).await;
    approved_then_asked(json!({"http": server.url}), "2026-07-28", &fixture, || {
        server.stderr()
    })
    .await;
}

/// A plugin's `sample` and `roots` in both eras over stdio and HTTP: sent to a client that
/// declared sampling and roots (in a 2025-11-25 session as requests during the call, in the
/// 2026-07-28 era as input requests of an `input_required` round: the answer reaches the
/// plugin, the call's record counts the questions), refused to a plugin without the grants,
/// and unsupported for a client without the capabilities. What the plugin sends passes its
/// output filter.
#[tokio::test]
async fn sampling_and_roots_reach_a_capable_client_in_both_eras_and_need_their_grants() {
    let fixture = Fixture::new(
        r#"
[audit]
path = "{dir}/audit/audit.jsonl"

[plugins.bare]
component = "{testbed}"

[plugins.asker]
component = "{testbed}"
sampling = true
roots = true
env = { API_TOKEN = "hunter2-very-secret" }
"#,
    );
    let sample = json!({"prompt": "Say hi", "max_tokens": 20});
    let calls = |prefix: &str| {
        json!([
            {"name": format!("{prefix}sample"), "tool": "asker__sample", "args": sample},
            {"name": format!("{prefix}roots"), "tool": "asker__list_roots", "args": {}},
            {"name": format!("{prefix}bare-sample"), "tool": "bare__sample", "args": sample},
            {"name": format!("{prefix}bare-roots"), "tool": "bare__list_roots", "args": {}},
        ])
    };
    // Three questions of three kinds at once, under the plugin's keys.
    let keyed = |name: &str| {
        json!({"sampling": true, "roots": true, "calls": [
            {"name": name, "tool": "asker__ask_keyed",
             "args": {"questions": ["elicit:user_name", "sample:greeting", "roots:client_roots"],
                      "required": true},
             "answers": [{"action": "accept", "content": {"answer": "Ann"}}]},
        ]})
    };
    let keyed_text =
        "accept {\"answer\":\"Ann\"}\ntest-model endTurn: echo: Say hi\nfile:///work/project";
    let plan = json!({
        "server": stdio(&fixture),
        "mode": "legacy",
        "clients": [
            keyed("keyed"),
            {"elicit": false, "sampling": true, "roots": true, "calls": calls("")},
            {"elicit": false, "sampling": true, "calls": [
                {"name": "secret", "tool": "asker__sample",
                 "args": {"prompt": "Say hunter2-very-secret", "max_tokens": 5}},
            ]},
            {"elicit": false, "calls": calls("unable-")},
        ],
    });
    let lines = run(&fixture, plan, String::new).await;
    assert_eq!(
        lines.ok("sample"),
        "assistant test-model endTurn: echo: Say hi"
    );
    assert_eq!(
        lines.get("sample")["asked"],
        json!([{"sample": ["Say hi"], "system": null, "max_tokens": 20}])
    );
    assert_eq!(lines.ok("roots"), "file:///work/project project");
    // In a session the questions go one after the other.
    assert_eq!(lines.ok("keyed"), keyed_text);
    assert_eq!(lines.asked("keyed").len(), 3);
    // The plugin's secret is redacted from what it sends the client's model (and so from the
    // answer, which echoes it).
    let secret = lines.get("secret");
    assert!(!secret.to_string().contains("hunter2"), "{secret}");
    assert!(lines.ok("secret").contains("[REDACTED"), "{secret}");
    for name in ["bare-sample", "bare-roots"] {
        assert_eq!(lines.ok(name), "error: not-granted");
        assert_eq!(lines.get(name)["asked"], json!([]));
    }
    for name in ["unable-sample", "unable-roots"] {
        assert_eq!(lines.ok(name), "error: unsupported");
    }

    // The stateless era: input requests under the host's keys, answered by the client's
    // callbacks between rounds.
    let stateless = |server: Value, prefix: &str| {
        json!({
            "server": server,
            "mode": "2026-07-28",
            "clients": [
                keyed(&format!("{prefix}keyed")),
                {"elicit": false, "sampling": true, "roots": true, "calls": calls(prefix)},
                {"elicit": false, "sampling": true, "calls": [
                    {"name": format!("{prefix}secret"), "tool": "asker__sample",
                     "args": {"prompt": "Say hunter2-very-secret", "max_tokens": 5}},
                ]},
                {"elicit": false, "calls": calls(&format!("{prefix}unable-"))},
            ],
        })
    };
    let check_stateless = |lines: &Lines, prefix: &str| {
        let name = |n: &str| format!("{prefix}{n}");
        // In one round, under the plugin's keys.
        assert_eq!(lines.ok(&name("keyed")), keyed_text);
        let mut keys: Vec<String> = lines
            .asked(&name("keyed"))
            .iter()
            .map(|q| q["key"].as_str().unwrap_or_default().to_owned())
            .collect();
        keys.sort();
        assert_eq!(keys, ["client_roots", "greeting", "user_name"]);
        assert_eq!(
            lines.ok(&name("sample")),
            "assistant test-model endTurn: echo: Say hi"
        );
        assert_eq!(
            lines.get(&name("sample"))["asked"],
            json!([{"key": "sample-0", "sample": ["Say hi"], "system": null, "max_tokens": 20}])
        );
        assert_eq!(lines.ok(&name("roots")), "file:///work/project project");
        assert_eq!(
            lines.get(&name("roots"))["asked"],
            json!([{"key": "roots-0", "roots": true}])
        );
        let secret = lines.get(&name("secret"));
        assert!(!secret.to_string().contains("hunter2"), "{secret}");
        assert!(lines.ok(&name("secret")).contains("[REDACTED"), "{secret}");
        for bare in ["bare-sample", "bare-roots"] {
            assert_eq!(lines.ok(&name(bare)), "error: not-granted");
            assert_eq!(lines.get(&name(bare))["asked"], json!([]));
        }
        for unable in ["unable-sample", "unable-roots"] {
            assert_eq!(lines.ok(&name(unable)), "error: unsupported");
            assert_eq!(lines.get(&name(unable))["asked"], json!([]));
        }
    };
    let lines = run(
        &fixture,
        stateless(stdio(&fixture), "stateless-"),
        String::new,
    )
    .await;
    check_stateless(&lines, "stateless-");

    // The same over Streamable HTTP, in a session.
    let server = fixture.http_server(&[]).await;
    let plan = json!({
        "server": {"http": server.url},
        "mode": "legacy",
        "clients": [{"elicit": false, "sampling": true, "roots": true, "calls": calls("http-")}],
    });
    let lines = run(&fixture, plan, || server.stderr()).await;
    assert_eq!(
        lines.ok("http-sample"),
        "assistant test-model endTurn: echo: Say hi"
    );
    assert_eq!(lines.ok("http-roots"), "file:///work/project project");
    assert_eq!(lines.ok("http-bare-roots"), "error: not-granted");
    let plan = stateless(json!({"http": server.url}), "http-stateless-");
    let lines = run(&fixture, plan, || server.stderr()).await;
    check_stateless(&lines, "http-stateless-");

    // The call's record counts its requests to the client as questions.
    let records = fixture.audit_log("audit/audit.jsonl");
    let sampled = records
        .iter()
        .find(|r| r["tool"] == "asker__sample")
        .expect("a record of the sample call");
    assert_eq!(sampled["usage"]["questions"], 1, "{sampled}");
    // A stateless round is recorded with the keys and methods it asked, then the call that
    // ran with its answer.
    let rounds: Vec<_> = records
        .iter()
        .filter(|r| r["tool"] == "asker__list_roots" && r["outcome"] == "input-required")
        .collect();
    assert_eq!(rounds.len(), 2, "{records:#?}");
    assert_eq!(
        rounds[0]["error"], "the plugin asked: roots-0 (roots/list)",
        "{rounds:#?}"
    );
}

/// One stateless (2026-07-28) JSON-RPC request over HTTP, its `_meta` declaring `caps`: the
/// HTTP status and the JSON-RPC response (read from JSON or from the event stream).
async fn post_2026(url: &str, method: &str, params: Value, caps: Value) -> (u16, Value) {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": caps,
    });
    let name = params["name"].as_str().unwrap_or_default().to_owned();
    let response = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", method)
        .header("Mcp-Name", name)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    let json = body
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some())
        .or_else(|| serde_json::from_str(&body).ok())
        .unwrap_or_else(|| panic!("no JSON-RPC response in {body}"));
    (status, json)
}

/// Call `tool` statelessly with `arguments`, `extra` params (`inputResponses`,
/// `requestState`) and `caps`.
async fn call_2026(url: &str, tool: &str, arguments: Value, extra: Value, caps: Value) -> Value {
    let mut params = json!({"name": tool, "arguments": arguments});
    if let Value::Object(extra) = extra {
        for (key, value) in extra {
            params[key] = value;
        }
    }
    post_2026(url, "tools/call", params, caps).await.1
}

/// Every client capability the tests declare.
fn all_caps() -> Value {
    json!({"elicitation": {}, "sampling": {}, "roots": {}})
}

/// The text of a complete tool result.
fn result_text(response: &Value) -> String {
    assert!(
        response["result"]["resultType"] != "input_required",
        "{response}"
    );
    response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {response}"))
        .to_owned()
}

/// A plugin's questions in the stateless era, by hand on the wire: several of different kinds
/// in one round under the plugin's keys, answers read as the kind of their question, the
/// sealed state refused when tampered with, replayed or moved to another tool, the plugin's
/// secret redacted from what it sends, the grants and the client's declared capabilities
/// respected (a required question the client cannot answer is -32021, HTTP 400), and bad keys
/// refused to the plugin. Every request is in the audit log.
#[tokio::test]
async fn stateless_input_requests_are_keyed_checked_and_sealed() {
    let fixture = Fixture::new(
        r#"
[audit]
path = "{dir}/audit/audit.jsonl"

[plugins.bare]
component = "{testbed}"

[plugins.asker]
component = "{testbed}"
sampling = true
roots = true
env = { API_TOKEN = "hunter2-very-secret" }
"#,
    );
    let server = fixture.http_server(&[]).await;
    let url = server.url.clone();
    let keyed =
        |questions: &[&str], required: bool| json!({"questions": questions, "required": required});
    let three = keyed(
        &["elicit:user_name", "sample:greeting", "roots:client_roots"],
        false,
    );

    // One round asks all three, under the plugin's keys.
    let first = call_2026(
        &url,
        "asker__ask_keyed",
        three.clone(),
        json!({}),
        all_caps(),
    )
    .await;
    let result = &first["result"];
    assert_eq!(result["resultType"], "input_required", "{first}");
    let requests = &result["inputRequests"];
    assert_eq!(
        requests["user_name"]["method"], "elicitation/create",
        "{first}"
    );
    assert_eq!(requests["greeting"]["method"], "sampling/createMessage");
    assert_eq!(requests["greeting"]["params"]["maxTokens"], 20);
    assert_eq!(requests["client_roots"]["method"], "roots/list");
    let state = result["requestState"].as_str().expect("a state").to_owned();

    let answers = json!({
        "user_name": {"action": "accept", "content": {"answer": "Ann"}},
        "greeting": {"role": "assistant", "content": {"type": "text",
                     "text": "Hello hunter2-very-secret"}, "model": "m", "stopReason": "endTurn"},
        "client_roots": {"roots": [{"uri": "file:///work/w", "name": "w"}]},
        "unknown_extra_key": {"action": "accept", "content": {}},
    });
    let retry =
        |state: &str, answers: &Value| json!({"inputResponses": answers, "requestState": state});
    // Answered: the plugin gets each answer; what the model said passes the filter.
    let done = call_2026(
        &url,
        "asker__ask_keyed",
        three.clone(),
        retry(&state, &answers),
        all_caps(),
    )
    .await;
    let text = result_text(&done);
    assert!(
        text.starts_with("accept {\"answer\":\"Ann\"}\nm endTurn: Hello [REDACTED"),
        "{text}"
    );
    assert!(text.ends_with("\nfile:///work/w"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    // The same state again, a tampered one, or one moved to another tool: refused.
    let invalid = |response: &Value| {
        assert_eq!(response["error"]["code"], -32602, "{response}");
        let message = response["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("requestState"), "{message}");
    };
    let replayed = call_2026(
        &url,
        "asker__ask_keyed",
        three.clone(),
        retry(&state, &answers),
        all_caps(),
    )
    .await;
    invalid(&replayed);
    let fresh = |response: Value| {
        response["result"]["requestState"]
            .as_str()
            .unwrap_or_else(|| panic!("no state: {response}"))
            .to_owned()
    };
    let state = fresh(
        call_2026(
            &url,
            "asker__ask_keyed",
            three.clone(),
            json!({}),
            all_caps(),
        )
        .await,
    );
    let mut tampered = state.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ASCII state");
    invalid(
        &call_2026(
            &url,
            "asker__ask_keyed",
            three.clone(),
            retry(&tampered, &answers),
            all_caps(),
        )
        .await,
    );
    invalid(
        &call_2026(
            &url,
            "asker__sample",
            json!({"prompt": "Say hi", "max_tokens": 20}),
            retry(&state, &answers),
            all_caps(),
        )
        .await,
    );

    // An answer of another kind under a key: a sampling answer is not a form's answer, and a
    // number is nothing.
    for wrong in [answers["greeting"].clone(), json!(12345)] {
        let mut given = answers.clone();
        given["user_name"] = wrong;
        let refused = call_2026(
            &url,
            "asker__ask_keyed",
            three.clone(),
            json!({"inputResponses": given}),
            all_caps(),
        )
        .await;
        assert_eq!(refused["error"]["code"], -32602, "{refused}");
        let message = refused["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("inputResponses.user_name is not an elicitation answer"),
            "{message}"
        );
    }

    // The plugin's secret never reaches the client in a sampling request.
    let secret = call_2026(
        &url,
        "asker__sample",
        json!({"prompt": "Say hunter2-very-secret", "max_tokens": 5}),
        json!({}),
        all_caps(),
    )
    .await;
    let request = &secret["result"]["inputRequests"]["sample-0"];
    assert_eq!(request["method"], "sampling/createMessage", "{secret}");
    assert!(!secret.to_string().contains("hunter2"), "{secret}");
    assert!(secret.to_string().contains("[REDACTED"), "{secret}");

    // No grant: nothing is asked, in one question or several.
    let bare = call_2026(
        &url,
        "bare__ask_keyed",
        keyed(&["sample:s", "roots:r"], true),
        json!({}),
        all_caps(),
    )
    .await;
    assert_eq!(result_text(&bare), "error: not-granted\nerror: not-granted");
    let bare = call_2026(&url, "bare__list_roots", json!({}), json!({}), all_caps()).await;
    assert_eq!(result_text(&bare), "error: not-granted");

    // Only what the client declared is asked; the rest is unsupported, or, when required,
    // the request's missing-capability error naming it.
    let two = keyed(&["elicit:user_name", "sample:capital"], false);
    let sampling_only = json!({"sampling": {}});
    let asked = call_2026(
        &url,
        "asker__ask_keyed",
        two,
        json!({}),
        sampling_only.clone(),
    )
    .await;
    let requests = asked["result"]["inputRequests"]
        .as_object()
        .expect("requests");
    assert_eq!(requests.keys().collect::<Vec<_>>(), ["capital"], "{asked}");
    let (status, missing) = post_2026(
        &url,
        "tools/call",
        json!({"name": "asker__ask_keyed",
               "arguments": keyed(&["elicit:user_name", "sample:capital", "roots:r"], true)}),
        sampling_only,
    )
    .await;
    assert_eq!(status, 400, "{missing}");
    assert_eq!(missing["error"]["code"], -32021, "{missing}");
    assert_eq!(
        missing["error"]["data"]["requiredCapabilities"],
        json!({"elicitation": {}, "roots": {}}),
        "{missing}"
    );

    // Keys: the plugin's ask is refused, nothing asked.
    for (questions, expected) in [
        (
            vec!["elicit:has space"],
            "error: invalid-key: the key `has space` has the character ' '",
        ),
        (
            vec!["elicit:approval"],
            "error: invalid-key: the key `approval` is the host's own",
        ),
        (
            vec!["roots:elicit-0"],
            "error: invalid-key: the key `elicit-0` is the host's own",
        ),
        (vec!["elicit:a", "sample:a"], "error: duplicate-key: a"),
        (
            vec!["elicit:a", "--", "roots:a"],
            "error: unsupported\nerror: duplicate-key: a",
        ),
    ] {
        let response = call_2026(
            &url,
            "asker__ask_keyed",
            keyed(&questions, false),
            json!({}),
            json!({}),
        )
        .await;
        let text = result_text(&response);
        assert!(text.starts_with(expected), "{questions:?}: {text}");
    }

    // Every request is in the audit log: the rounds with what they asked.
    let records = fixture.audit_log("audit/audit.jsonl");
    let keyed_records: Vec<_> = records
        .iter()
        .filter(|r| r["tool"] == "asker__ask_keyed")
        .collect();
    assert_eq!(keyed_records.len(), 14, "{keyed_records:#?}");
    assert_eq!(keyed_records[0]["outcome"], "input-required");
    assert_eq!(
        keyed_records[0]["error"],
        "the plugin asked: client_roots (roots/list), greeting (sampling/createMessage), \
         user_name (elicitation/create)"
    );
    assert_eq!(keyed_records[1]["outcome"], "ok");
    assert_eq!(
        keyed_records[1]["usage"]["questions"], 3,
        "{:#?}",
        keyed_records[1]
    );
    assert_eq!(keyed_records[2]["outcome"], "approval-invalid");
    assert!(
        !serde_json::to_string(&records)
            .expect("json")
            .contains("hunter2")
    );
}
