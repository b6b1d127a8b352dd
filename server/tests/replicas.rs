//! Three hub replicas on one PostgreSQL, with NATS between them, as separate processes on
//! loopback: no oversell when shoppers on different replicas race, a duplicate applied once
//! whichever replicas receive it, a stream on one replica seeing writes through another,
//! gapless resume on another replica while writers run, and streams that keep up through a
//! NATS outage.
//!
//! Needs `SHELFCAST_REPLICAS_POSTGRES` (a server where databases can be created), the
//! `nats-server` binary, and root for the test that runs a PostgreSQL of its own;
//! `scripts/test.sh` provides all three.

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use shelfcast_protocol::partition::partition_of;

/// A nats-server of the test's own, on a free loopback port.
struct Nats {
    child: Option<Child>,
    port: u16,
}

impl Nats {
    fn start() -> Nats {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut n = Nats { child: None, port };
        n.restart();
        n
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (apt-get install nats-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Cluster {
    replicas: Vec<ChildHub>,
    _dirs: Vec<tempfile::TempDir>,
    nats: Nats,
    database: String,
}

impl Cluster {
    async fn start(n: usize) -> Cluster {
        Self::start_with(n, &[]).await
    }

    /// `n` replicas, each started with `extra` flags and known to the others as `replica<i>`
    /// (its member id starts so), each reaching PostgreSQL at the URL `database(i)` gives.
    async fn start_with(n: usize, extra: &[&str]) -> Cluster {
        let database = fresh_database_at("SHELFCAST_REPLICAS_POSTGRES")
            .await
            .expect("set SHELFCAST_REPLICAS_POSTGRES=postgres://user:password@host:port (scripts/test.sh does)");
        Self::start_on(n, extra, database, |_, url| url.to_string())
    }

    fn start_on(n: usize, extra: &[&str], database: String, reach: impl Fn(usize, &str) -> String) -> Cluster {
        let nats = Nats::start();
        let mut cluster = Cluster { replicas: Vec::new(), _dirs: Vec::new(), nats, database };
        for i in 0..n {
            let url = reach(i, &cluster.database);
            cluster.add(i, &url, extra);
        }
        cluster
    }

    fn add(&mut self, i: usize, database: &str, extra: &[&str]) {
        let (dir, data) = data_dir();
        let token = format!("{TOKEN}=*");
        let mut flags = vec!["--device-token", &token, "--database", database, "--reservation-rate", "0", "--stream-rate", "0"];
        let nats = self.nats.url();
        flags.extend(["--nats", &nats]);
        flags.extend(extra);
        let name = format!("replica{i}");
        self.replicas.push(ChildHub::spawn_env(&data, &flags, &[("HOSTNAME", &name)]));
        self._dirs.push(dir);
    }

    fn api(&self, i: usize) -> Api {
        self.replicas[i % self.replicas.len()].client()
    }

    async fn db(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.database, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    }

    /// Each partition's owner as the database has it: `Some(i)` for replica i, with its lease running.
    async fn owners(&self) -> Vec<Option<usize>> {
        let rows = self
            .db()
            .await
            .query(
                "SELECT CASE WHEN m.lease_until > clock_timestamp() THEN p.owner END
                   FROM partitions p LEFT JOIN members m ON m.id = p.owner ORDER BY p.id",
                &[],
            )
            .await
            .unwrap();
        rows.iter().map(|r| r.get::<_, Option<String>>(0).map(|o| o["replica".len()..o.find('-').unwrap()].parse().unwrap())).collect()
    }

    /// Waits until the replicas in `live` hold every partition in even shares (at most one
    /// apart); returns how long that took.
    async fn balanced(&self, live: &[usize], within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let owners = self.owners().await;
            let counts: Vec<usize> = live.iter().map(|i| owners.iter().filter(|o| **o == Some(*i)).count()).collect();
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            if counts.iter().sum::<usize>() == owners.len() && hi - lo <= 1 {
                return started.elapsed();
            }
            assert!(started.elapsed() < within, "partitions not spread over replicas {live:?} within {within:?}: {counts:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A SKU starting with `prefix` whose partition replica `i` owns.
    async fn sku_owned_by(&self, i: usize, prefix: &str) -> String {
        let owners = self.owners().await;
        (0..).map(|n| format!("{prefix}-{n}")).find(|sku| owners[partition_of(sku, owners.len() as u32) as usize] == Some(i)).unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for r in self.replicas.drain(..) {
            r.kill9();
        }
    }
}

/// Waits until `api` shows `want` as the position's (on_hand, reserved).
async fn until_position(api: &Api, sku: &str, location: &str, want: (i64, i64)) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (on_hand, reserved, _, _) = api.position(sku, location).await;
        if (on_hand, reserved) == want {
            return;
        }
        assert!(Instant::now() < deadline, "{}: {sku}@{location} is ({on_hand}, {reserved}), not {want:?}", api.base);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn shoppers_racing_on_three_replicas_get_exactly_the_stock() {
    let cluster = Cluster::start(3).await;
    cluster.api(0).post_events(TOKEN, &json!([ev("stock", "receipt", "LAST-20", "berlin", 20)])).await;
    for i in 0..3 {
        until_position(&cluster.api(i), "LAST-20", "berlin", (20, 0)).await;
    }
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let api = cluster.api(i);
            tokio::spawn(async move { api.reserve("LAST-20", "berlin", 1, &format!("race-key-{i:010}")).await.0 })
        })
        .collect();
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    for t in tasks {
        *by_status.entry(t.await.unwrap()).or_default() += 1;
    }
    assert_eq!(by_status.get(&201), Some(&20), "{by_status:?}");
    assert_eq!(by_status.get(&409), Some(&480), "{by_status:?}");
    for i in 0..3 {
        until_position(&cluster.api(i), "LAST-20", "berlin", (20, 20)).await;
    }
    // And the database agrees.
    let (client, conn) = tokio_postgres::connect(&cluster.database, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let held: i64 = client
        .query_one("SELECT coalesce(sum(qty), 0)::bigint FROM reservations WHERE sku = 'LAST-20' AND status = 'held'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(held, 20);
}

/// Replicas read only the holds written since the version they know a position at: a hold
/// granted on one replica and cancelled on another is gone on every replica, and its units can
/// be held again through the replica that granted it.
#[tokio::test]
async fn a_hold_cancelled_on_another_replica_frees_its_units_everywhere() {
    let cluster = Cluster::start(3).await;
    cluster.api(0).post_events(TOKEN, &json!([ev("free-stock", "receipt", "FREE", "berlin", 2)])).await;
    let (s, r) = cluster.api(0).reserve("FREE", "berlin", 2, "free-key-0000000001").await;
    assert_eq!(s, 201, "{r}");
    for i in 0..3 {
        until_position(&cluster.api(i), "FREE", "berlin", (2, 2)).await;
    }
    assert_eq!(cluster.api(1).reserve("FREE", "berlin", 1, "free-key-0000000002").await.0, 409, "all held");

    let path = format!("/v1/reservations/{}", r["id"].as_str().unwrap());
    let token = format!("Bearer {}", r["token"].as_str().unwrap());
    let (s, _, b) = cluster.api(2).raw(reqwest::Method::DELETE, &path, &[("authorization", &token)], "").await;
    assert_eq!(s, 200, "{b}");
    for i in 0..3 {
        until_position(&cluster.api(i), "FREE", "berlin", (2, 0)).await;
    }
    let (s, again) = cluster.api(0).reserve("FREE", "berlin", 2, "free-key-0000000003").await;
    assert_eq!(s, 201, "the granting replica no longer counts the cancelled hold: {again}");
    for i in 0..3 {
        until_position(&cluster.api(i), "FREE", "berlin", (2, 2)).await;
    }
    assert_eq!(cluster.api(1).reserve("FREE", "berlin", 1, "free-key-0000000004").await.0, 409, "held again");
}

/// A hold's idempotency key, sent to every replica at once: for one position it is granted
/// once and every answer is that reservation; for two positions whose partitions two different
/// replicas own, one is granted and the other answered "key reused" (the owners' commits take
/// the key's lock, so they cannot both grant it).
#[tokio::test]
async fn one_reservation_key_sent_to_every_replica_at_once_holds_once() {
    let cluster = Cluster::start(3).await;
    cluster.balanced(&[0, 1, 2], Duration::from_secs(30)).await;
    let (a, b) = (cluster.sku_owned_by(0, "KEYED-A").await, cluster.sku_owned_by(1, "KEYED-B").await);
    let stock = json!([ev("keyed-a", "receipt", &a, "berlin", 1000), ev("keyed-b", "receipt", &b, "berlin", 1000)]);
    cluster.api(2).post_events(TOKEN, &stock).await;
    for round in 0..20 {
        // The same position from every replica, three times each.
        let key = format!("same-key-{round:010}");
        let tasks: Vec<_> = (0..9)
            .map(|i| {
                let (api, sku, key) = (cluster.api(i), a.clone(), key.clone());
                tokio::spawn(async move { api.reserve(&sku, "berlin", 1, &key).await })
            })
            .collect();
        let mut ids = std::collections::HashSet::new();
        let mut created = 0;
        for t in tasks {
            let (status, body) = t.await.unwrap();
            assert!(status == 201 || status == 200, "round {round}: {status} {body}");
            created += usize::from(status == 201);
            ids.insert(body["id"].as_str().unwrap().to_string());
        }
        assert_eq!((created, ids.len()), (1, 1), "round {round}: one reservation, created once");

        // One key for two positions, owned by two replicas, sent through all three.
        let key = format!("two-positions-{round:010}");
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let (api, sku, key) = (cluster.api(i), if i % 2 == 0 { a.clone() } else { b.clone() }, key.clone());
                tokio::spawn(async move { (sku.clone(), api.reserve(&sku, "berlin", 1, &key).await) })
            })
            .collect();
        let mut granted = std::collections::HashSet::new();
        let mut refused = 0;
        for t in tasks {
            let (sku, (status, body)) = t.await.unwrap();
            match status {
                200 | 201 => drop(granted.insert(sku)),
                422 => {
                    assert_eq!(body["error"]["code"], "idempotency_key_reused", "round {round}: {body}");
                    refused += 1;
                }
                _ => panic!("round {round}: {status} {body}"),
            }
        }
        assert_eq!(granted.len(), 1, "round {round}: the key holds one position, not {granted:?}");
        assert_eq!(refused, 3, "round {round}: the other position's three requests are refused");
    }
    let held: Vec<(String, i64)> = cluster
        .db()
        .await
        .query("SELECT sku, count(*) FROM reservations WHERE sku IN ($1, $2) GROUP BY sku ORDER BY sku", &[&a, &b])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let total: i64 = held.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 40, "one reservation per key: {held:?}");
    for i in 0..3 {
        let want_a = held.iter().find(|(s, _)| *s == a).map_or(0, |(_, n)| *n);
        until_position(&cluster.api(i), &a, "berlin", (1000, want_a)).await;
    }
}

/// A key sent again after its position sold out gets the hold it was granted, through every
/// replica, and the same key for another position is refused as reused: a hold refused from
/// memory is answered only once its key is read.
#[tokio::test]
async fn a_key_sent_again_after_its_position_sold_out_gets_its_hold_back() {
    let cluster = Cluster::start(3).await;
    cluster.balanced(&[0, 1, 2], Duration::from_secs(30)).await;
    let (a, b) = (cluster.sku_owned_by(0, "SOLD-A").await, cluster.sku_owned_by(1, "SOLD-B").await);
    let stock = json!([ev("sold-a", "receipt", &a, "berlin", 2), ev("sold-b", "receipt", &b, "berlin", 5)]);
    cluster.api(2).post_events(TOKEN, &stock).await;
    for i in 0..3 {
        until_position(&cluster.api(i), &a, "berlin", (2, 0)).await;
    }
    let (status, first) = cluster.api(1).reserve(&a, "berlin", 2, "sold-out-key-0001").await;
    assert_eq!(status, 201, "{first}");
    let (status, body) = cluster.api(2).reserve(&a, "berlin", 1, "sold-out-key-0002").await;
    assert_eq!(status, 409, "the position is sold out: {body}");
    for i in 0..3 {
        let (status, body) = cluster.api(i).reserve(&a, "berlin", 2, "sold-out-key-0001").await;
        assert_eq!(status, 200, "replica {i}: the key's hold, not sold out: {body}");
        assert_eq!(body["id"], first["id"], "replica {i}: {body}");
        let (status, body) = cluster.api(i).reserve(&b, "berlin", 1, "sold-out-key-0001").await;
        assert_eq!(status, 422, "replica {i}: {body}");
        assert_eq!(body["error"]["code"], "idempotency_key_reused", "replica {i}: {body}");
    }
    for i in 0..3 {
        until_position(&cluster.api(i), &a, "berlin", (2, 2)).await;
        until_position(&cluster.api(i), &b, "berlin", (5, 0)).await;
    }
}

/// Each replica counts the oversold positions of the partitions it owns: with every replica
/// holding an oversold position (each has read it), their `shelfcast_oversold_positions` add
/// up to one.
#[tokio::test]
async fn the_replicas_oversold_gauges_add_up_to_the_oversold_positions() {
    let cluster = Cluster::start(3).await;
    cluster.balanced(&[0, 1, 2], Duration::from_secs(30)).await;
    cluster.api(0).post_events(TOKEN, &json!([ev("over-stock", "receipt", "OVER", "berlin", 2)])).await;
    let (s, r) = cluster.api(1).reserve("OVER", "berlin", 2, "over-key-0000000001").await;
    assert_eq!(s, 201, "{r}");
    cluster.api(2).post_events(TOKEN, &json!([ev("over-sale", "sale", "OVER", "berlin", 1)])).await;
    for i in 0..3 {
        until_position(&cluster.api(i), "OVER", "berlin", (1, 2)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut each = Vec::new();
        for i in 0..3 {
            each.push(metric(&cluster.api(i), "shelfcast_oversold_positions").await);
        }
        if each.iter().sum::<i64>() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "one oversold position, counted by the replicas as {each:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Requests that reach their owner together share one insert of their events: each is still
/// answered for its own events, applied or duplicate, whatever came with it.
#[tokio::test]
async fn requests_committed_together_are_each_answered_for_their_own_events() {
    let cluster = Cluster::start(3).await;
    let id = |r: usize, i: usize| format!("mix-{r}-{i}");
    // Request r has r + 1 events; those at even places are in the ledger already.
    let known: Vec<Value> =
        (0..40).flat_map(|r| (0..=r).step_by(2).map(move |i| (r, i))).map(|(r, i)| ev(&id(r, i), "receipt", "MIX", "berlin", 1)).collect();
    assert_eq!(cluster.api(0).post_events(TOKEN, &Value::Array(known)).await.0, 200);
    let tasks: Vec<_> = (0..40)
        .map(|r| {
            let api = cluster.api(r);
            let events = Value::Array((0..=r).map(|i| ev(&id(r, i), "receipt", "MIX", "berlin", 1)).collect());
            tokio::spawn(async move { api.post_events(TOKEN, &events).await })
        })
        .collect();
    for (r, t) in tasks.into_iter().enumerate() {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        let got: Vec<(String, String)> = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["id"].as_str().unwrap().to_string(), x["status"].as_str().unwrap().to_string()))
            .collect();
        let want: Vec<(String, String)> =
            (0..=r).map(|i| (id(r, i), if i % 2 == 0 { "duplicate" } else { "applied" }.to_string())).collect();
        assert_eq!(got, want, "request {r}");
    }
    let total = (1..=40).sum::<i64>();
    for i in 0..3 {
        until_position(&cluster.api(i), "MIX", "berlin", (total, 0)).await;
    }
}

#[tokio::test]
async fn the_same_events_sent_to_every_replica_apply_once() {
    let cluster = Cluster::start(3).await;
    let batch = Value::Array((0..200).map(|i| ev(&format!("dup-{i}"), "receipt", "DUP", "hamburg", 1)).collect());
    let tasks: Vec<_> = (0..9)
        .map(|i| {
            let (api, batch) = (cluster.api(i), batch.clone());
            tokio::spawn(async move { api.post_events(TOKEN, &batch).await.1 })
        })
        .collect();
    let mut applied = 0;
    for t in tasks {
        let b = t.await.unwrap();
        applied += b["applied"].as_i64().unwrap();
        assert_eq!(b["applied"].as_i64().unwrap() + b["duplicates"].as_i64().unwrap(), 200, "{b}");
    }
    assert_eq!(applied, 200, "each event applied exactly once across replicas");
    for i in 0..3 {
        until_position(&cluster.api(i), "DUP", "hamburg", (200, 0)).await;
    }
    // The owner recorded each once in the history, with the sending token's label (the writes
    // forwarded to it carry the label, never the token), whichever replica is asked.
    for i in 0..3 {
        let path = "/v1/positions/DUP/hamburg/history?limit=500";
        let (s, _, b) = cluster.api(i).raw(reqwest::Method::GET, path, &[("authorization", &format!("Bearer {TOKEN}"))], "").await;
        assert_eq!(s, 200, "{b}");
        let page: Value = serde_json::from_str(&b).unwrap();
        let items = page["items"].as_array().unwrap();
        let on_hand: Vec<i64> = items.iter().map(|i| i["on_hand"].as_i64().unwrap()).collect();
        assert_eq!(on_hand, (1..=200).rev().collect::<Vec<i64>>(), "each event once, newest first");
        assert!(items.iter().all(|i| i["by"].as_str().is_some_and(|l| l.starts_with("token-"))), "{b}");
        assert!(!b.contains(TOKEN));
    }
}

/// A commit's history takes the versions its positions got in the same statement: many
/// positions of many partitions in one request, each changed several times, and holds on them.
/// Every position's history runs down from its current version (the changes of one commit
/// share the version it gave their position).
#[tokio::test]
async fn each_history_entry_carries_the_version_its_change_gave_the_position() {
    let cluster = Cluster::start(3).await;
    let keys: Vec<(String, &str)> = (0..12).flat_map(|i| ["berlin", "hamburg"].map(|l| (format!("HV-{i}"), l))).collect();
    let mut batch = Vec::new();
    for round in 0..3 {
        for (sku, location) in &keys {
            batch.push(ev(&format!("hv-{sku}-{location}-{round}"), "receipt", sku, location, 1));
        }
    }
    let (s, b) = cluster.api(1).post_events(TOKEN, &Value::Array(batch)).await;
    assert_eq!((s, b["applied"].as_i64()), (200, Some(72)), "{b}");
    for (i, (sku, location)) in keys.iter().enumerate().step_by(5) {
        let (s, r) = cluster.api(i % 3).reserve(sku, location, 1, &format!("hv-hold-{sku}-{location}")).await;
        assert_eq!((s, r["status"].as_str()), (201, Some("held")), "{r}");
    }
    for (i, (sku, location)) in keys.iter().enumerate() {
        let (_, _, _, version) = cluster.api(0).position(sku, location).await;
        let path = format!("/v1/positions/{sku}/{location}/history?limit=10");
        let (s, _, b) = cluster.api(2).raw(reqwest::Method::GET, &path, &[("authorization", &format!("Bearer {TOKEN}"))], "").await;
        assert_eq!(s, 200, "{b}");
        let page: Value = serde_json::from_str(&b).unwrap();
        let versions: Vec<u64> = page["items"].as_array().unwrap().iter().map(|i| i["version"].as_u64().unwrap()).collect();
        assert_eq!(versions.first(), Some(&version), "{sku}@{location}: the newest entry has the position's version: {b}");
        assert_eq!(versions.len(), 3 + usize::from(i % 5 == 0), "three receipts, and the hold if any: {b}");
        assert!(versions.windows(2).all(|w| w[0] >= w[1] && w[1] > 0), "{sku}@{location}: {versions:?}");
    }
}

#[tokio::test]
async fn a_stream_on_one_replica_sees_writes_through_another() {
    let cluster = Cluster::start(3).await;
    let (_, mut stream) = cluster.api(0).stream("sku=LIVE&location=berlin", None).await;
    assert_eq!(next_position(&mut stream, "the first state").await["on_hand"], 0);
    cluster.api(2).post_events(TOKEN, &json!([ev("x1", "receipt", "LIVE", "berlin", 7)])).await;
    let p = next_position(&mut stream, "a change made through replica 3").await;
    assert_eq!(p["on_hand"], 7);
    let (_, r) = cluster.api(1).reserve("LIVE", "berlin", 2, "live-key-000000001").await;
    assert_eq!(r["status"], "held");
    let p = next_position(&mut stream, "a hold made through replica 2").await;
    assert_eq!((p["on_hand"].as_i64(), p["reserved"].as_i64()), (Some(7), Some(2)));
}

/// Writers on all replicas; a reader follows 8 positions on replica 1, drops, resumes on
/// replica 2 with `Last-Event-ID`, drops again, resumes on replica 3. What it ends with must be
/// the final state of every position, with versions only ever rising per position.
#[tokio::test]
async fn resuming_on_another_replica_misses_nothing_while_writers_run() {
    let cluster = Cluster::start(3).await;
    let positions: Vec<String> = (0..8).map(|i| format!("RESUME-{i}@berlin")).collect();
    let query = format!("positions={}", positions.join(","));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (api, stop) = (cluster.api(w), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let batch: Vec<Value> = (0..4)
                        .map(|i| ev(&format!("w{w}-{n}-{i}"), "receipt", &format!("RESUME-{}", (n + i + w) % 8), "berlin", 1))
                        .collect();
                    n += 1;
                    assert_eq!(api.post_events(TOKEN, &Value::Array(batch)).await.0, 200);
                }
                n * 4
            })
        })
        .collect();

    let mut seen: HashMap<String, (u64, i64)> = HashMap::new();
    let mut last_id: Option<String> = None;
    for hop in 0..3 {
        let (_, mut stream) = cluster.api(hop).stream(&query, last_id.as_deref()).await;
        let until = Instant::now() + Duration::from_millis(700);
        while Instant::now() < until {
            let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(200), stream.next()).await else { continue };
            if e.event != "position" {
                continue;
            }
            let p: Value = serde_json::from_str(&e.data).unwrap();
            let version = p["version"].as_u64().unwrap();
            let sku = p["sku"].as_str().unwrap().to_string();
            if let Some((before, _)) = seen.get(&sku) {
                assert!(version > *before, "hop {hop}: {sku} went from version {before} to {version}");
            }
            seen.insert(sku, (version, p["on_hand"].as_i64().unwrap()));
            // Positions of several partitions: the id is a cursor of each one's version.
            assert!(e.id.starts_with('c') && e.id.len() <= 256 && e.id.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{}", e.id);
            last_id = Some(e.id.clone());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for w in writers {
        total += w.await.unwrap();
    }
    // After the writers stop, one more resume (on replica 1 again) brings the reader level.
    let (_, mut stream) = cluster.api(0).stream(&query, last_id.as_deref()).await;
    quiet_then_collect(&mut stream, &mut seen).await;
    let mut sum = 0;
    for p in &positions {
        let sku = p.split('@').next().unwrap();
        let (on_hand, _, _, version) = cluster.api(1).position(sku, "berlin").await;
        assert_eq!(seen.get(sku).copied(), Some((version, on_hand)), "{sku}: the reader missed a change");
        sum += on_hand;
    }
    assert_eq!(sum, total as i64, "every event counted once");
}

async fn quiet_then_collect(
    stream: &mut (impl futures_util::Stream<Item = eventsource_stream::Event> + Unpin),
    seen: &mut HashMap<String, (u64, i64)>,
) {
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(1_500), stream.next()).await {
        if e.event == "position" {
            let p: Value = serde_json::from_str(&e.data).unwrap();
            seen.insert(p["sku"].as_str().unwrap().to_string(), (p["version"].as_u64().unwrap(), p["on_hand"].as_i64().unwrap()));
        }
    }
}

