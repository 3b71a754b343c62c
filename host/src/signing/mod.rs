//! Signatures of components: who signed what is loaded, checked before anything runs it.
//!
//! - `keys`: ECDSA keys in cosign's PEM forms, checked and used with ring.
pub mod keys;

pub use keys::{KeyError, PublicKey, SigningKey};
