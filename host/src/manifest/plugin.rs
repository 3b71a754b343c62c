//! `[plugins.NAME]`: a component, its limits, its grants and its per-function settings.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::Path;

use toml::de::DeValue;

use super::error::Location;
use super::model::{
    Acknowledgement, DirGrant, DirMode, Limits, Plugin, REVIEW_RULES, TextReview, ToolHints,
    ToolOverride, WARNING_CODES, WriteQuota,
};
use super::names::{
    check_function_name, check_plugin_name, check_prefix, check_tool_name, is_env_name,
};
use super::reader::Value;
use super::units::{ByteSize, parse_size};
use super::validate::{PathKind, check_path, resolve};

/// Reads one `[plugins.NAME]` entry. Returns `None` when the plugin cannot be built (its problems
/// are recorded). `tool_names` holds the override names seen so far in the manifest, to
/// report duplicates.
pub(super) fn plugin(
    entry: &Value<'_, '_>,
    dir: &Path,
    tool_names: &mut BTreeMap<String, Location>,
) -> Option<Plugin> {
    let name = entry.name();
    let name_ok = check_plugin_name(name)
        .map_err(|message| entry.key_error(message))
        .is_ok();
    let table = entry.table()?;

    let mut component_source = String::new();
    let mut oci = None;
    let component = table.require("component").and_then(|v| {
        let raw = v.string()?;
        component_source.clone_from(&raw);
        match super::oci::OciRef::parse(&raw) {
            // Pulled when the plugin is opened (`oci/`); the path is set then.
            Ok(Some(reference)) => {
                oci = Some(reference);
                return Some(std::path::PathBuf::new());
            }
            Ok(None) => {}
            Err(message) => {
                v.error(format!("{message}: `{raw}`"));
                return None;
            }
        }
        let path = resolve(&v, &raw, dir)?;
        check_path(&v, &raw, path, PathKind::File, "component file")
    });
    let sha256 = table.get("sha256").and_then(|v| sha256(&v));
    let verify = table
        .get("verify")
        .and_then(|v| super::verify::verify(&v, dir, &component_source, oci.is_some()));

    let defaults = Limits::default();
    let limits = Limits {
        fuel: table
            .get("fuel")
            .and_then(|v| fuel(&v))
            .unwrap_or(defaults.fuel),
        memory: table
            .get("memory")
            .and_then(|v| size(&v, "memory", Limits::MEMORY_RANGE))
            .unwrap_or(defaults.memory),
        timeout: table
            .get("timeout")
            .and_then(|v| super::network::duration(&v, "timeout", Limits::MAX_TIMEOUT))
            .unwrap_or(defaults.timeout),
        max_output: table
            .get("max_output")
            .and_then(|v| size(&v, "max_output", Limits::MAX_OUTPUT_RANGE))
            .unwrap_or(defaults.max_output),
    };

    let prefix = match table.get("prefix") {
        Some(v) => v.string().filter(|prefix| {
            check_prefix(prefix)
                .map_err(|message| v.error(message))
                .is_ok()
        }),
        None => Some(name.to_owned()),
    };

    let resources = table.get("resources").and_then(|v| boolean(&v));
    let sampling = table.get("sampling").and_then(|v| boolean(&v));
    let roots = table.get("roots").and_then(|v| boolean(&v));

    let mut guests = BTreeMap::new();
    let dirs = table
        .get("dirs")
        .and_then(|v| v.array())
        .map(|items| {
            items
                .iter()
                .filter_map(|item| dir_grant(item, dir, &mut guests))
                .collect()
        })
        .unwrap_or_default();

    let env = table
        .get("env")
        .and_then(|v| v.table())
        .map(|env| env.entries().iter().filter_map(env_var).collect());

    let tools = table
        .get("tools")
        .and_then(|v| v.table())
        .map(|tools| {
            tools
                .entries()
                .iter()
                .filter_map(|entry| tool_override(entry, tool_names))
                .collect()
        })
        .unwrap_or_default();
    let prompts = text_reviews(&table, "prompts");
    let uris = text_reviews(&table, "uris");
    let policy = super::policy::plugin_policy(&table);
    let allow_hosts = table
        .get("allow_hosts")
        .map(|v| super::network::allow_hosts(&v))
        .unwrap_or_default();
    let net = table
        .get("net")
        .map(|v| super::network::net_limits(&v))
        .unwrap_or_default();
    let secrets = table
        .get("secrets")
        .map(|v| super::network::secrets(&v, dir, env.as_deref().unwrap_or_default()))
        .unwrap_or_default();
    let kv = table.get("kv").and_then(|v| super::kv::grant(&v));
    let sql = table
        .get("sql")
        .and_then(|v| super::sql::sql_grant(&v, dir));
    let acknowledge = table
        .get("acknowledge")
        .and_then(|v| acknowledgements(&v))
        .unwrap_or_default();
    let icons = table
        .get("icons")
        .and_then(|v| super::icons::icons(&v))
        .unwrap_or_default();

    table.finish();
    let key_locations = table
        .entries()
        .iter()
        .map(|v| (v.name().to_owned(), v.location()))
        .collect();

    if !name_ok {
        return None;
    }
    Some(Plugin {
        name: name.to_owned(),
        component: component?,
        component_source,
        oci,
        oci_resolved: None,
        signer: None,
        verify,
        sha256,
        limits,
        prefix: prefix.unwrap_or_default(),
        resources: resources.unwrap_or(true),
        sampling: sampling.unwrap_or(false),
        roots: roots.unwrap_or(false),
        dirs,
        env: env.unwrap_or_default(),
        tools,
        prompts,
        uris,
        policy,
        allow_hosts,
        net,
        secrets,
        kv,
        sql,
        acknowledge,
        icons,
        location: entry.location(),
        key_locations,
    })
}

