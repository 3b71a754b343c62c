//! The Redis backend: stores shared by every warden process that names the same server.
//!
//! Each store is one hash, `{prefix}{id}` (key -> value), beside a hash `{prefix}{id}:meta`
//! holding its bytes; its key count is the data hash's length. Every write is a Lua script
//! (EVALSHA, falling back to EVAL), which Redis runs atomically: the quota check and the write
//! are one step, whoever else writes at the same time.
//!
//! The connection is made at the first operation, not at start, and re-made when it drops
//! (a multiplexed `ConnectionManager`); an unreachable server fails the operation, with the
//! details in warden's log and a plain "unavailable" for the plugin.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use tokio::sync::OnceCell;

use super::backend::{Backend, KvError, PAGE, Space, human};

/// Longest wait for a connection to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for one reply.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Set a key within the store's limits. KEYS: data, meta. ARGV: key, value, max_keys, quota.
/// Returns `ok`, `keys:N` (the store is full) or `quota:BYTES` (what it would hold).
const SET: &str = r"
local data, meta = KEYS[1], KEYS[2]
local field, value = ARGV[1], ARGV[2]
local max_keys, quota = tonumber(ARGV[3]), tonumber(ARGV[4])
local bytes = tonumber(redis.call('HGET', meta, 'bytes') or '0')
local after = bytes + string.len(field) + string.len(value)
if redis.call('HEXISTS', data, field) == 1 then
  after = after - string.len(field) - redis.call('HSTRLEN', data, field)
else
  local keys = redis.call('HLEN', data)
  if keys + 1 > max_keys then return 'keys:' .. keys end
end
if after > quota and after > bytes then return 'quota:' .. after end
redis.call('HSET', data, field, value)
redis.call('HSET', meta, 'bytes', after)
return 'ok'
";

/// Delete a key. KEYS: data, meta. ARGV: key.
const DELETE: &str = r"
local data, meta, field = KEYS[1], KEYS[2], ARGV[1]
local len = redis.call('HSTRLEN', data, field)
if redis.call('HDEL', data, field) == 1 then
  local bytes = tonumber(redis.call('HGET', meta, 'bytes') or '0')
  local after = bytes - string.len(field) - len
  if after < 0 then after = 0 end
  redis.call('HSET', meta, 'bytes', after)
end
return 'ok'
";

/// Increment a counter within the store's limits. KEYS: data, meta. ARGV: key, delta,
/// max_keys, quota. Returns `ok:VALUE`, `keys:N`, `quota:BYTES`, `nan` (not a counter) or
/// `overflow`.
const INCREMENT: &str = r"
local data, meta = KEYS[1], KEYS[2]
local field, delta = ARGV[1], ARGV[2]
local max_keys, quota = tonumber(ARGV[3]), tonumber(ARGV[4])
local old = redis.call('HGET', data, field)
if old then
  if not string.match(old, '^%d+$') then return 'nan' end
else
  local keys = redis.call('HLEN', data)
  if keys + 1 > max_keys then return 'keys:' .. keys end
end
local done = redis.pcall('HINCRBY', data, field, delta)
if type(done) == 'table' and done.err then return 'overflow' end
local new = redis.call('HGET', data, field)
local bytes = tonumber(redis.call('HGET', meta, 'bytes') or '0')
local after = bytes + string.len(field) + string.len(new)
if old then after = after - string.len(field) - string.len(old) end
if after > quota and after > bytes then
  if old then redis.call('HSET', data, field, old) else redis.call('HDEL', data, field) end
  return 'quota:' .. after
end
redis.call('HSET', meta, 'bytes', after)
return 'ok:' .. new
";

/// A Redis server.
pub struct Redis {
    client: redis::Client,
    prefix: String,
    connection: OnceCell<ConnectionManager>,
    set: Script,
    delete: Script,
    increment: Script,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        write!(f, "Redis(prefix {:?})", self.prefix)
    }
}

impl Redis {
    /// A backend for the server at `url`, keys under `prefix`; nothing is connected yet. The
    /// error is for the operator and does not repeat the URL.
    pub fn new(url: &str, prefix: &str) -> Result<Redis, String> {
        let client = redis::Client::open(url).map_err(|_| {
            "invalid Redis URL: expected redis://[user:password@]host[:port][/db]".to_owned()
        })?;
        Ok(Redis {
            client,
            prefix: prefix.to_owned(),
            connection: OnceCell::new(),
            set: Script::new(SET),
            delete: Script::new(DELETE),
            increment: Script::new(INCREMENT),
        })
    }

