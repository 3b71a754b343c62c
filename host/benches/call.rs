//! The in-process path of a call, piece by piece: WIT <-> JSON conversion, the output filter,
//! the audit record, the sandboxed call with and without the gate.
//!
//! `cargo bench -p warden --bench call` (add a name filter such as `gate_overhead` to run one
//! group). Targets on a 2-core machine (issues 4 and 6, reported in docs/PERFORMANCE.md):
//! - `call/gate` (gate + runtime, every feature on, trivial tool): median at most 30 µs;
//! - `gate_overhead/*`: at most 10% of `call/bare`. The group ends with a report of both
//!   ratios.
//! - `sql/point_select` (the `db` plugin's `query`, a primary-key SELECT on a SQLite copy of
//!   examples/shop.db, read-only grant): at most 50 µs more than `sql/bare`, the same trivial
//!   call in the same host. The group ends with a report of the difference.
//! - `kv/*` (the `notes` plugin on the embedded redb backend, 1 KiB values): what a `get` and
//!   a `set` add to a call of the same tool that stops before opening the store; target at
//!   most 5 µs. The group ends with a report of both differences.
//!
//! - `call/python`, `call/js` (issue 19): the same bare call of the Python example
//!   (`textstats`'s `text-stats` of a two-line file) and of the JavaScript one (`jsonapi`'s
//!   `post-json` with a body that is not JSON, refused in JavaScript); target at most 300 µs
//!   each. They run when the components are in `target/tmp/polyglot` (or
//!   `WARDEN_POLYGLOT_DIR`), as `cargo test -p warden --test polyglot` builds them, and use a
//!   compile cache kept there (the first run compiles them, a minute each).
//!
//! The trivial tool is codec's `encode` (hex of a short string): pure computation in a plugin
//! with no grants. The bare call is what serving it costs without the gate: the JSON
//! arguments converted to WIT values, a fresh store and WASI context, instantiate, call, drop,
//! the result presented as MCP content.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Value, json};

use warden::audit::{AuditSink, FileSink, Outcome, Record, line_hash, rfc3339};
use warden::catalog::ToolEntry;
use warden::gate::{
    APPROVAL_KEY, Asking, CallRequest, Declared, Detectors, OutputFilter, Principal, Reply,
    Transport, to_result,
};
use warden::host::Host;
use warden::manifest::Manifest;
use warden::runtime::{CallEvents, ElicitFuture, Elicited, EventFuture, LogLevel, NoEvents};
use warden::schema::to_json;

/// The trivial tool, its arguments as JSON and as WIT values.
const TOOL: &str = "encode";
const ARGS: &str = r#"{"encoding": "hex", "text": "warden"}"#;

/// The manifest of every gate feature, shared with warden-bench.
const EVERY_FEATURE: &str = include_str!("../../bench/every-feature.toml");

/// Every gate feature on (see [`EVERY_FEATURE`]): roles, per-principal and per-tool rates, a
/// concurrency cap, argument caps, every detector plus a custom one and a secret value, and
/// (when `audit`) the hash-chained audit log written before each response.
fn manifest(dir: &Path, name: &str, audit: bool) -> Manifest {
    let plugins = PathBuf::from(env!("WARDEN_PLUGIN_DIR"));
    let audit = if audit {
        format!("[audit]\npath = \"{}/audit/{name}.jsonl\"\n", dir.display())
    } else {
        String::new()
    };
    let text = format!(
        "[cache]\ndir = \"{cache}\"\n\n{audit}\n{every_feature}\n[plugins.testbed]\ncomponent = \"{testbed}\"\n",
        cache = dir.join("cache").display(),
        every_feature =
            EVERY_FEATURE.replace("{codec}", &plugins.join("codec.wasm").display().to_string()),
        testbed = plugins.join("testbed.wasm").display(),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write manifest");
    Manifest::load(&path).expect("bench manifest")
}

fn load(dir: &Path, name: &str, audit: bool) -> Host {
    Host::load(&manifest(dir, name, audit)).unwrap_or_else(|e| panic!("{}", e[0]))
}

/// A single-threaded tokio runtime: the benches measure one call at a time.
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
}

