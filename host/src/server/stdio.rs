//! MCP over stdio: the agent launches warden and speaks JSON-RPC on its stdin and stdout.
//! Nothing else may write to stdout: logs go to stderr and plugin output to the log.
//!
//! Incoming lines are read by [`StdioTransport`] rather than rmcp's own stdio transport,
//! which drops input that is not JSON without a word. JSON-RPC 2.0 says a server answers it
//! with a parse error (-32700), and an unreadable request with an invalid-request error
//! (-32600, echoing its `id` when there is one): a client with a bug then learns why it gets
//! no answer. Notifications (no `id`) that do not parse are dropped, as the protocol wants.
//! Responses go out through [`Outbox`]: when several calls end together, their responses
//! leave in one `write`.
//!
//! A plain `tools/call`, of the session `initialize` opened or a stateless 2026-07-28 one, is
//! served by the transport itself ([`Direct`]) instead of rmcp's serve loop, which would hand
//! it to a task through a channel and send its response back through another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolResponse, ClientNotification, ClientRequest, ErrorData,
    JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, ProtocolVersion, RequestId,
    RequestMetaObject, ServerResult,
};
use rmcp::service::{RequestContext, RxJsonRpcMessage, ServerInitializeError, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::{StdioReader, StdioWriter};
use rmcp::{RoleServer, ServerHandler, ServiceExt};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{ServerInfo, WardenServer, tool_call};
use crate::gate::{LiveGate, Principal};

/// The longest line read: larger messages are answered with an error and skipped.
pub const MAX_LINE: usize = 16 << 20;

/// Serve the gate in force in `live` on this process's stdin and stdout until the client
/// disconnects. Every request runs as `principal`: stdio has no authentication, the caller
/// is the local user.
pub async fn serve_stdio(
    live: Arc<LiveGate>,
    info: ServerInfo,
    principal: Principal,
) -> Result<(), std::io::Error> {
    let (read, write): (StdioReader, StdioWriter) = rmcp::transport::io::stdio_pipes();
    let server = WardenServer::new(live, Arc::new(info), principal);
    let transport = StdioTransport::new(read, write).serving(server.clone());
    // On a worker thread, like the calls it spawns: rmcp reads until the first message it
    // serves itself inside `serve`, which is all the time when every request is a stateless
    // call the transport serves, and the thread that awaits this function is not a worker.
    let serving = tokio::spawn(async move {
        let service = match server.serve(transport).await {
            Ok(service) => service,
            // The input ended before a message rmcp serves itself: the client sent nothing,
            // or only calls the transport served (and answered before the end), and left.
            Err(ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
            Err(error) => return Err(std::io::Error::other(error)),
        };
        service.waiting().await.map_err(std::io::Error::other)?;
        Ok(())
    });
    serving.await.map_err(std::io::Error::other)?
}

/// How long calls in flight when the input ends may take to answer: rmcp's own allowance.
const DRAIN: Duration = Duration::from_secs(5);

/// The `tools/call` requests the transport serves itself, as rmcp's loop would serve them,
/// when the tool does not run as a task:
/// - those of a session rmcp opened with `initialize` at a version older than 2026-07-28,
///   whose `_meta` names no protocol version (so rmcp would check nothing before the
///   handler): with the same [`RequestContext`] (the session's peer, so progress, logs and
///   questions reach the client) and the same response ([`legacy_result`]);
/// - plainly stateless 2026-07-28 requests ([`tool_call::plainly_stateless`]) when no
///   `initialize` opened a session: as HTTP's direct path answers them
///   ([`WardenServer::call_direct`]), since they ask for nothing but their reply.
///
/// A cancelled request gets no response; calls in flight when the input ends answer first,
/// as rmcp's do.
struct Direct {
    server: WardenServer,
    /// Each call in flight, with its cancellation token for `notifications/cancelled`.
    cancels: Arc<Mutex<HashMap<RequestId, CancellationToken>>>,
    running: TaskTracker,
    /// Until when calls in flight may answer once the input has ended.
    draining: Option<tokio::time::Instant>,
}

/// How [`Direct`] serves a call.
enum Served {
    /// In the session `initialize` opened, with the context rmcp would give it.
    Session(RequestContext<RoleServer>),
    /// Stateless, with its `_meta`.
    Stateless(RequestMetaObject),
}

impl Direct {
    fn cancels(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, CancellationToken>> {
        self.cancels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serve `call` on a task of its own, answering through `outbox`; `Some` hands it back
    /// when it is rmcp's to serve.
    fn serve<W: AsyncWrite + Send + Unpin + 'static>(
        &self,
        id: RequestId,
        mut call: Box<CallToolRequest>,
        outbox: &Arc<Outbox<W>>,
    ) -> Option<(RequestId, Box<CallToolRequest>)> {
        let principal = self.server.session_principal();
        let (served, cancel) = match self.server.session_peer() {
            Some(peer) => {
                // Read per call, as rmcp does: another `initialize` would replace it.
                let legacy = peer
                    .peer_info()
                    .is_some_and(|info| info.protocol_version < ProtocolVersion::V_2026_07_28);
                let versioned = call
                    .extensions
                    .get::<RequestMetaObject>()
                    .is_some_and(|meta| meta.protocol_version().is_some());
                if !legacy || versioned || self.server.runs_as_task(&call.params.name, principal) {
                    return Some((id, call));
                }
                // As rmcp's loop does: `_meta` and the extensions move into the context.
                let mut context = RequestContext::new(id.clone(), peer.clone());
                context.meta = call.extensions.remove().unwrap_or_default();
                context.extensions = std::mem::take(&mut call.extensions);
                let cancel = context.ct.clone();
                (Served::Session(context), cancel)
            }
            None => {
                let plain = call
                    .extensions
                    .get::<RequestMetaObject>()
                    .is_some_and(tool_call::plainly_stateless);
                if !plain || !self.server.answers_directly(&call.params.name, principal) {
                    return Some((id, call));
                }
                let meta = call.extensions.remove().unwrap_or_default();
                (Served::Stateless(meta), CancellationToken::new())
            }
        };
        self.cancels().insert(id.clone(), cancel.clone());
        let (server, outbox, cancels) = (self.server.clone(), outbox.clone(), self.cancels.clone());
        let running = self.running.clone();
        self.running.spawn(async move {
            let answered = match served {
                // What rmcp's `handle_request` does for it: no version to check, not a task.
                Served::Session(context) => server
                    .call_tool(call.params, context)
                    .await
                    .and_then(legacy_result),
                // rmcp checks nothing more for it (`tool_call::plainly_stateless`); a
                // cancelled request has no answer, so stop at once.
                Served::Stateless(meta) => {
                    let principal = server.session_principal();
                    let call = server.call_direct(&call.params, &meta, &id, principal, None);
                    tokio::select! {
                        biased;
                        () = cancel.cancelled() => return,
                        response = call => response.map(ServerResult::from),
                    }
                }
            };
            let message = match answered {
                Ok(result) => JsonRpcMessage::response(result, id.clone()),
                Err(error) => JsonRpcMessage::error(error, Some(id.clone())),
            };
            let cancelled = cancels
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id)
                .is_none();
            if cancelled {
                tracing::debug!(%id, "dropping the response of a cancelled request");
                return;
            }
            tracing::debug!(%id, "tools/call answered without rmcp's serve loop");
            let write = outbox.send(&message);
            // With other calls running, those that end together leave in one write.
            if running.len() > 1 {
                tokio::task::yield_now().await;
            }
            if let Err(error) = write.await {
                tracing::error!(%error, "cannot write a response to stdout");
            }
        });
        None
    }

    /// `notifications/cancelled` for one of this transport's calls: stop it, answer nothing.
    fn cancel(&self, message: &RxJsonRpcMessage<RoleServer>) {
        if let JsonRpcMessage::Notification(JsonRpcNotification {
            notification: ClientNotification::CancelledNotification(cancelled),
            ..
        }) = message
            && let Some(id) = &cancelled.params.request_id
            && let Some(token) = self.cancels().remove(id)
        {
            token.cancel();
        }
    }

    /// Let the calls in flight answer, for at most [`DRAIN`] after the input ended.
    /// Cancellation safe: the deadline is kept across calls.
    async fn drain(&mut self) {
        let until = *self
            .draining
            .get_or_insert_with(|| tokio::time::Instant::now() + DRAIN);
        self.running.close();
        if tokio::time::timeout_at(until, self.running.wait())
            .await
            .is_err()
        {
            tracing::warn!("timed out waiting for calls in flight to answer");
        }
    }

    /// Stop the calls still in flight; they answer nothing.
    fn stop(&self) {
        for (_, token) in self.cancels().drain() {
            token.cancel();
        }
    }
}

/// Newline-delimited JSON-RPC over a reader and a writer, answering what cannot be read.
pub struct StdioTransport<R, W: AsyncWrite + Send + Unpin + 'static> {
    read: BufReader<R>,
    /// The line being read: kept across cancelled `receive` calls (rmcp polls `receive`
    /// in a `select!`), cleared once a whole line has been handled.
    line: Vec<u8>,
    /// Skipping the rest of an oversized line.
    discarding: bool,
    /// An error to answer before reading on.
    pending: Option<(ErrorData, Option<RequestId>)>,
    /// Where responses go.
    write: Arc<Outbox<W>>,
    /// The calls served here rather than by rmcp's loop, once [`StdioTransport::serving`].
    direct: Option<Direct>,
}

/// The writer of responses. rmcp hands each response to [`Transport::send`] in turn and runs
/// the returned future as a task of its own. The response is serialized at once, in rmcp's
/// order, into `queued`; the first task to get the writer writes everything queued by then.
/// So when several calls end together, their responses leave in one `write`.
pub struct Outbox<W> {
    queued: std::sync::Mutex<Vec<u8>>,
    out: tokio::sync::Mutex<W>,
}

impl<W: AsyncWrite + Send + Unpin + 'static> Outbox<W> {
    /// Queue `message` as one line; the future writes the queue unless another did.
    fn send(
        self: &Arc<Self>,
        message: &TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), std::io::Error>> + Send + 'static + use<W> {
        let queued = {
            let mut queue = self.queued.lock().unwrap_or_else(|e| e.into_inner());
            let start = queue.len();
            match serde_json::to_writer(&mut *queue, message) {
                Ok(()) => {
                    queue.push(b'\n');
                    Ok(())
                }
                Err(error) => {
                    queue.truncate(start);
                    Err(std::io::Error::other(error))
                }
            }
        };
        let outbox = self.clone();
        async move {
            queued?;
            let mut out = outbox.out.lock().await;
            let batch =
                std::mem::take(&mut *outbox.queued.lock().unwrap_or_else(|e| e.into_inner()));
            if batch.is_empty() {
                return Ok(()); // written with an earlier one
            }
            out.write_all(&batch).await?;
            out.flush().await
        }
    }
}

