//! JSON -> values: every rule and every error message.

use serde_json::{Value, json};
use wasmtime::component::Val;

use super::{enumeration, flags, function, list, option, record, result, variant};
use crate::schema::{InputError, WitType, from_json};

/// The error message (with its path) for `value` read as `ty` at `path`.
fn error(ty: &WitType, value: Value, path: &str) -> String {
    match from_json(ty, &value, path) {
        Ok(val) => panic!("{value} was accepted as {val:?}"),
        Err(e) => e.to_string(),
    }
}

fn ok(ty: &WitType, value: Value) -> Val {
    from_json(ty, &value, "x").unwrap_or_else(|e| panic!("{value} was rejected: {e}"))
}

#[test]
fn bool_accepts_only_booleans() {
    assert_eq!(ok(&WitType::Bool, json!(true)), Val::Bool(true));
    assert_eq!(
        error(&WitType::Bool, json!(1), "b"),
        "b: expected boolean, got integer"
    );
    assert_eq!(
        error(&WitType::Bool, json!("true"), "b"),
        "b: expected boolean, got string"
    );
}

#[test]
fn integers_cover_their_exact_range() {
    assert_eq!(ok(&WitType::U8, json!(255)), Val::U8(255));
    assert_eq!(ok(&WitType::U8, json!(0)), Val::U8(0));
    assert_eq!(ok(&WitType::S8, json!(-128)), Val::S8(-128));
    assert_eq!(ok(&WitType::U16, json!(65535)), Val::U16(65535));
    assert_eq!(ok(&WitType::S16, json!(-32768)), Val::S16(-32768));
    assert_eq!(ok(&WitType::U32, json!(u32::MAX)), Val::U32(u32::MAX));
    assert_eq!(ok(&WitType::S32, json!(i32::MIN)), Val::S32(i32::MIN));
    assert_eq!(ok(&WitType::U64, json!(u64::MAX)), Val::U64(u64::MAX));
    assert_eq!(ok(&WitType::S64, json!(i64::MIN)), Val::S64(i64::MIN));
    assert_eq!(ok(&WitType::S64, json!(i64::MAX)), Val::S64(i64::MAX));
}

#[test]
fn integers_out_of_range_are_errors_not_wraps() {
    assert_eq!(
        error(&WitType::U8, json!(256), "n"),
        "n: 256 is out of range for u8"
    );
    assert_eq!(
        error(&WitType::U8, json!(300), "n"),
        "n: 300 is out of range for u8"
    );
    assert_eq!(
        error(&WitType::U8, json!(-1), "n"),
        "n: -1 is out of range for u8"
    );
    assert_eq!(
        error(&WitType::S8, json!(128), "n"),
        "n: 128 is out of range for s8"
    );
    assert_eq!(
        error(&WitType::U32, json!(-1), "n"),
        "n: -1 is out of range for u32"
    );
    assert_eq!(
        error(&WitType::S64, json!(u64::MAX), "n"),
        format!("n: {} is out of range for s64", u64::MAX)
    );
    assert_eq!(
        error(&WitType::U64, json!(-1), "n"),
        "n: -1 is out of range for u64"
    );
    assert_eq!(
        error(&WitType::U64, json!(1e20), "n"),
        "n: 1e+20 is out of range for u64"
    );
}

#[test]
fn integers_reject_fractions_and_strings() {
    assert_eq!(
        error(&WitType::U32, json!(1.5), "n"),
        "n: expected integer, got 1.5"
    );
    assert_eq!(
        error(&WitType::U32, json!("3"), "n"),
        "n: expected integer, got string"
    );
    assert_eq!(
        error(&WitType::S64, json!(null), "n"),
        "n: expected integer, got null"
    );
    // An integral float is an integer, as in JSON Schema.
    assert_eq!(ok(&WitType::U32, json!(3.0)), Val::U32(3));
}

#[test]
fn floats_accept_numbers() {
    assert_eq!(ok(&WitType::F64, json!(1.5)), Val::Float64(1.5));
    assert_eq!(ok(&WitType::F64, json!(3)), Val::Float64(3.0));
    assert_eq!(ok(&WitType::F32, json!(0.5)), Val::Float32(0.5));
    assert_eq!(ok(&WitType::F32, json!(0.1)), Val::Float32(0.1));
    assert_eq!(
        error(&WitType::F64, json!("1.5"), "x"),
        "x: expected number, got string"
    );
    assert_eq!(
        error(&WitType::F32, json!(1e300), "x"),
        "x: 1e+300 is out of range for f32"
    );
}

