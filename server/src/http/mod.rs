//! The HTTP API: one file per part of the contract.

mod console;
mod edges;
mod embed;
mod export;
mod history;
pub mod ingest;
pub mod limits;
mod locations;
mod openapi;
mod ops;
mod read;
mod reservations;
pub mod selection;
pub mod stream;
mod webhooks;

use shelfcast_protocol::ErrorCode;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn_with_state, map_response};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Router};
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

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
    /// A partitioned hub (replicas): loads the partitions a request needs that this replica
    /// does not follow yet.
    pub follower: Option<Arc<crate::engine::replicas::Sequencer>>,
    /// A partitioned hub: the partitions this replica owns (what its gauges count as its own).
    pub owners: Option<Arc<crate::engine::ownership::Ownership>>,
    /// Served over HTTPS: the console's session cookie is `Secure`.
    pub secure_cookies: bool,
    /// The store directory (a hub's; an edge node keeps none).
    pub directory: Arc<crate::directory::Directory>,
    /// How much of the stock readers without a token see.
    pub disclose: shelfcast_protocol::Disclose,
    /// Webhooks may call loopback and private addresses.
    pub allow_private_webhooks: bool,
}

impl Shared {
    /// How much of the stock this request may see: every number with a device or admin token
    /// or a console session, else what `--disclose` says. (An unknown token is no token: the
    /// request is a shopper's.)
    pub fn disclosure(&self, headers: &axum::http::HeaderMap) -> shelfcast_protocol::Disclose {
        use shelfcast_protocol::Disclose;
        if self.disclose == Disclose::Exact || self.tokens.device_or_admin(headers, "").is_ok() {
            Disclose::Exact
        } else {
            self.disclose
        }
    }

    /// Makes sure the partitions of `positions` are in memory before they are read or watched.
    pub async fn follow(&self, positions: &[shelfcast_protocol::PositionKey]) -> Result<(), ApiError> {
        if self.follower.is_none() {
            return Ok(());
        }
        let partitions: Vec<u32> = positions.iter().map(|k| self.state.partition(k.sku.as_str())).collect();
        self.follow_partitions(&partitions).await
    }

    /// Makes sure every partition is in memory (a read across the catalogue: a location's
    /// changes, the oversold positions).
    pub async fn follow_all(&self) -> Result<(), ApiError> {
        self.follow_partitions(&(0..self.state.partitions()).collect::<Vec<_>>()).await
    }

    async fn follow_partitions(&self, partitions: &[u32]) -> Result<(), ApiError> {
        let Some(follower) = &self.follower else { return Ok(()) };
        follower.follow(partitions).await.map_err(|error| {
            tracing::warn!(%error, "cannot load the positions asked for");
            ApiError::Unavailable
        })
    }

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
/// ingest, reads and streams, without reservations, which only the hub decides; `extra` adds the
/// edge's or the demo's own. Each route is registered with its handler's OpenAPI entry, so
/// `/openapi.json` lists exactly what is served (the demo page and `/embed/` are files, not API).
pub fn app(app: AppState, allow_origins: &[String], extra: OpenApiRouter<AppState>, hub: bool) -> Router {
    let (router, document) = documented(&app, hub).merge(extra).split_for_parts();
    let router = router
        .layer(Extension(openapi::Document::from(document)))
        .route("/embed/{*path}", get(embed::file))
        .merge(console::routes())
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

/// The documented routes: every one is in `/openapi.json` because it is added here.
fn documented(app: &AppState, hub: bool) -> OpenApiRouter<AppState> {
    let streams = from_fn_with_state((app.limits.clone(), app.state.clone()), limits::streams);
    let mut router = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(ingest::post_events))
        .routes(routes!(read::availability))
        .routes(routes!(export::positions))
        .routes(routes!(stream::stream).layer(streams));
    if hub {
        let reservations = OpenApiRouter::new()
            .routes(routes!(reservations::create, reservations::list))
            .routes(routes!(reservations::staff_release))
            .routes(routes!(reservations::get, reservations::release))
            .routes(routes!(reservations::confirm))
            .routes(routes!(reservations::fulfil))
            .route_layer(from_fn_with_state(app.limits.clone(), limits::reservations));
        router = router
            .routes(routes!(edges::report))
            .routes(routes!(edges::list))
            .routes(routes!(read::oversold))
            .routes(routes!(history::history))
            .routes(routes!(locations::list))
            .routes(routes!(locations::put, locations::delete))
            .routes(routes!(webhooks::create, webhooks::list))
            .routes(routes!(webhooks::delete))
            .routes(routes!(webhooks::deliveries))
            .routes(routes!(webhooks::watch))
            .routes(routes!(read::location_changes))
            .merge(reservations);
    }
    router
        .routes(routes!(openapi::document))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::status))
        .routes(routes!(ops::reload))
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
