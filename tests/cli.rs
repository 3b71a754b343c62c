//! The command line: `check` and `serve` refuse bad manifests pointing at the line to fix,
//! `inspect` shows a component's tools and needs, `call` runs one tool through the gate.

mod common;

use common::{Fixture, plugin, warden};
use serde_json::Value;

/// `warden check` and `warden serve` both refuse `body`, naming `line` and `needle`.
fn refused(body: &str, line: usize, needle: &str) {
    let fixture = Fixture::new(body);
    let manifest = fixture.manifest.to_str().expect("utf-8");
    // The harness adds a two-line [cache] section and a blank line before `body`.
    let line = line + 3;
    for args in [
        vec!["check", manifest],
        vec!["serve", "--manifest", manifest],
    ] {
        let (code, _, stderr) = warden(&args, fixture.dir.path());
        assert_ne!(code, 0, "{args:?} accepted a bad manifest:\n{body}");
        assert!(
            stderr.contains(&format!("warden.toml:{line}:")),
            "{args:?}: expected line {line} in:\n{stderr}"
        );
        assert!(
            stderr.contains(needle),
            "{args:?}: expected `{needle}` in:\n{stderr}"
        );
    }
}

#[test]
fn unknown_key_is_refused_with_its_line() {
    refused(
        "[plugins.codec]\ncomponent = \"{codec}\"\nmemroy = \"64MiB\"\n",
        3,
        "memroy",
    );
}

#[test]
fn missing_component_file_is_refused_with_its_line() {
    refused(
        "[plugins.codec]\ncomponent = \"{dir}/nope.wasm\"\n",
        2,
        "nope.wasm",
    );
}

#[test]
fn malformed_limit_is_refused_with_its_line() {
    refused(
        "[plugins.codec]\ncomponent = \"{codec}\"\nmemory = \"lots\"\n",
        3,
        "lots",
    );
}

#[test]
fn duplicate_tool_names_are_refused() {
    refused(
        "[plugins.codec]\ncomponent = \"{codec}\"\n\n[plugins.other]\ncomponent = \"{codec}\"\nprefix = \"codec\"\n",
        4,
        "already used",
    );
}

#[test]
fn check_lists_tools_and_grants_of_a_good_manifest() {
    let fixture = Fixture::new(
        "[plugins.files]\ncomponent = \"{files}\"\ndirs = [{ host = \"{dir}\", guest = \"/data\" }, { host = \"{dir}/out\", guest = \"/out\", mode = \"rw\", max_write = \"1MiB\", max_files = 10 }]\n\n[plugins.codec]\ncomponent = \"{codec}\"\n",
    );
    std::fs::create_dir(fixture.path("out")).expect("out");
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let (code, stdout, stderr) = warden(&["check", manifest], fixture.dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ok, 2 plugin(s)"), "{stdout}");
    assert!(stdout.contains("files__read_text"), "{stdout}");
    assert!(stdout.contains("grant dir"), "{stdout}");
    assert!(
        stdout.contains("/out (rw, at most 1MiB written and 10 files created per call)"),
        "{stdout}"
    );
}

#[test]
fn check_summarises_http_and_auth_and_refuses_unusable_tls_files() {
    let digest = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881";
    let fixture = Fixture::new(&format!(
        "[http]\nlisten = \"127.0.0.1:8443\"\nmax_connections = 100\nmax_sessions = 7\nidle_timeout = \"30s\"\n\n[[auth.api_keys]]\nprincipal = \"ci-bot\"\nroles = [\"reader\"]\nsha256 = \"{digest}\"\n\n[plugins.codec]\ncomponent = \"{{codec}}\"\n"
    ));
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let (code, stdout, stderr) = warden(&["check", manifest], fixture.dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("http: listen 127.0.0.1:8443, no TLS"),
        "{stdout}"
    );
    assert!(stdout.contains("auth: 1 API key(s) (ci-bot)"), "{stdout}");
    assert!(
        stdout.contains(
            "http limits: connections 100 (32 per client), sessions 7 (7 per principal), \
             client info 8KiB; timeouts: header 10s, idle 30s, TLS handshake 10s"
        ),
        "{stdout}"
    );

    // TLS files that exist but hold no certificate or key fail the check, not the first start.
    std::fs::write(fixture.path("cert.pem"), "not a certificate").expect("write");
    let text = std::fs::read_to_string(&fixture.manifest).expect("manifest");
    let text = text.replace(
        "[http]\n",
        "[http]\ntls = { cert = \"cert.pem\", key = \"cert.pem\" }\n",
    );
    std::fs::write(&fixture.manifest, text).expect("write");
    let (code, _, stderr) = warden(&["check", manifest], fixture.dir.path());
    assert_ne!(code, 0);
    assert!(
        stderr.contains("[http] tls: cannot read the certificate chain"),
        "{stderr}"
    );
}

#[test]
fn inspect_shows_tools_schemas_and_needed_grants() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stdout, stderr) = warden(&["inspect", "--json", &plugin("files")], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("inspect --json prints JSON");
    let tools = report["tools"].as_array().expect("tools");
    let read = tools
        .iter()
        .find(|t| t["function"] == "read-text")
        .expect("read-text is listed");
    assert_eq!(read["name"], "files__read_text");
    assert_eq!(read["inputSchema"]["properties"]["path"]["type"], "string");
    assert!(read["description"].as_str().is_some_and(|d| !d.is_empty()));
    let grants = report["grants"].to_string();
    assert!(grants.contains("dirs"), "{grants}");

    let (code, stdout, _) = warden(&["inspect", "--json", &plugin("codec")], dir.path());
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    assert!(
        !report["grants"].to_string().contains("dirs"),
        "codec needs no files: {report}"
    );
}

