//! `shelfcast fanout`: many Server-Sent-Events subscribers of one position, and one writer
//! changing it at a steady pace; measures change → received latency, delivered messages/s and
//! the serving processes' memory per idle connection. The same load against a Shelfcast hub
//! or, for comparison, a Pushpin proxy fed through its HTTP publish API (this command then
//! also serves Pushpin's GRIP origin).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::header;
use axum::response::IntoResponse;
use clap::Args;
use futures_util::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::load::{cpu_seconds, duration, percentile};

#[derive(Args, Debug, Clone)]
pub struct FanoutArgs {
    /// Base URL the subscribers connect to: the hub, or Pushpin's HTTP port.
    #[arg(long)]
    pub target: String,
    /// Device token the writer uses (hub only).
    #[arg(long, default_value = "")]
    pub token: String,
    /// Subscribers, each with its own connection.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Time between two changes.
    #[arg(long, default_value = "10ms", value_parser = duration)]
    pub every: Duration,
    /// How long the writer changes the position once every subscriber is connected.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub duration: Duration,
    /// Processes serving the subscribers, whose resident memory is read before and after the
    /// subscribers connect (comma-separated pids).
    #[arg(long, value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Pushpin instead of a hub: serve the GRIP origin on this address (Pushpin's route points
    /// here) and publish changes to this Pushpin publish URL.
    #[arg(long, requires = "publish")]
    pub origin: Option<SocketAddr>,
    #[arg(long)]
    pub publish: Option<String>,
    /// Over `https://`: subscribers offer only HTTP/2 (ALPN), each on a connection of its own;
    /// without it, only HTTP/1.1.
    #[arg(long)]
    pub http2: bool,
    #[command(flatten)]
    pub trust: crate::client::TrustArgs,
}

const CHANNEL: &str = "SKU-00000@s1";

/// Resident memory of the processes, in bytes.
fn rss(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .sum::<u64>()
        * 1024
}

/// Pushpin's origin: every request becomes a held stream on the position's channel.
async fn grip_origin() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::HeaderName::from_static("grip-hold"), "stream"),
            (header::HeaderName::from_static("grip-channel"), CHANNEL),
        ],
        ": subscribed\n\n",
    )
}

struct Shared {
    /// When change `n` was sent, in microseconds since the start (0: not yet).
    sent: Box<[AtomicU64]>,
    connected: AtomicU64,
    /// When the latest message arrived, in microseconds since the start.
    last_at: AtomicU64,
    retries: AtomicU64,
    received: AtomicU64,
    latencies: Mutex<Vec<u32>>,
}

