//! Tasks (the `io.modelcontextprotocol/tasks` extension, SEP-2663) end to end: the real
//! `warden` binary serving the conformance fixture's `slow-compute`, `failing-job` and
//! `protocol-error-job` as tasks, driven over Streamable HTTP in the 2026-07-28 era (raw
//! JSON-RPC, two API keys for two principals) and by the Python `mcp` SDK over stdio; with the
//! in-memory store and with two servers sharing a real `redis-server`.

mod common;

use std::time::Duration;

use common::redis::redis_port;
use common::{Fixture, HttpServer, api_key};
use serde_json::{Value, json};

const ALICE_KEY: &str = "wdn_test-alice-key-0123456789abcdefghijklmnopq";
const MALLORY_KEY: &str = "wdn_test-mallory-key-0123456789abcdefghijklmno";

/// A manifest serving the conformance fixture's task tools (a 2s plugin `timeout`, a 60s
/// `task_timeout` for `slow_compute`), with an audit log, two API keys and `tasks` (TOML of
/// a `[tasks]` section, or nothing).
fn fixture(tasks: &str) -> Fixture {
    Fixture::new(&format!(
        r#"
[audit]
path = "{{dir}}/audit.jsonl"

{tasks}

[plugins.conformance]
component = "{{conformance}}"
prefix = ""
timeout = "2s"

[plugins.conformance.tools.slow-compute]
name = "slow_compute"
task = "optional"
task_timeout = "60s"

[plugins.conformance.tools.failing-job]
name = "failing_job"
task = "required"

[plugins.conformance.tools.protocol-error-job]
name = "protocol_error_job"
task = "optional"

[plugins.conformance.tools.confirm-delete]
name = "confirm_delete"
task = "optional"

[plugins.conformance.tools.multi-input]
name = "multi_input"
task = "optional"

[plugins.conformance.tools.name-then-work]
name = "name_then_work"
task = "required"
task_after = "300ms"

{}
{}"#,
        api_key("alice", &[], ALICE_KEY),
        api_key("mallory", &[], MALLORY_KEY)
    ))
}

/// One 2026-07-28 request to `server` as the holder of `key`, declaring the tasks extension
/// when `tasks` is set: the JSON-RPC response.
async fn rpc(server: &HttpServer, key: &str, method: &str, params: Value, tasks: bool) -> Value {
    let capabilities = if tasks {
        json!({"extensions": { "io.modelcontextprotocol/tasks": {} }})
    } else {
        json!({})
    };
    rpc_as(server, key, method, params, capabilities).await
}

