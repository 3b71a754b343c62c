//! A plugin's `verify` policy, checked against its component after the digest check of a pull
//! and before anything compiles it.
//!
//! The component's bytes are read once here; the plugin is then pinned to their SHA-256, so the
//! runtime refuses any other file it might read later. A key policy on an `oci://` component
//! without a `bundle` reads cosign's `.sig` tag for the manifest digest the pull checked; every
//! other policy reads a Sigstore bundle file. Either way the signer found is recorded on the
//! plugin (`signer`) for its provenance.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::HostError;
use crate::manifest::{self, SignerPolicy};
use crate::oci::MAX_COMPONENT_SIZE;
use crate::signing::bundle::{self, Bundle};
use crate::signing::keyless::{self, Identity, TrustedRoot};
use crate::signing::{PublicKey, cosign};

/// The largest bundle or trusted root read.
const MAX_SIGNATURE_FILE: u64 = 1 << 20;

/// Check `config`'s signature policy, if it has one: on success the plugin is pinned to the
/// bytes checked and `signer` names who signed them.
pub(super) fn check(config: &mut manifest::Plugin) -> Result<(), HostError> {
    let Some(verify) = config.verify.clone() else {
        return Ok(());
    };
    let refuse = |message: String| HostError {
        location: Some(verify.location.clone()),
        message: format!(
            "plugin `{}`: refused, its signature does not satisfy `verify`: {message}",
            config.name
        ),
    };
    let bytes = read(&config.component, MAX_COMPONENT_SIZE).map_err(&refuse)?;
    let signer = match (&verify.signer, &verify.bundle) {
        (SignerPolicy::Key(key), None) => {
            let key = public_key(key).map_err(&refuse)?;
            let (Some(reference), Some(digest)) = (&config.oci, &config.oci_resolved) else {
                return Err(refuse("no bundle to read the signature from".into()));
            };
            let layers =
                crate::oci::signatures(reference, digest).map_err(|e| refuse(e.to_string()))?;
            cosign::verify(&layers, digest, &key).map_err(|e| refuse(e.to_string()))?;
            format!("key {}", key.fingerprint())
        }
        (policy, Some(path)) => {
            let bundle = read_bundle(path).map_err(&refuse)?;
            let signer = match policy {
                SignerPolicy::Key(key) => {
                    let key = public_key(key).map_err(&refuse)?;
                    bundle::verify_with_key(&bytes, &bundle, &key)
                }
                SignerPolicy::Identity {
                    identity,
                    issuer,
                    trusted_root,
                } => {
                    let root = read(trusted_root, MAX_SIGNATURE_FILE).map_err(&refuse)?;
                    let root = TrustedRoot::from_json(&root)
                        .map_err(|e| refuse(format!("{}: {e}", trusted_root.display())))?;
                    let policy = Identity {
                        identity: identity.clone(),
                        issuer: issuer.clone(),
                    };
                    keyless::verify_keyless(&bytes, &bundle, &root, &policy)
                }
            };
            signer.map_err(|e| refuse(e.to_string()))?.to_string()
        }
        (SignerPolicy::Identity { .. }, None) => {
            return Err(refuse("keyless verification needs a bundle".into()));
        }
    };
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    // An operator's own pin that differs is refused by the runtime, which checks it.
    config.sha256 = config.sha256.or(Some(digest));
    tracing::debug!(plugin = %config.name, %signer, "signature verified");
    config.signer = Some(signer);
    Ok(())
}

/// A detached bundle; a missing one means the component is unsigned.
fn read_bundle(path: &Path) -> Result<Bundle, String> {
    if !path.exists() {
        return Err(format!(
            "unsigned: no signature bundle at {} (`warden sign COMPONENT --key KEY` writes one)",
            path.display()
        ));
    }
    let bytes = read(path, MAX_SIGNATURE_FILE)?;
    Bundle::from_json(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn public_key(path: &Path) -> Result<PublicKey, String> {
    let text = read(path, MAX_SIGNATURE_FILE)?;
    let text = String::from_utf8_lossy(&text);
    PublicKey::from_pem(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// At most `max` bytes of `path`.
fn read(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(format!("{} is larger than {max} bytes", path.display()));
    }
    Ok(bytes)
}
