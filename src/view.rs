//! The element's view: a status line per location, the shopper's hold with its countdown, the
//! live/reconnecting indicator and a polite live region that announces status changes.
//!
//! Shaped for a small download. The element's state is one stored value and two triggers
//! ([`Cx`]), the page stream's positions and link have triggers of their own
//! ([`HubLink`]); every dynamic part of the view is one of two boxed function types ([`Text`],
//! [`Flag`]) over a plain `fn` that reads a [`Snap`] of one row, so the reactive and rendering
//! code is compiled once per type rather than once per closure. The DOM of a row is fixed:
//! what does not apply is empty and `hidden`, never absent, so nothing is rebuilt (and focus is
//! never lost) when a hold changes.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use shelfcast_protocol::wire::{ReservationView, RELEASED_BY_STORE};
use shelfcast_protocol::{PositionKey, PublicPosition, ReservationStatus, Status};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::HtmlElement;

use crate::config::{Attrs, Config, ConfigError};
use crate::display::{shown, Failure, Hold, Link, Shown};
use crate::dom::{self, emit, object};
use crate::i18n::{countdown, store_name, Locale};
use crate::live::{self, HubLink, Interest, Note};
use crate::reserve::{self, Answer};
use crate::small::Map;

/// `src/style.css`, minified by `build.rs`.
const STYLE: &str = include_str!(concat!(env!("OUT_DIR"), "/style.css"));

thread_local! {
    /// The element's styles, one constructed sheet shared by every element of the page:
    /// adopted by each shadow root, it needs no inline `<style>`, so a page whose Content
    /// Security Policy forbids inline styles (and whose Trusted Types forbid the HTML sink such
    /// a `<style>` is filled through) styles the element all the same.
    static SHEET: Option<web_sys::CssStyleSheet> = web_sys::CssStyleSheet::new().ok().filter(|s| s.replace_sync(STYLE).is_ok());
}

/// Gives `root` the element's styles.
pub fn style(root: &web_sys::ShadowRoot) {
    SHEET.with(|s| {
        if let Some(sheet) = s {
            root.set_adopted_style_sheets(&js_sys::Array::of1(sheet));
        }
    });
}

type Text = Box<dyn FnMut() -> String + Send>;
type Flag = Box<dyn FnMut() -> bool + Send>;

/// Everything one element knows, behind one handle.
struct El {
    host: HtmlElement,
    attrs: Attrs,
    config: Result<Config, ConfigError>,
    interest: Option<Interest>,
    holds: Map<PositionKey, Hold>,
    now: f64,
}

/// The element's handles, cheap to copy into handlers: its state, `changed` for a change of
/// that state (attributes, holds, the clock while a hold counts down), `rows` for a new set of
/// rows (other positions, or reservable switched).
///
/// The state is owned by the view (disposed with it, whatever still holds a `Cx`) and reached
/// through [`Cx::with`] and [`Cx::update`] only: one instantiation of the stored value's code,
/// not one per access. Once the element is gone they do nothing and answer the default.
#[derive(Clone, Copy)]
pub struct Cx {
    el: StoredValue<Rc<RefCell<El>>, LocalStorage>,
    changed: Trigger,
    rows: Trigger,
}

impl Cx {
    pub fn new(host: HtmlElement, attrs: Attrs) -> Cx {
        let config = attrs.config();
        let el = El { host, attrs, config, interest: None, holds: Map::new(), now: dom::now() };
        Cx { el: StoredValue::new_local(Rc::new(RefCell::new(el))), changed: Trigger::new(), rows: Trigger::new() }
    }

    /// Reads the element's state. Nothing that can reach back into this element (DOM events,
    /// the page's listeners) may run inside `f`.
    fn with<R: Default>(&self, f: impl FnOnce(&El) -> R) -> R {
        self.el.try_get_value().map(|el| f(&el.borrow())).unwrap_or_default()
    }

    /// Changes the element's state; the same rule as [`Cx::with`].
    fn update<R: Default>(&self, f: impl FnOnce(&mut El) -> R) -> R {
        self.el.try_get_value().map(|el| f(&mut el.borrow_mut())).unwrap_or_default()
    }

