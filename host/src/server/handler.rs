//! The MCP request handler.

#![allow(deprecated)] // MCP logging is deprecated by SEP-2577 but still part of 2025-11-25.

use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ErrorCode, GetPromptRequestParams, GetPromptResponse,
    Implementation, InputResponses, ListPromptsRequestMethod, ListPromptsResult,
    ListResourceTemplatesRequestMethod, ListResourceTemplatesResult, ListResourcesRequestMethod,
    ListResourcesResult, ListToolsResult, LoggingLevel, PaginatedRequestParams, ProtocolVersion,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
    SetLevelRequestParams, SubscriptionFilter,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use super::events::{McpEvents, from_mcp};
use crate::gate::{
    Asking, CallRequest, Declared, GateError, LiveGate, Principal, PromptRequest, ReadRequest,
    Reply,
};
use crate::runtime::LogLevel;

/// What a server tells clients about itself at `initialize`.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    /// `serverInfo.name`.
    pub name: String,
    /// `instructions`.
    pub instructions: String,
}

/// One MCP session's handler. Cheap to clone: the gate is shared.
#[derive(Clone)]
pub struct WardenServer {
    live: Arc<LiveGate>,
    info: Arc<ServerInfo>,
    /// Who this session's requests run as, unless a request carries its own [`Principal`]
    /// in its extensions (put there by an authenticating transport).
    principal: Principal,
    /// What this session holds: one allocation per handler.
    session: Arc<Session>,
}

/// A session's own state, shared by the clones of its handler.
struct Session {
    /// The level set by `logging/setLevel` (legacy sessions).
    log_level: Mutex<Option<LoggingLevel>>,
    /// Dropped with the session's last handler: ends the task that tells the session of
    /// reloads (its receivers see the sender gone).
    alive: tokio::sync::watch::Sender<()>,
}

impl WardenServer {
    /// A handler serving the tools of the gate in force in `live`, presenting itself as
    /// `info`, to `principal`.
    pub fn new(live: Arc<LiveGate>, info: Arc<ServerInfo>, principal: Principal) -> Self {
        Self {
            live,
            info,
            principal,
            session: Arc::new(Session {
                log_level: Mutex::default(),
                alive: tokio::sync::watch::Sender::new(()),
            }),
        }
    }

    /// Who `context`'s request runs as: a [`Principal`] the transport attached to the
    /// request (directly, or in the HTTP request's extensions, where the HTTP transport puts
    /// the authenticated one), else the session's.
    fn principal<'a>(&'a self, context: &'a RequestContext<RoleServer>) -> &'a Principal {
        context
            .extensions
            .get::<Principal>()
            .or_else(|| {
                context
                    .extensions
                    .get::<http::request::Parts>()
                    .and_then(|parts| parts.extensions.get::<Principal>())
            })
            .unwrap_or(&self.principal)
    }

    /// The lowest plugin log level the client wants for this request: the request's own
    /// `_meta` level (2026-07-28), else the session's `logging/setLevel`, else `info` for
    /// legacy sessions and nothing for stateless ones.
    fn min_level(&self, context: &RequestContext<RoleServer>) -> Option<LogLevel> {
        if let Some(level) = context.meta.log_level() {
            return from_mcp(level);
        }
        if let Some(level) = self.session.log_level.lock().ok().and_then(|l| *l) {
            return from_mcp(level);
        }
        (!stateless(context)).then_some(LogLevel::Info)
    }

    /// Where what a plugin says while serving `context`'s request about `name` goes: its
    /// logs and progress, to this request's client.
    fn events(&self, context: &RequestContext<RoleServer>, name: String) -> McpEvents {
        McpEvents::new(
            context.peer.clone(),
            context.meta.get_progress_token(),
            self.min_level(context),
            name,
        )
    }
}

/// `work`'s outcome, unless the client cancels the request first. `notifications/cancelled`
/// cancels the request's token: dropping the gate's future drops the plugin's store (the guest
/// stops at once) and the audit record says `cancelled`. rmcp sends no response for a
/// cancelled request.
async fn unless_cancelled<T>(
    context: &RequestContext<RoleServer>,
    work: impl std::future::Future<Output = T>,
) -> Result<T, McpError> {
    tokio::select! {
        biased;
        () = context.ct.cancelled() => {
            Err(McpError::invalid_request("the request was cancelled", None))
        }
        outcome = work => Ok(outcome),
    }
}

