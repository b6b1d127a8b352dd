//! A complete in-memory model of a hub: dedupe, positions and reservations, built only from the
//! rules in [`crate::stock`] and [`crate::reservation`].
//!
//! The stores (SQLite, PostgreSQL) apply exactly these rules, durably; this model is what their
//! behaviour is checked against, and what the property tests below explore.

use std::collections::{HashMap, HashSet};

use crate::clock::Millis;
use crate::event::Event;
use crate::ids::{EventId, PositionKey, ReservationKey};
use crate::reservation::{Action, Reservation, TransitionError};
use crate::stock::{Insufficient, Stock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveError {
    Insufficient(Insufficient),
    /// The key was used before for another sku, location or quantity.
    KeyReused,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRecord {
    pub key: PositionKey,
    pub reservation: Reservation,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    seen: HashSet<EventId>,
    pub stocks: HashMap<PositionKey, Stock>,
    pub reservations: HashMap<String, ReservationRecord>,
    keys: HashMap<ReservationKey, String>,
}

impl Ledger {
    /// Applies an event once, however often it arrives.
    pub fn ingest(&mut self, event: &Event) -> Outcome {
        if !self.seen.insert(event.id.clone()) {
            return Outcome::Duplicate;
        }
        self.stocks.entry(event.key.clone()).or_default().apply(event.kind, event.qty);
        Outcome::Applied
    }

    /// Grants a hold, or returns the one this key already got. `Ok((id, created))`.
    pub fn reserve(
        &mut self,
        key: &ReservationKey,
        position: &PositionKey,
        qty: i64,
        now: Millis,
        ttl: Millis,
    ) -> Result<(String, bool), ReserveError> {
        if let Some(id) = self.keys.get(key) {
            let rec = &self.reservations[id];
            return if rec.key == *position && rec.reservation.qty == qty {
                Ok((id.clone(), false))
            } else {
                Err(ReserveError::KeyReused)
            };
        }
        let id = format!("r{}", self.reservations.len() + 1);
        let stock = self.stocks.entry(position.clone()).or_default();
        stock.try_hold(&id, qty, now + ttl, now).map_err(ReserveError::Insufficient)?;
        self.keys.insert(key.clone(), id.clone());
        let rec = ReservationRecord { key: position.clone(), reservation: Reservation::held(qty, now + ttl) };
        self.reservations.insert(id.clone(), rec);
        Ok((id, true))
    }

    /// Confirms, releases or fulfils a reservation.
    pub fn act(&mut self, id: &str, action: Action, now: Millis) -> Result<(), TransitionError> {
        let rec = self.reservations.get_mut(id).expect("known reservation");
        let Some(next) = rec.reservation.decide(action, now)? else { return Ok(()) };
        let stock = self.stocks.get_mut(&rec.key).expect("a reservation's position exists");
        match action {
            Action::Confirm => {
                stock.confirm(id);
            }
            Action::Release => {
                stock.release(id);
            }
            Action::Fulfil => {
                stock.fulfil(id);
            }
        }
        rec.reservation = next;
        Ok(())
    }

    /// Expires every hold whose time is up; returns how many.
    pub fn sweep(&mut self, now: Millis) -> usize {
        let mut n = 0;
        for stock in self.stocks.values_mut() {
            for id in stock.expire(now) {
                let rec = self.reservations.get_mut(&id).expect("a hold's reservation exists");
                rec.reservation = rec.reservation.expire(now).expect("an expired hold was held");
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, Field, RawEvent};
    use crate::reservation::ReservationStatus;
    use proptest::prelude::*;

    const TTL: Millis = 1_000;

    #[derive(Debug, Clone)]
    enum Cmd {
        Event { id: u8, kind: EventKind, pos: u8, qty: i64 },
        Reserve { key: u8, pos: u8, qty: i64 },
        Act { nth: usize, action: Action },
        Tick(Millis),
        Sweep,
    }

    fn pos(i: u8) -> PositionKey {
        PositionKey::parse_pair(&format!("SKU-{}@store-{}", i % 2, i / 2 % 2)).unwrap()
    }

    fn event(id: u8, kind: EventKind, p: u8, qty: i64) -> Event {
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
        .unwrap()
    }

    fn cmd() -> impl Strategy<Value = Cmd> {
        let kind = prop::sample::select(EventKind::ALL.to_vec());
        let action = prop::sample::select(vec![Action::Confirm, Action::Release, Action::Fulfil]);
        prop_oneof![
            (any::<u8>(), kind, 0u8..4, 1i64..6).prop_map(|(id, kind, pos, qty)| Cmd::Event { id: id % 40, kind, pos, qty }),
            (0u8..30, 0u8..4, 1i64..4).prop_map(|(key, pos, qty)| Cmd::Reserve { key, pos, qty }),
            (any::<usize>(), action).prop_map(|(nth, action)| Cmd::Act { nth, action }),
            (0i64..700).prop_map(Cmd::Tick),
            Just(Cmd::Sweep),
        ]
    }

    fn rkey(k: u8) -> ReservationKey {
        ReservationKey::parse(&format!("key-0000000000-{k:03}")).unwrap()
    }

    proptest! {
        /// However events and reservation commands interleave, a hold is granted only from stock
        /// available at that moment, and the live holds never exceed what was available when
        /// each was granted.
        #[test]
        fn holds_never_exceed_what_was_available(cmds in prop::collection::vec(cmd(), 1..120)) {
            let mut l = Ledger::default();
            let mut now = 0;
            let mut ids: Vec<String> = Vec::new();
            for c in cmds {
                match c {
                    Cmd::Event { id, kind, pos: p, qty } => {
                        let qty = if kind == EventKind::Adjust && id % 2 == 0 { -qty } else { qty };
                        l.ingest(&event(id, kind, p, qty));
                    }
                    Cmd::Reserve { key, pos: p, qty } => {
                        let before = l.stocks.get(&pos(p)).map(|s| s.available_at(now)).unwrap_or(0);
                        match l.reserve(&rkey(key), &pos(p), qty, now, TTL) {
                            Ok((id, true)) => {
                                prop_assert!(qty <= before, "granted {qty} with {before} available");
                                prop_assert_eq!(l.stocks[&pos(p)].available_at(now), before - qty);
                                ids.push(id);
                            }
                            Ok((_, false)) | Err(ReserveError::KeyReused) => {}
                            Err(ReserveError::Insufficient(i)) => {
                                prop_assert!(qty > before);
                                prop_assert_eq!(i.available, before.max(0));
                            }
                        }
                    }
                    Cmd::Act { nth, action } => {
                        if !ids.is_empty() {
                            let _ = l.act(&ids[nth % ids.len()], action, now);
                        }
                    }
                    Cmd::Tick(dt) => now += dt,
                    Cmd::Sweep => { l.sweep(now); }
                }
                // Open reservations and the holds on stock are the same thing, seen twice.
                for (id, rec) in &l.reservations {
                    let held = l.stocks[&rec.key].hold(id).is_some();
                    prop_assert_eq!(held, rec.reservation.status.is_open(), "reservation {}", id);
                }
            }
        }

        /// Replaying any events a second time, in any order, changes nothing.
        #[test]
        fn replaying_events_changes_nothing(
            evs in prop::collection::vec((any::<u8>(), prop::sample::select(EventKind::ALL.to_vec()), 0u8..4, 1i64..9), 1..60),
            replay in prop::collection::vec(any::<prop::sample::Index>(), 0..60),
        ) {
            let evs: Vec<Event> = evs.into_iter().map(|(id, k, p, q)| event(id, k, p, q)).collect();
            let mut l = Ledger::default();
            for e in &evs { l.ingest(e); }
            let settled = l.clone();
            for i in replay {
                prop_assert_eq!(l.ingest(i.get(&evs)), Outcome::Duplicate);
            }
            prop_assert_eq!(l, settled);
        }
    }

    #[test]
    fn the_same_key_gets_the_same_reservation() {
        let mut l = Ledger::default();
        l.ingest(&event(1, EventKind::Receipt, 0, 5));
        let (a, created) = l.reserve(&rkey(1), &pos(0), 2, 0, TTL).unwrap();
        assert!(created);
        assert_eq!(l.reserve(&rkey(1), &pos(0), 2, 10, TTL), Ok((a, false)));
        assert_eq!(l.reserve(&rkey(1), &pos(0), 3, 10, TTL), Err(ReserveError::KeyReused));
        assert_eq!(l.stocks[&pos(0)].available_at(10), 3);
    }

    #[test]
    fn sweeping_expires_only_lapsed_holds() {
        let mut l = Ledger::default();
        l.ingest(&event(1, EventKind::Receipt, 0, 5));
        let (a, _) = l.reserve(&rkey(1), &pos(0), 1, 0, TTL).unwrap();
        let (b, _) = l.reserve(&rkey(2), &pos(0), 1, 500, TTL).unwrap();
        assert_eq!(l.sweep(TTL), 1);
        assert_eq!(l.reservations[&a].reservation.status, ReservationStatus::Expired);
        assert_eq!(l.reservations[&b].reservation.status, ReservationStatus::Held);
    }
}
