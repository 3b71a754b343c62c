//! The tool catalog: every exported function of every plugin, under its MCP tool name, with
//! its schemas and annotations. Built once at start-up and read without locks afterwards.
//!
//! Naming: `{prefix}__{function}` (the prefix defaults to the plugin's name; an empty prefix
//! gives the bare function name), function names in snake_case, or an exact name set in the
//! manifest. Every name must match `[A-Za-z0-9_-]{1,64}`, which every model provider accepts.
//! Two tools with one name are a load error, never a silent shadow.

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

mod prompts;
mod resources;
pub mod review;
mod usage;

pub use prompts::PromptEntry;
pub use resources::{ResourceEntry, Resources, TemplateEntry};
pub use review::{Finding, FindingKind};
pub use usage::{GrantWarning, effects, grant_warnings, unacknowledged_warnings};

use crate::capabilities::Effects;
use crate::manifest::{
    Approval, DataLabel, FlowRule, Location, ReviewMode, glob_matches, is_valid_tool_name,
    prefixed_tool_name,
};
use crate::runtime::Plugin;
use crate::schema::{ExportedFunction, WitType, json_name, json_schema_with_defs};

/// One tool: a function of a plugin, and how agents see it.
pub struct ToolEntry {
    /// The plugin that exports the function.
    pub plugin: Arc<Plugin>,
    /// Index of the function in `plugin.description.functions`.
    pub function: usize,
    /// The MCP descriptor served by `tools/list`.
    pub descriptor: Tool,
    /// Whether a human confirms each call (`approval = "ask"`).
    pub approval: Approval,
    /// Whether its output is private (`data = "private"`).
    pub private: bool,
    /// Whether it can reach the open world (a usable network grant, not narrowed by
    /// `open_world = false`).
    pub open_world: bool,
    /// Whether it runs as a task (`task`), and the time limit of a call run as one
    /// (`task_timeout`, resolved).
    pub task: Option<(crate::manifest::TaskMode, std::time::Duration)>,
    /// How long a call first runs as an ordinary call before it becomes a task
    /// (`task_after`); `None`: a task at once.
    pub task_after: Option<std::time::Duration>,
    /// Whether it is hidden until its plugin reveals it to a principal (`hidden = true`):
    /// described, reviewed and locked like any tool, but neither listed nor callable before.
    pub hidden: bool,
}

impl ToolEntry {
    /// The exported function behind this tool.
    pub fn function(&self) -> &ExportedFunction {
        &self.plugin.description.functions[self.function]
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.descriptor.name
    }
}

/// All tools, by name, in manifest order.
#[derive(Default)]
pub struct Catalog {
    plugins: Vec<Arc<Plugin>>,
    tools: Vec<Arc<ToolEntry>>,
    by_name: HashMap<String, usize>,
    /// Every prompt, in manifest order, and their positions by name.
    prompts: Vec<Arc<PromptEntry>>,
    prompts_by_name: HashMap<String, usize>,
    /// Every resource and resource template.
    resources: Resources,
    /// What the description review found, accepted or not (see [`Catalog::review`]).
    findings: Vec<Finding>,
    /// Acceptances that match no finding.
    stale: Vec<StaleAcceptance>,
    /// Plugins whose tools the review left out.
    refused: Vec<String>,
}

/// What a plugin serves besides tools: its prompts (served names), listed resources (URIs),
/// resource templates (URI templates), and whether it completes their arguments and
/// variables (it exports `warden:mcp/completions` and serves a prompt or a template). The one
/// description `warden check`, `inspect` and `status` show.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Surface {
    #[serde(default)]
    pub prompts: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub templates: Vec<String>,
    #[serde(default)]
    pub completes: bool,
}

impl Surface {
    /// One (label, text) a line: `prompt NAME`, `resource URI`, `template URI`, then
    /// `completes ...` when it does.
    pub fn lines(&self) -> Vec<(&'static str, String)> {
        let mut lines: Vec<(&'static str, String)> = Vec::new();
        lines.extend(self.prompts.iter().map(|p| ("prompt", p.clone())));
        lines.extend(self.resources.iter().map(|r| ("resource", r.clone())));
        lines.extend(self.templates.iter().map(|t| ("template", t.clone())));
        if self.completes {
            lines.push((
                "completes",
                "its prompts' arguments and templates' variables".to_owned(),
            ));
        }
        lines
    }
}

/// An `accept_review` entry that accepts nothing: its tool, prompt or resource has no finding
/// of that rule (or does not exist).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleAcceptance {
    pub plugin: String,
    /// Whose `accept_review` it is.
    pub kind: FindingKind,
    /// The key of its table: the WIT function, the prompt's own name, or the URI.
    pub function: String,
    pub rule: String,
    pub location: Location,
}

