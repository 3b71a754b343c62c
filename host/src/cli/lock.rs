//! `warden lock [--diff]`: write `warden.lock`, or show how the tools differ from it.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use warden::lock::{self, Lock};
use warden::manifest::Manifest;

use super::{join, write_stdout};

/// `warden lock [--manifest FILE] [--diff]`.
pub(super) fn lock(path: &Path, diff: bool) -> Result<ExitCode> {
    let manifest = Manifest::load(path).map_err(|e| anyhow::anyhow!("invalid manifest:\n{e}"))?;
    let catalog =
        warden::host::describe(&manifest).map_err(|errors| anyhow::anyhow!(join(&errors)))?;
    let current = Lock::of(&catalog);
    let lock_path = lock::path_for(&manifest);
    let previous = match Lock::read(&lock_path) {
        Err(error) if !diff => {
            eprintln!("warning: replacing a lock that cannot be read: {error}");
            None
        }
        other => other?,
    };
    if diff {
        let Some(previous) = previous else {
            write_stdout(&format!(
                "{} does not exist: run `warden lock` to write it\n",
                lock_path.display()
            ));
            return Ok(ExitCode::from(1));
        };
        let drift = previous.diff(&current);
        if drift.is_empty() {
            write_stdout(&format!(
                "no drift: the tools match {}\n",
                lock_path.display()
            ));
            return Ok(ExitCode::SUCCESS);
        }
        let mut text = format!("the tools differ from {}:\n", lock_path.display());
        for plugin in &drift {
            let _ = write!(text, "{plugin}");
        }
        text.push_str("review the changes, then run `warden lock` to accept them\n");
        write_stdout(&text);
        return Ok(ExitCode::from(1));
    }
    let changed = previous.as_ref().map(|p| p.diff(&current).len());
    current.write(&lock_path)?;
    let tools: usize = current.plugins.values().map(|p| p.tools.len()).sum();
    let what = match changed {
        None => "written".to_owned(),
        Some(0) => "unchanged".to_owned(),
        Some(n) => format!("updated ({n} plugin(s) changed)"),
    };
    write_stdout(&format!(
        "{} {what}: {} plugin(s), {tools} tool(s)\n",
        lock_path.display(),
        current.plugins.len()
    ));
    Ok(ExitCode::SUCCESS)
}
