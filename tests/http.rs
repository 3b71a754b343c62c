//! MCP over Streamable HTTP, end to end: the real `warden serve --http` on 127.0.0.1, rmcp's
//! streamable-HTTP client and raw HTTP requests (for statuses and headers), real components,
//! and the audit log. Also a second, independent client: the Python `mcp` package.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Fixture, HttpServer, discover_2026, ok_text, run_python, text};
use rmcp::model::CallToolRequestParams;
use rmcp::service::ClientLifecycleMode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Keys of the tests' manifests (test-only values).
const READER_KEY: &str = "wdn_test-reader-key-0123456789abcdefghijklmnopq";
const ADMIN_KEY: &str = "wdn_test-admin-key-0123456789abcdefghijklmnopqr";
/// A key whose entry was removed from the manifest.
const REVOKED_KEY: &str = "wdn_test-revoked-key-0123456789abcdefghijklmnop";

fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A manifest with an audit log, the testbed open to everyone (`testbed__*`, with a writable
/// `/out`), a second testbed only for `admin` (`vault__*`), and two API keys.
fn keyed_fixture() -> Fixture {
    let fixture = Fixture::new(&format!(
        r#"
[audit]
path = "{{dir}}/audit/audit.jsonl"

[plugins.testbed]
component = "{{testbed}}"
dirs = [{{ host = "{{dir}}/out", guest = "/out", mode = "rw" }}]

[plugins.vault]
component = "{{testbed}}"
roles = ["admin"]

[[auth.api_keys]]
principal = "reader-bot"
roles = ["reader"]
sha256 = "{}"

[[auth.api_keys]]
principal = "admin-bot"
roles = ["admin"]
sha256 = "{}"
"#,
        digest(READER_KEY),
        digest(ADMIN_KEY)
    ));
    std::fs::create_dir(fixture.path("out")).expect("mkdir out");
    fixture
}

/// A JSON-RPC `initialize` request body (2025-11-25).
fn initialize_body() -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": { "name": "raw", "version": "0" }
        }
    })
}

/// POST `body` to the MCP endpoint with `headers`.
async fn post(server: &HttpServer, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(&server.url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("HTTP request")
}

fn names(tools: &[rmcp::model::Tool]) -> Vec<String> {
    let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    names
}

// --- Both protocol eras -------------------------------------------------------------------------

#[tokio::test]
async fn rmcp_client_lists_and_calls_tools_in_both_eras() {
    let fixture = Fixture::new(
        "[server]\nprincipal = \"me\"\n\n[audit]\npath = \"{dir}/audit/audit.jsonl\"\n\n\
         [plugins.testbed]\ncomponent = \"{testbed}\"\n",
    );
    let server = fixture.http_server(&[]).await;
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    for (era, lifecycle) in [
        ("2025-11-25", ClientLifecycleMode::Initialize),
        ("2026-07-28", discover_2026()),
    ] {
        let client = server
            .connect(server.client_config(None), lifecycle)
            .await
            .unwrap_or_else(|e| panic!("{era}: connect: {e}\n{}", server.stderr()));
        let tools = client.list_all_tools().await.expect("tools/list");
        assert!(
            names(&tools).contains(&"testbed__emit".to_owned()),
            "{era}: {:?}",
            names(&tools)
        );
        let result = client
            .call_tool(
                CallToolRequestParams::new("testbed__emit")
                    .with_arguments(common::object(json!({ "text": era }))),
            )
            .await
            .expect("tools/call");
        assert_eq!(ok_text(&result), era);
        // Neither prompts nor resources are declared: their methods do not exist.
        let prompts = client.list_prompts(None).await.expect_err("no prompts");
        assert!(prompts.to_string().contains("-32601"), "{era}: {prompts}");
        let resources = client.list_resources(None).await.expect_err("no resources");
        assert!(
            resources.to_string().contains("-32601"),
            "{era}: {resources}"
        );
        let _ = client.cancel().await;
    }
    // Without [auth], loopback HTTP runs as the local principal, over `http`.
    let records = fixture.audit_log("audit/audit.jsonl");
    let calls: Vec<&Value> = records
        .iter()
        .filter(|r| r["tool"] == "testbed__emit")
        .collect();
    assert_eq!(calls.len(), 2, "{records:#?}");
    for record in calls {
        assert_eq!(record["principal"], "me");
        assert_eq!(record["transport"], "http");
        assert_eq!(record["outcome"], "ok");
    }
}

/// A stateless `tools/call` that warden answers itself, without rmcp's per-request service
/// (`server/http/direct.rs`), gets the reply rmcp gives the same request: the same status,
/// content type and JSON, for a result, a tool error, bad arguments, an unknown tool, a
/// question asked in the reply, a question the client cannot answer and a tool outside the
/// caller's roles. Every one of them is in the audit log, and the API key decides who calls,
/// on both paths.
#[tokio::test]
async fn a_stateless_call_answered_directly_is_answered_as_rmcp_answers_it() {
    let fixture = Fixture::new(&format!(
        "[audit]\npath = \"{{dir}}/audit/audit.jsonl\"\n\n\
         [[auth.api_keys]]\nprincipal = \"ann\"\nsha256 = \"{}\"\n\n\
         [plugins.testbed]\ncomponent = \"{{testbed}}\"\n\n\
         [plugins.vault]\ncomponent = \"{{testbed}}\"\nroles = [\"admin\"]\n",
        digest(READER_KEY)
    ));
    let server = fixture.http_server(&[]).await;
    let form = json!({"type": "object", "properties": {"colour": {"type": "string"}}});
    let plain = json!({});
    let asks = json!({"elicitation": {"form": {}}});
    let cases = [
        ("testbed__emit", json!({"text": "hi"}), &plain),
        ("testbed__fail", json!({"message": "no"}), &plain),
        ("testbed__emit", json!({"text": 3}), &plain),
        ("no_such_tool", json!({}), &plain),
        // A tool this principal's roles do not reach is refused on both paths alike.
        ("vault__emit", json!({"text": "hi"}), &plain),
        (
            "testbed__ask",
            json!({"message": "Pick", "schema": form.to_string()}),
            &asks,
        ),
        (
            "testbed__ask",
            json!({"message": "Pick", "schema": form.to_string()}),
            &plain,
        ),
    ];
    let bearer = format!("Bearer {READER_KEY}");
    for (tool, arguments, capabilities) in &cases {
        let body = json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": capabilities,
                },
                "name": tool, "arguments": arguments,
            },
        });
        let headers = [
            ("authorization", bearer.as_str()),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", *tool),
        ];
        let answered = |response: reqwest::Response| async move {
            let status = response.status();
            let mut headers: Vec<String> = response
                .headers()
                .iter()
                .filter(|(name, _)| *name != "date" && *name != "content-length")
                .map(|(name, value)| format!("{name}: {value:?}"))
                .collect();
            headers.sort();
            let json: Value = response.json().await.expect("a JSON reply");
            (status, headers, common::normalized(json))
        };
        let direct = answered(post(&server, &body, &headers).await).await;
        // A weight in `Accept` is a departure warden leaves to rmcp.
        let mut via_rmcp = headers.to_vec();
        via_rmcp.push(("accept", "application/json;q=1, text/event-stream"));
        let rmcp = answered(
            reqwest::Client::new()
                .post(&server.url)
                .header("content-type", "application/json")
                .headers(
                    via_rmcp
                        .iter()
                        .map(|(n, v)| {
                            (
                                http::HeaderName::from_static(n),
                                http::HeaderValue::from_str(v).expect("header"),
                            )
                        })
                        .collect(),
                )
                .body(body.to_string())
                .send()
                .await
                .expect("HTTP request"),
        )
        .await;
        assert_eq!(direct, rmcp, "{tool} {arguments} {capabilities}");
    }
    let log = server.stderr();
    assert_eq!(
        log.matches("answered without rmcp's service").count(),
        cases.len(),
        "{log}"
    );
    let records = fixture.audit_log("audit/audit.jsonl");
    let calls: Vec<&Value> = records.iter().filter(|r| r["tool"].is_string()).collect();
    assert_eq!(calls.len(), 2 * cases.len(), "{records:#?}");
    assert!(calls.iter().all(|r| r["principal"] == "ann"), "{calls:#?}");
}