    /// Applies an attribute change. Another hub or other positions re-subscribe (and look up
    /// stored holds again), as does a new configuration error (it is reported); a change of
    /// words or thresholds (`locale`, `low-stock`) keeps the subscription, the holds, the rows
    /// and their DOM, so the shopper's focus stays where it is; other positions, `reservable`
    /// or `notify` make new rows.
    pub fn set_attribute(self, name: String, value: Option<String>) {
        let (reconfigure, new_rows) = self.update(|e| {
            match value {
                Some(v) => e.attrs.values.insert(name, v),
                None => e.attrs.values.remove(&name),
            };
            let config = e.attrs.config();
            let watched =
                |c: &Result<Config, ConfigError>| c.as_ref().map(|c| (c.hub.clone(), c.positions.clone())).map_err(ConfigError::code);
            let rows = |c: &Result<Config, ConfigError>| c.as_ref().ok().map(|c| (c.positions.clone(), c.reservable, c.notify));
            let changed = (watched(&config) != watched(&e.config), rows(&config) != rows(&e.config));
            e.config = config;
            changed
        });
        if reconfigure {
            configure(self);
        }
        if new_rows {
            self.rows.notify();
        }
        self.changed.notify();
    }

    fn hub_link(&self) -> Option<Rc<HubLink>> {
        self.with(|e| e.interest.as_ref().map(|i| i.hub.clone()))
    }

    fn hub(&self) -> Option<String> {
        self.with(|e| e.config.as_ref().ok().map(|c| c.hub.clone()))
    }

    fn locale(&self) -> Locale {
        self.with(|e| e.attrs.locale())
    }

    fn position(&self, key: &PositionKey) -> Option<PublicPosition> {
        self.hub_link()?.position(key)
    }

    fn hold(&self, key: &PositionKey) -> Hold {
        self.with(|e| e.holds.get(key).cloned().unwrap_or_default())
    }

    fn set_hold(&self, key: &PositionKey, hold: Hold) {
        self.update(|e| {
            e.holds.insert(key.clone(), hold);
        });
        self.changed.notify();
    }

    /// Dispatches `shelfcast:<name>`; no state is borrowed while the page's listeners run.
    fn emit(&self, name: &str, detail: &JsValue) {
        if let Some(host) = self.with(|e| Some(e.host.clone())) {
            emit(&host, name, detail);
        }
    }
}

/// What one row's bindings read, taken afresh (and tracked) at each update.
struct Snap {
    l: Locale,
    shown: Shown,
    hold: Hold,
    now: f64,
    store: String,
    many: bool,
    reservable: bool,
    notify: bool,
}

impl Snap {
    /// The row's button offers "Notify me": asked for, out of stock, and nothing held here.
    fn notifying(&self) -> bool {
        self.notify && self.shown != Shown::Loading && self.shown.sold_out() && !self.hold.is_active()
    }

    fn take(cx: Cx, key: &PositionKey) -> Snap {
        cx.changed.track();
        let (low, many, reservable, notify) =
            cx.with(|e| e.config.as_ref().map(|c| (c.low_stock, c.positions.len() > 1, c.reservable, c.notify)).unwrap_or_default());
        let link = cx.hub_link().map(|h| h.link()).unwrap_or_default();
        let hold = cx.hold(key);
        Snap {
            l: cx.locale(),
            shown: shown(cx.position(key).as_ref(), &hold, link, low),
            hold,
            now: cx.with(|e| e.now),
            store: store_name(key.location.as_str()),
            many,
            reservable,
            notify,
        }
    }
}

fn text(cx: Cx, key: &PositionKey, f: fn(&Snap) -> String) -> Text {
    let key = key.clone();
    Box::new(move || f(&Snap::take(cx, &key)))
}

fn flag(cx: Cx, key: &PositionKey, f: fn(&Snap) -> bool) -> Flag {
    let key = key.clone();
    Box::new(move || f(&Snap::take(cx, &key)))
}

fn root_text(cx: Cx, f: fn(Cx) -> String) -> Text {
    Box::new(move || {
        cx.changed.track();
        f(cx)
    })
}

