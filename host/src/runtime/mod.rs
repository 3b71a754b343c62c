//! The sandbox: one engine, components compiled once, and a fresh store for every call.
//!
//! A [`Runtime`] owns the [`wasmtime::Engine`], the linker (WASI and `warden:mcp/host`), the
//! compile cache and the epoch ticker. Loading a plugin has two steps: [`Runtime::open`] reads
//! a manifest entry's component, checks its pin and describes its exports (fast: the tools and
//! their schemas are known from here on), and [`Runtime::compile`] compiles it or loads it
//! from the cache and resolves its imports into an `InstancePre` (slow on a cold cache:
//! seconds for a Python or JS plugin). A server opens every plugin before it answers anything
//! and compiles in the background; a call to a plugin still compiling waits for it
//! ([`Plugin::code`]), for at most [`COMPILE_WAIT`]. On a cold cache a server first builds
//! the plugin with the baseline compiler ([`Runtime::compile_baseline`]: Winch, a fraction of
//! the time) so that its calls run at once, then with Cranelift ([`Runtime::compile`]), and
//! swaps the Cranelift build in when it is ready; only that build is cached.
//! [`Runtime::call`] runs one
//! exported function in a new instance whose WASI context holds only the plugin's grants,
//! under its fuel, memory and time limits.

mod cache;
mod call;
mod engine;
mod events;
mod host_api;
mod limits;
mod output;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{ComponentExportIndex, InstancePre, Linker, Val};

pub use cache::{CacheConfig, CacheError, CacheOutcome};
use call::Target;
pub use call::{CallError, CallOutcome};
pub use engine::{EPOCH_TICK, EngineOptions};
pub use events::{
    Answer, Ask, AskFailure, AskFuture, CallEvents, ClientFailure, ClientFuture, ElicitFailure,
    ElicitFuture, Elicited, EventFuture, LogLevel, NoEvents, Question, Root, SampleMessage,
    SampleRequest, SampleRole, Sampled,
};
pub use host_api::CallState;

use crate::capabilities::{self, Grants, Slots};
use crate::manifest;
use crate::schema::{
    self, ComponentDescription, ExportedFunction, PromptDef, ResourceDef, TemplateDef,
};

/// How long a call waits for a plugin that is still compiling before it fails.
pub const COMPILE_WAIT: Duration = Duration::from_secs(120);

/// [`COMPILE_WAIT`], or `WARDEN_COMPILE_WAIT_MS` when set (for tests, which cannot wait two
/// minutes for the bound to show).
fn compile_wait() -> Duration {
    static WAIT: OnceLock<Duration> = OnceLock::new();
    *WAIT.get_or_init(|| {
        std::env::var("WARDEN_COMPILE_WAIT_MS")
            .ok()
            .and_then(|ms| ms.parse::<u64>().ok())
            .map_or(COMPILE_WAIT, Duration::from_millis)
    })
}

/// The most prompts one plugin may offer.
pub const MAX_PROMPTS: usize = 256;

/// The most resources, and the most resource templates, one plugin may offer.
pub const MAX_RESOURCES: usize = 1000;

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
    #[error("{path}: {source}")]
    Grant {
        path: PathBuf,
        source: capabilities::CapabilityError,
    },
    #[error("{path}: exported function `{function}` could not be found in the component")]
    Export { path: PathBuf, function: String },
    #[error("{path}: its prompts could not be listed: {message}")]
    Prompts { path: PathBuf, message: String },
    #[error("{path}: its resources could not be listed: {message}")]
    Resources { path: PathBuf, message: String },
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
    ticker: engine::EpochTicker,
    /// Whether a cold plugin is first built with the baseline compiler (`[cache] baseline`).
    baseline_enabled: bool,
    /// The baseline engine, made on the first cache miss (`None` if it could not be made).
    baseline: OnceLock<Option<Baseline>>,
    /// Where compile cache hits and misses are counted, once metrics are on.
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

/// The baseline (Winch) engine, what compiles for it and its linker (its epoch is ticked by
/// the runtime's ticker).
struct Baseline {
    compiler: engine::Compiler,
    /// The baseline builds of this round: one per component, however many plugins serve it.
    round: cache::Round,
    linker: Linker<CallState>,
}

