//! How a call ends: stopped by a step of the pipeline ([`Stop`]) or answered ([`Answer`]),
//! and the record of either, written before the response.
//!
//! The texts the agent sees are the gate's own, short and stable, and end with
//! `(request ID)`; the detail for operators goes to the host log and the audit record.

use rmcp::model::{CallToolResult, ContentBlock, InputRequiredResult};

use super::trail::Trail;
use super::{GateError, Reply as GateReply};
use crate::audit::{MAX_RECORDED_NAME, Outcome, bounded};
use crate::metrics::Refusal;
use crate::runtime::CallError;

/// A step refused the call: nothing after it runs.
#[derive(Debug)]
pub(super) struct Stop {
    /// How the call is recorded.
    outcome: Outcome,
    /// What the agent is told.
    reply: Reply,
    /// Why, for operators: the audit record's `error` and the host log.
    detail: String,
    /// Whether the record keeps the arguments (`false`: they were refused for their size).
    keep_args: bool,
    /// Why, for the metrics, when the outcome does not say it.
    refusal: Option<Refusal>,
}

/// What the agent is told when a call is stopped.
#[derive(Debug)]
enum Reply {
    /// The protocol error `unknown tool`: unknown and forbidden tools get the same, so
    /// probing reveals nothing.
    UnknownTool,
    /// A tool error (`isError: true`) with this message and the request id.
    ToolError(String),
    /// Not a refusal: the client must answer these questions and call again (2026-07-28).
    /// Boxed: it is far larger than the other replies, and every step returns a `Stop`.
    InputRequired(Box<InputRequiredResult>),
    /// The protocol error `invalid params` with this message: the request itself is wrong
    /// (a forged or expired `requestState`, malformed `inputResponses`).
    InvalidParams(String),
    /// The protocol error `missing required client capability` (-32021) naming these
    /// capabilities: the plugin needs what the client did not declare.
    MissingCapability(Vec<&'static str>),
}

impl Stop {
    /// A refusal the agent sees as the protocol error `unknown tool`.
    pub(super) fn unknown_tool(outcome: Outcome, detail: String) -> Self {
        Self {
            outcome,
            reply: Reply::UnknownTool,
            detail,
            keep_args: true,
            refusal: None,
        }
    }

    /// A refusal the agent sees as a tool error saying `message`, which is also recorded.
    pub(super) fn tool_error(outcome: Outcome, message: String) -> Self {
        Self {
            outcome,
            reply: Reply::ToolError(message.clone()),
            detail: message,
            keep_args: true,
            refusal: None,
        }
    }

    /// The call waits for the client's answers: it gets `result` (the questions and the
    /// state to carry back); `detail` is recorded.
    pub(super) fn input_required(result: InputRequiredResult, detail: String) -> Self {
        Self {
            outcome: Outcome::InputRequired,
            reply: Reply::InputRequired(Box::new(result)),
            detail,
            keep_args: true,
            refusal: None,
        }
    }

    /// A refusal the agent sees as the protocol error `invalid params` saying `message`.
    pub(super) fn invalid_params(outcome: Outcome, message: String) -> Self {
        Self {
            outcome,
            reply: Reply::InvalidParams(message.clone()),
            detail: message,
            keep_args: true,
            refusal: None,
        }
    }

    /// The plugin requires questions the client did not declare it can answer
    /// (`capabilities`: `elicitation`, `sampling`, `roots`).
    pub(super) fn missing_capability(capabilities: Vec<&'static str>) -> Self {
        Self {
            outcome: Outcome::Invalid,
            detail: format!(
                "the plugin requires client capabilities the request did not declare: {}",
                capabilities.join(", ")
            ),
            reply: Reply::MissingCapability(capabilities),
            keep_args: true,
            refusal: None,
        }
    }

