//! A call's log and progress messages on their way out: the gate wraps the transport's
//! [`CallEvents`] before handing it to the runtime, so every message passes the plugin's
//! output filter (the same detectors and secret values as its results) and the call's caps
//! (`max_events` messages, `max_event_bytes` bytes of text) before anything leaves.
//!
//! The first message over a cap is replaced by one note at `warning` level; the rest are
//! dropped. Hits are counted for the call's audit record.
//!
//! A plugin's questions (`elicit`) pass the same filter (the message, and every string of the
//! form), must be flat forms a client can show, and are counted (at most [`MAX_QUESTIONS`] a
//! call). Then they are put as the transport can ([`Questions`]).
//!
//! Its requests to the client (`sample`, `roots`) count as questions too; the texts of a
//! `sample` request and of its answer, and the roots the client gives, pass the filter.
//!
//! Every question has a key (`inputs`): the plugin's (`ask`) or the host's. In a session the
//! questions are asked one after the other during the call (the transport decides whether
//! the client can answer `sample` and `roots`). In the stateless era ([`Questions::Rounds`])
//! a question is answered from the request when it carries an answer under its key, and
//! otherwise stops the call: all the unanswered questions of that `ask` go back to the client
//! together as the input requests of one `input_required` result ([`Interrupt`]). Only the
//! questions the request's client declared it can answer are put; the others are answered
//! `unsupported`, or, when the plugin requires them, end the request with the
//! missing-capability error.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rmcp::model::{ElicitationSchema, InputRequest};
use serde_json::{Map, Value};

use super::inputs::{self, Answers, Declared, Given, Kind, Read};
use super::subscriptions::MAX_NOTICES;
use super::{OutputFilter, Redactions};
use crate::manifest::PluginPolicy;
use crate::runtime::{
    Answer, Ask, AskFailure, AskFuture, CallEvents, ClientFailure, ClientFuture, ElicitFailure,
    ElicitFuture, EventFuture, LogLevel, Question, Root, SampleRequest, Sampled,
};

/// Questions one call may ask with `elicit`, `sample` and `roots` together; more fail inside
/// the plugin.
pub const MAX_QUESTIONS: usize = 10;

/// How long a `sample` or `roots` request waits for the client when the call has no
/// approval timeout to go by (its client cannot be asked questions).
const CLIENT_WAIT: Duration = Duration::from_secs(120);

/// How a plugin's questions reach the user on this call.
pub(super) enum Questions {
    /// They cannot: `elicit` fails with `unsupported`.
    Unable,
    /// Asked now through the transport, waiting at most this long for each answer.
    Live(Duration),
    /// Answered from the request (2026-07-28): these answers, by key; a question without
    /// one stops the call, which returns it to the client. Only questions of the kinds the
    /// client `declared` are put.
    Rounds {
        answers: Answers,
        declared: Declared,
    },
}

/// Why a plugin's questions stopped the call (2026-07-28, or a required question in a
/// session).
#[derive(Debug)]
pub(super) enum Interrupt {
    /// Questions without an answer yet, by key: the input requests of the reply.
    Unanswered(BTreeMap<String, InputRequest>),
    /// The answer under this key is not one to the question of this kind asked under it.
    Malformed(String, Kind),
    /// Questions the plugin requires need these capabilities, which the client lacks.
    Missing(Vec<Kind>),
}

/// A question once its key is known and what it sends is filtered.
enum Prepared {
    /// Answered without asking: a form that cannot be shown, one question too many.
    Done(Answer),
    Ask {
        key: String,
        kind: Kind,
        required: bool,
        screened: Screened,
    },
}

/// What a question sends, filtered.
enum Screened {
    Elicit { message: String, form: Value },
    Sample(SampleRequest),
    Roots,
}

/// The longest single message passed on, in bytes (after filtering).
pub const MAX_MESSAGE: usize = 8 * 1024;
/// How far past the part of a message that can be sent it is still scanned, so a hit that
/// straddles the cut is found whole (and a PEM key whose end was cut away still matches).
const SCAN_MARGIN: usize = 8 * 1024;

