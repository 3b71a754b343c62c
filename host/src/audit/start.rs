//! The start record: what a server loaded, written to the chain at every start and reload.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::record::{MAX_RECORDED_ERROR, MAX_RECORDED_NAME, bounded};

/// The `kind` of a start record. Call records have no `kind`.
pub const START: &str = "start";

/// The plugins a server (re)loaded, with where each came from and what it is, as the host
/// hands it to an [`AuditSink`](super::AuditSink). One is appended to the same chain as the
/// call records whenever a process loads plugins to run calls (`warden serve`, each reload,
/// `warden call`), so every call record follows the start record of the code that ran it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRecord<'a> {
    /// Always [`START`]: what tells this record from a call record.
    pub kind: Cow<'a, str>,
    /// When the plugins were loaded: RFC 3339, UTC, milliseconds.
    pub ts: String,
    /// The version of warden that loaded them.
    pub warden: Cow<'a, str>,
    /// Every plugin loaded, in manifest order.
    pub plugins: Vec<StartPlugin<'a>>,
    /// The replica that loaded them (`[audit] replica`); the sink fills it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<Cow<'a, str>>,
    /// The checkpoint policy the writer signs under, when it signs; the sink fills it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<super::Policy>,
}

/// One plugin of a [`StartRecord`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartPlugin<'a> {
    /// The plugin's name.
    pub plugin: Cow<'a, str>,
    /// The component as the manifest names it: a path or an `oci://` reference.
    pub source: Cow<'a, str>,
    /// The lowercase hex SHA-256 of the component loaded.
    pub sha256: Cow<'a, str>,
    /// For an `oci://` component, the manifest digest (`sha256:...`) the reference resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Cow<'a, str>>,
    /// Who signed the component, when its signature was checked; absent when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<Cow<'a, str>>,
    /// The plugin against `warden.lock`: `matches`, `differs`, `no-lock` or `not-served`.
    pub lock: Cow<'a, str>,
}

impl<'a> StartRecord<'a> {
    /// A start record made now, by warden `warden`, of `plugins`.
    pub fn new(warden: &'a str, plugins: Vec<StartPlugin<'a>>) -> StartRecord<'a> {
        StartRecord {
            kind: Cow::Borrowed(START),
            ts: super::rfc3339(std::time::SystemTime::now()),
            warden: bounded(warden, MAX_RECORDED_NAME),
            plugins,
            replica: None,
            checkpoint: None,
        }
    }
}

impl<'a> StartPlugin<'a> {
    /// One plugin's entry, each text bounded as call records bound theirs: names, digests
    /// and the lock state to [`MAX_RECORDED_NAME`] bytes, the source (a path or reference)
    /// to [`MAX_RECORDED_ERROR`].
    pub fn new(
        plugin: &'a str,
        source: &'a str,
        sha256: &'a str,
        resolved: Option<&'a str>,
        signer: Option<&'a str>,
        lock: &'a str,
    ) -> StartPlugin<'a> {
        let name = |text| bounded(text, MAX_RECORDED_NAME);
        StartPlugin {
            plugin: name(plugin),
            source: bounded(source, MAX_RECORDED_ERROR),
            sha256: name(sha256),
            resolved: resolved.map(name),
            signer: signer.map(name),
            lock: name(lock),
        }
    }
}
