//! The hash-chained JSONL file: one line per record, each carrying the SHA-256 of the line
//! before it, written and flushed before the call's response leaves.
//!
//! Rotation renames the live file to `{path}.{n:06}` (n = 1, 2, ...) when the next record would
//! take it past the `rotate` size, and starts a new live file whose first record chains to the
//! last record of the renamed one. A restarted warden continues the chain of the live file (or
//! of the newest rotated file when the live one is missing or empty).
//!
//! Several warden processes may share one log (two stdio clients spawning warden with the same
//! manifest). Each append takes an exclusive `flock` on the live file (unless this process is
//! the only writer: `presence`), and when the file is
//! not the length this process left it at, re-reads its last record to continue the chain from
//! there; so the processes' records interleave in one valid chain. Under the lock, one `fstat`
//! of the open file also tells whether it was deleted or replaced (no link left) or rotated by
//! another process (rotation seals the old file read-only); then, and once a second anyway,
//! the open file is compared with the one at the path, and when they differ the sink opens the
//! file now at the path and continues the chain in it.
//!
//! A write that fails part-way (disk full, file size limit) is cut back to the last whole
//! record, so a failed call leaves no torn line behind.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::checkpoint::{CHECKPOINT, CheckpointRecord, Policy, SigningKey, signed_bytes};
use super::presence::Presence;
use super::{AuditError, AuditSink, GENESIS, Record, StartRecord, line_hash};

/// Where the chain stands.
struct State {
    file: File,
    /// The live file's length as this process last saw it (after its own last write).
    size: u64,
    seq: u64,
    prev: String,
    /// The line being written, kept to reuse its allocation.
    line: Vec<u8>,
    /// When the open file was last compared with the file at the path.
    checked: Instant,
    /// Whether this append holds `file`'s lock (it does unless this process is the log's
    /// only writer): a file opened during the append is locked too.
    locked: bool,
    /// This process among the log's writers.
    presence: Presence,
    /// Records in the chain since the last checkpoint this process knows of (at least as
    /// many as there are: records appended by other processes are added as they are seen,
    /// a checkpoint of theirs is noticed only when it is their last line).
    since: u64,
    /// The chain held unsigned records when this process opened it: the next record written
    /// is signed at once.
    inherited: bool,
    /// The line of the last checkpoint this process wrote.
    last_checkpoint: Option<String>,
}

/// How often the open file is compared with the file at the path when nothing on the open
/// file itself says it changed (a hard link made by hand, then the path replaced). Deletion,
/// replacement by `mv`, and rotation by another warden show on the open file at once.
const PATH_CHECK: Duration = Duration::from_secs(1);

/// An [`AuditSink`] appending to a local file. Records are serialized under a lock (a mutex
/// in the process, `flock` across processes), so the file's order is the chain's order; each is
/// one `write` call, cut back if it fails part-way, so no record is ever left half-written
/// behind a complete one.
pub struct FileSink {
    path: PathBuf,
    rotate: u64,
    fsync: bool,
    state: Mutex<State>,
    /// This replica's id, in start and checkpoint records (empty: none given).
    replica: String,
    /// How checkpoints are signed, when they are.
    signing: Option<Signing>,
    /// Dropped with the sink: stops the checkpoint timer.
    timer: Option<mpsc::Sender<()>>,
}

/// How a [`FileSink`] signs checkpoints (`[audit] signing_key`, `checkpoint_every`,
/// `checkpoint_interval`).
#[derive(Debug)]
pub struct Signing {
    /// The replica's key.
    pub key: SigningKey,
    /// A checkpoint goes in the same write as the `every`th record after the last one.
    pub every: u64,
    /// And at the latest `interval` after a record, by a timer thread.
    pub interval: Duration,
}

/// `file` opened for appending and reading, created if missing.
fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
}

