//! The element's view: a status line per location, the shopper's hold with its countdown, the
//! live/reconnecting indicator and a polite live region that announces status changes.

use std::time::Duration;

use leptos::prelude::*;
use serde::Serialize;
use shelfcast_protocol::{Position, PositionKey, ReservationStatus, Status};
use web_sys::HtmlElement;

use crate::config::{Attrs, Config, ConfigError};
use crate::display::{shown, Failure, Hold, Link, Shown};
use crate::dom::{self, emit};
use crate::i18n::{countdown, store_name, Locale};
use crate::live::{self, Interest, Positions};
use crate::reserve::{self, Answer, StoredHold};
use crate::small::Map;

const STYLE: &str = include_str!("style.css");

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

#[derive(Serialize)]
struct HoldDetail<'a> {
    id: &'a str,
    sku: &'a str,
    location: &'a str,
    qty: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// Everything the rows and handlers share; all fields are arena handles, cheap to copy.
#[derive(Clone, Copy)]
struct Ctx {
    host: StoredValue<HtmlElement, LocalStorage>,
    config: Memo<Result<Config, ConfigError>>,
    locale: Memo<Locale>,
    feed: RwSignal<Option<(Positions, RwSignal<Link>)>>,
    holds: RwSignal<Map<PositionKey, Hold>>,
    now: RwSignal<f64>,
}

impl Ctx {
    fn position(&self, key: &PositionKey) -> Option<Position> {
        self.feed.get().and_then(|(p, _)| p.with(|m| m.get(key).cloned()))
    }

    fn link(&self) -> Link {
        self.feed.get().map(|(_, l)| l.get()).unwrap_or_default()
    }

    fn hold(&self, key: &PositionKey) -> Hold {
        self.holds.with(|h| h.get(key).cloned().unwrap_or_default())
    }

    fn set_hold(&self, key: &PositionKey, hold: Hold) {
        self.holds.update(|h| {
            h.insert(key.clone(), hold);
        });
    }

    fn hub(&self) -> Option<String> {
        self.config.with_untracked(|c| c.as_ref().ok().map(|c| c.hub.clone()))
    }

    fn emit<T: Serialize>(&self, name: &str, detail: &T) {
        self.host.with_value(|h| emit(h, name, detail));
    }
}

#[component]
pub fn Root(host: HtmlElement, attrs: RwSignal<Attrs>) -> impl IntoView {
    let config = Memo::new(move |_| attrs.with(Attrs::config));
    let locale = Memo::new(move |_| attrs.with(Attrs::locale));
    let cx = Ctx {
        host: StoredValue::new_local(host),
        config,
        locale,
        feed: RwSignal::new(None),
        holds: RwSignal::new(Map::new()),
        now: RwSignal::new(dom::now()),
    };
    // The element's share of the page's stream; replaced when sku, locations or hub change,
    // and dropped with the element.
    let interest = StoredValue::new_local(None::<Interest>);
    Effect::new(move |_| match config.get() {
        Ok(c) => {
            let i = live::watch(&c.hub, &c.positions);
            cx.feed.set(Some((i.hub.positions, i.hub.link)));
            interest.set_value(Some(i));
            restore_holds(cx, &c);
        }
        Err(e) => {
            interest.set_value(None);
            cx.feed.set(None);
            cx.emit("error", &ErrorDetail { code: e.code(), message: locale.get_untracked().config_error(e.code()).into() });
        }
    });
    announce_changes(cx);
    let ticker = set_interval_with_handle(move || tick(cx), Duration::from_millis(1_000)).ok();
    on_cleanup(move || {
        if let Some(t) = ticker {
            t.clear();
        }
    });

    let rows = move || match config.get() {
        Err(e) => view! { <p class="error" role="alert">{locale.get().config_error(e.code())}</p> }.into_any(),
        Ok(c) => {
            let many = c.positions.len() > 1;
            let rows = c.positions.into_iter().map(|key| view! { <Row cx key many /> }).collect_view();
            view! { <ul class="rows">{rows}</ul> }.into_any()
        }
    };
    let link_line = move || {
        let l = locale.get();
        match (config.with(|c| c.is_ok()), cx.link()) {
            (false, _) | (_, Link::Connecting) => None,
            (_, Link::Live) => Some(view! { <p class="link live"><span class="pulse" aria-hidden="true"></span>{l.live()}</p> }.into_any()),
            (_, Link::Reconnecting) => Some(view! { <p class="link reconnecting">{l.reconnecting()}</p> }.into_any()),
            (_, Link::Unreachable) => Some(view! { <p class="link unreachable" role="alert">{l.unreachable()}</p> }.into_any()),
        }
    };
    let announcement = move || announcement(cx);
    view! {
        <style>{STYLE}</style>
        <div class="card" lang=move || locale.get().tag() part="card">
            {rows}
            {link_line}
            <div class="sr-only" aria-live="polite" role="status">{announcement}</div>
        </div>
    }
}

