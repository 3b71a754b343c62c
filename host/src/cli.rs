//! `warden serve | keygen | check | lock | inspect | call | audit | approvals | deploy | init |
//! completions | man | new | embed-docs`.
//!
//! This file holds the command line's shape (clap) and what the commands share: finding and
//! loading the manifest, the log, stdout. Each command's body lives in its own module.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use warden::gate::{Principal, Transport};
use warden::host::{Host, HostError};
use warden::manifest::Manifest;

mod approvals;
mod audit;
mod authoring;
mod call;
mod check;
mod deploy;
mod docs;
mod init;
mod inspect;
mod keygen;
mod lock;
mod push;
mod serve;
mod status;

/// Serve sandboxed WebAssembly tools to AI agents over the Model Context Protocol.
///
/// Each plugin is a WASI component listed in a manifest (warden.toml) with exactly what it may
/// touch: directories, environment variables, CPU, memory and time. Every function a plugin
/// exports becomes an MCP tool.
#[derive(Parser)]
#[command(name = "warden", version = env!("WARDEN_VERSION"), about, long_about, propagate_version = true)]
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
    /// How log lines on stderr are written: `text` (readable) or `json` (one object per
    /// line, for log collectors; also `WARDEN_LOG_FORMAT`).
    #[arg(
        long,
        global = true,
        env = "WARDEN_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,
}

/// The shape of log lines on stderr.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event (tracing-subscriber's JSON format).
    Json,
}

/// `-m/--manifest FILE`, shared by every command that reads a manifest.
#[derive(Args, Clone, Default)]
struct ManifestArg {
    /// The manifest (default: ./warden.toml).
    #[arg(long, short, value_name = "FILE")]
    manifest: Option<PathBuf>,
}