/// A plugin: its manifest entry, what it exports, and its compiled code once
/// [`Runtime::compile`] has run.
pub struct Plugin {
    /// The manifest entry: grants and limits.
    pub config: manifest::Plugin,
    /// The plugin's name as an `Arc`, for logs and per-call state.
    pub name: Arc<str>,
    /// The SHA-256 digest of the component file as it was read.
    pub digest: [u8; 32],
    /// The functions it exports and the interfaces it imports.
    pub description: ComponentDescription,
    /// Its network policy and secret scrubber, built once.
    pub grants: Grants,
    /// The prompts its `warden:mcp/prompts` export listed when it was opened (none when it
    /// exports no prompts).
    pub prompts: Vec<PromptDef>,
    /// The resources its `warden:mcp/resources` export listed when it was opened.
    pub resources: Vec<ResourceDef>,
    /// The resource templates it listed when it was opened.
    pub templates: Vec<TemplateDef>,
    /// Set once, by [`Runtime::compile`]: the code, or why there is none.
    code: OnceLock<Result<Code, String>>,
    /// The baseline build, from [`Runtime::compile_baseline`] until `code` is set.
    baseline: Mutex<Option<Arc<Code>>>,
    /// Wakes the calls waiting for `code`.
    compiled: tokio::sync::Notify,
}

/// A plugin's compiled code: a pre-linked instance template and where its exports are.
struct Code {
    instance_pre: InstancePre<CallState>,
    /// Export index of each function in `description.functions`, in the same order.
    exports: Vec<ComponentExportIndex>,
    /// Export indexes of `warden:mcp/prompts`'s `list` and `get`, when it is exported.
    prompts: Option<[ComponentExportIndex; 2]>,
    /// Export indexes of `warden:mcp/resources`'s `list`, `templates` and `read`.
    resources: Option<[ComponentExportIndex; 3]>,
    /// Export index of `warden:mcp/completions`'s `complete`.
    completions: Option<ComponentExportIndex>,
    /// How it was compiled.
    report: Compiled,
}

/// A plugin's code for one call: the optimized build (borrowed), or the baseline build (kept
/// alive by the call when the optimized build replaces it meanwhile).
enum CodeRef<'a> {
    Final(&'a Code),
    Baseline(Arc<Code>),
}

impl std::ops::Deref for CodeRef<'_> {
    type Target = Code;

    fn deref(&self) -> &Code {
        match self {
            CodeRef::Final(code) => code,
            CodeRef::Baseline(code) => code,
        }
    }
}

/// How a plugin's code was obtained.
#[derive(Clone, Copy, Debug)]
pub struct Compiled {
    /// From the cache, or compiled now.
    pub cache: CacheOutcome,
    /// How long compiling (or reading the cache) and linking took.
    pub elapsed: Duration,
}

/// A plugin's state as [`Plugin::state`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginState {
    /// Opened; its code is being compiled.
    Compiling,
    /// Callable on its baseline build; the optimized build is being compiled.
    Baseline,
    /// Ready to run.
    Ready,
    /// Its code could not be compiled or linked; calls fail.
    Failed,
}

impl Plugin {
    /// Where compiling stands.
    pub fn state(&self) -> PluginState {
        match self.code.get() {
            None if self.baseline_code().is_some() => PluginState::Baseline,
            None => PluginState::Compiling,
            Some(Ok(_)) => PluginState::Ready,
            Some(Err(_)) => PluginState::Failed,
        }
    }

    /// How the code was obtained, once it is ready.
    pub fn compiled(&self) -> Option<Compiled> {
        match self.code.get() {
            Some(Ok(code)) => Some(code.report),
            _ => None,
        }
    }

