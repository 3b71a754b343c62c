//! `warden completions SHELL` and `warden man`: generated from the command line's own
//! definition, so they never drift from it.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::Cli;

/// Print the completion script for `shell` on stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut command = Cli::command();
    // Into a buffer first: clap_complete panics on a write error, such as a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "warden", &mut script);
    super::write_stdout(&String::from_utf8_lossy(&script));
    ExitCode::SUCCESS
}

/// Print the man page (roff) on stdout; `warden COMMAND --help` details each command.
pub(super) fn man() -> Result<ExitCode> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .context("cannot render the man page")?;
    super::write_stdout(&String::from_utf8_lossy(&page));
    Ok(ExitCode::SUCCESS)
}
