#!/usr/bin/env python3
"""Offline Sigstore fixtures: a test trusted root and keyless bundles over one artifact.

Usage:
    python3 tests/support/sigstore_fixtures.py --artifact FILE --out DIR \
        [--identity URI] [--issuer URL]

Writes into DIR (needs Python 3 and `cryptography`; no network, well under a second):

- `trusted_root.json`: a `application/vnd.dev.sigstore.trustedroot+json;version=0.1` file with a
  test CA chain (P-384, an intermediate under a self-signed root, as Fulcio's), one Rekor-like
  transparency-log key and one CT log key (P-256), each valid from a day ago with no end;
- `good.sigstore.json`: a v0.3 bundle over FILE: a leaf certificate valid for 10 minutes from now
  with the SAN URI `--identity`, the issuer extensions 1.3.6.1.4.1.57264.1.8 (UTF8String) and .1.1
  (raw), EKU codeSigning, KU digitalSignature and an embedded SCT from the CT log; the message
  signature and SHA-256 digest; one hashedrekord 0.0.1 log entry with its signed entry timestamp
  (SET) and the inclusion proof of a one-leaf tree with a signed checkpoint;
- `good-p384.sigstore.json`: the same with a P-384 leaf key (which signs with SHA-256, as
  sigstore clients do);
- negatives, each differing from `good` in one way: `other-identity.sigstore.json` (another SAN),
  `other-issuer.sigstore.json` (another issuer), `other-ca.sigstore.json` (a leaf from a
  self-signed CA that is not in the root), `no-sct.sigstore.json` (no SCT extension),
  `no-eku.sigstore.json` (no codeSigning EKU), `bad-set.sigstore.json` (the SET and checkpoint
  signed by a log key that is not in the root), `late-entry.sigstore.json` (logged an hour
  after the certificate expired).

`good.sigstore.json` verifies offline with sigstore-python 4.5
(`sigstore.verify.Verifier(trusted_root=TrustedRoot.from_file(...)).verify_artifact(...)`).
Keys are fresh on every run; the structure and every check's outcome are deterministic.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import struct

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_IDENTITY = (
    "https://github.com/warden-test/tools/.github/workflows/release.yml@refs/heads/main"
)
DEFAULT_ISSUER = "https://token.actions.githubusercontent.com"
SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
ISSUER_V2_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
ISSUER_V1_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
LOG_ORIGIN = "rekor.warden.test"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def spki_der(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key) -> bytes:
    return hashlib.sha256(spki_der(key)).digest()


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def der_utf8(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 128
    return bytes([0x0C, len(data)]) + data


def der_octet_string(data: bytes) -> bytes:
    if len(data) < 128:
        return bytes([0x04, len(data)]) + data
    length = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
    return bytes([0x04, 0x80 | len(length)]) + length + data


def make_ca(name: str, now: datetime.datetime, parent=None):
    """A P-384 CA certificate: self-signed, or issued by `parent` (a (key, cert) pair)."""
    key = ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "warden.test"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    issuer_key, issuer_name = (key, subject) if parent is None else (parent[0], parent[1].subject)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=1 if parent is None else 0),
            critical=True,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(issuer_key, hashes.SHA384())
    )
    return key, cert


def sct_list(ct_key, ca_key, tbs: bytes, timestamp_ms: int) -> bytes:
    """The TLS-encoded SCT list (RFC 6962 §3.2-3.3) of one precert SCT over `tbs`."""
    signed = (
        bytes([0, 0])
        + struct.pack(">Q", timestamp_ms)
        + struct.pack(">H", 1)
        + hashlib.sha256(spki_der(ca_key)).digest()
        + len(tbs).to_bytes(3, "big")
        + tbs
        + struct.pack(">H", 0)
    )
    signature = ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
    sct = (
        bytes([0])
        + key_id(ct_key)
        + struct.pack(">Q", timestamp_ms)
        + struct.pack(">H", 0)
        + bytes([4, 3])
        + struct.pack(">H", len(signature))
        + signature
    )
    entry = struct.pack(">H", len(sct)) + sct
    return struct.pack(">H", len(entry)) + entry


def make_leaf(ca_key, ca_cert, ct_key, identity, issuer, now, with_sct=True, with_eku=True,
              curve=ec.SECP256R1):
    key = ec.generate_private_key(curve())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(minutes=10))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]),
            critical=True,
        )
        .add_extension(
            x509.UnrecognizedExtension(ISSUER_V1_OID, issuer.encode()), critical=False
        )
        .add_extension(
            x509.UnrecognizedExtension(ISSUER_V2_OID, der_utf8(issuer)), critical=False
        )
    )
    if with_eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    if with_sct:
        # The precertificate's TBS is the final TBS without the SCT extension, which goes last.
        precert = builder.sign(ca_key, hashes.SHA384())
        scts = sct_list(
            ct_key, ca_key, precert.tbs_certificate_bytes, int(now.timestamp() * 1000)
        )
        builder = builder.add_extension(
            x509.UnrecognizedExtension(SCT_OID, der_octet_string(scts)), critical=False
        )
    return key, builder.sign(ca_key, hashes.SHA384())


def checkpoint(log_key, root_hash: bytes, size: int) -> str:
    note = f"{LOG_ORIGIN} - 1\n{size}\n{b64(root_hash)}\n"
    signature = log_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
    return f"{note}\n\u2014 {LOG_ORIGIN} {b64(key_id(log_key)[:4] + signature)}\n"


def tlog_entry(log_key, artifact: bytes, signature: bytes, cert, integrated_time: int):
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    body = canonical(
        {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {
                    "hash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(artifact).hexdigest(),
                    }
                },
                "signature": {
                    "content": b64(signature),
                    "publicKey": {"content": b64(cert_pem)},
                },
            },
        }
    )
    log_id = key_id(log_key)
    promise = canonical(
        {
            "body": b64(body),
            "integratedTime": integrated_time,
            "logID": log_id.hex(),
            "logIndex": 0,
        }
    )
    root_hash = hashlib.sha256(b"\x00" + body).digest()
    return {
        "logIndex": "0",
        "logId": {"keyId": b64(log_id)},
        "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
        "integratedTime": str(integrated_time),
        "inclusionPromise": {
            "signedEntryTimestamp": b64(log_key.sign(promise, ec.ECDSA(hashes.SHA256())))
        },
        "inclusionProof": {
            "logIndex": "0",
            "rootHash": b64(root_hash),
            "treeSize": "1",
            "hashes": [],
            "checkpoint": {"envelope": checkpoint(log_key, root_hash, 1)},
        },
        "canonicalizedBody": b64(body),
    }


def bundle(artifact, leaf_key, leaf, log_key, integrated_time):
    signature = leaf_key.sign(artifact, ec.ECDSA(hashes.SHA256()))
    return {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": {"rawBytes": b64(leaf.public_bytes(serialization.Encoding.DER))},
            "tlogEntries": [tlog_entry(log_key, artifact, signature, leaf, integrated_time)],
        },
        "messageSignature": {
            "messageDigest": {
                "algorithm": "SHA2_256",
                "digest": b64(hashlib.sha256(artifact).digest()),
            },
            "signature": b64(signature),
        },
    }


def trusted_root(chain, log_key, ct_key, now) -> dict:
    start = (now - datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def log(key, url):
        return {
            "baseUrl": url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64(spki_der(key)),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": start},
            },
            "logId": {"keyId": b64(key_id(key))},
        }

    return {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [log(log_key, f"https://{LOG_ORIGIN}")],
        "certificateAuthorities": [
            {
                "subject": {"organization": "warden.test", "commonName": "warden test CA"},
                "uri": "https://fulcio.warden.test",
                "certChain": {
                    "certificates": [
                        {"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))}
                        for cert in chain
                    ]
                },
                "validFor": {"start": start},
            }
        ],
        "ctlogs": [log(ct_key, "https://ctfe.warden.test")],
        "timestampAuthorities": [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--identity", default=DEFAULT_IDENTITY)
    parser.add_argument("--issuer", default=DEFAULT_ISSUER)
    args = parser.parse_args()

    with open(args.artifact, "rb") as file:
        artifact = file.read()
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    integrated_time = int(now.timestamp())
    root_key, root_cert = make_ca("warden test root", now)
    ca_key, ca_cert = make_ca("warden test intermediate", now, (root_key, root_cert))
    other_ca_key, other_ca_cert = make_ca("another CA", now)
    log_key = ec.generate_private_key(ec.SECP256R1())
    other_log_key = ec.generate_private_key(ec.SECP256R1())
    ct_key = ec.generate_private_key(ec.SECP256R1())

    def keyless(ca=(ca_key, ca_cert), identity=args.identity, issuer=args.issuer,
                log=log_key, with_sct=True, with_eku=True, logged=integrated_time,
                curve=ec.SECP256R1):
        leaf_key, leaf = make_leaf(*ca, ct_key, identity, issuer, now, with_sct, with_eku, curve)
        return bundle(artifact, leaf_key, leaf, log, logged)

    outputs = {
        "trusted_root.json": trusted_root([ca_cert, root_cert], log_key, ct_key, now),
        "good.sigstore.json": keyless(),
        "good-p384.sigstore.json": keyless(curve=ec.SECP384R1),
        "other-identity.sigstore.json": keyless(
            identity="https://github.com/someone-else/tools/.github/workflows/release.yml@refs/heads/main"
        ),
        "other-issuer.sigstore.json": keyless(issuer="https://accounts.example.com"),
        "other-ca.sigstore.json": keyless(ca=(other_ca_key, other_ca_cert)),
        "no-sct.sigstore.json": keyless(with_sct=False),
        "no-eku.sigstore.json": keyless(with_eku=False),
        "bad-set.sigstore.json": keyless(log=other_log_key),
        "late-entry.sigstore.json": keyless(logged=integrated_time + 3600),
    }
    os.makedirs(args.out, exist_ok=True)
    for name, value in outputs.items():
        with open(os.path.join(args.out, name), "w") as file:
            json.dump(value, file, indent=2)
            file.write("\n")


if __name__ == "__main__":
    main()
