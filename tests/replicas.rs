//! Many replicas, one policy (issue 18, item 7): three `warden serve --http` processes on
//! 127.0.0.1, one manifest (`[limits] store` on one real `redis-server`, one `[approval] key`,
//! each its own audit log through `${WARDEN_AUDIT}`), behind a real `haproxy` (round robin, no
//! stickiness, written and started by each test). Clients speak the stateless 2026-07-28 era:
//! rmcp's client through the balancer, and raw JSON-RPC to a chosen replica where the test
//! must know which one answers.
//!
//! What the load test guarantees (`killing_a_replica_mid_load_loses_no_recorded_call`):
//! haproxy resends a request only when it could not connect to the replica (`retries`,
//! `option redispatch`, the default `retry-on conn-failure`), so a request reaches at most one
//! replica; a call cut by the kill gets an error (502) and is in the dead replica's log or in
//! none. Every call that got a response is in exactly one log.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Fixture, HttpServer, Recorder, discover_2026, err_text, ok_text, text};
use rmcp::service::ClientServiceExt;
use serde_json::{Value, json};

/// The shared sealing key of approval states (at least 32 characters).
const APPROVAL_KEY: &str = "replicas-test-approval-key-0123456789";

/// A free port on 127.0.0.1 (free when asked; the servers bind it just after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

