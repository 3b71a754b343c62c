//! API keys: long random secrets that the manifest knows only by their SHA-256 digest.
//!
//! A presented key is hashed once and compared with every configured digest in constant time,
//! without stopping at the first match, so the time taken says nothing about which digest (or
//! how much of one) matched. Revoking a key is removing its `[[auth.api_keys]]` entry.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::manifest::ApiKey;
use crate::types::{Principal, Transport};

/// The prefix of keys made by [`generate`]: it makes them recognizable to secret scanners.
pub use crate::types::API_KEY_PREFIX as KEY_PREFIX;

/// Random bytes in a key made by [`generate`].
pub const KEY_BYTES: usize = 32;

/// The configured API keys.
#[derive(Clone, Debug)]
pub struct ApiKeys {
    keys: Vec<ApiKey>,
}

impl ApiKeys {
    /// The keys of `[[auth.api_keys]]`.
    pub fn new(keys: &[ApiKey]) -> Self {
        Self {
            keys: keys.to_vec(),
        }
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The principal whose key is `presented`, connected over HTTP, or `None` when no entry's
    /// digest matches. Takes the same time whichever entry matches, if any.
    pub fn authenticate(&self, presented: &str) -> Option<Principal> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Every digest is compared, fully; the index of the match is selected without a branch.
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, key) in self.keys.iter().enumerate() {
            let matches = key.sha256.ct_eq(&digest);
            index.conditional_assign(&(i as u64), matches);
            found |= matches;
        }
        if bool::from(found) {
            let key = self.keys.get(usize::try_from(index).ok()?)?;
            Some(Principal::new(
                key.principal.as_str(),
                key.roles.clone(),
                Transport::Http,
            ))
        } else {
            None
        }
    }
}

/// A short, non-secret name for a presented key, for audit records of refusals: `key:` and
/// the first 8 hex digits of its SHA-256. Enough to tell keys apart, far too little to find one.
pub fn fingerprint(presented: &str) -> String {
    let digest = Sha256::digest(presented.as_bytes());
    format!("key:{}", hex::encode(&digest[..4]))
}

/// The lowercase hex SHA-256 of `key`: the `sha256` value of its `[[auth.api_keys]]` entry.
pub fn digest_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A fresh key: [`KEY_PREFIX`] and [`KEY_BYTES`] bytes from the operating system's secure
/// random generator, base64url without padding (47 characters in all).
pub fn generate() -> Result<String, ring::error::Unspecified> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; KEY_BYTES];
    ring::rand::SystemRandom::new().fill(&mut bytes)?;
    Ok(format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Location;

    fn entry(principal: &str, key: &str) -> ApiKey {
        ApiKey {
            principal: principal.to_owned(),
            roles: vec!["reader".to_owned()],
            sha256: Sha256::digest(key.as_bytes()).into(),
            location: Location {
                file: "warden.toml".into(),
                line: 1,
                column: 1,
                key: "auth.api_keys[0]".to_owned(),
            },
        }
    }

    #[test]
    fn keys_authenticate_their_principal() {
        let keys = ApiKeys::new(&[entry("ann", "key-a"), entry("bob", "key-b")]);
        let bob = keys.authenticate("key-b").expect("bob's key");
        assert_eq!(&*bob.name, "bob");
        assert_eq!(&*bob.roles, ["reader".to_owned()]);
        assert_eq!(bob.transport, Transport::Http);
        assert_eq!(&*keys.authenticate("key-a").expect("ann's key").name, "ann");
        assert!(keys.authenticate("key-c").is_none());
        assert!(keys.authenticate("").is_none());
        assert!(ApiKeys::new(&[]).authenticate("key-a").is_none());
    }

    #[test]
    fn generated_keys_are_fresh_and_well_formed() {
        let (a, b) = (generate().expect("random"), generate().expect("random"));
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 43);
        assert_eq!(digest_hex(&a).len(), 64);
        let fp = fingerprint(&a);
        assert!(fp.starts_with("key:") && fp.len() == 12, "{fp}");
    }
}