    /// Record `detail` for operators instead of the agent's message.
    /// A run of a prompt or resource read that failed; `what` names it ("prompt",
    /// "resource"). A sandbox that could not be prepared is said plainly, its cause kept for
    /// the log.
    pub(super) fn from_run(error: CallError, what: &str) -> Self {
        let outcome = Outcome::from(&error);
        match error {
            CallError::Sandbox(_) => Stop::tool_error(
                outcome,
                format!("the {what}'s sandbox could not be prepared"),
            )
            .with_detail(error.to_string()),
            _ => Stop::tool_error(outcome, error.to_string()),
        }
    }

    /// A prompt's or resource's value that does not match its declared type.
    pub(super) fn mismatch(what: &str) -> Self {
        Stop::tool_error(
            Outcome::ToolError,
            format!("the {what} returned a value that does not match its declared type"),
        )
    }

    /// How the call is recorded.
    pub(super) fn outcome(&self) -> Outcome {
        self.outcome
    }

    pub(super) fn with_detail(mut self, detail: String) -> Self {
        self.detail = detail;
        self
    }

    /// The metrics count the refusal for `reason`.
    pub(super) fn with_refusal(mut self, reason: Refusal) -> Self {
        self.refusal = Some(reason);
        self
    }

    /// The record keeps no arguments (`null`).
    pub(super) fn without_args(mut self) -> Self {
        self.keep_args = false;
        self
    }

    /// Record the stopped call of `tool`, and give the agent its reply; a lost record turns
    /// the reply into [`GateError::Audit`].
    pub(super) fn record(self, mut trail: Trail<'_>, tool: &str) -> Result<GateReply, GateError> {
        if let Some(reason) = self.refusal {
            trail.refusal(reason);
        }
        if !self.keep_args {
            trail.drop_args();
        }
        match self.reply {
            Reply::InputRequired(result) => {
                trail.log_context().in_scope(|| {
                    tracing::info!(detail = self.detail, "call waits for the client's answers");
                });
                let request_id = trail.id().to_owned();
                match trail.finish(self.outcome, Some(self.detail)) {
                    Ok(()) => Ok(GateReply::InputRequired(*result)),
                    Err(_) => Err(GateError::Audit { request_id }),
                }
            }
            Reply::InvalidParams(message) => {
                trail.log_context().in_scope(|| {
                    tracing::info!(outcome = %self.outcome, detail = self.detail, "call refused");
                });
                let request_id = trail.id().to_owned();
                match trail.finish(self.outcome, Some(self.detail)) {
                    Ok(()) => Err(GateError::InvalidParams {
                        message,
                        request_id,
                    }),
                    Err(_) => Err(GateError::Audit { request_id }),
                }
            }
            Reply::MissingCapability(capabilities) => {
                trail.log_context().in_scope(|| {
                    tracing::info!(detail = self.detail, "call refused");
                });
                let request_id = trail.id().to_owned();
                match trail.finish(self.outcome, Some(self.detail)) {
                    Ok(()) => Err(GateError::MissingCapability {
                        capabilities,
                        request_id,
                    }),
                    Err(_) => Err(GateError::Audit { request_id }),
                }
            }
            Reply::ToolError(message) => finish(
                Answer {
                    result: refusal(&message, trail.id()),
                    outcome: self.outcome,
                    detail: Some(self.detail),
                },
                trail,
            )
            .map(GateReply::Done),
            Reply::UnknownTool => {
                let (outcome, detail) = (self.outcome, self.detail);
                trail.log_context().in_scope(|| {
                    tracing::info!(%outcome, detail, "call refused");
                });
                let request_id = trail.id().to_owned();
                match trail.finish(outcome, Some(detail)) {
                    Ok(()) => Err(GateError::UnknownTool {
                        tool: bounded(tool, MAX_RECORDED_NAME).into_owned(),
                        request_id,
                    }),
                    Err(_) => Err(GateError::Audit { request_id }),
                }
            }
        }
    }
}

impl Stop {
    /// Record a `prompts/get` of `name` stopped here: the questions its plugin asked (the
    /// client answers them and gets again), or the protocol error it ends with.
    pub(super) fn record_prompt(
        self,
        mut trail: Trail<'_>,
        name: &str,
    ) -> Result<InputRequiredResult, GateError> {
        if !matches!(self.reply, Reply::InputRequired(_)) {
            return Err(self.record_request(trail, Asked::Prompt(name)));
        }
        tracing::info!(
            detail = self.detail,
            "prompt waits for the client's answers"
        );
        let request_id = trail.id().to_owned();
        if !self.keep_args {
            trail.drop_args();
        }
        match (self.reply, trail.finish(self.outcome, Some(self.detail))) {
            (Reply::InputRequired(result), Ok(())) => Ok(*result),
            _ => Err(GateError::Audit { request_id }),
        }
    }

