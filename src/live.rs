//! One Server-Sent-Events connection per hub for the whole page. Browsers allow six HTTP/1.1
//! connections per origin, so elements never open their own: each registers the positions it
//! shows, and the page's connection for that hub watches the union (in streams of at most 50
//! positions). When the union changes, the connection is replaced on the next tick, so twenty
//! elements appearing at once cause one request, not twenty; when the last element goes, so
//! does the connection. With the script tag the first streams are already open when the wasm
//! starts (`embed.js` opens them beside the download); they are adopted here, not reopened.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

use leptos::prelude::{set_timeout, ArcTrigger, Notify, Track};
use shelfcast_protocol::{PositionKey, PublicPosition, Status};
use wasm_bindgen::prelude::*;
use web_sys::{EventSource, MessageEvent};

use crate::display::Link;
use crate::dom::parse_json;
use crate::small::Map;

use shelfcast_protocol::wire::MAX_POSITIONS as MAX_PER_STREAM;

/// The page's connection to one hub: the latest position of every watched key (with the hub's
/// own JSON object, handed to `shelfcast:change` listeners as it came) and the link's state.
/// Views track the link's trigger and one trigger per position, so an event wakes only the
/// rows that show its position.
pub struct HubLink {
    base: String,
    positions: RefCell<Map<PositionKey, (PublicPosition, JsValue)>>,
    link: Cell<Link>,
    link_changed: ArcTrigger,
    position_changed: RefCell<Map<PositionKey, ArcTrigger>>,
    /// Each element's keys, and what it is told (`Note`).
    interests: RefCell<Map<u64, (Vec<PositionKey>, Listener)>>,
    /// The union the open streams watch, sorted.
    watching: RefCell<Vec<PositionKey>>,
    sources: RefCell<Vec<Source>>,
    rebuild_queued: Cell<bool>,
    ever_open: Cell<bool>,
    backoff_ms: Cell<u32>,
}

impl HubLink {
    /// The latest position of `key`, tracked by the view that asks.
    pub fn position(&self, key: &PositionKey) -> Option<PublicPosition> {
        self.trigger(key).track();
        self.positions.borrow().get(key).map(|(p, _)| p.clone())
    }

    /// The hub's own object for `key`, as a `shelfcast:change` detail.
    pub fn raw(&self, key: &PositionKey) -> Option<JsValue> {
        self.positions.borrow().get(key).map(|(_, raw)| raw.clone())
    }

    /// The link's state, untracked.
    pub fn link_now(&self) -> Link {
        self.link.get()
    }

    pub fn link(&self) -> Link {
        self.link_changed.track();
        self.link.get()
    }

    fn set_link(&self, link: Link) {
        if self.link.replace(link) == link {
            return;
        }
        self.link_changed.notify();
        if link == Link::Unreachable {
            // Listeners may add or remove elements: no borrow is held while they run.
            let listeners: Vec<Listener> = self.interests.borrow().values().map(|(_, l)| l.clone()).collect();
            for listener in listeners {
                listener(Note::Unreachable);
            }
        }
    }

    fn trigger(&self, key: &PositionKey) -> ArcTrigger {
        let mut triggers = self.position_changed.borrow_mut();
        if let Some(t) = triggers.get(key) {
            return t.clone();
        }
        let t = ArcTrigger::new();
        triggers.insert(key.clone(), t.clone());
        t
    }
}

/// What the page's connection tells the elements that watch through it.
pub enum Note<'a> {
    /// A new version of this position arrived (`HubLink::position`, `HubLink::raw`); `true`
    /// when it holds fewer units for reservations than the version before.
    Change(&'a PositionKey, bool),
    /// The hub cannot be reached (or refuses the page's origin): said once each time it happens.
    Unreachable,
}

pub type Listener = Rc<dyn Fn(Note)>;

/// An open `EventSource` and the callbacks it holds; closing it is dropping it.
struct Source {
    es: EventSource,
    _on_position: Closure<dyn FnMut(MessageEvent)>,
    _on_open: Closure<dyn FnMut(web_sys::Event)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.es.close();
    }
}

/// A stream the page's script opened before the wasm ran (`preconnect` in `pkg/embed.js`),
/// with the `position` events it buffered meanwhile.
struct Preopened {
    url: String,
    es: EventSource,
    buffered: js_sys::Array,
    buffer: js_sys::Function,
}

