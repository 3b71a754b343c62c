//! The `conformance` plugin: the tools that the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`) calls in its server scenarios, a fixture for
//! `tests/conformance.rs`, never for production.
//!
//! Each tool returns exactly what the suite's scenario describes (texts, MIME types, URIs, the
//! number and spacing of log and progress messages); `tests/conformance/warden.toml` exposes
//! them under the suite's names (`test_simple_text`, ...), which WIT's kebab-case cannot spell.

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

export!(Conformance);
