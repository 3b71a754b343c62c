//! Prompts from plugins (`warden:mcp/prompts`), end to end: the real binary serving the
//! `conformance` component, rmcp's client and the Python `mcp` SDK: list, get, argument
//! checks, roles, redaction, the audit record and the `prompts` capability.

mod common;

use common::{Fixture, audit_of, discover_2026, run_python};
use rmcp::model::{ContentBlock, GetPromptRequestParams, PromptMessage};
use rmcp::service::ClientLifecycleMode;
use serde_json::{Value, json};

/// The Python client: lists the prompts and gets one.
const PYTHON_CLIENT: &str = include_str!("support/surface_client.py");

/// The conformance plugin for everyone (prefix `conformance`), and again as `vault`, whose
/// prompts only `admin` may use; the stdio principal has no role.
const MANIFEST: &str = r#"
[server]
principal = "ann"

[audit]
path = "{dir}/audit.jsonl"

[plugins.conformance]
component = "{conformance}"

[plugins.vault]
component = "{conformance}"
roles = ["admin"]
resources = false
"#;

fn get(name: &str, arguments: Value) -> GetPromptRequestParams {
    let params = GetPromptRequestParams::new(name);
    match arguments {
        Value::Object(arguments) => params.with_arguments(arguments),
        _ => params,
    }
}

/// The text of a message's content, if it is text.
fn text(message: &PromptMessage) -> &str {
    match &message.content {
        ContentBlock::Text(text) => &text.text,
        _ => "",
    }
}

/// The audit records of `prompts/get`.
fn prompt_records(fixture: &Fixture) -> Vec<Value> {
    audit_of(fixture, "audit.jsonl", "prompts/get")
}

#[tokio::test]
async fn rmcp_client_lists_and_gets_prompts_filtered_and_audited() {
    let fixture = Fixture::new(MANIFEST);
    let client = fixture.client().await;
    let info = client.service.peer_info().expect("initialize result");
    assert!(
        info.capabilities.prompts.is_some(),
        "{:?}",
        info.capabilities
    );

    let prompts = client
        .service
        .list_all_prompts()
        .await
        .expect("prompts/list");
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conformance__test_simple_prompt",
            "conformance__test_prompt_with_arguments",
            "conformance__test_prompt_with_embedded_resource",
            "conformance__test_prompt_with_image",
            "conformance__test_input_required_result_prompt",
        ]
    );
    let with_args = &prompts[1];
    let arguments = with_args.arguments.as_deref().unwrap_or_default();
    assert_eq!(arguments.len(), 2);
    assert_eq!(arguments[0].name, "arg1");
    assert_eq!(arguments[0].required, Some(true));

    let simple = client
        .service
        .get_prompt(get("conformance__test_simple_prompt", Value::Null))
        .await
        .expect("prompts/get");
    assert_eq!(simple.messages.len(), 1);
    assert_eq!(
        text(&simple.messages[0]),
        "This is a simple prompt for testing."
    );

    // Every text the plugin returns passes the output filter: here an argument it echoes.
    let echoed = client
        .service
        .get_prompt(get(
            "conformance__test_prompt_with_arguments",
            json!({"arg1": "hello", "arg2": "AKIAIOSFODNN7EXAMPLE"}),
        ))
        .await
        .expect("prompts/get");
    assert_eq!(
        text(&echoed.messages[0]),
        "Prompt with arguments: arg1='hello', arg2='[REDACTED:aws-key]'"
    );
    client.close().await;

    let records = prompt_records(&fixture);
    assert_eq!(records.len(), 2, "{records:#?}");
    assert_eq!(records[0]["tool"], "conformance__test_simple_prompt");
    assert_eq!(records[0]["plugin"], "conformance");
    assert_eq!(records[0]["outcome"], "ok");
    assert!(records[0]["fuel"].as_u64().is_some(), "{}", records[0]);
    assert_eq!(records[1]["redactions"]["aws-key"], 1, "{}", records[1]);
    assert_eq!(records[1]["args"]["arg2"], "[REDACTED:aws-key]");
}

