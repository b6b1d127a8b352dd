//! The store directory over real HTTP: kept with the admin token (and across a restart), the
//! nearest stores first by great-circle distance, a SKU's stock at each and only where it is
//! in stock; bad input refused without a change; or the directory of a `--locations-file`,
//! re-read when it changes. (With `SHELFCAST_TEST_POSTGRES` set, on PostgreSQL, where a
//! second replica on the same database sees the changes too.)

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const ADMIN: &str = "admin-secret";

fn store(name: &str, lat: f64, lng: f64, ready: u32, sla: &str) -> Value {
    json!({"name": name, "address": format!("{name} 1"), "lat": lat, "lng": lng,
           "pickup": {"enabled": true, "ready_in_minutes": ready, "sla": sla}, "timezone": "Europe/Berlin"})
}

async fn put(api: &Api, token: &str, id: &str, body: &str) -> (u16, Value) {
    let headers = [("authorization", format!("Bearer {token}")), ("content-type", "application/json".into())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, _, b) = api.raw(Method::PUT, &format!("/v1/locations/{id}"), &headers, body.to_string()).await;
    (s, serde_json::from_str(&b).unwrap_or(Value::Null))
}

async fn delete(api: &Api, token: &str, id: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let (s, _, b) = api.raw(Method::DELETE, &format!("/v1/locations/{id}"), &[("authorization", &auth)], "").await;
    (s, serde_json::from_str(&b).unwrap_or(Value::Null))
}

/// The ids of `GET /v1/locations{query}`, and the answer.
async fn listed(api: &Api, query: &str) -> (Vec<String>, Value) {
    let (s, b) = api.get_json(&format!("/v1/locations{query}")).await;
    assert_eq!(s, 200, "{query}: {b}");
    (b["locations"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_owned()).collect(), b)
}

const BERLIN: &str = "52.5200,13.4050";

