//! Environment grants: only the variables the manifest declares, never the host's own.

use wasmtime_wasi::WasiCtxBuilder;

/// Set the declared variables; nothing is inherited from the host process.
pub(super) fn grant(builder: &mut WasiCtxBuilder, env: &[(String, String)]) {
    for (name, value) in env {
        builder.env(name, value);
    }
}
