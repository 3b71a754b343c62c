//! A Kubernetes `NetworkPolicy` (networking.k8s.io/v1) for warden's pods, rendered from a
//! manifest: egress to what the plugins' `allow_hosts` grant, and to the servers warden itself
//! connects to for them (Redis of `[kv]` and `[tasks]`, Postgres of `sql` grants, the OAuth
//! JWKS URL, OCI registries).
//!
//! A NetworkPolicy names addresses and ports, never DNS names, so each kind of host is
//! rendered as close as the API allows, and never wider than warden's own rules:
//!
//! | in the manifest | rendered |
//! |---|---|
//! | an IP address or CIDR block (`tcp://10.0.0.5:5432`, `http://10.0.0.0/8:*`) | an `ipBlock` of exactly that, on its ports |
//! | a name or `*.parent` (`https://api.example.com`) | every *public* address (`0.0.0.0/0` and `::/0` except the restricted ranges warden refuses for names: `types::address`), on its ports; the names are listed in a comment for an FQDN-capable policy (Cilium, Calico) |
//! | `*` (any host), or a name on any port | refused: no policy, FQDN-capable or not, narrows it; with [`Options::allow_any_host`] rendered as every public address on its ports, with a warning comment |
//! | warden's own servers (Redis, Postgres, JWKS, registries) | an `ipBlock` for an IP literal; for a name, any address on its port (in-cluster Services have private addresses, which "public" would exclude) |
//!
//! Schemes become protocols: `http`, `https` and `tcp` are TCP, `udp` is UDP, `*` both. A
//! manifest that grants nothing renders `egress: []`: no egress at all from this policy
//! (policies add up, so DNS and the rest come from the others selecting the same pods).

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::manifest::{JwksSource, KvBackend, Manifest, SqlDatabase, TaskStoreKind};
use crate::types::address::Host;
use crate::types::{Destination, HostPattern, Scheme};

/// How the policy is named and which pods it selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `metadata.name`: a DNS-1123 subdomain.
    pub name: String,
    /// `metadata.namespace`, if given (else the one `kubectl apply` targets).
    pub namespace: Option<String>,
    /// `spec.podSelector.matchLabels`: label keys and values.
    pub selector: Vec<(String, String)>,
    /// Render `*` hosts and names on any port as every public address, instead of refusing.
    pub allow_any_host: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            name: Options::DEFAULT_NAME.to_owned(),
            namespace: None,
            selector: vec![("app.kubernetes.io/name".to_owned(), "warden".to_owned())],
            allow_any_host: false,
        }
    }
}

impl Options {
    /// The default `metadata.name`.
    pub const DEFAULT_NAME: &str = "warden-egress";
}

/// A grant a NetworkPolicy cannot narrow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unbounded {
    /// The plugin whose `allow_hosts` has it.
    pub plugin: String,
    /// The pattern, as written.
    pub pattern: String,
    /// Why it cannot be rendered narrowly.
    pub reason: &'static str,
}

/// Why no policy was rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Some grants would open egress to every public address; listed with the way out.
    #[error("{}", unbounded_message(.0))]
    Unbounded(Vec<Unbounded>),
    /// An option is not valid Kubernetes.
    #[error("invalid {what} {value:?}: {expected}")]
    InvalidOption {
        what: &'static str,
        value: String,
        expected: &'static str,
    },
}

fn unbounded_message(grants: &[Unbounded]) -> String {
    let mut message = String::from(
        "this manifest's network grants cannot be expressed as a NetworkPolicy narrower than \
         \"every public address\":",
    );
    for grant in grants {
        let _ = write!(
            message,
            "\n  plugins.{}.allow_hosts: \"{}\": {}",
            grant.plugin, grant.pattern, grant.reason
        );
    }
    message.push_str(
        "\nname the hosts and ports the plugins need instead, or pass --allow-any-host to \
         render these grants as egress to every public address on their ports",
    );
    message
}

