//! `warden push FILE oci://REGISTRY/REPO:TAG [--sign KEY]`: publish a component as a wasm OCI
//! artifact; `warden sign TARGET --key KEY`: sign a file (a detached Sigstore bundle) or a
//! pinned OCI artifact (a cosign signature in the registry).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use warden::manifest::OciRef;
use warden::signing::{SigningKey, cosign};

use super::write_stdout;

/// `warden push COMPONENT REFERENCE [--sign KEY]`.
pub(super) fn push(component: &Path, reference: &str, sign: Option<&Path>) -> Result<ExitCode> {
    let Some(target) =
        OciRef::parse(reference).map_err(|e| anyhow::anyhow!("{e}: `{reference}`"))?
    else {
        bail!("`{reference}` is not an OCI reference: expected oci://REGISTRY/REPOSITORY:TAG");
    };
    if target.tag.is_none() || target.digest.is_some() {
        bail!("push to a tag, without a digest: oci://REGISTRY/REPOSITORY:TAG");
    }
    // Refuse a bad key or a file that is not a component before anything is sent.
    let key = sign.map(signing_key).transpose()?;
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
    let mut out = format!(
        "pushed {target}\ndigest {}\ncomponent = \"{}\"\n",
        pushed.digest, pushed.pinned
    );
    if let Some(key) = key {
        sign_artifact(&target, &pushed.digest, &key)?;
        out.push_str(&signed_line(&target, &pushed.digest, &key));
    }
    write_stdout(&out);
    Ok(ExitCode::SUCCESS)
}

/// `warden sign TARGET --key KEY [--bundle FILE]`.
pub(super) fn sign(target: &str, key: &Path, bundle: Option<&Path>) -> Result<ExitCode> {
    let key = signing_key(key)?;
    let reference = OciRef::parse(target).map_err(|e| anyhow::anyhow!("{e}: `{target}`"))?;
    if let Some(reference) = reference {
        let Some(digest) = reference.digest.clone() else {
            bail!(
                "sign a pinned reference, oci://REGISTRY/REPOSITORY@sha256:DIGEST, so that what is signed cannot move (`warden push` prints it)"
            );
        };
        sign_artifact(&reference, &digest, &key)?;
        write_stdout(&signed_line(&reference, &digest, &key));
        return Ok(ExitCode::SUCCESS);
    }
    let file = Path::new(target);
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {target}"))?;
    let out = match bundle {
        Some(path) => path.to_path_buf(),
        None => {
            let mut path = file.as_os_str().to_owned();
            path.push(warden::manifest::BUNDLE_SUFFIX);
            path.into()
        }
    };
    let json = warden::signing::bundle::Bundle::sign(&bytes, &key)?;
    std::fs::write(&out, json).with_context(|| format!("cannot write {}", out.display()))?;
    write_stdout(&format!(
        "signed {target} with key {}\nbundle {}\n",
        key.public_key().fingerprint(),
        out.display()
    ));
    Ok(ExitCode::SUCCESS)
}

fn signing_key(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key {}", path.display()))?;
    SigningKey::from_pem(&text).with_context(|| format!("the key {}", path.display()))
}

/// Sign manifest `digest` of `reference`'s repository and add the signature to the registry.
fn sign_artifact(reference: &OciRef, digest: &str, key: &SigningKey) -> Result<()> {
    let docker_reference = format!("{}/{}", reference.registry, reference.repository);
    let layer = cosign::sign(&docker_reference, digest, key)?;
    warden::oci::push_signature(reference, digest, layer)?;
    Ok(())
}

fn signed_line(reference: &OciRef, digest: &str, key: &SigningKey) -> String {
    format!(
        "signed {}/{}@{digest} with key {} (tag {})\n",
        reference.registry,
        reference.repository,
        key.public_key().fingerprint(),
        cosign::signature_tag(digest)
    )
}