/// A problem found while naming the tools, with where in the manifest to fix it.
#[derive(Debug)]
pub struct CatalogError {
    pub location: Location,
    pub message: String,
}

impl std::fmt::Display for CatalogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl std::error::Error for CatalogError {}

impl Catalog {
    /// Name and describe every function of `plugins`. Reports every problem found.
    pub fn build(plugins: Vec<Arc<Plugin>>) -> Result<Self, Vec<CatalogError>> {
        let mut catalog = Catalog {
            plugins: plugins.clone(),
            ..Catalog::default()
        };
        let mut errors = Vec::new();
        for plugin in plugins {
            let functions = &plugin.description.functions;
            for tool in &plugin.config.tools {
                // A glob (`[plugins.NAME.tools."write-*"]`) must match at least one function.
                let matches = |name: &str| match tool.is_glob() {
                    true => glob_matches(&tool.function, name),
                    false => name == tool.function,
                };
                if !functions.iter().any(|f| matches(&f.name)) {
                    let exported: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
                    errors.push(CatalogError {
                        location: tool.location.clone(),
                        message: format!(
                            "the component exports no function `{}` (it exports: {})",
                            tool.function,
                            exported.join(", ")
                        ),
                    });
                }
            }
            for (index, function) in functions.iter().enumerate() {
                let overrides = plugin.config.tool_override(&function.name);
                let location = overrides
                    .map(|t| t.location.clone())
                    .unwrap_or_else(|| plugin.config.location.clone());
                let name = overrides.and_then(|t| t.name.clone()).unwrap_or_else(|| {
                    prefixed_tool_name(&plugin.config.prefix, &json_name(&function.name))
                });
                if !is_valid_tool_name(&name) {
                    errors.push(CatalogError {
                        location,
                        message: format!(
                            "tool name `{name}` must be 1 to 64 characters from A-Z, a-z, 0-9, _ and -"
                        ),
                    });
                    continue;
                }
                if let Some(&other) = catalog.by_name.get(&name) {
                    let other = &catalog.tools[other];
                    errors.push(CatalogError {
                        location,
                        message: format!(
                            "tool name `{name}` (function `{}` of plugin `{}`) is already used by function `{}` of plugin `{}`; set a different `prefix` or `[plugins.{}.tools.{}] name`",
                            function.name,
                            plugin.config.name,
                            other.function().name,
                            other.plugin.config.name,
                            plugin.config.name,
                            function.name,
                        ),
                    });
                    continue;
                }
                let description = overrides
                    .and_then(|t| t.description.clone())
                    .or_else(|| function.docs.clone())
                    .unwrap_or_else(|| {
                        format!("`{}` from plugin `{}`", function.name, plugin.config.name)
                    });
                let approval = plugin.config.tool_approval(&function.name);
                let mut description = with_hosts(with_grants(description, &plugin), &plugin);
                if approval == Approval::Ask {
                    description.push_str(ASKS);
                }
                let mut descriptor = describe(&name, description, function, &plugin);
                let task = plugin.config.tool_task(&function.name);
                if let Some((mode, _)) = task {
                    // SEP-2663 leaves task creation to the server and gives tools no field for
                    // it; this hint under the extension's id tells clients what to expect.
                    let mut meta = descriptor.meta.take().unwrap_or_default();
                    meta.0.insert(
                        rmcp::model::TASKS_EXTENSION_ID.to_owned(),
                        serde_json::json!({ "taskSupport": mode.as_str() }),
                    );
                    descriptor.meta = Some(meta);
                }
                let open_world = descriptor
                    .annotations
                    .as_ref()
                    .and_then(|a| a.open_world_hint)
                    .unwrap_or(false);
                catalog.by_name.insert(name, catalog.tools.len());
                catalog.tools.push(Arc::new(ToolEntry {
                    plugin: plugin.clone(),
                    function: index,
                    descriptor,
                    approval,
                    private: plugin.config.tool_data(&function.name) == DataLabel::Private,
                    open_world,
                    task,
                    task_after: plugin.config.tool_task_after(&function.name),
                    hidden: plugin.config.tool_hidden(&function.name),
                }));
            }
        }
        (catalog.prompts, catalog.prompts_by_name) = prompts::build(&catalog.plugins, &mut errors);
        catalog.resources = resources::build(&catalog.plugins, &mut errors);
        if errors.is_empty() {
            Ok(catalog)
        } else {
            Err(errors)
        }
    }

