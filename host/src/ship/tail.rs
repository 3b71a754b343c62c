//! Reading the audit log from a cursor, across rotated files, and keeping the cursor.
//!
//! The cursor is the first `seq` a sink has not acknowledged, kept in
//! `{path}.ship/{name}.cursor` (JSON, replaced atomically by a rename). Records are found by
//! their `seq`, not by byte offsets, so the cursor survives rotation: the reader opens the
//! file that holds that `seq` (the last file whose first record is not after it) and reads on
//! from there, into the next rotated file or the live one. Only whole lines (ending in a
//! newline) are read: a record being written is read once it is complete.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::audit::{last_lines, rotated_files};

/// One record's line, as the file holds it (without its newline).
#[derive(Clone, Debug)]
pub struct Line {
    pub seq: u64,
    pub bytes: Vec<u8>,
}

/// The file being read and where.
struct Reading {
    file: File,
    offset: u64,
    id: (u64, u64),
}

/// A reader of the log at `path` from its cursor.
pub(super) struct Tail {
    path: PathBuf,
    /// The `seq` the next line read should have (the cursor, plus what was read since).
    expect: u64,
    reading: Option<Reading>,
}

/// What the reader reports besides lines: records it cannot find.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Gap {
    /// The first missing `seq`.
    pub from: u64,
    /// The first `seq` found after them.
    pub to: u64,
}

impl Tail {
    /// A reader of the log at `path` starting at `seq` `from`.
    pub(super) fn new(path: &Path, from: u64) -> Tail {
        Tail {
            path: path.to_path_buf(),
            expect: from,
            reading: None,
        }
    }

    /// Up to `max` whole lines from where the reader stands (`max_bytes` bounds the batch too,
    /// except that one line always fits), and the gaps found on the way: `seq`s that are not in
    /// the log any more (rotated files removed by hand, lines removed).
    pub(super) fn read(
        &mut self,
        max: usize,
        max_bytes: usize,
    ) -> io::Result<(Vec<Line>, Vec<Gap>)> {
        let mut lines: Vec<Line> = Vec::new();
        let mut gaps = Vec::new();
        let mut bytes = 0usize;
        // Each turn reads one file; a bound on the turns keeps a log that keeps changing under
        // the reader from holding it here.
        for _ in 0..1000 {
            if self.reading.is_none() {
                match self.locate(&mut gaps, None)? {
                    Some(reading) => self.reading = Some(reading),
                    None => break,
                }
            }
            let Some(reading) = self.reading.as_mut() else {
                break;
            };
            let id = reading.id;
            let before = lines.len();
            let at_end = read_lines(
                reading,
                &mut lines,
                &mut bytes,
                max,
                max_bytes,
                &mut self.expect,
                &mut gaps,
            )?;
            if !at_end || lines.len() >= max || bytes >= max_bytes {
                break;
            }
            if lines.len() > before {
                continue;
            }
            // At the end of the file: when the path names another file now (rotated, deleted
            // or replaced), read this one once more (a record may have been appended between
            // the read and the look at the path), then go on in the file holding the next
            // record.
            // No file at the path (deleted, or mid-rotation): wait for the writer to create
            // the next one rather than search the rotated files on every look.
            let current = std::fs::metadata(&self.path).ok().map(|m| file_id(&m));
            if current.is_none_or(|current| current == id) {
                break;
            }
            read_lines(
                reading,
                &mut lines,
                &mut bytes,
                max,
                max_bytes,
                &mut self.expect,
                &mut gaps,
            )?;
            if lines.len() > before {
                continue;
            }
            match self.locate(&mut gaps, Some(id))? {
                Some(next) => self.reading = Some(next),
                // Nothing after this file yet (the live one has no record yet): stay.
                None => break,
            }
        }
        Ok((lines, gaps))
    }

