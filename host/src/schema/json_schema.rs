//! JSON Schema (draft 2020-12) of WIT types and of a tool's input.
//!
//! Schemas are written inline, which clients and models handle best (WIT types are never
//! recursive), except in a tool's input and output schemas for a named record, variant, enum
//! or flags type that occurs more than once (in several parameters, or twice inside another
//! type): its schema is written once under `$defs` (keyed by its WIT name) and each use is a
//! `$ref` to it. The values accepted are the same either way: arguments are read by their WIT
//! type, and the schema says exactly what that accepts.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::json_name;
use super::types::{Enum, ExportedFunction, Field, Flags, Record, TypeName, Variant, WitType};

/// The named types written under `$defs`: `(interface, name)` -> the `$defs` key.
#[derive(Default)]
struct Refs(HashMap<(Option<String>, String), String>);

impl Refs {
    /// `{"$ref": ...}` if `ty` is written under `$defs`.
    fn reference(&self, ty: &WitType) -> Option<Value> {
        let name = type_name(ty)?;
        let key = self.0.get(&(name.interface.clone(), name.name.clone()))?;
        Some(json!({ "$ref": format!("#/$defs/{key}") }))
    }
}

/// The name of a named composite type.
fn type_name(ty: &WitType) -> Option<&TypeName> {
    match ty {
        WitType::Record(r) => r.name.as_ref(),
        WitType::Variant(v) => v.name.as_ref(),
        WitType::Enum(e) => e.name.as_ref(),
        WitType::Flags(f) => f.name.as_ref(),
        _ => None,
    }
}

/// Counts every occurrence of each named composite type in `ty` (its own included), keeping
/// one instance of each.
fn count<'a>(
    ty: &'a WitType,
    counts: &mut HashMap<(Option<String>, String), (usize, &'a WitType)>,
) {
    if let Some(name) = type_name(ty) {
        counts
            .entry((name.interface.clone(), name.name.clone()))
            .or_insert((0, ty))
            .0 += 1;
    }
    match ty {
        WitType::List(inner) | WitType::Option(inner) => count(inner, counts),
        WitType::Result { ok, err } => {
            for side in [ok, err].into_iter().flatten() {
                count(side, counts);
            }
        }
        WitType::Tuple(types) => types.iter().for_each(|t| count(t, counts)),
        WitType::Record(record) => record.fields.iter().for_each(|f| count(&f.ty, counts)),
        WitType::Variant(variant) => variant
            .cases
            .iter()
            .filter_map(|c| c.ty.as_ref())
            .for_each(|t| count(t, counts)),
        _ => {}
    }
}

/// The `$schema` of every input schema warden publishes.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// The JSON Schema of values of `ty`, as read by [`from_json`](super::from_json) and written
/// by [`to_json`](super::to_json).
///
/// For an `option<T>` this is the nullable schema used everywhere but in record fields and
/// parameters, where the key may also be omitted (see the module documentation).
pub fn json_schema(ty: &WitType) -> Value {
    schema(ty, &Refs::default())
}

/// `ty`'s schema, with a `$ref` for each type in `refs`.
fn schema(ty: &WitType, refs: &Refs) -> Value {
    if let Some(reference) = refs.reference(ty) {
        return reference;
    }
    body(ty, refs)
}

