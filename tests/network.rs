//! The network sandbox holds under attack: a plugin reaches exactly the hosts, ports and schemes
//! its `allow_hosts` grants, restricted addresses (loopback, private, metadata) only when
//! granted explicitly, whatever the spelling or the name that resolves to them; redirects are
//! checked hop by hop; responses are cut at `max_response` and slow servers hit the timeout;
//! raw TCP follows `tcp://` grants; secrets reach the plugin and never warden's log. Every
//! refusal is a tool error and the server keeps serving.
//!
//! The servers are real, on 127.0.0.1, started by each test; the plugins are the real `fetch`
//! and `testbed` components, served by the real binary.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Client, Fixture, err_text, ok_text, warden};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A small HTTP/1.1 server on 127.0.0.1 that records the head of every request it receives.
///
/// Routes: `/hello` (text), `/html` (an HTML page), `/big` (64 KiB), `/hang` (never answers),
/// `/echo` (the request head as the body), `/redirect?to=URL` (302 to `URL`); anything else
/// is 404.
struct Server {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

const PAGE: &str = "<!doctype html><html><head><title>T</title></head><body>\
    <h1>Network sandbox</h1><p>Only <b>granted</b> hosts.</p>\
    <ul><li>first</li><li>second</li></ul><script>var hidden = 1;</script></body></html>";

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let recorded = heads.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, recorded.clone()));
            }
        });
        Server { port, heads }
    }

    /// `http://127.0.0.1:PORT{path}`.
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The request heads received so far.
    fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("lock").clone()
    }
}

