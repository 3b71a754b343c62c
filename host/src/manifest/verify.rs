//! `verify = { ... }` on a plugin: whose signature its component must carry. The host checks
//! it after the component's digest and before anything compiles it (`host/signature.rs`).
//!
//! ```toml
//! [plugins.codec]
//! component = "oci://ghcr.io/acme/codec:1.2"
//! verify = { key = "keys/cosign.pub" }     # cosign, key-based: the registry's `.sig` tag
//!
//! [plugins.local]
//! component = "codec.wasm"
//! verify = { key = "keys/cosign.pub" }     # the detached bundle codec.wasm.sigstore.json
//!
//! [plugins.released]
//! component = "codec.wasm"
//! verify = { identity = "https://github.com/acme/tools/.github/workflows/release.yml@refs/heads/main",
//!            issuer = "https://token.actions.githubusercontent.com",
//!            trusted_root = "trusted_root.json" }   # keyless: a Sigstore bundle, offline
//! ```

use std::path::{Path, PathBuf};

use super::error::Location;
use super::reader::Value;
use super::validate::{PathKind, check_path, resolve};

/// A plugin's `verify` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verify {
    /// Who must have signed.
    pub signer: SignerPolicy,
    /// The Sigstore bundle holding the signature (`bundle`; for a local component the default is
    /// the component's path with `.sigstore.json` appended). `None` for an `oci://` component
    /// with a key: its signatures are read from the registry's cosign `.sig` tag.
    pub bundle: Option<PathBuf>,
    /// The `verify` key.
    pub location: Location,
}

/// Who must have signed a component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignerPolicy {
    /// The holder of this public key (`key`, a PEM `PUBLIC KEY` file as `cosign.pub`).
    Key(PathBuf),
    /// Whoever a Fulcio-style CA of `trusted_root` certified as `identity` (the certificate's
    /// SAN: a URI or an email), as authenticated by `issuer` (the OIDC issuer), with the
    /// signature logged in a transparency log of the same root. Exact matches.
    Identity {
        identity: String,
        issuer: String,
        trusted_root: PathBuf,
    },
}

/// The suffix of a detached bundle's default path.
pub const BUNDLE_SUFFIX: &str = ".sigstore.json";

/// Reads `verify = { ... }`. `component` is the component as written (for the default bundle
/// path) and `oci` whether it is an `oci://` reference.
pub(super) fn verify(
    value: &Value<'_, '_>,
    dir: &Path,
    component: &str,
    oci: bool,
) -> Option<Verify> {
    let table = value.table()?;
    let file = |key: &'static str, what: &str| {
        let v = table.get(key)?;
        let raw = v.string()?;
        let path = resolve(&v, &raw, dir)?;
        let path = check_path(&v, &raw, path, PathKind::File, what)?;
        Some((v, path))
    };
    let key = file("key", "public key file");
    let key_given = table.get("key").is_some();
    let identity = table.get("identity").and_then(|v| nonempty(&v));
    let issuer = table.get("issuer").and_then(|v| nonempty(&v));
    let keyless_given = table.get("identity").is_some() || table.get("issuer").is_some();
    let trusted_root = file("trusted_root", "trusted root file");
    let trusted_root_given = table.get("trusted_root").is_some();
    let bundle = match table.get("bundle") {
        Some(v) => Some(resolve(&v, &v.string()?, dir)?),
        None if oci => None,
        None => resolve(value, &format!("{component}{BUNDLE_SUFFIX}"), dir),
    };
    table.finish();

    if let Some((v, path)) = &key {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Err(e) = crate::signing::PublicKey::from_pem(&text) {
            v.error(format!("{}: {e}", path.display()));
            return None;
        }
    }
    let signer = match (key_given, keyless_given) {
        (true, true) => {
            value.error(
                "`key` and `identity`/`issuer` are two different policies: give one of them",
            );
            return None;
        }
        (false, false) => {
            value.error(
                "no policy: give `key = \"cosign.pub\"`, or `identity` and `issuer` (keyless) with `trusted_root`",
            );
            return None;
        }
        (true, false) => SignerPolicy::Key(key?.1),
        (false, true) => {
            let (Some(identity), Some(issuer)) = (identity, issuer) else {
                value.error("keyless verification needs both `identity` and `issuer`");
                return None;
            };
            if let Some(star) = identity.find('*')
                && !(star + 1 == identity.len()
                    && (identity[..star].ends_with('/') || identity[..star].ends_with('@')))
            {
                value.error(format!(
                    "identity {identity:?}: a `*` may only end the identity, after `/` or `@` (`.../release.yml@refs/tags/*`), so that it cannot match a longer name"
                ));
                return None;
            }
            let Some((root_value, trusted_root)) = trusted_root else {
                if !trusted_root_given {
                    value.error(
                        "keyless verification needs `trusted_root`: the Sigstore trusted root file (trusted_root.json) certificates and log entries are checked against, offline",
                    );
                }
                return None;
            };
            let root = std::fs::read(&trusted_root).unwrap_or_default();
            if let Err(e) = crate::signing::TrustedRoot::from_json(&root) {
                root_value.error(format!("{}: {e}", trusted_root.display()));
                return None;
            }
            if oci && bundle.is_none() {
                value.error(
                    "keyless verification of an `oci://` component needs `bundle = \"FILE.sigstore.json\"` (signatures attached in the registry are read for `key` only)",
                );
                return None;
            }
            SignerPolicy::Identity {
                identity,
                issuer,
                trusted_root,
            }
        }
    };
    Some(Verify {
        signer,
        bundle,
        location: value.location(),
    })
}

/// A string that is not empty.
fn nonempty(v: &Value<'_, '_>) -> Option<String> {
    let s = v.string()?;
    if s.trim().is_empty() {
        v.error("must not be empty");
        return None;
    }
    Some(s)
}
