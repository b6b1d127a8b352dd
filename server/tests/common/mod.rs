//! Test harness: a hub in this process (for controlled time) or as a child process (for kill -9),
//! always on 127.0.0.1 with a real SQLite file, and a real SSE client.
#![allow(dead_code, unused_imports)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};
use shelfcast_server::{Clock, Hub, HubConfig, Rate};

mod proxy;
mod receiver;
mod tls;
pub use proxy::{Link, Proxy};
pub use receiver::{Received, Receiver};
pub use tls::TestCa;

pub const TOKEN: &str = "till-token";
pub const BERLIN_ONLY: &str = "berlin-token";

pub fn config(dir: &Path) -> HubConfig {
    let mut c = HubConfig::new(dir.to_path_buf())
        .with_device_token(&format!("{TOKEN}=*"))
        .unwrap()
        .with_device_token(&format!("{BERLIN_ONLY}=berlin"))
        .unwrap();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.allow_origins = vec!["https://shop.example".into()];
    // Tests that race hundreds of requests from one address; overload.rs sets limits itself.
    c.limits.reservations = Rate::OFF;
    c.limits.streams = Rate::OFF;
    c
}

/// A hub in this process. `clock` is the hand-moved clock when the test asked for one.
/// With `SHELFCAST_TEST_POSTGRES=postgres://user:password@host:port` set, every hub keeps its
/// ledger in a fresh PostgreSQL database there instead of SQLite: the same tests, either backend.
pub struct TestHub {
    pub hub: Option<Hub>,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub clock: Clock,
    pub database: Option<String>,
}

/// A new empty database on the test PostgreSQL, if one is configured.
pub async fn fresh_database() -> Option<String> {
    fresh_database_at("SHELFCAST_TEST_POSTGRES").await
}

/// A new empty database on the PostgreSQL server named by the environment variable `var`.
pub async fn fresh_database_at(var: &str) -> Option<String> {
    let base = std::env::var(var).ok().filter(|s| !s.is_empty())?;
    let base = base.trim_end_matches('/').to_string();
    let mut name = [0u8; 8];
    getrandom::fill(&mut name).unwrap();
    let name = format!("shelfcast_test_{}", hex::encode(name));
    let (client, conn) = tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls).await.expect("the test PostgreSQL");
    tokio::spawn(conn);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    Some(format!("{base}/{name}"))
}

impl TestHub {
    pub async fn start() -> TestHub {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut HubConfig)) -> TestHub {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.database = fresh_database().await;
        tweak(&mut c);
        let (clock, database) = (c.clock.clone(), c.database.clone());
        let hub = Hub::start(c).await.unwrap();
        TestHub { url: hub.url(), hub: Some(hub), dir, clock, database }
    }

    /// Stops gracefully and starts again on the same data directory (and a new port).
    pub async fn restart(&mut self, tweak: impl FnOnce(&mut HubConfig)) {
        self.hub.take().unwrap().stop().await.unwrap();
        let mut c = config(self.dir.path());
        c.clock = self.clock.clone();
        c.database = self.database.clone();
        tweak(&mut c);
        let hub = Hub::start(c).await.unwrap();
        self.url = hub.url();
        self.hub = Some(hub);
    }

    pub fn client(&self) -> Api {
        Api { base: self.url.clone(), http: reqwest::Client::new() }
    }

    /// A client whose connections come from another loopback address (another shopper).
    pub fn client_from(&self, local: &str) -> Api {
        let http = reqwest::Client::builder().local_address(local.parse::<std::net::IpAddr>().unwrap()).build().unwrap();
        Api { base: self.url.clone(), http }
    }
}

/// A `shelfcast serve` child process.
pub struct ChildHub {
    pub child: Child,
    pub url: String,
}

impl ChildHub {
    pub fn spawn(data: &Path, extra: &[&str]) -> ChildHub {
        let mut args = vec!["--device-token".to_string(), format!("{TOKEN}=*")];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::spawn_with(&["serve", "--listen", "127.0.0.1:0", "--data"], data, &args)
    }

    /// `shelfcast <before> DATA <after>`, waiting for its `listening on` line.
    pub fn spawn_with(before: &[&str], data: &Path, after: &[&str]) -> ChildHub {
        Self::spawn_logging(before, data, after, "warn", Stdio::inherit())
    }

    /// As `spawn`, with environment variables `env` set.
    pub fn spawn_env(data: &Path, flags: &[&str], env: &[(&str, &str)]) -> ChildHub {
        Self::launch(&["serve", "--listen", "127.0.0.1:0", "--data"], data, flags, env, "warn", Stdio::inherit())
    }

    /// As `spawn_with`, logging at `level` to `stderr`.
    pub fn spawn_logging(before: &[&str], data: &Path, after: &[&str], level: &str, stderr: Stdio) -> ChildHub {
        Self::launch(before, data, after, &[], level, stderr)
    }

