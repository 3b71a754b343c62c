//! Tasks (`io.modelcontextprotocol/tasks`, SEP-2663): a call run detached from its request.
//!
//! A tool the manifest marks `task = "optional" | "required"` is started here when the
//! client declared the extension: the call goes through the whole gate ([`Gate::call_task`]:
//! authorize, rate limit, validate, approval, concurrency slot, run under the tool's
//! `task_timeout`, filter, cap, audit record) on a tokio task of its own, and the client
//! gets the task's id at once. Its state lives in a [`TaskStore`] (this process's memory, or
//! Redis shared by replicas); the stored result is the one the gate returned, filtered and
//! capped. A task belongs to the principal that created it: to anyone else its id is
//! unknown.
//!
//! `tasks/cancel` moves a working task to `cancelled` in the store and drops its call on the
//! replica running it (the guest stops, the call's record says `cancelled`): at once on this
//! replica, and within [`store::CANCEL_POLL`] on another, which watches the store.

mod redis;
mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ring::rand::SecureRandom;
use rmcp::model::{
    CallToolResult, DetailedTask, InputResponses, JsonObject, Task, TaskPayload, TaskStatus,
};
use serde_json::Value;
use tokio::task::AbortHandle;
use tracing::Instrument;

use crate::audit::{Outcome, rfc3339};
use crate::gate::{Asking, CallRequest, Declared, Gate, GateError, Principal, Reply};
use crate::manifest::{TaskSettings, TaskStoreKind};
use crate::runtime::{CallEvents, EventFuture, LogLevel};

pub use redis::RedisStore;
pub use store::{
    Change, MemoryStore, StoreError, TaskAsks, TaskEnd, TaskInput, TaskMeta, TaskRecord, TaskStore,
};

/// A task request that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No such task, or one of another principal's: the two are indistinguishable.
    #[error("unknown task: {0}")]
    Unknown(String),
    /// The principal already has its `max_per_principal` working tasks.
    #[error(
        "too many running tasks: this principal already has {0} (the server's \
         max_per_principal); wait for one to finish or cancel one"
    )]
    PrincipalFull(u32),
    /// This process already runs its `max_running` tasks.
    #[error("the server is running its maximum of {0} tasks; retry later")]
    ServerFull(u32),
    /// The in-memory store holds its maximum of tasks, ended ones included.
    #[error("the server holds its maximum of {0} tasks; retry later")]
    StoreFull(usize),
    /// The store failed: the detail went to the log.
    #[error("the task store is unavailable")]
    Store,
}

/// What [`Tasks::start_after`] answers.
#[derive(Debug)]
pub enum Started {
    /// The call became a task.
    Task(Task),
    /// The call asked (an ordinary input-required round) or was refused before it became a
    /// task: the request's answer.
    Reply(Result<Reply, GateError>),
}

/// How a call ended: the gate's reply and the recorded outcome.
type Ended = (Result<Reply, GateError>, Outcome);

/// The link between a call started by [`Tasks::start_after`] and its caller, until it
/// becomes a task.
struct Handoff {
    /// Taken by the call's end (which sends itself to the caller) or by the caller when
    /// `task_after` runs out (the call then ends in its task), whichever comes first.
    to_caller: Arc<Mutex<Option<tokio::sync::oneshot::Sender<Ended>>>>,
    /// Sent once the task is in the store.
    created: tokio::sync::oneshot::Receiver<()>,
}

/// Stops a call started by [`Tasks::start_after`] when its caller goes before the call
/// became a task or answered.
struct Undetached {
    tasks: Arc<Tasks>,
    id: Option<String>,
}

impl Drop for Undetached {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let handle = self
            .tasks
            .running
            .lock()
            .ok()
            .and_then(|mut r| r.remove(&id));
        if let Some(handle) = handle {
            handle.abort();
        }
    }
}

