//! `tools/call` over Streamable HTTP on loopback, at several numbers of concurrent clients,
//! with everything a remote deployment turns on: API-key authentication, the audit log and the
//! output filters.
//!
//! Each client is one keep-alive HTTP/1.1 connection sending stateless 2026-07-28 requests
//! (no session: every POST stands alone), one at a time.
//!
//! With `--replicas N` (N > 1), N `warden` processes serve, each with its own audit log and
//! cache, behind a real `haproxy` that spreads the requests round robin: the shape of a
//! deployment whose replicas share limits through `[limits] store` (given with `--with`).
//!
//! Beside one warden, each concurrency is also run against the floor ([`crate::floor`]): a
//! server that only answers, driven by the same client.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::report::Report;
use crate::stats::{Latency, micros};
use crate::{Setup, stdio};

const PROTOCOL: &str = "2026-07-28";
const KEY: &str = "wdn_bench_0123456789abcdef0123456789abcdef";

pub async fn run(
    setup: &Setup,
    clients: &[usize],
    replicas: usize,
    report: &mut Report,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let digest = hex::encode(Sha256::digest(KEY.as_bytes()));
    let mut children = Vec::new();
    let mut addrs = Vec::new();
    for replica in 0..replicas.max(1) {
        let dir = dir.path().join(format!("replica-{replica}"));
        std::fs::create_dir_all(&dir)?;
        // Every client connects from 127.0.0.1: lift the per-client connection cap (default 32).
        let extra = format!(
            "[audit]\npath = \"{audit}\"\n\n[http]\nmax_connections_per_client = 1024\n\n\
             [[auth.api_keys]]\nprincipal = \"bench\"\nsha256 = \"{digest}\"\n",
            audit = dir.join("audit.jsonl").display(),
        );
        let manifest = stdio::codec_manifest(setup, &dir, &extra)?;
        let (child, addr) = spawn(&setup.warden, &manifest).await?;
        children.push(child);
        addrs.push(addr);
    }
    let (_balancer, addr) = match addrs.as_slice() {
        [one] => (None, *one),
        many => {
            let (balancer, addr) = balance(dir.path(), many).await?;
            (Some(balancer), addr)
        }
    };
    report.add("http", "replicas", addrs.len());

    let body = Bytes::from(serde_json::to_vec(&json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": PROTOCOL,
                "io.modelcontextprotocol/clientCapabilities": {},
            },
            "name": "encode",
            "arguments": {"encoding": "hex", "text": "warden"},
        },
    }))?);
    // Warm up, and fail early on a bad setup.
    let mut client = connect(addr).await?;
    for _ in 0..200 {
        call(&mut client, addr, &body).await?;
    }
    drop(client);

    // The floor beside each figure: the same client against a server that only answers
    // (one process, so only beside a single warden).
    let floor = match replicas {
        0 | 1 => Some(spawn_floor().await?),
        _ => None,
    };
    for &n in clients {
        let n = n.max(1);
        let scenario = format!("http x{n}");
        measure(setup, addr, n, &body, &scenario, "", report).await?;
        if let Some((_, floor)) = &floor {
            measure(setup, *floor, n, &body, &scenario, "floor ", report).await?;
        }
    }
    for mut child in children.into_iter().chain(floor.map(|(child, _)| child)) {
        let _ = child.kill().await;
    }
    Ok(())
}

