//! Where each plugin's code came from and what it is: computed once per load, and shown by
//! the start-up log, the audit log's start record, `warden check` and `warden inspect`.

use serde::Serialize;

use crate::audit::{StartPlugin, StartRecord};
use crate::catalog::Catalog;
use crate::lock::LockCheck;
use crate::manifest::LockMode;

/// A plugin against `warden.lock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockState {
    /// The lock is in force and the plugin's tools match it.
    Matches,
    /// The lock is in force and the plugin differs from it (served under `warn`).
    Differs,
    /// No lock is in force (no `warden.lock`, or `[server] lock = "off"`).
    NoLock,
    /// Loaded but not served: the description review refused it.
    NotServed,
}

impl LockState {
    /// The stable name, for JSON and the audit log: `matches`, `differs`, `no-lock`,
    /// `not-served`.
    pub fn as_str(self) -> &'static str {
        match self {
            LockState::Matches => "matches",
            LockState::Differs => "differs",
            LockState::NoLock => "no-lock",
            LockState::NotServed => "not-served",
        }
    }

    /// As a phrase, for the log: `matches the lock`, `differs from the lock`, ...
    pub fn phrase(self) -> &'static str {
        match self {
            LockState::Matches => "matches the lock",
            LockState::Differs => "differs from the lock",
            LockState::NoLock => "no lock",
            LockState::NotServed => "not served",
        }
    }
}

impl std::fmt::Display for LockState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One plugin's provenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// The plugin's name.
    pub plugin: String,
    /// The component as the manifest names it: a path or an `oci://` reference.
    pub source: String,
    /// The lowercase hex SHA-256 of the component loaded.
    pub sha256: String,
    /// For an `oci://` component, the manifest digest the reference resolved to.
    pub resolved: Option<String>,
    /// Who signed the component, when its signature was checked; `None` when it is unsigned
    /// or was not checked.
    pub signer: Option<String>,
    /// The plugin against `warden.lock`.
    pub lock: LockState,
}

impl Provenance {
    /// The provenance of every plugin of `catalog` (lock-refused ones are not in it), in
    /// manifest order, with `lock`'s verdict on each.
    pub fn of(catalog: &Catalog, lock: &LockCheck) -> Vec<Provenance> {
        catalog
            .plugins()
            .iter()
            .map(|plugin| {
                let config = &plugin.config;
                let name = &config.name;
                let state = if catalog.refused().contains(name) {
                    LockState::NotServed
                } else {
                    match lock.mode {
                        LockMode::Off => LockState::NoLock,
                        _ if lock.drift.iter().any(|d| d.plugin == *name) => LockState::Differs,
                        _ => LockState::Matches,
                    }
                };
                Provenance {
                    plugin: name.clone(),
                    source: config.component_source.clone(),
                    sha256: hex::encode(plugin.digest),
                    resolved: config.oci_resolved.clone(),
                    signer: config.signer.clone(),
                    lock: state,
                }
            })
            .collect()
    }

    /// `signer`, or `none` when unsigned or not checked.
    pub fn signer_or_none(&self) -> &str {
        self.signer.as_deref().unwrap_or("none")
    }

    /// This plugin's entry in an audit start record.
    pub fn start_plugin(&self) -> StartPlugin<'_> {
        StartPlugin::new(
            &self.plugin,
            &self.source,
            &self.sha256,
            self.resolved.as_deref(),
            self.signer.as_deref(),
            self.lock.as_str(),
        )
    }

    /// Text lines for `check` and `inspect`, each `label` padded to `width`: source (with
    /// what an `oci://` reference resolved to), sha256, signer, lock.
    pub fn lines(&self, width: usize) -> Vec<String> {
        let source = match &self.resolved {
            Some(resolved) => format!("{} -> {resolved}", self.source),
            None => self.source.clone(),
        };
        vec![
            format!("{:<width$}{source}", "source"),
            format!("{:<width$}{}", "sha256", self.sha256),
            format!("{:<width$}{}", "signer", self.signer_or_none()),
            format!("{:<width$}{}", "lock", self.lock),
        ]
    }
}

/// The audit start record of `plugins`, by this version of warden.
pub fn start_record(plugins: &[Provenance]) -> StartRecord<'_> {
    StartRecord::new(
        env!("WARDEN_VERSION"),
        plugins.iter().map(Provenance::start_plugin).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(resolved: Option<&str>, signer: Option<&str>, lock: LockState) -> Provenance {
        Provenance {
            plugin: "codec".into(),
            source: "oci://127.0.0.1:5000/t/codec:v1".into(),
            sha256: "ab".repeat(32),
            resolved: resolved.map(str::to_owned),
            signer: signer.map(str::to_owned),
            lock,
        }
    }

    #[test]
    fn lines_show_source_digest_signer_and_lock() {
        let pulled = codec(Some("sha256:cd"), Some("key sha256:ef"), LockState::Matches);
        assert_eq!(
            pulled.lines(9),
            [
                "source   oci://127.0.0.1:5000/t/codec:v1 -> sha256:cd".to_owned(),
                format!("sha256   {}", "ab".repeat(32)),
                "signer   key sha256:ef".to_owned(),
                "lock     matches".to_owned(),
            ]
        );
        let unsigned = codec(None, None, LockState::NoLock);
        assert_eq!(unsigned.lines(9)[2], "signer   none");
        assert_eq!(unsigned.lines(9)[3], "lock     no-lock");
    }

    #[test]
    fn the_start_record_carries_what_was_computed() {
        let plugins = [
            codec(Some("sha256:cd"), Some("key sha256:ef"), LockState::Differs),
            codec(None, None, LockState::NotServed),
        ];
        let record = start_record(&plugins);
        assert_eq!(record.kind, crate::audit::START);
        assert_eq!(record.warden, env!("WARDEN_VERSION"));
        let value = serde_json::to_value(&record.plugins).expect("serialize");
        assert_eq!(
            value,
            serde_json::json!([
                {
                    "plugin": "codec",
                    "source": "oci://127.0.0.1:5000/t/codec:v1",
                    "sha256": "ab".repeat(32),
                    "resolved": "sha256:cd",
                    "signer": "key sha256:ef",
                    "lock": "differs",
                },
                {
                    "plugin": "codec",
                    "source": "oci://127.0.0.1:5000/t/codec:v1",
                    "sha256": "ab".repeat(32),
                    "lock": "not-served",
                },
            ])
        );
        // The JSON of `check` and `inspect` names the lock state as the record does.
        assert_eq!(
            serde_json::to_value(LockState::NoLock).expect("serialize"),
            LockState::NoLock.as_str()
        );
    }
}
