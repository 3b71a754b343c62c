//! The refusal rate limit: how many refused requests (unknown tool, denied, rate-limited,
//! invalid arguments, failed authentication) the audit log records per principal or per client
//! address, so a client cannot flood the log at line rate. Calls that ran are always recorded.
//!
//! Each key (`principal NAME`, or `address IP` for requests refused before authentication)
//! has a token bucket. A refusal over it is not recorded but counted; the count goes into a
//! `dropped` summary record when that key's refusals are recorded again, or after
//! [`SUMMARY_EVERY`] of dropping, so a steady flood costs one record a minute.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::manifest::Rate;

/// How long refusals are dropped before a summary is written anyway.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Keys tracked at most; beyond it, idle keys are forgotten, and then new keys share one
/// bucket.
const MAX_KEYS: usize = 10_000;

/// The key that new keys share when [`MAX_KEYS`] are busy.
const OVERFLOW_KEY: &str = "(many clients)";

/// Refusals that were not recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// Whose: `principal NAME` or `address IP`.
    pub key: String,
    /// The transport they came by (`stdio`, `http`, `cli`).
    pub transport: &'static str,
    pub count: u64,
    /// When the first and the last were refused.
    pub since: SystemTime,
    pub until: SystemTime,
}

/// What to do with one refusal.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Record it, after the summary of the ones dropped before it, if any.
    Record(Option<Dropped>),
    /// Do not record it; write this summary (the key has been dropping refusals for
    /// [`SUMMARY_EVERY`]).
    Summarize(Dropped),
    /// Do not record it.
    Drop,
}

struct Bucket {
    transport: &'static str,
    tokens: f64,
    updated: Instant,
    dropped: u64,
    since: SystemTime,
    until: SystemTime,
    /// When the current run of drops began (for the periodic summary).
    dropping: Instant,
}

/// Token buckets of refusals, one per key.
pub struct RefusalLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RefusalLimiter {
    /// Buckets refilling at `rate.per_minute`, holding at most `rate.burst`.
    pub fn new(rate: Rate) -> Self {
        Self {
            per_second: f64::from(rate.per_minute) / 60.0,
            burst: f64::from(rate.burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a refusal from `key`, arrived by `transport`, is recorded.
    pub fn check(&self, key: &str, transport: &'static str) -> Verdict {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= MAX_KEYS {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, bucket| {
                bucket.dropped > 0
                    || bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * per_second
                        < burst
            });
        }
        let key = if buckets.contains_key(key) || buckets.len() < MAX_KEYS {
            key
        } else {
            OVERFLOW_KEY
        };
        let bucket = buckets.entry(key.to_owned()).or_insert_with(|| Bucket {
            transport,
            tokens: self.burst,
            updated: now,
            dropped: 0,
            since: SystemTime::UNIX_EPOCH,
            until: SystemTime::UNIX_EPOCH,
            dropping: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = now;
        let take = |bucket: &mut Bucket| {
            (bucket.dropped > 0).then(|| Dropped {
                key: key.to_owned(),
                transport: bucket.transport,
                count: std::mem::take(&mut bucket.dropped),
                since: bucket.since,
                until: bucket.until,
            })
        };
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Record(take(bucket));
        }
        let wall = SystemTime::now();
        if bucket.dropped == 0 {
            bucket.since = wall;
            bucket.dropping = now;
        }
        bucket.dropped += 1;
        bucket.until = wall;
        if now.duration_since(bucket.dropping) >= SUMMARY_EVERY {
            bucket.dropping = now;
            if let Some(dropped) = take(bucket) {
                return Verdict::Summarize(dropped);
            }
        }
        Verdict::Drop
    }

    /// The summaries of every key still dropping, taken: for shutdown.
    pub fn drain(&self) -> Vec<Dropped> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets
            .iter_mut()
            .filter(|(_, bucket)| bucket.dropped > 0)
            .map(|(key, bucket)| Dropped {
                key: key.clone(),
                transport: bucket.transport,
                count: std::mem::take(&mut bucket.dropped),
                since: bucket.since,
                until: bucket.until,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_recorded_then_refusals_are_counted_and_summarized_on_resume() {
        let limiter = RefusalLimiter::new(Rate {
            per_minute: 600, // one every 100 ms
            burst: 3,
        });
        for _ in 0..3 {
            assert_eq!(limiter.check("principal a", "stdio"), Verdict::Record(None));
        }
        assert_eq!(limiter.check("principal a", "stdio"), Verdict::Drop);
        assert_eq!(limiter.check("principal a", "stdio"), Verdict::Drop);
        // Other keys have their own bucket.
        assert_eq!(
            limiter.check("address 10.0.0.1", "http"),
            Verdict::Record(None)
        );
        std::thread::sleep(Duration::from_millis(250));
        match limiter.check("principal a", "stdio") {
            Verdict::Record(Some(summary)) => {
                assert_eq!(summary.key, "principal a");
                assert_eq!(summary.count, 2);
                assert!(summary.since <= summary.until);
            }
            other => panic!("expected a summary, got {other:?}"),
        }
        assert!(limiter.drain().is_empty());
    }

    #[test]
    fn keys_beyond_the_cap_share_one_bucket() {
        let limiter = RefusalLimiter::new(Rate {
            per_minute: 1,
            burst: 1,
        });
        for n in 0..MAX_KEYS {
            assert!(matches!(
                limiter.check(&format!("address {n}"), "http"),
                Verdict::Record(_)
            ));
        }
        // Every bucket is empty (so none can be forgotten): a new key shares the overflow one.
        assert_eq!(
            limiter.check("address new-1", "http"),
            Verdict::Record(None)
        );
        assert_eq!(limiter.check("address new-2", "http"), Verdict::Drop);
        let drained = limiter.drain();
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].key, OVERFLOW_KEY);
        assert!(limiter.buckets.lock().expect("lock").len() <= MAX_KEYS + 1);
    }
}
