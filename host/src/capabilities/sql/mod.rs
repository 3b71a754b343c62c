//! `sql`: a database a plugin queries through `warden:sql` (`wit/sql/sql.wit`), one statement
//! per call, every value a bound parameter.
//!
//! The rules hold here, in the host, whatever the plugin sends:
//!
//! - **One statement.** SQLite prepares the text and refuses a tail that is more than
//!   whitespace and comments; Postgres's extended protocol refuses several commands. Both give
//!   the same `multiple-statements` refusal, and nothing runs.
//! - **Parameters only.** The interface has no way to splice a value into the text.
//! - **Read-only is the database's.** SQLite is opened with `SQLITE_OPEN_READ_ONLY` and
//!   `PRAGMA query_only = ON`; on Postgres every call runs in a `BEGIN READ ONLY` transaction
//!   that is rolled back. In `rw` mode each call is its own transaction, committed.
//! - **Limits.** `max_rows` and `max_bytes` cut the result (`truncated: true`); a single row
//!   over `max_bytes` is refused. `timeout` interrupts SQLite (a progress handler) and cancels
//!   Postgres (`SET LOCAL statement_timeout`, and a client-side deadline that sends a cancel
//!   request and drops the connection).
//! - **No way out of the database.** SQLite's `ATTACH` (and `VACUUM INTO`) are refused by an
//!   attach limit of 0 and an authorizer, which also refuses transaction control and every
//!   `PRAGMA` but a few read-only ones.
//! - **Credentials stay in the host.** The connection is opened lazily, on a plugin's first
//!   call (a database that is down does not stop warden from starting); error messages are
//!   built from the database's own message and code, never from a connection error's text,
//!   and the Postgres password is one of the plugin's secret values, scrubbed from everything
//!   warden logs and from tool output.
//!
//! Annotations: a `rw` grant `writes`; no grant is `open_world`, because the database is the
//! one the operator named, not an open set of entities (a Postgres role that can reach further,
//! through `dblink` or foreign tables, is the operator's to restrict).

mod postgres;
mod sqlite;

use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use super::{
    CallBuilder, CallView, Capability, CapabilityError, Effects, GrantWarning, Imports, Link, Slots,
};
use crate::manifest::{Plugin, SqlDatabase, SqlGrant};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/sql",
        world: "warden:sql/imports",
        imports: { default: async },
    });
}

use bindings::warden::sql::sql as wit;
use wit::{DatabaseError, Error as SqlError, Rows, Value};

/// The import name prefix of the interface.
const IMPORT: &str = "warden:sql/";
/// The longest statement text accepted, in bytes.
const MAX_STATEMENT: usize = 1 << 20;
/// The most parameters one statement may have.
const MAX_PARAMS: usize = 10_000;
/// The most statements one call's audit record lists; the rest are counted.
const MAX_AUDITED: usize = 100;
/// The longest statement text an audit record keeps, in bytes.
const MAX_AUDITED_TEXT: usize = 1024;

/// The `sql` capability.
pub struct Sql;

