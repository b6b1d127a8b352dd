//! Edge nodes report their link to the hub (`PUT /v1/locations/{location}/edge`, every few
//! seconds while they reach it), and the console's Stores page reads what the hub knows
//! (`GET /v1/edges`): online or not, events pending at the store, last sync, last error.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use shelfcast_protocol::clock::format_rfc3339;
use shelfcast_protocol::wire::{EdgeReport, EdgeState, ErrorBody};
use shelfcast_protocol::{ErrorCode, LocationId};

use super::AppState;
use crate::error::ApiError;

/// Longest `last_error` kept (a sentence; longer ones are cut).
const MAX_ERROR: usize = 1_000;
/// Report intervals an edge may announce.
const EVERY_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;

/// An edge node reports its link, with the location's device token (the edge's `--token`).
#[utoipa::path(put, path = "/v1/locations/{location}/edge", tag = "edge",
    params(("location" = String, Path, description = "The edge node's location")),
    request_body(content = EdgeReport),
    responses(
        (status = 204, description = "Kept"),
        (status = 400, description = "Not a report, or an interval outside 100 ms to 1 h", body = ErrorBody),
        (status = 401, description = "No known device token", body = ErrorBody),
        (status = 403, description = "The token does not cover this location", body = ErrorBody),
        (status = 503, description = "Storage cannot take writes right now", body = ErrorBody)),
    security(("device_token" = [])))]
pub async fn report(
    State(app): State<AppState>,
    Path(location): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let location = LocationId::parse(&location).map_err(|e| ApiError::bad(ErrorCode::InvalidLocation, format!("location {e}")))?;
    let scope = app.tokens.device(&headers, "Send the location's device token as `Authorization: Bearer <token>`.")?;
    if !scope.allows(&location) {
        return Err(ApiError::Forbidden(format!("This device token does not cover `{location}`.")));
    }
    let mut report: EdgeReport = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(ErrorCode::MalformedBody, format!("the body is not an edge report ({e})")))?;
    if !EVERY_MS.contains(&report.every_ms) {
        return Err(ApiError::bad(ErrorCode::InvalidQuery, "`every_ms` is from 100 to 3600000"));
    }
    if let Some(e) = &mut report.last_error {
        if let Some((cut, _)) = e.char_indices().nth(MAX_ERROR) {
            e.truncate(cut);
        }
    }
    let text = serde_json::to_string(&report).expect("a report serialises");
    app.writer.edge_report(location.to_string(), text).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The edge nodes of the token's locations, as the hub last heard from them.
#[utoipa::path(get, path = "/v1/edges", tag = "edge",
    responses(
        (status = 200, description = "`{\"edges\": [EdgeState, …]}`, by location", body = Object),
        (status = 401, description = "No known device token or console session", body = ErrorBody)),
    security(("device_token" = [])))]
pub async fn list(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<serde_json::Value>, ApiError> {
    let scope = app.tokens.device(&headers, "Send a device token as `Authorization: Bearer <token>`.")?;
    let now = app.state.clock.now();
    let rows = app.reader.edges().await.map_err(|_| ApiError::Unavailable)?;
    let edges: Vec<EdgeState> = rows
        .into_iter()
        .filter(|(l, _, _)| LocationId::parse(l).is_ok_and(|l| scope.allows(&l)))
        .filter_map(|(location, at, text)| {
            let report: EdgeReport = serde_json::from_str(&text).ok()?;
            let online = now.saturating_sub(at) <= 3 * report.every_ms as i64;
            Some(EdgeState { location, online, reported_at: format_rfc3339(at), report })
        })
        .collect();
    Ok(Json(serde_json::json!({ "edges": edges })))
}
