//! The stock of one position and the pure rules that change it.
//!
//! A position holds its on-hand count and the open reservations against it. A hold with an
//! `expires_at` reserves nothing from that instant on, whether or not anyone has swept it yet:
//! every question about reserved or available stock is asked *at a time*.

use crate::clock::Millis;
use crate::event::EventKind;
use crate::ids::PositionKey;
use crate::position::{Position, Status};
use imbl::{OrdMap, OrdSet};

/// An open reservation's claim on a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub reservation: String,
    pub qty: i64,
    /// `None` once confirmed: a placed order does not expire.
    pub expires_at: Option<Millis>,
}

impl Hold {
    pub fn is_live(&self, now: Millis) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

/// A hold was refused: this much was available when it was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insufficient {
    pub available: i64,
}

/// On-hand units and the open holds against them.
///
/// The holds live in persistent (structurally shared) ordered maps: cloning a stock is O(1)
/// however many holds a hot position carries, and every question and change costs O(log n) in
/// the number of holds (plus the lapsed ones not swept yet), never O(n).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stock {
    pub on_hand: i64,
    /// Open holds by reservation id.
    holds: OrdMap<String, Hold>,
    /// The holds that can lapse, in expiry order.
    expiring: OrdSet<(Millis, String)>,
    /// The sum of every open hold's quantity, lapsed-but-not-swept ones included.
    held: i64,
}

impl Stock {
    pub fn new(on_hand: i64) -> Self {
        Self { on_hand, ..Self::default() }
    }

    /// A stock as stored: on-hand and its open holds.
    pub fn with_holds(on_hand: i64, holds: impl IntoIterator<Item = Hold>) -> Self {
        let mut stock = Self::new(on_hand);
        for h in holds {
            stock.add_hold(h);
        }
        stock
    }

    /// Adds (or replaces) an open hold as it was stored.
    pub fn add_hold(&mut self, hold: Hold) {
        self.remove_hold(&hold.reservation);
        if let Some(t) = hold.expires_at {
            self.expiring.insert((t, hold.reservation.clone()));
        }
        self.held = self.held.saturating_add(hold.qty);
        self.holds.insert(hold.reservation.clone(), hold);
    }

    fn remove_hold(&mut self, reservation: &str) -> Option<Hold> {
        if !self.holds.contains_key(reservation) {
            return None;
        }
        let hold = self.holds.remove(reservation)?;
        if let Some(t) = hold.expires_at {
            self.expiring.remove(&(t, hold.reservation.clone()));
        }
        self.held = self.held.saturating_sub(hold.qty);
        Some(hold)
    }

    /// The open holds, by reservation id.
    pub fn holds(&self) -> impl Iterator<Item = &Hold> {
        self.holds.values()
    }

    pub fn hold(&self, reservation: &str) -> Option<&Hold> {
        self.holds.get(reservation)
    }

    pub fn hold_count(&self) -> usize {
        self.holds.len()
    }

    /// The holds whose time is up at `now` but that no sweep removed yet.
    fn lapsed(&self, now: Millis) -> impl Iterator<Item = &(Millis, String)> {
        self.expiring.range(..(now.saturating_add(1), String::new()))
    }

    /// Applies a stock event to on-hand. Reservations are untouched: a sale of reserved units
    /// makes `available` negative (oversold), which is reported, never hidden.
    pub fn apply(&mut self, kind: EventKind, qty: i64) {
        self.on_hand = match kind {
            EventKind::Sale => self.on_hand.saturating_sub(qty),
            EventKind::Return | EventKind::Receipt | EventKind::Adjust => self.on_hand.saturating_add(qty),
            EventKind::Count => qty,
        };
    }

    pub fn reserved_at(&self, now: Millis) -> i64 {
        let lapsed: i64 = self.lapsed(now).filter_map(|(_, id)| self.holds.get(id)).map(|h| h.qty).sum();
        self.held.saturating_sub(lapsed)
    }

