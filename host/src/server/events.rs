//! Plugin events as MCP notifications: `notifications/progress` (when the request carried a
//! progress token) and `notifications/message` (at or above the client's log level); and
//! questions as `elicitation/create` requests to a 2025-11-25 client (the gate decides whether
//! to ask this way, and how long to wait); and a plugin's `sample` and `roots` as
//! `sampling/createMessage` and `roots/list` requests to a 2025-11-25 client that declared
//! the capability.

#![allow(deprecated)] // MCP logging is deprecated by SEP-2577 but still part of 2025-11-25.

use rmcp::model::{
    CreateMessageRequestParams, ElicitRequestParams, ElicitationAction, ElicitationSchema,
    LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken, Role,
    SamplingMessage,
};
use rmcp::{Peer, RoleServer};

use crate::runtime::{
    CallEvents, ClientFailure, ClientFuture, ElicitFailure, ElicitFuture, Elicited, EventFuture,
    LogLevel, Root, SampleRequest, SampleRole, Sampled,
};

/// Forwards one call's events to the MCP client that made it.
pub struct McpEvents {
    peer: Peer<RoleServer>,
    progress_token: Option<ProgressToken>,
    min_level: Option<LogLevel>,
    logger: String,
    /// Whether `sampling/createMessage` may be sent: a 2025-11-25 session whose client
    /// declared sampling.
    sampling: bool,
    /// Whether `roots/list` may be sent: a 2025-11-25 session whose client declared roots.
    roots: bool,
}

impl McpEvents {
    /// Events for a call on `peer`; progress only with a token, logs only at or above
    /// `min_level` (none when `None`).
    pub fn new(
        peer: Peer<RoleServer>,
        progress_token: Option<ProgressToken>,
        min_level: Option<LogLevel>,
        logger: String,
    ) -> Self {
        Self {
            peer,
            progress_token,
            min_level,
            logger,
            sampling: false,
            roots: false,
        }
    }

    /// The same, also sending the plugin's `sample` and `roots` requests to the client, each
    /// when `true` (the client declared the capability in a session).
    pub fn asking_client(mut self, sampling: bool, roots: bool) -> Self {
        self.sampling = sampling;
        self.roots = roots;
        self
    }
}

impl CallEvents for McpEvents {
    fn log(&self, level: LogLevel, message: String) -> EventFuture<'_> {
        Box::pin(async move {
            if self.min_level.is_none_or(|min| level < min) {
                return;
            }
            let param = LoggingMessageNotificationParam::new(to_mcp(level), message.into())
                .with_logger(self.logger.clone());
            if let Err(error) = self.peer.notify_logging_message(param).await {
                tracing::debug!(%error, "log notification not delivered");
            }
        })
    }

    fn progress(&self, done: f64, total: Option<f64>, message: Option<String>) -> EventFuture<'_> {
        Box::pin(async move {
            let Some(token) = self.progress_token.clone() else {
                return;
            };
            let mut param = ProgressNotificationParam::new(token, done);
            param.total = total;
            param.message = message;
            if let Err(error) = self.peer.notify_progress(param).await {
                tracing::debug!(%error, "progress notification not delivered");
            }
        })
    }

    fn elicit(&self, message: String, schema: String) -> ElicitFuture<'_> {
        Box::pin(async move {
            let requested_schema: ElicitationSchema = serde_json::from_str(&schema)
                .map_err(|e| ElicitFailure::InvalidSchema(e.to_string()))?;
            let params = ElicitRequestParams::FormElicitationParams {
                meta: None,
                message,
                requested_schema,
            };
            match self.peer.create_elicitation(params).await {
                Ok(answer) => Ok(match answer.action {
                    ElicitationAction::Accept => Elicited::Accept(
                        answer
                            .content
                            .filter(serde_json::Value::is_object)
                            .map_or_else(|| "{}".to_owned(), |c| c.to_string()),
                    ),
                    ElicitationAction::Decline => Elicited::Decline,
                    // `cancel`, and whatever a later revision adds: not a yes.
                    _ => Elicited::Cancel,
                }),
                Err(error) => {
                    tracing::info!(%error, "elicitation request failed");
                    Err(ElicitFailure::Failed(
                        "the client did not answer the question".to_owned(),
                    ))
                }
            }
        })
    }

    fn sample(&self, request: SampleRequest) -> ClientFuture<'_, Sampled> {
        Box::pin(async move {
            if !self.sampling {
                return Err(ClientFailure::Unsupported);
            }
            let messages = request
                .messages
                .into_iter()
                .map(|m| SamplingMessage::new(to_mcp_role(m.role), m.text))
                .collect();
            let mut params = CreateMessageRequestParams::new(messages, request.max_tokens);
            params.system_prompt = request.system_prompt;
            let answer = self
                .peer
                .create_message(params)
                .await
                .map_err(|e| client_failed("sampling", &e))?;
            Ok(Sampled::from(answer))
        })
    }

    fn roots(&self) -> ClientFuture<'_, Vec<Root>> {
        Box::pin(async move {
            if !self.roots {
                return Err(ClientFailure::Unsupported);
            }
            let listed = self
                .peer
                .list_roots()
                .await
                .map_err(|e| client_failed("roots", &e))?;
            Ok(listed
                .roots
                .into_iter()
                .map(|r| Root {
                    uri: r.uri,
                    name: r.name,
                })
                .collect())
        })
    }
}

/// A failed request to the client, as the plugin sees it (the error goes to warden's log).
fn client_failed(what: &str, error: &rmcp::service::ServiceError) -> ClientFailure {
    tracing::info!(%error, "{what} request failed");
    ClientFailure::Failed(format!("the client did not answer the {what} request"))
}

/// The MCP role of a sampled message's role.
fn to_mcp_role(role: SampleRole) -> Role {
    match role {
        SampleRole::User => Role::User,
        SampleRole::Assistant => Role::Assistant,
    }
}

/// The MCP level of a plugin's log level.
fn to_mcp(level: LogLevel) -> LoggingLevel {
    match level {
        LogLevel::Debug => LoggingLevel::Debug,
        LogLevel::Info => LoggingLevel::Info,
        LogLevel::Notice => LoggingLevel::Notice,
        LogLevel::Warning => LoggingLevel::Warning,
        LogLevel::Error => LoggingLevel::Error,
    }
}

/// The plugin log level matching a client-requested MCP level (MCP has more levels above
/// `error`; asking for those silences plugin logs).
pub fn from_mcp(level: LoggingLevel) -> Option<LogLevel> {
    match level {
        LoggingLevel::Debug => Some(LogLevel::Debug),
        LoggingLevel::Info => Some(LogLevel::Info),
        LoggingLevel::Notice => Some(LogLevel::Notice),
        LoggingLevel::Warning => Some(LogLevel::Warning),
        LoggingLevel::Error => Some(LogLevel::Error),
        LoggingLevel::Critical | LoggingLevel::Alert | LoggingLevel::Emergency => None,
    }
}
