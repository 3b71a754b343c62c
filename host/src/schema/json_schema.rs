//! JSON Schema (draft 2020-12) of WIT types and of a tool's input.
//!
//! Schemas are written inline (no `$ref`/`$defs`): WIT types are not recursive, and clients
//! and models handle inline schemas best.

use serde_json::{Map, Value, json};

use super::json_name;
use super::types::{Enum, ExportedFunction, Field, Flags, Record, Variant, WitType};

/// The `$schema` of every input schema warden publishes.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// The JSON Schema of values of `ty`, as read by [`from_json`](super::from_json) and written
/// by [`to_json`](super::to_json).
///
/// For an `option<T>` this is the nullable schema used everywhere but in record fields and
/// parameters, where the key may also be omitted (see the module documentation).
pub fn json_schema(ty: &WitType) -> Value {
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
        WitType::List(element) => json!({ "type": "array", "items": json_schema(element) }),
        WitType::Option(inner) => json!({ "anyOf": [some_schema(inner), { "type": "null" }] }),
        WitType::Result { ok, err } => json!({
            "oneOf": [
                single_key_object("ok", payload_schema(ok.as_deref())),
                single_key_object("err", payload_schema(err.as_deref())),
            ]
        }),
        WitType::Tuple(types) => json!({
            "type": "array",
            "prefixItems": types.iter().map(json_schema).collect::<Vec<_>>(),
            "items": false,
            "minItems": types.len(),
            "maxItems": types.len(),
        }),
        WitType::Record(record) => record_schema(record),
        WitType::Variant(variant) => variant_schema(variant),
        WitType::Enum(enumeration) => enum_schema(enumeration),
        WitType::Flags(flags) => flags_schema(flags),
    }
}

impl ExportedFunction {
    /// The JSON Schema (draft 2020-12) of this tool's input: an object with one property per
    /// parameter (named by [`json_name`]), every parameter that is not an `option` required, and
    /// no other property allowed.
    pub fn input_schema(&self) -> Map<String, Value> {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for param in &self.params {
            let name = json_name(&param.name);
            if !matches!(param.ty, WitType::Option(_)) {
                required.push(Value::String(name.clone()));
            }
            properties.insert(name, json_schema(&param.ty));
        }
        let mut schema = Map::new();
        schema.insert("$schema".into(), DRAFT_2020_12.into());
        schema.insert("type".into(), "object".into());
        schema.insert("properties".into(), Value::Object(properties));
        schema.insert("required".into(), Value::Array(required));
        schema.insert("additionalProperties".into(), false.into());
        schema
    }
}

fn integer<T: Into<Value>>(minimum: T, maximum: T) -> Value {
    json!({ "type": "integer", "minimum": minimum.into(), "maximum": maximum.into() })
}

/// The schema of the `some` side of an `option<inner>`: `inner`'s, except that a nested option
/// is wrapped as `{"some": ...}` so that `null` stays unambiguous.
fn some_schema(inner: &WitType) -> Value {
    if matches!(inner, WitType::Option(_)) {
        single_key_object("some", json_schema(inner))
    } else {
        json_schema(inner)
    }
}

/// The schema of a payload that may be absent from the WIT type (`result<_, E>`): `null`.
fn payload_schema(ty: Option<&WitType>) -> Value {
    ty.map_or_else(|| json!({ "type": "null" }), json_schema)
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

fn record_schema(record: &Record) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for Field { name, docs, ty } in &record.fields {
        let name = json_name(name);
        if !matches!(ty, WitType::Option(_)) {
            required.push(Value::String(name.clone()));
        }
        properties.insert(name, with_description(json_schema(ty), docs.as_deref()));
    }
    let schema = json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    });
    with_description(schema, record.docs.as_deref())
}

fn variant_schema(variant: &Variant) -> Value {
    let cases = variant
        .cases
        .iter()
        .map(|case| {
            let mut properties = Map::new();
            properties.insert("tag".into(), json!({ "const": json_name(&case.name) }));
            let mut required = vec![Value::from("tag")];
            if let Some(ty) = &case.ty {
                properties.insert("value".into(), json_schema(ty));
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
