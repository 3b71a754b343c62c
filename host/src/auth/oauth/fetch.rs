//! Fetching a JWKS from its URL: one HTTPS GET through [`crate::fetch`] (`https://`, or
//! `http://` to a loopback host; no redirects), anything but `200` a failure, the body limited
//! to [`MAX_JWKS_BYTES`] and the whole exchange to [`FETCH_TIMEOUT`].

use std::time::Duration;

use bytes::Bytes;

pub(super) use crate::fetch::Url as JwksUrl;

/// Largest JWKS document accepted.
pub(super) const MAX_JWKS_BYTES: usize = 1 << 20;
/// Longest a fetch may take, from resolving the name to the end of the body.
pub(super) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// GETs `url` and returns its body; the error is one line for the log.
pub(super) async fn get(url: &JwksUrl) -> Result<Bytes, String> {
    let request = http::Request::get(url.target()).header(
        http::header::ACCEPT,
        "application/jwk-set+json, application/json",
    );
    let (status, body) =
        crate::fetch::send(url, request, Bytes::new(), MAX_JWKS_BYTES, FETCH_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
    if status != http::StatusCode::OK {
        return Err(format!("answered {status}"));
    }
    Ok(body)
}
