//! `component = "oci://REGISTRY/REPO[:TAG][@sha256:HEX]"`: a component in an OCI registry.
//!
//! Only the reference is read here; `oci/` pulls it. Plain HTTP is for loopback registries
//! only: `oci://127.0.0.1:5000/...` and `oci://localhost:5000/...` are reached over HTTP,
//! every other registry over HTTPS, and `oci+http://` naming any other registry is refused.

use std::fmt;

/// A parsed `oci://` reference. At least one of `tag` and `digest` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciRef {
    /// `host[:port]` as written (lowercase).
    pub registry: String,
    /// The repository path, `a/b/c`.
    pub repository: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// The pinned manifest digest, `sha256:<64 hex>`, if any.
    pub digest: Option<String>,
}

/// The longest reference accepted.
const MAX_LEN: usize = 512;

impl OciRef {
    /// Whether the registry is this machine (127.0.0.1, ::1 or localhost): the only registries
    /// reached over plain HTTP.
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or_default(),
            None => self.registry.split(':').next().unwrap_or_default(),
        };
        host == "localhost"
            || host == "::1"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|a| a.is_loopback())
    }

    /// Parse `oci://...` or `oci+http://...`. `Ok(None)`: `text` is not an OCI reference (a
    /// file path). Errors say what is wrong, for the manifest's diagnostic.
    pub fn parse(text: &str) -> Result<Option<OciRef>, String> {
        let (rest, plain_http) = if let Some(rest) = text.strip_prefix("oci://") {
            (rest, false)
        } else if let Some(rest) = text.strip_prefix("oci+http://") {
            (rest, true)
        } else if text.starts_with("oci:") || text.starts_with("oci+") {
            return Err("an OCI reference starts with `oci://`".into());
        } else {
            return Ok(None);
        };
        if text.len() > MAX_LEN {
            return Err(format!("an OCI reference is at most {MAX_LEN} characters"));
        }
        let shape = "expected oci://REGISTRY/REPOSITORY:TAG, oci://REGISTRY/REPOSITORY@sha256:DIGEST or both";
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| format!("no repository: {shape}"))?;
        check_registry(registry)?;
        let (name, digest) = match path.split_once('@') {
            Some((name, digest)) => (name, Some(check_digest(digest)?)),
            None => (path, None),
        };
        let (repository, tag) = match name.rsplit_once(':') {
            Some((repository, tag)) => (repository, Some(check_tag(tag)?)),
            None => (name, None),
        };
        check_repository(repository)?;
        if tag.is_none() && digest.is_none() {
            return Err(format!("no tag or digest: {shape}"));
        }
        let reference = OciRef {
            registry: registry.to_ascii_lowercase(),
            repository: repository.to_owned(),
            tag,
            digest,
        };
        if plain_http && !reference.is_loopback() {
            return Err(format!(
                "plain HTTP (`oci+http://`) is allowed only for a loopback registry (127.0.0.1, ::1, localhost), not `{registry}`; use `oci://` (HTTPS)"
            ));
        }
        Ok(Some(reference))
    }

    /// The reference without the `oci://` scheme, as registries and `oci-client` read it.
    pub fn name(&self) -> String {
        let mut out = format!("{}/{}", self.registry, self.repository);
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}", self.name())
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    let ok = !registry.is_empty()
        && registry.len() <= 255
        && registry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        && !registry.starts_with(['.', '-', ':']);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{registry}` is not a registry host (HOST or HOST:PORT)"
        ))
    }
}

fn check_repository(repository: &str) -> Result<(), String> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.as_bytes()[0].is_ascii_alphanumeric()
            && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
    };
    if !repository.is_empty() && repository.len() <= 255 && repository.split('/').all(component_ok)
    {
        Ok(())
    } else {
        Err(format!(
            "`{repository}` is not a repository name (lowercase letters, digits, `._-`, separated by `/`)"
        ))
    }
}

fn check_tag(tag: &str) -> Result<String, String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.starts_with('_'))
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(tag.to_owned())
    } else {
        Err(format!(
            "`{tag}` is not a tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})"
        ))
    }
}

fn check_digest(digest: &str) -> Result<String, String> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(digest.to_owned())
        }
        _ => Err(format!(
            "`{digest}` is not a digest: expected sha256: and 64 lowercase hex digits"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::OciRef;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn forms() {
        let r = OciRef::parse("oci://ghcr.io/org/tools:v1")
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("ghcr.io", "org/tools")
        );
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert!(!r.is_loopback());
        let r = OciRef::parse(&format!("oci://127.0.0.1:5000/t/w@{D}"))
            .unwrap()
            .unwrap();
        assert_eq!((r.tag.as_deref(), r.digest.as_deref()), (None, Some(D)));
        assert!(r.is_loopback());
        let r = OciRef::parse(&format!("oci://localhost:5/a:b@{D}"))
            .unwrap()
            .unwrap();
        assert_eq!(r.to_string(), format!("oci://localhost:5/a:b@{D}"));
        assert!(r.is_loopback());
        assert_eq!(OciRef::parse("plugin.wasm").unwrap(), None);
        assert!(
            OciRef::parse("oci+http://127.0.0.1:5000/a:b")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn hostile() {
        for bad in [
            "oci:/x/y:z",
            "oci://ghcr.io",
            "oci://ghcr.io/org/tools",
            "oci://ghcr.io/Org/tools:v1",
            "oci://ghcr.io/org/tools:",
            "oci://ghcr.io/org/tools:-v",
            "oci://ghcr.io/org/tools@sha256:abc",
            "oci://ghcr.io/org/tools@sha512:00",
            "oci://ghcr.io/org//tools:v1",
            "oci://ghcr.io/../tools:v1",
            "oci://gh cr.io/a:b",
            "oci://user@ghcr.io/a:b",
            "oci+http://ghcr.io/a:b",
            "oci+http://127.0.0.1.evil.com/a:b",
        ] {
            assert!(OciRef::parse(bad).is_err(), "{bad} was accepted");
        }
        assert!(OciRef::parse(&format!("oci://r/{}:v", "a".repeat(600))).is_err());
        let err = OciRef::parse("oci+http://registry.example:5000/a:b").unwrap_err();
        assert!(err.contains("loopback"), "{err}");
    }
}