#[tokio::test]
async fn missing_unknown_and_non_string_arguments_are_invalid_params() {
    let fixture = Fixture::new(MANIFEST);
    let client = fixture.client().await;
    let name = "conformance__test_prompt_with_arguments";
    for (arguments, expected) in [
        (json!({"arg1": "a"}), "missing required argument `arg2`"),
        (
            json!({"arg1": "a", "arg2": "b", "arg3": "c"}),
            "unknown argument `arg3` (the prompt takes: arg1, arg2)",
        ),
        (
            json!({"arg1": "a", "arg2": 2}),
            "argument `arg2` must be a string",
        ),
    ] {
        let error = client
            .service
            .get_prompt(get(name, arguments.clone()))
            .await
            .expect_err("refused");
        let message = error.to_string();
        assert!(
            message.contains("-32602") || message.contains("nvalid"),
            "{message}"
        );
        assert!(message.contains(expected), "{arguments}: {message}");
    }
    client.close().await;
    let records = prompt_records(&fixture);
    assert_eq!(records.len(), 3, "{records:#?}");
    assert!(
        records.iter().all(|r| r["outcome"] == "invalid"),
        "{records:#?}"
    );
}

#[tokio::test]
async fn a_role_less_principal_neither_sees_nor_gets_another_roles_prompts() {
    let fixture = Fixture::new(MANIFEST);
    let client = fixture.client().await;
    let prompts = client
        .service
        .list_all_prompts()
        .await
        .expect("prompts/list");
    assert!(
        prompts.iter().all(|p| !p.name.starts_with("vault__")),
        "{prompts:?}"
    );
    // Getting it anyway looks exactly like getting a prompt that does not exist.
    let denied = client
        .service
        .get_prompt(get("vault__test_simple_prompt", Value::Null))
        .await
        .expect_err("denied")
        .to_string();
    let unknown = client
        .service
        .get_prompt(get("vault__nothing", Value::Null))
        .await
        .expect_err("unknown")
        .to_string();
    assert!(
        denied.contains("unknown prompt: vault__test_simple_prompt (request "),
        "{denied}"
    );
    assert!(
        unknown.contains("unknown prompt: vault__nothing (request "),
        "{unknown}"
    );
    client.close().await;

    let records = prompt_records(&fixture);
    assert_eq!(records.len(), 2, "{records:#?}");
    assert_eq!(records[0]["outcome"], "denied");
    assert_eq!(records[0]["plugin"], "vault");
    assert!(
        records[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("holds none of the roles")),
        "{}",
        records[0]
    );
    assert_eq!(records[1]["outcome"], "invalid");
}

#[tokio::test]
async fn both_eras_get_prompts_over_http() {
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
        let prompts = client.list_all_prompts().await.expect("prompts/list");
        assert_eq!(prompts.len(), 5, "{era}: {prompts:?}");
        let image = client
            .get_prompt(get("conformance__test_prompt_with_image", Value::Null))
            .await
            .unwrap_or_else(|e| panic!("{era}: prompts/get: {e}"));
        assert!(
            matches!(&image.messages[0].content, ContentBlock::Image(i) if i.mime_type == "image/png"),
            "{era}: {image:?}"
        );
        let embedded = client
            .get_prompt(get(
                "conformance__test_prompt_with_embedded_resource",
                json!({"resourceUri": "test://example-resource"}),
            ))
            .await
            .unwrap_or_else(|e| panic!("{era}: prompts/get: {e}"));
        assert!(
            matches!(&embedded.messages[0].content, ContentBlock::Resource(_)),
            "{era}: {embedded:?}"
        );
        let _ = client.cancel().await;
    }
}

#[tokio::test]
async fn without_prompts_there_is_no_prompts_capability() {
    let fixture = Fixture::new("[plugins.testbed]\ncomponent = \"{testbed}\"\n");
    let client = fixture.client().await;
    let info = client.service.peer_info().expect("initialize result");
    assert!(
        info.capabilities.prompts.is_none(),
        "{:?}",
        info.capabilities
    );
    let error = client
        .service
        .list_all_prompts()
        .await
        .expect_err("method not found")
        .to_string();
    assert!(
        error.contains("-32601") || error.contains("not found"),
        "{error}"
    );
    // Nor completions: nothing to complete.
    assert!(info.capabilities.completions.is_none());
    let error = complete(&client, "anything", "arg", "", &[])
        .await
        .expect_err("method not found");
    assert!(
        matches!(&error, rmcp::ServiceError::McpError(e) if e.code.0 == -32601),
        "{error}"
    );
    client.close().await;
}

