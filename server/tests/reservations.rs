//! Click and collect over real HTTP: holds, idempotency, expiry with a hand-moved clock, tokens.

mod common;

use std::time::Duration;

use common::*;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use shelfcast_server::Clock;

const T0: i64 = 1_800_000_000_000;

fn key(i: usize) -> String {
    format!("shopper-key-{i:08}-0000")
}

async fn stocked(hub: &TestHub, sku: &str, location: &str, qty: i64) -> Api {
    let api = hub.client();
    let (s, _) = api.post_events(TOKEN, &json!([ev(&format!("stock:{sku}@{location}"), "receipt", sku, location, qty)])).await;
    assert_eq!(s, 200);
    api
}

#[tokio::test]
async fn two_hundred_shoppers_race_for_ten_units_and_ten_win() {
    let hub = TestHub::start().await;
    let api = stocked(&hub, "LAST", "berlin", 10).await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move { api.reserve("LAST", "berlin", 1, &key(i)).await })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        let (s, b) = t.await.unwrap();
        match s {
            201 => won += 1,
            409 => {
                assert_eq!(b["error"]["code"], "insufficient_stock");
                assert_eq!(b["error"]["available"], 0);
            }
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert_eq!(won, 10);
    let (on_hand, reserved, available, _) = api.position("LAST", "berlin").await;
    assert_eq!((on_hand, reserved, available), (10, 10, 0));
}

#[tokio::test]
async fn the_same_key_returns_the_same_reservation() {
    let hub = TestHub::start().await;
    let api = stocked(&hub, "S", "berlin", 5).await;
    let (s1, mut a) = api.reserve("S", "berlin", 2, &key(1)).await;
    let (s2, mut b) = api.reserve("S", "berlin", 2, &key(1)).await;
    assert_eq!((s1, s2), (201, 200));
    // The time left is as of each answer; everything else is the same.
    let (left_a, left_b) = (a["expires_in_ms"].take().as_u64().unwrap(), b["expires_in_ms"].take().as_u64().unwrap());
    assert!(left_b <= left_a);
    assert_eq!(a, b, "the same reservation, token included");
    assert_eq!(a["status"], "held");
    assert!(a["token"].as_str().unwrap().len() >= 32);
    assert_eq!(api.position("S", "berlin").await.1, 2, "held once");
    for (sku, loc, qty) in [("S", "berlin", 3), ("S", "hamburg", 2), ("T", "berlin", 2)] {
        let (s, b) = api.reserve(sku, loc, qty, &key(1)).await;
        assert_eq!((s, b["error"]["code"].as_str()), (422, Some("idempotency_key_reused")));
    }
}

#[tokio::test]
async fn bad_reservation_requests_are_400_and_change_nothing() {
    let hub = TestHub::start().await;
    let api = stocked(&hub, "S", "berlin", 5_000).await;
    for (body, code) in [
        (json!({"sku": "S", "location": "berlin", "qty": 0, "key": key(1)}), "invalid_qty"),
        (json!({"sku": "S", "location": "berlin", "qty": 1001, "key": key(1)}), "invalid_qty"),
        (json!({"sku": "S", "location": "berlin", "qty": "1", "key": key(1)}), "invalid_qty"),
        (json!({"sku": "S", "location": "berlin", "qty": 1, "key": "short"}), "invalid_key"),
        (json!({"sku": "S", "location": "berlin", "qty": 1, "key": "has a space in it ok"}), "invalid_key"),
        (json!({"sku": "S s", "location": "berlin", "qty": 1, "key": key(1)}), "invalid_sku"),
        (json!({"sku": "S", "qty": 1, "key": key(1)}), "invalid_location"),
        (json!([1]), "malformed_body"),
    ] {
        let r = api.http.post(api.url("/v1/reservations")).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"]["code"], code, "{body}");
    }
    let (s, _, _) = api.raw(Method::POST, "/v1/reservations", &[("content-type", "text/plain")], "{}").await;
    assert_eq!(s, 415);
    assert_eq!(api.position("S", "berlin").await.1, 0);
    let (s, _) = api.reserve("S", "berlin", 1000, &key(2)).await;
    assert_eq!(s, 201, "1000 is allowed");
}

