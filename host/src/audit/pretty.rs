//! One audit record as one readable line, for `warden audit tail`.

use std::fmt::Write as _;

use serde_json::Value;

/// `line` (one record of the log) as
/// `TS OUTCOME PRINCIPAL/TRANSPORT TOOL DURATION [fuel N] [out N B] [redacted k×n] id ID args {...} [error: ...]`,
/// or the line itself when it is not a record.
pub fn pretty(line: &[u8]) -> String {
    let Ok(Value::Object(record)) = serde_json::from_slice::<Value>(line) else {
        return format!("(not a record) {}", String::from_utf8_lossy(line));
    };
    let text = |key: &str| record.get(key).and_then(Value::as_str).unwrap_or("-");
    let number = |key: &str| record.get(key).and_then(Value::as_u64);
    let mut out = format!(
        "{} {:<13} {}/{} {}",
        text("ts"),
        text("outcome"),
        text("principal"),
        text("transport"),
        text("tool"),
    );
    if let Some(us) = number("duration_us") {
        let _ = write!(out, " {:.1}ms", us as f64 / 1000.0);
    }
    if let Some(fuel) = number("fuel") {
        let _ = write!(out, " fuel {fuel}");
    }
    if let Some(bytes) = number("output_bytes") {
        let _ = write!(out, " out {bytes}B");
    }
    if let Some(Value::Object(redactions)) = record.get("redactions") {
        let kinds: Vec<String> = redactions
            .iter()
            .map(|(kind, n)| format!("{kind}×{n}"))
            .collect();
        let _ = write!(out, " redacted {}", kinds.join(","));
    }
    if record.get("truncated") == Some(&Value::Bool(true)) {
        out.push_str(" truncated");
    }
    let _ = write!(out, " id {}", text("id"));
    if let Some(args) = record.get("args") {
        let _ = write!(out, " args {args}");
    }
    if let Some(error) = record.get("error").and_then(Value::as_str) {
        let _ = write!(out, " error: {error}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_as_one_line() {
        let line = br#"{"seq":3,"ts":"2026-11-21T18:32:00.123Z","id":"abc","principal":"local","roles":[],"transport":"stdio","plugin":"testbed","tool":"testbed__emit","args":{"text":"hi"},"outcome":"ok","duration_us":1500,"fuel":120,"output_bytes":80,"redactions":{"email":2},"prev":"00"}"#;
        assert_eq!(
            pretty(line),
            r#"2026-11-21T18:32:00.123Z ok            local/stdio testbed__emit 1.5ms fuel 120 out 80B redacted email×2 id abc args {"text":"hi"}"#
        );
        assert_eq!(pretty(b"garbage"), "(not a record) garbage");
    }
}
