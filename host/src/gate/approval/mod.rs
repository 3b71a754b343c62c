//! Asking a human before a call runs, and carrying a plugin's own questions.
//!
//! A call needs approval when its tool says `approval = "ask"`, or when the flow rule applies
//! (`flow.rs`: the principal received private output within `[approval] window` and the tool
//! can reach the open world). How the question is put depends on what the transport can do
//! ([`Asking`]):
//!
//! - a 2025-11-25 session whose client declared elicitation: `elicitation/create` now, and the
//!   call waits (at most `[approval] timeout`);
//! - a 2026-07-28 request whose client declared elicitation: the call returns an
//!   `input_required` result with the question and a sealed `requestState`; the client calls
//!   again with the answer and the state. The state is an HMAC-sealed token bound to the
//!   principal, the tool and the SHA-256 of the canonical arguments, with an expiry, so a
//!   tampered, replayed-with-other-arguments, transplanted or expired state is refused. No
//!   server memory is needed between the two requests;
//! - a client that cannot be asked: an operator answers through `warden approvals`
//!   (`pending.rs`) when `[approval] operators` names roles, else the call is refused.
//!
//! Whatever the way, the answer approves exactly this call: the record keeps who answered,
//! when, and the arguments' digest.

mod flow;
mod pending;
mod spent;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rmcp::model::{
    InputRequest, InputRequiredResult, InputResponses, JsonObject, RequestStateCodec, SealOptions,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use flow::Flow;
pub use pending::{Decision, PendingApproval, PendingApprovals, UnknownApproval};
use spent::Spent;

use super::inputs::{self, Answers, Declared, Given};
use super::shared_limits::SharedStore;
use super::stop::Stop;
use super::{OutputFilter, Principal, audit_args};
use crate::audit::{ApprovalRecord, Outcome, rfc3339};
use crate::catalog::ToolEntry;
use crate::manifest::{Approval, ApprovalSettings, FlowRule, StoreFailure};
use crate::runtime::{CallEvents, ElicitFailure, Elicited};

/// The `inputRequests` key of the gate's approval question.
pub const APPROVAL_KEY: &str = "approval";
/// The longest preview of the arguments in a question, in bytes.
const MAX_PREVIEW: usize = 1000;

/// How the transport can reach the client's user during this call.
#[derive(Clone, Copy, Debug)]
pub enum Asking<'a> {
    /// Not at all: the client declared no elicitation capability, or the transport has no
    /// way back (`warden call`).
    Unable,
    /// Now: the transport's [`CallEvents::elicit`] asks and waits (2025-11-25 sessions).
    Live,
    /// In the reply (2026-07-28): the call returns `input_required`, and the client calls
    /// again carrying what the previous reply asked for.
    Rounds {
        /// The `requestState` the retried request echoes, if any.
        state: Option<&'a str>,
        /// The `inputResponses` the retried request carries, if any.
        responses: Option<&'a InputResponses>,
        /// What the request's client declared it can answer: only those questions are put.
        declared: Declared,
    },
}

/// What survives reloads: the flow marks, the calls waiting for an operator, the states
/// already used, and the
/// per-process key used when the manifest sets none.
pub struct ApprovalHub {
    flow: Flow,
    pending: PendingApprovals,
    spent: Spent,
    process_key: Vec<u8>,
}

impl Default for ApprovalHub {
    fn default() -> Self {
        let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
        let (c, d) = uuid::Uuid::new_v4().as_u64_pair();
        let process_key = [a, b, c, d].iter().flat_map(|w| w.to_be_bytes()).collect();
        Self {
            flow: Flow::default(),
            pending: PendingApprovals::default(),
            spent: Spent::default(),
            process_key,
        }
    }
}

impl ApprovalHub {
    /// The calls waiting for an operator's answer.
    pub fn pending(&self) -> &PendingApprovals {
        &self.pending
    }
}

