//! The embedded backend: one redb file for every store of a warden process.
//!
//! Each store is a table `data/ID` (key -> value); the table `meta` holds each store's
//! [`Totals`], updated in the same write transaction as the keys, so a quota holds however
//! many calls write at once (redb serializes write transactions). Reads take a snapshot and
//! run on the caller's thread (microseconds). With `[kv] sync = "always"` (the default) writes
//! commit durably (an `fsync`), so they run on tokio's blocking pool rather than stall a worker
//! thread; with `sync = INTERVAL` they commit without one, on the caller's thread, and a
//! flusher thread makes them durable at most an interval later, and once more when the
//! backend is dropped (redb: a commit with `Durability::None` persists with the next durable
//! commit).
//!
//! redb locks its file: one process opens it at a time, and a reload keeps the open
//! database ([`super::Kv`]'s `start`). The file (and its directory) is opened at the first
//! operation, not at start, so `warden check` or a one-shot `warden call` that touches no
//! store can run beside a serving warden.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    TableError,
};
use tokio::sync::OnceCell;

use super::backend::{Backend, KvError, PAGE, Space, Totals, parse_counter};

/// Each store's totals: bytes and keys.
const META: TableDefinition<&str, (u64, u64)> = TableDefinition::new("meta");

/// A redb database file, opened on first use.
pub struct Embedded {
    db: OnceCell<Arc<Database>>,
    path: PathBuf,
    /// `sync`: `None`, every write durable; otherwise the flusher of non-durable writes.
    flusher: Option<Arc<Flusher>>,
}

/// Makes the writes committed without an `fsync` durable: at most `interval` after the first
/// of them, and when the backend is dropped.
struct Flusher {
    interval: Duration,
    /// Writes were committed since the last durable commit.
    dirty: AtomicBool,
    /// Set when the backend goes: the thread flushes a last time and ends.
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Flusher {
    /// Commit durably if anything was written since the last time: an empty transaction with
    /// `Durability::Immediate` persists the commits before it.
    fn flush(&self, db: &Database) {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let result = db.begin_write().map_err(|e| e.to_string()).and_then(|txn| {
            // `Immediate` is a write transaction's default.
            txn.commit().map_err(|e| e.to_string())
        });
        if let Err(error) = result {
            self.dirty.store(true, Ordering::Release);
            tracing::error!(%error, "the key-value store could not be flushed to disk");
        }
    }

    /// The thread's loop: flush every `interval` until stopped, then a last time.
    fn run(&self, db: Arc<Database>) {
        let mut stopped = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let (guard, _) = self
                .wake
                .wait_timeout(stopped, self.interval)
                .unwrap_or_else(|e| e.into_inner());
            stopped = guard;
            self.flush(&db);
            if *stopped {
                return;
            }
        }
    }
}

impl Embedded {
    /// The flusher commits the last writes and ends. Called when the server stops (the
    /// process may end with a plugin's build still holding the backend) and again on drop
    /// (a reload that changes `[kv]`), where it does nothing more.
    fn flush_last(&self) {
        if let Some(flusher) = &self.flusher {
            *flusher.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
            flusher.wake.notify_all();
            if let Some(db) = self.db.get() {
                flusher.flush(db);
            }
        }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.flush_last();
    }
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Embedded({})", self.path.display())
    }
}

impl Embedded {
    /// The database at `path`, to be opened (or created) at the first operation; its writes
    /// made durable at once (`sync` `None`) or at most `sync` later.
    pub fn new(path: &Path, sync: Option<Duration>) -> Embedded {
        Embedded {
            db: OnceCell::new(),
            path: path.to_path_buf(),
            flusher: sync.map(|interval| {
                Arc::new(Flusher {
                    interval,
                    dirty: AtomicBool::new(false),
                    stop: Mutex::new(false),
                    wake: Condvar::new(),
                })
            }),
        }
    }

    /// The database, opened now if it is not yet (and its flusher started).
    async fn db(&self) -> Result<Arc<Database>, KvError> {
        self.db
            .get_or_try_init(|| async {
                let db = open(&self.path).map(Arc::new).map_err(KvError::Backend)?;
                if let Some(flusher) = &self.flusher {
                    let (flusher, db) = (flusher.clone(), db.clone());
                    std::thread::Builder::new()
                        .name("warden-kv-flush".into())
                        .spawn(move || flusher.run(db))
                        .map_err(|e| KvError::backend("start the flusher", e))?;
                }
                Ok(db)
            })
            .await
            .cloned()
    }
}

