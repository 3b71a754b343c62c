//! What the gate enforces, as the manifest says it: roles, rates, concurrency, argument caps,
//! output filters and the audit log. `plugin.rs` and `validate.rs` call in here for their keys.

use std::ops::RangeInclusive;
use std::path::Path;

use toml::de::DeValue;

use super::Plugin;
use super::model::{
    Audit, AuditKey, BUILTIN_DETECTORS, CustomDetector, DETECTOR_GROUPS, Filters, GlobalLimits,
    OutputOverflow, PluginPolicy, Rate, SECRETS_DETECTOR,
};
use super::network::SecretValue;
use super::plugin::size;
use super::reader::{Context, Table, Value};
use super::validate::resolve;

/// Reads the gate's keys of one `[plugins.NAME]` table. Names in `redact` are checked later,
/// by [`check_redact`], once `[filters]` is known.
pub(super) fn plugin_policy(table: &Table<'_, '_>) -> PluginPolicy {
    let defaults = PluginPolicy::default();
    PluginPolicy {
        roles: table.get("roles").and_then(|v| roles(&v)),
        rate: table.get("rate").and_then(|v| rate(&v)),
        tool_rate: table.get("tool_rate").and_then(|v| rate(&v)),
        concurrency: table
            .get("concurrency")
            .and_then(|v| int_in(&v, "concurrency", PluginPolicy::CONCURRENCY_RANGE)),
        queue: table
            .get("queue")
            .and_then(|v| int_in(&v, "queue", PluginPolicy::QUEUE_RANGE))
            .unwrap_or(PluginPolicy::DEFAULT_QUEUE),
        redact: table.get("redact").and_then(|v| detector_list(&v)),
        overflow: table
            .get("max_output_mode")
            .and_then(|v| overflow(&v))
            .unwrap_or(defaults.overflow),
        max_events: table
            .get("max_events")
            .and_then(|v| int_in(&v, "max_events", PluginPolicy::MAX_EVENTS_RANGE))
            .unwrap_or(defaults.max_events),
        max_event_bytes: table
            .get("max_event_bytes")
            .and_then(|v| size(&v, "max_event_bytes", PluginPolicy::MAX_EVENT_BYTES_RANGE))
            .unwrap_or(defaults.max_event_bytes),
        approval: table
            .get("approval")
            .and_then(|v| super::approval::approval(&v))
            .unwrap_or(defaults.approval),
        data: table
            .get("data")
            .and_then(|v| super::approval::data(&v))
            .unwrap_or(defaults.data),
    }
}

/// `roles = ["reader", "writer"]`: non-empty names without spaces or control characters,
/// each once. `"*"` means every principal.
pub(super) fn roles(v: &Value<'_, '_>) -> Option<Vec<String>> {
    let items = v.array()?;
    let strings: Vec<Option<String>> = items.iter().map(Value::string).collect();
    let mut ok = strings.iter().all(Option::is_some);
    let roles: Vec<String> = strings.into_iter().flatten().collect();
    if ok {
        for (index, message) in super::names::check_roles(&roles) {
            items[index].error(message);
            ok = false;
        }
    }
    ok.then_some(roles)
}

/// `{ per_minute = 120, burst = 20 }`; `burst` defaults to `per_minute`.
fn rate(v: &Value<'_, '_>) -> Option<Rate> {
    let table = match v.raw() {
        DeValue::Table(_) => v.table()?,
        _ => {
            v.type_error("a table such as { per_minute = 120, burst = 20 }");
            return None;
        }
    };
    let per_minute = table
        .require("per_minute")
        .and_then(|v| int_in(&v, "per_minute", Rate::RANGE));
    let burst = table.get("burst").map(|v| int_in(&v, "burst", Rate::RANGE));
    table.finish();
    let per_minute = per_minute?;
    Some(Rate {
        per_minute,
        burst: match burst {
            Some(burst) => burst?,
            None => per_minute,
        },
    })
}

/// `max_output_mode = "refuse" | "truncate"`.
fn overflow(v: &Value<'_, '_>) -> Option<OutputOverflow> {
    let mode = v.string()?;
    match mode.as_str() {
        "refuse" => Some(OutputOverflow::Refuse),
        "truncate" => Some(OutputOverflow::Truncate),
        _ => {
            v.error(format!(
                "invalid max_output_mode {mode:?}: expected \"refuse\" or \"truncate\""
            ));
            None
        }
    }
}

