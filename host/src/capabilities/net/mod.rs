//! Network: a plugin reaches the hosts its `allow_hosts` patterns grant, and nothing else.
//!
//! - [`HostPattern`]: the `scheme://host[:port]` patterns and how they match.
//! - [`Host`] and [`restriction`]: how hosts are read (one spelling per IPv4 address) and which addresses are
//!   restricted (loopback, private, link-local, metadata...) unless granted explicitly.
//! - `http`: the `wasi:http` hook. warden sends every outgoing request itself: it checks the
//!   URL against the patterns, resolves the name once, checks every address it resolved to,
//!   connects to a checked address, and enforces the timeouts, the response size and the
//!   number of requests per call. `wasi:http` never follows redirects; a plugin that follows
//!   one makes a new request, checked like the first.
//! - `sockets`: `wasi:sockets`, through the same patterns (`tcp://`, `udp://`) and address
//!   rules; a plugin may look up only the names its socket patterns grant.
//!
//! [`NetPolicy`] holds a plugin's patterns and limits, built once when the plugin is loaded;
//! [`CallNet`] is one call's share of it: the hooks the call's store uses and what the call
//! has used so far. A plugin with no `allow_hosts` loads even if it imports `wasi:http` or
//! `wasi:sockets`; every request it makes is refused with an error naming the URL and why.

mod http;
mod sockets;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wasmtime::component::Linker;
use wasmtime_wasi_http::WasiHttpHooks;

pub use crate::types::address::{Host, HostError, Restriction, restriction};
pub use crate::types::host_pattern::{HostPattern, PatternError, Scheme};
pub use sockets::{LookupGuard, LookupView, add_lookup_guard_to_linker};

use super::secrets::SecretScrubber;
use super::{
    CallBuilder, CallView, Capability, CapabilityError, Effects, GrantWarning, Imports, Link, Slots,
};
use crate::manifest::{self, ByteSize, NetLimits, Plugin, format_duration};

/// A plugin's network grants and limits, shared by all its calls.
#[derive(Debug)]
pub struct NetPolicy {
    plugin: Arc<str>,
    patterns: Vec<HostPattern>,
    limits: NetLimits,
    scrubber: SecretScrubber,
}

/// A request or connection warden refused, and why. The reason is complete and safe to show
/// to the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal(pub String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an admitted request goes: its URL passed the patterns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// The host as read by [`Host::parse`].
    pub host: Host,
    /// The port, explicit or the scheme's default.
    pub port: u16,
}

impl NetPolicy {
    /// The policy of `plugin`; `scrubber` hides its secrets in what is logged.
    pub fn new(plugin: &manifest::Plugin, scrubber: SecretScrubber) -> NetPolicy {
        NetPolicy {
            plugin: Arc::from(plugin.name.as_str()),
            patterns: plugin.allow_hosts.clone(),
            limits: plugin.net,
            scrubber,
        }
    }

    /// The limits on outbound use.
    pub fn limits(&self) -> &NetLimits {
        &self.limits
    }

    /// Whether any pattern grants `scheme`.
    pub fn grants(&self, scheme: Scheme) -> bool {
        self.patterns.iter().any(|p| p.covers_scheme(scheme))
    }

    /// Check a URL's scheme, host and port (none: the scheme's default) against the
    /// patterns, before any name is resolved.
    pub fn admit(&self, scheme: &str, host: &str, port: Option<u16>) -> Result<Target, Refusal> {
        if self.patterns.is_empty() {
            return Err(Refusal(
                "the plugin is granted no outbound hosts (its manifest entry has no allow_hosts)"
                    .into(),
            ));
        }
        let scheme = match Scheme::parse(scheme) {
            Some(scheme @ (Scheme::Http | Scheme::Https)) => scheme,
            _ => {
                return Err(Refusal(format!(
                    "scheme `{scheme}` is not supported: plugins make http and https requests"
                )));
            }
        };
        let host = Host::parse(host).map_err(|e| Refusal(e.to_string()))?;
        let port = port.or(scheme.default_port()).unwrap_or(80);
        if self.patterns.iter().any(|p| p.matches(scheme, &host, port)) {
            return Ok(Target { scheme, host, port });
        }
        Err(Refusal(self.explain_mismatch(scheme, &host, port)))
    }

