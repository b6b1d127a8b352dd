//! `shelfcast import` and `shelfcast export` against a real hub: a stock file goes in once
//! however often it is run, lines of one position in file order, bad lines named by their
//! number and nothing else skipped; the export reads back what went in, scoped to the token.
//! Also as the binary over HTTPS through a delaying link that is cut during the import.
//! (With `SHELFCAST_TEST_POSTGRES` set, the in-process tests run on PostgreSQL.)

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use reqwest::Method;
use shelfcast_server::client::TrustArgs;
use shelfcast_server::transfer::{export, import, ExportArgs, ImportArgs, Imported};

const ADMIN: &str = "admin-secret";

fn import_args(target: &str, file: &Path, batch: usize) -> ImportArgs {
    ImportArgs { target: target.into(), token: TOKEN.into(), file: file.into(), batch, concurrency: 4, trust: TrustArgs::default() }
}

fn export_args(target: &str, token: &str, location: Option<&str>, output: &Path) -> ExportArgs {
    ExportArgs {
        target: target.into(),
        token: token.into(),
        location: location.map(String::from),
        output: Some(output.into()),
        trust: TrustArgs::default(),
    }
}

/// An export file as (sku, location) → (on_hand, the rest of the line).
fn read_export(path: &Path) -> BTreeMap<(String, String), (i64, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("sku,location,on_hand,reserved,available,status,version"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 7, "{l}");
            ((f[0].to_owned(), f[1].to_owned()), (f[2].parse().unwrap(), f[3..].join(",")))
        })
        .collect()
}

