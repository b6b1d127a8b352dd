//! HTTPS with real processes on loopback and certificates made here: the hub serves TLS itself
//! (HTTP/2 and HTTP/1.1, the certificate renewed on disk without a restart), and an edge node
//! reaches it over HTTPS, trusting a private CA, or refuses it and says why.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{json, Value};

const STORE: &str = "store-token";
const EDGE_TILL: &str = "edge-till";

/// A hub serving HTTPS with a certificate for `names` from `ca`; its certificate files are in `certs`.
fn tls_hub(data: &Path, certs: &Path, ca: &TestCa, names: &[&str], expired: bool) -> ChildHub {
    tls_hub_logging(data, certs, ca, names, expired, "warn", Stdio::inherit())
}

fn tls_hub_logging(data: &Path, certs: &Path, ca: &TestCa, names: &[&str], expired: bool, level: &str, stderr: Stdio) -> ChildHub {
    let (cert, key) = ca.write(certs, names, expired);
    let (cert, key) = (cert.to_str().unwrap().to_owned(), key.to_str().unwrap().to_owned());
    let after =
        ["--device-token", &format!("{TOKEN}=*"), "--device-token", &format!("{STORE}=berlin"), "--tls-cert", &cert, "--tls-key", &key];
    let hub = ChildHub::spawn_logging(&["serve", "--listen", "127.0.0.1:0", "--data"], data, &after, level, stderr);
    assert!(hub.url.starts_with("https://127.0.0.1:"), "the hub says it serves HTTPS: {}", hub.url);
    hub
}