fn root_flag(cx: Cx, f: fn(Cx) -> bool) -> Flag {
    Box::new(move || {
        cx.changed.track();
        f(cx)
    })
}

/// Subscribes to the configured positions (the old subscription goes once the new one is in,
/// so a shared stream is not closed in between), restores stored holds, reports a bad
/// configuration. Runs at start and whenever the hub, the positions or the configuration error
/// change.
pub fn configure(cx: Cx) {
    let Some((config, host)) = cx.with(|e| Some((e.config.clone(), e.host.clone()))) else { return };
    // Positions the element did not show before get a `shelfcast:change` for what the page's
    // stream already knows of them (later versions come from the stream).
    let shown_before: Vec<PositionKey> = cx.with(|e| e.interest.as_ref().map(Interest::keys).unwrap_or_default());
    match config {
        Ok(c) => {
            let interest = live::watch(&c.hub, &c.positions, Rc::new(move |note| heard(cx, note)));
            let unreachable = interest.hub.link_now() == Link::Unreachable;
            cx.update(|e| e.interest = Some(interest));
            restore_holds(cx, &c);
            for key in c.positions.iter().filter(|k| !shown_before.contains(k)) {
                if let Some(detail) = change_detail(cx, key) {
                    emit(&host, "change", &detail);
                }
            }
            if unreachable {
                heard(cx, Note::Unreachable);
            }
        }
        Err(e) => {
            cx.update(|el| el.interest = None);
            let message = cx.locale().config_error(e.code());
            emit(&host, "error", &object(&[("code", e.code().into()), ("message", message.into())]));
        }
    }
}

/// What the page's connection tells this element: a new version of one of its positions is a
/// `shelfcast:change`; one that holds fewer units than before is a reason to ask the hub
/// whether the shopper's hold there still stands (a release, expiry or pickup decided
/// elsewhere lowers `reserved`; sales do not, so a busy position is not asked about at every
/// sale); an unreachable hub is a `shelfcast:error`.
fn heard(cx: Cx, note: Note) {
    match note {
        Note::Change(key, fewer_held) => {
            if let Some(detail) = change_detail(cx, key) {
                cx.emit("change", &detail);
            }
            if fewer_held {
                check_hold(cx, key.clone());
            }
        }
        Note::Unreachable => {
            let Some(hub) = cx.hub() else { return };
            let message = hub + " is unreachable or refuses this origin (--allow-origin)";
            cx.emit("error", &error_detail("unreachable", &message));
        }
    }
}

/// `shelfcast:change` detail: the hub's position as it came, with `available` and `status` as
/// this element shows them (its `low-stock`, less the shopper's own hold the hub's count does
/// not show yet).
fn change_detail(cx: Cx, key: &PositionKey) -> Option<JsValue> {
    let hub = cx.hub_link()?;
    let raw = hub.raw(key)?;
    let low = cx.with(|e| e.config.as_ref().map(|c| c.low_stock).unwrap_or_default());
    let Shown::Stock { status, available, .. } = shown(hub.position(key).as_ref(), &cx.hold(key), Link::Live, low) else { return None };
    let available = available.map_or(JsValue::NULL, |a| (a as f64).into());
    let mine = object(&[("status", status.as_str().into()), ("available", available)]);
    let detail = js_sys::Object::assign(&js_sys::Object::new(), raw.unchecked_ref());
    Some(js_sys::Object::assign(&detail, mine.unchecked_ref()).into())
}

