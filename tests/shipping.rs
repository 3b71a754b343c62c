//! End to end: audit shipping (`[[audit.ship]]`). The real `warden` binary serves real rmcp
//! clients over HTTP while its shippers send the audit log's records to standard output, to a
//! real `rsyslogd` (CEF and OCSF over TCP, JSON over UDP, JSON over TLS with a CA made by
//! `openssl`; started here unprivileged on 127.0.0.1), and to an OTLP/HTTP logs receiver run by
//! the test (protobuf and JSON, decoded with `opentelemetry-proto`). The receiver goes down,
//! comes back, hangs; warden restarts; log files are removed: every record arrives, in order,
//! once, or the missing ones are named.

mod common;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{Fixture, HttpServer, ok_text};
use rmcp::model::CallToolRequestParams;
use rmcp::service::{ClientLifecycleMode, RunningService};
use serde_json::{Value, json};

/// Generous bound for what should take well under a second.
const PATIENCE: Duration = Duration::from_secs(60);

fn fixture(ships: &str, rotate: &str) -> Fixture {
    Fixture::new(&format!(
        r#"
[audit]
path = "{{dir}}/audit/warden.jsonl"
rotate = "{rotate}"

{ships}

[plugins.testbed]
component = "{{testbed}}"
"#
    ))
}

/// Every line of the audit log at `log`, rotated files first, as written.
fn log_lines(log: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = warden::audit::rotated_files(log)
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    files.push(log.to_path_buf());
    files
        .iter()
        .flat_map(|file| {
            std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn seq(line: &str) -> u64 {
    let record: Value = serde_json::from_str(line).expect("a record");
    record["seq"].as_u64().expect("seq")
}

async fn connect(server: &HttpServer) -> RunningService<rmcp::RoleClient, common::Recorder> {
    server
        .connect(server.client_config(None), ClientLifecycleMode::Initialize)
        .await
        .expect("connect")
}

async fn emit(
    client: &RunningService<rmcp::RoleClient, common::Recorder>,
    calls: usize,
    who: &str,
) {
    for n in 0..calls {
        let result = client
            .call_tool(
                CallToolRequestParams::new("testbed__emit")
                    .with_arguments(common::object(json!({ "text": format!("{who} {n}") }))),
            )
            .await
            .expect("call");
        ok_text(&result);
    }
}

/// Wait (at most [`PATIENCE`]) until `done` holds.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `warden serve --http 127.0.0.1:0` with its stdout piped into a line collector.
async fn serve_with_stdout(fixture: &Fixture) -> (HttpServer, Arc<Mutex<Vec<String>>>) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--manifest"])
        .arg(&fixture.manifest)
        .args(["--http", "127.0.0.1:0"])
        .env("WARDEN_LOG", "info,warden=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn warden");
    let stdout = child.stdout.take().expect("stdout");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let collected = lines.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut reader = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            collected.lock().expect("lock").push(line);
        }
    });
    (HttpServer::started(child).await, lines)
}

#[tokio::test]
async fn stdout_lines_equal_the_files_lines() {
    let fixture = fixture(
        "[[audit.ship]]\nname = \"console\"\nkind = \"stdout\"\n",
        "64MiB",
    );
    let log = fixture.path("audit/warden.jsonl");
    let (server, stdout) = serve_with_stdout(&fixture).await;
    let client = connect(&server).await;
    emit(&client, 12, "stdout").await;
    // A refusal is a record too.
    let refused = client
        .call_tool(CallToolRequestParams::new("no_such_tool"))
        .await;
    assert!(refused.is_err(), "an unknown tool is a protocol error");
    let want = |lines: &[String]| lines.len() >= 14;
    wait_for("every record on stdout", || {
        want(&stdout.lock().expect("lock"))
            && stdout.lock().expect("lock").len() == log_lines(&log).len()
    })
    .await;
    let shipped = stdout.lock().expect("lock").clone();
    assert_eq!(
        shipped,
        log_lines(&log),
        "stdout holds the file's lines, byte for byte"
    );
    assert!(shipped[0].contains("\"kind\":\"start\""), "{}", shipped[0]);
    // `warden status` says the sink is caught up (once the shipper saw its write done).
    wait_for("the sink to be caught up", || {
        let status = server.status();
        let sink = &status["shipping"][0];
        sink["shipped"] == sink["written"]
    })
    .await;
    let status = server.status();
    let sinks = status["shipping"].as_array().expect("shipping in status");
    assert_eq!(sinks.len(), 1, "{status}");
    assert_eq!(sinks[0]["name"], "console");
    assert_eq!(sinks[0]["kind"], "stdout");
    assert_eq!(sinks[0]["shipped"], sinks[0]["written"], "{status}");
    assert_eq!(sinks[0]["written"], json!(shipped.len()), "{status}");
    // The cursor is persisted beside the log.
    let cursor: Value = serde_json::from_slice(
        &std::fs::read(fixture.path("audit/warden.jsonl.ship/console.cursor")).expect("cursor"),
    )
    .expect("cursor JSON");
    assert_eq!(cursor["next_seq"], json!(shipped.len()));
    client.cancel().await.expect("close");
}

