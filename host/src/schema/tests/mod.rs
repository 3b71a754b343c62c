//! Tests of the schema module: one file per concern, sharing the type builders below.

mod describe;
mod input;
mod json_schema;
mod names;
mod output;
mod roundtrip;

use super::{
    Case, Enum, ExportedFunction, Field, Flags, Param, Record, TypeName, Variant, WitType,
};

/// A record of (WIT name, type) fields, without docs.
fn record(name: &str, fields: &[(&str, WitType)]) -> WitType {
    WitType::Record(Record {
        name: Some(TypeName {
            interface: Some("example:test/types@0.1.0".into()),
            name: name.into(),
        }),
        docs: None,
        fields: fields
            .iter()
            .map(|(name, ty)| Field {
                name: (*name).into(),
                docs: None,
                ty: ty.clone(),
            })
            .collect(),
    })
}

/// A variant of (WIT name, payload) cases, without docs.
fn variant(cases: &[(&str, Option<WitType>)]) -> WitType {
    WitType::Variant(Variant {
        name: None,
        docs: None,
        cases: cases
            .iter()
            .map(|(name, ty)| Case {
                name: (*name).into(),
                docs: None,
                ty: ty.clone(),
            })
            .collect(),
    })
}

fn enumeration(cases: &[&str]) -> WitType {
    WitType::Enum(Enum {
        name: None,
        docs: None,
        cases: cases.iter().map(|case| ((*case).into(), None)).collect(),
    })
}

fn flags(names: &[&str]) -> WitType {
    WitType::Flags(Flags {
        name: None,
        docs: None,
        flags: names.iter().map(|name| (*name).into()).collect(),
    })
}

fn option(ty: WitType) -> WitType {
    WitType::Option(Box::new(ty))
}

fn list(ty: WitType) -> WitType {
    WitType::List(Box::new(ty))
}

fn result(ok: Option<WitType>, err: Option<WitType>) -> WitType {
    WitType::Result {
        ok: ok.map(Box::new),
        err: err.map(Box::new),
    }
}

/// A world-level function with (WIT name, type) parameters and no result.
fn function(params: &[(&str, WitType)]) -> ExportedFunction {
    ExportedFunction {
        interface: None,
        name: "f".into(),
        docs: None,
        params: params
            .iter()
            .map(|(name, ty)| Param {
                name: (*name).into(),
                ty: ty.clone(),
            })
            .collect(),
        result: None,
    }
}