    /// The review's scope for `plugin`: its grants, and the tools of every other plugin.
    fn scope_of<'a>(&'a self, plugin: &'a Arc<Plugin>) -> review::Scope<'a> {
        review::Scope {
            guest_dirs: plugin
                .config
                .dirs
                .iter()
                .map(|d| d.guest.as_str())
                .collect(),
            hosts: &plugin.config.allow_hosts,
            other_tools: self
                .tools
                .iter()
                .filter(|other| !Arc::ptr_eq(&other.plugin, plugin))
                .map(|other| other.name())
                .collect(),
        }
    }

    /// Review every tool's texts ([`review`]) and, with [`ReviewMode::Refuse`], leave out
    /// the tools of every plugin with a finding its `accept_review` does not accept. Other
    /// plugins' tool names are those of the whole catalog, refused plugins included.
    pub fn review(&mut self, mode: ReviewMode) {
        let mut findings = Vec::new();
        for tool in &self.tools {
            let plugin = &tool.plugin;
            let function = tool.function();
            let overrides = plugin.config.tool_override(&function.name);
            let description = overrides
                .and_then(|t| t.description.as_deref())
                .or(function.docs.as_deref());
            let output = tool.descriptor.output_schema.as_deref();
            let texts = review::texts(description, &tool.descriptor.input_schema, output);
            let accepts = |rule: &str| {
                overrides.is_some_and(|t| t.accept_review.iter().any(|a| a.code == rule))
            };
            let at = (tool.name(), function.name.as_str());
            findings.extend(self.review_texts(plugin, at, texts, FindingKind::Tool, &accepts));
        }
        // A prompt is text the model reads: the same rules, accepted in its own table.
        for prompt in &self.prompts {
            let own = prompt.def().name.as_str();
            let accepts = |rule: &str| accepted(&prompt.plugin.config.prompts, own, rule);
            let at = (prompt.name(), own);
            let texts = prompt.texts();
            findings.extend(self.review_texts(
                &prompt.plugin,
                at,
                texts,
                FindingKind::Prompt,
                &accepts,
            ));
        }
        // So are a resource's and a template's name, title and description (`tool` is the URI).
        let resources = self.resources.resources().iter().map(|r| {
            let d = &r.descriptor;
            (
                &r.plugin,
                d.uri.as_str(),
                texts(&d.name, &d.title, &d.description),
            )
        });
        let templates = self.resources.templates().iter().map(|t| {
            let d = &t.descriptor;
            (
                &t.plugin,
                d.uri_template.as_str(),
                texts(&d.name, &d.title, &d.description),
            )
        });
        for (plugin, uri, texts) in resources.chain(templates) {
            let accepts = |rule: &str| accepted(&plugin.config.uris, uri, rule);
            let kind = FindingKind::Resource;
            findings.extend(self.review_texts(plugin, (uri, uri), texts, kind, &accepts));
        }
        let mut stale = Vec::new();
        for plugin in &self.plugins {
            let config = &plugin.config;
            let tables = config
                .tools
                .iter()
                .map(|t| (FindingKind::Tool, t.function.as_str(), &t.accept_review))
                .chain(
                    config
                        .prompts
                        .iter()
                        .map(|p| (FindingKind::Prompt, p.key.as_str(), &p.accept_review)),
                )
                .chain(
                    config
                        .uris
                        .iter()
                        .map(|u| (FindingKind::Resource, u.key.as_str(), &u.accept_review)),
                );
            for (kind, key, accepts) in tables {
                for accept in accepts {
                    let used = findings.iter().any(|f: &Finding| {
                        f.plugin == config.name
                            && f.kind == kind
                            && f.function == key
                            && f.hit.rule == accept.code
                    });
                    if !used {
                        stale.push(StaleAcceptance {
                            plugin: config.name.clone(),
                            kind,
                            function: key.to_owned(),
                            rule: accept.code.clone(),
                            location: accept.location.clone(),
                        });
                    }
                }
            }
        }
        self.stale = stale;
        if mode == ReviewMode::Refuse {
            self.refused = self
                .plugins
                .iter()
                .map(|p| p.config.name.clone())
                .filter(|name| findings.iter().any(|f| !f.accepted && f.plugin == *name))
                .collect();
            let refused = &self.refused;
            self.tools
                .retain(|tool| !refused.contains(&tool.plugin.config.name));
            self.prompts
                .retain(|prompt| !refused.contains(&prompt.plugin.config.name));
            self.resources
                .retain(|plugin| !refused.contains(&plugin.config.name));
            self.prompts_by_name = self
                .prompts
                .iter()
                .enumerate()
                .map(|(index, prompt)| (prompt.name().to_owned(), index))
                .collect();
            self.by_name = self
                .tools
                .iter()
                .enumerate()
                .map(|(index, tool)| (tool.name().to_owned(), index))
                .collect();
        }
        self.findings = findings;
    }

