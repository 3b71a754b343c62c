//! Where task state lives: the [`TaskStore`] trait, and the in-memory store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rmcp::model::{JsonObject, TaskStatus};
use serde::{Deserialize, Serialize};

/// What never changes about a task once it is created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMeta {
    /// The principal that created it: the only one that may see or cancel it.
    pub owner: String,
    /// The tool it runs.
    pub tool: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// How long it is kept after its creation, in milliseconds.
    pub ttl_ms: u64,
    /// The call's arguments, to run it again with the client's answers when it asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<JsonObject>,
    /// What its client declared it can answer: the call's questions of those kinds make the
    /// task `input_required`; the others get `unsupported`.
    #[serde(default)]
    pub asks: TaskAsks,
}

/// The kinds of question a task's client declared it can answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskAsks {
    /// Form elicitation.
    pub elicitation: bool,
    /// Sampling.
    pub sampling: bool,
    /// Roots.
    pub roots: bool,
}

/// What a task waiting for its client asked (`input_required`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskInput {
    /// The `inputRequests` shown by `tasks/get`.
    pub requests: JsonObject,
    /// The sealed `requestState` of the round, never shown: the call that runs with the
    /// answers carries it back to the gate.
    pub state: Option<String>,
    /// The answers given so far to this round's questions (those no longer in `requests`):
    /// the call runs again once every question has one.
    #[serde(default)]
    pub answers: JsonObject,
}

/// How a task ended, when it has: the tool's result, or the error that replaced it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskEnd {
    /// The call's result (filtered and capped by the gate), `isError` or not.
    Result(JsonObject),
    /// A JSON-RPC error object (`code`, `message`).
    Error(JsonObject),
}

/// One task as the store holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRecord {
    /// Its id: 32 hex digits from 128 random bits.
    pub id: String,
    /// What never changes.
    pub meta: TaskMeta,
    /// Where it is.
    pub status: TaskStatus,
    /// When its status last changed (RFC 3339).
    pub updated_at: String,
    /// How it ended, once `completed` or `failed`.
    pub end: Option<TaskEnd>,
    /// What it waits for, when `input_required`.
    pub input: Option<TaskInput>,
    /// The last progress message of its call (`statusMessage`), filtered by the gate.
    pub message: Option<String>,
}

/// A change of a task's status ([`TaskStore::set`]).
#[derive(Clone, Copy, Debug)]
pub struct Change<'a> {
    /// The statuses the task may be in for the change to happen.
    pub from: &'a [TaskStatus],
    /// Its new status.
    pub to: TaskStatus,
    /// When (RFC 3339).
    pub updated_at: &'a str,
    /// How it ended, for `completed` and `failed`.
    pub end: Option<&'a TaskEnd>,
    /// What it waits for, for `input_required` (cleared otherwise).
    pub input: Option<&'a TaskInput>,
}

/// The store failed (Redis down, say): the detail is for the log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The owner already has its `max_per_principal` working tasks.
    #[error("the principal already has {0} running tasks")]
    Full(u32),
    /// The store holds as many tasks as it may (a [`MemoryStore`]'s capacity).
    #[error("the task store holds its maximum of {0} tasks")]
    Crowded(usize),
    /// The backend failed.
    #[error("task store: {0}")]
    Backend(String),
}

/// Where tasks are kept, shared by the replicas that use the same one. Every method is one
/// atomic step, whoever else calls at the same time.
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Keep `task` (working) for its `ttl_ms`, unless its owner already has `max_live`
    /// working tasks ([`StoreError::Full`]).
    async fn create(&self, task: &TaskRecord, max_live: u32) -> Result<(), StoreError>;

    /// The task with this id, unless it is unknown or expired.
    async fn get(&self, id: &str) -> Result<Option<TaskRecord>, StoreError>;

    /// Apply `change` to task `id` if its status is one of `change.from`; `false` when it
    /// was not (it was cancelled or ended meanwhile, or expired) and nothing changed. A task
    /// moved to a terminal status no longer counts against its owner's cap.
    async fn set(&self, id: &str, change: Change<'_>) -> Result<bool, StoreError>;

    /// Set the status message of task `id` while it is working; nothing otherwise.
    async fn note(&self, id: &str, message: &str) -> Result<(), StoreError>;
}

