//! Write warden tools in Rust.
//!
//! A warden plugin is a WebAssembly component (`wasm32-wasip2`) whose exported functions are MCP
//! tools: the WIT doc comment of a function is the tool's description, its parameters are the
//! tool's input schema and its result is the tool's output. This crate gives a plugin:
//!
//! - the bindings to the host contract `warden:mcp@0.1.0` ([`types`] and [`host`]), generated once
//!   here so that every plugin shares the same Rust types;
//! - [`log`] helpers (`warden_sdk::log::info("...")`), [`progress`], [`sample`], [`roots`] and
//!   [`elicit`] (ask the user to fill in a form), and [`ask`] (several questions at once, under
//!   keys the plugin chooses);
//! - [`wit_bindgen`], re-exported, so a plugin needs no other dependency to generate its bindings.
//!
//! # A complete plugin
//!
//! `warden new NAME` writes all of this (and `warden build` builds it); by hand:
//!
//! `Cargo.toml`: `[lib] crate-type = ["cdylib"]`, `[dependencies] warden-sdk = "0.1"`.
//!
//! `wit/world.wit`: every doc comment below reaches the agent.
//!
//! ```wit
//! package example:greet@0.1.0;
//!
//! interface greet {
//!     /// Say hello to someone, `times` times (default 1).
//!     hello: func(name: string, times: option<u32>) -> result<string, string>;
//! }
//!
//! world plugin {
//!     include warden:mcp/tool@0.1.0;
//!     export greet;
//! }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```ignore
//! warden_sdk::wit_bindgen::generate!({
//!     path: ["../../wit", "wit"],       // warden:mcp first, then this plugin's package
//!     world: "example:greet/plugin",    // fully qualified: there are two packages
//!     runtime_path: "warden_sdk::wit_bindgen::rt",
//!     with: {
//!         "warden:mcp/types@0.1.0": warden_sdk::types,
//!         "warden:mcp/host@0.1.0": warden_sdk::host,
//!     },
//! });
//!
//! use exports::example::greet::greet::Guest;
//!
//! struct Greet;
//!
//! impl Guest for Greet {
//!     fn hello(name: String, times: Option<u32>) -> Result<String, String> {
//!         if name.is_empty() {
//!             return Err("name is empty".into());
//!         }
//!         warden_sdk::log::info(&format!("greeting {name}"));
//!         Ok(vec![format!("Hello, {name}!"); times.unwrap_or(1) as usize].join("\n"))
//!     }
//! }
//!
//! export!(Greet);
//! ```
//!
//! Build it with `warden build` (or `cargo build --release --target wasm32-wasip2`, then
//! `warden embed-docs`, see below): the `cdylib` comes out as a component, ready for a
//! `[plugins.greet]` entry in `warden.toml`.
//!
//! A WIT keyword used as a name (`list`, `resource`, `type`, `from`...) takes a `%` prefix:
//! `%list: func(...)` is still the function `list`, and `Guest::list` in Rust.
//!
//! # How `generate!` finds the warden WIT
//!
//! `path` is relative to the plugin's `Cargo.toml` and may list several directories. Each one is
//! parsed as one WIT package, **in order**, so `warden:mcp` must come before the plugin's own
//! package, which refers to it. With two packages loaded, `world` must be fully qualified
//! (`example:greet/plugin`). The in-tree plugins (`plugins/NAME`) use `["../../wit", "wit"]`: the
//! repository's `wit/` is the one source of truth, with no copy or symlink to keep in sync.
//!
//! A plugin outside this repository writes [`WIT`] (the same text) to
//! `wit/deps/warden-mcp/mcp.wit` next to its own `wit/*.wit` and then needs only `path: "wit"`
//! (the default, which may be left out): wit-bindgen loads `wit/deps/*` as dependencies. That
//! layout also suits `wasm-tools component wit wit/` and other languages' tools.
//!
//! `with` makes the plugin's bindings use this crate's `warden:mcp` types instead of generating
//! a second copy; wit-bindgen requires an entry for each imported interface, so both are listed.
//! `runtime_path` points the generated code at the re-exported runtime; a plugin that depends on
//! `wit-bindgen` 0.63 itself may leave it out.
//!
//! # Prompts
//!
//! A plugin may also offer MCP prompts by adding `export warden:mcp/prompts@0.1.0;` to its world
//! and implementing the generated `exports::warden::mcp::prompts::Guest` (`list` and `get`);
//! those two functions are not tools. warden's `docs/AUTHORING.md` ("Prompts") has an example.
//!
//! # Resources
//!
//! Likewise `export warden:mcp/resources@0.1.0;` offers MCP resources: implement the generated
//! `exports::warden::mcp::resources::Guest` (`list`, `templates`, `read`). URIs are served as
//! given, and no two plugins may serve one URI. `docs/AUTHORING.md` ("Resources") has an example.
//!
//! # Where the tool descriptions come from
//!
//! Linking a component keeps every WIT type but drops every doc comment (the component binary
//! has no place for them yet: component-model#213). warden reads a plugin's docs from a
//! `warden-wit` custom section holding the plugin's WIT package, binary-encoded with its docs.
//! [`embed_wit_docs!`] puts the WIT text into the compiled module instead, so that a plain
//! `cargo build` is served with descriptions (warden reads it when the other section is
//! missing). `warden build` appends the section after every build, and refuses to replace the
//! previous component until that is done; for a component built any other way, run `warden embed-docs COMPONENT
//! --wit wit` (a component without it is served with placeholder descriptions). The
//! repository's own plugins get it from the host's build script (`host/build.rs`).
//!
//! # Building against a local checkout
//!
//! Until you want a published release, point the dependency at a warden checkout with a patch
//! in the plugin's `Cargo.toml` (`warden new --sdk PATH` writes it, with a relative path):
//!
//! ```toml
//! [patch.crates-io]
//! warden-sdk = { path = "../warden/sdk" }
//! ```
//!
//! # Outside WebAssembly
//!
//! The crate also builds for the host's own target so a plugin's logic can be unit-tested with a
//! plain `cargo test`. There, [`log`] and [`progress`] write to stderr instead of calling the host.

