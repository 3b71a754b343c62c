//! One call: a fresh store and instance, the function run under the plugin's limits, and any
//! failure turned into a [`CallError`] that says what happened without host internals.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tracing::Instrument;
use wasmtime::component::{ComponentExportIndex, Val};
use wasmtime::{Store, Trap};

use super::events::CallEvents;
use super::host_api::CallState;
use super::limits::CallLimiter;
use super::output::CapturedOutput;
use super::{Code, Plugin, Runtime};
use crate::capabilities;
use crate::schema::ExportedFunction;

/// What a successful call produced.
#[derive(Debug)]
pub struct CallOutcome {
    /// The function's result, if it has one.
    pub value: Option<Val>,
    /// Fuel the call consumed.
    pub fuel_used: u64,
}

/// How a call failed. The messages are safe to show to the agent: they name limits, never
/// host paths or internal state.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the tool exceeded its CPU budget of {0} fuel")]
    OutOfFuel(u64),
    #[error("the tool did not finish within its time limit of {0:?}")]
    Timeout(Duration),
    #[error("the tool exceeded its memory limit of {} MiB", .0 >> 20)]
    OutOfMemory(u64),
    #[error("the tool overflowed its stack")]
    StackOverflow,
    #[error("the tool crashed ({0})")]
    Trap(String),
    #[error("the tool could not be started: {0}")]
    Instantiate(String),
    #[error("the plugin's sandbox could not be prepared: {0}")]
    Sandbox(String),
    /// The plugin's code could not be compiled: the message names the plugin, not why.
    #[error("{0}")]
    Unavailable(String),
    /// The plugin asked a question whose answer comes with the client's next request
    /// ([`crate::runtime::ElicitFailure::Suspend`]): the call was stopped there.
    #[error("the tool needs the user's answer")]
    InputRequired,
}

/// What a host function returns to stop a call that waits for the client's next request.
#[derive(Debug)]
pub(crate) struct Suspended;

impl std::fmt::Display for Suspended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call waits for the client's answer")
    }
}

impl std::error::Error for Suspended {}

/// The time a call spent waiting for a human, which does not count against its time limit.
#[derive(Default)]
pub struct Paused(Mutex<PausedState>);

#[derive(Default)]
struct PausedState {
    total: Duration,
    since: Option<Instant>,
}

/// Ends a pause when dropped.
pub(crate) struct Pause<'a>(&'a Paused);

impl Paused {
    fn state(&self) -> MutexGuard<'_, PausedState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stop the clock until the returned guard is dropped.
    pub(crate) fn start(&self) -> Pause<'_> {
        self.state().since = Some(Instant::now());
        Pause(self)
    }

    /// The time paused so far, and whether the clock is stopped now.
    fn so_far(&self) -> (Duration, bool) {
        let state = self.state();
        let running = state.since.map_or(Duration::ZERO, |since| since.elapsed());
        (state.total + running, state.since.is_some())
    }
}

impl Drop for Pause<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state();
        if let Some(since) = state.since.take() {
            state.total += since.elapsed();
        }
    }
}

/// Which export a call runs.
#[derive(Clone, Copy, Debug)]
pub(super) enum Target {
    /// Function number N of `description.functions`: a tool.
    Tool(usize),
    /// `warden:mcp/prompts.list`.
    PromptList,
    /// `warden:mcp/prompts.get`.
    PromptGet,
    /// `warden:mcp/resources.list`.
    ResourceList,
    /// `warden:mcp/resources.templates`.
    ResourceTemplates,
    /// `warden:mcp/resources.read`.
    ResourceRead,
    /// `warden:mcp/completions.complete`.
    Complete,
}

/// The function `target` names and its export index; unavailable when the plugin does not
/// export the interface it belongs to.
fn target_export<'a>(
    plugin: &'a Plugin,
    code: &'a Code,
    target: Target,
) -> Result<(&'a ExportedFunction, &'a ComponentExportIndex), CallError> {
    let description = &plugin.description;
    let prompts = description.prompts.as_ref().zip(code.prompts.as_ref());
    let resources = description.resources.as_ref().zip(code.resources.as_ref());
    let found = match target {
        Target::Tool(index) => description
            .functions
            .get(index)
            .zip(code.exports.get(index)),
        Target::PromptList => prompts.map(|(p, [list, _])| (&p.list, list)),
        Target::PromptGet => prompts.map(|(p, [_, get])| (&p.get, get)),
        Target::ResourceList => resources.map(|(r, [list, _, _])| (&r.list, list)),
        Target::ResourceTemplates => resources.map(|(r, [_, t, _])| (&r.templates, t)),
        Target::ResourceRead => resources.map(|(r, [_, _, read])| (&r.read, read)),
        Target::Complete => description
            .completions
            .as_ref()
            .zip(code.completions.as_ref()),
    };
    let missing = match target {
        Target::Tool(_) => "such tool",
        Target::PromptList | Target::PromptGet => "prompts",
        Target::ResourceList | Target::ResourceTemplates | Target::ResourceRead => "resources",
        Target::Complete => "completions",
    };
    found.ok_or_else(|| CallError::Unavailable(format!("the plugin offers no {missing}")))
}

