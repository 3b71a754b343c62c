//! Limits counted by every replica together, in Redis (`[limits] store`).
//!
//! - Rates are GCRA buckets, one Redis string each holding the bucket's "theoretical arrival
//!   time" in microseconds, set with a TTL that ends when the bucket is full again (so idle
//!   principals leave nothing behind). One Lua script checks and takes the principal's bucket
//!   and the tool's ceiling together: one round trip, atomic, and Redis `TIME` is the clock,
//!   so the replicas' own clocks do not matter.
//! - Concurrency is a sorted set of leases per plugin, scored by their expiry (Redis time in
//!   ms). A lease is taken by a Lua script (expired leases dropped, then a lease if fewer than
//!   `concurrency` remain) and given back when the call ends; one left by a crashed replica
//!   frees itself when it expires (the call's time limit plus a margin).
//!
//! - Approval states (`requestState`) are spent once across replicas: `SET NX` of the state's
//!   digest, expiring with the state. The flow rule's marks (a principal received private
//!   output) are set there too, expiring with `[approval] window`.
//!
//! Keys: `{prefix}rate:{len}:{tool}:{principal}`, `{prefix}ceiling:{tool}`,
//! `{prefix}leases:{plugin}`, `{prefix}spent:{sha256}`, `{prefix}flow:{principal}` (the length makes a tool name and a principal name that contain
//! `:` unambiguous).
//!
//! When the store cannot be reached, `on_store_error` decides: `closed` refuses the call
//! ([`RateRefusal::StoreDown`], [`SlotRefusal::StoreDown`]), `local` counts in process meanwhile.
//! Each outage is logged once, and its end once. The connection is made at the first call,
//! within [`CONNECT_TIMEOUT`], and after a failed attempt none is tried for [`RETRY_PAUSE`], so
//! a store that is down costs calls no wait.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::limits::{LocalRateLimiter, RateKey, RateLimiter, RateRefusal, RetryAfter, tool_rates};
use crate::catalog::Catalog;
use crate::manifest::{GlobalLimits, LimitStore, Rate, StoreFailure};

/// Longest wait for a connection to the store.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for one reply.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// After a failed connection attempt, calls fail at once for this long.
pub const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// A lease outlives its call's time limit by this much, then frees itself.
pub const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// KEYS: one or two buckets. ARGV: for each, the emission interval and the burst tolerance
/// ((burst - 1) x interval), in µs. Returns 0 when the call may start (both buckets taken),
/// else the µs to wait (neither taken).
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local next = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local allowed_at = tat - tolerance
  if now < allowed_at and allowed_at - now > wait then wait = allowed_at - now end
  next[i] = tat + interval
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%.0f', next[i]), 'PX', math.ceil((next[i] - now) / 1000))
end
return 0
";

/// KEYS: the plugin's leases. ARGV: limit, ttl in ms, lease id. Returns 1 with the lease
/// taken, 0 when `limit` leases are live.
const LEASE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
";

/// The store could not be reached or answered wrongly. The detail is for the host's log,
/// never for the agent.
#[derive(Debug, thiserror::Error)]
#[error("shared limit store: {0}")]
pub struct StoreError(String);

/// The connection to the shared store, and how calls meet its failures.
pub struct SharedStore {
    client: redis::Client,
    prefix: String,
    on_error: StoreFailure,
    connection: OnceCell<ConnectionManager>,
    /// No connection attempt before this (after a failed one).
    retry_at: Mutex<Option<Instant>>,
    /// The store failed at the last call (logged once per outage).
    down: AtomicBool,
    take: Script,
    lease: Script,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedStore(prefix {:?})", self.prefix)
    }
}

impl SharedStore {
    /// The store `config` names. Connects at the first use.
    pub fn new(config: &LimitStore) -> Result<SharedStore, StoreError> {
        let client = redis::Client::open(config.url.expose()).map_err(|_| {
            StoreError(
                "invalid Redis URL: expected redis://[user:password@]host[:port][/db]".into(),
            )
        })?;
        Ok(SharedStore {
            client,
            prefix: config.prefix.clone(),
            on_error: config.on_error,
            connection: OnceCell::new(),
            retry_at: Mutex::new(None),
            down: AtomicBool::new(false),
            take: Script::new(TAKE),
            lease: Script::new(LEASE),
        })
    }

