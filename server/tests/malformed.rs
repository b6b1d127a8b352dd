//! Hostile and broken requests, table-driven: each gets the right 4xx with the JSON error body,
//! changes nothing, and leaves the hub healthy.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

struct Case {
    what: &'static str,
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: String,
    status: u16,
    code: &'static str,
}

fn case(
    what: &'static str,
    method: Method,
    path: &str,
    headers: &[(&'static str, &str)],
    body: &str,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        what,
        method,
        path: path.into(),
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        body: body.into(),
        status,
        code,
    }
}

const AUTH: (&str, &str) = ("authorization", "Bearer till-token");
const JSON: (&str, &str) = ("content-type", "application/json");

/// Events that are well-formed JSON but invalid: the request is a 200 and each is rejected.
fn rejected_events() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("huge qty", json!({"id": "m1", "type": "sale", "sku": "S", "location": "berlin", "qty": 1e30}), "invalid_qty"),
        (
            "qty past i64",
            json!({"id": "m2", "type": "receipt", "sku": "S", "location": "berlin", "qty": 18446744073709551615u64}),
            "invalid_qty",
        ),
        ("negative sale", json!({"id": "m3", "type": "sale", "sku": "S", "location": "berlin", "qty": -1}), "invalid_qty"),
        ("zero receipt", json!({"id": "m4", "type": "receipt", "sku": "S", "location": "berlin", "qty": 0}), "invalid_qty"),
        ("zero adjust", json!({"id": "m5", "type": "adjust", "sku": "S", "location": "berlin", "qty": 0}), "invalid_qty"),
        ("negative count", json!({"id": "m6", "type": "count", "sku": "S", "location": "berlin", "qty": -3}), "invalid_qty"),
        ("unicode id", json!({"id": "käse-1", "type": "sale", "sku": "S", "location": "berlin", "qty": 1}), "invalid_id"),
        ("control char id", json!({"id": "a\u{0007}b", "type": "sale", "sku": "S", "location": "berlin", "qty": 1}), "invalid_id"),
        ("space in id", json!({"id": "a b", "type": "sale", "sku": "S", "location": "berlin", "qty": 1}), "invalid_id"),
        ("over-long id", json!({"id": "x".repeat(129), "type": "sale", "sku": "S", "location": "berlin", "qty": 1}), "invalid_id"),
        ("empty id", json!({"id": "", "type": "sale", "sku": "S", "location": "berlin", "qty": 1}), "invalid_id"),
        ("over-long sku", json!({"id": "m7", "type": "sale", "sku": "S".repeat(65), "location": "berlin", "qty": 1}), "invalid_sku"),
        ("unicode location", json!({"id": "m8", "type": "sale", "sku": "S", "location": "münchen", "qty": 1}), "invalid_location"),
        ("number as type", json!({"id": "m9", "type": 3, "sku": "S", "location": "berlin", "qty": 1}), "invalid_type"),
        ("object as sku", json!({"id": "m10", "type": "sale", "sku": {"a": 1}, "location": "berlin", "qty": 1}), "invalid_sku"),
        (
            "bad time",
            json!({"id": "m11", "type": "sale", "sku": "S", "location": "berlin", "qty": 1, "at": "2026-02-30T00:00:00Z"}),
            "invalid_at",
        ),
    ]
}

