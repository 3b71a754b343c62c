//! A cold start (empty compile cache) serves a plugin's tools at once: `warden serve` builds it
//! with the baseline compiler (Winch) first, then with Cranelift, and swaps the Cranelift
//! build in. The limits hold on the baseline build, and the cache only ever holds Cranelift
//! builds: exactly what a start without the baseline caches.
//!
//! `WARDEN_DELAY_OPTIMIZED_MS` holds the Cranelift builds back, so that a test observes calls
//! served by the baseline build whatever the machine's speed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{Client, Fixture, err_text, ok_text};
use serde_json::{Value, json};

/// The entries (`.cwasm`) in the cache directory `dir`, sorted.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(read) => read
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect(),
        Err(_) => Vec::new(),
    };
    entries.sort();
    entries
}

/// The Python example, built once (the script skips an up-to-date build).
fn textstats() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("host/ is in the repository")
            .to_path_buf();
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("polyglot");
        let output = Command::new("bash")
            .arg(root.join("plugins/python/build.sh"))
            .arg("textstats")
            .env("WARDEN", env!("CARGO_BIN_EXE_warden"))
            .env("WARDEN_TOOLCHAINS", root.join("target/toolchains"))
            .env("WARDEN_POLYGLOT_OUT", &out)
            .output()
            .expect("bash plugins/python/build.sh");
        assert!(
            output.status.success(),
            "plugins/python/build.sh textstats failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        out.join("textstats.wasm")
    })
}

/// The JSON of a successful call's text.
fn structured(result: &rmcp::model::CallToolResult) -> Value {
    serde_json::from_str(&ok_text(result)).expect("a JSON result")
}

/// A manifest serving the Python example from an empty cache (`cache` adds to its `[cache]`),
/// with `/data/notes.txt` granted read-only.
fn textstats_fixture(cache: &str) -> Fixture {
    let fixture = Fixture::new(&format!(
        r#"
[cache]
dir = "{{dir}}/cache"
{cache}
[plugins.textstats]
component = "{}"
dirs = [{{ host = "{{dir}}/data", guest = "/data", mode = "ro" }}]
"#,
        textstats().display()
    ));
    std::fs::create_dir_all(fixture.path("data")).expect("data");
    std::fs::write(
        fixture.path("data/notes.txt"),
        "The cat and the hat.\nthe end\n",
    )
    .expect("notes");
    fixture
}

async fn text_stats(client: &Client) -> Value {
    structured(
        &client
            .call(
                "textstats__text_stats",
                json!({"path": "/data/notes.txt", "top": 2}),
            )
            .await,
    )
}

#[tokio::test]
async fn a_cold_python_plugin_is_callable_before_its_optimized_build_exists_and_after_the_swap() {
    let fixture = textstats_fixture("");
    let client = fixture
        .client_env(&[("WARDEN_DELAY_OPTIMIZED_MS", "20000")])
        .await;

    let tools = client.tool_names().await;
    assert!(
        tools.iter().any(|t| t == "textstats__text_stats"),
        "{tools:?}"
    );
    let first = text_stats(&client).await;
    assert_eq!(first["lines"], 2);
    assert_eq!(first["words"], 7);
    assert_eq!(
        first["top_words"],
        json!([{"word": "the", "count": 3}, {"word": "and", "count": 1}])
    );
    // Served by the baseline build: the optimized one is not even in the cache yet.
    assert!(
        entries(&fixture.path("cache")).is_empty(),
        "{:?}",
        entries(&fixture.path("cache"))
    );
    common::assert_logged(&client.stderr(), common::ON_BASELINE);

    client
        .wait_until("the Cranelift build", |c| {
            c.stderr().contains("plugin ready")
        })
        .await;
    assert_eq!(entries(&fixture.path("cache")).len(), 1);
    assert_eq!(text_stats(&client).await, first);
    client.close().await;
}

