//! `GET /v1/availability`.

use axum::extract::{RawQuery, State};
use axum::Json;
use shelfcast_protocol::wire::PositionsResponse;

use super::{selection, AppState};
use crate::error::ApiError;

pub async fn availability(State(app): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<PositionsResponse>, ApiError> {
    let q = selection::parse(q.as_deref())?;
    let positions = app.state.positions(&q.positions, app.state.clock.now());
    Ok(Json(PositionsResponse { positions }))
}
