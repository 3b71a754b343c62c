//! What a key-value backend does, and the quota rules every backend applies the same way.

use async_trait::async_trait;

use crate::manifest::KvGrant;

/// The longest key, in bytes. Keys are names, not data: a longer one is refused.
pub const MAX_KEY: usize = 1024;

/// Keys returned by one `list-keys` page.
pub const PAGE: usize = 1000;

/// One store as a backend sees it: where its keys live and what it may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Space {
    /// The backend's name for it, distinct for private and shared stores of the same name:
    /// `plugin/NAME` or `store/NAME`.
    pub id: String,
    /// The name plugins and operators know it by, for messages.
    pub name: String,
    /// What it may hold, as the plugin writing to it was granted.
    pub limits: Limits,
}

impl Space {
    /// The store `grant` gives plugin `plugin`.
    pub fn new(plugin: &str, grant: &KvGrant) -> Space {
        let (id, name) = match &grant.store {
            Some(store) => (format!("store/{store}"), store.clone()),
            None => (format!("plugin/{plugin}"), plugin.to_owned()),
        };
        Space {
            id,
            name,
            limits: Limits {
                quota: grant.quota,
                max_keys: grant.max_keys,
                max_value: grant.max_value,
            },
        }
    }
}

/// A store's limits ([`KvGrant`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of keys and values together.
    pub quota: u64,
    /// Keys.
    pub max_keys: u64,
    /// Bytes of one value.
    pub max_value: u64,
}

/// What a store holds: the per-store record each backend keeps beside its keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Bytes of keys and values together.
    pub bytes: u64,
    /// Keys.
    pub keys: u64,
}

impl Totals {
    /// The totals after setting `key` (holding `old` bytes of value, if set) to `new` bytes,
    /// or why the store may not hold them. A write that shrinks the store is always allowed,
    /// so an operator who lowers a quota leaves plugins able to clean up.
    pub fn after_set(
        self,
        space: &Space,
        key: &str,
        old: Option<u64>,
        new: u64,
    ) -> Result<Totals, KvError> {
        let key_len = key.len() as u64;
        let (bytes, keys) = match old {
            Some(old) => (self.bytes - (key_len + old).min(self.bytes), self.keys),
            None => (self.bytes, self.keys + 1),
        };
        let after = Totals {
            bytes: bytes + key_len + new,
            keys,
        };
        if old.is_none() && after.keys > space.limits.max_keys {
            return Err(KvError::Refused(format!(
                "store {:?} holds {} keys, its max_keys: delete some before adding more",
                space.name, self.keys
            )));
        }
        if after.bytes > space.limits.quota && after.bytes > self.bytes {
            return Err(KvError::Refused(format!(
                "quota exceeded: store {:?} would hold {} of its {}",
                space.name,
                human(after.bytes),
                human(space.limits.quota)
            )));
        }
        Ok(after)
    }

    /// The totals after deleting `key`, which held `old` bytes of value.
    pub fn after_delete(self, key: &str, old: u64) -> Totals {
        Totals {
            bytes: self.bytes.saturating_sub(key.len() as u64 + old),
            keys: self.keys.saturating_sub(1),
        }
    }
}

/// Refuses a key that is empty or longer than [`MAX_KEY`].
pub fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::Refused("a key must not be empty".to_owned()));
    }
    if key.len() > MAX_KEY {
        return Err(KvError::Refused(format!(
            "key of {} bytes is over the {MAX_KEY}-byte limit",
            key.len()
        )));
    }
    Ok(())
}

/// Refuses a value over the store's `max_value`.
pub fn check_value(space: &Space, value: &[u8]) -> Result<(), KvError> {
    let len = value.len() as u64;
    if len > space.limits.max_value {
        return Err(KvError::Refused(format!(
            "value of {} is over max_value {}",
            human(len),
            human(space.limits.max_value)
        )));
    }
    Ok(())
}

/// A counter's stored form: its value in decimal ASCII, as Redis's `INCRBY` keeps it.
pub fn parse_counter(value: Option<&[u8]>) -> Result<u64, KvError> {
    let Some(value) = value else {
        return Ok(0);
    };
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| {
            KvError::Refused(
                "the key holds a value that is not a counter (a decimal number), so it cannot be incremented"
                    .to_owned(),
            )
        })
}

