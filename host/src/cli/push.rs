//! `warden push FILE oci://REGISTRY/REPO:TAG`: publish a component as a wasm OCI artifact.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use warden::manifest::OciRef;

use super::write_stdout;

/// `warden push COMPONENT REFERENCE`.
pub(super) fn push(component: &Path, reference: &str) -> Result<ExitCode> {
    let Some(target) =
        OciRef::parse(reference).map_err(|e| anyhow::anyhow!("{e}: `{reference}`"))?
    else {
        bail!("`{reference}` is not an OCI reference: expected oci://REGISTRY/REPOSITORY:TAG");
    };
    if target.tag.is_none() || target.digest.is_some() {
        bail!("push to a tag, without a digest: oci://REGISTRY/REPOSITORY:TAG");
    }
    // Refuse what is not a component before anything is sent.
    let bytes =
        std::fs::read(component).with_context(|| format!("cannot read {}", component.display()))?;
    warden::schema::describe_component(&bytes)
        .with_context(|| format!("{} is not a usable component", component.display()))?;
    let created = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(secs) => {
            let secs: u64 = secs
                .trim()
                .parse()
                .context("SOURCE_DATE_EPOCH is not a number of seconds")?;
            UNIX_EPOCH + Duration::from_secs(secs)
        }
        Err(_) => SystemTime::now(),
    };
    let pushed = warden::oci::push(component, &target, created)?;
    write_stdout(&format!(
        "pushed {target}\ndigest {}\ncomponent = \"{}\"\n",
        pushed.digest, pushed.pinned
    ));
    Ok(ExitCode::SUCCESS)
}
