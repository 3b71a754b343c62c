//! The rest of each protocol era, end to end through the real `warden serve --http` and real
//! clients: resumable event streams in 2025-11-25 sessions (`Last-Event-ID`, `[http]
//! sse_close_after`), the pagination of every list (`[server] page_size`), icons from the
//! manifest.

mod common;

use std::time::Duration;

use common::{Fixture, HttpServer, ok_text, run_python};
use futures_util::StreamExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::ClientLifecycleMode;
use serde_json::{Value, json};

/// The testbed, and every session event stream connection closed after 1 s.
fn closing_fixture() -> Fixture {
    Fixture::new(
        "[http]\nsse_close_after = \"1s\"\n\n[audit]\npath = \"{dir}/audit.jsonl\"\n\n\
         [plugins.testbed]\ncomponent = \"{testbed}\"\n",
    )
}

/// A call of `tool` with `arguments` and progress token 1.
fn with_progress(tool: &str, arguments: Value) -> CallToolRequestParams {
    let mut params =
        CallToolRequestParams::new(tool.to_owned()).with_arguments(common::object(arguments));
    params.meta = Some(rmcp::model::RequestMetaObject::with_progress_token(
        rmcp::model::ProgressToken(rmcp::model::NumberOrString::Number(1)),
    ));
    params
}

#[tokio::test]
async fn rmcp_client_resumes_a_call_whose_stream_the_server_closed_and_misses_nothing() {
    let fixture = closing_fixture();
    let server = fixture.http_server(&[]).await;
    let client = server
        .connect(server.client_config(None), ClientLifecycleMode::Initialize)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.stderr()));
    // Four progress steps 500 ms apart: the stream is closed after 1 s, and rmcp's client
    // waits the priming event's `retry` (3 s) before it reconnects, so the last steps and the
    // result come while no connection is there: only the replay brings them.
    let result = client
        .call_tool(with_progress(
            "testbed__pause",
            json!({"steps": 4, "millis": 500}),
        ))
        .await
        .unwrap_or_else(|e| panic!("tools/call: {e}\n{}", server.stderr()));
    assert_eq!(ok_text(&result), "4");
    // The notifications are dispatched apart from the response: let them settle.
    let recorder = client.service();
    for _ in 0..50 {
        if recorder.progress.lock().expect("lock").len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let steps: Vec<f64> = recorder
        .progress
        .lock()
        .expect("lock")
        .iter()
        .map(|p| p.progress)
        .collect();
    assert_eq!(steps, vec![1.0, 2.0, 3.0, 4.0], "each step once, in order");
    let _ = client.cancel().await;
}

/// The events of an SSE response until it ends or `within` passes: `(id, data)`.
async fn events(response: reqwest::Response, within: Duration) -> (Vec<(String, String)>, bool) {
    let mut stream = sse_stream::SseStream::from_bytes_stream(response.bytes_stream());
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(event))) => {
                out.push((event.id.unwrap_or_default(), event.data.unwrap_or_default()))
            }
            Ok(Some(Err(e))) => panic!("a malformed event stream: {e}"),
            Ok(None) => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

/// Opens a 2025-11-25 session with raw requests: its id.
async fn open_session(server: &HttpServer) -> String {
    let client = reqwest::Client::new();
    let opened = client
        .post(&server.url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(
            json!({
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"}
                }
            })
            .to_string(),
        )
        .send()
        .await
        .expect("initialize");
    assert_eq!(opened.status(), 200);
    let id = opened
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("a session id")
        .to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        session(server, &id, reqwest::Method::POST, Some(&initialized), None)
            .await
            .status(),
        202
    );
    id
}

/// A request in session `id`, with `Last-Event-ID` if given.
async fn session(
    server: &HttpServer,
    id: &str,
    method: reqwest::Method,
    body: Option<&Value>,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .request(method, &server.url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", id);
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    if let Some(last) = last_event_id {
        request = request.header("last-event-id", last);
    }
    request.send().await.expect("HTTP request")
}

/// A `tools/call` of `testbed__pause` with JSON-RPC id `id` and progress token 1.
fn pause_call(id: u64, steps: u32, millis: u32) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {
            "name": "testbed__pause",
            "arguments": {"steps": steps, "millis": millis},
            "_meta": {"progressToken": 1}
        }
    })
}

