//! The `fetch` plugin: GET and POST over `wasi:http`, to the hosts the operator granted.
//!
//! The plugin itself enforces nothing: the host checks every request it sends (scheme, host,
//! port, the addresses a name resolves to, timeouts, the response size) and refuses the rest
//! with an error naming the URL and the reason, which this plugin passes on as its own error.
//! `wasi:http` does not follow redirects; this plugin does (up to [`MAX_REDIRECTS`]), each hop
//! a new request that the host checks like the first. Credentials (`authorization`, `cookie`)
//! are not carried to another origin.

warden_sdk::wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "warden:fetch/plugin",
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: {
        "warden:mcp/types@0.1.0": warden_sdk::types,
        "warden:mcp/host@0.1.0": warden_sdk::host,
    },
});

use exports::warden::fetch::fetch::{BodyFormat, Guest, Header, Response};
use url::Url;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, HeaderError, IncomingResponse, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use wasip2::io::streams::StreamError;

/// Without `max-bytes`, bodies are cut after this many bytes.
const DEFAULT_MAX_BYTES: u32 = 100_000;
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;
/// Bytes read or written per stream operation (the most `blocking-write-and-flush` takes).
const CHUNK: usize = 4096;
/// Line width of text converted from HTML.
const TEXT_WIDTH: usize = 100;
/// Bytes inspected for a NUL to decide that a body of unknown type is binary.
const BINARY_SNIFF: usize = 8192;

struct Fetch;

/// One request to send, possibly rewritten by redirects.
struct Request {
    method: Method,
    url: Url,
    headers: Vec<Header>,
    body: Option<Vec<u8>>,
}

impl Guest for Fetch {
    fn get(
        url: String,
        headers: Option<Vec<Header>>,
        format: Option<BodyFormat>,
        max_bytes: Option<u32>,
    ) -> Result<Response, String> {
        let request = Request {
            method: Method::Get,
            url: parse_url(&url)?,
            headers: headers.unwrap_or_default(),
            body: None,
        };
        fetch(request, format, max_bytes)
    }

    fn post(
        url: String,
        body: String,
        content_type: Option<String>,
        headers: Option<Vec<Header>>,
        format: Option<BodyFormat>,
        max_bytes: Option<u32>,
    ) -> Result<Response, String> {
        let mut headers = headers.unwrap_or_default();
        if !headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("content-type"))
        {
            headers.push(Header {
                name: "content-type".into(),
                value: content_type.unwrap_or_else(|| "application/json".into()),
            });
        }
        let request = Request {
            method: Method::Post,
            url: parse_url(&url)?,
            headers,
            body: Some(body.into_bytes()),
        };
        fetch(request, format, max_bytes)
    }
}

fn parse_url(text: &str) -> Result<Url, String> {
    Url::parse(text).map_err(|e| format!("invalid URL {text:?}: {e}"))
}

/// Send `request`, following redirects, and present the final answer.
fn fetch(
    mut request: Request,
    format: Option<BodyFormat>,
    max_bytes: Option<u32>,
) -> Result<Response, String> {
    let max_bytes = max_bytes.unwrap_or(DEFAULT_MAX_BYTES) as usize;
    let mut redirects = 0;
    let mut previous: Option<Url> = None;
    loop {
        let response = send(&request).map_err(|e| match &previous {
            Some(from) => format!("{e} (redirected from {from}; the redirect was not followed)"),
            None => e,
        })?;
        let status = response.status();
        let headers = header_list(&response.headers());
        let location = find(&headers, "location").filter(|_| is_redirect(status));
        if let Some(location) = location {
            let next = request.url.join(location).map_err(|e| {
                format!(
                    "{} redirected to an invalid URL {location:?}: {e}",
                    request.url
                )
            })?;
            if redirects == MAX_REDIRECTS {
                return Err(format!(
                    "{}: more than {MAX_REDIRECTS} redirects, the last to {next}",
                    request.url
                ));
            }
            redirects += 1;
            drop(response);
            previous = Some(request.url.clone());
            request = redirect(request, status, next);
            continue;
        }
        let (bytes, truncated) = read_body(&response, max_bytes, &request.url)?;
        let content_type = find(&headers, "content-type").unwrap_or("").to_owned();
        let mut body = present(&bytes, &content_type, format.unwrap_or(BodyFormat::Raw));
        if truncated {
            body.push_str(&format!(
                "\n\n[truncated: the body is longer than {max_bytes} bytes; ask again with a larger max_bytes to see more]"
            ));
        }
        return Ok(Response {
            url: request.url.to_string(),
            status,
            headers,
            body,
            truncated,
        });
    }
}