/// [`rpc`] with the client capabilities `capabilities`.
async fn rpc_as(
    server: &HttpServer,
    key: &str,
    method: &str,
    params: Value,
    capabilities: Value,
) -> Value {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "tasks-test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    });
    let name = params
        .get("name")
        .or_else(|| params.get("taskId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut request = reqwest::Client::new()
        .post(&server.url)
        .bearer_auth(key)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", method);
    if let Some(name) = name {
        request = request.header("Mcp-Name", name);
    }
    let response = request
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"));
    let text = response.text().await.expect("response body");
    // A JSON body, or an event stream whose last `data:` line is the response.
    let body = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .next_back()
        .unwrap_or(&text);
    serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{method}: {e}: {text}"))
}

/// Call `tool` as `key`'s holder with the extension declared: the new task's id.
async fn start(server: &HttpServer, key: &str, tool: &str, arguments: Value) -> String {
    let created = rpc(
        server,
        key,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
        true,
    )
    .await;
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    let id = created["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no taskId: {created}"))
        .to_owned();
    assert_eq!(id.len(), 32, "128 random bits in hex: {id}");
    id
}

/// `tasks/cancel` of task `id` as `key`'s holder.
async fn cancel(server: &HttpServer, key: &str, id: &str) -> Value {
    rpc(server, key, "tasks/cancel", json!({ "taskId": id }), true).await
}

/// `tasks/get` of task `id` as `key`'s holder.
async fn get(server: &HttpServer, key: &str, id: &str) -> Value {
    rpc(server, key, "tasks/get", json!({ "taskId": id }), true).await
}

/// Poll task `id` until it is no longer `working` (at most two minutes): its last state.
async fn settled(server: &HttpServer, key: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let task = get(server, key, id).await;
        let status = task["result"]["status"].as_str().unwrap_or_default();
        if status != "working" {
            return task["result"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} still working: {task}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait (at most a minute) until the audit log has a call record of `tool` whose outcome is
/// `outcome`.
async fn audited(fixture: &Fixture, tool: &str, outcome: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let records = fixture.audit_log("audit.jsonl");
        if let Some(record) = records
            .iter()
            .find(|r| r["tool"] == tool && r["outcome"] == outcome)
        {
            return record.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {outcome} record of {tool}: {records:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_task_outlives_the_call_time_limit_and_its_owner_gets_the_result() {
    let fixture = fixture("");
    let server = fixture.http_server(&[]).await;

    // Without the extension the call runs under the plugin's 2s timeout, and fails.
    let plain = rpc(
        &server,
        ALICE_KEY,
        "tools/call",
        json!({"name": "slow_compute", "arguments": {"seconds": 3, "label": "plain"}}),
        false,
    )
    .await;
    assert_eq!(plain["result"]["isError"], true, "{plain}");
    assert!(
        plain["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("time limit") || t.contains("timed out")),
        "{plain}"
    );

    // As a task it gets its 60s task_timeout.
    let id = start(
        &server,
        ALICE_KEY,
        "slow_compute",
        json!({"seconds": 3, "label": "long"}),
    )
    .await;
    let working = get(&server, ALICE_KEY, &id).await;
    assert_eq!(working["result"]["status"], "working", "{working}");
    assert!(working["result"].get("result").is_none(), "{working}");
    // Its progress shows as the task's status message while it works.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let task = get(&server, ALICE_KEY, &id).await;
        let message = task["result"]["statusMessage"].as_str().unwrap_or_default();
        if message.starts_with("second ") && message.ends_with(" of 3") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{task}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done = settled(&server, ALICE_KEY, &id).await;
    assert!(done.get("statusMessage").is_none(), "{done}");
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["content"][0]["text"], "Computed long in 3s");
    assert_eq!(done["resultType"], "complete");
    assert!(done["ttlMs"].as_u64().is_some_and(|ttl| ttl > 0), "{done}");

    // The call is in the audit log as any call, with alice as its principal.
    let record = audited(&fixture, "slow_compute", "ok").await;
    assert_eq!(record["principal"], "alice");

    // A tool error is a completed task whose result says isError; a crash is a failed task.
    let failing = start(&server, ALICE_KEY, "failing_job", json!({})).await;
    let failed_tool = settled(&server, ALICE_KEY, &failing).await;
    assert_eq!(failed_tool["status"], "completed", "{failed_tool}");
    assert_eq!(failed_tool["result"]["isError"], true, "{failed_tool}");
    let crashing = start(&server, ALICE_KEY, "protocol_error_job", json!({})).await;
    let crashed = settled(&server, ALICE_KEY, &crashing).await;
    assert_eq!(crashed["status"], "failed", "{crashed}");
    assert_eq!(crashed["error"]["code"], -32603, "{crashed}");
    assert!(crashed.get("result").is_none(), "{crashed}");
    audited(&fixture, "protocol_error_job", "trap").await;
}

#[tokio::test]
async fn a_task_is_unknown_to_every_other_principal() {
    let fixture = fixture("");
    let server = fixture.http_server(&[]).await;
    let id = start(
        &server,
        ALICE_KEY,
        "slow_compute",
        json!({"seconds": 2, "label": "alice's"}),
    )
    .await;

    // Mallory holds the id (say it leaked): to her it is an unknown task, exactly as a made-up
    // one is, and she cannot cancel it.
    let made_up = "0123456789abcdef0123456789abcdef";
    for method in ["tasks/get", "tasks/cancel", "tasks/update"] {
        let mut params = json!({ "taskId": id });
        let mut invented = json!({ "taskId": made_up });
        if method == "tasks/update" {
            params["inputResponses"] = json!({});
            invented["inputResponses"] = json!({});
        }
        let theirs = rpc(&server, MALLORY_KEY, method, params, true).await;
        let unknown = rpc(&server, MALLORY_KEY, method, invented, true).await;
        assert_eq!(theirs["error"]["code"], -32602, "{method}: {theirs}");
        assert_eq!(unknown["error"]["code"], -32602, "{method}: {unknown}");
        let message = theirs["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(
            message.replace(&id, "ID"),
            unknown["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .replace(made_up, "ID"),
            "{method}: the refusals differ"
        );
    }

    // Alice's task ran to its end, untouched.
    let done = settled(&server, ALICE_KEY, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"],
        "Computed alice's in 2s"
    );

    // Each of mallory's attempts is in the audit log, denied.
    let records = fixture.audit_log("audit.jsonl");
    for method in ["tasks/get", "tasks/cancel", "tasks/update"] {
        let denied = records
            .iter()
            .filter(|r| r["principal"] == "mallory" && r["tool"] == method)
            .filter(|r| r["outcome"] == "denied")
            .count();
        assert_eq!(denied, 2, "{method}: {records:#?}");
    }

    // Without the extension, the task methods are refused with -32021.
    let undeclared = rpc(
        &server,
        ALICE_KEY,
        "tasks/get",
        json!({ "taskId": id }),
        false,
    )
    .await;
    assert_eq!(undeclared["error"]["code"], -32021, "{undeclared}");
}

#[tokio::test]
async fn cancel_stops_the_guest_and_the_call_is_recorded_cancelled() {
    let fixture = fixture("");
    let server = fixture.http_server(&[]).await;
    let id = start(
        &server,
        ALICE_KEY,
        "slow_compute",
        json!({"seconds": 50, "label": "doomed"}),
    )
    .await;
    let ack = cancel(&server, ALICE_KEY, &id).await;
    assert_eq!(ack["result"], json!({"resultType": "complete"}), "{ack}");
    let task = get(&server, ALICE_KEY, &id).await;
    assert_eq!(task["result"]["status"], "cancelled", "{task}");
    // The call was dropped (its record is written at once, long before the 50s it would
    // have slept), and a second cancel is the same empty acknowledgement.
    audited(&fixture, "slow_compute", "cancelled").await;
    let again = cancel(&server, ALICE_KEY, &id).await;
    assert_eq!(
        again["result"],
        json!({"resultType": "complete"}),
        "{again}"
    );
}

#[tokio::test]
async fn a_principal_has_at_most_max_per_principal_running_tasks() {
    let fixture = fixture("[tasks]\nmax_per_principal = 1\n");
    let server = fixture.http_server(&[]).await;
    let first = start(
        &server,
        ALICE_KEY,
        "slow_compute",
        json!({"seconds": 30, "label": "first"}),
    )
    .await;
    let second = rpc(
        &server,
        ALICE_KEY,
        "tools/call",
        json!({"name": "slow_compute", "arguments": {"seconds": 1}}),
        true,
    )
    .await;
    assert_eq!(second["result"]["isError"], true, "{second}");
    let text = second["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("too many running tasks"), "{text}");
    // The cap is per principal: mallory may still start one.
    start(
        &server,
        MALLORY_KEY,
        "slow_compute",
        json!({"seconds": 1, "label": "other"}),
    )
    .await;
    // Once alice's task ends (here: cancelled), she may start another.
    cancel(&server, ALICE_KEY, &first).await;
    start(
        &server,
        ALICE_KEY,
        "slow_compute",
        json!({"seconds": 1, "label": "next"}),
    )
    .await;
}

#[tokio::test]
async fn a_tool_that_runs_only_as_a_task_needs_the_extension() {
    let fixture = fixture("");
    let server = fixture.http_server(&[]).await;
    let refused = rpc(
        &server,
        ALICE_KEY,
        "tools/call",
        json!({"name": "failing_job", "arguments": {}}),
        false,
    )
    .await;
    assert_eq!(refused["error"]["code"], -32021, "{refused}");
    assert!(
        refused["error"]["data"]["requiredCapabilities"]["extensions"]
            ["io.modelcontextprotocol/tasks"]
            .is_object(),
        "{refused}"
    );
    // tools/list says which tools run as tasks.
    let listed = rpc(&server, ALICE_KEY, "tools/list", json!({}), true).await;
    let tools = listed["result"]["tools"].as_array().expect("tools");
    let support = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["_meta"]["io.modelcontextprotocol/tasks"]["taskSupport"].clone())
    };
    assert_eq!(support("failing_job"), Some(json!("required")));
    assert_eq!(support("slow_compute"), Some(json!("optional")));
    assert_eq!(support("test_simple_text"), Some(Value::Null));
}

#[tokio::test]
async fn replicas_sharing_redis_serve_each_others_tasks() {
    let store = format!(
        "[tasks]\nstore = \"redis://127.0.0.1:{}\"\nprefix = \"tasks-{}:\"\n",
        redis_port(),
        std::process::id()
    );
    let fixture = fixture(&store);
    let one = fixture.http_server(&[]).await;
    let two = fixture.http_server(&[]).await;

    // Started on one, fetched on the other, with its result.
    let id = start(
        &one,
        ALICE_KEY,
        "slow_compute",
        json!({"seconds": 1, "label": "shared"}),
    )
    .await;
    let seen = get(&two, ALICE_KEY, &id).await;
    assert_eq!(seen["result"]["taskId"], id.as_str(), "{seen}");
    let done = settled(&two, ALICE_KEY, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"],
        "Computed shared in 1s"
    );
    // Still another principal's business nowhere.
    let theirs = get(&two, MALLORY_KEY, &id).await;
    assert_eq!(theirs["error"]["code"], -32602, "{theirs}");

    // Started on one, cancelled on the other: the status is cancelled at once, and the
    // replica running it drops the call (its record says cancelled) within its poll.
    let long = start(
        &one,
        ALICE_KEY,
        "slow_compute",
        json!({"seconds": 50, "label": "far"}),
    )
    .await;
    // Its progress, written to the store by one, shows on two.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let task = get(&two, ALICE_KEY, &long).await;
        if task["result"]["statusMessage"]
            .as_str()
            .is_some_and(|m| m.ends_with(" of 50"))
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{task}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ack = cancel(&two, ALICE_KEY, &long).await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    let task = get(&one, ALICE_KEY, &long).await;
    assert_eq!(task["result"]["status"], "cancelled", "{task}");
    audited(&fixture, "slow_compute", "cancelled").await;
    assert!(one.stderr().contains("task cancelled"), "{}", one.stderr());
}

#[tokio::test]
async fn a_task_that_asks_waits_for_its_owners_answer() {
    let fixture = fixture("");
    let server = fixture.http_server(&[]).await;
    let capabilities = json!({
        "elicitation": {},
        "extensions": { "io.modelcontextprotocol/tasks": {} },
    });
    let created = rpc_as(
        &server,
        ALICE_KEY,
        "tools/call",
        json!({"name": "confirm_delete", "arguments": {"filename": "notes.txt"}}),
        capabilities.clone(),
    )
    .await;
    let id = created["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {created}"))
        .to_owned();
    let waiting = settled(&server, ALICE_KEY, &id).await;
    assert_eq!(waiting["status"], "input_required", "{waiting}");
    assert!(waiting.get("requestState").is_none(), "{waiting}");
    let requests = waiting["inputRequests"].as_object().expect("inputRequests");
    assert_eq!(requests.len(), 1, "{waiting}");
    let (question, request) = requests.iter().next().expect("one question");
    assert_eq!(request["method"], "elicitation/create", "{waiting}");
    assert_eq!(
        request["params"]["message"], "Delete notes.txt?",
        "{waiting}"
    );

    // Mallory cannot answer it.
    let answer = json!({ question.clone(): {"action": "accept", "content": {"confirm": true}} });
    let theirs = rpc(
        &server,
        MALLORY_KEY,
        "tasks/update",
        json!({"taskId": id, "inputResponses": answer}),
        true,
    )
    .await;
    assert_eq!(theirs["error"]["code"], -32602, "{theirs}");
    let still = get(&server, ALICE_KEY, &id).await;
    assert_eq!(still["result"]["status"], "input_required", "{still}");

    // Alice's answer resumes it: the call runs again with the answer, to its result.
    let ack = rpc(
        &server,
        ALICE_KEY,
        "tasks/update",
        json!({"taskId": id, "inputResponses": answer}),
        true,
    )
    .await;
    assert_eq!(ack["result"], json!({"resultType": "complete"}), "{ack}");
    let done = settled(&server, ALICE_KEY, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"],
        "Delete notes.txt: action=accept, content={\"confirm\":true}",
        "{done}"
    );
    // Two rounds of one call in the audit log: the question, then the answer's run.
    audited(&fixture, "confirm_delete", "input-required").await;
    audited(&fixture, "confirm_delete", "ok").await;
}

/// `name_then_work` (`task_after = "300ms"`) as Alice, declaring elicitation and the
/// extension: its round 1 is an ordinary input-required result, no task.
async fn name_round_one(server: &HttpServer, seconds: u32) -> (String, Value) {
    let round1 = rpc_as(
        server,
        ALICE_KEY,
        "tools/call",
        json!({"name": "name_then_work", "arguments": {"seconds": seconds}}),
        asks_and_tasks(),
    )
    .await;
    let result = &round1["result"];
    assert_eq!(result["resultType"], "input_required", "{round1}");
    assert!(result.get("taskId").is_none(), "no task yet: {round1}");
    assert_eq!(
        result["inputRequests"]["user_name"]["method"], "elicitation/create",
        "{round1}"
    );
    let state = result["requestState"]
        .as_str()
        .unwrap_or_else(|| panic!("no requestState: {round1}"))
        .to_owned();
    let answer = json!({"user_name": {"action": "accept", "content": {"name": "Alice"}}});
    (state, answer)
}

/// Round 2 of `name_then_work` (working `seconds`) as the holder of `key`: round 1's
/// `state` and the `answer`, for a client that answers and declares the tasks extension.
async fn name_round_two(
    server: &HttpServer,
    key: &str,
    seconds: u32,
    state: &str,
    answer: &Value,
) -> Value {
    rpc_as(
        server,
        key,
        "tools/call",
        json!({"name": "name_then_work", "arguments": {"seconds": seconds},
               "requestState": state, "inputResponses": answer}),
        asks_and_tasks(),
    )
    .await
}

fn asks_and_tasks() -> Value {
    json!({
        "elicitation": {},
        "extensions": { "io.modelcontextprotocol/tasks": {} },
    })
}

#[tokio::test]
async fn a_tool_with_task_after_asks_in_rounds_and_the_run_with_its_answers_becomes_a_task() {
    let fixture = fixture("");
    let server = fixture.http_server(&[]).await;
    let (state, answer) = name_round_one(&server, 3).await;

    // Mallory replaying Alice's round gets no task: the state is bound to Alice.
    let theirs = name_round_two(&server, MALLORY_KEY, 3, &state, &answer).await;
    assert_eq!(theirs["error"]["code"], -32602, "{theirs}");

    // Round 2 has its answer: the run works 3s, past task_after, and becomes a task.
    let round2 = name_round_two(&server, ALICE_KEY, 3, &state, &answer).await;
    let created = &round2["result"];
    assert_eq!(created["resultType"], "task", "{round2}");
    assert_eq!(created["status"], "working", "{round2}");
    assert!(created.get("requestState").is_none(), "{round2}");
    assert!(created.get("inputRequests").is_none(), "{round2}");
    let id = created["taskId"].as_str().expect("taskId").to_owned();

    // Another principal does not see it; its owner gets the answer gathered in round 1.
    let theirs = get(&server, MALLORY_KEY, &id).await;
    assert_eq!(theirs["error"]["code"], -32602, "{theirs}");
    let done = settled(&server, ALICE_KEY, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"], "Hello, Alice!",
        "{done}"
    );
    // Each run has its record: the question, then the run that became the task.
    audited(&fixture, "name_then_work", "input-required").await;
    audited(&fixture, "name_then_work", "ok").await;
}

#[tokio::test]
async fn a_run_that_would_pass_max_per_principal_when_it_becomes_a_task_is_stopped() {
    let fixture = fixture("[tasks]\nmax_per_principal = 1");
    let server = fixture.http_server(&[]).await;
    let (state, answer) = name_round_one(&server, 5).await;
    // Alice's one live task.
    let first = start(&server, ALICE_KEY, "slow_compute", json!({"seconds": 30})).await;
    let round2 = name_round_two(&server, ALICE_KEY, 5, &state, &answer).await;
    let result = &round2["result"];
    assert_eq!(result["isError"], true, "{round2}");
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("too many running tasks"),
        "{round2}"
    );
    // The refusal and the stopped run are both in the audit log.
    audited(&fixture, "name_then_work", "denied").await;
    audited(&fixture, "name_then_work", "cancelled").await;
    let ack = cancel(&server, ALICE_KEY, &first).await;
    assert!(ack.get("error").is_none(), "{ack}");
}

#[tokio::test]
async fn a_tool_with_task_after_that_ends_in_time_is_answered_as_an_ended_task() {
    let fixture = fixture("");
    let server = fixture.http_server(&[]).await;
    let (state, answer) = name_round_one(&server, 0).await;
    let round2 = name_round_two(&server, ALICE_KEY, 0, &state, &answer).await;
    let created = &round2["result"];
    assert_eq!(created["resultType"], "task", "{round2}");
    assert_eq!(created["status"], "completed", "{round2}");
    let id = created["taskId"].as_str().expect("taskId").to_owned();
    let done = get(&server, ALICE_KEY, &id).await;
    assert_eq!(
        done["result"]["result"]["content"][0]["text"], "Hello, Alice!",
        "{done}"
    );
}

#[tokio::test]
async fn a_task_after_tool_for_a_client_that_cannot_answer_is_an_ended_task() {
    let fixture = fixture("");
    let server = fixture.http_server(&[]).await;
    // A client that declared no elicitation: the run's question cannot be asked...
    let refused = rpc(
        &server,
        ALICE_KEY,
        "tools/call",
        json!({"name": "name_then_work", "arguments": {"seconds": 0}}),
        true,
    )
    .await;
    // ... as an ended task: the plugin's question got `unsupported`, its error is the result.
    assert_eq!(refused["result"]["resultType"], "task", "{refused}");
    assert_eq!(refused["result"]["status"], "completed", "{refused}");
    // Without the extension: -32021, as for any required task tool.
    let plain = rpc(
        &server,
        ALICE_KEY,
        "tools/call",
        json!({"name": "name_then_work", "arguments": {}}),
        false,
    )
    .await;
    assert_eq!(plain["error"]["code"], -32021, "{plain}");
}

#[tokio::test]
async fn cancelling_a_task_that_waits_for_input_is_recorded_and_only_its_owner_can() {
    let fixture = fixture("");
    let server = fixture.http_server(&[]).await;
    let created = rpc_as(
        &server,
        ALICE_KEY,
        "tools/call",
        json!({"name": "confirm_delete", "arguments": {"filename": "notes.txt"}}),
        asks_and_tasks(),
    )
    .await;
    let id = created["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {created}"))
        .to_owned();
    let waiting = settled(&server, ALICE_KEY, &id).await;
    assert_eq!(waiting["status"], "input_required", "{waiting}");

    // Mallory's cancel is refused as for an unknown id, recorded denied, and changes nothing.
    let theirs = cancel(&server, MALLORY_KEY, &id).await;
    assert_eq!(theirs["error"]["code"], -32602, "{theirs}");
    let denied = audited(&fixture, "tasks/cancel", "denied").await;
    assert_eq!(denied["principal"], "mallory", "{denied}");
    let still = get(&server, ALICE_KEY, &id).await;
    assert_eq!(still["result"]["status"], "input_required", "{still}");

    // Alice's cancel ends it, and its record says so although no call was running.
    let ack = cancel(&server, ALICE_KEY, &id).await;
    assert!(ack.get("error").is_none(), "{ack}");
    let gone = get(&server, ALICE_KEY, &id).await;
    assert_eq!(gone["result"]["status"], "cancelled", "{gone}");
    let record = audited(&fixture, "confirm_delete", "cancelled").await;
    assert_eq!(record["principal"], "alice", "{record}");
    let why = record["error"].as_str().unwrap_or_default();
    assert!(why.contains(&id), "{record}");
    // A second cancel of the ended task changes nothing and writes no second record.
    let again = cancel(&server, ALICE_KEY, &id).await;
    assert!(again.get("error").is_none(), "{again}");
    let cancelled = fixture
        .audit_log("audit.jsonl")
        .iter()
        .filter(|r| r["tool"] == "confirm_delete" && r["outcome"] == "cancelled")
        .count();
    assert_eq!(cancelled, 1);
}

/// Open a 2026-07-28 `subscriptions/listen` as `key`'s holder, declaring the tasks
/// extension, and wait for its acknowledgement: the response, and the stream read so far.
async fn listen(server: &HttpServer, key: &str) -> (reqwest::Response, String) {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "tasks-test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities":
            {"extensions": { "io.modelcontextprotocol/tasks": {} }},
    });
    let response = reqwest::Client::new()
        .post(&server.url)
        .bearer_auth(key)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "subscriptions/listen")
        .json(&json!({
            "jsonrpc": "2.0", "id": 7, "method": "subscriptions/listen",
            "params": {"_meta": meta, "notifications": {"toolsListChanged": true}},
        }))
        .send()
        .await
        .expect("subscriptions/listen");
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    let mut stream = (response, String::new());
    read_until(&mut stream, "notifications/subscriptions/acknowledged").await;
    stream
}

