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
        "  completes   its prompts' arguments and templates' variables\n",
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
        stderr.contains("(accept it with [plugins.conformance.uris.\"test://static-text\"] accept_review = [\"other-tool\"])"),
        "{stderr}"
    );
    assert!(stdout.contains("not served: conformance"), "{stdout}");
}

// --- Subscriptions: a plugin says what changed (`resource-updated`) ------------------------------

/// The conformance plugin serving its resources, and the same component again as `other`,
/// serving none (so it may not speak of them).
const TWO_PLUGINS: &str = r#"
[server]
principal = "ann"

[audit]
path = "{dir}/audit.jsonl"

[plugins.conformance]
component = "{conformance}"

[plugins.other]
component = "{conformance}"
resources = false
"#;

fn subscribe(uri: &str) -> rmcp::model::SubscribeRequestParams {
    rmcp::model::SubscribeRequestParams::new(uri)
}

/// Call `plugin`'s `test-update-resource` for `uri`.
async fn update(client: &common::Client, plugin: &str, uri: &str) {
    let said = common::ok_text(
        &client
            .call(
                &format!("{plugin}__test_update_resource"),
                json!({ "uri": uri }),
            )
            .await,
    );
    assert_eq!(said, format!("updated {uri}"));
}

/// The URIs of the resource updates `client` received so far.
fn updates(client: &common::Client) -> Vec<String> {
    client
        .recorder
        .resources_updated
        .lock()
        .expect("lock")
        .clone()
}

/// Wait until `client` received `count` updates of `uri`.
async fn await_updates(client: &common::Client, uri: &str, count: usize) {
    client
        .wait_until(&format!("{count} updates of {uri}"), |c| {
            updates(c).iter().filter(|u| *u == uri).count() >= count
        })
        .await;
}

#[tokio::test]
#[allow(deprecated)] // resources/subscribe: the 2025-11-25 era.
async fn a_tool_call_that_updates_a_resource_notifies_the_subscribed_session_until_it_unsubscribes()
{
    let fixture = Fixture::new(TWO_PLUGINS);
    let client = fixture.client().await;
    let info = client.service.peer_info().expect("initialize result");
    let resources = info.capabilities.resources.clone().expect("resources");
    assert_eq!(resources.subscribe, Some(true), "{:?}", info.capabilities);

    // Not subscribed yet: nothing arrives. Then subscribed: the update arrives.
    update(&client, "conformance", "test://watched-resource").await;
    let service = &client.service;
    service
        .subscribe(subscribe("test://watched-resource"))
        .await
        .expect("subscribe");
    service
        .subscribe(subscribe("test://template/7/data"))
        .await
        .expect("subscribe to a templated URI");
    update(&client, "conformance", "test://watched-resource").await;
    update(&client, "conformance", "test://template/7/data").await;
    await_updates(&client, "test://template/7/data", 1).await;
    assert_eq!(
        updates(&client),
        ["test://watched-resource", "test://template/7/data"]
    );

    // Hostile: another plugin speaks of a resource it does not serve: ignored, and logged.
    update(&client, "other", "test://watched-resource").await;
    update(&client, "other", "test://template/7/data").await;
    // Unsubscribed: no more updates of that URI.
    service
        .unsubscribe(rmcp::model::UnsubscribeRequestParams::new(
            "test://watched-resource",
        ))
        .await
        .expect("unsubscribe");
    update(&client, "conformance", "test://watched-resource").await;
    // A marker, sent after all of the above on the same ordered channel.
    update(&client, "conformance", "test://template/7/data").await;
    await_updates(&client, "test://template/7/data", 2).await;
    assert_eq!(
        updates(&client),
        [
            "test://watched-resource",
            "test://template/7/data",
            "test://template/7/data"
        ]
    );
    assert!(
        client.stderr().contains("does not serve changed; ignored"),
        "{}",
        client.stderr()
    );
    client.close().await;

    let subscribes = audit_of(&fixture, "audit.jsonl", "resources/subscribe");
    assert_eq!(subscribes.len(), 2, "{subscribes:#?}");
    assert_eq!(subscribes[0]["tool"], "test://watched-resource");
    assert_eq!(subscribes[0]["plugin"], "conformance");
    assert_eq!(subscribes[0]["outcome"], "ok");
    let unsubscribes = audit_of(&fixture, "audit.jsonl", "resources/unsubscribe");
    assert_eq!(unsubscribes.len(), 1, "{unsubscribes:#?}");
    // A call's record counts the updates that were passed on; the ignored ones are not.
    let calls: Vec<Value> = common::calls(fixture.audit_log("audit.jsonl"))
        .into_iter()
        .filter(|r| r.get("method").is_none())
        .collect();
    let counted: Vec<(String, Value)> = calls
        .iter()
        .map(|r| {
            (
                r["plugin"].as_str().unwrap_or_default().to_owned(),
                r["usage"]["resources_updated"].clone(),
            )
        })
        .collect();
    assert_eq!(
        counted,
        [
            ("conformance".to_owned(), json!(1)),
            ("conformance".to_owned(), json!(1)),
            ("conformance".to_owned(), json!(1)),
            ("other".to_owned(), Value::Null),
            ("other".to_owned(), Value::Null),
            ("conformance".to_owned(), json!(1)),
            ("conformance".to_owned(), json!(1)),
        ]
    );
}