/// Whether `context`'s request is of the stateless 2026-07-28 era.
fn stateless(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// Whether a plugin's `sample` and `roots` may be sent to `context`'s client: in a session,
/// when it declared `sampling` and `roots`. (Stateless requests: not yet.)
fn client_requests(context: &RequestContext<RoleServer>) -> (bool, bool) {
    if stateless(context) {
        return (false, false);
    }
    let caps = context.client_capabilities();
    let caps = caps.as_ref();
    (
        caps.is_some_and(|c| c.sampling.is_some()),
        caps.is_some_and(|c| c.roots.is_some()),
    )
}

/// How the gate can ask `context`'s client: a session asks during the call, when its client
/// declared form elicitation (a declaration with neither `form` nor `url` means form); a
/// stateless request asks in its reply, only what the request's own `_meta` declares it can
/// answer (form elicitation, sampling, roots), carrying `state` and `responses` back.
fn asking<'a>(
    context: &RequestContext<RoleServer>,
    state: Option<&'a str>,
    responses: Option<&'a InputResponses>,
) -> Asking<'a> {
    let caps = context.client_capabilities();
    let declared = Declared {
        elicitation: caps
            .as_ref()
            .and_then(|caps| caps.elicitation.as_ref())
            .is_some_and(|e| e.form.is_some() || e.url.is_none()),
        sampling: caps.as_ref().is_some_and(|c| c.sampling.is_some()),
        roots: caps.as_ref().is_some_and(|c| c.roots.is_some()),
    };
    match (declared.elicitation, stateless(context)) {
        (_, true) => Asking::Rounds {
            state,
            responses,
            declared,
        },
        (false, false) => Asking::Unable,
        (true, false) => Asking::Live,
    }
}

/// The JSON-RPC error of a request the gate refused or could not complete: the client's
/// mistakes (an unknown name, bad arguments) are invalid params, the rest internal errors.
fn protocol_error(error: GateError) -> McpError {
    match error {
        GateError::UnknownTool { .. }
        | GateError::UnknownPrompt { .. }
        | GateError::InvalidParams { .. } => McpError::invalid_params(error.to_string(), None),
        // SEP-2164: an unknown resource is invalid params naming the URI.
        GateError::UnknownResource { ref uri, .. } => {
            let data = serde_json::json!({ "uri": uri });
            McpError::invalid_params(error.to_string(), Some(data))
        }
        GateError::MissingCapability {
            ref capabilities, ..
        } => {
            let mut required = serde_json::Map::new();
            for capability in capabilities {
                required.insert((*capability).to_owned(), serde_json::json!({}));
            }
            let data = serde_json::json!({ "requiredCapabilities": required });
            McpError::new(
                ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
                error.to_string(),
                Some(data),
            )
        }
        GateError::Failed { .. } | GateError::Audit { .. } => {
            McpError::internal_error(error.to_string(), None)
        }
    }
}

/// The most resources (or templates) one page of `resources/list` holds.
pub const RESOURCE_PAGE: usize = 100;

