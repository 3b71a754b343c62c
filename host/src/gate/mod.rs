//! The gate: the one pipeline every call passes, whatever the transport and the plugin.
//!
//! principal and request id -> find the tool -> authorize -> rate limit (and the plugin's
//! concurrency cap) -> input caps -> strict WIT validation -> run in the sandbox -> map the
//! result to MCP content -> filter the output -> cap (refuse or truncate) -> audit -> respond.
//!
//! `Gate::run` is that list: each step is a small function that hands its product to the
//! next or stops the call with a `Stop` (the outcome, what the agent is told, what is
//! recorded; `stop`). The work of each is a module that knows nothing of the others:
//! [`principal`](Principal), `authz`, `limits`, `input`, `filter`, `output`, and the audit
//! record (`trail`, written through an [`AuditSink`], its client-chosen strings bounded,
//! refusals rate-limited per principal or client address by `refusals`). Errors the agent
//! sees are short and stable and carry the request id; the detail goes to the host log and
//! the audit record.

mod approval;
mod authz;
mod completions;
mod events;
mod filter;
mod input;
mod inputs;
mod limits;
mod live;
mod meters;
mod output;
mod prompts;
mod refusals;
mod request_id;
mod resources;
mod reveals;
mod shared_limits;
mod stats;
mod stop;
mod subscriptions;
mod trail;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use rmcp::model::{CallToolResult, InputRequiredResult, JsonObject, Tool};
use serde_json::Value;
use tracing::Instrument;
use wasmtime::component::Val;

use crate::audit::{AuditSink, NoAudit, Outcome};
use crate::catalog::{Catalog, PromptEntry, ToolEntry};
use crate::manifest::{
    self, ApprovalSettings, Audit, Filters, GlobalLimits, Manifest, OutputOverflow, Rate,
};
use crate::runtime::{CallError, CallEvents, CallOutcome, Runtime};

pub use crate::types::{Principal, Transport};
pub use approval::{
    APPROVAL_KEY, ApprovalHub, Asking, Decision, PendingApproval, PendingApprovals, UnknownApproval,
};
pub use authz::Access;
pub use completions::{CompleteRequest, MAX_VALUES as MAX_COMPLETION_VALUES};
pub use events::MAX_QUESTIONS;
pub use filter::{Detectors, MIN_SECRET_LEN, OutputFilter, Redactions, audit_args, is_secret_key};
pub use input::{CapError, InputCaps};
pub use inputs::{Declared, MAX_KEY};
pub use limits::{
    Busy, Concurrency, LocalRateLimiter, RateKey, RateLimiter, RateRefusal, RetryAfter, Slot,
    Unlimited,
};
pub use live::LiveGate;
pub use output::{OutputError, serialized_size, to_result};
pub use prompts::PromptRequest;
pub use refusals::SUMMARY_EVERY;
pub use request_id::new_request_id;
pub use resources::ReadRequest;
pub use reveals::{MAX_REVEALING_PRINCIPALS, ToolReveals, ToolsRevealed};
pub use shared_limits::{
    SharedRateLimiter, SharedStore, SlotRefusal, StoreError as LimitStoreError,
};
pub use stats::{OTHER as STATS_OTHER, Stats};
pub use subscriptions::{
    ListenSlot, MAX_LISTENS_PER_PRINCIPAL, MAX_SUBSCRIPTIONS, ResourceUpdate, ResourceUpdates,
    SubscribeRequest, SubscriptionMethod,
};

use approval::{Approver, Call, Cleared};
use events::{FilteredEvents, Interrupt, Questions};
use refusals::RefusalLimiter;
use stop::{Answer, Stop};
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
    /// Where the plugin's log and progress events go, and how its questions are asked when
    /// `asking` is [`Asking::Live`].
    pub events: Arc<dyn CallEvents>,
    /// How the client's user can be asked, for approval or the plugin's questions.
    pub asking: Asking<'a>,
}

/// What the gate answers a call.
#[derive(Debug)]
pub enum Reply {
    /// The call is over: the tool's result, or the tool error that replaces it.
    Done(CallToolResult),
    /// 2026-07-28: the client must answer the questions and call again with the state.
    InputRequired(InputRequiredResult),
}