/// Run `n` clients against `addr` until `setup.calls` calls are answered or the budget is
/// spent; report calls/s and latency under `scenario`, each figure's name after `prefix`.
async fn measure(
    setup: &Setup,
    addr: std::net::SocketAddr,
    n: usize,
    body: &Bytes,
    scenario: &str,
    prefix: &str,
    report: &mut Report,
) -> Result<()> {
    let budget = setup.budget;
    let remaining = Arc::new(AtomicUsize::new(setup.calls));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let remaining = remaining.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = connect(addr).await?;
            let mut samples = Vec::new();
            while started.elapsed() < budget
                && remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1))
                    .is_ok()
            {
                let sent = Instant::now();
                call(&mut client, addr, &body).await?;
                samples.push(sent.elapsed());
            }
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    let elapsed = started.elapsed();
    let calls = samples.len();
    report.add(scenario, &format!("{prefix}calls"), calls);
    report.add(
        scenario,
        &format!("{prefix}calls/s"),
        (calls as f64 / elapsed.as_secs_f64()).round(),
    );
    if let Some(latency) = Latency::of(&mut samples) {
        report.add(scenario, &format!("{prefix}p50 (µs)"), micros(latency.p50));
        report.add(scenario, &format!("{prefix}p99 (µs)"), micros(latency.p99));
    }
    Ok(())
}

/// Start `haproxy` in front of `servers` (round robin, keep-alive to both sides) and return it
/// with the address it listens on.
async fn balance(
    dir: &Path,
    servers: &[std::net::SocketAddr],
) -> Result<(Child, std::net::SocketAddr)> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut config = format!(
        "global\n    maxconn 4096\n\ndefaults\n    mode http\n    timeout connect 5s\n\
         \x20   timeout client 60s\n    timeout server 60s\n    option http-keep-alive\n\n\
         frontend bench\n    bind {addr}\n    default_backend wardens\n\n\
         backend wardens\n    balance roundrobin\n    http-reuse always\n"
    );
    for (i, server) in servers.iter().enumerate() {
        config.push_str(&format!("    server warden{i} {server}\n"));
    }
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config)?;
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start haproxy (install it, e.g. `apt-get install haproxy`)")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            bail!("haproxy did not listen on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((child, addr))
}

/// Start `warden serve --http 127.0.0.1:0` and read the address it bound from its log.
async fn spawn(warden: &Path, manifest: &Path) -> Result<(Child, std::net::SocketAddr)> {
    let mut command = Command::new(warden);
    command
        .args(["serve", "--http", "127.0.0.1:0", "--manifest"])
        .arg(manifest);
    listening(command).await
}

/// Start this binary as the floor server ([`crate::floor`]).
async fn spawn_floor() -> Result<(Child, std::net::SocketAddr)> {
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("--floor-server");
    listening(command).await
}

/// Start `command` and read the address it listens on from its stderr (warden's line).
async fn listening(mut command: Command) -> Result<(Child, std::net::SocketAddr)> {
    let program = command.as_std().get_program().to_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let addr = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix("warden: listening on http://") {
                let addr = rest.trim_end_matches("/mcp");
                return addr.parse().context("bad listening address");
            }
        }
        bail!("{} exited before listening", program.display())
    })
    .await
    .with_context(|| format!("{} did not start listening", program.display()))??;
    // Keep draining stderr so warden never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addr))
}

async fn connect(addr: std::net::SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// One `tools/call` POST; fails unless it is answered with a successful tool result.
async fn call(
    client: &mut SendRequest<Full<Bytes>>,
    addr: std::net::SocketAddr,
    body: &Bytes,
) -> Result<()> {
    let request = http::Request::post("/mcp")
        .header(http::header::HOST, addr.to_string())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json, text/event-stream")
        .header(http::header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header("mcp-protocol-version", PROTOCOL)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "encode")
        .body(Full::new(body.clone()))?;
    client.ready().await?;
    let response = client.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
    }
    let message = json_rpc_message(&body).context("no JSON-RPC response in the body")?;
    let result = message.get("result").context("a JSON-RPC error")?;
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        bail!("the tool failed: {result}");
    }
    Ok(())
}

/// The response in a body that is either JSON or a `text/event-stream` of `data:` lines.
fn json_rpc_message(body: &[u8]) -> Option<Value> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return Some(value);
    }
    std::str::from_utf8(body)
        .ok()?
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some())
}
