//! `describe_component` on real components, built from WIT text without compiling any guest:
//! `dummy_module` + `embed_component_metadata` + `ComponentEncoder`, as `wasm-component-ld`
//! does for a Rust plugin.

use serde_json::{Value, json};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::{LiftLowerAbi, ManglingAndAbi, PackageId, Resolve};

use super::{enumeration, flags, list, option, record, result, variant};
use crate::schema::{
    ComponentDescription, DescribeError, Param, Record, TypeName, WitType, describe_component,
    embed_wit_docs,
};

const MCP_WIT: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/mcp.wit"));

const CLOCKS_WIT: &str = "
package wasi:clocks@0.2.6;
interface monotonic-clock {
    now: func() -> u64;
}
";

const FILES_WIT: &str = "
package example:files@0.1.0;

interface files {
    use warden:mcp/types@0.1.0.{tool-result};

    /// A directory entry.
    record entry {
        /// The entry's file name.
        name: string,
        is-dir: bool,
        size: u64,
    }

    /// How to open a file.
    enum mode {
        /// Read only.
        ro,
        rw,
    }

    flags perms { read, write }

    variant target { path(string), fd(u32), none }

    /// Read a UTF-8 text file from a granted directory.
    read-text: func(path: string, max-bytes: option<u32>) -> result<string, string>;

    /// List the entries of a directory.
    %list: func(path: string) -> result<list<entry>, string>;

    raw: func(data: list<u8>, pair: tuple<u8, char>, m: mode, p: perms, t: target);

    show: func() -> tool-result;
}

world plugin {
    include warden:mcp/tool@0.1.0;
    import wasi:clocks/monotonic-clock@0.2.6;
    use warden:mcp/types@0.1.0.{tool-result};

    export files;

    /// Say hello.
    export hello: func(name: string) -> string;

    export render: func() -> result<tool-result, string>;
}
";

/// A resolve holding warden:mcp, a WASI stand-in and `plugin`; returns `plugin`'s package.
fn resolve_with(plugin: &str) -> (Resolve, PackageId) {
    let mut resolve = Resolve::default();
    resolve
        .push_str("mcp.wit", MCP_WIT)
        .expect("mcp.wit parses");
    resolve
        .push_str("clocks.wit", CLOCKS_WIT)
        .expect("clocks parses");
    let package = resolve
        .push_str("plugin.wit", plugin)
        .expect("plugin WIT parses");
    (resolve, package)
}

/// A component implementing world `plugin` of `package`, as a guest toolchain would build it.
fn component(resolve: &Resolve, package: PackageId) -> Vec<u8> {
    component_with(resolve, package, |_| {})
}

/// [`component`], with `extra` appending sections to the core module first.
fn component_with(
    resolve: &Resolve,
    package: PackageId,
    extra: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let world = resolve
        .select_world(&[package], Some("plugin"))
        .expect("world");
    let mangling = ManglingAndAbi::Legacy(LiftLowerAbi::Sync);
    let mut module = wit_component::dummy_module(resolve, world, mangling);
    extra(&mut module);
    wit_component::embed_component_metadata(
        &mut module,
        resolve,
        world,
        StringEncoding::UTF8,
        false,
    )
    .expect("embed metadata");
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .expect("module")
        .encode()
        .expect("encode component")
}

fn describe(wit: &str) -> Result<ComponentDescription, DescribeError> {
    let (resolve, package) = resolve_with(wit);
    describe_component(&component(&resolve, package))
}

fn files() -> ComponentDescription {
    describe(FILES_WIT).expect("describe")
}

fn function<'a>(
    description: &'a ComponentDescription,
    name: &str,
) -> &'a crate::schema::ExportedFunction {
    description
        .functions
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no function {name}"))
}

/// Strip names and docs, to compare structure.
fn anonymous(ty: &WitType) -> WitType {
    match ty {
        WitType::Record(r) => WitType::Record(Record {
            name: None,
            docs: None,
            fields: r
                .fields
                .iter()
                .map(|f| crate::schema::Field {
                    name: f.name.clone(),
                    docs: None,
                    ty: anonymous(&f.ty),
                })
                .collect(),
        }),
        WitType::Enum(e) => {
            enumeration(&e.cases.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>())
        }
        WitType::Flags(f) => flags(&f.flags.iter().map(String::as_str).collect::<Vec<_>>()),
        WitType::Variant(v) => variant(
            &v.cases
                .iter()
                .map(|c| (c.name.as_str(), c.ty.as_ref().map(anonymous)))
                .collect::<Vec<_>>(),
        ),
        WitType::List(t) => list(anonymous(t)),
        WitType::Option(t) => option(anonymous(t)),
        WitType::Result { ok, err } => {
            result(ok.as_deref().map(anonymous), err.as_deref().map(anonymous))
        }
        WitType::Tuple(ts) => WitType::Tuple(ts.iter().map(anonymous).collect()),
        other => other.clone(),
    }
}

