//! The shapes of names in a manifest: plugins, tools, prefixes, WIT functions, environment
//! variables.

/// The longest tool name every model provider accepts.
pub const MAX_TOOL_NAME_LEN: usize = 64;

/// What joins a plugin's prefix and a function name in a tool name: `{prefix}__{function}`.
pub const TOOL_NAME_SEPARATOR: &str = "__";

/// The longest plugin name.
pub(super) const MAX_PLUGIN_NAME_LEN: usize = 32;

/// The longest prefix: `{prefix}__` followed by at least one character still fits in
/// [`MAX_TOOL_NAME_LEN`].
pub(super) const MAX_PREFIX_LEN: usize = MAX_TOOL_NAME_LEN - TOOL_NAME_SEPARATOR.len() - 1;

/// Whether `name` is a valid MCP tool name for warden: 1 to 64 characters from
/// `[A-Za-z0-9_-]`, the set every model provider accepts.
pub fn is_valid_tool_name(name: &str) -> bool {
    (1..=MAX_TOOL_NAME_LEN).contains(&name.len()) && name.bytes().all(is_tool_name_byte)
}

fn is_tool_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Whether `name` is `[A-Za-z_][A-Za-z0-9_]*`, the portable shape of an environment variable
/// name.
pub(super) fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks a plugin name: `[a-z][a-z0-9_-]{0,31}`. The error says what is wrong.
pub(super) fn check_plugin_name(name: &str) -> Result<(), String> {
    let expected =
        "expected a lowercase letter followed by up to 31 lowercase letters, digits, `_` or `-`";
    match name.bytes().next() {
        None => return Err(format!("plugin name is empty: {expected}")),
        Some(b) if !b.is_ascii_lowercase() => {
            return Err(format!("invalid plugin name {name:?}: {expected}"));
        }
        Some(_) => {}
    }
    if name.len() > MAX_PLUGIN_NAME_LEN {
        return Err(format!(
            "plugin name {name:?} is {} characters long: at most {MAX_PLUGIN_NAME_LEN}",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(format!("invalid plugin name {name:?}: {expected}"));
    }
    Ok(())
}

/// Checks an exact tool name override against [`is_valid_tool_name`].
pub(super) fn check_tool_name(name: &str) -> Result<(), String> {
    if is_valid_tool_name(name) {
        Ok(())
    } else if name.is_empty() || name.len() > MAX_TOOL_NAME_LEN {
        Err(format!(
            "invalid tool name {name:?}: it must be 1 to {MAX_TOOL_NAME_LEN} characters long"
        ))
    } else {
        Err(format!(
            "invalid tool name {name:?}: only letters, digits, `_` and `-` are allowed"
        ))
    }
}

/// Checks a tool name prefix: empty (bare function names), or up to [`MAX_PREFIX_LEN`]
/// characters from the tool name alphabet.
pub(super) fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() > MAX_PREFIX_LEN {
        Err(format!(
            "prefix {prefix:?} is {} characters long: at most {MAX_PREFIX_LEN}, so that tool names fit in {MAX_TOOL_NAME_LEN}",
            prefix.len()
        ))
    } else if !prefix.bytes().all(is_tool_name_byte) {
        Err(format!(
            "invalid prefix {prefix:?}: only letters, digits, `_` and `-` are allowed"
        ))
    } else {
        Ok(())
    }
}

/// Checks a WIT function name, the key of a `[plugins.NAME.tools.FUNCTION]` table: a WIT label,
/// that is words of `[a-z][a-z0-9]*` or `[A-Z][A-Z0-9]*` joined by single `-`.
pub(super) fn check_function_name(name: &str) -> Result<(), String> {
    // The component model's kebab-case: words of one letter case with digits; words after
    // the first may also start with digits (`json-schema-2020-12`).
    let is_word = |(index, word): (usize, &str)| {
        let rest = if index == 0 {
            word
        } else {
            word.trim_start_matches(|c: char| c.is_ascii_digit())
        };
        let mut bytes = rest.bytes();
        match bytes.next() {
            None => !word.is_empty(),
            Some(b) if b.is_ascii_lowercase() => {
                bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            }
            Some(b) if b.is_ascii_uppercase() => {
                bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            }
            _ => false,
        }
    };
    if name.split('-').enumerate().all(is_word) {
        Ok(())
    } else {
        Err(format!(
            "invalid function name {name:?}: expected a WIT function name in kebab-case, such as \"read-text\""
        ))
    }
}

/// The tool name for `function` under `prefix`: `{prefix}__{function}`, or `function` alone when
/// `prefix` is empty. The result is not checked against [`is_valid_tool_name`].
pub fn prefixed_tool_name(prefix: &str, function: &str) -> String {
    if prefix.is_empty() {
        function.to_owned()
    } else {
        format!("{prefix}{TOOL_NAME_SEPARATOR}{function}")
    }
}

/// Checks a principal's name (`[[auth.api_keys]] principal`, `warden keygen --principal`,
/// `warden call --principal`): not empty, no spaces or control characters.
pub fn check_principal(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("a principal's name must not be empty".to_owned())
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!(
            "invalid principal {name:?}: names contain no spaces or control characters"
        ))
    } else {
        Ok(())
    }
}