// --- API keys -----------------------------------------------------------------------------------

#[tokio::test]
async fn missing_wrong_and_revoked_keys_get_401_an_audit_record_and_run_nothing() {
    let fixture = keyed_fixture();
    let server = fixture.http_server(&[]).await;
    let wrong = "Bearer wdn_not-a-key";
    let revoked = format!("Bearer {REVOKED_KEY}");
    let cases: [(&str, Vec<(&str, &str)>); 5] = [
        ("no credentials", vec![]),
        ("wrong key", vec![("authorization", wrong)]),
        ("revoked key", vec![("authorization", revoked.as_str())]),
        ("wrong X-API-Key", vec![("x-api-key", "wdn_wrong")]),
        ("not bearer", vec![("authorization", "Basic YTpi")]),
    ];
    for (case, headers) in &cases {
        let response = post(&server, &initialize_body(), headers).await;
        assert_eq!(response.status(), 401, "{case}");
        let challenge = common::challenge(&response);
        assert!(
            challenge.starts_with("Bearer realm=\"warden\""),
            "{case}: {challenge}"
        );
        if *case != "no credentials" {
            assert!(challenge.contains("error="), "{case}: {challenge}");
        }
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(body["jsonrpc"], "2.0", "{case}: {body}");
        assert_eq!(body["error"]["message"], "authentication required");
    }
    // rmcp's client with a revoked key cannot even connect.
    let refused = server
        .connect(server.client_config(Some(REVOKED_KEY)), discover_2026())
        .await;
    assert!(refused.is_err(), "a revoked key connected");

    // A valid key writes the file; nothing else ever reached the plugin.
    let client = server
        .connect(server.client_config(Some(READER_KEY)), discover_2026())
        .await
        .expect("a valid key connects");
    let result = client
        .call_tool(
            CallToolRequestParams::new("testbed__write_file").with_arguments(common::object(
                json!({ "path": "/out/proof.txt", "content": "ran" }),
            )),
        )
        .await
        .expect("tools/call");
    ok_text(&result);
    let _ = client.cancel().await;
    let out: Vec<_> = std::fs::read_dir(fixture.path("out"))
        .expect("out")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(out, ["proof.txt"]);

    let records = fixture.audit_log("audit/audit.jsonl");
    let denied: Vec<&Value> = records
        .iter()
        .filter(|r| r["outcome"] == "denied")
        .collect();
    // The raw requests, and at least one of rmcp's with the revoked key.
    assert!(denied.len() > cases.len(), "{records:#?}");
    for record in &denied {
        assert_eq!(record["transport"], "http", "{record}");
        assert_eq!(record["tool"], "POST /mcp", "{record}");
        assert!(record.get("plugin").is_none(), "{record}");
    }
    let principals: Vec<&str> = denied
        .iter()
        .filter_map(|r| r["principal"].as_str())
        .collect();
    assert!(principals.contains(&"anonymous"), "{principals:?}");
    let revoked_fp = format!("key:{}", &digest(REVOKED_KEY)[..8]);
    assert!(principals.contains(&revoked_fp.as_str()), "{principals:?}");
    // No record holds a key.
    let log = std::fs::read_to_string(fixture.path("audit/audit.jsonl")).expect("audit log");
    for key in [REVOKED_KEY, READER_KEY, "wdn_not-a-key", "wdn_wrong"] {
        assert!(!log.contains(key), "the audit log holds {key}");
        assert!(!server.stderr().contains(key), "the server log holds {key}");
    }
    let ok: Vec<&Value> = records.iter().filter(|r| r["outcome"] == "ok").collect();
    assert_eq!(ok.len(), 1, "{records:#?}");
    assert_eq!(ok[0]["principal"], "reader-bot");
}