#[tokio::test]
async fn malformed_requests_get_json_4xx_and_change_nothing() {
    let hub = TestHub::start().await;
    let api = hub.client();
    api.post_events(TOKEN, &json!([ev("base", "receipt", "S", "berlin", 5)])).await;
    let before = api.position("S", "berlin").await;
    let many_locations = (0..51).map(|i| format!("l{i}")).collect::<Vec<_>>().join(",");
    let too_many_events = Value::Array((0..10_001).map(|i| ev(&format!("t{i}"), "sale", "S", "berlin", 1)).collect()).to_string();
    let good = ev("never", "sale", "S", "berlin", 1).to_string();

    let cases = vec![
        case("no content type", Method::POST, "/v1/events", &[AUTH], "[]", 415, "unsupported_media_type"),
        case(
            "form content type",
            Method::POST,
            "/v1/events",
            &[AUTH, ("content-type", "application/x-www-form-urlencoded")],
            "a=b",
            415,
            "unsupported_media_type",
        ),
        case("truncated array", Method::POST, "/v1/events", &[AUTH, JSON], &format!("[{good}"), 400, "malformed_body"),
        case(
            "truncated object",
            Method::POST,
            "/v1/events",
            &[AUTH, JSON],
            &format!("[{}", &good[..good.len() - 3]),
            400,
            "malformed_body",
        ),
        case("unterminated string", Method::POST, "/v1/events", &[AUTH, JSON], "[\"\u{FFFD}", 400, "malformed_body"),
        case("empty body", Method::POST, "/v1/events", &[AUTH, JSON], "", 400, "malformed_body"),
        case("a string, not events", Method::POST, "/v1/events", &[AUTH, JSON], "\"sale\"", 400, "malformed_body"),
        case(
            "ndjson line that is an array",
            Method::POST,
            "/v1/events",
            &[AUTH, ("content-type", "application/x-ndjson")],
            &format!("{good}\n[1]"),
            400,
            "malformed_body",
        ),
        case("10,001 events", Method::POST, "/v1/events", &[AUTH, JSON], &too_many_events, 413, "too_many_events"),
        case("no token", Method::POST, "/v1/events", &[JSON], &format!("[{good}]"), 401, "unauthorized"),
        case(
            "garbled token",
            Method::POST,
            "/v1/events",
            &[("authorization", "Bearer \"quoted\" and spaced =="), JSON],
            &format!("[{good}]"),
            401,
            "unauthorized",
        ),
        case(
            "wrong scheme",
            Method::POST,
            "/v1/events",
            &[("authorization", "Token till-token"), JSON],
            &format!("[{good}]"),
            401,
            "unauthorized",
        ),
        case(
            "unknown token",
            Method::POST,
            "/v1/events",
            &[("authorization", "Bearer guess"), JSON],
            &format!("[{good}]"),
            401,
            "unauthorized",
        ),
        case("GET on ingest", Method::GET, "/v1/events", &[], "", 405, "method_not_allowed"),
        case("PATCH a reservation", Method::PATCH, "/v1/reservations/x", &[], "", 405, "method_not_allowed"),
        case("51 locations", Method::GET, &format!("/v1/availability?sku=S&location={many_locations}"), &[], "", 400, "too_many_positions"),
        case(
            "51 locations, stream",
            Method::GET,
            &format!("/v1/stream?sku=S&location={many_locations}"),
            &[],
            "",
            400,
            "too_many_positions",
        ),
        case("bad sku in query", Method::GET, "/v1/availability?sku=%00&location=berlin", &[], "", 400, "invalid_sku"),
        case("unknown path", Method::GET, "/v2/events", &[], "", 404, "not_found"),
        case("reservation, bad JSON", Method::POST, "/v1/reservations", &[JSON], "{\"sku\":", 400, "malformed_body"),
        case(
            "reservation, qty 0",
            Method::POST,
            "/v1/reservations",
            &[JSON],
            r#"{"sku":"S","location":"berlin","qty":0,"key":"0123456789abcdef"}"#,
            400,
            "invalid_qty",
        ),
        case(
            "reservation, huge qty",
            Method::POST,
            "/v1/reservations",
            &[JSON],
            r#"{"sku":"S","location":"berlin","qty":1e99,"key":"0123456789abcdef"}"#,
            400,
            "invalid_qty",
        ),
        case(
            "reservation, control char key",
            Method::POST,
            "/v1/reservations",
            &[JSON],
            r#"{"sku":"S","location":"berlin","qty":1,"key":"0123456789abcde\u0001"}"#,
            400,
            "invalid_key",
        ),
        case("fulfil without a token", Method::POST, "/v1/reservations/res_x/fulfil", &[], "", 401, "unauthorized"),
        case("long poll over 60 s", Method::GET, "/v1/locations/berlin/changes?since=0&wait=61", &[AUTH], "", 400, "invalid_query"),
        case("negative since", Method::GET, "/v1/locations/berlin/changes?since=-1", &[AUTH], "", 400, "invalid_query"),
        case(
            "since neither a version nor a cursor",
            Method::GET,
            "/v1/locations/berlin/changes?since=c1.x",
            &[AUTH],
            "",
            400,
            "invalid_query",
        ),
        case(
            "since naming a partition the hub has not",
            Method::GET,
            "/v1/locations/berlin/changes?since=c1000.1",
            &[AUTH],
            "",
            400,
            "invalid_query",
        ),
        case("stream, sku twice", Method::GET, "/v1/stream?sku=S&sku=T&location=berlin", &[], "", 400, "invalid_query"),
        case(
            "reservation, 17 KiB body",
            Method::POST,
            "/v1/reservations",
            &[JSON],
            &format!("{{\"pad\":\"{}\"}}", "x".repeat(17 * 1024)),
            413,
            "payload_too_large",
        ),
        case("admin without an admin token configured", Method::GET, "/admin/status", &[AUTH], "", 404, "not_found"),
    ];
    let n = cases.len();
    for c in cases {
        let headers: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, h, body) = api.raw(c.method.clone(), &c.path, &headers, c.body.clone()).await;
        assert_eq!(status, c.status, "{}: {body}", c.what);
        assert_eq!(h.get("content-type").map(|v| v.to_str().unwrap()), Some("application/json"), "{}", c.what);
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{}: not JSON: {body}", c.what));
        assert_eq!(v["error"]["code"], c.code, "{}: {body}", c.what);
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", c.what);
    }

    let bad = rejected_events();
    let body = Value::Array(bad.iter().map(|(_, e, _)| e.clone()).collect());
    let (s, b) = api.post_events(TOKEN, &body).await;
    assert_eq!(s, 200);
    for ((what, _, code), r) in bad.iter().zip(b["results"].as_array().unwrap()) {
        assert_eq!((r["status"].as_str(), r["error"]["code"].as_str()), (Some("rejected"), Some(*code)), "{what}: {r}");
    }
    // Unknown fields are ignored (devices may send more than the contract names).
    let (_, b) = api
        .post_events(TOKEN, &json!([{"id": "extra", "type": "receipt", "sku": "T", "location": "berlin", "qty": 1, "till": {"no": 4}}]))
        .await;
    assert_eq!(b["applied"], 1);
    // A Last-Event-ID that does not parse is treated as absent, never refused.
    let (_, mut stream) = api.stream("sku=S&location=berlin", Some("12abc; DROP")).await;
    assert_eq!(next_position(&mut stream, "every position").await["on_hand"], 5);

    assert_eq!(api.position("S", "berlin").await, before, "nothing refused changed anything");
    assert_eq!(api.get_json("/readyz").await.0, 200, "the hub is healthy after {} malformed requests", n + bad.len());
}
