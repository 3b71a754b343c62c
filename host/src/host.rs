//! Assembling a host from a manifest: runtime, plugins, catalog, gate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audit::{AuditSink, FileSink, NoAudit};
use crate::catalog::Catalog;
use crate::gate::{Gate, GateOptions};
use crate::manifest::{Location, Manifest};
use crate::runtime::{CacheConfig, CacheOutcome, EngineOptions, Plugin, Runtime};

/// Everything `warden serve` needs, loaded and checked.
pub struct Host {
    /// The call pipeline over all tools.
    pub gate: Arc<Gate>,
    /// The runtime shared by all plugins.
    pub runtime: Arc<Runtime>,
    /// The loaded plugins, in manifest order.
    pub plugins: Vec<Arc<Plugin>>,
    /// How each plugin was loaded, in manifest order.
    pub loaded: Vec<LoadReport>,
}

/// How one plugin was loaded.
pub struct LoadReport {
    pub plugin: String,
    pub cache: CacheOutcome,
    pub elapsed: Duration,
}

/// A problem found while loading, with the place in the manifest it concerns.
#[derive(Debug)]
pub struct HostError {
    pub location: Option<Location>,
    pub message: String,
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
    /// Load every plugin of `manifest` and build the tool catalog. Reports every plugin that
    /// fails, not only the first.
    pub fn load(manifest: &Manifest) -> Result<Host, Vec<HostError>> {
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
        };
        let runtime = Runtime::new(&options, Some(&cache)).map_err(|e| {
            vec![HostError {
                location: None,
                message: e.to_string(),
            }]
        })?;
        let runtime = Arc::new(runtime);
        let mut plugins = Vec::new();
        let mut loaded = Vec::new();
        let mut errors = Vec::new();
        for config in &manifest.plugins {
            let started = Instant::now();
            match runtime.load(config) {
                Ok(plugin) => {
                    loaded.push(LoadReport {
                        plugin: config.name.clone(),
                        cache: plugin.cache,
                        elapsed: started.elapsed(),
                    });
                    plugins.push(Arc::new(plugin));
                }
                Err(error) => errors.push(HostError {
                    location: Some(config.location.clone()),
                    message: format!("plugin `{}`: {error}", config.name),
                }),
            }
        }
        let catalog = Catalog::build(plugins.clone()).map_err(|catalog_errors| {
            let mut all = std::mem::take(&mut errors);
            all.extend(catalog_errors.into_iter().map(|e| HostError {
                location: Some(e.location),
                message: e.message,
            }));
            all
        })?;
        if !errors.is_empty() {
            return Err(errors);
        }
        let audit: Arc<dyn AuditSink> = match &manifest.audit {
            Some(config) => Arc::new(
                FileSink::open(&config.path, config.rotate, config.fsync).map_err(|e| {
                    vec![HostError {
                        location: None,
                        message: format!("cannot open the audit log: {e}"),
                    }]
                })?,
            ),
            None => Arc::new(NoAudit),
        };
        let options = GateOptions::from_manifest(manifest, audit);
        let gate = Gate::new(catalog, runtime.clone(), options).map_err(|e| {
            vec![HostError {
                location: None,
                message: e.to_string(),
            }]
        })?;
        let gate = Arc::new(gate);
        Ok(Host {
            gate,
            runtime,
            plugins,
            loaded,
        })
    }
}
