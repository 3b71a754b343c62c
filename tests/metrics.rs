//! Prometheus metrics (`[metrics]`), end to end: the real binary over HTTP and stdio, real
//! rmcp clients, `promtool` reading the exposition and a real `prometheus` scraping it.

mod common;

use std::time::{Duration, Instant};

use common::{Fixture, api_key, err_text, ok_text};
use rmcp::model::{CallToolRequestParams, GetPromptRequestParams};
use rmcp::service::ClientLifecycleMode;
use serde_json::json;

const KEY: &str = "wk_metrics_test_key_for_alice_000000000001";

/// The address of the metrics listener in a server's log.
fn metrics_url(log: &str) -> String {
    log.lines()
        .find_map(|line| line.strip_prefix("warden: metrics on "))
        .unwrap_or_else(|| panic!("no metrics listener in the log:\n{log}"))
        .to_owned()
}

/// The URL of the metrics listener of the stdio server `client` drives, once it listens.
async fn listener_url(client: &common::Client) -> String {
    client
        .wait_until("the metrics listener", |c| {
            c.stderr().contains("warden: metrics on ")
        })
        .await;
    metrics_url(&client.stderr())
}

/// GET `url` with `headers`: the status and the body.
async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The value of the sample `series` (name and labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split(' ').next()?.parse().ok()
    })
}

/// Scrape `url` until `series` has `value` (at most 30 s); the scrape that showed it.
async fn wait_for(url: &str, series: &str, value: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, text) = get(url, &[]).await;
        if sample(&text, series) == Some(value) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never reached {value}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn calls(plugin: &str, tool: &str, method: &str, outcome: &str) -> String {
    format!(
        r#"warden_calls_total{{plugin="{plugin}",tool="{tool}",method="{method}",outcome="{outcome}"}}"#
    )
}

/// `promtool check metrics` on `text`: its exit code and output.
fn promtool(text: &str) -> (i32, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), said)
}

fn http_manifest(extra: &str) -> String {
    format!(
        r#"
[audit]
path = "{{dir}}/audit.jsonl"

[metrics]
listen = "127.0.0.1:0"
on_http = true
{extra}

{}

[plugins.testbed]
component = "{{testbed}}"
env = {{ API_TOKEN = "tok-7f3a9c2e51b8" }}
rate = {{ per_minute = 1, burst = 2 }}

[plugins.conformance]
component = "{{conformance}}"
"#,
        api_key("alice", &["staff"], KEY)
    )
}