async fn serve(mut socket: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    heads.lock().expect("lock").push(head.clone());
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let reply = |status: &str, extra: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let response = match path {
        "/hello" => reply(
            "200 OK",
            "content-type: text/plain\r\n",
            "hello from the test server",
        ),
        "/html" => reply("200 OK", "content-type: text/html; charset=utf-8\r\n", PAGE),
        "/big" => reply(
            "200 OK",
            "content-type: text/plain\r\n",
            &"x".repeat(64 * 1024),
        ),
        "/echo" => reply("200 OK", "content-type: text/plain\r\n", &head),
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            return;
        }
        "/redirect" => {
            let to = query.strip_prefix("to=").unwrap_or("/hello");
            reply("302 Found", &format!("location: {to}\r\n"), "")
        }
        _ => reply("404 Not Found", "", "not found"),
    };
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// A TCP server on 127.0.0.1 that answers `echo: ` and whatever it received, then closes.
async fn echo_server() -> (u16, Arc<Mutex<u32>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let connections = Arc::new(Mutex::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            *count.lock().expect("lock") += 1;
            tokio::spawn(async move {
                let mut received = Vec::new();
                let _ = socket.read_to_end(&mut received).await;
                let mut answer = b"echo: ".to_vec();
                answer.extend_from_slice(&received);
                let _ = socket.write_all(&answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (port, connections)
}

/// `fetch__get` of `url`, with extra arguments.
async fn get(client: &Client, url: &str, extra: Value) -> rmcp::model::CallToolResult {
    let mut arguments = json!({ "url": url });
    if let (Some(args), Value::Object(extra)) = (arguments.as_object_mut(), extra) {
        args.extend(extra);
    }
    client.call("fetch__get", arguments).await
}

/// The fetch response record of a successful call.
fn response(result: &rmcp::model::CallToolResult) -> Value {
    serde_json::from_str(&ok_text(result)).expect("a JSON response record")
}

/// `testbed__http_get` of `url`: the host sees the URL exactly as written.
async fn raw_get(client: &Client, url: &str) -> rmcp::model::CallToolResult {
    client
        .call("testbed__http_get", json!({ "url": url }))
        .await
}

/// Assert that `result` is a refusal naming `url` and containing `reason`.
#[track_caller]
fn refused(result: &rmcp::model::CallToolResult, url: &str, reason: &str) {
    let message = err_text(result);
    assert!(
        message.contains(&format!("warden refused {url}")) && message.contains(reason),
        "expected a refusal of {url} because {reason:?}, got: {message}"
    );
}

fn manifest(server: &Server, extra: &str) -> Fixture {
    Fixture::new(&format!(
        r#"
[plugins.fetch]
component = "{{fetch}}"
allow_hosts = ["http://127.0.0.1:{port}", "http://localhost:{port}"]
{extra}

[plugins.testbed]
component = "{{testbed}}"
allow_hosts = ["http://127.0.0.1:{port}", "http://localhost:{port}"]
{extra}
"#,
        port = server.port
    ))
}

#[tokio::test]
async fn an_allowed_host_and_port_is_reached() {
    let server = Server::start().await;
    let fixture = manifest(&server, "");
    let client = fixture.client().await;

    let hello = response(&get(&client, &server.url("/hello"), json!({})).await);
    assert_eq!(hello["status"], 200);
    assert_eq!(hello["body"], "hello from the test server");
    assert_eq!(hello["truncated"], false);
    assert!(
        hello["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .any(|h| h["name"] == "content-type" && h["value"] == "text/plain"),
        "{hello}"
    );

    let raw = raw_get(&client, &server.url("/hello")).await;
    assert_eq!(ok_text(&raw), "200\nhello from the test server");

    // HTML on request, as text or markdown; a POST with a body.
    let page = response(&get(&client, &server.url("/html"), json!({"format": "markdown"})).await);
    let body = page["body"].as_str().expect("body");
    assert!(
        body.contains("# Network sandbox")
            && body.contains("**granted**")
            && body.contains("* first"),
        "{body}"
    );
    assert!(!body.contains("<p>") && !body.contains("hidden"), "{body}");
    let page = response(&get(&client, &server.url("/html"), json!({"format": "text"})).await);
    let body = page["body"].as_str().expect("body");
    assert!(
        body.contains("Only granted hosts.") && !body.contains('<'),
        "{body}"
    );

    let post = client
        .call(
            "fetch__post",
            json!({"url": server.url("/echo"), "body": "{\"q\": 1}"}),
        )
        .await;
    let echoed = response(&post)["body"].as_str().expect("body").to_owned();
    assert!(echoed.starts_with("POST /echo HTTP/1.1"), "{echoed}");
    assert!(
        echoed.contains("content-type: application/json"),
        "{echoed}"
    );
    assert!(
        echoed
            .to_ascii_lowercase()
            .contains(&format!("host: 127.0.0.1:{}", server.port))
    );

    // The plugin's own limit cuts the body with a note.
    let cut = response(&get(&client, &server.url("/big"), json!({"max_bytes": 100})).await);
    assert_eq!(cut["truncated"], true);
    let body = cut["body"].as_str().expect("body");
    assert!(
        body.starts_with(&"x".repeat(100)) && body.contains("[truncated"),
        "{body}"
    );

    // A redirect to a granted URL is followed.
    let redirected = response(
        &get(
            &client,
            &server.url(&format!("/redirect?to={}", server.url("/hello"))),
            json!({}),
        )
        .await,
    );
    assert_eq!(redirected["body"], "hello from the test server");
    assert_eq!(redirected["url"], server.url("/hello"));
    client.close().await;
}

#[tokio::test]
async fn another_port_host_or_scheme_is_refused_naming_the_url_and_the_reason() {
    let server = Server::start().await;
    let other = Server::start().await;
    let fixture = manifest(&server, "");
    let client = fixture.client().await;

    let url = other.url("/hello");
    refused(
        &get(&client, &url, json!({})).await,
        &url,
        &format!("port {} is not granted for 127.0.0.1", other.port),
    );
    refused(&raw_get(&client, &url).await, &url, "is not granted");

    refused(
        &get(&client, "http://example.com/", json!({})).await,
        "http://example.com/",
        "host example.com is not in the plugin's allow_hosts",
    );
    let https = format!("https://127.0.0.1:{}/hello", server.port);
    refused(
        &get(&client, &https, json!({})).await,
        &https,
        "scheme https is not granted for 127.0.0.1",
    );
    let ftp = format!("ftp://127.0.0.1:{}/hello", server.port);
    refused(
        &raw_get(&client, &ftp).await,
        &ftp,
        "scheme `ftp` is not supported",
    );

    assert!(other.heads().is_empty(), "the refused server was contacted");
    ok_text(&get(&client, &server.url("/hello"), json!({})).await);
    client.close().await;
}

#[tokio::test]
async fn a_redirect_to_a_refused_host_is_not_followed() {
    let server = Server::start().await;
    let refused_server = Server::start().await;
    let fixture = manifest(&server, "");
    let client = fixture.client().await;

    let target = refused_server.url("/hello");
    let result = get(
        &client,
        &server.url(&format!("/redirect?to={target}")),
        json!({}),
    )
    .await;
    refused(&result, &target, "is not granted");
    assert_eq!(
        server.heads().len(),
        1,
        "the first hop reached the granted server"
    );
    assert!(
        refused_server.heads().is_empty(),
        "the redirect was followed to the refused server"
    );

    // A redirect to a restricted address is refused too, whatever the granted name.
    let result = get(
        &client,
        &server.url("/redirect?to=http://169.254.169.254/latest/meta-data/"),
        json!({}),
    )
    .await;
    refused(
        &result,
        "http://169.254.169.254/latest/meta-data/",
        "not in the plugin's allow_hosts",
    );
    ok_text(&get(&client, &server.url("/hello"), json!({})).await);
    client.close().await;
}

#[tokio::test]
async fn a_granted_name_resolving_to_loopback_is_refused() {
    let server = Server::start().await;
    let port = server.port;
    // The name is granted, the address it resolves to is not.
    let fixture = Fixture::new(&format!(
        "[plugins.fetch]\ncomponent = \"{{fetch}}\"\nallow_hosts = [\"http://localhost:{port}\"]\n\n\
         [plugins.testbed]\ncomponent = \"{{testbed}}\"\nallow_hosts = [\"http://localhost:{port}\"]\n"
    ));
    let client = fixture.client().await;
    let url = format!("http://localhost:{port}/hello");
    let result = get(&client, &url, json!({})).await;
    refused(&result, &url, "localhost resolves to");
    assert!(
        err_text(&result).contains("127.0.0.1 (a loopback address)")
            && err_text(&result).contains("which allow_hosts does not grant explicitly"),
        "{}",
        err_text(&result)
    );
    refused(&raw_get(&client, &url).await, &url, "a loopback address");
    assert!(
        server.heads().is_empty(),
        "a loopback name was connected to"
    );
    client.close().await;

    // Granting the address as well makes the name usable: the check is on the address.
    let fixture = manifest(&server, "");
    let client = fixture.client().await;
    let hello = response(&get(&client, &url, json!({})).await);
    assert_eq!(hello["body"], "hello from the test server");
    client.close().await;
}

#[tokio::test]
async fn unusual_spellings_of_loopback_are_refused() {
    let server = Server::start().await;
    let fixture = manifest(&server, "");
    let client = fixture.client().await;
    let port = server.port;

    // Sent as written: the host reads each spelling itself.
    for (url, reason) in [
        (
            "http://2130706433/".to_owned(),
            "unusual spelling of the IP address 127.0.0.1",
        ),
        (
            format!("http://2130706433:{port}/hello"),
            "unusual spelling",
        ),
        ("http://0x7f.1/".to_owned(), "unusual spelling"),
        (
            format!("http://0x7f.0.0.1:{port}/hello"),
            "unusual spelling",
        ),
        ("http://0177.0.0.1/".to_owned(), "unusual spelling"),
        (
            format!("http://017700000001:{port}/hello"),
            "unusual spelling",
        ),
        (format!("http://127.1:{port}/hello"), "unusual spelling"),
        (
            "http://[::1]/".to_owned(),
            "is not in the plugin's allow_hosts",
        ),
        (
            format!("http://[::1]:{port}/hello"),
            "is not in the plugin's allow_hosts",
        ),
        (
            "http://[::ffff:127.0.0.1]/".to_owned(),
            "port 80 is not granted",
        ),
        (
            "http://0.0.0.0/".to_owned(),
            "is not in the plugin's allow_hosts",
        ),
        (
            "http://169.254.169.254/".to_owned(),
            "is not in the plugin's allow_hosts",
        ),
    ] {
        refused(&raw_get(&client, &url).await, &url, reason);
    }
    // Through the fetch plugin, whose URL parser normalizes the spelling first.
    refused(
        &get(&client, "http://2130706433/", json!({})).await,
        "http://127.0.0.1/",
        "port 80 is not granted for 127.0.0.1",
    );
    assert!(
        server.heads().is_empty(),
        "a disguised loopback was connected to"
    );

    // `*` grants any public host, never a restricted one.
    let open = Fixture::new(&format!(
        "[plugins.testbed]\ncomponent = \"{{testbed}}\"\nallow_hosts = [\"http://*:{port}\"]\n"
    ));
    let open = open.client().await;
    let url = server.url("/hello");
    refused(
        &raw_get(&open, &url).await,
        &url,
        "127.0.0.1 is a loopback address",
    );
    let url = format!("http://[::ffff:7f00:1]:{port}/hello");
    refused(&raw_get(&open, &url).await, &url, "a loopback address");
    assert!(server.heads().is_empty());
    open.close().await;
    client.close().await;
}

#[tokio::test]
async fn raw_tcp_follows_tcp_grants() {
    let (port, connections) = echo_server().await;
    let (other_port, other_connections) = echo_server().await;
    let fixture = Fixture::new(&format!(
        "[plugins.testbed]\ncomponent = \"{{testbed}}\"\nallow_hosts = [\"tcp://127.0.0.1:{port}\"]\n\n\
         [plugins.closed]\ncomponent = \"{{testbed}}\"\n"
    ));
    let client = fixture.client().await;
    let connect = |tool: &'static str, addr: String| {
        let client = &client;
        async move {
            client
                .call(tool, json!({"addr": addr, "message": "ping"}))
                .await
        }
    };

    let granted = connect("testbed__tcp_connect", format!("127.0.0.1:{port}")).await;
    assert_eq!(ok_text(&granted), "echo: ping");

    for addr in [
        format!("127.0.0.1:{other_port}"),
        format!("[::1]:{port}"),
        format!("localhost:{port}"),
        format!("10.0.0.1:{port}"),
    ] {
        let result = connect("testbed__tcp_connect", addr.clone()).await;
        assert!(
            err_text(&result).contains(&addr),
            "{addr}: {}",
            err_text(&result)
        );
    }
    let result = connect("closed__tcp_connect", format!("127.0.0.1:{port}")).await;
    err_text(&result);
    // HTTP grants nothing over raw TCP, and tcp grants nothing over HTTP.
    let result = raw_get(&client, &format!("http://127.0.0.1:{port}/")).await;
    refused(
        &result,
        &format!("http://127.0.0.1:{port}/"),
        "scheme http is not granted",
    );

    assert_eq!(*connections.lock().expect("lock"), 1);
    assert_eq!(*other_connections.lock().expect("lock"), 0);
    let again = connect("testbed__tcp_connect", format!("127.0.0.1:{port}")).await;
    assert_eq!(ok_text(&again), "echo: ping");
    client.close().await;
}

#[tokio::test]
async fn an_oversized_response_is_cut_with_a_clear_error() {
    let server = Server::start().await;
    let fixture = manifest(&server, "net = { max_response = \"1KiB\" }");
    let client = fixture.client().await;
    let url = server.url("/big");

    let message = err_text(&get(&client, &url, json!({"max_bytes": 1_000_000})).await);
    assert!(
        message.contains(&url) && message.contains("larger than 1KiB (max_response)"),
        "{message}"
    );
    let message = err_text(&raw_get(&client, &url).await);
    assert!(
        message.contains("after 1024 bytes") && message.contains("max_response"),
        "{message}"
    );
    ok_text(&get(&client, &server.url("/hello"), json!({})).await);
    client.close().await;
}

#[tokio::test]
async fn a_hanging_server_hits_the_timeout() {
    let server = Server::start().await;
    let fixture = manifest(
        &server,
        "timeout = \"20s\"\nnet = { request_timeout = \"1s\" }",
    );
    let client = fixture.client().await;
    let url = server.url("/hang");

    let started = Instant::now();
    let message = err_text(&get(&client, &url, json!({})).await);
    assert!(
        message.contains(&url) && message.contains("no response within 1s (request_timeout)"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    ok_text(&get(&client, &server.url("/hello"), json!({})).await);
    client.close().await;
}

#[tokio::test]
async fn requests_per_call_are_limited() {
    let server = Server::start().await;
    let fixture = manifest(&server, "net = { max_requests = 2 }");
    let client = fixture.client().await;
    let hop = |to: &str| server.url(&format!("/redirect?to={to}"));
    let url = hop(&hop(&server.url("/hello")));
    let message = err_text(&get(&client, &url, json!({})).await);
    assert!(message.contains("max_requests = 2"), "{message}");
    assert_eq!(server.heads().len(), 2);
    // The count is per call.
    ok_text(&get(&client, &server.url("/hello"), json!({})).await);
    client.close().await;
}

#[tokio::test]
async fn without_allow_hosts_the_plugin_loads_and_every_request_is_refused() {
    let server = Server::start().await;
    let fixture = Fixture::new("[plugins.testbed]\ncomponent = \"{testbed}\"\n");
    let client = fixture.client().await;
    let url = server.url("/hello");
    refused(
        &raw_get(&client, &url).await,
        &url,
        "granted no outbound hosts",
    );
    err_text(
        &client
            .call(
                "testbed__tcp_connect",
                json!({"addr": format!("127.0.0.1:{}", server.port), "message": "x"}),
            )
            .await,
    );
    assert!(server.heads().is_empty());
    let tools = client.service.list_all_tools().await.expect("tools/list");
    let hints = tools[0].annotations.as_ref().expect("annotations");
    assert_eq!(hints.open_world_hint, Some(false));
    ok_text(&client.call("testbed__env", json!({"name": "X"})).await);
    client.close().await;
}

#[tokio::test]
async fn undeclared_env_is_invisible_and_secrets_never_reach_the_log() {
    const FROM_ENV: &str = "sk-env-6f1e0c2d9b";
    const FROM_FILE: &str = "sk-file/+a7d3=41";
    let server = Server::start().await;
    let fixture = Fixture::new(&format!(
        r#"
[plugins.testbed]
component = "{{testbed}}"
allow_hosts = ["http://127.0.0.1:{port}"]
env = {{ LANG = "C.UTF-8" }}
secrets = {{ API_TOKEN = {{ env = "WARDEN_TEST_API_TOKEN" }}, FILE_TOKEN = {{ file = "token.txt" }} }}
"#,
        port = server.port
    ));
    std::fs::write(fixture.path("token.txt"), format!("{FROM_FILE}\n")).expect("write");
    let client = fixture
        .client_env(&[
            ("WARDEN_LOG", "debug"),
            ("WARDEN_TEST_API_TOKEN", FROM_ENV),
            ("WARDEN_TEST_UNDECLARED", "undeclared-value"),
        ])
        .await;

    let all = ok_text(&client.call("testbed__env_all", json!({})).await);
    for name in ["LANG", "API_TOKEN", "FILE_TOKEN"] {
        assert!(all.contains(name), "{name} missing from {all}");
    }
    for hidden in [
        "WARDEN_TEST_UNDECLARED",
        "undeclared-value",
        "WARDEN_TEST_API_TOKEN",
        "PATH",
        "HOME",
    ] {
        assert!(!all.contains(hidden), "{hidden} visible in {all}");
    }
    let undeclared = client
        .call("testbed__env", json!({"name": "WARDEN_TEST_UNDECLARED"}))
        .await;
    assert_eq!(ok_text(&undeclared), "null");

    // The plugin prints, logs and requests with each secret, to a granted host and a refused one.
    for name in ["API_TOKEN", "FILE_TOKEN"] {
        for url in [server.url(""), "http://127.0.0.1:1".to_owned()] {
            let leaked = client
                .call("testbed__leak_env", json!({"name": name, "url": url}))
                .await;
            assert_eq!(ok_text(&leaked), "true");
        }
    }
    let heads = server.heads();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(
        heads[0].contains(FROM_ENV),
        "the secret did not reach the server"
    );
    assert!(heads[1].contains("sk-file/%2Ba7d3=41") || heads[1].contains(FROM_FILE));

    // Give the server's log a moment to reach the pipe.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = client.stderr();
    assert!(log.contains("DEBUG"), "not a debug log:\n{log}");
    assert!(
        log.contains("[REDACTED:secrets]"),
        "nothing was scrubbed:\n{log}"
    );
    for secret in [FROM_ENV, FROM_FILE, "sk-file%2F%2Ba7d3%3D41"] {
        assert!(!log.contains(secret), "secret {secret} in the log:\n{log}");
    }
    client.close().await;
}

#[tokio::test]
async fn check_warns_about_ungranted_network_imports_and_lists_grants() {
    let fixture = Fixture::new(
        r#"
[plugins.fetch]
component = "{fetch}"
allow_hosts = ["https://api.example.com", "tcp://127.0.0.1:5432"]
secrets = { TOKEN = { file = "token.txt" } }
net = { max_requests = 3 }

[plugins.testbed]
component = "{testbed}"
"#,
    );
    std::fs::write(fixture.path("token.txt"), "very-secret-value").expect("write");
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let (code, stdout, stderr) = warden(&["check", manifest], fixture.dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("grant host  https://api.example.com"),
        "{stdout}"
    );
    assert!(
        stdout.contains("grant host  tcp://127.0.0.1:5432"),
        "{stdout}"
    );
    assert!(stdout.contains("grant secret TOKEN"), "{stdout}");
    assert!(stdout.contains("max 3 requests"), "{stdout}");
    assert!(!stdout.contains("very-secret-value") && !stderr.contains("very-secret-value"));
    let testbed = stdout
        .split("plugin testbed")
        .nth(1)
        .expect("testbed section");
    assert!(
        testbed.contains("imports wasi:http") && testbed.contains("no host"),
        "{testbed}"
    );
    let fetch = stdout
        .split("plugin fetch")
        .nth(1)
        .and_then(|s| s.split("plugin testbed").next())
        .expect("fetch section");
    // fetch imports wasi:http and no wasi:sockets: its https:// host serves it, its tcp://
    // one cannot be used (and is the only warning).
    assert!(!fetch.contains("ungranted-import"), "{fetch}");
    assert!(
        fetch.contains("hosts it cannot reach (tcp://127.0.0.1:5432)"),
        "{fetch}"
    );

    let (code, stdout, _) = warden(
        &["inspect", &common::plugin("fetch"), "--json"],
        fixture.dir.path(),
    );
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&stdout).expect("json");
    let grants = report["grants"].to_string();
    assert!(grants.contains("allow_hosts"), "{grants}");
    let tools: Vec<&str> = report["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(tools, ["fetch__get", "fetch__post"]);
}

#[tokio::test]
async fn tools_of_a_plugin_with_hosts_are_open_world() {
    let server = Server::start().await;
    let fixture = manifest(&server, "");
    let client = fixture.client().await;
    let tools = client.service.list_all_tools().await.expect("tools/list");
    let get = tools
        .iter()
        .find(|t| t.name == "fetch__get")
        .expect("fetch__get");
    let hints = get.annotations.as_ref().expect("annotations");
    assert_eq!(hints.open_world_hint, Some(true));
    let description = get.description.as_deref().unwrap_or_default();
    assert!(
        description.contains(&format!("Granted hosts: http://127.0.0.1:{}", server.port)),
        "{description}"
    );
    client.close().await;
}

#[tokio::test]
async fn https_to_a_server_without_tls_fails_cleanly() {
    // A server that answers plain HTTP at once, whatever it receives.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let fixture = Fixture::new(&format!(
        "[plugins.fetch]\ncomponent = \"{{fetch}}\"\nallow_hosts = [\"https://127.0.0.1:{port}\"]\n"
    ));
    let client = fixture.client().await;
    let url = format!("https://127.0.0.1:{port}/hello");
    let message = err_text(&get(&client, &url, json!({})).await);
    assert!(
        message.starts_with(&format!("{url}: TLS handshake failed")),
        "{message}"
    );
    // Plain http to a host granted only as https is refused before any connection.
    let plain = format!("http://127.0.0.1:{port}/hello");
    refused(
        &get(&client, &plain, json!({})).await,
        &plain,
        "plain http is refused: 127.0.0.1 is granted for https only",
    );
    client.close().await;
}

#[tokio::test]
async fn fetch_keeps_credentials_with_their_origin_across_redirects() {
    let a = Server::start().await;
    let b = Server::start().await;
    let fixture = Fixture::new(&format!(
        "[plugins.fetch]\ncomponent = \"{{fetch}}\"\nallow_hosts = [\"http://127.0.0.1:{}\", \"http://127.0.0.1:{}\"]\n",
        a.port, b.port
    ));
    let client = fixture.client().await;
    let headers = json!({"headers": [{"name": "authorization", "value": "Bearer t0ken"}]});

    let same = response(&get(&client, &a.url("/redirect?to=/echo"), headers.clone()).await);
    assert!(
        same["body"]
            .as_str()
            .expect("body")
            .contains("Bearer t0ken"),
        "{same}"
    );
    let cross = get(
        &client,
        &a.url(&format!("/redirect?to={}", b.url("/echo"))),
        headers,
    )
    .await;
    let cross = response(&cross);
    assert_eq!(cross["url"], b.url("/echo"));
    assert!(
        !cross["body"].as_str().expect("body").contains("t0ken"),
        "{cross}"
    );
    client.close().await;
}

// --- UDP datagrams (hardening part: quota) -----------------------------------------------------

/// A UDP socket on 127.0.0.1 that counts the datagrams it receives.
async fn udp_counter() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = socket.local_addr().expect("address").port();
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = received.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while socket.recv_from(&mut buf).await.is_ok() {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    (port, received)
}

/// What `counter` has received once nothing more arrives for 300ms (at most a few seconds).
async fn settled(counter: &std::sync::atomic::AtomicUsize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = counter.load(std::sync::atomic::Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = counter.load(std::sync::atomic::Ordering::Relaxed);
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

#[tokio::test]
async fn udp_datagrams_are_limited_per_call() {
    let (port, received) = udp_counter().await;
    let fixture = Fixture::new(&format!(
        "[plugins.testbed]\ncomponent = \"{{testbed}}\"\nallow_hosts = [\"udp://127.0.0.1:{port}\"]\n\
         [plugins.testbed.net]\nmax_datagrams = 5\n\n\
         [plugins.roomy]\ncomponent = \"{{testbed}}\"\nallow_hosts = [\"udp://127.0.0.1:{port}\"]\n"
    ));
    let client = fixture.client().await;
    let addr = format!("127.0.0.1:{port}");
    let flood = |tool: &'static str, count: u32| {
        let (client, addr) = (&client, addr.clone());
        async move {
            client
                .call(tool, json!({"addr": addr, "count": count}))
                .await
        }
    };

    // A flood stops at the limit: exactly 5 datagrams leave, the sixth send fails in the
    // plugin, and the call ends cleanly.
    let result = flood("testbed__udp_flood", 50_000).await;
    let message = err_text(&result);
    assert!(message.starts_with("after 5: "), "{message}");
    assert_eq!(settled(&received).await, 5);
    assert!(
        fixture_log_has(&client, "max_datagrams = 5"),
        "the host should log why: {}",
        client.stderr()
    );

    // The limit is per call: the next call sends its own 5, and a call within it succeeds.
    let result = flood("testbed__udp_flood", 50_000).await;
    assert!(
        err_text(&result).starts_with("after 5: "),
        "{}",
        err_text(&result)
    );
    assert_eq!(ok_text(&flood("testbed__udp_flood", 3).await), "3");
    assert_eq!(settled(&received).await, 13);

    // The default limit is 1000 datagrams per call.
    let result = flood("roomy__udp_flood", 50_000).await;
    let message = err_text(&result);
    assert!(message.starts_with("after 1000: "), "{message}");
    let total = settled(&received).await;
    assert!(total <= 1013, "{total} datagrams arrived");
    client.close().await;
}

fn fixture_log_has(client: &Client, text: &str) -> bool {
    client.stderr().contains(text)
}