#[test]
fn char_is_exactly_one_unicode_scalar() {
    assert_eq!(ok(&WitType::Char, json!("a")), Val::Char('a'));
    assert_eq!(ok(&WitType::Char, json!("🦀")), Val::Char('🦀'));
    assert_eq!(
        error(&WitType::Char, json!("ab"), "c"),
        r#"c: expected a single character, got "ab""#
    );
    assert_eq!(
        error(&WitType::Char, json!(""), "c"),
        r#"c: expected a single character, got """#
    );
    assert_eq!(
        error(&WitType::Char, json!(97), "c"),
        "c: expected string, got integer"
    );
}

#[test]
fn strings() {
    assert_eq!(
        ok(&WitType::String, json!("héllo")),
        Val::String("héllo".into())
    );
    assert_eq!(
        error(&WitType::String, json!(["a"]), "s"),
        "s: expected string, got array"
    );
}

#[test]
fn bytes_are_base64() {
    assert_eq!(
        ok(&WitType::Bytes, json!("AAH/")),
        Val::List(vec![Val::U8(0), Val::U8(1), Val::U8(255)])
    );
    assert_eq!(ok(&WitType::Bytes, json!("")), Val::List(vec![]));
    assert!(
        error(&WitType::Bytes, json!("not base64!"), "data").starts_with("data: invalid base64: ")
    );
    assert_eq!(
        error(&WitType::Bytes, json!([1, 2]), "data"),
        "data: expected string, got array"
    );
}

#[test]
fn lists_report_the_index() {
    let ty = list(WitType::U8);
    assert_eq!(
        ok(&ty, json!([1, 2])),
        Val::List(vec![Val::U8(1), Val::U8(2)])
    );
    assert_eq!(
        error(&ty, json!([1, 2, 300]), "xs"),
        "xs[2]: 300 is out of range for u8"
    );
    assert_eq!(
        error(&list(WitType::String), json!("a"), "xs"),
        "xs: expected array, got string"
    );
}

#[test]
fn nested_paths_name_the_innermost_value() {
    let entry = record("entry", &[("name", WitType::String), ("size", WitType::U8)]);
    let f = function(&[("entries", list(entry))]);
    let args = json!({ "entries": [
        { "name": "a", "size": 1 }, { "name": "b", "size": 2 },
        { "name": "c", "size": 3 }, { "name": "d", "size": 300 },
    ]});
    let e = f.args_from_json(args.as_object()).unwrap_err();
    assert_eq!(e.to_string(), "entries[3].size: 300 is out of range for u8");
    assert_eq!(
        e,
        InputError {
            path: "entries[3].size".into(),
            message: "300 is out of range for u8".into()
        }
    );
}

#[test]
fn tuples_are_fixed_arrays() {
    let ty = WitType::Tuple(vec![WitType::U8, WitType::String]);
    assert_eq!(
        ok(&ty, json!([1, "a"])),
        Val::Tuple(vec![Val::U8(1), Val::String("a".into())])
    );
    assert_eq!(
        error(&ty, json!([1]), "t"),
        "t: expected an array of 2 items, got 1"
    );
    assert_eq!(
        error(&ty, json!([1, "a", 2]), "t"),
        "t: expected an array of 2 items, got 3"
    );
    assert_eq!(
        error(&ty, json!(["a", "a"]), "t"),
        "t[0]: expected integer, got string"
    );
}

#[test]
fn option_is_nullable() {
    let ty = option(WitType::U8);
    assert_eq!(ok(&ty, json!(null)), Val::Option(None));
    assert_eq!(ok(&ty, json!(7)), Val::Option(Some(Box::new(Val::U8(7)))));
    assert_eq!(error(&ty, json!(256), "o"), "o: 256 is out of range for u8");
}

#[test]
fn option_of_option_wraps_the_inner_value() {
    let ty = option(option(WitType::U8));
    assert_eq!(ok(&ty, json!(null)), Val::Option(None));
    assert_eq!(
        ok(&ty, json!({ "some": null })),
        Val::Option(Some(Box::new(Val::Option(None))))
    );
    assert_eq!(
        ok(&ty, json!({ "some": 3 })),
        Val::Option(Some(Box::new(Val::Option(Some(Box::new(Val::U8(3)))))))
    );
    assert_eq!(error(&ty, json!(3), "o"), "o: expected object, got integer");
    assert_eq!(error(&ty, json!({}), "o"), "o.some: missing required field");
    assert_eq!(
        error(&ty, json!({ "some": 1, "x": 1 }), "o"),
        r#"o: unknown field "x"; the fields are "some""#
    );
}

