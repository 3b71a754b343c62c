//! End to end: the `sql` capability through the real `warden` binary, the real `db` component
//! and rmcp's client, against SQLite files and one real PostgreSQL server started for this test
//! binary. The rules hold in the host: one statement per call, values only as parameters,
//! read-only enforced by the database, row, size and time limits, an audit of statements
//! without their values, and a Postgres password that shows up nowhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Client, Fixture, err_text, ok_text};
use serde_json::{Value, json};

/// A copy of examples/shop.db in the fixture's directory, as `shop.db`.
fn shop(fixture: &Fixture) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop.db");
    let copy = fixture.path("shop.db");
    std::fs::copy(&source, &copy).expect("copy examples/shop.db");
    copy
}

/// A fixture serving the `db` plugin with `sql = { ... }` set to `grant` (`{dir}` expanded),
/// its SQLite database a fresh copy of the shop.
fn sqlite_fixture(grant: &str) -> Fixture {
    let fixture = Fixture::new(&format!(
        "[audit]\npath = \"{{dir}}/audit/warden.jsonl\"\n\n\
         [plugins.db]\ncomponent = \"{{db}}\"\nsql = {grant}\n"
    ));
    // The manifest is read when the server starts; the database must exist by then.
    shop(&fixture);
    fixture
}

async fn query(client: &Client, sql: &str, params: Value) -> rmcp::model::CallToolResult {
    client
        .call("db__query", json!({ "sql": sql, "params": params }))
        .await
}

async fn execute(client: &Client, sql: &str, params: Value) -> rmcp::model::CallToolResult {
    client
        .call("db__execute", json!({ "sql": sql, "params": params }))
        .await
}

/// The rows object of a successful `db__query`.
#[track_caller]
fn rows(result: &rmcp::model::CallToolResult) -> Value {
    serde_json::from_str(&ok_text(result)).expect("db__query returns JSON")
}

fn text(value: &str) -> Value {
    json!({ "tag": "text", "value": value })
}

fn count(file: &Path, table: &str) -> i64 {
    let connection = rusqlite::Connection::open(file).expect("open the test database");
    connection
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .expect("count rows")
}

