//! Rate limits and concurrency caps.
//!
//! - Per principal per tool: the plugin's `rate`. Each principal has its own bucket, so one
//!   noisy principal cannot use up another's calls.
//! - Per tool, all principals together: `tool_rate` (the plugin's, else `[limits] tool_rate`).
//! - Per plugin: at most `concurrency` calls run at once; up to `queue` more wait (no longer
//!   than the plugin's timeout), the rest are refused at once.
//!
//! Rates are GCRA buckets (`governor`): `burst` calls at once, then one every
//! `60s / per_minute`. They sit behind [`RateLimiter`] so the limiter shared by replicas
//! (`shared_limits`, Redis) can replace the in-process one; a plugin's [`Concurrency`] then
//! also takes a lease there for each call.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::Principal;
use super::shared_limits::{LEASE_MARGIN, Lease, SharedStore, SlotRefusal};
use crate::catalog::Catalog;
use crate::manifest::{GlobalLimits, Rate, StoreFailure};

/// One call about to start, as a rate limiter sees it.
pub struct RateKey<'a> {
    /// Who calls.
    pub principal: &'a Principal,
    /// The tool's name, or a prompt's [`prompt_key`].
    pub tool: &'a str,
    /// The tool's plugin.
    pub plugin: &'a str,
}

/// The name a prompt's rate limits are kept under, apart from the tools': `prompt:NAME` (a
/// tool's name has no `:`).
pub fn prompt_key(name: &str) -> String {
    format!("prompt:{name}")
}

/// The name the rate limits of a plugin's resource reads are kept under: `resources:PLUGIN`,
/// one bucket for all its URIs (URIs are unbounded; a bucket each would grow without bound).
pub fn resources_key(plugin: &str) -> String {
    format!("resources:{plugin}")
}

/// A refusal: the call may be retried after this long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds to wait, rounded up, at least 1: what the agent is told.
    pub fn seconds(self) -> u64 {
        (self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)).max(1)
    }
}

/// Why a rate limiter refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateRefusal {
    /// Over the limit: retry after this long.
    Retry(RetryAfter),
    /// The limits are shared by replicas, their store is unreachable, and the manifest says
    /// to refuse meanwhile (`on_store_error = "closed"`).
    StoreDown,
}

impl From<RetryAfter> for RateRefusal {
    fn from(retry: RetryAfter) -> Self {
        RateRefusal::Retry(retry)
    }
}

