//! Capabilities: each module turns one kind of grant from the manifest into its part of a
//! call's context, and nothing else. What is not granted is not there: a plugin with no grants
//! sees no files, no environment and no network.
//!
//! - [`fs`]: preopened directories, and the write quotas of read-write ones;
//! - `env`: declared environment variables;
//! - `secrets`: secret values as environment variables, and the scrubber that keeps them out
//!   of warden's log;
//! - [`net`]: `allow_hosts` for `wasi:http` and `wasi:sockets`, with the address rules that
//!   stop server-side request forgery.
//!
//! [`Grants`] is built once per plugin when it is loaded; [`call_context`] builds a call's
//! share of it.

mod env;
pub mod fs;
pub mod net;
mod secrets;

use std::sync::Arc;

use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::StdoutStream;
use wasmtime_wasi_http::WasiHttpCtx;

pub use fs::FsQuotas;
pub use net::{CallNet, NetPolicy};
pub use secrets::{REDACTED, SecretScrubber, percent_encode};

use crate::manifest::Plugin;

/// A grant that could not be applied for this call.
#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error("granted directory for guest path {guest} could not be opened")]
    Preopen { guest: String },
}

/// What a plugin's grants need beyond its manifest entry, built once when it is loaded.
#[derive(Debug)]
pub struct Grants {
    /// The plugin's name, for what its calls log.
    pub plugin: Arc<str>,
    /// Its network policy.
    pub net: Arc<NetPolicy>,
    /// Hides its secret values ([`Plugin::secret_values`]) in what warden logs about it.
    pub scrubber: SecretScrubber,
}

impl Grants {
    /// The grants of `plugin`.
    pub fn new(plugin: &Plugin) -> Grants {
        let scrubber = SecretScrubber::for_plugin(plugin);
        Grants {
            plugin: Arc::from(plugin.name.as_str()),
            net: Arc::new(NetPolicy::new(plugin, scrubber.clone())),
            scrubber,
        }
    }
}

/// One call's context: its WASI context, its `wasi:http` context and its network state.
pub struct CallContext {
    /// Preopens, environment, secrets, socket permissions, stdout and stderr.
    pub wasi: WasiCtx,
    /// wasmtime-wasi-http's per-call state.
    pub http: WasiHttpCtx,
    /// The `wasi:http` hooks and the name lookup guard.
    pub net: CallNet,
    /// What the call has written under each directory grant.
    pub fs: FsQuotas,
}

/// The context for one call of `plugin`: its preopened directories, its declared environment
/// and secrets, its network grants; stdout and stderr go to the given sinks.
pub fn call_context(
    plugin: &Plugin,
    grants: &Grants,
    stdout: impl StdoutStream + 'static,
    stderr: impl StdoutStream + 'static,
) -> Result<CallContext, CapabilityError> {
    let mut builder = WasiCtxBuilder::new();
    builder.stdout(stdout).stderr(stderr);
    let fs = fs::grant(&mut builder, &grants.plugin, &plugin.dirs)?;
    env::grant(&mut builder, &plugin.env);
    secrets::grant(&mut builder, &plugin.secrets);
    let net = net::grant(&mut builder, &grants.net);
    Ok(CallContext {
        wasi: builder.build(),
        http: WasiHttpCtx::new(),
        net,
        fs,
    })
}
