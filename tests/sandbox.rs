//! The sandbox holds: files only under grants, read-only means read-only, and a plugin that
//! loops, allocates, panics or overflows is stopped cleanly while the server keeps serving.

mod common;

use common::{Fixture, err_text, ok_text};
use serde_json::json;

fn fs_fixture() -> Fixture {
    let fixture = Fixture::new(
        r#"
[plugins.testbed]
component = "{testbed}"
dirs = [
  { host = "{dir}/data", guest = "/data", mode = "ro" },
  { host = "{dir}/scratch", guest = "/scratch", mode = "rw" },
]
"#,
    );
    std::fs::create_dir_all(fixture.path("data/sub")).expect("mkdir");
    std::fs::create_dir_all(fixture.path("scratch")).expect("mkdir");
    std::fs::write(fixture.path("data/hello.txt"), "hello from the host\n").expect("write");
    std::fs::write(fixture.path("secret.txt"), "TOP SECRET").expect("write");
    std::os::unix::fs::symlink(fixture.path("secret.txt"), fixture.path("data/escape"))
        .expect("symlink");
    fixture
}

#[tokio::test]
async fn files_are_confined_to_their_grants() {
    let fixture = fs_fixture();
    let client = fixture.client().await;

    let read = client
        .call("testbed__read_file", json!({"path": "/data/hello.txt"}))
        .await;
    assert_eq!(ok_text(&read), "hello from the host\n");

    for path in [
        "/data/../secret.txt",
        "/data/sub/../../secret.txt",
        "../secret.txt",
        "/secret.txt",
        "/etc/passwd",
        fixture.path("secret.txt").to_str().expect("utf-8"),
        "/data/escape",
    ] {
        let result = client
            .call("testbed__read_file", json!({ "path": path }))
            .await;
        let message = err_text(&result);
        assert!(
            !message.contains("TOP SECRET"),
            "{path} leaked the secret: {message}"
        );
        assert!(!message.is_empty(), "{path}: refusal should say why");
    }

    let write = client
        .call(
            "testbed__write_file",
            json!({"path": "/data/new.txt", "content": "x"}),
        )
        .await;
    err_text(&write);
    assert!(
        !fixture.path("data/new.txt").exists(),
        "a read-only grant was written to"
    );

    let write = client
        .call(
            "testbed__write_file",
            json!({"path": "/scratch/new.txt", "content": "written"}),
        )
        .await;
    ok_text(&write);
    assert_eq!(
        std::fs::read_to_string(fixture.path("scratch/new.txt")).expect("read"),
        "written"
    );

    let list = client
        .call("testbed__list_dir", json!({"path": "/data"}))
        .await;
    let listing = ok_text(&list);
    assert!(
        listing.contains("hello.txt") && !listing.contains("secret"),
        "{listing}"
    );
    client.close().await;
}

fn limits_fixture() -> Fixture {
    Fixture::new(common::LIMITED_TESTBEDS)
}

#[tokio::test]
async fn runaway_plugins_are_stopped_and_the_server_keeps_serving() {
    let fixture = limits_fixture();
    let client = fixture.client().await;
    let healthy = || client.call("testbed__env", json!({"name": "NOPE"}));
    common::assert_limits_stop_runaways(&client).await;

    let panic = client
        .call("testbed__panic", json!({"message": "boom"}))
        .await;
    assert!(err_text(&panic).contains("crashed"), "{}", err_text(&panic));
    ok_text(&healthy().await);

    let overflow = client
        .call("testbed__recurse", json!({"depth": 100_000_000u64}))
        .await;
    let message = err_text(&overflow);
    assert!(
        message.contains("stack") || message.contains("crashed"),
        "{message}"
    );
    ok_text(&healthy().await);

    let small = client
        .call("testbed__allocate", json!({"mebibytes": 4}))
        .await;
    ok_text(&small);
    client.close().await;
}

#[tokio::test]
async fn only_declared_environment_variables_are_visible() {
    let fixture = Fixture::new(
        r#"
[plugins.testbed]
component = "{testbed}"
env = { GREETING = "hello" }
"#,
    );
    // SAFETY: set before any thread of this test reads the environment; the child inherits it.
    unsafe { std::env::set_var("WARDEN_TEST_HOST_SECRET", "do-not-leak") };
    let client = fixture.client().await;
    let all = client.call("testbed__env_all", json!({})).await;
    let listing = ok_text(&all);
    assert!(
        listing.contains("GREETING") && listing.contains("hello"),
        "{listing}"
    );
    assert!(
        !listing.contains("WARDEN_TEST_HOST_SECRET") && !listing.contains("PATH"),
        "{listing}"
    );
    let one = client
        .call("testbed__env", json!({"name": "WARDEN_TEST_HOST_SECRET"}))
        .await;
    assert!(!ok_text(&one).contains("do-not-leak"));
    client.close().await;
}

// --- Write quotas (hardening part: quota) ------------------------------------------------------

/// The ways `fill-dir` writes bytes, and the ways it creates entries.
const BYTE_METHODS: [&str; 4] = ["stream", "pwrite", "append", "set-size"];
const ENTRY_METHODS: [&str; 5] = ["stream", "pwrite", "mkdir", "symlink", "link"];