    fn explain_mismatch(&self, scheme: Scheme, host: &Host, port: u16) -> String {
        let same_host: Vec<&HostPattern> = self
            .patterns
            .iter()
            .filter(|p| p.matches_host(host))
            .collect();
        if same_host.is_empty() {
            return format!("host {host} is not in the plugin's allow_hosts");
        }
        if !same_host.iter().any(|p| p.covers_scheme(scheme)) {
            if scheme == Scheme::Http && same_host.iter().any(|p| p.covers_scheme(Scheme::Https)) {
                return format!("plain http is refused: {host} is granted for https only");
            }
            return format!("scheme {scheme} is not granted for {host}");
        }
        format!("port {port} is not granted for {host}")
    }

    /// The addresses, among those `target`'s host resolved to (or its IP literal), that the
    /// request may connect to: public addresses, and restricted ones that a pattern grants
    /// explicitly. Refuses when none is left.
    pub fn permitted_addresses(
        &self,
        target: &Target,
        resolved: &[IpAddr],
    ) -> Result<Vec<IpAddr>, Refusal> {
        let mut refused = Vec::new();
        let mut permitted = Vec::new();
        for &ip in resolved {
            let ip = ip.to_canonical();
            match restriction(ip) {
                Some(why)
                    if !self
                        .patterns
                        .iter()
                        .any(|p| p.grants_address(target.scheme, ip, target.port)) =>
                {
                    refused.push(format!("{ip} ({why})"));
                }
                _ if !permitted.contains(&ip) => permitted.push(ip),
                _ => {}
            }
        }
        if !permitted.is_empty() {
            return Ok(permitted);
        }
        Err(Refusal(match &target.host {
            _ if refused.is_empty() => format!("{} resolved to no address", target.host),
            Host::Ip(ip) => format!(
                "{ip} is {}, which allow_hosts does not grant explicitly",
                restriction(*ip).map_or("restricted", Restriction::describe)
            ),
            Host::Name(name) => format!(
                "{name} resolves to {}, which allow_hosts does not grant explicitly",
                refused.join(", ")
            ),
        }))
    }

    /// Whether the plugin may look up `name` for a socket: a `tcp`, `udp` or `*` pattern
    /// grants that name.
    pub fn may_look_up(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| {
            (p.covers_scheme(Scheme::Tcp) || p.covers_scheme(Scheme::Udp)) && p.matches_name(name)
        })
    }

    /// Whether any socket pattern names hosts by name, so that lookups may be needed.
    fn grants_socket_names(&self) -> bool {
        self.patterns.iter().any(|p| {
            (p.covers_scheme(Scheme::Tcp) || p.covers_scheme(Scheme::Udp)) && p.has_name_host()
        })
    }

    /// Check a socket address for `scheme` (`tcp` or `udp`). `names` are the granted names
    /// the call looked up that resolved to this address.
    pub fn check_socket(
        &self,
        scheme: Scheme,
        addr: SocketAddr,
        names: &[String],
    ) -> Result<(), Refusal> {
        let ip = addr.ip().to_canonical();
        let port = addr.port();
        let restricted = restriction(ip);
        let granted = self.patterns.iter().any(|p| {
            if p.grants_address(scheme, ip, port) {
                return true;
            }
            if restricted.is_some() || !p.covers_scheme(scheme) || !p.covers_port(port) {
                return false;
            }
            p.is_any_host() || names.iter().any(|name| p.matches_name(name))
        });
        if granted {
            return Ok(());
        }
        let shown = SocketAddr::new(ip, port);
        Err(Refusal(match restricted {
            _ if !self.grants(scheme) => format!("the plugin is granted no {scheme} hosts"),
            Some(why) => format!(
                "{scheme} to {shown} is refused: {ip} is {why}, which allow_hosts does not grant explicitly"
            ),
            None => format!("{scheme} to {shown} is not in the plugin's allow_hosts"),
        }))
    }

    /// `text` with the plugin's secret values replaced, for logs and messages.
    pub fn scrub<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        self.scrubber.scrub(text)
    }

    /// The plugin's name, for logs.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }
}