/// The page of `items` that `request`'s cursor points at, and the cursor of the next page.
/// A cursor is the offset of its page's first item; one that is not is invalid params.
fn page<T>(
    items: Vec<T>,
    request: Option<&PaginatedRequestParams>,
) -> Result<(Vec<T>, Option<String>), McpError> {
    let start = match request.and_then(|r| r.cursor.as_deref()) {
        None => 0,
        Some(cursor) => cursor
            .parse::<usize>()
            .ok()
            .filter(|&start| start <= items.len())
            .ok_or_else(|| McpError::invalid_params("invalid cursor", None))?,
    };
    let end = items.len().min(start.saturating_add(RESOURCE_PAGE));
    let next = (end < items.len()).then(|| end.to_string());
    Ok((
        items.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

impl ServerHandler for WardenServer {
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_logging()
            .build();
        // Declared only when a plugin offers prompts.
        if self.live.current().has_prompts() {
            capabilities.prompts = Some(Default::default());
        }
        // Declared only when a plugin offers resources; no subscriptions (yet).
        if self.live.current().has_resources() {
            capabilities.resources = Some(Default::default());
        }
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                &self.info.name,
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(self.info.instructions.clone())
    }

    /// 2026-07-28: `subscriptions/listen` may ask for tool list changes, and nothing else
    /// (warden declares no `listChanged` for its prompts and resources, and no resource
    /// subscriptions).
    fn accepted_subscription_filter(
        &self,
        _requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(SubscriptionFilter::builder().tools_list_changed().build())
    }

    /// 2026-07-28: tell this subscription whenever a reload changes the tools, until the
    /// client cancels it or goes away.
    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let mut changes = self.live.changes();
        changes.mark_unchanged();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                changed = changes.changed() => {
                    if changed.is_err() || context.sink().notify_tool_list_changed().await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// 2025-11-25: from now on, tell this client whenever a reload changes the tools
    /// (`notifications/tools/list_changed`), until it goes away.
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let mut changes = self.live.changes();
        changes.mark_unchanged();
        let mut session = self.session.alive.subscribe();
        let peer = context.peer;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    // The session ended: its handler, and this sender, are gone.
                    _ = session.changed() => break,
                    changed = changes.changed() => {
                        if changed.is_err() || peer.notify_tool_list_changed().await.is_err() {
                            break;
                        }
                    }
                }
            }
            tracing::debug!("session ended: no more tool list notices for it");
        });
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(
            self.live.current().list(self.principal(&context)),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let (sampling, roots) = client_requests(&context);
        let events = Arc::new(
            self.events(&context, request.name.to_string())
                .asking_client(sampling, roots),
        );
        let call = CallRequest {
            principal: self.principal(&context),
            mcp_id: serde_json::to_value(&context.id).ok(),
            tool: &request.name,
            arguments: request.arguments.as_ref(),
            events,
            asking: asking(
                &context,
                request.request_state.as_deref(),
                request.input_responses.as_ref(),
            ),
        };
        // The gate in force when the call starts serves it to the end, across reloads.
        let gate = self.live.current();
        match unless_cancelled(&context, gate.call(call)).await? {
            Ok(Reply::Done(result)) => Ok(result.into()),
            Ok(Reply::InputRequired(questions)) => Ok(questions.into()),
            Err(error) => Err(protocol_error(error)),
        }
    }

    /// The prompts this principal may get; method not found when no plugin offers any
    /// (rmcp's default would answer an empty list although no capability is declared).
    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let gate = self.live.current();
        if !gate.has_prompts() {
            return Err(McpError::method_not_found::<ListPromptsRequestMethod>());
        }
        Ok(ListPromptsResult::with_all_items(
            gate.prompts(self.principal(&context)),
        ))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let (sampling, roots) = client_requests(&context);
        let events = Arc::new(
            self.events(&context, request.name.clone())
                .asking_client(sampling, roots),
        );
        let get = PromptRequest {
            principal: self.principal(&context),
            mcp_id: serde_json::to_value(&context.id).ok(),
            name: &request.name,
            arguments: request.arguments.as_ref(),
            events,
            asking: asking(
                &context,
                request.request_state.as_deref(),
                request.input_responses.as_ref(),
            ),
        };
        let gate = self.live.current();
        unless_cancelled(&context, gate.get_prompt(get))
            .await?
            .map_err(protocol_error)
    }

    /// The resources this principal may read, a page at a time; method not found when no
    /// plugin offers any (rmcp's default would answer an empty list although no capability
    /// is declared).
    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let gate = self.live.current();
        if !gate.has_resources() {
            return Err(McpError::method_not_found::<ListResourcesRequestMethod>());
        }
        let (items, next) = page(gate.resources(self.principal(&context)), request.as_ref())?;
        let mut result = ListResourcesResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    /// The resource templates this principal may read, a page at a time.
    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let gate = self.live.current();
        if !gate.has_resources() {
            return Err(McpError::method_not_found::<
                ListResourceTemplatesRequestMethod,
            >());
        }
        let templates = gate.resource_templates(self.principal(&context));
        let (items, next) = page(templates, request.as_ref())?;
        let mut result = ListResourceTemplatesResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let events = Arc::new(self.events(&context, request.uri.clone()));
        let read = ReadRequest {
            principal: self.principal(&context),
            mcp_id: serde_json::to_value(&context.id).ok(),
            uri: &request.uri,
            events,
        };
        let gate = self.live.current();
        unless_cancelled(&context, gate.read_resource(read))
            .await?
            .map(Into::into)
            .map_err(protocol_error)
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if let Ok(mut level) = self.session.log_level.lock() {
            *level = Some(request.level);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(cursor: Option<&str>) -> PaginatedRequestParams {
        let mut params = PaginatedRequestParams::default();
        params.cursor = cursor.map(str::to_owned);
        params
    }

    #[test]
    fn pages_follow_their_cursors_to_the_end() {
        let items: Vec<usize> = (0..RESOURCE_PAGE * 2 + 5).collect();
        let (first, next) = page(items.clone(), None).expect("first page");
        assert_eq!((first.len(), next.as_deref()), (RESOURCE_PAGE, Some("100")));
        let (second, next) = page(items.clone(), Some(&cursor(next.as_deref()))).expect("second");
        assert_eq!((second[0], next.as_deref()), (RESOURCE_PAGE, Some("200")));
        let (last, next) = page(items, Some(&cursor(next.as_deref()))).expect("last");
        assert_eq!((last.len(), next), (5, None));
    }

    #[test]
    fn a_cursor_that_is_not_an_offset_in_the_list_is_invalid_params() {
        for bad in ["x", "-1", "6"] {
            let error = page(vec![1, 2, 3, 4, 5], Some(&cursor(Some(bad)))).expect_err(bad);
            assert_eq!(error.code, rmcp::model::ErrorCode::INVALID_PARAMS, "{bad}");
        }
    }
}
