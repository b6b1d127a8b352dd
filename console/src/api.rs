//! The console's calls to the hub (or edge) that served it: same origin, so the session cookie
//! goes with each one and no token is ever handled here after sign-in.

use gloo_net::http::{Request, RequestBuilder};
use serde::Deserialize;
use shelfcast_protocol::wire::ErrorBody;
use wasm_bindgen::JsValue;

/// Who is signed in: the locations the token covers (`None`: every location) and whether it
/// is the admin token.
#[derive(Clone, Debug, PartialEq)]
pub struct Me {
    pub locations: Option<Vec<String>>,
    pub admin: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Locations {
    Some(Vec<String>),
    /// `"*"`: every location.
    All(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct MeWire {
    locations: Locations,
    admin: bool,
}

/// Why a call failed: the hub's error message, or no answer at all.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    Refused { status: u16, message: String },
    Unreachable,
}

pub fn parse<T: for<'de> Deserialize<'de>>(text: &str) -> Option<T> {
    serde_wasm_bindgen::from_value(js_sys::JSON::parse(text).ok()?).ok()
}

/// A plain JS object of `fields`, as JSON text.
pub fn json(fields: &[(&str, JsValue)]) -> String {
    let o = js_sys::Object::new();
    for (name, value) in fields {
        let _ = js_sys::Reflect::set(&o, &JsValue::from_str(name), value);
    }
    js_sys::JSON::stringify(&o).map(String::from).unwrap_or_default()
}

async fn send(req: Result<Request, gloo_net::Error>) -> Result<String, Failure> {
    let res = req.map_err(|_| Failure::Unreachable)?.send().await.map_err(|_| Failure::Unreachable)?;
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    if (200..300).contains(&status) {
        return Ok(text);
    }
    let message = parse::<ErrorBody>(&text).map(|e| e.error.message).unwrap_or_else(|| format!("HTTP {status}"));
    Err(Failure::Refused { status, message })
}

fn with_json(builder: RequestBuilder, body: String) -> Result<Request, gloo_net::Error> {
    builder.header("content-type", "application/json").body(body)
}

pub async fn get(path: &str) -> Result<String, Failure> {
    send(Request::get(path).build()).await
}

pub async fn post(path: &str, body: Option<String>) -> Result<String, Failure> {
    match body {
        Some(body) => send(with_json(Request::post(path), body)).await,
        None => send(Request::post(path).build()).await,
    }
}

fn me_of(text: &str) -> Option<Me> {
    let wire: MeWire = parse(text)?;
    let locations = match wire.locations {
        Locations::All(_) => None,
        Locations::Some(ls) => Some(ls),
    };
    Some(Me { locations, admin: wire.admin })
}

/// The session this browser holds, if any.
pub async fn whoami() -> Option<Me> {
    me_of(&get("/console/session").await.ok()?)
}

pub async fn sign_in(token: &str) -> Result<Me, Failure> {
    let text = post("/console/session", Some(json(&[("token", token.into())]))).await?;
    me_of(&text).ok_or(Failure::Unreachable)
}

pub async fn sign_out() {
    let _ = send(Request::delete("/console/session").build()).await;
}

/// A fresh id for an event staff record (a count or an adjustment): unique forever.
pub fn event_id() -> String {
    let uuid = web_sys::window().and_then(|w| w.crypto().ok()).map(|c| c.random_uuid()).unwrap_or_default();
    format!("console:{uuid}")
}

/// Percent-encodes a query value (SKUs and locations are `[A-Za-z0-9._-]`, but a typed SKU
/// may be anything: the hub then answers 400).
pub fn query(value: &str) -> String {
    String::from(js_sys::encode_uri_component(value))
}
