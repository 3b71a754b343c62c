//! Loading whole manifests: the happy path, defaults, and every error an operator can make, each
//! reported with its line and key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// A manifest directory with the files manifests in these tests refer to.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["plugins", "data", "out"] {
            std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        for file in ["plugins/files.wasm", "plugins/fetch.wasm", "notes.txt"] {
            std::fs::write(dir.path().join(file), b"\0asm").expect("write");
        }
        Fixture { dir }
    }

    /// The canonical path of `relative` in the fixture.
    fn path(&self, relative: &str) -> PathBuf {
        std::fs::canonicalize(self.dir.path().join(relative)).expect("canonicalize")
    }

    /// The fixture directory, canonical: what the manifest's directory resolves to.
    fn root(&self) -> PathBuf {
        self.path(".")
    }

    fn manifest_path(&self) -> PathBuf {
        self.root().join("warden.toml")
    }

    fn parse(&self, text: &str) -> Result<Manifest, ManifestError> {
        let data = self.dir.path().join("data").display().to_string();
        let env = move |name: &str| match name {
            "HOME" => Some("/home/op".to_owned()),
            "DATA" => Some(data.clone()),
            "MEM" => Some("32MiB".to_owned()),
            "FUEL" => Some("5_000".to_owned()),
            "EMPTY" => Some(String::new()),
            "PG_URL" => Some("postgres://shop:pg-pass-123@db.internal:5432/shop".to_owned()),
            "PG_PASS" => Some("pg-pass-123".to_owned()),
            "MYSQL_URL" => Some("mysql://shop:my-pass-456@db/shop".to_owned()),
            _ => None,
        };
        Manifest::parse_with_env(text, &self.manifest_path(), &env)
    }

    fn ok(&self, text: &str) -> Manifest {
        self.parse(text)
            .unwrap_or_else(|e| panic!("manifest rejected:\n{e}"))
    }

    /// Each diagnostic as `line:column: key: message`.
    fn errors(&self, text: &str) -> Vec<String> {
        let error = match self.parse(text) {
            Ok(_) => panic!("manifest accepted:\n{text}"),
            Err(error) => error,
        };
        error
            .errors
            .iter()
            .map(|d| {
                let location = d.location.as_ref().expect("diagnostic has a location");
                assert_eq!(location.file, self.manifest_path());
                format!(
                    "{}:{}: {}: {}",
                    location.line, location.column, location.key, d.message
                )
            })
            .collect()
    }

    /// Each case's manifest (a newline added) gives exactly its expected diagnostics; every
    /// mismatch is reported at once.
    fn expect_errors<T: AsRef<str>, E: AsRef<str>>(&self, cases: &[(T, E)]) {
        let mismatches: Vec<String> = cases
            .iter()
            .filter_map(|(text, expected)| {
                let (text, expected) = (text.as_ref(), expected.as_ref());
                let got = self.errors(&format!("{text}\n")).join("\n");
                (got != expected)
                    .then(|| format!("{text}\n  got:      {got}\n  expected: {expected}"))
            })
            .collect();
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    /// The single diagnostic for `text`.
    fn error(&self, text: &str) -> String {
        let errors = self.errors(text);
        assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
        errors.into_iter().next().unwrap_or_default()
    }
}

const FILES: &str = "[plugins.files]\ncomponent = \"plugins/files.wasm\"\n";

#[test]
fn complete_manifest_loads_with_every_value() {
    let fx = Fixture::new();
    let m = fx.ok(r#"
[server]
name = "acme-tools"
principal = "me"

[cache]
dir = ".cache/warden"

[plugins.files]
component = "plugins/files.wasm"
sha256 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
fuel = 2_000_000
memory = "128MiB"
timeout = "1m30s"
max_output = 65536
prefix = "fs"
dirs = [
  { host = "./data", guest = "/data" },
  { host = "${DATA}/../out", guest = "/out/", mode = "rw" },
]
env = { LANG = "C.UTF-8", GREETING = "hi $$USER" }

[plugins.files.tools.read-text]
name = "read_file"
description = "Read a file."

[plugins.files.tools.list]

[plugins.fetch]
component = "./plugins/fetch.wasm"
prefix = ""
"#);
    assert_eq!(m.path, fx.manifest_path());
    assert_eq!(m.dir, fx.root());
    assert_eq!(
        m.server,
        Server {
            name: "acme-tools".into(),
            principal: "me".into(),
            roles: Vec::new(),
            instructions: Server::DEFAULT_INSTRUCTIONS.into(),
            lock: None,
            review: ReviewMode::Warn,
            signatures_required: false,
            page_size: Server::DEFAULT_PAGE_SIZE,
        }
    );
    assert_eq!(m.cache_dir, fx.root().join(".cache/warden"));
    assert_eq!(
        m.plugins
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["files", "fetch"]
    );

    let files = m.plugin("files").expect("files");
    assert_eq!(files.component, fx.path("plugins/files.wasm"));
    let digest = files.sha256.expect("sha256");
    assert_eq!(
        hex::encode(digest),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
    assert_eq!(
        files.limits,
        Limits {
            fuel: 2_000_000,
            memory: 128 << 20,
            timeout: Duration::from_secs(90),
            max_output: 65536
        }
    );
    assert_eq!(files.prefix, "fs");
    assert_eq!(files.dirs.len(), 2);
    assert_eq!(
        (
            files.dirs[0].host.clone(),
            files.dirs[0].guest.as_str(),
            files.dirs[0].mode
        ),
        (fx.path("data"), "/data", DirMode::ReadOnly)
    );
    assert_eq!(
        (
            files.dirs[1].host.clone(),
            files.dirs[1].guest.as_str(),
            files.dirs[1].mode
        ),
        (fx.path("out"), "/out", DirMode::ReadWrite)
    );
    assert_eq!(files.dirs[1].location.line, 19);
    assert_eq!(files.dirs[1].location.key, "plugins.files.dirs[1]");
    assert_eq!(
        files.env,
        [
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
            ("GREETING".to_owned(), "hi $USER".to_owned())
        ]
    );

    assert_eq!(files.location.line, 9);
    assert_eq!(files.location.column, 1);
    assert_eq!(files.location.key, "plugins.files");
    assert_eq!(files.location_of("memory").line, 13);
    assert_eq!(files.location_of("memory").key, "plugins.files.memory");
    assert_eq!(files.location_of("component").line, 10);

    assert_eq!(files.tools.len(), 2);
    let read = &files.tools[0];
    assert_eq!(
        (
            read.function.as_str(),
            read.name.as_deref(),
            read.description.as_deref()
        ),
        ("read-text", Some("read_file"), Some("Read a file."))
    );
    assert_eq!(
        (read.location.line, read.location.key.as_str()),
        (23, "plugins.files.tools.read-text")
    );
    assert_eq!(
        (
            files.tools[1].function.as_str(),
            files.tools[1].name.as_deref()
        ),
        ("list", None)
    );
    assert_eq!(files.tools[1].location.line, 27);
    assert_eq!(
        files
            .tool_override("read-text")
            .and_then(|t| t.name.as_deref()),
        Some("read_file")
    );
    assert_eq!(prefixed_tool_name(&files.prefix, "list"), "fs__list");

    let fetch = m.plugin("fetch").expect("fetch");
    assert_eq!(fetch.component, fx.path("plugins/fetch.wasm"));
    assert_eq!(fetch.prefix, "");
    assert_eq!(prefixed_tool_name(&fetch.prefix, "get"), "get");
    assert_eq!(fetch.limits, Limits::default());
    assert_eq!(fetch.location.line, 29);
    assert_eq!(fetch.location_of("fuel"), &fetch.location);
}

#[test]
fn minimal_manifests_take_defaults() {
    let fx = Fixture::new();
    let m = fx.ok("");
    assert_eq!(m.server, Server::default());
    assert_eq!(
        (m.server.name.as_str(), m.server.principal.as_str()),
        ("warden", "local")
    );
    assert_eq!(m.cache_dir, Path::new("/home/op/.cache/warden"));
    assert!(m.plugins.is_empty());

    let m = fx.ok(FILES);
    let files = &m.plugins[0];
    assert_eq!(files.prefix, "files");
    assert_eq!(
        prefixed_tool_name(&files.prefix, "read-text"),
        "files__read-text"
    );
    assert_eq!(
        files.limits,
        Limits {
            fuel: 1_000_000_000,
            memory: 64 << 20,
            timeout: Duration::from_secs(10),
            max_output: 1 << 20
        }
    );
    assert_eq!(
        (
            files.sha256,
            files.dirs.len(),
            files.env.len(),
            files.tools.len()
        ),
        (None, 0, 0, 0)
    );
}

#[test]
fn plugins_defined_by_dotted_keys_and_inline_tables_load() {
    let fx = Fixture::new();
    let m = fx.ok(
        "[plugins]\nb.component = \"plugins/files.wasm\"\na = { component = \"plugins/fetch.wasm\", dirs = [] }\n\n[[plugins.c.dirs]]\nhost = \"data\"\nguest = \"/d\"\n[plugins.c]\ncomponent = \"plugins/files.wasm\"\n",
    );
    let names: Vec<_> = m
        .plugins
        .iter()
        .map(|p| (p.name.as_str(), p.location.line, p.location.column))
        .collect();
    assert_eq!(names, [("b", 2, 1), ("a", 3, 1), ("c", 8, 1)]);
    assert_eq!(m.plugins[2].dirs[0].location.line, 5);
}

#[test]
fn default_cache_dir_follows_xdg_then_home_then_manifest_dir() {
    let fx = Fixture::new();
    let load = |vars: &'static [(&'static str, &'static str)]| {
        let env = move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        Manifest::parse_with_env("", &fx.manifest_path(), &env)
            .expect("loads")
            .cache_dir
    };
    assert_eq!(
        load(&[("XDG_CACHE_HOME", "/xdg"), ("HOME", "/home/op")]),
        Path::new("/xdg/warden")
    );
    assert_eq!(
        load(&[("XDG_CACHE_HOME", "relative"), ("HOME", "/home/op")]),
        Path::new("/home/op/.cache/warden")
    );
    assert_eq!(
        load(&[("XDG_CACHE_HOME", ""), ("HOME", "/home/op")]),
        Path::new("/home/op/.cache/warden")
    );
    assert_eq!(load(&[]), fx.root().join(".warden-cache"));
}

#[test]
fn toml_syntax_error_names_line_and_key() {
    let fx = Fixture::new();
    let error = fx.error("[plugins.files]\ncomponent = \"plugins/files.wasm\"\nmemory = 64MiB\n");
    assert!(
        error.starts_with("3:10: plugins.files.memory: invalid TOML: "),
        "{error}"
    );
    assert!(error.contains("must be quoted"), "{error}");
}

#[test]
fn toml_syntax_errors_are_all_reported() {
    let fx = Fixture::new();
    let errors = fx.errors(
        "[server]\nname = warden\n\n[plugins.files]\ncomponent = \"x\nfuel = 1\nfuel = 2\n",
    );
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].starts_with("2:8: server.name: invalid TOML"),
        "{errors:#?}"
    );
    assert!(
        errors[1].starts_with("5:15: plugins.files.component: invalid TOML"),
        "{errors:#?}"
    );
    assert_eq!(
        errors[2],
        "7:1: plugins.files: invalid TOML: duplicate key `fuel`"
    );
}

#[test]
fn unknown_top_level_key_is_an_error() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error("[sever]\nname = \"x\"\n"),
        "1:2: sever: unknown key `sever`; did you mean `server`?"
    );
    assert_eq!(
        fx.error("\n\ncolour = \"blue\"\n"),
        "3:1: colour: unknown key `colour`; expected one of `server`, `cache`, `plugins`, `limits`, `filters`, `audit`, `http`, `auth`, `kv`, `approval`, `tasks`, `metrics` or `tracing`"
    );
}

#[test]
fn unknown_keys_in_server_and_cache_are_errors() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error("[server]\nnmae = \"x\"\n"),
        "2:1: server.nmae: unknown key `nmae`; did you mean `name`?"
    );
    assert_eq!(
        fx.error("[cache]\npath = \"x\"\n"),
        "2:1: cache.path: unknown key `path`; expected one of `dir`, `key`, `key_file` or \
         `baseline`"
    );
}

#[test]
fn the_baseline_compiler_is_on_unless_the_cache_says_otherwise() {
    let fx = Fixture::new();
    assert!(fx.ok("").cache_baseline);
    assert!(fx.ok("[cache]\ndir = \"c\"\n").cache_baseline);
    assert!(!fx.ok("[cache]\nbaseline = false\n").cache_baseline);
    assert!(fx.ok("[cache]\nbaseline = true\n").cache_baseline);
    assert!(
        fx.error("[cache]\nbaseline = \"no\"\n")
            .starts_with("2:12: cache.baseline: "),
        "{}",
        fx.error("[cache]\nbaseline = \"no\"\n")
    );
}

#[test]
fn the_cache_key_is_a_file_beside_the_cache_unless_the_operator_gives_one() {
    let fx = Fixture::new();
    let m = fx.ok("[cache]\ndir = \"c/warden\"\n");
    assert_eq!(m.cache_key, CacheKey::File(fx.root().join("c/warden.key")));
    let m = fx.ok("[cache]\ndir = \"c\"\nkey_file = \"/etc/warden/cache.key\"\n");
    assert_eq!(
        m.cache_key,
        CacheKey::File(PathBuf::from("/etc/warden/cache.key"))
    );
    let m = fx.ok("");
    assert_eq!(
        m.cache_key,
        CacheKey::File(PathBuf::from("/home/op/.cache/warden.key"))
    );
    let secret = "0123456789abcdef0123456789abcdef";
    let m = fx.ok(&format!("[cache]\nkey = \"{secret}\"\n"));
    assert_eq!(
        m.cache_key,
        CacheKey::Secret(SecretValue::new(secret.to_owned()))
    );
    assert!(
        !format!("{m:?}").contains(secret),
        "the key never reaches Debug"
    );

    assert_eq!(
        fx.error("[cache]\nkey = \"short\"\n"),
        "2:7: cache.key: the cache key must be at least 32 characters (it authenticates native \
         code); make one with `openssl rand -hex 32` and pass it as ${VAR}"
    );
    assert_eq!(
        fx.error(&format!("[cache]\nkey = \"{secret}\"\nkey_file = \"k\"\n")),
        "3:12: cache.key_file: give either `key` or `key_file`, not both"
    );
}

