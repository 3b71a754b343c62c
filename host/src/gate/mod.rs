//! The gate: the one pipeline every call passes, whatever the transport and the plugin.
//!
//! principal and request id -> find the tool -> authorize -> rate limit (and the plugin's
//! concurrency cap) -> input caps -> strict WIT validation -> run in the sandbox -> map the
//! result to MCP content -> filter the output -> cap (refuse or truncate) -> audit -> respond.
//!
//! Each step is a module that knows nothing of the others: [`principal`](Principal),
//! `authz`, `limits`, `input`, `filter`, `output`, and the audit record (`trail`, written
//! through an [`AuditSink`], its client-chosen strings bounded, refusals rate-limited per
//! principal or client address by `refusals`). Errors the agent sees are short and stable and carry the
//! request id; the detail goes to the host log and the audit record.

mod authz;
mod events;
mod filter;
mod input;
mod limits;
mod live;
mod output;
mod principal;
mod refusals;
mod stats;
mod trail;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde_json::Value;
use tracing::Instrument;

use crate::audit::{AuditSink, NoAudit, Outcome};
use crate::catalog::{Catalog, ToolEntry};
use crate::manifest::{Audit, Filters, GlobalLimits, Manifest, OutputOverflow, Rate};
use crate::runtime::{CallError, CallEvents, Runtime};

pub use authz::Access;
pub use filter::{Detectors, MIN_SECRET_LEN, OutputFilter, Redactions, audit_args, is_secret_key};
pub use input::{CapError, InputCaps};
pub use limits::{
    Busy, Concurrency, LocalRateLimiter, RateKey, RateLimiter, RetryAfter, Unlimited,
};
pub use live::LiveGate;
pub use output::{OutputError, serialized_size, to_result};
pub use principal::{Principal, Transport, new_request_id};
pub use refusals::SUMMARY_EVERY;
pub use stats::{OTHER as STATS_OTHER, Stats};

use refusals::RefusalLimiter;
use trail::Trail;

/// A call as the transport hands it over.
pub struct CallRequest<'a> {
    /// Who calls: the transport established it.
    pub principal: &'a Principal,
    /// The MCP request id (JSON-RPC `id`), recorded beside warden's own id.
    pub mcp_id: Option<Value>,
    /// The tool's name.
    pub tool: &'a str,
    /// The arguments object, if any.
    pub arguments: Option<&'a JsonObject>,
    /// Where the plugin's log and progress events go.
    pub events: Arc<dyn CallEvents>,
}

/// A call the gate answered with a protocol error rather than a tool result.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// No such tool, or one the principal may not see: the two are indistinguishable, so
    /// probing reveals nothing.
    #[error("unknown tool: {tool} (request {request_id})")]
    UnknownTool { tool: String, request_id: String },
    /// The call ran but its audit record could not be written: the result is withheld.
    #[error("the call could not be recorded in the audit log (request {request_id})")]
    Audit { request_id: String },
}

/// The gate could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GateBuildError {
    #[error("the output filters could not be compiled: {0}")]
    Filters(#[from] regex::Error),
}

/// What the gate enforces beyond each plugin's own settings.
pub struct GateOptions {
    /// `[limits]`: argument caps and the global per-tool rate ceiling.
    pub limits: GlobalLimits,
    /// `[filters]`: detectors on by default and custom detectors.
    pub filters: Filters,
    /// Where audit records go.
    pub audit: Arc<dyn AuditSink>,
    /// The rate limiter; `None`: the in-process [`LocalRateLimiter`] built from the manifest.
    pub limiter: Option<Arc<dyn RateLimiter>>,
    /// Refusals recorded per principal or client address (`[audit] refusal_rate`).
    pub refusal_rate: Rate,
    /// Where calls are counted (kept across reloads by passing the same one).
    pub stats: Arc<Stats>,
}

impl Default for GateOptions {
    /// Default caps, every detector on, no audit log, in-process rate limits.
    fn default() -> Self {
        Self {
            limits: GlobalLimits::default(),
            filters: Filters::default(),
            audit: Arc::new(NoAudit),
            limiter: None,
            refusal_rate: Audit::DEFAULT_REFUSAL_RATE,
            stats: Arc::default(),
        }
    }
}

