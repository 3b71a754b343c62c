//! `warden serve | check | inspect | call`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use tracing_subscriber::EnvFilter;

use warden::gate::CallRequest;
use warden::host::{Host, HostError};
use warden::manifest::{Manifest, is_valid_tool_name, prefixed_tool_name};
use warden::runtime::{CacheOutcome, CallEvents, EventFuture, LogLevel};
use warden::schema::{self, json_name};

/// Serve sandboxed WebAssembly tools to AI agents over the Model Context Protocol.
///
/// Each plugin is a WASI component listed in a manifest (warden.toml) with exactly what it may
/// touch: directories, environment variables, CPU, memory and time. Every function a plugin
/// exports becomes an MCP tool.
#[derive(Parser)]
#[command(name = "warden", version, about, long_about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter for stderr, e.g. `info`, `debug`, `warden=debug` (also `WARDEN_LOG`).
    #[arg(
        long,
        global = true,
        env = "WARDEN_LOG",
        default_value = "warn,warden=info"
    )]
    log: String,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the manifest's tools over MCP on stdin/stdout.
    ///
    /// Example for an MCP client config: command "warden", args ["serve", "--manifest",
    /// "/abs/path/warden.toml"].
    Serve {
        /// The manifest to serve.
        #[arg(long, short, default_value = "warden.toml")]
        manifest: PathBuf,
    },
    /// Validate a manifest and the components it names; print the tools it would serve.
    ///
    /// Every error names the file, line and key to fix. Exits non-zero on any error.
    Check {
        /// The manifest to check.
        #[arg(default_value = "warden.toml")]
        manifest: PathBuf,
    },
    /// Show a component's tools (with their JSON Schemas) and the grants its imports need.
    Inspect {
        /// A WebAssembly component (.wasm).
        component: PathBuf,
        /// Print machine-readable JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Call one tool through the same gate and sandbox as `serve`, and print the result.
    ///
    /// Exits 0 on success and 1 when the tool returned an error.
    Call {
        /// The manifest that grants the tool's plugin.
        #[arg(long, short, default_value = "warden.toml")]
        manifest: PathBuf,
        /// The tool's name, as `tools/list` shows it (e.g. `files__read_text`).
        tool: String,
        /// The arguments, as a JSON object.
        #[arg(default_value = "{}")]
        arguments: String,
    },
}

/// Run the command line; errors are printed here, once.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("warn,warden=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

fn run(command: Command) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match command {
        Command::Serve { manifest } => {
            let (manifest, host) = load(&manifest)?;
            runtime.block_on(warden::server::serve_stdio(host.gate, manifest.server.name))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { manifest } => check(&manifest),
        Command::Inspect { component, json } => inspect(&component, json),
        Command::Call {
            manifest,
            tool,
            arguments,
        } => runtime.block_on(call(&manifest, &tool, &arguments)),
    }
}

/// Load a manifest and everything it names, or explain every problem.
fn load(path: &Path) -> Result<(Manifest, Host)> {
    let manifest = Manifest::load(path).map_err(|e| anyhow::anyhow!("invalid manifest:\n{e}"))?;
    let host = Host::load(&manifest).map_err(|errors| anyhow::anyhow!(join(&errors)))?;
    for report in &host.loaded {
        let source = match report.cache {
            CacheOutcome::Hit => "cache",
            CacheOutcome::Compiled => "compiled",
        };
        tracing::info!(
            plugin = report.plugin,
            source,
            elapsed_ms = report.elapsed.as_millis() as u64,
            "plugin loaded"
        );
    }
    Ok((manifest, host))
}

