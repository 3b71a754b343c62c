//! Prometheus metrics: the families warden keeps, cheap handles to record into them, and the
//! text exposition a scrape gets.
//!
//! A low layer, like `audit/`: it knows nothing of warden's other modules. The gate, the
//! runtime, the audit sink and the server record into one [`Metrics`], which the host keeps
//! across reloads; the server exposes it (`[metrics] listen`, `[metrics] on_http`).
//!
//! Labels are bounded: plugin, tool and prompt names come from the catalog (a name a client
//! made up is counted as `-`), detector names from the manifest, methods, outcomes and
//! refusal reasons from fixed sets; principal names only in
//! `warden_principal_calls_total`, which exists only when the operator opts in
//! (`[metrics] principals = true`).
//!
//! Recording is cheap: a tool's handles ([`CallMeter`]) are resolved once when the gate is
//! built, so a call adds to counters and a histogram without hashing a label set or
//! allocating.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The label value of everything that is not a known name: an unknown tool, a request the
/// transport refused, the tool of a resource read.
pub const OTHER: &str = "-";

/// The most outcomes a [`CallMeter`] keeps handles for (outcome slots `0..MAX_OUTCOMES`).
pub const MAX_OUTCOMES: usize = 32;

/// Most distinct principal names counted (`[metrics] principals = true`); later ones are
/// counted as `-`, so a stream of made-up names cannot grow the exposition without bound.
pub const MAX_PRINCIPALS: usize = 1000;

/// The content type of [`Metrics::encode`]'s text (OpenMetrics).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of [`Metrics::encode_prometheus`]'s text (Prometheus' text format 0.0.4).
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why the gate or the transport refused a request: the `reason` label of
/// `warden_refusals_total`, one fixed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No or wrong credentials, or insufficient scope (HTTP 401/403).
    Auth,
    /// The transport refused the request after authentication: another principal's session,
    /// too many sessions, a task request the client cannot take.
    Transport,
    /// The principal holds none of the roles (or the tool is hidden from it).
    Role,
    /// No such tool, prompt or resource.
    Unknown,
    /// Arguments that do not match the tool's types.
    Invalid,
    /// Arguments over `[limits]` (size, depth, string length...).
    Caps,
    /// A rate limit.
    Rate,
    /// The plugin's concurrency cap and queue are full.
    Concurrency,
    /// A human or an operator declined, no one could be asked, no one answered in time, or
    /// the approval state was not valid.
    Approval,
}

impl Refusal {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Auth => "auth",
            Refusal::Transport => "transport",
            Refusal::Role => "role",
            Refusal::Unknown => "unknown",
            Refusal::Invalid => "invalid",
            Refusal::Caps => "caps",
            Refusal::Rate => "rate",
            Refusal::Concurrency => "concurrency",
            Refusal::Approval => "approval",
        }
    }

    /// Every reason, in the order of their handles.
    pub const ALL: [Refusal; 9] = [
        Refusal::Auth,
        Refusal::Transport,
        Refusal::Role,
        Refusal::Unknown,
        Refusal::Invalid,
        Refusal::Caps,
        Refusal::Rate,
        Refusal::Concurrency,
        Refusal::Approval,
    ];
}

