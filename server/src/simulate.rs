//! `shelfcast simulate`: tills, return desks and goods-in scanners sending events to a hub or an
//! edge node at a steady rate, with a progress line every second and a summary at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use rand::Rng;
use serde_json::json;
use shelfcast_protocol::wire::IngestResponse;

use crate::load::{cpu_seconds, duration, percentile};

#[derive(Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Base URL of the hub or edge node; several, comma-separated, spread the devices over
    /// them (hub replicas behind no balancer).
    #[arg(long, env = "SHELFCAST_TARGET", value_delimiter = ',', required = true)]
    pub target: Vec<String>,
    /// Device token allowed to write the simulated locations.
    #[arg(long, env = "SHELFCAST_TOKEN")]
    pub token: String,
    /// Events per second in total; 0 sends as fast as the target acknowledges.
    #[arg(long, env = "SHELFCAST_RATE", default_value_t = 1000)]
    pub rate: u64,
    #[arg(long, env = "SHELFCAST_DURATION", default_value = "60s", value_parser = duration)]
    pub duration: Duration,
    /// How many SKUs the traffic spreads over.
    #[arg(long, env = "SHELFCAST_SKUS", default_value_t = 100)]
    pub skus: u32,
    #[arg(long, env = "SHELFCAST_LOCATIONS", value_delimiter = ',', default_value = "store-1,store-2,store-3")]
    pub locations: Vec<String>,
    /// Events per request (a till sends 1; a store's back office may send 100).
    #[arg(long, env = "SHELFCAST_BATCH", default_value_t = 1)]
    pub batch: usize,
    /// Devices sending at once, each waiting for its answer before the next request.
    #[arg(long, env = "SHELFCAST_CONCURRENCY", default_value_t = 16)]
    pub concurrency: usize,
    /// Stop after about this many events (whole requests), even before `--duration`.
    #[arg(long, env = "SHELFCAST_EVENTS")]
    pub events: Option<u64>,
    /// Shoppers instead of tills: each request reserves 1 unit of one of `--skus` positions at
    /// the first location (contended holds); granted and sold-out answers both count as decided.
    /// All requests come from one address, so a hub's `--reservation-rate` (20/s by default)
    /// refuses most of them (429, reported): start the hub with `--reservation-rate 0` to
    /// measure the hub.
    #[arg(long, env = "SHELFCAST_RESERVE")]
    pub reserve: bool,
    /// The peer for comparison: `--target` is a NATS server (`nats://…`) with JetStream, and each
    /// event is published to the file-backed stream `SHELFCAST_BENCH` with its id as
    /// `Nats-Msg-Id` (deduplicated); a request's events are all published, then every ack awaited.
    #[arg(long, env = "SHELFCAST_JETSTREAM", conflicts_with = "reserve")]
    pub jetstream: bool,
    #[command(flatten)]
    pub trust: crate::client::TrustArgs,
}

/// Where the events go.
#[derive(Clone)]
enum Sink {
    /// The endpoint at each target; device `w` sends to `urls[w % len]`.
    Hub {
        client: reqwest::Client,
        urls: Vec<String>,
    },
    JetStream(async_nats::jetstream::Context),
}

impl Sink {
    async fn connect(args: &SimulateArgs) -> anyhow::Result<(Sink, String)> {
        if !args.jetstream {
            let path = if args.reserve { "/v1/reservations" } else { "/v1/events" };
            let urls: Vec<String> = args.target.iter().map(|t| format!("{}{path}", t.trim_end_matches('/'))).collect();
            let client = crate::client::builder(args.trust.hub_ca.as_deref())?.pool_max_idle_per_host(args.concurrency).build()?;
            let shown = urls.join(", ");
            return Ok((Sink::Hub { client, urls }, shown));
        }
        // Every device may have a whole request's events awaiting their acks at once.
        let js = async_nats::jetstream::ContextBuilder::new()
            .max_ack_inflight(args.concurrency * args.batch + 1024)
            .build(async_nats::connect(&args.target[0]).await?);
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: "SHELFCAST_BENCH".into(),
            subjects: vec!["shelfcast.events.>".into()],
            storage: async_nats::jetstream::stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("creating the JetStream stream: {e}"))?;
        Ok((Sink::JetStream(js), format!("JetStream at {}", args.target[0])))
    }
}

/// What a run achieved.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub requests: u64,
    pub failed_requests: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Reservation requests refused for the client address's rate (429), within `failed_requests`.
    pub rate_limited: u64,
    pub seconds: f64,
    pub events_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// CPU the load generator itself used, in percent of one core.
    pub cpu_percent: f64,
    /// With `--reserve`: seconds from the start to the last hold granted, once a request was
    /// answered sold out (the stock ran out); `None` while it lasted.
    pub sold_out_after: Option<f64>,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    failed: AtomicU64,
    applied: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    /// Reservation requests the target refused for this address's rate (429).
    rate_limited: AtomicU64,
    /// Microseconds from the start to the last hold granted.
    last_grant: AtomicU64,
    /// Acknowledgement latencies, in microseconds, of the current second and of the whole run.
    window: Mutex<Vec<u32>>,
    all: Mutex<Vec<u32>>,
}

