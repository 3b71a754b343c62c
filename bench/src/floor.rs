//! The floor of the HTTP scenario: a server that does nothing but answer. It reads each POST's
//! body and answers with the same JSON-RPC result warden gives, from a tokio runtime with as
//! many workers as cores and hyper's HTTP/1.1, as warden does. Driven by the same client at
//! the same concurrency, it says what loopback TCP, HTTP and the client cost on this machine:
//! warden's calls/s can only approach it.
//!
//! It runs as `warden-bench --floor-server` in a process of its own, so that its CPU is
//! counted apart from the client's, as warden's is.

use std::convert::Infallible;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// What codec's `encode` of `warden` to hex answers.
const ANSWER: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"7761726465 6e"}],"isError":false}}"#;

/// Serve on a free port of 127.0.0.1 until killed; the address goes to stderr in warden's
/// words (`warden: listening on http://ADDR/mcp`).
pub fn serve() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        eprintln!("warden: listening on http://{}/mcp", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |request: http::Request<hyper::body::Incoming>| async move {
                        // Read the whole body, as a real server must before it answers.
                        let _ = request.into_body().collect().await;
                        let response = http::Response::builder()
                            .header(http::header::CONTENT_TYPE, "application/json")
                            .body(Full::new(Bytes::from_static(ANSWER.as_bytes())))
                            .unwrap_or_default();
                        Ok::<_, Infallible>(response)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
