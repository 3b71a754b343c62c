//! States already used: each `requestState` answers one retried call, so an approval (or an
//! answer) cannot be replayed to run the same call again while the state is still valid.
//!
//! A state is recorded once it opened (a forged one never is, so junk cannot fill the
//! record), until it would have expired anyway. The record is per process: replicas behind
//! one load balancer do not share it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use sha2::{Digest, Sha256};

/// States remembered at most; past this, the expired ones go, then the oldest.
const MAX_SPENT: usize = 100_000;

/// The states used so far, by digest, with when each would expire.
#[derive(Default)]
pub struct Spent {
    seen: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Spent {
    fn seen(&self) -> MutexGuard<'_, HashMap<[u8; 32], Instant>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Record `state` as used, remembered until `until`; `false` when it was used already.
    pub fn spend(&self, state: &str, until: Instant) -> bool {
        let digest: [u8; 32] = Sha256::digest(state.as_bytes()).into();
        let now = Instant::now();
        let mut seen = self.seen();
        if seen.get(&digest).is_some_and(|expiry| *expiry > now) {
            return false;
        }
        if seen.len() >= MAX_SPENT {
            seen.retain(|_, expiry| *expiry > now);
            if seen.len() >= MAX_SPENT
                && let Some(oldest) = seen.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k)
            {
                seen.remove(&oldest);
            }
        }
        seen.insert(digest, until);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_state_is_spent_once_until_it_expires() {
        let spent = Spent::default();
        let later = Instant::now() + Duration::from_secs(60);
        assert!(spent.spend("state-a", later));
        assert!(!spent.spend("state-a", later), "replayed");
        assert!(spent.spend("state-b", later));
        // Once its expiry has passed, the record no longer matters (the state itself is
        // refused as expired by then).
        assert!(spent.spend("state-c", Instant::now()));
        assert!(spent.spend("state-c", later));
    }
}
