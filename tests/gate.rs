//! The gate, end to end: authorization, rate limits, concurrency, input caps, output
//! filtering and the audit log, through the real binary, rmcp's client and real components
//! (and, where one process cannot show it, through the library's `Gate` directly).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{Fixture, err_text, ok_text, text};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

use warden::audit::rotated_files;
use warden::gate::{Asking, CallRequest, Principal, Transport};
use warden::host::Host;
use warden::manifest::Manifest;
use warden::runtime::NoEvents;

/// The live audit log of a fixture whose manifest has `[audit] path = "{dir}/audit/log.jsonl"`.
fn audit_path(fixture: &Fixture) -> PathBuf {
    fixture.path("audit/log.jsonl")
}

/// The log's files, oldest first: rotated ones, then the live one.
fn audit_files(fixture: &Fixture) -> Vec<PathBuf> {
    let live = audit_path(fixture);
    let mut files: Vec<PathBuf> = rotated_files(&live).into_iter().map(|(_, p)| p).collect();
    files.push(live);
    files
}

/// The call records of the log, in order: the start record of each start and reload left
/// out. A last line cut short is skipped.
fn audit_records(fixture: &Fixture) -> Vec<Value> {
    common::calls(all_records(fixture))
}

/// Every record of the log, start records too, in order. A last line cut short is skipped.
fn all_records(fixture: &Fixture) -> Vec<Value> {
    audit_files(fixture)
        .iter()
        .filter(|file| file.exists())
        .flat_map(|file| {
            std::fs::read_to_string(file)
                .expect("read audit log")
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The records of calls of `tool`.
fn records_of(fixture: &Fixture, tool: &str) -> Vec<Value> {
    audit_records(fixture)
        .into_iter()
        .filter(|r| r["tool"] == tool)
        .collect()
}

/// `warden audit verify` over the fixture's log files: (exit code, stdout, stderr).
fn verify(fixture: &Fixture) -> (i32, String, String) {
    let files: Vec<String> = audit_files(fixture)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut args = vec!["audit", "verify"];
    args.extend(files.iter().map(String::as_str));
    common::warden(&args, fixture.dir.path())
}

/// The request id at the end of a gate-written error: `... (request 0123abcd...)`.
#[track_caller]
fn request_id(message: &str) -> String {
    let id = message
        .strip_suffix(')')
        .and_then(|m| m.rsplit_once("(request "))
        .map(|(_, id)| id.to_owned())
        .unwrap_or_else(|| panic!("no request id in {message:?}"));
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    id
}

// --- Authorization --------------------------------------------------------------------------

#[tokio::test]
async fn a_principal_without_the_role_neither_sees_nor_calls_the_tool_and_is_audited() {
    let fixture = Fixture::new(
        r#"
[server]
principal = "ann"
roles = ["reader"]

[audit]
path = "{dir}/audit/log.jsonl"

[plugins.testbed]
component = "{testbed}"
roles = ["reader"]

[plugins.testbed.tools.emit]
roles = ["admin"]

[plugins.testbed.tools."echo-*"]
roles = ["admin", "auditor"]
"#,
    );
    let client = fixture.client().await;
    let tools = client.service.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(names.contains(&"testbed__fail"), "{names:?}");
    assert!(names.contains(&"testbed__leak"), "{names:?}");
    assert!(!names.contains(&"testbed__emit"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("testbed__echo_")),
        "{names:?}"
    );

    // Calling it anyway looks exactly like calling a tool that does not exist.
    let denied = client
        .service
        .call_tool(
            CallToolRequestParams::new("testbed__emit")
                .with_arguments(common::object(json!({"text": "let me in"}))),
        )
        .await
        .expect_err("denied");
    let unknown = client
        .service
        .call_tool(CallToolRequestParams::new("testbed__nothing"))
        .await
        .expect_err("unknown");
    let (denied, unknown) = (denied.to_string(), unknown.to_string());
    assert!(
        denied.contains("unknown tool: testbed__emit (request "),
        "{denied}"
    );
    assert!(
        unknown.contains("unknown tool: testbed__nothing (request "),
        "{unknown}"
    );
    let denied_echo = client
        .service
        .call_tool(
            CallToolRequestParams::new("testbed__echo_char")
                .with_arguments(common::object(json!({"value": "x"}))),
        )
        .await;
    assert!(denied_echo.is_err(), "a glob denies too");

    // An allowed tool works.
    let failed = client.call("testbed__fail", json!({"message": "no"})).await;
    assert_eq!(err_text(&failed), "no");
    client.close().await;

    let record = &records_of(&fixture, "testbed__emit")[0];
    assert_eq!(record["outcome"], "denied");
    assert_eq!(record["principal"], "ann");
    assert_eq!(record["roles"], json!(["reader"]));
    assert_eq!(record["transport"], "stdio");
    assert_eq!(record["plugin"], "testbed");
    assert_eq!(record["args"], json!({"text": "let me in"}));
    assert!(record.get("fuel").is_none(), "the plugin did not run");
    let detail = record["error"].as_str().expect("detail for the operator");
    assert!(detail.contains("admin"), "{detail}");
    assert!(denied.contains(record["id"].as_str().expect("id")));
    assert!(record["mcp_id"].is_number(), "{record}");
    assert_eq!(
        records_of(&fixture, "testbed__nothing")[0]["outcome"],
        "invalid"
    );
    assert_eq!(
        records_of(&fixture, "testbed__echo_char")[0]["outcome"],
        "denied"
    );
    assert_eq!(
        records_of(&fixture, "testbed__fail")[0]["outcome"],
        "tool-error"
    );
}

// --- Rate limits and concurrency ------------------------------------------------------------

#[tokio::test]
async fn burst_plus_one_calls_are_refused_with_retry_advice() {
    let fixture = Fixture::new(
        r#"
[audit]
path = "{dir}/audit/log.jsonl"

[plugins.testbed]
component = "{testbed}"
rate = { per_minute = 2, burst = 3 }
"#,
    );
    let client = fixture.client().await;
    for i in 0..3 {
        let result = client
            .call("testbed__emit", json!({"text": format!("call {i}")}))
            .await;
        assert_eq!(ok_text(&result), format!("call {i}"));
    }
    let refused = client
        .call("testbed__emit", json!({"text": "one too many"}))
        .await;
    let message = err_text(&refused);
    assert!(
        message.starts_with("rate limit reached for this tool; retry in "),
        "{message}"
    );
    let seconds: u64 = message
        .split("retry in ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retry advice in {message}"));
    assert!((1..=30).contains(&seconds), "{message}");
    request_id(&message);

    // The limit is per tool: another tool of the same plugin still has its own burst.
    let other = client.call("testbed__fail", json!({"message": "x"})).await;
    assert_eq!(err_text(&other), "x");
    client.close().await;

    let outcomes: Vec<Value> = records_of(&fixture, "testbed__emit")
        .iter()
        .map(|r| r["outcome"].clone())
        .collect();
    assert_eq!(
        outcomes,
        [json!("ok"), json!("ok"), json!("ok"), json!("rate-limited")]
    );
}

/// A host loaded in this process from `fixture`'s manifest.
fn host(fixture: &Fixture) -> Host {
    let manifest = Manifest::load(&fixture.manifest).unwrap_or_else(|e| panic!("{e}"));
    Host::load(&manifest).unwrap_or_else(|errors| panic!("{}", errors[0]))
}

async fn call_as(host: &Host, principal: &Principal, tool: &str, args: Value) -> (bool, String) {
    let args = common::object(args);
    let result = host
        .gate
        .call(CallRequest {
            principal,
            mcp_id: None,
            tool,
            arguments: Some(&args),
            events: Arc::new(NoEvents),
            asking: Asking::Unable,
        })
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
        .done()
        .expect("a result");
    (result.is_error != Some(true), text(&result))
}

#[tokio::test]
async fn rate_limits_are_kept_per_principal_under_a_shared_ceiling() {
    let fixture = Fixture::new(
        r#"
[limits]
tool_rate = { per_minute = 1, burst = 5 }

[plugins.testbed]
component = "{testbed}"
rate = { per_minute = 1, burst = 3 }
"#,
    );
    let host = host(&fixture);
    let ann = Principal::new("ann", Vec::new(), Transport::Http);
    let bob = Principal::new("bob", Vec::new(), Transport::Http);
    let emit = |n: u32| json!({"text": format!("{n}")});
    for n in 0..3 {
        assert!(call_as(&host, &ann, "testbed__emit", emit(n)).await.0);
    }
    let (ok, message) = call_as(&host, &ann, "testbed__emit", emit(3)).await;
    assert!(!ok && message.contains("rate limit reached"), "{message}");

    // Bob is not affected by Ann's bucket...
    for n in 0..2 {
        let (ok, message) = call_as(&host, &bob, "testbed__emit", emit(n)).await;
        assert!(ok, "{message}");
    }
    // ...but the tool's ceiling (5 calls for everyone) is now used up.
    let (ok, message) = call_as(&host, &bob, "testbed__emit", emit(2)).await;
    assert!(!ok && message.contains("rate limit reached"), "{message}");
}

#[tokio::test]
async fn a_busy_plugin_refuses_calls_beyond_its_queue() {
    let fixture = Fixture::new(
        r#"
[plugins.testbed]
component = "{testbed}"
concurrency = 1
queue = 0
timeout = "3s"
fuel = 100_000_000_000
"#,
    );
    let host = Arc::new(host(&fixture));
    let ann = Principal::new("ann", Vec::new(), Transport::Stdio);
    let spinning = {
        let (host, ann) = (host.clone(), ann.clone());
        tokio::spawn(async move { call_as(&host, &ann, "testbed__spin", json!({})).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ok, message) = call_as(&host, &ann, "testbed__emit", json!({"text": "x"})).await;
    assert!(!ok, "{message}");
    assert!(message.starts_with("the tool is busy"), "{message}");
    let (ok, message) = spinning.await.expect("join");
    assert!(!ok && message.contains("time limit"), "{message}");
    // The slot is free again.
    let (ok, message) = call_as(&host, &ann, "testbed__emit", json!({"text": "x"})).await;
    assert!(ok, "{message}");
}

// --- Output filtering -----------------------------------------------------------------------

#[tokio::test]
async fn every_kind_of_secret_is_redacted_and_a_non_luhn_number_is_left_alone() {
    let fixture = Fixture::new(
        r#"
[audit]
path = "{dir}/audit/log.jsonl"

[plugins.testbed]
component = "{testbed}"
env = { API_TOKEN = "tok-7f3a9c2e51b8" }
secrets = { SERVICE_KEY = { env = "WARDEN_TEST_SERVICE_KEY" } }
"#,
    );
    let client = fixture
        .client_env(&[("WARDEN_TEST_SERVICE_KEY", "svc-0c4d8e1f2a3b")])
        .await;
    for (variable, secret) in [
        ("API_TOKEN", "tok-7f3a9c2e51b8"),
        ("SERVICE_KEY", "svc-0c4d8e1f2a3b"),
    ] {
        let result = client
            .call("testbed__leak", json!({"variable": variable}))
            .await;
        let text = ok_text(&result);
        let everything = serde_json::to_string(&result).expect("serialize");
        for leaked in [
            "jane.doe@example.com",
            "4111 1111 1111 1111",
            "AKIAIOSFODNN7EXAMPLE",
            "BEGIN PRIVATE KEY",
            "MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
            secret,
        ] {
            assert!(
                !everything.contains(leaked),
                "{leaked} leaked: {everything}"
            );
        }
        for marker in [
            "email [REDACTED:email]",
            "card [REDACTED:credit-card]",
            "aws [REDACTED:aws-key]",
            "[REDACTED:private-key]",
            "jwt [REDACTED:jwt]",
            "secret [REDACTED:secrets]",
            "not a card 4111111111111112",
        ] {
            assert!(text.contains(marker), "{marker} missing from {text}");
        }
        let structured = result.structured_content.as_ref().expect("structured");
        assert_eq!(structured["contact"]["email"], "[REDACTED:email]");
        assert_eq!(
            structured["cards"],
            json!(["[REDACTED:credit-card]", "4111111111111112"])
        );
        assert_eq!(structured["keys"]["pem"], "[REDACTED:private-key]");
        assert_eq!(structured["secret"], "[REDACTED:secrets]");
    }
    client.close().await;

    let record = &records_of(&fixture, "testbed__leak")[0];
    assert_eq!(
        record["redactions"],
        json!({"aws-key": 1, "credit-card": 1, "email": 1, "jwt": 1, "private-key": 1, "secrets": 1})
    );
    let log = std::fs::read_to_string(audit_path(&fixture)).expect("log");
    assert!(!log.contains("tok-7f3a9c2e51b8") && !log.contains("svc-0c4d8e1f2a3b"));
}

#[tokio::test]
async fn large_output_is_truncated_or_refused_per_manifest() {
    let fixture = Fixture::new(
        r#"
[plugins.cut]
component = "{testbed}"
max_output = "1KiB"
max_output_mode = "truncate"

[plugins.whole]
component = "{testbed}"
max_output = "1KiB"
"#,
    );
    let client = fixture.client().await;
    let long = "word ".repeat(1000);
    let cut = client.call("cut__emit", json!({"text": long})).await;
    let size = serde_json::to_vec(&cut).expect("serialize").len();
    assert!(size <= 1024, "{size}");
    let texts: Vec<String> = cut
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    assert!(texts[0].starts_with("word word"), "{texts:?}");
    assert!(texts[1].contains("output truncated"), "{texts:?}");
    assert_ne!(cut.is_error, Some(true));

    let refused = client.call("whole__emit", json!({"text": long})).await;
    let message = err_text(&refused);
    assert!(
        message.contains("exceeds its limit of 1024 bytes"),
        "{message}"
    );
    request_id(&message);
    client.close().await;
}

// --- Input caps -----------------------------------------------------------------------------

#[tokio::test]
async fn oversized_deep_and_long_arguments_are_refused_before_the_plugin_runs() {
    let fixture = Fixture::new(
        r#"
[limits]
max_argument_bytes = "4KiB"
max_depth = 4
max_string = 1000
max_array = 10

[audit]
path = "{dir}/audit/log.jsonl"

[plugins.testbed]
component = "{testbed}"
dirs = [{ host = "{dir}/scratch", guest = "/scratch", mode = "rw" }]
"#,
    );
    std::fs::create_dir_all(fixture.path("scratch")).expect("mkdir");
    let client = fixture.client().await;

    let too_long = client
        .call(
            "testbed__write_file",
            json!({"path": "/scratch/long.txt", "content": "x".repeat(1001)}),
        )
        .await;
    let message = err_text(&too_long);
    assert!(
        message.starts_with(
            "invalid arguments: content: a string of 1001 bytes exceeds the limit of 1000 bytes"
        ),
        "{message}"
    );
    assert!(!fixture.path("scratch/long.txt").exists(), "the plugin ran");

    let tags: Vec<String> = (0..10).map(|i| format!("{i}{}", "t".repeat(900))).collect();
    let too_big = client
        .call(
            "testbed__echo_nested",
            json!({"value": {"id": 1, "points": [], "tags": tags}}),
        )
        .await;
    let message = err_text(&too_big);
    assert!(
        message.starts_with(
            "invalid arguments: the arguments are larger than the limit of 4096 bytes"
        ),
        "{message}"
    );

    let too_deep = client
        .call("testbed__echo_list", json!({"value": [[[["x"]]]]}))
        .await;
    let message = err_text(&too_deep);
    assert!(
        message.starts_with(
            "invalid arguments: the arguments are nested deeper than the limit of 4 levels"
        ),
        "{message}"
    );

    let too_many = client
        .call(
            "testbed__echo_list",
            json!({"value": (0..11).map(|i| i.to_string()).collect::<Vec<_>>()}),
        )
        .await;
    let message = err_text(&too_many);
    assert!(
        message.starts_with(
            "invalid arguments: value: an array of 11 items exceeds the limit of 10 items"
        ),
        "{message}"
    );

    // Within the caps, the same tools run.
    let fine = client
        .call(
            "testbed__write_file",
            json!({"path": "/scratch/ok.txt", "content": "x".repeat(1000)}),
        )
        .await;
    ok_text(&fine);
    assert!(fixture.path("scratch/ok.txt").exists());
    client.close().await;

    let records = audit_records(&fixture);
    let outcomes: Vec<(&str, &str, bool)> = records
        .iter()
        .map(|r| {
            (
                r["tool"].as_str().unwrap_or_default(),
                r["outcome"].as_str().unwrap_or_default(),
                r.get("fuel").is_some(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("testbed__write_file", "invalid", false),
            ("testbed__echo_nested", "invalid", false),
            ("testbed__echo_list", "invalid", false),
            ("testbed__echo_list", "invalid", false),
            ("testbed__write_file", "ok", true),
        ],
        "refused calls burn no fuel: the plugin never ran"
    );
    assert_eq!(
        records[1]["args"],
        Value::Null,
        "oversized arguments are not kept"
    );
    let kept = records[0]["args"]["content"].as_str().expect("content");
    assert!(
        kept.len() < 300 && kept.ends_with("…(cut from 1001 bytes)"),
        "long values are cut: {kept}"
    );
}

// --- Errors ---------------------------------------------------------------------------------

#[tokio::test]
async fn errors_name_a_request_id_and_no_host_internals() {
    let fixture = Fixture::new(
        r#"
[audit]
path = "{dir}/audit/log.jsonl"

[plugins.testbed]
component = "{testbed}"
fuel = 10_000_000
"#,
    );
    let client = fixture.client().await;
    let crashed = client
        .call("testbed__panic", json!({"message": "boom"}))
        .await;
    let spun = client.call("testbed__spin", json!({})).await;
    let invalid = client
        .call("testbed__echo_char", json!({"value": "xy"}))
        .await;
    client.close().await;
    let root = fixture.dir.path().display().to_string();
    for (result, outcome) in [
        (crashed, "trap"),
        (spun, "out-of-fuel"),
        (invalid, "invalid"),
    ] {
        let message = err_text(&result);
        assert!(!message.contains(&root), "{message}");
        assert!(
            !message.contains("wasm backtrace") && !message.contains(".rs:"),
            "{message}"
        );
        let id = request_id(&message);
        let record = audit_records(&fixture)
            .into_iter()
            .find(|r| r["id"] == id.as_str())
            .unwrap_or_else(|| panic!("no record with id {id}"));
        assert_eq!(record["outcome"], outcome, "{message}");
        assert!(record["error"].is_string(), "the detail is in the record");
    }
}

// --- The audit log --------------------------------------------------------------------------

#[tokio::test]
async fn every_call_of_a_mixed_run_is_audited_once_and_the_chain_verifies() {
    let fixture = Fixture::new(
        r#"
[audit]
path = "{dir}/audit/log.jsonl"
rotate = "64KiB"
# Every one of the run's 140 refusals is recorded (the default limit would drop some).
refusal_rate = { per_minute = 100000, burst = 1000 }

[plugins.testbed]
component = "{testbed}"

[plugins.testbed.tools.panic]
roles = ["admin"]

[plugins.limited]
component = "{testbed}"
rate = { per_minute = 1, burst = 10 }
"#,
    );
    let client = fixture.client().await;
    const CALLS: usize = 300;
    for i in 0..CALLS {
        let marker = format!("m-{i}");
        match i % 6 {
            0 | 1 => {
                let r = client.call("testbed__emit", json!({"text": marker})).await;
                assert_eq!(ok_text(&r), marker);
            }
            2 => {
                let r = client
                    .call("testbed__fail", json!({"message": marker}))
                    .await;
                assert_eq!(err_text(&r), marker);
            }
            3 => {
                let r = client
                    .service
                    .call_tool(
                        CallToolRequestParams::new("testbed__panic")
                            .with_arguments(common::object(json!({"message": marker}))),
                    )
                    .await;
                assert!(r.is_err(), "denied");
            }
            4 => {
                let r = client.call("limited__emit", json!({"text": marker})).await;
                assert_eq!(r.is_error == Some(true), i >= 60, "{}", text(&r));
            }
            _ => {
                let r = client
                    .call("testbed__emit", json!({"text": 5, "marker": marker}))
                    .await;
                err_text(&r);
            }
        }
    }
    client.close().await;

    let records = audit_records(&fixture);
    assert_eq!(records.len(), CALLS);
    for i in 0..CALLS {
        let marker = format!("m-{i}");
        let found = records
            .iter()
            .filter(|r| {
                r["args"]
                    .as_object()
                    .is_some_and(|args| args.values().any(|v| *v == marker.as_str()))
            })
            .count();
        assert_eq!(found, 1, "{marker}");
    }
    let outcome_count = |outcome: &str| records.iter().filter(|r| r["outcome"] == outcome).count();
    assert_eq!(outcome_count("ok"), 100 + 10);
    assert_eq!(outcome_count("tool-error"), 50);
    assert_eq!(outcome_count("denied"), 50);
    assert_eq!(outcome_count("rate-limited"), 40);
    assert_eq!(outcome_count("invalid"), 50);
    // One chain: the server's start record, then every call.
    let all = all_records(&fixture);
    assert!(common::is_start(&all[0]), "{}", all[0]);
    assert_eq!(all.iter().filter(|r| common::is_start(r)).count(), 1);
    for (seq, record) in all.iter().enumerate() {
        assert_eq!(record["seq"], seq as u64);
    }

    let files = audit_files(&fixture);
    assert!(files.len() >= 2, "the run rotated the log: {files:?}");
    let (code, stdout, stderr) = verify(&fixture);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("ok: {} record(s) (seq 0..={CALLS})", CALLS + 1)),
        "{stdout}"
    );

    let live = audit_path(&fixture);
    let (code, tail, _) = common::warden(
        &["audit", "tail", &live.display().to_string(), "-n", "3"],
        fixture.dir.path(),
    );
    assert_eq!(code, 0);
    assert_eq!(tail.lines().count(), 3, "{tail}");
    assert!(
        tail.contains("testbed__") || tail.contains("limited__"),
        "{tail}"
    );

    // Edit one record in the middle of the first file: verification fails at that line.
    let first = &files[0];
    let mut lines: Vec<String> = std::fs::read_to_string(first)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect();
    let middle = lines.len() / 2;
    assert!(lines[middle].contains("\"outcome\""));
    lines[middle] = lines[middle].replacen("\"duration_us\":", "\"duration_us\":1", 1);
    std::fs::write(first, lines.join("\n") + "\n").expect("write");
    let (code, stdout, stderr) = verify(&fixture);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let expected = format!("{}:{}: ", first.display(), middle + 1);
    assert!(
        stderr.contains(&expected),
        "expected {expected} in {stderr}"
    );
}

#[tokio::test]
async fn sigkill_during_a_load_loses_no_record_of_an_answered_call() {
    let fixture = Fixture::new(
        r#"
[audit]
path = "{dir}/audit/log.jsonl"

[plugins.testbed]
component = "{testbed}"
"#,
    );
    let client = Arc::new(fixture.client().await);
    let pid = client.pid.expect("server pid");
    let answered = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (client, answered) = (client.clone(), answered.clone());
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let marker = format!("w{worker}-{i}");
                let params = CallToolRequestParams::new("testbed__emit")
                    .with_arguments(common::object(json!({"text": marker})));
                match client.service.call_tool(params).await {
                    Ok(result) if text(&result) == marker => {
                        answered.lock().expect("lock").push(marker);
                    }
                    _ => break,
                }
            }
        }));
    }
    // Let the load run, then kill the server with calls in flight.
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if answered.lock().expect("lock").len() >= 200 {
            break;
        }
    }
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    for worker in workers {
        let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
    }

    let answered = answered.lock().expect("lock").clone();
    let recorded: std::collections::HashSet<String> = audit_records(&fixture)
        .iter()
        .filter_map(|r| r["args"]["text"].as_str().map(str::to_owned))
        .collect();
    let lost: Vec<&String> = answered.iter().filter(|m| !recorded.contains(*m)).collect();
    assert!(
        lost.is_empty(),
        "{} answered calls have no record: {lost:?}",
        lost.len()
    );
    assert!(answered.len() >= 200);
    let (code, stdout, stderr) = verify(&fixture);
    assert_eq!(code, 0, "the chain survives a kill: {stdout}{stderr}");
}