impl Shared {
    fn new(changes: usize) -> Shared {
        Shared {
            sent: (0..=changes).map(|_| AtomicU64::new(0)).collect(),
            connected: AtomicU64::new(0),
            last_at: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            received: AtomicU64::new(0),
            latencies: Mutex::new(Vec::new()),
        }
    }
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `on_hand` in an SSE data line carries the change's number. Read without allocating:
/// the load generator parses every message of every subscriber.
fn change_number(data: &[u8]) -> Option<usize> {
    const FIELD: &[u8] = b"\"on_hand\":";
    let digits = &data[find(data, FIELD)? + FIELD.len()..];
    let len = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    std::str::from_utf8(&digits[..len]).ok()?.parse().ok()
}

async fn subscribe(
    client: reqwest::Client,
    url: String,
    shared: Arc<Shared>,
    started: Instant,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    // Like a browser's EventSource, a refused connection is tried again (after a pause).
    let mut attempts = 0;
    let response = loop {
        match client.get(&url).header("accept", "text/event-stream").send().await.and_then(|r| r.error_for_status()) {
            Ok(r) => break r,
            Err(e) if attempts >= 50 => return Err(e.into()),
            Err(_) => {
                attempts += 1;
                shared.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    shared.connected.fetch_add(1, Ordering::Relaxed);
    let mut body = response.bytes_stream();
    let mut pending = Vec::new();
    let mut mine = Vec::new();
    loop {
        let chunk = tokio::select! {
            _ = stop.cancelled() => break,
            chunk = body.next() => match chunk {
                Some(chunk) => chunk?,
                None => break,
            },
        };
        pending.extend_from_slice(&chunk);
        while let Some(end) = find(&pending, b"\n\n") {
            let now = started.elapsed().as_micros() as u64;
            for data in pending[..end].split(|&b| b == b'\n').filter_map(|l| l.strip_prefix(b"data:")) {
                let Some(n) = change_number(data) else { continue };
                let sent = shared.sent.get(n).map(|at| at.load(Ordering::Relaxed));
                if let Some(at) = sent.filter(|&at| at > 0) {
                    mine.push(now.saturating_sub(at).min(u32::MAX as u64) as u32);
                    shared.received.fetch_add(1, Ordering::Relaxed);
                    shared.last_at.fetch_max(now, Ordering::Relaxed);
                }
            }
            pending.drain(..end + 2);
            if mine.len() >= 256 {
                shared.latencies.lock().expect("lock").append(&mut mine);
            }
        }
    }
    shared.latencies.lock().expect("lock").append(&mut mine);
    Ok(())
}

/// The runtime the changes are posted from; let go without waiting (a runtime may not be
/// dropped inside another one), however `run` ends.
struct Posting(Option<tokio::runtime::Runtime>);

impl Posting {
    fn spawn<F: std::future::Future<Output = T> + Send + 'static, T: Send + 'static>(&self, f: F) -> tokio::task::JoinHandle<T> {
        self.0.as_ref().expect("the posting runtime").spawn(f)
    }
}

impl Drop for Posting {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

pub async fn run(args: FanoutArgs) -> anyhow::Result<()> {
    let target = args.target.trim_end_matches('/').to_owned();
    let pushpin = args.origin.is_some();
    if let Some(addr) = args.origin {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let app = axum::Router::new().fallback(grip_origin);
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    // Each subscriber is a shopper with a connection of its own. Over HTTPS that is a client
    // each (an HTTP/2 client would carry them all on one connection), sharing one TLS set-up.
    let alpn: &[&[u8]] = if args.http2 { &[b"h2"] } else { &[b"http/1.1"] };
    let tls = crate::client::rustls_config(args.trust.hub_ca.as_deref(), alpn)?;
    let https = target.starts_with("https://");
    let shared_client = crate::client::with_tls(tls.clone()).pool_max_idle_per_host(0).build()?;
    let client_for = |_: usize| -> anyhow::Result<reqwest::Client> {
        Ok(if https { crate::client::with_tls(tls.clone()).build()? } else { shared_client.clone() })
    };
    let writer = crate::client::builder(args.trust.hub_ca.as_deref())?.build()?;
    // The changes are posted from a runtime (and thread) of their own: on the subscribers'
    // runtime a change would wait behind their tasks before it is sent, and that wait would
    // count as the server's latency. Each change's time is taken just before it is sent.
    let posting =
        Posting(Some(tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("fanout-writer").enable_all().build()?));
    let started = Instant::now();
    let changes = (args.duration.as_secs_f64() / args.every.as_secs_f64()).ceil() as usize;
    let shared = Arc::new(Shared::new(changes));
    let write = |n: usize| {
        let (writer, target, token, publish) = (writer.clone(), target.clone(), args.token.clone(), args.publish.clone());
        let shared = shared.clone();
        async move {
            let request = match publish {
                Some(publish) => {
                    let data = json!({"sku": "SKU-00000", "location": "s1", "on_hand": n, "version": n});
                    let content = format!("event: position\ndata: {data}\n\n");
                    let item = json!({"items": [{"channel": CHANNEL, "formats": {"http-stream": {"content": content}}}]});
                    writer.post(publish).json(&item)
                }
                None => {
                    let event = json!([{"id": format!("fanout-{n}"), "type": "count", "sku": "SKU-00000", "location": "s1", "qty": n}]);
                    writer.post(format!("{target}/v1/events")).bearer_auth(token).json(&event)
                }
            };
            if let Some(at) = shared.sent.get(n).filter(|_| n > 0) {
                at.store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
            request.send().await.and_then(|r| r.error_for_status()).map(|_| ())
        }
    };
    posting.spawn(write(0)).await??;
    let before = rss(&args.pids);
    let url = if pushpin { format!("{target}/stream") } else { format!("{target}/v1/stream?positions={CHANNEL}") };
    eprintln!("connecting {} subscribers to {url}", args.subscribers);
    let mut tasks = Vec::with_capacity(args.subscribers);
    let stop = CancellationToken::new();
    for i in 0..args.subscribers {
        tasks.push(tokio::spawn(subscribe(client_for(i)?, url.clone(), shared.clone(), started, stop.clone())));
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let connect_deadline = Instant::now() + Duration::from_secs(60);
    let mut last_report = Instant::now();
    while (shared.connected.load(Ordering::Relaxed) as usize) < args.subscribers && Instant::now() < connect_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if last_report.elapsed() >= Duration::from_secs(1) {
            let retries = shared.retries.load(Ordering::Relaxed);
            eprintln!(
                "  {} of {} connected ({retries} connections refused and tried again)",
                shared.connected.load(Ordering::Relaxed),
                args.subscribers
            );
            last_report = Instant::now();
        }
    }
    let connected = shared.connected.load(Ordering::Relaxed);
    anyhow::ensure!(connected > 0, "no subscriber could connect to {url}");
    if (connected as usize) < args.subscribers {
        // A server that leaves some connections unanswered is measured with the ones it took;
        // the result line and the table say how many that was.
        eprintln!("only {connected} of {} subscribers connected within 60 s; measuring with those", args.subscribers);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss(&args.pids);
    let per_connection = idle.saturating_sub(before) as f64 / connected as f64;
    eprintln!("all connected; serving processes' memory {:.1} MB → {:.1} MB", before as f64 / 1e6, idle as f64 / 1e6);

    shared.received.store(0, Ordering::Relaxed);
    shared.latencies.lock().expect("lock").clear();
    let cpu_before = cpu_seconds();
    let begin = Instant::now();
    let mut tick = tokio::time::interval(args.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Each change is sent on time, whether or not the one before is acknowledged yet.
    let mut writes = Vec::with_capacity(changes);
    for n in 1..=changes {
        tick.tick().await;
        writes.push(posting.spawn(write(n)));
        if n % 100 == 0 {
            eprintln!(
                "  [{:>4.1}s] {n} changes, {} messages received",
                begin.elapsed().as_secs_f64(),
                shared.received.load(Ordering::Relaxed)
            );
        }
    }
    // Delivered throughput: what arrived while the changes were being made, plus one second.
    // A server that queues instead of keeping up delivers the rest later (counted in
    // `received` and in the latencies, not here).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let in_window = shared.received.load(Ordering::Relaxed);
    let window = begin.elapsed().as_secs_f64();
    let mut failed = 0;
    for w in writes {
        if !matches!(w.await, Ok(Ok(()))) {
            failed += 1;
        }
    }
    // Everything sent is delivered (or coalesced) when nothing has arrived for a second.
    let mut seen = shared.received.load(Ordering::Relaxed);
    let mut quiet = Instant::now();
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    while quiet.elapsed() < Duration::from_secs(1) && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = shared.received.load(Ordering::Relaxed);
        if now != seen {
            (seen, quiet) = (now, Instant::now());
        }
    }
    let cpu = 100.0 * (cpu_seconds() - cpu_before) / begin.elapsed().as_secs_f64();
    let first_at = shared.sent.get(1).map_or(0, |at| at.load(Ordering::Relaxed));
    let seconds = shared.last_at.load(Ordering::Relaxed).saturating_sub(first_at) as f64 / 1e6;
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let received = shared.received.load(Ordering::Relaxed);
    let mut all = std::mem::take(&mut *shared.latencies.lock().expect("lock"));
    all.sort_unstable();
    eprintln!("load generator CPU: {cpu:.0}% of one core");
    println!(
        "fanout: {connected} subscribers, {changes} changes ({failed} failed), {received} messages received of {} sent, the last {seconds:.1} s after the first change (drain stopped after 30 s); {:.0} messages/s delivered; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.1} KB per idle connection; load generator CPU {cpu:.0}%",
        changes as u64 * connected,
        in_window as f64 / window,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(0) as f64 / 1000.0,
        per_connection / 1024.0,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::change_number;

    #[test]
    fn the_change_number_is_read_from_on_hand() {
        assert_eq!(change_number(br#"{"sku":"A","location":"s1","on_hand":1234,"reserved":0}"#), Some(1234));
        assert_eq!(change_number(br#"{"sku":"A"}"#), None);
        assert_eq!(change_number(br#"{"on_hand":}"#), None);
    }
}
