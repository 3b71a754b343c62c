//! What differs between a lock and what would be served now, readably.

use std::fmt::{self, Write as _};

use serde_json::Value;

use super::{Field, Lock, LockedPlugin, LockedText, LockedTool, TextKind};

/// One plugin's drift from the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginDrift {
    /// The plugin's name.
    pub plugin: String,
    /// What changed, in a stable order.
    pub changes: Vec<Change>,
}

/// One change to a plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The plugin is served but not in the lock.
    PluginAdded,
    /// The plugin is in the lock but not in the manifest.
    PluginRemoved,
    /// The component's digest changed.
    Component { old: String, new: String },
    /// An `oci://` tag resolves to another manifest than the lock's (`sha256:...` each). The
    /// moved component is not pulled.
    Moved {
        reference: String,
        old: String,
        new: String,
    },
    /// A tool is served that the lock does not have.
    ToolAdded { tool: String, description: String },
    /// A tool of the lock is not served any more.
    ToolRemoved { tool: String },
    /// A field of a tool changed.
    Field {
        tool: String,
        field: Field,
        old: Option<Value>,
        new: Option<Value>,
    },
    /// A prompt, resource or template is served that the lock does not have.
    TextAdded {
        kind: TextKind,
        key: String,
        descriptor: Value,
    },
    /// A prompt, resource or template of the lock is not served any more.
    TextRemoved { kind: TextKind, key: String },
    /// A prompt's, resource's or template's descriptor changed.
    TextChanged {
        kind: TextKind,
        key: String,
        old: Value,
        new: Value,
    },
}

impl PluginDrift {
    /// Whether the plugin is only in the lock.
    pub fn is_removed(&self) -> bool {
        self.changes == [Change::PluginRemoved]
    }
}

pub(super) fn diff(lock: &Lock, current: &Lock) -> Vec<PluginDrift> {
    let mut names: Vec<&String> = lock.plugins.keys().chain(current.plugins.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let changes = match (lock.plugins.get(name), current.plugins.get(name)) {
                (Some(old), Some(new)) => {
                    let mut changes = plugin_changes(old, new);
                    if lock.pins_texts() {
                        for kind in TextKind::ALL {
                            text_changes(kind, kind.of(old), kind.of(new), &mut changes);
                        }
                    }
                    changes
                }
                (None, Some(new)) => {
                    let mut changes = vec![Change::PluginAdded];
                    changes.extend(new.tools.iter().map(|(tool, t)| added(tool, t)));
                    for kind in TextKind::ALL {
                        let entries = kind.of(new).iter();
                        changes.extend(entries.map(|(key, t)| text_added(kind, key, t)));
                    }
                    changes
                }
                (Some(_), None) => vec![Change::PluginRemoved],
                (None, None) => Vec::new(),
            };
            (!changes.is_empty()).then(|| PluginDrift {
                plugin: name.clone(),
                changes,
            })
        })
        .collect()
}

fn added(tool: &str, locked: &LockedTool) -> Change {
    Change::ToolAdded {
        tool: tool.to_owned(),
        description: locked.description.clone(),
    }
}

fn text_added(kind: TextKind, key: &str, locked: &LockedText) -> Change {
    Change::TextAdded {
        kind,
        key: key.to_owned(),
        descriptor: locked.value(),
    }
}

/// The prompts, resources or templates (`kind`) added, removed or changed from `old` to `new`.
fn text_changes(
    kind: TextKind,
    old: &std::collections::BTreeMap<String, LockedText>,
    new: &std::collections::BTreeMap<String, LockedText>,
    changes: &mut Vec<Change>,
) {
    for (key, locked) in old {
        match new.get(key) {
            None => changes.push(Change::TextRemoved {
                kind,
                key: key.clone(),
            }),
            Some(now) if now.descriptor_sha256 != locked.descriptor_sha256 => {
                changes.push(Change::TextChanged {
                    kind,
                    key: key.clone(),
                    old: locked.value(),
                    new: now.value(),
                })
            }
            Some(_) => {}
        }
    }
    for (key, locked) in new {
        if !old.contains_key(key) {
            changes.push(text_added(kind, key, locked));
        }
    }
}

fn plugin_changes(old: &LockedPlugin, new: &LockedPlugin) -> Vec<Change> {
    let mut changes = Vec::new();
    if let (Some(was), Some(now)) = (&old.resolved, &new.resolved)
        && was != now
        && old.source == new.source
    {
        changes.push(Change::Moved {
            reference: new.source.clone(),
            old: was.clone(),
            new: now.clone(),
        });
    }
    if old.sha256 != new.sha256 {
        changes.push(Change::Component {
            old: old.sha256.clone(),
            new: new.sha256.clone(),
        });
    }
    for (tool, locked) in &old.tools {
        let Some(now) = new.tools.get(tool) else {
            changes.push(Change::ToolRemoved { tool: tool.clone() });
            continue;
        };
        for field in Field::ALL {
            let (old_value, old_digest) = locked.field(field);
            let (new_value, new_digest) = now.field(field);
            if old_digest != new_digest {
                changes.push(Change::Field {
                    tool: tool.clone(),
                    field,
                    old: old_value,
                    new: new_value,
                });
            }
        }
    }
    for (tool, locked) in &new.tools {
        if !old.tools.contains_key(tool) {
            changes.push(added(tool, locked));
        }
    }
    changes
}

