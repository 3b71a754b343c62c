//! Property tests: random WIT types and random values of them survive JSON both ways.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::strategy::Union;
use wasmtime::component::Val;

use crate::schema::{Case, Enum, Field, Flags, Record, Variant, WitType, from_json, to_json};

/// A WIT identifier: kebab-case words, each starting with a letter.
fn wit_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,3}(-[a-z][a-z0-9]{0,2}){0,2}"
}

fn unique_names(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set(wit_name(), 1..=max).prop_map(|set| set.into_iter().collect())
}

fn leaf_type() -> impl Strategy<Value = WitType> {
    prop_oneof![
        Just(WitType::Bool),
        Just(WitType::U8),
        Just(WitType::U16),
        Just(WitType::U32),
        Just(WitType::U64),
        Just(WitType::S8),
        Just(WitType::S16),
        Just(WitType::S32),
        Just(WitType::S64),
        Just(WitType::F32),
        Just(WitType::F64),
        Just(WitType::Char),
        Just(WitType::String),
        Just(WitType::Bytes),
        unique_names(4).prop_map(|names| WitType::Enum(Enum {
            name: None,
            docs: None,
            cases: names.into_iter().map(|name| (name, None)).collect(),
        })),
        unique_names(4).prop_map(|flags| WitType::Flags(Flags {
            name: None,
            docs: None,
            flags,
        })),
    ]
}

/// WIT type trees up to 4 levels deep.
fn wit_type() -> impl Strategy<Value = WitType> {
    leaf_type().prop_recursive(4, 32, 4, |inner| {
        let boxed = |ty: WitType| Box::new(ty);
        prop_oneof![
            inner.clone().prop_map(move |ty| WitType::List(boxed(ty))),
            inner.clone().prop_map(move |ty| WitType::Option(boxed(ty))),
            (
                prop::option::of(inner.clone()),
                prop::option::of(inner.clone())
            )
                .prop_map(move |(ok, err)| WitType::Result {
                    ok: ok.map(boxed),
                    err: err.map(boxed),
                }),
            prop::collection::vec(inner.clone(), 1..4).prop_map(WitType::Tuple),
            prop::collection::btree_map(wit_name(), inner.clone(), 1..4).prop_map(
                |fields: BTreeMap<String, WitType>| WitType::Record(Record {
                    name: None,
                    docs: None,
                    fields: fields
                        .into_iter()
                        .map(|(name, ty)| Field {
                            name,
                            docs: None,
                            ty
                        })
                        .collect(),
                })
            ),
            prop::collection::btree_map(wit_name(), prop::option::of(inner), 1..4).prop_map(
                |cases| WitType::Variant(Variant {
                    name: None,
                    docs: None,
                    cases: cases
                        .into_iter()
                        .map(|(name, ty)| Case {
                            name,
                            docs: None,
                            ty
                        })
                        .collect(),
                })
            ),
        ]
    })
}

/// Finite floats (JSON has no NaN or infinity), including zeros and subnormals.
fn finite_f32() -> impl Strategy<Value = f32> {
    use prop::num::f32::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO
}

fn finite_f64() -> impl Strategy<Value = f64> {
    use prop::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO
}

/// Any valid value of `ty`, in the shape wasmtime lifts it.
fn value_of(ty: &WitType) -> BoxedStrategy<Val> {
    match ty {
        WitType::Bool => any::<bool>().prop_map(Val::Bool).boxed(),
        WitType::U8 => any::<u8>().prop_map(Val::U8).boxed(),
        WitType::U16 => any::<u16>().prop_map(Val::U16).boxed(),
        WitType::U32 => any::<u32>().prop_map(Val::U32).boxed(),
        WitType::U64 => any::<u64>().prop_map(Val::U64).boxed(),
        WitType::S8 => any::<i8>().prop_map(Val::S8).boxed(),
        WitType::S16 => any::<i16>().prop_map(Val::S16).boxed(),
        WitType::S32 => any::<i32>().prop_map(Val::S32).boxed(),
        WitType::S64 => any::<i64>().prop_map(Val::S64).boxed(),
        WitType::F32 => finite_f32().prop_map(Val::Float32).boxed(),
        WitType::F64 => finite_f64().prop_map(Val::Float64).boxed(),
        WitType::Char => any::<char>().prop_map(Val::Char).boxed(),
        WitType::String => any::<String>().prop_map(Val::String).boxed(),
        WitType::Bytes => prop::collection::vec(any::<u8>().prop_map(Val::U8), 0..16)
            .prop_map(Val::List)
            .boxed(),
        WitType::List(element) => prop::collection::vec(value_of(element), 0..4)
            .prop_map(Val::List)
            .boxed(),
        WitType::Option(inner) => prop::option::of(value_of(inner))
            .prop_map(|some| Val::Option(some.map(Box::new)))
            .boxed(),
        WitType::Result { ok, err } => {
            let payload = |ty: &Option<Box<WitType>>| match ty {
                Some(ty) => value_of(ty).prop_map(|val| Some(Box::new(val))).boxed(),
                None => Just(None).boxed(),
            };
            prop_oneof![
                payload(ok).prop_map(|payload| Val::Result(Ok(payload))),
                payload(err).prop_map(|payload| Val::Result(Err(payload))),
            ]
            .boxed()
        }
        WitType::Tuple(types) => types
            .iter()
            .map(value_of)
            .collect::<Vec<_>>()
            .prop_map(Val::Tuple)
            .boxed(),
        WitType::Record(record) => record
            .fields
            .iter()
            .map(|field| {
                let name = field.name.clone();
                value_of(&field.ty).prop_map(move |val| (name.clone(), val))
            })
            .collect::<Vec<_>>()
            .prop_map(Val::Record)
            .boxed(),
        WitType::Variant(variant) => Union::new(variant.cases.iter().map(|case| {
            let name = case.name.clone();
            match &case.ty {
                Some(ty) => value_of(ty)
                    .prop_map(move |val| Val::Variant(name.clone(), Some(Box::new(val))))
                    .boxed(),
                None => Just(Val::Variant(name, None)).boxed(),
            }
        }))
        .boxed(),
        WitType::Enum(enumeration) => {
            let names = enumeration.cases.iter().map(|(name, _)| name.clone());
            prop::sample::select(names.collect::<Vec<_>>())
                .prop_map(Val::Enum)
                .boxed()
        }
        WitType::Flags(flags) => {
            let count = flags.flags.len();
            prop::sample::subsequence(flags.flags.clone(), 0..=count)
                .prop_map(Val::Flags)
                .boxed()
        }
    }
}

fn typed_value() -> impl Strategy<Value = (WitType, Val)> {
    wit_type().prop_flat_map(|ty| {
        let values = value_of(&ty);
        (Just(ty), values)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Val -> JSON -> Val is the identity.
    #[test]
    fn value_survives_json((ty, val) in typed_value()) {
        let json = to_json(&ty, &val).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = from_json(&ty, &json, "").map_err(|e| TestCaseError::fail(format!("{e} in {json}")))?;
        prop_assert_eq!(back, val);
    }

    /// JSON (as warden writes it) -> Val -> JSON is the identity.
    ///
    /// In memory, not through JSON text: serde_json without its `float_roundtrip` feature may
    /// parse a float's shortest text one ulp off (e.g. `-1.3766636046975845e-289`).
    #[test]
    fn json_survives_values((ty, val) in typed_value()) {
        let json = to_json(&ty, &val).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = from_json(&ty, &json, "").map_err(|e| TestCaseError::fail(format!("{e} in {json}")))?;
        let again = to_json(&ty, &back).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again, json);
    }
}
