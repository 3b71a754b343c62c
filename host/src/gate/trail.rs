//! The audit record of one call: what the gate learns as the call goes through it, written
//! once at the end, before the response. A call dropped half-way (the client went away) is
//! still recorded, as `cancelled`.
//!
//! Nothing is copied while the call runs: the trail keeps references and a few numbers, and
//! the [`Record`] borrows them when it is written.

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use rmcp::model::JsonObject;
use serde_json::{Map, Value};

use super::meters::{Ending, Meters};
use super::output::serialized_size;
use super::refusals::{Dropped, RefusalLimiter, Verdict};
use super::resources::cap;
use super::stats::Stats;
use super::stop::Stop;
use super::{Gate, GateError, OutputFilter, Principal, Redactions, audit_args};
use crate::audit::{
    ApprovalRecord, AuditError, AuditSink, MAX_RECORDED_ERROR, MAX_RECORDED_NAME, Outcome, Record,
    bounded, bounded_id, rfc3339,
};
use crate::metrics::{Answered, CallMeter, Refusal};

/// Where a call's trail goes: the audit log, the refusal limit, the counts, the metrics.
pub(super) type Recorders<'a> = (&'a dyn AuditSink, &'a RefusalLimiter, &'a Stats, &'a Meters);

/// One call's record in the making.
pub(super) struct Trail<'a> {
    sink: &'a dyn AuditSink,
    refusals: &'a RefusalLimiter,
    stats: &'a Stats,
    meters: &'a Meters,
    /// The tool's metric handles, when metrics are on and the tool was found.
    meter: Option<&'a CallMeter>,
    /// Why the request was refused, when the step that refused it said.
    refusal: Option<Refusal>,
    /// The client's address, for requests refused before authentication.
    address: Option<IpAddr>,
    id: String,
    principal: &'a Principal,
    mcp_id: Option<Value>,
    tool: &'a str,
    /// The MCP method when it is not `tools/call`.
    method: Option<&'static str>,
    plugin: Option<&'a str>,
    /// The arguments, turned into the record's `args` when it is written.
    args: Option<&'a JsonObject>,
    /// The filter for detector hits in the arguments; `None`: the arguments are not kept.
    args_filter: Option<&'a OutputFilter>,
    arrived: SystemTime,
    started: Instant,
    fuel: Option<u64>,
    output_bytes: Option<u64>,
    redactions: Redactions,
    truncated: bool,
    usage: Map<String, Value>,
    /// Boxed: rare, and the trail is moved on every call.
    approval: Option<Box<ApprovalRecord>>,
    /// The request's trace when traces are on (the transport's, current when the trail starts).
    trace: Option<crate::telemetry::Trace>,
    done: bool,
}

impl Gate {
    /// Start the record of a `method` request (not `tools/call`) by `principal` about
    /// `subject` (a prompt's name, a URI), with `args`.
    pub(super) fn method_trail<'a>(
        &'a self,
        principal: &'a Principal,
        mcp_id: Option<Value>,
        subject: &'a str,
        args: Option<&'a JsonObject>,
        method: &'static str,
    ) -> Trail<'a> {
        let mut trail = Trail::start(
            self.recorders(),
            principal,
            mcp_id,
            subject,
            args,
            &self.default_filter,
        );
        trail.method(method);
        trail
    }

    /// `text` (a URI, a reference) as it is recorded: what a detector finds in it redacted.
    pub(super) fn recorded<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match self
            .default_filter
            .redact_changed(text, &mut Redactions::new())
        {
            Some(redacted) => Cow::Owned(redacted),
            None => Cow::Borrowed(text),
        }
    }
}

impl<'a> Trail<'a> {
    /// Start the record of a call of `tool` by `principal` with `args`, with a fresh request
    /// id. Detector hits in the arguments are redacted with `filter`.
    pub(super) fn start(
        (sink, refusals, stats, meters): Recorders<'a>,
        principal: &'a Principal,
        mcp_id: Option<Value>,
        tool: &'a str,
        args: Option<&'a JsonObject>,
        filter: &'a OutputFilter,
    ) -> Self {
        Self {
            sink,
            refusals,
            stats,
            meters,
            meter: None,
            refusal: None,
            address: None,
            id: super::new_request_id(),
            principal,
            mcp_id,
            tool,
            method: None,
            plugin: None,
            args,
            args_filter: Some(filter),
            arrived: SystemTime::now(),
            started: Instant::now(),
            fuel: None,
            output_bytes: None,
            redactions: Redactions::new(),
            truncated: false,
            usage: Map::new(),
            approval: None,
            trace: crate::telemetry::current(),
            done: false,
        }
    }

    /// The request came from `address` and was refused before authentication: its refusals
    /// are limited per address rather than per (claimed) principal.
    pub(super) fn address(&mut self, address: IpAddr) {
        self.address = Some(address);
    }