fn result_of(events: &[(String, String)], id: u64) -> Option<Value> {
    events.iter().find_map(|(_, data)| {
        let message: Value = serde_json::from_str(data).ok()?;
        (message["id"] == id && message.get("result").is_some()).then_some(message)
    })
}

#[tokio::test]
async fn a_cut_stream_resumes_after_its_last_event_id_and_another_session_gets_none_of_it() {
    let fixture = closing_fixture();
    let server = fixture.http_server(&[]).await;
    let ann = open_session(&server).await;

    // The call takes 1.5 s; its stream is closed after 1 s, before the result.
    let call = session(
        &server,
        &ann,
        reqwest::Method::POST,
        Some(&pause_call(7, 3, 500)),
        None,
    )
    .await;
    assert_eq!(call.status(), 200);
    let (first, ended) = events(call, Duration::from_secs(30)).await;
    assert!(ended, "the server closed the stream");
    assert!(
        result_of(&first, 7).is_none(),
        "closed before the result: {first:?}"
    );
    let (priming_id, priming_data) = &first[0];
    assert!(
        priming_data.is_empty() && !priming_id.is_empty(),
        "a priming event first: {first:?}"
    );
    let (last_id, _) = first.last().expect("events").clone();

    // Wait for the call to finish while nobody listens.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Another session cannot name ann's stream: her ids name at most bob's own stream of the
    // same number (streams are numbered per session), never hers.
    let bob = open_session(&server).await;
    let own = session(
        &server,
        &bob,
        reqwest::Method::POST,
        Some(&pause_call(8, 1, 10)),
        None,
    )
    .await;
    let (own, _) = events(own, Duration::from_secs(30)).await;
    assert!(result_of(&own, 8).is_some(), "{own:?}");
    for id in [priming_id.as_str(), last_id.as_str(), "r1/0"] {
        let stolen = session(&server, &bob, reqwest::Method::GET, None, Some(id)).await;
        assert_eq!(stolen.status(), 200);
        let (got, ended) = events(stolen, Duration::from_secs(10)).await;
        assert!(ended, "{id}");
        assert!(
            got.iter().all(|(_, data)| !data.contains("\"id\":7")) && result_of(&got, 7).is_none(),
            "bob got ann's events with {id}: {got:?}"
        );
    }

    // Ann resumes: the events after her last one, the result, then the end.
    let resumed = session(&server, &ann, reqwest::Method::GET, None, Some(&last_id)).await;
    assert_eq!(resumed.status(), 200);
    let (rest, ended) = events(resumed, Duration::from_secs(10)).await;
    assert!(ended, "an answered call's stream ends after the replay");
    let result = result_of(&rest, 7).unwrap_or_else(|| panic!("no result in {rest:?}"));
    assert_eq!(result["result"]["content"][0]["text"], "3");
    assert!(
        rest.iter()
            .all(|(id, _)| !first.iter().any(|(seen, _)| seen == id)),
        "nothing already received is sent again: {first:?} then {rest:?}"
    );
    let progress = |events: &[(String, String)]| -> Vec<f64> {
        events
            .iter()
            .filter_map(|(_, data)| serde_json::from_str::<Value>(data).ok())
            .filter(|m| m["method"] == "notifications/progress")
            .filter_map(|m| m["params"]["progress"].as_f64())
            .collect()
    };
    let mut steps = progress(&first);
    steps.extend(progress(&rest));
    assert_eq!(
        steps,
        vec![1.0, 2.0, 3.0],
        "every step exactly once: {first:?} {rest:?}"
    );

    // Resuming again from the priming event replays it all (within a minute of the answer).
    let again = session(&server, &ann, reqwest::Method::GET, None, Some(priming_id)).await;
    let (all, _) = events(again, Duration::from_secs(10)).await;
    assert!(result_of(&all, 7).is_some(), "{all:?}");
    // The standalone GET stream is cut after sse_close_after too.
    let standalone = session(&server, &ann, reqwest::Method::GET, None, None).await;
    assert_eq!(standalone.status(), 200);
    let (_, ended) = events(standalone, Duration::from_secs(30)).await;
    assert!(ended, "the standalone stream was closed");
    // An id that is not a number of this server's is an empty stream, not an error.
    let junk = session(&server, &ann, reqwest::Method::GET, None, Some("r99999/0")).await;
    assert_eq!(junk.status(), 200);
    let (got, ended) = events(junk, Duration::from_secs(10)).await;
    assert!(ended && got.is_empty(), "{got:?}");
}

