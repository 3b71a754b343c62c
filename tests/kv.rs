//! The key-value capability end to end: the real `warden` binary serving the `notes` plugin
//! (a component that imports `wasi:keyvalue`), driven by rmcp's client, against both backends:
//! the embedded redb file and a real `redis-server` (one per test binary, on a free port of
//! 127.0.0.1, without persistence).
//!
//! Each scenario runs once per backend: isolation of private stores, a shared store, the three
//! limits, persistence across a restart and the audit record's `usage.kv`; then two warden
//! processes sharing one Redis, and `warden check` / `warden inspect` describing kv grants.

mod common;

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use common::redis::redis_port;
use common::{Fixture, err_text, ok_text};
use serde_json::{Value, json};

/// Which backend a scenario runs on.
#[derive(Clone, Copy, Debug)]
enum Backend {
    Embedded,
    Redis,
}

/// The `[kv]` section for `backend`, with Redis keys under a prefix no other test uses.
fn kv_section(backend: Backend) -> String {
    match backend {
        Backend::Embedded => "[kv]\npath = \"{dir}/state/kv.redb\"\n".to_owned(),
        Backend::Redis => {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::SeqCst);
            format!(
                "[kv]\nurl = \"redis://127.0.0.1:{}\"\nprefix = \"t{}-{n}:\"\n",
                redis_port(),
                std::process::id()
            )
        }
    }
}

/// The manifest `plugins` (TOML of `[plugins.*]` tables) with the `[kv]` of `backend`.
fn fixture(backend: Backend, plugins: &str) -> Fixture {
    Fixture::new(&format!("{}\n{plugins}", kv_section(backend)))
}

/// A `[plugins.NAME]` table of the notes component with `grant` as its `kv` (none if empty).
fn notes(name: &str, grant: &str) -> String {
    let kv = if grant.is_empty() {
        String::new()
    } else {
        format!("kv = {grant}\n")
    };
    format!("[plugins.{name}]\ncomponent = \"{{notes}}\"\n{kv}\n")
}

/// The JSON string a tool returned, as text.
fn string(text: &str) -> String {
    serde_json::from_str::<String>(text).unwrap_or_else(|_| text.to_owned())
}

/// The titles `list` returned.
fn titles(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("a list of titles: {e}: {text}"))
}

async fn private_stores_are_invisible_to_other_plugins(backend: Backend) {
    let fixture = fixture(
        backend,
        &(notes("alpha", "{}") + &notes("beta", "{}") + &notes("gamma", "")),
    );
    let client = fixture.client().await;
    ok_text(
        &client
            .call(
                "alpha__remember",
                json!({"title": "plan", "text": "alpha's secret plan"}),
            )
            .await,
    );
    let recalled = ok_text(&client.call("alpha__recall", json!({"title": "plan"})).await);
    assert_eq!(string(&recalled), "alpha's secret plan");

    let missing = err_text(&client.call("beta__recall", json!({"title": "plan"})).await);
    assert!(missing.contains("no note called \"plan\""), "{missing}");
    let listed = ok_text(&client.call("beta__list", json!({})).await);
    assert!(titles(&listed).is_empty(), "beta sees {listed}");
    // Even naming alpha's store does not open it.
    ok_text(
        &client
            .call("beta__remember", json!({"title": "plan", "text": "beta's"}))
            .await,
    );
    let alpha = ok_text(&client.call("alpha__recall", json!({"title": "plan"})).await);
    assert_eq!(string(&alpha), "alpha's secret plan");

    // Without a grant, open is refused with access-denied.
    let denied = err_text(&client.call("gamma__list", json!({})).await);
    assert!(
        denied.contains("has no key-value store"),
        "gamma without a grant: {denied}"
    );
    client.close().await;
}

