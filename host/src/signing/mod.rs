//! Signatures of components: who signed what is loaded, checked before anything runs it.
//! Formats and checks only; `oci/` and `host/` do the reading.
//!
//! - `keys`: ECDSA keys in cosign's PEM forms, checked and used with ring.
//! - `cosign`: cosign's key-based signatures of OCI artifacts (the `.sig` tag's simple-signing
//!   payloads); `oci/` moves them to and from registries.
//! - `bundle`: Sigstore bundles (`.sigstore.json`): reading them, writing key-based ones, and
//!   checking a key-based signature; the error every bundle check reports.
//! - `keyless`: keyless (Fulcio certificate) signatures checked offline against a trusted root:
//!   chain, SCT, identity policy and transparency-log entry.
pub mod bundle;
pub mod cosign;
pub mod keyless;
pub mod keys;
#[cfg(test)]
mod tests;

pub use bundle::{Bundle, SignatureError, Signer, verify_with_key};
pub use keyless::{Identity, TrustedRoot, verify_keyless};
pub use keys::{KeyError, PublicKey, SigningKey};
