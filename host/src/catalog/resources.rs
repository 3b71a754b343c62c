//! Resources: every resource and resource template a plugin's `warden:mcp/resources` gave at
//! load, under the URIs the plugin gave (a client reads the URI it was shown).
//!
//! URIs are not prefixed, so that a plugin can serve well-known schemes; instead no two
//! plugins may claim one URI. The catalog refuses to load when two plugins list the same URI,
//! when one plugin's listed URI matches another's template, or when the literal prefixes of
//! two plugins' templates (the text before the first `{`) are prefixes of one another: a URI
//! two templates match starts with both prefixes, so no URI can reach two plugins. A read goes
//! to the plugin that listed the URI, else to the one whose template matches it.

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::model::{Resource, ResourceTemplate};

use super::CatalogError;
use crate::runtime::Plugin;
use crate::schema::{ResourceDef, TemplateDef};

/// A listed resource and how clients see it.
pub struct ResourceEntry {
    /// The plugin that offers it.
    pub plugin: Arc<Plugin>,
    /// The MCP descriptor served by `resources/list`.
    pub descriptor: Resource,
}

/// A resource template and how clients see it.
pub struct TemplateEntry {
    /// The plugin that offers it.
    pub plugin: Arc<Plugin>,
    /// The MCP descriptor served by `resources/templates/list`.
    pub descriptor: ResourceTemplate,
    /// Its parsed form, to match URIs against.
    template: UriTemplate,
}

/// Every resource and template, in manifest order, with the resources by URI.
#[derive(Default)]
pub struct Resources {
    resources: Vec<Arc<ResourceEntry>>,
    by_uri: HashMap<String, usize>,
    templates: Vec<Arc<TemplateEntry>>,
}

impl Resources {
    /// Every listed resource, in manifest order.
    pub fn resources(&self) -> &[Arc<ResourceEntry>] {
        &self.resources
    }

    /// Every template, in manifest order.
    pub fn templates(&self) -> &[Arc<TemplateEntry>] {
        &self.templates
    }

    /// Every plugin that serves a resource or a template, each once.
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        let mut seen: Vec<&Arc<Plugin>> = Vec::new();
        let listed = self.resources.iter().map(|entry| &entry.plugin);
        let templated = self.templates.iter().map(|entry| &entry.plugin);
        for plugin in listed.chain(templated) {
            if !seen.iter().any(|other| Arc::ptr_eq(other, plugin)) {
                seen.push(plugin);
            }
        }
        seen.into_iter()
    }

    /// Whether any resource or template is served.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.templates.is_empty()
    }

    /// The plugin that serves `uri`: the one that listed it, else the one whose template
    /// matches it (at most one can: see the module's documentation).
    pub fn plugin_for(&self, uri: &str) -> Option<&Arc<Plugin>> {
        if let Some(&index) = self.by_uri.get(uri) {
            return Some(&self.resources[index].plugin);
        }
        self.templates
            .iter()
            .find(|entry| entry.template.matches(uri))
            .map(|entry| &entry.plugin)
    }

    /// Keep only the resources and templates of the plugins `keep` accepts.
    pub(super) fn retain(&mut self, keep: impl Fn(&Plugin) -> bool) {
        self.resources.retain(|entry| keep(&entry.plugin));
        self.templates.retain(|entry| keep(&entry.plugin));
        self.by_uri = index_by_uri(&self.resources);
    }
}

fn index_by_uri(resources: &[Arc<ResourceEntry>]) -> HashMap<String, usize> {
    resources
        .iter()
        .enumerate()
        .map(|(index, entry)| (entry.descriptor.uri.clone(), index))
        .collect()
}

/// The resources and templates of `plugins`. Reports every conflict.
pub(super) fn build(plugins: &[Arc<Plugin>], errors: &mut Vec<CatalogError>) -> Resources {
    let mut out = Resources::default();
    for plugin in plugins.iter().filter(|plugin| plugin.config.resources) {
        let mut refuse = |message: String| {
            errors.push(CatalogError {
                location: plugin.config.location.clone(),
                message,
            });
        };
        for def in &plugin.templates {
            let template = match UriTemplate::parse(&def.uri_template) {
                Ok(template) => template,
                Err(reason) => {
                    refuse(format!(
                        "resource template `{}`: {reason}",
                        def.uri_template
                    ));
                    continue;
                }
            };
            if let Some(other) = out.templates.iter().find(|other| {
                !Arc::ptr_eq(&other.plugin, plugin) && other.template.overlaps(&template)
            }) {
                refuse(conflict(
                    &format!("resource template `{}`", def.uri_template),
                    plugin,
                    &other.plugin,
                ));
                continue;
            }
            out.templates.push(Arc::new(TemplateEntry {
                plugin: plugin.clone(),
                descriptor: template_descriptor(def, &plugin.config.icons),
                template,
            }));
        }
        for def in &plugin.resources {
            let owner = out
                .by_uri
                .get(&def.uri)
                .map(|&index| &out.resources[index].plugin)
                .or_else(|| {
                    out.templates
                        .iter()
                        .find(|t| !Arc::ptr_eq(&t.plugin, plugin) && t.template.matches(&def.uri))
                        .map(|t| &t.plugin)
                });
            if let Some(other) = owner {
                refuse(conflict(
                    &format!("resource URI `{}`", def.uri),
                    plugin,
                    other,
                ));
                continue;
            }
            out.by_uri.insert(def.uri.clone(), out.resources.len());
            out.resources.push(Arc::new(ResourceEntry {
                plugin: plugin.clone(),
                descriptor: resource_descriptor(def, &plugin.config.icons),
            }));
        }
    }
    // A URI listed first by one plugin and matched by a later plugin's template.
    for entry in &out.resources {
        if let Some(other) = out.templates.iter().find(|t| {
            !Arc::ptr_eq(&t.plugin, &entry.plugin) && t.template.matches(&entry.descriptor.uri)
        }) {
            errors.push(CatalogError {
                location: other.plugin.config.location.clone(),
                message: conflict(
                    &format!("resource URI `{}`", entry.descriptor.uri),
                    &other.plugin,
                    &entry.plugin,
                ),
            });
        }
    }
    out
}

