//! Sigstore bundles (`.sigstore.json`): a signature of an artifact with what checks it, in the
//! protobuf-specs JSON form (camelCase names, bytes as standard base64, 64-bit integers as
//! strings). Media types `application/vnd.dev.sigstore.bundle+json;version=0.1`, `0.2` and `0.3`,
//! and `application/vnd.dev.sigstore.bundle.v0.3+json`.
//!
//! Only message signatures are read (a signature of the artifact's bytes, as `cosign sign-blob`
//! makes); DSSE envelopes are refused. A key-based bundle names its key by a hint; a keyless one
//! carries the signer's certificate and transparency-log entries, checked in `keyless`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keys::{KeyError, PublicKey, SigningKey};

/// The largest bundle read, in bytes.
pub const MAX_BUNDLE_BYTES: usize = 1 << 20;
/// The most certificates in a bundle's chain.
const MAX_CHAIN: usize = 10;
/// The most transparency-log entries in a bundle.
const MAX_TLOG_ENTRIES: usize = 10;
/// The most hashes in an inclusion proof (a tree of 2^64 leaves needs 64).
const MAX_PROOF_HASHES: usize = 64;

const MEDIA_TYPE_V01: &str = "application/vnd.dev.sigstore.bundle+json;version=0.1";
const MEDIA_TYPE_V02: &str = "application/vnd.dev.sigstore.bundle+json;version=0.2";
const MEDIA_TYPE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The v0.3 media type in the older form, which some clients wrote.
const MEDIA_TYPE_V03_ALT: &str = "application/vnd.dev.sigstore.bundle+json;version=0.3";

/// Why a signature was refused (or could not be made). Each message names the check that failed;
/// none carries key material or parser internals.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("the bundle is not a Sigstore bundle: {0}")]
    Bundle(String),
    #[error("DSSE bundles are not supported: the bundle must hold a message signature")]
    Dsse,
    #[error("the trusted root is not a Sigstore trusted root: {0}")]
    TrustedRoot(String),
    #[error("could not sign: {0}")]
    Sign(#[from] KeyError),
    #[error("the signature was made by another key (bundle names {bundle}, policy wants {policy})")]
    OtherKey { bundle: String, policy: String },
    #[error("the signature does not verify with the configured key")]
    KeySignature,
    #[error("the bundle's message digest is not the component's SHA-256")]
    Digest,
    #[error("a key-based bundle, but the policy wants a certificate identity")]
    KeyBundle,
    #[error("a keyless (certificate) bundle, but the policy wants a key")]
    CertificateBundle,
    #[error("the bundle's certificate cannot be read: {0}")]
    Certificate(String),
    #[error("the certificate is not for code signing (no codeSigning extended key usage)")]
    NotCodeSigning,
    #[error("the certificate was not issued by a CA in the trusted root")]
    UntrustedCa,
    #[error("the certificate has no valid SCT from a CT log in the trusted root")]
    NoSct,
    #[error("the certificate's identity is `{found}`, the policy requires `{wanted}`")]
    Identity { found: String, wanted: String },
    #[error("the certificate's issuer is `{found}`, the policy requires `{wanted}`")]
    Issuer { found: String, wanted: String },
    #[error("the signature does not verify with the certificate's key")]
    CertificateSignature,
    #[error("no transparency-log entry signed by a log in the trusted root")]
    NoLogEntry,
    #[error("the log entry does not match the {0}")]
    LogEntryMismatch(&'static str),
    #[error("the log entry's inclusion proof does not verify: {0}")]
    InclusionProof(&'static str),
    #[error("the log entry's time is outside the certificate's validity")]
    LogTime,
}

/// A parsed bundle: the signature, its digest, and what checks it.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub(crate) material: Material,
    /// The SHA-256 the bundle says the artifact has, if it says one.
    pub(crate) digest: Option<Vec<u8>>,
    /// ASN.1 DER ECDSA signature of the artifact.
    pub(crate) signature: Vec<u8>,
    pub(crate) tlog_entries: Vec<TlogEntry>,
}

/// What a bundle's signature is checked with.
#[derive(Clone, Debug)]
pub(crate) enum Material {
    /// A key known to the verifier, perhaps named by a hint.
    Key { hint: Option<String> },
    /// The DER leaf certificate of a keyless signature.
    Certificate(Vec<u8>),
}

/// A transparency-log entry as a bundle carries it.
#[derive(Clone, Debug)]
pub(crate) struct TlogEntry {
    pub(crate) log_index: i64,
    pub(crate) log_id: Vec<u8>,
    pub(crate) kind: String,
    pub(crate) version: String,
    pub(crate) integrated_time: i64,
    /// The signed entry timestamp (the log's promise to include the entry).
    pub(crate) promise: Option<Vec<u8>>,
    pub(crate) proof: Option<InclusionProof>,
    /// The entry's body as the log stored it (JSON).
    pub(crate) body: Vec<u8>,
}

/// An RFC 6962 Merkle inclusion proof of an entry, with the log's signed checkpoint.
#[derive(Clone, Debug)]
pub(crate) struct InclusionProof {
    pub(crate) log_index: u64,
    pub(crate) root_hash: Vec<u8>,
    pub(crate) tree_size: u64,
    pub(crate) hashes: Vec<Vec<u8>>,
    pub(crate) checkpoint: Option<String>,
}

/// Who signed, once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signer {
    /// A key named by its fingerprint (`sha256:<hex>` of its SPKI).
    Key { fingerprint: String },
    /// A keyless signer: the certificate's identity and OIDC issuer.
    Identity { identity: String, issuer: String },
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signer::Key { fingerprint } => write!(f, "key {fingerprint}"),
            Signer::Identity { identity, issuer } => write!(f, "{identity} (issuer {issuer})"),
        }
    }
}

