//! A position's history in stock look-up and oversold: every change, newest first, with the
//! position after it and who made it; newer changes join at the top as the position changes,
//! older ones are paged in on request.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shelfcast_protocol::wire::{HistoryItem, HistoryKind, HistoryPage};
use shelfcast_protocol::{EventKind, ReservationStatus};

use crate::api::{self, Failure};
use crate::i18n::T;
use crate::Ctx;

/// Entries fetched at a time.
const PAGE: u32 = 20;

/// The words for an event type or a reservation's status.
fn event_word(kind: EventKind) -> T {
    match kind {
        EventKind::Sale => T::Sale,
        EventKind::Return => T::Return,
        EventKind::Receipt => T::Receipt,
        EventKind::Adjust => T::Adjust,
        EventKind::Count => T::Count,
    }
}

fn status_word(status: ReservationStatus) -> T {
    match status {
        ReservationStatus::Held => T::Held,
        ReservationStatus::Confirmed => T::Confirmed,
        ReservationStatus::Fulfilled => T::HandedOver,
        ReservationStatus::Released => T::Released,
        ReservationStatus::Expired => T::Expired,
    }
}

/// What an entry says happened, in the console's language.
fn what(ctx: Ctx, item: &HistoryItem) -> String {
    match (item.kind, item.event_type) {
        (HistoryKind::Event, Some(kind)) => ctx.t(event_word(kind)).to_string(),
        _ => {
            let to = item.to.map(|s| ctx.t(status_word(s))).unwrap_or_default();
            match item.from {
                Some(from) => format!("{}: {} → {to}", ctx.t(T::Reservation), ctx.t(status_word(from))),
                None => format!("{}: {to}", ctx.t(T::Reservation)),
            }
        }
    }
}

/// A time of the hub (RFC 3339) as the browser's local date and time.
fn local(ctx: Ctx, rfc3339: &str) -> String {
    let date = js_sys::Date::new(&rfc3339.into());
    String::from(date.to_locale_string(ctx.lang.get().code(), &wasm_bindgen::JsValue::UNDEFINED))
}

/// One entry's identity: the same change is never listed twice.
fn same(a: &HistoryItem, b: &HistoryItem) -> bool {
    a.id == b.id && a.kind == b.kind && a.to == b.to
}

async fn page(sku: &str, location: &str, before: Option<&str>) -> Result<HistoryPage, Failure> {
    let mut path = format!("/v1/positions/{}/{}/history?limit={PAGE}", api::query(sku), api::query(location));
    if let Some(b) = before {
        path = format!("{path}&before={}", api::query(b));
    }
    let text = api::get(&path).await?;
    api::parse(&text).ok_or(Failure::Unreachable)
}

/// The history of `sku` at `location`; reloads its newest page whenever `version` moves.
#[component]
pub fn History(ctx: Ctx, sku: String, location: String, version: Signal<u64>, close: Callback<()>) -> impl IntoView {
    let items = RwSignal::new(Vec::<HistoryItem>::new());
    let next = RwSignal::new(None::<String>);
    let failed = RwSignal::new(None::<String>);
    let (s, l) = (sku.clone(), location.clone());
    Effect::new(move |_| {
        version.track();
        let (sku, location) = (s.clone(), l.clone());
        spawn_local(async move {
            match page(&sku, &location, None).await {
                Ok(p) => {
                    failed.set(None);
                    let first = items.with_untracked(Vec::is_empty);
                    items.update(|list| {
                        let fresh: Vec<HistoryItem> = p.items.into_iter().filter(|i| !list.iter().any(|j| same(i, j))).collect();
                        list.splice(0..0, fresh);
                    });
                    if first {
                        next.set(p.next);
                    }
                }
                Err(e) => failed.set(Some(crate::desk::failure_text(ctx, &e))),
            }
        });
    });
    let (s, l) = (sku.clone(), location.clone());
    let older = move |_| {
        let Some(before) = next.get_untracked() else { return };
        let (sku, location) = (s.clone(), l.clone());
        spawn_local(async move {
            match page(&sku, &location, Some(&before)).await {
                Ok(p) => {
                    items.update(|list| list.extend(p.items));
                    next.set(p.next);
                }
                Err(e) => failed.set(Some(crate::desk::failure_text(ctx, &e))),
            }
        });
    };
    let title = format!("{sku} @ {location}");
    view! {
        <section class="history" aria-labelledby="history-title">
            <h3 id="history-title">{move || ctx.t(T::History)} " " {title.clone()}</h3>
            <button type="button" class="close" on:click=move |_| close.run(())>{move || ctx.t(T::Close)}</button>
            <Show when=move || failed.with(Option::is_some)>
                <p class="error" role="alert">{move || failed.get().unwrap_or_default()}</p>
            </Show>
            <Show when=move || items.with(Vec::is_empty) && failed.with(Option::is_none)>
                <p class="empty">{move || ctx.t(T::NoHistory)}</p>
            </Show>
            <table class="changes">
                <thead>
                    <tr>
                        <th scope="col">{move || ctx.t(T::When)}</th>
                        <th scope="col">{move || ctx.t(T::Change)}</th>
                        <th scope="col">{move || ctx.t(T::Qty)}</th>
                        <th scope="col">{move || ctx.t(T::By)}</th>
                        <th scope="col">{move || ctx.t(T::OnHand)}</th>
                        <th scope="col">{move || ctx.t(T::Reserved)}</th>
                    </tr>
                </thead>
                <tbody>
                    {move || items.get().into_iter().map(|i| {
                        let by = i.by.clone().unwrap_or_else(|| ctx.t(T::Hub).to_string());
                        view! {
                            <tr class="change" data-id=i.id.clone()>
                                <td class="when"><time datetime=i.received_at.clone()>{local(ctx, &i.received_at)}</time></td>
                                <th scope="row" class="what">{what(ctx, &i)}</th>
                                <td class="qty">{i.qty}</td>
                                <td class="by">{by}</td>
                                <td class="on-hand">{i.on_hand}</td>
                                <td class="reserved">{i.reserved}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            <Show when=move || next.with(Option::is_some)>
                <button type="button" class="older" on:click=older.clone()>{move || ctx.t(T::Older)}</button>
            </Show>
        </section>
    }
}