impl Capability for Sql {
    fn name(&self) -> &'static str {
        "sql"
    }

    fn offers(&self, imports: Imports<'_>) -> Vec<&'static str> {
        if imports.any(&[IMPORT]) {
            vec!["sql: a database (warden:sql)"]
        } else {
            Vec::new()
        }
    }

    fn summary(&self, plugin: &Plugin) -> Vec<String> {
        plugin
            .sql
            .iter()
            .map(|sql| format!("grant sql   {sql}"))
            .collect()
    }

    fn report(&self, plugin: &Plugin) -> Vec<(&'static str, serde_json::Value)> {
        let Some(sql) = &plugin.sql else {
            return Vec::new();
        };
        vec![(
            "sql",
            serde_json::json!({
                "database": sql.database.to_string(),
                "mode": if sql.read_only() { "ro" } else { "rw" },
                "max_rows": sql.max_rows,
                "max_bytes": sql.max_bytes,
                "timeout": crate::manifest::format_duration(sql.timeout),
            }),
        )]
    }

    fn warnings(&self, plugin: &Plugin, imports: Imports<'_>) -> Vec<GrantWarning> {
        match (&plugin.sql, imports.any(&[IMPORT])) {
            (Some(_), false) => vec![GrantWarning::new(
                "unused-grant:sql",
                "is granted a database (sql) but imports no warden:sql: it cannot use it",
            )],
            (None, true) => vec![GrantWarning::new(
                "ungranted-import:sql",
                "imports warden:sql but is granted no database (sql): every query is refused",
            )],
            _ => Vec::new(),
        }
    }

    fn effects(&self, plugin: &Plugin, imports: Imports<'_>) -> Effects {
        match &plugin.sql {
            Some(sql) if imports.any(&[IMPORT]) => Effects {
                writes: !sql.read_only(),
                open_world: false,
            },
            _ => Effects::default(),
        }
    }

    fn open(
        &self,
        plugin: &Plugin,
        _services: &Slots,
        opened: &mut Slots,
    ) -> Result<(), CapabilityError> {
        if let Some(grant) = &plugin.sql {
            let database = Database::new(&plugin.name, grant)?;
            opened.insert(Opened(Arc::new(database)));
        }
        Ok(())
    }

    fn prepare(&self, call: &mut CallBuilder<'_>) -> Result<(), CapabilityError> {
        if let Some(Opened(database)) = call.opened.get::<Opened>() {
            call.slots.insert(SqlCall {
                database: database.clone(),
                statements: Vec::new(),
                omitted: 0,
            });
        }
        Ok(())
    }

    fn usage(&self, call: &Slots) -> Option<serde_json::Value> {
        let call = call.get::<SqlCall>()?;
        if call.statements.is_empty() {
            return None;
        }
        let mut usage = serde_json::json!({ "statements": call.statements });
        if call.omitted > 0 {
            usage["omitted"] = call.omitted.into();
        }
        Some(usage)
    }
}

impl<T: CallView> Link<T> for Sql {
    fn link(&self, linker: &mut Linker<T>) -> wasmtime::Result<()> {
        // Linked for every plugin, like wasi:http: one without a grant is refused at run time.
        wit::add_to_linker::<T, HasSql>(linker, |state: &mut T| SqlView {
            slots: state.parts().slots,
        })
    }
}

/// What the host functions work on: the call's capability states.
struct SqlView<'a> {
    slots: &'a mut Slots,
}

struct HasSql;

impl HasData for HasSql {
    type Data<'a> = SqlView<'a>;
}

/// A plugin's database, opened once per plugin load (connected on first use).
struct Opened(Arc<Database>);

/// A call's use of its plugin's database: what the audit record lists.
struct SqlCall {
    database: Arc<Database>,
    statements: Vec<serde_json::Value>,
    omitted: u64,
}

impl SqlCall {
    /// Record `statement` and its outcome (never its parameters).
    fn record(&mut self, statement: &str, outcome: serde_json::Value) {
        if self.statements.len() >= MAX_AUDITED {
            self.omitted += 1;
            return;
        }
        let mut text = statement.trim().to_owned();
        if text.len() > MAX_AUDITED_TEXT {
            let mut end = MAX_AUDITED_TEXT;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
        let mut entry = serde_json::json!({ "statement": text });
        if let (Some(entry), serde_json::Value::Object(outcome)) = (entry.as_object_mut(), outcome)
        {
            entry.extend(outcome);
        }
        self.statements.push(entry);
    }
}

/// Which statement kind a call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Query,
    Execute,
}

/// What a statement returned.
enum Outcome {
    Rows(Rows),
    Changed(u64),
}

/// The limits one statement runs under, from the grant.
#[derive(Clone, Copy, Debug)]
struct Limits {
    read_only: bool,
    max_rows: u32,
    max_bytes: u64,
    timeout: std::time::Duration,
}

/// A plugin's database and its grant.
struct Database {
    plugin: Arc<str>,
    limits: Limits,
    backend: Backend,
    /// The Postgres password, scrubbed from every message as a last line of defence.
    password: Option<String>,
}

enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(Box<postgres::Postgres>),
}

