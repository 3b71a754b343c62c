//! End to end: the audit log cannot be turned against itself. Client-chosen strings are
//! bounded, refusals are rate-limited per principal and per client address (with a summary of
//! what was dropped), two warden processes share one log without breaking its chain, a failed
//! write leaves no torn line, a deleted live file is noticed, and `warden audit tail` escapes
//! control characters.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Fixture, ok_text};
use rmcp::model::CallToolRequestParams;
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn audited(extra: &str) -> Fixture {
    Fixture::new(&format!(
        r#"
[audit]
path = "{{dir}}/audit/warden.jsonl"
{extra}

[plugins.testbed]
component = "{{testbed}}"
"#
    ))
}

/// The call records of the log at `path`, in order: start records left out (see
/// [`all_records`]).
fn records(path: &Path) -> Vec<Value> {
    common::calls(all_records(path))
}

/// Every record of the log at `path`, start records too.
fn all_records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("read the audit log")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a whole JSON record"))
        .collect()
}

fn verify(fixture: &Fixture, file: &Path) -> (i32, String, String) {
    common::warden(
        &["audit", "verify", &file.display().to_string()],
        fixture.dir.path(),
    )
}

/// A raw stdio MCP session with `warden serve`: JSON lines written and read by hand, so the
/// test chooses the JSON-RPC ids.
struct Raw {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Raw {
    fn start(fixture: &Fixture) -> Raw {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["serve", "--manifest"])
            .arg(&fixture.manifest)
            .env("WARDEN_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn warden");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut raw = Raw {
            child,
            stdin: Some(stdin),
            stdout,
        };
        raw.send(&json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": { "name": "raw", "version": "1" }
            }
        }));
        raw.response();
        raw.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        raw
    }

    fn send(&mut self, message: &Value) {
        let mut line = serde_json::to_vec(message).expect("json");
        line.push(b'\n');
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(&line).expect("write to warden");
        stdin.flush().expect("flush");
    }

    /// The next response (notifications skipped).
    fn response(&mut self) -> Value {
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).expect("read from warden");
            assert!(n > 0, "warden closed stdout");
            let value: Value = serde_json::from_str(&line).expect("a JSON-RPC message");
            if value.get("id").is_some() {
                return value;
            }
        }
    }

    /// Close warden's input (it stops) and wait for it to exit.
    fn finish(&mut self) -> std::process::ExitStatus {
        self.stdin = None;
        self.child.wait().expect("warden exits")
    }

    fn call(&mut self, id: Value, tool: &str) -> Value {
        self.send(&json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": tool, "arguments": { "text": "hi" } }
        }));
        self.response()
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_huge_tool_name_and_request_id_make_a_small_record() {
    let fixture = audited("");
    let log = fixture.path("audit/warden.jsonl");
    let mut raw = Raw::start(&fixture);
    let name = "n".repeat(4 << 20);
    let id = "i".repeat(4 << 20);
    let answer = raw.call(Value::String(id.clone()), &name);
    let message = answer["error"]["message"]
        .as_str()
        .expect("an unknown tool");
    assert!(
        message.len() < 1024,
        "the error echoes {} bytes",
        message.len()
    );
    // warden keeps serving.
    let answer = raw.call(json!(2), "testbed__emit");
    assert!(answer.get("result").is_some(), "{answer}");
    let size = std::fs::metadata(&log).expect("log").len();
    assert!(size < 8 << 10, "two records took {size} bytes");
    let all = records(&log);
    let refused = &all[0];
    assert_eq!(refused["outcome"], "invalid");
    let tool = refused["tool"].as_str().expect("tool");
    assert!(tool.starts_with(&"n".repeat(200)), "{tool}");
    assert!(
        tool.ends_with(&format!("…[+{} bytes]", (4 << 20) - 256)),
        "{tool}"
    );
    let recorded_id = refused["mcp_id"].as_str().expect("mcp_id");
    assert!(recorded_id.len() < 300, "{}", recorded_id.len());
    assert!(recorded_id.ends_with("bytes]"), "{recorded_id}");
}

