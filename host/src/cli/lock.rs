//! `warden lock [--diff]`: write `warden.lock`, or show how what the plugins serve
//! (tools, prompts, resources, templates) differs from it.

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
        if !previous.pins_texts() && current.plugins.values().any(|p| p.has_texts()) {
            write_stdout(&format!(
                "{} is a version 1 lock: the prompts, resources and templates are not pinned (run `warden lock` to pin them)\n",
                lock_path.display()
            ));
        }
        if drift.is_empty() {
            write_stdout(&format!(
                "no drift: the tools, prompts and resources match {}\n",
                lock_path.display()
            ));
            return Ok(ExitCode::SUCCESS);
        }
        let mut text = format!(
            "what the plugins serve differs from {}:\n",
            lock_path.display()
        );
        for plugin in &drift {
            let _ = write!(text, "{plugin}");
        }
        text.push_str("review the changes, then run `warden lock` to accept them\n");
        write_stdout(&text);
        return Ok(ExitCode::from(1));
    }
    let changed = previous.as_ref().map(|p| p.diff(&current).len());
    current.write(&lock_path)?;
    let count =
        |f: fn(&lock::LockedPlugin) -> usize| current.plugins.values().map(f).sum::<usize>();
    let tools = count(|p| p.tools.len());
    let prompts = count(|p| p.prompts.len());
    let resources = count(|p| p.resources.len() + p.templates.len());
    let upgraded = previous.as_ref().is_some_and(|p| !p.pins_texts());
    let what = match changed {
        None => "written".to_owned(),
        Some(0) if upgraded => "updated (it now pins prompts, resources and templates)".to_owned(),
        Some(0) => "unchanged".to_owned(),
        Some(n) => format!("updated ({n} plugin(s) changed)"),
    };
    write_stdout(&format!(
        "{} {what}: {} plugin(s), {tools} tool(s), {prompts} prompt(s), {resources} resource(s) and template(s)\n",
        lock_path.display(),
        current.plugins.len()
    ));
    Ok(ExitCode::SUCCESS)
}