/// One gate's approval settings: the manifest's `[approval]`, its sealing key, the hub.
pub(super) struct Approver {
    codec: RequestStateCodec,
    settings: ApprovalSettings,
    hub: Arc<ApprovalHub>,
    /// `[limits] store`: where replicas record the states used, so a state is spent once
    /// across them all.
    store: Option<Arc<SharedStore>>,
}

/// Why a call needs approval, and what the question says.
struct Need {
    reason: String,
}

/// The state a 2026-07-28 client carries between rounds (sealed, so readable but not
/// changeable by it).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Round {
    /// The approval question was in the previous reply: its answer is in `inputResponses`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    asked: bool,
    /// The call was approved in an earlier round.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    approved: bool,
    /// How it was approved, so the record of the round that runs the plugin keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approval: Option<ApprovalRecord>,
    /// The answers the plugin's questions took so far, by key, with their kind.
    #[serde(default, skip_serializing_if = "Answers::is_empty")]
    answered: Answers,
}

/// The call being cleared, as the gate knows it.
pub(super) struct Call<'a> {
    pub(super) tool: &'a ToolEntry,
    pub(super) principal: &'a Principal,
    pub(super) arguments: Option<&'a JsonObject>,
    /// The plugin's output filter, for the arguments shown in a question.
    pub(super) filter: &'a OutputFilter,
}

/// What the approval step hands on to the run.
#[derive(Default)]
pub(super) struct Cleared {
    /// The answers the plugin's questions get, by key, in the stateless era: those of the
    /// earlier rounds (sealed) and this request's.
    pub(super) answers: Answers,
    /// The call was approved (so later rounds need not ask again).
    pub(super) approved: bool,
    /// How it was approved (in this round or an earlier one), for the audit record.
    pub(super) record: Option<ApprovalRecord>,
    /// The arguments' digest, once computed.
    digest: Option<String>,
}

impl Approver {
    /// The approver for `settings`, sealing with its key or the hub's.
    pub(super) fn new(
        settings: &ApprovalSettings,
        hub: Arc<ApprovalHub>,
        store: Option<Arc<SharedStore>>,
    ) -> Self {
        let key = match &settings.key {
            Some(key) => key.expose().as_bytes().to_vec(),
            None => hub.process_key.clone(),
        };
        Self {
            codec: RequestStateCodec::new_unchecked(key),
            settings: settings.clone(),
            hub,
            store,
        }
    }

    /// The calls waiting for an operator.
    pub(super) fn pending(&self) -> &PendingApprovals {
        &self.hub.pending
    }

    /// How long a question waits for its answer (`[approval] timeout`).
    pub(super) fn timeout(&self) -> Duration {
        self.settings.timeout
    }

    /// `[approval] operators`.
    pub(super) fn operators(&self) -> &[String] {
        &self.settings.operators
    }

    /// Whether a call of `tool` may need the approval step at all: it asks, the flow rule may
    /// apply to it, or it carries a stateless round. Cheap, and false for most calls.
    pub(super) fn may_ask(&self, tool: &ToolEntry, asking: Asking<'_>) -> bool {
        tool.approval == Approval::Ask
            || (tool.open_world && self.settings.after_private != FlowRule::Allow)
            || matches!(asking, Asking::Rounds { .. })
    }

    /// Whether `principal`'s call of `tool` needs approval, and why; refuses it at once under
    /// `after_private = "deny"`.
    async fn need(&self, tool: &ToolEntry, principal: &Principal) -> Result<Option<Need>, Stop> {
        if tool.open_world
            && self.settings.after_private != FlowRule::Allow
            && let Some(source) = self.marked(&principal.name).await?
        {
            let why = format!("this call can send data read earlier from {source} to the internet");
            if self.settings.after_private == FlowRule::Deny {
                return Err(Stop::tool_error(
                    Outcome::Denied,
                    format!("refused: {why} ([approval] after_private = \"deny\")"),
                ));
            }
            return Ok(Some(Need { reason: why }));
        }
        Ok((tool.approval == Approval::Ask).then(|| Need {
            reason: "this tool asks a human to confirm each call".to_owned(),
        }))
    }