    /// Record a `prompts/get` or `resources/read` of `asked` stopped here, and say what the
    /// client is told: the protocol error of each kind of stop (neither has a tool-error
    /// result).
    pub(super) fn record_request(self, mut trail: Trail<'_>, asked: Asked<'_>) -> GateError {
        if let Some(reason) = self.refusal {
            trail.refusal(reason);
        }
        if !self.keep_args {
            trail.drop_args();
        }
        tracing::info!(outcome = %self.outcome, detail = self.detail, "request refused");
        let request_id = trail.id().to_owned();
        if trail.finish(self.outcome, Some(self.detail)).is_err() {
            return GateError::Audit { request_id };
        }
        match (self.reply, asked) {
            (Reply::UnknownTool, Asked::Prompt(name)) => GateError::UnknownPrompt {
                name: bounded(name, MAX_RECORDED_NAME).into_owned(),
                request_id,
            },
            (Reply::UnknownTool, Asked::Resource(uri)) => GateError::UnknownResource {
                uri: bounded(uri, MAX_RECORDED_URI).into_owned(),
                request_id,
            },
            (Reply::InvalidParams(message), _) => GateError::InvalidParams {
                message,
                request_id,
            },
            (Reply::ToolError(message), _) => GateError::Failed {
                message,
                request_id,
            },
            (Reply::MissingCapability(capabilities), _) => GateError::MissingCapability {
                capabilities,
                request_id,
            },
            (Reply::InputRequired(_), _) => GateError::Failed {
                message: "a prompt or a resource cannot ask questions".to_owned(),
                request_id,
            },
        }
    }
}

/// What a `prompts/get` or `resources/read` asked for: the prompt's name, the resource's URI.
#[derive(Clone, Copy, Debug)]
pub(super) enum Asked<'a> {
    Prompt(&'a str),
    Resource(&'a str),
}

/// The longest URI an error or an audit record repeats.
pub(super) const MAX_RECORDED_URI: usize = 1024;

/// What a call that passed every check answers: the tool's result, or the tool error the
/// gate wrote in its place.
pub(super) struct Answer {
    /// What the agent gets.
    pub(super) result: CallToolResult,
    /// How the call is recorded.
    pub(super) outcome: Outcome,
    /// Why it did not go well, for operators.
    pub(super) detail: Option<String>,
}

impl Answer {
    /// The tool's own result: `tool-error` when it says so, else `ok`.
    pub(super) fn tool(result: CallToolResult) -> Self {
        let outcome = if result.is_error == Some(true) {
            Outcome::ToolError
        } else {
            Outcome::Ok
        };
        Self {
            result,
            outcome,
            detail: None,
        }
    }

    /// A tool error the gate wrote in place of a result: `message (request ID)` for the
    /// agent, `detail` for operators.
    pub(super) fn failed(
        outcome: Outcome,
        message: &str,
        detail: String,
        request_id: &str,
    ) -> Self {
        Self {
            result: refusal(message, request_id),
            outcome,
            detail: Some(detail),
        }
    }

    /// The run failed: the agent is told what happened in the runtime's words (they name
    /// limits only), except for a sandbox that could not be prepared, whose detail may hold
    /// host paths.
    pub(super) fn run_failed(error: &CallError, request_id: &str) -> Self {
        let detail = error.to_string();
        match error {
            CallError::Sandbox(_) => Self::failed(
                Outcome::from(error),
                "the tool's sandbox could not be prepared",
                detail,
                request_id,
            ),
            _ => Self::failed(Outcome::from(error), &detail, detail.clone(), request_id),
        }
    }

    /// Record the call, and hand back its result; a lost record withholds the result.
    pub(super) fn record(self, trail: Trail<'_>) -> Result<GateReply, GateError> {
        finish(self, trail).map(GateReply::Done)
    }
}

impl From<&CallError> for Outcome {
    /// How a failed run is recorded. Every kind of failure is named here, so a new one
    /// cannot be recorded as something it is not without a decision.
    fn from(error: &CallError) -> Self {
        match error {
            CallError::OutOfFuel(_) => Outcome::OutOfFuel,
            CallError::Timeout(_) => Outcome::Timeout,
            CallError::OutOfMemory(_) => Outcome::OutOfMemory,
            CallError::StackOverflow | CallError::Trap(_) => Outcome::Trap,
            CallError::Instantiate(_) | CallError::Sandbox(_) | CallError::Unavailable(_) => {
                Outcome::Unavailable
            }
            CallError::InputRequired => Outcome::InputRequired,
        }
    }
}

/// Record the call and hand back its result; a lost record withholds the result.
fn finish(answer: Answer, mut trail: Trail<'_>) -> Result<CallToolResult, GateError> {
    let Answer {
        result,
        outcome,
        detail,
    } = answer;
    // The audit log has every call; the host log has the ones that did not go well.
    if outcome == Outcome::Ok {
        tracing::debug!(%outcome, "call finished");
    } else {
        trail.log_context().in_scope(|| {
            tracing::info!(
                %outcome,
                detail = detail.as_deref().unwrap_or_default(),
                "call finished"
            );
        });
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn run_failures_are_recorded_by_kind() {
        let cases = [
            (CallError::OutOfFuel(1), Outcome::OutOfFuel),
            (CallError::Timeout(Duration::from_secs(1)), Outcome::Timeout),
            (CallError::OutOfMemory(1 << 20), Outcome::OutOfMemory),
            (CallError::StackOverflow, Outcome::Trap),
            (CallError::Trap("unreachable".into()), Outcome::Trap),
            (CallError::Instantiate("pool".into()), Outcome::Unavailable),
            (CallError::Sandbox("/srv/x".into()), Outcome::Unavailable),
            (CallError::Unavailable("p".into()), Outcome::Unavailable),
        ];
        for (error, outcome) in cases {
            assert_eq!(Outcome::from(&error), outcome, "{error:?}");
        }
    }

    #[test]
    fn a_sandbox_failure_names_no_path() {
        let error = CallError::Sandbox("/srv/secret/dir: permission denied".into());
        let answer = Answer::run_failed(&error, "R");
        let text = serde_json::to_string(&answer.result).unwrap_or_default();
        assert!(text.contains("the tool's sandbox could not be prepared (request R)"));
        assert!(!text.contains("/srv/secret"));
        assert_eq!(answer.detail.as_deref(), Some(error.to_string().as_str()));
        assert_eq!(answer.result.is_error, Some(true));
    }

    #[test]
    fn a_trap_is_told_in_the_runtime_words() {
        let error = CallError::Trap("boom".into());
        let answer = Answer::run_failed(&error, "R");
        let text = serde_json::to_string(&answer.result).unwrap_or_default();
        assert!(
            text.contains("the tool crashed (boom) (request R)"),
            "{text}"
        );
        assert_eq!(answer.outcome, Outcome::Trap);
    }
}