#[test]
fn functions_are_listed_in_export_order_with_their_interface() {
    let description = files();
    let names = description
        .functions
        .iter()
        .map(|f| (f.interface.as_deref(), f.name.as_str()))
        .collect::<Vec<_>>();
    assert_eq!(
        names,
        // The component exports the world's own functions first; each interface's functions
        // keep their WIT order.
        [
            (None, "hello"),
            (None, "render"),
            (Some("example:files/files@0.1.0"), "read-text"),
            (Some("example:files/files@0.1.0"), "list"),
            (Some("example:files/files@0.1.0"), "raw"),
            (Some("example:files/files@0.1.0"), "show"),
        ]
    );
}

#[test]
fn parameters_and_results_decode_to_wit_types() {
    let description = files();
    let read_text = function(&description, "read-text");
    assert_eq!(
        read_text.params,
        [
            Param {
                name: "path".into(),
                ty: WitType::String
            },
            Param {
                name: "max-bytes".into(),
                ty: option(WitType::U32)
            },
        ]
    );
    assert_eq!(
        read_text.result,
        Some(result(Some(WitType::String), Some(WitType::String)))
    );

    let list_fn = function(&description, "list");
    let entry = record(
        "entry",
        &[
            ("name", WitType::String),
            ("is-dir", WitType::Bool),
            ("size", WitType::U64),
        ],
    );
    let Some(WitType::Result { ok: Some(ok), .. }) = &list_fn.result else {
        panic!("list returns a result: {:?}", list_fn.result);
    };
    let WitType::List(element) = &**ok else {
        panic!("ok is a list: {ok:?}")
    };
    let WitType::Record(record_type) = &**element else {
        panic!("a list of records: {element:?}")
    };
    assert_eq!(
        record_type.name,
        Some(TypeName {
            interface: Some("example:files/files@0.1.0".into()),
            name: "entry".into()
        })
    );
    assert_eq!(anonymous(element), anonymous(&entry));

    let raw = function(&description, "raw");
    let types = raw
        .params
        .iter()
        .map(|p| anonymous(&p.ty))
        .collect::<Vec<_>>();
    assert_eq!(
        types,
        [
            WitType::Bytes,
            WitType::Tuple(vec![WitType::U8, WitType::Char]),
            enumeration(&["ro", "rw"]),
            flags(&["read", "write"]),
            variant(&[
                ("path", Some(WitType::String)),
                ("fd", Some(WitType::U32)),
                ("none", None)
            ]),
        ]
    );
    assert_eq!(raw.result, None);

    let hello = function(&description, "hello");
    assert_eq!(
        hello.params,
        [Param {
            name: "name".into(),
            ty: WitType::String
        }]
    );
    assert_eq!(hello.result, Some(WitType::String));
}

#[test]
fn imports_are_listed_by_interface_name() {
    let mut imports = files().imports;
    imports.sort();
    assert_eq!(
        imports,
        [
            "warden:mcp/host@0.1.0",
            "warden:mcp/types@0.1.0",
            "wasi:clocks/monotonic-clock@0.2.6"
        ]
    );
}

#[test]
fn tool_result_is_recognised_through_a_component() {
    let description = files();
    let show = function(&description, "show")
        .result
        .as_ref()
        .expect("show has a result");
    assert!(show.is_tool_result(), "{show:?}");
    let Some(WitType::Result { ok: Some(ok), .. }) = &function(&description, "render").result
    else {
        panic!("render returns a result");
    };
    assert!(ok.is_tool_result());
    assert!(
        !function(&description, "hello")
            .result
            .as_ref()
            .expect("result")
            .is_tool_result()
    );
}