/// `n` unknown-tool calls over stdio as fast as they go, then one after a pause.
#[test]
fn refusals_over_the_rate_are_counted_in_a_summary_not_recorded() {
    let fixture = audited("refusal_rate = { per_minute = 60, burst = 5 }");
    let log = fixture.path("audit/warden.jsonl");
    let mut raw = Raw::start(&fixture);
    let started = Instant::now();
    let flood = 200;
    for n in 0..flood {
        let answer = raw.call(json!(n), "no_such_tool");
        assert!(answer.get("error").is_some(), "{answer}");
    }
    let elapsed = started.elapsed().as_secs();
    // Calls that run are always recorded.
    let answer = raw.call(json!("ok"), "testbed__emit");
    assert!(answer.get("result").is_some(), "{answer}");
    let recorded = |all: &[Value]| all.iter().filter(|r| r["outcome"] == "invalid").count() as u64;
    let during = records(&log);
    let kept = recorded(&during);
    assert!(
        kept >= 5 && kept <= 5 + elapsed + 1,
        "{kept} refusals recorded in {elapsed}s"
    );
    assert!(during.iter().any(|r| r["outcome"] == "ok"));
    // After a pause the next refusal is recorded, behind the summary of the dropped ones.
    std::thread::sleep(Duration::from_millis(1500));
    let answer = raw.call(json!("last"), "no_such_tool");
    assert!(answer.get("error").is_some(), "{answer}");
    let all = records(&log);
    let summary = all
        .iter()
        .find(|r| r["outcome"] == "dropped")
        .expect("a summary of dropped refusals");
    let dropped = summary["dropped"].as_u64().expect("dropped count");
    let error = summary["error"].as_str().expect("error");
    assert!(error.contains("principal local"), "{error}");
    assert!(error.contains("refusal_rate"), "{error}");
    assert_eq!(all.last().expect("records")["mcp_id"], "last");
    // Every refusal is either recorded or counted.
    assert_eq!(recorded(&all) + dropped, flood + 1, "{all:#?}");
    let (code, out, err) = verify(&fixture, &log);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn refusals_still_dropped_when_warden_stops_are_summarized() {
    let fixture = audited("refusal_rate = { per_minute = 1, burst = 5 }");
    let log = fixture.path("audit/warden.jsonl");
    let mut raw = Raw::start(&fixture);
    for n in 0..50 {
        raw.call(json!(n), "no_such_tool");
    }
    // End of input: warden stops.
    let status = raw.finish();
    assert!(status.success(), "{status}");
    let all = records(&log);
    assert_eq!(all.len(), 6, "{all:#?}");
    assert_eq!(all[5]["outcome"], "dropped");
    assert_eq!(all[5]["dropped"], 45);
}

#[tokio::test]
async fn unauthenticated_requests_are_recorded_at_a_bounded_rate_per_address() {
    const KEY: &str = "wk_audit_test_key_0123456789abcdef0123456789";
    let fixture = audited(&format!(
        "refusal_rate = {{ per_minute = 60, burst = 5 }}\n\n[[auth.api_keys]]\nprincipal = \"bot\"\nsha256 = \"{}\"",
        hex::encode(Sha256::digest(KEY.as_bytes()))
    ));
    let log = fixture.path("audit/warden.jsonl");
    let server = fixture.http_server(&[]).await;
    let http = reqwest::Client::new();
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" });
    let started = Instant::now();
    let flood = 100u64;
    for n in 0..flood {
        // A different wrong key each time: a new claimed principal (key fingerprint) each time.
        let response = http
            .post(&server.url)
            .bearer_auth(format!("wk_wrong_{n}"))
            .header("accept", "application/json, text/event-stream")
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401);
    }
    let elapsed = started.elapsed().as_secs();
    let denied = |all: &[Value]| all.iter().filter(|r| r["outcome"] == "denied").count() as u64;
    let kept = denied(&records(&log));
    assert!(
        kept >= 5 && kept <= 5 + elapsed + 1,
        "{kept} refusals recorded in {elapsed}s"
    );
    // The right key still works, and its call is recorded.
    let client = server
        .connect(
            server.client_config(Some(KEY)),
            ClientLifecycleMode::Initialize,
        )
        .await
        .expect("connect with the key");
    let result = client
        .call_tool(
            CallToolRequestParams::new("testbed__emit")
                .with_arguments(common::object(json!({ "text": "hi" }))),
        )
        .await
        .expect("call");
    ok_text(&result);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let response = http
        .post(&server.url)
        .bearer_auth("wk_wrong_last")
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    let all = records(&log);
    let summary = all
        .iter()
        .find(|r| r["outcome"] == "dropped")
        .expect("a summary of dropped refusals");
    let error = summary["error"].as_str().expect("error");
    assert!(error.contains("address 127.0.0.1"), "{error}");
    let dropped = summary["dropped"].as_u64().expect("count");
    assert_eq!(denied(&all) + dropped, flood + 1, "{all:#?}");
    assert!(
        all.iter()
            .any(|r| r["outcome"] == "ok" && r["principal"] == "bot")
    );
}

