//! Who may do what: device tokens that rotate without a restart (tokens file, SIGHUP, file
//! change, `POST /admin/reload`), the admin token on operational endpoints, reservation tokens
//! that cannot be guessed, and logs that never carry a secret.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::json;

const ADMIN: &str = "admin-6f1d2c";

async fn ingest_status(api: &Api, token: &str, id: &str) -> u16 {
    api.post_events(token, &json!([ev(id, "receipt", "SKU-1", "berlin", 1)])).await.0
}

/// Polls until `token` gets `want` from ingest, for at most 10 s.
async fn until_ingest(api: &Api, token: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        let got = ingest_status(api, token, &format!("poll-{token}-{n}")).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "token {token}: still {got}, wanted {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn device_tokens_rotate_without_a_restart() {
    let (_dir, data) = data_dir();
    let tokens = data.with_extension("tokens");
    std::fs::write(&tokens, "# store tills\nold-till=berlin\n").unwrap();
    let hub = ChildHub::spawn_with(
        &["serve", "--listen", "127.0.0.1:0", "--data"],
        &data,
        &["--tokens-file", tokens.to_str().unwrap(), "--admin-token", ADMIN],
    );
    let api = hub.client();
    assert_eq!(ingest_status(&api, "old-till", "a1").await, 200);
    assert_eq!(ingest_status(&api, "new-till", "a2").await, 401);

    // Rotation by SIGHUP: the new token works, the old one stops at once.
    let hashed = String::from_utf8(
        std::process::Command::new(env!("CARGO_BIN_EXE_shelfcast")).args(["hash-token", "new-till"]).output().unwrap().stdout,
    )
    .unwrap();
    assert!(hashed.starts_with("sha256:") && !hashed.contains("new-till"), "{hashed}");
    std::fs::write(&tokens, format!("{}=berlin\n", hashed.trim())).unwrap();
    hub.signal("HUP");
    until_ingest(&api, "new-till", 200).await;
    assert_eq!(ingest_status(&api, "old-till", "a3").await, 401, "a rotated-out token stops working");

    // A broken file changes nothing, whichever way the reload comes.
    std::fs::write(&tokens, "third-till=berlin\nthis line is wrong\n").unwrap();
    hub.signal("HUP");
    let (status, _, body) = api.raw(Method::POST, "/admin/reload", &[("authorization", &format!("Bearer {ADMIN}"))], "").await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("invalid_tokens_file") && body.contains("line 2"), "{body}");
    assert_eq!(ingest_status(&api, "new-till", "a4").await, 200, "the tokens in force stay");
    assert_eq!(ingest_status(&api, "third-till", "a5").await, 401);

    // Rotation by editing the file alone: noticed within a few seconds.
    std::fs::write(&tokens, "third-till=berlin\n").unwrap();
    until_ingest(&api, "third-till", 200).await;
    assert_eq!(ingest_status(&api, "new-till", "a6").await, 401);

    // Scopes come from the file too.
    let (_, body) = api.post_events("third-till", &json!([ev("h1", "receipt", "SKU-1", "hamburg", 1)])).await;
    assert_eq!(body["results"][0]["error"]["code"], "forbidden_location");
    hub.kill9();
}

#[tokio::test]
async fn a_scraper_reads_metrics_with_the_metrics_token_and_nothing_more() {
    const METRICS: &str = "scrape-41c9e0";
    let (_d, data) = data_dir();
    // The metrics token from the environment, as the Kubernetes manifests give it.
    let hub = ChildHub::spawn_env(
        &data,
        &["--device-token", &format!("{TOKEN}=*"), "--admin-token", ADMIN],
        &[("SHELFCAST_METRICS_TOKEN", METRICS)],
    );
    let api = hub.client();
    let bearer = |t: &str| format!("Bearer {t}");
    let (status, _, body) = api.raw(Method::GET, "/metrics", &[], "").await;
    assert_eq!((status, body.contains("\"unauthorized\"")), (401, true), "a scrape without a token: {body}");
    let (status, _, _) = api.raw(Method::GET, "/metrics", &[("authorization", &bearer(TOKEN))], "").await;
    assert_eq!(status, 401, "a device token does not read metrics");
    for token in [METRICS, ADMIN] {
        let (status, _, body) = api.raw(Method::GET, "/metrics", &[("authorization", &bearer(token))], "").await;
        assert_eq!(status, 200, "{token}: {body}");
        assert!(body.contains("shelfcast_events_total{result=\"applied\"} 0"), "{token}: {body}");
    }
    for (method, path) in [(Method::GET, "/admin/status"), (Method::POST, "/admin/reload")] {
        let (status, _, body) = api.raw(method, path, &[("authorization", &bearer(METRICS))], "").await;
        assert_eq!(status, 401, "{path}: the metrics token is not the admin token: {body}");
    }
}