    /// The file holding `self.expect`: the last file (oldest rotated first, the live one last)
    /// whose first record is not after it. When every file starts after it, the records before
    /// the oldest are gone: a gap. `past`: the file just read to its end, which cannot hold
    /// `self.expect`; when it is the one found, the next file is taken, and the records
    /// between are a gap (a rotated file removed from the middle of the log).
    fn locate(
        &mut self,
        gaps: &mut Vec<Gap>,
        past: Option<(u64, u64)>,
    ) -> io::Result<Option<Reading>> {
        let mut files: Vec<PathBuf> = rotated_files(&self.path)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        files.push(self.path.clone());
        let starts: Vec<(PathBuf, u64)> = files
            .into_iter()
            .filter_map(|file| first_seq(&file).map(|first| (file, first)))
            .collect();
        let Some(mut index) = starts
            .iter()
            .rposition(|(_, first)| *first <= self.expect)
            .or((!starts.is_empty()).then_some(0))
        else {
            return Ok(None);
        };
        let mut reading = open_reading(&starts[index].0)?;
        if let (Some(found), Some(past)) = (&reading, past)
            && found.id == past
        {
            match starts.get(index + 1) {
                Some(_) => {
                    index += 1;
                    reading = open_reading(&starts[index].0)?;
                }
                // Still the newest file holding records (the live one has none yet).
                None => return Ok(None),
            }
        }
        let first = starts[index].1;
        if first > self.expect {
            gaps.push(Gap {
                from: self.expect,
                to: first,
            });
            self.expect = first;
        }
        Ok(reading)
    }
}

/// The file at `path` opened for reading from its start; `None` when it is gone.
fn open_reading(path: &Path) -> io::Result<Option<Reading>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let id = file_id(&file.metadata()?);
    Ok(Some(Reading {
        file,
        offset: 0,
        id,
    }))
}

/// Read whole lines from `reading` into `lines`; skip those before `expect` (already
/// shipped), record a gap when a `seq` jumps. Returns whether the end of the file was reached.
fn read_lines(
    reading: &mut Reading,
    lines: &mut Vec<Line>,
    bytes: &mut usize,
    max: usize,
    max_bytes: usize,
    expect: &mut u64,
    gaps: &mut Vec<Gap>,
) -> io::Result<bool> {
    const CHUNK: usize = 64 << 10;
    let mut buffer = vec![0u8; CHUNK];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let read = read_at(
            &reading.file,
            &mut buffer,
            reading.offset + carry.len() as u64,
        )?;
        if read == 0 {
            return Ok(true);
        }
        carry.extend_from_slice(&buffer[..read]);
        let mut start = 0;
        while let Some(end) = carry[start..].iter().position(|&b| b == b'\n') {
            let line = &carry[start..start + end];
            let consumed = end + 1;
            match seq_of(line) {
                Some(seq) if seq < *expect => {}
                Some(seq) => {
                    if seq > *expect {
                        gaps.push(Gap {
                            from: *expect,
                            to: seq,
                        });
                    }
                    *bytes += line.len();
                    lines.push(Line {
                        seq,
                        bytes: line.to_vec(),
                    });
                    *expect = seq + 1;
                }
                None => {
                    if !line.is_empty() {
                        tracing::warn!(
                            offset = reading.offset,
                            "a line of the audit log is not a record (torn by a crash?); not shipped, `warden audit verify` reports it"
                        );
                    }
                }
            }
            start += consumed;
            reading.offset += consumed as u64;
            if lines.len() >= max || *bytes >= max_bytes {
                return Ok(false);
            }
        }
        carry.drain(..start);
        if carry.len() > 16 << 20 {
            // A "line" of more than 16MiB without a newline is not a record.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the audit log holds a line longer than 16MiB",
            ));
        }
    }
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

/// The `seq` of a record's line.
pub(super) fn seq_of(line: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_slice::<Seq>(line).ok().map(|s| s.seq)
}

/// The `seq` of the first record of the file at `path`.
fn first_seq(path: &Path) -> Option<u64> {
    let file = File::open(path).ok()?;
    let mut buffer = vec![0u8; 8 << 10];
    let mut line: Vec<u8> = Vec::new();
    let mut offset = 0;
    loop {
        let read = read_at(&file, &mut buffer, offset).ok()?;
        if read == 0 {
            return None;
        }
        if let Some(end) = buffer[..read].iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buffer[..end]);
            return seq_of(&line);
        }
        line.extend_from_slice(&buffer[..read]);
        offset += read as u64;
        if line.len() > 16 << 20 {
            return None;
        }
    }
}

