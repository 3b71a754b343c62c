//! `warden keygen`: a fresh API key and the manifest entry that accepts it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Result, bail};

use warden::manifest::{check_principal, check_roles};

/// `--principal` and `--roles`, checked as the manifest checks them; the first problem found.
fn check_identity(principal: &str, roles: &[String]) -> Result<()> {
    if let Err(message) = check_principal(principal) {
        bail!("--principal: {message}");
    }
    if let Some((_, message)) = check_roles(roles).into_iter().next() {
        bail!("--roles: {message}");
    }
    Ok(())
}

/// `warden keygen`: a fresh key on the first line, then the TOML entry to paste.
pub(super) fn keygen(principal: &str, roles: &[String]) -> Result<ExitCode> {
    check_identity(principal, roles)?;
    let key = warden::auth::api_keys::generate()
        .map_err(|_| anyhow::anyhow!("the system's random generator failed"))?;
    let roles: Vec<String> = roles.iter().map(|role| format!("{role:?}")).collect();
    let mut out = String::new();
    writeln!(out, "{key}")?;
    writeln!(out)?;
    writeln!(
        out,
        "# Give the key above to the client (`Authorization: Bearer KEY` or `X-API-Key: KEY`);"
    )?;
    writeln!(
        out,
        "# it is shown only now. Add this entry to the manifest:"
    )?;
    writeln!(out, "[[auth.api_keys]]")?;
    writeln!(out, "principal = {principal:?}")?;
    writeln!(out, "roles = [{}]", roles.join(", "))?;
    writeln!(
        out,
        "sha256 = \"{}\"",
        warden::auth::api_keys::digest_hex(&key)
    )?;
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