/// On-hand by (sku, location); (line, code) of each bad line; how many lines are good.
type StockFile = (BTreeMap<(String, String), i64>, Vec<(u64, &'static str)>, u64);

/// A line's kind and its quantity for SKU number i.
type Round = (&'static str, fn(i64) -> i64);

/// A stock file of 1,200 SKUs at 3 stores, each position's five lines together (count,
/// receipt, sale, count again, receipt: only file order gives the right on-hand), with bad
/// lines and a blank line among them; the on-hand it leaves and the lines that must be rejected, with the code.
fn stock_file(path: &Path) -> StockFile {
    let mut text = String::from("sku,location,qty,type\n");
    let (mut line, mut good) = (1u64, 0u64);
    let mut expect: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut bad = Vec::new();
    let add = |text: &mut String, l: String| {
        text.push_str(&l);
        text.push('\n');
    };
    let rounds: [Round; 5] =
        [("count", |i| i % 40), ("receipt", |_| 5), ("sale", |_| 2), ("count", |i| i % 7 + 3), ("receipt", |i| i % 3 + 1)];
    for i in 0..1200i64 {
        for store in ["berlin", "hamburg", "munich"] {
            for (kind, qty) in &rounds {
                let (sku, q) = (format!("SKU-{i:04}"), qty(i));
                line += 1;
                // The type column left out of a count, as a spreadsheet would.
                let l = if *kind == "count" && i % 2 == 0 { format!("{sku},{store},{q}") } else { format!("{sku},{store},{q},{kind}") };
                add(&mut text, l);
                good += 1;
                let on_hand = expect.entry((sku, store.to_owned())).or_default();
                *on_hand = match *kind {
                    "count" => q,
                    "receipt" => *on_hand + q,
                    _ => *on_hand - q,
                };
            }
        }
        // Bad lines here and there, one of each kind, and a blank line.
        let mut wrong = |l: &str, code: &'static str| {
            line += 1;
            add(&mut text, l.to_owned());
            bad.push((line, code));
        };
        match i {
            100 => {
                wrong("SKU-0001,berlin,many,receipt", "invalid_qty");
                wrong("SKU 0001,berlin,4,receipt", "invalid_sku");
                wrong("SKU-0001,berlin,4,sell", "invalid_type");
            }
            500 => {
                wrong("SKU-0001,berlin,0,sale", "invalid_qty");
                wrong("SKU-0001,berlin,4,receipt,extra", "invalid_line");
                wrong("SKU-0001,,4,receipt", "invalid_location");
                line += 1;
                text.push('\n');
            }
            900 => wrong("SKU-0002,berlin", "invalid_qty"),
            _ => {}
        }
    }
    std::fs::write(path, text).unwrap();
    (expect, bad, good)
}

fn rejected_codes(done: &Imported) -> Vec<(u64, String)> {
    done.rejected.iter().map(|(l, why)| (*l, why.split(':').next().unwrap().to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stock_file_goes_in_once_in_file_order_and_the_export_reads_it_back() {
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stock.csv");
    let (expect, bad, good) = stock_file(&file);

    // Small batches: each position's lines travel in many requests over 4 lanes at once.
    let done = import(import_args(&hub.url, &file, 97)).await.unwrap();
    let want: Vec<(u64, String)> = bad.iter().map(|(l, c)| (*l, c.to_string())).collect();
    assert_eq!(rejected_codes(&done), want, "each bad line named by its number and why: {:?}", done.rejected);
    assert_eq!((done.applied, done.duplicates), (good, 0));

    let first = dir.path().join("first.csv");
    assert_eq!(export(export_args(&hub.url, TOKEN, None, &first)).await.unwrap(), expect.len() as u64);
    let exported = read_export(&first);
    let on_hand: BTreeMap<_, _> = exported.iter().map(|(k, (q, _))| (k.clone(), *q)).collect();
    assert_eq!(on_hand, expect, "every position as the file's lines left it, in file order");
    assert!(!dir.path().join("first.csv.part").exists());

    // The same file again: every line a duplicate, the same lines rejected, nothing changed.
    let again = import(import_args(&hub.url, &file, 1000)).await.unwrap();
    assert_eq!((again.applied, again.duplicates), (0, good));
    assert_eq!(rejected_codes(&again), want);
    let second = dir.path().join("second.csv");
    export(export_args(&hub.url, TOKEN, None, &second)).await.unwrap();
    assert_eq!(std::fs::read(&first).unwrap(), std::fs::read(&second).unwrap(), "not one position changed, not even its version");

    // The export imports back as counts of what is there: every on-hand stays.
    let back = import(import_args(&hub.url, &first, 5000)).await.unwrap();
    assert_eq!((back.applied, back.duplicates, back.rejected.len()), (expect.len() as u64, 0, 0));
    let third = dir.path().join("third.csv");
    export(export_args(&hub.url, TOKEN, None, &third)).await.unwrap();
    let after: BTreeMap<_, _> = read_export(&third).into_iter().map(|(k, (q, _))| (k, q)).collect();
    assert_eq!(after, expect);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_export_is_csv_of_the_tokens_locations_only() {
    let hub = TestHub::start_with(|c| c.admin_token = Some(ADMIN.into())).await;
    let api = hub.client();
    let events = serde_json::json!([
        ev("a", "receipt", "A", "berlin", 5),
        ev("b", "receipt", "A", "hamburg", 6),
        ev("c", "receipt", "B", "berlin", 7),
    ]);
    assert_eq!(api.post_events(TOKEN, &events).await.0, 200);
    assert_eq!(api.reserve("A", "berlin", 2, "reservation-key-0001").await.0, 201);

    let get = |token: Option<&'static str>, query: &'static str| {
        let api = hub.client();
        async move {
            let auth = token.map(|t| format!("Bearer {t}"));
            let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
            let (s, h, b) = api.raw(Method::GET, &format!("/v1/positions{query}"), &headers, "").await;
            (s, h.get("content-type").map(|v| v.to_str().unwrap().to_owned()), b)
        }
    };
    let (s, kind, body) = get(Some(BERLIN_ONLY), "").await;
    assert_eq!((s, kind.as_deref()), (200, Some("text/csv; charset=utf-8")));
    let mut lines: Vec<&str> = body.lines().collect();
    lines[1..].sort();
    assert_eq!(lines[0], "sku,location,on_hand,reserved,available,status,version");
    assert_eq!(lines.len(), 3, "berlin's two positions only: {body}");
    assert!(lines[1].starts_with("A,berlin,5,2,3,low_stock,"), "{body}");
    assert!(lines[2].starts_with("B,berlin,7,0,7,in_stock,"), "{body}");

    let (s, _, body) = get(Some(ADMIN), "?location=hamburg").await;
    assert_eq!(s, 200);
    assert!(body.lines().nth(1).unwrap().starts_with("A,hamburg,6,0,6,"), "{body}");
    assert_eq!(body.lines().count(), 2);
    assert_eq!(get(Some(ADMIN), "").await.2.lines().count(), 4);

    for (token, query, status, code) in [
        (None, "", 401, "unauthorized"),
        (Some("nobody"), "", 401, "unauthorized"),
        (Some(BERLIN_ONLY), "?location=hamburg", 403, "forbidden_location"),
        (Some(BERLIN_ONLY), "?location=berlin,hamburg", 403, "forbidden_location"),
        (Some(TOKEN), "?location=no%20such", 400, "invalid_location"),
        (Some(TOKEN), "?location=", 400, "invalid_location"),
    ] {
        let (s, kind, body) = get(token, query).await;
        assert_eq!(s, status, "{query}: {body}");
        assert_eq!(kind.as_deref(), Some("application/json"), "{query}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], code, "{query}: {body}");
    }
}

/// `shelfcast import` / `export` as the binary, its exit code and what it prints.
async fn shelfcast(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shelfcast"))
        .args(args)
        .env("SHELFCAST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_commands_work_over_https_through_a_slow_link_that_is_cut_meanwhile() {
    let (dirs, data) = data_dir();
    let ca = TestCa::new(dirs.path(), "shelfcast-test-ca");
    let (cert, key) = ca.write(dirs.path(), &["127.0.0.1"], false);
    let hub = ChildHub::spawn(&data, &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let mut link = Proxy::start_with(addr(&hub.url), Link { delay: Duration::from_millis(20), ..Link::default() }).await;
    let target = format!("https://{}", link.addr);
    let ca_file = ca.file.to_str().unwrap().to_owned();

    let mut text = String::from("sku,location,qty\n");
    for i in 0..2000 {
        let _ = writeln!(text, "SKU-{i},berlin,{}", i % 9 + 1);
    }
    text.push_str("SKU-X,berlin,-1\n");
    let file = dirs.path().join("counts.csv");
    std::fs::write(&file, text).unwrap();
    let file = file.to_str().unwrap().to_owned();

    // The link is down when the import starts and comes back a moment later: the import waits
    // for it, and a line rejected still leaves every other line in (exit code 2).
    link.cut();
    let run = {
        let (target, ca_file, file) = (target.clone(), ca_file.clone(), file.clone());
        tokio::spawn(async move {
            shelfcast(&["import", "--target", &target, "--token", TOKEN, "--hub-ca", &ca_file, "--batch", "300", &file]).await
        })
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    link.restore().await;
    let (code, out, err) = run.await.unwrap();
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("line 2002: invalid_qty: "), "{out}");
    assert!(out.contains("2001 lines, 2000 applied, 0 duplicates, 1 rejected"), "{out}");

    let exported = dirs.path().join("out.csv");
    let (code, out, err) =
        shelfcast(&["export", "--target", &target, "--token", TOKEN, "--hub-ca", &ca_file, "-o", exported.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.is_empty(), "with -o nothing goes to stdout: {out}");
    assert!(err.contains("exported 2000 positions"), "{err}");
    let positions = read_export(&exported);
    assert_eq!(positions.len(), 2000);
    assert_eq!(positions[&("SKU-17".to_owned(), "berlin".to_owned())].0, 17 % 9 + 1);

    // Standard output, by default; a file that cannot be an import is refused before anything
    // is sent (exit 1, the reason on stderr).
    let (code, out, _) = shelfcast(&["export", "--target", &target, "--token", TOKEN, "--hub-ca", &ca_file]).await;
    assert_eq!((code, out.lines().count()), (0, 2001));
    let wrong = dirs.path().join("wrong.csv");
    std::fs::write(&wrong, "sku,store,qty\nA,berlin,1\n").unwrap();
    let (code, out, err) =
        shelfcast(&["import", "--target", &target, "--token", TOKEN, "--hub-ca", &ca_file, wrong.to_str().unwrap()]).await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("line 1: column `store` is not one Shelfcast reads"), "{err}");
    let (code, _, err) = shelfcast(&["import", "--target", &target, "--token", "nobody", "--hub-ca", &ca_file, &file]).await;
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offline_edge_exports_its_stores_positions_from_its_own_ledger() {
    let (_dir, data) = data_dir();
    // Its hub is a port nothing listens on: the store is offline from the start.
    let edge = ChildHub::spawn_with(
        &["edge", "--location", "berlin", "--hub", "http://127.0.0.1:9", "--token", "store", "--listen", "127.0.0.1:0", "--data"],
        &data,
        &["--device-token", &format!("{TOKEN}=berlin")],
    );
    let api = edge.client();
    let events = serde_json::json!([ev("r1", "receipt", "A", "berlin", 9), ev("s1", "sale", "A", "berlin", 2)]);
    assert_eq!(api.post_events(TOKEN, &events).await.0, 200);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("berlin.csv");
    assert_eq!(export(export_args(&edge.url, TOKEN, None, &out)).await.unwrap(), 1);
    let positions = read_export(&out);
    assert_eq!(positions[&("A".to_owned(), "berlin".to_owned())].0, 7, "the till's sale, not yet at the hub, is in");
    let refused = export(export_args(&edge.url, TOKEN, Some("hamburg"), &out)).await.unwrap_err();
    assert!(refused.to_string().contains("403"), "{refused}");
}
