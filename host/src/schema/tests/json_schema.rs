//! WIT types -> JSON Schema.

use serde_json::{Value, json};

use super::{enumeration, flags, function, list, option, record, result};
use crate::schema::{
    Case, Enum, Field, Record, Variant, WitType, is_json_name, json_name, json_schema,
};

#[test]
fn json_names_are_snake_case() {
    assert_eq!(json_name("max-bytes"), "max_bytes");
    assert_eq!(json_name("a-b-c"), "a_b_c");
    assert_eq!(json_name("plain"), "plain");
    assert_eq!(json_name("get-URL"), "get_URL");
    for (wit, json) in [
        ("max-bytes", "max_bytes"),
        ("plain", "plain"),
        ("get-URL", "get_URL"),
    ] {
        assert!(is_json_name(wit, json), "{wit} {json}");
    }
    for (wit, json) in [
        ("max-bytes", "max-bytes"),
        ("max-bytes", "max_byte"),
        ("a", "A"),
    ] {
        assert!(!is_json_name(wit, json), "{wit} {json}");
    }
}

#[test]
fn scalars() {
    assert_eq!(json_schema(&WitType::Bool), json!({ "type": "boolean" }));
    assert_eq!(
        json_schema(&WitType::U8),
        json!({ "type": "integer", "minimum": 0, "maximum": 255 })
    );
    assert_eq!(
        json_schema(&WitType::S8),
        json!({ "type": "integer", "minimum": -128, "maximum": 127 })
    );
    assert_eq!(
        json_schema(&WitType::U64),
        json!({ "type": "integer", "minimum": 0, "maximum": u64::MAX })
    );
    assert_eq!(
        json_schema(&WitType::S64),
        json!({ "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX })
    );
    assert_eq!(json_schema(&WitType::F32), json!({ "type": "number" }));
    assert_eq!(
        json_schema(&WitType::Char),
        json!({ "type": "string", "minLength": 1, "maxLength": 1 })
    );
    assert_eq!(json_schema(&WitType::String), json!({ "type": "string" }));
    assert_eq!(
        json_schema(&WitType::Bytes),
        json!({ "type": "string", "contentEncoding": "base64" })
    );
}

#[test]
fn containers() {
    assert_eq!(
        json_schema(&list(WitType::Bool)),
        json!({ "type": "array", "items": { "type": "boolean" } })
    );
    assert_eq!(
        json_schema(&WitType::Tuple(vec![WitType::Bool, WitType::String])),
        json!({
            "type": "array",
            "prefixItems": [{ "type": "boolean" }, { "type": "string" }],
            "items": false, "minItems": 2, "maxItems": 2,
        })
    );
    assert_eq!(
        json_schema(&option(WitType::String)),
        json!({ "anyOf": [{ "type": "string" }, { "type": "null" }] })
    );
    assert_eq!(
        json_schema(&option(option(WitType::String))),
        json!({ "anyOf": [
            {
                "type": "object",
                "properties": { "some": { "anyOf": [{ "type": "string" }, { "type": "null" }] } },
                "required": ["some"],
                "additionalProperties": false,
            },
            { "type": "null" },
        ]})
    );
    assert_eq!(
        json_schema(&result(Some(WitType::String), None)),
        json!({ "oneOf": [
            { "type": "object", "properties": { "ok": { "type": "string" } }, "required": ["ok"], "additionalProperties": false },
            { "type": "object", "properties": { "err": { "type": "null" } }, "required": ["err"], "additionalProperties": false },
        ]})
    );
}

#[test]
fn records_are_closed_objects_with_optional_options() {
    let ty = WitType::Record(Record {
        name: None,
        docs: Some("A directory entry.".into()),
        fields: vec![
            Field {
                name: "is-dir".into(),
                docs: Some("Whether it is a directory.".into()),
                ty: WitType::Bool,
            },
            Field {
                name: "size".into(),
                docs: None,
                ty: option(WitType::U8),
            },
        ],
    });
    assert_eq!(
        json_schema(&ty),
        json!({
            "type": "object",
            "description": "A directory entry.",
            "properties": {
                "is_dir": { "type": "boolean", "description": "Whether it is a directory." },
                "size": { "anyOf": [{ "type": "integer", "minimum": 0, "maximum": 255 }, { "type": "null" }] },
            },
            "required": ["is_dir"],
            "additionalProperties": false,
        })
    );
}

#[test]
fn enums_and_flags() {
    assert_eq!(
        json_schema(&enumeration(&["ro", "read-write"])),
        json!({ "type": "string", "enum": ["ro", "read_write"] })
    );
    let documented = WitType::Enum(Enum {
        name: None,
        docs: Some("Access mode.".into()),
        cases: vec![
            ("ro".into(), Some("Read only.".into())),
            ("rw".into(), None),
        ],
    });
    assert_eq!(
        json_schema(&documented),
        json!({ "type": "string", "enum": ["ro", "rw"], "description": "Access mode.\n\n- `ro`: Read only." })
    );
    assert_eq!(
        json_schema(&flags(&["read", "exec-now"])),
        json!({ "type": "array", "items": { "type": "string", "enum": ["read", "exec_now"] }, "uniqueItems": true })
    );
}

#[test]
fn variants_are_one_of_tagged_objects() {
    let ty = WitType::Variant(Variant {
        name: None,
        docs: None,
        cases: vec![
            Case {
                name: "none".into(),
                docs: Some("Nothing.".into()),
                ty: None,
            },
            Case {
                name: "by-name".into(),
                docs: None,
                ty: Some(WitType::String),
            },
            Case {
                name: "maybe".into(),
                docs: None,
                ty: Some(option(WitType::Bool)),
            },
        ],
    });
    assert_eq!(
        json_schema(&ty),
        json!({ "oneOf": [
            { "type": "object", "description": "Nothing.", "properties": { "tag": { "const": "none" } },
              "required": ["tag"], "additionalProperties": false },
            { "type": "object", "properties": { "tag": { "const": "by_name" }, "value": { "type": "string" } },
              "required": ["tag", "value"], "additionalProperties": false },
            { "type": "object",
              "properties": { "tag": { "const": "maybe" }, "value": { "anyOf": [{ "type": "boolean" }, { "type": "null" }] } },
              "required": ["tag"], "additionalProperties": false },
        ]})
    );
}

#[test]
fn input_schema_has_one_property_per_parameter() {
    let f = function(&[
        ("path", WitType::String),
        ("max-bytes", option(WitType::U32)),
        ("entry", record("entry", &[("name", WitType::String)])),
    ]);
    let schema = Value::Object(f.input_schema());
    assert_eq!(
        schema,
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "path": { "type": "string" },
                "max_bytes": { "anyOf": [{ "type": "integer", "minimum": 0, "maximum": u32::MAX }, { "type": "null" }] },
                "entry": {
                    "type": "object",
                    "properties": { "name": { "type": "string" } },
                    "required": ["name"],
                    "additionalProperties": false,
                },
            },
            "required": ["path", "entry"],
            "additionalProperties": false,
        })
    );
}

