//! The edge's own routes: `GET /v1/sync` (how the link to the hub is doing) and
//! `GET /v1/reservations?location=L` (the hub's holds staff must set aside).

use shelfcast_protocol::ErrorCode;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
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
    OpenApiRouter::new().routes(routes!(sync)).routes(routes!(reservations))
}

fn edge(app: &AppState) -> Result<Arc<Edge>, ApiError> {
    app.edge.clone().ok_or_else(|| ApiError::NotFound("This is not an edge node.".into()))
}

fn status(edge: &Edge) -> rusqlite::Result<SyncStatus> {
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