/// An integer within `range`, converted to `T`.
pub(super) fn int_in<T>(v: &Value<'_, '_>, what: &str, range: RangeInclusive<T>) -> Option<T>
where
    T: TryFrom<i128> + Copy + PartialOrd + std::fmt::Display,
{
    let n = v.integer()?;
    match T::try_from(n) {
        Ok(value) if range.contains(&value) => Some(value),
        _ => {
            v.error(format!(
                "{what} must be between {} and {}, got {n}",
                range.start(),
                range.end()
            ));
            None
        }
    }
}

/// A list of detector names, with groups (`api-key`) expanded, each once, in order. Names
/// are not checked here (custom detectors may not be known yet): see [`check_redact`].
fn detector_list(v: &Value<'_, '_>) -> Option<Vec<String>> {
    let items = v.array()?;
    let mut names: Vec<String> = Vec::new();
    let mut ok = true;
    for item in &items {
        let Some(name) = item.string() else {
            ok = false;
            continue;
        };
        let members: Vec<String> = match DETECTOR_GROUPS.iter().find(|(group, _)| *group == name) {
            Some((_, members)) => members.iter().map(|m| (*m).to_owned()).collect(),
            None => vec![name],
        };
        for member in members {
            if !names.contains(&member) {
                names.push(member);
            }
        }
    }
    ok.then_some(names)
}

/// `[limits]`, with its shared store if it names one.
pub(super) fn limits(table: &Table<'_, '_>) -> (GlobalLimits, Option<super::LimitStore>) {
    let d = GlobalLimits::default();
    let limits = GlobalLimits {
        max_argument_bytes: table
            .get("max_argument_bytes")
            .and_then(|v| size(&v, "max_argument_bytes", GlobalLimits::BYTES_RANGE))
            .unwrap_or(d.max_argument_bytes),
        max_depth: table
            .get("max_depth")
            .and_then(|v| int_in(&v, "max_depth", GlobalLimits::DEPTH_RANGE))
            .unwrap_or(d.max_depth),
        max_string: table
            .get("max_string")
            .and_then(|v| size(&v, "max_string", GlobalLimits::BYTES_RANGE))
            .unwrap_or(d.max_string),
        max_array: table
            .get("max_array")
            .and_then(|v| int_in(&v, "max_array", GlobalLimits::ARRAY_RANGE))
            .unwrap_or(d.max_array),
        tool_rate: table.get("tool_rate").and_then(|v| rate(&v)),
    };
    let store = super::shared::store(table);
    table.finish();
    (limits, store)
}

/// `[filters]`.
pub(super) fn filters(table: &Table<'_, '_>) -> Filters {
    let mut custom: Vec<CustomDetector> = Vec::new();
    if let Some(items) = table.get("custom").and_then(|v| v.array()) {
        for item in &items {
            if let Some(detector) = custom_detector(item, &custom) {
                custom.push(detector);
            }
        }
    }
    let redact = table.get("redact").and_then(|v| {
        let names = detector_list(&v)?;
        let mut ok = true;
        for name in &names {
            if let Err(message) = check_detector(name, &custom) {
                v.error(message);
                ok = false;
            }
        }
        ok.then_some(names)
    });
    table.finish();
    Filters { redact, custom }
}

