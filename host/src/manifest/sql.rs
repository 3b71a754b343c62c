//! A plugin's `sql` grant: one database, its mode and its limits.
//!
//! ```toml
//! [plugins.db]
//! sql = { url = "sqlite:data/shop.db", mode = "ro", max_rows = 1000, timeout = "5s" }
//! # or, with the credentials kept out of the manifest:
//! sql = { url = { env = "SHOP_DB_URL" }, mode = "ro" }   # postgres://user:password@host/db
//! ```
//!
//! A Postgres URL holds a password, so it is a [`SecretValue`]: never printed, never given to
//! the plugin, and its password is one of the plugin's secret values (scrubbed from its
//! output and from warden's log). A password written into the manifest itself is refused.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::DeValue;

use super::error::Location;
use super::network::SecretValue;
use super::plugin::size;
use super::reader::Value;
use super::units::format_duration;
use super::validate::{PathKind, check_path, resolve};

/// `sql = { ... }`: the database a plugin may query through `warden:sql`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlGrant {
    /// Which database.
    pub database: SqlDatabase,
    /// Whether the plugin may write. Default [`SqlMode::ReadOnly`].
    pub mode: SqlMode,
    /// Most rows one query returns; more are cut and the result says `truncated`. Default
    /// 1000; within [`SqlGrant::MAX_ROWS_RANGE`].
    pub max_rows: u32,
    /// Most bytes of values one query returns (counted as text and blob lengths, 8 per
    /// number); the rows past it are cut and the result says `truncated`. A single row over
    /// it is refused. Default 1MiB; within [`SqlGrant::MAX_BYTES_RANGE`].
    pub max_bytes: u64,
    /// Longest a statement may run before it is cancelled. Default 5s; at most
    /// [`SqlGrant::MAX_TIMEOUT`].
    pub timeout: Duration,
    /// The `sql` key.
    pub location: Location,
}

impl SqlGrant {
    /// Default `max_rows`.
    pub const DEFAULT_MAX_ROWS: u32 = 1000;
    /// Accepted `max_rows`.
    pub const MAX_ROWS_RANGE: std::ops::RangeInclusive<u32> = 1..=1_000_000;
    /// Default `max_bytes`: 1MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 1 << 20;
    /// Accepted `max_bytes`: 1KiB to 64MiB.
    pub const MAX_BYTES_RANGE: std::ops::RangeInclusive<u64> = (1 << 10)..=(64 << 20);
    /// Default `timeout`: 5s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Longest accepted `timeout`: 10m.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

    /// Whether the grant is read-only.
    pub fn read_only(&self) -> bool {
        self.mode == SqlMode::ReadOnly
    }

    /// The Postgres password, if the database is one with a password: a secret value of the
    /// plugin.
    pub fn password(&self) -> Option<&str> {
        match &self.database {
            SqlDatabase::Postgres { password, .. } => password.as_ref().map(SecretValue::expose),
            SqlDatabase::Sqlite(_) => None,
        }
    }
}

impl fmt::Display for SqlGrant {
    /// `sqlite:/abs/shop.db, read-only, max_rows 1000, timeout 5s` (a Postgres URL without its
    /// password).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            SqlMode::ReadOnly => "read-only",
            SqlMode::ReadWrite => "read-write",
        };
        write!(
            f,
            "{}, {mode}, max_rows {}, timeout {}",
            self.database,
            self.max_rows,
            format_duration(self.timeout)
        )
    }
}

/// The database of a [`SqlGrant`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqlDatabase {
    /// `sqlite:PATH`: a SQLite file, absolute (canonical when it exists). In `ro` mode it
    /// existed at load time; in `rw` mode its directory did, and the file is created on first
    /// use.
    Sqlite(PathBuf),
    /// `postgres://...` (or `postgresql://`).
    Postgres {
        /// The whole URL, credentials included: only the connection sees it.
        url: SecretValue,
        /// The URL without its password, for `warden check` and messages.
        shown: String,
        /// The password, when the URL has one.
        password: Option<SecretValue>,
    },
}

impl fmt::Display for SqlDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlDatabase::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            SqlDatabase::Postgres { shown, .. } => f.write_str(shown),
        }
    }
}

/// `mode` of a [`SqlGrant`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SqlMode {
    /// `"ro"`: the database refuses every write (a read-only connection or transaction).
    #[default]
    ReadOnly,
    /// `"rw"`: each call is its own transaction, committed when it succeeds.
    ReadWrite,
}

