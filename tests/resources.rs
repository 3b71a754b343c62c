//! Resources from plugins (`warden:mcp/resources`), end to end: the real binary serving the
//! `conformance` component and rmcp's client: list, templates, read (text, blob, template),
//! the unknown URI, roles, redaction, the audit record and the conflicts refused at load.

mod common;

use common::{Fixture, audit_of, discover_2026, run_python};
use rmcp::ServiceError;
use rmcp::model::{ReadResourceRequestParams, ReadResourceResult, ResourceContents};
use rmcp::service::ClientLifecycleMode;
use serde_json::{Value, json};

/// The Python client: lists the resources and templates and reads some.
const PYTHON_CLIENT: &str = include_str!("support/surface_client.py");

/// The conformance plugin's resources for everyone.
const MANIFEST: &str = r#"
[server]
principal = "ann"

[audit]
path = "{dir}/audit.jsonl"

[plugins.conformance]
component = "{conformance}"
"#;

/// The resources served only to `admin`; the stdio principal has no role.
const ADMIN_ONLY: &str = r#"
[server]
principal = "ann"

[audit]
path = "{dir}/audit.jsonl"

[plugins.vault]
component = "{conformance}"
roles = ["admin"]
"#;

fn read(uri: &str) -> ReadResourceRequestParams {
    ReadResourceRequestParams::new(uri)
}

/// The text of the first contents, if it is text.
fn text(result: &ReadResourceResult) -> &str {
    match result.contents.first() {
        Some(ResourceContents::TextResourceContents { text, .. }) => text,
        _ => "",
    }
}

/// The audit records of `resources/read`.
fn read_records(fixture: &Fixture) -> Vec<Value> {
    audit_of(fixture, "audit.jsonl", "resources/read")
}

/// The code and data of a JSON-RPC error.
fn rpc_error(error: ServiceError) -> (i32, Option<Value>) {
    match error {
        ServiceError::McpError(error) => (error.code.0, error.data),
        other => panic!("not a JSON-RPC error: {other}"),
    }
}

#[tokio::test]
async fn rmcp_client_lists_and_reads_text_blob_and_template_resources_audited() {
    let fixture = Fixture::new(MANIFEST);
    let client = fixture.client().await;
    let info = client.service.peer_info().expect("initialize result");
    assert!(
        info.capabilities.resources.is_some(),
        "{:?}",
        info.capabilities
    );

    let resources = client
        .service
        .list_all_resources()
        .await
        .expect("resources/list");
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "test://static-text",
            "test://static-binary",
            "test://watched-resource"
        ]
    );
    assert_eq!(resources[0].mime_type.as_deref(), Some("text/plain"));
    let templates = client
        .service
        .list_all_resource_templates()
        .await
        .expect("resources/templates/list");
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].uri_template, "test://template/{id}/data");

    let static_text = client
        .service
        .read_resource(read("test://static-text"))
        .await
        .expect("read text");
    assert_eq!(
        text(&static_text),
        "This is the content of the static text resource."
    );
    let binary = client
        .service
        .read_resource(read("test://static-binary"))
        .await
        .expect("read blob");
    assert!(
        matches!(
            &binary.contents[0],
            ResourceContents::BlobResourceContents { blob, mime_type: Some(m), .. }
                if m == "image/png" && blob.starts_with("iVBORw0KGgo")
        ),
        "{binary:?}"
    );
    let templated = client
        .service
        .read_resource(read("test://template/123/data"))
        .await
        .expect("read template");
    assert_eq!(
        text(&templated),
        r#"{"id":"123","templateTest":true,"data":"Data for ID: 123"}"#
    );
    client.close().await;

    let records = read_records(&fixture);
    assert_eq!(records.len(), 3, "{records:#?}");
    assert_eq!(records[0]["tool"], "test://static-text");
    assert_eq!(records[0]["plugin"], "conformance");
    assert_eq!(records[0]["outcome"], "ok");
    assert!(records[0]["fuel"].as_u64().is_some(), "{}", records[0]);
}