#[tokio::test]
#[allow(deprecated)]
async fn a_role_less_principal_cannot_subscribe_and_a_session_holds_at_most_100_subscriptions() {
    // Hostile: the resources are admin's; subscribing looks exactly like an unknown URI.
    let fixture = Fixture::new(ADMIN_ONLY);
    let client = fixture.client().await;
    for uri in [
        "test://watched-resource",
        "test://template/1/data",
        "test://nothing",
    ] {
        let error = client
            .service
            .subscribe(subscribe(uri))
            .await
            .expect_err("refused");
        let (code, data) = rpc_error(error);
        assert_eq!((code, data), (-32602, Some(json!({ "uri": uri }))));
    }
    client.close().await;
    let records = audit_of(&fixture, "audit.jsonl", "resources/subscribe");
    let outcomes: Vec<&Value> = records.iter().map(|r| &r["outcome"]).collect();
    assert_eq!(
        outcomes,
        [&json!("denied"), &json!("denied"), &json!("invalid")]
    );

    // The bound: 100 a session; subscribing again to one of them is no new subscription.
    let fixture = Fixture::new(MANIFEST);
    let client = fixture.client().await;
    for n in 0..100 {
        client
            .service
            .subscribe(subscribe(&format!("test://template/{n}/data")))
            .await
            .unwrap_or_else(|e| panic!("subscription {n}: {e}"));
    }
    let error = client
        .service
        .subscribe(subscribe("test://static-text"))
        .await
        .expect_err("over the bound");
    let (code, _) = rpc_error(error);
    assert_eq!(code, -32602);
    client
        .service
        .subscribe(subscribe("test://template/0/data"))
        .await
        .expect("again");
    client.close().await;
    let records = audit_of(&fixture, "audit.jsonl", "resources/subscribe");
    assert_eq!(records.len(), 102);
    assert_eq!(records[100]["outcome"], "invalid");
    assert!(
        records[100]["error"]
            .as_str()
            .is_some_and(|e| e.contains("at most 100 resource subscriptions")),
        "{}",
        records[100]
    );
}

const ADMIN_KEY: &str = "wdn_test-admin-key-0123456789abcdefghijklmnopqr";
const READER_KEY: &str = "wdn_test-reader-key-0123456789abcdefghijklmnopq";

/// The conformance plugin's resources and tools for `admin` only, over HTTP with two keys.
fn keyed() -> Fixture {
    Fixture::new(&format!(
        r#"
[audit]
path = "{{dir}}/audit.jsonl"

[plugins.conformance]
component = "{{conformance}}"
roles = ["admin"]

{}
{}"#,
        common::api_key("reader-bot", &["reader"], READER_KEY),
        common::api_key("admin-bot", &["admin"], ADMIN_KEY)
    ))
}

