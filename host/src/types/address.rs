//! Hosts and addresses: how a host written in a URL is read, and which IP addresses a plugin
//! may reach only when the manifest grants them explicitly.
//!
//! Two rules keep a plugin from reaching the machine it runs on or the network behind it
//! (server-side request forgery):
//!
//! - **One spelling per address.** `http://2130706433/`, `http://0x7f.1/` and
//!   `http://0177.0.0.1/` all mean 127.0.0.1 to the C resolver (`inet_aton`) and to URL
//!   parsers. [`Host::parse`] reads a host the way the WHATWG URL standard does and refuses
//!   every IPv4 spelling but the canonical dotted decimal one, so an address cannot hide
//!   behind a form that a pattern or a log reader would not recognise.
//! - **Restricted addresses need an explicit grant.** [`restriction`] names the ranges that are
//!   not the public internet: loopback, private (RFC 1918), shared (CGNAT), link-local, cloud
//!   metadata endpoints, unique local (ULA), multicast, unspecified, reserved and documentation
//!   ranges. IPv6 forms that embed an IPv4 address (`::ffff:127.0.0.1`, `::127.0.0.1`, NAT64
//!   `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the IPv4 address they carry. The caller
//!   checks every address a name resolves to, after resolution, and connects to that address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A host as written in a URL or a pattern, read strictly.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP literal: dotted decimal IPv4, or IPv6 in brackets. IPv4-mapped IPv6
    /// (`[::ffff:1.2.3.4]`) is kept as written; compare with [`Host::canonical_ip`].
    Ip(IpAddr),
    /// A DNS name: lowercase ASCII, no trailing dot.
    Name(String),
}

/// Why a host cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostError {
    /// The host is empty.
    Empty,
    /// A numeric IPv4 spelling other than dotted decimal: `2130706433`, `0x7f.1`, `0177.0.0.1`.
    UnusualIpv4 { written: String, address: Ipv4Addr },
    /// Something that looks like an IPv4 address but is not one (`1.2.3.256`, `1.2.3.4.5`).
    InvalidIpv4(String),
    /// A bracketed IPv6 literal that does not parse, or has a zone (`[fe80::1%eth0]`).
    InvalidIpv6(String),
    /// A name with characters outside `[A-Za-z0-9._-]`, or an empty or over-long label.
    InvalidName {
        written: String,
        reason: &'static str,
    },
    /// A name with non-ASCII characters.
    NotAscii(String),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Empty => f.write_str("the host is empty"),
            HostError::UnusualIpv4 { written, address } => write!(
                f,
                "host `{written}` is an unusual spelling of the IP address {address}; only the dotted decimal form ({address}) is accepted"
            ),
            HostError::InvalidIpv4(written) => {
                write!(f, "host `{written}` is not a valid IPv4 address")
            }
            HostError::InvalidIpv6(written) => {
                write!(f, "host `{written}` is not a valid IPv6 address")
            }
            HostError::InvalidName { written, reason } => {
                write!(f, "host `{written}` is not a valid name: {reason}")
            }
            HostError::NotAscii(written) => write!(
                f,
                "host `{written}` has non-ASCII characters: write it in its ASCII (punycode, `xn--`) form"
            ),
        }
    }
}

impl std::error::Error for HostError {}

