//! SQLite: one connection per plugin behind a mutex, opened on first use, worked in
//! `block_in_place` on warden's multi-threaded runtime (`spawn_blocking` elsewhere), with its
//! prepared statements cached.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::{
    Collector, Kind, Limits, Outcome, SqlError, Value, database_error, multiple_statements,
    timed_out,
};

/// The deepest expression tree a statement may hold (SQLite's default is 1000).
const MAX_EXPR_DEPTH: i32 = 200;

/// Virtual machine steps between two looks at the deadline.
const PROGRESS_STEPS: i32 = 1000;

/// `PRAGMA`s a statement may use: read-only introspection.
const ALLOWED_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
];

/// A plugin's SQLite database.
pub(super) struct Sqlite {
    path: PathBuf,
    connection: Arc<Mutex<Option<Connection>>>,
}

impl Sqlite {
    /// The database at `path`, not opened yet.
    pub(super) fn new(path: PathBuf) -> Sqlite {
        Sqlite {
            path,
            connection: Arc::new(Mutex::new(None)),
        }
    }

    /// Run `statement` with `params`.
    pub(super) async fn run(
        &self,
        statement: &str,
        params: Vec<Value>,
        kind: Kind,
        limits: Limits,
    ) -> Result<Outcome, SqlError> {
        let connection = self.connection.clone();
        let path = self.path.clone();
        let work = move |statement: &str| {
            let mut guard = connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if guard.is_none() {
                *guard = Some(open(&path, &limits)?);
            }
            let Some(connection) = guard.as_mut() else {
                return Err(SqlError::Unavailable("the database is not open".to_owned()));
            };
            run(connection, statement, &params, kind, &limits)
        };
        // On warden's multi-threaded runtime the worker runs the statement itself, its other
        // tasks handed to another worker (no thread hop: a point query costs microseconds);
        // elsewhere, on the blocking pool.
        let flavor = tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor());
        if matches!(flavor, Ok(tokio::runtime::RuntimeFlavor::MultiThread)) {
            return tokio::task::block_in_place(|| work(statement));
        }
        let statement = statement.to_owned();
        tokio::task::spawn_blocking(move || work(&statement))
            .await
            .map_err(|_| SqlError::Unavailable("the database task failed".to_owned()))?
    }
}

/// Open the database at `path` with the grant's mode, and the guards every statement runs
/// under.
fn open(path: &std::path::Path, limits: &Limits) -> Result<Connection, SqlError> {
    let flags = if limits.read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    // The path is the host's: messages name the database's error code, never the path.
    let unavailable = |e: rusqlite::Error| {
        let code = match &e {
            rusqlite::Error::SqliteFailure(e, _) => code_name(e.extended_code),
            _ => "unknown".to_owned(),
        };
        tracing::warn!(target: "warden::sql", "cannot open a SQLite database: {code}");
        SqlError::Unavailable(format!("the database cannot be opened ({code})"))
    };
    let mut connection = Connection::open_with_flags(path, flags).map_err(unavailable)?;
    if limits.read_only {
        connection
            .pragma_update(None, "query_only", true)
            .map_err(unavailable)?;
    }
    // No ATTACH (nor VACUUM INTO, which attaches): the plugin reaches this file only.
    connection
        .set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)
        .map_err(unavailable)?;
    // Statements may run on the stack of the wasm call (block_in_place): bound SQLite's
    // recursion well within it.
    connection
        .set_limit(Limit::SQLITE_LIMIT_EXPR_DEPTH, MAX_EXPR_DEPTH)
        .map_err(unavailable)?;
    connection
        .busy_timeout(limits.timeout)
        .map_err(unavailable)?;
    connection
        .authorizer(Some(authorize))
        .map_err(unavailable)?;
    Ok(connection)
}