impl Bundle {
    /// Read a bundle's JSON (at most [`MAX_BUNDLE_BYTES`]).
    pub fn from_json(bytes: &[u8]) -> Result<Bundle, SignatureError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(SignatureError::Bundle(format!(
                "it is larger than {MAX_BUNDLE_BYTES} bytes"
            )));
        }
        let json: json::Bundle = serde_json::from_slice(bytes).map_err(|e| {
            SignatureError::Bundle(format!("not valid bundle JSON ({})", shown(&e.to_string())))
        })?;
        Bundle::from_parsed(json)
    }

    /// A v0.3 bundle of a key-based signature of `artifact` (messageSignature with messageDigest
    /// SHA2_256 + signature, verificationMaterial.publicKey.hint = key fingerprint, no tlog
    /// entries), as pretty JSON bytes. What `warden sign FILE --key KEY` writes next to the file.
    pub fn sign(artifact: &[u8], key: &SigningKey) -> Result<Vec<u8>, SignatureError> {
        let signature = key.sign(artifact)?;
        let bundle = json::Bundle {
            media_type: MEDIA_TYPE_V03.to_owned(),
            verification_material: json::Material {
                public_key: Some(json::PublicKeyHint {
                    hint: Some(key.public_key().fingerprint()),
                }),
                ..json::Material::default()
            },
            message_signature: Some(json::MessageSignature {
                message_digest: Some(json::Digest {
                    algorithm: "SHA2_256".to_owned(),
                    digest: STANDARD.encode(Sha256::digest(artifact)),
                }),
                signature: STANDARD.encode(signature),
            }),
            dsse_envelope: None,
        };
        serde_json::to_vec_pretty(&bundle).map_err(|e| SignatureError::Bundle(e.to_string()))
    }

    fn from_parsed(json: json::Bundle) -> Result<Bundle, SignatureError> {
        let invalid = |what: &str| SignatureError::Bundle(what.to_owned());
        let known = [
            MEDIA_TYPE_V01,
            MEDIA_TYPE_V02,
            MEDIA_TYPE_V03,
            MEDIA_TYPE_V03_ALT,
        ];
        if !known.contains(&json.media_type.as_str()) {
            return Err(SignatureError::Bundle(format!(
                "unknown media type `{}`",
                shown(&json.media_type)
            )));
        }
        if json.dsse_envelope.is_some() {
            return Err(SignatureError::Dsse);
        }
        let message = json
            .message_signature
            .ok_or_else(|| invalid("it holds no message signature"))?;
        let digest = message
            .message_digest
            .map(|digest| {
                if digest.algorithm != "SHA2_256" {
                    return Err(invalid("the message digest is not SHA2_256"));
                }
                decode("messageDigest.digest", &digest.digest)
            })
            .transpose()?;
        let signature = decode("messageSignature.signature", &message.signature)?;
        let material = json.verification_material;
        let tlog_entries = material.tlog_entries.unwrap_or_default();
        if tlog_entries.len() > MAX_TLOG_ENTRIES {
            return Err(invalid("it has too many transparency-log entries"));
        }
        let tlog_entries = tlog_entries
            .into_iter()
            .map(TlogEntry::from_parsed)
            .collect::<Result<_, _>>()?;
        Ok(Bundle {
            material: material_of(
                material.public_key,
                material.x509_certificate_chain,
                material.certificate,
            )?,
            digest,
            signature,
            tlog_entries,
        })
    }
}

