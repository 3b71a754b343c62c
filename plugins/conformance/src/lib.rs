//! The `conformance` plugin: the tools that the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`) calls in its server scenarios, a fixture for
//! `tests/conformance.rs`, never for production.
//!
//! Each tool returns exactly what the suite's scenario describes (texts, MIME types, URIs, the
//! number and spacing of log and progress messages); `tests/conformance/warden.toml` exposes
//! them under the suite's names (`test_simple_text`, ...), which WIT's kebab-case cannot spell.
//! Its prompts (`warden:mcp/prompts`) carry the suite's names themselves, and its resources
//! (`warden:mcp/resources`) the suite's URIs. The environment variable `CONFORMANCE_NOTE`,
//! when the manifest grants it, is appended to the description of `test_simple_prompt` and of
//! `test://static-text`: the tests of `warden.lock` change a prompt's and a resource's text
//! with it, the component unchanged.

warden_sdk::wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "warden:conformance/plugin",
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: {
        "warden:mcp/types@0.1.0": warden_sdk::types,
        "warden:mcp/host@0.1.0": warden_sdk::host,
    },
});

use std::time::Duration;

use exports::warden::conformance::conformance::{Address, ContactMethod, Guest};
use exports::warden::mcp::prompts::{
    Argument, Guest as Prompts, Message, Prompt, PromptResult, Role,
};
use exports::warden::mcp::resources::{Guest as Resources, ReadError, Resource, ResourceTemplate};
use serde_json::{Value, json};
use warden_sdk::host::{ElicitAnswer, ElicitError, elicit};
use warden_sdk::types::{Content, EmbeddedResource, Media, ResourceBody, ToolResult};

/// A 1x1 red RGB PNG.
const PNG: &[u8] = include_bytes!("red.png");

/// 10 ms of silence: 8 kHz, 8-bit mono PCM in a RIFF/WAVE container.
const WAV: &[u8] = include_bytes!("silence.wav");

/// The pause between the log and progress messages the suite expects ("~50ms").
const PAUSE: Duration = Duration::from_millis(50);

struct Conformance;

impl Guest for Conformance {
    fn test_simple_text() -> String {
        "This is a simple text response for testing.".into()
    }

    fn test_image_content() -> ToolResult {
        blocks(vec![png()])
    }

    fn test_audio_content() -> ToolResult {
        blocks(vec![Content::Audio(Media {
            data: WAV.to_vec(),
            mime_type: "audio/wav".into(),
        })])
    }

    fn test_embedded_resource() -> ToolResult {
        blocks(vec![Content::Resource(EmbeddedResource {
            uri: "test://embedded-resource".into(),
            mime_type: Some("text/plain".into()),
            body: ResourceBody::Text("This is an embedded resource content.".into()),
        })])
    }

