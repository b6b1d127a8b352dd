//! The HTTP API: one file per part of the contract.

mod embed;
pub mod ingest;
pub mod limits;
mod openapi;
mod ops;
mod read;
mod reservations;
pub mod selection;
pub mod stream;

use shelfcast_protocol::ErrorCode;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn_with_state, map_response};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::auth::Credentials;
use crate::engine::{State, Writer};
use crate::error::{error_response, json_errors, ApiError};
use crate::metrics::Metrics;

/// Everything a request handler may touch, behind one pointer: every request clones it (the
/// router and its layers do), which is one reference count rather than one per field.
pub type AppState = Arc<Shared>;

pub struct Shared {
    pub state: Arc<State>,
    pub writer: Writer,
    pub tokens: Credentials,
    pub metrics: Arc<Metrics>,
    /// Reads beside the writer (reservation lookups, readiness).
    pub reader: crate::store::Reader,
    pub heartbeat: Duration,
    pub shutdown: CancellationToken,
    /// Set on an edge node.
    pub edge: Option<Arc<crate::edge::Edge>>,
    pub limits: Arc<limits::Limits>,
}

impl Shared {
    /// An edge node knows its own location only: a read of another is refused (403
    /// `wrong_location`) rather than answered with counts it does not have.
    pub fn serves(&self, positions: &[shelfcast_protocol::PositionKey]) -> Result<(), ApiError> {
        let Some(edge) = &self.edge else { return Ok(()) };
        match positions.iter().find(|k| k.location != edge.link.location) {
            Some(other) => Err(ApiError::WrongLocation(format!(
                "This edge node serves location `{}` only; ask the hub for `{}`.",
                edge.link.location, other.location
            ))),
            None => Ok(()),
        }
    }
}

/// The routes of a hub, or (`hub == false`) the subset an edge node serves to its store:
/// ingest, reads and streams, without reservations, which only the hub decides.
pub fn app(app: AppState, allow_origins: &[String], extra: Router<AppState>, hub: bool) -> Router {
    let mut router = Router::new()
        .route("/v1/events", post(ingest::post_events))
        .route("/v1/availability", get(read::availability))
        .route("/v1/stream", get(stream::stream).layer(from_fn_with_state((app.limits.clone(), app.state.clone()), limits::streams)));
    if hub {
        let reservations = Router::new()
            .route("/v1/reservations", post(reservations::create))
            .route("/v1/reservations/{id}", get(reservations::get).delete(reservations::release))
            .route("/v1/reservations/{id}/confirm", post(reservations::confirm))
            .route("/v1/reservations/{id}/fulfil", post(reservations::fulfil))
            .route_layer(from_fn_with_state(app.limits.clone(), limits::reservations));
        router = router
            .route("/v1/oversold", get(read::oversold))
            .route("/v1/locations/{location}/changes", get(read::location_changes))
            .merge(reservations);
    }
    let router = router
        .route("/openapi.json", get(openapi::document))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/admin/status", get(ops::status))
        .route("/admin/reload", post(ops::reload))
        .route("/embed/{*path}", get(embed::file))
        .merge(extra)
        .fallback(not_found)
        .with_state(app);
    let router = router.layer(CatchPanicLayer::custom(|_| {
        error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "Something went wrong inside the hub; nothing you sent was lost. Retry shortly.".into(),
            None,
        )
    }));
    let router = match cors(allow_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    };
    // Every answer, JSON errors included: a browser never sniffs it as another type.
    router
        .layer(map_response(json_errors))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(TraceLayer::new_for_http())
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::HeaderName::from_static("last-event-id")])
            .max_age(Duration::from_secs(600)),
    )
}

async fn not_found() -> impl IntoResponse {
    ApiError::NotFound("There is nothing at this path.".into())
}
