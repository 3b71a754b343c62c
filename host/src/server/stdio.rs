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

use std::sync::Arc;

use rmcp::model::{ClientRequest, ErrorData, JsonRpcMessage, JsonRpcRequest, RequestId};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::{StdioReader, StdioWriter};
use rmcp::{RoleServer, ServiceExt};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

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
    let service = WardenServer::new(live, Arc::new(info), principal)
        .serve(StdioTransport::new(read, write))
        .await
        .map_err(std::io::Error::other)?;
    service.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
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
        }
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
                Ok(false) => return None,
                Err(error) => {
                    tracing::error!(%error, "cannot read stdin");
                    return None;
                }
            }
            if self.line.is_empty() {
                continue; // an oversized line: its error is pending
            }
            let parsed = parse(&self.line);
            self.line.clear();
            match parsed {
                Parsed::Message(message) => return Some(*message),
                Parsed::Blank => {}
                Parsed::Answer(error, id) => self.pending = Some((error, id)),
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.write.out.lock().await.shutdown().await
    }
}

/// What one line holds.
enum Parsed {
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
        let call = JsonRpcMessage::Request(JsonRpcRequest::new(
            id,
            ClientRequest::CallToolRequest(call),
        ));
        return Parsed::Message(Box::new(call));
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
