//! `allow_hosts` patterns: `scheme://host[:port]`, in the style of Spin's
//! `allowed_outbound_hosts`.
//!
//! | part | forms |
//! |---|---|
//! | scheme | `http`, `https`, `tcp`, `udp`, or `*` for any of them |
//! | host | a name (`api.example.com`), `*.example.com` (any subdomain, not `example.com` itself), `*` (any host), an IPv4 address (`127.0.0.1`), an IPv6 address in brackets (`[::1]`), or a CIDR block (`10.0.0.0/8`, `[fd00::]/8`) |
//! | port | a number (`8080`), a range (`8000-8999`) or `*`; left out, the scheme's default port (80 for http, 443 for https). `tcp`, `udp` and `*` patterns must give one |
//!
//! A pattern has no path, query, fragment or user info: it grants an origin, not a resource.
//! Parsing is strict and every error says what to write instead; see [`HostPattern::parse`].
//!
//! Only patterns whose host is an IP address or a CIDR block grant restricted addresses
//! (loopback, private, link-local...; see [`super::address`]): `http://*:8080` reaches any
//! public host on port 8080, never 127.0.0.1.

use std::fmt;
use std::net::IpAddr;

use super::address::Host;

/// A protocol a pattern can grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP through `wasi:http`.
    Http,
    /// HTTP over TLS through `wasi:http`.
    Https,
    /// Raw TCP through `wasi:sockets`.
    Tcp,
    /// UDP through `wasi:sockets`.
    Udp,
}

