//! From a function's returned value to MCP content, and the output size cap.
//!
//! - `result<T, E>`: `ok` is presented as `T` would be; `err` becomes `isError: true` with `E`
//!   as text (a string as is, anything else as JSON).
//! - a string is one text block; a `warden:mcp/types.tool-result` maps block by block; a
//!   record is `structuredContent` plus its JSON as text; any other value is
//!   `structuredContent: {"result": value}` plus the value's JSON as text.

use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};
use serde_json::{Value, json};
use wasmtime::component::Val;

use crate::catalog::{OutputShape, output_shape};
use crate::schema::{ExportedFunction, WitType, to_json};

/// The plugin returned something that cannot be passed on.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("the tool returned a value that does not match its declared type")]
    Mismatch,
    #[error("the tool returned structured content that is not valid JSON")]
    InvalidStructured,
    #[error("the tool returned a content block warden does not understand")]
    BadContent,
    #[error("the tool's output ({size} bytes) exceeds its limit of {limit} bytes")]
    TooLarge { size: usize, limit: u64 },
}

/// Present `value`, returned by `function`, as an MCP tool result.
pub fn to_result(
    function: &ExportedFunction,
    value: Option<Val>,
) -> Result<CallToolResult, OutputError> {
    match (&function.result, value) {
        (None, _) => Ok(CallToolResult::success(Vec::new())),
        (Some(WitType::Result { ok, err }), Some(Val::Result(result))) => match result {
            Ok(value) => present(ok.as_deref(), value.map(|v| *v)),
            Err(value) => {
                let text = match (err.as_deref(), value) {
                    (Some(WitType::String), Some(v)) => match *v {
                        Val::String(s) => s,
                        _ => return Err(OutputError::Mismatch),
                    },
                    (Some(ty), Some(v)) => to_json(ty, &v)
                        .map_err(|_| OutputError::Mismatch)?
                        .to_string(),
                    _ => "the tool reported an error".to_string(),
                };
                Ok(CallToolResult::error(vec![ContentBlock::text(text)]))
            }
        },
        (Some(ty), Some(value)) => present(Some(ty), Some(value)),
        (Some(_), None) => Err(OutputError::Mismatch),
    }
}

fn present(ty: Option<&WitType>, value: Option<Val>) -> Result<CallToolResult, OutputError> {
    let (ty, value) = match (ty, value) {
        (Some(ty), Some(value)) => (ty, value),
        (None, None) => return Ok(CallToolResult::success(Vec::new())),
        _ => return Err(OutputError::Mismatch),
    };
    match output_shape(Some(ty)) {
        OutputShape::Empty => Ok(CallToolResult::success(Vec::new())),
        OutputShape::Text => match value {
            Val::String(text) => Ok(CallToolResult::success(vec![ContentBlock::text(text)])),
            _ => Err(OutputError::Mismatch),
        },
        OutputShape::Content => content(to_json(ty, &value).map_err(|_| OutputError::Mismatch)?),
        OutputShape::Object => {
            let json = to_json(ty, &value).map_err(|_| OutputError::Mismatch)?;
            Ok(structured(json.to_string(), json))
        }
        OutputShape::Wrapped => {
            let json = to_json(ty, &value).map_err(|_| OutputError::Mismatch)?;
            Ok(structured(json.to_string(), json!({ "result": json })))
        }
    }
}

fn structured(text: String, structured: Value) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    result
}

/// Map a `tool-result` (in its JSON form) to content blocks.
fn content(json: Value) -> Result<CallToolResult, OutputError> {
    let blocks = json
        .get("content")
        .and_then(Value::as_array)
        .ok_or(OutputError::BadContent)?
        .iter()
        .map(block)
        .collect::<Result<Vec<_>, _>>()?;
    let mut result = CallToolResult::success(blocks);
    if let Some(text) = json.get("structured").and_then(Value::as_str) {
        let value: Value =
            serde_json::from_str(text).map_err(|_| OutputError::InvalidStructured)?;
        result.structured_content = Some(value);
    }
    Ok(result)
}