impl Host {
    /// Read `text`, the host part of a URL or pattern (`example.com`, `127.0.0.1`, `[::1]`).
    ///
    /// Names are lowercased and lose one trailing dot. A host whose last label is a number (in
    /// decimal, octal `0…` or hex `0x…`) is an IPv4 address by the WHATWG URL rules; it is
    /// accepted only in canonical dotted decimal form.
    pub fn parse(text: &str) -> Result<Host, HostError> {
        if text.is_empty() {
            return Err(HostError::Empty);
        }
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| HostError::InvalidIpv6(text.to_owned()))?;
            return inner
                .parse::<Ipv6Addr>()
                .map(|ip| Host::Ip(IpAddr::V6(ip)))
                .map_err(|_| HostError::InvalidIpv6(text.to_owned()));
        }
        if !text.is_ascii() {
            return Err(HostError::NotAscii(text.to_owned()));
        }
        let lower = text.to_ascii_lowercase();
        if ends_in_a_number(&lower) {
            let address = parse_ipv4(&lower).ok_or_else(|| HostError::InvalidIpv4(text.into()))?;
            if address.to_string() != text {
                return Err(HostError::UnusualIpv4 {
                    written: text.to_owned(),
                    address,
                });
            }
            return Ok(Host::Ip(IpAddr::V4(address)));
        }
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        check_name(name).map_err(|reason| HostError::InvalidName {
            written: text.to_owned(),
            reason,
        })?;
        Ok(Host::Name(name.to_owned()))
    }

    /// The IP address, with IPv4-mapped IPv6 (`::ffff:a.b.c.d`) turned into IPv4.
    pub fn canonical_ip(&self) -> Option<IpAddr> {
        match self {
            Host::Ip(ip) => Some(ip.to_canonical()),
            Host::Name(_) => None,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// The WHATWG "ends in a number" test: the last label (ignoring one trailing dot) is all
/// decimal digits, or `0x` followed by hex digits.
fn ends_in_a_number(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let last = host.rsplit('.').next().unwrap_or(host);
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    last.strip_prefix("0x")
        .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The WHATWG IPv4 parser: one to four parts, each decimal, octal (leading `0`) or hex (`0x`);
/// the last part fills the remaining bytes. `None` when the text is not an address.
fn parse_ipv4(host: &str) -> Option<Ipv4Addr> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let numbers = parts
        .iter()
        .map(|part| parse_ipv4_number(part))
        .collect::<Option<Vec<u64>>>()?;
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|&n| n > 255) {
        return None;
    }
    let last_bits = 8 * (5 - numbers.len() as u32);
    if *last >= 1u64 << last_bits {
        return None;
    }
    let mut value = *last;
    for (index, n) in init.iter().enumerate() {
        value += n << (8 * (3 - index as u32));
    }
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

fn parse_ipv4_number(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x") {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        return Some(0);
    }
    // Anything that large is out of range for every position; cap the work.
    if digits.len() > 32 {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// A DNS name: labels of `[a-z0-9_-]`, 1 to 63 characters, 253 in all.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > 253 {
        return Err("it is longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("only letters, digits, `-`, `_` and `.` are allowed");
        }
    }
    Ok(())
}

/// Why an address is off limits unless granted explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restriction {
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// RFC 6598 shared address space (carrier-grade NAT): `100.64.0.0/10`.
    Shared,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud provider's instance metadata service: `169.254.169.254`, `169.254.170.2`,
    /// `100.100.100.200`, `fd00:ec2::254`.
    CloudMetadata,
    /// IPv6 unique local addresses `fc00::/7` (and the deprecated site-local `fec0::/10`).
    UniqueLocal,
    /// `224.0.0.0/4`, `ff00::/8`, `255.255.255.255`.
    Multicast,
    /// Documentation, benchmarking, protocol assignment and reserved ranges: `192.0.0.0/24`,
    /// `192.0.2.0/24`, `198.18.0.0/15`, `198.51.100.0/24`, `203.0.113.0/24`, `240.0.0.0/4`,
    /// `2001:db8::/32`, `100::/64`, Teredo `2001::/32`, local NAT64 `64:ff9b:1::/48`.
    Reserved,
}

impl Restriction {
    /// A short description for messages: "a loopback address".
    pub fn describe(self) -> &'static str {
        match self {
            Restriction::Unspecified => "an unspecified address",
            Restriction::Loopback => "a loopback address",
            Restriction::Private => "a private (RFC 1918) address",
            Restriction::Shared => "a shared (carrier-grade NAT) address",
            Restriction::LinkLocal => "a link-local address",
            Restriction::CloudMetadata => "a cloud metadata endpoint",
            Restriction::UniqueLocal => "a unique local (private IPv6) address",
            Restriction::Multicast => "a multicast or broadcast address",
            Restriction::Reserved => "a reserved or special-purpose address",
        }
    }
}

