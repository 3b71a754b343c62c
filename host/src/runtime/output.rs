//! A plugin's stdout and stderr: captured per call into a bounded buffer and written to the
//! host's log, never to the process's own stdout (which may be the MCP stdio stream).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::capabilities::SecretScrubber;

/// How much of a call's stdout or stderr is kept for the log; the rest is counted and dropped.
pub const CAPTURE_LIMIT: usize = 64 * 1024;

/// A bounded in-memory sink for one of a plugin's output streams. Writes never fail: a plugin
/// that prints more than [`CAPTURE_LIMIT`] bytes keeps running and the excess is dropped.
#[derive(Clone, Default)]
pub struct CapturedOutput {
    inner: Arc<Mutex<Captured>>,
}

#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    dropped: usize,
}

impl CapturedOutput {
    /// Write what was captured to the host's log, one event per line, with the plugin's
    /// secret values scrubbed.
    pub fn flush_to_log(&self, plugin: &str, stream: &'static str, scrubber: &SecretScrubber) {
        let Ok(captured) = self.inner.lock() else {
            return;
        };
        if captured.bytes.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&captured.bytes);
        for line in scrubber.scrub(&text).lines() {
            tracing::info!(target: "warden::plugin", plugin, stream, "{line}");
        }
        if captured.dropped > 0 {
            tracing::warn!(target: "warden::plugin", plugin, stream, dropped = captured.dropped, "output over the capture limit was dropped");
        }
    }

    fn append(&self, bytes: &[u8]) {
        if let Ok(mut captured) = self.inner.lock() {
            let room = CAPTURE_LIMIT.saturating_sub(captured.bytes.len());
            let kept = bytes.len().min(room);
            captured.bytes.extend_from_slice(&bytes[..kept]);
            captured.dropped += bytes.len() - kept;
        }
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.append(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
