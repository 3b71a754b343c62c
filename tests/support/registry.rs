//! A real OCI registry for the tests that need one (Debian's `docker-registry`, started once
//! per test binary on 127.0.0.1), and the components pushed to it.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{Fixture, plugin, warden};

const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// The registry of this test binary: its address and storage directory. It is started by a
/// shell that waits on its stdin, kept open here: when the test process exits, the pipe
/// closes and the shell stops the registry.
pub struct Registry {
    pub addr: String,
    pub storage: PathBuf,
    _dir: tempfile::TempDir,
    _keeper: Child,
}

pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(start_registry)
}

fn start_registry() -> Registry {
    assert!(
        Path::new(REGISTRY_BINARY).exists(),
        "{REGISTRY_BINARY} is missing: `apt-get install docker-registry` (the OCI tests need a real registry)"
    );
    let dir = tempfile::tempdir().expect("registry directory");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("address").port()
    };
    let addr = format!("127.0.0.1:{port}");
    let storage = dir.path().join("data");
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog: {{ level: warn }}\nstorage:\n  filesystem: {{ rootdirectory: {} }}\n  delete: {{ enabled: true }}\nhttp:\n  addr: {addr}\n  secret: warden-test\n",
            storage.display()
        ),
    )
    .expect("write registry config");
    let script = format!(
        "{REGISTRY_BINARY} serve {} >{} 2>&1 & pid=$!; read _; kill $pid",
        config.display(),
        dir.path().join("registry.log").display()
    );
    let keeper = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .expect("start docker-registry");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "docker-registry did not listen on {addr}: {}",
            std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Registry {
        addr,
        storage,
        _dir: dir,
        _keeper: keeper,
    }
}

/// The codec component with a custom section naming `label` appended: a valid component whose
/// blob no other test shares (the registry stores blobs once across repositories).
pub fn unique_component(dir: &Path, base: &str, label: &str) -> PathBuf {
    let mut bytes = std::fs::read(plugin(base)).expect("read component");
    let name = b"warden-test";
    let payload_len = 1 + name.len() + label.len();
    assert!(payload_len < 128, "label too long for a one-byte LEB");
    bytes.push(0); // custom section
    bytes.push(payload_len as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(label.as_bytes());
    let path = dir.join(format!("{label}.wasm"));
    std::fs::write(&path, bytes).expect("write component");
    path
}

/// `warden push FILE REFERENCE`, which must succeed; returns (digest, pinned reference).
pub fn push(file: &Path, reference: &str) -> (String, String) {
    let (code, stdout, stderr) = warden(
        &["push", &file.display().to_string(), reference],
        file.parent().expect("parent"),
    );
    assert_eq!(code, 0, "warden push: {stdout}{stderr}");
    let digest = stdout
        .lines()
        .find_map(|l| l.strip_prefix("digest "))
        .expect("digest line")
        .to_owned();
    let pinned = stdout
        .lines()
        .find_map(|l| l.strip_prefix("component = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("component line")
        .to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(pinned, format!("{reference}@{digest}"));
    (digest, pinned)
}

/// Serve `fixture` (whose codec plugin comes from the registry) to a real MCP client, and call
/// `codec__hash`, which must answer.
pub async fn assert_serves_codec(fixture: &Fixture) {
    let client = fixture.client().await;
    let names = client.tool_names().await;
    assert!(names.iter().any(|n| n == "codec__hash"), "{names:?}");
    let result = client
        .call(
            "codec__hash",
            serde_json::json!({"algorithm": "sha256", "data": "hello"}),
        )
        .await;
    assert!(
        crate::common::ok_text(&result)
            .contains("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
        "{result:?}"
    );
    client.close().await;
}

/// What a compile cache at `cache` holds besides pulled components and its key: the compiled
/// artifacts, which must be none when a component was refused.
pub fn compiled_artifacts(cache: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(cache)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name())
                .filter(|n| n != "oci" && !n.to_string_lossy().starts_with("key"))
                .collect()
        })
        .unwrap_or_default()
}
