//! `/embed/…`: the element's script and WebAssembly, built into the binary. Shops load them
//! from their own pages, so they are public (`Access-Control-Allow-Origin: *`,
//! `Cross-Origin-Resource-Policy: cross-origin`, `Timing-Allow-Origin: *` so a shop's own
//! performance monitoring sees the timings), cached briefly with an ETag, and served in the
//! best encoding the browser accepts, compressed once at build time.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// One built file in each of its encodings.
pub(super) struct Built {
    pub route: &'static str,
    identity: &'static [u8],
    gzip: &'static [u8],
    br: &'static [u8],
}

mod built {
    use super::Built;
    include!(concat!(env!("OUT_DIR"), "/embed.rs"));
}

/// The console's files (`/console/`).
pub(super) mod console {
    use super::Built;
    include!(concat!(env!("OUT_DIR"), "/console.rs"));
}

/// Each file's content hash (the base of its ETags), computed once rather than per request.
static ELEMENT: LazyLock<Vec<String>> = LazyLock::new(|| hashes(built::FILES));
pub(super) static CONSOLE: LazyLock<Vec<String>> = LazyLock::new(|| hashes(console::FILES));

fn hashes(files: &[Built]) -> Vec<String> {
    files.iter().map(|f| hex::encode(&Sha256::digest(f.identity)[..12])).collect()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("wasm") => "application/wasm",
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "text/javascript; charset=utf-8",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Br,
    Gzip,
    Identity,
}

/// The encoding to send for an `Accept-Encoding` header: brotli over gzip over none, skipping
/// any the browser refuses with `q=0`.
fn negotiate(accept: Option<&HeaderValue>) -> Encoding {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else { return Encoding::Identity };
    let accepted = |name: &str| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0));
            (coding.eq_ignore_ascii_case(name) || coding == "*") && !refused
        })
    };
    if accepted("br") {
        Encoding::Br
    } else if accepted("gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

pub async fn file(Path(path): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    if built::FILES.is_empty() {
        return Err(ApiError::NotFound(
            "The element is not built into this hub: run scripts/build-element.sh, then rebuild the hub.".into(),
        ));
    }
    let index =
        built::FILES.iter().position(|f| f.route == path).ok_or_else(|| ApiError::NotFound(format!("There is no /embed/{path}.")))?;
    let mut response = respond(&built::FILES[index], &ELEMENT[index], &headers);
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300, must-revalidate"));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("cross-origin"));
    h.insert(header::HeaderName::from_static("timing-allow-origin"), HeaderValue::from_static("*"));
    Ok(response)
}

/// A built file in the best encoding the request accepts, with its ETag (304 when the
/// browser has it).
pub(super) fn respond(file: &Built, hash: &str, headers: &HeaderMap) -> Response {
    let path = file.route;
    let encoding = negotiate(headers.get(header::ACCEPT_ENCODING));
    let (body, suffix) = match encoding {
        Encoding::Br => (file.br, "-br"),
        Encoding::Gzip => (file.gzip, "-gz"),
        Encoding::Identity => (file.identity, ""),
    };
    // One tag per content, each encoding its own variant of it.
    let etag = format!("\"{hash}{suffix}\"");
    let mut response = if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body.into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex etag"));
    match encoding {
        Encoding::Br => h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br")),
        Encoding::Gzip => h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
        Encoding::Identity => None,
    };
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_brotli_then_gzip_and_honours_refusals() {
        let pick = |s: &str| negotiate(Some(&HeaderValue::from_str(s).unwrap()));
        assert_eq!(pick("gzip, deflate, br, zstd"), Encoding::Br);
        assert_eq!(pick("gzip"), Encoding::Gzip);
        assert_eq!(pick("br;q=0, gzip;q=0.5"), Encoding::Gzip);
        assert_eq!(pick("br;q=0,gzip;q=0"), Encoding::Identity);
        assert_eq!(pick("*"), Encoding::Br);
        assert_eq!(pick("identity"), Encoding::Identity);
        assert_eq!(negotiate(None), Encoding::Identity);
    }
}
