//! `POST /v1/events` over real HTTP against a real SQLite file.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn results_come_in_request_order_and_one_bad_event_blocks_nothing() {
    let hub = TestHub::start().await;
    let api = hub.client();
    let batch = json!([
        ev("t1:1", "receipt", "SKU-1", "berlin", 10),
        ev("t1:2", "sale", "SKU-1", "berlin", 0),
        ev("t1:1", "receipt", "SKU-1", "berlin", 10),
        {"id": "t1:3", "type": "teleport", "sku": "SKU-1", "location": "berlin", "qty": 1},
        ev("t1:4", "sale", "SKU-1", "berlin", 3),
        {"id": "t1:5", "type": "sale", "sku": "bad sku", "location": "berlin", "qty": 1},
        {"type": "sale", "sku": "SKU-1", "location": "berlin", "qty": 1},
        {"id": "t1:6", "type": "adjust", "sku": "SKU-1", "location": "berlin", "qty": -2, "at": "2026-11-27T10:00:00+01:00"},
        {"id": "t1:7", "type": "sale", "sku": "SKU-1", "location": "berlin", "qty": 1, "at": "soon"},
        {"id": "t1:8", "type": "sale", "sku": "SKU-1", "location": "berlin", "qty": "1"},
    ]);
    let (status, body) = api.post_events(TOKEN, &batch).await;
    assert_eq!(status, 200, "{body}");
    let statuses: Vec<(&str, &str)> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["status"].as_str().unwrap(), r["error"]["code"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("applied", ""),
            ("rejected", "invalid_qty"),
            ("duplicate", ""),
            ("rejected", "invalid_type"),
            ("applied", ""),
            ("rejected", "invalid_sku"),
            ("rejected", "invalid_id"),
            ("applied", ""),
            ("rejected", "invalid_at"),
            ("rejected", "invalid_qty"),
        ]
    );
    assert_eq!(body["results"][0]["id"], "t1:1");
    assert_eq!(body["results"][6]["id"], Value::Null);
    assert_eq!((body["applied"].as_u64(), body["duplicates"].as_u64(), body["rejected"].as_u64()), (Some(3), Some(1), Some(6)));
    for r in body["results"].as_array().unwrap().iter().filter(|r| r["status"] == "rejected") {
        assert!(r["error"]["message"].as_str().unwrap().len() > 10, "a message a person can act on: {r}");
    }
    assert_eq!(api.position("SKU-1", "berlin").await.0, 10 - 3 - 2);
}

#[tokio::test]
async fn every_kind_of_event_moves_on_hand_as_the_contract_says() {
    let hub = TestHub::start().await;
    let api = hub.client();
    let mut expected = 0;
    for (i, (kind, qty, after)) in
        [("receipt", 10, 10), ("sale", 3, 7), ("return", 1, 8), ("adjust", -5, 3), ("adjust", 2, 5), ("count", 42, 42), ("count", 0, 0)]
            .into_iter()
            .enumerate()
    {
        let (s, b) = api.post_events(TOKEN, &json!([ev(&format!("k{i}"), kind, "S", "hamburg", qty)])).await;
        assert_eq!((s, b["applied"].as_u64()), (200, Some(1)), "{b}");
        expected = after;
        assert_eq!(api.position("S", "hamburg").await.0, expected, "after {kind} {qty}");
    }
    assert_eq!(expected, 0);
}

#[tokio::test]
async fn ndjson_is_read_line_by_line() {
    let hub = TestHub::start().await;
    let api = hub.client();
    let body = "{\"id\":\"n1\",\"type\":\"receipt\",\"sku\":\"S\",\"location\":\"berlin\",\"qty\":5}\n\n{\"id\":\"n2\",\"type\":\"sale\",\"sku\":\"S\",\"location\":\"berlin\",\"qty\":2}\n";
    let (s, _, b) = api
        .raw(Method::POST, "/v1/events", &[("authorization", "Bearer till-token"), ("content-type", "application/x-ndjson")], body)
        .await;
    assert_eq!(s, 200, "{b}");
    let b: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(b["applied"], 2);
    assert_eq!(api.position("S", "berlin").await.0, 3);
}

