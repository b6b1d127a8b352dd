//! The inventory rules driven by a sequence of commands, every invariant checked after each
//! step: what the property tests (random sequences, shrunk on failure) and the fuzzer
//! (coverage-guided sequences) both run. A broken invariant panics with what broke.
//!
//! Invariants:
//! - a duplicate event id changes nothing;
//! - a hold is granted only from stock available at that moment, and takes exactly its
//!   quantity; a refused one reports what was available and changes nothing;
//! - the same reservation key gives the same reservation, never a second one;
//! - reserved is never negative and equals the live holds of open reservations, and a
//!   reservation is open exactly when its stock holds it.

use std::collections::HashMap;

use crate::clock::Millis;
use crate::event::{Event, EventKind, Field, RawEvent};
use crate::ids::{PositionKey, ReservationKey};
use crate::ledger::{Ledger, Outcome, ReserveError};
use crate::reservation::{Action, ReservationStatus};

/// How long a hold lasts in these runs.
pub const TTL: Millis = 1_000;

/// One step of a run. Small numbers pick among a few positions, keys and reservations, so
/// sequences collide often.
#[derive(Debug, Clone)]
pub enum Cmd {
    Event {
        id: u8,
        kind: EventKind,
        pos: u8,
        qty: i64,
    },
    Reserve {
        key: u8,
        pos: u8,
        qty: i64,
    },
    /// Acts on the `nth` reservation granted so far (modulo their number).
    Act {
        nth: usize,
        action: Action,
    },
    Tick(Millis),
    Sweep,
}

/// Random steps that collide often (few ids, positions and keys), for property tests.
#[cfg(any(test, feature = "strategies"))]
pub fn commands() -> impl proptest::strategy::Strategy<Value = Cmd> {
    use proptest::prelude::*;
    let kind = prop::sample::select(EventKind::ALL.to_vec());
    let action = prop::sample::select(vec![Action::Confirm, Action::Release, Action::Fulfil]);
    prop_oneof![
        (any::<u8>(), kind, 0u8..4, 1i64..6, any::<bool>()).prop_map(|(id, kind, pos, qty, down)| {
            let qty = if kind == EventKind::Adjust && down { -qty } else { qty };
            Cmd::Event { id: id % 40, kind, pos, qty }
        }),
        (0u8..30, 0u8..4, 1i64..4).prop_map(|(key, pos, qty)| Cmd::Reserve { key, pos, qty }),
        (any::<usize>(), action).prop_map(|(nth, action)| Cmd::Act { nth, action }),
        (0i64..700).prop_map(Cmd::Tick),
        Just(Cmd::Sweep),
    ]
}

/// One of six positions.
pub fn pos(i: u8) -> PositionKey {
    PositionKey::parse_pair(&format!("SKU-{}@store-{}", i % 3, i / 3 % 2)).expect("a valid position")
}

pub fn reservation_key(k: u8) -> ReservationKey {
    ReservationKey::parse(&format!("reservation-key-{k:03}")).expect("a valid key")
}

/// The event a device would send, if it is a valid one.
pub fn event(id: u8, kind: EventKind, p: u8, qty: i64) -> Option<Event> {
    let id = format!("dev:{id}");
    let p = pos(p);
    RawEvent {
        id: Field::Value(&id),
        kind: Field::Value(kind.as_str()),
        sku: Field::Value(p.sku.as_str()),
        location: Field::Value(p.location.as_str()),
        qty: Field::Value(qty),
        at: Field::Missing,
    }
    .validate()
    .ok()
}

/// A ledger driven step by step.
#[derive(Default)]
pub struct Run {
    pub ledger: Ledger,
    pub now: Millis,
    granted: Vec<String>,
    by_key: HashMap<u8, String>,
}

impl Run {
    pub fn step(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Event { id, kind, pos: p, qty } => {
                let Some(event) = event(id, kind, p, qty) else { return };
                let before = self.written();
                if self.ledger.ingest(&event) == Outcome::Duplicate {
                    assert_eq!(before, self.written(), "a duplicate changed stock");
                }
            }
            Cmd::Reserve { key, pos: p, qty } => {
                let position = pos(p);
                let available = self.ledger.stocks.get(&position).map_or(0, |s| s.available_at(self.now));
                let before = self.written();
                match self.ledger.reserve(&reservation_key(key), &position, qty, self.now, TTL) {
                    Ok((id, true)) => {
                        assert!(qty <= available, "granted {qty} with {available} available");
                        assert_eq!(self.ledger.stocks[&position].available_at(self.now), available - qty);
                        assert!(self.by_key.insert(key, id.clone()).is_none(), "a key made a second reservation");
                        self.granted.push(id);
                    }
                    Ok((id, false)) => {
                        assert_eq!(self.by_key.get(&key), Some(&id), "a retried key got another reservation");
                        assert_eq!(before, self.written(), "a retried key changed something");
                    }
                    Err(ReserveError::KeyReused) => {
                        assert!(self.by_key.contains_key(&key), "a fresh key was taken for reused");
                        assert_eq!(before, self.written(), "a reused key changed something");
                    }
                    Err(ReserveError::Insufficient(i)) => {
                        assert!(qty > available, "refused {qty} with {available} available");
                        assert_eq!(i.available, available.max(0));
                        assert_eq!(before, self.written(), "a refused reservation changed something");
                    }
                }
            }
            Cmd::Act { nth, action } => {
                if !self.granted.is_empty() {
                    let id = self.granted[nth % self.granted.len()].clone();
                    let _ = self.ledger.act(&id, action, self.now);
                }
            }
            Cmd::Tick(ms) => self.now += ms,
            Cmd::Sweep => {
                self.ledger.sweep(self.now);
            }
        }
        self.check();
    }

    /// The ledger without never-written positions: a position nobody wrote is all zeros,
    /// whether or not the map holds an entry for it.
    fn written(&self) -> Ledger {
        let mut l = self.ledger.clone();
        l.stocks.retain(|_, s| *s != Default::default());
        l
    }

    fn check(&self) {
        let mut live: HashMap<&PositionKey, i64> = HashMap::new();
        for (id, rec) in &self.ledger.reservations {
            let r = &rec.reservation;
            let holds = match r.status {
                ReservationStatus::Held => r.expires_at.is_some_and(|t| self.now < t),
                ReservationStatus::Confirmed => true,
                _ => false,
            };
            if holds {
                *live.entry(&rec.key).or_default() += r.qty;
            }
            // Open reservations and the holds on stock are the same thing, seen twice.
            let held = self.ledger.stocks.get(&rec.key).is_some_and(|s| s.hold(id).is_some());
            assert_eq!(held, r.status.is_open(), "reservation {id}");
        }
        for (key, stock) in &self.ledger.stocks {
            let reserved = stock.reserved_at(self.now);
            assert!(reserved >= 0, "{key:?}: reserved {reserved}");
            assert_eq!(reserved, live.get(key).copied().unwrap_or(0), "{key:?}: holds and reservations disagree");
        }
    }
}
