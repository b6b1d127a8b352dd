//! Click and collect: `POST /v1/reservations`, and `GET`/`DELETE`/`confirm`/`fulfil` on one.

use axum::body::{to_bytes, Body};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use shelfcast_protocol::clock::{format_rfc3339, Millis};
use shelfcast_protocol::reservation::{MAX_RESERVATION_QTY, MIN_RESERVATION_QTY};
use shelfcast_protocol::wire::ErrorBody;
use shelfcast_protocol::wire::ReservationView;
use shelfcast_protocol::ErrorCode;
use shelfcast_protocol::{Action, LocationId, PositionKey, Reservation, ReservationKey, ReservationStatus, Sku};
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
    }
}

#[derive(Deserialize)]
struct ReserveFields {
    sku: Option<Value>,
    location: Option<Value>,
    qty: Option<Value>,
    key: Option<Value>,
}

fn string_field<'a>(v: &'a Option<Value>, name: &str, code: ErrorCode) -> Result<&'a str, ApiError> {
    v.as_ref().and_then(Value::as_str).ok_or_else(|| ApiError::bad(code, format!("`{name}` is required and must be a string")))
}

#[utoipa::path(post, path = "/v1/reservations", tag = "reservations",
    request_body(content = shelfcast_protocol::wire::ReserveRequest, description = "`key`: 16 to 128 printable ASCII characters, unguessable; `qty`: 1 to 1,000"),
    responses(
        (status = 201, description = "Held", body = ReservationView),
        (status = 200, description = "This key's reservation, made before", body = ReservationView),
        (status = 400, description = "A missing or invalid field", body = ErrorBody),
        (status = 409, description = "Not enough available (`available` says how many)", body = ErrorBody),
        (status = 413, description = "The body is over 16 KiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "The key was used for another sku, location or quantity", body = ErrorBody),
        Refusals))]
pub async fn create(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<impl IntoResponse, ApiError> {
    if content_type(&headers) != Some("application/json") {
        return Err(ApiError::UnsupportedMediaType("Send the reservation as application/json.".into()));
    }
    let bytes = to_bytes(body, MAX_BODY).await.map_err(|_| ApiError::TooLarge {
        code: ErrorCode::PayloadTooLarge,
        message: "A reservation request is a small JSON object: at most 16 KiB.".into(),
    })?;
    let b: ReserveFields = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad(ErrorCode::MalformedBody, format!("the body is not a JSON object ({e})")))?;
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
        WriteError::Insufficient { available } => ApiError::InsufficientStock { available, location: position.location.clone() },
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
    let scope = app.tokens.device(&headers, "Fulfilment needs the location's device token.")?;
    act(&app, id, ActAuth::Device(scope), Action::Fulfil, "fulfilled").await
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
