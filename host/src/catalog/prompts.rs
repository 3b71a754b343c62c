//! Prompts: every prompt a plugin's `warden:mcp/prompts.list` gave at load, under its MCP
//! name (`{prefix}__{name}`, the rules of tool names), with the texts the review reads.

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::model::{Prompt, PromptArgument};

use super::CatalogError;
use crate::manifest::{is_valid_tool_name, prefixed_tool_name};
use crate::runtime::Plugin;
use crate::schema::PromptDef;

/// One prompt of a plugin, and how clients see it.
pub struct PromptEntry {
    /// The plugin that offers it.
    pub plugin: Arc<Plugin>,
    /// Index of the prompt in `plugin.prompts`.
    pub index: usize,
    /// The MCP descriptor served by `prompts/list`.
    pub descriptor: Prompt,
}

impl PromptEntry {
    /// The prompt as the plugin described it (its own name is the one `get` takes).
    pub fn def(&self) -> &PromptDef {
        &self.plugin.prompts[self.index]
    }

    /// The prompt's served name.
    pub fn name(&self) -> &str {
        &self.descriptor.name
    }

    /// Every text of the prompt a model reads, as (field, text): `description`, `title`,
    /// then each argument's name and description.
    pub fn texts(&self) -> Vec<(String, &str)> {
        let def = self.def();
        let mut out = Vec::new();
        if let Some(description) = &def.description {
            out.push(("description".to_owned(), description.as_str()));
        }
        if let Some(title) = &def.title {
            out.push(("title".to_owned(), title.as_str()));
        }
        for argument in &def.arguments {
            let here = format!("argument {}", argument.name);
            out.push((format!("{here} (name)"), argument.name.as_str()));
            if let Some(description) = &argument.description {
                out.push((format!("{here} description"), description.as_str()));
            }
        }
        out
    }
}

/// The prompts of `plugins`, named, with their positions by name. Reports every problem.
pub(super) fn build(
    plugins: &[Arc<Plugin>],
    errors: &mut Vec<CatalogError>,
) -> (Vec<Arc<PromptEntry>>, HashMap<String, usize>) {
    let mut prompts: Vec<Arc<PromptEntry>> = Vec::new();
    let mut by_name = HashMap::new();
    for plugin in plugins {
        for (index, def) in plugin.prompts.iter().enumerate() {
            let name = prefixed_tool_name(&plugin.config.prefix, &def.name);
            let location = plugin.config.location.clone();
            if !is_valid_tool_name(&name) {
                errors.push(CatalogError {
                    location,
                    message: format!(
                        "prompt name `{name}` must be 1 to 64 characters from A-Z, a-z, 0-9, _ and -"
                    ),
                });
                continue;
            }
            if let Some(&other) = by_name.get(&name) {
                let other: &Arc<PromptEntry> = &prompts[other];
                errors.push(CatalogError {
                    location,
                    message: format!(
                        "prompt name `{name}` (plugin `{}`) is already used by plugin `{}`; set a different `prefix`",
                        plugin.config.name, other.plugin.config.name,
                    ),
                });
                continue;
            }
            by_name.insert(name.clone(), prompts.len());
            prompts.push(Arc::new(PromptEntry {
                plugin: plugin.clone(),
                index,
                descriptor: descriptor(name, def, &plugin.config.icons),
            }));
        }
    }
    (prompts, by_name)
}

fn descriptor(name: String, def: &PromptDef, icons: &[crate::manifest::Icon]) -> Prompt {
    let arguments = def
        .arguments
        .iter()
        .map(|argument| {
            let mut served = PromptArgument::new(&argument.name).with_required(argument.required);
            served.description = argument.description.clone();
            served
        })
        .collect();
    let mut prompt = Prompt::new(name, def.description.clone(), Some(arguments));
    prompt.title = def.title.clone();
    prompt.icons = super::mcp_icons(icons);
    prompt
}
