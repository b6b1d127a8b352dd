//! The edge's own routes: `GET /v1/sync` (how the link to the hub is doing) and
//! `GET /v1/reservations?location=L` (the hub's holds staff must set aside).

use shelfcast_protocol::ErrorCode;
use std::sync::Arc;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use shelfcast_protocol::clock::format_rfc3339;
use shelfcast_protocol::wire::{ErrorBody, ErrorDetail, EventResult, ResultStatus, SyncStatus};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Edge;
use crate::error::ApiError;
use crate::http::AppState;
use crate::store::sync;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sync))
        .routes(routes!(reservations))
        .routes(routes!(fulfil))
        .routes(routes!(release))
        .routes(routes!(history))
}

/// `POST /v1/reservations/{id}/fulfil` at the store: passed on to the hub ([`pass_on`]).
#[utoipa::path(post, path = "/v1/reservations/{id}/fulfil", tag = "edge",
    params(("id" = String, Path, description = "The reservation's id")),
    responses(
        (status = 200, description = "The hub's answer", body = shelfcast_protocol::wire::ReservationView),
        (status = 401, description = "No known device token", body = ErrorBody),
        (status = 403, description = "The token does not cover this store", body = ErrorBody),
        (status = 503, description = "The hub cannot be reached; nothing was changed", body = ErrorBody)),
    security(("device_token" = [])))]
async fn fulfil(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    pass_on(&app, Method::POST, &reservation_path(&id, "fulfil"), &headers, body).await
}

/// `POST /v1/reservations/{id}/release` (with a reason) at the store: passed on to the hub.
#[utoipa::path(post, path = "/v1/reservations/{id}/release", tag = "edge",
    params(("id" = String, Path, description = "The reservation's id")),
    responses(
        (status = 200, description = "The hub's answer", body = shelfcast_protocol::wire::ReservationView),
        (status = 401, description = "No known device token", body = ErrorBody),
        (status = 403, description = "The token does not cover this store", body = ErrorBody),
        (status = 503, description = "The hub cannot be reached; nothing was changed", body = ErrorBody)),
    security(("device_token" = [])))]
async fn release(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    pass_on(&app, Method::POST, &reservation_path(&id, "release"), &headers, body).await
}

/// `GET /v1/positions/{sku}/{location}/history` at the store: the hub keeps the history, so
/// the edge passes the question on ([`pass_on`]).
#[utoipa::path(get, path = "/v1/positions/{sku}/{location}/history", tag = "edge",
    params(
        ("sku" = String, Path, description = "The position's SKU"),
        ("location" = String, Path, description = "This edge node's location"),
        ("limit" = Option<i64>, Query, description = "Entries on the page, 1 to 500"),
        ("before" = Option<String>, Query, description = "The `next` of an earlier page")),
    responses(
        (status = 200, description = "The hub's answer", body = shelfcast_protocol::wire::HistoryPage),
        (status = 401, description = "No known device token", body = ErrorBody),
        (status = 403, description = "The token does not cover this store", body = ErrorBody),
        (status = 503, description = "The hub cannot be reached", body = ErrorBody)),
    security(("device_token" = [])))]