/// Whether `status` is a redirect with a `location` to follow.
fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The request that follows a redirect to `next`, as browsers do: 303 (and 301/302 after a
/// POST) become a GET without body; credentials stay with their origin.
fn redirect(mut request: Request, status: u16, next: Url) -> Request {
    let to_get =
        status == 303 || (matches!(status, 301 | 302) && matches!(request.method, Method::Post));
    if to_get {
        request.method = Method::Get;
        request.body = None;
        request.headers.retain(|h| {
            !h.name.eq_ignore_ascii_case("content-type")
                && !h.name.eq_ignore_ascii_case("content-length")
        });
    }
    if next.origin() != request.url.origin() {
        request.headers.retain(|h| {
            !h.name.eq_ignore_ascii_case("authorization")
                && !h.name.eq_ignore_ascii_case("cookie")
                && !h.name.eq_ignore_ascii_case("proxy-authorization")
        });
    }
    request.url = next;
    request
}

/// Send one request and wait for the response head.
fn send(request: &Request) -> Result<IncomingResponse, String> {
    let url = &request.url;
    let fields = Fields::new();
    for header in &request.headers {
        fields
            .append(&header.name, header.value.as_bytes())
            .map_err(|e| header_error(&header.name, e))?;
    }
    if let Some(body) = &request.body {
        fields
            .set("content-length", &[body.len().to_string().into_bytes()])
            .map_err(|e| header_error("content-length", e))?;
    }
    let outgoing = OutgoingRequest::new(fields);
    let scheme = match url.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    };
    let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
    let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
    outgoing
        .set_method(&request.method)
        .and_then(|()| outgoing.set_scheme(Some(&scheme)))
        .and_then(|()| outgoing.set_authority(Some(authority)))
        .and_then(|()| outgoing.set_path_with_query(Some(path)))
        .map_err(|()| format!("{url}: the URL cannot be sent over HTTP"))?;
    let body = match &request.body {
        Some(_) => Some(
            outgoing
                .body()
                .map_err(|()| format!("{url}: cannot write the request body"))?,
        ),
        None => None,
    };
    let future = outgoing_handler::handle(outgoing, None).map_err(|e| describe(url, &e))?;
    if let (Some(body), Some(bytes)) = (body, &request.body) {
        // Errors while writing show up as the request's own error below.
        if let Ok(stream) = body.write() {
            for chunk in bytes.chunks(CHUNK) {
                if stream.blocking_write_and_flush(chunk).is_err() {
                    break;
                }
            }
            drop(stream);
        }
        let _ = OutgoingBody::finish(body, None);
    }
    let response = loop {
        match future.get() {
            Some(response) => break response,
            None => future.subscribe().block(),
        }
    };
    match response {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(code)) => Err(describe(url, &code)),
        Err(()) => Err(format!("{url}: the response was already taken")),
    }
}

fn header_error(name: &str, error: HeaderError) -> String {
    match error {
        HeaderError::Forbidden => format!("header `{name}` cannot be set by a plugin"),
        HeaderError::InvalidSyntax => format!("header `{name}` has an invalid name or value"),
        HeaderError::Immutable => format!("header `{name}` cannot be changed"),
    }
}

