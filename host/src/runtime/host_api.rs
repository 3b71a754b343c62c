//! The `warden:mcp/host` imports every plugin may use, and the per-call store state.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::events::{CallEvents, LogLevel};
use super::limits::CallLimiter;
use crate::capabilities::fs::FsView;
use crate::capabilities::{CallContext, CallNet, FsQuotas, SecretScrubber, net::LookupView};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "warden:mcp/tool",
        imports: { default: async },
    });
}

pub(crate) use bindings::Tool as ToolWorld;
use bindings::warden::mcp::host::{Host, Level};

/// How many log and progress events one call may send; the rest are dropped, so a plugin
/// cannot flood the agent.
const EVENT_BUDGET: u32 = 1_000;
/// The longest log message passed on, in bytes.
const MAX_MESSAGE: usize = 8 * 1024;

/// Everything a call's [`wasmtime::Store`] holds. Built fresh for every call; nothing
/// survives it.
pub struct CallState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: CallLimiter,
    /// wasmtime-wasi-http's state for `wasi:http`.
    http: WasiHttpCtx,
    /// The plugin's network grants for this call: `wasi:http` hooks, name lookup guard.
    net: CallNet,
    /// What the call has written under each directory grant.
    fs: FsQuotas,
    /// Hides the plugin's secret values in its log messages.
    scrubber: SecretScrubber,
    events: Arc<dyn CallEvents>,
    plugin: Arc<str>,
    event_budget: u32,
}

impl CallState {
    pub(crate) fn new(
        context: CallContext,
        scrubber: SecretScrubber,
        limiter: CallLimiter,
        events: Arc<dyn CallEvents>,
        plugin: Arc<str>,
    ) -> Self {
        Self {
            wasi: context.wasi,
            table: ResourceTable::new(),
            limiter,
            http: context.http,
            net: context.net,
            fs: context.fs,
            scrubber,
            events,
            plugin,
            event_budget: EVENT_BUDGET,
        }
    }

    fn spend_event(&mut self) -> bool {
        if self.event_budget == 0 {
            return false;
        }
        self.event_budget -= 1;
        true
    }

    /// The view the guarded `wasi:sockets/ip-name-lookup` works on.
    pub(crate) fn lookup_view(&mut self) -> LookupView<'_> {
        LookupView {
            sockets: wasmtime_wasi::sockets::WasiSocketsCtxView {
                ctx: self.wasi.sockets(),
                table: &mut self.table,
            },
            guard: self.net.lookup(),
        }
    }
}

impl CallState {
    /// The view the quota-guarded `wasi:filesystem` works on.
    pub(crate) fn fs_view(&mut self) -> FsView<'_> {
        FsView {
            fs: wasmtime_wasi::filesystem::WasiFilesystemCtxView {
                ctx: self.wasi.filesystem(),
                table: &mut self.table,
            },
            quotas: &mut self.fs,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: self.net.http_hooks(),
        }
    }
}

impl Host for CallState {
    async fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Notice => LogLevel::Notice,
            Level::Warning => LogLevel::Warning,
            Level::Error => LogLevel::Error,
        };
        let message = truncate(self.scrubber.scrub(&message).into_owned(), MAX_MESSAGE);
        tracing::debug!(target: "warden::plugin", plugin = &*self.plugin, ?level, "{message}");
        if self.spend_event() {
            self.events.log(level, message).await;
        }
    }

    async fn progress(&mut self, done: f64, total: Option<f64>, message: Option<String>) {
        if !done.is_finite() || total.is_some_and(|t| !t.is_finite()) || !self.spend_event() {
            return;
        }
        let message = message.map(|m| truncate(self.scrubber.scrub(&m).into_owned(), MAX_MESSAGE));
        self.events.progress(done, total, message).await;
    }
}

impl bindings::warden::mcp::types::Host for CallState {}

/// Cut `text` to at most `max` bytes on a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