/// One item of `custom`: `{ name = "employee-id", pattern = "EMP-[0-9]{6}" }`.
fn custom_detector(item: &Value<'_, '_>, seen: &[CustomDetector]) -> Option<CustomDetector> {
    let table = match item.raw() {
        DeValue::Table(_) => item.table()?,
        _ => {
            item.type_error(
                "a table such as { name = \"employee-id\", pattern = \"EMP-[0-9]{6}\" }",
            );
            return None;
        }
    };
    let name = table.require("name").and_then(|v| {
        let name = v.string()?;
        let shaped = name.len() <= 32
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let taken = BUILTIN_DETECTORS.contains(&name.as_str())
            || name == SECRETS_DETECTOR
            || DETECTOR_GROUPS.iter().any(|(group, _)| *group == name);
        if !shaped {
            v.error(format!(
                "invalid detector name {name:?}: expected a lowercase letter, then up to 31 lowercase letters, digits or `-`"
            ));
            None
        } else if taken {
            v.error(format!("detector name {name:?} is taken by a built-in detector"));
            None
        } else if seen.iter().any(|d| d.name == name) {
            v.error(format!("detector name {name:?} is already used"));
            None
        } else {
            Some(name)
        }
    });
    let pattern = table.require("pattern").and_then(|v| {
        let pattern = v.string()?;
        if pattern.is_empty() {
            v.error("pattern must not be empty");
            return None;
        }
        match regex::RegexBuilder::new(&pattern)
            .size_limit(1 << 20)
            .build()
        {
            Ok(regex) if regex.is_match("") => {
                v.error(format!("pattern {pattern:?} matches the empty string"));
                None
            }
            Ok(_) => Some(pattern),
            Err(e) => {
                let reason = e.to_string().replace('\n', " ");
                v.error(format!("invalid regular expression {pattern:?}: {reason}"));
                None
            }
        }
    });
    table.finish();
    Some(CustomDetector {
        name: name?,
        pattern: pattern?,
        location: item.location(),
    })
}

/// Whether `name` is a detector: built-in, `secrets`, or one of `custom`.
fn check_detector(name: &str, custom: &[CustomDetector]) -> Result<(), String> {
    if BUILTIN_DETECTORS.contains(&name)
        || name == SECRETS_DETECTOR
        || custom.iter().any(|d| d.name == name)
    {
        return Ok(());
    }
    let mut known: Vec<&str> = BUILTIN_DETECTORS.to_vec();
    known.extend(DETECTOR_GROUPS.iter().map(|(group, _)| *group));
    known.push(SECRETS_DETECTOR);
    known.extend(custom.iter().map(|d| d.name.as_str()));
    Err(format!(
        "unknown detector {name:?}; expected one of {}",
        known.join(", ")
    ))
}

/// Checks the names in each plugin's `redact` against the built-in and custom detectors.
pub(super) fn check_redact(cx: &Context<'_>, plugins: &[Plugin], filters: &Filters) {
    for plugin in plugins {
        for name in plugin.policy.redact.iter().flatten() {
            if let Err(message) = check_detector(name, &filters.custom) {
                cx.push(plugin.location_of("redact").diagnostic(message));
            }
        }
    }
}

/// `[audit]`.
pub(super) fn audit(table: &Table<'_, '_>, dir: &Path) -> Option<Audit> {
    let path = table.require("path").and_then(|v| {
        let raw = v.string()?;
        let path = resolve(&v, &raw, dir)?;
        if path.is_dir() {
            v.error(format!(
                "audit path {raw:?} is a directory; name a file such as \"audit/warden.jsonl\""
            ));
            return None;
        }
        Some(path)
    });
    let rotate = table
        .get("rotate")
        .and_then(|v| size(&v, "rotate", Audit::ROTATE_RANGE))
        .unwrap_or(Audit::DEFAULT_ROTATE);
    let fsync = table.get("fsync").and_then(|v| match v.raw() {
        DeValue::Boolean(b) => Some(*b),
        _ => {
            v.type_error("true or false");
            None
        }
    });
    let refusal_rate = table
        .get("refusal_rate")
        .and_then(|v| rate(&v))
        .unwrap_or(Audit::DEFAULT_REFUSAL_RATE);
    let replica = match table.get("replica") {
        Some(v) => v.string().and_then(|id| match check_replica(&id) {
            Ok(()) => Some(id),
            Err(message) => {
                v.error(message);
                None
            }
        }),
        None => Some(host_name()),
    };
    let signing_key = table.get("signing_key").and_then(|v| audit_key(&v, dir));
    let checkpoint_every = table
        .get("checkpoint_every")
        .and_then(|v| int_in(&v, "checkpoint_every", Audit::CHECKPOINT_EVERY_RANGE))
        .unwrap_or(Audit::DEFAULT_CHECKPOINT_EVERY);
    let checkpoint_interval = table
        .get("checkpoint_interval")
        .and_then(|v| {
            super::network::duration(&v, "checkpoint_interval", Audit::MAX_CHECKPOINT_INTERVAL)
        })
        .unwrap_or(Audit::DEFAULT_CHECKPOINT_INTERVAL);
    let ship = table
        .get("ship")
        .map(|v| super::ship::ships(&v, dir))
        .unwrap_or_default();
    table.finish();
    Some(Audit {
        path: path?,
        rotate,
        fsync: fsync.unwrap_or(false),
        refusal_rate,
        replica: replica?,
        signing_key,
        checkpoint_every,
        checkpoint_interval,
        ship,
    })
}