/// A transport's [`CallEvents`], filtered and capped.
pub(super) struct FilteredEvents {
    inner: Arc<dyn CallEvents>,
    filter: Arc<OutputFilter>,
    questions: Questions,
    max_events: u32,
    max_bytes: u64,
    /// The plugin's hidden tools revealed to the caller when the call started.
    revealed: Vec<String>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    events: u32,
    bytes: u64,
    /// Messages dropped or cut because of a cap.
    dropped: u64,
    /// Whether the note saying so was sent.
    noted: bool,
    redactions: Redactions,
    /// What the call did with its capabilities, once it is over.
    usage: Map<String, Value>,
    /// Questions asked so far.
    asked: usize,
    /// The URIs the plugin said changed, unchecked, at most [`MAX_NOTICES`].
    updated: Vec<String>,
    /// The function names the plugin asked to reveal (`true`) or hide, in order,
    /// unchecked, at most [`MAX_NOTICES`].
    toolset: Vec<(bool, String)>,
    /// The keys of the questions asked so far: each names one question of the call.
    keys: HashSet<String>,
    /// The answers the plugin's questions took from the request, by key (2026-07-28).
    taken: Answers,
    /// Why the questions stopped the call, when they did.
    interrupt: Option<Interrupt>,
}

/// What becomes of one event.
enum Admit {
    /// Pass it on, with this message.
    Send(Option<String>),
    /// Pass it on, with this message cut short, then the note.
    SendThenNote(Option<String>),
    /// Drop it; send the note instead when it is the first one dropped.
    Drop { note: bool },
}

