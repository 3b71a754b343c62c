//! The gate: the one pipeline every call passes, whatever the transport and the plugin.
//!
//! find the tool -> validate the arguments against its WIT types -> run it in the sandbox ->
//! map the result to MCP content -> cap its size. Errors the agent sees are short and stable;
//! the detail goes to the host log.

mod output;

use std::sync::Arc;
use std::time::Instant;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use tracing::Instrument;

use crate::catalog::Catalog;
use crate::runtime::{CallEvents, Runtime};

pub use output::OutputError;

/// A call as the transport hands it over.
pub struct CallRequest<'a> {
    /// The tool's name.
    pub tool: &'a str,
    /// The arguments object, if any.
    pub arguments: Option<&'a JsonObject>,
    /// Where the plugin's log and progress events go.
    pub events: Arc<dyn CallEvents>,
}

/// A call the gate refused before any tool ran, as a protocol error.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("unknown tool: {0}")]
    UnknownTool(String),
}

/// The call pipeline, shared by every transport.
pub struct Gate {
    catalog: Catalog,
    runtime: Arc<Runtime>,
}

impl Gate {
    /// A gate serving `catalog`'s tools with `runtime`.
    pub fn new(catalog: Catalog, runtime: Arc<Runtime>) -> Self {
        Self { catalog, runtime }
    }

    /// The tools an agent may see, in manifest order.
    pub fn list(&self) -> Vec<Tool> {
        self.catalog.iter().map(|t| t.descriptor.clone()).collect()
    }

    /// The catalog behind the gate.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Run one call through the whole pipeline.
    ///
    /// Everything that goes wrong once the tool is known (bad arguments, a crash, a limit) is
    /// a tool error (`isError: true`) the agent can read and act on.
    pub async fn call(&self, request: CallRequest<'_>) -> Result<CallToolResult, GateError> {
        let entry = self
            .catalog
            .get(request.tool)
            .ok_or_else(|| GateError::UnknownTool(request.tool.to_string()))?
            .clone();
        let span = tracing::info_span!("call", tool = request.tool, plugin = &*entry.plugin.name);
        async move {
            let started = Instant::now();
            let function = entry.function();
            let args = match function.args_from_json(request.arguments) {
                Ok(args) => args,
                Err(error) => {
                    tracing::info!(%error, "invalid arguments");
                    return Ok(tool_error(format!("invalid arguments: {error}")));
                }
            };
            let outcome = self
                .runtime
                .call(&entry.plugin, entry.function, &args, request.events)
                .await;
            let result = match outcome {
                Ok(outcome) => {
                    tracing::debug!(fuel = outcome.fuel_used, "tool returned");
                    output::to_result(function, outcome.value)
                        .and_then(|result| {
                            output::check_size(&result, entry.plugin.config.limits.max_output)?;
                            Ok(result)
                        })
                        .unwrap_or_else(|error| {
                            tracing::warn!(%error, "tool output refused");
                            tool_error(error.to_string())
                        })
                }
                Err(error) => {
                    tracing::info!(kind = error.kind(), %error, "tool failed");
                    tool_error(error.to_string())
                }
            };
            tracing::info!(
                elapsed_us = started.elapsed().as_micros() as u64,
                is_error = result.is_error.unwrap_or(false),
                "call finished"
            );
            Ok(result)
        }
        .instrument(span)
        .await
    }
}

/// A tool error with one text block.
fn tool_error(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}