/// The time now in milliseconds since the epoch.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `status`'s spelling on the wire.
pub(super) fn status_str(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Working => "working",
        TaskStatus::InputRequired => "input_required",
        TaskStatus::Completed => "completed",
        TaskStatus::Failed => "failed",
        _ => "cancelled",
    }
}

/// The status spelled `s`.
pub(super) fn parse_status(s: &str) -> Option<TaskStatus> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

/// Each task with the time it expires (milliseconds since the epoch).
type Table = HashMap<String, (TaskRecord, u64)>;

/// Tasks in this process's memory: known only to it, gone when it stops.
pub struct MemoryStore {
    tasks: Mutex<Table>,
    /// The most tasks kept at once.
    capacity: usize,
}

impl Default for MemoryStore {
    /// A store of at most [`MemoryStore::MAX_TASKS`] tasks.
    fn default() -> Self {
        MemoryStore::with_capacity(MemoryStore::MAX_TASKS)
    }
}

impl MemoryStore {
    /// The most tasks kept at once, ended ones included (each is kept for its ttl): a bound
    /// on the memory a flood of short tasks can take.
    pub const MAX_TASKS: usize = 100_000;

    /// A store of at most `capacity` tasks.
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryStore {
            tasks: Mutex::default(),
            capacity,
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Table>, StoreError> {
        self.tasks
            .lock()
            .map_err(|_| StoreError::Backend("the task table is poisoned".to_owned()))
    }
}

#[async_trait]
impl TaskStore for MemoryStore {
    async fn create(&self, task: &TaskRecord, max_live: u32) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tasks = self.lock()?;
        tasks.retain(|_, (_, expires)| *expires > now);
        if tasks.len() >= self.capacity {
            return Err(StoreError::Crowded(self.capacity));
        }
        let live = tasks
            .values()
            .filter(|(t, _)| t.meta.owner == task.meta.owner && !t.status.is_terminal())
            .count();
        if live >= usize::try_from(max_live).unwrap_or(usize::MAX) {
            return Err(StoreError::Full(max_live));
        }
        let expires = now.saturating_add(task.meta.ttl_ms);
        tasks.insert(task.id.clone(), (task.clone(), expires));
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<TaskRecord>, StoreError> {
        let now = now_ms();
        let tasks = self.lock()?;
        Ok(tasks
            .get(id)
            .filter(|(_, expires)| *expires > now)
            .map(|(task, _)| task.clone()))
    }

    async fn set(&self, id: &str, change: Change<'_>) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tasks = self.lock()?;
        match tasks.get_mut(id) {
            Some((task, expires)) if *expires > now && change.from.contains(&task.status) => {
                task.status = change.to;
                change.updated_at.clone_into(&mut task.updated_at);
                if let Some(end) = change.end {
                    task.end = Some(end.clone());
                }
                task.input = change.input.cloned();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn note(&self, id: &str, message: &str) -> Result<(), StoreError> {
        let mut tasks = self.lock()?;
        if let Some((task, _)) = tasks.get_mut(id)
            && task.status == TaskStatus::Working
        {
            task.message = Some(message.to_owned());
        }
        Ok(())
    }
}

/// How often a running task looks in the store for a cancellation made elsewhere.
pub(super) const CANCEL_POLL: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, owner: &str, ttl_ms: u64) -> TaskRecord {
        TaskRecord {
            id: id.to_owned(),
            meta: TaskMeta {
                owner: owner.to_owned(),
                tool: "t".to_owned(),
                created_at: "2026-11-27T00:00:00Z".to_owned(),
                ttl_ms,
                arguments: None,
                asks: TaskAsks::default(),
            },
            status: TaskStatus::Working,
            updated_at: "2026-11-27T00:00:00Z".to_owned(),
            end: None,
            input: None,
            message: None,
        }
    }

    fn change(from: &[TaskStatus], to: TaskStatus) -> Change<'_> {
        Change {
            from,
            to,
            updated_at: "2026-11-27T00:00:01Z",
            end: None,
            input: None,
        }
    }

