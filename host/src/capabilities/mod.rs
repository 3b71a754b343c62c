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

mod capability;
mod env;
pub mod fs;
pub mod kv;
pub mod net;
mod secrets;

use std::sync::Arc;

use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::StdoutStream;
use wasmtime_wasi_http::WasiHttpCtx;

pub use capability::{
    CallBuilder, CallParts, CallView, Capability, Effects, GrantWarning, Imports, Link, Slots,
};
pub use fs::FsQuotas;
pub use net::{CallNet, NetPolicy};
pub use secrets::{REDACTED, SecretScrubber, percent_encode};

use crate::manifest::{Manifest, Plugin};

/// Every capability, in the order `check` prints them. Adding one is a module and a line
/// here (ARCHITECTURE.md, "Adding a capability").
pub fn all<T: CallView>() -> Vec<&'static dyn Link<T>> {
    vec![
        &kv::Kv, // wasi:keyvalue: a private or shared key-value store
    ]
}

/// The capabilities as `check`, `inspect` and the catalog see them.
pub fn described() -> Vec<&'static dyn Capability> {
    all::<Described>()
        .into_iter()
        .map(|c| c as &dyn Capability)
        .collect()
}

/// A store data type for listing the capabilities without linking them.
struct Described;

impl CallView for Described {
    fn parts(&mut self) -> CallParts<'_> {
        unreachable!("never a store's data")
    }
}

/// A grant that could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error("granted directory for guest path {guest} could not be opened")]
    Preopen { guest: String },
    /// A capability's own error, with a message fit for the operator (names no secret).
    #[error("{capability}: {message}")]
    Failed {
        capability: &'static str,
        message: String,
    },
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
    /// What each capability opened for the plugin ([`Capability::open`]).
    pub opened: Slots,
}

impl Grants {
    /// The grants of `plugin`, with the host-wide `services` the capabilities started.
    pub fn new(plugin: &Plugin, services: &Slots) -> Result<Grants, CapabilityError> {
        let scrubber = SecretScrubber::for_plugin(plugin);
        let mut opened = Slots::default();
        for capability in described() {
            capability.open(plugin, services, &mut opened)?;
        }
        Ok(Grants {
            plugin: Arc::from(plugin.name.as_str()),
            net: Arc::new(NetPolicy::new(plugin, scrubber.clone())),
            scrubber,
            opened,
        })
    }
}

/// Start every capability's host-wide services for `manifest`, keeping those of `previous`
/// (the manifest in force, on a reload) whose settings did not change.
pub fn start(manifest: &Manifest, previous: Option<&Slots>) -> Result<Slots, CapabilityError> {
    let mut services = Slots::default();
    for capability in described() {
        capability.start(manifest, previous, &mut services)?;
    }
    Ok(services)
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
    /// Each capability's own state for the call ([`Capability::prepare`]).
    pub slots: Slots,
}

/// The context for one call of `plugin`: its preopened directories, its declared environment
/// and secrets, its network grants, and what each capability prepares; stdout and stderr go
/// to the given sinks.
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
    let mut slots = Slots::default();
    for capability in described() {
        capability.prepare(&mut CallBuilder {
            plugin,
            opened: &grants.opened,
            wasi: &mut builder,
            slots: &mut slots,
        })?;
    }
    Ok(CallContext {
        wasi: builder.build(),
        http: WasiHttpCtx::new(),
        net,
        fs,
        slots,
    })
}

/// What a call did with each capability, for its audit record: `{"kv": {"ops": 3}}`.
pub fn usage(slots: &Slots) -> serde_json::Map<String, serde_json::Value> {
    described()
        .into_iter()
        .filter_map(|c| Some((c.name().to_owned(), c.usage(slots)?)))
        .collect()
}
