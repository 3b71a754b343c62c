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