    /// The call's request id.
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// The call's context for a line of the host log about it: the `call` span
    /// ([`super::Gate`]'s `call_as`) is at debug level, so a line at info or above, written
    /// when the call goes badly, opens a `call` span of its own with the same fields.
    pub(super) fn log_context(&self) -> tracing::Span {
        if tracing::enabled!(target: "warden::gate", tracing::Level::DEBUG) {
            return tracing::Span::none();
        }
        tracing::info_span!(
            target: "warden::gate",
            "call",
            tool = &*bounded(self.tool, MAX_RECORDED_NAME),
            principal = &*self.principal.name,
            request = &*self.id
        )
    }

    /// The request is `method` (`prompts/get`), not a tool call; `tool` names a prompt.
    pub(super) fn method(&mut self, method: &'static str) {
        self.method = Some(method);
    }

    /// The tool was found in `plugin`, whose filter redacts detector hits in the arguments.
    pub(super) fn plugin(&mut self, plugin: &'a str, filter: &'a OutputFilter) {
        if self.plugin.is_none()
            && let Some(meter) = self.meters.plugin(plugin)
        {
            meter.in_flight(1);
        }
        self.plugin = Some(plugin);
        if self.args_filter.is_some() {
            self.args_filter = Some(filter);
        }
    }

    /// The tool's metric handles.
    pub(super) fn meter(&mut self, meter: Option<&'a CallMeter>) {
        self.meter = meter;
    }

    /// The request was refused for `reason` (the metrics' label).
    pub(super) fn refusal(&mut self, reason: Refusal) {
        self.refusal = Some(reason);
    }

    /// Keep no arguments in the record (`null`): they were refused for their size.
    pub(super) fn drop_args(&mut self) {
        self.args_filter = None;
    }

    /// The plugin ran to completion on `fuel` units.
    pub(super) fn fuel(&mut self, fuel: u64) {
        self.fuel = Some(fuel);
    }

    /// The result sent back: `bytes` serialized, after `redactions`.
    pub(super) fn output(&mut self, bytes: u64, redactions: Redactions) {
        self.output_bytes = Some(bytes);
        self.redactions = redactions;
    }

    /// The answer `result`, after `redactions`, is recorded; refused when it serializes to
    /// more than the plugin's `limit` bytes.
    pub(super) fn output_capped<T: serde::Serialize>(
        &mut self,
        result: &T,
        limit: u64,
        redactions: Redactions,
    ) -> Result<(), Stop> {
        let _step = super::step(super::Step::Cap);
        let size = serialized_size(result);
        cap(size, limit)?;
        self.output(size, redactions);
        Ok(())
    }

    /// Write the record of a request that succeeded, and hand back its `result`; an audit
    /// log that cannot be written fails the request.
    pub(super) fn finish_ok<T>(mut self, result: T) -> Result<T, GateError> {
        match self.finish(Outcome::Ok, None) {
            Ok(()) => Ok(result),
            Err(_) => Err(GateError::Audit {
                request_id: self.id().to_owned(),
            }),
        }
    }

    /// What the call did with its capabilities.
    pub(super) fn usage(&mut self, usage: Map<String, Value>) {
        self.usage = usage;
    }

    /// A human approved the call.
    pub(super) fn approval(&mut self, approval: ApprovalRecord) {
        self.approval = Some(Box::new(approval));
    }

    /// The result was truncated to fit `max_output`.
    pub(super) fn truncated(&mut self) {
        self.truncated = true;
    }

    /// Write the record with `outcome` and the operator-facing `error`, if any. Once only:
    /// the trail writes nothing more.
    pub(super) fn finish(
        &mut self,
        outcome: Outcome,
        error: Option<String>,
    ) -> Result<(), AuditError> {
        self.done = true;
        self.write(outcome, error)
    }

