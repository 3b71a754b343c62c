//! `deploy/kubernetes/` and `warden deploy network-policy`: every document validates against
//! the Kubernetes schemas (`kubernetes-validate`, installed in a venv under the target
//! directory), and what a reviewer would check by hand is checked here: the kustomizations list
//! what exists, the pods run non-root on a read-only root, the container's arguments are
//! `warden serve`'s and serve the probes (the real binary, on a real redis-server), the
//! ConfigMap's manifest passes `warden check` with the Secret's variables, and the egress
//! policy is what the manifest renders, with every plugin's ports. Hostile: a plugin allowed
//! any host renders no policy unless asked, and options cannot inject YAML.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use common::{Fixture, HttpServer, cache_dir, digest, plugin_dir, redis::redis_port};

/// The Kubernetes versions the documents are validated against: the oldest supported here and
/// the newest the validator knows.
const KUBERNETES_VERSIONS: &[&str] = &["1.30.0", "1.37.0"];

/// `deploy/kubernetes` in this checkout.
fn base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// The `bin` directory of a virtualenv with `kubernetes-validate` (and PyYAML, its
/// dependency), created once under the target directory.
fn validator() -> PathBuf {
    common::python_venv("kubernetes-validate-venv", "kubernetes-validate==1.37.0")
}

/// Validate `files` strictly (no unknown fields) against every [`KUBERNETES_VERSIONS`];
/// panics with the validator's report on any failure.
fn validate(files: &[PathBuf]) {
    assert!(!files.is_empty(), "nothing to validate");
    let bin = validator();
    for version in KUBERNETES_VERSIONS {
        let output = Command::new(bin.join("kubernetes-validate"))
            .args(["--strict", "-k", version])
            .args(files)
            .output()
            .expect("run kubernetes-validate");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success() && !report.contains("ERROR") && !report.contains("WARN"),
            "kubernetes-validate {version}:\n{report}"
        );
        for file in files {
            assert!(
                report.contains(&format!("{} passed", file.display())),
                "{} was not validated against {version}:\n{report}",
                file.display()
            );
        }
    }
}

/// Every YAML document in `file`, as JSON (read by PyYAML, as kubectl's YAML would be).
fn documents(file: &Path) -> Vec<Value> {
    let python = validator().join("python");
    let output = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(file)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{} is not YAML: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON from PyYAML")
}

/// The one document of `file` (relative to the base).
fn document(file: &str) -> Value {
    let mut docs = documents(&base().join(file));
    assert_eq!(docs.len(), 1, "{file} holds one document");
    docs.remove(0)
}

/// Every `.yaml` file under `dir`, recursively, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read the directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn is_kustomization(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "kustomization.yaml")
}

/// The ConfigMaps kustomize generates from `configMapGenerator` (name and file contents; the
/// hash suffix aside), written as YAML into `dir`.
fn generated_config_maps(dir: &Path) -> Vec<PathBuf> {
    let kustomization = document("kustomization.yaml");
    let mut written = Vec::new();
    for generator in kustomization["configMapGenerator"]
        .as_array()
        .expect("configMapGenerator")
    {
        let name = generator["name"].as_str().expect("generator name");
        let mut data = serde_json::Map::new();
        for file in generator["files"].as_array().expect("generator files") {
            let file = file.as_str().expect("a file name");
            let text = std::fs::read_to_string(base().join(file))
                .unwrap_or_else(|e| panic!("configMapGenerator names {file}: {e}"));
            data.insert(file.to_owned(), json!(text));
        }
        let config_map = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": name },
            "data": data,
        });
        // JSON is YAML.
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, config_map.to_string()).expect("write the ConfigMap");
        written.push(path);
    }
    written
}

/// The Deployment's one container.
fn container() -> Value {
    let deployment = document("deployment.yaml");
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .clone();
    assert_eq!(containers.len(), 1, "one container");
    containers[0].clone()
}

/// The example Secret's values.
fn secret_values() -> BTreeMap<String, String> {
    let secret = document("secret.example.yaml");
    secret["stringData"]
        .as_object()
        .expect("stringData")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_owned()))
        .collect()
}