#[tokio::test]
async fn an_unknown_uri_is_invalid_params_with_the_uri_and_text_is_redacted() {
    let fixture = Fixture::new(MANIFEST);
    let client = fixture.client().await;
    for uri in ["test://nothing-here", "test://template/1/2/data"] {
        let error = client
            .service
            .read_resource(read(uri))
            .await
            .expect_err("unknown");
        let (code, data) = rpc_error(error);
        assert_eq!(code, -32602, "{uri}");
        assert_eq!(data.expect("data")["uri"], uri);
    }
    // Every text the plugin returns passes the output filter: here the id it echoes.
    let echoed = client
        .service
        .read_resource(read("test://template/AKIAIOSFODNN7EXAMPLE/data"))
        .await
        .expect("read");
    assert!(
        text(&echoed).contains(r#""id":"[REDACTED:aws-key]""#),
        "{echoed:?}"
    );
    client.close().await;

    let records = read_records(&fixture);
    assert_eq!(records.len(), 3, "{records:#?}");
    assert_eq!(records[0]["outcome"], "invalid");
    assert_eq!(records[1]["outcome"], "invalid");
    // The id and the data that repeats it; the URI is recorded redacted.
    assert_eq!(records[2]["redactions"]["aws-key"], 2, "{}", records[2]);
    assert_eq!(
        records[2]["tool"], "test://template/[REDACTED:aws-key]/data",
        "{}",
        records[2]
    );
}

#[tokio::test]
async fn a_role_less_principal_neither_lists_nor_reads_another_roles_resources() {
    let fixture = Fixture::new(ADMIN_ONLY);
    let client = fixture.client().await;
    let resources = client
        .service
        .list_all_resources()
        .await
        .expect("resources/list");
    assert!(resources.is_empty(), "{resources:?}");
    let templates = client
        .service
        .list_all_resource_templates()
        .await
        .expect("resources/templates/list");
    assert!(templates.is_empty(), "{templates:?}");
    // Reading it anyway looks exactly like reading a URI that does not exist.
    for uri in ["test://static-text", "test://template/1/data"] {
        let error = client
            .service
            .read_resource(read(uri))
            .await
            .expect_err("denied");
        let (code, data) = rpc_error(error);
        assert_eq!(code, -32602);
        assert_eq!(data.expect("data")["uri"], uri);
    }
    client.close().await;

    let records = read_records(&fixture);
    assert_eq!(records.len(), 2, "{records:#?}");
    assert_eq!(records[0]["outcome"], "denied");
    assert_eq!(records[0]["plugin"], "vault");
}

#[test]
fn two_plugins_serving_one_uri_are_refused_at_load() {
    let fixture = Fixture::new(
        "[plugins.one]\ncomponent = \"{conformance}\"\n\n\
         [plugins.two]\ncomponent = \"{conformance}\"\n",
    );
    let manifest = fixture.manifest.display().to_string();
    let (code, _, stderr) = common::warden(&["check", "--manifest", &manifest], fixture.dir.path());
    assert_ne!(code, 0, "{stderr}");
    for expected in [
        "resource template `test://template/{id}/data` (plugin `two`) is already served by plugin `one`",
        "resource URI `test://static-text` (plugin `two`) is already served by plugin `one`",
    ] {
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[tokio::test]
async fn python_sdk_lists_and_reads_resources_in_both_eras() {
    let fixture = Fixture::new(MANIFEST);
    for mode in ["legacy", "2026-07-28"] {
        let plan = json!({
            "server": [env!("CARGO_BIN_EXE_warden"), "serve", "--manifest", fixture.manifest],
            "mode": mode,
            "read": ["test://static-text", "test://static-binary", "test://template/7/data"],
        });
        let output = run_python(
            &fixture,
            "surface_client.py",
            PYTHON_CLIENT,
            &[plan.to_string()],
        )
        .await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report = format!(
            "{mode}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let line: Value = serde_json::from_str(stdout.trim()).expect(&report);
        assert_eq!(
            line["resources"],
            json!([
                "test://static-text",
                "test://static-binary",
                "test://watched-resource"
            ]),
            "{report}"
        );
        assert_eq!(
            line["templates"],
            json!(["test://template/{id}/data"]),
            "{report}"
        );
        let contents = &line["contents"];
        assert_eq!(
            contents[0]["text"], "This is the content of the static text resource.",
            "{report}"
        );
        assert_eq!(contents[1]["mime_type"], "image/png", "{report}");
        assert!(
            contents[1]["blob"]
                .as_str()
                .is_some_and(|b| b.starts_with("iVBORw0KGgo")),
            "{report}"
        );
        assert_eq!(
            contents[2]["text"], r#"{"id":"7","templateTest":true,"data":"Data for ID: 7"}"#,
            "{report}"
        );
    }
    assert_eq!(read_records(&fixture).len(), 6);
}

#[test]
fn warden_check_lists_a_plugins_resources_and_templates() {
    let fixture = Fixture::new(MANIFEST);
    let manifest = fixture.manifest.display().to_string();
    let (code, stdout, stderr) =
        common::warden(&["check", "--manifest", &manifest], fixture.dir.path());
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for expected in [
        "  resource    test://static-text\n",
        "  template    test://template/{id}/data\n",
    ] {
        assert!(stdout.contains(expected), "{stdout}");
    }
}

#[tokio::test]
async fn a_read_is_rate_limited_and_size_capped_like_a_call() {
    let fixture = Fixture::new(
        r#"
[audit]
path = "{dir}/audit.jsonl"

[plugins.conformance]
component = "{conformance}"
rate = { per_minute = 2, burst = 2 }
max_output = "1KiB"
"#,
    );
    let client = fixture.client().await;
    let long = format!("test://template/{}/data", "x".repeat(600));
    let too_large = client
        .service
        .read_resource(read(&long))
        .await
        .expect_err("over max_output")
        .to_string();
    assert!(
        too_large.contains("exceeds its limit of 1024 bytes"),
        "{too_large}"
    );
    // One bucket for all the plugin's URIs.
    client
        .service
        .read_resource(read("test://static-text"))
        .await
        .expect("within the burst");
    let limited = client
        .service
        .read_resource(read("test://template/1/data"))
        .await
        .expect_err("rate limited")
        .to_string();
    assert!(limited.contains("rate limit reached"), "{limited}");
    client.close().await;
    let outcomes: Vec<Value> = read_records(&fixture)
        .into_iter()
        .map(|r| r["outcome"].clone())
        .collect();
    assert_eq!(
        outcomes,
        [json!("tool-error"), json!("ok"), json!("rate-limited")]
    );
}

#[tokio::test]
async fn both_eras_list_and_read_resources_over_http() {
    let fixture = Fixture::new(MANIFEST);
    let server = fixture.http_server(&[]).await;
    for (era, lifecycle) in [
        ("2025-11-25", ClientLifecycleMode::Initialize),
        ("2026-07-28", discover_2026()),
    ] {
        let client = server
            .connect(server.client_config(None), lifecycle)
            .await
            .unwrap_or_else(|e| panic!("{era}: connect: {e}\n{}", server.stderr()));
        let resources = client.list_all_resources().await.expect("resources/list");
        assert_eq!(resources.len(), 3, "{era}: {resources:?}");
        let templated = client
            .read_resource(read("test://template/42/data"))
            .await
            .unwrap_or_else(|e| panic!("{era}: resources/read: {e}"));
        assert!(
            text(&templated).contains("Data for ID: 42"),
            "{era}: {templated:?}"
        );
        let (code, data) = rpc_error(
            client
                .read_resource(read("test://nothing"))
                .await
                .expect_err("unknown"),
        );
        assert_eq!(
            (code, data),
            (-32602, Some(json!({"uri": "test://nothing"}))),
            "{era}"
        );
        let _ = client.cancel().await;
    }
}

#[test]
fn resource_texts_pass_the_description_review() {
    // Another plugin's tool named `static`: the description "A static text resource" names it
    // (`other-tool`), and under `refuse` the plugin is not served.
    let fixture = Fixture::new(
        "[server]\nreview = \"refuse\"\n\n\
         [plugins.conformance]\ncomponent = \"{conformance}\"\n\n\
         [plugins.testbed]\ncomponent = \"{testbed}\"\n\n\
         [plugins.testbed.tools.emit]\nname = \"static\"\n",
    );
    let manifest = fixture.manifest.display().to_string();
    let (code, stdout, stderr) =
        common::warden(&["check", "--manifest", &manifest], fixture.dir.path());
    assert_ne!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("review: test://static-text description: [other-tool] chars 2..8"),
        "{stdout}"
    );
    assert!(
        stderr.contains("(in a prompt or a resource: change it in the plugin)"),
        "{stderr}"
    );
    assert!(stdout.contains("not served: conformance"), "{stdout}");
}
