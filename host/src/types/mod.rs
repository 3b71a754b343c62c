//! Types every layer may use: who calls ([`Principal`], [`Transport`]), which hosts a grant
//! names ([`HostPattern`], with the address rules of [`address`]), and the shape of an API
//! key. A leaf: it imports nothing else of warden's, so no arrow points up from it.

pub mod address;
pub mod host_pattern;
mod principal;

pub use host_pattern::{Destination, HostPattern, PatternError, Scheme};
pub use principal::{Principal, Transport};

/// What every warden API key starts with, so a key pasted in the wrong place is recognised.
pub const API_KEY_PREFIX: &str = "wdn_";
