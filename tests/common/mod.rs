//! Shared harness of the end-to-end tests: a manifest in a temporary directory, the real
//! `warden` binary spawned over stdio, and rmcp's client talking to it.

#![allow(dead_code)] // each test binary uses a different part of the harness
#![allow(deprecated)] // MCP logging is deprecated by SEP-2577 but still in 2025-11-25

pub mod redis;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, ContentBlock,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProtocolVersion,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Map, Value};
use tokio::io::AsyncReadExt;

/// The directory holding the plugin components built by the host's build script.
pub fn plugin_dir() -> PathBuf {
    PathBuf::from(env!("WARDEN_PLUGIN_DIR"))
}

/// The path of plugin `name`'s component.
pub fn plugin(name: &str) -> String {
    plugin_dir()
        .join(format!("{name}.wasm"))
        .display()
        .to_string()
}

/// A compile cache shared by all tests, so each component compiles once per test run.
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("warden-test-cache")
}

/// A temporary directory with a manifest in it.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub manifest: PathBuf,
}

impl Fixture {
    /// Write `body` as `warden.toml` in a new temporary directory. In `body`, `{testbed}`,
    /// `{files}`, `{codec}`, `{fetch}`, `{conformance}` and `{db}` stand for the plugins' component paths
    /// and `{dir}` for the temporary directory. A `[cache]` section pointing at the shared cache
    /// is added, unless `body` has its own.
    pub fn new(body: &str) -> Self {
        install_crypto();
        let dir = tempfile::tempdir().expect("temporary directory");
        let body = body
            .replace("{testbed}", &plugin("testbed"))
            .replace("{files}", &plugin("files"))
            .replace("{codec}", &plugin("codec"))
            .replace("{fetch}", &plugin("fetch"))
            .replace("{conformance}", &plugin("conformance"))
            .replace("{db}", &plugin("db"))
            .replace("{notes}", &plugin("notes"))
            .replace("{dir}", &dir.path().display().to_string());
        let manifest = dir.path().join("warden.toml");
        let text = if body.contains("[cache]") {
            body
        } else {
            format!("[cache]\ndir = \"{}\"\n\n{body}", cache_dir().display())
        };
        std::fs::write(&manifest, text).expect("write manifest");
        Self { dir, manifest }
    }

    /// A path inside the fixture's directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Every call record of the audit log at `relative` (`[audit] path`), in order; none when
    /// it does not exist yet. Start records (`"kind":"start"`, one per start and reload) are
    /// left out: [`Self::audit_starts`] has them.
    pub fn audit_log(&self, relative: &str) -> Vec<serde_json::Value> {
        calls(self.audit_all(relative))
    }

    /// The start records of the audit log at `relative`, in order.
    pub fn audit_starts(&self, relative: &str) -> Vec<serde_json::Value> {
        self.audit_all(relative)
            .into_iter()
            .filter(is_start)
            .collect()
    }

    /// Every record of the audit log at `relative`, start records too.
    pub fn audit_all(&self, relative: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path(relative))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("audit line is JSON"))
            .collect()
    }

    /// Start `warden serve` on this manifest and connect rmcp's client (legacy handshake).
    pub async fn client(&self) -> Client {
        self.client_with(ClientLifecycleMode::Initialize).await
    }

    /// Same as [`Self::client`], in the stateless 2026-07-28 era (`server/discover`).
    pub async fn client_2026(&self) -> Client {
        self.client_with(ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        })
        .await
    }

    /// Same as [`Self::client`], with extra environment variables for the server (they
    /// override the defaults, such as `WARDEN_LOG`).
    pub async fn client_env(&self, env: &[(&str, &str)]) -> Client {
        self.spawn(ClientLifecycleMode::Initialize, env).await
    }

    /// Same as [`Self::client`], with extra arguments to `warden serve`.
    pub async fn client_args(&self, args: &[&str]) -> Client {
        self.spawn_with(ClientLifecycleMode::Initialize, &[], args)
            .await
    }

    async fn client_with(&self, lifecycle: ClientLifecycleMode) -> Client {
        self.spawn(lifecycle, &[]).await
    }

    async fn spawn(&self, lifecycle: ClientLifecycleMode, env: &[(&str, &str)]) -> Client {
        self.spawn_with(lifecycle, env, &[]).await
    }

    async fn spawn_with(
        &self,
        lifecycle: ClientLifecycleMode,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Client {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"));
        command
            .args(["serve", "--manifest"])
            .arg(&self.manifest)
            .args(args)
            .env("WARDEN_LOG", "info,warden=debug")
            .envs(env.iter().copied());
        let (transport, stderr) = TokioChildProcess::builder(command)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn warden");
        let pid = transport.id();
        let recorder = Recorder::default();
        if let Some(mut stderr) = stderr {
            let log = recorder.stderr.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut log) = log.lock() {
                        log.extend_from_slice(&buf[..n]);
                    }
                }
            });
        }
        let service = recorder
            .clone()
            .serve_with_lifecycle(transport, lifecycle)
            .await
            .expect("MCP handshake with warden");
        Client {
            service,
            recorder,
            pid,
        }
    }
}