    /// The findings of the review in `texts` of `plugin`'s tool, prompt or resource
    /// `(name, function)`; `accepts` says which rules its `accept_review` accepts.
    fn review_texts(
        &self,
        plugin: &Arc<Plugin>,
        (name, function): (&str, &str),
        texts: Vec<(String, &str)>,
        kind: FindingKind,
        accepts: &dyn Fn(&str) -> bool,
    ) -> Vec<Finding> {
        let scope = self.scope_of(plugin);
        let mut findings = Vec::new();
        for (field, text) in texts {
            for hit in review::review(text, &scope) {
                findings.push(Finding {
                    plugin: plugin.config.name.clone(),
                    tool: name.to_owned(),
                    function: function.to_owned(),
                    field: field.clone(),
                    accepted: accepts(hit.rule),
                    kind,
                    hit,
                });
            }
        }
        findings
    }

    /// The prompt named `name`.
    pub fn prompt(&self, name: &str) -> Option<&Arc<PromptEntry>> {
        self.prompts_by_name
            .get(name)
            .map(|&index| &self.prompts[index])
    }

    /// Every prompt, in manifest order.
    pub fn prompts(&self) -> impl Iterator<Item = &Arc<PromptEntry>> {
        self.prompts.iter()
    }

    /// Every resource and resource template.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// What `plugin` serves besides tools, as this catalog serves it.
    pub fn surface(&self, plugin: &Plugin) -> Surface {
        let ours = |other: &Plugin| std::ptr::eq(other, plugin);
        let prompts: Vec<String> = self
            .prompts
            .iter()
            .filter(|p| ours(&p.plugin))
            .map(|p| p.name().to_owned())
            .collect();
        let resources = self
            .resources
            .resources()
            .iter()
            .filter(|r| ours(&r.plugin))
            .map(|r| r.descriptor.uri.clone())
            .collect();
        let templates: Vec<String> = self
            .resources
            .templates()
            .iter()
            .filter(|t| ours(&t.plugin))
            .map(|t| t.descriptor.uri_template.clone())
            .collect();
        let completes = plugin.description.completions.is_some()
            && !(prompts.is_empty() && templates.is_empty());
        Surface {
            prompts,
            resources,
            templates,
            completes,
        }
    }

    /// What the description review found, in catalog order, accepted findings included.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// `accept_review` entries that accept no finding.
    pub fn stale_acceptances(&self) -> &[StaleAcceptance] {
        &self.stale
    }

    /// The plugins whose tools the review left out (`[server] review = "refuse"`).
    pub fn refused(&self) -> &[String] {
        &self.refused
    }

