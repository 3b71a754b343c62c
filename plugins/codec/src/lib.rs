//! The `codec` plugin: hashes, encodings, JSON queries and diffs. Pure computation, no grants.

warden_sdk::wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "warden:codec/plugin",
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: {
        "warden:mcp/types@0.1.0": warden_sdk::types,
        "warden:mcp/host@0.1.0": warden_sdk::host,
    },
});

mod query;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use exports::warden::codec::codec::{Algorithm, Encoding, Guest};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use sha2::Digest as _;

/// RFC 3986 unreserved characters stay as they are; everything else is escaped.
const URL_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Standard base64: writes padding, accepts input with or without it.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// URL-safe base64: writes no padding, accepts input with or without it.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const DEFAULT_CONTEXT: u32 = 3;

struct Codec;

impl Guest for Codec {
    fn hash(
        algorithm: Algorithm,
        data: String,
        input: Option<Encoding>,
        output: Option<Encoding>,
    ) -> Result<String, String> {
        let bytes = match input {
            None => data.into_bytes(),
            Some(encoding) => decode_bytes(encoding, &data)?,
        };
        let digest = match algorithm {
            Algorithm::Sha256 => sha2::Sha256::digest(&bytes).to_vec(),
            Algorithm::Sha384 => sha2::Sha384::digest(&bytes).to_vec(),
            Algorithm::Sha512 => sha2::Sha512::digest(&bytes).to_vec(),
            Algorithm::Sha1 => sha1::Sha1::digest(&bytes).to_vec(),
            Algorithm::Md5 => md5::Md5::digest(&bytes).to_vec(),
            Algorithm::Blake3 => blake3::hash(&bytes).as_bytes().to_vec(),
        };
        Ok(encode_bytes(output.unwrap_or(Encoding::Hex), &digest))
    }

    fn encode(encoding: Encoding, text: String) -> String {
        encode_bytes(encoding, text.as_bytes())
    }

    fn decode(encoding: Encoding, data: String) -> Result<String, String> {
        String::from_utf8(decode_bytes(encoding, &data)?).map_err(|_| {
            "the decoded bytes are not UTF-8 text; use transcode to convert them to hex or base64"
                .to_owned()
        })
    }

    fn transcode(data: String, from: Encoding, to: Encoding) -> Result<String, String> {
        Ok(encode_bytes(to, &decode_bytes(from, &data)?))
    }

    fn json_query(document: String, path: String) -> Result<String, String> {
        let document: serde_json::Value =
            serde_json::from_str(&document).map_err(|e| format!("invalid JSON document: {e}"))?;
        let value = query::run(&document, &path)?;
        serde_json::to_string(&value).map_err(|e| e.to_string())
    }

    fn diff(old: String, new: String, context: Option<u32>) -> String {
        if old == new {
            return String::new();
        }
        similar::TextDiff::from_lines(&old, &new)
            .unified_diff()
            .context_radius(context.unwrap_or(DEFAULT_CONTEXT) as usize)
            .header("old", "new")
            .to_string()
    }
}

fn encode_bytes(encoding: Encoding, bytes: &[u8]) -> String {
    match encoding {
        Encoding::Hex => hex::encode(bytes),
        Encoding::Base64 => BASE64.encode(bytes),
        Encoding::Base64url => BASE64URL.encode(bytes),
        Encoding::Url => percent_encoding::percent_encode(bytes, URL_ESCAPED).to_string(),
    }
}

fn decode_bytes(encoding: Encoding, data: &str) -> Result<Vec<u8>, String> {
    let compact = || data.split_ascii_whitespace().collect::<String>();
    match encoding {
        Encoding::Hex => hex::decode(compact()).map_err(|e| format!("invalid hex: {e}")),
        Encoding::Base64 => BASE64
            .decode(compact())
            .map_err(|e| format!("invalid base64: {e}")),
        Encoding::Base64url => BASE64URL
            .decode(compact())
            .map_err(|e| format!("invalid base64url: {e}")),
        Encoding::Url => Ok(percent_encoding::percent_decode_str(data).collect()),
    }
}

export!(Codec);
