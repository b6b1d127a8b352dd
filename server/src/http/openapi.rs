//! `/openapi.json`: the hub's HTTP API as an OpenAPI 3.1 document, generated from the handlers'
//! annotations and the wire types of `shelfcast-protocol`, so it cannot drift from the code.

use axum::response::IntoResponse;
use axum::Json;
use shelfcast_protocol::wire::{
    ErrorBody, ErrorDetail, EventResult, IngestResponse, LocationChanges, PositionsResponse, ReservationView, ReserveRequest, ResultStatus,
};
use shelfcast_protocol::{Position, ReservationStatus, Status};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::ingest::EventIn;
use super::ops::Health;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(what.to_string())).build())
        };
        components.add_security_scheme("device_token", bearer("A device token (`--device-token` or the tokens file)."));
        components.add_security_scheme("reservation_token", bearer("The `token` a reservation was created with."));
        components.add_security_scheme("admin_token", bearer("The `--admin-token`."));
        components.add_security_scheme("metrics_token", bearer("The `--metrics-token`: reads `/metrics` only."));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shelfcast hub",
        description = "Real-time retail availability: idempotent stock events in, live positions out, \
                       reservations for pickup that never oversell. Every 4xx and 5xx body is \
                       `{\"error\":{\"code\":…,\"message\":…}}`.",
        license(name = "Apache-2.0")
    ),
    paths(
        super::ingest::post_events,
        super::read::availability,
        super::stream::stream,
        super::read::oversold,
        super::read::location_changes,
        super::reservations::create,
        super::reservations::get,
        super::reservations::release,
        super::reservations::confirm,
        super::reservations::fulfil,
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
        super::ops::status,
        super::ops::reload,
        document,
    ),
    components(schemas(
        EventIn, Health, ErrorBody, ErrorDetail, EventResult, IngestResponse, ResultStatus, Position, Status,
        PositionsResponse, ReserveRequest, ReservationView, ReservationStatus, LocationChanges
    )),
    modifiers(&Security),
    tags(
        (name = "ingest", description = "Stock events from tills, return terminals and scanners"),
        (name = "read", description = "Positions, now and live"),
        (name = "reservations", description = "Click and collect"),
        (name = "operations", description = "Probes, metrics and administration"),
    )
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object)))]
pub async fn document() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_names_every_route() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for path in ["/v1/events", "/v1/availability", "/v1/stream", "/v1/reservations", "/v1/reservations/{id}/fulfil", "/readyz"] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
    }
}