fn join(errors: &[HostError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("cannot load the plugins:\n{}", lines.join("\n"))
}

fn check(path: &Path) -> Result<ExitCode> {
    let (manifest, host) = load(path)?;
    let tools: Vec<_> = host.gate.catalog().iter().collect();
    println!(
        "{}: ok, {} plugin(s), {} tool(s)",
        path.display(),
        manifest.plugins.len(),
        tools.len()
    );
    for plugin in &host.plugins {
        println!(
            "\nplugin {} ({})",
            plugin.config.name,
            plugin.config.component.display()
        );
        for grant in &plugin.config.dirs {
            println!(
                "  grant dir   {} -> {} ({:?})",
                grant.host.display(),
                grant.guest,
                grant.mode
            );
        }
        for (name, _) in &plugin.config.env {
            println!("  grant env   {name}");
        }
        let limits = &plugin.config.limits;
        println!(
            "  limits      fuel {}, memory {} MiB, timeout {:?}, output {} KiB",
            limits.fuel,
            limits.memory >> 20,
            limits.timeout,
            limits.max_output >> 10
        );
        for warning in import_warnings(plugin) {
            println!("  warning     {warning}");
        }
        for tool in tools.iter().filter(|t| Arc::ptr_eq(&t.plugin, plugin)) {
            println!("  tool        {}", tool.name());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Imports that no grant of the plugin will satisfy: the plugin loads, but the capability
/// will be empty at run time.
fn import_warnings(plugin: &warden::runtime::Plugin) -> Vec<String> {
    let imports = &plugin.description.imports;
    let mut warnings = Vec::new();
    let imports_any = |prefix: &str| imports.iter().any(|i| i.starts_with(prefix));
    if imports_any("wasi:filesystem/") && plugin.config.dirs.is_empty() {
        warnings.push(
            "imports wasi:filesystem but is granted no directory: it will see no files".to_string(),
        );
    }
    if imports_any("wasi:sockets/") {
        warnings.push("imports wasi:sockets, but warden grants no network yet: every connection will be refused".to_string());
    }
    warnings
}

fn inspect(path: &Path, as_json: bool) -> Result<ExitCode> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let description = schema::describe_component(&bytes)
        .with_context(|| format!("{} is not a usable component", path.display()))?;
    let prefix = path
        .file_stem()
        .and_then(|s| s.to_str())
        .map(|s| json_name(s).replace('.', "_"))
        .unwrap_or_default();
    let tools: Vec<Value> = description
        .functions
        .iter()
        .map(|f| {
            let name = prefixed_tool_name(&prefix, &json_name(&f.name));
            json!({
                "name": name,
                "name_is_valid": is_valid_tool_name(&name),
                "function": f.name,
                "interface": f.interface,
                "description": f.docs,
                "inputSchema": f.input_schema(),
            })
        })
        .collect();
    let grants: Vec<&str> = grants_needed(&description.imports);
    if as_json {
        let report = json!({
            "component": path.display().to_string(),
            "tools": tools,
            "imports": description.imports,
            "grants": grants,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}: {} tool(s)", path.display(), tools.len());
    for tool in &tools {
        println!("\n{}", tool["name"].as_str().unwrap_or_default());
        if let Some(description) = tool["description"].as_str() {
            for line in description.lines() {
                println!("  {line}");
            }
        }
        println!("  input schema: {}", tool["inputSchema"]);
    }
    println!("\nimports:");
    for import in &description.imports {
        println!("  {import}");
    }
    println!("\ngrants its imports can use:");
    if grants.is_empty() {
        println!("  none (pure computation)");
    }
    for grant in grants {
        println!("  {grant}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Which manifest grants would give a component's imports something to act on.
fn grants_needed(imports: &[String]) -> Vec<&'static str> {
    let mut grants = Vec::new();
    let has = |prefix: &str| imports.iter().any(|i| i.starts_with(prefix));
    if has("wasi:filesystem/") {
        grants.push("dirs: directories to preopen (ro or rw)");
    }
    if has("wasi:cli/environment") {
        grants.push("env: environment variables");
    }
    if has("wasi:sockets/") || has("wasi:http/") {
        grants.push("network: outbound hosts (not yet supported by this warden)");
    }
    grants
}

/// Prints a call's log and progress events on stderr.
struct TerminalEvents;

impl CallEvents for TerminalEvents {
    fn log(&self, level: LogLevel, message: String) -> EventFuture<'_> {
        eprintln!("[{level:?}] {message}");
        Box::pin(std::future::ready(()))
    }

    fn progress(&self, done: f64, total: Option<f64>, message: Option<String>) -> EventFuture<'_> {
        let total = total.map(|t| format!("/{t}")).unwrap_or_default();
        eprintln!("[progress {done}{total}] {}", message.unwrap_or_default());
        Box::pin(std::future::ready(()))
    }
}

async fn call(manifest: &Path, tool: &str, arguments: &str) -> Result<ExitCode> {
    let arguments: Value =
        serde_json::from_str(arguments).context("the arguments are not valid JSON")?;
    let Value::Object(arguments) = arguments else {
        bail!("the arguments must be a JSON object, like '{{\"path\": \"/data/a.txt\"}}'");
    };
    let (_, host) = load(manifest)?;
    let request = CallRequest {
        tool,
        arguments: Some(&arguments),
        events: Arc::new(TerminalEvents),
    };
    let result = host.gate.call(request).await?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(if result.is_error == Some(true) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