impl EncodeLabelValue for Refusal {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        encoder.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    plugin: Arc<str>,
    tool: Arc<str>,
    method: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ToolLabels {
    plugin: Arc<str>,
    tool: Arc<str>,
    method: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PluginLabels {
    plugin: Arc<str>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RedactionLabels {
    plugin: Arc<str>,
    kind: Arc<str>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RefusalLabels {
    reason: Refusal,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PrincipalLabels {
    principal: Arc<str>,
    outcome: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TransportLabels {
    transport: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Call latencies: 100 µs to about 100 s.
fn call_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 11))
}

/// Audit write latencies: 10 µs to about 2.6 s.
fn audit_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.00001, 4.0, 10))
}

/// What a scrape asks of the layers that hold their own counts (the server's sessions).
type Source = Box<dyn Fn() -> i64 + Send + Sync>;

/// Every family warden keeps, and its registry.
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    duration: HistogramFamily<ToolLabels>,
    fuel: Family<ToolLabels, Counter>,
    output: Family<ToolLabels, Counter>,
    redactions: Family<RedactionLabels, Counter>,
    refusals: [Counter; Refusal::ALL.len()],
    in_flight: Family<PluginLabels, Gauge>,
    queued: Family<PluginLabels, Gauge>,
    cache_hits: Counter,
    cache_misses: Counter,
    sessions: Family<TransportLabels, Gauge>,
    session_sources: Mutex<Vec<(&'static str, Source)>>,
    audit_writes: Histogram,
    audit_failures: Counter,
    /// `Some` when principal names may be counted.
    principals: Option<Family<PrincipalLabels, Counter>>,
    /// The principal names counted so far (at most [`MAX_PRINCIPALS`]).
    principal_names: Mutex<std::collections::HashSet<Box<str>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Every family registered, all empty; `principals`: whether calls are also counted per
    /// principal name.
    pub fn new(principals: bool) -> Self {
        let mut registry = Registry::with_prefix("warden");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "calls",
            "Requests answered, by plugin, tool (or prompt), MCP method and outcome (the audit log's outcomes)",
            calls.clone(),
        );
        let duration: HistogramFamily<ToolLabels> = Family::new_with_constructor(call_histogram);
        registry.register_with_unit(
            "call_duration",
            "Time from a request's arrival in the gate to its audit record, by plugin, tool and method",
            Unit::Seconds,
            duration.clone(),
        );
        let fuel = Family::<ToolLabels, Counter>::default();
        registry.register(
            "fuel_consumed",
            "Fuel (wasmtime's CPU budget units) used by calls that ran to completion",
            fuel.clone(),
        );
        let output = Family::<ToolLabels, Counter>::default();
        registry.register_with_unit(
            "output",
            "Bytes of results sent back (serialized, after the filter and the size cap)",
            Unit::Bytes,
            output.clone(),
        );
        let redactions = Family::<RedactionLabels, Counter>::default();
        registry.register(
            "redactions",
            "Values the output filter redacted, by plugin and detector",
            redactions.clone(),
        );
        let refusal_family = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "refusals",
            "Requests refused by the gate or the transport, by reason",
            refusal_family.clone(),
        );
        let refusals = Refusal::ALL
            .map(|reason| refusal_family.get_or_create_owned(&RefusalLabels { reason }));
        let in_flight = Family::<PluginLabels, Gauge>::default();
        registry.register(
            "calls_in_flight",
            "Requests past the gate's lookup and not yet recorded, by plugin",
            in_flight.clone(),
        );
        let queued = Family::<PluginLabels, Gauge>::default();
        registry.register(
            "queue_depth",
            "Calls waiting for a slot under their plugin's concurrency cap",
            queued.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "compile_cache_hits",
            "Components loaded from the compile cache",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "compile_cache_misses",
            "Components compiled because the cache had no usable entry",
            cache_misses.clone(),
        );
        let sessions = Family::<TransportLabels, Gauge>::default();
        registry.register(
            "sessions_open",
            "Open MCP sessions, by transport (stdio: 1)",
            sessions.clone(),
        );
        let audit_writes = audit_histogram();
        registry.register_with_unit(
            "audit_write_duration",
            "Time to append one record to the audit log",
            Unit::Seconds,
            audit_writes.clone(),
        );
        let audit_failures = Counter::default();
        registry.register(
            "audit_write_failures",
            "Audit records that could not be written (their requests failed)",
            audit_failures.clone(),
        );
        let principals = principals.then(|| {
            let family = Family::<PrincipalLabels, Counter>::default();
            registry.register(
                "principal_calls",
                "Requests answered, by principal name and outcome ([metrics] principals = true)",
                family.clone(),
            );
            family
        });
        Self {
            registry,
            calls,
            duration,
            fuel,
            output,
            redactions,
            refusals,
            in_flight,
            queued,
            cache_hits,
            cache_misses,
            sessions,
            session_sources: Mutex::default(),
            audit_writes,
            audit_failures,
            principals,
            principal_names: Mutex::default(),
        }
    }

    /// The handles of `tool` (a prompt's name; [`OTHER`] for what has none) of `plugin`
    /// ([`OTHER`] when unknown) answering `method` (`tools/call`, `prompts/get`, ...).
    pub fn meter(&self, plugin: &str, tool: &str, method: &'static str) -> CallMeter {
        let plugin: Arc<str> = Arc::from(plugin);
        let tool: Arc<str> = Arc::from(tool);
        let labels = ToolLabels {
            plugin: plugin.clone(),
            tool: tool.clone(),
            method,
        };
        CallMeter {
            calls: self.calls.clone(),
            outcomes: std::array::from_fn(|_| OnceLock::new()),
            duration: self.duration.get_or_create_owned(&labels),
            fuel: self.fuel.get_or_create_owned(&labels),
            output: self.output.get_or_create_owned(&labels),
            plugin,
            tool,
            method,
        }
    }

    /// The handles of `plugin`'s gauges and redaction counts.
    pub fn plugin(&self, plugin: &str) -> PluginMeter {
        let labels = PluginLabels {
            plugin: Arc::from(plugin),
        };
        PluginMeter {
            in_flight: self.in_flight.get_or_create_owned(&labels),
            queued: self.queued.get_or_create_owned(&labels),
            redactions: self.redactions.clone(),
            kinds: Mutex::default(),
            plugin: labels.plugin,
        }
    }

    /// Count a refusal for `reason`.
    pub fn refused(&self, reason: Refusal) {
        if let Some(index) = Refusal::ALL.iter().position(|r| *r == reason) {
            self.refusals[index].inc();
        }
    }

    /// Count a request of `principal` that ended with `outcome`, when principal names may be
    /// counted ([`Metrics::counts_principals`]); else nothing.
    pub fn principal(&self, principal: &str, outcome: &'static str) {
        let Some(family) = &self.principals else {
            return;
        };
        let known = match self.principal_names.lock() {
            Ok(mut names) => {
                names.contains(principal)
                    || (names.len() < MAX_PRINCIPALS && names.insert(principal.into()))
            }
            Err(_) => false,
        };
        let principal = if known { principal } else { OTHER };
        let labels = PrincipalLabels {
            principal: Arc::from(principal),
            outcome,
        };
        family.get_or_create(&labels).inc();
    }

    /// Whether principal names are counted (`[metrics] principals = true`).
    pub fn counts_principals(&self) -> bool {
        self.principals.is_some()
    }

    /// A component was loaded from the compile cache (`hit`) or compiled.
    pub fn compiled(&self, hit: bool) {
        if hit {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }

    /// The open sessions of `transport` are what `count` says at each scrape (the latest
    /// source given for a transport wins).
    pub fn sessions(
        &self,
        transport: &'static str,
        count: impl Fn() -> i64 + Send + Sync + 'static,
    ) {
        if let Ok(mut sources) = self.session_sources.lock() {
            sources.retain(|(t, _)| *t != transport);
            sources.push((transport, Box::new(count)));
        }
    }

    /// An audit record was appended in `elapsed`, or could not be (`ok == false`).
    pub fn audit_write(&self, elapsed: Duration, ok: bool) {
        self.audit_writes.observe(elapsed.as_secs_f64());
        if !ok {
            self.audit_failures.inc();
        }
    }

    /// The exposition (OpenMetrics text, which Prometheus reads), ending with `# EOF`.
    pub fn encode(&self) -> String {
        if let Ok(sources) = self.session_sources.lock() {
            for (transport, count) in sources.iter() {
                self.sessions
                    .get_or_create(&TransportLabels { transport })
                    .set(count());
            }
        }
        let mut text = String::with_capacity(16 * 1024);
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "the metrics could not be encoded");
            text.clear();
            text.push_str("# EOF\n");
        }
        text
    }
}