impl Runtime {
    /// Run function number `function` of `plugin` (an index into
    /// `plugin.description.functions`) with `args`, in a new instance.
    ///
    /// The instance sees only the plugin's grants, and is dropped when the call returns,
    /// whatever happened: no state survives between calls.
    pub async fn call(
        &self,
        plugin: &Plugin,
        function: usize,
        args: &[Val],
        events: Arc<dyn CallEvents>,
    ) -> Result<CallOutcome, CallError> {
        let timeout = plugin.config.limits.timeout;
        self.run(plugin, Target::Tool(function), args, events, timeout)
            .await
    }

    /// [`Runtime::call`] under the wall-clock limit `timeout` in place of the plugin's
    /// `timeout` (a call run as a task: its `task_timeout`). Fuel and memory stay the
    /// plugin's.
    pub async fn call_within(
        &self,
        plugin: &Plugin,
        function: usize,
        args: &[Val],
        events: Arc<dyn CallEvents>,
        timeout: std::time::Duration,
    ) -> Result<CallOutcome, CallError> {
        self.run(plugin, Target::Tool(function), args, events, timeout)
            .await
    }

    /// Run the plugin's `warden:mcp/prompts.get` for the prompt it calls `name`, with
    /// `arguments`, in a new instance, exactly as a tool call runs. The value is `get`'s
    /// `result<prompt-result, string>`.
    pub async fn get_prompt(
        &self,
        plugin: &Plugin,
        name: &str,
        arguments: &[(String, String)],
        events: Arc<dyn CallEvents>,
    ) -> Result<CallOutcome, CallError> {
        let args = crate::schema::get_args(name, arguments);
        let timeout = plugin.config.limits.timeout;
        self.run(plugin, Target::PromptGet, &args, events, timeout)
            .await
    }

    /// Run the plugin's `warden:mcp/resources.read` for `uri` in a new instance, exactly as a
    /// tool call runs. The value is `read`'s `result<list<embedded-resource>, read-error>`.
    pub async fn read_resource(
        &self,
        plugin: &Plugin,
        uri: &str,
        events: Arc<dyn CallEvents>,
    ) -> Result<CallOutcome, CallError> {
        let args = crate::schema::read_args(uri);
        let timeout = plugin.config.limits.timeout;
        self.run(plugin, Target::ResourceRead, &args, events, timeout)
            .await
    }

    /// Run the plugin's `warden:mcp/completions.complete` for `reference`'s `argument` in a
    /// new instance, exactly as a tool call runs. The value is `complete`'s `list<string>`.
    pub async fn complete(
        &self,
        plugin: &Plugin,
        reference: crate::schema::CompletionRef<'_>,
        argument: (&str, &str),
        context: &[(String, String)],
        events: Arc<dyn CallEvents>,
    ) -> Result<CallOutcome, CallError> {
        let args = crate::schema::complete_args(reference, argument.0, argument.1, context);
        let timeout = plugin.config.limits.timeout;
        self.run(plugin, Target::Complete, &args, events, timeout)
            .await
    }

    /// Run `target` of `plugin` with `args` in a new instance, under the plugin's limits.
    pub(super) async fn run(
        &self,
        plugin: &Plugin,
        target: Target,
        args: &[Val],
        events: Arc<dyn CallEvents>,
        timeout: std::time::Duration,
    ) -> Result<CallOutcome, CallError> {
        let span = tracing::debug_span!("wasm", plugin = &*plugin.name, ?target);
        self.call_inner(plugin, target, args, events, timeout)
            .instrument(span)
            .await
    }

