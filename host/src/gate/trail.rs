//! The audit record of one call, filled in as the call goes through the gate and written once
//! at the end, before the response. A call dropped half-way (the client went away) is still
//! recorded, as `cancelled`.

use std::time::{Instant, SystemTime};

use rmcp::model::JsonObject;
use serde_json::Value;

use super::{OutputFilter, Principal, audit_args};
use crate::audit::{AuditError, AuditSink, Outcome, Record, rfc3339};

/// One call's record in the making.
pub(super) struct Trail<'a> {
    sink: &'a dyn AuditSink,
    id: String,
    /// `None` when the sink is disabled: then nothing of the record is built.
    record: Option<Record>,
    started: Instant,
    done: bool,
    /// The arguments, turned into the record's `args` when it is written.
    args: Option<&'a JsonObject>,
    /// The filter for detector hits in the arguments; `None`: the arguments are not kept.
    args_filter: Option<&'a OutputFilter>,
}

/// A record of a request by `principal` for `tool` with request id `id`, not yet finished:
/// outcome `cancelled`, no arguments.
pub(super) fn new_record(
    principal: &Principal,
    mcp_id: Option<Value>,
    tool: &str,
    id: String,
) -> Record {
    Record {
        ts: rfc3339(SystemTime::now()),
        id,
        mcp_id,
        principal: principal.name.to_string(),
        roles: principal.roles.to_vec(),
        transport: principal.transport.as_str().to_owned(),
        plugin: None,
        tool: tool.to_owned(),
        args: Value::Null,
        outcome: Outcome::Cancelled,
        error: None,
        duration_us: 0,
        fuel: None,
        output_bytes: None,
        redactions: Default::default(),
        truncated: false,
    }
}

impl<'a> Trail<'a> {
    /// Start the record of a call of `tool` by `principal` with `args`, with a fresh request
    /// id. Detector hits in the arguments are redacted with `filter`.
    pub(super) fn start(
        sink: &'a dyn AuditSink,
        principal: &Principal,
        mcp_id: Option<Value>,
        tool: &str,
        args: Option<&'a JsonObject>,
        filter: &'a OutputFilter,
    ) -> Self {
        let id = super::new_request_id();
        let record = sink
            .enabled()
            .then(|| new_record(principal, mcp_id, tool, id.clone()));
        Self {
            sink,
            id,
            record,
            started: Instant::now(),
            done: false,
            args,
            args_filter: Some(filter),
        }
    }

    /// The call's request id.
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// Fill in the record with `fill`, if there is one.
    pub(super) fn note(&mut self, fill: impl FnOnce(&mut Record)) {
        if let Some(record) = &mut self.record {
            fill(record);
        }
    }

    /// Redact detector hits in the arguments with `filter` (the tool's plugin's).
    pub(super) fn args_filter(&mut self, filter: &'a OutputFilter) {
        if self.args_filter.is_some() {
            self.args_filter = Some(filter);
        }
    }

    /// Keep no arguments in the record (`null`): they were refused for their size.
    pub(super) fn drop_args(&mut self) {
        self.args_filter = None;
    }

    /// Write the record with `outcome` and the operator-facing `error`, if any.
    pub(super) fn finish(
        mut self,
        outcome: Outcome,
        error: Option<String>,
    ) -> Result<(), AuditError> {
        self.done = true;
        self.write(outcome, error)
    }

    fn write(&mut self, outcome: Outcome, error: Option<String>) -> Result<(), AuditError> {
        let Some(record) = &mut self.record else {
            return Ok(());
        };
        record.outcome = outcome;
        record.error = error;
        record.duration_us = self.started.elapsed().as_micros() as u64;
        if let Some(filter) = self.args_filter {
            record.args = audit_args(self.args, filter);
        }
        let written = self.sink.record(record);
        if let Err(error) = &written {
            tracing::error!(%error, request = %record.id, "audit record lost");
        }
        written
    }
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