/// The tasks of one server: the store, and the calls this process runs.
pub struct Tasks {
    store: Arc<dyn TaskStore>,
    settings: TaskSettings,
    /// The calls running here, by task id.
    running: Mutex<HashMap<String, AbortHandle>>,
    /// The ids of the tasks whose status this process changed, for `notifications/tasks`.
    changes: tokio::sync::broadcast::Sender<Arc<str>>,
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// How many status changes wait for a slow `subscriptions/listen` before it misses some.
const CHANGES: usize = 256;

/// A fresh task id: 32 hex digits from 128 bits of the system's CSPRNG, so ids cannot be
/// guessed.
fn new_task_id() -> Result<String, TaskError> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TaskError::Store)?;
    Ok(hex::encode(bytes))
}

fn logged(error: StoreError) -> TaskError {
    match error {
        StoreError::Full(limit) => TaskError::PrincipalFull(limit),
        StoreError::Crowded(limit) => TaskError::StoreFull(limit),
        StoreError::Backend(detail) => {
            tracing::error!(%detail, "task store failed");
            TaskError::Store
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl Tasks {
    /// The tasks of a server configured by `settings` (`[tasks]`).
    pub fn new(settings: &TaskSettings) -> Result<Tasks, StoreError> {
        let store: Arc<dyn TaskStore> = match &settings.store {
            TaskStoreKind::Memory => Arc::new(MemoryStore::default()),
            TaskStoreKind::Redis { url, prefix } => {
                Arc::new(RedisStore::new(url.expose(), prefix)?)
            }
        };
        Ok(Tasks::with_store(store, settings))
    }

    /// The tasks of a server keeping them in `store`.
    pub fn with_store(store: Arc<dyn TaskStore>, settings: &TaskSettings) -> Tasks {
        Tasks {
            store,
            settings: settings.clone(),
            running: Mutex::default(),
            changes: tokio::sync::broadcast::channel(CHANGES).0,
        }
    }

    fn task(&self, record: &TaskRecord) -> Task {
        let mut task = Task::new(
            &record.id,
            record.status,
            &record.meta.created_at,
            &record.updated_at,
        )
        .with_ttl_ms(record.meta.ttl_ms);
        if !record.status.is_terminal() {
            task = task.with_poll_interval_ms(millis(self.settings.poll_interval));
        }
        if let Some(message) = record
            .message
            .as_deref()
            .filter(|_| record.status == TaskStatus::Working)
        {
            task = task.with_status_message(message);
        }
        task
    }

    /// Start a call of `tool` with `arguments` for `principal` as a task run by `gate`, and
    /// return the task once the store holds it (a `tasks/get` right after finds it).
    /// `declared`: what the client can answer; the call's questions of those kinds make the
    /// task `input_required`.
    pub async fn start(
        self: &Arc<Self>,
        gate: Arc<Gate>,
        principal: Principal,
        mcp_id: Option<Value>,
        tool: String,
        arguments: Option<JsonObject>,
        declared: Declared,
    ) -> Result<Task, TaskError> {
        let record = self.new_record(&principal, tool, arguments, declared)?;
        self.store
            .create(&record, self.settings.max_per_principal)
            .await
            .map_err(logged)?;
        tracing::info!(task = %record.id, tool = %record.meta.tool, principal = %principal.name, "task started");
        self.spawn(gate, principal, mcp_id, &record, None, None);
        Ok(self.task(&record))
    }

    /// A new working task of `principal`'s call of `tool`, not stored yet; refused when this
    /// process runs its `max_running` tasks.
    fn new_record(
        &self,
        principal: &Principal,
        tool: String,
        arguments: Option<JsonObject>,
        declared: Declared,
    ) -> Result<TaskRecord, TaskError> {
        let limit = self.settings.max_running;
        let running = self.running.lock().map_or(0, |r| r.len());
        if running >= usize::try_from(limit).unwrap_or(usize::MAX) {
            return Err(TaskError::ServerFull(limit));
        }
        let now = rfc3339(SystemTime::now());
        Ok(TaskRecord {
            id: new_task_id()?,
            meta: TaskMeta {
                owner: principal.name.to_string(),
                tool,
                created_at: now.clone(),
                ttl_ms: millis(self.settings.ttl),
                arguments,
                asks: TaskAsks {
                    elicitation: declared.elicitation,
                    sampling: declared.sampling,
                    roots: declared.roots,
                },
            },
            status: TaskStatus::Working,
            updated_at: now,
            end: None,
            input: None,
            message: None,
        })
    }

    /// Start a call of a tool with `task_after` (`after`): the call runs at once, detached,
    /// but the caller waits for it up to `after`. A call that asks within it answers the
    /// request with its questions, an ordinary input-required round (`round`: the state and
    /// answers of the previous one), and no task exists; a call that ends within it
    /// otherwise, or is still running then, becomes a task (ended already, or working, its
    /// later questions asked inside it), and the caller gets the task.
    #[allow(clippy::too_many_arguments)]
    pub async fn start_after(
        self: &Arc<Self>,
        gate: Arc<Gate>,
        principal: Principal,
        mcp_id: Option<Value>,
        tool: String,
        arguments: Option<JsonObject>,
        declared: Declared,
        round: Option<(Option<String>, InputResponses)>,
        after: Duration,
    ) -> Result<Started, TaskError> {
        let record = self.new_record(&principal, tool, arguments, declared)?;
        let (to_caller, mut ended) = tokio::sync::oneshot::channel();
        let to_caller = Arc::new(Mutex::new(Some(to_caller)));
        let (created, on_created) = tokio::sync::oneshot::channel();
        self.spawn(
            gate,
            principal.clone(),
            mcp_id,
            &record,
            round,
            Some(Handoff {
                to_caller: to_caller.clone(),
                created: on_created,
            }),
        );
        // Dropped before the task exists (the request was cancelled): the call stops.
        let mut undetached = Undetached {
            tasks: self.clone(),
            id: Some(record.id.clone()),
        };
        let early = tokio::select! {
            ended = &mut ended => ended.ok(),
            () = tokio::time::sleep(after) => None,
        };
        if let Some((reply, outcome)) = early {
            undetached.id = None;
            let done = matches!(reply, Ok(Reply::Done(_)));
            if !done {
                // Questions (an ordinary round) or a refusal: no task.
                return Ok(Started::Reply(reply));
            }
            // Ended within `task_after`: a task that has ended already.
            if let Err(error) = self
                .store
                .create(&record, self.settings.max_per_principal)
                .await
            {
                tracing::warn!(%error, "a call that ended before it became a task is answered as a plain call");
                return Ok(Started::Reply(reply));
            }
            self.end(&record.id, reply, outcome).await;
            let stored = self.store.get(&record.id).await.ok().flatten();
            tracing::info!(task = %record.id, "task created for a call that had ended");
            return Ok(Started::Task(self.task(stored.as_ref().unwrap_or(&record))));
        }
        // Still running: it becomes a task.
        let stored = self
            .store
            .create(&record, self.settings.max_per_principal)
            .await
            .map_err(logged);
        let unclaimed = to_caller.lock().ok().and_then(|mut c| c.take());
        if let Err(error) = stored {
            if unclaimed.is_none() {
                // It ended meanwhile: its answer is the reply.
                undetached.id = None;
                if let Ok((reply, _)) = ended.await {
                    return Ok(Started::Reply(reply));
                }
            }
            // `undetached` stops the call.
            return Err(error);
        }
        undetached.id = None;
        // The call ends in the task now: it watches the store for a cancel made elsewhere.
        let _ = created.send(());
        if unclaimed.is_none() {
            // It ended between the deadline and the task's creation, and sent its end here.
            if let Ok((reply, outcome)) = ended.await {
                self.end(&record.id, reply, outcome).await;
            }
        }
        tracing::info!(task = %record.id, tool = %record.meta.tool, principal = %principal.name, "call became a task");
        Ok(Started::Task(self.task(&record)))
    }

    /// Run the call of task `record` on a tokio task of its own: with `round`'s state and the
    /// client's answers when it resumes after questions.
    fn spawn(
        self: &Arc<Self>,
        gate: Arc<Gate>,
        principal: Principal,
        mcp_id: Option<Value>,
        record: &TaskRecord,
        round: Option<(Option<String>, InputResponses)>,
        handoff: Option<Handoff>,
    ) {
        let id = record.id.clone();
        let (tool, arguments, asks) = (
            record.meta.tool.clone(),
            record.meta.arguments.clone(),
            record.meta.asks,
        );
        let declared = Declared {
            elicitation: asks.elicitation,
            sampling: asks.sampling,
            roots: asks.roots,
        };
        let can_answer = declared.elicitation || declared.sampling || declared.roots;
        let span =
            tracing::info_span!("task", task = %id, tool = %tool, principal = %principal.name);
        let tasks = self.clone();
        let work = {
            let id = id.clone();
            async move {
                let asking = match (&round, can_answer) {
                    (Some((state, responses)), _) => Asking::Rounds {
                        state: state.as_deref(),
                        responses: Some(responses),
                        declared,
                    },
                    // Questions (approval, the plugin's own) make the task input_required.
                    (None, true) => Asking::Rounds {
                        state: None,
                        responses: None,
                        declared,
                    },
                    // A client that cannot answer: approval waits for an operator when
                    // `[approval] operators` is set; the plugin's questions get `unsupported`.
                    (None, false) => Asking::Unable,
                };
                let call = CallRequest {
                    principal: &principal,
                    mcp_id,
                    tool: &tool,
                    arguments: arguments.as_ref(),
                    // Progress messages become the task's status message; logs are dropped.
                    events: Arc::new(TaskEvents {
                        store: tasks.store.clone(),
                        id: id.clone(),
                        last: Mutex::new(None),
                    }),
                    asking,
                };
                let (to_caller, created) = match handoff {
                    Some(Handoff { to_caller, created }) => (Some(to_caller), Some(created)),
                    None => (None, None),
                };
                let watch = async {
                    // A call not yet a task has nothing in the store to watch.
                    if let Some(created) = created
                        && created.await.is_err()
                    {
                        std::future::pending::<()>().await;
                    }
                    tasks.cancelled_elsewhere(&id).await;
                };
                tokio::select! {
                    (reply, outcome) = gate.call_task(call) => {
                        // Before `task_after` ran out, the caller takes the end.
                        let caller = to_caller.and_then(|c| c.lock().ok().and_then(|mut c| c.take()));
                        match caller {
                            Some(caller) => {
                                let _ = caller.send((reply, outcome));
                            }
                            None => tasks.end(&id, reply, outcome).await,
                        }
                    }
                    // Cancelled by another replica, or its ttl ran out.
                    () = watch => tracing::info!("task cancelled"),
                }
                if let Ok(mut running) = tasks.running.lock() {
                    running.remove(&id);
                }
            }
            .instrument(span)
        };
        // The handle goes in before the call can end and take it out.
        if let Ok(mut running) = self.running.lock() {
            let handle = tokio::spawn(work);
            running.insert(id, handle.abort_handle());
        }
    }

    /// Store how the task's call ended: a result, an error, or questions for the client.
    async fn end(&self, id: &str, reply: Result<Reply, GateError>, outcome: Outcome) {
        let (status, end, input) = match reply {
            Ok(Reply::Done(result)) if !failed_run(outcome) => (
                TaskStatus::Completed,
                Some(TaskEnd::Result(result_object(&result))),
                None,
            ),
            Ok(Reply::Done(result)) => (
                TaskStatus::Failed,
                Some(failure(-32603, &text_of(&result))),
                None,
            ),
            Ok(Reply::InputRequired(questions)) => {
                let requests = match serde_json::to_value(&questions.input_requests) {
                    Ok(Value::Object(requests)) => requests,
                    _ => JsonObject::new(),
                };
                let input = TaskInput {
                    requests,
                    state: questions.request_state,
                    answers: JsonObject::new(),
                };
                (TaskStatus::InputRequired, None, Some(input))
            }
            Err(error) => {
                let code = match error {
                    GateError::UnknownTool { .. } | GateError::InvalidParams { .. } => -32602,
                    _ => -32603,
                };
                (
                    TaskStatus::Failed,
                    Some(failure(code, &error.to_string())),
                    None,
                )
            }
        };
        let moved = self
            .set(
                id,
                &[TaskStatus::Working],
                status,
                end.as_ref(),
                input.as_ref(),
            )
            .await;
        if moved {
            tracing::info!(status = store::status_str(status), "task call ended");
        } else {
            tracing::info!("task call ended after it was cancelled: its result is dropped");
        }
    }

    /// Move task `id` from one of `from` to `to`; whether it was in one of `from`.
    async fn set(
        &self,
        id: &str,
        from: &[TaskStatus],
        to: TaskStatus,
        end: Option<&TaskEnd>,
        input: Option<&TaskInput>,
    ) -> bool {
        let now = rfc3339(SystemTime::now());
        let change = Change {
            from,
            to,
            updated_at: &now,
            end,
            input,
        };
        match self.store.set(id, change).await {
            Ok(changed) => {
                if changed {
                    // Nobody listening is no error.
                    let _ = self.changes.send(Arc::from(id));
                }
                changed
            }
            Err(error) => {
                tracing::error!(%error, "a task's state could not be stored");
                false
            }
        }
    }

    /// Move task `id` to `cancelled` unless it has ended.
    async fn cancel_stored(&self, id: &str) -> bool {
        let live = [TaskStatus::Working, TaskStatus::InputRequired];
        self.set(id, &live, TaskStatus::Cancelled, None, None).await
    }

    /// Returns when task `id` is no longer working in the store (cancelled by another
    /// replica, or gone: its ttl ran out).
    async fn cancelled_elsewhere(&self, id: &str) {
        loop {
            tokio::time::sleep(store::CANCEL_POLL).await;
            match self.store.get(id).await {
                Ok(Some(task)) if task.status == TaskStatus::Working => {}
                Ok(_) => return,
                // A store that does not answer cancels nothing.
                Err(_) => {}
            }
        }
    }

    /// The ids of the tasks whose status changes from now on (on this process; another
    /// replica's changes are not seen). A receiver that lags misses some.
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        self.changes.subscribe()
    }

    /// `principal`'s task `id`.
    async fn owned(&self, principal: &Principal, id: &str) -> Result<TaskRecord, TaskError> {
        match self.store.get(id).await.map_err(logged)? {
            Some(task) if *task.meta.owner == *principal.name => Ok(task),
            _ => Err(TaskError::Unknown(
                crate::audit::bounded(id, 64).into_owned(),
            )),
        }
    }

    /// `tasks/get`: `principal`'s task `id`, its result or error inlined once it ended, its
    /// questions while it waits for answers.
    pub async fn get(&self, principal: &Principal, id: &str) -> Result<DetailedTask, TaskError> {
        let record = self.owned(principal, id).await?;
        let payload = match (record.status, &record.end, &record.input) {
            (TaskStatus::Completed, Some(TaskEnd::Result(result)), _) => TaskPayload::Completed {
                result: result.clone(),
            },
            (TaskStatus::Failed, Some(TaskEnd::Error(error)), _) => TaskPayload::Failed {
                error: error.clone(),
            },
            (TaskStatus::Cancelled, _, _) => TaskPayload::Cancelled,
            (TaskStatus::InputRequired, _, Some(input)) => {
                match serde_json::from_value(Value::Object(input.requests.clone())) {
                    Ok(input_requests) => TaskPayload::InputRequired { input_requests },
                    Err(_) => TaskPayload::Working,
                }
            }
            _ => TaskPayload::Working,
        };
        Ok(DetailedTask::new(self.task(&record), payload))
    }

    /// `tasks/cancel`: stop `principal`'s task `id` unless it has ended. Cancelling a task
    /// that ended is no error and changes nothing. Returns the task's tool when it was
    /// cancelled while it waited for input: no call runs then, so none records the cancel.
    pub async fn cancel(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Option<String>, TaskError> {
        let record = self.owned(principal, id).await?;
        let mut waited = None;
        if !record.status.is_terminal() && self.cancel_stored(&record.id).await {
            tracing::info!(task = %record.id, principal = %principal.name, "task cancelled");
            if record.status == TaskStatus::InputRequired {
                waited = Some(record.meta.tool.clone());
            }
        }
        // Dropping the call's future drops the plugin's store: the guest stops at once.
        let handle = self
            .running
            .lock()
            .ok()
            .and_then(|mut r| r.remove(&record.id));
        if let Some(handle) = handle {
            handle.abort();
        }
        Ok(waited)
    }

    /// `tasks/update`: the client's answers to `principal`'s task `id`. Answers to pending
    /// questions are kept; once every question of the round has one, the task works again:
    /// its call runs anew (a fresh instance, as every call) with the round's state and the
    /// answers, through `gate`. Answers to nothing pending change nothing.
    pub async fn update(
        self: &Arc<Self>,
        principal: &Principal,
        id: &str,
        responses: InputResponses,
        gate: Arc<Gate>,
        mcp_id: Option<Value>,
    ) -> Result<(), TaskError> {
        let record = self.owned(principal, id).await?;
        let Some(mut input) = record
            .input
            .clone()
            .filter(|_| record.status == TaskStatus::InputRequired)
        else {
            return Ok(());
        };
        let mut answered = false;
        for (key, answer) in responses {
            if input.requests.remove(&key).is_some() {
                input.answers.insert(key, answer);
                answered = true;
            }
        }
        let waiting = [TaskStatus::InputRequired];
        if !answered {
            return Ok(());
        }
        if !input.requests.is_empty() {
            // Still waiting for the others: only the unanswered questions remain to be shown.
            self.set(id, &waiting, TaskStatus::InputRequired, None, Some(&input))
                .await;
            return Ok(());
        }
        if self
            .set(id, &waiting, TaskStatus::Working, None, None)
            .await
        {
            tracing::info!(task = %record.id, "task resumed with the client's answers");
            let answers: InputResponses = input.answers.into_iter().collect();
            self.spawn(
                gate,
                principal.clone(),
                mcp_id,
                &record,
                Some((input.state, answers)),
                None,
            );
        }
        Ok(())
    }

    /// Stop every task this process runs, as the server stops: each is cancelled in the store
    /// (so clients and other replicas see it ended) and its call dropped (recorded
    /// `cancelled`).
    pub async fn shutdown(&self) {
        let running: Vec<(String, AbortHandle)> = self
            .running
            .lock()
            .map(|mut running| running.drain().collect())
            .unwrap_or_default();
        for (id, handle) in running {
            handle.abort();
            if self.cancel_stored(&id).await {
                tracing::info!(task = %id, "task cancelled: the server is stopping");
            }
        }
    }
}

/// Whether the call failed to run (a trap, a limit, no sandbox) rather than answered: such a
/// task is `failed`, where a tool's own error is a `completed` task whose result says
/// `isError`.
fn failed_run(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Timeout
            | Outcome::OutOfFuel
            | Outcome::OutOfMemory
            | Outcome::Trap
            | Outcome::Unavailable
    )
}

fn result_object(result: &CallToolResult) -> JsonObject {
    match serde_json::to_value(result) {
        Ok(Value::Object(object)) => object,
        _ => JsonObject::new(),
    }
}

/// The text of a result the gate wrote in place of a failed run.
fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn failure(code: i64, message: &str) -> TaskEnd {
    let mut error = JsonObject::new();
    error.insert("code".to_owned(), Value::from(code));
    error.insert("message".to_owned(), Value::from(message));
    TaskEnd::Error(error)
}

/// Where a task's call reports: its progress messages (filtered and capped by the gate on
/// the way) become the task's `statusMessage`, written at most every [`NOTE_EVERY`]; its log
/// messages go nowhere (nothing listens to a task).
struct TaskEvents {
    store: Arc<dyn TaskStore>,
    id: String,
    /// When the status message was last written.
    last: Mutex<Option<tokio::time::Instant>>,
}

/// The shortest time between two writes of a task's status message.
const NOTE_EVERY: Duration = Duration::from_millis(250);

impl CallEvents for TaskEvents {
    fn log(&self, _: LogLevel, _: String) -> EventFuture<'_> {
        Box::pin(std::future::ready(()))
    }

    fn progress(&self, done: f64, total: Option<f64>, message: Option<String>) -> EventFuture<'_> {
        let now = tokio::time::Instant::now();
        let due = self.last.lock().is_ok_and(|mut last| {
            let due = last.is_none_or(|at| now.duration_since(at) >= NOTE_EVERY);
            if due {
                *last = Some(now);
            }
            due
        });
        Box::pin(async move {
            if !due {
                return;
            }
            let message = message.unwrap_or_else(|| match total {
                Some(total) => format!("{done} of {total}"),
                None => format!("{done}"),
            });
            if let Err(error) = self.store.note(&self.id, &message).await {
                tracing::warn!(%error, "a task's status message could not be stored");
            }
        })
    }
}
