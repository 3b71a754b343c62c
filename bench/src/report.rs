//! The results: printed as a table as they come, and kept for the JSON report.

use serde_json::{Map, Value, json};

/// Every figure measured, in order.
#[derive(Default)]
pub struct Report {
    rows: Vec<(String, String, Value)>,
}

impl Report {
    /// Record `figure` of `scenario` (e.g. `stdio`, `sequential p50 (µs)`), and print it.
    pub fn add(&mut self, scenario: &str, figure: &str, value: impl Into<Value>) {
        let value = value.into();
        println!("{scenario:<10} {figure:<44} {value:>12}");
        self.rows
            .push((scenario.to_owned(), figure.to_owned(), value));
    }

    /// `{"scenario": {"figure": value, ...}, ..., "machine": {...}}`.
    pub fn to_json(&self) -> Value {
        let mut root = Map::new();
        for (scenario, figure, value) in &self.rows {
            let entry = root
                .entry(scenario.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(figures) = entry {
                figures.insert(figure.clone(), value.clone());
            }
        }
        root.insert(
            "machine".into(),
            json!({
                "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
                "os": std::env::consts::OS,
                "arch": std::env::consts::ARCH,
            }),
        );
        Value::Object(root)
    }
}
