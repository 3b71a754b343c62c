//! What a plugin may tell the world while it runs (log messages, progress, a resource that
//! changed), and ask of it (a form the user fills in: `elicit`; the client's model: `sample`;
//! the client's roots: `roots`).
//!
//! The runtime knows nothing of MCP. A transport passes a [`CallEvents`] with each call and
//! decides where the events go (MCP notifications, the terminal, nowhere) and how a question
//! is put (asked now, carried back to the client in the call's answer, or not at all).
//!
//! Messages arrive as the plugin wrote them: not filtered, not cut (only the number of
//! events has a ceiling). The gate wraps the transport's [`CallEvents`] with one that
//! filters and caps them before they go anywhere.

use std::future::Future;
use std::pin::Pin;

/// Severity of a plugin's log message, as in the `warden:mcp/host.level` WIT enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
}

/// A boxed future, as returned by [`CallEvents`].
pub type EventFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What the user did with a form, as the plugin sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Elicited {
    /// Submitted: the values, a JSON object as text.
    Accept(String),
    /// Refused.
    Decline,
    /// Dismissed.
    Cancel,
}

/// Why a form was not answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElicitFailure {
    /// Nobody can be asked on this call.
    Unsupported,
    /// The form is not one a client can show; the message says why.
    InvalidSchema(String),
    /// No answer in time.
    Timeout,
    /// Another reason, for the plugin: the call's question limit, a failed request.
    Failed(String),
    /// The answer will come with the next request: stop the call now (the runtime ends it
    /// with [`crate::runtime::CallError::InputRequired`]); it runs again from the start then.
    Suspend,
}

/// The future of a question, as returned by [`CallEvents::elicit`].
pub type ElicitFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Elicited, ElicitFailure>> + Send + 'a>>;

/// Who a sampled message speaks as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleRole {
    User,
    Assistant,
}

/// One text message of a conversation handed to the client's model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleMessage {
    pub role: SampleRole,
    pub text: String,
}

/// What a plugin asks the client's model (`sample`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleRequest {
    pub messages: Vec<SampleMessage>,
    pub system_prompt: Option<String>,
    pub max_tokens: u32,
}

/// The client's model's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sampled {
    pub role: SampleRole,
    pub text: String,
    pub model: String,
    pub stop_reason: Option<String>,
}

// Sampling is deprecated by SEP-2577 but still in both eras.
#[allow(deprecated)]
impl From<rmcp::model::CreateMessageResult> for Sampled {
    /// The client's `sampling/createMessage` answer: its text blocks joined by newlines.
    fn from(answer: rmcp::model::CreateMessageResult) -> Self {
        Self {
            role: match answer.message.role {
                rmcp::model::Role::User => SampleRole::User,
                _ => SampleRole::Assistant,
            },
            text: answer
                .message
                .content
                .into_vec()
                .iter()
                .filter_map(|block| block.as_text().map(|t| t.text.as_str()))
                .collect::<Vec<_>>()
                .join("\n"),
            model: answer.model,
            stop_reason: answer.stop_reason,
        }
    }
}

/// One of the client's roots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    pub uri: String,
    pub name: Option<String>,
}

/// Why the client gave no answer to `sample` or `roots`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientFailure {
    /// The plugin is not granted it (`sampling`, `roots`).
    NotGranted,
    /// The client cannot do it on this call.
    Unsupported,
    /// No answer in time.
    Timeout,
    /// Another reason, for the plugin.
    Failed(String),
    /// As [`ElicitFailure::Suspend`]: the answer comes with the next request.
    Suspend,
}

/// The future of a request to the client, as returned by [`CallEvents::sample`] and
/// [`CallEvents::roots`].
pub type ClientFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ClientFailure>> + Send + 'a>>;

/// What one question of [`CallEvents::ask`] asks.
#[derive(Clone, Debug, PartialEq)]
pub enum Ask {
    /// A form: the message, and the form as JSON Schema text.
    Elicit { message: String, schema: String },
    /// The client's model.
    Sample(SampleRequest),
    /// The client's roots.
    Roots,
}

impl Ask {
    /// The MCP method that carries it.
    pub fn method(&self) -> &'static str {
        match self {
            Ask::Elicit { .. } => "elicitation/create",
            Ask::Sample(_) => "sampling/createMessage",
            Ask::Roots => "roots/list",
        }
    }
}