/// A boolean key (`resources`, `sampling`, `roots`).
pub(super) fn boolean(v: &Value<'_, '_>) -> Option<bool> {
    match v.raw() {
        DeValue::Boolean(value) => Some(*value),
        _ => {
            v.type_error("a boolean");
            None
        }
    }
}

/// `sha256 = "..."`: 64 hex digits.
fn sha256(v: &Value<'_, '_>) -> Option<[u8; 32]> {
    let s = v.string()?;
    let mut digest = [0u8; 32];
    let result = if s.len() != 64 {
        Err(format!(
            "expected 64 hexadecimal characters (a SHA-256 digest), got {}",
            s.chars().count()
        ))
    } else {
        hex::decode_to_slice(&s, &mut digest).map_err(|e| lowercase_first(&e.to_string()))
    };
    match result {
        Ok(()) => Some(digest),
        Err(message) => {
            v.error(format!("invalid sha256 {s:?}: {message}"));
            None
        }
    }
}

/// `s` with its first character in lowercase, to fit a library's message into ours.
fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|first| first.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `fuel`: an integer, or a string holding one (so `${VAR}` works), greater than 0.
fn fuel(v: &Value<'_, '_>) -> Option<u64> {
    let n = match v.raw() {
        DeValue::String(_) => {
            let s = v.string()?;
            match s.trim().replace('_', "").parse::<i128>() {
                Ok(n) => n,
                Err(_) => {
                    v.error(format!(
                        "invalid fuel {s:?}: expected a positive integer such as 1_000_000_000"
                    ));
                    return None;
                }
            }
        }
        _ => v.integer()?,
    };
    if n <= 0 {
        v.error(format!("fuel must be greater than 0, got {n}"));
        return None;
    }
    u64::try_from(n)
        .map_err(|_| v.error(format!("fuel must be at most {}, got {n}", u64::MAX)))
        .ok()
}