async fn four_stores(api: &Api) {
    for (id, s) in [
        ("munich", store("München", 48.1351, 11.5820, 2880, "2-day")),
        ("hamburg", store("Hamburg", 53.5511, 9.9937, 1440, "next_day")),
        ("berlin-mitte", store("Berlin Mitte", 52.5265, 13.4019, 60, "same_day")),
        ("potsdam", store("Potsdam", 52.3906, 13.0645, 120, "same_day")),
    ] {
        let (status, b) = put(api, ADMIN, id, &s.to_string()).await;
        assert_eq!(status, 200, "{b}");
        assert_eq!(b["id"], id);
        assert_eq!(b["name"], s["name"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nearest_stores_come_first_with_their_distance_and_the_skus_stock() {
    let mut hub = TestHub::start_with(|c| c.admin_token = Some(ADMIN.into())).await;
    let api = hub.client();
    assert_eq!(listed(&api, "").await.0, Vec::<String>::new());
    four_stores(&api).await;

    let (ids, all) = listed(&api, "").await;
    assert_eq!(ids, ["berlin-mitte", "hamburg", "munich", "potsdam"], "by id without `near`");
    assert!(all["locations"][0].get("distance_m").is_none() && all["locations"][0].get("position").is_none());
    assert_eq!(all["locations"][0]["pickup"], json!({"enabled": true, "ready_in_minutes": 60, "sla": "same_day"}));
    assert_eq!(all["locations"][2]["pickup"]["sla"], "2-day");

    let (ids, near) = listed(&api, &format!("?near={BERLIN}")).await;
    assert_eq!(ids, ["berlin-mitte", "potsdam", "hamburg", "munich"]);
    let m = |i: usize| near["locations"][i]["distance_m"].as_u64().unwrap();
    assert!(m(0) < 1_000, "Berlin Mitte is under a kilometre from the centre: {}", m(0));
    assert!((250_000..260_000).contains(&m(2)), "Berlin to Hamburg is about 255 km: {}", m(2));
    assert!((500_000..510_000).contains(&m(3)), "Berlin to Munich is about 504 km: {}", m(3));
    assert_eq!(listed(&api, &format!("?near={BERLIN}&limit=2")).await.0, ["berlin-mitte", "potsdam"]);
    assert_eq!(listed(&api, "?near=48.2,11.6&limit=1").await.0, ["munich"]);
    assert_eq!(listed(&api, "?limit=1").await.0, ["berlin-mitte"]);

    // "The nearest stores that have it": the SKU's stock at each, and only where available.
    let events = json!([ev("h", "receipt", "JACKET", "hamburg", 4), ev("m", "receipt", "JACKET", "munich", 1)]);
    assert_eq!(api.post_events(TOKEN, &events).await.0, 200);
    let (ids, with) = listed(&api, &format!("?near={BERLIN}&sku=JACKET")).await;
    assert_eq!(ids.len(), 4);
    assert_eq!(with["locations"][0]["position"]["available"], 0);
    assert_eq!(with["locations"][0]["position"]["status"], "out_of_stock");
    assert_eq!(with["locations"][2]["position"]["available"], 4);
    assert_eq!(with["locations"][2]["position"]["sku"], "JACKET");
    assert_eq!(listed(&api, &format!("?near={BERLIN}&sku=JACKET&in_stock=true")).await.0, ["hamburg", "munich"]);
    assert_eq!(listed(&api, &format!("?near={BERLIN}&sku=JACKET&in_stock=true&limit=1")).await.0, ["hamburg"]);
    assert_eq!(api.reserve("JACKET", "hamburg", 4, "reservation-key-0001").await.0, 201);
    assert_eq!(listed(&api, &format!("?near={BERLIN}&sku=JACKET&in_stock=true")).await.0, ["munich"], "held units are not in stock");

    // Changed and removed with the admin token; kept across a restart.
    let renamed = store("Hamburg Jungfernstieg", 53.5531, 9.9925, 240, "same_day");
    assert_eq!(put(&api, ADMIN, "hamburg", &renamed.to_string()).await.0, 200);
    assert_eq!(delete(&api, ADMIN, "potsdam").await.0, 204);
    let (s, b) = delete(&api, ADMIN, "potsdam").await;
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("not_found")));
    if let Some(database) = hub.database.clone() {
        // Another replica on the same database sees the same directory.
        let other = TestHub::start_with(|c| c.database = Some(database)).await;
        let api2 = other.client();
        until("the other replica sees the change", 10, || {
            let api2 = api2.clone();
            async move { listed(&api2, "").await.0 == ["berlin-mitte", "hamburg", "munich"] }
        })
        .await;
        assert_eq!(put(&api2, ADMIN, "hamburg", "{}").await.0, 401, "the second replica has no admin token");
    }
    hub.restart(|c| c.admin_token = Some(ADMIN.into())).await;
    let api = hub.client();
    let (ids, after) = listed(&api, &format!("?near={BERLIN}")).await;
    assert_eq!(ids, ["berlin-mitte", "hamburg", "munich"]);
    assert_eq!(after["locations"][1]["name"], "Hamburg Jungfernstieg");
    assert_eq!(after["locations"][1]["pickup"]["ready_in_minutes"], 240);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_and_changes_nothing() {
    let hub = TestHub::start_with(|c| c.admin_token = Some(ADMIN.into())).await;
    let api = hub.client();
    four_stores(&api).await;
    let (_, before) = listed(&api, "").await;

    for query in [
        "?near=52.5",
        "?near=91,13",
        "?near=52,181",
        "?near=a,b",
        "?near=",
        "?near=NaN,1",
        "?limit=0",
        "?limit=51",
        "?limit=ten",
        "?in_stock=true",
        "?sku=A&in_stock=yes",
    ] {
        let (s, b) = api.get_json(&format!("/v1/locations{query}")).await;
        assert_eq!((s, b["error"]["code"].as_str()), (400, Some("invalid_query")), "{query}: {b}");
    }
    let (s, b) = api.get_json("/v1/locations?sku=no%20such").await;
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("invalid_sku")));

    let good = store("Kiel", 54.3233, 10.1228, 60, "same_day");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut s = good.clone();
        f(&mut s);
        s.to_string()
    };
    let bodies = [
        "not json".to_string(),
        "[]".to_string(),
        with(&|s| drop(s.as_object_mut().unwrap().remove("address"))),
        with(&|s| s["lat"] = json!(95.0)),
        with(&|s| s["lng"] = json!("east")),
        with(&|s| s["name"] = json!("")),
        with(&|s| s["timezone"] = json!("Kiel time")),
        with(&|s| s["pickup"]["sla"] = json!("today")),
        with(&|s| s["pickup"]["ready_in_minutes"] = json!(-5)),
        with(&|s| s["opening_hours"] = json!("9-5")),
    ];
    for body in &bodies {
        let (s, b) = put(&api, ADMIN, "kiel", body).await;
        assert_eq!((s, b["error"]["code"].as_str()), (400, Some("invalid_store")), "{body}: {b}");
    }
    let (s, b) = put(&api, ADMIN, "kiel%20north", &good.to_string()).await;
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("invalid_location")));
    for token in [TOKEN, "nobody"] {
        let (s, b) = put(&api, token, "kiel", &good.to_string()).await;
        assert_eq!((s, b["error"]["code"].as_str()), (401, Some("unauthorized")), "a device token does not keep the directory");
        assert_eq!(delete(&api, token, "munich").await.0, 401);
    }
    assert_eq!(listed(&api, "").await.1, before, "nothing changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locations_file_is_the_directory_and_is_read_again_when_it_changes() {
    let (dir, data) = data_dir();
    let file = dir.path().join("stores.json");
    let entry = |id: &str, name: &str, lat: f64| {
        let mut s = store(name, lat, 13.4, 60, "same_day");
        s["id"] = json!(id);
        s
    };
    std::fs::write(&file, json!([entry("berlin", "Berlin", 52.52)]).to_string()).unwrap();
    let path = file.to_str().unwrap().to_owned();
    let mut hub = ChildHub::spawn_logging(
        &["serve", "--listen", "127.0.0.1:0", "--data"],
        &data,
        &["--device-token", &format!("{TOKEN}=*"), "--admin-token", ADMIN, "--locations-file", &path],
        "info",
        Stdio::piped(),
    );
    // The hub's log, a line at a time.
    let (log_tx, log) = std::sync::mpsc::channel::<String>();
    let stderr = hub.child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = log_tx.send(line);
        }
    });
    let logged = |what: &str| loop {
        let line = log.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("the hub logs `{what}`"));
        if line.contains(what) {
            break;
        }
    };
    let api = hub.client();
    assert_eq!(listed(&api, "").await.0, ["berlin"]);

    let (s, b) = put(&api, ADMIN, "hamburg", &store("Hamburg", 53.55, 9.99, 60, "same_day").to_string()).await;
    assert_eq!((s, b["error"]["code"].as_str()), (409, Some("directory_from_file")), "{b}");
    assert_eq!(delete(&api, ADMIN, "berlin").await.0, 409);

    // Rewritten: read again without a restart. A broken file leaves the last good directory.
    let part = dir.path().join("stores.json.part");
    std::fs::write(&part, json!([entry("berlin", "Berlin", 52.52), entry("rostock", "Rostock", 54.09)]).to_string()).unwrap();
    std::fs::rename(&part, &file).unwrap();
    until("the file's new store", 10, || {
        let api = api.clone();
        async move { listed(&api, "").await.0 == ["berlin", "rostock"] }
    })
    .await;
    logged("store directory reloaded");
    std::fs::write(&file, "[{\"id\":\"broken\"").unwrap();
    hub.signal("HUP");
    logged("store directory NOT reloaded");
    assert_eq!(listed(&api, "").await.0, ["berlin", "rostock"], "a broken file changes nothing");
    drop(hub);

    // A file that cannot be the directory stops the start.
    let (_d2, data2) = data_dir();
    let data2 = data2.to_str().unwrap().to_owned();
    start_fails_saying(&["serve", "--listen", "127.0.0.1:0", "--data", &data2, "--locations-file", &path], "--locations-file");
    let missing = dir.path().join("none.json");
    start_fails_saying(&["serve", "--listen", "127.0.0.1:0", "--data", &data2, "--locations-file", missing.to_str().unwrap()], "none.json");
}