thread_local! {
    static PREOPENED: RefCell<Vec<Preopened>> = const { RefCell::new(Vec::new()) };
    static HUBS: RefCell<Map<String, Rc<HubLink>>> = const { RefCell::new(Map::new()) };
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// An element's registration; dropping it withdraws the element's positions.
pub struct Interest {
    pub hub: Rc<HubLink>,
    id: u64,
}

impl Interest {
    /// The keys this registration watches.
    pub fn keys(&self) -> Vec<PositionKey> {
        self.hub.interests.borrow().get(&self.id).map(|(keys, _)| keys.clone()).unwrap_or_default()
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        self.hub.interests.borrow_mut().remove(&self.id);
        queue_rebuild(&self.hub);
    }
}

/// Takes over a stream the page's script opened while the wasm loaded: the first rebuild that
/// wants exactly this address uses it instead of opening its own.
pub fn preconnected(url: String, es: EventSource, buffered: js_sys::Array, buffer: js_sys::Function) {
    PREOPENED.with(|p| p.borrow_mut().push(Preopened { url, es, buffered, buffer }));
}

/// Registers `keys` with the page's connection to `base`, opening it if needed; `listener`
/// hears of each new version of them, and of the hub becoming unreachable.
pub fn watch(base: &str, keys: &[PositionKey], listener: Listener) -> Interest {
    let hub = HUBS.with(|hubs| {
        let mut hubs = hubs.borrow_mut();
        if let Some(hub) = hubs.get(base) {
            return hub.clone();
        }
        let hub = Rc::new(HubLink {
            base: base.to_string(),
            positions: RefCell::default(),
            link: Cell::new(Link::Connecting),
            link_changed: ArcTrigger::new(),
            position_changed: RefCell::default(),
            interests: RefCell::default(),
            watching: RefCell::default(),
            sources: RefCell::default(),
            rebuild_queued: Cell::new(false),
            ever_open: Cell::new(false),
            backoff_ms: Cell::new(1_000),
        });
        hubs.insert(base.to_string(), hub.clone());
        hub
    });
    let id = NEXT_ID.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    hub.interests.borrow_mut().insert(id, (keys.to_vec(), listener));
    queue_rebuild(&hub);
    Interest { hub, id }
}

fn queue_rebuild(hub: &Rc<HubLink>) {
    if hub.rebuild_queued.replace(true) {
        return;
    }
    // A microtask: it runs once the elements mounting now have all registered (they mount in
    // one go when the element is defined), yet before the browser lays out and paints them,
    // so the stream starts opening without waiting for a frame.
    let weak = Rc::downgrade(hub);
    wasm_bindgen_futures::spawn_local(async move {
        if let Some(hub) = weak.upgrade() {
            if hub.rebuild_queued.replace(false) {
                rebuild(&hub, false);
            }
        }
    });
}

/// Opens streams for the union of all interests, unless they already watch exactly that.
fn rebuild(hub: &Rc<HubLink>, force: bool) {
    let mut union: Vec<PositionKey> = hub.interests.borrow().values().flat_map(|(keys, _)| keys).cloned().collect();
    union.sort_unstable();
    union.dedup();
    if union.is_empty() {
        hub.sources.borrow_mut().clear();
        hub.watching.borrow_mut().clear();
        HUBS.with(|hubs| {
            let mut hubs = hubs.borrow_mut();
            if hubs.get(&hub.base).is_some_and(|h| Rc::ptr_eq(h, hub)) {
                hubs.remove(&hub.base);
            }
        });
        return;
    }
    if !force && *hub.watching.borrow() == union {
        return;
    }
    let keys = union.clone();
    *hub.watching.borrow_mut() = union;
    let mut sources = Vec::new();
    for chunk in keys.chunks(MAX_PER_STREAM) {
        let mut list = String::new();
        for k in chunk {
            if !list.is_empty() {
                list.push(',');
            }
            list.push_str(&k.to_string());
        }
        let url = format!("{}/v1/stream?positions={}", hub.base, js_sys::encode_uri_component(&list));
        match open(hub, &url) {
            Ok(s) => sources.push(s),
            Err(_) => hub.set_link(Link::Unreachable),
        }
    }
    // Replace only after the new ones exist, so no change falls between two streams.
    *hub.sources.borrow_mut() = sources;
    // Streams opened ahead for this hub that no element turned out to want.
    let prefix = format!("{}/v1/stream?", hub.base);
    PREOPENED.with(|p| {
        p.borrow_mut().retain(|pre| {
            let mine = pre.url.starts_with(&prefix);
            if mine {
                pre.es.close();
            }
            !mine
        })
    });
}

fn open(hub: &Rc<HubLink>, url: &str) -> Result<Source, JsValue> {
    let pre = PREOPENED.with(|p| {
        let mut p = p.borrow_mut();
        let at = p.iter().position(|pre| pre.url == url)?;
        Some(p.swap_remove(at))
    });
    // Adopted: its buffer is replayed once our listeners are on (nothing can arrive in between,
    // this all runs in one task). A stream the browser already gave up on is of no use.
    let (es, replay) = match pre {
        Some(pre) if pre.es.ready_state() != EventSource::CLOSED => {
            pre.es.remove_event_listener_with_callback("position", &pre.buffer)?;
            (pre.es, Some(pre.buffered))
        }
        Some(pre) => {
            pre.es.close();
            (EventSource::new(url)?, None)
        }
        None => (EventSource::new(url)?, None),
    };
    let weak: Weak<HubLink> = Rc::downgrade(hub);

    let w = weak.clone();
    let on_position = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        let Some(hub) = w.upgrade() else { return };
        if let Some(text) = e.data().as_string() {
            receive(&hub, &text);
        }
    });
    es.add_event_listener_with_callback("position", on_position.as_ref().unchecked_ref())?;

    let w = weak.clone();
    let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        if let Some(hub) = w.upgrade() {
            hub.ever_open.set(true);
            hub.backoff_ms.set(1_000);
            hub.set_link(Link::Live);
        }
    });
    es.set_onopen(Some(on_open.as_ref().unchecked_ref()));

    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
        let Some(hub) = weak.upgrade() else { return };
        let closed = e.target().and_then(|t| t.dyn_into::<EventSource>().ok()).is_some_and(|es| es.ready_state() == EventSource::CLOSED);
        hub.set_link(if hub.ever_open.get() && !closed { Link::Reconnecting } else { Link::Unreachable });
        if closed {
            // The browser gave up (a non-200 answer): try again ourselves, backing off.
            let delay = hub.backoff_ms.get();
            hub.backoff_ms.set((delay * 2).min(30_000));
            let w = Rc::downgrade(&hub);
            set_timeout(
                move || {
                    if let Some(hub) = w.upgrade() {
                        rebuild(&hub, true);
                    }
                },
                Duration::from_millis(delay as u64),
            );
        }
    });
    es.set_onerror(Some(on_error.as_ref().unchecked_ref()));

    if let Some(events) = replay {
        if es.ready_state() == EventSource::OPEN {
            hub.ever_open.set(true);
            hub.set_link(Link::Live);
        }
        for data in events.iter() {
            if let Some(text) = data.as_string() {
                receive(hub, &text);
            }
        }
    }

    Ok(Source { es, _on_position: on_position, _on_open: on_open, _on_error: on_error })
}