// ---------------------------------------------------------------------------------------------
// rsyslogd

/// A real `rsyslogd` listening on two TCP ports of 127.0.0.1, each writing what it receives
/// (MSGID, structured data, MSG) to its own file.
struct Rsyslog {
    _dir: tempfile::TempDir,
    ports: [u16; 2],
    files: [PathBuf; 2],
    /// A UDP input (RFC 5426) and the file it writes.
    udp: (u16, PathBuf),
    child: std::process::Child,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn rsyslog() -> Rsyslog {
    rsyslog_with(None)
}

/// [`rsyslog`], its inputs TLS (RFC 5425) with the certificate and key of `tls` when given.
fn rsyslog_with(tls: Option<&Tls>) -> Rsyslog {
    let dir = tempfile::tempdir().expect("temporary directory");
    let ports = [free_port(), free_port()];
    let files = [dir.path().join("cef.log"), dir.path().join("ocsf.log")];
    let (driver, module) = match tls {
        Some(tls) => (
            format!(
                " DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"{}\" \
                 DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\"",
                tls.ca.display(),
                tls.cert.display(),
                tls.key.display()
            ),
            " StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\"",
        ),
        None => (String::new(), ""),
    };
    let mut conf = format!(
        "global(workDirectory=\"{}\" maxMessageSize=\"256k\"{driver})\n\
         module(load=\"imtcp\"{module})\n\
         template(name=\"raw\" type=\"string\" string=\"%msgid% %structured-data% %msg%\\n\")\n",
        dir.path().display()
    );
    for (n, (port, file)) in ports.iter().zip(&files).enumerate() {
        conf.push_str(&format!(
            "ruleset(name=\"r{n}\") {{ action(type=\"omfile\" file=\"{}\" template=\"raw\") }}\n\
             input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\" ruleset=\"r{n}\")\n",
            file.display()
        ));
    }
    let udp_port = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port();
    let udp_file = dir.path().join("udp.log");
    conf.push_str(&format!(
        "module(load=\"imudp\")\n\
         ruleset(name=\"ru\") {{ action(type=\"omfile\" file=\"{}\" template=\"raw\") }}\n\
         input(type=\"imudp\" port=\"{udp_port}\" address=\"127.0.0.1\" ruleset=\"ru\")\n",
        udp_file.display()
    ));
    let conf_path = dir.path().join("rsyslog.conf");
    std::fs::write(&conf_path, conf).expect("write rsyslog.conf");
    let mut command = Command::new("rsyslogd");
    command
        .arg("-n")
        .arg("-f")
        .arg(&conf_path)
        .arg("-i")
        .arg(dir.path().join("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl is async-signal-safe and touches nothing of the parent.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run rsyslogd ({e}): the shipping tests need it. Install it with \
             `apt-get install rsyslog`; .ci/run installs it on CI"
        )
    });
    let start = Instant::now();
    while !ports
        .iter()
        .all(|port| std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, *port)).is_ok())
    {
        assert!(start.elapsed() < PATIENCE, "rsyslogd did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Rsyslog {
        _dir: dir,
        ports,
        files,
        udp: (udp_port, udp_file),
        child,
    }
}

