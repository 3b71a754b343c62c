//! Checking a hash chain: every line parses, `seq` counts up by one, and every `prev` is the
//! SHA-256 of the line before it; every checkpoint's `head` is the chain's head at its place,
//! and with a public key, every checkpoint's signature holds and the records after the last
//! one stay within the policy it signed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::checkpoint::{CHECKPOINT, CheckpointRecord, PublicKey, signed_bytes};
use super::{GENESIS, START, line_hash};

/// Slack on `checkpoint_interval` when checking the records after the last checkpoint: the
/// timer's own delay, lock waits, millisecond timestamps.
const GRACE_MS: u64 = 5_000;

/// A chain that held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Files checked.
    pub files: usize,
    /// Records checked.
    pub records: u64,
    /// `seq` of the first and last record, when there were records.
    pub seqs: Option<(u64, u64)>,
    /// Whether the first record continues a chain from an earlier file (its `prev` is not the
    /// genesis hash): that link could not be checked.
    pub continues: bool,
    /// Checkpoint records found.
    pub checkpoints: u64,
    /// Whether their signatures were checked (a key was given).
    pub signed: bool,
    /// The last checkpoint, when there is one.
    pub last_checkpoint: Option<LastCheckpoint>,
    /// Records after the last checkpoint (every record when there is none): not signed yet.
    pub unsigned: u64,
    /// The replica ids named by start and checkpoint records, in the order first seen.
    pub replicas: Vec<String>,
    /// The witnesses checked (indexes into those given): those of the log's replicas, within
    /// its files' seqs.
    pub witnessed: Vec<usize>,
}

/// A checkpoint kept elsewhere as it was written (`GET /audit/checkpoint`, a shipped copy):
/// the log must still hold it, which no cut of the log can fake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    pub seq: u64,
    pub head: String,
    pub sig: String,
    pub replica: String,
    pub ts: String,
}

impl Witness {
    /// One checkpoint line, as `GET /audit/checkpoint` serves it.
    pub fn parse(line: &str) -> Result<Witness, String> {
        let value: Value =
            serde_json::from_str(line).map_err(|e| format!("not a JSON checkpoint: {e}"))?;
        let seq = value
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or("the checkpoint has no `seq`")?;
        if value.get("kind").and_then(Value::as_str) != Some(CHECKPOINT) {
            return Err("not a checkpoint (`kind` is not \"checkpoint\")".to_owned());
        }
        let record: CheckpointRecord<'_> =
            serde_json::from_value(value).map_err(|e| format!("a malformed checkpoint: {e}"))?;
        Ok(Witness {
            seq,
            head: record.head.to_ascii_lowercase(),
            sig: record.sig,
            replica: record.replica.into_owned(),
            ts: record.ts,
        })
    }
}

/// Where the last checkpoint of a log is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastCheckpoint {
    pub seq: u64,
    pub ts: String,
    pub replica: String,
    /// Its key id.
    pub key: String,
}

/// What is known of the records after the last checkpoint, for the policy check.
#[derive(Default)]
struct Tail {
    /// The policy of the last checkpoint: `every`, `interval_ms`.
    policy: Option<(u64, u64)>,
    /// The earliest moment (ms since the epoch) an unsigned record was written by (its `ts`
    /// plus `duration_us`).
    earliest_end: Option<u64>,
    /// The first line past the policy, with why.
    over: Option<Broken>,
}

/// Where a chain broke: the first line that does not hold. `line` is 1-based; 0 means the
/// file itself (it could not be read).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {reason}", file.display())]
pub struct Broken {
    pub file: PathBuf,
    pub line: usize,
    pub reason: String,
}

/// The line before the one being checked.
struct Previous {
    file: PathBuf,
    line: usize,
    seq: u64,
    hash: String,
}

/// Check the chain through `files`, in order (rotated files oldest first, then the live one).
///
/// A line whose content was changed is reported at that line: the next line's `prev` no longer
/// matches it. Removed, inserted or reordered lines are reported where `seq` stops counting up
/// by one. A change to the very last line cannot be detected by the chain alone.
pub fn verify(files: &[PathBuf]) -> Result<VerifyReport, Broken> {
    verify_signed(files, None)
}

/// [`verify`], and every checkpoint's `head` matches the chain. With `key`: every checkpoint
/// is signed by `key` (its key id and its signature), there is at least one, and the records
/// after the last one stay within the policy that checkpoint signed: fewer than `every`, and
/// none written more than `interval_ms` (plus a grace of 5 s) after an earlier one. More means
/// a checkpoint that was written is gone: the log was cut after it.
pub fn verify_signed(files: &[PathBuf], key: Option<&PublicKey>) -> Result<VerifyReport, Broken> {
    verify_witnessed(files, key, &[])
}