    #[tokio::test]
    async fn the_cap_counts_the_owners_live_tasks_only() {
        let store = MemoryStore::default();
        store
            .create(&task("a1", "alice", 60_000), 2)
            .await
            .expect("first");
        store
            .create(&task("a2", "alice", 60_000), 2)
            .await
            .expect("second");
        let full = store.create(&task("a3", "alice", 60_000), 2).await;
        assert!(matches!(full, Err(StoreError::Full(2))), "{full:?}");
        store
            .create(&task("b1", "bob", 60_000), 2)
            .await
            .expect("bob's own");
        // An ended task no longer counts; one waiting for input still does.
        let waiting = [TaskStatus::Working];
        assert!(
            store
                .set("a1", change(&waiting, TaskStatus::Completed))
                .await
                .expect("set")
        );
        assert!(
            store
                .set("a2", change(&waiting, TaskStatus::InputRequired))
                .await
                .expect("set")
        );
        store
            .create(&task("a3", "alice", 60_000), 2)
            .await
            .expect("room again");
        let full = store.create(&task("a4", "alice", 60_000), 2).await;
        assert!(matches!(full, Err(StoreError::Full(2))), "{full:?}");
    }

    #[tokio::test]
    async fn the_memory_store_keeps_at_most_its_capacity_ended_tasks_included() {
        let store = MemoryStore::with_capacity(2);
        store
            .create(&task("a", "alice", 60_000), 9)
            .await
            .expect("a");
        store.create(&task("b", "bob", 60_000), 9).await.expect("b");
        let working = [TaskStatus::Working];
        store
            .set("a", change(&working, TaskStatus::Completed))
            .await
            .expect("end");
        let full = store.create(&task("c", "carol", 60_000), 9).await;
        assert!(matches!(full, Err(StoreError::Crowded(2))), "{full:?}");
        // Room again once one expires.
        let store = MemoryStore::with_capacity(1);
        store
            .create(&task("short", "alice", 1), 9)
            .await
            .expect("short");
        tokio::time::sleep(Duration::from_millis(20)).await;
        store
            .create(&task("next", "alice", 60_000), 9)
            .await
            .expect("next");
    }

    #[tokio::test]
    async fn a_task_moves_only_from_the_statuses_a_change_expects() {
        let store = MemoryStore::default();
        store
            .create(&task("t", "alice", 60_000), 5)
            .await
            .expect("create");
        let live = [TaskStatus::Working, TaskStatus::InputRequired];
        assert!(
            store
                .set("t", change(&live, TaskStatus::Cancelled))
                .await
                .expect("cancel")
        );
        // The call's end, after the cancel: nothing changes.
        let working = [TaskStatus::Working];
        assert!(
            !store
                .set("t", change(&working, TaskStatus::Completed))
                .await
                .expect("end")
        );
        let got = store.get("t").await.expect("get").expect("known");
        assert_eq!(got.status, TaskStatus::Cancelled);
        assert!(
            !store
                .set("nope", change(&live, TaskStatus::Cancelled))
                .await
                .expect("unknown")
        );
    }

    #[tokio::test]
    async fn status_messages_are_kept_while_working_and_tasks_expire() {
        let store = MemoryStore::default();
        store
            .create(&task("t", "alice", 60_000), 5)
            .await
            .expect("create");
        store.note("t", "half way").await.expect("note");
        let got = store.get("t").await.expect("get").expect("known");
        assert_eq!(got.message.as_deref(), Some("half way"));
        let working = [TaskStatus::Working];
        store
            .set("t", change(&working, TaskStatus::Completed))
            .await
            .expect("end");
        store.note("t", "late").await.expect("note");
        let got = store.get("t").await.expect("get").expect("known");
        assert_eq!(got.message.as_deref(), Some("half way"));

        store
            .create(&task("short", "alice", 1), 5)
            .await
            .expect("create");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(store.get("short").await.expect("get").is_none());
    }
}
