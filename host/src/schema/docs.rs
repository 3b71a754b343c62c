//! Doc comments for components that do not carry them.
//!
//! A component built the usual way (`wit-bindgen` + `wasm-component-ld`, or `wit-component`'s
//! `ComponentEncoder`) loses every WIT doc comment: the `component-type` section the bindings
//! embed has no docs, and the component binary format has no place for them. The standard
//! `package-docs` custom section is only read by `wit_component::decode` for the synthetic
//! `root:component` package of a decoded component, so it cannot carry the docs of an exported
//! interface such as `example:files/files` (see bytecodealliance/wasm-tools#2571).
//!
//! warden therefore reads docs from its own custom section, [`WIT_DOCS_SECTION`], at the top
//! level of the component: each such section holds one WIT package encoded in the standard
//! binary form (`wit_component::encode`, which keeps that package's docs), e.g. the plugin's
//! own package. [`embed_wit_docs`] appends one. Docs the decoded component carries itself take
//! precedence; these only fill gaps, matched by interface name (`ns:pkg/iface@version`) and item
//! name, or by function name for functions exported by the world itself.
//!
//! A component without that section may carry its WIT as text in a core module's
//! [`WIT_SOURCE_SECTION`], put there at compile time by the Rust SDK (`embed_wit_docs!`), so
//! that a plain `cargo build` gives descriptions; it is parsed with `warden:mcp` as its only
//! dependency.

use std::collections::HashMap;

use wasm_encoder::{CustomSection, Encode as _};
use wasmparser::{Parser, Payload};
use wit_component::DecodedWasm;
use wit_parser::{InterfaceId, PackageId, Resolve, TypeDefKind, TypeId, WorldItem, WorldKey};

use super::decode::DescribeError;

/// Name of the custom section from which warden reads the docs of a plugin's WIT package.
pub const WIT_DOCS_SECTION: &str = "warden-wit";

/// Name of a custom section of a component's core module holding the plugin's WIT as text,
/// which `warden_sdk::embed_wit_docs!` puts there at compile time. Read only when the
/// component has no [`WIT_DOCS_SECTION`].
pub const WIT_SOURCE_SECTION: &str = "warden-wit-source";

/// `warden:mcp`, which a [`WIT_SOURCE_SECTION`]'s package may use.
const MCP_WIT: &str = include_str!("../../../wit/mcp.wit");

/// Append `package` of `resolve` (binary-encoded with its doc comments) to `component` as a
/// [`WIT_DOCS_SECTION`] custom section, so that [`describe_component`] finds its docs.
///
/// Custom sections do not change what the component does; wasmtime ignores them. Call once
/// per package whose docs matter (usually only the plugin's own).
///
/// [`describe_component`]: super::describe_component
pub fn embed_wit_docs(
    component: &[u8],
    resolve: &Resolve,
    package: PackageId,
) -> Result<Vec<u8>, DescribeError> {
    if !Parser::is_component(component) {
        return Err(DescribeError::NotAComponent);
    }
    let encoded = wit_component::encode(resolve, package, false).map_err(DescribeError::Docs)?;
    let section = CustomSection {
        name: WIT_DOCS_SECTION.into(),
        data: encoded.into(),
    };
    let mut out = component.to_vec();
    out.push(0); // custom section id
    section.encode(&mut out);
    Ok(out)
}

/// Doc comments found in a component's [`WIT_DOCS_SECTION`] sections.
#[derive(Debug, Default)]
pub(crate) struct DocIndex {
    /// `(scope, function name)` -> docs; the scope is an interface's full name, the world-key
    /// name of an inline interface, or `""` for functions of the world itself.
    functions: HashMap<(String, String), String>,
    /// `(scope, type name)` -> docs of the type and its members; the scope is an interface's
    /// full name, or `""` for types defined in the world.
    types: HashMap<(String, String), TypeDocs>,
}

/// The docs of one named type and of its fields, cases or flags (by WIT name).
#[derive(Debug, Default)]
pub(crate) struct TypeDocs {
    pub(crate) docs: Option<String>,
    pub(crate) members: HashMap<String, String>,
}

impl DocIndex {
    /// Read every top-level [`WIT_DOCS_SECTION`] of `component`; without one, the
    /// [`WIT_SOURCE_SECTION`] of its core modules, if any resolves.
    pub(crate) fn from_component(component: &[u8]) -> Result<Self, DescribeError> {
        let mut index = Self::default();
        let mut depth = 0usize;
        let mut found = false;
        let mut sources = Vec::new();
        for payload in Parser::new(0).parse_all(component) {
            match payload.map_err(|e| DescribeError::Decode(e.into()))? {
                Payload::Version { .. } => depth += 1,
                Payload::End(_) => depth = depth.saturating_sub(1),
                Payload::CustomSection(section)
                    if depth > 1 && section.name() == WIT_SOURCE_SECTION =>
                {
                    sources.push(section.data().to_vec());
                }
                Payload::CustomSection(section)
                    if depth == 1 && section.name() == WIT_DOCS_SECTION =>
                {
                    found = true;
                    match wit_component::decode(section.data()).map_err(DescribeError::Docs)? {
                        DecodedWasm::WitPackage(resolve, package) => {
                            index.add_package(&resolve, package);
                        }
                        DecodedWasm::Component(..) => {
                            return Err(DescribeError::Docs(anyhow::anyhow!(
                                "the `{WIT_DOCS_SECTION}` section holds a component, not a WIT package"
                            )));
                        }
                    }
                }
                _ => {}
            }
        }
        if !found {
            for source in sources {
                index.add_source(&source);
            }
        }
        Ok(index)
    }

