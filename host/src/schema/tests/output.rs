//! Values -> JSON: the encoding, and mismatches reported as plugin bugs.

use serde_json::json;
use wasmtime::component::Val;

use super::{enumeration, flags, list, option, record, result, variant};
use crate::schema::{WitType, to_json};

fn some(val: Val) -> Val {
    Val::Option(Some(Box::new(val)))
}

#[test]
fn scalars() {
    assert_eq!(
        to_json(&WitType::Bool, &Val::Bool(true)).unwrap(),
        json!(true)
    );
    assert_eq!(
        to_json(&WitType::U64, &Val::U64(u64::MAX)).unwrap(),
        json!(u64::MAX)
    );
    assert_eq!(to_json(&WitType::S8, &Val::S8(-5)).unwrap(), json!(-5));
    assert_eq!(
        to_json(&WitType::F32, &Val::Float32(0.5)).unwrap(),
        json!(0.5)
    );
    assert_eq!(
        to_json(&WitType::Char, &Val::Char('🦀')).unwrap(),
        json!("🦀")
    );
    assert_eq!(
        to_json(&WitType::String, &Val::String("s".into())).unwrap(),
        json!("s")
    );
}

#[test]
fn non_finite_floats_become_null() {
    assert_eq!(
        to_json(&WitType::F64, &Val::Float64(f64::NAN)).unwrap(),
        json!(null)
    );
    assert_eq!(
        to_json(&WitType::F64, &Val::Float64(f64::INFINITY)).unwrap(),
        json!(null)
    );
    assert_eq!(
        to_json(&WitType::F32, &Val::Float32(f32::NEG_INFINITY)).unwrap(),
        json!(null)
    );
}

#[test]
fn bytes_become_base64() {
    let bytes = Val::List(vec![Val::U8(0), Val::U8(1), Val::U8(255)]);
    assert_eq!(to_json(&WitType::Bytes, &bytes).unwrap(), json!("AAH/"));
    let bad = Val::List(vec![Val::U8(0), Val::U16(1)]);
    assert_eq!(
        to_json(&WitType::Bytes, &bad).unwrap_err().to_string(),
        "[1]: expected u8, got u16"
    );
}

#[test]
fn records_use_snake_keys_and_null_for_none() {
    let ty = record(
        "entry",
        &[("is-dir", WitType::Bool), ("size", option(WitType::U64))],
    );
    let val = Val::Record(vec![
        ("is-dir".into(), Val::Bool(false)),
        ("size".into(), Val::Option(None)),
    ]);
    assert_eq!(
        to_json(&ty, &val).unwrap(),
        json!({ "is_dir": false, "size": null })
    );
}

#[test]
fn compound_values() {
    let ty = variant(&[("a", None), ("b-c", Some(WitType::U8))]);
    assert_eq!(
        to_json(&ty, &Val::Variant("a".into(), None)).unwrap(),
        json!({ "tag": "a" })
    );
    assert_eq!(
        to_json(&ty, &Val::Variant("b-c".into(), Some(Box::new(Val::U8(1))))).unwrap(),
        json!({ "tag": "b_c", "value": 1 })
    );
    assert_eq!(
        to_json(&enumeration(&["read-only"]), &Val::Enum("read-only".into())).unwrap(),
        json!("read_only")
    );
    let ty = flags(&["a", "b-c", "d"]);
    assert_eq!(
        to_json(&ty, &Val::Flags(vec!["d".into(), "a".into()])).unwrap(),
        json!(["a", "d"])
    );
    let ty = result(Some(WitType::U8), None);
    assert_eq!(
        to_json(&ty, &Val::Result(Ok(Some(Box::new(Val::U8(2)))))).unwrap(),
        json!({ "ok": 2 })
    );
    assert_eq!(
        to_json(&ty, &Val::Result(Err(None))).unwrap(),
        json!({ "err": null })
    );
    let ty = WitType::Tuple(vec![WitType::U8, WitType::Char]);
    assert_eq!(
        to_json(&ty, &Val::Tuple(vec![Val::U8(1), Val::Char('x')])).unwrap(),
        json!([1, "x"])
    );
    let ty = option(option(WitType::U8));
    assert_eq!(
        to_json(&ty, &some(Val::Option(None))).unwrap(),
        json!({ "some": null })
    );
    assert_eq!(
        to_json(&ty, &some(some(Val::U8(4)))).unwrap(),
        json!({ "some": 4 })
    );
    assert_eq!(to_json(&ty, &Val::Option(None)).unwrap(), json!(null));
}

#[test]
fn mismatches_name_the_path() {
    let ty = list(record("entry", &[("size", WitType::U8)]));
    let val = Val::List(vec![Val::Record(vec![(
        "size".into(),
        Val::String("x".into()),
    )])]);
    let e = to_json(&ty, &val).unwrap_err();
    assert_eq!(e.to_string(), "[0].size: expected u8, got string");
    assert_eq!(
        to_json(&WitType::U8, &Val::U16(1)).unwrap_err().to_string(),
        "expected u8, got u16"
    );

    let ty = record("entry", &[("size", WitType::U8)]);
    let wrong_name = Val::Record(vec![("length".into(), Val::U8(1))]);
    assert_eq!(
        to_json(&ty, &wrong_name).unwrap_err().to_string(),
        "expected field `size`, got `length`"
    );
    let wrong_count = Val::Record(vec![]);
    assert_eq!(
        to_json(&ty, &wrong_count).unwrap_err().to_string(),
        "expected 1 fields, got 0"
    );

    let ty = variant(&[("a", None), ("b", Some(WitType::U8))]);
    assert_eq!(
        to_json(&ty, &Val::Variant("z".into(), None))
            .unwrap_err()
            .to_string(),
        "unknown variant case `z`"
    );
    assert_eq!(
        to_json(&ty, &Val::Variant("b".into(), None))
            .unwrap_err()
            .to_string(),
        "value: missing payload"
    );
    assert_eq!(
        to_json(&enumeration(&["a"]), &Val::Enum("b".into()))
            .unwrap_err()
            .to_string(),
        "unknown enum case `b`"
    );
    assert_eq!(
        to_json(&flags(&["a"]), &Val::Flags(vec!["b".into()]))
            .unwrap_err()
            .to_string(),
        "unknown flag `b`"
    );
    let ty = result(None, Some(WitType::String));
    assert_eq!(
        to_json(&ty, &Val::Result(Ok(Some(Box::new(Val::U8(1))))))
            .unwrap_err()
            .to_string(),
        "ok: unexpected payload"
    );
}
