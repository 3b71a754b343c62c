//! Component binary -> [`ComponentDescription`]: its exported functions with their types in
//! warden's terms, and its imports.

use wasmparser::Parser;
use wit_component::DecodedWasm;
use wit_parser::{
    Docs, Function, FunctionKind, Resolve, Type, TypeDef, TypeDefKind, TypeId, TypeOwner, WorldId,
    WorldItem, WorldKey,
};

use super::docs::{DocIndex, TypeDocs};
use super::types::{
    Case, ComponentDescription, Enum, ExportedFunction, Field, Flags, Param, PromptExports, Record,
    ResourceExports, TypeName, Variant, WitType,
};

/// Why a binary cannot be served as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    /// The bytes are not a component (e.g. a core module: build for `wasm32-wasip2`).
    #[error(
        "not a WebAssembly component (a plugin must be built as a component, e.g. for wasm32-wasip2)"
    )]
    NotAComponent,
    /// The bytes are a WIT package encoded as a component, not an implementation.
    #[error("this is a binary WIT package, not a component that implements one")]
    WitPackage,
    /// The component is malformed or cannot be decoded into WIT.
    #[error("failed to decode the component")]
    Decode(#[source] anyhow::Error),
    /// A `warden-wit` docs section is malformed, or could not be encoded.
    #[error("invalid `{}` docs section", super::docs::WIT_DOCS_SECTION)]
    Docs(#[source] anyhow::Error),
    /// An exported function uses something warden cannot carry in JSON.
    ///
    /// Display: ``function `files.open`: parameter `h`: resource handles are not supported``.
    #[error("function `{function}`: {}{reason}", position.as_ref().map(|p| format!("{p}: ")).unwrap_or_default())]
    Unsupported {
        /// The function, as `interface.function` (interface by its short name) or `function`.
        function: String,
        /// Where in its signature: ``parameter `h` `` or `result`; `None` for the function itself.
        position: Option<String>,
        /// What is unsupported, e.g. `resource handles are not supported`.
        reason: String,
    },
}

/// Decode a component binary into its exported functions (each a tool) and its imports.
///
/// Doc comments come from the decoded WIT when the component carries them, else from its
/// [`WIT_DOCS_SECTION`](super::WIT_DOCS_SECTION) sections (see [`super::embed_wit_docs`]);
/// a component built the usual way carries none, so `docs` are then `None`.
///
/// Fails if the bytes are not a component, or if any exported function is a resource method,
/// is `async`, or uses a type with no JSON mapping (resource handles, futures, streams, error
/// contexts, maps, fixed-length lists): a plugin is served whole or not at all.
pub fn describe_component(bytes: &[u8]) -> Result<ComponentDescription, DescribeError> {
    if !Parser::is_component(bytes) {
        return Err(DescribeError::NotAComponent);
    }
    let (resolve, world) = match wit_component::decode(bytes).map_err(DescribeError::Decode)? {
        DecodedWasm::Component(resolve, world) => (resolve, world),
        DecodedWasm::WitPackage(..) => return Err(DescribeError::WitPackage),
    };
    let docs = DocIndex::from_component(bytes)?;
    Describer {
        resolve: &resolve,
        docs: &docs,
    }
    .world(world)
}

/// Converts the WIT of one decoded component.
struct Describer<'a> {
    resolve: &'a Resolve,
    docs: &'a DocIndex,
}

