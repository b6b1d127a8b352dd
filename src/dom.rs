//! DOM events and small browser helpers.

use serde::Serialize;
use wasm_bindgen::JsValue;
use web_sys::{CustomEvent, CustomEventInit, HtmlElement};

/// Plain JS objects, not `Map`s, so `event.detail.available` just works.
pub fn to_js<T: Serialize>(value: &T) -> JsValue {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or(JsValue::NULL)
}

/// Dispatches `shelfcast:<name>` on the host element: bubbling and composed, so a listener on
/// `document` hears it through the shadow boundary.
pub fn emit<T: Serialize>(host: &HtmlElement, name: &str, detail: &T) {
    let init = CustomEventInit::new();
    init.set_bubbles(true);
    init.set_composed(true);
    init.set_detail(&to_js(detail));
    if let Ok(e) = CustomEvent::new_with_event_init_dict(&format!("shelfcast:{name}"), &init) {
        let _ = host.dispatch_event(&e);
    }
}

pub fn now() -> f64 {
    js_sys::Date::now()
}

pub fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// A fresh idempotency key: a random UUID from the browser's CSPRNG.
pub fn random_key() -> String {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.random_uuid())
        .unwrap_or_else(|| format!("{:x}-{:x}", js_sys::Date::now() as u64, (js_sys::Math::random() * 1e16) as u64))
}

pub fn parse_json(text: &str) -> Option<JsValue> {
    js_sys::JSON::parse(text).ok()
}