#[test]
fn records_map_kebab_fields_to_snake_keys() {
    let ty = record(
        "opts",
        &[
            ("max-bytes", WitType::U32),
            ("follow-links", option(WitType::Bool)),
        ],
    );
    assert_eq!(
        ok(&ty, json!({ "max_bytes": 10 })),
        Val::Record(vec![
            ("max-bytes".into(), Val::U32(10)),
            ("follow-links".into(), Val::Option(None)),
        ])
    );
    assert_eq!(
        ok(&ty, json!({ "max_bytes": 10, "follow_links": true })),
        Val::Record(vec![
            ("max-bytes".into(), Val::U32(10)),
            (
                "follow-links".into(),
                Val::Option(Some(Box::new(Val::Bool(true))))
            ),
        ])
    );
    assert_eq!(
        ok(&ty, json!({ "max_bytes": 10, "follow_links": null })),
        ok(&ty, json!({ "max_bytes": 10 }))
    );
}

#[test]
fn records_reject_unknown_and_missing_keys() {
    let ty = record(
        "opts",
        &[
            ("max-bytes", WitType::U32),
            ("colour", option(WitType::String)),
        ],
    );
    assert_eq!(
        error(&ty, json!({ "max_bytes": 1, "color": "red" }), "options"),
        r#"options: unknown field "color" (did you mean "colour"?); the fields are "max_bytes", "colour""#
    );
    // The WIT spelling is not the JSON name.
    assert_eq!(
        error(&ty, json!({ "max-bytes": 1 }), "options"),
        r#"options: unknown field "max-bytes" (did you mean "max_bytes"?); the fields are "max_bytes", "colour""#
    );
    assert_eq!(
        error(&ty, json!({}), "options"),
        "options.max_bytes: missing required field"
    );
    assert_eq!(
        error(&ty, json!([]), "options"),
        "options: expected object, got array"
    );

    let ty = record("opts", &[("size", WitType::U8)]);
    assert_eq!(
        error(&ty, json!({ "size": 1, "colour": "red" }), "options"),
        r#"options: unknown field "colour"; the fields are "size""#
    );
}

#[test]
fn enums_are_strings() {
    let ty = enumeration(&["ro", "rw", "read-write"]);
    assert_eq!(ok(&ty, json!("rw")), Val::Enum("rw".into()));
    assert_eq!(ok(&ty, json!("read_write")), Val::Enum("read-write".into()));
    assert_eq!(
        error(&ty, json!("rx"), "mode"),
        r#"mode: "rx" is not one of "ro", "rw", "read_write" (did you mean "ro"?)"#
    );
    assert_eq!(
        error(&ty, json!(1), "mode"),
        "mode: expected string, got integer"
    );
}

#[test]
fn variants_are_tagged_objects() {
    let ty = variant(&[
        ("none", None),
        ("by-name", Some(WitType::String)),
        ("maybe", Some(option(WitType::U8))),
    ]);
    assert_eq!(
        ok(&ty, json!({ "tag": "none" })),
        Val::Variant("none".into(), None)
    );
    assert_eq!(
        ok(&ty, json!({ "tag": "by_name", "value": "x" })),
        Val::Variant("by-name".into(), Some(Box::new(Val::String("x".into()))))
    );
    // An option payload may be omitted, like an option field.
    assert_eq!(
        ok(&ty, json!({ "tag": "maybe" })),
        Val::Variant("maybe".into(), Some(Box::new(Val::Option(None))))
    );
    assert_eq!(
        error(&ty, json!({ "tag": "by_name" }), "v"),
        "v.value: missing required field"
    );
    assert_eq!(
        error(&ty, json!({ "tag": "by_name", "value": 1 }), "v"),
        "v.value: expected string, got integer"
    );
    assert_eq!(
        error(&ty, json!({ "tag": "none", "value": 1 }), "v"),
        r#"v.value: case "none" has no value"#
    );
    assert_eq!(
        error(&ty, json!({ "tag": "nope" }), "v"),
        r#"v.tag: "nope" is not one of "none", "by_name", "maybe" (did you mean "none"?)"#
    );
    assert_eq!(
        error(&ty, json!({ "value": 1 }), "v"),
        "v.tag: missing required field"
    );
    assert_eq!(
        error(&ty, json!({ "tag": 1 }), "v"),
        "v.tag: expected string, got integer"
    );
    assert_eq!(
        error(&ty, json!({ "tag": "none", "x": 1 }), "v"),
        r#"v: unknown field "x"; the fields are "tag", "value""#
    );
    assert_eq!(
        error(&ty, json!("none"), "v"),
        "v: expected object, got string"
    );
}

#[test]
fn flags_are_arrays_of_unique_names() {
    let ty = flags(&["read", "write", "exec-now"]);
    // Declaration order, whatever the JSON order.
    assert_eq!(
        ok(&ty, json!(["exec_now", "read"])),
        Val::Flags(vec!["read".into(), "exec-now".into()])
    );
    assert_eq!(ok(&ty, json!([])), Val::Flags(vec![]));
    assert_eq!(
        error(&ty, json!(["read", "read"]), "f"),
        r#"f[1]: duplicate flag "read""#
    );
    assert_eq!(
        error(&ty, json!(["x"]), "f"),
        r#"f[0]: "x" is not one of "read", "write", "exec_now""#
    );
    assert_eq!(
        error(&ty, json!([1]), "f"),
        "f[0]: expected string, got integer"
    );
    assert_eq!(
        error(&ty, json!({ "read": true }), "f"),
        "f: expected array, got object"
    );
}

