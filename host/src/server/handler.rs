//! The MCP request handler.

#![allow(deprecated)] // MCP logging is deprecated by SEP-2577 but still part of 2025-11-25.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ClientCapabilities,
    CompleteRequestMethod, CompleteRequestParams, CompleteResult, ContentBlock, CreateTaskResult,
    ErrorCode, GetMeta, GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult,
    Implementation, InitializeRequestParams, InitializeResult, InputResponses,
    ListPromptsRequestMethod, ListPromptsResult, ListResourceTemplatesRequestMethod,
    ListResourceTemplatesResult, ListResourcesRequestMethod, ListResourcesResult, ListToolsResult,
    LoggingLevel, Notification, PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams,
    ReadResourceResponse, ResourceUpdatedNotificationParam, ResourcesCapability,
    ServerCapabilities, ServerConfig, ServerNotification, SetLevelRequestParams,
    SubscribeRequestMethod, SubscribeRequestParams, SubscriptionFilter, TASKS_EXTENSION_ID,
    TaskStatusNotificationParams, UnsubscribeRequestMethod, UnsubscribeRequestParams,
    UpdateTaskParams,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData as McpError, Peer, RoleServer, ServerHandler};
use tokio::sync::broadcast::error::RecvError;

use super::events::{McpEvents, from_mcp};
use super::paging::{List, page};
use super::trace::{Subject, request_trace, trace_of};
use crate::gate::{
    Asking, CallRequest, CompleteRequest, Declared, GateError, LiveGate, MAX_SUBSCRIPTIONS,
    Principal, PromptRequest, ReadRequest, Reply, ResourceUpdate, SubscribeRequest,
    SubscriptionMethod, ToolsRevealed,
};
use crate::runtime::LogLevel;
use crate::schema::CompletionRef;
use crate::tasks::{Started, TaskError, Tasks};
use crate::telemetry;

