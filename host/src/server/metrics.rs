//! `[metrics] listen`: a listener of its own that serves `GET /metrics` and nothing else, for
//! a Prometheus server to scrape; it runs beside either transport (stdio too).
//!
//! It carries no MCP and no credentials: bind it where only the scraper reaches it (a
//! loopback address, a pod's own network). Any other path is 404, any other method 405.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use tokio::net::TcpListener;

use crate::metrics::{CONTENT_TYPE, Metrics, PROMETHEUS_CONTENT_TYPE};

/// The metrics listener could not start.
#[derive(Debug, thiserror::Error)]
#[error("[metrics] cannot listen on {addr}: {source}")]
pub struct MetricsError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// The scrape's response: OpenMetrics when the request's `Accept` asks for it (Prometheus
/// does), else Prometheus' classic text format.
pub(crate) fn exposition(metrics: &Metrics, accept: Option<&http::HeaderValue>) -> Response {
    let open_metrics = accept
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    let (content_type, body) = match open_metrics {
        true => (CONTENT_TYPE, metrics.encode()),
        false => (PROMETHEUS_CONTENT_TYPE, metrics.encode_prometheus()),
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Bind `addr` and serve `metrics` at `GET /metrics` on a task of its own, until the process
/// ends. Returns the address bound (with the port chosen, for port 0) and prints
/// `warden: metrics on http://ADDR/metrics` to stderr.
pub async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> Result<SocketAddr, MetricsError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| MetricsError { addr, source })?;
    let router = Router::new()
        .route(
            "/metrics",
            get(move |headers: http::HeaderMap| {
                let metrics = metrics.clone();
                async move {
                    let span = tracing::debug_span!("scrape");
                    let _entered = span.enter();
                    exposition(&metrics, headers.get(header::ACCEPT))
                }
            }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") });
    if !bound.ip().is_loopback() {
        tracing::warn!(
            address = %bound,
            "[metrics] listen is not a loopback address: anyone who reaches it can read the \
             metrics (no authentication there; on_http serves them behind [auth])"
        );
    }
    eprintln!("warden: metrics on http://{bound}/metrics");
    tracing::info!(address = %bound, "serving metrics");
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "the metrics listener stopped");
        }
    });
    Ok(bound)
}