#[tokio::test]
async fn an_http_scrape_shows_exactly_the_calls_refusals_and_redactions() {
    let fixture = Fixture::new(&http_manifest(""));
    let server = fixture.http_server(&[]).await;
    let client = server
        .connect(
            server.client_config(Some(KEY)),
            ClientLifecycleMode::Initialize,
        )
        .await
        .expect("connect with the key");
    let call = |tool: &str, arguments: serde_json::Value| {
        let serde_json::Value::Object(arguments) = arguments else {
            unreachable!()
        };
        client.call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
    };
    // Two calls within the burst, a third refused by the rate limit.
    for text in ["one", "two"] {
        let result = call("testbed__emit", json!({"text": text}))
            .await
            .expect("call");
        assert_eq!(ok_text(&result), text);
    }
    let limited = call("testbed__emit", json!({"text": "three"}))
        .await
        .expect("call");
    assert!(err_text(&limited).starts_with("rate limit reached"));
    // A tool error.
    let failed = call("testbed__fail", json!({"message": "no"}))
        .await
        .expect("call");
    assert_eq!(err_text(&failed), "no");
    // Redactions: one of each detector the testbed leaks.
    let leaked = call("testbed__leak", json!({"variable": "API_TOKEN"}))
        .await
        .expect("call");
    assert!(!ok_text(&leaked).contains("jane.doe@example.com"));
    // A prompt.
    client
        .get_prompt(GetPromptRequestParams::new(
            "conformance__test_simple_prompt",
        ))
        .await
        .expect("prompts/get");
    // A resource read and a completion: counted under their plugin, never their URI.
    client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "test://static-text",
        ))
        .await
        .expect("resources/read");
    client
        .complete(rmcp::model::CompleteRequestParams::new(
            rmcp::model::Reference::for_prompt("conformance__test_prompt_with_arguments"),
            rmcp::model::ArgumentInfo::new("arg1", "t"),
        ))
        .await
        .expect("completion/complete");
    // An unauthenticated request: refused before the gate.
    let refused = reqwest::Client::new()
        .post(&server.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status().as_u16(), 401);

    let url = metrics_url(&server.stderr());
    let (status, text) = get(&url, &[]).await;
    assert_eq!(status, 200, "{text}");
    let emit = |outcome| {
        sample(
            &text,
            &calls("testbed", "testbed__emit", "tools/call", outcome),
        )
    };
    assert_eq!(emit("ok"), Some(2.0), "{text}");
    assert_eq!(emit("rate-limited"), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            &calls("testbed", "testbed__fail", "tools/call", "tool-error")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &calls("testbed", "testbed__leak", "tools/call", "ok")
        ),
        Some(1.0)
    );
    let prompt = calls(
        "conformance",
        "conformance__test_simple_prompt",
        "prompts/get",
        "ok",
    );
    assert_eq!(sample(&text, &prompt), Some(1.0), "{text}");
    let read = calls("conformance", "-", "resources/read", "ok");
    assert_eq!(sample(&text, &read), Some(1.0), "{text}");
    let completed = calls("conformance", "-", "completion/complete", "ok");
    assert_eq!(sample(&text, &completed), Some(1.0), "{text}");
    assert!(!text.contains("test://"), "{text}");
    for kind in [
        "email",
        "credit-card",
        "aws-key",
        "jwt",
        "private-key",
        "secrets",
    ] {
        let series = format!(r#"warden_redactions_total{{plugin="testbed",kind="{kind}"}}"#);
        assert_eq!(sample(&text, &series), Some(1.0), "{series}\n{text}");
    }
    let refusals = |reason: &str| {
        sample(
            &text,
            &format!(r#"warden_refusals_total{{reason="{reason}"}}"#),
        )
    };
    assert_eq!(refusals("rate"), Some(1.0), "{text}");
    assert_eq!(refusals("auth"), Some(1.0), "{text}");
    assert_eq!(refusals("role"), Some(0.0), "{text}");
    // Every call's latency, and the fuel and bytes of those that ran.
    assert_eq!(
        sample(
            &text,
            r#"warden_call_duration_seconds_count{plugin="testbed",tool="testbed__emit",method="tools/call"}"#
        ),
        Some(3.0),
        "{text}"
    );
    let fuel = sample(
        &text,
        r#"warden_fuel_consumed_total{plugin="testbed",tool="testbed__emit",method="tools/call"}"#,
    );
    assert!(fuel.is_some_and(|fuel| fuel > 0.0), "{text}");
    let bytes = sample(
        &text,
        r#"warden_output_bytes_total{plugin="testbed",tool="testbed__emit",method="tools/call"}"#,
    );
    assert!(bytes.is_some_and(|bytes| bytes > 0.0), "{text}");
    assert_eq!(
        sample(&text, r#"warden_sessions_open{transport="http"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"warden_calls_in_flight{plugin="testbed"}"#),
        Some(0.0)
    );
    // Every record written was timed: the start record and 7 requests.
    let writes = sample(&text, "warden_audit_write_duration_seconds_count");
    assert!(writes.is_some_and(|n| n >= 8.0), "{text}");
    assert_eq!(
        sample(&text, "warden_audit_write_failures_total"),
        Some(0.0)
    );
    let loaded = sample(&text, "warden_compile_cache_hits_total").unwrap_or(0.0)
        + sample(&text, "warden_compile_cache_misses_total").unwrap_or(0.0);
    assert!(loaded >= 2.0, "{text}");
    // No principal's name, unless the operator opts in.
    assert!(!text.contains("alice"), "{text}");
    assert!(!text.contains("principal"), "{text}");

    // promtool reads the exposition without a complaint.
    let (code, said) = promtool(&text);
    assert_eq!(code, 0, "promtool check metrics:\n{said}\n{text}");

    // OpenMetrics for a scraper that asks for it.
    let (status, open) = get(
        &url,
        &[("accept", "application/openmetrics-text; version=1.0.0")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(open.ends_with("# EOF\n"), "{open}");

    // On the HTTP listener: behind the authenticator.
    let (status, body) = get(&format!("{}/metrics", server.base), &[]).await;
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("warden_calls_total"));
    let (status, body) = get(
        &format!("{}/metrics", server.base),
        &[("authorization", &format!("Bearer {KEY}"))],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        sample(
            &body,
            &calls("testbed", "testbed__emit", "tools/call", "ok")
        ),
        Some(2.0)
    );
    // The refused scrape is an auth refusal too, and in the audit log.
    assert_eq!(
        sample(&body, r#"warden_refusals_total{reason="auth"}"#),
        Some(2.0),
        "{body}"
    );
    let audit = fixture.audit_log("audit.jsonl");
    assert!(
        audit
            .iter()
            .any(|r| r["tool"] == "GET /metrics" && r["outcome"] == "denied"),
        "{audit:?}"
    );
    let _ = client.cancel().await;
}

#[tokio::test]
async fn over_stdio_the_metrics_listener_serves_metrics_and_nothing_else() {
    let fixture = Fixture::new(
        r#"
[server]
principal = "ann"

[metrics]
listen = "127.0.0.1:0"
principals = true

[plugins.testbed]
component = "{testbed}"
"#,
    );
    let client = fixture.client().await;
    assert_eq!(
        ok_text(&client.call("testbed__emit", json!({"text": "x"})).await),
        "x"
    );
    let url = listener_url(&client).await;
    let (status, text) = get(&url, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        sample(
            &text,
            &calls("testbed", "testbed__emit", "tools/call", "ok")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"warden_sessions_open{transport="stdio"}"#),
        Some(1.0)
    );
    // Opted in: the principal's name is counted.
    assert_eq!(
        sample(
            &text,
            r#"warden_principal_calls_total{principal="ann",outcome="ok"}"#
        ),
        Some(1.0),
        "{text}"
    );

    // Nothing but GET /metrics.
    let base = url.trim_end_matches("/metrics");
    for path in [
        "/",
        "/mcp",
        "/healthz",
        "/readyz",
        "/approvals",
        "/metrics/",
        "/metrics/x",
        "/metrics.txt",
    ] {
        let (status, body) = get(&format!("{base}{path}"), &[]).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("warden_"), "{path}: {body}");
    }
    let posted = reqwest::Client::new()
        .post(&url)
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(posted.status().as_u16(), 405);

    // The counts survive a reload.
    client.signal("HUP");
    client
        .wait_until("the reload", |c| c.stderr().contains("reloaded"))
        .await;
    assert_eq!(
        ok_text(&client.call("testbed__emit", json!({"text": "y"})).await),
        "y"
    );
    let (_, text) = get(&url, &[]).await;
    assert_eq!(
        sample(
            &text,
            &calls("testbed", "testbed__emit", "tools/call", "ok")
        ),
        Some(2.0),
        "{text}"
    );
    client.close().await;
}

#[tokio::test]
async fn a_flood_of_unknown_tool_names_adds_no_series() {
    let fixture = Fixture::new(
        r#"
[metrics]
listen = "127.0.0.1:0"

[plugins.testbed]
component = "{testbed}"
"#,
    );
    let client = fixture.client().await;
    let url = listener_url(&client).await;
    let (_, before) = get(&url, &[]).await;
    for i in 0..200 {
        let name = format!("made_up_tool_{i}");
        let answer = client
            .service
            .call_tool(CallToolRequestParams::new(name))
            .await;
        assert!(answer.is_err(), "an unknown tool is a protocol error");
    }
    let (_, after) = get(&url, &[]).await;
    assert!(!after.contains("made_up_tool"), "{after}");
    assert_eq!(
        sample(&after, &calls("-", "-", "tools/call", "invalid")),
        Some(200.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, r#"warden_refusals_total{reason="unknown"}"#),
        Some(200.0)
    );
    let series = |text: &str| text.lines().filter(|l| !l.starts_with('#')).count();
    // The flood added one call series, one latency histogram (14 lines) and its fuel and
    // bytes counters: a fixed number, whatever the names.
    assert!(
        series(&after) <= series(&before) + 20,
        "{} -> {} lines:\n{after}",
        series(&before),
        series(&after)
    );
    client.close().await;
}

#[tokio::test]
async fn a_real_prometheus_scrapes_warden() {
    let fixture = Fixture::new(
        r#"
[metrics]
listen = "127.0.0.1:0"

[plugins.testbed]
component = "{testbed}"
"#,
    );
    let client = fixture.client().await;
    assert_eq!(
        ok_text(&client.call("testbed__emit", json!({"text": "x"})).await),
        "x"
    );
    let url = listener_url(&client).await;
    let target = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    let config = fixture.path("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: warden\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("write prometheus.yml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut prometheus = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            fixture.path("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus (Debian package `prometheus`)");
    let query = format!("http://127.0.0.1:{port}/api/v1/query?query=warden_calls_total");
    let deadline = Instant::now() + Duration::from_secs(90);
    let found = loop {
        if let Ok(response) = reqwest::get(&query).await
            && let Ok(body) = response.json::<serde_json::Value>().await
        {
            let results = body["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if let Some(series) = results
                .iter()
                .find(|r| r["metric"]["tool"] == "testbed__emit" && r["metric"]["outcome"] == "ok")
            {
                break series.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not scrape warden_calls_total within 90s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(found["metric"]["plugin"], "testbed");
    assert_eq!(found["metric"]["job"], "warden");
    assert_eq!(found["value"][1], "1");
    let _ = prometheus.kill().await;
    client.close().await;
}

#[tokio::test]
async fn refusals_are_counted_by_reason_and_the_queue_and_calls_in_flight_by_plugin() {
    let fixture = Fixture::new(
        r#"
[limits]
max_string = 100

[metrics]
listen = "127.0.0.1:0"

[plugins.testbed]
component = "{testbed}"
concurrency = 1
queue = 1
timeout = "20s"

[plugins.testbed.tools.fail]
approval = "ask"

[plugins.vault]
component = "{testbed}"
roles = ["admin"]
"#,
    );
    let client = fixture.client().await;
    let url = listener_url(&client).await;
    // A role the stdio principal does not hold: the tool looks unknown.
    let denied = client
        .service
        .call_tool(
            CallToolRequestParams::new("vault__emit")
                .with_arguments(common::object(json!({"text": "x"}))),
        )
        .await;
    assert!(denied.is_err(), "{denied:?}");
    // A call a human must approve, from a client that cannot ask one (and no operators).
    let unapproved = client.call("testbed__fail", json!({"message": "x"})).await;
    assert_eq!(unapproved.is_error, Some(true), "{unapproved:?}");
    // An argument over [limits].
    let long = "x".repeat(500);
    let capped = client.call("testbed__emit", json!({ "text": long })).await;
    assert!(
        err_text(&capped).starts_with("invalid arguments"),
        "{capped:?}"
    );

    // One call holds the plugin's only slot for 4s, one waits in its queue, a third is
    // refused.
    let holder = client.call("testbed__pause", json!({"steps": 20, "millis": 200}));
    let others = async {
        wait_for(&url, r#"warden_calls_in_flight{plugin="testbed"}"#, 1.0).await;
        // The holder is past the gate's lookup; give it the moment to take the slot.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let queued = client.call("testbed__emit", json!({"text": "queued"}));
        let refused = async {
            let seen = wait_for(&url, r#"warden_queue_depth{plugin="testbed"}"#, 1.0).await;
            let busy = client.call("testbed__emit", json!({"text": "busy"})).await;
            (seen, busy)
        };
        tokio::join!(queued, refused)
    };
    let (paused, (queued, (seen, busy))) = tokio::join!(holder, others);
    assert_eq!(ok_text(&paused), "20");
    assert_eq!(ok_text(&queued), "queued");
    assert_eq!(
        sample(&seen, r#"warden_calls_in_flight{plugin="testbed"}"#),
        Some(2.0),
        "{seen}"
    );
    assert!(err_text(&busy).starts_with("the tool is busy"), "{busy:?}");

    let (_, text) = get(&url, &[]).await;
    let refusals = |reason: &str| {
        sample(
            &text,
            &format!(r#"warden_refusals_total{{reason="{reason}"}}"#),
        )
    };
    assert_eq!(refusals("role"), Some(1.0), "{text}");
    assert_eq!(refusals("caps"), Some(1.0), "{text}");
    assert_eq!(refusals("concurrency"), Some(1.0), "{text}");
    assert_eq!(refusals("approval"), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            &calls(
                "testbed",
                "testbed__fail",
                "tools/call",
                "approval-unavailable"
            )
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(refusals("auth"), Some(0.0), "{text}");
    assert_eq!(
        sample(
            &text,
            &calls("vault", "vault__emit", "tools/call", "denied")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &calls("testbed", "testbed__emit", "tools/call", "ok")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"warden_queue_depth{plugin="testbed"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, r#"warden_calls_in_flight{plugin="testbed"}"#),
        Some(0.0)
    );
    client.close().await;
}

#[tokio::test]
async fn with_principals_on_only_authenticated_names_are_counted() {
    let fixture = Fixture::new(&http_manifest("principals = true"));
    let server = fixture.http_server(&[]).await;
    // Refused credentials: whatever name they claim is not counted.
    for key in ["wk_claimed_mallory_0000000000000000000001", "mallory"] {
        let refused = reqwest::Client::new()
            .post(&server.url)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
            .send()
            .await
            .expect("POST");
        assert_eq!(refused.status().as_u16(), 401);
    }
    let client = server
        .connect(server.client_config(Some(KEY)), common::discover_2026())
        .await
        .expect("connect with the key");
    let result = client
        .call_tool(
            CallToolRequestParams::new("testbed__emit")
                .with_arguments(common::object(json!({"text": "x"}))),
        )
        .await
        .expect("call");
    assert_eq!(ok_text(&result), "x");
    let (_, text) = get(&metrics_url(&server.stderr()), &[]).await;
    assert_eq!(
        sample(
            &text,
            r#"warden_principal_calls_total{principal="alice",outcome="ok"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains("mallory"), "{text}");
    let named: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("warden_principal_calls_total{"))
        .collect();
    assert!(
        named
            .iter()
            .all(|line| line.contains(r#"principal="alice""#)),
        "{named:?}"
    );
    assert_eq!(
        sample(&text, r#"warden_refusals_total{reason="auth"}"#),
        Some(2.0),
        "{text}"
    );
    let _ = client.cancel().await;
}