impl ManifestArg {
    /// The manifest's path: `--manifest`, else `positional` (`serve FILE`, `check FILE`),
    /// else ./warden.toml; an error that says how to get one when the file does not exist.
    fn path(self, positional: Option<PathBuf>) -> Result<PathBuf> {
        match self.manifest.or(positional) {
            Some(path) if path.exists() => Ok(path),
            Some(path) => bail!(
                "{} not found: check the path, or run `warden init {}` to write a commented starter",
                path.display(),
                path.display()
            ),
            None => {
                let path = PathBuf::from("warden.toml");
                if !path.exists() {
                    bail!(
                        "warden.toml not found: pass --manifest FILE, or run `warden init` to write a commented starter"
                    );
                }
                Ok(path)
            }
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the manifest's tools over MCP: on stdin/stdout, or over Streamable HTTP with
    /// `--http HOST:PORT` or `[http] listen`.
    ///
    /// Example for an MCP client config: command "warden", args ["serve", "--manifest",
    /// "/abs/path/warden.toml"]. Over HTTP: `warden serve --http 127.0.0.1:8080`, then point
    /// the client at http://127.0.0.1:8080/mcp.
    Serve {
        /// The manifest to serve (same as --manifest; default: ./warden.toml).
        #[arg(value_name = "MANIFEST", conflicts_with = "manifest")]
        file: Option<PathBuf>,
        #[command(flatten)]
        manifest: ManifestArg,
        /// Serve MCP over Streamable HTTP on this address, overriding `[http] listen`:
        /// HOST:PORT such as `127.0.0.1:8080`, `[::1]:8080` or `localhost:8080` (a name is
        /// resolved; port 0 picks a free one).
        #[arg(long, value_name = "HOST:PORT")]
        http: Option<String>,
        /// Allow HTTP without `[auth]` on a non-loopback address (only behind something that
        /// authenticates).
        #[arg(long)]
        insecure_no_auth: bool,
        /// Reload when the manifest or a component it names changes (as on SIGHUP, which
        /// always reloads).
        #[arg(long)]
        watch: bool,
    },
    /// Show this user's running servers: their plugins (compiling, ready or failed), grants,
    /// tools, reloads, and the calls and refusals each has answered.
    ///
    /// Every `warden serve` answers on a private Unix socket (in `$XDG_RUNTIME_DIR/warden`,
    /// else `/tmp/warden-UID`); only the same user (or root) can read it.
    Status {
        /// Only the servers serving this manifest.
        #[arg(long, short, value_name = "FILE")]
        manifest: Option<PathBuf>,
        /// Print a JSON array, one object per server.
        #[arg(long)]
        json: bool,
    },
    /// Make a fresh API key for `[[auth.api_keys]]`: prints the key (give it to the client)
    /// and the manifest entry with its SHA-256 digest (the key itself is never stored).
    ///
    /// The principal and roles are checked as the manifest checks them.
    Keygen {
        /// The principal the key authenticates.
        #[arg(long, default_value = "agent")]
        principal: String,
        /// The principal's roles, comma-separated.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Instead of an API key: write a new Ed25519 key for signing audit checkpoints to
        /// FILE (mode 0600, never over an existing file) and print its public key and the
        /// `[audit]` entry.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["principal", "roles"])]
        audit: Option<PathBuf>,
    },
    /// Validate a manifest and the components it names; print the tools it would serve.
    ///
    /// Every error names the file, line and key to fix. Exits non-zero on any error. Warnings
    /// (grants a component cannot use, imports no grant satisfies) can be acknowledged in the
    /// manifest with `acknowledge = ["CODE"]`.
    Check {
        /// The manifest to check (same as --manifest; default: ./warden.toml).
        #[arg(value_name = "MANIFEST", conflicts_with = "manifest")]
        file: Option<PathBuf>,
        #[command(flatten)]
        manifest: ManifestArg,
        /// Print a machine-readable JSON report instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Pin what the model sees: write `warden.lock` beside the manifest, or show how the
    /// tools now differ from it.
    ///
    /// The lock records each plugin's component digest, each tool's name, description,
    /// schemas and annotations as `tools/list` serves them, and each prompt's, resource's and
    /// template's descriptor; commit it. While it exists, `serve` and `check` refuse a plugin
    /// whose tools, prompts or resources differ from it (`[server] lock`).
    /// Review a change with `--diff`, then run `warden lock` again to accept it.
    Lock {
        #[command(flatten)]
        manifest: ManifestArg,
        /// Print what differs from the lock instead of writing it; exit 1 when something
        /// does, 0 when nothing does.
        #[arg(long)]
        diff: bool,
    },
    /// Publish a component to an OCI registry as a wasm artifact, and print the pinned
    /// `oci://...@sha256:...` reference to write as the plugin's `component`.
    ///
    /// The layout is the standard one (config `application/vnd.wasm.config.v0+json`, one
    /// `application/wasm` layer). Plain HTTP is used for loopback registries only. Basic auth
    /// from WARDEN_OCI_USERNAME and WARDEN_OCI_PASSWORD; SOURCE_DATE_EPOCH fixes the config's
    /// `created` time (and so the digest).
    Push {
        /// A WebAssembly component (.wasm).
        component: PathBuf,
        /// Where to publish it: oci://REGISTRY/REPOSITORY:TAG.
        reference: String,
        /// Also sign what was pushed with this key (a PEM PKCS#8 P-256 private key), as cosign
        /// does: a signature under the `sha256-<digest>.sig` tag, which `verify = { key = ... }`
        /// and `cosign verify --key` check.
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
    },
    /// Sign a component with a key: a detached Sigstore bundle beside a file, or a cosign
    /// signature in the registry for a pinned oci:// reference.
    ///
    /// The key is a PEM PKCS#8 ECDSA P-256 private key:
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out cosign.key`, and its
    /// public half `openssl pkey -in cosign.key -pubout -out cosign.pub` goes in the manifest:
    /// `verify = { key = "cosign.pub" }`.
    Sign {
        /// A component file, or oci://REGISTRY/REPOSITORY@sha256:DIGEST.
        target: String,
        /// The private key to sign with.
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// Where to write a file's bundle (default: the file's path + `.sigstore.json`).
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
    },
    /// Show a component's tools (with their JSON Schemas) and the grants its imports need.
    Inspect {
        /// A WebAssembly component (.wasm).
        component: PathBuf,
        /// Print machine-readable JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Call one tool, get one prompt (`--prompt`) or read one resource (`--read`) through
    /// the same gate and sandbox as `serve`, and print the result.
    ///
    /// Exits 0 on success and 1 when the tool returned an error. The call runs as the
    /// manifest's `[server] principal` and `roles`, or as `--principal` with `--roles`, to try
    /// a role setup; a call that principal may not make says so. Each is audited as `serve`
    /// audits it.
    Call {
        #[command(flatten)]
        manifest: ManifestArg,
        /// Run the call as this principal (default: `[server] principal`; without `--roles`
        /// it holds no roles).
        #[arg(long, value_name = "NAME")]
        principal: Option<String>,
        /// The principal's roles, comma-separated (default: `[server] roles` when
        /// `--principal` is not given).
        #[arg(long, value_delimiter = ',', value_name = "ROLES")]
        roles: Option<Vec<String>>,
        /// NAME is a prompt's name, as `prompts/list` shows it, and ARGUMENTS its arguments
        /// (a JSON object of strings): `prompts/get`.
        #[arg(long, conflicts_with = "read")]
        prompt: bool,
        /// NAME is a resource's URI (listed, or matching a template), and there are no
        /// arguments: `resources/read`.
        #[arg(long)]
        read: bool,
        /// The tool's name, as `tools/list` shows it (e.g. `files__read_text`); with
        /// `--prompt` a prompt's, with `--read` a URI.
        #[arg(value_name = "NAME")]
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
    /// Answer tool calls waiting for an operator's approval on a running HTTP server.
    ///
    /// A tool with `approval = "ask"`, called by a client that cannot ask its user, waits up
    /// to `[approval] timeout` for an operator when `[approval] operators` names roles. An
    /// operator is a principal of `[auth]` holding one of those roles; nobody answers a call
    /// of their own principal. The API key comes from `--key-file` or `WARDEN_API_KEY` (never
    /// the command line, where `ps` would show it).
    ///
    /// Example:
    ///   export WARDEN_API_KEY=$(cat ~/.config/warden/operator.key)
    ///   warden approvals list --url http://127.0.0.1:8080
    ///   warden approvals allow 3f2a...e9 --url http://127.0.0.1:8080
    #[command(verbatim_doc_comment)]
    Approvals {
        #[command(subcommand)]
        command: ApprovalsCommand,
    },
    /// Render deployment files from a manifest (see docs/DEPLOY.md#kubernetes).
    Deploy {
        #[command(subcommand)]
        command: DeployCommand,
    },
    /// Write a commented starter manifest (default: ./warden.toml); never overwrites a file.
    Init {
        /// The manifest to write.
        #[arg(value_name = "FILE", default_value = "warden.toml")]
        file: PathBuf,
    },
    /// Print a shell completion script, e.g. `warden completions bash > ~/.local/share/bash-completion/completions/warden`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print warden's man page (roff), e.g. `warden man > ~/.local/share/man/man1/warden.1`.
    Man,
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
    /// Check the hash chain of audit log files, in order, and report the first broken line;
    /// with --key, the signed checkpoints too.
    ///
    /// Without FILES: the manifest's `[audit] path` with its rotated files, oldest first.
    /// Otherwise give rotated files oldest first, then the live file:
    /// `warden audit verify audit/warden.jsonl.* audit/warden.jsonl`, or one directory: every
    /// log in it (each replica's, live and rotated files grouped by name), each verified and
    /// reported on its own. Exits 1 if any chain is broken.
    Verify {
        /// The log files, oldest first, or one directory of logs (default: the manifest's log
        /// and its rotated files).
        #[arg(conflicts_with = "manifest")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        manifest: ManifestArg,
        /// The public key of the checkpoints' signatures (a PEM `PUBLIC KEY` file, as
        /// `GET /audit/key` serves it, or the key's base64): every checkpoint must be signed
        /// by it, there must be one, and the records after the last one must stay within its
        /// policy (which shows the log was not cut after a later checkpoint).
        #[arg(long, value_name = "PUB")]
        key: Option<PathBuf>,
        /// Checkpoints kept elsewhere as they were written (a file of checkpoint lines, as
        /// `GET /audit/checkpoint` serves them): each must still be in its replica's log,
        /// unchanged. A log cut after a witnessed checkpoint fails.
        #[arg(long, value_name = "FILE")]
        witness: Option<PathBuf>,
    },
    /// Print the last records of an audit log, one readable line each; `-f` follows it.
    Tail {
        /// The log file (default: the manifest's `[audit] path`).
        #[arg(conflicts_with = "manifest")]
        file: Option<PathBuf>,
        #[command(flatten)]
        manifest: ManifestArg,
        /// How many records.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// Keep printing records as they are written (through rotations) until interrupted.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only records of this principal.
        #[arg(long, value_name = "NAME")]
        principal: Option<String>,
        /// Only records of this tool.
        #[arg(long, value_name = "NAME")]
        tool: Option<String>,
        /// Only records with this outcome.
        #[arg(long, value_parser = audit::outcome_names())]
        outcome: Option<String>,
        /// Print the raw records (JSON), one per line, instead of readable lines.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DeployCommand {
    /// Print a Kubernetes NetworkPolicy (YAML) allowing warden's pods the egress the manifest
    /// grants: each plugin's `allow_hosts` and the servers warden connects to for them (Redis
    /// of `[kv]` and `[tasks]`, Postgres of `sql`, the OAuth JWKS URL, OCI registries).
    ///
    /// Only the manifest is read (with its `${VAR}`s set, as `check` reads it); no component
    /// is opened. An IP address or CIDR block becomes an `ipBlock` of exactly that; a DNS name,
    /// which a NetworkPolicy cannot name, becomes every public address on its ports, and is
    /// listed in a comment for an FQDN-capable policy (Cilium, Calico). A plugin allowed any
    /// host (`*`), or a name on any port, is refused unless --allow-any-host.
    ///
    /// Example:
    ///   warden deploy network-policy -m warden.toml > networkpolicy-egress.yaml
    ///   kubectl exec deploy/warden -- warden deploy network-policy | kubectl apply -f -
    #[command(verbatim_doc_comment)]
    NetworkPolicy {
        #[command(flatten)]
        manifest: ManifestArg,
        /// The policy's name (metadata.name).
        #[arg(long, default_value = warden::deploy::Options::DEFAULT_NAME)]
        name: String,
        /// The policy's namespace (default: none, the one `kubectl apply` targets).
        #[arg(long)]
        namespace: Option<String>,
        /// A label of warden's pods, KEY=VALUE; repeat for more (default:
        /// app.kubernetes.io/name=warden, as deploy/kubernetes labels them).
        #[arg(long = "selector", value_name = "KEY=VALUE", value_parser = deploy::label)]
        selector: Vec<(String, String)>,
        /// Render `*` hosts and names on any port as egress to every public address on
        /// their ports (with a warning comment) instead of refusing them.
        #[arg(long)]
        allow_any_host: bool,
    },
}

#[derive(Subcommand)]
enum ApprovalsCommand {
    /// Show the calls waiting for an operator, oldest first: id, tool, principal, waiting
    /// since, reason, arguments (redacted and cut as the question shows them).
    List {
        #[command(flatten)]
        remote: RemoteArgs,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Let the waiting call ID run; its audit record names you as the approver.
    Allow {
        /// The call's id, as `warden approvals list` shows it.
        id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Refuse the waiting call ID: the tool does not run and the client is told "denied by
    /// an operator".
    Deny {
        /// The call's id, as `warden approvals list` shows it.
        id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// Where the server of `warden approvals` is, and the operator's key.
#[derive(Args)]
struct RemoteArgs {
    /// The server's base URL, e.g. http://127.0.0.1:8080 (default: the manifest's
    /// `[http] listen`). `http://` only to a loopback host; `https://` certificates are
    /// checked against the Mozilla roots (webpki-roots), so a self-signed one is refused.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// A file whose first line is the operator's API key (default: the WARDEN_API_KEY
    /// environment variable).
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    #[command(flatten)]
    manifest: ManifestArg,
}

impl RemoteArgs {
    fn remote(self) -> approvals::Remote {
        approvals::Remote {
            url: self.url,
            key_file: self.key_file,
            manifest: self.manifest.manifest,
        }
    }
}

/// Run the command line; errors are printed here, once.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_format);
    let traces = match traces(&cli.command)
        .map(|settings| warden::telemetry::Tracing::start(&settings))
        .transpose()
    {
        Ok(traces) => traces,
        Err(error) => {
            eprintln!("error: [tracing]: {error}");
            return ExitCode::from(2);
        }
    };
    let code = match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    };
    // What is still queued is exported before the process ends (bounded: see telemetry).
    if let Some(traces) = traces {
        traces.shutdown();
    }
    code
}

/// The manifest's `[tracing]`, for `warden serve` (the one command that exports traces). Read
/// before the command runs, so the exporter is ready for the first request; a manifest that
/// does not load has none here, and `serve` reports why.
fn traces(command: &Command) -> Option<warden::manifest::TracingSettings> {
    let Command::Serve { file, manifest, .. } = command else {
        return None;
    };
    let path = manifest.clone().path(file.clone()).ok()?;
    Manifest::load(&path).ok()?.tracing
}

/// Log lines on stderr.
fn init_logging(filter: &str, format: LogFormat) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("warn,warden=info"));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let layer = match format {
        LogFormat::Text => layer.boxed(),
        LogFormat::Json => layer.json().boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::filter::filter_fn(|meta| {
            !is_rmcp_response_error(meta)
        }))
        .with(layer)
        .init();
}