#[test]
fn audit_verify_reports_unreadable_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing: &Path = &dir.path().join("nope.jsonl");
    let (code, _, stderr) = common::warden(
        &["audit", "verify", &missing.display().to_string()],
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("nope.jsonl:0: cannot read"), "{stderr}");
}

/// An audit sink that keeps records in memory, or fails every write.
struct MemorySink {
    records: std::sync::Mutex<Vec<Value>>,
    fail: bool,
}

impl warden::audit::AuditSink for MemorySink {
    fn record(&self, record: &warden::audit::Record<'_>) -> Result<(), warden::audit::AuditError> {
        if self.fail {
            return Err(warden::audit::AuditError::Io {
                message: "disk full".into(),
            });
        }
        let record = serde_json::to_value(record).expect("serializable");
        self.records.lock().expect("lock").push(record);
        Ok(())
    }
}

/// A gate over `host`'s plugins that records into `sink`.
fn gate_with_sink(host: &Host, sink: Arc<MemorySink>) -> warden::gate::Gate {
    let catalog = warden::catalog::Catalog::build(host.plugins().to_vec())
        .unwrap_or_else(|errors| panic!("{}", errors[0]));
    let options = warden::gate::GateOptions {
        audit: sink,
        ..Default::default()
    };
    warden::gate::Gate::new(catalog, host.runtime.clone(), options).expect("gate")
}