/// The `seq` the log's next record will have: one after its last record (the live file's, or
/// the newest rotated file's when the live one is empty); 0 for no log.
pub fn written(path: &Path) -> u64 {
    let mut files: Vec<PathBuf> = rotated_files(path).into_iter().map(|(_, p)| p).collect();
    files.push(path.to_path_buf());
    for file in files.iter().rev() {
        if let Ok(tail) = last_lines(file, 1)
            && let Some(seq) = tail.last().and_then(|line| seq_of(line))
        {
            return seq + 1;
        }
    }
    0
}

fn file_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// A sink's cursor: `{path}.ship/{name}.cursor`.
#[derive(Serialize, Deserialize)]
struct CursorFile {
    /// The first `seq` the sink has not acknowledged.
    next_seq: u64,
    /// The SHA-256 of the last acknowledged record's line (the chain's link to the next
    /// record): tells, at start, whether the log is still the one the cursor is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_hash: Option<String>,
}

/// A persisted cursor.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Position {
    /// The first `seq` not acknowledged.
    pub next_seq: u64,
    /// The hash of the last acknowledged line, when known.
    pub last_hash: Option<String>,
}

/// Whether the log at `log` continues from `position`: the record at `next_seq` chains to
/// `last_hash` (or, when there is none yet, the log's last record is the one acknowledged
/// last). `true` when it cannot tell (no hash kept, or that record is missing: a gap, which
/// is reported when read).
pub(super) fn continues(log: &Path, position: &Position) -> bool {
    let Some(hash) = &position.last_hash else {
        return true;
    };
    let mut tail = Tail::new(log, position.next_seq);
    match tail.read(1, usize::MAX) {
        Ok((lines, _)) => match lines.first() {
            Some(line) if line.seq == position.next_seq => {
                #[derive(Deserialize)]
                struct Prev {
                    prev: String,
                }
                serde_json::from_slice::<Prev>(&line.bytes).is_ok_and(|p| &p.prev == hash)
            }
            Some(_) => true,
            None => last_line(log).is_none_or(|line| &crate::audit::line_hash(&line) == hash),
        },
        Err(_) => true,
    }
}

/// The last line of the log at `path` (the live file's, or the newest rotated file's when the
/// live one is empty).
fn last_line(path: &Path) -> Option<Vec<u8>> {
    let mut files: Vec<PathBuf> = rotated_files(path).into_iter().map(|(_, p)| p).collect();
    files.push(path.to_path_buf());
    files
        .iter()
        .rev()
        .find_map(|file| last_lines(file, 1).ok().and_then(|mut lines| lines.pop()))
}

/// The directory of the cursors of the log at `path`: `{path}.ship`.
pub fn ship_dir(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".ship");
    path.with_file_name(name)
}

/// A sink's persisted cursor, and the lock that makes one process ship for it.
pub(super) struct Cursor {
    path: PathBuf,
    lock_path: PathBuf,
    lock: Option<File>,
}

impl Cursor {
    pub(super) fn new(log: &Path, name: &str) -> Cursor {
        let dir = ship_dir(log);
        Cursor {
            path: dir.join(format!("{name}.cursor")),
            lock_path: dir.join(format!("{name}.lock")),
            lock: None,
        }
    }

