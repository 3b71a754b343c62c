//! What the gate adds to the Prometheus metrics ([`crate::metrics`]) as a request is recorded:
//! its outcome, latency, fuel, output and redactions, and why it was refused.
//!
//! Tools' handles are resolved when the gate is built ([`Meters::tool`]); prompts', resource
//! reads' and the rest are resolved on their first request and kept, keyed by names from the
//! catalog only, so a client cannot grow them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::audit::Outcome;
use crate::metrics::{Answered, CallMeter, Metrics, OTHER, PluginMeter, Refusal};

/// The gate's handles into [`Metrics`]; empty when metrics are off.
#[derive(Default)]
pub(super) struct Meters {
    metrics: Option<Arc<Metrics>>,
    plugins: HashMap<String, Arc<PluginMeter>>,
    /// By (plugin, tool or prompt, method), all names from the catalog or [`OTHER`].
    others: Mutex<HashMap<MeterKey, Arc<CallMeter>>>,
}

/// Plugin, tool or prompt, method.
type MeterKey = (String, String, &'static str);

/// What a request's trail tells the metrics when it is recorded.
pub(super) struct Ending<'t> {
    pub outcome: Outcome,
    pub method: &'static str,
    /// The plugin, once the request's target was found.
    pub plugin: Option<&'t str>,
    /// The tool or prompt (a catalog name) when it has one, else `None`.
    pub tool: Option<&'t str>,
    /// The handle resolved for the tool, if any.
    pub meter: Option<&'t CallMeter>,
    /// The refusal's reason when a step said it; else it follows from `outcome`.
    pub refusal: Option<Refusal>,
    pub answered: Answered,
    pub redactions: &'t super::Redactions,
    pub principal: &'t str,
    /// Whether the principal is known (authenticated): a refused credential's claimed name is
    /// never counted.
    pub authenticated: bool,
}

impl Meters {
    /// Handles into `metrics` for `plugins` (by name).
    pub fn new<'p>(metrics: Option<Arc<Metrics>>, plugins: impl Iterator<Item = &'p str>) -> Self {
        let plugins = match &metrics {
            Some(metrics) => plugins
                .map(|name| (name.to_owned(), Arc::new(metrics.plugin(name))))
                .collect(),
            None => HashMap::new(),
        };
        Self {
            metrics,
            plugins,
            others: Mutex::default(),
        }
    }

    /// Whether metrics are on.
    pub fn on(&self) -> bool {
        self.metrics.is_some()
    }

    /// The handles of a tool of `plugin`.
    pub fn tool(&self, plugin: &str, tool: &str) -> Option<CallMeter> {
        let metrics = self.metrics.as_ref()?;
        Some(metrics.meter(plugin, tool, "tools/call"))
    }

    /// The gauges of `plugin`, when metrics are on.
    pub fn plugin(&self, plugin: &str) -> Option<&Arc<PluginMeter>> {
        self.plugins.get(plugin)
    }

    /// Count a request that ended as `ending` says.
    pub fn record(&self, ending: Ending<'_>) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        let plugin_meter = ending.plugin.and_then(|plugin| self.plugins.get(plugin));
        if let Some(meter) = plugin_meter {
            meter.in_flight(-1);
            for (kind, count) in ending.redactions {
                meter.redacted(kind, *count);
            }
        }
        match ending.meter {
            Some(meter) => meter.record(&ending.answered),
            None => {
                // A name is kept only once the request's target was found.
                let plugin = ending.plugin.unwrap_or(OTHER);
                let tool = ending.plugin.and(ending.tool).unwrap_or(OTHER);
                let key = (plugin.to_owned(), tool.to_owned(), ending.method);
                let meter = match self.others.lock() {
                    Ok(mut others) => others
                        .entry(key)
                        .or_insert_with(|| Arc::new(metrics.meter(plugin, tool, ending.method)))
                        .clone(),
                    Err(_) => return,
                };
                meter.record(&ending.answered);
            }
        }
        if let Some(reason) = ending
            .refusal
            .or_else(|| refusal(ending.outcome, ending.plugin))
        {
            metrics.refused(reason);
        }
        if ending.authenticated && metrics.counts_principals() {
            metrics.principal(ending.principal, ending.outcome.as_str());
        }
    }
}

/// The reason of a refusal no step named, from its outcome; `None`: not a refusal.
fn refusal(outcome: Outcome, plugin: Option<&str>) -> Option<Refusal> {
    Some(match outcome {
        Outcome::Denied => Refusal::Role,
        Outcome::RateLimited => Refusal::Rate,
        Outcome::Invalid if plugin.is_none() => Refusal::Unknown,
        Outcome::Invalid => Refusal::Invalid,
        Outcome::ApprovalDeclined
        | Outcome::ApprovalUnavailable
        | Outcome::ApprovalTimeout
        | Outcome::ApprovalInvalid => Refusal::Approval,
        _ => return None,
    })
}