/// `bytes` for people: `512 B`, `10 MiB`, `10.2 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, factor) in UNITS {
        if bytes >= factor {
            let whole = bytes / factor;
            let tenths = (bytes % factor) * 10 / factor;
            return if tenths == 0 && bytes.is_multiple_of(factor) {
                format!("{whole} {unit}")
            } else {
                format!("{whole}.{tenths} {unit}")
            };
        }
    }
    format!("{bytes} B")
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// A limit or a rule refused it; the message is for the plugin and names nothing of the
    /// host.
    #[error("{0}")]
    Refused(String),
    /// The backend failed (I/O, a lost connection); the message is for the operator's log
    /// only.
    #[error("{0}")]
    Backend(String),
}

impl KvError {
    /// A backend failure described by `what` and `error`.
    pub fn backend(what: &str, error: impl std::fmt::Display) -> KvError {
        KvError::Backend(format!("{what}: {error}"))
    }
}

/// A place where stores are kept. Every write checks and updates the store's [`Totals`] in
/// the same atomic step as the write itself, so concurrent calls (or warden processes sharing
/// one Redis) cannot overrun a quota together.
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The value of `key`.
    async fn get(&self, space: &Space, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Set `key` to `value` within the store's limits.
    async fn set(&self, space: &Space, key: &str, value: Vec<u8>) -> Result<(), KvError>;
    /// Remove `key`.
    async fn delete(&self, space: &Space, key: &str) -> Result<(), KvError>;
    /// Whether `key` is set.
    async fn exists(&self, space: &Space, key: &str) -> Result<bool, KvError>;
    /// A page of keys from `cursor`, and the cursor of the next page, if any.
    async fn list(
        &self,
        space: &Space,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), KvError>;
    /// Add `delta` to the counter at `key`; its new value.
    async fn increment(&self, space: &Space, key: &str, delta: u64) -> Result<u64, KvError>;
    /// The server stops: make durable what was written and is not yet.
    fn stop(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(quota: u64, max_keys: u64) -> Space {
        Space {
            id: "plugin/notes".into(),
            name: "notes".into(),
            limits: Limits {
                quota,
                max_keys,
                max_value: 100,
            },
        }
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(10 << 20), "10 MiB");
        assert_eq!(human((10 << 20) + (1 << 19) / 2 + 1000), "10.2 MiB");
        assert_eq!(human(2 << 20), "2 MiB");
    }

    #[test]
    fn totals_follow_sets_and_deletes() {
        let s = space(100, 2);
        let t = Totals::default().after_set(&s, "ab", None, 10).unwrap();
        assert_eq!(t, Totals { bytes: 12, keys: 1 });
        let t = t.after_set(&s, "ab", Some(10), 3).unwrap();
        assert_eq!(t, Totals { bytes: 5, keys: 1 });
        let t = t.after_set(&s, "c", None, 1).unwrap();
        assert_eq!(t, Totals { bytes: 7, keys: 2 });
        let full = t.after_set(&s, "d", None, 1).unwrap_err().to_string();
        assert_eq!(
            full,
            "store \"notes\" holds 2 keys, its max_keys: delete some before adding more"
        );
        let over = t.after_set(&s, "c", Some(1), 99).unwrap_err().to_string();
        assert!(over.starts_with("quota exceeded: store \"notes\" would hold 105 B of its 100 B"));
        assert_eq!(t.after_delete("ab", 3), Totals { bytes: 2, keys: 1 });
    }

    #[test]
    fn a_store_over_its_quota_may_still_shrink() {
        let s = space(10, 10);
        let t = Totals { bytes: 50, keys: 1 };
        assert!(t.after_set(&s, "k", Some(40), 20).is_ok());
        assert!(t.after_set(&s, "k", Some(40), 48).is_err());
    }

    #[test]
    fn counters_are_decimal() {
        assert_eq!(parse_counter(None).unwrap(), 0);
        assert_eq!(parse_counter(Some(b"42")).unwrap(), 42);
        assert!(parse_counter(Some(b"x")).is_err());
    }
}