    fn launch(before: &[&str], data: &Path, after: &[&str], env: &[(&str, &str)], level: &str, stderr: Stdio) -> ChildHub {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shelfcast"))
            .args(before)
            .arg(data)
            .args(after)
            .envs(env.iter().copied())
            .env("SHELFCAST_LOG", level)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start shelfcast serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("listening on ").expect("first line names the address").to_string();
        ChildHub { child, url }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`HUP`, `TERM`, …) to the hub.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().unwrap().success();
        assert!(ok, "kill -{signal}");
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }

    pub fn client(&self) -> Api {
        Api { base: self.url.clone(), http: reqwest::Client::new() }
    }

    /// A client of an HTTPS hub that trusts `ca` (and nothing else).
    pub fn client_trusting(&self, ca: &TestCa) -> Api {
        Api { base: self.url.clone(), http: ca.client().build().unwrap() }
    }
}

impl Drop for ChildHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `shelfcast ARGS` (a start that must fail) to its end and checks how it fails: exit 1,
/// nothing on stdout (so nobody waits for a `listening on` that never comes), and one
/// `shelfcast: …` line on stderr that contains `why`.
pub fn start_fails_saying(args: &[&str], why: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_shelfcast")).args(args).env("SHELFCAST_LOG", "warn").output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert_eq!(stdout, "", "{args:?}: nothing on stdout");
    let said = stderr.lines().filter(|l| l.starts_with("shelfcast: ")).collect::<Vec<_>>();
    assert_eq!(said.len(), 1, "{args:?}: one line says why: {stderr}");
    assert!(said[0].contains(why), "{args:?}: {}", said[0]);
}

pub fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("data");
    (d, p)
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

pub fn ev(id: &str, kind: &str, sku: &str, location: &str, qty: i64) -> Value {
    json!({"id": id, "type": kind, "sku": sku, "location": location, "qty": qty})
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post_events(&self, token: &str, events: &Value) -> (u16, Value) {
        let r = self.http.post(self.url("/v1/events")).bearer_auth(token).json(events).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut req = self.http.request(method, self.url(path)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        (status, headers, r.text().await.unwrap())
    }

    /// A GET whose body is bytes as sent (this client never decompresses).
    pub async fn get_bytes(&self, path: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let mut req = self.http.get(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        (status, headers, r.bytes().await.unwrap().to_vec())
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// `(on_hand, reserved, available, version)` of one position.
    pub async fn position(&self, sku: &str, location: &str) -> (i64, i64, i64, u64) {
        let (s, v) = self.get_json(&format!("/v1/availability?sku={sku}&location={location}")).await;
        assert_eq!(s, 200, "{v}");
        let p = &v["positions"][0];
        (p["on_hand"].as_i64().unwrap(), p["reserved"].as_i64().unwrap(), p["available"].as_i64().unwrap(), p["version"].as_u64().unwrap())
    }

    pub async fn reserve(&self, sku: &str, location: &str, qty: i64, key: &str) -> (u16, Value) {
        let body = json!({"sku": sku, "location": location, "qty": qty, "key": key});
        let r = self.http.post(self.url("/v1/reservations")).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// Opens an SSE stream with a real client; `last_event_id` goes in the header.
    pub async fn stream(
        &self,
        query: &str,
        last_event_id: Option<&str>,
    ) -> (reqwest::header::HeaderMap, impl Stream<Item = Event> + Unpin) {
        let mut req = self.http.get(self.url(&format!("/v1/stream?{query}")));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        let headers = r.headers().clone();
        let events = r.bytes_stream().eventsource().map(|e| e.expect("well-formed SSE"));
        (headers, Box::pin(events))
    }
}

/// The next event on a stream, or a panic naming what was awaited.
pub async fn next(events: &mut (impl Stream<Item = Event> + Unpin), what: &str) -> Event {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap_or_else(|| panic!("stream ended while waiting for {what}"))
}

/// Positions from a stream: skips the leading `retry` event.
pub async fn next_position(events: &mut (impl Stream<Item = Event> + Unpin), what: &str) -> Value {
    loop {
        let e = next(events, what).await;
        if e.event == "position" {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            // The id is the version; on a partitioned hub (PostgreSQL), a stream over SKUs of
            // several partitions sends a cursor of each one's version instead.
            if !e.id.starts_with('c') {
                assert_eq!(e.id, v["version"].to_string(), "the SSE id is the version");
            }
            return v;
        }
    }
}

/// Asserts nothing more arrives on the stream for a short while.
pub async fn quiet(events: &mut (impl Stream<Item = Event> + Unpin), ms: u64) {
    if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(ms), events.next()).await {
        panic!("unexpected event {e:?}");
    }
}

/// The socket address in a `http://` or `https://` base URL.
pub fn addr(url: &str) -> std::net::SocketAddr {
    url.split("://").last().unwrap().parse().unwrap()
}

/// The edge's `GET /v1/sync`.
pub async fn sync_status(edge: &Api) -> Value {
    edge.get_json("/v1/sync").await.1
}

/// Polls `f` every 50 ms until it holds, for at most `secs` seconds.
pub async fn until<F: std::future::Future<Output = bool>>(what: &str, secs: u64, mut f: impl FnMut() -> F) {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < end {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Until the edge has nothing left to send.
pub async fn drained(edge: &Api, secs: u64) {
    until("the edge to drain", secs, || async { sync_status(edge).await["pending"] == 0 }).await;
}
