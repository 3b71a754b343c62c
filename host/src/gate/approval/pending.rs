//! Calls waiting for an operator's answer (`warden approvals`), for clients that cannot ask
//! their user. Each waits at most `[approval] timeout`; an answer reaches exactly the call it
//! names, by its request id. Nothing here is persisted: a restart drops the waiting calls,
//! which are then refused as timed out.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// A call waiting for an operator, as `warden approvals list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingApproval {
    /// The call's request id: the id to answer, and the audit record's.
    pub id: String,
    /// The tool.
    pub tool: String,
    /// Its plugin.
    pub plugin: String,
    /// Who calls.
    pub principal: String,
    /// The arguments, redacted and cut as in the question a user would see.
    pub arguments: String,
    /// Why it asks.
    pub reason: String,
    /// When it started waiting (RFC 3339).
    pub asked_at: String,
}

/// An operator's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run the call; `by` names the operator.
    Allow { by: String },
    /// Refuse it.
    Deny { by: String },
}

impl Decision {
    /// The operator who answered.
    pub fn by(&self) -> &str {
        match self {
            Decision::Allow { by } | Decision::Deny { by } => by,
        }
    }
}

/// Why an answer was not taken.
#[derive(Debug, thiserror::Error)]
pub enum UnknownApproval {
    /// No call with that id is waiting (it was answered, timed out, or never existed).
    #[error("no call {0} is waiting for approval")]
    NotWaiting(String),
    /// The operator is the principal that made the call: nobody approves their own call
    /// (the call stays waiting for another operator).
    #[error("an operator cannot approve their own call")]
    OwnCall,
}

struct Waiting {
    shown: PendingApproval,
    answer: oneshot::Sender<Decision>,
}

/// The waiting calls, by id.
#[derive(Default)]
pub struct PendingApprovals {
    waiting: Mutex<BTreeMap<String, Waiting>>,
}

/// Takes a call off the list however its wait ends (answered, timed out, dropped).
struct Listed<'a> {
    pending: &'a PendingApprovals,
    id: String,
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        self.pending.waiting().remove(&self.id);
    }
}

impl PendingApprovals {
    fn waiting(&self) -> MutexGuard<'_, BTreeMap<String, Waiting>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The calls waiting now, oldest first.
    pub fn list(&self) -> Vec<PendingApproval> {
        let mut list: Vec<PendingApproval> =
            self.waiting().values().map(|w| w.shown.clone()).collect();
        list.sort_by(|a, b| a.asked_at.cmp(&b.asked_at));
        list
    }

    /// Answer the call `id`. An answer by the principal that made the call is refused, and
    /// the call keeps waiting.
    pub fn decide(&self, id: &str, decision: Decision) -> Result<PendingApproval, UnknownApproval> {
        let mut list = self.waiting();
        match list.get(id) {
            None => return Err(UnknownApproval::NotWaiting(id.to_owned())),
            Some(w) if w.shown.principal == decision.by() => {
                return Err(UnknownApproval::OwnCall);
            }
            Some(_) => {}
        }
        let waiting = list
            .remove(id)
            .ok_or_else(|| UnknownApproval::NotWaiting(id.to_owned()))?;
        drop(list);
        // The call may have just given up: then the answer reaches nobody, as if late.
        let _ = waiting.answer.send(decision);
        Ok(waiting.shown)
    }

    /// List `shown` and wait for its answer, at most `timeout`; `None` when none came.
    pub(super) async fn wait(&self, shown: PendingApproval, timeout: Duration) -> Option<Decision> {
        let (answer, answered) = oneshot::channel();
        let id = shown.id.clone();
        tracing::info!(request = %id, tool = %shown.tool, principal = %shown.principal,
            "call waiting for an operator's approval (`warden approvals`)");
        self.waiting().insert(id.clone(), Waiting { shown, answer });
        let _listed = Listed { pending: self, id };
        tokio::time::timeout(timeout, answered).await.ok()?.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(id: &str) -> PendingApproval {
        PendingApproval {
            id: id.to_owned(),
            tool: "files__write_text".to_owned(),
            plugin: "files".to_owned(),
            principal: "bot".to_owned(),
            arguments: "{}".to_owned(),
            reason: "ask".to_owned(),
            asked_at: "2026-11-27T00:00:00.000Z".to_owned(),
        }
    }

    #[tokio::test]
    async fn an_answer_reaches_the_call_it_names_and_the_list_empties() {
        let pending = std::sync::Arc::new(PendingApprovals::default());
        let waiter = {
            let pending = pending.clone();
            tokio::spawn(async move { pending.wait(shown("a1"), Duration::from_secs(30)).await })
        };
        while pending.list().is_empty() {
            tokio::task::yield_now().await;
        }
        assert!(
            pending
                .decide("nope", Decision::Deny { by: "op".into() })
                .is_err()
        );
        pending
            .decide("a1", Decision::Allow { by: "op".into() })
            .expect("waiting");
        assert_eq!(
            waiter.await.expect("joined"),
            Some(Decision::Allow { by: "op".into() })
        );
        assert!(pending.list().is_empty());
    }

    #[tokio::test]
    async fn nobody_approves_their_own_call() {
        let pending = std::sync::Arc::new(PendingApprovals::default());
        let waiter = {
            let pending = pending.clone();
            tokio::spawn(async move { pending.wait(shown("a3"), Duration::from_secs(30)).await })
        };
        while pending.list().is_empty() {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            pending.decide("a3", Decision::Allow { by: "bot".into() }),
            Err(UnknownApproval::OwnCall)
        ));
        // Still waiting, for another operator.
        assert_eq!(pending.list().len(), 1);
        pending
            .decide("a3", Decision::Deny { by: "op".into() })
            .expect("waiting");
        assert_eq!(
            waiter.await.expect("joined"),
            Some(Decision::Deny { by: "op".into() })
        );
    }

    #[tokio::test]
    async fn a_wait_times_out_and_leaves_the_list() {
        let pending = PendingApprovals::default();
        assert_eq!(
            pending.wait(shown("a2"), Duration::from_millis(20)).await,
            None
        );
        assert!(pending.list().is_empty());
    }
}
