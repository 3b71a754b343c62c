//! Cold start: time from exec until a plugin's first `tools/list` and first successful
//! `tools/call`, with an empty compile cache, for the trivial Rust plugin (codec), the Python
//! example (textstats, componentize-py) and the JavaScript example (jsonapi,
//! componentize-js). Each run gets a new, empty `[cache] dir`.
//!
//! Each run also records when the optimized (Cranelift) build reached the cache, then starts
//! warden once more on the cache it filled: the warm start's time to the first call.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::Setup;
use crate::report::Report;
use crate::server::{StdioServer, check_result, rss};
use crate::stats::{mb, millis};

/// How long a run waits for the optimized build to reach the cache.
const CACHE_WAIT: Duration = Duration::from_secs(180);

/// One plugin measured: its component, the tool called and the manifest lines it needs.
struct Subject {
    name: &'static str,
    component: PathBuf,
    tool: &'static str,
    arguments: Value,
    /// Extra keys of the plugin's manifest table.
    grants: String,
}

pub async fn run(
    setup: &Setup,
    polyglot_dir: &Path,
    runs: usize,
    report: &mut Report,
) -> Result<()> {
    for (file, script) in [
        ("textstats.wasm", "plugins/python/build.sh"),
        ("jsonapi.wasm", "plugins/js/build.sh"),
    ] {
        if !polyglot_dir.join(file).is_file() {
            bail!(
                "{} not found: build it with `{script} {}` (it writes \
                 target/tmp/polyglot/{file}), or give --polyglot-dir",
                polyglot_dir.join(file).display(),
                file.trim_end_matches(".wasm"),
            );
        }
    }
    let api = Api::start().await?;
    let subjects = [
        Subject {
            name: "rust",
            component: setup.plugin("codec"),
            tool: "codec__encode",
            arguments: json!({"encoding": "hex", "text": "warden"}),
            grants: String::new(),
        },
        Subject {
            name: "python",
            component: polyglot_dir.join("textstats.wasm"),
            tool: "textstats__text_stats",
            arguments: json!({"path": "/data/notes.txt"}),
            grants: "dirs = [{ host = \"{dir}/data\", guest = \"/data\", mode = \"ro\" }]\n"
                .to_owned(),
        },
        Subject {
            name: "js",
            component: polyglot_dir.join("jsonapi.wasm"),
            tool: "jsonapi__get_json",
            arguments: json!({
                "url": format!("http://127.0.0.1:{}/items", api.port),
                "pointer": "/items/0",
            }),
            grants: format!("allow_hosts = [\"http://127.0.0.1:{}\"]\n", api.port),
        },
    ];
    for subject in &subjects {
        let mut cold = Vec::new();
        for _ in 0..runs.max(1) {
            cold.push(measure(setup, subject).await?);
        }
        let scenario = format!("cold {}", subject.name);
        let median = |pick: Pick| {
            let mut all: Vec<Duration> = cold.iter().map(pick).collect();
            all.sort();
            millis(all[all.len() / 2])
        };
        let figures: [(&str, Pick); 5] = [
            ("cold cache: exec to tools/list (ms)", |r| r.list),
            ("cold cache: exec to first tools/call (ms)", |r| r.call),
            ("cold cache: CPU time to first tools/call (ms)", |r| {
                r.call_cpu
            }),
            ("cold cache: exec to optimized build cached (ms)", |r| {
                r.cached
            }),
            ("warm cache: exec to first tools/call (ms)", |r| r.warm_call),
        ];
        for (figure, pick) in figures {
            report.add(&scenario, figure, median(pick));
        }
        let mut rss: Vec<u64> = cold.iter().map(|r| r.rss_after).collect();
        rss.sort_unstable();
        report.add(
            &scenario,
            "cold cache: RSS once the optimized build is in (MB)",
            mb(rss[rss.len() / 2]),
        );
    }
    Ok(())
}

