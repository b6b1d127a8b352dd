//! Click and collect: `POST /v1/reservations`, and `GET`/`DELETE`/`confirm`/`fulfil` on one.

use axum::body::{to_bytes, Body};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use shelfcast_protocol::clock::{format_rfc3339, Millis};
use shelfcast_protocol::reservation::{MAX_RELEASE_NOTE, MAX_RESERVATION_QTY, MIN_RESERVATION_QTY};
use shelfcast_protocol::wire::ErrorBody;
use shelfcast_protocol::wire::{ReservationView, RELEASED_BY_SHOPPER, RELEASED_BY_STORE};
use shelfcast_protocol::ErrorCode;
use shelfcast_protocol::{
    Action, LocationId, PositionKey, ReleaseReason, Reservation, ReservationKey, ReservationStatus, Sku, StaffRelease, Status,
};
use subtle::ConstantTimeEq;

use super::ingest::content_type;
use super::AppState;
use crate::auth;
use crate::engine::{ActAuth, WriteError};
use crate::error::ApiError;
use crate::store::ReservationRow;

const MAX_BODY: usize = 16 * 1024;

pub fn view(row: &ReservationRow, now: Millis, with_token: bool) -> ReservationView {
    let r = Reservation { status: row.status, qty: row.qty, expires_at: row.expires_at };
    let status = r.status_at(now);
    ReservationView {
        id: row.id.clone(),
        sku: row.key.sku.to_string(),
        location: row.key.location.to_string(),
        qty: row.qty,
        status,
        expires_at: (status == ReservationStatus::Held).then(|| row.expires_at.map(format_rfc3339)).flatten(),
        expires_in_ms: (status == ReservationStatus::Held).then(|| row.expires_at.map(|at| at.saturating_sub(now).max(0) as u64)).flatten(),
        token: with_token.then(|| row.token.clone()),
        released_by: (status == ReservationStatus::Released)
            .then(|| if row.released.is_some() { RELEASED_BY_STORE } else { RELEASED_BY_SHOPPER }.to_string()),
        reason: row.released.as_ref().map(|r| r.reason),
        created_at: Some(format_rfc3339(row.created_at)),
    }
}

/// A request's body as a small JSON object (`what` names it in the errors): 415 unless it is
/// `application/json`, 413 over 16 KiB, 400 if it does not parse.
pub(super) async fn small_json<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: Body, what: &str) -> Result<T, ApiError> {
    if content_type(headers) != Some("application/json") {
        return Err(ApiError::UnsupportedMediaType(format!("{what} is sent as application/json.")));
    }
    let bytes = to_bytes(body, MAX_BODY).await.map_err(|_| ApiError::TooLarge {
        code: ErrorCode::PayloadTooLarge,
        message: format!("{what} is a small JSON object: at most 16 KiB."),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad(ErrorCode::MalformedBody, format!("the body is not a JSON object ({e})")))
}

#[derive(Deserialize)]
struct ReserveFields {
    sku: Option<Value>,
    location: Option<Value>,
    qty: Option<Value>,
    key: Option<Value>,
}

pub(super) fn string_field<'a>(v: &'a Option<Value>, name: &str, code: ErrorCode) -> Result<&'a str, ApiError> {
    v.as_ref().and_then(Value::as_str).ok_or_else(|| ApiError::bad(code, format!("`{name}` is required and must be a string")))
}

#[utoipa::path(post, path = "/v1/reservations", tag = "reservations",
    request_body(content = shelfcast_protocol::wire::ReserveRequest, description = "`key`: 16 to 128 printable ASCII characters, unguessable; `qty`: 1 to 1,000"),
    responses(
        (status = 201, description = "Held", body = ReservationView),
        (status = 200, description = "This key's reservation, made before", body = ReservationView),
        (status = 400, description = "A missing or invalid field", body = ErrorBody),
        (status = 409, description = "Not enough available (`available` says how many, unless the hub's `--disclose` withholds it)", body = ErrorBody),
        (status = 413, description = "The body is over 16 KiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "The key was used for another sku, location or quantity", body = ErrorBody),
        Refusals))]