/// `ty`'s own schema (never a `$ref` to itself), with a `$ref` for each type in `refs` within.
fn body(ty: &WitType, refs: &Refs) -> Value {
    match ty {
        WitType::Bool => json!({ "type": "boolean" }),
        WitType::U8 => integer(u8::MIN, u8::MAX),
        WitType::U16 => integer(u16::MIN, u16::MAX),
        WitType::U32 => integer(u32::MIN, u32::MAX),
        WitType::U64 => integer(u64::MIN, u64::MAX),
        WitType::S8 => integer(i8::MIN, i8::MAX),
        WitType::S16 => integer(i16::MIN, i16::MAX),
        WitType::S32 => integer(i32::MIN, i32::MAX),
        WitType::S64 => integer(i64::MIN, i64::MAX),
        WitType::F32 | WitType::F64 => json!({ "type": "number" }),
        WitType::Char => json!({ "type": "string", "minLength": 1, "maxLength": 1 }),
        WitType::String => json!({ "type": "string" }),
        WitType::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
        WitType::List(element) => json!({ "type": "array", "items": schema(element, refs) }),
        WitType::Option(inner) => {
            json!({ "anyOf": [some_schema(inner, refs), { "type": "null" }] })
        }
        WitType::Result { ok, err } => json!({
            "oneOf": [
                single_key_object("ok", payload_schema(ok.as_deref(), refs)),
                single_key_object("err", payload_schema(err.as_deref(), refs)),
            ]
        }),
        WitType::Tuple(types) => json!({
            "type": "array",
            "prefixItems": types.iter().map(|t| schema(t, refs)).collect::<Vec<_>>(),
            "items": false,
            "minItems": types.len(),
            "maxItems": types.len(),
        }),
        WitType::Record(record) => record_schema(record, refs),
        WitType::Variant(variant) => variant_schema(variant, refs),
        WitType::Enum(enumeration) => enum_schema(enumeration),
        WitType::Flags(flags) => flags_schema(flags),
    }
}

/// The JSON Schema of values of `ty` as [`json_schema`] writes it, but with each named type
/// that occurs more than once in `ty` written once in the returned `$defs` (to be put at the
/// root of the schema document that holds the first value) and referenced with `$ref`s.
pub fn json_schema_with_defs(ty: &WitType) -> (Value, Option<Map<String, Value>>) {
    let (refs, defs) = shared(std::iter::once(ty));
    (schema(ty, &refs), defs)
}

/// The named types that occur more than once in `types`, each under its WIT name (two types
/// of one name, from two interfaces, stay inline), and their `$defs`.
fn shared<'a>(types: impl Iterator<Item = &'a WitType>) -> (Refs, Option<Map<String, Value>>) {
    let mut counts = HashMap::new();
    for ty in types {
        count(ty, &mut counts);
    }
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (_, name) in counts.keys() {
        *by_name.entry(name.as_str()).or_default() += 1;
    }
    let mut refs = Refs::default();
    let mut shared = Vec::new();
    for (key, (n, ty)) in &counts {
        if *n > 1 && by_name.get(key.1.as_str()) == Some(&1) {
            refs.0.insert(key.clone(), key.1.clone());
            shared.push((key.1.clone(), *ty));
        }
    }
    if shared.is_empty() {
        return (refs, None);
    }
    shared.sort_by(|a, b| a.0.cmp(&b.0));
    let defs = shared
        .into_iter()
        .map(|(key, ty)| (key, body(ty, &refs)))
        .collect();
    (refs, Some(defs))
}

impl ExportedFunction {
    /// The JSON Schema (draft 2020-12) of this tool's input: an object with one property per
    /// parameter (named by [`json_name`]), every parameter that is not an `option` required, and
    /// no other property allowed.
    ///
    /// A named composite type that occurs more than once is written under `$defs` (see the
    /// module documentation).
    pub fn input_schema(&self) -> Map<String, Value> {
        let (refs, defs) = shared(self.params.iter().map(|p| &p.ty));
        let mut properties = Map::new();
        let mut required = Vec::new();
        for param in &self.params {
            let name = json_name(&param.name);
            if !matches!(param.ty, WitType::Option(_)) {
                required.push(Value::String(name.clone()));
            }
            properties.insert(name, schema(&param.ty, &refs));
        }
        let mut out = Map::new();
        out.insert("$schema".into(), DRAFT_2020_12.into());
        out.insert("type".into(), "object".into());
        out.insert("properties".into(), Value::Object(properties));
        out.insert("required".into(), Value::Array(required));
        out.insert("additionalProperties".into(), false.into());
        if let Some(defs) = defs {
            out.insert("$defs".into(), Value::Object(defs));
        }
        out
    }
}