impl GateOptions {
    /// The manifest's `[limits]` and `[filters]`, with `audit` as the sink.
    pub fn from_manifest(manifest: &Manifest, audit: Arc<dyn AuditSink>) -> Self {
        Self {
            limits: manifest.limits,
            filters: manifest.filters.clone(),
            audit,
            limiter: None,
            refusal_rate: manifest
                .audit
                .as_ref()
                .map_or(Audit::DEFAULT_REFUSAL_RATE, |audit| audit.refusal_rate),
            stats: Arc::default(),
        }
    }
}

/// A tool and what the gate enforces for it.
struct GateTool {
    entry: Arc<ToolEntry>,
    access: Access,
    filter: Arc<OutputFilter>,
    concurrency: Option<Arc<Concurrency>>,
}

/// The call pipeline, shared by every transport.
pub struct Gate {
    catalog: Catalog,
    runtime: Arc<Runtime>,
    /// In catalog order.
    tools: Vec<GateTool>,
    by_name: HashMap<String, usize>,
    caps: InputCaps,
    limiter: Arc<dyn RateLimiter>,
    audit: Arc<dyn AuditSink>,
    refusals: RefusalLimiter,
    stats: Arc<Stats>,
    /// For the arguments of calls to unknown tools.
    default_filter: Arc<OutputFilter>,
}

impl Gate {
    /// A gate serving `catalog`'s tools with `runtime`, enforcing each plugin's manifest
    /// settings and `options`.
    pub fn new(
        catalog: Catalog,
        runtime: Arc<Runtime>,
        options: GateOptions,
    ) -> Result<Self, GateBuildError> {
        let detectors = Arc::new(Detectors::new(&options.filters.custom)?);
        let default_selection = options
            .filters
            .redact
            .clone()
            .unwrap_or_else(|| detectors.all_names());
        let mut filters: HashMap<&str, Arc<OutputFilter>> = HashMap::new();
        let mut caps: HashMap<&str, Option<Arc<Concurrency>>> = HashMap::new();
        let mut tools = Vec::new();
        let mut by_name = HashMap::new();
        for entry in catalog.iter() {
            let config = &entry.plugin.config;
            let filter = filters
                .entry(config.name.as_str())
                .or_insert_with(|| {
                    let selection = config.policy.redact.as_ref().unwrap_or(&default_selection);
                    Arc::new(OutputFilter::new(
                        detectors.clone(),
                        selection,
                        config.secret_values(),
                    ))
                })
                .clone();
            let concurrency = caps
                .entry(config.name.as_str())
                .or_insert_with(|| {
                    config
                        .policy
                        .concurrency
                        .map(|limit| Arc::new(Concurrency::new(limit, config.policy.queue)))
                })
                .clone();
            by_name.insert(entry.name().to_owned(), tools.len());
            tools.push(GateTool {
                entry: entry.clone(),
                access: Access::for_tool(entry),
                filter,
                concurrency,
            });
        }
        let limiter = match options.limiter {
            Some(limiter) => limiter,
            None => {
                let local = LocalRateLimiter::new(&catalog, &options.limits);
                if local.is_empty() {
                    Arc::new(Unlimited) as Arc<dyn RateLimiter>
                } else {
                    Arc::new(local)
                }
            }
        };
        let default_filter = Arc::new(OutputFilter::new(detectors, &default_selection, []));
        Ok(Self {
            catalog,
            runtime,
            tools,
            by_name,
            caps: InputCaps::from(&options.limits),
            limiter,
            audit: options.audit,
            refusals: RefusalLimiter::new(options.refusal_rate),
            stats: options.stats,
            default_filter,
        })
    }

    /// The tools `principal` may see (and call), in manifest order.
    pub fn list(&self, principal: &Principal) -> Vec<Tool> {
        self.tools
            .iter()
            .filter(|tool| tool.access.allows(principal))
            .map(|tool| tool.entry.descriptor.clone())
            .collect()
    }

    /// The catalog behind the gate.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The calls counted so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Where a call's trail goes: the audit log, the refusal limit, the counts.
    fn recorders(&self) -> (&dyn AuditSink, &RefusalLimiter, &Stats) {
        (&*self.audit, &self.refusals, &self.stats)
    }

    /// Who may use the tool named `name`, if it exists.
    pub fn access(&self, name: &str) -> Option<&Access> {
        self.by_name.get(name).map(|&i| &self.tools[i].access)
    }