/// A test CA and a certificate it issued for 127.0.0.1, made with `openssl`.
struct Tls {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (apt-get install openssl; .ci/run installs it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn test_ca(name: &str) -> Tls {
    let dir = tempfile::tempdir().expect("temporary directory");
    let p = dir.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        name,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&ca, p);
    let mut request = vec!["req"];
    request.extend(ec);
    request.extend([
        "-keyout",
        "key.pem",
        "-out",
        "req.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&request, p);
    std::fs::write(
        p.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write ext.cnf");
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "req.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
        p,
    );
    Tls {
        ca: p.join("ca.pem"),
        cert: p.join("cert.pem"),
        key: p.join("key.pem"),
        _dir: dir,
    }
}

fn received(file: &Path) -> Vec<String> {
    std::fs::read(file)
        .map(|bytes| bytes.lines().map_while(Result::ok).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn rsyslog_receives_every_record_in_cef_and_ocsf() {
    let syslog = rsyslog();
    let fixture = fixture(
        &format!(
            "[[audit.ship]]\nname = \"cef\"\nkind = \"syslog\"\nurl = \"tcp://127.0.0.1:{}\"\nformat = \"cef\"\n\n\
             [[audit.ship]]\nname = \"ocsf\"\nkind = \"syslog\"\nurl = \"tcp://127.0.0.1:{}\"\nformat = \"ocsf\"\nbatch = 3\n\n\
             [[audit.ship]]\nname = \"udp\"\nkind = \"syslog\"\nurl = \"udp://127.0.0.1:{}\"\n",
            syslog.ports[0], syslog.ports[1], syslog.udp.0
        ),
        "64MiB",
    );
    let log = fixture.path("audit/warden.jsonl");
    let server = fixture.http_server(&[]).await;
    let client = connect(&server).await;
    emit(&client, 10, "siem").await;
    // A client-chosen name that tries to forge CEF fields, a second syslog message (a newline,
    // an octet count) and an OCSF field: it stays one value of one message.
    let forged = "x|CEF:0|evil|evil|1|forged|forged|10|suser=root\n27 <13>1 - - - - - - forged\" \"class_uid\":1";
    let refused = client.call_tool(CallToolRequestParams::new(forged)).await;
    assert!(refused.is_err());
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 12, "a start record, 10 calls, 1 refusal");
    wait_for("rsyslogd to receive every record three times over", || {
        received(&syslog.files[0]).len() >= lines.len()
            && received(&syslog.files[1]).len() >= lines.len()
            && received(&syslog.udp.1).len() >= lines.len()
    })
    .await;

    // JSON over UDP: each message ends with the record's line, as the file holds it.
    let udp = received(&syslog.udp.1);
    assert_eq!(udp.len(), lines.len(), "{udp:#?}");
    for (line, message) in lines.iter().zip(&udp) {
        assert!(message.ends_with(line.as_str()), "{message}\n{line}");
    }

    // CEF: one message per record, in order, each naming its seq in the structured data.
    let cef = received(&syslog.files[0]);
    assert_eq!(cef.len(), lines.len(), "{cef:#?}");
    for (line, message) in lines.iter().zip(&cef) {
        let record: Value = serde_json::from_str(line).expect("record");
        let seq = record["seq"].as_u64().expect("seq");
        assert!(
            message.contains(&format!("[warden@32473 seq=\"{seq}\"]")),
            "{message}"
        );
        let cef_part = &message[message.find("CEF:0|").expect("a CEF line")..];
        assert!(cef_part.starts_with("CEF:0|warden|warden|"), "{cef_part}");
        assert!(cef_part.contains(&format!("cn1={seq}")), "{cef_part}");
        if record.get("kind").is_none() {
            let outcome = record["outcome"].as_str().expect("outcome");
            assert!(message.starts_with("call "), "{message}");
            assert!(
                cef_part.contains(&format!("|tools/call:{outcome}|")),
                "{cef_part}"
            );
            assert!(
                cef_part.contains(&format!("outcome={outcome}")),
                "{cef_part}"
            );
            assert!(
                cef_part.contains(&format!(
                    "externalId={}",
                    record["id"].as_str().expect("id")
                )),
                "{cef_part}"
            );
            assert!(cef_part.contains("suser="), "{cef_part}");
        } else {
            assert!(message.starts_with("start "), "{message}");
        }
    }
    let forged_cef = cef
        .iter()
        .find(|m| m.contains("|tools/call:invalid|"))
        .expect("the refusal's message");
    assert!(
        forged_cef.contains(
            "cs2=x|CEF:0|evil|evil|1|forged|forged|10|suser\\=root\\n27 <13>1 - - - - - - forged\" \"class_uid\":1"
        ),
        "the name is one escaped extension value: {forged_cef}"
    );
    assert_eq!(
        forged_cef.matches("suser=").count(),
        1,
        "no forged field: {forged_cef}"
    );

    // OCSF: an API Activity event per record, holding the record itself.
    let ocsf = received(&syslog.files[1]);
    assert_eq!(ocsf.len(), lines.len(), "{ocsf:#?}");
    for (line, message) in lines.iter().zip(&ocsf) {
        let record: Value = serde_json::from_str(line).expect("record");
        let event: Value =
            serde_json::from_str(&message[message.find('{').expect("JSON")..]).expect("OCSF JSON");
        assert_eq!(event["class_uid"], 6003, "{event}");
        assert_eq!(event["category_uid"], 6, "{event}");
        assert_eq!(event["metadata"]["sequence"], record["seq"], "{event}");
        assert_eq!(
            event["unmapped"]["warden"], record,
            "the record travels whole"
        );
        assert_eq!(
            event["type_uid"].as_u64(),
            event["activity_id"].as_u64().map(|a| 600_300 + a)
        );
        if record.get("kind").is_none() {
            assert_eq!(event["actor"]["user"]["name"], record["principal"]);
            assert_eq!(event["api"]["request"]["uid"], record["id"]);
            assert_eq!(event["resources"][0]["name"], record["tool"]);
            let ok = record["outcome"] == "ok";
            assert_eq!(event["status_id"], if ok { 1 } else { 2 }, "{event}");
            if !ok {
                assert_eq!(event["resources"][0]["name"], forged, "{event}");
            }
        }
    }
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn rsyslog_over_tls_receives_every_record_and_another_ca_is_refused() {
    let tls = test_ca("/CN=warden test ca");
    let stranger = test_ca("/CN=another ca");
    let syslog = rsyslog_with(Some(&tls));
    let fixture = fixture(
        &format!(
            "[[audit.ship]]\nname = \"siem\"\nkind = \"syslog\"\nurl = \"tls://127.0.0.1:{port}\"\nca = \"{}\"\n\n\
             [[audit.ship]]\nname = \"mitm\"\nkind = \"syslog\"\nurl = \"tls://127.0.0.1:{port}\"\nca = \"{}\"\nretry_max = \"1s\"\n",
            tls.ca.display(),
            stranger.ca.display(),
            port = syslog.ports[0],
        ),
        "64MiB",
    );
    let log = fixture.path("audit/warden.jsonl");
    let server = fixture.http_server(&[]).await;
    let client = connect(&server).await;
    emit(&client, 6, "tls").await;
    let lines = log_lines(&log);
    wait_for("every record over TLS", || {
        received(&syslog.files[0]).len() >= lines.len()
    })
    .await;
    wait_for("the other CA's sink to fail", || {
        sink_status(&server.status(), "mitm")["failures"].as_u64() >= Some(1)
    })
    .await;
    // Only the sink that trusts the server's CA delivered: each record exactly once.
    let got = received(&syslog.files[0]);
    assert_eq!(got.len(), lines.len(), "{got:#?}");
    for (line, message) in lines.iter().zip(&got) {
        assert!(message.ends_with(line.as_str()), "{message}\n{line}");
    }
    wait_for("the sink's cursor", || {
        sink_status(&server.status(), "siem")["shipped"] == json!(lines.len())
    })
    .await;
    let status = server.status();
    let mitm = sink_status(&status, "mitm");
    assert_eq!(mitm["shipped"], 0, "{status}");
    let error = mitm["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("TLS") && error.contains("certificate"),
        "{error}"
    );
    assert_eq!(sink_status(&status, "siem")["shipped"], json!(lines.len()));
    client.cancel().await.expect("close");
}

// ---------------------------------------------------------------------------------------------
// An OTLP/HTTP logs receiver

/// How the receiver answers: store and acknowledge, refuse with 503, or never answer.
const UP: u8 = 0;
const DOWN: u8 = 1;
const HANG: u8 = 2;

/// An OTLP/HTTP receiver on 127.0.0.1: every log record it acknowledged, decoded.
#[derive(Clone)]
struct Receiver {
    mode: Arc<AtomicU8>,
    /// The bodies (the audit lines) of the log records acknowledged, in arrival order.
    got: Arc<Mutex<Vec<String>>>,
    /// Requests answered, whatever the answer.
    requests: Arc<Mutex<u64>>,
    /// Per request acknowledged: whether it was JSON.
    json: Arc<Mutex<Vec<bool>>>,
    /// The attributes of the first record acknowledged, and its resource's.
    first: Arc<OnceLock<(Attributes, Attributes)>>,
}

/// A log record's or a resource's attributes, as strings.
type Attributes = BTreeMap<String, String>;

fn attributes(
    list: &[opentelemetry_proto::tonic::common::v1::KeyValue],
) -> BTreeMap<String, String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    list.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(V::StringValue(s)) => s.clone(),
                Some(V::IntValue(i)) => i.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

impl Receiver {
    fn new(mode: u8) -> Receiver {
        Receiver {
            mode: Arc::new(AtomicU8::new(mode)),
            got: Arc::default(),
            requests: Arc::default(),
            json: Arc::default(),
            first: Arc::default(),
        }
    }

    /// A receiver in `mode`, serving on a free port of 127.0.0.1: it and the port.
    fn start(mode: u8) -> (Receiver, u16) {
        let receiver = Receiver::new(mode);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = listener.local_addr().expect("address").port();
        receiver.serve(listener);
        (receiver, port)
    }

    /// Serve on `listener`.
    fn serve(&self, listener: TcpListener) {
        use axum::http::StatusCode;
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let this = self.clone();
        let app = axum::Router::new().route(
            "/v1/logs",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let this = this.clone();
                    async move {
                        use opentelemetry_proto::tonic::collector::logs::v1::{
                            ExportLogsServiceRequest, ExportLogsServiceResponse,
                        };
                        use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
                        use prost::Message;
                        *this.requests.lock().expect("lock") += 1;
                        let bearer = format!("Bearer {TOKEN}");
                        if headers.get("authorization").and_then(|v| v.to_str().ok())
                            != Some(bearer.as_str())
                            || headers.get("x-tenant").and_then(|v| v.to_str().ok())
                                != Some("audit")
                        {
                            return (StatusCode::UNAUTHORIZED, Vec::new());
                        }
                        match this.mode.load(Ordering::SeqCst) {
                            DOWN => return (StatusCode::SERVICE_UNAVAILABLE, Vec::new()),
                            HANG => {
                                std::future::pending::<()>().await;
                            }
                            _ => {}
                        }
                        let json = match headers.get("content-type").and_then(|v| v.to_str().ok()) {
                            Some("application/x-protobuf") => false,
                            Some("application/json") => true,
                            other => panic!("content-type {other:?}"),
                        };
                        let request = if json {
                            // OTLP JSON: 64-bit integers are strings, field names lowerCamelCase.
                            let raw: Value = serde_json::from_slice(&body).expect("JSON");
                            let record = &raw["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
                            assert!(record["timeUnixNano"].is_string(), "{raw}");
                            assert!(record["body"]["stringValue"].is_string(), "{raw}");
                            serde_json::from_value::<ExportLogsServiceRequest>(raw)
                                .expect("OTLP JSON")
                        } else {
                            ExportLogsServiceRequest::decode(body).expect("OTLP protobuf")
                        };
                        this.json.lock().expect("lock").push(json);
                        let mut got = this.got.lock().expect("lock");
                        for resource in &request.resource_logs {
                            let resource_attributes = attributes(
                                &resource.resource.as_ref().expect("resource").attributes,
                            );
                            for scope in &resource.scope_logs {
                                assert_eq!(
                                    scope.scope.as_ref().expect("scope").name,
                                    "warden.audit"
                                );
                                for record in &scope.log_records {
                                    let _ = this.first.set((
                                        attributes(&record.attributes),
                                        resource_attributes.clone(),
                                    ));
                                    match record.body.as_ref().and_then(|b| b.value.as_ref()) {
                                        Some(V::StringValue(line)) => got.push(line.clone()),
                                        other => panic!(
                                            "a log record body that is not the line: {other:?}"
                                        ),
                                    }
                                }
                            }
                        }
                        (
                            StatusCode::OK,
                            ExportLogsServiceResponse::default().encode_to_vec(),
                        )
                    }
                },
            ),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }

    fn got(&self) -> Vec<String> {
        self.got.lock().expect("lock").clone()
    }

    fn requests(&self) -> u64 {
        *self.requests.lock().expect("lock")
    }
}

fn otlp_sink(name: &str, port: u16) -> String {
    format!(
        "[[audit.ship]]\nname = \"{name}\"\nkind = \"otlp\"\nurl = \"http://127.0.0.1:{port}/v1/logs\"\nbatch = 7\nretry_max = \"1s\"\n\
         headers = {{ authorization = \"Bearer {TOKEN}\", x-tenant = \"audit\" }}\n"
    )
}

/// What the receiver requires in `authorization` (a 401 otherwise).
const TOKEN: &str = "otlp-test-token-0123456789";

fn sink_status<'s>(status: &'s Value, name: &str) -> &'s Value {
    status["shipping"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no sink {name} in {status}"))
}

#[tokio::test]
async fn otlp_receiver_down_then_up_gets_every_record_once_in_order_across_restarts() {
    let (receiver, port) = Receiver::start(DOWN);
    // A small rotation size: the records span several rotated files.
    let fixture = fixture(&otlp_sink("collector", port), "4KiB");
    let log = fixture.path("audit/warden.jsonl");

    // 1. The receiver refuses while calls happen: calls go on, records wait in the log.
    let mut server = fixture.http_server(&[]).await;
    let client = connect(&server).await;
    emit(&client, 25, "first").await;
    wait_for("attempts while the receiver is down", || {
        receiver.requests() >= 2
    })
    .await;
    assert!(receiver.got().is_empty());
    let status = server.status();
    let sink = sink_status(&status, "collector");
    assert_eq!(sink["state"], "retrying", "{status}");
    assert_eq!(sink["shipped"], 0, "{status}");
    assert_eq!(sink["written"], 26, "{status}");
    assert!(
        sink["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("503"),
        "{status}"
    );
    assert!(
        !warden::audit::rotated_files(&log).is_empty(),
        "the log rotated meanwhile"
    );

    // 2. It comes back: it gets every record, from the cursor on, in order.
    receiver.mode.store(UP, Ordering::SeqCst);
    wait_for("the backlog", || receiver.got().len() >= 26).await;
    wait_for("the cursor to catch up", || {
        warden::ship::cursor_of(&log, "collector").ok() == Some(26)
    })
    .await;
    assert_eq!(receiver.got(), log_lines(&log));
    let (record_attributes, resource_attributes) = receiver.first.get().expect("a record").clone();
    assert_eq!(record_attributes["warden.audit.seq"], "0");
    assert_eq!(record_attributes["warden.audit.kind"], "start");
    assert_eq!(resource_attributes["service.name"], "warden");

    // 3. More calls ship as they happen.
    emit(&client, 5, "second").await;
    wait_for("new records", || receiver.got().len() >= 31).await;
    // The cursor moves just after the receiver's answer: wait for it before stopping warden
    // (stopped in between, that batch would rightly be sent again).
    wait_for("the cursor", || {
        warden::ship::cursor_of(&log, "collector").ok() == Some(31)
    })
    .await;
    client.cancel().await.expect("close");

    // 4. warden stops; the receiver goes away for real (connections refused) while a new
    //    warden starts and takes calls; it resumes from the persisted cursor.
    server.terminate().await;
    let shipped_before_restart = receiver.got().len();
    assert_eq!(
        warden::ship::cursor_of(&log, "collector").expect("cursor"),
        shipped_before_restart as u64
    );
    receiver.mode.store(DOWN, Ordering::SeqCst);
    let server = fixture.http_server(&[]).await;
    let client = connect(&server).await;
    emit(&client, 9, "third").await;
    wait_for("attempts after the restart", || {
        sink_status(&server.status(), "collector")["failures"].as_u64() >= Some(1)
    })
    .await;
    receiver.mode.store(UP, Ordering::SeqCst);
    let lines = log_lines(&log);
    assert_eq!(
        lines.len(),
        31 + 1 + 9,
        "a second start record, 9 more calls"
    );
    wait_for("every record", || receiver.got().len() >= lines.len()).await;
    // Give a duplicate a chance to show up before comparing.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let got = receiver.got();
    assert_eq!(got, lines, "every record once, in order, none twice");
    let seqs: Vec<u64> = got.iter().map(|l| seq(l)).collect();
    assert_eq!(seqs, (0..lines.len() as u64).collect::<Vec<_>>());
    // What was shipped is the log, whose chain holds across its rotated files.
    let mut files: Vec<String> = warden::audit::rotated_files(&log)
        .into_iter()
        .map(|(_, path)| path.display().to_string())
        .collect();
    files.push(log.display().to_string());
    let mut args = vec!["audit", "verify"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = common::warden(&args, fixture.dir.path());
    assert_eq!(code, 0, "{out}{err}");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn records_removed_before_they_were_shipped_are_reported_not_skipped_silently() {
    let (receiver, port) = Receiver::start(DOWN);
    let fixture = fixture(&otlp_sink("collector", port), "4KiB");
    let log = fixture.path("audit/warden.jsonl");
    let mut server = fixture.http_server(&[]).await;
    let client = connect(&server).await;
    emit(&client, 25, "lost").await;
    client.cancel().await.expect("close");
    server.terminate().await;
    // The operator removes the oldest rotated file before anything was shipped.
    let rotated = warden::audit::rotated_files(&log);
    let (_, oldest) = rotated.first().expect("the log rotated");
    let removed: Vec<u64> = std::fs::read_to_string(oldest)
        .expect("read")
        .lines()
        .map(seq)
        .collect();
    std::fs::remove_file(oldest).expect("remove the oldest rotated file");
    receiver.mode.store(UP, Ordering::SeqCst);
    let server = fixture.http_server(&[]).await;
    let lines = log_lines(&log);
    wait_for("what is left of the log", || {
        receiver.got().len() >= lines.len()
    })
    .await;
    assert_eq!(receiver.got(), lines, "the rest ships, in order");
    let first_left = seq(&lines[0]);
    assert_eq!(first_left, removed.last().expect("removed records") + 1);
    wait_for("the error naming the missing records", || {
        server
            .stderr()
            .contains("audit records are missing from the log")
    })
    .await;
    let stderr = server.stderr();
    assert!(
        stderr.contains("first_missing_seq=0")
            && stderr.contains(&format!("last_missing_seq={}", first_left - 1)),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_log_removed_and_started_again_is_shipped_from_its_first_record() {
    let (receiver, port) = Receiver::start(UP);
    let fixture = fixture(&otlp_sink("collector", port), "64MiB");
    let log = fixture.path("audit/warden.jsonl");
    let mut server = fixture.http_server(&[]).await;
    let client = connect(&server).await;
    emit(&client, 8, "before").await;
    let before = log_lines(&log);
    wait_for("the first log", || receiver.got().len() >= before.len()).await;
    wait_for("the cursor", || {
        warden::ship::cursor_of(&log, "collector").ok() == Some(before.len() as u64)
    })
    .await;
    client.cancel().await.expect("close");
    server.terminate().await;
    // The operator removes the log (not the cursors): the new log's seqs start at 0 again,
    // and `warden call`s take it past the old cursor before a server starts.
    std::fs::remove_file(&log).expect("remove the log");
    let manifest = fixture.manifest.display().to_string();
    for n in 0..6 {
        let text = format!(r#"{{"text": "cli {n}"}}"#);
        let (code, out, err) = common::warden(
            &["call", "--manifest", &manifest, "testbed__emit", &text],
            fixture.dir.path(),
        );
        assert_eq!(code, 0, "{out}{err}");
    }
    assert!(log_lines(&log).len() > before.len());
    let server = fixture.http_server(&[]).await;
    let client = connect(&server).await;
    emit(&client, 3, "after").await;
    let after = log_lines(&log);
    assert_eq!(seq(&after[0]), 0, "a new chain");
    wait_for("the new log", || {
        receiver.got().len() >= before.len() + after.len()
    })
    .await;
    assert_eq!(receiver.got(), [before, after].concat());
    assert!(
        server.stderr().contains("the log was removed or replaced"),
        "{}",
        server.stderr()
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn otlp_json_encoding_ships_every_record() {
    let (receiver, port) = Receiver::start(UP);
    let fixture = fixture(
        &format!("{}encoding = \"json\"\n", otlp_sink("json", port)),
        "64MiB",
    );
    let log = fixture.path("audit/warden.jsonl");
    let server = fixture.http_server(&[]).await;
    let client = connect(&server).await;
    emit(&client, 9, "json").await;
    let lines = log_lines(&log);
    wait_for("every record", || receiver.got().len() >= lines.len()).await;
    assert_eq!(receiver.got(), lines);
    let encodings = receiver.json.lock().expect("lock").clone();
    assert!(
        !encodings.is_empty() && encodings.iter().all(|json| *json),
        "{encodings:?}"
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_hanging_receiver_does_not_slow_calls() {
    let (receiver, port) = Receiver::start(HANG);
    let fixture = fixture(&otlp_sink("stuck", port), "64MiB");
    let server = fixture.http_server(&[]).await;
    let client = connect(&server).await;
    wait_for("the shipper to be stuck in a request", || {
        receiver.requests() >= 1
    })
    .await;
    let start = Instant::now();
    emit(&client, 40, "hang").await;
    // Generous: 40 calls take well under a second here. A shipper in the call path would
    // wait for the receiver's 10s limit on each record: 400s.
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "40 calls took {:?} with a hanging receiver",
        start.elapsed()
    );
    let log = fixture.path("audit/warden.jsonl");
    assert_eq!(log_lines(&log).len(), 41, "every call is in the log");
    assert!(receiver.got().is_empty());
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn two_processes_on_one_log_ship_each_record_once() {
    let (receiver, port) = Receiver::start(UP);
    let fixture = fixture(&otlp_sink("shared", port), "64MiB");
    let log = fixture.path("audit/warden.jsonl");
    let a = fixture.http_server(&[]).await;
    let b = fixture.http_server(&[]).await;
    let (ca, cb) = tokio::join!(connect(&a), connect(&b));
    tokio::join!(emit(&ca, 10, "a"), emit(&cb, 10, "b"));
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 22);
    wait_for("every record", || receiver.got().len() >= lines.len()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        receiver.got(),
        lines,
        "one process shipped, each record once"
    );
    let states: Vec<String> = [&a, &b]
        .iter()
        .map(|s| sink_status(&s.status(), "shared")["state"].to_string())
        .collect();
    assert!(states.iter().any(|s| s.contains("standby")), "{states:?}");
    ca.cancel().await.expect("close");
    cb.cancel().await.expect("close");
}

// ---------------------------------------------------------------------------------------------
// Manifest errors

fn check(body: &str) -> (i32, String) {
    let fixture = fixture(body, "64MiB");
    let manifest = fixture.manifest.display().to_string();
    let (code, out, err) = common::warden(&["check", &manifest], fixture.dir.path());
    (code, format!("{out}{err}"))
}

#[test]
fn bad_sinks_are_manifest_errors_with_file_and_line() {
    let cases = [
        (
            "[[audit.ship]]\nname = \"x\"\nkind = \"kafka\"\n",
            ":11:8: audit.ship[0].kind: unknown sink kind \"kafka\"",
        ),
        (
            "[[audit.ship]]\nname = \"x\"\nkind = \"otlp\"\nurl = \"http://otel.example.com/v1/logs\"\n",
            ":12:7: audit.ship[0].url: plain http is only allowed to a loopback host",
        ),
        (
            "[[audit.ship]]\nname = \"x\"\nkind = \"otlp\"\nurl = \"not a url\"\n",
            ":12:7: audit.ship[0].url: not a URL",
        ),
        (
            "[[audit.ship]]\nname = \"x\"\nkind = \"syslog\"\nurl = \"ssl://siem:6514\"\n",
            ":12:7: audit.ship[0].url: unsupported syslog scheme \"ssl\"",
        ),
        (
            "[[audit.ship]]\nname = \"x\"\nkind = \"syslog\"\nurl = \"tcp://siem:514\"\nca = \"ca.pem\"\n",
            ":13:1: audit.ship[0].ca: `ca` applies only to `kind = \"syslog\"` with a `tls://` url",
        ),
        (
            "[[audit.ship]]\nname = \"x\"\nkind = \"syslog\"\nurl = \"tls://siem\"\nca = \"warden.toml\"\n",
            ":13:6: audit.ship[0].ca: ",
        ),
        (
            "[[audit.ship]]\nname = \"x\"\nkind = \"otlp\"\nurl = \"http://127.0.0.1:1/v1/logs\"\nheaders = { host = \"a\" }\n",
            ":13:13: audit.ship[0].headers.host: warden sets the \"host\" header itself",
        ),
        (
            "[[audit.ship]]\nname = \"x\"\nkind = \"otlp\"\nurl = \"http://127.0.0.1:1/v1/logs\"\nheaders = { x-key = \"secret\\u0007value\" }\n",
            "audit.ship[0].headers.x-key: not a valid HTTP header value",
        ),
        (
            "[[audit.ship]]\nname = \"x\"\nkind = \"stdout\"\nheaders = { a = \"b\" }\n",
            ":12:1: audit.ship[0].headers: `headers` applies only to `kind = \"otlp\"`",
        ),
        (
            "[[audit.ship]]\nname = \"x\"\nkind = \"otlp\"\n",
            ":9:1: audit.ship[0]: missing required key `url`",
        ),
        (
            "[[audit.ship]]\nname = \"x\"\nkind = \"stdout\"\nformat = \"cef\"\n",
            ":12:1: audit.ship[0].format: `format` applies only to `kind = \"syslog\"`",
        ),
        (
            "[[audit.ship]]\nname = \"x\"\nkind = \"stdout\"\ncolour = \"red\"\n",
            ":12:1: audit.ship[0].colour: unknown key `colour`",
        ),
        (
            "[[audit.ship]]\nname = \"x\"\nkind = \"stdout\"\n\n[[audit.ship]]\nname = \"x\"\nkind = \"stdout\"\n",
            "audit.ship[1].name: sink name \"x\" is used twice",
        ),
    ];
    for (body, want) in cases {
        let (code, output) = check(body);
        assert_ne!(code, 0, "{body} was accepted:\n{output}");
        assert!(
            !output.contains("secret"),
            "a header value is never echoed: {output}"
        );
        assert!(
            output.contains("warden.toml") && output.contains(want),
            "for\n{body}\nwant {want:?} in:\n{output}"
        );
    }
}

#[test]
fn check_lists_the_sinks_without_header_values() {
    let fixture = fixture(
        "[[audit.ship]]\nname = \"console\"\nkind = \"stdout\"\n\n\
         [[audit.ship]]\nname = \"siem\"\nkind = \"syslog\"\nurl = \"udp://127.0.0.1:5514\"\nformat = \"ocsf\"\n\n\
         [[audit.ship]]\nname = \"otel\"\nkind = \"otlp\"\nurl = \"http://127.0.0.1:4318/v1/logs\"\n\
         headers = { authorization = \"Bearer very-secret-token\" }\n",
        "64MiB",
    );
    let manifest = fixture.manifest.display().to_string();
    let (code, out, err) = common::warden(&["check", &manifest], fixture.dir.path());
    assert_eq!(code, 0, "{out}{err}");
    for line in [
        "audit ship: console (stdout) to standard output (HTTP transport only)",
        "audit ship: siem (syslog) to udp://127.0.0.1:5514 (ocsf)",
        "audit ship: otel (otlp) to http://127.0.0.1:4318/v1/logs (protobuf, headers authorization)",
    ] {
        assert!(out.contains(line), "{line:?} not in:\n{out}");
    }
    let (code, json, err) = common::warden(&["check", "--json", &manifest], fixture.dir.path());
    assert_eq!(code, 0, "{json}{err}");
    let report: Value = serde_json::from_str(&json).expect("check --json");
    assert_eq!(report["audit"]["ship"][2]["name"], "otel", "{report}");
    assert!(!format!("{out}{err}{json}").contains("very-secret-token"));
}

#[test]
fn stdout_shipping_over_stdio_is_refused_at_its_line() {
    let fixture = fixture(
        "[[audit.ship]]\nname = \"console\"\nkind = \"stdout\"\n",
        "64MiB",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--manifest"])
        .arg(&fixture.manifest)
        .stdin(Stdio::null())
        .output()
        .expect("run warden");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing on the MCP channel");
    assert!(
        stderr.contains("warden.toml:11:1: audit.ship[0].kind")
            && stderr.contains("which is the MCP channel"),
        "{stderr}"
    );
}
