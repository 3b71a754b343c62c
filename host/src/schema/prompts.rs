//! The values of `warden:mcp/prompts`: what `list` returned, read through the same JSON
//! mapping as every result ([`to_json`]), and the arguments `get` is called with.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use wasmtime::component::Val;

use super::types::ExportedFunction;
use super::{WitType, to_json};

/// A prompt as the plugin's `list` described it, its name as the plugin gave it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PromptDef {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub arguments: Vec<PromptArgDef>,
}

/// One argument of a [`PromptDef`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PromptArgDef {
    pub name: String,
    pub description: Option<String>,
    pub required: bool,
}

/// A prompt function returned something that is not what `warden:mcp/prompts` declares.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("`prompts.list` returned a value that does not match `list<prompt>`")]
    Mismatch,
}

/// The prompts in `value`, the result of `list`.
pub fn prompts_from(
    list: &ExportedFunction,
    value: Option<&Val>,
) -> Result<Vec<PromptDef>, PromptError> {
    listed(list, value).ok_or(PromptError::Mismatch)
}

/// The items of `value`, the result of a listing function of warden's own exports, read
/// through [`to_json`]; `None` when it is not a list of `T`.
pub(super) fn listed<T: DeserializeOwned>(
    function: &ExportedFunction,
    value: Option<&Val>,
) -> Option<Vec<T>> {
    let (Some(ty), Some(value)) = (&function.result, value) else {
        return None;
    };
    let json = to_json(ty, value).ok()?;
    serde_json::from_value(json).ok()
}

/// The arguments of `get`: the prompt's name (as the plugin gave it) and the (name, value)
/// pairs.
pub fn get_args(name: &str, arguments: &[(String, String)]) -> Vec<Val> {
    let pairs = arguments
        .iter()
        .map(|(key, value)| Val::Tuple(vec![Val::String(key.clone()), Val::String(value.clone())]))
        .collect();
    vec![Val::String(name.to_owned()), Val::List(pairs)]
}

/// The JSON form of a `result` a function of warden's own exports returned (`{"ok": ...}` or
/// `{"err": ...}`: `get`'s, `read`'s), for the gate to map.
pub fn result_json(function: &ExportedFunction, value: Option<&Val>) -> Option<Value> {
    match (&function.result, value) {
        (Some(ty @ WitType::Result { .. }), Some(value)) => to_json(ty, value).ok(),
        _ => None,
    }
}
