//! The values of `warden:mcp/resources`: what `list` and `templates` returned, read through
//! the same JSON mapping as every result, and the argument `read` is called with.

use serde::Deserialize;
use wasmtime::component::Val;

use super::prompts::listed;
use super::types::ExportedFunction;

/// A resource as the plugin's `list` described it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ResourceDef {
    pub uri: String,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
    pub size: Option<u64>,
}

/// A resource template as the plugin's `templates` described it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TemplateDef {
    pub uri_template: String,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
}

/// A resource function returned something that is not what `warden:mcp/resources` declares.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("`resources.{0}` returned a value that does not match its declared type")]
    Mismatch(&'static str),
}

/// The resources in `value`, the result of `list`.
pub fn resources_from(
    list: &ExportedFunction,
    value: Option<&Val>,
) -> Result<Vec<ResourceDef>, ResourceError> {
    listed(list, value).ok_or(ResourceError::Mismatch("list"))
}

/// The templates in `value`, the result of `templates`.
pub fn templates_from(
    templates: &ExportedFunction,
    value: Option<&Val>,
) -> Result<Vec<TemplateDef>, ResourceError> {
    listed(templates, value).ok_or(ResourceError::Mismatch("templates"))
}

/// The argument of `read`: the URI.
pub fn read_args(uri: &str) -> Vec<Val> {
    vec![Val::String(uri.to_owned())]
}
