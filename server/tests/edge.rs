//! The edge node with real processes on loopback: the link to the hub runs through a TCP proxy
//! that the tests cut and restore for real; hub and edge are killed with SIGKILL mid-sync.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const STORE: &str = "store-token";
const EDGE_TILL: &str = "edge-till";

/// An HTTP proxy to the hub that can refuse the edge's uploads of events (503) and pass
/// everything else: the edge keeps following the hub's counts but cannot hand its own events over.
struct Gate {
    url: String,
    refuse: Arc<AtomicBool>,
    _task: JoinHandle<()>,
}

async fn gate(hub: &str) -> Gate {
    use axum::body::{to_bytes, Body};
    use axum::extract::Request;
    use axum::http::{header, Method, Response, StatusCode};
    let refuse = Arc::new(AtomicBool::new(false));
    let (client, hub, refusing) = (reqwest::Client::new(), hub.to_string(), refuse.clone());
    let app = axum::Router::new().fallback(move |req: Request| {
        let (client, hub, refusing) = (client.clone(), hub.clone(), refusing.clone());
        async move {
            let (parts, body) = req.into_parts();
            if refusing.load(Ordering::SeqCst) && parts.method == Method::POST && parts.uri.path() == "/v1/events" {
                return Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).body(Body::from("refused")).unwrap();
            }
            let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let mut out = client.request(parts.method.clone(), format!("{hub}{path}"));
            for (k, v) in parts.headers.iter().filter(|(k, _)| *k != header::HOST) {
                out = out.header(k, v);
            }
            let answer = out.body(to_bytes(body, usize::MAX).await.unwrap()).send().await.unwrap();
            let mut back = Response::builder().status(answer.status());
            for (k, v) in answer.headers().iter().filter(|(k, _)| *k != header::TRANSFER_ENCODING && *k != header::CONTENT_LENGTH) {
                back = back.header(k, v);
            }
            back.body(Body::from(answer.bytes().await.unwrap())).unwrap()
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    Gate { url, refuse, _task: tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }) }
}

fn hub(data: &Path) -> ChildHub {
    ChildHub::spawn(data, &["--device-token", &format!("{STORE}=berlin")])
}

fn edge(data: &Path, hub_url: &str) -> ChildHub {
    edge_with(data, hub_url, &[])
}

fn edge_with(data: &Path, hub_url: &str, extra: &[&str]) -> ChildHub {
    let till = format!("{EDGE_TILL}=berlin");
    let mut after = vec!["--device-token", &till, "--follow-every", "200ms"];
    after.extend_from_slice(extra);
    ChildHub::spawn_with(
        &["edge", "--location", "berlin", "--hub", hub_url, "--token", STORE, "--listen", "127.0.0.1:0", "--data"],
        data,
        &after,
    )
}

/// Sales and returns at the store, as two tills would send them: `(events, net on-hand change per sku)`.
fn till_traffic(prefix: &str, n: usize) -> (Vec<Value>, [i64; 3]) {
    let mut net = [0i64; 3];
    let events = (0..n)
        .map(|i| {
            let sku = i % 3;
            let (kind, delta) = if i % 5 == 4 { ("return", 1) } else { ("sale", -1) };
            net[sku] += delta;
            ev(&format!("{prefix}:till{}:{i}", i % 2), kind, &format!("S{sku}"), "berlin", 1)
        })
        .collect();
    (events, net)
}