    /// What calls meet while the store is down.
    pub fn on_error(&self) -> StoreFailure {
        self.on_error
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection.clone());
        }
        let pause = |at: &mut Option<Instant>| *at = Some(Instant::now() + RETRY_PAUSE);
        {
            let retry_at = self.retry_at.lock().unwrap_or_else(PoisonError::into_inner);
            if retry_at.is_some_and(|at| Instant::now() < at) {
                return Err(StoreError("not connected (retrying shortly)".into()));
            }
        }
        let connected = self
            .connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT)
                    .set_number_of_retries(1)
                    .set_factor(2)
                    .set_max_delay(100);
                let connect = self.client.get_connection_manager_with_config(config);
                match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                    Ok(connected) => connected.map_err(|e| StoreError(format!("connect: {e}"))),
                    Err(_) => Err(StoreError(format!(
                        "connect: no connection within {CONNECT_TIMEOUT:?}"
                    ))),
                }
            })
            .await
            .cloned();
        if connected.is_err() {
            pause(&mut self.retry_at.lock().unwrap_or_else(PoisonError::into_inner));
        }
        connected
    }

    /// Take one call from each of `buckets` (a key under the prefix and its rate), all or
    /// none. `None`: taken; `Some(wait)`: refused, retry after `wait`.
    pub async fn take(&self, buckets: &[(String, Rate)]) -> Result<Option<Duration>, StoreError> {
        let mut invocation = self.take.prepare_invoke();
        for (key, rate) in buckets {
            let interval = u64::try_from(interval(*rate).as_micros()).unwrap_or(u64::MAX);
            let tolerance = interval.saturating_mul(u64::from(rate.burst.max(1) - 1));
            invocation
                .key(format!("{}{key}", self.prefix))
                .arg(interval)
                .arg(tolerance);
        }
        let mut connection = self.connection().await?;
        let wait: i64 = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(|e| StoreError(format!("rate script: {e}")))?;
        Ok((wait > 0).then(|| Duration::from_micros(wait.unsigned_abs())))
    }

    /// A lease on one of `plugin`'s `limit` slots for `ttl`: its id, or `None` when all are
    /// taken.
    pub async fn lease(
        &self,
        plugin: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut connection = self.connection().await?;
        let taken: i64 = self
            .lease
            .key(self.leases_key(plugin))
            .arg(limit)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .arg(&id)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| StoreError(format!("lease script: {e}")))?;
        Ok((taken == 1).then_some(id))
    }

    /// Give lease `id` of `plugin` back.
    pub async fn release(&self, plugin: &str, id: &str) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let _: i64 = redis::cmd("ZREM")
            .arg(self.leases_key(plugin))
            .arg(id)
            .query_async(&mut connection)
            .await
            .map_err(|e| StoreError(format!("release: {e}")))?;
        Ok(())
    }

    /// Record approval state `state` as used, for `ttl` (its validity): `false` when some
    /// replica used it already. Kept as its SHA-256 under `{prefix}spent:`.
    pub async fn spend(&self, state: &str, ttl: Duration) -> Result<bool, StoreError> {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(state.as_bytes()));
        let mut connection = self.connection().await?;
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("{}spent:{digest}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .query_async(&mut connection)
            .await
            .map_err(|e| StoreError(format!("spend: {e}")))?;
        Ok(set.is_some())
    }

    /// `principal` received private output from `tool`: the flow rule's mark, for `window`.
    pub async fn mark(
        &self,
        principal: &str,
        tool: &str,
        window: Duration,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let _: () = redis::cmd("SET")
            .arg(self.flow_key(principal))
            .arg(tool)
            .arg("PX")
            .arg(u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1))
            .query_async(&mut connection)
            .await
            .map_err(|e| StoreError(format!("mark: {e}")))?;
        Ok(())
    }

    /// The private tool `principal` received output from within its window, on any replica.
    pub async fn marked(&self, principal: &str) -> Result<Option<String>, StoreError> {
        let mut connection = self.connection().await?;
        redis::cmd("GET")
            .arg(self.flow_key(principal))
            .query_async(&mut connection)
            .await
            .map_err(|e| StoreError(format!("marked: {e}")))
    }

    fn flow_key(&self, principal: &str) -> String {
        format!("{}flow:{principal}", self.prefix)
    }

    fn leases_key(&self, plugin: &str) -> String {
        format!("{}leases:{plugin}", self.prefix)
    }

    /// The store answered: the end of an outage is logged once.
    pub(super) fn answered(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::warn!("shared limit store reachable again: limits are shared by replicas");
        }
    }

    /// The store failed: the start of an outage is logged once.
    pub(super) fn failed(&self, error: &StoreError) {
        if !self.down.swap(true, Ordering::AcqRel) {
            match self.on_error {
                StoreFailure::Closed => tracing::error!(
                    %error,
                    "shared limit store unreachable: limited calls are refused until it answers \
                     (on_store_error = \"closed\")"
                ),
                StoreFailure::Local => tracing::error!(
                    %error,
                    "shared limit store unreachable: each replica counts alone until it answers \
                     (on_store_error = \"local\")"
                ),
            }
        }
    }
}