fn arguments() -> serde_json::Map<String, Value> {
    match serde_json::from_str(ARGS) {
        Ok(Value::Object(map)) => map,
        _ => unreachable!("ARGS is an object"),
    }
}

/// WIT <-> JSON: a nested record (options, a list of records, strings) both ways.
fn schema(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = load(dir.path(), "schema", false);
    let entry = host
        .gate
        .catalog()
        .get("testbed__echo_nested")
        .expect("echo_nested")
        .clone();
    let function = entry.function();
    let points: Vec<Value> = (0..16)
        .map(|i| json!({"tiny": i, "label": format!("point {i}"), "on": i % 2 == 0}))
        .collect();
    let value = json!({"value": {
        "id": 7, "name": "nested", "origin": {"tiny": 1, "label": "origin", "on": true},
        "points": points, "tags": ["a", "b", "c"],
    }});
    let arguments = value.as_object().expect("object");
    let vals = function.args_from_json(Some(arguments)).expect("valid");
    let ty = function.result.as_ref().expect("result type");

    let mut group = c.benchmark_group("schema");
    group.bench_function("json_to_wit", |b| {
        b.iter(|| function.args_from_json(Some(arguments)).expect("valid"))
    });
    group.bench_function("wit_to_json", |b| {
        b.iter(|| to_json(ty, &vals[0]).expect("convertible"))
    });
    group.finish();
}

