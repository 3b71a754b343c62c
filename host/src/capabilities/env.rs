//! Environment grants: only the variables the manifest declares, never the host's own.

use serde_json::{Value, json};

use super::{
    CallBuilder, CallView, Capability, CapabilityError, Effects, GrantWarning, Imports, Link,
};
use crate::manifest::Plugin;

/// The interface through which a component reads its environment.
pub(super) const ENVIRONMENT: &[&str] = &["wasi:cli/environment"];

/// `env = { NAME = "value" }`: declared environment variables.
pub struct Env;

impl Capability for Env {
    fn name(&self) -> &'static str {
        "env"
    }

    fn offers(&self, imports: Imports<'_>) -> Vec<&'static str> {
        match imports.any(ENVIRONMENT) {
            true => vec!["env: environment variables"],
            false => vec![],
        }
    }

    fn summary(&self, plugin: &Plugin) -> Vec<String> {
        plugin
            .env
            .iter()
            .map(|(name, _)| format!("grant env   {name}"))
            .collect()
    }

    fn report(&self, plugin: &Plugin) -> Vec<(&'static str, Value)> {
        let names: Vec<&str> = plugin.env.iter().map(|(name, _)| name.as_str()).collect();
        vec![("env", json!(names))]
    }

    fn warnings(&self, plugin: &Plugin, imports: Imports<'_>) -> Vec<GrantWarning> {
        match !plugin.env.is_empty() && !imports.any(ENVIRONMENT) {
            true => vec![GrantWarning::new(
                "unused-grant:env",
                "is granted environment variables (env) but imports no wasi:cli/environment: it cannot read them",
            )],
            false => vec![],
        }
    }

    fn effects(&self, _: &Plugin, _: Imports<'_>) -> Effects {
        Effects::default()
    }

    /// Set the declared variables; nothing is inherited from the host process.
    fn prepare(&self, call: &mut CallBuilder<'_>) -> Result<(), CapabilityError> {
        for (name, value) in &call.plugin.env {
            call.wasi.env(name, value);
        }
        Ok(())
    }
}

/// Served by WASI's own `wasi:cli/environment`.
impl<T: CallView> Link<T> for Env {}
