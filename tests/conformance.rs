//! The official MCP conformance suite (`@modelcontextprotocol/conformance`) against the real
//! `warden` binary over Streamable HTTP, serving the `conformance` fixture plugin.
//!
//! The test installs Node 22 and two versions of the suite with npm into
//! `target/conformance/` (once; a marker file says an install is complete), starts
//! `warden serve --http 127.0.0.1:0` on `tests/conformance/warden.toml`, and runs the suite's
//! server scenarios several times ([`RUNS`]). Every failing check (status `FAILURE` or
//! `WARNING`) must be listed in `tests/conformance/expected-failures.toml` with the reason, and
//! every entry there must still fail somewhere, so the file stays true. The suite's own results
//! stay in `target/conformance/results/RUN/` for reading. See docs/CONFORMANCE.md.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Fixture;
use serde::Deserialize;
use serde_json::Value;

/// The suite's `latest` npm tag when the expected failures were last reviewed.
const LATEST: &str = "0.1.16";
/// The newest 0.2.0 alpha when the expected failures were last reviewed.
const ALPHA: &str = "0.2.0-alpha.12";
/// The Node.js the suite needs (the machine's Node 20 makes npm pick old versions or crash).
const NODE: &str = "node@22";

/// The suite runs: a name (used in `expected-failures.toml`), the suite version and the extra
/// arguments of `conformance server`.
const RUNS: &[(&str, &str, &[&str])] = &[
    ("latest", LATEST, &[]),
    ("alpha", ALPHA, &[]),
    ("alpha/2025-11-25", ALPHA, &["--requirements", "2025-11-25"]),
    ("alpha/2026-07-28", ALPHA, &["--requirements", "2026-07-28"]),
];

/// Hang guards, far above what a healthy run takes.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
const LISTEN_TIMEOUT: Duration = Duration::from_secs(120);
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// Per-scenario timeout passed to suite versions that take `--timeout` (milliseconds).
const SCENARIO_TIMEOUT_MS: &str = "30000";

#[test]
fn official_suite_finds_only_expected_failures() {
    let root = conformance_dir();
    let expected = ExpectedFailures::load(&source_dir().join("expected-failures.toml"));

    let mut suites = BTreeMap::new();
    for (_, version, _) in RUNS {
        if !suites.contains_key(version) {
            suites.insert(*version, Suite::install(&root, version));
        }
    }

    let fixture = Fixture::new(
        &fs::read_to_string(source_dir().join("warden.toml"))
            .unwrap_or_else(|e| panic!("read tests/conformance/warden.toml: {e}")),
    );
    let server = Server::start(&fixture);

    let results_dir = root.join("results");
    let _ = fs::remove_dir_all(&results_dir);
    let mut results = Vec::new();
    for (name, version, args) in RUNS {
        let out = results_dir.join(name.replace('/', "-"));
        let checks = suites[version].run(&server, args, &out);
        assert!(
            !checks.is_empty(),
            "run {name}: the suite wrote no results (see {}); warden's log:\n{}",
            out.display(),
            server.log()
        );
        results.push(RunResult { name, checks, out });
    }
    drop(server);

    let report = expected.compare(&results);
    eprintln!("{}", report.summary);
    assert!(
        report.unexpected.is_empty() && report.stale.is_empty(),
        "the conformance suite disagrees with tests/conformance/expected-failures.toml\n\n\
         unexpected failures (fix warden, or add an entry saying why):\n{}\n\n\
         stale entries (they no longer fail: remove them or narrow their `runs`):\n{}",
        lines(&report.unexpected),
        lines(&report.stale),
    );
}

// --- Installing the suite -------------------------------------------------------------------

/// `target/conformance`, next to the other build products and kept between runs.
fn conformance_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .map_or_else(|| tmp.clone(), Path::to_path_buf)
        .join("conformance")
}

/// `tests/conformance`, where the manifest and the expected failures live.
fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("conformance")
}

/// One installed version of the suite, with the Node.js that runs it.
struct Suite {
    dir: PathBuf,
    version: String,
}

