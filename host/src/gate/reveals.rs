//! Hidden tools and their reveal (dynamic toolsets): a tool the operator marked
//! `hidden = true` is neither listed nor callable until its plugin reveals it, from a tool
//! call that ends well (`reveal-tools`), to the principal whose call it was.
//!
//! A plugin may only reveal its own hidden tools, and only to a principal that holds their
//! roles: any other name is ignored with a log line, so no plugin can reveal another plugin's
//! tool, one the operator did not mark, or one the principal may not use. What was revealed
//! is kept in memory, per principal, in the gate: a reload builds a new gate, so every hidden
//! tool is hidden again (a call that straddles a reload reveals in the gate it started in,
//! which is gone). Each reveal that shows something new is announced through
//! [`ToolReveals`], one channel kept across reloads, to the transports, which tell that
//! principal's sessions and `subscriptions/listen` streams that the tool list changed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::{Gate, Principal};
use crate::audit::{MAX_RECORDED_NAME, bounded};

/// The most principals that may have tools revealed at once, per gate; a reveal for one more
/// is ignored (with a log line) until one of them has all its tools hidden again, or the
/// next reload.
pub const MAX_REVEALING_PRINCIPALS: usize = 10_000;

/// How many announcements wait for a slow listener before the oldest are dropped for it.
const BACKLOG: usize = 256;

/// Tools were revealed to this principal: its tool list changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolsRevealed {
    /// The principal's name.
    pub principal: Arc<str>,
}

/// Where reveals are announced: every session and listen stream listens here. Kept across
/// reloads by passing the same one in [`super::GateOptions`].
pub struct ToolReveals {
    sender: broadcast::Sender<ToolsRevealed>,
}

impl Default for ToolReveals {
    fn default() -> Self {
        Self {
            sender: broadcast::Sender::new(BACKLOG),
        }
    }
}

impl ToolReveals {
    /// A receiver of every reveal announced from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ToolsRevealed> {
        self.sender.subscribe()
    }

    fn announce(&self, principal: &str) {
        // No receiver: no client listens, nothing to tell.
        let _ = self.sender.send(ToolsRevealed {
            principal: principal.into(),
        });
    }
}

/// The hidden tools revealed so far, by principal name: indices into the gate's tools.
#[derive(Default)]
pub(super) struct Revealed {
    by_principal: Mutex<HashMap<Arc<str>, HashSet<usize>>>,
}

impl Revealed {
    fn contains(&self, principal: &str, tool: usize) -> bool {
        self.by_principal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(principal)
            .is_some_and(|tools| tools.contains(&tool))
    }
}

impl Gate {
    /// The channel of reveals.
    pub fn tool_reveals(&self) -> broadcast::Receiver<ToolsRevealed> {
        self.reveals.subscribe()
    }

    /// Whether the tool at `index` shows for `principal`: not hidden, or revealed to it. Its
    /// roles are checked apart.
    pub(super) fn shown(&self, index: usize, principal: &Principal) -> bool {
        !self.tools[index].entry.hidden || self.revealed.contains(&principal.name, index)
    }

    /// The WIT functions of the plugin named `plugin` revealed to `principal` now.
    pub(super) fn revealed_functions(&self, principal: &Principal, plugin: &str) -> Vec<String> {
        let by_principal = self
            .revealed
            .by_principal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(revealed) = by_principal.get(&*principal.name) else {
            return Vec::new();
        };
        let mut indices: Vec<usize> = revealed.iter().copied().collect();
        indices.sort_unstable();
        indices
            .into_iter()
            .map(|i| &self.tools[i].entry)
            .filter(|entry| entry.plugin.config.name == plugin)
            .map(|entry| entry.function().name.clone())
            .collect()
    }

    /// Reveal to `principal` (`true`), or hide again, in order, the tools of the plugin named
    /// `plugin` whose WIT functions the plugin named in `changes`, keeping only its hidden
    /// ones that `principal` may use. Returns the names of the tools newly revealed and of
    /// those hidden again; when either is not empty, announces it.
    pub(super) fn change_toolset(
        &self,
        principal: &Principal,
        plugin: &str,
        changes: Vec<(bool, String)>,
    ) -> (Vec<String>, Vec<String>) {
        let (mut revealed, mut hidden) = (Vec::new(), Vec::new());
        if changes.is_empty() {
            return (revealed, hidden);
        }
        let mut by_principal = self
            .revealed
            .by_principal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (reveal, function) in changes {
            let found = self.tools.iter().position(|tool| {
                tool.entry.plugin.config.name == plugin && tool.entry.function().name == function
            });
            let refused = match found {
                None => Some("the plugin exports no such tool"),
                Some(i) if !self.tools[i].entry.hidden => Some("the tool is not marked hidden"),
                Some(i) if !self.tools[i].access.allows(principal) => {
                    Some("the principal holds none of the tool's roles")
                }
                Some(_)
                    if reveal
                        && !by_principal.contains_key(&*principal.name)
                        && by_principal.len() >= MAX_REVEALING_PRINCIPALS =>
                {
                    Some("too many principals have revealed tools since the last reload")
                }
                Some(_) => None,
            };
            let (Some(i), None) = (found, refused) else {
                tracing::info!(
                    plugin,
                    function = &*bounded(&function, MAX_RECORDED_NAME),
                    principal = %principal.name,
                    why = refused.unwrap_or_default(),
                    "a plugin asked to reveal or hide a tool it may not; ignored"
                );
                continue;
            };
            let name = self.tools[i].entry.name().to_owned();
            if reveal {
                if by_principal
                    .entry(principal.name.clone())
                    .or_default()
                    .insert(i)
                {
                    hidden.retain(|n| *n != name);
                    revealed.push(name);
                }
            } else if let Some(tools) = by_principal.get_mut(&*principal.name)
                && tools.remove(&i)
            {
                if tools.is_empty() {
                    by_principal.remove(&*principal.name);
                }
                revealed.retain(|n| *n != name);
                hidden.push(name);
            }
        }
        drop(by_principal);
        if !revealed.is_empty() || !hidden.is_empty() {
            tracing::info!(
                plugin,
                principal = %principal.name,
                ?revealed,
                ?hidden,
                "the principal's hidden tools changed"
            );
            self.reveals.announce(&principal.name);
        }
        (revealed, hidden)
    }
}