/// A `position` event's data: the hub is the truth, so even a lower version (a hub restored
/// from a backup) replaces what the page had. A new version is told to every element showing it.
fn receive(hub: &HubLink, data: &str) {
    let Some(raw) = parse_json(data) else { return };
    let Ok(mut p) = serde_wasm_bindgen::from_value::<PublicPosition>(raw.clone()) else { return };
    if p.available.is_none() {
        // Without the count the hub's status is what is shown.
        p.status = Status::of_wire(&crate::dom::text_of(&raw, "status").unwrap_or_default());
    }
    let key = PositionKey::new(p.sku.clone(), p.location.clone());
    let version = p.version;
    let reserved = p.reserved;
    let before = hub.positions.borrow_mut().insert(key.clone(), (p, raw.clone()));
    hub.trigger(&key).notify();
    if before.as_ref().is_some_and(|(b, _)| b.version == version) {
        return;
    }
    // Where the hub withholds `reserved` (`--disclose`), any change may be a hold ending.
    let fewer_held = before.is_some_and(|(b, _)| match (reserved, b.reserved) {
        (Some(now), Some(was)) => now < was,
        _ => true,
    });
    // Listeners may add or remove elements: no borrow is held while they run.
    let listeners: Vec<Listener> =
        hub.interests.borrow().values().filter(|(keys, _)| keys.contains(&key)).map(|(_, l)| l.clone()).collect();
    for listener in listeners {
        listener(Note::Change(&key, fewer_held));
    }
}

/// For the view's browser tests: deliver a position or a link state without a hub.
#[cfg(feature = "testing")]
pub(crate) fn inject(base: &str, position_json: &str, link: Option<Link>) {
    let Some(hub) = HUBS.with(|h| h.borrow().get(base).cloned()) else { return };
    // Open (or fail to open) the queued stream now: on a busy machine its zero-delay timer can
    // fire after a test's own timers and overwrite the state the test sets.
    if hub.rebuild_queued.replace(false) {
        rebuild(&hub, false);
    }
    if let Some(l) = link {
        hub.set_link(l);
    }
    receive(&hub, position_json);
}
