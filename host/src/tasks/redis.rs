//! Tasks in Redis, shared by every warden process that names the same server and prefix.
//!
//! A task is one hash, `{prefix}task:{id}` (`status`, `updated`, `meta` and, once it ended,
//! `end`: JSON), expiring with the task's TTL. Each owner's working tasks are a sorted set,
//! `{prefix}live:{owner}` (task ids scored by their expiry), so the per-principal cap holds
//! across replicas. Every write is a Lua script, which Redis runs atomically: the cap check
//! and the creation are one step, and a task ends once (a cancellation and the run's end
//! race, and the first wins).

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::store::{Change, StoreError, TaskRecord, TaskStore, now_ms, parse_status, status_str};

/// Longest wait for a connection to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for one reply.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// KEYS: task, live. ARGV: now, max_live, ttl_ms, id, updated, meta.
const CREATE: &str = r"
local task, live = KEYS[1], KEYS[2]
local now, max_live, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
if redis.call('ZCARD', live) >= max_live then return 'full' end
redis.call('HSET', task, 'status', 'working', 'updated', ARGV[5], 'meta', ARGV[6])
redis.call('PEXPIRE', task, ttl)
redis.call('ZADD', live, now + ttl, ARGV[4])
if redis.call('PTTL', live) < ttl then redis.call('PEXPIRE', live, ttl) end
return 'ok'
";

/// KEYS: task, live. ARGV: id, from (statuses, comma-separated), to, updated, end (empty:
/// unchanged), input (empty: cleared), terminal (`1`: leave the live set).
const SET: &str = r"
local task, live = KEYS[1], KEYS[2]
local status = redis.call('HGET', task, 'status')
if not status then return 0 end
local allowed = false
for s in string.gmatch(ARGV[2], '[^,]+') do
  if s == status then allowed = true end
end
if not allowed then return 0 end
redis.call('HSET', task, 'status', ARGV[3], 'updated', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', task, 'end', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', task, 'input', ARGV[6]) else redis.call('HDEL', task, 'input') end
if ARGV[7] == '1' then redis.call('ZREM', live, ARGV[1]) end
return 1
";

/// KEYS: task. ARGV: message. Only while the task works (an expired one is not recreated).
const NOTE: &str = r"
if redis.call('HGET', KEYS[1], 'status') == 'working' then
  redis.call('HSET', KEYS[1], 'message', ARGV[1])
end
return 1
";

/// The Redis task store.
pub struct RedisStore {
    client: redis::Client,
    prefix: String,
    connection: OnceCell<ConnectionManager>,
    create: Script,
    set: Script,
    note: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisStore(prefix {:?})", self.prefix)
    }
}

fn backend(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{what}: {error}"))
}

impl RedisStore {
    /// A store on the server at `url`, its keys under `prefix`. Connects at the first use.
    pub fn new(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url).map_err(|_| {
            StoreError::Backend(
                "invalid Redis URL: expected redis://[user:password@]host[:port][/db]".to_owned(),
            )
        })?;
        Ok(RedisStore {
            client,
            prefix: prefix.to_owned(),
            connection: OnceCell::new(),
            create: Script::new(CREATE),
            set: Script::new(SET),
            note: Script::new(NOTE),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        self.connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT)
                    .set_number_of_retries(2)
                    .set_factor(2)
                    .set_max_delay(200);
                let connect = self.client.get_connection_manager_with_config(config);
                match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                    Ok(connected) => connected.map_err(|e| backend("connect to Redis", e)),
                    Err(_) => Err(StoreError::Backend(format!(
                        "connect to Redis: no connection within {CONNECT_TIMEOUT:?}"
                    ))),
                }
            })
            .await
            .cloned()
    }

    fn task_key(&self, id: &str) -> String {
        format!("{}task:{id}", self.prefix)
    }

    fn live_key(&self, owner: &str) -> String {
        format!("{}live:{owner}", self.prefix)
    }
}

#[async_trait]
impl TaskStore for RedisStore {
    async fn create(&self, task: &TaskRecord, max_live: u32) -> Result<(), StoreError> {
        let meta = serde_json::to_string(&task.meta).map_err(|e| backend("encode task", e))?;
        let mut connection = self.connection().await?;
        let status: String = self
            .create
            .key(self.task_key(&task.id))
            .key(self.live_key(&task.meta.owner))
            .arg(now_ms())
            .arg(max_live)
            .arg(task.meta.ttl_ms)
            .arg(&task.id)
            .arg(&task.updated_at)
            .arg(meta)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| backend("Redis script", e))?;
        match status.as_str() {
            "ok" => Ok(()),
            _ => Err(StoreError::Full(max_live)),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<TaskRecord>, StoreError> {
        let mut connection = self.connection().await?;
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.task_key(id))
            .arg(&["status", "updated", "meta", "end", "input", "message"][..])
            .query_async(&mut connection)
            .await
            .map_err(|e| backend("Redis HMGET", e))?;
        let [status, updated, meta, end, input, message] = <[Option<String>; 6]>::try_from(fields)
            .map_err(|_| StoreError::Backend("Redis HMGET: wrong number of fields".to_owned()))?;
        let (Some(status), Some(updated_at), Some(meta)) = (status, updated, meta) else {
            return Ok(None);
        };
        let status = parse_status(&status)
            .ok_or_else(|| StoreError::Backend(format!("task {id}: unknown status")))?;
        let meta = serde_json::from_str(&meta).map_err(|e| backend("decode task", e))?;
        let end = end
            .map(|end| serde_json::from_str(&end))
            .transpose()
            .map_err(|e| backend("decode task", e))?;
        let input = input
            .map(|input| serde_json::from_str(&input))
            .transpose()
            .map_err(|e| backend("decode task", e))?;
        Ok(Some(TaskRecord {
            id: id.to_owned(),
            meta,
            status,
            updated_at,
            end,
            input,
            message,
        }))
    }

    async fn set(&self, id: &str, change: Change<'_>) -> Result<bool, StoreError> {
        // The owner is needed for the live set's key; a task that is gone has nothing to end.
        let Some(task) = self.get(id).await? else {
            return Ok(false);
        };
        let encode = |value: Option<String>| value.unwrap_or_default();
        let end = change
            .end
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| backend("encode task", e))?;
        let input = change
            .input
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| backend("encode task", e))?;
        let from: Vec<&str> = change.from.iter().map(|s| status_str(*s)).collect();
        let mut connection = self.connection().await?;
        let changed: i64 = self
            .set
            .key(self.task_key(id))
            .key(self.live_key(&task.meta.owner))
            .arg(id)
            .arg(from.join(","))
            .arg(status_str(change.to))
            .arg(change.updated_at)
            .arg(encode(end))
            .arg(encode(input))
            .arg(if change.to.is_terminal() { "1" } else { "0" })
            .invoke_async(&mut connection)
            .await
            .map_err(|e| backend("Redis script", e))?;
        Ok(changed == 1)
    }

    async fn note(&self, id: &str, message: &str) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let _: i64 = self
            .note
            .key(self.task_key(id))
            .arg(message)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| backend("Redis script", e))?;
        Ok(())
    }
}