    fn test_multiple_content_types() -> ToolResult {
        blocks(vec![
            Content::Text("Multiple content types test:".into()),
            png(),
            Content::Resource(EmbeddedResource {
                uri: "test://mixed-content-resource".into(),
                mime_type: Some("application/json".into()),
                body: ResourceBody::Text(r#"{"test":"data","value":123}"#.into()),
            }),
        ])
    }

    fn test_tool_with_logging() -> String {
        warden_sdk::log::info("Tool execution started");
        std::thread::sleep(PAUSE);
        warden_sdk::log::info("Tool processing data");
        std::thread::sleep(PAUSE);
        warden_sdk::log::info("Tool execution completed");
        "Tool with logging executed successfully".into()
    }

    fn test_logging_tool() -> String {
        warden_sdk::log::info("Logging tool called");
        "Logging tool executed successfully".into()
    }

    fn test_tool_with_progress() -> String {
        warden_sdk::progress(0.0, Some(100.0), None);
        std::thread::sleep(PAUSE);
        warden_sdk::progress(50.0, Some(100.0), None);
        std::thread::sleep(PAUSE);
        warden_sdk::progress(100.0, Some(100.0), None);
        "Tool with progress executed successfully".into()
    }

    fn test_error_handling() -> Result<String, String> {
        Err("This tool intentionally returns an error for testing".into())
    }

    fn json_schema_tool(
        name: Option<String>,
        address: Option<Address>,
        contact_method: Option<ContactMethod>,
        phone: Option<String>,
        email: Option<String>,
    ) -> String {
        let mut lines = vec![format!("name: {}", name.as_deref().unwrap_or("-"))];
        if let Some(address) = address {
            lines.push(format!(
                "address: {}, {}",
                address.street.as_deref().unwrap_or("-"),
                address.city.as_deref().unwrap_or("-")
            ));
        }
        let contact = match contact_method {
            Some(ContactMethod::Phone) => phone.map(|p| format!("phone {p}")),
            Some(ContactMethod::Email) => email.map(|e| format!("email {e}")),
            None => phone
                .map(|p| format!("phone {p}"))
                .or(email.map(|e| format!("email {e}"))),
        };
        lines.push(format!("contact: {}", contact.as_deref().unwrap_or("-")));
        lines.join("\n")
    }

    fn test_elicitation(message: String) -> Result<String, String> {
        let schema = json!({
            "type": "object",
            "properties": {
                "username": { "type": "string", "description": "User's response" },
                "email": { "type": "string", "description": "User's email address" },
            },
            "required": ["username", "email"],
        });
        let (action, content) = ask(&message, &schema)?;
        Ok(format!("User response: action={action}, content={content}"))
    }

    fn test_sampling(prompt: String) -> Result<String, String> {
        use warden_sdk::host::{SampleMessage, SampleRequest, SampleRole};
        let request = SampleRequest {
            messages: vec![SampleMessage {
                role: SampleRole::User,
                text: prompt,
            }],
            system_prompt: None,
            max_tokens: 100,
        };
        let answer = warden_sdk::sample(&request).map_err(|e| format!("cannot sample: {e:?}"))?;
        Ok(format!("LLM response: {}", answer.text))
    }

    fn test_elicitation_sep1034_defaults() -> Result<String, String> {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": { "type": "string", "description": "User name", "default": "John Doe" },
                "age": { "type": "integer", "description": "User age", "default": 30 },
                "score": { "type": "number", "description": "User score", "default": 95.5 },
                "status": {
                    "type": "string",
                    "description": "User status",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active",
                },
                "verified": {
                    "type": "boolean",
                    "description": "Verification status",
                    "default": true,
                },
            },
            "required": [],
        });
        let (action, content) = ask(
            "Please review and update the form fields with defaults",
            &schema,
        )?;
        Ok(format!(
            "Elicitation completed: action={action}, content={content}"
        ))
    }

    fn test_elicitation_sep1330_enums() -> Result<String, String> {
        let schema = json!({
            "type": "object",
            "properties": {
                "untitledSingle": {
                    "type": "string",
                    "description": "Select one option",
                    "enum": ["option1", "option2", "option3"],
                },
                "titledSingle": {
                    "type": "string",
                    "description": "Select one option with titles",
                    "oneOf": [
                        { "const": "value1", "title": "First Option" },
                        { "const": "value2", "title": "Second Option" },
                        { "const": "value3", "title": "Third Option" },
                    ],
                },
                "legacyEnum": {
                    "type": "string",
                    "description": "Select one option (legacy)",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"],
                },
                "untitledMulti": {
                    "type": "array",
                    "description": "Select multiple options",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": { "type": "string", "enum": ["option1", "option2", "option3"] },
                },
                "titledMulti": {
                    "type": "array",
                    "description": "Select multiple options with titles",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {
                        "anyOf": [
                            { "const": "value1", "title": "First Choice" },
                            { "const": "value2", "title": "Second Choice" },
                            { "const": "value3", "title": "Third Choice" },
                        ],
                    },
                },
            },
            "required": [],
        });
        let (action, content) = ask("Please select options from the enum fields", &schema)?;
        Ok(format!(
            "Elicitation completed: action={action}, content={content}"
        ))
    }

    fn test_input_required_result_elicitation() -> Result<String, String> {
        let name = keyed_string("user_name", "What is your name?", "name")?;
        Ok(format!("Hello, {name}!"))
    }

    fn test_input_required_result_request_state() -> Result<String, String> {
        confirm()?;
        Ok("state-ok: requestState validated".into())
    }

    fn test_input_required_result_multi_round() -> Result<String, String> {
        let name = keyed_string("step1", "Step 1: What is your name?", "name")?;
        let color = keyed_string("step2", "Step 2: What is your favorite color?", "color")?;
        Ok(format!("Multi-round complete for {name} who likes {color}"))
    }

    fn test_input_required_result_tampered_state() -> Result<String, String> {
        confirm()?;
        Ok("integrity-ok: state verified".into())
    }

    fn test_streaming_elicitation() -> Result<String, String> {
        let (action, content) = confirm()?;
        Ok(format!("User response: action={action}, content={content}"))
    }

    fn test_reconnection() -> String {
        std::thread::sleep(Duration::from_millis(1500));
        "Reconnection test completed successfully".to_owned()
    }

    fn test_update_resource(uri: String) -> String {
        Self::update_resource(uri)
    }
}

