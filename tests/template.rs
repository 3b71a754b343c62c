//! `warden new` writes a Rust plugin that builds outside the repository with `warden build`
//! (against this checkout's SDK through `--sdk`), passes its own unit test, has its
//! descriptions without any other step, and answers `warden call` through its own manifest,
//! unchanged. A failed build leaves the previous component byte for byte.
//!
//! The plugin is built with a Cargo target directory shared across runs
//! (`target/template-test`), so only the first run compiles its dependencies.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::warden;

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is in the repository")
        .to_path_buf()
}

/// `program ARGS` in `dir`, with the shared Cargo target directory and none of the outer
/// build's settings: what a plugin author's shell would have.
fn command(program: impl AsRef<std::ffi::OsStr>, args: &[&str], dir: &Path) -> Command {
    let mut command = Command::new(program);
    command.args(args).current_dir(dir).env(
        "CARGO_TARGET_DIR",
        root().join("target").join("template-test"),
    );
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("RUSTFLAGS")
            || key == "CARGO_ENCODED_RUSTFLAGS"
            || key == "CARGO_BUILD_TARGET"
            || key.starts_with("RUSTC")
            || key.starts_with("CARGO_PROFILE_")
            || key == "RUSTUP_TOOLCHAIN"
        {
            command.env_remove(key);
        }
    }
    command
}

/// Run `command`: exit code, stdout, stderr.
fn output(command: &mut Command) -> (i32, String, String) {
    let output = command.output().expect("run");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `warden build` in `dir`, as an author runs it.
fn build(dir: &Path) -> (i32, String, String) {
    output(&mut command(env!("CARGO_BIN_EXE_warden"), &["build"], dir))
}

#[test]
fn a_new_plugin_builds_with_warden_build_and_answers_calls() {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().join("hello-tool");
    let dir_arg = dir.display().to_string();
    let sdk = root().join("sdk").display().to_string();

    let (code, stdout, stderr) = warden(
        &["new", "hello-tool", "--dir", &dir_arg, "--sdk", &sdk],
        temp.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("created rust plugin hello-tool"),
        "{stdout}"
    );
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "wit/world.wit",
        "wit/deps/warden-mcp/mcp.wit",
        "warden.toml",
        "README.md",
    ] {
        assert!(dir.join(file).is_file(), "{file} is missing");
    }
    // By version, with a relative development override: no absolute path to a source tree.
    let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
    assert!(cargo_toml.contains("warden-sdk = \"0.1"), "{cargo_toml}");
    let manifest: toml::Table = cargo_toml.parse().expect("Cargo.toml is TOML");
    let patch = manifest["patch"]["crates-io"]["warden-sdk"]["path"]
        .as_str()
        .expect("a [patch.crates-io] path");
    assert!(Path::new(patch).is_relative(), "{cargo_toml}");

    // Its unit test runs natively.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let (code, _, stderr) = output(&mut command(&cargo, &["test", "--quiet"], &dir));
    assert_eq!(code, 0, "cargo test: {stderr}");

    // One command builds the component with its descriptions, where warden.toml expects it.
    let (code, stdout, stderr) = build(&dir);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let wasm = dir.join("target/hello-tool.wasm");
    assert!(wasm.is_file(), "{stdout}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&wasm)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o644,
            "a readable component, not a private temp file"
        );
    }
    assert!(stderr.contains("building hello-tool (rust"), "{stderr}");
    assert!(
        stdout.contains("rust plugin hello-tool, 1 tool(s), 1 documented"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains(r#"warden call --manifest ./warden.toml hello-tool__hello '{"name":"Ada"}'"#),
        "{stdout}"
    );
    let (code, stdout, stderr) = warden(&["inspect", "target/hello-tool.wasm"], &dir);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Greet `name`, `times` times"), "{stdout}");
    // Cargo's own output has them too: the SDK compiled the WIT into the core module
    // (`embed_wit_docs!`), so a plain `cargo build` is served with descriptions.
    let plain = root().join("target/template-test/wasm32-wasip2/release/hello_tool.wasm");
    let (code, stdout, stderr) = warden(&["inspect", &plain.display().to_string()], &dir);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("hello_tool__hello\n  Greet `name`, `times` times"),
        "{stdout}"
    );

    // The generated manifest serves it as is.
    let call = |arguments: &str| {
        output(
            Command::new(env!("CARGO_BIN_EXE_warden"))
                .args([
                    "call",
                    "--manifest",
                    "warden.toml",
                    "hello-tool__hello",
                    arguments,
                ])
                .current_dir(&dir)
                .env("XDG_CACHE_HOME", temp.path().join("cache")),
        )
    };
    let (code, stdout, stderr) = call(r#"{"name": "Ada", "times": 2}"#);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let result: serde_json::Value = serde_json::from_str(&stdout).expect("JSON result");
    assert_eq!(result["content"][0]["text"], "Hello, Ada!\nHello, Ada!");
    assert!(stderr.contains("greeted Ada"), "the plugin's log: {stderr}");

    let (code, stdout, _) = call(r#"{"name": "Ada", "times": 0}"#);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("times must be between 1 and 10"),
        "{stdout}"
    );
    // A misspelt argument names the valid ones and the closest.
    let (code, stdout, _) = call(r#"{"name": "Ada", "time": 2}"#);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(r#"unknown argument \"time\" (did you mean \"times\"?)"#),
        "{stdout}"
    );

    // A build that fails leaves the previous component byte for byte.
    let before = std::fs::read(&wasm).expect("component");
    let lib = dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).expect("lib.rs");
    std::fs::write(&lib, source.replace("fn greet(", "fn greet(oops")).expect("break lib.rs");
    let (code, stdout, stderr) = build(&dir);
    assert_ne!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("cargo build failed") && stderr.contains("previous component is untouched"),
        "{stderr}"
    );
    assert!(
        std::fs::read(&wasm).expect("component") == before,
        "the component changed"
    );
    // So does WIT that does not parse (cargo would fail on it too, but warden reads it first).
    std::fs::write(&lib, &source).expect("restore lib.rs");
    std::fs::write(dir.join("wit/world.wit"), "package broken").expect("break the WIT");
    let (code, _, stderr) = build(&dir);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("cannot load the WIT in"), "{stderr}");
    assert!(
        std::fs::read(&wasm).expect("component") == before,
        "the component changed"
    );
}