impl FilteredEvents {
    /// `inner`, behind `filter` and `policy`'s event caps.
    pub(super) fn new(
        inner: Arc<dyn CallEvents>,
        filter: Arc<OutputFilter>,
        policy: &PluginPolicy,
        questions: Questions,
    ) -> Self {
        Self {
            inner,
            filter,
            questions,
            max_events: policy.max_events,
            max_bytes: policy.max_event_bytes,
            revealed: Vec::new(),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The call is over: add the hits found in its messages to `redactions`, and return how
    /// many messages were dropped or cut by the caps.
    pub(super) fn finish(&self, redactions: &mut Redactions) -> u64 {
        let mut state = self.state();
        for (name, count) in std::mem::take(&mut state.redactions) {
            *redactions.entry(name).or_default() += count;
        }
        state.dropped
    }

    /// What the call did with its capabilities ([`CallEvents::usage`]), and how many
    /// questions it asked (`questions`).
    pub(super) fn take_usage(&self) -> Map<String, Value> {
        let mut state = self.state();
        let mut usage = std::mem::take(&mut state.usage);
        if state.asked > 0 {
            usage.insert("questions".to_owned(), state.asked.into());
        }
        usage
    }

    /// The URIs the plugin said changed (`resource-updated`), unchecked.
    pub(super) fn take_updated(&self) -> Vec<String> {
        std::mem::take(&mut self.state().updated)
    }

    /// The function names the plugin asked to reveal (`true`, `reveal-tools`) or hide
    /// (`hide-tools`), in order, unchecked.
    pub(super) fn take_toolset(&self) -> Vec<(bool, String)> {
        std::mem::take(&mut self.state().toolset)
    }

    /// What `revealed-tools` answers: the plugin's hidden tools revealed to the caller when
    /// the call started, as WIT function names.
    pub(super) fn with_revealed(mut self, revealed: Vec<String>) -> Self {
        self.revealed = revealed;
        self
    }

    /// Why the plugin's questions stopped the call, when they did, and the answers they took
    /// until then (to be sealed in the state of the next round).
    pub(super) fn take_interrupt(&self) -> Option<(Interrupt, Answers)> {
        let mut state = self.state();
        let interrupt = state.interrupt.take()?;
        Some((interrupt, std::mem::take(&mut state.taken)))
    }

    /// Give each question its key (checking the plugin's), count it, and filter what it
    /// sends. A wrong key asks nothing.
    fn prepare(&self, questions: Vec<Question>) -> Result<Vec<Prepared>, AskFailure> {
        let mut state = self.state();
        let mut batch = HashSet::new();
        for key in questions.iter().filter_map(|q| q.key.as_deref()) {
            inputs::check_key(key).map_err(AskFailure::InvalidKey)?;
            if state.keys.contains(key) || !batch.insert(key) {
                return Err(AskFailure::DuplicateKey(key.to_owned()));
            }
        }
        let state = &mut *state;
        let mut prepared = Vec::with_capacity(questions.len());
        for question in questions {
            let kind = Kind::of(&question.ask);
            let screened = match question.ask {
                Ask::Elicit { message, schema } => match form(&schema) {
                    Ok(form) => Screened::Elicit { message, form },
                    Err(failure) => {
                        prepared.push(Prepared::Done(Answer::Elicit(Err(failure))));
                        continue;
                    }
                },
                Ask::Sample(request) => Screened::Sample(request),
                Ask::Roots => Screened::Roots,
            };
            if state.asked >= MAX_QUESTIONS {
                prepared.push(Prepared::Done(too_many(kind)));
                continue;
            }
            let key = question.key.unwrap_or_else(|| kind.host_key(state.asked));
            state.asked += 1;
            state.keys.insert(key.clone());
            let redactions = &mut state.redactions;
            let mut filtered = |text: &str| filter_text(&self.filter, text, redactions);
            let screened = match screened {
                Screened::Elicit { message, mut form } => {
                    let message = filtered(&message);
                    self.filter.apply_json(&mut form, redactions);
                    Screened::Elicit { message, form }
                }
                Screened::Sample(mut request) => {
                    for message in &mut request.messages {
                        message.text = filtered(&message.text);
                    }
                    request.system_prompt = request.system_prompt.map(|p| filtered(&p));
                    Screened::Sample(request)
                }
                Screened::Roots => Screened::Roots,
            };
            prepared.push(Prepared::Ask {
                key,
                kind,
                required: question.required,
                screened,
            });
        }
        Ok(prepared)
    }

    /// Ask `questions` as this call can, and answer each in order.
    async fn ask_all(&self, questions: Vec<Question>) -> Result<Vec<Answer>, AskFailure> {
        let prepared = self.prepare(questions)?;
        match &self.questions {
            Questions::Rounds { answers, declared } => {
                self.answer_from_request(prepared, answers, *declared)
            }
            Questions::Live(_) | Questions::Unable => self.ask_now(prepared).await,
        }
    }

    /// A session: each question in turn, now.
    async fn ask_now(&self, prepared: Vec<Prepared>) -> Result<Vec<Answer>, AskFailure> {
        let mut answers = Vec::with_capacity(prepared.len());
        for question in prepared {
            let (kind, required, screened) = match question {
                Prepared::Done(answer) => {
                    answers.push(answer);
                    continue;
                }
                Prepared::Ask {
                    kind,
                    required,
                    screened,
                    ..
                } => (kind, required, screened),
            };
            let answer = match screened {
                Screened::Elicit { message, form } => Answer::Elicit(match &self.questions {
                    Questions::Live(timeout) => {
                        let text = serde_json::to_string(&form).unwrap_or_default();
                        tokio::time::timeout(*timeout, self.inner.elicit(message, text))
                            .await
                            .unwrap_or(Err(ElicitFailure::Timeout))
                    }
                    _ => Err(ElicitFailure::Unsupported),
                }),
                Screened::Sample(request) => Answer::Sample(
                    self.ask_client(self.inner.sample(request))
                        .await
                        .map(|answer| self.sampled(answer)),
                ),
                Screened::Roots => Answer::Roots(
                    self.ask_client(self.inner.roots())
                        .await
                        .map(|roots| self.rooted(roots)),
                ),
            };
            if required && unsupported(&answer) {
                self.state().interrupt = Some(Interrupt::Missing(vec![kind]));
                return Err(AskFailure::Suspend);
            }
            answers.push(answer);
        }
        Ok(answers)
    }

    /// The stateless era: each question's answer from the request, or the call stops with
    /// the questions still to answer.
    fn answer_from_request(
        &self,
        prepared: Vec<Prepared>,
        given: &Answers,
        declared: Declared,
    ) -> Result<Vec<Answer>, AskFailure> {
        let mut answers = Vec::with_capacity(prepared.len());
        let mut missing = Vec::new();
        let mut unanswered = BTreeMap::new();
        for question in prepared {
            let (key, kind, required, screened) = match question {
                Prepared::Done(answer) => {
                    answers.push(answer);
                    continue;
                }
                Prepared::Ask {
                    key,
                    kind,
                    required,
                    screened,
                } => (key, kind, required, screened),
            };
            if !declared.has(kind) {
                if required && !missing.contains(&kind) {
                    missing.push(kind);
                }
                answers.push(unsupported_answer(kind));
                continue;
            }
            let Some(answer) = given.get(&key) else {
                match input_request(&screened) {
                    Some(request) => {
                        unanswered.insert(key, request);
                    }
                    None => answers.push(failed(kind, "the question could not be sent")),
                }
                continue;
            };
            match inputs::read(kind, answer) {
                Ok(read) => {
                    let taken = Given {
                        kind: Some(kind),
                        value: answer.value.clone(),
                    };
                    self.state().taken.insert(key, taken);
                    answers.push(match read {
                        Read::Elicit(elicited) => Answer::Elicit(Ok(elicited)),
                        Read::Sample(sampled) => Answer::Sample(Ok(self.sampled(sampled))),
                        Read::Roots(roots) => Answer::Roots(Ok(self.rooted(roots))),
                    });
                }
                Err(_) => {
                    self.state().interrupt = Some(Interrupt::Malformed(key, kind));
                    return Err(AskFailure::Suspend);
                }
            }
        }
        let interrupt = if !missing.is_empty() {
            Interrupt::Missing(missing)
        } else if !unanswered.is_empty() {
            Interrupt::Unanswered(unanswered)
        } else {
            return Ok(answers);
        };
        self.state().interrupt = Some(interrupt);
        Err(AskFailure::Suspend)
    }

    /// The model's answer, its text filtered.
    fn sampled(&self, mut answer: Sampled) -> Sampled {
        answer.text = self.filtered(&answer.text);
        answer
    }

    /// The client's roots, filtered.
    fn rooted(&self, mut roots: Vec<Root>) -> Vec<Root> {
        for root in &mut roots {
            root.uri = self.filtered(&root.uri);
            root.name = root.name.as_deref().map(|n| self.filtered(n));
        }
        roots
    }

    /// `text`, filtered (and cut to [`MAX_MESSAGE`] bytes); hits are counted.
    fn filtered(&self, text: &str) -> String {
        filter_text(&self.filter, text, &mut self.state().redactions)
    }

    /// Send a request to the client during the call, waiting as long as a question may.
    async fn ask_client<T>(&self, request: ClientFuture<'_, T>) -> Result<T, ClientFailure> {
        let wait = match &self.questions {
            Questions::Rounds { .. } => return Err(ClientFailure::Unsupported),
            Questions::Live(timeout) => *timeout,
            Questions::Unable => CLIENT_WAIT,
        };
        tokio::time::timeout(wait, request)
            .await
            .unwrap_or(Err(ClientFailure::Timeout))
    }

    /// Decide the fate of one event carrying `message`.
    fn admit(&self, message: Option<&str>) -> Admit {
        let mut state = self.state();
        let remaining = self.max_bytes.saturating_sub(state.bytes);
        let message_len = message.map_or(0, str::len);
        // Once a cap is reached (and noted), everything after is dropped.
        if state.noted || state.events >= self.max_events || (remaining == 0 && message_len > 0) {
            state.dropped += 1;
            let note = !state.noted;
            state.noted = true;
            return Admit::Drop { note };
        }
        state.events += 1;
        let Some(message) = message else {
            return Admit::Send(None);
        };
        let allowed = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(MAX_MESSAGE);
        let window = &message[..floor_char_boundary(message, allowed.saturating_add(SCAN_MARGIN))];
        let mut text = self
            .filter
            .redact_changed(window, &mut state.redactions)
            .unwrap_or_else(|| window.to_owned());
        let mut over_budget = false;
        if text.len() > allowed {
            text.truncate(floor_char_boundary(&text, allowed));
            over_budget = allowed < MAX_MESSAGE;
        }
        state.bytes += text.len() as u64;
        if over_budget {
            state.dropped += 1;
            state.noted = true;
            Admit::SendThenNote(Some(text))
        } else {
            Admit::Send(Some(text))
        }
    }

    /// The note sent once, when the caps are reached.
    fn note(&self) -> String {
        tracing::info!(
            max_events = self.max_events,
            max_bytes = self.max_bytes,
            "a plugin's log and progress messages reached the call's limit; the rest are dropped"
        );
        format!(
            "warden: this call reached its limit of {} log and progress messages or {} bytes of \
             message text; further messages are dropped",
            self.max_events, self.max_bytes
        )
    }
}

impl CallEvents for FilteredEvents {
    fn usage(&self, usage: Map<String, Value>) {
        self.state().usage = usage;
    }

    fn resource_updated(&self, uri: String) {
        let mut state = self.state();
        if state.updated.len() < MAX_NOTICES && !state.updated.contains(&uri) {
            state.updated.push(uri);
        }
    }

    fn change_toolset(&self, reveal: bool, names: Vec<String>) {
        let mut state = self.state();
        for name in names {
            if state.toolset.len() >= MAX_NOTICES {
                break;
            }
            state.toolset.push((reveal, name));
        }
    }

    fn revealed_tools(&self) -> Vec<String> {
        self.revealed.clone()
    }

    fn ask(&self, questions: Vec<Question>) -> AskFuture<'_> {
        Box::pin(self.ask_all(questions))
    }

    fn elicit(&self, message: String, schema: String) -> ElicitFuture<'_> {
        Box::pin(async move {
            match self.ask_one(Ask::Elicit { message, schema }).await {
                Ok(Answer::Elicit(answer)) => answer,
                Ok(_) => Err(ElicitFailure::Failed("no answer".to_owned())),
                Err(()) => Err(ElicitFailure::Suspend),
            }
        })
    }

