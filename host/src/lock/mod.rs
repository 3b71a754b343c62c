//! `warden.lock`: what the model is shown, pinned.
//!
//! The lock records, per plugin, the SHA-256 digest of its component and where the manifest
//! says it is (for an `oci://` tag, also the manifest digest it resolved to, which later
//! starts hold it to: `host/` refuses a tag that moved); per tool, its name, description, input and output schemas and annotations
//! exactly as `tools/list` serves them (the catalog's descriptors, after every override and
//! every grant-derived note), each with the SHA-256 digest of its canonical JSON (object keys
//! sorted, no whitespace). Since version 2 it also pins, per plugin, each prompt (name, title,
//! description, arguments), each listed resource (URI, name, title, description, MIME type)
//! and each resource template (the same, by URI template), as served, each as one canonical
//! JSON descriptor with its digest: these are texts the model reads too. A version 1 lock pins
//! none of them (the plugin's prompts, resources and templates are not compared, and
//! [`LockCheck::unpinned`] names the plugins `warden check` warns about); `warden lock`
//! rewrites it as version 2. The file is TOML, sorted, so that it can be committed and
//! reviewed.
//!
//! [`check`] compares a catalog with the lock beside its manifest; `[server] lock` decides
//! what a drifting plugin gets ([`LockMode`]): not served, served with a warning, or nothing.
//! A lock file that does not exist is never an error.

mod diff;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use diff::{Change, PluginDrift};

use crate::catalog::{Catalog, ToolEntry};
use crate::manifest::{LockMode, Manifest};

/// The lock's file name, in the manifest's directory.
pub const FILE_NAME: &str = "warden.lock";

/// The lock format this warden writes.
const VERSION: u32 = 2;

/// The first lock format, still read: it pins tools only.
const VERSION_TOOLS_ONLY: u32 = 1;

/// The comment at the top of every lock file.
const HEADER: &str = "\
# warden.lock: the tools, prompts and resources warden serves, as the model sees them.
# Commit this file. Written by `warden lock`; do not edit it by hand. When they change, warden
# refuses that plugin until the change is accepted: review it with `warden lock --diff`,
# then run `warden lock` to update this file.
";

/// Why a lock could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a valid lock file: {message}", path.display())]
    Parse { path: PathBuf, message: String },
}

/// A whole lock: every plugin, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// The lock format (2; 1 pins tools only).
    pub version: u32,
    /// Every plugin, by name.
    #[serde(default)]
    pub plugins: BTreeMap<String, LockedPlugin>,
}

/// One plugin in the lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPlugin {
    /// The component, as the manifest names it.
    pub source: String,
    /// The SHA-256 digest of the component file, hex.
    pub sha256: String,
    /// For an `oci://` component, the manifest digest its reference resolved to
    /// (`sha256:...`): a tag that later resolves elsewhere is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
    /// Its tools, by final name.
    #[serde(default)]
    pub tools: BTreeMap<String, LockedTool>,
    /// Its prompts, by served name (version 2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prompts: BTreeMap<String, LockedText>,
    /// Its listed resources, by URI (version 2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, LockedText>,
    /// Its resource templates, by URI template (version 2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<String, LockedText>,
}

impl LockedPlugin {
    /// Whether it serves any prompt, resource or template.
    pub fn has_texts(&self) -> bool {
        !(self.prompts.is_empty() && self.resources.is_empty() && self.templates.is_empty())
    }
}

/// A prompt, a resource or a template in the lock: the fields the model reads, as one JSON
/// object (indented, keys sorted), and the digest of its canonical JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedText {
    pub descriptor: String,
    pub descriptor_sha256: String,
}

impl LockedText {
    /// The entry of `descriptor`, a JSON object.
    pub fn of(descriptor: &Value) -> LockedText {
        LockedText {
            descriptor: pretty(&canonical(descriptor)),
            descriptor_sha256: digest(descriptor),
        }
    }

    /// The descriptor as JSON (`Null` if it is not).
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.descriptor).unwrap_or(Value::Null)
    }

    /// Whether the descriptor is JSON and has the digest recorded beside it.
    fn verify(&self) -> Result<(), String> {
        let value: Value = serde_json::from_str(&self.descriptor)
            .map_err(|_| "`descriptor` is not JSON".to_owned())?;
        if digest(&value) != self.descriptor_sha256 {
            return Err(
                "`descriptor_sha256` is not the digest of `descriptor` (edited by hand?)".into(),
            );
        }
        Ok(())
    }
}

/// What kind of text entry: the lock's section and how a diff names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    Prompt,
    Resource,
    Template,
}

impl TextKind {
    /// Every kind, in the order diffs show them.
    pub const ALL: [TextKind; 3] = [TextKind::Prompt, TextKind::Resource, TextKind::Template];

