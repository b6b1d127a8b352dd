//! `GET /v1/positions`: every position of the token's locations as CSV, for `shelfcast export`
//! and a merchant's own systems. Written while it is read, a part of the catalogue at a time,
//! so a catalogue of any size costs the hub one part's memory, and writers are never held up
//! for longer than one part takes.

use std::convert::Infallible;
use std::fmt::Write as _;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shelfcast_protocol::wire::ErrorBody;
use shelfcast_protocol::{ErrorCode, LocationId};

use super::AppState;
use crate::error::ApiError;

/// The columns, in order. `on_hand` is what a count sets, so the file imports back with
/// `shelfcast import` (which reads `on_hand` as `qty` and skips the other columns) as counts
/// that change nothing.
pub const HEADER: &str = "sku,location,on_hand,reserved,available,status,version\n";

/// SKUs read under one look at the table (a SKU has one position per store).
const PART_SKUS: usize = 256;

#[derive(Deserialize)]
pub struct Which {
    location: Option<String>,
}

#[utoipa::path(get, path = "/v1/positions", tag = "read",
    params(("location" = Option<String>, Query, description = "Only these locations, comma-separated (each covered by the token); all the token covers unless given")),
    responses(
        (status = 200, description = "CSV with a header line: `sku,location,on_hand,reserved,available,status,version`, one position a line, in no set order", content_type = "text/csv", body = String),
        (status = 400, description = "An invalid location", body = ErrorBody),
        (status = 401, description = "No known device token, console session or admin token", body = ErrorBody),
        (status = 403, description = "The token does not cover a location asked for", body = ErrorBody),
        (status = 503, description = "The positions cannot be loaded right now", body = ErrorBody)),
    security(("device_token" = []), ("admin_token" = [])))]
pub async fn positions(State(app): State<AppState>, Query(which): Query<Which>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (scope, _) = app.tokens.device_or_admin(&headers, "Send a device token or the admin token as `Authorization: Bearer <token>`.")?;
    let only = match which.location.as_deref() {
        None => None,
        Some(list) => {
            let mut locations = Vec::new();
            for l in list.split(',') {
                let l = LocationId::parse(l).map_err(|e| ApiError::bad(ErrorCode::InvalidLocation, format!("location `{l}` {e}")))?;
                if !scope.allows(&l) {
                    return Err(ApiError::Forbidden(format!("This token does not cover `{l}`.")));
                }
                locations.push(l);
            }
            Some(locations)
        }
    };
    let keep = move |l: &LocationId| only.as_ref().map_or_else(|| scope.allows(l), |only| only.contains(l));
    // On a replica: every partition in memory for the walk, and kept there until it ends.
    let all: Vec<u32> = (0..app.state.partitions()).collect();
    let watching = app.state.watch(&all);
    app.follow_all().await?;
    let state = app.state.clone();
    let body = async_stream::stream! {
        let _watching = watching;
        yield Ok::<_, Infallible>(Bytes::from_static(HEADER.as_bytes()));
        let mut from = Some(0);
        while let Some(at) = from {
            let (part, next) = state.part(at, PART_SKUS, state.clock.now(), &keep);
            from = next;
            if part.is_empty() {
                // A long run of SKUs at other locations: let the other tasks of this thread in.
                tokio::task::yield_now().await;
                continue;
            }
            let mut text = String::with_capacity(part.len() * 48);
            for p in part {
                let _ = writeln!(text, "{},{},{},{},{},{},{}", p.sku, p.location, p.on_hand, p.reserved, p.available, p.status.as_str(), p.version);
            }
            yield Ok(Bytes::from(text));
        }
    };
    let mut answer = Body::from_stream(body).into_response();
    let h = answer.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"shelfcast-positions.csv\""));
    Ok(answer)
}