/// The container's environment as the kubelet would set it, with the example Secret's values,
/// the pod's namespace `warden-test` and name `warden-7c9d8-x2x4q`; then the image's paths
/// moved to this checkout's (`WARDEN_PLUGINS`, `WARDEN_WORKSPACE`) and to `volumes`
/// (`WARDEN_CACHE_DIR`, `WARDEN_AUDIT_DIR`).
fn container_env(volumes: &Path) -> BTreeMap<String, String> {
    let secret = secret_values();
    let mut env = BTreeMap::new();
    for var in container()["env"].as_array().expect("env") {
        let name = var["name"].as_str().expect("env name").to_owned();
        let value = if let Some(value) = var["value"].as_str() {
            value.to_owned()
        } else if let Some(field) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match field {
                "metadata.namespace" => "warden-test".to_owned(),
                "metadata.name" => "warden-7c9d8-x2x4q".to_owned(),
                other => panic!("{name}: unexpected fieldRef {other}"),
            }
        } else {
            let reference = &var["valueFrom"]["secretKeyRef"];
            assert_eq!(reference["name"], "warden", "{name}: the Secret `warden`");
            let key = reference["key"].as_str().expect("secret key");
            match secret.get(key) {
                Some(value) => value.clone(),
                None if reference["optional"] == true => continue,
                None => panic!("{name}: secret.example.yaml has no {key}"),
            }
        };
        env.insert(name, value);
    }
    env.insert("WARDEN_PLUGINS".into(), plugin_dir().display().to_string());
    env.insert(
        "WARDEN_WORKSPACE".into(),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/workspace")
            .display()
            .to_string(),
    );
    env.insert("WARDEN_CACHE_DIR".into(), cache_dir().display().to_string());
    env.insert("WARDEN_AUDIT_DIR".into(), volumes.display().to_string());
    // The pod's metrics listener (every address, port 9464) on a free loopback port here.
    env.insert("WARDEN_METRICS_LISTEN".into(), "127.0.0.1:0".into());
    let runtime = volumes.join("run");
    std::fs::create_dir_all(&runtime).expect("the runtime volume");
    assert_eq!(env["XDG_RUNTIME_DIR"], "/run/user/10001");
    env.insert("XDG_RUNTIME_DIR".into(), runtime.display().to_string());
    env
}

/// Run `warden` with `args` and exactly `env` (plus PATH), in `cwd`.
fn warden_with(args: &[&str], env: &BTreeMap<String, String>, cwd: &Path) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .current_dir(cwd)
        .output()
        .expect("run warden");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every egress rule's ports, as (protocol, port, endPort) triples.
fn egress_ports(policy: &Value) -> BTreeSet<(String, u64, u64)> {
    let mut ports = BTreeSet::new();
    for rule in policy["spec"]["egress"].as_array().expect("egress") {
        for port in rule["ports"].as_array().into_iter().flatten() {
            let low = port["port"].as_u64().expect("a numeric port");
            let high = port["endPort"].as_u64().unwrap_or(low);
            ports.insert((
                port["protocol"].as_str().expect("protocol").to_owned(),
                low,
                high,
            ));
        }
    }
    ports
}

/// Every `ipBlock` of every egress rule: (cidr, except).
fn ip_blocks(policy: &Value) -> Vec<(String, Vec<String>)> {
    let mut blocks = Vec::new();
    for rule in policy["spec"]["egress"].as_array().expect("egress") {
        for to in rule["to"].as_array().into_iter().flatten() {
            let block = &to["ipBlock"];
            let except = block["except"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e.as_str().expect("except").to_owned())
                .collect();
            blocks.push((block["cidr"].as_str().expect("cidr").to_owned(), except));
        }
    }
    blocks
}

