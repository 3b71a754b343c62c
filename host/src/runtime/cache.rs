//! The on-disk cache of compiled components, authenticated so that no byte another user or a
//! plugin can write is ever run as native code.
//!
//! Compiling a component with Cranelift takes from 100 ms (a small Rust plugin) to seconds
//! (Python, JavaScript); loading the serialized artifact takes about a millisecond. But an
//! artifact is native code that wasmtime maps executable as it is: whoever can change a cache
//! entry runs code as warden's user, outside every sandbox. So:
//!
//! - **Every entry is authenticated.** An entry is `MAGIC`, an HMAC-SHA256 tag, then the
//!   artifact. The tag covers the engine's compatibility key, the SHA-256 of the component's
//!   `.wasm` bytes (the ones the manifest pins) and the artifact, under a key that never sits in
//!   the cache: a per-install key file created 0600 beside it (`[cache] key_file`), or a key
//!   derived from a secret the operator supplies (`[cache] key`, for a volume shared by
//!   replicas). An entry whose tag does not verify (tampered, truncated, written under another
//!   key, or moved to another component's name) is discarded with a warning and recompiled.
//! - **Artifacts are read into private memory** ([`Component::deserialize`] from bytes), never
//!   mapped from the file: rewriting an entry in place cannot change the code of a running
//!   server.
//! - **Only the optimizing compiler's artifacts are cached.** The cache belongs to the
//!   Cranelift engine it was opened with: it loads into that engine only, and compiles for it
//!   (with an engine of the same compatibility key, dropped at the end of each round:
//!   [`Compiler`]). The entry's name and tag cover that key (the compiler, its flags and
//!   tunables), so an artifact of another engine (Winch's baseline build, see
//!   `Runtime::compile_baseline`) is never written here, and could not be loaded if it were.
//! - **The directory must be private to warden's user**: one that is group- or
//!   world-writable, or owned by another user, is refused, and so is a key file that others can
//!   read or that another user owns. (The manifest also refuses a `dirs` grant over the cache or
//!   the key file: `manifest::validate`.)

use std::collections::HashMap;
use std::fs::{self, DirBuilder, Metadata};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::manifest::CacheKey;
use crate::runtime::engine::{Compiler, build_compile_engine, compatibility_key};

/// The first bytes of every entry: the format's name and version.
const MAGIC: &[u8; 8] = b"WDNCWSM1";
/// Length of the HMAC-SHA256 tag that follows [`MAGIC`].
const TAG_LEN: usize = 32;
/// Length of the per-install key, in bytes (stored as hex).
const KEY_LEN: usize = 32;
/// What the operator's `[cache] key` secret is mixed with to derive the MAC key.
const KEY_CONTEXT: &[u8] = b"warden compile cache key v1";

/// Why the cache cannot be used. Each names the path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "refusing the compile cache {path}: it is writable by {who} (mode {mode:04o}), who could \
         plant native code that warden would run; make it private (`chmod 700 {path}`) or set \
         [cache] dir elsewhere"
    )]
    DirWritable {
        path: PathBuf,
        who: &'static str,
        mode: u32,
    },
    #[error(
        "refusing the {what} {path}: it is owned by uid {owner}, not by warden's user \
         (uid {user}); use one of warden's own ([cache] dir, key_file)"
    )]
    Owner {
        what: &'static str,
        path: PathBuf,
        owner: u32,
        user: u32,
    },
    #[error(
        "refusing the compile cache key {path}: it is readable or writable by others (mode \
         {mode:04o}); `chmod 600 {path}`, or delete it to have a new one made"
    )]
    KeyExposed { path: PathBuf, mode: u32 },
    #[error(
        "the compile cache key {path} is not {KEY_LEN} bytes of hex; delete it to have a new \
         one made"
    )]
    KeyMalformed { path: PathBuf },
    #[error("compile cache {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where compiled components are cached and the key that authenticates them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// The cache directory; created (0700) when missing.
    pub dir: PathBuf,
    /// The key: a key file (created when missing) or the operator's secret.
    pub key: CacheKey,
    /// On a miss, build with the baseline compiler first so calls run at once
    /// (`[cache] baseline`).
    pub baseline: bool,
}

/// A directory of compiled components.
pub struct CompileCache {
    store: Option<Store>,
    engine_key: String,
    /// The components read or compiled in this round of loading.
    round: Round,
    /// What compiles in a round, until [`end_round`](Self::end_round), for the engine every
    /// entry is loaded into ([`Compiler::target`]).
    compiler: Compiler,
}

/// The components of one round of loading, by the digest of their bytes: a manifest that
/// serves one component as several plugins reads or builds it once and holds one copy of its
/// code. [`clear`](Self::clear) empties it at the end of the round, so that nothing keeps code
/// after its plugins are gone.
#[derive(Default)]
pub struct Round(Mutex<HashMap<[u8; 32], Arc<Shared>>>);

