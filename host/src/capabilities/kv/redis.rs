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
                // Short, bounded retries: the library's default backoff grows past a call's
                // whole time limit.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT)
                    .set_number_of_retries(2)
                    .set_factor(2)
                    .set_max_delay(200);
                let connect = self.client.get_connection_manager_with_config(config);
                match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                    Ok(connected) => connected.map_err(|e| KvError::backend("connect to Redis", e)),
                    Err(_) => Err(KvError::Backend(format!(
                        "connect to Redis: no connection within {CONNECT_TIMEOUT:?}"
                    ))),
                }
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    use super::super::backend::Limits;
    use super::*;

    /// A `redis-server` on a free loopback port, killed when dropped; its directory goes
    /// with it.
    struct Server(Child, u16, #[allow(dead_code)] tempfile::TempDir);

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn server() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server ({e}): install it with `apt-get install redis-server`")
            });
        let server = Server(child, port, dir);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pong = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(1)))?;
                s.write_all(b"PING\r\n")?;
                let mut reply = [0u8; 7];
                s.read_exact(&mut reply)?;
                Ok(&reply == b"+PONG\r\n")
            });
            if matches!(pong, Ok(true)) {
                return server;
            }
            assert!(Instant::now() < deadline, "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[tokio::test]
    async fn scripts_keep_totals_counters_and_limits() {
        let server = server();
        let redis = Redis::new(&format!("redis://127.0.0.1:{}", server.1), "t:").expect("url");
        let s = Space {
            id: "plugin/t".into(),
            name: "t".into(),
            limits: Limits {
                quota: 64,
                max_keys: 3,
                max_value: 64,
            },
        };
        assert_eq!(redis.increment(&s, "n", 5).await.expect("new"), 5);
        assert_eq!(redis.increment(&s, "n", 2).await.expect("again"), 7);
        assert_eq!(
            redis.get(&s, "n").await.expect("get").as_deref(),
            Some(&b"7"[..])
        );
        redis.set(&s, "text", b"hello".to_vec()).await.expect("set");
        let error = redis
            .increment(&s, "text", 1)
            .await
            .expect_err("not a counter");
        assert!(error.to_string().contains("not a counter"), "{error}");
        let error = redis
            .increment(&s, "n", u64::MAX)
            .await
            .expect_err("overflow");
        assert!(error.to_string().contains("overflow"), "{error}");
        assert_eq!(
            redis.get(&s, "n").await.expect("get").as_deref(),
            Some(&b"7"[..])
        );

        // n(1+1) + text(4+5) = 11 bytes, 2 keys.
        redis.set(&s, "k", vec![b'x'; 40]).await.expect("third key");
        let error = redis.set(&s, "l", vec![]).await.expect_err("max_keys");
        assert!(error.to_string().contains("holds 3 keys"), "{error}");
        let error = redis.set(&s, "k", vec![b'x'; 60]).await.expect_err("quota");
        assert_eq!(
            error.to_string(),
            "quota exceeded: store \"t\" would hold 72 B of its 64 B"
        );
        let error = redis.increment(&s, "k2", 1).await.expect_err("max_keys");
        assert!(error.to_string().contains("holds 3 keys"), "{error}");

        redis.delete(&s, "k").await.expect("delete");
        redis
            .delete(&s, "k")
            .await
            .expect("delete of a missing key");
        assert!(!redis.exists(&s, "k").await.expect("exists"));
        let (keys, cursor) = redis.list(&s, None).await.expect("list");
        assert_eq!(
            (keys, cursor),
            (vec!["n".to_owned(), "text".to_owned()], None)
        );
        let mut connection = redis.connection().await.expect("connection");
        let bytes: u64 = connection
            .hget("t:plugin/t:meta", "bytes")
            .await
            .expect("meta");
        assert_eq!(bytes, 11);
    }
}
