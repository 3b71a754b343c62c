//! Resumable event streams for 2025-11-25 sessions (`Last-Event-ID`, SEP-1699).
//!
//! rmcp's [`LocalSessionManager`] serves the sessions; [`Resumable`] wraps it so that the
//! event stream of each POST request survives its connection. Every event of a request's stream
//! passes through a task of warden's (the *pump*) that numbers it, keeps it in the stream's replay
//! buffer and hands it to the connection attached to the stream, if any. A client that lost the
//! connection (or whose connection the server closed: `[http] sse_close_after`) reconnects with
//! `GET` and `Last-Event-ID`, and gets every buffered event after that id, then the rest as it
//! comes; once the request has been answered, the replay ends the stream. rmcp alone drops a
//! request's events when its response is sent, so a result that came while the client was away
//! would be lost.
//!
//! Event ids are `r{stream}/{n}`: the stream's number in its session (never reused) and the
//! event's place in the stream. They are looked up in the session named by the request's
//! `Mcp-Session-Id` only (a session serves only the principal that opened it:
//! [`super::sessions`]), so an id copied from another session names at most a stream of the
//! requester's own session: nothing of the other session's is ever sent. An id that names no
//! stream gets an empty stream. Ids of the session's standalone `GET` stream (plain numbers)
//! go to rmcp, which keeps that stream's last 16 events.
//!
//! Bounds, per request stream: the last [`REPLAY_EVENTS`] events and at most [`REPLAY_BYTES`]
//! bytes of them (the newest event is always kept, so a large result survives); a stream is
//! kept [`REPLAY_TTL`] after its response, and at most [`REPLAY_DONE`] answered streams per
//! session. The sessions themselves are capped by `[http] max_sessions`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::session::{
    ServerSseMessage, SessionId, SessionManager,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Events kept per request stream for replay.
pub const REPLAY_EVENTS: usize = 256;
/// Bytes of events (their JSON) kept per request stream for replay; the newest event is kept
/// whatever its size.
pub const REPLAY_BYTES: usize = 1 << 20;
/// How long an answered request's stream stays resumable.
pub const REPLAY_TTL: Duration = Duration::from_secs(60);
/// Answered request streams kept per session (the oldest go first).
pub const REPLAY_DONE: usize = 16;

/// How many events wait for a slow connection before the pump waits for it.
const CHANNEL: usize = 16;
/// How often streams of ended sessions and expired streams are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// rmcp's session manager, with request streams that can be resumed.
pub struct Resumable {
    inner: Arc<LocalSessionManager>,
    state: Arc<Mutex<State>>,
    /// `[http] sse_close_after`: every event stream connection is closed this long after it
    /// opened (the client resumes it with `Last-Event-ID`).
    close_after: Option<Duration>,
}

#[derive(Default)]
struct State {
    sessions: HashMap<SessionId, Streams>,
    swept: Option<Instant>,
}

/// A session's request streams, numbered from 0 in the session (a number says nothing of
/// other sessions, and is never reused).
#[derive(Default)]
struct Streams {
    streams: HashMap<u64, Replay>,
    next: u64,
}

impl Streams {
    fn get_mut(&mut self, stream: &u64) -> Option<&mut Replay> {
        self.streams.get_mut(stream)
    }
}

/// One request's stream: its buffered events and the connection attached to it.
struct Replay {
    /// `(number, size, event)`, oldest first.
    events: VecDeque<(u64, usize, ServerSseMessage)>,
    bytes: usize,
    next: u64,
    /// Where new events go: the connection attached now, if any.
    sink: Option<mpsc::Sender<ServerSseMessage>>,
    /// Counts the connections attached, so a timer closes only the one it was set for.
    connection: u64,
    /// When the request was answered (its stream ended).
    done: Option<Instant>,
}

impl Replay {
    fn new() -> Self {
        Self {
            events: VecDeque::new(),
            bytes: 0,
            next: 0,
            sink: None,
            connection: 0,
            done: None,
        }
    }

    /// Keeps `event` (numbered `n`), forgetting the oldest beyond the bounds.
    fn keep(&mut self, n: u64, size: usize, event: ServerSseMessage) {
        self.events.push_back((n, size, event));
        self.bytes += size;
        while self.events.len() > REPLAY_EVENTS
            || (self.bytes > REPLAY_BYTES && self.events.len() > 1)
        {
            if let Some((_, size, _)) = self.events.pop_front() {
                self.bytes -= size;
            }
        }
    }

    /// Attaches a new connection, with the buffered events after `after` already in it;
    /// the previous connection, if any, ends.
    fn attach(&mut self, after: Option<u64>) -> (mpsc::Receiver<ServerSseMessage>, u64) {
        let missed: Vec<ServerSseMessage> = self
            .events
            .iter()
            .filter(|(n, _, _)| after.is_none_or(|after| *n > after))
            .map(|(_, _, event)| event.clone())
            .collect();
        let (tx, rx) = mpsc::channel(missed.len() + CHANNEL);
        for event in missed {
            // Cannot fail: the channel has room for all of them and its receiver is here.
            let _ = tx.try_send(event);
        }
        self.connection += 1;
        // An answered request's stream ends after the replay.
        self.sink = self.done.is_none().then_some(tx);
        (rx, self.connection)
    }
}

