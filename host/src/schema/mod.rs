//! WIT types <-> JSON Schema and JSON values.
//!
//! A plugin's exported functions are its tools ([`describe_component`]); this module turns their
//! parameter types into the tool's input JSON Schema ([`ExportedFunction::input_schema`]), the
//! agent's JSON arguments into component values, strictly ([`ExportedFunction::args_from_json`],
//! [`from_json`]), and results back into JSON ([`to_json`]). It knows nothing of MCP.
//!
//! # The mapping (warden's contract with agents and plugin authors)
//!
//! | WIT | JSON | JSON Schema |
//! |-----|------|-------------|
//! | `bool` | boolean | `{"type":"boolean"}` |
//! | `u8` ... `s64` | integer in the type's range | `{"type":"integer","minimum":..,"maximum":..}` |
//! | `f32`, `f64` | number | `{"type":"number"}` |
//! | `char` | string of exactly one Unicode scalar value | `{"type":"string","minLength":1,"maxLength":1}` |
//! | `string` | string | `{"type":"string"}` |
//! | `list<u8>` | base64 string (standard alphabet, padded) | `{"type":"string","contentEncoding":"base64"}` |
//! | `list<T>` | array | `{"type":"array","items":T}` |
//! | `tuple<A, B>` | array of exactly that many items | `prefixItems`, `items: false`, `minItems`/`maxItems` |
//! | `option<T>` | `null` for none, else the value | `{"anyOf":[T, {"type":"null"}]}` |
//! | `option<option<T>>` | `null`, `{"some": null}`, `{"some": v}` | the inner option wrapped as `{"some": ...}` |
//! | `result<T, E>` | `{"ok": v}` or `{"err": e}`, exactly one key; `null` for a missing payload type | `oneOf` of both |
//! | `record` | object, one key per field | `properties`, `required`, `additionalProperties: false` |
//! | `enum` | string, one of the case names | `{"type":"string","enum":[..]}` |
//! | `variant` | `{"tag": "case", "value": payload}`, `value` absent for a case without payload | `oneOf`, one object per case with `tag` a `const` |
//! | `flags` | array of the set flag names, each at most once | `{"type":"array","items":{"enum":[..]},"uniqueItems":true}` |
//!
//! - Names: every WIT identifier (parameter, field, enum case, variant tag, flag) appears in
//!   JSON in snake_case: `max-bytes` is `max_bytes` ([`json_name`]). WIT identifiers never
//!   contain `_`, so the mapping is one-to-one. Doc comments are rewritten to match: a
//!   function's and its types' docs name its parameters, fields, cases and flags by their JSON
//!   names ([`ExportedFunction::use_json_names_in_docs`]), so the model sends what it read.
//!   An unknown key is refused with the valid ones and the closest ([`closest`]).
//! - Omission: an `option` record field, parameter or variant payload may be omitted or `null`
//!   (it is then not in `required`); every other member is required. Unknown keys are rejected.
//! - Strictness: no coercion. `256` for a `u8`, `1.5` or `"3"` for an integer, `"ab"` for a
//!   `char`, an unknown enum case or flag, a duplicate flag, a tuple of the wrong length: each is
//!   an [`InputError`] that names where (`entries[3].size`) and what (`300 is out of range for
//!   u8`; `expected integer, got string`). Integral floats (`3.0`) are integers, as in JSON
//!   Schema. A number too large for `f32` is out of range; others round to the nearest `f32`.
//! - Error paths start at the argument name, then `.field`, `[index]`, `.ok`/`.err`, `.value`
//!   (variant payload) and `.some` (inner option), all with JSON names.
//! - Output ([`to_json`]) writes the same encoding, with `none` record fields as `null` and flags
//!   in declaration order. JSON has no NaN or infinity: such floats are written as `null`.
//! - Docs: record, variant, enum and flags docs become `description`; record field and variant
//!   case docs the `description` of their property or `oneOf` branch; documented enum cases are
//!   listed in the enum's `description`.
//! - Unsupported (rejected by [`describe_component`], naming the function and parameter):
//!   resource handles and resource functions, `async` functions, futures, streams, error
//!   contexts, maps and fixed-length lists.

mod completions;
mod decode;
mod docs;
mod error;
mod input;
mod json_schema;
mod names;
mod output;
mod prompts;
mod resources;
mod types;

#[cfg(test)]
mod tests;

pub use completions::{CompletionRef, complete_args, completions_from};
pub use decode::{DescribeError, describe_component};
pub use docs::{WIT_DOCS_SECTION, WIT_SOURCE_SECTION, embed_wit_docs};
pub use error::{InputError, OutputError};
pub use input::from_json;
pub use json_schema::{DRAFT_2020_12, json_schema};
pub use names::{closest, json_names_in};
pub use output::to_json;
pub use prompts::{PromptArgDef, PromptDef, PromptError, get_args, prompts_from, result_json};
pub use resources::{
    ResourceDef, ResourceError, TemplateDef, read_args, resources_from, templates_from,
};
pub use types::{
    Case, ComponentDescription, Enum, ExportedFunction, Field, Flags, Param, PromptExports, Record,
    ResourceExports, TypeName, Variant, WitType,
};

/// The JSON name of a WIT identifier: kebab-case to snake_case (`max-bytes` -> `max_bytes`).
///
/// Letters keep their case (`get-URL` -> `get_URL`). One-to-one on WIT identifiers, which never
/// contain `_`.
pub fn json_name(wit_name: &str) -> String {
    wit_name.replace('-', "_")
}

/// Whether `json` is [`json_name`] of `wit_name`, without building it: conversions compare
/// every member of every object this way.
pub fn is_json_name(wit_name: &str, json: &str) -> bool {
    wit_name.len() == json.len()
        && wit_name
            .bytes()
            .zip(json.bytes())
            .all(|(w, j)| if w == b'-' { j == b'_' } else { w == j })
}