#[tokio::test]
async fn a_body_that_does_not_parse_is_a_400_and_applies_nothing() {
    let hub = TestHub::start().await;
    let api = hub.client();
    let good = r#"{"id":"g1","type":"receipt","sku":"S","location":"berlin","qty":5}"#;
    for (ct, body) in [
        ("application/json", format!("[{good},")),
        ("application/json", good.to_string()),
        ("application/json", format!("[{good}, 7]")),
        ("application/x-ndjson", format!("{good}\n[1,2]\n")),
        ("application/x-ndjson", format!("{good}\n{{\"id\":")),
    ] {
        let (s, h, b) =
            api.raw(Method::POST, "/v1/events", &[("authorization", "Bearer till-token"), ("content-type", ct)], body.clone()).await;
        assert_eq!(s, 400, "{body}");
        assert_eq!(h["content-type"], "application/json");
        let b: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(b["error"]["code"], "malformed_body");
    }
    assert_eq!(api.position("S", "berlin").await, (0, 0, 0, 0), "nothing was applied");
}

#[tokio::test]
async fn tokens_are_required_and_scoped_to_locations() {
    let hub = TestHub::start().await;
    let api = hub.client();
    let batch = json!([ev("s1", "receipt", "S", "berlin", 4), ev("s2", "receipt", "S", "paris", 4)]);
    for auth in [None, Some("Bearer nope"), Some("Basic dGlsbA=="), Some("Bearer")] {
        let mut req = api.http.post(api.url("/v1/events")).json(&batch);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"]["code"], "unauthorized");
    }
    let (s, b) = api.post_events(BERLIN_ONLY, &batch).await;
    assert_eq!(s, 200);
    assert_eq!(b["results"][0]["status"], "applied");
    assert_eq!(b["results"][1]["status"], "rejected");
    assert_eq!(b["results"][1]["error"]["code"], "forbidden_location");
    assert_eq!(api.position("S", "paris").await.0, 0);
    // Rejected ids are not remembered: the corrected event goes through under the same id.
    let (_, b) = api.post_events(TOKEN, &json!([ev("s2", "receipt", "S", "paris", 4)])).await;
    assert_eq!(b["results"][0]["status"], "applied");
}

#[tokio::test]
async fn limits_are_413_and_other_content_types_415() {
    let hub = TestHub::start().await;
    let api = hub.client();
    let many: Vec<Value> = (0..10_001).map(|i| ev(&format!("m{i}"), "receipt", "S", "berlin", 1)).collect();
    let (s, b) = api.post_events(TOKEN, &Value::Array(many)).await;
    assert_eq!((s, b["error"]["code"].as_str()), (413, Some("too_many_events")));
    let exactly: Vec<Value> = (0..10_000).map(|i| ev(&format!("m{i}"), "receipt", "S", "berlin", 1)).collect();
    let (s, b) = api.post_events(TOKEN, &Value::Array(exactly)).await;
    assert_eq!((s, b["applied"].as_u64()), (200, Some(10_000)));

    let huge = format!("[{}]", " ".repeat(4 * 1024 * 1024 + 1));
    let (s, h, b) =
        api.raw(Method::POST, "/v1/events", &[("authorization", "Bearer till-token"), ("content-type", "application/json")], huge).await;
    assert_eq!(s, 413);
    assert_eq!(h["content-type"], "application/json");
    assert!(b.contains("payload_too_large"));

    for ct in [None, Some("text/plain"), Some("application/xml")] {
        let mut hs = vec![("authorization", "Bearer till-token")];
        if let Some(ct) = ct {
            hs.push(("content-type", ct));
        }
        let (s, _, b) = api.raw(Method::POST, "/v1/events", &hs, "[]").await;
        assert_eq!(s, 415, "{ct:?}");
        assert!(b.contains("unsupported_media_type"));
    }
    assert_eq!(api.position("S", "berlin").await.0, 10_000, "nothing refused was applied");
}

#[tokio::test]
async fn a_duplicate_is_recognised_however_late_it_comes() {
    let mut hub = TestHub::start().await;
    let (_, b) = hub.client().post_events(TOKEN, &json!([ev("late:1", "sale", "S", "berlin", 1)])).await;
    assert_eq!(b["applied"], 1);
    let filler: Vec<Value> = (0..5_000).map(|i| ev(&format!("f{i}"), "receipt", "T", "berlin", 1)).collect();
    hub.client().post_events(TOKEN, &Value::Array(filler)).await;
    hub.restart(|_| {}).await;
    let (_, b) = hub.client().post_events(TOKEN, &json!([ev("late:1", "sale", "S", "berlin", 1)])).await;
    assert_eq!((b["applied"].as_u64(), b["duplicates"].as_u64()), (Some(0), Some(1)));
    assert_eq!(hub.client().position("S", "berlin").await.0, -1);
}
