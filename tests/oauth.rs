//! OAuth 2.1 resource server, end to end: the real `warden serve --http`, JWTs signed at test
//! time, raw HTTP requests for the refusals (status and `WWW-Authenticate`), rmcp's
//! streamable-HTTP client for the accepted token, and the audit log.

mod common;
#[allow(dead_code)] // not every kind of key is used here
#[path = "support/oauth.rs"]
mod support;

use common::{Fixture, HttpServer, challenge, discover_2026};
use rmcp::model::CallToolRequestParams;
use rmcp::service::ClientLifecycleMode;
use serde_json::{Value, json};
use support::{JwksServer, TestKey, b64, jwks, now};

const ISSUER: &str = "https://idp.test/";
const RESOURCE: &str = "https://warden.test/mcp";
const METADATA_URL: &str = "https://warden.test/.well-known/oauth-protected-resource/mcp";

// --- Keys and tokens ------------------------------------------------------------------------

/// Claims that pass every check: alice, with the required scope and the one that grants
/// `caller`, and the `auditor` group.
fn good_claims() -> Value {
    support::claims(ISSUER, RESOURCE, "mcp tools:call")
}

fn claims_with(changes: Value) -> Value {
    support::changed(good_claims(), changes)
}

/// A token with `alg: HS256` whose MAC is keyed with `key` (bytes an attacker can know).
fn hs256(claims: &Value, kid: &str, key: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        b64(json!({ "alg": "HS256", "kid": kid }).to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        message.as_bytes(),
    );
    format!("{message}.{}", b64(mac.as_ref()))
}

// --- The server -----------------------------------------------------------------------------

/// POSTs an `initialize` request to `server`'s `/mcp` with `token` as the bearer credential.
async fn initialize(server: &HttpServer, token: Option<&str>) -> reqwest::Response {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": { "name": "oauth-test", "version": "1" },
        },
    });
    let mut request = reqwest::Client::new()
        .post(&server.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.send().await.expect("POST /mcp")
}

/// rmcp's streamable-HTTP client with `token`, in the protocol era of `lifecycle`: lists the
/// tools, calls `testbed__emit` if listed, and returns the tool names and the call's text.
async fn list_and_call(
    server: &HttpServer,
    token: &str,
    lifecycle: ClientLifecycleMode,
) -> (Vec<String>, Option<String>) {
    let client = server
        .connect(server.client_config(Some(token)), lifecycle)
        .await
        .unwrap_or_else(|e| panic!("MCP handshake over HTTP: {e}\n{}", server.stderr()));
    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    let mut text = None;
    if names.iter().any(|name| name == "testbed__emit") {
        let result = client
            .call_tool(
                CallToolRequestParams::new("testbed__emit")
                    .with_arguments(common::object(json!({ "text": "hello" }))),
            )
            .await
            .expect("tools/call");
        text = Some(common::ok_text(&result));
    }
    let _ = client.cancel().await;
    (names, text)
}

/// The manifest: OAuth with `jwks`, scopes `mcp` (required) and `tools:call` (role
/// `caller`, needed by `testbed__emit`), roles from `groups`, and an audit log.
fn manifest(jwks: &str) -> String {
    format!(
        r#"
[http]
public_url = "{RESOURCE}"

[auth.oauth]
issuer = "{ISSUER}"
{jwks}
algorithms = ["ES256", "EdDSA"]
required_scopes = ["mcp"]
roles_claim = "groups"

[auth.oauth.scope_roles]
"tools:call" = ["caller"]

[audit]
path = "{{dir}}/audit.jsonl"

[plugins.testbed]
component = "{{testbed}}"

[plugins.testbed.tools.emit]
roles = ["caller"]
"#
    )
}

// --- Tests ----------------------------------------------------------------------------------