#[tokio::test]
async fn a_lost_audit_record_withholds_the_result_and_a_dropped_call_is_recorded() {
    let fixture = Fixture::new(
        r#"
[plugins.testbed]
component = "{testbed}"
timeout = "5s"
fuel = 100_000_000_000
"#,
    );
    let host = host(&fixture);
    let ann = Principal::new("ann", Vec::new(), Transport::Http);
    let args = common::object(json!({"text": "hello"}));
    let empty = serde_json::Map::new();
    let request = |tool, args| CallRequest {
        principal: &ann,
        mcp_id: Some(json!(7)),
        tool,
        arguments: Some(args),
        events: Arc::new(NoEvents),
        asking: Asking::Unable,
    };

    // Fail closed: the tool ran, but its result does not leave without a record.
    let failing = gate_with_sink(
        &host,
        Arc::new(MemorySink {
            records: Default::default(),
            fail: true,
        }),
    );
    let error = failing
        .call(request("testbed__emit", &args))
        .await
        .expect_err("withheld");
    let message = error.to_string();
    assert!(
        message.starts_with("the call could not be recorded in the audit log (request "),
        "{message}"
    );
    assert!(!message.contains("disk full"), "{message}");

    // A call dropped half-way (the client went away) is recorded as cancelled.
    let sink = Arc::new(MemorySink {
        records: Default::default(),
        fail: false,
    });
    let gate = gate_with_sink(&host, sink.clone());
    let dropped = tokio::time::timeout(
        Duration::from_millis(200),
        gate.call(request("testbed__spin", &empty)),
    )
    .await;
    assert!(dropped.is_err(), "the spin was still running");
    let ok = gate
        .call(request("testbed__emit", &args))
        .await
        .expect("call")
        .done()
        .expect("a result");
    assert_eq!(text(&ok), "hello");
    let records = sink.records.lock().expect("lock").clone();
    let outcomes: Vec<(&Value, &Value)> = records
        .iter()
        .map(|r| (&r["tool"], &r["outcome"]))
        .collect();
    assert_eq!(
        outcomes,
        [
            (&json!("testbed__spin"), &json!("cancelled")),
            (&json!("testbed__emit"), &json!("ok")),
        ]
    );
    assert_eq!(records[1]["mcp_id"], json!(7));
    assert_eq!(records[1]["transport"], "http");
}

