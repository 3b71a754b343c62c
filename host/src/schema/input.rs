//! JSON -> component values, strictly: a value that does not match its type exactly is an
//! [`InputError`] naming where and why, never a silent coercion.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};
use wasmtime::component::Val;

use super::error::{InputError, field_path, index_path};
use super::names::unknown_key;
use super::types::{Enum, ExportedFunction, Flags, Record, Variant, WitType};
use super::{is_json_name, json_name};

/// At most this many characters of an offending JSON value are quoted in an error message.
const PREVIEW_CHARS: usize = 64;

impl ExportedFunction {
    /// Convert a tool call's JSON arguments into this function's parameter values, in order.
    ///
    /// `None` stands for no arguments (an empty object). Each parameter is read from the key
    /// [`json_name`] of its WIT name with [`from_json`]; a missing `option` parameter is `none`,
    /// a missing parameter of any other type and any unknown key are errors.
    pub fn args_from_json(
        &self,
        args: Option<&Map<String, Value>>,
    ) -> Result<Vec<Val>, InputError> {
        let empty = Map::new();
        let args = args.unwrap_or(&empty);
        if let Some(unknown) = args.keys().find(|key| {
            !self
                .params
                .iter()
                .any(|param| is_json_name(&param.name, key))
        }) {
            let names: Vec<String> = self
                .params
                .iter()
                .map(|param| json_name(&param.name))
                .collect();
            return Err(InputError::new(
                "",
                unknown_key("argument", unknown, &quote(unknown), &names),
            ));
        }
        self.params
            .iter()
            .map(|param| member(args, &json_key(&param.name), &param.ty, ""))
            .collect()
    }
}

/// Convert the JSON `value` into a value of type `ty`, exactly as documented in the module
/// documentation.
///
/// `path` locates `value` for error messages (e.g. the argument's name); pass `""` at the top
/// level. Errors name the innermost offending path, e.g. `entries[3].size: 300 is out of range
/// for u8`.
pub fn from_json(ty: &WitType, value: &Value, path: &str) -> Result<Val, InputError> {
    match ty {
        WitType::Bool => match value {
            Value::Bool(b) => Ok(Val::Bool(*b)),
            _ => Err(mismatch(path, "boolean", value)),
        },
        WitType::U8 => integer(value, path, "u8").map(Val::U8),
        WitType::U16 => integer(value, path, "u16").map(Val::U16),
        WitType::U32 => integer(value, path, "u32").map(Val::U32),
        WitType::U64 => integer(value, path, "u64").map(Val::U64),
        WitType::S8 => integer(value, path, "s8").map(Val::S8),
        WitType::S16 => integer(value, path, "s16").map(Val::S16),
        WitType::S32 => integer(value, path, "s32").map(Val::S32),
        WitType::S64 => integer(value, path, "s64").map(Val::S64),
        WitType::F32 => float32(value, path).map(Val::Float32),
        WitType::F64 => number(value, path).map(Val::Float64),
        WitType::Char => {
            let text = string(value, path)?;
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Ok(Val::Char(c)),
                _ => Err(InputError::new(
                    path,
                    format!("expected a single character, got {}", preview(value)),
                )),
            }
        }
        WitType::String => string(value, path).map(|text| Val::String(text.to_owned())),
        WitType::Bytes => {
            let bytes = BASE64
                .decode(string(value, path)?)
                .map_err(|e| InputError::new(path, format!("invalid base64: {e}")))?;
            Ok(Val::List(bytes.into_iter().map(Val::U8).collect()))
        }
        WitType::List(element) => array(value, path)?
            .iter()
            .enumerate()
            .map(|(i, item)| from_json(element, item, &index_path(path, i)))
            .collect::<Result<_, _>>()
            .map(Val::List),
        WitType::Option(inner) => option(inner, value, path),
        WitType::Result { ok, err } => result(ok.as_deref(), err.as_deref(), value, path),
        WitType::Tuple(types) => {
            let items = array(value, path)?;
            if items.len() != types.len() {
                return Err(InputError::new(
                    path,
                    format!(
                        "expected an array of {} items, got {}",
                        types.len(),
                        items.len()
                    ),
                ));
            }
            types
                .iter()
                .zip(items)
                .enumerate()
                .map(|(i, (ty, item))| from_json(ty, item, &index_path(path, i)))
                .collect::<Result<_, _>>()
                .map(Val::Tuple)
        }
        WitType::Record(record) => self::record(record, value, path),
        WitType::Variant(variant) => self::variant(variant, value, path),
        WitType::Enum(enumeration) => self::enumeration(enumeration, value, path),
        WitType::Flags(flags) => self::flags(flags, value, path),
    }
}