/// One `warden:mcp/types.content` (in its JSON form) as an MCP content block.
pub(super) fn block(json: &Value) -> Result<ContentBlock, OutputError> {
    let tag = json
        .get("tag")
        .and_then(Value::as_str)
        .ok_or(OutputError::BadContent)?;
    let value = json.get("value").ok_or(OutputError::BadContent)?;
    let str_field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
    let media = || -> Result<(String, String), OutputError> {
        Ok((
            str_field("data").ok_or(OutputError::BadContent)?,
            str_field("mime_type").ok_or(OutputError::BadContent)?,
        ))
    };
    Ok(match tag {
        "text" => ContentBlock::text(value.as_str().ok_or(OutputError::BadContent)?),
        "image" => {
            let (data, mime) = media()?;
            ContentBlock::image(data, mime)
        }
        "audio" => {
            let (data, mime) = media()?;
            ContentBlock::audio(data, mime)
        }
        "resource" => {
            let uri = str_field("uri").ok_or(OutputError::BadContent)?;
            let mime_type = str_field("mime_type");
            let body = value.get("body").ok_or(OutputError::BadContent)?;
            let body_value = body
                .get("value")
                .and_then(Value::as_str)
                .ok_or(OutputError::BadContent)?;
            let contents = match body.get("tag").and_then(Value::as_str) {
                Some("text") => ResourceContents::TextResourceContents {
                    uri,
                    mime_type,
                    text: body_value.to_string(),
                    meta: None,
                },
                Some("blob") => ResourceContents::BlobResourceContents {
                    uri,
                    mime_type,
                    blob: body_value.to_string(),
                    meta: None,
                },
                _ => return Err(OutputError::BadContent),
            };
            ContentBlock::resource(contents)
        }
        "resource_link" => {
            let mut link = rmcp::model::Resource::new(
                str_field("uri").ok_or(OutputError::BadContent)?,
                str_field("name").ok_or(OutputError::BadContent)?,
            );
            link.description = str_field("description");
            link.mime_type = str_field("mime_type");
            ContentBlock::resource_link(link)
        }
        _ => return Err(OutputError::BadContent),
    })
}

/// The size of `value` serialized as JSON, in bytes, without building the JSON.
pub fn serialized_size<T: serde::Serialize + ?Sized>(value: &T) -> u64 {
    struct Counter(u64);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => u64::MAX,
    }
}

/// Cut `result`, `size` bytes serialized, to fit `limit` bytes: blocks are kept in order
/// while they fit, the text block that does not is cut at a character boundary, later blocks
/// are dropped, and a last text block says what happened. Structured content cannot be cut
/// and still match the tool's output schema, so it is dropped and the result becomes an
/// error carrying the cut text.
pub fn truncate(result: &mut CallToolResult, size: u64, limit: u64) {
    let marker = ContentBlock::text(format!(
        "[output truncated: {size} bytes exceed the limit of {limit} bytes]"
    ));
    if result.structured_content.take().is_some() {
        result.is_error = Some(true);
    }
    let blocks = std::mem::take(&mut result.content);
    result.content = vec![marker.clone()];
    let base = serialized_size(result);
    let mut remaining = limit.saturating_sub(base);
    let mut kept = Vec::new();
    for block in blocks {
        let cost = serialized_size(&block) + 1; // and a comma
        if cost <= remaining {
            remaining -= cost;
            kept.push(block);
            continue;
        }
        if let ContentBlock::Text(mut text) = block {
            let overhead = {
                let mut empty = text.clone();
                empty.text = String::new();
                serialized_size(&ContentBlock::Text(empty)) + 1
            };
            if let Some(budget) = remaining.checked_sub(overhead) {
                let end = escaped_prefix(&text.text, budget);
                if end > 0 {
                    text.text.truncate(end);
                    kept.push(ContentBlock::Text(text));
                }
            }
        }
        break;
    }
    kept.push(marker);
    result.content = kept;
}

/// The longest prefix of `text` (in bytes, at a character boundary) whose JSON-escaped form
/// takes at most `budget` bytes.
fn escaped_prefix(text: &str, budget: u64) -> usize {
    let mut used = 0u64;
    for (index, c) in text.char_indices() {
        let cost = match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{08}' | '\u{0c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8() as u64,
        };
        if used + cost > budget {
            return index;
        }
        used += cost;
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialized_size_is_the_length_of_the_json() {
        let result = CallToolResult::success(vec![ContentBlock::text("héllo \"quoted\"\n")]);
        let json = serde_json::to_vec(&result).expect("serialize");
        assert_eq!(serialized_size(&result), json.len() as u64);
    }

    #[test]
    fn truncation_fits_the_limit_and_says_so() {
        for text in ["x".repeat(10_000), "é\"\n\u{1}".repeat(3_000)] {
            let mut result = CallToolResult::success(vec![
                ContentBlock::text("first"),
                ContentBlock::text(text.clone()),
                ContentBlock::text("dropped"),
            ]);
            let size = serialized_size(&result);
            truncate(&mut result, size, 2048);
            let after = serialized_size(&result);
            assert!(after <= 2048 && after > 1900, "{after}");
            assert_eq!(result.content.len(), 3);
            let last = serde_json::to_string(&result.content[2]).expect("json");
            assert!(last.contains("output truncated"), "{last}");
            assert_ne!(result.is_error, Some(true));
        }
    }

    #[test]
    fn truncating_structured_content_makes_an_error() {
        let mut result = CallToolResult::success(vec![ContentBlock::text("y".repeat(5000))]);
        result.structured_content = Some(serde_json::json!({"big": "y".repeat(5000)}));
        let size = serialized_size(&result);
        truncate(&mut result, size, 1024);
        assert!(serialized_size(&result) <= 1024);
        assert!(result.structured_content.is_none());
        assert_eq!(result.is_error, Some(true));
    }
}
