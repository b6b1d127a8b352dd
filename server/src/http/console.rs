//! `/console/`: the store staff's pickup desk and the merchant's view, a browser app built
//! into the binary (scripts/build-console.sh), and the few endpoints only it uses:
//!
//! - `POST /console/session` `{"token": "…"}`: signs in with a device token or the admin token
//!   and sets the session cookie (HttpOnly, SameSite=Strict, `Secure` over HTTPS); `GET`
//!   says who is signed in; `DELETE` signs out. The token goes in a body, never in a URL.
//! - `GET /console/api/desk?location=L`: Server-Sent Events, `event: reservations` with the
//!   store's open reservations (oldest first) at once and after every change at the store.
//!
//! Everything else the console shows comes from the public API, authorised by the cookie.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use shelfcast_protocol::{ErrorCode, LocationId, ReservationStatus};

use super::embed::{console, respond, CONSOLE};
use super::AppState;
use crate::auth::{Scope, Session, SESSION_COOKIE, SESSION_SECONDS};
use crate::error::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(|headers: HeaderMap| async move { file("index.html", &headers) }))
        .route("/console/session", get(whoami).post(sign_in).delete(sign_out))
        .route("/console/api/desk", get(desk))
        .route("/console/api/activity", get(activity))
        .route("/console/{*path}", get(|Path(path): Path<String>, headers: HeaderMap| async move { file(&path, &headers) }))
}

/// The page's policy: its own scripts, styles and WebAssembly, nothing inline, no frames.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; connect-src 'self'; \
     img-src 'self' data:; media-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn file(path: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    if console::FILES.is_empty() {
        return Err(ApiError::NotFound("The console is not built into this binary: run scripts/build-console.sh, then rebuild.".into()));
    }
    let index =
        console::FILES.iter().position(|f| f.route == path).ok_or_else(|| ApiError::NotFound(format!("There is no /console/{path}.")))?;
    let mut response = respond(&console::FILES[index], &CONSOLE[index], headers);
    let h = response.headers_mut();
    // Revalidated on every load (a 304 when unchanged), so staff never run an old console.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(response)
}

/// Who is signed in, as the console shows it.
fn describe(session: &Session) -> Value {
    let locations = match &session.scope {
        Scope::All => Value::String("*".into()),
        Scope::Locations(ls) => json!(ls),
    };
    json!({"locations": locations, "admin": session.admin})
}

async fn whoami(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let session = app.tokens.session(&headers).ok_or_else(|| ApiError::Unauthorized("Not signed in.".into()))?;
    Ok(Json(describe(&session)))
}

#[derive(Deserialize)]
struct SignIn {
    token: Option<String>,
}

fn set_cookie(app: &AppState, headers: &HeaderMap, value: &str, max_age: u64) -> HeaderValue {
    let forwarded_https = headers.get("x-forwarded-proto").is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    let secure = if app.secure_cookies || forwarded_https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"))
        .expect("a cookie of printable characters")
}

async fn sign_in(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let bytes = to_bytes(body, 4096).await.map_err(|_| ApiError::TooLarge {
        code: ErrorCode::PayloadTooLarge,
        message: "A sign-in is a small JSON object: at most 4 KiB.".into(),
    })?;
    let asked: SignIn = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad(ErrorCode::MalformedBody, format!("send `{{\"token\": \"…\"}}` as JSON ({e})")))?;
    let token = asked.token.as_deref().map(str::trim).unwrap_or_default();
    let Some((session, cookie)) = app.tokens.sign_in(token) else {
        tracing::info!("console sign-in refused: unknown token");
        return Err(ApiError::Unauthorized("That token is not a device token or the admin token of this hub.".into()));
    };
    tracing::info!(admin = session.admin, "console sign-in");
    let mut response = Json(describe(&session)).into_response();
    response.headers_mut().insert(header::SET_COOKIE, set_cookie(&app, &headers, &cookie, SESSION_SECONDS));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn sign_out(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, set_cookie(&app, &headers, "", 0));
    response
}

/// The Activity page's figures: per second over the last five minutes (this process's), and
/// the streams open now.
async fn activity(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    app.tokens.device(&headers, "Sign in to the console first.")?;
    let types: Vec<&str> = shelfcast_protocol::EventKind::ALL.iter().map(|k| k.as_str()).collect();
    let seconds = app.metrics.activity.last(app.state.clock.now());
    Ok(Json(json!({"types": types, "seconds": seconds, "open_streams": app.state.fanout.open_streams()})))
}

#[derive(Deserialize)]
struct DeskQuery {
    location: Option<String>,
}

/// The pickup desk's live list: the open reservations at the store, sent at once and again
/// after each change there (a new hold, a release, an expiry, a pickup), only when it differs.
async fn desk(State(app): State<AppState>, headers: HeaderMap, Query(q): Query<DeskQuery>) -> Result<impl IntoResponse, ApiError> {
    let scope = app.tokens.device(&headers, "Sign in to the console first.")?;
    let location = LocationId::parse(q.location.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::bad(ErrorCode::InvalidLocation, format!("`location` {e}")))?;
    if !scope.allows(&location) {
        return Err(ApiError::Forbidden(format!("You are not signed in for `{location}`.")));
    }
    // Every SKU of the store may change: a partitioned hub follows them all while the desk is open.
    let all: Vec<u32> = (0..app.state.partitions()).collect();
    let watching = app.state.watch(&all);
    app.follow_all().await?;
    let (shutdown, heartbeat, on_edge) = (app.shutdown.clone(), app.heartbeat, app.edge.is_some());
    let events = async_stream::stream! {
        let _watching = watching;
        yield Ok::<_, Infallible>(Event::default().retry(Duration::from_millis(2000)));
        // Sent again only when a reservation comes, goes or changes status: the time left is
        // counted down by the console, so a sale at the store does not resend the list.
        let mut last = None;
        loop {
            // Watch before looking, so a change between the look and the wait still wakes us.
            let watch = app.state.fanout.watch_location(&location);
            let list = match &app.edge {
                Some(edge) => Ok(edge.reservations.read().expect("reservations lock").clone()),
                None => super::reservations::open_at(&app, &location).await,
            };
            if let Ok(list) = list {
                let seen: Vec<(String, ReservationStatus)> = list.iter().map(|r| (r.id.clone(), r.status)).collect();
                if last.as_ref() != Some(&seen) {
                    yield Ok(Event::default().event("reservations").data(json!({"location": location, "reservations": list}).to_string()));
                    last = Some(seen);
                }
            }
            tokio::select! {
                _ = watch.notify.notified() => {}
                // An edge learns its hub's reservations without a change of its own positions.
                _ = tokio::time::sleep(Duration::from_secs(1)), if on_edge => {}
                _ = shutdown.cancelled() => break,
            }
        }
    };
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(heartbeat).text("keep-alive"));
    Ok(([(header::CACHE_CONTROL, "no-cache"), (header::HeaderName::from_static("x-accel-buffering"), "no")], sse))
}