    /// The baseline build, while it is the plugin's code.
    fn baseline_code(&self) -> Option<Arc<Code>> {
        self.baseline
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The compiled code (the optimized build, else the baseline build), waiting for
    /// [`Runtime::compile`] or [`Runtime::compile_baseline`] if neither has finished, at most
    /// [`COMPILE_WAIT`]; the compile error's text if it failed.
    async fn code(&self) -> Result<CodeRef<'_>, String> {
        // The path of every call once compiled: one atomic load, no lock.
        if let Some(code) = self.code.get() {
            return final_code(code);
        }
        let wait = async {
            loop {
                // Registered before the check, so a `notify_waiters` between the two is not
                // lost.
                let notified = self.compiled.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(code) = self.code.get() {
                    return final_code(code);
                }
                if let Some(code) = self.baseline_code() {
                    return Ok(CodeRef::Baseline(code));
                }
                notified.await;
            }
        };
        let limit = compile_wait();
        tokio::time::timeout(limit, wait).await.unwrap_or_else(|_| {
            Err(format!(
                "the plugin `{}` is still being compiled (first start on an empty compile \
                 cache) after {limit:?}; try again shortly",
                self.name,
            ))
        })
    }

    /// Record the outcome of compiling, drop the baseline build (calls running on it keep
    /// it until they end) and wake the calls waiting. Only the first outcome counts.
    fn set_code(&self, code: Result<Code, String>) {
        let _ = self.code.set(code);
        self.baseline
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        self.compiled.notify_waiters();
    }

    /// Make the baseline build the plugin's code until [`set_code`](Self::set_code).
    fn set_baseline(&self, code: Code) {
        if self.code.get().is_some() {
            return;
        }
        *self
            .baseline
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(code));
        self.compiled.notify_waiters();
    }
}

/// The optimized build, or its compile error's text.
fn final_code(code: &Result<Code, String>) -> Result<CodeRef<'_>, String> {
    match code {
        Ok(code) => Ok(CodeRef::Final(code)),
        Err(message) => Err(message.clone()),
    }
}

/// A component's bytes between [`Runtime::open`] and [`Runtime::compile`]: the bytes that were
/// checked against the pin and described, so the code compiled is the code described.
pub struct ComponentBytes {
    /// `None` when [`Runtime::open`] compiled it already (to list its prompts).
    bytes: Option<Vec<u8>>,
    /// Set when [`Runtime::compile_baseline`] found no usable cache entry: compiling need not
    /// look again.
    missed: bool,
}

impl Runtime {
    /// A runtime sized by `options`, caching compiled components as `cache` says (no cache
    /// when `None`).
    pub fn new(options: &EngineOptions, cache: Option<&CacheConfig>) -> Result<Self, RuntimeError> {
        let engine = engine::build_engine(options).map_err(RuntimeError::Engine)?;
        let baseline_enabled = cache.is_some_and(|cache| cache.baseline);
        let cache = cache::CompileCache::open(&engine, cache)?;
        let linker = Self::linker(&engine).map_err(RuntimeError::Engine)?;
        let ticker = engine::EpochTicker::start(&engine);
        Ok(Self {
            engine,
            linker,
            cache,
            ticker,
            baseline_enabled,
            baseline: OnceLock::new(),
            metrics: std::sync::OnceLock::new(),
        })
    }

    /// Count compile cache hits and misses in `metrics` from now on (the first one given
    /// stays).
    pub fn measure(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// The linker every plugin is instantiated with: WASI, `wasi:http`, the lookup guard and
    /// `warden:mcp/host`.
    fn linker(engine: &Engine) -> wasmtime::Result<Linker<CallState>> {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // wasi:http is linked for every plugin; its requests pass the plugin's allow_hosts
        // (capabilities::net), so a plugin granted no host loads and is refused at run time.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        host_api::ToolWorld::add_to_linker::<_, wasmtime::component::HasSelf<CallState>>(
            &mut linker,
            |state| state,
        )?;
        for capability in capabilities::all::<CallState>() {
            capability.link(&mut linker)?;
        }
        Ok(linker)
    }