/// Ask `message` with the form `schema`: what the user did (`accept`, `decline` or `cancel`)
/// and the values they submitted (`{}` unless they accepted).
fn ask(message: &str, schema: &Value) -> Result<(&'static str, Value), String> {
    match elicit(message, &schema.to_string()) {
        Ok(ElicitAnswer::Accept(content)) => Ok((
            "accept",
            serde_json::from_str(&content).map_err(|e| format!("answer not JSON: {e}"))?,
        )),
        Ok(ElicitAnswer::Decline) => Ok(("decline", json!({}))),
        Ok(ElicitAnswer::Cancel) => Ok(("cancel", json!({}))),
        Err(ElicitError::Unsupported) => Err("the client cannot show forms".into()),
        Err(ElicitError::InvalidSchema(why)) => Err(format!("invalid form: {why}")),
        Err(ElicitError::Timeout) => Err("no answer in time".into()),
        Err(ElicitError::Failed(why)) => Err(format!("could not ask: {why}")),
    }
}

/// Ask "Please confirm" with a form of one required boolean `ok`.
fn confirm() -> Result<(&'static str, Value), String> {
    let schema = json!({
        "type": "object",
        "properties": { "ok": { "type": "boolean" } },
        "required": ["ok"],
    });
    ask("Please confirm", &schema)
}

/// A result made of `content` alone.
fn blocks(content: Vec<Content>) -> ToolResult {
    ToolResult {
        content,
        structured: None,
    }
}

/// The red pixel as an image block.
fn png() -> Content {
    Content::Image(Media {
        data: PNG.to_vec(),
        mime_type: "image/png".into(),
    })
}

/// A prompt as `prompts.list` describes it.
fn prompt(name: &str, description: &str, arguments: &[(&str, &str)]) -> Prompt {
    Prompt {
        name: name.into(),
        title: None,
        description: Some(description.into()),
        arguments: arguments
            .iter()
            .map(|(name, description)| Argument {
                name: (*name).into(),
                description: Some((*description).into()),
                required: true,
            })
            .collect(),
    }
}

/// `CONFORMANCE_NOTE`, or nothing.
fn note() -> String {
    std::env::var("CONFORMANCE_NOTE").unwrap_or_default()
}

/// A message from the user.
fn user(content: Content) -> Message {
    Message {
        role: Role::User,
        content,
    }
}

impl Prompts for Conformance {
    fn list() -> Vec<Prompt> {
        vec![
            prompt(
                "test_simple_prompt",
                &format!("A simple prompt without arguments{}", note()),
                &[],
            ),
            prompt(
                "test_prompt_with_arguments",
                "A prompt with two required arguments",
                &[
                    ("arg1", "First test argument"),
                    ("arg2", "Second test argument"),
                ],
            ),
            prompt(
                "test_prompt_with_embedded_resource",
                "A prompt that embeds a resource",
                &[("resourceUri", "URI of the resource to embed")],
            ),
            prompt("test_prompt_with_image", "A prompt with an image", &[]),
            prompt(
                "test_input_required_result_prompt",
                "A prompt that asks the user for its context first",
                &[],
            ),
        ]
    }