#![warn(missing_docs)]

pub use wit_bindgen;

/// The WIT source of `warden:mcp@0.1.0`, the contract these bindings were generated from.
///
/// Out-of-tree plugins write it to `wit/deps/warden-mcp/mcp.wit` (see the crate docs).
pub const WIT: &str = include_str!("../wit/mcp.wit");

/// The WIT source of `warden:sql@0.1.0`: the database interface a plugin imports to query the
/// database its operator granted (`sql = { url = ... }`), one statement per call with bound
/// parameters.
///
/// Out-of-tree plugins write it to `wit/deps/warden-sql/sql.wit`, import
/// `warden:sql/sql@0.1.0` in their world, and generate its bindings with
/// `"warden:sql/sql@0.1.0": generate` in `with`.
pub const SQL_WIT: &str = include_str!("../wit/sql/sql.wit");

#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "warden:mcp/tool",
        generate_all,
        // Nothing in `host` uses `types`; plugins do, through `with`.
        generate_unused_types: true,
    });
}

pub use bindings::warden::mcp::{host, types};

/// Put the plugin's WIT source, with its doc comments (the tool descriptions), into the compiled
/// module, so that even a plain `cargo build` gives the tools their descriptions.
///
/// ```ignore
/// warden_sdk::embed_wit_docs!("../wit/world.wit");   // relative to this source file
/// ```
///
/// The files are concatenated (give one file, or files of one package whose concatenation is
/// valid WIT) into a `warden-wit-source` custom section of the core module, which warden reads
/// when the component has no `warden-wit` section (`warden build` and `warden embed-docs` add
/// one, which takes precedence). warden resolves the text with its own `warden:mcp`; a package
/// that needs other dependencies is ignored there, and gets its docs from `warden build`.
/// Nothing is added outside WebAssembly.
#[macro_export]
macro_rules! embed_wit_docs {
    ($($path:literal),+ $(,)?) => {
        const _: () = {
            const SOURCE: &str = concat!($(include_str!($path), "\n"),+);
            #[cfg(target_family = "wasm")]
            #[unsafe(link_section = "warden-wit-source")]
            #[used]
            static WARDEN_WIT_SOURCE: [u8; SOURCE.len()] = $crate::__bytes(SOURCE);
        };
    };
}

/// `text` as an array of exactly `N` bytes (`N` must be its length); for [`embed_wit_docs!`].
#[doc(hidden)]
pub const fn __bytes<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Log messages to the host's log and, when the client asked for them, to the agent.
///
/// The host tags every message with the plugin, the tool and the call; keep messages short and
/// free of secrets (they pass through the same output filter as results, but still).
pub mod log {
    pub use crate::host::Level;

