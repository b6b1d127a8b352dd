//! The crash loop: round after round of concurrent ingest and reservations, the hub killed with
//! SIGKILL at a random moment, restarted on the same SQLite file. After every round:
//! - every acknowledged event is in the ledger (sent again, it is a duplicate, never applied);
//! - every acknowledged reservation is there, with its token, and its key still names it;
//! - each position's on-hand equals a recomputation from the event ledger, and its reserved
//!   count equals the open reservations in the ledger: nothing lost, nothing counted twice.
//!   (A change committed just before the kill is kept though its answer never left; the
//!   client's retry with the same id or key then finds it.)
//!
//! `SHELFCAST_CRASH_ROUNDS` sets the number of rounds (5 by default; BENCHMARKS.md records 100).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rand::Rng;
use serde_json::{json, Value};
use shelfcast_protocol::{EventKind, Stock};

const ARGS: [&str; 4] = ["--reservation-rate", "0", "--hold-ttl", "1h"];
const SKUS: [&str; 4] = ["CRASH-A", "CRASH-B", "CRASH-C", "CRASH-D"];
const STORES: [&str; 2] = ["berlin", "hamburg"];

#[derive(Clone, Debug)]
struct Held {
    id: String,
    token: String,
    key: String,
}

#[derive(Default)]
struct Acked {
    events: Vec<Value>,
    reservations: Vec<Held>,
}

fn random_event(round: usize, writer: usize, n: usize, i: usize) -> Value {
    let mut rng = rand::rng();
    let sku = SKUS[rng.random_range(0..SKUS.len())];
    let store = STORES[rng.random_range(0..STORES.len())];
    let (kind, qty) = match rng.random_range(0..20) {
        0 => ("count", rng.random_range(20..60)),
        1 => ("adjust", if rng.random_bool(0.5) { -1 } else { 2 }),
        2..=4 => ("return", 1),
        5..=10 => ("sale", rng.random_range(1..3)),
        _ => ("receipt", rng.random_range(1..4)),
    };
    // Counts only in Hamburg, so Berlin keeps the stock the shoppers reserve.
    let store = if kind == "count" { "hamburg" } else { store };
    ev(&format!("crash:{round}:{writer}:{n}:{i}"), kind, sku, store, qty)
}

async fn load(api: Api, acked: Arc<Mutex<Acked>>, round: usize, writers: usize, reservers: usize) {
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (api, acked) = (api.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                let mut batch: Vec<Value> = (0..20).map(|i| random_event(round, w, n, i)).collect();
                // An event acknowledged earlier comes back, as a till's retry would.
                if let Some(old) = acked.lock().unwrap().events.last().cloned() {
                    batch.push(old);
                }
                let r = api.http.post(api.url("/v1/events")).bearer_auth(TOKEN).json(&batch).send().await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        let body: Value = r.json().await.unwrap_or_default();
                        assert_eq!(body["rejected"], 0, "{body}");
                        acked.lock().unwrap().events.extend(batch);
                    }
                    _ => return,
                }
            }
        }));
    }
    for s in 0..reservers {
        let (api, acked) = (api.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                let key = format!("crash-key-{round:04}-{s:02}-{n:06}");
                let sku = SKUS[n % SKUS.len()];
                let body = json!({"sku": sku, "location": "berlin", "qty": 1, "key": key});
                match api.http.post(api.url("/v1/reservations")).json(&body).send().await {
                    Ok(r) if r.status() == 201 => {
                        let Ok(v) = r.json::<Value>().await else { return };
                        let held = Held { id: v["id"].as_str().unwrap().into(), token: v["token"].as_str().unwrap().into(), key };
                        acked.lock().unwrap().reservations.push(held);
                    }
                    Ok(r) if r.status() == 409 => tokio::time::sleep(Duration::from_millis(5)).await,
                    _ => return,
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

type Ledger = BTreeMap<(String, String), (i64, i64)>;

/// On-hand per position, recomputed from the event ledger in the order it was applied, and the
/// units its open reservations hold (acknowledged or not: a hold committed just before the kill
/// is real even though its answer never left).
fn recompute(data: &std::path::Path) -> Ledger {
    let db = rusqlite::Connection::open_with_flags(data.join("shelfcast.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let distinct: i64 = db.query_row("SELECT count(*) - count(DISTINCT id) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(distinct, 0, "an event id is in the ledger twice");
    let mut stmt = db.prepare("SELECT type, sku, location, qty FROM events ORDER BY seq").unwrap();
    let rows =
        stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))).unwrap();
    let mut stocks: BTreeMap<(String, String), Stock> = BTreeMap::new();
    for row in rows {
        let (kind, sku, location, qty) = row.unwrap();
        // A pickup (fulfil) takes stock out like a sale.
        let kind = EventKind::parse(&kind).unwrap_or(EventKind::Sale);
        stocks.entry((sku, location)).or_default().apply(kind, qty);
    }
    let mut out: Ledger = stocks.into_iter().map(|(k, s)| (k, (s.on_hand, 0))).collect();
    let mut stmt = db.prepare("SELECT sku, location, sum(qty) FROM reservations WHERE status = 'held' GROUP BY sku, location").unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))).unwrap();
    for row in rows {
        let (sku, location, held) = row.unwrap();
        out.entry((sku, location)).or_default().1 = held;
    }
    out
}

