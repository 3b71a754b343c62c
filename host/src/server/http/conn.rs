//! Connections under hostile clients: caps on open connections (overall and per client
//! address), the timeouts of one connection (TLS handshake, request header, idle), and
//! warnings that cannot flood the log.
//!
//! A connection over a cap is closed right after `accept`, before anything is read from it, so
//! a client holding many connections open costs warden one descriptor per connection it is
//! allowed, and the others keep being served. A connection's clock runs while no request is in
//! progress on it: it is closed when it has been idle for `idle_timeout` (before its first
//! request, or between requests), or when a request's header has been arriving for
//! `header_timeout` without being complete. A request in progress (a tool call, a session's
//! event stream) is never cut by these timers.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::manifest::Http;

/// Descriptors kept for everything but connections (plugins' files and sockets, the audit log,
/// the compile cache, the runtime) when `max_connections` is fitted to the descriptor limit.
const RESERVED_DESCRIPTORS: u64 = 64;

/// The caps in force: `[http] max_connections` and `max_connections_per_client`, or their
/// defaults fitted to `descriptors` (the soft limit on open files, when known).
pub fn caps(http: &Http, descriptors: Option<u64>) -> (usize, usize) {
    let max = http.max_connections.unwrap_or_else(|| {
        let fits = descriptors.map_or(u64::MAX, |limit| {
            limit.saturating_sub(RESERVED_DESCRIPTORS).max(2)
        });
        u32::try_from(fits.min(u64::from(Http::DEFAULT_MAX_CONNECTIONS)))
            .unwrap_or(Http::DEFAULT_MAX_CONNECTIONS)
    });
    let per_client = http
        .max_connections_per_client
        .unwrap_or_else(|| Http::DEFAULT_MAX_CONNECTIONS_PER_CLIENT.min(max / 2).max(1));
    let size = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
    (size(max), size(per_client))
}