/// The output filter over a text result of 1 KiB and 1 MiB: prose with an email address, a
/// Luhn-valid card number and the plugin's secret in every KiB.
fn filter(c: &mut Criterion) {
    let detectors = Arc::new(Detectors::new(&[]).expect("detectors"));
    let filter = OutputFilter::all(detectors, &["tok-7f3a9c2e51b8".to_owned()]);
    let kib = {
        let mut text = String::from(
            "Contact ann@example.com, card 4111 1111 1111 1111, token tok-7f3a9c2e51b8. ",
        );
        while text.len() < 1024 {
            text.push_str("The quick brown fox jumps over the lazy dog 0123456789. ");
        }
        text.truncate(1024);
        text
    };
    let mut group = c.benchmark_group("filter");
    for (name, repeat) in [("1KiB", 1), ("1MiB", 1024)] {
        let text = kib.repeat(repeat);
        group.throughput(Throughput::Bytes(text.len() as u64));
        let result = CallToolResult::success(vec![ContentBlock::text(text)]);
        group.bench_with_input(BenchmarkId::from_parameter(name), &result, |b, result| {
            b.iter_batched(
                || result.clone(),
                |mut result| filter.apply(&mut result),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// One audit record of a trivial call, written to the hash-chained log, and its parts:
/// serialization, the chain's SHA-256, the timestamp.
fn audit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = FileSink::open(&dir.path().join("audit.jsonl"), u64::MAX, false).expect("open");
    let record = Record {
        ts: rfc3339(std::time::SystemTime::now()),
        id: warden::gate::new_request_id().into(),
        mcp_id: Some(json!(1)),
        principal: "bench".into(),
        roles: vec!["user".into()].into(),
        transport: "stdio".into(),
        plugin: Some("codec".into()),
        tool: TOOL.into(),
        method: None,
        args: Some(std::borrow::Cow::Owned(arguments())),
        outcome: Outcome::Ok,
        error: None,
        duration_us: 17,
        fuel: Some(12_345),
        output_bytes: Some(96),
        redactions: Default::default(),
        truncated: false,
        usage: Default::default(),
        approval: None,
        dropped: None,
        trace_id: None,
    };
    let line = serde_json::to_vec(&record).expect("serializable");
    let mut group = c.benchmark_group("audit");
    group.bench_function("record", |b| {
        b.iter(|| sink.record(&record).expect("record"))
    });
    group.bench_function("serialize", |b| {
        b.iter(|| serde_json::to_vec(&record).expect("serializable"))
    });
    group.bench_function("hash", |b| b.iter(|| line_hash(&line)));
    group.bench_function("timestamp", |b| {
        b.iter(|| rfc3339(std::time::SystemTime::now()))
    });
    group.finish();
}

/// The bare call and the gated call of the trivial tool.
fn call(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = load(dir.path(), "call", true);
    let rt = current_thread();
    let entry = host.gate.catalog().get(TOOL).expect(TOOL).clone();
    let arguments = arguments();
    let principal = Principal::new("bench", vec!["user".into()], Transport::Stdio);

    let mut group = c.benchmark_group("call");
    group.bench_function("bare", |b| {
        b.iter(|| bare_call(&rt, &host, &entry, &arguments))
    });
    group.bench_function("gate", |b| {
        b.iter(|| gate_call(&rt, &host, &principal, &arguments))
    });
    group.finish();
}

/// The call without the gate: convert, run in the sandbox, present.
fn bare_call(
    rt: &tokio::runtime::Runtime,
    host: &Host,
    entry: &ToolEntry,
    arguments: &serde_json::Map<String, Value>,
) {
    let function = entry.function();
    let args = function.args_from_json(Some(arguments)).expect("valid");
    let ran = rt
        .block_on(
            host.runtime
                .call(&entry.plugin, entry.function, &args, Arc::new(NoEvents)),
        )
        .expect("call");
    let result = to_result(function, ran.value).expect("presentable");
    assert_ne!(result.is_error, Some(true), "{result:?}");
}

fn gate_call(
    rt: &tokio::runtime::Runtime,
    host: &Host,
    principal: &Principal,
    arguments: &serde_json::Map<String, Value>,
) {
    let result = rt
        .block_on(host.gate.call(CallRequest {
            principal,
            mcp_id: Some(json!(1)),
            tool: TOOL,
            arguments: Some(arguments),
            events: Arc::new(NoEvents),
            asking: Asking::Unable,
        }))
        .expect("call")
        .done()
        .expect("a result");
    assert_ne!(result.is_error, Some(true), "{result:?}");
}

/// Bare and gated calls of one host, in alternating blocks so that load from elsewhere on the
/// machine hits both sides alike.
struct Paired<'a> {
    rt: tokio::runtime::Runtime,
    host: &'a Host,
    entry: Arc<ToolEntry>,
    arguments: serde_json::Map<String, Value>,
    principal: Principal,
}

/// Calls per block.
const BLOCK: u64 = 16;

impl Paired<'_> {
    fn new(host: &Host) -> Paired<'_> {
        Paired {
            rt: current_thread(),
            host,
            // Each host has its own engine: the bare call must use this host's plugin.
            entry: host.gate.catalog().get(TOOL).expect(TOOL).clone(),
            arguments: arguments(),
            principal: Principal::new("bench", vec!["user".into()], Transport::Stdio),
        }
    }

    /// `blocks` pairs of blocks: per call, the bare time and the gated time of each pair.
    fn run(&self, blocks: u64) -> Vec<(Duration, Duration)> {
        (0..blocks)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..BLOCK {
                    bare_call(&self.rt, self.host, &self.entry, &self.arguments);
                }
                let bare = start.elapsed();
                let start = Instant::now();
                for _ in 0..BLOCK {
                    gate_call(&self.rt, self.host, &self.principal, &self.arguments);
                }
                let gated = start.elapsed();
                (bare / BLOCK as u32, gated / BLOCK as u32)
            })
            .collect()
    }
}

/// The median of `values`.
fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// The gate's cost per call: the median over pairs of blocks of gated minus bare (at least
/// 1 ns: criterion rejects zero). The median, not the mean: a block hit by a burst of load
/// from elsewhere says nothing about the gate.
fn overhead(pairs: &[(Duration, Duration)]) -> Duration {
    median(
        pairs
            .iter()
            .map(|(bare, gated)| gated.saturating_sub(*bare))
            .collect(),
    )
    .max(Duration::from_nanos(1))
}