impl Reply {
    /// The result of a call that is over; `None` for questions.
    pub fn done(self) -> Option<CallToolResult> {
        match self {
            Reply::Done(result) => Some(result),
            Reply::InputRequired(_) => None,
        }
    }
}

/// A call the gate answered with a protocol error rather than a tool result.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// No such tool, or one the principal may not see: the two are indistinguishable, so
    /// probing reveals nothing.
    #[error("unknown tool: {tool} (request {request_id})")]
    UnknownTool { tool: String, request_id: String },
    /// The request is malformed in a way the agent cannot fix by changing the arguments: a
    /// forged, tampered or expired `requestState`, `inputResponses` that are not answers.
    #[error("{message} (request {request_id})")]
    InvalidParams { message: String, request_id: String },
    /// No such prompt, or one the principal may not see.
    #[error("unknown prompt: {name} (request {request_id})")]
    UnknownPrompt { name: String, request_id: String },
    /// No resource at this URI, or one the principal may not read.
    #[error("unknown resource: {uri} (request {request_id})")]
    UnknownResource { uri: String, request_id: String },
    /// The prompt or the resource could not be produced: the plugin's error, or a limit it
    /// hit.
    #[error("{message} (request {request_id})")]
    Failed { message: String, request_id: String },
    /// The plugin requires an answer the client did not declare it can give: these client
    /// capabilities (`elicitation`, `sampling`, `roots`) are missing.
    #[error("missing required client capabilities: {} (request {request_id})", capabilities.join(", "))]
    MissingCapability {
        capabilities: Vec<&'static str>,
        request_id: String,
    },
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
    /// The rate limiter; `None`: the in-process [`LocalRateLimiter`] built from the manifest,
    /// or with `store`, the [`SharedRateLimiter`].
    pub limiter: Option<Arc<dyn RateLimiter>>,
    /// `[limits] store`: where rates and concurrency are counted with the other replicas.
    pub store: Option<Arc<SharedStore>>,
    /// Refusals recorded per principal or client address (`[audit] refusal_rate`).
    pub refusal_rate: Rate,
    /// Where calls are counted (kept across reloads by passing the same one).
    pub stats: Arc<Stats>,
    /// Where the Prometheus metrics go (`[metrics]`; kept across reloads by passing the same
    /// one); `None`: off.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// `[approval]`.
    pub approval: ApprovalSettings,
    /// Flow marks and calls waiting for operators (kept across reloads by passing the same
    /// one).
    pub approvals: Arc<ApprovalHub>,
    /// Where the resource updates plugins announce go (kept across reloads by passing the
    /// same one, so subscribers keep listening).
    pub updates: Arc<ResourceUpdates>,
    /// Where reveals of hidden tools are announced (kept across reloads by passing the same
    /// one, so sessions keep listening).
    pub reveals: Arc<ToolReveals>,
}

impl Default for GateOptions {
    /// Default caps, every detector on, no audit log, in-process rate limits.
    fn default() -> Self {
        Self {
            limits: GlobalLimits::default(),
            filters: Filters::default(),
            audit: Arc::new(NoAudit),
            limiter: None,
            store: None,
            refusal_rate: Audit::DEFAULT_REFUSAL_RATE,
            stats: Arc::default(),
            metrics: None,
            approval: ApprovalSettings::default(),
            approvals: Arc::default(),
            updates: Arc::default(),
            reveals: Arc::default(),
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
            store: None,
            refusal_rate: manifest
                .audit
                .as_ref()
                .map_or(Audit::DEFAULT_REFUSAL_RATE, |audit| audit.refusal_rate),
            stats: Arc::default(),
            metrics: None,
            approval: manifest.approval.clone(),
            approvals: Arc::default(),
            updates: Arc::default(),
            reveals: Arc::default(),
        }
    }
}

/// A tool and what the gate enforces for it.
struct GateTool {
    entry: Arc<ToolEntry>,
    /// Its metric handles, when metrics are on.
    meter: Option<crate::metrics::CallMeter>,
    access: Access,
    filter: Arc<OutputFilter>,
    concurrency: Option<Arc<Concurrency>>,
}