impl Database {
    fn new(plugin: &str, grant: &SqlGrant) -> Result<Database, CapabilityError> {
        let limits = Limits {
            read_only: grant.read_only(),
            max_rows: grant.max_rows,
            max_bytes: grant.max_bytes,
            timeout: grant.timeout,
        };
        let backend = match &grant.database {
            SqlDatabase::Sqlite(path) => Backend::Sqlite(sqlite::Sqlite::new(path.clone())),
            SqlDatabase::Postgres { url, shown, .. } => Backend::Postgres(Box::new(
                postgres::Postgres::new(url.expose(), shown, limits)?,
            )),
        };
        Ok(Database {
            plugin: Arc::from(plugin),
            limits,
            backend,
            password: grant.password().map(str::to_owned),
        })
    }

    async fn run(
        &self,
        statement: &str,
        params: Vec<Value>,
        kind: Kind,
    ) -> Result<Outcome, SqlError> {
        if statement.len() > MAX_STATEMENT {
            return Err(SqlError::Limit(format!(
                "the statement is {} bytes; at most {MAX_STATEMENT} are accepted",
                statement.len()
            )));
        }
        if params.len() > MAX_PARAMS {
            return Err(SqlError::Limit(format!(
                "{} parameters given; at most {MAX_PARAMS} are accepted",
                params.len()
            )));
        }
        if statement.trim().is_empty() {
            return Err(database_error(None, "the statement is empty"));
        }
        let result = match &self.backend {
            Backend::Sqlite(db) => db.run(statement, params, kind, self.limits).await,
            Backend::Postgres(db) => db.run(&self.plugin, statement, params, kind).await,
        };
        result.map_err(|e| self.scrub(e))
    }

    /// `error` with the password, if any, replaced.
    fn scrub(&self, error: SqlError) -> SqlError {
        let Some(password) = self.password.as_deref().filter(|p| !p.is_empty()) else {
            return error;
        };
        let clean = |text: String| text.replace(password, super::REDACTED);
        match error {
            SqlError::NotGranted(m) => SqlError::NotGranted(clean(m)),
            SqlError::MultipleStatements(m) => SqlError::MultipleStatements(clean(m)),
            SqlError::ReadOnly(m) => SqlError::ReadOnly(clean(m)),
            SqlError::Limit(m) => SqlError::Limit(clean(m)),
            SqlError::Timeout(m) => SqlError::Timeout(clean(m)),
            SqlError::Unavailable(m) => SqlError::Unavailable(clean(m)),
            SqlError::Database(e) => SqlError::Database(DatabaseError {
                code: e.code,
                message: clean(e.message),
            }),
        }
    }
}

impl SqlView<'_> {
    async fn run(
        &mut self,
        statement: String,
        params: Vec<Value>,
        kind: Kind,
    ) -> Result<Outcome, SqlError> {
        let Some(call) = self.slots.get_mut::<SqlCall>() else {
            return Err(SqlError::NotGranted(
                "this plugin has no `sql` grant: the operator gives it a database with \
                 `sql = { url = ... }` in its [plugins.NAME] table"
                    .to_owned(),
            ));
        };
        let database = call.database.clone();
        let result = database.run(&statement, params, kind).await;
        let outcome = match &result {
            Ok(Outcome::Rows(rows)) => serde_json::json!({
                "rows": rows.rows.len(),
                "truncated": rows.truncated,
            }),
            Ok(Outcome::Changed(changed)) => serde_json::json!({ "changed": changed }),
            Err(error) => serde_json::json!({ "error": error_kind(error) }),
        };
        call.record(&statement, outcome);
        result
    }
}

impl wit::Host for SqlView<'_> {
    async fn query(&mut self, statement: String, params: Vec<Value>) -> Result<Rows, SqlError> {
        match self.run(statement, params, Kind::Query).await? {
            Outcome::Rows(rows) => Ok(rows),
            Outcome::Changed(_) => Ok(Rows {
                columns: Vec::new(),
                rows: Vec::new(),
                truncated: false,
            }),
        }
    }

    async fn execute(&mut self, statement: String, params: Vec<Value>) -> Result<u64, SqlError> {
        match self.run(statement, params, Kind::Execute).await? {
            Outcome::Changed(changed) => Ok(changed),
            Outcome::Rows(rows) => Ok(rows.rows.len() as u64),
        }
    }
}