pub async fn create(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<impl IntoResponse, ApiError> {
    let b: ReserveFields = small_json(&headers, body, "A reservation request").await?;
    let sku = Sku::parse(string_field(&b.sku, "sku", ErrorCode::InvalidSku)?)
        .map_err(|e| ApiError::bad(ErrorCode::InvalidSku, format!("`sku` {e}")))?;
    let location = LocationId::parse(string_field(&b.location, "location", ErrorCode::InvalidLocation)?)
        .map_err(|e| ApiError::bad(ErrorCode::InvalidLocation, format!("`location` {e}")))?;
    let qty =
        b.qty.as_ref().and_then(Value::as_i64).filter(|q| (MIN_RESERVATION_QTY..=MAX_RESERVATION_QTY).contains(q)).ok_or_else(|| {
            ApiError::bad(
                ErrorCode::InvalidQty,
                format!("`qty` must be a whole number from {MIN_RESERVATION_QTY} to {MAX_RESERVATION_QTY}"),
            )
        })?;
    let key = ReservationKey::parse(string_field(&b.key, "key", ErrorCode::InvalidKey)?).map_err(|e| {
        ApiError::bad(ErrorCode::InvalidKey, format!("`key` {e}: use 16 to 128 printable ASCII characters, e.g. a random UUID"))
    })?;
    let position = PositionKey::new(sku, location);
    let outcome = app.writer.reserve(key, position.clone(), qty).await;
    let label = match &outcome {
        Ok(r) if r.created => "created",
        Ok(_) => "replayed",
        Err(WriteError::Insufficient { .. }) => "insufficient_stock",
        Err(WriteError::KeyReused) => "key_reused",
        Err(_) => "unavailable",
    };
    app.metrics.reservations.with_label_values(&[label]).inc();
    let reserved = outcome.map_err(|e| match e {
        WriteError::Insufficient { available } => {
            let shown = app.disclosure(&headers).shows(Status::of(available, app.state.low_stock));
            ApiError::InsufficientStock { available: shown.then_some(available), location: position.location.clone() }
        }
        e => e.into(),
    })?;
    let status = if reserved.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(view(&reserved.row, app.state.clock.now(), true))))
}

fn holder(headers: &HeaderMap) -> Result<String, ApiError> {
    auth::bearer(headers)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::Unauthorized("Send the reservation's token as `Authorization: Bearer <token>`.".into()))
}

#[utoipa::path(get, path = "/v1/reservations/{id}", tag = "reservations",
    params(("id" = String, Path, description = "The reservation's id")),
    responses(
        (status = 200, description = "The reservation", body = ReservationView),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 404, description = "No such reservation for this token", body = ErrorBody),
        (status = 429, description = "Too many requests from this client: wait `Retry-After` seconds", body = ErrorBody)),
    security(("reservation_token" = [])))]
pub async fn get(State(app): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Result<Json<ReservationView>, ApiError> {
    let token = holder(&headers)?;
    let row = app.reader.reservation(&id).await.map_err(|_| ApiError::Unavailable)?;
    match row {
        Some(row) if bool::from(row.token.as_bytes().ct_eq(token.as_bytes())) => Ok(Json(view(&row, app.state.clock.now(), false))),
        _ => Err(ApiError::no_reservation()),
    }
}

async fn act(app: &AppState, id: String, auth: ActAuth, action: Action, label: &str) -> Result<Json<ReservationView>, ApiError> {
    let row = app.writer.act(id, auth, action).await?;
    app.metrics.reservations.with_label_values(&[label]).inc();
    Ok(Json(view(&row, app.state.clock.now(), false)))
}

/// `DELETE`: the shopper lets go; the units are available again at once.
#[utoipa::path(delete, path = "/v1/reservations/{id}", tag = "reservations",
    params(("id" = String, Path, description = "The reservation's id")),
    responses(
        (status = 200, description = "Released (or already released): the stock is available again", body = ReservationView),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 404, description = "No such reservation for this token", body = ErrorBody),
        (status = 409, description = "Already fulfilled or expired", body = ErrorBody),
        Refusals),
    security(("reservation_token" = [])))]
pub async fn release(State(app): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Result<Json<ReservationView>, ApiError> {
    act(&app, id, ActAuth::Holder(holder(&headers)?), Action::Release, "released").await
}

/// The order is placed: the hold no longer expires.
#[utoipa::path(post, path = "/v1/reservations/{id}/confirm", tag = "reservations",
    params(("id" = String, Path, description = "The reservation's id")),
    responses(
        (status = 200, description = "Confirmed: the hold no longer expires", body = ReservationView),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 404, description = "No such reservation for this token", body = ErrorBody),
        (status = 409, description = "Not held any more", body = ErrorBody),
        Refusals),
    security(("reservation_token" = [])))]
pub async fn confirm(State(app): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Result<Json<ReservationView>, ApiError> {
    act(&app, id, ActAuth::Holder(holder(&headers)?), Action::Confirm, "confirmed").await
}

/// Picked up at the store, by a device of that location.
#[utoipa::path(post, path = "/v1/reservations/{id}/fulfil", tag = "reservations",
    params(("id" = String, Path, description = "The reservation's id")),
    responses(
        (status = 200, description = "Picked up: on-hand and reserved both drop by the quantity", body = ReservationView),
        (status = 401, description = "No known device token", body = ErrorBody),
        (status = 403, description = "The device token does not cover the reservation's location", body = ErrorBody),
        (status = 404, description = "No such reservation", body = ErrorBody),
        (status = 409, description = "Released or expired", body = ErrorBody),
        Refusals),
    security(("device_token" = [])))]
