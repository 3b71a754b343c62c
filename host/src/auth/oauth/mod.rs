//! OAuth 2.1 resource server: bearer JWTs issued by an authorization server (`[auth.oauth]`).
//!
//! [`OAuthVerifier::verify`] accepts a token only if, in this order:
//!
//! 1. it is a compact JWS (three base64url parts, at most [`MAX_TOKEN_BYTES`]) whose header
//!    has no `crit` extension and whose `alg` is one of `algorithms` (never `none`, never an
//!    HMAC: the ring provider of `crypto` cannot even compute one);
//! 2. its signing key is in the authorization server's JWKS (`jwks`: chosen by `kid`, of the
//!    algorithm's type and curve, and of the key's own `alg` if it names one; a token
//!    without `kid` is accepted only when exactly one key fits);
//! 3. the signature verifies;
//! 4. `iss` is exactly `issuer`, `aud` contains one of `audience` (RFC 8707: the token was
//!    issued for this server), `exp` is present and, like `nbf` when present, holds with
//!    `leeway`;
//! 5. `principal_claim` (default `sub`) is a non-empty string;
//! 6. the scopes (`scope`, a space-separated string, or `scp`) include all
//!    `required_scopes`; otherwise the refusal is 403 `insufficient_scope`.
//!
//! Roles are the `scope_roles` of each scope plus the `roles_claim` list. The token itself is
//! never logged or kept: logs name the verdict, the key id and the subject only.
//!
//! - `crypto`: jsonwebtoken's signature checks, done with ring.
//! - [`jwks`]: the key set, from a file or an URL, cached and refreshed on unknown key ids.
//! - `fetch`: the HTTPS GET of a `jwks_url`.
//! - `claims`: scopes and roles from the claims.
//! - `metadata`: the RFC 9728 document.

mod claims;
mod crypto;
mod fetch;
pub mod jwks;
mod metadata;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use base64::Engine;
use http::StatusCode;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::manifest::{JwksSource, OAuth};
use jwks::{Jwks, KeyError, KeySet, Source};

/// Longest bearer token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Longest principal name accepted from a token, in bytes.
const MAX_PRINCIPAL_BYTES: usize = 256;

/// Verifies bearer JWTs against `[auth.oauth]`. Built once; shared by all requests.
pub struct OAuthVerifier {
    issuer: String,
    /// The accepted algorithms, their names as configured, and the claim checks of each.
    algorithms: Vec<(Algorithm, String, Validation)>,
    principal_claim: String,
    required_scopes: Vec<String>,
    scope_roles: BTreeMap<String, Vec<String>>,
    roles_claim: Option<String>,
    authorization_servers: Vec<String>,
    jwks: Jwks,
}

/// A token that [`OAuthVerifier::verify`] accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The value of the principal claim (`sub` by default).
    pub principal: String,
    /// The roles its scopes and roles claim grant, without duplicates.
    pub roles: Vec<String>,
    /// Its scopes, without duplicates.
    pub scopes: Vec<String>,
}