/// What the gate adds to the bare call, with every feature on and without the audit log,
/// then a report of both as a share of the bare call.
fn gate_overhead(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let audited = load(dir.path(), "audited", true);
    let unaudited = load(dir.path(), "unaudited", false);
    let hosts = [
        ("difference", Paired::new(&audited)),
        ("difference_without_audit", Paired::new(&unaudited)),
    ];

    let mut group = c.benchmark_group("gate_overhead");
    for (name, paired) in &hosts {
        group.bench_function(*name, |b| {
            b.iter_custom(|iterations| {
                let pairs = paired.run(iterations.div_ceil(BLOCK));
                overhead(&pairs) * iterations as u32
            })
        });
    }
    group.finish();

    println!("\ngate overhead on the trivial call (medians of 2,000 paired blocks of {BLOCK}):");
    for (name, paired) in &hosts {
        let pairs = paired.run(2_000);
        let bare = median(pairs.iter().map(|(bare, _)| *bare).collect());
        let overhead = overhead(&pairs);
        println!(
            "  {name:<26} {:>6.2} µs = {:>4.1}% of the bare call ({:.2} µs); target ≤ 10%",
            overhead.as_secs_f64() * 1e6,
            100.0 * overhead.as_secs_f64() / bare.as_secs_f64(),
            bare.as_secs_f64() * 1e6,
        );
    }
}

/// A point SELECT on SQLite through the `db` plugin, next to the trivial call, both bare (no
/// gate), in one host; then the median difference.
fn sql(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = PathBuf::from(env!("WARDEN_PLUGIN_DIR"));
    let shop = dir.path().join("shop.db");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop.db");
    std::fs::copy(&sample, &shop).expect("copy examples/shop.db");
    let path = dir.path().join("sql.toml");
    let text = format!(
        "[cache]\ndir = \"{cache}\"\n\n[plugins.codec]\ncomponent = \"{codec}\"\nprefix = \"\"\n\n\
         [plugins.db]\ncomponent = \"{db}\"\nsql = {{ url = \"sqlite:{shop}\", mode = \"ro\" }}\n",
        cache = dir.path().join("cache").display(),
        codec = plugins.join("codec.wasm").display(),
        db = plugins.join("db.wasm").display(),
        shop = shop.display(),
    );
    std::fs::write(&path, text).expect("write manifest");
    let manifest = Manifest::load(&path).expect("sql bench manifest");
    let host = Host::load(&manifest).unwrap_or_else(|e| panic!("{}", e[0]));
    // Multi-threaded, as `warden serve` runs: SQLite then works on the calling worker.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio");
    let encode = host.gate.catalog().get(TOOL).expect(TOOL).clone();
    let select = host
        .gate
        .catalog()
        .get("db__query")
        .expect("db__query")
        .clone();
    let encode_args = arguments();
    let select_args = match json!({
        "sql": "SELECT name, email FROM customers WHERE id = ?",
        "params": [{ "tag": "integer", "value": 2 }],
    }) {
        Value::Object(map) => map,
        _ => unreachable!("an object"),
    };

    let mut group = c.benchmark_group("sql");
    group.bench_function("bare", |b| {
        b.iter(|| bare_call(&rt, &host, &encode, &encode_args))
    });
    group.bench_function("point_select", |b| {
        b.iter(|| bare_call(&rt, &host, &select, &select_args))
    });
    group.finish();

    // Alternating blocks, so that load from elsewhere hits both sides alike.
    let mut bare = Vec::new();
    let mut select_times = Vec::new();
    for _ in 0..1_000 {
        let started = Instant::now();
        for _ in 0..BLOCK {
            bare_call(&rt, &host, &encode, &encode_args);
        }
        bare.push(started.elapsed() / BLOCK as u32);
        let started = Instant::now();
        for _ in 0..BLOCK {
            bare_call(&rt, &host, &select, &select_args);
        }
        select_times.push(started.elapsed() / BLOCK as u32);
    }
    let (bare, select) = (median(bare), median(select_times));
    println!(
        "\nsql point SELECT through the db plugin (medians of 1,000 alternating blocks of {BLOCK}): \
         {:.2} µs, bare call {:.2} µs, extra {:.2} µs; target ≤ 50 µs",
        select.as_secs_f64() * 1e6,
        bare.as_secs_f64() * 1e6,
        (select.as_secs_f64() - bare.as_secs_f64()) * 1e6,
    );
}

