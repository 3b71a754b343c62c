//! Keyless signatures checked offline: a Fulcio-style certificate that binds a short-lived key to
//! an OIDC identity, a CT log's promise that the certificate was logged, and a Rekor-style
//! transparency-log entry that dates the signature, all checked against a trusted root file
//! (`application/vnd.dev.sigstore.trustedroot+json;version=0.1`, the format of sigstore's
//! `trusted_root.json`).
//!
//! Checked, all required: the certificate is for code signing (EKU) and chains to a CA of the
//! trusted root (rustls-webpki) at the log entry's time; it carries an SCT signed by a CT log of the root; its SAN
//! and OIDC issuer equal the policy's; the message signature verifies with its key; a hashedrekord
//! 0.0.1 entry, promised (SET) by a log of the root, names this artifact, signature and
//! certificate, at a time inside the certificate's and the log's validity; and its inclusion proof
//! and checkpoint, when present, verify. Not checked: revocation, RFC 3161 timestamps, Rekor v2
//! entries, DSSE envelopes, and the root's own TUF signatures (the file is trusted as given).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ECDSA_P384_SHA256_ASN1, UnparsedPublicKey};
use rustls::pki_types::{CertificateDer, UnixTime};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::asn1::{ObjectIdentifier, Utf8StringRef};
use x509_cert::der::{Decode, Encode, pem};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::sct::SignedCertificateTimestampList;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};

use super::bundle::{
    Bundle, InclusionProof, Material, SignatureError, Signer, TlogEntry, check_digest, shown,
};
use super::keys::PublicKey;

/// The largest trusted root read, in bytes.
const MAX_ROOT_BYTES: usize = 1 << 20;
/// The most CAs, or logs of one kind, in a trusted root.
const MAX_ROOT_ENTRIES: usize = 64;
/// The most certificates in one CA's chain.
const MAX_CHAIN: usize = 10;
/// The most SCTs read from a certificate.
const MAX_SCTS: usize = 16;
/// The most signature lines read from a checkpoint.
const MAX_NOTE_SIGNATURES: usize = 16;

const TRUSTED_ROOT_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.trustedroot+json;version=0.1";
/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), DER contents.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
/// The embedded SCT list (RFC 6962 §3.3), DER contents of the OID.
const SCT_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];
/// Fulcio's OIDC issuer, a DER UTF8String.
const ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// Fulcio's legacy OIDC issuer, raw UTF-8.
const ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// The signature algorithms a Fulcio chain uses.
static CHAIN_ALGORITHMS: &[&dyn rustls::pki_types::SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
];

/// Who a keyless signature must come from: the certificate's SAN (URI or email) and OIDC
/// issuer, matched exactly; an identity ending in `/*` or `@*` matches every SAN that starts
/// with what comes before the `*` (`...release.yml@refs/tags/*`: any tag's release).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The SAN: a URI (a CI workflow's, for instance) or an email address.
    pub identity: String,
    /// The OIDC issuer that vouched for the identity.
    pub issuer: String,
}

impl Identity {
    /// Whether the SAN `name` is this identity.
    pub fn matches(&self, name: &str) -> bool {
        match self.identity.strip_suffix('*') {
            Some(prefix) if prefix.ends_with('/') || prefix.ends_with('@') => {
                name.len() > prefix.len() && name.starts_with(prefix)
            }
            _ => name == self.identity,
        }
    }
}

/// The CAs, transparency logs and CT logs a keyless signature is checked against, each with the
/// window of time it may vouch for.
#[derive(Clone, Debug)]
pub struct TrustedRoot {
    authorities: Vec<Authority>,
    tlogs: Vec<LogKey>,
    ctlogs: Vec<LogKey>,
}

/// A certificate authority: its chain (DER, issuing certificate first, root last).
#[derive(Clone, Debug)]
struct Authority {
    chain: Vec<Vec<u8>>,
    valid: Window,
}

/// A log's key, named by the SHA-256 of its SPKI.
#[derive(Clone, Debug)]
struct LogKey {
    id: [u8; 32],
    key: PublicKey,
    valid: Window,
}

/// Seconds since the Unix epoch, from `start` to `end` (open when none), inclusive.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: u64,
    end: Option<u64>,
}

