//! Errors before handlers run, CORS, health, metrics, the command line, signals, simulate.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use shelfcast_server::Rate;

#[tokio::test]
async fn every_error_is_json_even_before_a_handler_runs() {
    let hub = TestHub::start().await;
    let api = hub.client();
    for (method, path, headers, status, code) in [
        (Method::GET, "/nowhere", vec![], 404, "not_found"),
        (Method::PUT, "/v1/events", vec![], 405, "method_not_allowed"),
        (Method::DELETE, "/v1/availability?sku=S&location=a", vec![], 405, "method_not_allowed"),
        (Method::GET, "/v1/availability?sku=S", vec![], 400, "invalid_query"),
        (Method::GET, "/v1/reservations/x", vec![], 401, "unauthorized"),
        (
            Method::POST,
            "/v1/events",
            vec![("authorization", "Bearer till-token"), ("content-type", "text/csv")],
            415,
            "unsupported_media_type",
        ),
    ] {
        let (s, h, b) = api.raw(method.clone(), path, &headers, "").await;
        assert_eq!(s, status, "{method} {path}: {b}");
        assert_eq!(h["content-type"], "application/json", "{method} {path}");
        let v: Value = serde_json::from_str(&b).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {b}"));
        assert_eq!(v["error"]["code"], code, "{method} {path}");
        assert!(v["error"]["message"].as_str().unwrap().ends_with('.') || v["error"]["message"].as_str().unwrap().len() > 10);
    }
}

