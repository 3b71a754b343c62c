//! Authentication of HTTP requests: who is calling, established from the credentials a request
//! presents, before anything else looks at it.
//!
//! Two kinds of credentials are accepted, each optional (`[auth]` in the manifest):
//! - API keys ([`api_keys`]): `Authorization: Bearer KEY` or `X-API-Key: KEY`, checked against
//!   the SHA-256 digests of `[[auth.api_keys]]`.
//! - OAuth 2.1 bearer JWTs ([`oauth`]): `Authorization: Bearer JWT`, verified against the
//!   authorization server's keys (`[auth.oauth]`).
//!
//! The result is a [`Principal`] (transport `http`) that the transport hands to the gate, or a
//! [`Refusal`] saying which status and `WWW-Authenticate` challenge to answer with. Credentials
//! never go further than this module: they are not logged, recorded or passed to plugins.

pub mod api_keys;
pub mod oauth;

use std::sync::Arc;

use http::{HeaderMap, StatusCode};

use crate::manifest::Auth;
use crate::types::Principal;

pub use api_keys::ApiKeys;
pub use oauth::{BearerError, OAuthError, OAuthVerifier, Verified};

/// The principal named in audit records of requests refused without a recognizable credential.
pub const ANONYMOUS: &str = "anonymous";

/// The `realm` of every challenge.
pub const REALM: &str = "warden";

/// Checks the credentials of requests against `[auth]`.
pub struct Authenticator {
    keys: ApiKeys,
    oauth: Option<Arc<OAuthVerifier>>,
}

/// The authenticator in force, replaced whole when a reload changes `[auth]`: keys can be
/// added and revoked without a restart. A request takes the one in force when it arrives.
pub struct LiveAuth {
    current: arc_swap::ArcSwapOption<Authenticator>,
}

impl LiveAuth {
    /// Check requests with `auth` (`None`: do not authenticate) until it is replaced.
    pub fn new(auth: Option<Authenticator>) -> Self {
        Self {
            current: arc_swap::ArcSwapOption::new(auth.map(Arc::new)),
        }
    }

    /// The authenticator in force, if any.
    pub fn current(&self) -> Option<Arc<Authenticator>> {
        self.current.load_full()
    }

    /// Check every request from now on with `auth`.
    pub fn replace(&self, auth: Option<Authenticator>) {
        self.current.store(auth.map(Arc::new));
    }
}

/// A request that may not proceed.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// 401 (no or bad credentials) or 403 (valid, but not enough scope).
    pub status: StatusCode,
    /// The `WWW-Authenticate` challenge to send.
    pub challenge: String,
    /// Who the audit record names: [`ANONYMOUS`], or the presented API key's
    /// [fingerprint](api_keys::fingerprint).
    pub principal: String,
    /// What was wrong, for the audit record and the log (never contains the credential).
    pub reason: String,
}

/// `[auth]` could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The OAuth verifier could not be built (for example, its JWKS file is unusable).
    #[error("[auth.oauth]: {0}")]
    OAuth(#[from] OAuthError),
}

impl Authenticator {
    /// An authenticator for `auth`, or `None` when `[auth]` configures no credential (then
    /// requests are not authenticated at all).
    pub fn new(auth: &Auth) -> Result<Option<Self>, AuthError> {
        if !auth.is_configured() {
            return Ok(None);
        }
        let oauth = match &auth.oauth {
            Some(config) => Some(Arc::new(OAuthVerifier::new(config)?)),
            None => None,
        };
        Ok(Some(Self {
            keys: ApiKeys::new(&auth.api_keys),
            oauth,
        }))
    }

    /// The OAuth verifier, when `[auth.oauth]` is configured.
    pub fn oauth(&self) -> Option<&OAuthVerifier> {
        self.oauth.as_deref()
    }

    /// The principal that `headers` authenticate, or why they do not. `resource_metadata` is
    /// the URL of this server's RFC 9728 metadata, named in challenges when OAuth is on.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        resource_metadata: &str,
    ) -> Result<Principal, Refusal> {
        let api_key = headers
            .get("x-api-key")
            .map(|value| value.to_str().unwrap_or_default());
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .map(|value| bearer_token(value.to_str().unwrap_or_default()));
        let presented = match (api_key, bearer) {
            (Some(key), _) => {
                return self.api_key(key, resource_metadata);
            }
            (None, Some(Some(token))) => token,
            (None, Some(None)) => {
                return Err(self.refusal(
                    ANONYMOUS.to_owned(),
                    "the Authorization header is not `Bearer <token>`",
                    resource_metadata,
                    Some("invalid_request"),
                ));
            }
            (None, None) => {
                return Err(self.refusal(
                    ANONYMOUS.to_owned(),
                    "no credentials",
                    resource_metadata,
                    None,
                ));
            }
        };
        if let Some(principal) = self.keys.authenticate(presented) {
            return Ok(principal);
        }
        match &self.oauth {
            // A JWT has three dot-separated parts; anything else can only be a (wrong) key.
            Some(oauth) if presented.split('.').count() == 3 => {
                match oauth.verify(presented).await {
                    Ok(verified) => Ok(Principal::new(
                        verified.principal,
                        verified.roles,
                        crate::types::Transport::Http,
                    )),
                    Err(error) => Err(Refusal {
                        status: error.status(),
                        challenge: error.www_authenticate(resource_metadata),
                        // A valid token short of scope names its subject; others name nobody.
                        principal: match &error {
                            BearerError::InsufficientScope { principal, .. } => principal.clone(),
                            _ => ANONYMOUS.to_owned(),
                        },
                        reason: format!("bearer token refused: {error}"),
                    }),
                }
            }
            _ => self.api_key(presented, resource_metadata),
        }
    }

    /// The principal of API key `key`, or a refusal naming its fingerprint.
    fn api_key(&self, key: &str, resource_metadata: &str) -> Result<Principal, Refusal> {
        self.keys.authenticate(key).ok_or_else(|| {
            self.refusal(
                api_keys::fingerprint(key),
                "unknown or revoked API key",
                resource_metadata,
                Some("invalid_token"),
            )
        })
    }

    /// A 401 refusal with the challenge for `error` (an RFC 6750 error code; `None` when no
    /// credentials were presented).
    fn refusal(
        &self,
        principal: String,
        reason: &str,
        resource_metadata: &str,
        error: Option<&str>,
    ) -> Refusal {
        let mut challenge = format!("Bearer realm=\"{REALM}\"");
        if self.oauth.is_some() {
            challenge.push_str(&format!(", resource_metadata=\"{resource_metadata}\""));
        }
        if let Some(error) = error {
            challenge.push_str(&format!(", error=\"{error}\""));
        }
        Refusal {
            status: StatusCode::UNAUTHORIZED,
            challenge,
            principal,
            reason: reason.to_owned(),
        }
    }
}

/// The token of an `Authorization: Bearer TOKEN` value (scheme case-insensitive), or `None`
/// when the value has another shape.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_parsed() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer a b"), None);
    }
}