/// What one call has used of its plugin's network grants, shared by its HTTP hook, its socket
/// check and its name lookups.
#[derive(Default)]
struct Usage {
    /// HTTP requests sent plus TCP connections opened.
    requests: AtomicU32,
    /// UDP datagrams sent (and UDP sockets connected to a remote address).
    datagrams: AtomicU32,
    /// Addresses that lookups of granted names returned, with those names.
    resolved: Mutex<HashMap<IpAddr, Vec<String>>>,
}

impl Usage {
    /// Count one request or connection; refuses past `max_requests`.
    fn count(&self, limits: &NetLimits) -> Result<(), Refusal> {
        let used = self.requests.fetch_add(1, Ordering::Relaxed);
        if used >= limits.max_requests {
            return Err(Refusal(format!(
                "the call already made {used} requests or connections, its limit (max_requests = {})",
                limits.max_requests
            )));
        }
        Ok(())
    }

    /// Count one UDP datagram; refuses past `max_datagrams`.
    fn count_datagram(&self, limits: &NetLimits) -> Result<(), Refusal> {
        let counted = self
            .datagrams
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |sent| {
                (sent < limits.max_datagrams).then_some(sent + 1)
            });
        match counted {
            Ok(_) => Ok(()),
            Err(sent) => Err(Refusal(format!(
                "the call already sent {sent} UDP datagrams, its limit (max_datagrams = {})",
                limits.max_datagrams
            ))),
        }
    }

    fn record(&self, ip: IpAddr, name: &str) {
        if let Ok(mut resolved) = self.resolved.lock() {
            let names = resolved.entry(ip.to_canonical()).or_default();
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }

    fn names_of(&self, ip: IpAddr) -> Vec<String> {
        self.resolved
            .lock()
            .ok()
            .and_then(|resolved| resolved.get(&ip.to_canonical()).cloned())
            .unwrap_or_default()
    }
}

/// One call's network state: the `wasi:http` hooks and the name lookup guard.
///
/// The default grants nothing: every request, connection and lookup is refused.
pub struct CallNet {
    http: http::OutboundHttp,
    lookup: LookupGuard,
}

impl CallNet {
    /// The hooks `wasi:http` calls for this call's outgoing requests.
    pub fn http_hooks(&mut self) -> &mut dyn WasiHttpHooks {
        &mut self.http
    }

    /// The guard of this call's name lookups.
    pub fn lookup(&mut self) -> &mut LookupGuard {
        &mut self.lookup
    }
}

impl CallNet {
    fn new(policy: &Arc<NetPolicy>, usage: Arc<Usage>) -> CallNet {
        CallNet {
            http: http::OutboundHttp::new(policy.clone(), usage.clone()),
            lookup: LookupGuard::new(policy.clone(), usage),
        }
    }
}

impl Default for CallNet {
    fn default() -> CallNet {
        let policy = Arc::new(NetPolicy {
            plugin: Arc::from(""),
            patterns: Vec::new(),
            limits: NetLimits::default(),
            scrubber: SecretScrubber::default(),
        });
        CallNet::new(&policy, Arc::default())
    }
}

/// The `wasi:http` hooks of the call whose capability states are `slots`.
pub fn http_hooks(slots: &mut Slots) -> &mut dyn WasiHttpHooks {
    slots.get_or_insert_with(CallNet::default).http_hooks()
}

/// The interfaces through which a component makes HTTP requests.
const HTTP: &[&str] = &["wasi:http/"];
/// The interfaces through which a component opens sockets.
const SOCKETS: &[&str] = &["wasi:sockets/"];

/// `allow_hosts = [...]` and `net = {...}`: outbound HTTP requests and socket connections to
/// the granted hosts only, with the address rules that stop server-side request forgery.
pub struct Net;

