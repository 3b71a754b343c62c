//! Tasks (the `io.modelcontextprotocol/tasks` extension): a tool's `task` and `task_timeout`
//! keys, and the global `[tasks]` section (where task state lives, how long it is kept, how
//! many may run).
//!
//! ```toml
//! [tasks]
//! store = "redis://127.0.0.1:6379/0"   # or "memory" (the default): one process only
//! ttl = "1h"                           # how long a task is kept after it was created
//! max_per_principal = 10               # live tasks one principal may have at once
//!
//! [plugins.reports.tools.build-report]
//! task = "optional"                    # runs as a task when the client supports tasks
//! task_timeout = "30m"                 # the time limit of a call run as a task
//! task_after = "2s"                     # first an ordinary call (questions in rounds) for 2s
//! ```

use std::time::Duration;

use super::error::Location;
use super::network::SecretValue;
use super::reader::{Table, Value};

/// Whether a tool runs as a task (`task = "optional" | "required"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskMode {
    /// A client that declared the tasks extension gets a task; any other client a plain
    /// result, within the plugin's `timeout`.
    Optional,
    /// Only as a task: a client that did not declare the extension gets `-32021`.
    Required,
}

impl TaskMode {
    /// The manifest's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskMode::Optional => "optional",
            TaskMode::Required => "required",
        }
    }
}

/// A tool's task settings: `task` and `task_timeout` of its `[plugins.NAME.tools.FUNCTION]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ToolTask {
    /// `task`.
    pub mode: TaskMode,
    /// `task_timeout`: the wall-clock limit of a call run as a task, in place of the plugin's
    /// `timeout`. `None`: [`ToolTask::DEFAULT_TIMEOUT`], or the plugin's `timeout` when that
    /// is longer.
    pub timeout: Option<Duration>,
    /// `task_after`: how long the call first runs as an ordinary call (its questions asked
    /// over input-required rounds) before it becomes a task. `None`: a task at once.
    pub after: Option<Duration>,
}

impl ToolTask {
    /// Default `task_timeout`: 10 minutes.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
    /// Longest `task_timeout`: 24 hours.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
    /// Longest `task_after`: one minute (a request held open longer is what tasks avoid).
    pub const MAX_AFTER: Duration = Duration::from_secs(60);
}

/// Where task state lives (`[tasks] store`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskStoreKind {
    /// `"memory"`: in this process; a task is known only to the replica that created it, and
    /// is gone when it stops.
    Memory,
    /// A Redis URL: shared by every warden process using it, so any replica can answer
    /// `tasks/get` and `tasks/cancel`. The URL may hold a password: its `Debug` is redacted.
    Redis {
        /// The server's URL.
        url: SecretValue,
        /// Prepended to every Redis key (`prefix`). Default [`TaskSettings::DEFAULT_PREFIX`].
        prefix: String,
    },
}

/// `[tasks]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSettings {
    /// `store`.
    pub store: TaskStoreKind,
    /// `ttl`: how long a task is kept after it was created, whatever its state; a task still
    /// running then is cancelled.
    pub ttl: Duration,
    /// `poll_interval`: the `pollIntervalMs` suggested to clients.
    pub poll_interval: Duration,
    /// `max_per_principal`: live tasks (working or waiting for input) one principal may have
    /// at once (across replicas sharing a Redis store).
    pub max_per_principal: u32,
    /// `max_running`: tasks this process runs at once, whoever created them.
    pub max_running: u32,
    /// The `[tasks]` table, when the manifest has one.
    pub location: Option<Location>,
}

impl TaskSettings {
    /// Default `ttl`: one hour.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
    /// Longest `ttl`: seven days.
    pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
    /// Default `poll_interval`: 1 second.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
    /// Default `max_per_principal`.
    pub const DEFAULT_MAX_PER_PRINCIPAL: u32 = 10;
    /// Default `max_running`.
    pub const DEFAULT_MAX_RUNNING: u32 = 100;
    /// The default Redis key prefix.
    pub const DEFAULT_PREFIX: &str = "warden:tasks:";
}

impl Default for TaskSettings {
    fn default() -> Self {
        TaskSettings {
            store: TaskStoreKind::Memory,
            ttl: Self::DEFAULT_TTL,
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
            max_per_principal: Self::DEFAULT_MAX_PER_PRINCIPAL,
            max_running: Self::DEFAULT_MAX_RUNNING,
            location: None,
        }
    }
}

