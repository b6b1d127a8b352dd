//! Stores: each store's edge node as the hub knows it (online, events pending at the store,
//! last sync, last error), refreshed every two seconds. Served by an edge node, the page shows
//! that node's own link (`GET /v1/sync`).

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;
use shelfcast_protocol::wire::{EdgeState, SyncStatus};

use crate::api::{self, Failure};
use crate::i18n::T;
use crate::Ctx;

#[derive(Deserialize)]
struct Edges {
    edges: Vec<EdgeState>,
}

/// One row of the page.
#[derive(Clone, PartialEq)]
struct Row {
    location: String,
    online: bool,
    pending: u64,
    last_sync_at: Option<String>,
    last_error: Option<String>,
}

async fn load(ctx: Ctx) -> Option<Vec<Row>> {
    match api::get("/v1/edges").await {
        Ok(text) => Some(
            api::parse::<Edges>(&text)?
                .edges
                .into_iter()
                .map(|e| Row {
                    location: e.location,
                    online: e.online,
                    pending: e.report.pending,
                    last_sync_at: e.report.last_sync_at,
                    last_error: e.report.last_error,
                })
                .collect(),
        ),
        // An edge node: its own link to the hub.
        Err(Failure::Refused { status: 404, .. }) => {
            let s = api::parse::<SyncStatus>(&api::get("/v1/sync").await.ok()?)?;
            Some(vec![Row {
                location: ctx.stores().into_iter().next().unwrap_or_default(),
                online: s.online,
                pending: s.pending,
                last_sync_at: s.last_sync_at,
                last_error: s.last_error,
            }])
        }
        Err(_) => None,
    }
}

/// An RFC 3339 time as the browser's local date and time.
fn local(at: &str) -> String {
    let d = js_sys::Date::new(&at.into());
    if d.get_time().is_nan() {
        return at.to_string();
    }
    String::from(d.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
}

#[component]
pub fn Stores(ctx: Ctx) -> impl IntoView {
    let rows = RwSignal::new(None::<Vec<Row>>);
    let refresh = move || {
        spawn_local(async move {
            if let Some(r) = load(ctx).await {
                rows.set(Some(r));
            }
        })
    };
    crate::live::every(Duration::from_secs(2), refresh);
    view! {
        <section aria-labelledby="stores-title">
            <h2 id="stores-title">{move || ctx.t(T::Stores)}</h2>
            <Show when=move || rows.with(|r| r.as_ref().is_some_and(Vec::is_empty))>
                <p class="empty">{move || ctx.t(T::NoEdges)}</p>
            </Show>
            <table class="stores">
                <thead>
                    <tr>
                        <th scope="col">{move || ctx.t(T::Store)}</th>
                        <th scope="col">{move || ctx.t(T::Link)}</th>
                        <th scope="col">{move || ctx.t(T::Pending)}</th>
                        <th scope="col">{move || ctx.t(T::LastSync)}</th>
                        <th scope="col">{move || ctx.t(T::LastError)}</th>
                    </tr>
                </thead>
                <tbody>
                    <For each=move || rows.get().unwrap_or_default() key=|r| (r.location.clone(), r.online, r.pending, r.last_sync_at.clone(), r.last_error.clone()) let:r>
                        <tr class="store" data-location=r.location.clone()>
                            <th scope="row">{r.location.clone()}</th>
                            <td class=if r.online { "state up" } else { "state down" }>
                                {move || if r.online { ctx.t(T::Online) } else { ctx.t(T::Offline) }}
                            </td>
                            <td class="pending">{r.pending}</td>
                            <td>{r.last_sync_at.as_deref().map(local).unwrap_or_else(|| "–".into())}</td>
                            <td class="last-error">{r.last_error.clone().unwrap_or_default()}</td>
                        </tr>
                    </For>
                </tbody>
            </table>
        </section>
    }
}