impl<R, W> StdioTransport<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    /// A transport reading requests from `read` and writing responses to `write`.
    pub fn new(read: R, write: W) -> Self {
        Self {
            read: BufReader::new(read),
            line: Vec::new(),
            discarding: false,
            pending: None,
            write: Arc::new(Outbox {
                queued: std::sync::Mutex::default(),
                out: tokio::sync::Mutex::new(write),
            }),
            direct: None,
        }
    }

    /// Serve plain `tools/call` requests with `server` here ([`Direct`]).
    pub fn serving(mut self, server: WardenServer) -> Self {
        self.direct = Some(Direct {
            server,
            cancels: Arc::default(),
            running: TaskTracker::new(),
            draining: None,
        });
        self
    }

    /// Reads until `self.line` holds a whole line (true), or the input ends (false). An
    /// oversized line leaves `self.line` empty and queues an error. Cancellation safe: bytes
    /// are moved into `self.line` and consumed with no await in between.
    async fn read_line(&mut self) -> std::io::Result<bool> {
        loop {
            let available = self.read.fill_buf().await?;
            if available.is_empty() {
                return Ok(false);
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let take = newline.map_or(available.len(), |at| at + 1);
            if self.discarding {
                self.discarding = newline.is_none();
            } else if self.line.len() + take > MAX_LINE {
                self.line.clear();
                self.discarding = newline.is_none();
                self.pending = Some((
                    ErrorData::invalid_request(
                        format!("message too large: the limit is {MAX_LINE} bytes a line"),
                        None,
                    ),
                    None,
                ));
            } else {
                self.line.extend_from_slice(&available[..take]);
            }
            self.read.consume(take);
            if (newline.is_some() && !self.line.is_empty()) || self.pending.is_some() {
                return Ok(true);
            }
        }
    }
}

