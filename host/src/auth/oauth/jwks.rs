//! The authorization server's signing keys: a JSON Web Key Set from a file or a URL, cached.
//!
//! The set is read when needed and kept. A token whose `kid` is not in it makes warden read
//! the set again (the identity provider may have rotated its keys), at most once per
//! [`REFETCH_INTERVAL`], so a flood of tokens with made-up key ids cannot hammer it; the set
//! is also read again, on the next token, once it is older than [`MAX_AGE`], so a key the
//! provider withdrew stops being accepted. A failed read keeps the keys already known.
//!
//! Only keys that can verify a signature are kept: RSA, EC P-256 and P-384, and Ed25519
//! public keys whose `use` (if given) is `sig`. Symmetric (`oct`) keys are never used, and a
//! key that cannot be read is skipped with a debug message rather than failing the set.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;

use super::fetch::{self, JwksUrl};

/// Shortest time between two reads of the set caused by unknown key ids.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Age after which the set is read again on the next token.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// Most keys kept from one set.
const MAX_KEYS: usize = 64;

/// One verification key from the set.
pub(super) struct SigningKey {
    /// The key's `kid`, if it has one.
    pub(super) kid: Option<String>,
    /// The key's `alg`, if it names one: then only that algorithm may use it.
    alg: Option<String>,
    /// The key's curve, for EC and OKP keys.
    curve: Option<EllipticCurve>,
    /// The key material.
    pub(super) key: DecodingKey,
}

impl SigningKey {
    /// Whether a signature made with `algorithm` may be checked with this key: the same family,
    /// the curve the algorithm names, and the key's own `alg` if it has one.
    fn accepts(&self, algorithm: Algorithm, name: &str) -> bool {
        if self.key.family() != algorithm.family() {
            return false;
        }
        if self.alg.as_deref().is_some_and(|alg| alg != name) {
            return false;
        }
        match algorithm {
            Algorithm::ES256 => self.curve == Some(EllipticCurve::P256),
            Algorithm::ES384 => self.curve == Some(EllipticCurve::P384),
            Algorithm::EdDSA => self.curve == Some(EllipticCurve::Ed25519),
            _ => true,
        }
    }
}

/// The keys of one read of the set.
pub(super) struct KeySet {
    keys: Vec<Arc<SigningKey>>,
    /// When the set was read; `None` for the empty set before the first read.
    read_at: Option<Instant>,
    /// When the next token should make warden read the set again.
    refresh_at: Instant,
}

/// What looking a token's key up in a [`KeySet`] found.
pub(super) enum Lookup {
    /// The key to check the signature with.
    Found(Arc<SigningKey>),
    /// The key named by `kid` exists but is not for the token's algorithm.
    Mismatch,
    /// The token names no `kid` and several keys would fit.
    Ambiguous,
    /// No such key (yet).
    Unknown,
}

impl KeySet {
    fn empty() -> KeySet {
        KeySet {
            keys: Vec::new(),
            read_at: None,
            refresh_at: Instant::now(),
        }
    }

    /// Reads a JWKS document. Fails if it is not a JWKS or holds no usable key.
    pub(super) fn parse(bytes: &[u8]) -> Result<KeySet, String> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<Value>,
        }
        let document: Document =
            serde_json::from_slice(bytes).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
        let keys: Vec<Arc<SigningKey>> = document
            .keys
            .into_iter()
            .filter_map(|value| match signing_key(value) {
                Ok(key) => key.map(Arc::new),
                Err(reason) => {
                    tracing::debug!(reason, "skipping a JWKS key");
                    None
                }
            })
            .take(MAX_KEYS)
            .collect();
        if keys.is_empty() {
            return Err("no usable signing key (RSA, EC P-256/P-384 or Ed25519)".into());
        }
        let now = Instant::now();
        Ok(KeySet {
            keys,
            read_at: Some(now),
            refresh_at: now + MAX_AGE,
        })
    }

    /// How many keys the set holds.
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key for a token signed with `algorithm` (named `name`) and naming `kid`. Without a
    /// `kid`, the one key that fits, if exactly one does.
    pub(super) fn find(&self, kid: Option<&str>, algorithm: Algorithm, name: &str) -> Lookup {
        match kid {
            Some(kid) => match self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
                Some(key) if key.accepts(algorithm, name) => Lookup::Found(key.clone()),
                Some(_) => Lookup::Mismatch,
                None => Lookup::Unknown,
            },
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.accepts(algorithm, name));
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Lookup::Found(key.clone()),
                    (Some(_), Some(_)) => Lookup::Ambiguous,
                    (None, _) => Lookup::Unknown,
                }
            }
        }
    }
}

/// One JWK as a verification key: `Ok(None)` for a key that is not for signatures.
fn signing_key(value: Value) -> Result<Option<SigningKey>, String> {
    let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    let kid = text("kid");
    if text("use").is_some_and(|usage| usage != "sig") {
        return Ok(None);
    }
    if text("kty").as_deref() == Some("oct") {
        return Ok(None);
    }
    let alg = text("alg");
    let jwk: Jwk =
        serde_json::from_value(value).map_err(|e| format!("key {kid:?} is not a JWK: {e}"))?;
    let curve = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => None,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 | EllipticCurve::P384 => Some(ec.curve.clone()),
            _ => return Err(format!("key {kid:?}: unsupported curve")),
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Some(EllipticCurve::Ed25519)
        }
        _ => return Err(format!("key {kid:?}: unsupported key type")),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("key {kid:?}: {e}"))?;
    if key.family() == AlgorithmFamily::Hmac {
        return Ok(None);
    }
    Ok(Some(SigningKey {
        kid,
        alg,
        curve,
        key,
    }))
}