fn event_id(stream: u64, n: u64) -> String {
    format!("r{stream}/{n}")
}

/// `r{stream}/{n}`, or `None` for an id that is not warden's.
fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (stream, n) = id.strip_prefix('r')?.split_once('/')?;
    Some((stream.parse().ok()?, n.parse().ok()?))
}

/// The size of an event on the wire, roughly: its message's JSON.
fn size(event: &ServerSseMessage) -> usize {
    let message = event
        .message
        .as_ref()
        .map_or(0, |m| serde_json::to_vec(&**m).map_or(0, |json| json.len()));
    message + 64
}

/// A resumed stream that names nothing resumable here.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error(transparent)]
    Session(#[from] LocalSessionManagerError),
    #[error("no stream {0} in this session (ended more than a minute ago, or never its own)")]
    UnknownStream(String),
}

impl Resumable {
    /// Wraps `inner`; `close_after` is `[http] sse_close_after`.
    pub fn new(inner: Arc<LocalSessionManager>, close_after: Option<Duration>) -> Self {
        Self {
            inner,
            state: Arc::new(Mutex::new(State::default())),
            close_after,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Forgets the streams of sessions rmcp no longer holds, answered streams past
    /// [`REPLAY_TTL`], and the oldest answered streams beyond [`REPLAY_DONE`] per session.
    async fn sweep(&self) {
        let due = self
            .state()
            .swept
            .is_none_or(|at| at.elapsed() >= SWEEP_EVERY);
        if !due {
            return;
        }
        let live = self.inner.sessions.read().await;
        let mut state = self.state();
        state.swept = Some(Instant::now());
        state.sessions.retain(|id, _| live.contains_key(id));
        drop(live);
        for session in state.sessions.values_mut() {
            session
                .streams
                .retain(|_, replay| replay.done.is_none_or(|at| at.elapsed() < REPLAY_TTL));
            trim_done(&mut session.streams);
        }
    }

    /// Closes the connection numbered `connection` of `stream` after `sse_close_after`, if it is
    /// still attached and the request still unanswered.
    fn close_later(&self, session: &SessionId, stream: u64, connection: u64) {
        let Some(after) = self.close_after else {
            return;
        };
        let state = self.state.clone();
        let session = session.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let mut state = lock(&state);
            if let Some(replay) = state
                .sessions
                .get_mut(&session)
                .and_then(|streams| streams.get_mut(&stream))
                && replay.connection == connection
                && replay.sink.take().is_some()
            {
                tracing::debug!(stream, "closed an event stream after sse_close_after");
            }
        });
    }

