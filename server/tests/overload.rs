//! Overload: per-client rate limits on reservations and streams (429 JSON with Retry-After), the
//! cap on open streams (503 JSON with Retry-After), and bounded memory for streams whose
//! clients stop reading.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use shelfcast_server::Rate;
use tokio::io::AsyncWriteExt;

fn body_json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

async fn reserve_raw(api: &Api, key: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, String) {
    let body = json!({"sku": "SKU-1", "location": "berlin", "qty": 1, "key": key}).to_string();
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    api.raw(Method::POST, "/v1/reservations", &h, body).await
}

fn assert_limited(status: u16, headers: &reqwest::header::HeaderMap, body: &str, code: u16, error: &str) {
    assert_eq!(status, code, "{body}");
    assert_eq!(body_json(body)["error"]["code"], error, "{body}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
}

#[tokio::test]
async fn reservations_are_limited_per_client_and_a_refusal_changes_nothing() {
    let hub = TestHub::start_with(|c| c.limits.reservations = Rate { per_second: 1, burst: 5 }).await;
    let api = hub.client();
    api.post_events(TOKEN, &json!([ev("r", "receipt", "SKU-1", "berlin", 100)])).await;
    for i in 0..5 {
        let (status, _, body) = reserve_raw(&api, &format!("burst-key-{i:08}"), &[]).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, headers, body) = reserve_raw(&api, "one-too-many-0000", &[]).await;
    assert_limited(status, &headers, &body, 429, "rate_limited");
    let (_, _, available, _) = api.position("SKU-1", "berlin").await;
    assert_eq!(available, 95, "the refused request reserved nothing");
    // The GETs of a holder count too (one limit per client for all reservation routes).
    let (status, _, _) = api.raw(Method::GET, "/v1/reservations/x", &[], "").await;
    assert_eq!(status, 429);

    // An invented X-Forwarded-For does not dodge the limit…
    let (status, _, _) = reserve_raw(&api, "forwarded-key-0000", &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_eq!(status, 429, "X-Forwarded-For is not trusted unless configured");
    // …but another shopper (another address) is not held back.
    let (status, _, body) = reserve_raw(&hub.client_from("127.0.0.2"), "other-shopper-000", &[]).await;
    assert_eq!(status, 201, "{body}");
    // Streams and reads have their own limits.
    assert_eq!(api.get_json("/v1/availability?sku=SKU-1&location=berlin").await.0, 200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_client() {
    let hub = TestHub::start_with(|c| {
        c.limits.reservations = Rate { per_second: 1, burst: 1 };
        c.limits.trust_forwarded_for = true;
    })
    .await;
    let api = hub.client();
    api.post_events(TOKEN, &json!([ev("r", "receipt", "SKU-1", "berlin", 100)])).await;
    let shopper = [("x-forwarded-for", "198.51.100.1, 203.0.113.7")];
    assert_eq!(reserve_raw(&api, "proxied-key-00001", &shopper).await.0, 201);
    assert_eq!(reserve_raw(&api, "proxied-key-00002", &shopper).await.0, 429);
    let other = [("x-forwarded-for", "198.51.100.1, 203.0.113.8")];
    assert_eq!(reserve_raw(&api, "proxied-key-00003", &other).await.0, 201, "the last entry is the client");
}

#[tokio::test]
async fn opening_streams_is_limited_per_client() {
    let hub = TestHub::start_with(|c| c.limits.streams = Rate { per_second: 1, burst: 2 }).await;
    let api = hub.client();
    let _a = api.stream("sku=SKU-1&location=berlin", None).await;
    let _b = api.stream("sku=SKU-1&location=berlin", None).await;
    let (status, headers, body) = api.raw(Method::GET, "/v1/stream?sku=SKU-1&location=berlin", &[], "").await;
    assert_limited(status, &headers, &body, 429, "rate_limited");
    let _c = hub.client_from("127.0.0.3").stream("sku=SKU-1&location=berlin", None).await;
}

#[tokio::test]
async fn a_hub_holds_at_most_its_maximum_of_streams() {
    let hub = TestHub::start_with(|c| c.limits.max_streams = 3).await;
    let api = hub.client();
    let a = api.stream("sku=SKU-1&location=berlin", None).await;
    let _b = api.stream("sku=SKU-1&location=hamburg", None).await;
    let _c = api.stream("sku=SKU-2&location=berlin", None).await;
    let (status, headers, body) = api.raw(Method::GET, "/v1/stream?sku=SKU-1&location=berlin", &[], "").await;
    assert_limited(status, &headers, &body, 503, "too_many_streams");
    // Reads and writes go on.
    assert_eq!(api.get_json("/v1/availability?sku=SKU-1&location=berlin").await.0, 200);
    assert_eq!(api.post_events(TOKEN, &json!([ev("w", "receipt", "SKU-1", "berlin", 1)])).await.0, 200);
    // One closes: a new one is let in.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, _) = api.raw(Method::HEAD, "/v1/stream?sku=SKU-1&location=berlin", &[], "").await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "a freed slot is never reused: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// 200 clients that open a stream of 50 positions and then never read. Every one of them is
/// 1,000 events (about 200 KB) behind by the end. A hub that queued events per client would grow
/// by tens of MB; this one re-reads current state when a client can take more, so it grows by
/// (almost) nothing, other clients stay live, and a stalled client that reads again gets the
/// latest state of every position.
#[tokio::test]
async fn clients_that_stop_reading_cost_bounded_memory() {
    const STALLED: usize = 200;
    const POSITIONS: usize = 50;
    const ROUNDS: usize = 200;
    let (_dir, data) = data_dir();
    let hub = ChildHub::spawn(&data, &["--stream-rate", "0"]);
    let api = hub.client();
    let positions: Vec<String> = (0..POSITIONS).map(|i| format!("SLOW-CONSUMER-SKU-{i:04}@berlin")).collect();
    let query = format!("positions={}", positions.join(","));
    let addr = hub.url.strip_prefix("http://").unwrap().to_string();

    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        conn.write_all(format!("GET /v1/stream?{query} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n").as_bytes())
            .await
            .unwrap();
        stalled.push(conn);
    }
    let (_, mut live) = api.stream(&query, None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(hub.pid());

    let mut n = 0;
    for round in 0..ROUNDS {
        let batch: Vec<Value> = positions
            .iter()
            .map(|p| {
                n += 1;
                let sku = p.split('@').next().unwrap();
                ev(&format!("slow-{n}"), "receipt", sku, "berlin", 1 + round as i64 % 3)
            })
            .collect();
        assert_eq!(api.post_events(TOKEN, &Value::Array(batch)).await.0, 200);
    }
    let (_, _, _, last_version) = api.position("SLOW-CONSUMER-SKU-0049", "berlin").await;
    // The reading client keeps up: it sees the last change.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = tokio::time::timeout_at(deadline.into(), next_position(&mut live, "a live change")).await.expect("live client stalled");
        if p["version"].as_u64().unwrap() >= last_version {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = rss_kib(hub.pid());
    let growth = after.saturating_sub(before);
    eprintln!("hub RSS {before} KiB -> {after} KiB with {STALLED} stalled streams ({ROUNDS} rounds × {POSITIONS} positions)");
    // Queued events would be ~200 KB per stalled client, 40 MB in all; allow 16 MB for allocator noise.
    assert!(growth < 16 * 1024, "the hub grew by {growth} KiB for clients that do not read");

    // A stalled client that reads again ends with the latest state, without the whole backlog.
    let conn = stalled.pop().unwrap();
    let mut text = String::new();
    let mut reader = tokio::io::BufReader::new(conn);
    let want = format!("\"version\":{last_version}}}");
    let mut received = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut line = String::new();
    while !line.contains(&want) {
        line.clear();
        let read = tokio::time::timeout_at(deadline.into(), tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut line)).await;
        assert!(
            matches!(read, Ok(Ok(n)) if n > 0),
            "the stalled stream never caught up to {want}: {read:?}, {received} events read, ending in {text}",
        );
        received += usize::from(line.starts_with("event: position"));
        text = line.clone();
    }
    eprintln!("a stalled client that read again received {received} events for {} changes", ROUNDS * POSITIONS);
    assert!(received < ROUNDS * POSITIONS, "changes coalesce for a client that fell behind");
    hub.kill9();
}