#[tokio::test]
async fn holder_token_guards_get_release_and_confirm() {
    let hub = TestHub::start().await;
    let api = stocked(&hub, "S", "berlin", 3).await;
    let (_, r) = api.reserve("S", "berlin", 2, &key(1)).await;
    let (_, other) = api.reserve("S", "berlin", 1, &key(2)).await;
    let id = r["id"].as_str().unwrap();
    let path = format!("/v1/reservations/{id}");
    let bearer = |t: &Value| format!("Bearer {}", t.as_str().unwrap());

    for wrong in [bearer(&other["token"]), "Bearer nope".into()] {
        for m in [Method::GET, Method::DELETE] {
            let (s, _, b) = api.raw(m.clone(), &path, &[("authorization", &wrong)], "").await;
            assert_eq!(s, 404, "{m} {b}");
        }
        let (s, _, _) = api.raw(Method::POST, &format!("{path}/confirm"), &[("authorization", &wrong)], "").await;
        assert_eq!(s, 404);
    }
    let (s, _, b) = api.raw(Method::GET, "/v1/reservations/res_unknown", &[("authorization", &bearer(&r["token"]))], "").await;
    assert_eq!(s, 404, "{b}");

    let (s, _, b) = api.raw(Method::GET, &path, &[("authorization", &bearer(&r["token"]))], "").await;
    assert_eq!(s, 200);
    let b: Value = serde_json::from_str(&b).unwrap();
    assert_eq!((b["status"].as_str(), b["qty"].as_i64()), (Some("held"), Some(2)));
    assert!(b.get("token").is_none(), "the token is only handed out when reserving");

    let (s, _, b) = api.raw(Method::POST, &format!("{path}/confirm"), &[("authorization", &bearer(&r["token"]))], "").await;
    assert_eq!(s, 200);
    let b: Value = serde_json::from_str(&b).unwrap();
    assert_eq!((b["status"].as_str(), &b["expires_at"]), (Some("confirmed"), &Value::Null));

    let (s, _, b) = api.raw(Method::DELETE, &path, &[("authorization", &bearer(&r["token"]))], "").await;
    assert_eq!(s, 200);
    assert!(b.contains("\"released\""));
    assert_eq!(api.position("S", "berlin").await.2, 2, "released stock is available at once");
    let (s, _, b) = api.raw(Method::POST, &format!("{path}/confirm"), &[("authorization", &bearer(&r["token"]))], "").await;
    assert_eq!(s, 409, "{b}");
}

#[tokio::test]
async fn fulfilment_needs_the_locations_device_token() {
    let hub = TestHub::start().await;
    let api = stocked(&hub, "S", "hamburg", 3).await;
    let (_, r) = api.reserve("S", "hamburg", 2, &key(1)).await;
    let path = format!("/v1/reservations/{}/fulfil", r["id"].as_str().unwrap());
    let shopper = format!("Bearer {}", r["token"].as_str().unwrap());
    let (s, _, _) = api.raw(Method::POST, &path, &[("authorization", &shopper)], "").await;
    assert_eq!(s, 401, "a shopper cannot mark their own pickup");
    let (s, _, b) = api.raw(Method::POST, &path, &[("authorization", "Bearer berlin-token")], "").await;
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("forbidden_location"));
    let (s, _, b) = api.raw(Method::POST, &path, &[("authorization", "Bearer till-token")], "").await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("\"fulfilled\""));
    assert_eq!(api.position("S", "hamburg").await, (1, 0, 1, 3), "on_hand and reserved both drop by qty");
    let (s, _, _) = api.raw(Method::POST, &path, &[("authorization", "Bearer till-token")], "").await;
    assert_eq!(s, 200, "a retried pickup changes nothing");
    assert_eq!(api.position("S", "hamburg").await.0, 1);
}

#[tokio::test]
async fn an_expired_hold_reserves_nothing_even_before_the_sweeper_runs() {
    let hub = TestHub::start_with(|c| {
        c.clock = Clock::manual(T0);
        c.sweep_interval = Duration::from_secs(3600);
    })
    .await;
    let api = stocked(&hub, "S", "berlin", 1).await;
    let (_, r) = api.reserve("S", "berlin", 1, &key(1)).await;
    let (s, _) = api.reserve("S", "berlin", 1, &key(2)).await;
    assert_eq!(s, 409);
    hub.clock.advance(15 * 60 * 1000 - 1);
    assert_eq!(api.position("S", "berlin").await.1, 1, "still held a millisecond before expires_at");
    hub.clock.advance(1);
    assert_eq!(api.position("S", "berlin").await.1, 0, "free from expires_at on");
    let (s, b) = api.reserve("S", "berlin", 1, &key(2)).await;
    assert_eq!(s, 201, "{b}");
    let (_, _, b) = api
        .raw(
            Method::GET,
            &format!("/v1/reservations/{}", r["id"].as_str().unwrap()),
            &[("authorization", &format!("Bearer {}", r["token"].as_str().unwrap()))],
            "",
        )
        .await;
    assert!(b.contains("\"expired\""), "{b}");
}