/// One question of [`CallEvents::ask`].
#[derive(Clone, Debug, PartialEq)]
pub struct Question {
    /// The key the plugin chose; `None` for `elicit`, `sample` and `roots`, whose keys the
    /// host chooses.
    pub key: Option<String>,
    pub ask: Ask,
    /// A client that did not declare the capability ends the request, rather than answering
    /// `unsupported`.
    pub required: bool,
}

/// The answer to one question, of the question's kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Elicit(Result<Elicited, ElicitFailure>),
    Sample(Result<Sampled, ClientFailure>),
    Roots(Result<Vec<Root>, ClientFailure>),
}

/// Why [`CallEvents::ask`] asked nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AskFailure {
    /// A key is not one a plugin may use; the message says why.
    InvalidKey(String),
    /// A key names another question of the call already.
    DuplicateKey(String),
    /// As [`ElicitFailure::Suspend`]: stop the call (the answers come with the next
    /// request, or the request ends with an error the events' receiver knows).
    Suspend,
}

/// The future of [`CallEvents::ask`].
pub type AskFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Answer>, AskFailure>> + Send + 'a>>;

/// Receives the events of one call. Implementations must not fail: an event that cannot be
/// delivered is dropped.
pub trait CallEvents: Send + Sync {
    /// The plugin logged `message`.
    fn log(&self, level: LogLevel, message: String) -> EventFuture<'_>;
    /// The plugin reported progress.
    fn progress(&self, done: f64, total: Option<f64>, message: Option<String>) -> EventFuture<'_>;
    /// The plugin asks the user to fill in the form `schema` (JSON Schema text), explaining
    /// it with `message`. The default: nobody can be asked.
    fn elicit(&self, _message: String, _schema: String) -> ElicitFuture<'_> {
        Box::pin(std::future::ready(Err(ElicitFailure::Unsupported)))
    }
    /// The plugin asks the client's model to continue a conversation. The default: nobody
    /// can be asked.
    fn sample(&self, _request: SampleRequest) -> ClientFuture<'_, Sampled> {
        Box::pin(std::future::ready(Err(ClientFailure::Unsupported)))
    }
    /// The plugin asks for the client's roots. The default: nobody can be asked.
    fn roots(&self) -> ClientFuture<'_, Vec<Root>> {
        Box::pin(std::future::ready(Err(ClientFailure::Unsupported)))
    }
    /// The plugin asks several questions at once (`ask`). The default: each in turn through
    /// [`CallEvents::elicit`], [`CallEvents::sample`] and [`CallEvents::roots`].
    fn ask(&self, questions: Vec<Question>) -> AskFuture<'_> {
        Box::pin(async move {
            let mut answers = Vec::with_capacity(questions.len());
            for question in questions {
                answers.push(match question.ask {
                    Ask::Elicit { message, schema } => {
                        Answer::Elicit(self.elicit(message, schema).await)
                    }
                    Ask::Sample(request) => Answer::Sample(self.sample(request).await),
                    Ask::Roots => Answer::Roots(self.roots().await),
                });
            }
            Ok(answers)
        })
    }
    /// The plugin says the resource at `uri` changed (`resource-updated`), unchecked: the
    /// receiver decides whether the plugin serves it. The default: nobody is told.
    fn resource_updated(&self, _uri: String) {}
    /// The plugin asks to reveal (`reveal`) or hide again some of its hidden tools
    /// (`reveal-tools`, `hide-tools`), unchecked: the receiver decides which it may. The
    /// default: nothing changes.
    fn change_toolset(&self, _reveal: bool, _names: Vec<String>) {}
    /// The plugin's hidden tools revealed to the caller when the call started, as WIT
    /// function names (`revealed-tools`). The default: none.
    fn revealed_tools(&self) -> Vec<String> {
        Vec::new()
    }
    /// The call is over, however it ended; this is what it did with each capability
    /// ([`crate::capabilities::usage`]), when it did anything.
    fn usage(&self, _usage: serde_json::Map<String, serde_json::Value>) {}
}

/// Discards every event.
pub struct NoEvents;

impl CallEvents for NoEvents {
    fn log(&self, _: LogLevel, _: String) -> EventFuture<'_> {
        Box::pin(std::future::ready(()))
    }
    fn progress(&self, _: f64, _: Option<f64>, _: Option<String>) -> EventFuture<'_> {
        Box::pin(std::future::ready(()))
    }
}