#[tokio::test]
async fn the_admin_token_guards_operations_and_nothing_else() {
    let hub = TestHub::start_with(|c| c.admin_token = Some(ADMIN.into())).await;
    let api = hub.client();
    let admin = format!("Bearer {ADMIN}");
    for path in ["/metrics", "/admin/status"] {
        let (status, _, body) = api.raw(Method::GET, path, &[], "").await;
        assert_eq!(status, 401, "{path} without the admin token: {body}");
        assert!(body.contains("\"unauthorized\""), "{body}");
        let (status, _, _) = api.raw(Method::GET, path, &[("authorization", &format!("Bearer {TOKEN}"))], "").await;
        assert_eq!(status, 401, "{path}: a device token is not the admin token");
        let (status, _, body) = api.raw(Method::GET, path, &[("authorization", &admin)], "").await;
        assert_eq!(status, 200, "{path} with the admin token: {body}");
    }
    let (_, status) = api.get_json("/admin/status").await;
    assert_eq!(status["error"]["code"], "unauthorized");
    let (status, _, body) = api.raw(Method::GET, "/admin/status", &[("authorization", &admin)], "").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"device_tokens\":2"), "{body}");
    let (status, _, body) = api.raw(Method::POST, "/admin/reload", &[("authorization", &admin)], "").await;
    assert_eq!(status, 400, "no tokens file to reload: {body}");
    // Probes and the public API need no admin token.
    assert_eq!(api.get_json("/healthz").await.0, 200);
    assert_eq!(api.get_json("/readyz").await.0, 200);
    assert_eq!(api.get_json("/v1/availability?sku=S&location=berlin").await.0, 200);

    // Without an admin token, /metrics is open (the contract's probe) and /admin does not exist.
    let open = TestHub::start().await;
    assert_eq!(open.client().raw(Method::GET, "/metrics", &[], "").await.0, 200);
    assert_eq!(open.client().raw(Method::GET, "/admin/status", &[], "").await.0, 404);
}

