//! The `warden:mcp/host` imports every plugin may use, and the per-call store state.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::call::{Paused, Suspended};
use super::events::{
    Answer, Ask, AskFailure, CallEvents, ClientFailure, ElicitFailure, Elicited, LogLevel,
    Question, SampleMessage, SampleRequest, SampleRole, Sampled,
};
use super::limits::CallLimiter;
use crate::capabilities::{self, CallContext, CallParts, CallView, SecretScrubber, Slots};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "warden:mcp/tool",
        imports: {
            default: async,
            // Trappable: a question whose answer comes with the next request stops the call.
            "warden:mcp/host.elicit": async | trappable,
            "warden:mcp/host.sample": async | trappable,
            "warden:mcp/host.roots": async | trappable,
            "warden:mcp/host.ask": async | trappable,
        },
    });
}

pub(crate) use bindings::Tool as ToolWorld;
use bindings::warden::mcp::host::{
    self as wit, AskError, ClientError, ElicitAnswer, ElicitError, Host, Level, QuestionKind, Root,
    SampleAnswer,
};

/// How many log and progress events one call may send, whatever its [`CallEvents`] does with
/// them; the rest are dropped. A ceiling: the gate caps the events it passes on lower (per
/// plugin, `max_events`), and filters and cuts their messages.
const EVENT_BUDGET: u32 = 10_000;
/// The longest plugin log message written to warden's own log, in bytes.
const MAX_LOGGED: usize = 8 * 1024;
/// The longest URI a plugin may say changed (`resource-updated`), in bytes.
const MAX_NOTICE_URI: usize = 8 * 1024;

/// The longest function name `reveal-tools` and `hide-tools` take (longer ones are
/// ignored), in bytes.
const MAX_FUNCTION_NAME: usize = 256;

/// The most names one `reveal-tools` or `hide-tools` takes; the rest are ignored.
const MAX_REVEALS: usize = 100;

/// Everything a call's [`wasmtime::Store`] holds. Built fresh for every call; nothing
/// survives it.
pub struct CallState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: CallLimiter,
    /// wasmtime-wasi-http's state for `wasi:http`.
    http: WasiHttpCtx,
    /// Each capability's own state for the call.
    pub(crate) slots: Slots,
    /// Hides the plugin's secret values in its log messages as warden logs them.
    scrubber: SecretScrubber,
    events: Arc<dyn CallEvents>,
    plugin: Arc<str>,
    event_budget: u32,
    /// The time the call spent waiting for a human's answer, which its time limit excludes.
    pub(crate) paused: Arc<Paused>,
    /// Whether the plugin may ask the client's model (`sampling = true`).
    pub(crate) sampling: bool,
    /// Whether the plugin may read the client's roots (`roots = true`).
    pub(crate) roots: bool,
}

impl CallState {
    pub(crate) fn new(
        context: CallContext,
        scrubber: SecretScrubber,
        limiter: CallLimiter,
        events: Arc<dyn CallEvents>,
        plugin: Arc<str>,
    ) -> Self {
        Self {
            wasi: context.wasi,
            table: ResourceTable::new(),
            limiter,
            http: context.http,
            slots: context.slots,
            scrubber,
            events,
            plugin,
            event_budget: EVENT_BUDGET,
            paused: Arc::default(),
            sampling: false,
            roots: false,
        }
    }

    /// `reveal-tools` (`reveal`) or `hide-tools`: the whole list counts as one event; a
    /// name longer than any WIT name is no name.
    fn change_toolset(&mut self, reveal: bool, names: Vec<String>) {
        if !self.spend_event() {
            return;
        }
        let names = names
            .into_iter()
            .filter(|name| name.len() <= MAX_FUNCTION_NAME)
            .take(MAX_REVEALS)
            .collect();
        self.events.change_toolset(reveal, names);
    }

    fn spend_event(&mut self) -> bool {
        if self.event_budget == 0 {
            return false;
        }
        self.event_budget -= 1;
        true
    }
}

impl CallView for CallState {
    fn parts(&mut self) -> CallParts<'_> {
        CallParts {
            wasi: &mut self.wasi,
            table: &mut self.table,
            slots: &mut self.slots,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: capabilities::net::http_hooks(&mut self.slots),
        }
    }
}