async fn a_shared_store_is_visible_to_each_plugin_that_names_it(backend: Backend) {
    let fixture = fixture(
        backend,
        &(notes("alpha", "{ store = \"team\" }")
            + &notes("beta", "{ store = \"team\" }")
            + &notes("gamma", "{}")),
    );
    let client = fixture.client().await;
    ok_text(
        &client
            .call(
                "alpha__remember",
                json!({"title": "standup", "text": "at ten"}),
            )
            .await,
    );
    let seen = ok_text(
        &client
            .call("beta__recall", json!({"title": "standup"}))
            .await,
    );
    assert_eq!(string(&seen), "at ten");
    ok_text(
        &client
            .call("beta__forget", json!({"title": "standup"}))
            .await,
    );
    let gone = err_text(
        &client
            .call("alpha__recall", json!({"title": "standup"}))
            .await,
    );
    assert!(gone.contains("no note"), "{gone}");
    ok_text(
        &client
            .call(
                "beta__remember",
                json!({"title": "retro", "text": "friday"}),
            )
            .await,
    );
    let gamma = ok_text(&client.call("gamma__list", json!({})).await);
    assert!(titles(&gamma).is_empty(), "a private store sees {gamma}");
    let team = ok_text(&client.call("alpha__list", json!({"prefix": "re"})).await);
    assert_eq!(titles(&team), ["retro"]);
    client.close().await;
}

async fn limits_refuse_with_clear_errors_and_the_host_keeps_serving(backend: Backend) {
    let fixture = fixture(
        backend,
        &notes(
            "small",
            "{ quota = \"2KiB\", max_keys = 3, max_value = \"1KiB\" }",
        ),
    );
    let client = fixture.client().await;
    let remember = |title: &str, len: usize| json!({"title": title, "text": "x".repeat(len)});

    let big = err_text(&client.call("small__remember", remember("big", 2048)).await);
    assert!(
        big.contains("value of 2 KiB is over max_value 1 KiB"),
        "{big}"
    );

    ok_text(&client.call("small__remember", remember("a", 1000)).await);
    ok_text(&client.call("small__remember", remember("b", 1000)).await);
    let quota = err_text(&client.call("small__remember", remember("c", 1000)).await);
    assert!(
        quota.contains("quota exceeded: store \"small\" would hold 2.9 KiB of its 2 KiB"),
        "{quota}"
    );
    // Replacing a value with a smaller one is always allowed.
    ok_text(&client.call("small__remember", remember("b", 10)).await);
    ok_text(&client.call("small__remember", remember("c", 10)).await);
    let keys = err_text(&client.call("small__remember", remember("d", 10)).await);
    assert!(
        keys.contains("store \"small\" holds 3 keys, its max_keys"),
        "{keys}"
    );
    // Deleting frees a key for another.
    ok_text(&client.call("small__forget", json!({"title": "c"})).await);
    ok_text(&client.call("small__remember", remember("d", 10)).await);

    let a = ok_text(&client.call("small__recall", json!({"title": "a"})).await);
    assert_eq!(string(&a).len(), 1000);
    let listed = ok_text(&client.call("small__list", json!({})).await);
    assert_eq!(titles(&listed), ["a", "b", "d"]);
    client.close().await;
}

async fn values_survive_a_restart(backend: Backend) {
    let fixture = fixture(backend, &notes("keeper", "{}"));
    let client = fixture.client().await;
    ok_text(
        &client
            .call(
                "keeper__remember",
                json!({"title": "ünïcode title", "text": "kept across restarts"}),
            )
            .await,
    );
    client.close().await;

    let client = fixture.client().await;
    let kept = ok_text(
        &client
            .call("keeper__recall", json!({"title": "ünïcode title"}))
            .await,
    );
    assert_eq!(string(&kept), "kept across restarts");
    client.close().await;
    if let Backend::Embedded = backend {
        assert!(fixture.path("state/kv.redb").is_file());
    }
}