/// [`json_name`] of `wit_name`, borrowed when it has no `-`.
fn json_key(wit_name: &str) -> Cow<'_, str> {
    if wit_name.contains('-') {
        Cow::Owned(json_name(wit_name))
    } else {
        Cow::Borrowed(wit_name)
    }
}

/// Read the member `key` of `object` (at `path`) as a value of type `ty`: an absent `option`
/// is `none`, an absent member of any other type is an error.
fn member(
    object: &Map<String, Value>,
    key: &str,
    ty: &WitType,
    path: &str,
) -> Result<Val, InputError> {
    let path = field_path(path, key);
    match object.get(key) {
        Some(value) => from_json(ty, value, &path),
        None if matches!(ty, WitType::Option(_)) => Ok(Val::Option(None)),
        None => Err(InputError::new(&path, "missing required field")),
    }
}

/// Reject the first key of `object` that `known` does not accept, naming the valid keys
/// (`names`, only built for the error) and the closest one.
fn reject_unknown(
    object: &Map<String, Value>,
    path: &str,
    known: impl Fn(&str) -> bool,
    names: impl FnOnce() -> Vec<String>,
) -> Result<(), InputError> {
    match object.keys().find(|key| !known(key)) {
        Some(unknown) => Err(InputError::new(
            path,
            unknown_key("field", unknown, &quote(unknown), &names()),
        )),
        None => Ok(()),
    }
}

/// `["a", "b"]` as owned strings, for [`reject_unknown`].
fn fixed(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn option(inner: &WitType, value: &Value, path: &str) -> Result<Val, InputError> {
    if value.is_null() {
        return Ok(Val::Option(None));
    }
    let some = if matches!(inner, WitType::Option(_)) {
        // option<option<T>>: the inner value is wrapped as {"some": ...}.
        let wrapper = object(value, path)?;
        reject_unknown(wrapper, path, |key| key == "some", || fixed(&["some"]))?;
        let path = field_path(path, "some");
        match wrapper.get("some") {
            Some(value) => from_json(inner, value, &path)?,
            None => return Err(InputError::new(&path, "missing required field")),
        }
    } else {
        from_json(inner, value, path)?
    };
    Ok(Val::Option(Some(Box::new(some))))
}

fn result(
    ok: Option<&WitType>,
    err: Option<&WitType>,
    value: &Value,
    path: &str,
) -> Result<Val, InputError> {
    let object = object(value, path)?;
    reject_unknown(
        object,
        path,
        |key| key == "ok" || key == "err",
        || fixed(&["ok", "err"]),
    )?;
    let payload = |ty: Option<&WitType>, value: &Value, key: &str| {
        let path = field_path(path, key);
        match ty {
            Some(ty) => from_json(ty, value, &path).map(|val| Some(Box::new(val))),
            None if value.is_null() => Ok(None),
            None => Err(mismatch(&path, "null", value)),
        }
    };
    match (object.get("ok"), object.get("err")) {
        (Some(value), None) => Ok(Val::Result(Ok(payload(ok, value, "ok")?))),
        (None, Some(value)) => Ok(Val::Result(Err(payload(err, value, "err")?))),
        _ => Err(InputError::new(
            path,
            r#"expected exactly one of "ok" or "err""#,
        )),
    }
}

fn record(record: &Record, value: &Value, path: &str) -> Result<Val, InputError> {
    let object = object(value, path)?;
    reject_unknown(
        object,
        path,
        |key| {
            record
                .fields
                .iter()
                .any(|field| is_json_name(&field.name, key))
        },
        || {
            record
                .fields
                .iter()
                .map(|field| json_name(&field.name))
                .collect()
        },
    )?;
    record
        .fields
        .iter()
        .map(|field| {
            member(object, &json_key(&field.name), &field.ty, path)
                .map(|val| (field.name.clone(), val))
        })
        .collect::<Result<_, _>>()
        .map(Val::Record)
}

fn variant(variant: &Variant, value: &Value, path: &str) -> Result<Val, InputError> {
    let object = object(value, path)?;
    reject_unknown(
        object,
        path,
        |key| key == "tag" || key == "value",
        || fixed(&["tag", "value"]),
    )?;
    let tag_path = field_path(path, "tag");
    let tag = match object.get("tag") {
        Some(tag) => string(tag, &tag_path)?,
        None => return Err(InputError::new(&tag_path, "missing required field")),
    };
    let case = variant
        .cases
        .iter()
        .find(|case| is_json_name(&case.name, tag))
        .ok_or_else(|| {
            let names = variant.cases.iter().map(|case| json_name(&case.name));
            InputError::new(&tag_path, not_one_of(tag, names))
        })?;
    let payload = match &case.ty {
        Some(ty) => Some(Box::new(member(object, "value", ty, path)?)),
        None if object.contains_key("value") => {
            return Err(InputError::new(
                &field_path(path, "value"),
                format!("case {} has no value", quote(tag)),
            ));
        }
        None => None,
    };
    Ok(Val::Variant(case.name.clone(), payload))
}

fn enumeration(enumeration: &Enum, value: &Value, path: &str) -> Result<Val, InputError> {
    let name = string(value, path)?;
    enumeration
        .cases
        .iter()
        .find(|(case, _)| is_json_name(case, name))
        .map(|(case, _)| Val::Enum(case.clone()))
        .ok_or_else(|| {
            let names = enumeration.cases.iter().map(|(case, _)| json_name(case));
            InputError::new(path, not_one_of(name, names))
        })
}

fn flags(flags: &Flags, value: &Value, path: &str) -> Result<Val, InputError> {
    let mut set = vec![false; flags.flags.len()];
    for (i, item) in array(value, path)?.iter().enumerate() {
        let path = index_path(path, i);
        let name = string(item, &path)?;
        let index = flags
            .flags
            .iter()
            .position(|flag| is_json_name(flag, name))
            .ok_or_else(|| {
                InputError::new(
                    &path,
                    not_one_of(name, flags.flags.iter().map(|f| json_name(f))),
                )
            })?;
        if std::mem::replace(&mut set[index], true) {
            return Err(InputError::new(
                &path,
                format!("duplicate flag {}", quote(name)),
            ));
        }
    }
    // Declaration order, whatever the order in JSON.
    let names = flags.flags.iter().zip(set).filter(|(_, set)| *set);
    Ok(Val::Flags(names.map(|(name, _)| name.clone()).collect()))
}

/// A JSON number as an `f64` (rounded to the nearest if it is a large integer).
fn number(value: &Value, path: &str) -> Result<f64, InputError> {
    value
        .as_f64()
        .ok_or_else(|| mismatch(path, "number", value))
}

/// The number's exact integer value, if it is an integer (`3` and `3.0` are; `3.5` is not).
fn as_integer(number: &Number) -> Option<i128> {
    if let Some(u) = number.as_u64() {
        return Some(i128::from(u));
    }
    if let Some(i) = number.as_i64() {
        return Some(i128::from(i));
    }
    let float = number.as_f64()?;
    // A float this large has no fractional part; `as` saturates beyond i128's range, which
    // still fails every WIT integer's range check.
    (float.is_finite() && float.fract() == 0.0).then_some(float as i128)
}

fn integer<T: TryFrom<i128>>(value: &Value, path: &str, wit_name: &str) -> Result<T, InputError> {
    let Value::Number(number) = value else {
        return Err(mismatch(path, "integer", value));
    };
    let exact = as_integer(number)
        .ok_or_else(|| InputError::new(path, format!("expected integer, got {number}")))?;
    T::try_from(exact)
        .map_err(|_| InputError::new(path, format!("{number} is out of range for {wit_name}")))
}

fn float32(value: &Value, path: &str) -> Result<f32, InputError> {
    let float = number(value, path)?;
    // Rounding to the nearest f32 is expected; overflowing to infinity is not.
    let narrow = float as f32;
    if narrow.is_finite() {
        Ok(narrow)
    } else {
        Err(InputError::new(
            path,
            format!("{value} is out of range for f32"),
        ))
    }
}

fn string<'a>(value: &'a Value, path: &str) -> Result<&'a str, InputError> {
    value
        .as_str()
        .ok_or_else(|| mismatch(path, "string", value))
}