/// NATS carries news of commits and the writes forwarded to a partition's owner. Without it,
/// streams follow through the database and the owner's own writes go on; a write that would have
/// to be forwarded is answered 503 (nothing changed) until NATS is back.
#[tokio::test]
async fn streams_keep_up_through_a_nats_outage() {
    let mut cluster = Cluster::start(2).await;
    cluster.balanced(&[0, 1], Duration::from_secs(20)).await;
    let sku = cluster.sku_owned_by(1, "OUTAGE").await;
    let query = format!("sku={sku}&location=berlin");
    let (_, mut stream) = cluster.api(0).stream(&query, None).await;
    next_position(&mut stream, "the first state").await;
    let (owner, other) = (cluster.api(1), cluster.api(0));
    let mut expect = 0;
    for phase in ["before", "during", "after"] {
        match phase {
            "during" => cluster.nats.stop(),
            "after" => cluster.nats.restart(),
            _ => {}
        }
        for i in 0..5 {
            expect += 1;
            let (status, _) = owner.post_events(TOKEN, &json!([ev(&format!("{phase}-{i}"), "receipt", &sku, "berlin", 1)])).await;
            assert_eq!(status, 200, "{phase}: the owner's writes go on without NATS");
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let p = tokio::time::timeout_at(deadline.into(), next_position(&mut stream, phase))
                    .await
                    .unwrap_or_else(|_| panic!("{phase}: the stream on the other replica fell behind"));
                if p["on_hand"] == expect {
                    break;
                }
            }
        }
        if phase == "during" {
            let (status, body) = other.post_events(TOKEN, &json!([ev("forwarded-during", "receipt", &sku, "berlin", 1)])).await;
            assert_eq!((status, body["error"]["code"].as_str()), (503, Some("storage_unavailable")), "{body}");
        }
    }
    // Forwarding works again, and the write refused during the outage changed nothing.
    let (status, body) = other.post_events(TOKEN, &json!([ev("forwarded-after", "receipt", &sku, "berlin", 1)])).await;
    assert_eq!(status, 200, "{body}");
    until_position(&other, &sku, "berlin", (expect + 1, 0)).await;
}

