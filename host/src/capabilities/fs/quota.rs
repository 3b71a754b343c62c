//! What one call has written under each grant, and the output stream that counts it.
//!
//! A grant's usage is shared (an `Arc`) by the call's guarded filesystem functions and by
//! every output stream opened on its files, so bytes count however they are written:
//! `descriptor.write`, `write-via-stream` and `append-via-stream` (then `wasi:io/streams`
//! writes, splices and zero fills), and `set-size` growing a file. Files, directories and
//! links count when they are created. A charge that would pass the limit is refused whole and
//! charges nothing; the plugin sees `insufficient-space`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use crate::manifest::{ByteSize, DirGrant, DirMode, WriteQuota};

/// A write or a creation refused because it would pass a grant's quota. The message names the
/// grant's guest path and the limit, and is safe to show to the agent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuotaExceeded {
    #[error("the write would pass the max_write of {guest}: {limit} per call")]
    Bytes { guest: String, limit: ByteSize },
    #[error("the creation would pass the max_files of {guest}: {limit} per call")]
    Files { guest: String, limit: u64 },
}

/// One grant's usage during one call.
#[derive(Debug)]
pub(super) struct GrantUsage {
    plugin: Arc<str>,
    guest: String,
    writable: bool,
    quota: WriteQuota,
    written: AtomicU64,
    created: AtomicU64,
    /// Whether a refusal was logged already: a plugin that retries a refused write in a loop
    /// gets one warning per grant and call, not one per attempt.
    reported: AtomicBool,
}

impl GrantUsage {
    /// Charge `bytes` written; refuses, charging nothing, past `max_write`.
    pub(super) fn charge_bytes(&self, bytes: u64) -> Result<(), QuotaExceeded> {
        let limit = self.quota.max_write;
        self.written
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&total| total <= limit)
            })
            .map(drop)
            .map_err(|_| {
                self.refused(QuotaExceeded::Bytes {
                    guest: self.guest.clone(),
                    limit: ByteSize(limit),
                })
            })
    }

    /// Give back `bytes` charged for a write that did not happen.
    pub(super) fn refund_bytes(&self, bytes: u64) {
        let _ = self
            .written
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(bytes))
            });
    }

    /// Bytes the call may still write under this grant.
    fn remaining_bytes(&self) -> u64 {
        self.quota
            .max_write
            .saturating_sub(self.written.load(Ordering::Relaxed))
    }

    /// Charge one created file, directory or link; refuses past `max_files`.
    pub(super) fn charge_file(&self) -> Result<(), QuotaExceeded> {
        let limit = self.quota.max_files;
        self.created
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used < limit).then_some(used + 1)
            })
            .map(drop)
            .map_err(|_| {
                self.refused(QuotaExceeded::Files {
                    guest: self.guest.clone(),
                    limit,
                })
            })
    }

    /// Give back a file charged for a creation that failed.
    pub(super) fn refund_file(&self) {
        let _ = self
            .created
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(1))
            });
    }

    /// Whether the grant is `rw`. A `ro` grant is never charged: wasmtime-wasi refuses its
    /// writes itself.
    pub(super) fn writable(&self) -> bool {
        self.writable
    }

    fn refused(&self, error: QuotaExceeded) -> QuotaExceeded {
        if !self.reported.swap(true, Ordering::Relaxed) {
            tracing::warn!(plugin = &*self.plugin, reason = %error, "write quota exceeded; the plugin gets insufficient-space");
        }
        error
    }
}

/// One call's write quotas: each grant's usage, and which grant each open descriptor belongs
/// to.
#[derive(Debug, Default)]
pub struct FsQuotas {
    /// One per grant, in the manifest's order, which is the order of the preopens.
    grants: Vec<Arc<GrantUsage>>,
    /// The grant of each descriptor in the call's resource table, by representation.
    descriptors: HashMap<u32, usize>,
}