/// `task = "optional" | "required"`.
pub(super) fn mode(v: &Value<'_, '_>) -> Option<TaskMode> {
    let s = v.string()?;
    match s.as_str() {
        "optional" => Some(TaskMode::Optional),
        "required" => Some(TaskMode::Required),
        _ => {
            v.error(format!(
                "invalid task {s:?}: expected \"optional\" (a task when the client supports \
                 tasks) or \"required\" (only as a task)"
            ));
            None
        }
    }
}

/// The `task`, `task_timeout` and `task_after` keys of a tool's table.
pub(super) fn tool_task(table: &Table<'_, '_>) -> Option<ToolTask> {
    let mode = table.get("task").and_then(|v| mode(&v));
    let timeout = table.get("task_timeout").and_then(|v| {
        if table.get("task").is_none() {
            v.key_error("`task_timeout` applies only to a tool with `task = \"optional\"` or `\"required\"`");
            return None;
        }
        super::network::duration(&v, "task_timeout", ToolTask::MAX_TIMEOUT)
    });
    let after = table.get("task_after").and_then(|v| {
        if table.get("task").is_none() {
            v.key_error(
                "`task_after` applies only to a tool with `task = \"optional\"` or `\"required\"`",
            );
            return None;
        }
        super::network::duration(&v, "task_after", ToolTask::MAX_AFTER)
    });
    mode.map(|mode| ToolTask {
        mode,
        timeout,
        after,
    })
}

/// `[tasks]`.
pub(super) fn settings(table: &Table<'_, '_>) -> TaskSettings {
    let defaults = TaskSettings::default();
    let store = table.get("store").and_then(|v| {
        let s = v.string()?;
        if s == "memory" {
            return Some(TaskStoreKind::Memory);
        }
        if s.split_once("://").map(|(scheme, _)| scheme) != Some("redis")
            || redis::Client::open(s.as_str()).is_err()
        {
            // Never echo the value: it may be a URL with a password.
            v.error(
                "expected \"memory\" or a Redis URL such as \"redis://127.0.0.1:6379/0\" (TLS, \
                 rediss://, is not supported yet)",
            );
            return None;
        }
        Some(TaskStoreKind::Redis {
            url: SecretValue::new(s),
            prefix: TaskSettings::DEFAULT_PREFIX.to_owned(),
        })
    });
    let prefix = table.get("prefix").and_then(|v| {
        let prefix = v.string()?;
        if !matches!(store, Some(TaskStoreKind::Redis { .. })) {
            v.key_error("`prefix` applies only to a Redis store (`store = \"redis://...\"`)");
            return None;
        }
        if prefix.len() > 64 || prefix.chars().any(|c| c.is_control() || c.is_whitespace()) {
            v.error("a prefix is at most 64 characters, without spaces or control characters");
            return None;
        }
        Some(prefix)
    });
    let ttl = table
        .get("ttl")
        .and_then(|v| super::network::duration(&v, "ttl", TaskSettings::MAX_TTL))
        .unwrap_or(defaults.ttl);
    let poll_interval = table
        .get("poll_interval")
        .and_then(|v| {
            super::network::duration(&v, "poll_interval", Duration::from_secs(60)).and_then(|d| {
                if d < Duration::from_millis(1) {
                    v.error("poll_interval must be at least 1ms");
                    return None;
                }
                Some(d)
            })
        })
        .unwrap_or(defaults.poll_interval);
    let max_per_principal = table
        .get("max_per_principal")
        .and_then(|v| super::policy::int_in(&v, "max_per_principal", 1..=10_000))
        .unwrap_or(defaults.max_per_principal);
    let max_running = table
        .get("max_running")
        .and_then(|v| super::policy::int_in(&v, "max_running", 1..=100_000))
        .unwrap_or(defaults.max_running);
    table.finish();
    let store = match (store, prefix) {
        (Some(TaskStoreKind::Redis { url, .. }), Some(prefix)) => {
            TaskStoreKind::Redis { url, prefix }
        }
        (Some(store), _) => store,
        (None, _) => TaskStoreKind::Memory,
    };
    TaskSettings {
        store,
        ttl,
        poll_interval,
        max_per_principal,
        max_running,
        location: Some(table.location()),
    }
}