/// The 1 KiB value of the kv benches.
fn kib_text() -> String {
    "0123456789abcdef".repeat(64)
}

/// A host serving `notes` with a private store in a redb file under `dir`.
fn kv_host(dir: &Path, sync: &str) -> Host {
    let plugins = PathBuf::from(env!("WARDEN_PLUGIN_DIR"));
    let text = format!(
        "[cache]\ndir = \"{cache}\"\n\n[kv]\npath = \"{dir}/state/kv.redb\"\nsync = \"{sync}\"\n\n\
         [plugins.notes]\ncomponent = \"{notes}\"\nkv = {{}}\n",
        cache = dir.join("cache").display(),
        dir = dir.display(),
        notes = plugins.join("notes.wasm").display(),
    );
    let path = dir.join("kv.toml");
    std::fs::write(&path, text).expect("write manifest");
    let manifest = Manifest::load(&path).expect("kv bench manifest");
    Host::load(&manifest).unwrap_or_else(|e| panic!("{}", e[0]))
}

/// One kv bench: a tool of `notes`, its arguments, and whether it succeeds.
struct KvCall {
    entry: Arc<ToolEntry>,
    arguments: serde_json::Map<String, Value>,
    ok: bool,
}

impl KvCall {
    fn new(host: &Host, tool: &str, arguments: Value, ok: bool) -> KvCall {
        let Value::Object(arguments) = arguments else {
            unreachable!("arguments are an object")
        };
        KvCall {
            entry: host.gate.catalog().get(tool).expect(tool).clone(),
            arguments,
            ok,
        }
    }

    /// Convert, run in the sandbox, present: the bare call, as [`bare_call`].
    fn run(&self, rt: &tokio::runtime::Runtime, host: &Host) {
        let function = self.entry.function();
        let args = function
            .args_from_json(Some(&self.arguments))
            .expect("valid");
        let ran = rt
            .block_on(host.runtime.call(
                &self.entry.plugin,
                self.entry.function,
                &args,
                Arc::new(NoEvents),
            ))
            .expect("call");
        let result = to_result(function, ran.value).expect("presentable");
        assert_eq!(result.is_error != Some(true), self.ok, "{result:?}");
    }
}

/// `get` and `set` of a 1 KiB value through the `notes` plugin, each beside the same tool
/// called with an empty title, which it refuses before opening the store: the difference is
/// what the store costs (the open, the operation, the host functions). `set` also checks
/// whether the key exists, as `remember` does, and commits durably (an fsync).
fn kv(c: &mut Criterion) {
    let (dir, lazy_dir) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    // Every write durable (the default), and durable within a second (`sync = "1s"`).
    let host = kv_host(dir.path(), "always");
    let lazy = kv_host(lazy_dir.path(), "1s");
    let rt = current_thread();
    let text = kib_text();
    let set = |host: &Host| {
        KvCall::new(
            host,
            "notes__remember",
            json!({"title": "bench", "text": text}),
            true,
        )
    };
    let refused_set = |host: &Host| {
        KvCall::new(
            host,
            "notes__remember",
            json!({"title": "", "text": text}),
            false,
        )
    };
    set(&host).run(&rt, &host);
    let pairs = [
        (
            "get_1KiB",
            &host,
            KvCall::new(&host, "notes__recall", json!({"title": "bench"}), true),
            KvCall::new(&host, "notes__recall", json!({"title": ""}), false),
        ),
        ("set_1KiB", &host, set(&host), refused_set(&host)),
        ("set_1KiB_sync_1s", &lazy, set(&lazy), refused_set(&lazy)),
    ];

    let mut group = c.benchmark_group("kv");
    for (name, host, with, without) in &pairs {
        group.bench_function(format!("{name}_without_kv"), |b| {
            b.iter(|| without.run(&rt, host))
        });
        group.bench_function(*name, |b| b.iter(|| with.run(&rt, host)));
    }
    group.finish();

    println!("\nkv cost in a call of the notes plugin (medians of 200 paired blocks of {BLOCK}):");
    for (name, host, with, without) in &pairs {
        let blocks: Vec<(Duration, Duration)> = (0..200)
            .map(|_| {
                let time = |call: &KvCall| {
                    let start = Instant::now();
                    for _ in 0..BLOCK {
                        call.run(&rt, host);
                    }
                    start.elapsed() / BLOCK as u32
                };
                (time(without), time(with))
            })
            .collect();
        let bare = median(blocks.iter().map(|(bare, _)| *bare).collect());
        let extra = overhead(&blocks);
        println!(
            "  {name:<16} +{:>8.2} µs over the same call without kv ({:.2} µs); target ≤ 5 µs",
            extra.as_secs_f64() * 1e6,
            bare.as_secs_f64() * 1e6,
        );
    }
}