/// Asks the hub whether the shopper's hold at `key` still stands and how long it has left; one
/// that ended elsewhere (released through the API or by the store, expired, picked up, or while
/// the page was away) leaves the page like an end seen here. Answers may arrive in any order:
/// once a hold has ended, a late "still held" finds no hold to update.
fn check_hold(cx: Cx, key: PositionKey) {
    let (Some(hub), Hold::Held { id, token, .. }) = (cx.hub(), cx.hold(&key)) else { return };
    leptos::task::spawn_local(async move {
        let answer = reserve::status(&hub, &id, &token).await;
        let Hold::Held { id: now, token, qty, expires_at, lapses, seen_version } = cx.hold(&key) else { return };
        if now != id {
            return;
        }
        let (expires_at, lapses) = match answer {
            Some(Ok(v)) if v.status.is_open() => expiry(&v),
            Some(Ok(v)) => return end_hold(cx, &hub, &key, v.status, v.released_by.as_deref() == Some(RELEASED_BY_STORE)),
            // Unknown to the hub with this token: it is not the shopper's any more.
            Some(Err(())) => return end_hold(cx, &hub, &key, ReservationStatus::Released, false),
            // The hub cannot be asked: a restored hold counts down on this device's clock.
            None if lapses.is_infinite() => (expires_at, dom::now() + expires_at - js_sys::Date::now()),
            None => return,
        };
        cx.set_hold(&key, Hold::Held { id, token, qty, expires_at, lapses, seen_version });
    });
}

/// The shopper's hold at `key` ended with `status` (nothing, if it still stands), released by
/// the store when `by_store` (staff could not set it aside): it leaves the page and storage,
/// and `shelfcast:released` says why.
fn end_hold(cx: Cx, hub: &str, key: &PositionKey, status: ReservationStatus, by_store: bool) {
    let Hold::Held { id, qty, .. } = cx.hold(key) else { return };
    let (hold, reason) = match status {
        ReservationStatus::Released if by_store => (Hold::Failed { reason: Failure::ReleasedByStore }, "released_by_store"),
        ReservationStatus::Expired => (Hold::Failed { reason: Failure::Expired }, "expired"),
        ReservationStatus::Released => (Hold::Failed { reason: Failure::Released }, "released"),
        ReservationStatus::Fulfilled => (Hold::None, "fulfilled"),
        // Still open: nothing ended.
        _ => return,
    };
    reserve::forget(hub, key);
    cx.set_hold(key, hold);
    cx.emit("released", &hold_detail(&id, key, qty, None, Some(reason)));
}

/// Mounts the view for `cx`; the returned view owns the ticker that moves countdowns.
pub fn root(cx: Cx) -> impl IntoView {
    configure(cx);
    // A quarter second: a lapsed hold leaves the screen within that of the hub's expiry.
    let ticker = set_interval_with_handle(move || tick(cx), Duration::from_millis(250)).ok();
    on_cleanup(move || {
        if let Some(t) = ticker {
            t.clear();
        }
    });
    let rows = move || {
        cx.rows.track();
        let (keys, reservable, notify) =
            cx.with(|e| e.config.as_ref().map(|c| (c.positions.clone(), c.reservable, c.notify)).unwrap_or_default());
        let many = keys.len() > 1;
        keys.into_iter().map(|key| row(cx, key, many, reservable, notify)).collect::<Vec<_>>()
    };
    view! {
        <div class="card" lang=root_text(cx, |cx| cx.locale().tag().into()) part="card">
            <p class=root_text(cx, alert_class) role="alert" hidden=root_flag(cx, |cx| alert(cx).is_empty())>
                {root_text(cx, alert)}
            </p>
            <ul class="rows">{rows}</ul>
            <p class=root_text(cx, link_class) part="link" hidden=root_flag(cx, |cx| link_class(cx).is_empty())>
                {root_text(cx, link_text)}
            </p>
            <div class="sr-only" aria-live="polite" role="status">{root_text(cx, announcement)}</div>
        </div>
    }
}

fn link_state(cx: Cx) -> Option<Link> {
    let ok = cx.with(|e| e.config.is_ok());
    ok.then(|| cx.hub_link().map(|h| h.link()).unwrap_or_default())
}

fn link_class(cx: Cx) -> String {
    match link_state(cx) {
        Some(Link::Live) => "link live",
        Some(Link::Reconnecting) => "link reconnecting",
        _ => "",
    }
    .into()
}

fn link_text(cx: Cx) -> String {
    let l = cx.locale();
    match link_state(cx) {
        Some(Link::Live) => l.live(),
        Some(Link::Reconnecting) => l.reconnecting(),
        _ => "",
    }
    .into()
}