/// `sql = { url = ..., mode = ..., max_rows = ..., max_bytes = ..., timeout = ... }`.
pub(super) fn sql_grant(v: &Value<'_, '_>, dir: &Path) -> Option<SqlGrant> {
    let table = match v.raw() {
        DeValue::Table(_) => v.table()?,
        _ => {
            v.type_error("a table such as { url = \"sqlite:data/app.db\", mode = \"ro\" }");
            return None;
        }
    };
    let mode = match table.get("mode") {
        Some(m) => m.string().and_then(|mode| match mode.as_str() {
            "ro" => Some(SqlMode::ReadOnly),
            "rw" => Some(SqlMode::ReadWrite),
            _ => {
                m.error(format!(
                    "invalid mode {mode:?}: expected \"ro\" (read-only) or \"rw\" (read-write)"
                ));
                None
            }
        }),
        None => Some(SqlMode::default()),
    };
    let database = table
        .require("url")
        .and_then(|u| database(&u, dir, mode.unwrap_or_default()));
    let max_rows = table
        .get("max_rows")
        .and_then(|v| super::policy::int_in(&v, "max_rows", SqlGrant::MAX_ROWS_RANGE))
        .unwrap_or(SqlGrant::DEFAULT_MAX_ROWS);
    let max_bytes = table
        .get("max_bytes")
        .and_then(|v| size(&v, "max_bytes", SqlGrant::MAX_BYTES_RANGE))
        .unwrap_or(SqlGrant::DEFAULT_MAX_BYTES);
    let timeout = table
        .get("timeout")
        .and_then(|v| super::network::duration(&v, "timeout", SqlGrant::MAX_TIMEOUT))
        .unwrap_or(SqlGrant::DEFAULT_TIMEOUT);
    table.finish();
    Some(SqlGrant {
        database: database?,
        mode: mode?,
        max_rows,
        max_bytes,
        timeout,
        location: v.location(),
    })
}

/// `url`: a string (`${VAR}` expanded), or `{ env = "VAR" }` / `{ file = "path" }` for a URL
/// with credentials.
fn database(v: &Value<'_, '_>, dir: &Path, mode: SqlMode) -> Option<SqlDatabase> {
    let (url, from_secret) = match v.raw() {
        DeValue::String(raw) => {
            let url = v.string()?;
            // A password typed into the manifest ends up in backups, diffs and screenshots.
            if is_postgres(raw) && literal_password(raw) {
                v.error(
                    "the URL has a password written in the manifest: pass the URL as \
                     \"${VAR}\", or as { env = \"VAR\" } or { file = \"path\" }",
                );
                return None;
            }
            (url, false)
        }
        DeValue::Table(_) => (secret_url(v, dir)?, true),
        _ => {
            v.type_error("a URL such as \"sqlite:data/app.db\" or { env = \"DATABASE_URL\" }");
            return None;
        }
    };
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let raw = rest.strip_prefix("//").unwrap_or(rest);
        return sqlite_path(v, raw, dir, mode).map(SqlDatabase::Sqlite);
    }
    if is_postgres(&url) {
        let shown = without_password(&url);
        let config = match url.parse::<tokio_postgres::Config>() {
            Ok(config) => config,
            Err(e) => {
                // The parser's messages name options, not values; scrub the password anyway.
                let mut message = e.to_string();
                if let Some((_, password, _)) = split_password(&url)
                    && !password.is_empty()
                {
                    message = message.replace(password, "***");
                }
                v.error(format!("invalid Postgres URL {shown:?}: {message}"));
                return None;
            }
        };
        if config.get_hosts().is_empty() {
            v.error(format!(
                "Postgres URL {shown:?} names no host: write postgres://USER@HOST:PORT/DATABASE"
            ));
            return None;
        }
        let password = config
            .get_password()
            .map(|p| SecretValue::new(String::from_utf8_lossy(p).into_owned()));
        return Some(SqlDatabase::Postgres {
            url: SecretValue::new(url),
            shown,
            password,
        });
    }
    // Never echo the value: it may hold credentials.
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    let from = if from_secret { " (from a secret)" } else { "" };
    v.error(format!(
        "unsupported database URL{from} with scheme {scheme:?}: expected \"sqlite:PATH\" or \
         \"postgres://USER@HOST:PORT/DATABASE\""
    ));
    None
}

