//! What a record becomes on the way out: an RFC 5424 syslog message holding the record's line,
//! an ArcSight CEF line, or an OCSF API Activity event. The mappings are documented in
//! docs/MANIFEST.md ("Audit shipping").

use serde_json::{Map, Value, json};

use super::tail::Line;

/// The record's kind: `call` for a call's record (which has none), else its `kind`
/// (`start`, `checkpoint`, ...).
pub(super) fn kind(record: &Value) -> &str {
    record.get("kind").and_then(Value::as_str).unwrap_or("call")
}

fn str_of<'v>(record: &'v Value, key: &str) -> Option<&'v str> {
    record.get(key).and_then(Value::as_str)
}

/// The MCP method of a call's record: `tools/call` unless it says otherwise.
fn method(record: &Value) -> &str {
    str_of(record, "method").unwrap_or("tools/call")
}

/// How grave an outcome is, on CEF's 0-10 scale.
fn cef_severity(record: &Value) -> u8 {
    match str_of(record, "outcome") {
        None | Some("ok" | "input-required") => 3,
        Some("denied" | "approval-invalid") => 8,
        Some("rate-limited" | "invalid" | "dropped" | "approval-declined") => 6,
        Some(_) => 5,
    }
}

/// The record's `ts` (RFC 3339, UTC, as warden writes it) in milliseconds since the epoch.
pub(super) fn epoch_ms(record: &Value) -> Option<i64> {
    crate::audit::epoch_millis(str_of(record, "ts")?)
}

/// CEF header field: `\` and `|` escaped.
fn cef_header(text: &str) -> String {
    text.replace('\\', "\\\\").replace('|', "\\|")
}

/// CEF extension value: `\`, `=` and line breaks escaped.
fn cef_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// The record as one CEF line:
/// `CEF:0|warden|warden|VERSION|KIND:OUTCOME|NAME|SEVERITY|EXTENSIONS`.
pub(super) fn cef(line: &Line, record: &Value) -> String {
    let kind = kind(record);
    let outcome = str_of(record, "outcome");
    let (signature, name) = match (kind, outcome) {
        ("call", Some(outcome)) => (
            format!("{}:{outcome}", method(record)),
            format!("{} {outcome}", method(record)),
        ),
        (kind, _) => (kind.to_owned(), format!("audit {kind}")),
    };
    let mut ext: Vec<(&str, String)> = Vec::new();
    if let Some(ms) = epoch_ms(record) {
        ext.push(("rt", ms.to_string()));
    }
    ext.push(("cn1Label", "seq".to_owned()));
    ext.push(("cn1", line.seq.to_string()));
    if let Some(principal) = str_of(record, "principal") {
        ext.push(("suser", principal.to_owned()));
    }
    if let Some(roles) = record.get("roles").and_then(Value::as_array) {
        let roles: Vec<&str> = roles.iter().filter_map(Value::as_str).collect();
        if !roles.is_empty() {
            ext.push(("cs1Label", "roles".to_owned()));
            ext.push(("cs1", roles.join(",")));
        }
    }
    if kind == "call" {
        ext.push(("act", method(record).to_owned()));
    }
    if let Some(tool) = str_of(record, "tool") {
        ext.push(("cs2Label", "tool".to_owned()));
        ext.push(("cs2", tool.to_owned()));
    }
    if let Some(plugin) = str_of(record, "plugin") {
        ext.push(("cs3Label", "plugin".to_owned()));
        ext.push(("cs3", plugin.to_owned()));
    }
    if let Some(id) = str_of(record, "id") {
        ext.push(("externalId", id.to_owned()));
    }
    if let Some(transport) = str_of(record, "transport") {
        ext.push(("app", transport.to_owned()));
    }
    if let Some(outcome) = outcome {
        ext.push(("outcome", outcome.to_owned()));
    }
    if let Some(error) = str_of(record, "error") {
        ext.push(("msg", error.to_owned()));
    }
    if let Some(us) = record.get("duration_us").and_then(Value::as_u64) {
        ext.push(("cn2Label", "durationUs".to_owned()));
        ext.push(("cn2", us.to_string()));
    }
    if let Some(bytes) = record.get("output_bytes").and_then(Value::as_u64) {
        ext.push(("out", bytes.to_string()));
    }
    if let Some(prev) = str_of(record, "prev") {
        ext.push(("cs4Label", "prev".to_owned()));
        ext.push(("cs4", prev.to_owned()));
    }
    let extensions: Vec<String> = ext
        .iter()
        .map(|(key, value)| format!("{key}={}", cef_value(value)))
        .collect();
    format!(
        "CEF:0|warden|warden|{}|{}|{}|{}|{}",
        cef_header(env!("CARGO_PKG_VERSION")),
        cef_header(&signature),
        cef_header(&name),
        cef_severity(record),
        extensions.join(" ")
    )
}

