//! Output filtering: secrets and personal data replaced by `[REDACTED:kind]` in everything a
//! tool returns, before the agent sees it.
//!
//! One [`Detectors`] is compiled at start-up: every built-in pattern and every custom one of
//! `[filters] custom` in a single `RegexSet`. Each plugin gets an [`OutputFilter`]: which of
//! those detectors are on for it, and an Aho-Corasick automaton over its own secret values.
//! A string is scanned once by the set; only detectors that matched are run again to find
//! where, and their hits checked (Luhn for cards, reserved ranges for SSNs) before anything
//! is replaced. Text with no hit is not copied.
//!
//! Text that is not ASCII and holds disguises (fullwidth digits, zero-width or bidi control
//! characters inside a value, ...) is scanned through a folded view of it (`normalize`); a hit
//! there redacts the original span, disguises included. ASCII text takes the direct path.

mod args;
mod detectors;
mod normalize;

use std::collections::BTreeMap;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Regex, RegexSet, RegexSetBuilder};
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};
use serde_json::Value;

use crate::capabilities::percent_encode;
use crate::manifest::{CustomDetector, SECRETS_DETECTOR};

pub use crate::manifest::{MIN_SECRET_LEN, is_secret_key};
pub use args::audit_args;

/// Compiled size limit for each pattern and for the set.
const REGEX_SIZE_LIMIT: usize = 16 << 20;

/// A check a match must also pass (e.g. the Luhn checksum of a card number).
type Validator = fn(&str) -> bool;

/// Every detector of the manifest, compiled once.
pub struct Detectors {
    names: Vec<String>,
    set: RegexSet,
    regexes: Vec<Regex>,
    checks: Vec<Option<Validator>>,
    /// The shortest text each detector can match, in bytes.
    min_lens: Vec<usize>,
}

impl Detectors {
    /// The built-in detectors and `custom`.
    pub fn new(custom: &[CustomDetector]) -> Result<Self, regex::Error> {
        let mut names = Vec::new();
        let mut patterns = Vec::new();
        let mut checks = Vec::new();
        for builtin in detectors::BUILTINS {
            names.push(builtin.name.to_owned());
            patterns.push(builtin.pattern.to_owned());
            checks.push(builtin.check);
        }
        for detector in custom {
            names.push(detector.name.clone());
            patterns.push(detector.pattern.clone());
            checks.push(None);
        }
        let set = RegexSetBuilder::new(&patterns)
            .size_limit(REGEX_SIZE_LIMIT * 4)
            .build()?;
        let regexes = patterns
            .iter()
            .map(|p| {
                regex::RegexBuilder::new(p)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
            })
            .collect::<Result<_, _>>()?;
        let min_lens = patterns
            .iter()
            .map(|p| {
                regex_syntax::parse(p)
                    .ok()
                    .and_then(|hir| hir.properties().minimum_len())
                    .unwrap_or(1)
                    .max(1)
            })
            .collect();
        Ok(Self {
            names,
            set,
            regexes,
            checks,
            min_lens,
        })
    }

    /// Every detector name a `redact` list may hold, built-in and custom, and `secrets`.
    pub fn all_names(&self) -> Vec<String> {
        let mut names = self.names.clone();
        names.push(SECRETS_DETECTOR.to_owned());
        names
    }
}

/// Redaction counts, by detector name.
pub type Redactions = BTreeMap<String, u64>;

/// One plugin's filter: the detectors on for it and its secret values.
pub struct OutputFilter {
    detectors: Arc<Detectors>,
    enabled: Vec<bool>,
    any_enabled: bool,
    secrets: Option<AhoCorasick>,
    /// Shorter texts cannot hold a hit and are not scanned.
    min_len: usize,
}

