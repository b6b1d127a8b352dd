//! The Shelfcast console: the store staff's pickup desk and the merchant's view, a Leptos app
//! served at `/console/` by the hub and by every edge node.
//!
//! - [`api`]: calls to the hub that served the page, with the session cookie.
//! - [`i18n`]: words in en, de, fr.
//! - `live`: Server-Sent Events for the live pages.
//! - `desk`, `stock`, `stores`, `activity`: the pages.

mod activity;
pub mod api;
mod desk;
mod history;
pub mod i18n;
mod live;
mod stock;
mod stores;

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::prelude::*;

use api::Me;
use i18n::{t, Lang, T};

#[wasm_bindgen(start)]
pub fn start() {
    leptos::mount::mount_to_body(App);
}

/// The console's pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Desk,
    Stock,
    Oversold,
    Stores,
    Activity,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn remembered(key: &str) -> Option<String> {
    storage()?.get_item(key).ok()?
}

fn remember(key: &str, value: &str) {
    if let Some(s) = storage() {
        let _ = s.set_item(key, value);
    }
}

fn initial_lang() -> Lang {
    let tag = remembered("shelfcast-console-lang").or_else(|| web_sys::window()?.navigator().language()).unwrap_or_default();
    Lang::from_tag(&tag)
}

/// What every page is given: the language, who is signed in and the store they work at.
#[derive(Clone, Copy)]
pub struct Ctx {
    pub lang: RwSignal<Lang>,
    pub store: RwSignal<String>,
    pub me: StoredValue<Me>,
    /// A sentence for the polite live region (what an action did).
    pub said: RwSignal<String>,
}

impl Ctx {
    pub fn t(&self, text: T) -> &'static str {
        t(self.lang.get(), text)
    }

    /// The stores this session may see (the one picked, for the admin token).
    pub fn stores(&self) -> Vec<String> {
        self.me.with_value(|m| m.locations.clone()).unwrap_or_else(|| vec![self.store.get()])
    }
}

#[component]
fn App() -> impl IntoView {
    let lang = RwSignal::new(initial_lang());
    // None: asking the hub whether this browser is signed in.
    let me = RwSignal::new(None::<Option<Me>>);
    spawn_local(async move { me.set(Some(api::whoami().await)) });
    Effect::new(move |_| {
        let code = lang.get().code();
        if let Some(root) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element()) {
            let _ = root.set_attribute("lang", code);
        }
    });
    view! {
        {move || match me.get() {
            None => view! { <p class="wait" aria-busy="true">"…"</p> }.into_any(),
            Some(None) => view! { <SignIn lang=lang me=me /> }.into_any(),
            Some(Some(who)) => view! { <Console lang=lang who=who me=me /> }.into_any(),
        }}
    }
}

#[component]
fn LangPicker(lang: RwSignal<Lang>) -> impl IntoView {
    let pick = move |ev: leptos::ev::Event| {
        let chosen = Lang::from_tag(&event_target_value(&ev));
        remember("shelfcast-console-lang", chosen.code());
        lang.set(chosen);
    };
    view! {
        <label class="lang">
            {move || t(lang.get(), T::Language)}
            <select on:change=pick prop:value=move || lang.get().code()>
                {Lang::ALL.map(|l| view! { <option value=l.code()>{l.name()}</option> }).to_vec()}
            </select>
        </label>
    }
}

#[component]
fn SignIn(lang: RwSignal<Lang>, me: RwSignal<Option<Option<Me>>>) -> impl IntoView {
    let token = RwSignal::new(String::new());
    let error = RwSignal::new(None::<T>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        let typed = token.get_untracked();
        spawn_local(async move {
            match api::sign_in(&typed).await {
                Ok(who) => {
                    token.set(String::new());
                    me.set(Some(Some(who)));
                }
                Err(api::Failure::Refused { status: 401, .. }) => error.set(Some(T::WrongToken)),
                Err(_) => error.set(Some(T::Unreachable)),
            }
            busy.set(false);
        });
    };
    view! {
        <main class="signin">
            <h1>{move || t(lang.get(), T::Title)}</h1>
            <form on:submit=submit>
                <label for="token">{move || t(lang.get(), T::Token)}</label>
                <input id="token" name="token" type="password" autocomplete="current-password" required
                    prop:value=move || token.get() on:input=move |ev| token.set(event_target_value(&ev)) />
                <button type="submit" disabled=move || busy.get()>{move || t(lang.get(), T::SignIn)}</button>
                <p class="error" role="alert">{move || error.get().map(|e| t(lang.get(), e))}</p>
            </form>
            <LangPicker lang=lang />
        </main>
    }
}

#[component]
fn Console(lang: RwSignal<Lang>, who: Me, me: RwSignal<Option<Option<Me>>>) -> impl IntoView {
    let first =
        who.locations.as_ref().and_then(|ls| ls.first().cloned()).or_else(|| remembered("shelfcast-console-store")).unwrap_or_default();
    let ctx = Ctx { lang, store: RwSignal::new(first), me: StoredValue::new(who.clone()), said: RwSignal::new(String::new()) };
    let page = RwSignal::new(Page::Desk);
    let out = move |_| {
        spawn_local(async move {
            api::sign_out().await;
            me.set(Some(None));
        })
    };
    let tab = move |p: Page, label: T| {
        view! {
            <button type="button" class="tab" aria-current=move || (page.get() == p).then_some("page")
                on:click=move |_| page.set(p)>{move || ctx.t(label)}</button>
        }
    };
    let store_picker = match who.locations.clone() {
        Some(ls) => view! {
            <label>
                {move || ctx.t(T::Store)}
                <select on:change=move |ev| ctx.store.set(event_target_value(&ev)) prop:value=move || ctx.store.get()>
                    {ls.into_iter().map(|l| view! { <option value=l.clone()>{l.clone()}</option> }).collect_view()}
                </select>
            </label>
        }
        .into_any(),
        None => view! {
            <label>
                {move || ctx.t(T::Store)}
                <input type="text" name="store" prop:value=move || ctx.store.get() on:change=move |ev| {
                    let s = event_target_value(&ev);
                    remember("shelfcast-console-store", &s);
                    ctx.store.set(s);
                } />
            </label>
        }
        .into_any(),
    };
    view! {
        <header>
            <h1>{move || ctx.t(T::Title)}</h1>
            <nav aria-label=move || ctx.t(T::Title)>
                {tab(Page::Desk, T::Desk)}
                {tab(Page::Stock, T::Stock)}
                {tab(Page::Oversold, T::Oversold)}
                {tab(Page::Stores, T::Stores)}
                {tab(Page::Activity, T::Activity)}
            </nav>
            <div class="tools">
                {store_picker}
                <LangPicker lang=lang />
                <button type="button" on:click=out>{move || ctx.t(T::SignOut)}</button>
            </div>
        </header>
        <p class="said" role="status" aria-live="polite">{move || ctx.said.get()}</p>
        <main>
            {move || match page.get() {
                Page::Desk => view! { <desk::Desk ctx=ctx /> }.into_any(),
                Page::Stock => view! { <stock::Stock ctx=ctx /> }.into_any(),
                Page::Oversold => view! { <stock::Oversold ctx=ctx /> }.into_any(),
                Page::Stores => view! { <stores::Stores ctx=ctx /> }.into_any(),
                Page::Activity => view! { <activity::Activity ctx=ctx /> }.into_any(),
            }}
        </main>
    }
}