/// What the server sent besides responses.
#[derive(Clone, Default)]
pub struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    pub logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
    pub stderr: Arc<Mutex<Vec<u8>>>,
    /// How many `notifications/tools/list_changed` arrived.
    pub tools_changed: Arc<std::sync::atomic::AtomicUsize>,
    /// The URIs of the `notifications/resources/updated` that arrived, in order.
    pub resources_updated: Arc<Mutex<Vec<String>>>,
}

#[allow(deprecated)]
impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().expect("lock").push(params);
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.logs.lock().expect("lock").push(params);
    }

    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.resources_updated
            .lock()
            .expect("lock")
            .push(params.uri);
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.tools_changed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::default()
    }
}

/// A connected client and what it recorded.
pub struct Client {
    pub service: RunningService<RoleClient, Recorder>,
    pub recorder: Recorder,
    /// The server's process id, while it runs.
    pub pid: Option<u32>,
}

impl Client {
    /// Call `tool` with `arguments` (a JSON object).
    pub async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        let Value::Object(arguments) = arguments else {
            panic!("arguments must be an object");
        };
        self.service
            .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(arguments))
            .await
            .unwrap_or_else(|e| panic!("tools/call {tool} failed at the protocol level: {e}"))
    }

    /// The server's stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.recorder.stderr.lock().expect("lock")).into_owned()
    }

    /// The names of the tools `tools/list` shows now.
    pub async fn tool_names(&self) -> Vec<String> {
        let tools = self.service.list_all_tools().await.expect("tools/list");
        tools.into_iter().map(|t| t.name.to_string()).collect()
    }

    /// How many `notifications/tools/list_changed` arrived so far.
    pub fn tools_changed(&self) -> usize {
        self.recorder
            .tools_changed
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Send the server a signal (`HUP`, `TERM`...).
    pub fn signal(&self, name: &str) {
        let pid = self.pid.expect("the server's pid").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} {pid}");
    }

    /// Wait (up to 2 minutes: compiling can be slow on a loaded machine) until `done` holds.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&Client) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !done(self) {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; server log:\n{}",
                self.stderr()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Close the session and wait for the server to exit.
    pub async fn close(self) {
        let _ = self.service.cancel().await;
    }
}

/// The log line of a plugin whose calls run on its baseline build (`host::log_progress`).
pub const ON_BASELINE: &str = "plugin callable on its baseline build";

/// Assert that a server's `log` has `needle` in it.
#[track_caller]
pub fn assert_logged(log: &str, needle: &str) {
    assert!(log.contains(needle), "no {needle:?} in the log:\n{log}");
}

/// The text of a result's first text block.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .find_map(|c| match c {
            ContentBlock::Text(t) => Some(t.text.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Assert `result` succeeded and return its text.
#[track_caller]
pub fn ok_text(result: &CallToolResult) -> String {
    assert_ne!(
        result.is_error,
        Some(true),
        "expected success, got error: {}",
        text(result)
    );
    text(result)
}

/// Assert `result` is a tool error and return its text.
#[track_caller]
pub fn err_text(result: &CallToolResult) -> String {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected a tool error, got: {result:?}"
    );
    text(result)
}

/// A JSON object from a `json!` value.
pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