fn one_event(rng: &mut impl Rng, id: String, args: &SimulateArgs) -> serde_json::Value {
    let sku = format!("SKU-{:05}", rng.random_range(0..args.skus.max(1)));
    let location = &args.locations[rng.random_range(0..args.locations.len())];
    let (kind, qty) = match rng.random_range(0..10) {
        0..=6 => ("sale", rng.random_range(1..=3)),
        7 => ("return", 1),
        _ => ("receipt", rng.random_range(5..=20)),
    };
    json!({"id": id, "type": kind, "sku": sku, "location": location, "qty": qty})
}

/// Publishes one request's events to JetStream, then awaits every ack: (stored, duplicates).
async fn publish(js: &async_nats::jetstream::Context, events: &[serde_json::Value]) -> anyhow::Result<(u64, u64)> {
    let mut acks = Vec::with_capacity(events.len());
    for e in events {
        let id = e["id"].as_str().unwrap_or_default().to_owned();
        let subject = format!("shelfcast.events.{}", e["location"].as_str().unwrap_or("unknown"));
        let message = async_nats::jetstream::message::PublishMessage::build().payload(serde_json::to_vec(e)?.into()).message_id(id);
        acks.push(js.send_publish(subject, message).await?);
    }
    let mut counts = (0, 0);
    for ack in acks {
        if ack.await?.duplicate {
            counts.1 += 1;
        } else {
            counts.0 += 1;
        }
    }
    Ok(counts)
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<Summary> {
    anyhow::ensure!(!args.locations.is_empty(), "give at least one location");
    anyhow::ensure!(args.batch >= 1 && args.batch <= 10_000, "--batch must be from 1 to 10000");
    anyhow::ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    let (sink, url) = Sink::connect(&args).await?;
    let cpu_before = cpu_seconds();
    let counters = Arc::new(Counters::default());
    let mut run_id = [0u8; 4];
    getrandom::fill(&mut run_id)?;
    let run_id = hex::encode(run_id);
    let started = Instant::now();
    let deadline = started + args.duration;
    eprintln!(
        "simulating {} events/s for {:?} against {url} ({} devices, {} events per request)",
        if args.rate == 0 { "max".to_string() } else { args.rate.to_string() },
        args.duration,
        args.concurrency,
        args.batch
    );

    let mut workers = Vec::new();
    for w in 0..args.concurrency {
        let (sink, args, counters, run_id) = (sink.clone(), args.clone(), counters.clone(), run_id.clone());
        workers.push(tokio::spawn(async move {
            let per_worker = args.rate as f64 / args.concurrency as f64;
            let mut pace = (args.rate > 0).then(|| {
                let mut i = tokio::time::interval(Duration::from_secs_f64(args.batch as f64 / per_worker));
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                i
            });
            let mut seq = 0u64;
            let quota = args.events.map(|n| n.div_ceil(args.concurrency as u64));
            while Instant::now() < deadline && quota.is_none_or(|q| seq < q) {
                if let Some(p) = pace.as_mut() {
                    p.tick().await;
                }
                let body: Vec<_> = {
                    let mut rng = rand::rng();
                    (0..args.batch)
                        .map(|_| {
                            seq += 1;
                            one_event(&mut rng, format!("sim-{run_id}-{w}-{seq}"), &args)
                        })
                        .collect()
                };
                let sent = Instant::now();
                let (client, url) = match &sink {
                    Sink::Hub { client, urls } => (client, &urls[w % urls.len()]),
                    Sink::JetStream(js) => {
                        let acked = publish(js, &body).await;
                        let micros = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                        counters.requests.fetch_add(1, Ordering::Relaxed);
                        match acked {
                            Ok((fresh, dup)) => {
                                counters.applied.fetch_add(fresh, Ordering::Relaxed);
                                counters.duplicates.fetch_add(dup, Ordering::Relaxed);
                                counters.window.lock().expect("lock").push(micros);
                            }
                            Err(e) => {
                                counters.failed.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(error = %e, "publish failed");
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                        continue;
                    }
                };
                if args.reserve {
                    let sku = format!("SKU-{:05}", rand::rng().random_range(0..args.skus.max(1)));
                    let hold = json!({"sku": sku, "location": args.locations[0], "qty": 1, "key": format!("sim-{run_id}-{w}-{seq:012}")});
                    let res = client.post(url.as_str()).json(&hold).send().await;
                    let micros = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    counters.requests.fetch_add(1, Ordering::Relaxed);
                    let decided = match res.map(|r| r.status().as_u16()) {
                        Ok(201) => {
                            counters.last_grant.fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                            &counters.applied
                        }
                        Ok(409) => &counters.rejected,
                        Ok(429) => {
                            counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                            &counters.failed
                        }
                        _ => &counters.failed,
                    };
                    decided.fetch_add(1, Ordering::Relaxed);
                    counters.window.lock().expect("lock").push(micros);
                    continue;
                }
                let res = client.post(url.as_str()).bearer_auth(&args.token).json(&body).send().await;
                let micros = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                counters.requests.fetch_add(1, Ordering::Relaxed);
                match res {
                    Ok(r) if r.status().is_success() => match r.json::<IngestResponse>().await {
                        Ok(ack) => {
                            counters.applied.fetch_add(ack.applied as u64, Ordering::Relaxed);
                            counters.duplicates.fetch_add(ack.duplicates as u64, Ordering::Relaxed);
                            counters.rejected.fetch_add(ack.rejected as u64, Ordering::Relaxed);
                            counters.window.lock().expect("lock").push(micros);
                        }
                        Err(_) => drop(counters.failed.fetch_add(1, Ordering::Relaxed)),
                    },
                    Ok(r) => {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(status = %r.status(), "request refused");
                    }
                    Err(e) => {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "request failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }

    let progress = {
        let counters = counters.clone();
        let args = args.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let mut last = 0;
            loop {
                tick.tick().await;
                let mut window = std::mem::take(&mut *counters.window.lock().expect("lock"));
                window.sort_unstable();
                let mut acked = counters.applied.load(Ordering::Relaxed) + counters.duplicates.load(Ordering::Relaxed);
                if args.reserve {
                    acked += counters.rejected.load(Ordering::Relaxed);
                }
                eprintln!(
                    "[{:>4.0}s] {acked} events acknowledged, {}/s, p99 {:.1} ms, {} rejected, {} failed requests",
                    started.elapsed().as_secs_f64(),
                    acked - last,
                    percentile(&window, 0.99),
                    counters.rejected.load(Ordering::Relaxed),
                    counters.failed.load(Ordering::Relaxed),
                );
                last = acked;
                counters.all.lock().expect("lock").extend(window);
            }
        })
    };
    // A target that stops answering must not hang the run.
    let overtime = deadline + Duration::from_secs(60);
    for w in workers {
        tokio::time::timeout_at(overtime.into(), w).await.map_err(|_| anyhow::anyhow!("the target stopped answering"))??;
    }
    progress.abort();
    let seconds = started.elapsed().as_secs_f64();
    let cpu_percent = 100.0 * (cpu_seconds() - cpu_before) / seconds;
    let mut all = std::mem::take(&mut *counters.all.lock().expect("lock"));
    all.extend(counters.window.lock().expect("lock").drain(..));
    all.sort_unstable();
    let applied = counters.applied.load(Ordering::Relaxed);
    let duplicates = counters.duplicates.load(Ordering::Relaxed);
    let s = Summary {
        requests: counters.requests.load(Ordering::Relaxed),
        failed_requests: counters.failed.load(Ordering::Relaxed),
        applied,
        duplicates,
        rejected: counters.rejected.load(Ordering::Relaxed),
        rate_limited: counters.rate_limited.load(Ordering::Relaxed),
        seconds,
        events_per_second: (applied + duplicates + if args.reserve { counters.rejected.load(Ordering::Relaxed) } else { 0 }) as f64
            / seconds,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
        cpu_percent,
        sold_out_after: (args.reserve && counters.rejected.load(Ordering::Relaxed) > 0)
            .then(|| counters.last_grant.load(Ordering::Relaxed) as f64 / 1e6),
    };
    eprintln!(
        "load generator CPU: {cpu_percent:.0}% of one core (the machine has {} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if args.reserve {
        println!(
            "simulated {:.1}s: {} reservation requests ({} failed), {} granted, {} sold out; {:.0} reservations/s decided; latency p50 {:.2} ms, p99 {:.2} ms",
            s.seconds, s.requests, s.failed_requests, s.applied, s.rejected, s.events_per_second, s.p50_ms, s.p99_ms
        );
        if let Some(t) = s.sold_out_after {
            println!("sold out {t:.3}s after the start (the last hold granted)");
        }
        if s.rate_limited > 0 {
            println!(
                "{} of the failed requests were refused for this address's rate (429): the run measured the hub's \
                 --reservation-rate, not its capacity; start the hub with --reservation-rate 0 to measure that",
                s.rate_limited
            );
        }
        return Ok(s);
    }
    println!(
        "simulated {:.1}s: {} requests ({} failed), {} applied, {} duplicates, {} rejected; {:.0} events/s acknowledged; ack latency p50 {:.2} ms, p99 {:.2} ms",
        s.seconds, s.requests, s.failed_requests, s.applied, s.duplicates, s.rejected, s.events_per_second, s.p50_ms, s.p99_ms
    );
    Ok(s)
}