#[component]
fn Row(cx: Ctx, key: PositionKey, many: bool) -> impl IntoView {
    let store = store_name(key.location.as_str());
    let k = key.clone();
    let state = Memo::new(move |_| {
        let low = cx.config.with(|c| c.as_ref().map(|c| c.low_stock).unwrap_or_default());
        shown(cx.position(&k).as_ref(), &cx.hold(&k), cx.link(), low)
    });
    let class = move || match state.get() {
        Shown::Loading => "row loading",
        Shown::Stock { status: Status::InStock, .. } => "row in-stock",
        Shown::Stock { status: Status::LowStock, .. } => "row low-stock",
        Shown::Stock { status: Status::OutOfStock, .. } => "row out-of-stock",
    };
    let stale = move || matches!(state.get(), Shown::Stock { stale: true, .. });
    let text = move || {
        let l = cx.locale.get();
        match state.get() {
            Shown::Loading => l.checking().to_string(),
            Shown::Stock { status: Status::InStock, available, .. } => l.in_stock(available),
            Shown::Stock { status: Status::LowStock, available, .. } => l.low_stock(available),
            Shown::Stock { status: Status::OutOfStock, .. } => l.out_of_stock().to_string(),
        }
    };
    let store_label = many.then(|| view! { <span class="store">{store.clone()}</span> });
    let reservable = move || cx.config.with(|c| c.as_ref().is_ok_and(|c| c.reservable));
    let hold_ui = {
        let (key, store) = (key.clone(), store.clone());
        move || reservable().then(|| view! { <HoldControls cx key=key.clone() store=store.clone() many state /> })
    };
    view! {
        <li class=class class:stale=stale aria-busy=move || matches!(state.get(), Shown::Loading).to_string()>
            <span class="dot" aria-hidden="true"></span>
            {store_label}
            <span class="text">{text}</span>
            {hold_ui}
        </li>
    }
}

#[component]
fn HoldControls(cx: Ctx, key: PositionKey, store: String, many: bool, state: Memo<Shown>) -> impl IntoView {
    let k = key.clone();
    let hold = Memo::new(move |_| cx.hold(&k));
    let can_reserve = move || matches!(state.get(), Shown::Stock { available, .. } if available > 0);
    let on_reserve = {
        let key = key.clone();
        move |_| reserve_now(cx, key.clone())
    };
    let on_cancel = {
        let key = key.clone();
        move |_| cancel(cx, key.clone())
    };
    let store_for_label = store.clone();
    let reserve_label = move || {
        let l = cx.locale.get();
        if many { l.reserve_at(&store_for_label) } else { l.reserve().to_string() }
    };
    let store_for_msg = store.clone();
    move || {
        let l = cx.locale.get();
        match hold.get() {
            Hold::Pending { qty, .. } => view! {
                <div class="hold pending">
                    <span>{l.held_short(qty)}</span>
                    <span class="note">{l.reserving()}</span>
                </div>
            }
            .into_any(),
            Hold::Held { qty, expires_at, .. } => {
                let left = move || countdown(cx.now.get(), expires_at);
                let until = l.time(expires_at);
                view! {
                    <div class="hold held">
                        <span>{move || l.held(qty, &left(), &until)}</span>
                        <button type="button" class="cancel" on:click=on_cancel.clone()>{l.cancel()}</button>
                    </div>
                }
                .into_any()
            }
            Hold::None | Hold::Failed { .. } => {
                let failed = match hold.get() {
                    Hold::Failed { reason } => Some(view! { <p class="failure" role="alert">{l.failure(&reason, &store_for_msg)}</p> }),
                    _ => None,
                };
                view! {
                    <div class="hold">
                        <button type="button" class="reserve" on:click=on_reserve.clone() disabled=move || !can_reserve()>
                            {reserve_label.clone()}
                        </button>
                        {failed}
                    </div>
                }
                .into_any()
            }
        }
    }
}

/// Optimistic: the hold shows at once; the hub's answer keeps it or rolls it back with a reason.
fn reserve_now(cx: Ctx, key: PositionKey) {
    let Some(hub) = cx.hub() else { return };
    if cx.holds.with_untracked(|h| h.get(&key).is_some_and(Hold::is_active)) {
        return;
    }
    let seen_version = cx.position(&key).map(|p| p.version).unwrap_or(0);
    let qty = 1;
    cx.set_hold(&key, Hold::Pending { qty, seen_version });
    let idempotency_key = dom::random_key();
    leptos::task::spawn_local(async move {
        let answer = reserve::reserve(&hub, &key, qty, &idempotency_key).await;
        let locale = cx.locale.get_untracked();
        let mut code = "reservation_failed".to_string();
        let failure = match answer {
            Answer::Granted(v) => {
                let expires_at = v.expires_at.as_deref().map(js_sys::Date::parse).filter(|t| t.is_finite()).unwrap_or(f64::INFINITY);
                let stored = StoredHold { id: v.id.clone(), token: v.token.clone().unwrap_or_default(), qty: v.qty, expires_at };
                reserve::save(&hub, &key, &stored);
                cx.set_hold(&key, Hold::Held { id: stored.id.clone(), token: stored.token, qty: v.qty, expires_at, seen_version });
                cx.emit(
                    "reserved",
                    &HoldDetail { id: &v.id, sku: &v.sku, location: &v.location, qty: v.qty, expires_at: Some(expires_at), reason: None },
                );
                return;
            }
            Answer::SoldOut => {
                code = "insufficient_stock".into();
                Failure::SoldOut
            }
            Answer::Refused { code: c, message } => {
                code = c;
                Failure::Other(message)
            }
            Answer::Unreachable => Failure::Other(locale.unreachable_short().into()),
        };
        let message = locale.failure(&failure, &store_name(key.location.as_str()));
        cx.set_hold(&key, Hold::Failed { reason: failure });
        cx.emit("error", &ErrorDetail { code: &code, message });
    });
}