/// `calls` calls of `testbed__emit`, each checked.
async fn emit_many(client: &common::Client, who: &str, calls: usize) {
    for n in 0..calls {
        let result = client
            .service
            .call_tool(
                CallToolRequestParams::new("testbed__emit")
                    .with_arguments(common::object(json!({ "text": format!("{who} {n}") }))),
            )
            .await
            .expect("call");
        ok_text(&result);
    }
}

#[tokio::test]
async fn two_warden_processes_on_one_log_keep_one_valid_chain() {
    let fixture = audited("rotate = \"16KiB\"");
    let log = fixture.path("audit/warden.jsonl");
    let (a, b) = tokio::join!(fixture.client(), fixture.client());
    let calls = 40;
    tokio::join!(emit_many(&a, "a", calls), emit_many(&b, "b", calls));
    a.close().await;
    b.close().await;
    let mut files: Vec<String> = warden::audit::rotated_files(&log)
        .into_iter()
        .map(|(_, path)| path.display().to_string())
        .collect();
    assert!(!files.is_empty(), "the log rotated");
    files.push(log.display().to_string());
    let mut args = vec!["audit", "verify"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = common::warden(&args, fixture.dir.path());
    assert_eq!(code, 0, "{out}{err}");
    // Each process's start record, then the calls.
    assert!(
        out.contains(&format!(
            "ok: {} record(s) (seq 0..={})",
            2 * calls + 2,
            2 * calls + 1
        )),
        "{out}"
    );
}

#[tokio::test]
async fn a_write_that_fails_half_way_leaves_no_torn_line() {
    let fixture = audited("");
    let log = fixture.path("audit/warden.jsonl");
    // SIGXFSZ is ignored (a disposition survives exec), so writes past a file size limit
    // fail with EFBIG instead of killing warden.
    let mut command = tokio::process::Command::new("bash");
    command
        .arg("-c")
        .arg("trap '' XFSZ; exec \"$0\" serve --manifest \"$1\"")
        .arg(env!("CARGO_BIN_EXE_warden"))
        .arg(&fixture.manifest)
        .env("WARDEN_LOG", "warn");
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn warden");
    let pid = transport.id().expect("warden's pid");
    let client = common::Recorder::default()
        .serve_with_lifecycle(transport, ClientLifecycleMode::Initialize)
        .await
        .expect("handshake");
    // A first call with no limit: the log starts, and the plugin's memory image (a memfd,
    // which a file size limit also bounds) is made.
    let warm = client
        .call_tool(
            CallToolRequestParams::new("testbed__emit")
                .with_arguments(common::object(json!({ "text": "warm" }))),
        )
        .await
        .expect("a first call");
    ok_text(&warm);
    // Then a file size limit a little above the log: the next records cross it part-way.
    let size = std::fs::metadata(&log).expect("log").len();
    let blocks = size / 1024 + 2;
    let limited = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--fsize={}", blocks * 1024))
        .status()
        .expect("run prlimit");
    assert!(limited.success(), "prlimit failed");
    let big = "x".repeat(200);
    let mut failed = None;
    for n in 0..40 {
        let call = client
            .call_tool(
                CallToolRequestParams::new("testbed__emit")
                    .with_arguments(common::object(json!({ "text": format!("{n} {big}") }))),
            )
            .await;
        match call {
            Ok(result) => {
                ok_text(&result);
            }
            Err(error) => {
                failed = Some(error.to_string());
                break;
            }
        }
    }
    let failed = failed.expect("a call whose record could not be written");
    assert!(
        failed.contains("could not be recorded in the audit log"),
        "{failed}"
    );
    // The server keeps running and keeps failing closed.
    let again = client
        .call_tool(
            CallToolRequestParams::new("testbed__emit")
                .with_arguments(common::object(json!({ "text": "again" }))),
        )
        .await;
    assert!(again.is_err(), "{again:?}");
    client.list_all_tools().await.expect("still serving");
    let bytes = std::fs::read(&log).expect("log");
    assert!(bytes.len() as u64 <= blocks * 1024);
    assert_eq!(bytes.last(), Some(&b'\n'), "a torn last line");
    let _ = client.cancel().await;
    let (code, out, err) = verify(&fixture, &log);
    assert_eq!(code, 0, "{out}{err}");
    // Without the limit, the chain continues.
    let after = fixture.client().await;
    ok_text(
        &after
            .call("testbed__emit", json!({ "text": "after" }))
            .await,
    );
    after.close().await;
    let (code, out, err) = verify(&fixture, &log);
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test]
async fn a_deleted_live_log_is_started_again_and_continues_the_chain() {
    let fixture = audited("");
    let log = fixture.path("audit/warden.jsonl");
    let client = fixture.client().await;
    ok_text(&client.call("testbed__emit", json!({ "text": "one" })).await);
    let first = std::fs::read_to_string(&log).expect("log");
    // The start record (seq 0), then the call (seq 1).
    let last = first.lines().last().expect("a record");
    std::fs::remove_file(&log).expect("delete the live log");
    ok_text(&client.call("testbed__emit", json!({ "text": "two" })).await);
    let all = all_records(&log);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["seq"], 2);
    assert_eq!(all[0]["prev"], hex::encode(Sha256::digest(last.as_bytes())));
    assert!(
        client.stderr().contains("the live audit log was deleted"),
        "{}",
        client.stderr()
    );
    client.close().await;
    let (code, out, err) = verify(&fixture, &log);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("continues a chain"), "{out}");
}

