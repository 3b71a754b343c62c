//! Who is calling, how, and the ids that name one call.

use std::sync::Arc;

/// How a call reached warden.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// MCP over stdin/stdout: the local user who started warden.
    Stdio,
    /// MCP over Streamable HTTP: an authenticated client.
    Http,
    /// `warden call` on the command line.
    Cli,
}

impl Transport {
    /// The name in audit records: `stdio`, `http`, `cli`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
            Transport::Cli => "cli",
        }
    }
}

/// The identity a call runs as. The transport establishes it (stdio: the manifest's
/// `[server] principal` and `roles`; HTTP: authentication) and the gate trusts it.
///
/// Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The principal's name, as recorded in the audit log and used to key rate limits.
    pub name: Arc<str>,
    /// Its roles: a tool that names roles may be listed and called by a principal holding
    /// any one of them.
    pub roles: Arc<[String]>,
    /// How it connected.
    pub transport: Transport,
}

impl Principal {
    /// A principal named `name` with `roles`, connected through `transport`.
    pub fn new(name: impl Into<Arc<str>>, roles: Vec<String>, transport: Transport) -> Self {
        Self {
            name: name.into(),
            roles: roles.into(),
            transport,
        }
    }

    /// Whether this principal may use something open to `allowed`: `None` (no roles named)
    /// and a list containing `"*"` admit everyone; otherwise one of the principal's roles must
    /// be in the list.
    pub fn admitted_by(&self, allowed: Option<&[String]>) -> bool {
        match allowed {
            None => true,
            Some(allowed) => allowed
                .iter()
                .any(|role| role == "*" || self.roles.contains(role)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_admit_principals() {
        let reader = Principal::new("ann", vec!["reader".into()], Transport::Stdio);
        let nobody = Principal::new("bob", Vec::new(), Transport::Http);
        let roles = |r: &[&str]| r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(reader.admitted_by(None));
        assert!(nobody.admitted_by(None));
        assert!(reader.admitted_by(Some(&roles(&["writer", "reader"]))));
        assert!(!nobody.admitted_by(Some(&roles(&["reader"]))));
        assert!(nobody.admitted_by(Some(&roles(&["*"]))));
        assert!(!reader.admitted_by(Some(&[])));
    }
}
