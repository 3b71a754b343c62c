//! Signature checks against the committed Sigstore fixtures (`tests/fixtures/sigstore`, made by
//! `tests/support/sigstore_fixtures.py`): the good bundle and each way one can be wrong.

use serde_json::Value;

use super::*;

const ARTIFACT: &[u8] = include_bytes!("../../../tests/fixtures/sigstore/artifact.txt");
const ROOT: &[u8] = include_bytes!("../../../tests/fixtures/sigstore/trusted_root.json");
const GOOD: &[u8] = include_bytes!("../../../tests/fixtures/sigstore/good.sigstore.json");
const IDENTITY: &str =
    "https://github.com/warden-test/tools/.github/workflows/release.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../tests/fixtures/sigstore/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).expect("fixture")
}

fn policy() -> Identity {
    Identity {
        identity: IDENTITY.to_owned(),
        issuer: ISSUER.to_owned(),
    }
}

fn root() -> TrustedRoot {
    TrustedRoot::from_json(ROOT).expect("trusted root")
}

fn keyless(bundle: &[u8]) -> Result<Signer, SignatureError> {
    keyless_with(bundle, &root())
}

fn keyless_with(bundle: &[u8], root: &TrustedRoot) -> Result<Signer, SignatureError> {
    verify_keyless(ARTIFACT, &Bundle::from_json(bundle)?, root, &policy())
}

/// `json` with `edit` applied, as bytes.
fn edited(json: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(json).expect("json");
    edit(&mut value);
    serde_json::to_vec(&value).expect("json")
}

fn tlog_entry(bundle: &mut Value) -> &mut Value {
    &mut bundle["verificationMaterial"]["tlogEntries"][0]
}

#[test]
fn offline_keyless_verification_against_a_test_trusted_root() {
    let signer = keyless(GOOD).expect("the good bundle verifies");
    assert_eq!(
        signer,
        Signer::Identity {
            identity: IDENTITY.to_owned(),
            issuer: ISSUER.to_owned(),
        }
    );
    assert_eq!(signer.to_string(), format!("{IDENTITY} (issuer {ISSUER})"));
    // A P-384 leaf key signs the message with SHA-256.
    keyless(&fixture("good-p384.sigstore.json")).expect("the P-384 bundle verifies");
}

#[test]
fn older_bundle_forms_verify_too() {
    for media_type in [
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
    ] {
        let older = edited(GOOD, |b| {
            b["mediaType"] = media_type.into();
            let material = &mut b["verificationMaterial"];
            let leaf = material["certificate"].take();
            material
                .as_object_mut()
                .expect("object")
                .remove("certificate");
            material["x509CertificateChain"] = serde_json::json!({"certificates": [leaf]});
        });
        keyless(&older).expect(media_type);
    }
}

#[test]
fn each_negative_fixture_is_refused_for_its_reason() {
    type Expected = fn(&SignatureError) -> bool;
    let cases: [(&str, Expected); 7] = [
        ("other-identity", |e| {
            matches!(e, SignatureError::Identity { found, wanted }
                if found.contains("someone-else") && wanted == IDENTITY)
        }),
        ("other-issuer", |e| {
            matches!(e, SignatureError::Issuer { found, wanted }
                if found == "https://accounts.example.com" && wanted == ISSUER)
        }),
        ("other-ca", |e| matches!(e, SignatureError::UntrustedCa)),
        ("no-sct", |e| matches!(e, SignatureError::NoSct)),
        ("no-eku", |e| matches!(e, SignatureError::NotCodeSigning)),
        ("bad-set", |e| matches!(e, SignatureError::NoLogEntry)),
        ("late-entry", |e| matches!(e, SignatureError::LogTime)),
    ];
    for (name, expected) in cases {
        let error = keyless(&fixture(&format!("{name}.sigstore.json"))).expect_err(name);
        assert!(expected(&error), "{name}: {error}");
    }
}