/// Where the set comes from.
pub(super) enum Source {
    /// `jwks_file`.
    File(PathBuf),
    /// `jwks_url`.
    Url(JwksUrl),
}

impl Source {
    /// The source, for logs.
    fn shown(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Url(url) => url.shown(),
        }
    }

    /// Reads the set once; the error is one line for the log.
    async fn read(&self) -> Result<KeySet, String> {
        let bytes = match self {
            Source::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| format!("cannot read it: {e}"))?
                .into(),
            Source::Url(url) => fetch::get(url).await?,
        };
        KeySet::parse(&bytes)
    }
}

/// When the set may be read again.
#[derive(Default)]
struct Reads {
    /// A read succeeded at least once.
    loaded: bool,
    /// The last read attempted after the first successful one, or any failed read.
    last: Option<Instant>,
}

/// The cached key set and how to refresh it.
pub(super) struct Jwks {
    source: Source,
    current: RwLock<Arc<KeySet>>,
    reads: tokio::sync::Mutex<Reads>,
    refetch_interval: Duration,
}

/// Why no key was found for a token.
pub(super) enum KeyError {
    /// The token's `kid` names a key of another type or algorithm.
    Mismatch,
    /// No `kid`, and several keys would fit.
    Ambiguous,
    /// The key is not in the set, even after reading it again (or reading again was not
    /// allowed yet).
    Unknown,
    /// No set could be read at all.
    Unavailable,
}

impl Jwks {
    /// A set read from `source` when first needed.
    pub(super) fn new(source: Source) -> Jwks {
        Jwks::with_set(source, KeySet::empty())
    }

    /// A set already read (a `jwks_file` is read at start so that a broken file stops warden).
    pub(super) fn with_set(source: Source, set: KeySet) -> Jwks {
        let loaded = set.read_at.is_some();
        Jwks {
            source,
            current: RwLock::new(Arc::new(set)),
            reads: tokio::sync::Mutex::new(Reads { loaded, last: None }),
            refetch_interval: REFETCH_INTERVAL,
        }
    }

    /// The same, with another [`REFETCH_INTERVAL`] (tests).
    #[cfg(test)]
    pub(super) fn with_refetch_interval(mut self, interval: Duration) -> Jwks {
        self.refetch_interval = interval;
        self
    }

    fn current(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(set) => set.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, set: Arc<KeySet>) {
        match self.current.write() {
            Ok(mut slot) => *slot = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
    }

    /// The key for a token signed with `algorithm` (named `name`) and naming `kid`.
    pub(super) async fn key(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
        name: &str,
    ) -> Result<Arc<SigningKey>, KeyError> {
        let mut set = self.current();
        if Instant::now() < set.refresh_at {
            match set.find(kid, algorithm, name) {
                Lookup::Found(key) => return Ok(key),
                Lookup::Mismatch => return Err(KeyError::Mismatch),
                Lookup::Ambiguous => return Err(KeyError::Ambiguous),
                Lookup::Unknown => {}
            }
        }
        set = self.reread(&set).await;
        match set.find(kid, algorithm, name) {
            Lookup::Found(key) => Ok(key),
            Lookup::Mismatch => Err(KeyError::Mismatch),
            Lookup::Ambiguous => Err(KeyError::Ambiguous),
            Lookup::Unknown if set.read_at.is_none() => Err(KeyError::Unavailable),
            Lookup::Unknown => Err(KeyError::Unknown),
        }
    }

    /// Reads the set again if allowed, and returns the newest set. `seen` is the set the
    /// caller looked in: if another task replaced it meanwhile, that one is returned.
    async fn reread(&self, seen: &Arc<KeySet>) -> Arc<KeySet> {
        let mut reads = self.reads.lock().await;
        let current = self.current();
        if !Arc::ptr_eq(&current, seen) {
            return current;
        }
        if reads
            .last
            .is_some_and(|last| last.elapsed() < self.refetch_interval)
        {
            return current;
        }
        // The first successful read does not start the interval: a token signed with a key
        // rotated in right after start is still accepted.
        let counts = reads.loaded;
        match self.source.read().await {
            Ok(set) => {
                tracing::info!(
                    source = self.source.shown(),
                    keys = set.len(),
                    "read the OAuth signing keys"
                );
                if counts {
                    reads.last = Some(Instant::now());
                }
                reads.loaded = true;
                let set = Arc::new(set);
                self.replace(set.clone());
                set
            }
            Err(reason) => {
                tracing::warn!(
                    source = self.source.shown(),
                    reason,
                    "cannot read the OAuth signing keys; keeping the keys known"
                );
                let now = Instant::now();
                reads.last = Some(now);
                // Keep the keys; try again after the interval, not on every token.
                let kept = Arc::new(KeySet {
                    keys: current.keys.clone(),
                    read_at: current.read_at,
                    refresh_at: now + self.refetch_interval,
                });
                self.replace(kept.clone());
                kept
            }
        }
    }
}
