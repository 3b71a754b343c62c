//! Who owns each 2025-11-25 session, and how many sessions there may be. A session's id is all
//! a request needs to join it (its event stream, its requests in flight), so warden binds every
//! session to the principal that opened it and refuses the id to anyone else, as if it did not
//! exist: another key, however valid, cannot ride a session it did not open.
//!
//! Fail closed: a request naming a session warden did not see opened is refused too.
//!
//! Each session holds memory (rmcp keeps the client's `initialize` parameters and a worker task
//! per session), so an `initialize` first reserves a place: at most `[http] max_sessions`
//! overall and `max_sessions_per_principal` per principal, counting the sessions rmcp still
//! holds (a session goes when its client ends it with `DELETE`, or when rmcp drops it after its
//! idle timeout) and the `initialize` requests in progress.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

/// Session ids -> their openers, and the places reserved by `initialize` requests in progress.
pub struct Sessions {
    state: Mutex<State>,
    /// rmcp's sessions: the live ones.
    rmcp: Arc<LocalSessionManager>,
    max: usize,
    per_principal: usize,
}

#[derive(Default)]
struct State {
    owners: HashMap<String, Arc<str>>,
    /// Reservations in progress, per principal.
    pending: HashMap<Arc<str>, usize>,
}

/// Why a new session was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionRefusal {
    /// `max_sessions` sessions are open.
    Server,
    /// The principal has `max_sessions_per_principal` sessions open (the cap).
    Principal(usize),
}

impl Sessions {
    /// Owners of the sessions of `rmcp`, with at most `max` sessions, `per_principal` per
    /// principal.
    pub fn new(rmcp: Arc<LocalSessionManager>, max: usize, per_principal: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            rmcp,
            max,
            per_principal,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `principal` may use session `id`: it opened it.
    pub fn admits(&self, id: &str, principal: &str) -> bool {
        self.state()
            .owners
            .get(id)
            .is_some_and(|owner| &**owner == principal)
    }

    /// A place for one more session of `principal`, held until the returned reservation is
    /// bound to the session opened or dropped; or why there is none.
    pub async fn reserve(
        self: &Arc<Self>,
        principal: &Arc<str>,
    ) -> Result<Reservation, SessionRefusal> {
        let live = self.rmcp.sessions.read().await;
        let mut state = self.state();
        // Forget sessions rmcp no longer holds (ended, idle, or failed to open).
        state.owners.retain(|id, _| live.contains_key(id.as_str()));
        drop(live);
        let pending: usize = state.pending.values().sum();
        if state.owners.len() + pending >= self.max {
            return Err(SessionRefusal::Server);
        }
        let open = state
            .owners
            .values()
            .filter(|owner| *owner == principal)
            .count();
        let reserved = state.pending.entry(principal.clone()).or_insert(0);
        if open + *reserved >= self.per_principal {
            return Err(SessionRefusal::Principal(self.per_principal));
        }
        *reserved += 1;
        Ok(Reservation {
            sessions: self.clone(),
            principal: principal.clone(),
        })
    }

    /// Closes session `id` in rmcp and forgets it.
    pub async fn close(&self, id: &str) {
        use rmcp::transport::streamable_http_server::session::SessionManager as _;
        self.end(id);
        if let Err(error) = self.rmcp.close_session(&Arc::from(id)).await {
            tracing::debug!(%error, "closing a session");
        }
    }

    /// Session `id` was ended by its client.
    pub fn end(&self, id: &str) {
        self.state().owners.remove(id);
    }

    /// Sessions open now: those rmcp holds (or, while its map is busy, those bound).
    pub fn open(&self) -> usize {
        match self.rmcp.sessions.try_read() {
            Ok(sessions) => sessions.len(),
            Err(_) => self.state().owners.len(),
        }
    }

    /// Sessions bound now (some may have ended in rmcp since).
    #[cfg(test)]
    fn bound(&self) -> usize {
        self.state().owners.len()
    }
}

/// A place for one session of one principal.
pub struct Reservation {
    sessions: Arc<Sessions>,
    principal: Arc<str>,
}

impl Reservation {
    /// The session opened is `id`: it is its principal's alone from now on.
    pub fn bind(self, id: &str) {
        let mut state = self.sessions.state();
        state.owners.insert(id.to_owned(), self.principal.clone());
        // The place is now the session's: `drop` releases the reservation.
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut state = self.sessions.state();
        if let Some(n) = state.pending.get_mut(&self.principal) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.pending.remove(&self.principal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::transport::streamable_http_server::session::SessionManager as _;

    #[tokio::test]
    async fn a_session_admits_only_its_opener_until_it_ends() {
        let rmcp = Arc::new(LocalSessionManager::default());
        let sessions = Sessions::new(rmcp, 10, 10);
        assert!(
            !sessions.admits("s1", "ann"),
            "unknown sessions are refused"
        );
        let ann: Arc<str> = Arc::from("ann");
        sessions.reserve(&ann).await.expect("a place").bind("s1");
        assert!(sessions.admits("s1", "ann"));
        assert!(!sessions.admits("s1", "bob"));
        sessions.end("s1");
        assert!(!sessions.admits("s1", "ann"));
    }

    #[tokio::test]
    async fn sessions_are_capped_per_principal_and_overall() {
        let rmcp = Arc::new(LocalSessionManager::default());
        let sessions = Sessions::new(rmcp.clone(), 4, 2);
        let (ann, bob): (Arc<str>, Arc<str>) = (Arc::from("ann"), Arc::from("bob"));
        let mut opened = Vec::new();
        for _ in 0..2 {
            let (id, _transport) = rmcp.create_session().await.expect("session");
            sessions.reserve(&ann).await.expect("a place").bind(&id);
            opened.push(id);
        }
        assert_eq!(
            sessions.reserve(&ann).await.err(),
            Some(SessionRefusal::Principal(2))
        );
        // In progress counts as open.
        let _first = sessions.reserve(&bob).await.expect("bob's first");
        let second = sessions.reserve(&bob).await.expect("bob's second");
        assert_eq!(
            sessions.reserve(&bob).await.err(),
            Some(SessionRefusal::Server)
        );
        drop(second);
        assert!(sessions.reserve(&bob).await.is_ok(), "released");
        // A session rmcp dropped frees its place.
        rmcp.close_session(&opened[0]).await.expect("close");
        assert!(sessions.reserve(&ann).await.is_ok());
        assert_eq!(sessions.bound(), 1);
    }
}
