//! A checked walk over the spanned TOML tree.
//!
//! The manifest is read by hand from [`toml::de::DeTable`] rather than through serde derives,
//! because serde stops at the first problem and loses positions; here every read that fails
//! records a [`Diagnostic`] with its location and the walk goes on, so one load reports every
//! problem. A [`Table`] remembers which keys were asked for, and [`Table::finish`] reports the
//! others as unknown: adding a key to the manifest is one `get` call.

use std::cell::RefCell;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{Diagnostic, Location};
use super::expand::{EnvLookup, expand};

/// What one manifest load shares: the source (for positions), the environment (for `${VAR}`),
/// and the diagnostics found so far.
pub(super) struct Context<'a> {
    file: &'a Path,
    text: &'a str,
    line_starts: Vec<usize>,
    env: EnvLookup<'a>,
    diagnostics: RefCell<Vec<Diagnostic>>,
}

impl<'a> Context<'a> {
    /// A context for `text`, read from `file`, expanding variables with `env`.
    pub(super) fn new(file: &'a Path, text: &'a str, env: EnvLookup<'a>) -> Context<'a> {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Context {
            file,
            text,
            line_starts,
            env,
            diagnostics: RefCell::new(Vec::new()),
        }
    }

    /// The location of byte `offset`, labelled with `key`.
    pub(super) fn location(&self, offset: usize, key: &str) -> Location {
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .max(1);
        let line_start = self.line_starts[line - 1];
        let column = match self.text.get(line_start..offset.min(self.text.len())) {
            Some(prefix) => prefix.chars().count() + 1,
            None => offset - line_start + 1,
        };
        Location {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.to_owned(),
        }
    }

    /// Records a problem at byte `offset`, under `key`.
    pub(super) fn error(&self, offset: usize, key: &str, message: impl Into<String>) {
        self.push(self.location(offset, key).diagnostic(message));
    }

    /// Records a problem.
    pub(super) fn push(&self, diagnostic: Diagnostic) {
        self.diagnostics.borrow_mut().push(diagnostic);
    }

    /// Whether any problem has been recorded.
    pub(super) fn has_errors(&self) -> bool {
        !self.diagnostics.borrow().is_empty()
    }

    /// The value of environment variable `name`, if set.
    pub(super) fn env(&self, name: &str) -> Option<String> {
        (self.env)(name)
    }

    /// The problems recorded, in the order they were found.
    pub(super) fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics.into_inner()
    }
}

/// `parent.segment`, quoting `segment` when it is not a bare TOML key.
pub(super) fn child_key(parent: &str, segment: &str) -> String {
    let bare = !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let segment = if bare {
        segment.to_owned()
    } else {
        format!("{segment:?}")
    };
    if parent.is_empty() {
        segment
    } else {
        format!("{parent}.{segment}")
    }
}

/// One value of the tree, with its dotted key and position.
pub(super) struct Value<'r, 'i> {
    cx: &'r Context<'r>,
    key: String,
    name: &'r str,
    key_span: Range<usize>,
    value: &'r Spanned<DeValue<'i>>,
}

