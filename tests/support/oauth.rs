//! OAuth test support shared by the unit tests (`host/src/auth/oauth/tests.rs`) and the
//! end-to-end test (`tests/oauth.rs`), which include this file with `#[path]`: JWT signing keys
//! made at test time (the RSA key is a test-only fixture: ring cannot generate RSA keys), and a
//! JWKS server on 127.0.0.1 that counts its fetches.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, KeyPair};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A signing key and its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: &'static str,
    signer: Signer,
}

enum Signer {
    Ecdsa(sig::EcdsaKeyPair),
    Ed(sig::Ed25519KeyPair),
    Rsa(sig::RsaKeyPair, &'static dyn sig::RsaEncoding),
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestKey {
    pub fn ecdsa(kid: &str, alg: &'static str) -> TestKey {
        let rng = SystemRandom::new();
        let signing = match alg {
            "ES384" => &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
            _ => &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
        };
        let pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(signing, &rng).expect("test key");
        let pair = sig::EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), &rng).expect("test key");
        TestKey {
            kid: kid.into(),
            alg,
            signer: Signer::Ecdsa(pair),
        }
    }

    pub fn ed25519(kid: &str) -> TestKey {
        let pkcs8 = sig::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("test key");
        let pair = sig::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("test key");
        TestKey {
            kid: kid.into(),
            alg: "EdDSA",
            signer: Signer::Ed(pair),
        }
    }

    pub fn rsa(kid: &str, alg: &'static str) -> TestKey {
        let pem = include_str!("../fixtures/oauth/test-only-rsa-2048.pem");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body).expect("test key");
        let pair = sig::RsaKeyPair::from_pkcs8(&der).expect("test key");
        let encoding: &'static dyn sig::RsaEncoding = match alg {
            "PS256" => &sig::RSA_PSS_SHA256,
            _ => &sig::RSA_PKCS1_SHA256,
        };
        TestKey {
            kid: kid.into(),
            alg,
            signer: Signer::Rsa(pair, encoding),
        }
    }

    /// The public key's bytes (what a confused verifier might use as an HMAC secret).
    pub fn public_bytes(&self) -> &[u8] {
        match &self.signer {
            Signer::Ecdsa(pair) => pair.public_key().as_ref(),
            Signer::Ed(pair) => pair.public_key().as_ref(),
            Signer::Rsa(pair, _) => pair.public().as_ref(),
        }
    }

    /// The public JWK, with `kid` and `use` but no `alg`.
    pub fn jwk(&self) -> Value {
        match &self.signer {
            Signer::Ecdsa(pair) => {
                let point = pair.public_key().as_ref();
                let half = (point.len() - 1) / 2;
                let crv = if half == 48 { "P-384" } else { "P-256" };
                json!({ "kty": "EC", "crv": crv, "kid": self.kid, "use": "sig",
                        "x": b64(&point[1..1 + half]), "y": b64(&point[1 + half..]) })
            }
            Signer::Ed(pair) => json!({ "kty": "OKP", "crv": "Ed25519", "kid": self.kid,
                                        "x": b64(pair.public_key().as_ref()) }),
            Signer::Rsa(pair, _) => {
                let parts = sig::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                json!({ "kty": "RSA", "kid": self.kid, "use": "sig",
                        "n": b64(&parts.n), "e": b64(&parts.e) })
            }
        }
    }

    pub fn sign_bytes(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Ecdsa(pair) => pair
                .sign(&rng, message)
                .expect("test key")
                .as_ref()
                .to_vec(),
            Signer::Ed(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::Rsa(pair, encoding) => {
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(*encoding, &rng, message, &mut out)
                    .expect("test key");
                out
            }
        }
    }

    /// A JWT with this header and these claims, signed by this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let message = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = b64(&self.sign_bytes(message.as_bytes()));
        format!("{message}.{signature}")
    }

    /// A JWT with the usual header (`alg`, `kid`, `typ`) and these claims.
    pub fn token(&self, claims: &Value) -> String {
        self.sign(
            &json!({ "alg": self.alg, "kid": self.kid, "typ": "at+jwt" }),
            claims,
        )
    }
}

/// A JWK Set of `keys`' public keys.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

/// A JWKS server on 127.0.0.1 that serves whatever `body` holds and counts requests.
pub struct JwksServer {
    pub url: String,
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub async fn start(body: Value) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("JWKS server");
        let url = format!(
            "http://{}/jwks.json",
            listener.local_addr().expect("JWKS server")
        );
        let body = Arc::new(Mutex::new(body.to_string()));
        let hits = Arc::new(AtomicUsize::new(0));
        let (served, counter) = (body.clone(), hits.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let body = served.lock().map(|b| b.clone()).unwrap_or_default();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        JwksServer {
            url,
            body,
            hits,
            task,
        }
    }

    pub fn serve(&self, body: Value) {
        if let Ok(mut served) = self.body.lock() {
            *served = body.to_string();
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Claims that pass every check of a verifier for `issuer` and `resource`: `alice`, valid for
/// ten minutes, with `scope` and the `auditor` group.
pub fn claims(issuer: &str, resource: &str, scope: &str) -> Value {
    json!({
        "iss": issuer,
        "aud": resource,
        "sub": "alice",
        "exp": now() + 600,
        "iat": now(),
        "scope": scope,
        "groups": ["auditor"],
    })
}

/// `claims` with `changes` applied: each member replaces the claim, or removes it when null.
pub fn changed(mut claims: Value, changes: Value) -> Value {
    if let (Some(claims), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
        for (key, value) in changes {
            if value.is_null() {
                claims.remove(key);
            } else {
                claims.insert(key.clone(), value.clone());
            }
        }
    }
    claims
}
