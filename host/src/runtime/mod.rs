//! The sandbox: one engine, components compiled once, and a fresh store for every call.
//!
//! A [`Runtime`] owns the [`wasmtime::Engine`], the linker (WASI and `warden:mcp/host`), the
//! compile cache and the epoch ticker. [`Runtime::load`] turns a manifest entry into a
//! [`Plugin`] (bytes checked, component compiled or loaded from the cache, imports resolved
//! into an `InstancePre`). [`Runtime::call`] runs one exported function in a new instance
//! whose WASI context holds only the plugin's grants, under its fuel, memory and time limits.

mod cache;
mod call;
mod engine;
mod events;
mod host_api;
mod limits;
mod output;

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{ComponentExportIndex, InstancePre, Linker};

pub use cache::{CacheConfig, CacheError, CacheOutcome};
pub use call::{CallError, CallOutcome};
pub use engine::{EPOCH_TICK, EngineOptions};
pub use events::{CallEvents, EventFuture, LogLevel, NoEvents};
pub use host_api::CallState;

use crate::capabilities::{self, Grants};
use crate::manifest;
use crate::schema::{self, ComponentDescription};

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read component {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("component {path} has SHA-256 {actual}, but the manifest pins {expected}")]
    Digest {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path} is not a usable component: {source}")]
    Describe {
        path: PathBuf,
        source: schema::DescribeError,
    },
    #[error("{path} could not be compiled: {message}")]
    Compile { path: PathBuf, message: String },
    #[error("{path} needs imports warden does not provide: {message}")]
    Link { path: PathBuf, message: String },
    #[error("{path}: exported function `{function}` could not be found in the component")]
    Export { path: PathBuf, function: String },
}

/// Why the runtime could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot create the WebAssembly engine: {0:#}")]
    Engine(wasmtime::Error),
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// The engine and everything shared by all plugins.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    cache: cache::CompileCache,
    _ticker: engine::EpochTicker,
}

/// A loaded plugin: its manifest entry, what it exports, and a pre-linked instance template.
pub struct Plugin {
    /// The manifest entry: grants and limits.
    pub config: manifest::Plugin,
    /// The plugin's name as an `Arc`, for logs and per-call state.
    pub name: Arc<str>,
    /// The functions it exports and the interfaces it imports.
    pub description: ComponentDescription,
    /// Whether the compiled code came from the cache.
    pub cache: CacheOutcome,
    /// Its network policy and secret scrubber, built once.
    pub grants: Grants,
    instance_pre: InstancePre<CallState>,
    /// Export index of each function in `description.functions`, in the same order.
    exports: Vec<ComponentExportIndex>,
}

impl Runtime {
    /// A runtime sized by `options`, caching compiled components as `cache` says (no cache
    /// when `None`).
    pub fn new(options: &EngineOptions, cache: Option<&CacheConfig>) -> Result<Self, RuntimeError> {
        let engine = engine::build_engine(options).map_err(RuntimeError::Engine)?;
        let cache = cache::CompileCache::open(&engine, cache)?;
        let linker = Self::linker(&engine).map_err(RuntimeError::Engine)?;
        let ticker = engine::EpochTicker::start(&engine);
        Ok(Self {
            engine,
            linker,
            cache,
            _ticker: ticker,
        })
    }

    /// The linker every plugin is instantiated with: WASI, `wasi:http`, the lookup guard and
    /// `warden:mcp/host`.
    fn linker(engine: &Engine) -> wasmtime::Result<Linker<CallState>> {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // wasi:http is linked for every plugin; its requests pass the plugin's allow_hosts
        // (capabilities::net), so a plugin granted no host loads and is refused at run time.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        capabilities::net::add_lookup_guard_to_linker(&mut linker, CallState::lookup_view)?;
        // Writes and creations under `rw` grants are charged to the call's quotas.
        capabilities::fs::add_quota_guard_to_linker(&mut linker, CallState::fs_view)?;
        host_api::ToolWorld::add_to_linker::<_, wasmtime::component::HasSelf<CallState>>(
            &mut linker,
            |state| state,
        )?;
        Ok(linker)
    }

    /// Load the plugin described by `config`: read and check its bytes, describe its exports,
    /// compile it (or load it from the cache) and resolve its imports.
    pub fn load(&self, config: &manifest::Plugin) -> Result<Plugin, LoadError> {
        let path = config.component.clone();
        let bytes = std::fs::read(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        if let Some(expected) = config.sha256 {
            let actual: [u8; 32] = Sha256::digest(&bytes).into();
            if actual != expected {
                return Err(LoadError::Digest {
                    path,
                    expected: hex::encode(expected),
                    actual: hex::encode(actual),
                });
            }
        }
        let description =
            schema::describe_component(&bytes).map_err(|source| LoadError::Describe {
                path: path.clone(),
                source,
            })?;
        let (component, cache) =
            self.cache
                .load(&self.engine, &bytes)
                .map_err(|e| LoadError::Compile {
                    path: path.clone(),
                    message: format!("{e:#}"),
                })?;
        let instance_pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|e| LoadError::Link {
                    path: path.clone(),
                    message: format!("{e:#}"),
                })?;
        let exports = description
            .functions
            .iter()
            .map(|function| {
                let index = match &function.interface {
                    Some(interface) => {
                        component
                            .get_export_index(None, interface)
                            .and_then(|parent| {
                                component.get_export_index(Some(&parent), &function.name)
                            })
                    }
                    None => component.get_export_index(None, &function.name),
                };
                index.ok_or_else(|| LoadError::Export {
                    path: path.clone(),
                    function: function.name.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Plugin {
            config: config.clone(),
            name: Arc::from(config.name.as_str()),
            description,
            cache,
            grants: Grants::new(config),
            instance_pre,
            exports,
        })
    }

    /// The engine, for benchmarks and tools that need it.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}