/// Decides whether a call may start now, and counts it if so.
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync {
    /// Take one call for `key`, or say why not.
    async fn check(&self, key: &RateKey<'_>) -> Result<(), RateRefusal>;
}

/// Limits nothing.
pub struct Unlimited;

#[async_trait::async_trait]
impl RateLimiter for Unlimited {
    async fn check(&self, _: &RateKey<'_>) -> Result<(), RateRefusal> {
        Ok(())
    }
}

/// The limits of one tool.
struct ToolBuckets {
    /// One bucket per principal.
    per_principal: Option<DefaultKeyedRateLimiter<Arc<str>>>,
    /// One bucket for everyone.
    ceiling: Option<DefaultDirectRateLimiter>,
    /// Checks since idle principals' buckets were last dropped.
    checks: AtomicU64,
}

/// The in-process [`RateLimiter`]: `governor` buckets built from the manifest.
pub struct LocalRateLimiter {
    tools: HashMap<String, ToolBuckets>,
    clock: DefaultClock,
}

/// How often (in checks of one tool) buckets that are full again are dropped, so the map of
/// principals does not grow without bound.
const RETAIN_EVERY: u64 = 4096;

impl LocalRateLimiter {
    /// Buckets for every tool and prompt of `catalog`, and for each plugin's resources: each
    /// plugin's `rate` and `tool_rate`, and `limits.tool_rate` where a plugin sets none.
    pub fn new(catalog: &Catalog, limits: &GlobalLimits) -> Self {
        let tools = tool_rates(catalog, limits)
            .map(|(name, per_principal, ceiling)| {
                (
                    name,
                    ToolBuckets {
                        per_principal: per_principal
                            .map(|rate| DefaultKeyedRateLimiter::keyed(quota(rate))),
                        ceiling: ceiling.map(|rate| DefaultDirectRateLimiter::direct(quota(rate))),
                        checks: AtomicU64::new(0),
                    },
                )
            })
            .collect();
        Self {
            tools,
            clock: DefaultClock::default(),
        }
    }

    /// Whether any tool has a limit at all.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    fn take(&self, key: &RateKey<'_>) -> Result<(), RetryAfter> {
        let Some(buckets) = self.tools.get(key.tool) else {
            return Ok(());
        };
        if let Some(limiter) = &buckets.per_principal {
            if buckets.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
                limiter.retain_recent();
            }
            limiter
                .check_key(&key.principal.name)
                .map_err(|not_until| RetryAfter(not_until.wait_time_from(self.clock.now())))?;
        }
        if let Some(limiter) = &buckets.ceiling {
            limiter
                .check()
                .map_err(|not_until| RetryAfter(not_until.wait_time_from(self.clock.now())))?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn check(&self, key: &RateKey<'_>) -> Result<(), RateRefusal> {
        self.take(key).map_err(RateRefusal::Retry)
    }
}

/// The rates of every tool and prompt of `catalog`, and of each plugin's resources, that has
/// any: its name (or [`prompt_key`], [`resources_key`]), the plugin's `rate` (per principal)
/// and the ceiling (the plugin's `tool_rate`, else `limits.tool_rate`).
pub(super) fn tool_rates<'c>(
    catalog: &'c Catalog,
    limits: &'c GlobalLimits,
) -> impl Iterator<Item = (String, Option<Rate>, Option<Rate>)> + 'c {
    catalog
        .iter()
        .map(|tool| (tool.name().to_owned(), &tool.plugin))
        .chain(
            catalog
                .prompts()
                .map(|prompt| (prompt_key(prompt.name()), &prompt.plugin)),
        )
        .chain(
            catalog
                .resources()
                .plugins()
                .map(|plugin| (resources_key(&plugin.config.name), plugin)),
        )
        .filter_map(|(name, plugin)| {
            let policy = &plugin.config.policy;
            let ceiling = policy.tool_rate.or(limits.tool_rate);
            (policy.rate.is_some() || ceiling.is_some()).then_some((name, policy.rate, ceiling))
        })
}

/// `per_minute` calls a minute, `burst` at once.
fn quota(rate: Rate) -> Quota {
    let nonzero = |n: u32| NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    let period = Duration::from_secs(60) / rate.per_minute.max(1);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_minute(nonzero(rate.per_minute)))
        .allow_burst(nonzero(rate.burst))
}

/// A plugin's concurrency cap with a bounded queue; with a shared store, counted across
/// replicas too.
pub struct Concurrency {
    slots: Semaphore,
    waiting: AtomicU32,
    queue: u32,
    /// Where the queue's depth is shown (`warden_queue_depth`), when metrics are on.
    meter: Option<std::sync::Arc<crate::metrics::PluginMeter>>,
    shared: Option<SharedCap>,
}

/// The cap's count in the store shared by replicas.
struct SharedCap {
    store: Arc<SharedStore>,
    plugin: Arc<str>,
    limit: u32,
}

/// A slot under a plugin's cap, held while the call runs: the local permit and, with a shared
/// store, the lease (given back when dropped).
pub struct Slot<'a> {
    _permit: SemaphorePermit<'a>,
    _lease: Option<Lease>,
}

/// The plugin already runs `concurrency` calls and `queue` more are waiting (or this one
/// waited too long).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy;

impl Concurrency {
    /// At most `limit` calls at once, up to `queue` waiting.
    pub fn new(limit: u32, queue: u32) -> Self {
        Self {
            slots: Semaphore::new(limit as usize),
            waiting: AtomicU32::new(0),
            queue,
            meter: None,
            shared: None,
        }
    }

    /// At most `limit` calls of `plugin` at once across every replica sharing `store` (and
    /// here), up to `queue` waiting here.
    pub fn shared(limit: u32, queue: u32, store: Arc<SharedStore>, plugin: &str) -> Self {
        Self {
            shared: Some(SharedCap {
                store,
                plugin: Arc::from(plugin),
                limit,
            }),
            ..Self::new(limit, queue)
        }
    }

