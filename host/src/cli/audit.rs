//! `warden audit verify | tail`: check the chain, read (and follow) the log.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use warden::audit::{Outcome, PublicKey, VerifyReport, Witness};
use warden::manifest::Manifest;

use super::{AuditCommand, ManifestArg, write_stdout};

/// How often `tail -f` looks for new records.
const POLL: Duration = Duration::from_millis(200);

/// The names `--outcome` accepts.
pub(super) fn outcome_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(Outcome::ALL.map(Outcome::as_str))
}

/// `warden audit verify | tail`.
pub(super) fn audit(command: AuditCommand) -> Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            files,
            manifest,
            key,
            witness,
        } => {
            let witnesses = match witness {
                Some(path) => read_witnesses(&path)?,
                None => Vec::new(),
            };
            let key = match key {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read the key {}", path.display()))?;
                    Some(
                        warden::audit::PublicKey::parse(&text)
                            .with_context(|| format!("--key {}", path.display()))?,
                    )
                }
                None => None,
            };
            if let [dir] = files.as_slice()
                && dir.is_dir()
            {
                return verify_dir(dir, key.as_ref(), &witnesses);
            }
            let files = if files.is_empty() {
                manifest_log_files(manifest)?
            } else {
                files
            };
            verify(&files, key.as_ref(), &witnesses)
        }
        AuditCommand::Tail {
            file,
            manifest,
            lines,
            follow,
            principal,
            tool,
            outcome,
            json,
        } => {
            let file = match file {
                Some(file) => file,
                None => manifest_log(manifest)?,
            };
            let view = View {
                filter: Filter {
                    principal,
                    tool,
                    outcome,
                },
                json,
            };
            if follow {
                return self::follow(&file, lines, &view);
            }
            tail(&file, lines, &view)
        }
    }
}

/// The manifest's `[audit] path`.
fn manifest_log(manifest: ManifestArg) -> Result<PathBuf> {
    let path = manifest.path(None)?;
    let manifest = Manifest::load(&path).map_err(|e| anyhow::anyhow!("invalid manifest:\n{e}"))?;
    match manifest.audit {
        Some(audit) => Ok(audit.path),
        None => bail!(
            "{} has no [audit] section: add one (docs/MANIFEST.md, `[audit]`), or name the log file",
            manifest.path.display()
        ),
    }
}

/// The manifest's log with its rotated files, oldest first.
fn manifest_log_files(manifest: ManifestArg) -> Result<Vec<PathBuf>> {
    let live = manifest_log(manifest)?;
    let mut files: Vec<PathBuf> = warden::audit::rotated_files(&live)
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    if live.exists() {
        files.push(live.clone());
    }
    if files.is_empty() {
        bail!(
            "no audit log at {} yet: nothing has been recorded",
            live.display()
        );
    }
    Ok(files)
}

/// The checkpoint lines of `path` (blank lines skipped).
fn read_witnesses(path: &Path) -> Result<Vec<Witness>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the witness file {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            Witness::parse(line).map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))
        })
        .collect()
}

/// The witnesses no log checked, as an error.
fn unchecked(witnesses: &[Witness], checked: &[usize]) -> Option<String> {
    let missing: Vec<String> = witnesses
        .iter()
        .enumerate()
        .filter(|(i, _)| !checked.contains(i))
        .map(|(_, w)| format!("seq {} of replica {}", w.seq, w.replica))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "witnessed checkpoint(s) {} are in no log given: a replica's log is missing, or it starts after them",
            missing.join(", ")
        )
    })
}

