//! `warden init [FILE]`: a commented starter manifest.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

/// The starter: every section explained, a plugin example commented out. It passes
/// `warden check` as written (tests/cli.rs checks that).
const STARTER: &str = include_str!("starter.toml");

/// Write the starter manifest at `path`; an existing file is never overwritten.
pub(super) fn init(path: &Path) -> Result<ExitCode> {
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "{} already exists: warden init never overwrites a file; pick another name (`warden init other.toml`)",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    file.write_all(STARTER.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "wrote {}: add a [plugins.NAME] table, then `warden check --manifest {}`",
        path.display(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