/// The one alert line: a configuration the element cannot show, or a hub it cannot reach.
fn alert(cx: Cx) -> String {
    let l = cx.locale();
    match cx.with(|e| e.config.as_ref().err().map(ConfigError::code)) {
        Some(code) => l.config_error(code),
        None if link_state(cx) == Some(Link::Unreachable) => l.unreachable(),
        None => "",
    }
    .into()
}

fn alert_class(cx: Cx) -> String {
    if cx.with(|e| e.config.is_err()) { "error" } else { "link unreachable" }.into()
}

fn row(cx: Cx, key: PositionKey, many: bool, reservable: bool, notify: bool) -> impl IntoView {
    let store = many.then(|| view! { <span class="store">{store_name(key.location.as_str())}</span> });
    // "Notify me" is the same button, while out of stock (see `Snap::notifying`): one button a
    // row keeps the shopper's focus in place, and is less to download than a second one.
    let hold = (reservable || notify).then(|| {
        view! {
            <div class=text(cx, &key, hold_class)>
                <span class="held">{text(cx, &key, held_text)}</span>
                // One button that reserves and cancels: it is never hidden or disabled, so the
                // keyboard focus stays on it whatever the hold does (`aria-disabled` while it
                // cannot act; clicks are ignored then).
                <button type="button" class=text(cx, &key, action_class) aria-disabled=text(cx, &key, |s| action_blocked(s).to_string())>
                    {text(cx, &key, action_label)}
                </button>
                <p class="failure" role="alert" hidden=flag(cx, &key, |s| !matches!(s.hold, Hold::Failed { .. }))>
                    {text(cx, &key, |s| if let Hold::Failed { reason } = &s.hold { s.l.failure(reason, &s.store) } else { String::new() })}
                </p>
            </div>
        }
    });
    view! {
        <li class=text(cx, &key, row_class) data-position=key.to_string() aria-busy=text(cx, &key, |s| (s.shown == Shown::Loading).to_string())>
            // An attribute given as an expression: a view of only literal markup would be built from
            // an HTML string (`innerHTML`), which a page enforcing Trusted Types refuses.
            <span class="dot" aria-hidden={"true"}></span>
            {store}
            <span class="text">{text(cx, &key, status_text)}</span>
            {hold}
        </li>
    }
}

fn row_class(s: &Snap) -> String {
    let (status, stale) = match s.shown {
        Shown::Loading => return "row loading".into(),
        Shown::Stock { status, stale, .. } => (status, stale),
    };
    let class = match status {
        Status::InStock => "row in-stock",
        Status::LowStock => "row low-stock",
        Status::OutOfStock => "row out-of-stock",
    };
    if stale {
        format!("{class} stale")
    } else {
        class.into()
    }
}

fn status_text(s: &Snap) -> String {
    match s.shown {
        Shown::Loading => s.l.checking().into(),
        Shown::Stock { status: Status::InStock, available: Some(n), .. } => s.l.in_stock(n),
        Shown::Stock { status: Status::InStock, available: None, .. } => s.l.in_stock_short().into(),
        Shown::Stock { status: Status::LowStock, available: Some(n), .. } => s.l.low_stock(n),
        Shown::Stock { status: Status::LowStock, available: None, .. } => s.l.low_stock_short().into(),
        Shown::Stock { status: Status::OutOfStock, .. } => s.l.out_of_stock().into(),
    }
}

fn hold_class(s: &Snap) -> String {
    match s.hold {
        Hold::Pending { .. } => "hold pending",
        Hold::Held { .. } => "hold held",
        // Only "Notify me" asked for, and not out of stock: nothing to offer.
        _ if !s.reservable && !s.notifying() => "hold off",
        _ => "hold",
    }
    .into()
}

fn held_text(s: &Snap) -> String {
    match s.hold {
        Hold::Pending { qty, .. } => s.l.held_short(qty),
        Hold::Held { qty, lapses, .. } if lapses.is_infinite() => s.l.held_short(qty),
        Hold::Held { qty, expires_at, lapses, .. } => s.l.held(qty, &countdown(s.now, lapses), &s.l.time(expires_at)),
        _ => String::new(),
    }
}