impl fmt::Display for Restriction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Why `ip` may not be reached without an explicit grant, or `None` for a public address.
pub fn restriction(ip: IpAddr) -> Option<Restriction> {
    match ip.to_canonical() {
        IpAddr::V4(ip) => restriction_v4(ip),
        IpAddr::V6(ip) => restriction_v6(ip),
    }
}

fn restriction_v4(ip: Ipv4Addr) -> Option<Restriction> {
    let [a, b, c, d] = ip.octets();
    let metadata = [
        Ipv4Addr::new(169, 254, 169, 254),
        Ipv4Addr::new(169, 254, 170, 2),
        Ipv4Addr::new(100, 100, 100, 200),
    ];
    Some(match (a, b, c, d) {
        _ if metadata.contains(&ip) => Restriction::CloudMetadata,
        (0, ..) => Restriction::Unspecified,
        (127, ..) => Restriction::Loopback,
        (10, ..) | (172, 16..=31, ..) | (192, 168, ..) => Restriction::Private,
        (100, 64..=127, ..) => Restriction::Shared,
        (169, 254, ..) => Restriction::LinkLocal,
        (224..=239, ..) | (255, 255, 255, 255) => Restriction::Multicast,
        (192, 0, 0, _) | (192, 0, 2, _) | (198, 18..=19, ..) | (198, 51, 100, _) => {
            Restriction::Reserved
        }
        (203, 0, 113, _) | (240..=255, ..) => Restriction::Reserved,
        _ => return None,
    })
}

