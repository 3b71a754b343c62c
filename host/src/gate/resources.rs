//! `resources/list`, `resources/templates/list` and `resources/read`: the pipeline of a tool
//! call, for a plugin's resources.
//!
//! principal -> find the plugin that serves the URI -> authorize (the plugin's `roles`) ->
//! rate limit (one bucket per plugin, `resources:PLUGIN`) -> concurrency slot -> `read` in a
//! fresh sandbox -> map the contents -> filter every text (blobs are bytes, not text: they
//! pass unfiltered) -> size cap -> audit record (`method: "resources/read"`, the URI as the
//! name) -> respond. An unknown URI, or one the principal may not read, is the same -32602
//! with the URI; other refusals and failures are protocol errors.

use std::sync::Arc;

use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use serde_json::Value;
use tracing::Instrument;

use super::events::{FilteredEvents, Questions};
use super::limits::resources_key;
use super::output::OutputError;
use super::stop::{Asked, MAX_RECORDED_URI, Stop};
use super::trail::Trail;
use super::{
    Access, Gate, GateError, InStep as _, Principal, Redactions, Step, authorize, slot, step,
};
use crate::audit::{Outcome, bounded};
use crate::catalog::Resources;
use crate::runtime::{CallError, CallEvents, CallOutcome, Plugin};
use crate::schema::result_json;

/// The method recorded in the audit record of a read.
const METHOD: &str = "resources/read";

/// A `resources/read` as the transport hands it over.
pub struct ReadRequest<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// The MCP request id (JSON-RPC `id`).
    pub mcp_id: Option<Value>,
    /// The URI to read.
    pub uri: &'a str,
    /// Where the plugin's log and progress messages go.
    pub events: Arc<dyn CallEvents>,
}

impl Gate {
    /// Whether any resource or template is served (to anyone): the `resources` capability.
    pub fn has_resources(&self) -> bool {
        !self.catalog.resources().is_empty()
    }

    /// The resources `principal` may see (and read), in manifest order.
    pub fn resources(&self, principal: &Principal) -> Vec<Resource> {
        let resources = self.catalog.resources().resources();
        resources
            .iter()
            .filter(|entry| self.may_read(&entry.plugin, principal))
            .map(|entry| entry.descriptor.clone())
            .collect()
    }

    /// The resource templates `principal` may see (and read), in manifest order.
    pub fn resource_templates(&self, principal: &Principal) -> Vec<ResourceTemplate> {
        let templates = self.catalog.resources().templates();
        templates
            .iter()
            .filter(|entry| self.may_read(&entry.plugin, principal))
            .map(|entry| entry.descriptor.clone())
            .collect()
    }

    fn may_read(&self, plugin: &Plugin, principal: &Principal) -> bool {
        Access::for_plugin(&plugin.config).allows(principal)
    }

    /// Read one resource through the whole pipeline, and record it in the audit log before
    /// returning. An unknown URI, or one the principal may not read, is
    /// [`GateError::UnknownResource`]; everything that goes wrong once it runs is
    /// [`GateError::Failed`].
    pub async fn read_resource(
        &self,
        mut request: ReadRequest<'_>,
    ) -> Result<ReadResourceResult, GateError> {
        // A URI may carry what a detector finds (a template's value): it is recorded redacted.
        let recorded = self.recorded(request.uri);
        let trail = self.method_trail(
            request.principal,
            request.mcp_id.take(),
            &recorded,
            None,
            METHOD,
        );
        let span = tracing::info_span!(
            "read",
            uri = &*bounded(request.uri, MAX_RECORDED_URI),
            principal = &*request.principal.name,
            request = trail.id()
        );
        self.run_read(request, trail).instrument(span).await
    }