/// [`verify_signed`], and every witness of a replica the log names is a checkpoint of the log,
/// unchanged: a log that ends before one was cut after it was written. Witnesses of other
/// replicas, or before the first file, are left out (`witnessed` lists those checked).
pub fn verify_witnessed(
    files: &[PathBuf],
    key: Option<&PublicKey>,
    witnesses: &[Witness],
) -> Result<VerifyReport, Broken> {
    let mut found: BTreeMap<u64, (String, String)> = BTreeMap::new();
    let mut previous: Option<Previous> = None;
    let mut tail = Tail::default();
    let mut report = VerifyReport {
        files: files.len(),
        records: 0,
        seqs: None,
        continues: false,
        checkpoints: 0,
        signed: key.is_some(),
        last_checkpoint: None,
        unsigned: 0,
        replicas: Vec::new(),
        witnessed: Vec::new(),
    };
    for path in files {
        let broken = |line: usize, reason: String| Broken {
            file: path.clone(),
            line,
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| broken(0, format!("cannot read: {e}")))?;
        let mut reader = BufReader::new(file);
        let mut bytes = Vec::new();
        let mut number = 0;
        loop {
            bytes.clear();
            let read = reader
                .read_until(b'\n', &mut bytes)
                .map_err(|e| broken(number + 1, format!("cannot read: {e}")))?;
            if read == 0 {
                break;
            }
            number += 1;
            let complete = bytes.last() == Some(&b'\n');
            if complete {
                bytes.pop();
            }
            let (seq, prev, value) =
                parse(&bytes, complete).map_err(|reason| broken(number, reason))?;
            match &previous {
                None => {
                    if prev == GENESIS && seq != 0 {
                        return Err(broken(
                            number,
                            format!(
                                "the chain starts here (prev is the genesis hash) but seq is {seq}, not 0"
                            ),
                        ));
                    }
                    report.continues = prev != GENESIS;
                }
                Some(before) => {
                    if seq != before.seq.wrapping_add(1) {
                        return Err(broken(
                            number,
                            format!(
                                "seq {seq} follows seq {}: records were removed, inserted or reordered before this line",
                                before.seq
                            ),
                        ));
                    }
                    if prev != before.hash {
                        return Err(Broken {
                            file: before.file.clone(),
                            line: before.line,
                            reason: format!(
                                "this line does not match the SHA-256 recorded for it by the next line ({}:{number}): it was altered",
                                short(path)
                            ),
                        });
                    }
                }
            }
            let kind = value.get("kind").and_then(Value::as_str);
            if let Some(replica) = value.get("replica").and_then(Value::as_str)
                && matches!(kind, Some(START | CHECKPOINT))
                && !report.replicas.iter().any(|r| r == replica)
            {
                report.replicas.push(replica.to_owned());
            }
            if kind == Some(CHECKPOINT) {
                let checkpoint =
                    checkpoint(seq, &prev, value, key).map_err(|reason| broken(number, reason))?;
                if witnesses.iter().any(|w| w.seq == seq) {
                    found.insert(
                        seq,
                        (checkpoint.head.to_ascii_lowercase(), checkpoint.sig.clone()),
                    );
                }
                report.checkpoints += 1;
                report.unsigned = 0;
                tail = Tail {
                    policy: Some((checkpoint.every, checkpoint.interval_ms)),
                    ..Tail::default()
                };
                report.last_checkpoint = Some(LastCheckpoint {
                    seq,
                    ts: checkpoint.ts,
                    replica: checkpoint.replica.into_owned(),
                    key: checkpoint.key.into_owned(),
                });
            } else {
                report.unsigned += 1;
                tail.add(&value, report.unsigned, || broken(number, String::new()));
            }
            report.records += 1;
            report.seqs = Some((report.seqs.map_or(seq, |(first, _)| first), seq));
            previous = Some(Previous {
                file: path.clone(),
                line: number,
                seq,
                hash: line_hash(&bytes),
            });
        }
    }
    for (index, witness) in witnesses.iter().enumerate() {
        let before = report.seqs.is_some_and(|(first, _)| witness.seq < first);
        if !report.replicas.contains(&witness.replica) || before {
            continue;
        }
        report.witnessed.push(index);
        let file = files.last().cloned().unwrap_or_default();
        let last = report.seqs.map_or(0, |(_, last)| last);
        match found.get(&witness.seq) {
            Some((head, sig)) if *head == witness.head && *sig == witness.sig => {}
            Some(_) => {
                return Err(Broken {
                    file,
                    line: 0,
                    reason: format!(
                        "the checkpoint at seq {} is not the one witnessed (replica {}, {}): the log was rewritten",
                        witness.seq, witness.replica, witness.ts
                    ),
                });
            }
            None if report.seqs.is_none() || witness.seq > last => {
                return Err(Broken {
                    file,
                    line: 0,
                    reason: format!(
                        "the log ends at seq {last}, before the checkpoint witnessed at seq {} (replica {}, {}): records were removed from its end",
                        witness.seq, witness.replica, witness.ts
                    ),
                });
            }
            None => {
                return Err(Broken {
                    file,
                    line: 0,
                    reason: format!(
                        "seq {} is not the checkpoint witnessed there (replica {}, {}): the log was rewritten, or the witness is another log's",
                        witness.seq, witness.replica, witness.ts
                    ),
                });
            }
        }
    }
    if let Some(key) = key {
        if report.checkpoints == 0 {
            return Err(Broken {
                file: files.last().cloned().unwrap_or_default(),
                line: 0,
                reason: format!(
                    "no signed checkpoint in the log: it was written without [audit] signing_key, or its checkpoints were removed (key {})",
                    key.id()
                ),
            });
        }
        if let Some(over) = tail.over {
            return Err(over);
        }
    }
    Ok(report)
}