// --- Redaction of everything a plugin says (hardening, item 3) --------------------------------

/// Call `tool` with a progress token, then wait until the notifications it caused have reached
/// the client's handler (they are sent before the response but dispatched separately).
async fn call_with_progress(
    client: &common::Client,
    tool: &str,
    arguments: Value,
) -> rmcp::model::CallToolResult {
    client.recorder.logs.lock().expect("lock").clear();
    client.recorder.progress.lock().expect("lock").clear();
    let mut params =
        CallToolRequestParams::new(tool.to_owned()).with_arguments(common::object(arguments));
    params.meta = Some(rmcp::model::RequestMetaObject::with_progress_token(
        rmcp::model::ProgressToken(rmcp::model::NumberOrString::Number(1)),
    ));
    let result = client.service.call_tool(params).await.expect("tools/call");
    // Settled: no new notification for 300ms (at most a few seconds in all).
    let count = || {
        client.recorder.logs.lock().expect("lock").len()
            + client.recorder.progress.lock().expect("lock").len()
    };
    let mut seen = usize::MAX;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = count();
        if now == seen {
            break;
        }
        seen = now;
    }
    result
}

/// The texts of the log notifications and of the progress messages recorded so far.
#[allow(deprecated)] // MCP logging is deprecated by SEP-2577 but still part of 2025-11-25.
fn notified(client: &common::Client) -> (Vec<String>, Vec<String>) {
    let logs = client
        .recorder
        .logs
        .lock()
        .expect("lock")
        .iter()
        .map(|log| match &log.data {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    let progress = client
        .recorder
        .progress
        .lock()
        .expect("lock")
        .iter()
        .map(|p| p.message.clone().unwrap_or_default())
        .collect();
    (logs, progress)
}

/// The plugin's own secret, as an `env` variable whose name looks secret.
const ENV_SECRET: &str = "tok-5d2c9e8f0a1b";

/// Strings the testbed's `leak-names` and `chatter` send that must never come out.
const SAMPLES: &[&str] = &[
    "jane.doe@example.com",
    "AKIAIOSFODNN7EXAMPLE",
    "4111 1111 1111 1111",
    "a@b.io",
    "c@d.io",
    ENV_SECRET,
];

#[tokio::test]
async fn structured_keys_and_mime_types_a_plugin_chooses_are_redacted() {
    let fixture = Fixture::new(&format!(
        r#"
[audit]
path = "{{dir}}/audit/log.jsonl"

[plugins.testbed]
component = "{{testbed}}"
env = {{ API_TOKEN = "{ENV_SECRET}" }}
"#
    ));
    let client = fixture.client().await;
    let result = client
        .call("testbed__leak_names", json!({"variable": "API_TOKEN"}))
        .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let everything = serde_json::to_string(&result).expect("serialize");
    for leaked in SAMPLES {
        assert!(
            !everything.contains(leaked),
            "{leaked} leaked: {everything}"
        );
    }

    // Keys: redacted, none lost (three emails become three distinct keys), values kept.
    let structured = result.structured_content.as_ref().expect("structured");
    let map = structured.as_object().expect("an object");
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "[REDACTED:aws-key]",
            "[REDACTED:email]",
            "[REDACTED:email] (2)",
            "[REDACTED:email] (3)",
            "[REDACTED:secrets]",
        ],
        "{structured}"
    );
    assert_eq!(
        map["[REDACTED:aws-key]"],
        json!({"[REDACTED:credit-card]": "card"})
    );
    assert_eq!(map["[REDACTED:secrets]"], "secret");
    let mut values: Vec<String> = map
        .iter()
        .filter(|(key, _)| key.starts_with("[REDACTED:email]"))
        .map(|(_, value)| value.to_string())
        .collect();
    values.sort_unstable();
    assert_eq!(values, ["\"email\"", "1", "2"]);

    // MIME types: of the image, the embedded resource and the resource link.
    let blocks = serde_json::to_value(&result.content).expect("json");
    assert_eq!(blocks[0]["mimeType"], "image/png; owner=[REDACTED:email]");
    assert_eq!(
        blocks[1]["resource"]["mimeType"],
        "text/plain; id=[REDACTED:aws-key]"
    );
    assert_eq!(blocks[2]["mimeType"], "text/plain; key=[REDACTED:secrets]");
    client.close().await;

    // Counted: for each detector, the larger of the content's and the structured count.
    let record = &records_of(&fixture, "testbed__leak_names")[0];
    assert_eq!(
        record["redactions"],
        json!({"aws-key": 1, "credit-card": 1, "email": 3, "secrets": 1}),
        "{record}"
    );
}

