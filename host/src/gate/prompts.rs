//! `prompts/list` and `prompts/get`: the pipeline of a tool call, for a plugin's prompts.
//!
//! principal -> find the prompt -> authorize (the plugin's `roles`) -> rate limit (as a call
//! of that name) -> input caps -> arguments (every value a string, required ones present,
//! no unknown one) -> concurrency slot -> `get` in a fresh sandbox -> map the messages ->
//! filter every text -> size cap -> audit record (`method: "prompts/get"`) -> respond.
//! Refusals and failures are protocol errors: a prompt has no error result.
//!
//! A prompt's plugin may ask questions (`elicit`, `ask`, and `sample` and `roots` when
//! granted) as a tool's may: in a session during the get, in the stateless era by an
//! `input_required` result of `prompts/get` whose sealed state is bound to the principal, the
//! prompt and its arguments.

use std::sync::Arc;

use rmcp::model::{GetPromptResponse, GetPromptResult, JsonObject, Prompt, PromptMessage, Role};
use serde_json::Value;
use tracing::Instrument;

use super::approval::{Asking, Subject};
use super::events::{FilteredEvents, Questions};
use super::limits::prompt_key;
use super::output::{self, OutputError};
use super::stop::Stop;
use super::trail::Trail;
use super::{
    Gate, GateError, GatePrompt, InStep as _, Principal, Redactions, Step, authorize, interrupted,
    slot, step,
};
use crate::audit::{MAX_RECORDED_NAME, Outcome, bounded};
use crate::runtime::{CallError, CallEvents, CallOutcome};
use crate::schema::{PromptDef, result_json};

/// The method recorded in the audit record of a prompt.
const METHOD: &str = "prompts/get";

/// A `prompts/get` as the transport hands it over.
pub struct PromptRequest<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// The MCP request id (JSON-RPC `id`).
    pub mcp_id: Option<Value>,
    /// The prompt's name.
    pub name: &'a str,
    /// The arguments object, if any.
    pub arguments: Option<&'a JsonObject>,
    /// Where the plugin's log and progress messages go, and how its questions are asked
    /// when `asking` is [`Asking::Live`].
    pub events: Arc<dyn CallEvents>,
    /// How the client can be asked the plugin's questions.
    pub asking: Asking<'a>,
}

impl Gate {
    /// Whether any prompt is served (to anyone): the `prompts` capability.
    pub fn has_prompts(&self) -> bool {
        !self.prompts.is_empty()
    }

    /// The prompts `principal` may see (and get), in manifest order.
    pub fn prompts(&self, principal: &Principal) -> Vec<Prompt> {
        self.prompts
            .iter()
            .filter(|prompt| prompt.access.allows(principal))
            .map(|prompt| prompt.entry.descriptor.clone())
            .collect()
    }

    /// Get one prompt through the whole pipeline, and record it in the audit log before
    /// returning. An unknown prompt, or one the principal may not get, is
    /// [`GateError::UnknownPrompt`]; bad arguments are [`GateError::InvalidParams`];
    /// everything that goes wrong once it runs is [`GateError::Failed`]. A plugin that asks
    /// a stateless client gets it an `input_required` result.
    pub async fn get_prompt(
        &self,
        mut request: PromptRequest<'_>,
    ) -> Result<GetPromptResponse, GateError> {
        let trail = self.method_trail(
            request.principal,
            request.mcp_id.take(),
            request.name,
            request.arguments,
            METHOD,
        );
        let span = tracing::info_span!(
            "prompt",
            prompt = &*bounded(request.name, MAX_RECORDED_NAME),
            principal = &*request.principal.name,
            request = trail.id()
        );
        self.run_prompt(request, trail).instrument(span).await
    }

