//! `GET /v1/stream` read back with a real SSE client.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::json;

#[tokio::test]
async fn initial_positions_in_version_order_then_each_change() {
    let hub = TestHub::start().await;
    let api = hub.client();
    api.post_events(TOKEN, &json!([ev("a", "receipt", "S", "hamburg", 5)])).await;
    api.post_events(TOKEN, &json!([ev("b", "receipt", "S", "berlin", 9)])).await;

    let (headers, mut events) = api.stream("sku=S&location=berlin,hamburg,munich", None).await;
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert!(headers.get("content-encoding").is_none());

    // (`retry: 2000` carries no data, so SSE clients apply it without an event: the heartbeat
    // test reads the raw bytes to check it.)
    let mut got = Vec::new();
    for _ in 0..3 {
        let p = next_position(&mut events, "initial positions").await;
        got.push((p["location"].as_str().unwrap().to_string(), p["version"].as_u64().unwrap(), p["on_hand"].as_i64().unwrap()));
    }
    assert_eq!(got, vec![("munich".into(), 0, 0), ("hamburg".into(), 1, 5), ("berlin".into(), 2, 9)]);

    api.post_events(TOKEN, &json!([ev("c", "sale", "S", "berlin", 2)])).await;
    let p = next_position(&mut events, "the sale").await;
    assert_eq!(
        (p["location"].as_str(), p["on_hand"].as_i64(), p["available"].as_i64(), p["status"].as_str()),
        (Some("berlin"), Some(7), Some(7), Some("in_stock"))
    );
    assert_eq!(p["version"], 3);

    // A change at a position nobody on this stream watches is not sent.
    api.post_events(TOKEN, &json!([ev("d", "sale", "OTHER", "berlin", 1)])).await;
    quiet(&mut events, 300).await;
}

#[tokio::test]
async fn positions_form_covers_several_skus_on_one_stream() {
    let hub = TestHub::start().await;
    let api = hub.client();
    let (_, mut events) = api.stream("positions=A@berlin,B@hamburg", None).await;
    next_position(&mut events, "A").await;
    next_position(&mut events, "B").await;
    api.post_events(TOKEN, &json!([ev("x", "receipt", "B", "hamburg", 2), ev("y", "receipt", "A", "berlin", 1)])).await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let p = next_position(&mut events, "both changes").await;
        seen.push((p["sku"].as_str().unwrap().to_string(), p["version"].as_u64().unwrap()));
    }
    seen.sort();
    assert_eq!(seen.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), vec!["A", "B"]);
}

#[tokio::test]
async fn resume_after_a_restart_sends_exactly_what_changed() {
    let mut hub = TestHub::start().await;
    let api = hub.client();
    api.post_events(
        TOKEN,
        &json!([ev("1", "receipt", "S", "berlin", 5), ev("2", "receipt", "S", "hamburg", 5), ev("3", "receipt", "S", "munich", 5)]),
    )
    .await;
    let (_, mut events) = api.stream("sku=S&location=berlin,hamburg,munich", None).await;
    let mut last = 0;
    for _ in 0..3 {
        last = last.max(next_position(&mut events, "initial").await["version"].as_u64().unwrap());
    }
    drop(events);

    // While the client is away: the hub restarts, and two of the three positions change.
    hub.restart(|_| {}).await;
    let api = hub.client();
    api.post_events(TOKEN, &json!([ev("4", "sale", "S", "munich", 1)])).await;
    api.post_events(TOKEN, &json!([ev("5", "sale", "S", "berlin", 2)])).await;

    let (_, mut events) = api.stream("sku=S&location=berlin,hamburg,munich", Some(&last.to_string())).await;
    let a = next_position(&mut events, "first change").await;
    let b = next_position(&mut events, "second change").await;
    assert_eq!((a["location"].as_str(), a["on_hand"].as_i64()), (Some("munich"), Some(4)));
    assert_eq!((b["location"].as_str(), b["on_hand"].as_i64()), (Some("berlin"), Some(3)));
    assert!(a["version"].as_u64() < b["version"].as_u64());
    quiet(&mut events, 300).await;
}

#[tokio::test]
async fn unusable_last_event_ids_mean_send_everything() {
    let hub = TestHub::start().await;
    let api = hub.client();
    api.post_events(TOKEN, &json!([ev("1", "receipt", "S", "berlin", 5)])).await;
    api.post_events(TOKEN, &json!([ev("2", "receipt", "S", "hamburg", 5)])).await;
    for id in ["garbage", "-1", "999999", "1.5"] {
        let (_, mut events) = api.stream("sku=S&location=berlin,hamburg", Some(id)).await;
        next_position(&mut events, "first").await;
        next_position(&mut events, "second").await;
    }
    // The query parameter works, and the header wins over it.
    let (_, mut events) = api.stream("sku=S&location=berlin,hamburg&last_event_id=1", None).await;
    assert_eq!(next_position(&mut events, "only hamburg").await["location"], "hamburg");
    quiet(&mut events, 200).await;
    let (_, mut events) = api.stream("sku=S&location=berlin,hamburg&last_event_id=0", Some("2")).await;
    quiet(&mut events, 300).await;
}

#[tokio::test]
async fn idle_streams_get_a_heartbeat_comment() {
    let hub = TestHub::start_with(|c| c.heartbeat = Duration::from_millis(200)).await;
    let r = reqwest::get(format!("{}/v1/stream?sku=S&location=berlin", hub.url)).await.unwrap();
    let mut body = r.bytes_stream();
    let mut text = String::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while !text.contains("\n: keep-alive") && !text.starts_with(": keep-alive") {
        let chunk = tokio::time::timeout_at(until, body.next()).await.expect("a heartbeat within 5 s").unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("retry: 2000\n"), "{text}");
}

#[tokio::test]
async fn bad_stream_queries_are_400_json() {
    let hub = TestHub::start().await;
    let api = hub.client();
    let many = (0..51).map(|i| format!("l{i}")).collect::<Vec<_>>().join(",");
    for q in ["", "sku=S", "sku=bad%20sku&location=a", &format!("sku=S&location={many}"), "positions=nope"] {
        let (s, h, b) = api.raw(reqwest::Method::GET, &format!("/v1/stream?{q}"), &[], "").await;
        assert_eq!(s, 400, "{q}");
        assert_eq!(h["content-type"], "application/json");
        assert!(b.starts_with("{\"error\":{\"code\":"), "{b}");
    }
}

#[tokio::test]
async fn stopping_the_hub_closes_its_streams() {
    let mut hub = TestHub::start().await;
    let (_, mut events) = hub.client().stream("sku=S&location=berlin", None).await;
    next_position(&mut events, "initial").await;
    let stop = tokio::spawn(hub.hub.take().unwrap().stop());
    let end = tokio::time::timeout(Duration::from_secs(10), events.next()).await.expect("the stream ends");
    assert!(end.is_none());
    stop.await.unwrap().unwrap();
}