/// Accepts every question at once: the round trip to a client, without the human.
struct AcceptAll;

impl CallEvents for AcceptAll {
    fn log(&self, _: LogLevel, _: String) -> EventFuture<'_> {
        Box::pin(std::future::ready(()))
    }
    fn progress(&self, _: f64, _: Option<f64>, _: Option<String>) -> EventFuture<'_> {
        Box::pin(std::future::ready(()))
    }
    fn elicit(&self, _: String, _: String) -> ElicitFuture<'_> {
        Box::pin(std::future::ready(Ok(Elicited::Accept("{}".to_owned()))))
    }
}

/// An approved call, without the human: the trivial tool with `approval = "ask"`, asked in a
/// session (`live`: the question built and answered at once), and in the stateless era
/// (`question`: the first request, which seals the state and returns the question;
/// `answered`: the retried request, which opens the state and runs the tool), beside the same
/// tool without approval (`never`, the every-feature call). The group ends with a report of
/// what approval adds.
fn approval(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let never = load(dir.path(), "never", true);
    let plugins = PathBuf::from(env!("WARDEN_PLUGIN_DIR"));
    let text = format!(
        "[cache]\ndir = \"{cache}\"\n[audit]\npath = \"{audit}\"\n{every_feature}",
        cache = dir.path().join("cache").display(),
        audit = dir.path().join("audit/ask.jsonl").display(),
        every_feature = EVERY_FEATURE
            .replace("{codec}", &plugins.join("codec.wasm").display().to_string())
            .replace(
                "env = { API_TOKEN = \"tok-7f3a9c2e51b8\" }",
                "env = { API_TOKEN = \"tok-7f3a9c2e51b8\" }\napproval = \"ask\"",
            ),
    );
    let path = dir.path().join("ask.toml");
    std::fs::write(&path, text).expect("write manifest");
    let ask = Host::load(&Manifest::load(&path).expect("manifest"))
        .unwrap_or_else(|e| panic!("{}", e[0]));
    let rt = current_thread();
    let arguments = arguments();
    let principal = Principal::new("bench", vec!["user".into()], Transport::Stdio);
    let run = |host: &Host, events: Arc<dyn CallEvents>, asking: Asking<'_>| {
        rt.block_on(host.gate.call(CallRequest {
            principal: &principal,
            mcp_id: Some(json!(1)),
            tool: TOOL,
            arguments: Some(&arguments),
            events,
            asking,
        }))
        .expect("call")
    };
    let declared = Declared {
        elicitation: true,
        ..Declared::default()
    };
    let rounds = Asking::Rounds {
        state: None,
        responses: None,
        declared,
    };
    let Reply::InputRequired(question) = run(&ask, Arc::new(NoEvents), rounds) else {
        panic!("the first request returns the question");
    };
    let state = question.request_state.clone().expect("a state");
    let mut responses = rmcp::model::InputResponses::new();
    responses.insert(
        APPROVAL_KEY.to_owned(),
        json!({"action": "accept", "content": {}}),
    );
    let answered = Asking::Rounds {
        state: Some(&state),
        responses: Some(&responses),
        declared,
    };
    let done = |reply: Reply| {
        let result = reply.done().expect("a result");
        assert_ne!(result.is_error, Some(true), "{result:?}");
    };

    let mut group = c.benchmark_group("approval");
    // Short: the manifest's rate limits allow a million calls a minute, and these three
    // share one host's buckets.
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut time = |name: &str, f: &mut dyn FnMut()| {
        let mut samples = Vec::new();
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let start = Instant::now();
                for _ in 0..iterations {
                    f();
                }
                let elapsed = start.elapsed();
                samples.push(elapsed / iterations.max(1) as u32);
                elapsed
            })
        });
        median(samples)
    };
    let never_time = time("never", &mut || {
        done(run(&never, Arc::new(NoEvents), Asking::Unable))
    });
    let live = time("live", &mut || {
        done(run(&ask, Arc::new(AcceptAll), Asking::Live))
    });
    let first = time("question", &mut || {
        assert!(matches!(
            run(&ask, Arc::new(NoEvents), rounds),
            Reply::InputRequired(_)
        ));
    });
    let second = time("answered", &mut || {
        done(run(&ask, Arc::new(NoEvents), answered))
    });
    group.finish();
    println!(
        "approval: session +{:.1} µs; stateless question {:.1} µs, answered +{:.1} µs \
         (over `never`, {:.1} µs; medians of the sample means)",
        live.saturating_sub(never_time).as_secs_f64() * 1e6,
        first.as_secs_f64() * 1e6,
        second.saturating_sub(never_time).as_secs_f64() * 1e6,
        never_time.as_secs_f64() * 1e6,
    );
}