impl FileSink {
    /// Open (or create) the log at `path`, creating its directory, and pick up its chain.
    pub fn open(path: &Path, rotate: u64, fsync: bool) -> Result<FileSink, AuditError> {
        let context = |action: &str, e: io::Error| AuditError::Io {
            message: format!("cannot {action} {}: {e}", path.display()),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| context("create the directory of", e))?;
        }
        let file = open_append(path).map_err(|e| context("open", e))?;
        file.lock().map_err(|e| context("lock", e))?;
        let joined = Presence::join(path);
        let picked = pick_up(&file, path);
        let _ = file.unlock();
        let presence = joined.map_err(|e| context("share", e))?;
        let (size, seq, prev) = picked.map_err(|e| context("read", e))?;
        Ok(FileSink {
            path: path.to_path_buf(),
            rotate,
            fsync,
            state: Mutex::new(State {
                file,
                size,
                seq,
                prev,
                line: Vec::new(),
                checked: Instant::now(),
                locked: false,
                presence,
                since: 0,
                inherited: false,
                last_checkpoint: None,
            }),
            replica: String::new(),
            signing: None,
            timer: None,
        })
    }

    /// Name this replica in start (and checkpoint) records.
    pub fn with_replica(mut self, replica: &str) -> FileSink {
        self.replica = replica.to_owned();
        self
    }

    /// Sign checkpoints with `signing`: one in the write of every `every`th record since the
    /// last, one right after each start record, one from a timer thread `interval` after a
    /// record left unsigned, and one at [`AuditSink::close`] (or when the sink is dropped).
    pub fn signed(mut self, signing: Signing) -> Arc<FileSink> {
        let interval = signing.interval;
        {
            let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
            // A chain that does not end with a checkpoint (a process that crashed): sign
            // what is there with the next record this process writes.
            state.inherited = state.seq > 0 && !last_is_checkpoint(&state.file);
        }
        self.signing = Some(signing);
        let (stop, stopped) = mpsc::channel();
        self.timer = Some(stop);
        Arc::new_cyclic(|sink: &Weak<FileSink>| {
            let sink = sink.clone();
            let spawned = std::thread::Builder::new()
                .name("audit-checkpoints".into())
                .spawn(move || {
                    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval)
                    {
                        let Some(sink) = sink.upgrade() else { break };
                        if let Err(error) = sink.checkpoint() {
                            tracing::error!(%error, "audit checkpoint failed");
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start the audit checkpoint timer; checkpoints come every checkpoint_every records only");
            }
            self
        })
    }

    /// The public key checkpoints are signed with, when they are.
    pub fn public_key(&self) -> Option<super::PublicKey> {
        self.signing.as_ref().map(|s| s.key.public())
    }

    /// Append a checkpoint now if the chain has records since the last one (from this
    /// process or, once caught up, another).
    pub fn checkpoint(&self) -> Result<(), AuditError> {
        if self.signing.is_none() {
            return Ok(());
        }
        self.locked(|sink, state| {
            sink.catch_up(state).map_err(|e| sink.io_error(e))?;
            if state.since == 0 {
                return Ok(());
            }
            sink.append(state, None::<&()>, true)
        })
    }

    /// The live file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rename the live file to the next `{path}.{n:06}` and start a new one (locked: the
    /// caller holds the old one's lock, which goes with it).
    fn rotate(&self, state: &mut State) -> io::Result<()> {
        let n = rotated_files(&self.path)
            .last()
            .map(|(n, _)| n + 1)
            .unwrap_or(1);
        let target = rotated_name(&self.path, n);
        std::fs::rename(&self.path, &target)?;
        // Sealed read-only: another warden process appending to the old file sees this on
        // the file it holds, and follows the path to the new one.
        seal(&state.file);
        let file = open_append(&self.path)?;
        if state.locked {
            file.lock()?;
        }
        state.file = file;
        state.size = 0;
        tracing::info!(to = %target.display(), "audit log rotated");
        Ok(())
    }

    /// Under the lock of `state.file`: make `state` the chain's true position. When the path
    /// no longer names the open file (another process rotated it; it was deleted or replaced),
    /// open the file at the path and lock it. When the live file is not as this process left
    /// it (another process appended), read its last record.
    fn catch_up(&self, state: &mut State) -> io::Result<()> {
        let held = Held::of(&state.file)?;
        let mut len = held.len;
        // The path is looked at only when the open file says it was deleted, replaced or
        // rotated (sealed), and once a `PATH_CHECK` otherwise: a `stat` of the path costs more
        // than the rest of a record's bookkeeping.
        let suspect = held.deleted || held.sealed;
        if !suspect && state.checked.elapsed() < PATH_CHECK {
            return self.pick_up_others(state, len);
        }
        state.checked = Instant::now();
        let current = std::fs::metadata(&self.path).ok();
        if !current.as_ref().is_some_and(|current| held.is(current)) {
            // Finish with the file we hold: its last record is the chain's latest, unless
            // the new live file already has records (checked below).
            if held.len != state.size {
                (state.seq, state.prev) = chain_of(&state.file)?;
            }
            if held.deleted {
                tracing::error!(
                    path = %self.path.display(),
                    "the live audit log was deleted; starting a new file that continues the chain"
                );
            } else {
                tracing::info!(
                    path = %self.path.display(),
                    "the live audit log was rotated or replaced by another process; continuing in the new file"
                );
            }
            let file = open_append(&self.path)?;
            file.lock()?;
            state.locked = true;
            len = file.metadata()?.len();
            state.file = file; // the old lock goes with the old file
            state.size = 0;
            // The page of writers may have gone with the old file's directory entry.
            if !state.presence.is_at(&self.path) {
                state.presence = Presence::join(&self.path)?;
            }
        }
        self.pick_up_others(state, len)
    }

    /// When the live file is `len` long but this process left it at another length (another
    /// process appended), continue the chain from its last record.
    fn pick_up_others(&self, state: &mut State, len: u64) -> io::Result<()> {
        if len != state.size {
            let (size, seq, prev) = if len == 0 {
                (0, state.seq, state.prev.clone())
            } else {
                pick_up(&state.file, &self.path)?
            };
            if self.signing.is_some() && seq != state.seq {
                state.since = if last_is_checkpoint(&state.file) {
                    0
                } else {
                    state.since + seq.saturating_sub(state.seq)
                };
            }
            (state.size, state.seq, state.prev) = (size, seq, prev);
        }
        Ok(())
    }

    fn io_error(&self, e: io::Error) -> AuditError {
        AuditError::Io {
            message: format!("cannot write to {}: {e}", self.path.display()),
        }
    }

    /// Serialize the line of `record` at the chain's position into `state.line` (after what
    /// it holds), and move the position past it; the `prev` it replaced is kept in `undo`
    /// (the first one only), for a failed write to restore.
    fn push_line<R: serde::Serialize>(
        &self,
        state: &mut State,
        record: &R,
        undo: &mut Option<String>,
    ) -> Result<(), AuditError> {
        let start = state.line.len();
        let line = Line {
            seq: state.seq,
            record,
            prev: &state.prev,
        };
        serde_json::to_writer(&mut state.line, &line).map_err(|e| AuditError::Io {
            message: format!("cannot serialize an audit record: {e}"),
        })?;
        let replaced = std::mem::replace(&mut state.prev, line_hash(&state.line[start..]));
        undo.get_or_insert(replaced);
        state.line.push(b'\n');
        state.seq += 1;
        Ok(())
    }

    /// Serialize a signed checkpoint of the chain's position into `state.line`.
    fn push_checkpoint(
        &self,
        state: &mut State,
        signing: &Signing,
        undo: &mut Option<String>,
    ) -> Result<(), AuditError> {
        let mut record = CheckpointRecord {
            kind: CHECKPOINT.into(),
            ts: super::rfc3339(std::time::SystemTime::now()),
            replica: self.replica.as_str().into(),
            head: state.prev.clone(),
            count: state.since,
            every: signing.every,
            interval_ms: u64::try_from(signing.interval.as_millis()).unwrap_or(u64::MAX),
            key: signing.key.id().into(),
            sig: String::new(),
        };
        record.sig = signing.key.sign(&signed_bytes(state.seq, &record));
        self.push_line(state, &record, undo)?;
        state.since = 0;
        state.inherited = false;
        Ok(())
    }

    /// Append `record` (if any) and, when signing and it is due (or `sign`), a checkpoint
    /// after it: one `write`, so a checkpoint due with a record is never left out of the file
    /// that holds the record.
    fn append<R: serde::Serialize>(
        &self,
        state: &mut State,
        record: Option<&R>,
        sign: bool,
    ) -> Result<(), AuditError> {
        self.catch_up(state).map_err(|e| self.io_error(e))?;
        // What a failed write restores; the replaced `prev` goes in `undo` (no copy of it
        // is made on the way of a record that is written).
        let saved = (state.seq, state.since, state.inherited);
        let mut undo = None;
        state.line.clear();
        let pushed = (|| {
            if let Some(record) = record {
                self.push_line(state, record, &mut undo)?;
                state.since += 1;
            }
            if let Some(signing) = &self.signing
                && (sign || state.inherited || state.since >= signing.every)
            {
                let start = state.line.len();
                self.push_checkpoint(state, signing, &mut undo)?;
                return Ok(Some(start));
            }
            Ok(None)
        })();
        let checkpoint = match pushed {
            Ok(checkpoint) => checkpoint,
            Err(error) => {
                (state.seq, state.since, state.inherited) = saved;
                if let Some(prev) = undo {
                    state.prev = prev;
                }
                return Err(error);
            }
        };
        let len = state.line.len() as u64;
        if state.size > 0
            && state.size + len > self.rotate
            && let Err(e) = self.rotate(state)
        {
            // Keep recording into the big file rather than losing records.
            tracing::error!(error = %e, path = %self.path.display(), "audit log rotation failed");
        }
        let written = state.file.write_all(&state.line).and_then(|()| {
            if self.fsync {
                state.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            // Cut a partial line back off, so the next record starts after a whole one.
            if let Err(cut) = state.file.set_len(state.size) {
                tracing::error!(error = %cut, path = %self.path.display(), "cannot cut a failed audit write back");
            }
            (state.seq, state.since, state.inherited) = saved;
            if let Some(prev) = undo {
                state.prev = prev;
            }
            return Err(self.io_error(e));
        }
        state.size += len;
        if let Some(start) = checkpoint {
            let line = &state.line[start..state.line.len() - 1];
            state.last_checkpoint = Some(String::from_utf8_lossy(line).into_owned());
        }
        Ok(())
    }

    /// The last checkpoint this sink wrote (its line), for a witness to keep.
    pub fn last_checkpoint(&self) -> Option<String> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.last_checkpoint.clone()
    }
}

/// A record as its line holds it: `seq` first, then the record's fields, then `prev`.
#[derive(serde::Serialize)]
struct Line<'r, R> {
    seq: u64,
    #[serde(flatten)]
    record: &'r R,
    prev: &'r str,
}

impl AuditSink for FileSink {
    fn record(&self, record: &Record<'_>) -> Result<(), AuditError> {
        self.locked(|sink, state| sink.append(state, Some(record), false))
    }

    /// The start record names the replica and, when signing, the checkpoint policy, and is
    /// signed at once: a checkpoint follows it in the same write.
    fn start(&self, record: &StartRecord<'_>) -> Result<(), AuditError> {
        let mut record = record.clone();
        if !self.replica.is_empty() {
            record.replica = Some(self.replica.as_str().into());
        }
        record.checkpoint = self.signing.as_ref().map(|signing| Policy {
            every: signing.every,
            interval_ms: u64::try_from(signing.interval.as_millis()).unwrap_or(u64::MAX),
        });
        self.locked(|sink, state| sink.append(state, Some(&record), true))
    }

    fn close(&self) -> Result<(), AuditError> {
        self.checkpoint()
    }

    fn public_key(&self) -> Option<super::PublicKey> {
        FileSink::public_key(self)
    }

    fn last_checkpoint(&self) -> Option<String> {
        FileSink::last_checkpoint(self)
    }
}

impl Drop for FileSink {
    /// A last checkpoint, if records follow the last one (after [`AuditSink::close`], none do).
    fn drop(&mut self) {
        if let Err(error) = self.checkpoint() {
            tracing::error!(%error, "the audit log's last checkpoint could not be written");
        }
    }
}

impl FileSink {
    /// Run `f` on the chain's state under the lock when other processes write the log too.
    fn locked(
        &self,
        f: impl FnOnce(&FileSink, &mut State) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *state;
        // Alone, no lock is needed (see `presence`); with other writers, each append locks.
        let alone = state.presence.begin_alone();
        if !alone {
            state.file.lock().map_err(|e| AuditError::Io {
                message: format!("cannot lock {}: {e}", self.path.display()),
            })?;
        }
        state.locked = !alone;
        let result = f(self, state);
        if state.locked {
            let _ = state.file.unlock();
        }
        if alone {
            state.presence.end_alone();
        }
        result
    }
}

/// What one `statx` of the open file tells, asking for no timestamp: `fstat` (and
/// `File::metadata`) ask for them, and on a filesystem with fine-grained timestamps a file
/// whose times were looked at gets its inode dirtied (and journaled) by the next write, which
/// tripled the cost of appending a record.
struct Held {
    len: u64,
    /// No name left: it was deleted, or replaced by a rename over its name.
    deleted: bool,
    /// Made read-only by a rotation.
    sealed: bool,
    id: (u64, u64),
}

impl Held {
    fn of(file: &File) -> io::Result<Held> {
        use std::os::fd::AsRawFd;
        let mask = libc::STATX_SIZE | libc::STATX_NLINK | libc::STATX_MODE | libc::STATX_INO;
        let mut stat = std::mem::MaybeUninit::<libc::statx>::uninit();
        let fd = file.as_raw_fd();
        // SAFETY: statx fills `stat` for an open descriptor (a null path with AT_EMPTY_PATH
        // since Linux 6.11, an empty one before), or fails and leaves it unread.
        let mut done = unsafe {
            libc::statx(
                fd,
                std::ptr::null(),
                libc::AT_EMPTY_PATH,
                mask,
                stat.as_mut_ptr(),
            )
        };
        if done != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT) {
            // SAFETY: as above, with an empty path.
            done = unsafe {
                libc::statx(
                    fd,
                    c"".as_ptr(),
                    libc::AT_EMPTY_PATH,
                    mask,
                    stat.as_mut_ptr(),
                )
            };
        }
        if done != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: statx succeeded.
        let stat = unsafe { stat.assume_init() };
        Ok(Held {
            len: stat.stx_size,
            deleted: stat.stx_nlink == 0,
            sealed: u32::from(stat.stx_mode) & 0o200 == 0,
            id: (
                libc::makedev(stat.stx_dev_major, stat.stx_dev_minor),
                stat.stx_ino,
            ),
        })
    }

    /// Whether `meta` is the same file.
    fn is(&self, meta: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.id == (meta.dev(), meta.ino())
    }
}