impl OutputFilter {
    /// A filter running the detectors named in `selection` (unknown names are ignored: the
    /// manifest checked them) and, when `selection` holds `secrets`, redacting every value of
    /// `secret_values` by exact match: as written, JSON-escaped (structured results shown as
    /// text), percent-encoded (in URIs) and folded like disguised text (see `normalize`).
    pub fn new<'v>(
        detectors: Arc<Detectors>,
        selection: &[String],
        secret_values: impl IntoIterator<Item = &'v str>,
    ) -> Self {
        let enabled: Vec<bool> = detectors
            .names
            .iter()
            .map(|name| selection.contains(name))
            .collect();
        let mut values: Vec<String> = Vec::new();
        if selection.iter().any(|s| s == SECRETS_DETECTOR) {
            for value in secret_values {
                if value.len() < MIN_SECRET_LEN {
                    tracing::warn!(
                        len = value.len(),
                        "a secret value is too short to redact from output"
                    );
                    continue;
                }
                let escaped = serde_json::to_string(value)
                    .map(|quoted| quoted[1..quoted.len() - 1].to_owned())
                    .unwrap_or_default();
                let forms = [value.to_owned(), escaped, percent_encode(value)];
                let folded: Vec<String> =
                    forms.iter().filter_map(|f| normalize::folded(f)).collect();
                for candidate in forms.into_iter().chain(folded) {
                    if !candidate.is_empty() && !values.contains(&candidate) {
                        values.push(candidate);
                    }
                }
            }
        }
        let secrets = (!values.is_empty())
            .then(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&values)
                    .map_err(|e| tracing::error!(error = %e, "cannot build the secret matcher"))
                    .ok()
            })
            .flatten();
        let min_len = detectors
            .min_lens
            .iter()
            .zip(&enabled)
            .filter(|(_, on)| **on)
            .map(|(len, _)| *len)
            .chain(values.iter().map(String::len))
            .min()
            .unwrap_or(usize::MAX);
        Self {
            any_enabled: enabled.iter().any(|&on| on),
            enabled,
            detectors,
            secrets,
            min_len,
        }
    }

    /// A filter with every detector on and these secret values.
    pub fn all(detectors: Arc<Detectors>, secret_values: &[String]) -> Self {
        let selection = detectors.all_names();
        Self::new(
            detectors,
            &selection,
            secret_values.iter().map(String::as_str),
        )
    }

    /// Whether the filter can change anything.
    pub fn is_active(&self) -> bool {
        self.any_enabled || self.secrets.is_some()
    }

    fn slots(&self) -> usize {
        self.detectors.names.len() + 1
    }

    fn name(&self, slot: usize) -> &str {
        self.detectors
            .names
            .get(slot)
            .map_or(SECRETS_DETECTOR, String::as_str)
    }

    /// Whether `text` holds anything this filter would redact.
    pub fn finds(&self, text: &str) -> bool {
        if text.len() < self.min_len {
            return false;
        }
        match normalize::view(text) {
            None => self.hits(text).next().is_some(),
            Some(view) => self.hits(&view.text).next().is_some(),
        }
    }

    /// Every hit in `text`, as (start, end, slot), in no particular order.
    fn hits<'t>(&'t self, text: &'t str) -> impl Iterator<Item = (usize, usize, usize)> + 't {
        // Most text holds no hit: `is_match` says so without collecting which detectors hit.
        let detected = (self.any_enabled && self.detectors.set.is_match(text))
            .then(|| self.detectors.set.matches(text))
            .into_iter()
            .flatten()
            .filter(|&index| self.enabled[index])
            .flat_map(move |index| {
                let check = self.detectors.checks[index];
                self.detectors.regexes[index]
                    .find_iter(text)
                    .filter(move |found| check.is_none_or(|check| check(found.as_str())))
                    .map(move |found| (found.start(), found.end(), index))
            });
        let slot = self.detectors.names.len();
        let secrets = self
            .secrets
            .iter()
            .flat_map(move |secrets| secrets.find_iter(text))
            .map(move |found| (found.start(), found.end(), slot));
        detected.chain(secrets)
    }

    /// `text` with every hit replaced, or `None` when there is none. Hits are counted in
    /// `counts`: one slot per detector, then one for secrets; left empty until the first hit.
    /// Text with disguises is scanned through its folded view, and each hit redacts the
    /// span of the original it came from.
    fn scan(&self, text: &str, counts: &mut Vec<u64>) -> Option<String> {
        if text.len() < self.min_len {
            return None;
        }
        let view = normalize::view(text);
        let mut hits: Vec<(usize, usize, usize)> = match &view {
            None => self.hits(text).collect(),
            Some(view) => self
                .hits(&view.text)
                .map(|(start, end, slot)| {
                    let (start, end) = view.original(text, start, end);
                    (start, end, slot)
                })
                .collect(),
        };
        if hits.is_empty() {
            return None;
        }
        counts.resize(self.slots(), 0);
        // Leftmost first, longest first among equals; overlapping later hits are dropped.
        hits.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end, slot) in hits {
            if start < at {
                continue;
            }
            out.push_str(&text[at..start]);
            out.push_str("[REDACTED:");
            out.push_str(self.name(slot));
            out.push(']');
            counts[slot] += 1;
            at = end;
        }
        out.push_str(&text[at..]);
        Some(out)
    }

    /// Redact `text` in place; counts into `counts`.
    fn redact_in_place(&self, text: &mut String, counts: &mut Vec<u64>) {
        if let Some(redacted) = self.scan(text, counts) {
            *text = redacted;
        }
    }

    /// `text` with every hit redacted, counting into `redactions`; `None` when there is no
    /// hit.
    pub fn redact_changed(&self, text: &str, redactions: &mut Redactions) -> Option<String> {
        let mut counts = Vec::new();
        let out = self.scan(text, &mut counts);
        self.merge(&counts, redactions);
        out
    }

    /// Redact `text`, counting into `redactions`.
    pub fn redact_str(&self, text: &str, redactions: &mut Redactions) -> String {
        let mut counts = Vec::new();
        let out = self.scan(text, &mut counts);
        self.merge(&counts, redactions);
        out.unwrap_or_else(|| text.to_owned())
    }

    /// Redact every string inside `value`, object keys included: a plugin writing
    /// structured JSON chooses them as freely as the values. A redacted key that would clash
    /// with another key of its object gets a ` (2)`, ` (3)`, ... suffix, so no member is lost.
    fn redact_json(&self, value: &mut Value, counts: &mut Vec<u64>) {
        match value {
            Value::String(s) => self.redact_in_place(s, counts),
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v, counts)),
            Value::Object(map) => {
                map.values_mut().for_each(|v| self.redact_json(v, counts));
                self.redact_keys(map, counts);
            }
            _ => {}
        }
    }

    /// Redact the keys of `map`; members keep their order. The map is rebuilt only when a
    /// key has a hit.
    fn redact_keys(&self, map: &mut serde_json::Map<String, Value>, counts: &mut Vec<u64>) {
        let mut first = None;
        for (index, key) in map.keys().enumerate() {
            if let Some(redacted) = self.scan(key, counts) {
                first = Some((index, redacted));
                break;
            }
        }
        let Some((first, redacted)) = first else {
            return;
        };
        let old = std::mem::take(map);
        let mut pending = Some(redacted);
        for (index, (key, value)) in old.into_iter().enumerate() {
            let key = match index.cmp(&first) {
                std::cmp::Ordering::Less => key,
                std::cmp::Ordering::Equal => pending.take().unwrap_or(key),
                std::cmp::Ordering::Greater => self.scan(&key, counts).unwrap_or(key),
            };
            let key = if map.contains_key(&key) {
                (2u64..)
                    .map(|n| format!("{key} ({n})"))
                    .find(|candidate| !map.contains_key(candidate))
                    .unwrap_or(key)
            } else {
                key
            };
            map.insert(key, value);
        }
    }

    /// Redact every string a plugin chose in `result`: text blocks, MIME types, resource
    /// URIs and texts, resource links, and the keys and strings of structured content (binary
    /// data is not scanned). Returns the counts by detector.
    ///
    /// Structured results carry the same data twice (as text and as JSON); a value found in
    /// both counts once: each detector's count is the larger of the two.
    pub fn apply(&self, result: &mut CallToolResult) -> Redactions {
        let mut redactions = Redactions::new();
        if !self.is_active() {
            return redactions;
        }
        let mut in_content = Vec::new();
        for block in &mut result.content {
            match block {
                ContentBlock::Text(text) => self.redact_in_place(&mut text.text, &mut in_content),
                ContentBlock::Image(image) => {
                    self.redact_in_place(&mut image.mime_type, &mut in_content);
                }
                ContentBlock::Audio(audio) => {
                    self.redact_in_place(&mut audio.mime_type, &mut in_content);
                }
                ContentBlock::Resource(embedded) => match &mut embedded.resource {
                    ResourceContents::TextResourceContents {
                        uri,
                        text,
                        mime_type,
                        ..
                    } => {
                        self.redact_in_place(uri, &mut in_content);
                        self.redact_in_place(text, &mut in_content);
                        if let Some(mime_type) = mime_type {
                            self.redact_in_place(mime_type, &mut in_content);
                        }
                    }
                    ResourceContents::BlobResourceContents { uri, mime_type, .. } => {
                        self.redact_in_place(uri, &mut in_content);
                        if let Some(mime_type) = mime_type {
                            self.redact_in_place(mime_type, &mut in_content);
                        }
                    }
                    _ => {}
                },
                ContentBlock::ResourceLink(link) => {
                    self.redact_in_place(&mut link.uri, &mut in_content);
                    self.redact_in_place(&mut link.name, &mut in_content);
                    for field in [&mut link.title, &mut link.description, &mut link.mime_type]
                        .into_iter()
                        .flatten()
                    {
                        self.redact_in_place(field, &mut in_content);
                    }
                }
                _ => {}
            }
        }
        let mut in_structured = Vec::new();
        if let Some(value) = &mut result.structured_content {
            self.redact_json(value, &mut in_structured);
        }
        let counts: Vec<u64> = (0..in_content.len().max(in_structured.len()))
            .map(|slot| {
                let count = |counts: &[u64]| counts.get(slot).copied().unwrap_or(0);
                count(&in_content).max(count(&in_structured))
            })
            .collect();
        self.merge(&counts, &mut redactions);
        redactions
    }

    /// Redact every string inside `value`, counting into `redactions`.
    pub fn apply_json(&self, value: &mut Value, redactions: &mut Redactions) {
        if !self.is_active() {
            return;
        }
        let mut counts = Vec::new();
        self.redact_json(value, &mut counts);
        self.merge(&counts, redactions);
    }

    fn merge(&self, counts: &[u64], redactions: &mut Redactions) {
        for (slot, &count) in counts.iter().enumerate() {
            if count > 0 {
                *redactions.entry(self.name(slot).to_owned()).or_default() += count;
            }
        }
    }
}

#[cfg(test)]
mod tests;