#[test]
fn a_tampered_artifact_is_refused() {
    let bundle = Bundle::from_json(GOOD).expect("bundle");
    let error =
        verify_keyless(b"something else", &bundle, &root(), &policy()).expect_err("tampered");
    assert!(matches!(error, SignatureError::Digest), "{error}");
    // Without the digest, the signature itself fails.
    let no_digest = edited(GOOD, |b| {
        b["messageSignature"]
            .as_object_mut()
            .expect("object")
            .remove("messageDigest");
    });
    let bundle = Bundle::from_json(&no_digest).expect("bundle");
    let error =
        verify_keyless(b"something else", &bundle, &root(), &policy()).expect_err("tampered");
    assert!(
        matches!(error, SignatureError::CertificateSignature),
        "{error}"
    );
}

#[test]
fn a_log_entry_is_bound_to_its_promise_kind_and_proof() {
    let refused = |edit: fn(&mut Value)| keyless(&edited(GOOD, edit)).expect_err("refused");
    // The SET covers the time and index.
    let error = refused(|b| tlog_entry(b)["integratedTime"] = "1".into());
    assert!(matches!(error, SignatureError::NoLogEntry), "{error}");
    let error = refused(|b| tlog_entry(b)["logIndex"] = "7".into());
    assert!(matches!(error, SignatureError::NoLogEntry), "{error}");
    let error = refused(|b| tlog_entry(b)["kindVersion"]["version"] = "0.0.2".into());
    assert!(matches!(error, SignatureError::NoLogEntry), "{error}");
    let error = refused(|b| {
        tlog_entry(b)
            .as_object_mut()
            .expect("object")
            .remove("inclusionPromise");
    });
    assert!(matches!(error, SignatureError::NoLogEntry), "{error}");
    let error = refused(|b| tlog_entry(b)["inclusionProof"]["rootHash"] = "AAAA".into());
    assert!(
        matches!(error, SignatureError::InclusionProof(_)),
        "{error}"
    );
    let error = refused(|b| {
        let proof = &mut tlog_entry(b)["inclusionProof"];
        let note = proof["checkpoint"]["envelope"].as_str().expect("note");
        let forged = note.replacen("rekor.warden.test - 1", "rekor.warden.test - 2", 1);
        proof["checkpoint"]["envelope"] = forged.into();
    });
    assert!(
        matches!(error, SignatureError::InclusionProof(_)),
        "{error}"
    );
    let error = refused(|b| {
        b["verificationMaterial"]
            .as_object_mut()
            .expect("object")
            .remove("tlogEntries");
    });
    assert!(matches!(error, SignatureError::NoLogEntry), "{error}");
}

#[test]
fn a_log_entry_for_another_signature_is_refused() {
    // A genuine, promised entry, but of another bundle (another certificate and signature).
    let other: Value =
        serde_json::from_slice(&fixture("other-identity.sigstore.json")).expect("json");
    let swapped = edited(GOOD, |b| {
        *tlog_entry(b) = other["verificationMaterial"]["tlogEntries"][0].clone();
    });
    let error = keyless(&swapped).expect_err("refused");
    assert!(
        matches!(error, SignatureError::LogEntryMismatch("signature")),
        "{error}"
    );
}

#[test]
fn the_trusted_root_decides_which_ca_and_logs_count() {
    let without = |key: &'static str| {
        let root = edited(ROOT, |r| r[key] = Value::Array(Vec::new()));
        TrustedRoot::from_json(&root).expect("root")
    };
    let error = keyless_with(GOOD, &without("ctlogs")).expect_err("no ct log");
    assert!(matches!(error, SignatureError::NoSct), "{error}");
    let error = keyless_with(GOOD, &without("tlogs")).expect_err("no tlog");
    assert!(matches!(error, SignatureError::NoLogEntry), "{error}");
    let error = keyless_with(GOOD, &without("certificateAuthorities")).expect_err("no CA");
    assert!(matches!(error, SignatureError::UntrustedCa), "{error}");
    // A CA whose window ended before the entry was logged vouches for nothing.
    let expired = edited(ROOT, |r| {
        r["certificateAuthorities"][0]["validFor"]["end"] = "2001-01-01T00:00:00Z".into();
    });
    let error = keyless_with(GOOD, &TrustedRoot::from_json(&expired).expect("root"))
        .expect_err("expired CA");
    assert!(matches!(error, SignatureError::UntrustedCa), "{error}");
    let expired = edited(ROOT, |r| {
        r["tlogs"][0]["publicKey"]["validFor"]["end"] = "2001-01-01T00:00:00Z".into();
    });
    let error = keyless_with(GOOD, &TrustedRoot::from_json(&expired).expect("root"))
        .expect_err("expired log");
    assert!(matches!(error, SignatureError::NoLogEntry), "{error}");
}

