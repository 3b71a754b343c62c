//! RFC 9728 OAuth 2.0 Protected Resource Metadata: how a client finds the authorization
//! server that issues tokens for this server.

use serde_json::{Value, json};

/// The metadata document of `resource` (the MCP endpoint's public URL).
///
/// `scopes_supported` lists the required scopes, then the scopes that grant roles; it is left
/// out when there are none.
pub(super) fn document(
    resource: &str,
    authorization_servers: &[String],
    required_scopes: &[String],
    role_scopes: impl Iterator<Item = String>,
) -> Value {
    let mut scopes: Vec<String> = required_scopes.to_vec();
    for scope in role_scopes {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let mut document = json!({
        "resource": resource,
        "authorization_servers": authorization_servers,
        "bearer_methods_supported": ["header"],
        "resource_name": "warden",
    });
    if !scopes.is_empty() {
        document["scopes_supported"] = json!(scopes);
    }
    document
}