// --- Pagination ---------------------------------------------------------------------------------

/// A server of the testbed and the conformance fixture (prompts, resources) with `page_size`.
async fn paged_server(page_size: Option<u32>) -> (Fixture, HttpServer) {
    let server = page_size.map_or(String::new(), |n| format!("[server]\npage_size = {n}\n\n"));
    let fixture = Fixture::new(&format!(
        "{server}[plugins.testbed]\ncomponent = \"{{testbed}}\"\n\n\
         [plugins.conformance]\ncomponent = \"{{conformance}}\"\nprefix = \"\"\n"
    ));
    let http = fixture.http_server(&[]).await;
    (fixture, http)
}

fn cursor(cursor: &str) -> Option<rmcp::model::PaginatedRequestParams> {
    let mut params = rmcp::model::PaginatedRequestParams::default();
    params.cursor = Some(cursor.to_owned());
    Some(params)
}

#[tokio::test]
async fn every_list_is_paged_by_page_size_and_real_clients_follow_the_cursors() {
    let (_whole_fixture, whole) = paged_server(None).await;
    let (_paged_fixture, paged) = paged_server(Some(3)).await;
    for (era, lifecycle) in [
        ("2025-11-25", ClientLifecycleMode::Initialize),
        ("2026-07-28", common::discover_2026()),
    ] {
        let full = whole
            .connect(whole.client_config(None), lifecycle.clone())
            .await
            .unwrap_or_else(|e| panic!("{era}: connect: {e}"));
        let client = paged
            .connect(paged.client_config(None), lifecycle)
            .await
            .unwrap_or_else(|e| panic!("{era}: connect: {e}"));

        // The default page (100) holds every tool; with page_size 3, pages of 3.
        let all = full.list_tools(None).await.expect("tools/list");
        assert!(all.next_cursor.is_none() && all.tools.len() > 9, "{era}");
        let first = client.list_tools(None).await.expect("first page");
        assert_eq!(first.tools.len(), 3, "{era}");
        let next = first.next_cursor.clone().expect("a next page");
        let second = client.list_tools(cursor(&next)).await.expect("second page");
        assert_eq!(second.tools[0].name, all.tools[3].name, "{era}");
        // rmcp's client follows the cursors to the end: the same tools, in the same order.
        let followed = client.list_all_tools().await.expect("all tools");
        let names = |tools: &[rmcp::model::Tool]| -> Vec<String> {
            tools.iter().map(|t| t.name.to_string()).collect()
        };
        assert_eq!(names(&followed), names(&all.tools), "{era}");

        // Prompts, resources and templates page the same way.
        assert_eq!(
            client.list_all_prompts().await.expect("prompts").len(),
            full.list_all_prompts().await.expect("prompts").len(),
            "{era}"
        );
        let prompts = client.list_prompts(None).await.expect("prompts page");
        assert_eq!(prompts.prompts.len(), 3, "{era}");
        assert!(prompts.next_cursor.is_some(), "{era}");
        assert_eq!(
            client.list_all_resources().await.expect("resources").len(),
            full.list_all_resources().await.expect("resources").len(),
            "{era}"
        );
        assert!(
            !client
                .list_all_resource_templates()
                .await
                .expect("templates")
                .is_empty(),
            "{era}"
        );

        // A cursor is checked: made up, or another list's, it is invalid params.
        for bad in [
            "bogus",
            "3",
            prompts.next_cursor.as_deref().unwrap_or_default(),
        ] {
            let error = client
                .list_tools(cursor(bad))
                .await
                .expect_err("a bad cursor is refused");
            assert!(
                error.to_string().contains("-32602"),
                "{era}: {bad}: {error}"
            );
        }
        let _ = client.cancel().await;
        let _ = full.cancel().await;
    }
}

