//! Activity: events per second by type, the till-to-hub lag, holds per minute and the open
//! streams, over the last five minutes, as charts that update every second. Drawn as SVG with
//! classes (the page's policy allows no inline styles); each chart has a text summary for
//! screen readers.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Deserialize;

use crate::api;
use crate::i18n::T;
use crate::Ctx;

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
struct Second {
    events: [u64; 5],
    holds: u64,
    lagged: u64,
    lag_sum_ms: u64,
    lag_max_ms: u64,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
struct Figures {
    types: Vec<String>,
    seconds: Vec<Second>,
    open_streams: u64,
}

/// The chart's height in its own units; its width is one unit a second (or a sample).
const H: f64 = 100.0;

fn scale(max: f64) -> f64 {
    if max <= 0.0 {
        1.0
    } else {
        max
    }
}

/// Stacked bars of events per second by type.
fn event_bars(seconds: &[Second]) -> Vec<AnyView> {
    let top = scale(seconds.iter().map(|s| s.events.iter().sum::<u64>() as f64).fold(0.0, f64::max));
    let mut bars = Vec::new();
    for (x, s) in seconds.iter().enumerate() {
        let mut y = H;
        for (k, n) in s.events.iter().enumerate().filter(|(_, n)| **n > 0) {
            let h = *n as f64 / top * H;
            y -= h;
            bars.push(view! { <rect class=format!("k{k}") x=x y=y width="1" height=h /> }.into_any());
        }
    }
    bars
}

/// A line through `values` (one a unit, the last at the right edge), scaled to the chart.
fn line(values: &[f64]) -> String {
    let top = scale(values.iter().copied().fold(0.0, f64::max));
    let start = 300usize.saturating_sub(values.len());
    values.iter().enumerate().map(|(i, v)| format!("{},{:.1}", start + i, H - v / top * H)).collect::<Vec<_>>().join(" ")
}

#[component]
pub fn Activity(ctx: Ctx) -> impl IntoView {
    let figures = RwSignal::new(Figures::default());
    let streams = RwSignal::new(Vec::<f64>::new());
    let load = move || {
        spawn_local(async move {
            let Ok(text) = api::get("/console/api/activity").await else { return };
            let Some(f) = api::parse::<Figures>(&text) else { return };
            streams.update(|s| {
                s.push(f.open_streams as f64);
                let extra = s.len().saturating_sub(300);
                s.drain(..extra);
            });
            figures.set(f);
        })
    };
    crate::live::every(Duration::from_secs(1), load);
    let last_minute = move |f: &Figures| {
        f.seconds.iter().rev().take(60).fold([0u64; 5], |mut acc, s| {
            for (a, n) in acc.iter_mut().zip(s.events) {
                *a += n;
            }
            acc
        })
    };
    let lag = move || {
        figures.with(|f| {
            let recent: Vec<&Second> = f.seconds.iter().rev().take(60).collect();
            let (n, sum) = recent.iter().fold((0, 0), |(n, sum), s| (n + s.lagged, sum + s.lag_sum_ms));
            let max = recent.iter().map(|s| s.lag_max_ms).max().unwrap_or(0);
            (sum.checked_div(n).unwrap_or(0), max)
        })
    };
    let holds_per_minute =
        move || figures.with(|f| f.seconds.chunks(60).map(|m| m.iter().map(|s| s.holds).sum::<u64>()).collect::<Vec<_>>());
    view! {
        <section aria-labelledby="activity-title" class="activity">
            <h2 id="activity-title">{move || ctx.t(T::Activity)}</h2>
            <figure>
                <figcaption>{move || ctx.t(T::EventsPerSecond)}</figcaption>
                <svg class="chart" viewBox="0 0 300 100" preserveAspectRatio="none" role="img"
                    aria-label=move || ctx.t(T::EventsPerSecond)>
                    {move || figures.with(|f| event_bars(&f.seconds))}
                </svg>
                <ul class="legend">
                    {move || figures.with(|f| {
                        let totals = last_minute(f);
                        f.types.iter().enumerate().map(|(k, name)| view! {
                            <li><span class=format!("swatch k{k}")></span>{format!("{name}: {} / min", totals.get(k).copied().unwrap_or(0))}</li>
                        }).collect_view()
                    })}
                </ul>
            </figure>
            <figure>
                <figcaption>{move || ctx.t(T::Lag)}</figcaption>
                <svg class="chart" viewBox="0 0 300 100" preserveAspectRatio="none" role="img" aria-label=move || ctx.t(T::Lag)>
                    <polyline class="lag" points=move || figures.with(|f| {
                        line(&f.seconds.iter().map(|s| s.lag_sum_ms.checked_div(s.lagged).unwrap_or(0) as f64).collect::<Vec<_>>())
                    }) />
                </svg>
                <p class="summary lag-summary">{move || { let (avg, max) = lag(); format!("{} {avg} ms · max {max} ms", ctx.t(T::LastMinuteAvg)) }}</p>
            </figure>
            <figure>
                <figcaption>{move || ctx.t(T::HoldsPerMinute)}</figcaption>
                <svg class="chart" viewBox="0 0 5 100" preserveAspectRatio="none" role="img" aria-label=move || ctx.t(T::HoldsPerMinute)>
                    {move || {
                        let per = holds_per_minute();
                        let top = scale(per.iter().copied().max().unwrap_or(0) as f64);
                        per.into_iter().enumerate().map(|(x, n)| {
                            let h = n as f64 / top * H;
                            view! { <rect class="holds" x=x as f64 + 0.1 y=H - h width="0.8" height=h /> }
                        }).collect_view()
                    }}
                </svg>
                <p class="summary holds-summary">{move || holds_per_minute().iter().map(u64::to_string).collect::<Vec<_>>().join(" · ")}</p>
            </figure>
            <figure>
                <figcaption>{move || ctx.t(T::OpenStreams)}</figcaption>
                <svg class="chart" viewBox="0 0 300 100" preserveAspectRatio="none" role="img" aria-label=move || ctx.t(T::OpenStreams)>
                    <polyline class="streams" points=move || streams.with(|s| line(s)) />
                </svg>
                <p class="summary streams-summary">{move || figures.with(|f| f.open_streams.to_string())}</p>
            </figure>
        </section>
    }
}