#[test]
fn a_grant_over_wardens_own_files_is_refused_at_its_line() {
    let fx = Fixture::new();
    let errors = fx.errors(
        "[cache]\ndir = \"data/cache\"\n\n[audit]\npath = \"out/audit.jsonl\"\n\n\
         [plugins.files]\ncomponent = \"plugins/files.wasm\"\ndirs = [\n\
         { host = \"data\", guest = \"/data\", mode = \"rw\" },\n\
         { host = \"out\", guest = \"/out\" },\n\
         { host = \"plugins\", guest = \"/plugins\", mode = \"rw\" },\n\
         { host = \".\", guest = \"/all\" },\n]\n",
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
    for (error, line, needle) in [
        (&errors[0], 10, "read-write access to"),
        (&errors[1], 11, "the audit log's directory"),
        (&errors[2], 12, "a plugin's component"),
        (&errors[3], 13, "the compile cache key"),
    ] {
        assert!(error.starts_with(&format!("{line}:")), "{error}");
        assert!(error.contains(needle), "{error}");
    }
    assert!(
        errors[0].contains("warden's compile cache"),
        "{}",
        errors[0]
    );
    // Read-only access to the folder holding the cache, the manifest and the components is
    // fine; so is writing somewhere else.
    fx.ok(
        "[cache]\ndir = \"data/cache\"\nkey_file = \"/nonexistent/cache.key\"\n[plugins.files]\ncomponent = \"plugins/files.wasm\"\n\
         dirs = [{ host = \".\", guest = \"/all\" }, { host = \"out\", guest = \"/out\", mode = \"rw\" }]\n",
    );
}

#[test]
fn resources_is_a_boolean_served_by_default() {
    let fx = Fixture::new();
    let parsed = |text: &str| fx.parse(text).expect("valid").plugins[0].resources;
    assert!(parsed(FILES));
    assert!(!parsed(&format!("{FILES}resources = false\n")));
    assert_eq!(
        fx.error(&format!("{FILES}resources = \"no\"\n")),
        "3:13: plugins.files.resources: expected a boolean, found a string"
    );
}

#[test]
fn sampling_and_roots_are_booleans_off_by_default() {
    let fx = Fixture::new();
    let plugin = |text: &str| fx.parse(text).expect("valid").plugins.remove(0);
    let default = plugin(FILES);
    assert!(!default.sampling && !default.roots);
    let granted = plugin(&format!("{FILES}sampling = true\nroots = true\n"));
    assert!(granted.sampling && granted.roots);
    assert_eq!(
        fx.error(&format!("{FILES}sampling = \"yes\"\n")),
        "3:12: plugins.files.sampling: expected a boolean, found a string"
    );
    assert_eq!(
        fx.error(&format!("{FILES}roots = 1\n")),
        "3:9: plugins.files.roots: expected a boolean, found an integer"
    );
}

#[test]
fn unknown_key_in_plugin_is_an_error_with_a_suggestion() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error(&format!("{FILES}memroy = \"64MiB\"\n")),
        "3:1: plugins.files.memroy: unknown key `memroy`; did you mean `memory`?"
    );
    assert_eq!(
        fx.error(&format!("{FILES}\"odd key\" = 1\n")),
        "3:1: plugins.files.\"odd key\": unknown key `odd key`; expected one of `component`, `sha256`, `verify`, \
         `fuel`, `memory`, `timeout`, `max_output`, `prefix`, `resources`, `sampling`, \
         `roots`, `dirs`, `env`, `tools`, `prompts`, `uris`, \
         `roles`, `rate`, `tool_rate`, `concurrency`, `queue`, `redact`, `max_output_mode`, `max_events`, \
         `max_event_bytes`, `approval`, `data`, `allow_hosts`, `net`, `secrets`, `kv`, `sql`, `acknowledge` or `icons`"
    );
}

#[test]
fn unknown_key_in_dir_grant_is_an_error() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error(&format!(
            "{FILES}dirs = [{{ host = \"data\", guest = \"/data\", readonly = true }}]\n"
        )),
        "3:43: plugins.files.dirs[0].readonly: unknown key `readonly`; expected one of `host`, `guest`, `mode`, `max_write` or `max_files`"
    );
}

#[test]
fn write_quotas_load_on_rw_grants_with_their_defaults() {
    let fx = Fixture::new();
    let m = fx.ok(&format!(
        "{FILES}dirs = [\n  {{ host = \"data\", guest = \"/data\" }},\n  {{ host = \"out\", guest = \"/out\", mode = \"rw\" }},\n  {{ host = \"out\", guest = \"/small\", mode = \"rw\", max_write = \"1MiB\", max_files = 0 }},\n]\n"
    ));
    let dirs = &m.plugins[0].dirs;
    assert_eq!(dirs[1].quota, WriteQuota::default());
    assert_eq!(
        WriteQuota::default(),
        WriteQuota {
            max_write: 64 << 20,
            max_files: 1000
        }
    );
    assert_eq!(
        dirs[2].quota,
        WriteQuota {
            max_write: 1 << 20,
            max_files: 0
        }
    );
}

#[test]
fn write_quotas_are_refused_on_ro_grants_and_out_of_range() {
    let fx = Fixture::new();
    assert_eq!(
        fx.errors(&format!(
            "{FILES}dirs = [{{ host = \"data\", guest = \"/data\", max_write = \"1MiB\" }}, {{ host = \"out\", guest = \"/out\", mode = \"rw\", max_write = \"2TiB\", max_files = -1 }}]\n"
        )),
        [
            "3:43: plugins.files.dirs[0].max_write: `max_write` applies only to a grant with mode = \"rw\": a read-only grant writes nothing",
            "3:122: plugins.files.dirs[1].max_write: max_write must be between 1B and 1TiB, got 2TiB",
            "3:142: plugins.files.dirs[1].max_files: max_files must be between 0 and 10000000, got -1",
        ]
    );
}

#[test]
fn annotation_keys_only_tighten_and_acknowledgements_are_known_codes() {
    let fx = Fixture::new();
    let m = fx.ok(&format!(
        "{FILES}acknowledge = [\"unused-grant:env\"]\n[plugins.files.tools.read-text]\nread_only = true\nopen_world = false\n"
    ));
    let plugin = &m.plugins[0];
    assert_eq!(plugin.acknowledge[0].code, "unused-grant:env");
    assert_eq!(plugin.acknowledge[0].location.line, 3);
    let hints = plugin.tool_override("read-text").expect("override").hints;
    assert!(hints.read_only && hints.closed_world && !hints.idempotent);
    assert_eq!(
        fx.errors(&format!(
            "{FILES}acknowledge = [\"unused-grant:env\", \"unused-grant:env\", 3]\n[plugins.files.tools.read-text]\nidempotent = false\ndestructive = \"no\"\n"
        )),
        [
            "3:36: plugins.files.acknowledge[1]: \"unused-grant:env\" is listed twice",
            "3:56: plugins.files.acknowledge[2]: expected a string, found an integer",
            "5:14: plugins.files.tools.read-text.idempotent: idempotent can only be set to true (repeating a call changes nothing more): annotations derived from the grants can be tightened here, never loosened; remove the key to keep the derived value",
            "6:15: plugins.files.tools.read-text.destructive: expected a boolean, found a string",
        ]
    );
}

#[test]
fn unknown_key_in_tool_override_is_an_error() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error(&format!(
            "{FILES}[plugins.files.tools.read-text]\ntitle = \"x\"\n"
        )),
        "4:1: plugins.files.tools.read-text.title: unknown key `title`; expected one of `name`, `description`, `roles`, `read_only`, `destructive`, `idempotent`, `open_world`, `approval`, `data`, `accept_review`, `task`, `task_timeout`, `task_after`, `icons` or `hidden`"
    );
}

#[test]
fn missing_component_is_reported_at_the_plugin_header() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error("[plugins.files]\nfuel = 10\n"),
        "1:1: plugins.files: missing required key `component`"
    );
}

#[test]
fn missing_component_file_is_reported_at_the_component_line() {
    let fx = Fixture::new();
    let error = fx.error("[plugins.files]\n\ncomponent = \"plugins/nope.wasm\"\n");
    let resolved = fx.root().join("plugins/nope.wasm");
    assert_eq!(
        error,
        format!(
            "3:13: plugins.files.component: component file \"plugins/nope.wasm\" ({}) not found",
            resolved.display()
        )
    );
    let error = fx.error("[plugins.files]\ncomponent = \"plugins\"\n");
    assert!(
        error.starts_with("2:13: plugins.files.component: component file \"plugins\" (")
            && error.ends_with("is a directory, not a file"),
        "{error}"
    );
}

#[test]
fn malformed_size_is_reported_with_an_example() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error(&format!("{FILES}memory = \"lots\"\n")),
        "3:10: plugins.files.memory: invalid size \"lots\": expected a number of bytes such as 65536 or \"64MiB\""
    );
    assert_eq!(
        fx.error(&format!("{FILES}max_output = \"1 megabyte\"\n")),
        "3:14: plugins.files.max_output: invalid size \"1 megabyte\": unknown unit `megabyte`: expected B, KB, KiB, MB, MiB, GB, GiB, TB or TiB"
    );
    assert_eq!(
        fx.error(&format!("{FILES}memory = 1.5\n")),
        "3:10: plugins.files.memory: expected a size such as \"64MiB\" or a number of bytes, found a float"
    );
}

#[test]
fn limits_out_of_range_are_errors() {
    let fx = Fixture::new();
    let cases = [
        (
            "fuel = 0",
            "3:8: plugins.files.fuel: fuel must be greater than 0, got 0",
        ),
        (
            "fuel = -5",
            "3:8: plugins.files.fuel: fuel must be greater than 0, got -5",
        ),
        (
            "fuel = \"many\"",
            "3:8: plugins.files.fuel: invalid fuel \"many\": expected a positive integer such as 1_000_000_000",
        ),
        (
            "fuel = 1e9",
            "3:8: plugins.files.fuel: expected an integer, found a float",
        ),
        (
            "memory = 0",
            "3:10: plugins.files.memory: memory must be between 1MiB and 4GiB, got 0B",
        ),
        (
            "memory = -1",
            "3:10: plugins.files.memory: memory must be between 1MiB and 4GiB, got -1",
        ),
        (
            "memory = \"512KiB\"",
            "3:10: plugins.files.memory: memory must be between 1MiB and 4GiB, got 512KiB",
        ),
        (
            "memory = \"5GiB\"",
            "3:10: plugins.files.memory: memory must be between 1MiB and 4GiB, got 5GiB",
        ),
        (
            "max_output = 100",
            "3:14: plugins.files.max_output: max_output must be between 1KiB and 64MiB, got 100B",
        ),
        (
            "max_output = \"1GB\"",
            "3:14: plugins.files.max_output: max_output must be between 1KiB and 64MiB, got 1000000000B",
        ),
        (
            "timeout = \"0s\"",
            "3:11: plugins.files.timeout: timeout must be greater than 0",
        ),
        (
            "timeout = \"2h\"",
            "3:11: plugins.files.timeout: timeout must be at most 1h, got 2h",
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(fx.error(&format!("{FILES}{line}\n")), expected, "{line}");
    }
    let m = fx.ok(&format!(
        "{FILES}memory = \"4GiB\"\nmax_output = \"1KiB\"\ntimeout = \"1h\"\nfuel = 1\n"
    ));
    assert_eq!(
        m.plugins[0].limits,
        Limits {
            fuel: 1,
            memory: 4 << 30,
            timeout: Duration::from_secs(3600),
            max_output: 1024
        }
    );
}

#[test]
fn bad_duration_is_an_error() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error(&format!("{FILES}timeout = \"soon\"\n")),
        "3:11: plugins.files.timeout: invalid duration \"soon\": expected a duration such as \"250ms\", \"5s\" or \"2m\""
    );
    assert_eq!(
        fx.error(&format!("{FILES}timeout = 5\n")),
        "3:11: plugins.files.timeout: expected a duration string such as \"5s\" or \"250ms\"; a bare number has no unit"
    );
    assert_eq!(
        fx.error(&format!("{FILES}timeout = \"5\"\n")),
        "3:11: plugins.files.timeout: invalid duration \"5\": missing unit after `5`: write \"5s\" for seconds or \"5ms\" for milliseconds"
    );
}

#[test]
fn bad_sha256_is_an_error() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error(&format!("{FILES}sha256 = \"abc123\"\n")),
        "3:10: plugins.files.sha256: invalid sha256 \"abc123\": expected 64 hexadecimal characters (a SHA-256 digest), got 6"
    );
    let bad = format!("{}zz", "0".repeat(62));
    assert_eq!(
        fx.error(&format!("{FILES}sha256 = \"{bad}\"\n")),
        format!(
            "3:10: plugins.files.sha256: invalid sha256 \"{bad}\": invalid character 'z' at position 62"
        )
    );
}

#[test]
fn dir_host_must_exist_and_be_a_directory() {
    let fx = Fixture::new();
    let error = fx.error(&format!(
        "{FILES}dirs = [{{ host = \"./missing\", guest = \"/m\" }}]\n"
    ));
    assert_eq!(
        error,
        format!(
            "3:18: plugins.files.dirs[0].host: host directory \"./missing\" ({}) not found",
            fx.root().join("missing").display()
        )
    );
    let error = fx.error(&format!(
        "{FILES}dirs = [{{ host = \"notes.txt\", guest = \"/m\" }}]\n"
    ));
    assert!(
        error.starts_with("3:18: plugins.files.dirs[0].host: host directory \"notes.txt\" (")
            && error.ends_with(") is not a directory"),
        "{error}"
    );
}

#[test]
fn relative_guest_path_is_an_error() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error(&format!(
            "{FILES}dirs = [{{ host = \"data\", guest = \"data\" }}]\n"
        )),
        "3:34: plugins.files.dirs[0].guest: guest path \"data\" must be absolute (start with `/`)"
    );
    assert_eq!(
        fx.error(&format!(
            "{FILES}dirs = [{{ host = \"data\", guest = \"/data/../etc\" }}]\n"
        )),
        "3:34: plugins.files.dirs[0].guest: guest path \"/data/../etc\" must not contain `.` or `..` segments"
    );
}

