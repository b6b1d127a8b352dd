//! What the hub acknowledged survives `kill -9`: a real child process, a real SQLite file.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn an_acknowledged_batch_survives_kill_9_right_after_the_answer() {
    let (_tmp, data) = data_dir();
    let hub = ChildHub::spawn(&data, &[]);
    let api = hub.client();
    let batch: Vec<Value> = (0..1_000).map(|i| ev(&format!("k9:{i}"), "receipt", &format!("S{}", i % 10), "berlin", 1)).collect();
    let (s, b) = api.post_events(TOKEN, &Value::Array(batch.clone())).await;
    assert_eq!((s, b["applied"].as_u64()), (200, Some(1_000)));
    let (s, r) = api.reserve("S0", "berlin", 3, "durable-reservation-key").await;
    assert_eq!(s, 201);
    hub.kill9();

    let hub = ChildHub::spawn(&data, &[]);
    let api = hub.client();
    for i in 0..10 {
        let (on_hand, reserved, _, _) = api.position(&format!("S{i}"), "berlin").await;
        assert_eq!((on_hand, reserved), (100, if i == 0 { 3 } else { 0 }));
    }
    let (_, b) = api.post_events(TOKEN, &Value::Array(batch)).await;
    assert_eq!((b["applied"].as_u64(), b["duplicates"].as_u64()), (Some(0), Some(1_000)), "none twice");
    let (s, again) = api.reserve("S0", "berlin", 3, "durable-reservation-key").await;
    assert_eq!((s, &again["id"], &again["token"]), (200, &r["id"], &r["token"]));
}