/// A replica id: 1 to 253 of `[A-Za-z0-9._-]` (a host name fits; it is one line of the bytes a
/// checkpoint signs).
fn check_replica(id: &str) -> Result<(), String> {
    if !id.is_empty()
        && id.len() <= 253
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Ok(())
    } else {
        Err(format!(
            "invalid replica {id:?}: 1 to 253 letters, digits, `.`, `_` or `-` (a host name fits)"
        ))
    }
}

/// This machine's host name, the default replica id; `localhost` when it has none usable.
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let done = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    let len = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    match std::str::from_utf8(&buffer[..len]) {
        Ok(name) if done == 0 && check_replica(name).is_ok() => name.to_owned(),
        _ => "localhost".to_owned(),
    }
}

/// `signing_key`: a PEM `PRIVATE KEY` inline (typically `"${AUDIT_SIGNING_KEY}"`) or the path
/// of a file holding one.
fn audit_key(v: &Value<'_, '_>, dir: &Path) -> Option<AuditKey> {
    const HOW: &str = "make one with `openssl genpkey -algorithm ed25519 -out audit.key`";
    let raw = v.string()?;
    let (pem, file) = if raw.trim_start().starts_with("-----BEGIN") {
        (raw, None)
    } else {
        let path = resolve(v, &raw, dir)?;
        match std::fs::read_to_string(&path) {
            Ok(text) => (text, Some(path)),
            Err(e) => {
                v.error(format!("cannot read the signing key {raw:?}: {e}; {HOW}"));
                return None;
            }
        }
    };
    if !pem.contains("-----BEGIN PRIVATE KEY-----") {
        v.error(format!(
            "the signing key is not a PEM `PRIVATE KEY` (PKCS#8 Ed25519); {HOW}"
        ));
        return None;
    }
    Some(AuditKey {
        pem: SecretValue::new(pem),
        file,
    })
}

/// Role names of `[server] roles`; see [`roles`].
pub(super) fn server_roles(table: &Table<'_, '_>) -> Vec<String> {
    table
        .get("roles")
        .and_then(|v| roles(&v))
        .unwrap_or_default()
}

/// Glob keys of `[plugins.NAME.tools]`: `[a-z0-9-]` with `*` and `?`.
pub(super) fn check_glob(pattern: &str) -> Result<(), String> {
    if pattern
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'*' | b'?'))
    {
        Ok(())
    } else {
        Err(format!(
            "invalid glob {pattern:?}: function names are kebab-case, so a glob holds lowercase letters, digits, `-`, `*` and `?`"
        ))
    }
}

impl PluginPolicy {
    /// What the gate enforces for the plugin, in one line, as `warden check` prints it.
    pub fn summary(&self) -> String {
        let rate = |rate: Option<Rate>| match rate {
            Some(r) => format!("{}/min burst {}", r.per_minute, r.burst),
            None => "unlimited".to_owned(),
        };
        let mut parts = vec![
            match &self.roles {
                Some(roles) => format!("roles {}", roles.join(", ")),
                None => "open to every principal".to_owned(),
            },
            format!("rate {}", rate(self.rate)),
        ];
        if self.tool_rate.is_some() {
            parts.push(format!("tool rate {}", rate(self.tool_rate)));
        }
        if let Some(limit) = self.concurrency {
            parts.push(format!("concurrency {limit} (queue {})", self.queue));
        }
        if let Some(redact) = &self.redact {
            parts.push(format!("redact {}", redact.join(", ")));
        }
        if self.overflow == OutputOverflow::Truncate {
            parts.push("truncates large output".to_owned());
        }
        parts.join("; ")
    }
}
