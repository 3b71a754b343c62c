//! The values of `warden:mcp/completions`: the arguments `complete` is called with, and the
//! suggestions it returned, read through the same JSON mapping as every result.

use wasmtime::component::Val;

use super::prompts::listed;
use super::types::ExportedFunction;

/// What is being completed, as the plugin knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionRef<'a> {
    /// A prompt, by the name its `list` gave.
    Prompt(&'a str),
    /// A resource template, by its URI template.
    ResourceTemplate(&'a str),
}

/// The arguments of `complete`: the reference, the argument's name, what was typed so far, and
/// the other arguments' values (name, value).
pub fn complete_args(
    reference: CompletionRef<'_>,
    argument: &str,
    value: &str,
    context: &[(String, String)],
) -> Vec<Val> {
    let reference = match reference {
        CompletionRef::Prompt(name) => ("prompt", name),
        CompletionRef::ResourceTemplate(template) => ("resource-template", template),
    };
    let pairs = context
        .iter()
        .map(|(key, value)| Val::Tuple(vec![Val::String(key.clone()), Val::String(value.clone())]))
        .collect();
    vec![
        Val::Variant(
            reference.0.to_owned(),
            Some(Box::new(Val::String(reference.1.to_owned()))),
        ),
        Val::String(argument.to_owned()),
        Val::String(value.to_owned()),
        Val::List(pairs),
    ]
}

/// The suggestions in `value`, the result of `complete`; `None` when it is not a
/// `list<string>`.
pub fn completions_from(complete: &ExportedFunction, value: Option<&Val>) -> Option<Vec<String>> {
    listed(complete, value)
}