/// The error variant's name, for the audit record.
fn error_kind(error: &SqlError) -> &'static str {
    match error {
        SqlError::NotGranted(_) => "not-granted",
        SqlError::MultipleStatements(_) => "multiple-statements",
        SqlError::ReadOnly(_) => "read-only",
        SqlError::Limit(_) => "limit",
        SqlError::Timeout(_) => "timeout",
        SqlError::Unavailable(_) => "unavailable",
        SqlError::Database(_) => "database",
    }
}

/// A `database` error with `code` and `message`.
fn database_error(code: Option<String>, message: impl Into<String>) -> SqlError {
    SqlError::Database(DatabaseError {
        code,
        message: message.into(),
    })
}

/// The refusal of a text holding several statements, the same for every backend.
fn multiple_statements() -> SqlError {
    SqlError::MultipleStatements(
        "the text holds more than one statement; send one statement per call (nothing ran)"
            .to_owned(),
    )
}

/// The refusal of a statement that ran past the grant's `timeout`.
fn timed_out(limits: &Limits) -> SqlError {
    SqlError::Timeout(format!(
        "the statement ran longer than the grant's timeout of {} and was cancelled",
        crate::manifest::format_duration(limits.timeout)
    ))
}

/// Collects result rows within `max_rows` and `max_bytes`.
struct Collector {
    max_rows: usize,
    max_bytes: u64,
    bytes: u64,
    rows: Vec<Vec<Value>>,
    truncated: bool,
}

impl Collector {
    fn new(limits: &Limits) -> Collector {
        Collector {
            max_rows: limits.max_rows as usize,
            max_bytes: limits.max_bytes,
            bytes: 0,
            rows: Vec::new(),
            truncated: false,
        }
    }

    /// Add `row`; `Ok(false)` when the result is full (and cut), an error when a single row is
    /// over `max_bytes`.
    fn push(&mut self, row: Vec<Value>) -> Result<bool, SqlError> {
        if self.rows.len() >= self.max_rows {
            self.truncated = true;
            return Ok(false);
        }
        let size: u64 = row.iter().map(value_size).sum();
        if self.bytes + size > self.max_bytes {
            if self.rows.is_empty() {
                return Err(SqlError::Limit(format!(
                    "the first row is {size} bytes, more than the grant's max_bytes of {}; \
                     select fewer or shorter columns",
                    self.max_bytes
                )));
            }
            self.truncated = true;
            return Ok(false);
        }
        self.bytes += size;
        self.rows.push(row);
        Ok(true)
    }

    fn finish(self, columns: Vec<String>) -> Rows {
        Rows {
            columns,
            rows: self.rows,
            truncated: self.truncated,
        }
    }
}

