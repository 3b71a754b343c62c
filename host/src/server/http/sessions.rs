//! Who owns each 2025-11-25 session. A session's id is all a request needs to join it (its
//! event stream, its requests in flight), so warden binds every session to the principal that
//! opened it and refuses the id to anyone else, as if it did not exist: another key, however
//! valid, cannot ride a session it did not open.
//!
//! Fail closed: a request naming a session warden did not see opened is refused too. Entries go
//! when the client ends the session (`DELETE`) or when the session has been idle as long as
//! rmcp keeps idle sessions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::transport::streamable_http_server::session::local::SessionConfig;

/// How long an idle session lives in rmcp's session manager (warden uses its default).
const IDLE: Duration = SessionConfig::DEFAULT_KEEP_ALIVE;

/// Bindings are swept for idle ones once there are this many.
const SWEEP_AT: usize = 1024;

struct Owner {
    principal: Arc<str>,
    seen: Instant,
}

/// Session id -> the principal that opened it.
#[derive(Default)]
pub struct Sessions {
    owners: Mutex<HashMap<String, Owner>>,
}

impl Sessions {
    /// Whether `principal` may use session `id`: it opened it. Counts as the session's use.
    pub fn admits(&self, id: &str, principal: &str) -> bool {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        match owners.get_mut(id) {
            Some(owner) if &*owner.principal == principal => {
                owner.seen = Instant::now();
                true
            }
            _ => false,
        }
    }

    /// Session `id` was opened by `principal`.
    pub fn bind(&self, id: &str, principal: Arc<str>) {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        if owners.len() >= SWEEP_AT {
            owners.retain(|_, owner| owner.seen.elapsed() < IDLE);
        }
        owners.insert(
            id.to_owned(),
            Owner {
                principal,
                seen: Instant::now(),
            },
        );
    }

    /// Session `id` was ended by its client.
    pub fn end(&self, id: &str) {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        owners.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_admits_only_its_opener_until_it_ends() {
        let sessions = Sessions::default();
        assert!(
            !sessions.admits("s1", "ann"),
            "unknown sessions are refused"
        );
        sessions.bind("s1", Arc::from("ann"));
        assert!(sessions.admits("s1", "ann"));
        assert!(!sessions.admits("s1", "bob"));
        sessions.end("s1");
        assert!(!sessions.admits("s1", "ann"));
    }
}