#[test]
fn call_runs_one_tool_and_reports_errors_by_exit_code() {
    let fixture = Fixture::new(
        "[plugins.files]\ncomponent = \"{files}\"\ndirs = [{ host = \"{dir}/data\", guest = \"/data\" }]\n",
    );
    std::fs::create_dir_all(fixture.path("data")).expect("mkdir");
    std::fs::write(fixture.path("data/a.txt"), "alpha").expect("write");
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let (code, stdout, stderr) = warden(
        &[
            "call",
            "--manifest",
            manifest,
            "files__read_text",
            r#"{"path": "/data/a.txt"}"#,
        ],
        fixture.dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    let result: Value = serde_json::from_str(&stdout).expect("JSON result");
    assert_eq!(result["content"][0]["text"], "alpha");

    let (code, stdout, _) = warden(
        &[
            "call",
            "--manifest",
            manifest,
            "files__read_text",
            r#"{"path": "/data/missing.txt"}"#,
        ],
        fixture.dir.path(),
    );
    assert_eq!(code, 1);
    let result: Value = serde_json::from_str(&stdout).expect("JSON result");
    assert_eq!(result["isError"], true);

    let (code, _, stderr) = warden(
        &[
            "call",
            "--manifest",
            manifest,
            "files__read_text",
            "not json",
        ],
        fixture.dir.path(),
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("not valid JSON"), "{stderr}");
}

// --- Distribution: the version, the container image's layout, the systemd manifest -----------

/// The workspace root (the tests' manifest directory is `host/`).
fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is in the workspace")
        .to_path_buf()
}

/// `git ARGS` in the checkout, or `None` outside one.
fn git(args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(repo_root())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[test]
fn version_names_the_commit_of_the_checkout() {
    let (code, stdout, stderr) = warden(&["--version"], &repo_root());
    assert_eq!(code, 0, "{stderr}");
    let version = format!("warden {}", env!("CARGO_PKG_VERSION"));
    match (
        git(&["rev-parse", "--short", "HEAD"]),
        git(&["log", "-1", "--format=%cs"]),
    ) {
        // `warden 0.1.0 (7cb0fdd 2026-11-27)`, or `(7cb0fdd-dirty 2026-11-27)`
        (Some(head), Some(date)) => {
            let line = stdout.trim_end();
            let clean = format!("{version} ({head} {date})");
            let dirty = format!("{version} ({head}-dirty {date})");
            assert!(
                line == clean || line == dirty,
                "expected `{clean}` in: {stdout}"
            );
        }
        _ => assert!(stdout.starts_with(&version), "{stdout}"),
    }
}

/// The command prefix that runs a program as `nobody` (65534) when the tests run as root
/// and `setpriv` is installed, as the image runs warden as its own unprivileged user.
fn as_nobody() -> Option<[&'static str; 5]> {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let setpriv = std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    (root && setpriv).then_some([
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
    ])
}