#[test]
fn duplicate_guest_path_is_an_error() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error(&format!(
            "{FILES}dirs = [\n  {{ host = \"data\", guest = \"/data\" }},\n  {{ host = \"out\", guest = \"/data/\" }},\n]\n"
        )),
        "5:27: plugins.files.dirs[1].guest: guest path \"/data\" is already granted by `plugins.files.dirs[0]` (line 4)"
    );
    // The same guest path in two plugins is fine: each has its own file system.
    fx.ok(&format!(
        "{FILES}dirs = [{{ host = \"data\", guest = \"/data\" }}]\n[plugins.fetch]\ncomponent = \"plugins/fetch.wasm\"\ndirs = [{{ host = \"out\", guest = \"/data\" }}]\n"
    ));
}

#[test]
fn bad_mode_is_an_error() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error(&format!(
            "{FILES}dirs = [{{ host = \"data\", guest = \"/d\", mode = \"write\" }}]\n"
        )),
        "3:47: plugins.files.dirs[0].mode: invalid mode \"write\": expected \"ro\" (read-only) or \"rw\" (read-write)"
    );
}

#[test]
fn dir_grants_must_be_tables_in_an_array() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error(&format!("{FILES}dirs = \"data\"\n")),
        "3:8: plugins.files.dirs: expected an array, found a string"
    );
    assert_eq!(
        fx.error(&format!("{FILES}dirs = [\"data\"]\n")),
        "3:9: plugins.files.dirs[0]: expected a table such as { host = \"./data\", guest = \"/data\" }, found a string"
    );
    assert_eq!(
        fx.error(&format!("{FILES}dirs = [{{ guest = \"/d\" }}]\n")),
        "3:9: plugins.files.dirs[0]: missing required key `host`"
    );
}

#[test]
fn bad_env_var_name_is_an_error() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error(&format!(
            "{FILES}env = {{ \"MY-VAR\" = \"x\", OK = \"y\" }}\n"
        )),
        "3:9: plugins.files.env.MY-VAR: invalid environment variable name \"MY-VAR\": expected letters, digits and `_`, not starting with a digit"
    );
    assert_eq!(
        fx.error(&format!("{FILES}[plugins.files.env]\n1X = \"x\"\n"))
            .split(": ")
            .nth(1),
        Some("plugins.files.env.1X")
    );
    assert_eq!(
        fx.error(&format!("{FILES}env = {{ N = 1 }}\n")),
        "3:13: plugins.files.env.N: expected a string, found an integer"
    );
}

#[test]
fn bad_plugin_name_is_an_error() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error("[plugins.Files]\ncomponent = \"plugins/files.wasm\"\n"),
        "1:1: plugins.Files: invalid plugin name \"Files\": expected a lowercase letter followed by up to 31 lowercase letters, digits, `_` or `-`"
    );
    let long = "a".repeat(33);
    assert_eq!(
        fx.error(&format!(
            "[plugins.{long}]\ncomponent = \"plugins/files.wasm\"\n"
        )),
        format!("1:1: plugins.{long}: plugin name \"{long}\" is 33 characters long: at most 32")
    );
    assert_eq!(
        fx.error("[[plugins]]\nname = \"x\"\n"),
        "1:1: plugins: expected a table, found an array"
    );
    assert_eq!(
        fx.error("[plugins]\nfiles = \"x.wasm\"\n"),
        "2:9: plugins.files: expected a table, found a string"
    );
}

#[test]
fn bad_prefix_is_an_error() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error(&format!("{FILES}prefix = \"my files\"\n")),
        "3:10: plugins.files.prefix: invalid prefix \"my files\": only letters, digits, `_` and `-` are allowed"
    );
    assert!(
        fx.error(&format!("{FILES}prefix = \"{}\"\n", "p".repeat(62)))
            .contains("at most 61")
    );
}

#[test]
fn bad_tool_name_override_is_an_error() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error(&format!(
            "{FILES}[plugins.files.tools.read-text]\nname = \"read file\"\n"
        )),
        "4:8: plugins.files.tools.read-text.name: invalid tool name \"read file\": only letters, digits, `_` and `-` are allowed"
    );
    assert_eq!(
        fx.error(&format!(
            "{FILES}[plugins.files.tools.read-text]\nname = \"{}\"\n",
            "x".repeat(65)
        )),
        format!(
            "4:8: plugins.files.tools.read-text.name: invalid tool name \"{}\": it must be 1 to 64 characters long",
            "x".repeat(65)
        )
    );
    assert_eq!(
        fx.error(&format!("{FILES}[plugins.files.tools.read_text]\n")),
        "3:1: plugins.files.tools.read_text: invalid function name \"read_text\": expected a WIT function name in kebab-case, such as \"read-text\""
    );
}

#[test]
fn duplicate_tool_name_override_is_an_error() {
    let fx = Fixture::new();
    let text = format!(
        "{FILES}[plugins.files.tools.read-text]\nname = \"read\"\n\n[plugins.fetch]\ncomponent = \"plugins/fetch.wasm\"\ntools.get = {{ name = \"read\" }}\n"
    );
    assert_eq!(
        fx.error(&text),
        "8:22: plugins.fetch.tools.get.name: tool name \"read\" is already used by `plugins.files.tools.read-text.name` (line 4)"
    );
}

#[test]
fn unset_variable_is_an_error_naming_it() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error(&format!(
            "{FILES}dirs = [{{ host = \"${{DATA_DIR}}/x\", guest = \"/d\" }}]\n"
        )),
        "3:18: plugins.files.dirs[0].host: environment variable `DATA_DIR` is not set (give a default with `${DATA_DIR:-default}`, or `$${` for a literal `${`)"
    );
    assert_eq!(
        fx.error("[server]\nname = \"${oops\"\n"),
        "2:8: server.name: unterminated `${` (expected `}`; write `$${` for a literal `${`)"
    );
}

#[test]
fn variables_expand_in_every_string() {
    let fx = Fixture::new();
    let m = fx.ok(
        "[server]\nname = \"${NAME:-warden-${}\"\n[cache]\ndir = \"${HOME}/c\"\n\
         [plugins.files]\ncomponent = \"${PLUGINS:-plugins}/files.wasm\"\nmemory = \"${MEM}\"\nfuel = \"${FUEL}\"\n\
         prefix = \"${PREFIX:-fs}\"\ndirs = [{ host = \"${DATA}\", guest = \"${GUEST:-/data}\", mode = \"${MODE:-rw}\" }]\n\
         env = { HOME = \"${HOME}\", E = \"${EMPTY:-default}\" }\n\
         tools.list = { name = \"${TOOL:-ls}\", description = \"Lists ${DATA:-}$$\" }\n",
    );
    // `${NAME:-warden-${}` takes the default literally, up to the first `}`.
    assert_eq!(m.server.name, "warden-${");
    assert_eq!(m.cache_dir, Path::new("/home/op/c"));
    let files = &m.plugins[0];
    assert_eq!(files.component, fx.path("plugins/files.wasm"));
    assert_eq!((files.limits.memory, files.limits.fuel), (32 << 20, 5_000));
    assert_eq!(files.prefix, "fs");
    assert_eq!(
        (
            files.dirs[0].host.clone(),
            files.dirs[0].guest.as_str(),
            files.dirs[0].mode
        ),
        (fx.path("data"), "/data", DirMode::ReadWrite)
    );
    assert_eq!(
        files.env,
        [
            ("HOME".to_owned(), "/home/op".to_owned()),
            ("E".to_owned(), "default".to_owned())
        ]
    );
    assert_eq!(files.tools[0].name.as_deref(), Some("ls"));
    assert_eq!(
        files.tools[0].description,
        Some(format!("Lists {}$", fx.root().join("data").display()))
    );
}

#[test]
fn tilde_and_empty_paths_are_errors() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error("[cache]\ndir = \"~/cache\"\n"),
        "2:7: cache.dir: path \"~/cache\" starts with `~`, which is not expanded: write `${HOME}` instead"
    );
    assert_eq!(
        fx.error("[plugins.files]\ncomponent = \"\"\n"),
        "2:13: plugins.files.component: path is empty"
    );
}

#[test]
fn server_values_are_checked() {
    let fx = Fixture::new();
    assert_eq!(
        fx.error("[server]\nname = \"\"\n"),
        "2:8: server.name: must not be empty"
    );
    assert_eq!(
        fx.error("[server]\nprincipal = 7\n"),
        "2:13: server.principal: expected a string, found an integer"
    );
    assert_eq!(
        fx.error("server = 1\n"),
        "1:10: server: expected a table, found an integer"
    );
    assert_eq!(
        fx.error("[server]\ninstructions = \"a\\u0007b\"\n"),
        "2:16: server.instructions: contains a control character other than a newline or a tab"
    );
    let long = "x".repeat(Server::MAX_INSTRUCTIONS + 1);
    assert_eq!(
        fx.error(&format!("[server]\ninstructions = \"{long}\"\n")),
        format!(
            "2:16: server.instructions: is {} bytes; at most {} are allowed",
            long.len(),
            Server::MAX_INSTRUCTIONS
        )
    );
}

#[test]
fn server_instructions_may_span_lines() {
    let fx = Fixture::new();
    let m = fx.ok("[server]\ninstructions = \"\"\"\nUse files__list first.\n\tThen read.\"\"\"\n");
    assert_eq!(
        m.server.instructions,
        "Use files__list first.\n\tThen read."
    );
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let fx = Fixture::new();
    let errors = fx.errors(
        "[server]\nnmae = \"x\"\n\n[plugins.files]\nmemory = \"lots\"\ntimeout = \"5\"\nsha256 = \"x\"\n\
         dirs = [{ host = \"nope\", guest = \"rel\", mode = \"w\" }]\n\n[plugins.Bad]\ncomponent = \"plugins/files.wasm\"\n",
    );
    let heads: Vec<String> = errors
        .iter()
        .map(|e| e.splitn(3, ": ").take(2).collect::<Vec<_>>().join(": "))
        .collect();
    assert_eq!(
        heads,
        [
            "2:1: server.nmae",
            "4:1: plugins.files",
            "5:10: plugins.files.memory",
            "6:11: plugins.files.timeout",
            "7:10: plugins.files.sha256",
            "8:18: plugins.files.dirs[0].host",
            "8:34: plugins.files.dirs[0].guest",
            "8:48: plugins.files.dirs[0].mode",
            "10:1: plugins.Bad",
        ]
    );
}

#[test]
fn error_display_matches_the_documented_format() {
    let fx = Fixture::new();
    let component = fx.path("plugins/files.wasm");
    let text = format!(
        "[plugins.files]\ncomponent = {:?}\nmemory = \"lots\"\n",
        component.display().to_string()
    );
    let error = Manifest::parse(&text, Path::new("warden.toml")).expect_err("rejected");
    assert_eq!(
        error.to_string(),
        "warden.toml:3:10: plugins.files.memory: invalid size \"lots\": expected a number of bytes such as 65536 or \"64MiB\""
    );
}

#[test]
fn load_reads_the_file_and_reports_a_missing_one() {
    let fx = Fixture::new();
    std::fs::write(fx.manifest_path(), FILES).expect("write manifest");
    let m = Manifest::load(&fx.manifest_path()).expect("loads");
    assert_eq!(m.plugins[0].component, fx.path("plugins/files.wasm"));

    let missing = fx.root().join("absent.toml");
    let error = Manifest::load(&missing).expect_err("missing file");
    assert_eq!(error.errors.len(), 1);
    assert_eq!(error.errors[0].location, None);
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot read manifest {}: ", missing.display())),
        "{error}"
    );

    std::fs::write(fx.manifest_path(), b"name = \"\xff\"\n").expect("write manifest");
    let error = Manifest::load(&fx.manifest_path()).expect_err("not UTF-8");
    assert!(
        error.to_string().ends_with("it is not valid UTF-8"),
        "{error}"
    );
}

#[test]
fn later_problems_can_point_at_manifest_keys() {
    let fx = Fixture::new();
    let m = fx.ok(&format!(
        "{FILES}[plugins.files.tools.read-text]\nname = \"read\"\n"
    ));
    let tool = &m.plugins[0].tools[0];
    let diagnostic = tool
        .location
        .diagnostic("tool name \"read\" is also used by plugin `other`");
    assert_eq!(
        diagnostic.location.as_ref().map(|l| (l.line, l.column)),
        Some((3, 1))
    );
    assert!(diagnostic.to_string().ends_with(
        ":3:1: plugins.files.tools.read-text: tool name \"read\" is also used by plugin `other`"
    ));
}

#[test]
fn network_grants_and_secrets_load_with_every_value() {
    let fx = Fixture::new();
    std::fs::write(fx.dir.path().join("token.txt"), "file-secret\n").expect("write");
    let m = fx.ok(&format!(
        "{FILES}allow_hosts = [\"https://api.example.com\", \"http://127.0.0.1:8080\", \"https://*.wikipedia.org\", \"tcp://127.0.0.1:5432\", \"http://10.0.0.0/8:*\"]\n\
         secrets = {{ API_TOKEN = {{ env = \"MEM\" }}, FILE_TOKEN = {{ file = \"token.txt\" }} }}\n\
         env = {{ LANG = \"C\" }}\n\
         [plugins.files.net]\nconnect_timeout = \"2s\"\nrequest_timeout = \"1m\"\nmax_response = \"512KiB\"\nmax_requests = 3\nmax_datagrams = 40\n"
    ));
    let files = &m.plugins[0];
    let hosts: Vec<&str> = files.allow_hosts.iter().map(|p| p.as_str()).collect();
    assert_eq!(
        hosts,
        [
            "https://api.example.com",
            "http://127.0.0.1:8080",
            "https://*.wikipedia.org",
            "tcp://127.0.0.1:5432",
            "http://10.0.0.0/8:*"
        ]
    );
    assert_eq!(
        files.net,
        NetLimits {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(60),
            max_response: 512 << 10,
            max_requests: 3,
            max_datagrams: 40,
        }
    );
    let secrets: Vec<(&str, &SecretSource)> = files
        .secrets
        .iter()
        .map(|s| (s.name.as_str(), &s.source))
        .collect();
    assert_eq!(
        secrets,
        [
            ("API_TOKEN", &SecretSource::Env("MEM".into())),
            ("FILE_TOKEN", &SecretSource::File(fx.path("token.txt")))
        ]
    );
    // One trailing newline of a secret file is dropped.
    assert_eq!(
        files.secret_values().collect::<Vec<_>>(),
        ["32MiB", "file-secret"]
    );
    assert_eq!(files.secrets[1].location.line, 4);
    assert_eq!(
        files.secrets[1].location.key,
        "plugins.files.secrets.FILE_TOKEN"
    );
    assert_eq!(files.location_of("allow_hosts").line, 3);
    // Debug output of the whole manifest never shows a secret value.
    let printed = format!("{m:?}");
    assert!(
        !printed.contains("file-secret") && printed.contains("SecretValue(<redacted>)"),
        "{printed}"
    );
}