/// No rule allows every destination on every port (neither `to` nor `ports`).
fn assert_no_allow_all(policy: &Value) {
    for rule in policy["spec"]["egress"].as_array().expect("egress") {
        let has_to = rule["to"].as_array().is_some_and(|to| !to.is_empty());
        let has_ports = rule["ports"].as_array().is_some_and(|p| !p.is_empty());
        assert!(has_to || has_ports, "a rule allows all egress: {rule}");
        if let Some(to) = rule["to"].as_array() {
            for peer in to {
                if peer["ipBlock"]["cidr"] == "0.0.0.0/0" {
                    let except = peer["ipBlock"]["except"].to_string();
                    for private in [
                        "10.0.0.0/8",
                        "127.0.0.0/8",
                        "169.254.0.0/16",
                        "192.168.0.0/16",
                    ] {
                        assert!(
                            except.contains(private),
                            "0.0.0.0/0 without {private}: {rule}"
                        );
                    }
                }
            }
        }
    }
}

/// Render the policy of the manifest at `manifest` with `args`, validate it against the
/// schemas, and parse it.
fn render_valid(manifest: &Path, args: &[&str]) -> (String, Value) {
    let dir = manifest.parent().expect("the manifest's directory");
    let mut all = vec!["deploy", "network-policy", "--manifest"];
    let manifest_text = manifest.display().to_string();
    all.push(&manifest_text);
    all.extend_from_slice(args);
    let (code, stdout, stderr) = common::warden(&all, dir);
    assert_eq!(code, 0, "render failed: {stderr}");
    let file = dir.join("networkpolicy-rendered.yaml");
    std::fs::write(&file, &stdout).expect("write the policy");
    validate(std::slice::from_ref(&file));
    let mut docs = documents(&file);
    assert_eq!(docs.len(), 1, "one NetworkPolicy:\n{stdout}");
    (stdout, docs.remove(0))
}

// --- The files ---------------------------------------------------------------------------------

#[test]
fn every_kubernetes_document_validates_against_the_schemas() {
    let scratch = tempfile::tempdir().expect("temporary directory");
    let mut files: Vec<PathBuf> = yaml_files(&base())
        .into_iter()
        .filter(|path| !is_kustomization(path))
        .collect();
    // The base, the example Secret, both components, and the rendered egress policy.
    for expected in [
        "deployment.yaml",
        "service.yaml",
        "poddisruptionbudget.yaml",
        "networkpolicy.yaml",
        "networkpolicy-egress.yaml",
        "secret.example.yaml",
        "components/redis/deployment.yaml",
        "components/hpa/horizontalpodautoscaler.yaml",
    ] {
        assert!(
            files.contains(&base().join(expected)),
            "{expected} is missing"
        );
    }
    files.extend(generated_config_maps(scratch.path()));
    validate(&files);
}

#[test]
fn kustomizations_list_every_file_and_only_files_that_exist() {
    for kustomization in yaml_files(&base())
        .into_iter()
        .filter(|p| is_kustomization(p))
    {
        let dir = kustomization.parent().expect("its directory");
        let doc = documents(&kustomization).remove(0);
        let is_base = dir == base();
        assert_eq!(
            doc["kind"],
            if is_base {
                "Kustomization"
            } else {
                "Component"
            },
            "{}",
            kustomization.display()
        );
        let resources: BTreeSet<String> = doc["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| r.as_str().expect("a path").to_owned())
            .collect();
        for resource in &resources {
            assert!(dir.join(resource).is_file(), "{resource} does not exist");
        }
        // Every document beside it is a resource, but the example Secret (never applied).
        let beside: BTreeSet<String> = std::fs::read_dir(dir)
            .expect("read the directory")
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                (name.ends_with(".yaml")
                    && name != "kustomization.yaml"
                    && name != "secret.example.yaml")
                    .then_some(name)
            })
            .collect();
        assert_eq!(beside, resources, "{}", kustomization.display());
    }
    let kustomization = document("kustomization.yaml");
    assert!(
        !kustomization["resources"]
            .to_string()
            .contains("secret.example.yaml"),
        "the example Secret must never be applied"
    );
    // The generated ConfigMap is the one the Deployment mounts, and the image is the one the
    // images transformer sets.
    let generator = &kustomization["configMapGenerator"][0];
    let deployment = document("deployment.yaml");
    let volumes = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .expect("volumes");
    assert!(
        volumes
            .iter()
            .any(|v| v["configMap"]["name"] == generator["name"]),
        "no volume mounts the ConfigMap {}",
        generator["name"]
    );
    assert_eq!(kustomization["images"][0]["name"], container()["image"]);
}

