//! Postgres: up to [`CONNECTIONS`] connections per plugin, each behind an async mutex, each
//! opened when a call first needs it and again when it closed. A call takes the first idle
//! one, so calls of one plugin run side by side up to that many, and one call at a time opens
//! the first. Every call is a transaction: `BEGIN READ ONLY ... ROLLBACK` under a
//! read-only grant, `BEGIN ... COMMIT` otherwise, with `SET LOCAL statement_timeout`.

use std::error::Error as StdError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Config, NoTls};

use super::{
    Collector, Kind, Limits, Outcome, SqlError, Value, database_error, multiple_statements,
    timed_out,
};
use crate::capabilities::CapabilityError;

/// How long past the grant's timeout the client waits for the server's own cancellation
/// before it cancels the query itself and drops the connection.
const GRACE: Duration = Duration::from_secs(1);
/// The longest wait for a cancel request.
const CANCEL_WAIT: Duration = Duration::from_secs(2);
/// The most connections one plugin holds: its calls beyond that wait for one.
pub(super) const CONNECTIONS: usize = 4;

/// A plugin's Postgres database.
pub(super) struct Postgres {
    config: Config,
    /// The URL without its password, for warden's log.
    shown: String,
    limits: Limits,
    /// The connections, each opened on first use.
    clients: [tokio::sync::Mutex<Option<Client>>; CONNECTIONS],
    /// Which connection a call waits for when all are busy, in turns.
    next: AtomicUsize,
}

impl Postgres {
    /// The database at `url` (validated when the manifest was loaded), not connected yet.
    pub(super) fn new(url: &str, shown: &str, limits: Limits) -> Result<Postgres, CapabilityError> {
        let mut config: Config = url.parse().map_err(|_| CapabilityError::Failed {
            capability: "sql",
            message: format!("invalid Postgres URL {shown}"),
        })?;
        config.connect_timeout(limits.timeout);
        config.application_name("warden");
        Ok(Postgres {
            config,
            shown: shown.to_owned(),
            limits,
            clients: std::array::from_fn(|_| tokio::sync::Mutex::new(None)),
            next: AtomicUsize::new(0),
        })
    }

    /// A connection for one call: the first idle one (connected or not), else the next in
    /// turn once it is free.
    async fn connection(&self) -> tokio::sync::MutexGuard<'_, Option<Client>> {
        if let Some(idle) = self.clients.iter().find_map(|c| c.try_lock().ok()) {
            return idle;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % CONNECTIONS;
        self.clients[turn].lock().await
    }

    /// Run `statement` with `params` for `plugin`.
    pub(super) async fn run(
        &self,
        plugin: &str,
        statement: &str,
        params: Vec<Value>,
        kind: Kind,
    ) -> Result<Outcome, SqlError> {
        let mut guard = self.connection().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.connect(plugin).await?);
        }
        let Some(client) = guard.as_mut() else {
            return Err(SqlError::Unavailable(
                "the database is not connected".to_owned(),
            ));
        };
        let token = client.cancel_token();
        let limits = self.limits;
        let work = run(client, statement, &params, kind, &limits);
        match tokio::time::timeout(limits.timeout + GRACE, work).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(Failure::Sql(error))) => Err(error),
            Ok(Err(Failure::Postgres(error))) => {
                if error.is_closed() {
                    *guard = None;
                    return Err(SqlError::Unavailable(
                        "the connection to the database closed; the next call reconnects"
                            .to_owned(),
                    ));
                }
                Err(map_error(&error, &limits))
            }
            Err(_) => {
                // The server did not stop it: cancel it, and start afresh next time.
                let _ = tokio::time::timeout(CANCEL_WAIT, token.cancel_query(NoTls)).await;
                *guard = None;
                Err(timed_out(&limits))
            }
        }
    }

    async fn connect(&self, plugin: &str) -> Result<Client, SqlError> {
        match self.config.connect(NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(async move {
                    // Its errors show as a closed client at the next call.
                    let _ = connection.await;
                });
                Ok(client)
            }
            Err(error) => {
                // Built from the database's message or the I/O error's kind only: never from
                // the error's whole text, which could one day quote the configuration.
                let reason = match error.as_db_error() {
                    Some(db) => format!("{} ({})", db.message(), db.code().code()),
                    None => match io_kind(&error) {
                        Some(kind) => kind.to_string(),
                        None if error.to_string().contains("timeout") => "timed out".to_owned(),
                        None => "the connection failed".to_owned(),
                    },
                };
                tracing::warn!(
                    target: "warden::sql",
                    plugin,
                    database = %self.shown,
                    "cannot connect to the database: {reason}"
                );
                Err(SqlError::Unavailable(format!(
                    "cannot connect to the database: {reason}"
                )))
            }
        }
    }
}