impl Describer<'_> {
    fn world(&self, world: WorldId) -> Result<ComponentDescription, DescribeError> {
        let world = &self.resolve.worlds[world];
        let imports = world
            .imports
            .iter()
            .filter_map(|(key, item)| match item {
                WorldItem::Interface { .. } => Some(self.key_name(key)),
                WorldItem::Function(function) => Some(function.name.clone()),
                WorldItem::Type { .. } => None,
            })
            .collect();
        let mut functions = Vec::new();
        let mut prompts = None;
        let mut resources = None;
        let mut completions = None;
        for (key, item) in &world.exports {
            match item {
                WorldItem::Interface { id, .. } => {
                    let interface = &self.resolve.interfaces[*id];
                    let export_name = self.key_name(key);
                    if is_componentize_py_init(&export_name, interface) {
                        continue;
                    }
                    if is_warden_export(&export_name, "prompts") {
                        prompts = Some(self.prompts(interface, &export_name)?);
                        continue;
                    }
                    if is_warden_export(&export_name, "resources") {
                        resources = Some(self.resources(interface, &export_name)?);
                        continue;
                    }
                    if is_warden_export(&export_name, "completions") {
                        let complete = self.warden_function(
                            interface,
                            &export_name,
                            "completions",
                            "complete",
                        )?;
                        completions = Some(complete);
                        continue;
                    }
                    let short = interface
                        .name
                        .clone()
                        .unwrap_or_else(|| export_name.clone());
                    for function in interface.functions.values() {
                        let label = format!("{short}.{}", function.name);
                        functions.push(self.function(function, Some(&export_name), &label)?);
                    }
                }
                WorldItem::Function(function) => {
                    functions.push(self.function(function, None, &function.name)?);
                }
                WorldItem::Type { .. } => {}
            }
        }
        Ok(ComponentDescription {
            functions,
            imports,
            prompts,
            resources,
            completions,
        })
    }

    /// The functions of an exported `warden:mcp/prompts`.
    fn prompts(
        &self,
        interface: &wit_parser::Interface,
        export_name: &str,
    ) -> Result<PromptExports, DescribeError> {
        let function = |name| self.warden_function(interface, export_name, "prompts", name);
        Ok(PromptExports {
            list: function("list")?,
            get: function("get")?,
        })
    }

    /// The functions of an exported `warden:mcp/resources`.
    fn resources(
        &self,
        interface: &wit_parser::Interface,
        export_name: &str,
    ) -> Result<ResourceExports, DescribeError> {
        let function = |name| self.warden_function(interface, export_name, "resources", name);
        Ok(ResourceExports {
            list: function("list")?,
            templates: function("templates")?,
            read: function("read")?,
        })
    }

    /// The function `name` of warden's own exported interface `warden:mcp/{which}`.
    fn warden_function(
        &self,
        interface: &wit_parser::Interface,
        export_name: &str,
        which: &str,
        name: &str,
    ) -> Result<ExportedFunction, DescribeError> {
        let label = format!("{which}.{name}");
        match interface.functions.get(name) {
            Some(function) => self.function(function, Some(export_name), &label),
            None => Err(DescribeError::Unsupported {
                function: label,
                position: None,
                reason: format!("`warden:mcp/{which}` is exported without it"),
            }),
        }
    }

    /// The name of an import or export: `ns:pkg/iface@version`, or its plain name.
    fn key_name(&self, key: &WorldKey) -> String {
        match key {
            WorldKey::Name(name) => name.clone(),
            WorldKey::Interface(id) => self
                .resolve
                .id_of(*id)
                .unwrap_or_else(|| format!("<anonymous interface {}>", id.index())),
        }
    }

    fn function(
        &self,
        function: &Function,
        interface: Option<&str>,
        label: &str,
    ) -> Result<ExportedFunction, DescribeError> {
        let unsupported = |position: Option<String>, reason: &str| DescribeError::Unsupported {
            function: label.to_owned(),
            position,
            reason: reason.to_owned(),
        };
        match function.kind {
            FunctionKind::Freestanding => {}
            FunctionKind::AsyncFreestanding => {
                return Err(unsupported(None, "async functions are not supported"));
            }
            _ => return Err(unsupported(None, "resource functions are not supported")),
        }
        let params = function
            .params
            .iter()
            .map(|param| {
                let ty = self.ty(&param.ty).map_err(|reason| {
                    unsupported(Some(format!("parameter `{}`", param.name)), reason)
                })?;
                Ok(Param {
                    name: param.name.clone(),
                    ty,
                })
            })
            .collect::<Result<_, DescribeError>>()?;
        let result = function
            .result
            .as_ref()
            .map(|ty| self.ty(ty))
            .transpose()
            .map_err(|reason| unsupported(Some("result".to_owned()), reason))?;
        let docs = docs(&function.docs).or_else(|| {
            self.docs
                .function(interface.unwrap_or(""), &function.name)
                .map(str::to_owned)
        });
        let mut function = ExportedFunction {
            interface: interface.map(str::to_owned),
            name: function.name.clone(),
            docs,
            params,
            result,
        };
        // Descriptions in the names the model sends (`max-bytes` -> `max_bytes`).
        function.use_json_names_in_docs();
        Ok(function)
    }

    /// Convert a WIT type; `Err` says what is not supported.
    fn ty(&self, ty: &Type) -> Result<WitType, &'static str> {
        Ok(match ty {
            Type::Bool => WitType::Bool,
            Type::U8 => WitType::U8,
            Type::U16 => WitType::U16,
            Type::U32 => WitType::U32,
            Type::U64 => WitType::U64,
            Type::S8 => WitType::S8,
            Type::S16 => WitType::S16,
            Type::S32 => WitType::S32,
            Type::S64 => WitType::S64,
            Type::F32 => WitType::F32,
            Type::F64 => WitType::F64,
            Type::Char => WitType::Char,
            Type::String => WitType::String,
            Type::ErrorContext => return Err("error contexts are not supported"),
            Type::Id(id) => self.type_def(*id)?,
        })
    }

    fn type_def(&self, id: TypeId) -> Result<WitType, &'static str> {
        let def = &self.resolve.types[id];
        let extra = self.extra_docs(def);
        let member_docs = |name: &str, own: &Docs| {
            docs(own).or_else(|| extra.and_then(|e| e.members.get(name).cloned()))
        };
        Ok(match &def.kind {
            TypeDefKind::Type(aliased) => self.ty(aliased)?,
            TypeDefKind::Record(record) => WitType::Record(Record {
                name: self.type_name(def),
                docs: self.type_docs(def, extra),
                fields: record
                    .fields
                    .iter()
                    .map(|field| {
                        Ok(Field {
                            name: field.name.clone(),
                            docs: member_docs(&field.name, &field.docs),
                            ty: self.ty(&field.ty)?,
                        })
                    })
                    .collect::<Result<_, &'static str>>()?,
            }),
            TypeDefKind::Variant(variant) => WitType::Variant(Variant {
                name: self.type_name(def),
                docs: self.type_docs(def, extra),
                cases: variant
                    .cases
                    .iter()
                    .map(|case| {
                        Ok(Case {
                            name: case.name.clone(),
                            docs: member_docs(&case.name, &case.docs),
                            ty: case.ty.as_ref().map(|ty| self.ty(ty)).transpose()?,
                        })
                    })
                    .collect::<Result<_, &'static str>>()?,
            }),
            TypeDefKind::Enum(enumeration) => WitType::Enum(Enum {
                name: self.type_name(def),
                docs: self.type_docs(def, extra),
                cases: enumeration
                    .cases
                    .iter()
                    .map(|case| (case.name.clone(), member_docs(&case.name, &case.docs)))
                    .collect(),
            }),
            TypeDefKind::Flags(flags) => WitType::Flags(Flags {
                name: self.type_name(def),
                docs: self.type_docs(def, extra),
                flags: flags.flags.iter().map(|flag| flag.name.clone()).collect(),
            }),
            TypeDefKind::Tuple(tuple) => WitType::Tuple(
                tuple
                    .types
                    .iter()
                    .map(|ty| self.ty(ty))
                    .collect::<Result<_, _>>()?,
            ),
            TypeDefKind::Option(inner) => WitType::Option(Box::new(self.ty(inner)?)),
            TypeDefKind::Result(result) => WitType::Result {
                ok: self.boxed(result.ok.as_ref())?,
                err: self.boxed(result.err.as_ref())?,
            },
            TypeDefKind::List(element) => match self.ty(element)? {
                WitType::U8 => WitType::Bytes,
                element => WitType::List(Box::new(element)),
            },
            TypeDefKind::Resource | TypeDefKind::Handle(_) => {
                return Err("resource handles are not supported");
            }
            TypeDefKind::Future(_) => return Err("futures are not supported"),
            TypeDefKind::Stream(_) => return Err("streams are not supported"),
            TypeDefKind::Map(..) => return Err("maps are not supported"),
            TypeDefKind::FixedLengthList(..) => return Err("fixed-length lists are not supported"),
            TypeDefKind::Unknown => return Err("unresolved types are not supported"),
        })
    }

    fn boxed(&self, ty: Option<&Type>) -> Result<Option<Box<WitType>>, &'static str> {
        ty.map(|ty| self.ty(ty).map(Box::new)).transpose()
    }

    fn type_name(&self, def: &TypeDef) -> Option<TypeName> {
        Some(TypeName {
            interface: self.interface_of(def),
            name: def.name.clone()?,
        })
    }

    /// The full name of the interface that defines `def`, if it is a named interface.
    fn interface_of(&self, def: &TypeDef) -> Option<String> {
        match def.owner {
            TypeOwner::Interface(id) => self.resolve.id_of(id),
            TypeOwner::World(_) | TypeOwner::None => None,
        }
    }

    /// The docs of `def` and its members from the docs sections, if any.
    fn extra_docs(&self, def: &TypeDef) -> Option<&TypeDocs> {
        let name = def.name.as_deref()?;
        let scope = match def.owner {
            TypeOwner::Interface(id) => self.resolve.id_of(id)?,
            TypeOwner::World(_) => String::new(),
            TypeOwner::None => return None,
        };
        self.docs.type_docs(&scope, name)
    }

    fn type_docs(&self, def: &TypeDef, extra: Option<&TypeDocs>) -> Option<String> {
        docs(&def.docs).or_else(|| extra.and_then(|e| e.docs.clone()))
    }
}

/// Non-empty doc comment text.
/// Whether the export `name` is componentize-py's build-time hook: a plain-named interface
/// `exports` holding only `init(app-name, symbols, stub-wasi)`, which its pre-initializer calls
/// while building the component. Every Python plugin has it; it is not a tool.
/// Whether an export is warden's own `warden:mcp/{which}` (any version): prompts,
/// resources or completions, not tools.
fn is_warden_export(export_name: &str, which: &str) -> bool {
    export_name
        .strip_prefix("warden:mcp/")
        .and_then(|rest| rest.strip_prefix(which))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('@'))
}

fn is_componentize_py_init(name: &str, interface: &wit_parser::Interface) -> bool {
    name == "exports"
        && interface.functions.len() == 1
        && interface.functions.get("init").is_some_and(|init| {
            init.params.iter().map(|param| param.name.as_str()).eq([
                "app-name",
                "symbols",
                "stub-wasi",
            ])
        })
}

fn docs(docs: &Docs) -> Option<String> {
    docs.contents
        .as_deref()
        .map(str::trim_end)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}