#[test]
fn the_pods_run_non_root_on_a_read_only_root_without_privileges() {
    let deployment = document("deployment.yaml");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 3);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_ne!(pod["securityContext"]["runAsUser"], 0);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert!(
        pod["topologySpreadConstraints"]
            .as_array()
            .is_some_and(|c| c.len() >= 2),
        "spread over nodes and zones"
    );
    let container = container();
    let security = &container["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["privileged"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert!(
        security["capabilities"]["add"].is_null(),
        "no capability added"
    );
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][kind][resource].is_string(),
                "resources.{kind}.{resource}"
            );
        }
    }
    // The only writable places are the volumes warden writes: the compile cache and the
    // audit log, where the manifest puts them; the manifest's directory is read-only.
    let mounts: BTreeMap<&str, (&str, bool)> = container["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .map(|m| {
            (
                m["mountPath"].as_str().expect("mountPath"),
                (m["name"].as_str().expect("name"), m["readOnly"] == true),
            )
        })
        .collect();
    assert_eq!(mounts["/etc/warden"], ("config", true));
    assert_eq!(mounts["/var/cache/warden"].0, "cache");
    assert_eq!(mounts["/var/log/warden"].0, "audit");
    assert_eq!(mounts["/run/user/10001"].0, "runtime");
    let manifest = std::fs::read_to_string(base().join("warden.toml")).expect("warden.toml");
    assert!(manifest.contains("\"${WARDEN_CACHE_DIR:-/var/cache/warden}/components\""));
    assert!(
        manifest.contains("\"${WARDEN_AUDIT_DIR:-/var/log/warden}/audit-${WARDEN_REPLICA}.jsonl\"")
    );
    // The PodDisruptionBudget and the Service select the Deployment's pods.
    let labels = &spec["template"]["metadata"]["labels"];
    let selector = &spec["selector"]["matchLabels"];
    for (key, value) in selector.as_object().expect("matchLabels") {
        assert_eq!(&labels[key], value);
    }
    assert_eq!(
        document("poddisruptionbudget.yaml")["spec"]["selector"]["matchLabels"],
        *selector
    );
    assert_eq!(document("service.yaml")["spec"]["selector"], *selector);
    assert_eq!(
        document("networkpolicy.yaml")["spec"]["podSelector"]["matchLabels"],
        *selector
    );
    assert_eq!(
        document("networkpolicy-egress.yaml")["spec"]["podSelector"]["matchLabels"],
        *selector
    );
}

#[test]
fn the_configmap_manifest_passes_check_with_the_secrets_variables() {
    let volumes = tempfile::tempdir().expect("temporary directory");
    let env = container_env(volumes.path());
    let manifest = base().join("warden.toml");
    let (code, stdout, stderr) = warden_with(
        &["check", &manifest.display().to_string()],
        &env,
        volumes.path(),
    );
    assert_eq!(
        code, 0,
        "warden check refused the ConfigMap's manifest:\n{stdout}{stderr}"
    );
    assert!(stdout.contains("ok, 3 plugin(s)"), "{stdout}");
    // The Service's names are accepted Host headers in the pod's namespace.
    assert!(
        stdout.contains("warden.warden-test.svc.cluster.local"),
        "{stdout}"
    );
    // Without the Secret, warden refuses to start, naming what is missing.
    let mut without = env.clone();
    without.remove("WARDEN_APPROVAL_KEY");
    let (code, _, stderr) = warden_with(
        &["check", &manifest.display().to_string()],
        &without,
        volumes.path(),
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("WARDEN_APPROVAL_KEY"), "{stderr}");
}

// --- The container, run ------------------------------------------------------------------------