impl Metrics {
    /// The exposition in Prometheus' classic text format (0.0.4), for scrapers that do not ask
    /// for OpenMetrics (`promtool`, `curl`): the same samples, with a counter's `HELP` and
    /// `TYPE` under its `_total` name, and no `UNIT` or `EOF` lines.
    pub fn encode_prometheus(&self) -> String {
        to_prometheus_text(&self.encode())
    }
}

/// OpenMetrics text as Prometheus' classic text format.
fn to_prometheus_text(open_metrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = open_metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|rest| ("# HELP ", rest))
            .or_else(|| line.strip_prefix("# TYPE ").map(|rest| ("# TYPE ", rest)));
        match meta {
            Some((kind, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                text.push_str(kind);
                text.push_str(name);
                if counters.contains(name) {
                    text.push_str("_total");
                }
                text.push(' ');
                text.push_str(tail);
            }
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

/// One tool's (or prompt's, or plugin's resources') handles, resolved once: counting a call
/// takes no lock on a label map and allocates nothing after the first call of each outcome.
pub struct CallMeter {
    calls: Family<CallLabels, Counter>,
    /// The counter of each outcome slot, created on its first use (so the exposition shows
    /// only outcomes that happened).
    outcomes: [OnceLock<Counter>; MAX_OUTCOMES],
    duration: Histogram,
    fuel: Counter,
    output: Counter,
    plugin: Arc<str>,
    tool: Arc<str>,
    method: &'static str,
}

impl std::fmt::Debug for CallMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallMeter")
            .field("plugin", &self.plugin)
            .field("tool", &self.tool)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// What one answered request adds to the counts.
#[derive(Clone, Copy, Debug)]
pub struct Answered {
    /// The outcome's slot (below [`MAX_OUTCOMES`]) and its name.
    pub outcome: (usize, &'static str),
    /// From arrival to the record.
    pub elapsed: Duration,
    /// Fuel used, when the plugin ran to completion.
    pub fuel: Option<u64>,
    /// Bytes sent back, when a result was.
    pub output_bytes: Option<u64>,
}

impl CallMeter {
    /// Count one request that ended as `answered` says.
    pub fn record(&self, answered: &Answered) {
        let (slot, outcome) = answered.outcome;
        match self.outcomes.get(slot) {
            Some(cell) => cell
                .get_or_init(|| {
                    self.calls.get_or_create_owned(&CallLabels {
                        plugin: self.plugin.clone(),
                        tool: self.tool.clone(),
                        method: self.method,
                        outcome,
                    })
                })
                .inc(),
            None => self
                .calls
                .get_or_create(&CallLabels {
                    plugin: self.plugin.clone(),
                    tool: self.tool.clone(),
                    method: self.method,
                    outcome,
                })
                .inc(),
        };
        self.duration.observe(answered.elapsed.as_secs_f64());
        if let Some(fuel) = answered.fuel {
            self.fuel.inc_by(fuel);
        }
        if let Some(bytes) = answered.output_bytes {
            self.output.inc_by(bytes);
        }
    }
}

/// One plugin's gauges (in flight, queued) and redaction counts.
pub struct PluginMeter {
    in_flight: Gauge,
    queued: Gauge,
    redactions: Family<RedactionLabels, Counter>,
    /// The counter of each detector seen so far.
    kinds: Mutex<HashMap<String, Counter>>,
    plugin: Arc<str>,
}

impl std::fmt::Debug for PluginMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginMeter")
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

impl PluginMeter {
    /// A request of this plugin started (`+1`) or was recorded (`-1`).
    pub fn in_flight(&self, delta: i64) {
        self.in_flight.inc_by(delta);
    }

    /// A call started (`+1`) or stopped (`-1`) waiting for a concurrency slot.
    pub fn queued(&self, delta: i64) {
        self.queued.inc_by(delta);
    }

    /// The filter redacted `count` values found by the detector `kind` (a name from the
    /// manifest or a built-in detector's).
    pub fn redacted(&self, kind: &str, count: u64) {
        let Ok(mut kinds) = self.kinds.lock() else {
            return;
        };
        if let Some(counter) = kinds.get(kind) {
            counter.inc_by(count);
            return;
        }
        let counter = self.redactions.get_or_create_owned(&RedactionLabels {
            plugin: self.plugin.clone(),
            kind: Arc::from(kind),
        });
        counter.inc_by(count);
        kinds.insert(kind.to_owned(), counter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(slot: usize, outcome: &'static str) -> Answered {
        Answered {
            outcome: (slot, outcome),
            elapsed: Duration::from_millis(2),
            fuel: Some(10),
            output_bytes: Some(5),
        }
    }

    #[test]
    fn a_meter_counts_into_the_families_and_handles_share_them() {
        let metrics = Metrics::new(false);
        let first = metrics.meter("echo", "echo__say", "tools/call");
        first.record(&answered(0, "ok"));
        first.record(&answered(0, "ok"));
        // A second handle (a reload) adds to the same series.
        let second = metrics.meter("echo", "echo__say", "tools/call");
        second.record(&answered(1, "tool_error"));
        let text = metrics.encode();
        assert!(text.contains(
            r#"warden_calls_total{plugin="echo",tool="echo__say",method="tools/call",outcome="ok"} 2"#
        ), "{text}");
        assert!(text.contains(
            r#"warden_calls_total{plugin="echo",tool="echo__say",method="tools/call",outcome="tool_error"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"warden_fuel_consumed_total{plugin="echo",tool="echo__say",method="tools/call"} 30"#
        ), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn principals_are_absent_unless_opted_in_and_bounded_when_they_are() {
        let off = Metrics::new(false);
        off.principal("alice", "ok");
        assert!(!off.encode().contains("alice"));
        let on = Metrics::new(true);
        for i in 0..MAX_PRINCIPALS + 50 {
            on.principal(&format!("p{i}"), "ok");
        }
        let text = on.encode();
        assert!(text.contains(r#"warden_principal_calls_total{principal="p0",outcome="ok"} 1"#));
        assert!(text.contains(r#"warden_principal_calls_total{principal="-",outcome="ok"} 50"#));
    }

    #[test]
    fn the_classic_text_names_counters_by_their_samples() {
        let metrics = Metrics::new(false);
        metrics.refused(Refusal::Auth);
        let _meter = metrics.meter("echo", "echo__say", "tools/call");
        let text = metrics.encode_prometheus();
        assert!(
            text.contains("# TYPE warden_refusals_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP warden_refusals_total Requests refused"),
            "{text}"
        );
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE warden_call_duration_seconds histogram\n"),
            "{text}"
        );
    }

    #[test]
    fn refusals_have_one_series_per_reason() {
        let metrics = Metrics::new(false);
        metrics.refused(Refusal::Rate);
        metrics.refused(Refusal::Rate);
        let text = metrics.encode();
        assert!(
            text.contains(r#"warden_refusals_total{reason="rate"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"warden_refusals_total{reason="auth"} 0"#),
            "{text}"
        );
    }
}