/// The one kind of verification material a bundle must have.
fn material_of(
    public_key: Option<json::PublicKeyHint>,
    chain: Option<json::CertificateChain>,
    certificate: Option<json::RawBytes>,
) -> Result<Material, SignatureError> {
    match (public_key, chain, certificate) {
        (Some(key), None, None) => Ok(Material::Key { hint: key.hint }),
        (None, Some(chain), None) => {
            if chain.certificates.len() > MAX_CHAIN {
                return Err(SignatureError::Bundle(
                    "its certificate chain is too long".to_owned(),
                ));
            }
            let leaf = chain.certificates.first().ok_or_else(|| {
                SignatureError::Bundle("its certificate chain is empty".to_owned())
            })?;
            Ok(Material::Certificate(decode(
                "certificate",
                &leaf.raw_bytes,
            )?))
        }
        (None, None, Some(leaf)) => Ok(Material::Certificate(decode(
            "certificate",
            &leaf.raw_bytes,
        )?)),
        _ => Err(SignatureError::Bundle(
            "it must have exactly one of publicKey, x509CertificateChain and certificate"
                .to_owned(),
        )),
    }
}

impl TlogEntry {
    fn from_parsed(entry: json::TlogEntry) -> Result<TlogEntry, SignatureError> {
        let proof = entry
            .inclusion_proof
            .map(|proof| {
                if proof.hashes.len() > MAX_PROOF_HASHES {
                    return Err(SignatureError::Bundle(
                        "an inclusion proof has too many hashes".to_owned(),
                    ));
                }
                Ok(InclusionProof {
                    log_index: unsigned("inclusionProof.logIndex", &proof.log_index)?,
                    root_hash: decode("inclusionProof.rootHash", &proof.root_hash)?,
                    tree_size: unsigned("inclusionProof.treeSize", &proof.tree_size)?,
                    hashes: proof
                        .hashes
                        .iter()
                        .map(|hash| decode("inclusionProof.hashes", hash))
                        .collect::<Result<_, _>>()?,
                    checkpoint: proof.checkpoint.map(|checkpoint| checkpoint.envelope),
                })
            })
            .transpose()?;
        Ok(TlogEntry {
            log_index: entry.log_index.value("logIndex")?,
            log_id: decode("logId.keyId", &entry.log_id.key_id)?,
            kind: entry.kind_version.kind,
            version: entry.kind_version.version,
            integrated_time: entry.integrated_time.value("integratedTime")?,
            promise: entry
                .inclusion_promise
                .map(|promise| decode("signedEntryTimestamp", &promise.signed_entry_timestamp))
                .transpose()?,
            proof,
            body: decode("canonicalizedBody", &entry.canonicalized_body)?,
        })
    }
}

