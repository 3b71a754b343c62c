//! MCP over stdio: the agent launches warden and speaks JSON-RPC on its stdin and stdout.
//! Nothing else may write to stdout: logs go to stderr and plugin output to the log.

use std::sync::Arc;

use rmcp::ServiceExt;

use super::WardenServer;
use crate::gate::{Gate, Principal};

/// Serve `gate` on this process's stdin and stdout until the client disconnects. Every
/// request runs as `principal`: stdio has no authentication, the caller is the local user.
pub async fn serve_stdio(
    gate: Arc<Gate>,
    name: String,
    principal: Principal,
) -> Result<(), std::io::Error> {
    let service = WardenServer::new(gate, name, principal)
        .serve(rmcp::transport::io::stdio_pipes())
        .await
        .map_err(std::io::Error::other)?;
    service.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}
