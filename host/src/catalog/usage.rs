//! Which of a plugin's grants its component can use: a grant is only reachable through the
//! interfaces the component imports. Annotations are derived from the usable grants only,
//! and `warden check` warns about the others (and about imports no grant serves). Each
//! capability answers for its own grants ([`crate::capabilities::Capability`]).

pub use crate::capabilities::GrantWarning;
use crate::capabilities::{self, Effects, Imports};
use crate::runtime::Plugin;

/// What `plugin`'s usable grants let its tools do, from every capability.
pub fn effects(plugin: &Plugin) -> Effects {
    let imports = Imports(&plugin.description.imports);
    capabilities::described()
        .iter()
        .fold(Effects::default(), |all, c| {
            all | c.effects(&plugin.config, imports)
        })
}

/// Grants `plugin`'s component cannot use, imports none of its grants serve, and tools that
/// can write but that no human confirms (`unapproved-write`).
pub fn grant_warnings(plugin: &Plugin) -> Vec<GrantWarning> {
    let mut warnings = warnings_for(&plugin.config, &plugin.description.imports);
    warnings.extend(unapproved_writes(plugin));
    warnings
}

/// `unapproved-write`: the functions of `plugin` whose grants let them write (a `rw`
/// directory, an outbound host, a writable store or database) and not marked `read_only`, yet
/// called without a human's confirmation (`approval = "never"`).
fn unapproved_writes(plugin: &Plugin) -> Option<GrantWarning> {
    if !effects(plugin).writes {
        return None;
    }
    let config = &plugin.config;
    let functions: Vec<&str> = plugin
        .description
        .functions
        .iter()
        .map(|f| f.name.as_str())
        .filter(|name| {
            let read_only = config
                .tool_override(name)
                .is_some_and(|t| t.hints.read_only);
            !read_only && config.tool_approval(name) == crate::manifest::Approval::Never
        })
        .collect();
    (!functions.is_empty()).then(|| {
        GrantWarning::new(
            "unapproved-write",
            format!(
                "its grants let {} change things or send data out, and no human confirms their \
                 calls: set approval = \"ask\" (on the plugin or [plugins.{}.tools.FUNCTION]), \
                 mark read-only functions read_only = true, or acknowledge it",
                functions.join(", "),
                config.name
            ),
        )
    })
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
    capabilities::described()
        .iter()
        .flat_map(|c| c.warnings(config, Imports(imports)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    /// The plugin `p` of a manifest made of `body`, whose component is an empty file.
    fn plugin(body: &str) -> crate::manifest::Plugin {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("p.wasm"), b"").expect("write");
        std::fs::create_dir(dir.path().join("data")).expect("mkdir");
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

    fn effects_of(config: &crate::manifest::Plugin, imported: &[&str]) -> Effects {
        let imports = imports(imported);
        capabilities::described()
            .iter()
            .fold(Effects::default(), |all, c| {
                all | c.effects(config, Imports(&imports))
            })
    }

    #[test]
    fn only_usable_grants_make_a_tool_write_or_reach_the_world() {
        let config = plugin("allow_hosts = [\"https://example.com\"]\n");
        let pure = effects_of(&config, &["wasi:cli/environment"]);
        assert_eq!(pure, Effects::default());
        let http = effects_of(&config, &["wasi:http/types"]);
        assert!(http.open_world && http.writes);
        let sockets = effects_of(&config, &["wasi:sockets/tcp"]);
        assert!(!sockets.open_world, "an https:// host needs wasi:http");
        let rw = plugin("dirs = [{ host = \"data\", guest = \"/d\", mode = \"rw\" }]\n");
        assert!(effects_of(&rw, &["wasi:filesystem/types"]).writes);
        assert!(
            !effects_of(&rw, &[]).writes,
            "a directory needs wasi:filesystem"
        );
    }
}
