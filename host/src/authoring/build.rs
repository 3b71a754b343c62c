//! `warden build`: a plugin folder of any language, into a documented component.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use super::toolchain::{self, run};
use super::{AuthoringError, Lang, MCP_WIT, embed_docs};
use crate::schema::{ComponentDescription, describe_component};

/// Folders never copied or looked at as inputs of a build.
const SKIPPED: &[&str] = &["target", "node_modules", "__pycache__", ".git"];

/// What `warden build` is asked to do.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    /// The plugin folder: `Cargo.toml`, `app.py` or `app.js`, and `wit/`.
    pub dir: PathBuf,
    /// Where to write the component; default `DIR/target/NAME.wasm`, NAME being the plugin's
    /// WIT package name (`local:word-count` -> `word-count`), which is what the `warden.toml`
    /// of `warden new` serves.
    pub output: Option<PathBuf>,
    /// Where the Python and JavaScript toolchains are (or will be) installed; see
    /// [`toolchain::toolchains_dir`].
    pub toolchains: PathBuf,
    /// Build a Python or JavaScript plugin even when its component is newer than every input.
    /// (Rust plugins always run cargo, which knows what changed.)
    pub force: bool,
}

/// A component `warden build` wrote (or found up to date).
#[derive(Debug, Clone)]
pub struct Built {
    /// The plugin's language.
    pub lang: Lang,
    /// The plugin's name: its WIT package's name, the `[plugins.NAME]` of its manifest.
    pub name: String,
    /// The component.
    pub output: PathBuf,
    /// What warden serves from it (its docs included).
    pub description: ComponentDescription,
    /// `false` when nothing was built because the component was up to date.
    pub rebuilt: bool,
}

/// The language of the plugin in `dir`, from the first of `Cargo.toml`, `app.py` and `app.js`
/// it holds (beside a `wit/` folder).
pub fn detect_lang(dir: &Path) -> Result<Lang, AuthoringError> {
    Lang::ALL
        .into_iter()
        .find(|lang| dir.join(lang.marker()).is_file())
        .filter(|_| dir.join("wit").is_dir())
        .ok_or_else(|| AuthoringError::NotAPlugin {
            path: dir.to_path_buf(),
        })
}

/// Build the plugin in `plan.dir` into a component with its WIT docs embedded.
///
/// Rust: `cargo build --release --target wasm32-wasip2` (cargo's output is shown as it goes).
/// Python: componentize-py on a copy of the folder, so the build leaves nothing behind in it.
/// JavaScript: componentize-js through the API (`fetch-event` disabled: it would export an HTTP
/// handler, and warden serves every export as a tool). Both take the plugin's world (`plugin`,
/// or the package's only world) with `warden:mcp` from `wit/deps/`, or from this binary when
/// there is no `deps/`; their toolchains are installed on first use ([`toolchain`]).
///
/// The new component is written to a temporary file beside the output, given its docs
/// ([`embed_docs`]), checked with [`describe_component`] (it must be a component warden can
/// serve), and only then renamed over the output: a failed build leaves the previous component
/// byte for byte as it was. `progress` gets a line for each step.
pub fn build_plugin(plan: &BuildPlan, progress: &dyn Fn(&str)) -> Result<Built, AuthoringError> {
    let lang = detect_lang(&plan.dir)?;
    let wit_dir = plan.dir.join("wit");
    let world = PluginWorld::load(&wit_dir)?;
    let output = plan
        .output
        .clone()
        .unwrap_or_else(|| plan.dir.join("target").join(format!("{}.wasm", world.name)));
    if !plan.force && lang != Lang::Rust && up_to_date(&plan.dir, &output) {
        let bytes = read(&output)?;
        progress(&format!("{} is up to date", world.name));
        return Ok(Built {
            lang,
            name: world.name,
            output,
            description: describe_component(&bytes)?,
            rebuilt: false,
        });
    }
    let parent = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|source| AuthoringError::Io {
        path: parent.clone(),
        source,
    })?;
    let staging = tempfile::Builder::new()
        .prefix(".warden-build-")
        .tempdir_in(&parent)
        .map_err(|source| AuthoringError::Io {
            path: parent.clone(),
            source,
        })?;
    let started = Instant::now();
    progress(&format!(
        "building {} ({lang}, world {}) in {}",
        world.name,
        world.qualified,
        plan.dir.display()
    ));
    let bare = match lang {
        Lang::Rust => build_rust(&plan.dir)?,
        Lang::Python => {
            let program = toolchain::componentize_py(&plan.toolchains, progress)?;
            build_python(&plan.dir, &program, &world, staging.path())?
        }
        Lang::Js => {
            let tools = toolchain::componentize_js(&plan.toolchains, progress)?;
            build_js(&plan.dir, &tools, &world, staging.path())?
        }
    };
    let documented = embed_docs(&bare, &wit_dir)?;
    let description = describe_component(&documented)?;
    let io = |source| AuthoringError::Io {
        path: output.clone(),
        source,
    };
    let mut temp = tempfile::NamedTempFile::new_in(&parent).map_err(io)?;
    std::io::Write::write_all(&mut temp, &documented).map_err(io)?;
    // A temporary file is private (0600); the component keeps the mode of the one it
    // replaces, or gets a plain file's, so a server running as another user can read it.
    let permissions = match std::fs::metadata(&output) {
        Ok(old) => old.permissions(),
        Err(_) => plain_file_permissions(temp.as_file()).map_err(io)?,
    };
    temp.as_file().set_permissions(permissions).map_err(io)?;
    temp.persist(&output).map_err(|e| io(e.error))?;
    progress(&format!(
        "built {} in {:.1} s ({} bytes)",
        world.name,
        started.elapsed().as_secs_f64(),
        documented.len()
    ));
    Ok(Built {
        lang,
        name: world.name,
        output,
        description,
        rebuilt: true,
    })
}