#[tokio::test]
async fn expiry_is_swept_and_streamed() {
    let hub = TestHub::start_with(|c| {
        c.clock = Clock::manual(T0);
        c.hold_ttl = Duration::from_secs(60);
    })
    .await;
    let api = stocked(&hub, "S", "berlin", 4).await;
    let (_, r) = api.reserve("S", "berlin", 3, &key(1)).await;
    assert_eq!(r["expires_at"], "2027-01-15T08:01:00Z");
    let (_, mut events) = api.stream("sku=S&location=berlin", None).await;
    let p = next_position(&mut events, "held").await;
    assert_eq!((p["reserved"].as_i64(), p["available"].as_i64(), p["status"].as_str()), (Some(3), Some(1), Some("low_stock")));
    hub.clock.advance(60_000);
    let p = next_position(&mut events, "the expiry").await;
    assert_eq!((p["reserved"].as_i64(), p["available"].as_i64(), p["status"].as_str()), (Some(0), Some(4), Some("in_stock")));
    let metrics = reqwest::get(format!("{}/metrics", hub.url)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("shelfcast_reservations_total{outcome=\"expired\"} 1"), "{metrics}");
}

#[tokio::test]
async fn every_answer_about_a_held_reservation_says_the_time_left_on_the_hubs_clock() {
    let hub = TestHub::start_with(|c| c.clock = Clock::manual(T0)).await;
    let api = stocked(&hub, "S", "berlin", 3).await;
    let (s, r) = api.reserve("S", "berlin", 1, &key(1)).await;
    assert_eq!((s, r["expires_in_ms"].as_u64()), (201, Some(15 * 60 * 1000)), "{r}");
    let path = format!("/v1/reservations/{}", r["id"].as_str().unwrap());
    let auth = format!("Bearer {}", r["token"].as_str().unwrap());

    hub.clock.advance(90_000);
    let (_, _, b) = api.raw(Method::GET, &path, &[("authorization", &auth)], "").await;
    let b: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(b["expires_in_ms"].as_u64(), Some(15 * 60 * 1000 - 90_000), "{b}");
    assert_eq!(b["expires_at"], r["expires_at"], "the same instant");
    let (s, again) = api.reserve("S", "berlin", 1, &key(1)).await;
    assert_eq!((s, again["expires_in_ms"].as_u64()), (200, Some(15 * 60 * 1000 - 90_000)));

    let (_, _, b) = api.raw(Method::POST, &format!("{path}/confirm"), &[("authorization", &auth)], "").await;
    assert!(!b.contains("expires_in_ms"), "a confirmed hold does not lapse: {b}");
}

#[tokio::test]
async fn holds_and_confirmations_survive_a_restart() {
    let mut hub = TestHub::start_with(|c| c.clock = Clock::manual(T0)).await;
    let api = stocked(&hub, "S", "berlin", 5).await;
    let (_, held) = api.reserve("S", "berlin", 1, &key(1)).await;
    let (_, confirmed) = api.reserve("S", "berlin", 2, &key(2)).await;
    let c = format!("/v1/reservations/{}/confirm", confirmed["id"].as_str().unwrap());
    api.raw(Method::POST, &c, &[("authorization", &format!("Bearer {}", confirmed["token"].as_str().unwrap()))], "").await;
    hub.restart(|_| {}).await;
    let api = hub.client();
    assert_eq!(api.position("S", "berlin").await.1, 3);
    hub.clock.advance(15 * 60 * 1000);
    assert_eq!(api.position("S", "berlin").await.1, 2, "the hold lapsed, the confirmed order did not");
    let (s, again) = api.reserve("S", "berlin", 1, &key(1)).await;
    assert_eq!((s, &again["id"]), (200, &held["id"]));
    assert_eq!(again["status"], "expired");
}

