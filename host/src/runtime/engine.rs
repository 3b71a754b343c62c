//! The one [`Engine`] every plugin shares, the [`Compiler`] that compiles for it, and the
//! epoch ticker that bounds wall-clock time.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{
    Config, Enabled, Engine, EngineWeak, InstanceAllocationStrategy, OptLevel,
    PoolingAllocationConfig, Strategy,
};

/// How often the epoch ticks. A call's wall-clock deadline is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How much of each freed linear memory and table is kept mapped and reset in place for the
/// next instance (see [`build_engine`]).
const KEEP_RESIDENT: usize = 1 << 20;

/// Sizing of the engine, derived from the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineOptions {
    /// Largest linear memory any plugin may grow to, in bytes.
    pub max_memory: u64,
    /// How many plugin instances may be alive at once across all plugins.
    pub max_instances: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            max_memory: 64 << 20,
            max_instances: 256,
        }
    }
}

/// Build the engine: Cranelift, fuel metering, epoch interruption and the pooling allocator
/// with copy-on-write memory images, so a per-call instance costs microseconds.
pub fn build_engine(options: &EngineOptions) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let instances = options.max_instances.max(1);
    // A component instance holds a few core instances (the plugin, the WASI adapter, shims).
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(8))
        .total_stacks(instances)
        .max_memories_per_component(4)
        .max_memory_size(usize::try_from(options.max_memory).unwrap_or(usize::MAX))
        // A freed slot's first pages are reset in place and stay mapped, instead of being
        // returned with madvise: a small plugin's next call then takes no page faults and no
        // TLB shootdown. With PAGEMAP_SCAN (Linux 6.7+) only the pages the call dirtied are
        // reset. Beyond this size, memory is still given back to the system.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);

    let mut config = cranelift_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// What [`build_engine`]'s code is compiled for: Cranelift, with fuel and epoch checks.
