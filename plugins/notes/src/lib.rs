//! The `notes` plugin: text notes kept in the key-value store the operator granted, through
//! `wasi:keyvalue` (the same interface wasmtime, Spin and wasmCloud serve).
//!
//! Each note is one key, its title, holding its text as UTF-8; each counter is the key `#NAME`,
//! kept by `wasi:keyvalue/atomics`. The store is whatever the operator's `kv` grant names: the
//! plugin's private store, or a shared one.

warden_sdk::wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "warden:notes/plugin",
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: {
        "warden:mcp/types@0.1.0": warden_sdk::types,
        "warden:mcp/host@0.1.0": warden_sdk::host,
        "wasi:keyvalue/store@0.2.0-draft": generate,
        "wasi:keyvalue/atomics@0.2.0-draft": generate,
        "wasi:keyvalue/batch@0.2.0-draft": generate,
    },
});

use exports::warden::notes::notes::{Guest, Note};
use wasi::keyvalue::store::{self, Bucket};
use wasi::keyvalue::{atomics, batch};

/// What the keys of counters start with; titles may not.
const COUNTER: char = '#';

/// The longest title, in characters.
const MAX_TITLE: usize = 256;

struct Notes;

impl Guest for Notes {
    fn remember(title: String, text: String) -> Result<String, String> {
        check_title(&title)?;
        let bucket = open()?;
        let existed = bucket.exists(&title).map_err(describe)?;
        bucket.set(&title, text.as_bytes()).map_err(describe)?;
        Ok(if existed {
            format!("replaced the note {title:?} ({} bytes)", text.len())
        } else {
            format!("remembered the note {title:?} ({} bytes)", text.len())
        })
    }

    fn recall(title: String) -> Result<String, String> {
        check_title(&title)?;
        match open()?.get(&title).map_err(describe)? {
            Some(bytes) => String::from_utf8(bytes)
                .map_err(|_| format!("the note {title:?} is not UTF-8 text")),
            None => Err(format!("there is no note called {title:?}")),
        }
    }

    fn list(prefix: Option<String>) -> Result<Vec<String>, String> {
        let bucket = open()?;
        let prefix = prefix.unwrap_or_default();
        let mut titles = Vec::new();
        let mut cursor = None;
        // Bounded: a store holds at most its max_keys keys, a page at least one.
        for _ in 0..1_000_000 {
            let page = bucket.list_keys(cursor).map_err(describe)?;
            titles.extend(
                page.keys
                    .into_iter()
                    .filter(|k| !k.starts_with(COUNTER) && k.starts_with(&prefix)),
            );
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        titles.sort();
        Ok(titles)
    }

    fn forget(title: String) -> Result<String, String> {
        check_title(&title)?;
        let bucket = open()?;
        if !bucket.exists(&title).map_err(describe)? {
            return Ok(format!("there was no note called {title:?}"));
        }
        bucket.delete(&title).map_err(describe)?;
        Ok(format!("forgot the note {title:?}"))
    }

    fn recall_many(titles: Vec<String>) -> Result<Vec<Note>, String> {
        for title in &titles {
            check_title(title)?;
        }
        let found = batch::get_many(&open()?, &titles).map_err(describe)?;
        found
            .into_iter()
            .flatten()
            .map(|(title, bytes)| match String::from_utf8(bytes) {
                Ok(text) => Ok(Note { title, text }),
                Err(_) => Err(format!("the note {title:?} is not UTF-8 text")),
            })
            .collect()
    }

    fn count(name: String, by: Option<u64>) -> Result<u64, String> {
        check_title(&name)?;
        atomics::increment(&open()?, &format!("{COUNTER}{name}"), by.unwrap_or(1)).map_err(describe)
    }
}

/// The granted store.
fn open() -> Result<Bucket, String> {
    store::open("default").map_err(describe)
}

fn check_title(title: &str) -> Result<(), String> {
    let chars = title.chars().count();
    if chars == 0 || chars > MAX_TITLE {
        return Err(format!(
            "a title is 1 to {MAX_TITLE} characters, this one is {chars}"
        ));
    }
    if title.starts_with(COUNTER) {
        return Err(format!("a title may not start with `{COUNTER}`"));
    }
    Ok(())
}

/// The store's error, for the agent.
fn describe(error: store::Error) -> String {
    match error {
        store::Error::NoSuchStore => "the key-value store does not exist".to_owned(),
        store::Error::AccessDenied => {
            "this plugin has no key-value store: the operator must grant `kv` in the manifest"
                .to_owned()
        }
        store::Error::Other(message) => message,
    }
}

export!(Notes);