impl<'r, 'i> Value<'r, 'i> {
    /// The last segment of the key (for `plugins.files`, `files`), unquoted. Empty for array
    /// items.
    pub(super) fn name(&self) -> &'r str {
        self.name
    }

    /// The TOML value.
    pub(super) fn raw(&self) -> &'r DeValue<'i> {
        self.value.get_ref()
    }

    /// Where this entry starts: its key, or its `[header]` for a table defined by one.
    pub(super) fn location(&self) -> Location {
        let start = self.key_span.start.min(self.value.span().start);
        self.cx.location(start, &self.key)
    }

    /// Where the value itself starts (for a string, its opening quote).
    pub(super) fn value_location(&self) -> Location {
        self.cx.location(self.value.span().start, &self.key)
    }

    /// Records a problem with this value, at the value.
    pub(super) fn error(&self, message: impl Into<String>) {
        self.cx.push(self.value_location().diagnostic(message));
    }

    /// Records a problem with this entry, at its key (or header).
    pub(super) fn key_error(&self, message: impl Into<String>) {
        self.cx.push(self.location().diagnostic(message));
    }

    /// Records that this value has the wrong type.
    pub(super) fn type_error(&self, expected: &str) {
        self.error(format!(
            "expected {expected}, found {}",
            describe(self.raw())
        ));
    }

    /// The string, with `${VAR}` expanded; records a problem and returns `None` if this is not a
    /// string or cannot be expanded.
    pub(super) fn string(&self) -> Option<String> {
        match self.raw() {
            DeValue::String(s) => self.expand(s),
            _ => {
                self.type_error("a string");
                None
            }
        }
    }

    /// Expands `${VAR}` in `s`, a string found at this value; records a problem on failure.
    pub(super) fn expand(&self, s: &str) -> Option<String> {
        match expand(s, self.cx.env) {
            Ok(expanded) => Some(expanded.into_owned()),
            Err(e) => {
                self.error(e.to_string());
                None
            }
        }
    }

    /// The value of variable `name` of warden's environment, if set (for values that name a
    /// variable rather than expand one, such as `secrets`).
    pub(super) fn env_var(&self, name: &str) -> Option<String> {
        self.cx.env(name)
    }

    /// The integer, widened so every TOML integer fits; `None` (recorded) if not an integer.
    pub(super) fn integer(&self) -> Option<i128> {
        match self.raw() {
            DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(e) => {
                    self.error(format!("invalid integer: {e}"));
                    None
                }
            },
            _ => {
                self.type_error("an integer");
                None
            }
        }
    }

    /// The table; `None` (recorded) if this is not a table.
    pub(super) fn table(&self) -> Option<Table<'r, 'i>> {
        match self.raw() {
            DeValue::Table(table) => Some(Table {
                cx: self.cx,
                key: self.key.clone(),
                start: self.key_span.start.min(self.value.span().start),
                table,
                known: RefCell::new(Vec::new()),
            }),
            _ => {
                self.type_error("a table");
                None
            }
        }
    }

    /// The items of the array, keyed `key[index]`; `None` (recorded) if this is not an array.
    pub(super) fn array(&self) -> Option<Vec<Value<'r, 'i>>> {
        match self.raw() {
            DeValue::Array(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| Value {
                        cx: self.cx,
                        key: format!("{}[{index}]", self.key),
                        name: "",
                        key_span: item.span().start..item.span().start,
                        value: item,
                    })
                    .collect(),
            ),
            _ => {
                self.type_error("an array");
                None
            }
        }
    }
}