/// An edge for berlin following `hub_url`, trusting `ca_file` if given.
fn edge(data: &Path, hub_url: &str, ca_file: Option<&Path>) -> ChildHub {
    let till = format!("{EDGE_TILL}=berlin");
    let mut after = vec!["--device-token", &till, "--follow-every", "200ms"];
    let ca = ca_file.map(|p| p.to_str().unwrap().to_owned());
    if let Some(ca) = &ca {
        after.extend(["--hub-ca", ca]);
    }
    ChildHub::spawn_with(
        &["edge", "--location", "berlin", "--hub", hub_url, "--token", STORE, "--listen", "127.0.0.1:0", "--data"],
        data,
        &after,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edge_syncs_to_an_https_hub_it_trusts_through_its_private_ca() {
    let (dirs, hub_data) = data_dir();
    let (_e, edge_data) = data_dir();
    let ca = TestCa::new(dirs.path(), "shelfcast-test-ca");
    let hub = tls_hub(&hub_data, dirs.path(), &ca, &["127.0.0.1", "localhost"], false);
    let hapi = hub.client_trusting(&ca);
    assert_eq!(hapi.post_events(TOKEN, &json!([ev("stock:A", "receipt", "A", "berlin", 100)])).await.0, 200);

    // The link runs through a TCP proxy: TLS end to end, cut and restored for real.
    let mut proxy = Proxy::start(addr(&hub.url)).await;
    let edge = edge(&edge_data, &format!("https://{}", proxy.addr), Some(&ca.file));
    let eapi = edge.client();
    until("the edge to learn the hub's stock over HTTPS", 15, || async { eapi.position("A", "berlin").await.0 == 100 }).await;
    assert_eq!(sync_status(&eapi).await["online"], true);

    proxy.cut();
    let sales: Vec<Value> = (0..40).map(|i| ev(&format!("offline:{i}"), "sale", "A", "berlin", 1)).collect();
    let (s, b) = eapi.post_events(EDGE_TILL, &Value::Array(sales.clone())).await;
    assert_eq!((s, b["applied"].as_u64()), (200, Some(40)), "the store sells while the hub is unreachable");
    assert_eq!(eapi.position("A", "berlin").await.0, 60);
    proxy.restore().await;
    drained(&eapi, 20).await;
    assert_eq!(hapi.position("A", "berlin").await.0, 60, "every offline sale reached the hub once");
    let (_, again) = hapi.post_events(TOKEN, &Value::Array(sales)).await;
    assert_eq!(again["duplicates"], 40, "the hub holds each of them already");

    // A hold made online reaches the store over the same link.
    let (s, r) = hapi.reserve("A", "berlin", 2, "pickup-over-https-0001").await;
    assert_eq!(s, 201, "{r}");
    let list = || async {
        let r = eapi.http.get(eapi.url("/v1/reservations?location=berlin")).bearer_auth(EDGE_TILL).send().await.unwrap();
        r.json::<Value>().await.unwrap()
    };
    until("the hold to reach the store", 15, || async { list().await["reservations"][0]["id"] == r["id"] }).await;
    until("the store to show the hold", 10, || async { eapi.position("A", "berlin").await.1 == 2 }).await;
    let status = sync_status(&eapi).await;
    assert_eq!((status["online"].as_bool(), status["last_error"].is_null()), (Some(true), true), "{status}");
}

/// Starts an edge against `hub_url`, records a sale there, and returns `/v1/sync` once it
/// names an error, checking that nothing was handed over.
async fn refused(hub_url: &str, ca_file: Option<&Path>) -> Value {
    let (_e, edge_data) = data_dir();
    let edge = edge(&edge_data, hub_url, ca_file);
    let eapi = edge.client();
    assert_eq!(eapi.post_events(EDGE_TILL, &json!([ev("refused:1", "sale", "A", "berlin", 1)])).await.0, 200);
    until("the edge to report the failure", 15, || async { sync_status(&eapi).await["last_error"].is_string() }).await;
    let status = sync_status(&eapi).await;
    assert_eq!((status["online"].as_bool(), status["pending"].as_u64()), (Some(false), Some(1)), "{status}");
    status
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edge_refuses_a_hub_whose_certificate_it_cannot_trust_and_says_why() {
    let (dirs, hub_data) = data_dir();
    let ca = TestCa::new(dirs.path(), "shelfcast-test-ca");
    let hub = tls_hub(&hub_data, dirs.path(), &ca, &["127.0.0.1"], false);

    let untrusted = refused(&hub.url, None).await;
    let error = untrusted["last_error"].as_str().unwrap();
    assert!(error.contains("TLS") && error.contains("not trusted"), "{error}");

    let (other, other_data) = data_dir();
    let elsewhere = tls_hub(&other_data, other.path(), &ca, &["stock.example.com"], false);
    let mismatch = refused(&elsewhere.url, Some(&ca.file)).await;
    let error = mismatch["last_error"].as_str().unwrap();
    assert!(error.contains("does not name this host"), "{error}");

    let (old, old_data) = data_dir();
    let lapsed = tls_hub(&old_data, old.path(), &ca, &["127.0.0.1"], true);
    let expired = refused(&lapsed.url, Some(&ca.file)).await;
    let error = expired["last_error"].as_str().unwrap();
    assert!(error.contains("expired"), "{error}");

    for h in [&hub, &elsewhere, &lapsed] {
        let api = Api { base: h.url.clone(), http: ca.client().danger_accept_invalid_hostnames(true).build().unwrap() };
        if h.url != lapsed.url {
            let (_, positions) = api.get_json("/v1/availability?sku=A&location=berlin").await;
            assert_eq!(positions["positions"][0]["version"], 0, "the refused edge handed nothing over: {positions}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edge_to_a_port_where_nothing_listens_says_the_connection_was_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let status = refused(&format!("https://127.0.0.1:{port}"), None).await;
    assert!(status["last_error"].as_str().unwrap().contains("refused the connection"), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_renewed_on_disk_is_served_without_a_restart() {
    let (dirs, hub_data) = data_dir();
    let (old_ca, new_ca) = (TestCa::new(dirs.path(), "old-ca"), TestCa::new(dirs.path(), "new-ca"));
    let mut hub = tls_hub_logging(&hub_data, dirs.path(), &old_ca, &["127.0.0.1"], false, "info", Stdio::piped());
    let mut log = BufReader::new(hub.child.stderr.take().unwrap()).lines();
    let healthz = |ca: &TestCa| {
        let (client, url) = (ca.client().build().unwrap(), format!("{}/healthz", hub.url));
        async move { client.get(url).send().await.map(|r| r.status().as_u16()).ok() }
    };
    assert_eq!(healthz(&old_ca).await, Some(200));
    assert_eq!(healthz(&new_ca).await, None, "not the new CA's certificate yet");

    new_ca.write(dirs.path(), &["127.0.0.1"], false);
    until("the renewed certificate to be served", 10, || async { healthz(&new_ca).await == Some(200) }).await;
    assert_eq!(healthz(&old_ca).await, None, "the old certificate is no longer served");

    // A broken renewal (a key that is not the certificate's) leaves the certificate in force.
    let (_, stray_key) = new_ca.issue(&["127.0.0.1"], false);
    std::fs::write(dirs.path().join("key.pem"), stray_key).unwrap();
    hub.signal("HUP");
    let refused = tokio::task::spawn_blocking(move || log.find(|l| l.as_ref().is_ok_and(|l| l.contains("TLS certificate NOT reloaded"))));
    assert!(
        tokio::time::timeout(Duration::from_secs(10), refused).await.unwrap().unwrap().is_some(),
        "the hub says it kept the certificate"
    );
    assert_eq!(healthz(&new_ca).await, Some(200), "still serving the last good certificate");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_offers_http2_and_http1_and_streams_over_both() {
    let (dirs, hub_data) = data_dir();
    let ca = TestCa::new(dirs.path(), "shelfcast-test-ca");
    let hub = tls_hub(&hub_data, dirs.path(), &ca, &["127.0.0.1"], false);
    for (client, version) in
        [(ca.client().build().unwrap(), reqwest::Version::HTTP_2), (ca.client().http1_only().build().unwrap(), reqwest::Version::HTTP_11)]
    {
        let api = Api { base: hub.url.clone(), http: client };
        let r = api.http.get(api.url("/v1/stream?sku=S&location=berlin")).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.version()), (200, version));
        let mut events = Box::pin(r.bytes_stream().eventsource().map(|e| e.expect("well-formed SSE")));
        let first = next_position(&mut events, "the position's current state").await;
        let id = format!("{version:?}");
        assert_eq!(api.post_events(TOKEN, &json!([ev(&id, "receipt", "S", "berlin", 3)])).await.0, 200);
        let changed = next_position(&mut events, "the receipt on the stream").await;
        assert_eq!(changed["on_hand"].as_i64(), first["on_hand"].as_i64().map(|n| n + 3), "{version:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_flag_without_its_partner_is_refused_at_start() {
    let (dirs, data) = data_dir();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shelfcast"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data", data.to_str().unwrap(), "--tls-cert"])
        .arg(dirs.path().join("cert.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edge_serves_its_store_over_https_too() {
    let (dirs, edge_data) = data_dir();
    let ca = TestCa::new(dirs.path(), "store-ca");
    let (cert, key) = ca.write(dirs.path(), &["127.0.0.1"], false);
    let till = format!("{EDGE_TILL}=berlin");
    let edge = ChildHub::spawn_with(
        &["edge", "--location", "berlin", "--hub", "https://127.0.0.1:9", "--token", STORE, "--listen", "127.0.0.1:0", "--data"],
        &edge_data,
        &["--device-token", &till, "--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    assert!(edge.url.starts_with("https://"), "{}", edge.url);
    let eapi = edge.client_trusting(&ca);
    let (s, b) = eapi.post_events(EDGE_TILL, &json!([ev("till:1", "receipt", "A", "berlin", 4)])).await;
    assert_eq!((s, b["applied"].as_u64()), (200, Some(1)));
    assert_eq!(eapi.position("A", "berlin").await.0, 4);
}
