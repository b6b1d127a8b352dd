//! `/healthz`, `/readyz`, `/metrics`, and the admin endpoints `/admin/status`, `/admin/reload`.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use shelfcast_protocol::wire::ErrorBody;
use shelfcast_protocol::ErrorCode;

use super::AppState;
use crate::error::ApiError;

/// `{"status":"ok"}` or `{"status":"ready","version":…}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
}

/// The process is up and answering.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> impl IntoResponse {
    Json(Health { status: "ok", version: None })
}

/// Storage is reachable and takes writes, and the writer is running.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Storage is reachable and takes writes", body = Health),
        (status = 503, description = "Storage cannot take writes", body = ErrorBody)))]
pub async fn readyz(State(app): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let db_ok = app.reader.ping().await;
    if !db_ok || app.writer.is_closed() || !app.writer.storage_ok().await {
        return Err(ApiError::Unavailable);
    }
    Ok(Json(Health { status: "ready", version: Some(app.state.changes_published()) }))
}

/// With `--admin-token`, `/admin/*` needs it.
fn admin(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if app.tokens.has_admin() && !app.tokens.is_admin(headers) {
        return Err(ApiError::Unauthorized("Send the admin token as `Authorization: Bearer <token>`.".into()));
    }
    Ok(())
}

/// `/admin/*` exists only on a hub started with `--admin-token`.
pub(super) fn admin_only(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if !app.tokens.has_admin() {
        return Err(ApiError::NotFound("Admin endpoints are enabled by starting with --admin-token.".into()));
    }
    admin(app, headers)
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "The hub has an admin or metrics token and the request carries neither", body = ErrorBody)),
    security((), ("admin_token" = []), ("metrics_token" = [])))]
pub async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    // Open without either token (a probe on a private network); else either token reads it.
    if app.tokens.guards_metrics() && !app.tokens.may_scrape(&headers) {
        return Err(ApiError::Unauthorized("Send the metrics token (or the admin token) as `Authorization: Bearer <token>`.".into()));
    }
    app.metrics.open_streams.set(app.state.fanout.open_streams() as i64);
    app.metrics.positions.set(app.state.len() as i64);
    // A replica counts the oversold positions of the partitions it owns, so the replicas' sum
    // counts each once (a replica also holds the partitions its readers follow).
    let own = |k: &shelfcast_protocol::PositionKey| app.owners.as_ref().is_none_or(|o| o.writes(app.state.partition(k.sku.as_str())));
    app.metrics.oversold.set(app.state.oversold(app.state.clock.now(), own).len() as i64);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], app.metrics.render()))
}

/// `GET /admin/status`: what an operator checks first.
#[utoipa::path(get, path = "/admin/status", tag = "operations",
    responses(
        (status = 200, description = "Version, positions, open streams, device tokens, the webhook subscriptions this process matches commits against", body = Object),
        (status = 401, description = "Without the admin token", body = ErrorBody),
        (status = 404, description = "The hub was started without --admin-token", body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn status(State(app): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    admin_only(&app, &headers)?;
    Ok(Json(json!({
        "version": app.state.changes_published(),
        "positions": app.state.len(),
        "open_streams": app.state.fanout.open_streams(),
        "device_tokens": app.tokens.len(),
        "tokens_file": app.tokens.file().map(|p| p.display().to_string()),
        "edge": app.edge.is_some(),
        "webhooks": app.state.hooks.current().len(),
    })))
}

/// `POST /admin/reload`: re-reads the tokens file now (as SIGHUP does). A file that does not
/// parse is a 422 naming the line, and the tokens in force stay as they were.
#[utoipa::path(post, path = "/admin/reload", tag = "operations",
    responses(
        (status = 200, description = "The tokens file was read again", body = Object),
        (status = 400, description = "The hub has no tokens file", body = ErrorBody),
        (status = 401, description = "Without the admin token", body = ErrorBody),
        (status = 404, description = "The hub was started without --admin-token", body = ErrorBody),
        (status = 422, description = "The tokens file does not parse; the tokens in force stay", body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn reload(State(app): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    admin_only(&app, &headers)?;
    if app.tokens.file().is_none() {
        return Err(ApiError::bad(ErrorCode::NoTokensFile, "This hub was started without --tokens-file: there is nothing to reload."));
    }
    match app.tokens.reload() {
        Ok(n) => {
            tracing::info!(tokens = n, why = "POST /admin/reload", "device tokens reloaded");
            Ok(Json(json!({"device_tokens": n})))
        }
        Err(message) => Err(ApiError::Unprocessable { code: ErrorCode::InvalidTokensFile, message }),
    }
}
