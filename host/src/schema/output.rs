//! Component values -> JSON, checking that each value matches its declared type.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};
use wasmtime::component::Val;

use super::error::{OutputError, field_path, index_path};
use super::json_name;
use super::types::{Case, Record, Variant, WitType};

/// Convert a value of type `ty` (typically a function's result, as lifted by wasmtime) into
/// JSON, as documented in the module documentation.
///
/// The result is always accepted back by [`from_json`](super::from_json), except for
/// non-finite floats, which JSON cannot represent and which become `null`. A `none` record field
/// is written as `null` (not omitted).
///
/// Fails only if `value` does not match `ty`, which means the plugin (or the host's view of its
/// types) is wrong.
pub fn to_json(ty: &WitType, value: &Val) -> Result<Value, OutputError> {
    convert(ty, value, "")
}

fn convert(ty: &WitType, value: &Val, path: &str) -> Result<Value, OutputError> {
    Ok(match (ty, value) {
        (WitType::Bool, Val::Bool(b)) => Value::Bool(*b),
        (WitType::U8, Val::U8(n)) => Value::from(*n),
        (WitType::U16, Val::U16(n)) => Value::from(*n),
        (WitType::U32, Val::U32(n)) => Value::from(*n),
        (WitType::U64, Val::U64(n)) => Value::from(*n),
        (WitType::S8, Val::S8(n)) => Value::from(*n),
        (WitType::S16, Val::S16(n)) => Value::from(*n),
        (WitType::S32, Val::S32(n)) => Value::from(*n),
        (WitType::S64, Val::S64(n)) => Value::from(*n),
        (WitType::F32, Val::Float32(x)) => float(f64::from(*x)),
        (WitType::F64, Val::Float64(x)) => float(*x),
        (WitType::Char, Val::Char(c)) => Value::String(c.to_string()),
        (WitType::String, Val::String(s)) => Value::String(s.clone()),
        (WitType::Bytes, Val::List(items)) => {
            let bytes = items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Val::U8(byte) => Ok(*byte),
                    other => Err(mismatch(&index_path(path, i), &WitType::U8, other)),
                })
                .collect::<Result<Vec<u8>, _>>()?;
            Value::String(BASE64.encode(bytes))
        }
        (WitType::List(element), Val::List(items)) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| convert(element, item, &index_path(path, i)))
                .collect::<Result<_, _>>()?,
        ),
        (WitType::Option(_), Val::Option(None)) => Value::Null,
        (WitType::Option(inner), Val::Option(Some(some))) => {
            if matches!(**inner, WitType::Option(_)) {
                let path = field_path(path, "some");
                single_key_object("some", convert(inner, some, &path)?)
            } else {
                convert(inner, some, path)?
            }
        }
        (WitType::Result { ok, .. }, Val::Result(Ok(payload))) => single_key_object(
            "ok",
            self::payload(ok.as_deref(), payload.as_deref(), path, "ok")?,
        ),
        (WitType::Result { err, .. }, Val::Result(Err(payload))) => {
            let value = self::payload(err.as_deref(), payload.as_deref(), path, "err")?;
            single_key_object("err", value)
        }
        (WitType::Tuple(types), Val::Tuple(items)) => {
            if types.len() != items.len() {
                return Err(OutputError::new(
                    path,
                    format!(
                        "expected a tuple of {} items, got {}",
                        types.len(),
                        items.len()
                    ),
                ));
            }
            Value::Array(
                types
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (ty, item))| convert(ty, item, &index_path(path, i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        (WitType::Record(record), Val::Record(fields)) => self::record(record, fields, path)?,
        (WitType::Variant(variant), Val::Variant(name, payload)) => {
            self::variant(variant, name, payload.as_deref(), path)?
        }
        (WitType::Enum(enumeration), Val::Enum(name)) => {
            if !enumeration.cases.iter().any(|(case, _)| case == name) {
                return Err(OutputError::new(
                    path,
                    format!("unknown enum case `{name}`"),
                ));
            }
            Value::String(json_name(name))
        }
        (WitType::Flags(flags), Val::Flags(names)) => {
            if let Some(unknown) = names.iter().find(|name| !flags.flags.contains(name)) {
                return Err(OutputError::new(path, format!("unknown flag `{unknown}`")));
            }
            // Declaration order, each flag once.
            Value::Array(
                flags
                    .flags
                    .iter()
                    .filter(|flag| names.contains(flag))
                    .map(|flag| Value::String(json_name(flag)))
                    .collect(),
            )
        }
        (ty, value) => return Err(mismatch(path, ty, value)),
    })
}