    fn sample(&self, request: SampleRequest) -> ClientFuture<'_, Sampled> {
        Box::pin(async move {
            match self.ask_one(Ask::Sample(request)).await {
                Ok(Answer::Sample(answer)) => answer,
                Ok(_) => Err(ClientFailure::Failed("no answer".to_owned())),
                Err(()) => Err(ClientFailure::Suspend),
            }
        })
    }

    fn roots(&self) -> ClientFuture<'_, Vec<Root>> {
        Box::pin(async move {
            match self.ask_one(Ask::Roots).await {
                Ok(Answer::Roots(answer)) => answer,
                Ok(_) => Err(ClientFailure::Failed("no answer".to_owned())),
                Err(()) => Err(ClientFailure::Suspend),
            }
        })
    }

    fn log(&self, level: LogLevel, message: String) -> EventFuture<'_> {
        Box::pin(async move {
            match self.admit(Some(&message)) {
                Admit::Send(text) => self.inner.log(level, text.unwrap_or_default()).await,
                Admit::SendThenNote(text) => {
                    self.inner.log(level, text.unwrap_or_default()).await;
                    self.inner.log(LogLevel::Warning, self.note()).await;
                }
                Admit::Drop { note: true } => {
                    self.inner.log(LogLevel::Warning, self.note()).await;
                }
                Admit::Drop { note: false } => {}
            }
        })
    }

    fn progress(&self, done: f64, total: Option<f64>, message: Option<String>) -> EventFuture<'_> {
        Box::pin(async move {
            match self.admit(message.as_deref()) {
                Admit::Send(text) => self.inner.progress(done, total, text).await,
                Admit::SendThenNote(text) => {
                    self.inner.progress(done, total, text).await;
                    self.inner.log(LogLevel::Warning, self.note()).await;
                }
                Admit::Drop { note: true } => {
                    self.inner.log(LogLevel::Warning, self.note()).await;
                }
                Admit::Drop { note: false } => {}
            }
        })
    }
}

