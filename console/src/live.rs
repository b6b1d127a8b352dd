//! Server-Sent Events for the console's live pages: one `EventSource` per open page, closed
//! when the page goes (dropping a [`Live`] closes it).

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{EventSource, MessageEvent};

pub struct Live {
    source: EventSource,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_open: Closure<dyn FnMut(web_sys::Event)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.source.close();
    }
}

/// Listens to `event` on `url`; `on_link(true)` when connected, `false` while reconnecting
/// (the browser reconnects by itself, with `Last-Event-ID`).
pub fn listen(url: &str, event: &str, on_data: impl Fn(String) + 'static, on_link: impl Fn(bool) + Clone + 'static) -> Option<Live> {
    let source = EventSource::new(url).ok()?;
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        if let Some(text) = e.data().as_string() {
            on_data(text);
        }
    });
    let up = on_link.clone();
    let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| up(true));
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| on_link(false));
    source.add_event_listener_with_callback(event, on_message.as_ref().unchecked_ref()).ok()?;
    source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    Some(Live { source, _on_message: on_message, _on_open: on_open, _on_error: on_error })
}

/// Runs `f` now and every `period` while the calling component is mounted.
pub fn every(period: std::time::Duration, f: impl Fn() + Clone + 'static) {
    f();
    let handle = leptos::prelude::set_interval_with_handle(f, period).ok();
    leptos::prelude::on_cleanup(move || {
        if let Some(h) = handle {
            h.clear();
        }
    });
}

/// The page's monotonic clock in milliseconds: countdowns run on it and on the hub's
/// `expires_in_ms`, never on this device's wall clock.
pub fn now() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or_else(js_sys::Date::now)
}
