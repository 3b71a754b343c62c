//! One audit record as one readable line, for `warden audit tail`.
//!
//! Records hold strings the client chose (tool names, ids, principals): every control
//! character in the line is escaped (`\n`, `\u{1b}`, ...), so a record cannot forge a line or
//! send escape sequences (ANSI, OSC) to the terminal. Bidirectional-text overrides are escaped
//! too, so a line cannot be made to read in another order.

use std::fmt::Write as _;

use serde_json::Value;

/// `line` (one record of the log) as
/// `TS OUTCOME PRINCIPAL/TRANSPORT TOOL DURATION [fuel N] [out N B] [redacted k×n] id ID args {...} [error: ...]`,
/// a start record as `TS start warden VERSION N plugin(s): NAME sha256:PREFIX… [signer S] lock STATE, ...`,
/// a checkpoint as `TS checkpoint replica R, N record(s) since the last, head PREFIX…, key ID`,
/// or the line itself when it is not a record; control characters escaped (see the module).
pub fn pretty(line: &[u8]) -> String {
    let Ok(Value::Object(record)) = serde_json::from_slice::<Value>(line) else {
        return format!(
            "(not a record) {}",
            escape(&String::from_utf8_lossy(line), false)
        );
    };
    if record.get("kind").and_then(Value::as_str) == Some(super::START) {
        return start(&record);
    }
    if record.get("kind").and_then(Value::as_str) == Some(super::CHECKPOINT) {
        return checkpoint(&record);
    }
    let text = |key: &str| escape(record.get(key).and_then(Value::as_str).unwrap_or("-"), true);
    let number = |key: &str| record.get(key).and_then(Value::as_u64);
    let mut out = format!(
        "{} {:<13} {}/{} {}",
        text("ts"),
        text("outcome"),
        text("principal"),
        text("transport"),
        text("tool"),
    );
    if let Some(method) = record.get("method").and_then(Value::as_str) {
        let _ = write!(out, " ({})", escape(method, true));
    }
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
        let _ = write!(out, " error: {}", escape(error, true));
    }
    if out.chars().any(needs_escape) {
        // The arguments' JSON escapes C0 controls but not DEL, C1 or bidi controls.
        out = escape(&out, false);
    }
    out
}

/// A checkpoint as one line: `TS checkpoint replica R, N record(s) signed, head PREFIX…, key ID`.
fn checkpoint(record: &serde_json::Map<String, Value>) -> String {
    let text = |key: &str| escape(record.get(key).and_then(Value::as_str).unwrap_or("-"), true);
    let head: String = text("head").chars().take(8).collect();
    let count = record.get("count").and_then(Value::as_u64).unwrap_or(0);
    format!(
        "{} {:<13} replica {}, {count} record(s) since the last, head {head}…, key {}",
        text("ts"),
        "checkpoint",
        text("replica"),
        text("key")
    )
}

/// A start record as one line: the version, then each plugin with the first 8 hex digits of
/// its SHA-256, its signer when checked, and its lock state.
fn start(record: &serde_json::Map<String, Value>) -> String {
    let text = |value: Option<&Value>| escape(value.and_then(Value::as_str).unwrap_or("-"), true);
    let plugins: &[Value] = record
        .get("plugins")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let shown: Vec<String> = plugins
        .iter()
        .map(|plugin| {
            let field = |key: &str| plugin.get(key);
            let sha256 = text(field("sha256"));
            let short: String = sha256.chars().take(8).collect();
            let ellipsis = if short.len() < sha256.len() {
                "…"
            } else {
                ""
            };
            let signer = match field("signer") {
                Some(signer) => format!(" signer {}", text(Some(signer))),
                None => String::new(),
            };
            format!(
                "{} sha256:{short}{ellipsis}{signer} lock {}",
                text(field("plugin")),
                text(field("lock"))
            )
        })
        .collect();
    let out = format!(
        "{} {:<13} warden {} {} plugin(s): {}",
        text(record.get("ts")),
        super::START,
        text(record.get("warden")),
        plugins.len(),
        shown.join(", ")
    );
    if out.chars().any(needs_escape) {
        escape(&out, false)
    } else {
        out
    }
}