#[tokio::test]
async fn a_key_with_roles_sees_only_its_tools_and_is_audited_by_name() {
    let fixture = keyed_fixture();
    let server = fixture.http_server(&[]).await;
    let reader = server
        .connect(
            server.client_config(Some(READER_KEY)),
            ClientLifecycleMode::Initialize,
        )
        .await
        .expect("reader connects");
    let reader_tools = names(&reader.list_all_tools().await.expect("tools/list"));
    assert!(reader_tools.contains(&"testbed__emit".to_owned()));
    assert!(
        !reader_tools.iter().any(|n| n.starts_with("vault__")),
        "{reader_tools:?}"
    );
    let denied = reader
        .call_tool(
            CallToolRequestParams::new("vault__emit")
                .with_arguments(common::object(json!({ "text": "x" }))),
        )
        .await
        .expect_err("the reader may not call vault tools");
    assert!(denied.to_string().contains("unknown tool"), "{denied}");
    let _ = reader.cancel().await;

    // The admin key, sent as X-API-Key this time.
    let mut headers = std::collections::HashMap::new();
    headers.insert(
        http::HeaderName::from_static("x-api-key"),
        http::HeaderValue::from_static(ADMIN_KEY),
    );
    let admin = server
        .connect(
            server.client_config(None).custom_headers(headers),
            discover_2026(),
        )
        .await
        .expect("admin connects");
    let admin_tools = names(&admin.list_all_tools().await.expect("tools/list"));
    assert!(
        admin_tools.contains(&"vault__emit".to_owned()),
        "{admin_tools:?}"
    );
    let result = admin
        .call_tool(
            CallToolRequestParams::new("vault__emit")
                .with_arguments(common::object(json!({ "text": "opened" }))),
        )
        .await
        .expect("tools/call");
    assert_eq!(ok_text(&result), "opened");
    let _ = admin.cancel().await;

    let records = fixture.audit_log("audit/audit.jsonl");
    let vault: Vec<&Value> = records
        .iter()
        .filter(|r| r["tool"] == "vault__emit")
        .collect();
    assert_eq!(vault.len(), 2, "{records:#?}");
    assert_eq!(vault[0]["principal"], "reader-bot");
    assert_eq!(vault[0]["roles"], json!(["reader"]));
    assert_eq!(vault[0]["outcome"], "denied");
    assert_eq!(vault[1]["principal"], "admin-bot");
    assert_eq!(vault[1]["roles"], json!(["admin"]));
    assert_eq!(vault[1]["outcome"], "ok");
    assert_eq!(vault[1]["transport"], "http");
}

/// A request in session `id`, with the protocol version header of the 2025-11-25 era.
async fn in_session(
    server: &HttpServer,
    method: reqwest::Method,
    id: &str,
    key: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .request(method, &server.url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", id)
        .header("authorization", format!("Bearer {key}"));
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    request.send().await.expect("HTTP request")
}

#[tokio::test]
async fn a_session_is_refused_to_every_principal_but_its_opener() {
    let fixture = keyed_fixture();
    let server = fixture.http_server(&[]).await;
    let reader = format!("Bearer {READER_KEY}");
    let opened = post(&server, &initialize_body(), &[("authorization", &reader)]).await;
    assert_eq!(opened.status(), 200);
    let id = opened
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("a session id")
        .to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let post_in = |key, body| in_session(&server, reqwest::Method::POST, &id, key, Some(body));
    assert_eq!(post_in(READER_KEY, &initialized).await.status(), 202);

    // Another valid key cannot use it, in any way: as if the session did not exist.
    let stolen = post_in(ADMIN_KEY, &list).await;
    assert_eq!(stolen.status(), 404);
    let body: Value = stolen.json().await.expect("JSON body");
    assert_eq!(body["error"]["message"], "session not found");
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = in_session(&server, method.clone(), &id, ADMIN_KEY, None).await;
        assert_eq!(response.status(), 404, "{method}");
    }
    assert_eq!(
        post_in(ADMIN_KEY, &initialized).await.status(),
        404,
        "a made-up session"
    );

    // Its opener still can, until it ends the session.
    let listed = post_in(READER_KEY, &list).await;
    assert_eq!(listed.status(), 200);
    let listed = listed.text().await.expect("body");
    assert!(listed.contains("testbed__emit"), "{listed}");
    let ended = in_session(&server, reqwest::Method::DELETE, &id, READER_KEY, None).await;
    assert_eq!(
        ended.status(),
        204,
        "ending a session answers 204 No Content"
    );
    assert_eq!(post_in(READER_KEY, &list).await.status(), 404);

    let records = fixture.audit_log("audit/audit.jsonl");
    let refused: Vec<&Value> = records
        .iter()
        .filter(|r| r["outcome"] == "denied" && r["principal"] == "admin-bot")
        .collect();
    assert_eq!(refused.len(), 4, "{records:#?}");
    assert!(
        refused[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("did not open")),
        "{:?}",
        refused[0]
    );
}