    fn get(name: String, arguments: Vec<(String, String)>) -> Result<PromptResult, String> {
        let argument = |key: &str| {
            arguments
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        let messages = match name.as_str() {
            "test_simple_prompt" => vec![user(Content::Text(
                "This is a simple prompt for testing.".into(),
            ))],
            "test_prompt_with_arguments" => vec![user(Content::Text(format!(
                "Prompt with arguments: arg1='{}', arg2='{}'",
                argument("arg1"),
                argument("arg2")
            )))],
            "test_prompt_with_embedded_resource" => vec![
                user(Content::Resource(EmbeddedResource {
                    uri: argument("resourceUri"),
                    mime_type: Some("text/plain".into()),
                    body: ResourceBody::Text("Embedded resource content for testing.".into()),
                })),
                user(Content::Text(
                    "Please process the embedded resource above.".into(),
                )),
            ],
            "test_prompt_with_image" => vec![
                user(png()),
                user(Content::Text("Please analyze the image above.".into())),
            ],
            "test_input_required_result_prompt" => input_required_prompt()?,
            other => return Err(format!("no prompt `{other}`")),
        };
        Ok(PromptResult {
            description: None,
            messages,
        })
    }
}

/// A listed resource of the suite.
fn resource(uri: &str, name: &str, description: &str, mime_type: &str) -> Resource {
    Resource {
        uri: uri.into(),
        name: name.into(),
        title: None,
        description: Some(description.into()),
        mime_type: Some(mime_type.into()),
        size: None,
    }
}

/// Contents of `uri`: `body` with `mime_type`.
fn contents(uri: &str, mime_type: &str, body: ResourceBody) -> Vec<EmbeddedResource> {
    vec![EmbeddedResource {
        uri: uri.into(),
        mime_type: Some(mime_type.into()),
        body,
    }]
}

impl Resources for Conformance {
    fn list() -> Vec<Resource> {
        vec![
            resource(
                "test://static-text",
                "static-text",
                &format!("A static text resource{}", note()),
                "text/plain",
            ),
            resource(
                "test://static-binary",
                "static-binary",
                "A static binary resource (a PNG image)",
                "image/png",
            ),
            resource(
                "test://watched-resource",
                "watched-resource",
                "A resource clients may subscribe to",
                "text/plain",
            ),
        ]
    }

    fn templates() -> Vec<ResourceTemplate> {
        vec![ResourceTemplate {
            uri_template: "test://template/{id}/data".into(),
            name: "template-data".into(),
            title: None,
            description: Some("Data for an id, substituted into the URI".into()),
            mime_type: Some("application/json".into()),
        }]
    }

    fn read(uri: String) -> Result<Vec<EmbeddedResource>, ReadError> {
        let text = |text: &str| ResourceBody::Text(text.into());
        match uri.as_str() {
            "test://static-text" => Ok(contents(
                &uri,
                "text/plain",
                text("This is the content of the static text resource."),
            )),
            "test://static-binary" => Ok(contents(
                &uri,
                "image/png",
                ResourceBody::Blob(PNG.to_vec()),
            )),
            "test://watched-resource" => Ok(contents(
                &uri,
                "text/plain",
                text("Watched resource content."),
            )),
            _ => {
                let id = uri
                    .strip_prefix("test://template/")
                    .and_then(|rest| rest.strip_suffix("/data"))
                    .ok_or(ReadError::NotFound)?;
                let data =
                    json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
                Ok(contents(&uri, "application/json", text(&data.to_string())))
            }
        }
    }
}

// --- Resource subscriptions and completions (warden's own tests, not the suite's) ---------

use exports::warden::mcp::completions::{Guest as Completions, Reference};

impl Conformance {
    /// `test-update-resource`: any URI, so tests can also try one the plugin does not serve.
    fn update_resource(uri: String) -> String {
        warden_sdk::resource_updated(&uri);
        format!("updated {uri}")
    }
}

impl Completions for Conformance {
    /// `test_prompt_with_arguments`' `arg1` and `arg2` and the template's `id`: the candidates
    /// that start with `value`. `value` "many" gives 150 values (more than a response
    /// holds); "secret" gives one carrying an AWS key id (the output filter's business).
    fn complete(
        reference: Reference,
        argument: String,
        value: String,
        context: Vec<(String, String)>,
    ) -> Vec<String> {
        let candidates: Vec<String> = match (&reference, argument.as_str()) {
            (Reference::Prompt(name), "arg1" | "arg2") if name == "test_prompt_with_arguments" => {
                ["test", "testing", "tested", "other"]
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect()
            }
            (Reference::ResourceTemplate(template), "id")
                if template == "test://template/{id}/data" =>
            {
                ["123", "124", "456"]
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect()
            }
            _ => return Vec::new(),
        };
        match value.as_str() {
            "many" => (0..150).map(|i| format!("many-{i}")).collect(),
            "secret" => vec!["AKIAIOSFODNN7EXAMPLE".to_owned()],
            // The context shows through: `arg2` completes to `arg1`'s value first.
            _ => context
                .iter()
                .filter(|(name, _)| name == "arg1" && argument == "arg2")
                .map(|(_, v)| v.clone())
                .chain(candidates.into_iter().filter(|c| c.starts_with(&value)))
                .collect(),
        }
    }
}

// --- Input requests: questions under the suite's keys (warden:mcp/host.ask) ---------------------

use exports::warden::conformance::inputs::Guest as Inputs;
use warden_sdk::host::{
    Answer, AskError, ClientError, Form, Question, QuestionKind, SampleMessage, SampleRequest,
    SampleRole,
};

impl Inputs for Conformance {
    fn test_input_required_result_sampling() -> Result<String, String> {
        let answer = sampled(one(question(
            "capital_question",
            sample("What is the capital of France?", 100),
        ))?)?;
        Ok(format!("LLM answered: {answer}"))
    }

