//! `wasi:sockets`: connections and datagrams only to what `tcp://` and `udp://` patterns grant,
//! under the same address rules as HTTP, and name lookups only for granted names.
//!
//! wasmtime-wasi asks a socket address check before every bind, connect, send and receive
//! (for UDP, before every datagram sent: that is where `max_datagrams` is counted).
//! warden's check allows the implicit bind that a connect or send performs (the unspecified
//! address, port 0), never a listening socket, and otherwise [`NetPolicy::check_socket`]:
//! an address is reachable when a pattern grants it explicitly (an IP or CIDR host), or when it
//! is public and a pattern with host `*` grants its port, or when it is public and a name
//! the call looked up resolved to it.
//!
//! wasmtime-wasi's name lookup has no per-name hook, so warden links its own
//! `wasi:sockets/ip-name-lookup` over it ([`add_lookup_guard_to_linker`]): a lookup of a name no
//! socket pattern grants fails with `access-denied` before any DNS query leaves the host, and
//! the addresses of a granted name are filtered by the address rules and remembered for the
//! connect check.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    self, Host as LookupHost, HostResolveAddressStream, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddress, Network};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtxView};

use super::{Host, restriction};
use super::{NetPolicy, Scheme, Usage};

/// Set the call's socket permissions from `policy`.
pub(super) fn grant(builder: &mut WasiCtxBuilder, policy: &Arc<NetPolicy>, usage: &Arc<Usage>) {
    let tcp = policy.grants(Scheme::Tcp);
    let udp = policy.grants(Scheme::Udp);
    builder
        .allow_tcp(tcp)
        .allow_udp(udp)
        .allow_ip_name_lookup(policy.grants_socket_names());
    if !tcp && !udp {
        builder.socket_addr_check(|_, _| Box::pin(async { false }));
        return;
    }
    let (policy, usage) = (policy.clone(), usage.clone());
    builder.socket_addr_check(move |addr, use_| {
        let allowed = check(&policy, &usage, addr, use_);
        Box::pin(async move { allowed })
    });
}

fn check(policy: &NetPolicy, usage: &Usage, addr: SocketAddr, use_: SocketAddrUse) -> bool {
    let verdict = match use_ {
        // The implicit bind of a connect or a send: any local interface, an ephemeral port.
        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind
            if addr.ip().is_unspecified() && addr.port() == 0 =>
        {
            return true;
        }
        SocketAddrUse::TcpBind
        | SocketAddrUse::UdpBind
        | SocketAddrUse::TcpListen
        | SocketAddrUse::TcpAccept => Err(super::Refusal(format!(
            "{use_:?} on {addr} is refused: plugins may not accept connections"
        ))),
        SocketAddrUse::TcpConnect => policy
            .check_socket(Scheme::Tcp, addr, &usage.names_of(addr.ip()))
            .and_then(|()| usage.count(&policy.limits)),
        // wasmtime-wasi checks every datagram it sends, and a UDP `connect` (a `stream` with
        // a remote address) once: each counts toward `max_datagrams`.
        SocketAddrUse::UdpSend => policy
            .check_socket(Scheme::Udp, addr, &usage.names_of(addr.ip()))
            .and_then(|()| usage.count_datagram(&policy.limits)),
        SocketAddrUse::UdpReceive => {
            policy.check_socket(Scheme::Udp, addr, &usage.names_of(addr.ip()))
        }
    };
    match verdict {
        Ok(()) => {
            tracing::debug!(plugin = policy.plugin(), %addr, kind = ?use_, "socket use allowed");
            true
        }
        Err(refusal) => {
            tracing::info!(plugin = policy.plugin(), %addr, kind = ?use_, reason = %refusal, "socket use refused");
            false
        }
    }
}

/// One call's name lookups: which names it may resolve, and which lookups are in flight.
pub struct LookupGuard {
    policy: Arc<NetPolicy>,
    usage: Arc<Usage>,
    /// Resolve streams of granted names, by resource representation: the name they resolve.
    streams: HashMap<u32, String>,
}

impl LookupGuard {
    pub(super) fn new(policy: Arc<NetPolicy>, usage: Arc<Usage>) -> LookupGuard {
        LookupGuard {
            policy,
            usage,
            streams: HashMap::new(),
        }
    }
}

/// What the guarded `wasi:sockets/ip-name-lookup` works on: wasmtime-wasi's sockets view and
/// the call's [`LookupGuard`].
pub struct LookupView<'a> {
    /// wasmtime-wasi's sockets state and the call's resource table.
    pub sockets: WasiSocketsCtxView<'a>,
    /// The call's lookup guard.
    pub guard: &'a mut LookupGuard,
}

struct GuardedLookup;

impl HasData for GuardedLookup {
    type Data<'a> = LookupView<'a>;
}

/// Replace `wasi:sockets/ip-name-lookup` in `linker` (which must already hold wasmtime-wasi's)
/// with the guarded one. `view` gives a store's [`LookupView`].
pub fn add_lookup_guard_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> LookupView<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = ip_name_lookup::add_to_linker::<T, GuardedLookup>(linker, view);
    linker.allow_shadowing(false);
    result
}

// `ip-name-lookup` uses types of `network`, so its host trait requires `network`'s: both are
// wasmtime-wasi's own.
impl network::Host for LookupView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        self.sockets.convert_error_code(error)
    }

    fn network_error_code(
        &mut self,
        error: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        self.sockets.network_error_code(error)
    }
}

impl network::HostNetwork for LookupView<'_> {
    fn drop(&mut self, network: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.sockets, network)
    }
}

impl LookupHost for LookupView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveAddressStream>, SocketError> {
        let policy = &self.guard.policy;
        let granted = match Host::parse(&name) {
            // An address literal needs no DNS; the connect check judges it.
            Ok(Host::Ip(_)) => None,
            Ok(Host::Name(name)) if policy.may_look_up(&name) => Some(name),
            Ok(Host::Name(_)) | Err(_) => {
                tracing::info!(
                    plugin = policy.plugin(),
                    name = %policy.scrub(&name),
                    "name lookup refused: no tcp or udp pattern grants it"
                );
                return Err(ErrorCode::AccessDenied.into());
            }
        };
        let stream = self.sockets.resolve_addresses(network, name)?;
        if let Some(name) = granted {
            self.guard.streams.insert(stream.rep(), name);
        }
        Ok(stream)
    }
}

impl HostResolveAddressStream for LookupView<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        let rep = stream.rep();
        loop {
            let next = self
                .sockets
                .resolve_next_address(Resource::new_borrow(rep))?;
            let (Some(address), Some(name)) = (next, self.guard.streams.get(&rep)) else {
                return Ok(next);
            };
            let ip = ip_addr(address);
            let explicit = restriction(ip).is_none()
                || [Scheme::Tcp, Scheme::Udp].iter().any(|&scheme| {
                    self.guard
                        .policy
                        .patterns
                        .iter()
                        .any(|p| p.covers_scheme(scheme) && p.contains_address(ip))
                });
            if explicit {
                self.guard.usage.record(ip, name);
                return Ok(Some(address));
            }
            tracing::info!(
                plugin = self.guard.policy.plugin(),
                name,
                %ip,
                "resolved address dropped: restricted and not granted explicitly"
            );
        }
    }

    fn subscribe(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<wasmtime_wasi::p2::DynPollable>> {
        self.sockets.subscribe(stream)
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        self.guard.streams.remove(&stream.rep());
        HostResolveAddressStream::drop(&mut self.sockets, stream)
    }
}

fn ip_addr(address: IpAddress) -> IpAddr {
    match address {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
        }
    }
}