    fn write(&mut self, outcome: Outcome, error: Option<String>) -> Result<(), AuditError> {
        // A tool's name is kept once it was found (`plugin` is set): a name a client made up
        // is counted with the others.
        self.stats.record(self.plugin.map(|_| self.tool), outcome);
        if self.meters.on() {
            self.meter_outcome(outcome);
        }
        let trace_id = self.trace.take().and_then(|trace| {
            let failed = !matches!(outcome, Outcome::Ok | Outcome::InputRequired);
            let principal = bounded(&self.principal.name, MAX_RECORDED_NAME);
            trace.finish(self.plugin, outcome.as_str(), failed, &principal)
        });
        if !self.sink.enabled() {
            return Ok(());
        }
        let principal = self.principal;
        if matches!(
            outcome,
            Outcome::Denied | Outcome::Invalid | Outcome::RateLimited
        ) {
            let key = match self.address {
                Some(address) => format!("address {address}"),
                None => format!("principal {}", bounded(&principal.name, MAX_RECORDED_NAME)),
            };
            match self.refusals.check(&key, principal.transport.as_str()) {
                Verdict::Record(None) => {}
                Verdict::Record(Some(dropped)) => self.summarize(dropped)?,
                Verdict::Summarize(dropped) => return self.summarize(dropped),
                Verdict::Drop => return Ok(()),
            }
        }
        let record = Record {
            ts: rfc3339(self.arrived),
            id: Cow::Borrowed(&self.id),
            mcp_id: self.mcp_id.take().map(bounded_id),
            principal: bounded(&principal.name, MAX_RECORDED_NAME),
            roles: bounded_roles(&principal.roles),
            transport: Cow::Borrowed(principal.transport.as_str()),
            plugin: self.plugin.map(Cow::Borrowed),
            tool: bounded(self.tool, MAX_RECORDED_NAME),
            method: self.method.map(Cow::Borrowed),
            args: self.args_filter.map(|filter| audit_args(self.args, filter)),
            outcome,
            error: error.map(|error| match bounded(&error, MAX_RECORDED_ERROR) {
                Cow::Borrowed(_) => error,
                Cow::Owned(cut) => cut,
            }),
            duration_us: self.started.elapsed().as_micros() as u64,
            fuel: self.fuel,
            output_bytes: self.output_bytes,
            redactions: std::mem::take(&mut self.redactions),
            truncated: self.truncated,
            usage: std::mem::take(&mut self.usage),
            approval: self.approval.take().map(|approval| *approval),
            dropped: None,
            trace_id,
        };
        let written = crate::telemetry::step("audit.write").in_scope(|| self.sink.record(&record));
        if let Err(error) = &written {
            tracing::error!(%error, request = %self.id, "audit record lost");
        }
        written
    }
}

impl Trail<'_> {
    /// Add the request to the metrics.
    fn meter_outcome(&self, outcome: Outcome) {
        let method = self.method.unwrap_or("tools/call");
        self.meters.record(Ending {
            outcome,
            method,
            plugin: self.plugin,
            tool: matches!(method, "tools/call" | "prompts/get").then_some(self.tool),
            meter: self.meter,
            refusal: self.refusal,
            answered: Answered {
                outcome: (outcome as usize, outcome.as_str()),
                elapsed: self.started.elapsed(),
                fuel: self.fuel,
                output_bytes: self.output_bytes,
            },
            redactions: &self.redactions,
            principal: &self.principal.name,
            authenticated: self.address.is_none(),
        });
    }

    /// Write the summary of refusals that were not recorded.
    fn summarize(&self, dropped: Dropped) -> Result<(), AuditError> {
        write_summary(self.sink, dropped)
    }
}

/// Write the `dropped` record of `dropped`.
pub(super) fn write_summary(sink: &dyn AuditSink, dropped: Dropped) -> Result<(), AuditError> {
    let id = super::new_request_id();
    let error = format!(
        "{} refusal(s) from {} were not recorded between {} and {}: over the refusal rate limit ([audit] refusal_rate)",
        dropped.count,
        dropped.key,
        rfc3339(dropped.since),
        rfc3339(dropped.until)
    );
    tracing::warn!(request = %id, "{error}");
    let record = Record {
        ts: rfc3339(dropped.since),
        id: Cow::Borrowed(&id),
        mcp_id: None,
        principal: match dropped.key.strip_prefix("principal ") {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Borrowed("-"),
        },
        roles: Cow::Borrowed(&[]),
        transport: Cow::Borrowed(dropped.transport),
        plugin: None,
        tool: Cow::Borrowed("-"),
        method: None,
        args: None,
        outcome: Outcome::Dropped,
        error: Some(error),
        duration_us: 0,
        fuel: None,
        output_bytes: None,
        redactions: Default::default(),
        truncated: false,
        usage: Map::new(),
        approval: None,
        dropped: Some(dropped.count),
        trace_id: None,
    };
    sink.record(&record)
}

/// The roles, each bounded to [`MAX_RECORDED_NAME`] and at most 64 of them; borrowed when they
/// fit.
fn bounded_roles(roles: &[String]) -> Cow<'_, [String]> {
    const MAX_ROLES: usize = 64;
    if roles.len() <= MAX_ROLES && roles.iter().all(|role| role.len() <= MAX_RECORDED_NAME) {
        return Cow::Borrowed(roles);
    }
    let mut kept: Vec<String> = roles
        .iter()
        .take(MAX_ROLES)
        .map(|role| bounded(role, MAX_RECORDED_NAME).into_owned())
        .collect();
    if roles.len() > MAX_ROLES {
        kept.push(format!("…[+{} roles]", roles.len() - MAX_ROLES));
    }
    Cow::Owned(kept)
}

impl Drop for Trail<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.write(
                Outcome::Cancelled,
                Some("the call was dropped before it finished".to_owned()),
            );
        }
    }
}
