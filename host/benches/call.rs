//! Per-call cost of the sandbox: a trivial tool, instantiated, called and dropped.
//!
//! `cargo bench -p warden --bench call`. Target on a 2-core machine: median at most 30 µs for
//! `runtime/call` (instantiate + call + drop, fresh WASI context and store).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use wasmtime::component::Val;

use warden::catalog::ToolEntry;
use warden::gate::{Principal, Transport};
use warden::host::Host;
use warden::manifest::Manifest;
use warden::runtime::NoEvents;

fn manifest(dir: &std::path::Path) -> Manifest {
    let plugins = PathBuf::from(env!("WARDEN_PLUGIN_DIR"));
    let text = format!(
        "[cache]\ndir = \"{cache}\"\n\n[plugins.testbed]\ncomponent = \"{testbed}\"\n",
        cache = dir.join("cache").display(),
        testbed = plugins.join("testbed.wasm").display(),
    );
    let path = dir.join("warden.toml");
    std::fs::write(&path, text).expect("write manifest");
    Manifest::load(&path).expect("bench manifest")
}

/// A single-threaded tokio runtime: the benches measure one call at a time.
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
}

/// The trivial tool every bench calls: testbed's `env`.
fn env_tool(host: &Host) -> Arc<ToolEntry> {
    host.gate
        .catalog()
        .get("testbed__env")
        .expect("testbed__env")
        .clone()
}

fn call(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = manifest(dir.path());
    let host = Host::load(&manifest).unwrap_or_else(|e| panic!("{}", e[0]));
    let rt = current_thread();

    let entry = env_tool(&host);
    let args = [Val::String("HOME".into())];
    let events = Arc::new(NoEvents);
    c.bench_function("runtime/call", |b| {
        b.iter(|| {
            rt.block_on(
                host.runtime
                    .call(&entry.plugin, entry.function, &args, events.clone()),
            )
            .expect("call")
        })
    });

    let arguments = json!({"name": "HOME"});
    let arguments = arguments.as_object().expect("object");
    let principal = Principal::new("bench", Vec::new(), Transport::Stdio);
    c.bench_function("gate/call", |b| {
        b.iter(|| {
            rt.block_on(host.gate.call(warden::gate::CallRequest {
                principal: &principal,
                mcp_id: None,
                tool: "testbed__env",
                arguments: Some(arguments),
                events: events.clone(),
            }))
            .expect("call")
        })
    });
}

/// The gate with every feature on (roles, per-principal and per-tool rates, a concurrency
/// cap, argument caps, every detector plus a custom one and a secret, the audit log written
/// and hashed) against the bare runtime call, on the same trivial tool. Issue 4's target: the
/// gate adds at most 10% to the call.
///
/// `gate_overhead/difference` (and `difference_without_audit`, the same gate without
/// `[audit]`) time blocks of bare and gated calls alternately and report the difference per
/// call, which holds up better than two separate runs on a busy machine.
fn gate_overhead(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = PathBuf::from(env!("WARDEN_PLUGIN_DIR"));
    let load = |name: &str, audit: bool| {
        let audit = if audit {
            format!(
                "[audit]\npath = \"{}/audit/{name}.jsonl\"\n",
                dir.path().display()
            )
        } else {
            String::new()
        };
        let text = format!(
            r#"[cache]
dir = "{cache}"

[server]
principal = "bench"
roles = ["user"]

[limits]
tool_rate = {{ per_minute = 1000000, burst = 1000000 }}

[filters]
custom = [{{ name = "employee-id", pattern = "EMP-[0-9]{{6}}" }}]

{audit}
[plugins.testbed]
component = "{testbed}"
roles = ["user"]
rate = {{ per_minute = 1000000, burst = 1000000 }}
concurrency = 8
env = {{ API_TOKEN = "tok-7f3a9c2e51b8" }}
"#,
            cache = dir.path().join("cache").display(),
            testbed = plugins.join("testbed.wasm").display(),
        );
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("write manifest");
        let manifest = Manifest::load(&path).expect("bench manifest");
        Host::load(&manifest).unwrap_or_else(|e| panic!("{}", e[0]))
    };
    let host = load("all", true);
    let unaudited = load("unaudited", false);
    let rt = current_thread();
    let entry = env_tool(&host);
    let args = [Val::String("HOME".into())];
    let events = Arc::new(NoEvents);
    let arguments = json!({"name": "HOME"});
    let arguments = arguments.as_object().expect("object");
    let principal = Principal::new("bench", vec!["user".into()], Transport::Stdio);

    let mut group = c.benchmark_group("gate_overhead");
    group.bench_function("runtime", |b| {
        b.iter(|| {
            rt.block_on(
                host.runtime
                    .call(&entry.plugin, entry.function, &args, events.clone()),
            )
            .expect("call")
        })
    });
    group.bench_function("gate_all_features", |b| {
        b.iter(|| {
            rt.block_on(host.gate.call(warden::gate::CallRequest {
                principal: &principal,
                mcp_id: Some(json!(1)),
                tool: "testbed__env",
                arguments: Some(arguments),
                events: events.clone(),
            }))
            .expect("call")
        })
    });
    group.bench_function("gate_without_audit", |b| {
        b.iter(|| {
            rt.block_on(unaudited.gate.call(warden::gate::CallRequest {
                principal: &principal,
                mcp_id: Some(json!(1)),
                tool: "testbed__env",
                arguments: Some(arguments),
                events: events.clone(),
            }))
            .expect("call")
        })
    });
    // The difference itself, measured in interleaved blocks so that load from elsewhere on
    // the machine hits both sides alike: each iteration is one gate call minus one bare
    // runtime call.
    for (name, gate) in [
        ("difference", &host.gate),
        ("difference_without_audit", &unaudited.gate),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                const BLOCK: u64 = 16;
                let (mut gated, mut bare) = (Duration::ZERO, Duration::ZERO);
                let mut done = 0;
                while done < iterations {
                    let n = BLOCK.min(iterations - done);
                    let start = Instant::now();
                    for _ in 0..n {
                        rt.block_on(host.runtime.call(
                            &entry.plugin,
                            entry.function,
                            &args,
                            events.clone(),
                        ))
                        .expect("call");
                    }
                    bare += start.elapsed();
                    let start = Instant::now();
                    for _ in 0..n {
                        rt.block_on(gate.call(warden::gate::CallRequest {
                            principal: &principal,
                            mcp_id: Some(json!(1)),
                            tool: "testbed__env",
                            arguments: Some(arguments),
                            events: events.clone(),
                        }))
                        .expect("call");
                    }
                    gated += start.elapsed();
                    done += n;
                }
                gated.saturating_sub(bare)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, call, gate_overhead);
criterion_main!(benches);
