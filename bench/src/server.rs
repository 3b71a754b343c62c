//! A `warden serve` child process spoken to in raw JSON-RPC lines over its stdin and stdout:
//! the leanest possible client, so the figures are the server's.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long any one response may take before the benchmark gives up.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// A running `warden serve` over stdio.
pub struct StdioServer {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl StdioServer {
    /// Start `warden serve --manifest MANIFEST`; its log goes nowhere.
    pub fn spawn(warden: &Path, manifest: &Path) -> Result<StdioServer> {
        let mut child = Command::new(warden)
            .args(["serve", "--manifest"])
            .arg(manifest)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", warden.display()))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        Ok(StdioServer {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            next_id: 0,
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The 2025-11-25 handshake: `initialize`, then `notifications/initialized`.
    pub async fn initialize(&mut self) -> Result<()> {
        self.request(
            "initialize",
            json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "warden-bench", "version": env!("CARGO_PKG_VERSION")},
            }),
        )
        .await?;
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await
    }

    /// Send one request and wait for its response's `result`.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.send_request(method, params).await?;
        self.response(id).await
    }

    /// Send one request without waiting; returns its id.
    pub async fn send_request(&mut self, method: &str, params: Value) -> Result<u64> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        Ok(id)
    }

    async fn send(&mut self, message: &Value) -> Result<()> {
        let mut line = serde_json::to_vec(message)?;
        line.push(b'\n');
        self.stdin.write_all(&line).await?;
        Ok(())
    }

    /// Read until the response to `id`, skipping notifications and other responses; its
    /// `result`, or an error naming the JSON-RPC error.
    pub async fn response(&mut self, id: u64) -> Result<Value> {
        loop {
            let (got, result) = self.next_response().await?;
            if got == id {
                return result;
            }
        }
    }

    /// The next response, whichever request it answers: its id and its `result` (or an
    /// error naming the JSON-RPC error).
    pub async fn next_response(&mut self) -> Result<(u64, Result<Value>)> {
        loop {
            let line = tokio::time::timeout(HANG_GUARD, self.lines.next_line())
                .await
                .context("no response within the hang guard")??
                .context("warden closed its stdout")?;
            let message: Value = serde_json::from_str(&line)
                .with_context(|| format!("not JSON-RPC on stdout: {line}"))?;
            let Some(id) = message.get("id").and_then(Value::as_u64) else {
                continue; // a notification
            };
            let result = match (message.get("error"), message.get("result")) {
                (Some(error), _) => Err(anyhow::anyhow!("request {id} failed: {error}")),
                (None, Some(result)) => Ok(result.clone()),
                (None, None) => Err(anyhow::anyhow!("response {id} without result")),
            };
            return Ok((id, result));
        }
    }

    /// Close stdin and wait for warden to exit.
    pub async fn shutdown(mut self) -> Result<()> {
        drop(self.stdin);
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => self.child.kill().await?,
        }
        Ok(())
    }
}

/// A `tools/call` of `tool` with `arguments`, failing on a tool error.
pub fn check_result(result: &Value) -> Result<()> {
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        bail!("the tool failed: {result}");
    }
    Ok(())
}

/// Resident memory of process `pid` from `/proc`: (current, peak), in bytes.
pub fn rss(pid: u32) -> Option<(u64, u64)> {
    Some((status_kib(pid, "VmRSS:")?, status_kib(pid, "VmHWM:")?))
}

/// A `kB` field of `/proc/PID/status`, in bytes.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let value = status.lines().find_map(|line| line.strip_prefix(field))?;
    let kib: u64 = value.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}