/// Install ring as rustls's process-wide provider: reqwest is built with
/// `rustls-no-provider` (warden's `oci-client` asks for it), and its clients need one even for
/// plain HTTP. Called by the fixtures, before any test builds a client.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Run the `warden` binary with `args`; returns (exit code, stdout, stderr).
pub fn warden(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run warden");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `[A-Za-z0-9_-]{1,64}`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `warden serve --http 127.0.0.1:0` on a fixture's manifest, with its stderr collected. The
/// process is killed when this is dropped (unless it already exited).
pub struct HttpServer {
    pub child: tokio::process::Child,
    /// The MCP endpoint: `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub stderr: Arc<Mutex<String>>,
}

impl Fixture {
    /// Start `warden serve --http 127.0.0.1:0` with `extra` arguments and wait until it
    /// listens.
    pub async fn http_server(&self, extra: &[&str]) -> HttpServer {
        self.http_server_at("127.0.0.1:0", extra).await
    }

    /// Same as [`Self::http_server`] on `addr`; also used to see `warden serve` refuse to start
    /// (then this panics with its stderr).
    pub async fn http_server_at(&self, addr: &str, extra: &[&str]) -> HttpServer {
        self.spawn_http(addr, extra, None).await
    }

    /// Same as [`Self::http_server`], with the server's limit on open file descriptors set to
    /// `descriptors` (`ulimit -n`).
    pub async fn http_server_limited(&self, descriptors: u32, extra: &[&str]) -> HttpServer {
        self.spawn_http("127.0.0.1:0", extra, Some(descriptors))
            .await
    }

    async fn spawn_http(&self, addr: &str, extra: &[&str], descriptors: Option<u32>) -> HttpServer {
        let mut command = match descriptors {
            // `exec` keeps the process id: the child is warden itself.
            Some(n) => {
                let mut sh = tokio::process::Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_warden"));
                sh
            }
            None => tokio::process::Command::new(env!("CARGO_BIN_EXE_warden")),
        };
        let child = command
            .args(["serve", "--manifest"])
            .arg(&self.manifest)
            .args(["--http", addr])
            .args(extra)
            .env("WARDEN_LOG", "info,warden=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn warden");
        HttpServer::started(child).await
    }
}

impl HttpServer {
    /// This server's entry in `warden status --json`.
    pub fn status(&self) -> serde_json::Value {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["status", "--json"])
            .output()
            .expect("warden status");
        let servers: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("status --json");
        servers
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|s| s["pid"].as_u64() == self.child.id().map(u64::from))
            })
            .cloned()
            .unwrap_or_else(|| panic!("this server is not in {servers}"))
    }

    /// The `warden serve --http` that `child` runs (its stderr piped), once it says where it
    /// listens; its log is collected from then on. `0.0.0.0` in that address becomes
    /// `127.0.0.1`.
    pub async fn started(mut child: tokio::process::Child) -> HttpServer {
        install_crypto();
        use tokio::io::AsyncBufReadExt;
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, url) = tokio::sync::oneshot::channel();
        let collected = log.clone();
        tokio::spawn(async move {
            let mut found = Some(found);
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("warden: listening on ")
                    && let Some(found) = found.take()
                {
                    let _ = found.send(url.to_owned());
                }
                collected
                    .lock()
                    .expect("lock")
                    .push_str(&format!("{line}\n"));
            }
        });
        let url: String = match tokio::time::timeout(std::time::Duration::from_secs(120), url).await
        {
            Ok(Ok(url)) => url,
            _ => panic!(
                "warden did not start listening:\n{}",
                log.lock().expect("lock")
            ),
        };
        let url = url.replace("//0.0.0.0:", "//127.0.0.1:");
        let base = url.trim_end_matches("/mcp").to_owned();
        HttpServer {
            child,
            url,
            base,
            stderr: log,
        }
    }

    /// The server's stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// Connect rmcp's streamable-HTTP client with `transport` settings (legacy handshake
    /// with `lifecycle` `Initialize`, or the 2026-07-28 era with `Discover`).
    pub async fn connect(
        &self,
        config: rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig,
        lifecycle: ClientLifecycleMode,
    ) -> Result<RunningService<RoleClient, Recorder>, String> {
        let transport = rmcp::transport::StreamableHttpClientTransport::from_config(config);
        Recorder::default()
            .serve_with_lifecycle(transport, lifecycle)
            .await
            .map_err(|e| e.to_string())
    }

    /// rmcp's client config for this server, sending `key` as the bearer token if given.
    pub fn client_config(
        &self,
        key: Option<&str>,
    ) -> rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig {
        let config =
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                self.url.as_str(),
            );
        match key {
            Some(key) => config.auth_header(key),
            None => config,
        }
    }

    /// Send SIGTERM and wait (at most 2 minutes) for the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("server is running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
        tokio::time::timeout(std::time::Duration::from_secs(120), self.child.wait())
            .await
            .expect("warden exits after SIGTERM")
            .expect("wait for warden")
    }
}

/// The 2026-07-28 era's lifecycle for [`HttpServer::connect`].
pub fn discover_2026() -> ClientLifecycleMode {
    ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    }
}

