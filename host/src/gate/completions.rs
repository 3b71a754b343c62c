//! `completion/complete`: the pipeline of a tool call, for the completions of a prompt's
//! argument or a resource template's variable.
//!
//! principal -> find the prompt or template -> authorize (its plugin's `roles`) -> the
//! argument must be one the prompt takes (or a variable of the template) -> rate limit (the
//! prompt's bucket, or the plugin's resources bucket) -> concurrency slot -> `complete` in a
//! fresh sandbox -> filter every value -> at most [`MAX_VALUES`] values (`total` and `hasMore`
//! say how many there were) -> size cap -> audit record (`method: "completion/complete"`, the
//! prompt's name or the URI template as the name) -> respond. A plugin that exports no
//! `warden:mcp/completions` answers no values, without running. An unknown prompt or
//! template, or one the principal may not use, is the same -32602 as for `prompts/get` and
//! `resources/read`.

use std::sync::Arc;

use rmcp::model::{ArgumentInfo, CompleteResult, CompletionContext, CompletionInfo};
use serde_json::Value;
use tracing::Instrument;

use super::events::{FilteredEvents, Questions};
use super::limits::{prompt_key, resources_key};
use super::stop::{Asked, MAX_RECORDED_URI, Stop};
use super::trail::Trail;
use super::{Access, Concurrency, Gate, GateError, OutputFilter, Principal, Redactions};
use super::{InStep as _, Step, authorize, slot, step};
use crate::audit::{MAX_RECORDED_NAME, Outcome, bounded};
use crate::runtime::{CallEvents, Plugin};
use crate::schema::{CompletionRef, completions_from};

/// The method recorded in the audit record of a completion.
const METHOD: &str = "completion/complete";

/// The most values one answer holds (MCP's limit).
pub const MAX_VALUES: usize = CompletionInfo::MAX_VALUES;

/// A `completion/complete` as the transport hands it over.
pub struct CompleteRequest<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// The MCP request id (JSON-RPC `id`).
    pub mcp_id: Option<Value>,
    /// The prompt (by its served name) or resource template.
    pub reference: CompletionRef<'a>,
    /// The argument and what was typed so far.
    pub argument: &'a ArgumentInfo,
    /// The other arguments' values, if the client sent them.
    pub context: Option<&'a CompletionContext>,
    /// Where the plugin's log and progress messages go.
    pub events: Arc<dyn CallEvents>,
}

/// What a completion was found to complete: the plugin and how it knows the reference.
struct Target<'g> {
    plugin: &'g Arc<Plugin>,
    /// The plugin's own name for the prompt, or the URI template.
    reference: CompletionRef<'g>,
    /// The rate limit bucket.
    key: String,
    /// The arguments (or variables) the reference takes.
    arguments: Vec<String>,
    filter: &'g Arc<OutputFilter>,
    concurrency: Option<&'g Concurrency>,
}

impl Gate {
    /// Whether a plugin that serves prompts or resources completes them: the `completions`
    /// capability.
    pub fn has_completions(&self) -> bool {
        let completes = |plugin: &Plugin| plugin.description.completions.is_some();
        self.prompts.iter().any(|p| completes(&p.entry.plugin))
            || self.catalog.resources().plugins().any(|p| completes(p))
    }

    /// Complete one argument through the whole pipeline, and record it in the audit log
    /// before returning.
    pub async fn complete(
        &self,
        mut request: CompleteRequest<'_>,
    ) -> Result<CompleteResult, GateError> {
        let (CompletionRef::Prompt(name) | CompletionRef::ResourceTemplate(name)) =
            request.reference;
        let recorded = self.recorded(name);
        let trail = self.method_trail(
            request.principal,
            request.mcp_id.take(),
            &recorded,
            None,
            METHOD,
        );
        let span = tracing::info_span!(
            "complete",
            reference = &*bounded(name, MAX_RECORDED_URI),
            argument = &*bounded(&request.argument.name, MAX_RECORDED_NAME),
            principal = &*request.principal.name,
            request = trail.id()
        );
        self.run_complete(request, trail).instrument(span).await
    }

