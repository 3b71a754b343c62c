//! Plugins written in Python and JavaScript are served like Rust ones: the examples built with
//! their scripts (`plugins/python/build.sh`, `plugins/js/build.sh`, thin wrappers over
//! `warden build`) and plugins written by `warden new --lang python|js` in a directory outside
//! the repository, built with `warden build`, are listed with their WIT doc comments as
//! descriptions, called through a real MCP client, and held by the same sandbox (a file
//! outside the grant, a host not allowed). A failed `warden build` leaves the previous
//! component byte for byte.
//!
//! `warden build` installs componentize-py (PyPI) and componentize-js + jco (npm) under
//! `target/toolchains` (`WARDEN_TOOLCHAINS`) on first use and reuses them afterwards. A
//! toolchain that cannot be installed fails these tests: they never skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use common::{Fixture, err_text, ok_text, warden};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is in the repository")
        .to_path_buf()
}

/// The two example components, built once per test run (the scripts skip an up-to-date one).
struct Components {
    textstats: PathBuf,
    jsonapi: PathBuf,
}

fn components() -> &'static Components {
    static BUILT: OnceLock<Components> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("polyglot");
        let built = Components {
            textstats: build("plugins/python/build.sh", "textstats", &out),
            jsonapi: build("plugins/js/build.sh", "jsonapi", &out),
        };
        // Compile both into the shared cache once, before the tests start servers in parallel
        // (each would compile them again, for a minute or more each on a busy machine).
        let (_dir, manifest) = check_manifest(&built);
        let (code, stdout, stderr) = warden(&["--log", "info", "check", &manifest], &root());
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        eprintln!("first start: {}", loaded(&stderr).join("\n"));
        built
    })
}

/// A manifest with both plugins and no grant, using the tests' shared compile cache; the
/// temporary directory holding it goes with it.
fn check_manifest(built: &Components) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("warden.toml");
    std::fs::write(
        &manifest,
        format!(
            "[cache]\ndir = \"{}\"\n\n[plugins.textstats]\ncomponent = \"{}\"\n\n\
             [plugins.jsonapi]\ncomponent = \"{}\"\n",
            common::cache_dir().display(),
            built.textstats.display(),
            built.jsonapi.display()
        ),
    )
    .expect("manifest");
    let manifest = manifest.display().to_string();
    (dir, manifest)
}

/// The `plugin ready` lines of warden's log (plugin, cache or compiled, milliseconds).
fn loaded(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("plugin ready"))
        .collect()
}

/// Where the tests install the toolchains (kept across runs).
fn toolchains() -> PathBuf {
    root().join("target").join("toolchains")
}

/// Run a build script for one plugin; fails loudly with the script's output.
fn build(script: &str, name: &str, out: &Path) -> PathBuf {
    let output = Command::new("bash")
        .arg(root().join(script))
        .arg(name)
        .env("WARDEN", env!("CARGO_BIN_EXE_warden"))
        .env("WARDEN_TOOLCHAINS", toolchains())
        .env("WARDEN_POLYGLOT_OUT", out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash {script}: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} {name} failed ({}). The Python and JavaScript toolchains must be installable \
         here (python3 with venv and pip, node and npm, access to PyPI and npm); this test does \
         not skip.\n{stderr}",
        output.status
    );
    eprintln!("{stderr}");
    let wasm = out.join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "{script} did not write {}", wasm.display());
    wasm
}

