//! Webhooks. A commit records the deliveries its changes call for in the same transaction
//! (the outbox: a change acknowledged is a delivery that will be made, also after kill -9);
//! one task per process sends the due ones, signed as Standard Webhooks, and records each try.
//! A failing receiver is tried again with a doubling pause until `webhook::RETRY_FOR` after the
//! change. Which changes call for what is `protocol::webhook`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use shelfcast_protocol::clock::{format_rfc3339, Millis};
use shelfcast_protocol::webhook::{self, position_topics, reservation_topic, wanted, Topic};
use shelfcast_protocol::{PositionKey, Status, Stock};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::engine::Writer;
use crate::store::{Change, Changed, DbResult, DueDelivery, NewDelivery, Reader, Tried, WatchRow, Webhook};
use crate::store::{DELIVERY_DELIVERED, DELIVERY_FAILED, DELIVERY_PENDING};

/// The first pause after a failed try, unless configured.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(5);
/// Each subscription's deliveries are sent by a task of its own, in rounds: up to PER_ROUND due
/// ones taken, IN_FLIGHT at a time, their outcomes recorded in one commit. A slow or hanging
/// receiver (each try may take the full timeout) slows its own rounds, never another's.
const IN_FLIGHT: usize = 8;
const PER_ROUND: i64 = 32;
/// How long a replica keeps a delivery it is trying from the other replicas.
const CLAIM: Millis = 60_000;
/// How long ended deliveries (and fired watches) stay listed, and how often older ones go.
const KEEP: Millis = 7 * 24 * 3_600_000;
const PRUNE_EVERY: Millis = 3_600_000;
/// On a shared ledger, how soon a replica knows of subscriptions made on another.
pub const SHARED_FRESH: Duration = Duration::from_secs(1);

/// The subscriptions the writer matches each commit against, and the sender's cue.
pub struct Hooks {
    list: RwLock<Arc<Vec<Webhook>>>,
    /// Counts commits that recorded deliveries; each subscription's sender watches it.
    wake: tokio::sync::watch::Sender<u64>,
    backoff: AtomicI64,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            list: RwLock::default(),
            wake: tokio::sync::watch::Sender::new(0),
            backoff: AtomicI64::new(DEFAULT_BACKOFF.as_millis() as i64),
        }
    }
}

impl Hooks {
    pub fn current(&self) -> Arc<Vec<Webhook>> {
        self.list.read().expect("webhooks lock").clone()
    }

    /// Reads the subscriptions from the ledger again (after a change here; every second on a
    /// shared ledger, where other replicas change them too).
    pub async fn refresh(&self, reader: &Reader) -> DbResult<()> {
        let list = reader.webhooks().await?;
        *self.list.write().expect("webhooks lock") = Arc::new(list);
        Ok(())
    }

    /// A commit recorded deliveries: send them now rather than at the next look.
    pub fn wake(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn set_backoff(&self, backoff: Duration) {
        self.backoff.store(backoff.as_millis().max(1) as i64, Ordering::Relaxed);
    }

    fn backoff(&self) -> Millis {
        self.backoff.load(Ordering::Relaxed)
    }
}

fn random(bytes: usize) -> Vec<u8> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random number generator");
    buf
}

/// A new subscription's signing secret: `whsec_` and 24 random bytes in base64.
pub fn new_secret() -> String {
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(random(24)))
}

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", hex::encode(random(12)))
}

/// `v1,<base64 HMAC-SHA256>` of `id.timestamp.body` with the secret's key (Standard Webhooks).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

fn body(topic: Topic, now: Millis, data: Value) -> String {
    json!({"type": topic.as_str(), "timestamp": format_rfc3339(now), "data": data}).to_string()
}

/// A delivery of `topic` about `key` for each subscription that wants it; `key` is its lane.
fn deliveries_of(hooks: &[Webhook], topic: Topic, key: &PositionKey, body: impl Fn() -> String) -> Vec<NewDelivery> {
    hooks
        .iter()
        .filter(|h| wanted(&h.topics, &h.locations, topic, key.location.as_str()))
        .map(|h| NewDelivery { webhook: h.id.clone(), msg_id: new_id("msg"), lane: key.to_string(), topic: topic.as_str(), body: body() })
        .collect()
}

/// Whether a watch at `location` has anyone to tell: until then it stays open.
pub fn watched(hooks: &[Webhook], location: &str) -> bool {
    hooks.iter().any(|h| wanted(&h.topics, &h.locations, Topic::WatchTriggered, location))
}

/// The deliveries of one position's change in a commit, and whether it came back in stock.
pub fn for_position(
    hooks: &[Webhook],
    key: &PositionKey,
    before: &Stock,
    after: &Stock,
    low_stock: i64,
    now: Millis,
) -> (Vec<NewDelivery>, bool) {
    let (was, is) = (before.available_recorded(), after.available_recorded());
    let topics = position_topics(was, is, low_stock);
    let mut out = Vec::new();
    for &topic in &topics {
        let data = || {
            let status = Status::of(is, low_stock).as_str();
            body(
                topic,
                now,
                json!({"sku": key.sku.as_str(), "location": key.location.as_str(), "on_hand": after.on_hand,
                       "reserved": after.on_hand - is, "available": is, "status": status, "previous_available": was}),
            )
        };
        out.extend(deliveries_of(hooks, topic, key, data));
    }
    (out, topics.contains(&Topic::BackInStock))
}

