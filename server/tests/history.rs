//! A position's history over real HTTP: every kind of change, newest first, with the position
//! after it and who made it; stable paging while changes arrive; scoped to the token's places.
//! (With `SHELFCAST_TEST_POSTGRES` set, on PostgreSQL.)

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use shelfcast_server::Clock;

const T0: i64 = 1_800_000_000_000;
const TILL: &str = "till-3-secret";
const ADMIN: &str = "admin-secret";

async fn labelled_hub() -> TestHub {
    TestHub::start_with(|c| {
        c.clock = Clock::manual(T0);
        c.hold_ttl = Duration::from_secs(60);
        c.admin_token = Some(ADMIN.into());
        c.tokens.add_spec(&format!("{TILL}=berlin@till-3")).unwrap();
    })
    .await
}

async fn history(api: &Api, token: &str, query: &str) -> (u16, Value) {
    let path = format!("/v1/positions/S/berlin/history{query}");
    let (s, _, b) = api.raw(Method::GET, &path, &[("authorization", &format!("Bearer {token}"))], "").await;
    assert!(!b.contains(TILL) && !b.contains(ADMIN), "a token never shows in a history: {b}");
    (s, serde_json::from_str(&b).unwrap_or_else(|_| panic!("JSON: {b}")))
}

async fn post(api: &Api, path: &str, token: &str, body: Value) -> Value {
    let (s, _, b) = api
        .raw(Method::POST, path, &[("authorization", &format!("Bearer {token}")), ("content-type", "application/json")], body.to_string())
        .await;
    assert_eq!(s, 200, "{path}: {b}");
    serde_json::from_str(&b).unwrap()
}

/// `(kind or type, from, to, qty, by, on_hand, reserved)` of an item.
type Summary = (String, Option<String>, Option<String>, i64, Option<String>, i64, i64);

