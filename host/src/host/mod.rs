//! Assembling a host from a manifest: runtime, plugins, catalog, gate.
//!
//! Loading has two phases (see [`crate::runtime`]). [`Host::open`] reads and describes every
//! component and builds the gate: from then on every tool is known, with its schema, and a
//! server can answer. [`Pending::compile`] then compiles the components, in parallel, bounded
//! by the cores; a call to a plugin still compiling waits for it. [`Host::load`] does both
//! before returning, for commands that need everything at once (`check`, `call`).
//!
//! [`reload`] replaces a running host's gate when its manifest changes.

mod provenance;
pub mod reload;
mod signature;

pub use provenance::{LockState, Provenance};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::audit::{AuditSink, FileSink, Metered, NoAudit};
use crate::capabilities::{self, Slots};
use crate::catalog::Catalog;
use crate::gate::{
    ApprovalHub, Gate, GateOptions, ResourceUpdates, SharedStore, Stats, ToolReveals,
};
use crate::lock::{self, LockCheck};
use crate::manifest::{self, Location, LockMode, Manifest};
use crate::metrics::Metrics;
use crate::runtime::{
    BaselineOutcome, CacheConfig, CacheOutcome, Compiled, ComponentBytes, EngineOptions, Plugin,
    Runtime,
};

/// Everything `warden serve` needs, opened and checked.
pub struct Host {
    /// The call pipeline over all tools.
    pub gate: Arc<Gate>,
    /// The runtime shared by all plugins.
    pub runtime: Arc<Runtime>,
    /// What the runtime was built from, so a reload with the same settings keeps it.
    engine: (EngineOptions, CacheConfig),
    /// The audit settings and the log they opened, kept by a reload that does not change
    /// them: one chain, one writer.
    audit: (Option<manifest::Audit>, Arc<dyn AuditSink>),
    /// The calls counted since the first start, kept by every reload.
    stats: Arc<Stats>,
    /// The Prometheus metrics (`[metrics]`), made at the first start and kept by every
    /// reload; `None`: off.
    metrics: Option<Arc<Metrics>>,
    /// Flow marks and calls waiting for an operator, kept by every reload.
    approvals: Arc<ApprovalHub>,
    /// Where plugins' resource updates go, kept by every reload (sessions listen to it).
    updates: Arc<ResourceUpdates>,
    /// Where reveals of hidden tools are announced, kept by every reload (sessions listen
    /// to it); what was revealed is not kept.
    reveals: Arc<ToolReveals>,
    /// `[limits] store` and its connection, kept by a reload that does not change it.
    limit_store: (Option<manifest::LimitStore>, Option<Arc<SharedStore>>),
    /// The capabilities' host-wide services ([`capabilities::start`]), which a reload keeps
    /// where their settings did not change.
    services: Slots,
    /// What `warden.lock` said about the plugins: under `enforce`, the drifting ones are
    /// not in the gate.
    pub lock: LockCheck,
    /// Each plugin's provenance, in manifest order: computed once, when it was loaded.
    pub provenance: Vec<Provenance>,
}

/// The description review's findings in the log: a warning for each one not accepted, and an
/// error for each plugin left out.
fn log_review(catalog: &Catalog) {
    for finding in catalog.findings().iter().filter(|f| !f.accepted) {
        tracing::warn!(
            plugin = %finding.plugin,
            "description review: {finding} (accept it with {})",
            finding.acceptance()
        );
    }
    for plugin in catalog.refused() {
        tracing::error!(
            "plugin `{plugin}` is not served: its tools', prompts' or resources' texts have findings of the description review that are not accepted, and [server] review = \"refuse\" (see `warden check`)"
        );
    }
}

/// Where each served plugin's component came from, what it is, who signed it and whether it
/// matches the lock: one line per plugin at every start and reload.
fn log_provenance(provenance: &[Provenance]) {
    for plugin in provenance.iter().filter(|p| p.lock != LockState::NotServed) {
        tracing::info!(
            plugin = %plugin.plugin,
            source = %plugin.source,
            resolved = plugin.resolved.as_deref(),
            sha256 = %plugin.sha256,
            signer = %plugin.signer_or_none(),
            lock = plugin.lock.phrase(),
            "plugin loaded"
        );
    }
}