#[test]
fn a_key_based_bundle_verifies_with_its_key_only() {
    let (key, _) = SigningKey::generate().expect("key");
    let json = Bundle::sign(ARTIFACT, &key).expect("sign");
    let bundle = Bundle::from_json(&json).expect("bundle");
    let fingerprint = key.public_key().fingerprint();
    assert_eq!(
        verify_with_key(ARTIFACT, &bundle, key.public_key()).expect("verifies"),
        Signer::Key {
            fingerprint: fingerprint.clone()
        }
    );
    assert_eq!(
        Signer::Key {
            fingerprint: fingerprint.clone()
        }
        .to_string(),
        format!("key {fingerprint}")
    );

    let (other, _) = SigningKey::generate().expect("key");
    let error = verify_with_key(ARTIFACT, &bundle, other.public_key()).expect_err("other key");
    assert!(
        matches!(&error, SignatureError::OtherKey { bundle, policy }
            if *bundle == fingerprint && *policy == other.public_key().fingerprint()),
        "{error}"
    );
    let mut flipped = ARTIFACT.to_vec();
    flipped[0] ^= 1;
    let error = verify_with_key(&flipped, &bundle, key.public_key()).expect_err("flipped");
    assert!(matches!(error, SignatureError::Digest), "{error}");

    // Without the hint and digest, only the signature itself can refuse.
    let bare = edited(&json, |b| {
        b["verificationMaterial"]["publicKey"] = serde_json::json!({});
        b["messageSignature"]
            .as_object_mut()
            .expect("object")
            .remove("messageDigest");
    });
    let bare = Bundle::from_json(&bare).expect("bundle");
    let error = verify_with_key(&flipped, &bare, key.public_key()).expect_err("flipped");
    assert!(matches!(error, SignatureError::KeySignature), "{error}");
    let error = verify_with_key(ARTIFACT, &bare, other.public_key()).expect_err("other key");
    assert!(matches!(error, SignatureError::KeySignature), "{error}");

    let error = verify_keyless(ARTIFACT, &bundle, &root(), &policy()).expect_err("keyless");
    assert!(matches!(error, SignatureError::KeyBundle), "{error}");
}

#[test]
fn a_keyless_bundle_is_refused_for_a_key_policy() {
    let (key, _) = SigningKey::generate().expect("key");
    let bundle = Bundle::from_json(GOOD).expect("bundle");
    let error = verify_with_key(ARTIFACT, &bundle, key.public_key()).expect_err("keyless");
    assert!(
        matches!(error, SignatureError::CertificateBundle),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "a keyless (certificate) bundle, but the policy wants a key"
    );
}

#[test]
fn malformed_bundles_are_refused_with_a_reason() {
    let bundle_error = |json: &[u8]| match Bundle::from_json(json) {
        Err(error) => error.to_string(),
        Ok(_) => panic!("accepted"),
    };
    assert!(bundle_error(b"{not json").contains("not valid bundle JSON"));
    assert!(bundle_error(b"{}").contains("not valid bundle JSON"));
    let huge = vec![b' '; (1 << 20) + 1];
    assert!(bundle_error(&huge).contains("larger than"));
    let other_type = edited(GOOD, |b| b["mediaType"] = "application/json".into());
    assert!(bundle_error(&other_type).contains("unknown media type"));
    let dsse = edited(GOOD, |b| {
        b["dsseEnvelope"] = serde_json::json!({"payload": "", "signatures": []});
    });
    assert!(matches!(
        Bundle::from_json(&dsse),
        Err(SignatureError::Dsse)
    ));
    let both = edited(GOOD, |b| {
        b["verificationMaterial"]["publicKey"] = serde_json::json!({"hint": "x"});
    });
    assert!(bundle_error(&both).contains("exactly one of"));
    let bad_base64 = edited(GOOD, |b| b["messageSignature"]["signature"] = "%%".into());
    assert!(bundle_error(&bad_base64).contains("`messageSignature.signature` is not base64"));
    let many = edited(GOOD, |b| {
        let entry = tlog_entry(b).clone();
        b["verificationMaterial"]["tlogEntries"] = Value::Array(vec![entry; 11]);
    });
    assert!(bundle_error(&many).contains("too many transparency-log entries"));
    let garbage_certificate = edited(GOOD, |b| {
        b["verificationMaterial"]["certificate"]["rawBytes"] = "AAAA".into();
    });
    let error = keyless(&garbage_certificate).expect_err("garbage");
    assert!(matches!(error, SignatureError::Certificate(_)), "{error}");
}