#[tokio::test]
async fn cors_answers_configured_shop_origins_only() {
    let hub = TestHub::start().await;
    let api = hub.client();
    let (s, h, _) = api
        .raw(
            Method::OPTIONS,
            "/v1/reservations",
            &[
                ("origin", "https://shop.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            "",
        )
        .await;
    assert!(s == 200 || s == 204, "{s}");
    assert_eq!(h["access-control-allow-origin"], "https://shop.example");
    assert!(h["access-control-allow-headers"].to_str().unwrap().contains("content-type"));
    for path in ["/v1/availability?sku=S&location=a", "/v1/stream?sku=S&location=a"] {
        let r = api.http.get(api.url(path)).header("origin", "https://shop.example").send().await.unwrap();
        assert_eq!(r.headers()["access-control-allow-origin"], "https://shop.example", "{path}");
    }
    let (_, h, _) = api.raw(Method::GET, "/v1/availability?sku=S&location=a", &[("origin", "https://evil.example")], "").await;
    assert!(h.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let hub = TestHub::start().await;
    let api = hub.client();
    // Before anything happened, every documented counter is there at 0.
    let (_, _, fresh) = api.raw(Method::GET, "/metrics", &[], "").await;
    for line in [
        "shelfcast_events_total{result=\"applied\"} 0",
        "shelfcast_events_total{result=\"rejected\"} 0",
        "shelfcast_reservations_total{outcome=\"created\"} 0",
        "shelfcast_reservations_total{outcome=\"expired\"} 0",
        "shelfcast_commit_failures_total{kind=\"storage\"} 0",
    ] {
        assert!(fresh.contains(line), "missing {line} at the start in\n{fresh}");
    }
    assert_eq!(api.get_json("/healthz").await.0, 200);
    let (s, b) = api.get_json("/readyz").await;
    assert_eq!((s, b["status"].as_str()), (200, Some("ready")));
    api.post_events(
        TOKEN,
        &json!([ev("m1", "receipt", "S", "berlin", 1), ev("m1", "receipt", "S", "berlin", 1), ev("m2", "sale", "S", "berlin", -1)]),
    )
    .await;
    api.reserve("S", "berlin", 5, "metrics-key-0000000").await;
    let (_, _stream) = api.stream("sku=S&location=berlin", None).await;
    let (s, h, m) = api.raw(Method::GET, "/metrics", &[], "").await;
    assert_eq!(s, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/plain"));
    for line in [
        "shelfcast_events_total{result=\"applied\"} 1",
        "shelfcast_events_total{result=\"duplicate\"} 1",
        "shelfcast_events_total{result=\"rejected\"} 1",
        "shelfcast_reservations_total{outcome=\"insufficient_stock\"} 1",
        "shelfcast_open_streams 1",
        "shelfcast_commit_batch_events_count",
        "shelfcast_commit_seconds_bucket",
    ] {
        assert!(m.contains(line), "missing {line} in\n{m}");
    }
}

#[tokio::test]
async fn flags_come_from_the_environment_too_and_sigterm_stops_cleanly() {
    let (_tmp, data) = data_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shelfcast"))
        .arg("serve")
        .env("SHELFCAST_LISTEN", "127.0.0.1:0")
        .env("SHELFCAST_DATA", &data)
        .env("SHELFCAST_DEVICE_TOKEN", "t1=berlin,hamburg;t2=*")
        .env("SHELFCAST_LOW_STOCK", "5")
        .env("SHELFCAST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let api = Api { base: line.trim().strip_prefix("listening on ").unwrap().into(), http: reqwest::Client::new() };
    let batch = json!([ev("e1", "receipt", "S", "hamburg", 5), ev("e2", "receipt", "S", "paris", 5)]);
    let (_, b) = api.post_events("t1", &batch).await;
    assert_eq!(b["results"][1]["error"]["code"], "forbidden_location");
    let (_, b) = api.post_events("t2", &batch).await;
    assert_eq!(b["results"][1]["status"], "applied");
    let (_, v) = api.get_json("/v1/availability?sku=S&location=hamburg").await;
    assert_eq!(v["positions"][0]["status"], "low_stock", "--low-stock 5 from the environment");

    let (_, mut events) = api.stream("sku=S&location=hamburg", None).await;
    next_position(&mut events, "initial").await;
    send_signal(child.id() as i32, 15);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "{status:?}");
    let end = tokio::time::timeout(Duration::from_secs(5), futures_util::StreamExt::next(&mut events)).await.unwrap();
    assert!(end.is_none(), "the stream was closed");
}

fn send_signal(pid: i32, sig: i32) {
    let ok = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().unwrap();
    assert!(ok.success());
}

#[tokio::test]
async fn simulate_drives_traffic_and_reports() {
    let hub = TestHub::start().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shelfcast"))
        .args([
            "simulate",
            "--target",
            &hub.url,
            "--token",
            TOKEN,
            "--rate",
            "400",
            "--duration",
            "2s",
            "--skus",
            "5",
            "--locations",
            "berlin,hamburg",
            "--concurrency",
            "4",
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("events acknowledged"), "a progress line: {stderr}");
    assert!(stdout.contains("events/s acknowledged"), "{stdout}");
    let applied: u64 = stdout.split(" applied").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(applied > 100, "{stdout}");
    // What simulate says it applied is what the hub holds, as positions moved by those events.
    let m = reqwest::get(format!("{}/metrics", hub.url)).await.unwrap().text().await.unwrap();
    assert!(m.contains(&format!("shelfcast_events_total{{result=\"applied\"}} {applied}")), "{stdout}\n{m}");
}

#[tokio::test]
async fn simulate_reserve_says_when_the_hubs_rate_limit_decided_the_run() {
    for (rate, limited) in [(Rate { per_second: 5, burst: 5 }, true), (Rate::OFF, false)] {
        let hub = TestHub::start_with(|c| c.limits.reservations = rate).await;
        hub.client().post_events(TOKEN, &json!([ev("r", "receipt", "SKU-00000", "berlin", 1000)])).await;
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shelfcast"))
            .args(["simulate", "--target", &hub.url, "--token", TOKEN, "--reserve", "--rate", "200", "--duration", "1s"])
            .args(["--skus", "1", "--locations", "berlin", "--concurrency", "2"])
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains("reservations/s decided"), "{stdout}");
        assert_eq!(stdout.contains("refused for this address's rate (429)"), limited, "{rate:?}: {stdout}");
    }
}

#[tokio::test]
async fn healthcheck_exits_0_for_a_ready_hub_and_1_with_the_reason_otherwise() {
    let hub = TestHub::start().await;
    let check = |url: String| async move {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shelfcast")).args(["healthcheck", &url]).output().await.unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(check(format!("{}/readyz", hub.url)).await, (Some(0), String::new()));
    // Without a URL: /readyz at the listen address the process to check is given (its
    // SHELFCAST_LISTEN, as in the container image), an unspecified address asked on loopback.
    let port = hub.url.rsplit(':').next().unwrap().to_string();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shelfcast"))
        .arg("healthcheck")
        .env("SHELFCAST_LISTEN", format!("0.0.0.0:{port}"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, stderr) = check(format!("{}/no-such-path", hub.url)).await;
    assert_eq!(code, Some(1));
    assert!(stderr.starts_with("shelfcast: ") && stderr.contains("404"), "{stderr}");
    // Nothing listens on port 1.
    let (code, stderr) = check("http://127.0.0.1:1/readyz".into()).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("refused"), "{stderr}");
}

#[tokio::test]
async fn demo_mode_serves_the_page_seeds_stock_and_keeps_selling() {
    let (_tmp, data) = data_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shelfcast"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("SHELFCAST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    let base = first.trim().strip_prefix("listening on ").unwrap().to_string();
    let token = second.trim().strip_prefix("demo device token: ").expect("the demo prints its token").to_string();
    let api = Api { base, http: reqwest::Client::new() };

    let (s, h, page) = api.raw(Method::GET, "/", &[], "").await;
    assert_eq!(s, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.contains("<shelfcast-availability") && page.contains("/embed/shelfcast.js"));
    assert!(h.get("content-security-policy").is_some());

    let stores = "berlin-mitte,hamburg-altona,munich-center";
    let versions = |v: &Value| v["positions"].as_array().unwrap().iter().map(|p| p["version"].as_u64().unwrap()).max().unwrap();
    let mut seeded = Value::Null;
    for _ in 0..50 {
        seeded = api.get_json(&format!("/v1/availability?sku=TRAIL-RUNNER-42&location={stores}")).await.1;
        if versions(&seeded) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seeded["positions"].as_array().unwrap().iter().all(|p| p["version"].as_u64() > Some(0)), "seeded: {seeded}");
    // The demo stores are in the directory, nearest first from Hamburg.
    let (s, near) = api.get_json("/v1/locations?near=53.55,9.99&sku=TRAIL-RUNNER-42").await;
    assert_eq!(s, 200, "{near}");
    let ids: Vec<&str> = near["locations"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["hamburg-altona", "berlin-mitte", "berlin-kreuzberg", "cologne-city", "munich-center"]);
    assert!(near["locations"][0]["position"]["on_hand"].as_i64().is_some());
    // The tills keep selling somewhere in the catalogue (every demo product at every demo store).
    let skus = ["TRAIL-RUNNER-42", "RAIN-JACKET-M", "THERMO-MUG-350", "WOOL-SOCKS-3P"].into_iter().chain([
        "TRAIL-RUNNER-40",
        "TRAIL-RUNNER-41",
        "TRAIL-RUNNER-43",
        "TRAIL-RUNNER-44",
    ]);
    let every_store = format!("{stores},berlin-kreuzberg,cologne-city");
    let all: String =
        skus.flat_map(|s| every_store.split(',').map(move |l| format!("{s}@{l}")).collect::<Vec<_>>()).collect::<Vec<_>>().join(",");
    let before = versions(&api.get_json(&format!("/v1/availability?positions={all}")).await.1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = versions(&api.get_json(&format!("/v1/availability?positions={all}")).await.1);
    assert!(after > before, "simulated tills changed stock ({before} → {after})");
    // The console's Activity page counts what the simulated tills did (they write through the
    // hub's writer, not over HTTP): the 40 seeded receipts and at least one sale or receipt since.
    let (s, _, b) = api.raw(Method::GET, "/console/api/activity", &[("authorization", &format!("Bearer {token}"))], "").await;
    assert_eq!(s, 200, "{b}");
    let activity: Value = serde_json::from_str(&b).unwrap();
    let counted: u64 = activity["seconds"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["events"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()))
        .sum();
    assert!(counted > 40, "the demo's seed and tills on the Activity page: {counted}");
    // The printed token writes; the page's till panel records a sale too.
    let (_, b) = api.post_events(&token, &json!([ev("demo-test:1", "receipt", "TRAIL-RUNNER-42", "berlin-mitte", 1)])).await;
    assert_eq!(b["applied"], 1);
    let (s, _, _) = api
        .raw(
            Method::POST,
            "/demo/till",
            &[("content-type", "application/json")],
            r#"{"sku":"TRAIL-RUNNER-42","location":"berlin-mitte","type":"sale"}"#,
        )
        .await;
    assert_eq!(s, 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_start_that_cannot_serve_prints_nothing_on_stdout_and_says_why_in_one_line() {
    let (tmp, data) = data_dir();
    // A data directory that cannot be created (its parent is a file).
    let blocker = tmp.path().join("not-a-directory");
    std::fs::write(&blocker, "").unwrap();
    let unwritable = blocker.join("data");
    let missing = tmp.path().join("no-such-tokens-file");
    let cases: [(Vec<&str>, &str); 3] = [
        (vec!["serve", "--listen", "127.0.0.1:0", "--data", unwritable.to_str().unwrap()], "ledger"),
        (vec!["serve", "--listen", "127.0.0.1:0", "--data", data.to_str().unwrap(), "--tokens-file", missing.to_str().unwrap()], "tokens"),
        (
            // Nothing listens on port 1: the database cannot be reached.
            vec!["serve", "--listen", "127.0.0.1:0", "--database", "postgres://shelfcast:shelfcast@127.0.0.1:1/nothing"],
            "PostgreSQL",
        ),
    ];
    for (args, why) in cases {
        start_fails_saying(&args, why);
    }
}

#[tokio::test]
async fn logs_to_a_pipe_carry_no_colour_codes_and_json_logs_are_one_object_a_line() {
    for format in ["text", "json"] {
        let (_tmp, data) = data_dir();
        let mut child = Command::new(env!("CARGO_BIN_EXE_shelfcast"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data", data.to_str().unwrap(), "--log-format", format])
            .env("SHELFCAST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("listening on http://"), "{line}");
        let ok = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap().success();
        assert!(ok);
        let out = child.wait_with_output().unwrap();
        let logs = String::from_utf8(out.stderr).unwrap();
        assert!(logs.lines().count() >= 2, "{logs}");
        assert!(!logs.contains('\u{1b}'), "{format}: no escape codes into a pipe: {logs}");
        if format == "json" {
            for l in logs.lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                assert!(v["level"].is_string() && v["fields"]["message"].is_string(), "{l}");
            }
        }
    }
}

#[tokio::test]
async fn an_edge_nodes_report_of_its_link_is_kept_and_listed_by_location() {
    let hub = TestHub::start().await;
    let api = hub.client();
    let put = |location: &'static str, token: &'static str, body: &'static str| {
        let api = api.clone();
        async move {
            let path = format!("/v1/locations/{location}/edge");
            api.raw(
                reqwest::Method::PUT,
                &path,
                &[("authorization", &format!("Bearer {token}")), ("content-type", "application/json")],
                body,
            )
            .await
            .0
        }
    };
    let report = r#"{"pending":5,"last_sync_at":null,"last_error":"the hub's name does not resolve","rejected_total":1,"every_ms":5000}"#;
    assert_eq!(put("berlin", BERLIN_ONLY, report).await, 204);
    assert_eq!(put("hamburg", BERLIN_ONLY, report).await, 403);
    assert_eq!(put("berlin", BERLIN_ONLY, "{\"pending\":-1}").await, 400);
    assert_eq!(put("berlin", "nope", report).await, 401);
    let (s, _, b) = api.raw(reqwest::Method::GET, "/v1/edges", &[("authorization", &format!("Bearer {TOKEN}"))], "").await;
    assert_eq!(s, 200, "{b}");
    let b: serde_json::Value = serde_json::from_str(&b).unwrap();
    let e = &b["edges"][0];
    assert_eq!((e["location"].as_str(), e["online"].as_bool(), e["pending"].as_u64()), (Some("berlin"), Some(true), Some(5)), "{b}");
    assert_eq!(e["last_error"].as_str(), Some("the hub's name does not resolve"));
    assert_eq!(b["edges"].as_array().unwrap().len(), 1, "the refused reports kept nothing");
}
