//! Capabilities: each module is one kind of grant, and everything warden does with it: it
//! turns the plugin's grant into its part of a call's context, links the host functions that
//! serve it, and describes it to `check`, `inspect` and the catalog's annotations (the
//! [`Capability`] trait). What is not granted is not there: a plugin with no grants sees no
//! files, no environment and no network.
//!
//! - [`fs`]: preopened directories, and the write quotas of read-write ones;
//! - `env`: declared environment variables;
//! - `secrets`: secret values as environment variables, and the scrubber that keeps them out
//!   of warden's log;
//! - [`net`]: `allow_hosts` for `wasi:http` and `wasi:sockets`, with the address rules that
//!   stop server-side request forgery;
//! - [`sql`]: a database queried through `warden:sql`, one statement at a time with bound
//!   parameters;
//! - `client`: `sampling` and `roots`, what a plugin may ask of the MCP client.
//!
//! [`start`] runs once per manifest, [`Grants`] is built once per plugin when it is loaded,
//! and [`call_context`] builds a call's share.

mod capability;
mod client;
mod env;
pub mod fs;
pub mod kv;
pub mod net;
mod secrets;
pub mod sql;

use std::sync::{Arc, LazyLock};

use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::StdoutStream;
use wasmtime_wasi_http::WasiHttpCtx;

pub use capability::{
    CallBuilder, CallParts, CallView, Capability, Effects, GrantWarning, Imports, Link, Slots,
};
pub use secrets::{REDACTED, SecretScrubber, percent_encode};

use crate::manifest::{Manifest, Plugin};

/// Every capability, in the order `check` prints them. Adding one is a module and a line
/// here (ARCHITECTURE.md, "Adding a capability").
pub fn all<T: CallView>() -> Vec<&'static dyn Link<T>> {
    vec![
        &fs::Fs,
        &net::Net,
        &env::Env,
        &secrets::Secrets,
        &kv::Kv,
        &sql::Sql,
        &client::Client,
    ]
}

/// The capabilities as `check`, `inspect`, the catalog and each call see them: [`all`]
/// without the linking.
pub fn described() -> &'static [&'static dyn Capability] {
    static DESCRIBED: LazyLock<Vec<&'static dyn Capability>> = LazyLock::new(|| {
        all::<Described>()
            .into_iter()
            .map(|c| c as &dyn Capability)
            .collect()
    });
    &DESCRIBED
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

/// The server stops: each capability makes its services' state durable ([`Capability::stop`]).
pub fn stop(services: &Slots) {
    for capability in described() {
        capability.stop(services);
    }
}

/// One call's context: its WASI context, its `wasi:http` context and each capability's
/// state.
pub struct CallContext {
    /// Preopens, environment, secrets, socket permissions, stdout and stderr.
    pub wasi: WasiCtx,
    /// wasmtime-wasi-http's per-call state.
    pub http: WasiHttpCtx,
    /// Each capability's own state for the call ([`Capability::prepare`]).
    pub slots: Slots,
}

/// The context for one call of `plugin`: what each capability prepares from its grants;
/// stdout and stderr go to the given sinks.
pub fn call_context(
    plugin: &Plugin,
    grants: &Grants,
    stdout: impl StdoutStream + 'static,
    stderr: impl StdoutStream + 'static,
) -> Result<CallContext, CapabilityError> {
    let mut builder = WasiCtxBuilder::new();
    builder.stdout(stdout).stderr(stderr);
    let mut slots = Slots::default();
    for capability in described() {
        capability.prepare(&mut CallBuilder {
            plugin,
            name: &grants.plugin,
            opened: &grants.opened,
            wasi: &mut builder,
            slots: &mut slots,
        })?;
    }
    Ok(CallContext {
        wasi: builder.build(),
        http: WasiHttpCtx::new(),
        slots,
    })
}

/// What `plugin` is granted, a line per grant, as `warden check` and `warden status` print it.
pub fn grants_summary(plugin: &Plugin) -> Vec<String> {
    described().iter().flat_map(|c| c.summary(plugin)).collect()
}

/// What `plugin` is granted, as data, by key (`dirs`, `env`, ...).
pub fn grants_report(plugin: &Plugin) -> serde_json::Map<String, serde_json::Value> {
    described()
        .iter()
        .flat_map(|c| c.report(plugin))
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

/// What a call did with each capability, for its audit record: `{"kv": {"ops": 3}}`.
pub fn usage(slots: &Slots) -> serde_json::Map<String, serde_json::Value> {
    described()
        .iter()
        .filter_map(|c| Some((c.name().to_owned(), c.usage(slots)?)))
        .collect()
}