impl<R, W> Transport<RoleServer> for StdioTransport<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.write.send(&item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            if let Some((error, id)) = self.pending.take()
                && self
                    .write
                    .send(&TxJsonRpcMessage::<RoleServer>::error(error, id))
                    .await
                    .is_err()
            {
                return None;
            }
            match self.read_line().await {
                Ok(true) => {}
                Ok(false) => return self.end().await,
                Err(error) => {
                    tracing::error!(%error, "cannot read stdin");
                    return self.end().await;
                }
            }
            if self.line.is_empty() {
                continue; // an oversized line: its error is pending
            }
            let parsed = parse(&self.line);
            self.line.clear();
            match parsed {
                Parsed::Call(id, call) => {
                    let handed_back = match &self.direct {
                        Some(direct) => direct.serve(id, call, &self.write),
                        None => Some((id, call)),
                    };
                    if let Some((id, call)) = handed_back {
                        let request = ClientRequest::CallToolRequest(*call);
                        return Some(JsonRpcMessage::Request(JsonRpcRequest::new(id, request)));
                    }
                }
                Parsed::Message(message) => {
                    if let Some(direct) = &self.direct {
                        direct.cancel(&message);
                    }
                    return Some(*message);
                }
                Parsed::Blank => {}
                Parsed::Answer(error, id) => self.pending = Some((error, id)),
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        if let Some(direct) = &self.direct {
            direct.stop();
        }
        self.write.out.lock().await.shutdown().await
    }
}