impl FilteredEvents {
    /// One question of `elicit`, `sample` or `roots` (the host's key, not required): its
    /// answer, or `Err` when the call stops.
    async fn ask_one(&self, ask: Ask) -> Result<Answer, ()> {
        let question = Question {
            key: None,
            ask,
            required: false,
        };
        match self.ask_all(vec![question]).await {
            Ok(mut answers) if answers.len() == 1 => answers.pop().ok_or(()),
            _ => Err(()),
        }
    }
}

/// A form's schema, read: the JSON, when it is a flat form a client can show.
fn form(schema: &str) -> Result<Value, ElicitFailure> {
    let form: Value = serde_json::from_str(schema)
        .map_err(|e| ElicitFailure::InvalidSchema(format!("not JSON: {e}")))?;
    serde_json::from_value::<ElicitationSchema>(form.clone())
        .map_err(|e| ElicitFailure::InvalidSchema(e.to_string()))?;
    Ok(form)
}

/// `text` filtered with `filter` and cut to [`MAX_MESSAGE`] bytes; hits into `redactions`.
fn filter_text(filter: &OutputFilter, text: &str, redactions: &mut Redactions) -> String {
    let window = &text[..floor_char_boundary(text, MAX_MESSAGE)];
    filter
        .redact_changed(window, redactions)
        .unwrap_or_else(|| window.to_owned())
}

