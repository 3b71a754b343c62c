//! The one [`Engine`] every plugin shares, and the epoch ticker that bounds wall-clock time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

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

    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .consume_fuel(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// Build the baseline engine: Winch, wasmtime's single-pass compiler, which compiles a
/// Python or JavaScript component several times faster than Cranelift into slower code. It
/// runs a plugin's calls on a cold cache only until the Cranelift build is ready
/// (`runtime::baseline`), so it allocates instances on demand instead of reserving a pool.
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