/// Open (or create, 0600) the database at `path`, creating its directory (0700) when missing.
/// The error is for the operator.
fn open(path: &Path) -> Result<Database, String> {
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| {
            format!(
                "cannot create the key-value store's directory {}: {e}",
                dir.display()
            )
        })?;
    }
    // Created 0600 before redb opens it: it holds every plugin's store.
    #[cfg(unix)]
    if !path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("cannot create the key-value store {}: {e}", path.display()))?;
    }
    Database::create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => format!(
            "the key-value store {} is open in another warden process (an embedded store \
             belongs to one process; give [kv] a `url` to share a Redis server instead)",
            path.display()
        ),
        e => format!("cannot open the key-value store {}: {e}", path.display()),
    })
}

impl Embedded {
    /// Run `write` in one write transaction: committed durably on the blocking pool, or, with
    /// a flusher, without an `fsync` on this thread.
    async fn write<R: Send + 'static>(
        &self,
        write: impl FnOnce(&redb::WriteTransaction) -> Result<R, KvError> + Send + 'static,
    ) -> Result<R, KvError> {
        let db = self.db().await?;
        if let Some(flusher) = &self.flusher {
            let mut txn = db
                .begin_write()
                .map_err(|e| KvError::backend("begin a write", e))?;
            txn.set_durability(Durability::None)
                .map_err(|e| KvError::backend("begin a write", e))?;
            let result = write(&txn)?;
            txn.commit().map_err(|e| KvError::backend("commit", e))?;
            flusher.dirty.store(true, Ordering::Release);
            return Ok(result);
        }
        let run = move || {
            let txn = db
                .begin_write()
                .map_err(|e| KvError::backend("begin a write", e))?;
            let result = write(&txn)?;
            txn.commit().map_err(|e| KvError::backend("commit", e))?;
            Ok(result)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(run)
                .await
                .map_err(|e| KvError::backend("write task", e))?,
            Err(_) => run(),
        }
    }

    /// Run `read` on a snapshot; a store never written reads as empty.
    async fn read<R>(
        &self,
        space: &Space,
        empty: R,
        read: impl FnOnce(&redb::ReadOnlyTable<&str, &[u8]>) -> Result<R, redb::StorageError>,
    ) -> Result<R, KvError> {
        let txn = self
            .db()
            .await?
            .begin_read()
            .map_err(|e| KvError::backend("begin a read", e))?;
        let name = data_table(space);
        match txn.open_table(TableDefinition::<&str, &[u8]>::new(&name)) {
            Ok(table) => read(&table).map_err(|e| KvError::backend("read", e)),
            Err(TableError::TableDoesNotExist(_)) => Ok(empty),
            Err(e) => Err(KvError::backend("open a store", e)),
        }
    }
}

/// The name of a store's table.
/// A store's table and the totals table, open for writing in `txn`.
#[allow(clippy::type_complexity)]
fn tables<'txn>(
    txn: &'txn redb::WriteTransaction,
    space: &Space,
) -> Result<
    (
        redb::Table<'txn, &'static str, &'static [u8]>,
        redb::Table<'txn, &'static str, (u64, u64)>,
    ),
    KvError,
> {
    let name = data_table(space);
    let data = txn
        .open_table(TableDefinition::<&str, &[u8]>::new(&name))
        .map_err(|e| KvError::backend("open a store", e))?;
    let meta = txn
        .open_table(META)
        .map_err(|e| KvError::backend("open totals", e))?;
    Ok((data, meta))
}

fn data_table(space: &Space) -> String {
    format!("data/{}", space.id)
}

/// The store's totals, as of `txn`.
fn totals(meta: &redb::Table<&str, (u64, u64)>, space: &Space) -> Result<Totals, KvError> {
    Ok(meta
        .get(space.id.as_str())
        .map_err(|e| KvError::backend("read totals", e))?
        .map(|v| {
            let (bytes, keys) = v.value();
            Totals { bytes, keys }
        })
        .unwrap_or_default())
}

/// Set `key` to `value` in `txn`, within the limits.
fn set_in(
    txn: &redb::WriteTransaction,
    space: &Space,
    key: &str,
    value: &[u8],
) -> Result<(), KvError> {
    let (mut data, mut meta) = tables(txn, space)?;
    let old = data
        .get(key)
        .map_err(|e| KvError::backend("read", e))?
        .map(|v| v.value().len() as u64);
    let after = totals(&meta, space)?.after_set(space, key, old, value.len() as u64)?;
    data.insert(key, value)
        .map_err(|e| KvError::backend("write", e))?;
    meta.insert(space.id.as_str(), (after.bytes, after.keys))
        .map_err(|e| KvError::backend("write totals", e))?;
    Ok(())
}

#[async_trait]
impl Backend for Embedded {
    async fn get(&self, space: &Space, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.read(space, None, |t| Ok(t.get(key)?.map(|v| v.value().to_vec())))
            .await
    }

    async fn set(&self, space: &Space, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        let (space, key) = (space.clone(), key.to_owned());
        self.write(move |txn| set_in(txn, &space, &key, &value))
            .await
    }

