//! `GET /v1/availability` and `GET /v1/oversold`.

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use shelfcast_protocol::wire::{LocationChanges, PositionsResponse};
use shelfcast_protocol::{LocationId, Reservation, ReservationStatus};

use super::{selection, AppState};
use crate::auth;
use crate::error::ApiError;

pub async fn availability(State(app): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<PositionsResponse>, ApiError> {
    let q = selection::parse(q.as_deref())?;
    let positions = app.state.positions(&q.positions, app.state.clock.now());
    Ok(Json(PositionsResponse { positions }))
}

/// `GET /v1/oversold`: positions where reservations exceed what is on hand, for the locations
/// the device token covers, so a merchant can act (call the shopper, move stock). Counts are
/// never "fixed" by dropping events: this list is how the conflict is made visible.
pub async fn oversold(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<PositionsResponse>, ApiError> {
    let scope = auth::bearer(&headers)
        .and_then(|t| app.tokens.scope(t))
        .ok_or_else(|| ApiError::Unauthorized("Send a device token as `Authorization: Bearer <token>`.".into()))?;
    let positions = app.state.oversold(app.state.clock.now(), |k| scope.allows(&k.location));
    Ok(Json(PositionsResponse { positions }))
}

#[derive(Deserialize)]
pub struct Since {
    #[serde(default)]
    since: u64,
}

/// `GET /v1/locations/{location}/changes?since=V`: an edge node follows its location through
/// this, with the location's device token: positions changed after `since`, and the open
/// reservations staff must set aside.
pub async fn location_changes(
    State(app): State<AppState>,
    Path(location): Path<String>,
    Query(q): Query<Since>,
    headers: HeaderMap,
) -> Result<Json<LocationChanges>, ApiError> {
    let location = LocationId::parse(&location).map_err(|e| ApiError::bad("invalid_location", format!("location {e}")))?;
    let scope = auth::bearer(&headers)
        .and_then(|t| app.tokens.scope(t))
        .ok_or_else(|| ApiError::Unauthorized("Send the location's device token as `Authorization: Bearer <token>`.".into()))?;
    if !scope.allows(&location) {
        return Err(ApiError::Forbidden(format!("This device token does not cover `{location}`.")));
    }
    // Read the version first: everything up to it is in the scan that follows.
    let version = app.state.published();
    let now = app.state.clock.now();
    let positions = app.state.changed_at(&location, q.since, now);
    let reader = app.reader.clone();
    let loc = location.to_string();
    let rows = tokio::task::spawn_blocking(move || {
        let conn = reader.lock().map_err(|_| ApiError::Unavailable)?;
        crate::store::sqlite::open_reservations(&conn, &loc).map_err(|_| ApiError::Unavailable)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let reservations = rows
        .iter()
        .filter(|r| {
            let status = Reservation { status: r.status, qty: r.qty, expires_at: r.expires_at }.status_at(now);
            matches!(status, ReservationStatus::Held | ReservationStatus::Confirmed)
        })
        .map(|r| super::reservations::view(r, now, false))
        .collect();
    Ok(Json(LocationChanges { version, positions, reservations }))
}