/// Make a rotated file read-only (best effort: a rotated file is never written again).
fn seal(file: &File) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(error) = file.set_permissions(std::fs::Permissions::from_mode(0o400)) {
        tracing::warn!(%error, "cannot make a rotated audit log read-only");
    }
}

/// Under its lock, the chain position at the end of the live `file` (at `path`): its length
/// and the next `seq` and `prev`. A last line cut short (a crash of the machine) gets its
/// newline, so the next record starts on its own line; `audit verify` reports it. An empty
/// file continues the newest rotated file's chain, or starts one.
fn pick_up(file: &File, path: &Path) -> io::Result<(u64, u64, String)> {
    let mut size = file.metadata()?.len();
    if size == 0 {
        let (seq, prev) = match newest_rotated(path) {
            Some(rotated) => chain_of(&File::open(rotated)?)?,
            None => (0, GENESIS.to_owned()),
        };
        return Ok((0, seq, prev));
    }
    let tail = tail_lines(file, 2)?;
    let torn = !ends_with_newline(file, size)?;
    if torn {
        (&*file).write_all(b"\n")?;
        size += 1;
    }
    let (seq, prev) = chain_after(&tail, torn);
    Ok((size, seq, prev))
}

/// Whether the last line of `file` is a checkpoint record.
fn last_is_checkpoint(file: &File) -> bool {
    tail_lines(file, 1)
        .ok()
        .and_then(|tail| {
            tail.last()
                .and_then(|line| serde_json::from_slice::<Value>(line).ok())
        })
        .is_some_and(|value| value.get("kind").and_then(Value::as_str) == Some(CHECKPOINT))
}

