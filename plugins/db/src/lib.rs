//! The `db` plugin: list, describe and query the SQL database the operator granted, through
//! `warden:sql`. It holds no connection and no credentials: the host does, and enforces the
//! grant (one statement per call, read-only by the database, row and time limits). Values go
//! only through parameters.

warden_sdk::wit_bindgen::generate!({
    path: ["../../wit", "../../wit/sql", "wit"],
    world: "warden:db/plugin",
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: {
        "warden:mcp/types@0.1.0": warden_sdk::types,
        "warden:mcp/host@0.1.0": warden_sdk::host,
        "warden:sql/sql@0.1.0": generate,
    },
});

use exports::warden::db::db::{Column, Guest, Param};
use warden::sql::sql::{self, Error, Rows, Value};

struct Db;

impl Guest for Db {
    fn tables() -> Result<Vec<String>, String> {
        // SQLite first; a database without `sqlite_schema` is Postgres.
        let rows = match sql::query(
            "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') \
             AND name NOT LIKE 'sqlite_%' ORDER BY name",
            &[],
        ) {
            Ok(rows) => rows,
            Err(Error::Database(_)) => sql::query(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() ORDER BY table_name",
                &[],
            )
            .map_err(describe_error)?,
            Err(e) => return Err(describe_error(e)),
        };
        Ok(rows
            .rows
            .into_iter()
            .filter_map(|row| match row.into_iter().next() {
                Some(Value::Text(name)) => Some(name),
                _ => None,
            })
            .collect())
    }

    fn describe(table: String) -> Result<Vec<Column>, String> {
        let param = [Value::Text(table.clone())];
        let rows = match sql::query(
            "SELECT name, type, \"notnull\" = 0, pk > 0 FROM pragma_table_info(?1)",
            &param,
        ) {
            Ok(rows) => rows,
            Err(Error::Database(_)) => sql::query(
                "SELECT c.column_name::text, c.data_type::text, c.is_nullable = 'YES', \
                 EXISTS (SELECT 1 FROM information_schema.key_column_usage k \
                   JOIN information_schema.table_constraints t \
                     ON t.constraint_name = k.constraint_name \
                    AND t.table_schema = k.table_schema \
                  WHERE t.constraint_type = 'PRIMARY KEY' AND k.table_schema = c.table_schema \
                    AND k.table_name = c.table_name AND k.column_name = c.column_name) \
                 FROM information_schema.columns c \
                 WHERE c.table_schema = current_schema() AND c.table_name = $1 \
                 ORDER BY c.ordinal_position",
                &param,
            )
            .map_err(describe_error)?,
            Err(e) => return Err(describe_error(e)),
        };
        let columns: Vec<Column> = rows
            .rows
            .into_iter()
            .map(|row| {
                let mut cells = row.into_iter();
                let mut next = || cells.next().unwrap_or(Value::Null);
                Column {
                    name: text(next()),
                    type_: text(next()),
                    nullable: truthy(&next()),
                    primary_key: truthy(&next()),
                }
            })
            .collect();
        if columns.is_empty() {
            return Err(format!("no table or view named {table:?} (see tables)"));
        }
        Ok(columns)
    }

    fn query(sql: String, params: Option<Vec<Param>>) -> Result<String, String> {
        let params = to_values(params);
        let rows = sql::query(&sql, &params).map_err(describe_error)?;
        Ok(to_json(&rows))
    }

    fn execute(sql: String, params: Option<Vec<Param>>) -> Result<u64, String> {
        let params = to_values(params);
        sql::execute(&sql, &params).map_err(describe_error)
    }
}

fn to_values(params: Option<Vec<Param>>) -> Vec<Value> {
    params
        .unwrap_or_default()
        .into_iter()
        .map(|param| match param {
            Param::Null => Value::Null,
            Param::Integer(i) => Value::Integer(i),
            Param::Real(f) => Value::Real(f),
            Param::Text(s) => Value::Text(s),
            Param::Boolean(b) => Value::Boolean(b),
        })
        .collect()
}

/// The host's error as a message for the model.
fn describe_error(error: Error) -> String {
    match error {
        Error::NotGranted(m) => format!("no database: {m}"),
        Error::MultipleStatements(m) => format!("refused: {m}"),
        Error::ReadOnly(m) => format!("read-only: {m}"),
        Error::Limit(m) => format!("refused: {m}"),
        Error::Timeout(m) => format!("timeout: {m}"),
        Error::Unavailable(m) => format!("database unavailable: {m}"),
        Error::Database(e) => match e.code {
            Some(code) => format!("database error {code}: {}", e.message),
            None => format!("database error: {}", e.message),
        },
    }
}

fn text(value: Value) -> String {
    match value {
        Value::Text(s) => s,
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Null | Value::Blob(_) => String::new(),
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Boolean(b) => *b,
        Value::Integer(i) => *i != 0,
        _ => false,
    }
}

/// `{"columns": [...], "rows": [[...]], "truncated": ...}`; blobs as arrays of bytes.
fn to_json(rows: &Rows) -> String {
    let mut out = String::from("{\"columns\":[");
    for (i, column) in rows.columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_string(&mut out, column);
    }
    out.push_str("],\"rows\":[");
    for (i, row) in rows.rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        for (j, value) in row.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            match value {
                Value::Null => out.push_str("null"),
                Value::Integer(n) => out.push_str(&n.to_string()),
                Value::Real(f) if f.is_finite() => out.push_str(&f.to_string()),
                Value::Real(_) => out.push_str("null"),
                Value::Text(s) => push_string(&mut out, s),
                Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
                Value::Blob(bytes) => {
                    let items: Vec<String> = bytes.iter().map(u8::to_string).collect();
                    out.push('[');
                    out.push_str(&items.join(","));
                    out.push(']');
                }
            }
        }
        out.push(']');
    }
    out.push_str("],\"truncated\":");
    out.push_str(if rows.truncated { "true" } else { "false" });
    out.push('}');
    out
}

/// `s` as a JSON string.
fn push_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

export!(Db);