/// rmcp's `response error` warning, logged with a Rust debug dump for every error answer
/// (an unknown tool, a method warden does not have). warden logs each refusal itself, in
/// one clean line, so this one is left out.
fn is_rmcp_response_error(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() == tracing::Level::WARN
        && meta.target() == "rmcp::service"
        && meta.is_event()
        && meta.fields().field("error").is_some()
        && meta.fields().field("id").is_some()
}

fn run(command: Command) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match command {
        Command::Serve {
            file,
            manifest,
            http,
            insecure_no_auth,
            watch,
        } => {
            let http = http.as_deref().map(resolve_listen).transpose()?;
            serve::serve(
                &runtime,
                &manifest.path(file)?,
                http,
                insecure_no_auth,
                watch,
            )
        }
        Command::Status { manifest, json } => status::status(&runtime, manifest.as_deref(), json),
        Command::Keygen {
            audit: Some(file), ..
        } => keygen::audit_key(&file),
        Command::Keygen {
            principal, roles, ..
        } => keygen::keygen(&principal, &roles),
        Command::Check {
            file,
            manifest,
            json,
        } => check::check(&manifest.path(file)?, json),
        Command::Inspect { component, json } => inspect::inspect(&component, json),
        Command::Lock { manifest, diff } => lock::lock(&manifest.path(None)?, diff),
        Command::Push {
            component,
            reference,
            sign,
        } => push::push(&component, &reference, sign.as_deref()),
        Command::Sign {
            target,
            key,
            bundle,
        } => push::sign(&target, &key, bundle.as_deref()),
        Command::Call {
            manifest,
            principal,
            roles,
            prompt,
            read,
            tool,
            arguments,
        } => {
            let who = call::Who { principal, roles };
            let what = match (prompt, read) {
                (true, _) => call::What::Prompt,
                (_, true) => call::What::Read,
                _ => call::What::Tool,
            };
            let path = manifest.path(None)?;
            runtime.block_on(call::call(&path, who, what, &tool, &arguments))
        }
        Command::Audit { command } => audit::audit(command),
        Command::Approvals { command } => {
            let (remote, action) = match command {
                ApprovalsCommand::List { remote, json } => {
                    (remote, approvals::Action::List { json })
                }
                ApprovalsCommand::Allow { id, remote } => {
                    (remote, approvals::Action::Answer { id, allow: true })
                }
                ApprovalsCommand::Deny { id, remote } => {
                    (remote, approvals::Action::Answer { id, allow: false })
                }
            };
            runtime.block_on(approvals::approvals(remote.remote(), action))
        }
        Command::Deploy {
            command:
                DeployCommand::NetworkPolicy {
                    manifest,
                    name,
                    namespace,
                    selector,
                    allow_any_host,
                },
        } => {
            let mut options = warden::deploy::Options {
                name,
                namespace,
                allow_any_host,
                ..warden::deploy::Options::default()
            };
            if !selector.is_empty() {
                options.selector = selector;
            }
            deploy::network_policy(&manifest.path(None)?, &options)
        }
        Command::Init { file } => init::init(&file),
        Command::Completions { shell } => Ok(docs::completions(shell)),
        Command::Man => docs::man(),
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
    Ok((manifest, host))
}

/// `--http HOST:PORT`: an IP address, or a name resolved now (its first address is served,
/// and the loopback-without-auth rule applies to that address).
fn resolve_listen(raw: &str) -> Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs as _;
    let expected = "expected HOST:PORT such as 127.0.0.1:8080, [::1]:8080 or localhost:8080";
    if let Ok(addr) = raw.parse() {
        return Ok(addr);
    }
    let (host, port) = raw
        .rsplit_once(':')
        .with_context(|| format!("invalid --http address {raw:?}: {expected}"))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        bail!("invalid --http address {raw:?}: {expected}");
    }
    let mut addrs = raw
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve --http {raw:?}"))?;
    addrs
        .next()
        .with_context(|| format!("--http {raw:?}: {host} resolves to no address"))
}

fn join(errors: &[HostError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("cannot load the plugins:\n{}", lines.join("\n"))
}

/// Print `text` on stdout. A closed pipe (`warden inspect ... | head`) is not an
/// error worth a panic: the reader has what it wanted.
fn write_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// The local user, as the manifest's `[server]` names it.
fn stdio_principal(manifest: &Manifest, transport: Transport) -> Principal {
    Principal::new(
        manifest.server.principal.as_str(),
        manifest.server.roles.clone(),
        transport,
    )
}
