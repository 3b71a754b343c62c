//! Descriptions in JSON names, and suggestions for unknown names.

use std::collections::HashSet;

use serde_json::json;

use super::{function, option, record};
use crate::schema::{WitType, closest, json_names_in};

fn names(list: &[&str]) -> HashSet<String> {
    list.iter().map(|name| (*name).to_owned()).collect()
}

#[test]
fn only_whole_words_are_rewritten() {
    let set = names(&["max-bytes", "line-ending"]);
    assert_eq!(
        json_names_in("At most `max-bytes` (max-bytes) bytes.", &set).as_deref(),
        Some("At most `max_bytes` (max_bytes) bytes.")
    );
    assert_eq!(
        json_names_in("max-bytes, then line-ending.", &set).as_deref(),
        Some("max_bytes, then line_ending.")
    );
    for unchanged in [
        "no names here",
        "non-max-bytes",
        "max-bytes-total",
        "max_bytes already",
        "Max-bytes",
        "",
    ] {
        assert_eq!(json_names_in(unchanged, &set), None, "{unchanged}");
    }
    // Non-ASCII text around a name is kept whole.
    assert_eq!(
        json_names_in("« max-bytes » é", &set).as_deref(),
        Some("« max_bytes » é")
    );
}

#[test]
fn the_closest_name_is_suggested_only_when_close() {
    let valid: Vec<String> = ["path", "max_bytes", "encoding"]
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    assert_eq!(closest("max-bytes", &valid), Some("max_bytes"));
    assert_eq!(closest("MAX_BYTES", &valid), Some("max_bytes"));
    assert_eq!(closest("maxbytes", &valid), Some("max_bytes"));
    assert_eq!(closest("pth", &valid), Some("path"));
    assert_eq!(closest("encodign", &valid), Some("encoding"));
    assert_eq!(closest("colour", &valid), None);
    assert_eq!(closest("x", &valid), None);
    assert_eq!(closest(&"m".repeat(1000), &valid), None);
    assert_eq!(closest("path", &[]), None);
}

#[test]
fn unknown_arguments_list_the_valid_keys_and_suggest_the_closest() {
    let f = function(&[
        ("path", WitType::String),
        ("max-bytes", option(WitType::U32)),
    ]);
    // The WIT spelling, as an old description would have said it.
    let e = f
        .args_from_json(json!({ "path": "a", "max-bytes": 5 }).as_object())
        .expect_err("the WIT spelling is not the JSON key");
    assert_eq!(
        e.to_string(),
        r#"unknown argument "max-bytes" (did you mean "max_bytes"?); the arguments are "path", "max_bytes""#
    );
    let e = f
        .args_from_json(json!({ "pat": "a" }).as_object())
        .expect_err("a typo");
    assert_eq!(
        e.to_string(),
        r#"unknown argument "pat" (did you mean "path"?); the arguments are "path", "max_bytes""#
    );

    // Inside a record, the same.
    let f = function(&[(
        "options",
        record("opts", &[("line-ending", option(WitType::String))]),
    )]);
    let e = f
        .args_from_json(json!({ "options": { "lineEnding": "\n" } }).as_object())
        .expect_err("camelCase");
    assert_eq!(
        e.to_string(),
        r#"options: unknown field "lineEnding" (did you mean "line_ending"?); the fields are "line_ending""#
    );
}

#[test]
fn a_function_rewrites_its_own_docs_and_its_types_docs() {
    let mut f = function(&[
        ("max-bytes", WitType::U32),
        (
            "options",
            record("opts", &[("line-ending", WitType::String)]),
        ),
    ]);
    f.docs = Some("Read `max-bytes`; `options.line-ending` is kept.".to_owned());
    if let WitType::Record(record) = &mut f.params[1].ty {
        record.fields[0].docs = Some("Unlike max-bytes, line-ending is text.".to_owned());
    }
    f.use_json_names_in_docs();
    assert_eq!(
        f.docs.as_deref(),
        Some("Read `max_bytes`; `options.line_ending` is kept.")
    );
    let WitType::Record(record) = &f.params[1].ty else {
        panic!("a record")
    };
    assert_eq!(
        record.fields[0].docs.as_deref(),
        Some("Unlike max_bytes, line_ending is text.")
    );
}