impl Net {
    /// Whether a component importing `imports` can use `pattern` at all.
    fn can_use(pattern: &HostPattern, imports: Imports<'_>) -> bool {
        let covers = |schemes: [Scheme; 2]| schemes.iter().any(|s| pattern.covers_scheme(*s));
        (imports.any(HTTP) && covers([Scheme::Http, Scheme::Https]))
            || (imports.any(SOCKETS) && covers([Scheme::Tcp, Scheme::Udp]))
    }
}

impl Capability for Net {
    fn name(&self) -> &'static str {
        "allow_hosts"
    }

    fn offers(&self, imports: Imports<'_>) -> Vec<&'static str> {
        let mut offers = Vec::new();
        if imports.any(HTTP) {
            offers.push("allow_hosts: http:// and https:// hosts it may request");
        }
        if imports.any(SOCKETS) {
            offers.push("allow_hosts: tcp:// and udp:// hosts it may connect to");
        }
        offers
    }

    fn summary(&self, plugin: &Plugin) -> Vec<String> {
        let mut lines: Vec<String> = plugin
            .allow_hosts
            .iter()
            .map(|pattern| format!("grant host  {pattern}"))
            .collect();
        if !lines.is_empty() {
            let net = &plugin.net;
            lines.push(format!(
                "net         connect {}, request {}, response {}, max {} requests and {} datagrams per call",
                format_duration(net.connect_timeout),
                format_duration(net.request_timeout),
                ByteSize(net.max_response),
                net.max_requests,
                net.max_datagrams
            ));
        }
        lines
    }

    fn report(&self, plugin: &Plugin) -> Vec<(&'static str, Value)> {
        let hosts: Vec<&str> = plugin.allow_hosts.iter().map(|p| p.as_str()).collect();
        let net = &plugin.net;
        let limits = (!hosts.is_empty()).then(|| {
            json!({
                "connect_timeout_ms": net.connect_timeout.as_millis() as u64,
                "request_timeout_ms": net.request_timeout.as_millis() as u64,
                "max_response": net.max_response,
                "max_requests": net.max_requests,
                "max_datagrams": net.max_datagrams,
            })
        });
        vec![("hosts", json!(hosts)), ("net", json!(limits))]
    }

    fn warnings(&self, plugin: &Plugin, imports: Imports<'_>) -> Vec<GrantWarning> {
        let (http, sockets) = (imports.any(HTTP), imports.any(SOCKETS));
        let mut warnings = Vec::new();
        let unused: Vec<&str> = plugin
            .allow_hosts
            .iter()
            .filter(|p| !Net::can_use(p, imports))
            .map(|p| p.as_str())
            .collect();
        if !unused.is_empty() {
            let imports = match (http, sockets) {
                (false, false) => "no networking (wasi:http or wasi:sockets)",
                (true, false) => "no wasi:sockets, so no tcp:// or udp:// host",
                _ => "no wasi:http, so no http:// or https:// host",
            };
            warnings.push(GrantWarning::new(
                "unused-grant:allow_hosts",
                format!(
                    "is granted hosts it cannot reach ({}): it imports {imports}",
                    unused.join(", ")
                ),
            ));
        }
        let granted = |schemes: [Scheme; 2]| {
            plugin
                .allow_hosts
                .iter()
                .any(|p| schemes.iter().any(|s| p.covers_scheme(*s)))
        };
        if http && !granted([Scheme::Http, Scheme::Https]) {
            warnings.push(GrantWarning::new(
                "ungranted-import:http",
                "imports wasi:http but is granted no host (allow_hosts): every request will be refused",
            ));
        }
        if sockets && !granted([Scheme::Tcp, Scheme::Udp]) {
            warnings.push(GrantWarning::new(
                "ungranted-import:sockets",
                "imports wasi:sockets but is granted no tcp:// or udp:// host (allow_hosts): every connection will be refused",
            ));
        }
        warnings
    }

    /// A host the component can reach lets it change things and reach the open world.
    fn effects(&self, plugin: &Plugin, imports: Imports<'_>) -> Effects {
        let reaches = plugin.allow_hosts.iter().any(|p| Net::can_use(p, imports));
        Effects {
            writes: reaches,
            open_world: reaches,
        }
    }

    fn open(&self, plugin: &Plugin, _: &Slots, opened: &mut Slots) -> Result<(), CapabilityError> {
        let scrubber = SecretScrubber::for_plugin(plugin);
        opened.insert(Arc::new(NetPolicy::new(plugin, scrubber)));
        Ok(())
    }

    /// Socket permissions into the WASI context, and the call's [`CallNet`].
    fn prepare(&self, call: &mut CallBuilder<'_>) -> Result<(), CapabilityError> {
        let net = match call.opened.get::<Arc<NetPolicy>>() {
            Some(policy) => {
                let usage = Arc::new(Usage::default());
                sockets::grant(call.wasi, policy, &usage);
                CallNet::new(policy, usage)
            }
            None => CallNet::default(),
        };
        call.slots.insert(net);
        Ok(())
    }
}