#[tokio::test]
async fn audit_tail_escapes_control_characters_from_the_record() {
    let fixture = audited("");
    let log = fixture.path("audit/warden.jsonl");
    let client = fixture.client().await;
    let forged = "x\n2026-11-21T18:32:00.124Z ok            local/stdio forged\x1b]0;pwned\x07\x1b[2J\u{9b}31m";
    let refused = client
        .service
        .call_tool(CallToolRequestParams::new(forged.to_owned()))
        .await;
    assert!(refused.is_err(), "{refused:?}");
    ok_text(
        &client
            .call("testbed__emit", json!({ "text": "\u{1b}[31mred" }))
            .await,
    );
    client.close().await;
    let (code, out, err) = common::warden(
        &["audit", "tail", &log.display().to_string()],
        fixture.dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    // The start record, then the two calls.
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        out.lines().next().is_some_and(|l| l.contains(" start ")),
        "{out}"
    );
    assert!(
        !out.chars()
            .any(|c| c != '\n' && (c.is_control() || c == '\u{202e}')),
        "control characters reached the terminal: {out:?}"
    );
    assert!(
        out.contains(
            r"x\n2026-11-21T18:32:00.124Z ok            local/stdio forged\u{1b}]0;pwned\u{7}"
        ),
        "{out}"
    );
}

// Signed checkpoints.

/// An Ed25519 key pair made by openssl in the fixture's directory: `audit.key` (PKCS#8 v1, as
/// `openssl genpkey` writes it) and `audit.pub` (a PEM `PUBLIC KEY`).
fn openssl_key(dir: &Path, name: &str) {
    let key = dir.join(format!("{name}.key"));
    let made = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key)
        .status()
        .expect("run openssl");
    assert!(made.success(), "openssl genpkey");
    let public = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(dir.join(format!("{name}.pub")))
        .status()
        .expect("run openssl");
    assert!(public.success(), "openssl pkey -pubout");
}

