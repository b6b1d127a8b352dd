//! Webhooks over real HTTP to a real receiver on loopback: every change of status and every
//! reservation change is delivered once, signed as Standard Webhooks; a failing receiver is
//! tried again with the same `webhook-id` until it takes it; deliveries survive kill -9 of the
//! hub; only public receivers without `--allow-private-webhooks`; back-in-stock watches fire
//! once. (With `SHELFCAST_TEST_POSTGRES` set, the in-process hubs run on PostgreSQL.)

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

const ADMIN: &str = "admin-secret";

async fn admin(api: &Api, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let auth = format!("Bearer {ADMIN}");
    let mut headers = vec![("authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let (s, _, b) = api.raw(method, path, &headers, body.map(|b| b.to_string()).unwrap_or_default()).await;
    (s, serde_json::from_str(&b).unwrap_or(Value::Null))
}

async fn subscribe(api: &Api, url: &str, events: &[&str], locations: Option<&[&str]>) -> (String, String) {
    let mut body = json!({"url": url, "events": events});
    if let Some(l) = locations {
        body["locations"] = json!(l);
    }
    let (s, b) = admin(api, Method::POST, "/admin/webhooks", Some(body)).await;
    assert_eq!(s, 201, "{b}");
    let secret = b["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    (b["id"].as_str().unwrap().to_owned(), secret)
}

fn verify(r: &Received, secret: &str) {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(r.signature, expected, "signed with the subscription's secret");
    assert!(r.id.starts_with("msg_"), "{}", r.id);
    let ts: i64 = r.timestamp.parse().expect("webhook-timestamp is seconds");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - ts).abs() < 60, "webhook-timestamp {ts} is now");
}

async fn hub(allow_private: bool) -> TestHub {
    TestHub::start_with(|c| {
        c.admin_token = Some(ADMIN.into());
        c.allow_private_webhooks = allow_private;
        c.webhook_backoff = Duration::from_millis(50);
    })
    .await
}

const POSITION: [&str; 4] = ["position.out_of_stock", "position.low_stock", "position.back_in_stock", "position.oversold"];
const RESERVATION: [&str; 5] =
    ["reservation.created", "reservation.confirmed", "reservation.released", "reservation.expired", "reservation.fulfilled"];

#[tokio::test(flavor = "multi_thread")]
async fn every_change_of_status_and_reservation_is_delivered_once_and_signed() {
    let hub = hub(true).await;
    let api = hub.client();
    let all = Receiver::start().await;
    let berlin = Receiver::start().await;
    let events: Vec<&str> = POSITION.iter().chain(RESERVATION.iter()).copied().collect();
    let (all_id, secret) = subscribe(&api, &all.url, &events, None).await;
    let (_, berlin_secret) = subscribe(&api, &berlin.url, &["position.out_of_stock"], Some(&["berlin"])).await;

    let post = |id: &str, kind: &str, location: &str, qty: i64| json!([ev(id, kind, "W", location, qty)]);
    assert_eq!(api.post_events(TOKEN, &post("w1", "receipt", "berlin", 5)).await.0, 200);
    assert_eq!(api.post_events(TOKEN, &post("w2", "sale", "berlin", 3)).await.0, 200);
    let (s, res) = api.reserve("W", "berlin", 2, "webhook-test-key-0001").await;
    assert_eq!(s, 201, "{res}");
    assert_eq!(api.post_events(TOKEN, &post("w3", "sale", "berlin", 1)).await.0, 200);
    assert_eq!(api.post_events(TOKEN, &post("w4", "receipt", "hamburg", 1)).await.0, 200);
    // A change within one status says nothing.
    assert_eq!(api.post_events(TOKEN, &post("w5", "receipt", "hamburg", 10)).await.0, 200);
    assert_eq!(api.post_events(TOKEN, &post("w6", "sale", "hamburg", 1)).await.0, 200);
    let auth = format!("Bearer {}", res["token"].as_str().unwrap());
    let path = format!("/v1/reservations/{}", res["id"].as_str().unwrap());
    assert_eq!(api.raw(Method::DELETE, &path, &[("authorization", &auth)], "").await.0, 200);

    // Deliveries go out several at a time: compare what arrived, not its order.
    let mut expected = vec![
        "position.back_in_stock",
        "position.low_stock",
        "position.out_of_stock",
        "reservation.created",
        "position.oversold",
        "position.low_stock",
        "position.back_in_stock",
        // The release brings berlin from -1 back to 1.
        "position.low_stock",
        "position.back_in_stock",
        "reservation.released",
    ];
    let mut got = all.until_types(expected.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(all.types().len(), expected.len(), "nothing more: {:?}", all.types());
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    for r in all.all() {
        verify(&r, &secret);
        let b = r.json();
        assert!(b["timestamp"].as_str().unwrap().ends_with('Z'), "{b}");
    }
    let by_type = |t: &str| all.all().into_iter().map(|r| r.json()).filter(|b| b["type"] == t).collect::<Vec<_>>();
    let out = &by_type("position.out_of_stock")[0]["data"];
    assert_eq!((out["sku"].as_str(), out["location"].as_str()), (Some("W"), Some("berlin")));
    assert_eq!((out["on_hand"].as_i64(), out["reserved"].as_i64(), out["available"].as_i64()), (Some(2), Some(2), Some(0)));
    assert_eq!((out["status"].as_str(), out["previous_available"].as_i64()), (Some("out_of_stock"), Some(2)));
    assert_eq!(by_type("position.oversold")[0]["data"]["available"], -1);
    let created = &by_type("reservation.created")[0]["data"];
    assert_eq!((created["id"].as_str(), created["qty"].as_i64(), created["status"].as_str()), (res["id"].as_str(), Some(2), Some("held")));
    let released = &by_type("reservation.released")[0]["data"];
    assert_eq!((released["status"].as_str(), released["previous_status"].as_str()), (Some("released"), Some("held")));
    let token = res["token"].as_str().unwrap();
    assert!(!all.all().iter().any(|r| r.body.contains(token)), "no reservation token in a body");

    // The berlin-only subscription heard berlin's out of stock, nothing of hamburg.
    assert_eq!(berlin.until_types(1).await, ["position.out_of_stock"]);
    assert_eq!(berlin.all()[0].json()["data"]["location"], "berlin");
    verify(&berlin.all()[0], &berlin_secret);

    let (s, list) = admin(&api, Method::GET, &format!("/admin/webhooks/{all_id}/deliveries"), None).await;
    assert_eq!(s, 200, "{list}");
    let deliveries = list["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), expected.len());
    assert!(deliveries.iter().all(|d| d["state"] == "delivered" && d["attempts"] == 1 && d["last_status"] == 200), "{list}");
    assert_eq!(deliveries[0]["type"], "reservation.released", "latest first (the release's commit records it last)");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_receiver_gets_the_same_delivery_again_until_it_takes_it() {
    let hub = hub(true).await;
    let api = hub.client();
    let receiver = Receiver::start().await;
    receiver.fail.store(3, Ordering::SeqCst);
    let (id, secret) = subscribe(&api, &receiver.url, &["position.back_in_stock"], None).await;
    assert_eq!(api.post_events(TOKEN, &json!([ev("f1", "receipt", "F", "berlin", 4)])).await.0, 200);
    until("four tries", 20, || async { receiver.all().len() >= 4 }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tries = receiver.all();
    assert_eq!(tries.len(), 4, "three failures, then taken, then nothing more");
    assert!(tries.iter().all(|t| t.id == tries[0].id && t.body == tries[0].body), "one webhook-id and body on every try");
    tries.iter().for_each(|t| verify(t, &secret));
    let (_, list) = admin(&api, Method::GET, &format!("/admin/webhooks/{id}/deliveries"), None).await;
    let d = &list["deliveries"][0];
    assert_eq!((d["state"].as_str(), d["attempts"].as_i64(), d["last_status"].as_i64()), (Some("delivered"), Some(4), Some(200)), "{list}");
    assert_eq!(d["id"].as_str(), Some(tries[0].id.as_str()));

    // A receiver that does not answer at all: pending, with the error and the next try.
    let gone = Receiver::start().await;
    gone.status.store(503, Ordering::SeqCst);
    let (gone_id, _) = subscribe(&api, &gone.url, &["position.out_of_stock"], None).await;
    assert_eq!(api.post_events(TOKEN, &json!([ev("f2", "sale", "F", "berlin", 4)])).await.0, 200);
    until("a few failed tries", 20, || async { gone.all().len() >= 3 }).await;
    let (_, list) = admin(&api, Method::GET, &format!("/admin/webhooks/{gone_id}/deliveries"), None).await;
    let d = &list["deliveries"][0];
    assert_eq!((d["state"].as_str(), d["last_status"].as_i64()), (Some("pending"), Some(503)), "{list}");
    assert!(d["next_try"].is_string() && d["attempts"].as_i64().unwrap() >= 2, "{list}");
    // Deleting the subscription ends what it had pending.
    assert_eq!(admin(&api, Method::DELETE, &format!("/admin/webhooks/{gone_id}"), None).await.0, 204);
    assert_eq!(admin(&api, Method::GET, &format!("/admin/webhooks/{gone_id}/deliveries"), None).await.0, 404);
    let (_, hooks) = admin(&api, Method::GET, "/admin/webhooks", None).await;
    assert_eq!(hooks["webhooks"].as_array().unwrap().len(), 1, "{hooks}");
    assert!(hooks["webhooks"][0].get("secret").is_none(), "no secret in the list: {hooks}");
}

/// kill -9 of the hub while deliveries wait for a receiver that is down: after the restart
/// every one of them is delivered.
#[tokio::test(flavor = "multi_thread")]
async fn deliveries_survive_kill_9_of_the_hub() {
    let (_d, data) = data_dir();
    let flags = ["--admin-token", ADMIN, "--allow-private-webhooks", "--webhook-backoff", "100ms"];
    let hub = ChildHub::spawn(&data, &flags);
    let api = hub.client();
    let receiver = Receiver::start().await;
    receiver.status.store(503, Ordering::SeqCst);
    subscribe(&api, &receiver.url, &["position.back_in_stock", "position.out_of_stock"], None).await;
    let events: Vec<Value> = (0..20).map(|i| ev(&format!("k{i}"), "receipt", &format!("K{i}"), "berlin", 1)).collect();
    assert_eq!(api.post_events(TOKEN, &Value::Array(events)).await.0, 200);
    let sold: Vec<Value> = (0..20).map(|i| ev(&format!("s{i}"), "sale", &format!("K{i}"), "berlin", 1)).collect();
    assert_eq!(api.post_events(TOKEN, &Value::Array(sold)).await.0, 200);
    until("the receiver to refuse some", 20, || async { !receiver.all().is_empty() }).await;
    hub.kill9();

    receiver.status.store(200, Ordering::SeqCst);
    let hub = ChildHub::spawn(&data, &flags);
    until("all 40 after the restart", 30, || async { receiver.types().len() >= 40 }).await;
    let taken: HashMap<String, usize> = receiver.types().into_iter().fold(HashMap::new(), |mut m, t| {
        *m.entry(t).or_default() += 1;
        m
    });
    assert_eq!(taken.get("position.back_in_stock"), Some(&20));
    assert_eq!(taken.get("position.out_of_stock"), Some(&20));
    drop(hub);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_public_receivers_without_allow_private_webhooks() {
    let hub = hub(false).await;
    let api = hub.client();
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.8/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://localhost:8080/hook",
        "ftp://93.184.216.34/hook",
        "not a url",
    ] {
        let (s, b) = admin(&api, Method::POST, "/admin/webhooks", Some(json!({"url": url, "events": ["position.low_stock"]}))).await;
        assert_eq!((s, b["error"]["code"].as_str()), (400, Some("invalid_webhook")), "{url}: {b}");
    }
    for body in [
        json!({"url": "https://93.184.216.34/hook", "events": ["position.sold"]}),
        json!({"url": "https://93.184.216.34/hook", "events": []}),
        json!({"url": "https://93.184.216.34/hook", "events": ["position.low_stock"], "locations": ["not a location"]}),
        json!({"url": "https://93.184.216.34/hook"}),
    ] {
        let (s, b) = admin(&api, Method::POST, "/admin/webhooks", Some(body.clone())).await;
        assert_eq!((s, b["error"]["code"].as_str()), (400, Some("invalid_webhook")), "{body}: {b}");
    }
    let (s, b) = admin(&api, Method::GET, "/admin/webhooks", None).await;
    assert_eq!((s, b["webhooks"].as_array().map(Vec::len)), (200, Some(0)), "nothing was kept: {b}");
    let (s, b) =
        admin(&api, Method::POST, "/admin/webhooks", Some(json!({"url": "https://93.184.216.34/hook", "events": ["position.low_stock"]})))
            .await;
    assert_eq!(s, 201, "a public address: {b}");
    assert_eq!(b["locations"], json!(["*"]));
    let headers = [("authorization", "Bearer wrong"), ("content-type", "application/json")];
    let (s, _, _) = api.raw(Method::POST, "/admin/webhooks", &headers, "{}").await;
    assert_eq!(s, 401);

    let plain = TestHub::start().await;
    let (s, _, _) = plain.client().raw(Method::GET, "/admin/webhooks", &[("authorization", "Bearer x")], "").await;
    assert_eq!(s, 404, "no admin endpoints without --admin-token");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_fires_once_when_its_position_comes_back() {
    let hub = hub(true).await;
    let api = hub.client();
    let receiver = Receiver::start().await;
    subscribe(&api, &receiver.url, &["watch.triggered"], None).await;
    let watch = |token: &str, body: Value| {
        let api = api.clone();
        let auth = format!("Bearer {token}");
        async move {
            let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
            let (s, _, b) = api.raw(Method::POST, "/v1/watches", &headers, body.to_string()).await;
            (s, serde_json::from_str::<Value>(&b).unwrap_or(Value::Null))
        }
    };
    let (s, w) = watch(BERLIN_ONLY, json!({"sku": "N", "location": "berlin", "subscriber": "cust-1"})).await;
    assert_eq!(s, 201, "{w}");
    assert!(w["id"].as_str().unwrap().starts_with("watch_"));
    for (token, body, status, code) in [
        (BERLIN_ONLY, json!({"sku": "N", "location": "hamburg", "subscriber": "c"}), 403, "forbidden_location"),
        (BERLIN_ONLY, json!({"sku": "N", "location": "berlin", "subscriber": "me@example.com"}), 400, "invalid_subscriber"),
        (BERLIN_ONLY, json!({"sku": "N", "location": "berlin"}), 400, "invalid_subscriber"),
        (BERLIN_ONLY, json!({"sku": "not a sku", "location": "berlin", "subscriber": "c"}), 400, "invalid_sku"),
        ("nobody", json!({"sku": "N", "location": "berlin", "subscriber": "c"}), 401, "unauthorized"),
    ] {
        let (s, b) = watch(token, body.clone()).await;
        assert_eq!((s, b["error"]["code"].as_str()), (status, Some(code)), "{body}: {b}");
    }
    let (s, _) = watch(ADMIN, json!({"sku": "N", "location": "berlin", "subscriber": "cust-2"})).await;
    assert_eq!(s, 201, "the admin token too");

    // Out of stock (never stocked) → back: both watches fire, once each.
    assert_eq!(api.post_events(TOKEN, &json!([ev("n1", "receipt", "N", "berlin", 3)])).await.0, 200);
    receiver.until_types(2).await;
    let mut subscribers: Vec<String> = receiver.all().iter().map(|r| r.json()["data"]["subscriber"].as_str().unwrap().to_owned()).collect();
    subscribers.sort();
    assert_eq!(subscribers, ["cust-1", "cust-2"]);
    let data = receiver.all()[0].json()["data"].clone();
    assert_eq!((data["sku"].as_str(), data["location"].as_str(), data["available"].as_i64()), (Some("N"), Some("berlin"), Some(3)));
    // Sold out and back again: the watches are done.
    assert_eq!(api.post_events(TOKEN, &json!([ev("n2", "sale", "N", "berlin", 3), ev("n3", "receipt", "N", "hamburg", 1)])).await.0, 200);
    assert_eq!(api.post_events(TOKEN, &json!([ev("n4", "receipt", "N", "berlin", 1)])).await.0, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.types().len(), 2, "nothing more: {:?}", receiver.types());
}

/// On the hub's clock: a receiver failing for 72 hours gets no more tries (`failed`), and
/// ended deliveries are forgotten after 7 days.
#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_fails_for_good_after_72_hours_and_ended_ones_go_after_a_week() {
    const T0: i64 = 1_800_000_000_000;
    const HOUR: i64 = 3_600_000;
    let hub = TestHub::start_with(|c| {
        c.admin_token = Some(ADMIN.into());
        c.allow_private_webhooks = true;
        c.webhook_backoff = Duration::from_millis(50);
        c.clock = shelfcast_server::Clock::manual(T0);
    })
    .await;
    let api = hub.client();
    let receiver = Receiver::start().await;
    receiver.status.store(503, Ordering::SeqCst);
    let (id, _) = subscribe(&api, &receiver.url, &["position.back_in_stock"], None).await;
    assert_eq!(api.post_events(TOKEN, &json!([ev("t1", "receipt", "T", "berlin", 1)])).await.0, 200);
    let state = || {
        let api = api.clone();
        let path = format!("/admin/webhooks/{id}/deliveries");
        async move {
            let (_, list) = admin(&api, Method::GET, &path, None).await;
            list["deliveries"].as_array().cloned().unwrap_or_default()
        }
    };
    until("the first try", 10, || async { state().await.first().is_some_and(|d| d["attempts"] == 1) }).await;
    // Each try is due at once on this clock once it is moved past the pause.
    hub.clock.advance(71 * HOUR);
    until("a try 71 hours on", 10, || async { state().await[0]["attempts"] == 2 }).await;
    assert_eq!(state().await[0]["state"], "pending", "still within 72 hours");
    hub.clock.advance(2 * HOUR);
    until("the delivery to fail for good", 10, || async { state().await[0]["state"] == "failed" }).await;
    let d = &state().await[0];
    assert!(d["next_try"].is_null(), "{d}");
    let tries = receiver.all().len();
    hub.clock.advance(2 * HOUR);
    assert_eq!(api.post_events(TOKEN, &json!([ev("t2", "sale", "T", "berlin", 1)])).await.0, 200);
    assert_eq!(state().await.len(), 1);
    assert_eq!(receiver.all().len(), tries, "no try after it failed");

    hub.clock.advance(8 * 24 * HOUR);
    until("ended deliveries to be forgotten after a week", 10, || async { state().await.is_empty() }).await;
}

/// A position's deliveries reach a subscription in the order of its changes, one at a time,
/// also when the receiver refuses some first (the next waits for the one before it).
#[tokio::test(flavor = "multi_thread")]
async fn a_positions_deliveries_arrive_in_the_order_of_its_changes() {
    let hub = hub(true).await;
    let api = hub.client();
    let receiver = Receiver::start().await;
    receiver.fail.store(3, Ordering::SeqCst);
    subscribe(&api, &receiver.url, &["position.out_of_stock", "position.back_in_stock"], None).await;
    for i in 0..15 {
        assert_eq!(api.post_events(TOKEN, &json!([ev(&format!("o{i}r"), "receipt", "O", "berlin", 1)])).await.0, 200);
        assert_eq!(api.post_events(TOKEN, &json!([ev(&format!("o{i}s"), "sale", "O", "berlin", 1)])).await.0, 200);
        // Another position's changes in between, in its own lane.
        assert_eq!(api.post_events(TOKEN, &json!([ev(&format!("p{i}"), "receipt", &format!("P{i}"), "berlin", 1)])).await.0, 200);
    }
    receiver.until_types(45).await;
    let order: Vec<String> = receiver
        .all()
        .iter()
        .map(|r| r.json())
        .filter(|b| b["data"]["sku"] == "O")
        .map(|b| b["type"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    // Each try as it arrived, refused ones included: never a later change before an earlier one.
    let mut firsts: Vec<String> = Vec::new();
    for t in order {
        if firsts.last() != Some(&t) {
            firsts.push(t);
        }
    }
    let expected: Vec<&str> = (0..15).flat_map(|_| ["position.back_in_stock", "position.out_of_stock"]).collect();
    assert_eq!(firsts, expected);

    // The receiver has the last delivery a moment before the hub has its answer: the metrics
    // say so once the hub has it.
    let metrics = || async { api.raw(Method::GET, "/metrics", &[("authorization", &format!("Bearer {ADMIN}"))], "").await.2 };
    let value = |metrics: &str, series: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(-1.0)
    };
    until("the last answer counted", 10, || async {
        let m = metrics().await;
        value(&m, "shelfcast_webhook_tries_total{result=\"delivered\"}") == 45.0
            && value(&m, "shelfcast_webhook_oldest_pending_seconds") == 0.0
    })
    .await;
    let m = metrics().await;
    assert_eq!(value(&m, "shelfcast_webhook_tries_total{result=\"delivered\"}"), 45.0, "{m}");
    assert_eq!(value(&m, "shelfcast_webhook_tries_total{result=\"retry\"}"), 3.0);
}

/// A receiver that hangs holds up only its own subscription's sender (8 tries at once):
/// another subscription's deliveries, each of which waits for the one before it in its lane,
/// all arrive meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_receiver_does_not_hold_up_another() {
    let hub = hub(true).await;
    let api = hub.client();
    let (slow, fast) = (Receiver::start().await, Receiver::start().await);
    slow.hold();
    let events = ["position.out_of_stock", "position.back_in_stock"];
    subscribe(&api, &slow.url, &events, None).await;
    subscribe(&api, &fast.url, &events, None).await;
    // Forty positions, each back in and out of stock twice: four deliveries a lane, 160 to each.
    for round in 0..2 {
        for i in 0..40 {
            let sku = format!("H{i}");
            assert_eq!(api.post_events(TOKEN, &json!([ev(&format!("h{round}-{i}r"), "receipt", &sku, "berlin", 1)])).await.0, 200);
            assert_eq!(api.post_events(TOKEN, &json!([ev(&format!("h{round}-{i}s"), "sale", &sku, "berlin", 1)])).await.0, 200);
        }
    }
    fast.until_types(160).await;
    let asked = slow.types().len();
    assert!((1..=8).contains(&asked), "the hanging receiver was asked {asked} deliveries at once");
    slow.release();
    assert_eq!(slow.until_types(160).await.len(), 160);
}

/// The receiver example of docs/examples, which checks signatures with the Python
/// `standardwebhooks` package: it takes every delivery, and refuses one signed with another
/// secret.
#[tokio::test(flavor = "multi_thread")]
async fn the_standardwebhooks_package_verifies_the_signatures() {
    use std::io::{BufRead, BufReader};
    let hub = hub(true).await;
    let api = hub.client();
    // A subscription first (its secret is the receiver's), to an address the receiver takes next.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/");
    let (_, secret) = subscribe(&api, &url, &["position.back_in_stock", "position.low_stock"], None).await;
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/examples/webhook-receiver.py");
    let mut child = std::process::Command::new("python3")
        .arg(example)
        .arg(port.to_string())
        .env("SHELFCAST_WEBHOOK_SECRET", &secret)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    assert!(line(&mut rx).await.starts_with("listening on"), "the example starts");
    assert_eq!(api.post_events(TOKEN, &json!([ev("py1", "receipt", "PY", "berlin", 2)])).await.0, 200);
    let mut taken: Vec<String> = Vec::new();
    for _ in 0..2 {
        let line: Value = serde_json::from_str(&line(&mut rx).await).unwrap();
        assert!(line.get("rejected").is_none(), "verified: {line}");
        assert_eq!(line["data"]["sku"], "PY");
        taken.push(line["type"].as_str().unwrap().to_owned());
    }
    taken.sort();
    assert_eq!(taken, ["position.back_in_stock", "position.low_stock"]);
    // Signed with another secret: refused.
    let forged = reqwest::Client::new()
        .post(&url)
        .header("webhook-id", "msg_forged")
        .header("webhook-timestamp", (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).to_string())
        .header("webhook-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    assert!(line(&mut rx).await.contains("rejected"));
    child.kill().unwrap();
    let _ = child.wait();
}

async fn line(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("a line").expect("the receiver runs")
}