impl Suite {
    /// Install `version` of the suite and Node 22 into `root/VERSION`, unless a complete
    /// install is already there. Panics with npm's output when it cannot.
    fn install(root: &Path, version: &str) -> Self {
        let suite = Self {
            dir: root.join(version),
            version: version.to_string(),
        };
        let marker = suite.dir.join(".installed");
        if marker.is_file() && suite.entry().is_file() && suite.node().is_file() {
            return suite;
        }
        fs::create_dir_all(&suite.dir)
            .unwrap_or_else(|e| panic!("create {}: {e}", suite.dir.display()));
        // A package.json of its own, so npm installs here and not in an enclosing project.
        fs::write(
            suite.dir.join("package.json"),
            "{ \"name\": \"warden-conformance\", \"private\": true }\n",
        )
        .unwrap_or_else(|e| panic!("write package.json in {}: {e}", suite.dir.display()));
        let package = format!("@modelcontextprotocol/conformance@{version}");
        let mut command = Command::new("npm");
        command
            .args(["install", "--no-audit", "--no-fund", "--save-exact", NODE])
            .arg(&package)
            .current_dir(&suite.dir);
        let (status, output) = run_logged(
            command,
            &suite.dir.join("npm-install.log"),
            INSTALL_TIMEOUT,
        )
        .unwrap_or_else(|e| {
            panic!(
                "cannot run npm to install {package} and {NODE} (the conformance test needs \
                     npm and network access on its first run): {e}"
            )
        });
        assert!(
            status == Some(0) && suite.entry().is_file() && suite.node().is_file(),
            "installing {package} and {NODE} into {} failed ({}):\n{output}",
            suite.dir.display(),
            status.map_or("timed out".to_string(), |c| format!("exit code {c}")),
        );
        let node_version = Command::new(suite.node())
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        assert!(
            node_version.starts_with("v22."),
            "{} is not Node 22 but {node_version:?}",
            suite.node().display()
        );
        fs::write(&marker, format!("{package} {NODE} {node_version}\n"))
            .unwrap_or_else(|e| panic!("write {}: {e}", marker.display()));
        suite
    }

    fn bin(&self) -> PathBuf {
        self.dir.join("node_modules").join(".bin")
    }

    fn node(&self) -> PathBuf {
        self.bin().join("node")
    }

    /// The suite's command-line entry point.
    fn entry(&self) -> PathBuf {
        self.dir
            .join("node_modules")
            .join("@modelcontextprotocol")
            .join("conformance")
            .join("dist")
            .join("index.js")
    }

    /// Run `conformance server` against `server` with `args`, writing results into `out`,
    /// and return every check it recorded.
    fn run(&self, server: &Server, args: &[&str], out: &Path) -> Vec<Check> {
        fs::create_dir_all(out).unwrap_or_else(|e| panic!("create {}: {e}", out.display()));
        let mut command = Command::new(self.node());
        command
            .arg(self.entry())
            .args(["server", "--url", &server.url, "--output-dir"])
            .arg(out)
            .args(args)
            .env("PATH", self.path_env())
            .env("NO_COLOR", "1");
        if self.version.starts_with("0.2") {
            command.args(["--timeout", SCENARIO_TIMEOUT_MS]);
        }
        let (status, output) = run_logged(command, &out.join("suite.log"), RUN_TIMEOUT)
            .unwrap_or_else(|e| panic!("run the conformance suite {}: {e}", self.version));
        assert!(
            status.is_some(),
            "the conformance suite {} {args:?} did not finish within {RUN_TIMEOUT:?}:\n{output}",
            self.version
        );
        read_checks(out)
    }

    /// `PATH` with this install's `node` first, for anything the suite spawns.
    fn path_env(&self) -> std::ffi::OsString {
        let mut paths = vec![self.bin()];
        if let Some(path) = std::env::var_os("PATH") {
            paths.extend(std::env::split_paths(&path));
        }
        std::env::join_paths(paths).unwrap_or_default()
    }
}

