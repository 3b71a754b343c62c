//! `icons = [{ src = "...", mime_type = "image/png", sizes = ["48x48"], theme = "dark" }]`, on a
//! plugin (its tools, prompts, resources and templates) or on one tool (replacing the
//! plugin's). Clients show them beside the names; each is fetched or decoded by the client, so
//! only `https:` and `data:image/...;base64,` sources are accepted, a few and small.

use base64::Engine as _;

use super::reader::Value;

/// One icon, as MCP's `Icon` (2025-11-25 and 2026-07-28).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Icon {
    /// An `https://` URL or a `data:image/...;base64,...` URI.
    pub src: String,
    /// `image/...`, when set.
    pub mime_type: Option<String>,
    /// `WxH` or `any`, each once; empty when not set.
    pub sizes: Vec<String>,
    /// `Some(true)` for `theme = "dark"`, `Some(false)` for `"light"`.
    pub dark: Option<bool>,
}

/// Icons at most per plugin or tool.
pub const MAX_ICONS: usize = 8;
/// The longest `https:` source, in bytes.
pub const MAX_URL: usize = 2048;
/// The longest `data:` source, in bytes (its base64 included).
pub const MAX_DATA: usize = 16 << 10;
/// Sizes at most per icon.
const MAX_SIZES: usize = 8;

