//! Every detector on its own, with the values that must be left alone.

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock};
use std::borrow::Cow;

use serde_json::json;

use super::*;
use crate::manifest::CustomDetector;

const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\n-----END RSA PRIVATE KEY-----";
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

fn detectors() -> Arc<Detectors> {
    let custom = [CustomDetector {
        name: "employee-id".into(),
        pattern: "EMP-[0-9]{6}".into(),
        location: crate::manifest::Location {
            file: "w.toml".into(),
            line: 1,
            column: 1,
            key: "filters.custom[0]".into(),
        },
    }];
    Arc::new(Detectors::new(&custom).expect("compile"))
}

fn all() -> OutputFilter {
    OutputFilter::all(detectors(), &["s3cr3t-value!".to_owned()])
}

fn redact(filter: &OutputFilter, text: &str) -> (String, Redactions) {
    let mut counts = Redactions::new();
    let out = filter.redact_str(text, &mut counts);
    (out, counts)
}

#[track_caller]
fn redacted_as(text: &str, kind: &str) {
    let (out, counts) = redact(&all(), &format!("before {text} after"));
    assert_eq!(out, format!("before [REDACTED:{kind}] after"), "{text}");
    assert_eq!(counts.get(kind), Some(&1), "{text}: {counts:?}");
}

#[track_caller]
fn untouched(text: &str) {
    let (out, counts) = redact(&all(), text);
    assert_eq!(out, text);
    assert!(counts.is_empty(), "{text}: {counts:?}");
}