#[tokio::test]
async fn the_limits_hold_on_the_baseline_build() {
    let fixture = Fixture::new(&format!(
        "[cache]\ndir = \"{{dir}}/cache\"\n{}",
        common::LIMITED_TESTBEDS
    ));
    std::fs::create_dir(fixture.path("run")).expect("run dir");
    let run = fixture.path("run").display().to_string();
    let client = fixture
        .client_env(&[
            ("WARDEN_DELAY_OPTIMIZED_MS", "60000"),
            ("XDG_RUNTIME_DIR", run.as_str()),
        ])
        .await;

    common::assert_limits_stop_runaways(&client).await;

    // All of that ran on the baseline build: nothing optimized exists yet.
    assert!(entries(&fixture.path("cache")).is_empty());
    let stderr = client.stderr();
    common::assert_logged(&stderr, common::ON_BASELINE);
    assert!(!stderr.contains("plugin ready"), "{stderr}");
    // `warden status` says so.
    let status = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["status", "--json", "-m"])
        .arg(&fixture.manifest)
        .env("XDG_RUNTIME_DIR", &run)
        .output()
        .expect("warden status");
    let servers: Value = serde_json::from_slice(&status.stdout).expect("status --json");
    let states: Vec<&Value> = servers[0]["plugins"]
        .as_array()
        .unwrap_or_else(|| panic!("{servers:#}\n{}", String::from_utf8_lossy(&status.stderr)))
        .iter()
        .map(|p| &p["state"])
        .collect();
    assert_eq!(
        states,
        [&json!("baseline"), &json!("baseline")],
        "{servers:#}"
    );
    client.close().await;
}

/// A manifest serving codec with its own cache under a shared key, the baseline on or off.
fn codec_fixture(baseline: bool) -> Fixture {
    Fixture::new(&format!(
        r#"
[cache]
dir = "{{dir}}/cache"
key = "a shared test key of more than thirty-two characters"
baseline = {baseline}

[plugins.codec]
component = "{{codec}}"
"#
    ))
}

/// Start a server on `fixture`, call codec once, wait for its Cranelift build, stop.
async fn serve_until_compiled(fixture: &Fixture) -> String {
    let client = fixture.client().await;
    let hashed = ok_text(
        &client
            .call(
                "codec__hash",
                json!({"algorithm": "sha256", "data": "hello"}),
            )
            .await,
    );
    assert!(
        hashed.contains("2cf24dba5fb0a30e26e83b2ac5b9e29e"),
        "{hashed}"
    );
    client
        .wait_until("the plugin to be ready", |c| {
            c.stderr().contains("plugin ready")
        })
        .await;
    let stderr = client.stderr();
    client.close().await;
    stderr
}

#[tokio::test]
async fn the_cache_holds_only_cranelift_builds() {
    let with = codec_fixture(true);
    let without = codec_fixture(false);

    let log = serve_until_compiled(&with).await;
    common::assert_logged(&log, common::ON_BASELINE);
    let log = serve_until_compiled(&without).await;
    assert!(!log.contains("baseline build"), "{log}");

    // The same key, the same component: a start that went through the baseline wrote exactly
    // the entry (name and bytes) of a start that never built one.
    let (with_entries, without_entries) = (
        entries(&with.path("cache")),
        entries(&without.path("cache")),
    );
    assert_eq!(with_entries.len(), 1, "{with_entries:?}");
    assert_eq!(without_entries.len(), 1, "{without_entries:?}");
    assert_eq!(with_entries[0].file_name(), without_entries[0].file_name());
    assert!(
        std::fs::read(&with_entries[0]).expect("entry")
            == std::fs::read(&without_entries[0]).expect("entry"),
        "the entries differ"
    );

    // A warm start loads that entry and builds nothing.
    let log = serve_until_compiled(&with).await;
    assert!(
        log.contains("source=\"cache\"") || log.contains("source=cache"),
        "{log}"
    );
    assert!(!log.contains("baseline build"), "{log}");
    assert_eq!(entries(&with.path("cache")).len(), 1);
}

