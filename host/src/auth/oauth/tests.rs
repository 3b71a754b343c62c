//! Every acceptance and refusal of [`OAuthVerifier`], with keys made at test time (the RSA
//! key is a test-only fixture: ring cannot generate RSA keys).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::manifest::{JwksSource, Location, OAuth};

#[allow(dead_code)] // shared with tests/oauth.rs, which uses more of it
#[path = "../../../../tests/support/oauth.rs"]
mod support;
use support::{JwksServer, TestKey, b64, jwks, now};

const ISSUER: &str = "https://idp.example.com/";
const RESOURCE: &str = "https://mcp.example.com/mcp";

/// Claims that pass every check.
fn good_claims() -> Value {
    support::claims(ISSUER, RESOURCE, "tools:call tools:read")
}

fn claims_with(changes: Value) -> Value {
    support::changed(good_claims(), changes)
}

fn config(source: JwksSource) -> OAuth {
    OAuth {
        issuer: ISSUER.into(),
        audience: vec![RESOURCE.into()],
        jwks: source,
        algorithms: ["RS256", "PS256", "ES256", "ES384", "EdDSA"]
            .map(String::from)
            .to_vec(),
        leeway: Duration::from_secs(60),
        principal_claim: "sub".into(),
        required_scopes: vec!["tools:call".into()],
        scope_roles: BTreeMap::from([
            ("tools:read".to_owned(), vec!["reader".to_owned()]),
            (
                "tools:call".to_owned(),
                vec!["caller".to_owned(), "reader".to_owned()],
            ),
        ]),
        roles_claim: Some("groups".into()),
        authorization_servers: vec![ISSUER.into()],
        location: Location {
            file: PathBuf::from("warden.toml"),
            line: 1,
            column: 1,
            key: "auth.oauth".into(),
        },
    }
}

/// A verifier reading `keys` from a file (kept alive by the returned guard).
fn verifier(keys: &[&TestKey]) -> (OAuthVerifier, tempfile::NamedTempFile) {
    verifier_with(keys, |_| {})
}

fn verifier_with(
    keys: &[&TestKey],
    change: impl FnOnce(&mut OAuth),
) -> (OAuthVerifier, tempfile::NamedTempFile) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), jwks(keys).to_string()).unwrap();
    let mut config = config(JwksSource::File(file.path().to_owned()));
    change(&mut config);
    (OAuthVerifier::new(&config).unwrap(), file)
}

async fn refusal(verifier: &OAuthVerifier, token: &str) -> BearerError {
    verifier.verify(token).await.unwrap_err()
}

#[tokio::test]
async fn accepts_each_key_type() {
    let keys = [
        TestKey::ecdsa("ec", "ES256"),
        TestKey::ecdsa("ec384", "ES384"),
        TestKey::ed25519("ed"),
        TestKey::rsa("rsa", "RS256"),
        TestKey::rsa("rsa-pss", "PS256"),
    ];
    let (verifier, _file) = verifier(&keys.iter().collect::<Vec<_>>());
    for key in &keys {
        let verified = verifier
            .verify(&key.token(&good_claims()))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", key.alg));
        assert_eq!(
            verified,
            Verified {
                principal: "alice".into(),
                roles: vec!["caller".into(), "reader".into(), "auditor".into()],
                scopes: vec!["tools:call".into(), "tools:read".into()],
            },
            "{}",
            key.alg
        );
    }
}

#[tokio::test]
async fn refuses_expired_and_not_yet_valid_tokens_with_leeway() {
    let key = TestKey::ecdsa("k", "ES256");
    let (verifier, _file) = verifier(&[&key]);
    let expired = key.token(&claims_with(json!({ "exp": now() - 120 })));
    assert_eq!(
        refusal(&verifier, &expired).await,
        BearerError::Invalid("token expired")
    );
    // Within the 60s leeway.
    let just_expired = key.token(&claims_with(json!({ "exp": now() - 20 })));
    assert!(verifier.verify(&just_expired).await.is_ok());
    let early = key.token(&claims_with(json!({ "nbf": now() + 600 })));
    assert_eq!(
        refusal(&verifier, &early).await,
        BearerError::Invalid("token not yet valid")
    );
    let nearly = key.token(&claims_with(json!({ "nbf": now() + 20 })));
    assert!(verifier.verify(&nearly).await.is_ok());
    let no_exp = key.token(&claims_with(json!({ "exp": null })));
    assert_eq!(
        refusal(&verifier, &no_exp).await,
        BearerError::Invalid("token has no exp claim")
    );
    let text_nbf = key.token(&claims_with(json!({ "nbf": "tomorrow" })));
    assert_eq!(
        refusal(&verifier, &text_nbf).await,
        BearerError::Invalid("malformed claim")
    );
}