/// The record as an OCSF API Activity event (class 6003). The whole record is kept under
/// `unmapped.warden`, so nothing of it is lost in the mapping.
pub(super) fn ocsf(line: &Line, record: &Value) -> Value {
    let kind = kind(record);
    let outcome = str_of(record, "outcome");
    let (activity_id, activity_name) = match (kind, method(record)) {
        ("call", "prompts/get" | "resources/read" | "completion/complete") => (2, "Read"),
        ("call", _) => (99, "Other"),
        _ => (99, "Other"),
    };
    let ok = matches!(outcome, None | Some("ok" | "input-required"));
    let severity_id = match cef_severity(record) {
        0..=3 => 1,
        4..=5 => 2,
        6..=7 => 3,
        _ => 4,
    };
    let mut event = Map::new();
    event.insert("class_uid".into(), json!(6003));
    event.insert("class_name".into(), json!("API Activity"));
    event.insert("category_uid".into(), json!(6));
    event.insert("category_name".into(), json!("Application Activity"));
    event.insert("activity_id".into(), json!(activity_id));
    event.insert("activity_name".into(), json!(activity_name));
    event.insert("type_uid".into(), json!(6003 * 100 + activity_id));
    event.insert("severity_id".into(), json!(severity_id));
    event.insert("status_id".into(), json!(if ok { 1 } else { 2 }));
    event.insert(
        "status".into(),
        json!(if ok { "Success" } else { "Failure" }),
    );
    if let Some(outcome) = outcome {
        event.insert("status_detail".into(), json!(outcome));
    }
    if let Some(ms) = epoch_ms(record) {
        event.insert("time".into(), json!(ms));
    }
    if let Some(us) = record.get("duration_us").and_then(Value::as_u64) {
        event.insert("duration".into(), json!(us / 1000));
    }
    let message = match (kind, outcome) {
        ("call", Some(outcome)) => format!(
            "{} {} {outcome}",
            method(record),
            str_of(record, "tool").unwrap_or("-")
        ),
        (kind, _) => format!("audit {kind}"),
    };
    event.insert("message".into(), json!(message));
    event.insert(
        "metadata".into(),
        json!({
            "version": "1.3.0",
            "product": {"name": "warden", "vendor_name": "warden", "version": env!("CARGO_PKG_VERSION")},
            "uid": str_of(record, "id"),
            "sequence": line.seq,
            "original_time": str_of(record, "ts"),
            "event_code": kind,
        }),
    );
    let groups: Vec<Value> = record
        .get("roles")
        .and_then(Value::as_array)
        .map(|roles| roles.iter().map(|role| json!({"name": role})).collect())
        .unwrap_or_default();
    event.insert(
        "actor".into(),
        json!({"user": {"name": str_of(record, "principal").unwrap_or("warden"), "groups": groups}}),
    );
    event.insert(
        "api".into(),
        json!({
            "operation": if kind == "call" { method(record) } else { kind },
            "service": {"name": "warden"},
            "request": {"uid": str_of(record, "id").unwrap_or_default()},
            "response": {"error": if ok { None } else { outcome }, "message": str_of(record, "error")},
        }),
    );
    event.insert(
        "src_endpoint".into(),
        json!({"svc_name": str_of(record, "transport").unwrap_or("warden")}),
    );
    if let Some(tool) = str_of(record, "tool") {
        event.insert(
            "resources".into(),
            json!([{"name": tool, "type": "tool", "group": {"name": str_of(record, "plugin")}}]),
        );
    }
    event.insert("unmapped".into(), json!({"warden": record}));
    Value::Object(event)
}

/// The RFC 5424 header and structured data of a record's message:
/// `<PRI>1 TIMESTAMP HOSTNAME warden PROCID KIND [warden@32473 seq="N"] `. Facility 13 (log
/// audit); severity 6 (informational) for a call that went through or a start record, 5
/// (notice) for every other outcome.
pub(super) fn syslog_header(line: &Line, record: &Value, hostname: &str) -> String {
    let severity = match str_of(record, "outcome") {
        None | Some("ok" | "input-required") => 6,
        Some(_) => 5,
    };
    let pri = 13 * 8 + severity;
    let ts = str_of(record, "ts")
        .filter(|ts| crate::audit::epoch_millis(ts).is_some())
        .unwrap_or("-");
    format!(
        "<{pri}>1 {ts} {hostname} warden {} {} [warden@32473 seq=\"{}\"] ",
        std::process::id(),
        header_token(kind(record)),
        line.seq
    )
}

/// A syslog header field: printable ASCII without spaces, at most 32 characters, else `-`.
fn header_token(text: &str) -> String {
    let token: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    if token.is_empty() {
        "-".to_owned()
    } else {
        token
    }
}

/// This machine's name for the syslog header (at most 255 printable characters), or `-`.
pub(super) fn hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer.
    let done = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if done != 0 {
        return "-".to_owned();
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    let name: String = String::from_utf8_lossy(&buffer[..end])
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if name.is_empty() {
        "-".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(crate::audit::epoch_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            crate::audit::epoch_millis("2026-11-21T18:32:00.123Z"),
            Some(1_795_285_920_123)
        );
        assert_eq!(
            crate::audit::epoch_millis("2024-02-29T00:00:01.5Z"),
            Some(1_709_164_801_500)
        );
        assert_eq!(crate::audit::epoch_millis("yesterday"), None);
        assert_eq!(crate::audit::epoch_millis("2026-11-21T18:32:00.éé1Z"), None);
        assert_eq!(crate::audit::epoch_millis("2026-11-21T18:32:00.Z"), None);
    }

    #[test]
    fn cef_escapes_what_it_must() {
        let record = json!({"ts": "1970-01-01T00:00:00Z", "id": "r1", "principal": "a=b|c\\d",
            "tool": "t", "outcome": "denied", "error": "line\nbreak", "transport": "http"});
        let line = Line {
            seq: 7,
            bytes: Vec::new(),
        };
        let cef = cef(&line, &record);
        assert!(cef.starts_with("CEF:0|warden|warden|"), "{cef}");
        assert!(
            cef.contains("|tools/call:denied|tools/call denied|8|"),
            "{cef}"
        );
        assert!(cef.contains("suser=a\\=b|c\\\\d"), "{cef}");
        assert!(cef.contains("msg=line\\nbreak"), "{cef}");
        assert!(cef.contains("cn1=7"), "{cef}");
    }
}
