//! The real writer against the model: the command sequences of `protocol::model` (random ones,
//! shrunk on failure, and a long fixed one) run through a hub over HTTP (SQLite; PostgreSQL when
//! `SHELFCAST_TEST_POSTGRES` is set) and through `protocol::ledger::Ledger`. Every answer must
//! be the model's, and after every step every position and every reservation must be the same
//! in both. One more test checks that the comparison notices a broken rule.

mod common;

use std::time::Duration;

use common::*;
use proptest::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};
use shelfcast_protocol::clock::Millis;
use shelfcast_protocol::ledger::{Ledger, Outcome, ReserveError};
use shelfcast_protocol::model::{commands, event, pos, reservation_key, Cmd, TTL};
use shelfcast_protocol::Action;
use shelfcast_server::Clock;

const T0: Millis = 1_800_000_000_000;
/// The positions the commands use (`model::commands` picks among the first four).
const POSITIONS: u8 = 4;

/// A hub and the model, driven with the same commands.
struct Pair {
    hub: TestHub,
    api: Api,
    model: Ledger,
    now: Millis,
    /// Granted reservations in order: the model's id, the hub's id and token.
    granted: Vec<(String, String, String)>,
    /// A rule the model is made to break, to show the comparison notices (`None`: faithful).
    broken: Option<Broken>,
}

#[derive(Clone, Copy)]
enum Broken {
    /// The model counts a duplicate event again.
    CountsDuplicates,
}

impl Pair {
    async fn new(broken: Option<Broken>) -> Pair {
        let hub = TestHub::start_with(|c| {
            c.clock = Clock::manual(T0);
            c.hold_ttl = Duration::from_millis(TTL as u64);
        })
        .await;
        let api = hub.client();
        Pair { hub, api, model: Ledger::default(), now: T0, granted: Vec::new(), broken }
    }

    /// Runs `cmd` on both; `Err` says where they first differ.
    async fn step(&mut self, cmd: &Cmd) -> Result<(), String> {
        match *cmd {
            Cmd::Event { id, kind, pos: p, qty } => {
                let key = pos(p);
                let body = json!([{"id": format!("dev:{id}"), "type": kind.as_str(), "sku": key.sku.as_str(),
                    "location": key.location.as_str(), "qty": qty}]);
                let (status, answer) = self.api.post_events(TOKEN, &body).await;
                let hub = answer["results"][0]["status"].as_str().unwrap_or("").to_string();
                let model = match event(id, kind, p, qty) {
                    None => "rejected",
                    Some(e) => match (self.model.ingest(&e), self.broken) {
                        (Outcome::Duplicate, Some(Broken::CountsDuplicates)) => {
                            self.model.stocks.entry(e.key.clone()).or_default().apply(e.kind, e.qty);
                            "duplicate"
                        }
                        (Outcome::Duplicate, _) => "duplicate",
                        (Outcome::Applied, _) => "applied",
                    },
                };
                if status != 200 || hub != model {
                    return Err(format!("{cmd:?}: hub {status} {hub}, model {model}"));
                }
            }
            Cmd::Reserve { key, pos: p, qty } => {
                let position = pos(p);
                let rkey = reservation_key(key);
                let (status, body) = self.api.reserve(position.sku.as_str(), position.location.as_str(), qty, rkey.as_str()).await;
                let model = self.model.reserve(&rkey, &position, qty, self.now, TTL);
                let same = match (&model, status) {
                    (Ok((id, true)), 201) => {
                        let token = body["token"].as_str().unwrap_or_default().to_string();
                        self.granted.push((id.clone(), body["id"].as_str().unwrap_or_default().to_string(), token));
                        true
                    }
                    (Ok((id, false)), 200) => self.granted.iter().any(|(m, h, _)| m == id && body["id"] == h.as_str()),
                    (Err(ReserveError::KeyReused), 422) => true,
                    (Err(ReserveError::Insufficient(i)), 409) => body["error"]["available"] == i.available,
                    _ => false,
                };
                if !same {
                    return Err(format!("{cmd:?}: hub {status} {body}, model {model:?}"));
                }
            }
            Cmd::Act { nth, action } => {
                if self.granted.is_empty() {
                    return Ok(());
                }
                let (model_id, id, token) = self.granted[nth % self.granted.len()].clone();
                let (method, path, bearer) = match action {
                    Action::Confirm => (Method::POST, format!("/v1/reservations/{id}/confirm"), token),
                    Action::Release => (Method::DELETE, format!("/v1/reservations/{id}"), token),
                    Action::Fulfil => (Method::POST, format!("/v1/reservations/{id}/fulfil"), TOKEN.to_string()),
                };
                let (status, _, body) = self.api.raw(method, &path, &[("authorization", &format!("Bearer {bearer}"))], "").await;
                let model = self.model.act(&model_id, action, self.now);
                if !matches!((&model, status), (Ok(()), 200) | (Err(_), 409)) {
                    return Err(format!("{cmd:?}: hub {status} {body}, model {model:?}"));
                }
            }
            Cmd::Tick(ms) => {
                self.hub.clock.advance(ms);
                self.now += ms;
            }
            // The hub's sweeper runs by itself; what it records is already how reads count a
            // lapsed hold, so the model may sweep whenever it likes.
            Cmd::Sweep => {
                self.model.sweep(self.now);
            }
        }
        self.compare(cmd).await
    }