    /// The approval step: decide whether the call needs approval, and get it. `Ok` clears
    /// the call to run (with the answers its plugin's questions get, and how it was
    /// approved); a [`Stop`] refuses it, or (stateless era) returns the question.
    pub(super) async fn clear(
        &self,
        call: &Call<'_>,
        asking: Asking<'_>,
        events: &dyn CallEvents,
        request_id: &str,
    ) -> Result<Cleared, Stop> {
        let need = self.need(call.tool, call.principal).await?;
        let mut cleared = Cleared::default();
        let asked = match asking {
            Asking::Rounds {
                state, responses, ..
            } => self.resume(call, &mut cleared, state, responses).await?,
            _ => false,
        };
        // No need, or approved in an earlier round (whose record `resume` kept).
        let Some(need) = need.filter(|_| !cleared.approved) else {
            return Ok(cleared);
        };
        let question = self.question(call, &need);
        let digest = cleared.digest(call.arguments);
        let (via, by) = match asking {
            Asking::Live => ("elicitation", self.ask_now(events, question).await?),
            // A stateless client that cannot show the question: an operator, if any.
            Asking::Rounds { declared, .. } if !declared.elicitation => (
                "operator",
                self.ask_operator(call, &need, request_id).await?,
            ),
            Asking::Rounds { responses, .. } => {
                let Some(answer) = responses
                    .filter(|_| asked)
                    .and_then(|r| r.get(APPROVAL_KEY))
                else {
                    return Err(self.ask_in_reply(call, &question, &digest, &need));
                };
                ("input-required", answered(action(answer))?)
            }
            Asking::Unable => (
                "operator",
                self.ask_operator(call, &need, request_id).await?,
            ),
        };
        cleared.approved = true;
        cleared.record = Some(ApprovalRecord {
            via: via.to_owned(),
            by,
            at: rfc3339(SystemTime::now()),
            args_sha256: digest,
            reason: need.reason,
        });
        Ok(cleared)
    }

    /// A stateless call carrying `state` and `responses`: the earlier rounds' answers and
    /// approval into `cleared`, then the new answers. Returns whether the previous reply
    /// asked for approval. Answers to the plugin's questions may come without a state (the
    /// first question's); an answer to the approval question counts only with the state that
    /// asked it.
    async fn resume(
        &self,
        call: &Call<'_>,
        cleared: &mut Cleared,
        state: Option<&str>,
        responses: Option<&InputResponses>,
    ) -> Result<bool, Stop> {
        let digest = cleared.digest(call.arguments);
        let subject = Subject::tool(call.principal, call.tool.name(), digest);
        let round = self.open_round(&subject, state, responses).await?;
        cleared.answers = round.answered;
        cleared.approved = round.approved;
        cleared.record = round.approval;
        Ok(round.asked)
    }

    /// Ask the client's user now and wait (a session): who answered, or why nobody did.
    async fn ask_now(&self, events: &dyn CallEvents, question: String) -> Result<String, Stop> {
        let timeout = self.settings.timeout;
        let answer = tokio::time::timeout(timeout, events.elicit(question, EMPTY_FORM.to_owned()))
            .await
            .unwrap_or(Err(ElicitFailure::Timeout));
        match answer {
            Ok(Elicited::Accept(_)) => answered(Action::Accept),
            Ok(Elicited::Decline) => answered(Action::Decline),
            Ok(Elicited::Cancel) => answered(Action::Cancel),
            Err(ElicitFailure::Timeout) => Err(timed_out(timeout)),
            Err(ElicitFailure::Unsupported) => Err(unavailable()),
            Err(other) => Err(Stop::tool_error(
                Outcome::ApprovalUnavailable,
                "this tool needs approval and the question could not be put to the user; the \
                 tool did not run"
                    .to_owned(),
            )
            .with_detail(format!("{other:?}"))),
        }
    }