fn conflict(what: &str, plugin: &Plugin, other: &Plugin) -> String {
    if plugin.config.name == other.config.name {
        return format!("{what} is listed twice by plugin `{}`", plugin.config.name);
    }
    format!(
        "{what} (plugin `{}`) is already served by plugin `{}`; two plugins cannot serve one URI",
        plugin.config.name, other.config.name
    )
}

fn resource_descriptor(def: &ResourceDef, icons: &[crate::manifest::Icon]) -> Resource {
    let mut resource = Resource::new(&def.uri, &def.name);
    resource.title = def.title.clone();
    resource.description = def.description.clone();
    resource.mime_type = def.mime_type.clone();
    resource.size = def.size;
    resource.icons = super::mcp_icons(icons);
    resource
}

fn template_descriptor(def: &TemplateDef, icons: &[crate::manifest::Icon]) -> ResourceTemplate {
    let mut template = ResourceTemplate::new(&def.uri_template, &def.name);
    template.title = def.title.clone();
    template.description = def.description.clone();
    template.mime_type = def.mime_type.clone();
    template.icons = super::mcp_icons(icons);
    template
}

/// An RFC 6570 level-1 URI template: literal text and `{name}` expressions, each of which
/// matches one or more characters other than `/`.
#[derive(Debug, PartialEq, Eq)]
struct UriTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable,
}

impl UriTemplate {
    /// Parse `text`; only `{name}` expressions (level 1) are served.
    fn parse(text: &str) -> Result<Self, &'static str> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or("an expression is not closed with `}`")?;
            let name = &rest[open + 1..open + close];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                return Err("only `{name}` expressions (RFC 6570 level 1) are supported");
            }
            if matches!(parts.last(), Some(Part::Variable)) {
                return Err("two expressions must be separated by literal text");
            }
            parts.push(Part::Variable);
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err("a `}` has no `{`");
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        if !matches!(parts.first(), Some(Part::Literal(_))) {
            return Err("it must start with literal text (a scheme)");
        }
        Ok(Self { parts })
    }

    /// The literal text before the first expression.
    fn prefix(&self) -> &str {
        match self.parts.first() {
            Some(Part::Literal(text)) => text,
            _ => "",
        }
    }

    /// Whether a URI this template matches could also match `other`'s (their prefixes are
    /// prefixes of one another).
    fn overlaps(&self, other: &UriTemplate) -> bool {
        self.prefix().starts_with(other.prefix()) || other.prefix().starts_with(self.prefix())
    }

    /// Whether `uri` is one of the URIs this template describes.
    fn matches(&self, uri: &str) -> bool {
        matches_parts(&self.parts, uri)
    }
}

fn matches_parts(parts: &[Part], uri: &str) -> bool {
    match parts.split_first() {
        None => uri.is_empty(),
        Some((Part::Literal(text), rest)) => uri
            .strip_prefix(text.as_str())
            .is_some_and(|uri| matches_parts(rest, uri)),
        Some((Part::Variable, rest)) => {
            let segment = uri.find('/').unwrap_or(uri.len());
            // At least one character, and the rest must match after some split of the segment.
            (1..=segment).any(|end| matches_parts(rest, &uri[end..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> UriTemplate {
        UriTemplate::parse(text).expect("a valid template")
    }

    #[test]
    fn a_variable_matches_one_segment() {
        let t = template("test://template/{id}/data");
        assert!(t.matches("test://template/123/data"));
        assert!(!t.matches("test://template/1/2/data"));
        assert!(!t.matches("test://template//data"));
        assert!(!t.matches("test://template/123/data/more"));
        assert!(template("notes://{id}").matches("notes://a.b"));
    }

    #[test]
    fn only_level_one_templates_starting_with_text_are_accepted() {
        for bad in [
            "{x}://a",
            "a://{+x}",
            "a://{x",
            "a://x}",
            "a://{x}{y}",
            "a://{?q}",
        ] {
            assert!(UriTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates_whose_prefixes_nest_overlap() {
        assert!(template("a://x/{id}").overlaps(&template("a://{id}")));
        assert!(!template("a://x/{id}").overlaps(&template("a://y/{id}")));
    }
}