/// A prompt and what the gate enforces for it: its plugin's roles, filter and cap.
struct GatePrompt {
    entry: Arc<PromptEntry>,
    access: Access,
    filter: Arc<OutputFilter>,
    concurrency: Option<Arc<Concurrency>>,
}

/// What the gate enforces for every read of a plugin's resources: its filter and its cap.
struct ResourceGuard {
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
    /// In catalog order.
    prompts: Vec<GatePrompt>,
    prompts_by_name: HashMap<String, usize>,
    /// By plugin name, for each plugin that serves resources.
    resource_guards: HashMap<String, ResourceGuard>,
    caps: InputCaps,
    limiter: Arc<dyn RateLimiter>,
    audit: Arc<dyn AuditSink>,
    refusals: RefusalLimiter,
    stats: Arc<Stats>,
    meters: meters::Meters,
    /// For the arguments of calls to unknown tools.
    default_filter: Arc<OutputFilter>,
    approver: Approver,
    /// Checked resource updates, to the subscribers.
    updates: Arc<ResourceUpdates>,
    /// The hidden tools revealed so far, per principal (reset by a reload).
    revealed: reveals::Revealed,
    /// Where reveals are announced.
    reveals: Arc<ToolReveals>,
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
        let meters = meters::Meters::new(
            options.metrics.clone(),
            catalog
                .iter()
                .map(|entry| entry.plugin.config.name.as_str())
                .chain(
                    catalog
                        .prompts()
                        .map(|entry| entry.plugin.config.name.as_str()),
                )
                .chain(
                    catalog
                        .resources()
                        .plugins()
                        .map(|plugin| plugin.config.name.as_str()),
                ),
        );
        // One filter and one concurrency cap per plugin, shared by its tools and prompts.
        let mut shared: HashMap<String, (Arc<OutputFilter>, Option<Arc<Concurrency>>)> =
            HashMap::new();
        let mut per_plugin = |config: &manifest::Plugin| {
            shared
                .entry(config.name.clone())
                .or_insert_with(|| {
                    let selection = config.policy.redact.as_ref().unwrap_or(&default_selection);
                    let filter = Arc::new(OutputFilter::new(
                        detectors.clone(),
                        selection,
                        config.secret_values(),
                    ));
                    let queue = config.policy.queue;
                    let concurrency = config.policy.concurrency.map(|limit| {
                        let cap = match &options.store {
                            Some(store) => {
                                Concurrency::shared(limit, queue, store.clone(), &config.name)
                            }
                            None => Concurrency::new(limit, queue),
                        };
                        Arc::new(match meters.plugin(&config.name) {
                            Some(meter) => cap.with_meter(meter.clone()),
                            None => cap,
                        })
                    });
                    (filter, concurrency)
                })
                .clone()
        };
        let mut tools = Vec::new();
        let mut by_name = HashMap::new();
        for entry in catalog.iter() {
            let (filter, concurrency) = per_plugin(&entry.plugin.config);
            by_name.insert(entry.name().to_owned(), tools.len());
            tools.push(GateTool {
                meter: meters.tool(&entry.plugin.config.name, entry.name()),
                entry: entry.clone(),
                access: Access::for_tool(entry),
                filter,
                concurrency,
            });
        }
        let mut prompts = Vec::new();
        let mut prompts_by_name = HashMap::new();
        for entry in catalog.prompts() {
            let (filter, concurrency) = per_plugin(&entry.plugin.config);
            prompts_by_name.insert(entry.name().to_owned(), prompts.len());
            prompts.push(GatePrompt {
                entry: entry.clone(),
                access: Access::for_plugin(&entry.plugin.config),
                filter,
                concurrency,
            });
        }
        let resource_guards = catalog
            .resources()
            .plugins()
            .map(|plugin| {
                let (filter, concurrency) = per_plugin(&plugin.config);
                let guard = ResourceGuard {
                    filter,
                    concurrency,
                };
                (plugin.config.name.clone(), guard)
            })
            .collect();
        let limiter = match (options.limiter, &options.store) {
            (Some(limiter), _) => limiter,
            (None, Some(store)) => {
                let shared = SharedRateLimiter::new(&catalog, &options.limits, store.clone());
                if shared.is_empty() {
                    Arc::new(Unlimited) as Arc<dyn RateLimiter>
                } else {
                    Arc::new(shared)
                }
            }
            (None, None) => {
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
            prompts,
            prompts_by_name,
            resource_guards,
            caps: InputCaps::from(&options.limits),
            limiter,
            audit: options.audit,
            refusals: RefusalLimiter::new(options.refusal_rate),
            stats: options.stats,
            meters,
            default_filter,
            approver: Approver::new(&options.approval, options.approvals.clone(), options.store),
            updates: options.updates,
            revealed: reveals::Revealed::default(),
            reveals: options.reveals,
        })
    }

    /// The tools `principal` may see (and call), in manifest order: those whose roles it
    /// holds, less the hidden ones not revealed to it.
    pub fn list(&self, principal: &Principal) -> Vec<Tool> {
        self.tools
            .iter()
            .enumerate()
            .filter(|(i, tool)| tool.access.allows(principal) && self.shown(*i, principal))
            .map(|(_, tool)| tool.entry.descriptor.clone())
            .collect()
    }

    /// Whether any tool runs as a task (`task = "optional" | "required"`).
    pub fn has_tasks(&self) -> bool {
        self.tools.iter().any(|tool| tool.entry.task.is_some())
    }

    /// The catalog behind the gate.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The calls counted so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The calls waiting for an operator's approval.
    pub fn pending_approvals(&self) -> &PendingApprovals {
        self.approver.pending()
    }

    /// The roles that may answer pending approvals (`[approval] operators`).
    pub fn operators(&self) -> &[String] {
        self.approver.operators()
    }

    /// Where a call's trail goes: the audit log, the refusal limit, the counts.
    /// The filter and cap of the resources of the plugin named `plugin`.
    fn guard(&self, plugin: &str) -> Option<&ResourceGuard> {
        self.resource_guards.get(plugin)
    }

    fn recorders(&self) -> trail::Recorders<'_> {
        (&*self.audit, &self.refusals, &self.stats, &self.meters)
    }

    /// Whether the tool named `name` exists and is hidden until revealed (`hidden = true`).
    pub fn is_hidden(&self, name: &str) -> bool {
        self.by_name
            .get(name)
            .is_some_and(|&i| self.tools[i].entry.hidden)
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
        trail.refusal(match address {
            Some(_) => crate::metrics::Refusal::Auth,
            None => crate::metrics::Refusal::Transport,
        });
        if let Some(address) = address {
            trail.address(address);
        }
        let id = trail.id().to_owned();
        tracing::info!(request = %id, principal = %principal.name, %error, "request refused");
        trail.finish(Outcome::Denied, Some(error))?;
        Ok(id)
    }

    /// Record that `principal` cancelled (`tasks/cancel`, JSON-RPC id `mcp_id`) a task of
    /// `tool` while it waited for the client's answers: no call was running to record it.
    /// Returns the request id.
    pub fn record_task_cancelled(
        &self,
        principal: &Principal,
        mcp_id: Option<serde_json::Value>,
        tool: &str,
        task: &str,
    ) -> Result<String, crate::audit::AuditError> {
        let mut trail = Trail::start(
            self.recorders(),
            principal,
            mcp_id,
            tool,
            None,
            &self.default_filter,
        );
        trail.drop_args();
        let id = trail.id().to_owned();
        let why = format!("task {task} cancelled by its owner while it waited for input");
        trail.finish(Outcome::Cancelled, Some(why))?;
        Ok(id)
    }

    /// Run one call through the whole pipeline, and record it in the audit log before
    /// returning.
    ///
    /// An unknown tool, or one the principal may not call, is a protocol error
    /// ([`GateError::UnknownTool`]). Everything that goes wrong once the tool is known and
    /// allowed (a rate limit, bad arguments, a crash, a limit) is a tool error
    /// (`isError: true`) the agent can read and act on, ending with `(request ID)`.
    pub async fn call(&self, request: CallRequest<'_>) -> Result<Reply, GateError> {
        self.call_as(request, false).await.0
    }

    /// Whether the tool named `name` runs as a task for `principal`: `None` for a tool that
    /// does not, or that `principal` may not call (its call then fails as usual).
    /// Also its `task_after`: how long its call first runs as an ordinary call.
    pub fn task_mode(
        &self,
        name: &str,
        principal: &Principal,
    ) -> Option<(manifest::TaskMode, Option<std::time::Duration>)> {
        let index = *self.by_name.get(name)?;
        let tool = &self.tools[index];
        let (mode, _) = tool.entry.task?;
        (tool.access.allows(principal) && self.shown(index, principal))
            .then_some((mode, tool.entry.task_after))
    }

    /// Run one call as a task: [`Gate::call`] under the tool's `task_timeout` in place of
    /// its plugin's `timeout`; also returns the call's recorded outcome, which tells a tool
    /// error (the tool said so) from a failed run (a trap, a limit).
    pub async fn call_task(&self, request: CallRequest<'_>) -> (Result<Reply, GateError>, Outcome) {
        self.call_as(request, true).await
    }

    async fn call_as(
        &self,
        mut request: CallRequest<'_>,
        task: bool,
    ) -> (Result<Reply, GateError>, Outcome) {
        let trail = Trail::start(
            self.recorders(),
            request.principal,
            request.mcp_id.take(),
            request.tool,
            request.arguments,
            &self.default_filter,
        );
        // At debug level: formatting its fields cost about 4 µs a call with the default log
        // filter. The gate's own lines about a call carry them anyway ([`Trail::log_context`]).
        let span = tracing::debug_span!(
            "call",
            tool = &*crate::audit::bounded(request.tool, crate::audit::MAX_RECORDED_NAME),
            principal = &*request.principal.name,
            request = trail.id()
        );
        self.run(request, trail, task).instrument(span).await
    }

    /// The pipeline: find the tool -> authorize -> rate limit -> concurrency slot -> input
    /// caps and validation -> run -> map the result -> filter -> cap the size -> record.
    ///
    /// A step that refuses the call returns a [`Stop`], and the steps after it do not run. A
    /// call that gets as far as running always has an [`Answer`], a failed run's included:
    /// its message passes the filter and the size cap like a result.
    async fn run<'a>(
        &'a self,
        request: CallRequest<'a>,
        mut trail: Trail<'a>,
        task: bool,
    ) -> (Result<Reply, GateError>, Outcome) {
        let CallRequest {
            principal,
            tool: name,
            arguments,
            events,
            asking,
            ..
        } = request;
        // The plugin's concurrency slot, once taken, is held until the call is recorded.
        let mut _slot = None;
        let answer = async {
            let (index, tool) = self.find(name)?;
            let plugin = &tool.entry.plugin;
            trail.plugin(&plugin.config.name, &tool.filter);
            trail.meter(tool.meter.as_ref());
            authorize(&tool.access, principal)?;
            self.unhidden(index, principal)?;
            self.rate_limit(&plugin.config.name, principal, name)
                .await?;
            let args = step(Step::Validate).in_scope(|| self.arguments(tool, arguments))?;
            // Approval comes before the concurrency slot: a call waiting for a human holds
            // none. Boxed, so that its large future is only paid for by calls that may ask.
            let call = Call {
                tool: &tool.entry,
                principal,
                arguments,
                filter: &tool.filter,
            };
            let mut cleared = Cleared::default();
            if self.approver.may_ask(&tool.entry, asking) {
                cleared = Box::pin(self.approver.clear(&call, asking, &*events, trail.id()))
                    .in_step(Step::Approval)
                    .await?;
                if let Some(record) = &cleared.record {
                    trail.approval(record.clone());
                }
            }
            let timeout = match tool.entry.task {
                Some((_, timeout)) if task => timeout,
                _ => plugin.config.limits.timeout,
            };
            _slot = slot(tool.concurrency.as_deref(), &plugin.config, timeout).await?;
            let questions = match asking {
                Asking::Unable => Questions::Unable,
                Asking::Live => Questions::Live(self.approver.timeout()),
                Asking::Rounds { declared, .. } => Questions::Rounds {
                    answers: std::mem::take(&mut cleared.answers),
                    declared,
                },
            };
            // The plugin's log and progress messages, and its questions, pass its filter and
            // caps on the way out.
            let events = Arc::new(
                FilteredEvents::new(
                    events,
                    tool.filter.clone(),
                    &plugin.config.policy,
                    questions,
                )
                .with_revealed(self.revealed_functions(principal, &plugin.config.name)),
            );
            let ran = self
                .runtime
                .call_within(plugin, tool.entry.function, &args, events.clone(), timeout)
                .in_step(Step::Run)
                .await;
            let mut usage = events.take_usage();
            let updated = self.publish_updates(&plugin.config.name, events.take_updated());
            if updated > 0 {
                usage.insert("resources_updated".to_owned(), updated.into());
            }
            let toolset = events.take_toolset();
            if matches!(ran, Err(CallError::InputRequired))
                && let Some((interrupt, taken)) = events.take_interrupt()
            {
                trail.usage(usage);
                return Err(interrupted(interrupt, |requests| {
                    self.approver
                        .plugin_question(&call, &mut cleared, taken, requests)
                }));
            }
            let mut answer = present(tool, ran, &mut trail);
            let redactions =
                step(Step::Filter).in_scope(|| filter(tool, &mut answer.result, &events));
            let size =
                step(Step::Cap).in_scope(|| cap_size(&plugin.config, &mut answer, &mut trail));
            trail.output(size, redactions);
            if answer.outcome == Outcome::Ok {
                self.approver.returned(&tool.entry, principal).await;
                // Hidden tools are revealed (or hidden again) only by a call that ended well.
                let (revealed, hidden) =
                    self.change_toolset(principal, &plugin.config.name, toolset);
                if !revealed.is_empty() {
                    usage.insert("tools_revealed".to_owned(), revealed.into());
                }
                if !hidden.is_empty() {
                    usage.insert("tools_hidden".to_owned(), hidden.into());
                }
            }
            trail.usage(usage);
            Ok::<_, Stop>(answer)
        }
        .await;
        match answer {
            Ok(answer) => {
                let outcome = answer.outcome;
                (answer.record(trail), outcome)
            }
            Err(stop) => {
                let outcome = stop.outcome();
                (stop.record(trail, name), outcome)
            }
        }
    }

    /// Find the tool named `name`, and its index.
    fn find(&self, name: &str) -> Result<(usize, &GateTool), Stop> {
        match self.by_name.get(name) {
            Some(&i) => Ok((i, &self.tools[i])),
            None => Err(Stop::unknown_tool(
                Outcome::Invalid,
                "unknown tool".to_owned(),
            )),
        }
    }

    /// Whether the tool at `index` shows for `principal`; a hidden tool not revealed to it
    /// is refused as an unknown one.
    fn unhidden(&self, index: usize, principal: &Principal) -> Result<(), Stop> {
        if self.shown(index, principal) {
            return Ok(());
        }
        Err(Stop::unknown_tool(
            Outcome::Denied,
            "the tool is hidden and was not revealed to this principal".to_owned(),
        ))
    }

    /// The rate limits: `principal`'s on the tool named `name` of `plugin` (a prompt's
    /// `limits::prompt_key`), and the tool's own.
    async fn rate_limit(
        &self,
        plugin: &str,
        principal: &Principal,
        name: &str,
    ) -> Result<(), Stop> {
        let key = RateKey {
            principal,
            tool: name,
            plugin,
        };
        let checked = self.limiter.check(&key).in_step(Step::RateLimit).await;
        checked.map_err(|refusal| match refusal {
            RateRefusal::Retry(retry) => Stop::tool_error(
                Outcome::RateLimited,
                format!(
                    "rate limit reached for this tool; retry in {}s",
                    retry.seconds()
                ),
            ),
            RateRefusal::StoreDown => store_down(),
        })
    }

    /// The input caps on `arguments`, then their strict conversion to `tool`'s WIT values.
    /// Arguments over the size cap are not kept in the record.
    fn arguments(&self, tool: &GateTool, arguments: Option<&JsonObject>) -> Result<Vec<Val>, Stop> {
        let invalid = |error: &dyn std::fmt::Display| {
            Stop::tool_error(Outcome::Invalid, format!("invalid arguments: {error}"))
        };
        if let Err(error) = self.caps.check(arguments) {
            let stop = invalid(&error);
            let stop = stop.with_refusal(crate::metrics::Refusal::Caps);
            return Err(match error {
                CapError::TooLarge { .. } => stop.without_args(),
                _ => stop,
            });
        }
        tool.entry
            .function()
            .args_from_json(arguments)
            .map_err(|error| invalid(&error))
    }
}

