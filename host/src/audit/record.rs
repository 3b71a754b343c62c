//! One audit record: what the gate knows about a call when it is over.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How a call ended, as recorded. The names are stable: tooling may match on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The tool ran and returned a result.
    Ok,
    /// The tool ran and reported an error, or its output could not be passed on.
    ToolError,
    /// The principal may not call the tool.
    Denied,
    /// A rate limit or the plugin's concurrency cap refused the call.
    RateLimited,
    /// The tool does not exist, or the arguments broke a cap or did not match the tool's types.
    Invalid,
    /// The call hit its wall-clock limit.
    Timeout,
    /// The call used up its fuel (CPU budget).
    OutOfFuel,
    /// The call hit its memory limit.
    OutOfMemory,
    /// The plugin trapped: a panic, an abort, a stack overflow.
    Trap,
    /// The sandbox could not be prepared or instantiated (for example, the instance pool was
    /// exhausted).
    Unavailable,
    /// The client went away or cancelled the request before the call finished.
    Cancelled,
    /// Not a call: refusals over the refusal rate limit were not recorded; `dropped` says how
    /// many, `ts` when the first was, and `error` who sent them and until when.
    Dropped,
    /// The call needs a human's answer first (2026-07-28): the client was sent the question
    /// and must call again with the answer. The plugin did not run, or ran up to its question.
    InputRequired,
    /// The human (or an operator) said no, or dismissed the question: the plugin never ran.
    ApprovalDeclined,
    /// The call needs approval and nobody can be asked: the client cannot show a question and
    /// no operator channel is configured.
    ApprovalUnavailable,
    /// Nobody answered within `[approval] timeout`.
    ApprovalTimeout,
    /// The retried call's approval state was forged, tampered with, expired, or issued for
    /// another call, principal or tool.
    ApprovalInvalid,
}

impl Outcome {
    /// Every outcome, in the order of the enum (for listings such as `audit tail --outcome`).
    pub const ALL: [Outcome; 17] = [
        Outcome::Ok,
        Outcome::ToolError,
        Outcome::Denied,
        Outcome::RateLimited,
        Outcome::Invalid,
        Outcome::Timeout,
        Outcome::OutOfFuel,
        Outcome::OutOfMemory,
        Outcome::Trap,
        Outcome::Unavailable,
        Outcome::Cancelled,
        Outcome::Dropped,
        Outcome::InputRequired,
        Outcome::ApprovalDeclined,
        Outcome::ApprovalUnavailable,
        Outcome::ApprovalTimeout,
        Outcome::ApprovalInvalid,
    ];

    /// The stable name: `ok`, `tool-error`, `denied`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool-error",
            Outcome::Denied => "denied",
            Outcome::RateLimited => "rate-limited",
            Outcome::Invalid => "invalid",
            Outcome::Timeout => "timeout",
            Outcome::OutOfFuel => "out-of-fuel",
            Outcome::OutOfMemory => "out-of-memory",
            Outcome::Trap => "trap",
            Outcome::Unavailable => "unavailable",
            Outcome::Cancelled => "cancelled",
            Outcome::Dropped => "dropped",
            Outcome::InputRequired => "input-required",
            Outcome::ApprovalDeclined => "approval-declined",
            Outcome::ApprovalUnavailable => "approval-unavailable",
            Outcome::ApprovalTimeout => "approval-timeout",
            Outcome::ApprovalInvalid => "approval-invalid",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One call (or refusal), as the gate hands it to an [`AuditSink`](super::AuditSink).
///
/// Arguments are already redacted and truncated by the gate; the sink adds the sequence
/// number and the hash chain. The record borrows what the call already holds (names, the
/// arguments when nothing in them needed redacting), so writing one copies nothing twice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record<'a> {
    /// When the call arrived: RFC 3339, UTC, milliseconds (`2026-11-21T18:32:00.123Z`).
    pub ts: String,
    /// The id warden gave the call; the agent sees it in error messages.
    pub id: Cow<'a, str>,
    /// The MCP request id (JSON-RPC `id`), when the transport has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_id: Option<Value>,
    /// Who called.
    pub principal: Cow<'a, str>,
    /// The principal's roles.
    #[serde(default)]
    pub roles: Cow<'a, [String]>,
    /// How the call arrived: `stdio`, `http`, `cli`.
    pub transport: Cow<'a, str>,
    /// The plugin behind the tool, when the tool exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<Cow<'a, str>>,
    /// The tool's name, as called (for `prompts/get`, the prompt's).
    pub tool: Cow<'a, str>,
    /// The MCP method when it is not `tools/call`: `prompts/get`. Absent for a tool call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Cow<'a, str>>,
    /// The arguments: values under secret-like keys and detector hits redacted, long values
    /// truncated. `None` (`null`) when they were refused unread (too large).
    pub args: Option<Cow<'a, Map<String, Value>>>,
    /// How the call ended.
    pub outcome: Outcome,
    /// What went wrong, in detail (for operators: may name limits and internals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Time in the gate, microseconds.
    pub duration_us: u64,
    /// Fuel the plugin used, when it ran to completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Size of the result sent to the agent, serialized, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
    /// Redactions applied to the output, by detector.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub redactions: BTreeMap<String, u64>,
    /// Whether the output was truncated to fit `max_output`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// What the call did with each capability that reports it, by capability name
    /// (`{"kv": {"ops": 2, ...}}`); never a value read or written.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub usage: Map<String, Value>,
    /// The human's approval of this call, when it needed one and got it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRecord>,
    /// For outcome `dropped`: how many refusals were not recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
    /// The OpenTelemetry trace id of the request (32 hex digits), when traces are on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// Who approved a call, how, and what exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// How the question was put: `elicitation` (asked during the call, 2025-11-25),
    /// `input-required` (answered in the retried request, 2026-07-28) or `operator`
    /// (`warden approvals`).
    pub via: String,
    /// Who answered: `user` (the client's user; the client does not say who), or the
    /// operator principal's name.
    pub by: String,
    /// When the answer was taken: RFC 3339, UTC, milliseconds.
    pub at: String,
    /// SHA-256 of the canonical arguments (keys sorted, no spaces) the approval is for.
    pub args_sha256: String,
    /// Why the call asked: `approval = "ask"`, or the flow rule's reason.
    pub reason: String,
}

