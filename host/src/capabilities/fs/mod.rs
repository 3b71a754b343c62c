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

use std::sync::Arc;

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

pub use guard::{FsView, add_quota_guard_to_linker};
pub use quota::{FsQuotas, QuotaExceeded};

use super::CapabilityError;
use crate::manifest::{DirGrant, DirMode};

/// Preopen every granted directory with its mode, and start the call's write quotas.
pub(super) fn grant(
    builder: &mut WasiCtxBuilder,
    plugin: &Arc<str>,
    dirs: &[DirGrant],
) -> Result<FsQuotas, CapabilityError> {
    for dir in dirs {
        let perms = match dir.mode {
            DirMode::ReadOnly => FsPerms::ReadOnly,
            DirMode::ReadWrite => FsPerms::ReadWrite,
        };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|error| {
                tracing::error!(host = %dir.host.display(), %error, "cannot open granted directory");
                CapabilityError::Preopen {
                    guest: dir.guest.clone(),
                }
            })?;
    }
    Ok(FsQuotas::new(plugin.clone(), dirs))
}