#[test]
fn tool_result_needs_the_warden_interface() {
    let named = |interface: Option<&str>, name: &str| {
        WitType::Record(Record {
            name: Some(TypeName {
                interface: interface.map(str::to_owned),
                name: name.into(),
            }),
            docs: None,
            fields: vec![],
        })
    };
    assert!(named(Some("warden:mcp/types@0.1.0"), "tool-result").is_tool_result());
    assert!(named(Some("warden:mcp/types@0.2.0-rc.1"), "tool-result").is_tool_result());
    assert!(named(Some("warden:mcp/types"), "tool-result").is_tool_result());
    assert!(!named(Some("example:files/files@0.1.0"), "tool-result").is_tool_result());
    assert!(!named(Some("warden:mcp/typesx@0.1.0"), "tool-result").is_tool_result());
    assert!(!named(Some("warden:mcp/types@0.1.0"), "media").is_tool_result());
    assert!(!named(None, "tool-result").is_tool_result());
    assert!(!WitType::String.is_tool_result());
}

/// The finding: a component built the usual way carries no doc comments, and
/// `wit_component::decode` has none to expose.
#[test]
fn docs_do_not_survive_componentization() {
    let description = files();
    assert!(description.functions.iter().all(|f| f.docs.is_none()));
    let Some(WitType::Result { ok: Some(ok), .. }) = &function(&description, "list").result else {
        panic!("list returns a result");
    };
    let WitType::List(entry) = &**ok else {
        panic!("a list")
    };
    let WitType::Record(entry) = &**entry else {
        panic!("a record")
    };
    assert_eq!(entry.docs, None);
    assert!(entry.fields.iter().all(|f| f.docs.is_none()));
}

#[test]
fn docs_come_from_the_warden_wit_section() {
    let (resolve, package) = resolve_with(FILES_WIT);
    let bytes = embed_wit_docs(&component(&resolve, package), &resolve, package).expect("embed");
    // Still a valid component that decodes the same.
    wit_component::decode(&bytes).expect("still decodes");
    let description = describe_component(&bytes).expect("describe");
    let docs = |name: &str| function(&description, name).docs.clone();
    assert_eq!(
        docs("read-text").as_deref(),
        Some("Read a UTF-8 text file from a granted directory.")
    );
    assert_eq!(
        docs("list").as_deref(),
        Some("List the entries of a directory.")
    );
    assert_eq!(docs("hello").as_deref(), Some("Say hello."));
    assert_eq!(docs("raw"), None);

    let Some(WitType::Result { ok: Some(ok), .. }) = &function(&description, "list").result else {
        panic!("list returns a result");
    };
    let WitType::List(entry) = &**ok else {
        panic!("a list")
    };
    let schema = crate::schema::json_schema(entry);
    assert_eq!(schema["description"], json!("A directory entry."));
    assert_eq!(
        schema["properties"]["name"]["description"],
        json!("The entry's file name.")
    );
    assert_eq!(schema["properties"]["is_dir"].get("description"), None);

    let WitType::Enum(mode) = &function(&description, "raw").params[2].ty else {
        panic!("an enum")
    };
    assert_eq!(mode.docs.as_deref(), Some("How to open a file."));
    assert_eq!(
        mode.cases[0],
        ("ro".to_owned(), Some("Read only.".to_owned()))
    );
}

#[test]
fn input_schema_of_a_decoded_function() {
    let description = files();
    let schema = Value::Object(function(&description, "read-text").input_schema());
    assert_eq!(
        schema,
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "path": { "type": "string" },
                "max_bytes": { "anyOf": [{ "type": "integer", "minimum": 0, "maximum": u32::MAX }, { "type": "null" }] },
            },
            "required": ["path"],
            "additionalProperties": false,
        })
    );
}

#[test]
fn resource_handles_are_rejected_naming_function_and_parameter() {
    let wit = "
        package example:files@0.1.0;
        interface files {
            resource handle;
            open: func(h: borrow<handle>);
        }
        world plugin {
            export files;
        }
    ";
    let error = describe(wit).expect_err("resources are unsupported");
    assert_eq!(
        error.to_string(),
        "function `files.open`: parameter `h`: resource handles are not supported"
    );
    let DescribeError::Unsupported {
        function, position, ..
    } = error
    else {
        panic!("an Unsupported error")
    };
    assert_eq!(function, "files.open");
    assert_eq!(position.as_deref(), Some("parameter `h`"));
}

#[test]
fn nested_unsupported_types_name_the_result() {
    let wit = "
        package example:files@0.1.0;
        interface files {
            resource handle;
            open: func() -> result<list<handle>, string>;
        }
        world plugin {
            export files;
        }
    ";
    let error = describe(wit).expect_err("resources are unsupported");
    assert_eq!(
        error.to_string(),
        "function `files.open`: result: resource handles are not supported"
    );
}