/// What a server tells clients about itself at `initialize`.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    /// `serverInfo.name`.
    pub name: String,
    /// `instructions`.
    pub instructions: String,
    /// `[server] page_size`: the most items one page of a list holds.
    pub page_size: usize,
    /// The server's tasks (`[tasks]`), shared by every session; `None`: no task is served
    /// and tools marked `task` run as plain calls.
    pub tasks: Option<Arc<Tasks>>,
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
    /// reloads (its receivers see the sender gone), and the one that tells it of resource
    /// updates.
    alive: tokio::sync::watch::Sender<()>,
    /// The URIs this session subscribed to (`resources/subscribe`), each with the principal
    /// that subscribed; gone with the session.
    subscriptions: Arc<Mutex<HashMap<String, Principal>>>,
    /// Whether the task that sends this session its resource updates runs.
    forwarding: AtomicBool,
    /// The client, once `initialize` opened the session (stdio's own path serves calls
    /// with it).
    peer: OnceLock<Peer<RoleServer>>,
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
                subscriptions: Arc::default(),
                forwarding: AtomicBool::new(false),
                peer: OnceLock::new(),
            }),
        }
    }

    /// Who `context`'s request runs as: a [`Principal`] the transport attached to the
    /// request (directly, or in the HTTP request's extensions, where the HTTP transport puts
    /// the authenticated one), else the session's.
    fn principal<'a>(&'a self, context: &'a RequestContext<RoleServer>) -> &'a Principal {
        self.principal_in(&context.extensions)
    }

    /// The principal a message's `extensions` carry, else the session's.
    fn principal_in<'a>(&'a self, extensions: &'a rmcp::model::Extensions) -> &'a Principal {
        extensions
            .get::<Principal>()
            .or_else(|| {
                extensions
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

    /// The session's subscriptions.
    fn subscriptions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Principal>> {
        self.session
            .subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Authorize and record a subscription request of `context` for `uri`, then change the
    /// session's subscriptions to match (under one lock, so concurrent requests cannot pass
    /// the bound); method not found when no plugin serves resources.
    fn change_subscription(
        &self,
        context: &RequestContext<RoleServer>,
        uri: &str,
        method: SubscriptionMethod,
    ) -> Result<(), McpError> {
        let gate = self.live.current();
        if !gate.has_resources() {
            return Err(match method {
                SubscriptionMethod::Unsubscribe => {
                    McpError::method_not_found::<UnsubscribeRequestMethod>()
                }
                _ => McpError::method_not_found::<SubscribeRequestMethod>(),
            });
        }
        let principal = self.principal(context);
        let mut subscriptions = self.subscriptions();
        let held = subscriptions.len() - usize::from(subscriptions.contains_key(uri));
        gate.subscribe(SubscribeRequest {
            principal,
            mcp_id: serde_json::to_value(&context.id).ok(),
            uri,
            method,
            held,
        })
        .map_err(protocol_error)?;
        if method == SubscriptionMethod::Unsubscribe {
            subscriptions.remove(uri);
        } else {
            subscriptions.insert(uri.to_owned(), principal.clone());
        }
        Ok(())
    }

    /// From now on, until the session ends, send `peer` a `notifications/resources/updated`
    /// for each update of a URI the session subscribed to, while the principal that
    /// subscribed may still read it. Started once per session.
    fn forward_updates(&self, peer: Peer<RoleServer>) {
        if self.session.forwarding.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut updates = self.live.current().resource_updates();
        let mut session = self.session.alive.subscribe();
        let subscriptions = self.session.subscriptions.clone();
        let live = self.live.clone();
        tokio::spawn(async move {
            loop {
                let update = tokio::select! {
                    _ = session.changed() => break,
                    update = updates.recv() => update,
                };
                let uri = match update {
                    Ok(ResourceUpdate { uri }) => uri,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::info!(missed, "a session missed resource updates");
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                };
                let subscriber = subscriptions
                    .lock()
                    .ok()
                    .and_then(|s| s.get(&*uri).cloned());
                let Some(principal) = subscriber else {
                    continue;
                };
                if !live.current().may_read_uri(&principal, &uri) {
                    continue;
                }
                let param = ResourceUpdatedNotificationParam::new(uri.to_string());
                if peer.notify_resource_updated(param).await.is_err() {
                    break;
                }
            }
            tracing::debug!("session ended: no more resource updates for it");
        });
    }
}

impl WardenServer {
    fn tasks(&self) -> Result<&Arc<Tasks>, McpError> {
        self.info
            .tasks
            .as_ref()
            .ok_or_else(McpError::method_not_found::<rmcp::model::GetTaskMethod>)
    }

    /// The error of a task request refused with `error`; an unknown task id (or another
    /// principal's) is recorded in the audit log as denied.
    fn task_refused(&self, principal: &Principal, method: &str, error: TaskError) -> McpError {
        if let TaskError::Unknown(_) = &error {
            let gate = self.live.current();
            if let Err(audit) = gate.record_refusal(principal, None, method, error.to_string()) {
                tracing::error!(%audit, "a refused task request could not be recorded");
            }
        }
        task_error(error)
    }

    /// Start the call as a task when its tool runs as one and the request declared the tasks
    /// extension; `-32021` for a tool that runs only as a task when it did not. `None`: a
    /// plain call.
    async fn as_task(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<Option<CallToolResponse>, McpError> {
        let Some(tasks) = &self.info.tasks else {
            return Ok(None);
        };
        let gate = self.live.current();
        let principal = self.principal(context);
        let Some((mode, after)) = gate.task_mode(&request.name, principal) else {
            return Ok(None);
        };
        let extension = context
            .client_capabilities()
            .is_some_and(|caps| caps.supports_tasks());
        if !extension {
            if mode == crate::manifest::TaskMode::Optional {
                return Ok(None);
            }
            let why =
                "the tool runs only as a task and the client did not declare the tasks extension";
            if let Err(audit) = gate.record_refusal(principal, None, &request.name, why.to_owned())
            {
                tracing::error!(%audit, "a refused call could not be recorded");
            }
            return Err(McpError::missing_required_client_capability(
                ClientCapabilities::builder().enable_tasks().build(),
            ));
        }
        let mcp_id = serde_json::to_value(&context.id).ok();
        let started = match after {
            // `task_after`: an ordinary call (its questions in input-required rounds) until
            // it has run that long.
            Some(after) => {
                let round = (request.request_state.is_some() || request.input_responses.is_some())
                    .then(|| {
                        (
                            request.request_state.clone(),
                            request.input_responses.clone().unwrap_or_default(),
                        )
                    });
                let started = tasks.start_after(
                    gate.clone(),
                    principal.clone(),
                    mcp_id,
                    request.name.to_string(),
                    request.arguments.clone(),
                    declared(context),
                    round,
                    after,
                );
                match unless_cancelled(context, started).await? {
                    Ok(Started::Task(task)) => Ok(task),
                    Ok(Started::Reply(Ok(Reply::Done(result)))) => {
                        return Ok(Some(result.into()));
                    }
                    Ok(Started::Reply(Ok(Reply::InputRequired(questions)))) => {
                        return Ok(Some(questions.into()));
                    }
                    Ok(Started::Reply(Err(error))) => return Err(protocol_error(error)),
                    Err(error) => Err(error),
                }
            }
            None => {
                tasks
                    .start(
                        gate.clone(),
                        principal.clone(),
                        mcp_id,
                        request.name.to_string(),
                        request.arguments.clone(),
                        declared(context),
                    )
                    .await
            }
        };
        match started {
            Ok(task) => Ok(Some(CallToolResponse::Task(CreateTaskResult::new(task)))),
            // Too many tasks: a tool error the agent can read and act on.
            Err(
                error @ (TaskError::PrincipalFull(_)
                | TaskError::ServerFull(_)
                | TaskError::StoreFull(_)),
            ) => {
                let message = error.to_string();
                if let Err(audit) =
                    gate.record_refusal(principal, None, &request.name, message.clone())
                {
                    tracing::error!(%audit, "a refused call could not be recorded");
                }
                Ok(Some(CallToolResponse::Complete(CallToolResult::error(
                    vec![ContentBlock::text(message)],
                ))))
            }
            Err(error) => Err(task_error(error)),
        }
    }
}

/// The next task whose status changed, with the tasks to ask about it; never, without
/// `changes`. A listener that lagged skips what it missed.
async fn next_task_change(
    changes: &mut Option<(Arc<Tasks>, tokio::sync::broadcast::Receiver<Arc<str>>)>,
) -> Option<(Arc<Tasks>, Arc<str>)> {
    let Some((tasks, receiver)) = changes else {
        return std::future::pending().await;
    };
    match receiver.recv().await {
        Ok(id) => Some((tasks.clone(), id)),
        Err(RecvError::Lagged(missed)) => {
            tracing::info!(missed, "a subscription missed task status changes");
            None
        }
        Err(RecvError::Closed) => std::future::pending().await,
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

/// What `context`'s client declared it can answer: form elicitation (a declaration with
/// neither `form` nor `url` means form), sampling, roots.
fn declared(context: &RequestContext<RoleServer>) -> Declared {
    declared_in(context.client_capabilities())
}

/// What a client that declared `caps` can answer.
fn declared_in(caps: Option<ClientCapabilities>) -> Declared {
    Declared {
        elicitation: caps
            .as_ref()
            .and_then(|caps| caps.elicitation.as_ref())
            .is_some_and(|e| e.form.is_some() || e.url.is_none()),
        sampling: caps.as_ref().is_some_and(|c| c.sampling.is_some()),
        roots: caps.as_ref().is_some_and(|c| c.roots.is_some()),
    }
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
    let declared = declared(context);
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

/// The JSON-RPC error of a task request that cannot be served: an unknown task (or another
/// principal's) is invalid params, as SEP-2663 says.
fn task_error(error: TaskError) -> McpError {
    match error {
        TaskError::Unknown(_) => McpError::invalid_params(error.to_string(), None),
        _ => McpError::internal_error(error.to_string(), None),
    }
}

/// Whether a reveal announcement concerns `principal` (a lagging receiver may have missed
/// one that did: it says yes); `Err` when the channel is gone.
fn revealed_to(
    revealed: Result<ToolsRevealed, RecvError>,
    principal: &Principal,
) -> Result<bool, ()> {
    match revealed {
        Ok(ToolsRevealed { principal: to }) => Ok(*to == *principal.name),
        Err(RecvError::Lagged(missed)) => {
            tracing::info!(missed, "a listener missed tool reveals");
            Ok(true)
        }
        Err(RecvError::Closed) => Err(()),
    }
}

impl WardenServer {
    /// Run `call` on the gate in force when it starts (it serves the call to the end, across
    /// reloads), within `trace`.
    async fn run_call(
        &self,
        call: CallRequest<'_>,
        trace: Option<telemetry::Trace>,
    ) -> Result<CallToolResponse, McpError> {
        let gate = self.live.current();
        // Boxed: the gate's future is large, and rmcp moves the handler's future several times.
        let work = Box::pin(telemetry::within(trace, gate.call(call)));
        match work.await {
            Ok(Reply::Done(result)) => Ok(result.into()),
            Ok(Reply::InputRequired(questions)) => Ok(questions.into()),
            Err(error) => Err(protocol_error(error)),
        }
    }

    /// Whether a call of `tool` by `principal` runs as a task here (SEP-2663). The
    /// transports' own paths leave such a call to rmcp.
    pub(super) fn runs_as_task(&self, tool: &str, principal: &Principal) -> bool {
        self.info.tasks.is_some() && self.live.current().task_mode(tool, principal).is_some()
    }

    /// The session's client, once `initialize` has opened the session.
    pub(super) fn session_peer(&self) -> Option<&Peer<RoleServer>> {
        self.session.peer.get()
    }

    /// The principal of requests that carry none of their own (the local user on stdio).
    pub(super) fn session_principal(&self) -> &Principal {
        &self.principal
    }

    /// Whether a plainly stateless `tools/call` of `tool` ([`super::tool_call::plainly_stateless`])
    /// run as `principal` may be answered by its transport ([`call_direct`](Self::call_direct)):
    /// when the tool does not run as a task here and no `logging/setLevel` asks for its logs.
    pub(super) fn answers_directly(&self, tool: &str, principal: &Principal) -> bool {
        let level = self.session.log_level.lock().ok().and_then(|level| *level);
        level.is_none() && !self.runs_as_task(tool, principal)
    }

    /// A plainly stateless 2026-07-28 `tools/call` answered by its transport itself, without
    /// rmcp's service (HTTP's `direct`, stdio's `Direct`), once
    /// [`answers_directly`](Self::answers_directly) said so: what [`ServerHandler::call_tool`]
    /// does for such a request, which asks for no progress and no logs, so that nothing but
    /// its reply goes to the client. `parts` is its HTTP request, if any.
    pub(super) async fn call_direct(
        &self,
        request: &CallToolRequestParams,
        meta: &rmcp::model::RequestMetaObject,
        id: &rmcp::model::RequestId,
        principal: &Principal,
        parts: Option<&http::request::Parts>,
    ) -> Result<CallToolResponse, McpError> {
        let call = CallRequest {
            principal,
            mcp_id: serde_json::to_value(id).ok(),
            tool: &request.name,
            arguments: request.arguments.as_ref(),
            events: Arc::new(crate::runtime::NoEvents),
            asking: Asking::Rounds {
                state: request.request_state.as_deref(),
                responses: request.input_responses.as_ref(),
                declared: declared_in(meta.client_capabilities()),
            },
        };
        let trace = trace_of("tools/call", Subject::Tool(&request.name), meta, parts);
        self.run_call(call, trace).await
    }
}

impl ServerHandler for WardenServer {
    /// rmcp's own `initialize`, keeping the session's peer: it is known before the answer
    /// leaves, so every request after it can be served with it.
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        context.peer.set_peer_info(request.clone());
        let result = self.negotiate_initialize(&request)?;
        let _ = self.session.peer.set(context.peer);
        Ok(result)
    }

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
        // Declared only when a plugin that serves prompts or resources completes them.
        if self.live.current().has_completions() {
            capabilities.completions = Some(Default::default());
        }
        // Declared only when a plugin offers resources, with subscriptions (plugins say
        // what changed with `resource-updated`).
        if self.live.current().has_resources() {
            let mut resources = ResourcesCapability::default();
            resources.subscribe = Some(true);
            capabilities.resources = Some(resources);
        }
        // The tasks extension (SEP-2663), when some tool runs as a task.
        if self.info.tasks.is_some() && self.live.current().has_tasks() {
            capabilities
                .extensions
                .get_or_insert_with(Default::default)
                .insert(TASKS_EXTENSION_ID.to_owned(), Default::default());
        }
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                &self.info.name,
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(self.info.instructions.clone())
    }

    /// 2026-07-28: `subscriptions/listen` may ask for tool list changes and resource updates
    /// (the first [`MAX_SUBSCRIPTIONS`] URIs requested, whatever they are: the
    /// acknowledgment says nothing of which exist or may be read; rmcp drops them all when
    /// no plugin serves resources), and nothing else (warden declares no `listChanged` for
    /// its prompts and resources).
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let mut accepted = SubscriptionFilter::builder().tools_list_changed().build();
        if let Some(uris) = &requested.resource_subscriptions {
            let mut seen = HashSet::new();
            let uris: Vec<String> = uris
                .iter()
                .filter(|uri| seen.insert(uri.as_str()))
                .take(MAX_SUBSCRIPTIONS)
                .cloned()
                .collect();
            accepted.resource_subscriptions = Some(uris);
        }
        Some(accepted)
    }

    /// 2026-07-28: tell this subscription whenever a reload changes the tools or a plugin
    /// reveals hidden tools to its principal (when its filter asks for tool list changes),
    /// and whenever a plugin says a subscribed resource changed, until the client cancels it
    /// or goes away.
    /// Each URI is authorized and recorded like `resources/subscribe`; one the principal may
    /// not read (or that no plugin serves) is never notified. A principal holds at most
    /// [`MAX_LISTENS_PER_PRINCIPAL`](crate::gate::MAX_LISTENS_PER_PRINCIPAL) streams at once:
    /// rmcp has acknowledged the stream before this runs, so one more ends at once with
    /// invalid params saying so.
    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let request = context.request_context();
        let principal = self.principal(request).clone();
        let _slot = self
            .live
            .current()
            .open_listen(&principal, serde_json::to_value(&request.id).ok())
            .map_err(protocol_error)?;
        let mut changes = self.live.changes();
        changes.mark_unchanged();
        let mut updates = self.live.current().resource_updates();
        let mut reveals = self.live.current().tool_reveals();
        let wants_tools = context.accepted().tools_list_changed == Some(true);
        let mut allowed = HashSet::new();
        if let Some(uris) = &context.accepted().resource_subscriptions {
            let gate = self.live.current();
            for uri in uris {
                let checked = gate.subscribe(SubscribeRequest {
                    principal: &principal,
                    mcp_id: serde_json::to_value(&request.id).ok(),
                    uri,
                    method: SubscriptionMethod::Listen,
                    held: allowed.len(),
                });
                if checked.is_ok() {
                    allowed.insert(uri.clone());
                }
            }
        }
        // SEP-2663: the status changes of the principal's own tasks, for a listen that
        // declared the tasks extension.
        let mut task_changes = self
            .info
            .tasks
            .as_ref()
            .filter(|_| {
                request
                    .client_capabilities()
                    .is_some_and(|caps| caps.supports_tasks())
            })
            .map(|tasks| (tasks.clone(), tasks.changes()));
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                task = next_task_change(&mut task_changes) => {
                    let Some((tasks, id)) = task else { continue };
                    // Another principal's task is unknown here, as to tasks/get.
                    let Ok(task) = tasks.get(&principal, &id).await else { continue };
                    let mut notification = ServerNotification::TaskStatusNotification(
                        Notification::new(TaskStatusNotificationParams::new(task)),
                    );
                    notification.get_meta_mut().set_subscription_id(request.id.clone());
                    if request.peer.send_notification(notification).await.is_err() {
                        return Ok(());
                    }
                }
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    if wants_tools && context.sink().notify_tool_list_changed().await.is_err() {
                        return Ok(());
                    }
                }
                revealed = reveals.recv() => {
                    match revealed_to(revealed, &principal) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(()) => return Ok(()),
                    }
                    if wants_tools && context.sink().notify_tool_list_changed().await.is_err() {
                        return Ok(());
                    }
                }
                update = updates.recv() => {
                    let uri = match update {
                        Ok(ResourceUpdate { uri }) => uri,
                        Err(RecvError::Lagged(missed)) => {
                            tracing::info!(missed, "a subscription missed resource updates");
                            continue;
                        }
                        Err(RecvError::Closed) => return Ok(()),
                    };
                    if !allowed.contains(&*uri) || !self.live.current().may_read_uri(&principal, &uri) {
                        continue;
                    }
                    if context.sink().notify_resource_updated(uri.to_string()).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// 2025-11-25: subscribe this session to `uri`, which the principal must be able to
    /// read (else -32602 with the URI, as a read); at most [`MAX_SUBSCRIPTIONS`] a session.
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.change_subscription(&context, &request.uri, SubscriptionMethod::Subscribe)?;
        self.forward_updates(context.peer.clone());
        Ok(())
    }

    /// 2025-11-25: no more updates of `uri` for this session (a URI it never subscribed to
    /// too).
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.change_subscription(&context, &request.uri, SubscriptionMethod::Unsubscribe)
    }

    /// 2025-11-25: from now on, tell this client whenever a reload changes the tools, or a
    /// plugin reveals hidden tools to the session's principal
    /// (`notifications/tools/list_changed`), until it goes away.
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let mut changes = self.live.changes();
        changes.mark_unchanged();
        let mut reveals = self.live.current().tool_reveals();
        let principal = self.principal_in(&context.extensions).clone();
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
                    revealed = reveals.recv() => {
                        match revealed_to(revealed, &principal) {
                            Ok(false) => continue,
                            Ok(true) => {}
                            Err(()) => break,
                        }
                        if peer.notify_tool_list_changed().await.is_err() {
                            break;
                        }
                    }
                }
            }
            tracing::debug!("session ended: no more tool list notices for it");
        });
    }

    /// The tools this principal may call, a page at a time.
    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let tools = self.live.current().list(self.principal(&context));
        let (items, next) = page(List::Tools, tools, request.as_ref(), self.info.page_size)?;
        let mut result = ListToolsResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if let Some(response) = self.as_task(&request, &context).await? {
            return Ok(response);
        }
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
        let trace = request_trace("tools/call", Subject::Tool(&request.name), &context);
        unless_cancelled(&context, self.run_call(call, trace)).await?
    }

    /// SEP-2663 `tasks/get`. (rmcp answers `-32021` first to a client that did not declare
    /// the extension, and `-32601` when the server does not offer it.)
    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        let tasks = self.tasks()?;
        let principal = self.principal(&context);
        match tasks.get(principal, &request.task_id).await {
            Ok(task) => Ok(GetTaskResult::new(task)),
            Err(error) => Err(self.task_refused(principal, "tasks/get", error)),
        }
    }

    /// SEP-2663 `tasks/update`: the client's answers to a task's questions; the task works
    /// again when they answer what it waits for. An empty acknowledgement either way.
    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let tasks = self.tasks()?;
        let principal = self.principal(&context);
        tasks
            .update(
                principal,
                &request.task_id,
                request.input_responses,
                self.live.current(),
                serde_json::to_value(&context.id).ok(),
            )
            .await
            .map_err(|error| self.task_refused(principal, "tasks/update", error))
    }

    /// SEP-2663 `tasks/cancel`: an empty acknowledgement, also for a task that has ended.
    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let tasks = self.tasks()?;
        let principal = self.principal(&context);
        let waited = tasks
            .cancel(principal, &request.task_id)
            .await
            .map_err(|error| self.task_refused(principal, "tasks/cancel", error))?;
        // A task waiting for input has no running call whose record would say `cancelled`.
        if let Some(tool) = waited {
            let recorded = self.live.current().record_task_cancelled(
                principal,
                serde_json::to_value(&context.id).ok(),
                &tool,
                &request.task_id,
            );
            if let Err(audit) = recorded {
                tracing::error!(%audit, "a cancelled task could not be recorded");
            }
        }
        Ok(())
    }

    /// The prompts this principal may get; method not found when no plugin offers any
    /// (rmcp's default would answer an empty list although no capability is declared).
    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let gate = self.live.current();
        if !gate.has_prompts() {
            return Err(McpError::method_not_found::<ListPromptsRequestMethod>());
        }
        let prompts = gate.prompts(self.principal(&context));
        let (items, next) = page(
            List::Prompts,
            prompts,
            request.as_ref(),
            self.info.page_size,
        )?;
        let mut result = ListPromptsResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
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
        let trace = request_trace("prompts/get", Subject::Prompt(&request.name), &context);
        unless_cancelled(&context, telemetry::within(trace, gate.get_prompt(get)))
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
        let resources = gate.resources(self.principal(&context));
        let (items, next) = page(
            List::Resources,
            resources,
            request.as_ref(),
            self.info.page_size,
        )?;
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
        let (items, next) = page(
            List::Templates,
            templates,
            request.as_ref(),
            self.info.page_size,
        )?;
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
        let trace = request_trace("resources/read", Subject::Unnamed, &context);
        unless_cancelled(&context, telemetry::within(trace, gate.read_resource(read)))
            .await?
            .map(Into::into)
            .map_err(protocol_error)
    }

    /// Suggestions for an argument of a prompt or a variable of a resource template, from the
    /// plugin that serves it; method not found when no plugin completes anything.
    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let gate = self.live.current();
        if !gate.has_completions() {
            return Err(McpError::method_not_found::<CompleteRequestMethod>());
        }
        let (reference, logger) = match &request.r#ref {
            rmcp::model::Reference::Prompt(prompt) => {
                (CompletionRef::Prompt(&prompt.name), &prompt.name)
            }
            rmcp::model::Reference::Resource(template) => (
                CompletionRef::ResourceTemplate(&template.uri),
                &template.uri,
            ),
            _ => return Err(McpError::invalid_params("unknown reference type", None)),
        };
        let events = Arc::new(self.events(&context, logger.clone()));
        let complete = CompleteRequest {
            principal: self.principal(&context),
            mcp_id: serde_json::to_value(&context.id).ok(),
            reference,
            argument: &request.argument,
            context: request.context.as_ref(),
            events,
        };
        let trace = request_trace("completion/complete", Subject::Unnamed, &context);
        unless_cancelled(&context, telemetry::within(trace, gate.complete(complete)))
            .await?
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