/// `[auth.oauth]` cannot be used. Displays as one line, without the manifest location (the
/// caller adds the section name).
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// An `algorithms` entry that warden cannot verify.
    #[error("algorithm `{0}` is not supported (use RS*, PS*, ES256, ES384 or EdDSA)")]
    Algorithm(String),
    /// Neither `audience` nor `[http] public_url` gave an audience.
    #[error("no audience: set `audience` or `[http] public_url`")]
    NoAudience,
    /// The `jwks_file` cannot be read.
    #[error("cannot read jwks_file {path}: {source}")]
    ReadJwks {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The `jwks_file` holds no usable key.
    #[error("jwks_file {path}: {reason}")]
    BadJwks {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The `jwks_url` cannot be used.
    #[error("jwks_url {url}: {reason}")]
    BadUrl {
        /// The URL as configured.
        url: String,
        /// Why.
        reason: String,
    },
    /// jsonwebtoken already had another cryptography provider.
    #[error("the JWT signature provider could not be installed")]
    Crypto,
}

/// Why a request's bearer token is refused. [`status`](Self::status) and
/// [`www_authenticate`](Self::www_authenticate) give the HTTP answer (RFC 6750 section 3);
/// `Display` is a short line for logs and audit records, without the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BearerError {
    /// The request has no bearer token: 401 without an error code.
    Missing,
    /// The token is malformed, expired, not yet valid, for another audience or issuer, or
    /// signed with an unknown key or a refused algorithm: 401 `invalid_token`. The text is the
    /// `error_description`: short, fixed, safe to show.
    Invalid(&'static str),
    /// The token is valid but lacks some of these required scopes: 403 `insufficient_scope`.
    InsufficientScope {
        /// Who the token names, for the audit record of the refusal.
        principal: String,
        /// All the required scopes (the `scope` attribute of the challenge).
        required: Vec<String>,
    },
    /// No signing keys could be read: 503, the token was not judged.
    Unavailable,
}

impl BearerError {
    /// The HTTP status to answer with: 401, 403 or 503.
    pub fn status(&self) -> StatusCode {
        match self {
            BearerError::Missing | BearerError::Invalid(_) => StatusCode::UNAUTHORIZED,
            BearerError::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            BearerError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `WWW-Authenticate` challenge, naming the RFC 9728 metadata URL:
    /// `Bearer realm="warden", resource_metadata="URL"`, then `error="invalid_token",
    /// error_description="..."` or `error="insufficient_scope", scope="a b"`.
    pub fn www_authenticate(&self, resource_metadata_url: &str) -> String {
        let mut challenge = format!(
            "Bearer realm=\"{}\", resource_metadata=\"{}\"",
            super::REALM,
            quoted(resource_metadata_url)
        );
        match self {
            BearerError::Missing | BearerError::Unavailable => {}
            BearerError::Invalid(description) => challenge.push_str(&format!(
                ", error=\"invalid_token\", error_description=\"{}\"",
                quoted(description)
            )),
            BearerError::InsufficientScope { required, .. } => challenge.push_str(&format!(
                ", error=\"insufficient_scope\", scope=\"{}\"",
                quoted(&required.join(" "))
            )),
        }
        challenge
    }
}

impl fmt::Display for BearerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BearerError::Missing => f.write_str("no bearer token"),
            BearerError::Invalid(description) => write!(f, "invalid token: {description}"),
            BearerError::InsufficientScope { required, .. } => {
                write!(f, "insufficient scope: needs {}", required.join(" "))
            }
            BearerError::Unavailable => f.write_str("the signing keys cannot be read"),
        }
    }
}

impl std::error::Error for BearerError {}

/// `text` fit for an HTTP quoted-string: without `"`, `\` and control characters.
fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

impl OAuthVerifier {
    /// A verifier for `config`. A `jwks_file` is read now (a missing or unusable file is an
    /// error); a `jwks_url` is checked now and fetched on the first token.
    pub fn new(config: &OAuth) -> Result<Self, OAuthError> {
        if !crypto::install() {
            return Err(OAuthError::Crypto);
        }
        let mut algorithms = Vec::new();
        for name in &config.algorithms {
            let algorithm: Algorithm = name
                .parse()
                .map_err(|_| OAuthError::Algorithm(name.clone()))?;
            if !crypto::supports(algorithm) {
                return Err(OAuthError::Algorithm(name.clone()));
            }
            let mut validation = Validation::new(algorithm);
            validation.leeway = config.leeway.as_secs();
            validation.validate_exp = true;
            validation.validate_nbf = true;
            validation.validate_aud = true;
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            validation.set_issuer(&[&config.issuer]);
            validation.set_audience(&config.audience);
            algorithms.push((algorithm, name.clone(), validation));
        }
        if config.audience.is_empty() {
            return Err(OAuthError::NoAudience);
        }
        let jwks = match &config.jwks {
            JwksSource::File(path) => {
                let bytes = std::fs::read(path).map_err(|source| OAuthError::ReadJwks {
                    path: path.clone(),
                    source,
                })?;
                let set = KeySet::parse(&bytes).map_err(|reason| OAuthError::BadJwks {
                    path: path.clone(),
                    reason,
                })?;
                Jwks::with_set(Source::File(path.clone()), set)
            }
            JwksSource::Url(url) => {
                let parsed = fetch::JwksUrl::parse(url).map_err(|reason| OAuthError::BadUrl {
                    url: url.clone(),
                    reason: reason.to_string(),
                })?;
                Jwks::new(Source::Url(parsed))
            }
        };
        Ok(OAuthVerifier {
            issuer: config.issuer.clone(),
            algorithms,
            principal_claim: config.principal_claim.clone(),
            required_scopes: config.required_scopes.clone(),
            scope_roles: config.scope_roles.clone(),
            roles_claim: config.roles_claim.clone(),
            authorization_servers: config.authorization_servers.clone(),
            jwks,
        })
    }

    /// The same verifier with another JWKS refetch interval (tests).
    #[cfg(test)]
    fn with_refetch_interval(mut self, interval: std::time::Duration) -> Self {
        self.jwks = self.jwks.with_refetch_interval(interval);
        self
    }