fn array<'a>(value: &'a Value, path: &str) -> Result<&'a Vec<Value>, InputError> {
    value
        .as_array()
        .ok_or_else(|| mismatch(path, "array", value))
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, InputError> {
    value
        .as_object()
        .ok_or_else(|| mismatch(path, "object", value))
}

/// `expected {expected}, got {JSON type of value}`.
fn mismatch(path: &str, expected: &str, value: &Value) -> InputError {
    InputError::new(
        path,
        format!("expected {expected}, got {}", json_kind(value)),
    )
}

/// The JSON type of a value, as named in JSON Schema.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `"rx" is not one of "ro", "rw"`.
/// With the closest name when one is close: `"r0" is not one of "ro", "rw" (did you mean
/// "ro"?)`.
fn not_one_of(name: &str, names: impl Iterator<Item = String>) -> String {
    let names = names.collect::<Vec<_>>();
    let quoted = names.iter().map(|name| quote(name)).collect::<Vec<_>>();
    let mut message = format!("{} is not one of {}", quote(name), quoted.join(", "));
    if let Some(close) = super::names::closest(name, &names) {
        message.push_str(&format!(" (did you mean \"{close}\"?)"));
    }
    message
}

/// A string as a JSON string literal, shortened if long.
fn quote(text: &str) -> String {
    preview(&Value::String(text.to_owned()))
}

/// A JSON value as JSON text, shortened if long: error messages echo what the agent sent, not
/// megabytes of it.
fn preview(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}