/// The soft limit on open file descriptors of this process, where it can be read.
pub fn descriptor_limit() -> Option<u64> {
    // /proc/self/limits: `Max open files    1024    4096    files`.
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    soft.parse().ok()
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections` connections are open.
    Full,
    /// `max_connections_per_client` connections are open from this client's address.
    Client,
}

/// The open connections, overall and per client address.
pub struct Connections {
    max: usize,
    per_client: usize,
    open: Mutex<Open>,
    closed: Notify,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

impl Connections {
    /// At most `max` connections, and `per_client` from one client address.
    pub fn new(max: usize, per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            per_client,
            open: Mutex::new(Open::default()),
            closed: Notify::new(),
        })
    }

    /// Counts a new connection from `peer` until the returned slot is dropped, or refuses it.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refusal> {
        let client = client_key(peer);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.max {
            return Err(Refusal::Full);
        }
        let from_client = open.by_client.entry(client).or_insert(0);
        if *from_client >= self.per_client {
            return Err(Refusal::Client);
        }
        *from_client += 1;
        open.total += 1;
        Ok(Slot {
            connections: self.clone(),
            client,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).total
    }

    /// Waits until no connection is open.
    pub async fn closed(&self) {
        loop {
            let notified = self.closed.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// The key connections are counted under: the address, with an IPv4-mapped IPv6 address as
/// IPv4, and an IPv6 address as its /64 (one host usually holds a whole /64).
fn client_key(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(ip) => {
            let bits = u128::from(ip) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// One open connection, counted until dropped.
pub struct Slot {
    connections: Arc<Connections>,
    client: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_client.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_client.remove(&self.client);
            }
        }
        if open.total == 0 {
            self.connections.closed.notify_waiters();
        }
    }
}

/// What one connection is doing, for its timers.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// No request in progress and no byte of the next one read, since then.
    Idle(Instant),
    /// The first bytes of a request arrived then; its header is not complete.
    Header(Instant),
    /// This many requests are in progress (their responses not yet sent).
    Busy(usize),
}

/// Why a connection's timer closed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// No request for `idle_timeout`.
    Idle,
    /// A request's header did not arrive within `header_timeout`.
    Header,
}

/// One connection's activity: updated by its IO (bytes read) and its service (requests begun
/// and ended), read by the task that drives the connection.
pub struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    /// A connection opened now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            phase: Mutex::new(Phase::Idle(Instant::now())),
            changed: Notify::new(),
        })
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes were read from the client.
    fn read(&self) {
        let mut phase = self.phase();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Header(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// A request's header is complete: it is in progress until the returned guard is dropped
    /// (when its response has been sent, or abandoned).
    pub fn begin(self: &Arc<Self>) -> InProgress {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        };
        drop(phase);
        self.changed.notify_one();
        InProgress(self.clone())
    }

    /// When the connection's timer runs out and why, or `None` while a request is in progress.
    pub fn deadline(&self, idle: Duration, header: Duration) -> Option<(Instant, Expiry)> {
        match *self.phase() {
            Phase::Idle(since) => Some((since + idle, Expiry::Idle)),
            Phase::Header(since) => Some((since + header, Expiry::Header)),
            Phase::Busy(_) => None,
        }
    }

    /// Waits until the activity changes (a request begins or ends, a header starts arriving).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// One request in progress on a connection.
pub struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        let mut phase = self.0.phase();
        *phase = match *phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        };
        drop(phase);
        self.0.changed.notify_one();
    }
}

/// A connection's IO that reports reads to its [`Activity`].
pub struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    /// `inner`, reporting to `activity`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A warning that is logged at most once per period; the ones held back in between are
/// counted and reported with the next one.
pub struct Throttle {
    period: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    /// At most one warning per `period`.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(held back since the last one)` if a warning may be logged now; `None` (and the
    /// warning is counted) otherwise.
    pub fn allow(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < self.period => {
                state.1 += 1;
                None
            }
            _ => {
                let held_back = std::mem::take(&mut state.1);
                state.0 = Some(now);
                Some(held_back)
            }
        }
    }

    /// Log `message` about a connection from `peer`, unless this warning was logged within
    /// the period; then it is only counted.
    pub fn warn(&self, peer: IpAddr, message: &str) {
        if let Some(held_back) = self.allow() {
            tracing::warn!(%peer, similar_warnings_held_back = held_back, "{message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_overall_and_per_client() {
        let connections = Connections::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let first = connections.admit(a).expect("first");
        let _second = connections.admit(a).expect("second");
        assert_eq!(connections.admit(a).err(), Some(Refusal::Client));
        // The same client as an IPv4-mapped IPv6 address.
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(connections.admit(mapped).err(), Some(Refusal::Client));
        let _third = connections.admit(b).expect("another client");
        assert_eq!(connections.admit(b).err(), Some(Refusal::Full));
        drop(first);
        assert_eq!(connections.open(), 2);
        assert!(connections.admit(a).is_ok());
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let connections = Connections::new(10, 1);
        let one: IpAddr = "2001:db8::1".parse().expect("ip");
        let same: IpAddr = "2001:db8::ffff:2".parse().expect("ip");
        let other: IpAddr = "2001:db8:0:1::1".parse().expect("ip");
        let _slot = connections.admit(one).expect("first");
        assert_eq!(connections.admit(same).err(), Some(Refusal::Client));
        assert!(connections.admit(other).is_ok());
    }

    #[test]
    fn default_caps_fit_the_descriptor_limit() {
        let http = Http::default();
        assert_eq!(caps(&http, None), (1024, 32));
        assert_eq!(caps(&http, Some(1 << 20)), (1024, 32));
        assert_eq!(caps(&http, Some(128)), (64, 32));
        assert_eq!(caps(&http, Some(70)), (6, 3));
        let set = Http {
            max_connections: Some(5000),
            max_connections_per_client: Some(7),
            ..Http::default()
        };
        assert_eq!(caps(&set, Some(128)), (5000, 7));
    }

    #[test]
    fn the_throttle_counts_what_it_holds_back() {
        let throttle = Throttle::new(Duration::from_millis(200));
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.allow(), None);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(throttle.allow(), Some(2));
    }
}