#[test]
fn results_take_exactly_one_of_ok_and_err() {
    let ty = result(Some(WitType::U8), Some(WitType::String));
    assert_eq!(
        ok(&ty, json!({ "ok": 1 })),
        Val::Result(Ok(Some(Box::new(Val::U8(1)))))
    );
    assert_eq!(
        ok(&ty, json!({ "err": "e" })),
        Val::Result(Err(Some(Box::new(Val::String("e".into())))))
    );
    assert_eq!(
        error(&ty, json!({}), "r"),
        r#"r: expected exactly one of "ok" or "err""#
    );
    assert_eq!(
        error(&ty, json!({ "ok": 1, "err": "e" }), "r"),
        r#"r: expected exactly one of "ok" or "err""#
    );
    assert_eq!(
        error(&ty, json!({ "ok": 300 }), "r"),
        "r.ok: 300 is out of range for u8"
    );
    assert_eq!(
        error(&ty, json!({ "err": 1 }), "r"),
        "r.err: expected string, got integer"
    );
    assert_eq!(
        error(&ty, json!({ "value": 1 }), "r"),
        r#"r: unknown field "value"; the fields are "ok", "err""#
    );

    let unit = result(None, None);
    assert_eq!(ok(&unit, json!({ "ok": null })), Val::Result(Ok(None)));
    assert_eq!(ok(&unit, json!({ "err": null })), Val::Result(Err(None)));
    assert_eq!(
        error(&unit, json!({ "ok": 1 }), "r"),
        "r.ok: expected null, got integer"
    );
}

#[test]
fn top_level_errors_have_no_path() {
    assert_eq!(
        error(&WitType::U8, json!("x"), ""),
        "expected integer, got string"
    );
    let e = from_json(&WitType::U8, &json!(300), "").unwrap_err();
    assert_eq!(e.path, "");
    assert_eq!(e.to_string(), "300 is out of range for u8");
}

#[test]
fn long_values_are_shortened_in_messages() {
    let long = "é".repeat(1000);
    let message = error(&WitType::Char, json!(long), "c");
    assert!(message.len() < 200, "{message}");
    assert!(message.ends_with("..."), "{message}");
}

#[test]
fn arguments_map_to_parameters_in_order() {
    let f = function(&[
        ("path", WitType::String),
        ("max-bytes", option(WitType::U32)),
    ]);
    assert_eq!(
        f.args_from_json(json!({ "max_bytes": 5, "path": "a" }).as_object())
            .unwrap(),
        vec![
            Val::String("a".into()),
            Val::Option(Some(Box::new(Val::U32(5))))
        ]
    );
    assert_eq!(
        f.args_from_json(json!({ "path": "a" }).as_object())
            .unwrap(),
        vec![Val::String("a".into()), Val::Option(None)]
    );
    assert_eq!(
        f.args_from_json(json!({ "path": "a", "max_bytes": null }).as_object())
            .unwrap(),
        vec![Val::String("a".into()), Val::Option(None)]
    );
}

#[test]
fn argument_errors() {
    let f = function(&[
        ("path", WitType::String),
        ("max-bytes", option(WitType::U32)),
    ]);
    let e = f
        .args_from_json(json!({ "max_bytes": 5 }).as_object())
        .unwrap_err();
    assert_eq!(e.to_string(), "path: missing required field");
    let e = f.args_from_json(None).unwrap_err();
    assert_eq!(e.to_string(), "path: missing required field");
    let e = f
        .args_from_json(json!({ "path": "a", "colour": 1 }).as_object())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"unknown argument "colour"; the arguments are "path", "max_bytes""#
    );
    assert_eq!(e.path, "");
    let e = f
        .args_from_json(json!({ "path": 1 }).as_object())
        .unwrap_err();
    assert_eq!(e.to_string(), "path: expected string, got integer");
    let e = f
        .args_from_json(json!({ "path": "a", "max_bytes": -1 }).as_object())
        .unwrap_err();
    assert_eq!(e.to_string(), "max_bytes: -1 is out of range for u32");
}

#[test]
fn no_parameters_accept_no_arguments() {
    let f = function(&[]);
    assert_eq!(f.args_from_json(None).unwrap(), vec![]);
    assert_eq!(f.args_from_json(json!({}).as_object()).unwrap(), vec![]);
    let e = f.args_from_json(json!({ "x": 1 }).as_object()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"unknown argument "x"; there are no arguments"#
    );
}