/// A PostgreSQL server of the test's own (so stopping it disturbs no other test), run as the
/// `postgres` user from Debian's binaries.
struct OwnPostgres {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

impl OwnPostgres {
    fn as_postgres(program: &str) -> Command {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--clear-groups", "--"]).arg(format!("{PG_BIN}/{program}"));
        c
    }

    fn start() -> OwnPostgres {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("chown").args(["postgres:postgres"]).arg(dir.path()).status().unwrap().success();
        assert!(ok, "this test runs its own PostgreSQL as the postgres user and needs root");
        let out = Self::as_postgres("initdb").args(["-A", "trust", "-U", "shelfcast", "-D"]).arg(dir.path().join("db")).output().unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut pg = OwnPostgres { dir, port, child: None };
        pg.restart();
        pg
    }

    fn url(&self) -> String {
        format!("postgres://shelfcast@127.0.0.1:{}/postgres", self.port)
    }

    fn restart(&mut self) {
        let child = Self::as_postgres("postgres")
            .arg("-D")
            .arg(self.dir.path().join("db"))
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-k"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = Command::new(format!("{PG_BIN}/pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A fast shutdown: clients are disconnected, as in a failover or a restart.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-INT", &c.id().to_string()]).status();
            c.wait().unwrap();
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn when_postgres_goes_away_writes_fail_cleanly_and_recover_by_themselves() {
    let mut pg = OwnPostgres::start();
    let (_dir, data) = data_dir();
    let hub = ChildHub::spawn(&data, &["--database", &pg.url(), "--reservation-rate", "0"]);
    let api = hub.client();
    let (_, mut stream) = api.stream("sku=PG&location=berlin", None).await;
    next_position(&mut stream, "the first state").await;
    assert_eq!(api.post_events(TOKEN, &json!([ev("before", "receipt", "PG", "berlin", 5)])).await.0, 200);

    pg.stop();
    let (status, body) = api.post_events(TOKEN, &json!([ev("during", "receipt", "PG", "berlin", 1)])).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("storage_unavailable")), "{body}");
    let (status, body) = api.reserve("PG", "berlin", 1, "pg-down-key-000001").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(api.get_json("/readyz").await.0, 503);
    assert_eq!(api.get_json("/healthz").await.0, 200);
    assert_eq!(api.position("PG", "berlin").await.0, 5, "reads are served from memory meanwhile");