    /// The section's name in the lock file.
    pub fn key(self) -> &'static str {
        match self {
            TextKind::Prompt => "prompts",
            TextKind::Resource => "resources",
            TextKind::Template => "templates",
        }
    }

    /// How a diff names one.
    pub fn noun(self) -> &'static str {
        match self {
            TextKind::Prompt => "prompt",
            TextKind::Resource => "resource",
            TextKind::Template => "resource template",
        }
    }

    /// The section of `plugin` for this kind.
    pub fn of(self, plugin: &LockedPlugin) -> &BTreeMap<String, LockedText> {
        match self {
            TextKind::Prompt => &plugin.prompts,
            TextKind::Resource => &plugin.resources,
            TextKind::Template => &plugin.templates,
        }
    }
}

/// One tool in the lock: each field as served, and the digest of its canonical JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedTool {
    pub description: String,
    pub description_sha256: String,
    /// The input schema, as indented JSON with sorted keys.
    pub input_schema: String,
    pub input_schema_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations_sha256: Option<String>,
}

/// The fields of a tool the lock pins, for diffs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Description,
    InputSchema,
    OutputSchema,
    Annotations,
}

impl Field {
    const ALL: [Field; 4] = [
        Field::Description,
        Field::InputSchema,
        Field::OutputSchema,
        Field::Annotations,
    ];

    /// The field's name in the lock file.
    pub fn key(self) -> &'static str {
        match self {
            Field::Description => "description",
            Field::InputSchema => "input_schema",
            Field::OutputSchema => "output_schema",
            Field::Annotations => "annotations",
        }
    }
}

impl LockedTool {
    /// The tool `entry` as `tools/list` serves it.
    pub fn of(entry: &ToolEntry) -> LockedTool {
        let descriptor = &entry.descriptor;
        let description = descriptor.description.as_deref().unwrap_or_default();
        let input = Value::Object((*descriptor.input_schema).clone());
        let output = descriptor
            .output_schema
            .as_ref()
            .map(|schema| Value::Object((**schema).clone()));
        let annotations = descriptor
            .annotations
            .as_ref()
            .and_then(|a| serde_json::to_value(a).ok());
        let pretty = |value: &Value| pretty(&canonical(value));
        LockedTool {
            description: description.to_owned(),
            description_sha256: digest(&Value::String(description.to_owned())),
            input_schema: pretty(&input),
            input_schema_sha256: digest(&input),
            output_schema: output.as_ref().map(pretty),
            output_schema_sha256: output.as_ref().map(digest),
            annotations: annotations.as_ref().map(pretty),
            annotations_sha256: annotations.as_ref().map(digest),
        }
    }

