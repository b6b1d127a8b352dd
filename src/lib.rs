//! `<shelfcast-availability>`: live stock and pickup reservations on any product page.
//!
//! A small JS shim (`pkg/index.js`) defines the custom element, attaches its shadow root and
//! forwards attribute changes to a [`ShelfcastElement`], which mounts the Leptos view into the
//! shadow root and unmounts it when the element is removed.
//!
//! # Layout
//! - [`config`]: the element's attributes, parsed into what to show and where to ask.
//! - [`i18n`]: words and number/time formats for en, de and fr.
//! - `live`: one Server-Sent-Events connection per hub, shared by every element of the page.
//! - `reserve`: reservations over HTTP, optimistic holds and their persistence across reloads.
//! - [`display`]: the pure rules from a position and a hold to what the shopper sees.
//! - `view`: the Leptos components.
//! - `dom`: DOM events (`shelfcast:*`) and small browser helpers.

pub mod config;
pub mod display;
mod dom;
pub mod i18n;
mod live;
mod reserve;
mod small;
mod view;

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{HtmlElement, ShadowRoot};

pub use config::Attrs;

/// One `<shelfcast-availability>` on the page. Dropping it (the JS `free()`) unmounts the view
/// and lets go of its share of the hub's stream.
#[wasm_bindgen]
pub struct ShelfcastElement {
    cx: view::Cx,
    _mounted: Box<dyn std::any::Any>,
    root: ShadowRoot,
    on_click: Closure<dyn FnMut(web_sys::Event)>,
}

impl Drop for ShelfcastElement {
    fn drop(&mut self) {
        let _ = self.root.remove_event_listener_with_callback("click", self.on_click.as_ref().unchecked_ref());
    }
}

#[wasm_bindgen]
impl ShelfcastElement {
    /// Mounts the view into `root`; `attrs` is a plain object of the element's attributes and
    /// `default_hub` the origin the script was loaded from.
    #[wasm_bindgen(constructor)]
    pub fn new(host: HtmlElement, root: ShadowRoot, default_hub: String, attrs: JsValue) -> Result<ShelfcastElement, JsValue> {
        let mut initial = small::Map::new();
        let pairs = if attrs.is_object() { js_sys::Object::entries(attrs.unchecked_ref()) } else { js_sys::Array::new() };
        for pair in pairs.iter() {
            let pair: js_sys::Array = pair.unchecked_into();
            if let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                initial.insert(name, value);
            }
        }
        let doc = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
        let container: HtmlElement = doc.create_element("div")?.unchecked_into();
        container.set_class_name("shelfcast");
        view::style(&root);
        root.append_child(&container)?;
        let page_lang = doc.document_element().map(|e| e.get_attribute("lang").unwrap_or_default()).unwrap_or_default();
        let slot = std::rc::Rc::new(std::cell::Cell::new(None));
        let out = slot.clone();
        let mounted = mount_to(container, move || {
            let cx = view::Cx::new(host, Attrs { values: initial, default_hub, page_lang });
            out.set(Some(cx));
            view::root(cx)
        });
        let cx = slot.take().ok_or("the view did not start")?;
        // The buttons' clicks (mouse, Enter, Space) reach one listener on the element's shadow
        // root, which finds the row by its `data-position`: no page-wide event registry, and
        // nothing to attach per row.
        let on_click = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            let target = e.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok());
            let Some(button) = target.and_then(|t| t.closest("button").ok().flatten()) else { return };
            if button.get_attribute("aria-disabled").as_deref() == Some("true") {
                return;
            }
            let row = button.closest("[data-position]").ok().flatten();
            let position = row.and_then(|r| r.get_attribute("data-position")).unwrap_or_default();
            view::clicked(cx, &button.class_name(), &position);
        });
        root.add_event_listener_with_callback("click", on_click.as_ref().unchecked_ref())?;
        Ok(ShelfcastElement { cx, _mounted: Box::new(mounted), root, on_click })
    }

    /// Called by the shim for every observed attribute change; `None` when removed.
    pub fn attribute_changed(&self, name: String, value: Option<String>) {
        self.cx.set_attribute(name, value);
    }
}

/// Hands over a stream the page's script opened while the wasm loaded (see `preconnect` in
/// `pkg/embed.js`): `buffered` holds the `position` events it received meanwhile, `buffer` is
/// the listener that collected them.
#[wasm_bindgen]
pub fn preconnected(url: String, es: web_sys::EventSource, buffered: js_sys::Array, buffer: js_sys::Function) {
    live::preconnected(url, es, buffered, buffer);
}

#[cfg(feature = "testing")]
/// Hooks for the browser tests of the view: they stand in for the hub's stream so every state
/// can be rendered on demand. The stream itself is tested end to end against a real hub.
#[doc(hidden)]
pub mod testing {
    pub use crate::display::Link;

    /// Delivers a position as if the page's stream to `hub` had sent it.
    pub fn publish(hub: &str, position_json: &str) {
        crate::live::inject(hub, position_json, None);
    }

    /// Sets the state of the page's stream to `hub`.
    pub fn set_link(hub: &str, link: Link) {
        crate::live::inject(hub, "", Some(link));
    }
}
