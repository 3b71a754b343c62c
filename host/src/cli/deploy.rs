//! `warden deploy network-policy`: a Kubernetes NetworkPolicy rendered from the manifest
//! (`warden::deploy`), on stdout.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};

use warden::deploy::{Options, render};
use warden::manifest::Manifest;

use super::write_stdout;

/// Load the manifest (no component is opened) and print its policy.
pub(super) fn network_policy(path: &Path, options: &Options) -> Result<ExitCode> {
    let _span = tracing::info_span!("deploy_network_policy", manifest = %path.display()).entered();
    let manifest = Manifest::load(path).map_err(|e| anyhow::anyhow!("invalid manifest:\n{e}"))?;
    let policy = render(&manifest, options).map_err(|e| anyhow::anyhow!("{e}"))?;
    write_stdout(&policy);
    Ok(ExitCode::SUCCESS)
}

/// `--selector KEY=VALUE`.
pub(super) fn label(text: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => bail!("expected KEY=VALUE, such as app.kubernetes.io/name=warden"),
    }
}