#[tokio::test]
async fn log_and_progress_messages_pass_the_filter_and_count_in_the_audit_record() {
    let fixture = Fixture::new(&format!(
        r#"
[audit]
path = "{{dir}}/audit/log.jsonl"

[plugins.testbed]
component = "{{testbed}}"
env = {{ API_TOKEN = "{ENV_SECRET}" }}
"#
    ));
    let client = fixture.client_env(&[("WARDEN_LOG", "debug")]).await;
    let result = call_with_progress(
        &client,
        "testbed__chatter",
        json!({"variable": "API_TOKEN"}),
    )
    .await;
    assert_eq!(ok_text(&result), "6");
    let (logs, progress) = notified(&client);
    let expected = [
        "mail [REDACTED:email]",
        "aws [REDACTED:aws-key]",
        "card [REDACTED:credit-card]",
        "secret [REDACTED:secrets]",
        "wide [REDACTED:credit-card]",
        "hidden [REDACTED:credit-card]",
    ];
    assert_eq!(logs, expected, "log notifications");
    assert_eq!(progress, expected, "progress messages");

    // The env value is the plugin's secret in warden's own log too (debug shows plugin logs).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = client.stderr();
    assert!(log.contains("DEBUG"), "not a debug log:\n{log}");
    assert!(!log.contains(ENV_SECRET), "secret in warden's log:\n{log}");
    client.close().await;

    let record = &records_of(&fixture, "testbed__chatter")[0];
    assert_eq!(
        record["redactions"],
        json!({"aws-key": 2, "credit-card": 6, "email": 2, "secrets": 2}),
        "{record}"
    );
}