/// A step of the pipeline, as a child span of the request's in a trace.
#[derive(Clone, Copy)]
pub(crate) enum Step {
    Authorize,
    RateLimit,
    Validate,
    Approval,
    Slot,
    Run,
    Filter,
    Cap,
}

/// The span of `step` (nothing, and free, when traces are off or the request is not sampled:
/// see `telemetry`).
pub(crate) fn step(step: Step) -> crate::telemetry::Step {
    crate::telemetry::step(match step {
        Step::Authorize => "gate.authorize",
        Step::RateLimit => "gate.rate_limit",
        Step::Validate => "gate.validate",
        Step::Approval => "gate.approval",
        Step::Slot => "gate.slot",
        Step::Run => "gate.run",
        Step::Filter => "gate.filter",
        Step::Cap => "gate.cap",
    })
}

/// A future run as a step of the request's trace.
pub(crate) trait InStep: Future + Sized {
    /// `self`, as the span of `which`.
    fn in_step(self, which: Step) -> impl Future<Output = Self::Output> {
        step(which).over(self)
    }
}

impl<F: Future> InStep for F {}

/// What the audit record says of a round that returns the plugin's questions: their keys
/// and methods.
fn asked(requests: &std::collections::BTreeMap<String, rmcp::model::InputRequest>) -> String {
    let asked: Vec<String> = requests
        .iter()
        .map(|(key, request)| {
            let method = serde_json::to_value(request)
                .ok()
                .and_then(|r| r.get("method").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            format!("{key} ({method})")
        })
        .collect();
    format!("the plugin asked: {}", asked.join(", "))
}

/// The stop of a request whose plugin's questions ended it: the questions to answer (the
/// reply `reply` builds of them, with its state), a malformed answer, or a required question
/// the client cannot answer.
fn interrupted(
    interrupt: Interrupt,
    reply: impl FnOnce(
        std::collections::BTreeMap<String, rmcp::model::InputRequest>,
    ) -> InputRequiredResult,
) -> Stop {
    match interrupt {
        Interrupt::Unanswered(requests) => {
            let detail = asked(&requests);
            Stop::input_required(reply(requests), detail)
        }
        Interrupt::Malformed(key, kind) => approval::malformed(&key, kind),
        Interrupt::Missing(kinds) => {
            Stop::missing_capability(kinds.iter().map(|k| k.capability()).collect())
        }
    }
}

/// Whether `principal` may use what `access` guards; a refusal looks like an unknown name.
fn authorize(access: &Access, principal: &Principal) -> Result<(), Stop> {
    let _step = step(Step::Authorize);
    if access.allows(principal) {
        return Ok(());
    }
    Err(Stop::unknown_tool(
        Outcome::Denied,
        format!(
            "principal `{}` (roles: {}) holds none of the roles {:?}",
            principal.name,
            principal.roles.join(", "),
            access.roles().unwrap_or_default()
        ),
    ))
}

/// A slot under the plugin's concurrency cap `cap`, if it has one, waiting in its queue for at
/// most the plugin's time limit, for a call that runs at most `runs`. The call runs while it
/// holds the slot.
async fn slot<'c>(
    cap: Option<&'c Concurrency>,
    config: &manifest::Plugin,
    runs: std::time::Duration,
) -> Result<Option<Slot<'c>>, Stop> {
    let Some(cap) = cap else {
        return Ok(None);
    };
    match cap
        .slot(config.limits.timeout, runs)
        .in_step(Step::Slot)
        .await
    {
        Ok(slot) => Ok(Some(slot)),
        Err(SlotRefusal::Busy) => Err(Stop::tool_error(
            Outcome::RateLimited,
            "the tool is busy with other calls; retry in a moment".to_owned(),
        )
        .with_refusal(crate::metrics::Refusal::Concurrency)),
        Err(SlotRefusal::StoreDown) => Err(store_down()),
    }
}