#[test]
fn malformed_trusted_roots_are_refused_with_a_reason() {
    let root_error = |json: &[u8]| match TrustedRoot::from_json(json) {
        Err(error) => error.to_string(),
        Ok(_) => panic!("accepted"),
    };
    assert!(root_error(b"[]").contains("not valid trusted-root JSON"));
    let other_type = edited(ROOT, |r| r["mediaType"] = "x".into());
    assert!(root_error(&other_type).contains("unknown media type"));
    let bad_time = edited(ROOT, |r| {
        r["tlogs"][0]["publicKey"]["validFor"]["start"] = "yesterday".into();
    });
    assert!(root_error(&bad_time).contains("not an RFC 3339 UTC time"));
    let no_window = edited(ROOT, |r| {
        r["certificateAuthorities"][0]
            .as_object_mut()
            .expect("object")
            .remove("validFor");
    });
    assert!(root_error(&no_window).contains("no `validFor`"));
}

/// sigstore-rs's real public-good test data, when its crate source is in the cargo registry:
/// the trusted root reads, and its DSSE bundle is refused as such.
#[test]
fn real_public_good_data_reads_and_dsse_is_refused_by_name() {
    let root =
        include_bytes!("../../../tests/fixtures/sigstore/public-good/sigstore_trusted_root.json");
    TrustedRoot::from_json(root).expect("sigstore's public-good trusted root reads");
    let bundle = include_bytes!("../../../tests/fixtures/sigstore/public-good/bundle_v03.json");
    assert!(matches!(
        Bundle::from_json(bundle),
        Err(SignatureError::Dsse)
    ));
}

#[test]
fn text_from_a_certificate_is_shown_escaped_and_bounded() {
    assert_eq!(bundle::shown("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
    let long = "x".repeat(500);
    assert_eq!(bundle::shown(&long).chars().count(), 201);
}

/// Every single-byte change to the certificate, the log entry's body or its promise is refused
/// (and none panics).
#[test]
fn no_flipped_byte_in_the_certificate_or_log_entry_verifies() {
    let root = root();
    let good = Bundle::from_json(GOOD).expect("bundle");
    let flips = |bytes: &[u8]| {
        (0..bytes.len())
            .map(|i| {
                let mut flipped = bytes.to_vec();
                flipped[i] ^= 0x01;
                flipped
            })
            .collect::<Vec<_>>()
    };
    let bundle::Material::Certificate(leaf) = &good.material else {
        panic!("a certificate bundle");
    };
    for flipped in flips(leaf) {
        let mut bundle = good.clone();
        bundle.material = bundle::Material::Certificate(flipped);
        assert!(verify_keyless(ARTIFACT, &bundle, &root, &policy()).is_err());
    }
    for flipped in flips(&good.tlog_entries[0].body) {
        let mut bundle = good.clone();
        bundle.tlog_entries[0].body = flipped;
        assert!(verify_keyless(ARTIFACT, &bundle, &root, &policy()).is_err());
    }
    for flipped in flips(good.tlog_entries[0].promise.as_deref().expect("SET")) {
        let mut bundle = good.clone();
        bundle.tlog_entries[0].promise = Some(flipped);
        assert!(verify_keyless(ARTIFACT, &bundle, &root, &policy()).is_err());
    }
}
