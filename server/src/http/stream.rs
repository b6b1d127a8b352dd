//! `GET /v1/stream`: Server-Sent Events of the positions asked for.
//!
//! A stream first sends every requested position above the client's `Last-Event-ID`, then each
//! change, always in ascending version order and only up to the published version, so the id a
//! client last saw is a complete resume point. The id is a cursor (`protocol::partition::Cursor`):
//! the version itself for a stream of one partition (one SKU, or any stream of a hub that
//! writes alone), the version seen in each partition for a stream over several. A slow client is never buffered for: a wake-up
//! only says "look again", and looking again sends the current state of what changed.

use shelfcast_protocol::partition::{Cursor, MAX_CURSOR};
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
pub(super) const REPLICA_CATCH_UP: Duration = Duration::from_secs(3);

/// Where a stream over `partitions` resumes: the `Last-Event-ID` header wins over
/// `?last_event_id=`. An id that does not parse is treated as absent (the client gets every
/// position again), and so is a partition's version beyond what this hub has published of it
/// (it lost its data, say): that partition's positions are sent again. Never panics: it is fuzzed.
pub fn resume_point(header: Option<&[u8]>, query: Option<&str>, partitions: &[u32], published: &dyn Fn(u32) -> u64) -> Cursor {
    let mut cursor = asked(header, query).map(|s| Cursor::parse(s, partitions)).unwrap_or_default();
    let beyond: Vec<u32> = cursor.iter().filter(|(p, v)| *v > published(*p)).map(|(p, _)| p).collect();
    for p in beyond {
        cursor.forget(p);
    }
    cursor
}

/// The id a client resumes from, as it sent it.
fn asked<'a>(header: Option<&'a [u8]>, query: Option<&'a str>) -> Option<&'a str> {
    match header {
        Some(h) => std::str::from_utf8(h).ok(),
        None => query,
    }
}

#[utoipa::path(get, path = "/v1/stream", tag = "read",
    params(("sku" = Option<String>, Query, description = "One SKU, with `location`"),
        ("location" = Option<String>, Query, description = "Up to 50 locations, comma-separated (also `locations`)"),
        ("locations" = Option<String>, Query, description = "The same as `location`"),
        ("positions" = Option<String>, Query, description = "Up to 50 `SKU@location` pairs, comma-separated, instead of `sku` and `location`"),
        ("last_event_id" = Option<String>, Query, description = "Resume after this id (the `Last-Event-ID` header wins)"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this id: the last `id:` the stream sent")),
    responses(
        (status = 200, description = "Server-Sent Events: `event: position`, `id: <cursor>` (the version for one SKU; up to 256 printable ASCII characters for positions of several partitions), `data: <Position>`", content_type = "text/event-stream", body = String),
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
    let parts: Vec<u32> = keys.iter().map(|k| app.state.partition(k.sku.as_str())).collect();
    let mut reading = parts.clone();
    reading.sort_unstable();
    reading.dedup();
    // The partitions stay in memory while the stream watches them.
    let watching = app.state.watch(&reading);
    app.follow(&keys).await?;
    if app.reader.shared() {
        // A replica a few milliseconds behind the one the client came from: wait for it to
        // catch up rather than take the id for a lost ledger and send everything again.
        let asked = resume_point(header, q.last_event_id.as_deref(), &reading, &|_| u64::MAX);
        if !asked.is_empty() {
            app.state.caught_up(&asked.iter().collect::<Vec<_>>(), REPLICA_CATCH_UP).await;
        }
    }
    let mut cursor = resume_point(header, q.last_event_id.as_deref(), &reading, &|p| app.state.published(p));
    let mut sent: Vec<i64> = parts.iter().map(|p| cursor.get(*p).map_or(-1, |v| v as i64)).collect();

    let mode = app.disclosure(&headers);
    let sub = app.state.fanout.subscribe(&keys);
    let state = app.state.clone();
    let shutdown = app.shutdown.clone();
    let events = async_stream::stream! {
        let _watching = watching;
        yield Ok::<_, Infallible>(Event::default().retry(Duration::from_millis(2000)));
        loop {
            for (partition, p) in state.changed_since(&keys, &parts, &mut sent, state.clock.now()) {
                cursor.advance(partition, p.version);
                let data = serde_json::to_string(&mode.apply(p)).expect("a position serialises");
                yield Ok(Event::default().event("position").id(cursor.encode(&reading, MAX_CURSOR)).data(data));
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