fn cancel(cx: Ctx, key: PositionKey) {
    let (Some(hub), Hold::Held { id, token, qty, .. }) = (cx.hub(), cx.hold(&key)) else { return };
    leptos::task::spawn_local(async move {
        if reserve::release(&hub, &id, &token).await {
            reserve::forget(&hub, &key);
            cx.set_hold(&key, Hold::None);
            let detail = HoldDetail { id: &id, sku: key.sku.as_str(), location: key.location.as_str(), qty, expires_at: None, reason: Some("cancelled") };
            cx.emit("released", &detail);
        } else {
            let message = cx.locale.get_untracked().unreachable_short().to_string();
            cx.emit("error", &ErrorDetail { code: "release_failed", message });
        }
    });
}

/// After a reload: show stored holds at once, then ask the hub whether each still stands.
fn restore_holds(cx: Ctx, c: &Config) {
    for key in &c.positions {
        let Some(stored) = reserve::load(&c.hub, key) else { continue };
        if stored.expires_at <= dom::now() {
            reserve::forget(&c.hub, key);
            continue;
        }
        cx.set_hold(
            key,
            Hold::Held { id: stored.id.clone(), token: stored.token.clone(), qty: stored.qty, expires_at: stored.expires_at, seen_version: 0 },
        );
        let (hub, key) = (c.hub.clone(), key.clone());
        leptos::task::spawn_local(async move {
            match reserve::status(&hub, &stored.id, &stored.token).await {
                Some(Ok(ReservationStatus::Held | ReservationStatus::Confirmed)) | None => {}
                Some(_) => {
                    reserve::forget(&hub, &key);
                    cx.set_hold(&key, Hold::None);
                }
            }
        });
    }
}

/// Once a second: move the countdowns, and let lapsed holds go.
fn tick(cx: Ctx) {
    let now = dom::now();
    cx.now.set(now);
    let lapsed: Vec<(PositionKey, String, i64)> = cx.holds.with_untracked(|h| {
        h.iter()
            .filter_map(|(k, h)| match h {
                Hold::Held { id, qty, expires_at, .. } if *expires_at <= now => Some((k.clone(), id.clone(), *qty)),
                _ => None,
            })
            .collect()
    });
    let Some(hub) = cx.hub() else { return };
    for (key, id, qty) in lapsed {
        reserve::forget(&hub, &key);
        cx.set_hold(&key, Hold::Failed { reason: Failure::Expired });
        let detail = HoldDetail { id: &id, sku: key.sku.as_str(), location: key.location.as_str(), qty, expires_at: None, reason: Some("expired") };
        cx.emit("released", &detail);
    }
}

/// `shelfcast:change` for every new version of a watched position.
fn announce_changes(cx: Ctx) {
    let last = StoredValue::new_local(Map::<PositionKey, u64>::new());
    Effect::new(move |_| {
        let Ok(c) = cx.config.get() else { return };
        for key in &c.positions {
            let Some(p) = cx.position(key) else { continue };
            let changed = last.try_update_value(|m| m.insert(key.clone(), p.version) != Some(p.version)).unwrap_or(false);
            if changed {
                cx.emit("change", &p);
            }
        }
    });
}

/// What the live region says: each location's status and the shopper's hold, not every count
/// tick, so a screen reader is told what matters.
fn announcement(cx: Ctx) -> String {
    let l = cx.locale.get();
    let Ok(c) = cx.config.get() else { return String::new() };
    let low = c.low_stock;
    let many = c.positions.len() > 1;
    c.positions
        .iter()
        .filter_map(|k| {
            let hold = cx.hold(k);
            let line = match shown(cx.position(k).as_ref(), &hold, Link::Live, low) {
                Shown::Loading => return None,
                Shown::Stock { status: Status::InStock, .. } => l.in_stock(0).split(':').next().unwrap_or_default().trim().to_string(),
                Shown::Stock { status: Status::LowStock, available, .. } => l.low_stock(available),
                Shown::Stock { status: Status::OutOfStock, .. } => l.out_of_stock().to_string(),
            };
            let hold = match hold {
                Hold::Held { qty, .. } | Hold::Pending { qty, .. } => format!(". {}", l.held_short(qty)),
                Hold::Failed { reason } => format!(". {}", l.failure(&reason, &store_name(k.location.as_str()))),
                Hold::None => String::new(),
            };
            Some(if many { format!("{}: {line}{hold}", store_name(k.location.as_str())) } else { format!("{line}{hold}") })
        })
        .collect::<Vec<_>>()
        .join(". ")
}
