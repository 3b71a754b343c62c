//! `tools/call` round trips over stdio: one at a time (latency), and pipelined (throughput
//! of one connection with many requests in flight).

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};

use crate::Setup;
use crate::report::Report;
use crate::server::{StdioServer, check_result};
use crate::stats::{Latency, micros};

/// Requests in flight in the pipelined measurement.
pub const PIPELINE_DEPTH: usize = 32;

/// A manifest serving codec with its bare tool names and the gate's defaults (filters on, no
/// audit log), in `dir`.
pub fn codec_manifest(
    setup: &Setup,
    dir: &std::path::Path,
    extra: &str,
) -> Result<std::path::PathBuf> {
    let manifest = dir.join("warden.toml");
    std::fs::write(
        &manifest,
        format!(
            "[cache]\ndir = \"{cache}\"\n\n{extra}\n{with}\n[plugins.codec]\ncomponent = \"{codec}\"\nprefix = \"\"\n",
            cache = dir.join("cache").display(),
            codec = setup.plugin("codec").display(),
            with = setup.with,
        ),
    )?;
    compile_into_cache(setup, &manifest)?;
    Ok(manifest)
}

/// Compile `manifest`'s plugins into its cache first (`warden check` builds with Cranelift),
/// so that a scenario measures the steady state: a cold `serve` would first run a baseline
/// build and compile in the background while it measures.
pub fn compile_into_cache(setup: &Setup, manifest: &std::path::Path) -> Result<()> {
    let status = std::process::Command::new(&setup.warden)
        .args(["check", "--manifest"])
        .arg(manifest)
        .env("WARDEN_LOG", "error")
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(
        status.success(),
        "`warden check` of the bench's manifest failed"
    );
    Ok(())
}

/// The trivial tool call every scenario makes: codec's `encode` of a short string.
pub fn trivial_call() -> Value {
    json!({"name": "encode", "arguments": {"encoding": "hex", "text": "warden"}})
}

/// [`trivial_call`] as a stateless 2026-07-28 request: no session, its `_meta` declares the
/// version, the client and its capabilities.
pub fn stateless_call() -> Value {
    let mut call = trivial_call();
    call["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "warden-bench", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    call
}

/// Round trips of `tools/call` with `params`, one at a time, after 200 to warm up: up to
/// `calls` of them within `budget`.
async fn sequential(
    server: &mut StdioServer,
    params: &Value,
    calls: usize,
    budget: Duration,
) -> Result<Vec<Duration>> {
    // Warm up: the first calls fault in code and fill allocator caches.
    for _ in 0..200 {
        check_result(&server.request("tools/call", params.clone()).await?)?;
    }
    let mut samples = Vec::with_capacity(calls);
    let started = Instant::now();
    while samples.len() < calls && started.elapsed() < budget {
        let sent = Instant::now();
        let result = server.request("tools/call", params.clone()).await?;
        samples.push(sent.elapsed());
        check_result(&result)?;
    }
    Ok(samples)
}

pub async fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = codec_manifest(setup, dir.path(), "")?;
    if let Some(floor) = pipe_floor(setup.calls, setup.budget).await? {
        report.add("stdio", "pipe floor p50 (µs)", micros(floor.p50));
        report.add("stdio", "pipe floor p95 (µs)", micros(floor.p95));
    }
    // A session opened with `initialize` (2025-11-25), then the stateless era: the same calls
    // without `initialize`, each declaring 2026-07-28.
    let mut server = StdioServer::spawn(&setup.warden, &manifest)?;
    server.initialize().await?;
    measure(&mut server, &trivial_call(), "", setup, report).await?;
    server.shutdown().await?;
    let mut server = StdioServer::spawn(&setup.warden, &manifest)?;
    measure(&mut server, &stateless_call(), "stateless ", setup, report).await?;
    server.shutdown().await?;
    gate_features(setup, report).await
}

/// Sequential round trips and pipelined calls of `tools/call` with `params` on `server`,
/// reported under figures named with `era` first.
async fn measure(
    server: &mut StdioServer,
    params: &Value,
    era: &str,
    setup: &Setup,
    report: &mut Report,
) -> Result<()> {
    let mut samples = sequential(server, params, setup.calls, setup.budget).await?;
    let n = samples.len();
    if let Some(latency) = Latency::of(&mut samples) {
        report.add("stdio", &format!("{era}sequential calls"), n);
        report.add(
            "stdio",
            &format!("{era}sequential p50 (µs)"),
            micros(latency.p50),
        );
        report.add(
            "stdio",
            &format!("{era}sequential p95 (µs)"),
            micros(latency.p95),
        );
        report.add(
            "stdio",
            &format!("{era}sequential p99 (µs)"),
            micros(latency.p99),
        );
        report.add(
            "stdio",
            &format!("{era}sequential mean (µs)"),
            micros(latency.mean),
        );
    }
    let (calls, elapsed) =
        pipelined(server, params, check_result, setup.calls, setup.budget).await?;
    report.add("stdio", &format!("{era}pipelined calls"), calls);
    report.add(
        "stdio",
        &format!("{era}pipelined calls/s (depth {PIPELINE_DEPTH})"),
        (calls as f64 / elapsed.as_secs_f64()).round(),
    );
    Ok(())
}