    pg.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = api.post_events(TOKEN, &json!([ev("during", "receipt", "PG", "berlin", 1)])).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "writes never came back: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(api.get_json("/readyz").await.0, 200, "ready again without a restart");
    assert_eq!(api.position("PG", "berlin").await.0, 6);
    let mut on_hand = 0;
    while on_hand != 6 {
        on_hand = next_position(&mut stream, "the change after recovery").await["on_hand"].as_i64().unwrap();
    }
    hub.kill9();
}

/// Replicas share the partitions evenly; one that stops gracefully hands its partitions over at
/// once (the lease here is 60 s: the hand-over cannot be the lease running out).
#[tokio::test]
async fn partitions_spread_evenly_and_are_handed_over_at_a_graceful_stop() {
    let mut cluster = Cluster::start_with(3, &["--lease", "60s"]).await;
    cluster.balanced(&[0, 1, 2], Duration::from_secs(30)).await;
    let sku = cluster.sku_owned_by(2, "HANDOVER").await;
    cluster.api(0).post_events(TOKEN, &json!([ev("first", "receipt", &sku, "berlin", 2)])).await;
    let mut leaving = cluster.replicas.pop().unwrap();
    leaving.signal("TERM");
    let took = cluster.balanced(&[0, 1], Duration::from_secs(20)).await;
    eprintln!("partitions handed over in {took:?}");
    // The partition's new owner writes it from where the old one left it.
    let (status, body) = cluster.api(1).post_events(TOKEN, &json!([ev("second", "receipt", &sku, "berlin", 3)])).await;
    assert_eq!(status, 200, "{body}");
    until_position(&cluster.api(0), &sku, "berlin", (5, 0)).await;
    assert!(leaving.child.wait().unwrap().success(), "the leaving replica stops cleanly");
}

/// What writers on every replica were told, for the checks after a fault.
#[derive(Default)]
struct Acknowledged {
    /// Event ids answered 200, with their quantities.
    events: Mutex<HashMap<String, i64>>,
    /// Reservation ids granted (201), by SKU.
    holds: Mutex<Vec<(String, String)>>,
    /// Any answer other than 200/201, 409 (sold out) or 503 with `Retry-After`.
    unexpected: Mutex<Vec<String>>,
}

/// Receipts and reservations for `skus` until `stop`, each through the next of `targets` (base
/// URLs, as a load balancer would spread them): each write is sent again, as it was, after a
/// 503 or a connection that failed (as clients do) until it is answered.
async fn write_until(targets: Arc<Mutex<Vec<String>>>, name: usize, skus: Vec<String>, stop: Arc<AtomicBool>, acked: Arc<Acknowledged>) {
    let client = reqwest::Client::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let sku = &skus[(n / 2) as usize % skus.len()];
        let id = format!("r{name}-{n}");
        let body = json!([ev(&id, "receipt", sku, "berlin", 1)]);
        let key = format!("key-{name}-{n:012}");
        let reserve = json!({"sku": sku, "location": "berlin", "qty": 1, "key": key});
        let (event, mut attempt) = (n.is_multiple_of(2), 0);
        loop {
            attempt += 1;
            let base = {
                let t = targets.lock().unwrap();
                t[(n as usize + attempt) % t.len()].clone()
            };
            let sent = if event {
                client.post(format!("{base}/v1/events")).bearer_auth(TOKEN).json(&body).send().await
            } else {
                client.post(format!("{base}/v1/reservations")).json(&reserve).send().await
            };
            let Ok(r) = sent else {
                // A replica stopping (or killed): the request goes to another.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            match (r.status().as_u16(), r.headers().contains_key("retry-after")) {
                (200, _) if event => {
                    acked.events.lock().unwrap().insert(id.clone(), 1);
                    break;
                }
                (200 | 201, _) => {
                    if let Ok(v) = r.json::<Value>().await {
                        acked.holds.lock().unwrap().push((v["id"].as_str().unwrap_or_default().to_string(), sku.clone()));
                    }
                    break;
                }
                (409, _) => break,
                (503, true) => tokio::time::sleep(Duration::from_millis(50)).await,
                other => {
                    acked.unexpected.lock().unwrap().push(format!("{other:?}"));
                    break;
                }
            }
        }
    }
}