#[tokio::test]
async fn refuses_other_audiences_and_issuers() {
    let key = TestKey::ecdsa("k", "ES256");
    let (verifier, _file) = verifier(&[&key]);
    let cases = [
        (
            json!({ "aud": "https://other.example.com/mcp" }),
            "token not issued for this resource",
        ),
        (
            json!({ "aud": ["https://other.example.com/mcp"] }),
            "token not issued for this resource",
        ),
        (json!({ "aud": null }), "token has no aud claim"),
        (
            json!({ "iss": "https://evil.example.com/" }),
            "wrong issuer",
        ),
        (json!({ "iss": "https://idp.example.com" }), "wrong issuer"),
        (
            json!({ "iss": [ISSUER, "https://evil.example.com/"] }),
            "wrong issuer",
        ),
        (json!({ "iss": null }), "token has no iss claim"),
    ];
    for (changes, description) in cases {
        let token = key.token(&claims_with(changes.clone()));
        assert_eq!(
            refusal(&verifier, &token).await,
            BearerError::Invalid(description),
            "{changes}"
        );
    }
    // An audience list that contains this resource is fine.
    let token = key.token(&claims_with(
        json!({ "aud": ["https://other.example.com", RESOURCE] }),
    ));
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn refuses_unknown_keys_and_bad_signatures() {
    let key = TestKey::ecdsa("k", "ES256");
    let stranger = TestKey::ecdsa("k2", "ES256");
    let (verifier, _file) = verifier(&[&key]);
    assert_eq!(
        refusal(&verifier, &stranger.token(&good_claims())).await,
        BearerError::Invalid("unknown signing key")
    );
    // Same kid as the real key, other key: the signature fails.
    let impostor = TestKey::ecdsa("k", "ES256");
    assert_eq!(
        refusal(&verifier, &impostor.token(&good_claims())).await,
        BearerError::Invalid("bad signature")
    );
    // A payload changed after signing.
    let token = key.token(&good_claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = b64(claims_with(json!({ "sub": "root" })).to_string().as_bytes());
    parts[1] = &forged;
    assert_eq!(
        refusal(&verifier, &parts.join(".")).await,
        BearerError::Invalid("bad signature")
    );
}

#[tokio::test]
async fn refuses_none_and_hmac_algorithms() {
    let key = TestKey::rsa("rsa", "RS256");
    let (verifier, _file) = verifier(&[&key]);
    let claims = b64(good_claims().to_string().as_bytes());
    for header in [
        json!({ "alg": "none", "kid": "rsa" }),
        json!({ "alg": "None" }),
        json!({ "alg": "HS256", "kid": "rsa" }),
        json!({ "alg": "RS512", "kid": "rsa" }),
    ] {
        let header_b64 = b64(header.to_string().as_bytes());
        for signature in ["", "c2ln"] {
            let token = format!("{header_b64}.{claims}.{signature}");
            assert_eq!(
                refusal(&verifier, &token).await,
                BearerError::Invalid("algorithm not accepted"),
                "{header}"
            );
        }
    }
    // HS256 keyed with the public key (the classic confusion attack): refused by name, and
    // the signature provider has no HMAC to fall for it even if asked.
    let public = key.jwk().to_string();
    let message = format!("{}.{claims}", b64(br#"{"alg":"HS256","kid":"rsa"}"#));
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public.as_bytes()),
        message.as_bytes(),
    );
    let token = format!("{message}.{}", b64(mac.as_ref()));
    assert_eq!(
        refusal(&verifier, &token).await,
        BearerError::Invalid("algorithm not accepted")
    );
    for hmac in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        assert!(!crypto::supports(hmac));
    }
    // And an operator cannot allow them.
    for name in ["HS256", "none", "ES512"] {
        let mut config = config(JwksSource::Url("https://idp.example.com/jwks".into()));
        config.algorithms = vec![name.into()];
        assert!(matches!(
            OAuthVerifier::new(&config),
            Err(OAuthError::Algorithm(_))
        ));
    }
}

#[tokio::test]
async fn refuses_keys_of_another_type_and_critical_headers() {
    let rsa = TestKey::rsa("rsa", "RS256");
    let ec = TestKey::ecdsa("ec", "ES256");
    let (verifier, _file) = verifier(&[&rsa, &ec]);
    // An ES256 token naming the RSA key.
    let token = ec.sign(&json!({ "alg": "ES256", "kid": "rsa" }), &good_claims());
    assert_eq!(
        refusal(&verifier, &token).await,
        BearerError::Invalid("key does not match the algorithm")
    );
    let token = ec.sign(
        &json!({ "alg": "ES256", "kid": "ec", "crit": ["exp"], "exp": 1 }),
        &good_claims(),
    );
    assert_eq!(
        refusal(&verifier, &token).await,
        BearerError::Invalid("unsupported critical header")
    );
    // Without a kid: the one key that fits the algorithm is used.
    let token = ec.sign(&json!({ "alg": "ES256" }), &good_claims());
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn a_token_without_kid_needs_exactly_one_fitting_key() {
    let (a, b) = (TestKey::ecdsa("a", "ES256"), TestKey::ecdsa("b", "ES256"));
    let (verifier, _file) = verifier(&[&a, &b]);
    let token = a.sign(&json!({ "alg": "ES256" }), &good_claims());
    assert_eq!(
        refusal(&verifier, &token).await,
        BearerError::Invalid("token names no key id")
    );
}

#[tokio::test]
async fn refuses_malformed_tokens() {
    let key = TestKey::ecdsa("k", "ES256");
    let (verifier, _file) = verifier(&[&key]);
    let good = key.token(&good_claims());
    let long = "a".repeat(MAX_TOKEN_BYTES + 1);
    for token in [
        "abc",
        "a.b",
        "a.b.c.d.e",
        "!!!.e30.",
        "e30.e30.",
        &format!("{good}.x"),
        long.as_str(),
    ] {
        assert!(
            matches!(refusal(&verifier, token).await, BearerError::Invalid(_)),
            "{token}"
        );
    }
    assert_eq!(refusal(&verifier, "").await, BearerError::Missing);
}

#[tokio::test]
async fn scopes_and_principal_claims() {
    let key = TestKey::ecdsa("k", "ES256");
    let (verifier, _file) = verifier(&[&key]);
    let token = key.token(&claims_with(json!({ "scope": "tools:read" })));
    let error = refusal(&verifier, &token).await;
    assert_eq!(
        error,
        BearerError::InsufficientScope {
            principal: "alice".into(),
            required: vec!["tools:call".into()]
        }
    );
    assert_eq!(error.status(), StatusCode::FORBIDDEN);
    // `scp` as an array.
    let token = key.token(&claims_with(
        json!({ "scope": null, "scp": ["tools:call"] }),
    ));
    let verified = verifier.verify(&token).await.unwrap();
    assert_eq!(verified.roles, ["caller", "reader", "auditor"]);
    let token = key.token(&claims_with(json!({ "sub": null })));
    assert_eq!(
        refusal(&verifier, &token).await,
        BearerError::Invalid("token has no usable principal claim")
    );
    let token = key.token(&claims_with(json!({ "sub": 42 })));
    assert!(matches!(
        refusal(&verifier, &token).await,
        BearerError::Invalid(_)
    ));

    // Another principal claim, roles from a nested claim.
    let (verifier, _file) = verifier_with(&[&key], |config| {
        config.principal_claim = "email".into();
        config.roles_claim = Some("realm_access.roles".into());
        config.required_scopes.clear();
    });
    let token = key.token(&claims_with(json!({
        "email": "alice@example.com",
        "scope": null,
        "realm_access": { "roles": ["admin"] },
    })));
    assert_eq!(
        verifier.verify(&token).await.unwrap(),
        Verified {
            principal: "alice@example.com".into(),
            roles: vec!["admin".into()],
            scopes: vec![],
        }
    );
}

#[test]
fn challenges() {
    let url = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
    assert_eq!(
        BearerError::Missing.www_authenticate(url),
        format!("Bearer realm=\"warden\", resource_metadata=\"{url}\"")
    );
    assert_eq!(BearerError::Missing.status(), StatusCode::UNAUTHORIZED);
    let invalid = BearerError::Invalid("token expired");
    assert_eq!(invalid.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        invalid.www_authenticate(url),
        format!(
            "Bearer realm=\"warden\", resource_metadata=\"{url}\", error=\"invalid_token\", \
             error_description=\"token expired\""
        )
    );
    let scope = BearerError::InsufficientScope {
        principal: "alice".into(),
        required: vec!["a".into(), "b\"".into()],
    };
    assert_eq!(
        scope.www_authenticate(url),
        format!(
            "Bearer realm=\"warden\", resource_metadata=\"{url}\", \
             error=\"insufficient_scope\", scope=\"a b\""
        )
    );
    assert_eq!(
        BearerError::Unavailable.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(invalid.to_string(), "invalid token: token expired");
}

#[test]
fn metadata_document() {
    let key = TestKey::ecdsa("k", "ES256");
    let (verifier, _file) = verifier(&[&key]);
    assert_eq!(
        verifier.metadata(RESOURCE),
        json!({
            "resource": RESOURCE,
            "authorization_servers": [ISSUER],
            "bearer_methods_supported": ["header"],
            "scopes_supported": ["tools:call", "tools:read"],
            "resource_name": "warden",
        })
    );
}

#[test]
fn unusable_configurations_are_refused() {
    let missing = config(JwksSource::File("/nonexistent/jwks.json".into()));
    assert!(matches!(
        OAuthVerifier::new(&missing),
        Err(OAuthError::ReadJwks { .. })
    ));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0" }] }).to_string(),
    )
    .unwrap();
    let symmetric = config(JwksSource::File(file.path().to_owned()));
    assert!(matches!(
        OAuthVerifier::new(&symmetric),
        Err(OAuthError::BadJwks { .. })
    ));
    let plain = config(JwksSource::Url("http://idp.example.com/jwks".into()));
    assert!(matches!(
        OAuthVerifier::new(&plain),
        Err(OAuthError::BadUrl { .. })
    ));
    let mut no_audience = config(JwksSource::Url("https://idp.example.com/jwks".into()));
    no_audience.audience.clear();
    assert!(matches!(
        OAuthVerifier::new(&no_audience),
        Err(OAuthError::NoAudience)
    ));
}

#[tokio::test]
async fn jwks_url_is_fetched_cached_and_refetched_on_unknown_kid_at_most_every_interval() {
    let (old, new, other) = (
        TestKey::ecdsa("old", "ES256"),
        TestKey::ed25519("new"),
        TestKey::rsa("other", "RS256"),
    );
    let server = JwksServer::start(jwks(&[&old])).await;
    let verifier = OAuthVerifier::new(&config(JwksSource::Url(server.url.clone()))).unwrap();
    assert_eq!(server.hits(), 0, "fetched on the first token, not before");
    assert!(verifier.verify(&old.token(&good_claims())).await.is_ok());
    assert!(verifier.verify(&old.token(&good_claims())).await.is_ok());
    assert_eq!(server.hits(), 1, "cached");

    // The provider rotates its keys: the unknown kid makes warden fetch again, once.
    server.serve(jwks(&[&new]));
    assert!(verifier.verify(&new.token(&good_claims())).await.is_ok());
    assert_eq!(server.hits(), 2);
    // The old key is gone from the new set.
    assert_eq!(
        refusal(&verifier, &old.token(&good_claims())).await,
        BearerError::Invalid("unknown signing key")
    );
    // Within the interval, unknown kids do not cause more fetches.
    server.serve(jwks(&[&new, &other]));
    for _ in 0..5 {
        assert_eq!(
            refusal(&verifier, &other.token(&good_claims())).await,
            BearerError::Invalid("unknown signing key")
        );
    }
    assert_eq!(server.hits(), 2);

    // With the interval over, the next unknown kid fetches again.
    let verifier = OAuthVerifier::new(&config(JwksSource::Url(server.url.clone())))
        .unwrap()
        .with_refetch_interval(Duration::ZERO);
    server.serve(jwks(&[&old]));
    assert!(verifier.verify(&old.token(&good_claims())).await.is_ok());
    server.serve(jwks(&[&old, &other]));
    assert!(verifier.verify(&other.token(&good_claims())).await.is_ok());
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn unreachable_jwks_url_is_unavailable_not_invalid() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/jwks.json");
    let verifier = OAuthVerifier::new(&config(JwksSource::Url(url))).unwrap();
    let key = TestKey::ecdsa("k", "ES256");
    let error = refusal(&verifier, &key.token(&good_claims())).await;
    assert_eq!(error, BearerError::Unavailable);
    assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn jwks_file_is_reread_on_unknown_kid_at_most_every_interval() {
    let (a, b, c) = (
        TestKey::ecdsa("a", "ES256"),
        TestKey::ed25519("b"),
        TestKey::ecdsa("c", "ES256"),
    );
    let (verifier, file) = verifier(&[&a]);
    std::fs::write(file.path(), jwks(&[&a, &b]).to_string()).unwrap();
    assert!(verifier.verify(&b.token(&good_claims())).await.is_ok());
    std::fs::write(file.path(), jwks(&[&a, &b, &c]).to_string()).unwrap();
    assert_eq!(
        refusal(&verifier, &c.token(&good_claims())).await,
        BearerError::Invalid("unknown signing key")
    );
    // A file that became unusable keeps the keys already known.
    let verifier = verifier.with_refetch_interval(Duration::ZERO);
    std::fs::write(file.path(), "not json").unwrap();
    assert_eq!(
        refusal(&verifier, &c.token(&good_claims())).await,
        BearerError::Invalid("unknown signing key")
    );
    assert!(verifier.verify(&a.token(&good_claims())).await.is_ok());
}