/// Writers keep posting while the hub is killed at an arbitrary moment. Afterwards, every event
/// that was acknowledged is there (a resend is a duplicate), and after resending everything
/// each count is exactly the number of distinct events: nothing lost, nothing twice.
#[tokio::test]
async fn kill_9_under_concurrent_load_loses_nothing_acknowledged() {
    for round in 0..3u64 {
        let (_tmp, data) = data_dir();
        let hub = ChildHub::spawn(&data, &[]);
        let api = hub.client();
        let acked = Arc::new(Mutex::new(Vec::<Value>::new()));
        let sent = Arc::new(Mutex::new(Vec::<Value>::new()));
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let (api, acked, sent) = (api.clone(), acked.clone(), sent.clone());
                tokio::spawn(async move {
                    for n in 0.. {
                        let batch: Vec<Value> =
                            (0..20).map(|i| ev(&format!("r{round}:w{w}:{n}:{i}"), "receipt", &format!("W{w}"), "hamburg", 1)).collect();
                        sent.lock().unwrap().extend(batch.iter().cloned());
                        let r = api.http.post(api.url("/v1/events")).bearer_auth(TOKEN).json(&batch).send().await;
                        match r {
                            Ok(r) if r.status() == 200 => acked.lock().unwrap().extend(batch),
                            _ => break,
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(150 + round * 97)).await;
        hub.kill9();
        for w in writers {
            w.await.unwrap();
        }
        let acked = acked.lock().unwrap().clone();
        let sent = sent.lock().unwrap().clone();
        assert!(!acked.is_empty(), "round {round} acknowledged something before the kill");

        let hub = ChildHub::spawn(&data, &[]);
        let api = hub.client();
        for chunk in acked.chunks(5_000) {
            let (_, b) = api.post_events(TOKEN, &Value::Array(chunk.to_vec())).await;
            assert_eq!(b["applied"], 0, "round {round}: an acknowledged event was lost");
        }
        for chunk in sent.chunks(5_000) {
            api.post_events(TOKEN, &Value::Array(chunk.to_vec())).await;
        }
        for w in 0..8 {
            let distinct = sent.iter().filter(|e| e["sku"] == json!(format!("W{w}"))).count() as i64;
            assert_eq!(api.position(&format!("W{w}"), "hamburg").await.0, distinct, "round {round}, writer {w}");
        }
        hub.kill9();
    }
}

/// The positions table is written only now and then (`--positions-every`); a kill -9 between
/// two writes leaves committed changes it does not hold. The next start applies those events
/// again by the rules they came in by (every kind of event, and a pickup), and, since the
/// versions they were given are lost with the process, gives every position a new version
/// above them: a stream resuming from the last version it saw gets each position again, with
/// the counts as they were. After a second kill -9 with nothing new, the versions stay as they
/// were renumbered: the same stream resumes with nothing to send.
#[tokio::test]
async fn positions_between_two_writes_of_the_table_survive_kill_9_and_streams_resume() {
    let (_tmp, data) = data_dir();
    let rarely = ["--positions-every", "1h"];
    let hub = ChildHub::spawn(&data, &rarely);
    let api = hub.client();
    let batch = json!([
        ev("pt:1", "receipt", "P", "berlin", 20),
        ev("pt:2", "sale", "P", "berlin", 3),
        ev("pt:3", "return", "P", "berlin", 1),
        ev("pt:4", "adjust", "P", "berlin", -2),
        ev("pt:5", "count", "Q", "berlin", 9),
        ev("pt:6", "sale", "Q", "berlin", 4),
    ]);
    let (s, b) = api.post_events(TOKEN, &batch).await;
    assert_eq!((s, b["applied"].as_u64()), (200, Some(6)));
    let (s, picked) = api.reserve("P", "berlin", 5, "picked-up-key-00000001").await;
    assert_eq!(s, 201);
    let path = format!("/v1/reservations/{}/fulfil", picked["id"].as_str().unwrap());
    let (s, _, b) = api.raw(reqwest::Method::POST, &path, &[("authorization", &format!("Bearer {TOKEN}"))], "").await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = api.reserve("Q", "berlin", 2, "still-held-key-0000001").await;
    assert_eq!(s, 201);
    let expected = [("P", (11, 0, 11)), ("Q", (5, 2, 3))];
    let mut last = 0;
    for (sku, counts) in expected {
        let (on_hand, reserved, available, version) = api.position(sku, "berlin").await;
        assert_eq!((on_hand, reserved, available), counts, "{sku} before the kill");
        last = last.max(version);
    }
    hub.kill9();

    let hub = ChildHub::spawn(&data, &rarely);
    let api = hub.client();
    for (sku, counts) in expected {
        let (on_hand, reserved, available, _) = api.position(sku, "berlin").await;
        assert_eq!((on_hand, reserved, available), counts, "{sku} after the kill, from the ledger");
    }
    let (_, mut events) = api.stream("positions=P@berlin,Q@berlin", Some(&last.to_string())).await;
    let mut again = Vec::new();
    for _ in 0..2 {
        let p = next_position(&mut events, "a position sent again").await;
        assert!(p["version"].as_u64().unwrap() > last, "a version above any given out before: {p}");
        again.push((p["sku"].as_str().unwrap().to_string(), p["on_hand"].as_i64().unwrap(), p["version"].as_u64().unwrap()));
    }
    again.sort();
    assert_eq!(again.iter().map(|(s, n, _)| (s.as_str(), *n)).collect::<Vec<_>>(), [("P", 11), ("Q", 5)]);
    let resumed = again.iter().map(|(_, _, v)| *v).max().unwrap();
    drop(events);
    hub.kill9();

    let hub = ChildHub::spawn(&data, &rarely);
    let api = hub.client();
    let (_, mut events) = api.stream("positions=P@berlin,Q@berlin", Some(&resumed.to_string())).await;
    quiet(&mut events, 300).await;
    let (s, b) = api.post_events(TOKEN, &batch).await;
    assert_eq!((s, b["applied"].as_u64(), b["duplicates"].as_u64()), (200, Some(0), Some(6)), "none twice");
    assert_eq!(api.position("P", "berlin").await.0, 11);
}

/// Reads a stream's positions into a channel until the stream ends or breaks (its hub stopped).
fn follow(api: &Api, query: &str, last_event_id: Option<String>) -> tokio::sync::mpsc::UnboundedReceiver<(String, Value)> {
    use eventsource_stream::Eventsource;
    use futures_util::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut request = reqwest::Client::new().get(api.url(&format!("/v1/stream?{query}")));
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    tokio::spawn(async move {
        // A stream that cannot open (its hub already stopped) is one that ended.
        let Ok(answer) = request.send().await else { return };
        assert_eq!(answer.status(), 200);
        let mut events = answer.bytes_stream().eventsource();
        while let Some(Ok(e)) = events.next().await {
            if e.event == "position" && tx.send((e.id, serde_json::from_str(&e.data).unwrap())).is_err() {
                return;
            }
        }
    });
    rx
}

/// A hub on a large ledger (100,000 positions) restarts while a shopper's stream is open: once
/// stopped (SIGTERM), once killed (-9). Each time the stream, resumed on the new process with
/// the last id it got, brings the shopper's view to exactly the ledger's: the sales and the
/// hold made just before the stop and the sale after the start, none missed, none older than
/// what it had.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_resumes_with_nothing_missed_across_restarts_on_a_large_ledger() {
    let (_tmp, data) = data_dir();
    let mut hub = ChildHub::spawn(&data, &[]);
    for chunk in 0..10 {
        let batch: Vec<Value> = (chunk * 10_000..(chunk + 1) * 10_000)
            .map(|i| ev(&format!("load:{i}"), "receipt", &format!("C{:04}", i / 50), &format!("store{:02}", i % 50), 20))
            .collect();
        let (s, b) = hub.client().post_events(TOKEN, &Value::Array(batch)).await;
        assert_eq!((s, b["applied"].as_u64()), (200, Some(10_000)));
    }
    let stores = ["store00", "store01", "store02", "store03", "store04"];
    let query = format!("sku=C0007&location={}", stores.join(","));
    let mut view: std::collections::HashMap<String, (u64, i64)> = Default::default();
    let mut last_id = None;
    let mut sale = 0;
    for signal in ["TERM", "KILL"] {
        let api = hub.client();
        let mut stream = follow(&api, &query, last_id.clone());
        // The shopper's page is current before the stop...
        let mut sales = Vec::new();
        for store in &stores[..3] {
            sale += 1;
            sales.push(ev(&format!("sale:{sale}"), "sale", "C0007", store, 1));
        }
        let (s, _) = api.post_events(TOKEN, &Value::Array(sales)).await;
        assert_eq!(s, 200);
        // A shopper's hold changes a position no event touches since the last write of the
        // positions table.
        let (s, _) = api.reserve("C0007", "store03", 1, &format!("hold-before-{signal}-0123456789")).await;
        assert_eq!(s, 201);
        // ... then the hub goes, whatever the stream had delivered of those sales.
        if signal == "KILL" {
            hub.child.kill().unwrap();
        } else {
            hub.signal(signal);
        }
        hub.child.wait().unwrap();
        while let Some((id, p)) = stream.recv().await {
            let version = p["version"].as_u64().unwrap();
            let seen = view.entry(p["location"].as_str().unwrap().to_string()).or_insert((0, 0));
            assert!(version > seen.0, "a position never goes back: {p} after version {}", seen.0);
            *seen = (version, p["available"].as_i64().unwrap());
            last_id = Some(id);
        }
        hub = ChildHub::spawn(&data, &[]);
        let api = hub.client();
        sale += 1;
        let (s, _) = api.post_events(TOKEN, &json!([ev(&format!("sale:{sale}"), "sale", "C0007", "store04", 1)])).await;
        assert_eq!(s, 200);
        let mut ledger = std::collections::HashMap::new();
        for store in &stores {
            let (_, _, available, version) = api.position("C0007", store).await;
            ledger.insert(store.to_string(), (version, available));
        }
        let mut stream = follow(&api, &query, last_id.clone());
        while stores.iter().any(|s| view.get(*s) != ledger.get(*s)) {
            let (id, p) = tokio::time::timeout(Duration::from_secs(10), stream.recv())
                .await
                .unwrap_or_else(|_| panic!("after {signal}: the stream stopped short of the ledger: {view:?} vs {ledger:?}"))
                .expect("the stream stays open");
            let version = p["version"].as_u64().unwrap();
            let seen = view.entry(p["location"].as_str().unwrap().to_string()).or_insert((0, 0));
            assert!(version > seen.0, "after {signal}: a position never goes back: {p} after version {}", seen.0);
            *seen = (version, p["available"].as_i64().unwrap());
            last_id = Some(id);
        }
    }
    let availability: Vec<i64> = stores.iter().map(|s| view[*s].1).collect();
    assert_eq!(
        availability,
        vec![18, 18, 18, 18, 18],
        "two sales at each of the first three stores, two holds at the fourth, two sales at the fifth"
    );
}