// --- Icons --------------------------------------------------------------------------------------

const PNG_ICON: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";

#[tokio::test]
async fn icons_from_the_manifest_reach_tools_prompts_and_resources_in_both_eras() {
    let fixture = Fixture::new(&format!(
        r#"
[plugins.testbed]
component = "{{testbed}}"
icons = [{{ src = "https://icons.example.com/testbed.png", mime_type = "image/png", sizes = ["48x48", "96x96"] }}]

[plugins.testbed.tools.emit]
icons = [{{ src = "{PNG_ICON}", theme = "dark" }}, {{ src = "https://icons.example.com/emit.svg", mime_type = "image/svg+xml", sizes = ["any"], theme = "light" }}]

[plugins.conformance]
component = "{{conformance}}"
prefix = ""
icons = [{{ src = "https://icons.example.com/fixture.png" }}]

[plugins.bare]
component = "{{testbed}}"
"#
    ));
    let server = fixture.http_server(&[]).await;
    for (era, lifecycle) in [
        ("2025-11-25", ClientLifecycleMode::Initialize),
        ("2026-07-28", common::discover_2026()),
    ] {
        let client = server
            .connect(server.client_config(None), lifecycle)
            .await
            .unwrap_or_else(|e| panic!("{era}: connect: {e}"));
        let tools = client.list_all_tools().await.expect("tools/list");
        let icons = |name: &str| -> Value {
            let tool = tools
                .iter()
                .find(|t| t.name == name)
                .unwrap_or_else(|| panic!("{name}"));
            serde_json::to_value(&tool.icons).expect("JSON")
        };
        assert_eq!(
            icons("testbed__spin"),
            json!([{"src": "https://icons.example.com/testbed.png", "mimeType": "image/png", "sizes": ["48x48", "96x96"]}]),
            "{era}: the plugin's icons"
        );
        assert_eq!(
            icons("testbed__emit"),
            json!([
                {"src": PNG_ICON, "theme": "dark"},
                {"src": "https://icons.example.com/emit.svg", "mimeType": "image/svg+xml", "sizes": ["any"], "theme": "light"}
            ]),
            "{era}: the tool's own icons replace the plugin's"
        );
        assert_eq!(icons("bare__spin"), Value::Null, "{era}: no icons, no key");
        let fixture_icon = json!([{"src": "https://icons.example.com/fixture.png"}]);
        let prompts = client.list_all_prompts().await.expect("prompts/list");
        assert!(!prompts.is_empty());
        for prompt in &prompts {
            assert_eq!(
                serde_json::to_value(&prompt.icons).expect("JSON"),
                fixture_icon,
                "{era}"
            );
        }
        let resources = client.list_all_resources().await.expect("resources/list");
        assert!(!resources.is_empty());
        for resource in &resources {
            assert_eq!(
                serde_json::to_value(&resource.icons).expect("JSON"),
                fixture_icon,
                "{era}"
            );
        }
        let templates = client
            .list_all_resource_templates()
            .await
            .expect("resources/templates/list");
        assert_eq!(
            serde_json::to_value(&templates[0].icons).expect("JSON"),
            fixture_icon,
            "{era}"
        );
        let _ = client.cancel().await;
    }
}

