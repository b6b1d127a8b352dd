//! Webhook subscriptions (`/admin/webhooks`, the admin token) and back-in-stock watches
//! (`POST /v1/watches`, a device token or the admin token).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use shelfcast_protocol::clock::format_rfc3339;
use shelfcast_protocol::webhook::{check_subscriber, Topic};
use shelfcast_protocol::wire::{DeliveryList, DeliveryView, ErrorBody, WatchRequest, WatchView, WebhookList, WebhookRequest, WebhookView};
use shelfcast_protocol::{ErrorCode, LocationId, PositionKey, Sku};

use super::ops::admin_only;
use super::reservations::{small_json, string_field};
use super::AppState;
use crate::error::ApiError;
use crate::store::{WatchRow, Webhook};
use crate::webhooks::{check_url, new_id, new_secret};

/// Most locations one subscription names (or `*`).
const MAX_LOCATIONS: usize = 50;

fn view(w: &Webhook, secret: bool) -> WebhookView {
    WebhookView {
        id: w.id.clone(),
        url: w.url.clone(),
        events: w.topics.iter().map(|t| t.as_str().to_owned()).collect(),
        locations: w.locations.clone(),
        created_at: format_rfc3339(w.created_at),
        secret: secret.then(|| w.secret.clone()),
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad(ErrorCode::InvalidWebhook, message.into())
}

#[derive(Deserialize)]
struct WebhookFields {
    url: Option<Value>,
    events: Option<Value>,
    locations: Option<Value>,
}

/// The strings of a JSON array field, or what is wrong with it.
fn strings(v: &Value, name: &str) -> Result<Vec<String>, ApiError> {
    let list = v.as_array().ok_or_else(|| invalid(format!("`{name}` is an array of strings")))?;
    list.iter().map(|s| s.as_str().map(str::to_owned).ok_or_else(|| invalid(format!("`{name}` is an array of strings")))).collect()
}

fn unavailable(error: impl std::fmt::Display) -> ApiError {
    tracing::warn!(%error, "the webhook subscriptions cannot be read");
    ApiError::Unavailable
}

async fn find(app: &AppState, id: &str) -> Result<Webhook, ApiError> {
    let all = app.reader.webhooks().await.map_err(unavailable)?;
    all.into_iter().find(|w| w.id == id).ok_or_else(|| ApiError::NotFound(format!("No webhook `{id}`.")))
}

#[utoipa::path(post, path = "/admin/webhooks", tag = "admin",
    request_body(content = WebhookRequest),
    responses(
        (status = 201, description = "Subscribed: the answer holds the signing `secret`, shown this once", body = WebhookView),
        (status = 400, description = "A bad or non-public `url`, or unknown `events` or `locations`", body = ErrorBody),
        (status = 401, description = "Not the admin token", body = ErrorBody),
        (status = 404, description = "The hub was started without --admin-token", body = ErrorBody),
        (status = 413, description = "The body is over 16 KiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 503, description = "Storage cannot take writes right now; nothing was changed", body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn create(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    admin_only(&app, &headers)?;
    let b: WebhookFields = small_json(&headers, body, "A webhook subscription").await?;
    let url = string_field(&b.url, "url", ErrorCode::InvalidWebhook)?.trim().to_string();
    check_url(&url, app.allow_private_webhooks).await.map_err(invalid)?;
    let events = strings(b.events.as_ref().unwrap_or(&Value::Null), "events")?;
    let mut topics = Vec::new();
    for e in &events {
        let topic = Topic::parse(e).ok_or_else(|| {
            let known: Vec<&str> = Topic::ALL.iter().map(|t| t.as_str()).collect();
            invalid(format!("`{e}` is not an event; the events are {}", known.join(", ")))
        })?;
        if !topics.contains(&topic) {
            topics.push(topic);
        }
    }
    if topics.is_empty() {
        return Err(invalid("`events` names at least one event"));
    }
    let locations = match &b.locations {
        None | Some(Value::Null) => vec!["*".to_string()],
        Some(v) => strings(v, "locations")?,
    };
    if locations.is_empty() || locations.len() > MAX_LOCATIONS {
        return Err(invalid(format!("`locations` names 1 to {MAX_LOCATIONS} locations, or is `[\"*\"]` for all")));
    }
    for l in &locations {
        if l != "*" {
            LocationId::parse(l).map_err(|e| invalid(format!("`locations`: {l:?} {e}")))?;
        }
    }
    let webhook = Webhook { id: new_id("wh"), url, secret: new_secret(), topics, locations, created_at: app.state.clock.now() };
    app.writer.add_webhook(webhook.clone()).await?;
    app.state.hooks.refresh(&app.reader).await.map_err(unavailable)?;
    tracing::info!(webhook = %webhook.id, url = %webhook.url, "webhook subscribed");
    Ok((StatusCode::CREATED, Json(view(&webhook, true))))
}

#[utoipa::path(get, path = "/admin/webhooks", tag = "admin",
    responses(
        (status = 200, description = "Every subscription (without secrets)", body = WebhookList),
        (status = 401, description = "Not the admin token", body = ErrorBody),
        (status = 404, description = "The hub was started without --admin-token", body = ErrorBody),
        (status = 503, description = "Storage cannot be read right now", body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn list(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<WebhookList>, ApiError> {
    admin_only(&app, &headers)?;
    let all = app.reader.webhooks().await.map_err(unavailable)?;
    Ok(Json(WebhookList { webhooks: all.iter().map(|w| view(w, false)).collect() }))
}

#[utoipa::path(delete, path = "/admin/webhooks/{id}", tag = "admin",
    params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 204, description = "Unsubscribed; its pending deliveries end (`cancelled`)"),
        (status = 401, description = "Not the admin token", body = ErrorBody),
        (status = 404, description = "No such subscription, or the hub was started without --admin-token", body = ErrorBody),
        (status = 503, description = "Storage cannot take writes right now; nothing was changed", body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn delete(State(app): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Result<StatusCode, ApiError> {
    admin_only(&app, &headers)?;
    find(&app, &id).await?;
    app.writer.delete_webhook(id.clone()).await?;
    app.state.hooks.refresh(&app.reader).await.map_err(unavailable)?;
    tracing::info!(webhook = %id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<String>,
}

#[utoipa::path(get, path = "/admin/webhooks/{id}/deliveries", tag = "admin",
    params(("id" = String, Path, description = "The subscription's id"),
        ("limit" = Option<u32>, Query, description = "At most this many, 1 to 500 (default 100)", minimum = 1, maximum = 500)),
    responses(
        (status = 200, description = "Its deliveries, latest first", body = DeliveryList),
        (status = 400, description = "A bad `limit`", body = ErrorBody),
        (status = 401, description = "Not the admin token", body = ErrorBody),
        (status = 404, description = "No such subscription, or the hub was started without --admin-token", body = ErrorBody),
        (status = 503, description = "Storage cannot be read right now", body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn deliveries(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Limit>,
    headers: HeaderMap,
) -> Result<Json<DeliveryList>, ApiError> {
    admin_only(&app, &headers)?;
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=500).contains(l))
            .ok_or_else(|| ApiError::bad(ErrorCode::InvalidQuery, "`limit` is a whole number from 1 to 500"))?,
    };
    find(&app, &id).await?;
    let rows = app.reader.deliveries(&id, limit).await.map_err(unavailable)?;
    let deliveries = rows
        .into_iter()
        .map(|d| DeliveryView {
            id: d.msg_id,
            kind: d.topic,
            state: d.state,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            next_try: d.next_try.map(format_rfc3339),
            created_at: format_rfc3339(d.created_at),
        })
        .collect();
    Ok(Json(DeliveryList { deliveries }))
}

#[derive(Deserialize)]
struct WatchFields {
    sku: Option<Value>,
    location: Option<Value>,
    subscriber: Option<Value>,
}

#[utoipa::path(post, path = "/v1/watches", tag = "admin",
    request_body(content = WatchRequest),
    responses(
        (status = 201, description = "Watching: the next time the position goes from none available to some, one `watch.triggered` delivery per subscribed webhook", body = WatchView),
        (status = 400, description = "A missing or invalid field", body = ErrorBody),
        (status = 401, description = "No known device or admin token", body = ErrorBody),
        (status = 403, description = "The device token does not cover this location", body = ErrorBody),
        (status = 413, description = "The body is over 16 KiB", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 503, description = "Storage cannot take writes right now; nothing was changed", body = ErrorBody)),
    security(("device_token" = []), ("admin_token" = [])))]
pub async fn watch(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<(StatusCode, Json<WatchView>), ApiError> {
    let (scope, _) = app.tokens.device_or_admin(&headers, "Send a device token or the admin token as `Authorization: Bearer <token>`.")?;
    let b: WatchFields = small_json(&headers, body, "A watch").await?;
    let sku = Sku::parse(string_field(&b.sku, "sku", ErrorCode::InvalidSku)?)
        .map_err(|e| ApiError::bad(ErrorCode::InvalidSku, format!("`sku` {e}")))?;
    let location = LocationId::parse(string_field(&b.location, "location", ErrorCode::InvalidLocation)?)
        .map_err(|e| ApiError::bad(ErrorCode::InvalidLocation, format!("`location` {e}")))?;
    let subscriber = string_field(&b.subscriber, "subscriber", ErrorCode::InvalidSubscriber)?.to_string();
    check_subscriber(&subscriber).map_err(|e| ApiError::bad(ErrorCode::InvalidSubscriber, e))?;
    if !scope.allows(&location) {
        return Err(ApiError::Forbidden(format!("This token does not cover `{location}`.")));
    }
    let row = WatchRow { id: new_id("watch"), key: PositionKey::new(sku, location), subscriber, created_at: app.state.clock.now() };
    app.writer.watch(row.clone()).await?;
    Ok((
        StatusCode::CREATED,
        Json(WatchView {
            id: row.id,
            sku: row.key.sku.to_string(),
            location: row.key.location.to_string(),
            subscriber: row.subscriber,
            created_at: format_rfc3339(row.created_at),
        }),
    ))
}
