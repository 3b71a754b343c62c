//! Which of a plugin's grants its component can use: a grant is only reachable through the
//! WASI interfaces the component imports. Annotations are derived from the usable grants
//! only, and `warden check` warns about the others (and about imports no grant serves).

use crate::capabilities::net::{HostPattern, Scheme};
use crate::runtime::Plugin;

/// The WASI interfaces through which a component can use grants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// It imports `wasi:filesystem`: `dirs` grants.
    pub files: bool,
    /// It imports `wasi:http`: `http://` and `https://` hosts.
    pub http: bool,
    /// It imports `wasi:sockets`: `tcp://` and `udp://` hosts.
    pub sockets: bool,
    /// It imports `wasi:cli/environment`: `env` and `secrets`.
    pub environment: bool,
}

impl Reach {
    /// What `imports` (a component's import names) can reach.
    pub fn of(imports: &[String]) -> Self {
        let has = |prefix: &str| imports.iter().any(|i| i.starts_with(prefix));
        Reach {
            files: has("wasi:filesystem/"),
            http: has("wasi:http/"),
            sockets: has("wasi:sockets/"),
            environment: has("wasi:cli/environment"),
        }
    }

    /// Whether a request or connection allowed by `pattern` can be made at all.
    pub fn can_use_host(&self, pattern: &HostPattern) -> bool {
        let covers = |schemes: [Scheme; 2]| schemes.iter().any(|s| pattern.covers_scheme(*s));
        (self.http && covers([Scheme::Http, Scheme::Https]))
            || (self.sockets && covers([Scheme::Tcp, Scheme::Udp]))
    }

    /// Whether the plugin can reach any host it is granted.
    pub fn network(&self, plugin: &crate::manifest::Plugin) -> bool {
        plugin.allow_hosts.iter().any(|p| self.can_use_host(p))
    }

    /// Whether the plugin can change anything: a usable host, or a usable writable directory.
    pub fn writes(&self, plugin: &crate::manifest::Plugin) -> bool {
        self.network(plugin) || (self.files && plugin.dirs.iter().any(|d| d.mode.is_writable()))
    }
}

/// A `warden check` warning about a plugin: a code from
/// [`WARNING_CODES`](crate::manifest::WARNING_CODES) (what `acknowledge` lists) and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantWarning {
    /// `unused-grant:KEY` or `ungranted-import:WHAT`.
    pub code: &'static str,
    /// What is wrong and what follows from it.
    pub message: String,
}

/// Grants `plugin`'s component cannot use, and imports none of its grants serve.
pub fn grant_warnings(plugin: &Plugin) -> Vec<GrantWarning> {
    warnings_for(&plugin.config, &plugin.description.imports)
}

/// The [`grant_warnings`] that `plugin`'s manifest entry does not acknowledge.
pub fn unacknowledged_warnings(plugin: &Plugin) -> Vec<GrantWarning> {
    let acknowledged = &plugin.config.acknowledge;
    grant_warnings(plugin)
        .into_iter()
        .filter(|w| !acknowledged.iter().any(|ack| ack.code == w.code))
        .collect()
}