impl Host {
    /// The Prometheus metrics, when `[metrics]` turned them on (at the first start).
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// The server stops, after its last call: the audit log gets its last records and
    /// checkpoint, and the capabilities make their state durable. The process may end with
    /// a plugin's build still holding parts of the host, so nothing waits for them to drop.
    pub fn stop(&self) {
        self.gate.close_audit();
        capabilities::stop(&self.services);
    }
}

/// Plugins opened by [`Host::open`] whose code is still to be compiled.
#[must_use = "the plugins cannot run until they are compiled"]
pub struct Pending {
    runtime: Arc<Runtime>,
    plugins: Vec<(Arc<Plugin>, ComponentBytes)>,
}

/// A step of [`Pending::compile`], for progress reports.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The cache has no entry for this plugin: it is being compiled (seconds for a large
    /// one), once. `index` counts from 1 in manifest order.
    Compiling {
        plugin: &'a str,
        index: usize,
        total: usize,
    },
    /// The cache had no entry: the plugin was built with the baseline compiler in
    /// `elapsed` (or `shared` the build of another plugin of the same bytes) and its calls run
    /// on that build until the Cranelift build is ready.
    Baseline {
        plugin: &'a str,
        elapsed: std::time::Duration,
        shared: bool,
    },
    /// The plugin can run. `done` counts the plugins finished so far.
    Ready {
        plugin: &'a str,
        compiled: Compiled,
        done: usize,
        total: usize,
    },
    /// The plugin's code could not be compiled; its calls fail.
    Failed { error: &'a HostError },
}

/// A problem found while loading, with the place in the manifest it concerns.
#[derive(Debug)]
pub struct HostError {
    pub location: Option<Location>,
    pub message: String,
}