/// Run `command` with stdout and stderr going to `log`, killing it after `timeout`. Returns its
/// exit code (`None` when it was killed) and the log's text.
fn run_logged(
    mut command: Command,
    log: &Path,
    timeout: Duration,
) -> std::io::Result<(Option<i32>, String)> {
    let file = fs::File::create(log)?;
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file);
    let mut child = command.spawn()?;
    let deadline = Instant::now() + timeout;
    let code = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status.code().unwrap_or(-1));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Ok((code, fs::read_to_string(log).unwrap_or_default()))
}

// --- The server -----------------------------------------------------------------------------

/// `warden serve --http 127.0.0.1:0`, killed when dropped.
struct Server {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Start warden on `fixture`'s manifest and wait for the address it listens on.
    fn start(fixture: &Fixture) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["serve", "--http", "127.0.0.1:0", "--manifest"])
            .arg(&fixture.manifest)
            .env("WARDEN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn warden");
        let log = Arc::new(Mutex::new(String::new()));
        let (url_tx, url_rx) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            let log = log.clone();
            // Keep reading after the address so warden never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut url_tx = Some(url_tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(url) = listening_url(&line)
                        && let Some(tx) = url_tx.take()
                    {
                        let _ = tx.send(url);
                    }
                    if let Ok(mut log) = log.lock() {
                        log.push_str(&line);
                        log.push('\n');
                    }
                }
            });
        }
        let url = url_rx.recv_timeout(LISTEN_TIMEOUT);
        let mut server = Self {
            child,
            url: String::new(),
            log,
        };
        match url {
            Ok(url) => server.url = url,
            Err(_) => panic!(
                "warden did not report an HTTP address within {LISTEN_TIMEOUT:?}; its log:\n{}",
                server.log()
            ),
        }
        server
    }

    /// Everything warden wrote to stderr so far.
    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The MCP endpoint in a log line such as `listening on http://127.0.0.1:PORT/mcp`.
fn listening_url(line: &str) -> Option<String> {
    if !line.contains("listening") {
        return None;
    }
    let start = line.find("http://")?;
    let url: String = line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | ',' | ')'))
        .collect();
    Some(if url.ends_with("/mcp") {
        url
    } else {
        format!("{}/mcp", url.trim_end_matches('/'))
    })
}

// --- Results --------------------------------------------------------------------------------

/// One check the suite recorded.
#[derive(Debug)]
struct Check {
    scenario: String,
    id: String,
    status: String,
    message: String,
}

impl Check {
    /// `FAILURE` and `WARNING` count as failing, as in the suite's own baseline logic.
    fn failed(&self) -> bool {
        matches!(self.status.as_str(), "FAILURE" | "WARNING")
    }
}

/// The checks of one suite run.
struct RunResult {
    name: &'static str,
    checks: Vec<Check>,
    out: PathBuf,
}

/// Every check in `out/server-SCENARIO-TIMESTAMP/checks.json`.
fn read_checks(out: &Path) -> Vec<Check> {
    let mut checks = Vec::new();
    let Ok(entries) = fs::read_dir(out) else {
        return checks;
    };
    let mut dirs: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    dirs.sort();
    for dir in dirs {
        let file = dir.join("checks.json");
        let (Some(scenario), Ok(text)) = (scenario_of(&dir), fs::read_to_string(&file)) else {
            continue;
        };
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&text) else {
            panic!("{} is not a JSON array of checks", file.display());
        };
        for item in items {
            let field = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or("");
            checks.push(Check {
                scenario: scenario.clone(),
                id: field("id").to_string(),
                status: field("status").to_string(),
                message: field("errorMessage").to_string(),
            });
        }
    }
    checks
}

/// `SCENARIO` in a result directory named `server-SCENARIO-2026-01-02T03-04-05-678Z`.
fn scenario_of(dir: &Path) -> Option<String> {
    const STAMP: usize = "-2026-01-02T03-04-05-678Z".len();
    let name = dir.file_name()?.to_str()?;
    let rest = name.strip_prefix("server-")?;
    let cut = rest.len().checked_sub(STAMP)?;
    (rest.ends_with('Z') && rest.as_bytes().get(cut) == Some(&b'-'))
        .then(|| rest[..cut].to_string())
}

