//! `GET /v1/availability` and `GET /v1/oversold`.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use shelfcast_protocol::wire::PositionsResponse;

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