    /// The tool named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<ToolEntry>> {
        self.by_name.get(name).map(|&index| &self.tools[index])
    }

    /// Every plugin, in manifest order, with tools or without.
    pub fn plugins(&self) -> &[Arc<Plugin>] {
        &self.plugins
    }

    /// Every tool, in manifest order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ToolEntry>> {
        self.tools.iter()
    }

    /// What `warden check` says about the flow of private data to the open world under
    /// `rule` (`[approval] after_private`): the lethal combination of private data, untrusted
    /// content and a way out, left unguarded.
    pub fn flow_warnings(&self, rule: FlowRule) -> Vec<GrantWarning> {
        let names = |pick: &dyn Fn(&ToolEntry) -> bool| -> Vec<&str> {
            self.tools
                .iter()
                .filter(|t| pick(t))
                .map(|t| t.name())
                .collect()
        };
        let open = names(&|t| t.open_world);
        if open.is_empty() {
            return Vec::new();
        }
        let private = names(&|t| t.private);
        if private.is_empty() {
            let local = names(&|t| reads_local_data(&t.plugin));
            if local.is_empty() {
                return Vec::new();
            }
            return vec![GrantWarning::new(
                "unlabelled-private-data",
                format!(
                    "{} read local data and {} reach the internet (and bring back untrusted \
                     content), but no tool is labelled data = \"private\", so nothing stops \
                     data read by the first from leaving through the second: label the tools \
                     that read private data",
                    list(&local),
                    list(&open)
                ),
            )];
        }
        if rule != FlowRule::Allow {
            return Vec::new();
        }
        vec![GrantWarning::new(
            "unguarded-flow",
            format!(
                "{} return private data and {} reach the internet, and [approval] \
                 after_private = \"allow\" lets a principal send the one through the other \
                 unasked: use \"ask\" or \"deny\"",
                list(&private),
                list(&open)
            ),
        )]
    }
}

/// Whether the `[plugins.NAME.prompts]` or `[plugins.NAME.uris]` table `key` accepts `rule`.
fn accepted(tables: &[crate::manifest::TextReview], key: &str, rule: &str) -> bool {
    tables
        .iter()
        .any(|t| t.key == key && t.accept_review.iter().any(|a| a.code == rule))
}

/// Names as `a, b and 3 more`.
fn list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [first, second] => format!("{first} and {second}"),
        [first, second, rest @ ..] => format!("{first}, {second} and {} more", rest.len()),
    }
}

/// Whether `plugin` is granted local data to read: a directory, a store or a database.
fn reads_local_data(plugin: &Plugin) -> bool {
    let config = &plugin.config;
    !config.dirs.is_empty() || config.kv.is_some() || config.sql.is_some()
}

/// Appended to the description of a tool with `approval = "ask"`, so the agent expects the
/// question and tells its user.
pub const ASKS: &str = "\n\nA human confirms each call of this tool before it runs.";

/// Tell the agent where the plugin's files are: a guest cannot list `/`, so without this an
/// agent has to guess the granted directories.
fn with_grants(description: String, plugin: &Plugin) -> String {
    let imports_files = plugin
        .description
        .imports
        .iter()
        .any(|i| i.starts_with("wasi:filesystem/"));
    if plugin.config.dirs.is_empty() || !imports_files {
        return description;
    }
    let dirs: Vec<String> = plugin
        .config
        .dirs
        .iter()
        .map(|d| {
            format!(
                "{} ({})",
                d.guest,
                if d.mode.is_writable() {
                    "read-write"
                } else {
                    "read-only"
                }
            )
        })
        .collect();
    format!("{description}\n\nGranted directories: {}.", dirs.join(", "))
}

/// Tell the agent which hosts the plugin may reach, so it does not try others.
fn with_hosts(description: String, plugin: &Plugin) -> String {
    let imports_network = plugin
        .description
        .imports
        .iter()
        .any(|i| i.starts_with("wasi:http/") || i.starts_with("wasi:sockets/"));
    if plugin.config.allow_hosts.is_empty() || !imports_network {
        return description;
    }
    let hosts: Vec<&str> = plugin
        .config
        .allow_hosts
        .iter()
        .map(|p| p.as_str())
        .collect();
    format!("{description}\n\nGranted hosts: {}.", hosts.join(", "))
}

/// `icons` as MCP's, or `None` when there are none.
pub(crate) fn mcp_icons(icons: &[crate::manifest::Icon]) -> Option<Vec<rmcp::model::Icon>> {
    if icons.is_empty() {
        return None;
    }
    Some(
        icons
            .iter()
            .map(|icon| {
                let mut out = rmcp::model::Icon::new(&icon.src);
                out.mime_type.clone_from(&icon.mime_type);
                out.sizes = (!icon.sizes.is_empty()).then(|| icon.sizes.clone());
                out.theme = icon.dark.map(|dark| {
                    if dark {
                        rmcp::model::IconTheme::Dark
                    } else {
                        rmcp::model::IconTheme::Light
                    }
                });
                out
            })
            .collect(),
    )
}