#[test]
fn network_grants_default_to_nothing() {
    let fx = Fixture::new();
    let files = &fx.ok(FILES).plugins[0];
    assert!(files.allow_hosts.is_empty() && files.secrets.is_empty());
    assert_eq!(files.net, NetLimits::default());
    assert_eq!(
        NetLimits::default(),
        NetLimits {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_response: 4 << 20,
            max_requests: 16,
            max_datagrams: 1000,
        }
    );
}

#[test]
fn bad_host_patterns_are_reported_at_their_item() {
    let fx = Fixture::new();
    let errors = fx.errors(&format!(
        "{FILES}allow_hosts = [\"https://api.example.com\", \"ftp://x.org\", \"https://example.com/v1\", \"tcp://db\", \"http://2130706433\", 7]\n"
    ));
    assert_eq!(
        errors,
        [
            "3:43: plugins.files.allow_hosts[1]: invalid host pattern \"ftp://x.org\": unknown scheme `ftp`: expected http, https, tcp, udp or *",
            "3:58: plugins.files.allow_hosts[2]: invalid host pattern \"https://example.com/v1\": a pattern has no path: remove `/v1` (it grants the whole host)",
            "3:84: plugins.files.allow_hosts[3]: invalid host pattern \"tcp://db\": `tcp` patterns need a port, such as \"tcp://db:5432\" (or `:*` for any port)",
            "3:96: plugins.files.allow_hosts[4]: invalid host pattern \"http://2130706433\": host `2130706433` is an unusual spelling of the IP address 127.0.0.1; only the dotted decimal form (127.0.0.1) is accepted",
            "3:117: plugins.files.allow_hosts[5]: expected a string, found an integer",
        ]
    );
    assert_eq!(
        fx.error(&format!(
            "{FILES}allow_hosts = \"https://api.example.com\"\n"
        )),
        "3:15: plugins.files.allow_hosts: expected an array, found a string"
    );
}