    /// The first half of a stateless approval: the question, and a state saying it was asked.
    fn ask_in_reply(&self, call: &Call<'_>, question: &str, digest: &str, need: &Need) -> Stop {
        let asked = Round {
            asked: true,
            ..Round::default()
        };
        let subject = Subject::tool(call.principal, call.tool.name(), digest.to_owned());
        let state = self.seal(&asked, &subject);
        let mut requests = BTreeMap::new();
        requests.insert(
            APPROVAL_KEY.to_owned(),
            inputs::form_request(question, &empty_form()),
        );
        Stop::input_required(
            InputRequiredResult::new(Some(requests), Some(state)),
            format!("approval asked: {}", need.reason),
        )
    }

    /// Wait for an operator, when there are any: the operator's name, or why not.
    async fn ask_operator(
        &self,
        call: &Call<'_>,
        need: &Need,
        request_id: &str,
    ) -> Result<String, Stop> {
        if self.settings.operators.is_empty() {
            return Err(unavailable());
        }
        let waiting = PendingApproval {
            id: request_id.to_owned(),
            tool: call.tool.name().to_owned(),
            plugin: call.tool.plugin.config.name.clone(),
            principal: call.principal.name.to_string(),
            arguments: preview(call.arguments, call.filter),
            reason: need.reason.clone(),
            asked_at: rfc3339(SystemTime::now()),
        };
        match self.hub.pending.wait(waiting, self.settings.timeout).await {
            Some(Decision::Allow { by }) => Ok(by),
            Some(Decision::Deny { by }) => {
                Err(declined("denied by an operator")
                    .with_detail(format!("denied by operator {by}")))
            }
            None => Err(timed_out(self.settings.timeout)),
        }
    }

    /// The `input_required` reply of a call whose plugin asked `requests` (by key) after
    /// taking the answers `answered`: the questions, and the state the retry must carry.
    pub(super) fn plugin_question(
        &self,
        call: &Call<'_>,
        cleared: &mut Cleared,
        answered: Answers,
        requests: BTreeMap<String, InputRequest>,
    ) -> InputRequiredResult {
        let digest = cleared.digest(call.arguments);
        let subject = Subject::tool(call.principal, call.tool.name(), digest);
        let round = Round {
            asked: false,
            approved: cleared.approved,
            approval: cleared.record.clone(),
            answered,
        };
        InputRequiredResult::new(Some(requests), Some(self.seal(&round, &subject)))
    }

    /// The answers so far of a stateless request about `subject` carrying `state` and
    /// `responses` (a prompt's: no approval).
    pub(super) async fn answers(
        &self,
        subject: &Subject<'_>,
        state: Option<&str>,
        responses: Option<&InputResponses>,
    ) -> Result<Answers, Stop> {
        Ok(self.open_round(subject, state, responses).await?.answered)
    }

    /// The `input_required` reply of a request about `subject` whose plugin asked `requests`
    /// after taking `answered` (a prompt's: no approval).
    pub(super) fn prompt_question(
        &self,
        subject: &Subject<'_>,
        answered: Answers,
        requests: BTreeMap<String, InputRequest>,
    ) -> InputRequiredResult {
        let round = Round {
            answered,
            ..Round::default()
        };
        InputRequiredResult::new(Some(requests), Some(self.seal(&round, subject)))
    }

    /// The round `state` carries (none without one), with `responses`' answers added: the
    /// approval's, which must be an answer, and every other key's, read later as the kind of
    /// question the plugin asks under it. A key answered in an earlier round keeps that answer.
    async fn open_round(
        &self,
        subject: &Subject<'_>,
        state: Option<&str>,
        responses: Option<&InputResponses>,
    ) -> Result<Round, Stop> {
        let mut round = match state {
            Some(state) => self.open(state, subject).await?,
            None => Round::default(),
        };
        for (key, value) in responses.into_iter().flatten() {
            if key == APPROVAL_KEY {
                if !inputs::is_elicit_answer(value) {
                    return Err(malformed(APPROVAL_KEY, inputs::Kind::Elicit));
                }
                continue;
            }
            round.answered.entry(key.clone()).or_insert_with(|| Given {
                kind: None,
                value: value.clone(),
            });
        }
        Ok(round)
    }