/// `wasi:keyvalue/atomics` and `batch` from a real component: counters add up atomically and
/// are kept apart from the notes; a batch read returns the notes asked for, in order.
async fn counters_and_batches_work_through_the_draft_interfaces(backend: Backend) {
    let fixture = fixture(backend, &notes("tally", "{}"));
    let client = fixture.client().await;
    let count = |by: Value| {
        let client = &client;
        async move {
            let text = ok_text(&client.call("tally__count", by).await);
            serde_json::from_str::<u64>(&text).unwrap_or_else(|_| panic!("a count: {text}"))
        }
    };
    assert_eq!(count(json!({"name": "visits"})).await, 1);
    assert_eq!(count(json!({"name": "visits", "by": 41})).await, 42);
    assert_eq!(count(json!({"name": "other"})).await, 1);
    for (title, text) in [("a", "A"), ("b", "B")] {
        ok_text(
            &client
                .call("tally__remember", json!({"title": title, "text": text}))
                .await,
        );
    }
    let many = ok_text(
        &client
            .call(
                "tally__recall_many",
                json!({"titles": ["b", "missing", "a"]}),
            )
            .await,
    );
    let many: Value = serde_json::from_str(&many).unwrap_or_else(|_| panic!("JSON: {many}"));
    assert_eq!(
        many,
        json!([{"title": "b", "text": "B"}, {"title": "a", "text": "A"}])
    );
    let listed = ok_text(&client.call("tally__list", json!({})).await);
    assert_eq!(titles(&listed), ["a", "b"], "counters are not notes");
    let refused = err_text(
        &client
            .call("tally__remember", json!({"title": "#visits", "text": "x"}))
            .await,
    );
    assert!(refused.contains("may not start with `#`"), "{refused}");
    client.close().await;
}

/// With `sync = INTERVAL` writes skip the `fsync`; a clean exit still makes them durable, long
/// before the interval is up. The cache is the test's own and the optimized build is held
/// back, so the server exits while that build still holds the store (as on a first start).
#[tokio::test]
async fn a_periodic_sync_keeps_the_writes_of_a_clean_exit() {
    let fixture = Fixture::new(&format!(
        "[cache]\ndir = \"{{dir}}/cache\"\n\n\
         [kv]\npath = \"{{dir}}/state/kv.redb\"\nsync = \"60s\"\n\n{}",
        notes("lazy", "{}")
    ));
    let client = fixture
        .client_env(&[("WARDEN_DELAY_OPTIMIZED_MS", "60000")])
        .await;
    for n in 0..3 {
        ok_text(
            &client
                .call(
                    "lazy__remember",
                    json!({"title": format!("t{n}"), "text": "kept"}),
                )
                .await,
        );
    }
    client.close().await;

    let client = fixture.client().await;
    let listed = ok_text(&client.call("lazy__list", json!({})).await);
    assert_eq!(titles(&listed), ["t0", "t1", "t2"]);
    client.close().await;
}

async fn the_audit_record_counts_kv_usage(backend: Backend) {
    let fixture = Fixture::new(&format!(
        "{}\n[audit]\npath = \"{{dir}}/audit/warden.jsonl\"\n\n{}",
        kv_section(backend),
        notes("audited", "{}")
    ));
    let client = fixture.client().await;
    ok_text(
        &client
            .call(
                "audited__remember",
                json!({"title": "t", "text": "0123456789"}),
            )
            .await,
    );
    ok_text(&client.call("audited__recall", json!({"title": "t"})).await);
    client.close().await;

    let log = std::fs::read_to_string(fixture.path("audit/warden.jsonl")).expect("audit log");
    let records: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON record"))
        .collect();
    let usage = |tool: &str| {
        records
            .iter()
            .find(|r| r["tool"] == tool)
            .unwrap_or_else(|| panic!("no record of {tool}: {log}"))["usage"]["kv"]
            .clone()
    };
    // remember: exists + set of 1 + 10 bytes.
    assert_eq!(
        usage("audited__remember"),
        json!({"ops": 2, "read_bytes": 0, "written_bytes": 11})
    );
    assert_eq!(
        usage("audited__recall"),
        json!({"ops": 1, "read_bytes": 10, "written_bytes": 0})
    );
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Backend::Embedded).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Backend::Redis).await;
                }
            )*
        }
    };
}