/// What went wrong, for the agent. The host's own refusals and limits arrive as
/// `internal-error` with a complete message that names the URL.
fn describe(url: &Url, code: &ErrorCode) -> String {
    let what = match code {
        ErrorCode::InternalError(Some(message)) => return message.clone(),
        ErrorCode::DnsTimeout => "the DNS lookup timed out".into(),
        ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => {
            "the host name could not be resolved".into()
        }
        ErrorCode::ConnectionRefused => "the connection was refused".into(),
        ErrorCode::ConnectionTimeout => "the connection timed out".into(),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            "the server did not answer in time".into()
        }
        ErrorCode::ConnectionTerminated => "the server closed the connection".into(),
        ErrorCode::TlsCertificateError => "the server's TLS certificate is not trusted".into(),
        ErrorCode::TlsProtocolError | ErrorCode::TlsAlertReceived(_) => {
            "the TLS handshake failed".into()
        }
        ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => {
            "the host refused the request".into()
        }
        ErrorCode::HttpResponseBodySize(Some(limit)) => {
            format!("the response body is larger than the host allows ({limit} bytes)")
        }
        other => format!("the request failed ({other:?})"),
    };
    format!("{url}: {what}")
}

/// The response headers, values decoded as UTF-8 (lossily).
fn header_list(fields: &Fields) -> Vec<Header> {
    fields
        .entries()
        .into_iter()
        .map(|(name, value)| Header {
            name,
            value: String::from_utf8_lossy(&value).into_owned(),
        })
        .collect()
}

/// The value of header `name`, case-insensitively.
fn find<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Read up to `max_bytes` of the body; whether more was left.
fn read_body(
    response: &IncomingResponse,
    max_bytes: usize,
    url: &Url,
) -> Result<(Vec<u8>, bool), String> {
    let body = response
        .consume()
        .map_err(|()| format!("{url}: the response body was already taken"))?;
    let stream = body
        .stream()
        .map_err(|()| format!("{url}: the response body was already taken"))?;
    let mut bytes = Vec::new();
    let mut truncated = false;
    loop {
        match stream.blocking_read((CHUNK * 16) as u64) {
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > max_bytes {
                    bytes.truncate(max_bytes);
                    truncated = true;
                    break;
                }
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(error)) => {
                let why = wasip2::http::types::http_error_code(&error)
                    .map(|code| describe(url, &code))
                    .unwrap_or_else(|| format!("{url}: {}", error.to_debug_string()));
                return Err(format!(
                    "reading the response body failed after {} bytes: {why}",
                    bytes.len()
                ));
            }
        }
    }
    drop(stream);
    drop(body);
    Ok((bytes, truncated))
}

/// The body as text, converted as `format` asks when it is HTML.
fn present(bytes: &[u8], content_type: &str, format: BodyFormat) -> String {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if is_binary(bytes, &media_type) {
        let shown = if media_type.is_empty() {
            "unknown type"
        } else {
            &media_type
        };
        return format!(
            "[binary content ({shown}), {} bytes, not shown]",
            bytes.len()
        );
    }
    let text = utf8_prefix(bytes);
    let html = media_type.contains("html")
        || (media_type.is_empty()
            && text
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("<!doctype html"));
    let converted = match format {
        BodyFormat::Raw => None,
        _ if !html => None,
        BodyFormat::Text => html2text::config::plain_no_decorate()
            .string_from_read(text.as_bytes(), TEXT_WIDTH)
            .ok(),
        BodyFormat::Markdown => html2text::config::plain()
            .string_from_read(text.as_bytes(), TEXT_WIDTH)
            .ok(),
    };
    converted.unwrap_or(text)
}

/// Whether a body is binary: by its media type, else by a NUL byte near the start.
fn is_binary(bytes: &[u8], media_type: &str) -> bool {
    let textual = media_type.starts_with("text/")
        || media_type.ends_with("json")
        || media_type.ends_with("xml")
        || media_type.ends_with("+json")
        || media_type.ends_with("+xml")
        || media_type == "application/javascript"
        || media_type == "application/x-www-form-urlencoded";
    if textual {
        return false;
    }
    let known_binary = ["image/", "audio/", "video/", "font/"]
        .iter()
        .any(|prefix| media_type.starts_with(prefix))
        || matches!(
            media_type,
            "application/octet-stream" | "application/pdf" | "application/zip" | "application/gzip"
        );
    known_binary || bytes[..bytes.len().min(BINARY_SNIFF)].contains(&0)
}

/// The bytes as UTF-8: a character cut at the end (by truncation) is dropped, invalid bytes
/// elsewhere are replaced.
fn utf8_prefix(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

export!(Fetch);