#[tokio::test]
async fn the_containers_arguments_serve_the_probes_and_the_service_names() {
    // Every flag of the container's arguments is one `warden serve --help` documents.
    let args: Vec<String> = container()["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("an argument").to_owned())
        .collect();
    assert_eq!(args[0], "serve");
    let (_, help, _) = common::warden(&["serve", "--help"], &base());
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
            "warden serve has no {flag}:\n{help}"
        );
    }
    assert!(!args.iter().any(|a| a == "--insecure-no-auth"));
    // It listens on every address of the pod, on the port named `http` that the probes and
    // the Service target.
    let http = container()["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == "http")
        .and_then(|p| p["containerPort"].as_u64())
        .expect("a port named http");
    let listen = format!("0.0.0.0:{http}");
    assert!(
        args.windows(2).any(|w| w[0] == "--http" && w[1] == listen),
        "{args:?}"
    );
    assert_eq!(
        document("service.yaml")["spec"]["ports"][0]["targetPort"],
        "http"
    );

    // Those arguments, on 127.0.0.1 and this checkout's paths, with a real Redis.
    let volumes = tempfile::tempdir().expect("temporary directory");
    let mut env = container_env(volumes.path());
    let key = "wdn_deploy-test-key";
    env.insert("WARDEN_API_KEY_SHA256".into(), digest(key));
    env.insert(
        "WARDEN_REDIS_URL".into(),
        format!("redis://127.0.0.1:{}/0", redis_port()),
    );
    env.insert("WARDEN_LOG".into(), "info".into());
    let config = volumes.path().join("config");
    std::fs::create_dir(&config).expect("config directory");
    std::fs::copy(base().join("warden.toml"), config.join("warden.toml")).expect("copy");
    let args: Vec<String> = args
        .iter()
        .map(|a| match a.as_str() {
            a if a == listen => "127.0.0.1:0".to_owned(),
            "/etc/warden/warden.toml" => config.join("warden.toml").display().to_string(),
            other => other.to_owned(),
        })
        .collect();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&env)
        .current_dir(&config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn warden");
    let server = HttpServer::started(child).await;

    // The probes' paths answer 200 (readiness once the plugins are compiled), whatever Host
    // the kubelet sends (the pod's IP).
    let container = container();
    let client = reqwest::Client::new();
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let path = container[probe]["httpGet"]["path"]
            .as_str()
            .unwrap_or_else(|| panic!("{probe} has an httpGet path"));
        assert_eq!(container[probe]["httpGet"]["port"], "http");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let response = client
                .get(format!("{}{path}", server.base))
                .header("host", "10.244.1.17:8080")
                .send()
                .await
                .expect("GET the probe");
            if response.status() == 200 {
                break;
            }
            assert!(
                response.status() == 503 && std::time::Instant::now() < deadline,
                "{probe} {path}: {}\n{}",
                response.status(),
                server.stderr()
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    // `kubectl exec POD -- warden status` (the same user and environment) sees the server.
    let (code, status, stderr) = warden_with(&["status", "--json"], &env, &config);
    assert_eq!(code, 0, "{stderr}");
    let status: Value = serde_json::from_str(&status).expect("status --json");
    let pid = server.child.id().map(u64::from);
    assert!(
        status
            .as_array()
            .is_some_and(|all| all.iter().any(|s| s["pid"].as_u64() == pid)),
        "warden status does not see the pod's server: {status}"
    );

    // Clients reach it by the Service's names in its namespace; other names are refused.
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": { "name": "deploy-test", "version": "0" }
        }
    });
    let post = |host: &'static str, key: Option<&'static str>| {
        let mut request = client
            .post(&server.url)
            .header("host", host)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(initialize.to_string());
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    for host in [
        "warden",
        "warden.warden-test.svc",
        "warden.warden-test.svc.cluster.local:80",
    ] {
        let response = post(host, Some(key)).await.expect("POST /mcp");
        assert_eq!(response.status(), 200, "Host {host}");
    }
    assert_eq!(post("warden", None).await.expect("POST").status(), 401);
    assert_eq!(
        post("warden.other-namespace.svc", Some(key))
            .await
            .expect("POST")
            .status(),
        403
    );
    assert_eq!(
        post("evil.example", Some(key))
            .await
            .expect("POST")
            .status(),
        403
    );
}

// --- The egress policy -------------------------------------------------------------------------