    /// After a call that returned: mark `principal` when `tool`'s output is private (and,
    /// with replicas, in the shared store, so the flow rule holds on every replica).
    pub(super) async fn returned(&self, tool: &ToolEntry, principal: &Principal) {
        if !tool.private {
            return;
        }
        self.hub.flow.mark(&principal.name, tool.name());
        if let Some(store) = &self.store {
            match store
                .mark(&principal.name, tool.name(), self.settings.window)
                .await
            {
                Ok(()) => store.answered(),
                // Kept here; under "closed", the other replicas refuse open-world calls
                // meanwhile anyway (they cannot read the marks).
                Err(error) => store.failed(&error),
            }
        }
    }

    /// The private tool `principal` received output from within the window: here, else (with
    /// replicas) on any replica. A store that is down refuses under `on_store_error =
    /// "closed"`.
    async fn marked(&self, principal: &str) -> Result<Option<String>, Stop> {
        if let Some(tool) = self.hub.flow.marked(principal, self.settings.window) {
            return Ok(Some(tool));
        }
        let Some(store) = &self.store else {
            return Ok(None);
        };
        match store.marked(principal).await {
            Ok(tool) => {
                store.answered();
                Ok(tool)
            }
            Err(error) => {
                store.failed(&error);
                match store.on_error() {
                    StoreFailure::Closed => Err(store_unavailable()),
                    StoreFailure::Local => Ok(None),
                }
            }
        }
    }

    fn seal(&self, round: &Round, subject: &Subject<'_>) -> String {
        let payload = serde_json::to_vec(round).unwrap_or_default();
        let bound = subject.binding();
        self.codec.seal_with(
            &payload,
            &SealOptions::new()
                .associated_data(bound.as_bytes())
                .ttl(self.settings.expiry),
        )
    }

    async fn open(&self, state: &str, subject: &Subject<'_>) -> Result<Round, Stop> {
        let bound = subject.binding();
        let payload = self
            .codec
            .open_with(state, bound.as_bytes())
            .map_err(|error| invalid(&format!("requestState refused: {error}")))?;
        let round = serde_json::from_slice(&payload)
            .map_err(|error| invalid(&format!("requestState unreadable: {error}")))?;
        // One call per state: a replay would be a blank cheque for as long as it is valid.
        if !self
            .hub
            .spent
            .spend(state, std::time::Instant::now() + self.settings.expiry)
        {
            return Err(invalid(
                "requestState used already: each state answers one call",
            ));
        }
        // Replicas: also spent in the shared store, so another replica refuses it too.
        if let Some(store) = &self.store {
            match store.spend(state, self.settings.expiry).await {
                Ok(true) => store.answered(),
                Ok(false) => {
                    store.answered();
                    return Err(invalid(
                        "requestState used already (on another replica): each state answers \
                         one call",
                    ));
                }
                Err(error) => {
                    store.failed(&error);
                    if store.on_error() == StoreFailure::Closed {
                        return Err(store_unavailable());
                    }
                }
            }
        }
        Ok(round)
    }

    /// The approval question: what, who, the arguments (redacted, cut), and why.
    fn question(&self, call: &Call<'_>, need: &Need) -> String {
        format!(
            "Allow the tool `{}` (plugin `{}`) to run for `{}`?\nArguments: {}\nWhy you are asked: {}.",
            call.tool.name(),
            call.tool.plugin.config.name,
            call.principal.name,
            preview(call.arguments, call.filter),
            need.reason,
        )
    }
}

