//! Filesystem grants: preopened directories, read-only or read-write, and the write quotas of
//! read-write ones.
//!
//! Confinement is cap-std's (inside wasmtime-wasi): paths are resolved relative to the
//! preopened directory handle, so `..`, absolute paths and symlinks leading outside are refused
//! by the operating system's `openat2`/`O_BENEATH`-style walk, not by string checks here.
//!
//! Quotas are warden's: wasmtime-wasi has no hook on writes, so warden links its own
//! `wasi:filesystem/types` and `wasi:filesystem/preopens` over wasmtime-wasi's
//! ([`add_quota_guard_to_linker`], the way the network's name lookup guard is linked). Each
//! function delegates to wasmtime-wasi; the ones that write or create first charge the call's
//! [`FsQuotas`] for the grant the descriptor belongs to (`quota.rs`).

mod guard;
mod quota;

use serde_json::{Value, json};
use wasmtime::component::Linker;
use wasmtime_wasi::FsPerms;
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;

pub use guard::{FsView, add_quota_guard_to_linker};
pub use quota::{FsQuotas, QuotaExceeded};

use super::{
    CallBuilder, CallView, Capability, CapabilityError, Effects, GrantWarning, Imports, Link,
};
use crate::manifest::{ByteSize, DirMode, Plugin};

/// The interfaces through which a component reaches files.
const FILESYSTEM: &[&str] = &["wasi:filesystem/"];

/// `dirs = [...]`: preopened directories, read-only or read-write with write quotas.
pub struct Fs;

impl Capability for Fs {
    fn name(&self) -> &'static str {
        "dirs"
    }

    fn offers(&self, imports: Imports<'_>) -> Vec<&'static str> {
        match imports.any(FILESYSTEM) {
            true => vec!["dirs: directories to preopen (ro or rw)"],
            false => vec![],
        }
    }

    fn summary(&self, plugin: &Plugin) -> Vec<String> {
        plugin
            .dirs
            .iter()
            .map(|grant| {
                let quota = match grant.mode.is_writable() {
                    true => format!(
                        ", at most {} written and {} files created per call",
                        ByteSize(grant.quota.max_write),
                        grant.quota.max_files
                    ),
                    false => String::new(),
                };
                format!(
                    "grant dir   {} -> {} ({}{quota})",
                    grant.host.display(),
                    grant.guest,
                    grant.mode
                )
            })
            .collect()
    }

    fn report(&self, plugin: &Plugin) -> Vec<(&'static str, Value)> {
        let dirs: Vec<Value> = plugin
            .dirs
            .iter()
            .map(|d| {
                let writable = d.mode.is_writable();
                json!({
                    "host": d.host.display().to_string(),
                    "guest": d.guest,
                    "mode": d.mode.to_string(),
                    "max_write": writable.then_some(d.quota.max_write),
                    "max_files": writable.then_some(d.quota.max_files),
                })
            })
            .collect();
        vec![("dirs", json!(dirs))]
    }

    fn warnings(&self, plugin: &Plugin, imports: Imports<'_>) -> Vec<GrantWarning> {
        match (plugin.dirs.is_empty(), imports.any(FILESYSTEM)) {
            (false, false) => vec![GrantWarning::new(
                "unused-grant:dirs",
                "is granted directories (dirs) but imports no wasi:filesystem: it cannot use them",
            )],
            (true, true) => vec![GrantWarning::new(
                "ungranted-import:filesystem",
                "imports wasi:filesystem but is granted no directory: it will see no files",
            )],
            _ => vec![],
        }
    }

    fn effects(&self, plugin: &Plugin, imports: Imports<'_>) -> Effects {
        Effects {
            writes: imports.any(FILESYSTEM) && plugin.dirs.iter().any(|d| d.mode.is_writable()),
            open_world: false,
        }
    }

    /// Preopen every granted directory with its mode, and start the call's write quotas.
    fn prepare(&self, call: &mut CallBuilder<'_>) -> Result<(), CapabilityError> {
        let dirs = &call.plugin.dirs;
        for dir in dirs {
            let perms = match dir.mode {
                DirMode::ReadOnly => FsPerms::ReadOnly,
                DirMode::ReadWrite => FsPerms::ReadWrite,
            };
            call.wasi
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|error| {
                tracing::error!(host = %dir.host.display(), %error, "cannot open granted directory");
                CapabilityError::Preopen {
                    guest: dir.guest.clone(),
                }
            })?;
        }
        call.slots.insert(FsQuotas::new(call.name.clone(), dirs));
        Ok(())
    }
}

impl<T: CallView> Link<T> for Fs {
    /// Writes and creations under `rw` grants are charged to the call's quotas.
    fn link(&self, linker: &mut Linker<T>) -> wasmtime::Result<()> {
        add_quota_guard_to_linker(linker, |state| {
            let parts = state.parts();
            FsView {
                fs: WasiFilesystemCtxView {
                    ctx: parts.wasi.filesystem(),
                    table: parts.table,
                },
                quotas: parts.slots.get_or_insert_with(FsQuotas::default),
            }
        })
    }
}