/// The chain position after the last record of `file`.
fn chain_of(file: &File) -> io::Result<(u64, String)> {
    let len = file.metadata()?.len();
    let tail = tail_lines(file, 2)?;
    let torn = !ends_with_newline(file, len)?;
    Ok(chain_after(&tail, torn))
}

/// The chain position after `tail` (the last one or two lines of a file): the next sequence
/// number and the hash of the last line. `torn`: the last line has no newline.
fn chain_after(tail: &[Vec<u8>], torn: bool) -> (u64, String) {
    let Some(last) = tail.last() else {
        return (0, GENESIS.to_owned());
    };
    let seq_of = |line: &[u8]| {
        serde_json::from_slice::<Value>(line)
            .ok()
            .and_then(|v| v.get("seq").and_then(Value::as_u64))
    };
    let seq = match seq_of(last) {
        Some(seq) if !torn => seq + 1,
        _ => tail
            .len()
            .checked_sub(2)
            .and_then(|i| seq_of(&tail[i]))
            .map_or(0, |seq| seq + 2),
    };
    (seq, line_hash(last))
}

/// Whether `file`, `len` bytes long, ends with a newline (or is empty).
fn ends_with_newline(file: &File, len: u64) -> io::Result<bool> {
    if len == 0 {
        return Ok(true);
    }
    let mut byte = [0u8; 1];
    read_exact_at(file, &mut byte, len - 1)?;
    Ok(byte[0] == b'\n')
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file;
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// `{path}.{n:06}`.
pub fn rotated_name(path: &Path, n: u64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{n:06}"));
    path.with_file_name(name)
}

/// The rotated files of the log at `path`, oldest first, with their numbers.
pub fn rotated_files(path: &Path) -> Vec<(u64, PathBuf)> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let mut found: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file_name = entry.file_name();
            let n = file_name.to_str()?.strip_prefix(&prefix)?;
            let n = (n.len() >= 6 && n.bytes().all(|b| b.is_ascii_digit()))
                .then(|| n.parse::<u64>().ok())??;
            Some((n, entry.path()))
        })
        .collect();
    found.sort();
    found
}

