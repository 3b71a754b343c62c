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
//! `sample` request and of its answer pass the filter. They are sent during the call, in a
//! session whose client declared the capability (the transport decides); stateless requests
//! cannot make them yet.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rmcp::model::ElicitationSchema;
use serde_json::{Map, Value};

use super::approval::{Action, action};
use super::subscriptions::MAX_NOTICES;
use super::{OutputFilter, Redactions};
use crate::manifest::PluginPolicy;
use crate::runtime::{
    CallEvents, ClientFailure, ClientFuture, ElicitFailure, ElicitFuture, Elicited, EventFuture,
    LogLevel, Root, SampleRequest, Sampled,
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
    /// Answered from the request (2026-07-28): these answers, in order; a question past them
    /// stops the call, which returns it to the client.
    Rounds(Vec<Value>),
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
    /// The question that stopped the call (2026-07-28): its message and form.
    unanswered: Option<(String, Value)>,
    /// The URIs the plugin said changed, unchecked, at most [`MAX_NOTICES`].
    updated: Vec<String>,
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

    /// The question that stopped the call, when one did (2026-07-28): how many questions
    /// the call asked, and this one's message and form.
    pub(super) fn take_unanswered(&self) -> Option<(usize, String, Value)> {
        let mut state = self.state();
        let (message, form) = state.unanswered.take()?;
        Some((state.asked, message, form))
    }

    /// The plugin's question, filtered and checked: its message and form, or why it cannot
    /// be put.
    fn screen(&self, message: &str, schema: &str) -> Result<(usize, String, Value), ElicitFailure> {
        let mut form: Value = serde_json::from_str(schema)
            .map_err(|e| ElicitFailure::InvalidSchema(format!("not JSON: {e}")))?;
        serde_json::from_value::<ElicitationSchema>(form.clone())
            .map_err(|e| ElicitFailure::InvalidSchema(e.to_string()))?;
        let mut state = self.state();
        if state.asked >= MAX_QUESTIONS {
            return Err(ElicitFailure::Failed(format!(
                "a call may ask at most {MAX_QUESTIONS} questions"
            )));
        }
        let index = state.asked;
        state.asked += 1;
        let window = &message[..floor_char_boundary(message, MAX_MESSAGE)];
        let message = self
            .filter
            .redact_changed(window, &mut state.redactions)
            .unwrap_or_else(|| window.to_owned());
        self.filter.apply_json(&mut form, &mut state.redactions);
        Ok((index, message, form))
    }

    /// Count one request to the client against [`MAX_QUESTIONS`].
    fn count_question(&self) -> Result<(), ClientFailure> {
        let mut state = self.state();
        if state.asked >= MAX_QUESTIONS {
            return Err(ClientFailure::Failed(format!(
                "a call may ask at most {MAX_QUESTIONS} questions"
            )));
        }
        state.asked += 1;
        Ok(())
    }

    /// `text`, filtered (and cut to [`MAX_MESSAGE`] bytes); hits are counted.
    fn filtered(&self, text: &str) -> String {
        let window = &text[..floor_char_boundary(text, MAX_MESSAGE)];
        self.filter
            .redact_changed(window, &mut self.state().redactions)
            .unwrap_or_else(|| window.to_owned())
    }

    /// Send a request to the client during the call, waiting as long as a question may.
    async fn ask_client<T>(&self, request: ClientFuture<'_, T>) -> Result<T, ClientFailure> {
        let wait = match &self.questions {
            // Stateless: a request to the client would be an input-required round (not yet).
            Questions::Rounds(_) => return Err(ClientFailure::Unsupported),
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

    fn elicit(&self, message: String, schema: String) -> ElicitFuture<'_> {
        Box::pin(async move {
            let (index, message, form) = self.screen(&message, &schema)?;
            match &self.questions {
                Questions::Unable => Err(ElicitFailure::Unsupported),
                Questions::Live(timeout) => {
                    let text = serde_json::to_string(&form).unwrap_or_default();
                    tokio::time::timeout(*timeout, self.inner.elicit(message, text))
                        .await
                        .unwrap_or(Err(ElicitFailure::Timeout))
                }
                Questions::Rounds(answers) => match answers.get(index) {
                    Some(answer) => Ok(match action(answer) {
                        Action::Accept => Elicited::Accept(
                            answer
                                .get("content")
                                .filter(|c| c.is_object())
                                .map_or_else(|| "{}".to_owned(), Value::to_string),
                        ),
                        Action::Decline => Elicited::Decline,
                        Action::Cancel => Elicited::Cancel,
                    }),
                    None => {
                        self.state().unanswered = Some((message, form));
                        Err(ElicitFailure::Suspend)
                    }
                },
            }
        })
    }

    fn sample(&self, mut request: SampleRequest) -> ClientFuture<'_, Sampled> {
        Box::pin(async move {
            self.count_question()?;
            for message in &mut request.messages {
                message.text = self.filtered(&message.text);
            }
            request.system_prompt = request.system_prompt.map(|p| self.filtered(&p));
            let mut answer = self.ask_client(self.inner.sample(request)).await?;
            answer.text = self.filtered(&answer.text);
            Ok(answer)
        })
    }

    fn roots(&self) -> ClientFuture<'_, Vec<Root>> {
        Box::pin(async move {
            self.count_question()?;
            let mut roots = self.ask_client(self.inner.roots()).await?;
            for root in &mut roots {
                root.uri = self.filtered(&root.uri);
                root.name = root.name.as_deref().map(|n| self.filtered(n));
            }
            Ok(roots)
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
