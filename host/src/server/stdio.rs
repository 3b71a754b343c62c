//! MCP over stdio: the agent launches warden and speaks JSON-RPC on its stdin and stdout.
//! Nothing else may write to stdout: logs go to stderr and plugin output to the log.
//!
//! Incoming lines are read by [`StdioTransport`] rather than rmcp's own stdio transport,
//! which drops input that is not JSON without a word. JSON-RPC 2.0 says a server answers it
//! with a parse error (-32700), and an unreadable request with an invalid-request error
//! (-32600, echoing its `id` when there is one): a client with a bug then learns why it gets
//! no answer. Notifications (no `id`) that do not parse are dropped, as the protocol wants.
//! Responses go out through rmcp's writer.

use std::sync::Arc;

use rmcp::model::{ClientRequest, ErrorData, JsonRpcMessage, JsonRpcRequest, RequestId};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::transport::{StdioReader, StdioWriter};
use rmcp::{RoleServer, ServiceExt};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};

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
    /// rmcp's writer (its reading half is never used).
    write: AsyncRwTransport<RoleServer, tokio::io::Empty, W>,
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
            write: AsyncRwTransport::new_server(tokio::io::empty(), write),
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
        self.write.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            if let Some((error, id)) = self.pending.take()
                && self
                    .write
                    .send(TxJsonRpcMessage::<RoleServer>::error(error, id))
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
        self.write.close().await
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
