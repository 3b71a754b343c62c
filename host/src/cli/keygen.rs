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

/// `warden keygen --audit FILE`: a new audit signing key in FILE, its public key on stdout.
pub(super) fn audit_key(file: &std::path::Path) -> Result<ExitCode> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let (key, pem) = warden::audit::SigningKey::generate()?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", file.display()))?;
    out.write_all(pem.as_bytes())?;
    out.sync_all()?;
    let public = key.public();
    let mut text = String::new();
    writeln!(text, "{}", public.pem().trim_end())?;
    writeln!(text)?;
    writeln!(
        text,
        "# The audit signing key (key id {}) is in {}; keep it from the log's readers.",
        public.id(),
        file.display()
    )?;
    writeln!(
        text,
        "# The public key above verifies the log: `warden audit verify --key PUB`. Add:"
    )?;
    writeln!(text, "[audit]")?;
    writeln!(text, "signing_key = {:?}", file.display().to_string())?;
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
