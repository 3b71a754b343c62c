//! Start-up: time from exec to a successful `tools/list` with N plugins, first with an empty
//! compile cache (cold) and then with the cache the first start filled (warm); resident
//! memory once idle and at its peak. The cold start runs until every plugin is in the cache
//! (its peak RSS covers the whole compile), so the warm starts compile nothing.
//!
//! The N plugins are N distinct components: copies of codec, each with a custom section that
//! makes its bytes (and so its cache entry) its own.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::Setup;
use crate::report::Report;
use crate::server::{StdioServer, rss, status_kib};
use crate::stats::{mb, millis};

/// Warm starts measured per plugin count; the median is reported.
const WARM_RUNS: usize = 5;

pub async fn run(setup: &Setup, counts: &[usize], report: &mut Report) -> Result<()> {
    let codec = std::fs::read(setup.plugin("codec"))?;
    for &n in counts {
        let dir = tempfile::tempdir()?;
        let manifest = manifest(dir.path(), &codec, n)?;
        let scenario = format!("start {n}");
        let cold = start(setup, &manifest, n, true).await?;
        report.add(
            &scenario,
            "cold cache: exec to tools/list (ms)",
            millis(cold.elapsed),
        );
        let mut warm = Vec::new();
        for _ in 0..WARM_RUNS {
            warm.push(start(setup, &manifest, n, false).await?);
        }
        warm.sort_by_key(|run| run.elapsed);
        let median = &warm[WARM_RUNS / 2];
        report.add(
            &scenario,
            "warm cache: exec to tools/list (ms)",
            millis(median.elapsed),
        );
        report.add(
            &scenario,
            "warm cache: RSS when idle (MB)",
            mb(median.rss_idle),
        );
        report.add(
            &scenario,
            "warm cache: anonymous RSS when idle (MB)",
            mb(median.anon_idle),
        );
        report.add(&scenario, "warm cache: peak RSS (MB)", mb(median.rss_peak));
        report.add(&scenario, "cold cache: peak RSS (MB)", mb(cold.rss_peak));
    }
    Ok(())
}

struct Start {
    elapsed: Duration,
    rss_idle: u64,
    /// Of `rss_idle`, warden's own memory. The rest is the binary's and the libraries' pages
    /// of the page cache, whose count depends on how the page cache holds the file (the same
    /// binary, copied, measured up to 3 MB apart on Linux 6.18).
    anon_idle: u64,
    rss_peak: u64,
}

/// One start of warden on `manifest`: spawn, handshake, `tools/list` (which must list `n`
/// plugins' tools), then the memory figures after a short idle pause.
async fn start(setup: &Setup, manifest: &Path, n: usize, cold: bool) -> Result<Start> {
    if cold {
        let cache = manifest.with_file_name("cache");
        if cache.exists() {
            std::fs::remove_dir_all(&cache)?;
        }
    }
    let started = Instant::now();
    let mut server = StdioServer::spawn(&setup.warden, manifest)?;
    server.initialize().await?;
    let listed = server.request("tools/list", json!({})).await?;
    let elapsed = started.elapsed();
    let tools = listed
        .get("tools")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if tools < n {
        bail!("warden listed {tools} tools for {n} plugins");
    }
    if cold {
        // Let every plugin's optimized build reach the cache, so that the warm starts that
        // follow are warm (warden compiles in the background, after tools/list).
        let cache = manifest.with_file_name("cache");
        let deadline = Instant::now() + COMPILE_WAIT;
        while entries(&cache) < n {
            if Instant::now() > deadline {
                bail!(
                    "only {} of {n} plugins compiled within {COMPILE_WAIT:?}",
                    entries(&cache)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (rss_idle, rss_peak) = server.pid().and_then(rss).unwrap_or_default();
    let anon_idle = server
        .pid()
        .and_then(|pid| status_kib(pid, "RssAnon:"))
        .unwrap_or_default();
    server.shutdown().await?;
    Ok(Start {
        elapsed,
        rss_idle,
        anon_idle,
        rss_peak,
    })
}

/// How long a cold start may take to fill the cache.
const COMPILE_WAIT: Duration = Duration::from_secs(300);

/// How many compiled components (`.cwasm`) `cache` holds.
fn entries(cache: &Path) -> usize {
    std::fs::read_dir(cache).map_or(0, |read| {
        read.filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|ext| ext == "cwasm"))
            .count()
    })
}

/// A manifest of `n` distinct copies of `codec` in `dir`, cached in `dir/cache`.
fn manifest(dir: &Path, codec: &[u8], n: usize) -> Result<std::path::PathBuf> {
    let mut text = format!("[cache]\ndir = \"{}\"\n", dir.join("cache").display());
    for i in 0..n {
        let path = dir.join(format!("codec{i}.wasm"));
        std::fs::write(
            &path,
            with_custom_section(codec, "warden-bench", &i.to_le_bytes()),
        )?;
        text.push_str(&format!(
            "\n[plugins.codec{i}]\ncomponent = \"{}\"\n",
            path.display()
        ));
    }
    let manifest = dir.join("warden.toml");
    std::fs::write(&manifest, text)?;
    Ok(manifest)
}

/// `wasm` with a custom section `name` holding `data` appended (valid at the end of a
/// module or component).
fn with_custom_section(wasm: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
    let mut payload = leb128(name.len());
    payload.extend_from_slice(name.as_bytes());
    payload.extend_from_slice(data);
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    out.extend(leb128(payload.len()));
    out.extend(payload);
    out
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}
