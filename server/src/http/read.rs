//! `GET /v1/availability` and `GET /v1/oversold`.

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use shelfcast_protocol::partition::Cursor;
use shelfcast_protocol::wire::ErrorBody;
use shelfcast_protocol::wire::{LocationChanges, PositionsResponse, PublicPositions};
use shelfcast_protocol::ErrorCode;
use shelfcast_protocol::LocationId;

use super::stream::REPLICA_CATCH_UP;
use super::{selection, AppState};
use crate::error::ApiError;

#[utoipa::path(get, path = "/v1/availability", tag = "read",
    params(("sku" = Option<String>, Query, description = "One SKU, with `location`"),
        ("location" = Option<String>, Query, description = "Up to 50 locations, comma-separated (also `locations`)"),
        ("locations" = Option<String>, Query, description = "The same as `location`"),
        ("positions" = Option<String>, Query, description = "Up to 50 `SKU@location` pairs, comma-separated, instead of `sku` and `location`")),
    responses(
        (status = 200, description = "The positions, in the order asked; without a token, numbers the hub's `--disclose` withholds are `null`", body = PublicPositions),
        (status = 400, description = "No positions, more than 50, or an invalid SKU or location", body = ErrorBody)))]
pub async fn availability(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<PublicPositions>, ApiError> {
    let q = selection::parse(q.as_deref())?;
    app.serves(&q.positions)?;
    app.follow(&q.positions).await?;
    let mode = app.disclosure(&headers);
    let positions = app.state.positions(&q.positions, app.state.clock.now()).into_iter().map(|p| mode.apply(p)).collect();
    Ok(Json(PublicPositions { positions }))
}

/// `GET /v1/oversold`: positions where reservations exceed what is on hand, for the locations
/// the device token covers, so a merchant can act (call the shopper, move stock). Counts are
/// never "fixed" by dropping events: this list is how the conflict is made visible.
#[utoipa::path(get, path = "/v1/oversold", tag = "read",
    responses(
        (status = 200, description = "Positions where reservations exceed what is on hand, at the token's locations", body = PositionsResponse),
        (status = 401, description = "No known device token", body = ErrorBody)),
    security(("device_token" = [])))]
pub async fn oversold(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<PositionsResponse>, ApiError> {
    let scope = app.tokens.device(&headers, "Send a device token as `Authorization: Bearer <token>`.")?;
    app.follow_all().await?;
    let positions = app.state.oversold(app.state.clock.now(), |k| scope.allows(&k.location));
    Ok(Json(PositionsResponse { positions }))
}

const MAX_WAIT: u64 = 60;

#[derive(Deserialize)]
pub struct Since {
    /// A cursor of an earlier answer (`LocationChanges::cursor`), or a version: then that
    /// version in every partition.
    #[serde(default)]
    since: Option<String>,
    /// Seconds to wait for a change when there is none yet (long poll), at most 60.
    #[serde(default)]
    wait: u64,
}

/// `GET /v1/locations/{location}/changes?since=V[&wait=S]`: an edge node follows its location
/// through this, with the location's device token: positions changed after `since`, and the
/// open reservations staff must set aside. With `wait`, an answer with no change is held back
/// until a change at the location (or `wait` seconds), so the edge hears of changes at once.
#[utoipa::path(get, path = "/v1/locations/{location}/changes", tag = "read",
    params(
        ("location" = String, Path, description = "The location an edge node follows"),
        ("since" = Option<String>, Query, description = "The `cursor` of the previous answer (or a version: that version in every partition)"),
        ("wait" = Option<u64>, Query, description = "Seconds to wait for a change when there is none yet (at most 60)", maximum = 60)),
    responses(
        (status = 200, description = "Positions changed after `since` and the open reservations", body = LocationChanges),
        (status = 400, description = "An invalid location or number", body = ErrorBody),
        (status = 401, description = "No known device token", body = ErrorBody),
        (status = 403, description = "The token does not cover this location", body = ErrorBody)),
    security(("device_token" = [])))]
pub async fn location_changes(
    State(app): State<AppState>,
    Path(location): Path<String>,
    Query(q): Query<Since>,
    headers: HeaderMap,
) -> Result<Json<LocationChanges>, ApiError> {
    let location = LocationId::parse(&location).map_err(|e| ApiError::bad(ErrorCode::InvalidLocation, format!("location {e}")))?;
    if q.wait > MAX_WAIT {
        return Err(ApiError::bad(ErrorCode::InvalidQuery, format!("`wait` is at most {MAX_WAIT} seconds")));
    }
    let scope = app.tokens.device(&headers, "Send the location's device token as `Authorization: Bearer <token>`.")?;
    if !scope.allows(&location) {
        return Err(ApiError::Forbidden(format!("This device token does not cover `{location}`.")));
    }
    app.follow_all().await?;
    let all: Vec<u32> = (0..app.state.partitions()).collect();
    let since = match q.since.as_deref().map(str::trim) {
        None => Cursor::default(),
        Some(text) => match text.parse::<u64>() {
            Ok(v) => Cursor::everywhere(v, all.iter().copied()),
            Err(_) => Cursor::pairs(text).filter(|c| c.iter().all(|(p, _)| p < app.state.partitions())).ok_or_else(|| {
                ApiError::bad(ErrorCode::InvalidQuery, "`since` is a version or the `cursor` of an earlier answer".to_string())
            })?,
        },
    };
    if app.reader.shared() && q.wait > 0 {
        // A replica a few milliseconds behind the one the edge asked last: let it catch up
        // rather than answer with a cursor behind the edge's (which means "start over").
        let wanted: Vec<(u32, u64)> = since.iter().filter(|(_, v)| *v != u64::MAX).collect();
        app.state.caught_up(&wanted, REPLICA_CATCH_UP.min(std::time::Duration::from_secs(q.wait))).await;
    }
    // Watch before looking, so a change between the look and the wait still wakes us; read
    // the versions before scanning, so everything up to them is in the scan.
    let watch = app.state.fanout.watch_location(&location);
    let mut upto = app.state.published_all();
    let behind = |upto: &[u64]| since.iter().any(|(p, v)| upto.get(p as usize).is_some_and(|u| *u < v));
    let mut positions = app.state.changed_at(&location, &since, app.state.clock.now());
    if positions.is_empty() && q.wait > 0 && !behind(&upto) {
        let wait = std::time::Duration::from_secs(q.wait);
        tokio::select! {
            _ = watch.notify.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = app.shutdown.cancelled() => {}
        }
        upto = app.state.published_all();
        positions = app.state.changed_at(&location, &since, app.state.clock.now());
    }
    let version = upto.iter().sum();
    let cursor = Some(upto.iter().enumerate().map(|(p, v)| (p as u32, *v)).collect::<Cursor>().encode(&all, usize::MAX));
    drop(watch);
    let reservations = super::reservations::open_at(&app, &location).await?;
    app.metrics.edge_positions.inc_by(positions.len() as u64);
    Ok(Json(LocationChanges { version, cursor, positions, reservations }))
}
