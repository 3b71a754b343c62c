//! OpenTelemetry traces (`[tracing]`): the OTLP/HTTP exporter, the span of each request and
//! of the gate's steps, and the W3C trace context a request arrives with.
//!
//! Off unless the manifest has `[tracing]`: then nothing here runs, no exporter thread is
//! started, and every function below returns at its first load of the (unset) tracer.
//!
//! Spans are made with the OpenTelemetry API directly, not through `tracing`: a request's span
//! is started when the request arrives, and the sampler decides then. The request's future
//! carries its context ([`within`]); a step ([`step`]) is a span only when that context is
//! sampled, so an unsampled request costs one non-recording span and no more. Log events and
//! `tracing` spans never become span attributes. Ended spans go into a bounded queue; the
//! SDK's batch processor exports them from its own thread, so a collector that is slow, down
//! or hanging never holds a call: a full queue drops spans (the SDK logs the first drop and
//! the total at shutdown), a failed export drops its batch (counted and logged here).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use std::future::Future;
use std::sync::OnceLock;

use futures_util::future::Either;
use opentelemetry::context::FutureExt as _;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{
    SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, SpanData,
    SpanExporter,
};

use crate::manifest::TracingSettings;

/// How long the last export may take when warden stops.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The tracer every span is started with, set once by [`Tracing::start`]: traces are on in
/// this process when it is set.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();
/// Whether request spans carry the principal (`[tracing] principal = true`).
static PRINCIPAL: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported by this process.
pub fn enabled() -> bool {
    TRACER.get().is_some()
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

impl Tracing {
    /// Start the exporter `settings` describe (its batch thread included). Traces are on from
    /// here. A process starts it once.
    pub fn start(settings: &TracingSettings) -> Result<Tracing, TelemetryError> {
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
        PRINCIPAL.store(settings.principal, Ordering::Relaxed);
        if TRACER.set(provider.tracer("warden")).is_err() {
            return Err(TelemetryError::Exporter(
                "traces are already started".into(),
            ));
        }
        Ok(Tracing { provider, dropped })
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

/// The trace of one request: its context, whose active span is the request's span (recording
/// or not, as the sampler decided).
#[derive(Clone)]
pub struct Trace(Context);

/// What a request span says of its subject, beside its method.
pub struct Subject {
    /// The attribute naming the subject: `gen_ai.tool.name`, `gen_ai.prompt.name`.
    pub key: &'static str,
    /// The tool's or prompt's name.
    pub name: String,
}

/// Start the span of a `method` request (kind server) named `name`, child of the first valid
/// `(traceparent, tracestate)` of `parents`. A malformed `traceparent` is skipped (never an
/// error); with none valid, the request starts a new trace. `None` when traces are off.
pub fn start_request<'a>(
    name: String,
    method: &'static str,
    subject: Option<Subject>,
    parents: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Option<Trace> {
    let tracer = TRACER.get()?;
    let propagator = TraceContextPropagator::new();
    let parent = parents
        .into_iter()
        .map(|(traceparent, tracestate)| {
            propagator.extract(&W3c {
                traceparent,
                tracestate,
            })
        })
        .find(|context| context.span().span_context().is_valid())
        .unwrap_or_default();
    let mut attributes = Vec::with_capacity(2);
    attributes.push(KeyValue::new("mcp.method.name", method));
    if let Some(subject) = subject {
        attributes.push(KeyValue::new(subject.key, subject.name));
    }
    let span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .start_with_context(tracer, &parent);
    Some(Trace(parent.with_span(span)))
}

/// `future`, run with `trace` as the current context on every poll, so that the gate's
/// [`step`]s and [`current`] find it. Without a trace, `future` itself.
pub fn within<F: Future>(trace: Option<Trace>, future: F) -> impl Future<Output = F::Output> {
    match trace {
        Some(Trace(context)) => Either::Left(future.with_context(context)),
        None => Either::Right(future),
    }
}

/// The trace of the request being served on this thread, if any.
pub fn current() -> Option<Trace> {
    if !enabled() {
        return None;
    }
    let context = Context::current();
    context.has_active_span().then_some(Trace(context))
}

impl Trace {
    /// The end of the request: its plugin, outcome and (when `[tracing] principal = true`)
    /// principal as attributes, and an error status when it `failed`. Returns the trace id,
    /// for the request's audit record. The span ends when the request's last handle on it
    /// goes.
    pub fn finish(
        &self,
        plugin: Option<&str>,
        outcome: &'static str,
        failed: bool,
        principal: &str,
    ) -> Option<String> {
        let span = self.0.span();
        if span.is_recording() {
            if let Some(plugin) = plugin {
                span.set_attribute(KeyValue::new("warden.plugin", plugin.to_owned()));
            }
            span.set_attribute(KeyValue::new("warden.outcome", outcome));
            if failed {
                span.set_attribute(KeyValue::new("error.type", outcome));
                span.set_status(Status::error(outcome));
            }
            if PRINCIPAL.load(Ordering::Relaxed) {
                span.set_attribute(KeyValue::new("enduser.id", principal.to_owned()));
            }
        }
        let span_context = span.span_context();
        span_context
            .is_valid()
            .then(|| span_context.trace_id().to_string())
    }
}

/// A step of a request, as a child span of the request's: ended when dropped. Nothing (and
/// free) when traces are off or the request is not sampled.
pub struct Step {
    /// Held for its `Drop`, which ends it.
    _span: Option<opentelemetry_sdk::trace::Span>,
}

/// Start the step `name` of the request being served on this thread.
pub fn step(name: &'static str) -> Step {
    let Some(tracer) = TRACER.get() else {
        return Step { _span: None };
    };
    let sampled = Context::map_current(|context| {
        let sampled = context.span().span_context().is_sampled();
        sampled.then(|| context.clone())
    });
    Step {
        _span: sampled.map(|context| tracer.start_with_context(name, &context)),
    }
}

impl Step {
    /// Run `f` as this step.
    pub fn in_scope<R>(self, f: impl FnOnce() -> R) -> R {
        let result = f();
        drop(self);
        result
    }

    /// Run `future` as this step: the span ends when it is ready (or dropped).
    pub async fn over<F: Future>(self, future: F) -> F::Output {
        let output = future.await;
        drop(self);
        output
    }
}
