//! cosign's key-based signatures of OCI artifacts, in the registry format cosign reads and
//! writes: the signature of manifest `sha256:<hex>` is an OCI manifest tagged
//! `sha256-<hex>.sig` in the same repository, one layer per signature. Each layer is a
//! "simple signing" payload (media type [`SIMPLE_SIGNING_MEDIA_TYPE`]) naming the manifest
//! digest; its annotation [`SIGNATURE_ANNOTATION`] holds the base64 ECDSA signature of the
//! layer's exact bytes.
//!
//! Only the format and the checks are here; `oci/` moves the layers to and from a registry.
//! Key-based signatures go into no transparency log, so none is read (stock cosign verifies
//! them with `cosign verify --key cosign.pub --insecure-ignore-tlog=true`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{PublicKey, SigningKey};

/// The media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation that holds the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The payload's `critical.type`.
const SIGNATURE_TYPE: &str = "cosign container image signature";
/// The most signature layers read from one `.sig` manifest.
pub const MAX_SIGNATURES: usize = 16;
/// The largest payload read.
pub const MAX_PAYLOAD: u64 = 16 << 10;

/// One signature layer: the payload's bytes and the base64 signature annotated on it.
#[derive(Clone, Debug)]
pub struct SignatureLayer {
    pub payload: Vec<u8>,
    pub signature: String,
}

/// Why no signature layer satisfied the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CosignError {
    #[error("unsigned: the registry has no signature for {digest} (no `{tag}` tag)")]
    Missing { digest: String, tag: String },
    #[error(
        "signed, but not by the configured key {key}: none of the {count} signature(s) of {digest} verifies with it"
    )]
    OtherKey {
        key: String,
        count: usize,
        digest: String,
    },
    #[error(
        "a signature verifies with the configured key, but signs {signed}, not {digest}; refusing it"
    )]
    OtherDigest { signed: String, digest: String },
}

/// The tag under which cosign keeps the signatures of `digest` (`sha256:<hex>`).
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

/// Sign the artifact `docker_reference` (`REGISTRY/REPOSITORY`) at manifest `digest`: the
/// layer to add to its `.sig` manifest.
pub fn sign(
    docker_reference: &str,
    digest: &str,
    key: &SigningKey,
) -> Result<SignatureLayer, super::KeyError> {
    let payload = serde_json::json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": null,
    });
    let payload = serde_json::to_vec(&payload).unwrap_or_default();
    let signature = STANDARD.encode(key.sign(&payload)?);
    Ok(SignatureLayer { payload, signature })
}

/// Check that one of `layers` is `key`'s signature of manifest `digest`. The signature is
/// checked first, over the payload's exact bytes; only a verified payload is parsed.
pub fn verify(layers: &[SignatureLayer], digest: &str, key: &PublicKey) -> Result<(), CosignError> {
    if layers.is_empty() {
        return Err(CosignError::Missing {
            digest: digest.to_owned(),
            tag: signature_tag(digest),
        });
    }
    let mut other_digest = None;
    for layer in layers {
        let Ok(signature) = STANDARD.decode(layer.signature.trim()) else {
            continue;
        };
        if !key.verify(&layer.payload, &signature) {
            continue;
        }
        match signed_digest(&layer.payload) {
            Some(signed) if signed == digest => return Ok(()),
            signed => other_digest = Some(signed.unwrap_or_else(|| "an unreadable payload".into())),
        }
    }
    Err(match other_digest {
        Some(signed) => CosignError::OtherDigest {
            signed,
            digest: digest.to_owned(),
        },
        None => CosignError::OtherKey {
            key: key.fingerprint(),
            count: layers.len(),
            digest: digest.to_owned(),
        },
    })
}

/// The manifest digest a simple-signing payload of the right type names.
fn signed_digest(payload: &[u8]) -> Option<String> {
    let payload: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let critical = payload.get("critical")?;
    if critical.pointer("/type")?.as_str()? != SIGNATURE_TYPE {
        return None;
    }
    Some(
        critical
            .pointer("/image/docker-manifest-digest")?
            .as_str()?
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

    fn key() -> SigningKey {
        SigningKey::generate().expect("key").0
    }

    #[test]
    fn a_signature_verifies_with_its_key_only() {
        let key = key();
        let layer = sign("127.0.0.1:5000/t/codec", DIGEST, &key).expect("sign");
        assert_eq!(
            verify(std::slice::from_ref(&layer), DIGEST, key.public_key()),
            Ok(())
        );
        let other = self::key();
        assert!(matches!(
            verify(&[layer], DIGEST, other.public_key()),
            Err(CosignError::OtherKey { count: 1, .. })
        ));
    }

    #[test]
    fn a_signature_of_another_digest_is_refused() {
        let key = key();
        let elsewhere = DIGEST.replace("01", "02");
        let layer = sign("r/t", &elsewhere, &key).expect("sign");
        assert_eq!(
            verify(&[layer], DIGEST, key.public_key()),
            Err(CosignError::OtherDigest {
                signed: elsewhere,
                digest: DIGEST.into()
            })
        );
    }

    #[test]
    fn an_edited_payload_or_signature_is_refused() {
        let key = key();
        let mut layer = sign("r/t", DIGEST, &key).expect("sign");
        layer.payload.push(b' ');
        assert!(verify(&[layer], DIGEST, key.public_key()).is_err());
        let mut layer = sign("r/t", DIGEST, &key).expect("sign");
        layer.signature = "not base64!".into();
        assert!(verify(&[layer], DIGEST, key.public_key()).is_err());
        assert!(matches!(
            verify(&[], DIGEST, key.public_key()),
            Err(CosignError::Missing { tag, .. }) if tag == "sha256-0000000000000000000000000000000000000000000000000000000000000001.sig"
        ));
    }

    #[test]
    fn a_payload_of_another_type_is_not_a_signature_of_the_image() {
        let key = key();
        let payload = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r/t"}},"image":{{"docker-manifest-digest":"{DIGEST}"}},"type":"something else"}}}}"#
        )
        .into_bytes();
        let signature = STANDARD.encode(key.sign(&payload).expect("sign"));
        let layer = SignatureLayer { payload, signature };
        assert!(matches!(
            verify(&[layer], DIGEST, key.public_key()),
            Err(CosignError::OtherDigest { .. })
        ));
    }
}
