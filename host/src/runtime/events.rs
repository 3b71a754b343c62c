//! What a plugin may tell the world while it runs: log messages and progress.
//!
//! The runtime knows nothing of MCP. A transport passes a [`CallEvents`] with each call and
//! decides where the events go (MCP notifications, the terminal, nowhere).
//!
//! Messages arrive as the plugin wrote them: not filtered, not cut (only the number of
//! events has a ceiling). The gate wraps the transport's [`CallEvents`] with one that
//! filters and caps them before they go anywhere.

use std::future::Future;
use std::pin::Pin;

/// Severity of a plugin's log message, as in the `warden:mcp/host.level` WIT enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
}

/// A boxed future, as returned by [`CallEvents`].
pub type EventFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Receives the events of one call. Implementations must not fail: an event that cannot be
/// delivered is dropped.
pub trait CallEvents: Send + Sync {
    /// The plugin logged `message`.
    fn log(&self, level: LogLevel, message: String) -> EventFuture<'_>;
    /// The plugin reported progress.
    fn progress(&self, done: f64, total: Option<f64>, message: Option<String>) -> EventFuture<'_>;
    /// The call is over, however it ended; this is what it did with each capability
    /// ([`crate::capabilities::usage`]), when it did anything.
    fn usage(&self, _usage: serde_json::Map<String, serde_json::Value>) {}
}

/// Discards every event.
pub struct NoEvents;

impl CallEvents for NoEvents {
    fn log(&self, _: LogLevel, _: String) -> EventFuture<'_> {
        Box::pin(std::future::ready(()))
    }
    fn progress(&self, _: f64, _: Option<f64>, _: Option<String>) -> EventFuture<'_> {
        Box::pin(std::future::ready(()))
    }
}