    async fn delete(&self, space: &Space, key: &str) -> Result<(), KvError> {
        if !self.exists(space, key).await? {
            return Ok(());
        }
        let (space, key) = (space.clone(), key.to_owned());
        self.write(move |txn| {
            let (mut data, mut meta) = tables(txn, &space)?;
            let removed = data
                .remove(key.as_str())
                .map_err(|e| KvError::backend("delete", e))?
                .map(|v| v.value().len() as u64);
            if let Some(old) = removed {
                let after = totals(&meta, &space)?.after_delete(&key, old);
                meta.insert(space.id.as_str(), (after.bytes, after.keys))
                    .map_err(|e| KvError::backend("write totals", e))?;
            }
            Ok(())
        })
        .await
    }

    async fn exists(&self, space: &Space, key: &str) -> Result<bool, KvError> {
        self.read(space, false, |t| Ok(t.get(key)?.is_some())).await
    }

    async fn list(
        &self,
        space: &Space,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        let skip = cursor.unwrap_or(0);
        self.read(space, (Vec::new(), None), |t| {
            let total = t.len()?;
            let skip_n = usize::try_from(skip).unwrap_or(usize::MAX);
            let mut keys = Vec::new();
            for entry in t.iter()?.skip(skip_n).take(PAGE) {
                keys.push(entry?.0.value().to_owned());
            }
            let next = skip.saturating_add(keys.len() as u64);
            Ok((keys, (next < total).then_some(next)))
        })
        .await
    }

    async fn increment(&self, space: &Space, key: &str, delta: u64) -> Result<u64, KvError> {
        let (space, key) = (space.clone(), key.to_owned());
        self.write(move |txn| {
            let current = {
                let name = data_table(&space);
                let data = txn
                    .open_table(TableDefinition::<&str, &[u8]>::new(&name))
                    .map_err(|e| KvError::backend("open a store", e))?;
                let value = data
                    .get(key.as_str())
                    .map_err(|e| KvError::backend("read", e))?;
                parse_counter(value.as_ref().map(|v| v.value()))?
            };
            let next = current.checked_add(delta).ok_or_else(|| {
                KvError::Refused(format!(
                    "the counter would overflow: {current} + {delta} is over {}",
                    u64::MAX
                ))
            })?;
            set_in(txn, &space, &key, next.to_string().as_bytes())?;
            Ok(next)
        })
        .await
    }

    fn stop(&self) {
        self.flush_last();
    }
}

#[cfg(test)]
mod tests {
    use super::super::backend::Limits;
    use super::*;

    fn space(max_keys: u64) -> Space {
        Space {
            id: "plugin/t".into(),
            name: "t".into(),
            limits: Limits {
                quota: 1 << 20,
                max_keys,
                max_value: 1 << 10,
            },
        }
    }

    #[tokio::test]
    async fn counters_increment_and_refuse_what_is_not_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Embedded::new(&dir.path().join("kv.redb"), None);
        let s = space(10);
        assert_eq!(db.increment(&s, "n", 5).await.expect("new"), 5);
        assert_eq!(db.increment(&s, "n", 2).await.expect("again"), 7);
        assert_eq!(
            db.get(&s, "n").await.expect("get").as_deref(),
            Some(&b"7"[..])
        );
        db.set(&s, "text", b"hello".to_vec()).await.expect("set");
        let error = db
            .increment(&s, "text", 1)
            .await
            .expect_err("not a counter");
        assert!(error.to_string().contains("not a counter"), "{error}");
        db.set(&s, "big", u64::MAX.to_string().into_bytes())
            .await
            .expect("set");
        let error = db.increment(&s, "big", 1).await.expect_err("overflow");
        assert!(error.to_string().contains("overflow"), "{error}");
        db.delete(&s, "n").await.expect("delete");
        db.delete(&s, "n").await.expect("delete of a missing key");
        assert!(!db.exists(&s, "n").await.expect("exists"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("kv.redb"))
                .expect("the file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn keys_are_listed_in_pages_with_a_cursor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Embedded::new(&dir.path().join("kv.redb"), None);
        let s = space(10_000);
        assert_eq!(db.list(&s, None).await.expect("empty"), (Vec::new(), None));
        let total = PAGE + 5;
        for i in 0..total {
            db.set(&s, &format!("k{i:05}"), Vec::new())
                .await
                .expect("set");
        }
        let (first, cursor) = db.list(&s, None).await.expect("first page");
        assert_eq!((first.len(), cursor), (PAGE, Some(PAGE as u64)));
        let (rest, cursor) = db.list(&s, cursor).await.expect("second page");
        assert_eq!((rest.len(), cursor), (5, None));
        assert_eq!(rest[4], format!("k{:05}", total - 1));
    }
}