#[tokio::test]
async fn keygen_prints_a_key_and_the_entry_that_admits_it() {
    let fixture = Fixture::new("[plugins.testbed]\ncomponent = \"{testbed}\"\n");
    let (code, stdout, stderr) = common::warden(
        &["keygen", "--principal", "ci-bot", "--roles", "reader,ops"],
        fixture.dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    let key = stdout.lines().next().expect("key line").to_owned();
    assert!(key.starts_with("wdn_") && key.len() == 47, "{key}");
    let entry = &stdout[stdout.find("[[auth.api_keys]]").expect("entry")..];
    assert!(entry.contains("principal = \"ci-bot\""), "{entry}");
    assert!(entry.contains("roles = [\"reader\", \"ops\"]"), "{entry}");
    assert!(entry.contains(&digest(&key)), "{entry}");
    assert!(!entry.contains(&key), "the entry holds the key");
    let (_, again, _) = common::warden(&["keygen"], fixture.dir.path());
    assert_ne!(again.lines().next(), Some(key.as_str()), "keys repeat");

    let mut manifest = std::fs::read_to_string(&fixture.manifest).expect("manifest");
    manifest.push_str(entry);
    std::fs::write(&fixture.manifest, manifest).expect("write manifest");
    let server = fixture.http_server(&[]).await;
    let client = server
        .connect(server.client_config(Some(&key)), discover_2026())
        .await
        .expect("the new key connects");
    let result = client
        .call_tool(
            CallToolRequestParams::new("testbed__emit")
                .with_arguments(common::object(json!({ "text": "hi" }))),
        )
        .await
        .expect("tools/call");
    assert_eq!(ok_text(&result), "hi");
    let _ = client.cancel().await;
}

// --- Transport checks ---------------------------------------------------------------------------

#[tokio::test]
async fn bad_origin_bad_host_and_oversized_bodies_are_refused() {
    let fixture = Fixture::new(
        "[http]\nmax_body = \"2KiB\"\nallowed_origins = [\"https://app.example.com\"]\n\n\
         [plugins.testbed]\ncomponent = \"{testbed}\"\n",
    );
    let server = fixture.http_server(&[]).await;
    let body = initialize_body();

    let response = post(&server, &body, &[("origin", "https://evil.example")]).await;
    assert_eq!(response.status(), 403);
    let error: Value = response.json().await.expect("JSON");
    assert_eq!(error["error"], "the Origin header is not allowed");

    let response = post(&server, &body, &[("host", "evil.example:80")]).await;
    assert_eq!(response.status(), 403);
    let error: Value = response.json().await.expect("JSON");
    assert_eq!(error["error"], "the Host header is not allowed");

    // Listed origins and the server's own origin pass.
    let own = server.base.clone();
    for origin in ["https://app.example.com", own.as_str()] {
        let response = post(&server, &body, &[("origin", origin)]).await;
        assert_eq!(response.status(), 200, "{origin}");
    }
    let response = post(&server, &body, &[]).await;
    assert_eq!(response.status(), 200);

    let mut big = initialize_body();
    big["params"]["clientInfo"]["name"] = json!("x".repeat(4096));
    let response = post(&server, &big, &[]).await;
    assert_eq!(response.status(), 413);

    // Without Content-Length (chunked), the limit holds while reading.
    let text = big.to_string();
    let (first, second) = text.split_at(1500);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\naccept: application/json, text/event-stream\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
         {:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
        first.len(),
        second.len()
    );
    // The server may answer and close before reading everything: ignore write errors.
    let _ = socket.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let get = |path: &str| reqwest::get(format!("{}{path}", server.base));
    let health = get("/healthz").await.expect("healthz");
    assert_eq!(health.status(), 200);
    // Ready once the plugin is compiled: on a cold cache that may take a moment after start.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let ready = get("/readyz").await.expect("readyz");
        if ready.status() == 200 {
            break;
        }
        assert_eq!(ready.status(), 503);
        let body: Value = ready.json().await.expect("JSON");
        assert_eq!(body["error"], "1 plugin(s) still compiling");
        assert!(std::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(get("/nothing").await.expect("404").status(), 404);
    // No OAuth: no protected resource metadata.
    let metadata = get("/.well-known/oauth-protected-resource")
        .await
        .expect("metadata");
    assert_eq!(metadata.status(), 404);
}

#[tokio::test]
async fn healthz_needs_no_key_but_mcp_does() {
    let fixture = keyed_fixture();
    let server = fixture.http_server(&[]).await;
    let health = reqwest::get(format!("{}/healthz", server.base))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let response = post(&server, &initialize_body(), &[]).await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_public_address_without_auth_is_refused_at_start() {
    let fixture = Fixture::new("[plugins.testbed]\ncomponent = \"{testbed}\"\n");
    let (code, _, stderr) = common::warden(
        &[
            "serve",
            "--manifest",
            &fixture.manifest.display().to_string(),
            "--http",
            "0.0.0.0:0",
        ],
        fixture.dir.path(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("refusing to serve 0.0.0.0:0 without authentication"),
        "{stderr}"
    );
    assert!(stderr.contains("--insecure-no-auth"), "{stderr}");
}

// --- Graceful shutdown --------------------------------------------------------------------------

#[tokio::test]
async fn sigterm_lets_an_in_flight_call_finish_then_exits_zero() {
    // The call connects to this listener and waits for its answer: it is in flight for as
    // long as the test holds the answer back.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let fixture = Fixture::new(&format!(
        "[audit]\npath = \"{{dir}}/audit/audit.jsonl\"\n\n[http]\nshutdown_grace = \"2m\"\n\n\
         [plugins.testbed]\ncomponent = \"{{testbed}}\"\ntimeout = \"5m\"\n\
         allow_hosts = [\"tcp://127.0.0.1:{port}\"]\n"
    ));
    let mut server = fixture.http_server(&[]).await;
    let client = server
        .connect(server.client_config(None), ClientLifecycleMode::Initialize)
        .await
        .expect("connect");
    let client = Arc::new(client);
    let call = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call_tool(
                    CallToolRequestParams::new("testbed__tcp_connect").with_arguments(
                        common::object(
                            json!({ "addr": format!("127.0.0.1:{port}"), "message": "ping" }),
                        ),
                    ),
                )
                .await
        })
    };
    let (mut socket, _) = tokio::time::timeout(Duration::from_secs(120), listener.accept())
        .await
        .expect("the plugin connects")
        .expect("accept");
    let mut received = Vec::new();
    socket.read_to_end(&mut received).await.expect("read");
    assert_eq!(received, b"ping");

    // The call is in flight: terminate the server, and answer once it is shutting down.
    let pid = server.child.id().expect("running");
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let log = server.stderr.clone();
    wait_for(&log, "shutting down: finishing requests in flight").await;
    assert!(
        server.stderr().contains("in_flight=1"),
        "{}",
        server.stderr()
    );
    socket.write_all(b"pong").await.expect("answer");
    socket.shutdown().await.expect("close");

    let result = tokio::time::timeout(Duration::from_secs(120), call)
        .await
        .expect("the call returns")
        .expect("task")
        .expect("the client receives the result");
    assert_eq!(text(&result), "pong");
    let status = tokio::time::timeout(Duration::from_secs(120), server.child.wait())
        .await
        .expect("warden exits")
        .expect("wait");
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    let records = fixture.audit_log("audit/audit.jsonl");
    let call = records
        .iter()
        .find(|r| r["tool"] == "testbed__tcp_connect")
        .expect("the call is audited");
    assert_eq!(call["outcome"], "ok", "{call}");
    // New connections are refused once it stopped.
    assert!(
        reqwest::get(format!("{}/healthz", server.base))
            .await
            .is_err()
    );
}