/// `response` as rmcp's `handle_request` hands it to a session older than 2026-07-28: an
/// answer that needs the client's input is an error there, and a result leaves without
/// `resultType`.
fn legacy_result(response: CallToolResponse) -> Result<ServerResult, ErrorData> {
    let mut result = ServerResult::from(response);
    if matches!(result, ServerResult::InputRequiredResult(_)) {
        return Err(ErrorData::invalid_request(
            "InputRequiredResult requires negotiated protocol version 2026-07-28 or newer",
            None,
        ));
    }
    result.strip_result_type_for_legacy_peer();
    Ok(result)
}

impl<R, W: AsyncWrite + Send + Unpin + 'static> StdioTransport<R, W> {
    /// The input ended: the calls served here answer first (rmcp then does the same for
    /// its own).
    async fn end(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        if let Some(direct) = &mut self.direct {
            direct.drain().await;
        }
        None
    }
}

/// What one line holds.
enum Parsed {
    /// A plain `tools/call` ([`tool_call::read`]).
    Call(RequestId, Box<CallToolRequest>),
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    /// An empty line, or a notification warden cannot read (no answer is due).
    Blank,
    /// Something to answer with this error.
    Answer(ErrorData, Option<RequestId>),
}

fn parse(line: &[u8]) -> Parsed {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Parsed::Blank;
    }
    if let Some((id, call)) = tool_call::read(line) {
        return Parsed::Call(id, Box::new(call));
    }
    let error = match serde_json::from_slice(line) {
        Ok(message) => return Parsed::Message(Box::new(message)),
        Err(error) => error,
    };
    match error.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            tracing::debug!(%error, "answering a line that is not JSON with a parse error");
            Parsed::Answer(
                ErrorData::parse_error(format!("parse error: not JSON ({error})"), None),
                None,
            )
        }
        serde_json::error::Category::Data | serde_json::error::Category::Io => {
            let value: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
            match value.get("id") {
                // A notification warden does not know: nothing to answer.
                None if value.get("method").is_some() => Parsed::Blank,
                id => {
                    let id = id.and_then(|id| serde_json::from_value(id.clone()).ok());
                    Parsed::Answer(
                        ErrorData::invalid_request(
                            format!(
                                "invalid request: not a JSON-RPC 2.0 message MCP knows ({error})"
                            ),
                            None,
                        ),
                        id,
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll};

    use rmcp::model::{JsonRpcMessage, ServerResult};

    use super::*;

    /// A writer that keeps each `write` it is given.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl AsyncWrite for Writes {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.0.lock().expect("writes").push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn response(id: i64) -> TxJsonRpcMessage<RoleServer> {
        JsonRpcMessage::response(ServerResult::empty(()), RequestId::Number(id))
    }

    /// Responses queued before any is written leave in one write, whole and in the order
    /// rmcp handed them over; one queued alone leaves at once.
    #[tokio::test]
    async fn responses_that_end_together_leave_in_one_write_in_order() {
        let writes = Writes::default();
        let outbox = Arc::new(Outbox {
            queued: std::sync::Mutex::default(),
            out: tokio::sync::Mutex::new(writes.clone()),
        });
        let sends: Vec<_> = (1..=3).map(|id| outbox.send(&response(id))).collect();
        for send in sends.into_iter().rev() {
            send.await.expect("sent");
        }
        outbox.send(&response(4)).await.expect("sent");
        let writes = writes.0.lock().expect("writes").clone();
        assert_eq!(writes.len(), 2, "{writes:?}");
        let lines: Vec<serde_json::Value> = writes
            .concat()
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).expect("a whole JSON line"))
            .collect();
        let ids: Vec<i64> = lines.iter().filter_map(|l| l["id"].as_i64()).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
    }
}