#[test]
fn two_plugins_with_one_prompt_name_are_refused_at_load() {
    let fixture = Fixture::new(
        "[plugins.one]\ncomponent = \"{conformance}\"\nprefix = \"same\"\n\n\
         [plugins.two]\ncomponent = \"{conformance}\"\nprefix = \"same\"\nresources = false\n",
    );
    let manifest = fixture.manifest.display().to_string();
    let (code, _, stderr) = common::warden(&["check", "--manifest", &manifest], fixture.dir.path());
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "prompt name `same__test_simple_prompt` (plugin `two`) is already used by plugin `one`"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn python_sdk_lists_and_gets_a_prompt_in_both_eras() {
    let fixture = Fixture::new(MANIFEST);
    for mode in ["legacy", "2026-07-28"] {
        let plan = json!({
            "server": [env!("CARGO_BIN_EXE_warden"), "serve", "--manifest", fixture.manifest],
            "mode": mode,
            "prompt": "conformance__test_prompt_with_arguments",
            "args": {"arg1": "from", "arg2": "python"},
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
            line["prompts"].as_array().map(Vec::len),
            Some(5),
            "{report}"
        );
        assert_eq!(
            line["messages"],
            json!([{
                "role": "user",
                "type": "text",
                "text": "Prompt with arguments: arg1='from', arg2='python'"
            }]),
            "{report}"
        );
    }
    assert_eq!(prompt_records(&fixture).len(), 2);
}

#[test]
fn prompt_texts_pass_the_description_review() {
    // Another plugin's tool named `simple`: the prompt description "A simple prompt ..."
    // names it (`other-tool`), and under `refuse` the plugin is not served.
    let fixture = Fixture::new(
        "[server]\nreview = \"refuse\"\n\n\
         [plugins.conformance]\ncomponent = \"{conformance}\"\n\n\
         [plugins.testbed]\ncomponent = \"{testbed}\"\n\n\
         [plugins.testbed.tools.emit]\nname = \"simple\"\n",
    );
    let manifest = fixture.manifest.display().to_string();
    let (code, stdout, stderr) =
        common::warden(&["check", "--manifest", &manifest], fixture.dir.path());
    assert_ne!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "review: conformance__test_simple_prompt description: [other-tool] chars 2..8"
        ),
        "{stdout}"
    );
    assert!(
        stderr.contains("(accept it with [plugins.conformance.prompts.test_simple_prompt] accept_review = [\"other-tool\"])"),
        "{stderr}"
    );
    assert!(stdout.contains("not served: conformance"), "{stdout}");
}

