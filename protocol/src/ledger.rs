//! A complete in-memory model of a hub: dedupe, positions and reservations, built only from the
//! rules in [`crate::stock`] and [`crate::reservation`].
//!
//! The hub's writer decides with the same rules ([`crate::decide`]) over SQLite or PostgreSQL;
//! `server/tests/differential.rs` runs this model's command sequences through the real hub and
//! compares both after every step. The property tests below explore the model itself.

use std::collections::{HashMap, HashSet};

use crate::clock::Millis;
use crate::decide::{self, KeyUse};
use crate::event::Event;
use crate::ids::{EventId, PositionKey, ReservationKey};
use crate::reservation::{Action, Reservation, TransitionError};
use crate::stock::{Insufficient, Stock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
        let earlier = self.keys.get(key).map(|id| (id, &self.reservations[id]));
        match decide::key_use(earlier.map(|(_, r)| (&r.key, r.reservation.qty)), position, qty) {
            KeyUse::Repeat => return Ok((earlier.expect("a repeated key").0.clone(), false)),
            KeyUse::Reused => return Err(ReserveError::KeyReused),
            KeyUse::Fresh => {}
        }
        let id = format!("r{}", self.reservations.len() + 1);
        let stock = self.stocks.entry(position.clone()).or_default();
        let reservation = decide::hold(stock, &id, qty, now, ttl).map_err(ReserveError::Insufficient)?;
        self.keys.insert(key.clone(), id.clone());
        self.reservations.insert(id.clone(), ReservationRecord { key: position.clone(), reservation });
        Ok((id, true))
    }

    /// Confirms, releases or fulfils a reservation.
    pub fn act(&mut self, id: &str, action: Action, now: Millis) -> Result<(), TransitionError> {
        let rec = self.reservations.get_mut(id).expect("known reservation");
        let stock = self.stocks.get_mut(&rec.key).expect("a reservation's position exists");
        if let Some(next) = decide::act(&rec.reservation, id, action, now, stock)? {
            rec.reservation = next;
        }
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
    use crate::event::EventKind;
    use crate::model::{commands as cmd, event, pos, reservation_key as rkey, Cmd, Run, TTL};
    use crate::reservation::ReservationStatus;
    use proptest::prelude::*;

    fn valid(id: u8, kind: EventKind, p: u8, qty: i64) -> Event {
        event(id, kind, p, qty).expect("a valid event")
    }

    proptest! {
        /// However events and reservation commands interleave, every invariant of
        /// `crate::model` holds after every step: no oversell, no double application, one
        /// reservation per key, holds and reservations in agreement.
        #[test]
        fn every_invariant_holds_after_every_step(cmds in prop::collection::vec(cmd(), 1..120)) {
            let mut run = Run::default();
            for c in cmds {
                run.step(c);
            }
        }

        /// Replaying any events a second time, in any order, changes nothing.
        #[test]
        fn replaying_events_changes_nothing(
            evs in prop::collection::vec((any::<u8>(), prop::sample::select(EventKind::ALL.to_vec()), 0u8..4, 1i64..9), 1..60),
            replay in prop::collection::vec(any::<prop::sample::Index>(), 0..60),
        ) {
            let evs: Vec<Event> = evs.into_iter().map(|(id, k, p, q)| valid(id, k, p, q)).collect();
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
        l.ingest(&valid(1, EventKind::Receipt, 0, 5));
        let (a, created) = l.reserve(&rkey(1), &pos(0), 2, 0, TTL).unwrap();
        assert!(created);
        assert_eq!(l.reserve(&rkey(1), &pos(0), 2, 10, TTL), Ok((a, false)));
        assert_eq!(l.reserve(&rkey(1), &pos(0), 3, 10, TTL), Err(ReserveError::KeyReused));
        assert_eq!(l.stocks[&pos(0)].available_at(10), 3);
    }

    #[test]
    fn sweeping_expires_only_lapsed_holds() {
        let mut l = Ledger::default();
        l.ingest(&valid(1, EventKind::Receipt, 0, 5));
        let (a, _) = l.reserve(&rkey(1), &pos(0), 1, 0, TTL).unwrap();
        let (b, _) = l.reserve(&rkey(2), &pos(0), 1, 500, TTL).unwrap();
        assert_eq!(l.sweep(TTL), 1);
        assert_eq!(l.reservations[&a].reservation.status, ReservationStatus::Expired);
        assert_eq!(l.reservations[&b].reservation.status, ReservationStatus::Held);
    }

    /// The checks themselves catch what they name: a hold whose reservation is gone from the
    /// ledger is reported.
    #[test]
    #[should_panic(expected = "holds and reservations disagree")]
    fn the_model_notices_a_hold_without_a_reservation() {
        let mut run = Run::default();
        run.step(Cmd::Event { id: 1, kind: EventKind::Receipt, pos: 0, qty: 5 });
        run.step(Cmd::Reserve { key: 1, pos: 0, qty: 2 });
        let id = run.ledger.reservations.keys().next().unwrap().clone();
        run.ledger.reservations.remove(&id);
        run.step(Cmd::Tick(1));
    }
}