fn integer<T: Into<Value>>(minimum: T, maximum: T) -> Value {
    json!({ "type": "integer", "minimum": minimum.into(), "maximum": maximum.into() })
}

/// The schema of the `some` side of an `option<inner>`: `inner`'s, except that a nested option
/// is wrapped as `{"some": ...}` so that `null` stays unambiguous.
fn some_schema(inner: &WitType, refs: &Refs) -> Value {
    if matches!(inner, WitType::Option(_)) {
        single_key_object("some", schema(inner, refs))
    } else {
        schema(inner, refs)
    }
}

/// The schema of a payload that may be absent from the WIT type (`result<_, E>`): `null`.
fn payload_schema(ty: Option<&WitType>, refs: &Refs) -> Value {
    ty.map_or_else(|| json!({ "type": "null" }), |ty| schema(ty, refs))
}

/// `{"key": <schema>}` with the key required and nothing else allowed.
fn single_key_object(key: &str, schema: Value) -> Value {
    json!({
        "type": "object",
        "properties": { key: schema },
        "required": [key],
        "additionalProperties": false,
    })
}

fn record_schema(record: &Record, refs: &Refs) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for Field { name, docs, ty } in &record.fields {
        let name = json_name(name);
        if !matches!(ty, WitType::Option(_)) {
            required.push(Value::String(name.clone()));
        }
        properties.insert(name, with_description(schema(ty, refs), docs.as_deref()));
    }
    let schema = json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    });
    with_description(schema, record.docs.as_deref())
}

fn variant_schema(variant: &Variant, refs: &Refs) -> Value {
    let cases = variant
        .cases
        .iter()
        .map(|case| {
            let mut properties = Map::new();
            properties.insert("tag".into(), json!({ "const": json_name(&case.name) }));
            let mut required = vec![Value::from("tag")];
            if let Some(ty) = &case.ty {
                properties.insert("value".into(), schema(ty, refs));
                if !matches!(ty, WitType::Option(_)) {
                    required.push("value".into());
                }
            }
            let schema = json!({
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            });
            with_description(schema, case.docs.as_deref())
        })
        .collect::<Vec<_>>();
    with_description(json!({ "oneOf": cases }), variant.docs.as_deref())
}

fn enum_schema(enumeration: &Enum) -> Value {
    let names = enumeration
        .cases
        .iter()
        .map(|(name, _)| json_name(name))
        .collect::<Vec<_>>();
    // JSON Schema has no place for per-value docs in `enum`: list documented cases in the
    // description instead.
    let case_docs = enumeration
        .cases
        .iter()
        .filter_map(|(name, docs)| Some(format!("- `{}`: {}", json_name(name), docs.as_ref()?)))
        .collect::<Vec<_>>();
    let description = match (&enumeration.docs, case_docs.is_empty()) {
        (docs, true) => docs.clone(),
        (None, false) => Some(case_docs.join("\n")),
        (Some(docs), false) => Some(format!("{docs}\n\n{}", case_docs.join("\n"))),
    };
    with_description(
        json!({ "type": "string", "enum": names }),
        description.as_deref(),
    )
}

fn flags_schema(flags: &Flags) -> Value {
    let names = flags
        .flags
        .iter()
        .map(|name| json_name(name))
        .collect::<Vec<_>>();
    let schema = json!({
        "type": "array",
        "items": { "type": "string", "enum": names },
        "uniqueItems": true,
    });
    with_description(schema, flags.docs.as_deref())
}

/// Add `"description": docs` to an object schema (replacing any description it had).
fn with_description(mut schema: Value, docs: Option<&str>) -> Value {
    if let (Some(docs), Value::Object(map)) = (docs, &mut schema) {
        map.insert("description".into(), docs.into());
    }
    schema
}