    async fn run_read<'a>(
        &'a self,
        request: ReadRequest<'a>,
        mut trail: Trail<'a>,
    ) -> Result<ReadResourceResult, GateError> {
        let ReadRequest {
            principal,
            uri,
            events,
            ..
        } = request;
        let mut _slot = None;
        let answer = async {
            let plugin = find(self.catalog.resources(), uri)?;
            let guard = self.guard(&plugin.config.name).ok_or_else(unknown)?;
            trail.plugin(&plugin.config.name, &guard.filter);
            authorize(&Access::for_plugin(&plugin.config), principal)?;
            self.rate_limit(
                &plugin.config.name,
                principal,
                &resources_key(&plugin.config.name),
            )
            .await?;
            _slot = slot(
                guard.concurrency.as_deref(),
                &plugin.config,
                plugin.config.limits.timeout,
            )
            .await?;
            let events = Arc::new(FilteredEvents::new(
                events,
                guard.filter.clone(),
                &plugin.config.policy,
                Questions::Unable,
            ));
            let ran = self
                .runtime
                .read_resource(plugin, uri, events.clone())
                .in_step(Step::Run)
                .await;
            trail.usage(events.take_usage());
            let mut result = present(plugin, ran, &mut trail)?;
            let mut redactions = step(Step::Filter).in_scope(|| filter(&guard.filter, &mut result));
            events.finish(&mut redactions);
            trail.output_capped(&result, plugin.config.limits.max_output, redactions)?;
            Ok::<_, Stop>(result)
        }
        .await;
        match answer {
            Ok(result) => {
                tracing::debug!("resource read");
                trail.finish_ok(result)
            }
            Err(stop) => Err(stop.record_request(trail, Asked::Resource(uri))),
        }
    }
}

/// The refusal of a URI no plugin serves, or that the principal may not read.
pub(super) fn unknown() -> Stop {
    Stop::unknown_tool(Outcome::Invalid, "unknown resource".to_owned())
}

/// The plugin that serves `uri`.
fn find<'c>(resources: &'c Resources, uri: &str) -> Result<&'c Arc<Plugin>, Stop> {
    resources.plugin_for(uri).ok_or_else(unknown)
}

/// Refuse an answer of `size` bytes over the plugin's `limit`.
pub(super) fn cap(size: u64, limit: u64) -> Result<(), Stop> {
    if size > limit {
        let error = OutputError::TooLarge {
            size: usize::try_from(size).unwrap_or(usize::MAX),
            limit,
        };
        return Err(Stop::tool_error(Outcome::ToolError, error.to_string()));
    }
    Ok(())
}

/// Map the run to the resource's contents, or the stop that says why there are none.
fn present(
    plugin: &Plugin,
    ran: Result<CallOutcome, CallError>,
    trail: &mut Trail<'_>,
) -> Result<ReadResourceResult, Stop> {
    let ran = ran.map_err(|error| Stop::from_run(error, "resource"))?;
    trail.fuel(ran.fuel_used);
    let mismatch = || Stop::mismatch("resource read");
    let read = &plugin
        .description
        .resources
        .as_ref()
        .ok_or_else(mismatch)?
        .read;
    let json = result_json(read, ran.value.as_ref()).ok_or_else(mismatch)?;
    if let Some(error) = json.get("err") {
        return Err(match error.get("tag").and_then(Value::as_str) {
            Some("not_found") => unknown(),
            _ => {
                let message = error
                    .get("value")
                    .and_then(Value::as_str)
                    .unwrap_or("the resource could not be read");
                Stop::tool_error(Outcome::ToolError, message.to_owned())
            }
        });
    }
    let contents = json
        .get("ok")
        .and_then(Value::as_array)
        .ok_or_else(mismatch)?
        .iter()
        .map(contents)
        .collect::<Option<Vec<_>>>()
        .ok_or_else(mismatch)?;
    if contents.is_empty() {
        // An empty list is not a resource: the spec forbids answering a read with none.
        return Err(unknown());
    }
    Ok(ReadResourceResult::new(contents))
}

/// One `embedded-resource` (its JSON form) as MCP resource contents; a blob is already
/// base64.
fn contents(value: &Value) -> Option<ResourceContents> {
    let uri = value.get("uri")?.as_str()?;
    let body = value.get("body")?;
    let payload = body.get("value")?.as_str()?;
    let contents = match body.get("tag")?.as_str()? {
        "text" => ResourceContents::text(payload, uri),
        "blob" => ResourceContents::blob(payload, uri),
        _ => return None,
    };
    Some(match value.get("mime_type").and_then(Value::as_str) {
        Some(mime_type) => contents.with_mime_type(mime_type),
        None => contents,
    })
}

/// Redact every text of `result` with the plugin's filter; blobs are left as they are.
fn filter(filter: &super::OutputFilter, result: &mut ReadResourceResult) -> Redactions {
    let mut redactions = Redactions::new();
    for contents in &mut result.contents {
        if let ResourceContents::TextResourceContents { text, .. } = contents
            && let Some(redacted) = filter.redact_changed(text, &mut redactions)
        {
            *text = redacted;
        }
    }
    redactions
}