#[test]
fn non_components_are_rejected() {
    let core_module = b"\0asm\x01\0\0\0";
    assert!(matches!(
        describe_component(core_module),
        Err(DescribeError::NotAComponent)
    ));
    assert!(matches!(
        describe_component(b"hello"),
        Err(DescribeError::NotAComponent)
    ));
    assert!(matches!(
        describe_component(&[]),
        Err(DescribeError::NotAComponent)
    ));

    let mut truncated = files_component();
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(
        describe_component(&truncated),
        Err(DescribeError::Decode(_))
    ));

    let (resolve, package) = resolve_with(FILES_WIT);
    let wit_package = wit_component::encode(&resolve, package, false).expect("encode WIT");
    assert!(matches!(
        describe_component(&wit_package),
        Err(DescribeError::WitPackage)
    ));
}

#[test]
fn a_bad_docs_section_is_an_error() {
    let mut bytes = files_component();
    let section = wasm_encoder::CustomSection {
        name: crate::schema::WIT_DOCS_SECTION.into(),
        data: b"not wasm".as_slice().into(),
    };
    bytes.push(0);
    wasm_encoder::Encode::encode(&section, &mut bytes);
    let error = describe_component(&bytes).expect_err("bad docs section");
    assert!(matches!(error, DescribeError::Docs(_)), "{error:?}");
}

fn files_component() -> Vec<u8> {
    let (resolve, package) = resolve_with(FILES_WIT);
    component(&resolve, package)
}

/// Why warden has its own docs section: the standard `package-docs` custom section is only
/// applied by `wit_component::decode` to the synthetic `root:component` package of a decoded
/// component. It can document the world's own functions, but not the functions of an exported
/// interface such as `example:files/files`, whose package is not in it (wasm-tools#2571). If
/// this test starts failing, upstream has fixed that and the `warden-wit` section may go.
#[test]
fn package_docs_reach_only_the_root_package() {
    let bytes = files_component();
    let wit_component::DecodedWasm::Component(mut resolve, world) =
        wit_component::decode(&bytes).expect("decode")
    else {
        panic!("a component")
    };
    // Document everything in the decoded WIT, as a tool would before writing the section.
    let root = resolve.worlds[world].package.expect("root package");
    for item in resolve.worlds[world].exports.values_mut() {
        if let wit_parser::WorldItem::Function(function) = item {
            function.docs.contents = Some(format!("Docs of {}.", function.name));
        }
    }
    for interface in resolve.interfaces.iter_mut().map(|(_, i)| i) {
        for function in interface.functions.values_mut() {
            function.docs.contents = Some(format!("Docs of {}.", function.name));
        }
    }
    let metadata = wit_parser::PackageMetadata::extract(&resolve, root);
    let section = wasm_encoder::CustomSection {
        name: wit_parser::PackageMetadata::SECTION_NAME.into(),
        data: metadata.encode().expect("encode docs").into(),
    };
    let mut documented = bytes.clone();
    documented.push(0);
    wasm_encoder::Encode::encode(&section, &mut documented);

    let description = describe_component(&documented).expect("describe");
    assert_eq!(
        function(&description, "hello").docs.as_deref(),
        Some("Docs of hello.")
    );
    assert_eq!(function(&description, "read-text").docs, None);
}

const NAMES_WIT: &str = "
package example:names@0.1.0;

interface tools {
    /// What to keep.
    record options {
        /// The line ending to write; `line-ending` defaults to `\\n`.
        line-ending: option<string>,
        /// One of `keep-all` or `drop-empty`.
        policy: policy,
    }

    enum policy { keep-all, drop-empty }

    /// What was read.
    record outcome {
        /// Bytes read, at most `max-bytes`.
        bytes-read: u64,
    }

    /// Read `path`, at most `max-bytes` bytes (see `options.line-ending`, `policy` =
    /// `drop-empty`), and report `bytes-read`. Not rewritten: non-max-bytes, max-bytes-total,
    /// a well-known name.
    read-text: func(path: string, max-bytes: option<u32>, options: options) -> outcome;
}

world plugin {
    include warden:mcp/tool@0.1.0;
    export tools;
}
";