/// Wait (at most 2 minutes) until `log` contains `needle`.
async fn wait_for(log: &Arc<Mutex<String>>, needle: &str) {
    let found = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            if log.lock().expect("lock").contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "the log never said {needle:?}:\n{}",
        log.lock().expect("lock")
    );
}

#[tokio::test]
async fn sigterm_on_an_idle_server_exits_zero() {
    let fixture = Fixture::new("[plugins.testbed]\ncomponent = \"{testbed}\"\n");
    let mut server = fixture.http_server(&[]).await;
    // An open legacy session (with its event stream) does not hold the shutdown up.
    let client = server
        .connect(server.client_config(None), ClientLifecycleMode::Initialize)
        .await
        .expect("connect");
    client.list_all_tools().await.expect("tools/list");
    let status = server.terminate().await;
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    drop(client);
}

// --- A second client: the Python `mcp` package --------------------------------------------------

const PYTHON_CLIENT: &str = r#"
import asyncio, sys
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

async def main(url, key, mode):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        tools = await client.list_tools()
        names = sorted(t.name for t in tools.tools)
        print("tools", mode, "testbed__emit" in names)
        result = await client.call_tool("testbed__emit", {"text": f"hello {mode}"})
        print("result", mode, result.content[0].text)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
"#;

#[tokio::test]
async fn python_mcp_client_lists_and_calls_tools_in_both_eras() {
    let fixture = keyed_fixture();
    let server = fixture.http_server(&[]).await;
    for mode in ["legacy", "2026-07-28"] {
        let args = [server.url.clone(), READER_KEY.to_owned(), mode.to_owned()];
        let output = run_python(&fixture, "client.py", PYTHON_CLIENT, &args).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{mode}: {stdout}\n{}\nserver:\n{}",
            String::from_utf8_lossy(&output.stderr),
            server.stderr()
        );
        assert!(stdout.contains(&format!("tools {mode} True")), "{stdout}");
        assert!(
            stdout.contains(&format!("result {mode} hello {mode}")),
            "{stdout}"
        );
    }
    let records = fixture.audit_log("audit/audit.jsonl");
    let calls = records
        .iter()
        .filter(|r| r["tool"] == "testbed__emit" && r["principal"] == "reader-bot")
        .count();
    assert_eq!(calls, 2, "{records:#?}");
}

// --- TLS ----------------------------------------------------------------------------------------

/// A self-signed certificate for `localhost` and 127.0.0.1, made with the `openssl` command:
/// (cert.pem, key.pem) in `dir`.
fn self_signed(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let output = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // An end-entity certificate: rustls refuses a CA certificate as the server's.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the TLS test needs the `openssl` command to make a test certificate");
    assert!(
        output.status.success(),
        "openssl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (cert, key)
}

#[tokio::test]
async fn tls_serves_mcp_over_https() {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};

    let fixture = keyed_fixture();
    let (cert, _) = self_signed(fixture.dir.path());
    let mut manifest = std::fs::read_to_string(&fixture.manifest).expect("manifest");
    manifest.push_str("\n[http]\ntls = { cert = \"cert.pem\", key = \"key.pem\" }\n");
    std::fs::write(&fixture.manifest, manifest).expect("write manifest");
    let server = fixture.http_server(&[]).await;
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&cert).expect("read cert"))
        .expect("trust the test certificate");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let addr = server.base.trim_start_matches("https://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let body = initialize_body().to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {READER_KEY}\r\n\
         accept: application/json, text/event-stream\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"serverInfo\""), "{answer}");

    // Plain HTTP to the TLS port gets nowhere.
    let plain = format!("http://{addr}/healthz");
    assert!(reqwest::get(&plain).await.is_err());
}

// --- Hostile clients ----------------------------------------------------------------------------

/// Opens `n` connections from `source` (a loopback address other than 127.0.0.1, so the
/// server sees another client) to the server, writes `payload` on each, and keeps them open.
/// Connections the kernel turns away are skipped.
async fn flood(
    server: &HttpServer,
    source: &str,
    n: usize,
    payload: &[u8],
) -> Vec<tokio::net::TcpStream> {
    let addr: std::net::SocketAddr = server
        .base
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .parse()
        .expect("server address");
    let mut streams = Vec::new();
    for _ in 0..n {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{source}:0").parse().expect("source address"))
            .expect("bind the source address");
        if let Ok(Ok(mut stream)) =
            tokio::time::timeout(Duration::from_secs(2), socket.connect(addr)).await
        {
            let _ = stream.write_all(payload).await;
            streams.push(stream);
        }
    }
    streams
}

/// How many of `streams` the server has closed (end of stream or reset).
fn closed(streams: &[tokio::net::TcpStream]) -> usize {
    let mut buf = [0u8; 1024];
    streams
        .iter()
        .filter(|stream| match stream.try_read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        })
        .count()
}

/// Waits (at most `within`) until the server closes `stream`; whether it did.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// `GET /healthz` answers 200 within a few seconds.
async fn healthy(server: &HttpServer) {
    let health = tokio::time::timeout(
        Duration::from_secs(5),
        reqwest::get(format!("{}/healthz", server.base)),
    )
    .await
    .unwrap_or_else(|_| panic!("/healthz did not answer in time\n{}", server.stderr()))
    .unwrap_or_else(|e| panic!("/healthz: {e}\n{}", server.stderr()));
    assert_eq!(health.status(), 200);
}