pub async fn fulfil(State(app): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Result<Json<ReservationView>, ApiError> {
    let (scope, by) = app.tokens.device_labelled(&headers, "Fulfilment needs the location's device token.")?;
    act(&app, id, ActAuth::Device(scope, by), Action::Fulfil, "fulfilled").await
}
#[derive(Deserialize)]
struct StaffReleaseFields {
    reason: Option<Value>,
    note: Option<Value>,
}

/// Store staff release a reservation they cannot hand over, saying why: the stock is
/// available again at once, and the shopper's `GET` shows `released_by: store` and the reason.
#[utoipa::path(post, path = "/v1/reservations/{id}/release", tag = "reservations",
    params(("id" = String, Path, description = "The reservation's id")),
    request_body(content = Object, description = "`{\"reason\": \"not_found\"|\"damaged\"|\"customer_cancelled\"|\"other\", \"note\": \"…\"}` (note optional, at most 500 characters)"),
    responses(
        (status = 200, description = "Released by the store (or already released): the stock is available again", body = ReservationView),
        (status = 400, description = "No known reason, or the note is too long", body = ErrorBody),
        (status = 401, description = "No known device token or console session", body = ErrorBody),
        (status = 403, description = "The device token does not cover the reservation's location", body = ErrorBody),
        (status = 404, description = "No such reservation", body = ErrorBody),
        (status = 409, description = "Already fulfilled or expired", body = ErrorBody),
        (status = 413, description = "The body is over 16 KiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        Refusals),
    security(("device_token" = [])))]
pub async fn staff_release(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ReservationView>, ApiError> {
    let (scope, by) = app.tokens.device_labelled(&headers, "A release by the store needs the location's device token.")?;
    let b: StaffReleaseFields = small_json(&headers, body, "A release").await?;
    let reasons = ReleaseReason::ALL.map(ReleaseReason::as_str).join(", ");
    let reason = b
        .reason
        .as_ref()
        .and_then(Value::as_str)
        .and_then(ReleaseReason::parse)
        .ok_or_else(|| ApiError::bad(ErrorCode::InvalidReason, format!("`reason` is required: one of {reasons}")))?;
    let note = match &b.note {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) if n.chars().count() <= MAX_RELEASE_NOTE => Some(n.trim().to_string()).filter(|n| !n.is_empty()),
        Some(_) => return Err(ApiError::bad(ErrorCode::InvalidReason, format!("`note` is text of at most {MAX_RELEASE_NOTE} characters"))),
    };
    act(&app, id, ActAuth::Staff(scope, by, StaffRelease { reason, note }), Action::Release, "released_by_store").await
}

#[derive(Deserialize)]
pub struct ListQuery {
    location: Option<String>,
    status: Option<String>,
}

/// The open reservations at a location (oldest first): what the pickup desk sets aside.
#[utoipa::path(get, path = "/v1/reservations", tag = "reservations",
    params(("location" = String, Query, description = "The store"),
        ("status" = Option<String>, Query, description = "`held`, `confirmed` or both, comma-separated (default both)")),
    responses(
        (status = 200, description = "`{\"location\": L, \"reservations\": [reservation, …]}`, oldest first", body = Object),
        (status = 400, description = "No or an invalid location, or another status", body = ErrorBody),
        (status = 401, description = "No known device token or console session", body = ErrorBody),
        (status = 403, description = "The token does not cover this location", body = ErrorBody),
        (status = 429, description = "Too many requests from this client: wait `Retry-After` seconds", body = ErrorBody),
        (status = 503, description = "Storage cannot be read right now", body = ErrorBody)),
    security(("device_token" = [])))]
pub async fn list(State(app): State<AppState>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let scope = app.tokens.device(&headers, "Send the location's device token as `Authorization: Bearer <token>`.")?;
    let location = LocationId::parse(q.location.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::bad(ErrorCode::InvalidLocation, format!("`location` {e}")))?;
    if !scope.allows(&location) {
        return Err(ApiError::Forbidden(format!("This device token does not cover `{location}`.")));
    }
    let statuses = match q.status.as_deref() {
        None | Some("") => vec![ReservationStatus::Held, ReservationStatus::Confirmed],
        Some(list) => list
            .split(',')
            .map(|s| ReservationStatus::parse(s.trim()).filter(|s| s.is_open()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::bad(ErrorCode::InvalidQuery, "`status` lists open statuses only: held, confirmed"))?,
    };
    let reservations = open_at(&app, &location).await?.into_iter().filter(|r| statuses.contains(&r.status)).collect::<Vec<_>>();
    Ok(Json(serde_json::json!({"location": location, "reservations": reservations})))
}

/// The reservations open at `location` now, oldest first, as staff see them (no tokens).
pub async fn open_at(app: &AppState, location: &LocationId) -> Result<Vec<ReservationView>, ApiError> {
    let now = app.state.clock.now();
    let rows = app.reader.open_reservations(location.as_str()).await.map_err(|_| ApiError::Unavailable)?;
    Ok(rows
        .iter()
        .filter(|r| Reservation { status: r.status, qty: r.qty, expires_at: r.expires_at }.status_at(now).is_open())
        .map(|r| view(r, now, false))
        .collect())
}

/// What any shopper-facing write may answer besides its own outcomes: this client sent too
/// many requests, or storage cannot take writes right now (nothing was changed).
/// Documentation only (`/openapi.json`): the handlers answer these through `ApiError`.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Refusals {
    #[response(status = 429, description = "Too many requests from this client: wait `Retry-After` seconds")]
    TooMany(ErrorBody),
    #[response(status = 503, description = "Storage cannot take writes right now; nothing was changed")]
    Unavailable(ErrorBody),
}