/// Text from a bundle or certificate as an error shows it: at most 200 characters, control
/// characters escaped (it may come from anyone).
pub(crate) fn shown(text: &str) -> String {
    const MAX: usize = 200;
    let mut out = String::new();
    for c in text.chars().take(MAX) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// Decode a standard base64 field, naming it if it is not.
fn decode(field: &str, text: &str) -> Result<Vec<u8>, SignatureError> {
    STANDARD
        .decode(text)
        .map_err(|_| SignatureError::Bundle(format!("`{field}` is not base64")))
}

/// A non-negative 64-bit integer field.
fn unsigned(field: &str, value: &json::Int64) -> Result<u64, SignatureError> {
    u64::try_from(value.value(field)?)
        .map_err(|_| SignatureError::Bundle(format!("`{field}` is negative")))
}

/// Key-based: the bundle's message signature over `artifact` verifies with `key` and its
/// messageDigest (if any) is sha256(artifact). tlog entries are ignored for key-based policies.
pub fn verify_with_key(
    artifact: &[u8],
    bundle: &Bundle,
    key: &PublicKey,
) -> Result<Signer, SignatureError> {
    let Material::Key { hint } = &bundle.material else {
        return Err(SignatureError::CertificateBundle);
    };
    let fingerprint = key.fingerprint();
    // Only a hint in warden's own form names a key; cosign's other hints are not compared.
    if let Some(hint) = hint.as_ref().filter(|hint| hint.starts_with("sha256:"))
        && *hint != fingerprint
    {
        return Err(SignatureError::OtherKey {
            bundle: shown(hint),
            policy: fingerprint,
        });
    }
    check_digest(artifact, bundle)?;
    if !key.verify(artifact, &bundle.signature) {
        return Err(SignatureError::KeySignature);
    }
    Ok(Signer::Key { fingerprint })
}

/// The bundle's message digest, if it has one, is `artifact`'s SHA-256.
pub(crate) fn check_digest(artifact: &[u8], bundle: &Bundle) -> Result<(), SignatureError> {
    match &bundle.digest {
        Some(digest) if digest.as_slice() != Sha256::digest(artifact).as_slice() => {
            Err(SignatureError::Digest)
        }
        _ => Ok(()),
    }
}

/// The protobuf-specs JSON mapping of a bundle (the fields warden reads; others are ignored).
mod json {
    use super::{Deserialize, Serialize, SignatureError};

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Bundle {
        pub(super) media_type: String,
        pub(super) verification_material: Material,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) message_signature: Option<MessageSignature>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) dsse_envelope: Option<serde_json::Value>,
    }

    #[derive(Default, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Material {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) public_key: Option<PublicKeyHint>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) x509_certificate_chain: Option<CertificateChain>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) certificate: Option<RawBytes>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) tlog_entries: Option<Vec<TlogEntry>>,
    }

    #[derive(Serialize, Deserialize)]
    pub(super) struct PublicKeyHint {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) hint: Option<String>,
    }

    #[derive(Serialize, Deserialize)]
    pub(super) struct CertificateChain {
        pub(super) certificates: Vec<RawBytes>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct RawBytes {
        pub(super) raw_bytes: String,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct MessageSignature {
        #[serde(skip_serializing_if = "Option::is_none")]
        pub(super) message_digest: Option<Digest>,
        pub(super) signature: String,
    }

    #[derive(Serialize, Deserialize)]
    pub(super) struct Digest {
        pub(super) algorithm: String,
        pub(super) digest: String,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct TlogEntry {
        #[serde(default)]
        pub(super) log_index: Int64,
        pub(super) log_id: KeyId,
        pub(super) kind_version: KindVersion,
        #[serde(default)]
        pub(super) integrated_time: Int64,
        pub(super) inclusion_promise: Option<InclusionPromise>,
        pub(super) inclusion_proof: Option<InclusionProof>,
        pub(super) canonicalized_body: String,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct KeyId {
        pub(super) key_id: String,
    }

    #[derive(Serialize, Deserialize)]
    pub(super) struct KindVersion {
        pub(super) kind: String,
        pub(super) version: String,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct InclusionPromise {
        pub(super) signed_entry_timestamp: String,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct InclusionProof {
        #[serde(default)]
        pub(super) log_index: Int64,
        pub(super) root_hash: String,
        #[serde(default)]
        pub(super) tree_size: Int64,
        #[serde(default)]
        pub(super) hashes: Vec<String>,
        pub(super) checkpoint: Option<Checkpoint>,
    }

    #[derive(Serialize, Deserialize)]
    pub(super) struct Checkpoint {
        pub(super) envelope: String,
    }

    /// A protobuf int64: a string in canonical JSON, a number also accepted; 0 when left out.
    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    pub(super) enum Int64 {
        Text(String),
        Number(i64),
    }

    impl Default for Int64 {
        fn default() -> Int64 {
            Int64::Number(0)
        }
    }

    impl Int64 {
        pub(super) fn value(&self, field: &str) -> Result<i64, SignatureError> {
            match self {
                Int64::Number(number) => Ok(*number),
                Int64::Text(text) => text.parse().map_err(|_| {
                    SignatureError::Bundle(format!("`{field}` is not a 64-bit integer"))
                }),
            }
        }
    }
}