/// Check a checkpoint line: `head` is the chain's head (its `prev`), and with `key`, it is
/// signed by `key`.
fn checkpoint(
    seq: u64,
    prev: &str,
    value: Value,
    key: Option<&PublicKey>,
) -> Result<CheckpointRecord<'static>, String> {
    let record: CheckpointRecord<'static> =
        serde_json::from_value(value).map_err(|e| format!("a malformed checkpoint: {e}"))?;
    if !record.head.eq_ignore_ascii_case(prev) {
        return Err(format!(
            "the checkpoint's head {} does not match the chain's head here ({prev}): it was moved or altered",
            short_hash(&record.head)
        ));
    }
    if let Some(key) = key {
        let id = key.id();
        if record.key != id {
            return Err(format!(
                "the checkpoint is signed by key {}, not by the key given ({id}): the wrong key, or a checkpoint forged with another key",
                short_hash(&record.key)
            ));
        }
        match key.verify(&signed_bytes(seq, &record), &record.sig) {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "the checkpoint's signature does not hold under key {id}: the checkpoint was altered or forged"
                ));
            }
            Err(why) => return Err(format!("the checkpoint's `sig` is malformed: {why}")),
        }
    }
    Ok(record)
}

impl Tail {
    /// One more record after the last checkpoint (`unsigned` of them now): note the first
    /// that the checkpoint's policy says should have been signed.
    fn add(&mut self, value: &Value, unsigned: u64, at: impl FnOnce() -> Broken) {
        let Some((every, interval_ms)) = self.policy else {
            return;
        };
        if self.over.is_some() {
            return;
        }
        let ts = value
            .get("ts")
            .and_then(Value::as_str)
            .and_then(super::epoch_millis)
            .and_then(|ms| u64::try_from(ms).ok());
        let end = ts.map(|ts| {
            let us = value
                .get("duration_us")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            ts.saturating_add(us / 1000)
        });
        let reason = if unsigned >= every {
            Some(format!(
                "{unsigned} records follow the last checkpoint, and its policy signs every {every}: a later checkpoint was removed (the log was cut after it)"
            ))
        } else {
            match (ts, self.earliest_end) {
                (Some(ts), Some(earliest))
                    if ts
                        > earliest
                            .saturating_add(interval_ms)
                            .saturating_add(GRACE_MS) =>
                {
                    Some(format!(
                        "this record came {} s after an unsigned one was written, and the last checkpoint's policy signs within {} s: a later checkpoint was removed (the log was cut after it)",
                        (ts - earliest) / 1000,
                        interval_ms / 1000
                    ))
                }
                _ => None,
            }
        };
        if let Some(reason) = reason {
            let mut broken = at();
            broken.reason = reason;
            self.over = Some(broken);
        }
        if let Some(end) = end {
            self.earliest_end = Some(self.earliest_end.map_or(end, |e| e.min(end)));
        }
    }
}

fn short_hash(text: &str) -> String {
    text.chars().take(16).collect()
}

/// The logs in `dir`, each with its files oldest first (rotated `NAME.000001`, ..., then the
/// live `NAME`): every regular file but the writers' pages (`NAME.writers`), grouped by the
/// name without its rotation number, sorted by name.
pub fn group_logs(dir: &Path) -> std::io::Result<Vec<(PathBuf, Vec<PathBuf>)>> {
    let mut logs: BTreeMap<PathBuf, Vec<(u64, PathBuf)>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.ends_with(".writers") {
            continue;
        }
        let rotated = name.rsplit_once('.').and_then(|(base, n)| {
            (n.len() >= 6 && n.bytes().all(|b| b.is_ascii_digit()))
                .then(|| n.parse::<u64>().ok().map(|n| (base.to_owned(), n)))?
        });
        let (base, n) = rotated.unwrap_or((name, u64::MAX));
        logs.entry(dir.join(base))
            .or_default()
            .push((n, entry.path()));
    }
    Ok(logs
        .into_iter()
        .map(|(live, mut files)| {
            files.sort();
            (live, files.into_iter().map(|(_, path)| path).collect())
        })
        .collect())
}

/// `seq`, `prev` and the whole record of one line.
fn parse(bytes: &[u8], complete: bool) -> Result<(u64, String, Value), String> {
    if bytes.is_empty() {
        return Err("empty line".to_owned());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        if complete {
            format!("not a JSON record: {e}")
        } else {
            format!("the last record is cut short (no newline): {e}")
        }
    })?;
    let seq = value
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or("the record has no `seq` number")?;
    let prev = value
        .get("prev")
        .and_then(Value::as_str)
        .filter(|p| p.len() == 64 && p.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or("the record has no `prev` SHA-256")?
        .to_ascii_lowercase();
    Ok((seq, prev, value))
}

fn short(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