/// Kill a child at once, if it still runs.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether something accepts connections on `port`.
fn listens(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Wait (at most 10s) until `port` accepts connections, or panic with `what`.
fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listens(port) {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `redis-server` of this test alone, which the test may stop and start again on the same
/// port (without persistence: it comes back empty).
struct Redis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Redis {
        let mut redis = Redis {
            port: free_port(),
            dir: tempfile::tempdir().expect("temporary directory"),
            child: None,
        };
        redis.resume();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Start it (again) on its port.
    fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run redis-server (apt-get install redis-server; .ci/run installs it)");
        self.child = Some(child);
        wait_listening(self.port, "redis-server");
    }

    /// Kill it (SIGKILL): the replicas lose their store.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child);
        }
        assert!(!listens(self.port), "redis-server still listens");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A real haproxy on 127.0.0.1 spreading requests round robin over `backends`, checking
/// them every 200ms.
struct Haproxy {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    fn start(backends: &[u16]) -> Haproxy {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(n, backend)| {
                format!("    server r{n} 127.0.0.1:{backend} check inter 200ms fall 1 rise 2\n")
            })
            .collect();
        let config = format!(
            "global\n    maxconn 256\n\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 60s\n    \
             timeout server 60s\n    retries 3\n    option redispatch\n\n\
             frontend mcp\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\n\
             backend replicas\n    balance roundrobin\n{servers}"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).expect("write haproxy.cfg");
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run haproxy (apt-get install haproxy; .ci/run installs it)");
        wait_listening(port, "haproxy");
        Haproxy {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
            _dir: dir,
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// The manifest all replicas share: the testbed plugin with `rate` (per principal per tool,
/// `burst` calls at once, then one a minute), `write-file` asking for approval, `read-file`
/// private, an open-world plugin `net` (refused after private data), the limits in `redis`
/// with `on_store_error`, each replica's audit log at `${WARDEN_AUDIT}`.
fn fixture(redis: &Redis, burst: u32, on_store_error: &str) -> Fixture {
    fixture_with(redis, burst, on_store_error, "")
}

/// Same as [`fixture`], with `policy` (TOML keys) in `[plugins.testbed]`. The replicas sign
/// their checkpoints with one key, `audit.key` (its public half in `audit.pub`), each with its
/// own replica id.
fn fixture_with(redis: &Redis, burst: u32, on_store_error: &str, policy: &str) -> Fixture {
    let rate = match burst {
        0 => String::new(),
        burst => format!("rate = {{ per_minute = 1, burst = {burst} }}"),
    };
    let fixture = Fixture::new(&format!(
        r#"
[audit]
path = "${{WARDEN_AUDIT}}"
replica = "${{WARDEN_REPLICA}}"
signing_key = "audit.key"

[limits]
store = "{url}"
on_store_error = "{on_store_error}"

[approval]
key = "{APPROVAL_KEY}"
after_private = "deny"

[plugins.testbed]
component = "{{testbed}}"
dirs = [{{ host = "{{dir}}/out", guest = "/out", mode = "rw" }}]
{rate}
{policy}

[plugins.testbed.tools.write-file]
approval = "ask"

[plugins.testbed.tools.read-file]
data = "private"

[plugins.net]
component = "{{testbed}}"
allow_hosts = ["http://127.0.0.1:9"]
"#,
        url = redis.url(),
    ));
    let (code, public, err) =
        common::warden(&["keygen", "--audit", "audit.key"], fixture.dir.path());
    assert_eq!(code, 0, "{err}");
    let pem_end = "-----END PUBLIC KEY-----";
    let public = &public[..public.find(pem_end).expect("a public key") + pem_end.len()];
    std::fs::write(fixture.path("audit.pub"), public).expect("write audit.pub");
    fixture
}

/// Three replicas of `fixture`'s manifest, replica `n` writing `audit/audit-n.jsonl`.
async fn replicas(fixture: &Fixture) -> Vec<HttpServer> {
    std::fs::create_dir_all(fixture.path("out")).expect("out dir");
    std::fs::create_dir_all(fixture.path("audit")).expect("audit dir");
    let mut servers = Vec::new();
    for n in 0..3 {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["serve", "--manifest"])
            .arg(&fixture.manifest)
            .args(["--http", "127.0.0.1:0"])
            .env("WARDEN_AUDIT", audit_path(fixture, n))
            .env("WARDEN_REPLICA", format!("replica-{n}"))
            .env("WARDEN_LOG", "info,warden=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn warden");
        servers.push(HttpServer::started(child).await);
    }
    servers
}

fn audit_path(fixture: &Fixture, replica: usize) -> PathBuf {
    fixture.path(&format!("audit/audit-{replica}.jsonl"))
}

fn port_of(server: &HttpServer) -> u16 {
    server
        .base
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("port in the server's URL")
}

/// The call records (not start records) of replica `n`'s log.
fn records(fixture: &Fixture, replica: usize) -> Vec<Value> {
    let path = audit_path(fixture, replica);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let all = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a whole JSON record"))
        .collect();
    common::calls(all)
}

/// The replicas whose logs hold a `testbed__emit` record with `text`, with its outcome.
fn served(fixture: &Fixture, text: &str) -> Vec<(usize, String)> {
    (0..3)
        .flat_map(|n| {
            records(fixture, n)
                .into_iter()
                .filter(|r| r["tool"] == "testbed__emit" && r["args"]["text"] == text)
                .map(move |r| (n, r["outcome"].as_str().unwrap_or_default().to_owned()))
        })
        .collect()
}

/// `warden audit verify --key` accepts the directory of the replicas' logs: every chain holds,
/// every checkpoint is signed by the shared key, and each log is reported under its replica id.
fn verify_all(fixture: &Fixture) {
    let (code, out, err) = common::warden(
        &["audit", "verify", "--key", "audit.pub", "audit"],
        fixture.dir.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let report = format!("{out}{err}");
    for n in 0..3 {
        if audit_path(fixture, n).exists() {
            assert!(report.contains(&format!("replica-{n}")), "{report}");
        }
    }
}

/// One stateless (2026-07-28) JSON-RPC request over HTTP to `url`: the HTTP status and the
/// JSON-RPC response, or `None` when no response came (a dead replica, a 502).
async fn post_2026(
    client: &reqwest::Client,
    url: &str,
    method: &str,
    params: Value,
) -> Option<(u16, Value)> {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "replicas-test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    });
    let name = params["name"].as_str().unwrap_or_default().to_owned();
    let response = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", method)
        .header("Mcp-Name", name)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let body = response.text().await.ok()?;
    let json = body
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some())
        .or_else(|| serde_json::from_str(&body).ok())?;
    Some((status, json))
}

/// Call `tool` with `{"text": text}` through `url` (a tool whose argument is not `text`
/// refuses it as invalid, after its rate limit): the tool result, or `None` without one.
async fn emit(client: &reqwest::Client, url: &str, tool: &str, text: &str) -> Option<Value> {
    let params = json!({"name": tool, "arguments": {"text": text}});
    let (_, response) = post_2026(client, url, "tools/call", params).await?;
    response.get("result").cloned()
}

fn result_text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn is_error(result: &Value) -> bool {
    result["isError"] == true
}

#[tokio::test]
async fn three_replicas_behind_a_balancer_enforce_one_rate_limit() {
    let redis = Redis::start();
    let fixture = fixture(&redis, 6, "closed");
    let servers = replicas(&fixture).await;
    let haproxy = Haproxy::start(&servers.iter().map(port_of).collect::<Vec<_>>());
    // rmcp's client, stateless era, through the balancer.
    let config =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            haproxy.url.as_str(),
        );
    let client = Recorder::default()
        .serve_with_lifecycle(
            rmcp::transport::StreamableHttpClientTransport::from_config(config),
            discover_2026(),
        )
        .await
        .expect("connect through haproxy");
    let call = |n: usize| {
        let client = &client;
        async move {
            client
                .call_tool(
                    rmcp::model::CallToolRequestParams::new("testbed__emit")
                        .with_arguments(common::object(json!({"text": format!("burst-{n}")}))),
                )
                .await
                .expect("tools/call")
        }
    };
    // The burst of 6 passes, spread over the replicas; the 7th is refused, whichever
    // replica gets it: each replica alone would have allowed 6.
    for n in 0..6 {
        let result = call(n).await;
        assert_eq!(ok_text(&result), format!("burst-{n}"));
    }
    let refused = call(6).await;
    assert!(
        err_text(&refused).contains("rate limit reached for this tool"),
        "{}",
        text(&refused)
    );
    let mut by_replica = [0usize; 3];
    for n in 0..7 {
        let served = served(&fixture, &format!("burst-{n}"));
        assert_eq!(served.len(), 1, "burst-{n} in exactly one log: {served:?}");
        let (replica, outcome) = &served[0];
        by_replica[*replica] += 1;
        let expected = if n < 6 { "ok" } else { "rate-limited" };
        assert_eq!(outcome, expected, "burst-{n}");
    }
    assert!(
        by_replica.iter().filter(|&&count| count > 0).count() >= 2,
        "the calls were spread over the replicas: {by_replica:?}"
    );
    verify_all(&fixture);
    drop(client);
}

#[tokio::test]
async fn an_approval_state_issued_by_one_replica_is_accepted_by_another() {
    let redis = Redis::start();
    let fixture = fixture(&redis, 0, "closed");
    let servers = replicas(&fixture).await;
    let http = reqwest::Client::new();
    let call = json!({
        "name": "testbed__write_file",
        "arguments": {"path": "/out/approved.txt", "content": "yes"},
    });
    // Asked by replica 0...
    let (_, asked) = post_2026(&http, &servers[0].url, "tools/call", call.clone())
        .await
        .expect("replica 0 answers");
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let state = asked["result"]["requestState"]
        .as_str()
        .expect("a requestState")
        .to_owned();
    assert!(
        asked["result"]["inputRequests"]["approval"].is_object(),
        "{asked}"
    );
    // ...answered on replica 1, which opens the state sealed with the shared key.
    let mut retry = call.clone();
    retry["requestState"] = json!(state);
    retry["inputResponses"] = json!({"approval": {"action": "accept", "content": {}}});
    let (_, ran) = post_2026(&http, &servers[1].url, "tools/call", retry.clone())
        .await
        .expect("replica 1 answers");
    assert!(ran["result"]["isError"] != true, "{ran}");
    assert_ne!(ran["result"]["resultType"], "input_required", "{ran}");
    assert_eq!(
        std::fs::read_to_string(fixture.path("out/approved.txt")).expect("the call ran"),
        "yes"
    );
    let outcomes = |n: usize| -> Vec<String> {
        records(&fixture, n)
            .iter()
            .filter(|r| r["tool"] == "testbed__write_file")
            .map(|r| r["outcome"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(outcomes(0), ["input-required"]);
    assert_eq!(outcomes(1), ["ok"]);
    // The same state replayed on replica 2 is refused: states are spent in the shared store.
    let (_, replayed) = post_2026(&http, &servers[2].url, "tools/call", retry)
        .await
        .expect("replica 2 answers");
    let message = replayed["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("invalid or expired requestState"),
        "{replayed}"
    );
    assert_eq!(outcomes(2), ["approval-invalid"]);
    let refused = records(&fixture, 2);
    let detail = refused[0]["error"].as_str().unwrap_or_default();
    assert!(
        detail.contains("used already (on another replica)"),
        "{detail}"
    );
    assert_eq!(
        std::fs::read_to_string(fixture.path("out/approved.txt")).expect("still there"),
        "yes"
    );
    verify_all(&fixture);
}

#[tokio::test]
async fn killing_a_replica_mid_load_loses_no_recorded_call() {
    const CALLS: usize = 200;
    const WORKERS: usize = 8;
    let redis = Redis::start();
    let fixture = fixture(&redis, 0, "closed");
    let mut servers = replicas(&fixture).await;
    let haproxy = Haproxy::start(&servers.iter().map(port_of).collect::<Vec<_>>());
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (http, url) = (http.clone(), haproxy.url.clone());
        let (next, answered) = (next.clone(), answered.clone());
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= CALLS {
                    return seen;
                }
                let text = format!("load-{n}");
                let result = emit(&http, &url, "testbed__emit", &text).await;
                if let Some(result) = &result {
                    answered.fetch_add(1, Ordering::Relaxed);
                    assert!(!is_error(result), "{result}");
                    assert_eq!(result_text(result), text);
                }
                seen.push((text, result.is_some()));
            }
        }));
    }
    // Mid-load: SIGKILL replica 1.
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered.load(Ordering::Relaxed) < CALLS / 4 {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    servers[1].child.start_kill().expect("SIGKILL replica 1");
    let _ = servers[1].child.wait().await;
    let mut returned = Vec::new();
    let mut lost = 0;
    for worker in workers {
        for (text, got) in worker.await.expect("worker") {
            if got {
                returned.push(text);
            } else {
                lost += 1;
            }
        }
    }
    assert_eq!(returned.len() + lost, CALLS);
    // Only calls in flight on the killed replica fail (about WORKERS / 3 of them); the bound
    // is generous, the guarantee is below.
    assert!(
        returned.len() >= CALLS / 2,
        "the replicas left served the rest: {lost} failed"
    );
    // Every call that got a response is in exactly one replica's log, as a success.
    for text in &returned {
        let served = served(&fixture, text);
        assert_eq!(served.len(), 1, "{text}: {served:?}");
        assert_eq!(served[0].1, "ok", "{text}");
    }
    let per_replica: Vec<usize> = (0..3).map(|n| records(&fixture, n).len()).collect();
    eprintln!(
        "{CALLS} calls, {} answered, {lost} cut by the kill; records per replica: {per_replica:?}",
        returned.len()
    );
    assert!(per_replica[0] > 0 && per_replica[2] > 0, "{per_replica:?}");
    verify_all(&fixture);
}

