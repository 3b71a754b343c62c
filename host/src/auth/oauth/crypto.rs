//! jsonwebtoken's signature checks, done with ring.
//!
//! jsonwebtoken 11 leaves cryptography to a process-wide
//! [`jsonwebtoken::crypto::CryptoProvider`]. warden installs this one: it
//! verifies RSA (PKCS#1 v1.5 and PSS, 2048 to 8192 bits), ECDSA P-256 and P-384, and Ed25519
//! signatures with ring, which rustls already builds. It has no HMAC at all, so a public key can
//! never be used as an HMAC secret whatever a token's header says, and it signs nothing.

use std::sync::OnceLock;

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature as ring;
use sha2::Digest;

/// The provider: verification only.
static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: no_signer,
    verifier_factory: verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(unsupported()),
        rsa_pub_components_from_public_key: |_| Err(unsupported()),
        ec_pub_components_from_private_key: |_, _| Err(unsupported()),
        ed_pub_components_from_private_key: no_ed_components,
        compute_digest,
    },
};

/// Makes this module's provider jsonwebtoken's process-wide provider, once. Must run before
/// any other use of jsonwebtoken: its first use otherwise fixes a provider that panics.
///
/// Returns `false` if another provider was installed first (nothing in warden does that).
pub(super) fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| match PROVIDER.install_default() {
        Ok(()) => true,
        Err(existing) => std::ptr::eq(existing, &PROVIDER),
    })
}

/// How ring verifies one algorithm.
#[derive(Clone, Copy)]
enum Scheme {
    /// RSA: the key may come as a modulus and exponent (a JWK) or as DER.
    Rsa(&'static ring::RsaParameters),
    /// ECDSA (fixed-length `r || s` signatures, as JWS uses) and Ed25519: the key is the raw
    /// public key (an uncompressed point for ECDSA).
    Raw(&'static dyn ring::VerificationAlgorithm),
}

/// The ring scheme for `algorithm`; `None` for HMAC and anything ring cannot verify.
fn scheme(algorithm: Algorithm) -> Option<Scheme> {
    Some(match algorithm {
        Algorithm::RS256 => Scheme::Rsa(&ring::RSA_PKCS1_2048_8192_SHA256),
        Algorithm::RS384 => Scheme::Rsa(&ring::RSA_PKCS1_2048_8192_SHA384),
        Algorithm::RS512 => Scheme::Rsa(&ring::RSA_PKCS1_2048_8192_SHA512),
        Algorithm::PS256 => Scheme::Rsa(&ring::RSA_PSS_2048_8192_SHA256),
        Algorithm::PS384 => Scheme::Rsa(&ring::RSA_PSS_2048_8192_SHA384),
        Algorithm::PS512 => Scheme::Rsa(&ring::RSA_PSS_2048_8192_SHA512),
        Algorithm::ES256 => Scheme::Raw(&ring::ECDSA_P256_SHA256_FIXED),
        Algorithm::ES384 => Scheme::Raw(&ring::ECDSA_P384_SHA384_FIXED),
        Algorithm::EdDSA => Scheme::Raw(&ring::ED25519),
        _ => return None,
    })
}

/// Whether this module can verify `algorithm` (never an HMAC).
pub(super) fn supports(algorithm: Algorithm) -> bool {
    scheme(algorithm).is_some()
}

/// One key, ready to check signatures made with one algorithm.
struct RingVerifier {
    algorithm: Algorithm,
    scheme: Scheme,
    key: DecodingKeyKind,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let checked = match (&self.key, self.scheme) {
            (DecodingKeyKind::RsaModulusExponent { n, e }, Scheme::Rsa(params)) => {
                ring::RsaPublicKeyComponents { n, e }.verify(params, message, sig)
            }
            (DecodingKeyKind::SecretOrDer(der), Scheme::Rsa(params)) => {
                ring::UnparsedPublicKey::new(params, der).verify(message, sig)
            }
            (DecodingKeyKind::SecretOrDer(raw), Scheme::Raw(algorithm)) => {
                ring::UnparsedPublicKey::new(algorithm, raw).verify(message, sig)
            }
            (DecodingKeyKind::RsaModulusExponent { .. }, Scheme::Raw(_)) => {
                return Err(signature::Error::new());
            }
        };
        checked.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// The provider's `verifier_factory`: refuses HMAC and a key of another family than the
/// algorithm's.
fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    let scheme = scheme(*algorithm).ok_or(ErrorKind::InvalidAlgorithm)?;
    if key.family() != algorithm.family() {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(RingVerifier {
        algorithm: *algorithm,
        scheme,
        key: key.kind().clone(),
    }))
}

fn no_signer(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    Err(unsupported())
}

fn no_ed_components(_: &[u8], _: &EllipticCurve) -> Result<Vec<u8>, Error> {
    Err(unsupported())
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>, Error> {
    Ok(match hash {
        ThumbprintHash::SHA256 => sha2::Sha256::digest(data).to_vec(),
        ThumbprintHash::SHA384 => sha2::Sha384::digest(data).to_vec(),
        ThumbprintHash::SHA512 => sha2::Sha512::digest(data).to_vec(),
        _ => return Err(unsupported()),
    })
}

fn unsupported() -> Error {
    ErrorKind::Provider("warden only verifies signatures".into()).into()
}