/// A hub stocked with `stock`, and an edge for berlin that reaches it through a proxy and has
/// already learned that stock.
struct Linked {
    hub: ChildHub,
    hapi: Api,
    proxy: Proxy,
    edge: ChildHub,
    eapi: Api,
    hub_data: std::path::PathBuf,
    edge_data: std::path::PathBuf,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn linked(stock: &[(&str, i64)]) -> Linked {
    let (h, hub_data) = data_dir();
    let (e, edge_data) = data_dir();
    let hub = hub(&hub_data);
    let hapi = hub.client();
    let receipts: Vec<Value> = stock.iter().map(|(sku, q)| ev(&format!("stock:{sku}"), "receipt", sku, "berlin", *q)).collect();
    assert_eq!(hapi.post_events(TOKEN, &Value::Array(receipts)).await.0, 200);
    let proxy = Proxy::start(addr(&hub.url)).await;
    let edge = edge(&edge_data, &proxy.url());
    let eapi = edge.client();
    for (sku, q) in stock {
        until("the edge to learn the hub's stock", 10, || async { eapi.position(sku, "berlin").await.0 == *q }).await;
    }
    Linked { hub, hapi, proxy, edge, eapi, hub_data, edge_data, _dirs: (h, e) }
}

const STOCK: [(&str, i64); 3] = [("S0", 1000), ("S1", 1000), ("S2", 1000)];

/// Cuts the link and records `n` till events at the edge while it is down.
async fn offline_traffic(l: &mut Linked, prefix: &str, n: usize) -> (Vec<Value>, [i64; 3]) {
    l.proxy.cut();
    let (events, net) = till_traffic(prefix, n);
    for chunk in events.chunks(5_000) {
        let (s, b) = l.eapi.post_events(EDGE_TILL, &Value::Array(chunk.to_vec())).await;
        assert_eq!((s, b["rejected"].as_u64()), (200, Some(0)), "the edge answers while the hub is unreachable");
    }
    (events, net)
}

async fn hub_exact(hapi: &Api, net: &[i64; 3]) {
    for (i, n) in net.iter().enumerate() {
        assert_eq!(hapi.position(&format!("S{i}"), "berlin").await.0, 1000 + n, "S{i} exact at the hub");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tills_keep_selling_offline_and_the_hub_gets_everything_once() {
    let mut l = linked(&STOCK).await;
    let (events, net) = offline_traffic(&mut l, "offline", 300).await;
    let (hapi, eapi) = (l.hapi.clone(), l.eapi.clone());
    for (i, n) in net.iter().enumerate() {
        assert_eq!(eapi.position(&format!("S{i}"), "berlin").await.0, 1000 + n, "the store's own view moved");
        assert_eq!(hapi.position(&format!("S{i}"), "berlin").await.0, 1000, "the hub has heard nothing yet");
    }
    until("the edge to notice it is offline", 10, || async { sync_status(&eapi).await["last_error"].is_string() }).await;
    let s = sync_status(&eapi).await;
    assert_eq!((s["pending"].as_u64(), s["online"].as_bool()), (Some(300), Some(false)), "{s}");

    // A browser watching the hub sees the positions arrive when the link returns.
    let (_, mut stream) = hapi.stream("sku=S0&location=berlin", None).await;
    assert_eq!(next_position(&mut stream, "initial").await["on_hand"], 1000);
    l.proxy.restore().await;
    drained(&eapi, 20).await;
    hub_exact(&hapi, &net).await;
    loop {
        let p = next_position(&mut stream, "the synced count").await;
        if p["on_hand"] == 1000 + net[0] {
            break;
        }
    }
    // Everything arrived once: sending it all again changes nothing.
    let (_, b) = hapi.post_events(TOKEN, &Value::Array(events)).await;
    assert_eq!((b["applied"].as_u64(), b["duplicates"].as_u64()), (Some(0), Some(300)));
    let s = sync_status(&eapi).await;
    assert_eq!((s["online"].as_bool(), s["pending"].as_u64(), s["last_error"].is_null()), (Some(true), Some(0), true), "{s}");
    for (i, n) in net.iter().enumerate() {
        let sku = format!("S{i}");
        until("the edge to converge with the hub", 10, || async { eapi.position(&sku, "berlin").await.0 == 1000 + n }).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_edge_mid_sync_loses_and_doubles_nothing() {
    let mut l = linked(&STOCK).await;
    let (_, net) = offline_traffic(&mut l, "k9e", 30_000).await;
    l.proxy.restore().await;
    let hapi = l.hapi.clone();
    until("the sync to start", 20, || async { hapi.position("S0", "berlin").await.0 != 1000 }).await;
    l.edge.kill9();
    let edge = edge(&l.edge_data, &l.proxy.url());
    drained(&edge.client(), 60).await;
    hub_exact(&hapi, &net).await;
}

/// What the edge learned from the hub is not in its own ledger of events, so it cannot be
/// recomputed from it: the positions table is written with that very commit, however rarely it
/// is written otherwise. Killed and restarted with the hub out of reach, the edge still knows.
#[tokio::test(flavor = "multi_thread")]
async fn counts_learned_from_the_hub_survive_kill_9_of_the_edge_offline() {
    let (_h, hub_data) = data_dir();
    let (_e, edge_data) = data_dir();
    let hub = hub(&hub_data);
    let hapi = hub.client();
    assert_eq!(hapi.post_events(TOKEN, &json!([ev("learned:1", "receipt", "L", "berlin", 40)])).await.0, 200);
    let mut proxy = Proxy::start(addr(&hub.url)).await;
    let rarely = ["--positions-every", "1h"];
    let e = edge_with(&edge_data, &proxy.url(), &rarely);
    let eapi = e.client();
    until("the edge to learn the hub's stock", 10, || async { eapi.position("L", "berlin").await.0 == 40 }).await;
    assert_eq!(eapi.post_events(EDGE_TILL, &json!([ev("learned:sale", "sale", "L", "berlin", 1)])).await.0, 200);
    proxy.cut();
    e.kill9();

    let e = edge_with(&edge_data, &proxy.url(), &rarely);
    assert_eq!(e.client().position("L", "berlin").await.0, 39, "the hub's 40, less the edge's own sale");
}

/// While the hub has not acknowledged a store's sales, the store's count is the hub's count
/// less those sales, at every change the hub makes, and still after the edge is killed and
/// started again on the same ledger (it reads what is unacknowledged back at the start).
#[tokio::test(flavor = "multi_thread")]
async fn counts_rebase_on_the_hub_with_the_unacknowledged_sales_also_after_a_restart() {
    let (_h, hub_data) = data_dir();
    let (_e, edge_data) = data_dir();
    let hub = hub(&hub_data);
    let hapi = hub.client();
    let receipt = |id: &str, qty: i64| json!([ev(id, "receipt", "U", "berlin", qty)]);
    assert_eq!(hapi.post_events(TOKEN, &receipt("unacked:stock", 100)).await.0, 200);
    let gate = gate(&hub.url).await;
    let e = edge(&edge_data, &gate.url);
    let eapi = e.client();
    until("the edge to learn the hub's stock", 10, || async { eapi.position("U", "berlin").await.0 == 100 }).await;

    gate.refuse.store(true, Ordering::SeqCst);
    let sales: Vec<Value> = (0..3).map(|i| ev(&format!("unacked:sale{i}"), "sale", "U", "berlin", 1)).collect();
    assert_eq!(eapi.post_events(EDGE_TILL, &Value::Array(sales)).await.0, 200);
    assert_eq!(eapi.position("U", "berlin").await.0, 97);
    assert_eq!(hapi.post_events(TOKEN, &receipt("unacked:more", 50)).await.0, 200);
    until("the store to count the hub's 150 less its 3 sales", 10, || async { eapi.position("U", "berlin").await.0 == 147 }).await;
    assert_eq!(sync_status(&eapi).await["pending"], 3);

    e.kill9();
    let e = edge(&edge_data, &gate.url);
    let eapi = e.client();
    assert_eq!(eapi.position("U", "berlin").await.0, 147, "the restarted store shows what it showed");
    // An upload made before the crash may have reached the hub: until the hub answers for the
    // sales, no count of the hub's can be told to hold them or not, so the store keeps its own.
    // W changes in the same commit: once the store shows it, it has read the hub's new U too.
    let last = json!([ev("unacked:last", "receipt", "U", "berlin", 10), ev("unacked:w", "receipt", "W", "berlin", 4)]);
    assert_eq!(hapi.post_events(TOKEN, &last).await.0, 200);
    until("the restarted store to read the hub's commit", 10, || async { eapi.position("W", "berlin").await.0 == 4 }).await;
    assert_eq!(eapi.position("U", "berlin").await.0, 147, "not 157 (nor 160) before the hub answers for its sales");

    gate.refuse.store(false, Ordering::SeqCst);
    drained(&eapi, 20).await;
    assert_eq!(hapi.position("U", "berlin").await.0, 157, "the hub has the sales once each");
    until("the store to count the hub's 160 less its 3 sales", 10, || async { eapi.position("U", "berlin").await.0 == 157 }).await;
    // The hub's next change rebases the store on the hub's count with nothing unacknowledged:
    // sales taken off again would leave it at 155.
    assert_eq!(hapi.post_events(TOKEN, &receipt("unacked:after", 1)).await.0, 200);
    until("the store to count the hub's 158, its sales taken off once", 10, || async { eapi.position("U", "berlin").await.0 == 158 }).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_hub_mid_sync_is_retried_until_exact() {
    let mut l = linked(&STOCK).await;
    let (_, net) = offline_traffic(&mut l, "k9h", 30_000).await;
    l.proxy.restore().await;
    let hapi = l.hapi.clone();
    until("the sync to start", 20, || async { hapi.position("S0", "berlin").await.0 != 1000 }).await;
    l.hub.kill9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hub2 = hub(&l.hub_data);
    l.proxy.retarget(addr(&hub2.url));
    drained(&l.eapi, 60).await;
    hub_exact(&hub2.client(), &net).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_online_hold_and_an_offline_sale_of_the_last_unit_are_reported_oversold() {
    let mut l = linked(&[("LAST", 1)]).await;
    l.proxy.cut();
    let (s, _) = l.hapi.reserve("LAST", "berlin", 1, "online-shopper-key-0001").await;
    assert_eq!(s, 201, "online, the unit is still available");
    assert_eq!(l.eapi.post_events(EDGE_TILL, &json!([ev("offline:last", "sale", "LAST", "berlin", 1)])).await.0, 200);
    l.proxy.restore().await;
    drained(&l.eapi, 20).await;
    assert_eq!(l.hapi.position("LAST", "berlin").await, (0, 1, -1, 3));
    let r = l.hapi.http.get(l.hapi.url("/v1/oversold")).bearer_auth(STORE).send().await.unwrap();
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["positions"][0]["sku"], "LAST", "{b}");
    assert_eq!(b["positions"][0]["available"], -1);
    // The store sees the same: the hold and its own sale, each once. (Its own sale shows at
    // once; the hub's hold when the store next follows the hub.)
    let store = || async { l.eapi.position("LAST", "berlin").await };
    until("the store to show the hold and the sale once each", 10, || async { store().await.2 == -1 }).await;
    let (on_hand, reserved, available, _) = store().await;
    assert_eq!((on_hand, reserved, available), (0, 1, -1));
}

#[tokio::test(flavor = "multi_thread")]
async fn reservations_made_while_the_store_was_offline_reach_the_store() {
    let mut l = linked(&STOCK).await;
    l.proxy.cut();
    let (s, r) = l.hapi.reserve("S2", "berlin", 2, "pickup-while-offline-0001").await;
    assert_eq!(s, 201);
    let list = |api: Api| async move {
        let r = api.http.get(api.url("/v1/reservations?location=berlin")).bearer_auth(EDGE_TILL).send().await.unwrap();
        r.json::<Value>().await.unwrap()
    };
    let eapi = l.eapi.clone();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(list(eapi.clone()).await["reservations"], json!([]), "offline: not known yet");
    l.proxy.restore().await;
    until("the hold to reach the store", 15, || async { list(eapi.clone()).await["reservations"].as_array().unwrap().len() == 1 }).await;
    let got = list(eapi.clone()).await;
    assert_eq!((&got["reservations"][0]["id"], got["reservations"][0]["qty"].as_i64()), (&r["id"], Some(2)));
    assert!(got["reservations"][0].get("token").is_none(), "staff never see the shopper's secret");
    until("the store's availability to show the hold", 10, || async { eapi.position("S2", "berlin").await.1 == 2 }).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_edge_takes_only_its_own_location_and_no_reservations() {
    let l = linked(&[]).await;
    let (_, b) = l.eapi.post_events(EDGE_TILL, &json!([ev("x:1", "sale", "S", "hamburg", 1)])).await;
    assert_eq!(b["results"][0]["error"]["code"], "forbidden_location");
    let (s, _) = l.eapi.reserve("S", "berlin", 1, "not-at-the-edge-0001").await;
    assert_eq!(s, 405, "reservations are the hub's");
    let (s, _) = l.eapi.post_events("nope", &json!([])).await;
    assert_eq!(s, 401);
}

/// 5,000 store events for 20 SKUs (even ones only sales, odd ones only receipts, 250 each)
/// recorded while the link is cut, then drained through `link`, while the store's view is read
/// every few milliseconds: every reading must be exact (the hub's stock plus the store's
/// events), never an event counted twice or not at all, and the view ends equal to the hub's.
/// With `shoppers`, people hold units of these SKUs at the hub meanwhile (on-hand stays), so
/// the hub's states of them keep travelling to the store, read before, during and after the
/// upload.
async fn the_view_stays_exact_while_draining_through(link: Link, shoppers: bool) {
    let skus: Vec<String> = (0..20).map(|i| format!("D{i}")).collect();
    let (_h, hub_data) = data_dir();
    let (_e, edge_data) = data_dir();
    let hub = ChildHub::spawn(&hub_data, &["--device-token", &format!("{STORE}=berlin"), "--reservation-rate", "0"]);
    let hapi = hub.client();
    let stock: Vec<Value> = skus.iter().map(|s| ev(&format!("stock:{s}"), "receipt", s, "berlin", 1000)).collect();
    assert_eq!(hapi.post_events(TOKEN, &Value::Array(stock)).await.0, 200);
    let mut proxy = Proxy::start_with(addr(&hub.url), link).await;
    let edge = edge(&edge_data, &proxy.url());
    let eapi = edge.client();
    let list = skus.iter().map(|s| format!("{s}@berlin")).collect::<Vec<_>>().join(",");
    let view = |api: Api, list: String| async move {
        let (_, v) = api.get_json(&format!("/v1/availability?positions={list}")).await;
        v["positions"].as_array().unwrap().iter().map(|p| p["on_hand"].as_i64().unwrap()).collect::<Vec<_>>()
    };
    until("the edge to learn the hub's stock", 30, || async { view(eapi.clone(), list.clone()).await == vec![1000; 20] }).await;

    proxy.cut();
    let events: Vec<Value> = (0..5000)
        .map(|i| {
            let sku = i % 20;
            ev(&format!("drain:{i}"), if sku % 2 == 0 { "sale" } else { "receipt" }, &skus[sku], "berlin", 1)
        })
        .collect();
    assert_eq!(eapi.post_events(EDGE_TILL, &Value::Array(events)).await.0, 200);
    let truth: Vec<i64> = (0..20).map(|i| if i % 2 == 0 { 750 } else { 1250 }).collect();
    assert_eq!(view(eapi.clone(), list.clone()).await, truth);

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (eapi, list, stop, truth) = (eapi.clone(), list.clone(), stop.clone(), truth.clone());
        tokio::spawn(async move {
            let (mut samples, mut wrong) = (0usize, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                let seen = view(eapi.clone(), list.clone()).await;
                samples += 1;
                if seen != truth && wrong.len() < 5 {
                    wrong.push(seen);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (samples, wrong)
        })
    };
    let shopping = {
        let (hapi, skus, stop) = (hapi.clone(), skus.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while shoppers && !stop.load(Ordering::SeqCst) {
                let (s, b) = hapi.reserve(&skus[n % 20], "berlin", 1, &format!("drain-shopper-{n:08}")).await;
                assert_eq!(s, 201, "{b}");
                n += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            n
        })
    };
    proxy.restore().await;
    drained(&eapi, 60).await;
    let hub_view = || async { view(hapi.clone(), list.clone()).await };
    assert_eq!(hub_view().await, truth, "the hub has every event once");
    until("the store's view to be the hub's", 30, || async { view(eapi.clone(), list.clone()).await == hub_view().await }).await;
    stop.store(true, Ordering::SeqCst);
    let (samples, wrong) = sampler.await.unwrap();
    assert!(shopping.await.unwrap() > 0 || !shoppers);
    assert!(samples > 10, "the view was read while the store drained ({samples} readings)");
    assert!(wrong.is_empty(), "{link:?}: of {samples} readings, these were not the true counts {truth:?}: {wrong:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_view_stays_exact_while_draining_through_a_50_ms_link() {
    the_view_stays_exact_while_draining_through(Link { delay: Duration::from_millis(50), ..Link::default() }, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_view_stays_exact_while_draining_through_a_400_ms_link() {
    the_view_stays_exact_while_draining_through(Link { delay: Duration::from_millis(400), ..Link::default() }, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_view_stays_exact_when_the_hubs_counts_arrive_after_its_answers() {
    let link = Link { delay: Duration::from_millis(50), hold_reads: Duration::from_millis(400) };
    the_view_stays_exact_while_draining_through(link, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_the_hub_refuses_for_the_store_shows_in_sync_status() {
    let (_h, hub_data) = data_dir();
    let (_e, edge_data) = data_dir();
    // The hub knows the store's token, but for another location only. The edge starts while
    // the hub is unreachable (a store opens offline), and learns of the refusal once it is back.
    let hub = ChildHub::spawn(&hub_data, &["--device-token", &format!("{STORE}=hamburg")]);
    let mut proxy = Proxy::start(addr(&hub.url)).await;
    proxy.cut();
    let e = edge(&edge_data, &proxy.url());
    let eapi = e.client();
    proxy.restore().await;
    until("the edge to report the refusal", 15, || async {
        sync_status(&eapi).await["last_error"].as_str().is_some_and(|e| e.contains("(403"))
    })
    .await;
    let status = sync_status(&eapi).await;
    assert_eq!(status["online"], false, "{status}");
    let error = status["last_error"].as_str().unwrap();
    assert!(error.contains("refused this token for location berlin") && error.contains("403"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edge_whose_token_the_hub_refuses_does_not_start() {
    let (_h, hub_data) = data_dir();
    // The store's token covers hamburg only; "unknown" is no token of the hub's.
    let hub = ChildHub::spawn(&hub_data, &["--device-token", &format!("{STORE}=hamburg")]);
    for (token, why) in [(STORE, "refused this token for location berlin (403"), ("unknown", "refused this edge's token (401")] {
        let (_e, edge_data) = data_dir();
        let data = edge_data.to_str().unwrap();
        let args = ["edge", "--location", "berlin", "--hub", &hub.url, "--token", token, "--listen", "127.0.0.1:0", "--data", data];
        start_fails_saying(&args, why);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_edge_answers_reads_only_for_its_own_location() {
    let l = linked(&[("S", 4)]).await;
    for path in
        ["/v1/availability?sku=S&location=hamburg", "/v1/availability?positions=S@berlin,S@hamburg", "/v1/stream?sku=S&location=hamburg"]
    {
        let (s, _, b) = l.eapi.raw(reqwest::Method::GET, path, &[], "").await;
        let b: Value = serde_json::from_str(&b).unwrap();
        assert_eq!((s, b["error"]["code"].as_str()), (403, Some("wrong_location")), "{path}: {b}");
        assert!(b["error"]["message"].as_str().unwrap().contains("hamburg"), "{b}");
    }
    assert_eq!(l.eapi.position("S", "berlin").await.0, 4, "its own location it answers");
    let (s, _, _) = l.hapi.raw(reqwest::Method::GET, "/v1/availability?sku=S&location=hamburg", &[], "").await;
    assert_eq!(s, 200, "the hub answers for every location");
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_at_the_edge_hand_over_and_release_through_the_hub_and_hear_when_it_is_away() {
    let mut l = linked(&STOCK).await;
    let (_, first) = l.hapi.reserve("S1", "berlin", 2, "pickup-at-the-edge-0001").await;
    let (_, second) = l.hapi.reserve("S1", "berlin", 1, "pickup-at-the-edge-0002").await;
    let eapi = l.eapi.clone();
    let act = |id: &Value, action: &str, body: &'static str, token: &'static str| {
        let (eapi, path) = (eapi.clone(), format!("/v1/reservations/{}/{action}", id.as_str().unwrap()));
        async move {
            let r = eapi
                .http
                .post(eapi.url(&path))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(act(&first["id"], "fulfil", "", "nope").await.0, 401);
    let (s, b) = act(&first["id"], "fulfil", "", EDGE_TILL).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("fulfilled")), "{b}");
    assert_eq!(l.hapi.position("S1", "berlin").await.0, 998, "picked up: on-hand dropped at the hub");
    let (s, b) = act(&second["id"], "release", r#"{"reason":"lost"}"#, EDGE_TILL).await;
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("invalid_reason")), "the hub's refusal, relayed");

    l.proxy.cut();
    let (s, b) = act(&second["id"], "release", r#"{"reason":"damaged"}"#, EDGE_TILL).await;
    assert_eq!((s, b["error"]["code"].as_str()), (503, Some("hub_unreachable")), "{b}");
    assert_eq!(l.hapi.position("S1", "berlin").await.1, 1, "nothing changed while the hub was away");
    l.proxy.restore().await;
    let (s, b) = act(&second["id"], "release", r#"{"reason":"damaged"}"#, EDGE_TILL).await;
    assert_eq!((s, b["released_by"].as_str(), b["reason"].as_str()), (200, Some("store"), Some("damaged")), "{b}");
    assert_eq!(l.hapi.position("S1", "berlin").await.1, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hub_knows_each_edges_link_and_counts_it_offline_when_reports_stop() {
    let (_h, hub_data) = data_dir();
    let (_e, edge_data) = data_dir();
    let hub = hub(&hub_data);
    let hapi = hub.client();
    let mut proxy = Proxy::start(addr(&hub.url)).await;
    let edge = edge_with(&edge_data, &proxy.url(), &["--report-every", "200ms"]);
    let eapi = edge.client();
    let edges = |token: &'static str| {
        let hapi = hapi.clone();
        async move {
            let r = hapi.http.get(hapi.url("/v1/edges")).bearer_auth(token).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let berlin = || async { edges(STORE).await.1["edges"][0].clone() };
    until("the edge's first report", 10, || async { berlin().await["online"] == json!(true) }).await;
    let e = berlin().await;
    assert_eq!((e["location"].as_str(), e["pending"].as_u64(), e["every_ms"].as_u64()), (Some("berlin"), Some(0), Some(200)), "{e}");
    assert!(e["reported_at"].is_string());
    assert_eq!(edges("nope").await.0, 401);

    proxy.cut();
    let sales: Vec<Value> = (0..3).map(|i| ev(&format!("cut:{i}"), "sale", "S", "berlin", 1)).collect();
    assert_eq!(eapi.post_events(EDGE_TILL, &Value::Array(sales)).await.0, 200);
    until("the hub to count the edge offline", 10, || async { berlin().await["online"] == json!(false) }).await;
    assert_eq!(sync_status(&eapi).await["pending"], 3, "the edge holds its sales meanwhile");
    proxy.restore().await;
    until("the edge back online with nothing pending", 15, || async {
        let e = berlin().await;
        e["online"] == json!(true) && e["pending"] == json!(0) && e["last_sync_at"].is_string()
    })
    .await;

    let (s, b) = {
        let r = hapi
            .http
            .put(hapi.url("/v1/locations/berlin/edge"))
            .bearer_auth(STORE)
            .header("content-type", "application/json")
            .body(r#"{"pending":0,"rejected_total":0,"every_ms":5}"#)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(s, 400, "an interval under 100 ms: {b}");
    let r = hapi.http.put(hapi.url("/v1/locations/hamburg/edge")).bearer_auth(STORE).body("{}").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403, "a token reports for its own location only");
}
