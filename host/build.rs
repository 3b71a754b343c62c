//! Builds the first-party plugins so that `cargo build` / `cargo test` work from a clean checkout.
//!
//! Runs a nested `cargo build --release --target wasm32-wasip2` on the plugins workspace
//! (`plugins/Cargo.toml`) into `target/plugins` (its own target directory, so it never waits for
//! the lock of the outer build), then embeds each plugin's WIT documentation into its component
//! (see [`embed_docs`]), and tells the host where the components are:
//! `env!("WARDEN_PLUGIN_DIR")` is the absolute path of `target/plugins/wasm32-wasip2/release`.
//!
//! `WARDEN_SKIP_PLUGIN_BUILD=1` skips the nested build (for packagers); so does a source tree
//! without `plugins/` (a published crate). `WARDEN_PLUGIN_DIR` is set either way.
//!
//! The nested cargo runs in a clean environment: the outer build's flags, wrappers, target and
//! profile settings (`RUSTFLAGS`, `CARGO_ENCODED_RUSTFLAGS`, `RUSTC_WRAPPER`, `CARGO_TARGET_DIR`,
//! `CARGO_BUILD_TARGET`, `CARGO_PROFILE_*`, the jobserver...) are for the host's target and must
//! not leak into a wasm build. Registry, network and terminal settings are kept.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use wit_parser::Resolve;

const TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    let host_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = host_dir
        .parent()
        .expect("host/ lives in the workspace root")
        .to_path_buf();
    let plugins = root.join("plugins");
    let target_dir = root.join("target").join("plugins");
    let out_dir = target_dir.join(TARGET).join("release");

    println!("cargo:rustc-env=WARDEN_PLUGIN_DIR={}", out_dir.display());
    println!("cargo:rustc-env=WARDEN_VERSION={}", version(&root));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=WARDEN_SKIP_PLUGIN_BUILD");

    if env::var_os("WARDEN_SKIP_PLUGIN_BUILD").is_some_and(|v| !v.is_empty() && v != "0") {
        return ExitCode::SUCCESS;
    }
    if !plugins.join("Cargo.toml").is_file() {
        return ExitCode::SUCCESS;
    }
    watch_sources(&root, &plugins);

    let artifacts = match build_plugins(&plugins, &target_dir) {
        Ok(artifacts) => artifacts,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    for plugin in &artifacts {
        if let Err(e) = embed_docs(&root.join("wit"), plugin) {
            eprintln!(
                "error: could not embed the WIT docs of {} into {}: {e:#}",
                plugin.wit_dir.display(),
                plugin.wasm.display()
            );
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// What `warden --version` prints after the name: the package version, then the commit the
/// binary was built from and its date, `0.1.0 (7cb0fdd 2026-11-27)`, with `-dirty` after the
/// hash when tracked files differed from it. The commit comes from git when `root` is the top
/// of a git work tree; otherwise from `WARDEN_COMMIT` (free text, e.g. `docker build
/// --build-arg WARDEN_COMMIT="$(git log -1 --format='%h %cs')"`); otherwise there is none.
fn version(root: &Path) -> String {
    let version = env::var("CARGO_PKG_VERSION").expect("set by cargo");
    println!("cargo:rerun-if-env-changed=WARDEN_COMMIT");
    let commit = git_commit(root).or_else(|| {
        env::var("WARDEN_COMMIT")
            .ok()
            .map(|commit| commit.trim().to_owned())
            .filter(|commit| !commit.is_empty())
    });
    match commit {
        Some(commit) => format!("{version} ({commit})"),
        None => version,
    }
}

/// `7cb0fdd 2026-11-27` (or `7cb0fdd-dirty 2026-11-27`) for the commit checked out at `root`,
/// and the `rerun-if-changed` lines that notice a new commit, a checkout, or an edit of the
/// host's sources. `-dirty` is as of the last run: an edit elsewhere (docs, tests) shows once
/// this script runs again. The index is not watched: `git add` or `git status` would rebuild
/// the crate for nothing.
///
/// `None` without git, outside a work tree, or in a work tree whose top is not `root` (warden's
/// sources vendored into another repository are not that repository's commit).
fn git_commit(root: &Path) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        // --no-optional-locks: a build only reads; `git status` must not rewrite the index of
        // a tree someone is working in (nor race their own git commands for its lock).
        let output = Command::new("git")
            .arg("--no-optional-locks")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()?;
        output.status.success().then(|| {
            String::from_utf8_lossy(&output.stdout)
                .trim_end()
                .to_owned()
        })
    };
    let dirs = git(&[
        "rev-parse",
        "--show-toplevel",
        "--git-dir",
        "--git-common-dir",
    ])?;
    let mut dirs = dirs.lines().map(|dir| root.join(dir));
    let (top, git_dir, common_dir) = (dirs.next()?, dirs.next()?, dirs.next()?);
    if fs::canonicalize(&top).ok()? != fs::canonicalize(root).ok()? {
        return None;
    }
    // HEAD, the branch it points to (loose or packed); the host's own sources, so that an edit
    // after the last commit shows as `-dirty`.
    let mut watch = vec![git_dir.join("HEAD")];
    if let Some(reference) = git(&["rev-parse", "--symbolic-full-name", "HEAD"])
        && reference.starts_with("refs/")
    {
        watch.push(common_dir.join(&reference));
    }
    watch.push(common_dir.join("packed-refs"));
    watch.extend(["host/src", "host/Cargo.toml", "Cargo.toml", "Cargo.lock"].map(|p| root.join(p)));
    for path in watch.iter().filter(|path| path.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    let commit = git(&["log", "-1", "--format=%h %cs"])?;
    let (hash, date) = commit.split_once(' ')?;
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|status| !status.is_empty());
    Some(format!(
        "{hash}{} {date}",
        if dirty { "-dirty" } else { "" }
    ))
}

/// Everything the plugins are built from. Directories are scanned by cargo for any newer file;
/// `plugins/target` (a stray local build) is deliberately not watched.
fn watch_sources(root: &Path, plugins: &Path) {
    let mut watch = vec![
        root.join("wit"),
        root.join("sdk").join("src"),
        root.join("sdk").join("wit"),
        root.join("sdk").join("Cargo.toml"),
        plugins.join("Cargo.toml"),
        plugins.join("Cargo.lock"),
    ];
    if let Ok(entries) = fs::read_dir(plugins) {
        for entry in entries.flatten() {
            let dir = entry.path();
            if dir.join("Cargo.toml").is_file() {
                for item in ["Cargo.toml", "src", "wit", "build.rs"] {
                    if dir.join(item).exists() {
                        watch.push(dir.join(item));
                    }
                }
            }
        }
    }
    for path in watch {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// One built plugin: its component and the WIT directory it was generated from.
struct Plugin {
    wasm: PathBuf,
    wit_dir: PathBuf,
}

/// Runs the nested cargo; returns the components it produced or a message explaining the failure.
fn build_plugins(plugins: &Path, target_dir: &Path) -> Result<Vec<Plugin>, String> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(plugins);
    for (key, _) in env::vars_os() {
        if leaks_into_nested_build(&key) {
            cmd.env_remove(&key);
        }
    }

    let started = Instant::now();
    let output = cmd.output().map_err(|e| {
        format!(
            "error: could not run `{}` to build the warden plugins: {e}\n\
             (set WARDEN_SKIP_PLUGIN_BUILD=1 to build the host without them)",
            cargo.to_string_lossy()
        )
    })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let hint = if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
            || stderr.contains("can't find crate for `std`")
        {
            format!("\nhint: the {TARGET} target is missing: `rustup target add {TARGET}`")
        } else {
            String::new()
        };
        return Err(format!(
            "{stderr}\n\
             error: building the warden plugins ({}) for {TARGET} failed ({}); the nested \
             cargo's output is above.{hint}\n\
             Set WARDEN_SKIP_PLUGIN_BUILD=1 to build the host without them.",
            plugins.join("Cargo.toml").display(),
            output.status,
        ));
    }

    let mut artifacts = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact"
            || !message["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        {
            continue;
        }
        let Some(manifest) = message["manifest_path"].as_str() else {
            continue;
        };
        let wit_dir = Path::new(manifest).with_file_name("wit");
        let wasm = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"));
        if let Some(wasm) = wasm
            && wit_dir.is_dir()
        {
            artifacts.push(Plugin {
                wasm: PathBuf::from(wasm),
                wit_dir,
            });
        }
    }
    // Visible with `cargo build -vv`; a warning on every build would be noise.
    eprintln!(
        "built {} plugin(s) for {TARGET} in {:.1}s",
        artifacts.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(artifacts)
}

/// Whether an environment variable of this build script would change what the nested cargo
/// does. Everything cargo sets for build scripts goes; the user's registry, network, HTTP and
/// terminal configuration stays.
fn leaks_into_nested_build(key: &OsStr) -> bool {
    let Some(key) = key.to_str() else {
        return false;
    };
    const KEEP: &[&str] = &[
        "CARGO_HOME",
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTR",
        "CARGO_TERM_",
    ];
    const DROP: &[&str] = &[
        "CARGO",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_LINKER",
        "RUSTDOC",
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "TARGET",
        "HOST",
        "OUT_DIR",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "NUM_JOBS",
        "MAKEFLAGS",
        "MFLAGS",
    ];
    if key.starts_with("CARGO_") {
        return !KEEP.iter().any(|keep| key.starts_with(keep));
    }
    DROP.contains(&key) || key.starts_with("DEP_") || key.starts_with("__CARGO")
}

/// Name of the custom section the host reads plugin docs from: `schema::WIT_DOCS_SECTION` in
/// `src/schema/docs.rs` (a build script cannot use the crate it builds).
const WIT_DOCS_SECTION: &str = "warden-wit";

/// Embeds the WIT doc comments of a plugin into its component.
///
/// wasm-component-ld (wit-component 0.263) keeps every type of the WIT but drops the doc comments,
/// which are the tools' descriptions (upstream: component-model#213, wasm-tools#2532). As
/// `schema::embed_wit_docs` does, this appends the plugin's own WIT package, binary-encoded with
/// its docs by `wit_component::encode`, as a top-level `warden-wit` custom section, which the
/// host's `describe_component` reads. Any earlier `warden-wit` section is replaced, so running it
/// again on a component that was not relinked changes nothing.
fn embed_docs(warden_wit: &Path, plugin: &Plugin) -> anyhow::Result<()> {
    let mut resolve = Resolve::default();
    // A plugin either vendors its dependencies in wit/deps, or relies on the repository's
    // `wit/` as the in-tree plugins do (`path: ["../../wit", "wit"]`).
    if !plugin.wit_dir.join("deps").is_dir() {
        resolve.push_dir(warden_wit)?;
        // The capability packages beside it (`wit/sql`), which a plugin may import.
        let mut packages: Vec<PathBuf> = fs::read_dir(warden_wit)?
            .filter_map(|entry| Some(entry.ok()?.path()))
            .filter(|path| path.is_dir() && !path.ends_with("deps"))
            .collect();
        packages.sort();
        for package in packages {
            resolve.push_dir(&package)?;
        }
    }
    let (package, _) = resolve.push_dir(&plugin.wit_dir)?;
    let encoded = wit_component::encode(&resolve, package, false)?;

    let wasm = fs::read(&plugin.wasm)?;
    let updated = replace_custom_section(&wasm, WIT_DOCS_SECTION, &encoded)?;
    if updated != wasm {
        fs::write(&plugin.wasm, updated)?;
    }
    Ok(())
}

/// Returns `wasm` with its top-level custom sections called `name` removed and one new one
/// holding `data` appended at the end.
fn replace_custom_section(wasm: &[u8], name: &str, data: &[u8]) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        wasm.len() >= 8 && wasm[..4] == *b"\0asm",
        "not a wasm binary"
    );
    let mut out = wasm[..8].to_vec();
    let mut at = 8;
    while at < wasm.len() {
        let start = at;
        let id = wasm[at];
        at += 1;
        let size = read_leb_u32(wasm, &mut at)? as usize;
        let body = wasm
            .get(at..at + size)
            .ok_or_else(|| anyhow::anyhow!("truncated section at offset {start}"))?;
        at += size;
        if id == 0 {
            let mut name_at = 0;
            let len = read_leb_u32(body, &mut name_at)? as usize;
            if body.get(name_at..name_at + len) == Some(name.as_bytes()) {
                continue;
            }
        }
        out.extend_from_slice(&wasm[start..at]);
    }
    let mut body = Vec::new();
    write_leb_u32(&mut body, name.len() as u32);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    out.push(0);
    write_leb_u32(&mut out, body.len() as u32);
    out.extend_from_slice(&body);
    Ok(out)
}

fn read_leb_u32(bytes: &[u8], at: &mut usize) -> anyhow::Result<u32> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = *bytes
            .get(*at)
            .ok_or_else(|| anyhow::anyhow!("truncated LEB128"))?;
        *at += 1;
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    anyhow::bail!("LEB128 too long")
}

fn write_leb_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