/// A finite float as a JSON number; NaN and infinities as `null`.
fn float(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// The payload of a `result` case: `null` when the type has none.
fn payload(
    ty: Option<&WitType>,
    value: Option<&Val>,
    path: &str,
    key: &str,
) -> Result<Value, OutputError> {
    let path = field_path(path, key);
    match (ty, value) {
        (Some(ty), Some(value)) => convert(ty, value, &path),
        (None, None) => Ok(Value::Null),
        (Some(_), None) => Err(OutputError::new(&path, "missing payload")),
        (None, Some(_)) => Err(OutputError::new(&path, "unexpected payload")),
    }
}

fn record(record: &Record, fields: &[(String, Val)], path: &str) -> Result<Value, OutputError> {
    if record.fields.len() != fields.len() {
        return Err(OutputError::new(
            path,
            format!(
                "expected {} fields, got {}",
                record.fields.len(),
                fields.len()
            ),
        ));
    }
    let mut object = Map::new();
    for (field, (name, value)) in record.fields.iter().zip(fields) {
        if field.name != *name {
            return Err(OutputError::new(
                path,
                format!("expected field `{}`, got `{name}`", field.name),
            ));
        }
        let key = json_name(name);
        let value = convert(&field.ty, value, &field_path(path, &key))?;
        object.insert(key, value);
    }
    Ok(Value::Object(object))
}

fn variant(
    variant: &Variant,
    name: &str,
    payload: Option<&Val>,
    path: &str,
) -> Result<Value, OutputError> {
    let Some(Case { ty, .. }) = variant.cases.iter().find(|case| case.name == name) else {
        return Err(OutputError::new(
            path,
            format!("unknown variant case `{name}`"),
        ));
    };
    let mut object = Map::new();
    object.insert("tag".into(), Value::String(json_name(name)));
    let value_path = field_path(path, "value");
    match (ty, payload) {
        (Some(ty), Some(payload)) => {
            object.insert("value".into(), convert(ty, payload, &value_path)?);
        }
        (None, None) => {}
        (Some(_), None) => return Err(OutputError::new(&value_path, "missing payload")),
        (None, Some(_)) => return Err(OutputError::new(&value_path, "unexpected payload")),
    }
    Ok(Value::Object(object))
}

fn single_key_object(key: &str, value: Value) -> Value {
    let mut object = Map::new();
    object.insert(key.into(), value);
    Value::Object(object)
}

/// `expected {type}, got {kind of value}`.
fn mismatch(path: &str, expected: &WitType, got: &Val) -> OutputError {
    OutputError::new(
        path,
        format!("expected {}, got {}", type_kind(expected), val_kind(got)),
    )
}

fn type_kind(ty: &WitType) -> &'static str {
    match ty {
        WitType::Bool => "bool",
        WitType::U8 => "u8",
        WitType::U16 => "u16",
        WitType::U32 => "u32",
        WitType::U64 => "u64",
        WitType::S8 => "s8",
        WitType::S16 => "s16",
        WitType::S32 => "s32",
        WitType::S64 => "s64",
        WitType::F32 => "f32",
        WitType::F64 => "f64",
        WitType::Char => "char",
        WitType::String => "string",
        WitType::Bytes => "list<u8>",
        WitType::List(_) => "list",
        WitType::Option(_) => "option",
        WitType::Result { .. } => "result",
        WitType::Tuple(_) => "tuple",
        WitType::Record(_) => "record",
        WitType::Variant(_) => "variant",
        WitType::Enum(_) => "enum",
        WitType::Flags(_) => "flags",
    }
}

fn val_kind(value: &Val) -> &'static str {
    match value {
        Val::Bool(_) => "bool",
        Val::S8(_) => "s8",
        Val::U8(_) => "u8",
        Val::S16(_) => "s16",
        Val::U16(_) => "u16",
        Val::S32(_) => "s32",
        Val::U32(_) => "u32",
        Val::S64(_) => "s64",
        Val::U64(_) => "u64",
        Val::Float32(_) => "f32",
        Val::Float64(_) => "f64",
        Val::Char(_) => "char",
        Val::String(_) => "string",
        Val::List(_) => "list",
        Val::Map(_) => "map",
        Val::Record(_) => "record",
        Val::Tuple(_) => "tuple",
        Val::Variant(..) => "variant",
        Val::Enum(_) => "enum",
        Val::Option(_) => "option",
        Val::Result(_) => "result",
        Val::Flags(_) => "flags",
        Val::Resource(_) => "resource",
        Val::Future(_) => "future",
        Val::Stream(_) => "stream",
        Val::ErrorContext(_) => "error-context",
        Val::FixedLengthList(_) => "fixed-length list",
    }
}
