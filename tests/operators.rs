//! The operator approval channel, end to end: the real `warden serve --http`, rmcp's
//! streamable-HTTP client declaring no elicitation capability (so it cannot ask its user), a
//! tool with `approval = "ask"` that writes a file (`testbed__write_file`), operators answering
//! through the real `warden approvals` binary and through raw HTTP, and the audit log.

mod common;

use std::time::Duration;

use common::{Fixture, HttpServer, err_text, ok_text};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::ClientLifecycleMode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The caller (an agent): no operator role.
const BOT_KEY: &str = "wdn_test-bot-key-0123456789abcdefghijklmnopqrstu";
/// An operator.
const ALICE_KEY: &str = "wdn_test-alice-key-0123456789abcdefghijklmnopqrs";
/// An authenticated principal who is not an operator.
const EVE_KEY: &str = "wdn_test-eve-key-0123456789abcdefghijklmnopqrstu";
/// An operator who also calls tools.
const SAM_KEY: &str = "wdn_test-sam-key-0123456789abcdefghijklmnopqrstu";

/// How long any one wait in these tests may take (compiling on a cold cache included).
const BOUND: Duration = Duration::from_secs(120);

fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A manifest with an audit log, the testbed asking approval for every call (writable
/// `/out`), `[approval]` as given, and `auth` (the four keys, or nothing).
fn fixture(approval: &str, auth: bool) -> Fixture {
    let mut body = format!(
        r#"
[audit]
path = "{{dir}}/audit/audit.jsonl"

[approval]
{approval}

[plugins.testbed]
component = "{{testbed}}"
approval = "ask"
dirs = [{{ host = "{{dir}}/out", guest = "/out", mode = "rw" }}]
"#
    );
    if auth {
        for (principal, role, key) in [
            ("bot", "caller", BOT_KEY),
            ("alice", "approver", ALICE_KEY),
            ("eve", "reader", EVE_KEY),
            ("sam", "approver", SAM_KEY),
        ] {
            body.push_str(&format!(
                "\n[[auth.api_keys]]\nprincipal = \"{principal}\"\nroles = [\"{role}\"]\nsha256 = \"{}\"\n",
                digest(key)
            ));
        }
    }
    let fixture = Fixture::new(&body);
    std::fs::create_dir(fixture.path("out")).expect("mkdir out");
    fixture
}

/// The audit record of the call `id`.
fn record_of(fixture: &Fixture, id: &str) -> Value {
    let records = fixture.audit_log("audit/audit.jsonl");
    records
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no record of {id}: {records:#?}"))
}

/// Start `testbed__write_file` of `path` as the holder of `key`, with rmcp's client and its
/// default capabilities (no elicitation); the call's result arrives on the handle.
async fn headless_call(
    server: &HttpServer,
    key: Option<&str>,
    path: &str,
) -> tokio::task::JoinHandle<CallToolResult> {
    let client = server
        .connect(server.client_config(key), ClientLifecycleMode::Initialize)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.stderr()));
    let arguments = common::object(json!({ "path": path, "content": "ran" }));
    tokio::spawn(async move {
        let result = tokio::time::timeout(
            BOUND,
            client.call_tool(
                CallToolRequestParams::new("testbed__write_file").with_arguments(arguments),
            ),
        )
        .await
        .expect("the call ends in time")
        .expect("tools/call");
        let _ = client.cancel().await;
        result
    })
}

/// The call's result, within the bound.
async fn finished(call: tokio::task::JoinHandle<CallToolResult>) -> CallToolResult {
    tokio::time::timeout(BOUND, call)
        .await
        .expect("the call returns in time")
        .expect("the call's task")
}

/// `GET /approvals` with `key` as the bearer token, if any.
async fn get_approvals(server: &HttpServer, key: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{}/approvals", server.base));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.expect("GET /approvals")
}

/// `POST /approvals/{id}` with `body`.
async fn post_approval(
    server: &HttpServer,
    key: Option<&str>,
    id: &str,
    body: &str,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/approvals/{id}", server.base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.expect("POST /approvals/{id}")
}