#[tokio::test]
async fn bearer_jwts_are_verified_and_their_principal_and_roles_audited() {
    let key = TestKey::ecdsa("key-1", "ES256");
    let stranger = TestKey::ecdsa("key-2", "ES256");
    let fixture = Fixture::new(&manifest("jwks_file = \"jwks.json\""));
    std::fs::write(fixture.path("jwks.json"), jwks(&[&key]).to_string()).expect("write JWKS");
    let server = fixture.http_server(&[]).await;

    // No token: 401, a challenge without an error code, naming the metadata.
    let response = initialize(&server, None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        challenge(&response),
        format!("Bearer realm=\"warden\", resource_metadata=\"{METADATA_URL}\"")
    );

    let public_jwk = key.jwk().to_string();
    let refused = [
        (
            "expired",
            key.token(&claims_with(json!({ "exp": now() - 3600 }))),
            "token expired",
        ),
        (
            "not yet valid",
            key.token(&claims_with(json!({ "nbf": now() + 3600 }))),
            "token not yet valid",
        ),
        (
            "other audience",
            key.token(&claims_with(json!({ "aud": "https://other.test/mcp" }))),
            "token not issued for this resource",
        ),
        (
            "other issuer",
            key.token(&claims_with(json!({ "iss": "https://evil.test/" }))),
            "wrong issuer",
        ),
        (
            "unknown key",
            stranger.token(&good_claims()),
            "unknown signing key",
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none","kid":"key-1"}"#),
                b64(good_claims().to_string().as_bytes())
            ),
            "algorithm not accepted",
        ),
        (
            "HS256 keyed with the public JWK",
            hs256(&good_claims(), "key-1", public_jwk.as_bytes()),
            "algorithm not accepted",
        ),
        (
            "HS256 keyed with the public point",
            hs256(&good_claims(), "key-1", key.public_bytes()),
            "algorithm not accepted",
        ),
    ];
    for (case, token, description) in &refused {
        let response = initialize(&server, Some(token)).await;
        assert_eq!(response.status(), 401, "{case}");
        assert_eq!(
            challenge(&response),
            format!(
                "Bearer realm=\"warden\", resource_metadata=\"{METADATA_URL}\", \
                 error=\"invalid_token\", error_description=\"{description}\""
            ),
            "{case}"
        );
    }

    // A valid token without the required scope: 403 insufficient_scope.
    let small = key.token(&claims_with(json!({ "scope": "tools:call" })));
    let response = initialize(&server, Some(&small)).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        challenge(&response),
        format!(
            "Bearer realm=\"warden\", resource_metadata=\"{METADATA_URL}\", \
             error=\"insufficient_scope\", scope=\"mcp\""
        )
    );

    // A good token lists and calls a tool that needs the role its scope grants.
    // In both protocol eras.
    let good = key.token(&good_claims());
    for lifecycle in [ClientLifecycleMode::Initialize, discover_2026()] {
        let (tools, text) = list_and_call(&server, &good, lifecycle).await;
        assert!(tools.iter().any(|t| t == "testbed__emit"), "{tools:?}");
        assert_eq!(text.as_deref(), Some("hello"));
    }
    // Without `tools:call`, the role is missing: the tool is not even listed.
    let reader = key.token(&claims_with(json!({ "scope": "mcp" })));
    let (tools, text) = list_and_call(&server, &reader, ClientLifecycleMode::Initialize).await;
    assert!(!tools.iter().any(|t| t == "testbed__emit"), "{tools:?}");
    assert!(
        tools.iter().any(|t| t.starts_with("testbed__")),
        "{tools:?}"
    );
    assert_eq!(text, None);

    // The audit log: the call with alice's principal and roles, and every refusal, with its
    // reason and never the token.
    let records = fixture.audit_log("audit.jsonl");
    let call = records
        .iter()
        .find(|r| r["tool"] == "testbed__emit" && r["outcome"] == "ok")
        .unwrap_or_else(|| panic!("no audited call in {records:#?}"));
    assert_eq!(call["principal"], "alice");
    assert_eq!(call["roles"], json!(["caller", "auditor"]));
    assert_eq!(call["transport"], "http");
    let errors: Vec<&str> = records
        .iter()
        .filter(|r| r["outcome"] == "denied")
        .filter_map(|r| r["error"].as_str())
        .collect();
    for (case, _, description) in &refused {
        assert!(
            errors.iter().any(|e| e.contains(description)),
            "{case}: {errors:#?}"
        );
    }
    // A valid token short of scope is refused in its subject's name; the others name nobody.
    let scope_refusal = records
        .iter()
        .find(|r| {
            r["outcome"] == "denied"
                && r["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("insufficient scope"))
        })
        .unwrap_or_else(|| panic!("no insufficient-scope refusal in {records:#?}"));
    assert_eq!(scope_refusal["principal"], "alice");
    let log = server.stderr();
    let everything = format!("{log}{records:?}");
    for (case, token, _) in &refused {
        let signature = token.rsplit('.').next().unwrap_or_default();
        assert!(
            signature.is_empty() || !everything.contains(signature),
            "{case}: the token leaked"
        );
    }

    // RFC 9728 metadata at both paths, without credentials.
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let response = reqwest::get(format!("{}{path}", server.base))
            .await
            .expect("GET metadata");
        assert_eq!(response.status(), 200, "{path}");
        let document: Value = response.json().await.expect("metadata JSON");
        assert_eq!(
            document,
            json!({
                "resource": RESOURCE,
                "authorization_servers": [ISSUER],
                "bearer_methods_supported": ["header"],
                "scopes_supported": ["mcp", "tools:call"],
                "resource_name": "warden",
            }),
            "{path}"
        );
    }
}

#[tokio::test]
async fn jwks_url_is_fetched_and_refetched_when_the_provider_rotates_keys() {
    let (first, second, third) = (
        TestKey::ecdsa("2026-a", "ES256"),
        TestKey::ed25519("2026-b"),
        TestKey::ecdsa("2026-c", "ES256"),
    );
    let jwks_server = JwksServer::start(jwks(&[&first])).await;
    let fixture = Fixture::new(&manifest(&format!("jwks_url = \"{}\"", jwks_server.url)));
    let server = fixture.http_server(&[]).await;

    let (tools, _) = list_and_call(
        &server,
        &first.token(&good_claims()),
        ClientLifecycleMode::Initialize,
    )
    .await;
    assert!(tools.iter().any(|t| t == "testbed__emit"), "{tools:?}");
    let fetched = jwks_server.hits();
    assert_eq!(fetched, 1, "fetched once, then cached");

    // The provider rotates: the new kid makes warden fetch the set again.
    jwks_server.serve(jwks(&[&second]));
    let (_, text) = list_and_call(&server, &second.token(&good_claims()), discover_2026()).await;
    assert_eq!(text.as_deref(), Some("hello"));
    assert_eq!(jwks_server.hits(), 2);

    // Another unknown kid right after: refused without fetching again (at most one refetch
    // per 30s), even though the set now has it.
    jwks_server.serve(jwks(&[&second, &third]));
    for _ in 0..3 {
        let response = initialize(&server, Some(&third.token(&good_claims()))).await;
        assert_eq!(response.status(), 401);
        assert!(
            challenge(&response).contains("error_description=\"unknown signing key\""),
            "{}",
            challenge(&response)
        );
    }
    assert_eq!(jwks_server.hits(), 2, "rate-limited refetch");
}
