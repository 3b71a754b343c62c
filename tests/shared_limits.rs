//! The Lua scripts of the limits shared by replicas (`[limits] store`), against a real
//! `redis-server`: GCRA rates (burst, then refused with a wait; two buckets taken together or
//! not at all; keys that expire), concurrency leases (capped, given back, expiring), and a
//! store that cannot be reached (a bounded, fast failure). Two `SharedStore`s on one server
//! stand for two replicas. The end-to-end behaviour through `warden serve` behind a load
//! balancer is in tests/replicas.rs.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::redis::redis_port;
use warden::gate::SharedStore;
use warden::manifest::{LimitStore, Rate, SecretValue, StoreFailure};

/// A store on the test's redis-server, its keys under a prefix no other test uses.
fn store(prefix: &str) -> SharedStore {
    store_at(&format!("redis://127.0.0.1:{}/0", redis_port()), prefix)
}

fn store_at(url: &str, prefix: &str) -> SharedStore {
    SharedStore::new(&LimitStore {
        url: SecretValue::new(url.to_owned()),
        prefix: prefix.to_owned(),
        on_error: StoreFailure::Closed,
    })
    .expect("store")
}

/// A fresh prefix, so tests sharing the server do not share buckets.
fn prefix(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "test:{test}:{}:{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A raw connection to the test's server, to look at what the scripts left.
async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{}/0", redis_port()))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

async fn pttl(key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut raw().await)
        .await
        .expect("PTTL")
}

async fn get(key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut raw().await)
        .await
        .expect("GET")
}

/// One call a minute, `burst` at once.
fn slow(burst: u32) -> Rate {
    Rate {
        per_minute: 1,
        burst,
    }
}

#[tokio::test]
async fn a_bucket_allows_its_burst_across_replicas_then_refuses_with_a_wait() {
    let prefix = prefix("burst");
    let (a, b) = (store(&prefix), store(&prefix));
    let bucket = vec![("rate:alice".to_owned(), slow(3))];
    // Three calls, alternating replicas, pass; the fourth, on either, is refused.
    for (n, replica) in [&a, &b, &a].into_iter().enumerate() {
        assert_eq!(replica.take(&bucket).await.expect("take"), None, "call {n}");
    }
    for replica in [&a, &b] {
        let wait = replica
            .take(&bucket)
            .await
            .expect("take")
            .expect("over the burst: refused");
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "the next call is a whole interval away: {wait:?}"
        );
    }
    // Another principal's bucket is its own.
    let bob = vec![("rate:bob".to_owned(), slow(3))];
    assert_eq!(b.take(&bob).await.expect("take"), None);
    // The key expires when the bucket would be full again (3 calls at 1/min: 3 minutes).
    let ttl = pttl(&format!("{prefix}rate:alice")).await;
    assert!(ttl > 120_000 && ttl <= 180_000, "PTTL {ttl}");
}

#[tokio::test]
async fn two_buckets_are_taken_together_or_not_at_all() {
    let prefix = prefix("pair");
    let store = store(&prefix);
    let ceiling = ("ceiling:t".to_owned(), slow(100));
    let alice = vec![("rate:alice".to_owned(), slow(1)), ceiling.clone()];
    assert_eq!(store.take(&alice).await.expect("take"), None);
    let before = get(&format!("{prefix}ceiling:t"))
        .await
        .expect("ceiling set");
    // Alice's own bucket refuses: the ceiling is not charged for a call that did not run.
    assert!(store.take(&alice).await.expect("take").is_some());
    assert_eq!(
        get(&format!("{prefix}ceiling:t")).await.as_deref(),
        Some(before.as_str()),
        "a refused call took from the ceiling"
    );
    // A ceiling of 2 refuses the third principal whatever their own buckets say.
    let prefix = self::prefix("pair-ceiling");
    let store = self::store(&prefix);
    for (n, who) in ["ann", "bob", "cid"].into_iter().enumerate() {
        let buckets = vec![
            (format!("rate:{who}"), slow(5)),
            ("ceiling:t".to_owned(), slow(2)),
        ];
        let taken = store.take(&buckets).await.expect("take");
        assert_eq!(taken.is_none(), n < 2, "{who}: {taken:?}");
    }
    assert_eq!(
        get(&format!("{prefix}rate:cid")).await,
        None,
        "the refused principal's bucket was not charged"
    );
}

#[tokio::test]
async fn leases_cap_a_plugin_across_replicas_are_given_back_and_expire() {
    let prefix = prefix("leases");
    let (a, b) = (store(&prefix), store(&prefix));
    let long = Duration::from_secs(60);
    let first = a.lease("p", 2, long).await.expect("lease").expect("slot 1");
    let _second = b.lease("p", 2, long).await.expect("lease").expect("slot 2");
    assert_eq!(
        a.lease("p", 2, long).await.expect("lease"),
        None,
        "cap of 2"
    );
    assert_eq!(
        b.lease("p", 2, long).await.expect("lease"),
        None,
        "cap of 2"
    );
    // Another plugin has its own leases.
    assert!(a.lease("q", 1, long).await.expect("lease").is_some());
    // Given back on one replica, the slot is free on the other.
    a.release("p", &first).await.expect("release");
    let third = b.lease("p", 2, long).await.expect("lease");
    assert!(third.is_some(), "a released slot is free again");
    let ttl = pttl(&format!("{prefix}leases:p")).await;
    assert!(
        ttl > 0 && ttl <= 60_000,
        "the lease set expires: PTTL {ttl}"
    );

    // A lease whose replica died (never given back) frees itself when it expires.
    let short = Duration::from_millis(200);
    let _abandoned = a.lease("r", 1, short).await.expect("lease").expect("slot");
    assert_eq!(a.lease("r", 1, short).await.expect("lease"), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if b.lease("r", 1, long).await.expect("lease").is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the abandoned lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_unreachable_store_fails_within_a_bound_and_then_at_once() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let store = store_at(&format!("redis://127.0.0.1:{port}/0"), "down:");
    let bucket = vec![("rate:x".to_owned(), slow(1))];
    let started = Instant::now();
    let error = store.take(&bucket).await.expect_err("nothing listens");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        error.to_string().starts_with("shared limit store:"),
        "{error}"
    );
    assert!(store.lease("p", 1, Duration::from_secs(1)).await.is_err());
}