/// One component of the round: empty until its first plugin has read or built it.
type Shared = Mutex<Option<Component>>;

impl Round {
    /// The component of `digest` this round has, or the one `make` makes, with what `make`
    /// said (`None` when the component was the round's already), remembered for the rest of
    /// the round. Plugins of the same bytes loading at once wait for the first.
    pub fn once<T, E>(
        &self,
        digest: [u8; 32],
        make: impl FnOnce() -> Result<(Component, T), E>,
    ) -> Result<(Component, Option<T>), E> {
        let slot = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(digest)
            .or_default()
            .clone();
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(component) = &*slot {
            return Ok((component.clone(), None));
        }
        let (component, said) = make()?;
        *slot = Some(component.clone());
        Ok((component, Some(said)))
    }

    /// The round is over: forget its components (their plugins keep them).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// An opened, checked cache directory and its MAC key.
struct Store {
    dir: PathBuf,
    key: hmac::Key,
}

/// Where a component came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a cached artifact whose tag verified.
    Hit,
    /// Compiled now (and stored, if the cache is writable).
    Compiled,
}

impl CompileCache {
    /// A cache as `config` says, or no cache at all when `config` is `None`. Creates the
    /// directory and the key file when missing; refuses a directory or key others could use.
    pub fn open(engine: &Engine, config: Option<&CacheConfig>) -> Result<Self, CacheError> {
        let store = match config {
            Some(config) => {
                open_dir(&config.dir)?;
                Some(Store {
                    dir: config.dir.clone(),
                    key: mac_key(&config.key)?,
                })
            }
            None => None,
        };
        Ok(Self {
            store,
            engine_key: compatibility_key(engine),
            round: Round::default(),
            compiler: Compiler::new(engine, build_compile_engine),
        })
    }

    /// The component compiled from `bytes`, from the cache when an authentic entry exists.
    ///
    /// A cache entry that cannot be read, or whose tag does not verify, is not an error: the
    /// component is compiled, a warning logged and the entry replaced.
    /// `on_compile` runs just before compiling, when there is no usable entry.
    pub fn load(
        &self,
        bytes: &[u8],
        on_compile: impl FnOnce(),
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let digest = Sha256::digest(bytes).into();
        self.once(digest, || match self.read(&digest) {
            Some(component) => Ok((component, CacheOutcome::Hit)),
            None => self.compile_now(&digest, bytes, on_compile),
        })
    }

    /// The component compiled from `bytes` now (no lookup: the caller looked already),
    /// stored in the cache when there is one. `on_compile` runs first. A plugin of the same
    /// bytes loaded in this round shares its code instead ([`CacheOutcome::Hit`]).
    pub fn compile(
        &self,
        bytes: &[u8],
        on_compile: impl FnOnce(),
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let digest = Sha256::digest(bytes).into();
        self.once(digest, || self.compile_now(&digest, bytes, on_compile))
    }

    /// The component compiled from `bytes` if this round loaded it already or the cache
    /// holds an authentic entry for it. An entry that cannot be read or used, or whose tag
    /// does not verify, is `None` (with a warning): the caller compiles.
    pub fn lookup(&self, bytes: &[u8]) -> Option<Component> {
        let digest = Sha256::digest(bytes).into();
        self.once(digest, || {
            self.read(&digest).map(|c| (c, CacheOutcome::Hit)).ok_or(())
        })
        .ok()
        .map(|(component, _)| component)
    }

    /// The round of loading is over: forget what it loaded (the plugins keep their code) and
    /// drop its compiler.
    pub fn end_round(&self) {
        self.round.clear();
        self.compiler.release()
    }

    /// The component of `digest` this round loaded ([`CacheOutcome::Hit`]), or the one `make`
    /// makes.
    fn once<E>(
        &self,
        digest: [u8; 32],
        make: impl FnOnce() -> Result<(Component, CacheOutcome), E>,
    ) -> Result<(Component, CacheOutcome), E> {
        let (component, outcome) = self.round.once(digest, make)?;
        Ok((component, outcome.unwrap_or(CacheOutcome::Hit)))
    }

    /// Compile the component of `digest` from `bytes` and store it in the cache, if any.
    fn compile_now(
        &self,
        digest: &[u8; 32],
        bytes: &[u8],
        on_compile: impl FnOnce(),
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        on_compile();
        let (component, artifact) = self.compiler.compile(bytes)?;
        if let Some(store) = &self.store {
            let path = self.entry_path(store, digest);
            let tag = self.tag(store, digest, &artifact);
            write_entry(&path, &tag, &artifact);
        }
        Ok((component, CacheOutcome::Compiled))
    }