#[test]
fn input_schema_of_no_parameters_is_an_empty_object() {
    let schema = Value::Object(function(&[]).input_schema());
    assert_eq!(schema["properties"], json!({}));
    assert_eq!(schema["required"], json!([]));
    assert_eq!(schema["additionalProperties"], json!(false));
}

#[test]
fn a_named_type_used_twice_is_written_once_under_defs() {
    let point = record("point", &[("x", WitType::S32)]);
    let segment = record("segment", &[("from", point.clone()), ("to", point.clone())]);
    let f = function(&[
        ("path", segment.clone()),
        ("start", option(point.clone())),
        ("single", record("single", &[("y", WitType::Bool)])),
    ]);
    let schema = Value::Object(f.input_schema());
    let point_ref = json!({ "$ref": "#/$defs/point" });
    assert_eq!(
        schema["$defs"],
        json!({
            "point": {
                "type": "object",
                "properties": { "x": { "type": "integer", "minimum": i32::MIN, "maximum": i32::MAX } },
                "required": ["x"],
                "additionalProperties": false,
            }
        }),
        "point is shared (three uses); segment and single are used once and stay inline"
    );
    assert_eq!(
        schema["properties"]["path"]["properties"],
        json!({ "from": point_ref, "to": point_ref })
    );
    assert_eq!(
        schema["properties"]["start"],
        json!({ "anyOf": [point_ref, { "type": "null" }] })
    );
    assert_eq!(schema["properties"]["single"]["type"], "object");
    assert_eq!(schema["required"], json!(["path", "single"]));

    // The same types each used once: no $defs at all.
    let once = Value::Object(function(&[("p", point.clone())]).input_schema());
    assert!(once.get("$defs").is_none(), "{once}");
    assert_eq!(once["properties"]["p"]["type"], "object");
}

#[test]
fn shared_types_nest_and_two_types_of_one_name_stay_inline() {
    let point = record("point", &[("x", WitType::S32)]);
    let pair = record("pair", &[("a", point.clone()), ("b", point.clone())]);
    let f = function(&[("one", pair.clone()), ("two", list(pair.clone()))]);
    let schema = Value::Object(f.input_schema());
    assert_eq!(
        schema["properties"]["one"],
        json!({ "$ref": "#/$defs/pair" })
    );
    assert_eq!(
        schema["properties"]["two"],
        json!({ "type": "array", "items": { "$ref": "#/$defs/pair" } })
    );
    assert_eq!(
        schema["$defs"]["pair"]["properties"]["a"],
        json!({ "$ref": "#/$defs/point" }),
        "a shared type inside a shared type"
    );

    // `point` from another interface: the name is ambiguous, so both stay inline.
    let WitType::Record(mut other) = point.clone() else {
        unreachable!()
    };
    if let Some(name) = other.name.as_mut() {
        name.interface = Some("example:other/types@0.1.0".into());
    }
    let other = WitType::Record(other);
    let f = function(&[
        ("a", point.clone()),
        ("b", point.clone()),
        ("c", other.clone()),
        ("d", other),
    ]);
    let schema = Value::Object(f.input_schema());
    assert!(schema.get("$defs").is_none(), "{schema}");
}
