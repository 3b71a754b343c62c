//! The `files` plugin: read, list, search and write files in the directories the operator granted.
//!
//! It uses plain `std::fs`: the WASI preopens the host grants are the only directories that
//! exist, and the host (cap-std) refuses `..` escapes, symlinks that point out and writes to
//! read-only grants. This code only turns those refusals into clear messages.

warden_sdk::wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "warden:files/plugin",
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: {
        "warden:mcp/types@0.1.0": warden_sdk::types,
        "warden:mcp/host@0.1.0": warden_sdk::host,
    },
});

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use exports::warden::files::files::{Entry, EntryInfo, EntryKind, Guest, Match};

/// Without `max-bytes`, `read-text` refuses files larger than this.
const DEFAULT_MAX_READ: u64 = 1024 * 1024;
/// Default number of search matches.
const DEFAULT_MAX_RESULTS: u32 = 100;
/// A matched line longer than this is cut (in characters).
const MAX_LINE_CHARS: usize = 500;
/// Bytes inspected for a NUL to decide a file is binary.
const BINARY_SNIFF: usize = 8192;

struct Files;

impl Guest for Files {
    fn read_text(path: String, max_bytes: Option<u32>) -> Result<String, String> {
        let file = fs::File::open(&path).map_err(|e| describe(e, &path, Op::Read))?;
        let meta = file.metadata().map_err(|e| describe(e, &path, Op::Read))?;
        if meta.is_dir() {
            return Err(format!("is a directory: {path} (use list)"));
        }
        let limit = match max_bytes {
            Some(n) => u64::from(n),
            None if meta.len() > DEFAULT_MAX_READ => {
                return Err(format!(
                    "too large: {path} is {} bytes; pass max-bytes to read its start",
                    meta.len()
                ));
            }
            None => DEFAULT_MAX_READ,
        };
        let mut bytes = Vec::with_capacity(meta.len().min(limit) as usize);
        file.take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| describe(e, &path, Op::Read))?;
        match String::from_utf8(bytes) {
            Ok(text) => Ok(text),
            // A cut in the middle of the last character is ours, not the file's fault.
            Err(e) if e.utf8_error().error_len().is_none() && max_bytes.is_some() => {
                let valid = e.utf8_error().valid_up_to();
                let mut bytes = e.into_bytes();
                bytes.truncate(valid);
                Ok(String::from_utf8(bytes).expect("prefix checked valid"))
            }
            Err(_) => Err(format!("not UTF-8 text: {path}")),
        }
    }

    fn list(path: String) -> Result<Vec<Entry>, String> {
        let dir = fs::read_dir(&path).map_err(|e| describe(e, &path, Op::List))?;
        let mut entries = Vec::new();
        for item in dir {
            let item = item.map_err(|e| describe(e, &path, Op::List))?;
            let name = item.file_name().to_string_lossy().into_owned();
            let meta = item
                .metadata()
                .map_err(|e| describe(e, &format!("{path}/{name}"), Op::Read))?;
            entries.push(Entry {
                name,
                kind: kind_of(&meta),
                size: if meta.is_dir() { 0 } else { meta.len() },
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn stat(path: String) -> Result<EntryInfo, String> {
        let meta = fs::symlink_metadata(&path).map_err(|e| describe(e, &path, Op::Read))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        Ok(EntryInfo {
            kind: kind_of(&meta),
            size: if meta.is_dir() { 0 } else { meta.len() },
            modified,
            path,
        })
    }

    fn search(
        path: String,
        pattern: String,
        max_results: Option<u32>,
    ) -> Result<Vec<Match>, String> {
        if pattern.is_empty() {
            return Err("pattern is empty".into());
        }
        let max = max_results.unwrap_or(DEFAULT_MAX_RESULTS) as usize;
        let mut found = Vec::new();
        let meta = fs::symlink_metadata(&path).map_err(|e| describe(e, &path, Op::Read))?;
        if meta.is_dir() {
            search_dir(Path::new(&path), &pattern, max, &mut found)?;
        } else if meta.is_file() {
            search_file(Path::new(&path), &pattern, max, &mut found)
                .map_err(|e| describe(e, &path, Op::Read))?;
        } else {
            return Err(format!("not a file or directory: {path}"));
        }
        Ok(found)
    }

    fn write_text(path: String, content: String, append: Option<bool>) -> Result<u64, String> {
        let append = append.unwrap_or(false);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .append(append)
            .truncate(!append)
            .open(&path)
            .map_err(|e| describe(e, &path, Op::Write))?;
        file.write_all(content.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| describe(e, &path, Op::Write))?;
        Ok(content.len() as u64)
    }
}

/// Walks `dir` in name order, depth first, until `max` matches are found.
fn search_dir(dir: &Path, pattern: &str, max: usize, found: &mut Vec<Match>) -> Result<(), String> {
    let shown = dir.display().to_string();
    let mut children: Vec<(PathBuf, fs::FileType)> = fs::read_dir(dir)
        .map_err(|e| describe(e, &shown, Op::List))?
        .filter_map(|item| item.ok())
        .filter_map(|item| Some((item.path(), item.file_type().ok()?)))
        .collect();
    children.sort_by(|a, b| a.0.cmp(&b.0));
    for (child, kind) in children {
        if found.len() >= max {
            break;
        }
        if kind.is_dir() {
            // An unreadable subdirectory is skipped, not fatal: report what can be read.
            let _ = search_dir(&child, pattern, max, found);
        } else if kind.is_file() {
            let _ = search_file(&child, pattern, max, found);
        }
    }
    Ok(())
}

/// Adds the lines of `file` that contain `pattern`; stops quietly at binary or non-UTF-8 content.
fn search_file(file: &Path, pattern: &str, max: usize, found: &mut Vec<Match>) -> io::Result<()> {
    let mut reader = BufReader::new(fs::File::open(file)?);
    if reader
        .fill_buf()?
        .iter()
        .take(BINARY_SNIFF)
        .any(|&b| b == 0)
    {
        return Ok(());
    }
    let mut raw = Vec::new();
    let mut number = 0u32;
    while found.len() < max {
        raw.clear();
        if reader.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        number = number.saturating_add(1);
        let Ok(line) = std::str::from_utf8(&raw) else {
            break;
        };
        let line = line.trim_end_matches(['\n', '\r']);
        if line.contains(pattern) {
            found.push(Match {
                file: file.display().to_string(),
                line: number,
                text: line.chars().take(MAX_LINE_CHARS).collect(),
            });
        }
    }
    Ok(())
}

fn kind_of(meta: &fs::Metadata) -> EntryKind {
    let kind = meta.file_type();
    if kind.is_symlink() {
        EntryKind::Symlink
    } else if kind.is_dir() {
        EntryKind::Dir
    } else if kind.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Read,
    List,
    Write,
}

/// WASI's `ENOTCAPABLE`: the path lies outside every granted directory.
const ENOTCAPABLE: i32 = 76;

/// Turns an I/O error into a message an agent can act on.
fn describe(err: io::Error, path: &str, op: Op) -> String {
    use io::ErrorKind as K;
    if err.raw_os_error() == Some(ENOTCAPABLE) {
        return format!("outside the granted directories: {path}");
    }
    match err.kind() {
        K::NotFound if !Path::new(path).is_absolute() => {
            format!("not found: {path} (use an absolute path inside a granted directory)")
        }
        K::NotFound if path == "/" => {
            "not found: / (only the granted directories are visible, not their parents)".to_owned()
        }
        K::NotFound if !top_level_exists(path) => {
            format!("not found: {path} (outside the granted directories)")
        }
        K::NotFound => format!("not found: {path}"),
        K::PermissionDenied if has_parent_dir(path) => {
            format!("permission denied: {path} (`..` may not leave a granted directory)")
        }
        K::PermissionDenied | K::ReadOnlyFilesystem if op == Op::Write => {
            format!("permission denied: {path} (its directory is granted read-only)")
        }
        K::PermissionDenied => format!("permission denied: {path}"),
        K::NotADirectory => format!("not a directory: {path}"),
        K::IsADirectory => format!("is a directory: {path}"),
        K::InvalidFilename => format!("invalid file name: {path}"),
        _ => format!("{path}: {err}"),
    }
}

/// Whether the first component of absolute `path` (`/workspace` of `/workspace/a.txt`) exists:
/// if not, the path cannot be inside any granted directory.
fn top_level_exists(path: &str) -> bool {
    let mut parts = Path::new(path).components();
    match (parts.next(), parts.next()) {
        (Some(root), Some(first)) => fs::metadata(Path::new(root.as_os_str()).join(first)).is_ok(),
        _ => true,
    }
}

fn has_parent_dir(path: &str) -> bool {
    Path::new(path)
        .components()
        .any(|c| c == std::path::Component::ParentDir)
}

export!(Files);