/// Wait until `count` calls are waiting (as an operator sees them); returns them.
async fn wait_pending(server: &HttpServer, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let response = get_approvals(server, Some(ALICE_KEY)).await;
        assert_eq!(response.status(), 200, "{}", server.stderr());
        let body: Value = response.json().await.expect("JSON");
        let pending = body["pending"].as_array().cloned().expect("a pending list");
        if pending.len() >= count {
            return pending;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no call waiting; server log:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Run the real `warden approvals ARGS` with `WARDEN_API_KEY` set to `key` (if any); returns
/// (exit code, stdout, stderr).
async fn approvals_cli(args: &[&str], key: Option<&str>) -> (i32, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"));
    command
        .arg("approvals")
        .args(args)
        .env_remove("WARDEN_API_KEY");
    if let Some(key) = key {
        command.env("WARDEN_API_KEY", key);
    }
    let output = tokio::time::timeout(BOUND, command.output())
        .await
        .expect("warden approvals ends in time")
        .expect("run warden approvals");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_operator_allows_a_waiting_headless_call_with_the_cli_and_over_http() {
    let fixture = fixture("timeout = \"2m\"\noperators = [\"approver\"]", true);
    let server = fixture.http_server(&[]).await;

    // 1. Through the real `warden approvals` binary.
    let call = headless_call(&server, Some(BOT_KEY), "/out/cli.txt").await;
    let pending = wait_pending(&server, 1).await;
    let id = pending[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(pending[0]["tool"], "testbed__write_file");
    assert_eq!(pending[0]["principal"], "bot");
    assert!(!fixture.path("out/cli.txt").exists(), "ran before approval");
    // `warden status` counts it.
    let this = server.status();
    assert_eq!(this["waiting_for_operator"], 1, "{this}");

    let (code, stdout, stderr) =
        approvals_cli(&["list", "--url", &server.base], Some(ALICE_KEY)).await;
    assert_eq!(code, 0, "{stderr}");
    let header = stdout.lines().next().unwrap_or_default();
    for column in [
        "ID",
        "TOOL",
        "PRINCIPAL",
        "WAITING SINCE",
        "REASON",
        "ARGUMENTS",
    ] {
        assert!(header.contains(column), "{stdout}");
    }
    assert!(
        stdout.contains(&id) && stdout.contains("testbed__write_file"),
        "{stdout}"
    );
    assert!(stdout.contains("/out/cli.txt"), "{stdout}");
    let (code, stdout, stderr) =
        approvals_cli(&["list", "--json", "--url", &server.base], Some(ALICE_KEY)).await;
    assert_eq!(code, 0, "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(listed[0]["id"], id.as_str());

    // The key from a file this time.
    let key_file = fixture.path("alice.key");
    std::fs::write(&key_file, format!("{ALICE_KEY}\n")).expect("write key file");
    let key_file = key_file.display().to_string();
    let (code, stdout, stderr) = approvals_cli(
        &["allow", &id, "--url", &server.base, "--key-file", &key_file],
        None,
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("allowed") && stdout.contains(&id),
        "{stdout}"
    );
    ok_text(&finished(call).await);
    assert_eq!(
        std::fs::read_to_string(fixture.path("out/cli.txt")).expect("the tool ran"),
        "ran"
    );
    let record = record_of(&fixture, &id);
    assert_eq!(record["outcome"], "ok", "{record}");
    assert_eq!(record["principal"], "bot", "{record}");
    assert_eq!(record["approval"]["via"], "operator", "{record}");
    assert_eq!(record["approval"]["by"], "alice", "{record}");

    // 2. Over raw HTTP.
    let call = headless_call(&server, Some(BOT_KEY), "/out/raw.txt").await;
    let id = wait_pending(&server, 1).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let response = post_approval(&server, Some(ALICE_KEY), &id, r#"{"decision":"allow"}"#).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(
        answer,
        json!({ "id": id, "decision": "allow", "tool": "testbed__write_file", "principal": "bot" })
    );
    ok_text(&finished(call).await);
    assert!(fixture.path("out/raw.txt").exists());
    let record = record_of(&fixture, &id);
    assert_eq!(record["outcome"], "ok", "{record}");
    assert_eq!(record["approval"]["via"], "operator", "{record}");
    assert_eq!(record["approval"]["by"], "alice", "{record}");
    // Answered calls leave the list.
    assert!(wait_pending(&server, 0).await.is_empty());
}

#[tokio::test]
async fn a_denied_call_never_runs_and_only_operators_may_answer_others_calls() {
    let fixture = fixture("timeout = \"2m\"\noperators = [\"approver\"]", true);
    let server = fixture.http_server(&[]).await;
    // sam holds the operator role and calls the tool himself.
    let call = headless_call(&server, Some(SAM_KEY), "/out/denied.txt").await;
    let id = wait_pending(&server, 1).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // No or a wrong key: 401 with /mcp's challenge, for the list and for an answer.
    for key in [None, Some("wdn_not-a-key")] {
        let response = get_approvals(&server, key).await;
        assert_eq!(response.status(), 401, "{key:?}");
        let challenge = common::challenge(&response);
        assert!(
            challenge.starts_with("Bearer realm=\"warden\""),
            "{challenge}"
        );
        let response = post_approval(&server, key, &id, r#"{"decision":"allow"}"#).await;
        assert_eq!(response.status(), 401, "{key:?}");
    }
    // An authenticated principal without an operator role: 403.
    let response = get_approvals(&server, Some(EVE_KEY)).await;
    assert_eq!(response.status(), 403);
    let response = post_approval(&server, Some(EVE_KEY), &id, r#"{"decision":"allow"}"#).await;
    assert_eq!(response.status(), 403);
    // The caller is no operator either.
    let response = post_approval(&server, Some(BOT_KEY), &id, r#"{"decision":"allow"}"#).await;
    assert_eq!(response.status(), 403);
    // An operator may not answer their own call, through HTTP or the CLI.
    let response = post_approval(&server, Some(SAM_KEY), &id, r#"{"decision":"allow"}"#).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "an operator cannot approve their own call");
    let (code, _, stderr) =
        approvals_cli(&["allow", &id, "--url", &server.base], Some(SAM_KEY)).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("cannot approve their own call"), "{stderr}");
    // An unknown id: 404; a bad body: 400.
    let response = post_approval(
        &server,
        Some(ALICE_KEY),
        "0123456789abcdef0123456789abcdef",
        r#"{"decision":"allow"}"#,
    )
    .await;
    assert_eq!(response.status(), 404);
    let (code, _, stderr) = approvals_cli(
        &[
            "deny",
            "0123456789abcdef0123456789abcdef",
            "--url",
            &server.base,
        ],
        Some(ALICE_KEY),
    )
    .await;
    assert_ne!(code, 0);
    assert!(stderr.contains("404"), "{stderr}");
    for bad in [
        r#"{"decision":"maybe"}"#,
        "allow",
        "{}",
        r#"{"decision":"allow","x":1}"#,
    ] {
        let response = post_approval(&server, Some(ALICE_KEY), &id, bad).await;
        assert_eq!(response.status(), 400, "{bad}");
    }
    // A wrong key through the CLI is explained.
    let (code, _, stderr) =
        approvals_cli(&["list", "--url", &server.base], Some("wdn_not-a-key")).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("401"), "{stderr}");
    // None of that answered the call: it still waits, and nothing ran.
    assert_eq!(wait_pending(&server, 1).await.len(), 1);
    assert!(!fixture.path("out/denied.txt").exists());

    // Another operator denies it through the CLI.
    let (code, stdout, stderr) =
        approvals_cli(&["deny", &id, "--url", &server.base], Some(ALICE_KEY)).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("denied"), "{stdout}");
    let text = err_text(&finished(call).await);
    assert!(text.contains("denied by an operator"), "{text}");
    assert!(!fixture.path("out/denied.txt").exists(), "the tool ran");
    let record = record_of(&fixture, &id);
    assert_eq!(record["outcome"], "approval-declined", "{record}");

    // Every refusal of the channel is in the audit log.
    let records = fixture.audit_log("audit/audit.jsonl");
    let refused = |principal: &str, what: &str| {
        records
            .iter()
            .filter(|r| {
                r["outcome"] == "denied" && r["principal"] == principal && r["tool"] == what
            })
            .count()
    };
    assert!(refused("anonymous", "GET /approvals") >= 1, "{records:#?}");
    assert!(
        refused("anonymous", &format!("POST /approvals/{id}")) >= 1,
        "{records:#?}"
    );
    assert!(refused("eve", "GET /approvals") >= 1, "{records:#?}");
    assert!(
        refused("eve", &format!("POST /approvals/{id}")) >= 1,
        "{records:#?}"
    );
    assert!(
        refused("sam", &format!("POST /approvals/{id}")) >= 2,
        "{records:#?}"
    );
    let log = std::fs::read_to_string(fixture.path("audit/audit.jsonl")).expect("audit log");
    for key in [ALICE_KEY, EVE_KEY, SAM_KEY, BOT_KEY] {
        assert!(!log.contains(key), "the audit log holds a key");
    }
}

#[tokio::test]
async fn a_call_nobody_answers_times_out_without_running() {
    let fixture = fixture("timeout = \"1s\"\noperators = [\"approver\"]", true);
    let server = fixture.http_server(&[]).await;
    let call = headless_call(&server, Some(BOT_KEY), "/out/late.txt").await;
    let result = finished(call).await;
    let text = err_text(&result);
    assert!(
        text.contains("no answer to the approval question"),
        "{text}"
    );
    assert!(!fixture.path("out/late.txt").exists(), "the tool ran");
    let records = fixture.audit_log("audit/audit.jsonl");
    let call = records
        .iter()
        .find(|r| r["tool"] == "testbed__write_file")
        .unwrap_or_else(|| panic!("{records:#?}"));
    assert_eq!(call["outcome"], "approval-timeout", "{call}");
    // An answer after the timeout reaches nothing.
    let id = call["id"].as_str().expect("id");
    let response = post_approval(&server, Some(ALICE_KEY), id, r#"{"decision":"allow"}"#).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn without_operators_a_headless_call_is_refused_at_once_and_there_is_no_channel() {
    let fixture = fixture("timeout = \"2m\"", true);
    let server = fixture.http_server(&[]).await;
    let started = std::time::Instant::now();
    let call = headless_call(&server, Some(BOT_KEY), "/out/never.txt").await;
    let text = err_text(&finished(call).await);
    assert!(text.contains("this client cannot ask for it"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(60), "it waited");
    assert!(!fixture.path("out/never.txt").exists());
    let records = fixture.audit_log("audit/audit.jsonl");
    assert!(
        records
            .iter()
            .any(|r| r["tool"] == "testbed__write_file" && r["outcome"] == "approval-unavailable"),
        "{records:#?}"
    );
    // No channel: 404 as any unknown path, whoever asks, whatever the method.
    assert_eq!(get_approvals(&server, Some(ALICE_KEY)).await.status(), 404);
    assert_eq!(get_approvals(&server, None).await.status(), 404);
    let response = post_approval(&server, Some(ALICE_KEY), "x", r#"{"decision":"allow"}"#).await;
    assert_eq!(response.status(), 404);
    let (code, _, stderr) = approvals_cli(&["list", "--url", &server.base], Some(ALICE_KEY)).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("no approval channel"), "{stderr}");
}

#[tokio::test]
async fn without_auth_the_channel_refuses_everyone_and_check_warns() {
    let fixture = fixture("timeout = \"2m\"\noperators = [\"approver\"]", false);
    let (code, stdout, stderr) = common::warden(
        &[
            "check",
            "--manifest",
            &fixture.manifest.display().to_string(),
        ],
        fixture.dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("operators-without-auth"), "{stdout}");
    let server = fixture.http_server(&[]).await;
    // Loopback without [auth]: requests run as the local principal, yet nobody is an operator.
    let call = headless_call(&server, None, "/out/open.txt").await;
    let id = {
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            let response = get_approvals(&server, None).await;
            assert_eq!(response.status(), 403);
            let body: Value = response.json().await.expect("JSON");
            assert!(
                body["error"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("[auth]"),
                "{body}"
            );
            // The list is closed to everyone: the waiting call's id is in the server's log.
            if let Some(line) = server
                .stderr()
                .lines()
                .find(|l| l.contains("waiting for an operator"))
            {
                break line
                    .split("request=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .expect("request id in the log")
                    .to_owned();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}",
                server.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    for key in [None, Some(ALICE_KEY)] {
        let response = post_approval(&server, key, &id, r#"{"decision":"allow"}"#).await;
        assert_eq!(response.status(), 403);
    }
    assert!(!fixture.path("out/open.txt").exists());
    let records = fixture.audit_log("audit/audit.jsonl");
    assert!(
        records
            .iter()
            .any(|r| r["outcome"] == "denied" && r["tool"] == "GET /approvals"),
        "{records:#?}"
    );
    call.abort();
}