#[tokio::test]
#[allow(deprecated)]
async fn over_http_only_the_subscribed_sessions_of_principals_that_may_read_are_told() {
    let fixture = keyed();
    let server = fixture.http_server(&[]).await;
    let connect = |key: &'static str, lifecycle: ClientLifecycleMode| {
        let config = server.client_config(Some(key));
        let server = &server;
        async move {
            server
                .connect(config, lifecycle)
                .await
                .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.stderr()))
        }
    };
    // 2025-11-25 sessions: A subscribes, B subscribes to the marker only, R may not read.
    let a = connect(ADMIN_KEY, ClientLifecycleMode::Initialize).await;
    let b = connect(ADMIN_KEY, ClientLifecycleMode::Initialize).await;
    let r = connect(READER_KEY, ClientLifecycleMode::Initialize).await;
    a.subscribe(subscribe("test://watched-resource"))
        .await
        .expect("A subscribes");
    b.subscribe(subscribe("test://static-text"))
        .await
        .expect("B subscribes to the marker");
    let (code, _) = rpc_error(
        r.subscribe(subscribe("test://watched-resource"))
            .await
            .expect_err("R may not read it"),
    );
    assert_eq!(code, -32602);
    // 2026-07-28: one listen per principal; the reader's URI is acknowledged (the answer
    // says nothing of what exists) but never notified.
    let admin_2026 = connect(ADMIN_KEY, discover_2026()).await;
    let reader_2026 = connect(READER_KEY, discover_2026()).await;
    let filter = || {
        rmcp::model::SubscriptionFilter::builder()
            .resource_subscription("test://watched-resource")
            .build()
    };
    let mut admin_listen = admin_2026.listen(filter()).await.expect("admin listens");
    let mut reader_listen = reader_2026.listen(filter()).await.expect("reader listens");
    assert_eq!(
        reader_listen.acknowledged().resource_subscriptions,
        Some(vec!["test://watched-resource".to_owned()])
    );

    for uri in ["test://watched-resource", "test://static-text"] {
        let said = a
            .call_tool(
                rmcp::model::CallToolRequestParams::new("conformance__test_update_resource")
                    .with_arguments(common::object(json!({ "uri": uri }))),
            )
            .await
            .expect("tools/call");
        assert_eq!(common::ok_text(&said), format!("updated {uri}"));
    }
    let deadline = std::time::Duration::from_secs(60);
    let next = tokio::time::timeout(deadline, admin_listen.next())
        .await
        .expect("the admin's listen is told in time")
        .expect("a notification");
    assert!(
        matches!(
            &next,
            Some(rmcp::model::ServerNotification::ResourceUpdatedNotification(n))
                if n.params.uri == "test://watched-resource"
        ),
        "{next:?}"
    );
    let recorded = |client: &rmcp::service::RunningService<rmcp::RoleClient, common::Recorder>| {
        client
            .service()
            .resources_updated
            .lock()
            .expect("lock")
            .clone()
    };
    let waited = std::time::Instant::now();
    while recorded(&b).is_empty() || recorded(&a).is_empty() {
        assert!(waited.elapsed() < deadline, "{}", server.stderr());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The marker came after the watched resource's update, on one ordered channel.
    assert_eq!(recorded(&a), ["test://watched-resource"]);
    assert_eq!(recorded(&b), ["test://static-text"]);
    assert!(recorded(&r).is_empty());
    // The reader's listen stays silent (a generous wait, for a notice that never comes).
    let silent =
        tokio::time::timeout(std::time::Duration::from_millis(500), reader_listen.next()).await;
    assert!(silent.is_err(), "{silent:?}");
    for client in [a, b, r, admin_2026, reader_2026] {
        let _ = client.cancel().await;
    }
    // A session's subscriptions end with it: its forwarding task stops.
    let waited = std::time::Instant::now();
    while !server
        .stderr()
        .contains("session ended: no more resource updates for it")
    {
        assert!(waited.elapsed() < deadline, "{}", server.stderr());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let listens = audit_of(&fixture, "audit.jsonl", "subscriptions/listen");
    let who: Vec<(&Value, &Value)> = listens
        .iter()
        .map(|r| (&r["principal"], &r["outcome"]))
        .collect();
    assert_eq!(
        who,
        [
            (&json!("admin-bot"), &json!("ok")),
            (&json!("reader-bot"), &json!("denied"))
        ]
    );
}

#[tokio::test]
async fn template_variable_completions_come_from_the_plugin() {
    let fixture = Fixture::new(MANIFEST);
    let client = fixture.client().await;
    let complete = |argument: &str, value: &str| {
        rmcp::model::CompleteRequestParams::new(
            rmcp::model::Reference::for_resource("test://template/{id}/data"),
            rmcp::model::ArgumentInfo::new(argument, value),
        )
    };
    let found = client
        .service
        .complete(complete("id", "12"))
        .await
        .expect("complete");
    assert_eq!(found.completion.values, ["123", "124"]);
    let (code, data) = rpc_error(
        client
            .service
            .complete(complete("name", ""))
            .await
            .expect_err("no such variable"),
    );
    assert_eq!(code, -32602, "{data:?}");
    let unknown = rmcp::model::CompleteRequestParams::new(
        rmcp::model::Reference::for_resource("test://nothing/{id}"),
        rmcp::model::ArgumentInfo::new("id", ""),
    );
    let (code, data) = rpc_error(client.service.complete(unknown).await.expect_err("unknown"));
    assert_eq!(
        (code, data),
        (-32602, Some(json!({ "uri": "test://nothing/{id}" })))
    );
    client.close().await;
    let records = audit_of(&fixture, "audit.jsonl", "completion/complete");
    assert_eq!(records.len(), 3, "{records:#?}");
    assert_eq!(records[0]["tool"], "test://template/{id}/data");
    assert_eq!(records[0]["outcome"], "ok");
}

/// The TypeScript SDK client: lists, reads, completes, subscribes.
const NODE_CLIENT: &str = include_str!("support/surface_client.mjs");

#[tokio::test]
async fn typescript_sdk_lists_reads_completes_and_is_told_of_an_update() {
    let fixture = Fixture::new(MANIFEST);
    let plan = json!({
        "server": [env!("CARGO_BIN_EXE_warden"), "serve", "--manifest", fixture.manifest],
        "read": ["test://static-text", "test://static-binary", "test://template/7/data"],
        "complete": {
            "ref": {"type": "ref/resource", "uri": "test://template/{id}/data"},
            "argument": "id",
            "value": "4",
        },
        "subscribe": "test://watched-resource",
        "update": {
            "tool": "conformance__test_update_resource",
            "arguments": {"uri": "test://watched-resource"},
        },
    });
    let output = common::run_node(&fixture, "surface_client.mjs", NODE_CLIENT, plan).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
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
    let contents = line["contents"].as_array().expect("contents");
    assert_eq!(
        contents[0]["text"],
        "This is the content of the static text resource."
    );
    assert_eq!(contents[1]["mime_type"], "image/png");
    assert!(
        contents[1]["blob"]
            .as_str()
            .is_some_and(|b| b.starts_with("iVBORw0KGgo")),
        "{report}"
    );
    assert!(
        contents[2]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Data for ID: 7")),
        "{report}"
    );
    assert_eq!(line["completion"]["values"], json!(["456"]), "{report}");
    assert_eq!(
        line["updated"],
        json!(["test://watched-resource"]),
        "{report}"
    );
    assert_eq!(
        audit_of(&fixture, "audit.jsonl", "resources/subscribe").len(),
        1
    );
}

/// The manifest of [`a_subscriber_that_loses_the_role_after_a_reload_is_told_nothing`]: the
/// resources open to everyone, or to `admin` only while `staff` may still call the tool that
/// updates them.
fn staff_manifest(resources_for_admin_only: bool) -> String {
    let roles = if resources_for_admin_only {
        "roles = [\"admin\"]\n\n[plugins.conformance.tools.test-update-resource]\nroles = [\"staff\"]\n"
    } else {
        ""
    };
    format!(
        "[cache]\ndir = \"{}\"\n\n[server]\nprincipal = \"ann\"\nroles = [\"staff\"]\n\n\
         [plugins.conformance]\ncomponent = \"{}\"\n{roles}",
        common::cache_dir().display(),
        common::plugin("conformance")
    )
}

#[tokio::test]
#[allow(deprecated)]
async fn a_subscriber_that_loses_the_role_after_a_reload_is_told_nothing() {
    let fixture = Fixture::new(MANIFEST);
    std::fs::write(&fixture.manifest, staff_manifest(false)).expect("manifest");
    let client = fixture.client().await;
    for uri in ["test://watched-resource", "test://template/7/data"] {
        client
            .service
            .subscribe(subscribe(uri))
            .await
            .expect("subscribe");
    }
    update(&client, "conformance", "test://watched-resource").await;
    await_updates(&client, "test://watched-resource", 1).await;

    // Hostile: the operator takes the resources away from staff; the subscription stays, but
    // each update is checked against the gate in force.
    let reload = |admin_only: bool, count: usize| {
        std::fs::write(&fixture.manifest, staff_manifest(admin_only)).expect("manifest");
        client.signal("HUP");
        client.wait_until("the reload", move |c| c.tools_changed() == count)
    };
    reload(true, 1).await;
    update(&client, "conformance", "test://watched-resource").await;
    // Given back: a marker on the same ordered channel arrives, and nothing before it.
    reload(false, 2).await;
    update(&client, "conformance", "test://template/7/data").await;
    await_updates(&client, "test://template/7/data", 1).await;
    assert_eq!(
        updates(&client),
        ["test://watched-resource", "test://template/7/data"]
    );
    client.close().await;
}

#[tokio::test]
#[allow(deprecated)]
async fn an_update_of_a_uri_over_8kib_is_dropped() {
    let fixture = Fixture::new(MANIFEST);
    let client = fixture.client().await;
    let long = format!("test://template/{}/data", "x".repeat(8 * 1024));
    for uri in [long.as_str(), "test://template/7/data"] {
        client
            .service
            .subscribe(subscribe(uri))
            .await
            .expect("subscribe");
    }
    update(&client, "conformance", &long).await;
    update(&client, "conformance", "test://template/7/data").await;
    await_updates(&client, "test://template/7/data", 1).await;
    assert_eq!(updates(&client), ["test://template/7/data"]);
    client.close().await;
}

/// A `listen` stream of `client` that stays open, asked for again (for at most `deadline`)
/// while each ends at once; `what` says what was not freed when none stays open.
async fn open_listen(
    client: &rmcp::service::RunningService<rmcp::RoleClient, common::Recorder>,
    filter: impl Fn() -> rmcp::model::SubscriptionFilter,
    deadline: std::time::Duration,
    what: &str,
) -> rmcp::service::Subscription {
    let waited = std::time::Instant::now();
    loop {
        let mut listen = client.listen(filter()).await.expect("acknowledged");
        let ended =
            tokio::time::timeout(std::time::Duration::from_millis(300), listen.next()).await;
        if ended.is_err() {
            return listen;
        }
        assert!(waited.elapsed() < deadline, "{what}: {ended:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_principal_holds_a_bounded_number_of_listen_streams() {
    const MAX: usize = 10;
    let fixture = keyed();
    let server = fixture.http_server(&[]).await;
    let connect = |key: &'static str| {
        let config = server.client_config(Some(key));
        let server = &server;
        async move {
            server
                .connect(config, discover_2026())
                .await
                .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.stderr()))
        }
    };
    let filter = || {
        rmcp::model::SubscriptionFilter::builder()
            .resource_subscription("test://watched-resource")
            .build()
    };
    // The admin's streams over two connections count together.
    let first = connect(ADMIN_KEY).await;
    let second = connect(ADMIN_KEY).await;
    let mut held = Vec::new();
    for index in 0..MAX {
        let client = if index % 2 == 0 { &first } else { &second };
        held.push(client.listen(filter()).await.expect("admin listens"));
    }
    // One more: acknowledged by rmcp before warden sees it, then ended with the reason.
    let mut refused = second.listen(filter()).await.expect("acknowledged");
    let deadline = std::time::Duration::from_secs(60);
    let ended = tokio::time::timeout(deadline, refused.next())
        .await
        .expect("the refused stream ends in time");
    let error = format!("{:?}", ended.expect_err("the stream ends with an error"));
    assert!(error.contains("at most 10"), "{error}");
    assert!(
        error.contains("-32602") || error.contains("InvalidParams") || error.contains("invalid"),
        "{error}"
    );

    // Another principal is not affected.
    let reader = connect(READER_KEY).await;
    let mut reader_listen = reader.listen(filter()).await.expect("reader listens");
    let silent =
        tokio::time::timeout(std::time::Duration::from_millis(300), reader_listen.next()).await;
    assert!(
        silent.is_err(),
        "the reader's stream stays open: {silent:?}"
    );

    // A cancelled stream frees its place.
    let mut one = held.pop().expect("a stream");
    one.cancel().await.expect("cancel");
    let mut again = open_listen(&first, filter, deadline, "the place was not freed").await;
    let _ = again.cancel().await;
    let _ = reader_listen.cancel().await;
    for mut listen in held {
        let _ = listen.cancel().await;
    }
    for client in [first, second, reader] {
        let _ = client.cancel().await;
    }

    // A client that goes away without cancelling its streams frees their places too.
    let gone = connect(ADMIN_KEY).await;
    let mut streams = Vec::new();
    for _ in 0..MAX {
        streams.push(gone.listen(filter()).await.expect("admin listens"));
    }
    let _ = gone.cancel().await;
    drop(streams);
    let fresh = connect(ADMIN_KEY).await;
    let mut again = open_listen(
        &fresh,
        filter,
        deadline,
        "the places of a client that went away were not freed",
    )
    .await;
    let _ = again.cancel().await;
    let _ = fresh.cancel().await;

    // The refusal is in the audit log.
    let listens = audit_of(&fixture, "audit.jsonl", "subscriptions/listen");
    let limited: Vec<&Value> = listens
        .iter()
        .filter(|r| r["outcome"] == "rate-limited")
        .collect();
    assert!(!limited.is_empty(), "{listens:#?}");
    assert!(
        limited.iter().all(|r| r["principal"] == "admin-bot"),
        "{limited:#?}"
    );
    assert!(
        limited[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("at most 10")),
        "{}",
        limited[0]
    );
}