    /// Log `message` at `level`.
    pub fn log(level: Level, message: &str) {
        #[cfg(target_family = "wasm")]
        crate::host::log(level, message);
        #[cfg(not(target_family = "wasm"))]
        eprintln!("[{level:?}] {message}");
    }

    /// Log a message at debug level: detail for whoever debugs the plugin.
    pub fn debug(message: &str) {
        log(Level::Debug, message);
    }

    /// Log a message at info level: normal progress worth recording.
    pub fn info(message: &str) {
        log(Level::Info, message);
    }

    /// Log a message at notice level: normal but significant.
    pub fn notice(message: &str) {
        log(Level::Notice, message);
    }

    /// Log a message at warning level: something unexpected that the tool worked around.
    pub fn warning(message: &str) {
        log(Level::Warning, message);
    }

    /// Log a message at error level: something failed (return the error as well).
    pub fn error(message: &str) {
        log(Level::Error, message);
    }
}

/// Ask the user to fill in a form: `message` says what and why, `schema` is the form as JSON
/// Schema text, an object of flat fields (strings, numbers, integers, booleans, enums), as
/// MCP elicitation allows.
///
/// Ask before you act: a client of the stateless protocol (2026-07-28) answers by calling the
/// tool again, so the host runs the function again from the start and hands each `elicit`, in
/// order, the answers given so far. Anything done before the question is done again.
///
/// ```ignore
/// use warden_sdk::host::ElicitAnswer;
/// let schema = r#"{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}"#;
/// match warden_sdk::elicit("Which name should the report carry?", schema) {
///     Ok(ElicitAnswer::Accept(json)) => { /* {"name": "..."} */ }
///     Ok(_) => return Err("the user said no".into()),
///     Err(e) => return Err(format!("cannot ask: {e:?}")),
/// }
/// ```
///
/// Outside WebAssembly (in `cargo test`) nobody can be asked: it returns `unsupported`.
pub fn elicit(message: &str, schema: &str) -> Result<host::ElicitAnswer, host::ElicitError> {
    #[cfg(target_family = "wasm")]
    return host::elicit(message, schema);
    #[cfg(not(target_family = "wasm"))]
    {
        eprintln!("[elicit] {message} {schema}");
        Err(host::ElicitError::Unsupported)
    }
}

/// Ask the client's model to continue a conversation (MCP sampling). The plugin needs
/// `sampling = true` in the manifest; without it this returns `not-granted`.
///
/// As with [`elicit`], a client of the stateless protocol answers by calling the tool again:
/// the function runs again from the start, and each `sample`, in order, gets its answer.
///
/// ```ignore
/// use warden_sdk::host::{SampleMessage, SampleRequest, SampleRole};
/// let request = SampleRequest {
///     messages: vec![SampleMessage { role: SampleRole::User, text: "Summarise: ...".into() }],
///     system_prompt: None,
///     max_tokens: 200,
/// };
/// let answer = warden_sdk::sample(&request).map_err(|e| format!("{e:?}"))?;
/// ```
///
/// Outside WebAssembly (in `cargo test`) there is no client: it returns `unsupported`.
pub fn sample(request: &host::SampleRequest) -> Result<host::SampleAnswer, host::ClientError> {
    #[cfg(target_family = "wasm")]
    return host::sample(request);
    #[cfg(not(target_family = "wasm"))]
    {
        eprintln!("[sample] {request:?}");
        Err(host::ClientError::Unsupported)
    }
}

/// The client's roots (MCP roots): the directories or files it works in. The plugin needs
/// `roots = true` in the manifest; without it this returns `not-granted`.
///
/// Outside WebAssembly (in `cargo test`) there is no client: it returns `unsupported`.
pub fn roots() -> Result<Vec<host::Root>, host::ClientError> {
    #[cfg(target_family = "wasm")]
    return host::roots();
    #[cfg(not(target_family = "wasm"))]
    Err(host::ClientError::Unsupported)
}

