//! `--disclose exact|low|status` over real HTTP: what a shopper (no token) sees of the stock on
//! reads, streams, the store directory and a refused reservation, in each mode; device tokens,
//! the admin token and console sessions still see every number. (With
//! `SHELFCAST_TEST_POSTGRES` set, on PostgreSQL.)

mod common;

use common::*;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use shelfcast_protocol::Disclose;

const ADMIN: &str = "admin-secret";

/// `plenty` in stock (10), `few` low (2), `none` out of stock (0, sold out), all of SKU `S`.
async fn hub(mode: Disclose) -> TestHub {
    let hub = TestHub::start_with(|c| {
        c.disclose = mode;
        c.admin_token = Some(ADMIN.into());
    })
    .await;
    let api = hub.client();
    let events = json!([
        ev("d1", "receipt", "S", "plenty", 10),
        ev("d2", "receipt", "S", "few", 2),
        ev("d3", "receipt", "S", "none", 1),
        ev("d4", "sale", "S", "none", 1),
    ]);
    assert_eq!(api.post_events(TOKEN, &events).await.0, 200);
    for (id, lat) in [("plenty", 52.5), ("few", 52.6), ("none", 52.7)] {
        let store = json!({"name": id, "address": "Str. 1", "lat": lat, "lng": 13.4,
                           "pickup": {"enabled": true, "ready_in_minutes": 60, "sla": "same_day"}, "timezone": "Europe/Berlin"});
        let auth = format!("Bearer {ADMIN}");
        let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
        let (s, _, b) = api.raw(Method::PUT, &format!("/v1/locations/{id}"), &headers, store.to_string()).await;
        assert_eq!(s, 200, "{b}");
    }
    hub
}

const LOCATIONS: [&str; 3] = ["plenty", "few", "none"];
const STATUS: [&str; 3] = ["in_stock", "low_stock", "out_of_stock"];
const AVAILABLE: [i64; 3] = [10, 2, 0];

/// `(on_hand, reserved, available)` as sent, `None` for `null`; asserts the status is sent.
fn numbers(p: &Value, status: &str) -> (Option<i64>, Option<i64>, Option<i64>) {
    assert_eq!(p["status"], status, "{p}");
    for field in ["on_hand", "reserved", "available"] {
        assert!(p.get(field).is_some_and(|v| v.is_null() || v.is_i64()), "`{field}` is a number or null: {p}");
    }
    (p["on_hand"].as_i64(), p["reserved"].as_i64(), p["available"].as_i64())
}

/// Asserts `p` (the position at `LOCATIONS[i]`) carries numbers exactly when `shown`.
fn check(p: &Value, i: usize, shown: bool, what: &str) {
    assert_eq!(p["location"], LOCATIONS[i], "{what}");
    let expect = if shown { (Some(AVAILABLE[i]), Some(0), Some(AVAILABLE[i])) } else { (None, None, None) };
    assert_eq!(numbers(p, STATUS[i]), expect, "{what} at {}", LOCATIONS[i]);
}

/// Which of plenty, few, none show their numbers to a shopper in `mode`.
fn shown(mode: Disclose) -> [bool; 3] {
    match mode {
        Disclose::Exact => [true, true, true],
        Disclose::Low => [false, true, false],
        Disclose::Status => [false, false, false],
    }
}