    /// Available as the ledger records it: a hold that lapsed counts until its expiry is
    /// recorded. Webhooks compare these, so a hold lapsing is told once, when it is recorded.
    pub fn available_recorded(&self) -> i64 {
        self.on_hand.saturating_sub(self.held)
    }

    pub fn available_at(&self, now: Millis) -> i64 {
        self.on_hand.saturating_sub(self.reserved_at(now))
    }

    /// Grants a hold of `qty` if that much is available at `now`, else says how much is.
    pub fn try_hold(&mut self, reservation: &str, qty: i64, expires_at: Millis, now: Millis) -> Result<(), Insufficient> {
        let available = self.available_at(now);
        if qty <= 0 || qty > available {
            return Err(Insufficient { available: available.max(0) });
        }
        self.add_hold(Hold { reservation: reservation.to_owned(), qty, expires_at: Some(expires_at) });
        Ok(())
    }

    /// Removes every hold whose time is up at `now` and returns their reservations.
    pub fn expire(&mut self, now: Millis) -> Vec<String> {
        let due: Vec<String> = self.lapsed(now).map(|(_, id)| id.clone()).collect();
        for id in &due {
            self.remove_hold(id);
        }
        due
    }

    /// A placed order: the hold stays until fulfilled or released, with no expiry.
    pub fn confirm(&mut self, reservation: &str) -> bool {
        match self.holds.get(reservation) {
            None => false,
            Some(h) if h.expires_at.is_none() => true,
            Some(h) => {
                let confirmed = Hold { expires_at: None, ..h.clone() };
                self.add_hold(confirmed);
                true
            }
        }
    }

    /// Gives the held units back to the shelf at once.
    pub fn release(&mut self, reservation: &str) -> Option<Hold> {
        self.remove_hold(reservation)
    }

    /// Picked up: the units leave the store, so on-hand and reserved both drop by the quantity.
    pub fn fulfil(&mut self, reservation: &str) -> Option<Hold> {
        let hold = self.release(reservation)?;
        self.on_hand = self.on_hand.saturating_sub(hold.qty);
        Some(hold)
    }

    /// The earliest instant at which a hold lapses, if any hold can.
    pub fn next_expiry(&self) -> Option<Millis> {
        self.expiring.get_min().map(|(t, _)| *t)
    }

    pub fn position(&self, key: &PositionKey, version: u64, now: Millis, low_stock: i64) -> Position {
        let reserved = self.reserved_at(now);
        let available = self.on_hand.saturating_sub(reserved);
        Position {
            sku: key.sku.clone(),
            location: key.location.clone(),
            on_hand: self.on_hand,
            reserved,
            available,
            status: Status::of(available, low_stock),
            version,
        }
    }
}

#[cfg(test)]
mod tests {
    //! Given / when / then.
    use super::*;

    fn given(on_hand: i64) -> Stock {
        Stock::new(on_hand)
    }

    #[test]
    fn events_move_on_hand() {
        let mut s = given(10);
        s.apply(EventKind::Sale, 3);
        assert_eq!(s.on_hand, 7);
        s.apply(EventKind::Return, 1);
        s.apply(EventKind::Receipt, 2);
        s.apply(EventKind::Adjust, -4);
        assert_eq!(s.on_hand, 6);
        s.apply(EventKind::Count, 42);
        assert_eq!(s.on_hand, 42);
    }

    #[test]
    fn a_hold_needs_available_stock() {
        let mut s = given(2);
        assert_eq!(s.try_hold("r1", 2, 100, 0), Ok(()));
        assert_eq!(s.try_hold("r2", 1, 100, 0), Err(Insufficient { available: 0 }));
        assert_eq!(s.available_at(0), 0);
    }