/// The bytes `value` counts for `max_bytes`.
fn value_size(value: &Value) -> u64 {
    match value {
        Value::Null | Value::Boolean(_) => 1,
        Value::Integer(_) | Value::Real(_) => 8,
        Value::Text(text) => text.len() as u64,
        Value::Blob(bytes) => bytes.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    /// The plugin `db` of a manifest with `sql` set to `grant` (`None`: no grant).
    fn plugin(grant: Option<&str>) -> (tempfile::TempDir, Plugin) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("db.wasm"), b"\0asm").expect("write");
        std::fs::write(dir.path().join("shop.db"), b"").expect("write");
        let sql = grant.map(|g| format!("sql = {g}\n")).unwrap_or_default();
        let text = format!("[plugins.db]\ncomponent = \"db.wasm\"\n{sql}");
        let env = |name: &str| {
            (name == "DB_URL").then(|| "postgres://shop:pw-123456@db:5432/shop".to_owned())
        };
        let manifest = Manifest::parse_with_env(&text, &dir.path().join("warden.toml"), &env)
            .unwrap_or_else(|e| panic!("{e}"));
        let plugin = manifest.plugins.into_iter().next().expect("one plugin");
        (dir, plugin)
    }

    const SQL_IMPORT: &[&str] = &["warden:sql/sql@0.1.0", "warden:mcp/host@0.1.0"];
    const OTHER: &[&str] = &["warden:mcp/host@0.1.0"];

    fn imports(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn check_and_inspect_see_the_grant() {
        let with = imports(SQL_IMPORT);
        let without = imports(OTHER);
        assert_eq!(Sql.offers(Imports(&with)), ["sql: a database (warden:sql)"]);
        assert!(Sql.offers(Imports(&without)).is_empty());

        let (dir, ro) = plugin(Some("{ url = \"sqlite:shop.db\", max_rows = 10 }"));
        let path = std::fs::canonicalize(dir.path().join("shop.db")).expect("canonical");
        assert_eq!(
            Sql.summary(&ro),
            [format!(
                "grant sql   sqlite:{}, read-only, max_rows 10, timeout 5s",
                path.display()
            )]
        );
        assert_eq!(Sql.effects(&ro, Imports(&with)), Effects::default());
        assert!(Sql.warnings(&ro, Imports(&with)).is_empty());
        let unused = Sql.warnings(&ro, Imports(&without));
        assert_eq!(unused.len(), 1);
        assert_eq!(unused[0].code, "unused-grant:sql");

        let (_dir, rw) = plugin(Some("{ url = { env = \"DB_URL\" }, mode = \"rw\" }"));
        assert_eq!(
            Sql.summary(&rw),
            ["grant sql   postgres://shop:***@db:5432/shop, read-write, max_rows 1000, timeout 5s"]
        );
        assert_eq!(
            Sql.effects(&rw, Imports(&with)),
            Effects {
                writes: true,
                open_world: false
            }
        );

        let (_dir, none) = plugin(None);
        assert!(Sql.summary(&none).is_empty());
        let ungranted = Sql.warnings(&none, Imports(&with));
        assert_eq!(ungranted.len(), 1);
        assert_eq!(ungranted[0].code, "ungranted-import:sql");
        for code in ["unused-grant:sql", "ungranted-import:sql"] {
            assert!(crate::manifest::WARNING_CODES.contains(&code), "{code}");
        }
    }

    #[test]
    fn the_collector_cuts_at_rows_and_bytes() {
        let limits = Limits {
            read_only: true,
            max_rows: 2,
            max_bytes: 20,
            timeout: std::time::Duration::from_secs(1),
        };
        let mut rows = Collector::new(&limits);
        assert!(matches!(rows.push(vec![Value::Integer(1)]), Ok(true)));
        assert!(matches!(rows.push(vec![Value::Integer(2)]), Ok(true)));
        assert!(matches!(rows.push(vec![Value::Integer(3)]), Ok(false)));
        let rows = rows.finish(vec!["n".into()]);
        assert_eq!((rows.rows.len(), rows.truncated), (2, true));

        let mut rows = Collector::new(&limits);
        assert!(matches!(
            rows.push(vec![Value::Text("x".repeat(15))]),
            Ok(true)
        ));
        assert!(matches!(
            rows.push(vec![Value::Text("y".repeat(15))]),
            Ok(false)
        ));
        assert!(rows.truncated);

        let mut rows = Collector::new(&limits);
        assert!(matches!(
            rows.push(vec![Value::Blob(vec![0; 21])]),
            Err(SqlError::Limit(_))
        ));
    }

    #[test]
    fn the_audit_keeps_statements_short_and_few() {
        let (_dir, plugin) = plugin(Some("{ url = \"sqlite:shop.db\" }"));
        let database = Database::new("db", plugin.sql.as_ref().expect("grant")).expect("open");
        let mut call = SqlCall {
            database: Arc::new(database),
            statements: Vec::new(),
            omitted: 0,
        };
        call.record(&"é".repeat(2000), serde_json::json!({ "rows": 1 }));
        let kept = call.statements[0]["statement"].as_str().expect("text");
        assert!(
            kept.len() <= MAX_AUDITED_TEXT + '…'.len_utf8(),
            "{}",
            kept.len()
        );
        for _ in 0..MAX_AUDITED + 5 {
            call.record("SELECT 1", serde_json::json!({ "rows": 1 }));
        }
        assert_eq!(call.statements.len(), MAX_AUDITED);
        assert_eq!(call.omitted, 6);
    }
}
