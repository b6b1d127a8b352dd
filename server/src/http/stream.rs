//! `GET /v1/stream`: Server-Sent Events of the positions asked for.
//!
//! A stream first sends every requested position above the client's `Last-Event-ID`, then each
//! change, always in ascending version order and only up to the published version, so the id a
//! client last saw is a complete resume point. A slow client is never buffered for: a wake-up
//! only says "look again", and looking again sends the current state of what changed.

use shelfcast_protocol::wire::ErrorBody;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;

use super::{selection, AppState};
use crate::error::ApiError;

/// How long a replica waits to catch up with a resuming client's `Last-Event-ID`.
const REPLICA_CATCH_UP: Duration = Duration::from_secs(3);

/// Where a stream resumes: the `Last-Event-ID` header wins over `?last_event_id=`. An id that
/// does not parse, or that is beyond what this hub has published (it lost its data, say), is
/// treated as absent: the client gets everything again. Never panics: it is fuzzed.
pub fn resume_point(header: Option<&[u8]>, query: Option<&str>, published: u64) -> Option<u64> {
    let asked = match header {
        Some(h) => std::str::from_utf8(h).ok(),
        None => query,
    };
    asked.and_then(|s| s.trim().parse::<u64>().ok()).filter(|v| *v <= published)
}

#[utoipa::path(get, path = "/v1/stream", tag = "read",
    params(("sku" = Option<String>, Query, description = "One SKU, with `location`"),
        ("location" = Option<String>, Query, description = "Up to 50 locations, comma-separated (also `locations`)"),
        ("locations" = Option<String>, Query, description = "The same as `location`"),
        ("positions" = Option<String>, Query, description = "Up to 50 `SKU@location` pairs, comma-separated, instead of `sku` and `location`"),
        ("last_event_id" = Option<String>, Query, description = "Resume after this version (the `Last-Event-ID` header wins)"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this version")),
    responses(
        (status = 200, description = "Server-Sent Events: `event: position`, `id: <version>`, `data: <Position>`", content_type = "text/event-stream", body = String),
        (status = 400, description = "No positions, more than 50, or an invalid SKU or location", body = ErrorBody),
        (status = 429, description = "Too many requests from this client: wait `Retry-After` seconds", body = ErrorBody),
        (status = 503, description = "This hub holds its maximum of open streams: retry after `Retry-After` seconds", body = ErrorBody)))]
pub async fn stream(State(app): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Result<impl IntoResponse, ApiError> {
    let q = selection::parse(q.as_deref())?;
    app.serves(&q.positions)?;
    let mut keys = q.positions;
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(k.clone()));

    let header = headers.get("last-event-id").map(|v| v.as_bytes());
    if app.reader.shared() {
        // A replica a few milliseconds behind the one the client came from: wait for it to
        // catch up rather than take the id for a lost ledger and send everything again.
        if let Some(asked) = resume_point(header, q.last_event_id.as_deref(), u64::MAX) {
            app.state.caught_up(asked, REPLICA_CATCH_UP).await;
        }
    }
    let resume = resume_point(header, q.last_event_id.as_deref(), app.state.published());
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