impl Scheme {
    /// Reads a scheme name, case-insensitively.
    pub fn parse(text: &str) -> Option<Scheme> {
        match text.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            "tcp" => Some(Scheme::Tcp),
            "udp" => Some(Scheme::Udp),
            _ => None,
        }
    }

    /// The scheme's name, lowercase.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Tcp => "tcp",
            Scheme::Udp => "udp",
        }
    }

    /// The port a URL of this scheme uses when it names none.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Scheme::Http => Some(80),
            Scheme::Https => Some(443),
            Scheme::Tcp | Scheme::Udp => None,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated `allow_hosts` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern {
    text: String,
    /// `None` is `*`: every scheme.
    scheme: Option<Scheme>,
    host: HostMatch,
    ports: Ports,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostMatch {
    /// `*`.
    Any,
    /// `api.example.com`.
    Name(String),
    /// `*.example.com`, stored as `example.com`.
    Subdomains(String),
    /// An IP literal, canonical (IPv4-mapped IPv6 as IPv4).
    Ip(IpAddr),
    /// A CIDR block, host bits zero.
    Cidr { network: IpAddr, prefix: u8 },
}

/// The host part of a [`HostPattern`], as [`HostPattern::destination`] gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination<'a> {
    /// `*`: any host (public addresses only).
    AnyHost,
    /// One DNS name (public addresses only).
    Name(&'a str),
    /// `*.parent`: any subdomain of `parent` (public addresses only).
    Subdomains(&'a str),
    /// An IP address (a block of one: /32 or /128) or a CIDR block, canonical; the only hosts
    /// that grant restricted addresses.
    Block { network: IpAddr, prefix: u8 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ports {
    Any,
    Range(u16, u16),
}

/// Why a pattern was refused; the message is complete and says what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError(String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

fn error<T>(message: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError(message.into()))
}

impl HostPattern {
    /// Reads a pattern such as `https://api.example.com`, `http://127.0.0.1:8080`,
    /// `https://*.wikipedia.org`, `tcp://db.internal:5432` or `*://10.0.0.0/8:*`.
    pub fn parse(text: &str) -> Result<HostPattern, PatternError> {
        const SHAPE: &str = "expected scheme://host[:port], such as \"https://api.example.com\" or \"tcp://127.0.0.1:5432\"";
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return error(format!("{SHAPE}; remove the spaces"));
        }
        let Some((scheme_text, rest)) = text.split_once("://") else {
            return error(SHAPE);
        };
        let scheme = match scheme_text {
            "*" => None,
            _ => Some(Scheme::parse(scheme_text).ok_or_else(|| {
                PatternError(format!(
                    "unknown scheme `{scheme_text}`: expected http, https, tcp, udp or *"
                ))
            })?),
        };
        for (c, what) in [('@', "user info"), ('?', "a query"), ('#', "a fragment")] {
            if rest.contains(c) {
                return error(format!(
                    "a pattern names scheme, host and port only, not {what}: remove the `{c}` part"
                ));
            }
        }

        // Split off the host: `[v6]`, or up to the first `:` or `/`.
        let (host_text, mut after) = if rest.starts_with('[') {
            match rest.find(']') {
                Some(end) => rest.split_at(end + 1),
                None => return error(format!("`{rest}`: an IPv6 address needs a closing `]`")),
            }
        } else {
            rest.split_at(rest.find([':', '/']).unwrap_or(rest.len()))
        };

        // A CIDR prefix (`/8`) right after the host, else at most one trailing `/`.
        let mut prefix = None;
        if let Some(slashed) = after.strip_prefix('/') {
            let digits = slashed
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(slashed.len());
            if digits > 0 && (slashed.len() == digits || slashed[digits..].starts_with(':')) {
                prefix = Some(&slashed[..digits]);
                after = &slashed[digits..];
            } else if !slashed.is_empty() {
                return error(format!(
                    "a pattern has no path: remove `/{slashed}` (it grants the whole host)"
                ));
            }
        }
        let port_text = match after.strip_prefix(':') {
            Some(port) => match port.split_once('/') {
                Some((_, path)) if !path.is_empty() => {
                    return error(format!(
                        "a pattern has no path: remove `/{path}` (it grants the whole host)"
                    ));
                }
                Some((port, _)) => Some(port),
                None => Some(port),
            },
            None if after.is_empty() || after == "/" => None,
            None => return error(SHAPE),
        };

        let host = host_match(host_text, prefix)?;
        let ports = match port_text {
            Some(text) => ports(text)?,
            None => match scheme.and_then(Scheme::default_port) {
                Some(port) => Ports::Range(port, port),
                None => {
                    let example = match scheme {
                        Some(scheme) => format!("{scheme}://{host_text}:5432"),
                        None => format!("*://{host_text}:443"),
                    };
                    return error(format!(
                        "`{}` patterns need a port, such as \"{example}\" (or `:*` for any port)",
                        scheme.map_or("*", Scheme::as_str)
                    ));
                }
            },
        };
        Ok(HostPattern {
            text: text.to_owned(),
            scheme,
            host,
            ports,
        })
    }

    /// The pattern as written in the manifest.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern grants `scheme`.
    pub fn covers_scheme(&self, scheme: Scheme) -> bool {
        self.scheme.is_none_or(|s| s == scheme)
    }

    /// Whether the pattern grants `port`.
    pub fn covers_port(&self, port: u16) -> bool {
        match self.ports {
            Ports::Any => true,
            Ports::Range(low, high) => (low..=high).contains(&port),
        }
    }

    /// Whether the pattern's host part matches `host`. Names match name patterns only; IP
    /// literals match `*`, IP and CIDR patterns.
    pub fn matches_host(&self, host: &Host) -> bool {
        match (&self.host, host) {
            (HostMatch::Any, _) => true,
            (HostMatch::Name(name), Host::Name(candidate)) => name == candidate,
            (HostMatch::Subdomains(parent), Host::Name(candidate)) => candidate
                .strip_suffix(parent.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            (HostMatch::Ip(_) | HostMatch::Cidr { .. }, Host::Ip(ip)) => self.contains_address(*ip),
            _ => false,
        }
    }

    /// Whether a request for `scheme://host:port` matches this pattern.
    pub fn matches(&self, scheme: Scheme, host: &Host, port: u16) -> bool {
        self.covers_scheme(scheme) && self.covers_port(port) && self.matches_host(host)
    }

    /// Whether the pattern names a DNS name that matches `name` (`*`, `name`, or
    /// `*.parent`), for any of its ports: such a name may be looked up.
    pub fn matches_name(&self, name: &str) -> bool {
        match &self.host {
            HostMatch::Any | HostMatch::Name(_) | HostMatch::Subdomains(_) => {
                self.matches_host(&Host::Name(name.to_owned()))
            }
            HostMatch::Ip(_) | HostMatch::Cidr { .. } => false,
        }
    }

    /// Whether the pattern grants the address `ip` on `scheme` and `port` *explicitly*, by an
    /// IP or CIDR host: the only way a restricted address (loopback, private...) is reachable.
    pub fn grants_address(&self, scheme: Scheme, ip: IpAddr, port: u16) -> bool {
        self.covers_scheme(scheme) && self.covers_port(port) && self.contains_address(ip)
    }

    /// Whether the host part is a name, `*.parent` or `*`: names of this pattern may be looked
    /// up by the plugin (for sockets).
    pub fn has_name_host(&self) -> bool {
        matches!(
            self.host,
            HostMatch::Any | HostMatch::Name(_) | HostMatch::Subdomains(_)
        )
    }

    /// Whether the host part is `*`: any host, public addresses only.
    pub fn is_any_host(&self) -> bool {
        self.host == HostMatch::Any
    }

    /// The scheme the pattern grants, `None` for `*` (every scheme).
    pub fn scheme(&self) -> Option<Scheme> {
        self.scheme
    }

    /// The ports the pattern grants, lowest and highest (one port is a range of one), or
    /// `None` for `*` (every port).
    pub fn port_range(&self) -> Option<(u16, u16)> {
        match self.ports {
            Ports::Any => None,
            Ports::Range(low, high) => Some((low, high)),
        }
    }

    /// Where the pattern lets a plugin connect, for what renders it elsewhere (a Kubernetes
    /// NetworkPolicy: `deploy::network_policy`).
    pub fn destination(&self) -> Destination<'_> {
        match &self.host {
            HostMatch::Any => Destination::AnyHost,
            HostMatch::Name(name) => Destination::Name(name),
            HostMatch::Subdomains(parent) => Destination::Subdomains(parent),
            HostMatch::Ip(ip) => Destination::Block {
                network: *ip,
                prefix: if ip.is_ipv4() { 32 } else { 128 },
            },
            HostMatch::Cidr { network, prefix } => Destination::Block {
                network: *network,
                prefix: *prefix,
            },
        }
    }

    /// Whether the pattern's host is an IP or CIDR block that contains `ip`, whatever the
    /// scheme and port.
    pub fn contains_address(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match self.host {
            HostMatch::Ip(granted) => granted == ip,
            HostMatch::Cidr { network, prefix } => in_block(ip, network, prefix),
            _ => false,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn host_match(text: &str, prefix: Option<&str>) -> Result<HostMatch, PatternError> {
    if text.is_empty() {
        return error("the host is empty: write a name, an IP address, or `*` for any host");
    }
    if text == "*" {
        if prefix.is_some() {
            return error("`*` is any host already: remove the `/` prefix length");
        }
        return Ok(HostMatch::Any);
    }
    if let Some(parent) = text.strip_prefix("*.") {
        if prefix.is_some() || parent.contains('*') {
            return error(format!(
                "`{text}`: a wildcard must be the whole first label, as in *.example.com"
            ));
        }
        return match Host::parse(parent) {
            Ok(Host::Name(parent)) => Ok(HostMatch::Subdomains(parent)),
            Ok(Host::Ip(_)) => error(format!(
                "`{text}`: a wildcard applies to names; for a range of addresses write a CIDR block such as 10.0.0.0/8"
            )),
            Err(e) => error(e.to_string()),
        };
    }
    if text.contains('*') {
        return error(format!(
            "`{text}`: a wildcard must be the whole first label, as in *.example.com, or the whole host, `*`"
        ));
    }
    let host = Host::parse(text).map_err(|e| PatternError(e.to_string()))?;
    match (host, prefix) {
        (Host::Name(name), None) => Ok(HostMatch::Name(name)),
        (Host::Name(_), Some(_)) => error(format!(
            "`{text}/…`: a CIDR block needs an IP address, such as 10.0.0.0/8"
        )),
        (Host::Ip(ip), None) => Ok(HostMatch::Ip(ip.to_canonical())),
        (Host::Ip(ip), Some(prefix_text)) => {
            let ip = ip.to_canonical();
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let prefix = prefix_text
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| {
                    PatternError(format!(
                        "invalid prefix length `/{prefix_text}`: expected 0 to {max}"
                    ))
                })?;
            let network = mask(ip, prefix);
            if network != ip {
                let shown = match network {
                    IpAddr::V6(v6) => format!("[{v6}]"),
                    IpAddr::V4(v4) => v4.to_string(),
                };
                return error(format!(
                    "`{text}/{prefix}` has bits set after the prefix: did you mean {shown}/{prefix}?"
                ));
            }
            Ok(HostMatch::Cidr { network, prefix })
        }
    }
}

fn ports(text: &str) -> Result<Ports, PatternError> {
    if text == "*" {
        return Ok(Ports::Any);
    }
    let port = |part: &str| {
        part.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
            PatternError(format!(
                "invalid port `{text}`: expected a port from 1 to 65535, a range such as 8000-8999, or *"
            ))
        })
    };
    match text.split_once('-') {
        Some((low, high)) => {
            let (low, high) = (port(low)?, port(high)?);
            if low > high {
                return error(format!(
                    "invalid port range `{text}`: the first port must not be above the second"
                ));
            }
            Ok(Ports::Range(low, high))
        }
        None => port(text).map(|p| Ports::Range(p, p)),
    }
}

/// `ip` with every bit after the first `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & mask).into())
        }
    }
}

