//! A call's arguments as the audit log keeps them: values under secret-like keys replaced,
//! detector hits redacted, long strings and arrays cut, deep nesting elided. The record stays
//! small whatever the call carried.

use std::borrow::Cow;

use rmcp::model::JsonObject;
use serde_json::{Map, Value};

use super::{OutputFilter, Redactions};
use crate::manifest::is_secret_key;

/// Longest string kept, in bytes (cut at a character boundary).
const MAX_STRING: usize = 256;
/// Most array items and object members kept.
const MAX_ITEMS: usize = 32;
/// Deepest nesting kept.
const MAX_DEPTH: usize = 8;

/// `args` as the audit record keeps them: borrowed as they are when nothing in them needs
/// redacting or cutting (the common case), else a redacted copy.
pub fn audit_args<'a>(args: Option<&'a JsonObject>, filter: &OutputFilter) -> Cow<'a, JsonObject> {
    match args {
        None => Cow::Owned(Map::new()),
        Some(args) if kept_as_is(args, filter, 1) => Cow::Borrowed(args),
        Some(args) => Cow::Owned(object(args, filter, 1, &mut Redactions::new())),
    }
}

/// Whether [`object`] would return `map` unchanged.
fn kept_as_is(map: &JsonObject, filter: &OutputFilter, depth: usize) -> bool {
    map.len() <= MAX_ITEMS
        && map.iter().all(|(key, value)| {
            key.len() <= MAX_STRING && !is_secret_key(key) && value_kept(value, filter, depth)
        })
}

/// Whether [`value_of`] would return `value` unchanged.
fn value_kept(value: &Value, filter: &OutputFilter, depth: usize) -> bool {
    match value {
        Value::String(s) => s.len() <= MAX_STRING && !filter.finds(s),
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => false,
        Value::Array(items) => {
            items.len() <= MAX_ITEMS && items.iter().all(|item| value_kept(item, filter, depth + 1))
        }
        Value::Object(map) => kept_as_is(map, filter, depth + 1),
        _ => true,
    }
}

fn object(
    map: &JsonObject,
    filter: &OutputFilter,
    depth: usize,
    hits: &mut Redactions,
) -> JsonObject {
    let mut out = Map::new();
    for (index, (key, value)) in map.iter().enumerate() {
        if index == MAX_ITEMS {
            out.insert(
                "…".to_owned(),
                Value::String(format!("{} more members", map.len() - MAX_ITEMS)),
            );
            break;
        }
        let kept = if is_secret_key(key) {
            Value::String("[REDACTED:key]".to_owned())
        } else {
            value_of(value, filter, depth, hits)
        };
        out.insert(cut(key).into_owned(), kept);
    }
    out
}

fn value_of(value: &Value, filter: &OutputFilter, depth: usize, hits: &mut Redactions) -> Value {
    match value {
        Value::String(s) => Value::String(redact_and_cut(s, filter, hits)),
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => Value::String("[…]".to_owned()),
        Value::Array(items) => {
            let mut out: Vec<Value> = items
                .iter()
                .take(MAX_ITEMS)
                .map(|item| value_of(item, filter, depth + 1, hits))
                .collect();
            if items.len() > MAX_ITEMS {
                out.push(Value::String(format!(
                    "… {} more items",
                    items.len() - MAX_ITEMS
                )));
            }
            Value::Array(out)
        }
        Value::Object(map) => Value::Object(object(map, filter, depth + 1, hits)),
        other => other.clone(),
    }
}

/// `s` with detector hits redacted, cut to [`MAX_STRING`] bytes with a note of its length.
/// Only the start of a long string is scanned (with a margin, so a hit that straddles the cut
/// is still found).
fn redact_and_cut(s: &str, filter: &OutputFilter, hits: &mut Redactions) -> String {
    if s.len() <= MAX_STRING {
        return filter.redact_str(s, hits);
    }
    let window = &s[..floor_char_boundary(s, MAX_STRING + 1024)];
    let redacted = filter.redact_str(window, hits);
    let end = floor_char_boundary(&redacted, MAX_STRING);
    format!("{}…(cut from {} bytes)", &redacted[..end], s.len())
}

/// `s`, cut to at most [`MAX_STRING`] bytes with a note, for keys.
fn cut(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= MAX_STRING {
        return s.into();
    }
    let end = floor_char_boundary(s, MAX_STRING);
    format!("{}…(cut from {} bytes)", &s[..end], s.len()).into()
}

/// The largest character boundary of `s` at or below `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut end = at.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}
