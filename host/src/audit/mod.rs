//! The audit log: one record per call and per refusal, and one per start and reload, in an
//! append-only, hash-chained JSONL file.
//!
//! Each line is a JSON object: the [`Record`] the gate produced (a call), or the
//! [`StartRecord`] the host produced (`"kind":"start"`: the plugins loaded and their
//! provenance), plus `seq` (0, 1, 2, ... across
//! rotated files) and `prev`, the lowercase hex SHA-256 of the previous line's bytes (without
//! its newline; 64 zeros for the first record ever). Changing, removing or inserting a line
//! breaks the chain at that point, which [`verify()`] finds.
//!
//! With `[audit] signing_key`, checkpoint records (`"kind":"checkpoint"`, `checkpoint.rs`)
//! sign the chain's head with the replica's Ed25519 key every `checkpoint_every` records or
//! `checkpoint_interval`; [`verify_signed`] checks them.
//!
//! The gate talks to an [`AuditSink`]: [`FileSink`] is the local file. Shipping records
//! elsewhere (`crate::ship`) reads the file rather than adding a sink, so the file stays the
//! source of truth and a slow receiver never slows a call.

mod checkpoint;
mod presence;
mod pretty;
mod record;
mod start;
mod verify;
mod writer;

pub use checkpoint::{
    CHECKPOINT, CheckpointRecord, KeyError, Policy, PublicKey, SigningKey, key_id, signed_bytes,
};
pub use pretty::pretty;
pub use record::{
    ApprovalRecord, MAX_RECORDED_ERROR, MAX_RECORDED_NAME, Outcome, Record, bounded, bounded_id,
    epoch_millis, rfc3339,
};
pub use start::{START, StartPlugin, StartRecord};
pub use verify::{
    Broken, LastCheckpoint, VerifyReport, Witness, group_logs, verify, verify_signed,
    verify_witnessed,
};
pub use writer::{FileSink, Signing, last_lines, rotated_files, rotated_name};

/// The `prev` of the first record of a log: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The lowercase hex SHA-256 of `bytes`: the chain's link.
pub fn line_hash(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 15)]));
    }
    out
}

/// Where audit records go. `record` returns once the record is as durable as the sink
/// promises (for [`FileSink`]: written to the OS, and `fsync`ed when configured), so the gate
/// can send the response knowing the record survives a crash of warden.
pub trait AuditSink: Send + Sync {
    /// Append `record`.
    fn record(&self, record: &Record<'_>) -> Result<(), AuditError>;

    /// Append the start record of a (re)load, in the same chain as the calls. A sink that
    /// keeps only calls may ignore it (the default).
    fn start(&self, record: &StartRecord<'_>) -> Result<(), AuditError> {
        let _ = record;
        Ok(())
    }

    /// The server stops cleanly: a sink that signs checkpoints signs the chain's head.
    fn close(&self) -> Result<(), AuditError> {
        Ok(())
    }

    /// The public key of the checkpoints' signatures, when the sink signs them.
    fn public_key(&self) -> Option<PublicKey> {
        None
    }

    /// The line of the last checkpoint the sink wrote, when it signs them: what a witness
    /// keeps to detect any later cut of the log (`warden audit verify --witness`).
    fn last_checkpoint(&self) -> Option<String> {
        None
    }

    /// Whether records are kept at all; when not, the gate does not build them.
    fn enabled(&self) -> bool {
        true
    }
}

/// A sink whose writes are timed and counted in the metrics
/// (`warden_audit_write_duration_seconds`, `warden_audit_write_failures_total`).
pub struct Metered {
    inner: std::sync::Arc<dyn AuditSink>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl Metered {
    /// `inner`, measured into `metrics`.
    pub fn new(
        inner: std::sync::Arc<dyn AuditSink>,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self { inner, metrics }
    }
}

impl AuditSink for Metered {
    fn record(&self, record: &Record<'_>) -> Result<(), AuditError> {
        let started = std::time::Instant::now();
        let written = self.inner.record(record);
        self.metrics.audit_write(started.elapsed(), written.is_ok());
        written
    }

    fn start(&self, record: &StartRecord<'_>) -> Result<(), AuditError> {
        let started = std::time::Instant::now();
        let written = self.inner.start(record);
        self.metrics.audit_write(started.elapsed(), written.is_ok());
        written
    }

    fn close(&self) -> Result<(), AuditError> {
        self.inner.close()
    }

    fn public_key(&self) -> Option<PublicKey> {
        self.inner.public_key()
    }

    fn last_checkpoint(&self) -> Option<String> {
        self.inner.last_checkpoint()
    }

    fn enabled(&self) -> bool {
        self.inner.enabled()
    }
}

/// Records nothing: for a server without `[audit]`.
pub struct NoAudit;

impl AuditSink for NoAudit {
    fn record(&self, _: &Record<'_>) -> Result<(), AuditError> {
        Ok(())
    }

    fn enabled(&self) -> bool {
        false
    }
}

/// A record could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{message}")]
    Io { message: String },
}

#[cfg(test)]
mod tests;