/// `testbed` with one `rw` grant per method at `/METHOD` (64KiB and 5 files per call), and
/// `roomy`, the same component with a default `rw` grant.
fn quota_fixture() -> Fixture {
    let grants: String = BYTE_METHODS
        .iter()
        .chain(&ENTRY_METHODS)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|m| {
            format!(
                "  {{ host = \"{{dir}}/{m}\", guest = \"/{m}\", mode = \"rw\", max_write = \"64KiB\", max_files = 5 }},\n"
            )
        })
        .collect();
    let fixture = Fixture::new(&format!(
        "[plugins.testbed]\ncomponent = \"{{testbed}}\"\ndirs = [\n{grants}]\n\n\
         [plugins.roomy]\ncomponent = \"{{testbed}}\"\n\
         dirs = [{{ host = \"{{dir}}/roomy\", guest = \"/roomy\", mode = \"rw\" }}]\n"
    ));
    for method in BYTE_METHODS.iter().chain(&ENTRY_METHODS).chain(&["roomy"]) {
        std::fs::create_dir_all(fixture.path(method)).expect("mkdir");
    }
    fixture
}

fn fill(dir: &str, method: &str, count: u32, bytes: u32) -> serde_json::Value {
    json!({"dir": dir, "method": method, "count": count, "bytes": bytes})
}

/// The names in `dir` and the total size of its regular files.
fn on_disk(dir: &std::path::Path) -> (usize, u64) {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|entry| entry.expect("entry"))
        .collect();
    let bytes = entries
        .iter()
        .filter_map(|entry| std::fs::symlink_metadata(entry.path()).ok())
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len())
        .sum();
    (entries.len(), bytes)
}

#[tokio::test]
async fn write_quotas_hold_for_every_way_of_writing() {
    let fixture = quota_fixture();
    let client = fixture.client().await;

    // Bytes: one file larger than the grant's 64KiB, written each way, stops at the limit
    // with insufficient-space inside the plugin; the call ends cleanly.
    for method in BYTE_METHODS {
        let dir = format!("/{method}");
        let result = client
            .call("testbed__fill_dir", fill(&dir, method, 1, 1 << 20))
            .await;
        let message = err_text(&result);
        assert!(message.starts_with("after 0: "), "{method}: {message}");
        // A failed stream write is `last-operation-failed`, whose `filesystem-error-code` is
        // insufficient-space (the `append` writer asks for it); Rust's std, through
        // wasi-libc, does not ask and reports an I/O error.
        if method != "stream" {
            assert!(
                message.contains("insufficient-space"),
                "{method}: the plugin should see insufficient-space: {message}"
            );
        }
        let (_, bytes) = on_disk(&fixture.path(method));
        assert!(
            bytes <= 64 << 10,
            "{method}: {bytes} bytes reached the disk"
        );
    }

    // Bytes add up across files: 30KiB twice fits in 64KiB, a third does not.
    let result = client
        .call("testbed__fill_dir", fill("/pwrite", "pwrite", 3, 30 << 10))
        .await;
    assert!(
        err_text(&result).starts_with("after 2: "),
        "{}",
        err_text(&result)
    );

    // Entries: files, directories, symlinks and hard links all count; the sixth fails.
    for method in ENTRY_METHODS {
        let dir = format!("/{method}");
        // `stream` and `pwrite` already hold files from the byte checks above: start clean.
        for entry in std::fs::read_dir(fixture.path(method)).expect("read_dir") {
            let path = entry.expect("entry").path();
            std::fs::remove_file(&path).expect("clean");
        }
        let result = client
            .call("testbed__fill_dir", fill(&dir, method, 50, 1))
            .await;
        let message = err_text(&result);
        assert!(message.starts_with("after 5: "), "{method}: {message}");
        assert!(
            message.to_lowercase().contains("space"),
            "{method}: the plugin should see insufficient-space: {message}"
        );
        assert_eq!(on_disk(&fixture.path(method)).0, 5, "{method}");
    }

    // Quotas are per call: the next call of the same plugin gets its own, and rewriting the
    // files that exist creates nothing.
    let again = client
        .call("testbed__fill_dir", fill("/stream", "stream", 10, 1))
        .await;
    assert_eq!(ok_text(&again), "10");
    assert_eq!(on_disk(&fixture.path("stream")).0, 10);

    // Other plugins and tools are unaffected, and the default quota leaves room for normal
    // work: 8 files of 1MiB.
    let roomy = client
        .call("roomy__fill_dir", fill("/roomy", "stream", 8, 1 << 20))
        .await;
    assert_eq!(ok_text(&roomy), "8");
    assert_eq!(on_disk(&fixture.path("roomy")), (8, 8 << 20));
    let env = client.call("testbed__env", json!({"name": "NOPE"})).await;
    ok_text(&env);

    assert!(
        client.stderr().contains("write quota exceeded"),
        "the host should log the refusal"
    );
    client.close().await;
}

#[tokio::test]
async fn the_default_quota_stops_a_file_flood() {
    let fixture = Fixture::new(
        r#"
[plugins.testbed]
component = "{testbed}"
dirs = [{ host = "{dir}/scratch", guest = "/scratch", mode = "rw" }]
"#,
    );
    std::fs::create_dir_all(fixture.path("scratch")).expect("mkdir");
    let client = fixture.client().await;
    let flood = client
        .call("testbed__fill_dir", fill("/scratch", "stream", 20_000, 0))
        .await;
    let message = err_text(&flood);
    assert!(message.starts_with("after 1000: "), "{message}");
    assert_eq!(on_disk(&fixture.path("scratch")).0, 1000);
    let next = client
        .call(
            "testbed__write_file",
            json!({"path": "/scratch/f0", "content": "still works"}),
        )
        .await;
    ok_text(&next);
    client.close().await;
}