impl Host for CallState {
    async fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Notice => LogLevel::Notice,
            Level::Warning => LogLevel::Warning,
            Level::Error => LogLevel::Error,
        };
        if !self.spend_event() {
            return;
        }
        // Scrubbed before it is cut, so no part of a secret survives the cut.
        let window = &message[..floor_char_boundary(&message, MAX_LOGGED * 2)];
        let logged = truncate(self.scrubber.scrub(window).into_owned(), MAX_LOGGED);
        tracing::debug!(target: "warden::plugin", plugin = &*self.plugin, ?level, "{logged}");
        // Whole: the events' receiver (the gate) filters it before cutting it.
        self.events.log(level, message).await;
    }

    async fn progress(&mut self, done: f64, total: Option<f64>, message: Option<String>) {
        if !done.is_finite() || total.is_some_and(|t| !t.is_finite()) || !self.spend_event() {
            return;
        }
        self.events.progress(done, total, message).await;
    }

    async fn elicit(
        &mut self,
        message: String,
        requested_schema: String,
    ) -> wasmtime::Result<Result<ElicitAnswer, ElicitError>> {
        let answer = {
            let _waiting = self.paused.start();
            self.events.elicit(message, requested_schema).await
        };
        elicit_answer(answer)
    }

    async fn sample(
        &mut self,
        request: wit::SampleRequest,
    ) -> wasmtime::Result<Result<SampleAnswer, ClientError>> {
        if !self.sampling {
            return Ok(Err(ClientError::NotGranted));
        }
        let answer = {
            let _waiting = self.paused.start();
            self.events.sample(sample_request(request)).await
        };
        sample_answer(answer)
    }

    async fn roots(&mut self) -> wasmtime::Result<Result<Vec<Root>, ClientError>> {
        if !self.roots {
            return Ok(Err(ClientError::NotGranted));
        }
        let answer = {
            let _waiting = self.paused.start();
            self.events.roots().await
        };
        roots_answer(answer)
    }

    async fn ask(
        &mut self,
        questions: Vec<wit::Question>,
    ) -> wasmtime::Result<Result<Vec<wit::Answer>, AskError>> {
        // Questions the plugin is not granted are answered here; the others go out together.
        let mut answers: Vec<Option<wit::Answer>> = Vec::with_capacity(questions.len());
        let mut asked = Vec::new();
        for question in questions {
            let ask = match question.kind {
                QuestionKind::Sample(_) if !self.sampling => {
                    answers.push(Some(wit::Answer::Sample(Err(ClientError::NotGranted))));
                    continue;
                }
                QuestionKind::Roots if !self.roots => {
                    answers.push(Some(wit::Answer::Roots(Err(ClientError::NotGranted))));
                    continue;
                }
                QuestionKind::Elicit(form) => Ask::Elicit {
                    message: form.message,
                    schema: form.requested_schema,
                },
                QuestionKind::Sample(request) => Ask::Sample(sample_request(request)),
                QuestionKind::Roots => Ask::Roots,
            };
            answers.push(None);
            asked.push(Question {
                key: Some(question.key),
                ask,
                required: question.required,
            });
        }
        let given = if asked.is_empty() {
            Vec::new()
        } else {
            let _waiting = self.paused.start();
            match self.events.ask(asked).await {
                Ok(given) => given,
                Err(AskFailure::InvalidKey(why)) => return Ok(Err(AskError::InvalidKey(why))),
                Err(AskFailure::DuplicateKey(key)) => return Ok(Err(AskError::DuplicateKey(key))),
                Err(AskFailure::Suspend) => return Err(wasmtime::Error::new(Suspended)),
            }
        };
        let mut given = given.into_iter();
        let mut out = Vec::with_capacity(answers.len());
        for answer in answers {
            out.push(match answer {
                Some(answer) => answer,
                None => match given.next() {
                    Some(Answer::Elicit(a)) => wit::Answer::Elicit(elicit_answer(a)?),
                    Some(Answer::Sample(a)) => wit::Answer::Sample(sample_answer(a)?),
                    Some(Answer::Roots(a)) => wit::Answer::Roots(roots_answer(a)?),
                    // The events' receiver answers every question it is given.
                    None => wasmtime::bail!("a question of `ask` got no answer"),
                },
            });
        }
        Ok(Ok(out))
    }

    async fn resource_updated(&mut self, uri: String) {
        // A URI longer than any a plugin serves is no notice; each one counts as an event.
        if uri.len() > MAX_NOTICE_URI || !self.spend_event() {
            return;
        }
        self.events.resource_updated(uri);
    }

    async fn reveal_tools(&mut self, names: Vec<String>) {
        self.change_toolset(true, names);
    }

    async fn hide_tools(&mut self, names: Vec<String>) {
        self.change_toolset(false, names);
    }

    async fn revealed_tools(&mut self) -> Vec<String> {
        self.events.revealed_tools()
    }
}

