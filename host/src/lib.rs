//! warden: a host that serves sandboxed WebAssembly tools to AI agents over MCP.
//!
//! Data flows one way: transport ([`server`]) -> [`gate`] -> [`runtime`] -> plugin -> [`gate`]
//! -> transport. [`manifest`] says what each plugin is granted, [`capabilities`] turns each
//! kind of grant into its share of a call (one module each), [`schema`] maps WIT types to JSON,
//! [`catalog`] names the tools, [`host`] assembles them, and [`types`] holds what every layer
//! shares. See `docs/ARCHITECTURE.md`.

// Module docs are the map of the code: they link the private items they describe.
#![allow(rustdoc::private_intra_doc_links)]

pub mod audit;
pub mod auth;
pub mod authoring;
pub mod capabilities;
pub mod catalog;
pub mod deploy;
pub mod fetch;
pub mod gate;
pub mod host;
pub mod lock;
pub mod manifest;
pub mod metrics;
pub mod oci;
pub mod runtime;
pub mod schema;
pub mod server;
pub mod ship;
pub mod signing;
pub mod status;
pub mod tasks;
pub mod telemetry;
pub mod tls;
pub mod types;