/// Read `stream` until it holds `what` (at most a minute).
async fn read_until(stream: &mut (reqwest::Response, String), what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !stream.1.contains(what) {
        let chunk = tokio::time::timeout_at(deadline, stream.0.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {what} on the stream: {}", stream.1))
            .expect("read the stream")
            .unwrap_or_else(|| panic!("the stream ended before {what}: {}", stream.1));
        stream.1.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn task_status_notifications_go_only_to_the_owners_listen_stream() {
    let fixture = fixture("");
    let server = fixture.http_server(&[]).await;
    let mut alices = listen(&server, ALICE_KEY).await;
    let mut mallorys = listen(&server, MALLORY_KEY).await;

    let id = start(&server, ALICE_KEY, "slow_compute", json!({"seconds": 1})).await;
    read_until(&mut alices, "\"completed\"").await;
    let notification = alices
        .1
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|m| m["method"] == "notifications/tasks" && m["params"]["status"] == "completed")
        .unwrap_or_else(|| panic!("no completed notifications/tasks: {}", alices.1));
    let params = &notification["params"];
    assert_eq!(params["taskId"], id, "{notification}");
    assert_eq!(
        params["result"]["content"][0]["text"], "Computed result in 1s",
        "{notification}"
    );
    assert!(
        params["_meta"]["io.modelcontextprotocol/subscriptionId"].is_number(),
        "{notification}"
    );

    // Mallory's own task reaches her stream after Alice's changes were passed over (one
    // queue, in order): none of Alice's is on it.
    let hers = start(&server, MALLORY_KEY, "slow_compute", json!({"seconds": 0})).await;
    read_until(&mut mallorys, &hers).await;
    assert!(!mallorys.1.contains(&id), "{}", mallorys.1);
    assert!(!alices.1.contains(&hers), "{}", alices.1);

    // A task that asks: the notification carries its questions.
    let asked = rpc_as(
        &server,
        ALICE_KEY,
        "tools/call",
        json!({"name": "confirm_delete", "arguments": {"filename": "notes.txt"}}),
        asks_and_tasks(),
    )
    .await;
    let asked = asked["result"]["taskId"]
        .as_str()
        .expect("taskId")
        .to_owned();
    read_until(&mut alices, "Delete notes.txt?").await;
    let waiting = alices
        .1
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|m| m["params"]["taskId"] == asked.as_str())
        .unwrap_or_else(|| panic!("no notification of {asked}: {}", alices.1));
    assert_eq!(waiting["params"]["status"], "input_required", "{waiting}");
    assert!(waiting["params"].get("requestState").is_none(), "{waiting}");
}

#[tokio::test]
async fn a_task_asking_two_questions_resumes_once_both_are_answered() {
    let fixture = fixture("");
    let server = fixture.http_server(&[]).await;
    let capabilities = json!({
        "elicitation": {},
        "extensions": { "io.modelcontextprotocol/tasks": {} },
    });
    let created = rpc_as(
        &server,
        ALICE_KEY,
        "tools/call",
        json!({"name": "multi_input", "arguments": {}}),
        capabilities,
    )
    .await;
    let id = created["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {created}"))
        .to_owned();
    let waiting = settled(&server, ALICE_KEY, &id).await;
    let keys: Vec<&String> = waiting["inputRequests"]
        .as_object()
        .map(|r| r.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["first_name", "last_name"], "{waiting}");
    let answer = |name: &str| json!({"action": "accept", "content": {"name": name}});
    let update = |responses: Value| {
        rpc(
            &server,
            ALICE_KEY,
            "tasks/update",
            json!({"taskId": id, "inputResponses": responses}),
            true,
        )
    };
    // One answer: the task still waits, for the other question only.
    update(json!({"first_name": answer("Ada")})).await;
    let partial = get(&server, ALICE_KEY, &id).await;
    assert_eq!(partial["result"]["status"], "input_required", "{partial}");
    let left: Vec<&String> = partial["result"]["inputRequests"]
        .as_object()
        .map(|r| r.keys().collect())
        .unwrap_or_default();
    assert_eq!(left, ["last_name"], "{partial}");
    // The second: the call runs again with both answers.
    update(json!({"last_name": answer("Lovelace")})).await;
    let done = settled(&server, ALICE_KEY, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["content"][0]["text"], "Hello, Ada Lovelace!");
}