/// A TOML type with its article, for messages: "a string", "an integer".
fn describe(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// A table of the tree that tracks which keys were read.
pub(super) struct Table<'r, 'i> {
    cx: &'r Context<'r>,
    key: String,
    start: usize,
    table: &'r DeTable<'i>,
    known: RefCell<Vec<&'static str>>,
}

impl<'r, 'i> Table<'r, 'i> {
    /// The document itself.
    pub(super) fn root(cx: &'r Context<'r>, table: &'r Spanned<DeTable<'i>>) -> Table<'r, 'i> {
        Table {
            cx,
            key: String::new(),
            start: 0,
            table: table.get_ref(),
            known: RefCell::new(Vec::new()),
        }
    }

    /// Where the table is named: its `[header]`, or its key.
    pub(super) fn location(&self) -> Location {
        self.cx.location(self.start, &self.key)
    }

    /// The value of `key`, if present. Marks `key` as known, so [`Table::finish`] accepts it.
    pub(super) fn get(&self, key: &'static str) -> Option<Value<'r, 'i>> {
        self.known.borrow_mut().push(key);
        let (k, value) = self.table.get_key_value(key)?;
        Some(Value {
            cx: self.cx,
            key: child_key(&self.key, key),
            name: k.get_ref(),
            key_span: k.span(),
            value,
        })
    }

    /// The value of `key`; records "missing required key" at the table when absent.
    pub(super) fn require(&self, key: &'static str) -> Option<Value<'r, 'i>> {
        let value = self.get(key);
        if value.is_none() {
            self.cx.push(
                self.location()
                    .diagnostic(format!("missing required key `{key}`")),
            );
        }
        value
    }

    /// Report `message` at the table's header.
    pub(super) fn error(&self, message: impl Into<String>) {
        self.cx.push(self.location().diagnostic(message.into()));
    }

    /// Every entry, in file order, for tables whose keys are names chosen by the operator
    /// (plugins, environment variables, tools). Such tables need no [`Table::finish`].
    pub(super) fn entries(&self) -> Vec<Value<'r, 'i>> {
        let mut entries: Vec<Value<'r, 'i>> = self
            .table
            .iter()
            .map(|(k, value)| Value {
                cx: self.cx,
                key: child_key(&self.key, k.get_ref()),
                name: k.get_ref(),
                key_span: k.span(),
                value,
            })
            .collect();
        entries.sort_by_key(|entry| entry.key_span.start);
        entries
    }

    /// Records every key that was never asked for with [`Table::get`] as unknown, suggesting
    /// the closest known key.
    pub(super) fn finish(&self) {
        let known = self.known.borrow();
        let mut unknown: Vec<_> = self
            .table
            .iter()
            .filter(|(k, _)| !known.iter().any(|known| *known == k.get_ref().as_ref()))
            .collect();
        unknown.sort_by_key(|(k, _)| k.span().start);
        for (k, _) in unknown {
            let name: &str = k.get_ref();
            let message = match closest(name, &known) {
                Some(suggestion) => format!("unknown key `{name}`; did you mean `{suggestion}`?"),
                None if known.is_empty() => {
                    format!("unknown key `{name}`: this table takes no keys")
                }
                None => format!("unknown key `{name}`; expected one of {}", list(&known)),
            };
            self.cx
                .error(k.span().start, &child_key(&self.key, name), message);
        }
    }
}

/// `a`, `b` and `c`.
fn list(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

/// The known key most like `key`, if one is a plausible typo of it.
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let limit = (key.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .map(|k| (edit_distance(&key.to_ascii_lowercase(), k), *k))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent
/// transpositions each cost one. Used for "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// The dotted key a syntax error at `offset` belongs to, from the tree recovered around the
/// error: the last key before it on the same line, else the table that the last key before it
/// belongs to; empty when there is none.
pub(super) fn key_at(cx: &Context<'_>, table: &DeTable<'_>, offset: usize) -> String {
    /// The last key starting at or before the offset: (start, dotted key, dotted parent).
    type Best = Option<(usize, String, String)>;
    fn walk(table: &DeTable<'_>, parent: &str, offset: usize, best: &mut Best) {
        for (k, value) in table.iter() {
            let key = child_key(parent, k.get_ref());
            let start = k.span().start;
            if start <= offset && best.as_ref().is_none_or(|(s, _, _)| start >= *s) {
                *best = Some((start, key.clone(), parent.to_owned()));
            }
            walk_value(value, &key, offset, best);
        }
    }
    fn walk_value(value: &Spanned<DeValue<'_>>, key: &str, offset: usize, best: &mut Best) {
        match value.get_ref() {
            DeValue::Table(table) => walk(table, key, offset, best),
            DeValue::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    walk_value(item, &format!("{key}[{index}]"), offset, best);
                }
            }
            _ => {}
        }
    }
    let mut best = None;
    walk(table, "", offset, &mut best);
    match best {
        Some((start, key, _)) if cx.location(start, "").line == cx.location(offset, "").line => key,
        Some((_, _, parent)) => parent,
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_quoted_only_when_not_bare() {
        assert_eq!(child_key("", "plugins"), "plugins");
        assert_eq!(child_key("plugins", "my-files_2"), "plugins.my-files_2");
        assert_eq!(child_key("plugins", "a.b"), "plugins.\"a.b\"");
        assert_eq!(child_key("plugins", ""), "plugins.\"\"");
    }

    #[test]
    fn suggestions_catch_typos_only() {
        let known = ["component", "sha256", "memory", "max_output"];
        assert_eq!(closest("memroy", &known), Some("memory"));
        assert_eq!(closest("componet", &known), Some("component"));
        assert_eq!(closest("max-output", &known), Some("max_output"));
        assert_eq!(closest("Memory", &known), Some("memory"));
        assert_eq!(closest("colour", &known), None);
        assert_eq!(list(&["a"]), "`a`");
        assert_eq!(list(&["a", "b", "c"]), "`a`, `b` or `c`");
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let env = |_: &str| None;
        let cx = Context::new(Path::new("w.toml"), "a = 1\nb = \"é\" # x\n", &env);
        let at = |offset| {
            let l = cx.location(offset, "");
            (l.line, l.column)
        };
        assert_eq!(at(0), (1, 1));
        assert_eq!(at(6), (2, 1));
        assert_eq!(at(13), (2, 7)); // after the two-byte é
        assert_eq!(at(100), (3, 1));
    }
}
