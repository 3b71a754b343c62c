//! `json-query`: JSON Pointer (RFC 6901) or a small jq-like path.

use serde_json::Value;

/// One step of a jq-like path.
#[derive(Debug, PartialEq)]
enum Step {
    /// `.key`, `."key"` or `["key"]`.
    Key(String),
    /// `[n]`; negative counts from the end.
    Index(i64),
    /// `[]`: every element of an array or value of an object.
    Each,
}

/// Evaluates `path` against `document`.
pub fn run(document: &Value, path: &str) -> Result<Value, String> {
    let path = path.trim();
    if path.is_empty() || path.starts_with('/') {
        return document
            .pointer(path)
            .cloned()
            .ok_or_else(|| format!("nothing at JSON Pointer {path:?}"));
    }
    let steps = parse(path)?;
    let iterates = steps.contains(&Step::Each);
    let mut current = vec![document];
    let mut done = String::new();
    for step in &steps {
        let mut next = Vec::with_capacity(current.len());
        for value in current {
            apply(step, value, &done, &mut next)?;
        }
        current = next;
        match step {
            Step::Key(key) if !key.is_empty() && key.bytes().all(is_key_byte) => {
                done.push_str(&format!(".{key}"));
            }
            Step::Key(key) => done.push_str(&format!("[{}]", Value::from(key.as_str()))),
            Step::Index(i) => done.push_str(&format!("[{i}]")),
            Step::Each => done.push_str("[]"),
        }
    }
    Ok(if iterates {
        Value::Array(current.into_iter().cloned().collect())
    } else {
        current.pop().cloned().unwrap_or(Value::Null)
    })
}

fn apply<'a>(
    step: &Step,
    value: &'a Value,
    at: &str,
    out: &mut Vec<&'a Value>,
) -> Result<(), String> {
    let at = if at.is_empty() { "." } else { at };
    match (step, value) {
        (Step::Key(key), Value::Object(map)) => {
            out.push(
                map.get(key)
                    .ok_or_else(|| format!("no key {key:?} at {at}"))?,
            );
        }
        (Step::Index(i), Value::Array(items)) => {
            let len = items.len() as i64;
            let index = if *i < 0 { len + i } else { *i };
            if !(0..len).contains(&index) {
                return Err(format!("index {i} out of range at {at} (length {len})"));
            }
            out.push(&items[index as usize]);
        }
        (Step::Each, Value::Array(items)) => out.extend(items),
        (Step::Each, Value::Object(map)) => out.extend(map.values()),
        (Step::Key(key), other) => {
            return Err(format!(
                "cannot take key {key:?} of {} at {at}",
                kind(other)
            ));
        }
        (Step::Index(i), other) => {
            return Err(format!("cannot take index {i} of {} at {at}", kind(other)));
        }
        (Step::Each, other) => return Err(format!("cannot iterate over {} at {at}", kind(other))),
    }
    Ok(())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses `.a."b c"[0][-1][]["d"]` into steps; `.` alone is the identity (no steps).
fn parse(path: &str) -> Result<Vec<Step>, String> {
    let bad =
        |why: &str, at: usize| format!("invalid path {path:?} at character {}: {why}", at + 1);
    if !path.starts_with(['.', '[']) {
        return Err(bad("a path starts with `.`, `[` or `/`", 0));
    }
    let bytes = path.as_bytes();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                i += 1;
                match bytes.get(i) {
                    None | Some(b'[') => {}
                    Some(b'"') => {
                        let (key, end) = quoted(path, i).map_err(|why| bad(&why, i))?;
                        steps.push(Step::Key(key));
                        i = end;
                    }
                    Some(_) => {
                        let start = i;
                        while i < bytes.len() && is_key_byte(bytes[i]) {
                            i += 1;
                        }
                        if i == start {
                            return Err(bad("expected a key after `.`", start));
                        }
                        steps.push(Step::Key(path[start..i].to_owned()));
                    }
                }
            }
            b'[' => {
                let open = i;
                i += 1;
                if bytes.get(i) == Some(&b']') {
                    steps.push(Step::Each);
                } else if bytes.get(i) == Some(&b'"') {
                    let (key, end) = quoted(path, i).map_err(|why| bad(&why, i))?;
                    steps.push(Step::Key(key));
                    i = end;
                } else {
                    let start = i;
                    while i < bytes.len() && (bytes[i] == b'-' || bytes[i].is_ascii_digit()) {
                        i += 1;
                    }
                    let index = path[start..i].parse().map_err(|_| {
                        bad("expected `]`, a number or a quoted key after `[`", open)
                    })?;
                    steps.push(Step::Index(index));
                }
                if bytes.get(i) != Some(&b']') {
                    return Err(bad("expected `]`", i));
                }
                i += 1;
            }
            _ => return Err(bad("expected `.` or `[`", i)),
        }
    }
    Ok(steps)
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'$' || b >= 0x80
}

/// Reads the JSON string starting at `start` (a `"`); returns it and the index after it.
fn quoted(path: &str, start: usize) -> Result<(String, usize), String> {
    let bytes = path.as_bytes();
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => {
                let key = serde_json::from_str(&path[start..=i]).map_err(|e| e.to_string())?;
                return Ok((key, i + 1));
            }
            _ => i += 1,
        }
    }
    Err("unterminated string".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(doc: &Value, path: &str) -> Result<Value, String> {
        run(doc, path)
    }

    #[test]
    fn paths() {
        let doc =
            json!({"items": [{"name": "a", "n": 1}, {"name": "b"}], "odd key": {"x-y": true}});
        assert_eq!(q(&doc, ".").unwrap(), doc);
        assert_eq!(q(&doc, "").unwrap(), doc);
        assert_eq!(q(&doc, "/items/1/name").unwrap(), json!("b"));
        assert_eq!(q(&doc, ".items[0].name").unwrap(), json!("a"));
        assert_eq!(q(&doc, ".items[-1].name").unwrap(), json!("b"));
        assert_eq!(q(&doc, ".items[].name").unwrap(), json!(["a", "b"]));
        assert_eq!(q(&doc, ".\"odd key\".x-y").unwrap(), json!(true));
        assert_eq!(q(&doc, "[\"odd key\"][\"x-y\"]").unwrap(), json!(true));
        assert_eq!(q(&doc, ".items.[0].n").unwrap(), json!(1));
        assert_eq!(q(&doc, ".[\"items\"][]").unwrap(), doc["items"]);
        assert!(
            q(&doc, ".items[].n")
                .unwrap_err()
                .contains("no key \"n\" at .items[]")
        );
        assert!(q(&doc, ".items[2]").unwrap_err().contains("out of range"));
        assert!(
            q(&doc, ".items.name")
                .unwrap_err()
                .contains("cannot take key")
        );
        assert!(q(&doc, "items").is_err());
        assert!(q(&doc, ".items[").is_err());
        assert!(q(&doc, ".\"open").is_err());
        assert!(q(&doc, "/nope").is_err());
    }
}