/// A tiny JSON API on 127.0.0.1 that counts the requests it receives.
///
/// `GET /items` answers a list of items; `POST /echo` answers `{"received": BODY}`; anything
/// else is a 404 with a JSON error.
struct Api {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Api {
    async fn start() -> Api {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(answer(socket, recorded.clone()));
            }
        });
        Api { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

async fn answer(mut socket: TcpStream, requests: Arc<Mutex<Vec<String>>>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
        if data.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    let body = String::from_utf8_lossy(&data[head_end..]).into_owned();
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    requests.lock().expect("lock").push(request_line.clone());
    let (status, reply) = if request_line.starts_with("GET /items ") {
        (
            "200 OK",
            json!({"items": [{"name": "first"}, {"name": "second", "tags": ["a/b"]}]}),
        )
    } else if request_line.starts_with("POST /echo ") {
        let received: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        ("200 OK", json!({ "received": received }))
    } else {
        ("404 Not Found", json!({"error": "not found"}))
    };
    let reply = reply.to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{reply}",
        reply.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// Both plugins: `textstats` reads `{dir}/data` as `/data`, `jsonapi` may reach `api` only.
fn fixture(api: &Api) -> Fixture {
    let built = components();
    let fixture = Fixture::new(&format!(
        r#"
[plugins.textstats]
component = "{textstats}"
dirs = [{{ host = "{{dir}}/data", guest = "/data", mode = "ro" }}]


[plugins.jsonapi]
component = "{jsonapi}"
allow_hosts = ["http://127.0.0.1:{port}"]
"#,
        textstats = built.textstats.display(),
        jsonapi = built.jsonapi.display(),
        port = api.port,
    ));
    std::fs::create_dir_all(fixture.path("data")).expect("data dir");
    std::fs::write(
        fixture.path("data/people.csv"),
        "name,age,score\nada,36,9.5\nbob,41,7\ncy,,8.25\n",
    )
    .expect("csv");
    std::fs::write(
        fixture.path("data/notes.txt"),
        "The cat and the hat.\nthe end\n",
    )
    .expect("text");
    std::fs::write(fixture.path("secret.txt"), "the secret outside the grant").expect("secret");
    fixture
}

/// The JSON of a structured result.
fn structured(result: &CallToolResult) -> Value {
    serde_json::from_str(&ok_text(result)).expect("a JSON result")
}

#[tokio::test]
async fn python_and_javascript_tools_are_listed_with_their_docs() {
    let api = Api::start().await;
    let fixture = fixture(&api);
    let client = fixture.client().await;
    let tools = client.service.list_all_tools().await.expect("tools/list");
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "jsonapi__get_json",
            "jsonapi__post_json",
            "textstats__csv_summary",
            "textstats__text_stats"
        ]
    );
    let tool = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} is listed"))
    };
    // The descriptions come from the WIT doc comments, which `warden embed-docs` put in.
    let csv = tool("textstats__csv_summary");
    assert!(
        csv.description
            .as_deref()
            .is_some_and(|d| d.starts_with("Summarize a CSV file whose first row is a header")),
        "{csv:?}"
    );
    assert_eq!(
        csv.input_schema["required"],
        json!(["path"]),
        "{:?}",
        csv.input_schema
    );
    let get = tool("jsonapi__get_json");
    assert!(
        get.description
            .as_deref()
            .is_some_and(|d| d.contains("RFC 6901")),
        "{get:?}"
    );
    assert!(
        get.input_schema["properties"]["pointer"].is_object(),
        "{:?}",
        get.input_schema
    );
    // componentize-py's build-time `init` export is not served as a tool.
    let init = client
        .service
        .call_tool(rmcp::model::CallToolRequestParams::new("textstats__init"))
        .await;
    assert!(init.is_err(), "{init:?}");
    client.close().await;

    // `warden inspect` reads the same docs from the component file.
    let (code, stdout, stderr) = warden(
        &["inspect", &components().jsonapi.display().to_string()],
        &root(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("Send `body` (JSON text) to `url` with POST"),
        "{stdout}"
    );

    // Embedding again replaces the section: the same bytes come out.
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("again.wasm");
    let (code, stdout, stderr) = warden(
        &[
            "embed-docs",
            &components().jsonapi.display().to_string(),
            "--wit",
            "plugins/js/jsonapi/wit",
            "-o",
            &copy.display().to_string(),
        ],
        &root(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("2 of 2 function(s) documented"), "{stdout}");
    assert!(
        std::fs::read(&copy).expect("copy") == std::fs::read(&components().jsonapi).expect("built"),
        "embed-docs changed an already documented component"
    );
}

#[tokio::test]
async fn the_python_plugin_reads_granted_files_and_nothing_else() {
    let api = Api::start().await;
    let fixture = fixture(&api);
    let client = fixture.client().await;

    let table = structured(
        &client
            .call(
                "textstats__csv_summary",
                json!({"path": "/data/people.csv"}),
            )
            .await,
    );
    assert_eq!(table["rows"], 3);
    assert_eq!(
        table["columns"][1],
        json!({"name": "age", "kind": "integer", "filled": 2, "distinct": 2,
               "min": 36.0, "max": 41.0, "mean": 38.5})
    );
    assert_eq!(table["columns"][0]["kind"], "text");
    assert_eq!(table["columns"][2]["kind"], "number");

    let stats = structured(
        &client
            .call(
                "textstats__text_stats",
                json!({"path": "/data/notes.txt", "top": 2}),
            )
            .await,
    );
    assert_eq!(stats["lines"], 2);
    assert_eq!(stats["words"], 7);
    assert_eq!(
        stats["top_words"],
        json!([{"word": "the", "count": 3}, {"word": "and", "count": 1}])
    );

    // A WIT error comes back as a tool error the model can act on.
    let error = err_text(
        &client
            .call(
                "textstats__csv_summary",
                json!({"path": "/data/people.csv", "delimiter": ";;"}),
            )
            .await,
    );
    assert!(error.contains("delimiter must be one character"), "{error}");

    // Outside the grant: `..`, the host's real path, and any other absolute path.
    let secret = fixture.path("secret.txt").display().to_string();
    for path in ["/data/../secret.txt", secret.as_str(), "/etc/passwd"] {
        let result = client
            .call("textstats__text_stats", json!({"path": path}))
            .await;
        let message = err_text(&result);
        assert!(
            message.contains("not permitted") || message.contains("not found"),
            "{path}: {message}"
        );
        assert!(!message.contains("secret outside"), "{message}");
    }
    // The server still serves.
    let again = client
        .call("textstats__text_stats", json!({"path": "/data/notes.txt"}))
        .await;
    ok_text(&again);
    client.close().await;
}

/// The server's minor page faults so far, from /proc.
fn minor_faults(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The fields after the command name, which is in parentheses; minflt is the 10th field.
    let (_, fields) = stat.rsplit_once(')').expect("a stat line");
    fields
        .split_whitespace()
        .nth(7)
        .and_then(|field| field.parse().ok())
        .expect("minflt")
}

/// A warm call of either plugin takes next to no page faults: when an instance is dropped, the
/// pool restores the pages its call dirtied in place, however scattered they are, so the next
/// instance finds them mapped. With wasmtime's own limit of 32 regions of dirtied pages per
/// reset, a Python call took 239 faults and a JavaScript one 49 (vendor/README.md).
#[tokio::test]
async fn warm_python_and_javascript_calls_take_next_to_no_page_faults() {
    const CALLS: u64 = 20;
    let api = Api::start().await;
    let fixture = fixture(&api);
    let client = fixture.client().await;
    // On a cold cache the calls start on the baseline builds; measure after the optimized
    // builds are in (a swap mid-measurement faults in new code and images).
    client
        .wait_until("both plugins' optimized builds", |c| {
            c.stderr().matches("plugin ready").count() == 2
        })
        .await;
    let pid = client.pid.expect("the server's pid");
    let cases = [
        (
            "textstats__text_stats",
            json!({"path": "/data/notes.txt", "top": 2}),
        ),
        (
            "jsonapi__post_json",
            json!({"url": api.url("/echo"), "body": "not json"}),
        ),
    ];
    for (tool, arguments) in cases {
        let call = || client.call(tool, arguments.clone());
        // The first calls fault in code and the pool slots the calls alternate between.
        for _ in 0..10 {
            call().await;
        }
        let before = minor_faults(pid);
        for _ in 0..CALLS {
            let result = call().await;
            if tool.starts_with("jsonapi") {
                assert!(err_text(&result).contains("body is not valid JSON"));
            } else {
                ok_text(&result);
            }
        }
        let per_call = (minor_faults(pid) - before) / CALLS;
        assert!(
            per_call < 20,
            "{tool}: {per_call} page faults per warm call"
        );
    }
    assert!(api.requests().is_empty(), "{:?}", api.requests());
    client.close().await;
}

#[tokio::test]
async fn the_javascript_plugin_reaches_granted_hosts_only() {
    let api = Api::start().await;
    let other = Api::start().await;
    let fixture = fixture(&api);
    let client = fixture.client().await;

    let reply = structured(
        &client
            .call(
                "jsonapi__get_json",
                json!({"url": api.url("/items"), "pointer": "/items/1/tags/0"}),
            )
            .await,
    );
    assert_eq!(reply["status"], 200);
    assert_eq!(reply["content_type"], "application/json");
    assert_eq!(reply["value"], "\"a/b\"");

    let echoed = structured(
        &client
            .call(
                "jsonapi__post_json",
                json!({"url": api.url("/echo"), "body": "{\"q\": [1, 2]}"}),
            )
            .await,
    );
    assert_eq!(
        echoed["value"],
        json!({"received": {"q": [1, 2]}}).to_string()
    );

    let missing = err_text(
        &client
            .call(
                "jsonapi__get_json",
                json!({"url": api.url("/items"), "pointer": "/nothing"}),
            )
            .await,
    );
    assert!(missing.contains("selects nothing"), "{missing}");
    assert_eq!(api.requests().len(), 3, "{:?}", api.requests());

    // Another port on the same address is not granted: refused before any connection.
    let url = other.url("/items");
    let refused = err_text(&client.call("jsonapi__get_json", json!({"url": url})).await);
    assert!(
        refused.contains(&format!("request to {url} failed")),
        "{refused}"
    );
    assert!(other.requests().is_empty(), "{:?}", other.requests());
    // warden's log names the reason; wait for it to come through the pipe (a hang guard).
    let reason = format!("port {} is not granted", other.port);
    let mut stderr = client.stderr();
    for _ in 0..100 {
        if stderr.contains(&reason) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        stderr = client.stderr();
    }
    assert!(
        stderr.contains("outbound request refused") && stderr.contains(&reason),
        "{stderr}"
    );
    client.close().await;
}

#[test]
fn a_second_start_loads_the_compiled_components_from_the_cache() {
    // `components()` compiled them into the cache (or found them there): this start is the
    // second one, and must load both without compiling.
    let (dir, manifest) = check_manifest(components());
    let (code, stdout, stderr) = warden(&["--log", "info", "check", &manifest], dir.path());
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let loaded = loaded(&stderr);
    eprintln!("second start:\n{}", loaded.join("\n"));
    assert_eq!(loaded.len(), 2, "{stderr}");
    assert!(
        loaded.iter().all(|l| l.contains("source=\"cache\"")),
        "{stderr}"
    );
    assert!(
        stdout.contains("tool        textstats__csv_summary"),
        "{stdout}"
    );
}

/// A manifest serving `plugin` (a component) from a compile cache of its own, empty: the
/// server's start is a first start.
fn cold(plugin: &str, component: &Path) -> Fixture {
    let fixture = Fixture::new(&format!(
        "[cache]\ndir = \"{{dir}}/cold-cache\"\n\n[plugins.{plugin}]\ncomponent = \"{}\"\n\
         dirs = [{{ host = \"{{dir}}/data\", guest = \"/data\", mode = \"ro\" }}]\n",
        component.display()
    ));
    std::fs::create_dir_all(fixture.path("data")).expect("data dir");
    fixture
}

#[tokio::test]
async fn initialize_and_tools_list_answer_before_a_cold_plugin_compiled() {
    let fixture = cold("textstats", &components().textstats);
    std::fs::write(fixture.path("data/notes.txt"), "one two two\n").expect("text");
    let started = std::time::Instant::now();
    let client = fixture.client().await;
    let names = client.tool_names().await;
    let answered = started.elapsed();
    // Compiling componentize-py's output takes seconds; the handshake and the list do not
    // wait for it.
    assert!(
        !client.stderr().contains("plugin ready"),
        "the plugin was compiled before initialize was answered ({answered:?}):\n{}",
        client.stderr()
    );
    assert!(
        names.contains(&"textstats__text_stats".to_owned()),
        "{names:?}"
    );

    // A call waits for the baseline (Winch) build, then runs; the optimized build follows.
    let result = client
        .call("textstats__text_stats", json!({"path": "/data/notes.txt"}))
        .await;
    assert!(ok_text(&result).contains("two"), "{result:?}");
    common::assert_logged(&client.stderr(), common::ON_BASELINE);
    client
        .wait_until("the optimized build", |c| !loaded(&c.stderr()).is_empty())
        .await;
    let stderr = client.stderr();
    assert!(
        stderr.contains("compiling plugin `textstats` (first start only, cached afterwards) 1/1"),
        "{stderr}"
    );
    let ready = loaded(&stderr);
    assert!(
        ready.len() == 1 && ready[0].contains("source=\"compiled\""),
        "{stderr}"
    );
    eprintln!(
        "initialize and tools/list answered in {answered:?}; {}",
        ready[0]
    );
    client.close().await;
}

/// Ready once every plugin is callable: on its baseline build, before the optimized one.
#[tokio::test]
async fn readyz_is_503_until_every_plugin_compiled() {
    let fixture = cold("jsonapi", &components().jsonapi);
    let server = fixture.http_server(&[]).await;
    let readyz = format!("{}/readyz", server.base);
    let first = reqwest::get(&readyz).await.expect("GET /readyz");
    assert_eq!(first.status(), 503);
    let body = first.text().await.expect("body");
    assert!(body.contains("1 plugin(s) still compiling"), "{body}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let status = reqwest::get(&readyz).await.expect("GET /readyz").status();
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready:\n{}",
            server.stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    common::assert_logged(&server.stderr(), common::ON_BASELINE);
}

/// `warden ARGS` in `cwd` with the tests' toolchains: exit code, stdout, stderr.
fn warden_build(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(cwd)
        .env("WARDEN_TOOLCHAINS", toolchains())
        .output()
        .expect("run warden");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn new_python_and_javascript_plugins_build_outside_the_repository_and_serve() {
    let temp = tempfile::tempdir().expect("tempdir");
    assert!(!temp.path().starts_with(root()), "outside the repository");
    let mut components = Vec::new();
    for (lang, name, entry) in [
        ("python", "py-greet", "app.py"),
        ("js", "js-greet", "app.js"),
    ] {
        let started = std::time::Instant::now();
        let (code, stdout, stderr) = warden(&["new", name, "--lang", lang], temp.path());
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.contains(&format!("created {lang} plugin {name}")),
            "{stdout}"
        );
        let dir = temp.path().join(name);
        assert!(dir.join(entry).is_file() && dir.join("wit/world.wit").is_file());

        // `warden build` with no argument builds the current folder.
        let (code, stdout, stderr) = warden_build(&["build"], &dir);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        eprintln!("{stderr}");
        assert!(
            stderr.contains(&format!("building {name} ({lang}")),
            "{stderr}"
        );
        assert!(
            stdout.contains(&format!("{lang} plugin {name}, 1 tool(s), 1 documented")),
            "{stdout}"
        );
        let tool = format!("{}__hello", name);
        assert!(
            stdout.contains(&format!(
                r#"warden call --manifest ./warden.toml {tool} '{{"name":"Ada"}}'"#
            )),
            "{stdout}"
        );
        let wasm = dir.join(format!("target/{name}.wasm"));
        assert!(wasm.is_file(), "{stdout}");
        eprintln!(
            "{lang}: warden new + warden build in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        // Up to date: nothing rebuilt, the same bytes.
        let before = std::fs::read(&wasm).expect("component");
        let (code, stdout, stderr) = warden_build(&["build", "."], &dir);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("(up to date)"), "{stdout}");

        // A build that fails leaves the previous component byte for byte.
        let app = dir.join(entry);
        let source = std::fs::read_to_string(&app).expect("source");
        std::fs::write(&app, format!("{source}\n)(\n")).expect("break the source");
        let (code, stdout, stderr) = warden_build(&["build"], &dir);
        assert_ne!(code, 0, "{stdout}\n{stderr}");
        assert!(
            stderr.contains("previous component is untouched"),
            "{stderr}"
        );
        assert!(
            std::fs::read(&wasm).expect("component") == before,
            "{lang}: changed"
        );
        std::fs::write(&app, source).expect("restore");
        components.push((name, wasm));
    }

    // Both served side by side, with their descriptions, through an MCP client.
    let fixture = Fixture::new(&format!(
        "[plugins.py-greet]\ncomponent = \"{}\"\n\n[plugins.js-greet]\ncomponent = \"{}\"\n",
        components[0].1.display(),
        components[1].1.display()
    ));
    let client = fixture.client().await;
    let tools = client.service.list_all_tools().await.expect("tools/list");
    for (name, _) in &components {
        let tool = tools
            .iter()
            .find(|t| t.name == format!("{name}__hello"))
            .unwrap_or_else(|| panic!("{name}__hello is listed: {tools:?}"));
        assert!(
            tool.description
                .as_deref()
                .is_some_and(|d| d.starts_with("Greet `name`, `times` times")),
            "{tool:?}"
        );
        let greeting = ok_text(
            &client
                .call(
                    &format!("{name}__hello"),
                    json!({"name": "Ada", "times": 2}),
                )
                .await,
        );
        assert_eq!(greeting, "Hello, Ada!\nHello, Ada!", "{name}");
        let refused = err_text(
            &client
                .call(
                    &format!("{name}__hello"),
                    json!({"name": "Ada", "times": 0}),
                )
                .await,
        );
        assert!(
            refused.contains("times must be between 1 and 10"),
            "{name}: {refused}"
        );
    }
    client.close().await;
}