fn describe(name: &str, description: String, function: &ExportedFunction, plugin: &Plugin) -> Tool {
    let mut tool = Tool::new(
        name.to_string(),
        description,
        Arc::new(function.input_schema()),
    );
    if let Some(schema) = output_schema(function) {
        tool = tool.with_raw_output_schema(Arc::new(schema));
    }
    // Hints derived from the grants the component can use, so they can be trusted: a plugin
    // with no usable writable directory and no usable outbound host cannot change anything,
    // and without a usable host it cannot reach the world. A grant its imports cannot use
    // changes nothing. The manifest may tighten them per tool, never loosen them.
    let Effects { writes, open_world } = effects(plugin);
    let overridden = plugin.config.tool_override(&function.name);
    let hints = overridden.map(|t| t.hints).unwrap_or_default();
    // The tool's own icons, else its plugin's.
    tool.icons = mcp_icons(
        overridden
            .and_then(|t| t.icons.as_deref())
            .unwrap_or(&plugin.config.icons),
    );
    let read_only = !writes || hints.read_only;
    let mut annotations = ToolAnnotations::new()
        .read_only(read_only)
        .open_world(open_world && !hints.closed_world);
    if read_only {
        annotations = annotations.destructive(false).idempotent(true);
    } else {
        if hints.not_destructive {
            annotations = annotations.destructive(false);
        }
        if hints.idempotent {
            annotations = annotations.idempotent(true);
        }
    }
    tool.annotate(annotations)
}

/// How a function's successful result is presented to the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputShape {
    /// No result, or a `result<_, E>` whose ok side is empty.
    Empty,
    /// A string, passed as one text block.
    Text,
    /// A `warden:mcp/types.tool-result`, mapped to MCP content blocks.
    Content,
    /// A record, as structured content (and its JSON as text).
    Object,
    /// Any other value, as structured content `{"result": value}` (and its JSON as text).
    Wrapped,
}

/// The type of a function's successful value: the ok side of a `result`, or the result itself.
pub fn success_type(function: &ExportedFunction) -> Option<&WitType> {
    match function.result.as_ref()? {
        WitType::Result { ok, .. } => ok.as_deref(),
        other => Some(other),
    }
}

/// How a value of type `ty` is presented.
pub fn output_shape(ty: Option<&WitType>) -> OutputShape {
    match ty {
        None => OutputShape::Empty,
        Some(WitType::String) => OutputShape::Text,
        Some(ty) if ty.is_tool_result() => OutputShape::Content,
        Some(WitType::Record(_)) => OutputShape::Object,
        Some(_) => OutputShape::Wrapped,
    }
}

/// The output JSON Schema of a function whose results are structured.
fn output_schema(function: &ExportedFunction) -> Option<JsonObject> {
    let ty = success_type(function);
    // A named type used more than once is written once, under the document's `$defs`.
    let (schema, defs) = match (output_shape(ty), ty) {
        (OutputShape::Object, Some(ty)) => json_schema_with_defs(ty),
        (OutputShape::Wrapped, Some(ty)) => {
            let (result, defs) = json_schema_with_defs(ty);
            let wrapped = json!({
                "type": "object",
                "properties": { "result": result },
                "required": ["result"],
                "additionalProperties": false,
            });
            (wrapped, defs)
        }
        _ => return None,
    };
    match schema {
        Value::Object(mut object) => {
            object.insert(
                "$schema".into(),
                json!("https://json-schema.org/draft/2020-12/schema"),
            );
            if let Some(defs) = defs {
                object.insert("$defs".into(), Value::Object(defs));
            }
            Some(object)
        }
        _ => None,
    }
}

/// The texts a model reads of a resource or a template, as (field, text).
fn texts<'a>(
    name: &'a str,
    title: &'a Option<String>,
    description: &'a Option<String>,
) -> Vec<(String, &'a str)> {
    let mut out = vec![("name".to_owned(), name)];
    if let Some(title) = title {
        out.push(("title".to_owned(), title.as_str()));
    }
    if let Some(description) = description {
        out.push(("description".to_owned(), description.as_str()));
    }
    out
}
