//! Secrets: values read by the manifest loader from warden's environment or from files, given
//! to the plugin as environment variables, and kept out of warden's own log.
//!
//! The values live in [`crate::manifest::SecretValue`], whose `Debug` is redacted. What a
//! plugin does with a value is its own business, but whatever warden writes about the plugin
//! (its stdout and stderr, its log messages, the URLs it requests) passes through a
//! [`SecretScrubber`] first, so a value never lands in warden's log. The scrubber and the
//! gate's output filter work from the same set, `manifest::Plugin::secret_values` (the
//! `secrets` values and those of `env` variables whose names look secret).

use std::borrow::Cow;

use serde_json::{Value, json};

use super::env::ENVIRONMENT;
use super::{
    CallBuilder, CallView, Capability, CapabilityError, Effects, GrantWarning, Imports, Link,
};
use crate::manifest::Plugin;

/// What a secret value is replaced with in warden's log.
pub const REDACTED: &str = "[REDACTED:secrets]";

/// `secrets = { NAME = { env = "..." } }`: secret values as environment variables.
pub struct Secrets;

impl Capability for Secrets {
    fn name(&self) -> &'static str {
        "secrets"
    }

    fn offers(&self, imports: Imports<'_>) -> Vec<&'static str> {
        match imports.any(ENVIRONMENT) {
            true => vec!["secrets: secret values as environment variables"],
            false => vec![],
        }
    }

    fn summary(&self, plugin: &Plugin) -> Vec<String> {
        plugin
            .secrets
            .iter()
            .map(|s| format!("grant secret {} ({})", s.name, s.source))
            .collect()
    }

    fn report(&self, plugin: &Plugin) -> Vec<(&'static str, Value)> {
        let secrets: Vec<Value> = plugin
            .secrets
            .iter()
            .map(|s| json!({ "name": s.name, "source": s.source.to_string() }))
            .collect();
        vec![("secrets", json!(secrets))]
    }

    fn warnings(&self, plugin: &Plugin, imports: Imports<'_>) -> Vec<GrantWarning> {
        match !plugin.secrets.is_empty() && !imports.any(ENVIRONMENT) {
            true => vec![GrantWarning::new(
                "unused-grant:secrets",
                "is granted secrets but imports no wasi:cli/environment: it cannot read them",
            )],
            false => vec![],
        }
    }

    fn effects(&self, _: &Plugin, _: Imports<'_>) -> Effects {
        Effects::default()
    }

    /// Give each secret to the plugin as an environment variable.
    fn prepare(&self, call: &mut CallBuilder<'_>) -> Result<(), CapabilityError> {
        for secret in &call.plugin.secrets {
            call.wasi.env(&secret.name, secret.value.expose());
        }
        Ok(())
    }
}

/// Served by WASI's own `wasi:cli/environment`.
impl<T: CallView> Link<T> for Secrets {}

/// Replaces a plugin's secret values, as written and percent-encoded, by [`REDACTED`].
#[derive(Clone, Default)]
pub struct SecretScrubber {
    /// The forms to replace, longest first, so a value that contains another is replaced
    /// whole.
    needles: Vec<String>,
}

impl std::fmt::Debug for SecretScrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretScrubber({} forms)", self.needles.len())
    }
}

impl SecretScrubber {
    /// A scrubber for the secret values of `plugin` ([`Plugin::secret_values`]).
    pub fn for_plugin(plugin: &Plugin) -> SecretScrubber {
        SecretScrubber::new(plugin.secret_values())
    }

    /// A scrubber for `values`.
    pub fn new<'v>(values: impl IntoIterator<Item = &'v str>) -> SecretScrubber {
        let mut needles: Vec<String> = values
            .into_iter()
            .flat_map(|value| [value.to_owned(), percent_encode(value)])
            .filter(|needle| !needle.is_empty())
            .collect();
        needles.sort_by_key(|needle| std::cmp::Reverse(needle.len()));
        needles.dedup();
        SecretScrubber { needles }
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every secret value replaced.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = Cow::Owned(text.replace(needle.as_str(), REDACTED));
            }
        }
        text
    }
}

/// `value` with every byte outside RFC 3986's unreserved set percent-encoded, as it would
/// appear in a URL's query.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Location, Secret, SecretSource, SecretValue};

    fn secret(name: &str, value: &str) -> Secret {
        Secret {
            name: name.into(),
            source: SecretSource::Env("X".into()),
            value: SecretValue::new(value.into()),
            location: Location {
                file: "w.toml".into(),
                line: 1,
                column: 1,
                key: "secrets".into(),
            },
        }
    }

    #[test]
    fn values_are_scrubbed_as_written_and_percent_encoded() {
        let scrubber = SecretScrubber::new(["s3cr3t/+x", "s3cr3t"]);
        assert_eq!(
            scrubber.scrub("token=s3cr3t/+x and s3cr3t"),
            format!("token={REDACTED} and {REDACTED}")
        );
        assert_eq!(
            scrubber.scrub("/q?t=s3cr3t%2F%2Bx"),
            format!("/q?t={REDACTED}")
        );
        assert!(matches!(scrubber.scrub("nothing here"), Cow::Borrowed(_)));
        assert!(SecretScrubber::new([]).is_empty());
    }

    #[test]
    fn debug_output_never_shows_a_value() {
        let s = secret("TOKEN", "hunter2");
        let printed = format!("{s:?} {:?}", SecretScrubber::new([s.value.expose()]));
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("TOKEN"), "{printed}");
    }
}
