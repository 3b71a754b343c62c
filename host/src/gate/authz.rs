//! Authorization: which principals may list and call a tool, from the manifest's `roles`.
//!
//! A tool's roles are those of its `[plugins.NAME.tools.FUNCTION]` table, else of the first
//! matching glob table, else the plugin's `roles`; a tool with none is open to every principal.
//! The rule is resolved once per tool when the gate is built.

use crate::catalog::ToolEntry;

use super::Principal;

/// Who may use one tool.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// The roles admitted; `None`: every principal.
    roles: Option<Vec<String>>,
}

impl Access {
    /// The rule for `entry`, from its plugin's manifest entry.
    pub fn for_tool(entry: &ToolEntry) -> Self {
        let function = &entry.function().name;
        Self {
            roles: entry
                .plugin
                .config
                .tool_roles(function)
                .map(<[String]>::to_vec),
        }
    }

    /// The rule for a plugin's prompts: the plugin's `roles`.
    pub fn for_plugin(config: &crate::manifest::Plugin) -> Self {
        Self {
            roles: config.policy.roles.clone(),
        }
    }

    /// Whether `principal` may list and call the tool.
    pub fn allows(&self, principal: &Principal) -> bool {
        principal.admitted_by(self.roles.as_deref())
    }

    /// The roles admitted, for messages; `None`: every principal.
    pub fn roles(&self) -> Option<&[String]> {
        self.roles.as_deref()
    }
}
