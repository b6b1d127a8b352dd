//! Reservations: the HTTP calls (through gloo-net), retried with the same idempotency key when
//! the network fails, and the shopper's holds kept in localStorage so they survive a reload.

use std::time::Duration;

use gloo_net::http::Request;
use serde::Deserialize;
use shelfcast_protocol::wire::ReservationView;
use shelfcast_protocol::PositionKey;

use crate::dom::{json, parse_json, storage, text_of};

/// What the hub answered to a reservation request.
pub enum Answer {
    /// The hub's answer, and its JSON text.
    Granted(ReservationView, String),
    SoldOut,
    Refused {
        code: String,
        message: String,
    },
    /// The network failed every try.
    Unreachable,
}

fn parse<T: for<'de> Deserialize<'de>>(text: &str) -> Option<T> {
    serde_wasm_bindgen::from_value(parse_json(text)?).ok()
}

/// `POST /v1/reservations`, up to four tries on network failure or 5xx, always with `key`.
pub async fn reserve(hub: &str, position: &PositionKey, qty: i64, key: &str) -> Answer {
    let body = json(&[
        ("sku", position.sku.as_str().into()),
        ("location", position.location.as_str().into()),
        ("qty", (qty as f64).into()),
        ("key", key.into()),
    ]);
    let mut delay = 300;
    for attempt in 0..4 {
        if attempt > 0 {
            sleep(delay).await;
            delay *= 2;
        }
        let sent = Request::post(&format!("{hub}/v1/reservations")).header("content-type", "application/json").body(body.clone());
        let Ok(req) = sent else { return Answer::Unreachable };
        let Ok(res) = req.send().await else { continue };
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        // Overloaded or briefly unavailable: the same key again after a pause is safe.
        if status >= 500 || status == 429 {
            continue;
        }
        if status == 200 || status == 201 {
            if let Some(v) = parse::<ReservationView>(&text) {
                return Answer::Granted(v, text);
            }
        }
        // `{"error":{"code":…,"message":…}}`, read field by field.
        let error = parse_json(&text).and_then(|v| js_sys::Reflect::get(&v, &"error".into()).ok()).unwrap_or_default();
        return match text_of(&error, "code") {
            Some(code) if code == "insufficient_stock" => Answer::SoldOut,
            Some(code) => Answer::Refused { code, message: text_of(&error, "message").unwrap_or_default() },
            None => Answer::Refused { code: "unexpected_answer".into(), message: format!("HTTP {status}") },
        };
    }
    Answer::Unreachable
}

/// `DELETE /v1/reservations/{id}`: true once the hub no longer holds it.
pub async fn release(hub: &str, id: &str, token: &str) -> bool {
    let res = Request::delete(&format!("{hub}/v1/reservations/{id}")).header("authorization", &format!("Bearer {token}")).send().await;
    matches!(res.map(|r| r.status()), Ok(200) | Ok(404))
}

/// The hub's view of a stored hold: `Some(Err(()))` when it is gone, `None` when the network is.
pub async fn status(hub: &str, id: &str, token: &str) -> Option<Result<ReservationView, ()>> {
    let res = Request::get(&format!("{hub}/v1/reservations/{id}")).header("authorization", &format!("Bearer {token}")).send().await.ok()?;
    if res.status() == 404 {
        return Some(Err(()));
    }
    let text = res.text().await.ok()?;
    parse::<ReservationView>(&text).map(Ok)
}

async fn sleep(ms: u32) {
    let (tx, rx) = futures_channel::oneshot::channel::<()>();
    leptos::prelude::set_timeout(
        move || {
            let _ = tx.send(());
        },
        Duration::from_millis(ms as u64),
    );
    let _ = rx.await;
}

fn storage_key(hub: &str, position: &PositionKey) -> String {
    format!("shelfcast:hold:{hub}:{position}")
}

/// The hold the hub granted at `position`, as kept in localStorage: the hub's own answer
/// (its JSON text, token included), read back with the same parser.
pub fn load(hub: &str, position: &PositionKey) -> Option<ReservationView> {
    let text = storage()?.get_item(&storage_key(hub, position)).ok()??;
    parse(&text)
}

pub fn save(hub: &str, position: &PositionKey, answer: &str) {
    if let Some(s) = storage() {
        let _ = s.set_item(&storage_key(hub, position), answer);
    }
}

pub fn forget(hub: &str, position: &PositionKey) {
    if let Some(s) = storage() {
        let _ = s.remove_item(&storage_key(hub, position));
    }
}