    /// The component of `digest` from its cache entry, if one exists and is authentic.
    fn read(&self, digest: &[u8; 32]) -> Option<Component> {
        let store = self.store.as_ref()?;
        let path = self.entry_path(store, digest);
        match fs::read(&path) {
            Ok(entry) => match self.open_entry(store, digest, &entry) {
                Some(artifact) => {
                    // SAFETY: the artifact carries a valid tag under a key only warden's user
                    // holds, over this engine's compatibility key and this component's digest:
                    // warden serialized it from this component. It was read into private
                    // memory, so later writes to the file cannot change it; wasmtime copies it
                    // into its own mapping and checks the header again.
                    match unsafe { Component::deserialize(self.compiler.target(), artifact) } {
                        Ok(component) => return Some(component),
                        Err(error) => tracing::warn!(
                            path = %path.display(), %error,
                            "discarding an unusable compile cache entry; recompiling"
                        ),
                    }
                }
                None => tracing::warn!(
                    path = %path.display(),
                    "discarding a compile cache entry that failed authentication (modified, \
                     or written under another key); recompiling"
                ),
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(
                path = %path.display(), %error, "cannot read compile cache entry; recompiling"
            ),
        }
        None
    }

    /// The path of the entry of the component whose SHA-256 is `digest`.
    fn entry_path(&self, store: &Store, digest: &[u8; 32]) -> PathBuf {
        store
            .dir
            .join(format!("{}-{}.cwasm", hex::encode(digest), self.engine_key))
    }

    /// The artifact inside `entry` if its tag verifies, else `None`.
    fn open_entry<'e>(
        &self,
        store: &Store,
        digest: &[u8; 32],
        entry: &'e [u8],
    ) -> Option<&'e [u8]> {
        let rest = entry.strip_prefix(MAGIC.as_slice())?;
        let (tag, artifact) = rest.split_at_checked(TAG_LEN)?;
        let expected = self.tag(store, digest, artifact);
        bool::from(expected.as_ref().ct_eq(tag)).then_some(artifact)
    }

    /// The tag of `artifact`, compiled from the component whose SHA-256 is `digest`.
    fn tag(&self, store: &Store, digest: &[u8; 32], artifact: &[u8]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&store.key);
        context.update(MAGIC);
        context.update(self.engine_key.as_bytes());
        context.update(digest);
        context.update(artifact);
        context.sign()
    }
}

/// The effective user id of this process.
fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates `dir` (0700) if needed and checks that only warden's user can write it.
fn open_dir(dir: &Path) -> Result<(), CacheError> {
    let io = |source| CacheError::Io {
        path: dir.to_path_buf(),
        source,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    let meta = fs::metadata(dir).map_err(io)?;
    check_private_dir(dir, &meta)
}

/// Refuses `path` (the `what`) unless warden's user owns it.
fn check_owner(what: &'static str, path: &Path, meta: &Metadata) -> Result<(), CacheError> {
    let user = current_uid();
    if meta.uid() == user {
        return Ok(());
    }
    Err(CacheError::Owner {
        what,
        path: path.to_path_buf(),
        owner: meta.uid(),
        user,
    })
}

fn check_private_dir(dir: &Path, meta: &Metadata) -> Result<(), CacheError> {
    check_owner("compile cache", dir, meta)?;
    let mode = meta.mode() & 0o7777;
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (_, true) => "every user",
        (true, false) => "its group",
        (false, false) => return Ok(()),
    };
    Err(CacheError::DirWritable {
        path: dir.to_path_buf(),
        who,
        mode,
    })
}

/// The MAC key: derived from the operator's secret, or read from (or first written to) the
/// key file.
fn mac_key(key: &CacheKey) -> Result<hmac::Key, CacheError> {
    let bytes = match key {
        CacheKey::Secret(secret) => {
            let derive = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
            hmac::sign(&derive, KEY_CONTEXT).as_ref().to_vec()
        }
        CacheKey::File(path) => key_file(path)?,
    };
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

/// Reads the per-install key at `path`, creating it (0600, in a 0700 directory if the
/// directory is new) when missing. Two processes starting at once agree on one key: the
/// file appears whole, under its name, at most once.
fn key_file(path: &Path) -> Result<Vec<u8>, CacheError> {
    let io = |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    };
    match fs::read_to_string(path) {
        Ok(text) => {
            let meta = fs::metadata(path).map_err(io)?;
            check_owner("compile cache key", path, &meta)?;
            let mode = meta.mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(CacheError::KeyExposed {
                    path: path.to_path_buf(),
                    mode,
                });
            }
            hex::decode(text.trim())
                .ok()
                .filter(|key| key.len() == KEY_LEN)
                .ok_or_else(|| CacheError::KeyMalformed {
                    path: path.to_path_buf(),
                })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; KEY_LEN];
            SystemRandom::new()
                .fill(&mut key)
                .map_err(|_| io(std::io::Error::other("no system randomness")))?;
            let dir = path.parent().unwrap_or(Path::new("."));
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
            // tempfile creates the file 0600; persisting without clobbering makes the first
            // writer's key the one everybody reads.
            let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
            writeln!(file, "{}", hex::encode(key)).map_err(io)?;
            match file.persist_noclobber(path) {
                Ok(_) => {
                    tracing::info!(path = %path.display(), "created the compile cache key");
                    Ok(key.to_vec())
                }
                Err(error) if error.error.kind() == std::io::ErrorKind::AlreadyExists => {
                    key_file(path)
                }
                Err(error) => Err(io(error.error)),
            }
        }
        Err(error) => Err(io(error)),
    }
}