/// `call/python` and `call/js`: bare calls of the Python and JavaScript examples, when their
/// components have been built.
fn polyglot(c: &mut Criterion) {
    let components = std::env::var_os("WARDEN_POLYGLOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tmp/polyglot"));
    let textstats = components.join("textstats.wasm");
    let jsonapi = components.join("jsonapi.wasm");
    if !textstats.is_file() || !jsonapi.is_file() {
        eprintln!(
            "call/python, call/js skipped: no {} or {} (plugins/python/build.sh and \
             plugins/js/build.sh build them; so does `cargo test -p warden --test polyglot`)",
            textstats.display(),
            jsonapi.display()
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
    std::fs::write(
        dir.path().join("data/notes.txt"),
        "The cat and the hat.\nthe end\n",
    )
    .expect("text");
    let path = dir.path().join("polyglot.toml");
    std::fs::write(
        &path,
        format!(
            "[cache]\ndir = \"{cache}\"\n\n[plugins.textstats]\ncomponent = \"{textstats}\"\n\
             dirs = [{{ host = \"{data}\", guest = \"/data\", mode = \"ro\" }}]\n\n\
             [plugins.jsonapi]\ncomponent = \"{jsonapi}\"\n",
            cache = components.join("warden-bench-cache").display(),
            textstats = textstats.display(),
            jsonapi = jsonapi.display(),
            data = dir.path().join("data").display(),
        ),
    )
    .expect("write manifest");
    let manifest = Manifest::load(&path).expect("polyglot manifest");
    let host = Host::load(&manifest).unwrap_or_else(|e| panic!("{}", e[0]));
    let rt = current_thread();
    let cases = [
        (
            "python",
            "textstats__text_stats",
            json!({"path": "/data/notes.txt", "top": 3}),
            false,
        ),
        (
            "js",
            "jsonapi__post_json",
            json!({"url": "http://127.0.0.1:9/echo", "body": "not json"}),
            true,
        ),
    ];
    let mut group = c.benchmark_group("call");
    group.sample_size(30);
    for (name, tool, arguments, refused) in cases {
        let entry = host.gate.catalog().get(tool).expect(tool).clone();
        let Value::Object(arguments) = arguments else {
            unreachable!("the arguments are an object")
        };
        let function = entry.function();
        let args = function.args_from_json(Some(&arguments)).expect("valid");
        group.bench_function(name, |b| {
            b.iter(|| {
                let ran = rt
                    .block_on(host.runtime.call(
                        &entry.plugin,
                        entry.function,
                        &args,
                        Arc::new(NoEvents),
                    ))
                    .expect("call");
                let result = to_result(function, ran.value).expect("presentable");
                assert_eq!(result.is_error == Some(true), refused, "{result:?}");
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    schema,
    filter,
    audit,
    call,
    polyglot,
    gate_overhead,
    approval,
    kv,
    sql
);
criterion_main!(benches);