/// Checks a list of roles (`roles = [...]` anywhere in the manifest, `warden keygen --roles`,
/// `warden call --roles`): each not empty, without spaces or control characters, listed once.
/// Returns the problems as (index of the role, message); empty when the list is fine.
pub fn check_roles<S: AsRef<str>>(roles: &[S]) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    for (index, role) in roles.iter().enumerate() {
        let role = role.as_ref();
        if role.is_empty() {
            problems.push((index, "a role must not be empty".to_owned()));
        } else if role.chars().any(|c| c.is_whitespace() || c.is_control()) {
            problems.push((
                index,
                format!("invalid role {role:?}: roles contain no spaces or control characters"),
            ));
        } else if roles[..index].iter().any(|r| r.as_ref() == role) {
            problems.push((index, format!("role {role:?} is listed twice")));
        }
    }
    problems
}

/// Parts of key names that mark a value as a secret, compared without case, `_` or `-`.
const SECRET_KEY_PARTS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "credential",
    "authorization",
    "cookie",
    "sessionid",
    "bearer",
    "signature",
];

/// Whether a value under `key` should be treated as a secret: `password`, `api_key`,
/// `GITHUB_TOKEN`, `clientSecret`, ...
pub fn is_secret_key(key: &str) -> bool {
    // Every call's every argument name comes through here: short ASCII names are normalized on
    // the stack.
    let mut buffer = [0u8; 64];
    let mut len = 0;
    if key.len() <= buffer.len() && key.is_ascii() {
        for byte in key.bytes().filter(|b| *b != b'_' && *b != b'-') {
            buffer[len] = byte.to_ascii_lowercase();
            len += 1;
        }
        return is_secret_name(&buffer[..len]);
    }
    let normalized: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    is_secret_name(normalized.as_bytes())
}

/// Whether a key name, lowercased and without `_` or `-`, names a secret.
fn is_secret_name(name: &[u8]) -> bool {
    name == b"auth"
        || SECRET_KEY_PARTS.iter().any(|part| {
            name.windows(part.len())
                .any(|window| window == part.as_bytes())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names() {
        for ok in ["files", "a", "fetch-2", "my_plugin", &"a".repeat(32)] {
            assert_eq!(check_plugin_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Files",
            "2fetch",
            "-x",
            "_x",
            "fi les",
            "files.x",
            "fïles",
            &"a".repeat(33),
        ] {
            assert!(check_plugin_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn tool_names() {
        for ok in ["read_file", "A-b_9", &"x".repeat(64)] {
            assert!(is_valid_tool_name(ok), "{ok}");
        }
        for bad in ["", "read file", "read.file", "é", &"x".repeat(65)] {
            assert!(!is_valid_tool_name(bad), "{bad:?}");
            assert!(check_tool_name(bad).is_err());
        }
    }

    #[test]
    fn prefixes() {
        for ok in ["", "fs", "My-Files_2", &"p".repeat(61)] {
            assert_eq!(check_prefix(ok), Ok(()), "{ok}");
        }
        for bad in ["f s", "fs.", &"p".repeat(62)] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
        assert_eq!(prefixed_tool_name("fs", "read-text"), "fs__read-text");
        assert_eq!(prefixed_tool_name("", "read-text"), "read-text");
    }

    #[test]
    fn env_names() {
        for ok in ["LANG", "_x", "a1_B"] {
            assert!(is_env_name(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "É"] {
            assert!(!is_env_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn function_names() {
        for ok in [
            "read-text",
            "list",
            "get-URL",
            "v2-api",
            "json-schema-2020-12-tool",
            "page-2nd",
        ] {
            assert_eq!(check_function_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "read_text",
            "Read-text",
            "read--text",
            "-read",
            "read-",
            "2read",
            "read-2Nd",
            "files.read",
        ] {
            assert!(check_function_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secret_like_keys_are_recognized() {
        for key in [
            "password",
            "api_key",
            "apiKey",
            "GITHUB_TOKEN",
            "client-secret",
            "Authorization",
            "auth",
            "private_key",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["path", "author", "text", "name", "keyword"] {
            assert!(!is_secret_key(key), "{key}");
        }
    }
}