    /// Take the sink's lock (several warden processes may share a log; one ships for each
    /// sink at a time). `Ok(false)`: another process holds it.
    pub(super) fn try_lock(&mut self) -> io::Result<bool> {
        if self.lock.is_some() {
            return Ok(true);
        }
        if let Some(dir) = self.lock_path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)?;
        match file.try_lock() {
            Ok(()) => {
                self.lock = Some(file);
                Ok(true)
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// The persisted cursor: 0 when the sink never shipped.
    pub(super) fn load(&self) -> io::Result<Position> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice::<CursorFile>(&bytes)
                .map(|c| Position {
                    next_seq: c.next_seq,
                    last_hash: c.last_hash,
                })
                .map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} is not a cursor: {e}", self.path.display()),
                    )
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Position::default()),
            Err(e) => Err(e),
        }
    }

    /// Persist `next_seq`: written to a temporary file, synced, renamed over the cursor.
    pub(super) fn store(&self, next_seq: u64, last_hash: Option<String>) -> io::Result<()> {
        use std::io::Write;
        let mut tmp = self.path.clone();
        tmp.set_extension("cursor.tmp");
        let mut file = File::create(&tmp)?;
        serde_json::to_writer(
            &mut file,
            &CursorFile {
                next_seq,
                last_hash,
            },
        )?;
        file.write_all(b"\n")?;
        file.sync_data()?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_records(path: &Path, seqs: std::ops::RangeInclusive<u64>) {
        let text: String = seqs
            .map(|seq| format!("{{\"seq\":{seq},\"prev\":\"x\"}}\n"))
            .collect();
        std::fs::write(path, text).expect("write");
    }

    fn seqs(lines: &[Line]) -> Vec<u64> {
        lines.iter().map(|l| l.seq).collect()
    }

    #[test]
    fn reads_across_rotated_files_and_reports_a_removed_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("audit.jsonl");
        write_records(&crate::audit::rotated_name(&log, 1), 0..=2);
        // .000002 (3..=5) was removed by hand.
        write_records(&crate::audit::rotated_name(&log, 3), 6..=8);
        write_records(&log, 9..=10);
        let mut tail = Tail::new(&log, 0);
        let (lines, gaps) = tail.read(100, usize::MAX).expect("read");
        assert_eq!(seqs(&lines), [0, 1, 2, 6, 7, 8, 9, 10]);
        assert_eq!(gaps, [Gap { from: 3, to: 6 }]);
        // Caught up: nothing more, and a record appended later is read.
        assert!(tail.read(100, usize::MAX).expect("read").0.is_empty());
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .expect("open");
        std::io::Write::write_all(&mut file, b"{\"seq\":11,\"prev\":\"x\"}\n").expect("append");
        assert_eq!(seqs(&tail.read(100, usize::MAX).expect("read").0), [11]);
    }

    #[test]
    fn starts_at_the_cursor_in_batches_and_waits_for_whole_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("audit.jsonl");
        write_records(&crate::audit::rotated_name(&log, 1), 0..=4);
        write_records(&log, 5..=9);
        let mut tail = Tail::new(&log, 3);
        assert_eq!(
            seqs(&tail.read(4, usize::MAX).expect("read").0),
            [3, 4, 5, 6]
        );
        assert_eq!(seqs(&tail.read(4, usize::MAX).expect("read").0), [7, 8, 9]);
        // A record being written (no newline yet) is not read.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .expect("open");
        std::io::Write::write_all(&mut file, b"{\"seq\":10,\"pr").expect("append");
        assert!(tail.read(4, usize::MAX).expect("read").0.is_empty());
        std::io::Write::write_all(&mut file, b"ev\":\"x\"}\n").expect("append");
        assert_eq!(seqs(&tail.read(4, usize::MAX).expect("read").0), [10]);
    }

    #[test]
    fn follows_a_rotation_while_reading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("audit.jsonl");
        write_records(&log, 0..=2);
        let mut tail = Tail::new(&log, 0);
        assert_eq!(
            seqs(&tail.read(100, usize::MAX).expect("read").0),
            [0, 1, 2]
        );
        // The writer appends one more, rotates, and starts a new live file.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .expect("open");
        std::io::Write::write_all(&mut file, b"{\"seq\":3,\"prev\":\"x\"}\n").expect("append");
        std::fs::rename(&log, crate::audit::rotated_name(&log, 1)).expect("rotate");
        // Mid-rotation (no live file yet), the reader still gets what the old file holds.
        assert_eq!(seqs(&tail.read(100, usize::MAX).expect("read").0), [3]);
        write_records(&log, 4..=5);
        let (lines, gaps) = tail.read(100, usize::MAX).expect("read");
        assert_eq!(seqs(&lines), [4, 5]);
        assert!(gaps.is_empty());
    }
}