/// The ledger in PostgreSQL against what the writers were told: every acknowledged event
/// stored once, each position's on-hand exactly its events, holds never above on-hand (only
/// receipts and holds were written, so any excess is an oversell), and every granted hold kept.
async fn check_ledger(cluster: &Cluster, skus: &[String], acked: &Acknowledged) {
    let db = cluster.db().await;
    let unexpected = acked.unexpected.lock().unwrap().clone();
    assert!(unexpected.is_empty(), "answers other than success, sold out or 503 + Retry-After: {unexpected:?}");
    let events = acked.events.lock().unwrap().clone();
    let ids: Vec<String> = events.keys().cloned().collect();
    let stored: i64 = db.query_one("SELECT count(*) FROM events WHERE id = ANY($1)", &[&ids]).await.unwrap().get(0);
    assert_eq!(stored as usize, ids.len(), "acknowledged events lost");
    for sku in skus {
        let row = db
            .query_one(
                "SELECT p.on_hand,
                        (SELECT coalesce(sum(qty), 0)::bigint FROM events e WHERE e.sku = p.sku AND e.location = p.location),
                        (SELECT coalesce(sum(qty), 0)::bigint FROM reservations r WHERE r.sku = p.sku AND r.status IN ('held', 'confirmed'))
                   FROM positions p WHERE p.sku = $1 AND p.location = 'berlin'",
                &[sku],
            )
            .await
            .unwrap();
        let (on_hand, from_events, held): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(on_hand, from_events, "{sku}: on-hand is not its events (one applied twice, or lost)");
        assert!(held <= on_hand, "{sku}: {held} held of {on_hand}: oversold");
    }
    let holds: Vec<String> = acked.holds.lock().unwrap().iter().map(|(id, _)| id.clone()).collect();
    let kept: i64 =
        db.query_one("SELECT count(*) FROM reservations WHERE id = ANY($1) AND status = 'held'", &[&holds]).await.unwrap().get(0);
    assert_eq!(kept as usize, holds.len(), "granted holds lost");
}