/// A size setting (`memory`, `max_output`): bytes as an integer, or a string such as `"64MiB"`,
/// within `range`.
pub(super) fn size(v: &Value<'_, '_>, what: &str, range: RangeInclusive<u64>) -> Option<u64> {
    let out_of_range = |got: String| {
        format!(
            "{what} must be between {} and {}, got {got}",
            ByteSize(*range.start()),
            ByteSize(*range.end())
        )
    };
    let bytes = match v.raw() {
        DeValue::Integer(_) => {
            let n = v.integer()?;
            match u64::try_from(n) {
                Ok(bytes) => bytes,
                Err(_) => {
                    v.error(out_of_range(n.to_string()));
                    return None;
                }
            }
        }
        DeValue::String(_) => {
            let s = v.string()?;
            match parse_size(&s) {
                Ok(size) => size.bytes(),
                Err(e) => {
                    v.error(format!("invalid size {s:?}: {e}"));
                    return None;
                }
            }
        }
        _ => {
            v.type_error("a size such as \"64MiB\" or a number of bytes");
            return None;
        }
    };
    if range.contains(&bytes) {
        Some(bytes)
    } else {
        v.error(out_of_range(ByteSize(bytes).to_string()));
        None
    }
}

/// One item of `dirs`: `{ host = "./data", guest = "/data", mode = "ro" }`. `guests` maps each
/// guest path seen so far in this plugin to where it was granted.
fn dir_grant(
    item: &Value<'_, '_>,
    base: &Path,
    guests: &mut BTreeMap<String, Location>,
) -> Option<DirGrant> {
    let table = match item.raw() {
        DeValue::Table(_) => item.table()?,
        _ => {
            item.type_error("a table such as { host = \"./data\", guest = \"/data\" }");
            return None;
        }
    };
    let host = table.require("host").and_then(|v| {
        let raw = v.string()?;
        let path = resolve(&v, &raw, base)?;
        check_path(&v, &raw, path, PathKind::Dir, "host directory")
    });
    let guest = table.require("guest").and_then(|v| {
        let raw = v.string()?;
        let guest = normalize_guest(&raw)
            .map_err(|message| v.error(message))
            .ok()?;
        if let Some(first) = guests.get(&guest) {
            v.error(format!(
                "guest path {guest:?} is already granted by `{}` (line {})",
                first.key, first.line
            ));
            return None;
        }
        guests.insert(guest.clone(), item.location());
        Some(guest)
    });
    let mode = match table.get("mode") {
        Some(v) => v.string().and_then(|mode| match mode.as_str() {
            "ro" => Some(DirMode::ReadOnly),
            "rw" => Some(DirMode::ReadWrite),
            _ => {
                v.error(format!(
                    "invalid mode {mode:?}: expected \"ro\" (read-only) or \"rw\" (read-write)"
                ));
                None
            }
        }),
        None => Some(DirMode::default()),
    };
    let quota = write_quota(&table, mode);
    table.finish();
    Some(DirGrant {
        host: host?,
        guest: guest?,
        mode: mode?,
        quota,
        location: item.location(),
    })
}

/// `max_write` and `max_files` of a `dirs` item; they are refused on a `ro` grant, which
/// cannot write.
fn write_quota(table: &super::reader::Table<'_, '_>, mode: Option<DirMode>) -> WriteQuota {
    let defaults = WriteQuota::default();
    let writable = |v: &Value<'_, '_>| {
        if mode == Some(DirMode::ReadOnly) {
            v.key_error(format!(
                "`{}` applies only to a grant with mode = \"rw\": a read-only grant writes nothing",
                v.name()
            ));
            return false;
        }
        true
    };
    WriteQuota {
        max_write: table
            .get("max_write")
            .filter(writable)
            .and_then(|v| size(&v, "max_write", WriteQuota::MAX_WRITE_RANGE))
            .unwrap_or(defaults.max_write),
        max_files: table
            .get("max_files")
            .filter(writable)
            .and_then(|v| {
                let n = v.integer()?;
                let range = WriteQuota::MAX_FILES_RANGE;
                match u64::try_from(n) {
                    Ok(n) if range.contains(&n) => Some(n),
                    _ => {
                        v.error(format!(
                            "max_files must be between {} and {}, got {n}",
                            range.start(),
                            range.end()
                        ));
                        None
                    }
                }
            })
            .unwrap_or(defaults.max_files),
    }
}