#[tokio::test]
async fn a_task_is_forgotten_after_its_ttl_and_its_call_dropped() {
    let fixture = fixture("[tasks]\nttl = \"2s\"\n");
    let server = fixture.http_server(&[]).await;
    let id = start(
        &server,
        ALICE_KEY,
        "slow_compute",
        json!({"seconds": 50, "label": "forever"}),
    )
    .await;
    let created = get(&server, ALICE_KEY, &id).await;
    assert_eq!(created["result"]["ttlMs"], 2000, "{created}");
    audited(&fixture, "slow_compute", "cancelled").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let gone = get(&server, ALICE_KEY, &id).await;
        if gone["error"]["code"] == -32602 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{gone}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_replica_that_stops_cancels_its_tasks_in_the_shared_store() {
    let store = format!(
        "[tasks]\nstore = \"redis://127.0.0.1:{}\"\nprefix = \"stop-{}:\"\n",
        redis_port(),
        std::process::id()
    );
    let fixture = fixture(&store);
    let mut one = fixture.http_server(&[]).await;
    let two = fixture.http_server(&[]).await;
    let id = start(
        &one,
        ALICE_KEY,
        "slow_compute",
        json!({"seconds": 50, "label": "orphan"}),
    )
    .await;
    assert!(one.terminate().await.success());
    let task = get(&two, ALICE_KEY, &id).await;
    assert_eq!(task["result"]["status"], "cancelled", "{task}");
    audited(&fixture, "slow_compute", "cancelled").await;
}

#[tokio::test]
async fn the_python_sdk_runs_a_task_to_its_result() {
    let fixture = fixture("");
    let plan = json!({
        "server": [env!("CARGO_BIN_EXE_warden"), "serve", "--manifest", fixture.manifest],
        "tool": "slow_compute",
        "args": {"seconds": 1, "label": "python"},
    });
    let output = common::run_python(
        &fixture,
        "tasks_client.py",
        include_str!("support/tasks_client.py"),
        &[plan.to_string()],
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(line["created"]["status"], "working", "{line}");
    assert_eq!(line["status"], "completed", "{line}");
    assert_eq!(line["text"], "Computed python in 1s", "{line}");
    assert_eq!(line["is_error"], false, "{line}");
    assert!(line["polls"].as_u64().is_some_and(|n| n >= 1), "{line}");
}

/// `target/conformance/0.2.0-alpha.12/node_modules`: the Node 22 and the TypeScript SDK that
/// tests/conformance.rs installs.
fn node_modules() -> std::path::PathBuf {
    let tmp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp
        .parent()
        .map_or_else(|| tmp.clone(), std::path::Path::to_path_buf)
        .join("conformance/0.2.0-alpha.12/node_modules");
    assert!(
        dir.join(".bin/node").exists(),
        "{} has no Node 22 and TypeScript SDK: run `cargo test -p warden --test conformance` \
         once, which installs them",
        dir.display()
    );
    dir
}

#[tokio::test]
async fn the_typescript_sdk_runs_a_task_to_its_result() {
    let fixture = fixture("");
    let modules = node_modules();
    let script = fixture.path("tasks_client.mjs");
    std::fs::write(&script, include_str!("support/tasks_client.mjs")).expect("write the client");
    let plan = json!({
        "server": [env!("CARGO_BIN_EXE_warden"), "serve", "--manifest", fixture.manifest],
        "tool": "slow_compute",
        "args": {"seconds": 1, "label": "typescript"},
    });
    let output = tokio::process::Command::new(modules.join(".bin/node"))
        .arg(&script)
        .arg(modules.join("@modelcontextprotocol/sdk"))
        .arg(plan.to_string())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("the TypeScript client finishes")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(line["extension"], true, "{line}");
    assert_eq!(line["created"]["resultType"], "task", "{line}");
    assert_eq!(line["status"], "completed", "{line}");
    assert_eq!(line["text"], "Computed typescript in 1s", "{line}");
    assert_eq!(line["is_error"], false, "{line}");
}

#[test]
fn warden_check_shows_which_tools_run_as_tasks() {
    let fixture = fixture("");
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let (code, stdout, stderr) = common::warden(&["check", manifest], fixture.dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("tool        slow_compute, task optional (limit 1m)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("tool        failing_job, task required (limit 10m)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("tool        name_then_work, task required (limit 10m, after 300ms)"),
        "{stdout}"
    );
    let (code, stdout, stderr) = common::warden(&["check", "--json", manifest], fixture.dir.path());
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("check --json");
    let tools = report["plugins"][0]["tools"].as_array().expect("tools");
    let task = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["task"].clone())
    };
    assert_eq!(
        task("slow_compute"),
        Some(json!({"mode": "optional", "timeout_ms": 60_000, "after_ms": null}))
    );
    assert_eq!(
        task("name_then_work"),
        Some(json!({"mode": "required", "timeout_ms": 600_000, "after_ms": 300}))
    );
    assert_eq!(task("test_simple_text"), Some(Value::Null));
}

#[tokio::test]
async fn a_store_that_is_down_refuses_tasks_plainly_and_the_server_goes_on() {
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let fixture = fixture(&format!("[tasks]\nstore = \"redis://127.0.0.1:{port}\"\n"));
    let server = fixture.http_server(&[]).await;
    let refused = rpc(
        &server,
        ALICE_KEY,
        "tools/call",
        json!({"name": "slow_compute", "arguments": {"seconds": 1}}),
        true,
    )
    .await;
    assert_eq!(refused["error"]["code"], -32603, "{refused}");
    assert_eq!(
        refused["error"]["message"], "the task store is unavailable",
        "{refused}"
    );
    // The detail is in the log, not in the answer; plain calls still work.
    assert!(
        server.stderr().contains("task store failed"),
        "{}",
        server.stderr()
    );
    let plain = rpc(
        &server,
        ALICE_KEY,
        "tools/call",
        json!({"name": "slow_compute", "arguments": {"seconds": 0, "label": "sync"}}),
        false,
    )
    .await;
    assert_eq!(
        plain["result"]["content"][0]["text"], "Computed sync in 0s",
        "{plain}"
    );
}