    async fn call_inner(
        &self,
        plugin: &Plugin,
        target: Target,
        args: &[Val],
        events: Arc<dyn CallEvents>,
        timeout: std::time::Duration,
    ) -> Result<CallOutcome, CallError> {
        // A plugin still compiling (first start on a cold cache) is waited for; the call's
        // time limit starts once it can run.
        let code = plugin.code().await.map_err(CallError::Unavailable)?;
        let limits = &plugin.config.limits;
        let (stdout, stderr) = (CapturedOutput::default(), CapturedOutput::default());
        let context = capabilities::call_context(
            &plugin.config,
            &plugin.grants,
            stdout.clone(),
            stderr.clone(),
        )
        .map_err(|e| {
            tracing::error!(error = %e, "building the WASI context failed");
            CallError::Sandbox(e.to_string())
        })?;
        let mut state = CallState::new(
            context,
            plugin.grants.scrubber.clone(),
            CallLimiter::new(limits.memory),
            events.clone(),
            plugin.name.clone(),
        );
        state.sampling = plugin.config.sampling;
        state.roots = plugin.config.roots;
        // The engine the code was built by: the main one, or the baseline engine while a
        // cold plugin's Cranelift build is not ready.
        let mut store = Store::new(code.instance_pre.engine(), state);
        store.limiter(|state| &mut state.limiter);
        store
            .set_fuel(limits.fuel)
            .map_err(|e| CallError::Sandbox(e.to_string()))?;
        // Yield to the executor at every epoch tick so a busy plugin never holds a worker
        // thread past its time limit; the timeout below then drops the call.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);

        let paused = store.data().paused.clone();
        let (function, export) = target_export(plugin, &code, target)?;
        let has_result = function.result.is_some();
        let mut results = if has_result {
            vec![Val::Bool(false)]
        } else {
            Vec::new()
        };
        let run = async {
            let instance = code.instance_pre.instantiate_async(&mut store).await?;
            let func = instance.get_func(&mut store, export).ok_or_else(|| {
                wasmtime::format_err!("exported function disappeared from the instance")
            })?;
            func.call_async(&mut store, args, &mut results).await
        };
        let outcome = within(timeout, &paused, run).await;

        let usage = capabilities::usage(&store.data().slots);
        if !usage.is_empty() {
            events.usage(usage);
        }
        stdout.flush_to_log(&plugin.name, "stdout", &plugin.grants.scrubber);
        stderr.flush_to_log(&plugin.name, "stderr", &plugin.grants.scrubber);

        match outcome {
            Err(_elapsed) => Err(CallError::Timeout(timeout)),
            Ok(Err(error)) => Err(classify(
                &plugin.name,
                &error,
                store.data().limiter.memory_exhausted,
                limits,
            )),
            Ok(Ok(())) => {
                let fuel_used = limits.fuel - store.get_fuel().unwrap_or(limits.fuel);
                Ok(CallOutcome {
                    value: results.pop(),
                    fuel_used,
                })
            }
        }
    }
}

/// Run `work` for at most `limit`, not counting the time `paused` says it waited for a human.
/// The pause is read only when the limit is reached, so a call that never asks pays nothing.
async fn within<F: std::future::Future>(
    limit: Duration,
    paused: &Paused,
    work: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    let started = tokio::time::Instant::now();
    let mut deadline = started + limit;
    let mut work = std::pin::pin!(work);
    loop {
        match tokio::time::timeout_at(deadline, &mut work).await {
            Ok(output) => return Ok(output),
            Err(elapsed) => {
                // While a human is being asked, the deadline keeps moving.
                let (waited, waiting) = paused.so_far();
                deadline = started + limit + waited;
                if !waiting && deadline <= tokio::time::Instant::now() {
                    return Err(elapsed);
                }
            }
        }
    }
}

/// Turn a wasmtime error into what the agent is told; the full error goes to the host log.
fn classify(
    plugin: &str,
    error: &wasmtime::Error,
    memory_exhausted: bool,
    limits: &crate::manifest::Limits,
) -> CallError {
    if error.downcast_ref::<Suspended>().is_some() {
        return CallError::InputRequired;
    }
    tracing::warn!(plugin, error = format!("{error:?}"), "plugin call failed");
    if memory_exhausted {
        return CallError::OutOfMemory(limits.memory);
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => CallError::OutOfFuel(limits.fuel),
        Some(Trap::Interrupt) => CallError::Timeout(limits.timeout),
        Some(Trap::StackOverflow) => CallError::StackOverflow,
        Some(Trap::UnreachableCodeReached) => CallError::Trap("it panicked or aborted".to_string()),
        Some(trap) => CallError::Trap(trap.to_string()),
        None if is_pool_exhausted(error) => {
            CallError::Instantiate("too many calls are running; retry shortly".to_string())
        }
        None => CallError::Trap("it failed in a host call".to_string()),
    }
}

fn is_pool_exhausted(error: &wasmtime::Error) -> bool {
    error.chain().any(|cause| {
        let text = cause.to_string();
        text.contains("maximum concurrent") || text.contains("pooling allocator")
    })
}
