//! Who is calling, how, and the ids that name one call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

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

/// A fresh id for one call: 32 lowercase hex digits, unique across restarts and replicas. The
/// agent sees it in error messages; the audit record carries it.
///
/// The first 16 digits are random, drawn once per process; the last 16 count calls from a
/// random start. So ids are unique without a system call per call.
pub fn new_request_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    static STATE: OnceLock<(u64, AtomicU64)> = OnceLock::new();
    let (process, counter) = STATE.get_or_init(|| {
        let (process, start) = uuid::Uuid::new_v4().as_u64_pair();
        (process, AtomicU64::new(start))
    });
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let mut id = String::with_capacity(32);
    for word in [*process, n] {
        for shift in (0..16).rev() {
            id.push(char::from(HEX[((word >> (shift * 4)) & 15) as usize]));
        }
    }
    id
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

    #[test]
    fn request_ids_are_unique_hex() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