/// What went wrong in a call: the interface's error, or Postgres's to map.
enum Failure {
    Sql(SqlError),
    Postgres(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Failure {
        Failure::Postgres(error)
    }
}

/// One statement in its own transaction.
async fn run(
    client: &mut Client,
    statement: &str,
    params: &[Value],
    kind: Kind,
    limits: &Limits,
) -> Result<Outcome, Failure> {
    let transaction = client
        .build_transaction()
        .read_only(limits.read_only)
        .start()
        .await?;
    transaction
        .batch_execute(&format!(
            "SET LOCAL statement_timeout = {}",
            limits.timeout.as_millis().max(1)
        ))
        .await?;
    let prepared = transaction.prepare(statement).await?;
    if prepared.params().len() != params.len() {
        return Err(Failure::Sql(database_error(
            None,
            format!(
                "the statement has {} placeholder(s) but {} parameter(s) were given",
                prepared.params().len(),
                params.len()
            ),
        )));
    }
    for (index, ty) in prepared.params().iter().enumerate() {
        if !bindable(ty) {
            return Err(Failure::Sql(database_error(
                None,
                format!(
                    "parameter ${} has type {ty}, which warden:sql cannot bind: cast it in \
                     the statement (${}::text::{ty})",
                    index + 1,
                    index + 1
                ),
            )));
        }
    }
    for column in prepared.columns() {
        if !readable(column.type_()) {
            return Err(Failure::Sql(database_error(
                None,
                format!(
                    "column {:?} has type {}, which warden:sql cannot return: cast it in the \
                     statement (::text, ::float8 or ::int8)",
                    column.name(),
                    column.type_()
                ),
            )));
        }
    }
    let bound: Vec<Param<'_>> = params.iter().map(Param).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let outcome = if kind == Kind::Execute {
        // The server's own count: the rows an `INSERT ... RETURNING` changed, all of them
        // (rows it returns are read and dropped).
        Outcome::Changed(transaction.execute(&prepared, &refs).await?)
    } else {
        let columns: Vec<String> = prepared
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        let portal = transaction.bind(&prepared, &refs).await?;
        // The server sends one row past max_rows at most: enough to know there were more.
        let fetch = i32::try_from(limits.max_rows.saturating_add(1)).unwrap_or(i32::MAX);
        let rows = transaction.query_portal(&portal, fetch).await?;
        let mut collector = Collector::new(limits);
        for row in &rows {
            let mut values = Vec::with_capacity(columns.len());
            for index in 0..columns.len() {
                let Cell(value) = row.try_get(index)?;
                values.push(value);
            }
            match collector.push(values) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(Failure::Sql(e)),
            }
        }
        Outcome::Rows(collector.finish(columns))
    };
    if limits.read_only {
        transaction.rollback().await?;
    } else {
        transaction.commit().await?;
    }
    Ok(outcome)
}

