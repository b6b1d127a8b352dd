//! `serve --demo`: a small catalogue at a few stores, tills that keep selling, and the demo
//! product page at `/`. Seeding uses fixed event ids, so restarting the demo never doubles stock.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as AxState;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::seq::IndexedRandom;
use rand::Rng;
use serde::Deserialize;
use shelfcast_protocol::event::{Field, RawEvent};
use shelfcast_protocol::{Event, PositionKey};
use tokio_util::sync::CancellationToken;

use crate::auth::DeviceTokens;
use crate::engine::{State, Writer};
use crate::error::ApiError;
use crate::http::AppState;

/// The trail runner in sizes 40-44 (the demo page's size grid), and a few other products.
pub const SKUS: [&str; 8] = [
    "TRAIL-RUNNER-42",
    "RAIN-JACKET-M",
    "THERMO-MUG-350",
    "WOOL-SOCKS-3P",
    "TRAIL-RUNNER-40",
    "TRAIL-RUNNER-41",
    "TRAIL-RUNNER-43",
    "TRAIL-RUNNER-44",
];
pub const STORES: [&str; 5] = ["berlin-mitte", "hamburg-altona", "munich-center", "berlin-kreuzberg", "cologne-city"];

const PAGE: &str = include_str!("../../www/index.html");

fn event(id: &str, kind: &str, sku: &str, location: &str, qty: i64) -> Event {
    RawEvent {
        id: Field::Value(id),
        kind: Field::Value(kind),
        sku: Field::Value(sku),
        location: Field::Value(location),
        qty: Field::Value(qty),
        at: Field::Missing,
    }
    .validate()
    .expect("demo events are valid")
}

/// The demo stores' directory entries: where they are and how soon a pickup is ready.
pub fn directory() -> Vec<(&'static str, shelfcast_protocol::directory::Store)> {
    use shelfcast_protocol::directory::{Pickup, Sla, Store};
    let store = |name: &str, address: &str, lat: f64, lng: f64, ready_in_minutes: u32, sla: Sla| Store {
        name: name.into(),
        address: address.into(),
        lat,
        lng,
        pickup: Pickup { enabled: true, ready_in_minutes, sla },
        timezone: "Europe/Berlin".into(),
    };
    vec![
        ("berlin-mitte", store("Berlin Mitte", "Rosenthaler Str. 1, 10119 Berlin", 52.5265, 13.4019, 60, Sla::SameDay)),
        ("hamburg-altona", store("Hamburg Altona", "Ottenser Hauptstraße 10, 22765 Hamburg", 53.5526, 9.9322, 120, Sla::SameDay)),
        ("munich-center", store("München Zentrum", "Kaufingerstraße 1, 80331 München", 48.1374, 11.5755, 1440, Sla::NextDay)),
        ("berlin-kreuzberg", store("Berlin Kreuzberg", "Bergmannstraße 5, 10961 Berlin", 52.4889, 13.3936, 30, Sla::SameDay)),
        ("cologne-city", store("Köln City", "Schildergasse 30, 50667 Köln", 50.9367, 6.9526, 2880, Sla::ThreeDay)),
    ]
}

/// Seeds the catalogue, starts the tills, and returns the device token it created.
pub fn start(state: &Arc<State>, writer: &Writer, tokens: &mut DeviceTokens, shutdown: CancellationToken) -> String {
    let mut buf = [0u8; 16];
    getrandom::fill(&mut buf).expect("the OS random number generator");
    let token = format!("demo-{}", hex::encode(buf));
    tokens.add_spec(&format!("{token}=*")).expect("a valid token spec");

    let seed: Vec<Event> =
        SKUS.iter()
            .enumerate()
            .flat_map(|(i, sku)| {
                STORES.iter().enumerate().map(move |(j, store)| {
                    event(&format!("demo-seed:{sku}@{store}"), "receipt", sku, store, ((i * 7 + j * 5) % 12 + 2) as i64)
                })
            })
            .collect();
    let (state, writer) = (state.clone(), writer.clone());
    tokio::spawn(async move {
        if let Err(e) = writer.ingest(seed, "demo-till".into()).await {
            tracing::error!(error = %e, "demo seeding failed");
            return;
        }
        let mut boot = [0u8; 4];
        getrandom::fill(&mut boot).expect("the OS random number generator");
        let boot = hex::encode(boot);
        let mut n = 0u64;
        loop {
            let pause = Duration::from_millis(rand::rng().random_range(600..1_800));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.cancelled() => break,
            }
            n += 1;
            let (sku, store) = {
                let mut rng = rand::rng();
                (*SKUS.choose(&mut rng).expect("skus"), *STORES.choose(&mut rng).expect("stores"))
            };
            let key = PositionKey::parse_pair(&format!("{sku}@{store}")).expect("demo key");
            let available = state.positions(&[key], state.clock.now())[0].available;
            let roll = rand::rng().random_range(0..10);
            let (kind, qty) = match (available, roll) {
                (a, _) if a <= 0 => ("receipt", rand::rng().random_range(4..10)),
                (_, 0) => ("return", 1),
                (_, 1) => ("receipt", rand::rng().random_range(2..6)),
                _ => ("sale", 1),
            };
            let e = event(&format!("demo-till-{boot}:{n}"), kind, sku, store, qty);
            if let Err(e) = writer.ingest(vec![e], "demo-till".into()).await {
                tracing::warn!(error = %e, "demo till could not record a sale");
            }
        }
    });
    token
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(page)).route("/demo/till", post(till))
}

async fn page() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                 script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; object-src 'none'; base-uri 'none'; \
                 frame-ancestors 'none'; form-action 'self'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=(self)"),
        ],
        Html(PAGE),
    )
}

#[derive(Deserialize)]
struct Till {
    sku: String,
    location: String,
    #[serde(rename = "type")]
    kind: String,
}

/// The demo page's till panel: records one sale or return, as a till at that store would.
async fn till(AxState(app): AxState<AppState>, Json(t): Json<Till>) -> Result<impl IntoResponse, ApiError> {
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).expect("the OS random number generator");
    let id = format!("demo-page:{}", hex::encode(id));
    let raw = RawEvent {
        id: Field::Value(&id),
        kind: Field::Value(&t.kind),
        sku: Field::Value(&t.sku),
        location: Field::Value(&t.location),
        qty: Field::Value(1),
        at: Field::Missing,
    };
    let e = raw.validate().map_err(|e| ApiError::bad(e.code, e.message))?;
    app.writer.ingest(vec![e], "demo-page".into()).await?;
    Ok(Json(serde_json::json!({"status": "applied"})))
}