/// An absolute guest path with `/`-separated segments, none `.` or `..`: returned without
/// repeated or trailing `/`.
fn normalize_guest(raw: &str) -> Result<String, String> {
    if !raw.starts_with('/') {
        return Err(format!(
            "guest path {raw:?} must be absolute (start with `/`)"
        ));
    }
    if raw.contains('\0') {
        return Err(format!("guest path {raw:?} contains a NUL character"));
    }
    let segments: Vec<&str> = raw
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    if segments
        .iter()
        .any(|segment| *segment == "." || *segment == "..")
    {
        return Err(format!(
            "guest path {raw:?} must not contain `.` or `..` segments"
        ));
    }
    Ok(format!("/{}", segments.join("/")))
}

/// One entry of `env`: `NAME = "value"`.
fn env_var(entry: &Value<'_, '_>) -> Option<(String, String)> {
    let name = entry.name();
    let name_ok = is_env_name(name);
    if !name_ok {
        entry.key_error(format!(
            "invalid environment variable name {name:?}: expected letters, digits and `_`, not starting with a digit"
        ));
    }
    let value = entry.string()?;
    name_ok.then(|| (name.to_owned(), value))
}

/// One `[plugins.NAME.tools.FUNCTION]` table. `tool_names` maps each override name seen so far
/// in the manifest to where it was set.
fn tool_override(
    entry: &Value<'_, '_>,
    tool_names: &mut BTreeMap<String, Location>,
) -> Option<ToolOverride> {
    let function = entry.name();
    let glob = super::model::is_glob(function);
    let function_ok = if glob {
        super::policy::check_glob(function)
    } else {
        check_function_name(function)
    }
    .map_err(|message| entry.key_error(message))
    .is_ok();
    let table = entry.table()?;
    if glob {
        // A glob table only says who may call the tools it matches.
        let roles = table.get("roles").and_then(|v| super::policy::roles(&v));
        table.finish();
        return function_ok.then(|| ToolOverride {
            function: function.to_owned(),
            name: None,
            description: None,
            roles,
            hints: ToolHints::default(),
            approval: None,
            data: None,
            accept_review: Vec::new(),
            task: None,
            icons: None,
            hidden: false,
            location: entry.location(),
        });
    }
    let name = table.get("name").and_then(|v| {
        let name = v.string()?;
        check_tool_name(&name)
            .map_err(|message| v.error(message))
            .ok()?;
        if let Some(first) = tool_names.get(&name) {
            v.error(format!(
                "tool name {name:?} is already used by `{}` (line {})",
                first.key, first.line
            ));
            return None;
        }
        tool_names.insert(name.clone(), v.value_location());
        Some(name)
    });
    let description = table.get("description").and_then(|v| v.string());
    let roles = table.get("roles").and_then(|v| super::policy::roles(&v));
    let hints = tool_hints(&table);
    let approval = table
        .get("approval")
        .and_then(|v| super::approval::approval(&v));
    let data = table.get("data").and_then(|v| super::approval::data(&v));
    let accept_review = table
        .get("accept_review")
        .and_then(|v| codes(&v, REVIEW_RULES, "review rule id"))
        .unwrap_or_default();
    let task = super::tasks::tool_task(&table);
    let icons = table.get("icons").and_then(|v| super::icons::icons(&v));
    let hidden = table.get("hidden").and_then(|v| {
        let DeValue::Boolean(value) = v.raw() else {
            v.type_error("a boolean");
            return None;
        };
        Some(*value)
    });
    table.finish();
    function_ok.then(|| ToolOverride {
        function: function.to_owned(),
        name,
        description,
        roles,
        hints,
        approval,
        data,
        accept_review,
        task,
        icons,
        hidden: hidden.unwrap_or(false),
        location: entry.location(),
    })
}