    fn test_input_required_result_list_roots() -> Result<String, String> {
        let roots = rooted(one(question("client_roots", QuestionKind::Roots))?)?;
        Ok(format!("Client roots: {roots}"))
    }

    fn test_input_required_result_multiple_inputs() -> Result<String, String> {
        let answers = asked(vec![
            question("user_name", form("What is your name?", "name")),
            question("greeting", sample("Generate a greeting", 50)),
            question("client_roots", QuestionKind::Roots),
        ])?;
        let mut answers = answers.into_iter();
        let name = named(answers.next(), "name")?;
        let greeting = sampled(answers.next())?;
        let roots = rooted(answers.next())?;
        Ok(format!(
            "Multiple inputs complete: name={name}, greeting={greeting}, roots={roots}"
        ))
    }

    fn test_input_required_result_capabilities() -> Result<String, String> {
        let answers = asked(vec![
            question("user_name", form("What is your name?", "name")),
            question(
                "capital_question",
                sample("What is the capital of France?", 100),
            ),
        ])?;
        let said: Vec<&str> = answers
            .iter()
            .map(|answer| match answer {
                Answer::Elicit(Ok(_)) => "name answered",
                Answer::Sample(Ok(_)) => "capital answered",
                Answer::Elicit(Err(_)) => "no name (elicitation not declared)",
                Answer::Sample(Err(_)) => "no capital (sampling not declared)",
                Answer::Roots(_) => "roots",
            })
            .collect();
        Ok(said.join("; "))
    }

    fn test_missing_capability() -> Result<String, String> {
        let mut probe = question("probe", sample("Say hello", 10));
        probe.required = true;
        Ok(format!("sampled: {}", sampled(one(probe)?)?))
    }
}

/// `test_input_required_result_prompt`: ask for the prompt's context under `user_context`.
fn input_required_prompt() -> Result<Vec<Message>, String> {
    let context = named(
        one(question(
            "user_context",
            form("What context should the prompt use?", "context"),
        ))?,
        "context",
    )?;
    Ok(vec![user(Content::Text(format!(
        "Prompt with context: {context}"
    )))])
}

/// An optional question named `key`.
fn question(key: &str, kind: QuestionKind) -> Question {
    Question {
        key: key.into(),
        kind,
        required: false,
    }
}

/// A form of one required string `field`, asking `message`.
fn form(message: &str, field: &str) -> QuestionKind {
    let schema = json!({
        "type": "object",
        "properties": { field: { "type": "string" } },
        "required": [field],
    });
    QuestionKind::Elicit(Form {
        message: message.into(),
        requested_schema: schema.to_string(),
    })
}

/// The client's model, asked `text` in at most `max_tokens`.
fn sample(text: &str, max_tokens: u32) -> QuestionKind {
    QuestionKind::Sample(SampleRequest {
        messages: vec![SampleMessage {
            role: SampleRole::User,
            text: text.into(),
        }],
        system_prompt: None,
        max_tokens,
    })
}

/// Ask `questions` together.
fn asked(questions: Vec<Question>) -> Result<Vec<Answer>, String> {
    warden_sdk::ask(&questions).map_err(|e| match e {
        AskError::InvalidKey(why) => format!("invalid key: {why}"),
        AskError::DuplicateKey(key) => format!("duplicate key: {key}"),
    })
}

/// Ask one question.
fn one(question: Question) -> Result<Option<Answer>, String> {
    Ok(asked(vec![question])?.pop())
}

/// Ask the form of one required string `field` under `key`, and return the string given.
fn keyed_string(key: &str, message: &str, field: &str) -> Result<String, String> {
    named(one(question(key, form(message, field)))?, field)
}

/// The string `field` of a form's answer.
fn named(answer: Option<Answer>, field: &str) -> Result<String, String> {
    match answer {
        Some(Answer::Elicit(Ok(ElicitAnswer::Accept(content)))) => {
            serde_json::from_str::<Value>(&content)
                .ok()
                .and_then(|c| c.get(field).and_then(Value::as_str).map(str::to_owned))
                .ok_or_else(|| format!("the answer has no string `{field}`"))
        }
        Some(Answer::Elicit(Ok(_))) => Err("the user did not answer".into()),
        Some(Answer::Elicit(Err(e))) => Err(format!("could not ask: {e:?}")),
        _ => Err("no answer to the form".into()),
    }
}

/// The text of the model's answer.
fn sampled(answer: Option<Answer>) -> Result<String, String> {
    match answer {
        Some(Answer::Sample(Ok(answer))) => Ok(answer.text),
        Some(Answer::Sample(Err(e))) => Err(client_error(e)),
        _ => Err("no answer from the model".into()),
    }
}

/// The client's roots, `URI` each, comma-separated.
fn rooted(answer: Option<Answer>) -> Result<String, String> {
    match answer {
        Some(Answer::Roots(Ok(roots))) => Ok(roots
            .iter()
            .map(|r| r.uri.as_str())
            .collect::<Vec<_>>()
            .join(", ")),
        Some(Answer::Roots(Err(e))) => Err(client_error(e)),
        _ => Err("no roots".into()),
    }
}

fn client_error(error: ClientError) -> String {
    match error {
        ClientError::NotGranted => "not granted".into(),
        ClientError::Unsupported => "the client cannot answer".into(),
        ClientError::Timeout => "no answer in time".into(),
        ClientError::Failed(why) => why,
    }
}

// ---- tasks (the io.modelcontextprotocol/tasks scenarios, SEP-2663) ----

impl exports::warden::conformance::tasks::Guest for Conformance {
    fn greet(name: String) -> String {
        format!("Hello, {name}!")
    }