fn action_class(s: &Snap) -> String {
    match s.hold {
        Hold::Held { .. } => "cancel",
        _ if s.notifying() => "notify",
        _ => "reserve",
    }
    .into()
}

fn action_blocked(s: &Snap) -> bool {
    match s.hold {
        Hold::Held { .. } => false,
        Hold::Pending { .. } => true,
        _ => !s.notifying() && s.shown.sold_out(),
    }
}

fn action_label(s: &Snap) -> String {
    match (&s.hold, s.many) {
        (Hold::Held { .. }, _) => s.l.cancel().into(),
        (Hold::Pending { .. }, _) => s.l.reserving().into(),
        _ if s.notifying() => s.l.notify().into(),
        (_, true) => s.l.reserve_at(&s.store),
        (_, false) => s.l.reserve().into(),
    }
}

/// `shelfcast:reserved` / `shelfcast:released` detail.
fn hold_detail(id: &str, key: &PositionKey, qty: i64, expires_at: Option<f64>, reason: Option<&str>) -> JsValue {
    let mut fields =
        vec![("id", id.into()), ("sku", key.sku.as_str().into()), ("location", key.location.as_str().into()), ("qty", (qty as f64).into())];
    if let Some(t) = expires_at {
        fields.push(("expires_at", t.into()));
    }
    if let Some(r) = reason {
        fields.push(("reason", r.into()));
    }
    object(&fields)
}

fn error_detail(code: &str, message: &str) -> JsValue {
    object(&[("code", code.into()), ("message", message.into())])
}

/// A click in the element's shadow root (one listener per element, see `lib.rs`): `button` is
/// the class of the button clicked, `position` its row's `data-position`.
pub fn clicked(cx: Cx, button: &str, position: &str) {
    let key = cx.with(|e| e.config.as_ref().ok().and_then(|c| c.positions.iter().find(|k| k.to_string() == position).cloned()));
    match (button, key) {
        ("reserve", Some(key)) => reserve_now(cx, key),
        ("cancel", Some(key)) => cancel(cx, key),
        ("notify", Some(key)) => {
            cx.emit("notify-request", &object(&[("sku", key.sku.as_str().into()), ("location", key.location.as_str().into())]))
        }
        _ => {}
    }
}

/// When a granted hold lapses: the hub's instant (ms since the epoch; never, if the hub gave no
/// time), and on this page's monotonic clock, counted from the hub's time left as it answered
/// (a hub that does not say uses this device's wall clock).
fn expiry(v: &ReservationView) -> (f64, f64) {
    let at = v.expires_at.as_deref().map(js_sys::Date::parse).filter(|t| t.is_finite()).unwrap_or(f64::INFINITY);
    let left = v.expires_in_ms.map(|ms| ms as f64).unwrap_or(at - js_sys::Date::now());
    (at, dom::now() + left)
}

/// Optimistic: the hold shows at once; the hub's answer keeps it or rolls it back with a reason.
fn reserve_now(cx: Cx, key: PositionKey) {
    let Some(hub) = cx.hub() else { return };
    if cx.hold(&key).is_active() {
        return;
    }
    let seen_version = cx.hub_link().and_then(|h| h.position(&key)).map(|p| p.version).unwrap_or(0);
    let qty = 1;
    cx.set_hold(&key, Hold::Pending { qty, seen_version });
    let idempotency_key = dom::random_key();
    leptos::task::spawn_local(async move {
        let answer = reserve::reserve(&hub, &key, qty, &idempotency_key).await;
        let (code, failure) = match answer {
            Answer::Granted(v, text) => {
                reserve::save(&hub, &key, &text);
                let (expires_at, lapses) = expiry(&v);
                cx.set_hold(
                    &key,
                    Hold::Held { id: v.id.clone(), token: v.token.unwrap_or_default(), qty: v.qty, expires_at, lapses, seen_version },
                );
                cx.emit("reserved", &hold_detail(&v.id, &key, v.qty, Some(expires_at), None));
                return;
            }
            Answer::SoldOut => ("insufficient_stock".to_string(), Failure::SoldOut),
            Answer::Refused { code, message } => (code, Failure::Other(message)),
            Answer::Unreachable => ("reservation_failed".to_string(), Failure::Other(cx.locale().unreachable_short().into())),
        };
        let message = cx.locale().failure(&failure, &store_name(key.location.as_str()));
        cx.set_hold(&key, Hold::Failed { reason: failure });
        cx.emit("error", &error_detail(&code, &message));
    });
}

