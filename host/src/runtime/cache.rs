//! The on-disk cache of compiled components.
//!
//! Compiling a component with Cranelift takes from 100 ms (a small Rust plugin) to seconds
//! (Python, JavaScript); loading the serialized artifact takes about a millisecond. Entries are
//! keyed by the SHA-256 of the component's bytes and by the engine's compatibility hash, so an
//! artifact is never loaded into an engine configured differently (fuel, epochs, version).
//! The cache is a plain directory: it can live on a volume shared by replicas.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of compiled components.
pub struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// Where a component came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a cached artifact.
    Hit,
    /// Compiled now (and stored, if the cache is writable).
    Compiled,
}

impl CompileCache {
    /// A cache in `dir`, or no cache at all when `dir` is `None`.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    /// The component compiled from `bytes`, from the cache when possible.
    ///
    /// A cache that cannot be read or written is not an error: the component is compiled and
    /// a warning logged. A corrupt entry is replaced.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(path) = self.entry_path(bytes) else {
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Compiled));
        };
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the same
            // compatibility hash (it is in the file name); wasmtime checks the header again.
            // The cache directory is trusted like the host binary itself.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "discarding unreadable cache entry")
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(error) = component
            .serialize()
            .map(|artifact| store(&path, &artifact))
        {
            tracing::warn!(path = %path.display(), %error, "could not serialize compiled component");
        }
        Ok((component, CacheOutcome::Compiled))
    }

    fn entry_path(&self, bytes: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let digest = hex::encode(Sha256::digest(bytes));
        Some(dir.join(format!("{digest}-{}.cwasm", self.engine_key)))
    }
}

/// Write `artifact` to `path` atomically (temporary file + rename), logging failures.
fn store(path: &Path, artifact: &[u8]) {
    let result = (|| -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.write_all(artifact)?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    })();
    if let Err(error) = result {
        tracing::warn!(path = %path.display(), %error, "could not write compile cache entry");
    }
}
