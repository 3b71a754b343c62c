//! The names the model sends: tool descriptions rewritten to JSON names, and the closest
//! valid name for an unknown one.
//!
//! WIT identifiers are kebab-case (`max-bytes`) and their JSON keys snake_case (`max_bytes`,
//! [`json_name`]). A doc comment that says "at most `max-bytes` bytes" leads a model to send
//! `max-bytes`, which is refused. So every doc comment of a served function (its own, which is
//! the tool's description, and those of the types it takes and returns, which are the schemas'
//! descriptions) has the identifiers of its parameters and of their types (record fields,
//! variant cases, enum cases, flags), and of its result's types, rewritten to their JSON names
//! ([`ExportedFunction::use_json_names_in_docs`]). Only whole words change: a run of letters,
//! digits, `-` and `_` that is exactly such an identifier. Identifiers without `-` are their
//! own JSON names and never change.

use std::collections::HashSet;

use super::json_name;
use super::types::{ExportedFunction, WitType};

/// At most this many valid names are listed in an "unknown" error.
const MAX_LISTED: usize = 24;

/// A key longer than this gets no suggestion (the comparison is quadratic in its length).
const MAX_SUGGESTED_LEN: usize = 64;

impl ExportedFunction {
    /// Rewrite, in this function's doc comment and in every doc comment of its parameters' and
    /// result's types, each whole-word WIT identifier of those parameters and types that
    /// contains `-` to its JSON name (`max-bytes` -> `max_bytes`).
    pub fn use_json_names_in_docs(&mut self) {
        let mut names = HashSet::new();
        for param in &self.params {
            add(&mut names, &param.name);
            collect(&param.ty, &mut names);
        }
        if let Some(result) = self.result.as_ref().filter(|ty| !ty.is_tool_result()) {
            collect(result, &mut names);
        }
        if names.is_empty() {
            return;
        }
        rewrite_opt(&mut self.docs, &names);
        for param in &mut self.params {
            rewrite_type(&mut param.ty, &names);
        }
        if let Some(result) = &mut self.result {
            rewrite_type(result, &names);
        }
    }
}

/// `text` with every whole word found in `names` replaced by its JSON name; `None` when
/// nothing changes. A word is a maximal run of ASCII letters, digits, `-` and `_`.
pub fn json_names_in(text: &str, names: &HashSet<String>) -> Option<String> {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !is_word(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_word(bytes[i]) {
            i += 1;
        }
        // ASCII boundaries: slicing is on char boundaries.
        let word = &text[start..i];
        if names.contains(word) {
            let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
            out.push_str(&text[copied..start]);
            out.push_str(&json_name(word));
            copied = i;
        }
    }
    out.map(|mut out| {
        out.push_str(&text[copied..]);
        out
    })
}

/// The name of `names` closest to `key`, if one is close enough to be what was meant: the
/// same name in another case or with `-` for `_`, or at most one edit in three characters
/// away (at least one).
pub fn closest<'a>(key: &str, names: &'a [String]) -> Option<&'a str> {
    if key.len() > MAX_SUGGESTED_LEN {
        return None;
    }
    let normal = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let key = normal(key);
    if let Some(same) = names.iter().find(|name| normal(name) == key) {
        return Some(same);
    }
    names
        .iter()
        .filter(|name| name.len() <= MAX_SUGGESTED_LEN)
        .map(|name| (edit_distance(&key, &normal(name)), name))
        .filter(|(distance, name)| *distance <= (name.chars().count() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name.as_str())
}

/// The message for an unknown key: `unknown WHAT "KEY" (did you mean "CLOSEST"?); the WHATs
/// are "A", "B"`. `quoted_key` is the key as the caller quotes it (shortened if long).
pub fn unknown_key(what: &str, key: &str, quoted_key: &str, names: &[String]) -> String {
    let mut message = format!("unknown {what} {quoted_key}");
    if let Some(close) = closest(key, names) {
        message.push_str(&format!(" (did you mean \"{close}\"?)"));
    }
    if names.is_empty() {
        message.push_str(&format!("; there are no {what}s"));
        return message;
    }
    message.push_str(&format!("; the {what}s are "));
    let listed: Vec<String> = names
        .iter()
        .take(MAX_LISTED)
        .map(|name| format!("\"{name}\""))
        .collect();
    message.push_str(&listed.join(", "));
    if names.len() > MAX_LISTED {
        message.push_str(&format!(" and {} more", names.len() - MAX_LISTED));
    }
    message
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

fn add(names: &mut HashSet<String>, name: &str) {
    if name.contains('-') {
        names.insert(name.to_owned());
    }
}

/// Every identifier of `ty` (fields, cases, flags), recursively.
fn collect(ty: &WitType, names: &mut HashSet<String>) {
    match ty {
        WitType::List(inner) | WitType::Option(inner) => collect(inner, names),
        WitType::Result { ok, err } => {
            for inner in [ok, err].into_iter().flatten() {
                collect(inner, names);
            }
        }
        WitType::Tuple(types) => types.iter().for_each(|ty| collect(ty, names)),
        WitType::Record(record) => {
            for field in &record.fields {
                add(names, &field.name);
                collect(&field.ty, names);
            }
        }
        WitType::Variant(variant) => {
            for case in &variant.cases {
                add(names, &case.name);
                if let Some(ty) = &case.ty {
                    collect(ty, names);
                }
            }
        }
        WitType::Enum(enumeration) => {
            for (case, _) in &enumeration.cases {
                add(names, case);
            }
        }
        WitType::Flags(flags) => flags.flags.iter().for_each(|flag| add(names, flag)),
        _ => {}
    }
}

fn rewrite_opt(docs: &mut Option<String>, names: &HashSet<String>) {
    if let Some(rewritten) = docs.as_deref().and_then(|text| json_names_in(text, names)) {
        *docs = Some(rewritten);
    }
}

/// Rewrite every doc comment inside `ty`.
fn rewrite_type(ty: &mut WitType, names: &HashSet<String>) {
    match ty {
        WitType::List(inner) | WitType::Option(inner) => rewrite_type(inner, names),
        WitType::Result { ok, err } => {
            for inner in [ok, err].into_iter().flatten() {
                rewrite_type(inner, names);
            }
        }
        WitType::Tuple(types) => types.iter_mut().for_each(|ty| rewrite_type(ty, names)),
        WitType::Record(record) => {
            rewrite_opt(&mut record.docs, names);
            for field in &mut record.fields {
                rewrite_opt(&mut field.docs, names);
                rewrite_type(&mut field.ty, names);
            }
        }
        WitType::Variant(variant) => {
            rewrite_opt(&mut variant.docs, names);
            for case in &mut variant.cases {
                rewrite_opt(&mut case.docs, names);
                if let Some(ty) = &mut case.ty {
                    rewrite_type(ty, names);
                }
            }
        }
        WitType::Enum(enumeration) => {
            rewrite_opt(&mut enumeration.docs, names);
            for (_, docs) in &mut enumeration.cases {
                rewrite_opt(docs, names);
            }
        }
        WitType::Flags(flags) => rewrite_opt(&mut flags.docs, names),
        _ => {}
    }
}
