//! DOM events and small browser helpers.

use wasm_bindgen::JsValue;
use web_sys::{CustomEvent, CustomEventInit, HtmlElement};

/// A plain JS object of `fields`, for event details and request bodies. Built directly rather
/// than through a `Serialize` derive per shape: the fields are few and all strings or numbers.
pub fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let o = js_sys::Object::new();
    for (name, value) in fields {
        let _ = js_sys::Reflect::set(&o, &JsValue::from_str(name), value);
    }
    o.into()
}

/// The string at `value.name`, if there is one. For the odd field, this is less code to
/// download than a `Deserialize` derive of the whole shape.
pub fn text_of(value: &JsValue, name: &str) -> Option<String> {
    js_sys::Reflect::get(value, &JsValue::from_str(name)).ok()?.as_string()
}

/// `object` as JSON text.
pub fn json(fields: &[(&str, JsValue)]) -> String {
    js_sys::JSON::stringify(&object(fields)).map(String::from).unwrap_or_default()
}

/// Dispatches `shelfcast:<name>` on the host element: bubbling and composed, so a listener on
/// `document` hears it through the shadow boundary.
pub fn emit(host: &HtmlElement, name: &str, detail: &JsValue) {
    let init = CustomEventInit::new();
    init.set_bubbles(true);
    init.set_composed(true);
    init.set_detail(detail);
    if let Ok(e) = CustomEvent::new_with_event_init_dict(&format!("shelfcast:{name}"), &init) {
        let _ = host.dispatch_event(&e);
    }
}

/// The page's monotonic clock, in milliseconds: countdowns run on it, never on the device's
/// wall clock, which may be minutes off the hub's.
pub fn now() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or_else(js_sys::Date::now)
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
