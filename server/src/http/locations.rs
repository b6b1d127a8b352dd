//! The store directory: `GET /v1/locations` (public: where the stores are, the nearest first,
//! with a SKU's stock at each), `PUT` and `DELETE /v1/locations/{id}` (the admin token).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use shelfcast_protocol::directory::{check, nearest, Directory, Listed, Point, Store, DEFAULT_NEAR, MAX_NEAR};
use shelfcast_protocol::wire::ErrorBody;
use shelfcast_protocol::{ErrorCode, LocationId, PositionKey, Sku, Status};

use super::AppState;
use crate::error::ApiError;

#[derive(Deserialize)]
pub struct Asked {
    near: Option<String>,
    limit: Option<String>,
    sku: Option<String>,
    in_stock: Option<String>,
}

#[utoipa::path(get, path = "/v1/locations", tag = "read",
    params(
        ("near" = Option<String>, Query, description = "`LAT,LNG` in degrees: the stores nearest first, each with `distance_m`"),
        ("limit" = Option<u32>, Query, description = "At most this many stores, 1 to 50 (10 with `near`, all without, unless given)", minimum = 1, maximum = 50),
        ("sku" = Option<String>, Query, description = "Adds each store's `position` of this SKU"),
        ("in_stock" = Option<bool>, Query, description = "With `sku`: only the stores where it is available (`true`)")),
    description = "Public. Without a token, the numbers of each `position` follow the hub's `--disclose`.",
    responses(
        (status = 200, description = "`{\"locations\": [...]}`", body = Directory),
        (status = 400, description = "Bad coordinates, limit, SKU or `in_stock`", body = ErrorBody),
        (status = 503, description = "The directory or the positions cannot be read right now", body = ErrorBody)))]
pub async fn list(State(app): State<AppState>, headers: HeaderMap, Query(asked): Query<Asked>) -> Result<Json<Directory>, ApiError> {
    let near = asked.near.as_deref().map(Point::parse).transpose().map_err(|e| ApiError::bad(ErrorCode::InvalidQuery, e))?;
    let limit = match asked.limit.as_deref() {
        None => near.map(|_| DEFAULT_NEAR),
        Some(l) => Some(
            l.parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_NEAR).contains(l))
                .ok_or_else(|| ApiError::bad(ErrorCode::InvalidQuery, format!("`limit` is a whole number from 1 to {MAX_NEAR}")))?,
        ),
    };
    let sku = asked.sku.as_deref().map(Sku::parse).transpose().map_err(|e| ApiError::bad(ErrorCode::InvalidSku, format!("sku {e}")))?;
    let in_stock = match asked.in_stock.as_deref() {
        None | Some("false") => false,
        Some("true") if sku.is_some() => true,
        Some("true") => return Err(ApiError::bad(ErrorCode::InvalidQuery, "`in_stock=true` needs a `sku`")),
        Some(_) => return Err(ApiError::bad(ErrorCode::InvalidQuery, "`in_stock` is `true` or `false`")),
    };
    let stores = app.directory.stores(&app.reader).await.map_err(|error| {
        tracing::warn!(%error, "the store directory cannot be read");
        ApiError::Unavailable
    })?;
    let entries = stores.iter().cloned();
    let mut listed: Vec<Listed> = match near {
        Some(from) => nearest(entries, from),
        None => entries.map(|(id, store)| Listed { id, store, distance_m: None, position: None }).collect(),
    };
    if let Some(sku) = sku {
        let keys: Vec<PositionKey> = listed.iter().map(|l| PositionKey::new(sku.clone(), l.id.clone())).collect();
        app.follow(&keys).await?;
        // Filtered before the numbers are withheld; the status says as much as `available > 0`.
        let mode = app.disclosure(&headers);
        let positions = app.state.positions(&keys, app.state.clock.now());
        for (l, p) in listed.iter_mut().zip(positions) {
            l.position = Some(mode.apply(p));
        }
        if in_stock {
            listed.retain(|l| l.position.as_ref().is_some_and(|p| p.status != Status::OutOfStock));
        }
    }
    if let Some(limit) = limit {
        listed.truncate(limit);
    }
    Ok(Json(Directory { locations: listed }))
}

fn admin(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if !app.tokens.is_admin(headers) {
        return Err(ApiError::Unauthorized(
            "The store directory is changed with the admin token: `Authorization: Bearer <admin token>`.".into(),
        ));
    }
    if let Some(file) = app.directory.file() {
        return Err(ApiError::FromFile(format!(
            "This hub's store directory is its --locations-file ({}): change the file, and the hub reads it again.",
            file.display()
        )));
    }
    Ok(())
}

fn location_id(id: &str) -> Result<LocationId, ApiError> {
    LocationId::parse(id).map_err(|e| ApiError::bad(ErrorCode::InvalidLocation, format!("location {e}")))
}

#[utoipa::path(put, path = "/v1/locations/{location}", tag = "admin",
    params(("location" = String, Path, description = "The location's id, as events and positions name it")),
    request_body(content = Store),
    responses(
        (status = 200, description = "Kept: the entry as it now reads", body = Listed),
        (status = 400, description = "An invalid id, or an entry with a missing or bad field", body = ErrorBody),
        (status = 401, description = "Not the admin token", body = ErrorBody),
        (status = 409, description = "The directory is the hub's `--locations-file`", body = ErrorBody),
        (status = 503, description = "Storage cannot take writes right now; nothing was changed", body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn put(State(app): State<AppState>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Result<Json<Listed>, ApiError> {
    let id = location_id(&id)?;
    admin(&app, &headers)?;
    let store: Store =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad(ErrorCode::InvalidStore, format!("not a store entry: {e}")))?;
    check(&store).map_err(|e| ApiError::bad(ErrorCode::InvalidStore, e))?;
    let json = serde_json::to_string(&store).expect("a store serialises");
    let written = app.writer.set_store(id.to_string(), Some(json)).await;
    app.directory.changed();
    written?;
    Ok(Json(Listed { id, store, distance_m: None, position: None }))
}

#[utoipa::path(delete, path = "/v1/locations/{location}", tag = "admin",
    params(("location" = String, Path, description = "The location's id")),
    responses(
        (status = 204, description = "Removed from the directory (its stock and history stay)"),
        (status = 400, description = "An invalid id", body = ErrorBody),
        (status = 401, description = "Not the admin token", body = ErrorBody),
        (status = 404, description = "No such store in the directory", body = ErrorBody),
        (status = 409, description = "The directory is the hub's `--locations-file`", body = ErrorBody),
        (status = 503, description = "Storage cannot take writes right now; nothing was changed", body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn delete(State(app): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Result<StatusCode, ApiError> {
    let id = location_id(&id)?;
    admin(&app, &headers)?;
    app.directory.changed();
    let stores = app.directory.stores(&app.reader).await.map_err(|_| ApiError::Unavailable)?;
    if !stores.iter().any(|(s, _)| *s == id) {
        return Err(ApiError::NotFound(format!("There is no store `{id}` in the directory.")));
    }
    let written = app.writer.set_store(id.to_string(), None).await;
    app.directory.changed();
    written?;
    Ok(StatusCode::NO_CONTENT)
}