/// The container image without a container: its files laid out by `contrib/docker/layout.sh`
/// (as the Dockerfile's build stage does), its volumes given to an unprivileged user, its
/// manifest checked, its command (`serve --http 0.0.0.0:PORT`) run as that user, its health
/// check script, and a real MCP session with the key `warden keygen` made. Paths come from the
/// manifest's environment overrides (`WARDEN_PLUGINS`...).
#[tokio::test]
async fn the_container_layout_serves_http_with_a_key_as_non_root() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use tokio::io::AsyncBufReadExt;

    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("root");
    let status = std::process::Command::new("bash")
        .arg(repo_root().join("contrib/docker/layout.sh"))
        .arg(&root)
        .arg(env!("CARGO_BIN_EXE_warden"))
        .arg(common::plugin_dir())
        .status()
        .expect("run layout.sh");
    assert!(status.success(), "layout.sh failed");
    let nobody = as_nobody();
    if nobody.is_some() {
        // The Dockerfile's `chown warden:warden /var/cache/warden /var/log/warden`.
        let status = std::process::Command::new("chown")
            .arg("65534:65534")
            .arg(root.join("var/cache/warden"))
            .arg(root.join("var/log/warden"))
            .status()
            .expect("chown");
        assert!(status.success());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let path = |p: &str| root.join(p).display().to_string();
    let bin = path("usr/local/bin/warden");
    let manifest = path("etc/warden/warden.toml");
    let overrides = [
        ("WARDEN_PLUGINS", path("usr/share/warden/plugins")),
        ("WARDEN_WORKSPACE", path("workspace")),
        ("WARDEN_CACHE_DIR", path("var/cache/warden")),
        ("WARDEN_AUDIT_DIR", path("var/log/warden")),
    ];
    // `docker run IMAGE ARGS`: the image's user, working directory and environment.
    let command = |args: &[&str], key_sha256: Option<&str>| {
        let mut command = match nobody {
            Some(prefix) => {
                let mut command = tokio::process::Command::new(prefix[0]);
                command.args(&prefix[1..]).arg(&bin);
                command
            }
            None => tokio::process::Command::new(&bin),
        };
        command
            .args(args)
            .current_dir(root.join("etc/warden"))
            .envs(overrides.iter().map(|(k, v)| (*k, v)))
            .env_remove("WARDEN_API_KEY_SHA256")
            .env_remove("WARDEN_HOST")
            .env_remove("WARDEN_PRINCIPAL")
            // `--read-only`: nothing but the volumes is writable, /tmp included.
            .env("TMPDIR", root.join("tmp-is-read-only"))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(sha256) = key_sha256 {
            command.env("WARDEN_API_KEY_SHA256", sha256);
        }
        command
    };
    let run = |args: &[&str], key_sha256: Option<&str>| {
        let mut command = command(args, key_sha256);
        async move {
            let output = command.output().await.expect("run warden");
            (
                output.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
    };

    // `docker run --rm warden keygen`
    let (code, keygen, stderr) = run(&["keygen", "--principal", "agent"], None).await;
    assert_eq!(code, 0, "{stderr}");
    let key = keygen.lines().next().expect("key line").to_owned();
    let sha256 = keygen
        .lines()
        .find_map(|line| line.strip_prefix("sha256 = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no sha256 line in:\n{keygen}"))
        .to_owned();

    // No key, no server: the safe default names what to set.
    let (code, _, stderr) = run(&["check"], None).await;
    assert_ne!(code, 0, "the image's manifest was accepted without a key");
    assert!(stderr.contains("WARDEN_API_KEY_SHA256"), "{stderr}");
    // `docker run warden check` (the working directory holds the manifest).
    let (code, stdout, stderr) = run(&["check"], Some(&sha256)).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for tool in ["files__", "codec__", "fetch__"] {
        assert!(stdout.contains(tool), "{tool} missing from:\n{stdout}");
    }

    // The image's command, on a free port.
    let mut child = command(
        &["serve", "--http", "0.0.0.0:0", "--manifest", &manifest],
        Some(&sha256),
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn warden serve");
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (found, listening) = tokio::sync::oneshot::channel::<String>();
    let collected = log.clone();
    let stderr = child.stderr.take().expect("stderr");
    tokio::spawn(async move {
        let mut found = Some(found);
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("warden: listening on ")
                && let Some(found) = found.take()
            {
                let _ = found.send(url.to_owned());
            }
            collected
                .lock()
                .expect("lock")
                .push_str(&format!("{line}\n"));
        }
    });
    let url = tokio::time::timeout(std::time::Duration::from_secs(120), listening)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("warden did not listen:\n{}", log.lock().expect("lock")));
    assert!(url.starts_with("http://0.0.0.0:"), "{url}");
    let url = url.replace("0.0.0.0", "127.0.0.1");
    let base = url.trim_end_matches("/mcp").to_owned();
    let port = base.rsplit(':').next().expect("port").to_owned();
    let server = common::HttpServer {
        child,
        url,
        base,
        stderr: log,
    };

    // HEALTHCHECK CMD ["warden-healthcheck", "8080"]
    let health = tokio::process::Command::new(path("usr/local/bin/warden-healthcheck"))
        .arg(&port)
        .status()
        .await
        .expect("run warden-healthcheck");
    assert!(
        health.success(),
        "health check failed:\n{}",
        server.stderr()
    );

    // Without the key: 401, through a port mapping (`Host: localhost`) as directly; a Host
    // that is not WARDEN_HOST's default: 403.
    for (host, status) in [
        (format!("127.0.0.1:{port}"), 401),
        (format!("localhost:{port}"), 401),
        (format!("mcp.example.com:{port}"), 403),
    ] {
        let refused = reqwest::Client::new()
            .post(&server.url)
            .header("host", &host)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
            .send()
            .await
            .expect("HTTP request");
        assert_eq!(refused.status(), status, "Host: {host}");
    }

    // With it: the bundled plugins, at the image's paths.
    let client = server
        .connect(server.client_config(Some(&key)), common::discover_2026())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.stderr()));
    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    for tool in ["files__list", "codec__hash"] {
        assert!(names.contains(&tool.to_owned()), "{tool} not in {names:?}");
    }
    let hash = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("codec__hash").with_arguments(common::object(
                serde_json::json!({ "algorithm": "sha256", "data": "hello" }),
            )),
        )
        .await
        .expect("tools/call codec__hash");
    assert!(
        common::ok_text(&hash)
            .contains("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
        "{}",
        common::text(&hash)
    );
    let listing = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("files__list")
                .with_arguments(common::object(serde_json::json!({ "path": "/workspace" }))),
        )
        .await
        .expect("tools/call files__list");
    assert!(
        common::ok_text(&listing).contains("notes.txt"),
        "{}",
        common::text(&listing)
    );
    let _ = client.cancel().await;
    drop(server);

    // It wrote only into its volumes, as their owner.
    let audit = root.join("var/log/warden/audit.jsonl");
    let records = std::fs::read_to_string(&audit).expect("audit log in the log volume");
    assert!(records.contains("codec__hash"), "{records}");
    assert!(
        root.join("var/cache/warden/components").is_dir(),
        "no compile cache in the cache volume"
    );
    if nobody.is_some() {
        for written in [audit, root.join("var/cache/warden/components")] {
            let owner = std::fs::metadata(&written).expect("stat").uid();
            assert_eq!(owner, 65534, "{} belongs to {owner}", written.display());
        }
    }
}

/// The systemd unit's example manifest is valid as shipped, with its paths moved to a
/// temporary layout and a key set as `systemctl edit warden` would.
#[test]
fn the_systemd_example_manifest_checks() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let workspace = repo_root().join("examples/workspace");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("check")
        .arg(repo_root().join("contrib/systemd/warden.toml"))
        .env("WARDEN_PLUGINS", common::plugin_dir())
        .env("WARDEN_WORKSPACE", &workspace)
        .env("WARDEN_CACHE_DIR", dir.path().join("cache"))
        .env("WARDEN_AUDIT_DIR", dir.path().join("log"))
        .env("WARDEN_API_KEY_SHA256", "ab".repeat(32))
        .output()
        .expect("run warden check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("files__"), "{stdout}");
}
