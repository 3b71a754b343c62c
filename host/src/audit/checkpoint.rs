//! Signed checkpoints: every `checkpoint_every` records or `checkpoint_interval` (when records
//! were written since the last one), at each start record and at a clean stop, the writer
//! appends a `"kind":"checkpoint"` record to the chain, signed with the replica's Ed25519 key.
//!
//! A checkpoint line is
//! `{"seq":S,"kind":"checkpoint","ts":T,"replica":R,"head":H,"count":C,"every":N,"interval_ms":I,"key":K,"sig":G,"prev":H}`:
//! `head` is the chain head it signs (the SHA-256 of the line before it, so also its `prev`),
//! `count` the records the writer counted since the checkpoint before it, `every` and
//! `interval_ms` the policy it signs under (the next checkpoint comes at the latest after
//! `every` records, or `interval_ms` after a record), `key` the key id
//! ([`key_id`]) and `sig` the standard base64 of the Ed25519 signature over [`signed_bytes`].

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_cert::der::pem;

/// The `kind` of a checkpoint record.
pub const CHECKPOINT: &str = "checkpoint";

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the 32 key bytes follow.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The first line of the signed bytes: names the format, so a signature cannot be replayed
/// as anything else.
const DOMAIN: &str = "warden-audit-checkpoint/1";

/// Why a key could not be read or made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM key: {0}")]
    Pem(String),
    #[error("a PEM `{0}` block; expected `{1}`")]
    Label(String, &'static str),
    #[error(
        "not an unencrypted PKCS#8 Ed25519 private key (make one with `openssl genpkey -algorithm ed25519 -out audit.key`)"
    )]
    Pkcs8,
    #[error(
        "not an Ed25519 public key (a PEM `PUBLIC KEY` as `openssl pkey -pubout` writes, or its 32 bytes in base64)"
    )]
    Public,
    #[error("the system's random generator failed")]
    Random,
}

/// The replica's signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    id: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.id)
    }
}

impl SigningKey {
    /// Read a PEM `PRIVATE KEY` (PKCS#8 v1 as `openssl genpkey -algorithm ed25519` writes it,
    /// or v2 with the public key).
    pub fn from_pem(text: &str) -> Result<SigningKey, KeyError> {
        let (label, der) =
            pem::decode_vec(text.trim().as_bytes()).map_err(|e| KeyError::Pem(e.to_string()))?;
        if label != "PRIVATE KEY" {
            return Err(KeyError::Label(label.to_owned(), "PRIVATE KEY"));
        }
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|_| KeyError::Pkcs8)?;
        let id = key_id(pair.public_key().as_ref());
        Ok(SigningKey { pair, id })
    }

    /// A fresh key and its PEM `PRIVATE KEY`, for `warden keygen --audit`: PKCS#8 v1 (RFC
    /// 8410), as `openssl genpkey -algorithm ed25519` writes it and OpenSSL reads it (ring's
    /// own v2 document is not read by OpenSSL 3.0).
    pub fn generate() -> Result<(SigningKey, String), KeyError> {
        /// RFC 8410's v1 `PrivateKeyInfo` for Ed25519, up to the 32-byte seed.
        const V1_PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let rng = ring::rand::SystemRandom::new();
        let v2 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Random)?;
        // ring's v2 document holds the same prefix (but its version, 1) before the seed.
        let v2 = v2.as_ref();
        if v2.len() < 48 || v2[5..16] != V1_PREFIX[5..16] {
            return Err(KeyError::Pkcs8);
        }
        let mut v1 = V1_PREFIX.to_vec();
        v1.extend_from_slice(&v2[16..48]);
        let body = BASE64.encode(&v1);
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in body.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        let key = SigningKey::from_pem(&pem)?;
        Ok((key, pem))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey { raw }
    }

    /// The key id: see [`key_id`].
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The signature of `bytes`, standard base64.
    pub fn sign(&self, bytes: &[u8]) -> String {
        BASE64.encode(self.pair.sign(bytes).as_ref())
    }
}

/// An Ed25519 public key checkpoints are verified with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey {
    raw: [u8; 32],
}

