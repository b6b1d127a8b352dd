//! The stock of one position and the pure rules that change it.
//!
//! A position holds its on-hand count and the open reservations against it. A hold with an
//! `expires_at` reserves nothing from that instant on, whether or not anyone has swept it yet:
//! every question about reserved or available stock is asked *at a time*.

use crate::clock::Millis;
use crate::event::EventKind;
use crate::ids::PositionKey;
use crate::position::{Position, Status};

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

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stock {
    pub on_hand: i64,
    pub holds: Vec<Hold>,
}

impl Stock {
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
        self.holds.iter().filter(|h| h.is_live(now)).map(|h| h.qty).sum()
    }

    pub fn available_at(&self, now: Millis) -> i64 {
        self.on_hand - self.reserved_at(now)
    }

    /// Grants a hold of `qty` if that much is available at `now`, else says how much is.
    pub fn try_hold(&mut self, reservation: &str, qty: i64, expires_at: Millis, now: Millis) -> Result<(), Insufficient> {
        let available = self.available_at(now);
        if qty <= 0 || qty > available {
            return Err(Insufficient { available: available.max(0) });
        }
        self.holds.push(Hold { reservation: reservation.to_owned(), qty, expires_at: Some(expires_at) });
        Ok(())
    }

    /// Removes every hold whose time is up at `now` and returns their reservations.
    pub fn expire(&mut self, now: Millis) -> Vec<String> {
        let mut expired = Vec::new();
        self.holds.retain(|h| {
            let live = h.is_live(now);
            if !live {
                expired.push(h.reservation.clone());
            }
            live
        });
        expired
    }

    /// A placed order: the hold stays until fulfilled or released, with no expiry.
    pub fn confirm(&mut self, reservation: &str) -> bool {
        match self.holds.iter_mut().find(|h| h.reservation == reservation) {
            Some(h) => {
                h.expires_at = None;
                true
            }
            None => false,
        }
    }

    /// Gives the held units back to the shelf at once.
    pub fn release(&mut self, reservation: &str) -> Option<Hold> {
        let i = self.holds.iter().position(|h| h.reservation == reservation)?;
        Some(self.holds.swap_remove(i))
    }

    /// Picked up: the units leave the store, so on-hand and reserved both drop by the quantity.
    pub fn fulfil(&mut self, reservation: &str) -> Option<Hold> {
        let hold = self.release(reservation)?;
        self.on_hand = self.on_hand.saturating_sub(hold.qty);
        Some(hold)
    }

    /// The earliest instant at which a hold lapses, if any hold can.
    pub fn next_expiry(&self) -> Option<Millis> {
        self.holds.iter().filter_map(|h| h.expires_at).min()
    }

    pub fn position(&self, key: &PositionKey, version: u64, now: Millis, low_stock: i64) -> Position {
        let reserved = self.reserved_at(now);
        let available = self.on_hand - reserved;
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
        Stock { on_hand, holds: Vec::new() }
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
        assert_eq!(s.holds.len(), 1);
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
}
