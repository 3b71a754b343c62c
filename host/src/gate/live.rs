//! The gate in force, replaced whole when the manifest is reloaded.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::Gate;

/// The gate the transports serve, swapped atomically on reload.
///
/// A call takes the current gate once, at its start, and keeps it to the end: calls in flight
/// finish on the plugins, limits and filters they started with, and the old gate (with its
/// plugins) is dropped when the last of them returns. Sessions learn of a swap through
/// [`LiveGate::changes`] and tell their clients the tool list changed.
pub struct LiveGate {
    current: ArcSwap<Gate>,
    generation: watch::Sender<u64>,
}

impl LiveGate {
    /// Serve `gate` until it is replaced.
    pub fn new(gate: Arc<Gate>) -> Self {
        Self {
            current: ArcSwap::new(gate),
            generation: watch::Sender::new(0),
        }
    }

    /// The gate in force now.
    pub fn current(&self) -> Arc<Gate> {
        self.current.load_full()
    }

    /// Put `gate` in force for every call that starts from now on, and tell every
    /// [`changes`](Self::changes) receiver.
    pub fn replace(&self, gate: Arc<Gate>) {
        self.current.store(gate);
        self.generation.send_modify(|generation| *generation += 1);
    }

    /// A receiver that sees every later [`replace`](Self::replace) (as a changed generation
    /// number).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}