#[tokio::test]
async fn reservation_tokens_are_long_random_and_private_to_their_holder() {
    let hub = TestHub::start().await;
    let api = hub.client();
    api.post_events(TOKEN, &json!([ev("r", "receipt", "SKU-1", "berlin", 50)])).await;
    let mut seen = std::collections::HashSet::new();
    let mut first = None;
    for i in 0..20 {
        let (status, r) = api.reserve("SKU-1", "berlin", 1, &format!("shopper-key-{i:012}")).await;
        assert_eq!(status, 201);
        let token = r["token"].as_str().unwrap().to_string();
        assert!(token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}: at least 128 bits");
        assert!(seen.insert(token.clone()), "tokens never repeat");
        first.get_or_insert((r["id"].as_str().unwrap().to_string(), token));
    }
    // Distinct hex digits across all tokens: a counter or a timestamp would show far fewer.
    let digits: std::collections::HashSet<char> = seen.iter().flat_map(|t| t.chars()).collect();
    assert_eq!(digits.len(), 16);
    let (id, token) = first.unwrap();
    let other = seen.iter().find(|t| **t != token).unwrap();
    for method in [Method::GET, Method::DELETE] {
        let (status, _, body) =
            api.raw(method.clone(), &format!("/v1/reservations/{id}"), &[("authorization", &format!("Bearer {other}"))], "").await;
        assert_eq!(status, 404, "{method} with another shopper's token: {body}");
    }
    let (status, _, _) =
        api.raw(Method::GET, &format!("/v1/reservations/{id}"), &[("authorization", &format!("Bearer {token}"))], "").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn logs_never_carry_a_secret() {
    let (_dir, data) = data_dir();
    let log = data.with_extension("log");
    let hub = ChildHub::spawn_logging(
        &["serve", "--listen", "127.0.0.1:0", "--data"],
        &data,
        &["--device-token", &format!("{TOKEN}=*"), "--admin-token", ADMIN],
        "trace",
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let api = hub.client();
    api.post_events(TOKEN, &json!([ev("s1", "receipt", "SKU-1", "berlin", 5)])).await;
    api.post_events("wrong-device-token", &json!([ev("s2", "receipt", "SKU-1", "berlin", 5)])).await;
    let key = "secret-idempotency-key-0001";
    let (_, r) = api.reserve("SKU-1", "berlin", 1, key).await;
    let (id, token) = (r["id"].as_str().unwrap(), r["token"].as_str().unwrap());
    api.raw(Method::DELETE, &format!("/v1/reservations/{id}"), &[("authorization", &format!("Bearer {token}"))], "").await;
    api.raw(Method::GET, "/metrics", &[("authorization", &format!("Bearer {ADMIN}"))], "").await;
    hub.signal("TERM");
    std::thread::sleep(Duration::from_millis(500));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().count() > 10, "the hub logged at trace level:\n{text}");
    for secret in [TOKEN, "wrong-device-token", ADMIN, token, key] {
        assert!(!text.contains(secret), "the log holds `{secret}`:\n{text}");
    }
    hub.kill9();
}

#[tokio::test]
async fn cors_answers_only_the_configured_shop_origins() {
    let hub = TestHub::start().await; // allows https://shop.example
    let api = hub.client();
    let preflight = |origin: &'static str| {
        let api = &api;
        async move {
            api.raw(
                Method::OPTIONS,
                "/v1/reservations",
                &[("origin", origin), ("access-control-request-method", "POST"), ("access-control-request-headers", "content-type")],
                "",
            )
            .await
        }
    };
    let (_, h, _) = preflight("https://shop.example").await;
    assert_eq!(h["access-control-allow-origin"], "https://shop.example");
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let (_, h, _) = preflight("https://evil.example").await;
    assert!(h.get("access-control-allow-origin").is_none(), "{h:?}");
    for path in ["/v1/availability?sku=S&location=berlin", "/v1/reservations/nope"] {
        let (_, h, _) = api.raw(Method::GET, path, &[("origin", "https://evil.example")], "").await;
        assert!(h.get("access-control-allow-origin").is_none(), "{path}: {h:?}");
        let (_, h, _) = api.raw(Method::GET, path, &[("origin", "https://shop.example")], "").await;
        assert_eq!(h["access-control-allow-origin"], "https://shop.example", "{path}");
    }
    // No origin configured: no CORS at all.
    let closed = TestHub::start_with(|c| c.allow_origins.clear()).await;
    let (_, h, _) =
        closed.client().raw(Method::GET, "/v1/availability?sku=S&location=berlin", &[("origin", "https://shop.example")], "").await;
    assert!(h.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn pages_and_the_embed_carry_security_headers() {
    let hub = TestHub::start_with(|c| c.demo = true).await;
    let api = hub.client();
    let (status, h, body) = api.raw(Method::GET, "/", &[], "").await;
    assert_eq!(status, 200);
    assert!(body.contains("shelfcast-availability"));
    let csp = h["content-security-policy"].to_str().unwrap();
    for directive in ["default-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");

    let (status, h, _) = api.raw(Method::GET, "/embed/shelfcast.js", &[], "").await;
    assert_eq!(status, 200, "the element is built into the hub (scripts/build-element.sh)");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cross-origin-resource-policy"], "cross-origin");
    assert_eq!(h["access-control-allow-origin"], "*");

    for path in ["/v1/availability?sku=S&location=berlin", "/nowhere"] {
        let (_, h, _) = api.raw(Method::GET, path, &[], "").await;
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    }
}

#[tokio::test]
async fn the_embed_is_served_precompressed_in_the_best_accepted_encoding() {
    use std::io::Read;
    let hub = TestHub::start().await;
    let api = hub.client();
    let path = "/embed/dist/shelfcast_element_bg.wasm";
    let (status, plain_h, plain) = api.get_bytes(path, &[]).await;
    assert_eq!(status, 200, "the element is built into the hub (scripts/build-element.sh)");
    assert!(plain_h.get("content-encoding").is_none());
    assert_eq!(&plain[..4], b"\0asm");
    let (_, br_h, br) = api.get_bytes(path, &[("accept-encoding", "gzip, deflate, br, zstd")]).await;
    let (_, gz_h, gz) = api.get_bytes(path, &[("accept-encoding", "gzip;q=1, br;q=0")]).await;
    assert_eq!(br_h["content-encoding"], "br");
    assert_eq!(gz_h["content-encoding"], "gzip");
    let mut unbrotli = Vec::new();
    brotli::BrotliDecompress(&mut &br[..], &mut unbrotli).unwrap();
    let mut ungzip = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut ungzip).unwrap();
    assert!(unbrotli == plain && ungzip == plain, "every encoding carries the same file");
    assert!(br.len() < gz.len() && gz.len() < plain.len() / 2, "{} {} {}", br.len(), gz.len(), plain.len());
    for h in [&plain_h, &br_h, &gz_h] {
        assert_eq!(h["content-type"], "application/wasm");
        assert_eq!(h["vary"], "accept-encoding");
        assert_eq!(h["timing-allow-origin"], "*");
        assert!(h["cache-control"].to_str().unwrap().contains("max-age"));
    }
    // Each encoding is its own variant for caches: its tag revalidates it and no other.
    let tag = br_h["etag"].to_str().unwrap();
    assert_ne!(tag, plain_h["etag"].to_str().unwrap());
    let (status, _, body) = api.get_bytes(path, &[("accept-encoding", "br"), ("if-none-match", tag)]).await;
    assert_eq!((status, body.len()), (304, 0));
    let (status, _, _) = api.get_bytes(path, &[("accept-encoding", "gzip"), ("if-none-match", tag)]).await;
    assert_eq!(status, 200);
}