fn newest_rotated(path: &Path) -> Option<PathBuf> {
    rotated_files(path).pop().map(|(_, path)| path)
}

/// The last `n` lines of the file at `path` (without their newlines), oldest first. A last
/// line without a newline counts as a line.
pub fn last_lines(path: &Path, n: usize) -> io::Result<Vec<Vec<u8>>> {
    tail_lines(&File::open(path)?, n)
}

/// The last `n` lines of `file`, as [`last_lines`].
fn tail_lines(file: &File, n: usize) -> io::Result<Vec<Vec<u8>>> {
    const CHUNK: u64 = 64 << 10;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut buffer: Vec<u8> = Vec::new();
    // Read backwards until the buffer holds n + 1 newlines (or the whole file).
    loop {
        let newlines = buffer.iter().filter(|&&b| b == b'\n').count();
        let trailing = usize::from(buffer.last() == Some(&b'\n'));
        if end == 0 || newlines >= n + trailing {
            break;
        }
        let start = end.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (end - start) as usize];
        read_exact_at(file, &mut chunk, start)?;
        chunk.extend_from_slice(&buffer);
        buffer = chunk;
        end = start;
    }
    let mut lines: Vec<Vec<u8>> = buffer.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    if lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    if end > 0 && !lines.is_empty() {
        lines.remove(0); // possibly cut at the chunk boundary
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines.split_off(skip))
}