/// A virtualenv `name` in `CARGO_TARGET_TMPDIR` with `requirement` installed by pip, created
/// once and reused (a new `requirement` installs again). Returns its `bin` directory. Panics with
/// the reason when it cannot be set up: a test that needs it never skips silently.
pub fn python_venv(name: &str, requirement: &str) -> PathBuf {
    // Tests run in parallel: one of them installs, the others wait.
    static INSTALL: Mutex<()> = Mutex::new(());
    let _installing = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let bin = venv.join("bin");
    let ready = venv.join(".installed");
    if std::fs::read_to_string(&ready).is_ok_and(|installed| installed == requirement) {
        return bin;
    }
    let run = |program: &std::path::Path, args: &[&str]| {
        let output = std::process::Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e}; python3 with venv is needed",
                    program.display()
                )
            });
        assert!(
            output.status.success(),
            "{} {args:?} failed; python3 -m venv and pip access are needed to install \
             {requirement}:\n{}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(
        std::path::Path::new("python3"),
        &["-m", "venv", &venv.display().to_string()],
    );
    run(
        &bin.join("python"),
        &["-m", "pip", "install", "--quiet", requirement],
    );
    std::fs::write(&ready, requirement).expect("mark the venv ready");
    bin
}

/// The interpreter of a virtualenv with `mcp` 2.3 ([`python_venv`]).
pub fn python_with_mcp() -> PathBuf {
    python_venv("python-mcp-venv", "mcp>=2.3,<2.4").join("python")
}

/// Run the Python script `source` with the `mcp` venv's interpreter and `args`: written into
/// `fixture`'s directory as `name`, killed if it runs over three minutes.
pub async fn run_python(
    fixture: &Fixture,
    name: &str,
    source: &str,
    args: &[String],
) -> std::process::Output {
    let python = tokio::task::spawn_blocking(python_with_mcp)
        .await
        .expect("venv setup");
    let script = fixture.path(name);
    std::fs::write(&script, source).expect("write the Python client");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(std::time::Duration::from_secs(180), output)
        .await
        .expect("the Python client finishes")
        .expect("run python")
}

/// The TypeScript SDK the Node client tests use (the one the conformance suite depends on).
pub const TS_SDK: &str = "@modelcontextprotocol/sdk@1.32.2";

/// Node 22 and the TypeScript SDK ([`TS_SDK`]): `(node, the SDK's package directory)`. The
/// conformance suite's install under `target/conformance` (tests/conformance.rs) carries
/// both; without one, they are installed once with npm into `target/node-sdk`. Panics with
/// the reason when it cannot: a Node client test never skips silently.
pub fn node_with_sdk() -> (PathBuf, PathBuf) {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _installing = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp.parent().map_or_else(|| tmp.clone(), Path::to_path_buf);
    let version = TS_SDK.rsplit('@').next().unwrap_or_default();
    let usable = |dir: &Path| {
        let node = dir.join("node_modules/.bin/node");
        let sdk = dir.join("node_modules/@modelcontextprotocol/sdk");
        let found = std::fs::read_to_string(sdk.join("package.json"))
            .is_ok_and(|p| p.contains(&format!("\"version\": \"{version}\"")));
        (dir.join(".installed").is_file() && node.is_file() && found).then_some((node, sdk))
    };
    for suite in ["0.2.0-alpha.12", "0.1.16"] {
        if let Some(found) = usable(&target.join("conformance").join(suite)) {
            return found;
        }
    }
    let dir = target.join("node-sdk");
    if let Some(found) = usable(&dir) {
        return found;
    }
    std::fs::create_dir_all(&dir).expect("create target/node-sdk");
    std::fs::write(
        dir.join("package.json"),
        "{ \"name\": \"warden-node-sdk\", \"private\": true }\n",
    )
    .expect("write package.json");
    let output = std::process::Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--save-exact",
            "node@22",
            TS_SDK,
        ])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run npm (the Node client tests need it once): {e}"));
    assert!(
        output.status.success(),
        "npm install node@22 {TS_SDK} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(dir.join(".installed"), format!("node@22 {TS_SDK}\n")).expect("marker");
    usable(&dir).expect("node and the SDK after npm install")
}