/// [`grant_warnings`] of a manifest entry whose component imports `imports`.
fn warnings_for(config: &crate::manifest::Plugin, imports: &[String]) -> Vec<GrantWarning> {
    let reach = Reach::of(imports);
    let mut warnings = Vec::new();
    let mut warn = |code, message: String| warnings.push(GrantWarning { code, message });
    if !config.dirs.is_empty() && !reach.files {
        warn(
            "unused-grant:dirs",
            "is granted directories (dirs) but imports no wasi:filesystem: it cannot use them"
                .into(),
        );
    }
    let unused: Vec<&str> = config
        .allow_hosts
        .iter()
        .filter(|p| !reach.can_use_host(p))
        .map(|p| p.as_str())
        .collect();
    if !unused.is_empty() {
        let imports = match (reach.http, reach.sockets) {
            (false, false) => "no networking (wasi:http or wasi:sockets)",
            (true, false) => "no wasi:sockets, so no tcp:// or udp:// host",
            _ => "no wasi:http, so no http:// or https:// host",
        };
        warn(
            "unused-grant:allow_hosts",
            format!(
                "is granted hosts it cannot reach ({}): it imports {imports}",
                unused.join(", ")
            ),
        );
    }
    if !config.env.is_empty() && !reach.environment {
        warn(
            "unused-grant:env",
            "is granted environment variables (env) but imports no wasi:cli/environment: it cannot read them".into(),
        );
    }
    if !config.secrets.is_empty() && !reach.environment {
        warn(
            "unused-grant:secrets",
            "is granted secrets but imports no wasi:cli/environment: it cannot read them".into(),
        );
    }
    if reach.files && config.dirs.is_empty() {
        warn(
            "ungranted-import:filesystem",
            "imports wasi:filesystem but is granted no directory: it will see no files".into(),
        );
    }
    let granted = |schemes: [Scheme; 2]| {
        config
            .allow_hosts
            .iter()
            .any(|p| schemes.iter().any(|s| p.covers_scheme(*s)))
    };
    if reach.http && !granted([Scheme::Http, Scheme::Https]) {
        warn(
            "ungranted-import:http",
            "imports wasi:http but is granted no host (allow_hosts): every request will be refused"
                .into(),
        );
    }
    if reach.sockets && !granted([Scheme::Tcp, Scheme::Udp]) {
        warn(
            "ungranted-import:sockets",
            "imports wasi:sockets but is granted no tcp:// or udp:// host (allow_hosts): every connection will be refused".into(),
        );
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    /// The plugin `p` of a manifest made of `body`, whose component is an empty file.
    fn plugin(body: &str) -> crate::manifest::Plugin {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("p.wasm"), b"").expect("write");
        let text = format!("[plugins.p]\ncomponent = \"p.wasm\"\n{body}");
        let env = |name: &str| (name == "TOKEN").then(|| "secret-value".to_owned());
        let manifest = Manifest::parse_with_env(&text, &dir.path().join("w.toml"), &env)
            .unwrap_or_else(|e| panic!("{e}"));
        manifest.plugins[0].clone()
    }

    fn imports(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| format!("{n}@0.2.6")).collect()
    }

    fn codes(config: &crate::manifest::Plugin, imported: &[&str]) -> Vec<&'static str> {
        warnings_for(config, &imports(imported))
            .into_iter()
            .map(|w| w.code)
            .collect()
    }

    #[test]
    fn each_grant_needs_the_import_that_reaches_it() {
        let config = plugin(
            "env = { LANG = \"C\" }\nsecrets = { T = { env = \"TOKEN\" } }\nallow_hosts = [\"https://example.com\", \"tcp://db:5432\"]\n",
        );
        assert_eq!(
            codes(&config, &[]),
            [
                "unused-grant:allow_hosts",
                "unused-grant:env",
                "unused-grant:secrets"
            ]
        );
        assert_eq!(
            codes(
                &config,
                &["wasi:cli/environment", "wasi:http/outgoing-handler"]
            ),
            ["unused-grant:allow_hosts"],
            "tcp:// needs wasi:sockets"
        );
        let message = &warnings_for(&config, &imports(&["wasi:http/types"]))[0].message;
        assert!(message.contains("(tcp://db:5432)"), "{message}");
        assert!(
            codes(
                &config,
                &[
                    "wasi:cli/environment",
                    "wasi:http/types",
                    "wasi:sockets/tcp"
                ]
            )
            .is_empty()
        );
    }

    #[test]
    fn imports_without_grants_are_reported() {
        let config = plugin("");
        assert_eq!(
            codes(
                &config,
                &[
                    "wasi:filesystem/types",
                    "wasi:http/types",
                    "wasi:sockets/tcp"
                ]
            ),
            [
                "ungranted-import:filesystem",
                "ungranted-import:http",
                "ungranted-import:sockets"
            ]
        );
        assert!(codes(&config, &["wasi:cli/environment"]).is_empty());
    }

    #[test]
    fn only_usable_grants_make_a_tool_write_or_reach_the_world() {
        let config = plugin("allow_hosts = [\"https://example.com\"]\n");
        let pure = Reach::of(&imports(&["wasi:cli/environment"]));
        assert!(!pure.network(&config) && !pure.writes(&config));
        let http = Reach::of(&imports(&["wasi:http/types"]));
        assert!(http.network(&config) && http.writes(&config));
        let sockets = Reach::of(&imports(&["wasi:sockets/tcp"]));
        assert!(
            !sockets.network(&config),
            "an https:// host needs wasi:http"
        );
    }
}
