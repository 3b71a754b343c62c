//! Network: nothing is granted yet. Sockets, UDP and name lookups are refused, and
//! `wasi:http` is not linked at all, so a component that imports it fails to load with a
//! message naming the import.

use wasmtime_wasi::WasiCtxBuilder;

/// Refuse every socket address and every name lookup.
pub(super) fn deny(builder: &mut WasiCtxBuilder) {
    builder
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
}