/// `icons = [...]`: errors are reported at the offending value; the list is `None` then.
pub(super) fn icons(v: &Value<'_, '_>) -> Option<Vec<Icon>> {
    let items = v.array()?;
    if items.len() > MAX_ICONS {
        v.error(format!("at most {MAX_ICONS} icons, got {}", items.len()));
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for item in &items {
        match icon(item) {
            Some(icon) => out.push(icon),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn icon(item: &Value<'_, '_>) -> Option<Icon> {
    let table = item.table()?;
    let src = table.require("src").and_then(|v| {
        let raw = v.string()?;
        src(&raw).map_err(|e| v.error(e)).ok()
    });
    let mime_type = table.get("mime_type").and_then(|v| {
        let raw = v.string()?;
        image_type(&raw).map_err(|e| v.error(e)).ok()
    });
    let sizes = table.get("sizes").and_then(|v| {
        let items = v.array()?;
        if items.len() > MAX_SIZES {
            v.error(format!("at most {MAX_SIZES} sizes"));
            return None;
        }
        let mut sizes: Vec<String> = Vec::new();
        for item in &items {
            let raw = item.string()?;
            if let Err(e) = size(&raw) {
                item.error(e);
                return None;
            }
            if sizes.contains(&raw) {
                item.error(format!("size {raw:?} is listed twice"));
                return None;
            }
            sizes.push(raw);
        }
        Some(sizes)
    });
    let dark = table.get("theme").and_then(|v| match v.string()?.as_str() {
        "dark" => Some(true),
        "light" => Some(false),
        other => {
            v.error(format!(
                "unknown theme {other:?}: expected \"light\" or \"dark\""
            ));
            None
        }
    });
    table.finish();
    let src = src?;
    // A data URI says its type itself: a different `mime_type` would be a lie.
    if let (Some(declared), Some(given)) = (data_type(&src), &mime_type)
        && declared != given.as_str()
    {
        item.error(format!(
            "mime_type {given:?} differs from the data URI's type {declared:?}"
        ));
        return None;
    }
    Some(Icon {
        src,
        mime_type,
        sizes: sizes.unwrap_or_default(),
        dark,
    })
}

/// The media type of a `data:` URI.
fn data_type(src: &str) -> Option<&str> {
    let rest = src.strip_prefix("data:")?;
    let header = rest.split_once(',')?.0;
    Some(header.split(';').next().unwrap_or_default())
}

/// An icon's source: `https://HOST/...` or `data:image/TYPE;base64,DATA`.
fn src(raw: &str) -> Result<String, String> {
    if let Some(uri) = raw.strip_prefix("data:") {
        if raw.len() > MAX_DATA {
            return Err(format!(
                "a data: icon may be at most {MAX_DATA} bytes, this one is {}; serve it over \
                 https instead",
                raw.len()
            ));
        }
        let Some((header, data)) = uri.split_once(',') else {
            return Err("invalid data: URI: expected data:image/TYPE;base64,DATA".to_owned());
        };
        let Some(media) = header.strip_suffix(";base64") else {
            return Err("a data: icon must be base64 (data:image/TYPE;base64,DATA)".to_owned());
        };
        image_type(media)?;
        if base64::engine::general_purpose::STANDARD
            .decode(data)
            .is_err()
        {
            return Err("invalid data: URI: its data is not base64".to_owned());
        }
        return Ok(raw.to_owned());
    }
    let expected = "an icon's src is an https:// URL or a data:image/...;base64, URI";
    if raw.len() > MAX_URL {
        return Err(format!("an icon URL may be at most {MAX_URL} bytes"));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("invalid icon URL {raw:?}: {expected}"));
    }
    let uri: http::Uri = raw
        .parse()
        .map_err(|_| format!("invalid icon URL {raw:?}: {expected}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("invalid icon URL {raw:?}: {expected}"));
    }
    match uri.authority() {
        Some(authority) if !authority.host().is_empty() && !authority.as_str().contains('@') => {
            Ok(raw.to_owned())
        }
        _ => Err(format!(
            "invalid icon URL {raw:?}: it needs a host, and no user name or password"
        )),
    }
}

/// `image/SUBTYPE`: an image media type, lowercase, without parameters.
fn image_type(raw: &str) -> Result<String, String> {
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
    };
    match raw.strip_prefix("image/") {
        Some(subtype) if token(subtype) => Ok(raw.to_owned()),
        _ => Err(format!(
            "invalid icon type {raw:?}: expected an image type such as \"image/png\" or \
             \"image/svg+xml\""
        )),
    }
}

/// `WxH` (each 1 to 5 digits) or `any`.
fn size(raw: &str) -> Result<(), String> {
    let digits = |s: &str| (1..=5).contains(&s.len()) && s.chars().all(|c| c.is_ascii_digit());
    let ok = raw == "any"
        || raw
            .split_once('x')
            .is_some_and(|(w, h)| digits(w) && digits(h));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid icon size {raw:?}: expected WIDTHxHEIGHT such as \"48x48\", or \"any\""
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_https_or_image_data_only() {
        for good in [
            "https://example.com/icon.png",
            "https://cdn.example.com:8443/a/b.svg?v=2",
            "data:image/png;base64,iVBORw0KGgo=",
            "data:image/svg+xml;base64,PHN2Zy8+",
        ] {
            assert!(src(good).is_ok(), "{good}");
        }
        for bad in [
            "http://example.com/icon.png",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "https://user:pw@example.com/i.png",
            "https:///i.png",
            "data:text/html;base64,PGgxPg==",
            "data:image/png,rawbytes",
            "data:image/png;base64,not base64!",
            "//example.com/icon.png",
            "icon.png",
        ] {
            assert!(src(bad).is_err(), "{bad}");
        }
        let big = format!("data:image/png;base64,{}", "A".repeat(MAX_DATA));
        assert!(src(&big).is_err());
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        assert!(src(&long).is_err());
    }

    #[test]
    fn types_and_sizes_are_checked() {
        assert!(image_type("image/png").is_ok());
        assert!(image_type("image/svg+xml").is_ok());
        for bad in ["text/html", "image/", "image/png; charset=x", "IMAGE/PNG"] {
            assert!(image_type(bad).is_err(), "{bad}");
        }
        for good in ["48x48", "any", "1x99999"] {
            assert!(size(good).is_ok(), "{good}");
        }
        for bad in ["48", "x48", "48x", "48X48", "123456x1", "-1x2"] {
            assert!(size(bad).is_err(), "{bad}");
        }
        assert_eq!(data_type("data:image/png;base64,AA=="), Some("image/png"));
        assert_eq!(data_type("https://x"), None);
    }
}
