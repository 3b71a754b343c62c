//! `warden-bench`: end-to-end benchmarks of the real `warden` binary, driven as an MCP client.
//!
//! ```text
//! cargo build --release -p warden -p warden-bench
//! target/release/warden-bench                 # everything, a table on stdout
//! target/release/warden-bench stdio --calls 20000 --json report.json
//! ```
//!
//! Every scenario is bounded in count and in time. The figures and their targets are in
//! docs/PERFORMANCE.md.

mod cold;
mod floor;
mod http;
mod polyglot;
mod report;
mod server;
mod startup;
mod stats;
mod stdio;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use report::Report;

/// Benchmark warden end to end: stdio round trips, HTTP throughput, cold start and memory.
#[derive(Parser)]
#[command(name = "warden-bench", version, about)]
struct Cli {
    /// Which scenarios to run (default: stdio, http and startup; `cold` and `polyglot` run only
    /// when named).
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// Calls per measurement (stdio round trips; HTTP calls per concurrency level).
    #[arg(long, default_value_t = 20_000)]
    calls: usize,
    /// Upper bound on the time of each measurement, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Plugin counts for the start-up scenario.
    #[arg(long, value_delimiter = ',', default_value = "1,20,100")]
    plugins: Vec<usize>,
    /// Concurrent clients for the HTTP scenario.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    clients: Vec<usize>,
    /// Cold-start scenario: runs per plugin (each with a new, empty compile cache); the
    /// median is reported.
    #[arg(long, default_value_t = 3)]
    cold_runs: usize,
    /// The `warden` binary (default: the one next to this binary).
    #[arg(long)]
    warden: Option<PathBuf>,
    /// Where the bundled plugin components are (default: this checkout's build output).
    #[arg(long)]
    plugin_dir: Option<PathBuf>,
    /// Where the Python and JavaScript examples are (`textstats.wasm`, `jsonapi.wasm`), for
    /// `polyglot` and `cold` (default: this checkout's `target/tmp/polyglot`, written by
    /// plugins/python/build.sh and plugins/js/build.sh, and by `cargo test -p warden --test
    /// polyglot`).
    #[arg(long)]
    polyglot_dir: Option<PathBuf>,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// TOML appended to every manifest the scenarios write (sections they do not set
    /// themselves, e.g. `[metrics]`, `[tracing]`, `[limits]`): the same run with and without a
    /// feature gives its cost.
    #[arg(long, value_name = "FILE")]
    with: Option<PathBuf>,
    /// HTTP scenario: serve from this many `warden` processes behind `haproxy` (round robin,
    /// from the PATH) instead of one process.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// The log filter warden runs with (`WARDEN_LOG`). `error` by default, so that logging is
    /// out of the figures; `warn,warden=info` is what a server runs with when nothing is set.
    #[arg(long, value_name = "FILTER", default_value = "error")]
    log: String,
    /// Serve as the HTTP scenario's floor (a server that only answers) until killed: what
    /// the scenario starts itself.
    #[arg(long, hide = true)]
    floor_server: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// `tools/call` round trips over stdio, sequential and pipelined.
    Stdio,
    /// `tools/call` over Streamable HTTP with API-key auth, audit and filtering on.
    Http,
    /// Time from exec to a successful `tools/list`, cold and warm cache, and memory.
    Startup,
    /// Time from exec to the first `tools/list` and the first successful `tools/call` of one
    /// plugin on an empty compile cache (Rust, Python, JavaScript), when its optimized build
    /// reaches the cache, and the warm start after it.
    Cold,
    /// Python and JavaScript tool calls over stdio (sequential p50/p95/mean, pipelined), beside
    /// the trivial Rust tool, from one server. Only when named: it needs the components
    /// `plugins/python/build.sh` and `plugins/js/build.sh` build.
    Polyglot,
}

/// Where things are, shared by the scenarios.
pub struct Setup {
    pub warden: PathBuf,
    pub plugin_dir: PathBuf,
    pub calls: usize,
    pub budget: Duration,
    /// TOML appended to every manifest (`--with`).
    pub with: String,
}

impl Setup {
    /// The path of bundled plugin `name`'s component.
    pub fn plugin(&self, name: &str) -> PathBuf {
        self.plugin_dir.join(format!("{name}.wasm"))
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.floor_server {
        return floor::serve();
    }
    // SAFETY: no other thread runs yet; every warden this process starts inherits it.
    unsafe { std::env::set_var("WARDEN_LOG", &cli.log) };
    let warden = match cli.warden {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark binary has no directory")?
            .join("warden"),
    };
    if !warden.is_file() {
        bail!(
            "{} not found: build it first with `cargo build --release -p warden -p warden-bench`",
            warden.display()
        );
    }
    let plugin_dir = cli.plugin_dir.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins/wasm32-wasip2/release")
    });
    let with = match &cli.with {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => String::new(),
    };
    let setup = Setup {
        warden,
        plugin_dir,
        calls: cli.calls.max(1),
        budget: Duration::from_secs(cli.seconds.max(1)),
        with,
    };
    if !setup.plugin("codec").is_file() {
        bail!(
            "no plugins in {}: `cargo build --release -p warden` builds them",
            setup.plugin_dir.display()
        );
    }
    let scenarios = if cli.scenarios.is_empty() {
        vec![Scenario::Stdio, Scenario::Http, Scenario::Startup]
    } else {
        cli.scenarios
    };

    let polyglot_dir = cli.polyglot_dir.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tmp/polyglot")
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut report = Report::default();
    runtime.block_on(async {
        for scenario in scenarios {
            match scenario {
                Scenario::Stdio => stdio::run(&setup, &mut report).await,
                Scenario::Http => http::run(&setup, &cli.clients, cli.replicas, &mut report).await,
                Scenario::Startup => startup::run(&setup, &cli.plugins, &mut report).await,
                Scenario::Cold => {
                    cold::run(&setup, &polyglot_dir, cli.cold_runs, &mut report).await
                }
                Scenario::Polyglot => polyglot::run(&setup, &polyglot_dir, &mut report).await,
            }?;
        }
        anyhow::Ok(())
    })?;
    if let Some(path) = cli.json {
        std::fs::write(&path, serde_json::to_vec_pretty(&report.to_json())?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}