/// kill -9 of a replica under mixed load on all three: its partitions pass to the others
/// within the lease; no acknowledged write is lost, none applied twice, nothing oversold.
#[tokio::test(flavor = "multi_thread")]
async fn an_owner_killed_under_load_is_taken_over_within_the_lease_and_nothing_is_lost_or_doubled() {
    let lease = Duration::from_secs(6);
    let mut cluster = Cluster::start_with(3, &["--lease", "6s"]).await;
    cluster.balanced(&[0, 1, 2], Duration::from_secs(30)).await;
    // Hot SKUs of the replica to be killed, and some of the others'.
    let mut skus = Vec::new();
    for i in 0..3 {
        for k in 0..2 {
            skus.push(cluster.sku_owned_by(i, &format!("HOT{k}")).await);
        }
    }
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(Acknowledged::default()));
    let live = Arc::new(Mutex::new(vec![cluster.replicas[1].url.clone(), cluster.replicas[2].url.clone()]));
    let writers: Vec<_> =
        (0..6).map(|w| tokio::spawn(write_until(live.clone(), 10 + w, skus.clone(), stop.clone(), acked.clone()))).collect();
    let doomed_target = Arc::new(Mutex::new(vec![cluster.replicas[0].url.clone()]));
    let doomed: Vec<_> =
        (0..3).map(|w| tokio::spawn(write_until(doomed_target.clone(), w, skus.clone(), stop.clone(), Arc::default()))).collect();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    cluster.replicas.remove(0).kill9();
    let killed = Instant::now();
    for d in doomed {
        d.abort();
    }
    let took = cluster.balanced(&[1, 2], Duration::from_secs(30)).await;
    eprintln!("the killed replica's partitions were taken over {:?} after kill -9 (lease {lease:?})", killed.elapsed());
    assert!(took <= lease, "taken over after {took:?}, beyond the lease of {lease:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(acked.events.lock().unwrap().len() > 20, "the writers wrote");
    check_ledger(&cluster, &skus, &acked).await;
}