    /// A standalone stream, cut after `sse_close_after` when set.
    fn cut<S>(&self, stream: S) -> impl Stream<Item = ServerSseMessage> + Send + Sync + 'static
    where
        S: Stream<Item = ServerSseMessage> + Send + Sync + 'static,
    {
        match self.close_after {
            Some(after) => stream
                .take_until(Box::pin(tokio::time::sleep(after)))
                .left_stream(),
            None => stream.right_stream(),
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// At most [`REPLAY_DONE`] answered streams in `streams`: the oldest go.
fn trim_done(streams: &mut HashMap<u64, Replay>) {
    let mut done: Vec<(Instant, u64)> = streams
        .iter()
        .filter_map(|(id, replay)| replay.done.map(|at| (at, *id)))
        .collect();
    if done.len() <= REPLAY_DONE {
        return;
    }
    done.sort_unstable();
    for (_, id) in &done[..done.len() - REPLAY_DONE] {
        streams.remove(id);
    }
}

/// Moves the events of rmcp's stream for request stream `stream` of `session` into its replay
/// buffer and on to the connection attached, until the request is answered.
async fn pump<S>(state: Arc<Mutex<State>>, session: SessionId, stream: u64, events: S)
where
    S: Stream<Item = ServerSseMessage> + Send + 'static,
{
    tokio::pin!(events);
    while let Some(mut event) = events.next().await {
        let sink = {
            let mut state = lock(&state);
            let Some(replay) = state
                .sessions
                .get_mut(&session)
                .and_then(|streams| streams.get_mut(&stream))
            else {
                // The session ended: nobody can resume it.
                return;
            };
            let n = replay.next;
            replay.next += 1;
            event.event_id = Some(event_id(stream, n));
            replay.keep(n, size(&event), event.clone());
            replay.sink.clone()
        };
        if let Some(sink) = sink
            && sink.send(event).await.is_err()
        {
            // The connection went away: keep buffering for a reconnection.
            let mut state = lock(&state);
            if let Some(replay) = state
                .sessions
                .get_mut(&session)
                .and_then(|streams| streams.get_mut(&stream))
                && replay.sink.as_ref().is_some_and(|s| s.same_channel(&sink))
            {
                replay.sink = None;
            }
        }
    }
    let mut state = lock(&state);
    if let Some(streams) = state.sessions.get_mut(&session) {
        if let Some(replay) = streams.get_mut(&stream) {
            replay.done = Some(Instant::now());
            replay.sink = None;
        }
        trim_done(&mut streams.streams);
    }
}

impl SessionManager for Resumable {
    type Error = ResumeError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        Ok(self.inner.create_session().await?)
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        Ok(self.inner.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.state().sessions.remove(id);
        Ok(self.inner.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.sweep().await;
        let events = self.inner.create_stream(id, message).await?;
        let (stream, rx, connection) = {
            let mut state = self.state();
            let streams = state.sessions.entry(id.clone()).or_default();
            let stream = streams.next;
            streams.next += 1;
            let mut replay = Replay::new();
            let (rx, connection) = replay.attach(None);
            streams.streams.insert(stream, replay);
            (stream, rx, connection)
        };
        tokio::spawn(pump(self.state.clone(), id.clone(), stream, events));
        self.close_later(id, stream, connection);
        Ok(ReceiverStream::new(rx))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let stream = self.inner.create_standalone_stream(id).await?;
        Ok(self.cut(stream))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let Some((stream, after)) = parse_event_id(&last_event_id) else {
            // The standalone stream's ids are rmcp's: plain numbers. Anything else (rmcp's own
            // request stream ids included: warden's pump holds those streams) names nothing.
            if last_event_id.is_empty() || !last_event_id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ResumeError::UnknownStream(last_event_id));
            }
            // rmcp replays from the event it was given, that one included; the client has it
            // (except `0`, which is also the id of the stream's priming event, not in rmcp's
            // buffer).
            let seen = (last_event_id != "0").then(|| last_event_id.clone());
            let events = self
                .inner
                .resume(id, last_event_id)
                .await?
                .filter(move |event| std::future::ready(seen.is_none() || event.event_id != seen));
            return Ok(self.cut(events).left_stream());
        };
        let (rx, connection) = {
            let mut state = self.state();
            let Some(replay) = state
                .sessions
                .get_mut(id)
                .and_then(|streams| streams.get_mut(&stream))
            else {
                return Err(ResumeError::UnknownStream(last_event_id));
            };
            replay.attach(Some(after))
        };
        self.close_later(id, stream, connection);
        Ok(ReceiverStream::new(rx).right_stream())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(text: &str) -> ServerSseMessage {
        ServerSseMessage::priming(text, Duration::from_secs(1))
    }

    #[test]
    fn event_ids_round_trip_and_others_are_not_ours() {
        assert_eq!(parse_event_id(&event_id(7, 42)), Some((7, 42)));
        assert_eq!(parse_event_id("3"), None, "the standalone stream's ids");
        assert_eq!(parse_event_id("0/3"), None, "rmcp's own request ids");
        assert_eq!(parse_event_id("r/3"), None);
        assert_eq!(parse_event_id("r1/x"), None);
    }

    #[test]
    fn the_buffer_keeps_the_newest_events_within_its_bounds() {
        let mut replay = Replay::new();
        for n in 0..(REPLAY_EVENTS as u64 + 10) {
            replay.keep(n, 10, event("x"));
        }
        assert_eq!(replay.events.len(), REPLAY_EVENTS);
        assert_eq!(replay.events.front().map(|e| e.0), Some(10));
        // Bytes: a big event pushes the others out but stays itself.
        replay.keep(10_000, REPLAY_BYTES * 2, event("big"));
        assert_eq!(replay.events.len(), 1);
        assert_eq!(replay.bytes, REPLAY_BYTES * 2);
        replay.keep(10_001, 10, event("small"));
        assert_eq!(
            replay.events.len(),
            1,
            "the big one goes when a newer one comes"
        );
        assert_eq!(replay.bytes, 10);
    }

    #[tokio::test]
    async fn attaching_replays_what_follows_the_last_event_id() {
        let mut replay = Replay::new();
        for n in 0..5 {
            replay.keep(n, 10, event("x"));
        }
        let (mut rx, first) = replay.attach(Some(2));
        assert_eq!(
            std::iter::from_fn(|| rx.try_recv().ok()).count(),
            2,
            "events 3 and 4"
        );
        assert!(replay.sink.is_some(), "unanswered: new events follow");
        replay.done = Some(Instant::now());
        let (mut rx, second) = replay.attach(None);
        assert_ne!(first, second);
        assert_eq!(std::iter::from_fn(|| rx.try_recv().ok()).count(), 5);
        assert!(
            replay.sink.is_none(),
            "answered: the stream ends after the replay"
        );
    }

    #[test]
    fn only_the_newest_answered_streams_are_kept() {
        let mut streams = HashMap::new();
        let start = Instant::now();
        for id in 0..(REPLAY_DONE as u64 + 3) {
            let mut replay = Replay::new();
            replay.done = Some(start + Duration::from_millis(id));
            streams.insert(id, replay);
        }
        streams.insert(1000, Replay::new());
        trim_done(&mut streams);
        assert_eq!(streams.len(), REPLAY_DONE + 1, "the unanswered one stays");
        assert!(!streams.contains_key(&0) && !streams.contains_key(&2));
        assert!(streams.contains_key(&3) && streams.contains_key(&1000));
    }
}