/// Run the Node script `source` (an ES module) with Node 22 and `plan` (a JSON object, to
/// which the SDK's directory is added as `sdk`): written into `fixture`'s directory as
/// `name`, killed if it runs over three minutes.
pub async fn run_node(
    fixture: &Fixture,
    name: &str,
    source: &str,
    mut plan: serde_json::Value,
) -> std::process::Output {
    let (node, sdk) = tokio::task::spawn_blocking(node_with_sdk)
        .await
        .expect("node setup");
    plan["sdk"] = serde_json::Value::String(sdk.display().to_string());
    let script = fixture.path(name);
    std::fs::write(&script, source).expect("write the Node client");
    let output = tokio::process::Command::new(&node)
        .arg(&script)
        .arg(plan.to_string())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(std::time::Duration::from_secs(180), output)
        .await
        .expect("the Node client finishes")
        .expect("run node")
}

/// The audit records at `relative` of requests of `method` (`prompts/get`, ...).
pub fn audit_of(fixture: &Fixture, relative: &str, method: &str) -> Vec<serde_json::Value> {
    fixture
        .audit_log(relative)
        .into_iter()
        .filter(|r| r["method"] == method)
        .collect()
}

/// The `WWW-Authenticate` challenge of `response` (empty when there is none).
pub fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The codes of `check --json`'s top-level `warnings`.
pub fn warning_codes(report: &serde_json::Value) -> Vec<&str> {
    report["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect()
}

/// Whether `record` is an audit start record (`"kind":"start"`) rather than a call's.
pub fn is_start(record: &serde_json::Value) -> bool {
    record["kind"] == "start"
}

/// Whether `record` is a call's (no `kind`), not a start or checkpoint record.
pub fn is_call(record: &serde_json::Value) -> bool {
    record.get("kind").is_none()
}

/// The call records among `records`: start and checkpoint records left out.
pub fn calls(records: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    records.into_iter().filter(is_call).collect()
}

/// The call lines of an audit log's text: start and checkpoint records' lines left out.
pub fn call_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line).map_or(true, |r| is_call(&r))
        })
        .collect()
}

/// The SHA-256 of `key`, in hex: how a manifest stores an API key.
pub fn digest(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

/// One `[[auth.api_keys]]` entry of a manifest: `principal` with `roles` (no `roles` key
/// when empty), holding `key`.
pub fn api_key(principal: &str, roles: &[&str], key: &str) -> String {
    let roles = if roles.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = roles.iter().map(|role| format!("\"{role}\"")).collect();
        format!("roles = [{}]\n", quoted.join(", "))
    };
    format!(
        "[[auth.api_keys]]\nprincipal = \"{principal}\"\n{roles}sha256 = \"{}\"\n",
        digest(key)
    )
}

/// Two plugins of the test component with tight limits, for a manifest: `testbed` (fuel and
/// memory) and `slow` (wall-clock time).
pub const LIMITED_TESTBEDS: &str = r#"
[plugins.testbed]
component = "{testbed}"
fuel = 200_000_000
memory = "32MiB"
timeout = "20s"

[plugins.slow]
component = "{testbed}"
fuel = 9_000_000_000_000_000_000
timeout = "300ms"
"#;

/// On [`LIMITED_TESTBEDS`]: an endless loop is stopped by fuel, another by the time limit (well
/// within 10 s), a 1 GiB allocation by the memory limit; each with its own message, and the
/// server answers a healthy call after each.
pub async fn assert_limits_stop_runaways(client: &Client) {
    let healthy = || client.call("testbed__env", serde_json::json!({"name": "NOPE"}));

    let fuel = client.call("testbed__spin", serde_json::json!({})).await;
    assert!(
        err_text(&fuel).contains("CPU budget"),
        "{}",
        err_text(&fuel)
    );
    ok_text(&healthy().await);

    let started = std::time::Instant::now();
    let timeout = client.call("slow__spin", serde_json::json!({})).await;
    assert!(
        err_text(&timeout).contains("time limit"),
        "{}",
        err_text(&timeout)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    ok_text(&healthy().await);

    let memory = client
        .call("testbed__allocate", serde_json::json!({"mebibytes": 1024}))
        .await;
    assert!(
        err_text(&memory).contains("memory limit"),
        "{}",
        err_text(&memory)
    );
    ok_text(&healthy().await);
}

/// `reply` with what differs between two requests made alike: request ids (32 hex digits)
/// and a question's opaque `requestState`.
pub fn normalized(mut reply: serde_json::Value) -> serde_json::Value {
    if let Some(state) = reply.pointer_mut("/result/requestState") {
        assert!(state.is_string(), "{state}");
        *state = serde_json::json!("STATE");
    }
    let text = reply.to_string();
    let ids = regex::Regex::new("[0-9a-f]{32}").expect("regex");
    serde_json::from_str(&ids.replace_all(&text, "ID")).expect("JSON")
}