/// Verify `files` as one chain and print the verdict.
fn verify(files: &[PathBuf], key: Option<&PublicKey>, witnesses: &[Witness]) -> Result<ExitCode> {
    match warden::audit::verify_witnessed(files, key, witnesses) {
        Ok(report) => {
            if let Some(missing) = unchecked(witnesses, &report.witnessed) {
                eprintln!("broken: {missing}");
                return Ok(ExitCode::FAILURE);
            }
            write_stdout(&verdict(&report));
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => {
            eprintln!("broken: {broken}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Verify every log in `dir` on its own; report each, fail if any fails.
fn verify_dir(dir: &Path, key: Option<&PublicKey>, witnesses: &[Witness]) -> Result<ExitCode> {
    let logs = warden::audit::group_logs(dir)
        .with_context(|| format!("cannot read the directory {}", dir.display()))?;
    if logs.is_empty() {
        bail!("no audit log in {}", dir.display());
    }
    let mut failed = 0;
    let mut checked = Vec::new();
    let mut out = String::new();
    for (live, files) in &logs {
        let name = live
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match warden::audit::verify_witnessed(files, key, witnesses) {
            Ok(report) => {
                checked.extend(report.witnessed.iter().copied());
                let replicas = replicas(&report.replicas);
                out.push_str(&format!("{name}{replicas}: {}", verdict(&report)));
            }
            Err(broken) => {
                failed += 1;
                // The replica is read from the file's own records, as far as they parse.
                let seen = warden::audit::verify(files)
                    .map(|r| replicas(&r.replicas))
                    .unwrap_or_default();
                out.push_str(&format!("{name}{seen}: broken: {broken}\n"));
            }
        }
    }
    write_stdout(&out);
    if failed == 0
        && let Some(missing) = unchecked(witnesses, &checked)
    {
        eprintln!("broken: {missing}");
        return Ok(ExitCode::FAILURE);
    }
    if failed > 0 {
        eprintln!(
            "broken: {failed} of {} log(s) in {}",
            logs.len(),
            dir.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// ` (replica a, b)`, or nothing.
fn replicas(ids: &[String]) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        format!(" (replica {})", ids.join(", "))
    }
}

/// What `verify` prints for a chain that held.
fn verdict(report: &VerifyReport) -> String {
    let seqs = report
        .seqs
        .map(|(first, last)| format!(" (seq {first}..={last})"))
        .unwrap_or_default();
    let mut out = format!(
        "ok: {} record(s){seqs} in {} file(s), chain intact\n",
        report.records, report.files
    );
    match (&report.last_checkpoint, report.signed) {
        (Some(last), signed) => {
            let how = if signed {
                "signatures checked"
            } else {
                "signatures NOT checked (give --key)"
            };
            out.push_str(&format!(
                "checkpoints: {} ({how}); last signed at seq {} {} by replica {} (key {}); {} record(s) after it unsigned\n",
                report.checkpoints, last.seq, last.ts, last.replica, last.key, report.unsigned
            ));
        }
        (None, _) => out.push_str("checkpoints: none (the log is not signed)\n"),
    }
    if !report.witnessed.is_empty() {
        out.push_str(&format!(
            "witnesses: {} checkpoint(s) kept elsewhere found unchanged\n",
            report.witnessed.len()
        ));
    }
    if report.continues {
        out.push_str(
            "note: the first record continues a chain from an earlier file; verify that file with these to check the link\n",
        );
    }
    out
}

/// Which records to show: each set field must equal the record's.
struct Filter {
    principal: Option<String>,
    tool: Option<String>,
    outcome: Option<String>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.principal.is_none() && self.tool.is_none() && self.outcome.is_none()
    }

    /// Whether `line` is shown. A line that is not a record is shown only without filters.
    fn matches(&self, line: &[u8]) -> bool {
        if self.is_empty() {
            return true;
        }
        let Ok(Value::Object(record)) = serde_json::from_slice::<Value>(line) else {
            return false;
        };
        let field = |key: &str, want: &Option<String>| match want {
            Some(want) => record.get(key).and_then(Value::as_str) == Some(want.as_str()),
            None => true,
        };
        field("principal", &self.principal)
            && field("tool", &self.tool)
            && field("outcome", &self.outcome)
    }
}

/// What `tail` prints and how.
struct View {
    filter: Filter,
    json: bool,
}

impl View {
    /// The shown form of `line` with its newline, or `None` when filtered out.
    fn render(&self, line: &[u8]) -> Option<Vec<u8>> {
        if line.is_empty() || !self.filter.matches(line) {
            return None;
        }
        let mut out = if self.json {
            line.to_vec()
        } else {
            warden::audit::pretty(line).into_bytes()
        };
        out.push(b'\n');
        Some(out)
    }
}

/// The last `n` shown records of `file`.
fn tail(file: &Path, n: usize, view: &View) -> Result<ExitCode> {
    let lines = if view.filter.is_empty() {
        warden::audit::last_lines(file, n)
            .with_context(|| format!("cannot read {}", file.display()))?
    } else {
        let opened = File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
        let len = opened.metadata()?.len();
        last_matching(opened, len, n, view)?
    };
    let mut out = Vec::new();
    for line in &lines {
        out.extend(view.render(line).unwrap_or_default());
    }
    write_stdout(&String::from_utf8_lossy(&out));
    Ok(ExitCode::SUCCESS)
}

/// The last `n` lines among the first `len` bytes of `file` that `view` shows.
fn last_matching(file: File, len: u64, n: usize, view: &View) -> Result<Vec<Vec<u8>>> {
    let mut kept = VecDeque::with_capacity(n.min(1024));
    let mut reader = BufReader::new(file.take(len));
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line)? > 0 {
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if n > 0 && view.filter.matches(&line) {
            if kept.len() == n {
                kept.pop_front();
            }
            kept.push_back(std::mem::take(&mut line));
        }
        line.clear();
    }
    Ok(kept.into())
}

/// `tail -f`: the last `n` shown records, then every new one, following the live file
/// through rotations (a new file at the path) and truncation, until interrupted or stdout
/// closes.
fn follow(path: &Path, n: usize, view: &View) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let mut live = loop {
        match File::open(path) {
            Ok(file) => break file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::thread::sleep(POLL),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    };
    let mut pos = live.metadata()?.len();
    let start = live.try_clone()?;
    for line in last_matching(start, pos, n, view)? {
        if emit(&mut out, view.render(&line)).is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let mut partial = Vec::new();
    loop {
        let Some(end) = read_new(&mut live, pos, &mut partial, &mut |line| {
            emit(&mut out, view.render(line))
        })?
        else {
            return Ok(ExitCode::SUCCESS);
        };
        pos = end;
        if out.flush().is_err() {
            return Ok(ExitCode::SUCCESS);
        }
        let current = live.metadata()?;
        match std::fs::metadata(path) {
            // Rotated or replaced: the old file is read to its end above; go on in the new one.
            Ok(at_path) if (at_path.dev(), at_path.ino()) != (current.dev(), current.ino()) => {
                let drained = read_new(&mut live, pos, &mut partial, &mut |line| {
                    emit(&mut out, view.render(line))
                })?;
                let (Some(end), Ok(())) = (drained, out.flush()) else {
                    return Ok(ExitCode::SUCCESS);
                };
                pos = end;
                match File::open(path) {
                    Ok(file) => {
                        live = file;
                        pos = 0;
                        partial.clear();
                    }
                    Err(_) => std::thread::sleep(POLL),
                }
                continue;
            }
            // Truncated in place: start again from its beginning.
            Ok(_) if current.len() < pos => {
                pos = 0;
                partial.clear();
            }
            _ => {}
        }
        std::thread::sleep(POLL);
    }
}

/// Read `file` from `pos` to its end, calling `each` for every complete line (a line still
/// being written waits in `partial`). Returns the new position, or `None` when `each` failed:
/// stdout was closed by its reader (`warden audit tail -f | head`).
fn read_new(
    file: &mut File,
    pos: u64,
    partial: &mut Vec<u8>,
    each: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<Option<u64>> {
    file.seek(SeekFrom::Start(pos))?;
    let mut added = Vec::new();
    file.read_to_end(&mut added)?;
    let end = pos + added.len() as u64;
    partial.extend_from_slice(&added);
    while let Some(newline) = partial.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = partial.drain(..=newline).collect();
        if each(&line[..line.len() - 1]).is_err() {
            return Ok(None);
        }
    }
    Ok(Some(end))
}

/// Write `rendered`, if any.
fn emit(out: &mut impl std::io::Write, rendered: Option<Vec<u8>>) -> std::io::Result<()> {
    match rendered {
        Some(bytes) => out.write_all(&bytes),
        None => Ok(()),
    }
}