/// Whether `c` is shown escaped: a control character (C0, DEL, C1) or a bidirectional-text
/// control.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with control characters escaped: `\n`, `\r`, `\t`, else `\u{hex}`. With
/// `backslash`, a backslash is doubled too, so an escape in the output always means a control
/// character in the record.
fn escape(text: &str, backslash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' if backslash => out.push_str("\\\\"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
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

    #[test]
    fn a_prompt_record_names_its_method() {
        let line = br#"{"seq":4,"ts":"2026-11-21T18:32:00.123Z","id":"abc","principal":"local","roles":[],"transport":"stdio","plugin":"docs","tool":"docs__review","method":"prompts/get","args":{},"outcome":"ok","duration_us":900,"prev":"00"}"#;
        assert_eq!(
            pretty(line),
            r#"2026-11-21T18:32:00.123Z ok            local/stdio docs__review (prompts/get) 0.9ms id abc args {}"#
        );
    }

    #[test]
    fn a_start_record_reads_as_one_line() {
        let line = serde_json::json!({
            "seq": 0,
            "kind": "start",
            "ts": "2026-11-21T18:32:00.123Z",
            "warden": "0.1.0",
            "plugins": [
                { "plugin": "files", "source": "files.wasm", "sha256": "1a2b3c4d5e6f", "lock": "matches" },
                { "plugin": "notes", "source": "oci://r/notes:v1", "sha256": "00ff", "resolved": "sha256:ab",
                  "signer": "key sha256:99\u{1b}[2J", "lock": "no-lock" },
            ],
            "prev": "00",
        })
        .to_string();
        assert_eq!(
            pretty(line.as_bytes()),
            r"2026-11-21T18:32:00.123Z start         warden 0.1.0 2 plugin(s): files sha256:1a2b3c4d… lock matches, notes sha256:00ff signer key sha256:99\u{1b}[2J lock no-lock"
        );
        // Whatever its fields hold, a start record is one line without control characters.
        let odd = br#"{"kind":"start","plugins":[{"plugin":"a\nb","sha256":7}]}"#;
        assert_eq!(
            pretty(odd),
            r"- start         warden - 1 plugin(s): a\nb sha256:- lock -"
        );
    }

    #[test]
    fn a_checkpoint_reads_as_one_line() {
        let line = serde_json::json!({
            "seq": 5, "kind": "checkpoint", "ts": "2026-11-21T18:32:00.123Z",
            "replica": "pod\u{1b}[2J", "head": "9e1f5da8a682d262", "count": 3, "every": 3,
            "interval_ms": 60000, "key": "bb0b20588121b8af", "sig": "AA==", "prev": "9e1f5da8a682d262",
        })
        .to_string();
        assert_eq!(
            pretty(line.as_bytes()),
            r"2026-11-21T18:32:00.123Z checkpoint    replica pod\u{1b}[2J, 3 record(s) since the last, head 9e1f5da8…, key bb0b20588121b8af"
        );
    }

    #[test]
    fn control_characters_in_a_record_are_escaped() {
        let line = serde_json::json!({
            "ts": "2026-11-21T18:32:00.123Z",
            "outcome": "invalid",
            "principal": "local",
            "transport": "stdio",
            "tool": "x\n2026-11-21T18:32:00.124Z ok local/stdio forged\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}",
            "id": "a\\nb",
            "args": { "k": "\u{85}\u{7f}" },
            "error": "unknown tool\r",
        })
        .to_string();
        let shown = pretty(line.as_bytes());
        assert!(
            !shown.chars().any(needs_escape),
            "control characters reached the output: {shown:?}"
        );
        assert!(shown.contains(r"x\n2026-11-21T18:32:00.124Z ok local/stdio forged\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}"), "{shown}");
        assert!(shown.contains(r"id a\\nb"), "{shown}");
        assert!(shown.contains(r"\u{85}\u{7f}"), "{shown}");
        assert!(shown.ends_with(r"error: unknown tool\r"), "{shown}");
        assert_eq!(
            pretty(b"bad\x1b[31m\nline"),
            r"(not a record) bad\u{1b}[31m\nline"
        );
    }
}