/// An authenticated `tools/call` answers within a few seconds.
async fn authenticated_call_answers(server: &HttpServer) {
    let answered = tokio::time::timeout(Duration::from_secs(15), async {
        let client = server
            .connect(server.client_config(Some(READER_KEY)), discover_2026())
            .await
            .expect("connect");
        let result = client
            .call_tool(
                CallToolRequestParams::new("testbed__emit")
                    .with_arguments(common::object(json!({ "text": "still here" }))),
            )
            .await
            .expect("tools/call");
        let _ = client.cancel().await;
        result
    })
    .await
    .unwrap_or_else(|_| panic!("the call did not answer in time\n{}", server.stderr()));
    assert_eq!(ok_text(&answered), "still here");
}

#[tokio::test]
async fn a_slow_client_flood_under_a_low_descriptor_limit_locks_no_one_out() {
    // 140 half-sent requests from one unauthenticated client, against a server allowed 128
    // descriptors (the defaults then allow 64 connections, 32 per client).
    let fixture = keyed_fixture();
    let server = fixture.http_server_limited(128, &[]).await;
    let half = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: applica";
    let flood = flood(&server, "127.0.0.2", 140, half).await;
    assert!(flood.len() > 100, "only {} connections opened", flood.len());
    healthy(&server).await;
    authenticated_call_answers(&server).await;
    // The client's connections beyond its cap were closed at once; the others wait for their
    // header timer.
    let refused = closed(&flood);
    assert!(
        refused >= flood.len() - 32,
        "{refused} of {} closed\n{}",
        flood.len(),
        server.stderr()
    );
    let log = server.stderr();
    let warnings = log
        .matches("connection refused: max_connections_per_client")
        .count();
    assert!((1..=2).contains(&warnings), "{warnings} warnings:\n{log}");
    assert!(!log.contains("accept failed"), "{log}");
}

#[tokio::test]
async fn failed_accepts_are_warned_about_rarely_and_the_server_recovers() {
    // A cap set above what the descriptor limit allows: `accept` runs out of descriptors.
    let fixture = keyed_fixture();
    let mut manifest = std::fs::read_to_string(&fixture.manifest).expect("manifest");
    manifest.push_str("\n[http]\nmax_connections = 1000\nmax_connections_per_client = 1000\n");
    std::fs::write(&fixture.manifest, manifest).expect("write manifest");
    let server = fixture.http_server_limited(96, &[]).await;
    assert!(
        server.stderr().contains("leaves few file descriptors"),
        "{}",
        server.stderr()
    );
    let flood = flood(&server, "127.0.0.2", 150, b"").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = server.stderr();
    let warnings = log.matches("accept failed").count();
    assert!((1..=2).contains(&warnings), "{warnings} warnings:\n{log}");
    drop(flood);
    healthy(&server).await;
    authenticated_call_answers(&server).await;
}