/// The deliveries of a reservation's change recorded in a position's history.
pub fn for_reservation(hooks: &[Webhook], change: &Change, now: Millis) -> Vec<NewDelivery> {
    let Changed::Reservation { id, from, to } = &change.what else { return Vec::new() };
    let Some(topic) = reservation_topic(*from, *to) else { return Vec::new() };
    let data = || {
        body(
            topic,
            now,
            json!({"id": id, "sku": change.key.sku.as_str(), "location": change.key.location.as_str(), "qty": change.qty,
                   "status": to.as_str(), "previous_status": from.map(|s| s.as_str())}),
        )
    };
    deliveries_of(hooks, topic, &change.key, data)
}

/// The deliveries of a watch whose position came back.
pub fn for_watch(hooks: &[Webhook], watch: &WatchRow, available: i64, now: Millis) -> Vec<NewDelivery> {
    let data = || {
        body(
            Topic::WatchTriggered,
            now,
            json!({"watch": watch.id, "sku": watch.key.sku.as_str(), "location": watch.key.location.as_str(),
                   "subscriber": watch.subscriber, "available": available}),
        )
    };
    deliveries_of(hooks, Topic::WatchTriggered, &watch.key, data)
}

/// Resolves receivers' host names to public addresses only (unless private ones are allowed):
/// a name that points into the hub's own network is refused at every try, not only when the
/// subscription was made.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.filter(|a| webhook::public_ip(a.ip())).collect();
            if addrs.is_empty() {
                return Err(format!("{} has no public address", name.as_str()).into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether a URL's host, when it is an address, is a public one (a name is checked when it is
/// resolved, by [`PublicOnly`]).
fn public_literal(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(ip) => webhook::public_ip((*ip).into()),
        url::Host::Ipv6(ip) => webhook::public_ip((*ip).into()),
        url::Host::Domain(_) => true,
    }
}

/// Checks a subscription's URL: `http(s)`, with a host, and unless `allow_private`, a host that
/// is not (and does not resolve only to) a loopback, private or link-local address. A name
/// that does not resolve now is accepted: each try checks again.
pub async fn check_url(text: &str, allow_private: bool) -> Result<(), String> {
    if text.len() > webhook::MAX_URL {
        return Err(format!("`url` is at most {} characters", webhook::MAX_URL));
    }
    let url = reqwest::Url::parse(text).map_err(|e| format!("`url` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("`url` is an http:// or https:// URL".into());
    }
    let host = url.host().ok_or("`url` has no host")?;
    if allow_private {
        return Ok(());
    }
    let private = || Err(format!("`{host}` is not a public address; a hub started with --allow-private-webhooks accepts it"));
    if !public_literal(&host) {
        return private();
    }
    match host {
        url::Host::Domain(name) => {
            let port = url.port_or_known_default().unwrap_or(443);
            match tokio::net::lookup_host((name, port)).await {
                Ok(addrs) => {
                    let addrs: Vec<SocketAddr> = addrs.collect();
                    if !addrs.is_empty() && addrs.iter().all(|a| !webhook::public_ip(a.ip())) {
                        private()
                    } else {
                        Ok(())
                    }
                }
                Err(_) => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// Sends due deliveries until `stop`: a sender per subscription (started and ended as
/// subscriptions come and go), ended deliveries pruned, the oldest pending one's age measured.
pub async fn run(
    reader: Reader,
    writer: Writer,
    hooks: Arc<Hooks>,
    metrics: Arc<crate::metrics::Metrics>,
    clock: Clock,
    allow_private: bool,
    stop: CancellationToken,
) {
    let mut client = reqwest::Client::builder()
        .timeout(Duration::from_millis(webhook::TIMEOUT_MS))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Shelfcast-Webhooks/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        client = client.dns_resolver(Arc::new(PublicOnly));
    }
    let client = client.build().expect("an HTTP client");
    let mut senders: HashMap<String, tokio::task::AbortHandle> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut wake = hooks.wake.subscribe();
    let mut pruned: Option<Millis> = None;
    let mut measured: Option<tokio::time::Instant> = None;
    loop {
        let now = clock.now();
        if pruned.is_none_or(|at| now.saturating_sub(at) >= PRUNE_EVERY) {
            writer.prune_deliveries(now.saturating_sub(KEEP));
            pruned = Some(now);
        }
        let current = hooks.current();
        senders.retain(|id, task| {
            let keep = current.iter().any(|w| &w.id == id);
            if !keep {
                task.abort();
            }
            keep
        });
        for w in current.iter() {
            if !senders.contains_key(&w.id) {
                let sender = Sender {
                    webhook: w.id.clone(),
                    reader: reader.clone(),
                    writer: writer.clone(),
                    hooks: hooks.clone(),
                    metrics: metrics.clone(),
                    clock: clock.clone(),
                    client: client.clone(),
                    allow_private,
                };
                senders.insert(w.id.clone(), tasks.spawn(sender.run(stop.clone())));
            }
        }
        while tasks.try_join_next().is_some() {}
        let pause = Duration::from_millis(hooks.backoff().clamp(10, 1_000) as u64);
        // Every pause, not at every commit that wakes this loop.
        if measured.is_none_or(|at| at.elapsed() >= pause) {
            measured = Some(tokio::time::Instant::now());
            match reader.oldest_pending().await {
                Ok(oldest) => metrics.webhook_oldest_pending.set(oldest.map_or(0, |at| (clock.now() - at).max(0) / 1000)),
                Err(error) => tracing::warn!(%error, "the oldest pending webhook delivery cannot be read"),
            }
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep(pause) => {}
            _ = stop.cancelled() => break,
        }
    }
    // A stop does not wait for slow receivers: what was not recorded is tried again after the
    // restart (at least once).
    tasks.abort_all();
}

/// The sender of one subscription's deliveries.
struct Sender {
    webhook: String,
    reader: Reader,
    writer: Writer,
    hooks: Arc<Hooks>,
    metrics: Arc<crate::metrics::Metrics>,
    clock: Clock,
    client: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    async fn run(self, stop: CancellationToken) {
        let mut wake = self.hooks.wake.subscribe();
        loop {
            let now = self.clock.now();
            let due = match self.reader.due_deliveries(now, PER_ROUND, CLAIM, &self.webhook).await {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(%error, webhook = %self.webhook, "webhook deliveries cannot be read; trying again shortly");
                    Vec::new()
                }
            };
            let full = due.len() as i64 == PER_ROUND;
            if !due.is_empty() {
                let backoff = self.hooks.backoff();
                let round = futures_util::stream::iter(due)
                    .map(|d| attempt(&self.client, d, &self.clock, backoff, self.allow_private))
                    .buffer_unordered(IN_FLIGHT);
                let tries: Vec<Tried> = tokio::select! {
                    tries = round.collect() => tries,
                    _ = stop.cancelled() => return,
                };
                for t in &tries {
                    let result = match t.state {
                        DELIVERY_DELIVERED => "delivered",
                        DELIVERY_FAILED => "failed",
                        _ => "retry",
                    };
                    self.metrics.webhook_tries.with_label_values(&[result]).inc();
                }
                if let Err(error) = self.writer.record_tries(tries).await {
                    // Not recorded: tried again, and a receiver may hear one twice (at least once).
                    tracing::warn!(?error, "webhook outcomes not recorded; those deliveries are tried again");
                }
            }
            if full {
                continue;
            }
            let pause = Duration::from_millis(self.hooks.backoff().clamp(10, 1_000) as u64);
            tokio::select! {
                _ = wake.changed() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}

async fn attempt(client: &reqwest::Client, d: DueDelivery, clock: &Clock, backoff: Millis, allow_private: bool) -> Tried {
    let timestamp = clock.now() / 1000;
    let signature = sign(&d.secret, &d.msg_id, timestamp, &d.body);
    let literal_ok = allow_private || reqwest::Url::parse(&d.url).ok().is_none_or(|u| u.host().is_none_or(|h| public_literal(&h)));
    let sent = if literal_ok {
        client
            .post(&d.url)
            .header("content-type", "application/json")
            .header("webhook-id", &d.msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(d.body.clone())
            .send()
            .await
            .map_err(|e| e.to_string())
    } else {
        Err("the receiver's address is not public".to_string())
    };
    let attempts = d.attempts + 1;
    let (status, error) = match &sent {
        Ok(r) if r.status().is_success() => {
            return Tried {
                id: d.id,
                state: DELIVERY_DELIVERED,
                attempts,
                status: Some(r.status().as_u16() as i64),
                error: None,
                next_try: None,
            };
        }
        Ok(r) => (Some(r.status().as_u16() as i64), Some(format!("HTTP {}", r.status().as_u16()))),
        Err(e) => (None, Some(e.clone())),
    };
    let now = clock.now();
    let jitter = f64::from(random(2).iter().fold(0u16, |a, b| a << 8 | u16::from(*b))) / f64::from(u16::MAX);
    let next = now + webhook::retry_delay(attempts.clamp(0, u32::MAX as i64) as u32, backoff, jitter);
    if next - d.created_at > webhook::RETRY_FOR {
        tracing::warn!(delivery = %d.msg_id, attempts, "a webhook delivery failed for good after retrying for its full period");
        return Tried { id: d.id, state: DELIVERY_FAILED, attempts, status, error, next_try: None };
    }
    Tried { id: d.id, state: DELIVERY_PENDING, attempts, status, error, next_try: Some(next) }
}