/// `{ env = "VAR" }` or `{ file = "path" }`: the URL read from warden's environment or a file.
fn secret_url(v: &Value<'_, '_>, dir: &Path) -> Option<String> {
    let table = v.table()?;
    let from_env = table.get("env");
    let from_file = table.get("file");
    table.finish();
    let value = match (from_env, from_file) {
        (Some(_), Some(file)) => {
            file.key_error("give either `env` or `file`, not both");
            return None;
        }
        (None, None) => {
            v.error("missing `env` or `file`: write url = { env = \"DATABASE_URL\" }");
            return None;
        }
        (Some(e), None) => {
            let var = e.string()?;
            let Some(value) = e.env_var(&var) else {
                e.error(format!(
                    "environment variable `{var}` is not set (warden reads the database URL from it)"
                ));
                return None;
            };
            value
        }
        (None, Some(f)) => {
            let raw = f.string()?;
            let path = resolve(&f, &raw, dir)?;
            let path = check_path(&f, &raw, path, PathKind::File, "database URL file")?;
            match std::fs::read_to_string(&path) {
                Ok(text) => text.trim_end_matches(['\r', '\n']).to_owned(),
                Err(e) => {
                    f.error(format!(
                        "cannot read database URL file {raw:?}: {}",
                        e.kind()
                    ));
                    return None;
                }
            }
        }
    };
    if value.trim().is_empty() {
        v.error("the database URL is empty");
        return None;
    }
    Some(value)
}

/// The SQLite file `raw`, against `dir`: in `ro` mode it must exist; in `rw` mode its
/// directory must.
fn sqlite_path(v: &Value<'_, '_>, raw: &str, dir: &Path, mode: SqlMode) -> Option<PathBuf> {
    let path = resolve(v, raw, dir)?;
    if raw == ":memory:" || raw.contains('?') {
        v.error(format!(
            "sqlite path {raw:?}: expected a file path (no `:memory:`, no `?` options)"
        ));
        return None;
    }
    if mode == SqlMode::ReadOnly || path.exists() {
        let what = if mode == SqlMode::ReadOnly {
            "read-only SQLite database"
        } else {
            "SQLite database"
        };
        return check_path(v, raw, path, PathKind::File, what);
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let Some(name) = path.file_name() else {
        v.error(format!("sqlite path {raw:?} names no file"));
        return None;
    };
    match std::fs::canonicalize(parent) {
        Ok(parent) if parent.is_dir() => Some(parent.join(name)),
        _ => {
            v.error(format!(
                "the directory of SQLite database {raw:?} ({}) does not exist; a read-write \
                 database is created on first use, but its directory must exist",
                parent.display()
            ));
            None
        }
    }
}

/// Whether `raw`, a URL as written in the manifest, holds a password that is not a `${VAR}`.
fn literal_password(raw: &str) -> bool {
    let literal = |p: &str| !p.is_empty() && !p.contains("${");
    let in_user_info = split_password(raw).is_some_and(|(_, p, _)| literal(p));
    let in_query = raw.split_once('?').is_some_and(|(_, query)| {
        query.split('&').any(|option| {
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            key.eq_ignore_ascii_case("password") && literal(value)
        })
    });
    in_user_info || in_query
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// For `scheme://user:password@rest`: (`scheme://user:`, `password`, `@rest`).
fn split_password(url: &str) -> Option<(&str, &str, &str)> {
    let after_scheme = url.find("://")? + 3;
    let authority_end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    let at = url[after_scheme..authority_end].rfind('@')? + after_scheme;
    let colon = url[after_scheme..at].find(':')? + after_scheme;
    Some((&url[..=colon], &url[colon + 1..at], &url[at..]))
}

/// `url` with the password of its user info replaced by `***`, and any `password=` query
/// option dropped.
pub(crate) fn without_password(url: &str) -> String {
    let url = match split_password(url) {
        Some((head, _, tail)) => format!("{head}***{tail}"),
        None => url.to_owned(),
    };
    match url.split_once('?') {
        Some((base, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|option| !option.to_ascii_lowercase().starts_with("password="))
                .collect();
            if kept.is_empty() {
                base.to_owned()
            } else {
                format!("{base}?{}", kept.join("&"))
            }
        }
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            without_password("postgres://shop:s3cret@db:5432/shop"),
            "postgres://shop:***@db:5432/shop"
        );
        assert_eq!(
            without_password("postgres://shop@db/shop?password=x&sslmode=disable"),
            "postgres://shop@db/shop?sslmode=disable"
        );
        assert_eq!(
            without_password("postgres://a:b:c@h/d"),
            "postgres://a:***@h/d"
        );
        assert_eq!(without_password("postgres://db/shop"), "postgres://db/shop");
        assert_eq!(
            without_password("postgres://u:p@ss@h/d"),
            "postgres://u:***@h/d"
        );
    }
}
