//! What a verified token's claims grant: its principal, scopes and roles.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The claim named `name`: the top-level claim of that exact name if there is one (names
/// like `https://example.com/roles` contain dots), otherwise the dotted path through nested
/// objects (`realm_access.roles`).
pub(super) fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut parts = name.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// A claim holding a list of words: a space-separated string (`"a b"`) or an array of
/// strings (`["a", "b"]`). Other values, and non-string array items, give nothing.
pub(super) fn words(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(text)) => text.split_ascii_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|word| !word.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The token's scopes: `scope` (RFC 8693 and RFC 9068: a space-separated string), or else
/// `scp` (an array, or a string, as some providers send it).
pub(super) fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    let mut scopes = words(claims.get("scope"));
    if scopes.is_empty() {
        scopes = words(claims.get("scp"));
    }
    dedup(scopes)
}

/// The roles granted: `scope_roles` of each scope, then the `roles_claim` list, in that order,
/// without duplicates.
pub(super) fn roles(
    scopes: &[String],
    scope_roles: &BTreeMap<String, Vec<String>>,
    roles_claim: Option<&Value>,
) -> Vec<String> {
    let from_scopes = scopes
        .iter()
        .filter_map(|scope| scope_roles.get(scope))
        .flatten()
        .cloned();
    dedup(from_scopes.chain(words(roles_claim)).collect())
}

/// `list` without repeated entries, first occurrences kept in order.
fn dedup(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let scoped = object(json!({ "scope": "tools:read  tools:call tools:read" }));
        assert_eq!(scopes(&scoped), ["tools:read", "tools:call"]);
        let scp = object(json!({ "scp": ["a", 3, "b", ""] }));
        assert_eq!(scopes(&scp), ["a", "b"]);
        let scp_text = object(json!({ "scp": "a b" }));
        assert_eq!(scopes(&scp_text), ["a", "b"]);
        assert!(scopes(&object(json!({ "scope": 7 }))).is_empty());
    }

    #[test]
    fn claims_are_found_by_name_then_path() {
        let claims = object(json!({
            "https://example.com/roles": ["x"],
            "realm_access": { "roles": ["admin"] },
        }));
        assert_eq!(words(claim(&claims, "https://example.com/roles")), ["x"]);
        assert_eq!(words(claim(&claims, "realm_access.roles")), ["admin"]);
        assert!(claim(&claims, "realm_access.missing").is_none());
        assert!(claim(&claims, "nothing").is_none());
    }

    #[test]
    fn roles_are_the_union_of_scopes_and_claim() {
        let mut map = BTreeMap::new();
        map.insert("tools:read".to_owned(), vec!["reader".to_owned()]);
        map.insert(
            "tools:call".to_owned(),
            vec!["reader".to_owned(), "caller".to_owned()],
        );
        let scopes = [
            "tools:read".to_owned(),
            "tools:call".to_owned(),
            "x".to_owned(),
        ];
        let claim = json!(["admin", "reader"]);
        assert_eq!(
            roles(&scopes, &map, Some(&claim)),
            ["reader", "caller", "admin"]
        );
        assert!(roles(&[], &map, None).is_empty());
    }
}