#[tokio::test]
async fn connections_over_the_overall_cap_are_closed_at_once() {
    let fixture = Fixture::new(
        "[http]\nmax_connections = 4\nmax_connections_per_client = 2\n\n\
         [plugins.testbed]\ncomponent = \"{testbed}\"\n",
    );
    let server = fixture.http_server(&[]).await;
    let mut first = flood(&server, "127.0.0.2", 3, b"").await;
    let second = flood(&server, "127.0.0.3", 2, b"").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(closed(&first), 1, "the client's third connection");
    assert_eq!(closed(&second), 0);
    // Four are open: a fifth client is turned away too.
    let refused = reqwest::get(format!("{}/healthz", server.base)).await;
    assert!(refused.is_err(), "{refused:?}");
    first.truncate(1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    healthy(&server).await;
    wait_for(
        &server.stderr,
        "connection refused: max_connections connections are open",
    )
    .await;
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed_but_calls_in_progress_are_not() {
    // The call connects to this listener and waits for its answer, for longer than both timers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let fixture = Fixture::new(&format!(
        "[http]\nheader_timeout = \"1s\"\nidle_timeout = \"2s\"\n\n\
         [plugins.testbed]\ncomponent = \"{{testbed}}\"\ntimeout = \"1m\"\n\
         allow_hosts = [\"tcp://127.0.0.1:{port}\"]\n"
    ));
    let server = fixture.http_server(&[]).await;
    let addr = server.base.trim_start_matches("http://").to_owned();

    // Silent from the start: closed when idle.
    let mut silent = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    // A header trickling in, a line every 200ms, never complete: closed by the header timer
    // (each byte would reset a timer that only measured silence).
    let mut trickle = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    trickle
        .write_all(b"POST /mcp HTTP/1.1\r\n")
        .await
        .expect("write");
    let trickling = tokio::spawn(async move {
        for i in 0..50 {
            if trickle
                .write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return Some(i);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        None
    });
    // Kept alive after a complete request: closed when idle.
    let mut kept = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    kept.write_all(format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut answer = [0u8; 1024];
    let n = kept.read(&mut answer).await.expect("answer");
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));

    let stopped_at = tokio::time::timeout(Duration::from_secs(8), trickling)
        .await
        .expect("the trickling header is cut within a few seconds")
        .expect("task");
    assert!(
        stopped_at.is_some_and(|i| i < 25),
        "written until line {stopped_at:?}"
    );
    assert!(
        closed_within(&mut silent, Duration::from_secs(6)).await,
        "silent"
    );
    assert!(
        closed_within(&mut kept, Duration::from_secs(6)).await,
        "kept alive"
    );
    wait_for(
        &server.stderr,
        "a request header did not arrive within header_timeout",
    )
    .await;

    // A call in progress for longer than both timers is answered.
    let client = server
        .connect(server.client_config(None), ClientLifecycleMode::Initialize)
        .await
        .expect("connect");
    let call = tokio::spawn(async move {
        let result = client
            .call_tool(
                CallToolRequestParams::new("testbed__tcp_connect").with_arguments(common::object(
                    json!({ "addr": format!("127.0.0.1:{port}"), "message": "ping" }),
                )),
            )
            .await;
        let _ = client.cancel().await;
        result
    });
    let (mut socket, _) = tokio::time::timeout(Duration::from_secs(60), listener.accept())
        .await
        .expect("the plugin connects")
        .expect("accept");
    let mut received = Vec::new();
    socket.read_to_end(&mut received).await.expect("read");
    tokio::time::sleep(Duration::from_secs(4)).await;
    socket.write_all(b"pong").await.expect("answer");
    socket.shutdown().await.expect("close");
    let result = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the call returns")
        .expect("task")
        .expect("the client receives the result");
    assert_eq!(text(&result), "pong");
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_closed() {
    let fixture = keyed_fixture();
    self_signed(fixture.dir.path());
    let mut manifest = std::fs::read_to_string(&fixture.manifest).expect("manifest");
    manifest.push_str(
        "\n[http]\ntls = { cert = \"cert.pem\", key = \"key.pem\" }\ntls_handshake_timeout = \"1s\"\n",
    );
    std::fs::write(&fixture.manifest, manifest).expect("write manifest");
    let server = fixture.http_server(&[]).await;
    let addr = server.base.trim_start_matches("https://").to_owned();
    // Nothing sent, and half a ClientHello (a TLS record header announcing 512 bytes).
    let mut silent = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let mut half = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .expect("write");
    assert!(
        closed_within(&mut silent, Duration::from_secs(6)).await,
        "silent"
    );
    assert!(
        closed_within(&mut half, Duration::from_secs(6)).await,
        "half"
    );
    wait_for(
        &server.stderr,
        "did not finish within tls_handshake_timeout",
    )
    .await;
}

/// An `initialize` with `key`, answered how.
async fn open_session(server: &HttpServer, key: &str) -> reqwest::Response {
    post(
        server,
        &initialize_body(),
        &[("authorization", &format!("Bearer {key}"))],
    )
    .await
}

#[tokio::test]
async fn sessions_are_capped_per_principal_and_overall() {
    let fixture = keyed_fixture();
    let mut manifest = std::fs::read_to_string(&fixture.manifest).expect("manifest");
    manifest.push_str("\n[http]\nmax_sessions = 3\nmax_sessions_per_principal = 2\n");
    std::fs::write(&fixture.manifest, manifest).expect("write manifest");
    let server = fixture.http_server(&[]).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let opened = open_session(&server, READER_KEY).await;
        assert_eq!(opened.status(), 200);
        ids.push(
            opened
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .expect("a session id")
                .to_owned(),
        );
    }
    let third = open_session(&server, READER_KEY).await;
    assert_eq!(third.status(), 429);
    assert!(third.headers().get("mcp-session-id").is_none());
    let body: Value = third.json().await.expect("JSON");
    assert_eq!(body["id"], 1, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("too many open sessions for this principal (at most 2)"),
        "{body}"
    );
    // Another principal has its own count, up to the server's.
    assert_eq!(open_session(&server, ADMIN_KEY).await.status(), 200);
    let full = open_session(&server, ADMIN_KEY).await;
    assert_eq!(full.status(), 503);
    let body: Value = full.json().await.expect("JSON");
    assert_eq!(
        body["error"]["message"],
        "the server has too many open sessions; try again later"
    );
    // The stateless era opens no session and is not counted.
    authenticated_call_answers(&server).await;
    // Ending a session frees its place.
    let ended = in_session(&server, reqwest::Method::DELETE, &ids[0], READER_KEY, None).await;
    assert!(ended.status().is_success(), "{}", ended.status());
    assert_eq!(open_session(&server, READER_KEY).await.status(), 200);

    let records = fixture.audit_log("audit/audit.jsonl");
    let refused: Vec<&Value> = records
        .iter()
        .filter(|r| {
            r["outcome"] == "denied"
                && r["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("session refused"))
        })
        .collect();
    assert_eq!(refused.len(), 2, "{records:#?}");
    assert_eq!(refused[0]["principal"], "reader-bot");
    assert_eq!(refused[1]["principal"], "admin-bot");
}

#[tokio::test]
async fn large_client_info_is_refused_and_opens_no_session() {
    let fixture = keyed_fixture();
    let server = fixture.http_server(&[]).await;
    let reader = format!("Bearer {READER_KEY}");
    let mut big_name = initialize_body();
    big_name["params"]["clientInfo"]["name"] = json!("x".repeat(9000));
    let mut big_capabilities = initialize_body();
    big_capabilities["params"]["capabilities"]["experimental"] =
        json!({ "blob": { "data": "y".repeat(1 << 20) } });
    // `initialize` spelled with an escape, and inside a batch: still recognized.
    let escaped = big_name
        .to_string()
        .replace("\"initialize\"", "\"initiali\\u007ae\"");
    let batch = format!("[{big_name}]");
    for (case, body) in [
        ("client name", big_name.to_string()),
        ("capabilities", big_capabilities.to_string()),
        ("escaped method", escaped),
        ("batch", batch),
    ] {
        let response = reqwest::Client::new()
            .post(&server.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("authorization", &reader)
            .body(body)
            .send()
            .await
            .expect("HTTP request");
        assert_eq!(response.status(), 400, "{case}");
        assert!(response.headers().get("mcp-session-id").is_none(), "{case}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"]["code"], -32602, "{case}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("too large") && message.contains("at most 8192"),
            "{case}: {body}"
        );
    }
    // An ordinary client still connects, and the server still runs.
    let client = server
        .connect(
            server.client_config(Some(READER_KEY)),
            ClientLifecycleMode::Initialize,
        )
        .await
        .expect("connect");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(!tools.is_empty());
    let _ = client.cancel().await;
}

/// A raw HTTP/1.1 request `head` (without the blank line) with a JSON `body`; the answer's
/// status line and body.
async fn raw(server: &HttpServer, head: &str, body: &str) -> String {
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let request = format!(
        "{head}\r\naccept: application/json, text/event-stream\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn duplicate_hosts_and_absolute_targets_naming_another_host_are_refused() {
    let fixture = Fixture::new("[plugins.testbed]\ncomponent = \"{testbed}\"\n");
    let server = fixture.http_server(&[]).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let body = initialize_body().to_string();
    let cases = [
        (
            "the allowed Host first, another second",
            format!("POST /mcp HTTP/1.1\r\nhost: {addr}\r\nhost: evil.example"),
            "more than one Host header",
        ),
        (
            "another Host first",
            format!("POST /mcp HTTP/1.1\r\nhost: evil.example\r\nhost: {addr}"),
            "more than one Host header",
        ),
        (
            "an absolute target naming another host",
            format!("POST http://evil.example/mcp HTTP/1.1\r\nhost: {addr}"),
            "differs from the Host header",
        ),
        (
            "an absolute target naming this server, another Host",
            format!("POST http://{addr}/mcp HTTP/1.1\r\nhost: evil.example"),
            "differs from the Host header",
        ),
        (
            "userinfo in the absolute target",
            format!("POST http://user@{addr}/mcp HTTP/1.1\r\nhost: {addr}"),
            "differs from the Host header",
        ),
    ];
    for (case, head, message) in &cases {
        let answer = raw(&server, head, &body).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{case}: {answer}");
        assert!(answer.contains(message), "{case}: {answer}");
    }
    // An absolute target that agrees with Host is served.
    let answer = raw(
        &server,
        &format!("POST http://{addr}/mcp HTTP/1.1\r\nhost: {addr}"),
        &body,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"serverInfo\""), "{answer}");
}

// --- Reload: both eras hear of it --------------------------------------------------------------

#[tokio::test]
async fn a_reload_reaches_legacy_sessions_and_2026_subscriptions() {
    let testbed = |prefix: &str| {
        format!(
            "[plugins.testbed]\ncomponent = \"{}\"\nprefix = \"{prefix}\"\n",
            common::plugin("testbed")
        )
    };
    let fixture = Fixture::new(&testbed("before"));
    let server = fixture.http_server(&[]).await;

    // 2025-11-25: a session whose client handles notifications/tools/list_changed.
    let recorder = common::Recorder::default();
    let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(server.url.clone());
    let legacy = rmcp::service::ClientServiceExt::serve_with_lifecycle(
        recorder.clone(),
        transport,
        ClientLifecycleMode::Initialize,
    )
    .await
    .expect("legacy session");

    // 2026-07-28: subscriptions/listen, read as an event stream.
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let mut listen = reqwest::Client::new()
        .post(&server.url)
        .header("Content-Type", "application/json")
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
    assert_eq!(listen.status(), 200, "{:?}", listen.headers());
    let mut stream = String::new();
    let mut read_until = async |stream: &mut String, what: &str| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !stream.contains(what) {
            let chunk = tokio::time::timeout_at(deadline, listen.chunk())
                .await
                .unwrap_or_else(|_| panic!("no {what} on the stream: {stream}"))
                .expect("read the stream")
                .unwrap_or_else(|| panic!("the stream ended before {what}: {stream}"));
            stream.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    read_until(&mut stream, "notifications/subscriptions/acknowledged").await;

    std::fs::write(
        &fixture.manifest,
        format!(
            "[cache]\ndir = \"{}\"\n\n{}",
            common::cache_dir().display(),
            testbed("after")
        ),
    )
    .expect("rewrite manifest");
    let pid = server.child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(status.success());

    read_until(&mut stream, "notifications/tools/list_changed").await;
    assert!(
        stream.contains("io.modelcontextprotocol/subscriptionId"),
        "{stream}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while recorder
        .tools_changed
        .load(std::sync::atomic::Ordering::SeqCst)
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tools = legacy.list_all_tools().await.expect("tools/list");
    assert!(
        !tools.is_empty() && tools.iter().all(|t| t.name.starts_with("after__")),
        "{tools:?}"
    );

    // `warden status` names the port bound (not the 0 asked for) and counts the reload.
    let this = server.status();
    assert_eq!(this["transport"], "http");
    let port = server.base.rsplit(':').next().expect("port");
    assert_eq!(this["listen"], format!("127.0.0.1:{port}"));
    assert_eq!(this["reloads"], 1);

    // Once the session ends, so does the task that told it of reloads.
    let _ = legacy.cancel().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !server
        .stderr()
        .contains("session ended: no more tool list notices")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_reload_adds_and_revokes_api_keys_but_never_removes_every_credential_on_a_public_address()
{
    let keyed = |keys: &[&str]| {
        let mut body = format!(
            "[plugins.testbed]\ncomponent = \"{}\"\n",
            common::plugin("testbed")
        );
        for (n, key) in keys.iter().enumerate() {
            body.push_str(&format!(
                "\n[[auth.api_keys]]\nprincipal = \"bot-{n}\"\nsha256 = \"{}\"\n",
                digest(key)
            ));
        }
        body
    };
    let reload = async |fixture: &Fixture, server: &HttpServer, body: &str, logged: &str| {
        std::fs::write(
            &fixture.manifest,
            format!(
                "[cache]\ndir = \"{}\"\n\n{body}",
                common::cache_dir().display()
            ),
        )
        .expect("rewrite manifest");
        let pid = server.child.id().expect("pid").to_string();
        let before = server.stderr().matches(logged).count();
        assert!(
            std::process::Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .expect("kill")
                .success()
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while server.stderr().matches(logged).count() == before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}",
                server.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let status = async |server: &HttpServer, key: &str| {
        post(
            server,
            &initialize_body(),
            &[("authorization", &format!("Bearer {key}"))],
        )
        .await
        .status()
    };

    let fixture = Fixture::new(&keyed(&[READER_KEY]));
    let server = fixture.http_server_at("0.0.0.0:0", &[]).await;
    assert_eq!(status(&server, READER_KEY).await, 200);
    assert_eq!(status(&server, ADMIN_KEY).await, 401);

    // The reader's key revoked, the admin's added: no restart.
    reload(&fixture, &server, &keyed(&[ADMIN_KEY]), "reloaded ").await;
    assert_eq!(status(&server, READER_KEY).await, 401);
    assert_eq!(status(&server, ADMIN_KEY).await, 200);

    // Removing every credential of a server on 0.0.0.0 is refused; the keys stay in force.
    reload(&fixture, &server, &keyed(&[]), "reload failed").await;
    assert!(
        server.stderr().contains("[auth] configures no credential"),
        "{}",
        server.stderr()
    );
    assert_eq!(status(&server, ADMIN_KEY).await, 200);
    assert_eq!(status(&server, REVOKED_KEY).await, 401);
}