#[test]
fn warden_check_lists_a_plugins_prompts() {
    let fixture = Fixture::new(MANIFEST);
    let manifest = fixture.manifest.display().to_string();
    let (code, stdout, stderr) =
        common::warden(&["check", "--manifest", &manifest], fixture.dir.path());
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("  prompt      conformance__test_simple_prompt\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  prompt      vault__test_prompt_with_image\n"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_prompt_is_rate_limited_and_size_capped_like_a_call() {
    let fixture = Fixture::new(
        r#"
[audit]
path = "{dir}/audit.jsonl"

[plugins.conformance]
component = "{conformance}"
rate = { per_minute = 1, burst = 1 }
max_output = "1KiB"
"#,
    );
    let client = fixture.client().await;
    let long = "x".repeat(2000);
    let too_large = client
        .service
        .get_prompt(get(
            "conformance__test_prompt_with_arguments",
            json!({"arg1": long, "arg2": "b"}),
        ))
        .await
        .expect_err("over max_output")
        .to_string();
    assert!(
        too_large.contains("exceeds its limit of 1024 bytes"),
        "{too_large}"
    );
    client
        .service
        .get_prompt(get("conformance__test_simple_prompt", Value::Null))
        .await
        .expect("within the burst");
    let limited = client
        .service
        .get_prompt(get("conformance__test_simple_prompt", Value::Null))
        .await
        .expect_err("rate limited")
        .to_string();
    assert!(limited.contains("rate limit reached"), "{limited}");
    client.close().await;
    let outcomes: Vec<Value> = prompt_records(&fixture)
        .into_iter()
        .map(|r| r["outcome"].clone())
        .collect();
    assert_eq!(
        outcomes,
        [json!("tool-error"), json!("ok"), json!("rate-limited")]
    );
}

// --- Completions (`warden:mcp/completions`) ------------------------------------------------------

/// `completion/complete` of `prompt`'s `argument` from `value`, with `context`.
async fn complete(
    client: &common::Client,
    prompt: &str,
    argument: &str,
    value: &str,
    context: &[(&str, &str)],
) -> Result<rmcp::model::CompletionInfo, rmcp::ServiceError> {
    let mut params = rmcp::model::CompleteRequestParams::new(
        rmcp::model::Reference::for_prompt(prompt),
        rmcp::model::ArgumentInfo::new(argument, value),
    );
    if !context.is_empty() {
        let arguments = context
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        params.context = Some(rmcp::model::CompletionContext::with_arguments(arguments));
    }
    client
        .service
        .complete(params)
        .await
        .map(|result| result.completion)
}

#[tokio::test]
async fn prompt_argument_completions_come_from_the_plugin_filtered_capped_and_audited() {
    let fixture = Fixture::new(MANIFEST);
    let client = fixture.client().await;
    let info = client.service.peer_info().expect("initialize result");
    assert!(
        info.capabilities.completions.is_some(),
        "{:?}",
        info.capabilities
    );
    let prompt = "conformance__test_prompt_with_arguments";
    let found = complete(&client, prompt, "arg1", "test", &[])
        .await
        .expect("complete");
    assert_eq!(found.values, ["test", "testing", "tested"]);
    assert_eq!((found.total, found.has_more), (Some(3), Some(false)));
    // The other arguments' values reach the plugin.
    let found = complete(&client, prompt, "arg2", "oth", &[("arg1", "zed")])
        .await
        .expect("with context");
    assert_eq!(found.values, ["zed", "other"]);
    // At most 100 values, saying how many there were.
    let many = complete(&client, prompt, "arg1", "many", &[])
        .await
        .expect("many");
    assert_eq!(many.values.len(), 100);
    assert_eq!(many.values[99], "many-99");
    assert_eq!((many.total, many.has_more), (Some(150), Some(true)));
    // Every value passes the plugin's output filter.
    let secret = complete(&client, prompt, "arg1", "secret", &[])
        .await
        .expect("secret");
    assert_eq!(secret.values, ["[REDACTED:aws-key]"]);
    // An argument the prompt does not take, a prompt that does not exist.
    for (prompt, argument) in [(prompt, "arg3"), ("conformance__nothing", "arg1")] {
        let error = complete(&client, prompt, argument, "", &[])
            .await
            .expect_err("invalid");
        assert!(
            matches!(&error, rmcp::ServiceError::McpError(e) if e.code.0 == -32602),
            "{error}"
        );
    }
    client.close().await;

    let records = audit_of(&fixture, "audit.jsonl", "completion/complete");
    let outcomes: Vec<&Value> = records.iter().map(|r| &r["outcome"]).collect();
    assert_eq!(
        outcomes,
        [
            &json!("ok"),
            &json!("ok"),
            &json!("ok"),
            &json!("ok"),
            &json!("invalid"),
            &json!("invalid")
        ]
    );
    assert_eq!(records[0]["tool"], prompt);
    assert_eq!(records[0]["plugin"], "conformance");
    assert!(records[0]["fuel"].as_u64().is_some(), "{}", records[0]);
    assert_eq!(records[3]["redactions"]["aws-key"], 1, "{}", records[3]);
}

#[tokio::test]
async fn a_role_less_principal_gets_no_completions_of_another_roles_prompts() {
    let fixture = Fixture::new(MANIFEST);
    let client = fixture.client().await;
    let denied = complete(
        &client,
        "vault__test_prompt_with_arguments",
        "arg1",
        "t",
        &[],
    )
    .await
    .expect_err("denied")
    .to_string();
    let unknown = complete(&client, "vault__nothing", "arg1", "t", &[])
        .await
        .expect_err("unknown")
        .to_string();
    // Exactly like a prompt that does not exist.
    assert!(
        denied.contains("unknown prompt: vault__test_prompt_with_arguments (request "),
        "{denied}"
    );
    assert!(
        unknown.contains("unknown prompt: vault__nothing (request "),
        "{unknown}"
    );
    client.close().await;
    let records = audit_of(&fixture, "audit.jsonl", "completion/complete");
    assert_eq!(records.len(), 2, "{records:#?}");
    assert_eq!(records[0]["outcome"], "denied");
    assert_eq!(records[0]["plugin"], "vault");
    assert_eq!(records[1]["outcome"], "invalid");
}

/// The TypeScript SDK client: lists and gets prompts, completes an argument.
const NODE_CLIENT: &str = include_str!("support/surface_client.mjs");

#[tokio::test]
async fn typescript_sdk_lists_gets_and_completes_a_prompt() {
    let fixture = Fixture::new(MANIFEST);
    let plan = json!({
        "server": [env!("CARGO_BIN_EXE_warden"), "serve", "--manifest", fixture.manifest],
        "prompt": "conformance__test_prompt_with_arguments",
        "args": {"arg1": "one", "arg2": "AKIAIOSFODNN7EXAMPLE"},
        "complete": {
            "ref": {"type": "ref/prompt", "name": "conformance__test_prompt_with_arguments"},
            "argument": "arg1",
            "value": "test",
        },
    });
    let output = common::run_node(&fixture, "surface_client.mjs", NODE_CLIENT, plan).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let line: Value = serde_json::from_str(stdout.trim()).expect(&report);
    let prompts = line["prompts"].as_array().expect(&report);
    // The role-less principal sees the conformance prompts, not vault's.
    assert!(
        prompts.contains(&json!("conformance__test_prompt_with_arguments")),
        "{report}"
    );
    assert!(
        prompts
            .iter()
            .all(|p| !p.as_str().unwrap_or_default().starts_with("vault__")),
        "{report}"
    );
    assert_eq!(
        line["messages"],
        json!([{
            "role": "user",
            "type": "text",
            "text": "Prompt with arguments: arg1='one', arg2='[REDACTED:aws-key]'"
        }]),
        "{report}"
    );
    assert_eq!(
        line["completion"]["values"],
        json!(["test", "testing", "tested"]),
        "{report}"
    );
    assert_eq!(line["completion"]["hasMore"], false, "{report}");
}

#[tokio::test]
async fn completions_share_the_prompts_rate_limit_and_size_cap() {
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
    let prompt = "conformance__test_prompt_with_arguments";
    // 100 values of about 10 bytes each: over 1KiB, refused (never truncated).
    let too_large = complete(&client, prompt, "arg1", "many", &[])
        .await
        .expect_err("over max_output")
        .to_string();
    assert!(
        too_large.contains("exceeds its limit of 1024 bytes"),
        "{too_large}"
    );
    complete(&client, prompt, "arg1", "t", &[])
        .await
        .expect("within the burst");
    // The prompt's own bucket: a get after two completions is over the limit.
    let limited = client
        .service
        .get_prompt(get(prompt, json!({"arg1": "a", "arg2": "b"})))
        .await
        .expect_err("rate limited")
        .to_string();
    assert!(limited.contains("rate limit reached"), "{limited}");
    client.close().await;
    let outcomes: Vec<Value> = audit_of(&fixture, "audit.jsonl", "completion/complete")
        .into_iter()
        .map(|r| r["outcome"].clone())
        .collect();
    assert_eq!(outcomes, [json!("tool-error"), json!("ok")]);
}

/// The Python client that answers questions (tests/approval.rs uses it too).
const ASKING_CLIENT: &str = include_str!("support/elicit_client.py");

/// A prompt whose plugin asks the user first (`test_input_required_result_prompt` asks for a
/// context under the key `user_context`): in a session through `elicitation/create` during
/// the get, in the stateless era through an `input_required` result of `prompts/get` and a
/// second get carrying the answer. A client that cannot show forms gets no prompt. Every get
/// is in the audit log as `prompts/get`, the round that asked with the question's key.
#[tokio::test]
async fn a_prompt_that_asks_gets_its_answer_in_both_eras() {
    let fixture = Fixture::new(MANIFEST);
    let name = "conformance__test_input_required_result_prompt";
    for mode in ["legacy", "2026-07-28"] {
        let plan = json!({
            "server": {"stdio": [
                env!("CARGO_BIN_EXE_warden"), "serve", "--manifest", fixture.manifest,
            ]},
            "mode": mode,
            "clients": [
                {"calls": [{"name": "asks", "tool": name, "prompt": true, "args": {},
                            "answers": [{"action": "accept", "content": {"context": "blue"}}]}]},
                {"elicit": false, "calls": [
                    {"name": "unable", "tool": name, "prompt": true, "args": {}},
                ]},
            ],
        });
        let output = run_python(
            &fixture,
            "elicit_client.py",
            ASKING_CLIENT,
            &[plan.to_string()],
        )
        .await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report = format!(
            "{mode}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{report}");
        let lines: Vec<Value> = stdout
            .lines()
            .map(|line| serde_json::from_str(line).expect(&report))
            .collect();
        let asks = &lines[0];
        assert_eq!(asks["text"], "Prompt with context: blue", "{report}");
        let asked = asks["asked"].as_array().cloned().unwrap_or_default();
        assert_eq!(asked.len(), 1, "{report}");
        assert_eq!(asked[0]["message"], "What context should the prompt use?");
        if mode == "2026-07-28" {
            assert_eq!(asked[0]["key"], "user_context", "{report}");
        }
        let unable = &lines[1];
        assert!(unable["error"].is_object(), "{report}");
        assert_eq!(unable["asked"], json!([]), "{report}");
    }
    let outcomes: Vec<(String, String)> = prompt_records(&fixture)
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap_or_default().to_owned(),
                r["error"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let asked = "the plugin asked: user_context (elicitation/create)".to_owned();
    let outcome = |o: &str| o.to_owned();
    assert_eq!(
        outcomes.iter().map(|(o, _)| o.clone()).collect::<Vec<_>>(),
        [
            outcome("ok"),
            outcome("tool-error"),
            outcome("input-required"),
            outcome("ok"),
            outcome("tool-error"),
        ],
        "{outcomes:#?}"
    );
    assert_eq!(outcomes[2].1, asked, "{outcomes:#?}");

    // The same over Streamable HTTP, stateless.
    let server = fixture.http_server(&[]).await;
    let plan = json!({
        "server": {"http": server.url},
        "mode": "2026-07-28",
        "clients": [{"calls": [{"name": "asks", "tool": name, "prompt": true, "args": {},
                                "answers": [{"action": "accept", "content": {"context": "red"}}]}]}],
    });
    let output = run_python(
        &fixture,
        "elicit_client.py",
        ASKING_CLIENT,
        &[plan.to_string()],
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!(
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.stderr()
    );
    let line: Value = serde_json::from_str(stdout.trim()).expect(&report);
    assert_eq!(line["text"], "Prompt with context: red", "{report}");
    assert_eq!(line["asked"][0]["key"], "user_context", "{report}");
}

#[tokio::test]
async fn check_inspect_and_status_show_prompts_resources_templates_and_completions_alike() {
    let fixture = Fixture::new(
        "[plugins.conformance]\ncomponent = \"{conformance}\"\n\n\
         [plugins.testbed]\ncomponent = \"{testbed}\"\n",
    );
    let run = fixture.path("run");
    std::fs::create_dir(&run).expect("run dir");
    let warden = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .env("XDG_RUNTIME_DIR", &run)
            .current_dir(fixture.dir.path())
            .output()
            .expect("warden");
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let json = |text: &str| -> Value { serde_json::from_str(text).expect("JSON") };
    let manifest = fixture.manifest.display().to_string();
    let expected = json!({
        "prompts": [
            "conformance__test_simple_prompt",
            "conformance__test_prompt_with_arguments",
            "conformance__test_prompt_with_embedded_resource",
            "conformance__test_prompt_with_image",
            "conformance__test_input_required_result_prompt",
        ],
        "resources": ["test://static-text", "test://static-binary", "test://watched-resource"],
        "templates": ["test://template/{id}/data"],
        "completes": true,
    });
    let nothing = json!({"prompts": [], "resources": [], "templates": [], "completes": false});
    let lines = [
        "prompt      conformance__test_simple_prompt",
        "resource    test://static-text",
        "template    test://template/{id}/data",
        "completes   its prompts' arguments and templates' variables",
    ];

    // check
    let report = json(&warden(&["check", "--json", &manifest]));
    assert_eq!(report["plugins"][0]["serves"], expected, "{report:#}");
    assert_eq!(report["plugins"][1]["serves"], nothing, "{report:#}");
    let text = warden(&["check", &manifest]);
    for line in lines {
        assert!(
            text.contains(&format!("  {line}\n")),
            "{line:?} in:\n{text}"
        );
    }

    // inspect, of the component file alone
    let component = common::plugin("conformance");
    let report = json(&warden(&["inspect", "--json", &component]));
    assert_eq!(report["serves"], expected, "{report:#}");
    let text = warden(&["inspect", &component]);
    assert!(
        text.contains("prompts and resources (listed in a sandbox granted nothing):"),
        "{text}"
    );
    for line in lines {
        assert!(
            text.contains(&format!("  {line}\n")),
            "{line:?} in:\n{text}"
        );
    }
    let report = json(&warden(&["inspect", "--json", &common::plugin("testbed")]));
    assert_eq!(report["serves"], nothing, "{report:#}");

    // status, of a running server, with its prompt calls counted
    let run_env = run.display().to_string();
    let client = fixture
        .client_env(&[("XDG_RUNTIME_DIR", run_env.as_str())])
        .await;
    client
        .service
        .get_prompt(get("conformance__test_simple_prompt", Value::Null))
        .await
        .expect("prompts/get");
    let servers = json(&warden(&["status", "--json", "-m", &manifest]));
    let server = &servers[0];
    assert_eq!(server["plugins"][0]["serves"], expected, "{server:#}");
    assert_eq!(server["plugins"][1]["serves"], nothing, "{server:#}");
    let text = warden(&["status", "-m", &manifest]);
    assert!(
        text.contains("    prompt    conformance__test_simple_prompt") && text.contains("ok 1"),
        "{text}"
    );
    for line in [
        "resource  test://static-text",
        "template  test://template/{id}/data",
        "completes its prompts'",
    ] {
        assert!(
            text.contains(&format!("    {line}")),
            "{line:?} in:\n{text}"
        );
    }
    client.close().await;
}

#[test]
fn warden_call_gets_a_prompt_and_reads_a_resource_through_the_gate_audited() {
    let fixture = Fixture::new(MANIFEST);
    let manifest = fixture.manifest.display().to_string();
    let call = |args: &[&str]| {
        let mut all = vec!["call", "--manifest", manifest.as_str()];
        all.extend(args);
        common::warden(&all, fixture.dir.path())
    };

    // A prompt, its arguments filtered like a served one.
    let (code, stdout, stderr) = call(&[
        "--prompt",
        "conformance__test_prompt_with_arguments",
        r#"{"arg1": "hello", "arg2": "AKIAIOSFODNN7EXAMPLE"}"#,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let result: Value = serde_json::from_str(&stdout).expect("JSON result");
    assert_eq!(
        result["messages"][0]["content"]["text"],
        "Prompt with arguments: arg1='hello', arg2='[REDACTED:aws-key]'"
    );
    // A missing argument is the gate's refusal.
    let (code, _, stderr) = call(&["--prompt", "conformance__test_prompt_with_arguments"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("arg1"), "{stderr}");

    // A resource.
    let (code, stdout, stderr) = call(&["--read", "test://static-text"]);
    assert_eq!(code, 0, "{stderr}");
    let result: Value = serde_json::from_str(&stdout).expect("JSON result");
    assert_eq!(
        result["contents"][0]["text"],
        "This is the content of the static text resource."
    );
    let (code, _, stderr) = call(&["--read", "test://static-text", r#"{"a": "b"}"#]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("--read takes a URI and no arguments"),
        "{stderr}"
    );

    // A role-less principal: another role's prompt is refused, said plainly; an unknown
    // URI or prompt name gets the closest ones.
    let (code, stdout, stderr) = call(&["--prompt", "vault__test_simple_prompt"]);
    assert_ne!(code, 0);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("prompt vault__test_simple_prompt is not permitted for principal \"ann\" (roles: none); it needs one of: admin"),
        "{stderr}"
    );
    let (code, _, stderr) = call(&["--read", "test://static-txt"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("unknown resource test://static-txt; the closest are: test://static-text"),
        "{stderr}"
    );
    // With the role, it is served.
    let (code, stdout, stderr) = call(&[
        "--principal",
        "boss",
        "--roles",
        "admin",
        "--prompt",
        "vault__test_simple_prompt",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("This is a simple prompt for testing."),
        "{stdout}"
    );

    // Every one is in the audit log, as serve records it.
    let outcomes = |method: &str| -> Vec<(String, String)> {
        audit_of(&fixture, "audit.jsonl", method)
            .iter()
            .map(|r| {
                let text = |key: &str| r[key].as_str().unwrap_or_default().to_owned();
                (text("principal"), text("outcome"))
            })
            .collect()
    };
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        outcomes("prompts/get"),
        [
            pair("ann", "ok"),
            pair("ann", "invalid"),
            pair("ann", "denied"),
            pair("boss", "ok")
        ]
    );
    assert_eq!(
        outcomes("resources/read"),
        [pair("ann", "ok"), pair("ann", "invalid")]
    );
}