    /// Add the docs of a [`WIT_SOURCE_SECTION`]: WIT text resolved against `warden:mcp`. Text
    /// that does not resolve so (another dependency, not UTF-8) is skipped: the component is
    /// served with the docs it has.
    fn add_source(&mut self, source: &[u8]) {
        let Ok(text) = std::str::from_utf8(source) else {
            tracing::debug!("the `{WIT_SOURCE_SECTION}` section is not UTF-8; ignored");
            return;
        };
        let mut resolve = Resolve::default();
        let parsed = resolve
            .push_str("warden-mcp.wit", MCP_WIT)
            .and_then(|_| resolve.push_str("plugin.wit", text));
        match parsed {
            Ok(package) => self.add_package(&resolve, package),
            Err(error) => {
                tracing::debug!(
                    "the `{WIT_SOURCE_SECTION}` section does not resolve; ignored: {error:#}"
                );
            }
        }
    }

    /// The docs of function `name` in `scope`.
    pub(crate) fn function(&self, scope: &str, name: &str) -> Option<&str> {
        self.functions
            .get(&(scope.to_owned(), name.to_owned()))
            .map(String::as_str)
    }

    /// The docs of type `name` in `scope` and of its members.
    pub(crate) fn type_docs(&self, scope: &str, name: &str) -> Option<&TypeDocs> {
        self.types.get(&(scope.to_owned(), name.to_owned()))
    }

    fn add_package(&mut self, resolve: &Resolve, package: PackageId) {
        for &interface in resolve.packages[package].interfaces.values() {
            if let Some(scope) = resolve.id_of(interface) {
                self.add_interface(resolve, interface, &scope);
            }
        }
        for &world in resolve.packages[package].worlds.values() {
            let world = &resolve.worlds[world];
            for (key, item) in world.imports.iter().chain(&world.exports) {
                match (key, item) {
                    (WorldKey::Name(_), WorldItem::Function(function)) => {
                        if let Some(docs) = text(&function.docs.contents) {
                            self.functions
                                .insert((String::new(), function.name.clone()), docs);
                        }
                    }
                    (WorldKey::Name(name), WorldItem::Interface { id, .. })
                        if resolve.interfaces[*id].name.is_none() =>
                    {
                        self.add_interface(resolve, *id, name);
                    }
                    (WorldKey::Name(name), WorldItem::Type { id, .. }) => {
                        self.add_type(resolve, "", name, *id);
                    }
                    _ => {}
                }
            }
        }
    }

    fn add_interface(&mut self, resolve: &Resolve, interface: InterfaceId, scope: &str) {
        let interface = &resolve.interfaces[interface];
        for (name, function) in &interface.functions {
            if let Some(docs) = text(&function.docs.contents) {
                self.functions
                    .insert((scope.to_owned(), name.clone()), docs);
            }
        }
        for (name, &ty) in &interface.types {
            self.add_type(resolve, scope, name, ty);
        }
    }

    fn add_type(&mut self, resolve: &Resolve, scope: &str, name: &str, ty: TypeId) {
        let def = &resolve.types[ty];
        let members: Vec<(&String, &Option<String>)> = match &def.kind {
            TypeDefKind::Record(record) => record
                .fields
                .iter()
                .map(|f| (&f.name, &f.docs.contents))
                .collect(),
            TypeDefKind::Variant(variant) => variant
                .cases
                .iter()
                .map(|c| (&c.name, &c.docs.contents))
                .collect(),
            TypeDefKind::Enum(enumeration) => enumeration
                .cases
                .iter()
                .map(|c| (&c.name, &c.docs.contents))
                .collect(),
            TypeDefKind::Flags(flags) => flags
                .flags
                .iter()
                .map(|f| (&f.name, &f.docs.contents))
                .collect(),
            _ => Vec::new(),
        };
        let docs = TypeDocs {
            docs: text(&def.docs.contents),
            members: members
                .into_iter()
                .filter_map(|(name, docs)| Some((name.clone(), text(docs)?)))
                .collect(),
        };
        if docs.docs.is_some() || !docs.members.is_empty() {
            self.types.insert((scope.to_owned(), name.to_owned()), docs);
        }
    }
}

/// Non-empty doc comment text, without trailing whitespace.
fn text(docs: &Option<String>) -> Option<String> {
    docs.as_deref()
        .map(str::trim_end)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}