    /// Record a request that the transport refused before it reached the gate (its
    /// credentials were missing or wrong): outcome `denied`, no plugin, no arguments. `what`
    /// names the request (`POST /mcp`), `error` says why, for operators. `address`: the
    /// client's, when the request was refused before authentication; such refusals are
    /// limited per address, others per principal (`[audit] refusal_rate`). Returns the request
    /// id; it is logged even when the audit log is off or the refusal limit drops it.
    pub fn record_refusal(
        &self,
        principal: &Principal,
        address: Option<IpAddr>,
        what: &str,
        error: String,
    ) -> Result<String, crate::audit::AuditError> {
        let mut trail = Trail::start(
            self.recorders(),
            principal,
            None,
            what,
            None,
            &self.default_filter,
        );
        trail.drop_args();
        if let Some(address) = address {
            trail.address(address);
        }
        let id = trail.id().to_owned();
        tracing::info!(request = %id, principal = %principal.name, %error, "request refused");
        trail.finish(Outcome::Denied, Some(error))?;
        Ok(id)
    }

    /// Run one call through the whole pipeline, and record it in the audit log before
    /// returning.
    ///
    /// An unknown tool, or one the principal may not call, is a protocol error
    /// ([`GateError::UnknownTool`]). Everything that goes wrong once the tool is known and
    /// allowed (a rate limit, bad arguments, a crash, a limit) is a tool error
    /// (`isError: true`) the agent can read and act on, ending with `(request ID)`.
    pub async fn call(&self, mut request: CallRequest<'_>) -> Result<CallToolResult, GateError> {
        let trail = Trail::start(
            self.recorders(),
            request.principal,
            request.mcp_id.take(),
            request.tool,
            request.arguments,
            &self.default_filter,
        );
        let span = tracing::info_span!(
            "call",
            tool = &*crate::audit::bounded(request.tool, crate::audit::MAX_RECORDED_NAME),
            principal = &*request.principal.name,
            request = trail.id()
        );
        self.run(request, trail).instrument(span).await
    }