    async fn run_prompt<'a>(
        &'a self,
        request: PromptRequest<'a>,
        mut trail: Trail<'a>,
    ) -> Result<GetPromptResponse, GateError> {
        let PromptRequest {
            principal,
            name,
            arguments,
            events,
            asking,
            ..
        } = request;
        let mut _slot = None;
        let answer = async {
            let prompt = self.find_prompt(name)?;
            let plugin = &prompt.entry.plugin;
            trail.plugin(&plugin.config.name, &prompt.filter);
            authorize(&prompt.access, principal)?;
            let key = prompt_key(name);
            self.rate_limit(&plugin.config.name, principal, &key)
                .await?;
            self.check_params(arguments)?;
            let args = prompt_arguments(prompt.entry.def(), arguments)?;
            let subject = Subject::prompt(principal, prompt.entry.name(), arguments);
            let questions = match asking {
                Asking::Unable => Questions::Unable,
                Asking::Live => Questions::Live(self.approver.timeout()),
                Asking::Rounds {
                    state,
                    responses,
                    declared,
                } => Questions::Rounds {
                    answers: self.approver.answers(&subject, state, responses).await?,
                    declared,
                },
            };
            _slot = slot(
                prompt.concurrency.as_deref(),
                &plugin.config,
                plugin.config.limits.timeout,
            )
            .await?;
            let events = Arc::new(FilteredEvents::new(
                events,
                prompt.filter.clone(),
                &plugin.config.policy,
                questions,
            ));
            let ran = self
                .runtime
                .get_prompt(plugin, &prompt.entry.def().name, &args, events.clone())
                .in_step(Step::Run)
                .await;
            trail.usage(events.take_usage());
            if matches!(ran, Err(CallError::InputRequired))
                && let Some((interrupt, taken)) = events.take_interrupt()
            {
                return Err(interrupted(interrupt, |requests| {
                    self.approver.prompt_question(&subject, taken, requests)
                }));
            }
            let mut result = present(prompt, ran, &mut trail)?;
            let mut redactions = step(Step::Filter).in_scope(|| filter(prompt, &mut result));
            events.finish(&mut redactions);
            trail.output_capped(&result, plugin.config.limits.max_output, redactions)?;
            Ok::<_, Stop>(result)
        }
        .await;
        match answer {
            Ok(result) => {
                tracing::debug!("prompt returned");
                trail.finish_ok(result.into())
            }
            Err(stop) => stop.record_prompt(trail, name).map(Into::into),
        }
    }

    /// The input caps on the `arguments` of a request that is not a tool call: over them,
    /// invalid params, and the arguments are not kept in the record.
    pub(super) fn check_params(&self, arguments: Option<&JsonObject>) -> Result<(), Stop> {
        self.caps.check(arguments).map_err(|error| {
            Stop::invalid_params(Outcome::Invalid, format!("invalid arguments: {error}"))
                .without_args()
        })
    }

    /// Find the prompt named `name`.
    pub(super) fn find_prompt(&self, name: &str) -> Result<&GatePrompt, Stop> {
        match self.prompts_by_name.get(name) {
            Some(&i) => Ok(&self.prompts[i]),
            None => Err(Stop::unknown_tool(
                Outcome::Invalid,
                "unknown prompt".to_owned(),
            )),
        }
    }
}