impl<T: CallView> Link<T> for Net {
    /// Name lookups pass the plugin's grants (wasi:http itself is linked with WASI, and its
    /// requests reach the call's hooks through [`http_hooks`]).
    fn link(&self, linker: &mut Linker<T>) -> wasmtime::Result<()> {
        add_lookup_guard_to_linker(linker, |state| {
            let parts = state.parts();
            LookupView {
                sockets: wasmtime_wasi::sockets::WasiSocketsCtxView {
                    ctx: parts.wasi.sockets(),
                    table: parts.table,
                },
                guard: parts.slots.get_or_insert_with(CallNet::default).lookup(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(patterns: &[&str]) -> NetPolicy {
        NetPolicy {
            plugin: Arc::from("test"),
            patterns: patterns
                .iter()
                .map(|p| HostPattern::parse(p).expect("pattern"))
                .collect(),
            limits: NetLimits::default(),
            scrubber: SecretScrubber::default(),
        }
    }

    fn refusal(result: Result<Target, Refusal>) -> String {
        result.expect_err("refused").0
    }

    #[test]
    fn requests_are_admitted_by_scheme_host_and_port() {
        let p = policy(&["http://127.0.0.1:8080", "https://api.example.com"]);
        assert_eq!(
            p.admit("http", "127.0.0.1", Some(8080)),
            Ok(Target {
                scheme: Scheme::Http,
                host: Host::Ip("127.0.0.1".parse().unwrap()),
                port: 8080
            })
        );
        assert!(p.admit("HTTPS", "API.example.com", None).is_ok());
        assert_eq!(
            refusal(p.admit("http", "127.0.0.1", Some(8081))),
            "port 8081 is not granted for 127.0.0.1"
        );
        assert_eq!(
            refusal(p.admit("http", "api.example.com", None)),
            "plain http is refused: api.example.com is granted for https only"
        );
        assert_eq!(
            refusal(p.admit("https", "evil.example", None)),
            "host evil.example is not in the plugin's allow_hosts"
        );
        assert!(refusal(p.admit("ftp", "api.example.com", None)).contains("scheme `ftp`"));
        assert!(refusal(p.admit("http", "2130706433", Some(8080))).contains("unusual spelling"));
        assert!(
            refusal(policy(&[]).admit("https", "api.example.com", None))
                .contains("granted no outbound hosts")
        );
    }

    #[test]
    fn restricted_addresses_need_an_explicit_grant() {
        let p = policy(&[
            "http://localhost:8080",
            "http://*:8080",
            "http://10.0.0.0/8:*",
        ]);
        let target = p.admit("http", "localhost", Some(8080)).expect("admitted");
        let loopback: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let refused = p
            .permitted_addresses(&target, &loopback)
            .expect_err("refused");
        assert_eq!(
            refused.0,
            "localhost resolves to 127.0.0.1 (a loopback address), ::1 (a loopback address), which allow_hosts does not grant explicitly"
        );
        // A public address among them is used; the loopback one is dropped.
        let mixed: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "8.8.8.8".parse().unwrap()];
        assert_eq!(
            p.permitted_addresses(&target, &mixed),
            Ok(vec!["8.8.8.8".parse().unwrap()])
        );
        // `*` admits the literal, the address rule refuses it.
        let target = p
            .admit("http", "169.254.169.254", Some(8080))
            .expect("admitted");
        let ip = ["169.254.169.254".parse().unwrap()];
        assert!(
            p.permitted_addresses(&target, &ip)
                .expect_err("refused")
                .0
                .contains("cloud metadata")
        );
        // A CIDR grant is explicit.
        let target = p.admit("http", "10.1.2.3", Some(9)).expect("admitted");
        assert!(
            p.permitted_addresses(&target, &["10.1.2.3".parse().unwrap()])
                .is_ok()
        );
        let target = p
            .admit("http", "[::ffff:127.0.0.1]", Some(8080))
            .expect("admitted");
        assert!(
            p.permitted_addresses(&target, &["::ffff:127.0.0.1".parse().unwrap()])
                .is_err()
        );
    }

    #[test]
    fn sockets_use_the_same_patterns_and_rules() {
        let p = policy(&[
            "tcp://127.0.0.1:5432",
            "tcp://db.example.com:5432",
            "udp://*:53",
        ]);
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(
            p.check_socket(Scheme::Tcp, addr("127.0.0.1:5432"), &[])
                .is_ok()
        );
        assert!(
            p.check_socket(Scheme::Tcp, addr("127.0.0.1:5433"), &[])
                .is_err()
        );
        assert!(
            p.check_socket(Scheme::Tcp, addr("[::1]:5432"), &[])
                .is_err()
        );
        assert!(
            p.check_socket(Scheme::Udp, addr("127.0.0.1:5432"), &[])
                .is_err()
        );
        // A public address is reachable when it came from a granted name.
        let db = ["db.example.com".to_owned()];
        assert!(
            p.check_socket(Scheme::Tcp, addr("93.184.216.34:5432"), &db)
                .is_ok()
        );
        assert!(
            p.check_socket(Scheme::Tcp, addr("93.184.216.34:5432"), &[])
                .is_err()
        );
        // A granted name resolving to a private address does not make it reachable.
        assert!(
            p.check_socket(Scheme::Tcp, addr("10.0.0.5:5432"), &db)
                .is_err()
        );
        assert!(p.check_socket(Scheme::Udp, addr("8.8.8.8:53"), &[]).is_ok());
        assert!(
            p.check_socket(Scheme::Udp, addr("192.168.1.1:53"), &[])
                .is_err()
        );
        assert!(p.may_look_up("db.example.com"));
        assert!(p.may_look_up("anything.example"));
        let p = policy(&["tcp://db.example.com:5432", "https://api.example.com"]);
        assert!(!p.may_look_up("api.example.com"));
        assert!(
            policy(&["https://api.example.com"])
                .check_socket(Scheme::Tcp, addr("8.8.8.8:53"), &[])
                .expect_err("refused")
                .0
                .contains("granted no tcp hosts")
        );
    }

    #[test]
    fn datagrams_past_the_limit_are_refused() {
        let usage = Usage::default();
        let limits = NetLimits {
            max_datagrams: 3,
            ..NetLimits::default()
        };
        for _ in 0..3 {
            assert!(usage.count_datagram(&limits).is_ok());
        }
        for _ in 0..2 {
            assert_eq!(
                usage.count_datagram(&limits).expect_err("past the limit").0,
                "the call already sent 3 UDP datagrams, its limit (max_datagrams = 3)"
            );
        }
        // Datagrams and requests are counted apart.
        assert!(usage.count(&limits).is_ok());
    }

    #[test]
    fn requests_past_the_limit_are_refused() {
        let usage = Usage::default();
        let limits = NetLimits {
            max_requests: 2,
            ..NetLimits::default()
        };
        assert!(usage.count(&limits).is_ok());
        assert!(usage.count(&limits).is_ok());
        assert!(
            usage
                .count(&limits)
                .expect_err("third")
                .0
                .contains("max_requests = 2")
        );
    }
}
