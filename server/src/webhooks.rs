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
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::engine::Writer;
use crate::store::{Change, Changed, DbResult, DueDelivery, NewDelivery, Reader, Tried, WatchRow, Webhook};
use crate::store::{DELIVERY_DELIVERED, DELIVERY_FAILED, DELIVERY_PENDING};

/// The first pause after a failed try, unless configured.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(5);
/// Deliveries being tried at once, and at most this many of them to one subscription: a slow
/// or hanging receiver (each try may take the full timeout) holds half the sender, never all of it.
const IN_FLIGHT: usize = 8;
const PER_RECEIVER: usize = 4;
/// How often, at most, the age of the oldest pending delivery is read for the metrics while
/// tries are under way.
const OLDEST_EVERY: Duration = Duration::from_secs(1);
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
    wake: Notify,
    backoff: AtomicI64,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks { list: RwLock::default(), wake: Notify::new(), backoff: AtomicI64::new(DEFAULT_BACKOFF.as_millis() as i64) }
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
        self.wake.notify_one();
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

/// Sends due deliveries until `stop`; each try's outcome is recorded through the writer.
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
    let mut pruned: Option<Millis> = None;
    let mut measured: Option<tokio::time::Instant> = None;
    // Tries under way, and the subscription of each delivery among them until its outcome is
    // recorded (on SQLite it stays due until then, so it must not be taken again).
    let mut flying = futures_util::stream::FuturesUnordered::new();
    let mut trying: HashMap<i64, String> = HashMap::new();
    loop {
        let now = clock.now();
        if pruned.is_none_or(|at| now.saturating_sub(at) >= PRUNE_EVERY) {
            writer.prune_deliveries(now.saturating_sub(KEEP));
            pruned = Some(now);
        }
        // Fill the free places. Each try is recorded as soon as it ends, so a lane's next
        // delivery (and other receivers' deliveries) never waits for a slow receiver's answer.
        let mut more = false;
        let free = IN_FLIGHT - trying.len();
        if free > 0 {
            let mut per: HashMap<&str, usize> = HashMap::new();
            for w in trying.values() {
                *per.entry(w.as_str()).or_default() += 1;
            }
            let skip: Vec<String> = per.iter().filter(|(_, n)| **n >= PER_RECEIVER).map(|(w, _)| w.to_string()).collect();
            // On SQLite the deliveries being tried are still due: asked for too, then passed over.
            let limit = (free + trying.len()) as i64;
            match reader.due_deliveries(now, limit, CLAIM, skip).await {
                Ok(due) => {
                    more = due.len() as i64 == limit;
                    let backoff = hooks.backoff();
                    let mut started: Vec<(i64, String)> = Vec::new();
                    let mut passed = Vec::new();
                    for d in due {
                        if trying.contains_key(&d.id) || started.iter().any(|(id, _)| *id == d.id) {
                            continue;
                        }
                        let busy = trying.values().chain(started.iter().map(|(_, w)| w)).filter(|w| **w == d.webhook).count();
                        if trying.len() + started.len() >= IN_FLIGHT || busy >= PER_RECEIVER {
                            passed.push(d.id);
                            continue;
                        }
                        started.push((d.id, d.webhook.clone()));
                        let client = client.clone();
                        let clock = clock.clone();
                        flying.push(async move { attempt(&client, d, &clock, backoff, allow_private).await });
                    }
                    trying.extend(started);
                    if !passed.is_empty() {
                        if let Err(error) = reader.unclaim(passed, now).await {
                            tracing::warn!(%error, "webhook deliveries not given back; they are tried once their claim ends");
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "webhook deliveries cannot be read; trying again shortly"),
            }
        }
        // Read when idle, and at most once a second while tries are under way.
        if !more && (trying.is_empty() || measured.is_none_or(|at| at.elapsed() >= OLDEST_EVERY)) {
            measured = Some(tokio::time::Instant::now());
            match reader.oldest_pending().await {
                Ok(oldest) => metrics.webhook_oldest_pending.set(oldest.map_or(0, |at| (clock.now() - at).max(0) / 1000)),
                Err(error) => tracing::warn!(%error, "the oldest pending webhook delivery cannot be read"),
            }
        }
        let pause = Duration::from_millis(hooks.backoff().clamp(10, 1_000) as u64);
        // A stop does not wait for slow receivers: what was not recorded is tried again after
        // the restart (at least once).
        tokio::select! {
            Some(first) = flying.next(), if !flying.is_empty() => {
                let mut tries = vec![first];
                while let Some(Some(t)) = futures_util::FutureExt::now_or_never(flying.next()) {
                    tries.push(t);
                }
                for t in &tries {
                    let result = match t.state {
                        DELIVERY_DELIVERED => "delivered",
                        DELIVERY_FAILED => "failed",
                        _ => "retry",
                    };
                    metrics.webhook_tries.with_label_values(&[result]).inc();
                }
                let ids: Vec<i64> = tries.iter().map(|t| t.id).collect();
                if let Err(error) = writer.record_tries(tries).await {
                    // Not recorded: tried again, and a receiver may hear one twice (at least once).
                    tracing::warn!(?error, "webhook outcomes not recorded; those deliveries are tried again");
                }
                for id in ids {
                    trying.remove(&id);
                }
            }
            _ = hooks.wake.notified() => {}
            _ = tokio::time::sleep(pause), if !(more && trying.len() < IN_FLIGHT) => {}
            _ = std::future::ready(()), if more && trying.len() < IN_FLIGHT => {}
            _ = stop.cancelled() => return,
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
