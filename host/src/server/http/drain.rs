//! In-flight MCP requests, counted until their response has been sent, so a graceful shutdown
//! can wait for them.
//!
//! A request counts from the moment it passes authentication until its response body ends (or
//! the client goes away): a tool call answered over an SSE stream is in flight until the result
//! event has been written, not merely until the handler returned.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::Notify;

/// The server's in-flight requests and whether it is draining.
#[derive(Default)]
pub struct Drain {
    in_flight: AtomicUsize,
    draining: AtomicBool,
    idle: Notify,
}

impl Drain {
    /// Counts one request until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Whether shutdown has begun: new MCP requests are refused.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Begins shutdown, then waits until no request is in flight or `grace` has passed.
    /// Returns how many were still in flight (0 when all finished).
    pub async fn drain(&self, grace: Duration) -> usize {
        self.draining.store(true, Ordering::SeqCst);
        let idle = async {
            loop {
                let notified = self.idle.notified();
                if self.in_flight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(grace, idle).await;
        self.in_flight()
    }
}

/// One in-flight request; dropping it ends the request.
pub struct InFlight(Arc<Drain>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A response body that holds a guard (its request's [`InFlight`], by default) until it ends
/// or is dropped.
pub struct Tracked<G = InFlight> {
    inner: Body,
    guard: Option<G>,
}

impl<G> Tracked<G> {
    /// `inner`, keeping `guard` alive while it is sent.
    pub fn new(inner: Body, guard: G) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }
}

impl<G: Unpin> http_body::Body for Tracked<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_in_flight_requests() {
        let drain = Arc::new(Drain::default());
        let guard = drain.enter();
        assert_eq!(drain.in_flight(), 1);
        let release = tokio::spawn(async move {
            tokio::task::yield_now().await;
            drop(guard);
        });
        assert_eq!(drain.drain(Duration::from_secs(60)).await, 0);
        assert!(drain.is_draining());
        release.await.expect("task");
    }

    #[tokio::test]
    async fn drain_gives_up_after_the_grace_period() {
        let drain = Arc::new(Drain::default());
        let _guard = drain.enter();
        assert_eq!(drain.drain(Duration::from_millis(1)).await, 1);
    }
}
