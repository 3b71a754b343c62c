//! `${VAR}` expansion in manifest strings.
//!
//! Grammar, applied to every string value of the manifest (never to keys):
//! - `${NAME}`: the value of the environment variable `NAME`; an error if it is unset.
//! - `${NAME:-default}`: the value of `NAME` if it is set and not empty, else `default` (taken
//!   literally, up to the first `}`; it is not expanded again).
//! - `$$`: one literal `$`.
//! - `$` followed by anything else is a literal `$` (so `"costs $5"` needs no escape).
//!
//! `NAME` is `[A-Za-z_][A-Za-z0-9_]*`.

use std::borrow::Cow;

use super::names::is_env_name;

/// Reads an environment variable; `None` when unset.
pub(super) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Why a string cannot be expanded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum ExpandError {
    /// `${NAME}` without a default, and `NAME` is unset.
    #[error(
        "environment variable `{0}` is not set (give a default with `${{{0}:-default}}`, or `$${{` for a literal `${{`)"
    )]
    Unset(String),
    /// `${` with no closing `}`.
    #[error("unterminated `${{` (expected `}}`; write `$${{` for a literal `${{`)")]
    Unterminated,
    /// `${...}` whose name is not a variable name.
    #[error(
        "invalid variable name `{0}` in `${{...}}`: expected letters, digits and `_`, not starting with a digit"
    )]
    InvalidName(String),
}

/// Expands `${NAME}`, `${NAME:-default}` and `$$` in `input`, reading variables with `env`.
///
/// Borrows `input` when it contains no `$`.
pub(super) fn expand<'s>(input: &'s str, env: EnvLookup<'_>) -> Result<Cow<'s, str>, ExpandError> {
    if !input.contains('$') {
        return Ok(Cow::Borrowed(input));
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let close = body.find('}').ok_or(ExpandError::Unterminated)?;
            let (name, default) = match body[..close].split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (&body[..close], None),
            };
            if !is_env_name(name) {
                return Err(ExpandError::InvalidName(name.to_owned()));
            }
            match (env(name), default) {
                (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => return Err(ExpandError::Unset(name.to_owned())),
            }
            rest = &body[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/op".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn ok(input: &str) -> String {
        expand(input, &env)
            .map(Cow::into_owned)
            .unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        assert_eq!(ok("${HOME}/data"), "/home/op/data");
        assert_eq!(ok("a${HOME}b${HOME}c"), "a/home/opb/home/opc");
        assert_eq!(ok("${MISSING:-/tmp}"), "/tmp");
        assert_eq!(ok("${HOME:-/tmp}"), "/home/op");
        assert_eq!(ok("${EMPTY:-fallback}"), "fallback");
        assert_eq!(ok("${EMPTY}"), "");
        assert_eq!(ok("${MISSING:-}"), "");
        assert_eq!(ok("${MISSING:-a:-b $x}"), "a:-b $x");
    }

    #[test]
    fn dollar_escapes_and_literals() {
        assert_eq!(ok("plain"), "plain");
        assert!(matches!(expand("plain", &env), Ok(Cow::Borrowed("plain"))));
        assert_eq!(ok("$$"), "$");
        assert_eq!(ok("$${HOME}"), "${HOME}");
        assert_eq!(ok("$$$${HOME}"), "$${HOME}");
        assert_eq!(ok("costs $5"), "costs $5");
        assert_eq!(ok("trailing $"), "trailing $");
        assert_eq!(ok("$HOME"), "$HOME");
    }

    #[test]
    fn reports_unset_unterminated_and_invalid_names() {
        assert_eq!(
            expand("${NOPE}", &env),
            Err(ExpandError::Unset("NOPE".into()))
        );
        assert_eq!(expand("x ${HOME", &env), Err(ExpandError::Unterminated));
        assert_eq!(
            expand("${}", &env),
            Err(ExpandError::InvalidName(String::new()))
        );
        assert_eq!(
            expand("${1X}", &env),
            Err(ExpandError::InvalidName("1X".into()))
        );
        assert_eq!(
            expand("${A-B}", &env),
            Err(ExpandError::InvalidName("A-B".into()))
        );
        assert!(
            ExpandError::Unset("NOPE".into())
                .to_string()
                .contains("`${NOPE:-default}`")
        );
    }
}
