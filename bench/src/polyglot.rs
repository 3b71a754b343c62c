//! Python and JavaScript plugin calls over stdio, beside the trivial Rust tool as the floor:
//! one `warden serve` serving codec, `textstats` (componentize-py) and `jsonapi`
//! (componentize-js), called one at a time in alternating blocks (so that load from elsewhere
//! hits all three alike), then pipelined.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::Setup;
use crate::report::Report;
use crate::server::{StdioServer, check_result};
use crate::stats::{mb, micros};
use crate::stdio::{self, PIPELINE_DEPTH};

/// Calls in each tool's block of the sequential measurement.
const BLOCK: usize = 16;

/// Calls before measuring: the first ones fault in code and fill the pool's slots.
const WARM_UP: usize = 50;

/// One tool measured: its name in the report, its call, and what a good answer is.
struct Tool {
    label: &'static str,
    call: Value,
    /// The tool reports an error by design (the JS tool's cheapest path is a refusal made in
    /// JavaScript): the answer must carry this text.
    expected_error: Option<&'static str>,
}

impl Tool {
    fn check(&self, result: &Value) -> Result<()> {
        match self.expected_error {
            None => check_result(result),
            Some(text) => {
                if result.to_string().contains(text) {
                    Ok(())
                } else {
                    bail!("{} answered {result}, not `{text}`", self.label)
                }
            }
        }
    }
}

/// The three tools: codec's `encode` (Rust, the floor), textstats' `text-stats` of a
/// 3-line file (Python: open, read, count), jsonapi's `post-json` with a body that is not
/// JSON (JavaScript: `JSON.parse` fails and the function throws; no network).
fn tools() -> [Tool; 3] {
    [
        Tool {
            label: "rust",
            call: crate::stdio::trivial_call(),
            expected_error: None,
        },
        Tool {
            label: "python",
            call: json!({"name": "textstats__text_stats",
                         "arguments": {"path": "/data/notes.txt", "top": 3}}),
            expected_error: None,
        },
        Tool {
            label: "js",
            call: json!({"name": "jsonapi__post_json",
                         "arguments": {"url": "http://127.0.0.1:9/echo", "body": "not json"}}),
            expected_error: Some("body is not valid JSON"),
        },
    ]
}

/// The components `--polyglot-dir` must hold, and how to build them.
fn components(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let textstats = dir.join("textstats.wasm");
    let jsonapi = dir.join("jsonapi.wasm");
    for (path, script, name) in [
        (&textstats, "plugins/python/build.sh", "textstats"),
        (&jsonapi, "plugins/js/build.sh", "jsonapi"),
    ] {
        if !path.is_file() {
            bail!(
                "{} not found. Build it with `WARDEN_POLYGLOT_OUT={} bash {script} {name}` \
                 (or run `cargo test -p warden --test polyglot`, which builds both into \
                 target/tmp/polyglot), or pass --polyglot-dir",
                path.display(),
                dir.display()
            );
        }
    }
    Ok((textstats, jsonapi))
}

pub async fn run(setup: &Setup, polyglot_dir: &Path, report: &mut Report) -> Result<()> {
    let (textstats, jsonapi) = components(polyglot_dir)?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    std::fs::write(data.join("notes.txt"), "The cat and the hat.\nthe end\n")?;
    // A cache kept beside the components, so only the first run compiles (seconds per
    // plugin), before the server starts: the figures are of the optimized build.
    let cache = polyglot_dir.join("warden-bench-cache");
    let manifest = dir.path().join("warden.toml");
    std::fs::write(
        &manifest,
        format!(
            "[cache]\ndir = \"{cache}\"\n\n{with}\n\
             [plugins.codec]\ncomponent = \"{codec}\"\nprefix = \"\"\n\n\
             [plugins.textstats]\ncomponent = \"{textstats}\"\n\
             dirs = [{{ host = \"{data}\", guest = \"/data\", mode = \"ro\" }}]\n\n\
             [plugins.jsonapi]\ncomponent = \"{jsonapi}\"\n",
            cache = cache.display(),
            with = setup.with,
            codec = setup.plugin("codec").display(),
            textstats = textstats.display(),
            jsonapi = jsonapi.display(),
            data = data.display(),
        ),
    )?;
    stdio::compile_into_cache(setup, &manifest)?;
    let mut server = StdioServer::spawn(&setup.warden, &manifest)?;
    server.initialize().await?;
    let tools = tools();
    // The first call of each waits for its plugin's code (compiled on a cold cache).
    let started = Instant::now();
    for tool in &tools {
        tool.check(&server.request("tools/call", tool.call.clone()).await?)
            .with_context(|| format!("the first {} call", tool.label))?;
    }
    report.add(
        "polyglot",
        "first call of each, after initialize (ms)",
        crate::stats::millis(started.elapsed()),
    );
    for tool in &tools {
        for _ in 0..WARM_UP {
            tool.check(&server.request("tools/call", tool.call.clone()).await?)?;
        }
    }

    let mut samples: Vec<Vec<Duration>> = tools.iter().map(|_| Vec::new()).collect();
    let started = Instant::now();
    while samples[0].len() < setup.calls && started.elapsed() < setup.budget {
        for (tool, samples) in tools.iter().zip(&mut samples) {
            for _ in 0..BLOCK {
                let sent = Instant::now();
                let result = server.request("tools/call", tool.call.clone()).await?;
                samples.push(sent.elapsed());
                tool.check(&result)?;
            }
        }
    }
    for (tool, samples) in tools.iter().zip(&mut samples) {
        let Some([p50, p95, mean]) = summary(samples) else {
            continue;
        };
        let label = tool.label;
        report.add("polyglot", &format!("{label} calls"), samples.len());
        report.add("polyglot", &format!("{label} p50 (µs)"), micros(p50));
        report.add("polyglot", &format!("{label} p95 (µs)"), micros(p95));
        report.add("polyglot", &format!("{label} mean (µs)"), micros(mean));
    }
    // Each tool gets a third of the budget when pipelined.
    let budget = setup.budget / 3;
    for tool in &tools {
        let (calls, elapsed) = stdio::pipelined(
            &mut server,
            &tool.call,
            |result| tool.check(result),
            setup.calls,
            budget,
        )
        .await?;
        report.add(
            "polyglot",
            &format!("{} pipelined calls/s (depth {PIPELINE_DEPTH})", tool.label),
            (calls as f64 / elapsed.as_secs_f64()).round(),
        );
    }
    if let Some(pid) = server.pid()
        && let Some((rss, peak)) = crate::server::rss(pid)
    {
        report.add("polyglot", "server RSS after (MB)", mb(rss));
        report.add("polyglot", "server peak RSS (MB)", mb(peak));
        // Of the RSS, the copy-on-write images' pages are shared memory mapped in each pool
        // slot that used them (counted once per slot, held once); anonymous pages are the
        // process's own.
        for (field, figure) in [
            ("RssAnon:", "server RSS after, anonymous (MB)"),
            ("RssShmem:", "server RSS after, shared images (MB)"),
        ] {
            if let Some(bytes) = crate::server::status_kib(pid, field) {
                report.add("polyglot", figure, mb(bytes));
            }
        }
    }
    server.shutdown().await
}

/// Median, 95th percentile and mean of `samples` (which it sorts).
fn summary(samples: &mut [Duration]) -> Option<[Duration; 3]> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let total: Duration = samples.iter().sum();
    Some([at(0.50), at(0.95), total / samples.len() as u32])
}