    async fn run_complete<'a>(
        &'a self,
        request: CompleteRequest<'a>,
        mut trail: Trail<'a>,
    ) -> Result<CompleteResult, GateError> {
        let CompleteRequest {
            principal,
            reference,
            argument,
            context,
            events,
            ..
        } = request;
        let mut _slot = None;
        let answer = async {
            let target = self.completion_target(reference)?;
            let plugin = target.plugin;
            trail.plugin(&plugin.config.name, target.filter);
            authorize(&Access::for_plugin(&plugin.config), principal)?;
            if !target.arguments.contains(&argument.name) {
                return Err(Stop::invalid_params(
                    Outcome::Invalid,
                    format!(
                        "unknown argument `{}` (it takes: {})",
                        bounded(&argument.name, MAX_RECORDED_NAME),
                        target.arguments.join(", ")
                    ),
                ));
            }
            self.rate_limit(&plugin.config.name, principal, &target.key)
                .await?;
            if plugin.description.completions.is_none() {
                return Ok(CompleteResult::new(CompletionInfo::default()));
            }
            let mut pairs: Vec<(String, String)> = context
                .and_then(|c| c.arguments.as_ref())
                .into_iter()
                .flatten()
                .filter(|(name, _)| **name != argument.name)
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            pairs.sort();
            let checked: rmcp::model::JsonObject = pairs
                .iter()
                .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
                .chain([(argument.name.clone(), Value::from(argument.value.as_str()))])
                .collect();
            self.check_params(Some(&checked))?;
            _slot = slot(
                target.concurrency,
                &plugin.config,
                plugin.config.limits.timeout,
            )
            .await?;
            let events = Arc::new(FilteredEvents::new(
                events,
                target.filter.clone(),
                &plugin.config.policy,
                Questions::Unable,
            ));
            let ran = self
                .runtime
                .complete(
                    plugin,
                    target.reference,
                    (&argument.name, &argument.value),
                    &pairs,
                    events.clone(),
                )
                .in_step(Step::Run)
                .await;
            trail.usage(events.take_usage());
            let ran = ran.map_err(|error| Stop::from_run(error, "completion"))?;
            trail.fuel(ran.fuel_used);
            let complete = plugin
                .description
                .completions
                .as_ref()
                .ok_or_else(|| Stop::mismatch("completion"))?;
            let values = completions_from(complete, ran.value.as_ref())
                .ok_or_else(|| Stop::mismatch("completion"))?;
            let mut redactions = Redactions::new();
            let result =
                step(Step::Filter).in_scope(|| present(values, target.filter, &mut redactions));
            events.finish(&mut redactions);
            trail.output_capped(&result, plugin.config.limits.max_output, redactions)?;
            Ok::<_, Stop>(result)
        }
        .await;
        match answer {
            Ok(result) => trail.finish_ok(result),
            Err(stop) => Err(stop.record_request(
                trail,
                match reference {
                    CompletionRef::Prompt(name) => Asked::Prompt(name),
                    CompletionRef::ResourceTemplate(template) => Asked::Resource(template),
                },
            )),
        }
    }

    /// The plugin that completes `reference`, and what goes with it.
    fn completion_target(&self, reference: CompletionRef<'_>) -> Result<Target<'_>, Stop> {
        match reference {
            CompletionRef::Prompt(name) => {
                let found = self.find_prompt(name)?;
                let def = found.entry.def();
                Ok(Target {
                    plugin: &found.entry.plugin,
                    reference: CompletionRef::Prompt(&def.name),
                    key: prompt_key(name),
                    arguments: def.arguments.iter().map(|a| a.name.clone()).collect(),
                    filter: &found.filter,
                    concurrency: found.concurrency.as_deref(),
                })
            }
            CompletionRef::ResourceTemplate(template) => {
                let unknown =
                    || Stop::unknown_tool(Outcome::Invalid, "unknown resource template".to_owned());
                let entry = self
                    .catalog
                    .resources()
                    .templates()
                    .iter()
                    .find(|entry| entry.descriptor.uri_template == template)
                    .ok_or_else(unknown)?;
                let guard = self.guard(&entry.plugin.config.name).ok_or_else(unknown)?;
                Ok(Target {
                    plugin: &entry.plugin,
                    reference: CompletionRef::ResourceTemplate(&entry.descriptor.uri_template),
                    key: resources_key(&entry.plugin.config.name),
                    arguments: variables(&entry.descriptor.uri_template),
                    filter: &guard.filter,
                    concurrency: guard.concurrency.as_deref(),
                })
            }
        }
    }
}

/// The variables of an RFC 6570 level 1 template: the names between braces.
fn variables(template: &str) -> Vec<String> {
    template
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

/// The answer: every value filtered, at most [`MAX_VALUES`] of them, with `total` and
/// `hasMore` when there were more.
fn present(
    values: Vec<String>,
    filter: &OutputFilter,
    redactions: &mut Redactions,
) -> CompleteResult {
    let total = values.len();
    let values: Vec<String> = values
        .into_iter()
        .take(MAX_VALUES)
        .map(|value| filter.redact_changed(&value, redactions).unwrap_or(value))
        .collect();
    let mut info = CompletionInfo::default();
    info.values = values;
    info.total = Some(u32::try_from(total).unwrap_or(u32::MAX));
    info.has_more = Some(total > MAX_VALUES);
    CompleteResult::new(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_templates_variables_are_the_names_between_braces() {
        assert_eq!(variables("test://template/{id}/data"), ["id"]);
        assert_eq!(variables("notes://{user}/{id}"), ["user", "id"]);
        assert!(variables("test://static").is_empty());
    }
}