/// A fixture whose log is signed with `audit.key` (made by openssl) under `extra`.
fn signed(extra: &str) -> Fixture {
    let fixture = audited(&format!("signing_key = \"audit.key\"\n{extra}"));
    openssl_key(fixture.dir.path(), "audit");
    fixture
}

fn verify_key(fixture: &Fixture, key: &str, target: &Path) -> (i32, String, String) {
    common::warden(
        &[
            "audit",
            "verify",
            "--key",
            key,
            &target.display().to_string(),
        ],
        fixture.dir.path(),
    )
}

fn kinds(path: &Path) -> Vec<String> {
    all_records(path)
        .iter()
        .map(|r| r["kind"].as_str().unwrap_or("call").to_owned())
        .collect()
}

#[test]
fn a_served_log_is_signed_and_cutting_it_at_a_checkpoint_is_detected() {
    let fixture = signed("checkpoint_every = 3\nreplica = \"pod-a\"");
    let log = fixture.path("audit/warden.jsonl");
    let mut raw = Raw::start(&fixture);
    for n in 0..7 {
        raw.call(json!(n), "testbed__emit");
    }
    let status = raw.finish();
    assert!(status.success(), "{status}");
    // A checkpoint after the start record, after every third call, and at the clean stop.
    assert_eq!(
        kinds(&log),
        [
            "start",
            "checkpoint",
            "call",
            "call",
            "call",
            "checkpoint",
            "call",
            "call",
            "call",
            "checkpoint",
            "call",
            "checkpoint"
        ]
    );
    let all = all_records(&log);
    assert_eq!(all[0]["replica"], "pod-a");
    assert_eq!(all[0]["checkpoint"]["every"], 3);
    assert_eq!(all[11]["replica"], "pod-a");

    let (code, out, err) = verify_key(&fixture, "audit.pub", &log);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("checkpoints: 4 (signatures checked); last signed at seq 11")
            && out.contains("by replica pod-a")
            && out.contains("0 record(s) after it unsigned"),
        "{out}"
    );

    // The last three records cut off (a checkpoint, a call, the last checkpoint): the three
    // calls the removed checkpoint signed are more than the policy leaves unsigned.
    let text = std::fs::read_to_string(&log).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&log, lines[..9].join("\n") + "\n").expect("cut");
    let (code, out, _) = verify(&fixture, &log);
    assert_eq!(code, 0, "the chain alone cannot see a cut tail: {out}");
    let (code, out, err) = verify_key(&fixture, "audit.pub", &log);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("warden.jsonl:9: 3 records follow the last checkpoint")
            && err.contains("removed"),
        "{err}"
    );
}