on_both_backends!(
    private_stores_are_invisible_to_other_plugins,
    a_shared_store_is_visible_to_each_plugin_that_names_it,
    limits_refuse_with_clear_errors_and_the_host_keeps_serving,
    values_survive_a_restart,
    the_audit_record_counts_kv_usage,
    counters_and_batches_work_through_the_draft_interfaces,
);

/// Two warden processes with one Redis see each other's writes to a shared store.
#[tokio::test]
async fn two_processes_share_a_store_through_redis() {
    let section = kv_section(Backend::Redis);
    let first = Fixture::new(&format!(
        "{section}\n{}",
        notes("one", "{ store = \"team\" }")
    ));
    let second = Fixture::new(&format!(
        "{section}\n{}",
        notes("two", "{ store = \"team\" }")
    ));
    let (a, b) = tokio::join!(first.client(), second.client());
    ok_text(
        &a.call(
            "one__remember",
            json!({"title": "from-one", "text": "hello two"}),
        )
        .await,
    );
    let seen = ok_text(&b.call("two__recall", json!({"title": "from-one"})).await);
    assert_eq!(string(&seen), "hello two");
    ok_text(
        &b.call(
            "two__remember",
            json!({"title": "from-two", "text": "hello one"}),
        )
        .await,
    );
    let seen = ok_text(&a.call("one__recall", json!({"title": "from-two"})).await);
    assert_eq!(string(&seen), "hello one");
    let listed = ok_text(&a.call("one__list", json!({})).await);
    assert_eq!(titles(&listed), ["from-one", "from-two"]);
    a.close().await;
    b.close().await;
}

/// An embedded store belongs to one process: a second warden on the same file serves, but
/// its store is unavailable, and its log says why and what to do. `warden check` beside a
/// serving warden works: nothing opens the file until a plugin uses it.
#[tokio::test]
async fn a_second_process_on_the_same_file_is_refused_clearly() {
    let fixture = fixture(Backend::Embedded, &notes("solo", "{}"));
    let first = fixture.client().await;
    ok_text(&first.call("solo__list", json!({})).await);

    let manifest = fixture.manifest.display().to_string();
    let (code, _, stderr) = common::warden(&["check", &manifest], fixture.dir.path());
    assert_eq!(code, 0, "check beside a serving warden: {stderr}");

    let second = fixture.client().await;
    let refused = err_text(&second.call("solo__list", json!({})).await);
    assert!(
        refused.contains("the key-value store is unavailable right now"),
        "{refused}"
    );
    assert!(
        !refused.contains("kv.redb"),
        "a host path reached the plugin: {refused}"
    );
    second
        .wait_until("the log line", |c| {
            c.stderr().contains("is open in another warden process")
        })
        .await;
    second.close().await;
    first.close().await;
}

/// A grant's directory may not expose the store's file.
#[test]
fn a_dirs_grant_may_not_expose_the_store_file() {
    let fixture = Fixture::new(
        "[kv]\npath = \"{dir}/state/kv.redb\"\n\n[plugins.peek]\ncomponent = \"{files}\"\n\
         dirs = [{ host = \"{dir}\", guest = \"/all\", mode = \"ro\" }]\n",
    );
    std::fs::create_dir_all(fixture.path("state")).expect("mkdir");
    let manifest = fixture.manifest.display().to_string();
    let (code, _, stderr) = common::warden(&["check", &manifest], fixture.dir.path());
    assert_ne!(code, 0);
    assert!(stderr.contains("the key-value store's file"), "{stderr}");
}