#[tokio::test]
async fn a_sale_of_held_units_is_reported_oversold_never_hidden() {
    let hub = TestHub::start().await;
    let api = stocked(&hub, "LAST", "berlin", 1).await;
    stocked(&hub, "FINE", "berlin", 3).await;
    stocked(&hub, "LAST", "paris", 1).await;
    let (s, _) = api.reserve("LAST", "berlin", 1, &key(1)).await;
    assert_eq!(s, 201);
    api.reserve("LAST", "paris", 1, &key(2)).await;
    api.post_events(TOKEN, &json!([ev("till:paris", "sale", "LAST", "paris", 1)])).await;
    // A till sells the same last unit (it could not know of the online hold).
    let before = api.position("LAST", "berlin").await.3;
    api.post_events(TOKEN, &json!([ev("till:last", "sale", "LAST", "berlin", 1)])).await;
    let (on_hand, reserved, available, version) = api.position("LAST", "berlin").await;
    assert_eq!((on_hand, reserved, available), (0, 1, -1));
    assert!(version > before, "the sale is a change");

    let get = |token: &'static str| {
        let api = api.clone();
        async move {
            let r = api.http.get(api.url("/v1/oversold")).bearer_auth(token).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, b) = get(TOKEN).await;
    assert_eq!(s, 200);
    let list = b["positions"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{b}");
    assert_eq!(
        (list[0]["sku"].as_str(), list[0]["location"].as_str(), list[0]["available"].as_i64(), list[0]["status"].as_str()),
        (Some("LAST"), Some("berlin"), Some(-1), Some("out_of_stock"))
    );
    let berlin = get(BERLIN_ONLY).await.1;
    assert_eq!(berlin["positions"].as_array().unwrap().len(), 1, "a token sees only its locations: {berlin}");
    let (s, _, _) = api.raw(Method::GET, "/v1/oversold", &[], "").await;
    assert_eq!(s, 401);
    let m = reqwest::get(format!("{}/metrics", hub.url)).await.unwrap().text().await.unwrap();
    assert!(m.contains("shelfcast_oversold_positions 2"), "{m}");
}

#[tokio::test]
async fn staff_release_with_a_reason_frees_the_stock_and_the_shopper_sees_why() {
    let hub = TestHub::start().await;
    let api = stocked(&hub, "S", "berlin", 3).await;
    let (_, r) = api.reserve("S", "berlin", 2, &key(1)).await;
    let (id, shopper) = (r["id"].as_str().unwrap(), format!("Bearer {}", r["token"].as_str().unwrap()));
    let path = format!("/v1/reservations/{id}/release");
    let json_body = [("content-type", "application/json"), ("authorization", "Bearer berlin-token")];

    for (body, why) in [
        (r#"{"reason":"lost"}"#, "an unknown reason"),
        (r#"{}"#, "no reason"),
        (r#"{"reason":"other","note":7}"#, "a note that is not text"),
        ("not json", "a body that is not JSON"),
    ] {
        let (s, _, b) = api.raw(Method::POST, &path, &json_body, body).await;
        assert_eq!(s, 400, "{why}: {b}");
        assert_eq!(api.position("S", "berlin").await.1, 2, "{why} changes nothing");
    }
    let long = format!(r#"{{"reason":"other","note":"{}"}}"#, "x".repeat(501));
    assert_eq!(api.raw(Method::POST, &path, &json_body, long).await.0, 400, "a note over 500 characters");
    let (s, _, _) =
        api.raw(Method::POST, &path, &[("content-type", "application/json"), ("authorization", &shopper)], r#"{"reason":"other"}"#).await;
    assert_eq!(s, 401, "the shopper's token is not a store's");

    let (s, _, b) = api.raw(Method::POST, &path, &json_body, r#"{"reason":"not_found","note":"shelf empty"}"#).await;
    assert_eq!(s, 200, "{b}");
    let released: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(
        (released["status"].as_str(), released["released_by"].as_str(), released["reason"].as_str()),
        (Some("released"), Some("store"), Some("not_found"))
    );
    assert_eq!(api.position("S", "berlin").await.1, 0, "the stock is available again at once");
    let (s, _, b) = api.raw(Method::GET, &format!("/v1/reservations/{id}"), &[("authorization", &shopper)], "").await;
    assert_eq!(s, 200);
    let seen: Value = serde_json::from_str(&b).unwrap();
    assert_eq!((seen["released_by"].as_str(), seen["reason"].as_str()), (Some("store"), Some("not_found")), "{b}");
    assert!(seen.get("note").is_none(), "the staff's note stays with the store");

    let (_, mine) = api.reserve("S", "berlin", 1, &key(2)).await;
    let (s, _, b) = api
        .raw(
            Method::DELETE,
            &format!("/v1/reservations/{}", mine["id"].as_str().unwrap()),
            &[("authorization", &format!("Bearer {}", mine["token"].as_str().unwrap()))],
            "",
        )
        .await;
    assert_eq!(s, 200);
    assert!(b.contains(r#""released_by":"shopper""#) && !b.contains("reason"), "{b}");
}

#[tokio::test]
async fn the_hub_lists_a_stores_open_reservations_oldest_first_to_its_devices() {
    let hub = TestHub::start_with(|c| c.clock = Clock::manual(T0)).await;
    let api = stocked(&hub, "S", "berlin", 5).await;
    stocked(&hub, "S", "hamburg", 5).await;
    // Made in this order; the first one's id may sort after the second's.
    let (_, first) = api.reserve("S", "berlin", 1, &key(1)).await;
    hub.clock.advance(1);
    let (_, second) = api.reserve("S", "berlin", 2, &key(2)).await;
    api.reserve("S", "hamburg", 1, &key(3)).await;
    let confirm = format!("/v1/reservations/{}/confirm", second["id"].as_str().unwrap());
    api.raw(Method::POST, &confirm, &[("authorization", &format!("Bearer {}", second["token"].as_str().unwrap()))], "").await;

    let list = |q: &'static str, token: &'static str| {
        let api = api.clone();
        async move {
            let (s, _, b) =
                api.raw(Method::GET, &format!("/v1/reservations?{q}"), &[("authorization", &format!("Bearer {token}"))], "").await;
            (s, serde_json::from_str::<Value>(&b).unwrap())
        }
    };
    let (s, b) = list("location=berlin", BERLIN_ONLY).await;
    assert_eq!(s, 200, "{b}");
    let ids: Vec<&str> = b["reservations"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first["id"].as_str().unwrap(), second["id"].as_str().unwrap()], "oldest first, this store only");
    assert!(b["reservations"][0].get("token").is_none(), "staff never see the shopper's secret");
    let (_, b) = list("location=berlin&status=confirmed", BERLIN_ONLY).await;
    assert_eq!(b["reservations"].as_array().unwrap().len(), 1);
    assert_eq!(list("location=hamburg", BERLIN_ONLY).await.0, 403);
    assert_eq!(list("location=berlin&status=expired", BERLIN_ONLY).await.0, 400);
    assert_eq!(list("location=bad%20place", TOKEN).await.0, 400);
    let (s, _, _) = api.raw(Method::GET, "/v1/reservations?location=berlin", &[], "").await;
    assert_eq!(s, 401);
}

/// The pickup desk's stream sends the store's list when a reservation comes, goes or changes
/// status, not at every sale there (the time left counts down in the console).
#[tokio::test]
async fn the_desk_stream_sends_the_list_only_when_it_changes() {
    let hub = TestHub::start_with(|c| c.clock = Clock::manual(T0)).await;
    let api = stocked(&hub, "S", "berlin", 5).await;
    let r = api.http.get(api.url("/console/api/desk?location=berlin")).bearer_auth(BERLIN_ONLY).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut desk = Box::pin(r.bytes_stream().eventsource().map(|e| e.expect("well-formed SSE")));
    async fn list(desk: &mut (impl futures_util::Stream<Item = eventsource_stream::Event> + Unpin)) -> Vec<String> {
        loop {
            let e = next(desk, "the desk's list").await;
            if e.event == "reservations" {
                let v: Value = serde_json::from_str(&e.data).unwrap();
                return v["reservations"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap().to_string()).collect();
            }
        }
    }
    assert!(list(&mut desk).await.is_empty());
    let (_, held) = api.reserve("S", "berlin", 1, &key(1)).await;
    assert_eq!(list(&mut desk).await, ["held"]);
    hub.clock.advance(1_000);
    assert_eq!(api.post_events(TOKEN, &json!([ev("desk-sale", "sale", "S", "berlin", 1)])).await.0, 200);
    let path = format!("/v1/reservations/{}", held["id"].as_str().unwrap());
    let auth = format!("Bearer {}", held["token"].as_str().unwrap());
    api.raw(Method::DELETE, &path, &[("authorization", &auth)], "").await;
    assert!(list(&mut desk).await.is_empty(), "the next list is the one without the hold: the sale sent none");
}
