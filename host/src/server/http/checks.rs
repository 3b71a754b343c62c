//! DNS-rebinding defense: the `Host` and `Origin` headers of a request against `[http]`'s
//! allowlists.
//!
//! A web page on another site can make a browser send requests to a server on the user's
//! machine by pointing a name it controls at 127.0.0.1 (DNS rebinding). Such requests carry
//! the attacker's name in `Host`, and a browser always sends `Origin` on cross-origin POSTs,
//! so checking both stops them.

use http::HeaderMap;

/// Why a request's headers were refused; the message is safe to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderRefusal {
    /// No `Host` header (and no authority in the request line).
    MissingHost,
    /// More than one `Host` header.
    DuplicateHost,
    /// An absolute-form request target (`POST http://host/mcp`) whose authority is not the
    /// `Host` header's value.
    TargetHost,
    /// `Host` is not in `allowed_hosts`.
    Host,
    /// `Origin` is present, not in `allowed_origins` and not the server itself.
    Origin,
}

impl HeaderRefusal {
    /// A short message for the response body.
    pub fn message(self) -> &'static str {
        match self {
            HeaderRefusal::MissingHost => "the request has no Host header",
            HeaderRefusal::DuplicateHost => "the request has more than one Host header",
            HeaderRefusal::TargetHost => {
                "the host in the request target differs from the Host header"
            }
            HeaderRefusal::Host => "the Host header is not allowed",
            HeaderRefusal::Origin => "the Origin header is not allowed",
        }
    }

    /// The HTTP status it is answered with: 400 for a malformed request, 403 for a host or
    /// origin that is not allowed.
    pub fn status(self) -> http::StatusCode {
        match self {
            HeaderRefusal::MissingHost
            | HeaderRefusal::DuplicateHost
            | HeaderRefusal::TargetHost => http::StatusCode::BAD_REQUEST,
            HeaderRefusal::Host | HeaderRefusal::Origin => http::StatusCode::FORBIDDEN,
        }
    }
}

/// Checks `Host` against `allowed_hosts` (host names without port, lowercase) and `Origin`,
/// when present, against `allowed_origins` (`scheme://host[:port]`, lowercase) or the
/// request's own `Host`.
///
/// `authority` is the request target's, for an absolute-form target (`POST http://host/mcp`):
/// it must then be the `Host` header's value (RFC 9112 lets the target win; warden refuses the
/// disagreement rather than pick one), and stands for `Host` when there is none. A request with
/// two `Host` headers is refused whatever their values.
pub fn check_headers(
    headers: &HeaderMap,
    authority: Option<&str>,
    allowed_hosts: &[String],
    allowed_origins: &[String],
) -> Result<(), HeaderRefusal> {
    let mut hosts = headers.get_all(http::header::HOST).iter();
    let header = hosts.next();
    if hosts.next().is_some() {
        return Err(HeaderRefusal::DuplicateHost);
    }
    let header = match header {
        // A value that is not visible ASCII names no allowed host.
        Some(value) => Some(value.to_str().map_err(|_| HeaderRefusal::Host)?),
        None => None,
    };
    let host = match (header, authority) {
        (Some(header), Some(authority)) if !header.eq_ignore_ascii_case(authority) => {
            return Err(HeaderRefusal::TargetHost);
        }
        (Some(host), _) | (None, Some(host)) => host.to_ascii_lowercase(),
        (None, None) => return Err(HeaderRefusal::MissingHost),
    };
    let name = host_name(&host);
    if !allowed_hosts.iter().any(|allowed| *allowed == name) {
        return Err(HeaderRefusal::Host);
    }
    let Some(origin) = headers.get(http::header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .map_err(|_| HeaderRefusal::Origin)?
        .to_ascii_lowercase();
    let same_host = origin
        .split_once("://")
        .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && rest == host);
    if same_host || allowed_origins.contains(&origin) {
        Ok(())
    } else {
        Err(HeaderRefusal::Origin)
    }
}

/// The host part of a `Host` value, without its port: `example.com:8080` -> `example.com`,
/// `[::1]:8080` -> `[::1]`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        host.split_once(':').map_or(host, |(name, _)| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pairs: &[(&'static str, &str)]) -> Result<(), HeaderRefusal> {
        check_target(pairs, None)
    }

    fn check_target(
        pairs: &[(&'static str, &str)],
        authority: Option<&str>,
    ) -> Result<(), HeaderRefusal> {
        let hosts = ["localhost", "127.0.0.1", "[::1]"].map(String::from);
        let origins = ["https://app.example.com".to_owned()];
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("header value"));
        }
        check_headers(&map, authority, &hosts, &origins)
    }

    #[test]
    fn one_host_and_a_target_that_agrees_with_it() {
        let host = ("host", "127.0.0.1:8080");
        assert_eq!(
            check(&[host, ("host", "evil.example")]),
            Err(HeaderRefusal::DuplicateHost)
        );
        assert_eq!(
            check(&[host, host]),
            Err(HeaderRefusal::DuplicateHost),
            "even the same value twice"
        );
        assert_eq!(
            check_target(&[host], Some("evil.example")),
            Err(HeaderRefusal::TargetHost)
        );
        assert_eq!(
            check_target(&[("host", "evil.example")], Some("127.0.0.1:8080")),
            Err(HeaderRefusal::TargetHost)
        );
        assert_eq!(check_target(&[host], Some("127.0.0.1:8080")), Ok(()));
        assert_eq!(check_target(&[], Some("localhost")), Ok(()));
        assert_eq!(
            check_target(&[], Some("evil.example")),
            Err(HeaderRefusal::Host)
        );
    }

    #[test]
    fn hosts_match_without_port() {
        assert_eq!(check(&[("host", "127.0.0.1:8080")]), Ok(()));
        assert_eq!(check(&[("host", "LOCALHOST")]), Ok(()));
        assert_eq!(check(&[("host", "[::1]:9")]), Ok(()));
        assert_eq!(
            check(&[("host", "evil.example:8080")]),
            Err(HeaderRefusal::Host)
        );
        assert_eq!(
            check(&[("host", "127.0.0.1.evil")]),
            Err(HeaderRefusal::Host)
        );
        assert_eq!(check(&[]), Err(HeaderRefusal::MissingHost));
    }

    #[test]
    fn origins_must_be_listed_or_the_server_itself() {
        let host = ("host", "127.0.0.1:8080");
        assert_eq!(
            check(&[host, ("origin", "https://app.example.com")]),
            Ok(())
        );
        assert_eq!(check(&[host, ("origin", "http://127.0.0.1:8080")]), Ok(()));
        assert_eq!(
            check(&[host, ("origin", "http://127.0.0.1:9999")]),
            Err(HeaderRefusal::Origin)
        );
        assert_eq!(
            check(&[host, ("origin", "https://evil.example")]),
            Err(HeaderRefusal::Origin)
        );
        assert_eq!(
            check(&[host, ("origin", "null")]),
            Err(HeaderRefusal::Origin)
        );
    }
}