async fn verify(hub: &ChildHub, data: &std::path::Path, acked: &Acked, round: usize) {
    let api = hub.client();
    for chunk in acked.events.chunks(5_000) {
        let (status, b) = api.post_events(TOKEN, &Value::Array(chunk.to_vec())).await;
        assert_eq!(status, 200);
        assert_eq!(b["applied"], 0, "round {round}: an acknowledged event was lost (sent again, it applied)");
    }
    for r in &acked.reservations {
        let got = api.http.get(api.url(&format!("/v1/reservations/{}", r.id))).bearer_auth(&r.token).send().await.unwrap();
        assert_eq!(got.status(), 200, "round {round}: acknowledged reservation {} is gone", r.id);
        let v: Value = got.json().await.unwrap();
        assert_eq!(v["status"], "held", "{v}");
    }
    // The keys still name the same reservations: a retry never makes a second one.
    for r in acked.reservations.iter().rev().take(20) {
        let sku = api.http.get(api.url(&format!("/v1/reservations/{}", r.id))).bearer_auth(&r.token).send().await.unwrap();
        let sku: Value = sku.json().await.unwrap();
        let (status, again) = api.reserve(sku["sku"].as_str().unwrap(), "berlin", 1, &r.key).await;
        assert_eq!((status, again["id"].as_str()), (200, Some(r.id.as_str())), "round {round}: key {}", r.key);
    }
    let expected = recompute(data);
    assert!(!expected.is_empty());
    for ((sku, location), (on_hand, held)) in &expected {
        let (got_on_hand, reserved, _, _) = api.position(sku, location).await;
        assert_eq!(got_on_hand, *on_hand, "round {round}: {sku}@{location} differs from its ledger");
        assert_eq!(reserved, *held, "round {round}: {sku}@{location} reserved vs the open holds in the ledger");
    }
    let acked_holds = acked.reservations.len() as i64;
    let ledger_holds: i64 = expected.values().map(|(_, h)| h).sum();
    assert!(ledger_holds >= acked_holds, "round {round}: {ledger_holds} holds in the ledger, {acked_holds} acknowledged");
}

#[tokio::test]
async fn kill_9_at_random_moments_loses_nothing_and_counts_nothing_twice() {
    let rounds: usize = std::env::var("SHELFCAST_CRASH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let (_tmp, data) = data_dir();
    let mut hub = ChildHub::spawn(&data, &ARGS);
    let seed: Vec<Value> = SKUS.iter().map(|s| ev(&format!("seed:{s}"), "receipt", s, "berlin", 1_000_000)).collect();
    assert_eq!(hub.client().post_events(TOKEN, &Value::Array(seed.clone())).await.0, 200);
    let acked = Arc::new(Mutex::new(Acked { events: seed, reservations: Vec::new() }));
    let started = std::time::Instant::now();
    for round in 0..rounds {
        let at = Duration::from_millis(rand::rng().random_range(20..400));
        let work = tokio::spawn(load(hub.client(), acked.clone(), round, 3, 3));
        tokio::time::sleep(at).await;
        hub.kill9();
        work.await.unwrap();
        hub = ChildHub::spawn(&data, &ARGS);
        let snapshot = {
            let acked = acked.lock().unwrap();
            Acked { events: acked.events.clone(), reservations: acked.reservations.clone() }
        };
        verify(&hub, &data, &snapshot, round).await;
        eprintln!(
            "round {}/{rounds}: killed after {} ms; {} events and {} reservations acknowledged so far, all present",
            round + 1,
            at.as_millis(),
            snapshot.events.len(),
            snapshot.reservations.len()
        );
    }
    eprintln!("{rounds} crash rounds in {:.1} s, 0 losses, 0 double counts", started.elapsed().as_secs_f64());
    hub.kill9();
}
