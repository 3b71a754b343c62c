//! Memory and table limits of one call's store, remembering when a limit was hit so that a
//! guest that traps after a failed allocation is reported as out of memory, not as a crash.

use wasmtime::ResourceLimiter;

/// The resource limiter of a call's store.
pub struct CallLimiter {
    memory: usize,
    /// Set when a memory growth was refused.
    pub memory_exhausted: bool,
}

impl CallLimiter {
    /// A limiter allowing each linear memory up to `memory` bytes.
    pub fn new(memory: u64) -> Self {
        Self {
            memory: usize::try_from(memory).unwrap_or(usize::MAX),
            memory_exhausted: false,
        }
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory;
        if !allowed {
            self.memory_exhausted = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        32
    }

    fn memories(&self) -> usize {
        4
    }
}
