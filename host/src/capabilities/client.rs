//! Asking the client: `sampling = true` (the client's model completes a conversation,
//! `warden:mcp/host.sample`) and `roots = true` (the client's roots, `warden:mcp/host.roots`).
//!
//! Both reach the client through the call's events, as `elicit` does, so there is nothing to
//! open or prepare here: this module only describes the grants to `check`, `status` and
//! `inspect`. The host functions check [`Plugin::sampling`] and [`Plugin::roots`] themselves.

use serde_json::{Value, json};

use super::{
    CallBuilder, CallView, Capability, CapabilityError, Effects, GrantWarning, Imports, Link,
};
use crate::manifest::Plugin;

/// The interface whose `sample` and `roots` the grants let a plugin call.
const HOST: &[&str] = &["warden:mcp/host"];

/// `sampling = true` and `roots = true`: what a plugin may ask of the client.
pub struct Client;

impl Capability for Client {
    fn name(&self) -> &'static str {
        "client"
    }

    fn offers(&self, _: Imports<'_>) -> Vec<&'static str> {
        vec![]
    }

    fn summary(&self, plugin: &Plugin) -> Vec<String> {
        let mut lines = Vec::new();
        if plugin.sampling {
            lines.push("grant sampling  the client's model (sampling/createMessage)".to_owned());
        }
        if plugin.roots {
            lines.push("grant roots     the client's roots (roots/list)".to_owned());
        }
        lines
    }

    fn report(&self, plugin: &Plugin) -> Vec<(&'static str, Value)> {
        vec![
            ("sampling", json!(plugin.sampling)),
            ("roots", json!(plugin.roots)),
        ]
    }

    fn warnings(&self, plugin: &Plugin, imports: Imports<'_>) -> Vec<GrantWarning> {
        if imports.any(HOST) {
            return vec![];
        }
        let mut warnings = Vec::new();
        if plugin.sampling {
            warnings.push(GrantWarning::new(
                "unused-grant:sampling",
                "is granted sampling but imports no warden:mcp/host: it cannot ask the client's model",
            ));
        }
        if plugin.roots {
            warnings.push(GrantWarning::new(
                "unused-grant:roots",
                "is granted roots but imports no warden:mcp/host: it cannot read the client's roots",
            ));
        }
        warnings
    }

    /// The client's model and roots are the client's: nothing outside the host changes.
    fn effects(&self, _: &Plugin, _: Imports<'_>) -> Effects {
        Effects::default()
    }

    fn prepare(&self, _: &mut CallBuilder<'_>) -> Result<(), CapabilityError> {
        Ok(())
    }
}

/// Served by `warden:mcp/host`, which the runtime links for every plugin.
impl<T: CallView> Link<T> for Client {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_shows_the_grants() {
        let dir = tempfile::tempdir().expect("tempdir");
        let component = dir.path().join("c.wasm");
        std::fs::write(&component, b"\0asm").expect("write");
        let text = format!(
            "[plugins.p]\ncomponent = {:?}\n",
            component.display().to_string()
        );
        let mut plugin = crate::manifest::Manifest::parse(&text, &dir.path().join("warden.toml"))
            .expect("manifest")
            .plugins
            .remove(0);
        assert!(Client.summary(&plugin).is_empty());
        assert_eq!(
            Client.report(&plugin),
            [("sampling", json!(false)), ("roots", json!(false))]
        );
        plugin.sampling = true;
        plugin.roots = true;
        let host = ["warden:mcp/host@0.1.0".to_owned()];
        assert!(Client.warnings(&plugin, Imports(&host)).is_empty());
        let codes: Vec<_> = Client
            .warnings(&plugin, Imports(&[]))
            .into_iter()
            .map(|w| w.code)
            .collect();
        assert_eq!(codes, ["unused-grant:sampling", "unused-grant:roots"]);
        assert_eq!(
            Client.summary(&plugin),
            [
                "grant sampling  the client's model (sampling/createMessage)",
                "grant roots     the client's roots (roots/list)"
            ]
        );
    }
}