#[test]
fn a_signed_record_edited_or_a_checkpoint_forged_with_another_key_fails_verify() {
    let fixture = signed("checkpoint_every = 2");
    openssl_key(fixture.dir.path(), "other");
    let log = fixture.path("audit/warden.jsonl");
    let (code, _, err) = common::warden(
        &["call", "testbed__emit", r#"{"text":"one"}"#],
        fixture.dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    // start, checkpoint, call, checkpoint (the call's process stopped cleanly).
    assert_eq!(kinds(&log), ["start", "checkpoint", "call", "checkpoint"]);
    let genuine = std::fs::read_to_string(&log).expect("read");

    // The wrong key.
    let (code, _, err) = verify_key(&fixture, "other.pub", &log);
    assert_eq!(code, 1);
    assert!(
        err.contains("warden.jsonl:2: the checkpoint is signed by key"),
        "{err}"
    );
    assert!(err.contains("not by the key given"), "{err}");

    // A signed record edited.
    std::fs::write(&log, genuine.replace("\"one\"", "\"two\"")).expect("edit");
    let (code, _, err) = verify_key(&fixture, "audit.pub", &log);
    assert_eq!(code, 1);
    assert!(
        err.contains("warden.jsonl:3:") && err.contains("altered"),
        "{err}"
    );

    // A log written with another key, verified with ours: every checkpoint is forged.
    std::fs::remove_file(&log).expect("remove");
    let manifest = std::fs::read_to_string(&fixture.manifest).expect("manifest");
    std::fs::write(
        &fixture.manifest,
        manifest.replace("signing_key = \"audit.key\"", "signing_key = \"other.key\""),
    )
    .expect("manifest");
    let (code, _, err) = common::warden(
        &["call", "testbed__emit", r#"{"text":"one"}"#],
        fixture.dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = verify_key(&fixture, "audit.pub", &log);
    assert_eq!(code, 1);
    assert!(err.contains("not by the key given"), "{err}");
    let (code, out, err) = verify_key(&fixture, "other.pub", &log);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_log_without_checkpoints_fails_verify_with_a_key() {
    let fixture = audited("");
    openssl_key(fixture.dir.path(), "audit");
    let log = fixture.path("audit/warden.jsonl");
    let (code, _, err) = common::warden(
        &["call", "testbed__emit", r#"{"text":"one"}"#],
        fixture.dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = verify(&fixture, &log);
    assert_eq!(code, 0);
    assert!(out.contains("checkpoints: none"), "{out}");
    let (code, _, err) = verify_key(&fixture, "audit.pub", &log);
    assert_eq!(code, 1);
    assert!(err.contains("no signed checkpoint in the log"), "{err}");
}

#[test]
fn a_malformed_signature_is_reported_not_a_crash() {
    let fixture = signed("");
    let log = fixture.path("audit/warden.jsonl");
    let (code, _, err) = common::warden(
        &["call", "testbed__emit", r#"{"text":"one"}"#],
        fixture.dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    // The checkpoint's signature replaced in place (its line only: the chain before holds).
    let text = std::fs::read_to_string(&log).expect("read");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let checkpoint: Value = serde_json::from_str(&lines[1]).expect("json");
    let sig = checkpoint["sig"].as_str().expect("sig");
    lines[1] = lines[1].replace(&format!("\"sig\":\"{sig}\""), "\"sig\":\"%%%\"");
    std::fs::write(&log, lines.join("\n") + "\n").expect("write");
    let (code, _, err) = verify_key(&fixture, "audit.pub", &log);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("warden.jsonl:2: the checkpoint's `sig` is malformed"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_directory_of_replicas_logs_is_verified_per_replica_and_swapped_files_are_named() {
    let fixture = Fixture::new(
        r#"
[audit]
path = "{dir}/logs/a.jsonl"
replica = "replica-a"
signing_key = "audit.key"
rotate = "4KiB"

[plugins.testbed]
component = "{testbed}"
"#,
    );
    openssl_key(fixture.dir.path(), "audit");
    let manifest_a = std::fs::read_to_string(&fixture.manifest).expect("manifest");
    let manifest_b = manifest_a
        .replace("logs/a.jsonl", "logs/b.jsonl")
        .replace("replica-a", "replica-b");
    let b = fixture.path("b.toml");
    std::fs::write(&b, manifest_b).expect("manifest b");
    for _ in 0..4 {
        for manifest in [&fixture.manifest, &b] {
            let (code, _, err) = common::warden(
                &[
                    "call",
                    "--manifest",
                    &manifest.display().to_string(),
                    "testbed__emit",
                    r#"{"text":"one"}"#,
                ],
                fixture.dir.path(),
            );
            assert_eq!(code, 0, "{err}");
        }
    }
    let logs = fixture.path("logs");
    assert!(fixture.path("logs/a.jsonl.000001").exists(), "rotated");
    assert!(fixture.path("logs/b.jsonl.000001").exists(), "rotated");
    let (code, out, err) = verify_key(&fixture, "audit.pub", &logs);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("a.jsonl (replica replica-a): ok")
            && out.contains("b.jsonl (replica replica-b): ok"),
        "{out}"
    );

    // The two replicas' first rotated files swapped: each log breaks, each is reported.
    let (a1, b1) = (
        fixture.path("logs/a.jsonl.000001"),
        fixture.path("logs/b.jsonl.000001"),
    );
    let tmp = fixture.path("swap");
    std::fs::rename(&a1, &tmp).expect("swap");
    std::fs::rename(&b1, &a1).expect("swap");
    std::fs::rename(&tmp, &b1).expect("swap");
    let (code, out, err) = verify_key(&fixture, "audit.pub", &logs);
    assert_eq!(code, 1, "{out}");
    let line_of = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}: {out}"))
            .to_owned()
    };
    assert!(line_of("a.jsonl").contains("broken:"), "{out}");
    assert!(line_of("b.jsonl").contains("broken:"), "{out}");
    assert!(err.contains("broken: 2 of 2 log(s)"), "{err}");
}

#[tokio::test]
async fn the_key_is_published_over_http_and_the_timer_signs_an_idle_tail() {
    let fixture = signed("checkpoint_interval = \"1s\"\nreplica = \"web-1\"");
    let log = fixture.path("audit/warden.jsonl");
    let (code, out, err) = common::warden(&["check"], fixture.dir.path());
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("audit checkpoints: signed by key"))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    assert!(
        line.contains("every 1000 records or 1s, replica web-1"),
        "{line}"
    );

    let mut server = fixture.http_server(&[]).await;
    let response = reqwest::get(format!("{}/audit/key", server.base))
        .await
        .expect("GET /audit/key");
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-warden-key-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(line.contains(&format!("key {id} ")), "{line} vs {id}");
    let pem = response.text().await.expect("body");
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    // The same key as openssl's.
    let openssl_pub = std::fs::read_to_string(fixture.path("audit.pub")).expect("pub");
    assert_eq!(pem.trim(), openssl_pub.trim());
    std::fs::write(fixture.path("served.pub"), &pem).expect("write");
    assert_eq!(server.status()["audit_key"], json!(id));

    let client = server
        .connect(server.client_config(None), ClientLifecycleMode::Initialize)
        .await
        .expect("connect");
    let result = client
        .call_tool(
            CallToolRequestParams::new("testbed__emit")
                .with_arguments(common::object(json!({ "text": "hi" }))),
        )
        .await
        .expect("call");
    ok_text(&result);
    // No more calls: the timer signs the call within a second or so.
    let started = Instant::now();
    while kinds(&log).last().map(String::as_str) != Some("checkpoint") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no checkpoint after the call: {:?}",
            kinds(&log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, out, err) = verify_key(&fixture, "served.pub", &log);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("by replica web-1"), "{out}");
    // A witness keeps the last checkpoint as it is written.
    let response = reqwest::get(format!("{}/audit/checkpoint", server.base))
        .await
        .expect("GET /audit/checkpoint");
    assert_eq!(response.status(), 200);
    let witnessed: Value =
        serde_json::from_str(&response.text().await.expect("body")).expect("a JSON checkpoint");
    assert_eq!(witnessed["kind"], "checkpoint");
    assert_eq!(
        Some(&witnessed),
        all_records(&log).last(),
        "the last line of the log"
    );
    std::fs::write(fixture.path("witness.jsonl"), format!("{witnessed}\n")).expect("write");
    let _ = client.cancel().await;
    let status = server.terminate().await;
    assert!(status.success(), "{status}");

    let with_witness = |fixture: &Fixture| {
        common::warden(
            &[
                "audit",
                "verify",
                "--key",
                "served.pub",
                "--witness",
                "witness.jsonl",
                &log.display().to_string(),
            ],
            fixture.dir.path(),
        )
    };
    let (code, out, err) = with_witness(&fixture);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("witnesses: 1 checkpoint(s)"), "{out}");
    // Cut right after the call (the timer's checkpoint and all after it gone): the policy
    // cannot see it, the witness does.
    let text = std::fs::read_to_string(&log).expect("read");
    let seq = witnessed["seq"].as_u64().expect("seq") as usize;
    let kept: Vec<&str> = text.lines().take(seq).collect();
    std::fs::write(&log, kept.join("\n") + "\n").expect("cut");
    let (code, out, err) = verify_key(&fixture, "served.pub", &log);
    assert_eq!(
        code, 0,
        "a cut after a checkpoint within the policy: {out}{err}"
    );
    let (code, _, err) = with_witness(&fixture);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "before the checkpoint witnessed at seq {seq} (replica web-1"
        )) && err.contains("records were removed from its end"),
        "{err}"
    );

    // Without a signing key there is nothing to publish.
    let unsigned = audited("");
    let server = unsigned.http_server(&[]).await;
    let response = reqwest::get(format!("{}/audit/key", server.base))
        .await
        .expect("GET /audit/key");
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_reload_signs_its_start_record_and_a_clean_stop_signs_the_rest() {
    let fixture = signed("checkpoint_every = 100\nreplica = \"pod-r\"");
    let log = fixture.path("audit/warden.jsonl");
    let client = fixture.client().await;
    ok_text(
        &client
            .call("testbed__emit", json!({ "text": "before" }))
            .await,
    );
    // Reload with the same [audit]: the same sink; its start record is signed at once.
    client.signal("HUP");
    let waited = Instant::now();
    let starts = |n: usize| kinds(&log).iter().filter(|k| *k == "start").count() >= n;
    while !starts(2) {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "{}",
            client.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ok_text(
        &client
            .call("testbed__emit", json!({ "text": "after" }))
            .await,
    );
    client.close().await;
    assert_eq!(
        kinds(&log),
        [
            "start",
            "checkpoint",
            "call",
            "start",
            "checkpoint",
            "call",
            "checkpoint"
        ]
    );
    let (code, out, err) = verify_key(&fixture, "audit.pub", &log);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("checkpoints: 3 (signatures checked)"), "{out}");
}

#[test]
fn a_signing_key_that_is_not_ed25519_is_refused_at_start() {
    let fixture = audited("signing_key = \"ec.key\"");
    let made = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(fixture.path("ec.key"))
        .status()
        .expect("run openssl");
    assert!(made.success());
    for args in [
        &["check"][..],
        &["call", "testbed__emit", r#"{"text":"x"}"#],
    ] {
        let (code, out, err) = common::warden(args, fixture.dir.path());
        assert_ne!(code, 0, "{out}");
        assert!(
            err.contains("[audit] signing_key: not an unencrypted PKCS#8 Ed25519 private key"),
            "{err}"
        );
        assert!(!err.contains("BEGIN"), "the key is not echoed: {err}");
    }
    assert!(
        !fixture.path("audit/warden.jsonl").exists()
            || kinds(&fixture.path("audit/warden.jsonl")).is_empty()
    );
}

#[test]
fn keygen_audit_makes_a_key_that_signs_and_openssl_reads() {
    let fixture = audited("signing_key = \"made.key\"");
    let (code, out, err) = common::warden(&["keygen", "--audit", "made.key"], fixture.dir.path());
    assert_eq!(code, 0, "{err}");
    let public = out
        .split_inclusive('\n')
        .take_while(|line| !line.trim().is_empty())
        .collect::<String>();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{out}");
    assert!(out.contains("signing_key = \"made.key\""), "{out}");
    let mode = std::fs::metadata(fixture.path("made.key"))
        .expect("key file")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    // openssl derives the same public key.
    let derived = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(fixture.path("made.key"))
        .output()
        .expect("openssl");
    assert_eq!(
        String::from_utf8_lossy(&derived.stdout).trim(),
        public.trim()
    );
    std::fs::write(fixture.path("made.pub"), &public).expect("write");
    // Never over an existing key.
    let (code, _, err) = common::warden(&["keygen", "--audit", "made.key"], fixture.dir.path());
    assert_ne!(code, 0);
    assert!(err.contains("File exists"), "{err}");

    let (code, _, err) = common::warden(
        &["call", "testbed__emit", r#"{"text":"one"}"#],
        fixture.dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let log = fixture.path("audit/warden.jsonl");
    let (code, out, err) = verify_key(&fixture, "made.pub", &log);
    assert_eq!(code, 0, "{out}{err}");
}