impl TrustedRoot {
    /// Read a trusted root's JSON. Log keys warden cannot check (not ECDSA P-256 or P-384, such
    /// as Ed25519 Rekor v2 keys) are left out; everything else must be well-formed.
    pub fn from_json(bytes: &[u8]) -> Result<TrustedRoot, SignatureError> {
        let invalid = |what: String| SignatureError::TrustedRoot(what);
        if bytes.len() > MAX_ROOT_BYTES {
            return Err(invalid(format!("it is larger than {MAX_ROOT_BYTES} bytes")));
        }
        let root: json::TrustedRoot = serde_json::from_slice(bytes).map_err(|e| {
            invalid(format!(
                "not valid trusted-root JSON ({})",
                shown(&e.to_string())
            ))
        })?;
        if root.media_type != TRUSTED_ROOT_MEDIA_TYPE {
            return Err(invalid("unknown media type".to_owned()));
        }
        if [
            root.tlogs.len(),
            root.ctlogs.len(),
            root.certificate_authorities.len(),
        ]
        .iter()
        .any(|&count| count > MAX_ROOT_ENTRIES)
        {
            return Err(invalid("it lists too many CAs or logs".to_owned()));
        }
        let authorities = root
            .certificate_authorities
            .into_iter()
            .map(Authority::from_parsed)
            .collect::<Result<_, _>>()?;
        Ok(TrustedRoot {
            authorities,
            tlogs: log_keys(root.tlogs)?,
            ctlogs: log_keys(root.ctlogs)?,
        })
    }

    /// The transparency log named `id` (the SHA-256 of its key).
    fn tlog(&self, id: &[u8]) -> Option<&LogKey> {
        self.tlogs.iter().find(|log| log.id == id)
    }
}

impl Authority {
    fn from_parsed(authority: json::Authority) -> Result<Authority, SignatureError> {
        let certificates = authority.cert_chain.certificates;
        if certificates.is_empty() || certificates.len() > MAX_CHAIN {
            return Err(SignatureError::TrustedRoot(
                "a CA's chain is empty or too long".to_owned(),
            ));
        }
        let chain = certificates
            .iter()
            .map(|certificate| root_base64("a CA certificate", &certificate.raw_bytes))
            .collect::<Result<_, _>>()?;
        Ok(Authority {
            chain,
            valid: Window::from_parsed(&authority.valid_for)?,
        })
    }
}

/// The readable keys among a root's logs.
fn log_keys(logs: Vec<json::Log>) -> Result<Vec<LogKey>, SignatureError> {
    let mut keys = Vec::new();
    for log in logs {
        let spki = root_base64("a log key", &log.public_key.raw_bytes)?;
        let valid = Window::from_parsed(&log.public_key.valid_for)?;
        if let Ok(key) = PublicKey::from_spki_der(&spki) {
            keys.push(LogKey {
                id: Sha256::digest(&spki).into(),
                key,
                valid,
            });
        }
    }
    Ok(keys)
}

impl Window {
    fn contains(&self, time: u64) -> bool {
        self.start <= time && self.end.is_none_or(|end| time <= end)
    }

    /// A `validFor` window; a root entry must have one.
    fn from_parsed(window: &Option<json::ValidFor>) -> Result<Window, SignatureError> {
        let window = window.as_ref().ok_or_else(|| {
            SignatureError::TrustedRoot("an entry has no `validFor` window".to_owned())
        })?;
        Ok(Window {
            start: timestamp(&window.start)?,
            end: window.end.as_deref().map(timestamp).transpose()?,
        })
    }
}