/// A TCP proxy on loopback that can cut every connection through it and refuse new ones.
struct Cut {
    addr: std::net::SocketAddr,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Cut {
    async fn start(upstream: std::net::SocketAddr) -> Cut {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, conns) = (Arc::new(AtomicBool::new(true)), Arc::new(Mutex::new(Vec::<tokio::task::AbortHandle>::new())));
        let (o, c) = (open.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Cut { addr, open, conns }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// An owner cut off from PostgreSQL (through a TCP proxy) loses its partitions when its lease
/// passes; the replica that takes them sells the last units; once the old owner's connection
/// is back, nothing it decided from what it knew before can be committed: its shoppers are
/// told the truth (sold out), and its writes reach the new owner.
#[tokio::test(flavor = "multi_thread")]
async fn a_deposed_owner_reconnected_after_its_lease_cannot_commit() {
    let database = fresh_database_at("SHELFCAST_REPLICAS_POSTGRES").await.expect("set SHELFCAST_REPLICAS_POSTGRES");
    let pg: url_parts::Parts = url_parts::parse(&database);
    let proxy = Cut::start(pg.addr).await;
    let through = pg.with_addr(proxy.addr);
    let cluster = Cluster::start_on(2, &["--lease", "2s"], database, |i, url| if i == 0 { through.clone() } else { url.to_string() });
    cluster.balanced(&[0, 1], Duration::from_secs(30)).await;
    let sku = cluster.sku_owned_by(0, "FENCED").await;
    let (old, new) = (cluster.api(0), cluster.api(1));
    assert_eq!(old.post_events(TOKEN, &json!([ev("stock", "receipt", &sku, "berlin", 3)])).await.0, 200);
    until_position(&new, &sku, "berlin", (3, 0)).await;

    proxy.cut();
    cluster.balanced(&[1], Duration::from_secs(30)).await;
    let (status, body) = new.reserve(&sku, "berlin", 3, "fenced-key-the-new-owner").await;
    assert_eq!(status, 201, "the new owner sells the last units: {body}");
    proxy.restore();

    // The old owner still holds the stock as free in memory; its commit would oversell. (Its
    // first write may find its connection gone: 503, and the client sends it again.)
    let (mut status, mut body) = (503, Value::Null);
    for _ in 0..50 {
        (status, body) = old.reserve(&sku, "berlin", 1, "fenced-key-the-old-owner").await;
        if status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("insufficient_stock")), "{body}");
    let (status, body) = old.post_events(TOKEN, &json!([ev("after", "receipt", &sku, "berlin", 1)])).await;
    assert_eq!(status, 200, "{body}");
    drop(proxy);
    for api in [&old, &new] {
        until_position(api, &sku, "berlin", (4, 3)).await;
    }
    let db = cluster.db().await;
    let held: i64 = db
        .query_one("SELECT coalesce(sum(qty), 0)::bigint FROM reservations WHERE sku = $1 AND status = 'held'", &[&sku])
        .await
        .unwrap()
        .get(0);
    assert_eq!(held, 3, "nothing oversold");
    let metrics = old.http.get(old.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let fenced = metrics.lines().find(|l| l.starts_with("shelfcast_commit_failures_total{kind=\"fenced\"}")).unwrap_or_default();
    eprintln!("the old owner: {fenced}");
}

/// Enough of a PostgreSQL URL to send it through a proxy.
mod url_parts {
    pub struct Parts {
        pub addr: std::net::SocketAddr,
        before: String,
        after: String,
    }

    pub fn parse(url: &str) -> Parts {
        let at = url.rfind('@').unwrap() + 1;
        let end = at + url[at..].find('/').unwrap();
        let host = &url[at..end];
        let addr = std::net::ToSocketAddrs::to_socket_addrs(host).unwrap().next().unwrap();
        Parts { addr, before: url[..at].to_string(), after: url[end..].to_string() }
    }

    impl Parts {
        pub fn with_addr(&self, addr: std::net::SocketAddr) -> String {
            format!("{}{addr}{}", self.before, self.after)
        }
    }
}

/// A rolling restart of all three replicas under load (each taken out of the load balancer,
/// stopped with SIGTERM, replaced by a new one): every request is answered with success, sold
/// out, or 503 with `Retry-After`; nothing acknowledged is lost or applied twice, nothing oversold.
#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_restart_under_load_loses_nothing() {
    let mut cluster = Cluster::start(3).await;
    cluster.balanced(&[0, 1, 2], Duration::from_secs(30)).await;
    let mut skus = Vec::new();
    for i in 0..3 {
        skus.push(cluster.sku_owned_by(i, "ROLL").await);
    }
    let live = Arc::new(Mutex::new(cluster.replicas.iter().map(|r| r.url.clone()).collect::<Vec<_>>()));
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(Acknowledged::default()));
    let writers: Vec<_> = (0..4).map(|w| tokio::spawn(write_until(live.clone(), w, skus.clone(), stop.clone(), acked.clone()))).collect();
    let database = cluster.database.clone();
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut leaving = cluster.replicas.remove(0);
        live.lock().unwrap().retain(|u| *u != leaving.url);
        leaving.signal("TERM");
        assert!(leaving.child.wait().unwrap().success(), "replica stopped cleanly");
        cluster.add(3 + round, &database, &[]);
        live.lock().unwrap().push(cluster.replicas.last().unwrap().url.clone());
        let members: Vec<usize> = (round + 1..round + 4).collect();
        cluster.balanced(&members, Duration::from_secs(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(acked.events.lock().unwrap().len() > 20, "the writers wrote");
    check_ledger(&cluster, &skus, &acked).await;
}

/// An owner told to stop answers the writes already forwarded to it before it goes, and NATS
/// sends it no more: no sender waits out the 2 s and sends its write again. The owner reaches
/// PostgreSQL through a link that delays each direction by 20 ms, so its commits are slow and
/// shoppers on the other replica always have holds waiting on it when it is stopped.
#[tokio::test(flavor = "multi_thread")]
async fn an_owner_stopping_answers_the_writes_forwarded_to_it() {
    let database = fresh_database_at("SHELFCAST_REPLICAS_POSTGRES").await.expect("set SHELFCAST_REPLICAS_POSTGRES");
    let pg: url_parts::Parts = url_parts::parse(&database);
    let link = Proxy::start_with(pg.addr, Link { delay: Duration::from_millis(20), hold_reads: Duration::ZERO }).await;
    let through = pg.with_addr(link.addr);
    let mut cluster = Cluster::start_on(2, &[], database, |i, url| if i == 0 { through.clone() } else { url.to_string() });
    cluster.balanced(&[0, 1], Duration::from_secs(30)).await;
    let sku = cluster.sku_owned_by(0, "DRAIN").await;
    let (status, body) = cluster.api(1).post_events(TOKEN, &json!([ev("drain-stock", "receipt", &sku, "berlin", 1_000_000)])).await;
    assert_eq!(status, 200, "{body}");
    let stop = Arc::new(AtomicBool::new(false));
    let shoppers: Vec<_> = (0..8)
        .map(|s| {
            let (api, sku, stop) = (cluster.api(1), sku.clone(), stop.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    statuses.push(api.reserve(&sku, "berlin", 1, &format!("drain-shopper-{s:02}-{n:08}")).await.0);
                }
                statuses
            })
        })
        .collect();
    let sender = cluster.api(1);
    until("holds forwarded to the owner", 30, || async { metric(&sender, "shelfcast_forwarded_total{outcome=\"answered\"}").await >= 20 })
        .await;
    let leaving = cluster.replicas.remove(0);
    leaving.signal("TERM");
    let mut leaving = leaving;
    assert!(leaving.child.wait().unwrap().success(), "the owner stops cleanly");
    cluster.balanced(&[1], Duration::from_secs(30)).await;
    let (status, body) = sender.reserve(&sku, "berlin", 1, "drain-the-last-hold").await;
    assert_eq!(status, 201, "the partition's new owner sells: {body}");
    stop.store(true, Ordering::Relaxed);
    for s in shoppers {
        for status in s.await.unwrap() {
            assert!(matches!(status, 201 | 503), "a shopper was answered {status} (200: its hold, sent again after no answer)");
        }
    }
    assert_eq!(metric(&sender, "shelfcast_forwarded_total{outcome=\"unanswered\"}").await, 0, "a forwarded hold went unanswered");
}

/// A stream resumed on another replica while its SKU's partition moves (its owner stops and
/// hands it over, writes going on through a third replica) misses nothing: versions never go
/// back across the resume, and the reader ends at the ledger's state.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_resumes_gapless_while_its_partition_moves() {
    let mut cluster = Cluster::start(3).await;
    cluster.balanced(&[0, 1, 2], Duration::from_secs(30)).await;
    let sku = cluster.sku_owned_by(2, "MOVING").await;
    let query = format!("sku={sku}&location=berlin");
    let writes = {
        let api = cluster.api(1);
        let sku = sku.clone();
        tokio::spawn(async move {
            let mut acked = 0;
            for n in 0..120 {
                let body = json!([ev(&format!("m-{n}"), "receipt", &sku, "berlin", 1)]);
                loop {
                    match api.post_events(TOKEN, &body).await.0 {
                        200 => break,
                        503 => tokio::time::sleep(Duration::from_millis(20)).await,
                        other => panic!("write answered {other}"),
                    }
                }
                acked += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            acked
        })
    };
    let (_, mut stream) = cluster.api(0).stream(&query, None).await;
    let mut last = 0;
    while last < 20 {
        last = next_position(&mut stream, "before the move").await["version"].as_u64().unwrap();
    }
    drop(stream);
    let mut leaving = cluster.replicas.remove(2);
    leaving.signal("TERM");
    assert!(leaving.child.wait().unwrap().success());
    let (_, mut stream) = cluster.api(1).stream(&query, Some(&last.to_string())).await;
    let acked = writes.await.unwrap();
    let mut seen = HashMap::new();
    quiet_then_collect(&mut stream, &mut seen).await;
    let (on_hand, _, _, version) = cluster.api(0).position(&sku, "berlin").await;
    assert_eq!(on_hand, acked as i64, "every write applied once");
    assert_eq!(seen.get(&sku).copied(), Some((version, on_hand)), "the resumed stream ends at the ledger's state");
    assert!(version > last, "the resume sent what changed after {last}");
}

/// An edge node follows its location on a partitioned hub: the location's SKUs live in many
/// partitions, so the edge's cursor carries each one's version. It learns every change made
/// through any replica, also after its first answer (the cursor goes on where it stopped).
#[tokio::test]
async fn an_edge_follows_its_location_over_every_partition() {
    let cluster = Cluster::start(3).await;
    let skus: Vec<String> = (0..24).map(|i| format!("EDGE-{i}")).collect();
    let parts: std::collections::HashSet<u32> = skus.iter().map(|s| partition_of(s, 256)).collect();
    assert!(parts.len() > 10, "the SKUs spread over partitions: {}", parts.len());
    let (_dir, data) = data_dir();
    let edge = ChildHub::spawn_with(
        &["edge", "--location", "berlin", "--hub", &cluster.replicas[0].url, "--token", TOKEN, "--listen", "127.0.0.1:0", "--data"],
        &data,
        &[],
    );
    let edge_api = edge.client();
    let mut sent_before = 0;
    for round in 1..=2i64 {
        for (i, sku) in skus.iter().enumerate() {
            let body = json!([ev(&format!("hub-{round}-{sku}"), "receipt", sku, "berlin", i as i64 + 1)]);
            assert_eq!(cluster.api(1 + i % 2).post_events(TOKEN, &body).await.0, 200);
        }
        for (i, sku) in skus.iter().enumerate() {
            until_position(&edge_api, sku, "berlin", (round * (i as i64 + 1), 0)).await;
        }
        if round == 1 {
            sent_before = metric(&cluster.replicas[0].client(), "shelfcast_edge_positions_sent_total").await;
        }
    }
    // The edge went on from its cursor: round 2 cost about its 24 changes, not the location's
    // every position at every poll (which an edge starting over is sent, poll after poll).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent = metric(&cluster.replicas[0].client(), "shelfcast_edge_positions_sent_total").await - sent_before;
    assert!((24..=48).contains(&sent), "positions sent to the edge for 24 changes: {sent}");
    let (_, sync) = edge_api.get_json("/v1/sync").await;
    assert_eq!(sync["online"], true, "{sync}");
    edge.kill9();
}

/// A gauge of a replica's `/metrics`.
/// One series of `api`'s `/metrics` (a gauge or a counter without labels).
async fn metric(api: &Api, name: &str) -> i64 {
    let text = api.http.get(api.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(' ')).unwrap_or_else(|| panic!("no {name}"));
    line[name.len()..].trim().parse().unwrap()
}

/// Each replica holds in memory the partitions it owns and those its readers need, not the
/// whole catalogue: positions of other partitions are loaded when read or watched, followed
/// while a stream watches them, and let go when nothing needs them any more.
#[tokio::test]
async fn a_replica_holds_its_own_partitions_and_what_its_readers_need() {
    let cluster = Cluster::start_with(3, &["--follow-idle", "1s"]).await;
    cluster.balanced(&[0, 1, 2], Duration::from_secs(30)).await;
    let skus: Vec<String> = (0..300).map(|i| format!("HELD-{i}")).collect();
    for chunk in skus.chunks(100) {
        let body: Vec<Value> = chunk.iter().map(|s| ev(&format!("held-{s}"), "receipt", s, "berlin", 5)).collect();
        assert_eq!(cluster.api(0).post_events(TOKEN, &Value::Array(body)).await.0, 200);
    }
    let owners = cluster.owners().await;
    let owned_by = |i: usize| skus.iter().filter(|s| owners[partition_of(s, 256) as usize] == Some(i)).count() as i64;
    // Nothing read through the replicas yet: each holds exactly the positions it owns.
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in 0..3 {
        loop {
            let held = metric(&cluster.api(i), "shelfcast_positions").await;
            if held == owned_by(i) {
                break;
            }
            assert!(Instant::now() < deadline, "replica {i} holds {held} positions, owns {}", owned_by(i));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(owned_by(i) < 150, "a share, not the catalogue: {}", owned_by(i));
    }

    // A read of another replica's SKU loads its partition; a stream keeps it followed.
    let theirs = cluster.sku_owned_by(1, "HELD-ELSEWHERE").await;
    let api = cluster.api(0);
    let elsewhere = skus.iter().find(|s| owners[partition_of(s, 256) as usize] == Some(2)).unwrap();
    assert_eq!(api.position(elsewhere, "berlin").await.0, 5, "a position of any partition is read right");
    let query = format!("sku={theirs}&location=berlin");
    let (_, mut stream) = api.stream(&query, None).await;
    assert_eq!(next_position(&mut stream, "the first state").await["on_hand"], 0);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let beside = skus.iter().filter(|s| partition_of(s, 256) == partition_of(&theirs, 256)).count() as i64;
    assert_eq!(metric(&api, "shelfcast_positions").await, owned_by(0) + beside, "the watched partition stays, the one read is let go");
    let body = json!([ev("elsewhere-1", "receipt", &theirs, "berlin", 7)]);
    assert_eq!(cluster.api(2).post_events(TOKEN, &body).await.0, 200);
    assert_eq!(next_position(&mut stream, "a change made elsewhere").await["on_hand"], 7);

    // Nothing needs them any more: let go within the idle time (and a tick).
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&api, "shelfcast_positions").await != owned_by(0) {
        assert!(Instant::now() < deadline, "partitions nobody needs are let go");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(api.position(&theirs, "berlin").await.0, 7, "and loaded again when read");
}

/// A replica told to stop while NATS is away still hands its partitions over and exits: saying
/// so on NATS is not waited for.
#[tokio::test]
async fn a_replica_stops_while_nats_is_away() {
    let mut cluster = Cluster::start(2).await;
    cluster.balanced(&[0, 1], Duration::from_secs(30)).await;
    cluster.nats.stop();
    let mut leaving = cluster.replicas.remove(0);
    leaving.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = leaving.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "a replica stopping with NATS away did not exit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}");
    cluster.balanced(&[1], Duration::from_secs(30)).await;
}

/// Webhooks on three replicas: a subscription made on one is matched by every replica's
/// commits, and each delivery is sent once, though every replica sends due deliveries (each
/// claims its own with `FOR UPDATE SKIP LOCKED`).
#[tokio::test(flavor = "multi_thread")]
async fn every_replica_delivers_its_commits_webhooks_once() {
    const ADMIN: &str = "replica-admin";
    let cluster = Cluster::start_with(3, &["--admin-token", ADMIN, "--allow-private-webhooks", "--webhook-backoff", "100ms"]).await;
    let receiver = Receiver::start().await;
    // Some refusals first, so that tries of the same deliveries overlap across replicas.
    receiver.fail.store(10, Ordering::SeqCst);
    let body = json!({"url": receiver.url, "events": ["position.back_in_stock"]}).to_string();
    let headers = [("authorization", format!("Bearer {ADMIN}")), ("content-type", "application/json".into())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, _, b) = cluster.api(0).raw(reqwest::Method::POST, "/admin/webhooks", &headers, body).await;
    assert_eq!(s, 201, "{b}");
    for i in 0..3 {
        let api = cluster.api(i);
        until(&format!("replica {i} to know the subscription"), 10, || async {
            let (_, _, b) = api.raw(reqwest::Method::GET, "/admin/status", &headers[..1], "").await;
            serde_json::from_str::<Value>(&b).is_ok_and(|v| v["webhooks"] == 1)
        })
        .await;
    }
    for i in 0..60 {
        let batch = json!([ev(&format!("wh-{i}"), "receipt", &format!("WH-{i}"), "berlin", 1)]);
        assert_eq!(cluster.api(i).post_events(TOKEN, &batch).await.0, 200);
    }
    until("60 deliveries", 30, || async { receiver.types().len() >= 60 }).await;
    // Nothing is sent again once taken (a moment for a late duplicate to show).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = receiver.all();
    let ids: std::collections::HashSet<&str> = all.iter().map(|r| r.id.as_str()).collect();
    let skus: std::collections::HashSet<String> = all.iter().map(|r| r.json()["data"]["sku"].as_str().unwrap().to_owned()).collect();
    assert_eq!((ids.len(), skus.len()), (60, 60), "one delivery per position");
    assert_eq!(all.len(), 60 + 10, "each taken once, after the 10 refused tries");
}
