//! The Python and JavaScript toolchains `warden build` installs on first use.
//!
//! They live in one cache directory ([`toolchains_dir`]): `python/` is a virtualenv holding
//! componentize-py [`COMPONENTIZE_PY_VERSION`], `js/` an npm project holding componentize-js
//! and jco (pinned in `js/package.json`, compiled into warden). An installation is finished
//! when its stamp file exists; a half-finished one has none and is redone from scratch. A lock
//! file per toolchain keeps two builds from installing at once.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::AuthoringError;

/// The componentize-py release `warden build` installs for Python plugins.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The npm project installed for JavaScript plugins (componentize-js 0.23.0, jco 1.35.0).
pub const JS_PACKAGE_JSON: &str = include_str!("js/package.json");

/// The script that calls componentize-js's API (`node componentize.mjs SOURCE WIT WORLD OUT`).
const COMPONENTIZE_MJS: &str = include_str!("js/componentize.mjs");

/// Where toolchains are installed: `$WARDEN_TOOLCHAINS`, else
/// `$XDG_CACHE_HOME/warden/toolchains`, else `~/.cache/warden/toolchains`; `None` when none of
/// these variables is set.
pub fn toolchains_dir() -> Option<PathBuf> {
    toolchains_dir_from(|name| std::env::var_os(name))
}

/// [`toolchains_dir`] with the environment given by `env`; an empty variable counts as unset.
fn toolchains_dir_from(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let var = |name| env(name).filter(|value| !value.is_empty());
    if let Some(dir) = var("WARDEN_TOOLCHAINS") {
        return Some(PathBuf::from(dir));
    }
    if let Some(cache) = var("XDG_CACHE_HOME") {
        return Some(PathBuf::from(cache).join("warden/toolchains"));
    }
    var("HOME").map(|home| PathBuf::from(home).join(".cache/warden/toolchains"))
}

/// The componentize-py program, installed into `toolchains/python` first if needed.
///
/// The virtualenv is made by `$PYTHON` (default `python3`, 3.10 or later, with `venv` and
/// `pip`). `progress` gets one line before and one after an installation.
pub fn componentize_py(
    toolchains: &Path,
    progress: &dyn Fn(&str),
) -> Result<PathBuf, AuthoringError> {
    let venv = toolchains.join("python");
    let program = venv.join("bin/componentize-py");
    let stamp = venv.join(format!(
        ".complete-componentize-py-{COMPONENTIZE_PY_VERSION}"
    ));
    let _lock = lock(toolchains, "python")?;
    if stamp.is_file() {
        return Ok(program);
    }
    progress(&format!(
        "installing componentize-py {COMPONENTIZE_PY_VERSION} into {} (first build only)...",
        venv.display()
    ));
    let started = Instant::now();
    remove_dir(&venv)?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let hint = "Python plugins need Python 3.10+ with venv and pip (set PYTHON to choose one)";
    run(
        Command::new(&python).arg("-m").arg("venv").arg(&venv),
        &format!("{python} -m venv"),
        hint,
    )?;
    run(
        Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("componentize-py=={COMPONENTIZE_PY_VERSION}"),
        ]),
        &format!("pip install componentize-py=={COMPONENTIZE_PY_VERSION}"),
        hint,
    )?;
    touch(&stamp)?;
    progress(&format!(
        "installed componentize-py {COMPONENTIZE_PY_VERSION} in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(program)
}

/// The folder holding componentize-js's `node_modules` and `componentize.mjs`, installed into
/// `toolchains/js` with npm first if needed (Node 18+; about 30 s and 385 MB).
pub fn componentize_js(
    toolchains: &Path,
    progress: &dyn Fn(&str),
) -> Result<PathBuf, AuthoringError> {
    let dir = toolchains.join("js");
    let digest = hex::encode(Sha256::digest(JS_PACKAGE_JSON.as_bytes()));
    let stamp = dir.join(format!(".complete-{}", &digest[..16]));
    let _lock = lock(toolchains, "js")?;
    if !stamp.is_file() {
        progress(&format!(
            "installing componentize-js 0.23.0 and jco 1.35.0 into {} with npm (first build \
             only, about 30 s)...",
            dir.display()
        ));
        let started = Instant::now();
        remove_dir(&dir)?;
        create_dir(&dir)?;
        write(&dir.join("package.json"), JS_PACKAGE_JSON)?;
        run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir),
            "npm install",
            "JavaScript plugins need Node 18+ and npm",
        )?;
        touch(&stamp)?;
        progress(&format!(
            "installed componentize-js in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
    }
    write(&dir.join("componentize.mjs"), COMPONENTIZE_MJS)?;
    Ok(dir)
}

/// Run `command` with its stdout sent to stderr (warden's stdout is for its own report).
pub(super) fn run(
    command: &mut Command,
    step: &str,
    hint: &'static str,
) -> Result<(), AuthoringError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(|source| AuthoringError::Program {
            program,
            source,
            hint,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(AuthoringError::Step {
            step: step.to_owned(),
            status,
            after: "",
        })
    }
}

/// An exclusive lock on `toolchains/.NAME.lock`, held until the file is dropped.
fn lock(toolchains: &Path, name: &str) -> Result<File, AuthoringError> {
    create_dir(toolchains)?;
    let path = toolchains.join(format!(".{name}.lock"));
    let io = |source| AuthoringError::Io {
        path: path.clone(),
        source,
    };
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    file.lock().map_err(io)?;
    Ok(file)
}

fn create_dir(dir: &Path) -> Result<(), AuthoringError> {
    std::fs::create_dir_all(dir).map_err(|source| AuthoringError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn remove_dir(dir: &Path) -> Result<(), AuthoringError> {
    match std::fs::remove_dir_all(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(AuthoringError::Io {
            path: dir.to_path_buf(),
            source: error,
        }),
        _ => Ok(()),
    }
}

fn write(path: &Path, text: &str) -> Result<(), AuthoringError> {
    std::fs::write(path, text).map_err(|source| AuthoringError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn touch(path: &Path) -> Result<(), AuthoringError> {
    write(path, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toolchain_directory_follows_the_environment() {
        let with = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, OsString)> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
                .collect();
            toolchains_dir_from(move |name| {
                vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
            })
        };
        let all = [
            ("WARDEN_TOOLCHAINS", "/t"),
            ("XDG_CACHE_HOME", "/xdg"),
            ("HOME", "/home/ada"),
        ];
        assert_eq!(with(&all), Some(PathBuf::from("/t")));
        assert_eq!(
            with(&all[1..]),
            Some(PathBuf::from("/xdg/warden/toolchains"))
        );
        assert_eq!(
            with(&[("WARDEN_TOOLCHAINS", ""), ("HOME", "/home/ada")]),
            Some(PathBuf::from("/home/ada/.cache/warden/toolchains"))
        );
        assert_eq!(with(&[]), None);
    }

    #[test]
    fn the_js_toolchain_pins_exact_versions() {
        let package: serde_json::Value =
            serde_json::from_str(JS_PACKAGE_JSON).expect("package.json is JSON");
        let dependencies = package["dependencies"].as_object().expect("dependencies");
        assert_eq!(dependencies["@bytecodealliance/componentize-js"], "0.23.0");
        assert!(dependencies.values().all(|v| {
            v.as_str()
                .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        }));
    }
}