#[tokio::test]
async fn a_flood_of_log_and_progress_messages_is_capped_with_one_note() {
    let fixture = Fixture::new(
        r#"
[plugins.few]
component = "{testbed}"
max_events = 10

[plugins.small]
component = "{testbed}"
max_event_bytes = "1KiB"

[plugins.testbed]
component = "{testbed}"
"#,
    );
    let client = fixture.client().await;
    let is_note = |m: &String| m.starts_with("warden: this call reached its limit");

    // Count: 10 events (5 logs, 5 progress reports), then one note, then nothing.
    let few = call_with_progress(&client, "few__flood", json!({"count": 50, "size": 10})).await;
    assert_eq!(ok_text(&few), "50");
    let (logs, progress) = notified(&client);
    assert_eq!(progress.len(), 5, "{progress:?}");
    assert_eq!(logs.len(), 6, "{logs:?}");
    assert!(is_note(&logs[5]), "{logs:?}");
    assert!(
        logs[5].contains("10 log and progress messages"),
        "{}",
        logs[5]
    );
    assert_eq!(logs.iter().filter(|m| is_note(m)).count(), 1);

    // Bytes: 400 + 400 fit in 1KiB, the third message is cut to the remaining 224 bytes,
    // then the note, then nothing.
    let small =
        call_with_progress(&client, "small__flood", json!({"count": 20, "size": 400})).await;
    assert_eq!(ok_text(&small), "20");
    let (logs, progress) = notified(&client);
    let sizes: Vec<usize> = logs
        .iter()
        .filter(|m| !is_note(m))
        .map(String::len)
        .collect();
    assert_eq!(sizes, [400, 224], "{logs:?}");
    assert_eq!(progress.iter().map(String::len).collect::<Vec<_>>(), [400]);
    assert_eq!(logs.iter().filter(|m| is_note(m)).count(), 1);

    // Defaults: a plugin trying to push megabytes (200 x 2 messages of 16KiB) gets at most
    // 64KiB of message text through, each message cut to 8KiB.
    let big = call_with_progress(
        &client,
        "testbed__flood",
        json!({"count": 200, "size": 16384}),
    )
    .await;
    assert_eq!(ok_text(&big), "200");
    let (logs, progress) = notified(&client);
    let texts: Vec<&String> = logs
        .iter()
        .chain(&progress)
        .filter(|m| !is_note(m))
        .collect();
    assert!(texts.iter().all(|m| m.len() <= 8192), "a message over 8KiB");
    let total: usize = texts.iter().map(|m| m.len()).sum();
    assert_eq!(total, 64 * 1024, "{} messages", texts.len());
    assert_eq!(logs.iter().filter(|m| is_note(m)).count(), 1);

    // The server is fine.
    assert_eq!(
        ok_text(&client.call("testbed__emit", json!({"text": "ok"})).await),
        "ok"
    );
    client.close().await;
}

