//! `warden embed-docs`: a plugin's WIT doc comments, into its component.

use std::path::Path;

use wasmparser::BinaryReader;
use wit_parser::{PackageId, Resolve};

use super::{AuthoringError, MCP_WIT};
use crate::schema::{WIT_DOCS_SECTION, embed_wit_docs};

/// `component` with the WIT package in `wit_dir` (and its doc comments) embedded as its only
/// [`WIT_DOCS_SECTION`] section.
///
/// `wit_dir` is the plugin's own package, as given to its toolchain. Its dependencies come from
/// its `deps/` folder; without one, `warden:mcp@0.1.0` ([`MCP_WIT`]) is loaded first, so a
/// plugin that only includes `warden:mcp/tool` needs no copy of it. Any earlier docs section is
/// replaced, so running this again after changing the docs is safe.
///
/// Only a custom section changes: what the component does is untouched.
pub fn embed_docs(component: &[u8], wit_dir: &Path) -> Result<Vec<u8>, AuthoringError> {
    let (resolve, package) = load_wit(wit_dir)?;
    let stripped = remove_custom_sections(component, WIT_DOCS_SECTION)?;
    Ok(embed_wit_docs(&stripped, &resolve, package)?)
}

/// The WIT package in `wit_dir`, resolved with its `deps/` folder, or without one with
/// `warden:mcp@0.1.0` ([`MCP_WIT`]) loaded first.
pub(super) fn load_wit(wit_dir: &Path) -> Result<(Resolve, PackageId), AuthoringError> {
    let wit_error = |source| AuthoringError::Wit {
        path: wit_dir.to_path_buf(),
        source,
    };
    let mut resolve = Resolve::default();
    if !wit_dir.join("deps").is_dir() {
        resolve
            .push_str("warden-mcp.wit", MCP_WIT)
            .map_err(wit_error)?;
    }
    let (package, _) = resolve.push_dir(wit_dir).map_err(wit_error)?;
    Ok((resolve, package))
}

/// `wasm` without its top-level custom sections called `name`; every other byte is kept.
pub fn remove_custom_sections(wasm: &[u8], name: &str) -> Result<Vec<u8>, AuthoringError> {
    let mut reader = BinaryReader::new(wasm, 0);
    // Magic number and version (or layer) of a module or component.
    let header = reader.read_bytes(8)?;
    let mut out = header.to_vec();
    while !reader.eof() {
        let start = reader.current_position();
        let id = reader.read_u8()?;
        let size = reader.read_var_u32()? as usize;
        let body = reader.read_bytes(size)?;
        if id == 0 {
            let mut section = BinaryReader::new(body, 0);
            let len = section.read_var_u32()? as usize;
            if section.read_bytes(len)? == name.as_bytes() {
                continue;
            }
        }
        out.extend_from_slice(&wasm[start..reader.current_position()]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use wit_component::{ComponentEncoder, StringEncoding};
    use wit_parser::{LiftLowerAbi, ManglingAndAbi};

    use super::*;
    use crate::schema::describe_component;

    const WORLD: &str = r#"
package example:hello@0.1.0;

interface greet {
    /// Say hello.
    hello: func(name: string) -> string;
}

world plugin {
    include warden:mcp/tool@0.1.0;
    export greet;
}
"#;

    /// A component of `world` in `dir`, built without any guest code.
    fn component(dir: &Path) -> Vec<u8> {
        let mut resolve = Resolve::default();
        resolve.push_str("mcp.wit", MCP_WIT).expect("mcp");
        let (package, _) = resolve.push_dir(dir).expect("push");
        let world = resolve
            .select_world(&[package], Some("plugin"))
            .expect("world");
        let mangling = ManglingAndAbi::Legacy(LiftLowerAbi::Sync);
        let mut module = wit_component::dummy_module(&resolve, world, mangling);
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            StringEncoding::UTF8,
            false,
        )
        .expect("metadata");
        ComponentEncoder::default()
            .module(&module)
            .expect("module")
            .encode()
            .expect("encode")
    }

    fn docs(component: &[u8]) -> Option<String> {
        describe_component(component)
            .expect("describe")
            .functions
            .into_iter()
            .find(|f| f.name == "hello")
            .and_then(|f| f.docs)
    }

    #[test]
    fn docs_are_embedded_once_and_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("world.wit"), WORLD).expect("write");
        let bare = component(dir.path());
        assert_eq!(docs(&bare), None);

        let once = embed_docs(&bare, dir.path()).expect("embed");
        assert_eq!(docs(&once).as_deref(), Some("Say hello."));

        std::fs::write(
            dir.path().join("world.wit"),
            WORLD.replace("Say hello.", "Say hello, again."),
        )
        .expect("write");
        let twice = embed_docs(&once, dir.path()).expect("embed again");
        assert_eq!(docs(&twice).as_deref(), Some("Say hello, again."));
        // The old section is gone: the sizes differ only by the changed text.
        assert_eq!(twice.len(), once.len() + ", again".len());
        assert_eq!(
            remove_custom_sections(&twice, WIT_DOCS_SECTION).expect("strip"),
            bare
        );
    }

    #[test]
    fn bad_wit_and_non_components_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("world.wit"), WORLD).expect("write");
        let bare = component(dir.path());
        std::fs::write(dir.path().join("world.wit"), "package broken").expect("write");
        let error = embed_docs(&bare, dir.path()).expect_err("bad WIT");
        assert!(matches!(error, AuthoringError::Wit { .. }), "{error}");

        let module = b"\0asm\x01\0\0\0".to_vec();
        std::fs::write(dir.path().join("world.wit"), WORLD).expect("write");
        let error = embed_docs(&module, dir.path()).expect_err("a module");
        assert!(matches!(error, AuthoringError::Component(_)), "{error}");
        assert!(matches!(
            remove_custom_sections(b"\0asm", WIT_DOCS_SECTION),
            Err(AuthoringError::Malformed(_))
        ));
    }
}
