//! Checking a hash chain: every line parses, `seq` counts up by one, and every `prev` is the
//! SHA-256 of the line before it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{GENESIS, line_hash};

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
    let mut previous: Option<Previous> = None;
    let mut report = VerifyReport {
        files: files.len(),
        records: 0,
        seqs: None,
        continues: false,
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
            let (seq, prev) = parse(&bytes, complete).map_err(|reason| broken(number, reason))?;
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
    Ok(report)
}

/// `seq` and `prev` of one line.
fn parse(bytes: &[u8], complete: bool) -> Result<(u64, String), String> {
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
        .ok_or("the record has no `prev` SHA-256")?;
    Ok((seq, prev.to_ascii_lowercase()))
}

fn short(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