#[test]
fn the_committed_egress_policy_is_what_the_manifest_renders() {
    let volumes = tempfile::tempdir().expect("temporary directory");
    let env = container_env(volumes.path());
    let manifest = base().join("warden.toml");
    let (code, rendered, stderr) = warden_with(
        &[
            "deploy",
            "network-policy",
            "--manifest",
            &manifest.display().to_string(),
        ],
        &env,
        volumes.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    let committed =
        std::fs::read_to_string(base().join("networkpolicy-egress.yaml")).expect("committed");
    assert_eq!(
        committed, rendered,
        "deploy/kubernetes/networkpolicy-egress.yaml is stale: render it again with \
         `warden deploy network-policy -m deploy/kubernetes/warden.toml`"
    );

    // Every port of every plugin's allow_hosts is in the policy, and Redis' (the shared
    // state of [tasks] and [kv]).
    let policy = document("networkpolicy-egress.yaml");
    let ports = egress_ports(&policy);
    let toml: toml::Table = std::fs::read_to_string(&manifest)
        .expect("warden.toml")
        .parse()
        .expect("TOML");
    let mut checked = 0;
    for (name, plugin) in toml["plugins"].as_table().expect("plugins") {
        for pattern in plugin
            .get("allow_hosts")
            .and_then(|h| h.as_array())
            .into_iter()
            .flatten()
        {
            let pattern = pattern.as_str().expect("a pattern");
            let port = match pattern.rsplit_once(':') {
                Some((_, port)) if port.chars().all(|c| c.is_ascii_digit()) => {
                    port.parse().expect("port")
                }
                _ if pattern.starts_with("https://") => 443,
                _ => 80,
            };
            assert!(
                ports.contains(&("TCP".to_owned(), port, port)),
                "{name}: {pattern}: TCP {port} is not in the policy: {ports:?}"
            );
            assert!(rendered.contains(pattern), "{pattern} is not listed");
            checked += 1;
        }
    }
    assert!(checked >= 2, "the manifest's plugins reach the network");
    assert!(ports.contains(&("TCP".to_owned(), 6379, 6379)), "{ports:?}");
    assert_no_allow_all(&policy);
    // The Secret's Redis password never reaches the policy.
    assert!(!rendered.contains("EXAMPLE-ONLY"), "{rendered}");
}

#[test]
fn addresses_blocks_names_and_ports_render_as_the_api_allows() {
    let fixture = Fixture::new(
        "[kv]\nurl = \"redis://:hunter2hunter2@10.1.2.3:6380/0\"\n\n\
         [plugins.testbed]\ncomponent = \"{testbed}\"\n\
         allow_hosts = [\"tcp://10.0.0.5:5432\", \"http://192.168.0.0/16:8000-8999\", \
         \"udp://[fd00::1]:53\", \"https://api.example.com\", \"https://*.example.org:8443\", \
         \"*://203.0.113.0/24:7000\", \"http://198.51.100.7:*\"]\n",
    );
    let (text, policy) = render_valid(&fixture.manifest, &["--namespace", "tools"]);
    assert_eq!(policy["metadata"]["namespace"], "tools");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Egress"]));
    let ports = egress_ports(&policy);
    for expected in [
        ("TCP", 5432, 5432),
        ("TCP", 8000, 8999),
        ("UDP", 53, 53),
        ("TCP", 443, 443),
        ("TCP", 8443, 8443),
        ("TCP", 7000, 7000),
        ("UDP", 7000, 7000),
        ("TCP", 6380, 6380),
    ] {
        assert!(
            ports.contains(&(expected.0.to_owned(), expected.1, expected.2)),
            "{expected:?} missing from {ports:?}"
        );
    }
    let blocks = ip_blocks(&policy);
    let cidrs: BTreeSet<&str> = blocks.iter().map(|(c, _)| c.as_str()).collect();
    for cidr in [
        "10.0.0.5/32",
        "192.168.0.0/16",
        "fd00::1/128",
        "203.0.113.0/24",
        "198.51.100.7/32",
        "10.1.2.3/32",
        "0.0.0.0/0",
        "::/0",
    ] {
        assert!(cidrs.contains(cidr), "{cidr} missing from {cidrs:?}");
    }
    // The address on any port is a block with no ports: that block only.
    let any_port = policy["spec"]["egress"]
        .as_array()
        .expect("egress")
        .iter()
        .find(|r| r["to"][0]["ipBlock"]["cidr"] == "198.51.100.7/32")
        .expect("the rule of http://198.51.100.7:*");
    assert!(any_port["ports"].is_null(), "{any_port}");
    // Names are listed for an FQDN-capable policy; the Redis password is not anywhere.
    assert!(
        text.contains("testbed: https://api.example.com (TCP 443)"),
        "{text}"
    );
    assert!(
        text.contains("testbed: https://*.example.org:8443 (TCP 8443)"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    assert_no_allow_all(&policy);
}

#[test]
fn a_manifest_without_network_grants_renders_no_egress() {
    let fixture = Fixture::new("[plugins.codec]\ncomponent = \"{codec}\"\n");
    let (_, policy) = render_valid(&fixture.manifest, &[]);
    assert_eq!(policy["spec"]["egress"], json!([]));
    assert_eq!(policy["spec"]["policyTypes"], json!(["Egress"]));
}

// --- Hostile -----------------------------------------------------------------------------------

#[test]
fn a_plugin_allowed_any_host_gets_no_policy_unless_asked() {
    for (pattern, reason) in [
        ("https://*", "any host (`*`)"),
        ("*://*:*", "any host (`*`)"),
        ("https://api.example.com:*", "a name on any port"),
    ] {
        let fixture = Fixture::new(&format!(
            "[plugins.fetch]\ncomponent = \"{{fetch}}\"\nallow_hosts = [\"https://example.com\", \"{pattern}\"]\n"
        ));
        let manifest = fixture.manifest.display().to_string();
        let (code, stdout, stderr) = common::warden(
            &["deploy", "network-policy", "--manifest", &manifest],
            fixture.dir.path(),
        );
        assert_ne!(code, 0, "{pattern} rendered:\n{stdout}");
        assert!(
            stdout.is_empty(),
            "{pattern}: half a policy printed:\n{stdout}"
        );
        assert!(
            stderr.contains("cannot be expressed as a NetworkPolicy")
                && stderr.contains(&format!("plugins.fetch.allow_hosts: \"{pattern}\""))
                && stderr.contains(reason)
                && stderr.contains("--allow-any-host"),
            "{pattern}: {stderr}"
        );

        // Asked explicitly: every public address, never a private one, with a warning.
        let (text, policy) = render_valid(&fixture.manifest, &["--allow-any-host"]);
        assert!(text.contains("# WARNING"), "{text}");
        assert!(text.contains(&format!(
            "fetch: {pattern}: rendered as every public address"
        )));
        assert_no_allow_all(&policy);
        for rule in policy["spec"]["egress"].as_array().expect("egress") {
            assert!(rule["to"].is_array(), "a rule without `to`: {rule}");
        }
    }
}

#[test]
fn options_cannot_inject_yaml() {
    let fixture = Fixture::new("[plugins.codec]\ncomponent = \"{codec}\"\n");
    let manifest = fixture.manifest.display().to_string();
    for (args, needle) in [
        (
            vec!["--namespace", "x\"\nkind: Secret"],
            "invalid namespace",
        ),
        (vec!["--name", "Warden Egress"], "invalid name"),
        (vec!["--selector", "app=a\"b"], "invalid selector"),
        (vec!["--selector", "app"], "expected KEY=VALUE"),
    ] {
        let mut all = vec!["deploy", "network-policy", "--manifest", &manifest];
        all.extend(args.iter().copied());
        let (code, stdout, stderr) = common::warden(&all, fixture.dir.path());
        assert_ne!(code, 0, "{args:?} accepted:\n{stdout}");
        assert!(stdout.is_empty());
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    // A selector of its own replaces the default one.
    let (_, policy) = render_valid(
        &fixture.manifest,
        &["--selector", "app=mcp", "--selector", "tier=tools"],
    );
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        json!({ "app": "mcp", "tier": "tools" })
    );
}
