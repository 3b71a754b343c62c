//! OpenTelemetry traces (`[tracing]`): the OTLP/HTTP exporter, the `tracing` layer that turns
//! warden's request and step spans into OpenTelemetry spans, and the W3C trace context a
//! request arrives with.
//!
//! Off unless the manifest has `[tracing]`: then nothing here runs, no exporter thread is
//! started, and the spans warden creates for traces (target [`TARGET`], level `DEBUG`) are
//! disabled at their call site by the log filter, as any debug span is.
//!
//! When on, the binary (`cli.rs`) adds [`Tracing::layer`] to its subscriber, filtered to
//! [`TARGET`] only: log events and warden's other spans (which name principals and URIs for
//! the log) never become span attributes. Spans end in a bounded queue; the SDK's batch
//! processor exports them from its own thread, so a collector that is slow, down or hanging
//! never holds a call: a full queue drops spans (the SDK logs the first drop and the total at
//! shutdown), a failed export drops its batch (counted and logged here).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Filtered;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

use crate::manifest::TracingSettings;

/// The `tracing` target of every span meant for traces: the request span and the gate's steps.
/// Only spans of this target are exported.
pub const TARGET: &str = "warden::trace";

/// How long the last export may take when warden stops.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether traces are on in this process (set once, by [`Tracing::start`]).
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Whether request spans carry the principal (`[tracing] principal = true`).
static PRINCIPAL: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported by this process.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built (a bad endpoint or header from the environment).
    #[error("cannot start the OTLP trace exporter: {0}")]
    Exporter(String),
}

/// The running exporter. [`Tracing::shutdown`] exports what is still queued.
pub struct Tracing {
    provider: SdkTracerProvider,
    dropped: Arc<AtomicU64>,
}

/// The layer [`Tracing::start`] returns: OpenTelemetry's, seeing only [`TARGET`].
pub type TraceLayer<S> = Filtered<
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
    Targets,
    S,
>;

impl Tracing {
    /// Start the exporter `settings` describe (its batch thread included), and return it with
    /// the layer to add to the subscriber. Traces are on from here.
    pub fn start<S>(settings: &TracingSettings) -> Result<(Tracing, TraceLayer<S>), TelemetryError>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        // reqwest is built with rustls and no provider of its own (see oci/): ring, as
        // everywhere in warden, before its client is built.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
        if let Some(url) = &settings.otlp {
            exporter = exporter.with_endpoint(traces_endpoint(url));
        }
        if !settings.headers.is_empty() {
            let headers: HashMap<String, String> = settings
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.expose().to_owned()))
                .collect();
            exporter = exporter.with_headers(headers);
        }
        let exporter = exporter
            .build()
            .map_err(|error| TelemetryError::Exporter(error.to_string()))?;
        let dropped = Arc::new(AtomicU64::new(0));
        let exporter = Counted {
            inner: exporter,
            dropped: dropped.clone(),
        };
        let mut batch = BatchConfigBuilder::default();
        if let Some(queue) = settings.queue {
            batch = batch.with_max_queue_size(queue);
        }
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch.build())
            .build();
        let mut resource = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ));
        match &settings.service_name {
            Some(name) => resource = resource.with_service_name(name.clone()),
            None if std::env::var_os("OTEL_SERVICE_NAME").is_none() => {
                resource = resource.with_service_name("warden");
            }
            None => {}
        }
        let mut provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource.build());
        if let Some(ratio) = settings.sample {
            provider = provider.with_sampler(Sampler::ParentBased(Box::new(
                Sampler::TraceIdRatioBased(ratio),
            )));
        }
        let provider = provider.build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("warden"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_level(false)
            .with_tracked_inactivity(false)
            .with_filter(Targets::new().with_target(TARGET, tracing::Level::TRACE));
        PRINCIPAL.store(settings.principal, Ordering::Relaxed);
        ENABLED.store(true, Ordering::Relaxed);
        Ok((Tracing { provider, dropped }, layer))
    }

    /// Export what is queued (for at most 5 seconds) and stop the exporter thread.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            tracing::warn!(target: "warden::telemetry", %error, "traces: the last export did not finish");
        }
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                target: "warden::telemetry",
                dropped,
                "traces: {dropped} span(s) were dropped in all because exports to the collector failed"
            );
        }
    }
}

/// `url` with `/v1/traces` appended when it names only the collector (no path), as
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is read.
fn traces_endpoint(url: &str) -> String {
    let path = url
        .split_once("://")
        .map(|(_, rest)| rest.find('/').map(|i| &rest[i..]).unwrap_or(""))
        .unwrap_or("");
    if path.is_empty() || path == "/" {
        format!("{}/v1/traces", url.trim_end_matches('/'))
    } else {
        url.to_owned()
    }
}

/// The OTLP exporter, counting (and logging) the spans of exports that failed.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    dropped: Arc<AtomicU64>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let exported = self.inner.export(batch).await;
        if let Err(error) = &exported {
            let total = self.dropped.fetch_add(spans, Ordering::Relaxed) + spans;
            tracing::warn!(
                target: "warden::telemetry",
                %error,
                spans,
                dropped_total = total,
                "traces: an export to the OTLP collector failed; its spans are dropped"
            );
        }
        exported
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The W3C trace context a request carries: `traceparent` and `tracestate`.
struct W3c<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for W3c<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(self.traceparent),
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// Make the first valid `(traceparent, tracestate)` of `candidates` the remote parent of
/// `span`. A malformed `traceparent` is skipped (never an error); with none valid, `span`
/// starts a new trace.
pub fn set_remote_parent<'a>(
    span: &Span,
    candidates: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) {
    if !enabled() || span.is_disabled() {
        return;
    }
    let propagator = TraceContextPropagator::new();
    for (traceparent, tracestate) in candidates {
        let context = propagator.extract(&W3c {
            traceparent,
            tracestate,
        });
        if context.span().span_context().is_valid() {
            let _ = span.set_parent(context);
            return;
        }
    }
}

/// The end of a request whose span is `span`: its plugin, outcome and (when
/// `[tracing] principal = true`) principal as attributes. Returns the trace id, for the
/// request's audit record.
pub fn finish(
    span: &Span,
    plugin: Option<&str>,
    outcome: &str,
    failed: bool,
    principal: &str,
) -> Option<String> {
    if span.is_disabled() {
        return None;
    }
    if let Some(plugin) = plugin {
        span.record("warden.plugin", plugin);
    }
    span.record("warden.outcome", outcome);
    if failed {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", outcome);
    }
    if PRINCIPAL.load(Ordering::Relaxed) {
        span.record("enduser.id", principal);
    }
    let context = span.context();
    let remote = context.span();
    let span_context = remote.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}