/// What a new file gets by default: `0644` on Unix.
fn plain_file_permissions(file: &std::fs::File) -> std::io::Result<std::fs::Permissions> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = file;
        Ok(std::fs::Permissions::from_mode(0o644))
    }
    #[cfg(not(unix))]
    {
        file.metadata().map(|m| m.permissions())
    }
}

/// The world a plugin's WIT asks to build.
struct PluginWorld {
    /// The package's name without namespace or version (`local:word-count` -> `word-count`).
    name: String,
    /// `namespace:name/world`, as componentize-py and componentize-js take it.
    qualified: String,
}

impl PluginWorld {
    fn load(wit_dir: &Path) -> Result<Self, AuthoringError> {
        let (resolve, package) = super::embed::load_wit(wit_dir)?;
        let package = &resolve.packages[package];
        let world = if package.worlds.contains_key("plugin") {
            "plugin"
        } else if package.worlds.len() == 1 {
            package
                .worlds
                .keys()
                .next()
                .map_or("plugin", String::as_str)
        } else {
            return Err(AuthoringError::NoWorld {
                path: wit_dir.to_path_buf(),
            });
        };
        Ok(Self {
            name: package.name.name.clone(),
            qualified: format!("{}:{}/{world}", package.name.namespace, package.name.name),
        })
    }
}

/// `cargo build --release --target wasm32-wasip2` in `dir`; the bytes of the `cdylib` it
/// produced (wherever `CARGO_TARGET_DIR` puts it).
fn build_rust(dir: &Path) -> Result<Vec<u8>, AuthoringError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| AuthoringError::Program {
            program: cargo.to_string_lossy().into_owned(),
            source,
            hint: "Rust plugins need Rust (https://rustup.rs) with the wasm32-wasip2 target",
        })?;
    let manifest = std::fs::canonicalize(dir.join("Cargo.toml")).ok();
    let mut artifact = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if message["reason"] != "compiler-artifact"
                || message["manifest_path"]
                    .as_str()
                    .and_then(|path| std::fs::canonicalize(path).ok())
                    != manifest
            {
                continue;
            }
            let is_cdylib = message["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|kind| kind == "cdylib"));
            if !is_cdylib {
                continue;
            }
            if let Some(wasm) = message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|name| name.as_str())
                .find(|name| name.ends_with(".wasm"))
            {
                artifact = Some(PathBuf::from(wasm));
            }
        }
    }
    let status = child.wait().map_err(|source| AuthoringError::Program {
        program: cargo.to_string_lossy().into_owned(),
        source,
        hint: "cargo stopped unexpectedly",
    })?;
    if !status.success() {
        return Err(AuthoringError::Step {
            step: "cargo build".to_owned(),
            status,
            after: "; the previous component is untouched",
        });
    }
    let artifact = artifact.ok_or_else(|| AuthoringError::NoArtifact {
        path: dir.to_path_buf(),
    })?;
    read(&artifact)
}

/// componentize-py on a copy of `dir` (its `__pycache__` stays out of the source tree).
fn build_python(
    dir: &Path,
    program: &Path,
    world: &PluginWorld,
    staging: &Path,
) -> Result<Vec<u8>, AuthoringError> {
    let source = staging.join("src");
    copy_tree(dir, &source)?;
    let wit = stage_wit(dir, staging)?;
    let out = staging.join("component.wasm");
    run(
        Command::new(program)
            .arg("-d")
            .arg(&wit)
            .arg("-w")
            .arg(&world.qualified)
            .args(["componentize", "app", "-o"])
            .arg(&out)
            .current_dir(&source),
        "componentize-py",
        "the toolchain is installed under the toolchain directory; delete it to reinstall",
    )
    .map_err(untouched)?;
    read(&out)
}