    /// Every position and every granted reservation, hub against model.
    async fn compare(&self, after: &Cmd) -> Result<(), String> {
        let list: Vec<String> = (0..POSITIONS).map(|p| pos(p).to_string()).collect();
        let (status, answer) = self.api.get_json(&format!("/v1/availability?positions={}", list.join(","))).await;
        if status != 200 {
            return Err(format!("after {after:?}: availability answered {status} {answer}"));
        }
        for (p, hub) in (0..POSITIONS).zip(answer["positions"].as_array().unwrap()) {
            let stock = self.model.stocks.get(&pos(p)).cloned().unwrap_or_default();
            let model = json!([stock.on_hand, stock.reserved_at(self.now), stock.available_at(self.now)]);
            let hub = json!([hub["on_hand"], hub["reserved"], hub["available"]]);
            if hub != model {
                return Err(format!("after {after:?}: {} is {hub} at the hub, {model} in the model", pos(p)));
            }
        }
        for (model_id, id, token) in &self.granted {
            let (status, _, body) =
                self.api.raw(Method::GET, &format!("/v1/reservations/{id}"), &[("authorization", &format!("Bearer {token}"))], "").await;
            let hub: Value = serde_json::from_str(&body).unwrap_or_default();
            let r = &self.model.reservations[model_id].reservation;
            let model = json!([r.status_at(self.now), r.qty]);
            if status != 200 || json!([hub["status"], hub["qty"]]) != model {
                return Err(format!("after {after:?}: reservation {id} is {status} {body} at the hub, {model} in the model"));
            }
        }
        Ok(())
    }

    async fn run(&mut self, cmds: &[Cmd]) -> Result<(), String> {
        for (i, cmd) in cmds.iter().enumerate() {
            self.step(cmd).await.map_err(|e| format!("step {i}: {e}"))?;
        }
        Ok(())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random interleavings of events, holds, confirmations, releases, pickups, time and
    /// sweeps: the hub answers and ends up exactly as the model does, step by step.
    #[test]
    fn the_writer_decides_as_the_model_does(cmds in prop::collection::vec(commands(), 1..60)) {
        let outcome = runtime().block_on(async { Pair::new(None).await.run(&cmds).await });
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

/// A long fixed sequence (a seeded generator, so the same every run): many holds on few
/// positions, expiries, retried keys and duplicate events.
fn long_run() -> Vec<Cmd> {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    (0..400).map(|_| commands().new_tree(&mut runner).unwrap().current()).collect()
}

#[test]
fn a_long_fixed_run_matches_the_model_at_every_step() {
    let cmds = long_run();
    let outcome = runtime().block_on(async { Pair::new(None).await.run(&cmds).await });
    assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
}

#[test]
fn the_comparison_notices_a_broken_rule() {
    // A model that counts a duplicate again parts from the hub at the first duplicate.
    let cmds = [
        Cmd::Event { id: 1, kind: shelfcast_protocol::EventKind::Receipt, pos: 0, qty: 3 },
        Cmd::Event { id: 1, kind: shelfcast_protocol::EventKind::Receipt, pos: 0, qty: 3 },
    ];
    let outcome = runtime().block_on(async { Pair::new(Some(Broken::CountsDuplicates)).await.run(&cmds).await });
    let error = outcome.expect_err("the comparison must fail");
    assert!(error.starts_with("step 1:") && error.contains("SKU-0@store-0"), "{error}");
    // The same steps with the faithful model agree.
    let outcome = runtime().block_on(async { Pair::new(None).await.run(&cmds).await });
    assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
}
