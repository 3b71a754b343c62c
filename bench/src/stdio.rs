//! `tools/call` round trips over stdio: one at a time (latency), and pipelined (throughput
//! of one connection with many requests in flight).

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};

use crate::report::Report;
use crate::server::{StdioServer, check_result};
use crate::stats::{Latency, micros};
use crate::{Setup, stdio};

/// Requests in flight in the pipelined measurement.
const PIPELINE_DEPTH: usize = 32;

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
            "[cache]\ndir = \"{cache}\"\n\n{extra}\n[plugins.codec]\ncomponent = \"{codec}\"\nprefix = \"\"\n",
            cache = dir.join("cache").display(),
            codec = setup.plugin("codec").display(),
        ),
    )?;
    Ok(manifest)
}

/// The trivial tool call every scenario makes: codec's `encode` of a short string.
pub fn trivial_call() -> Value {
    json!({"name": "encode", "arguments": {"encoding": "hex", "text": "warden"}})
}

pub async fn run(setup: &Setup, report: &mut Report) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = codec_manifest(setup, dir.path(), "")?;
    let mut server = StdioServer::spawn(&setup.warden, &manifest)?;
    server.initialize().await?;
    // Warm up: the first calls fault in code and fill allocator caches.
    for _ in 0..200 {
        check_result(&server.request("tools/call", stdio::trivial_call()).await?)?;
    }

    let mut samples = Vec::with_capacity(setup.calls);
    let started = Instant::now();
    while samples.len() < setup.calls && started.elapsed() < setup.budget {
        let sent = Instant::now();
        let result = server.request("tools/call", trivial_call()).await?;
        samples.push(sent.elapsed());
        check_result(&result)?;
    }
    let n = samples.len();
    if let Some(latency) = Latency::of(&mut samples) {
        report.add("stdio", "sequential calls", n);
        report.add("stdio", "sequential p50 (µs)", micros(latency.p50));
        report.add("stdio", "sequential p99 (µs)", micros(latency.p99));
        report.add("stdio", "sequential mean (µs)", micros(latency.mean));
    }

    let (calls, elapsed) = pipelined(&mut server, setup.calls, setup.budget).await?;
    report.add("stdio", "pipelined calls", calls);
    report.add(
        "stdio",
        &format!("pipelined calls/s (depth {PIPELINE_DEPTH})"),
        (calls as f64 / elapsed.as_secs_f64()).round(),
    );
    server.shutdown().await
}

/// Keep [`PIPELINE_DEPTH`] calls in flight until `calls` are answered or `budget` is spent.
async fn pipelined(
    server: &mut StdioServer,
    calls: usize,
    budget: Duration,
) -> Result<(usize, Duration)> {
    let started = Instant::now();
    let (mut sent, mut answered) = (0, 0);
    loop {
        while sent - answered < PIPELINE_DEPTH && sent < calls && started.elapsed() < budget {
            server.send_request("tools/call", trivial_call()).await?;
            sent += 1;
        }
        if answered == sent {
            break;
        }
        // Responses may come back in any order: count them, whichever they answer.
        let (_, result) = server.next_response().await?;
        check_result(&result?)?;
        answered += 1;
    }
    Ok((answered, started.elapsed()))
}