/// The emission interval of `rate`: one call every `60s / per_minute`.
fn interval(rate: Rate) -> Duration {
    Duration::from_secs(60) / rate.per_minute.max(1)
}

/// The key of `principal`'s bucket on `tool`.
fn rate_key(tool: &str, principal: &str) -> String {
    format!("rate:{}:{tool}:{principal}", tool.len())
}

/// The key of `tool`'s ceiling.
fn ceiling_key(tool: &str) -> String {
    format!("ceiling:{tool}")
}

/// The [`RateLimiter`] shared by replicas, with the in-process one to fall back on.
pub struct SharedRateLimiter {
    store: Arc<SharedStore>,
    /// By tool (or prompt or resources key): the per-principal rate and the ceiling.
    rates: HashMap<String, (Option<Rate>, Option<Rate>)>,
    local: LocalRateLimiter,
}

impl SharedRateLimiter {
    /// The limits of `catalog` and `limits`, counted in `store`.
    pub fn new(catalog: &Catalog, limits: &GlobalLimits, store: Arc<SharedStore>) -> Self {
        let rates = tool_rates(catalog, limits)
            .map(|(name, per_principal, ceiling)| (name, (per_principal, ceiling)))
            .collect();
        Self {
            store,
            rates,
            local: LocalRateLimiter::new(catalog, limits),
        }
    }

    /// Whether any tool has a limit at all.
    pub fn is_empty(&self) -> bool {
        self.rates.is_empty()
    }
}

#[async_trait::async_trait]
impl RateLimiter for SharedRateLimiter {
    async fn check(&self, key: &RateKey<'_>) -> Result<(), RateRefusal> {
        let Some((per_principal, ceiling)) = self.rates.get(key.tool) else {
            return Ok(());
        };
        let buckets: Vec<(String, Rate)> = per_principal
            .map(|rate| (rate_key(key.tool, &key.principal.name), rate))
            .into_iter()
            .chain(ceiling.map(|rate| (ceiling_key(key.tool), rate)))
            .collect();
        match self.store.take(&buckets).await {
            Ok(None) => {
                self.store.answered();
                Ok(())
            }
            Ok(Some(wait)) => {
                self.store.answered();
                Err(RateRefusal::Retry(RetryAfter(wait)))
            }
            Err(error) => {
                self.store.failed(&error);
                match self.store.on_error {
                    StoreFailure::Closed => Err(RateRefusal::StoreDown),
                    StoreFailure::Local => self.local.check(key).await,
                }
            }
        }
    }
}

/// A lease held in the shared store, given back when dropped.
pub(super) struct Lease {
    pub(super) store: Arc<SharedStore>,
    pub(super) plugin: Arc<str>,
    pub(super) id: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let (store, plugin, id) = (
            self.store.clone(),
            self.plugin.clone(),
            std::mem::take(&mut self.id),
        );
        // Without a runtime (shutting down), the lease expires by itself.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = store.release(&plugin, &id).await {
                    tracing::warn!(%error, "lease not given back; it expires by itself");
                }
            });
        }
    }
}

/// Why no slot was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotRefusal {
    /// The plugin runs `concurrency` calls (here or, shared, across replicas), and the queue
    /// is full or the wait ran out.
    Busy,
    /// The shared store is unreachable and `on_store_error = "closed"`.
    StoreDown,
}
