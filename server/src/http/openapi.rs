//! `/openapi.json`: the hub's HTTP API as an OpenAPI 3.1 document, generated from the handlers'
//! annotations and the wire types of `shelfcast-protocol`, so it cannot drift from the code.

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
    modifiers(&Security),
    tags(
        (name = "ingest", description = "Stock events from tills, return terminals and scanners"),
        (name = "read", description = "Positions, now and live"),
        (name = "reservations", description = "Click and collect"),
        (name = "operations", description = "Probes, metrics and administration"),
        (name = "edge", description = "An edge node's own: its link to the hub, the holds its store sets aside"),
    )
)]
pub struct ApiDoc;

/// The document of the routes a node serves, written once when its router is built.
#[derive(Clone)]
pub struct Document(Bytes);

impl From<utoipa::openapi::OpenApi> for Document {
    fn from(document: utoipa::openapi::OpenApi) -> Self {
        Document(Bytes::from(document.to_json().expect("an OpenAPI document is JSON")))
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object)))]
pub async fn document(Extension(Document(json)): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json)
}