/// The most bytes of a name or id a record keeps (tool, principal, roles, JSON-RPC id): longer
/// ones are cut and marked with how much was cut.
pub const MAX_RECORDED_NAME: usize = 256;
/// The most bytes of a record's `error` detail.
pub const MAX_RECORDED_ERROR: usize = 2048;

/// `text` cut to at most `max` bytes (on a character boundary), followed by `…[+N bytes]`
/// naming how many bytes were cut; `text` itself, borrowed, when it fits.
pub fn bounded(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…[+{} bytes]", &text[..end], text.len() - end))
}

/// A JSON-RPC id bounded as [`bounded`]: a long string is cut; any other value whose JSON is
/// longer than [`MAX_RECORDED_NAME`] becomes its JSON text, cut.
pub fn bounded_id(id: Value) -> Value {
    match id {
        Value::String(text) if text.len() > MAX_RECORDED_NAME => {
            Value::String(bounded(&text, MAX_RECORDED_NAME).into_owned())
        }
        Value::Array(_) | Value::Object(_) => {
            let text = id.to_string();
            match bounded(&text, MAX_RECORDED_NAME) {
                Cow::Borrowed(_) => id,
                Cow::Owned(cut) => Value::String(cut),
            }
        }
        other => other,
    }
}

/// Milliseconds since the epoch of an RFC 3339 UTC timestamp `YYYY-MM-DDTHH:MM:SS[.fff]Z`, as
/// [`rfc3339`] writes them (any number of fraction digits, or none); `None` for anything else.
pub fn epoch_millis(ts: &str) -> Option<i64> {
    let b = ts.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !ts.ends_with('Z') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| ts.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let millis = match ts.get(19..ts.len() - 1) {
        Some("") => 0,
        Some(fraction) => {
            let digits = fraction.strip_prefix('.')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let padded = format!("{:0<3}", &digits[..digits.len().min(3)]);
            padded.parse::<i64>().ok()?
        }
        None => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// `time` as RFC 3339 in UTC with milliseconds: `2026-11-21T18:32:00.123Z` (years 0 to 9999).
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    // Written digit by digit: this runs for every call, and `format!` is slow at it.
    let mut out = String::with_capacity(24);
    push_digits(&mut out, year.clamp(0, 9999) as u64, 4);
    for (separator, value, width) in [
        ('-', u64::from(month), 2),
        ('-', u64::from(day), 2),
        ('T', rem / 3600, 2),
        (':', rem % 3600 / 60, 2),
        (':', rem % 60, 2),
        ('.', u64::from(since.subsec_millis()), 3),
    ] {
        out.push(separator);
        push_digits(&mut out, value, width);
    }
    out.push('Z');
    out
}

/// The last `width` decimal digits of `value`, zero-padded.
fn push_digits(out: &mut String, value: u64, width: u32) {
    for place in (0..width).rev() {
        out.push(char::from(b'0' + (value / 10u64.pow(place) % 10) as u8));
    }
}

/// The proleptic Gregorian date of day `z` since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_285_920_123);
        assert_eq!(rfc3339(t), "2026-11-21T18:32:00.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn long_names_and_ids_are_cut_on_a_character_boundary_and_marked() {
        assert!(matches!(bounded("short", 8), Cow::Borrowed("short")));
        assert_eq!(bounded("ééé", 3), "é…[+4 bytes]");
        let id = bounded_id(Value::String("x".repeat(10_000)));
        let id = id.as_str().expect("a string");
        assert!(id.len() < MAX_RECORDED_NAME + 32, "{}", id.len());
        assert!(id.ends_with(&format!("…[+{} bytes]", 10_000 - MAX_RECORDED_NAME)));
        assert_eq!(bounded_id(serde_json::json!(7)), serde_json::json!(7));
    }

    #[test]
    fn outcomes_serialize_to_their_stable_names() {
        for outcome in [
            Outcome::Ok,
            Outcome::ToolError,
            Outcome::RateLimited,
            Outcome::OutOfFuel,
            Outcome::Cancelled,
        ] {
            assert_eq!(
                serde_json::to_value(outcome).expect("serialize"),
                Value::String(outcome.as_str().to_owned())
            );
        }
    }
}