/// One component (codec) served as three plugins, the third with a tiny fuel budget, from an
/// empty cache, with or without the baseline builds.
fn three_codecs(baseline: bool) -> Fixture {
    Fixture::new(&format!(
        r#"
[cache]
dir = "{{dir}}/cache"
baseline = {baseline}

[plugins.a]
component = "{{codec}}"

[plugins.b]
component = "{{codec}}"

[plugins.c]
component = "{{codec}}"
fuel = 1000
"#
    ))
}

/// [`three_codecs`]' plugins share their code but not their settings: `a` and `b` hash, `c`
/// runs out of fuel.
async fn each_keeps_its_own_fuel(client: &Client) {
    let hash = json!({"algorithm": "sha256", "data": "hello"});
    for tool in ["a__hash", "b__hash"] {
        let hashed = ok_text(&client.call(tool, hash.clone()).await);
        assert!(hashed.contains("2cf24dba5fb0a30e"), "{tool}: {hashed}");
    }
    let starved = err_text(&client.call("c__hash", hash).await);
    assert!(starved.contains("fuel"), "{starved}");
}

/// One component served as three plugins is read or compiled once and its code held once
/// (the cache's round), while each plugin keeps its own settings: the one with a tiny fuel
/// budget runs out, the others do not.
#[tokio::test]
async fn one_component_served_as_three_plugins_is_compiled_once() {
    let fixture = three_codecs(false);
    let client = fixture.client().await;
    client
        .wait_until("the three plugins to be ready", |c| {
            c.stderr().matches("plugin ready").count() == 3
        })
        .await;
    each_keeps_its_own_fuel(&client).await;
    let log = client.stderr();
    assert_eq!(log.matches("compiling plugin").count(), 1, "{log}");
    assert_eq!(log.matches("source=\"cache\"").count(), 2, "{log}");
    assert_eq!(entries(&fixture.path("cache")).len(), 1);
    client.close().await;
}

/// On a cold cache with the baseline on, one component served as three plugins is built once
/// by Winch too (the test above: once by Cranelift): the three plugins' calls run on one
/// baseline build, each with its own settings (the one with a tiny fuel budget runs out).
#[tokio::test]
async fn one_component_served_as_three_plugins_is_built_once_by_the_baseline_compiler() {
    let fixture = three_codecs(true);
    let client = fixture
        .client_env(&[("WARDEN_DELAY_OPTIMIZED_MS", "60000")])
        .await;
    each_keeps_its_own_fuel(&client).await;
    let log = client.stderr();
    assert!(
        !log.contains("plugin ready"),
        "not on the baseline builds: {log}"
    );
    assert_eq!(log.matches(common::ON_BASELINE).count(), 3, "{log}");
    assert_eq!(log.matches("source=\"built\"").count(), 1, "{log}");
    assert_eq!(log.matches("source=\"shared\"").count(), 2, "{log}");
    client.close().await;
}

#[tokio::test]
async fn a_call_waits_a_bounded_time_for_a_compiling_plugin_and_says_why() {
    // Without the baseline build, a cold Python plugin takes seconds of Cranelift; the call
    // gives up after the (shortened) wait with a plain message, and the server keeps going.
    let fixture = textstats_fixture("baseline = false\n");
    let client = fixture
        .client_env(&[("WARDEN_COMPILE_WAIT_MS", "300")])
        .await;

    let started = std::time::Instant::now();
    let waited = client
        .call(
            "textstats__text_stats",
            json!({"path": "/data/notes.txt", "top": 2}),
        )
        .await;
    let message = err_text(&waited);
    assert!(
        message.contains("`textstats` is still being compiled") && message.contains("300ms"),
        "{message}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(entries(&fixture.path("cache")).is_empty());

    client
        .wait_until("the Cranelift build", |c| {
            c.stderr().contains("plugin ready")
        })
        .await;
    assert_eq!(text_stats(&client).await["words"], 7);
    client.close().await;
}
