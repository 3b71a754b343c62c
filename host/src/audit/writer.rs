//! The hash-chained JSONL file: one line per record, each carrying the SHA-256 of the line
//! before it, written and flushed before the call's response leaves.
//!
//! Rotation renames the live file to `{path}.{n:06}` (n = 1, 2, ...) when the next record would
//! take it past the `rotate` size, and starts a new live file whose first record chains to the
//! last record of the renamed one. A restarted warden continues the chain of the live file (or
//! of the newest rotated file when the live one is missing or empty).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

use super::{AuditError, AuditSink, GENESIS, Record, line_hash};

/// Where the chain stands.
struct State {
    file: File,
    size: u64,
    seq: u64,
    prev: String,
    /// The line being written, kept to reuse its allocation.
    line: Vec<u8>,
}

/// An [`AuditSink`] appending to a local file. Records are serialized under a lock, so the
/// file's order is the chain's order; each is one `write` call, so a crash of warden never
/// leaves half a record behind a complete one.
pub struct FileSink {
    path: PathBuf,
    rotate: u64,
    fsync: bool,
    state: Mutex<State>,
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
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(|e| context("open", e))?;
        let mut size = file.metadata().map_err(|e| context("read", e))?.len();
        let (seq, prev) = if size > 0 {
            let tail = last_lines(path, 2).map_err(|e| context("read", e))?;
            let torn = !ends_with_newline(&mut file).map_err(|e| context("read", e))?;
            if torn {
                // A record cut short (a crash of the machine, not of warden): end its line so
                // the next record starts on its own; `audit verify` will report it.
                file.write_all(b"\n").map_err(|e| context("write", e))?;
                size += 1;
            }
            chain_after(&tail, torn)
        } else {
            match newest_rotated(path) {
                Some(rotated) => {
                    let tail = last_lines(&rotated, 2).map_err(|e| context("read", e))?;
                    chain_after(&tail, false)
                }
                None => (0, GENESIS.to_owned()),
            }
        };
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
            }),
        })
    }

    /// The live file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rename the live file to the next `{path}.{n:06}` and start a new one.
    fn rotate(&self, state: &mut State) -> io::Result<()> {
        let n = rotated_files(&self.path)
            .last()
            .map(|(n, _)| n + 1)
            .unwrap_or(1);
        let target = rotated_name(&self.path, n);
        std::fs::rename(&self.path, &target)?;
        state.file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)?;
        state.size = 0;
        tracing::info!(to = %target.display(), "audit log rotated");
        Ok(())
    }
}

/// A record as its line holds it: `seq` first, then the record's fields, then `prev`.
#[derive(serde::Serialize)]
struct Line<'r> {
    seq: u64,
    #[serde(flatten)]
    record: &'r Record<'r>,
    prev: &'r str,
}

impl AuditSink for FileSink {
    fn record(&self, record: &Record<'_>) -> Result<(), AuditError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *state;
        state.line.clear();
        let line = Line {
            seq: state.seq,
            record,
            prev: &state.prev,
        };
        serde_json::to_writer(&mut state.line, &line).map_err(|e| AuditError::Io {
            message: format!("cannot serialize an audit record: {e}"),
        })?;
        let hash = line_hash(&state.line);
        state.line.push(b'\n');
        let len = state.line.len() as u64;
        if state.size > 0
            && state.size + len > self.rotate
            && let Err(e) = self.rotate(state)
        {
            // Keep recording into the big file rather than losing records.
            tracing::error!(error = %e, path = %self.path.display(), "audit log rotation failed");
        }
        let io = |e: io::Error| AuditError::Io {
            message: format!("cannot write to {}: {e}", self.path.display()),
        };
        state.file.write_all(&state.line).map_err(io)?;
        if self.fsync {
            state.file.sync_data().map_err(io)?;
        }
        state.size += len;
        state.seq += 1;
        state.prev = hash;
        Ok(())
    }
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

fn ends_with_newline(file: &mut File) -> io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    let mut byte = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut byte)?;
    Ok(byte[0] == b'\n')
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
    const CHUNK: u64 = 64 << 10;
    let mut file = File::open(path)?;
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
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
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
