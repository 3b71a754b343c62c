//! The MCP face of warden: an rmcp [`ServerHandler`](rmcp::ServerHandler) written by hand
//! (the tools are dynamic), and the transports that carry it.
//!
//! The handler does no security or sandbox work itself: it turns MCP requests into
//! [`gate`](crate::gate) calls and plugin events into MCP notifications.

mod events;
mod handler;
pub mod http;
pub mod metrics;
mod paging;
mod stdio;
mod tool_call;
mod trace;

pub use self::http::{HttpError, HttpMetrics, HttpOptions, serve_http};
pub use events::McpEvents;
pub use handler::{ServerInfo, WardenServer};
pub use stdio::serve_stdio;