/// Call `tool` directly on each replica until its store answers again (bounded): with
/// `closed`, until the call is no longer refused for the store; with `local`, until the
/// replica logs that the store is back.
async fn wait_store_back(servers: &[HttpServer], tool: &str, on_store_error: &str) {
    let http = reqwest::Client::new();
    for (n, server) in servers.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let result = emit(&http, &server.url, tool, "warm-up").await;
            let back = match on_store_error {
                "closed" => result.is_some_and(|r| !result_text(&r).contains("cannot be checked")),
                _ => server.stderr().contains("reachable again"),
            };
            if back {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replica {n} never reached the store again:\n{}",
                server.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Through the balancer, the burst of `tool` passes the rate limit and the next call is
/// refused by it.
async fn shared_burst(url: &str, tool: &str, burst: usize, tag: &str) {
    let http = reqwest::Client::new();
    for n in 0..burst {
        let result = emit(&http, url, tool, &format!("{tag}-{n}"))
            .await
            .expect("a result");
        assert!(
            !result_text(&result).contains("rate limit"),
            "{tag}-{n}: {result}"
        );
        assert!(
            !result_text(&result).contains("cannot be checked"),
            "{tag}-{n}: {result}"
        );
    }
    let refused = emit(&http, url, tool, &format!("{tag}-over"))
        .await
        .expect("a result");
    assert!(
        result_text(&refused).contains("rate limit reached"),
        "{tag}: {refused}"
    );
}

#[tokio::test]
async fn with_the_store_down_closed_refuses_and_then_the_limit_is_shared_again() {
    let mut redis = Redis::start();
    let fixture = fixture(&redis, 3, "closed");
    // The replicas start with the store down: they connect at the first call.
    redis.stop();
    let servers = replicas(&fixture).await;
    let haproxy = Haproxy::start(&servers.iter().map(port_of).collect::<Vec<_>>());
    let http = reqwest::Client::new();
    for n in 0..3 {
        let text = format!("down-{n}");
        let refused = emit(&http, &haproxy.url, "testbed__emit", &text)
            .await
            .expect("a result");
        assert!(is_error(&refused), "{refused}");
        let message = result_text(&refused);
        assert!(
            message.contains("limits are shared by the server's replicas and cannot be checked"),
            "{message}"
        );
        assert!(
            !message.contains("redis") && !message.contains("127.0.0.1"),
            "no internals: {message}"
        );
        let served = served(&fixture, &text);
        assert_eq!(served.len(), 1, "{text}: {served:?}");
        assert_eq!(served[0].1, "unavailable", "audited as refused");
    }
    redis.resume();
    wait_store_back(&servers, "testbed__echo_char", "closed").await;
    shared_burst(&haproxy.url, "testbed__emit", 3, "back").await;
    verify_all(&fixture);
}

#[tokio::test]
async fn with_the_store_down_local_serves_and_then_the_limit_is_shared_again() {
    let mut redis = Redis::start();
    let fixture = fixture(&redis, 2, "local");
    let servers = replicas(&fixture).await;
    let haproxy = Haproxy::start(&servers.iter().map(port_of).collect::<Vec<_>>());
    let http = reqwest::Client::new();
    redis.stop();
    // Each replica counts alone: more than the shared burst of 2 pass.
    let mut passed = 0;
    for n in 0..6 {
        let result = emit(&http, &haproxy.url, "testbed__emit", &format!("local-{n}"))
            .await
            .expect("a result");
        if !is_error(&result) {
            passed += 1;
        }
    }
    assert!(passed > 2, "served by local limits: {passed} of 6 passed");
    assert!(
        servers
            .iter()
            .all(|s| s.stderr().matches("shared limit store unreachable").count() == 1),
        "each replica logs the outage once"
    );
    redis.resume();
    wait_store_back(&servers, "testbed__echo_char", "local").await;
    shared_burst(&haproxy.url, "testbed__echo_option", 2, "back").await;
    verify_all(&fixture);
}

#[tokio::test]
async fn a_plugins_concurrency_is_counted_across_replicas_and_given_back() {
    let redis = Redis::start();
    let fixture = fixture_with(&redis, 0, "closed", "concurrency = 1\nqueue = 0");
    let servers = replicas(&fixture).await;
    let leases = || async {
        let mut connection = redis::Client::open(redis.url())
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        redis::cmd("ZCARD")
            .arg("warden:limits:leases:testbed")
            .query_async::<u64>(&mut connection)
            .await
            .expect("ZCARD")
    };
    let pause = json!({"name": "testbed__pause", "arguments": {"steps": 1, "millis": 3000}});
    // A long call on replica 0 holds the plugin's one slot...
    let (url, params) = (servers[0].url.clone(), pause.clone());
    let long = tokio::spawn(async move {
        post_2026(&reqwest::Client::new(), &url, "tools/call", params).await
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while leases().await == 0 {
        assert!(
            Instant::now() < deadline,
            "the long call never took its lease"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...so replica 1, idle itself, refuses another at once (no queue).
    let http = reqwest::Client::new();
    let (_, busy) = post_2026(&http, &servers[1].url, "tools/call", pause.clone())
        .await
        .expect("replica 1 answers");
    assert!(
        result_text(&busy["result"]).contains("the tool is busy with other calls"),
        "{busy}"
    );
    let (_, done) = long.await.expect("long call").expect("replica 0 answers");
    assert!(!is_error(&done["result"]), "{done}");
    // Given back at the end of the call: replica 2 gets the slot.
    let deadline = Instant::now() + Duration::from_secs(30);
    while leases().await > 0 {
        assert!(Instant::now() < deadline, "the lease was never given back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let quick = json!({"name": "testbed__pause", "arguments": {"steps": 1, "millis": 1}});
    let (_, ran) = post_2026(&http, &servers[2].url, "tools/call", quick)
        .await
        .expect("replica 2 answers");
    assert!(!is_error(&ran["result"]), "{ran}");
    let outcomes: Vec<Vec<String>> = (0..3)
        .map(|n| {
            records(&fixture, n)
                .iter()
                .map(|r| r["outcome"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(outcomes, [["ok"], ["rate-limited"], ["ok"]]);
    verify_all(&fixture);
}

#[test]
fn check_warns_when_replicas_share_limits_but_seal_with_per_process_keys() {
    let check = |fixture: &Fixture| -> Value {
        let (code, stdout, stderr) = common::warden(
            &[
                "check",
                "--json",
                "--manifest",
                &fixture.manifest.display().to_string(),
            ],
            fixture.dir.path(),
        );
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str(&stdout).expect("check --json")
    };
    let body = |approval: &str| {
        format!(
            "[limits]\nstore = \"redis://127.0.0.1:1/0\"\n{approval}\n\
             [plugins.testbed]\ncomponent = \"{{testbed}}\"\n"
        )
    };
    let per_process = Fixture::new(&body(""));
    let report = check(&per_process);
    assert!(
        common::warning_codes(&report).contains(&"replicas-per-process-key"),
        "{report}"
    );
    let shared = Fixture::new(&body(&format!("[approval]\nkey = \"{APPROVAL_KEY}\"")));
    let report = check(&shared);
    assert!(
        !common::warning_codes(&report).contains(&"replicas-per-process-key"),
        "{report}"
    );
}

#[tokio::test]
async fn the_flow_rule_holds_across_replicas() {
    let redis = Redis::start();
    let fixture = fixture(&redis, 0, "closed");
    std::fs::create_dir_all(fixture.path("out")).expect("out dir");
    std::fs::write(fixture.path("out/secret.txt"), "private words").expect("write");
    let servers = replicas(&fixture).await;
    let http = reqwest::Client::new();
    let get = json!({"name": "net__http_get", "arguments": {"url": "http://127.0.0.1:9/"}});
    let flow_refusal = "can send data read earlier from testbed__read_file to the internet";
    // Before any private read, the open-world call is not refused by the flow rule.
    let (_, before) = post_2026(&http, &servers[1].url, "tools/call", get.clone())
        .await
        .expect("replica 1 answers");
    assert!(
        !result_text(&before["result"]).contains(flow_refusal),
        "{before}"
    );
    // Private output read on replica 0...
    let read = json!({"name": "testbed__read_file", "arguments": {"path": "/out/secret.txt"}});
    let (_, read) = post_2026(&http, &servers[0].url, "tools/call", read)
        .await
        .expect("replica 0 answers");
    assert_eq!(result_text(&read["result"]), "private words", "{read}");
    // ...cannot leave through replica 2.
    let (_, after) = post_2026(&http, &servers[2].url, "tools/call", get)
        .await
        .expect("replica 2 answers");
    assert!(is_error(&after["result"]), "{after}");
    assert!(
        result_text(&after["result"]).contains(flow_refusal),
        "{after}"
    );
    let denied: Vec<Value> = records(&fixture, 2)
        .into_iter()
        .filter(|r| r["tool"] == "net__http_get")
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["outcome"], "denied");
    verify_all(&fixture);
}