/// The tables of `[plugins.NAME.prompts]` or `[plugins.NAME.uris]` (`key`): each holds only
/// `accept_review`.
fn text_reviews(table: &super::reader::Table<'_, '_>, key: &'static str) -> Vec<TextReview> {
    let Some(entries) = table.get(key) else {
        return Vec::new();
    };
    let Some(entries) = entries.table() else {
        entries.type_error(match key {
            "prompts" => "a table of prompts, such as [plugins.NAME.prompts.PROMPT]",
            _ => "a table of URIs, such as [plugins.NAME.uris.\"notes://{id}\"]",
        });
        return Vec::new();
    };
    entries
        .entries()
        .iter()
        .filter_map(|entry| {
            let Some(settings) = entry.table() else {
                entry.type_error("a table with accept_review = [...]");
                return None;
            };
            let accept_review = settings
                .get("accept_review")
                .and_then(|v| codes(&v, REVIEW_RULES, "review rule id"))
                .unwrap_or_default();
            settings.finish();
            Some(TextReview {
                key: entry.name().to_owned(),
                accept_review,
                location: entry.location(),
            })
        })
        .collect()
}

/// The annotation keys of a `[plugins.NAME.tools.FUNCTION]` table. Each may only tighten
/// what warden derives from the grants: the loosening value is an error.
fn tool_hints(table: &super::reader::Table<'_, '_>) -> ToolHints {
    let flag = |key: &'static str, tight: bool, meaning: &str| {
        let v = table.get(key)?;
        let DeValue::Boolean(value) = v.raw() else {
            v.type_error("a boolean");
            return None;
        };
        if *value == tight {
            return Some(true);
        }
        v.error(format!(
            "{key} can only be set to {tight} ({meaning}): annotations derived from the grants can be tightened here, never loosened; remove the key to keep the derived value"
        ));
        None
    };
    ToolHints {
        read_only: flag("read_only", true, "the tool changes nothing").unwrap_or(false),
        not_destructive: flag("destructive", false, "the tool destroys nothing").unwrap_or(false),
        idempotent: flag("idempotent", true, "repeating a call changes nothing more")
            .unwrap_or(false),
        closed_world: flag(
            "open_world",
            false,
            "the tool reaches nothing outside the host",
        )
        .unwrap_or(false),
    }
}

/// `acknowledge = ["unused-grant:allow_hosts", ...]`: codes of `warden check` warnings, each
/// known and listed once.
fn acknowledgements(v: &Value<'_, '_>) -> Option<Vec<Acknowledgement>> {
    codes(v, WARNING_CODES, "warning code")
}

/// An array of codes from `known`, each listed once; an unknown one is an error at its place
/// naming the closest known code.
fn codes(v: &Value<'_, '_>, known: &[&str], what: &str) -> Option<Vec<Acknowledgement>> {
    let items = v.array()?;
    let mut out: Vec<Acknowledgement> = Vec::new();
    for item in &items {
        let Some(code) = item.string() else {
            continue;
        };
        if !known.contains(&code.as_str()) {
            let closest = known
                .iter()
                .min_by_key(|known| super::reader::edit_distance(&code, known))
                .copied()
                .unwrap_or_default();
            item.error(format!(
                "unknown {what} {code:?}; did you mean {closest:?}? (the codes are {})",
                known.join(", ")
            ));
        } else if out.iter().any(|ack| ack.code == code) {
            item.error(format!("{code:?} is listed twice"));
        } else {
            out.push(Acknowledgement {
                code,
                location: item.value_location(),
            });
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::normalize_guest;

    #[test]
    fn guest_paths_are_absolute_and_normalized() {
        assert_eq!(normalize_guest("/data"), Ok("/data".into()));
        assert_eq!(normalize_guest("/data/"), Ok("/data".into()));
        assert_eq!(normalize_guest("//a//b/"), Ok("/a/b".into()));
        assert_eq!(normalize_guest("/"), Ok("/".into()));
        assert!(normalize_guest("data").is_err());
        assert!(normalize_guest("./data").is_err());
        assert!(normalize_guest("/data/../etc").is_err());
        assert!(normalize_guest("/./data").is_err());
        assert!(normalize_guest("/da\0ta").is_err());
    }
}