/// componentize-js (through `componentize.mjs`) on `dir/app.js`.
fn build_js(
    dir: &Path,
    tools: &Path,
    world: &PluginWorld,
    staging: &Path,
) -> Result<Vec<u8>, AuthoringError> {
    let wit = stage_wit(dir, staging)?;
    let out = staging.join("component.wasm");
    let app = std::path::absolute(dir.join("app.js")).map_err(|source| AuthoringError::Read {
        path: dir.join("app.js"),
        source,
    })?;
    run(
        Command::new("node")
            .arg("componentize.mjs")
            .arg(&app)
            .arg(&wit)
            .arg(&world.qualified)
            .arg(&out)
            .current_dir(tools),
        "componentize-js",
        "JavaScript plugins need Node 18+ and npm",
    )
    .map_err(untouched)?;
    read(&out)
}

/// A failed toolchain step says that the previous component is still there.
fn untouched(error: AuthoringError) -> AuthoringError {
    match error {
        AuthoringError::Step { step, status, .. } => AuthoringError::Step {
            step,
            status,
            after: "; its errors are above; the previous component is untouched",
        },
        other => other,
    }
}

/// A copy of `dir/wit` in `staging/wit` with `warden:mcp` in `deps/` when it has none: the
/// Python and JavaScript toolchains take one WIT folder.
fn stage_wit(dir: &Path, staging: &Path) -> Result<PathBuf, AuthoringError> {
    let wit = staging.join("wit");
    copy_tree(&dir.join("wit"), &wit)?;
    let deps = wit.join("deps");
    if !deps.is_dir() {
        let mcp = deps.join("warden-mcp");
        std::fs::create_dir_all(&mcp).map_err(|source| AuthoringError::Io {
            path: mcp.clone(),
            source,
        })?;
        let path = mcp.join("mcp.wit");
        std::fs::write(&path, MCP_WIT).map_err(|source| AuthoringError::Io { path, source })?;
    }
    Ok(std::path::absolute(&wit).unwrap_or(wit))
}

/// Copy the files of `from` into `to`, recursively, without the [`SKIPPED`] folders and
/// without following links to folders.
fn copy_tree(from: &Path, to: &Path) -> Result<(), AuthoringError> {
    std::fs::create_dir_all(to).map_err(|source| AuthoringError::Io {
        path: to.to_path_buf(),
        source,
    })?;
    let entries = std::fs::read_dir(from).map_err(|source| AuthoringError::Read {
        path: from.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| AuthoringError::Read {
            path: from.to_path_buf(),
            source,
        })?;
        let name = entry.file_name();
        let path = entry.path();
        // A link to a folder is not followed (a loop would never end); a link to a file is
        // copied as the file.
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            if !skipped(&name) {
                copy_tree(&path, &to.join(&name))?;
            }
        } else if path.is_file() {
            let target = to.join(&name);
            std::fs::copy(&path, &target).map_err(|source| AuthoringError::Io {
                path: target,
                source,
            })?;
        }
    }
    Ok(())
}

/// Whether `output` is newer than every file of `dir` (but the [`SKIPPED`] folders) and than
/// the running warden (whose toolchain pins and `warden:mcp` may have changed).
fn up_to_date(dir: &Path, output: &Path) -> bool {
    let Some(built) = modified(output) else {
        return false;
    };
    let exe = std::env::current_exe().ok().and_then(|exe| modified(&exe));
    exe.is_none_or(|exe| exe < built) && newest(dir).is_some_and(|newest| newest < built)
}

/// The newest modification time of the files under `dir`; `None` if anything cannot be read.
/// (Folders' own times change when a build adds `target/`: they are not inputs.)
fn newest(dir: &Path) -> Option<SystemTime> {
    let mut latest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).ok()? {
        let entry = entry.ok()?;
        let path = entry.path();
        let time = if entry.file_type().ok()?.is_dir() {
            if skipped(&entry.file_name()) {
                continue;
            }
            newest(&path)?
        } else {
            modified(&path)?
        };
        latest = latest.max(time);
    }
    Some(latest)
}

/// Whether a folder is left out of copies and input times: [`SKIPPED`] and build staging.
fn skipped(name: &std::ffi::OsStr) -> bool {
    SKIPPED.iter().any(|skipped| name == *skipped)
        || name.to_string_lossy().starts_with(".warden-build-")
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read(path: &Path) -> Result<Vec<u8>, AuthoringError> {
    std::fs::read(path).map_err(|source| AuthoringError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_loop_in_a_plugin_folder_is_copied_and_dated_without_following_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plugin = dir.path().join("plugin");
        std::fs::create_dir_all(plugin.join("wit")).expect("mkdir");
        std::fs::write(plugin.join("app.py"), "x = 1\n").expect("write");
        std::os::unix::fs::symlink(&plugin, plugin.join("loop")).expect("symlink");
        std::os::unix::fs::symlink(plugin.join("app.py"), plugin.join("alias.py"))
            .expect("symlink");

        assert!(newest(&plugin).is_some());
        let copy = dir.path().join("copy");
        copy_tree(&plugin, &copy).expect("copy");
        assert!(copy.join("app.py").is_file());
        // A link to a file is copied as the file; a link to a folder is left out.
        assert_eq!(
            std::fs::read_to_string(copy.join("alias.py")).expect("read"),
            "x = 1\n"
        );
        assert!(!copy.join("loop").exists());
    }
}