async fn read(api: &Api, auth: Option<&str>) -> Vec<Value> {
    let mut req = api.http.get(api.url("/v1/availability?sku=S&location=plenty,few,none"));
    if let Some(token) = auth {
        req = req.bearer_auth(token);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    b["positions"].as_array().unwrap().clone()
}

/// The first position events of a stream of the three positions, by location.
async fn streamed(api: &Api, auth: Option<&str>) -> (Vec<Value>, impl futures_util::Stream<Item = Value> + Unpin) {
    let mut req = api.http.get(api.url("/v1/stream?sku=S&location=plenty,few,none"));
    if let Some(token) = auth {
        req = req.bearer_auth(token);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut events = Box::pin(
        r.bytes_stream()
            .eventsource()
            .map(|e| e.expect("well-formed SSE"))
            .filter(|e| std::future::ready(e.event == "position"))
            .map(|e| serde_json::from_str::<Value>(&e.data).unwrap()),
    );
    let mut first = Vec::new();
    for _ in 0..3 {
        let p = tokio::time::timeout(std::time::Duration::from_secs(10), events.next()).await.expect("a position").unwrap();
        first.push(p);
    }
    first.sort_by_key(|p| LOCATIONS.iter().position(|l| *l == p["location"]).unwrap());
    (first, events)
}

async fn next(events: &mut (impl futures_util::Stream<Item = Value> + Unpin)) -> Value {
    tokio::time::timeout(std::time::Duration::from_secs(10), events.next()).await.expect("a change").unwrap()
}

async fn each_mode(mode: Disclose) {
    let hub = hub(mode).await;
    let api = hub.client();
    let shopper = shown(mode);

    // Reads: a shopper, someone with a token the hub does not know (a shopper too), then the
    // device token, the admin token and a console session: always every number.
    for (auth, what) in [(None, "no token"), (Some("not-a-token"), "an unknown token")] {
        for (i, p) in read(&api, auth).await.iter().enumerate() {
            check(p, i, shopper[i], &format!("{mode:?}: read with {what}"));
        }
    }
    let cookie = sign_in(&api, ADMIN).await;
    let session = api.http.get(api.url("/v1/availability?sku=S&location=plenty,few,none")).header("cookie", cookie).send().await.unwrap();
    let session: Value = session.json().await.unwrap();
    for (i, p) in session["positions"].as_array().unwrap().iter().enumerate() {
        check(p, i, true, &format!("{mode:?}: read in a console session"));
    }
    for token in [TOKEN, BERLIN_ONLY, ADMIN] {
        for (i, p) in read(&api, Some(token)).await.iter().enumerate() {
            check(p, i, true, &format!("{mode:?}: read with {token}"));
        }
    }

    // Streams: the first positions, then a live change that makes `plenty` low (8 sold).
    let (first, mut public) = streamed(&api, None).await;
    let (first_staff, mut staff) = streamed(&api, Some(TOKEN)).await;
    for i in 0..3 {
        check(&first[i], i, shopper[i], &format!("{mode:?}: stream without a token"));
        check(&first_staff[i], i, true, &format!("{mode:?}: stream with a token"));
    }
    assert_eq!(api.post_events(TOKEN, &json!([ev("d5", "sale", "S", "plenty", 8)])).await.0, 200);
    let (p, s) = (next(&mut public).await, next(&mut staff).await);
    assert_eq!(numbers(&s, "low_stock"), (Some(2), Some(0), Some(2)), "{mode:?}: staff stream");
    let low = if mode == Disclose::Status { (None, None, None) } else { (Some(2), Some(0), Some(2)) };
    assert_eq!(numbers(&p, "low_stock"), low, "{mode:?}: a shopper's stream once `plenty` is low");
    assert_eq!(api.post_events(TOKEN, &json!([ev("d6", "receipt", "S", "plenty", 8)])).await.0, 200);
    check(&next(&mut public).await, 0, shopper[0], &format!("{mode:?}: stream back in stock"));

    // The store directory with the SKU; `in_stock` filters the same in every mode.
    let (s, dir) = api.get_json("/v1/locations?sku=S&near=52.5,13.4").await;
    assert_eq!(s, 200, "{dir}");
    for (i, l) in dir["locations"].as_array().unwrap().iter().enumerate() {
        check(&l["position"], i, shopper[i], &format!("{mode:?}: directory"));
    }
    let (_, dir) = api.get_json("/v1/locations?sku=S&near=52.5,13.4&in_stock=true").await;
    let ids: Vec<&str> = dir["locations"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["plenty", "few"], "{mode:?}: in stock");
    let admin = api.http.get(api.url("/v1/locations?sku=S")).bearer_auth(ADMIN).send().await.unwrap();
    let admin: Value = admin.json().await.unwrap();
    assert_eq!(admin["locations"][0]["position"]["available"], 2, "{mode:?}: the admin token sees `few`'s count");

    // A refused reservation says how many are left only where the mode shows that number.
    for (i, location) in LOCATIONS.iter().enumerate() {
        let (s, b) = api.reserve("S", location, 50, &format!("disclosure-key-{location}-0001")).await;
        assert_eq!((s, b["error"]["code"].as_str()), (409, Some("insufficient_stock")), "{b}");
        let message = b["error"]["message"].as_str().unwrap();
        if shopper[i] {
            assert_eq!(b["error"]["available"], AVAILABLE[i], "{mode:?}: {b}");
        } else {
            assert!(b["error"].get("available").is_none(), "{mode:?} at {location}: {b}");
            assert!(!message.chars().any(|c| c.is_ascii_digit()), "{mode:?} at {location}: no count in {message:?}");
        }
    }
}

async fn sign_in(api: &Api, token: &str) -> String {
    let r = api.http.post(api.url("/console/session")).json(&json!({"token": token})).send().await.unwrap();
    assert!(r.status().is_success(), "sign-in: {}", r.status());
    let cookie = r.headers().get("set-cookie").expect("a session cookie").to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn exact_shows_every_number() {
    each_mode(Disclose::Exact).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn low_shows_numbers_only_while_low() {
    each_mode(Disclose::Low).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_no_numbers_to_shoppers() {
    each_mode(Disclose::Status).await;
}

#[test]
fn an_unknown_mode_does_not_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shelfcast"))
        .args(["serve", "--listen", "127.0.0.1:0", "--disclose", "none"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--disclose") && stderr.contains("exact, low, status"), "{stderr}");
}