/// Postgres's error as the interface's: from its SQLSTATE and message only.
fn map_error(error: &tokio_postgres::Error, limits: &Limits) -> SqlError {
    let Some(db) = error.as_db_error() else {
        // Client-side: parameter encoding or decoding; these name no configuration.
        let text = error.to_string();
        return database_error(None, text);
    };
    let code = db.code().code();
    let message = db.message();
    match code {
        "25006" => SqlError::ReadOnly(format!(
            "the grant is read-only and the database refused the write ({message})"
        )),
        "57014" => timed_out(limits),
        "42601" if message.contains("multiple commands") => multiple_statements(),
        _ => database_error(Some(code.to_owned()), message),
    }
}

/// The I/O error kind under `error`, if it is one.
fn io_kind(error: &tokio_postgres::Error) -> Option<std::io::ErrorKind> {
    let mut source = error.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = e.source();
    }
    None
}

/// Parameter types [`Param`] encodes.
fn bindable(ty: &Type) -> bool {
    [
        Type::BOOL,
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::OID,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
        Type::BYTEA,
        Type::JSON,
        Type::JSONB,
    ]
    .contains(ty)
}

/// Column types [`Cell`] decodes.
fn readable(ty: &Type) -> bool {
    bindable(ty) || *ty == Type::UUID
}

/// A parameter, encoded for the type the server asks for.
#[derive(Debug)]
struct Param<'a>(&'a Value);

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let mismatch = || -> BoxError {
            format!(
                "a {} value cannot be bound to a {ty} parameter",
                kind(self.0)
            )
            .into()
        };
        match (self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Boolean(b), &Type::BOOL) => b.to_sql(ty, out),
            (Value::Integer(i), &Type::INT2) => i16::try_from(*i)
                .map_err(|_| format!("{i} is out of range for int2"))?
                .to_sql(ty, out),
            (Value::Integer(i), &Type::INT4) => i32::try_from(*i)
                .map_err(|_| format!("{i} is out of range for int4"))?
                .to_sql(ty, out),
            (Value::Integer(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Integer(i), &Type::OID) => u32::try_from(*i)
                .map_err(|_| format!("{i} is out of range for oid"))?
                .to_sql(ty, out),
            (Value::Integer(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT4) => (*f as f32).to_sql(ty, out),
            (Value::Integer(i), &Type::FLOAT4) => (*i as f32).to_sql(ty, out),
            (Value::Text(s), _) if <String as ToSql>::accepts(ty) || *ty == Type::JSON => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Value::Text(s), &Type::JSONB) => {
                out.extend_from_slice(&[1]);
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Value::Blob(bytes), &Type::BYTEA) => bytes.as_slice().to_sql(ty, out),
            _ => Err(mismatch()),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked in `to_sql`, with a message that names both types.
        true
    }

    to_sql_checked!();
}

/// The variant name of `value`, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Integer(_) => "integer",
        Value::Real(_) => "real",
        Value::Text(_) => "text",
        Value::Blob(_) => "blob",
        Value::Boolean(_) => "boolean",
    }
}

/// A result cell of one of the [`readable`] types.
struct Cell(Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Cell, BoxError> {
        let value = match *ty {
            Type::BOOL => Value::Boolean(bool::from_sql(ty, raw)?),
            Type::INT2 => Value::Integer(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Integer(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::OID => Value::Integer(u32::from_sql(ty, raw)?.into()),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::BYTEA => Value::Blob(raw.to_vec()),
            Type::JSONB => Value::Text(String::from_utf8_lossy(raw.get(1..).unwrap_or(&[])).into()),
            Type::UUID => Value::Text(uuid(raw)?),
            _ => Value::Text(String::from_utf8_lossy(raw).into_owned()),
        };
        Ok(Cell(value))
    }

    fn from_sql_null(_: &Type) -> Result<Cell, BoxError> {
        Ok(Cell(Value::Null))
    }

    fn accepts(ty: &Type) -> bool {
        readable(ty)
    }
}

/// A UUID's 16 bytes in its hyphenated form.
fn uuid(raw: &[u8]) -> Result<String, BoxError> {
    if raw.len() != 16 {
        return Err("a uuid is 16 bytes".into());
    }
    let hex = hex::encode(raw);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}