    #[test]
    fn an_expired_hold_reserves_nothing_before_any_sweep() {
        let mut s = given(1);
        s.try_hold("r1", 1, 100, 0).unwrap();
        assert_eq!(s.reserved_at(99), 1);
        assert_eq!(s.reserved_at(100), 0, "from expires_at on, the hold is gone");
        assert_eq!(s.try_hold("r2", 1, 200, 100), Ok(()));
        assert_eq!(s.expire(150), vec!["r1".to_string()]);
        assert_eq!(s.hold_count(), 1);
    }

    #[test]
    fn confirmed_holds_never_expire() {
        let mut s = given(1);
        s.try_hold("r1", 1, 100, 0).unwrap();
        assert!(s.confirm("r1"));
        assert_eq!(s.reserved_at(1_000_000), 1);
        assert!(s.expire(1_000_000).is_empty());
    }

    #[test]
    fn release_and_fulfil() {
        let mut s = given(5);
        s.try_hold("r1", 2, 100, 0).unwrap();
        s.try_hold("r2", 1, 100, 0).unwrap();
        assert_eq!(s.release("r1").map(|h| h.qty), Some(2));
        assert_eq!(s.available_at(0), 4);
        assert_eq!(s.fulfil("r2").map(|h| h.qty), Some(1));
        assert_eq!((s.on_hand, s.reserved_at(0)), (4, 0));
        assert_eq!(s.fulfil("r2"), None);
    }

    #[test]
    fn offline_sales_can_oversell_and_it_shows() {
        let mut s = given(1);
        s.try_hold("online", 1, 100, 0).unwrap();
        s.apply(EventKind::Sale, 1);
        let key = PositionKey::parse_pair("SKU-1@berlin").unwrap();
        let p = s.position(&key, 7, 0, 3);
        assert_eq!((p.on_hand, p.reserved, p.available, p.status), (0, 1, -1, Status::OutOfStock));
    }

    #[test]
    fn a_refused_hold_leaves_the_stock_as_it_was() {
        let mut s = given(1);
        s.try_hold("r1", 1, 100, 0).unwrap();
        let before = s.clone();
        assert!(s.try_hold("r2", 1, 100, 0).is_err());
        assert_eq!(s, before, "a refusal changes nothing");
        s.try_hold("r3", 1, 200, 150).unwrap();
        assert_ne!(s, before);
    }

    #[test]
    fn thousands_of_holds_with_some_lapsed() {
        let mut s = given(10_000);
        for i in 0..5_000 {
            s.try_hold(&format!("r{i}"), 1, 1_000 + i, 0).unwrap();
        }
        assert!(s.confirm("r10"));
        assert!(s.confirm("r10"), "confirming twice is still confirmed");
        assert_eq!(s.release("r11").map(|h| h.qty), Some(1));
        assert_eq!(s.release("r11"), None);
        // At 1_100, r0..=r100 have lapsed except the confirmed r10 (and r11 is gone).
        assert_eq!(s.reserved_at(1_100), 4_899 + 1);
        assert_eq!(s.available_at(1_100), 10_000 - 4_900);
        assert_eq!(s.next_expiry(), Some(1_000));
        let expired = s.expire(1_100);
        assert_eq!(expired.len(), 99);
        assert!(!expired.contains(&"r10".to_string()) && !expired.contains(&"r11".to_string()));
        assert_eq!(s.hold_count(), 4_900);
        assert_eq!(s.reserved_at(1_100), 4_900);
        assert_eq!(s.next_expiry(), Some(1_101));
        assert_eq!(s.hold("r10").map(|h| h.expires_at), Some(None));
    }

    #[test]
    fn stored_holds_load_back_the_same() {
        let mut s = given(5);
        s.try_hold("r1", 2, 100, 0).unwrap();
        s.try_hold("r2", 1, 50, 0).unwrap();
        s.confirm("r2");
        let loaded = Stock::with_holds(5, s.holds().cloned());
        assert_eq!(loaded, s);
        assert_eq!(loaded.reserved_at(200), 1);
    }
}