impl Cleared {
    /// The SHA-256 of the canonical arguments (serde_json's maps are sorted by key).
    fn digest(&mut self, arguments: Option<&JsonObject>) -> String {
        self.digest.get_or_insert_with(|| digest(arguments)).clone()
    }
}

/// What a `requestState` is bound to: who asks, which request (method and name) and the
/// SHA-256 of its canonical arguments. A state issued for another principal, method, name or
/// arguments does not open.
pub(super) struct Subject<'a> {
    principal: &'a Principal,
    method: &'static str,
    name: &'a str,
    digest: String,
}

impl<'a> Subject<'a> {
    /// A call of the tool `name`.
    pub(super) fn tool(principal: &'a Principal, name: &'a str, digest: String) -> Self {
        Self {
            principal,
            method: "tools/call",
            name,
            digest,
        }
    }

    /// A get of the prompt `name` with `arguments`.
    pub(super) fn prompt(
        principal: &'a Principal,
        name: &'a str,
        arguments: Option<&JsonObject>,
    ) -> Self {
        Self {
            principal,
            method: "prompts/get",
            name,
            digest: digest(arguments),
        }
    }

    fn binding(&self) -> String {
        format!(
            "warden/approval/2\0{}\0{}\0{}\0{}",
            self.method, self.principal.name, self.name, self.digest
        )
    }
}

/// The SHA-256 of the canonical `arguments` (serde_json's maps are sorted by key).
fn digest(arguments: Option<&JsonObject>) -> String {
    let canonical = match arguments {
        Some(arguments) => serde_json::to_vec(arguments).unwrap_or_default(),
        None => b"{}".to_vec(),
    };
    hex::encode(Sha256::digest(&canonical))
}

/// The form of an approval: no fields; accepting it is the approval.
const EMPTY_FORM: &str = r#"{"type":"object","properties":{}}"#;

fn empty_form() -> Value {
    json!({"type": "object", "properties": {}})
}

/// What the user did, in an `ElicitResult`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    Accept,
    Decline,
    Cancel,
}

/// The action of an `ElicitResult` as JSON; anything else counts as a cancel.
pub(super) fn action(answer: &Value) -> Action {
    match answer.get("action").and_then(Value::as_str) {
        Some("accept") => Action::Accept,
        Some("decline") => Action::Decline,
        _ => Action::Cancel,
    }
}

/// The arguments as the question shows them: redacted like the audit record's, cut.
fn preview(arguments: Option<&JsonObject>, filter: &OutputFilter) -> String {
    let shown = audit_args(arguments, filter);
    let mut text = serde_json::to_string(&*shown).unwrap_or_default();
    if text.len() > MAX_PREVIEW {
        let mut end = MAX_PREVIEW;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" …");
    }
    text
}

/// The user's answer to the approval question: `user` when it approves, else the refusal.
fn answered(action: Action) -> Result<String, Stop> {
    match action {
        Action::Accept => Ok("user".to_owned()),
        Action::Decline => Err(declined("declined by the user")),
        Action::Cancel => Err(declined("cancelled by the user")),
    }
}

fn declined(how: &str) -> Stop {
    Stop::tool_error(
        Outcome::ApprovalDeclined,
        format!("approval {how}; the tool did not run"),
    )
}

fn unavailable() -> Stop {
    Stop::tool_error(
        Outcome::ApprovalUnavailable,
        "this tool needs approval and this client cannot ask for it; the tool did not run"
            .to_owned(),
    )
}

fn timed_out(timeout: Duration) -> Stop {
    Stop::tool_error(
        Outcome::ApprovalTimeout,
        format!(
            "no answer to the approval question within {}; the tool did not run",
            crate::manifest::format_duration(timeout)
        ),
    )
}

/// A `requestState` that does not open for this call: the protocol error, never a new
/// question (which would let a forger start over silently).
/// The refusal while the state shared by replicas cannot be read (`on_store_error =
/// "closed"`); the detail is in the host's log.
fn store_unavailable() -> Stop {
    Stop::tool_error(
        Outcome::Unavailable,
        "approval state is shared by the server's replicas and cannot be checked right now; \
         retry in a moment"
            .to_owned(),
    )
}

