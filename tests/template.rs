//! `warden new` writes a Rust plugin that builds for wasm32-wasip2, passes its own unit test,
//! gets its descriptions from `warden embed-docs`, and answers `warden call` through its own
//! manifest, unchanged.
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

/// `cargo ARGS` in `dir`, with the shared target directory and none of the outer build's
/// settings; panics with cargo's output on failure.
fn cargo(dir: &Path, args: &[&str]) {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
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
    let output = command.output().expect("run cargo");
    assert!(
        output.status.success(),
        "cargo {} failed in {}:\n{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_new_plugin_builds_tests_and_answers_calls() {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().join("hello-tool");
    let dir_arg = dir.display().to_string();

    let (code, stdout, stderr) = warden(&["new", "hello-tool", "--dir", &dir_arg], temp.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("created plugin hello-tool"), "{stdout}");
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

    // Its unit test runs natively; the component builds for wasm32-wasip2.
    cargo(&dir, &["test", "--quiet"]);
    cargo(&dir, &["build", "--release", "--target", "wasm32-wasip2"]);
    let built = root().join("target/template-test/wasm32-wasip2/release/hello_tool.wasm");
    // Where the plugin's own manifest expects it (its own `target/`, without the shared dir).
    let wasm = dir.join("target/wasm32-wasip2/release/hello_tool.wasm");
    std::fs::create_dir_all(wasm.parent().expect("parent")).expect("mkdir");
    std::fs::copy(&built, &wasm).expect("copy the component");
    let wasm_arg = wasm.display().to_string();

    // Before embed-docs the tool has no description; after, the WIT doc comment.
    let (code, stdout, stderr) = warden(&["inspect", &wasm_arg], &dir);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("Greet `name`"), "{stdout}");
    let (code, stdout, stderr) = warden(&["embed-docs", &wasm_arg, "--wit", "wit"], &dir);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 of 1 function(s) documented"), "{stdout}");
    let (code, stdout, stderr) = warden(&["inspect", &wasm_arg], &dir);
    assert_eq!(code, 0, "{stderr}");
    // (inspect names tools after the file: `hello_tool__hello`.)
    assert!(
        stdout.contains("hello_tool__hello\n  Greet `name`, `times` times"),
        "{stdout}"
    );

    // The generated manifest serves it as is.
    let call = |arguments: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args([
                "call",
                "--manifest",
                "warden.toml",
                "hello-tool__hello",
                arguments,
            ])
            .current_dir(&dir)
            .env("XDG_CACHE_HOME", temp.path().join("cache"))
            .output()
            .expect("run warden call");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
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
    assert!(
        stderr.contains("no warden SDK at no-such-sdk: pass --sdk PATH"),
        "{stderr}"
    );
}
