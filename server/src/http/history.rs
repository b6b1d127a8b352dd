//! `GET /v1/positions/{sku}/{location}/history`: every change to a position, newest first,
//! with the position as each change left it.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use shelfcast_protocol::clock::format_rfc3339;
use shelfcast_protocol::wire::{ErrorBody, HistoryItem, HistoryKind, HistoryPage};
use shelfcast_protocol::{ErrorCode, LocationId, PositionKey, Sku};

use super::AppState;
use crate::error::ApiError;
use crate::store::{Changed, HistoryRow};

/// Entries a page holds unless `limit` says otherwise, and the most it may say.
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;

#[derive(Deserialize)]
pub struct Page {
    limit: Option<String>,
    before: Option<String>,
}

impl Page {
    /// The page asked for: how many entries, older than which (a `next` of an earlier page).
    fn parse(&self) -> Result<(i64, Option<i64>), ApiError> {
        let limit = match self.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| ApiError::bad(ErrorCode::InvalidQuery, format!("`limit` is a whole number from 1 to {MAX_LIMIT}")))?,
        };
        let before = match self.before.as_deref() {
            None => None,
            Some(b) => Some(
                b.parse::<i64>()
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or_else(|| ApiError::bad(ErrorCode::InvalidQuery, "`before` is the `next` of an earlier page".to_string()))?,
            ),
        };
        Ok((limit, before))
    }
}

/// A position's history, newest first, paged with `before` = the `next` of the page before:
/// entries recorded meanwhile are newer, so paging on never repeats or skips one.
#[utoipa::path(get, path = "/v1/positions/{sku}/{location}/history", tag = "read",
    params(
        ("sku" = String, Path, description = "The position's SKU"),
        ("location" = String, Path, description = "The position's location"),
        ("limit" = Option<i64>, Query, description = "Entries on the page, 1 to 500 (100 unless given)", minimum = 1, maximum = 500),
        ("before" = Option<String>, Query, description = "The `next` of an earlier page: the entries older than that page's")),
    responses(
        (status = 200, description = "`{\"items\": [...], \"next\": cursor | null}`, newest first", body = HistoryPage),
        (status = 400, description = "An invalid SKU, location, `limit` or `before`", body = ErrorBody),
        (status = 401, description = "No known device token, console session or admin token", body = ErrorBody),
        (status = 403, description = "The token does not cover this location", body = ErrorBody),
        (status = 503, description = "Storage cannot be read right now", body = ErrorBody)),
    security(("device_token" = []), ("admin_token" = [])))]
pub async fn history(
    State(app): State<AppState>,
    Path((sku, location)): Path<(String, String)>,
    Query(page): Query<Page>,
    headers: HeaderMap,
) -> Result<Json<HistoryPage>, ApiError> {
    let sku = Sku::parse(&sku).map_err(|e| ApiError::bad(ErrorCode::InvalidSku, format!("sku {e}")))?;
    let location = LocationId::parse(&location).map_err(|e| ApiError::bad(ErrorCode::InvalidLocation, format!("location {e}")))?;
    let (limit, before) = page.parse()?;
    let (scope, _) =
        app.tokens.device_or_admin(&headers, "Send the location's device token or the admin token as `Authorization: Bearer <token>`.")?;
    if !scope.allows(&location) {
        return Err(ApiError::Forbidden(format!("This token does not cover `{location}`.")));
    }
    let key = PositionKey::new(sku, location);
    // One more than the page: whether there is an older page.
    let mut rows = app.reader.history(&key, before, limit + 1).await.map_err(|error| {
        tracing::warn!(%error, "a position's history could not be read");
        ApiError::Unavailable
    })?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.seq.to_string())
    } else {
        None
    };
    Ok(Json(HistoryPage { items: rows.into_iter().map(item).collect(), next }))
}

fn item(r: HistoryRow) -> HistoryItem {
    let (kind, id, event_type, from, to) = match r.what {
        Changed::Event { id, kind } => (HistoryKind::Event, id, Some(kind), None, None),
        Changed::Reservation { id, from, to } => (HistoryKind::Reservation, id, None, from, Some(to)),
    };
    HistoryItem {
        kind,
        id,
        event_type,
        from,
        to,
        qty: r.qty,
        at: r.at.map(format_rfc3339),
        received_at: format_rfc3339(r.received_at),
        by: r.by,
        on_hand: r.on_hand,
        reserved: r.reserved,
        version: r.version,
    }
}