    /// Read the component `config` names, check it against its pin and describe its exports.
    /// The plugin's tools are known from here on; it runs once [`compile`](Self::compile) has
    /// been given the returned [`ComponentBytes`]. Its capabilities open what its calls share,
    /// from the host-wide `services` ([`capabilities::start`]).
    pub fn open(
        &self,
        config: &manifest::Plugin,
        services: &Slots,
    ) -> Result<(Plugin, ComponentBytes), LoadError> {
        let path = &config.component;
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        let actual: [u8; 32] = Sha256::digest(&bytes).into();
        if let Some(expected) = config.sha256
            && actual != expected
        {
            return Err(LoadError::Digest {
                path: path.clone(),
                expected: hex::encode(expected),
                actual: hex::encode(actual),
            });
        }
        let description =
            schema::describe_component(&bytes).map_err(|source| LoadError::Describe {
                path: path.clone(),
                source,
            })?;
        let mut plugin = Plugin {
            config: config.clone(),
            name: Arc::from(config.name.as_str()),
            digest: actual,
            description,
            grants: Grants::new(config, services).map_err(|source| LoadError::Grant {
                path: path.clone(),
                source,
            })?,
            prompts: Vec::new(),
            resources: Vec::new(),
            templates: Vec::new(),
            code: OnceLock::new(),
            baseline: Mutex::new(None),
            compiled: tokio::sync::Notify::new(),
        };
        let description = &plugin.description;
        if description.prompts.is_none() && description.resources.is_none() {
            return Ok((
                plugin,
                ComponentBytes {
                    bytes: Some(bytes),
                    missed: false,
                },
            ));
        }
        // Its prompts and resources are known only by running its listing functions: compile
        // it now, and list them once.
        self.compile(
            &plugin,
            ComponentBytes {
                bytes: Some(bytes),
                missed: false,
            },
            || {},
        )?;
        if let Some(exports) = plugin.description.prompts.clone() {
            let failed = |message| LoadError::Prompts {
                path: plugin.config.component.clone(),
                message,
            };
            let listed = self
                .list_at_load(&plugin, Target::PromptList)
                .map_err(failed)?;
            let prompts = schema::prompts_from(&exports.list, listed.as_ref())
                .map_err(|e| failed(e.to_string()))?;
            plugin.prompts = at_most(prompts, MAX_PROMPTS, "prompts").map_err(failed)?;
        }
        if let Some(exports) = plugin.description.resources.clone() {
            let failed = |message| LoadError::Resources {
                path: plugin.config.component.clone(),
                message,
            };
            let listed = self
                .list_at_load(&plugin, Target::ResourceList)
                .map_err(failed)?;
            let resources = schema::resources_from(&exports.list, listed.as_ref())
                .map_err(|e| failed(e.to_string()))?;
            let listed = self
                .list_at_load(&plugin, Target::ResourceTemplates)
                .map_err(failed)?;
            let templates = schema::templates_from(&exports.templates, listed.as_ref())
                .map_err(|e| failed(e.to_string()))?;
            plugin.resources = at_most(resources, MAX_RESOURCES, "resources").map_err(failed)?;
            plugin.templates =
                at_most(templates, MAX_RESOURCES, "resource templates").map_err(failed)?;
        }
        Ok((
            plugin,
            ComponentBytes {
                bytes: None,
                missed: false,
            },
        ))
    }