/// The refusal of a limited call while the limits shared by replicas cannot be counted
/// (`on_store_error = "closed"`): the detail is in the host's log, not for the agent.
fn store_down() -> Stop {
    Stop::tool_error(
        Outcome::Unavailable,
        "limits are shared by the server's replicas and cannot be checked right now; retry \
         in a moment"
            .to_owned(),
    )
}

impl Gate {
    /// The server stops: record the refusals still being dropped, then let the audit sink
    /// sign its last checkpoint.
    pub fn close_audit(&self) {
        self.flush_refusals();
        if let Err(error) = self.audit.close() {
            tracing::error!(%error, "the audit log's last checkpoint could not be written");
        }
    }

    /// The public key of the audit log's checkpoint signatures, when they are signed.
    pub fn audit_key(&self) -> Option<crate::audit::PublicKey> {
        self.audit.public_key()
    }

    /// The line of the audit log's last checkpoint this process wrote, when it signs them.
    pub fn audit_checkpoint(&self) -> Option<String> {
        self.audit.last_checkpoint()
    }

    fn flush_refusals(&self) {
        for dropped in self.refusals.drain() {
            if let Err(error) = trail::write_summary(&*self.audit, dropped) {
                tracing::error!(%error, "audit summary of dropped refusals lost");
            }
        }
    }
}