fn summary(items: &Value) -> Vec<Summary> {
    let s = |v: &Value| v.as_str().map(String::from);
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let what = s(&i["type"]).unwrap_or_else(|| i["kind"].as_str().unwrap().to_string());
            (
                what,
                s(&i["from"]),
                s(&i["to"]),
                i["qty"].as_i64().unwrap(),
                s(&i["by"]),
                i["on_hand"].as_i64().unwrap(),
                i["reserved"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_kind_of_change_appears_newest_first_with_the_position_after_it_and_who_made_it() {
    let hub = labelled_hub().await;
    let api = hub.client();
    let events = json!([
        ev("e1", "receipt", "S", "berlin", 10),
        {"id": "e2", "type": "sale", "sku": "S", "location": "berlin", "qty": 1, "at": "2027-01-15T07:59:58.500Z"},
        ev("e3", "return", "S", "berlin", 1),
        ev("e4", "adjust", "S", "berlin", -2),
        ev("e5", "count", "S", "berlin", 7),
    ]);
    let (s, b) = api.post_events(TILL, &events).await;
    assert_eq!((s, b["applied"].as_u64()), (200, Some(5)), "{b}");
    let (s, b) = api.post_events(TILL, &json!([ev("other", "receipt", "S", "hamburg", 3)])).await;
    assert_eq!((s, b["rejected"].as_u64()), (200, Some(1)), "the till's token covers berlin only: {b}");
    assert_eq!(api.post_events(TILL, &events).await.1["duplicates"].as_u64(), Some(5), "sent again: recorded once");

    // A hold the shopper confirms and the store hands over; one the shopper lets go; one the
    // store releases; one that lapses.
    let (_, a) = api.reserve("S", "berlin", 2, "history-key-a-000000").await;
    let holder = |r: &Value| format!("Bearer {}", r["token"].as_str().unwrap());
    let id = |r: &Value| r["id"].as_str().unwrap().to_string();
    api.raw(Method::POST, &format!("/v1/reservations/{}/confirm", id(&a)), &[("authorization", &holder(&a))], "").await;
    post(&api, &format!("/v1/reservations/{}/fulfil", id(&a)), TILL, json!({})).await;
    let (_, b) = api.reserve("S", "berlin", 1, "history-key-b-000000").await;
    api.raw(Method::DELETE, &format!("/v1/reservations/{}", id(&b)), &[("authorization", &holder(&b))], "").await;
    let (_, c) = api.reserve("S", "berlin", 1, "history-key-c-000000").await;
    post(&api, &format!("/v1/reservations/{}/release", id(&c)), TILL, json!({"reason": "damaged"})).await;
    let (_, d) = api.reserve("S", "berlin", 1, "history-key-d-000000").await;
    hub.clock.advance(60_000);
    until("the lapsed hold is swept", 10, || async { history(&api, ADMIN, "").await.1["items"][0]["to"] == "expired" }).await;

    let (s, page) = history(&api, ADMIN, "").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["next"], Value::Null, "everything on one page");
    let o = |s: &str| Some(s.to_string());
    let mut expected = vec![
        ("receipt".into(), None, None, 10, o("till-3"), 10, 0),
        ("sale".into(), None, None, 1, o("till-3"), 9, 0),
        ("return".into(), None, None, 1, o("till-3"), 10, 0),
        ("adjust".into(), None, None, -2, o("till-3"), 8, 0),
        ("count".into(), None, None, 7, o("till-3"), 7, 0),
        ("reservation".into(), None, o("held"), 2, o("shopper"), 7, 2),
        ("reservation".into(), o("held"), o("confirmed"), 2, o("shopper"), 7, 2),
        ("reservation".into(), o("confirmed"), o("fulfilled"), 2, o("till-3"), 5, 0),
        ("reservation".into(), None, o("held"), 1, o("shopper"), 5, 1),
        ("reservation".into(), o("held"), o("released"), 1, o("shopper"), 5, 0),
        ("reservation".into(), None, o("held"), 1, o("shopper"), 5, 1),
        ("reservation".into(), o("held"), o("released"), 1, o("till-3"), 5, 0),
        ("reservation".into(), None, o("held"), 1, o("shopper"), 5, 1),
        ("reservation".into(), o("held"), o("expired"), 1, None, 5, 0),
    ];
    expected.reverse();
    assert_eq!(summary(&page["items"]), expected);
    let items = page["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids[13], "e1");
    assert_eq!((ids[0], ids[4], ids[6]), (id(&d).as_str(), id(&b).as_str(), id(&a).as_str()));
    assert_eq!(items[12]["at"], "2027-01-15T07:59:58.5Z", "the sale's own time, as the till said");
    assert!(items[13].get("at").is_none());
    assert_eq!(items[13]["received_at"], "2027-01-15T08:00:00Z");
    assert_eq!(items[0]["received_at"], "2027-01-15T08:01:00Z", "swept on the hub's clock");
    // Versions never go back, and the newest is the position's own.
    let versions: Vec<u64> = items.iter().map(|i| i["version"].as_u64().unwrap()).collect();
    assert!(versions.windows(2).all(|w| w[0] >= w[1]), "{versions:?}");
    assert_eq!(versions[0], api.position("S", "berlin").await.3);
    assert_eq!((api.position("S", "berlin").await.0, api.position("S", "berlin").await.1), (5, 0));
}

/// Paging on while new changes arrive, across a restart: a graceful stop moves the SQLite
/// ledger's log of recent changes into the indexed history, so the pages read from both.
#[tokio::test]
async fn paging_is_stable_while_new_events_arrive_and_across_a_restart() {
    let mut hub = labelled_hub().await;
    let batch = |from: usize, to: usize| Value::Array((from..to).map(|i| ev(&format!("r{i}"), "receipt", "S", "berlin", 1)).collect());
    assert_eq!(hub.client().post_events(TOKEN, &batch(0, 25)).await.0, 200);
    hub.restart(|_| {}).await;
    if hub.database.is_none() {
        let db = rusqlite::Connection::open(hub.dir.path().join("shelfcast.db")).unwrap();
        let count = |table: &str| db.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!((count("history"), count("history_by_position")), (25, 25), "indexed by position at the stop");
    }
    let api = hub.client();
    let (_, first) = history(&api, BERLIN_ONLY, "?limit=10").await;
    let next = first["next"].as_str().expect("an older page").to_string();
    assert_eq!(api.post_events(TOKEN, &batch(25, 30)).await.0, 200, "new events meanwhile");
    let (_, second) = history(&api, BERLIN_ONLY, &format!("?limit=10&before={next}")).await;
    let next = second["next"].as_str().expect("an older page").to_string();
    let (_, third) = history(&api, BERLIN_ONLY, &format!("?limit=10&before={next}")).await;
    assert_eq!(third["next"], Value::Null, "the oldest page");
    let ids = |p: &Value| p["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let seen: Vec<String> = [ids(&first), ids(&second), ids(&third)].concat();
    let expected: Vec<String> = (0..25).rev().map(|i| format!("r{i}")).collect();
    assert_eq!(seen, expected, "each entry once, newest first, none of the later ones");
    let on_hand: Vec<i64> = third["items"].as_array().unwrap().iter().map(|i| i["on_hand"].as_i64().unwrap()).collect();
    assert_eq!(on_hand, vec![5, 4, 3, 2, 1]);
    let (_, newest) = history(&api, BERLIN_ONLY, "?limit=10").await;
    let expected: Vec<String> = (20..30).rev().map(|i| format!("r{i}")).collect();
    assert_eq!(ids(&newest), expected, "the newest page, from before and after the restart");
    assert_eq!(newest["items"][0]["on_hand"].as_i64(), Some(30));
}

#[tokio::test]
async fn a_history_is_read_only_with_a_token_for_its_location_and_bad_queries_are_refused() {
    let hub = labelled_hub().await;
    let api = hub.client();
    assert_eq!(api.post_events(TOKEN, &json!([ev("h1", "receipt", "S", "hamburg", 1)])).await.0, 200);
    let get = |path: &'static str, token: Option<&'static str>| {
        let api = api.clone();
        async move {
            let auth = token.map(|t| format!("Bearer {t}")).unwrap_or_default();
            let headers: Vec<(&str, &str)> = if token.is_some() { vec![("authorization", &auth)] } else { vec![] };
            let (s, _, b) = api.raw(Method::GET, path, &headers, "").await;
            (s, serde_json::from_str::<Value>(&b).unwrap())
        }
    };
    assert_eq!(get("/v1/positions/S/hamburg/history", None).await.0, 401);
    assert_eq!(get("/v1/positions/S/hamburg/history", Some("nobody")).await.0, 401);
    let (s, b) = get("/v1/positions/S/hamburg/history", Some(BERLIN_ONLY)).await;
    assert_eq!((s, b["error"]["code"].as_str()), (403, Some("forbidden_location")), "{b}");
    let (s, b) = get("/v1/positions/S/hamburg/history", Some(ADMIN)).await;
    assert_eq!((s, b["items"].as_array().map(Vec::len)), (200, Some(1)), "{b}");
    assert_eq!(get("/v1/positions/S/hamburg/history", Some(TOKEN)).await.0, 200);
    for (path, code) in [
        ("/v1/positions/S/hamburg/history?limit=0", "invalid_query"),
        ("/v1/positions/S/hamburg/history?limit=501", "invalid_query"),
        ("/v1/positions/S/hamburg/history?limit=ten", "invalid_query"),
        ("/v1/positions/S/hamburg/history?before=abc", "invalid_query"),
        ("/v1/positions/S/hamburg/history?before=-1", "invalid_query"),
        ("/v1/positions/S%20S/hamburg/history", "invalid_sku"),
        ("/v1/positions/S/ham%20burg/history", "invalid_location"),
    ] {
        let (s, b) = get(path, Some(ADMIN)).await;
        assert_eq!((s, b["error"]["code"].as_str()), (400, Some(code)), "{path}: {b}");
    }
    let (_, b) = get("/v1/positions/NEVER/hamburg/history", Some(ADMIN)).await;
    assert_eq!(b, json!({"items": [], "next": null}), "a position never written has an empty history");
}
