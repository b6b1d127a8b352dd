//! `GET /v1/stream`: Server-Sent Events of the positions asked for.
//!
//! A stream first sends every requested position above the client's `Last-Event-ID`, then each
//! change, always in ascending version order and only up to the published version, so the id a
//! client last saw is a complete resume point. A slow client is never buffered for: a wake-up
//! only says "look again", and looking again sends the current state of what changed.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;

use super::{selection, AppState};
use crate::error::ApiError;

pub async fn stream(State(app): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Result<impl IntoResponse, ApiError> {
    let q = selection::parse(q.as_deref())?;
    let mut keys = q.positions;
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(k.clone()));

    // The header wins over the query. An id that does not parse, or that is beyond what this hub
    // has (it lost its data), is treated as absent: the client gets everything again.
    let asked = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(q.last_event_id);
    let resume = asked.and_then(|s| s.trim().parse::<u64>().ok()).filter(|v| *v <= app.state.published());
    let mut sent = vec![resume.map_or(-1, |v| v as i64); keys.len()];

    let sub = app.state.fanout.subscribe(&keys);
    let state = app.state.clone();
    let shutdown = app.shutdown.clone();
    let events = async_stream::stream! {
        yield Ok::<_, Infallible>(Event::default().retry(Duration::from_millis(2000)));
        loop {
            for p in state.changed_since(&keys, &mut sent, state.clock.now()) {
                let data = serde_json::to_string(&p).expect("a position serialises");
                yield Ok(Event::default().event("position").id(p.version.to_string()).data(data));
            }
            tokio::select! {
                _ = sub.notify.notified() => {}
                _ = shutdown.cancelled() => break,
            }
        }
    };
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(app.heartbeat).text("keep-alive"));
    Ok(([(header::CACHE_CONTROL, "no-cache"), (header::HeaderName::from_static("x-accel-buffering"), "no")], sse))
}