/// The (name, value) pairs `get` is called with: every value a string, every required
/// argument present, no argument `def` does not declare.
fn prompt_arguments(
    def: &PromptDef,
    arguments: Option<&JsonObject>,
) -> Result<Vec<(String, String)>, Stop> {
    let invalid = |message: String| {
        Stop::invalid_params(Outcome::Invalid, format!("invalid arguments: {message}"))
    };
    let mut pairs = Vec::new();
    for (key, value) in arguments.into_iter().flatten() {
        if !def.arguments.iter().any(|a| a.name == *key) {
            let known: Vec<&str> = def.arguments.iter().map(|a| a.name.as_str()).collect();
            return Err(invalid(format!(
                "unknown argument `{}` (the prompt takes: {})",
                bounded(key, MAX_RECORDED_NAME),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
        let Value::String(value) = value else {
            return Err(invalid(format!("argument `{key}` must be a string")));
        };
        pairs.push((key.clone(), value.clone()));
    }
    if let Some(missing) = def
        .arguments
        .iter()
        .find(|a| a.required && !pairs.iter().any(|(key, _)| *key == a.name))
    {
        return Err(invalid(format!(
            "missing required argument `{}`",
            missing.name
        )));
    }
    Ok(pairs)
}

/// Map the run to the prompt's messages, or the stop that says why there are none.
fn present(
    prompt: &GatePrompt,
    ran: Result<CallOutcome, CallError>,
    trail: &mut Trail<'_>,
) -> Result<GetPromptResult, Stop> {
    let ran = ran.map_err(|error| Stop::from_run(error, "prompt"))?;
    trail.fuel(ran.fuel_used);
    let mismatch = || Stop::mismatch("prompt");
    let get = &prompt
        .entry
        .plugin
        .description
        .prompts
        .as_ref()
        .ok_or_else(mismatch)?
        .get;
    let json = result_json(get, ran.value.as_ref()).ok_or_else(mismatch)?;
    if let Some(error) = json.get("err") {
        let message = error.as_str().unwrap_or("the prompt reported an error");
        return Err(Stop::tool_error(Outcome::ToolError, message.to_owned()));
    }
    let ok = json.get("ok").ok_or_else(mismatch)?;
    let messages = ok
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(mismatch)?
        .iter()
        .map(|message| {
            let role = match message.get("role").and_then(Value::as_str) {
                Some("assistant") => Role::Assistant,
                _ => Role::User,
            };
            let content = message.get("content").ok_or(OutputError::BadContent)?;
            Ok(PromptMessage::new(role, output::block(content)?))
        })
        .collect::<Result<Vec<_>, OutputError>>()
        .map_err(|error| Stop::tool_error(Outcome::ToolError, error.to_string()))?;
    let mut result = GetPromptResult::new(messages);
    result.description = ok
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(result)
}

/// Redact every text of `result` with the plugin's filter: the description and every
/// message's content, as a tool result's content is.
fn filter(prompt: &GatePrompt, result: &mut GetPromptResult) -> Redactions {
    let mut carrier = rmcp::model::CallToolResult::success(
        result
            .messages
            .iter_mut()
            .map(|m| {
                std::mem::replace(
                    &mut m.content,
                    rmcp::model::ContentBlock::text(String::new()),
                )
            })
            .collect(),
    );
    let mut redactions = prompt.filter.apply(&mut carrier);
    for (message, content) in result.messages.iter_mut().zip(carrier.content) {
        message.content = content;
    }
    if let Some(description) = &mut result.description
        && let Some(redacted) = prompt.filter.redact_changed(description, &mut redactions)
    {
        *description = redacted;
    }
    redactions
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::PromptArgDef;

    fn def() -> PromptDef {
        let argument = |name: &str, required| PromptArgDef {
            name: name.to_owned(),
            description: None,
            required,
        };
        PromptDef {
            name: "review".to_owned(),
            title: None,
            description: None,
            arguments: vec![argument("file", true), argument("style", false)],
        }
    }

    fn arguments(value: Value) -> Result<Vec<(String, String)>, String> {
        let Value::Object(object) = value else {
            return Err("not an object".to_owned());
        };
        prompt_arguments(&def(), Some(&object)).map_err(|stop| format!("{stop:?}"))
    }

    #[test]
    fn required_arguments_are_passed_in_order_and_optional_ones_may_be_left_out() {
        assert_eq!(
            arguments(json!({"file": "a.rs"})),
            Ok(vec![("file".to_owned(), "a.rs".to_owned())])
        );
        assert_eq!(
            arguments(json!({"file": "a.rs", "style": "terse"})).map(|a| a.len()),
            Ok(2)
        );
    }

    #[test]
    fn missing_unknown_and_non_string_arguments_are_refused() {
        for (value, expected) in [
            (json!({}), "missing required argument `file`"),
            (
                json!({"file": "a", "size": "2"}),
                "unknown argument `size` (the prompt takes: file, style)",
            ),
            (json!({"file": 3}), "argument `file` must be a string"),
        ] {
            let error = arguments(value.clone()).expect_err("refused");
            assert!(error.contains(expected), "{value}: {error}");
            assert!(error.contains("InvalidParams"), "{error}");
        }
        assert!(prompt_arguments(&def(), None).is_err());
    }
}
