//! Audit shipping: each `[[audit.ship]]` sink gets the audit log's records, in order, from a
//! background thread that tails the log.
//!
//! The local file stays the source of truth (it is the spool): the gate writes only to it, and
//! a shipper reads it. So shipping never slows or fails a call, whatever its sink does. Each
//! shipper reads from its cursor (the first `seq` its sink has not acknowledged, persisted in
//! `{path}.ship/{name}.cursor`), across rotated files, in batches of at most `batch` records,
//! and moves the cursor only once the sink acknowledged the batch. A failed batch is sent again,
//! whole, after a wait that doubles from 100ms up to `retry_max`; the shipper logs (at most
//! once a minute) how far behind it is. A restarted warden resumes from the cursor, so every
//! record reaches every sink at least once and, after its acknowledgement, never again.
//! Records that are gone from the log before they were shipped (warden never deletes a rotated
//! file; an operator may) are reported as an error naming their `seq`s, never skipped quietly.
//!
//! Several warden processes may share one log: a sink's cursor is locked by the process that
//! ships for it (`{name}.lock`), and the others wait, taking over when it exits.

mod format;
mod sinks;
mod tail;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::manifest::{Audit, Ship};

pub use tail::{ship_dir, written};

/// How often a shipper that has caught up looks at the log again.
const POLL: Duration = Duration::from_millis(200);
/// The first wait after a failed batch.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The most bytes of lines in one batch (one line always fits).
const MAX_BATCH_BYTES: usize = 4 << 20;
/// How often a shipper says it is behind.
const BEHIND_LOG: Duration = Duration::from_secs(60);

/// A shipper's state, as `warden status` shows it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShipStatus {
    /// The sink's name.
    pub name: String,
    /// `stdout`, `otlp` or `syslog`.
    pub kind: String,
    /// The first `seq` the sink has not acknowledged.
    pub shipped: u64,
    /// The `seq` the log's next record will have.
    pub written: u64,
    /// `shipping` (caught up or sending), `retrying` (the last batch failed), `standby`
    /// (another warden process ships for this sink) or `stopped` (it cannot run; see
    /// `last_error`).
    pub state: String,
    /// Failed attempts since the last acknowledged batch.
    pub failures: u64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// What a shipper thread shares with `warden status`.
#[derive(Debug)]
struct Shared {
    name: String,
    kind: &'static str,
    state: Mutex<Progress>,
}

#[derive(Debug, Clone)]
struct Progress {
    shipped: u64,
    state: &'static str,
    failures: u64,
    last_error: Option<String>,
}

/// The running shippers of one audit log.
#[derive(Debug)]
pub struct Shippers {
    log: PathBuf,
    shared: Vec<Arc<Shared>>,
}

/// A shipper could not start.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("audit sink {name:?}: {message}")]
    Start { name: String, message: String },
}

impl Shippers {
    /// Start a thread per `[[audit.ship]]` sink of `audit`. Fails when a sink cannot be set up
    /// (its cursor unreadable, its URL refused): the operator sees it at start, not later.
    pub fn start(audit: &Audit) -> Result<Shippers, ShipError> {
        let mut shared = Vec::new();
        for ship in &audit.ship {
            let error = |message: String| ShipError::Start {
                name: ship.name.clone(),
                message,
            };
            let sink = sinks::open(&ship.sink).map_err(error)?;
            let cursor = tail::Cursor::new(&audit.path, &ship.name);
            let from = cursor.load().map_err(|e| error(e.to_string()))?.next_seq;
            let state = Arc::new(Shared {
                name: ship.name.clone(),
                kind: ship.sink.kind(),
                state: Mutex::new(Progress {
                    shipped: from,
                    state: "shipping",
                    failures: 0,
                    last_error: None,
                }),
            });
            let shipper = Shipper {
                log: audit.path.clone(),
                ship: ship.clone(),
                sink,
                cursor,
                shared: state.clone(),
            };
            let watched = state.clone();
            std::thread::Builder::new()
                .name(format!("ship-{}", ship.name))
                .spawn(move || {
                    let run = std::panic::AssertUnwindSafe(|| shipper.run());
                    if std::panic::catch_unwind(run).is_err() {
                        // A bug, not a sink's failure: say so rather than go quiet.
                        tracing::error!(sink = %watched.name, "audit shipping stopped on an internal error; restart warden to resume from the cursor");
                        let mut progress = watched.state.lock().unwrap_or_else(|e| e.into_inner());
                        progress.state = "stopped";
                        progress.last_error = Some("internal error; see the log".to_owned());
                    }
                })
                .map_err(|e| error(format!("cannot start its thread: {e}")))?;
            shared.push(state);
        }
        Ok(Shippers {
            log: audit.path.clone(),
            shared,
        })
    }

    /// Every sink's state.
    pub fn status(&self) -> Vec<ShipStatus> {
        if self.shared.is_empty() {
            return Vec::new();
        }
        let written = written(&self.log);
        self.shared
            .iter()
            .map(|shared| {
                let progress = shared
                    .state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                ShipStatus {
                    name: shared.name.clone(),
                    kind: shared.kind.to_owned(),
                    shipped: progress.shipped,
                    written: written.max(progress.shipped),
                    state: progress.state.to_owned(),
                    failures: progress.failures,
                    last_error: progress.last_error,
                }
            })
            .collect()
    }
}

struct Shipper {
    log: PathBuf,
    ship: Ship,
    sink: Box<dyn sinks::Sink>,
    cursor: tail::Cursor,
    shared: Arc<Shared>,
}