impl HostError {
    fn global(message: impl std::fmt::Display) -> Vec<HostError> {
        vec![HostError {
            location: None,
            message: message.to_string(),
        }]
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl Host {
    /// The plugins, in manifest order (the catalog's).
    pub fn plugins(&self) -> &[Arc<Plugin>] {
        self.gate.catalog().plugins()
    }

    /// Append the start record (every plugin's provenance) to the audit log, if there is
    /// one. The caller is whoever will run calls with this host: `warden serve` at start,
    /// each reload once it is in force, `warden call`; never `warden check`, which serves
    /// nothing.
    pub fn record_start(&self) -> Result<(), crate::audit::AuditError> {
        if !self.audit.1.enabled() {
            return Ok(());
        }
        self.audit
            .1
            .start(&provenance::start_record(&self.provenance))
    }

    /// Open and compile every plugin of `manifest`, then build the gate. Reports every
    /// plugin that fails, not only the first; progress goes to the log.
    pub fn load(manifest: &Manifest) -> Result<Host, Vec<HostError>> {
        let (host, pending) = Host::open(manifest, None)?;
        let errors = pending.compile(&log_progress);
        if errors.is_empty() {
            Ok(host)
        } else {
            Err(errors)
        }
    }

    /// Open every plugin of `manifest` (read, check the pin, describe) and build the catalog
    /// and the gate, without compiling anything: the returned [`Pending`] does that. Reports
    /// every problem found, not only the first.
    ///
    /// With `previous` (a reload), its runtime and audit log are kept when the manifest's
    /// engine, cache and audit settings are unchanged.
    pub fn open(
        manifest: &Manifest,
        previous: Option<&Host>,
    ) -> Result<(Host, Pending), Vec<HostError>> {
        let options = EngineOptions {
            max_memory: manifest
                .plugins
                .iter()
                .map(|p| p.limits.memory)
                .max()
                .unwrap_or(EngineOptions::default().max_memory),
            ..EngineOptions::default()
        };
        let cache = CacheConfig {
            dir: manifest.cache_dir.clone(),
            key: manifest.cache_key.clone(),
            baseline: manifest.cache_baseline,
        };
        let engine = (options, cache);
        let runtime = match previous.filter(|p| p.engine == engine) {
            Some(previous) => previous.runtime.clone(),
            None => Arc::new(Runtime::new(&engine.0, Some(&engine.1)).map_err(HostError::global)?),
        };

        // Kept from the first start: the series live as long as the process.
        let metrics = match previous {
            Some(previous) => previous.metrics.clone(),
            None => manifest
                .metrics
                .as_ref()
                .map(|settings| Arc::new(Metrics::new(settings.principals))),
        };
        if let Some(metrics) = &metrics {
            runtime.measure(metrics.clone());
        }
        let services = capabilities::start(manifest, previous.map(|p| &p.services))
            .map_err(HostError::global)?;
        // A tag `warden.lock` resolved is held to that digest (under `enforce`).
        let locked = match manifest.server.lock {
            Some(LockMode::Off | LockMode::Warn) => None,
            _ => lock::Lock::read(&lock::path_for(manifest)).map_err(HostError::global)?,
        };
        let (catalog, mut pending, moved) =
            open_plugins(manifest, &runtime, &services, locked.as_ref())?;

        // The lock: under `enforce`, a plugin that drifts from it is left out, and so is one
        // whose tag moved (not even pulled).
        let mut lock = lock::check(manifest, &catalog).map_err(HostError::global)?;
        lock.drift.extend(moved);
        log_drift(&lock);
        let refused: Vec<&str> = lock.refused().collect();
        let mut catalog = if refused.is_empty() {
            catalog
        } else {
            pending.retain(|(plugin, _)| !refused.contains(&plugin.config.name.as_str()));
            let kept = catalog
                .plugins()
                .iter()
                .filter(|p| !refused.contains(&p.config.name.as_str()))
                .cloned()
                .collect();
            Catalog::build(kept).map_err(catalog_errors)?
        };
        // The description review: under `refuse`, a plugin with unaccepted findings is left
        // out too.
        catalog.review(manifest.server.review);
        log_review(&catalog);
        let provenance = Provenance::of(&catalog, &lock);
        log_provenance(&provenance);

        let audit = match previous.filter(|p| p.audit.0 == manifest.audit) {
            Some(previous) => previous.audit.1.clone(),
            None => match &manifest.audit {
                Some(config) => {
                    let file = open_audit(config)?;
                    match &metrics {
                        Some(metrics) => Arc::new(Metered::new(file, metrics.clone())),
                        None => file,
                    }
                }
                None => Arc::new(NoAudit) as Arc<dyn AuditSink>,
            },
        };
        let stats = previous.map_or_else(Arc::default, |p| p.stats.clone());
        let approvals = previous.map_or_else(Arc::default, |p| p.approvals.clone());
        let updates = previous.map_or_else(Arc::default, |p| p.updates.clone());
        let reveals = previous.map_or_else(Arc::default, |p| p.reveals.clone());
        let limit_store = match previous.filter(|p| p.limit_store.0 == manifest.limit_store) {
            Some(previous) => previous.limit_store.1.clone(),
            None => manifest
                .limit_store
                .as_ref()
                .map(|config| SharedStore::new(config).map(Arc::new))
                .transpose()
                .map_err(HostError::global)?,
        };
        let options = GateOptions {
            store: limit_store.clone(),
            stats: stats.clone(),
            metrics: metrics.clone(),
            approvals: approvals.clone(),
            updates: updates.clone(),
            reveals: reveals.clone(),
            ..GateOptions::from_manifest(manifest, audit.clone())
        };
        let gate = Gate::new(catalog, runtime.clone(), options).map_err(HostError::global)?;
        let host = Host {
            gate: Arc::new(gate),
            runtime: runtime.clone(),
            engine,
            audit: (manifest.audit.clone(), audit),
            stats,
            metrics,
            approvals,
            updates,
            reveals,
            limit_store: (manifest.limit_store.clone(), limit_store),
            services,
            lock,
            provenance,
        };
        Ok((
            host,
            Pending {
                runtime,
                plugins: pending,
            },
        ))
    }
}

/// The audit log of `[audit]`: the file sink, naming the replica, signing checkpoints when
/// a `signing_key` is set.
fn open_audit(config: &crate::manifest::Audit) -> Result<Arc<dyn AuditSink>, Vec<HostError>> {
    let key = match &config.signing_key {
        Some(key) => Some(
            crate::audit::SigningKey::from_pem(key.pem.expose())
                .map_err(|e| HostError::global(format!("[audit] signing_key: {e}")))?,
        ),
        None => None,
    };
    let sink = FileSink::open(&config.path, config.rotate, config.fsync)
        .map_err(|e| HostError::global(format!("cannot open the audit log: {e}")))?
        .with_replica(&config.replica);
    Ok(match key {
        Some(key) => sink.signed(crate::audit::Signing {
            key,
            every: config.checkpoint_every,
            interval: config.checkpoint_interval,
        }),
        None => Arc::new(sink),
    })
}

/// The catalog `manifest` would serve, before the lock: every plugin opened (read, pin
/// checked, described), nothing compiled. For `warden lock`.
pub fn describe(manifest: &Manifest) -> Result<Catalog, Vec<HostError>> {
    let options = EngineOptions::default();
    let runtime = Runtime::new(&options, None).map_err(HostError::global)?;
    let services = capabilities::start(manifest, None).map_err(HostError::global)?;
    open_plugins(manifest, &runtime, &services, None).map(|(catalog, _, _)| catalog)
}

/// The catalog, the plugins to compile, and the plugins left out because their `oci://` tag
/// moved from the lock.
type Opened = (
    Catalog,
    Vec<(Arc<Plugin>, ComponentBytes)>,
    Vec<lock::PluginDrift>,
);

/// Open every plugin of `manifest` and name its tools. Reports every problem found.
fn open_plugins(
    manifest: &Manifest,
    runtime: &Runtime,
    services: &Slots,
    locked: Option<&lock::Lock>,
) -> Result<Opened, Vec<HostError>> {
    let mut plugins = Vec::new();
    let mut pending = Vec::new();
    let mut errors = Vec::new();
    let mut moved = Vec::new();
    for config in &manifest.plugins {
        let mut config = match pull(manifest, config, locked) {
            Ok(Source::Pulled(with_file)) => *with_file,
            Ok(Source::Local) => config.clone(),
            Ok(Source::Moved(drift)) => {
                moved.push(drift);
                continue;
            }
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        if let Err(error) = signature::check(&mut config) {
            errors.push(error);
            continue;
        }
        match runtime.open(&config, services) {
            Ok((plugin, bytes)) => {
                let plugin = Arc::new(plugin);
                plugins.push(plugin.clone());
                pending.push((plugin, bytes));
            }
            Err(error) => errors.push(HostError {
                location: Some(config.location.clone()),
                message: format!("plugin `{}`: {error}", config.name),
            }),
        }
    }
    let catalog = Catalog::build(plugins).map_err(|e| {
        let mut all = std::mem::take(&mut errors);
        all.extend(catalog_errors(e));
        all
    })?;
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((catalog, pending, moved))
}

/// For an `oci://` component, pull it into the cache (`oci::pull`: digest-checked before
/// anything reads it) and return the plugin's settings naming the cached file, pinned to the
/// digest checked.
fn pull(
    manifest: &Manifest,
    config: &manifest::Plugin,
    locked: Option<&lock::Lock>,
) -> Result<Source, HostError> {
    let Some(reference) = &config.oci else {
        return Ok(Source::Local);
    };
    let locked = locked
        .and_then(|lock| lock.plugins.get(&config.name))
        .filter(|entry| entry.source == config.component_source && reference.digest.is_none())
        .and_then(|entry| entry.resolved.as_deref());
    let pulled = match crate::oci::pull(reference, &manifest.cache_dir, locked) {
        Ok(pulled) => pulled,
        Err(crate::oci::OciError::Moved {
            reference,
            locked,
            actual,
        }) => {
            return Ok(Source::Moved(lock::PluginDrift {
                plugin: config.name.clone(),
                changes: vec![lock::Change::Moved {
                    reference,
                    old: locked,
                    new: actual,
                }],
            }));
        }
        Err(error) => {
            return Err(HostError {
                location: Some(config.location_of("component").clone()),
                message: format!("plugin `{}`: {error}", config.name),
            });
        }
    };
    if reference.digest.is_none() {
        let pin = if locked.is_some() {
            "as warden.lock records"
        } else {
            "unpinned: run `warden lock` or add @sha256:..."
        };
        tracing::info!(
            "plugin `{}`: {reference} resolved to {} ({pin})",
            config.name,
            pulled.manifest_digest
        );
    }
    let mut config = config.clone();
    config.component = pulled.path;
    // The operator's own `sha256` pin, if any, is checked against the file; else the digest
    // the pull checked is, once more, when the file is read.
    config.sha256 = config.sha256.or(Some(pulled.sha256));
    config.oci_resolved = Some(pulled.manifest_digest);
    Ok(Source::Pulled(Box::new(config)))
}

/// Where a plugin's component comes from, once [`pull`] has run.
enum Source {
    /// A local file: the settings as they are.
    Local,
    /// Pulled into the cache: the settings naming the cached file.
    Pulled(Box<manifest::Plugin>),
    /// Its tag moved from the lock: not pulled, not served.
    Moved(lock::PluginDrift),
}

fn catalog_errors(errors: Vec<crate::catalog::CatalogError>) -> Vec<HostError> {
    errors
        .into_iter()
        .map(|e| HostError {
            location: Some(e.location),
            message: e.message,
        })
        .collect()
}

/// Log each plugin's drift from the lock: an error when it is refused, a warning when not.
fn log_drift(check: &LockCheck) {
    let path = check.path.display();
    for drift in &check.drift {
        match check.mode {
            LockMode::Enforce => tracing::error!(
                "plugin `{}` is not served: what it serves differs from {path}:\n{drift}\
                 review the change, then run `warden lock` to accept it",
                drift.plugin
            ),
            LockMode::Warn => tracing::warn!(
                "plugin `{}` differs from {path} ([server] lock = \"warn\": served anyway):\n{drift}\
                 run `warden lock` to accept the change",
                drift.plugin
            ),
            LockMode::Off => {}
        }
    }
    if !check.unpinned.is_empty() {
        tracing::warn!("{}", check.unpinned_warning());
    }
}

impl Pending {
    /// Compile every plugin, as many at once as there are cores, reporting each step to
    /// `progress`. Returns the plugins that failed; their calls fail too.
    pub fn compile(self, progress: &(dyn Fn(Progress<'_>) + Sync)) -> Vec<HostError> {
        self.run(false, progress)
    }

    /// [`compile`](Self::compile) on a thread of its own, reporting to the log; the calls
    /// of each plugin run as soon as it is ready. With `[cache] baseline`, every plugin the
    /// cache misses is first built with the baseline compiler (all of them, in parallel,
    /// before any Cranelift build starts), so that every tool is callable within the baseline
    /// compile time; the Cranelift builds follow and replace them one by one.
    pub fn spawn(self) -> std::thread::JoinHandle<Vec<HostError>> {
        std::thread::spawn(move || self.run(true, &log_progress))
    }

    fn run(self, baseline: bool, progress: &(dyn Fn(Progress<'_>) + Sync)) -> Vec<HostError> {
        let total = self.plugins.len();
        let done = AtomicUsize::new(0);
        let errors = Mutex::new(Vec::new());
        let runtime = &self.runtime;
        let failed = |plugin: &Plugin, error: crate::runtime::LoadError| {
            done.fetch_add(1, Ordering::Relaxed);
            let error = HostError {
                location: Some(plugin.config.location.clone()),
                message: format!("plugin `{}`: {error}", plugin.config.name),
            };
            progress(Progress::Failed { error: &error });
            if let Ok(mut errors) = errors.lock() {
                errors.push(error);
            }
        };
        let mut plugins: Vec<_> = self.plugins.into_iter().enumerate().collect();
        if baseline {
            let left = Mutex::new(Vec::new());
            in_parallel(plugins, |(index, (plugin, mut bytes))| {
                match runtime.compile_baseline(&plugin, &mut bytes) {
                    Ok(BaselineOutcome::Cached(compiled)) => progress(Progress::Ready {
                        plugin: &plugin.config.name,
                        compiled,
                        done: done.fetch_add(1, Ordering::Relaxed) + 1,
                        total,
                    }),
                    Ok(outcome) => {
                        if let BaselineOutcome::Baseline { elapsed, shared } = outcome {
                            progress(Progress::Baseline {
                                plugin: &plugin.config.name,
                                elapsed,
                                shared,
                            });
                        }
                        left.lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .push((index, (plugin, bytes)));
                    }
                    Err(error) => failed(&plugin, error),
                }
            });
            plugins = left
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            plugins.sort_by_key(|(index, _)| *index);
            if !plugins.is_empty() {
                hold_optimized();
            }
        }
        in_parallel(plugins, |(index, (plugin, bytes))| {
            let name = &plugin.config.name;
            let compiling = || {
                progress(Progress::Compiling {
                    plugin: name,
                    index: index + 1,
                    total,
                });
            };
            match runtime.compile(&plugin, bytes, compiling) {
                Ok(compiled) => progress(Progress::Ready {
                    plugin: name,
                    compiled,
                    done: done.fetch_add(1, Ordering::Relaxed) + 1,
                    total,
                }),
                Err(error) => failed(&plugin, error),
            }
        });
        runtime.end_round();
        errors
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// For tests that must observe calls served by the baseline build: `WARDEN_DELAY_OPTIMIZED_MS`
/// (at most a minute) delays the Cranelift builds that follow it. Unset, nothing waits.
fn hold_optimized() {
    let delay = std::env::var("WARDEN_DELAY_OPTIMIZED_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
        .map_or(0, |ms| ms.min(60_000));
    if delay > 0 {
        tracing::warn!(
            delay_ms = delay,
            "WARDEN_DELAY_OPTIMIZED_MS: holding the optimized builds"
        );
        std::thread::sleep(std::time::Duration::from_millis(delay));
    }
}

/// Run `work` on every item, in order, on as many threads as there are cores.
fn in_parallel<T: Send>(items: Vec<T>, work: impl Fn(T) + Sync) {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    let queue = Mutex::new(items.into_iter());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                // The lock is held only to take the next item, never while working.
                while let Some(item) = queue.lock().ok().and_then(|mut queue| queue.next()) {
                    work(item);
                }
            });
        }
    });
}

/// Report compile progress in the log: one line when a compile starts (the slow case) and
/// one when a plugin is ready.
pub fn log_progress(progress: Progress<'_>) {
    match progress {
        Progress::Compiling {
            plugin,
            index,
            total,
        } => tracing::info!(
            "compiling plugin `{plugin}` (first start only, cached afterwards) {index}/{total}"
        ),
        Progress::Ready {
            plugin,
            compiled,
            done,
            total,
        } => {
            let source = match compiled.cache {
                CacheOutcome::Hit => "cache",
                CacheOutcome::Compiled => "compiled",
            };
            tracing::info!(
                plugin,
                source,
                elapsed_ms = compiled.elapsed.as_millis() as u64,
                done,
                total,
                "plugin ready"
            );
        }
        Progress::Baseline {
            plugin,
            elapsed,
            shared,
        } => tracing::info!(
            plugin,
            source = if shared { "shared" } else { "built" },
            elapsed_ms = elapsed.as_millis() as u64,
            "plugin callable on its baseline build; compiling the optimized build"
        ),
        Progress::Failed { error } => tracing::error!("{error}"),
    }
}