    async fn run<'a>(
        &'a self,
        request: CallRequest<'a>,
        mut trail: Trail<'a>,
    ) -> Result<CallToolResult, GateError> {
        let principal = request.principal;
        let unknown = |mut trail: Trail<'_>, outcome: Outcome, detail: String| {
            tracing::info!(%outcome, detail, "call refused");
            let request_id = trail.id().to_owned();
            match trail.finish(outcome, Some(detail)) {
                Ok(()) => Err(GateError::UnknownTool {
                    tool: crate::audit::bounded(request.tool, crate::audit::MAX_RECORDED_NAME)
                        .into_owned(),
                    request_id,
                }),
                Err(_) => Err(GateError::Audit { request_id }),
            }
        };

        // Find the tool.
        let Some(tool) = self.by_name.get(request.tool).map(|&i| &self.tools[i]) else {
            return unknown(trail, Outcome::Invalid, "unknown tool".to_owned());
        };
        let plugin = &tool.entry.plugin;
        trail.plugin(&plugin.config.name, &tool.filter);

        // Authorize.
        if !tool.access.allows(principal) {
            let detail = format!(
                "principal `{}` (roles: {}) holds none of the roles {:?}",
                principal.name,
                principal.roles.join(", "),
                tool.access.roles().unwrap_or_default()
            );
            return unknown(trail, Outcome::Denied, detail);
        }

        // Rate limits, then the plugin's concurrency cap.
        let key = RateKey {
            principal,
            tool: request.tool,
            plugin: &plugin.config.name,
        };
        if let Err(retry) = self.limiter.check(&key).await {
            let message = format!(
                "rate limit reached for this tool; retry in {}s",
                retry.seconds()
            );
            return finish(
                refusal(&message, trail.id()),
                trail,
                Outcome::RateLimited,
                Some(message),
            );
        }
        let _slot = match &tool.concurrency {
            None => None,
            Some(cap) => match cap.acquire(plugin.config.limits.timeout).await {
                Ok(slot) => Some(slot),
                Err(Busy) => {
                    let message = "the tool is busy with other calls; retry in a moment";
                    return finish(
                        refusal(message, trail.id()),
                        trail,
                        Outcome::RateLimited,
                        Some(message.to_owned()),
                    );
                }
            },
        };

        // Input caps, then the strict conversion to WIT values.
        let function = tool.entry.function();
        let checked = match self.caps.check(request.arguments) {
            Err(error) => {
                if matches!(error, CapError::TooLarge { .. }) {
                    trail.drop_args();
                }
                Err(error.to_string())
            }
            Ok(()) => function
                .args_from_json(request.arguments)
                .map_err(|error| error.to_string()),
        };
        let args = match checked {
            Ok(args) => args,
            Err(error) => {
                let message = format!("invalid arguments: {error}");
                return finish(
                    refusal(&message, trail.id()),
                    trail,
                    Outcome::Invalid,
                    Some(message),
                );
            }
        };

        // Run. The plugin's log and progress messages pass its filter and caps on the way out.
        let events = Arc::new(events::FilteredEvents::new(
            request.events,
            tool.filter.clone(),
            &plugin.config.policy,
        ));
        let (mut result, outcome, detail) = match self
            .runtime
            .call(plugin, tool.entry.function, &args, events.clone())
            .await
        {
            Ok(ran) => {
                trail.fuel(ran.fuel_used);
                match output::to_result(function, ran.value) {
                    Ok(result) if result.is_error == Some(true) => {
                        (result, Outcome::ToolError, None)
                    }
                    Ok(result) => (result, Outcome::Ok, None),
                    Err(error) => {
                        let message = error.to_string();
                        (
                            refusal(&message, trail.id()),
                            Outcome::ToolError,
                            Some(message),
                        )
                    }
                }
            }
            Err(error) => {
                let outcome = Outcome::from_call_error_kind(error.kind());
                (
                    refusal(&public_message(&error), trail.id()),
                    outcome,
                    Some(format!("{error}")),
                )
            }
        };

        // Filter, then cap the size. Hits in the messages count with those in the result.
        let mut redactions = tool.filter.apply(&mut result);
        let dropped = events.finish(&mut redactions);
        if dropped > 0 {
            tracing::info!(
                dropped,
                "log and progress messages over the call's caps were dropped"
            );
        }
        let limit = plugin.config.limits.max_output;
        let size = serialized_size(&result);
        let (outcome, detail, size) = if size <= limit {
            (outcome, detail, size)
        } else {
            match plugin.config.policy.overflow {
                OutputOverflow::Refuse => {
                    let error = OutputError::TooLarge {
                        size: usize::try_from(size).unwrap_or(usize::MAX),
                        limit,
                    };
                    result = refusal(&error.to_string(), trail.id());
                    (
                        Outcome::ToolError,
                        Some(error.to_string()),
                        serialized_size(&result),
                    )
                }
                OutputOverflow::Truncate => {
                    output::truncate(&mut result, size, limit);
                    trail.truncated();
                    let outcome = if result.is_error == Some(true) && outcome == Outcome::Ok {
                        Outcome::ToolError
                    } else {
                        outcome
                    };
                    (outcome, detail, serialized_size(&result))
                }
            }
        };
        trail.output(size, redactions);
        finish(result, trail, outcome, detail)
    }
}

impl Drop for Gate {
    /// Record the refusals still being dropped, so a flood that ends with the server leaves
    /// its count behind.
    fn drop(&mut self) {
        for dropped in self.refusals.drain() {
            if let Err(error) = trail::write_summary(&*self.audit, dropped) {
                tracing::error!(%error, "audit summary of dropped refusals lost");
            }
        }
    }
}

/// Record the call and hand back `result`; a lost record withholds the result.
fn finish(
    result: CallToolResult,
    mut trail: Trail<'_>,
    outcome: Outcome,
    detail: Option<String>,
) -> Result<CallToolResult, GateError> {
    // The audit log has every call; the host log has the ones that did not go well.
    if outcome == Outcome::Ok {
        tracing::debug!(%outcome, "call finished");
    } else {
        tracing::info!(
            %outcome,
            detail = detail.as_deref().unwrap_or_default(),
            "call finished"
        );
    }
    match trail.finish(outcome, detail) {
        Ok(()) => Ok(result),
        Err(_) => Err(GateError::Audit {
            request_id: trail.id().to_owned(),
        }),
    }
}

/// A tool error the gate wrote: `message (request ID)`.
fn refusal(message: &str, request_id: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!(
        "{message} (request {request_id})"
    ))])
}

/// What the agent is told about a failed run: the runtime's messages name limits only,
/// except a sandbox that could not be prepared, whose detail may hold host paths.
fn public_message(error: &CallError) -> String {
    match error {
        CallError::Sandbox(_) => "the tool's sandbox could not be prepared".to_owned(),
        other => other.to_string(),
    }
}
