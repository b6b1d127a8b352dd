//! The pickup desk: the store's open reservations, live and oldest first, with the time each
//! hold has left; hand over (fulfil) or release with a reason.

use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;
use serde::Deserialize;
use shelfcast_protocol::wire::ReservationView;
use shelfcast_protocol::ReservationStatus;

use crate::api::{self, json, Failure};
use crate::i18n::{minutes, T};
use crate::live::{listen, now};
use crate::Ctx;

#[derive(Deserialize)]
struct DeskList {
    reservations: Vec<ReservationView>,
}

/// A reservation as the desk shows it: the hub's answer and when it arrived (the countdown
/// runs from there on this page's monotonic clock).
#[derive(Clone)]
struct Row {
    r: ReservationView,
    received: f64,
}

const REASONS: [(&str, T); 4] =
    [("not_found", T::NotFound), ("damaged", T::Damaged), ("customer_cancelled", T::CustomerCancelled), ("other", T::Other)];

fn beep() {
    let Ok(ctx) = web_sys::AudioContext::new() else { return };
    let Ok(osc) = ctx.create_oscillator() else { return };
    osc.frequency().set_value(880.0);
    if osc.connect_with_audio_node(&ctx.destination()).is_ok() {
        let _ = osc.start();
        let _ = osc.stop_with_when(ctx.current_time() + 0.15);
    }
}

fn set_title(waiting: usize, base: &str) {
    if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
        doc.set_title(&if waiting > 0 { format!("({waiting}) {base}") } else { base.to_string() });
    }
}

/// Reports an action's outcome in the live region.
pub fn report(ctx: Ctx, done: T, outcome: Result<String, Failure>) {
    ctx.said.set(match outcome {
        Ok(_) => ctx.t(done).to_string(),
        Err(e) => failure_text(ctx, &e),
    });
}

/// What a failed call says to staff: the hub's own message, or that it cannot be reached.
pub fn failure_text(ctx: Ctx, failure: &Failure) -> String {
    match failure {
        Failure::Refused { message, .. } => format!("{} {message}", ctx.t(T::Failed)),
        Failure::Unreachable => ctx.t(T::Unreachable).to_string(),
    }
}

#[component]
pub fn Desk(ctx: Ctx) -> impl IntoView {
    let rows = RwSignal::new(Vec::<Row>::new());
    let live = RwSignal::new(false);
    let clock = RwSignal::new(now());
    let sound = RwSignal::new(crate::remembered("shelfcast-console-sound").as_deref() == Some("on"));
    let seen = StoredValue::new(None::<Vec<String>>);

    // A tick a second for the countdowns.
    crate::live::every(std::time::Duration::from_secs(1), move || clock.set(now()));
    on_cleanup(move || set_title(0, "Shelfcast console"));

    // One stream per store picked; the previous closes when the store changes or the page goes.
    Effect::new(move |previous: Option<SendWrapper<Option<crate::live::Live>>>| {
        drop(previous);
        let store = ctx.store.get();
        rows.set(Vec::new());
        seen.set_value(None);
        let url = format!("/console/api/desk?location={}", api::query(&store));
        SendWrapper::new(listen(
            &url,
            "reservations",
            move |text| {
                let Some(list) = api::parse::<DeskList>(&text) else { return };
                let at = now();
                let ids: Vec<String> = list.reservations.iter().map(|r| r.id.clone()).collect();
                let fresh = seen.with_value(|s| s.as_ref().is_some_and(|old| ids.iter().any(|id| !old.contains(id))));
                if fresh && sound.get_untracked() {
                    beep();
                }
                seen.set_value(Some(ids));
                set_title(list.reservations.len(), ctx.t(T::Title));
                rows.set(list.reservations.into_iter().map(|r| Row { r, received: at }).collect());
            },
            move |up| live.set(up),
        ))
    });

    let toggle_sound = move |ev: leptos::ev::Event| {
        let on = event_target_checked(&ev);
        crate::remember("shelfcast-console-sound", if on { "on" } else { "off" });
        sound.set(on);
    };

    view! {
        <section aria-labelledby="desk-title">
            <div class="bar">
                <h2 id="desk-title">{move || ctx.t(T::Desk)} " · " {move || ctx.store.get()}</h2>
                <span class=move || if live.get() { "link up" } else { "link down" }>
                    {move || if live.get() { ctx.t(T::Live) } else { ctx.t(T::Reconnecting) }}
                </span>
                <label class="check">
                    <input type="checkbox" prop:checked=move || sound.get() on:change=toggle_sound />
                    {move || ctx.t(T::Sound)}
                </label>
            </div>
            <p class="count">{move || format!("{} {}", rows.with(Vec::len), ctx.t(T::Pickups))}</p>
            <Show when=move || rows.with(Vec::is_empty)>
                <p class="empty">{move || ctx.t(T::NoPickups)}</p>
            </Show>
            <ol class="pickups">
                <For each=move || rows.get() key=|row| row.r.id.clone() let:row>
                    <Pickup ctx=ctx row=row clock=clock />
                </For>
            </ol>
        </section>
    }
}