#[test]
fn bad_net_limits_are_errors() {
    let fx = Fixture::new();
    let cases = [
        (
            "connect_timeout = \"0s\"",
            "4:19: plugins.files.net.connect_timeout: connect_timeout must be greater than 0",
        ),
        (
            "connect_timeout = \"10m\"",
            "4:19: plugins.files.net.connect_timeout: connect_timeout must be at most 5m, got 10m",
        ),
        (
            "request_timeout = 5",
            "4:19: plugins.files.net.request_timeout: expected a duration string such as \"5s\" or \"250ms\"; a bare number has no unit",
        ),
        (
            "max_response = \"2GiB\"",
            "4:16: plugins.files.net.max_response: max_response must be between 1KiB and 1GiB, got 2GiB",
        ),
        (
            "max_requests = 0",
            "4:16: plugins.files.net.max_requests: max_requests must be between 1 and 100000, got 0",
        ),
        (
            "max_datagrams = 0",
            "4:17: plugins.files.net.max_datagrams: max_datagrams must be between 1 and 1000000, got 0",
        ),
        (
            "timeout = \"1s\"",
            "4:1: plugins.files.net.timeout: unknown key `timeout`; expected one of `connect_timeout`, `request_timeout`, `max_response`, `max_requests` or `max_datagrams`",
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(
            fx.error(&format!("{FILES}[plugins.files.net]\n{line}\n")),
            expected,
            "{line}"
        );
    }
}

#[test]
fn bad_secrets_are_errors_that_never_show_a_value() {
    let fx = Fixture::new();
    std::fs::write(fx.dir.path().join("empty.txt"), "\n").expect("write");
    let cases = [
        (
            "secrets = { T = { env = \"NOPE\" } }",
            "3:25: plugins.files.secrets.T.env: environment variable `NOPE` is not set (warden reads secret `T` from it)",
        ),
        (
            "secrets = { T = { env = \"EMPTY\" } }",
            "3:17: plugins.files.secrets.T: secret `T` is empty (env EMPTY)",
        ),
        (
            "secrets = { T = { file = \"empty.txt\" } }",
            "3:17: plugins.files.secrets.T: secret `T` is empty (file {root}/empty.txt)",
        ),
        (
            "secrets = { T = { file = \"missing.txt\" } }",
            "3:26: plugins.files.secrets.T.file: secret file \"missing.txt\" ({root}/missing.txt) not found",
        ),
        (
            "secrets = { T = { env = \"MEM\", file = \"notes.txt\" } }",
            "3:32: plugins.files.secrets.T.file: give either `env` or `file`, not both",
        ),
        (
            "secrets = { T = {} }",
            "3:17: plugins.files.secrets.T: missing `env` or `file`: write T = { env = \"HOST_VAR\" } or T = { file = \"path\" }",
        ),
        (
            "secrets = { T = \"MEM\" }",
            "3:17: plugins.files.secrets.T: expected a table such as { env = \"HOST_VAR\" } or { file = \"path\" }, found a string",
        ),
        (
            "secrets = { T = { env = \"MEM\", value = \"x\" } }",
            "3:32: plugins.files.secrets.T.value: unknown key `value`; expected one of `env` or `file`",
        ),
        (
            "secrets = { \"MY-T\" = { env = \"MEM\" } }",
            "3:13: plugins.files.secrets.MY-T: invalid environment variable name \"MY-T\": expected letters, digits and `_`, not starting with a digit",
        ),
        (
            "env = { T = \"x\" }\nsecrets = { T = { env = \"MEM\" } }",
            "4:13: plugins.files.secrets.T: `T` is also set in `env`: a variable comes from `env` or from `secrets`, not both",
        ),
    ];
    let root = fx.root().display().to_string();
    for (line, expected) in cases {
        let error = fx.error(&format!("{FILES}{line}\n"));
        assert_eq!(error, expected.replace("{root}", &root), "{line}");
        assert!(!error.contains("32MiB"), "{error}");
    }
}

// --- The gate's keys (issue 4) --------------------------------------------------------------

#[test]
fn gate_keys_load_with_every_value() {
    let fx = Fixture::new();
    let m = fx.ok(r#"
[server]
principal = "me"
roles = ["reader", "writer"]

[limits]
max_argument_bytes = "64KiB"
max_depth = 8
max_string = 1024
max_array = 100
tool_rate = { per_minute = 600 }

[filters]
redact = ["email", "api-key", "secrets", "employee-id"]
custom = [{ name = "employee-id", pattern = "EMP-[0-9]{6}" }]

[audit]
path = "audit/warden.jsonl"
rotate = "1MiB"
fsync = true
refusal_rate = { per_minute = 30, burst = 5 }

[plugins.files]
component = "plugins/files.wasm"
roles = ["reader"]
rate = { per_minute = 120, burst = 20 }
tool_rate = { per_minute = 1000, burst = 50 }
concurrency = 4
queue = 8
redact = ["jwt", "secrets"]
max_output_mode = "truncate"
max_events = 20
max_event_bytes = "4KiB"

[plugins.files.tools.write-text]
roles = ["writer"]

[plugins.files.tools."delete-*"]
roles = ["admin"]

[plugins.files.tools."*"]
roles = ["*"]

[plugins.fetch]
component = "plugins/fetch.wasm"
"#);
    assert_eq!(m.server.roles, ["reader", "writer"]);
    assert_eq!(
        m.limits,
        GlobalLimits {
            max_argument_bytes: 64 << 10,
            max_depth: 8,
            max_string: 1024,
            max_array: 100,
            tool_rate: Some(Rate {
                per_minute: 600,
                burst: 600
            }),
        }
    );
    assert_eq!(
        m.filters.redact.as_deref(),
        Some(
            &[
                "email",
                "aws-key",
                "github-token",
                "slack-token",
                "openai-key",
                "google-api-key",
                "stripe-key",
                "secrets",
                "employee-id"
            ]
            .map(String::from)[..]
        )
    );
    assert_eq!(m.filters.custom.len(), 1);
    assert_eq!(
        (
            m.filters.custom[0].name.as_str(),
            m.filters.custom[0].pattern.as_str()
        ),
        ("employee-id", "EMP-[0-9]{6}")
    );
    let audit = m.audit.as_ref().expect("audit");
    assert_eq!(audit.path, fx.root().join("audit/warden.jsonl"));
    assert_eq!((audit.rotate, audit.fsync), (1 << 20, true));
    assert_eq!(
        audit.refusal_rate,
        Rate {
            per_minute: 30,
            burst: 5
        }
    );

    let files = m.plugin("files").expect("files");
    assert_eq!(
        files.policy,
        PluginPolicy {
            roles: Some(vec!["reader".into()]),
            rate: Some(Rate {
                per_minute: 120,
                burst: 20
            }),
            tool_rate: Some(Rate {
                per_minute: 1000,
                burst: 50
            }),
            concurrency: Some(4),
            queue: 8,
            redact: Some(vec!["jwt".into(), "secrets".into()]),
            overflow: OutputOverflow::Truncate,
            max_events: 20,
            max_event_bytes: 4096,
            approval: Default::default(),
            data: Default::default(),
        }
    );
    // An exact table wins, then the first matching glob, then the plugin.
    let roles = |function: &str| files.tool_roles(function).map(<[String]>::to_vec);
    assert_eq!(roles("write-text"), Some(vec!["writer".to_owned()]));
    assert_eq!(roles("delete-all"), Some(vec!["admin".to_owned()]));
    assert_eq!(roles("read-text"), Some(vec!["*".to_owned()]));
    assert!(
        files.tool_override("delete-*").is_none(),
        "globs carry only roles"
    );
    let fetch = m.plugin("fetch").expect("fetch");
    assert_eq!(fetch.policy, PluginPolicy::default());
    assert_eq!(fetch.tool_roles("get"), None);
}

#[test]
fn gate_keys_default_to_open_unlimited_and_unaudited() {
    let fx = Fixture::new();
    let m = fx.ok(FILES);
    assert!(m.server.roles.is_empty());
    assert_eq!(m.limits, GlobalLimits::default());
    assert_eq!(m.limits.max_argument_bytes, 1 << 20);
    assert_eq!(m.filters, Filters::default());
    assert_eq!(m.audit, None);
    let files = m.plugin("files").expect("files");
    assert_eq!(files.policy.queue, PluginPolicy::DEFAULT_QUEUE);
    assert_eq!(files.policy.overflow, OutputOverflow::Refuse);
    assert_eq!(files.tool_roles("read-text"), None);
    let audit = fx.ok("[audit]\npath = \"a.jsonl\"\n").audit.expect("audit");
    assert_eq!((audit.rotate, audit.fsync), (Audit::DEFAULT_ROTATE, false));
    assert_eq!(audit.refusal_rate, Audit::DEFAULT_REFUSAL_RATE);
}

#[test]
fn bad_gate_keys_are_errors_at_their_line() {
    let fx = Fixture::new();
    let cases = [
        (
            "roles = [\"\"]",
            "3:10: plugins.files.roles[0]: a role must not be empty",
        ),
        (
            "roles = [\"a b\"]",
            "3:10: plugins.files.roles[0]: invalid role \"a b\": roles contain no spaces or control characters",
        ),
        (
            "roles = [\"a\", \"a\"]",
            "3:15: plugins.files.roles[1]: role \"a\" is listed twice",
        ),
        (
            "rate = 5",
            "3:8: plugins.files.rate: expected a table such as { per_minute = 120, burst = 20 }, found an integer",
        ),
        (
            "rate = { burst = 5 }",
            "3:1: plugins.files.rate: missing required key `per_minute`",
        ),
        (
            "rate = { per_minute = 0 }",
            "3:23: plugins.files.rate.per_minute: per_minute must be between 1 and 1000000, got 0",
        ),
        (
            "rate = { per_minute = 5, brust = 1 }",
            "3:26: plugins.files.rate.brust: unknown key `brust`; did you mean `burst`?",
        ),
        (
            "concurrency = 0",
            "3:15: plugins.files.concurrency: concurrency must be between 1 and 10000, got 0",
        ),
        (
            "queue = -1",
            "3:9: plugins.files.queue: queue must be between 0 and 100000, got -1",
        ),
        (
            "max_events = 10001",
            "3:14: plugins.files.max_events: max_events must be between 0 and 10000, got 10001",
        ),
        (
            "max_event_bytes = \"1GiB\"",
            "3:19: plugins.files.max_event_bytes: max_event_bytes must be between 0B and 16MiB, got 1GiB",
        ),
        (
            "max_output_mode = \"cut\"",
            "3:19: plugins.files.max_output_mode: invalid max_output_mode \"cut\": expected \"refuse\" or \"truncate\"",
        ),
        (
            "redact = [\"emial\"]",
            "3:1: plugins.files.redact: unknown detector \"emial\"; expected one of email, credit-card, ssn, aws-key, github-token, slack-token, openai-key, google-api-key, stripe-key, private-key, jwt, api-key, secrets",
        ),
        (
            "[plugins.files.tools.\"write-*\"]\nname = \"w\"",
            "4:1: plugins.files.tools.\"write-*\".name: unknown key `name`; expected one of `roles`",
        ),
        (
            "[plugins.files.tools.\"Write_*\"]\nroles = [\"x\"]",
            "3:1: plugins.files.tools.\"Write_*\": invalid glob \"Write_*\": function names are kebab-case, so a glob holds lowercase letters, digits, `-`, `*` and `?`",
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(fx.error(&format!("{FILES}{line}\n")), expected, "{line}");
    }
}

#[test]
fn bad_global_gate_sections_are_errors_at_their_line() {
    let fx = Fixture::new();
    let cases = [
        (
            "[server]\nroles = \"admin\"",
            "2:9: server.roles: expected an array, found a string",
        ),
        (
            "[limits]\nmax_depth = 0",
            "2:13: limits.max_depth: max_depth must be between 1 and 128, got 0",
        ),
        (
            "[limits]\nmax_string = \"1B\"",
            "2:14: limits.max_string: max_string must be between 16B and 64MiB, got 1B",
        ),
        (
            "[limits]\nmax_arrays = 5",
            "2:1: limits.max_arrays: unknown key `max_arrays`; did you mean `max_array`?",
        ),
        (
            "[filters]\nredact = [\"nope\"]",
            "2:10: filters.redact: unknown detector \"nope\"; expected one of email, credit-card, ssn, aws-key, github-token, slack-token, openai-key, google-api-key, stripe-key, private-key, jwt, api-key, secrets",
        ),
        (
            "[filters]\ncustom = [{ name = \"x\", pattern = \"(\" }]",
            "2:35: filters.custom[0].pattern: invalid regular expression \"(\": regex parse error:     (     ^ error: unclosed group",
        ),
        (
            "[filters]\ncustom = [{ name = \"x\", pattern = \"a*\" }]",
            "2:35: filters.custom[0].pattern: pattern \"a*\" matches the empty string",
        ),
        (
            "[filters]\ncustom = [{ name = \"email\", pattern = \"x\" }]",
            "2:20: filters.custom[0].name: detector name \"email\" is taken by a built-in detector",
        ),
        (
            "[filters]\ncustom = [{ name = \"x\", pattern = \"x\" }, { name = \"x\", pattern = \"y\" }]",
            "2:51: filters.custom[1].name: detector name \"x\" is already used",
        ),
        (
            "[filters]\ncustom = [{ name = \"X\", pattern = \"x\" }]",
            "2:20: filters.custom[0].name: invalid detector name \"X\": expected a lowercase letter, then up to 31 lowercase letters, digits or `-`",
        ),
        (
            "[audit]\nrotate = \"1MiB\"",
            "1:1: audit: missing required key `path`",
        ),
        (
            "[audit]\npath = \"data\"",
            "2:8: audit.path: audit path \"data\" is a directory; name a file such as \"audit/warden.jsonl\"",
        ),
        (
            "[audit]\npath = \"a.jsonl\"\nrotate = \"1KiB\"",
            "3:10: audit.rotate: rotate must be between 4KiB and 1TiB, got 1KiB",
        ),
        (
            "[audit]\npath = \"a.jsonl\"\nfsync = \"yes\"",
            "3:9: audit.fsync: expected true or false, found a string",
        ),
        (
            "[audit]\npath = \"a.jsonl\"\nrefusal_rate = { per_minute = 0 }",
            "3:31: audit.refusal_rate.per_minute: per_minute must be between 1 and 1000000, got 0",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(fx.error(&format!("{text}\n")), expected, "{text}");
    }
    // A plugin may name a custom detector.
    let m = fx.ok(&format!(
        "[filters]\ncustom = [{{ name = \"emp\", pattern = \"EMP-[0-9]+\" }}]\n\n{FILES}redact = [\"emp\"]\n"
    ));
    assert_eq!(m.plugins[0].policy.redact, Some(vec!["emp".to_owned()]));
}

#[test]
fn globs_match_whole_names() {
    for (pattern, name, matches) in [
        ("*", "read-text", true),
        ("read-*", "read-text", true),
        ("read-*", "reads", false),
        ("*-text", "write-text", true),
        ("?ist", "list", true),
        ("?ist", "lists", false),
        ("a*b*c", "aXbYbZc", true),
        ("a*b*c", "aXbYbZ", false),
        ("", "", true),
    ] {
        assert_eq!(glob_matches(pattern, name), matches, "{pattern} ~ {name}");
    }
}

const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

#[test]
fn http_and_auth_default_to_stdio_and_no_credentials() {
    let fx = Fixture::new();
    let m = fx.ok(FILES);
    assert_eq!(m.http, Http::default());
    assert_eq!(m.http.listen, None);
    assert_eq!(m.http.allowed_hosts, ["localhost", "127.0.0.1", "[::1]"]);
    assert!(m.http.allowed_origins.is_empty());
    assert_eq!(m.http.max_body, 4 << 20);
    assert_eq!(m.http.shutdown_grace, Duration::from_secs(30));
    assert_eq!(m.http.header_timeout, Duration::from_secs(10));
    assert_eq!(m.http.idle_timeout, Duration::from_secs(60));
    assert_eq!(m.http.tls_handshake_timeout, Duration::from_secs(10));
    assert_eq!(m.http.max_connections, None);
    assert_eq!(m.http.max_connections_per_client, None);
    assert_eq!(m.http.max_sessions, 1024);
    assert_eq!(m.http.max_sessions_per_principal, 256);
    assert_eq!(m.http.max_client_info, 8 << 10);
    assert_eq!(m.auth, Auth::default());
    assert!(!m.auth.is_configured());
}

#[test]
fn http_and_auth_load_with_every_value() {
    let fx = Fixture::new();
    std::fs::write(fx.dir.path().join("cert.pem"), "cert").expect("write");
    std::fs::write(fx.dir.path().join("key.pem"), "key").expect("write");
    std::fs::write(fx.dir.path().join("jwks.json"), "{}").expect("write");
    let m = fx.ok(&format!(
        r#"
[http]
listen = "0.0.0.0:8443"
allowed_hosts = ["MCP.example.com", "[::1]"]
allowed_origins = ["https://App.example.com:8443"]
max_body = "1MiB"
public_url = "https://mcp.example.com/mcp"
tls = {{ cert = "cert.pem", key = "./key.pem" }}
shutdown_grace = "5s"
header_timeout = "2s"
idle_timeout = "30s"
tls_handshake_timeout = "3s"
max_connections = 100
max_connections_per_client = 10
max_sessions = 50
max_sessions_per_principal = 5
max_client_info = "2KiB"
sse_close_after = "90s"

[[auth.api_keys]]
principal = "ci-bot"
roles = ["reader", "writer"]
sha256 = "{}"

[[auth.api_keys]]
principal = "ann"
sha256 = "{DIGEST}"

[auth.oauth]
issuer = "https://idp.example.com/"
jwks_file = "jwks.json"
algorithms = ["ES256", "EdDSA"]
leeway = "0s"
principal_claim = "email"
required_scopes = ["mcp"]
roles_claim = "groups"
authorization_servers = ["https://idp.example.com/", "https://backup.example.com"]

[auth.oauth.scope_roles]
"tools:read" = ["reader"]
"tools:write" = ["reader", "writer"]
"#,
        DIGEST.to_uppercase().replace("9F86", "0000")
    ));
    assert_eq!(
        m.http,
        Http {
            listen: Some("0.0.0.0:8443".parse().expect("addr")),
            allowed_hosts: vec!["mcp.example.com".into(), "[::1]".into()],
            allowed_origins: vec!["https://app.example.com:8443".into()],
            max_body: 1 << 20,
            public_url: Some("https://mcp.example.com/mcp".into()),
            tls: Some(Tls {
                cert: fx.path("cert.pem"),
                key: fx.path("key.pem"),
            }),
            shutdown_grace: Duration::from_secs(5),
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(3),
            max_connections: Some(100),
            max_connections_per_client: Some(10),
            max_sessions: 50,
            max_sessions_per_principal: 5,
            max_client_info: 2 << 10,
            sse_close_after: Some(Duration::from_secs(90)),
        }
    );
    let keys = &m.auth.api_keys;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].principal, "ci-bot");
    assert_eq!(keys[0].roles, ["reader", "writer"]);
    assert_eq!(keys[0].sha256[..2], [0, 0]);
    assert_eq!(keys[0].location.key, "auth.api_keys[0]");
    assert_eq!(keys[0].location.line, 20);
    assert_eq!(
        (keys[1].principal.as_str(), keys[1].roles.len()),
        ("ann", 0)
    );
    assert_eq!(hex::encode(keys[1].sha256), DIGEST);
    let oauth = m.auth.oauth.expect("oauth");
    assert_eq!(oauth.issuer, "https://idp.example.com/");
    assert_eq!(oauth.audience, ["https://mcp.example.com/mcp"]);
    assert_eq!(oauth.jwks, JwksSource::File(fx.path("jwks.json")));
    assert_eq!(oauth.algorithms, ["ES256", "EdDSA"]);
    assert_eq!(oauth.leeway, Duration::ZERO);
    assert_eq!(oauth.principal_claim, "email");
    assert_eq!(oauth.required_scopes, ["mcp"]);
    assert_eq!(oauth.roles_claim.as_deref(), Some("groups"));
    assert_eq!(oauth.scope_roles["tools:read"], ["reader"]);
    assert_eq!(oauth.scope_roles["tools:write"], ["reader", "writer"]);
    assert_eq!(oauth.authorization_servers.len(), 2);
    assert_eq!(oauth.location.key, "auth.oauth");
}

#[test]
fn oauth_defaults() {
    let fx = Fixture::new();
    let m = fx.ok(
        "[auth.oauth]\nissuer = \"https://idp.example.com\"\naudience = \"warden\"\n\
         jwks_url = \"https://idp.example.com/jwks\"\n",
    );
    assert!(m.auth.is_configured());
    let oauth = m.auth.oauth.expect("oauth");
    assert_eq!(oauth.audience, ["warden"]);
    assert_eq!(
        oauth.jwks,
        JwksSource::Url("https://idp.example.com/jwks".into())
    );
    assert_eq!(oauth.algorithms, ["RS256", "ES256"]);
    assert_eq!(oauth.leeway, Duration::from_secs(60));
    assert_eq!(oauth.principal_claim, "sub");
    assert!(oauth.required_scopes.is_empty() && oauth.scope_roles.is_empty());
    assert_eq!(oauth.roles_claim, None);
    assert_eq!(oauth.authorization_servers, ["https://idp.example.com"]);
    // A local identity provider may serve its keys over plain HTTP on loopback.
    let m = fx.ok(
        "[auth.oauth]\nissuer = \"http://127.0.0.1:9000\"\naudience = [\"a\", \"b\"]\n\
         jwks_url = \"http://127.0.0.1:9000/jwks\"\n",
    );
    assert_eq!(m.auth.oauth.expect("oauth").audience, ["a", "b"]);
}

#[test]
fn bad_http_and_auth_keys_are_errors_at_their_line() {
    let fx = Fixture::new();
    let oauth = "[auth.oauth]\nissuer = \"https://idp.example.com\"\naudience = \"w\"\n";
    let jwks = "jwks_url = \"https://idp.example.com/jwks\"\n";
    let cases = [
        (
            "[http]\nlisten = \"localhost:80\"".to_owned(),
            "2:10: http.listen: invalid address \"localhost:80\": expected IP:PORT such as \
             \"127.0.0.1:8080\" or \"[::1]:8080\" (an IP address, not a host name)"
                .to_owned(),
        ),
        (
            "[http]\nlisten = 8080".to_owned(),
            "2:10: http.listen: expected a string, found an integer".to_owned(),
        ),
        (
            "[http]\nallowed_hosts = [\"https://x.example\"]".to_owned(),
            "2:18: http.allowed_hosts[0]: invalid host \"https://x.example\": write the host \
             name alone, such as \"mcp.example.com\" (not a URL)"
                .to_owned(),
        ),
        (
            "[http]\nallowed_hosts = [\"x.example:8080\"]".to_owned(),
            "2:18: http.allowed_hosts[0]: invalid host \"x.example:8080\": allowed hosts match \
             any port; write the host without one"
                .to_owned(),
        ),
        (
            "[http]\nallowed_hosts = [\"::1\"]".to_owned(),
            "2:18: http.allowed_hosts[0]: invalid host \"::1\": allowed hosts match any port; \
             write the host without one"
                .to_owned(),
        ),
        (
            "[http]\nallowed_hosts = [\"a\", \"A\"]".to_owned(),
            "2:23: http.allowed_hosts[1]: host \"A\" is listed twice".to_owned(),
        ),
        (
            "[http]\nallowed_origins = [\"https://app.example.com/\"]".to_owned(),
            "2:20: http.allowed_origins[0]: invalid origin \"https://app.example.com/\": \
             expected `scheme://host[:port]` such as \"https://app.example.com\", with no path \
             (an origin has no trailing `/`)"
                .to_owned(),
        ),
        (
            "[http]\nallowed_origins = [\"ftp://x\"]".to_owned(),
            "2:20: http.allowed_origins[0]: invalid origin \"ftp://x\": the scheme must be \
             http or https"
                .to_owned(),
        ),
        (
            "[http]\nallowed_origins = [\"app.example.com\"]".to_owned(),
            "2:20: http.allowed_origins[0]: invalid origin \"app.example.com\": expected \
             `scheme://host[:port]` such as \"https://app.example.com\""
                .to_owned(),
        ),
        (
            "[http]\nmax_body = \"lots\"".to_owned(),
            "2:12: http.max_body: invalid size \"lots\": expected a number of bytes such as \
             65536 or \"64MiB\""
                .to_owned(),
        ),
        (
            "[http]\nmax_body = 100".to_owned(),
            "2:12: http.max_body: max_body must be between 1KiB and 1GiB, got 100B".to_owned(),
        ),
        (
            "[http]\nheader_timeout = 10".to_owned(),
            "2:18: http.header_timeout: expected a duration string such as \"5s\" or \"250ms\"; \
             a bare number has no unit"
                .to_owned(),
        ),
        (
            "[http]\nidle_timeout = \"0s\"".to_owned(),
            "2:16: http.idle_timeout: idle_timeout must be greater than 0".to_owned(),
        ),
        (
            "[http]\nsse_close_after = \"0s\"".to_owned(),
            "2:19: http.sse_close_after: sse_close_after must be greater than 0".to_owned(),
        ),
        (
            "[server]\npage_size = 0".to_owned(),
            "2:13: server.page_size: page_size must be between 1 and 10000, got 0".to_owned(),
        ),
        (
            "[http]\nmax_connections = 0".to_owned(),
            "2:19: http.max_connections: max_connections must be between 1 and 1000000, got 0"
                .to_owned(),
        ),
        (
            "[http]\nmax_connections = 10\nmax_connections_per_client = 11".to_owned(),
            "3:30: http.max_connections_per_client: max_connections_per_client must be at most \
             max_connections"
                .to_owned(),
        ),
        (
            "[http]\nmax_sessions = 10\nmax_sessions_per_principal = 20".to_owned(),
            "3:30: http.max_sessions_per_principal: max_sessions_per_principal must be at most \
             max_sessions"
                .to_owned(),
        ),
        (
            "[http]\nmax_client_info = \"2MiB\"".to_owned(),
            "2:19: http.max_client_info: max_client_info must be between 1KiB and 1MiB, got 2MiB"
                .to_owned(),
        ),
        (
            "[http]\npublic_url = \"/mcp\"".to_owned(),
            "2:14: http.public_url: invalid URL \"/mcp\": expected an absolute URL such as \
             \"https://mcp.example.com/mcp\""
                .to_owned(),
        ),
        (
            "[http]\npublic_url = \"https://x.example/mcp?a=1\"".to_owned(),
            "2:14: http.public_url: invalid URL \"https://x.example/mcp?a=1\": a resource URL \
             has no query or fragment"
                .to_owned(),
        ),
        (
            "[http]\ntls = { cert = \"nope.pem\", key = \"notes.txt\" }".to_owned(),
            format!(
                "2:16: http.tls.cert: certificate file \"nope.pem\" ({}) not found",
                fx.root().join("nope.pem").display()
            ),
        ),
        (
            "[http]\ntls = { cert = \"notes.txt\" }".to_owned(),
            "2:1: http.tls: missing required key `key`".to_owned(),
        ),
        (
            "[http]\nshutdown_grace = \"2h\"".to_owned(),
            "2:18: http.shutdown_grace: shutdown_grace must be at most 1h, got 2h".to_owned(),
        ),
        (
            "[http]\nlisten_on = \"127.0.0.1:1\"".to_owned(),
            "2:1: http.listen_on: unknown key `listen_on`; did you mean `listen`?".to_owned(),
        ),
        (
            "[[auth.api_keys]]\nprincipal = \"ann\"".to_owned(),
            "1:1: auth.api_keys[0]: missing required key `sha256`".to_owned(),
        ),
        (
            "[[auth.api_keys]]\nprincipal = \"ann\"\nsha256 = \"abc\"".to_owned(),
            "3:10: auth.api_keys[0].sha256: expected the key's SHA-256 digest as 64 hex digits"
                .to_owned(),
        ),
        (
            "[[auth.api_keys]]\nprincipal = \"ann\"\nsha256 = \"wdn_secret\"".to_owned(),
            "3:10: auth.api_keys[0].sha256: expected the key's SHA-256 digest as 64 hex \
             digits: this looks like the key itself; never put a key in the manifest, only the \
             digest that `warden keygen` prints"
                .to_owned(),
        ),
        (
            format!(
                "[[auth.api_keys]]\nprincipal = \"a\"\nsha256 = \"{DIGEST}\"\n\n\
                 [[auth.api_keys]]\nprincipal = \"b\"\nsha256 = \"{DIGEST}\""
            ),
            "7:10: auth.api_keys[1].sha256: this digest is already listed for another key: \
             each key is listed once"
                .to_owned(),
        ),
        (
            format!("[[auth.api_keys]]\nprincipal = \"a b\"\nsha256 = \"{DIGEST}\""),
            "2:13: auth.api_keys[0].principal: invalid principal \"a b\": names contain no \
             spaces or control characters"
                .to_owned(),
        ),
        (
            format!("[[auth.api_keys]]\nprincipal = \"a\"\nkey = \"x\"\nsha256 = \"{DIGEST}\""),
            "3:1: auth.api_keys[0].key: unknown key `key`; expected one of `principal`, \
             `roles` or `sha256`"
                .to_owned(),
        ),
        (
            "[auth]\napi_keys = { principal = \"a\" }".to_owned(),
            "2:12: auth.api_keys: expected an array, found a table".to_owned(),
        ),
        (
            format!("[auth.oauth]\naudience = \"w\"\n{jwks}"),
            "1:1: auth.oauth: missing required key `issuer`".to_owned(),
        ),
        (
            format!("[auth.oauth]\nissuer = \"https://idp.example.com\"\n{jwks}"),
            "1:1: auth.oauth: missing `audience`: set it, or `[http] public_url` (the default \
             audience)"
                .to_owned(),
        ),
        (
            oauth.to_owned(),
            "1:1: auth.oauth: missing `jwks_url` or `jwks_file`: where the signing keys are"
                .to_owned(),
        ),
        (
            format!("{oauth}{jwks}jwks_file = \"notes.txt\""),
            "5:1: auth.oauth.jwks_file: set `jwks_url` or `jwks_file`, not both".to_owned(),
        ),
        (
            format!("{oauth}jwks_url = \"http://idp.example.com/jwks\""),
            "4:12: auth.oauth.jwks_url: invalid URL \"http://idp.example.com/jwks\": keys are \
             fetched over https:// (http:// only on a loopback host)"
                .to_owned(),
        ),
        (
            "[auth.oauth]\nissuer = \"idp\"\naudience = \"w\"\njwks_file = \"notes.txt\""
                .to_owned(),
            "2:10: auth.oauth.issuer: invalid URL \"idp\": expected an https:// URL".to_owned(),
        ),
        (
            format!("{oauth}{jwks}algorithms = [\"none\"]"),
            "5:15: auth.oauth.algorithms[0]: algorithm \"none\" is not accepted: unsigned \
             tokens are never accepted"
                .to_owned(),
        ),
        (
            format!("{oauth}{jwks}algorithms = [\"HS256\"]"),
            "5:15: auth.oauth.algorithms[0]: algorithm \"HS256\" is not accepted: HMAC \
             algorithms need a shared secret and are not accepted; use a public-key algorithm"
                .to_owned(),
        ),
        (
            format!("{oauth}{jwks}algorithms = [\"RS1\"]"),
            "5:15: auth.oauth.algorithms[0]: algorithm \"RS1\" is not accepted: expected one \
             of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
                .to_owned(),
        ),
        (
            format!("{oauth}{jwks}algorithms = []"),
            "5:14: auth.oauth.algorithms: at least one algorithm is needed".to_owned(),
        ),
        (
            format!("{oauth}{jwks}leeway = \"10m\""),
            "5:10: auth.oauth.leeway: leeway must be at most 5m, got 10m".to_owned(),
        ),
        (
            format!("{oauth}{jwks}required_scopes = [\"a b\"]"),
            "5:20: auth.oauth.required_scopes[0]: invalid scope \"a b\": scopes are printable \
             ASCII without spaces, quotes or backslashes"
                .to_owned(),
        ),
        (
            format!("{oauth}{jwks}principal_claim = \"\""),
            "5:19: auth.oauth.principal_claim: must not be empty".to_owned(),
        ),
        (
            format!("{oauth}{jwks}\n[auth.oauth.scope_roles]\nread = \"reader\""),
            "7:8: auth.oauth.scope_roles.read: expected an array, found a string".to_owned(),
        ),
        (
            format!("[auth.oauth]\nissuer = \"https://idp.example.com\"\naudience = []\n{jwks}"),
            "3:12: auth.oauth.audience: at least one audience is needed".to_owned(),
        ),
        (
            format!("{oauth}{jwks}issuers = \"x\""),
            "5:1: auth.oauth.issuers: unknown key `issuers`; did you mean `issuer`?".to_owned(),
        ),
    ];
    fx.expect_errors(&cases);
}

const DB: &str = "[plugins.db]\ncomponent = \"plugins/files.wasm\"\n";

#[test]
fn sql_grants_load_with_defaults_resolved_paths_and_hidden_passwords() {
    let fx = Fixture::new();
    std::fs::write(fx.dir.path().join("data/shop.db"), b"").expect("write");
    let m = fx.ok(&format!("{DB}sql = {{ url = \"sqlite:data/shop.db\" }}\n"));
    let sql = m.plugins[0].sql.as_ref().expect("a sql grant");
    assert_eq!(sql.database, SqlDatabase::Sqlite(fx.path("data/shop.db")));
    assert_eq!(sql.mode, SqlMode::ReadOnly);
    assert_eq!(
        (sql.max_rows, sql.max_bytes, sql.timeout),
        (1000, 1 << 20, Duration::from_secs(5))
    );
    assert_eq!(
        sql.to_string(),
        format!(
            "sqlite:{}, read-only, max_rows 1000, timeout 5s",
            fx.path("data/shop.db").display()
        )
    );

    // Read-write: the file may be created later, in a directory that exists.
    let m = fx.ok(&format!(
        "{DB}sql = {{ url = \"sqlite://out/new.db\", mode = \"rw\", max_rows = 5, \
         max_bytes = \"4KiB\", timeout = \"250ms\" }}\n"
    ));
    let sql = m.plugins[0].sql.as_ref().expect("a sql grant");
    assert_eq!(
        sql.database,
        SqlDatabase::Sqlite(fx.path("out").join("new.db"))
    );
    assert_eq!(
        (sql.mode, sql.max_rows, sql.max_bytes, sql.timeout),
        (SqlMode::ReadWrite, 5, 4096, Duration::from_millis(250))
    );

    // Postgres from the environment, from ${VAR} and from a file: the password is a secret
    // value of the plugin, and never printed.
    std::fs::write(
        fx.dir.path().join("db-url"),
        "postgres://shop:file-pass-789@db/shop\n",
    )
    .expect("write");
    for (url, password) in [
        ("{ env = \"PG_URL\" }", "pg-pass-123"),
        (
            "\"postgres://shop:${PG_PASS}@db.internal/shop\"",
            "pg-pass-123",
        ),
        ("{ file = \"db-url\" }", "file-pass-789"),
    ] {
        let m = fx.ok(&format!("{DB}sql = {{ url = {url} }}\n"));
        let plugin = &m.plugins[0];
        let sql = plugin.sql.as_ref().expect("a sql grant");
        assert_eq!(sql.password(), Some(password));
        assert!(plugin.secret_values().any(|secret| secret == password));
        let shown = format!("{sql} {sql:?} {m:?}");
        assert!(!shown.contains(password), "{shown}");
        assert!(
            sql.to_string().starts_with("postgres://shop:***@db"),
            "{sql}"
        );
    }
}

#[test]
fn bad_sql_grants_are_errors_that_never_show_a_password() {
    let fx = Fixture::new();
    std::fs::write(fx.dir.path().join("data/shop.db"), b"").expect("write");
    let cases = [
        (
            "sql = \"sqlite:data/shop.db\"",
            "3:7: plugins.db.sql: expected a table such as { url = \"sqlite:data/app.db\", mode = \"ro\" }, found a string",
        ),
        (
            "sql = { mode = \"ro\" }",
            "3:1: plugins.db.sql: missing required key `url`",
        ),
        (
            "sql = { url = \"sqlite:missing.db\" }",
            "3:15: plugins.db.sql.url: read-only SQLite database \"missing.db\" ({root}/missing.db) not found",
        ),
        (
            "sql = { url = \"sqlite:data\" }",
            "3:15: plugins.db.sql.url: read-only SQLite database \"data\" ({root}/data) is a directory, not a file",
        ),
        (
            "sql = { url = \"sqlite:nowhere/new.db\", mode = \"rw\" }",
            "3:15: plugins.db.sql.url: the directory of SQLite database \"nowhere/new.db\" ({root}/nowhere) does not exist; a read-write database is created on first use, but its directory must exist",
        ),
        (
            "sql = { url = \"sqlite::memory:\" }",
            "3:15: plugins.db.sql.url: sqlite path \":memory:\": expected a file path (no `:memory:`, no `?` options)",
        ),
        (
            "sql = { url = \"mysql://u@db/shop\" }",
            "3:15: plugins.db.sql.url: unsupported database URL with scheme \"mysql\": expected \"sqlite:PATH\" or \"postgres://USER@HOST:PORT/DATABASE\"",
        ),
        (
            "sql = { url = { env = \"MYSQL_URL\" } }",
            "3:15: plugins.db.sql.url: unsupported database URL (from a secret) with scheme \"mysql\": expected \"sqlite:PATH\" or \"postgres://USER@HOST:PORT/DATABASE\"",
        ),
        (
            "sql = { url = \"postgres://shop:hunter22@db/shop\" }",
            "3:15: plugins.db.sql.url: the URL has a password written in the manifest: pass the URL as \"${VAR}\", or as { env = \"VAR\" } or { file = \"path\" }",
        ),
        (
            "sql = { url = \"postgres://shop@db/shop?password=hunter22\" }",
            "3:15: plugins.db.sql.url: the URL has a password written in the manifest: pass the URL as \"${VAR}\", or as { env = \"VAR\" } or { file = \"path\" }",
        ),
        (
            "sql = { url = \"postgres://shop:${PG_PASS}@db/shop?connect_timeout=x\" }",
            "3:15: plugins.db.sql.url: invalid Postgres URL \"postgres://shop:***@db/shop?connect_timeout=x\": invalid connection string",
        ),
        (
            "sql = { url = { env = \"NOPE\" } }",
            "3:23: plugins.db.sql.url.env: environment variable `NOPE` is not set (warden reads the database URL from it)",
        ),
        (
            "sql = { url = {} }",
            "3:15: plugins.db.sql.url: missing `env` or `file`: write url = { env = \"DATABASE_URL\" }",
        ),
        (
            "sql = { url = \"sqlite:data/shop.db\", mode = \"write\" }",
            "3:45: plugins.db.sql.mode: invalid mode \"write\": expected \"ro\" (read-only) or \"rw\" (read-write)",
        ),
        (
            "sql = { url = \"sqlite:data/shop.db\", max_rows = 0 }",
            "3:49: plugins.db.sql.max_rows: max_rows must be between 1 and 1000000, got 0",
        ),
        (
            "sql = { url = \"sqlite:data/shop.db\", max_bytes = \"10B\" }",
            "3:50: plugins.db.sql.max_bytes: max_bytes must be between 1KiB and 64MiB, got 10B",
        ),
        (
            "sql = { url = \"sqlite:data/shop.db\", timeout = \"2h\" }",
            "3:48: plugins.db.sql.timeout: timeout must be at most 10m, got 2h",
        ),
        (
            "sql = { url = \"sqlite:data/shop.db\", max_row = 5 }",
            "3:38: plugins.db.sql.max_row: unknown key `max_row`; did you mean `max_rows`?",
        ),
    ];
    let root = fx.root().display().to_string();
    let mut wrong = Vec::new();
    for (line, expected) in cases {
        let error = fx.error(&format!("{DB}{line}\n"));
        if error != expected.replace("{root}", &root) {
            wrong.push(format!("{line}\n  got: {error}"));
        }
        for password in ["hunter22", "pg-pass-123", "my-pass-456"] {
            assert!(!error.contains(password), "{error}");
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_sqlite_database_among_wardens_own_files_is_refused() {
    let fx = Fixture::new();
    std::fs::create_dir(fx.dir.path().join("data/audit")).expect("mkdir");
    std::fs::write(fx.dir.path().join("data/audit/x.db"), b"").expect("write");
    let error = fx.error(&format!(
        "[audit]\npath = \"data/audit/warden.jsonl\"\n\n{DB}sql = {{ url = \"sqlite:data/audit/x.db\" }}\n"
    ));
    assert!(
        error.starts_with("6:1: plugins.db.sql: this SQLite database is ")
            && error.contains("the audit log's directory"),
        "{error}"
    );
    let error = fx.error(&format!(
        "{DB}sql = {{ url = \"sqlite:plugins/files.wasm\", mode = \"rw\" }}\n"
    ));
    assert!(error.contains("a plugin's component"), "{error}");
}

#[test]
fn kv_grants_load_with_their_defaults_and_the_store_file_beside_the_manifest() {
    let fx = Fixture::new();
    let manifest = fx.ok(&format!(
        "{FILES}kv = {{}}\n\n[plugins.fetch]\ncomponent = \"plugins/fetch.wasm\"\n\
         kv = {{ store = \"team\", quota = \"1MiB\", max_keys = 5, max_value = 1024 }}\n"
    ));
    let files = manifest
        .plugin("files")
        .and_then(|p| p.kv.clone())
        .expect("a grant");
    assert_eq!(files.store, None);
    assert_eq!(files.store_name("files"), "files");
    assert_eq!(
        (files.quota, files.max_keys, files.max_value),
        (10 << 20, 10_000, 1 << 20)
    );
    let fetch = manifest
        .plugin("fetch")
        .and_then(|p| p.kv.clone())
        .expect("a grant");
    assert_eq!(fetch.store.as_deref(), Some("team"));
    assert_eq!(
        (fetch.quota, fetch.max_keys, fetch.max_value),
        (1 << 20, 5, 1024)
    );
    assert_eq!(
        manifest.kv.backend,
        KvBackend::File(fx.root().join(".warden-state/kv.redb"))
    );
    assert_eq!(manifest.kv.location, None);
    assert_eq!(
        fx.ok(FILES).plugin("files").map(|p| p.kv.clone()),
        Some(None)
    );
}

#[test]
fn kv_section_takes_a_path_or_a_redis_url() {
    let fx = Fixture::new();
    let path = fx.ok("[kv]\npath = \"data/kv.redb\"\n");
    assert_eq!(
        path.kv.backend,
        KvBackend::File(fx.root().join("data/kv.redb"))
    );
    let redis = fx.ok("[kv]\nurl = \"redis://user:hunter2@127.0.0.1:6379/2\"\nprefix = \"app:\"\n");
    let KvBackend::Redis { url, prefix } = &redis.kv.backend else {
        panic!("expected Redis: {:?}", redis.kv.backend);
    };
    assert_eq!(url.expose(), "redis://user:hunter2@127.0.0.1:6379/2");
    assert_eq!(prefix, "app:");
    assert!(
        !format!("{:?}", redis.kv).contains("hunter2"),
        "{:?}",
        redis.kv
    );
    let default_prefix = fx.ok("[kv]\nurl = \"redis://cache.example.com\"\n");
    assert!(matches!(
        &default_prefix.kv.backend,
        KvBackend::Redis { prefix, .. } if prefix == KvSettings::DEFAULT_PREFIX
    ));
}

#[test]
fn kv_sync_is_always_unless_an_interval_is_given() {
    let fx = Fixture::new();
    assert_eq!(fx.ok("").kv.sync, None);
    assert_eq!(fx.ok("[kv]\nsync = \"always\"\n").kv.sync, None);
    assert_eq!(
        fx.ok("[kv]\nsync = \"250ms\"\n").kv.sync,
        Some(Duration::from_millis(250))
    );
}

#[test]
fn hostile_kv_settings_are_refused_at_their_line() {
    let fx = Fixture::new();
    let cases: Vec<(String, String)> = vec![
        (
            format!("{FILES}kv = {{ quota = \"lots\" }}"),
            "3:16: plugins.files.kv.quota: invalid size \"lots\": expected a number of bytes such as 65536 or \"64MiB\"".to_owned(),
        ),
        (
            format!("{FILES}kv = {{ quota = \"2TiB\" }}"),
            "3:16: plugins.files.kv.quota: quota must be between 1KiB and 1TiB, got 2TiB".to_owned(),
        ),
        (
            format!("{FILES}kv = {{ max_value = \"128MiB\" }}"),
            "3:20: plugins.files.kv.max_value: max_value must be between 1B and 64MiB, got 128MiB".to_owned(),
        ),
        (
            format!("{FILES}kv = {{ max_keys = 0 }}"),
            "3:19: plugins.files.kv.max_keys: max_keys must be between 1 and 100000000, got 0".to_owned(),
        ),
        (
            format!("{FILES}kv = {{ max_keys = -5 }}"),
            "3:19: plugins.files.kv.max_keys: max_keys must be between 1 and 100000000, got -5".to_owned(),
        ),
        (
            format!("{FILES}kv = {{ quota = \"4KiB\", max_value = \"8KiB\" }}"),
            "3:36: plugins.files.kv.max_value: max_value (8KiB) is larger than the store's quota (4KiB): no such value could be stored".to_owned(),
        ),
        (
            format!("{FILES}kv = {{ qouta = \"1MiB\" }}"),
            "3:8: plugins.files.kv.qouta: unknown key `qouta`; did you mean `quota`?".to_owned(),
        ),
        (
            format!("{FILES}kv = {{ store = \"Team Notes\" }}"),
            "3:16: plugins.files.kv.store: invalid store name \"Team Notes\": expected a lowercase letter followed by up to 31 lowercase letters, digits, `_` or `-`".to_owned(),
        ),
        (
            format!("{FILES}kv = true"),
            "3:6: plugins.files.kv: expected a table such as { quota = \"10MiB\" } (`kv = {}` for the defaults), found a boolean".to_owned(),
        ),
        (
            "[kv]\npath = \"data/kv.redb\"\nurl = \"redis://127.0.0.1\"".to_owned(),
            "3:1: kv.url: give either `path` (an embedded file) or `url` (Redis), not both".to_owned(),
        ),
        (
            "[kv]\nurl = \"http://user:hunter2@127.0.0.1\"".to_owned(),
            "2:7: kv.url: expected a Redis URL such as \"redis://127.0.0.1:6379/0\" (TLS, rediss://, is not supported yet)".to_owned(),
        ),
        (
            "[kv]\npath = \"data\"".to_owned(),
            format!(
                "2:8: kv.path: {} is a directory: `path` names the store's file, such as \"state/kv.redb\"",
                fx.root().join("data").display()
            ),
        ),
        (
            "[kv]\nprefix = \"app:\"".to_owned(),
            "2:1: kv.prefix: `prefix` applies only to a Redis store (`url`)".to_owned(),
        ),
        (
            "[kv]\nurl = \"redis://127.0.0.1\"\nprefix = \"has space\"".to_owned(),
            "3:10: kv.prefix: a prefix is at most 64 characters, without spaces or control characters".to_owned(),
        ),
        (
            "[kv]\nurl = \"redis://127.0.0.1\"\nsync = \"1s\"".to_owned(),
            "3:1: kv.sync: `sync` applies to the embedded file (`path`); a Redis server keeps to its own persistence settings (appendfsync)".to_owned(),
        ),
        (
            "[kv]\nsync = \"0s\"".to_owned(),
            "2:8: kv.sync: sync must be greater than 0".to_owned(),
        ),
        (
            "[kv]\nsync = \"5m\"".to_owned(),
            "2:8: kv.sync: sync must be at most 1m, got 5m".to_owned(),
        ),
        (
            "[kv]\nsync = \"sometimes\"".to_owned(),
            "2:8: kv.sync: invalid sync \"sometimes\": expected \"always\" or an interval such as \"1s\"".to_owned(),
        ),
        (
            "[kv]\nurl = \"${NOPE}\"".to_owned(),
            "2:7: kv.url: environment variable `NOPE` is not set (give a default with `${NOPE:-default}`, or `$${` for a literal `${`)".to_owned(),
        ),
        (
            "[kv]\ndir = \"state\"".to_owned(),
            "2:1: kv.dir: unknown key `dir`; expected one of `path`, `url`, `sync` or `prefix`".to_owned(),
        ),
        (
            format!("{FILES}acknowledge = [\"unused-grant:kvv\"]"),
            "3:16: plugins.files.acknowledge[0]: unknown warning code \"unused-grant:kvv\"; did you mean \"unused-grant:kv\"? (the codes are unused-grant:dirs, unused-grant:allow_hosts, unused-grant:env, unused-grant:secrets, ungranted-import:filesystem, ungranted-import:http, ungranted-import:sockets, unused-grant:kv, ungranted-import:keyvalue, unused-grant:sql, ungranted-import:sql, unused-grant:sampling, unused-grant:roots, unapproved-write)".to_owned(),
        ),
    ];
    fx.expect_errors(&cases);
}

#[test]
fn a_dirs_grant_may_not_reach_the_kv_store_file() {
    let fx = Fixture::new();
    let error = fx.error(&format!(
        "[kv]\npath = \"data/kv.redb\"\n\n{FILES}dirs = [{{ host = \"data\", guest = \"/data\" }}]\n"
    ));
    assert!(error.starts_with("6:9: plugins.files.dirs[0]:"), "{error}");
    assert!(error.contains("the key-value store's file"), "{error}");
    // The default file beside the manifest is protected once a plugin has a kv grant...
    let error = fx.error(&format!(
        "{FILES}kv = {{}}\ndirs = [{{ host = \".\", guest = \"/all\" }}]\n"
    ));
    assert!(error.contains("kv.redb"), "{error}");
    // ...and not before: without kv, nothing is stored there.
    fx.ok(&format!(
        "{FILES}dirs = [{{ host = \".\", guest = \"/all\" }}]\n"
    ));
}

#[test]
fn approval_keys_are_read_on_plugins_tools_and_the_approval_table() {
    let fx = Fixture::new();
    let m = fx.ok(&format!(
        "[approval]\nkey = \"0123456789abcdef0123456789abcdef\"\ntimeout = \"30s\"\nexpiry = \"1m\"\n\
         after_private = \"deny\"\nwindow = \"2h\"\noperators = [\"approver\"]\n\n\
         {FILES}approval = \"ask\"\ndata = \"private\"\n\
         [plugins.files.tools.read-text]\napproval = \"never\"\ndata = \"public\"\n"
    ));
    let files = m.plugin("files").expect("files");
    assert_eq!(files.tool_approval("write-text"), Approval::Ask);
    assert_eq!(files.tool_approval("read-text"), Approval::Never);
    assert_eq!(files.tool_data("write-text"), DataLabel::Private);
    assert_eq!(files.tool_data("read-text"), DataLabel::Public);
    let a = &m.approval;
    assert!(a.key.is_some());
    assert_eq!(a.timeout, Duration::from_secs(30));
    assert_eq!(a.expiry, Duration::from_secs(60));
    assert_eq!(a.after_private, FlowRule::Deny);
    assert_eq!(a.window, Duration::from_secs(7200));
    assert_eq!(a.operators, vec!["approver".to_owned()]);
    // Without the table: ask after private data for 15 minutes, a per-process key, no
    // operators.
    let d = fx.ok(FILES).approval;
    assert_eq!(d, ApprovalSettings::default());
    assert_eq!(d.after_private, FlowRule::Ask);
}

#[test]
fn hostile_approval_settings_are_refused_at_their_line() {
    let fx = Fixture::new();
    let cases = [
        (
            format!("{FILES}approval = \"sometimes\""),
            "3:12: plugins.files.approval: invalid approval \"sometimes\": expected \"never\" or \"ask\"",
        ),
        (
            format!("{FILES}data = \"secret\""),
            "3:8: plugins.files.data: invalid data \"secret\": expected \"private\" or \"public\"",
        ),
        (
            "[approval]\nkey = \"short\"".to_owned(),
            "2:7: approval.key: the approval key must be at least 32 characters (it seals approvals); make one with `openssl rand -hex 32` and pass it as ${VAR}",
        ),
        (
            "[approval]\noperators = [\"*\"]".to_owned(),
            "2:13: approval.operators: operators must name roles: \"*\" would let every principal answer approvals, its own calls' included",
        ),
        (
            "[approval]\nafter_private = \"maybe\"".to_owned(),
            "2:17: approval.after_private: invalid after_private \"maybe\": expected \"ask\", \"deny\" or \"allow\"",
        ),
        (
            "[approval]\ntimeout = 30".to_owned(),
            "2:11: approval.timeout: expected a duration string such as \"5s\" or \"250ms\"; a bare number has no unit",
        ),
        (
            "[approval]\ntimeout = \"2h\"".to_owned(),
            "2:11: approval.timeout: timeout must be at most 1h, got 2h",
        ),
    ];
    fx.expect_errors(&cases);
}

#[test]
fn review_mode_and_accept_review_are_read() {
    let fx = Fixture::new();
    let m = fx.ok(r#"
[server]
review = "refuse"
[plugins.files]
component = "plugins/files.wasm"
[plugins.files.tools.read-text]
accept_review = ["outside-path", "ungranted-url"]
"#);
    assert_eq!(m.server.review, ReviewMode::Refuse);
    let tool = m.plugins[0].tool_override("read-text").expect("override");
    let ids: Vec<&str> = tool.accept_review.iter().map(|a| a.code.as_str()).collect();
    assert_eq!(ids, ["outside-path", "ungranted-url"]);
}

#[test]
fn unknown_review_rule_is_an_error_with_the_closest_id() {
    let fx = Fixture::new();
    let error = fx
        .parse(
            r#"
[plugins.files]
component = "plugins/files.wasm"
[plugins.files.tools.read-text]
accept_review = ["outside-paths"]
"#,
        )
        .expect_err("refused");
    let text = error.to_string();
    assert!(text.contains("5:18"), "{text}");
    assert!(text.contains("did you mean \"outside-path\""), "{text}");
}

#[test]
fn task_keys_are_read_on_tools_and_the_tasks_table() {
    let fx = Fixture::new();
    let m = fx.ok(&format!(
        "{FILES}timeout = \"30s\"\n\
         [plugins.files.tools.read-text]\ntask = \"optional\"\n\
         [plugins.files.tools.write-text]\ntask = \"required\"\ntask_timeout = \"2h\"\ntask_after = \"3s\"\n\
         [plugins.files.tools.list-dir]\ntask = \"optional\"\n\
         [tasks]\nstore = \"redis://127.0.0.1:6379/0\"\nprefix = \"t:\"\nttl = \"2h\"\n\
         poll_interval = \"250ms\"\nmax_per_principal = 3\nmax_running = 7\n"
    ));
    let files = &m.plugins[0];
    assert_eq!(
        files.tool_task("read-text"),
        Some((TaskMode::Optional, ToolTask::DEFAULT_TIMEOUT))
    );
    assert_eq!(
        files.tool_task("write-text"),
        Some((TaskMode::Required, Duration::from_secs(7200)))
    );
    assert_eq!(files.tool_task("stat"), None);
    assert_eq!(
        files.tool_task_after("write-text"),
        Some(Duration::from_secs(3))
    );
    assert_eq!(files.tool_task_after("read-text"), None);
    let TaskStoreKind::Redis { url, prefix } = &m.tasks.store else {
        panic!("{:?}", m.tasks.store);
    };
    assert_eq!(
        (url.expose(), prefix.as_str()),
        ("redis://127.0.0.1:6379/0", "t:")
    );
    assert_eq!(m.tasks.ttl, Duration::from_secs(7200));
    assert_eq!(m.tasks.poll_interval, Duration::from_millis(250));
    assert_eq!((m.tasks.max_per_principal, m.tasks.max_running), (3, 7));
    // The defaults: memory, an hour, 10 per principal; a task_timeout never shorter than
    // the plugin's timeout.
    let m = fx.ok(&format!(
        "{FILES}timeout = \"20m\"\n[plugins.files.tools.read-text]\ntask = \"optional\"\n"
    ));
    assert_eq!(m.tasks, TaskSettings::default());
    assert_eq!(
        m.plugins[0].tool_task("read-text"),
        Some((TaskMode::Optional, Duration::from_secs(1200)))
    );
}

#[test]
fn hostile_task_settings_are_refused_at_their_line() {
    let fx = Fixture::new();
    let tool = format!("{FILES}[plugins.files.tools.read-text]\n");
    let cases = [
        (
            format!("{tool}task = \"always\""),
            "4:8: plugins.files.tools.read-text.task: invalid task \"always\": expected \"optional\" (a task when the client supports tasks) or \"required\" (only as a task)",
        ),
        (
            format!("{tool}task_timeout = \"1m\""),
            "4:1: plugins.files.tools.read-text.task_timeout: `task_timeout` applies only to a tool with `task = \"optional\"` or `\"required\"`",
        ),
        (
            format!("{tool}task = \"optional\"\ntask_timeout = \"25h\""),
            "5:16: plugins.files.tools.read-text.task_timeout: task_timeout must be at most 24h, got 25h",
        ),
        (
            format!("{tool}task_after = \"1s\""),
            "4:1: plugins.files.tools.read-text.task_after: `task_after` applies only to a tool with `task = \"optional\"` or `\"required\"`",
        ),
        (
            format!("{tool}task = \"required\"\ntask_after = \"2m\""),
            "5:14: plugins.files.tools.read-text.task_after: task_after must be at most 1m, got 2m",
        ),
        (
            "[tasks]\nstore = \"postgres://secret@db\"".to_owned(),
            "2:9: tasks.store: expected \"memory\" or a Redis URL such as \"redis://127.0.0.1:6379/0\" (TLS, rediss://, is not supported yet)",
        ),
        (
            "[tasks]\nprefix = \"x:\"".to_owned(),
            "2:1: tasks.prefix: `prefix` applies only to a Redis store (`store = \"redis://...\"`)",
        ),
        (
            "[tasks]\nmax_per_principal = 0".to_owned(),
            "2:21: tasks.max_per_principal: max_per_principal must be between 1 and 10000, got 0",
        ),
        (
            "[tasks]\nttl = \"200h\"".to_owned(),
            "2:7: tasks.ttl: ttl must be at most 168h, got 200h",
        ),
        (
            "[tasks]\nstores = \"memory\"".to_owned(),
            "2:1: tasks.stores: unknown key `stores`; did you mean `store`?",
        ),
    ];
    fx.expect_errors(&cases);
}

#[test]
fn hidden_marks_one_tool_and_nothing_else() {
    let fx = Fixture::new();
    let m = fx.ok(&format!(
        "{FILES}[plugins.files.tools.write-text]\nhidden = true\n\
         [plugins.files.tools.list-dir]\nhidden = false\n"
    ));
    let files = &m.plugins[0];
    assert!(files.tool_hidden("write-text"));
    assert!(!files.tool_hidden("list-dir"));
    assert!(!files.tool_hidden("read-text"), "no table: not hidden");
    let cases = [
        (
            format!("{FILES}[plugins.files.tools.write-text]\nhidden = \"yes\""),
            "4:10: plugins.files.tools.write-text.hidden: expected a boolean, found a string",
        ),
        (
            format!("{FILES}[plugins.files.tools.\"write-*\"]\nhidden = true"),
            "4:1: plugins.files.tools.\"write-*\".hidden: unknown key `hidden`; expected one of `roles`",
        ),
    ];
    fx.expect_errors(&cases);
}

#[test]
fn the_shared_limit_store_is_read_with_its_defaults() {
    let fx = Fixture::new();
    let m = fx.ok(&format!(
        "{FILES}[limits]\nstore = \"redis://:pw@127.0.0.1:6379/2\"\nprefix = \"w:\"\n\
         on_store_error = \"local\"\n"
    ));
    let store = m.limit_store.as_ref().expect("a store");
    assert_eq!(store.url.expose(), "redis://:pw@127.0.0.1:6379/2");
    assert_eq!(
        (store.prefix.as_str(), store.on_error),
        ("w:", StoreFailure::Local)
    );
    assert!(!format!("{store:?}").contains("pw"), "the URL is redacted");
    let m = fx.ok(&format!("{FILES}[limits]\nstore = \"redis://127.0.0.1\"\n"));
    let store = m.limit_store.as_ref().expect("a store");
    assert_eq!(
        (store.prefix.as_str(), store.on_error),
        (LimitStore::DEFAULT_PREFIX, StoreFailure::Closed)
    );
    assert_eq!(fx.ok(FILES).limit_store, None);
}

#[test]
fn bad_shared_limit_stores_are_errors_at_their_line_without_the_url() {
    let fx = Fixture::new();
    let cases = [
        (
            "[limits]\nstore = \"http://user:secret@host\"",
            "2:9: limits.store: expected a Redis URL such as \"redis://127.0.0.1:6379/0\" (TLS, rediss://, is not supported yet)",
        ),
        (
            "[limits]\nstore = \"redis://127.0.0.1\"\non_store_error = \"open\"",
            "3:18: limits.on_store_error: invalid on_store_error \"open\": expected \"closed\" (refuse limited calls while the store is unreachable) or \"local\" (count in process meanwhile)",
        ),
        (
            "[limits]\non_store_error = \"local\"",
            "2:1: limits.on_store_error: `on_store_error` applies only with a shared store (`store = \"redis://...\"`)",
        ),
        (
            "[limits]\nprefix = \"x:\"",
            "2:1: limits.prefix: `prefix` applies only with a shared store (`store = \"redis://...\"`)",
        ),
        (
            "[limits]\nstore = \"redis://127.0.0.1\"\nprefix = \"a b\"",
            "3:10: limits.prefix: a prefix is at most 64 characters, without spaces or control characters",
        ),
    ];
    fx.expect_errors(&cases);
    let error = fx.error("[limits]\nstore = \"http://user:secret@host\"\n");
    assert!(!error.contains("secret"), "{error}");
}

#[test]
fn audit_checkpoint_keys_default_parse_and_refuse_bad_values() {
    let fx = Fixture::new();
    let audit = fx.ok("[audit]\npath = \"a.jsonl\"\n").audit.expect("audit");
    assert!(!audit.replica.is_empty());
    assert_eq!(audit.signing_key, None);
    assert_eq!(audit.checkpoint_every, Audit::DEFAULT_CHECKPOINT_EVERY);
    assert_eq!(
        audit.checkpoint_interval,
        Audit::DEFAULT_CHECKPOINT_INTERVAL
    );

    let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
    std::fs::write(fx.root().join("audit.key"), pem).expect("write");
    std::fs::write(fx.root().join("data/audit.key"), pem).expect("write");
    let audit = fx
        .ok("[audit]\npath = \"a.jsonl\"\nreplica = \"pod-1.example\"\nsigning_key = \"audit.key\"\ncheckpoint_every = 10\ncheckpoint_interval = \"5s\"\n")
        .audit
        .expect("audit");
    assert_eq!(audit.replica, "pod-1.example");
    let key = audit.signing_key.expect("key");
    assert_eq!(
        (key.pem.expose(), key.file),
        (pem, Some(fx.path("audit.key")))
    );
    assert_eq!(audit.checkpoint_every, 10);
    assert_eq!(audit.checkpoint_interval, std::time::Duration::from_secs(5));
    // A grant over the key file is refused, even read-only.
    let errors = fx.errors(&format!(
        "[audit]\npath = \"out/a.jsonl\"\nsigning_key = \"data/audit.key\"\n\n{FILES}dirs = [{{ host = \"data\", guest = \"/data\", mode = \"ro\" }}]\n"
    ));
    assert!(
        errors.iter().any(|e| e.contains("the audit signing key")),
        "{errors:?}"
    );

    for (text, expected) in [
        (
            "replica = \"a b\"",
            "3:11: audit.replica: invalid replica \"a b\": 1 to 253 letters, digits, `.`, `_` or `-` (a host name fits)",
        ),
        (
            "checkpoint_every = 0",
            "3:20: audit.checkpoint_every: checkpoint_every must be between 1 and 1000000, got 0",
        ),
        (
            "checkpoint_interval = \"0s\"",
            "3:23: audit.checkpoint_interval: checkpoint_interval must be greater than 0",
        ),
        (
            "signing_key = \"notes.txt\"",
            "3:15: audit.signing_key: the signing key is not a PEM `PRIVATE KEY` (PKCS#8 Ed25519); make one with `openssl genpkey -algorithm ed25519 -out audit.key`",
        ),
        (
            "sign_key = \"x\"",
            "3:1: audit.sign_key: unknown key `sign_key`",
        ),
    ] {
        let error = fx.error(&format!("[audit]\npath = \"a.jsonl\"\n{text}\n"));
        assert!(error.starts_with(expected), "{text}: {error}");
    }
    let error = fx.error("[audit]\npath = \"a.jsonl\"\nsigning_key = \"missing.key\"\n");
    assert!(
        error.starts_with("3:15: audit.signing_key: cannot read the signing key \"missing.key\""),
        "{error}"
    );
}

#[test]
fn metrics_are_off_unless_the_section_says_where_to_serve_them() {
    let fx = Fixture::new();
    assert_eq!(fx.ok(FILES).metrics, None);
    let m = fx.ok(&format!(
        "[metrics]\nlisten = \"127.0.0.1:9464\"\non_http = true\nprincipals = true\n{FILES}"
    ));
    let metrics = m.metrics.expect("[metrics]");
    assert_eq!(
        metrics.listen,
        Some("127.0.0.1:9464".parse().expect("address"))
    );
    assert!(metrics.on_http && metrics.principals);
    let m = fx.ok(&format!("[metrics]\non_http = true\n{FILES}"));
    let metrics = m.metrics.expect("[metrics]");
    assert_eq!((metrics.listen, metrics.principals), (None, false));
}

#[test]
fn hostile_metrics_settings_are_refused_at_their_line() {
    let fx = Fixture::new();
    let cases = [
        (
            "[metrics]\nprincipals = true",
            "1:1: metrics: [metrics] serves nothing: set `listen = \"127.0.0.1:9464\"` (a listener of its own) and/or `on_http = true` (/metrics on the [http] listener)",
        ),
        (
            "[metrics]\nlisten = \"localhost:9464\"",
            "2:10: metrics.listen: invalid address \"localhost:9464\": expected IP:PORT such as \"127.0.0.1:8080\" or \"[::1]:8080\" (an IP address, not a host name)",
        ),
        (
            "[metrics]\non_http = \"yes\"",
            "2:11: metrics.on_http: expected a boolean, found a string",
        ),
        (
            "[metrics]\non_http = true\npath = \"/m\"",
            "3:1: metrics.path: unknown key `path`; expected one of `listen`, `on_http` or `principals`",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(fx.errors(text), [expected], "{text}");
    }
}

#[test]
fn tracing_is_off_without_its_section_and_read_with_file_lines() {
    let fx = Fixture::new();
    assert_eq!(fx.ok(FILES).tracing, None);
    let m = fx.ok(&format!(
        "{FILES}[tracing]\notlp = \"https://collector.example:4318\"\nservice_name = \"edge\"\n\
         sample = 0.25\nheaders = {{ Authorization = \"Bearer ${{PG_PASS}}\" }}\n\
         principal = true\nqueue = 64\n"
    ));
    let tracing = m.tracing.expect("[tracing]");
    assert_eq!(
        tracing.otlp.as_deref(),
        Some("https://collector.example:4318")
    );
    assert_eq!(tracing.service_name.as_deref(), Some("edge"));
    assert_eq!(tracing.sample, Some(0.25));
    assert_eq!(tracing.headers.len(), 1);
    assert_eq!(tracing.headers[0].0, "authorization");
    assert_eq!(tracing.headers[0].1.expose(), "Bearer pg-pass-123");
    // The header's value is a secret: never in the settings' Debug.
    assert!(!format!("{tracing:?}").contains("pg-pass-123"));
    assert!(tracing.principal);
    assert_eq!(tracing.queue, Some(64));
    // An empty section: on, everything from the environment or the defaults.
    let tracing = fx
        .ok(&format!("{FILES}[tracing]\n"))
        .tracing
        .expect("[tracing]");
    assert_eq!(
        (
            tracing.otlp,
            tracing.sample,
            tracing.principal,
            tracing.queue
        ),
        (None, None, false, None)
    );
    let errors = fx.errors(&format!(
        "{FILES}[tracing]\notlp = \"collector:4318\"\nsample = -1\nprincipal = \"yes\"\n\
         headers = {{ \"bad name\" = \"x\" }}\nendpoint = \"x\"\n"
    ));
    let joined = errors.join("\n");
    for expected in [
        "tracing.otlp: invalid otlp URL",
        "tracing.sample: sample must be a number from 0 to 1",
        "tracing.principal: expected a boolean",
        "invalid header name",
        "tracing.endpoint: unknown key `endpoint`",
    ] {
        assert!(joined.contains(expected), "{expected:?} not in:\n{joined}");
    }
}