impl PublicKey {
    /// Read a PEM `PUBLIC KEY` (SubjectPublicKeyInfo, as `GET /audit/key` and
    /// `openssl pkey -pubout` write it), or the key's 32 bytes in standard base64.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let text = text.trim();
        let der = if text.starts_with("-----BEGIN") {
            let (label, der) =
                pem::decode_vec(text.as_bytes()).map_err(|e| KeyError::Pem(e.to_string()))?;
            if label != "PUBLIC KEY" {
                return Err(KeyError::Label(label.to_owned(), "PUBLIC KEY"));
            }
            der
        } else {
            BASE64.decode(text).map_err(|_| KeyError::Public)?
        };
        let raw = match der.len() {
            32 => &der[..],
            44 if der[..12] == SPKI_PREFIX => &der[12..],
            _ => return Err(KeyError::Public),
        };
        let mut key = [0u8; 32];
        key.copy_from_slice(raw);
        Ok(PublicKey { raw: key })
    }

    /// The key id: see [`key_id`].
    pub fn id(&self) -> String {
        key_id(&self.raw)
    }

    /// The key's 32 bytes, standard base64.
    pub fn base64(&self) -> String {
        BASE64.encode(self.raw)
    }

    /// The PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub fn pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.raw);
        let body = BASE64.encode(der);
        format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")
    }

    /// Whether `sig` (standard base64) is this key's signature of `bytes`. `Err` when `sig`
    /// is not a well-formed signature at all.
    pub fn verify(&self, bytes: &[u8], sig: &str) -> Result<bool, String> {
        let sig = BASE64
            .decode(sig)
            .map_err(|e| format!("the signature is not base64: {e}"))?;
        if sig.len() != 64 {
            return Err(format!(
                "the signature is {} bytes, not the 64 of an Ed25519 signature",
                sig.len()
            ));
        }
        Ok(UnparsedPublicKey::new(&ED25519, &self.raw)
            .verify(bytes, &sig)
            .is_ok())
    }
}

/// A key's id: the first 16 lowercase hex digits of the SHA-256 of its 32 public bytes.
pub fn key_id(public: &[u8]) -> String {
    hex::encode(&Sha256::digest(public)[..8])
}

/// A checkpoint as its line holds it (without `seq` and `prev`, which the writer adds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord<'a> {
    /// Always [`CHECKPOINT`].
    pub kind: Cow<'a, str>,
    /// When it was written: RFC 3339, UTC, milliseconds.
    pub ts: String,
    /// The replica that wrote it.
    pub replica: Cow<'a, str>,
    /// The chain head it signs: the SHA-256 of the line before it.
    pub head: String,
    /// Records the writer counted since the checkpoint before it.
    pub count: u64,
    /// The policy it signs under: the next checkpoint follows at the latest the
    /// `every`th record after it...
    pub every: u64,
    /// ... or `interval_ms` after a record.
    pub interval_ms: u64,
    /// The signing key's id ([`key_id`]).
    pub key: Cow<'a, str>,
    /// The Ed25519 signature of [`signed_bytes`], standard base64.
    pub sig: String,
}

/// The policy a checkpoint declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// `checkpoint_every`.
    pub every: u64,
    /// `checkpoint_interval`, milliseconds.
    pub interval_ms: u64,
}

/// The bytes a checkpoint's signature covers: UTF-8 lines, each ending with `\n`:
///
/// ```text
/// warden-audit-checkpoint/1
/// seq=<seq, decimal>
/// head=<head, 64 lowercase hex>
/// count=<count>
/// every=<every>
/// interval_ms=<interval_ms>
/// replica=<replica>
/// ts=<ts>
/// key=<key id>
/// ```
///
/// The replica id holds no newline (the manifest refuses one).
pub fn signed_bytes(seq: u64, record: &CheckpointRecord<'_>) -> Vec<u8> {
    format!(
        "{DOMAIN}\nseq={seq}\nhead={}\ncount={}\nevery={}\ninterval_ms={}\nreplica={}\nts={}\nkey={}\n",
        record.head,
        record.count,
        record.every,
        record.interval_ms,
        record.replica,
        record.ts,
        record.key
    )
    .into_bytes()
}