/// Decode a standard base64 field of the root, naming it if it is not.
fn root_base64(what: &str, text: &str) -> Result<Vec<u8>, SignatureError> {
    STANDARD
        .decode(text)
        .map_err(|_| SignatureError::TrustedRoot(format!("{what} is not base64")))
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2021-10-07T13:28:20Z`, optionally with a
/// fraction, which is dropped), as protobuf JSON writes a Timestamp.
fn timestamp(text: &str) -> Result<u64, SignatureError> {
    let invalid = || SignatureError::TrustedRoot(format!("`{text}` is not an RFC 3339 UTC time"));
    let bytes = text.as_bytes();
    let shape = bytes.len() >= 20
        && text.ends_with('Z')
        && bytes[..19].iter().enumerate().all(|(i, &b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        });
    if !shape {
        return Err(invalid());
    }
    let field = |range: std::ops::Range<usize>| -> Result<u16, SignatureError> {
        text[range].parse().map_err(|_| invalid())
    };
    let fraction = &text[19..text.len() - 1];
    if !(fraction.is_empty()
        || fraction.starts_with('.') && fraction[1..].bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid());
    }
    let [year, month, day, hour, minute, second] = [
        field(0..4)?,
        field(5..7)?,
        field(8..10)?,
        field(11..13)?,
        field(14..16)?,
        field(17..19)?,
    ];
    let narrow = |value: u16| u8::try_from(value).map_err(|_| invalid());
    x509_cert::der::DateTime::new(
        year,
        narrow(month)?,
        narrow(day)?,
        narrow(hour)?,
        narrow(minute)?,
        narrow(second)?,
    )
    .map(|time| time.unix_duration().as_secs())
    .map_err(|_| invalid())
}

/// Keyless: the bundle's certificate, SCT and log entry verify against `root`, the certificate
/// names `policy`'s identity and issuer, and its key signed `artifact`.
pub fn verify_keyless(
    artifact: &[u8],
    bundle: &Bundle,
    root: &TrustedRoot,
    policy: &Identity,
) -> Result<Signer, SignatureError> {
    let Material::Certificate(leaf_der) = &bundle.material else {
        return Err(SignatureError::KeyBundle);
    };
    let leaf = Leaf::parse(leaf_der)?;
    let (entry, log, time) = promised_entry(bundle, root)?;
    if !(leaf.not_before <= time && time <= leaf.not_after) {
        return Err(SignatureError::LogTime);
    }
    let issuer_spki = verify_chain(leaf_der, root, time)?;
    verify_sct(&leaf, leaf_der, &issuer_spki, root)?;
    let signer = check_policy(&leaf, policy)?;
    check_digest(artifact, bundle)?;
    if !leaf.signed(artifact, &bundle.signature) {
        return Err(SignatureError::CertificateSignature);
    }
    check_body(entry, artifact, bundle, leaf_der)?;
    if let Some(proof) = &entry.proof {
        verify_inclusion(entry, proof, log)?;
    }
    Ok(signer)
}

/// What is read from the leaf certificate.
struct Leaf {
    certificate: Certificate,
    key: PublicKey,
    /// The uncompressed point of a P-384 key, which may sign with SHA-256 (see `signed`).
    p384_point: Option<Vec<u8>>,
    not_before: u64,
    not_after: u64,
}

impl Leaf {
    /// Read a DER leaf: an ECDSA P-256 or P-384 key, for code signing.
    fn parse(der: &[u8]) -> Result<Leaf, SignatureError> {
        let unreadable = |e: x509_cert::der::Error| SignatureError::Certificate(e.to_string());
        let certificate = Certificate::from_der(der).map_err(unreadable)?;
        let tbs = certificate.tbs_certificate();
        let spki = tbs.subject_public_key_info().to_der().map_err(unreadable)?;
        let key = PublicKey::from_spki_der(&spki)
            .map_err(|e| SignatureError::Certificate(e.to_string()))?;
        let code_signing = matches!(
            tbs.get_extension::<ExtendedKeyUsage>(),
            Ok(Some((_, usages))) if usages.0.iter().any(|oid| oid.as_bytes() == CODE_SIGNING)
        );
        if !code_signing {
            return Err(SignatureError::NotCodeSigning);
        }
        let point = tbs.subject_public_key_info().subject_public_key.as_bytes();
        let validity = tbs.validity();
        Ok(Leaf {
            key,
            p384_point: point.filter(|point| point.len() == 97).map(<[u8]>::to_vec),
            not_before: validity.not_before.to_unix_duration().as_secs(),
            not_after: validity.not_after.to_unix_duration().as_secs(),
            certificate,
        })
    }

    /// Whether `signature` is the leaf key's signature of `artifact`. A message signature is
    /// hashed with SHA-256 whatever the curve (the bundle's digest and the log entry are SHA-256;
    /// Fulcio certifies P-384 keys too), so a P-384 key's is checked with SHA-256 as well as with
    /// its own SHA-384.
    fn signed(&self, artifact: &[u8], signature: &[u8]) -> bool {
        self.key.verify(artifact, signature)
            || self.p384_point.as_ref().is_some_and(|point| {
                UnparsedPublicKey::new(&ECDSA_P384_SHA256_ASN1, point)
                    .verify(artifact, signature)
                    .is_ok()
            })
    }
}

/// The first hashedrekord 0.0.1 entry whose promise (SET) verifies with a log of the root that
/// was valid at the entry's time, with that log and time.
fn promised_entry<'b, 'r>(
    bundle: &'b Bundle,
    root: &'r TrustedRoot,
) -> Result<(&'b TlogEntry, &'r LogKey, u64), SignatureError> {
    bundle
        .tlog_entries
        .iter()
        .filter(|entry| entry.kind == "hashedrekord" && entry.version == "0.0.1")
        .find_map(|entry| {
            let log = root.tlog(&entry.log_id)?;
            let promise = entry.promise.as_ref()?;
            let time = u64::try_from(entry.integrated_time).ok()?;
            (log.valid.contains(time) && log.key.verify(&promise_payload(entry), promise))
                .then_some((entry, log, time))
        })
        .ok_or(SignatureError::NoLogEntry)
}

/// What a Rekor v1 log signs as its promise: canonical JSON of the entry's body, time, log id
/// and index (keys sorted, no whitespace).
fn promise_payload(entry: &TlogEntry) -> Vec<u8> {
    format!(
        r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
        STANDARD.encode(&entry.body),
        entry.integrated_time,
        hex::encode(&entry.log_id),
        entry.log_index
    )
    .into_bytes()
}

/// The leaf chains to a CA of the root valid at `time`, for code signing; returns the DER SPKI
/// of the certificate that issued the leaf.
fn verify_chain(leaf_der: &[u8], root: &TrustedRoot, time: u64) -> Result<Vec<u8>, SignatureError> {
    let leaf = CertificateDer::from(leaf_der);
    let end_entity =
        webpki::EndEntityCert::try_from(&leaf).map_err(|_| SignatureError::UntrustedCa)?;
    let at = UnixTime::since_unix_epoch(Duration::from_secs(time));
    for authority in root.authorities.iter().filter(|a| a.valid.contains(time)) {
        let Some((anchor_der, intermediates)) = authority.chain.split_last() else {
            continue;
        };
        let anchor_der = CertificateDer::from(anchor_der.as_slice());
        let Ok(anchor) = webpki::anchor_from_trusted_cert(&anchor_der) else {
            continue;
        };
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|der| CertificateDer::from(der.as_slice()))
            .collect();
        let anchors = [anchor];
        let Ok(path) = end_entity.verify_for_usage(
            CHAIN_ALGORITHMS,
            &anchors,
            &intermediates,
            at,
            // CAs may leave EKU out (the leaf's is checked in `Leaf::parse`).
            webpki::KeyUsage::required_if_present(CODE_SIGNING),
            None,
            None,
        ) else {
            continue;
        };
        // The path runs from the leaf up: its first intermediate, or else the anchor, issued it.
        return Ok(match path.intermediate_certificates().next() {
            Some(issuer) => issuer.subject_public_key_info().as_ref().to_vec(),
            None => der_tlv(0x30, path.anchor().subject_public_key_info.as_ref()),
        });
    }
    Err(SignatureError::UntrustedCa)
}

/// One embedded SCT verifies with a CT log of the root (RFC 6962 §3.2: a precertificate entry
/// over the leaf's TBS without the SCT extension, bound to the issuer's key).
fn verify_sct(
    leaf: &Leaf,
    leaf_der: &[u8],
    issuer_spki: &[u8],
    root: &TrustedRoot,
) -> Result<(), SignatureError> {
    let Ok(Some((_, list))) = leaf
        .certificate
        .tbs_certificate()
        .get_extension::<SignedCertificateTimestampList>()
    else {
        return Err(SignatureError::NoSct);
    };
    let scts = list.parse_timestamps().map_err(|_| SignatureError::NoSct)?;
    let tbs = precert_tbs(leaf_der).ok_or(SignatureError::NoSct)?;
    let issuer_key_hash = Sha256::digest(issuer_spki);
    let verified = scts.iter().take(MAX_SCTS).any(|sct| {
        let Ok(sct) = sct.parse_timestamp() else {
            return false;
        };
        let Some(log) = root.ctlogs.iter().find(|log| log.id == sct.log_id.key_id) else {
            return false;
        };
        let signed = sct_signed_data(
            sct.timestamp,
            sct.extensions.as_slice(),
            &issuer_key_hash,
            &tbs,
        );
        log.valid.contains(sct.timestamp / 1000)
            && signed
                .is_some_and(|signed| log.key.verify(&signed, sct.signature.signature.as_slice()))
    });
    if verified {
        Ok(())
    } else {
        Err(SignatureError::NoSct)
    }
}

/// What a CT log signs in a precertificate SCT (RFC 6962 §3.2): version 1, certificate_timestamp,
/// the time, precert_entry, the issuer's key hash, the TBS (24-bit length) and the extensions.
fn sct_signed_data(
    timestamp: u64,
    extensions: &[u8],
    issuer_key_hash: &[u8],
    tbs: &[u8],
) -> Option<Vec<u8>> {
    let tbs_length = u32::try_from(tbs.len()).ok().filter(|&n| n < 1 << 24)?;
    let extensions_length = u16::try_from(extensions.len()).ok()?;
    let mut signed = vec![0, 0];
    signed.extend_from_slice(&timestamp.to_be_bytes());
    signed.extend_from_slice(&[0, 1]);
    signed.extend_from_slice(issuer_key_hash);
    signed.extend_from_slice(&tbs_length.to_be_bytes()[1..]);
    signed.extend_from_slice(tbs);
    signed.extend_from_slice(&extensions_length.to_be_bytes());
    signed.extend_from_slice(extensions);
    Some(signed)
}

/// The leaf's TBSCertificate with the SCT list extension removed, re-encoded.
fn precert_tbs(certificate: &[u8]) -> Option<Vec<u8>> {
    let (0x30, body, _) = der_split(certificate)? else {
        return None;
    };
    let (0x30, tbs, _) = der_split(body)? else {
        return None;
    };
    let mut fields = Vec::new();
    let mut rest = tbs;
    while !rest.is_empty() {
        let (tag, contents, next) = der_split(rest)?;
        if tag == 0xa3 {
            let (0x30, mut extensions, _) = der_split(contents)? else {
                return None;
            };
            let mut kept = Vec::new();
            while !extensions.is_empty() {
                let (0x30, extension, after) = der_split(extensions)? else {
                    return None;
                };
                let (0x06, oid, _) = der_split(extension)? else {
                    return None;
                };
                if oid != SCT_OID {
                    kept.extend_from_slice(&extensions[..extensions.len() - after.len()]);
                }
                extensions = after;
            }
            fields.extend(der_tlv(0xa3, &der_tlv(0x30, &kept)));
        } else {
            fields.extend_from_slice(&rest[..rest.len() - next.len()]);
        }
        rest = next;
    }
    Some(der_tlv(0x30, &fields))
}

/// The tag, contents and what follows of the DER element at the start of `input` (one-byte tags,
/// definite lengths up to 2^24).
fn der_split(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x83 => {
            let count = usize::from(first & 0x7f);
            let bytes = rest.get(..count)?;
            let length = bytes.iter().fold(0, |n, &b| (n << 8) | usize::from(b));
            (length, &rest[count..])
        }
        _ => return None,
    };
    let contents = rest.get(..length)?;
    Some((tag, contents, &rest[length..]))
}

/// A DER element of `tag` around `contents`.
fn der_tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let length = contents.len();
    let mut out = vec![tag];
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes = length.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// The certificate's SAN and OIDC issuer are the policy's.
fn check_policy(leaf: &Leaf, policy: &Identity) -> Result<Signer, SignatureError> {
    let tbs = leaf.certificate.tbs_certificate();
    let names: Vec<String> = match tbs.get_extension::<SubjectAltName>() {
        Ok(Some((_, names))) => names
            .0
            .iter()
            .filter_map(|name| match name {
                GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
                GeneralName::Rfc822Name(email) => Some(email.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let Some(identity) = names.iter().find(|name| policy.matches(name)) else {
        return Err(SignatureError::Identity {
            found: if names.is_empty() {
                "(none)".to_owned()
            } else {
                shown(&names.join(", "))
            },
            wanted: policy.identity.clone(),
        });
    };
    let issuer = oidc_issuer(leaf)?;
    if issuer.as_deref() != Some(policy.issuer.as_str()) {
        return Err(SignatureError::Issuer {
            found: issuer.map_or_else(|| "(none)".to_owned(), |issuer| shown(&issuer)),
            wanted: policy.issuer.clone(),
        });
    }
    Ok(Signer::Identity {
        identity: shown(identity),
        issuer: policy.issuer.clone(),
    })
}

/// The OIDC issuer from Fulcio's extension (1.3.6.1.4.1.57264.1.8, or the legacy .1.1), if any.
fn oidc_issuer(leaf: &Leaf) -> Result<Option<String>, SignatureError> {
    let extensions = leaf.certificate.tbs_certificate().extensions();
    let find = |oid: ObjectIdentifier| {
        extensions
            .into_iter()
            .flatten()
            .find(|extension| extension.extn_id == oid)
            .map(|extension| extension.extn_value.as_bytes())
    };
    let unreadable = || SignatureError::Certificate("its OIDC issuer is not UTF-8".to_owned());
    if let Some(value) = find(ISSUER_V2) {
        return Utf8StringRef::from_der(value)
            .map(|text| Some(text.as_str().to_owned()))
            .map_err(|_| unreadable());
    }
    find(ISSUER_V1)
        .map(|value| String::from_utf8(value.to_vec()).map_err(|_| unreadable()))
        .transpose()
}

/// The entry's body is the hashedrekord 0.0.1 of this artifact, signature and certificate.
fn check_body(
    entry: &TlogEntry,
    artifact: &[u8],
    bundle: &Bundle,
    leaf_der: &[u8],
) -> Result<(), SignatureError> {
    let body: json::Rekord = serde_json::from_slice(&entry.body)
        .map_err(|_| SignatureError::LogEntryMismatch("hashedrekord format"))?;
    if body.kind != "hashedrekord" || body.api_version != "0.0.1" {
        return Err(SignatureError::LogEntryMismatch("hashedrekord format"));
    }
    let hash = &body.spec.data.hash;
    if hash.algorithm != "sha256"
        || !hash
            .value
            .eq_ignore_ascii_case(&hex::encode(Sha256::digest(artifact)))
    {
        return Err(SignatureError::LogEntryMismatch("artifact"));
    }
    let signature = &body.spec.signature;
    if STANDARD.decode(&signature.content).ok().as_deref() != Some(bundle.signature.as_slice()) {
        return Err(SignatureError::LogEntryMismatch("signature"));
    }
    let certificate = STANDARD
        .decode(&signature.public_key.content)
        .ok()
        .and_then(|text| match pem::decode_vec(&text) {
            Ok(("CERTIFICATE", der)) => Some(der),
            _ => None,
        });
    if certificate.as_deref() != Some(leaf_der) {
        return Err(SignatureError::LogEntryMismatch("certificate"));
    }
    Ok(())
}

/// The RFC 6962 inclusion proof leads from the entry's leaf hash to its root hash, and the
/// checkpoint, if any, is the log's signature of that root.
fn verify_inclusion(
    entry: &TlogEntry,
    proof: &InclusionProof,
    log: &LogKey,
) -> Result<(), SignatureError> {
    let mut leaf = vec![0];
    leaf.extend_from_slice(&entry.body);
    let leaf_hash: [u8; 32] = Sha256::digest(&leaf).into();
    let root = merkle_root(leaf_hash, proof.log_index, proof.tree_size, &proof.hashes)
        .ok_or(SignatureError::InclusionProof("the proof is malformed"))?;
    if root.as_slice() != proof.root_hash.as_slice() {
        return Err(SignatureError::InclusionProof(
            "it leads to another root hash",
        ));
    }
    match &proof.checkpoint {
        Some(note) => verify_checkpoint(note, proof, log),
        None => Ok(()),
    }
}

/// The root an audit path computes (RFC 9162 §2.1.3.2), if the path fits the tree's shape.
fn merkle_root(leaf: [u8; 32], index: u64, size: u64, path: &[Vec<u8>]) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut hash = leaf;
    for sibling in path {
        if s_n == 0 {
            return None;
        }
        let sibling: &[u8; 32] = sibling.as_slice().try_into().ok()?;
        if f_n & 1 == 1 || f_n == s_n {
            hash = node_hash(sibling, &hash);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    (s_n == 0).then_some(hash)
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([1]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// A signed note (`origin\nsize\nbase64 root\n[other lines]\n\n— name base64(keyhint‖sig)\n`)
/// whose size and root are the proof's, signed by the log's key.
fn verify_checkpoint(
    note: &str,
    proof: &InclusionProof,
    log: &LogKey,
) -> Result<(), SignatureError> {
    let bad = SignatureError::InclusionProof;
    let (text, signatures) = note
        .split_once("\n\n")
        .ok_or(bad("the checkpoint is malformed"))?;
    let mut lines = text.lines();
    let (_origin, size, root) = (lines.next(), lines.next(), lines.next());
    if size != Some(proof.tree_size.to_string().as_str())
        || root != Some(STANDARD.encode(&proof.root_hash).as_str())
    {
        return Err(bad("the checkpoint names another tree"));
    }
    let signed = format!("{text}\n");
    let verified = signatures
        .lines()
        .take(MAX_NOTE_SIGNATURES)
        .filter_map(|line| line.strip_prefix("\u{2014} "))
        .filter_map(|line| line.split_once(' '))
        .filter_map(|(_name, signature)| STANDARD.decode(signature).ok())
        .any(|signature| {
            signature.len() > 4
                && signature[..4] == log.id[..4]
                && log.key.verify(signed.as_bytes(), &signature[4..])
        });
    if verified {
        Ok(())
    } else {
        Err(bad("the checkpoint is not signed by the log"))
    }
}

/// The trusted root's and a hashedrekord body's JSON (the fields warden reads).
mod json {
    use super::Deserialize;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct TrustedRoot {
        pub(super) media_type: String,
        #[serde(default)]
        pub(super) tlogs: Vec<Log>,
        #[serde(default)]
        pub(super) certificate_authorities: Vec<Authority>,
        #[serde(default)]
        pub(super) ctlogs: Vec<Log>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Log {
        pub(super) public_key: LogPublicKey,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct LogPublicKey {
        pub(super) raw_bytes: String,
        pub(super) valid_for: Option<ValidFor>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Authority {
        pub(super) cert_chain: CertChain,
        pub(super) valid_for: Option<ValidFor>,
    }

    #[derive(Deserialize)]
    pub(super) struct CertChain {
        pub(super) certificates: Vec<RawBytes>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct RawBytes {
        pub(super) raw_bytes: String,
    }

    #[derive(Deserialize)]
    pub(super) struct ValidFor {
        pub(super) start: String,
        pub(super) end: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Rekord {
        pub(super) api_version: String,
        pub(super) kind: String,
        pub(super) spec: RekordSpec,
    }

    #[derive(Deserialize)]
    pub(super) struct RekordSpec {
        pub(super) data: RekordData,
        pub(super) signature: RekordSignature,
    }

    #[derive(Deserialize)]
    pub(super) struct RekordData {
        pub(super) hash: RekordHash,
    }

    #[derive(Deserialize)]
    pub(super) struct RekordHash {
        pub(super) algorithm: String,
        pub(super) value: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct RekordSignature {
        pub(super) content: String,
        pub(super) public_key: RekordKey,
    }

    #[derive(Deserialize)]
    pub(super) struct RekordKey {
        pub(super) content: String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962 §2.1 tree hash of `leaves` (already leaf-hashed).
    fn tree_hash(leaves: &[[u8; 32]]) -> [u8; 32] {
        if leaves.len() == 1 {
            return leaves[0];
        }
        let split = split_point(leaves.len());
        node_hash(&tree_hash(&leaves[..split]), &tree_hash(&leaves[split..]))
    }

    /// RFC 6962 §2.1.1 audit path of leaf `index`.
    fn audit_path(index: usize, leaves: &[[u8; 32]]) -> Vec<Vec<u8>> {
        if leaves.len() == 1 {
            return Vec::new();
        }
        let split = split_point(leaves.len());
        if index < split {
            let mut path = audit_path(index, &leaves[..split]);
            path.push(tree_hash(&leaves[split..]).to_vec());
            path
        } else {
            let mut path = audit_path(index - split, &leaves[split..]);
            path.push(tree_hash(&leaves[..split]).to_vec());
            path
        }
    }

    /// The largest power of two below `n`.
    fn split_point(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    #[test]
    fn inclusion_proofs_verify_for_every_leaf_of_small_trees() {
        for size in 1..=13usize {
            let leaves: Vec<[u8; 32]> = (0..size)
                .map(|i| Sha256::digest([0, i as u8]).into())
                .collect();
            let root = tree_hash(&leaves);
            for (index, leaf) in leaves.iter().enumerate() {
                let path = audit_path(index, &leaves);
                let (index, size) = (index as u64, size as u64);
                assert_eq!(merkle_root(*leaf, index, size, &path), Some(root));
                // Another leaf, index or path does not reach the root (another size may: the
                // checkpoint binds the size).
                assert_ne!(merkle_root([7; 32], index, size, &path), Some(root));
                assert_eq!(merkle_root(*leaf, size, size, &path), None);
                if let Some((_, shorter)) = path.split_last() {
                    assert_ne!(merkle_root(*leaf, index, size, shorter), Some(root));
                    assert_ne!(merkle_root(*leaf, index ^ 1, size, &path), Some(root));
                }
            }
        }
    }

    #[test]
    fn timestamps_are_rfc_3339_utc() {
        assert_eq!(timestamp("1970-01-01T00:00:00Z").ok(), Some(0));
        assert_eq!(timestamp("2021-10-07T13:28:20Z").ok(), Some(1_633_613_300));
        assert_eq!(
            timestamp("2021-10-07T13:28:20.999Z").ok(),
            Some(1_633_613_300)
        );
        for bad in [
            "2021-10-07 13:28:20Z",
            "2021-10-07T13:28:20+01:00",
            "2021-13-07T13:28:20Z",
            "2021-10-07T13:28:20.x1Z",
            "2021x10-07T13:28:20Z",
            "+021-10-07T13:28:20Z",
            "",
        ] {
            assert!(timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_wildcard_identity_matches_below_a_slash_or_at_only() {
        let policy = |identity: &str| Identity {
            identity: identity.into(),
            issuer: String::new(),
        };
        let release = "https://github.com/acme/tools/.github/workflows/release.yml@refs/tags/v1.2";
        assert!(policy(release).matches(release));
        assert!(!policy(release).matches(&format!("{release}.3")));
        let tags =
            policy("https://github.com/acme/tools/.github/workflows/release.yml@refs/tags/*");
        assert!(tags.matches(release));
        assert!(
            !tags.matches("https://github.com/acme/tools/.github/workflows/release.yml@refs/tags/")
        );
        assert!(
            !tags.matches("https://github.com/acme/tools/.github/workflows/other.yml@refs/tags/v1")
        );
        let repo = policy("https://github.com/acme/tools/*");
        assert!(!repo.matches("https://github.com/acme/tools-evil/x"));
        // A `*` after anything else is literal, so it matches only itself.
        let loose = policy("https://github.com/acme/tools*");
        assert!(!loose.matches("https://github.com/acme/tools-evil/x"));
        assert!(loose.matches("https://github.com/acme/tools*"));
    }

    #[test]
    fn the_precertificate_drops_only_the_sct_extension() {
        let bundle = super::super::Bundle::from_json(include_bytes!(
            "../../../tests/fixtures/sigstore/good.sigstore.json"
        ))
        .expect("bundle");
        let Material::Certificate(der) = &bundle.material else {
            panic!("a certificate bundle");
        };
        let precert = precert_tbs(der).expect("precert");
        let leaf = Certificate::from_der(der).expect("leaf");
        let full = leaf.tbs_certificate().to_der().expect("tbs");
        assert!(precert.len() < full.len());
        let extensions = |tbs: &x509_cert::TbsCertificate| {
            tbs.extensions()
                .into_iter()
                .flatten()
                .map(|e| e.extn_id)
                .collect::<Vec<_>>()
        };
        let parsed = x509_cert::TbsCertificate::from_der(&precert).expect("re-encoded TBS");
        let mut expected = extensions(leaf.tbs_certificate());
        expected.retain(|oid| oid.as_bytes() != SCT_OID);
        assert_eq!(extensions(&parsed), expected);
        assert_eq!(
            parsed.subject_public_key_info(),
            leaf.tbs_certificate().subject_public_key_info()
        );
    }
}