/// `warden check` describes kv grants and warns about unused grants and ungranted imports;
/// `warden inspect` says what a component importing wasi:keyvalue can be granted.
#[test]
fn check_and_inspect_describe_kv() {
    let fixture = Fixture::new(&format!(
        "{}{}{}[plugins.unused]\ncomponent = \"{{codec}}\"\nkv = {{}}\n",
        notes(
            "granted",
            "{ quota = \"10MiB\", max_keys = 10_000, max_value = \"1MiB\" }"
        ),
        notes("shared", "{ store = \"team\" }"),
        notes("bare", ""),
    ));
    let manifest = fixture.manifest.display().to_string();
    let (code, stdout, stderr) = common::warden(&["check", &manifest], fixture.dir.path());
    let out = format!("{stdout}{stderr}");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "grant kv    private store \"granted\", quota 10 MiB, max_keys 10000, max_value 1 MiB"
        ),
        "{out}"
    );
    assert!(out.contains("grant kv    shared store \"team\""), "{out}");
    assert!(out.contains("unused-grant:kv"), "{out}");
    assert!(out.contains("ungranted-import:keyvalue"), "{out}");

    let (code, stdout, _) = common::warden(&["check", "--json", &manifest], fixture.dir.path());
    assert_eq!(code, 0, "{stdout}");
    let report: Value = serde_json::from_str(&stdout).expect("check --json");
    let grants = |name: &str| {
        report["plugins"]
            .as_array()
            .and_then(|plugins| plugins.iter().find(|p| p["name"] == name))
            .map(|p| p["grants"]["kv"].clone())
            .unwrap_or_else(|| panic!("no plugin {name}: {stdout}"))
    };
    assert_eq!(
        grants("granted"),
        json!({"store": "granted", "shared": false, "quota": 10 << 20, "max_keys": 10_000, "max_value": 1 << 20})
    );
    assert_eq!(grants("shared")["store"], "team");
    assert_eq!(grants("shared")["shared"], true);
    assert_eq!(grants("bare"), Value::Null);

    let (code, stdout, _) = common::warden(
        &["inspect", &common::plugin("notes")],
        Path::new(env!("CARGO_TARGET_TMPDIR")),
    );
    assert_eq!(code, 0);
    assert!(
        stdout.contains("kv: a key-value store (wasi:keyvalue)"),
        "{stdout}"
    );
}

/// An unreachable Redis fails the plugin's operation with a plain message (no address, no
/// host detail), logs why for the operator, and the host keeps serving.
#[tokio::test]
async fn an_unreachable_redis_is_unavailable_to_the_plugin_and_logged() {
    let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let fixture = Fixture::new(&format!(
        "[kv]\nurl = \"redis://127.0.0.1:{closed}\"\n\n{}[plugins.codec]\ncomponent = \"{{codec}}\"\n",
        notes("lost", "{}")
    ));
    let client = fixture.client().await;
    let refused = err_text(&client.call("lost__list", json!({})).await);
    assert!(
        refused.contains("the key-value store is unavailable right now"),
        "{refused}"
    );
    assert!(!refused.contains(&closed.to_string()), "{refused}");
    client
        .wait_until("the log line", |c| c.stderr().contains("connect to Redis"))
        .await;
    let hashed = ok_text(
        &client
            .call(
                "codec__hash",
                json!({"algorithm": "sha256", "data": "hello"}),
            )
            .await,
    );
    assert!(hashed.contains("2cf24dba"), "{hashed}");
    client.close().await;
}

/// A kv grant on a component that imports wasi:keyvalue makes its tools writers: not
/// read-only, and not open-world. Without the grant they cannot write anything.
#[tokio::test]
async fn a_kv_grant_makes_the_tools_not_read_only() {
    let fixture = fixture(
        Backend::Embedded,
        &(notes("granted", "{}") + &notes("bare", "")),
    );
    let client = fixture.client().await;
    let tools = client.service.list_all_tools().await.expect("tools/list");
    let hints = |name: &str| {
        let tool = tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tool {name}"));
        let annotations = tool.annotations.clone().unwrap_or_default();
        (annotations.read_only_hint, annotations.open_world_hint)
    };
    assert_eq!(hints("granted__remember"), (Some(false), Some(false)));
    assert_eq!(hints("bare__remember"), (Some(true), Some(false)));
    client.close().await;
}