/// The floor under every stdio figure: the same request line sent through `cat` and read
/// back, by the same client code, as many times as the calls (within the same budget). On a
/// VM the round trip through a pipe and another process moves by an order of magnitude with
/// which CPU wakes which, so it is reported beside warden's.
async fn pipe_floor(calls: usize, budget: Duration) -> Result<Option<Latency>> {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

    let mut cat = tokio::process::Command::new("cat")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let (Some(mut stdin), Some(stdout)) = (cat.stdin.take(), cat.stdout.take()) else {
        anyhow::bail!("cat has no pipes");
    };
    let mut lines = BufReader::new(stdout).lines();
    let mut line = serde_json::to_string(&json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": trivial_call(),
    }))?;
    line.push('\n');
    let mut samples = Vec::with_capacity(calls);
    let started = Instant::now();
    while samples.len() < calls + 200 && started.elapsed() < budget {
        let sent = Instant::now();
        stdin.write_all(line.as_bytes()).await?;
        lines.next_line().await?;
        samples.push(sent.elapsed());
    }
    // The first 200 warm up, as warden's do.
    let mut samples = samples.split_off(samples.len().min(200));
    Ok(Latency::of(&mut samples))
}

/// Every gate feature on (`bench/every-feature.toml` and the hash-chained audit log) and off (no output
/// filter, no audit log, no limits; the argument caps always apply): the sequential call's
/// median with each, measured in alternating blocks so that load from elsewhere hits both
/// alike.
async fn gate_features(setup: &Setup, report: &mut Report) -> Result<()> {
    const BLOCK: usize = 16;
    let dir = tempfile::tempdir()?;
    let on = dir.path().join("on");
    let off = dir.path().join("off");
    std::fs::create_dir_all(&on)?;
    std::fs::create_dir_all(&off)?;
    let every_feature = include_str!("../every-feature.toml")
        .replace("{codec}", &setup.plugin("codec").display().to_string());
    let manifest = format!(
        "[cache]\ndir = \"{cache}\"\n\n[audit]\npath = \"{audit}\"\n\n{every_feature}",
        cache = on.join("cache").display(),
        audit = on.join("audit.jsonl").display(),
    );
    std::fs::write(on.join("warden.toml"), manifest)?;
    let plain = codec_manifest(setup, &off, "[filters]\nredact = []\n")?;
    let mut servers = [
        StdioServer::spawn(&setup.warden, &on.join("warden.toml"))?,
        StdioServer::spawn(&setup.warden, &plain)?,
    ];
    for server in &mut servers {
        server.initialize().await?;
        for _ in 0..200 {
            check_result(&server.request("tools/call", trivial_call()).await?)?;
        }
    }

    let mut samples = [Vec::new(), Vec::new()];
    let started = Instant::now();
    while samples[0].len() < setup.calls && started.elapsed() < setup.budget {
        for (server, samples) in servers.iter_mut().zip(&mut samples) {
            for _ in 0..BLOCK {
                let sent = Instant::now();
                let result = server.request("tools/call", trivial_call()).await?;
                samples.push(sent.elapsed());
                check_result(&result)?;
            }
        }
    }
    let [mut with, mut without] = samples;
    let n = with.len();
    if let (Some(with), Some(without)) = (Latency::of(&mut with), Latency::of(&mut without)) {
        let cost = with.p50.saturating_sub(without.p50);
        report.add("gate", "calls with and without", n);
        report.add("gate", "every feature on p50 (µs)", micros(with.p50));
        report.add("gate", "features off p50 (µs)", micros(without.p50));
        report.add("gate", "cost of the features (µs)", micros(cost));
        report.add(
            "gate",
            "cost, % of the call",
            (1000.0 * cost.as_secs_f64() / without.p50.as_secs_f64()).round() / 10.0,
        );
    }
    for server in servers {
        server.shutdown().await?;
    }
    Ok(())
}

/// Keep [`PIPELINE_DEPTH`] `tools/call`s with `params` in flight until `calls` are answered
/// or `budget` is spent; `check` checks each result.
pub async fn pipelined(
    server: &mut StdioServer,
    params: &Value,
    check: impl Fn(&Value) -> Result<()>,
    calls: usize,
    budget: Duration,
) -> Result<(usize, Duration)> {
    let started = Instant::now();
    let (mut sent, mut answered) = (0, 0);
    loop {
        while sent - answered < PIPELINE_DEPTH && sent < calls && started.elapsed() < budget {
            server.send_request("tools/call", params.clone()).await?;
            sent += 1;
        }
        if answered == sent {
            break;
        }
        // Responses may come back in any order: count them, whichever they answer.
        let (_, result) = server.next_response().await?;
        check(&result?)?;
        answered += 1;
    }
    Ok((answered, started.elapsed()))
}
