//! `warden status`: what a running server serves and has answered, from outside it.
//!
//! Every `warden serve` answers on a Unix socket of its own, `PID.sock` in a directory only
//! its user can open ([`socket_dir`]): a client that connects gets one JSON [`Status`] and
//! the connection closes. Nothing can be sent to the server this way. Only the server's own
//! user (or root) is answered, checked by the peer's credentials as well as by the directory's
//! permissions. `warden status` reads every socket there.

mod socket;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

pub use socket::{StatusError, StatusSocket, query_all, socket_dir};

use crate::audit::rfc3339;
use crate::capabilities;
use crate::host::reload::Served;
use crate::runtime::{CacheOutcome, PluginState};

/// A running server, as `warden status` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    /// The server's process id.
    pub pid: u32,
    /// warden's version.
    pub version: String,
    /// The manifest served (absolute when it could be resolved).
    pub manifest: PathBuf,
    /// `stdio` or `http`.
    pub transport: String,
    /// The HTTP address, when serving HTTP.
    pub listen: Option<String>,
    /// When the server started (RFC 3339, UTC).
    pub started: String,
    /// Seconds since.
    pub uptime_s: u64,
    /// Reloads that put a new manifest in force, and that kept the old one.
    pub reloads: u64,
    pub failed_reloads: u64,
    /// The last reload's error, if it failed.
    pub last_reload_error: Option<String>,
    /// Every plugin, in manifest order.
    pub plugins: Vec<PluginStatus>,
    /// Calls per tool and outcome since start (`-`: unknown tools and refused requests).
    pub calls: BTreeMap<String, BTreeMap<String, u64>>,
    /// Calls waiting for an operator's approval now (`warden approvals list` shows them).
    #[serde(default)]
    pub waiting_for_operator: usize,
    /// The id of the key the audit log's checkpoints are signed with, when they are.
    #[serde(default)]
    pub audit_key: Option<String>,
    /// Each `[[audit.ship]]` sink: the first `seq` it has not acknowledged against the
    /// log's next `seq`.
    #[serde(default)]
    pub shipping: Vec<crate::ship::ShipStatus>,
}

/// One plugin of a running server: its state, grants and tools. Names only: no secret or
/// environment value leaves the server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PluginStatus {
    pub name: String,
    pub component: PathBuf,
    /// `compiling`, `baseline` (callable on its Winch build while Cranelift compiles), `ready`
    /// or `failed`.
    pub state: String,
    /// `cache` or `compiled`, once ready.
    pub source: Option<String>,
    /// What it is granted, as `warden check --json` reports it, by key (`dirs`, `env`, ...):
    /// names and sources only, never a value.
    pub grants: serde_json::Map<String, serde_json::Value>,
    /// The same as `warden check` prints it, a line each.
    pub grant_lines: Vec<String>,
    pub tools: Vec<String>,
    /// Its prompts, resources and templates, and whether it completes them.
    #[serde(default)]
    pub serves: crate::catalog::Surface,
}

/// What the server says about itself besides its gate.
#[derive(Clone, Debug)]
pub struct ServerFacts {
    pub transport: &'static str,
    /// The HTTP address, once bound (`None` over stdio, and until then).
    pub listen: Arc<OnceLock<SocketAddr>>,
    /// The audit shippers, when `[[audit.ship]]` configures any.
    pub shipping: Option<Arc<crate::ship::Shippers>>,
}

/// The status of the server serving `served`.
pub fn snapshot(served: &Served, facts: &ServerFacts) -> Status {
    let gate = served.live().current();
    let stats = gate.stats();
    let history = served.history();
    let plugins = gate
        .catalog()
        .plugins()
        .iter()
        .map(|plugin| {
            let config = &plugin.config;
            PluginStatus {
                name: config.name.clone(),
                component: config.component.clone(),
                state: match plugin.state() {
                    PluginState::Compiling => "compiling",
                    PluginState::Baseline => "baseline",
                    PluginState::Ready => "ready",
                    PluginState::Failed => "failed",
                }
                .to_owned(),
                source: plugin.compiled().map(|c| {
                    match c.cache {
                        CacheOutcome::Hit => "cache",
                        CacheOutcome::Compiled => "compiled",
                    }
                    .to_owned()
                }),
                grants: capabilities::grants_report(config),
                grant_lines: capabilities::grants_summary(config),
                tools: gate
                    .catalog()
                    .iter()
                    .filter(|tool| std::sync::Arc::ptr_eq(&tool.plugin, plugin))
                    .map(|tool| tool.name().to_owned())
                    .collect(),
                serves: gate.catalog().surface(plugin),
            }
        })
        .collect();
    let calls = stats
        .snapshot()
        .into_iter()
        .map(|(tool, outcomes)| {
            let outcomes = outcomes
                .into_iter()
                .map(|(outcome, n)| (outcome.to_owned(), n))
                .collect();
            (tool, outcomes)
        })
        .collect();
    Status {
        pid: std::process::id(),
        version: env!("WARDEN_VERSION").to_owned(),
        manifest: std::fs::canonicalize(served.path())
            .unwrap_or_else(|_| served.path().to_path_buf()),
        transport: facts.transport.to_owned(),
        listen: facts.listen.get().map(ToString::to_string),
        started: rfc3339(stats.started()),
        uptime_s: stats.started().elapsed().map_or(0, |d| d.as_secs()),
        reloads: history.done,
        failed_reloads: history.failed,
        last_reload_error: history.last.and_then(|(_, error)| error),
        plugins,
        calls,
        waiting_for_operator: gate.pending_approvals().list().len(),
        audit_key: gate.audit_key().map(|key| key.id()),
        shipping: facts
            .shipping
            .as_ref()
            .map(|s| s.status())
            .unwrap_or_default(),
    }
}