    fn slow_compute(seconds: u32, label: Option<String>) -> String {
        for second in 0..seconds {
            let message = format!("second {} of {seconds}", second + 1);
            let total = Some(f64::from(seconds));
            warden_sdk::progress(f64::from(second), total, Some(&message));
            std::thread::sleep(Duration::from_secs(1));
        }
        format!(
            "Computed {} in {seconds}s",
            label.as_deref().unwrap_or("result")
        )
    }

    fn failing_job() -> Result<String, String> {
        std::thread::sleep(Duration::from_secs(1));
        Err("the job failed, as it always does".into())
    }

    fn protocol_error_job() -> String {
        panic!("protocol_error_job crashes on purpose")
    }

    fn confirm_delete(filename: String) -> Result<String, String> {
        let schema = json!({
            "type": "object",
            "properties": {"confirm": {"type": "boolean", "title": "Delete it?"}},
            "required": ["confirm"]
        });
        let (action, content) = ask(&format!("Delete {filename}?"), &schema)?;
        Ok(format!(
            "Delete {filename}: action={action}, content={content}"
        ))
    }

    fn multi_input() -> Result<String, String> {
        let mut answers = asked(vec![
            question("first_name", form("What is your first name?", "name")),
            question("last_name", form("What is your last name?", "name")),
        ])?
        .into_iter();
        let first = named(answers.next(), "name")?;
        let last = named(answers.next(), "name")?;
        Ok(format!("Hello, {first} {last}!"))
    }

    fn name_then_work(seconds: Option<u32>) -> Result<String, String> {
        let mut answers = asked(vec![question(
            "user_name",
            form("What is your name?", "name"),
        )])?
        .into_iter();
        let name = named(answers.next(), "name")?;
        std::thread::sleep(Duration::from_secs(u64::from(seconds.unwrap_or(1))));
        Ok(format!("Hello, {name}!"))
    }
}

// ---- toolsets (hidden tools a plugin reveals: the server-stateless list-changed check) ----

impl exports::warden::conformance::toolsets::Guest for Conformance {
    fn test_trigger_tool_change() -> String {
        const HIDDEN: &str = "test-revealed-tool";
        if warden_sdk::revealed_tools()
            .iter()
            .any(|name| name == HIDDEN)
        {
            warden_sdk::hide_tools(&[HIDDEN]);
            "test_revealed_tool is hidden again".into()
        } else {
            warden_sdk::reveal_tools(&[HIDDEN]);
            "test_revealed_tool is revealed".into()
        }
    }

    fn test_revealed_tool() -> String {
        "test_revealed_tool was revealed by test_trigger_tool_change".into()
    }
}

export!(Conformance);