    /// A field's value as JSON (`None`: the tool has none) and its recorded digest.
    pub fn field(&self, field: Field) -> (Option<Value>, Option<&str>) {
        let json = |text: &Option<String>| {
            text.as_deref()
                .map(|t| serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_owned())))
        };
        match field {
            Field::Description => (
                Some(Value::String(self.description.clone())),
                Some(&self.description_sha256),
            ),
            Field::InputSchema => (
                json(&Some(self.input_schema.clone())),
                Some(&self.input_schema_sha256),
            ),
            Field::OutputSchema => (
                json(&self.output_schema),
                self.output_schema_sha256.as_deref(),
            ),
            Field::Annotations => (json(&self.annotations), self.annotations_sha256.as_deref()),
        }
    }

    /// Whether each field's text has the digest recorded beside it (`Err`: the first field
    /// that does not).
    fn verify(&self) -> Result<(), String> {
        for field in Field::ALL {
            let text = match field {
                Field::Description => None,
                Field::InputSchema => Some(Some(&self.input_schema)),
                Field::OutputSchema => Some(self.output_schema.as_ref()),
                Field::Annotations => Some(self.annotations.as_ref()),
            };
            if let Some(Some(text)) = text
                && serde_json::from_str::<Value>(text).is_err()
            {
                return Err(format!("`{}` is not JSON", field.key()));
            }
            let (value, recorded) = self.field(field);
            match (value.as_ref().map(digest), recorded) {
                (None, None) => {}
                (Some(actual), Some(recorded)) if actual == recorded => {}
                (Some(_), None) => return Err(format!("`{}_sha256` is missing", field.key())),
                (None, Some(_)) => {
                    return Err(format!(
                        "`{}_sha256` is set but `{}` is not",
                        field.key(),
                        field.key()
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "`{}_sha256` is not the digest of `{}` (edited by hand?)",
                        field.key(),
                        field.key()
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Lock {
    /// The lock of everything `catalog` serves.
    pub fn of(catalog: &Catalog) -> Lock {
        let mut plugins = BTreeMap::new();
        for plugin in catalog.plugins() {
            let tools = catalog
                .iter()
                .filter(|t| Arc::ptr_eq(&t.plugin, plugin))
                .map(|t| (t.name().to_owned(), LockedTool::of(t)))
                .collect();
            let ours = |other: &Arc<crate::runtime::Plugin>| Arc::ptr_eq(other, plugin);
            let prompts = catalog
                .prompts()
                .filter(|p| ours(&p.plugin))
                .map(|p| {
                    (
                        p.name().to_owned(),
                        LockedText::of(&prompt_json(&p.descriptor)),
                    )
                })
                .collect();
            let served = catalog.resources();
            let resources = served
                .resources()
                .iter()
                .filter(|r| ours(&r.plugin))
                .map(|r| {
                    let d = &r.descriptor;
                    let json = text_json(
                        ("uri", &d.uri),
                        &d.name,
                        &d.title,
                        &d.description,
                        &d.mime_type,
                    );
                    (d.uri.clone(), LockedText::of(&json))
                })
                .collect();
            let templates = served
                .templates()
                .iter()
                .filter(|t| ours(&t.plugin))
                .map(|t| {
                    let d = &t.descriptor;
                    let json = text_json(
                        ("uriTemplate", &d.uri_template),
                        &d.name,
                        &d.title,
                        &d.description,
                        &d.mime_type,
                    );
                    (d.uri_template.clone(), LockedText::of(&json))
                })
                .collect();
            plugins.insert(
                plugin.config.name.clone(),
                LockedPlugin {
                    source: plugin.config.component_source.clone(),
                    sha256: hex::encode(plugin.digest),
                    resolved: plugin.config.oci_resolved.clone(),
                    tools,
                    prompts,
                    resources,
                    templates,
                },
            );
        }
        Lock {
            version: VERSION,
            plugins,
        }
    }

    /// Read the lock at `path`; `Ok(None)` when there is no such file.
    pub fn read(path: &Path) -> Result<Option<Lock>, LockError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LockError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Lock::parse(&text, path).map(Some)
    }

    /// Parse a lock's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Lock, LockError> {
        let error = |message: String| LockError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let lock: Lock = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        if lock.version != VERSION && lock.version != VERSION_TOOLS_ONLY {
            return Err(error(format!(
                "version {} is not supported (this warden reads versions {VERSION_TOOLS_ONLY} and {VERSION}); run `warden lock` to rewrite it",
                lock.version
            )));
        }
        for (name, plugin) in &lock.plugins {
            for (tool, locked) in &plugin.tools {
                locked.verify().map_err(|message| {
                    let line = line_of(text, &format!("[plugins.{name}.tools.{tool}]"));
                    error(format!(
                        "line {line}: tool `{tool}` of plugin `{name}`: {message}"
                    ))
                })?;
            }
            for kind in TextKind::ALL {
                let entries = kind.of(plugin);
                if lock.version == VERSION_TOOLS_ONLY && !entries.is_empty() {
                    return Err(error(format!(
                        "plugin `{name}`: a version {VERSION_TOOLS_ONLY} lock has no `{}`; run `warden lock` to rewrite it",
                        kind.key()
                    )));
                }
                for (key, locked) in entries {
                    locked.verify().map_err(|message| {
                        let line = line_of(text, key);
                        error(format!(
                            "line {line}: {} `{key}` of plugin `{name}`: {message}",
                            kind.noun()
                        ))
                    })?;
                }
            }
        }
        Ok(lock)
    }

    /// The lock as TOML, with its header comment.
    pub fn to_toml(&self) -> String {
        // Serializing these plain maps and strings cannot fail.
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!("{HEADER}\n{body}")
    }

    /// Write the lock to `path` (through a temporary file beside it, renamed over it).
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        let error = |source| LockError::Write {
            path: path.to_path_buf(),
            source,
        };
        let temporary = path.with_extension("lock.tmp");
        std::fs::write(&temporary, self.to_toml()).map_err(error)?;
        std::fs::rename(&temporary, path).map_err(error)
    }

    /// How `current` differs from this lock: one entry per plugin that drifts, in name
    /// order (plugins in the lock but not in `current` included).
    pub fn diff(&self, current: &Lock) -> Vec<PluginDrift> {
        diff::diff(self, current)
    }

    /// Whether this lock pins prompts, resources and templates (version 2 and later).
    pub fn pins_texts(&self) -> bool {
        self.version >= VERSION
    }
}

/// What the lock pins of a prompt: its name, title, description and arguments (each
/// argument's name, title, description and whether it is required), as served.
fn prompt_json(prompt: &rmcp::model::Prompt) -> Value {
    let mut value = serde_json::Map::new();
    value.insert("name".into(), Value::String(prompt.name.clone()));
    let mut optional = |key: &str, text: &Option<String>| {
        if let Some(text) = text {
            value.insert(key.into(), Value::String(text.clone()));
        }
    };
    optional("title", &prompt.title);
    optional("description", &prompt.description);
    let arguments = prompt
        .arguments
        .iter()
        .flatten()
        .map(|argument| {
            let mut out = serde_json::Map::new();
            out.insert("name".into(), Value::String(argument.name.clone()));
            for (key, text) in [
                ("title", &argument.title),
                ("description", &argument.description),
            ] {
                if let Some(text) = text {
                    out.insert(key.into(), Value::String(text.clone()));
                }
            }
            out.insert(
                "required".into(),
                Value::Bool(argument.required.unwrap_or(false)),
            );
            Value::Object(out)
        })
        .collect();
    value.insert("arguments".into(), Value::Array(arguments));
    Value::Object(value)
}

/// What the lock pins of a resource or a template: its URI (or URI template), name, title,
/// description and MIME type. Not its size, which changes with its content.
fn text_json(
    (uri_key, uri): (&str, &str),
    name: &str,
    title: &Option<String>,
    description: &Option<String>,
    mime_type: &Option<String>,
) -> Value {
    let mut value = serde_json::Map::new();
    value.insert(uri_key.into(), Value::String(uri.to_owned()));
    value.insert("name".into(), Value::String(name.to_owned()));
    for (key, text) in [
        ("title", title),
        ("description", description),
        ("mimeType", mime_type),
    ] {
        if let Some(text) = text {
            value.insert(key.into(), Value::String(text.clone()));
        }
    }
    Value::Object(value)
}

/// The line (from 1) where `needle` first appears in `text`, or 1.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.trim() == needle || line.contains(needle))
        .map_or(1, |index| index + 1)
}

/// Where the lock of `manifest` is: `warden.lock` beside it.
pub fn path_for(manifest: &Manifest) -> PathBuf {
    manifest.dir.join(FILE_NAME)
}

/// `value` with every object's keys sorted, recursively.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The SHA-256 digest (hex) of `value`'s canonical JSON: sorted keys, no whitespace.
pub fn digest(value: &Value) -> String {
    let text = serde_json::to_string(&canonical(value)).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// What the lock beside a manifest says about a catalog.
#[derive(Debug)]
pub struct LockCheck {
    /// The mode in force: `[server] lock`, or its default.
    pub mode: LockMode,
    /// The lock file.
    pub path: PathBuf,
    /// The plugins of the catalog that differ from the lock (plugins only in the lock are
    /// left out: they are not served anyway). Empty under [`LockMode::Off`].
    pub drift: Vec<PluginDrift>,
    /// The plugins that serve prompts, resources or templates a version 1 lock does not pin
    /// (`warden lock` pins them). Empty under [`LockMode::Off`].
    pub unpinned: Vec<String>,
}

impl LockCheck {
    /// The warning about [`LockCheck::unpinned`] plugins (call only when there are some).
    pub fn unpinned_warning(&self) -> String {
        format!(
            "{} is a version {VERSION_TOOLS_ONLY} lock: it pins the tools but not the prompts, resources and templates of plugin(s) {}, which may change unnoticed; run `warden lock` to pin them",
            self.path.display(),
            self.unpinned.join(", ")
        )
    }

    /// The plugins not to serve: the drifting ones under [`LockMode::Enforce`].
    pub fn refused(&self) -> impl Iterator<Item = &str> {
        self.drift
            .iter()
            .filter(|_| self.mode == LockMode::Enforce)
            .map(|d| d.plugin.as_str())
    }
}

/// Compare `catalog` with the lock beside `manifest`, under `[server] lock`. Without a lock
/// file the mode is off, whatever the manifest says.
pub fn check(manifest: &Manifest, catalog: &Catalog) -> Result<LockCheck, LockError> {
    let path = path_for(manifest);
    let off = |path| LockCheck {
        mode: LockMode::Off,
        path,
        drift: Vec::new(),
        unpinned: Vec::new(),
    };
    if manifest.server.lock == Some(LockMode::Off) {
        return Ok(off(path));
    }
    let Some(lock) = Lock::read(&path)? else {
        return Ok(off(path));
    };
    let current = Lock::of(catalog);
    let drift = lock
        .diff(&current)
        .into_iter()
        .filter(|d| !d.is_removed())
        .collect();
    let unpinned = match lock.pins_texts() {
        true => Vec::new(),
        false => current
            .plugins
            .iter()
            .filter(|(name, plugin)| plugin.has_texts() && lock.plugins.contains_key(*name))
            .map(|(name, _)| name.clone())
            .collect(),
    };
    Ok(LockCheck {
        mode: manifest.server.lock.unwrap_or(LockMode::Enforce),
        path,
        drift,
        unpinned,
    })
}

#[cfg(test)]
mod tests;