impl Drop for Gate {
    /// Record the refusals still being dropped, so a flood that ends with the server leaves
    /// its count behind.
    fn drop(&mut self) {
        self.flush_refusals();
    }
}

/// Map the run to what the agent gets: the function's value as MCP content, or the tool
/// error that says why there is none.
fn present(tool: &GateTool, ran: Result<CallOutcome, CallError>, trail: &mut Trail<'_>) -> Answer {
    match ran {
        Ok(ran) => {
            trail.fuel(ran.fuel_used);
            match output::to_result(tool.entry.function(), ran.value) {
                Ok(result) => Answer::tool(result),
                Err(error) => {
                    let message = error.to_string();
                    Answer::failed(Outcome::ToolError, &message, message.clone(), trail.id())
                }
            }
        }
        Err(error) => Answer::run_failed(&error, trail.id()),
    }
}

/// Filter `result` with `tool`'s filter, and count the hits in the call's log and progress
/// messages with those in the result.
fn filter(tool: &GateTool, result: &mut CallToolResult, events: &FilteredEvents) -> Redactions {
    let mut redactions = tool.filter.apply(result);
    let dropped = events.finish(&mut redactions);
    if dropped > 0 {
        tracing::info!(
            dropped,
            "log and progress messages over the call's caps were dropped"
        );
    }
    redactions
}

/// Cap the answer's serialized size at the plugin's `max_output`: refuse it, or cut it with a
/// marker, as the plugin says. Returns the size sent.
fn cap_size(config: &manifest::Plugin, answer: &mut Answer, trail: &mut Trail<'_>) -> u64 {
    let limit = config.limits.max_output;
    let size = serialized_size(&answer.result);
    if size <= limit {
        return size;
    }
    match config.policy.overflow {
        OutputOverflow::Refuse => {
            let error = OutputError::TooLarge {
                size: usize::try_from(size).unwrap_or(usize::MAX),
                limit,
            };
            let message = error.to_string();
            *answer = Answer::failed(Outcome::ToolError, &message, message.clone(), trail.id());
        }
        OutputOverflow::Truncate => {
            output::truncate(&mut answer.result, size, limit);
            trail.truncated();
            if answer.result.is_error == Some(true) && answer.outcome == Outcome::Ok {
                answer.outcome = Outcome::ToolError;
            }
        }
    }
    serialized_size(&answer.result)
}
