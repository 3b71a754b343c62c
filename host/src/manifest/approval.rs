//! Who must confirm a call: a plugin's or a tool's `approval` and `data` keys, and the global
//! `[approval]` section (how long a question waits, how long an approval lasts, the key that
//! seals stateless approvals, the flow rule after private data, the operator channel).
//!
//! ```toml
//! [approval]
//! key = "${WARDEN_APPROVAL_KEY}"   # shared by replicas behind one load balancer
//! timeout = "2m"                   # how long a call waits for a human's answer
//! expiry = "5m"                    # how long a stateless approval stays valid
//! after_private = "ask"            # "ask" | "deny" | "allow"
//! window = "15m"                   # how long a principal counts as holding private data
//! operators = ["approver"]         # roles that may answer through `warden approvals`
//!
//! [plugins.files]
//! approval = "ask"                 # every tool of the plugin asks...
//! data = "private"                 # ...and its output is private
//! [plugins.files.tools.read-text]
//! approval = "never"               # a tool's own key wins
//! ```

use std::fmt;
use std::time::Duration;

use super::error::Location;
use super::network::{SecretValue, duration};
use super::reader::{Table, Value};

/// Whether a human confirms each call of a tool (`approval`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Approval {
    /// `"never"` (the default): the gate decides alone.
    #[default]
    Never,
    /// `"ask"`: the client's user (or an operator) confirms each call before the plugin runs.
    Ask,
}

impl Approval {
    /// The manifest's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Never => "never",
            Approval::Ask => "ask",
        }
    }
}

impl fmt::Display for Approval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a tool's output is (`data`): `"private"` marks the principal that receives it, so its
/// later calls to tools that reach the open world follow `[approval] after_private`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DataLabel {
    /// `"public"` (the default).
    #[default]
    Public,
    /// `"private"`.
    Private,
}

impl DataLabel {
    /// The manifest's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DataLabel::Public => "public",
            DataLabel::Private => "private",
        }
    }
}

/// What happens to a call that could send private data to the open world
/// (`[approval] after_private`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlowRule {
    /// `"ask"` (the default): a human confirms it, told why.
    #[default]
    Ask,
    /// `"deny"`: refused.
    Deny,
    /// `"allow"`: no rule (`warden check` warns when private data and the open world meet).
    Allow,
}

impl FlowRule {
    /// The manifest's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowRule::Ask => "ask",
            FlowRule::Deny => "deny",
            FlowRule::Allow => "allow",
        }
    }
}

/// `[approval]`: how the gate asks, for every plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalSettings {
    /// The key that seals the request state of stateless approvals (`key`, at least
    /// [`ApprovalSettings::MIN_KEY_LEN`] characters). `None`: a random key per process, so a
    /// state is only good on the replica that issued it.
    pub key: Option<SecretValue>,
    /// How long a call waits for an answer (`timeout`): the client's user in a session, an
    /// operator otherwise. Then the call is refused (`approval-timeout`).
    pub timeout: Duration,
    /// How long an input-required state, and so a stateless approval, stays valid (`expiry`).
    pub expiry: Duration,
    /// The flow rule (`after_private`).
    pub after_private: FlowRule,
    /// How long a principal counts as holding private data after a private tool's output
    /// (`window`).
    pub window: Duration,
    /// Roles that may list and answer pending approvals through the operator channel
    /// (`operators`). Empty (the default): no channel; a client that cannot be asked gets
    /// `approval-unavailable`.
    pub operators: Vec<String>,
    /// The `[approval]` table, when there is one.
    pub location: Option<Location>,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        Self {
            key: None,
            timeout: ApprovalSettings::DEFAULT_TIMEOUT,
            expiry: ApprovalSettings::DEFAULT_EXPIRY,
            after_private: FlowRule::default(),
            window: ApprovalSettings::DEFAULT_WINDOW,
            operators: Vec::new(),
            location: None,
        }
    }
}

impl ApprovalSettings {
    /// The shortest `key`, in characters.
    pub const MIN_KEY_LEN: usize = 32;
    /// Default `timeout`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
    /// Default `expiry`.
    pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(300);
    /// Default `window`.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(15 * 60);
    /// The longest `timeout` and `expiry`.
    pub const MAX_WAIT: Duration = Duration::from_secs(3600);
    /// The longest `window`.
    pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
}

/// `approval = "never" | "ask"`.
pub(super) fn approval(v: &Value<'_, '_>) -> Option<Approval> {
    let s = v.string()?;
    match s.as_str() {
        "never" => Some(Approval::Never),
        "ask" => Some(Approval::Ask),
        _ => {
            v.error(format!(
                "invalid approval {s:?}: expected \"never\" or \"ask\""
            ));
            None
        }
    }
}

/// `data = "public" | "private"`.
pub(super) fn data(v: &Value<'_, '_>) -> Option<DataLabel> {
    let s = v.string()?;
    match s.as_str() {
        "public" => Some(DataLabel::Public),
        "private" => Some(DataLabel::Private),
        _ => {
            v.error(format!(
                "invalid data {s:?}: expected \"private\" or \"public\""
            ));
            None
        }
    }
}

/// The `[approval]` table.
pub(super) fn settings(table: &Table<'_, '_>, location: Location) -> ApprovalSettings {
    let defaults = ApprovalSettings::default();
    let key = table.get("key").and_then(|v| {
        let key = v.string()?;
        if key.chars().count() < ApprovalSettings::MIN_KEY_LEN {
            v.error(format!(
                "the approval key must be at least {} characters (it seals approvals); make one \
                 with `openssl rand -hex 32` and pass it as ${{VAR}}",
                ApprovalSettings::MIN_KEY_LEN
            ));
            return None;
        }
        Some(SecretValue::new(key))
    });
    let wait = |key: &'static str, default: Duration| {
        table
            .get(key)
            .and_then(|v| duration(&v, key, ApprovalSettings::MAX_WAIT))
            .unwrap_or(default)
    };
    let timeout = wait("timeout", defaults.timeout);
    let expiry = wait("expiry", defaults.expiry);
    let after_private = table
        .get("after_private")
        .and_then(|v| {
            let s = v.string()?;
            match s.as_str() {
                "ask" => Some(FlowRule::Ask),
                "deny" => Some(FlowRule::Deny),
                "allow" => Some(FlowRule::Allow),
                _ => {
                    v.error(format!(
                        "invalid after_private {s:?}: expected \"ask\", \"deny\" or \"allow\""
                    ));
                    None
                }
            }
        })
        .unwrap_or(defaults.after_private);
    let window = table
        .get("window")
        .and_then(|v| duration(&v, "window", ApprovalSettings::MAX_WINDOW))
        .unwrap_or(defaults.window);
    let operators = table
        .get("operators")
        .and_then(|v| {
            let roles = super::policy::roles(&v)?;
            if roles.iter().any(|role| role == "*") {
                v.error(
                    "operators must name roles: \"*\" would let every principal answer \
                     approvals, its own calls' included",
                );
                return None;
            }
            Some(roles)
        })
        .unwrap_or_default();
    table.finish();
    ApprovalSettings {
        key,
        timeout,
        expiry,
        after_private,
        window,
        operators,
        location: Some(location),
    }
}