#[test]
fn new_refuses_bad_names_existing_directories_and_a_missing_sdk() {
    let temp = tempfile::tempdir().expect("tempdir");
    let (code, _, stderr) = warden(&["new", "Hello_World"], temp.path());
    assert_eq!(code, 2);
    assert!(
        stderr.contains("invalid plugin name \"Hello_World\""),
        "{stderr}"
    );
    assert!(!temp.path().join("Hello_World").exists());

    std::fs::create_dir(temp.path().join("taken")).expect("mkdir");
    std::fs::write(temp.path().join("taken/keep.txt"), "mine").expect("write");
    let (code, _, stderr) = warden(&["new", "taken"], temp.path());
    assert_eq!(code, 2);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(temp.path().join("taken/keep.txt")).expect("kept"),
        "mine"
    );

    let (code, _, stderr) = warden(&["new", "lonely", "--sdk", "no-such-sdk"], temp.path());
    assert_eq!(code, 2);
    assert!(stderr.contains("no warden SDK at no-such-sdk"), "{stderr}");
    let (code, _, stderr) = warden(
        &["new", "snake", "--lang", "python", "--sdk", "."],
        temp.path(),
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("--sdk is for Rust plugins"), "{stderr}");
    let (code, _, stderr) = warden(&["new", "gopher", "--lang", "go"], temp.path());
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown language `go`"), "{stderr}");

    // Without --sdk: the published crate, by version; no path anywhere.
    let (code, stdout, stderr) = warden(&["new", "plain"], temp.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("--sdk"), "{stdout}");
    let cargo_toml =
        std::fs::read_to_string(temp.path().join("plain/Cargo.toml")).expect("Cargo.toml");
    assert!(!cargo_toml.contains("path ="), "{cargo_toml}");

    // `warden build` on a folder that holds no plugin says what it looked for.
    let (code, _, stderr) = warden(&["build"], temp.path());
    assert_ne!(code, 0);
    assert!(
        stderr.contains("is not a plugin folder: expected Cargo.toml (Rust), app.py (Python)"),
        "{stderr}"
    );
}