fn in_block(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    ip.is_ipv4() == network.is_ipv4() && mask(ip, prefix) == network
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> HostPattern {
        HostPattern::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn refused(text: &str) -> String {
        match HostPattern::parse(text) {
            Ok(p) => panic!("{text} accepted as {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn host(text: &str) -> Host {
        Host::parse(text).expect("test host")
    }

    #[test]
    fn exact_host_grants_the_default_port_of_its_scheme_only() {
        let p = pattern("https://api.example.com");
        assert!(p.matches(Scheme::Https, &host("api.example.com"), 443));
        assert!(p.matches(Scheme::Https, &host("API.example.com."), 443));
        assert!(!p.matches(Scheme::Https, &host("api.example.com"), 8443));
        assert!(!p.matches(Scheme::Http, &host("api.example.com"), 443));
        assert!(!p.matches(Scheme::Http, &host("api.example.com"), 80));
        assert!(!p.matches(Scheme::Https, &host("example.com"), 443));
        assert!(!p.matches(Scheme::Https, &host("evil-api.example.com"), 443));
        assert!(!p.matches(Scheme::Https, &host("api.example.com.evil.org"), 443));
        let p = pattern("http://example.com/");
        assert!(p.matches(Scheme::Http, &host("example.com"), 80));
        assert_eq!(p.as_str(), "http://example.com/");
    }

    #[test]
    fn explicit_ports_ranges_and_any_port() {
        let p = pattern("http://127.0.0.1:8080");
        assert!(p.matches(Scheme::Http, &host("127.0.0.1"), 8080));
        assert!(!p.matches(Scheme::Http, &host("127.0.0.1"), 8081));
        assert!(!p.matches(Scheme::Http, &host("127.0.0.1"), 80));
        let p = pattern("https://example.com:8000-8999");
        assert!(p.matches(Scheme::Https, &host("example.com"), 8000));
        assert!(p.matches(Scheme::Https, &host("example.com"), 8999));
        assert!(!p.matches(Scheme::Https, &host("example.com"), 9000));
        let p = pattern("tcp://db.internal:*");
        assert!(p.matches(Scheme::Tcp, &host("db.internal"), 1));
        assert!(!p.matches(Scheme::Udp, &host("db.internal"), 1));
    }

    #[test]
    fn wildcards_match_subdomains_not_the_parent() {
        let p = pattern("https://*.wikipedia.org");
        assert!(p.matches(Scheme::Https, &host("en.wikipedia.org"), 443));
        assert!(p.matches(Scheme::Https, &host("a.b.wikipedia.org"), 443));
        assert!(!p.matches(Scheme::Https, &host("wikipedia.org"), 443));
        assert!(!p.matches(Scheme::Https, &host("evilwikipedia.org"), 443));
        assert!(!p.matches(Scheme::Https, &host("wikipedia.org.evil.com"), 443));
        assert!(p.matches_name("de.wikipedia.org"));
        assert!(!p.matches_name("wikipedia.org"));

        let any = pattern("*://*:*");
        assert!(any.is_any_host());
        assert!(any.matches(Scheme::Udp, &host("anything.example"), 53));
        assert!(any.matches(Scheme::Http, &host("8.8.8.8"), 80));
        // `*` matches a loopback literal, but grants it no explicit access.
        assert!(any.matches(Scheme::Http, &host("127.0.0.1"), 80));
        assert!(!any.grants_address(Scheme::Http, "127.0.0.1".parse().unwrap(), 80));
    }

    #[test]
    fn ip_and_cidr_patterns_grant_addresses_explicitly() {
        let p = pattern("http://127.0.0.1:8080");
        assert!(p.grants_address(Scheme::Http, "127.0.0.1".parse().unwrap(), 8080));
        assert!(p.grants_address(Scheme::Http, "::ffff:127.0.0.1".parse().unwrap(), 8080));
        assert!(!p.grants_address(Scheme::Http, "127.0.0.2".parse().unwrap(), 8080));
        assert!(!p.matches(Scheme::Http, &host("localhost"), 8080));
        assert!(!p.matches_name("localhost"));

        let p = pattern("http://10.0.0.0/8:*");
        assert!(p.grants_address(Scheme::Http, "10.200.3.4".parse().unwrap(), 1234));
        assert!(!p.grants_address(Scheme::Http, "11.0.0.1".parse().unwrap(), 1234));
        assert!(!p.grants_address(Scheme::Https, "10.0.0.1".parse().unwrap(), 1234));
        assert!(p.matches(Scheme::Http, &host("10.1.1.1"), 5));

        let p = pattern("tcp://[fd00::]/8:5432");
        assert!(p.grants_address(Scheme::Tcp, "fdab::1".parse().unwrap(), 5432));
        assert!(!p.grants_address(Scheme::Tcp, "fe80::1".parse().unwrap(), 5432));
        assert!(!p.grants_address(Scheme::Tcp, "10.0.0.1".parse().unwrap(), 5432));

        let p = pattern("udp://[::1]:53");
        assert!(p.grants_address(Scheme::Udp, "::1".parse().unwrap(), 53));
        let p = pattern("*://0.0.0.0/0:443");
        assert!(p.grants_address(Scheme::Https, "192.168.1.1".parse().unwrap(), 443));
    }

    #[test]
    fn malformed_patterns_are_refused_with_a_precise_reason() {
        let cases = [
            ("api.example.com", "expected scheme://host[:port]"),
            ("ftp://example.com", "unknown scheme `ftp`"),
            ("https://", "the host is empty"),
            (
                "https://example.com/v1",
                "a pattern has no path: remove `/v1`",
            ),
            (
                "https://example.com:443/v1",
                "a pattern has no path: remove `/v1`",
            ),
            ("https://user@example.com", "not user info"),
            ("https://example.com?x=1", "not a query"),
            ("https://example.com:0", "invalid port `0`"),
            ("https://example.com:65536", "invalid port `65536`"),
            ("https://example.com:http", "invalid port `http`"),
            ("https://example.com:9-8", "invalid port range `9-8`"),
            ("tcp://db.internal", "`tcp` patterns need a port"),
            ("udp://10.0.0.1", "`udp` patterns need a port"),
            ("*://example.com", "`*` patterns need a port"),
            (
                "https://api.*.com",
                "a wildcard must be the whole first label",
            ),
            (
                "https://*example.com",
                "a wildcard must be the whole first label",
            ),
            (
                "https://*.*.example.com",
                "a wildcard must be the whole first label",
            ),
            ("https://*.10.0.0.1", "a wildcard applies to names"),
            ("http://10.0.0.1/8:*", "did you mean 10.0.0.0/8?"),
            ("http://10.0.0.0/33:*", "invalid prefix length `/33`"),
            ("http://example.com/8:*", "a CIDR block needs an IP address"),
            (
                "http://2130706433",
                "unusual spelling of the IP address 127.0.0.1",
            ),
            ("http://0x7f.1:8080", "unusual spelling"),
            ("http://[::1", "closing `]`"),
            ("http://bücher.de", "punycode"),
            ("https://exa mple.com", "remove the spaces"),
        ];
        for (text, needle) in cases {
            let message = refused(text);
            assert!(message.contains(needle), "{text}: {message}");
        }
    }
}