fn audit_records(fixture: &Fixture) -> Vec<Value> {
    std::fs::read_to_string(fixture.path("audit/warden.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON record"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// SQLite

#[tokio::test]
async fn sqlite_a_write_under_a_read_only_grant_fails_at_the_database() {
    let fixture = sqlite_fixture(r#"{ url = "sqlite:shop.db", mode = "ro" }"#);
    let client = fixture.client().await;
    let deleted = err_text(&query(&client, "DELETE FROM customers", json!([])).await);
    assert!(deleted.starts_with("read-only:"), "{deleted}");
    assert!(deleted.contains("readonly database"), "{deleted}");
    let updated = err_text(
        &execute(
            &client,
            "UPDATE products SET stock = ?",
            json!([{ "tag": "integer", "value": 0 }]),
        )
        .await,
    );
    assert!(updated.starts_with("read-only:"), "{updated}");
    // Nor can the plugin switch the guard off.
    let pragma = err_text(&query(&client, "PRAGMA query_only = OFF", json!([])).await);
    assert!(pragma.contains("does not allow this command"), "{pragma}");
    let found = rows(&query(&client, "SELECT count(*) FROM customers", json!([])).await);
    assert_eq!(found["rows"], json!([[3]]));
    client.close().await;
    assert_eq!(count(&fixture.path("shop.db"), "customers"), 3);
}

#[tokio::test]
async fn sqlite_a_second_statement_is_refused_and_nothing_runs() {
    let fixture = sqlite_fixture(r#"{ url = "sqlite:shop.db", mode = "rw" }"#);
    let client = fixture.client().await;
    for (tool, sql) in [
        ("db__query", "SELECT 1; DROP TABLE customers"),
        ("db__execute", "DELETE FROM orders; DROP TABLE customers"),
        ("db__query", "SELECT 1;DROP TABLE customers;"),
    ] {
        let refused = err_text(&client.call(tool, json!({ "sql": sql })).await);
        assert_eq!(
            refused,
            "refused: the text holds more than one statement; send one statement per call \
             (nothing ran)",
            "{sql}"
        );
    }
    // A trailing semicolon or comment is not a second statement.
    let one = rows(&query(&client, "SELECT 1; -- just one\n", json!([])).await);
    assert_eq!(one["rows"], json!([[1]]));
    client.close().await;
    assert_eq!(count(&fixture.path("shop.db"), "customers"), 3);
    assert_eq!(count(&fixture.path("shop.db"), "orders"), 6);
}

#[tokio::test]
async fn sqlite_a_parameter_is_a_value_never_sql() {
    let fixture = sqlite_fixture(r#"{ url = "sqlite:shop.db" }"#);
    let client = fixture.client().await;
    let sql = "SELECT id, name FROM customers WHERE name = ?";
    let injected = rows(&query(&client, sql, json!([text("' OR 1=1 --")])).await);
    assert_eq!(injected["rows"], json!([]));
    let injected = rows(&query(&client, sql, json!([text("x' OR '1'='1")])).await);
    assert_eq!(injected["rows"], json!([]));
    let found = rows(&query(&client, sql, json!([text("Grace Hopper")])).await);
    assert_eq!(found["rows"], json!([[2, "Grace Hopper"]]));
    // Placeholders and parameters must match.
    let missing = err_text(&query(&client, sql, json!([])).await);
    assert!(
        missing.contains("1 placeholder(s) but 0 parameter(s)"),
        "{missing}"
    );
    client.close().await;
}

#[tokio::test]
async fn sqlite_max_rows_and_max_bytes_cut_the_result_and_say_so() {
    let fixture = sqlite_fixture(r#"{ url = "sqlite:shop.db", max_rows = 2, max_bytes = "1KiB" }"#);
    let client = fixture.client().await;
    let cut = rows(&query(&client, "SELECT id FROM products ORDER BY id", json!([])).await);
    assert_eq!(cut["rows"], json!([[1], [2]]));
    assert_eq!(cut["truncated"], true);
    // Exactly max_rows rows, and no more: not cut.
    let whole = rows(
        &query(
            &client,
            "SELECT id FROM products ORDER BY id LIMIT 2",
            json!([]),
        )
        .await,
    );
    assert_eq!(whole["truncated"], false);
    // 600 bytes a row: the second would pass 1KiB.
    let cut = rows(
        &query(
            &client,
            "SELECT printf('%.600c', 'x') FROM products",
            json!([]),
        )
        .await,
    );
    assert_eq!(cut["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(cut["truncated"], true);
    // One row over the limit is refused.
    let refused = err_text(&query(&client, "SELECT printf('%.2000c', 'x')", json!([])).await);
    assert!(refused.contains("max_bytes of 1024"), "{refused}");
    client.close().await;
}

#[tokio::test]
async fn sqlite_a_slow_query_hits_the_timeout() {
    let fixture = sqlite_fixture(r#"{ url = "sqlite:shop.db", timeout = "300ms" }"#);
    let client = fixture.client().await;
    let started = Instant::now();
    let slow = err_text(
        &query(
            &client,
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
             SELECT count(*) FROM c",
            json!([]),
        )
        .await,
    );
    assert_eq!(
        slow,
        "timeout: the statement ran longer than the grant's timeout of 300ms and was cancelled"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The connection still works afterwards.
    let after = rows(&query(&client, "SELECT count(*) FROM orders", json!([])).await);
    assert_eq!(after["rows"], json!([[6]]));
    client.close().await;
}

#[tokio::test]
async fn sqlite_the_plugin_cannot_reach_another_file() {
    let fixture = sqlite_fixture(r#"{ url = "sqlite:shop.db", mode = "rw" }"#);
    let client = fixture.client().await;
    let elsewhere = fixture.path("elsewhere.db").display().to_string();
    for sql in ["ATTACH ? AS other", "VACUUM INTO ?"] {
        let refused = err_text(&execute(&client, sql, json!([text(&elsewhere)])).await);
        assert!(refused.starts_with("refused:"), "{sql}: {refused}");
    }
    let literal = err_text(
        &execute(
            &client,
            &format!("ATTACH '{elsewhere}' AS other"),
            json!([]),
        )
        .await,
    );
    assert!(literal.contains("does not allow"), "{literal}");
    let begin = err_text(&execute(&client, "BEGIN", json!([])).await);
    assert!(
        begin.contains("each call is its own transaction"),
        "{begin}"
    );
    assert!(!fixture.path("elsewhere.db").exists());
    client.close().await;
}

#[tokio::test]
async fn sqlite_read_write_calls_commit_each_statement() {
    let fixture = sqlite_fixture(r#"{ url = "sqlite:shop.db", mode = "rw" }"#);
    let client = fixture.client().await;
    let changed = ok_text(
        &execute(
            &client,
            "INSERT INTO customers (name, email, country) VALUES (?, ?, ?)",
            json!([text("Alan Turing"), text("alan@example.com"), text("GB")]),
        )
        .await,
    );
    assert_eq!(changed, "1");
    let duplicate = err_text(
        &execute(
            &client,
            "INSERT INTO customers (name, email, country) VALUES (?, ?, ?)",
            json!([text("Alan"), text("alan@example.com"), text("GB")]),
        )
        .await,
    );
    assert!(
        duplicate.starts_with("database error SQLITE_CONSTRAINT_UNIQUE:"),
        "{duplicate}"
    );
    client.close().await;
    assert_eq!(count(&fixture.path("shop.db"), "customers"), 4);
}

#[tokio::test]
async fn sqlite_the_audit_records_statements_and_rows_but_no_values() {
    let fixture = sqlite_fixture(r#"{ url = "sqlite:shop.db" }"#);
    let client = fixture.client().await;
    let marker = "Parameter-Value-4711";
    let sql = "SELECT id FROM customers WHERE name = ? OR country = ?";
    let found = rows(&query(&client, sql, json!([text(marker), text("NL")])).await);
    assert_eq!(found["rows"], json!([[3]]));
    let _ = query(&client, "SELECT 1; SELECT 2", json!([])).await;
    client.close().await;
    let records = audit_records(&fixture);
    let usages: Vec<&Value> = records
        .iter()
        .filter_map(|record| record.get("usage")?.get("sql"))
        .collect();
    assert_eq!(
        usages,
        [
            &json!({ "statements": [{ "statement": sql, "rows": 1, "truncated": false }] }),
            &json!({ "statements": [{ "statement": "SELECT 1; SELECT 2", "error": "multiple-statements" }] }),
        ]
    );
    for usage in usages {
        assert!(!usage.to_string().contains(marker));
    }
}

#[tokio::test]
async fn sqlite_a_plugin_without_a_grant_is_refused() {
    let fixture = Fixture::new("[plugins.db]\ncomponent = \"{db}\"\n");
    let client = fixture.client().await;
    let refused = err_text(&query(&client, "SELECT 1", json!([])).await);
    assert!(
        refused.starts_with("no database: this plugin has no `sql` grant"),
        "{refused}"
    );
    client.close().await;
}

#[tokio::test]
async fn sqlite_tables_and_describe_list_the_schema() {
    let fixture = sqlite_fixture(r#"{ url = "sqlite:shop.db" }"#);
    let client = fixture.client().await;
    let tables = client.call("db__tables", json!({})).await;
    let tables: Value = serde_json::from_str(&ok_text(&tables)).expect("JSON");
    assert_eq!(
        tables,
        json!(["customers", "order_items", "orders", "products"])
    );
    let described = client
        .call("db__describe", json!({ "table": "customers" }))
        .await;
    let described: Value = serde_json::from_str(&ok_text(&described)).expect("JSON");
    assert_eq!(described[0]["name"], "id");
    assert_eq!(described[0]["primary_key"], true);
    assert_eq!(described[1]["type"], "TEXT");
    client.close().await;
}

#[test]
fn check_accepts_sql_grants_and_their_warning_codes() {
    let fixture = Fixture::new(
        "[plugins.db]\ncomponent = \"{db}\"\n\
         sql = { url = \"sqlite:shop.db\", mode = \"ro\", max_rows = 10 }\n\n\
         [plugins.codec]\ncomponent = \"{codec}\"\n\
         sql = { url = \"sqlite:shop.db\" }\n\
         acknowledge = [\"unused-grant:sql\"]\n",
    );
    shop(&fixture);
    let manifest = fixture.manifest.display().to_string();
    let (code, stdout, stderr) =
        common::warden(&["check", "--manifest", &manifest], fixture.dir.path());
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("db__query"), "{stdout}");
    // A read-only grant of a missing file is refused at its line.
    let fixture =
        Fixture::new("[plugins.db]\ncomponent = \"{db}\"\nsql = { url = \"sqlite:missing.db\" }\n");
    let manifest = fixture.manifest.display().to_string();
    let (code, stdout, stderr) =
        common::warden(&["check", "--manifest", &manifest], fixture.dir.path());
    assert_ne!(code, 0, "{stdout}");
    assert!(
        stderr.contains("plugins.db.sql") && stderr.contains("read-only SQLite database"),
        "{stderr}"
    );
}

#[test]
fn check_and_inspect_describe_sql_grants_and_warn() {
    let fixture = Fixture::new(
        "[plugins.db]\ncomponent = \"{db}\"\n\
         sql = { url = \"sqlite:shop.db\", mode = \"ro\", max_rows = 10 }\n\n\
         [plugins.codec]\ncomponent = \"{codec}\"\nsql = { url = \"sqlite:shop.db\" }\n\n\
         [plugins.bare]\ncomponent = \"{db}\"\nprefix = \"bare\"\n",
    );
    let db = shop(&fixture);
    let manifest = fixture.manifest.display().to_string();
    let (_, stdout, stderr) =
        common::warden(&["check", "--manifest", &manifest], fixture.dir.path());
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains(&format!(
            "grant sql   sqlite:{}, read-only, max_rows 10, timeout 5s",
            std::fs::canonicalize(&db).expect("canonical").display()
        )),
        "{all}"
    );
    assert!(
        all.contains("is granted a database (sql) but imports no warden:sql: it cannot use it [unused-grant:sql]"),
        "{all}"
    );
    assert!(
        all.contains("imports warden:sql but is granted no database (sql): every query is refused [ungranted-import:sql]"),
        "{all}"
    );
    let (_, stdout, stderr) =
        common::warden(&["inspect", &common::plugin("db")], fixture.dir.path());
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("sql: a database (warden:sql)"), "{all}");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// The password of the `shop` role: it must show up nowhere.
const PG_PASSWORD: &str = "Pg-Secret-7f3a9c2e";
/// A wrong password, tried by one test: it must show up nowhere either.
const PG_WRONG_PASSWORD: &str = "Wrong-Pass-91b2x0";

/// One PostgreSQL server for the whole test binary, on 127.0.0.1. It stops, and its data
/// directory goes, when this process exits: a watchdog shell waits on a pipe from it.
struct Postgres {
    port: u16,
    _watchdog: std::process::ChildStdin,
    /// The watchdog shell; it outlives every test, and exits with the process.
    _shell: std::process::Child,
}

static POSTGRES: OnceLock<Postgres> = OnceLock::new();

fn postgres() -> &'static Postgres {
    POSTGRES.get_or_init(start_postgres)
}

fn postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL's server binaries were not found under /usr/lib/postgresql/*/bin: \
             install them with `apt-get install -y postgresql` (.ci/run does) to run these tests"
        ),
    }
}

/// Run `program` as the `postgres` user (the tests run as root, which postgres refuses).
fn as_postgres(program: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
        .arg(program);
    command
}

fn id_of(flag: &str) -> u32 {
    let output = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .expect("run id");
    assert!(
        output.status.success(),
        "there is no `postgres` user: install PostgreSQL with `apt-get install -y postgresql`"
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a numeric id")
}

fn start_postgres() -> Postgres {
    let bin = postgres_bin();
    let (uid, gid) = (id_of("-u"), id_of("-g"));
    let root = tempfile::Builder::new()
        .prefix("warden-pg-")
        .tempdir()
        .expect("temporary directory")
        .keep();
    let data = root.join("data");
    let socket = root.join("socket");
    std::fs::create_dir(&socket).expect("socket directory");
    let superuser_password = root.join("pw");
    std::fs::write(&superuser_password, "superuser-pw-3k1\n").expect("password file");
    for path in [&root, &socket, &superuser_password] {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown to postgres");
    }
    let status = as_postgres(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
        ])
        .arg(format!("--pwfile={}", superuser_password.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run initdb");
    assert!(status.success(), "initdb failed");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    // The watchdog: postgres in the background, stopped (and its files removed) when our end
    // of the pipe closes, that is when this test process exits.
    let script = format!(
        "{postgres} -D {data} -c listen_addresses=127.0.0.1 -p {port} -k {socket} \
         -c fsync=off -c log_min_messages=fatal >/dev/null 2>&1 & pid=$!; \
         read _ ; kill -INT $pid; wait $pid; rm -rf {root}",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        socket = socket.display(),
        root = root.display(),
    );
    let mut command = Command::new("setpriv");
    command
        .args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "sh",
            "-c",
        ])
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("start postgres");
    let watchdog = child.stdin.take().expect("watchdog pipe");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
            .status()
            .is_ok_and(|status| status.success());
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not accept connections on 127.0.0.1:{port} within 30s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let psql = |database: &str, sql: &str| {
        let output = as_postgres(&bin.join("psql"))
            .args(["-h"])
            .arg(&socket)
            .args(["-p", &port.to_string(), "-U", "postgres", "-d", database])
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            output.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    psql(
        "postgres",
        &format!("CREATE ROLE shop LOGIN PASSWORD '{PG_PASSWORD}'"),
    );
    psql("postgres", "CREATE DATABASE shop OWNER shop");
    psql(
        "shop",
        "SET ROLE shop; \
         CREATE TABLE customers (id int8 PRIMARY KEY, name text NOT NULL, country text NOT NULL); \
         INSERT INTO customers VALUES (1, 'Ada Lovelace', 'GB'), (2, 'Grace Hopper', 'US'), \
           (3, 'Edsger Dijkstra', 'NL'); \
         CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL); \
         CREATE TABLE keep_me (id int4);",
    );
    Postgres {
        port,
        _watchdog: watchdog,
        _shell: child,
    }
}

/// The URL of the `shop` database with `password`.
fn pg_url(password: &str) -> String {
    format!(
        "postgres://shop:{password}@127.0.0.1:{}/shop",
        postgres().port
    )
}

/// A fixture serving the `db` plugin granted the Postgres database `sql = { url = { env =
/// "SHOP_DB_URL" }, EXTRA }`, with an audit log.
fn pg_fixture(extra: &str) -> Fixture {
    Fixture::new(&format!(
        "[audit]\npath = \"{{dir}}/audit/warden.jsonl\"\n\n\
         [plugins.db]\ncomponent = \"{{db}}\"\n\
         sql = {{ url = {{ env = \"SHOP_DB_URL\" }}{extra} }}\n"
    ))
}

async fn pg_client(fixture: &Fixture, url: &str) -> Client {
    fixture.client_env(&[("SHOP_DB_URL", url)]).await
}

/// Nothing warden wrote (log, audit, results) holds `secret`.
#[track_caller]
fn assert_nowhere(secret: &str, fixture: &Fixture, stderr: &str, results: &[String]) {
    assert!(!stderr.contains(secret), "the log holds it:\n{stderr}");
    let audit = std::fs::read_to_string(fixture.path("audit/warden.jsonl")).unwrap_or_default();
    assert!(!audit.contains(secret), "the audit log holds it:\n{audit}");
    for result in results {
        assert!(!result.contains(secret), "a result holds it: {result}");
    }
}

#[tokio::test]
async fn postgres_a_write_under_a_read_only_grant_fails_at_the_database() {
    let fixture = pg_fixture("");
    let client = pg_client(&fixture, &pg_url(PG_PASSWORD)).await;
    let deleted = err_text(&query(&client, "DELETE FROM customers", json!([])).await);
    assert!(deleted.starts_with("read-only:"), "{deleted}");
    assert!(deleted.contains("read-only transaction"), "{deleted}");
    let inserted = err_text(
        &execute(
            &client,
            "INSERT INTO notes (body) VALUES ($1)",
            json!([text("x")]),
        )
        .await,
    );
    assert!(inserted.starts_with("read-only:"), "{inserted}");
    let counted = rows(&query(&client, "SELECT count(*) FROM customers", json!([])).await);
    assert_eq!(counted["rows"], json!([[3]]));
    client.close().await;
}

#[tokio::test]
async fn postgres_a_second_statement_is_refused_and_nothing_runs() {
    let fixture = pg_fixture(", mode = \"rw\"");
    let client = pg_client(&fixture, &pg_url(PG_PASSWORD)).await;
    for (tool, sql) in [
        ("db__query", "SELECT 1; DROP TABLE keep_me"),
        ("db__execute", "DELETE FROM customers; DROP TABLE keep_me"),
    ] {
        let refused = err_text(&client.call(tool, json!({ "sql": sql })).await);
        assert_eq!(
            refused,
            "refused: the text holds more than one statement; send one statement per call \
             (nothing ran)",
            "{sql}"
        );
    }
    let still = rows(&query(&client, "SELECT count(*) FROM keep_me", json!([])).await);
    assert_eq!(still["rows"], json!([[0]]));
    let customers = rows(&query(&client, "SELECT count(*) FROM customers", json!([])).await);
    assert_eq!(customers["rows"], json!([[3]]));
    client.close().await;
}

#[tokio::test]
async fn postgres_a_parameter_is_a_value_never_sql() {
    let fixture = pg_fixture("");
    let client = pg_client(&fixture, &pg_url(PG_PASSWORD)).await;
    let sql = "SELECT id, name FROM customers WHERE name = $1";
    let injected = rows(&query(&client, sql, json!([text("' OR 1=1 --")])).await);
    assert_eq!(injected["rows"], json!([]));
    let found = rows(&query(&client, sql, json!([text("Ada Lovelace")])).await);
    assert_eq!(found["rows"], json!([[1, "Ada Lovelace"]]));
    let by_id = rows(
        &query(
            &client,
            "SELECT name FROM customers WHERE id = $1",
            json!([{ "tag": "integer", "value": 2 }]),
        )
        .await,
    );
    assert_eq!(by_id["rows"], json!([["Grace Hopper"]]));
    client.close().await;
}

#[tokio::test]
async fn postgres_max_rows_cuts_the_result_and_says_so() {
    let fixture = pg_fixture(", max_rows = 2");
    let client = pg_client(&fixture, &pg_url(PG_PASSWORD)).await;
    let cut = rows(&query(&client, "SELECT id FROM customers ORDER BY id", json!([])).await);
    assert_eq!(cut["rows"], json!([[1], [2]]));
    assert_eq!(cut["truncated"], true);
    let whole = rows(
        &query(
            &client,
            "SELECT id FROM customers ORDER BY id LIMIT 2",
            json!([]),
        )
        .await,
    );
    assert_eq!(whole["truncated"], false);
    client.close().await;
}

#[tokio::test]
async fn postgres_a_slow_query_hits_the_timeout() {
    let fixture = pg_fixture(", timeout = \"300ms\"");
    let client = pg_client(&fixture, &pg_url(PG_PASSWORD)).await;
    let started = Instant::now();
    let slow = err_text(&query(&client, "SELECT 1 FROM pg_sleep(5)", json!([])).await);
    assert_eq!(
        slow,
        "timeout: the statement ran longer than the grant's timeout of 300ms and was cancelled"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let after = rows(&query(&client, "SELECT count(*) FROM customers", json!([])).await);
    assert_eq!(after["rows"], json!([[3]]));
    client.close().await;
}

/// Calls of one plugin run side by side (each on its own connection): while one sleeps, another
/// sees it running. One connection for all calls would run the probe only after the sleep.
#[tokio::test]
async fn postgres_calls_of_one_plugin_run_side_by_side() {
    let fixture = pg_fixture(", timeout = \"20s\"");
    let client = pg_client(&fixture, &pg_url(PG_PASSWORD)).await;
    let sleeper = query(&client, "SELECT 1 FROM pg_sleep(3)", json!([]));
    let probe = async {
        // Until the sleep ends: ask whether it is running now.
        loop {
            let seen = rows(
                &query(
                    &client,
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE state = 'active' AND query LIKE 'SELECT 1 FROM pg_sleep%'",
                    json!([]),
                )
                .await,
            );
            if seen["rows"] == json!([[1]]) {
                return true;
            }
            tokio::task::yield_now().await;
        }
    };
    let seen = {
        tokio::pin!(sleeper);
        let seen = tokio::select! {
            seen = probe => seen,
            slept = &mut sleeper => {
                ok_text(&slept);
                false
            }
        };
        if seen {
            ok_text(&sleeper.await);
        }
        seen
    };
    assert!(seen, "the probe never ran while the sleep did");
    client.close().await;
}

#[tokio::test]
async fn postgres_read_write_calls_commit_and_the_audit_has_no_values() {
    let fixture = pg_fixture(", mode = \"rw\"");
    let client = pg_client(&fixture, &pg_url(PG_PASSWORD)).await;
    let marker = "Note-Body-Value-5812";
    let changed = ok_text(
        &execute(
            &client,
            "INSERT INTO notes (body) VALUES ($1)",
            json!([text(marker)]),
        )
        .await,
    );
    assert_eq!(changed, "1");
    let found = rows(
        &query(
            &client,
            "SELECT count(*) FROM notes WHERE body = $1",
            json!([text(marker)]),
        )
        .await,
    );
    assert_eq!(found["rows"], json!([[1]]));
    client.close().await;
    let usages: Vec<Value> = audit_records(&fixture)
        .iter()
        .filter_map(|record| record.get("usage")?.get("sql").cloned())
        .collect();
    assert_eq!(
        usages,
        [
            json!({ "statements": [{ "statement": "INSERT INTO notes (body) VALUES ($1)", "changed": 1 }] }),
            json!({ "statements": [{ "statement": "SELECT count(*) FROM notes WHERE body = $1", "rows": 1, "truncated": false }] }),
        ]
    );
    assert!(
        !serde_json::to_string(&usages)
            .expect("JSON")
            .contains(marker)
    );
}

#[tokio::test]
async fn postgres_the_password_shows_up_nowhere() {
    // Working calls, a database error and a refusal.
    let fixture = pg_fixture("");
    let client = pg_client(&fixture, &pg_url(PG_PASSWORD)).await;
    let mut results = Vec::new();
    for sql in [
        "SELECT current_user::text",
        "SELECT * FROM no_such_table",
        "SELECT 1; SELECT 2",
    ] {
        let result = query(&client, sql, json!([])).await;
        results.push(common::text(&result));
    }
    assert!(results[1].contains("42P01"), "{}", results[1]);
    let stderr = client.stderr();
    client.close().await;
    assert_nowhere(PG_PASSWORD, &fixture, &stderr, &results);

    // A wrong password: the server refuses it, and says so without it.
    let fixture = pg_fixture("");
    let client = pg_client(&fixture, &pg_url(PG_WRONG_PASSWORD)).await;
    let refused = err_text(&query(&client, "SELECT 1", json!([])).await);
    assert!(
        refused.starts_with(
            "database unavailable: cannot connect to the database: password authentication failed"
        ),
        "{refused}"
    );
    let stderr = client.stderr();
    client.close().await;
    assert_nowhere(PG_WRONG_PASSWORD, &fixture, &stderr, &[refused]);

    // The server is down: warden starts all the same, and the call says it cannot connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let fixture = pg_fixture("");
    let url = format!("postgres://shop:{PG_PASSWORD}@127.0.0.1:{closed}/shop");
    let client = pg_client(&fixture, &url).await;
    let down = err_text(&query(&client, "SELECT 1", json!([])).await);
    assert!(
        down.starts_with("database unavailable: cannot connect to the database"),
        "{down}"
    );
    let stderr = client.stderr();
    client.close().await;
    assert_nowhere(PG_PASSWORD, &fixture, &stderr, &[down]);
    assert!(
        stderr.contains(&format!("postgres://shop:***@127.0.0.1:{closed}/shop")),
        "{stderr}"
    );

    // `warden check` shows the URL without it.
    let manifest = fixture.manifest.display().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["check", "--manifest", &manifest])
        .env("SHOP_DB_URL", &url)
        .output()
        .expect("run warden check");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{all}");
    assert!(!all.contains(PG_PASSWORD), "{all}");
}

#[tokio::test]
async fn postgres_a_closed_connection_is_reopened_by_the_next_call() {
    let fixture = pg_fixture("");
    let client = pg_client(&fixture, &pg_url(PG_PASSWORD)).await;
    let first = rows(&query(&client, "SELECT pg_backend_pid()", json!([])).await);
    // The role may end its own session: the server closes the connection under warden.
    let ended = query(
        &client,
        "SELECT pg_terminate_backend(pg_backend_pid())",
        json!([]),
    )
    .await;
    let ended = common::text(&ended);
    assert!(
        ended.starts_with("database unavailable:") || ended.contains("57P01"),
        "{ended}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let second = loop {
        let result = query(&client, "SELECT pg_backend_pid()", json!([])).await;
        if result.is_error != Some(true) {
            break rows(&result);
        }
        assert!(Instant::now() < deadline, "{}", common::text(&result));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(first["rows"], second["rows"], "a new session");
    client.close().await;
}

#[tokio::test]
async fn sqlite_a_deeply_nested_statement_is_refused_not_a_crash() {
    let fixture = sqlite_fixture(r#"{ url = "sqlite:shop.db" }"#);
    let client = fixture.client().await;
    let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    let refused = err_text(&query(&client, &deep, json!([])).await);
    assert_eq!(refused, "database error SQLITE_ERROR: Recursion limit");
    let too_deep = format!("SELECT {}1{}", "-(".repeat(300), ")".repeat(300));
    let refused = err_text(&query(&client, &too_deep, json!([])).await);
    assert!(
        refused.contains("Expression tree is too large"),
        "{refused}"
    );
    let nested = format!("SELECT {}1{}", "-(".repeat(90), ")".repeat(90));
    let fine = rows(&query(&client, &nested, json!([])).await);
    assert_eq!(fine["rows"], json!([[1]]));
    let after = rows(&query(&client, "SELECT count(*) FROM orders", json!([])).await);
    assert_eq!(after["rows"], json!([[6]]));
    client.close().await;
}

#[tokio::test]
async fn postgres_returning_rows_count_as_changed_and_as_rows() {
    let fixture = pg_fixture(", mode = \"rw\", max_rows = 1");
    let client = pg_client(&fixture, &pg_url(PG_PASSWORD)).await;
    // Two rows changed, whatever max_rows cuts of what they return.
    let changed = ok_text(
        &execute(
            &client,
            "INSERT INTO notes (body) VALUES ($1), ($2) RETURNING id",
            json!([text("a"), text("b")]),
        )
        .await,
    );
    assert_eq!(changed, "2");
    let returned = rows(
        &query(
            &client,
            "INSERT INTO notes (body) VALUES ($1), ($2) RETURNING body",
            json!([text("c"), text("d")]),
        )
        .await,
    );
    assert_eq!(returned["rows"], json!([["c"]]));
    assert_eq!(returned["truncated"], true);
    let typed = rows(
        &query(
            &client,
            "SELECT $1::int4 + 1, $2::float8, $3::bool, $4::text, '{\"a\": 1}'::jsonb",
            json!([
                { "tag": "integer", "value": 41 },
                { "tag": "real", "value": 1.5 },
                { "tag": "boolean", "value": true },
                { "tag": "null" },
            ]),
        )
        .await,
    );
    assert_eq!(typed["rows"], json!([[42, 1.5, true, null, "{\"a\": 1}"]]));
    let numeric = err_text(&query(&client, "SELECT 1.5::numeric AS price", json!([])).await);
    assert!(numeric.contains("cast it in the statement"), "{numeric}");
    client.close().await;
}

#[test]
fn the_grant_mode_sets_the_annotations_and_check_json_reports_it() {
    for (mode, read_only) in [("ro", true), ("rw", false)] {
        let fixture = Fixture::new(&format!(
            "[plugins.db]\ncomponent = \"{{db}}\"\nsql = {{ url = \"sqlite:shop.db\", mode = \"{mode}\" }}\n"
        ));
        shop(&fixture);
        let manifest = fixture.manifest.display().to_string();
        let (code, stdout, stderr) = common::warden(
            &["check", "--json", "--manifest", &manifest],
            fixture.dir.path(),
        );
        assert_eq!(code, 0, "{stderr}");
        let report: Value = serde_json::from_str(&stdout).expect("JSON");
        let plugin = &report["plugins"][0];
        assert_eq!(plugin["grants"]["sql"]["mode"], mode, "{plugin}");
        assert_eq!(plugin["grants"]["sql"]["max_rows"], 1000, "{plugin}");
        let query = plugin["tools"]
            .as_array()
            .and_then(|tools| tools.iter().find(|t| t["name"] == "db__query"))
            .expect("db__query");
        assert_eq!(
            query["annotations"]["readOnlyHint"], read_only,
            "{mode}: {query}"
        );
        assert_eq!(query["annotations"]["openWorldHint"], false, "{query}");
    }
}
