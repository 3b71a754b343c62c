//! ECDSA keys as cosign writes and reads them: a public key is a PEM `PUBLIC KEY` (SPKI), a
//! signing key a PEM `PRIVATE KEY` (unencrypted PKCS#8), both on NIST P-256 (P-384 is read for
//! verification too: some Fulcio instances issue it). Signatures are ASN.1 DER, checked and made
//! by ring.
//!
//! Make a pair with openssl:
//! `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out cosign.key` and
//! `openssl pkey -in cosign.key -pubout -out cosign.pub`.

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
use sha2::{Digest, Sha256};
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, pem};
use x509_cert::spki::SubjectPublicKeyInfoRef;

/// id-ecPublicKey.
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// The P-256 curve (prime256v1).
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// The P-384 curve (secp384r1).
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// Why a key could not be read or used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a PEM file: {0}")]
    Pem(String),
    #[error(
        "cosign's encrypted key format is not read; make a PKCS#8 key with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out cosign.key`"
    )]
    Encrypted,
    #[error(
        "a PEM `{0}` block; expected `{1}` (convert an `EC PRIVATE KEY` with `openssl pkcs8 -topk8 -nocrypt`)"
    )]
    Label(String, &'static str),
    #[error("not an ECDSA public key on P-256 or P-384: {0}")]
    Spki(String),
    #[error("not an unencrypted PKCS#8 ECDSA P-256 private key: {0}")]
    Pkcs8(String),
    #[error("the system's random generator failed")]
    Random,
}

/// An ECDSA public key that signatures are checked against.
#[derive(Clone, Debug)]
pub struct PublicKey {
    /// The uncompressed point.
    point: Vec<u8>,
    curve: Curve,
    /// The DER SubjectPublicKeyInfo, for the fingerprint and for writing it back.
    spki: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

impl PublicKey {
    /// Read a PEM `PUBLIC KEY` (what `cosign generate-key-pair` writes to `cosign.pub`).
    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        let (label, der) =
            pem::decode_vec(text.trim().as_bytes()).map_err(|e| KeyError::Pem(e.to_string()))?;
        if label != "PUBLIC KEY" {
            return Err(KeyError::Label(label.to_owned(), "PUBLIC KEY"));
        }
        PublicKey::from_spki_der(&der)
    }

    /// Read a DER SubjectPublicKeyInfo (as in a certificate).
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        let spki =
            SubjectPublicKeyInfoRef::from_der(der).map_err(|e| KeyError::Spki(e.to_string()))?;
        let spki_error = |what: &str| KeyError::Spki(what.to_owned());
        if spki.algorithm.oid != EC_PUBLIC_KEY {
            return Err(spki_error("the algorithm is not id-ecPublicKey"));
        }
        let curve = match spki.algorithm.parameters_oid() {
            Ok(oid) if oid == P256 => Curve::P256,
            Ok(oid) if oid == P384 => Curve::P384,
            _ => return Err(spki_error("the curve is not P-256 or P-384")),
        };
        let point = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| spki_error("the key is not a whole number of bytes"))?;
        let expected = match curve {
            Curve::P256 => 65,
            Curve::P384 => 97,
        };
        if point.len() != expected || point[0] != 4 {
            return Err(spki_error("the key is not an uncompressed point"));
        }
        Ok(PublicKey {
            point: point.to_vec(),
            curve,
            spki: der.to_vec(),
        })
    }

    /// Whether `signature` (ASN.1 DER) is this key's signature of `message`, hashed with
    /// SHA-256 (P-256) or SHA-384 (P-384).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let algorithm = match self.curve {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1,
        };
        UnparsedPublicKey::new(algorithm, &self.point)
            .verify(message, signature)
            .is_ok()
    }

    /// `sha256:<hex>` of the DER SubjectPublicKeyInfo: how a key is named in logs and audit.
    pub fn fingerprint(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(&self.spki)))
    }

    /// The key as a PEM `PUBLIC KEY`.
    pub fn to_pem(&self) -> String {
        pem::encode_string("PUBLIC KEY", pem::LineEnding::LF, &self.spki).unwrap_or_default()
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }
}

/// A P-256 key that signs.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    public: PublicKey,
    random: SystemRandom,
}

impl SigningKey {
    /// Read a PEM `PRIVATE KEY` (unencrypted PKCS#8, as `openssl genpkey` writes).
    pub fn from_pem(text: &str) -> Result<SigningKey, KeyError> {
        let (label, der) = pem::decode_vec(text.trim().as_bytes()).map_err(|e| {
            if text.contains("ENCRYPTED SIGSTORE PRIVATE KEY") {
                KeyError::Encrypted
            } else {
                KeyError::Pem(e.to_string())
            }
        })?;
        match label {
            "PRIVATE KEY" => {}
            "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
                return Err(KeyError::Encrypted);
            }
            other => return Err(KeyError::Label(other.to_owned(), "PRIVATE KEY")),
        }
        let random = SystemRandom::new();
        let pair =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &der, &random)
                .map_err(|e| KeyError::Pkcs8(e.to_string()))?;
        let public = PublicKey::from_spki_der(&p256_spki(pair.public_key().as_ref()))?;
        Ok(SigningKey {
            pair,
            public,
            random,
        })
    }

    /// A fresh key (for tests and `warden keygen`-style tooling).
    pub fn generate() -> Result<(SigningKey, String), KeyError> {
        let random = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &random)
                .map_err(|_| KeyError::Random)?;
        let pem = pem::encode_string("PRIVATE KEY", pem::LineEnding::LF, pkcs8.as_ref())
            .map_err(|e| KeyError::Pem(e.to_string()))?;
        Ok((SigningKey::from_pem(&pem)?, pem))
    }

    /// The ASN.1 DER ECDSA P-256 SHA-256 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.pair
            .sign(&self.random, message)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| KeyError::Random)
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }
}

/// The DER SubjectPublicKeyInfo of an uncompressed P-256 point: the fixed algorithm header,
/// then the 65 bytes as a BIT STRING.
fn p256_spki(point: &[u8]) -> Vec<u8> {
    const HEADER: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let mut spki = HEADER.to_vec();
    spki.extend_from_slice(point);
    spki
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_what_its_public_pem_verifies() {
        let (key, _) = SigningKey::generate().expect("key");
        let public = PublicKey::from_pem(&key.public_key().to_pem()).expect("public");
        let signature = key.sign(b"payload").expect("sign");
        assert!(public.verify(b"payload", &signature));
        assert!(!public.verify(b"payloaD", &signature));
        let (other, _) = SigningKey::generate().expect("key");
        assert!(!other.public_key().verify(b"payload", &signature));
        assert_eq!(public.fingerprint(), key.public_key().fingerprint());
    }

    #[test]
    fn wrong_pem_blocks_are_named() {
        let (_, private) = SigningKey::generate().expect("key");
        assert!(matches!(
            PublicKey::from_pem(&private),
            Err(KeyError::Label(label, "PUBLIC KEY")) if label == "PRIVATE KEY"
        ));
        let encrypted = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
        assert_eq!(
            SigningKey::from_pem(encrypted).err(),
            Some(KeyError::Encrypted)
        );
        assert!(matches!(
            PublicKey::from_pem("not pem"),
            Err(KeyError::Pem(_))
        ));
    }
}