fn invalid(detail: &str) -> Stop {
    Stop::invalid_params(
        Outcome::ApprovalInvalid,
        "invalid or expired requestState: it was altered, has expired, or belongs to another \
         call; call the tool again without it"
            .to_owned(),
    )
    .with_detail(detail.to_owned())
}

/// `inputResponses` whose entry `key` is not an answer to the question of `kind` asked under it.
pub(super) fn malformed(key: &str, kind: inputs::Kind) -> Stop {
    Stop::invalid_params(
        Outcome::Invalid,
        format!("inputResponses.{key} is not {}", kind.expected()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Transport;

    /// A state opens only for the request it was issued for: the same principal, method,
    /// name and arguments. A prompt's state does not open for a tool of the same name.
    #[tokio::test]
    async fn a_state_is_bound_to_its_method_principal_name_and_arguments() {
        let approver = Approver::new(&ApprovalSettings::default(), Arc::default(), None);
        let ann = Principal::new("ann", vec![], Transport::Stdio);
        let bob = Principal::new("bob", vec![], Transport::Stdio);
        let mut answered = Answers::new();
        answered.insert(
            "user_context".to_owned(),
            Given {
                kind: Some(inputs::Kind::Elicit),
                value: json!({"action": "accept", "content": {"context": "x"}}),
            },
        );
        let prompt = Subject::prompt(&ann, "p", None);
        let sealed = approver.prompt_question(&prompt, answered.clone(), BTreeMap::new());
        let state = sealed.request_state.expect("a state");
        let mut other_args = JsonObject::new();
        other_args.insert("a".to_owned(), json!("b"));
        for wrong in [
            Subject::tool(&ann, "p", digest(None)),
            Subject::prompt(&bob, "p", None),
            Subject::prompt(&ann, "q", None),
            Subject::prompt(&ann, "p", Some(&other_args)),
        ] {
            assert!(approver.answers(&wrong, Some(&state), None).await.is_err());
        }
        // The right one opens once, with the sealed answers.
        let opened = approver.answers(&prompt, Some(&state), None).await.ok();
        assert_eq!(opened, Some(answered));
        assert!(approver.answers(&prompt, Some(&state), None).await.is_err());
    }

    /// An answer in this request does not replace one sealed by an earlier round, and the
    /// approval key's entry must be an answer.
    #[tokio::test]
    async fn sealed_answers_win_and_the_approval_entry_must_be_an_answer() {
        let approver = Approver::new(&ApprovalSettings::default(), Arc::default(), None);
        let ann = Principal::new("ann", vec![], Transport::Stdio);
        let subject = Subject::prompt(&ann, "p", None);
        let sealed_answer = Given {
            kind: Some(inputs::Kind::Sample),
            value: json!({"role": "assistant", "content": {"type": "text", "text": "a"}, "model": "m"}),
        };
        let mut answered = Answers::new();
        answered.insert("k".to_owned(), sealed_answer.clone());
        let state = approver
            .prompt_question(&subject, answered, BTreeMap::new())
            .request_state
            .expect("state");
        let mut responses = InputResponses::new();
        responses.insert("k".to_owned(), json!({"action": "accept"}));
        responses.insert("new".to_owned(), json!(1));
        let opened = approver
            .answers(&subject, Some(&state), Some(&responses))
            .await
            .expect("opens");
        assert_eq!(opened.get("k"), Some(&sealed_answer));
        assert_eq!(opened.get("new").map(|g| &g.value), Some(&json!(1)));
        let mut approval = InputResponses::new();
        approval.insert(APPROVAL_KEY.to_owned(), json!("yes"));
        assert!(
            approver
                .answers(&subject, None, Some(&approval))
                .await
                .is_err()
        );
    }
}