/// Which figure of a [`Run`] a report line shows.
type Pick = fn(&Run) -> Duration;

/// One cold run and the warm start after it.
struct Run {
    list: Duration,
    call: Duration,
    /// CPU time (user and system, all threads) warden had used at the first call: steadier
    /// than the wall clock on a shared machine.
    call_cpu: Duration,
    cached: Duration,
    /// warden's resident memory once the optimized build is in and its round of loading is
    /// over (the compilers and what they freed are given back then), in bytes.
    rss_after: u64,
    warm_call: Duration,
}

/// How long after the optimized build reached the cache the server is given to end its round
/// of loading before its memory is read: far more than it takes.
const SETTLE: Duration = Duration::from_millis(500);

async fn measure(setup: &Setup, subject: &Subject) -> Result<Run> {
    let dir = tempfile::tempdir()?;
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(dir.path().join("data"))?;
    std::fs::write(
        dir.path().join("data/notes.txt"),
        "The cat and the hat.\nthe end\n",
    )?;
    let manifest = dir.path().join("warden.toml");
    std::fs::write(
        &manifest,
        format!(
            "[cache]\ndir = \"{}\"\n\n[plugins.{}]\ncomponent = \"{}\"\n{}\n{}",
            cache.display(),
            subject.tool.split("__").next().unwrap_or(subject.name),
            subject.component.display(),
            subject
                .grants
                .replace("{dir}", &dir.path().display().to_string()),
            setup.with,
        ),
    )?;

    let started = Instant::now();
    let mut server = StdioServer::spawn(&setup.warden, &manifest)?;
    server.initialize().await?;
    server.request("tools/list", json!({})).await?;
    let list = started.elapsed();
    call(&mut server, subject).await?;
    let call_time = started.elapsed();
    let call_cpu = server.pid().and_then(cpu_time).unwrap_or_default();
    let cached = loop {
        if has_entry(&cache)? {
            break started.elapsed();
        }
        if started.elapsed() > CACHE_WAIT {
            bail!(
                "{}: no compile cache entry after {} s",
                subject.name,
                CACHE_WAIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // The entry is renamed into place whole; give the server a moment to link it too.
    call(&mut server, subject).await?;
    tokio::time::sleep(SETTLE).await;
    let rss_after = server.pid().and_then(rss).map_or(0, |(now, _)| now);
    server.shutdown().await?;

    let started = Instant::now();
    let mut server = StdioServer::spawn(&setup.warden, &manifest)?;
    server.initialize().await?;
    call(&mut server, subject).await?;
    let warm_call = started.elapsed();
    server.shutdown().await?;
    Ok(Run {
        list,
        call: call_time,
        call_cpu,
        cached,
        rss_after,
        warm_call,
    })
}

/// A successful call of the subject's tool.
async fn call(server: &mut StdioServer, subject: &Subject) -> Result<()> {
    let result = server
        .request(
            "tools/call",
            json!({"name": subject.tool, "arguments": subject.arguments}),
        )
        .await
        .with_context(|| format!("{} failed", subject.tool))?;
    check_result(&result)
}

/// The CPU time (user and system) process `pid` has used, from `/proc` (in clock ticks of
/// 10 ms, Linux's `USER_HZ`).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which ends at the last ')': state is field 3, utime 14,
    // stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Whether `cache` holds a compiled component.
fn has_entry(cache: &Path) -> Result<bool> {
    let entries = match std::fs::read_dir(cache) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error.into()),
    };
    for entry in entries {
        if entry?.path().extension().is_some_and(|ext| ext == "cwasm") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A JSON API on 127.0.0.1 for the JavaScript plugin: every request gets
/// `{"items": [{"name": "first"}]}`.
struct Api {
    port: u16,
}

impl Api {
    async fn start() -> Result<Api> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = json!({"items": [{"name": "first"}]}).to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Ok(Api { port })
    }
}