/// Writes an entry atomically (a private temporary file renamed over the name), logging
/// failures: a cache that cannot be written only costs compile time.
fn write_entry(path: &Path, tag: &hmac::Tag, artifact: &[u8]) {
    let result = (|| -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.write_all(MAGIC)?;
        file.write_all(tag.as_ref())?;
        file.write_all(artifact)?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    })();
    if let Err(error) = result {
        tracing::warn!(path = %path.display(), %error, "could not write compile cache entry");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::SecretValue;
    use crate::runtime::engine::{EngineOptions, build_baseline_engine, build_engine};

    fn codec() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/plugins/wasm32-wasip2/release/codec.wasm"
        );
        fs::read(path).expect("codec.wasm (built by host/build.rs)")
    }

    /// A cache in `dir`, under a fixed secret.
    fn config(dir: &Path) -> CacheConfig {
        CacheConfig {
            dir: dir.join("cache"),
            key: CacheKey::Secret(SecretValue::new("k".repeat(40))),
            baseline: true,
        }
    }

    /// An artifact of the baseline compiler (Winch), planted under the name the Cranelift
    /// build would have and with a valid tag (as if warden had written it), is never loaded:
    /// the Cranelift engine refuses it and compiles, and the two engines' entries could not
    /// even share a name.
    #[test]
    fn an_artifact_of_the_baseline_compiler_is_never_loaded() {
        let bytes = codec();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config(dir.path());
        let cranelift = build_engine(&EngineOptions::default()).expect("cranelift engine");
        let winch = build_baseline_engine().expect("winch engine");
        let cache = CompileCache::open(&cranelift, Some(&config)).expect("cache");
        let winch_cache = CompileCache::open(&winch, Some(&config)).expect("cache");
        assert_ne!(cache.engine_key, winch_cache.engine_key);

        let artifact = Component::new(&winch, &bytes)
            .expect("winch compiles codec")
            .serialize()
            .expect("serialize");
        let store = cache.store.as_ref().expect("store");
        let digest = Sha256::digest(&bytes).into();
        let path = cache.entry_path(store, &digest);
        write_entry(&path, &cache.tag(store, &digest, &artifact), &artifact);
        assert!(
            cache.lookup(&bytes).is_none(),
            "the Winch artifact was loaded"
        );

        // What the cache then compiles and writes is Cranelift's, and loads.
        let (_, outcome) = cache.load(&bytes, || {}).expect("compiles");
        assert_eq!(outcome, CacheOutcome::Compiled);
        cache.end_round();
        assert!(cache.lookup(&bytes).is_some());
    }

    /// Within a round, a component's bytes are read or compiled once however many plugins
    /// serve them, and all of them share its code; after the round the cache holds nothing.
    #[test]
    fn plugins_of_the_same_bytes_share_one_component_within_a_round() {
        let bytes = codec();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config(dir.path());
        let engine = build_engine(&EngineOptions::default()).expect("engine");
        let cache = CompileCache::open(&engine, Some(&config)).expect("cache");
        let compiles = std::sync::atomic::AtomicUsize::new(0);
        let count = || {
            compiles.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let loaded: Vec<_> = std::thread::scope(|scope| {
            let loads: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| cache.load(&bytes, count).expect("loads")))
                .collect();
            loads
                .into_iter()
                .map(|l| l.join().expect("thread"))
                .collect()
        });
        assert_eq!(compiles.into_inner(), 1, "compiled once");
        let compiled = loaded
            .iter()
            .filter(|(_, o)| *o == CacheOutcome::Compiled)
            .count();
        assert_eq!(compiled, 1);
        let code = |c: &Component| c.image_range();
        assert!(
            loaded.iter().all(|(c, _)| code(c) == code(&loaded[0].0)),
            "one copy of the code"
        );

        cache.end_round();
        assert!(cache.round.0.lock().expect("round").is_empty());
        let again = cache.lookup(&bytes).expect("read from the cache file");
        assert_ne!(
            code(&again),
            code(&loaded[0].0),
            "a new round reads a new copy"
        );
    }
}