fn cranelift_config() -> Config {
    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .consume_fuel(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .wasm_component_model(true);
    config
}

/// An engine that compiles for [`build_engine`]'s engines (the same compatibility key) and
/// instantiates nothing, so it reserves no pool: the [`Compiler`] of the compile cache.
pub fn build_compile_engine() -> wasmtime::Result<Engine> {
    let mut config = cranelift_config();
    config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    Engine::new(&config)
}

/// Compiles components for an engine with a second engine of the same compatibility key, made
/// by the first compile and dropped by [`release`](Self::release) at the end of the round of
/// loading. wasmtime's compiler keeps each thread's compiler context for as long as its engine
/// lives, sized by the largest function it compiled: tens of MB after a Python component,
/// which the engine that runs the plugins would otherwise hold for good.
pub struct Compiler {
    /// The engine the components are for.
    target: Engine,
    make: fn() -> wasmtime::Result<Engine>,
    engine: Mutex<Option<Engine>>,
}

impl Compiler {
    /// Compile for `target` with engines that `make` makes.
    pub fn new(target: &Engine, make: fn() -> wasmtime::Result<Engine>) -> Self {
        Self {
            target: target.clone(),
            make,
            engine: Mutex::default(),
        }
    }

    /// The engine the components are for.
    pub fn target(&self) -> &Engine {
        &self.target
    }

    /// `bytes` compiled and loaded into the target engine, with the serialized artifact.
    pub fn compile(&self, bytes: &[u8]) -> wasmtime::Result<(Component, Vec<u8>)> {
        let artifact = self.engine()?.precompile_component(bytes)?;
        // SAFETY: the artifact was compiled from `bytes` just now, in this process, by an
        // engine with the target's compatibility key (`engine`); wasmtime checks its header.
        let component = unsafe { Component::deserialize(&self.target, &artifact) }?;
        Ok((component, artifact))
    }

    /// The engine to compile with, made by the first compile after a release.
    fn engine(&self) -> wasmtime::Result<Engine> {
        let mut engine = self.engine.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(engine) = &*engine {
            return Ok(engine.clone());
        }
        Ok(engine.insert((self.make)()?).clone())
    }

    /// Drop the compiling engine, if one was made (compiles after this make another).
    pub fn release(&self) {
        let engine = self
            .engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(engine);
    }
}

/// `engine`'s compatibility key: artifacts of engines with the same key load in each other.
pub fn compatibility_key(engine: &Engine) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Give the heap memory freed since the last trim back to the system. glibc keeps what a
/// thread frees in that thread's arena: after a Python component's Cranelift build, about
/// 200 MB that warden would hold for good; after loading 20 small plugins, 0.6 MB.
pub fn release_freed_memory() {
    // SAFETY: `malloc_trim` only returns free pages of the allocator's arenas to the system.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Build the baseline engine: Winch, wasmtime's single-pass compiler, which compiles a
/// Python or JavaScript component several times faster than Cranelift into slower code. It
/// runs a plugin's calls on a cold cache only until the Cranelift build is ready
/// (`Runtime::compile_baseline`), so it allocates instances on demand instead of reserving a pool.
/// Every limit holds as on the main engine: Winch emits the same fuel checks (every
/// function entry and loop header) and epoch checks, and memory is bounded by the store's
/// limiter, not the allocator.
pub fn build_baseline_engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config
        .strategy(Strategy::Winch)
        // Winch compiles functions; the trampolines between host and guest (one per function
        // that can be called indirectly: thousands in CPython) are still Cranelift's, and
        // unoptimized they compile faster.
        .cranelift_opt_level(OptLevel::None)
        .consume_fuel(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::OnDemand);
    Engine::new(&config)
}

/// A thread that increments the engine's epoch every [`EPOCH_TICK`], and the baseline
/// engine's once [`EpochTicker::tick_also`] names it; stops when dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    also: Arc<OnceLock<EngineWeak>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Start ticking `engine`'s epoch.
    pub fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let also: Arc<OnceLock<EngineWeak>> = Arc::default();
        let thread = {
            let engine = engine.weak();
            let stop = stop.clone();
            let also = also.clone();
            std::thread::Builder::new()
                .name("warden-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        match engine.upgrade() {
                            Some(engine) => engine.increment_epoch(),
                            None => break,
                        }
                        if let Some(baseline) = also.get().and_then(EngineWeak::upgrade) {
                            baseline.increment_epoch();
                        }
                    }
                })
                .ok()
        };
        Self { stop, also, thread }
    }

    /// Tick `engine`'s epoch too (the baseline engine, made later), from the same thread: one
    /// wake-up every tick however many engines there are.
    pub fn tick_also(&self, engine: &Engine) {
        let _ = self.also.set(engine.weak());
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component is compiled by an engine of the compiler's own, loads into the target
    /// engine, and that compiling engine (with the Cranelift contexts it keeps) is gone once
    /// released; the next compile makes another.
    #[test]
    fn the_compiling_engine_is_dropped_when_released() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/plugins/wasm32-wasip2/release/codec.wasm"
        );
        let bytes = std::fs::read(path).expect("codec.wasm (built by host/build.rs)");
        let target = build_engine(&EngineOptions::default()).expect("engine");
        let compiler = Compiler::new(&target, build_compile_engine);

        let (component, artifact) = compiler.compile(&bytes).expect("compiles");
        assert!(Engine::same(component.engine(), &target));
        let compiling = compiler.engine().expect("engine").weak();
        assert!(
            !Engine::same(&compiling.upgrade().expect("alive"), &target),
            "compiled by an engine of its own"
        );
        // SAFETY: serialized just now by an engine of the target's compatibility key.
        unsafe { Component::deserialize(&target, &artifact) }.expect("the artifact loads");

        compiler.release();
        assert!(
            compiling.upgrade().is_none(),
            "the compiling engine is gone"
        );
        compiler.compile(&bytes).expect("compiles again");
        assert!(compiler.engine.lock().expect("lock").is_some());
    }

    /// The engine that compiles has the same compatibility key as the engines that run the
    /// code, whatever their sizing: otherwise the serving engine would refuse every artifact
    /// it compiled.
    #[test]
    fn the_compile_engine_compiles_for_every_sizing_of_the_engine() {
        let compile = compatibility_key(&build_compile_engine().expect("compile engine"));
        for options in [
            EngineOptions::default(),
            EngineOptions {
                max_memory: 1 << 30,
                max_instances: 16,
            },
        ] {
            let engine = build_engine(&options).expect("engine");
            assert_eq!(compatibility_key(&engine), compile, "{options:?}");
        }
        let winch = build_baseline_engine().expect("winch");
        assert_ne!(compatibility_key(&winch), compile);
    }
}