    /// Call one of the plugin's listing functions (`target`) once, in a sandbox under its
    /// limits, on a thread of its own (so that it may be called from a blocking or an async
    /// context), and return the value it returned.
    fn list_at_load(&self, plugin: &Plugin, target: Target) -> Result<Option<Val>, String> {
        let listed = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_time()
                        .build()
                        .map_err(|e| e.to_string())?;
                    runtime
                        .block_on(self.run(
                            plugin,
                            target,
                            &[],
                            Arc::new(NoEvents),
                            plugin.config.limits.timeout,
                        ))
                        .map_err(|e| e.to_string())
                })
                .join()
                .unwrap_or_else(|_| Err("the listing thread panicked".to_owned()))
        })?;
        Ok(listed.value)
    }

    /// Compile `component` (or load it from the cache), resolve its imports and hand the code
    /// to `plugin`, waking the calls waiting for it. `on_compile` runs first when the cache
    /// has no entry, before the slow part. On failure the plugin's calls fail with a
    /// message that names no host path; the full error is returned.
    pub fn compile(
        &self,
        plugin: &Plugin,
        component: ComponentBytes,
        on_compile: impl FnOnce(),
    ) -> Result<Compiled, LoadError> {
        let Some(bytes) = component.bytes else {
            // Compiled when it was opened.
            return plugin.compiled().ok_or_else(|| LoadError::Compile {
                path: plugin.config.component.clone(),
                message: "it failed to compile when it was opened".to_owned(),
            });
        };
        let started = Instant::now();
        let code = self.link(
            &plugin.config.component,
            &plugin.description,
            &bytes,
            component.missed,
            on_compile,
        );
        drop(bytes);
        match code {
            Ok(mut code) => {
                code.report.elapsed = started.elapsed();
                let report = code.report;
                plugin.set_code(Ok(code));
                Ok(report)
            }
            Err(error) => {
                plugin.set_code(Err(unavailable(plugin)));
                Err(error)
            }
        }
    }

    /// A round of loading is over (every plugin of a start or reload has its code): forget
    /// the components shared by plugins of the same bytes during it, drop the engines that
    /// compiled and give the memory they held back to the system.
    pub fn end_round(&self) {
        self.cache.end_round();
        if let Some(Some(baseline)) = self.baseline.get() {
            baseline.round.clear();
            baseline.compiler.release();
        }
        engine::release_freed_memory();
    }

    /// Give `plugin` code at once on a cold cache: from the cache if it holds an authentic
    /// entry (then the plugin is done, [`BaselineOutcome::Cached`]), else built with the baseline
    /// compiler, which runs its calls until [`compile`](Self::compile) (still to be called)
    /// swaps in the Cranelift build. Nothing is done ([`BaselineOutcome::Skipped`]) when the
    /// baseline is off (`[cache] baseline = false`), the plugin was compiled when it was
    /// opened, or Winch cannot build it (logged; the Cranelift build is then awaited).
    pub fn compile_baseline(
        &self,
        plugin: &Plugin,
        component: &mut ComponentBytes,
    ) -> Result<BaselineOutcome, LoadError> {
        let Some(bytes) = component.bytes.as_deref() else {
            return Ok(BaselineOutcome::Skipped);
        };
        if !self.baseline_enabled {
            return Ok(BaselineOutcome::Skipped);
        }
        let started = Instant::now();
        let path = &plugin.config.component;
        if let Some(component) = self.cache.lookup(bytes) {
            if let Some(metrics) = self.metrics.get() {
                metrics.compiled(true);
            }
            let mut code = self.code_of(
                path,
                &plugin.description,
                &component,
                &self.linker,
                CacheOutcome::Hit,
            );
            if let Ok(code) = &mut code {
                code.report.elapsed = started.elapsed();
            }
            return match code {
                Ok(code) => {
                    let report = code.report;
                    plugin.set_code(Ok(code));
                    Ok(BaselineOutcome::Cached(report))
                }
                Err(error) => {
                    plugin.set_code(Err(unavailable(plugin)));
                    Err(error)
                }
            };
        }
        component.missed = true;
        let Some(baseline) = self.baseline.get_or_init(|| {
            let made = engine::build_baseline_engine().and_then(|engine| {
                let linker = Self::linker(&engine)?;
                self.ticker.tick_also(&engine);
                let compiler = engine::Compiler::new(&engine, engine::build_baseline_engine);
                Ok(Baseline {
                    compiler,
                    round: cache::Round::default(),
                    linker,
                })
            });
            made.map_err(|error| {
                tracing::warn!(
                    error = %format!("{error:#}"),
                    "the baseline compiler is unavailable; cold plugins wait for Cranelift"
                );
            })
            .ok()
        }) else {
            return Ok(BaselineOutcome::Skipped);
        };
        let built = baseline
            .round
            .once(plugin.digest, || baseline.compiler.compile(bytes))
            .map_err(|e| format!("{e:#}"))
            .and_then(|(component, built)| {
                let code = self.code_of(
                    path,
                    &plugin.description,
                    &component,
                    &baseline.linker,
                    CacheOutcome::Compiled,
                );
                code.map(|code| (code, built.is_none()))
                    .map_err(|e| e.to_string())
            });
        match built {
            Ok((code, shared)) => {
                let elapsed = started.elapsed();
                plugin.set_baseline(code);
                Ok(BaselineOutcome::Baseline { elapsed, shared })
            }
            Err(error) => {
                tracing::warn!(
                    plugin = &*plugin.name, %error,
                    "the baseline compiler cannot build this plugin; its calls wait for Cranelift"
                );
                Ok(BaselineOutcome::Skipped)
            }
        }
    }

    fn link(
        &self,
        path: &std::path::Path,
        description: &ComponentDescription,
        bytes: &[u8],
        missed: bool,
        on_compile: impl FnOnce(),
    ) -> Result<Code, LoadError> {
        let loaded = if missed {
            self.cache.compile(bytes, on_compile)
        } else {
            self.cache.load(bytes, on_compile)
        };
        let (component, cache) = loaded.map_err(|e| LoadError::Compile {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        })?;
        if let Some(metrics) = self.metrics.get() {
            metrics.compiled(cache == CacheOutcome::Hit);
        }
        self.code_of(path, description, &component, &self.linker, cache)
    }

    /// `component`'s imports resolved by `linker` and its exports found.
    fn code_of(
        &self,
        path: &std::path::Path,
        description: &ComponentDescription,
        component: &wasmtime::component::Component,
        linker: &Linker<CallState>,
        cache: CacheOutcome,
    ) -> Result<Code, LoadError> {
        let instance_pre = linker
            .instantiate_pre(component)
            .map_err(|e| LoadError::Link {
                path: path.to_path_buf(),
                message: format!("{e:#}"),
            })?;
        let export = |function: &ExportedFunction| {
            let index = match &function.interface {
                Some(interface) => component
                    .get_export_index(None, interface)
                    .and_then(|parent| component.get_export_index(Some(&parent), &function.name)),
                None => component.get_export_index(None, &function.name),
            };
            index.ok_or_else(|| LoadError::Export {
                path: path.to_path_buf(),
                function: function.name.clone(),
            })
        };
        let exports = description
            .functions
            .iter()
            .map(export)
            .collect::<Result<Vec<_>, _>>()?;
        let prompts = match &description.prompts {
            Some(prompts) => Some([export(&prompts.list)?, export(&prompts.get)?]),
            None => None,
        };
        let resources = match &description.resources {
            Some(r) => Some([export(&r.list)?, export(&r.templates)?, export(&r.read)?]),
            None => None,
        };
        let completions = match &description.completions {
            Some(complete) => Some(export(complete)?),
            None => None,
        };
        Ok(Code {
            instance_pre,
            exports,
            prompts,
            resources,
            completions,
            report: Compiled {
                cache,
                elapsed: Duration::ZERO,
            },
        })
    }

    /// The engine, for benchmarks and tools that need it.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// What a call of `plugin` says when its code could not be loaded: no host path.
fn unavailable(plugin: &Plugin) -> String {
    format!(
        "the plugin `{}` could not be loaded; the server log says why",
        plugin.config.name
    )
}

/// What [`Runtime::compile_baseline`] did.
#[derive(Clone, Copy, Debug)]
pub enum BaselineOutcome {
    /// The cache held the plugin's Cranelift build: it is ready, nothing is left to compile.
    Cached(Compiled),
    /// Built with the baseline compiler (or `shared`: given the build of another plugin of
    /// the same bytes) in `elapsed`; callable, and [`Runtime::compile`] is still to build the
    /// optimized code.
    Baseline { elapsed: Duration, shared: bool },
    /// Nothing done; [`Runtime::compile`] does everything.
    Skipped,
}

/// `items`, unless there are more than `max` of them (`what` names them in the error).
fn at_most<T>(items: Vec<T>, max: usize, what: &str) -> Result<Vec<T>, String> {
    if items.len() > max {
        return Err(format!(
            "{} {what}, more than the {max} a plugin may offer",
            items.len()
        ));
    }
    Ok(items)
}