/// Refuses what would reach past the file or past the host's transaction per call.
fn authorize(context: AuthContext<'_>) -> Authorization {
    match context.action {
        AuthAction::Attach { .. }
        | AuthAction::Detach { .. }
        | AuthAction::Transaction { .. }
        | AuthAction::Savepoint { .. } => Authorization::Deny,
        AuthAction::Pragma { pragma_name, .. }
            if !ALLOWED_PRAGMAS
                .iter()
                .any(|allowed| pragma_name.eq_ignore_ascii_case(allowed)) =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

/// Run one statement on `connection`, interrupted at the deadline.
fn run(
    connection: &mut Connection,
    statement: &str,
    params: &[Value],
    kind: Kind,
    limits: &Limits,
) -> Result<Outcome, SqlError> {
    let deadline = Instant::now() + limits.timeout;
    connection
        .progress_handler(PROGRESS_STEPS, Some(move || Instant::now() > deadline))
        .map_err(|e| map_error(e, limits))?;
    let result = run_statement(connection, statement, params, kind, limits);
    let _ = connection.progress_handler(0, None::<fn() -> bool>);
    result.map_err(|e| map_error(e, limits))?
}

/// The statement's own work; the outer `Result` carries SQLite's errors.
fn run_statement(
    connection: &Connection,
    statement: &str,
    params: &[Value],
    kind: Kind,
    limits: &Limits,
) -> rusqlite::Result<Result<Outcome, SqlError>> {
    // Cached: a plugin repeats its statements, with new parameters.
    let mut prepared = connection.prepare_cached(statement)?;
    let expected = prepared.parameter_count();
    if expected != params.len() {
        return Ok(Err(database_error(
            None,
            format!(
                "the statement has {expected} placeholder(s) but {} parameter(s) were given",
                params.len()
            ),
        )));
    }
    for (index, param) in params.iter().enumerate() {
        prepared.raw_bind_parameter(index + 1, to_sql(param))?;
    }
    if kind == Kind::Execute && prepared.column_count() == 0 {
        let changed = prepared.raw_execute()?;
        return Ok(Ok(Outcome::Changed(changed as u64)));
    }
    let columns: Vec<String> = prepared.column_names().map(str::to_owned).collect();
    let width = columns.len();
    let changes_nothing = prepared.readonly();
    let mut collector = Collector::new(limits);
    let mut rows = prepared.raw_query();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(width);
        for index in 0..width {
            values.push(from_sql(row.get_ref(index)?));
        }
        match collector.push(values) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Ok(Err(e)),
        }
    }
    drop(rows);
    if kind == Kind::Execute {
        // `... RETURNING` through execute: the rows it changed.
        let changed = if changes_nothing {
            0
        } else {
            connection.changes()
        };
        return Ok(Ok(Outcome::Changed(changed)));
    }
    Ok(Ok(Outcome::Rows(collector.finish(columns))))
}

fn to_sql(value: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match value {
        Value::Null => V::Null,
        Value::Integer(i) => V::Integer(*i),
        Value::Real(f) => V::Real(*f),
        Value::Text(text) => V::Text(text.clone()),
        Value::Blob(bytes) => V::Blob(bytes.clone()),
        Value::Boolean(b) => V::Integer(i64::from(*b)),
    }
}

fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(text) => Value::Text(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
    }
}

/// SQLite's error as the interface's.
fn map_error(error: rusqlite::Error, limits: &Limits) -> SqlError {
    match error {
        rusqlite::Error::MultipleStatement => multiple_statements(),
        rusqlite::Error::SqliteFailure(e, message) => {
            let message = message.unwrap_or_else(|| e.to_string());
            match e.code {
                ErrorCode::OperationInterrupted => timed_out(limits),
                ErrorCode::ReadOnly => SqlError::ReadOnly(format!(
                    "the grant is read-only and the database refused the write ({message})"
                )),
                ErrorCode::AuthorizationForStatementDenied => SqlError::Limit(format!(
                    "the host does not allow this command ({message}): ATTACH, DETACH, \
                     transaction control and PRAGMAs other than {} are refused; each call \
                     is its own transaction",
                    ALLOWED_PRAGMAS.join(", ")
                )),
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                    SqlError::Unavailable(format!("the database is busy ({message})"))
                }
                // ATTACH with its file as a parameter passes the authorizer, not the limit.
                _ if message.starts_with("too many attached databases") => SqlError::Limit(
                    "the host does not allow ATTACH: the plugin reaches its granted database only"
                        .to_owned(),
                ),
                _ => database_error(Some(code_name(e.extended_code)), message),
            }
        }
        rusqlite::Error::Empty => database_error(None, "the statement is empty"),
        other => database_error(None, other.to_string()),
    }
}

/// The name of SQLite result code `code` (`SQLITE_CONSTRAINT_UNIQUE`).
fn code_name(code: i32) -> String {
    let name = match code {
        1 => "SQLITE_ERROR",
        5 => "SQLITE_BUSY",
        6 => "SQLITE_LOCKED",
        8 => "SQLITE_READONLY",
        9 => "SQLITE_INTERRUPT",
        10 => "SQLITE_IOERR",
        11 => "SQLITE_CORRUPT",
        13 => "SQLITE_FULL",
        14 => "SQLITE_CANTOPEN",
        18 => "SQLITE_TOOBIG",
        19 => "SQLITE_CONSTRAINT",
        20 => "SQLITE_MISMATCH",
        23 => "SQLITE_AUTH",
        25 => "SQLITE_RANGE",
        26 => "SQLITE_NOTADB",
        275 => "SQLITE_CONSTRAINT_CHECK",
        787 => "SQLITE_CONSTRAINT_FOREIGNKEY",
        1299 => "SQLITE_CONSTRAINT_NOTNULL",
        1555 => "SQLITE_CONSTRAINT_PRIMARYKEY",
        2067 => "SQLITE_CONSTRAINT_UNIQUE",
        other => return format!("SQLITE_{other}"),
    };
    name.to_owned()
}
