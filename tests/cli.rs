//! The command line: `check` and `serve` refuse bad manifests pointing at the line to fix,
//! `inspect` shows a component's tools and needs, `call` runs one tool through the gate, and
//! the rest of the CLI (manifest flags, `init`, `audit`, `keygen`, completions) behaves as
//! documented.

mod common;

use std::path::Path;

use common::{Fixture, plugin, warden};
use serde_json::{Value, json};

/// Run the `warden` binary with `args` and extra environment variables; returns (exit code,
/// stdout, stderr).
fn warden_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .output()
        .expect("run warden");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `warden check` and `warden serve` both refuse `body`, naming `line` and `needle`.
fn refused(body: &str, line: usize, needle: &str) {
    let fixture = Fixture::new(body);
    let manifest = fixture.manifest.to_str().expect("utf-8");
    // The harness adds a two-line [cache] section and a blank line before `body`.
    let line = line + 3;
    for args in [
        vec!["check", manifest],
        vec!["check", "--manifest", manifest],
        vec!["serve", manifest],
        vec!["serve", "-m", manifest],
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
        "[plugins.files]\ncomponent = \"{files}\"\ndirs = [{ host = \"{dir}\", guest = \"/data\" }, { host = \"{dir}/out\", guest = \"/out\", mode = \"rw\", max_write = \"1MiB\", max_files = 10 }]\n\n[plugins.codec]\ncomponent = \"{codec}\"\nsampling = true\n",
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
    // `sampling` is off by default and shown only where granted.
    assert_eq!(stdout.matches("grant sampling").count(), 1, "{stdout}");
    assert!(!stdout.contains("grant roots"), "{stdout}");
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

#[test]
fn every_command_that_reads_a_manifest_takes_the_manifest_flag() {
    let fixture = Fixture::new(
        "[audit]\npath = \"audit/log.jsonl\"\n\n[plugins.codec]\ncomponent = \"{codec}\"\n",
    );
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let cwd = elsewhere.path();
    let hash = r#"{"algorithm": "sha256", "data": "abc"}"#;
    let (code, _, stderr) = warden(&["call", "-m", manifest, "codec__hash", hash], cwd);
    assert_eq!(code, 0, "{stderr}");
    for args in [
        vec!["check", "-m", manifest],
        vec!["check", "--manifest", manifest],
        vec!["check", manifest],
        vec!["audit", "tail", "-m", manifest],
        vec!["audit", "verify", "--manifest", manifest],
        vec!["deploy", "network-policy", "-m", manifest],
    ] {
        let (code, stdout, stderr) = warden(&args, cwd);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(!stdout.is_empty(), "{args:?} printed nothing");
    }
    // Both forms at once are refused, by name.
    let (code, _, stderr) = warden(&["check", manifest, "--manifest", manifest], cwd);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[test]
fn a_missing_manifest_says_how_to_get_one_and_init_writes_a_starter_that_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache").display().to_string();
    let env = [("XDG_CACHE_HOME", cache.as_str())];
    for args in [
        vec!["check"],
        vec!["serve"],
        vec!["call", "codec__hash"],
        vec!["audit", "tail"],
        vec!["audit", "verify"],
    ] {
        let (code, _, stderr) = warden_env(&args, dir.path(), &env);
        assert_eq!(code, 2, "{args:?}");
        assert!(
            stderr.contains(
                "warden.toml not found: pass --manifest FILE, or run `warden init` to write a commented starter"
            ),
            "{args:?}: {stderr}"
        );
    }
    let (code, _, stderr) = warden_env(&["check", "-m", "other.toml"], dir.path(), &env);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("other.toml not found") && stderr.contains("warden init other.toml"),
        "{stderr}"
    );

    let (code, _, stderr) = warden_env(&["init"], dir.path(), &env);
    assert_eq!(code, 0, "{stderr}");
    let starter = std::fs::read_to_string(dir.path().join("warden.toml")).expect("starter");
    assert!(starter.contains("# [plugins.files]"), "{starter}");
    let (code, stdout, stderr) = warden_env(&["check"], dir.path(), &env);
    assert_eq!(code, 0, "the starter must pass check as written: {stderr}");
    assert!(stdout.contains("warden.toml: ok"), "{stdout}");

    // Never overwrites.
    std::fs::write(dir.path().join("warden.toml"), "# mine\n").expect("write");
    let (code, _, stderr) = warden_env(&["init"], dir.path(), &env);
    assert_eq!(code, 2);
    assert!(stderr.contains("already exists"), "{stderr}");
    let kept = std::fs::read_to_string(dir.path().join("warden.toml")).expect("read");
    assert_eq!(kept, "# mine\n");
    let (code, _, stderr) = warden_env(&["init", "b.toml"], dir.path(), &env);
    assert_eq!(code, 0, "{stderr}");
    assert!(dir.path().join("b.toml").is_file());
}

/// A fixture whose audit log rotates at 4KiB, after `calls` calls of codec through
/// `warden call` (each writes its start record, then the call's: about 900 bytes of log).
fn audited_calls(calls: usize) -> Fixture {
    let fixture = Fixture::new(
        "[audit]\npath = \"audit/log.jsonl\"\nrotate = \"4KiB\"\n\n[plugins.codec]\ncomponent = \"{codec}\"\n",
    );
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let data = "x".repeat(300);
    let hash = format!(r#"{{"algorithm": "sha256", "data": "{data}"}}"#);
    for _ in 0..calls {
        let (code, _, stderr) = warden(
            &["call", "-m", manifest, "codec__hash", &hash],
            fixture.dir.path(),
        );
        assert_eq!(code, 0, "{stderr}");
    }
    fixture
}

#[test]
fn audit_verify_without_files_checks_the_manifests_log_and_its_rotated_files() {
    let fixture = audited_calls(10);
    let rotated = fixture.path("audit/log.jsonl.000001");
    assert!(rotated.exists(), "the log did not rotate");
    // In the manifest's directory, no flag at all.
    let (code, stdout, stderr) = warden(&["audit", "verify"], fixture.dir.path());
    assert_eq!(code, 0, "{stderr}");
    // Each `warden call`: a start record, then the call's.
    assert!(
        stdout.contains("ok: 20 record(s) (seq 0..=19)") && !stdout.contains("in 1 file(s)"),
        "{stdout}"
    );
    // A rotated file out of order breaks the chain: they are read oldest first.
    let text = std::fs::read_to_string(&rotated).expect("rotated");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(0, 1);
    std::fs::set_permissions(
        &rotated,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    std::fs::write(&rotated, lines.join("\n") + "\n").expect("write");
    let (code, _, stderr) = warden(&["audit", "verify"], fixture.dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("log.jsonl.000001"), "{stderr}");
}

#[test]
fn audit_tail_filters_records_and_prints_them_raw_with_json() {
    let fixture = audited_calls(2);
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let (code, _, _) = warden(
        &["call", "-m", manifest, "codec__nope", "{}"],
        fixture.dir.path(),
    );
    assert_eq!(code, 2);
    let tail = |extra: &[&str]| {
        let mut args = vec!["audit", "tail", "-m", manifest];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = warden(&args, fixture.dir.path());
        assert_eq!(code, 0, "{args:?}: {stderr}");
        stdout
    };
    // Each `warden call` wrote a start record, then its call's.
    let all = tail(&[]);
    assert_eq!(all.lines().count(), 6, "{all}");
    let starts: Vec<&str> = all.lines().step_by(2).collect();
    assert!(
        starts
            .iter()
            .all(|line| line.contains(" start ") && line.contains("1 plugin(s): codec sha256:")),
        "{all}"
    );
    let ok = tail(&["--outcome", "ok", "--json"]);
    let records: Vec<Value> = ok
        .lines()
        .map(|line| serde_json::from_str(line).expect("--json prints one record per line"))
        .collect();
    assert_eq!(records.len(), 2, "{ok}");
    assert!(
        records
            .iter()
            .all(|r| r["outcome"] == "ok" && r["tool"] == "codec__hash")
    );
    let invalid = tail(&["--tool", "codec__nope"]);
    assert_eq!(invalid.lines().count(), 1, "{invalid}");
    assert!(invalid.contains("invalid"), "{invalid}");
    assert_eq!(tail(&["--principal", "nobody"]), "");
    assert_eq!(
        tail(&["--principal", "local", "-n", "1"]).lines().count(),
        1
    );
    let (code, _, stderr) = warden(
        &["audit", "tail", "-m", manifest, "--outcome", "fine"],
        fixture.dir.path(),
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("tool-error"),
        "the valid outcomes are listed: {stderr}"
    );
}

#[test]
fn audit_tail_follow_prints_new_records_through_a_rotation() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("log.jsonl");
    let record = |n: u32, outcome: &str| {
        format!(r#"{{"seq":{n},"principal":"p","tool":"t","outcome":"{outcome}"}}"#) + "\n"
    };
    std::fs::write(&log, record(0, "ok")).expect("write");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["audit", "tail", "-f", "--json", "--outcome", "ok"])
        .arg(&log)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let next = || {
        received
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("a followed record")
    };
    assert!(next().contains(r#""seq":0"#));
    let append = |text: String| {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .expect("open");
        file.write_all(text.as_bytes()).expect("append");
    };
    append(record(1, "denied") + &record(2, "ok"));
    assert!(next().contains(r#""seq":2"#), "filtered while following");
    // Rotation: the live file is renamed and a new one started.
    append(record(3, "ok"));
    std::fs::rename(&log, dir.path().join("log.jsonl.000001")).expect("rotate");
    append(record(4, "ok"));
    assert!(next().contains(r#""seq":3"#));
    assert!(next().contains(r#""seq":4"#));
    child.kill().expect("kill");
    let _ = child.wait();
}

#[test]
fn call_as_another_principal_says_plainly_what_it_may_not_do() {
    let fixture = Fixture::new(
        "[plugins.files]\ncomponent = \"{files}\"\nroles = [\"admin\"]\ndirs = [{ host = \"{dir}/data\", guest = \"/data\" }]\n",
    );
    std::fs::create_dir_all(fixture.path("data")).expect("mkdir");
    std::fs::write(fixture.path("data/a.txt"), "alpha").expect("write");
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let args = r#"{"path": "/data/a.txt"}"#;
    let call = |extra: &[&str], tool: &str| {
        let mut all = vec!["call", "-m", manifest];
        all.extend_from_slice(extra);
        all.extend([tool, args]);
        warden(&all, fixture.dir.path())
    };
    let (code, _, stderr) = call(
        &["--principal", "bob", "--roles", "reader"],
        "files__read_text",
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains(
            r#"tool files__read_text is not permitted for principal "bob" (roles: reader); it needs one of: admin"#
        ),
        "{stderr}"
    );
    let (code, stdout, stderr) = call(
        &["--principal", "bob", "--roles", "reader,admin"],
        "files__read_text",
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("alpha"), "{stdout}");
    // The manifest's [server] principal holds no role here.
    let (code, _, stderr) = call(&[], "files__read_text");
    assert_eq!(code, 2);
    assert!(
        stderr.contains(r#"principal "local" (roles: none)"#),
        "{stderr}"
    );
    // An unknown tool names the closest ones.
    let (code, _, stderr) = call(&["--roles", "admin"], "files__read_txt");
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unknown tool files__read_txt; the closest tools are: files__read_text"),
        "{stderr}"
    );
    // Roles are checked as the manifest checks them.
    let (code, _, stderr) = call(&["--roles", "a b"], "files__read_text");
    assert_eq!(code, 2);
    assert!(stderr.contains("roles contain no spaces"), "{stderr}");
}

#[tokio::test]
async fn serve_http_takes_a_host_name() {
    let fixture = Fixture::new("[plugins.codec]\ncomponent = \"{codec}\"\n");
    let mut server = fixture.http_server_at("localhost:0", &[]).await;
    assert!(
        server.url.starts_with("http://127.0.0.1:") || server.url.starts_with("http://[::1]:"),
        "{}",
        server.url
    );
    let health = reqwest::get(format!("{}/healthz", server.base))
        .await
        .expect("healthz");
    assert!(health.status().is_success());
    server.terminate().await;

    let manifest = fixture.manifest.to_str().expect("utf-8");
    for (addr, needle) in [
        ("no-such-host.invalid:8080", "cannot resolve --http"),
        ("localhost", "expected HOST:PORT"),
        ("localhost:http", "expected HOST:PORT"),
        // A name is checked by what it resolves to: the resolver reads the host `0` as
        // 0.0.0.0, which is not loopback, so without [auth] it is refused.
        (
            "0:8080",
            "refusing to serve 0.0.0.0:8080 without authentication",
        ),
    ] {
        let (code, _, stderr) = warden(&["serve", manifest, "--http", addr], fixture.dir.path());
        assert_eq!(code, 2, "{addr}");
        assert!(stderr.contains(needle), "{addr}: {stderr}");
    }
}

#[test]
fn keygen_checks_principal_and_roles_as_the_manifest_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, message) in [
        (
            vec!["keygen", "--roles", "reader,a b"],
            r#"invalid role "a b": roles contain no spaces or control characters"#,
        ),
        (
            vec!["keygen", "--roles", "reader,reader"],
            r#"role "reader" is listed twice"#,
        ),
        (
            vec!["keygen", "--roles", "reader,"],
            "a role must not be empty",
        ),
        (
            vec!["keygen", "--principal", "ci bot"],
            r#"invalid principal "ci bot": names contain no spaces or control characters"#,
        ),
    ] {
        let (code, stdout, stderr) = warden(&args, dir.path());
        assert_eq!(code, 2, "{args:?} was accepted: {stdout}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    // What keygen accepts, the manifest accepts.
    let (code, stdout, stderr) = warden(
        &[
            "keygen",
            "--principal",
            "ci-bot",
            "--roles",
            "reader,writer",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    let entry = stdout
        .split_once("[[auth.api_keys]]")
        .map(|(_, entry)| entry)
        .expect("an entry");
    let fixture = Fixture::new(&format!("[[auth.api_keys]]{entry}"));
    let (code, stdout, stderr) = warden(
        &["check", fixture.manifest.to_str().expect("utf-8")],
        fixture.dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("auth: 1 API key(s) (ci-bot)"), "{stdout}");
}

#[test]
fn check_json_reports_plugins_grants_limits_tools_and_warnings() {
    let fixture = Fixture::new(
        "[plugins.files]\ncomponent = \"{files}\"\nmemory = \"32MiB\"\ndirs = [{ host = \"{dir}\", guest = \"/data\" }]\n\n[plugins.codec]\ncomponent = \"{codec}\"\nallow_hosts = [\"https://example.com\"]\nroots = true\n",
    );
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let (code, stdout, stderr) = warden(&["check", "--json", manifest], fixture.dir.path());
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("check --json prints JSON");
    assert_eq!(report["ok"], true);
    let files = &report["plugins"][0];
    assert_eq!(files["name"], "files");
    assert_eq!(files["grants"]["dirs"][0]["guest"], "/data");
    assert_eq!(files["grants"]["dirs"][0]["mode"], "ro");
    assert_eq!(files["grants"]["sampling"], false);
    assert_eq!(files["grants"]["roots"], false);
    assert_eq!(report["plugins"][1]["grants"]["roots"], true);
    assert_eq!(files["limits"]["memory"], 32 << 20);
    assert!(
        files["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .any(|t| t["name"] == "files__read_text"),
        "{files}"
    );
    assert_eq!(
        report["plugins"][1]["grants"]["hosts"][0],
        "https://example.com"
    );
    assert_eq!(report["warnings"][0]["plugin"], "codec");
    assert_eq!(report["warnings"][0]["code"], "unused-grant:allow_hosts");

    // A manifest that does not load is a JSON report too, with each error's place.
    std::fs::write(
        &fixture.manifest,
        "[plugins.codec]\ncomponent = \"nope.wasm\"\nmemroy = 1\n",
    )
    .expect("write");
    let (code, stdout, _) = warden(&["check", "--json", manifest], fixture.dir.path());
    assert_eq!(code, 2);
    let report: Value = serde_json::from_str(&stdout).expect("JSON on failure");
    assert_eq!(report["ok"], false);
    assert_eq!(report["errors"][1]["line"], 3);
    assert_eq!(report["errors"][1]["key"], "plugins.codec.memroy");
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let fixture = Fixture::new("[plugins.codec]\ncomponent = \"{codec}\"\n");
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let (code, _, stderr) = warden_env(
        &["--log-format", "json", "check", manifest],
        fixture.dir.path(),
        &[("WARDEN_LOG", "info")],
    );
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "plugin ready" && l["fields"]["plugin"] == "codec"),
        "{stderr}"
    );
}

#[test]
fn completions_and_man_page_are_generated_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    for shell in ["bash", "zsh", "fish"] {
        let (code, stdout, stderr) = warden(&["completions", shell], dir.path());
        assert_eq!(code, 0, "{shell}: {stderr}");
        assert!(
            stdout.contains("keygen") && stdout.contains("manifest"),
            "{shell}"
        );
    }
    let (code, stdout, stderr) = warden(&["man"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(".TH warden 1"), "{stdout}");
    assert!(stdout.contains("completions"), "{stdout}");
}

#[test]
fn check_warns_about_grants_the_component_cannot_use_and_they_change_no_annotation() {
    // codec imports neither wasi:filesystem nor any networking.
    let body = "[plugins.codec]\ncomponent = \"{codec}\"\ndirs = [{ host = \"{dir}/out\", guest = \"/data\", mode = \"rw\" }]\nallow_hosts = [\"https://example.com\"]\n";
    let fixture = Fixture::new(body);
    std::fs::create_dir(fixture.path("out")).expect("mkdir");
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let (code, stdout, stderr) = warden(&["check", manifest], fixture.dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(
            "warning     is granted hosts it cannot reach (https://example.com): it imports no networking (wasi:http or wasi:sockets) [unused-grant:allow_hosts]"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("[unused-grant:dirs]"), "{stdout}");
    let (_, stdout, _) = warden(&["check", "--json", manifest], fixture.dir.path());
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    let annotations = &report["plugins"][0]["tools"][0]["annotations"];
    assert_eq!(annotations["openWorldHint"], false, "{annotations}");
    assert_eq!(annotations["readOnlyHint"], true, "{annotations}");

    // Acknowledged warnings are not printed; an acknowledgement matching nothing is.
    let text = std::fs::read_to_string(&fixture.manifest).expect("read");
    std::fs::write(
        &fixture.manifest,
        text.replace(
            "allow_hosts =",
            "acknowledge = [\"unused-grant:allow_hosts\", \"unused-grant:secrets\"]\nallow_hosts =",
        ),
    )
    .expect("write");
    let (code, stdout, stderr) = warden(&["check", manifest], fixture.dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("[unused-grant:allow_hosts]"), "{stdout}");
    assert!(stdout.contains("[unused-grant:dirs]"), "{stdout}");
    assert!(
        stdout.contains(
            r#"acknowledge lists "unused-grant:secrets" (line 7) but there is no such warning"#
        ),
        "{stdout}"
    );
}

#[test]
fn acknowledgements_must_name_known_warnings() {
    refused(
        "[plugins.codec]\ncomponent = \"{codec}\"\nacknowledge = [\"unused-grant:host\"]\n",
        3,
        r#"unknown warning code "unused-grant:host"; did you mean "unused-grant:roots"?"#,
    );
}

#[test]
fn annotations_can_be_tightened_per_tool_but_not_loosened() {
    let fixture = Fixture::new(
        "[plugins.files]\ncomponent = \"{files}\"\ndirs = [{ host = \"{dir}/out\", guest = \"/out\", mode = \"rw\" }]\n\n[plugins.files.tools.read-text]\nread_only = true\n\n[plugins.files.tools.write-text]\ndestructive = false\nidempotent = true\n",
    );
    std::fs::create_dir(fixture.path("out")).expect("mkdir");
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let (code, stdout, stderr) = warden(&["check", "--json", manifest], fixture.dir.path());
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    let tools = report["plugins"][0]["tools"].as_array().expect("tools");
    let annotations = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["annotations"].clone())
            .expect("tool")
    };
    let read = annotations("files__read_text");
    assert_eq!(read["readOnlyHint"], true, "{read}");
    assert_eq!(read["destructiveHint"], false, "{read}");
    let write = annotations("files__write_text");
    assert_eq!(write["readOnlyHint"], false, "{write}");
    assert_eq!(write["destructiveHint"], false, "{write}");
    assert_eq!(write["idempotentHint"], true, "{write}");
    let list = annotations("files__list");
    assert_eq!(
        list["readOnlyHint"], false,
        "derived from the rw grant: {list}"
    );

    refused(
        "[plugins.codec]\ncomponent = \"{codec}\"\n\n[plugins.codec.tools.hash]\nopen_world = true\n",
        5,
        "open_world can only be set to false",
    );
    refused(
        "[plugins.codec]\ncomponent = \"{codec}\"\n\n[plugins.codec.tools.hash]\nread_only = false\n",
        5,
        "read_only can only be set to true",
    );
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
    let child = command(
        &["serve", "--http", "0.0.0.0:0", "--manifest", &manifest],
        Some(&sha256),
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn warden serve");
    let server = common::HttpServer::started(child).await;
    assert!(
        server.stderr().contains("listening on http://0.0.0.0:"),
        "{}",
        server.stderr()
    );
    let port = server.base.rsplit(':').next().expect("port").to_owned();

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

// --- serve on a terminal -------------------------------------------------------------------

#[test]
fn serve_on_a_terminal_says_it_waits_for_a_client_and_logs_grant_warnings() {
    use std::io::Read as _;
    use std::os::fd::{FromRawFd as _, OwnedFd};

    // codec computes only: a host granted to it is a grant it cannot use.
    let fixture = Fixture::new(
        "[plugins.codec]\ncomponent = \"{codec}\"\nallow_hosts = [\"https://example.com\"]\nroots = true\n",
    );
    let (mut controller, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two new descriptors into the integers it is given.
    let opened = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty");
    // SAFETY: both descriptors were just opened and are owned here only.
    let (controller, terminal) = unsafe {
        (
            OwnedFd::from_raw_fd(controller),
            OwnedFd::from_raw_fd(terminal),
        )
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "-m"])
        .arg(&fixture.manifest)
        .env("WARDEN_LOG", "warn")
        .stdin(std::process::Stdio::from(terminal))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn warden");
    let mut stderr = child.stderr.take().expect("stderr");
    let (sender, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 || sender.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    while !seen.contains("Ctrl-D quits.") {
        match received.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(bytes) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            Err(_) => {
                let _ = child.kill();
                panic!("no line for the terminal:\n{seen}");
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(controller);
    assert!(
        seen.contains("serving 6 tool(s) over MCP on stdin/stdout"),
        "{seen}"
    );
    assert!(seen.contains("warden serve --manifest /"), "{seen}");
    assert!(
        seen.contains("is granted hosts it cannot reach (https://example.com)")
            && seen.contains("acknowledge = [\"unused-grant:allow_hosts\"]"),
        "{seen}"
    );
}

#[test]
fn check_lists_asking_tools_and_warns_about_unapproved_writes_and_private_data_flows() {
    let body = |approval: &str, label: &str| {
        format!(
            "{approval}\n[plugins.testbed]\ncomponent = \"{{testbed}}\"\n\
             dirs = [{{ host = \"{{dir}}/out\", guest = \"/out\", mode = \"rw\" }}]\n\
             allow_hosts = [\"https://example.com\"]\n\n\
             [plugins.testbed.tools.write-file]\napproval = \"ask\"\n\n\
             [plugins.testbed.tools.read-file]\nread_only = true\n{label}\n"
        )
    };
    // A private tool and an open-world tool under after_private = "allow": unguarded.
    let with_out = |text: String| {
        let fixture = Fixture::new(&text);
        std::fs::create_dir(fixture.path("out")).expect("mkdir out");
        fixture
    };
    let fixture = with_out(body(
        "[approval]\nafter_private = \"allow\"",
        "data = \"private\"",
    ));
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let (code, stdout, stderr) = warden(&["check", manifest], fixture.dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout
            .contains("approval: 1 ask(s) a human: testbed__write_file; after private data: allow"),
        "{stdout}"
    );
    assert!(
        stdout.contains("tool        testbed__write_file, asks a human"),
        "{stdout}"
    );
    assert!(
        stdout.contains("tool        testbed__read_file, private data"),
        "{stdout}"
    );
    assert!(stdout.contains("[unguarded-flow]"), "{stdout}");
    // Functions that can write, neither read-only nor asking, are named; the asking and the
    // read-only ones are not.
    let unapproved = stdout
        .lines()
        .find(|line| line.contains("[unapproved-write]"))
        .unwrap_or_else(|| panic!("no unapproved-write warning:\n{stdout}"));
    assert!(unapproved.contains("http-get"), "{unapproved}");
    assert!(!unapproved.contains("write-file"), "{unapproved}");
    assert!(!unapproved.contains("read-file"), "{unapproved}");

    let (code, stdout, stderr) = warden(&["check", "--json", manifest], fixture.dir.path());
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("check --json prints JSON");
    assert_eq!(report["approval"]["after_private"], "allow");
    assert_eq!(
        report["approval"]["asking_tools"],
        json!(["testbed__write_file"])
    );
    let codes = common::warning_codes(&report);
    assert!(codes.contains(&"unguarded-flow"), "{codes:?}");
    assert!(codes.contains(&"unapproved-write"), "{codes:?}");
    let tools = report["plugins"][0]["tools"].as_array().expect("tools");
    let tool = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(tool("testbed__write_file")["approval"], "ask");
    assert_eq!(tool("testbed__read_file")["private"], true);

    // The default rule ("ask") guards the flow: no warning. Without any private label, the
    // tools that read local data and the open-world ones are named instead.
    let fixture = with_out(body("", "data = \"private\""));
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let (_, stdout, _) = warden(&["check", manifest], fixture.dir.path());
    assert!(!stdout.contains("[unguarded-flow]"), "{stdout}");
    assert!(!stdout.contains("[unlabelled-private-data]"), "{stdout}");
    let fixture = with_out(body("", ""));
    let manifest = fixture.manifest.to_str().expect("utf-8");
    let (_, stdout, _) = warden(&["check", manifest], fixture.dir.path());
    assert!(stdout.contains("[unlabelled-private-data]"), "{stdout}");
}