/// Ask several questions at once, each under a key you choose, and get their answers in the
/// same order: forms ([`host::QuestionKind::Elicit`]), the client's model
/// ([`host::QuestionKind::Sample`], needs `sampling = true`) and the client's roots
/// ([`host::QuestionKind::Roots`], needs `roots = true`).
///
/// In the stateless protocol (2026-07-28) the questions not answered yet go to the client
/// together, as the input requests of one `input_required` result under their keys; the client
/// answers by calling again and the function runs again from the start, so ask before you act.
/// A key is 1 to 64 characters of `a-z A-Z 0-9 _ - .`, used once per run; a `required`
/// question the client did not declare it can answer ends the request with MCP's
/// missing-capability error, an optional one is answered `unsupported`.
///
/// ```ignore
/// use warden_sdk::host::{Answer, ElicitAnswer, Form, Question, QuestionKind};
/// let name = Question {
///     key: "user_name".into(),
///     kind: QuestionKind::Elicit(Form {
///         message: "What is your name?".into(),
///         requested_schema: r#"{"type":"object","properties":{"name":{"type":"string"}}}"#.into(),
///     }),
///     required: false,
/// };
/// match warden_sdk::ask(&[name]).map_err(|e| format!("{e:?}"))?.pop() {
///     Some(Answer::Elicit(Ok(ElicitAnswer::Accept(json)))) => { /* {"name": "..."} */ }
///     _ => return Err("no name".into()),
/// }
/// ```
///
/// Outside WebAssembly (in `cargo test`) nobody can be asked: every answer is `unsupported`.
pub fn ask(questions: &[host::Question]) -> Result<Vec<host::Answer>, host::AskError> {
    #[cfg(target_family = "wasm")]
    return host::ask(questions);
    #[cfg(not(target_family = "wasm"))]
    Ok(questions
        .iter()
        .map(|question| match question.kind {
            host::QuestionKind::Elicit(_) => {
                host::Answer::Elicit(Err(host::ElicitError::Unsupported))
            }
            host::QuestionKind::Sample(_) => {
                host::Answer::Sample(Err(host::ClientError::Unsupported))
            }
            host::QuestionKind::Roots => host::Answer::Roots(Err(host::ClientError::Unsupported)),
        })
        .collect())
}

/// Report progress on the current call: `done` out of `total` (if known), with an optional note.
///
/// `done` should only increase. The host forwards it as an MCP progress notification when the
/// client asked for progress, and drops it otherwise, so calling it is always cheap and safe.
///
/// ```ignore
/// for (i, item) in items.iter().enumerate() {
///     warden_sdk::progress(i as f64, Some(items.len() as f64), Some(&format!("{item}")));
/// }
/// ```
pub fn progress(done: f64, total: Option<f64>, message: Option<&str>) {
    #[cfg(target_family = "wasm")]
    host::progress(done, total, message);
    #[cfg(not(target_family = "wasm"))]
    eprintln!(
        "[progress] {done}/{} {}",
        total.map_or_else(|| "?".to_owned(), |t| t.to_string()),
        message.unwrap_or("")
    );
}

/// Say that the resource at `uri` changed (a note written, a row inserted), so that the clients
/// subscribed to it are told (MCP `notifications/resources/updated`). `uri` must be one this
/// plugin serves (listed by its `resources.list`, or matching one of its templates); the host
/// ignores any other.
///
/// Outside WebAssembly (in `cargo test`) there is no host: it does nothing.
pub fn resource_updated(uri: &str) {
    #[cfg(target_family = "wasm")]
    host::resource_updated(uri);
    #[cfg(not(target_family = "wasm"))]
    let _ = uri;
}

/// Reveal some of this plugin's hidden tools to the principal whose call this is (dynamic
/// toolsets). `names` are this plugin's WIT function names (`create-issue`); the host reveals
/// only those the operator marked `hidden = true` and the principal may use, when the call
/// ends well, and tells that principal's clients the tool list changed. It ignores any other
/// name.
///
/// Outside WebAssembly (in `cargo test`) there is no host: it does nothing.
pub fn reveal_tools(names: &[&str]) {
    #[cfg(target_family = "wasm")]
    {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        host::reveal_tools(&names);
    }
    #[cfg(not(target_family = "wasm"))]
    let _ = names;
}

/// Hide again some of this plugin's hidden tools revealed to the principal whose call this is
/// (the opposite of [`reveal_tools`], under the same rules).
///
/// Outside WebAssembly (in `cargo test`) there is no host: it does nothing.
pub fn hide_tools(names: &[&str]) {
    #[cfg(target_family = "wasm")]
    {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        host::hide_tools(&names);
    }
    #[cfg(not(target_family = "wasm"))]
    let _ = names;
}

/// This plugin's hidden tools revealed to the principal whose call this is, as WIT function
/// names, when the call started.
///
/// Outside WebAssembly (in `cargo test`) there is no host: none.
pub fn revealed_tools() -> Vec<String> {
    #[cfg(target_family = "wasm")]
    return host::revealed_tools();
    #[cfg(not(target_family = "wasm"))]
    Vec::new()
}
