//! The WIT types warden can carry between JSON and a component, and the description of a
//! component's exported functions.
//!
//! These types are a closed, self-contained copy of what matters in a [`wit_parser::Resolve`]:
//! type aliases are resolved, `list<u8>` is singled out as [`WitType::Bytes`], and anything
//! warden cannot express in JSON (resources, futures, streams, error contexts, maps, fixed-length
//! lists) is rejected when the component is described, so a [`WitType`] always maps to JSON.

/// A WIT value type that warden can convert to and from JSON.
///
/// WIT types are never recursive, so a `WitType` is a finite tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitType {
    /// `bool`.
    Bool,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `s8`.
    S8,
    /// `s16`.
    S16,
    /// `s32`.
    S32,
    /// `s64`.
    S64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `char`: one Unicode scalar value.
    Char,
    /// `string`.
    String,
    /// `list<u8>`, carried in JSON as a base64 string.
    Bytes,
    /// `list<T>` for any `T` other than `u8`.
    List(Box<WitType>),
    /// `option<T>`.
    Option(Box<WitType>),
    /// `result<T, E>`; `None` on either side for a result without that payload.
    Result {
        /// The `ok` payload type, if any.
        ok: Option<Box<WitType>>,
        /// The `err` payload type, if any.
        err: Option<Box<WitType>>,
    },
    /// `tuple<...>`.
    Tuple(Vec<WitType>),
    /// `record`.
    Record(Record),
    /// `variant`.
    Variant(Variant),
    /// `enum`.
    Enum(Enum),
    /// `flags`.
    Flags(Flags),
}

impl WitType {
    /// Whether this is the well-known `tool-result` record of the `warden:mcp/types` interface
    /// (any version), whose value the host passes to the agent as MCP content blocks.
    ///
    /// Only the type's identity is checked (its name and interface), not its fields.
    pub fn is_tool_result(&self) -> bool {
        let WitType::Record(Record {
            name: Some(name), ..
        }) = self
        else {
            return false;
        };
        name.name == "tool-result"
            && name
                .interface
                .as_deref()
                .is_some_and(|interface| unversioned(interface) == "warden:mcp/types")
    }
}

/// `ns:pkg/iface@1.2.3` -> `ns:pkg/iface`.
fn unversioned(interface: &str) -> &str {
    interface
        .split_once('@')
        .map_or(interface, |(name, _)| name)
}

/// The name of a named WIT type (record, variant, enum or flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeName {
    /// The interface that defines the type, e.g. `warden:mcp/types@0.1.0`; `None` for a type
    /// defined in a world or in an unnamed (inline) interface.
    pub interface: Option<String>,
    /// The type's WIT name, e.g. `tool-result`.
    pub name: String,
}

/// A WIT `record`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's name, when known.
    pub name: Option<TypeName>,
    /// The record's doc comment.
    pub docs: Option<String>,
    /// The fields, in WIT order.
    pub fields: Vec<Field>,
}

/// One field of a [`Record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The WIT (kebab-case) name; JSON uses [`json_name`](crate::schema::json_name) of it.
    pub name: String,
    /// The field's doc comment.
    pub docs: Option<String>,
    /// The field's type.
    pub ty: WitType,
}

/// A WIT `variant`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The variant's name, when known.
    pub name: Option<TypeName>,
    /// The variant's doc comment.
    pub docs: Option<String>,
    /// The cases, in WIT order.
    pub cases: Vec<Case>,
}

/// One case of a [`Variant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The WIT (kebab-case) name.
    pub name: String,
    /// The case's doc comment.
    pub docs: Option<String>,
    /// The payload type; `None` for a case without payload.
    pub ty: Option<WitType>,
}

/// A WIT `enum`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enum {
    /// The enum's name, when known.
    pub name: Option<TypeName>,
    /// The enum's doc comment.
    pub docs: Option<String>,
    /// The cases in WIT order: WIT (kebab-case) name and doc comment.
    pub cases: Vec<(String, Option<String>)>,
}

/// A WIT `flags`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    /// The flags type's name, when known.
    pub name: Option<TypeName>,
    /// The flags type's doc comment.
    pub docs: Option<String>,
    /// The flag names (WIT kebab-case), in WIT order.
    pub flags: Vec<String>,
}

/// One parameter of an [`ExportedFunction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The WIT (kebab-case) name; the JSON argument is [`json_name`](crate::schema::json_name)
    /// of it.
    pub name: String,
    /// The parameter's type.
    pub ty: WitType,
}

/// A function a component exports, which warden serves as one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedFunction {
    /// The export name of the interface that holds the function, as in the component (e.g.
    /// `example:files/files@0.1.0`, or a plain name for an inline interface); `None` for a
    /// function exported directly by the world.
    pub interface: Option<String>,
    /// The function's WIT name, e.g. `read-text`.
    pub name: String,
    /// The function's doc comment, when the component carries it (see
    /// [`describe_component`](crate::schema::describe_component)).
    pub docs: Option<String>,
    /// The parameters, in WIT order.
    pub params: Vec<Param>,
    /// The result type; `None` for a function without result.
    pub result: Option<WitType>,
}

/// What warden needs to know about a component to serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentDescription {
    /// Every exported function, in the order the component exports them (a component built by
    /// `wit-component` exports the world's own functions first, then each interface); the
    /// functions of one interface in WIT order.
    pub functions: Vec<ExportedFunction>,
    /// Everything the component imports, in the component's order: interfaces by their full
    /// name (e.g. `wasi:filesystem/types@0.2.6`, `warden:mcp/host@0.1.0`), and inline
    /// interfaces and bare functions by their plain name.
    pub imports: Vec<String>,
    /// The two functions of `warden:mcp/prompts`, when the component exports it: its
    /// prompts. They are not in `functions`: they are not tools.
    pub prompts: Option<PromptExports>,
    /// The three functions of `warden:mcp/resources`, when the component exports it: its
    /// resources. They are not in `functions` either.
    pub resources: Option<ResourceExports>,
    /// `warden:mcp/completions.complete`, when the component exports it: completions of its
    /// prompts' arguments and its templates' variables. Not a tool.
    pub completions: Option<ExportedFunction>,
}

/// The functions of an exported `warden:mcp/prompts` interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptExports {
    /// `list: func() -> list<prompt>`.
    pub list: ExportedFunction,
    /// `get: func(name, arguments) -> result<prompt-result, string>`.
    pub get: ExportedFunction,
}

/// The functions of an exported `warden:mcp/resources` interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceExports {
    /// `list: func() -> list<resource>`.
    pub list: ExportedFunction,
    /// `templates: func() -> list<resource-template>`.
    pub templates: ExportedFunction,
    /// `read: func(uri) -> result<list<embedded-resource>, read-error>`.
    pub read: ExportedFunction,
}
