//! What the gate has answered so far: a count of calls per tool and outcome, for
//! `warden status`. Kept across reloads; never persisted.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::audit::Outcome;

/// The key of everything that did not reach a known tool: unknown names (which a client
/// chooses, so they are not kept one by one) and requests the transport refused.
pub const OTHER: &str = "-";

/// Calls per tool and outcome since the server started.
#[derive(Debug)]
pub struct Stats {
    started: SystemTime,
    counts: Mutex<BTreeMap<String, BTreeMap<&'static str, u64>>>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            started: SystemTime::now(),
            counts: Mutex::default(),
        }
    }
}

impl Stats {
    /// Count one call of `tool` (`None`: not a known tool) that ended with `outcome`.
    pub fn record(&self, tool: Option<&str>, outcome: Outcome) {
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        let tool = tool.unwrap_or(OTHER);
        let per_tool = match counts.get_mut(tool) {
            Some(per_tool) => per_tool,
            None => counts.entry(tool.to_owned()).or_default(),
        };
        *per_tool.entry(outcome.as_str()).or_default() += 1;
    }

    /// When counting started.
    pub fn started(&self) -> SystemTime {
        self.started
    }

    /// The counts so far: tool (or [`OTHER`]) -> outcome name -> calls.
    pub fn snapshot(&self) -> BTreeMap<String, BTreeMap<&'static str, u64>> {
        self.counts
            .lock()
            .map(|counts| counts.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_tool_and_outcome_with_unknown_names_together() {
        let stats = Stats::default();
        stats.record(Some("a__x"), Outcome::Ok);
        stats.record(Some("a__x"), Outcome::Ok);
        stats.record(Some("a__x"), Outcome::Denied);
        stats.record(None, Outcome::Invalid);
        stats.record(None, Outcome::Invalid);
        let counts = stats.snapshot();
        assert_eq!(counts["a__x"]["ok"], 2);
        assert_eq!(counts["a__x"]["denied"], 1);
        assert_eq!(counts[OTHER]["invalid"], 2);
        assert_eq!(counts.len(), 2);
    }
}