impl Shipper {
    fn update(&self, change: impl FnOnce(&mut Progress)) {
        change(&mut self.shared.state.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn run(mut self) {
        let span =
            tracing::info_span!("ship", sink = %self.ship.name, kind = self.ship.sink.kind());
        let _entered = span.enter();
        // One process ships for a sink at a time.
        let mut waiting_logged = false;
        loop {
            match self.cursor.try_lock() {
                Ok(true) => break,
                Ok(false) => {
                    if !waiting_logged {
                        tracing::info!("another warden process ships this audit sink; standing by");
                        waiting_logged = true;
                    }
                    self.update(|p| p.state = "standby");
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(error) => {
                    tracing::error!(%error, "cannot lock the audit sink's cursor; not shipping");
                    self.update(|p| {
                        p.state = "stopped";
                        p.last_error = Some(format!("cannot lock the cursor: {error}"));
                    });
                    return;
                }
            }
        }
        // The cursor as the previous holder left it.
        let position = match self.cursor.load() {
            Ok(from) => from,
            Err(error) => {
                tracing::error!(%error, "cannot read the audit sink's cursor; not shipping");
                self.update(|p| {
                    p.state = "stopped";
                    p.last_error = Some(error.to_string());
                });
                return;
            }
        };
        // A cursor past the end of the log, or whose record does not chain to the one
        // acknowledged last: the log was removed and started again (its `seq`s start at 0
        // again). Its records would look shipped; ship them from the start.
        let end = written(&self.log);
        let mut from = position.next_seq;
        if from > end || !tail::continues(&self.log, &position) {
            tracing::error!(
                cursor = from,
                written = end,
                log = %self.log.display(),
                "the audit sink's cursor is past the end of the log, or not in it: the log was \
                 removed or replaced; shipping the new log from its first record"
            );
            from = 0;
            if let Err(error) = self.cursor.store(0, None) {
                tracing::error!(%error, "cannot persist the audit sink's cursor");
            }
        }
        self.update(|p| {
            p.shipped = from;
            p.state = "shipping";
        });
        tracing::info!(from_seq = from, "shipping the audit log");
        let mut tail = tail::Tail::new(&self.log, from);
        let batch_size = usize::try_from(self.ship.batch).unwrap_or(usize::MAX);
        let mut pending: Vec<tail::Line> = Vec::new();
        let mut backoff = FIRST_RETRY;
        let mut behind_logged: Option<Instant> = None;
        loop {
            if pending.is_empty() {
                match tail.read(batch_size, MAX_BATCH_BYTES) {
                    Ok((lines, gaps)) => {
                        for gap in gaps {
                            tracing::error!(
                                first_missing_seq = gap.from,
                                last_missing_seq = gap.to.saturating_sub(1),
                                log = %self.log.display(),
                                "audit records are missing from the log and cannot be shipped \
                                 (rotated files removed, or lines removed: `warden audit verify` tells)"
                            );
                        }
                        pending = lines;
                    }
                    Err(error) => {
                        tracing::error!(%error, log = %self.log.display(), "cannot read the audit log to ship it");
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(self.ship.retry_max);
                        continue;
                    }
                }
                if pending.is_empty() {
                    std::thread::sleep(POLL);
                    continue;
                }
            }
            let (first, last) = match (pending.first(), pending.last()) {
                (Some(first), Some(last)) => (first.seq, last.seq),
                _ => continue,
            };
            let sent = {
                let _span = tracing::debug_span!("ship_batch", first, last).entered();
                self.sink.send(&pending)
            };
            match sent {
                Ok(()) => {
                    let next = last + 1;
                    let hash = pending
                        .last()
                        .map(|line| crate::audit::line_hash(&line.bytes));
                    if let Err(error) = self.cursor.store(next, hash) {
                        // Shipped, but a restart would send it again: at least once holds.
                        tracing::error!(%error, "cannot persist the audit sink's cursor");
                    }
                    let failures = {
                        let mut progress =
                            self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
                        let failures = progress.failures;
                        *progress = Progress {
                            shipped: next,
                            state: "shipping",
                            failures: 0,
                            last_error: None,
                        };
                        failures
                    };
                    if failures > 0 {
                        tracing::info!(
                            failures,
                            shipped_seq = last,
                            "the audit sink acknowledged again"
                        );
                    }
                    pending.clear();
                    backoff = FIRST_RETRY;
                }
                Err(error) => {
                    let failures = {
                        let mut progress =
                            self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
                        progress.failures += 1;
                        progress.state = "retrying";
                        progress.last_error = Some(error.clone());
                        progress.failures
                    };
                    if behind_logged.is_none_or(|at| at.elapsed() >= BEHIND_LOG) {
                        behind_logged = Some(Instant::now());
                        let written = written(&self.log);
                        tracing::warn!(
                            %error,
                            failures,
                            shipped_seq = first,
                            written_seq = written,
                            behind = written.saturating_sub(first),
                            retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                            "the audit sink is not acknowledging; records stay in the log and \
                             are sent once it does"
                        );
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(self.ship.retry_max);
                }
            }
        }
    }
}

/// The cursor of sink `name` of the log at `log`, as persisted (0: nothing acknowledged yet).
pub fn cursor_of(log: &Path, name: &str) -> std::io::Result<u64> {
    tail::Cursor::new(log, name).load().map(|p| p.next_seq)
}
