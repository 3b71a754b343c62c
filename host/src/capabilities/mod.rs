//! Capabilities: each module turns one kind of grant from the manifest into its part of a
//! call's WASI context, and nothing else. What is not granted is not there: a plugin with no
//! grants sees no files, no environment and no network.

mod env;
mod fs;
mod net;

use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::StdoutStream;

use crate::manifest::Plugin;

/// A grant that could not be applied for this call.
#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error("granted directory for guest path {guest} could not be opened")]
    Preopen { guest: String },
}

/// The WASI context for one call of `plugin`: its preopened directories, its declared
/// environment, no network; stdout and stderr go to the given sinks.
pub fn wasi_context(
    plugin: &Plugin,
    stdout: impl StdoutStream + 'static,
    stderr: impl StdoutStream + 'static,
) -> Result<WasiCtx, CapabilityError> {
    let mut builder = WasiCtxBuilder::new();
    builder.stdout(stdout).stderr(stderr);
    fs::grant(&mut builder, &plugin.dirs)?;
    env::grant(&mut builder, &plugin.env);
    net::deny(&mut builder);
    Ok(builder.build())
}