impl fmt::Display for PluginDrift {
    /// The plugin's changes, one or more indented lines each.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plugin `{}`:", self.plugin)?;
        for change in &self.changes {
            match change {
                Change::PluginAdded => writeln!(f, "  new plugin (not in the lock)")?,
                Change::PluginRemoved => {
                    writeln!(f, "  removed (in the lock, not in the manifest)")?
                }
                Change::Component { old, new } => {
                    writeln!(f, "  component digest changed: sha256 {old} -> {new}")?
                }
                Change::Moved {
                    reference,
                    old,
                    new,
                } => writeln!(
                    f,
                    "  the tag moved: {reference} was {old} (warden.lock), the registry now has {new}; not pulled"
                )?,
                Change::ToolAdded { tool, description } => {
                    writeln!(f, "  tool `{tool}`: new (not in the lock); description:")?;
                    lines(f, "    + ", description)?;
                }
                Change::ToolRemoved { tool } => {
                    writeln!(f, "  tool `{tool}`: removed (in the lock, not served now)")?
                }
                Change::TextAdded {
                    kind,
                    key,
                    descriptor,
                } => {
                    writeln!(f, "  {} `{key}`: new (not in the lock)", kind.noun())?;
                    if let Some(Value::String(description)) = descriptor.get("description") {
                        writeln!(f, "    description:")?;
                        lines(f, "    + ", description)?;
                    }
                }
                Change::TextRemoved { kind, key } => writeln!(
                    f,
                    "  {} `{key}`: removed (in the lock, not served now)",
                    kind.noun()
                )?,
                Change::TextChanged {
                    kind,
                    key,
                    old,
                    new,
                } => text_changed(f, kind.noun(), key, old, new)?,
                Change::Field {
                    tool,
                    field,
                    old,
                    new,
                } => {
                    let what = field.key().replace('_', " ");
                    writeln!(f, "  tool `{tool}`: {what} changed")?;
                    match (field, old, new) {
                        (
                            Field::Description,
                            Some(Value::String(old)),
                            Some(Value::String(new)),
                        ) => {
                            lines(f, "    - ", old)?;
                            lines(f, "    + ", new)?;
                        }
                        _ => {
                            let mut out = Vec::new();
                            json_diff(
                                "",
                                old.as_ref().unwrap_or(&Value::Null),
                                new.as_ref().unwrap_or(&Value::Null),
                                &mut out,
                            );
                            for line in out {
                                writeln!(f, "    {line}")?;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A changed descriptor, a field at a time: a changed text as `-`/`+` lines, anything else
/// (arguments) by JSON Pointer.
fn text_changed(
    f: &mut fmt::Formatter<'_>,
    noun: &str,
    key: &str,
    old: &Value,
    new: &Value,
) -> fmt::Result {
    let empty = serde_json::Map::new();
    let (a, b) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut fields: Vec<&String> = a.keys().chain(b.keys()).collect();
    fields.sort();
    fields.dedup();
    for field in fields {
        let (was, now) = (a.get(field), b.get(field));
        if was == now {
            continue;
        }
        let what = match field.as_str() {
            "mimeType" => "MIME type",
            "uriTemplate" => "URI template",
            other => other,
        };
        writeln!(f, "  {noun} `{key}`: {what} changed")?;
        let is_text = |v: Option<&Value>| v.is_none_or(Value::is_string);
        match is_text(was) && is_text(now) {
            true => {
                for (sign, value) in [("-", was), ("+", now)] {
                    match value.and_then(Value::as_str) {
                        Some(text) => lines(f, &format!("    {sign} "), text)?,
                        None => writeln!(f, "    {sign} (none)")?,
                    }
                }
            }
            false => {
                let mut out = Vec::new();
                json_diff(
                    "",
                    was.unwrap_or(&Value::Null),
                    now.unwrap_or(&Value::Null),
                    &mut out,
                );
                for line in out {
                    writeln!(f, "    {line}")?;
                }
            }
        }
    }
    Ok(())
}

/// Each line of `text` after `prefix` (one line for empty text).
fn lines(f: &mut fmt::Formatter<'_>, prefix: &str, text: &str) -> fmt::Result {
    if text.is_empty() {
        return writeln!(f, "{prefix}");
    }
    for line in text.lines() {
        writeln!(f, "{prefix}{line}")?;
    }
    Ok(())
}

/// The differences between two JSON values, one line each, by JSON Pointer.
pub(super) fn json_diff(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let here = format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => json_diff(&here, x, y, out),
                    (None, Some(y)) => out.push(format!("+ {here}: {}", short(y))),
                    (Some(x), None) => out.push(format!("- {here}: {}", short(x))),
                    (None, None) => {}
                }
            }
        }
        _ if old == new => {}
        _ => {
            let at = if path.is_empty() { "/" } else { path };
            let mut line = String::new();
            let _ = write!(line, "~ {at}: {} -> {}", short(old), short(new));
            out.push(line);
        }
    }
}

/// `value` as compact JSON, cut to 200 characters.
fn short(value: &Value) -> String {
    let text = serde_json::to_string(&super::canonical(value)).unwrap_or_default();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}