/// The ranges warden never lets a name (or `*`) reach: `ipBlock.except` of the "public"
/// blocks. Each is restricted by `types::address::restriction` (a unit test checks it).
const EXCEPT_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
];
const EXCEPT_V6: &[&str] = &[
    "::/96",
    "::ffff:0:0/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/32",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

/// Where a rule lets pods connect.
#[derive(Clone, Debug, PartialEq, Eq)]
enum To {
    /// Every public address (IPv4 and IPv6).
    Public,
    /// These blocks.
    Blocks(Vec<(IpAddr, u8)>),
    /// Any address (no `to`).
    Anywhere,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Port {
    protocol: &'static str,
    /// `None`: every port of the protocol.
    range: Option<(u16, u16)>,
}

/// One egress rule, with what it is for.
#[derive(Debug)]
struct Rule {
    to: To,
    /// Empty: every port and protocol.
    ports: Vec<Port>,
    why: Vec<String>,
}

/// The policy for `manifest`, as YAML with comments.
pub fn render(manifest: &Manifest, options: &Options) -> Result<String, RenderError> {
    check_options(options)?;
    let mut rules: Vec<Rule> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut refused: Vec<Unbounded> = Vec::new();

    for plugin in &manifest.plugins {
        for pattern in &plugin.allow_hosts {
            let ports = pattern_ports(pattern);
            let why = format!("{}: {}", plugin.name, pattern.as_str());
            let to = match pattern.destination() {
                Destination::Block { network, prefix } => To::Blocks(vec![(network, prefix)]),
                Destination::AnyHost | Destination::Name(_) | Destination::Subdomains(_) => {
                    let reason = match pattern.destination() {
                        Destination::AnyHost => Some(
                            "any host (`*`): no NetworkPolicy, FQDN-capable or not, can narrow it",
                        ),
                        _ if pattern.port_range().is_none() => Some(
                            "a name on any port: the policy would allow every public address on every port",
                        ),
                        _ => None,
                    };
                    match reason {
                        Some(reason) if !options.allow_any_host => {
                            refused.push(Unbounded {
                                plugin: plugin.name.clone(),
                                pattern: pattern.as_str().to_owned(),
                                reason,
                            });
                            continue;
                        }
                        Some(_) => {
                            warnings.push(format!(
                                "{why}: rendered as every public address on {} (--allow-any-host)",
                                describe_ports(&ports)
                            ));
                            // A name on any port can still be narrowed by name.
                            if pattern.destination() != Destination::AnyHost {
                                names.push(format!("{why} ({})", describe_ports(&ports)));
                            }
                        }
                        None => names.push(format!("{why} ({})", describe_ports(&ports))),
                    }
                    To::Public
                }
            };
            add(&mut rules, to, ports, why);
        }
    }
    if !refused.is_empty() {
        return Err(RenderError::Unbounded(refused));
    }

    let mut own: Vec<String> = Vec::new();
    for (source, url, default_port) in own_servers(manifest) {
        let Some((host, port)) = authority(&url, default_port) else {
            own.push(format!(
                "{source}: its URL names no host and port; not rendered"
            ));
            continue;
        };
        let ports = vec![Port {
            protocol: "TCP",
            range: Some((port, port)),
        }];
        let to = match Host::parse(&host) {
            Ok(Host::Ip(ip)) => {
                let ip = ip.to_canonical();
                To::Blocks(vec![(ip, if ip.is_ipv4() { 32 } else { 128 })])
            }
            _ => {
                own.push(format!("{source}: {host} (TCP {port})"));
                To::Anywhere
            }
        };
        add(&mut rules, to, ports, format!("warden: {source}"));
    }

    Ok(yaml(options, &rules, &names, &own, &warnings))
}

/// Add a rule, or fold it into one with the same destination and ports.
fn add(rules: &mut Vec<Rule>, to: To, ports: Vec<Port>, why: String) {
    if let Some(rule) = rules.iter_mut().find(|r| r.to == to && r.ports == ports) {
        if !rule.why.contains(&why) {
            rule.why.push(why);
        }
        return;
    }
    rules.push(Rule {
        to,
        ports,
        why: vec![why],
    });
}

fn pattern_ports(pattern: &HostPattern) -> Vec<Port> {
    let protocols: &[&'static str] = match pattern.scheme() {
        Some(Scheme::Http | Scheme::Https | Scheme::Tcp) => &["TCP"],
        Some(Scheme::Udp) => &["UDP"],
        None => &["TCP", "UDP"],
    };
    protocols
        .iter()
        .map(|&protocol| Port {
            protocol,
            range: pattern.port_range(),
        })
        .collect()
}

fn describe_ports(ports: &[Port]) -> String {
    let parts: Vec<String> = ports
        .iter()
        .map(|port| match port.range {
            None => format!("{} any port", port.protocol),
            Some((low, high)) if low == high => format!("{} {low}", port.protocol),
            Some((low, high)) => format!("{} {low}-{high}", port.protocol),
        })
        .collect();
    parts.join(", ")
}

/// The servers warden connects to itself on the plugins' behalf: (what, URL, default port).
fn own_servers(manifest: &Manifest) -> Vec<(String, String, u16)> {
    let mut servers = Vec::new();
    if let KvBackend::Redis { url, .. } = &manifest.kv.backend {
        servers.push(("[kv] url".to_owned(), url.expose().to_owned(), 6379));
    }
    if let TaskStoreKind::Redis { url, .. } = &manifest.tasks.store {
        servers.push(("[tasks] store".to_owned(), url.expose().to_owned(), 6379));
    }
    if let Some(store) = &manifest.limit_store {
        servers.push((
            "[limits] store".to_owned(),
            store.url.expose().to_owned(),
            6379,
        ));
    }
    if let Some(oauth) = &manifest.auth.oauth
        && let JwksSource::Url(url) = &oauth.jwks
    {
        servers.push(("[auth.oauth] jwks_url".to_owned(), url.clone(), 443));
    }
    for plugin in &manifest.plugins {
        if let Some(sql) = &plugin.sql
            && let SqlDatabase::Postgres { url, .. } = &sql.database
        {
            servers.push((
                format!("plugins.{}.sql", plugin.name),
                url.expose().to_owned(),
                5432,
            ));
        }
        if let Some(oci) = &plugin.oci {
            // Registries are reached over HTTPS (plain HTTP to loopback only, which no policy
            // governs).
            if !oci.is_loopback() {
                servers.push((
                    format!("plugins.{}.component", plugin.name),
                    format!("https://{}", oci.registry),
                    443,
                ));
            }
        }
    }
    servers
}

/// The host and port of `url` (`scheme://[user[:password]@]host[:port][/...]`), the port
/// `default` when it names none. Credentials never leave this function.
fn authority(url: &str, default: u16) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        (format!("[{inside}]"), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (authority.to_owned(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    let port = match port {
        Some(port) => port.parse().ok().filter(|p| *p > 0)?,
        None => default,
    };
    Some((host.to_ascii_lowercase(), port))
}

fn check_options(options: &Options) -> Result<(), RenderError> {
    let invalid = |what, value: &str, expected| {
        Err(RenderError::InvalidOption {
            what,
            value: value.to_owned(),
            expected,
        })
    };
    if !is_dns_subdomain(&options.name) {
        return invalid(
            "name",
            &options.name,
            "lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit, at most 253 characters",
        );
    }
    if let Some(namespace) = &options.namespace
        && !(namespace.len() <= 63 && is_dns_label(namespace))
    {
        return invalid(
            "namespace",
            namespace,
            "lowercase letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters",
        );
    }
    if options.selector.is_empty() {
        return invalid(
            "selector",
            "",
            "at least one KEY=VALUE label: an empty selector would apply to every pod of the namespace",
        );
    }
    for (key, value) in &options.selector {
        let (prefix, name) = key.rsplit_once('/').unwrap_or(("", key));
        let key_ok = (prefix.is_empty() || is_dns_subdomain(prefix)) && is_label_name(name);
        if !key_ok || !(value.is_empty() || is_label_name(value)) {
            return invalid(
                "selector",
                &format!("{key}={value}"),
                "a label KEY=VALUE: [prefix/]name and value of letters, digits, `-`, `_` and `.`, at most 63 characters each",
            );
        }
    }
    Ok(())
}

fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

fn is_dns_subdomain(text: &str) -> bool {
    text.len() <= 253
        && text
            .split('.')
            .all(|label| label.len() <= 63 && is_dns_label(label))
}

fn is_label_name(text: &str) -> bool {
    (1..=63).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && text.as_bytes()[0].is_ascii_alphanumeric()
        && text.as_bytes()[text.len() - 1].is_ascii_alphanumeric()
}

/// A comment line's text: one line, printable.
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn yaml(
    options: &Options,
    rules: &[Rule],
    names: &[String],
    own: &[String],
    warnings: &[String],
) -> String {
    let mut out = Lines::default();
    out.line("# warden's egress, rendered from its manifest by `warden deploy network-policy`. Render it");
    out.line("# again whenever allow_hosts, [kv], [tasks], [limits] store, sql grants, [auth.oauth] or oci:// components change.");
    out.line(
        "# It selects the same pods as the other policies of deploy/kubernetes, which allow DNS.",
    );
    if !names.is_empty() {
        out.line("#");
        out.line("# NetworkPolicy cannot name DNS hosts: these grants are rendered as every public address on");
        out.line("# their ports. An FQDN-capable policy (Cilium's toFQDNs, Calico's domains) can narrow them:");
        for name in names {
            out.line(&format!("#   {}", comment(name)));
        }
    }
    if !own.is_empty() {
        out.line("#");
        out.line("# warden's own connections to these names are allowed to any address on their ports (an");
        out.line("# in-cluster Service has a private address); narrow them with a podSelector if you like:");
        for server in own {
            out.line(&format!("#   {}", comment(server)));
        }
    }
    if !warnings.is_empty() {
        out.line("#");
        out.line("# WARNING: grants no policy can narrow, opened on purpose:");
        for warning in warnings {
            out.line(&format!("#   {}", comment(warning)));
        }
    }
    out.line("apiVersion: networking.k8s.io/v1");
    out.line("kind: NetworkPolicy");
    out.line("metadata:");
    out.line(&format!("  name: \"{}\"", options.name));
    if let Some(namespace) = &options.namespace {
        out.line(&format!("  namespace: \"{namespace}\""));
    }
    out.line("spec:");
    out.line("  podSelector:");
    out.line("    matchLabels:");
    for (key, value) in &options.selector {
        out.line(&format!("      \"{key}\": \"{value}\""));
    }
    out.line("  policyTypes:");
    out.line("    - Egress");
    if rules.is_empty() {
        out.line("  # The manifest grants no network: nothing leaves through this policy.");
        out.line("  egress: []");
        return out.0;
    }
    out.line("  egress:");
    for rule in rules {
        out.line(&format!("    # {}", comment(&rule.why.join(", "))));
        let mut lead = "    - ";
        match &rule.to {
            To::Anywhere => {}
            To::Public => {
                out.line(&format!("{lead}to:"));
                lead = "      ";
                for (cidr, except) in [("0.0.0.0/0", EXCEPT_V4), ("::/0", EXCEPT_V6)] {
                    out.line("        - ipBlock:");
                    out.line(&format!("            cidr: \"{cidr}\""));
                    out.line("            except:");
                    for block in except {
                        out.line(&format!("              - \"{block}\""));
                    }
                }
            }
            To::Blocks(blocks) => {
                out.line(&format!("{lead}to:"));
                lead = "      ";
                for (network, prefix) in blocks {
                    out.line("        - ipBlock:");
                    out.line(&format!("            cidr: \"{network}/{prefix}\""));
                }
            }
        }
        // Every port: a rule without `ports`. Only rules with a `to` have one (a plugin's
        // grant is public or a block; warden's own servers have one port each), so no rule
        // allows everything.
        if rule.ports.iter().any(|port| port.range.is_none()) {
            continue;
        }
        out.line(&format!("{lead}ports:"));
        for port in &rule.ports {
            let Some((low, high)) = port.range else {
                continue;
            };
            out.line(&format!("        - protocol: {}", port.protocol));
            out.line(&format!("          port: {low}"));
            if high > low {
                out.line(&format!("          endPort: {high}"));
            }
        }
    }
    out.0
}

/// The YAML text, one line at a time.
#[derive(Default)]
struct Lines(String);

impl Lines {
    fn line(&mut self, text: &str) {
        self.0.push_str(text);
        self.0.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::address::restriction;

    fn block(text: &str) -> (IpAddr, u8) {
        let (ip, prefix) = text.rsplit_once('/').expect("a CIDR block");
        (
            ip.parse().expect("address"),
            prefix.parse().expect("prefix"),
        )
    }

    fn in_block(ip: IpAddr, (network, prefix): (IpAddr, u8)) -> bool {
        match (ip, network) {
            (IpAddr::V4(ip), IpAddr::V4(net)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(ip), IpAddr::V6(net)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                u128::from(ip) & mask == u128::from(net)
            }
            _ => false,
        }
    }

    #[test]
    fn every_excepted_block_is_restricted_for_names() {
        for text in EXCEPT_V4.iter().chain(EXCEPT_V6) {
            let (network, _) = block(text);
            assert!(
                restriction(network).is_some(),
                "{text} is excepted but warden lets names reach it"
            );
        }
    }

    #[test]
    fn restricted_addresses_fall_in_an_excepted_block() {
        for text in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "::ffff:10.0.0.1",
            "fd00:ec2::254",
            "fe80::1",
            "fd12::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = text.parse().expect("address");
            assert!(restriction(ip).is_some(), "{text} is not restricted");
            let excepted = EXCEPT_V4
                .iter()
                .chain(EXCEPT_V6)
                .any(|b| in_block(ip, block(b)));
            assert!(excepted, "{text} is reachable through the public blocks");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            let ip: IpAddr = public.parse().expect("address");
            let excepted = EXCEPT_V4
                .iter()
                .chain(EXCEPT_V6)
                .any(|b| in_block(ip, block(b)));
            assert!(!excepted, "{public} is public but excepted");
        }
    }

    #[test]
    fn authorities_are_read_without_their_credentials() {
        assert_eq!(
            authority("redis://:s3cret@warden-redis:6380/0", 6379),
            Some(("warden-redis".to_owned(), 6380))
        );
        assert_eq!(
            authority("redis://user:p@ss@10.0.0.7", 6379),
            Some(("10.0.0.7".to_owned(), 6379))
        );
        assert_eq!(
            authority("postgres://u@[fd00::5]:5433/db", 5432),
            Some(("[fd00::5]".to_owned(), 5433))
        );
        assert_eq!(
            authority("https://Auth.Example.com/keys", 443),
            Some(("auth.example.com".to_owned(), 443))
        );
        assert_eq!(authority("redis://", 6379), None);
        assert_eq!(authority("redis://host:0", 6379), None);
    }

    #[test]
    fn options_that_are_not_kubernetes_names_are_refused() {
        let bad = [
            Options {
                name: "Warden".into(),
                ..Options::default()
            },
            Options {
                namespace: Some("a_b".into()),
                ..Options::default()
            },
            Options {
                selector: vec![],
                ..Options::default()
            },
            Options {
                selector: vec![("app".into(), "x y".into())],
                ..Options::default()
            },
            Options {
                selector: vec![("-app".into(), "x".into())],
                ..Options::default()
            },
        ];
        for options in bad {
            assert!(
                matches!(
                    check_options(&options),
                    Err(RenderError::InvalidOption { .. })
                ),
                "{options:?} accepted"
            );
        }
        assert!(check_options(&Options::default()).is_ok());
    }
}