#[test]
fn icons_that_are_not_https_or_image_data_are_manifest_errors_at_their_line() {
    for (icons, expected) in [
        (
            r#"[{ src = "http://icons.example.com/a.png" }]"#,
            "an icon's src is an https:// URL",
        ),
        (
            r#"[{ src = "javascript:alert(1)" }]"#,
            "an icon's src is an https:// URL",
        ),
        (
            r#"[{ src = "data:text/html;base64,PGgxPg==" }]"#,
            "invalid icon type",
        ),
        (
            r#"[{ src = "https://x.example/a", mime_type = "text/html" }]"#,
            "invalid icon type",
        ),
        (
            r#"[{ src = "https://x.example/a", sizes = ["big"] }]"#,
            "invalid icon size",
        ),
        (
            r#"[{ src = "https://x.example/a", theme = "blue" }]"#,
            "unknown theme",
        ),
        (
            r#"[{ src = "https://x.example/a", colour = "red" }]"#,
            "colour",
        ),
        (
            &format!("[{}]", [r#"{ src = "https://x.example/a" }"#; 9].join(", ")),
            "at most 8 icons",
        ),
    ] {
        let fixture = Fixture::new(&format!(
            "[plugins.testbed]\ncomponent = \"{{testbed}}\"\nicons = {icons}\n"
        ));
        let (code, stdout, stderr) = common::warden(
            &[
                "check",
                "--manifest",
                &fixture.manifest.display().to_string(),
            ],
            fixture.dir.path(),
        );
        assert_ne!(code, 0, "{icons}: {stdout}");
        assert!(
            stderr.contains(expected) && stderr.contains("warden.toml:6:"),
            "{icons}: expected {expected:?} at line 6 in:\n{stderr}"
        );
    }
}

// --- Input schemas with $defs -------------------------------------------------------------------

/// Lists the tools with the Python `mcp` client, validates each case's arguments against the
/// tool's published input schema with `jsonschema` (draft 2020-12, `$ref`s resolved), calls the
/// tool with them (the client checks each result against the output schema), and prints one
/// JSON line per case: `{"schema": VALID, "warden": CALLED_OK}`, then both schemas.
const SCHEMA_CLIENT: &str = r#"
import asyncio, json, sys
import jsonschema
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

async def main(url, mode, tool, cases):
    async with Client(streamable_http_client(url), mode=mode) as client:
        tools = await client.list_tools()
        listed = next(t for t in tools.tools if t.name == tool)
        schema = listed.input_schema
        validator = jsonschema.Draft202012Validator(schema)
        jsonschema.Draft202012Validator.check_schema(schema)
        for case in json.loads(cases):
            valid = validator.is_valid(case)
            result = await client.call_tool(tool, case)
            print(json.dumps({"schema": valid, "warden": not result.is_error}))
        print(json.dumps({"input": schema, "output": listed.output_schema}))

asyncio.run(main(*sys.argv[1:]))
"#;

#[tokio::test]
async fn a_shared_wit_type_is_a_ref_to_defs_and_schema_and_warden_refuse_the_same_inputs() {
    let fixture = Fixture::new("[plugins.testbed]\ncomponent = \"{testbed}\"\n");
    let server = fixture.http_server(&[]).await;
    let point = json!({"tiny": 1, "label": "a", "on": true});
    let nested = |origin: Value, points: Value| json!({"value": {"id": 1, "origin": origin, "points": points, "tags": []}});
    let cases = json!([
        nested(point.clone(), json!([point, point])),
        nested(Value::Null, json!([])),
        // Bad inside the shared type, in each place it is used.
        nested(json!({"tiny": 256, "label": "a", "on": true}), json!([])),
        nested(point.clone(), json!([{"tiny": 1, "label": "a"}])),
        nested(
            point.clone(),
            json!([{"tiny": 1, "label": "a", "on": true, "extra": 1}])
        ),
        nested(json!({"tiny": "1", "label": "a", "on": true}), json!([])),
        json!({"value": {"id": 1, "points": [], "tags": [], "more": 1}}),
        json!({"value": {"id": -1, "points": [], "tags": []}}),
    ]);
    for mode in ["legacy", "2026-07-28"] {
        let args = [
            server.url.clone(),
            mode.to_owned(),
            "testbed__echo_nested".to_owned(),
            cases.to_string(),
        ];
        let output = run_python(&fixture, "schema.py", SCHEMA_CLIENT, &args).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{mode}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        let (verdicts, schemas) = lines.split_at(lines.len() - 1);
        let schema = &schemas[0]["input"];
        // The result (a `nested` too) has its own $defs, and the Python client validated each
        // successful call's structured content against it, $refs resolved.
        let output = &schemas[0]["output"];
        assert_eq!(
            output["properties"]["points"]["items"],
            json!({"$ref": "#/$defs/point"}),
            "{mode}: {output}"
        );
        assert_eq!(output["$defs"]["point"], schema["$defs"]["point"]);
        assert_eq!(
            schema["properties"]["value"]["properties"]["origin"]["anyOf"][0],
            json!({"$ref": "#/$defs/point"}),
            "{mode}: {schema}"
        );
        assert_eq!(
            schema["properties"]["value"]["properties"]["points"]["items"],
            json!({"$ref": "#/$defs/point"})
        );
        assert_eq!(schema["$defs"]["point"]["additionalProperties"], false);
        let expected = [true, true, false, false, false, false, false, false];
        for (i, verdict) in verdicts.iter().enumerate() {
            assert_eq!(
                verdict,
                &json!({"schema": expected[i], "warden": expected[i]}),
                "{mode}: case {i}: {}",
                cases[i]
            );
        }
    }
}

/// Follows `nextCursor` through `tools/list`, `prompts/list` and `resources/list` with the
/// Python `mcp` client (`cache_mode="bypass"`), counts the pages, sends a made-up cursor, and
/// prints one JSON line: `{"tools": [NAME...], "tool_pages", "prompts", "prompt_pages",
/// "resources", "emit_icons", "prompt_icons", "bad_cursor": ERROR_CODE}`.
const PAGING_CLIENT: &str = r#"
import asyncio, json, sys
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

async def follow(list_page, field):
    items, pages, cursor = [], 0, None
    while True:
        page = await list_page(cursor=cursor, cache_mode="bypass")
        pages += 1
        items.extend(getattr(page, field))
        cursor = page.next_cursor
        if not cursor:
            return items, pages

def icons(item):
    return [icon.model_dump(mode="json", exclude_none=True, by_alias=True) for icon in (item.icons or [])]

async def main(url, mode):
    async with Client(streamable_http_client(url), mode=mode) as client:
        tools, tool_pages = await follow(client.list_tools, "tools")
        prompts, prompt_pages = await follow(client.list_prompts, "prompts")
        resources, _ = await follow(client.list_resources, "resources")
        try:
            await client.list_tools(cursor="bogus", cache_mode="bypass")
            bad = None
        except MCPError as e:
            bad = e.error.code
        print(json.dumps({
            "tools": [t.name for t in tools], "tool_pages": tool_pages,
            "prompts": len(prompts), "prompt_pages": prompt_pages,
            "resources": len(resources),
            "emit_icons": icons(next(t for t in tools if t.name == "testbed__emit")),
            "prompt_icons": icons(prompts[0]),
            "bad_cursor": bad,
        }))

asyncio.run(main(*sys.argv[1:]))
"#;

#[tokio::test]
async fn the_python_client_follows_cursors_and_sees_icons_in_both_eras() {
    let fixture = Fixture::new(
        "[server]\npage_size = 4\n\n\
         [plugins.testbed]\ncomponent = \"{testbed}\"\n\n\
         [plugins.testbed.tools.emit]\n\
         icons = [{ src = \"https://icons.example.com/emit.png\", mime_type = \"image/png\", sizes = [\"48x48\"] }]\n\n\
         [plugins.conformance]\ncomponent = \"{conformance}\"\nprefix = \"\"\n\
         icons = [{ src = \"https://icons.example.com/fixture.svg\", sizes = [\"any\"], theme = \"dark\" }]\n",
    );
    let server = fixture.http_server(&[]).await;
    let all = server
        .connect(server.client_config(None), ClientLifecycleMode::Initialize)
        .await
        .expect("connect");
    let expected: Vec<String> = all
        .list_all_tools()
        .await
        .expect("tools")
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    let _ = all.cancel().await;
    for mode in ["legacy", "2026-07-28"] {
        let args = [server.url.clone(), mode.to_owned()];
        let output = run_python(&fixture, "paging.py", PAGING_CLIENT, &args).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{mode}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let seen: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
        assert_eq!(seen["tools"], json!(expected), "{mode}");
        assert_eq!(
            seen["tool_pages"],
            json!(expected.len().div_ceil(4)),
            "{mode}"
        );
        let prompts = seen["prompts"].as_u64().unwrap_or_default();
        assert!(prompts >= 4, "{mode}: {seen}");
        assert_eq!(
            seen["prompt_pages"],
            json!(prompts.div_ceil(4)),
            "{mode}: {seen}"
        );
        assert!(seen["resources"].as_u64() >= Some(3), "{mode}: {seen}");
        assert_eq!(
            seen["emit_icons"],
            json!([{"src": "https://icons.example.com/emit.png", "mimeType": "image/png", "sizes": ["48x48"]}]),
            "{mode}"
        );
        assert_eq!(
            seen["prompt_icons"],
            json!([{"src": "https://icons.example.com/fixture.svg", "sizes": ["any"], "theme": "dark"}]),
            "{mode}"
        );
        assert_eq!(seen["bad_cursor"], json!(-32602), "{mode}");
    }
}

#[tokio::test]
async fn the_standalone_stream_resumes_with_what_it_missed_once() {
    let fixture = closing_fixture();
    let server = fixture.http_server(&[]).await;
    let ann = open_session(&server).await;
    let set_level = json!({"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": {"level": "debug"}});
    let done = session(&server, &ann, reqwest::Method::POST, Some(&set_level), None).await;
    let _ = events(done, Duration::from_secs(10)).await;

    // The standalone stream: its priming event, then the server cuts it.
    let standalone = session(&server, &ann, reqwest::Method::GET, None, None).await;
    assert_eq!(standalone.status(), 200);
    let (first, ended) = events(standalone, Duration::from_secs(30)).await;
    assert!(ended, "cut by sse_close_after");
    let (priming, _) = first.first().expect("a priming event").clone();

    // While no stream is open, a call logs three messages (logs go to the standalone stream).
    let call = json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "testbed__progress", "arguments": {"steps": 3}}
    });
    let answered = session(&server, &ann, reqwest::Method::POST, Some(&call), None).await;
    let (answer, _) = events(answered, Duration::from_secs(30)).await;
    assert!(result_of(&answer, 2).is_some(), "{answer:?}");

    let logs = |events: &[(String, String)]| -> Vec<(String, String)> {
        events
            .iter()
            .filter_map(|(id, data)| {
                let message: Value = serde_json::from_str(data).ok()?;
                (message["method"] == "notifications/message").then(|| {
                    (
                        id.clone(),
                        message["params"]["data"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
            })
            .collect()
    };
    let resumed = session(&server, &ann, reqwest::Method::GET, None, Some(&priming)).await;
    let (missed, _) = events(resumed, Duration::from_secs(30)).await;
    let missed = logs(&missed);
    let texts: Vec<&str> = missed.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(
        texts,
        ["step 1 of 3", "step 2 of 3", "step 3 of 3"],
        "{missed:?}"
    );

    // Resuming after the last one it got: nothing again.
    let (last, _) = missed.last().expect("logs").clone();
    let again = session(&server, &ann, reqwest::Method::GET, None, Some(&last)).await;
    let (repeated, _) = events(again, Duration::from_secs(30)).await;
    assert!(logs(&repeated).is_empty(), "after {last}: {repeated:?}");
    // An id of rmcp's own request-stream form names nothing.
    let foreign = session(&server, &ann, reqwest::Method::GET, None, Some("0/1")).await;
    let (got, ended) = events(foreign, Duration::from_secs(10)).await;
    assert!(ended && got.is_empty(), "{got:?}");
}
