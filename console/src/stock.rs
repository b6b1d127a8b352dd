//! Stock look-up (one SKU at the staff's stores, live) and the oversold list, each position
//! with the actions staff take on it: count (set on-hand to what is on the shelf) and adjust.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;
use shelfcast_protocol::wire::{IngestResponse, PositionsResponse, ResultStatus};
use shelfcast_protocol::Position;

use crate::api::{self, Failure};
use crate::desk::report;
use crate::history::History;
use crate::i18n::T;
use crate::live::listen;
use crate::Ctx;

/// Records a count (`kind` = `count`: on-hand becomes `qty`) or an adjustment (`adjust`: on-hand
/// changes by `qty`) as an event of the console, with a fresh id.
async fn record(kind: &str, sku: &str, location: &str, qty: i64) -> Result<String, Failure> {
    let event = api::json(&[
        ("id", api::event_id().into()),
        ("type", kind.into()),
        ("sku", sku.into()),
        ("location", location.into()),
        ("qty", (qty as f64).into()),
    ]);
    let text = api::post("/v1/events", Some(format!("[{event}]"))).await?;
    match api::parse::<IngestResponse>(&text).and_then(|r| r.results.into_iter().next()) {
        Some(r) if r.status == ResultStatus::Rejected => {
            Err(Failure::Refused { status: 200, message: r.error.map(|e| e.message).unwrap_or_default() })
        }
        Some(_) => Ok(text),
        None => Err(Failure::Unreachable),
    }
}

/// A position's row: its numbers, the count and adjust forms, and the button that shows its
/// history (`shown`).
#[component]
fn PositionRow(ctx: Ctx, position: Position, shown: RwSignal<Option<(String, String)>>) -> impl IntoView {
    let qty = RwSignal::new(String::new());
    let (sku, location) = (position.sku.to_string(), position.location.to_string());
    let act = move |kind: &'static str, done: T| {
        let (sku, location) = (sku.clone(), location.clone());
        move |_| {
            let Ok(n) = qty.get_untracked().trim().parse::<i64>() else { return };
            let (sku, location) = (sku.clone(), location.clone());
            spawn_local(async move {
                let outcome = record(kind, &sku, &location, n).await;
                if outcome.is_ok() {
                    qty.set(String::new());
                }
                report(ctx, done, outcome);
            });
        }
    };
    let label = format!("{} @ {}", position.sku, position.location);
    let this = (position.sku.to_string(), position.location.to_string());
    let open = {
        let this = this.clone();
        move || shown.with(|s| s.as_ref() == Some(&this))
    };
    let toggle = {
        let open = open.clone();
        move |_| shown.set(if open() { None } else { Some(this.clone()) })
    };
    view! {
        <tr class=format!("position {}", position.status.as_str()) data-location=position.location.to_string()>
            <th scope="row">{position.sku.to_string()} <span class="at">{position.location.to_string()}</span></th>
            <td class="on-hand">{position.on_hand}</td>
            <td class="reserved">{position.reserved}</td>
            <td class="available">{position.available}</td>
            <td class="act">
                <input type="number" inputmode="numeric" class="qty" aria-label=format!("{} {label}", ctx.t(T::Qty))
                    prop:value=move || qty.get() on:input=move |ev| qty.set(event_target_value(&ev)) />
                <button type="button" on:click=act("count", T::Counted)>{move || ctx.t(T::Count)}</button>
                <button type="button" on:click=act("adjust", T::Adjusted)>{move || ctx.t(T::Adjust)}</button>
                <button type="button" class="show-history" aria-controls="history" aria-expanded=move || open().to_string()
                    aria-label=format!("{} {label}", ctx.t(T::History)) on:click=toggle>{move || ctx.t(T::History)}</button>
            </td>
        </tr>
    }
}

#[component]
fn Positions(ctx: Ctx, positions: Signal<Vec<Position>>) -> impl IntoView {
    let shown = RwSignal::new(None::<(String, String)>);
    let history = move || {
        shown.get().map(|(sku, location)| {
            let (s, l) = (sku.clone(), location.clone());
            let version = Signal::derive(move || {
                positions.with(|ps| ps.iter().find(|p| p.sku.as_str() == s && p.location.as_str() == l).map_or(0, |p| p.version))
            });
            view! {
                <div id="history">
                    <History ctx=ctx sku=sku location=location version=version close=Callback::new(move |_| shown.set(None)) />
                </div>
            }
        })
    };
    view! {
        <table class="positions">
            <thead>
                <tr>
                    <th scope="col">{move || ctx.t(T::Sku)}</th>
                    <th scope="col">{move || ctx.t(T::OnHand)}</th>
                    <th scope="col">{move || ctx.t(T::Reserved)}</th>
                    <th scope="col">{move || ctx.t(T::Available)}</th>
                    <th scope="col"></th>
                </tr>
            </thead>
            <tbody>
                <For each=move || positions.get() key=|p| (p.sku.to_string(), p.location.to_string(), p.version) let:p>
                    <PositionRow ctx=ctx position=p shown=shown />
                </For>
            </tbody>
        </table>
        {history}
    }
}

#[component]
pub fn Stock(ctx: Ctx) -> impl IntoView {
    let typed = RwSignal::new(String::new());
    let sku = RwSignal::new(String::new());
    let positions = RwSignal::new(Vec::<Position>::new());
    Effect::new(move |previous: Option<SendWrapper<Option<crate::live::Live>>>| {
        drop(previous);
        let sku = sku.get();
        positions.set(Vec::new());
        if sku.is_empty() {
            return SendWrapper::new(None);
        }
        let stores: Vec<String> = ctx.stores().into_iter().take(50).collect();
        let url = format!("/v1/stream?sku={}&location={}", api::query(&sku), api::query(&stores.join(",")));
        SendWrapper::new(listen(
            &url,
            "position",
            move |text| {
                let Some(p) = api::parse::<Position>(&text) else { return };
                positions.update(|ps| match ps.iter_mut().find(|q| q.location == p.location) {
                    Some(q) => *q = p,
                    None => ps.push(p),
                });
            },
            |_| {},
        ))
    });
    view! {
        <section aria-labelledby="stock-title">
            <h2 id="stock-title">{move || ctx.t(T::Stock)}</h2>
            <form class="lookup" on:submit=move |ev| {
                ev.prevent_default();
                sku.set(typed.get_untracked().trim().to_string());
            }>
                <label>
                    {move || ctx.t(T::Sku)}
                    <input type="text" name="sku" autocomplete="off" prop:value=move || typed.get()
                        on:input=move |ev| typed.set(event_target_value(&ev)) />
                </label>
                <button type="submit">{move || ctx.t(T::Look)}</button>
            </form>
            <Positions ctx=ctx positions=positions.into() />
        </section>
    }
}

#[component]
pub fn Oversold(ctx: Ctx) -> impl IntoView {
    let positions = RwSignal::new(Vec::<Position>::new());
    let load = move || {
        spawn_local(async move {
            if let Ok(text) = api::get("/v1/oversold").await {
                if let Some(r) = api::parse::<PositionsResponse>(&text) {
                    positions.set(r.positions);
                }
            }
        })
    };
    // Refreshed every two seconds while the page is open.
    crate::live::every(Duration::from_secs(2), load);
    view! {
        <section aria-labelledby="oversold-title">
            <h2 id="oversold-title">{move || ctx.t(T::Oversold)}</h2>
            <Show when=move || positions.with(Vec::is_empty)>
                <p class="empty">{move || ctx.t(T::NothingOversold)}</p>
            </Show>
            <Positions ctx=ctx positions=positions.into() />
        </section>
    }
}