#[component]
fn Pickup(ctx: Ctx, row: Row, clock: RwSignal<f64>) -> impl IntoView {
    let r = row.r.clone();
    let releasing = RwSignal::new(false);
    let reason = RwSignal::new("not_found".to_string());
    let busy = RwSignal::new(false);
    let left = move || match (r.status, row.r.expires_in_ms) {
        (ReservationStatus::Held, Some(ms)) => format!("{} {}", minutes(ms as f64 - (clock.get() - row.received)), ctx.t(T::TimeLeft)),
        _ => ctx.t(T::Confirmed).to_string(),
    };
    let id = r.id.clone();
    let hand_over = move |_| {
        let id = id.clone();
        busy.set(true);
        spawn_local(async move {
            let outcome = api::post(&format!("/v1/reservations/{}/fulfil", api::query(&id)), None).await;
            report(ctx, T::HandedOver, outcome);
            busy.set(false);
        });
    };
    let id = r.id.clone();
    let release = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let id = id.clone();
        let body = json(&[("reason", reason.get_untracked().into())]);
        busy.set(true);
        spawn_local(async move {
            let outcome = api::post(&format!("/v1/reservations/{}/release", api::query(&id)), Some(body)).await;
            report(ctx, T::Released, outcome);
            busy.set(false);
            releasing.set(false);
        });
    };
    let label = format!("{} × {}", r.qty, r.sku);
    view! {
        <li class="pickup" data-id=r.id.clone()>
            <div class="what">
                <strong class="sku">{r.sku.clone()}</strong>
                <span class="qty">{ctx.t(T::Qty)} " " {r.qty}</span>
                <span class="left">{left}</span>
                <code class="id">{r.id.clone()}</code>
            </div>
            <div class="actions">
                <button type="button" class="primary" disabled=move || busy.get() aria-label=format!("{} {label}", ctx.t(T::HandOver))
                    on:click=hand_over>{move || ctx.t(T::HandOver)}</button>
                <button type="button" disabled=move || busy.get() aria-expanded=move || releasing.get().to_string()
                    on:click=move |_| releasing.update(|o| *o = !*o)>{move || ctx.t(T::Release)}</button>
            </div>
            <Show when=move || releasing.get()>
                <form class="release" on:submit=release.clone()>
                    <label>
                        {move || ctx.t(T::Reason)}
                        <select name="reason" on:change=move |ev| reason.set(event_target_value(&ev)) prop:value=move || reason.get()>
                            {REASONS.map(|(code, text)| view! { <option value=code>{move || ctx.t(text)}</option> }).to_vec()}
                        </select>
                    </label>
                    <button type="submit" disabled=move || busy.get()>{move || ctx.t(T::Release)}</button>
                    <button type="button" on:click=move |_| releasing.set(false)>{move || ctx.t(T::Cancel)}</button>
                </form>
            </Show>
        </li>
    }
}