#[test]
fn descriptions_use_the_json_names_of_parameters_fields_and_cases() {
    let (resolve, package) = resolve_with(NAMES_WIT);
    let bytes = embed_wit_docs(&component(&resolve, package), &resolve, package).expect("embed");
    let description = describe_component(&bytes).expect("describe");
    let read = function(&description, "read-text");
    assert_eq!(
        read.docs.as_deref(),
        Some(
            "Read `path`, at most `max_bytes` bytes (see `options.line_ending`, `policy` =\n\
             `drop_empty`), and report `bytes_read`. Not rewritten: non-max-bytes, \
             max-bytes-total,\na well-known name."
        )
    );
    // The schemas' descriptions too: what the model reads is what it must send.
    let schema = read.input_schema();
    let options = &schema["properties"]["options"];
    assert_eq!(
        options["properties"]["line_ending"]["description"],
        json!("The line ending to write; `line_ending` defaults to `\\n`.")
    );
    assert_eq!(
        options["properties"]["policy"]["description"],
        json!("One of `keep_all` or `drop_empty`.")
    );
    let Some(WitType::Record(outcome)) = &read.result else {
        panic!("a record result")
    };
    assert_eq!(
        outcome.fields[0].docs.as_deref(),
        Some("Bytes read, at most `max_bytes`.")
    );
}

/// A component of `wit`'s world whose core module carries `source` in a `warden-wit-source`
/// section, as `warden_sdk::embed_wit_docs!` puts it there.
fn component_with_source(wit: &str, source: &str) -> Vec<u8> {
    let (resolve, package) = resolve_with(wit);
    component_with(&resolve, package, |module| {
        module.push(0); // a custom section
        wasm_encoder::Encode::encode(
            &wasm_encoder::CustomSection {
                name: crate::schema::WIT_SOURCE_SECTION.into(),
                data: source.as_bytes().into(),
            },
            module,
        );
    })
}

#[test]
fn docs_compiled_into_the_core_module_are_read_without_the_section() {
    let bytes = component_with_source(NAMES_WIT, NAMES_WIT);
    let description = describe_component(&bytes).expect("describe");
    let read = function(&description, "read-text");
    assert!(
        read.docs
            .as_deref()
            .is_some_and(|d| d.starts_with("Read `path`, at most `max_bytes` bytes")),
        "{read:?}"
    );

    // The warden-wit section, when present, is what counts.
    let (resolve, package) = resolve_with(&NAMES_WIT.replace("Read `path`", "Fetch `path`"));
    let both = embed_wit_docs(&bytes, &resolve, package).expect("embed");
    let read = function(&describe_component(&both).expect("describe"), "read-text").clone();
    assert!(
        read.docs
            .as_deref()
            .is_some_and(|d| d.starts_with("Fetch `path`")),
        "{read:?}"
    );

    // Text that does not resolve is ignored: the tool is served, undocumented.
    let bytes = component_with_source(NAMES_WIT, "package broken");
    let description = describe_component(&bytes).expect("still served");
    assert_eq!(function(&description, "read-text").docs, None);
}

#[test]
fn an_exported_prompts_interface_gives_prompts_not_tools() {
    let description = describe(
        "package example:docs@0.1.0;
interface docs {
    /// Count words.
    count: func(text: string) -> u32;
}
world plugin {
    include warden:mcp/tool@0.1.0;
    export docs;
    export warden:mcp/prompts@0.1.0;
}",
    )
    .expect("describe");
    let names: Vec<&str> = description
        .functions
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, ["count"]);
    let prompts = description.prompts.expect("prompts");
    assert_eq!(prompts.list.name, "list");
    assert_eq!(prompts.get.name, "get");
    assert_eq!(prompts.get.params.len(), 2);
    assert!(files().prompts.is_none());
}

#[test]
fn an_exported_completions_interface_is_no_tool_and_takes_its_four_arguments() {
    let description = describe(
        "package example:docs@0.1.0;
interface docs {
    /// Count words.
    count: func(text: string) -> u32;
}
world plugin {
    include warden:mcp/tool@0.1.0;
    export docs;
    export warden:mcp/completions@0.1.0;
}",
    )
    .expect("describe");
    let names: Vec<&str> = description
        .functions
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, ["count"]);
    let complete = description.completions.expect("completions");
    assert_eq!(complete.name, "complete");
    let args = crate::schema::complete_args(
        crate::schema::CompletionRef::ResourceTemplate("notes://{id}"),
        "id",
        "1",
        &[("other".to_owned(), "x".to_owned())],
    );
    assert_eq!(args.len(), complete.params.len());
    assert!(files().completions.is_none());
}
