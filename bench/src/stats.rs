//! Latency statistics over a set of samples.

use std::time::Duration;

/// Median, 95th and 99th percentiles and mean of some durations.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub mean: Duration,
}

impl Latency {
    /// The statistics of `samples` (which it sorts); `None` when there are none.
    pub fn of(samples: &mut [Duration]) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        let total: Duration = samples.iter().sum();
        Some(Latency {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            mean: total / samples.len() as u32,
        })
    }
}

/// `d` in microseconds, with one decimal.
pub fn micros(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}

/// `d` in milliseconds, with one decimal.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

/// `bytes` in MiB (what the reports call MB, as `ps` and `top` do), with one decimal.
pub fn mb(bytes: u64) -> f64 {
    (bytes as f64 / (1 << 20) as f64 * 10.0).round() / 10.0
}
