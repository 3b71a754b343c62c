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
    Fixture::new(
        r#"
[plugins.testbed]
component = "{testbed}"
fuel = 200_000_000
memory = "32MiB"
timeout = "20s"

[plugins.slow]
component = "{testbed}"
fuel = 9_000_000_000_000_000_000
timeout = "300ms"
"#,
    )
}

#[tokio::test]
async fn runaway_plugins_are_stopped_and_the_server_keeps_serving() {
    let fixture = limits_fixture();
    let client = fixture.client().await;
    let healthy = || client.call("testbed__env", json!({"name": "NOPE"}));

    let fuel = client.call("testbed__spin", json!({})).await;
    assert!(
        err_text(&fuel).contains("CPU budget"),
        "{}",
        err_text(&fuel)
    );
    ok_text(&healthy().await);

    let started = std::time::Instant::now();
    let timeout = client.call("slow__spin", json!({})).await;
    assert!(
        err_text(&timeout).contains("time limit"),
        "{}",
        err_text(&timeout)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    ok_text(&healthy().await);

    let memory = client
        .call("testbed__allocate", json!({"mebibytes": 1024}))
        .await;
    assert!(
        err_text(&memory).contains("memory limit"),
        "{}",
        err_text(&memory)
    );
    ok_text(&healthy().await);

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