impl FsQuotas {
    /// Nothing written yet under any of `dirs`.
    pub(super) fn new(plugin: Arc<str>, dirs: &[DirGrant]) -> FsQuotas {
        FsQuotas {
            grants: dirs
                .iter()
                .map(|dir| {
                    Arc::new(GrantUsage {
                        plugin: plugin.clone(),
                        guest: dir.guest.clone(),
                        writable: dir.mode == DirMode::ReadWrite,
                        quota: dir.quota,
                        written: AtomicU64::new(0),
                        created: AtomicU64::new(0),
                        reported: AtomicBool::new(false),
                    })
                })
                .collect(),
            descriptors: HashMap::new(),
        }
    }

    /// The index of the grant preopened as `guest`, the `position`-th preopen.
    pub(super) fn preopen(&self, position: usize, guest: &str) -> Option<usize> {
        match self.grants.get(position) {
            Some(grant) if grant.guest == guest => Some(position),
            _ => self.grants.iter().position(|grant| grant.guest == guest),
        }
    }

    /// Record that descriptor `rep` belongs to grant `grant`.
    pub(super) fn track(&mut self, rep: u32, grant: usize) {
        self.descriptors.insert(rep, grant);
    }

    /// Forget descriptor `rep` (dropped).
    pub(super) fn forget(&mut self, rep: u32) {
        self.descriptors.remove(&rep);
    }

    /// The grant descriptor `rep` belongs to: its index and usage.
    pub(super) fn grant_of(&self, rep: u32) -> Option<(usize, Arc<GrantUsage>)> {
        let index = *self.descriptors.get(&rep)?;
        Some((index, self.grants.get(index)?.clone()))
    }
}

/// An output stream on a file of a `rw` grant: every byte written is charged to the grant
/// before it reaches the file.
pub(super) struct QuotaStream {
    pub(super) inner: Box<dyn OutputStream>,
    pub(super) usage: Arc<GrantUsage>,
}

impl QuotaStream {
    fn charge(&self, bytes: usize) -> StreamResult<()> {
        self.usage
            .charge_bytes(bytes as u64)
            .map_err(|e| StreamError::LastOperationFailed(wasmtime::Error::new(e)))
    }
}

#[async_trait::async_trait]
impl OutputStream for QuotaStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.charge(bytes.len())?;
        self.inner.write(bytes)
    }

    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.charge(bytes.len())?;
        self.inner.blocking_write_and_flush(bytes).await
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    /// The inner stream's permit, cut to what the quota leaves; when nothing is left, the
    /// quota error, so a guest waiting for a permit stops instead of spinning. (The guest sees
    /// `last-operation-failed`; `filesystem-error-code` of its error is `insufficient-space`.)
    fn check_write(&mut self) -> StreamResult<usize> {
        let permit = self.inner.check_write()?;
        if permit == 0 {
            return Ok(0);
        }
        let remaining = self.usage.remaining_bytes();
        if remaining == 0 {
            return self.charge(1).map(|()| 0);
        }
        Ok(permit.min(usize::try_from(remaining).unwrap_or(usize::MAX)))
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

#[async_trait::async_trait]
impl Pollable for QuotaStream {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(max_write: u64, max_files: u64) -> GrantUsage {
        GrantUsage {
            plugin: Arc::from("p"),
            guest: "/scratch".into(),
            writable: true,
            quota: WriteQuota {
                max_write,
                max_files,
            },
            written: AtomicU64::new(0),
            created: AtomicU64::new(0),
            reported: AtomicBool::new(false),
        }
    }

    #[test]
    fn a_charge_past_the_limit_is_refused_whole() {
        let usage = usage(10, 2);
        assert!(usage.charge_bytes(6).is_ok());
        assert_eq!(
            usage.charge_bytes(5).expect_err("over").to_string(),
            "the write would pass the max_write of /scratch: 10B per call"
        );
        assert_eq!(usage.remaining_bytes(), 4);
        assert!(usage.charge_bytes(4).is_ok());
        assert!(usage.charge_bytes(u64::MAX).is_err());
        usage.refund_bytes(4);
        assert_eq!(usage.remaining_bytes(), 4);

        assert!(usage.charge_file().is_ok());
        assert!(usage.charge_file().is_ok());
        assert!(usage.charge_file().is_err());
        usage.refund_file();
        assert!(usage.charge_file().is_ok());
    }
}