#[test]
fn each_detector_redacts_its_kind() {
    redacted_as("jane.doe+tag@example.co.uk", "email");
    redacted_as("4111 1111 1111 1111", "credit-card");
    redacted_as("5555555555554444", "credit-card");
    redacted_as("123-45-6789", "ssn");
    redacted_as("AKIAIOSFODNN7EXAMPLE", "aws-key");
    redacted_as("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "github-token");
    redacted_as(
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "github-token",
    );
    redacted_as("xoxb-1234567890-abcdefghij", "slack-token");
    redacted_as(
        "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
        "openai-key",
    );
    redacted_as("AIzaSyA-1234567890abcdefghijklmnopqrstu", "google-api-key");
    redacted_as("sk_live_abcdefghijklmnop1234", "stripe-key");
    redacted_as(PEM, "private-key");
    redacted_as(JWT, "jwt");
    redacted_as("EMP-123456", "employee-id");
    redacted_as("s3cr3t-value!", "secrets");
}

#[test]
fn lookalikes_are_left_alone() {
    untouched("4111111111111112"); // not Luhn-valid
    untouched("1234567812345670"); // Luhn-valid, no issuer
    untouched("order 8237461923847562 shipped"); // random 16 digits
    untouched("000-12-3456 and 123-45-67890");
    untouched("user@localhost and @handle");
    untouched("task-list and sk-short");
    untouched("a 20-digit id 41111111111111111111");
    untouched("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----");
    untouched("s3cr3t-valu");
}

#[test]
fn a_private_key_cut_short_is_redacted_to_the_end() {
    let (out, _) = redact(&all(), "key: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg");
    assert_eq!(out, "key: [REDACTED:private-key]");
}

#[test]
fn several_hits_in_one_text_are_all_replaced_and_counted() {
    let text = "a@b.io, c@d.io and 4111111111111111; token s3cr3t-value!";
    let (out, counts) = redact(&all(), text);
    assert_eq!(
        out,
        "[REDACTED:email], [REDACTED:email] and [REDACTED:credit-card]; token [REDACTED:secrets]"
    );
    assert_eq!(counts["email"], 2);
    assert_eq!(counts["credit-card"], 1);
    assert_eq!(counts["secrets"], 1);
}

#[test]
fn detectors_can_be_switched_off() {
    let filter = OutputFilter::new(detectors(), &["jwt".to_owned()], ["s3cr3t-value!"]);
    let text = format!("a@b.io s3cr3t-value! {JWT}");
    let (out, _) = redact(&filter, &text);
    assert_eq!(out, "a@b.io s3cr3t-value! [REDACTED:jwt]");
    let off = OutputFilter::new(detectors(), &[], ["s3cr3t-value!"]);
    assert!(!off.is_active());
}

#[test]
fn results_are_filtered_in_text_resources_and_structured_content() {
    let mut result = CallToolResult::success(vec![
        ContentBlock::text("mail a@b.io"),
        ContentBlock::resource(rmcp::model::ResourceContents::text(
            "key s3cr3t-value!",
            "file:///x",
        )),
    ]);
    result.structured_content = Some(json!({
        "nested": {"list": ["a@b.io", 4, {"jwt": JWT}]},
        "quoted": "say \"s3cr3t-value!\"",
    }));
    let counts = all().apply(&mut result);
    let text = serde_json::to_string(&result).expect("serialize");
    assert!(!text.contains("a@b.io") && !text.contains("s3cr3t") && !text.contains("eyJ"));
    let structured = result.structured_content.expect("structured");
    assert_eq!(structured["nested"]["list"][0], "[REDACTED:email]");
    assert_eq!(structured["nested"]["list"][2]["jwt"], "[REDACTED:jwt]");
    assert_eq!(
        counts["email"], 1,
        "the larger of text and structured counts"
    );
    assert_eq!(counts["secrets"], 1);
    assert_eq!(counts["jwt"], 1);
}

#[test]
fn secrets_are_found_in_their_json_escaped_form() {
    let filter = OutputFilter::all(detectors(), &["pa\"ss\\word".to_owned()]);
    let json_text = serde_json::to_string(&json!({"v": "pa\"ss\\word"})).expect("json");
    let (out, counts) = redact(&filter, &json_text);
    assert_eq!(out, r#"{"v":"[REDACTED:secrets]"}"#);
    assert_eq!(counts["secrets"], 1);
}

#[test]
fn audit_args_redact_keys_and_hits_and_cut_long_values() {
    let args = json!({
        "api_key": "abc",
        "text": "mail a@b.io",
        "long": "x".repeat(1000),
        "list": (0..100).collect::<Vec<_>>(),
    });
    let kept = audit_args(args.as_object(), &all());
    assert_eq!(kept["api_key"], "[REDACTED:key]");
    assert_eq!(kept["text"], "mail [REDACTED:email]");
    let long = kept["long"].as_str().expect("string");
    assert!(
        long.len() < 300 && long.ends_with("…(cut from 1000 bytes)"),
        "{long}"
    );
    assert_eq!(kept["list"].as_array().expect("array").len(), 33);
}

#[test]
fn audit_args_are_copied_only_when_something_in_them_changes() {
    let clean = json!({"path": "docs/a.md", "n": 3, "nested": {"list": [1, "two", null]}});
    let kept = audit_args(clean.as_object(), &all());
    assert!(matches!(kept, Cow::Borrowed(_)));

    let mut long_key = serde_json::Map::new();
    long_key.insert("k".repeat(300), json!(1));
    let mut deep = json!("bottom");
    for _ in 0..9 {
        deep = json!({ "a": deep });
    }
    let many: serde_json::Map<String, Value> =
        (0..33).map(|i| (format!("k{i}"), json!(i))).collect();
    for changed in [
        json!({"password": "x"}),
        json!({"nested": {"text": "mail a@b.io"}}),
        json!({"list": ["x".repeat(300)]}),
        json!({"list": (0..33).collect::<Vec<_>>()}),
        Value::Object(long_key),
        Value::Object(many),
        deep,
    ] {
        let kept = audit_args(changed.as_object(), &all());
        assert!(matches!(kept, Cow::Owned(_)), "{changed}");
        assert_ne!(Some(&*kept), changed.as_object(), "{changed}");
    }
}

#[test]
fn the_shortest_hits_are_still_found() {
    for (text, kind) in [
        ("EMP-123456", "employee-id"),
        ("a@b.io", "email"),
        ("s3cr3t-value!", "secrets"),
        ("123-45-6789", "ssn"),
    ] {
        let (out, _) = redact(&all(), text);
        assert_eq!(out, format!("[REDACTED:{kind}]"), "{text}");
    }
    untouched("a@b");
    untouched("");
}

#[test]
fn disguised_hits_are_found_on_the_folded_view_and_redacted_whole() {
    // Fullwidth digits, zero-width and bidi characters inside the value.
    redacted_as(
        "\u{ff14}\u{ff11}\u{ff11}\u{ff11}\u{200b}1111\u{202e}1111\u{2066}1111\u{2069}",
        "credit-card",
    );
    redacted_as("jane\u{200d}@exa\u{00ad}mple.com", "email");
    redacted_as("s3cr3t\u{2060}-value!", "secrets");
    redacted_as("\u{ff53}3cr3t-value\u{ff01}", "secrets");
    // Non-ASCII text with nothing to fold, and folded text with no hit, are left alone.
    untouched("naïve café 東京 4111");
    untouched("\u{ff14}\u{ff11}\u{ff11}\u{ff11}\u{200b} wide but harmless");
}

#[test]
fn structured_keys_are_redacted_without_losing_members() {
    let filter = all();
    let mut result = CallToolResult::success(Vec::new());
    result.structured_content = Some(json!({
        "a@b.io": 1,
        "c@d.io": {"AKIAIOSFODNN7EXAMPLE": "x"},
        "[REDACTED:email]": 3,
        "plain": "s3cr3t-value!",
    }));
    let counts = filter.apply(&mut result);
    let map = result.structured_content.expect("kept");
    let map = map.as_object().expect("object");
    assert_eq!(map.len(), 4, "{map:?}");
    assert_eq!(map["plain"], "[REDACTED:secrets]");
    assert_eq!(
        map["[REDACTED:email]"], 3,
        "an existing key keeps its value"
    );
    let mut renamed: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(key, _)| key.starts_with("[REDACTED:email] ("))
        .collect();
    renamed.sort_by_key(|(_, value)| value.is_object());
    assert_eq!(renamed[0].1, &json!(1));
    assert_eq!(renamed[1].1, &json!({"[REDACTED:aws-key]": "x"}));
    assert_eq!(counts["email"], 2);
    assert_eq!(counts["aws-key"], 1);
    assert_eq!(counts["secrets"], 1);
}

#[test]
fn mime_types_and_percent_encoded_secrets_in_uris_are_redacted() {
    let filter = OutputFilter::all(detectors(), &["s3cr3t/+x".to_owned()]);
    let mut link = rmcp::model::Resource::new("https://h/q?t=s3cr3t%2F%2Bx", "n");
    link.mime_type = Some("text/plain; by=a@b.io".into());
    let mut result = CallToolResult::success(vec![
        ContentBlock::image("AAAA", "image/png; s3cr3t/+x"),
        ContentBlock::resource_link(link),
    ]);
    let counts = filter.apply(&mut result);
    let json = serde_json::to_value(&result.content).expect("json");
    assert_eq!(json[0]["mimeType"], "image/png; [REDACTED:secrets]");
    assert_eq!(json[1]["uri"], "https://h/q?t=[REDACTED:secrets]");
    assert_eq!(json[1]["mimeType"], "text/plain; by=[REDACTED:email]");
    assert_eq!(counts["secrets"], 2);
}
