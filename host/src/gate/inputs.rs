//! A plugin's questions as MCP input requests (2026-07-28), and the client's answers to them.
//!
//! Each question has a key: the one the plugin chose (`ask`), or the host's (`elicit-N`,
//! `sample-N`, `roots-N`: the N-th question of the run, for `elicit`, `sample` and `roots`).
//! A question not answered yet becomes an entry of the `inputRequests` of an `input_required`
//! result under its key; the client's answer comes back under the same key in
//! `inputResponses`. An answer is read as the kind of question its key was asked as (an
//! `ElicitResult`, a `CreateMessageResult`, a `ListRootsResult`); one that is not is refused
//! with invalid params, never handed to the plugin. Answers already taken travel in the sealed
//! `requestState` with their kind, so a later round cannot reinterpret them.

#![allow(deprecated)] // Sampling and roots are deprecated by SEP-2577 but still in both eras.

use std::collections::BTreeMap;

use rmcp::model::{
    CreateMessageRequestParams, CreateMessageResult, InputRequest, ListRootsResult, Role,
    SamplingMessage,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::runtime::{Ask, Elicited, Root, SampleRequest, SampleRole, Sampled};

/// The longest key a plugin may choose, in bytes.
pub const MAX_KEY: usize = 64;

/// The kind of a question: what its answer must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Elicit,
    Sample,
    Roots,
}

impl Kind {
    pub fn of(ask: &Ask) -> Self {
        match ask {
            Ask::Elicit { .. } => Kind::Elicit,
            Ask::Sample(_) => Kind::Sample,
            Ask::Roots => Kind::Roots,
        }
    }

    /// The MCP client capability a question of this kind needs.
    pub fn capability(self) -> &'static str {
        match self {
            Kind::Elicit => "elicitation",
            Kind::Sample => "sampling",
            Kind::Roots => "roots",
        }
    }

    /// The host's key for the `index`-th question of a run, when the plugin chose none.
    pub fn host_key(self, index: usize) -> String {
        let prefix = match self {
            Kind::Elicit => "elicit",
            Kind::Sample => "sample",
            Kind::Roots => "roots",
        };
        format!("{prefix}-{index}")
    }

    /// What an answer of this kind looks like, for the error that refuses one that is not.
    pub fn expected(self) -> &'static str {
        match self {
            Kind::Elicit => {
                r#"an elicitation answer: {"action": "accept" | "decline" | "cancel", "content": {...}}"#
            }
            Kind::Sample => {
                r#"a sampling answer: {"role": "assistant", "content": {"type": "text", "text": "..."}, "model": "..."}"#
            }
            Kind::Roots => r#"a roots answer: {"roots": [{"uri": "file:///...", "name": "..."}]}"#,
        }
    }
}

/// The client capabilities a request declared (2026-07-28: in its own `_meta`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Declared {
    /// Form elicitation.
    pub elicitation: bool,
    pub sampling: bool,
    pub roots: bool,
}

impl Declared {
    pub fn has(self, kind: Kind) -> bool {
        match kind {
            Kind::Elicit => self.elicitation,
            Kind::Sample => self.sampling,
            Kind::Roots => self.roots,
        }
    }
}

/// An answer the client gave: from this request's `inputResponses` (`kind: None`, not read
/// yet), or sealed in the state by an earlier round (with the kind it was taken as).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Given {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    pub value: Value,
}

/// Answers by key.
pub type Answers = BTreeMap<String, Given>;

/// Whether `key` is one a plugin may choose: why not, when it is not.
pub fn check_key(key: &str) -> Result<(), String> {
    let shown = crate::audit::bounded(key, MAX_KEY);
    if key.is_empty() {
        return Err("a question's key is empty".to_owned());
    }
    if key.len() > MAX_KEY {
        return Err(format!(
            "the key `{shown}` is longer than {MAX_KEY} characters"
        ));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "the key `{shown}` has the character {c:?}; keys are made of a-z A-Z 0-9 _ - ."
        ));
    }
    if key == super::APPROVAL_KEY || is_host_key(key) {
        return Err(format!(
            "the key `{key}` is the host's own (approval, elicit-N, sample-N, roots-N)"
        ));
    }
    Ok(())
}

/// `elicit-N`, `sample-N`, `roots-N`.
fn is_host_key(key: &str) -> bool {
    ["elicit-", "sample-", "roots-"].iter().any(|prefix| {
        key.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// An `elicitation/create` (form mode) request, as an `inputRequests` entry.
pub fn form_request(message: &str, schema: &Value) -> InputRequest {
    let request = json!({
        "method": "elicitation/create",
        "params": {"mode": "form", "message": message, "requestedSchema": schema},
    });
    // Both come from the gate, and `schema` was read as an elicitation schema already.
    serde_json::from_value(request).unwrap_or_else(|_| {
        serde_json::from_value(json!({
            "method": "elicitation/create",
            "params": {
                "mode": "form",
                "message": message,
                "requestedSchema": {"type": "object", "properties": {}},
            },
        }))
        .expect("a fixed elicitation request parses")
    })
}

/// A `sampling/createMessage` request, as an `inputRequests` entry.
pub fn sample_request(request: &SampleRequest) -> Option<InputRequest> {
    let messages = request
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                SampleRole::User => Role::User,
                SampleRole::Assistant => Role::Assistant,
            };
            SamplingMessage::new(role, m.text.clone())
        })
        .collect();
    let mut params = CreateMessageRequestParams::new(messages, request.max_tokens);
    params.system_prompt = request.system_prompt.clone();
    serde_json::from_value(json!({"method": "sampling/createMessage", "params": params})).ok()
}