#[tokio::test]
async fn disguised_values_are_found_and_the_whole_disguise_is_redacted() {
    let fixture = Fixture::new(&format!(
        r#"
[plugins.testbed]
component = "{{testbed}}"
env = {{ DB_PASSWORD = "{ENV_SECRET}" }}
"#
    ));
    let client = fixture.client().await;
    // Each line hides a value from a plain ASCII scan.
    let cases = [
        // Fullwidth digits.
        (
            "card \u{ff14}\u{ff11}\u{ff11}\u{ff11} \u{ff11}\u{ff11}\u{ff11}\u{ff11} \u{ff11}\u{ff11}\u{ff11}\u{ff11} \u{ff11}\u{ff11}\u{ff11}\u{ff11} end",
            "card [REDACTED:credit-card] end",
        ),
        // Zero-width space and joiner inside an email address.
        (
            "mail jane\u{200b}.doe@exa\u{200d}mple.com end",
            "mail [REDACTED:email] end",
        ),
        // Bidi controls inside an AWS key id.
        (
            "aws AKIA\u{202e}IOSFODNN7\u{2066}EXAMPLE\u{2069} end",
            "aws [REDACTED:aws-key] end",
        ),
        // A soft hyphen and a word joiner inside the plugin's own secret.
        (
            "secret tok-5d2c\u{00ad}9e8f\u{2060}0a1b end",
            "secret [REDACTED:secrets] end",
        ),
        // Fullwidth letters and at sign, and a no-break space in a card number.
        (
            "\u{ff4a}\u{ff41}\u{ff4e}\u{ff45}\u{ff20}example.com and 4111\u{a0}1111\u{a0}1111\u{a0}1111",
            "[REDACTED:email] and [REDACTED:credit-card]",
        ),
        // Arabic-Indic digits in a US SSN.
        (
            "ssn \u{0661}\u{0662}\u{0663}-\u{0664}\u{0665}-\u{0666}\u{0667}\u{0668}\u{0669} end",
            "ssn [REDACTED:ssn] end",
        ),
    ];
    for (disguised, redacted) in cases {
        let result = client
            .call("testbed__emit", json!({"text": disguised}))
            .await;
        assert_eq!(ok_text(&result), redacted, "{disguised:?}");
        // Error texts pass the same filter.
        let failed = client
            .call("testbed__fail", json!({"message": disguised}))
            .await;
        assert_eq!(err_text(&failed), redacted, "{disguised:?}");
    }
    // Structured values too, and text that merely is not ASCII is left alone.
    let listed = client
        .call(
            "testbed__echo_list",
            json!({"value": [cases[0].0, "naïve café, 東京, ４２"]}),
        )
        .await;
    let structured = listed.structured_content.as_ref().expect("structured");
    assert_eq!(
        structured["result"],
        json!([cases[0].1, "naïve café, 東京, ４２"])
    );
    client.close().await;
}