/// The input request that puts a screened question to a 2026-07-28 client.
fn input_request(screened: &Screened) -> Option<InputRequest> {
    match screened {
        Screened::Elicit { message, form } => Some(inputs::form_request(message, form)),
        Screened::Sample(request) => inputs::sample_request(request),
        Screened::Roots => Some(inputs::roots_request()),
    }
}

/// Whether `answer` says the client cannot answer questions of its kind.
fn unsupported(answer: &Answer) -> bool {
    matches!(
        answer,
        Answer::Elicit(Err(ElicitFailure::Unsupported))
            | Answer::Sample(Err(ClientFailure::Unsupported))
            | Answer::Roots(Err(ClientFailure::Unsupported))
    )
}

/// The `unsupported` answer of a question of `kind`.
fn unsupported_answer(kind: Kind) -> Answer {
    match kind {
        Kind::Elicit => Answer::Elicit(Err(ElicitFailure::Unsupported)),
        Kind::Sample => Answer::Sample(Err(ClientFailure::Unsupported)),
        Kind::Roots => Answer::Roots(Err(ClientFailure::Unsupported)),
    }
}

/// The `failed` answer of a question of `kind`, saying `why`.
fn failed(kind: Kind, why: &str) -> Answer {
    match kind {
        Kind::Elicit => Answer::Elicit(Err(ElicitFailure::Failed(why.to_owned()))),
        Kind::Sample => Answer::Sample(Err(ClientFailure::Failed(why.to_owned()))),
        Kind::Roots => Answer::Roots(Err(ClientFailure::Failed(why.to_owned()))),
    }
}

/// The answer of a question over the call's limit.
fn too_many(kind: Kind) -> Answer {
    failed(
        kind,
        &format!("a call may ask at most {MAX_QUESTIONS} questions"),
    )
}

/// The largest character boundary of `s` at or below `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut end = at.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod notice_tests {
    use super::*;
    use crate::gate::Detectors;

    fn events() -> FilteredEvents {
        let detectors = Arc::new(Detectors::new(&[]).expect("detectors"));
        let filter = Arc::new(OutputFilter::new(
            detectors,
            &[],
            std::iter::empty::<&str>(),
        ));
        FilteredEvents::new(
            Arc::new(crate::runtime::NoEvents),
            filter,
            &PluginPolicy::default(),
            Questions::Unable,
        )
    }

    #[test]
    fn a_call_keeps_each_updated_uri_once_and_at_most_a_hundred() {
        let events = events();
        events.resource_updated("notes://1".to_owned());
        events.resource_updated("notes://1".to_owned());
        for n in 0..200 {
            events.resource_updated(format!("notes://many/{n}"));
        }
        let updated = events.take_updated();
        assert_eq!(updated.len(), MAX_NOTICES);
        assert_eq!(updated[0], "notes://1");
        assert_eq!(updated[1], "notes://many/0");
        assert!(events.take_updated().is_empty(), "taken once");
    }
}