fn restriction_v6(ip: Ipv6Addr) -> Option<Restriction> {
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some(Restriction::CloudMetadata);
    }
    if ip.is_unspecified() {
        return Some(Restriction::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Restriction::Loopback);
    }
    // IPv4-compatible `::a.b.c.d` (deprecated) and NAT64 `64:ff9b::a.b.c.d`: judged by the
    // IPv4 address they carry.
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..6] == [0; 6] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return restriction_v4(embedded(s[6], s[7])).or(if s[0] == 0 {
            // Whatever it carries, `::/96` is not routed on the internet.
            Some(Restriction::Reserved)
        } else {
            None
        });
    }
    // 6to4 `2002:AABB:CCDD::/48` carries `AA.BB.CC.DD`.
    if s[0] == 0x2002 {
        return restriction_v4(embedded(s[1], s[2]));
    }
    Some(match s[0] {
        0xfe80..=0xfebf => Restriction::LinkLocal,
        0xfec0..=0xfeff | 0xfc00..=0xfdff => Restriction::UniqueLocal,
        0xff00..=0xffff => Restriction::Multicast,
        0x0064 if s[1] == 0xff9b && s[2] == 1 => Restriction::Reserved,
        0x0100 if s[1..4] == [0, 0, 0] => Restriction::Reserved,
        0x2001 if s[1] == 0x0db8 || s[1] == 0 => Restriction::Reserved,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn names_are_lowercased_and_checked() {
        assert_eq!(
            Host::parse("API.Example.COM."),
            Ok(Host::Name("api.example.com".into()))
        );
        assert_eq!(Host::parse("a_b-c.x"), Ok(Host::Name("a_b-c.x".into())));
        assert!(matches!(
            Host::parse("a..b"),
            Err(HostError::InvalidName { .. })
        ));
        assert!(matches!(
            Host::parse("a b"),
            Err(HostError::InvalidName { .. })
        ));
        assert!(matches!(
            Host::parse("bücher.de"),
            Err(HostError::NotAscii(_))
        ));
        assert_eq!(Host::parse(""), Err(HostError::Empty));
        // A number-looking label that is not last makes a name, as in URL parsers.
        assert_eq!(
            Host::parse("127.0.0.1.nip.io"),
            Ok(Host::Name("127.0.0.1.nip.io".into()))
        );
    }

    #[test]
    fn canonical_ip_literals_are_accepted() {
        assert_eq!(Host::parse("127.0.0.1"), Ok(Host::Ip(ip("127.0.0.1"))));
        assert_eq!(Host::parse("[::1]"), Ok(Host::Ip(ip("::1"))));
        assert_eq!(
            Host::parse("[::ffff:127.0.0.1]").map(|h| h.canonical_ip()),
            Ok(Some(ip("127.0.0.1")))
        );
        assert!(matches!(
            Host::parse("[fe80::1%25eth0]"),
            Err(HostError::InvalidIpv6(_))
        ));
        assert!(matches!(
            Host::parse("[::1"),
            Err(HostError::InvalidIpv6(_))
        ));
    }

    #[test]
    fn unusual_ipv4_spellings_are_refused_naming_the_address() {
        for written in [
            "2130706433",
            "0x7f.1",
            "0x7f000001",
            "0177.0.0.1",
            "017700000001",
            "127.1",
            "127.0.1",
            "127.0.0.1.",
            "0x7F.0.0.1",
            "127.000.000.001",
        ] {
            match Host::parse(written) {
                Err(HostError::UnusualIpv4 { address, .. }) => {
                    assert_eq!(address, Ipv4Addr::LOCALHOST, "{written}")
                }
                other => panic!("{written}: {other:?}"),
            }
        }
        let message = Host::parse("2130706433").unwrap_err().to_string();
        assert!(message.contains("127.0.0.1"), "{message}");
        for invalid in [
            "1.2.3.256",
            "1.2.3.4.5",
            "1.2.3.0x100",
            "99999999999",
            "08.1.1.1",
        ] {
            assert!(
                matches!(Host::parse(invalid), Err(HostError::InvalidIpv4(_))),
                "{invalid}: {:?}",
                Host::parse(invalid)
            );
        }
    }

    #[test]
    fn loopback_private_and_metadata_addresses_are_restricted() {
        let cases = [
            ("127.0.0.1", Restriction::Loopback),
            ("127.255.1.2", Restriction::Loopback),
            ("::1", Restriction::Loopback),
            ("0.0.0.0", Restriction::Unspecified),
            ("::", Restriction::Unspecified),
            ("10.1.2.3", Restriction::Private),
            ("172.16.0.1", Restriction::Private),
            ("172.31.255.255", Restriction::Private),
            ("192.168.1.1", Restriction::Private),
            ("100.64.0.1", Restriction::Shared),
            ("169.254.1.1", Restriction::LinkLocal),
            ("fe80::1", Restriction::LinkLocal),
            ("169.254.169.254", Restriction::CloudMetadata),
            ("fd00:ec2::254", Restriction::CloudMetadata),
            ("100.100.100.200", Restriction::CloudMetadata),
            ("fd12:3456::1", Restriction::UniqueLocal),
            ("fc00::1", Restriction::UniqueLocal),
            ("224.0.0.1", Restriction::Multicast),
            ("255.255.255.255", Restriction::Multicast),
            ("ff02::1", Restriction::Multicast),
            ("192.0.2.1", Restriction::Reserved),
            ("240.0.0.1", Restriction::Reserved),
            ("2001:db8::1", Restriction::Reserved),
        ];
        for (address, expected) in cases {
            assert_eq!(restriction(ip(address)), Some(expected), "{address}");
        }
    }

    #[test]
    fn ipv6_forms_carrying_ipv4_are_judged_by_it() {
        assert_eq!(
            restriction(ip("::ffff:127.0.0.1")),
            Some(Restriction::Loopback)
        );
        assert_eq!(
            restriction(ip("::ffff:169.254.169.254")),
            Some(Restriction::CloudMetadata)
        );
        assert_eq!(restriction(ip("::127.0.0.1")), Some(Restriction::Loopback));
        assert_eq!(restriction(ip("::8.8.8.8")), Some(Restriction::Reserved));
        assert_eq!(
            restriction(ip("64:ff9b::7f00:1")),
            Some(Restriction::Loopback)
        );
        assert_eq!(restriction(ip("64:ff9b::808:808")), None);
        assert_eq!(
            restriction(ip("2002:7f00:1::1")),
            Some(Restriction::Loopback)
        );
        assert_eq!(restriction(ip("2002:a00:1::1")), Some(Restriction::Private));
    }

    #[test]
    fn public_addresses_are_not_restricted() {
        for address in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            assert_eq!(restriction(ip(address)), None, "{address}");
        }
    }
}