/// A `roots/list` request, as an `inputRequests` entry.
pub fn roots_request() -> InputRequest {
    serde_json::from_value(json!({"method": "roots/list", "params": {}}))
        .expect("a fixed roots request parses")
}

/// What the client said, read as the answer to a question of `kind`; `Err` says what an
/// answer of that kind looks like.
pub enum Read {
    Elicit(Elicited),
    Sample(Sampled),
    Roots(Vec<Root>),
}

/// Read `given` as the answer to a question of `kind`.
pub fn read(kind: Kind, given: &Given) -> Result<Read, String> {
    if given.kind.is_some_and(|k| k != kind) {
        return Err(kind.expected().to_owned());
    }
    let value = &given.value;
    let read = match kind {
        Kind::Elicit => elicited(value).map(Read::Elicit),
        Kind::Sample => serde_json::from_value::<CreateMessageResult>(value.clone())
            .ok()
            .map(|answer| Read::Sample(Sampled::from(answer))),
        Kind::Roots => serde_json::from_value::<ListRootsResult>(value.clone())
            .ok()
            .map(|listed| {
                Read::Roots(
                    listed
                        .roots
                        .into_iter()
                        .map(|r| Root {
                            uri: r.uri,
                            name: r.name,
                        })
                        .collect(),
                )
            }),
    };
    read.ok_or_else(|| kind.expected().to_owned())
}

/// An `ElicitResult`: an action, and for `accept` an object of content (or none).
fn elicited(value: &Value) -> Option<Elicited> {
    let object = value.as_object()?;
    match object.get("action").and_then(Value::as_str) {
        Some("accept") => match object.get("content") {
            None | Some(Value::Null) => Some(Elicited::Accept("{}".to_owned())),
            Some(content @ Value::Object(_)) => Some(Elicited::Accept(content.to_string())),
            Some(_) => None,
        },
        Some("decline") => Some(Elicited::Decline),
        Some("cancel") => Some(Elicited::Cancel),
        _ => None,
    }
}

/// Whether `value` is an `ElicitResult`.
pub fn is_elicit_answer(value: &Value) -> bool {
    elicited(value).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_keys_are_short_plain_and_not_the_hosts() {
        for good in [
            "user_name",
            "greeting",
            "client_roots",
            "a.b-c_9",
            "elicit-x",
            "sample-",
        ] {
            assert_eq!(check_key(good), Ok(()), "{good}");
        }
        let long = "k".repeat(MAX_KEY + 1);
        for bad in [
            "",
            "has space",
            "ünï",
            "a/b",
            &long,
            "approval",
            "elicit-0",
            "roots-12",
        ] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_answer_is_read_as_its_questions_kind_only() {
        let elicit = json!({"action": "accept", "content": {"name": "Alice"}});
        let sample = json!({
            "role": "assistant",
            "content": {"type": "text", "text": "Paris"},
            "model": "m",
            "stopReason": "endTurn",
        });
        let roots = json!({"roots": [{"uri": "file:///w", "name": "w"}]});
        let given = |value: &Value| Given {
            kind: None,
            value: value.clone(),
        };
        assert!(
            matches!(read(Kind::Elicit, &given(&elicit)), Ok(Read::Elicit(Elicited::Accept(c))) if c == r#"{"name":"Alice"}"#)
        );
        assert!(
            matches!(read(Kind::Sample, &given(&sample)), Ok(Read::Sample(s)) if s.text == "Paris")
        );
        assert!(matches!(read(Kind::Roots, &given(&roots)), Ok(Read::Roots(r)) if r.len() == 1));
        // The wrong kind, or no answer at all.
        assert!(read(Kind::Elicit, &given(&sample)).is_err());
        assert!(read(Kind::Sample, &given(&elicit)).is_err());
        assert!(read(Kind::Roots, &given(&json!(12345))).is_err());
        assert!(
            read(
                Kind::Elicit,
                &given(&json!({"action": "accept", "content": 3}))
            )
            .is_err()
        );
        // A sealed answer keeps the kind it was taken as.
        let sealed = Given {
            kind: Some(Kind::Sample),
            value: elicit,
        };
        assert!(read(Kind::Elicit, &sealed).is_err());
    }

    #[test]
    fn input_requests_carry_the_mcp_methods() {
        let sample = SampleRequest {
            messages: vec![crate::runtime::SampleMessage {
                role: SampleRole::User,
                text: "Hi".to_owned(),
            }],
            system_prompt: None,
            max_tokens: 50,
        };
        let request =
            serde_json::to_value(sample_request(&sample).expect("request")).expect("json");
        assert_eq!(request["method"], "sampling/createMessage");
        assert_eq!(request["params"]["maxTokens"], 50);
        assert_eq!(request["params"]["messages"][0]["content"]["text"], "Hi");
        let roots = serde_json::to_value(roots_request()).expect("json");
        assert_eq!(roots["method"], "roots/list");
    }
}