/// Optimistic, like reserving: the hold leaves the page at once (so the stream's news of the
/// release finds no hold to ask the hub about), and comes back if the hub cannot be told.
fn cancel(cx: Cx, key: PositionKey) {
    let (Some(hub), held) = (cx.hub(), cx.hold(&key)) else { return };
    let Hold::Held { id, token, qty, .. } = held.clone() else { return };
    cx.set_hold(&key, Hold::None);
    leptos::task::spawn_local(async move {
        if reserve::release(&hub, &id, &token).await {
            reserve::forget(&hub, &key);
            cx.emit("released", &hold_detail(&id, &key, qty, None, Some("cancelled")));
        } else {
            cx.set_hold(&key, held);
            cx.emit("error", &error_detail("release_failed", cx.locale().unreachable_short()));
        }
    });
}

/// After a reload: show stored holds at once (without a countdown: this device's clock cannot
/// tell the time left), then ask the hub whether each still stands and how long it has.
fn restore_holds(cx: Cx, c: &Config) {
    for key in &c.positions {
        let Some(stored) = reserve::load(&c.hub, key) else { continue };
        let (id, token, qty) = (stored.id.clone(), stored.token.clone().unwrap_or_default(), stored.qty);
        cx.set_hold(key, Hold::Held { id, token, qty, expires_at: expiry(&stored).0, lapses: f64::INFINITY, seen_version: 0 });
        check_hold(cx, key.clone());
    }
}

/// Once a second: move the countdowns, and let lapsed holds go.
fn tick(cx: Cx) {
    let now = dom::now();
    let lapsed: Vec<PositionKey> = cx.with(|e| {
        e.holds.iter().filter(|(_, h)| matches!(h, Hold::Held { lapses, .. } if *lapses <= now)).map(|(k, _)| k.clone()).collect()
    });
    let active = cx.update(|e| {
        e.now = now;
        e.holds.values().any(Hold::is_active)
    });
    if active || !lapsed.is_empty() {
        cx.changed.notify();
    }
    let Some(hub) = cx.hub() else { return };
    for key in lapsed {
        end_hold(cx, &hub, &key, ReservationStatus::Expired, false);
    }
}

/// What the live region says: each location's status and the shopper's hold, not every count
/// tick, so a screen reader is told what matters.
fn announcement(cx: Cx) -> String {
    let l = cx.locale();
    let Some((positions, low)) = cx.with(|e| e.config.as_ref().ok().map(|c| (c.positions.clone(), c.low_stock))) else {
        return String::new();
    };
    let many = positions.len() > 1;
    let mut said = String::new();
    for k in &positions {
        let hold = cx.hold(k);
        let line = match shown(cx.position(k).as_ref(), &hold, Link::Live, low) {
            Shown::Loading => continue,
            Shown::Stock { status: Status::InStock, .. } => l.in_stock_short().to_string(),
            // The status, not the count: "only 3 left", "only 2 left"… would be said at every sale.
            Shown::Stock { status: Status::LowStock, .. } => l.low_stock_short().to_string(),
            Shown::Stock { status: Status::OutOfStock, .. } => l.out_of_stock().to_string(),
        };
        let store = store_name(k.location.as_str());
        let hold = match hold {
            Hold::Held { qty, .. } | Hold::Pending { qty, .. } => format!(". {}", l.held_short(qty)),
            Hold::Failed { reason } => format!(". {}", l.failure(&reason, &store)),
            Hold::None => String::new(),
        };
        if !said.is_empty() {
            said.push_str(". ");
        }
        if many {
            said.push_str(&store);
            said.push_str(": ");
        }
        said.push_str(&line);
        said.push_str(&hold);
    }
    said
}
