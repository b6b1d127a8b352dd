//! `/embed/…`: the element's script and WebAssembly, built into the binary. Shops load them
//! from their own pages, so they are public (`Access-Control-Allow-Origin: *`,
//! `Cross-Origin-Resource-Policy: cross-origin`), cached briefly
//! with an ETag, and compressed.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

mod built {
    include!(concat!(env!("OUT_DIR"), "/embed.rs"));
}

fn content_type(path: &str) -> &'static str {
    if path.ends_with(".wasm") {
        "application/wasm"
    } else {
        "text/javascript; charset=utf-8"
    }
}

pub async fn file(Path(path): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    if built::FILES.is_empty() {
        return Err(ApiError::NotFound(
            "The element is not built into this hub: run scripts/build-element.sh, then rebuild the hub.".into(),
        ));
    }
    let (_, body) = built::FILES
        .iter()
        .find(|(p, _)| *p == path)
        .ok_or_else(|| ApiError::NotFound(format!("There is no /embed/{path}.")))?;
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(body)[..12]));
    let common: [(header::HeaderName, HeaderValue); 5] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type(&path))),
        (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300, must-revalidate")),
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
        (header::HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("cross-origin")),
        (header::ETAG, HeaderValue::from_str(&etag).expect("hex etag")),
    ];
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    Ok((common, *body).into_response())
}