#[tokio::test]
async fn an_env_value_that_looks_secret_is_scrubbed_from_warden_log() {
    let fixture = Fixture::new(&format!(
        r#"
[plugins.testbed]
component = "{{testbed}}"
env = {{ API_TOKEN = "{ENV_SECRET}", LANG = "C.UTF-8" }}
"#
    ));
    let client = fixture.client_env(&[("WARDEN_LOG", "debug")]).await;
    // Printed to stdout and stderr, and logged: none of it may reach warden's log or the agent.
    let leaked =
        call_with_progress(&client, "testbed__leak_env", json!({"name": "API_TOKEN"})).await;
    assert_eq!(ok_text(&leaked), "true");
    let (logs, _) = notified(&client);
    assert_eq!(logs, ["log: API_TOKEN=[REDACTED:secrets]"]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = client.stderr();
    assert!(
        log.contains("stderr: API_TOKEN=[REDACTED:secrets]"),
        "stderr not scrubbed:\n{log}"
    );
    assert!(!log.contains(ENV_SECRET), "secret in warden's log:\n{log}");
    // A value whose name does not look secret is no secret.
    let lang = client.call("testbed__env", json!({"name": "LANG"})).await;
    assert_eq!(ok_text(&lang), "\"C.UTF-8\"");
    client.close().await;
}