async fn history(
    State(app): State<AppState>,
    Path((sku, location)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let escape = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut path = format!("/v1/positions/{}/{}/history", escape(&sku), escape(&location));
    if let Some(q) = query {
        path = format!("{path}?{q}");
    }
    pass_on(&app, Method::GET, &path, &headers, axum::body::Bytes::new()).await
}

fn reservation_path(id: &str, action: &str) -> String {
    let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    format!("/v1/reservations/{id}/{action}")
}

/// What only the hub answers (a staff action on a reservation, which only the hub decides; a
/// position's history, which only the hub keeps): the edge passes it on to `path` with its own
/// token, for a device (or a console session) of its store, and relays the hub's answer.
/// Without the hub: 503 `hub_unreachable`, nothing changed.
async fn pass_on(app: &AppState, method: Method, path: &str, headers: &HeaderMap, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let edge = edge(app)?;
    let scope = app.tokens.device(headers, "Send a device token as `Authorization: Bearer <token>`.")?;
    if !scope.allows(&edge.link.location) {
        return Err(ApiError::Forbidden("This device token does not cover this store.".into()));
    }
    let url = format!("{}{path}", edge.link.hub);
    let mut ask = edge.client.request(method, &url).bearer_auth(&edge.link.token).timeout(std::time::Duration::from_secs(10)).body(body);
    if let Some(ct) = headers.get(axum::http::header::CONTENT_TYPE) {
        ask = ask.header(axum::http::header::CONTENT_TYPE, ct.clone());
    }
    let answer = ask.send().await.map_err(|e| {
        ApiError::HubUnreachable(format!(
            "The hub cannot be reached ({}); nothing was changed. Try again once the edge is online.",
            crate::client::explain(&e)
        ))
    })?;
    let status = axum::http::StatusCode::from_u16(answer.status().as_u16()).unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
    let text = answer.bytes().await.map_err(|_| ApiError::HubUnreachable("The hub's answer was cut off; check the reservation.".into()))?;
    // The follower hears of the change from the hub at once (its long poll wakes).
    Ok((status, [(axum::http::header::CONTENT_TYPE, "application/json")], text).into_response())
}

fn edge(app: &AppState) -> Result<Arc<Edge>, ApiError> {
    app.edge.clone().ok_or_else(|| ApiError::NotFound("This is not an edge node.".into()))
}

pub(super) fn status(edge: &Edge) -> rusqlite::Result<SyncStatus> {
    let db = edge.db.lock().expect("sync db lock");
    let pending = sync::pending(&db)?;
    let (rejected_total, latest) = sync::rejections(&db, 100)?;
    let rejected = latest
        .into_iter()
        .map(|r| EventResult {
            id: Some(r.id),
            status: ResultStatus::Rejected,
            error: Some(ErrorDetail { code: r.code, message: r.message, available: None }),
            version: None,
        })
        .collect();
    let info = edge.info.lock().expect("sync info");
    Ok(SyncStatus {
        online: info.online,
        pending: pending as u64,
        last_sync_at: info.last_sync_at.map(format_rfc3339),
        last_error: info.last_error.clone(),
        rejected,
        rejected_total: rejected_total as u64,
    })
}

/// `GET /v1/sync`: `{"online":…,"pending":…,"last_sync_at":…,"last_error":…,"rejected":[…]}`.
#[utoipa::path(get, path = "/v1/sync", tag = "edge",
    responses((status = 200, description = "How the edge node's link to the hub is doing", body = SyncStatus),
        (status = 503, description = "The sync bookkeeping cannot be read", body = ErrorBody)))]
async fn sync(State(app): State<AppState>) -> Result<Json<SyncStatus>, ApiError> {
    let edge = edge(&app)?;
    let s = tokio::task::spawn_blocking(move || status(&edge))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|_| ApiError::Unavailable)?;
    Ok(Json(s))
}

#[derive(Deserialize)]
struct Location {
    location: Option<String>,
}

/// `GET /v1/reservations?location=L` with a local device token: the open click-and-collect
/// reservations at this store, as last learned from the hub.
#[utoipa::path(get, path = "/v1/reservations", tag = "edge",
    params(("location" = Option<String>, Query, description = "This edge node's location (any other is refused)")),
    responses(
        (status = 200, description = "`{\"location\": L, \"reservations\": [reservation, …]}`: the holds staff set aside", body = Object),
        (status = 400, description = "Another location", body = ErrorBody),
        (status = 401, description = "No known device token", body = ErrorBody),
        (status = 403, description = "The token does not cover this store", body = ErrorBody)),
    security(("device_token" = [])))]
async fn reservations(State(app): State<AppState>, headers: HeaderMap, Query(q): Query<Location>) -> Result<Json<Value>, ApiError> {
    let edge = edge(&app)?;
    let scope = app.tokens.device(&headers, "Send a device token as `Authorization: Bearer <token>`.")?;
    if !scope.allows(&edge.link.location) {
        return Err(ApiError::Forbidden("This device token does not cover this store.".into()));
    }
    if q.location.as_deref().is_some_and(|l| l != edge.link.location.as_str()) {
        return Err(ApiError::bad(ErrorCode::InvalidLocation, format!("this edge node serves `{}` only", edge.link.location)));
    }
    let list = edge.reservations.read().expect("reservations lock").clone();
    Ok(Json(json!({"location": edge.link.location, "reservations": list})))
}