/// A form's answer as the plugin sees it, or the call's suspension.
fn elicit_answer(
    answer: Result<Elicited, ElicitFailure>,
) -> wasmtime::Result<Result<ElicitAnswer, ElicitError>> {
    Ok(match answer {
        Ok(Elicited::Accept(content)) => Ok(ElicitAnswer::Accept(content)),
        Ok(Elicited::Decline) => Ok(ElicitAnswer::Decline),
        Ok(Elicited::Cancel) => Ok(ElicitAnswer::Cancel),
        Err(ElicitFailure::Unsupported) => Err(ElicitError::Unsupported),
        Err(ElicitFailure::InvalidSchema(why)) => Err(ElicitError::InvalidSchema(why)),
        Err(ElicitFailure::Timeout) => Err(ElicitError::Timeout),
        Err(ElicitFailure::Failed(why)) => Err(ElicitError::Failed(why)),
        Err(ElicitFailure::Suspend) => return Err(wasmtime::Error::new(Suspended)),
    })
}

/// The WIT request as the runtime's.
fn sample_request(request: wit::SampleRequest) -> SampleRequest {
    SampleRequest {
        messages: request
            .messages
            .into_iter()
            .map(|m| SampleMessage {
                role: role(m.role),
                text: m.text,
            })
            .collect(),
        system_prompt: request.system_prompt,
        max_tokens: request.max_tokens,
    }
}

/// The model's answer as the plugin sees it, or the call's suspension.
fn sample_answer(
    answer: Result<Sampled, ClientFailure>,
) -> wasmtime::Result<Result<SampleAnswer, ClientError>> {
    match answer {
        Ok(sampled) => Ok(Ok(SampleAnswer {
            role: match sampled.role {
                SampleRole::User => wit::SampleRole::User,
                SampleRole::Assistant => wit::SampleRole::Assistant,
            },
            text: sampled.text,
            model: sampled.model,
            stop_reason: sampled.stop_reason,
        })),
        Err(failure) => CallState::client_error(failure).map(Err),
    }
}

/// The client's roots as the plugin sees them, or the call's suspension.
fn roots_answer(
    answer: Result<Vec<super::events::Root>, ClientFailure>,
) -> wasmtime::Result<Result<Vec<Root>, ClientError>> {
    match answer {
        Ok(roots) => Ok(Ok(roots
            .into_iter()
            .map(|r| Root {
                uri: r.uri,
                name: r.name,
            })
            .collect())),
        Err(failure) => CallState::client_error(failure).map(Err),
    }
}

impl CallState {
    /// Where the client's answer is not one: the plugin's error, or the call's suspension.
    fn client_error(failure: ClientFailure) -> wasmtime::Result<ClientError> {
        Ok(match failure {
            ClientFailure::NotGranted => ClientError::NotGranted,
            ClientFailure::Unsupported => ClientError::Unsupported,
            ClientFailure::Timeout => ClientError::Timeout,
            ClientFailure::Failed(why) => ClientError::Failed(why),
            ClientFailure::Suspend => return Err(wasmtime::Error::new(Suspended)),
        })
    }
}

/// The WIT role as the runtime's.
fn role(role: wit::SampleRole) -> SampleRole {
    match role {
        wit::SampleRole::User => SampleRole::User,
        wit::SampleRole::Assistant => SampleRole::Assistant,
    }
}

impl bindings::warden::mcp::types::Host for CallState {}

/// Cut `text` to at most `max` bytes on a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    text.truncate(floor_char_boundary(&text, max));
    text
}

/// The largest character boundary of `s` at or below `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut end = at.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}