// --- Expected failures ----------------------------------------------------------------------

/// `tests/conformance/expected-failures.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedFailures {
    #[serde(default)]
    fail: Vec<Expected>,
}

/// One expected failure.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    /// `SCENARIO` (any failing check of it) or `SCENARIO:CHECK-ID`.
    check: String,
    /// The runs it fails in; every run when absent.
    runs: Option<Vec<String>>,
    /// Why warden fails it.
    why: String,
}

impl Expected {
    fn applies_to(&self, run: &str) -> bool {
        self.runs
            .as_ref()
            .is_none_or(|runs| runs.iter().any(|r| r == run))
    }

    fn matches(&self, check: &Check) -> bool {
        match self.check.split_once(':') {
            Some((scenario, id)) => scenario == check.scenario && id == check.id,
            None => self.check == check.scenario,
        }
    }

    fn scenario(&self) -> &str {
        self.check
            .split_once(':')
            .map_or(self.check.as_str(), |(s, _)| s)
    }
}

/// What disagrees with the expected failures, and a readable summary of every run.
struct Report {
    unexpected: Vec<String>,
    stale: Vec<String>,
    summary: String,
}

impl ExpectedFailures {
    fn load(path: &Path) -> Self {
        let text =
            fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let expected: Self =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let names: Vec<_> = RUNS.iter().map(|(name, _, _)| *name).collect();
        for entry in &expected.fail {
            assert!(
                !entry.why.trim().is_empty(),
                "{}: {} has no reason",
                path.display(),
                entry.check
            );
            for run in entry.runs.iter().flatten() {
                assert!(
                    names.contains(&run.as_str()),
                    "{}: {}: unknown run {run:?} (runs: {names:?})",
                    path.display(),
                    entry.check
                );
            }
        }
        expected
    }

    fn compare(&self, results: &[RunResult]) -> Report {
        let mut unexpected = Vec::new();
        let mut used = vec![false; self.fail.len()];
        let mut stale = Vec::new();
        let mut summary = String::from("MCP conformance suite against warden:\n");
        for run in results {
            let (mut passed, mut expected, mut failed) = (0, 0, 0);
            for check in &run.checks {
                if !check.failed() {
                    passed += usize::from(check.status == "SUCCESS");
                    continue;
                }
                let hit = self
                    .fail
                    .iter()
                    .position(|e| e.applies_to(run.name) && e.matches(check));
                match hit {
                    Some(i) => {
                        used[i] = true;
                        expected += 1;
                    }
                    None => {
                        failed += 1;
                        unexpected.push(format!(
                            "{}: {}:{} {}: {}",
                            run.name, check.scenario, check.id, check.status, check.message
                        ));
                    }
                }
            }
            summary.push_str(&format!(
                "  {:<18} {passed:>3} passed, {expected:>3} expected failures, {failed:>3} \
                 unexpected ({})\n",
                run.name,
                run.out.display()
            ));
            // An entry for this run whose scenario ran here but did not fail is stale.
            for entry in self.fail.iter().filter(|e| e.applies_to(run.name)) {
                let ran = run.checks.iter().any(|c| c.scenario == entry.scenario());
                let fails = run.checks.iter().any(|c| c.failed() && entry.matches(c));
                if ran && !fails {
                    stale.push(format!("{}: {} ({})", run.name, entry.check, entry.why));
                }
            }
        }
        for (entry, used) in self.fail.iter().zip(used) {
            if !used {
                stale.push(format!("{} matches no failure in any run", entry.check));
            }
        }
        Report {
            unexpected,
            stale,
            summary,
        }
    }
}

fn lines(items: &[String]) -> String {
    if items.is_empty() {
        "  (none)".to_string()
    } else {
        items
            .iter()
            .map(|i| format!("  {i}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
