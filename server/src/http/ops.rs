//! `/healthz`, `/readyz`, `/metrics`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::error::ApiError;

/// The process is up and answering.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Storage is reachable and the writer is running.
pub async fn readyz(State(app): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let reader = app.reader.clone();
    let db_ok = tokio::task::spawn_blocking(move || {
        reader.lock().map(|c| c.query_row("SELECT count(*) FROM positions", [], |_| Ok(())).is_ok()).unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    if !db_ok || app.writer.is_closed() {
        return Err(ApiError::Unavailable);
    }
    Ok(Json(json!({"status": "ready", "version": app.state.published()})))
}

pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    app.metrics.open_streams.set(app.state.fanout.open_streams() as i64);
    app.metrics.oversold.set(app.state.oversold(app.state.clock.now(), |_| true).len() as i64);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], app.metrics.render())
}
