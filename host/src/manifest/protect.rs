//! The files a plugin must never reach through a `dirs` grant: warden's own.
//!
//! A plugin that can write the compile cache plants native code that warden runs outside the
//! sandbox; one that can write the manifest or a component grants itself anything at the next
//! start; one that can read the audit log reads every other principal's calls, and one that
//! can write it rewrites history. So a grant is refused when its directory contains, or lies
//! inside, any of:
//!
//! | path | refused for |
//! |---|---|
//! | the compile cache directory | `rw` |
//! | the manifest file | `rw` |
//! | each plugin's component file | `rw` |
//! | the cache key file | `ro` and `rw` (reading it is enough to forge entries) |
//! | the audit log's directory | `ro` and `rw` |
//! | the key-value store's file (`[kv] path`), when a plugin has a `kv` grant or `[kv]` is set | `ro` and `rw` (it holds every plugin's store) |
//!
//! A `sql` grant's SQLite file may not be, or lie inside, any of them either, in either mode.

use std::path::{Path, PathBuf};

use super::Manifest;
use super::kv::KvBackend;
use super::model::{CacheKey, DirMode};
use super::reader::Context;
use super::sql::SqlDatabase;

/// One protected path: what it is, and whether reading it is already too much.
struct Protected {
    path: PathBuf,
    what: &'static str,
    why: &'static str,
    even_read_only: bool,
}

/// Records an error at every `dirs` grant of `manifest` that reaches one of warden's own files.
pub(super) fn check_grants(cx: &Context<'_>, manifest: &Manifest) {
    let sqlite = |plugin: &super::Plugin| match plugin.sql.as_ref().map(|sql| &sql.database) {
        Some(SqlDatabase::Sqlite(path)) => Some(path.clone()),
        _ => None,
    };
    if manifest
        .plugins
        .iter()
        .all(|plugin| plugin.dirs.is_empty() && sqlite(plugin).is_none())
    {
        return;
    }
    let protected = protected_paths(manifest);
    for plugin in &manifest.plugins {
        let (Some(path), Some(grant)) = (sqlite(plugin), plugin.sql.as_ref()) else {
            continue;
        };
        if let Some(hit) = protected
            .iter()
            .find(|p| overlaps(&canonical(&path), &p.path))
        {
            cx.push(grant.location.diagnostic(format!(
                "this SQLite database is {} ({}): {}. Use a database file of its own",
                hit.path.display(),
                hit.what,
                hit.why,
            )));
        }
    }
    for plugin in &manifest.plugins {
        for grant in &plugin.dirs {
            let Some(hit) = protected.iter().find(|p| {
                (grant.mode == DirMode::ReadWrite || p.even_read_only)
                    && overlaps(&grant.host, &p.path)
            }) else {
                continue;
            };
            let access = match grant.mode {
                DirMode::ReadWrite => "read-write",
                DirMode::ReadOnly => "read-only",
            };
            cx.push(grant.location.diagnostic(format!(
                "this grant gives {access} access to {} ({}): {}. Grant a directory that \
                 neither contains it nor lies inside it",
                hit.path.display(),
                hit.what,
                hit.why,
            )));
        }
    }
}

fn protected_paths(manifest: &Manifest) -> Vec<Protected> {
    let mut paths = vec![
        Protected {
            path: canonical(&manifest.cache_dir),
            what: "warden's compile cache",
            why: "a plugin that writes there plants native code warden runs outside the sandbox",
            even_read_only: false,
        },
        Protected {
            path: canonical(&manifest.path),
            what: "the manifest",
            why: "a plugin that writes it grants itself anything at the next start",
            even_read_only: false,
        },
    ];
    if let CacheKey::File(key) = &manifest.cache_key {
        paths.push(Protected {
            path: canonical(key),
            what: "the compile cache key",
            why: "a plugin that reads it can forge compile cache entries",
            even_read_only: true,
        });
    }
    if let Some(audit) = &manifest.audit {
        let dir = audit.path.parent().unwrap_or(Path::new("/"));
        paths.push(Protected {
            path: canonical(dir),
            what: "the audit log's directory",
            why: "a plugin could read every caller's records, or rewrite them",
            even_read_only: true,
        });
        if let Some(file) = audit.signing_key.as_ref().and_then(|k| k.file.as_ref()) {
            paths.push(Protected {
                path: canonical(file),
                what: "the audit signing key",
                why: "a plugin that reads it can sign a forged audit log",
                even_read_only: true,
            });
        }
    }
    let kv_used = manifest.kv.location.is_some() || manifest.plugins.iter().any(|p| p.kv.is_some());
    if let (true, KvBackend::File(file)) = (kv_used, &manifest.kv.backend) {
        paths.push(Protected {
            path: canonical(file),
            what: "the key-value store's file",
            why: "it holds every plugin's store: a plugin could read or rewrite the others'",
            even_read_only: true,
        });
    }
    // An `oci://` component lives in the compile cache, protected above; its `component` is
    // empty until it is pulled.
    for plugin in manifest.plugins.iter().filter(|p| p.oci.is_none()) {
        paths.push(Protected {
            path: canonical(&plugin.component),
            what: "a plugin's component",
            why: "a plugin that writes it replaces code that runs at the next start",
            even_read_only: false,
        });
    }
    paths
}

/// Whether one of `a` and `b` contains the other (or they are the same path).
fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// `path` with symbolic links resolved as far as it exists: the canonical form of its longest
/// existing ancestor, with the rest appended. (Grants are canonical already.)
fn canonical(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(found) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(found, |acc, part| acc.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}