    /// A slot for a call that runs at most `runs`: here, then (shared) a lease in the store,
    /// waiting at most `wait` in all. A lease lasts `runs` plus [`LEASE_MARGIN`], so one whose
    /// replica died frees itself.
    pub async fn slot(&self, wait: Duration, runs: Duration) -> Result<Slot<'_>, SlotRefusal> {
        let deadline = tokio::time::Instant::now() + wait;
        let permit = self.acquire(wait).await.map_err(|Busy| SlotRefusal::Busy)?;
        let Some(shared) = &self.shared else {
            return Ok(Slot {
                _permit: permit,
                _lease: None,
            });
        };
        let mut pause = Duration::from_millis(5);
        loop {
            match shared
                .store
                .lease(&shared.plugin, shared.limit, runs + LEASE_MARGIN)
                .await
            {
                Ok(Some(id)) => {
                    shared.store.answered();
                    let lease = Lease {
                        store: shared.store.clone(),
                        plugin: shared.plugin.clone(),
                        id,
                    };
                    return Ok(Slot {
                        _permit: permit,
                        _lease: Some(lease),
                    });
                }
                Ok(None) => {
                    shared.store.answered();
                    // No queue: refused at once, as here.
                    if self.queue == 0 || tokio::time::Instant::now() + pause > deadline {
                        return Err(SlotRefusal::Busy);
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(error) => {
                    shared.store.failed(&error);
                    return match shared.store.on_error() {
                        StoreFailure::Closed => Err(SlotRefusal::StoreDown),
                        StoreFailure::Local => Ok(Slot {
                            _permit: permit,
                            _lease: None,
                        }),
                    };
                }
            }
        }
    }

    /// The same cap, showing its queue's depth in `meter`.
    pub fn with_meter(mut self, meter: std::sync::Arc<crate::metrics::PluginMeter>) -> Self {
        self.meter = Some(meter);
        self
    }

    /// A slot, at once or after waiting in the queue at most `wait`.
    pub async fn acquire(&self, wait: Duration) -> Result<SemaphorePermit<'_>, Busy> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy);
        }
        // Leave the queue however this ends, including when the call is dropped.
        struct Waiting<'a>(&'a AtomicU32, Option<&'a crate::metrics::PluginMeter>);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
                if let Some(meter) = self.1 {
                    meter.queued(-1);
                }
            }
        }
        if let Some(meter) = &self.meter {
            meter.queued(1);
        }
        let _waiting = Waiting(&self.waiting, self.meter.as_deref());
        match tokio::time::timeout(wait, self.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_advice_rounds_up_to_whole_seconds() {
        assert_eq!(RetryAfter(Duration::from_millis(100)).seconds(), 1);
        assert_eq!(RetryAfter(Duration::from_secs(3)).seconds(), 3);
        assert_eq!(RetryAfter(Duration::from_millis(3001)).seconds(), 4);
        assert_eq!(RetryAfter(Duration::ZERO).seconds(), 1);
    }

    #[test]
    fn quotas_allow_the_burst_then_refuse() {
        let limiter = DefaultKeyedRateLimiter::keyed(quota(Rate {
            per_minute: 1,
            burst: 3,
        }));
        let ann: Arc<str> = Arc::from("ann");
        let bob: Arc<str> = Arc::from("bob");
        for _ in 0..3 {
            assert!(limiter.check_key(&ann).is_ok());
        }
        assert!(limiter.check_key(&ann).is_err());
        assert!(
            limiter.check_key(&bob).is_ok(),
            "another principal has its own bucket"
        );
    }

    #[tokio::test]
    async fn the_queue_is_bounded_and_waits_are_capped() {
        let cap = Concurrency::new(1, 1);
        let held = cap
            .acquire(Duration::from_secs(1))
            .await
            .expect("first slot");
        // One may wait; it times out because the slot stays held.
        let waiter = cap.acquire(Duration::from_millis(50));
        let (waited, refused) = tokio::join!(waiter, async {
            tokio::task::yield_now().await;
            cap.acquire(Duration::from_secs(1)).await
        });
        assert_eq!(waited.err(), Some(Busy));
        assert_eq!(refused.err(), Some(Busy), "the queue of 1 was full");
        drop(held);
        assert!(cap.acquire(Duration::from_millis(10)).await.is_ok());
        assert_eq!(cap.waiting.load(Ordering::Acquire), 0);
    }
}