    /// Verifies `token` (the credential of `Authorization: Bearer`, without the scheme).
    pub async fn verify(&self, token: &str) -> Result<Verified, BearerError> {
        let mut seen = Seen::default();
        let verdict = self.check(token, &mut seen).await;
        match &verdict {
            // `kid` and `sub` come from the token: debug-formatted, so they are quoted and
            // escaped in the log.
            Ok(verified) => tracing::debug!(
                kid = ?seen.kid,
                principal = ?verified.principal,
                "bearer token accepted"
            ),
            Err(error) => tracing::info!(
                kid = ?seen.kid,
                sub = ?seen.sub,
                reason = %error,
                "bearer token refused"
            ),
        }
        verdict
    }

    /// The RFC 9728 Protected Resource Metadata of `resource`, the MCP endpoint's public URL.
    pub fn metadata(&self, resource: &str) -> Value {
        metadata::document(
            resource,
            &self.authorization_servers,
            &self.required_scopes,
            self.scope_roles.keys().cloned(),
        )
    }

    /// The scopes every request needs.
    pub fn required_scopes(&self) -> &[String] {
        &self.required_scopes
    }

    async fn check(&self, token: &str, seen: &mut Seen) -> Result<Verified, BearerError> {
        if token.is_empty() {
            return Err(BearerError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(BearerError::Invalid("token too long"));
        }
        // 1. The header, read by hand first: `alg: none` and unknown algorithms are refused
        //    with a clear reason, and so is any `crit` extension (RFC 7515 section 4.1.11).
        let (algorithm, name, validation) = self.algorithm(token)?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| BearerError::Invalid("malformed token"))?;
        seen.kid = header.kid.clone();

        // 2. The key.
        let key = self
            .jwks
            .key(header.kid.as_deref(), algorithm, name)
            .await
            .map_err(|error| match error {
                KeyError::Mismatch => BearerError::Invalid("key does not match the algorithm"),
                KeyError::Ambiguous => BearerError::Invalid("token names no key id"),
                KeyError::Unknown => BearerError::Invalid("unknown signing key"),
                KeyError::Unavailable => BearerError::Unavailable,
            })?;

        // 3 and 4. Signature, then the registered claims.
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)
            .map_err(|error| BearerError::Invalid(describe(error.kind())))?
            .claims;
        seen.sub = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        // jsonwebtoken also accepts an array `iss` holding the issuer: be exact.
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(BearerError::Invalid("wrong issuer"));
        }

        // 5. Who.
        let principal = claims::claim(&claims, &self.principal_claim)
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty() && name.len() <= MAX_PRINCIPAL_BYTES)
            .ok_or(BearerError::Invalid("token has no usable principal claim"))?
            .to_owned();

        // 6. What.
        let scopes = claims::scopes(&claims);
        if !self.required_scopes.iter().all(|s| scopes.contains(s)) {
            return Err(BearerError::InsufficientScope {
                principal,
                required: self.required_scopes.clone(),
            });
        }
        let roles_claim = self
            .roles_claim
            .as_deref()
            .and_then(|name| claims::claim(&claims, name));
        let roles = claims::roles(&scopes, &self.scope_roles, roles_claim);
        Ok(Verified {
            principal,
            roles,
            scopes,
        })
    }

    /// The token's `alg`, if it is one of the accepted algorithms, with its configured name
    /// and claim checks.
    fn algorithm(&self, token: &str) -> Result<(Algorithm, &str, &Validation), BearerError> {
        let malformed = BearerError::Invalid("malformed token");
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed);
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| malformed.clone())?;
        let header: Map<String, Value> =
            serde_json::from_slice(&bytes).map_err(|_| malformed.clone())?;
        if header.contains_key("crit") {
            return Err(BearerError::Invalid("unsupported critical header"));
        }
        let alg = header.get("alg").and_then(Value::as_str).ok_or(malformed)?;
        self.algorithms
            .iter()
            .find(|(_, name, _)| name == alg)
            .map(|(algorithm, name, validation)| (*algorithm, name.as_str(), validation))
            .ok_or(BearerError::Invalid("algorithm not accepted"))
    }
}

/// What the log may say about a token: its key id and subject, once known.
#[derive(Default)]
struct Seen {
    kid: Option<String>,
    sub: Option<String>,
}

/// The `error_description` for a jsonwebtoken refusal.
fn describe(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "token expired",
        ErrorKind::ImmatureSignature => "token not yet valid",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "token not issued for this resource",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAlgorithm => "algorithm not accepted",
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => "token has no exp claim",
            "iss" => "token has no iss claim",
            "aud" => "token has no aud claim",
            _ => "token lacks a required claim",
        },
        ErrorKind::InvalidClaimFormat(_) => "malformed claim",
        _ => "malformed token",
    }
}
