//! Filesystem grants: preopened directories, read-only or read-write.
//!
//! Confinement is cap-std's (inside wasmtime-wasi): paths are resolved relative to the
//! preopened directory handle, so `..`, absolute paths and symlinks leading outside are refused
//! by the operating system's `openat2`/`O_BENEATH`-style walk, not by string checks here.

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::CapabilityError;
use crate::manifest::{DirGrant, DirMode};

/// Preopen every granted directory with its mode.
pub(super) fn grant(
    builder: &mut WasiCtxBuilder,
    dirs: &[DirGrant],
) -> Result<(), CapabilityError> {
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
    Ok(())
}