    /// The shared connection, made on first use.
    async fn connection(&self) -> Result<ConnectionManager, KvError> {
        self.connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT)
                    .set_number_of_retries(2);
                self.client
                    .get_connection_manager_with_config(config)
                    .await
                    .map_err(|e| KvError::backend("connect to Redis", e))
            })
            .await
            .cloned()
    }

    fn data_key(&self, space: &Space) -> String {
        format!("{}{}", self.prefix, space.id)
    }

    fn meta_key(&self, space: &Space) -> String {
        format!("{}{}:meta", self.prefix, space.id)
    }

    /// Run a write script and read its status.
    async fn run(&self, invocation: &mut redis::ScriptInvocation<'_>) -> Result<String, KvError> {
        let mut connection = self.connection().await?;
        invocation
            .invoke_async(&mut connection)
            .await
            .map_err(|e| KvError::backend("Redis script", e))
    }
}

/// The refusal a script's status stands for, if it is one.
fn refusal(space: &Space, status: &str) -> Option<KvError> {
    let refused = |message: String| Some(KvError::Refused(message));
    if let Some(keys) = status.strip_prefix("keys:") {
        return refused(format!(
            "store {:?} holds {keys} keys, its max_keys: delete some before adding more",
            space.name
        ));
    }
    if let Some(bytes) = status.strip_prefix("quota:") {
        let bytes = bytes.parse::<f64>().map(|b| b as u64).unwrap_or(u64::MAX);
        return refused(format!(
            "quota exceeded: store {:?} would hold {} of its {}",
            space.name,
            human(bytes),
            human(space.limits.quota)
        ));
    }
    match status {
        "nan" => refused(
            "the key holds a value that is not a counter (a decimal number), so it cannot be incremented"
                .to_owned(),
        ),
        "overflow" => refused("the counter would overflow".to_owned()),
        _ => None,
    }
}

#[async_trait]
impl Backend for Redis {
    async fn get(&self, space: &Space, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let mut connection = self.connection().await?;
        connection
            .hget(self.data_key(space), key)
            .await
            .map_err(|e| KvError::backend("Redis HGET", e))
    }

    async fn set(&self, space: &Space, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        let status = self
            .run(
                self.set
                    .key(self.data_key(space))
                    .key(self.meta_key(space))
                    .arg(key)
                    .arg(value)
                    .arg(space.limits.max_keys)
                    .arg(space.limits.quota),
            )
            .await?;
        match refusal(space, &status) {
            Some(error) => Err(error),
            None if status == "ok" => Ok(()),
            None => Err(KvError::Backend(format!(
                "unexpected reply {status:?} from the set script"
            ))),
        }
    }

    async fn delete(&self, space: &Space, key: &str) -> Result<(), KvError> {
        self.run(
            self.delete
                .key(self.data_key(space))
                .key(self.meta_key(space))
                .arg(key),
        )
        .await
        .map(drop)
    }

    async fn exists(&self, space: &Space, key: &str) -> Result<bool, KvError> {
        let mut connection = self.connection().await?;
        connection
            .hexists(self.data_key(space), key)
            .await
            .map_err(|e| KvError::backend("Redis HEXISTS", e))
    }

    async fn list(
        &self,
        space: &Space,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        let mut connection = self.connection().await?;
        let mut keys: Vec<String> = connection
            .hkeys(self.data_key(space))
            .await
            .map_err(|e| KvError::backend("Redis HKEYS", e))?;
        keys.sort_unstable();
        let skip = cursor.unwrap_or(0);
        let total = keys.len() as u64;
        let page: Vec<String> = keys
            .into_iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(PAGE)
            .collect();
        let next = skip.saturating_add(page.len() as u64);
        Ok((page, (next < total).then_some(next)))
    }

    async fn increment(&self, space: &Space, key: &str, delta: u64) -> Result<u64, KvError> {
        let status = self
            .run(
                self.increment
                    .key(self.data_key(space))
                    .key(self.meta_key(space))
                    .arg(key)
                    .arg(delta)
                    .arg(space.limits.max_keys)
                    .arg(space.limits.quota),
            )
            .await?;
        if let Some(error) = refusal(space, &status) {
            return Err(error);
        }
        status
            .strip_prefix("ok:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                KvError::Backend(format!(
                    "unexpected reply {status:?} from the increment script"
                ))
            })
    }
}
