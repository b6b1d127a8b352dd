//! Arbitrary sequences of events, reservations, confirmations, releases, pickups, clock moves
//! and sweeps on the pure inventory rules. After every step:
//! - a duplicate event id changes nothing;
//! - a hold is granted only from available stock (no oversell), a refused one changes nothing;
//! - the same reservation key gives the same reservation, never a second one;
//! - reserved is never negative and equals the live holds of open reservations.
#![no_main]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shelfcast_protocol::clock::Millis;
use shelfcast_protocol::event::{Field, RawEvent};
use shelfcast_protocol::ledger::{Ledger, Outcome};
use shelfcast_protocol::{Action, PositionKey, ReservationKey, ReservationStatus};

const TTL: Millis = 1_000;

#[derive(Arbitrary, Debug)]
enum Op {
    Event { id: u8, kind: u8, pos: u8, qty: i16 },
    Reserve { key: u8, pos: u8, qty: u8 },
    Act { nth: u8, action: u8 },
    Tick(u16),
    Sweep,
}

fn pos(i: u8) -> PositionKey {
    PositionKey::parse_pair(&format!("SKU-{}@store-{}", i % 3, i / 3 % 2)).unwrap()
}

/// The ledger with never-written positions dropped: a position nobody wrote is all zeros,
/// whether or not the map holds an entry for it.
fn norm(ledger: &Ledger) -> Ledger {
    let mut l = ledger.clone();
    l.stocks.retain(|_, s| *s != Default::default());
    l
}

fn check(ledger: &Ledger, now: Millis) {
    let mut live: HashMap<&PositionKey, i64> = HashMap::new();
    for rec in ledger.reservations.values() {
        let r = &rec.reservation;
        let holds = match r.status {
            ReservationStatus::Held => r.expires_at.is_some_and(|t| now < t),
            ReservationStatus::Confirmed => true,
            _ => false,
        };
        if holds {
            *live.entry(&rec.key).or_default() += r.qty;
        }
    }
    for (key, stock) in &ledger.stocks {
        let reserved = stock.reserved_at(now);
        assert!(reserved >= 0, "{key:?}: reserved {reserved}");
        assert_eq!(reserved, live.get(key).copied().unwrap_or(0), "{key:?}: holds and reservations disagree");
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut ledger = Ledger::default();
    let mut now: Millis = 0;
    let mut ids: Vec<String> = Vec::new();
    let mut granted: HashMap<u8, String> = HashMap::new();
    for op in ops.into_iter().take(500) {
        match op {
            Op::Event { id, kind, pos: p, qty } => {
                let kinds = ["sale", "return", "receipt", "adjust", "count"];
                let key = pos(p);
                let raw = RawEvent {
                    id: Field::Value(&format!("e{id}")),
                    kind: Field::Value(kinds[kind as usize % kinds.len()]),
                    sku: Field::Value(key.sku.as_str()),
                    location: Field::Value(key.location.as_str()),
                    qty: Field::Value(qty as i64),
                    at: Field::Missing,
                };
                let Ok(event) = raw.validate() else { continue };
                let before = norm(&ledger);
                if ledger.ingest(&event) == Outcome::Duplicate {
                    assert_eq!(before, norm(&ledger), "a duplicate changed stock");
                }
            }
            Op::Reserve { key, pos: p, qty } => {
                let qty = (qty % 5 + 1) as i64;
                let position = pos(p);
                let rkey = ReservationKey::parse(&format!("reservation-key-{key:04}")).unwrap();
                let available = ledger.stocks.get(&position).map_or(0, |s| s.available_at(now));
                let before = norm(&ledger);
                match ledger.reserve(&rkey, &position, qty, now, TTL) {
                    Ok((id, true)) => {
                        assert!(available >= qty, "granted {qty} with {available} available");
                        assert!(ledger.stocks[&position].available_at(now) >= 0);
                        assert!(granted.insert(key, id.clone()).is_none(), "a key made a second reservation");
                        ids.push(id);
                    }
                    Ok((id, false)) => {
                        assert_eq!(granted.get(&key), Some(&id));
                        assert_eq!(before, norm(&ledger), "a retried key changed something");
                    }
                    Err(_) => assert_eq!(before, norm(&ledger), "a refused reservation changed something"),
                }
            }
            Op::Act { nth, action } => {
                if ids.is_empty() {
                    continue;
                }
                let id = ids[nth as usize % ids.len()].clone();
                let action = [Action::Confirm, Action::Release, Action::Fulfil][action as usize % 3];
                let _ = ledger.act(&id, action, now);
            }
            Op::Tick(ms) => now += ms as Millis,
            Op::Sweep => {
                ledger.sweep(now);
            }
        }
        check(&ledger, now);
    }
});
