//! `warden serve | keygen | check | inspect | call | audit | new | embed-docs`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use tracing_subscriber::EnvFilter;

use warden::capabilities::net::Scheme;
use warden::gate::{CallRequest, Principal, Transport};
use warden::host::{Host, HostError};
use warden::manifest::{
    ByteSize, Manifest, format_duration, is_valid_tool_name, prefixed_tool_name,
};
use warden::runtime::{CacheOutcome, CallEvents, EventFuture, LogLevel};
use warden::schema::{self, json_name};

mod authoring;

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
    /// Serve the manifest's tools over MCP: on stdin/stdout, or over Streamable HTTP with
    /// `--http ADDR` or `[http] listen`.
    ///
    /// Example for an MCP client config: command "warden", args ["serve", "--manifest",
    /// "/abs/path/warden.toml"]. Over HTTP: `warden serve --http 127.0.0.1:8080`, then point
    /// the client at http://127.0.0.1:8080/mcp.
    Serve {
        /// The manifest to serve.
        #[arg(long, short, default_value = "warden.toml")]
        manifest: PathBuf,
        /// Serve MCP over Streamable HTTP on this address (IP:PORT; port 0 picks a free
        /// one), overriding `[http] listen`.
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,
        /// Allow HTTP without `[auth]` on a non-loopback address (only behind something that
        /// authenticates).
        #[arg(long)]
        insecure_no_auth: bool,
    },
    /// Make a fresh API key for `[[auth.api_keys]]`: prints the key (give it to the client)
    /// and the manifest entry with its SHA-256 digest (the key itself is never stored).
    Keygen {
        /// The principal the key authenticates.
        #[arg(long, default_value = "agent")]
        principal: String,
        /// The principal's roles, comma-separated.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
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
    /// Check or read the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Write a new plugin in Rust, Python or JavaScript: its code, wit/world.wit, warden.toml
    /// and a README, ready for `warden build`.
    ///
    /// A Rust plugin depends on warden-sdk by version (crates.io); `--sdk PATH` adds a
    /// `[patch.crates-io]` entry to build against a local checkout's `sdk` folder instead.
    New {
        /// The plugin's name: lowercase words joined by `-`, such as `word-count`.
        name: String,
        /// The language: rust, python or js.
        #[arg(long, short, default_value = "rust")]
        lang: warden::authoring::Lang,
        /// The directory to create (default: ./NAME); it must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Rust only: build against this warden-sdk folder (the `sdk` folder of a warden
        /// checkout), written as a relative `[patch.crates-io]` path.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build a plugin folder (Rust, Python or JavaScript, told by Cargo.toml, app.py or
    /// app.js) into a component with its tool descriptions embedded.
    ///
    /// Writes DIR/target/NAME.wasm, the file the `warden.toml` of `warden new` serves, only
    /// once the new component is built, documented and checked: a failed build leaves the
    /// previous one untouched. componentize-py and componentize-js are installed on first use
    /// under $WARDEN_TOOLCHAINS (default: $XDG_CACHE_HOME/warden/toolchains or
    /// ~/.cache/warden/toolchains).
    Build {
        /// The plugin folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Write the component here instead of DIR/target/NAME.wasm.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Rebuild a Python or JavaScript plugin even when its component is up to date.
        #[arg(long)]
        force: bool,
    },
    /// Put a plugin's WIT doc comments (its tool descriptions) into its component.
    ///
    /// Linking drops WIT docs. `warden build` does this itself; run it after building a
    /// component any other way. An earlier copy is replaced. Without `wit/deps/`, warden:mcp is taken from this binary.
    EmbedDocs {
        /// The component (.wasm) to update.
        component: PathBuf,
        /// The plugin's WIT directory (its own package, with any `deps/`).
        #[arg(long)]
        wit: PathBuf,
        /// Write the result here instead of updating COMPONENT in place.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain of audit log files, in order, and report the first broken line.
    ///
    /// Give rotated files oldest first, then the live file:
    /// `warden audit verify audit/warden.jsonl.* audit/warden.jsonl`. Exits 1 if the chain is
    /// broken.
    Verify {
        /// The log files, oldest first.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the last records of an audit log, one readable line each.
    Tail {
        /// The log file (default: the manifest's `[audit] path`).
        file: Option<PathBuf>,
        /// How many records.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// The manifest naming the log, when FILE is not given.
        #[arg(long, short, default_value = "warden.toml")]
        manifest: PathBuf,
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
        Command::Serve {
            manifest,
            http,
            insecure_no_auth,
        } => {
            let (manifest, host) = load(&manifest)?;
            if let Some(listen) = http.or(manifest.http.listen) {
                let auth = warden::auth::Authenticator::new(&manifest.auth)?;
                let options = warden::server::HttpOptions {
                    name: manifest.server.name.clone(),
                    listen,
                    http: manifest.http.clone(),
                    auth,
                    local: stdio_principal(&manifest, Transport::Http),
                    insecure_no_auth,
                };
                runtime.block_on(warden::server::serve_http(host.gate, options))?;
                return Ok(ExitCode::SUCCESS);
            }
            let principal = stdio_principal(&manifest, Transport::Stdio);
            runtime.block_on(warden::server::serve_stdio(
                host.gate,
                manifest.server.name,
                principal,
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen { principal, roles } => keygen(&principal, &roles),
        Command::Check { manifest } => check(&manifest),
        Command::Inspect { component, json } => inspect(&component, json),
        Command::Call {
            manifest,
            tool,
            arguments,
        } => runtime.block_on(call(&manifest, &tool, &arguments)),
        Command::Audit { command } => audit(command),
        Command::New {
            name,
            lang,
            dir,
            sdk,
        } => authoring::new(&name, lang, dir, sdk),
        Command::Build { dir, output, force } => authoring::build(&dir, output, force),
        Command::EmbedDocs {
            component,
            wit,
            output,
        } => authoring::embed_docs(&component, &wit, output.as_deref()),
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
    let mut out = String::new();
    let (manifest, host) = load(path)?;
    let tools: Vec<_> = host.gate.catalog().iter().collect();
    writeln!(
        out,
        "{}: ok, {} plugin(s), {} tool(s)",
        path.display(),
        manifest.plugins.len(),
        tools.len()
    )?;
    writeln!(out, "{}", audit_summary(&manifest))?;
    let key = match &manifest.cache_key {
        warden::manifest::CacheKey::File(file) => format!("the key in {}", file.display()),
        warden::manifest::CacheKey::Secret(_) => "the [cache] key".to_owned(),
    };
    writeln!(
        out,
        "cache: {} (private; entries authenticated with {key})",
        manifest.cache_dir.display()
    )?;
    if let Some(tls) = &manifest.http.tls {
        warden::server::http::server_config(tls)
            .with_context(|| format!("{}: [http] tls", path.display()))?;
    }
    writeln!(out, "{}", http_summary(&manifest))?;
    for plugin in &host.plugins {
        writeln!(
            out,
            "\nplugin {} ({})",
            plugin.config.name,
            plugin.config.component.display()
        )?;
        for grant in &plugin.config.dirs {
            let quota = if grant.mode.is_writable() {
                format!(
                    ", at most {} written and {} files created per call",
                    ByteSize(grant.quota.max_write),
                    grant.quota.max_files
                )
            } else {
                String::new()
            };
            writeln!(
                out,
                "  grant dir   {} -> {} ({}{quota})",
                grant.host.display(),
                grant.guest,
                grant.mode
            )?;
        }
        for (name, _) in &plugin.config.env {
            writeln!(out, "  grant env   {name}")?;
        }
        for pattern in &plugin.config.allow_hosts {
            writeln!(out, "  grant host  {pattern}")?;
        }
        for secret in &plugin.config.secrets {
            writeln!(out, "  grant secret {} ({})", secret.name, secret.source)?;
        }
        if !plugin.config.allow_hosts.is_empty() {
            let net = &plugin.config.net;
            writeln!(
                out,
                "  net         connect {}, request {}, response {}, max {} requests and {} datagrams per call",
                format_duration(net.connect_timeout),
                format_duration(net.request_timeout),
                ByteSize(net.max_response),
                net.max_requests,
                net.max_datagrams
            )?;
        }
        let limits = &plugin.config.limits;
        writeln!(
            out,
            "  limits      fuel {}, memory {} MiB, timeout {:?}, output {} KiB",
            limits.fuel,
            limits.memory >> 20,
            limits.timeout,
            limits.max_output >> 10
        )?;
        writeln!(out, "  gate        {}", gate_summary(&plugin.config))?;
        for warning in import_warnings(plugin) {
            writeln!(out, "  warning     {warning}")?;
        }
        for tool in tools.iter().filter(|t| Arc::ptr_eq(&t.plugin, plugin)) {
            let roles = match host.gate.access(tool.name()).and_then(|a| a.roles()) {
                Some(roles) => format!(" (roles: {})", roles.join(", ")),
                None => String::new(),
            };
            writeln!(out, "  tool        {}{roles}", tool.name())?;
        }
    }
    write_stdout(&out);
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
    let grants = |scheme| {
        plugin
            .config
            .allow_hosts
            .iter()
            .any(|p| p.covers_scheme(scheme))
    };
    if imports_any("wasi:http/") && !grants(Scheme::Http) && !grants(Scheme::Https) {
        warnings.push(
            "imports wasi:http but is granted no host (allow_hosts): every request will be refused"
                .to_string(),
        );
    }
    if imports_any("wasi:sockets/") && !grants(Scheme::Tcp) && !grants(Scheme::Udp) {
        warnings.push(
            "imports wasi:sockets but is granted no tcp:// or udp:// host (allow_hosts): every connection will be refused"
                .to_string(),
        );
    }
    warnings
}

fn inspect(path: &Path, as_json: bool) -> Result<ExitCode> {
    let mut out = String::new();
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
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        write_stdout(&out);
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{}: {} tool(s)", path.display(), tools.len())?;
    for tool in &tools {
        writeln!(out, "\n{}", tool["name"].as_str().unwrap_or_default())?;
        if let Some(description) = tool["description"].as_str() {
            for line in description.lines() {
                writeln!(out, "  {line}")?;
            }
        }
        writeln!(out, "  input schema: {}", tool["inputSchema"])?;
    }
    writeln!(out, "\nimports:")?;
    for import in &description.imports {
        writeln!(out, "  {import}")?;
    }
    writeln!(out, "\ngrants its imports can use:")?;
    if grants.is_empty() {
        writeln!(out, "  none (pure computation)")?;
    }
    for grant in grants {
        writeln!(out, "  {grant}")?;
    }
    write_stdout(&out);
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
    if has("wasi:http/") {
        grants.push("allow_hosts: http:// and https:// hosts it may request");
    }
    if has("wasi:sockets/") {
        grants.push("allow_hosts: tcp:// and udp:// hosts it may connect to");
    }
    if has("wasi:cli/environment") {
        grants.push("secrets: secret values as environment variables");
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
    let (manifest, host) = load(manifest)?;
    let principal = stdio_principal(&manifest, Transport::Cli);
    let request = CallRequest {
        principal: &principal,
        mcp_id: None,
        tool,
        arguments: Some(&arguments),
        events: Arc::new(TerminalEvents),
    };
    let result = host.gate.call(request).await?;
    write_stdout(&format!("{}\n", serde_json::to_string_pretty(&result)?));
    Ok(if result.is_error == Some(true) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Print `text` on stdout. A closed pipe (`warden inspect ... | head`) is not an
/// error worth a panic: the reader has what it wanted.
fn write_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// `warden keygen`: a fresh key on the first line, then the TOML entry to paste.
fn keygen(principal: &str, roles: &[String]) -> Result<ExitCode> {
    if principal.is_empty()
        || principal
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        bail!("invalid principal {principal:?}: names contain no spaces or control characters");
    }
    let key = warden::auth::api_keys::generate()
        .map_err(|_| anyhow::anyhow!("the system's random generator failed"))?;
    let roles: Vec<String> = roles
        .iter()
        .map(|role| role.trim())
        .filter(|role| !role.is_empty())
        .map(|role| format!("{role:?}"))
        .collect();
    let mut out = String::new();
    writeln!(out, "{key}")?;
    writeln!(out)?;
    writeln!(
        out,
        "# Give the key above to the client (`Authorization: Bearer KEY` or `X-API-Key: KEY`);"
    )?;
    writeln!(
        out,
        "# it is shown only now. Add this entry to the manifest:"
    )?;
    writeln!(out, "[[auth.api_keys]]")?;
    writeln!(out, "principal = {principal:?}")?;
    writeln!(out, "roles = [{}]", roles.join(", "))?;
    writeln!(
        out,
        "sha256 = \"{}\"",
        warden::auth::api_keys::digest_hex(&key)
    )?;
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The local user, as the manifest's `[server]` names it.
fn stdio_principal(manifest: &Manifest, transport: Transport) -> Principal {
    Principal::new(
        manifest.server.principal.as_str(),
        manifest.server.roles.clone(),
        transport,
    )
}

fn audit(command: AuditCommand) -> Result<ExitCode> {
    match command {
        AuditCommand::Verify { files } => match warden::audit::verify(&files) {
            Ok(report) => {
                let seqs = report
                    .seqs
                    .map(|(first, last)| format!(" (seq {first}..={last})"))
                    .unwrap_or_default();
                let mut out = format!(
                    "ok: {} record(s){seqs} in {} file(s), chain intact\n",
                    report.records, report.files
                );
                if report.continues {
                    out.push_str(
                        "note: the first record continues a chain from an earlier file; verify that file with these to check the link\n",
                    );
                }
                write_stdout(&out);
                Ok(ExitCode::SUCCESS)
            }
            Err(broken) => {
                eprintln!("broken: {broken}");
                Ok(ExitCode::FAILURE)
            }
        },
        AuditCommand::Tail {
            file,
            lines,
            manifest,
        } => {
            let file = match file {
                Some(file) => file,
                None => {
                    let manifest = Manifest::load(&manifest)
                        .map_err(|e| anyhow::anyhow!("invalid manifest:\n{e}"))?;
                    match manifest.audit {
                        Some(audit) => audit.path,
                        None => bail!(
                            "{} has no [audit] section; name the log file",
                            manifest.path.display()
                        ),
                    }
                }
            };
            let records = warden::audit::last_lines(&file, lines)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let mut out = String::new();
            for line in &records {
                out.push_str(&warden::audit::pretty(line));
                out.push('\n');
            }
            write_stdout(&out);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `audit PATH (rotate at SIZE)`, or that there is none.
fn audit_summary(manifest: &Manifest) -> String {
    match &manifest.audit {
        Some(audit) => format!(
            "audit: {} (rotate at {}{})",
            audit.path.display(),
            ByteSize(audit.rotate),
            if audit.fsync { ", fsync" } else { "" }
        ),
        None => "audit: off (no [audit] section)".to_owned(),
    }
}

/// How the manifest serves HTTP and who may use it, in two lines.
fn http_summary(manifest: &Manifest) -> String {
    let http = &manifest.http;
    let listen = match http.listen {
        Some(addr) => format!("http: listen {addr}"),
        None => "http: off unless `serve --http ADDR`".to_owned(),
    };
    let tls = match &http.tls {
        Some(tls) => format!("TLS ({})", tls.cert.display()),
        None => "no TLS".to_owned(),
    };
    let auth = &manifest.auth;
    let mut who = Vec::new();
    if !auth.api_keys.is_empty() {
        let principals: Vec<&str> = auth.api_keys.iter().map(|k| k.principal.as_str()).collect();
        who.push(format!(
            "{} API key(s) ({})",
            auth.api_keys.len(),
            principals.join(", ")
        ));
    }
    if let Some(oauth) = &auth.oauth {
        let jwks = match &oauth.jwks {
            warden::manifest::JwksSource::Url(url) => url.clone(),
            warden::manifest::JwksSource::File(file) => file.display().to_string(),
        };
        who.push(format!(
            "OAuth bearer JWTs from {} for {} (keys: {jwks})",
            oauth.issuer,
            oauth.audience.join(", ")
        ));
    }
    let auth = if who.is_empty() {
        format!(
            "auth: none (HTTP requests run as `{}`; loopback addresses only)",
            manifest.server.principal
        )
    } else {
        format!("auth: {}", who.join("; "))
    };
    // The caps `serve --http` would apply under this process's descriptor limit.
    let (connections, per_client) =
        warden::server::http::connection_caps(http, warden::server::http::descriptor_limit());
    format!(
        "{listen}, {tls}, max body {}, hosts {}\n\
         http limits: connections {} ({} per client), sessions {} ({} per principal), \
         client info {}; timeouts: header {}, idle {}, TLS handshake {}\n{auth}",
        ByteSize(http.max_body),
        http.allowed_hosts.join(", "),
        connections,
        per_client,
        http.max_sessions,
        http.max_sessions_per_principal,
        ByteSize(http.max_client_info),
        format_duration(http.header_timeout),
        format_duration(http.idle_timeout),
        format_duration(http.tls_handshake_timeout),
    )
}

/// What the gate enforces for a plugin, in one line.
fn gate_summary(plugin: &warden::manifest::Plugin) -> String {
    let policy = &plugin.policy;
    let rate = |rate: Option<warden::manifest::Rate>| match rate {
        Some(r) => format!("{}/min burst {}", r.per_minute, r.burst),
        None => "unlimited".to_owned(),
    };
    let mut parts = vec![
        match &policy.roles {
            Some(roles) => format!("roles {}", roles.join(", ")),
            None => "open to every principal".to_owned(),
        },
        format!("rate {}", rate(policy.rate)),
    ];
    if policy.tool_rate.is_some() {
        parts.push(format!("tool rate {}", rate(policy.tool_rate)));
    }
    if let Some(limit) = policy.concurrency {
        parts.push(format!("concurrency {limit} (queue {})", policy.queue));
    }
    if let Some(redact) = &policy.redact {
        parts.push(format!("redact {}", redact.join(", ")));
    }
    if policy.overflow == warden::manifest::OutputOverflow::Truncate {
        parts.push("truncates large output".to_owned());
    }
    parts.join("; ")
}
