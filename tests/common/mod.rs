//! Shared harness of the end-to-end tests: a manifest in a temporary directory, the real
//! `warden` binary spawned over stdio, and rmcp's client talking to it.

#![allow(dead_code)] // each test binary uses a different part of the harness
#![allow(deprecated)] // MCP logging is deprecated by SEP-2577 but still in 2025-11-25

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
    /// `{files}`, `{codec}` and `{fetch}` stand for the plugins' component paths and `{dir}` for the
    /// temporary directory. A `[cache]` section pointing at the shared cache is added.
    pub fn new(body: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let body = body
            .replace("{testbed}", &plugin("testbed"))
            .replace("{files}", &plugin("files"))
            .replace("{codec}", &plugin("codec"))
            .replace("{fetch}", &plugin("fetch"))
            .replace("{dir}", &dir.path().display().to_string());
        let manifest = dir.path().join("warden.toml");
        let text = format!("[cache]\ndir = \"{}\"\n\n{body}", cache_dir().display());
        std::fs::write(&manifest, text).expect("write manifest");
        Self { dir, manifest }
    }

    /// A path inside the fixture's directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
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

    async fn client_with(&self, lifecycle: ClientLifecycleMode) -> Client {
        self.spawn(lifecycle, &[]).await
    }

    async fn spawn(&self, lifecycle: ClientLifecycleMode, env: &[(&str, &str)]) -> Client {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"));
        command
            .args(["serve", "--manifest"])
            .arg(&self.manifest)
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

    /// Close the session and wait for the server to exit.
    pub async fn close(self) {
        let _ = self.service.cancel().await;
    }
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
