//! Which principals recently received private output: the flow rule's memory.
//!
//! A tool with `data = "private"` marks the principal it answered; a later call of that
//! principal to a tool that can reach the open world, within `[approval] window`, follows
//! `[approval] after_private`. Marks are per principal (so a stateless client is covered
//! across requests) and per process; with `[limits] store`, the approver also keeps them in
//! the store shared by replicas (`gate/shared_limits.rs`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Marks kept at most; past this, marks older than the longest window are dropped first.
const MAX_MARKS: usize = 100_000;

/// The marks: principal -> (when, which tool).
#[derive(Default)]
pub struct Flow {
    marks: Mutex<HashMap<String, (Instant, String)>>,
}

impl Flow {
    fn marks(&self) -> MutexGuard<'_, HashMap<String, (Instant, String)>> {
        self.marks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `principal` just received private output from `tool`.
    pub fn mark(&self, principal: &str, tool: &str) {
        let mut marks = self.marks();
        if marks.len() >= MAX_MARKS && !marks.contains_key(principal) {
            let horizon = crate::manifest::ApprovalSettings::MAX_WINDOW;
            marks.retain(|_, (at, _)| at.elapsed() < horizon);
            if marks.len() >= MAX_MARKS {
                // Still full: forget the oldest, rather than grow without bound.
                if let Some(oldest) = marks
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
                {
                    marks.remove(&oldest);
                }
            }
        }
        marks.insert(principal.to_owned(), (Instant::now(), tool.to_owned()));
    }

    /// The private tool `principal` received output from within `window`, if any.
    pub fn marked(&self, principal: &str, window: Duration) -> Option<String> {
        let marks = self.marks();
        let (at, tool) = marks.get(principal)?;
        (at.elapsed() < window).then(|| tool.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_per_principal_and_expires_with_its_window() {
        let flow = Flow::default();
        flow.mark("alice", "files__read_text");
        assert_eq!(
            flow.marked("alice", Duration::from_secs(60)).as_deref(),
            Some("files__read_text")
        );
        assert_eq!(flow.marked("bob", Duration::from_secs(60)), None);
        assert_eq!(flow.marked("alice", Duration::ZERO), None);
    }
}
